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

#include "conf_keys.h"
#include "util.h"

#define KEY(st, field) .offset = offsetof(struct st, field)

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
};

const struct conf_section_type conf_global_type = {
	.name = "global",
	.size = sizeof(struct conf_global),
	.keys = global_keys,
	.n_keys = ARRAY_SIZE(global_keys),
};

/* ------------------------------------------------------------ [uplink NAME] */

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
		.name = "check_mark",
		.type = CONF_U32,
		KEY(conf_uplink, check.mark),
		.min = 0,
		.max = 0xffffffff,
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
	if (!u->interface[0] && !addr_is_set(&u->gateway) && !addr_is_set(&u->source))
		conf_section_error(errs, &u->s, NULL,
			"an uplink needs at least one of 'interface', 'gateway' or 'source'");
	if (addr_is_set(&u->gateway) && addr_is_set(&u->source) &&
		u->gateway.family != u->source.family) {
		addr_str(&u->gateway, a, sizeof(a));
		addr_str(&u->source, b, sizeof(b));
		conf_section_error(errs, &u->s, "source",
			"expected an address of the gateway's family (gateway %s), got \"%s\"", a, b);
	}
	const struct uplink_check *c = &u->check;
	if (c->kind != CHECK_NONE && !c->targets.n && !addr_is_set(&u->gateway))
		conf_section_error(errs, &u->s, "check",
			"a %s check needs 'check_target' or a 'gateway' to probe",
			check_kind_name[c->kind]);
	if (c->kind == CHECK_TCP && !c->port)
		conf_section_error(errs, &u->s, "check", "a tcp check needs 'check_port'");
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

/* ------------------------------------------------------------ all */

const struct conf_section_type *const egress_conf_types[] = {
	&conf_global_type,
	&conf_uplink_type,
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
