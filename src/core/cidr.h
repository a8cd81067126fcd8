/*
 * cidr.h - IPv4/IPv6 addresses, CIDR prefixes and sets of prefixes.
 *
 * Pure code: parsing, formatting and exact set algebra on address ranges.  Nothing here
 * logs, touches the kernel or keeps global state; errors are returned as -errno so that the
 * config and API layers can name the offending field.
 */
#ifndef EGRESS_CIDR_H
#define EGRESS_CIDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address of either family.  family 0 means unset; b[] aliases the address bytes. */
struct addr {
	int family; /* AF_INET, AF_INET6 or 0 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t b[16];
	};
};

#define ADDR_STRLEN INET6_ADDRSTRLEN
#define CIDR_STRLEN (INET6_ADDRSTRLEN + 4) /* "/128" */

/* Parse an IPv4 or IPv6 literal (inet_pton rules: no leading zeros, no spaces, no zone). */
int addr_parse(const char *s, struct addr *ret);
/* As addr_parse, restricted to family (AF_UNSPEC = either); -EINVAL for the other family. */
int addr_parse_family(const char *s, int family, struct addr *ret);
/*
 * "ADDR:PORT" or "[IPV6]:PORT", port 1-65535 (host order); the last colon separates the
 * port.  -EINVAL for anything else.
 */
int addr_port_parse(const char *s, struct addr *ret, uint16_t *ret_port);
/* Format into buf (caller's, ADDR_STRLEN bytes); returns buf.  "unset" for an unset address. */
const char *addr_str(const struct addr *a, char *buf, size_t len);
/* Total order: unset < IPv4 < IPv6, then by address bytes. */
int addr_cmp(const struct addr *a, const struct addr *b);
bool addr_eq(const struct addr *a, const struct addr *b);
bool addr_is_set(const struct addr *a);
/* 0.0.0.0 or :: (an unset address is not). */
bool addr_is_any(const struct addr *a);
/* a += n within its family; -ERANGE (a unchanged) past the last address, -EINVAL if unset. */
int addr_add(struct addr *a, uint64_t n);
/*
 * Number of addresses in [first, last].  -EINVAL if unset, families differ or last < first;
 * -ERANGE if the count does not fit in 64 bits (large IPv6 ranges).
 */
int addr_range_count(const struct addr *first, const struct addr *last, uint64_t *ret);
/* Bytes in an address of family: 4, 16, or 0 for anything else. */
size_t addr_len(int family);
/* Turn an IPv4-mapped IPv6 address (::ffff:a.b.c.d) into IPv4; true if it did. */
bool addr_unmap_v4(struct addr *a);
/*
 * Read an AF_INET/AF_INET6 socket address (borrowed); *ret_port (optional) in host order.
 * -EAFNOSUPPORT for any other family.
 */
int addr_from_sockaddr(const struct sockaddr *sa, struct addr *ret, uint16_t *ret_port);
/*
 * Fill *ret (caller's storage) and *ret_len (optional); port in host order.
 * -EAFNOSUPPORT if a is unset.
 */
int addr_to_sockaddr(const struct addr *a, uint16_t port, struct sockaddr_storage *ret,
	socklen_t *ret_len);

/* A prefix.  Host bits (past plen) are always zero in a prefix made by this module. */
struct cidr {
	struct addr addr;
	uint8_t plen;
};

/* cidr_parse() flags. */
enum {
	CIDR_BARE = 1,	   /* "1.2.3.4" without "/n" means /32 (/128 for IPv6) */
	CIDR_HOSTBITS = 2, /* accept "10.1.2.3/8" and clear the host bits */
	CIDR_V4 = 4,	   /* only IPv4 (with CIDR_V6 too: either family) */
	CIDR_V6 = 8,	   /* only IPv6 */
	CIDR_DEFAULT = 16, /* accept "default": 0.0.0.0/0 with only CIDR_V4, ::/0 with only
			    * CIDR_V6, else the default of each family (cidr_is_any_default()) */
};

/*
 * Parse "addr/plen".  The prefix length is decimal without sign or leading zeros.
 * -EINVAL bad syntax or wrong family, -ERANGE prefix length too long for the family,
 * -EDOM host bits set (without CIDR_HOSTBITS).
 */
int cidr_parse(const char *s, unsigned flags, struct cidr *ret);
/* Short static text for a cidr_parse()/pfxset error (sign ignored), e.g. "host bits set". */
const char *cidr_strerror(int err);
/* "default" of no one family (AF_UNSPEC, /0): its user decides which families it covers.
 * A prefix set takes it as both families' /0; cidr_contains*() never match it. */
bool cidr_is_any_default(const struct cidr *c);
/* Format "addr/plen" (or "default") into buf (caller's, CIDR_STRLEN bytes); returns buf. */
const char *cidr_str(const struct cidr *c, char *buf, size_t len);
/* Prefix holding the single address a (/32 or /128). */
void cidr_from_addr(const struct addr *a, struct cidr *ret);
/* Zero the bits of c->addr past c->plen. */
void cidr_clear_hostbits(struct cidr *c);
/* a lies inside c (false for different families). */
bool cidr_contains(const struct cidr *c, const struct addr *a);
/* Every address of inner lies inside outer. */
bool cidr_contains_cidr(const struct cidr *outer, const struct cidr *inner);
/* By family, then address, then prefix length (shorter first). */
int cidr_cmp(const struct cidr *a, const struct cidr *b);

/*
 * A set of addresses of both families, kept per family as sorted, merged, non-overlapping
 * ranges; all operations are exact set algebra.  Embed it: pfxset_init() before use,
 * pfxset_clear() to free (the set stays usable and empty).
 *
 * Additions are appended and merged on the next read, so adding n prefixes in any order
 * costs O(n log n) in all.  Because of that, functions that take a const set may still
 * reorganise its private storage: never read one set from two threads without a lock.
 *
 * A family holds at most PFXSET_MAX_RANGES disjoint ranges; operations that would exceed it
 * return -E2BIG and leave the set unchanged.
 */
#define PFXSET_MAX_RANGES (4u << 20)
/* pfxset_to_cidrs() returns -E2BIG rather than allocate more prefixes than this. */
#define PFXSET_MAX_CIDRS (16u << 20)

struct pfxset_family; /* private to cidr.c */

struct pfxset {
	struct pfxset_family *fam[2]; /* IPv4, IPv6; NULL while empty */
};

void pfxset_init(struct pfxset *s);
void pfxset_clear(struct pfxset *s);
/* Union with one prefix (host bits in c are ignored).  -EINVAL for an unset family. */
int pfxset_add(struct pfxset *s, const struct cidr *c);
int pfxset_add_addr(struct pfxset *s, const struct addr *a);
/* Union with [first, last]; -EINVAL if families differ or last < first. */
int pfxset_add_range(struct pfxset *s, const struct addr *first, const struct addr *last);
/* Subtract one prefix. */
int pfxset_remove(struct pfxset *s, const struct cidr *c);
/* s = s | other, s - other, s & other; other is borrowed and may be s itself. */
int pfxset_union(struct pfxset *s, const struct pfxset *other);
int pfxset_subtract(struct pfxset *s, const struct pfxset *other);
int pfxset_intersect(struct pfxset *s, const struct pfxset *other);
/* Complement within family's whole space (AF_UNSPEC: both); the other family is untouched. */
int pfxset_complement(struct pfxset *s, int family);
/* dst (initialised; its old contents are freed) becomes a copy of src (borrowed). */
int pfxset_copy(struct pfxset *dst, const struct pfxset *src);
bool pfxset_contains(const struct pfxset *s, const struct addr *a);
bool pfxset_equal(const struct pfxset *a, const struct pfxset *b);
bool pfxset_empty(const struct pfxset *s);
/*
 * The fewest prefixes covering exactly the set's addresses of family (AF_UNSPEC: IPv4 then
 * IPv6), sorted by address.  *ret is a new array owned by the caller (free()), NULL if *n is 0.
 */
int pfxset_to_cidrs(const struct pfxset *s, int family, struct cidr **ret, size_t *n);
/* How many prefixes pfxset_to_cidrs() would return. */
size_t pfxset_count_cidrs(const struct pfxset *s, int family);
/*
 * Add the special-purpose ranges that are not globally reachable (RFC 6890 and the IANA
 * registries it created, plus multicast) of family (AF_UNSPEC: both).
 */
int pfxset_add_reserved(struct pfxset *s, int family);
/*
 * Does any part of c lie in those ranges?  NULL if not, else a static phrase naming the
 * first range it meets: "is private (RFC 1918)" when c lies inside it, "includes private
 * (RFC 1918)" when c covers part of it.  NULL for an unset family.
 */
const char *cidr_reserved(const struct cidr *c);
/*
 * Add every prefix of a list separated by commas and/or white space (flags as cidr_parse()).
 * All or nothing: on error s is unchanged and *bad_token (optional) points into list at the
 * offending token, which ends at the next separator (NULL when no token is to blame, e.g.
 * -E2BIG from the final union).  An empty list adds nothing.
 */
int pfxset_parse(struct pfxset *s, const char *list, unsigned flags, const char **bad_token);

#endif
