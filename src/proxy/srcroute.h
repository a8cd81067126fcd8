/*
 * srcroute.h - source routing for uplinks that are local addresses.
 *
 * go-dispatch-proxy binds each connection's source address and hopes the
 * kernel sends it out of the right interface; with one default route it does
 * not.  For every uplink with a `source`, we keep a routing table with a
 * default route through the interface that holds the address (via the
 * uplink's gateway, or the gateway of main's default route on that
 * interface) and the rules "from SOURCE lookup main suppress_prefixlength 0"
 * and "from SOURCE lookup TABLE", so whatever binds the address (proxy
 * connections, DNS queries, health probes) leaves through its uplink unless
 * main has a more specific route (the LAN, to which replies from the address
 * must go back; a VPN).
 */
#ifndef EGRESS_SRCROUTE_H
#define EGRESS_SRCROUTE_H

struct event_base;
struct conf;
struct srcroute;

/* Follows address and route changes on base's loop.  conf is borrowed until the next
 * srcroute_reconf() or srcroute_free().  *ret is the caller's. */
int srcroute_new(struct event_base *base, const struct conf *conf, struct srcroute **ret);
int srcroute_reconf(struct srcroute *s, const struct conf *conf);
/* Removes the rules and routes (keep: leave them). */
void srcroute_free(struct srcroute *s, bool keep);

#endif
