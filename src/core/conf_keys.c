/*
 * conf_keys.c - the keyword tables of egress.conf's own sections, [global] and
 * [uplink NAME], and what the modules' sections share: the check of "allow" lists
 * and of the routing ranges each module claims.  Each module's sections are
 * described in its own folder (route_conf.c, policy_conf.c, ...); egress.conf(5)
 * documents the same tables.
 *
 * Must not hold logic beyond per-section validation: parsing is conf.c's.  Must
 * not know any module's section.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "acl.h"
#include "conf_keys.h"
#include "util.h"

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
	{
		.name = "enabled",
		.type = CONF_BOOL,
		KEY(conf_uplink, enabled),
		.def = "true",
		.help = "false: drained for maintenance, no new connection or flow goes through "
			"it; those already on it go on, and its checks keep running",
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

/* ------------------------------------------------------------ what sections share */

void conf_allow_validate(const struct conf_section *s, const struct word_list *l,
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

/* ------------------------------------------------------------ rules and tables of the modules */

/*
 * The route and policy modules, the proxy's source routing and gateway mode all mark their
 * rules with one protocol, and each reconciles "its" rules by priority range: where two
 * ranges overlap, one module deletes (or shadows) the other's rules, and where two tables
 * meet, one flushes the other's routes.  So the ranges of the modules configured together
 * must stay apart (each module's section type says its extent: routing_claims).
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

void conf_routing_claim(struct rt_claims *c, const void *owner, const void *s, const char *key,
	bool table, uint64_t lo, uint64_t hi)
{
	struct rt_claim *last = c->n ? &c->v[c->n - 1] : NULL;

	/* a run of tables, one per position, grows the claim before it */
	if (last && last->owner == owner && last->s == s && last->table && table &&
		last->hi == lo && streq(last->key, key)) {
		last->hi = hi;
		return;
	}
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n++] = (struct rt_claim){.owner = owner, .s = s, .key = key, .table = table,
		.lo = lo, .hi = hi};
}

/* Every module's claims, in the order of the section types (that of the module table). */
static void routing_claims(const struct conf *conf, struct rt_claims *c)
{
	for (size_t i = 0; i < conf->n_types; i++) {
		const struct conf_section_type *t = conf->types[i];

		if (!t->routing_claims)
			continue;
		for (size_t j = 0; j < conf->lists[i].n; j++)
			t->routing_claims(conf, conf->lists[i].items[j], c);
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
void conf_routing_validate(const struct conf *conf, const void *section,
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
