/*
 * server.h - egress-server's parts as they see each other.
 *
 * egress-server (src/cmd/egress-server.c -> server.c) reads its config
 * (-server-conf-path FILE, INI like egress.conf: [server], [store], [resolver], [hub] and
 * the [api] section egressd has), opens the store, starts the API server (src/api/: the
 * same auth, CSRF, tokens and JSON conventions as egressd's), the resolver and the hub,
 * and serves the allowlist's routes (server_api.c) and web page (web/allowlist.html).
 * It needs no capability at all.
 *
 * Each part owns its section's keys in its own *_conf.c and registers its type in the
 * table of server_conf.c.
 */
#ifndef EGRESS_SERVER_H
#define EGRESS_SERVER_H

#include <stdint.h>

#include <jansson.h>

struct api;
struct api_route_table;
struct conf;
struct event_base;
struct event_log;
struct hub;
struct metrics;
struct resolver;
struct store;

/* One process of egress-server (a replica). */
struct server {
	struct event_base *base;
	struct conf *conf;	   /* the running one; replaced on SIGHUP */
	const char *name;	   /* [server] name: this replica's, "hostname" by default */
	struct store *store;
	struct resolver *resolver; /* runs while store_leader() */
	struct hub *hub;
	struct api *api;
	struct event_log *events;
	struct metrics *metrics;
};

/* The section types of egress-server's config, in the order -n prints them. */
extern const struct conf_section_type *const server_conf_types[];
extern const size_t n_server_conf_types;

/* --- resolver (resolver.c): re-resolves every domain entry, publishes its addresses --- */

/* Start resolving every domain entry of srv->store, as [resolver] says.  *ret the caller's. */
int resolver_new(struct server *srv, struct resolver **ret);
int resolver_reconf(struct resolver *r, const struct conf *conf);
void resolver_free(struct resolver *r);
/* Entry `entry` was added (resolve it now) or deleted (forget it). */
void resolver_entry_added(struct resolver *r, int64_t entry);
void resolver_entry_deleted(struct resolver *r, int64_t entry);
/*
 * What the resolver knows of a domain entry, for the API: {"addresses": [{"address",
 * "ttl", "expires"|"grace_until"}], "resolved_at", "next_at", "error", "refused":
 * [{"address", "why"}], "publishes_nothing": "resolves only to reserved addresses"}.
 * NULL when it knows nothing (not a domain, or not resolved yet).  New reference.
 */
json_t *resolver_entry_status(struct resolver *r, int64_t entry);
/* Whole-resolver status: leader or not, domains, last round, errors.  New reference. */
json_t *resolver_status(struct resolver *r);

/* --- hub (hub.c): the gateways' WebSocket endpoint /ws --- */

int hub_new(struct server *srv, struct hub **ret);
int hub_reconf(struct hub *h, const struct conf *conf);
void hub_free(struct hub *h);
/*
 * The hub's API routes (GET [hub] path, a WebSocket), as a table for api_set_routes():
 * *ret is filled; the routes live as long as h.
 */
void hub_routes(struct hub *h, struct api_route_table *ret);
/*
 * Every gateway known to the store (all replicas): {"name", "replica", "peer",
 * "connected", "version", "lag" (versions behind), "last_seen" (ISO 8601)}.  New
 * reference (an array).
 */
json_t *hub_gateways(struct hub *h);

#endif
