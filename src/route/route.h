/*
 * route.h - the route module: ECMP routes over the healthy gateways of [route].
 *
 * The gateways are uplinks of the shared model (route_conf.c expands [route] into one
 * [uplink ADDRESS] each, health-checked by the check engine); this module follows their
 * state and has route_dp.c keep the kernel's routes and rules in step, at most once per
 * loop turn.  It also keeps gateway-route-manager's Prometheus metrics.
 */
#ifndef EGRESS_ROUTE_H
#define EGRESS_ROUTE_H

#include "module.h"

struct conf;
struct event_base;
struct metrics;
struct uplink_set;
struct check_engine;
struct route_module;

/*
 * Start the module for conf's [route] (borrowed for the call; the module keeps what it
 * needs).  set, checks and metrics (may be NULL) are borrowed and must outlive the module.
 * Nothing is written to the kernel before the gateways' first checks have answered (or a
 * short settle time passed), so a restart adopts the routes an earlier run left without a
 * gap.  *ret is the caller's: route_module_free().
 */
int route_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct check_engine *checks, struct metrics *metrics, struct route_module **ret);

/* A reload: take the new [route] (borrowed for the call).  0 or -errno (logged). */
int route_module_reconf(struct route_module *rm, const struct conf *conf);

/* Stop: remove our routes and rules unless keep_routes; free (NULL is fine). */
void route_module_free(struct route_module *rm);

/* The module's description for the daemon's table (module.h). */
extern const struct module module_route;

#endif
