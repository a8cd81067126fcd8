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
 * new(), so neither needs a member.  What an operator face needs next - a status as JSON,
 * API routes - will be members of struct module filled by the modules that have them
 * (NULL where a module has none), walked by the daemon the same way as new/reconf/free.
 */
#ifndef EGRESS_MODULE_H
#define EGRESS_MODULE_H

#include <stdbool.h>
#include <stddef.h>

struct check_engine;
struct conf;
struct conf_section_type;
struct event_base;
struct metrics;
struct uplink_set;

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
};

#endif
