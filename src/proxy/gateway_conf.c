/*
 * gateway_conf.c - the keyword table of [gateway] (go-dispatch-proxy's gateway mode), its
 * validation, and the [dns] forwarder it implies.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's.
 */

#include <stddef.h>
#include <stdio.h>

#include "dns_conf.h"
#include "gateway_conf.h"
#include "proxy_conf.h"
#include "util.h"

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
		.name = "enabled",
		.type = CONF_BOOL,
		KEY(conf_gateway, enabled),
		.def = "true",
		.help = "gateway mode is on (the API's toggle switches this key; off: no "
			"interception, NAT, forwarding or implied [dns], the section kept)",
	},
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

	if (!g->enabled)
		return; /* checked when switched on */
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

	if (conf_dns(conf) || !g->enabled)
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

/* tproxy: one rule, one table. */
static void gateway_routing_claims(const struct conf *conf, const void *section,
	struct rt_claims *c)
{
	const struct conf_gateway *g = section;

	(void)conf;
	if (!g->enabled || g->intercept != INTERCEPT_TPROXY)
		return;
	conf_routing_claim(c, g, g, "rule_priority", false, g->rule_priority,
		g->rule_priority + 1ull);
	conf_routing_claim(c, g, g, "tproxy_table", true, g->tproxy_table,
		g->tproxy_table + 1ull);
}

const struct conf_section_type conf_gateway_type = {
	.name = "gateway",
	.size = sizeof(struct conf_gateway),
	.keys = gateway_keys,
	.n_keys = ARRAY_SIZE(gateway_keys),
	.validate = gateway_validate,
	.expand = gateway_expand,
	.validate_expanded = conf_routing_validate,
	.routing_claims = gateway_routing_claims,
};

struct conf_gateway *conf_gateway_section(const struct conf *conf)
{
	return (struct conf_gateway *)conf_find(conf, "gateway", NULL);
}

struct conf_gateway *conf_gateway(const struct conf *conf)
{
	struct conf_gateway *g = conf_gateway_section(conf);

	return g && g->enabled ? g : NULL;
}
