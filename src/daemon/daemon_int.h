/*
 * daemon_int.h - what the daemon's files share: daemon.c (life cycle), daemon_change.c (the
 * operator's changes, commit-confirmed, their state) and daemon_api.c (the daemon's routes).
 */
#ifndef EGRESS_DAEMON_INT_H
#define EGRESS_DAEMON_INT_H

#include <stdint.h>

#include "conf.h"
#include "daemon.h"
#include "module.h"
#include "uplink.h"

#define DAEMON_EVENTS_MAX 1000 /* events kept for GET /api/events */

struct api;
struct api_route_table;
struct event;
struct event_log;

/* A change that awaits its confirmation (POST /api/config/confirm). */
struct daemon_pending {
	char *what; /* "uplink.isp1.weight = 3", "configuration" */
	char *who;
	uint64_t deadline_ms; /* monotonic: when it rolls back */
	/* what a rollback goes back to (and what is persisted meanwhile) */
	struct conf_overrides old_settings;
	struct event *timer;
};

struct daemon {
	const struct daemon_opts *opts;
	struct loop *loop;
	struct conf *conf;
	struct uplink_set uplinks;
	struct link_watch *links;
	struct check_engine *checks;
	struct metrics *metrics;
	struct uplink_metrics *uplink_metrics; /* the egress_uplink_* families */
	struct uplink_stats *uplink_stats;     /* what GET /api/uplinks shows */
	struct metrics_server *metrics_server;
	int metrics_port; /* what metrics_server serves on */
	struct addr metrics_address;
	struct event_log *events;
	struct dnswatch *dnswatch; /* DNS answers the dns module passes, lent to every module */
	struct module_env env; /* lent to every module */
	void **running;	       /* per entry of modules[]: the running module, or NULL */
	struct api *api;
	struct api_route_table *api_tables; /* what the API serves, refreshed with the modules */
	unsigned reloads;
	/* The operator's layer on top of the file and the flags (env.change), running now. */
	struct conf_overrides settings;
	/* A configuration posted through the API that awaits its confirmation: the running
	 * configuration's base instead of the file; NULL: the file. */
	char *text;
	struct daemon_pending *pending; /* NULL: nothing awaits a confirmation */
};

/* --- daemon.c --- */

/*
 * The configuration from the layers (text: a posted one in place of the file; settings: the
 * operator's), validated and checked against the running one.  NULL with errs filled.
 */
struct conf *daemon_conf_build(struct daemon *d, const char *text,
	const struct conf_overrides *settings, struct conf_errors *errs);
/*
 * Build as above and apply it as a reload does: the one path of every change of the running
 * configuration.  why (may be NULL) is logged.  -EINVAL with errs filled (nothing changed),
 * else the first error of a module (0 or -errno; the modules keep running).
 */
int daemon_reconfigure(struct daemon *d, const char *text, const struct conf_overrides *settings,
	const char *why, struct conf_errors *errs);

/* --- daemon_change.c --- */

/* env.change (module.h). */
int daemon_change_cb(void *arg, const struct conf_setting *v, size_t n, uint32_t confirm_ms,
	const char *who, struct conf_errors *errs);
/*
 * A whole configuration file, as text, replaces the file and the operator's settings.
 * confirm_ms 0: applied and written to the file at once (the old one kept as FILE.bak).
 * Else applied, and written only when confirmed.  0, -EINVAL (errs), -EBUSY (another change
 * awaits its confirmation), -ENOENT (egressd runs without a file), or -errno.
 */
int daemon_config_post(struct daemon *d, const char *text, uint32_t confirm_ms, const char *who,
	struct conf_errors *errs);
/* Confirm what awaits it: 0, -ENOENT (nothing does), or -errno (it could not be kept; it
 * still awaits). */
int daemon_confirm(struct daemon *d, const char *who);
/* Roll back what awaits its confirmation, now: 0 or -ENOENT. */
int daemon_cancel(struct daemon *d, const char *who);
/* The configuration as `egressd -n` prints it (the caller's, free()). */
char *daemon_conf_text(const struct conf *conf);
/* Read the settings kept in the state folder and apply them (start). */
void daemon_settings_load(struct daemon *d);
/* Release the settings and what awaits a confirmation (stop: nothing is persisted). */
void daemon_change_clear(struct daemon *d);

#endif
