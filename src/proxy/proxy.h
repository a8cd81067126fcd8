/*
 * proxy.h - the proxy module: SOCKS4/4a/5 and HTTP proxy on one port, transparent
 * proxy (REDIRECT and TPROXY), tunnel mode; connections spread over the usable uplinks
 * by contention ratio (go-dispatch-proxy and its gateway mode, done right).
 */
#ifndef EGRESS_PROXY_H
#define EGRESS_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "module.h"

struct conf;
struct event_base;
struct metrics;
struct uplink_set;
struct proxy_module;

/* conf and set are borrowed (conf until the next reconf); metrics may be NULL. */
int proxy_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct metrics *metrics, struct proxy_module **ret);
/* Listeners move when their address or port changed; existing connections stay. */
int proxy_module_reconf(struct proxy_module *pm, const struct conf *conf);
void proxy_module_free(struct proxy_module *pm);

/* Counters of one uplink (also of one client, in the client table). */
struct proxy_stats {
	uint64_t active, total, failed;
	uint64_t bytes_up, bytes_down; /* finished connections; add the live ones' counters */
};
/* Totals per uplink by name; 0 if found, -ENOENT.  For the API and tests. */
int proxy_uplink_stats(struct proxy_module *pm, const char *uplink, struct proxy_stats *ret);

/* The module's description for the daemon's table (module.h). */
extern const struct module module_proxy;

#endif
