/*
 * route_conf.c - the keyword table of [route] (gateway-route-manager's flags), its
 * validation, and its expansion into one [uplink ADDRESS] per gateway.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "route_conf.h"
#include "util.h"

const char *const route_fail_name[_ROUTE_FAIL_MAX] = {
	[ROUTE_FAIL_OPEN] = "open",
	[ROUTE_FAIL_CLOSED] = "closed",
};

/* Large enough for a /22 of gateways; a range is expanded into one uplink per address. */
#define ROUTE_MAX_GATEWAYS 1024

static const struct conf_key route_keys[] = {
	{
		.name = "start_ip",
		.type = CONF_ADDR,
		KEY(conf_route, start_ip),
		.help = "first address of a range of gateways",
	},
	{
		.name = "end_ip",
		.type = CONF_ADDR,
		KEY(conf_route, end_ip),
		.help = "last address of the range of gateways",
	},
	{
		.name = "gateway",
		.type = CONF_ADDR_LIST,
		KEY(conf_route, gateways),
		.flags = CONF_WEIGHT,
		.min = 1,
		.max = 256,
		.help = "gateways one by one, each with an optional weight: 192.0.2.1@3",
	},
	{
		.name = "iptables_gateway",
		.type = CONF_ADDR_LIST,
		KEY(conf_route, iptables_gateways),
		.flags = CONF_WEIGHT,
		.min = 1,
		.max = 256,
		.help = "route agent mode: send public traffic through these gateways (icmp check; "
			"IPv6 only through IPv6 ones); fail defaults to closed",
	},
	{
		.name = "scheme",
		.type = CONF_ENUM,
		KEY(conf_route, check),
		.def = "http",
		.names = check_kind_name,
		.n_names = _CHECK_KIND_MAX,
		.help = "health check of the gateways: http, https, tcp, icmp, dns or none",
	},
	{
		.name = "port",
		.type = CONF_INT,
		KEY(conf_route, port),
		.min = 1,
		.max = 65535,
		.def = "9999",
		.help = "port of the gateways' health check",
	},
	{
		.name = "path",
		.type = CONF_STRING,
		KEY(conf_route, path),
		.def = "/",
		.help = "URL path of the HTTP(S) health check",
	},
	{
		.name = "host",
		.type = CONF_STRING,
		KEY(conf_route, host),
		.help = "Host header (and TLS name) of the HTTP(S) health check",
	},
	{
		.name = "tls_verify",
		.type = CONF_BOOL,
		KEY(conf_route, tls_verify),
		.def = "true",
		.help = "verify the gateways' certificates (https)",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_route, timeout_ms),
		.min = 10,
		.max = 60000,
		.def = "1s",
		.help = "timeout of one health check",
	},
	{
		.name = "check_period",
		.type = CONF_DURATION,
		KEY(conf_route, check_period_ms),
		.min = 50,
		.max = 3600000,
		.def = "3s",
		.help = "time between health checks of a healthy gateway",
	},
	{
		.name = "fall",
		.type = CONF_INT,
		KEY(conf_route, fall),
		.min = 1,
		.max = 100,
		.def = "3",
		.help = "failed checks in a row that remove a gateway",
	},
	{
		.name = "rise",
		.type = CONF_INT,
		KEY(conf_route, rise),
		.min = 1,
		.max = 100,
		.def = "2",
		.help = "good checks in a row that bring a gateway back",
	},
	{
		.name = "route",
		.type = CONF_CIDR_LIST,
		KEY(conf_route, routes),
		.flags = CONF_DEFAULT,
		.def = "default",
		.help = "destination managed through the gateways (CIDR, or default: the default "
			"route of each family that has gateways; repeatable)",
	},
	{
		.name = "exclude_cidr",
		.type = CONF_CIDR_LIST,
		KEY(conf_route, exclude),
		.flags = CONF_BARE,
		.help = "destinations kept on the main table (repeatable)",
	},
	{
		.name = "exclude_reserved_cidrs",
		.type = CONF_BOOL,
		KEY(conf_route, exclude_reserved),
		.def = "true",
		.help = "keep the reserved ranges of RFC 6890 on the main table",
	},
	{
		.name = "table",
		.type = CONF_U32,
		KEY(conf_route, table),
		.min = 1,
		.max = 0xfffffff0,
		.def = "4501",
		.help = "routing table that holds the managed routes",
	},
	{
		.name = "rule_priority",
		.type = CONF_U32,
		KEY(conf_route, rule_priority),
		.min = 1,
		.max = 32000,
		.def = "4500",
		.help = "priority of egressd's two routing rules (this one and the next)",
	},
	{
		.name = "fail",
		.type = CONF_ENUM,
		KEY(conf_route, fail),
		.def = "open",
		.names = route_fail_name,
		.n_names = _ROUTE_FAIL_MAX,
		.help = "no healthy gateway: open = use the main table, closed = refuse traffic "
			"(the default with iptables_gateway)",
	},
	{
		.name = "keep_routes",
		.type = CONF_BOOL,
		KEY(conf_route, keep),
		.def = "false",
		.help = "leave the routes and rules in place when egressd stops",
	},
	{
		.name = "resilient",
		.type = CONF_BOOL,
		KEY(conf_route, resilient),
		.def = "true",
		.help = "resilient nexthop groups: a gateway leaving moves only its own flows",
	},
	{
		.name = "buckets",
		.type = CONF_INT,
		KEY(conf_route, buckets),
		.min = 8,
		.max = 4096,
		.def = "512",
		.help = "buckets of the resilient nexthop groups",
	},
	{
		.name = "idle_timer",
		.type = CONF_DURATION,
		KEY(conf_route, idle_timer_ms),
		.min = 1000,
		.max = 3600000,
		.def = "2m",
		.help = "resilient groups: a bucket unused this long may move to a gateway that "
			"joined (shorter: a returning gateway gets its share sooner, but a flow "
			"silent that long may change gateway)",
	},
	{
		.name = "unbalanced_timer",
		.type = CONF_DURATION,
		KEY(conf_route, unbalanced_timer_ms),
		.min = 0,
		.max = 86400000,
		.def = "0s",
		.help = "resilient groups: after this long unbalanced, busy buckets move too, "
			"breaking their flows (0: never)",
	},
	{
		.name = "nexthop_id_base",
		.type = CONF_U32,
		KEY(conf_route, nexthop_id_base),
		.min = 1,
		.max = 0xfff00000,
		.flags = CONF_HEX,
		.def = "0x45000",
		.help = "first of the nexthop ids egressd uses (65536 of them)",
	},
};

static bool range_set(const struct conf_route *r)
{
	return addr_is_set(&r->start_ip) || addr_is_set(&r->end_ip);
}

/* A prefix of a family without gateways would have no next hop ("default" is the default
 * of each family that has them: route.c). */
static void route_validate_families(const struct conf_route *r, struct conf_errors *errs)
{
	struct waddr *gws;
	size_t n = conf_route_gateways(r, &gws);
	bool has4 = false, has6 = false;
	char buf[CIDR_STRLEN];

	for (size_t i = 0; i < n; i++) {
		has4 |= gws[i].addr.family == AF_INET;
		has6 |= gws[i].addr.family == AF_INET6;
	}
	free(gws);
	if (!n)
		return;
	for (size_t i = 0; i < r->routes.n; i++) {
		int family = r->routes.v[i].addr.family;

		if ((family == AF_INET && !has4) || (family == AF_INET6 && !has6))
			conf_section_error(errs, &r->s, "route",
				"expected prefixes of the gateways' family (%s: there is no %s "
				"gateway), got \"%s\"",
				has4 ? "IPv4" : "IPv6", family == AF_INET ? "IPv4" : "IPv6",
				cidr_str(&r->routes.v[i], buf, sizeof(buf)));
	}
}

static void route_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_route *r = section;
	uint64_t n = 0;

	(void)conf;
	if (!range_set(r) && !r->gateways.n && !r->iptables_gateways.n)
		conf_section_error(errs, &r->s, NULL,
			"needs gateways: 'start_ip' and 'end_ip', 'gateway' or 'iptables_gateway'");
	if (range_set(r)) {
		if (!addr_is_set(&r->start_ip) || !addr_is_set(&r->end_ip))
			conf_section_error(errs, &r->s, addr_is_set(&r->start_ip) ? "end_ip" : "start_ip",
				"'start_ip' and 'end_ip' go together");
		else if (addr_range_count(&r->start_ip, &r->end_ip, &n) < 0 ||
			n > ROUTE_MAX_GATEWAYS)
			conf_section_error(errs, &r->s, "end_ip",
				"expected an address of start_ip's family, not below it and at most %d "
				"addresses from it",
				ROUTE_MAX_GATEWAYS - 1);
	}
	if (n + r->gateways.n + r->iptables_gateways.n > ROUTE_MAX_GATEWAYS)
		conf_section_error(errs, &r->s, NULL, "more than %d gateways", ROUTE_MAX_GATEWAYS);
	else
		route_validate_families(r, errs);
	if (r->timeout_ms > r->check_period_ms)
		conf_section_error(errs, &r->s, "timeout",
			"expected at most 'check_period' (%" PRIu32 "ms), got %" PRIu32 "ms",
			r->check_period_ms, r->timeout_ms);
	if (r->table == 253 || r->table == 254 || r->table == 255)
		conf_section_error(errs, &r->s, "table",
			"expected a table of egressd's own, not %" PRIu32 " (default, main or local)",
			r->table);
	/* the kernel keeps the timers in clock ticks; route_dp.c in whole seconds */
	if (r->idle_timer_ms % 1000)
		conf_section_error(errs, &r->s, "idle_timer", "expected whole seconds, got %" PRIu32 "ms",
			r->idle_timer_ms);
	if (r->unbalanced_timer_ms % 1000)
		conf_section_error(errs, &r->s, "unbalanced_timer",
			"expected whole seconds, got %" PRIu32 "ms", r->unbalanced_timer_ms);
	else if (r->unbalanced_timer_ms && r->unbalanced_timer_ms < r->idle_timer_ms)
		conf_section_error(errs, &r->s, "unbalanced_timer",
			"expected 0 (never) or at least 'idle_timer' (%" PRIu32 "s), got %" PRIu32 "s",
			r->idle_timer_ms / 1000, r->unbalanced_timer_ms / 1000);
	if (r->path && r->path[0] != '/')
		conf_section_error(errs, &r->s, "path", "expected a path starting with '/', got \"%s\"",
			r->path);
}

size_t conf_route_gateways(const struct conf_route *r, struct waddr **ret)
{
	uint64_t n = 0;
	size_t k = 0;

	if (addr_is_set(&r->start_ip) && addr_is_set(&r->end_ip) &&
		addr_range_count(&r->start_ip, &r->end_ip, &n) < 0)
		n = 0;
	*ret = xcalloc(n + r->gateways.n + r->iptables_gateways.n + 1, sizeof(**ret));
	for (uint64_t i = 0; i < n; i++) {
		(*ret)[k].addr = r->start_ip;
		addr_add(&(*ret)[k].addr, i);
		(*ret)[k++].weight = 1;
	}
	for (size_t i = 0; i < r->gateways.n; i++, k++) {
		(*ret)[k] = r->gateways.v[i];
		if (!(*ret)[k].weight)
			(*ret)[k].weight = 1;
	}
	for (size_t i = 0; i < r->iptables_gateways.n; i++, k++) {
		(*ret)[k] = r->iptables_gateways.v[i];
		if (!(*ret)[k].weight)
			(*ret)[k].weight = 1;
	}
	return k;
}

/*
 * The route agent (iptables_gateway) guards an allowlist: with no gateway in service its
 * traffic must not leave by the main table, so fail is closed unless set.  Done here, once
 * the section is valid, so that -n prints what runs.
 */
static void route_agent_defaults(struct conf *conf)
{
	struct conf_route *r = conf_route(conf);

	if (r->iptables_gateways.n && !conf_key_is_set(&r->s, conf_key_find(r->s.type, "fail")))
		conf_set_key(&r->s, "fail", route_fail_name[ROUTE_FAIL_CLOSED]);
}

/* Each gateway becomes an [uplink ADDRESS] with the route's health check. */
static void route_expand(struct conf *conf, const struct conf_section *section,
	struct conf_errors *errs)
{
	const struct conf_route *r = (const struct conf_route *)section;
	struct waddr *gws;
	size_t n = conf_route_gateways(r, &gws);
	char name[ADDR_STRLEN], buf[64];
	const struct conf_key *scheme = conf_key_find(&conf_route_type, "scheme");

	route_agent_defaults(conf);
	for (size_t i = 0; i < n; i++) {
		bool agent = i >= n - r->iptables_gateways.n;
		int kind = r->check;
		struct conf_section *u;

		/* The route agent's gateways answer ping unless told otherwise. */
		if (agent && !conf_key_is_set(&r->s, scheme))
			kind = CHECK_ICMP;
		addr_str(&gws[i].addr, name, sizeof(name));
		u = conf_add_generated(conf, "uplink", name, &r->s, errs);
		if (!u)
			continue;
		conf_set_key(u, "gateway", name);
		snprintf(buf, sizeof(buf), "%d", gws[i].weight);
		conf_set_key(u, "weight", buf);
		conf_set_key(u, "check", check_kind_name[kind]);
		if (kind == CHECK_HTTP || kind == CHECK_HTTPS || kind == CHECK_TCP) {
			snprintf(buf, sizeof(buf), "%d", r->port);
			conf_set_key(u, "check_port", buf);
		}
		if (r->path)
			conf_set_key(u, "check_path", r->path);
		if (r->host)
			conf_set_key(u, "check_host", r->host);
		conf_set_key(u, "check_tls_verify", r->tls_verify ? "true" : "false");
		conf_format_duration(r->check_period_ms, buf, sizeof(buf));
		conf_set_key(u, "interval", buf);
		/* after a failed or (while down) a good check, look again sooner: 500 ms, or the
		 * period when that is shorter */
		conf_format_duration(MIN(r->check_period_ms, 500), buf, sizeof(buf));
		conf_set_key(u, "interval_failing", buf);
		conf_set_key(u, "interval_recovering", buf);
		conf_format_duration(r->timeout_ms, buf, sizeof(buf));
		conf_set_key(u, "timeout", buf);
		snprintf(buf, sizeof(buf), "%d", r->fall);
		conf_set_key(u, "fall", buf);
		snprintf(buf, sizeof(buf), "%d", r->rise);
		conf_set_key(u, "rise", buf);
	}
	free(gws);
}

/* route_dp.c: rule_priority and the next, and its table. */
static void route_routing_claims(const struct conf *conf, const void *section,
	struct rt_claims *c)
{
	const struct conf_route *r = section;

	(void)conf;
	conf_routing_claim(c, r, r, "rule_priority", false, r->rule_priority,
		r->rule_priority + 2ull);
	conf_routing_claim(c, r, r, "table", true, r->table, r->table + 1ull);
}

const struct conf_section_type conf_route_type = {
	.name = "route",
	.size = sizeof(struct conf_route),
	.keys = route_keys,
	.n_keys = ARRAY_SIZE(route_keys),
	.validate = route_validate,
	.expand = route_expand,
	.validate_expanded = conf_routing_validate,
	.routing_claims = route_routing_claims,
};

struct conf_route *conf_route(const struct conf *conf)
{
	return (struct conf_route *)conf_find(conf, "route", NULL);
}

bool conf_uplink_is_route_gateway(const struct conf_uplink *u)
{
	return u->s.origin && u->s.origin->type == &conf_route_type;
}
