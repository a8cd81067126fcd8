/*
 * conf_keys.c - the keyword tables of egress.conf: every section, every key,
 * its type, bounds and default.  egress.conf(5) documents the same table.
 *
 * Must not hold logic beyond per-section validation: parsing is conf.c's.
 */
#include <errno.h>
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
