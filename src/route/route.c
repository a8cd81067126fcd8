/*
 * route.c - the route module: follow the gateways' health and keep the kernel's ECMP
 * routes (route_dp.c) and gateway-route-manager's metrics in step.
 *
 * Destinations: the [route] routes minus the exclusions (exclude_cidr and, unless turned
 * off, the reserved ranges of RFC 6890), merged into the fewest prefixes once per
 * configuration.  "default" is the default route of each family that has gateways (the
 * configuration refuses other prefixes of a family without any).  Gateways: the uplinks that route_conf.c made of [route]; a gateway carries
 * traffic while its uplink is usable (up or degraded).
 *
 * Changes are batched: any number of uplink events in one loop turn make one apply.  At
 * start nothing is applied until every gateway's first check has answered (or the settle
 * time passed): applying "no gateway is healthy yet" would tear down the routes a previous
 * run left, a gap that adoption exists to avoid.
 *
 * Must not touch the kernel except through route_dp.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check.h"
#include "conf_keys.h"
#include "log.h"
#include "module.h"
#include "metrics.h"
#include "route.h"
#include "route_conf.h"
#include "route_dp.h"
#include "uplink.h"
#include "util.h"

#define RETRY_MS 1000

struct route_gateway {
	char name[ADDR_STRLEN]; /* the name of its uplink */
	struct addr addr;
	int weight;
};

struct route_module {
	struct event_base *base;
	struct uplink_set *set;
	struct check_engine *checks;
	struct metrics *metrics;
	struct route_dp *dp;
	struct route_dp_conf dpconf;
	bool keep;
	uint32_t settle_ms;

	struct cidr *prefixes;
	size_t n_prefixes;
	struct route_gateway *gws;
	size_t n_gws;

	struct event *apply_ev;	 /* deferred apply, once per loop turn */
	struct event *settle_ev; /* start: waits for the first checks */
	struct event *retry_ev;	 /* after a failed apply */
	struct nl_monitor *mon;	 /* links and nexthops the kernel changes behind our back */
	bool settled;
	unsigned in_service[2];
	bool has_pfx[2];   /* IPv4, IPv6 destinations are managed */
	bool refused[2];   /* fail closed and no gateway of the family in service */
	char members[512]; /* the gateways in service at the last apply, for the log */

	/* gateway-route-manager's metrics (the egress_uplink_* ones are the daemon's) */
	struct metric_family *m_checks, *m_check_seconds, *m_active, *m_total, *m_updates,
		*m_update_seconds, *m_route_gws, *m_consecutive, *m_cycles, *m_errors;
	struct metric_family *m_refused; /* ours: refused families */
	struct metric_family *m_http, *m_http_seconds;
	struct metric_family *m_cycle_seconds, *m_start_time, *m_uptime;
	uint64_t cycles;
	uint32_t *round_us;	  /* per gateway: its longest probe in the current round */
	uint32_t cycle_us;	  /* the longest round of the cycle under way */
};

static struct route_gateway *route_gateway_find(const struct route_module *rm, const char *name)
{
	for (size_t i = 0; i < rm->n_gws; i++)
		if (streq(rm->gws[i].name, name))
			return &rm->gws[i];
	return NULL;
}

/* ------------------------------------------------------------ metrics */

/* When the route module first started in this process (monotonic): a reload keeps it. */
static uint64_t started_ms;

static void route_metrics_init(struct route_module *rm)
{
	struct metrics *m = rm->metrics;
	static const double seconds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
		2.5, 5, 10};

	if (!started_ms)
		started_ms = now_ms();
	if (!m)
		return;
	metrics_counter_new(m, "gateway_health_check_total", "Health checks by gateway and result",
		METRICS_LABELS("gateway_ip", "status"), &rm->m_checks);
	metrics_histogram_new(m, "gateway_health_check_duration_seconds",
		"Duration of health checks", METRICS_LABELS("gateway_ip"), seconds,
		ARRAY_SIZE(seconds), &rm->m_check_seconds);
	metrics_gauge_new(m, "gateway_active_count", "Gateways that pass their health checks", NULL,
		&rm->m_active);
	metrics_gauge_new(m, "gateway_total_count", "Gateways configured", NULL, &rm->m_total);
	metrics_counter_new(m, "route_updates_total", "Kernel route changes by operation and result",
		METRICS_LABELS("operation", "status"), &rm->m_updates);
	metrics_histogram_new(m, "route_update_duration_seconds",
		"Time to bring the kernel's routes in step", NULL, seconds, ARRAY_SIZE(seconds),
		&rm->m_update_seconds);
	metrics_gauge_new(m, "default_route_gateways_count",
		"Gateways in the managed routes", NULL, &rm->m_route_gws);
	metrics_gauge_new(m, "consecutive_failures_count", "Failed checks in a row by gateway",
		METRICS_LABELS("gateway_ip"), &rm->m_consecutive);
	metrics_counter_new(m, "check_cycles_total", "Rounds in which every gateway was checked",
		NULL, &rm->m_cycles);
	metrics_counter_new(m, "errors_total", "Errors by type", METRICS_LABELS("type"),
		&rm->m_errors);
	metrics_counter_new(m, "http_requests_total", "HTTP(S) health check answers by status",
		METRICS_LABELS("gateway_ip", "status_code", "method"), &rm->m_http);
	metrics_histogram_new(m, "http_request_duration_seconds",
		"Duration of answered HTTP(S) health checks", METRICS_LABELS("gateway_ip"), seconds,
		ARRAY_SIZE(seconds), &rm->m_http_seconds);
	metrics_gauge_new(m, "route_traffic_refused",
		"1 while traffic of a family to the managed destinations is refused: fail closed "
		"and none of its gateways in service",
		METRICS_LABELS("family"), &rm->m_refused);
	metrics_histogram_new(m, "check_cycle_duration_seconds",
		"Time to check every gateway once (their checks run side by side: the longest)",
		NULL, seconds, ARRAY_SIZE(seconds), &rm->m_cycle_seconds);
	metrics_gauge_new(m, "application_start_time_seconds",
		"When egressd started, in seconds since the epoch", NULL, &rm->m_start_time);
	metrics_gauge_new(m, "application_uptime_seconds", "Seconds since egressd started", NULL,
		&rm->m_uptime);
	metrics_gauge_set(rm->m_start_time, (double)(clock_wall_ms() - (int64_t)(now_ms() -
								      started_ms)) / 1000.0);
	metrics_gauge_set(rm->m_refused, 0, "ipv4");
	metrics_gauge_set(rm->m_refused, 0, "ipv6");
	metrics_counter_add(rm->m_errors, 0, "route_update");
	metrics_counter_add(rm->m_errors, 0, "health_check");
	metrics_counter_add(rm->m_cycles, 0);
}

/* Series of every gateway exist from the start, so a dashboard sees zeros, not gaps. */
static void route_metrics_gateways(struct route_module *rm)
{
	if (!rm->metrics)
		return;
	metrics_clear(rm->m_consecutive);
	metrics_gauge_set(rm->m_total, (double)rm->n_gws);
	for (size_t i = 0; i < rm->n_gws; i++) {
		const char *n = rm->gws[i].name;
		metrics_counter_add(rm->m_checks, 0, n, "success");
		metrics_counter_add(rm->m_checks, 0, n, "failure");
		metrics_gauge_set(rm->m_consecutive, 0, n);
	}
}

static void route_metrics_state(struct route_module *rm)
{
	unsigned active = 0;

	if (!rm->metrics)
		return;
	for (size_t i = 0; i < rm->n_gws; i++) {
		struct uplink *u = uplink_find(rm->set, rm->gws[i].name);
		active += u && uplink_usable(u);
	}
	metrics_gauge_set(rm->m_active, active);
}

/* Refresh the gauges that change with every probe only when someone looks. */
static void route_scrape_cb(struct metrics *m, void *arg)
{
	struct route_module *rm = arg;
	struct check_stats st;

	(void)m;
	for (size_t i = 0; i < rm->n_gws; i++) {
		const char *n = rm->gws[i].name;
		if (!rm->checks || check_stats_get(rm->checks, n, &st) < 0)
			continue;
		metrics_gauge_set(rm->m_consecutive, st.consecutive_failures, n);
	}
	metrics_gauge_set(rm->m_uptime, (double)(now_ms() - started_ms) / 1000.0);
	route_metrics_state(rm);
}

static void route_probe_cb(const struct check_probe_info *p, void *arg)
{
	struct route_module *rm = arg;
	const struct uplink *u = p->uplink;
	bool ok = p->result == CHECK_OK;

	struct route_gateway *g = route_gateway_find(rm, u->name);

	if (!rm->metrics || !g)
		return;
	if (rm->round_us)
		rm->round_us[g - rm->gws] = MAX(rm->round_us[g - rm->gws], p->duration_us);
	metrics_counter_add(rm->m_checks, 1, u->name, ok ? "success" : "failure");
	metrics_histogram_observe(rm->m_check_seconds, p->duration_us / 1e6, u->name);
	if (!ok)
		metrics_counter_add(rm->m_errors, 1, "health_check");
	if (p->http_status) {
		char code[16];
		snprintf(code, sizeof(code), "%d", p->http_status);
		metrics_counter_add(rm->m_http, 1, u->name, code, "GET");
		metrics_histogram_observe(rm->m_http_seconds, p->duration_us / 1e6, u->name);
	}
}

/* A check cycle is done when every gateway has finished one more round. */
static void route_round_cb(const struct check_round_info *r, void *arg)
{
	struct route_module *rm = arg;
	const struct uplink *u = r->uplink;
	uint64_t min = UINT64_MAX;
	struct check_stats st;

	struct route_gateway *g = route_gateway_find(rm, u->name);

	if (!rm->metrics || !g)
		return;
	if (rm->round_us) {
		rm->cycle_us = MAX(rm->cycle_us, rm->round_us[g - rm->gws]);
		rm->round_us[g - rm->gws] = 0;
	}
	for (size_t i = 0; i < rm->n_gws; i++) {
		if (check_stats_get(rm->checks, rm->gws[i].name, &st) < 0)
			return;
		min = MIN(min, st.rounds);
	}
	if (min != UINT64_MAX && min > rm->cycles) {
		metrics_counter_add(rm->m_cycles, (double)(min - rm->cycles));
		rm->cycles = min;
		/* gateway-route-manager checks them all at once and times the lot */
		metrics_histogram_observe(rm->m_cycle_seconds, rm->cycle_us / 1e6);
		rm->cycle_us = 0;
	}
	metrics_gauge_set(rm->m_consecutive, r->stats->consecutive_failures, u->name);
}

/* ------------------------------------------------------------ apply */

static void route_schedule(struct route_module *rm)
{
	if (rm->settled)
		event_active(rm->apply_ev, EV_TIMEOUT, 0);
}

static void route_count_updates(struct route_module *rm, const struct route_dp_result *res)
{
	static const char *const op[_NL_OP_MAX] = {[NL_ADD] = "add", [NL_REPLACE] = "replace",
		[NL_DEL] = "delete"};

	if (!rm->metrics)
		return;
	for (int i = 0; i < _NL_OP_MAX; i++) {
		if (res->ok[i])
			metrics_counter_add(rm->m_updates, res->ok[i], op[i], "success");
		if (res->failed[i])
			metrics_counter_add(rm->m_updates, res->failed[i], op[i], "failure");
	}
	metrics_histogram_observe(rm->m_update_seconds, res->duration_us / 1e6);
	metrics_gauge_set(rm->m_route_gws, res->in_service[0] + res->in_service[1]);
	if (res->n_errors)
		metrics_counter_add(rm->m_errors, res->n_errors, "route_update");
}

/*
 * Fail closed, a family whose destinations are managed and none of its gateways in
 * service: its traffic meets prohibit routes.  Said once when it starts and ends, and as a
 * gauge.
 */
static void route_refused_update(struct route_module *rm)
{
	static const char *const fam[2] = {"IPv4", "IPv6"}, *const label[2] = {"ipv4", "ipv6"};

	for (int fi = 0; fi < 2; fi++) {
		bool refused = rm->dpconf.fail_closed && rm->has_pfx[fi] && !rm->in_service[fi];

		if (refused != rm->refused[fi]) {
			if (refused)
				log_warnx("route: no %s gateway in service: %s traffic to the managed "
					  "destinations is refused (fail closed)",
					fam[fi], fam[fi]);
			else
				log_info("route: %s traffic flows again through %u gateway%s", fam[fi],
					rm->in_service[fi], rm->in_service[fi] == 1 ? "" : "s");
			rm->refused[fi] = refused;
		}
		if (rm->metrics)
			metrics_gauge_set(rm->m_refused, refused, label[fi]);
	}
}

static void route_apply(struct route_module *rm)
{
	struct route_dp_gw *g = xcalloc(rm->n_gws + 1, sizeof(*g));
	struct route_dp_result res;
	char members[sizeof(rm->members)];
	size_t off = 0;
	unsigned usable = 0;
	int r;

	members[0] = '\0';
	for (size_t i = 0; i < rm->n_gws; i++) {
		struct uplink *u = uplink_find(rm->set, rm->gws[i].name);
		g[i].gw = rm->gws[i].addr;
		g[i].weight = (unsigned)rm->gws[i].weight;
		g[i].slot = (unsigned)i;
		g[i].usable = u && uplink_in_service(u); /* drained: out of the group */
		if (g[i].usable && off < sizeof(members)) {
			usable++;
			off += (size_t)snprintf(members + off, sizeof(members) - off, "%s%s",
				off ? ", " : "", rm->gws[i].name);
		}
	}
	r = route_dp_apply(rm->dp, rm->prefixes, rm->n_prefixes, g, rm->n_gws, &res);
	free(g);
	route_count_updates(rm, &res);
	for (size_t i = 0; i < MIN(res.n_errors, (size_t)ROUTE_DP_MAX_ERRORS); i++)
		log_warnx("route: %s", res.errors[i].text);
	if (res.n_errors > ROUTE_DP_MAX_ERRORS)
		log_warnx("route: %zu more errors", res.n_errors - ROUTE_DP_MAX_ERRORS);
	if (res.unresolved)
		log_warnx("route: %u healthy gateway%s without an on-link route left out",
			res.unresolved, res.unresolved == 1 ? "" : "s");
	if (r < 0 || res.unresolved)
		event_add(rm->retry_ev, &(struct timeval){.tv_sec = RETRY_MS / 1000});

	unsigned n = res.in_service[0] + res.in_service[1];
	if (n != rm->in_service[0] + rm->in_service[1] || !streq(members, rm->members)) {
		if (n)
			log_info("route: %u of %zu gateways in service (%s)", n, rm->n_gws, members);
		else if (rm->dpconf.fail_closed)
			log_warnx("route: no gateway in service: traffic to the managed destinations "
				  "is refused (fail closed)");
		else
			log_warnx("route: no gateway in service: traffic uses the main table (fail "
				  "open)");
		snprintf(rm->members, sizeof(rm->members), "%s", members);
	}
	rm->in_service[0] = res.in_service[0];
	rm->in_service[1] = res.in_service[1];
	route_refused_update(rm);
	log_debug("route: apply: %u added, %u replaced, %u deleted, %u kept, %u usable, %lluus",
		res.ok[NL_ADD], res.ok[NL_REPLACE], res.ok[NL_DEL], res.kept, usable,
		(unsigned long long)res.duration_us);
	route_metrics_state(rm);
}

/*
 * The kernel removes nexthops (and a group whose last member went, and the routes using
 * it) when a gateway's link goes down or away; health checks notice seconds later.  Apply
 * again at once so the routes are never missing longer than a loop turn: the apply reads
 * the kernel and puts back what is wanted.
 */
static void route_nl_cb(const struct nl_event *ev, void *arg)
{
	struct route_module *rm = arg;

	if (ev->type == NL_EVENT_NEXTHOP && (!ev->del || ev->nexthop.id < rm->dpconf.nh_id_base ||
						    ev->nexthop.id - rm->dpconf.nh_id_base >=
							    ROUTE_DP_NH_IDS))
		return;
	if (ev->type == NL_EVENT_LINK || ev->type == NL_EVENT_NEXTHOP ||
		ev->type == NL_EVENT_RESYNC)
		route_schedule(rm);
}

static void route_apply_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	route_apply(arg);
}

static bool route_all_checked(const struct route_module *rm)
{
	for (size_t i = 0; i < rm->n_gws; i++) {
		struct uplink *u = uplink_find(rm->set, rm->gws[i].name);
		if (u && u->state == UPLINK_INIT)
			return false;
	}
	return true;
}

static void route_settle(struct route_module *rm, const char *why)
{
	if (rm->settled)
		return;
	rm->settled = true;
	event_del(rm->settle_ev);
	log_debug("route: first apply (%s)", why);
	route_apply(rm);
}

static void route_settle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	route_settle(arg, "settle time passed");
}

static void route_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct route_module *rm = arg;

	if (!route_gateway_find(rm, u->name))
		return;
	if (!rm->settled) {
		if (route_all_checked(rm))
			route_settle(rm, "every gateway checked");
		return;
	}
	route_schedule(rm);
}

/* ------------------------------------------------------------ configuration */

/* Destinations: routes minus exclusions, in the fewest prefixes; has[0] and has[1] say
 * which families "default" covers. */
static int route_prefixes(const struct conf_route *c, const bool has[2], struct cidr **ret,
	size_t *n, size_t *n_excluded)
{
	static const struct cidr def[2] = {{.addr.family = AF_INET}, {.addr.family = AF_INET6}};
	struct pfxset want, excl;
	int r;

	pfxset_init(&want);
	pfxset_init(&excl);
	for (size_t i = 0; i < c->routes.n; i++) {
		if (!cidr_is_any_default(&c->routes.v[i])) {
			pfxset_add(&want, &c->routes.v[i]);
			continue;
		}
		for (int fi = 0; fi < 2; fi++)
			if (has[fi])
				pfxset_add(&want, &def[fi]);
	}
	for (size_t i = 0; i < c->exclude.n; i++)
		pfxset_add(&excl, &c->exclude.v[i]);
	if (c->exclude_reserved)
		pfxset_add_reserved(&excl, AF_UNSPEC);
	*n_excluded = pfxset_count_cidrs(&excl, AF_UNSPEC);
	r = pfxset_subtract(&want, &excl);
	if (r == 0)
		r = pfxset_to_cidrs(&want, AF_UNSPEC, ret, n);
	pfxset_clear(&want);
	pfxset_clear(&excl);
	return r;
}

static void route_dpconf(const struct conf_route *c, struct route_dp_conf *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->table = c->table;
	ret->rule_priority = c->rule_priority;
	ret->protocol = RTPROT_EGRESS;
	ret->nh_id_base = c->nexthop_id_base;
	ret->fail_closed = c->fail == ROUTE_FAIL_CLOSED;
	ret->force_multipath = !c->resilient;
	ret->buckets = (uint16_t)c->buckets;
	ret->idle_timer_s = c->idle_timer_ms / 1000;
	ret->unbalanced_timer_s = c->unbalanced_timer_ms / 1000;
}

/* Take c's gateways and destinations; the kernel side is changed by the next apply. */
static int route_take_conf(struct route_module *rm, const struct conf *conf)
{
	const struct conf_route *c = conf_route(conf);
	struct waddr *w;
	size_t n = conf_route_gateways(c, &w), n_excluded = 0;
	struct cidr *prefixes = NULL;
	size_t n_prefixes = 0;
	bool has[2] = {false, false}, cover[2], any_default = false;
	/* the route agent, fail closed: a family without gateways is refused, never leaked */
	bool agent_closed = c->iptables_gateways.n && c->fail == ROUTE_FAIL_CLOSED;
	int r;

	for (size_t i = 0; i < n; i++)
		has[w[i].addr.family == AF_INET6] = true;
	for (int fi = 0; fi < 2; fi++)
		cover[fi] = has[fi] || agent_closed;
	for (size_t i = 0; i < c->routes.n; i++)
		any_default |= cidr_is_any_default(&c->routes.v[i]);
	r = route_prefixes(c, cover, &prefixes, &n_prefixes, &n_excluded);
	if (r < 0) {
		free(w);
		return r;
	}
	free(rm->prefixes);
	rm->prefixes = prefixes;
	rm->n_prefixes = n_prefixes;
	free(rm->gws);
	rm->gws = xcalloc(n + 1, sizeof(*rm->gws));
	rm->n_gws = n;
	free(rm->round_us);
	rm->round_us = xcalloc(n + 1, sizeof(*rm->round_us));
	rm->cycle_us = 0;
	for (size_t i = 0; i < n; i++) {
		addr_str(&w[i].addr, rm->gws[i].name, sizeof(rm->gws[i].name));
		rm->gws[i].addr = w[i].addr;
		rm->gws[i].weight = w[i].weight;
	}
	free(w);
	rm->keep = c->keep;
	rm->settle_ms = c->timeout_ms + 500;

	size_t n4 = 0;
	for (size_t i = 0; i < n_prefixes; i++)
		n4 += prefixes[i].addr.family == AF_INET;
	rm->has_pfx[0] = n4 > 0;
	rm->has_pfx[1] = n_prefixes > n4;
	/* how the gateways are checked: their implied uplinks say */
	unsigned per_kind[_CHECK_KIND_MAX] = {0};
	for (size_t i = 0; i < n; i++) {
		const struct conf_uplink *u =
			(const struct conf_uplink *)conf_find(conf, "uplink", rm->gws[i].name);
		if (u)
			per_kind[u->check.kind]++;
	}
	char checks[128] = "";
	size_t off = 0;
	for (int k = 0; k < _CHECK_KIND_MAX && off < sizeof(checks); k++)
		if (per_kind[k])
			off += (size_t)snprintf(checks + off, sizeof(checks) - off, "%s%u by %s",
				off ? ", " : "", per_kind[k], check_kind_name[k]);
	log_info("route: %zu gateway%s (checked: %s), %zu IPv4 and %zu IPv6 destination prefixes "
		 "(%zu excluded prefixes kept on the main table), table %u via rules %u and %u, "
		 "fail %s",
		n, n == 1 ? "" : "s", checks, n4, n_prefixes - n4, n_excluded, c->table,
		c->rule_priority, c->rule_priority + 1, route_fail_name[c->fail]);
	for (int fi = 0; fi < 2 && n; fi++) {
		if (any_default && !has[fi] && cover[fi])
			log_info("route: no %s gateway: public %s traffic is refused (route agent, "
				 "fail closed)",
				fi ? "IPv6" : "IPv4", fi ? "IPv6" : "IPv4");
		else if (any_default && !has[fi])
			log_info("route: no %s gateway: 'default' is the %s default route only, %s "
				 "traffic keeps to the main table",
				fi ? "IPv6" : "IPv4", fi ? "IPv4" : "IPv6", fi ? "IPv6" : "IPv4");
	}
	route_metrics_gateways(rm);
	return 0;
}

int route_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct check_engine *checks, struct metrics *metrics, struct route_module **ret)
{
	const struct conf_route *c = conf_route(conf);
	struct route_module *rm;
	int r;

	if (!c)
		return -EINVAL;
	rm = xcalloc(1, sizeof(*rm));
	rm->base = base;
	rm->set = set;
	rm->checks = checks;
	rm->metrics = metrics;
	route_dpconf(c, &rm->dpconf);
	r = route_dp_new(&rm->dpconf, &rm->dp);
	if (r < 0) {
		log_error("route: %s", strerror(-r));
		goto fail;
	}
	log_info("route: spreading flows with %s", route_dp_mode(rm->dp));
	rm->apply_ev = event_new(base, -1, 0, route_apply_cb, rm);
	rm->settle_ev = evtimer_new(base, route_settle_cb, rm);
	rm->retry_ev = evtimer_new(base, route_apply_cb, rm);
	route_metrics_init(rm);
	r = route_take_conf(rm, conf);
	if (r < 0) {
		log_error("route: destinations: %s", strerror(-r));
		goto fail;
	}
	if (metrics)
		metrics_on_scrape(metrics, route_scrape_cb, rm);
	if (checks) {
		check_engine_on_probe(checks, route_probe_cb, rm);
		check_engine_on_round(checks, route_round_cb, rm);
	}
	uplink_set_subscribe(set, route_uplink_cb, rm);
	r = nl_monitor_new(base, NL_GROUP_LINK | NL_GROUP_NEXTHOP, route_nl_cb, rm, &rm->mon);
	if (r < 0) {
		log_error("route: netlink monitor: %s", strerror(-r));
		goto fail;
	}
	if (route_all_checked(rm))
		route_settle(rm, "nothing to wait for");
	else
		event_add(rm->settle_ev, &(struct timeval){.tv_sec = rm->settle_ms / 1000,
						 .tv_usec = (rm->settle_ms % 1000) * 1000});
	*ret = rm;
	return 0;
fail:
	route_module_free(rm);
	return r;
}

int route_module_reconf(struct route_module *rm, const struct conf *conf)
{
	const struct conf_route *c = conf_route(conf);
	struct route_dp_conf dpconf;
	int r;

	if (!c)
		return -EINVAL;
	route_dpconf(c, &dpconf);
	if (memcmp(&dpconf, &rm->dpconf, sizeof(dpconf)) != 0) {
		struct route_dp *dp;
		r = route_dp_new(&dpconf, &dp);
		if (r < 0) {
			log_error("route: %s", strerror(-r));
			return r;
		}
		/* Another table, priority or id range: what the old one names stops being ours,
		 * so remove it first.  Mode, buckets or fail mode: the next apply moves over
		 * without a gap. */
		if (dpconf.table != rm->dpconf.table ||
			dpconf.rule_priority != rm->dpconf.rule_priority ||
			dpconf.nh_id_base != rm->dpconf.nh_id_base)
			route_dp_stop(rm->dp, false, NULL);
		route_dp_free(rm->dp);
		rm->dp = dp;
		rm->dpconf = dpconf;
		log_info("route: spreading flows with %s", route_dp_mode(rm->dp));
	}
	r = route_take_conf(rm, conf);
	if (r < 0)
		return r;
	route_schedule(rm);
	return 0;
}

void route_module_free(struct route_module *rm)
{
	struct route_dp_result res;

	if (!rm)
		return;
	uplink_set_unsubscribe(rm->set, route_uplink_cb, rm);
	if (rm->checks)
		check_engine_off(rm->checks, rm);
	if (rm->dp) {
		if (route_dp_stop(rm->dp, rm->keep, &res) < 0)
			for (size_t i = 0; i < MIN(res.n_errors, (size_t)ROUTE_DP_MAX_ERRORS); i++)
				log_warnx("route: stop: %s", res.errors[i].text);
		log_info("route: %s", rm->keep ? "routes and rules kept in place"
						: "routes and rules removed");
	}
	if (rm->metrics)
		metrics_on_scrape_remove(rm->metrics, route_scrape_cb, rm);
	nl_monitor_free(rm->mon);
	route_dp_free(rm->dp);
	if (rm->apply_ev)
		event_free(rm->apply_ev);
	if (rm->settle_ev)
		event_free(rm->settle_ev);
	if (rm->retry_ev)
		event_free(rm->retry_ev);
	free(rm->prefixes);
	free(rm->gws);
	free(rm->round_us);
	free(rm);
}

/* The module as the daemon sees it (module.h): runs while conf has [route]. */
static bool route_wanted_cb(const struct conf *conf)
{
	return conf_route(conf) != NULL;
}

static int route_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct route_module *m = NULL;
	int r = route_module_new(env->base, conf, env->uplinks, env->checks, env->metrics, &m);

	*ret = m;
	return r;
}

static int route_reconf_cb(void *m, const struct conf *conf)
{
	return route_module_reconf(m, conf);
}

static void route_free_cb(void *m)
{
	route_module_free(m);
}

/*
 * Its status for GET /api/modules: the gateways and whether each is in the ECMP set now
 * (up or degraded, and not drained), the destinations, and where its routes live.
 */
static json_t *route_status_cb(void *m)
{
	struct route_module *rm = m;
	json_t *gws = json_array();
	char a[ADDR_STRLEN];

	for (size_t i = 0; i < rm->n_gws; i++) {
		const struct uplink *u = uplink_find(rm->set, rm->gws[i].name);

		json_array_append_new(gws, json_pack("{s:s, s:s, s:i, s:s, s:b, s:b}", "name",
			rm->gws[i].name, "address", addr_str(&rm->gws[i].addr, a, sizeof(a)),
			"weight", rm->gws[i].weight, "state",
			u ? uplink_state_name[u->state] : "gone", "enabled", u && u->enabled,
			"in_service", u && uplink_in_service(u)));
	}
	return json_pack("{s:o, s:i, s:i, s:i, s:s, s:b, s:b, s:b, s:i, s:I, s:I}", "gateways",
		gws, "in_service", (int)(rm->in_service[0] + rm->in_service[1]), "in_service_v4",
		(int)rm->in_service[0], "in_service_v6", (int)rm->in_service[1], "fail",
		rm->dpconf.fail_closed ? "closed" : "open", "refused_v4", rm->refused[0],
		"refused_v6", rm->refused[1], "settled", rm->settled, "destinations",
		(int)rm->n_prefixes, "table", (json_int_t)rm->dpconf.table, "rule_priority",
		(json_int_t)rm->dpconf.rule_priority);
}

static const struct conf_section_type *const route_conf_types[] = {
	&conf_route_type,
};

const struct module module_route = {
	.name = "route",
	.conf_types = route_conf_types,
	.n_conf_types = ARRAY_SIZE(route_conf_types),
	.wanted = route_wanted_cb,
	.new = route_new_cb,
	.reconf = route_reconf_cb,
	.free = route_free_cb,
	.status = route_status_cb,
};
