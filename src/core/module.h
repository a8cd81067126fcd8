/*
 * module.h - what a module of egressd is to the daemon.
 *
 * A module (route, policy, proxy, dns, gateway mode, ...) describes itself in one
 * const struct module in its own folder; the daemon (src/daemon/) walks a table of such
 * descriptions, in the table's order to start and reconfigure, in the reverse order to
 * stop, and knows no module by name.  This header is the whole contract: it names no
 * module, and core includes no module's header.
 *
 * Not here, and why: modules follow the uplinks' state by subscribing to the uplink set
 * (uplink_set_subscribe) and register their Prometheus families in env->metrics from
 * new(), so neither needs a member.  Their face to an operator - status as JSON, API
 * routes (src/api/api.h) - are members filled by the modules that have them (NULL where a
 * module has none), walked by the daemon the same way as new/reconf/free.
 */
#ifndef EGRESS_MODULE_H
#define EGRESS_MODULE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <stdint.h>

struct api_route;
struct check_engine;
struct conf;
struct conf_errors;
struct conf_section_type;
struct dnswatch;
struct event_base;
struct event_log;
struct metrics;
struct uplink;
struct uplink_set;

/* One key of the running configuration, as an operator changes it through the API. */
struct conf_setting {
	const char *section; /* type: "uplink", "gateway" */
	const char *name;    /* section name ("isp1"), or NULL for an unnamed section */
	const char *key;
	const char *value; /* as in egress.conf; NULL: back to what the file and flags say */
};

/* What the daemon lends every module; all of it outlives every module. */
struct module_env {
	struct event_base *base;
	struct uplink_set *uplinks;
	struct check_engine *checks;
	struct metrics *metrics;
	/*
	 * For a start that fails on the loop after new() returned 0: the daemon logs
	 * "WHAT could not start: stopping" and stops.  failed_arg is the daemon's.
	 */
	void (*failed_cb)(void *failed_arg, const char *what);
	void *failed_arg;
	/* The daemon's event log (events.h): modules add their applies and errors there. */
	struct event_log *events;
	/* DNS answers as the dns module passes them (dnswatch.h). */
	struct dnswatch *dnswatch;
	/*
	 * Change the running configuration as an operator does (the API): the settings go on
	 * top of the file and the flags, are validated and applied like a reload, and survive
	 * a restart.  confirm_ms > 0: taken back by themselves unless confirmed in time
	 * (POST /api/config/confirm).  who names the operator in the event log.  Returns 0;
	 * -EINVAL with errs filled (nothing changed); -EBUSY while another change awaits its
	 * confirmation; or -errno (rolled back).
	 */
	int (*change)(void *change_arg, const struct conf_setting *v, size_t n, uint32_t confirm_ms,
		const char *who, struct conf_errors *errs);
	void *change_arg;
};

/* What a module carried through one uplink since it started (GET /api/uplinks). */
struct module_traffic {
	uint64_t bytes_up;   /* towards the uplink (client to server) */
	uint64_t bytes_down; /* back from it */
	uint64_t connections_active, connections_total;
};

struct module {
	const char *name;
	/* Its sections of egress.conf, described in its folder (e.g. route_conf.c), in the
	 * order `egressd -n` prints them; the daemon's table of section types lists every
	 * module's, in the module table's order, after [global] and [uplink]. */
	const struct conf_section_type *const *conf_types;
	size_t n_conf_types;
	/* Does conf ask for this module (has its section)?  Pure. */
	bool (*wanted)(const struct conf *conf);
	/* NULL, or a module that must be running for this one to start (it sends its
	 * traffic there); once started, this one stays while conf wants it. */
	const struct module *needs;
	/*
	 * Start for conf (borrowed until the next reconf or free).  *ret is the daemon's,
	 * set even when new() fails (NULL, or what must be freed): free(*ret).
	 * 0 or -errno, logged.
	 */
	int (*new)(struct module_env *env, const struct conf *conf, void **ret);
	/* A reload: take the new conf (as for new).  0 or -errno, logged; keeps running. */
	int (*reconf)(void *m, const struct conf *conf);
	/* Stop and release what the module added to the kernel; NULL is fine. */
	void (*free)(void *m);
	/* NULL, or its status for GET /api/modules: a new JSON object (the caller owns it). */
	json_t *(*status)(void *m);
	/*
	 * NULL, or its counters of uplink `name`: 0, or -ENOENT if it has no such uplink.  For
	 * the throughput and share GET /api/uplinks shows where the kernel has no counters of
	 * the uplink's own (an uplink that is a source address, not an interface).
	 */
	int (*uplink_traffic)(void *m, const char *name, struct module_traffic *ret);
	/*
	 * NULL, or add what it knows of uplink u to o, that uplink's object on GET /api/uplinks
	 * (the ddns module: its public addresses).  Fields named after the module's subject,
	 * never a secret; o is borrowed for the call.
	 */
	void (*uplink_json)(void *m, const struct uplink *u, json_t *o);
	/* Its API routes (api.h); handlers get the running module as arg. */
	const struct api_route *api_routes;
	size_t n_api_routes;
};

#endif
