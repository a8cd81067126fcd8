/*
 * dns.h - the DNS forwarder: answers clients on UDP (and TCP) at [dns] address:port by
 * asking the resolvers of the usable uplinks, each reached through its own uplink (source
 * address, interface, mark), plus [dns] upstream through the main table.
 *
 * UDP is served by [dns] workers (one per CPU by default): a socket each in one
 * SO_REUSEPORT group, each with its own loop (worker 0 on the daemon's, with TCP; the
 * others on threads), sharing one cache.  Every upstream query has a fresh random ID on a
 * socket of a pool rotated to new random ports; an answer counts only if it comes from the
 * resolver asked, with that ID and that question.
 * Answers are relayed whole (EDNS0 OPT untouched), never cut: one that does not fit the
 * client's UDP size becomes header + question with TC set, so the client asks over TCP.
 * Answers are cached (dns_cache.c) for their TTL.  Counters are in the metrics registry
 * as egress_dns_*.  Every NOERROR answer with addresses, from an upstream or the cache, is
 * told to the daemon's DNS watch (dnswatch.h) before it is sent, when anyone listens.
 *
 * Must not touch routes, rules or nftables: an upstream socket leaves through its uplink
 * by the socket options alone.
 */
#ifndef EGRESS_DNS_H
#define EGRESS_DNS_H

#include "module.h"

struct conf;
struct dns_module;
struct event_base;
struct metrics;
struct uplink_set;

/*
 * Start the forwarder of conf's [dns] section (which must exist) on base.  conf is
 * borrowed for the call only (what is needed is copied); set and metrics (NULL: no
 * metrics) are borrowed and must outlive the module.  *ret is the caller's
 * (dns_module_free).  Returns 0, or -errno when a listener cannot be opened.
 */
int dns_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct metrics *metrics, struct dns_module **ret);

/*
 * Take a new configuration (borrowed for the call).  The listeners move when address,
 * port, tcp or workers changed (on error the old ones stay and -errno is returned; the
 * thread workers start again, their queries dropped unanswered); resolvers,
 * timeouts and bounds apply to queries asked from now on; the cache is resized (emptied
 * when it shrinks below its fill).
 */
int dns_module_reconf(struct dns_module *m, const struct conf *conf);

/* Close every socket, drop pending queries unanswered, free m.  NULL is accepted. */
void dns_module_free(struct dns_module *m);

/* The module's description for the daemon's table (module.h). */
extern const struct module module_dns;

#endif
