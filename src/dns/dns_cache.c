/*
 * dns_cache.c - the forwarder's answer cache: a hash table of whole answers with an LRU
 * list.
 *
 * Clients choose the names, so the table's hash is keyed (SipHash-1-3 with a random key):
 * nobody can aim many names at one chain.  Expired entries are dropped when met (a lookup
 * or the LRU tail); the count and byte bounds hold at all times.  Must not log or touch
 * sockets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns_cache.h"
#include "util.h"

#define KEY_MAX	 (DNS_NAME_MAX + 5)
#define KEY_EDNS 0x01
#define KEY_DO	 0x02
#define KEY_CD	 0x04

struct dns_cache_entry {
	struct dns_cache_entry *hnext;	       /* hash chain */
	struct dns_cache_entry *newer, *older; /* LRU list */
	uint64_t hash;
	uint64_t stored_ms, expires_ms;
	uint8_t key[KEY_MAX];
	size_t key_len;
	uint8_t *msg;
	size_t len;
};

struct dns_cache {
	struct dns_cache_entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t count, max;
	size_t bytes; /* of the stored messages */
	struct dns_cache_entry *newest, *oldest;
	uint64_t k0, k1; /* hash key */
};

/* ------------------------------------------------------------ SipHash-1-3 */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t load64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, end = len - len % 8;

	for (i = 0; i < end; i += 8) {
		m = load64le(in + i);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------------ table */

/* name lowercased, type, class, EDNS state, CD: what makes two answers interchangeable (an
 * answer to a query with Checking Disabled may be one validation would refuse) */
static size_t make_key(const struct dns_msg *q, uint8_t *key)
{
	size_t n = q->qname_len;

	memcpy(key, q->qname, n);
	dns_name_lower(key, n);
	dns_put16(key + n, q->qtype);
	dns_put16(key + n + 2, q->qclass);
	key[n + 4] = (uint8_t)((q->edns ? KEY_EDNS : 0) | (q->edns_do ? KEY_DO : 0) |
			       (q->flags & DNS_FLAG_CD ? KEY_CD : 0));
	return n + 5;
}

struct dns_cache *dns_cache_new(size_t max_entries)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));

	c->max = max_entries ? max_entries : 1;
	c->n_buckets = 64;
	c->buckets = xcalloc(c->n_buckets, sizeof(*c->buckets));
	arc4random_buf(&c->k0, sizeof(c->k0));
	arc4random_buf(&c->k1, sizeof(c->k1));
	return c;
}

static void lru_unlink(struct dns_cache *c, struct dns_cache_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push(struct dns_cache *c, struct dns_cache_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	c->newest = e;
	if (!c->oldest)
		c->oldest = e;
}

static void entry_remove(struct dns_cache *c, struct dns_cache_entry *e)
{
	struct dns_cache_entry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	c->bytes -= e->len;
	free(e->msg);
	free(e);
}

/* The bytes c may hold: DNS_CACHE_BYTES_PER_ENTRY times its entries. */
static size_t max_bytes(const struct dns_cache *c)
{
	return c->max > SIZE_MAX / DNS_CACHE_BYTES_PER_ENTRY ? SIZE_MAX
							      : c->max * DNS_CACHE_BYTES_PER_ENTRY;
}

/* Drop the least recently used entries until at most max are left and len bytes more fit. */
static void evict_to(struct dns_cache *c, size_t max, size_t len)
{
	while (c->count > max || (c->count && c->bytes + len > max_bytes(c)))
		entry_remove(c, c->oldest);
}

void dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return;
	evict_to(c, 0, 0);
	free(c->buckets);
	free(c);
}

void dns_cache_set_max(struct dns_cache *c, size_t max_entries)
{
	c->max = max_entries ? max_entries : 1;
	evict_to(c, c->max, 0);
}

size_t dns_cache_count(const struct dns_cache *c)
{
	return c->count;
}

static void grow(struct dns_cache *c)
{
	size_t n = c->n_buckets * 2;
	struct dns_cache_entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < c->n_buckets; i++) {
		struct dns_cache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->n_buckets = n;
}

static struct dns_cache_entry *lookup(
	const struct dns_cache *c, const uint8_t *key, size_t key_len, uint64_t hash)
{
	struct dns_cache_entry *e = c->buckets[hash & (c->n_buckets - 1)];

	for (; e; e = e->hnext)
		if (e->hash == hash && e->key_len == key_len && !memcmp(e->key, key, key_len))
			return e;
	return NULL;
}

int dns_cache_put(struct dns_cache *c, const struct dns_msg *q, const uint8_t *answer, size_t len,
	const struct dns_msg *a, uint64_t now_ms)
{
	uint8_t key[KEY_MAX];
	size_t key_len;
	uint64_t hash;
	uint32_t ttl, max;
	struct dns_cache_entry *e;

	if (!q->question_end)
		return -EINVAL;
	if (dns_msg_cache_ttl(a, &ttl) < 0 || !dns_msg_same_question(q, a))
		return -ENOENT;
	/* an answer for the client's subnet is not everybody's (RFC 7871 7.3.1 would key it by
	 * the scope; we do not cache it at all) */
	if (q->edns_ecs || a->edns_ecs || !dns_msg_opt_strippable(a))
		return -ENOENT;
	if (len - a->opt_rdlen > max_bytes(c))
		return -ENOENT;
	max = DNS_RCODE(a->flags) == DNS_RCODE_NOERROR && a->ancount ? DNS_CACHE_MAX_TTL
								     : DNS_CACHE_MAX_NEG_TTL;
	if (ttl > max)
		ttl = max;
	key_len = make_key(q, key);
	hash = siphash13(c->k0, c->k1, key, key_len);
	e = lookup(c, key, key_len, hash);
	if (e)
		entry_remove(c, e);
	evict_to(c, c->max - 1, len - a->opt_rdlen);
	if (c->count >= c->n_buckets)
		grow(c);

	e = xcalloc(1, sizeof(*e));
	e->hash = hash;
	memcpy(e->key, key, key_len);
	e->key_len = key_len;
	e->msg = xmalloc(len);
	memcpy(e->msg, answer, len);
	/* the options of its OPT (a COOKIE, padding) were for the client that asked */
	e->len = dns_msg_strip_opt_options(e->msg, len, a);
	c->bytes += e->len;
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)ttl * 1000;
	e->hnext = c->buckets[hash & (c->n_buckets - 1)];
	c->buckets[hash & (c->n_buckets - 1)] = e;
	lru_push(c, e);
	c->count++;
	return 0;
}

int dns_cache_get(struct dns_cache *c, const struct dns_msg *q, uint64_t now_ms, uint8_t **ret,
	size_t *ret_len)
{
	uint8_t key[KEY_MAX], *m;
	size_t key_len;
	uint64_t hash;
	struct dns_cache_entry *e;
	uint16_t flags;

	if (!q->question_end)
		return -ENOENT;
	key_len = make_key(q, key);
	hash = siphash13(c->k0, c->k1, key, key_len);
	e = lookup(c, key, key_len, hash);
	if (!e)
		return -ENOENT;
	if (now_ms >= e->expires_ms || now_ms < e->stored_ms) {
		entry_remove(c, e);
		return -ENOENT;
	}
	lru_unlink(c, e);
	lru_push(c, e);

	m = xmalloc(e->len);
	memcpy(m, e->msg, e->len);
	dns_put16(m, q->id);
	flags = (uint16_t)((dns_get16(m + 2) & ~DNS_FLAG_RD) | (q->flags & DNS_FLAG_RD));
	dns_put16(m + 2, flags);
	/* the asker's spelling, where the stored question is the name written out (always,
	 * but for a resolver that compresses against itself) */
	if (e->len >= DNS_HEADER_LEN + q->qname_len &&
		dns_name_eq(m + DNS_HEADER_LEN, q->qname_len, q->qname, q->qname_len))
		memcpy(m + DNS_HEADER_LEN, q->qname, q->qname_len);
	if (dns_msg_age(m, e->len, (uint32_t)((now_ms - e->stored_ms) / 1000)) < 0) {
		/* names compressed against TTL bytes: no longer the same message */
		free(m);
		entry_remove(c, e);
		return -ENOENT;
	}
	*ret = m;
	*ret_len = e->len;
	return 0;
}
