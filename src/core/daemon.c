/*
 * daemon.c - egressd's life cycle: start, reload on SIGHUP, stop.
 *
 * Start: take the validated configuration, build the uplink model, learn the
 * uplinks' interfaces from the kernel and follow them through netlink
 * events, then say "ready" (log line and sd_notify).  Reload: parse the file
 * again into a new configuration, validate it, apply the difference, swap;
 * on any error the running configuration stays and the errors are logged.
 * Stop: release everything; nothing that egressd added is left behind.
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

#include "check.h"
#include "conf_keys.h"
#include "daemon.h"
#include "dns.h"
#include "gateway.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "policy.h"
#include "privs.h"
#include "proxy.h"
#include "route.h"
#include "uplink.h"
#include "util.h"

struct daemon {
	const struct daemon_opts *opts;
	struct loop *loop;
	struct conf *conf;
	struct uplink_set uplinks;
	struct link_watch *links;
	struct check_engine *checks;
	struct metrics *metrics;
	struct metrics_server *metrics_server;
	int metrics_port; /* what metrics_server serves on */
	struct addr metrics_address;
	struct route_module *route;
	struct policy_module *policy;
	struct proxy_module *proxy;
	struct dns_module *dns;
	struct gateway_module *gateway;
	unsigned reloads;
};

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

/* Gateway mode could not take its backup once the loop ran (the xtables lock stayed held):
 * a start that fails, as one that fails at once. */
static void daemon_gateway_failed_cb(void *arg)
{
	struct daemon *d = arg;

	log_error("gateway mode could not start: stopping");
	loop_fail(d->loop);
}

/* Start, reconfigure or stop the modules the configuration names. */
static int daemon_modules(struct daemon *d)
{
	int r = 0;

	if (conf_route(d->conf)) {
		if (d->route)
			r = route_module_reconf(d->route, d->conf);
		else
			r = route_module_new(loop_base(d->loop), d->conf, &d->uplinks, d->checks,
				d->metrics, &d->route);
	} else if (d->route) {
		route_module_free(d->route);
		d->route = NULL;
	}
	if (conf_balance(d->conf)) {
		int e = d->policy ? policy_module_reconf(d->policy, d->conf)
				  : policy_module_new(loop_base(d->loop), d->conf, &d->uplinks,
					    &d->policy);
		r = r ? r : e;
	} else if (d->policy) {
		policy_module_free(d->policy);
		d->policy = NULL;
	}
	/* the proxy listens before gateway mode sends anything its way */
	if (conf_proxy(d->conf)) {
		int e = d->proxy ? proxy_module_reconf(d->proxy, d->conf)
				 : proxy_module_new(loop_base(d->loop), d->conf, &d->uplinks,
					   d->metrics, &d->proxy);
		r = r ? r : e;
	} else if (d->proxy) {
		proxy_module_free(d->proxy);
		d->proxy = NULL;
	}
	if (conf_dns(d->conf)) {
		int e = d->dns ? dns_module_reconf(d->dns, d->conf)
			       : dns_module_new(loop_base(d->loop), d->conf, &d->uplinks, d->metrics,
					 &d->dns);
		r = r ? r : e;
	} else if (d->dns) {
		dns_module_free(d->dns);
		d->dns = NULL;
	}
	if (conf_gateway(d->conf) && (d->proxy || d->gateway)) {
		int e = d->gateway ? gateway_module_reconf(d->gateway, d->conf)
				   : gateway_module_new(loop_base(d->loop), d->conf,
					     daemon_gateway_failed_cb, d, &d->gateway);
		r = r ? r : e;
	} else if (d->gateway) {
		gateway_module_free(d->gateway);
		d->gateway = NULL;
	}
	return r;
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

static void daemon_reload_cb(void *arg)
{
	struct daemon *d = arg;
	struct conf_errors errs = {0};
	struct conf *conf;

	loop_notify("RELOADING=1");
	conf = egress_conf_read(d->opts->conf_path, d->opts->overrides, &errs);
	if (conf && egress_conf_check_reload(d->conf, conf, &errs) < 0) {
		conf_free(conf);
		conf = NULL;
	}
	if (!conf) {
		log_error("reload failed, keeping the running configuration:");
		for (size_t i = 0; i < errs.n; i++)
			log_error("  %s", errs.msgs[i]);
		conf_errors_clear(&errs);
		loop_notify("READY=1\nSTATUS=reload failed, running the previous configuration");
		return;
	}
	struct conf *old = d->conf;
	d->conf = conf;
	daemon_apply_log_level(d);
	unsigned changes = uplink_set_sync(&d->uplinks, conf);
	link_watch_refresh(d->links);
	daemon_settle_uplinks(d);
	daemon_metrics(d);
	daemon_modules(d);
	conf_free(old);
	d->reloads++;
	log_info("reload %u: %u change%s", d->reloads, changes, changes == 1 ? "" : "s");
	daemon_status(d, "reloaded");
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
	struct daemon d = {.opts = opts, .conf = conf};
	int r, sig, status = 1;

	raise_nofile();
	d.loop = loop_new();
	if (!d.loop) {
		log_error("cannot set up the event loop");
		goto out;
	}
	daemon_apply_log_level(&d);
	uplink_set_init(&d.uplinks);
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
	r = daemon_metrics(&d);
	if (r < 0)
		goto out;
	r = daemon_modules(&d);
	if (r < 0)
		goto out;
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
	gateway_module_free(d.gateway);
	dns_module_free(d.dns);
	proxy_module_free(d.proxy);
	policy_module_free(d.policy);
	route_module_free(d.route);
	metrics_server_free(d.metrics_server);
	check_engine_free(d.checks);
	link_watch_free(d.links);
	uplink_set_clear(&d.uplinks);
	metrics_free(d.metrics);
	loop_free(d.loop);
	conf_free(d.conf);
	log_info("stopped");
	return status;
}
