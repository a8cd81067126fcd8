/*
 * dns_conf.c - the keyword table of [dns], the forwarder's section, and its validation.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's.
 */

#include <stddef.h>

#include "acl.h"
#include "dns_conf.h"
#include "proxy_conf.h"
#include "util.h"

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
		.name = "workers",
		.type = CONF_INT,
		KEY(conf_dns, workers),
		.min = 0,
		.max = 64,
		.def = "0",
		.help = "UDP sockets (SO_REUSEPORT), each with a thread and loop of its own; "
			"0: one per CPU",
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

	conf_allow_validate(&d->s, &d->allow, errs);
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
