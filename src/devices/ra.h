/*
 * ra.h - router advertisements seen on the WAN: does the upstream offer IPv6, and how.
 *
 * A raw ICMPv6 socket bound to the WAN interface, filtered to router advertisements
 * (ICMP6_FILTER), on the loop.  Every RA that parses is reported with what the devices
 * module acts on: the router's link-local address (the devices' IPv6 default route), the M
 * and O flags (DHCPv6 for addresses / other configuration), the router lifetime (0: not a
 * default router) and its prefixes with the A flag (SLAAC).  A Router Solicitation can be
 * sent at start (and on a WAN link change) instead of waiting for the next periodic RA.
 * The RA parser is pure (ra_parse()) and fuzzed.
 */
#ifndef EGRESS_RA_H
#define EGRESS_RA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

struct event_base;
struct ra_watch;

#define RA_PREFIX_MAX 8

struct ra_prefix {
	struct cidr prefix;
	bool onlink, autonomous; /* L and A flags */
	uint32_t valid_s, preferred_s;
};

struct ra_info {
	struct addr router;	/* the RA's source (link-local) */
	uint8_t router_mac[6];	/* source link-layer address option; all zero: none */
	bool managed, other;	/* M, O */
	uint16_t lifetime_s;	/* router lifetime */
	struct ra_prefix prefixes[RA_PREFIX_MAX];
	size_t n_prefixes;
	uint32_t mtu;		/* 0: no MTU option */
};

/* An ICMPv6 router advertisement (the ICMPv6 message, from its type byte): 0 or -EBADMSG. */
int ra_parse(const uint8_t *msg, size_t len, const struct addr *src, struct ra_info *ret);

typedef void (*ra_cb)(void *arg, const struct ra_info *ra);

int ra_watch_new(struct event_base *base, int ifindex, ra_cb cb, void *arg, struct ra_watch **ret);
/* Send a router solicitation on the interface now.  0 or -errno. */
int ra_watch_solicit(struct ra_watch *w);
/* The last RA seen (NULL: none yet) and when (monotonic ms). */
const struct ra_info *ra_watch_last(const struct ra_watch *w, int64_t *at_ms);
void ra_watch_free(struct ra_watch *w);

#endif
