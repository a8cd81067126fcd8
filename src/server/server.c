/*
 * server.c - egress-server's life cycle on one libevent loop: open the store, serve the
 * API (src/api/, with the allowlist's routes of server_api.c and its page), start the
 * resolver and the gateways' hub (its WebSocket route on the API's listeners), say "ready";
 * reload on SIGHUP (parse the file again, validate, swap; on any error the running
 * configuration stays and the errors are logged); stop on SIGTERM or SIGINT.
 *
 * The logins and token changes the API's authentication makes go to its event log; they
 * are copied into the store's audit log, beside the entries' changes.
 *
 * Must not block the loop; must not exit on bad input (only on a failed start).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_server.h"
#include "conf.h"
#include "events.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "server.h"
#include "server_api.h"
#include "server_conf.h"
#include "server_main.h"
#include "store.h"
#include "util.h"

#define SERVER_EVENTS_MAX 256 /* the API's event log: logins, tokens */
#define SERVER_PAGE "allowlist.html"

struct server_run {
	struct server srv;
	const struct server_opts *opts;
	struct loop *loop;
	char name[64]; /* [server] name, or the host name */
	struct api_route_table tables[2]; /* the allowlist's routes, the hub's */
	unsigned reloads;
};

static void server_apply_conf(struct server_run *s)
{
	const struct conf_server *c = conf_server(s->srv.conf);

	log_set_level(s->opts->log_level_forced ? LOG_LEVEL_DEBUG : (enum log_level)c->log_level);
	if (c->name) {
		snprintf(s->name, sizeof(s->name), "%s", c->name);
	} else if (gethostname(s->name, sizeof(s->name)) < 0 || !s->name[0]) {
		log_warn("cannot learn the host name: this replica is called egress-server");
		snprintf(s->name, sizeof(s->name), "egress-server");
	}
	s->name[sizeof(s->name) - 1] = '\0';
	s->srv.name = s->name;
}

/* Logins and token changes (the API's authentication logs them as events) into the
 * audit log. */
static void server_event_cb(const struct event *e, void *arg)
{
	struct server_run *s = arg;
	struct store_who who = {.who = e->who};
	json_t *detail;
	int r;

	if (e->kind != EVENT_LOGIN && e->kind != EVENT_CHANGE)
		return;
	detail = e->data ? json_deep_copy(e->data) : json_object();
	json_object_set_new(detail, "message", json_string(e->message));
	r = store_audit(s->srv.store, &who, e->kind == EVENT_LOGIN ? "login" : "api", 0, detail);
	if (r < 0)
		log_error("audit: cannot record \"%s\": %s", e->message, strerror(-r));
	json_decref(detail);
}

static void server_reload_cb(void *arg)
{
	struct server_run *s = arg;
	struct conf_errors errs = {0};
	struct conf *conf, *old = s->srv.conf;

	loop_notify("RELOADING=1");
	conf = server_conf_read(s->opts->conf_path, s->opts->overrides, old, &errs);
	if (!conf) {
		log_error("reload failed, keeping the running configuration:");
		for (size_t i = 0; i < errs.n; i++)
			log_error("  %s", errs.msgs[i]);
		conf_errors_clear(&errs);
		loop_notify("READY=1\nSTATUS=reload failed, running the previous configuration");
		return;
	}
	s->srv.conf = conf;
	server_apply_conf(s);
	api_reconf(s->srv.api, conf);
	hub_reconf(s->srv.hub, conf);
	resolver_reconf(s->srv.resolver, conf);
	conf_free(old);
	s->reloads++;
	log_info("reload %u: replica %s ([store] changes take effect at the next start)",
		s->reloads, s->srv.name);
	loop_notify("READY=1\nSTATUS=reloaded");
}

static void server_ready(struct server_run *s)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "replica %s, store %s at version %llu", s->srv.name,
		store_backend(s->srv.store), (unsigned long long)store_version(s->srv.store));
	log_info("egress-server %s ready: %s", EGRESS_VERSION, msg);
	char notify[320];
	snprintf(notify, sizeof(notify), "READY=1\nSTATUS=%s", msg);
	loop_notify(notify);
}

int server_run(const struct server_opts *opts, struct conf *conf)
{
	struct server_run s = {.opts = opts, .srv = {.conf = conf}};
	int r, sig, status = 1;

	server_apply_conf(&s);
	s.loop = loop_new();
	if (!s.loop) {
		log_error("cannot set up the event loop");
		goto out;
	}
	s.srv.base = loop_base(s.loop);
	s.srv.events = event_log_new(SERVER_EVENTS_MAX);
	r = event_log_take_errors(s.srv.events, s.srv.base);
	if (r < 0) {
		log_error("event log: cannot take in error lines: %s", strerror(-r));
		goto out;
	}
	s.srv.metrics = metrics_new();
	r = store_open(s.srv.base, s.srv.conf, &s.srv.store);
	if (r < 0) {
		log_error("store: cannot open: %s", strerror(-r));
		goto out;
	}
	event_log_subscribe(s.srv.events, server_event_cb, &s);
	r = api_new(&(struct api_env){.base = s.srv.base, .metrics = s.srv.metrics,
			    .events = s.srv.events, .no_uplinks = true,
			    .index = SERVER_PAGE},
		s.srv.conf, &s.srv.api);
	if (r < 0)
		goto out;
	r = resolver_new(&s.srv, &s.srv.resolver);
	if (r < 0) {
		log_error("resolver: cannot start: %s", strerror(-r));
		goto out;
	}
	r = hub_new(&s.srv, &s.srv.hub);
	if (r < 0) {
		log_error("hub: cannot start: %s", strerror(-r));
		goto out;
	}
	s.tables[0] = (struct api_route_table){
		.routes = server_api_routes,
		.n = server_api_n_routes,
		.arg = &s.srv,
		.running = true,
	};
	hub_routes(s.srv.hub, &s.tables[1]);
	api_set_routes(s.srv.api, s.tables, ARRAY_SIZE(s.tables));
	loop_set_reload(s.loop, server_reload_cb, &s);
	server_ready(&s);
	sig = loop_run(s.loop);
	loop_notify("STOPPING=1");
	status = sig < 0 ? 1 : 0;
out:
	hub_free(s.srv.hub); /* its gateways' connections first: they came from the API */
	resolver_free(s.srv.resolver);
	api_free(s.srv.api);
	if (s.srv.events)
		event_log_unsubscribe(s.srv.events, server_event_cb, &s);
	store_free(s.srv.store);
	metrics_free(s.srv.metrics);
	event_log_free(s.srv.events);
	loop_free(s.loop);
	conf_free(s.srv.conf);
	log_info("stopped");
	return status;
}
