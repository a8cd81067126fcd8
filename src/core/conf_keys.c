/*
 * conf_keys.c - the keyword tables of egress.conf: every section, every key,
 * its type, bounds and default.  egress.conf(5) documents the same table.
 *
 * Must not hold logic beyond per-section validation: parsing is conf.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "conf_keys.h"
#include "util.h"

#define KEY(st, field) .offset = offsetof(struct st, field)

static void routing_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs);

/* ------------------------------------------------------------ [global] */

static const struct conf_key global_keys[] = {
	{
		.name = "log_level",
		.type = CONF_ENUM,
		KEY(conf_global, log_level),
		.def = "info",
		.names = log_level_name,
		.n_names = _LOG_LEVEL_MAX,
		.help = "log level: debug, info, warn or error",
	},
	{
		.name = "metrics_port",
		.type = CONF_INT,
		KEY(conf_global, metrics_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the Prometheus metrics endpoint (0: none)",
	},
	{
		.name = "metrics_address",
		.type = CONF_ADDR,
		KEY(conf_global, metrics_address),
		.def = "::",
		.help = "address the metrics endpoint listens on",
	},
};

const struct conf_section_type conf_global_type = {
	.name = "global",
	.size = sizeof(struct conf_global),
	.keys = global_keys,
	.n_keys = ARRAY_SIZE(global_keys),
};

/* ------------------------------------------------------------ [uplink NAME] */

static bool has_tunnel(const struct conf_section *s)
{
	return addr_is_set(&((const struct conf_uplink *)s)->tunnel);
}

static bool has_check(const struct conf_section *s)
{
	return ((const struct conf_uplink *)s)->check.kind != CHECK_NONE;
}

static bool has_http_check(const struct conf_section *s)
{
	int k = ((const struct conf_uplink *)s)->check.kind;
	return k == CHECK_HTTP || k == CHECK_HTTPS;
}

static bool has_https_check(const struct conf_section *s)
{
	return ((const struct conf_uplink *)s)->check.kind == CHECK_HTTPS;
}

static bool has_dns_check(const struct conf_section *s)
{
	return ((const struct conf_uplink *)s)->check.kind == CHECK_DNS;
}

static const struct conf_key uplink_keys[] = {
	{
		.name = "interface",
		.type = CONF_IFNAME,
		KEY(conf_uplink, interface),
		.help = "network interface the uplink leaves through",
	},
	{
		.name = "gateway",
		.type = CONF_ADDR,
		KEY(conf_uplink, gateway),
		.help = "next-hop router of the uplink (IPv4 or IPv6)",
	},
	{
		.name = "gateway6",
		.type = CONF_ADDR,
		KEY(conf_uplink, gateway6),
		.flags = CONF_V6,
		.help = "IPv6 next hop of a dual-stack uplink whose gateway is IPv4",
	},
	{
		.name = "source",
		.type = CONF_ADDR,
		KEY(conf_uplink, source),
		.help = "local address that traffic through this uplink leaves from",
	},
	{
		.name = "weight",
		.type = CONF_INT,
		KEY(conf_uplink, weight),
		.min = 1,
		.max = 256,
		.def = "1",
		.help = "share of new connections or flows relative to other uplinks",
	},
	/* health check: defaults detect a dead uplink in about 2.5 s at most, and one lost
	 * probe never takes an uplink down (fall 3) */
	{
		.name = "check",
		.type = CONF_ENUM,
		KEY(conf_uplink, check.kind),
		.def = "none",
		.names = check_kind_name,
		.n_names = _CHECK_KIND_MAX,
		.help = "health check: none, http, https, tcp, icmp or dns",
	},
	{
		.name = "check_target",
		.type = CONF_ADDR_LIST,
		KEY(conf_uplink, check.targets),
		.help = "addresses to probe (default: the gateway)",
		.relevant = has_check,
	},
	{
		.name = "check_port",
		.type = CONF_INT,
		KEY(conf_uplink, check.port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port to probe (0: 80 for http, 443 for https, 53 for dns)",
		.relevant = has_check,
	},
	{
		.name = "check_path",
		.type = CONF_STRING,
		KEY(conf_uplink, check.path),
		.def = "/",
		.help = "HTTP(S) path",
		.relevant = has_http_check,
	},
	{
		.name = "check_host",
		.type = CONF_STRING,
		KEY(conf_uplink, check.host),
		.help = "HTTP(S) Host header (default: the target)",
		.relevant = has_http_check,
	},
	{
		.name = "check_status",
		.type = CONF_RANGE_LIST,
		KEY(conf_uplink, check.status),
		.min = 100,
		.max = 599,
		.def = "200-299",
		.help = "HTTP(S) status codes that mean up",
		.relevant = has_http_check,
	},
	{
		.name = "check_tls_verify",
		.type = CONF_BOOL,
		KEY(conf_uplink, check.tls_verify),
		.def = "true",
		.help = "HTTPS: verify the server's certificate",
		.relevant = has_https_check,
	},
	{
		.name = "check_dns_name",
		.type = CONF_STRING,
		KEY(conf_uplink, check.dns_name),
		.def = ".",
		.help = "DNS: name to query (type A for names, NS for the root)",
		.relevant = has_dns_check,
	},
	{
		.name = "check_quorum",
		.type = CONF_INT,
		KEY(conf_uplink, check.quorum),
		.min = 1,
		.max = 64,
		.def = "1",
		.help = "targets that must answer for a round to pass",
		.relevant = has_check,
	},
	{
		.name = "interval",
		.type = CONF_DURATION,
		KEY(conf_uplink, check.interval_ms),
		.min = 50,
		.max = 3600000,
		.def = "1s",
		.help = "time between check rounds",
		.relevant = has_check,
	},
	{
		.name = "interval_failing",
		.type = CONF_DURATION,
		KEY(conf_uplink, check.interval_failing_ms),
		.min = 50,
		.max = 3600000,
		.def = "500ms",
		.help = "time between rounds after a failed round while up",
		.relevant = has_check,
	},
	{
		.name = "interval_recovering",
		.type = CONF_DURATION,
		KEY(conf_uplink, check.interval_recovering_ms),
		.min = 50,
		.max = 3600000,
		.def = "500ms",
		.help = "time between rounds after a good round while down",
		.relevant = has_check,
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_uplink, check.timeout_ms),
		.min = 10,
		.max = 60000,
		.def = "500ms",
		.help = "time a probe may take",
		.relevant = has_check,
	},
	{
		.name = "fall",
		.type = CONF_INT,
		KEY(conf_uplink, check.fall),
		.min = 1,
		.max = 100,
		.def = "3",
		.help = "failed rounds in a row that take the uplink down",
		.relevant = has_check,
	},
	{
		.name = "rise",
		.type = CONF_INT,
		KEY(conf_uplink, check.rise),
		.min = 1,
		.max = 100,
		.def = "3",
		.help = "good rounds in a row that bring the uplink up",
		.relevant = has_check,
	},
	{
		.name = "max_rtt",
		.type = CONF_DURATION,
		KEY(conf_uplink, check.max_rtt_ms),
		.min = 0,
		.max = 60000,
		.def = "0s",
		.help = "average RTT over the window that marks the uplink degraded (0: off)",
		.relevant = has_check,
	},
	{
		.name = "max_loss",
		.type = CONF_INT,
		KEY(conf_uplink, check.max_loss_pct),
		.min = 0,
		.max = 100,
		.def = "0",
		.help = "probe loss in percent over the window that marks it degraded (0: off)",
		.relevant = has_check,
	},
	{
		.name = "window",
		.type = CONF_INT,
		KEY(conf_uplink, check.window),
		.min = 1,
		.max = 1000,
		.def = "20",
		.help = "rounds in the rolling RTT and loss window",
		.relevant = has_check,
	},
	{
		.name = "mark",
		.type = CONF_U32,
		KEY(conf_uplink, mark),
		.flags = CONF_HEX,
		.min = 0,
		.max = 0xffffffff,
		.def = "0",
		.help = "policy: the uplink's mark, inside [balance] mark_mask (0: from its position)",
		.relevant = NULL,
	},
	{
		.name = "table",
		.type = CONF_U32,
		KEY(conf_uplink, table),
		.min = 0,
		.max = 0xfffffff0,
		.def = "0",
		.help = "policy: routing table of the uplink's default route (0: table_base + position)",
	},
	{
		.name = "tier",
		.type = CONF_INT,
		KEY(conf_uplink, tier),
		.min = 1,
		.max = 16,
		.def = "1",
		.help = "policy: preference; a policy uses the lowest tier that has an uplink up",
	},
	{
		.name = "masquerade",
		.type = CONF_BOOL,
		KEY(conf_uplink, masquerade),
		.def = "false",
		.help = "policy: masquerade traffic that leaves through this uplink",
	},
	{
		.name = "dns",
		.type = CONF_ADDR_LIST,
		KEY(conf_uplink, dns),
		.help = "resolvers reached through this uplink (dns forwarder, proxy name lookups)",
	},
	{
		.name = "tunnel",
		.type = CONF_ADDR,
		KEY(conf_uplink, tunnel),
		.help = "proxy tunnel mode: the upstream SOCKS proxy this uplink leads to",
	},
	{
		.name = "tunnel_port",
		.type = CONF_INT,
		KEY(conf_uplink, tunnel_port),
		.min = 1,
		.max = 65535,
		.def = "1080",
		.help = "port of the upstream SOCKS proxy",
		.relevant = has_tunnel,
	},
	{
		.name = "check_mark",
		.type = CONF_U32,
		KEY(conf_uplink, check.mark),
		.min = 0,
		.max = 0xffffffff,
		.flags = CONF_HEX,
		.def = "0",
		.help = "firewall mark (SO_MARK) of the probes, for policy routing (0: none)",
		.relevant = has_check,
	},
};

static void uplink_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_uplink *u = section;
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	(void)conf;
	if (!u->interface[0] && !addr_is_set(&u->gateway) && !addr_is_set(&u->source) &&
		!addr_is_set(&u->tunnel))
		conf_section_error(errs, &u->s, NULL,
			"an uplink needs at least one of 'interface', 'gateway', 'source' or 'tunnel'");
	if (addr_is_set(&u->gateway) && addr_is_set(&u->source) &&
		u->gateway.family != u->source.family) {
		addr_str(&u->gateway, a, sizeof(a));
		addr_str(&u->source, b, sizeof(b));
		conf_section_error(errs, &u->s, "source",
			"expected an address of the gateway's family (gateway %s), got \"%s\"", a, b);
	}
	if (addr_is_set(&u->gateway6) && (!addr_is_set(&u->gateway) || u->gateway.family != AF_INET))
		conf_section_error(errs, &u->s, "gateway6",
			"goes with an IPv4 'gateway' (an IPv6-only uplink uses 'gateway')");
	const struct uplink_check *c = &u->check;
	if (c->kind != CHECK_NONE && !c->targets.n && !addr_is_set(&u->gateway))
		conf_section_error(errs, &u->s, "check",
			"check = %s needs 'check_target' or a 'gateway' to probe",
			check_kind_name[c->kind]);
	if (c->kind == CHECK_TCP && !c->port)
		conf_section_error(errs, &u->s, "check", "check = tcp needs 'check_port'");
	if (c->kind != CHECK_NONE && c->quorum > (int)(c->targets.n ? c->targets.n : 1))
		conf_section_error(errs, &u->s, "check_quorum",
			"expected at most the number of targets (%zu), got %d",
			c->targets.n ? c->targets.n : 1, c->quorum);
	if (c->kind != CHECK_NONE && c->timeout_ms > c->interval_ms)
		conf_section_error(errs, &u->s, "timeout",
			"expected at most 'interval' (%" PRIu32 "ms), got %" PRIu32 "ms",
			c->interval_ms, c->timeout_ms);
	if (c->path && c->path[0] != '/')
		conf_section_error(errs, &u->s, "check_path",
			"expected a path starting with '/', got \"%s\"", c->path);
	if (addr_is_set(&u->gateway) && u->gateway.family == AF_INET6 &&
		IN6_IS_ADDR_LINKLOCAL(&u->gateway.v6) && !u->interface[0])
		conf_section_error(errs, &u->s, "gateway",
			"a link-local gateway needs 'interface' to say which link");
}

const struct conf_section_type conf_uplink_type = {
	.name = "uplink",
	.named = true,
	.size = sizeof(struct conf_uplink),
	.keys = uplink_keys,
	.n_keys = ARRAY_SIZE(uplink_keys),
	.validate = uplink_validate,
};

/* ------------------------------------------------------------ [route] */

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
		.flags = CONF_V4 | CONF_WEIGHT,
		.min = 1,
		.max = 256,
		.help = "route agent mode: send public IPv4 through these gateways (icmp check)",
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
		.help = "no healthy gateway: open = use the main table, closed = refuse traffic",
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

/* Each gateway becomes an [uplink ADDRESS] with the route's health check. */
static void route_expand(struct conf *conf, const struct conf_section *section,
	struct conf_errors *errs)
{
	const struct conf_route *r = (const struct conf_route *)section;
	struct waddr *gws;
	size_t n = conf_route_gateways(r, &gws);
	char name[ADDR_STRLEN], buf[64];
	const struct conf_key *scheme = conf_key_find(&conf_route_type, "scheme");

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

const struct conf_section_type conf_route_type = {
	.name = "route",
	.size = sizeof(struct conf_route),
	.keys = route_keys,
	.n_keys = ARRAY_SIZE(route_keys),
	.validate = route_validate,
	.expand = route_expand,
	.validate_expanded = routing_validate,
};

struct conf_route *conf_route(const struct conf *conf)
{
	return (struct conf_route *)conf_find(conf, "route", NULL);
}

/* ------------------------------------------------------------ [balance], [policy], [rule], [set] */

const char *const sticky_name[_STICKY_MAX] = {
	[STICKY_NONE] = "none",
	[STICKY_SOURCE] = "source",
	[STICKY_SOURCE_DEST] = "source-dest",
};

const char *const last_resort_name[_LAST_RESORT_MAX] = {
	[LAST_RESORT_MAIN] = "main",
	[LAST_RESORT_REJECT] = "reject",
};

const char *const rule_proto_name[_RULE_PROTO_MAX] = {
	[RULE_PROTO_ANY] = "any",
	[RULE_PROTO_TCP] = "tcp",
	[RULE_PROTO_UDP] = "udp",
	[RULE_PROTO_ICMP] = "icmp",
};

static const struct conf_key balance_keys[] = {
	{
		.name = "lan",
		.type = CONF_WORD_LIST,
		KEY(conf_balance, lan),
		.flags = CONF_REQUIRED,
		.help = "LAN interfaces whose traffic is balanced",
	},
	{
		.name = "output",
		.type = CONF_BOOL,
		KEY(conf_balance, output),
		.def = "false",
		.help = "also balance the gateway's own connections",
	},
	{
		.name = "default_policy",
		.type = CONF_STRING,
		KEY(conf_balance, default_policy),
		.help = "policy for traffic no rule matches (default: the first [policy])",
	},
	{
		.name = "mark_mask",
		.type = CONF_U32,
		KEY(conf_balance, mark_mask),
		.flags = CONF_HEX,
		.min = 1,
		.max = 0xffffffff,
		.def = "0xff00",
		.help = "the bits of the packet and connection mark egressd uses",
	},
	{
		.name = "table_base",
		.type = CONF_U32,
		KEY(conf_balance, table_base),
		.min = 1,
		.max = 0xfffff000,
		.def = "4600",
		.help = "the uplinks' routing tables are table_base + position unless set",
	},
	{
		.name = "rule_priority",
		.type = CONF_U32,
		KEY(conf_balance, rule_priority),
		.min = 1,
		.max = 32000,
		.def = "4600",
		.help = "priority of the first uplink's fwmark rule; the others follow",
	},
	{
		.name = "keep_dataplane",
		.type = CONF_BOOL,
		KEY(conf_balance, keep),
		.def = "false",
		.help = "leave the nftables table, rules and routes when egressd stops",
	},
	{
		.name = "flush_conntrack",
		.type = CONF_BOOL,
		KEY(conf_balance, flush_conntrack),
		.def = "true",
		.help = "delete the connections of an uplink that goes down, so clients reconnect",
	},
};

int policy_member_parse(const char *s, struct policy_member_spec *ret)
{
	const char *at = strchr(s, '@'), *slash = strchr(s, '/');
	size_t n = strcspn(s, "@/");
	char *end;

	memset(ret, 0, sizeof(*ret));
	if (n == 0 || n >= sizeof(ret->uplink) || (at && slash && slash < at))
		return -EINVAL;
	memcpy(ret->uplink, s, n);
	if (at) {
		long w = strtol(at + 1, &end, 10);
		if (end == at + 1 || (*end && *end != '/') || w < 1 || w > 256)
			return -EINVAL;
		ret->weight = (int)w;
	}
	if (slash) {
		long t = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || t < 1 || t > 16)
			return -EINVAL;
		ret->tier = (int)t;
	}
	return 0;
}

struct conf_balance *conf_balance(const struct conf *conf)
{
	return (struct conf_balance *)conf_find(conf, "balance", NULL);
}

uint32_t conf_uplink_mark(const struct conf_balance *b, const struct conf_uplink *u, size_t i)
{
	if (u->mark)
		return u->mark;
	return (uint32_t)(i + 1) << __builtin_ctz(b->mark_mask);
}

uint32_t conf_uplink_table(const struct conf_balance *b, const struct conf_uplink *u, size_t i)
{
	return u->table ? u->table : b->table_base + (uint32_t)i;
}

static void balance_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs)
{
	const struct conf_balance *b = section;
	size_t n = conf_n_uplinks(conf);

	if (b->default_policy && !conf_find(conf, "policy", b->default_policy))
		conf_section_error(errs, &b->s, "default_policy",
			"expected the name of a [policy], got \"%s\"", b->default_policy);
	for (size_t i = 0; i < b->lan.n; i++)
		if (strlen(b->lan.v[i]) >= IFNAMSIZ)
			conf_section_error(errs, &b->s, "lan", "expected interface names, got \"%s\"",
				b->lan.v[i]);
	/* marks and tables of the uplinks: inside the mask, distinct */
	for (size_t i = 0; i < n; i++) {
		const struct conf_uplink *u = conf_uplink_at(conf, i);
		uint32_t m = conf_uplink_mark(b, u, i);
		if (u->s.origin)
			continue;
		if ((m & ~b->mark_mask) || !(m & b->mark_mask))
			conf_section_error(errs, &u->s, u->mark ? "mark" : NULL,
				"mark 0x%" PRIx32 " is not inside [balance] mark_mask 0x%" PRIx32 "%s", m,
				b->mark_mask, u->mark ? "" : " (too many uplinks for the mask)");
		for (size_t j = 0; j < i; j++) {
			const struct conf_uplink *v = conf_uplink_at(conf, j);
			if (conf_uplink_mark(b, v, j) == m)
				conf_section_error(errs, &u->s, "mark",
					"mark 0x%" PRIx32 " is [uplink %s]'s too", m, v->s.name);
			if (conf_uplink_table(b, v, j) == conf_uplink_table(b, u, i))
				conf_section_error(errs, &u->s, "table",
					"table %" PRIu32 " is [uplink %s]'s too", conf_uplink_table(b, u, i),
					v->s.name);
		}
	}
}

/*
 * Without a [policy], [balance] implies [policy balanced]: every [uplink] with an interface
 * (the ones that can carry policy traffic), each at its own weight and tier - what a user
 * who lists uplinks with weights expects.
 */
static void balance_implied_policy(struct conf *conf, const struct conf_balance *b,
	struct conf_errors *errs)
{
	struct conf_section *p;
	size_t n = 0;

	if (conf_sections(conf, "policy")->n)
		return;
	for (size_t i = 0; i < conf_n_uplinks(conf); i++) {
		const struct conf_uplink *u = conf_uplink_at(conf, i);
		n += !u->s.origin && u->interface[0];
	}
	if (!n) {
		conf_section_error(errs, &b->s, NULL,
			"needs a [policy NAME], or an [uplink] with an interface to balance over");
		return;
	}
	p = conf_add_generated(conf, "policy", "balanced", &b->s, errs);
	if (!p)
		return;
	for (size_t i = 0; i < conf_n_uplinks(conf); i++) {
		const struct conf_uplink *u = conf_uplink_at(conf, i);
		if (!u->s.origin && u->interface[0])
			conf_set_key(p, "member", u->s.name);
	}
}

/* The policy module's probes carry the uplink's mark, so they leave by its own table. */
static void balance_expand(struct conf *conf, const struct conf_section *section,
	struct conf_errors *errs)
{
	const struct conf_balance *b = (const struct conf_balance *)section;
	const struct conf_key *k = conf_key_find(&conf_uplink_type, "check_mark");
	char buf[32];

	balance_implied_policy(conf, b, errs);
	for (size_t i = 0; i < conf_n_uplinks(conf); i++) {
		struct conf_uplink *u = conf_uplink_at(conf, i);
		if (u->s.origin || u->check.kind == CHECK_NONE || conf_key_is_set(&u->s, k))
			continue;
		snprintf(buf, sizeof(buf), "0x%" PRIx32, conf_uplink_mark(b, u, i));
		conf_set_key(&u->s, "check_mark", buf);
	}
}

const struct conf_section_type conf_balance_type = {
	.name = "balance",
	.size = sizeof(struct conf_balance),
	.keys = balance_keys,
	.n_keys = ARRAY_SIZE(balance_keys),
	.validate = balance_validate,
	.validate_expanded = routing_validate,
	.expand = balance_expand,
};

static bool sticky_on(const struct conf_section *s)
{
	return ((const struct conf_policy *)s)->sticky != STICKY_NONE;
}

static const struct conf_key policy_keys[] = {
	{
		.name = "member",
		.type = CONF_WORD_LIST,
		KEY(conf_policy, members),
		.flags = CONF_REQUIRED,
		.help = "uplinks of the policy: UPLINK[@WEIGHT][/TIER] (repeatable)",
	},
	{
		.name = "sticky",
		.type = CONF_ENUM,
		KEY(conf_policy, sticky),
		.def = "none",
		.names = sticky_name,
		.n_names = _STICKY_MAX,
		.help = "keep a client on one uplink: none, source or source-dest",
	},
	{
		.name = "sticky_timeout",
		.type = CONF_DURATION,
		KEY(conf_policy, sticky_timeout_ms),
		.min = 1000,
		.max = 86400000,
		.def = "10m",
		.help = "how long a client stays on its uplink after its last new connection",
		.relevant = sticky_on,
	},
	{
		.name = "sticky_prefix",
		.type = CONF_INT,
		KEY(conf_policy, sticky_prefix4),
		.min = 0,
		.max = 32,
		.def = "24",
		.help = "source-dest: IPv4 destination prefix length that counts as one destination",
		.relevant = sticky_on,
	},
	{
		.name = "sticky_prefix6",
		.type = CONF_INT,
		KEY(conf_policy, sticky_prefix6),
		.min = 0,
		.max = 128,
		.def = "64",
		.help = "source-dest: the same for IPv6",
		.relevant = sticky_on,
	},
	{
		.name = "last_resort",
		.type = CONF_ENUM,
		KEY(conf_policy, last_resort),
		.def = "main",
		.names = last_resort_name,
		.n_names = _LAST_RESORT_MAX,
		.help = "no member up: main (normal routing) or reject",
	},
};

static void policy_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_policy *p = section;
	struct policy_member_spec m;

	for (size_t i = 0; i < p->members.n; i++) {
		if (policy_member_parse(p->members.v[i], &m) < 0)
			conf_section_error(errs, &p->s, "member",
				"expected UPLINK[@WEIGHT 1-256][/TIER 1-16], got \"%s\"", p->members.v[i]);
		else if (!conf_find(conf, "uplink", m.uplink))
			conf_section_error(errs, &p->s, "member",
				"expected the name of an [uplink], got \"%s\"", m.uplink);
	}
	if (streq(p->s.name, "main"))
		conf_section_error(errs, &p->s, NULL, "\"main\" is reserved for bypassing the policies");
}

const struct conf_section_type conf_policy_type = {
	.name = "policy",
	.named = true,
	.size = sizeof(struct conf_policy),
	.keys = policy_keys,
	.n_keys = ARRAY_SIZE(policy_keys),
	.validate = policy_validate,
};

static const struct conf_key rule_keys[] = {
	{
		.name = "src",
		.type = CONF_CIDR_LIST,
		KEY(conf_rule, src),
		.flags = CONF_BARE,
		.help = "source addresses or prefixes",
	},
	{
		.name = "dst",
		.type = CONF_CIDR_LIST,
		KEY(conf_rule, dst),
		.flags = CONF_BARE,
		.help = "destination addresses or prefixes",
	},
	{
		.name = "dst_set",
		.type = CONF_STRING,
		KEY(conf_rule, dst_set),
		.help = "a named destination [set]",
	},
	{
		.name = "proto",
		.type = CONF_ENUM,
		KEY(conf_rule, proto),
		.def = "any",
		.names = rule_proto_name,
		.n_names = _RULE_PROTO_MAX,
		.help = "any, tcp, udp or icmp",
	},
	{
		.name = "dport",
		.type = CONF_RANGE_LIST,
		KEY(conf_rule, dport),
		.min = 1,
		.max = 65535,
		.help = "destination ports or ranges (tcp or udp)",
	},
	{
		.name = "iif",
		.type = CONF_IFNAME,
		KEY(conf_rule, iif),
		.help = "incoming LAN interface",
	},
	{
		.name = "policy",
		.type = CONF_STRING,
		KEY(conf_rule, policy),
		.flags = CONF_REQUIRED,
		.help = "the [policy] to use, or main to bypass them",
	},
};

static void rule_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_rule *r = section;

	if (r->policy && !streq(r->policy, "main") && !conf_find(conf, "policy", r->policy))
		conf_section_error(errs, &r->s, "policy",
			"expected the name of a [policy] or main, got \"%s\"", r->policy);
	if (r->dst_set && !conf_find(conf, "set", r->dst_set))
		conf_section_error(errs, &r->s, "dst_set", "expected the name of a [set], got \"%s\"",
			r->dst_set);
	if (r->dport.n && r->proto != RULE_PROTO_TCP && r->proto != RULE_PROTO_UDP)
		conf_section_error(errs, &r->s, "dport", "ports need proto = tcp or udp");
	if (!conf_balance(conf))
		conf_section_error(errs, &r->s, NULL, "rules need a [balance] section");
}

const struct conf_section_type conf_rule_type = {
	.name = "rule",
	.named = true,
	.size = sizeof(struct conf_rule),
	.keys = rule_keys,
	.n_keys = ARRAY_SIZE(rule_keys),
	.validate = rule_validate,
};

static const struct conf_key set_keys[] = {
	{
		.name = "prefix",
		.type = CONF_CIDR_LIST,
		KEY(conf_set, prefixes),
		.flags = CONF_BARE | CONF_REQUIRED,
		.help = "addresses and prefixes of the set (repeatable)",
	},
};

const struct conf_section_type conf_set_type = {
	.name = "set",
	.named = true,
	.size = sizeof(struct conf_set),
	.keys = set_keys,
	.n_keys = ARRAY_SIZE(set_keys),
};

/* ------------------------------------------------------------ [proxy], [client] */

static bool proxy_has_check(const struct conf_section *s)
{
	return ((const struct conf_proxy *)s)->check != CHECK_NONE;
}

static const struct conf_key proxy_keys[] = {
	{
		.name = "address",
		.type = CONF_ADDR,
		KEY(conf_proxy, address),
		.def = "127.0.0.1",
		.help = "address of the SOCKS/HTTP listener (-lhost)",
	},
	{
		.name = "port",
		.type = CONF_INT,
		KEY(conf_proxy, port),
		.min = 0,
		.max = 65535,
		.def = "8080",
		.help = "port of the SOCKS4/4a/5 and HTTP proxy listener; 0: none (-lport)",
	},
	{
		.name = "allow",
		.type = CONF_WORD_LIST,
		KEY(conf_proxy, allow),
		.def = ACL_LOCAL,
		.help = "clients admitted, on every listener: prefixes and 'local' (loopback, "
			"private and link-local ranges, this host, its non-uplink subnets); never "
			"one that came in through an uplink interface (-allow)",
	},
	{
		.name = "dispatch",
		.type = CONF_WORD_LIST,
		KEY(conf_proxy, dispatch),
		.help = "uplinks as local addresses ADDR@RATIO (with tunnel: upstream SOCKS "
			"proxies HOST:PORT@RATIO); each becomes an [uplink]",
	},
	{
		.name = "tunnel",
		.type = CONF_BOOL,
		KEY(conf_proxy, tunnel),
		.def = "false",
		.help = "relay whole connections to the uplinks' upstream SOCKS proxies",
	},
	{
		.name = "transparent_port",
		.type = CONF_INT,
		KEY(conf_proxy, transparent_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the transparent listener for REDIRECT (SO_ORIGINAL_DST); 0: none",
	},
	{
		.name = "tproxy_port",
		.type = CONF_INT,
		KEY(conf_proxy, tproxy_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the transparent listener for TPROXY (IP_TRANSPARENT); 0: none",
	},
	{
		.name = "username",
		.type = CONF_STRING,
		KEY(conf_proxy, username),
		.help = "clients must authenticate (SOCKS5 RFC 1929, HTTP Basic) with this user",
	},
	{
		.name = "password",
		.type = CONF_STRING,
		KEY(conf_proxy, password),
		.help = "and this password",
	},
	{
		.name = "connect_timeout",
		.type = CONF_DURATION,
		KEY(conf_proxy, connect_timeout_ms),
		.min = 10,
		.max = 60000,
		.def = "300ms",
		.help = "an uplink that has not connected by then is raced by another",
	},
	{
		.name = "connect_deadline",
		.type = CONF_DURATION,
		KEY(conf_proxy, connect_deadline_ms),
		.min = 100,
		.max = 300000,
		.def = "10s",
		.help = "the client is told the connect failed after this",
	},
	{
		.name = "idle_timeout",
		.type = CONF_DURATION,
		KEY(conf_proxy, idle_timeout_ms),
		.min = 0,
		.max = 7 * 24 * 3600 * 1000LL,
		.def = "1h",
		.help = "a connection without a byte either way for this long is closed; 0: never",
	},
	{
		.name = "max_connections",
		.type = CONF_INT,
		KEY(conf_proxy, max_connections),
		.min = 1,
		.max = 1000000,
		.def = "20000",
		.help = "connections at once, all clients together",
	},
	{
		.name = "max_per_client",
		.type = CONF_INT,
		KEY(conf_proxy, max_per_client),
		.min = 1,
		.max = 1000000,
		.def = "1000",
		.help = "connections at once from one client address",
	},
	{
		.name = "resolver",
		.type = CONF_ADDR_LIST,
		KEY(conf_proxy, resolvers),
		.help = "resolvers for host names in requests, asked through the connection's "
			"uplink (default: the uplink's dns, else /etc/resolv.conf)",
	},
	{
		.name = "client_rules",
		.type = CONF_STRING,
		KEY(conf_proxy, client_rules),
		.help = "JSON file of per-client contention ratios (go-dispatch-proxy's format)",
	},
	{
		.name = "affinity",
		.type = CONF_DURATION,
		KEY(conf_proxy, affinity_ms),
		.min = 0,
		.max = 24 * 3600 * 1000LL,
		.def = "0",
		.help = "keep a client on the uplink it last used for this long; 0: off",
	},
	{
		.name = "client_metrics",
		.type = CONF_BOOL,
		KEY(conf_proxy, client_metrics),
		.def = "true",
		.help = "egress_proxy_client_* metrics: a series per client address, dropped when "
			"the client has been idle and is forgotten",
	},
	{
		.name = "workers",
		.type = CONF_INT,
		KEY(conf_proxy, workers),
		.min = 0,
		.max = 256,
		.def = "0",
		.help = "relay threads (0: one per CPU)",
	},
	{
		.name = "check",
		.type = CONF_ENUM,
		KEY(conf_proxy, check),
		.def = "none",
		.names = check_kind_name,
		.n_names = _CHECK_KIND_MAX,
		.help = "health check of the dispatch uplinks: none, http, https, tcp, icmp or dns "
			"(tunnel mode: tcp to the upstream proxy unless set)",
	},
	{
		.name = "check_target",
		.type = CONF_ADDR_LIST,
		KEY(conf_proxy, check_targets),
		.help = "addresses the dispatch uplinks' checks probe",
		.relevant = proxy_has_check,
	},
	{
		.name = "check_port",
		.type = CONF_INT,
		KEY(conf_proxy, check_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the checks (0: the kind's default)",
		.relevant = proxy_has_check,
	},
	{
		.name = "check_interval",
		.type = CONF_DURATION,
		KEY(conf_proxy, check_interval_ms),
		.min = 100,
		.max = 3600 * 1000,
		.def = "1s",
		.help = "between the dispatch uplinks' check rounds",
		.relevant = proxy_has_check,
	},
	{
		.name = "table_base",
		.type = CONF_U32,
		KEY(conf_proxy, table_base),
		.min = 1,
		.max = 0xfffffff0,
		.def = "5000",
		.help = "uplinks with a source address get routing table table_base + position",
	},
	{
		.name = "rule_priority",
		.type = CONF_U32,
		KEY(conf_proxy, rule_priority),
		.min = 1,
		.max = 32000,
		.def = "5000",
		.help = "priority of the source rules (two per uplink, upwards from here)",
	},
};

int conf_ratio_parse(const char *s, char *name, size_t len, int *weight)
{
	const char *at = strrchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);
	char *end;
	long w = 1;

	if (!n || n >= len)
		return -EINVAL;
	if (at) {
		errno = 0;
		w = strtol(at + 1, &end, 10);
		if (errno || end == at + 1 || *end || w < 1 || w > 1000)
			return -ERANGE;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	*weight = (int)w;
	return 0;
}

/* "ADDR" or "[ADDR]:PORT" / "ADDR:PORT" (tunnel mode) of a dispatch word without its ratio. */
static int dispatch_addr_parse(const char *s, bool tunnel, struct addr *ret, int *port)
{
	char host[ADDR_STRLEN + 2];
	const char *colon;
	char *end;
	long p;

	if (!tunnel)
		return addr_parse(s, ret);
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 3 || host[hl - 1] != ']')
			return -EINVAL;
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return addr_parse(host, ret);
}

/* [proxy] allow and [dns] allow: each word "local" or an address or prefix (acl.h). */
static void allow_validate(const struct conf_section *s, const struct word_list *l,
	struct conf_errors *errs)
{
	struct cidr c;

	for (size_t i = 0; i < l->n; i++) {
		int r = acl_word_parse(l->v[i], &c);
		if (r < 0)
			conf_section_error(errs, s, "allow",
				"expected '%s' or an address or prefix such as 192.168.0.0/16, got "
				"\"%s\"%s%s%s",
				ACL_LOCAL, l->v[i], r == -EINVAL ? "" : " (", r == -EINVAL ? "" : cidr_strerror(r),
				r == -EINVAL ? "" : ")");
	}
}

static void proxy_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_proxy *p = section;
	char name[128];
	struct addr a;
	int w, port;

	allow_validate(&p->s, &p->allow, errs);
	for (size_t i = 0; i < p->dispatch.n; i++) {
		if (conf_ratio_parse(p->dispatch.v[i], name, sizeof(name), &w) < 0 ||
			dispatch_addr_parse(name, p->tunnel, &a, &port) < 0)
			conf_section_error(errs, &p->s, "dispatch",
				"expected %s with an optional @RATIO (1-1000), got \"%s\"",
				p->tunnel ? "an upstream proxy HOST:PORT" : "a local address",
				p->dispatch.v[i]);
	}
	if (!p->username != !p->password)
		conf_section_error(errs, &p->s, p->username ? "password" : "username",
			"'username' and 'password' go together");
	if (p->check != CHECK_NONE && !p->check_targets.n && !p->tunnel)
		conf_section_error(errs, &p->s, "check", "check = %s needs 'check_target'",
			check_kind_name[p->check]);
	if (p->check == CHECK_TCP && !p->check_port && !p->tunnel)
		conf_section_error(errs, &p->s, "check", "check = tcp needs 'check_port'");
	if (p->connect_timeout_ms > p->connect_deadline_ms)
		conf_section_error(errs, &p->s, "connect_timeout",
			"expected at most 'connect_deadline' (%" PRIu32 "ms), got %" PRIu32 "ms",
			p->connect_deadline_ms, p->connect_timeout_ms);
	if (!p->port && !p->transparent_port && !p->tproxy_port && !conf_gateway(conf))
		conf_section_error(errs, &p->s, "port",
			"the proxy needs a listener: 'port', 'transparent_port' or 'tproxy_port'");
	if (!p->dispatch.n && !conf_n_uplinks(conf))
		conf_section_error(errs, &p->s, "dispatch",
			"the proxy needs uplinks: 'dispatch' or [uplink] sections");
}

/* Each dispatch word becomes an [uplink ADDR] (tunnel: [uplink HOST:PORT]). */
static void proxy_expand(struct conf *conf, const struct conf_section *section,
	struct conf_errors *errs)
{
	const struct conf_proxy *p = (const struct conf_proxy *)section;
	const struct conf_key *ck = conf_key_find(&conf_proxy_type, "check");
	char name[128], buf[64];
	struct addr a;
	int w, port = 0, kind;

	for (size_t i = 0; i < p->dispatch.n; i++) {
		struct conf_section *u;

		conf_ratio_parse(p->dispatch.v[i], name, sizeof(name), &w);
		dispatch_addr_parse(name, p->tunnel, &a, &port);
		u = conf_add_generated(conf, "uplink", name, &p->s, errs);
		if (!u)
			continue;
		addr_str(&a, buf, sizeof(buf));
		conf_set_key(u, p->tunnel ? "tunnel" : "source", buf);
		if (p->tunnel) {
			snprintf(buf, sizeof(buf), "%d", port);
			conf_set_key(u, "tunnel_port", buf);
		}
		snprintf(buf, sizeof(buf), "%d", w);
		conf_set_key(u, "weight", buf);
		kind = p->check;
		if (p->tunnel && !conf_key_is_set(&p->s, ck))
			kind = CHECK_TCP;
		conf_set_key(u, "check", check_kind_name[kind]);
		if (kind == CHECK_NONE)
			continue;
		for (size_t j = 0; j < p->check_targets.n; j++) {
			addr_str(&p->check_targets.v[j].addr, buf, sizeof(buf));
			conf_set_key(u, "check_target", buf);
		}
		if (!p->check_targets.n) {
			/* tunnel mode: the upstream proxy itself */
			addr_str(&a, buf, sizeof(buf));
			conf_set_key(u, "check_target", buf);
		}
		if (p->check_port || p->tunnel) {
			snprintf(buf, sizeof(buf), "%d",
				p->check_port ? p->check_port : port);
			conf_set_key(u, "check_port", buf);
		}
		conf_format_duration(p->check_interval_ms, buf, sizeof(buf));
		conf_set_key(u, "interval", buf);
		conf_format_duration(MIN(p->check_interval_ms, 500), buf, sizeof(buf));
		conf_set_key(u, "interval_failing", buf);
		conf_set_key(u, "interval_recovering", buf);
		conf_format_duration(MIN(p->check_interval_ms, 1000), buf, sizeof(buf));
		conf_set_key(u, "timeout", buf);
	}
}

const struct conf_section_type conf_proxy_type = {
	.name = "proxy",
	.size = sizeof(struct conf_proxy),
	.keys = proxy_keys,
	.n_keys = ARRAY_SIZE(proxy_keys),
	.validate = proxy_validate,
	.expand = proxy_expand,
	.validate_expanded = routing_validate,
};

struct conf_proxy *conf_proxy(const struct conf *conf)
{
	return (struct conf_proxy *)conf_find(conf, "proxy", NULL);
}

static const struct conf_key client_keys[] = {
	{
		.name = "source",
		.type = CONF_CIDR_LIST,
		KEY(conf_client, source),
		.flags = CONF_BARE | CONF_REQUIRED,
		.help = "client addresses and prefixes (longest prefix wins among [client]s)",
	},
	{
		.name = "ratio",
		.type = CONF_WORD_LIST,
		KEY(conf_client, ratio),
		.flags = CONF_REQUIRED,
		.help = "UPLINK@N ...: contention ratios for these clients (UPLINK: name or "
			"source address)",
	},
};

static bool uplink_named(const struct conf *conf, const char *name)
{
	struct addr a;
	bool is_addr = addr_parse(name, &a) == 0;

	for (size_t i = 0; i < conf_n_uplinks(conf); i++) {
		const struct conf_uplink *u = conf_uplink_at(conf, i);
		if (streq(u->s.name, name) || (is_addr && addr_eq(&u->source, &a)))
			return true;
	}
	return false;
}

static void client_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_client *c = section;
	const struct conf_proxy *p = conf_proxy(conf);
	char name[128];
	int w;

	for (size_t i = 0; i < c->ratio.n; i++) {
		if (conf_ratio_parse(c->ratio.v[i], name, sizeof(name), &w) < 0) {
			conf_section_error(errs, &c->s, "ratio",
				"expected UPLINK@N (N 1-1000), got \"%s\"", c->ratio.v[i]);
			continue;
		}
		bool in_dispatch = false;
		for (size_t j = 0; p && j < p->dispatch.n; j++)
			if (!strncmp(p->dispatch.v[j], name, strlen(name)) &&
				(p->dispatch.v[j][strlen(name)] == '@' ||
					!p->dispatch.v[j][strlen(name)]))
				in_dispatch = true;
		if (!in_dispatch && !uplink_named(conf, name))
			conf_section_error(errs, &c->s, "ratio", "no uplink called \"%s\"", name);
	}
	if (!p)
		conf_section_error(errs, &c->s, NULL, "[client] needs a [proxy] section");
}

const struct conf_section_type conf_client_type = {
	.name = "client",
	.named = true,
	.size = sizeof(struct conf_client),
	.keys = client_keys,
	.n_keys = ARRAY_SIZE(client_keys),
	.validate = client_validate,
};

size_t conf_n_clients(const struct conf *conf)
{
	return conf_sections(conf, "client")->n;
}

struct conf_client *conf_client_at(const struct conf *conf, size_t i)
{
	return (struct conf_client *)conf_sections(conf, "client")->items[i];
}

/* ------------------------------------------------------------ [dns] */

static const struct conf_key dns_keys[] = {
	{
		.name = "address",
		.type = CONF_ADDR,
		KEY(conf_dns, address),
		.def = "127.0.0.1",
		.help = "address the forwarder listens on (:: for every address)",
	},
	{
		.name = "port",
		.type = CONF_INT,
		KEY(conf_dns, port),
		.min = 1,
		.max = 65535,
		.def = "5353",
		.help = "port the forwarder listens on (UDP, and TCP with tcp = yes)",
	},
	{
		.name = "allow",
		.type = CONF_WORD_LIST,
		KEY(conf_dns, allow),
		.def = ACL_LOCAL,
		.help = "clients answered: prefixes and 'local', as [proxy] allow; others get "
			"REFUSED, or nothing over UDP through an uplink interface",
	},
	{
		.name = "upstream",
		.type = CONF_ADDR_LIST,
		KEY(conf_dns, upstream),
		.help = "resolvers used through the main routing table, besides the uplinks' 'dns'",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_dns, timeout_ms),
		.min = 50,
		.max = 30000,
		.def = "1s",
		.help = "per attempt; the next attempt goes through another uplink",
	},
	{
		.name = "attempts",
		.type = CONF_INT,
		KEY(conf_dns, attempts),
		.min = 1,
		.max = 10,
		.def = "3",
		.help = "attempts per query before SERVFAIL",
	},
	{
		.name = "cache_size",
		.type = CONF_INT,
		KEY(conf_dns, cache_size),
		.min = 0,
		.max = 10000000,
		.def = "1024",
		.help = "answers cached (honouring their TTLs); 0: no cache",
	},
	{
		.name = "max_pending",
		.type = CONF_INT,
		KEY(conf_dns, max_pending),
		.min = 1,
		.max = 1000000,
		.def = "1024",
		.help = "queries waiting for an upstream at once",
	},
	{
		.name = "tcp",
		.type = CONF_BOOL,
		KEY(conf_dns, tcp),
		.def = "true",
		.help = "also serve DNS over TCP",
	},
};

static void dns_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_dns *d = section;
	bool any = d->upstream.n > 0;

	allow_validate(&d->s, &d->allow, errs);
	for (size_t i = 0; i < conf_n_uplinks(conf); i++)
		if (conf_uplink_at(conf, i)->dns.n)
			any = true;
	if (!any && !conf_proxy(conf))
		conf_section_error(errs, &d->s, "upstream",
			"the forwarder needs resolvers: 'upstream' or an uplink's 'dns'");
}

const struct conf_section_type conf_dns_type = {
	.name = "dns",
	.size = sizeof(struct conf_dns),
	.keys = dns_keys,
	.n_keys = ARRAY_SIZE(dns_keys),
	.validate = dns_validate,
};

struct conf_dns *conf_dns(const struct conf *conf)
{
	return (struct conf_dns *)conf_find(conf, "dns", NULL);
}

/* ------------------------------------------------------------ [gateway] */

const char *const gateway_intercept_name[_INTERCEPT_MAX] = {
	[INTERCEPT_REDIRECT] = "redirect",
	[INTERCEPT_TPROXY] = "tproxy",
};

static bool is_tproxy(const struct conf_section *s)
{
	return ((const struct conf_gateway *)s)->intercept == INTERCEPT_TPROXY;
}

static const struct conf_key gateway_keys[] = {
	{
		.name = "address",
		.type = CONF_ADDR,
		KEY(conf_gateway, address),
		.flags = CONF_V4,
		.def = "192.168.100.1",
		.help = "the gateway's address on the clients' subnet (-gateway-ip)",
	},
	{
		.name = "subnet",
		.type = CONF_CIDR_LIST,
		KEY(conf_gateway, subnet),
		.def = "192.168.100.0/24",
		.help = "the clients' subnets (-subnet)",
	},
	{
		.name = "transparent_port",
		.type = CONF_INT,
		KEY(conf_gateway, transparent_port),
		.min = 1,
		.max = 65535,
		.def = "8888",
		.help = "the clients' TCP goes to the transparent proxy on this port",
	},
	{
		.name = "dns_port",
		.type = CONF_INT,
		KEY(conf_gateway, dns_port),
		.min = 1,
		.max = 65535,
		.def = "5353",
		.help = "the clients' DNS goes to the forwarder on this port",
	},
	{
		.name = "nat_interface",
		.type = CONF_STRING,
		KEY(conf_gateway, nat_interface),
		.def = "auto",
		.help = "interface that masquerades the clients' other traffic (auto: any but theirs)",
	},
	{
		.name = "auto_config",
		.type = CONF_BOOL,
		KEY(conf_gateway, auto_config),
		.def = "false",
		.help = "install the interception and NAT (table inet egress_gateway) after saving "
			"the ruleset; off: only log what would be installed",
	},
	{
		.name = "intercept",
		.type = CONF_ENUM,
		KEY(conf_gateway, intercept),
		.def = "redirect",
		.names = gateway_intercept_name,
		.n_names = _INTERCEPT_MAX,
		.help = "how TCP reaches the proxy: redirect (NAT) or tproxy",
	},
	{
		.name = "backup_file",
		.type = CONF_STRING,
		KEY(conf_gateway, backup_file),
		.def = "/var/lib/egress/ruleset-backup.nft",
		.help = "where the ruleset found before the first change is saved",
	},
	{
		.name = "tproxy_mark",
		.type = CONF_U32,
		KEY(conf_gateway, tproxy_mark),
		.flags = CONF_HEX,
		.min = 1,
		.max = 0xffffffff,
		.def = "0x1",
		.help = "tproxy: mark of intercepted packets (bit of the mark, routed to local)",
		.relevant = is_tproxy,
	},
	{
		.name = "tproxy_table",
		.type = CONF_U32,
		KEY(conf_gateway, tproxy_table),
		.min = 1,
		.max = 0xfffffff0,
		.def = "4700",
		.help = "tproxy: routing table that delivers marked packets locally",
		.relevant = is_tproxy,
	},
	{
		.name = "rule_priority",
		.type = CONF_U32,
		KEY(conf_gateway, rule_priority),
		.min = 1,
		.max = 32000,
		.def = "4400",
		.help = "tproxy: priority of the rule to tproxy_table",
		.relevant = is_tproxy,
	},
};

static void gateway_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_gateway *g = section;
	const struct conf_dns *d = conf_dns(conf);

	if (!conf_proxy(conf))
		conf_section_error(errs, &g->s, NULL,
			"gateway mode needs a [proxy] section (its uplinks)");
	if (d && !d->s.origin && d->port != g->dns_port)
		conf_section_error(errs, &g->s, "dns_port",
			"expected [dns] port (%d), got %d", d->port, g->dns_port);
	/* the clients' DNS is redirected to the address of the interface it came in on */
	if (d && !d->s.origin && !addr_is_any(&d->address) && !addr_eq(&d->address, &g->address)) {
		char want[ADDR_STRLEN], got[ADDR_STRLEN];
		addr_str(&g->address, want, sizeof(want));
		addr_str(&d->address, got, sizeof(got));
		conf_section_error(errs, &d->s, "address",
			"gateway mode sends its clients' DNS to the gateway's own address: expected "
			":: (every address) or [gateway] address %s, got %s", want, got);
	}
	if (!g->subnet.n)
		conf_section_error(errs, &g->s, "subnet", "expected at least one subnet");
}

/* Gateway mode implies the DNS forwarder on dns_port, on every address. */
static void gateway_expand(struct conf *conf, const struct conf_section *section,
	struct conf_errors *errs)
{
	const struct conf_gateway *g = (const struct conf_gateway *)section;
	const struct conf_proxy *p = conf_proxy(conf);
	struct conf_section *d;
	char buf[16];

	if (conf_dns(conf))
		return;
	d = conf_add_generated(conf, "dns", NULL, &g->s, errs);
	if (!d)
		return;
	conf_set_key(d, "address", "::");
	snprintf(buf, sizeof(buf), "%d", g->dns_port);
	conf_set_key(d, "port", buf);
	/* its clients are the transparent proxy's: the same allow list */
	if (p) {
		conf_value_clear(d, conf_key_find(d->type, "allow"));
		for (size_t i = 0; i < p->allow.n; i++)
			conf_set_key(d, "allow", p->allow.v[i]);
	}
}

const struct conf_section_type conf_gateway_type = {
	.name = "gateway",
	.size = sizeof(struct conf_gateway),
	.keys = gateway_keys,
	.n_keys = ARRAY_SIZE(gateway_keys),
	.validate = gateway_validate,
	.expand = gateway_expand,
	.validate_expanded = routing_validate,
};

struct conf_gateway *conf_gateway(const struct conf *conf)
{
	return (struct conf_gateway *)conf_find(conf, "gateway", NULL);
}

/* ------------------------------------------------------------ rules and tables of the modules */

/*
 * The route and policy modules, the proxy's source routing and gateway mode all mark their
 * rules with one protocol, and each reconciles "its" rules by priority range: where two
 * ranges overlap, one module deletes (or shadows) the other's rules, and where two tables
 * meet, one flushes the other's routes.  So the ranges of the modules configured together
 * must stay apart (see conf_keys.h for each module's extent).
 */
struct rt_claim {
	const struct conf_section *owner; /* the module's section (which reports) */
	const struct conf_section *s;	  /* where the range is set */
	const char *key;
	bool table;	  /* routing tables, else rule priorities */
	uint64_t lo, hi; /* [lo, hi) */
};

struct rt_claims {
	struct rt_claim *v;
	size_t n;
};

static void claim(struct rt_claims *c, const void *owner, const void *s, const char *key,
	bool table, uint64_t lo, uint64_t hi)
{
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n++] = (struct rt_claim){.owner = owner, .s = s, .key = key, .table = table,
		.lo = lo, .hi = hi};
}

static void routing_claims(const struct conf *conf, struct rt_claims *c)
{
	const struct conf_route *r = conf_route(conf);
	const struct conf_balance *b = conf_balance(conf);
	const struct conf_proxy *p = conf_proxy(conf);
	const struct conf_gateway *g = conf_gateway(conf);
	size_t n = conf_n_uplinks(conf);

	if (r) {
		claim(c, r, r, "rule_priority", false, r->rule_priority, r->rule_priority + 2ull);
		claim(c, r, r, "table", true, r->table, r->table + 1ull);
	}
	if (b) {
		claim(c, b, b, "rule_priority", false, b->rule_priority,
			b->rule_priority + (uint64_t)CONF_BALANCE_RULES);
		/* as policy.c's routing_reconcile(): the first rule goes to main, then one per
		 * uplink it balances; tables from table_base in runs, or an uplink's own */
		for (size_t i = 0; i < n && i + 1 < CONF_BALANCE_RULES; i++) {
			const struct conf_uplink *u = conf_uplink_at(conf, i);
			uint64_t t = conf_uplink_table(b, u, i);
			struct rt_claim *last = c->n ? &c->v[c->n - 1] : NULL;

			if (u->s.origin || !u->interface[0])
				continue;
			if (u->table)
				claim(c, b, u, "table", true, t, t + 1);
			else if (last && last->s == &b->s && last->table && last->hi == t)
				last->hi++;
			else
				claim(c, b, b, "table_base", true, t, t + 1);
		}
	}
	if (p && n) {
		size_t k = MIN(n, (size_t)CONF_SRCROUTE_MAX);

		/* srcroute.c: rules + 2i and + 2i + 1 and table + i for uplink i with a source;
		 * it deletes the rules of those shapes and flushes the tables of the uplinks,
		 * sources or not */
		claim(c, p, p, "rule_priority", false, p->rule_priority,
			p->rule_priority + 2ull * k);
		claim(c, p, p, "table_base", true, p->table_base, p->table_base + k);
	}
	if (g && g->intercept == INTERCEPT_TPROXY) {
		claim(c, g, g, "rule_priority", false, g->rule_priority, g->rule_priority + 1ull);
		claim(c, g, g, "tproxy_table", true, g->tproxy_table, g->tproxy_table + 1ull);
	}
}

static const char *range_str(const struct rt_claim *c, char *buf, size_t len)
{
	if (c->hi - c->lo == 1)
		snprintf(buf, len, "%" PRIu64, c->lo);
	else
		snprintf(buf, len, "%" PRIu64 "-%" PRIu64, c->lo, c->hi - 1);
	return buf;
}

static bool key_set(const struct rt_claim *c)
{
	return conf_key_is_set(c->s, conf_key_find(c->s->type, c->key));
}

static const char *claim_what(const struct rt_claim *c)
{
	bool one = c->hi - c->lo == 1;

	return c->table ? (one ? "routing table" : "routing tables")
			: (one ? "rule priority" : "rule priorities");
}

static const char *owner_label(const struct conf_section *s, char *buf, size_t len)
{
	if (s->name)
		snprintf(buf, len, "[%s %s]", s->type->name, s->name);
	else
		snprintf(buf, len, "[%s]", s->type->name);
	return buf;
}

/* A range of tables made of a base and a position ends inside the kernel's 32-bit ids and
 * holds none of its own (0 unspec, 253 default, 254 main, 255 local): table_base + i would
 * wrap past 2^32 unchecked, or flush main. */
static void routing_validate_tables(const struct rt_claims *c, const void *section,
	struct conf_errors *errs)
{
	char a[48];

	for (size_t i = 0; i < c->n; i++) {
		const struct rt_claim *x = &c->v[i];

		if (x->owner != section || !x->table)
			continue;
		if (x->hi > (uint64_t)UINT32_MAX + 1)
			conf_section_error(errs, x->s, x->key,
				"routing tables %" PRIu64 "-%" PRIu64 " run past %" PRIu32 ", the last "
				"table id: expected at most %" PRIu64,
				x->lo, x->hi - 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1 - (x->hi - x->lo));
		else if (x->lo <= 255 && x->hi > 253)
			conf_section_error(errs, x->s, x->key,
				"%s %s hold%s the kernel's default, main or local table (253-255)",
				claim_what(x), range_str(x, a, sizeof(a)), x->hi - x->lo == 1 ? "s" : "");
	}
}

/* Each overlap once: by the module whose key the file sets, else by the later one. */
static void routing_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs)
{
	struct rt_claims c = {0};
	char a[48], b[48], label[128];

	routing_claims(conf, &c);
	routing_validate_tables(&c, section, errs);
	for (size_t j = 0; j < c.n; j++)
		for (size_t i = 0; i < j; i++) {
			const struct rt_claim *x = &c.v[j], *y = &c.v[i];
			bool one;

			if (x->owner == y->owner || x->table != y->table || x->hi <= y->lo ||
				y->hi <= x->lo)
				continue;
			if (!key_set(x) && key_set(y)) {
				x = &c.v[i];
				y = &c.v[j];
			}
			if (x->owner != section)
				continue;
			one = x->hi - x->lo == 1;
			conf_section_error(errs, x->s, x->key,
				"%s %s overlap%s those of %s %s (%s): each module needs a range of "
				"its own",
				claim_what(x), range_str(x, a, sizeof(a)), one ? "s" : "",
				owner_label(y->s, label, sizeof(label)), y->key,
				range_str(y, b, sizeof(b)));
		}
	free(c.v);
}

int egress_conf_check_reload(const struct conf *running, const struct conf *conf,
	struct conf_errors *errs)
{
	struct rt_claims now = {0}, next = {0};
	char a[48], b[48], label[128];
	size_t before = errs->n;

	routing_claims(running, &now);
	routing_claims(conf, &next);
	for (size_t j = 0; j < next.n; j++)
		for (size_t i = 0; i < now.n; i++) {
			const struct rt_claim *x = &next.v[j], *y = &now.v[i];

			if (x->owner->type == y->owner->type || x->table != y->table ||
				x->hi <= y->lo || y->hi <= x->lo)
				continue;
			conf_section_error(errs, x->s, x->key,
				"%s %s overlap%s those %s %s (%s) holds in the running configuration: "
				"a reload cannot hand a range from one module to another (move it "
				"in two reloads, or restart)",
				claim_what(x), range_str(x, a, sizeof(a)), x->hi - x->lo == 1 ? "s" : "",
				owner_label(y->owner, label, sizeof(label)), y->key,
				range_str(y, b, sizeof(b)));
		}
	free(now.v);
	free(next.v);
	return errs->n > before ? -EINVAL : 0;
}

/* ------------------------------------------------------------ all */

const struct conf_section_type *const egress_conf_types[] = {
	&conf_global_type,
	&conf_uplink_type,
	&conf_route_type,
	&conf_balance_type,
	&conf_policy_type,
	&conf_set_type,
	&conf_rule_type,
	&conf_proxy_type,
	&conf_client_type,
	&conf_dns_type,
	&conf_gateway_type,
};
const size_t egress_conf_n_types = ARRAY_SIZE(egress_conf_types);

struct conf *egress_conf_new(void)
{
	return conf_new(egress_conf_types, egress_conf_n_types);
}

struct conf_global *conf_global(struct conf *conf)
{
	return (struct conf_global *)conf_get_unnamed(conf, "global");
}

size_t conf_n_uplinks(const struct conf *conf)
{
	return conf_sections(conf, "uplink")->n;
}

struct conf_uplink *conf_uplink_at(const struct conf *conf, size_t i)
{
	return (struct conf_uplink *)conf_sections(conf, "uplink")->items[i];
}

bool conf_uplink_is_route_gateway(const struct conf_uplink *u)
{
	return u->s.origin && u->s.origin->type == &conf_route_type;
}

struct conf *egress_conf_read(const char *path, const struct conf_overrides *o,
	struct conf_errors *errs)
{
	struct conf *conf = egress_conf_new();
	int r = 0;

	if (path)
		r = conf_load_file(conf, path, errs);
	if (o && conf_apply_overrides(conf, o, errs) < 0)
		r = -EINVAL;
	if (r == 0)
		r = conf_validate(conf, errs);
	if (r < 0) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}
