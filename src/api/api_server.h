/*
 * api_server.h - the REST API server as the daemon sees it: start, reload, route tables,
 * stop.  What a route handler sees is api.h.
 */
#ifndef EGRESS_API_SERVER_H
#define EGRESS_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "api_route.h"

struct api;
struct conf;
struct event_base;
struct event_log;
struct metrics;
struct uplink_set;

/* What the server serves from, all borrowed: they outlive the server. */
struct api_env {
	struct event_base *base;
	struct uplink_set *uplinks; /* /healthz */
	bool no_uplinks;	    /* a server that has none (egress-server): /healthz is ok */
	struct metrics *metrics;    /* /metrics with [api] metrics = yes */
	struct event_log *events;   /* may be NULL */
	const char *index;	    /* the page "/" serves from web_root; NULL: index.html */
};

/*
 * Serve what conf's [api] says (conf borrowed until the next reconf or free): its TCP
 * listeners and its UNIX socket.  0, or -errno after logging which listener failed.  *ret
 * is the caller's (api_free()).
 */
int api_new(const struct api_env *env, const struct conf *conf, struct api **ret);
/*
 * A reload: take the new conf.  Listeners that changed are replaced on the next loop turn
 * (the request that asked for the reload gets its answer first).  0 or -errno, logged;
 * the server keeps running.
 */
int api_reconf(struct api *a, const struct conf *conf);
/*
 * The route tables to serve, searched in this order: the daemon's own, then the modules'
 * (a stopped module's table with running false and arg NULL).  Copied; the routes they
 * point to must outlive the server.  The daemon calls it whenever a module starts or
 * stops.
 */
void api_set_routes(struct api *a, const struct api_route_table *tables, size_t n);
/* Close every listener, stream and connection (streams' close_cb run).  NULL is fine. */
void api_free(struct api *a);

#endif
