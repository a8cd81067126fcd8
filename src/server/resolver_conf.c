/*
 * resolver_conf.c - the keyword table of [resolver] and its validation.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's, resolving
 * resolver.c's.
 */

#include <errno.h>
#include <stddef.h>

#include "conf_keys.h"
#include "resolver_conf.h"
#include "util.h"

static const struct conf_key resolver_keys[] = {
	{
		.name = "interval",
		.type = CONF_DURATION,
		KEY(conf_resolver, interval_ms),
		.min = 1000,
		.max = 86400000,
		.def = "1m",
		.help = "every domain entry is resolved again at least this often (sooner when "
			"its records' TTL is shorter)",
	},
	{
		.name = "ttl_min",
		.type = CONF_DURATION,
		KEY(conf_resolver, ttl_min_ms),
		.min = 1000,
		.max = 86400000,
		.def = "5s",
		.help = "a record's TTL counts as at least this (and a failing domain is retried "
			"after it, doubling per failure up to interval)",
	},
	{
		.name = "ttl_max",
		.type = CONF_DURATION,
		KEY(conf_resolver, ttl_max_ms),
		.min = 1000,
		.max = 604800000,
		.def = "1h",
		.help = "a record's TTL counts as at most this: how long an address stays "
			"published, before its grace period, while DNS fails",
	},
	{
		.name = "grace",
		.type = CONF_DURATION,
		KEY(conf_resolver, grace_ms),
		.min = 0,
		.max = 604800000,
		.def = "10m",
		.help = "an address that left DNS (or expired unconfirmed) stays published this "
			"long, then goes",
	},
	{
		.name = "nameservers",
		.type = CONF_WORD_LIST,
		KEY(conf_resolver, nameservers),
		.help = "recursive resolvers asked (ADDR, ADDR:PORT or [IPV6]:PORT); none: those "
			"of /etc/resolv.conf",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_resolver, timeout_ms),
		.min = 100,
		.max = 60000,
		.def = "5s",
		.help = "per query attempt (two attempts, over the nameservers in turn)",
	},
	{
		.name = "concurrency",
		.type = CONF_INT,
		KEY(conf_resolver, concurrency),
		.min = 1,
		.max = 10000,
		.def = "32",
		.help = "domains being resolved at once (an A and an AAAA query each); the others "
			"wait their turn",
	},
};

int conf_resolver_nameserver(const char *s, struct addr *ret, uint16_t *ret_port)
{
	if (addr_parse(s, ret) == 0) {
		*ret_port = 53;
		return 0;
	}
	return addr_port_parse(s, ret, ret_port) < 0 ? -EINVAL : 0;
}

static void resolver_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs)
{
	const struct conf_resolver *c = section;

	for (size_t i = 0; i < c->nameservers.n; i++) {
		struct addr a;
		uint16_t port;

		if (conf_resolver_nameserver(c->nameservers.v[i], &a, &port) < 0)
			conf_section_error(errs, &c->s, "nameservers",
				"expected an address, ADDR:PORT or [IPV6]:PORT, got \"%s\"",
				c->nameservers.v[i]);
	}
	if (c->ttl_min_ms > c->ttl_max_ms) {
		char min[32], max[32];

		conf_format_duration(c->ttl_min_ms, min, sizeof(min));
		conf_format_duration(c->ttl_max_ms, max, sizeof(max));
		conf_section_error(errs, &c->s, "ttl_min", "expected at most ttl_max (%s), got %s",
			max, min);
	}
}

const struct conf_section_type conf_resolver_type = {
	.name = "resolver",
	.size = sizeof(struct conf_resolver),
	.keys = resolver_keys,
	.n_keys = ARRAY_SIZE(resolver_keys),
	.validate = resolver_validate,
};

const struct conf_resolver *conf_resolver(const struct conf *conf)
{
	return (const struct conf_resolver *)conf_find(conf, conf_resolver_type.name, NULL);
}
