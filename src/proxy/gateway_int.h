/*
 * gateway_int.h - what gateway mode's files share (gateway.c, gateway_api.c): the running
 * module.  Not for other modules: they see gateway.h.
 */
#ifndef EGRESS_GATEWAY_INT_H
#define EGRESS_GATEWAY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"
#include "gateway.h"

struct event;
struct module_env;
struct nl;

struct gateway_module {
	const struct conf *conf;
	struct nft *nft;
	struct nl *nl;
	/* The first change waits for the backup, and the backup for the xtables lock: tried
	 * without waiting, again on a timer of the loop, so the loop runs on meanwhile. */
	struct event *lock_ev;
	int lock_fd;		/* the lock file while waiting for it, else -1 */
	uint64_t lock_deadline; /* now_ms() to give up at; 0: not waiting */
	bool lock_waited;	/* the wait was logged */
	bool starting;		/* no apply has ended yet: a failure fails the start */
	gateway_failed_cb failed_cb;
	void *failed_arg;
	bool applied;
	bool off_logged; /* "switched off" was said */
	char *body;
	bool tproxy_routing;
	uint32_t tproxy_table, tproxy_prio, tproxy_mark;
	struct module_env *env; /* the daemon's (NULL in tests): for the API's changes */
};

/* gateway_api.c */
/* The fork's GET /api/gateway object (a new one, the caller's); m NULL: gateway mode is not
 * configured.  Also the module's status. */
json_t *gateway_info_json(const struct gateway_module *m);
/* The fork's GET /api/gateway/iptables/backup object for m's backup_file. */
json_t *gateway_backup_json(const struct gateway_module *m);
/* GET /api/gateway, POST /api/gateway/toggle, GET|POST /api/gateway/config,
 * GET /api/gateway/iptables/backup, POST /api/gateway/iptables/restore (api.h) */
#define GATEWAY_N_API_ROUTES 6
extern const struct api_route gateway_api_routes[GATEWAY_N_API_ROUTES];

#endif
