/*
 * daemon.c - egressd's life cycle: start, reload on SIGHUP, stop.
 *
 * Start: take the validated configuration, build the uplink model, learn the
 * uplinks' interfaces from the kernel and follow them through netlink
 * events, start the modules the configuration names (the table of modules.c,
 * in its order: the daemon knows no module by name), then say "ready" (log
 * line and sd_notify).  Reload: parse the file again into a new configuration,
 * validate it, apply the difference, swap; on any error the running
 * configuration stays and the errors are logged.  Stop: release everything,
 * the modules in the reverse order; nothing that egressd added is left behind.
 *
 * Must not block the loop; must not exit on bad input (only on start-up
 * failure or a broken invariant).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "api_server.h"
#include "check.h"
#include "conf_keys.h"
#include "daemon.h"
#include "daemon_api.h"
#include "daemon_int.h"
#include "dnswatch.h"
#include "events.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "module.h"
#include "modules.h"
#include "privs.h"
#include "uplink.h"
#include "api_uplinks.h"
#include "uplink_metrics.h"
#include "uplink_stats.h"
#include "util.h"

/* The metrics endpoint follows [global] metrics_port/metrics_address. */
static int daemon_metrics(struct daemon *d)
{
	const struct conf_global *g = conf_global(d->conf);
	char addr[ADDR_STRLEN];
	int r;

	if (d->metrics_server && g->metrics_port == d->metrics_port &&
		addr_eq(&g->metrics_address, &d->metrics_address))
		return 0;
	metrics_server_free(d->metrics_server);
	d->metrics_server = NULL;
	d->metrics_port = 0;
	if (!g->metrics_port)
		return 0;
	addr_str(&g->metrics_address, addr, sizeof(addr));
	r = metrics_serve(d->metrics, loop_base(d->loop), addr, (uint16_t)g->metrics_port,
		&d->metrics_server);
	if (r < 0) {
		log_error("metrics: cannot listen on [%s]:%d: %s", addr, g->metrics_port,
			strerror(-r));
		return r;
	}
	d->metrics_port = g->metrics_port;
	d->metrics_address = g->metrics_address;
	log_info("metrics: serving http://[%s]:%d/metrics", addr, g->metrics_port);
	return 0;
}

/* A module's start failed once the loop ran (gateway mode: its backup could not be taken,
 * the xtables lock stayed held): a start that fails, as one that fails at once. */
static void daemon_module_failed_cb(void *arg, const char *what)
{
	struct daemon *d = arg;

	log_error("%s could not start: stopping", what);
	loop_fail(d->loop);
}

static void *daemon_module_running(const struct daemon *d, const struct module *m)
{
	for (size_t i = 0; i < modules_n; i++)
		if (modules[i] == m)
			return d->running[i];
	return NULL;
}

/* Start, reconfigure or stop the modules the configuration names, in the table's order.
 * The first error is returned; the other modules are still started or reconfigured. */
static int daemon_modules(struct daemon *d)
{
	int r = 0;

	for (size_t i = 0; i < modules_n; i++) {
		const struct module *m = modules[i];
		void **run = &d->running[i];
		int e = 0;

		if (m->wanted(d->conf) &&
			(*run || !m->needs || daemon_module_running(d, m->needs))) {
			e = *run ? m->reconf(*run, d->conf) : m->new(&d->env, d->conf, run);
		} else if (*run) {
			m->free(*run);
			*run = NULL;
		}
		r = r ? r : e;
	}
	return r;
}

static const struct conf *daemon_conf_cb(void *arg)
{
	return ((struct daemon *)arg)->conf;
}

/* The running modules' counters of an uplink, summed (uplink_stats.h). */
static int daemon_traffic_cb(void *arg, const char *name, struct module_traffic *ret,
	const char **source)
{
	struct daemon *d = arg;
	int r = -ENOENT;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < modules_n; i++) {
		struct module_traffic t;

		if (!d->running[i] || !modules[i]->uplink_traffic ||
			modules[i]->uplink_traffic(d->running[i], name, &t) < 0)
			continue;
		ret->bytes_up += t.bytes_up;
		ret->bytes_down += t.bytes_down;
		ret->connections_active += t.connections_active;
		ret->connections_total += t.connections_total;
		if (r < 0)
			*source = modules[i]->name;
		r = 0;
	}
	return r;
}

/* The running modules' fields of an uplink on the API (module.h uplink_json). */
static void daemon_uplink_extra_cb(void *arg, const struct uplink *u, json_t *o)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < modules_n; i++)
		if (d->running[i] && modules[i]->uplink_json)
			modules[i]->uplink_json(d->running[i], u, o);
}

/* The API's route tables: the daemon's own (daemon_api.c, then the uplinks' of
 * api_uplinks.c), then each module's, running or not (its stopped routes answer 503). */
static void daemon_api_tables(struct daemon *d)
{
	size_t n = 0;

	d->api_tables[n++] = (struct api_route_table){
		.routes = daemon_api_routes,
		.n = daemon_api_n_routes,
		.arg = d,
		.running = true,
	};
	d->api_tables[n++] = (struct api_route_table){
		.routes = api_uplinks_routes,
		.n = api_uplinks_n_routes,
		.arg = d,
		.running = true,
	};
	for (size_t i = 0; i < modules_n; i++) {
		const struct module *m = modules[i];

		if (!m->n_api_routes)
			continue;
		d->api_tables[n++] = (struct api_route_table){
			.module = m->name,
			.routes = m->api_routes,
			.n = m->n_api_routes,
			.arg = d->running[i],
			.running = d->running[i] != NULL,
		};
	}
	api_set_routes(d->api, d->api_tables, n);
}

static void daemon_apply_log_level(struct daemon *d)
{
	if (d->opts->log_level_forced)
		log_set_level((enum log_level)d->opts->forced_level);
	else
		log_set_level((enum log_level)conf_global(d->conf)->log_level);
}

/* Uplinks without an interface or a health check have nothing to wait for: up. */
static void daemon_settle_uplinks(struct daemon *d)
{
	for (size_t i = 0; i < d->uplinks.n; i++) {
		struct uplink *u = d->uplinks.v[i];
		if (!u->ifname[0] && u->check.kind == CHECK_NONE && u->state == UPLINK_INIT)
			uplink_transition(&d->uplinks, u, UPLINK_UP, "no interface to watch");
	}
}

static void daemon_status(struct daemon *d, const char *what)
{
	char list[1024], msg[1200];
	size_t off = 0;
	unsigned up = 0;

	list[0] = '\0';
	for (size_t i = 0; i < d->uplinks.n && off < sizeof(list); i++) {
		const struct uplink *u = d->uplinks.v[i];
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s %s", i ? ", " : "",
			u->name, uplink_state_name[u->state]);
		up += u->state == UPLINK_UP;
	}
	snprintf(msg, sizeof(msg), "%zu uplink%s, %u up%s%s%s", d->uplinks.n,
		d->uplinks.n == 1 ? "" : "s", up, d->uplinks.n ? " (" : "", list,
		d->uplinks.n ? ")" : "");
	log_info("egressd %s %s: %s", EGRESS_VERSION, what, msg);
	char notify[1300];
	snprintf(notify, sizeof(notify), "READY=1\nSTATUS=%s", msg);
	loop_notify(notify);
}

/* Uplink transitions go to the event log. */
static void daemon_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct daemon *d = arg;
	const char *from = uplink_state_name[u->prev_state], *to = uplink_state_name[u->state];

	if (ev != UPLINK_STATE)
		return;
	event_log_add(d->events, EVENT_TRANSITION, NULL,
		json_pack("{s:s, s:s, s:s, s:s}", "uplink", u->name, "from", from, "to", to,
			"reason", u->reason),
		"uplink %s: %s -> %s (%s)", u->name, from, to, u->reason);
}

/* The errors of errs as a JSON array of their messages. */
static json_t *daemon_errors_json(const struct conf_errors *errs)
{
	json_t *list = json_array();

	for (size_t i = 0; i < errs->n; i++)
		json_array_append_new(list, json_string(errs->msgs[i]));
	return list;
}

struct conf *daemon_conf_build(struct daemon *d, const char *text,
	const struct conf_overrides *settings, struct conf_errors *errs)
{
	struct conf *conf;

	conf = egress_conf_layers(d->opts->conf_path, text, d->opts->overrides, settings, d->conf,
		errs);
	if (conf && egress_conf_check_reload(d->conf, conf, errs) < 0) {
		conf_free(conf);
		conf = NULL;
	}
	return conf;
}

int daemon_reconfigure(struct daemon *d, const char *text, const struct conf_overrides *settings,
	const char *why, struct conf_errors *errs)
{
	struct conf *conf = daemon_conf_build(d, text, settings, errs);
	struct conf *old = d->conf;
	int r;

	if (!conf)
		return -EINVAL;
	d->conf = conf;
	daemon_apply_log_level(d);
	unsigned changes = uplink_set_sync(&d->uplinks, conf);
	link_watch_refresh(d->links);
	daemon_settle_uplinks(d);
	daemon_metrics(d);
	r = daemon_modules(d);
	api_reconf(d->api, conf);
	daemon_api_tables(d);
	conf_free(old);
	d->reloads++;
	log_info("reload %u: %u change%s%s%s", d->reloads, changes, changes == 1 ? "" : "s",
		why ? ": " : "", why ? why : "");
	daemon_status(d, "reloaded");
	return r;
}

static void daemon_reload_cb(void *arg)
{
	struct daemon *d = arg;
	struct conf_errors errs = {0};

	loop_notify("RELOADING=1");
	if (daemon_reconfigure(d, d->text, &d->settings, NULL, &errs) == -EINVAL) {
		log_error("reload failed, keeping the running configuration:");
		for (size_t i = 0; i < errs.n; i++)
			log_error("  %s", errs.msgs[i]);
		event_log_add(d->events, EVENT_CONFIG, NULL,
			json_pack("{s:o}", "errors", daemon_errors_json(&errs)),
			"reload failed, keeping the running configuration");
		conf_errors_clear(&errs);
		loop_notify("READY=1\nSTATUS=reload failed, running the previous configuration");
		return;
	}
	event_log_add(d->events, EVENT_CONFIG, NULL, json_pack("{s:I}", "reload",
		(json_int_t)d->reloads), "reload %u (SIGHUP)", d->reloads);
}

/* The proxy holds two sockets per connection: a soft limit of 1024 would cap it at ~500. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open file limit");
	}
}

int daemon_run(const struct daemon_opts *opts, struct conf *conf)
{
	struct daemon d = {.opts = opts, .conf = conf, .settings = {.where = "operator setting"}};
	int r, sig, status = 1;

	d.running = xcalloc(modules_n, sizeof(*d.running));
	d.api_tables = xcalloc(modules_n + 2, sizeof(*d.api_tables)); /* the daemon's two first */
	raise_nofile();
	d.loop = loop_new();
	if (!d.loop) {
		log_error("cannot set up the event loop");
		goto out;
	}
	daemon_apply_log_level(&d);
	d.events = event_log_new(DAEMON_EVENTS_MAX);
	r = event_log_take_errors(d.events, loop_base(d.loop));
	if (r < 0) {
		log_error("event log: cannot take in error lines: %s", strerror(-r));
		goto out;
	}
	daemon_settings_load(&d); /* before anything reads the configuration */
	daemon_apply_log_level(&d);
	uplink_set_init(&d.uplinks);
	uplink_set_subscribe(&d.uplinks, daemon_uplink_cb, &d);
	uplink_set_sync(&d.uplinks, d.conf);
	r = link_watch_new(loop_base(d.loop), &d.uplinks, &d.links);
	if (r < 0) {
		log_error("netlink: cannot watch links: %s", strerror(-r));
		goto out;
	}
	/* after the link watcher, so the first rounds see the links' state */
	r = check_engine_new(loop_base(d.loop), &d.uplinks, &d.checks);
	if (r < 0) {
		log_error("health checks: cannot start: %s", strerror(-r));
		goto out;
	}
	d.metrics = metrics_new();
	r = uplink_metrics_new(d.metrics, &d.uplinks, d.checks,
		(const struct conf *const *)&d.conf, &d.uplink_metrics);
	if (r < 0) {
		log_error("metrics: cannot register the uplinks' families: %s", strerror(-r));
		goto out;
	}
	r = daemon_metrics(&d);
	if (r < 0)
		goto out;
	r = uplink_stats_new(&(struct uplink_stats_deps){.base = loop_base(d.loop),
				     .set = &d.uplinks, .checks = d.checks, .conf_cb = daemon_conf_cb,
				     .traffic_cb = daemon_traffic_cb,
				     .extra_cb = daemon_uplink_extra_cb, .arg = &d},
		&d.uplink_stats);
	if (r < 0)
		goto out;
	r = dnswatch_new(&d.dnswatch);
	if (r < 0) {
		log_error("DNS watch: %s", strerror(-r));
		goto out;
	}
	d.env = (struct module_env){
		.base = loop_base(d.loop),
		.uplinks = &d.uplinks,
		.checks = d.checks,
		.metrics = d.metrics,
		.failed_cb = daemon_module_failed_cb,
		.failed_arg = &d,
		.events = d.events,
		.dnswatch = d.dnswatch,
		.change = daemon_change_cb,
		.change_arg = &d,
	};
	r = daemon_modules(&d);
	if (r < 0)
		goto out;
	r = api_new(&(struct api_env){.base = loop_base(d.loop), .uplinks = &d.uplinks,
			    .metrics = d.metrics, .events = d.env.events},
		d.conf, &d.api);
	if (r < 0)
		goto out;
	daemon_api_tables(&d);
	r = privs_drop();
	if (r < 0) {
		log_error("cannot drop privileges: %s", strerror(-r));
		goto out;
	}
	daemon_settle_uplinks(&d);
	loop_set_reload(d.loop, daemon_reload_cb, &d);
	daemon_status(&d, "ready");

	sig = loop_run(d.loop);
	loop_notify("STOPPING=1");
	status = sig < 0 ? 1 : 0;
out:
	api_free(d.api);
	free(d.api_tables);
	uplink_stats_free(d.uplink_stats); /* it asks the modules */
	for (size_t i = modules_n; i-- > 0;)
		modules[i]->free(d.running[i]);
	free(d.running);
	dnswatch_free(d.dnswatch); /* after the modules: they unsubscribe */
	metrics_server_free(d.metrics_server);
	uplink_metrics_free(d.uplink_metrics);
	check_engine_free(d.checks);
	link_watch_free(d.links);
	uplink_set_clear(&d.uplinks);
	metrics_free(d.metrics);
	daemon_change_clear(&d);
	event_log_free(d.events); /* after the modules: their threads log no more */
	loop_free(d.loop);
	conf_free(d.conf);
	log_info("stopped");
	return status;
}
