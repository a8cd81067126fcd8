/*
 * dns_cache.h - the forwarder's answer cache: whole answers keyed by question and EDNS0
 * state, kept for their TTL (RFC 1035 7.4, negative answers RFC 2308), evicted least
 * recently used first.
 *
 * Pure code apart from the allocator and the kernel's random numbers (the hash key): no
 * sockets, no logging, no clock - the caller passes the time, so tests run on a fake one.
 * Bounded by the count of entries (max_entries) and by bytes: DNS_CACHE_BYTES_PER_ENTRY
 * times max_entries in all.
 */
#ifndef EGRESS_DNS_CACHE_H
#define EGRESS_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns_msg.h"

#define DNS_CACHE_MAX_TTL     86400 /* seconds: longer TTLs are cut to this */
#define DNS_CACHE_MAX_NEG_TTL 10800 /* seconds: negative answers (RFC 2308 5) */
#define DNS_CACHE_BYTES_PER_ENTRY 2048 /* the byte bound, per entry of the count bound */

struct dns_cache;

/* A new cache of at most max_entries (>= 1) answers; the caller owns it. */
struct dns_cache *dns_cache_new(size_t max_entries);
/* Free c and every entry.  NULL is accepted. */
void dns_cache_free(struct dns_cache *c);
/* Change the bound (>= 1), evicting the least recently used entries over it. */
void dns_cache_set_max(struct dns_cache *c, size_t max_entries);
size_t dns_cache_count(const struct dns_cache *c);

/*
 * Keep answer (len bytes, borrowed, copied) to query q (parsed) for the TTL that
 * dns_msg_cache_ttl() gives for a (the answer parsed), cut to the maxima above, from
 * now_ms on.  The key is q's name (case-insensitively), type, class, whether it had an
 * OPT record, its DO bit and the CD bit.  The stored copy has no EDNS options (see
 * dns_msg_strip_opt_options()).  An entry under the same key is replaced.  0 stored;
 * -ENOENT if the answer must not be cached (see dns_msg_cache_ttl()), does not answer
 * q's question, carries a Client Subnet option (or q did) or options not in its last record,
 * or is larger than the byte bound;
 * -EINVAL for a query without question.
 */
int dns_cache_put(struct dns_cache *c, const struct dns_msg *q, const uint8_t *answer, size_t len,
	const struct dns_msg *a, uint64_t now_ms);

/*
 * The answer for query q (parsed) at now_ms: 0 and in *ret (a new buffer the caller
 * frees) the stored answer with q's ID, RD bit and spelling of the name (RFC 4343: the
 * client may have sent 0x20 mixed case), every TTL aged by the whole seconds it spent in
 * the cache.  The entry becomes the most recently used.  -ENOENT on a miss; an expired
 * entry is dropped, and so is one that ageing would break (see dns_msg_age()).
 */
int dns_cache_get(struct dns_cache *c, const struct dns_msg *q, uint64_t now_ms, uint8_t **ret,
	size_t *ret_len);

#endif
