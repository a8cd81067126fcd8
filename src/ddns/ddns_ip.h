/*
 * ddns_ip.h - the pure parts of the DDNS module: a public address service's reply, and
 * sets of addresses with their difference (what a provider adds and deletes).
 *
 * No I/O, no logging, no clock: unit-tested and fuzzed as they are.
 */
#ifndef EGRESS_DDNS_IP_H
#define EGRESS_DDNS_IP_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"

/* A reply is read up to this many bytes. */
#define DDNS_REPLY_MAX 4096

/*
 * The address in a public address service's reply (body of len bytes, not NUL-terminated):
 * the address alone as text ("203.0.113.7\n"), or a JSON object with it as a string under
 * "public_ip", "ip_address", "ip_addr" or "ip" (in that order).  IPv4 or IPv6; an IPv4
 * address mapped in IPv6 is taken as IPv4.  0, or -EINVAL with what was wrong in why.
 */
int ddns_ip_parse(const char *body, size_t len, struct addr *ret, char *why, size_t whylen);

/* A set of addresses, sorted (addr_cmp) and without duplicates.  Zero is empty. */
struct ddns_set {
	struct addr *v;
	size_t n, cap;
};

void ddns_set_clear(struct ddns_set *s);
/* Add a (once). */
void ddns_set_add(struct ddns_set *s, const struct addr *a);
bool ddns_set_has(const struct ddns_set *s, const struct addr *a);
bool ddns_set_equal(const struct ddns_set *a, const struct ddns_set *b);
void ddns_set_copy(struct ddns_set *dst, const struct ddns_set *src);
/* How many of family (AF_INET, AF_INET6). */
size_t ddns_set_count(const struct ddns_set *s, int family);
/* What turns have into want: *add (in want, not in have) and *del (in have, not in want);
 * both are cleared first. */
void ddns_set_diff(const struct ddns_set *have, const struct ddns_set *want, struct ddns_set *add,
	struct ddns_set *del);
/* "203.0.113.7, 2001:db8::7" (or "none") into buf. */
const char *ddns_set_str(const struct ddns_set *s, char *buf, size_t len);

#endif
