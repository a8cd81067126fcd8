/*
 * policy_conf.c - the keyword tables of the policy module's sections: [balance],
 * [policy NAME], [rule NAME], [set NAME]; their validation and what [balance] implies.
 *
 * Must not hold logic beyond the sections' own: parsing is conf.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_conf.h"
#include "util.h"

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
		.help = "priority of the policy's first routing rules; the 255 after it are ours too",
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

uint32_t conf_balance_probe_mark(const struct conf *conf, const struct conf_balance *b)
{
	size_t n = conf_n_uplinks(conf);
	uint32_t c = b->mark_mask;

	/* the values inside the mask from the highest down: the uplinks' count up from the
	 * lowest, so the first one tried is nearly always free */
	for (; c; c = (c - 1) & b->mark_mask) {
		bool used = false;

		for (size_t i = 0; i < n && !used; i++)
			used = conf_uplink_mark(b, conf_uplink_at(conf, i), i) == c;
		if (!used)
			return c;
	}
	return 0;
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
	if (n && !conf_balance_probe_mark(conf, b))
		conf_section_error(errs, &b->s, "mark_mask",
			"expected a mask with room for one value besides the uplinks' marks (new "
			"connections from the LAN are looked up with it), got 0x%" PRIx32, b->mark_mask);
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

/* As policy.c's routing_reconcile(): in [rule_priority, + CONF_BALANCE_RULES) the rules
 * into main come first, then one per uplink it balances, the probe mark's last; tables from
 * table_base in runs, or an uplink's own. */
static void balance_routing_claims(const struct conf *conf, const void *section,
	struct rt_claims *c)
{
	const struct conf_balance *b = section;
	size_t n = conf_n_uplinks(conf);

	conf_routing_claim(c, b, b, "rule_priority", false, b->rule_priority,
		b->rule_priority + (uint64_t)CONF_BALANCE_RULES);
	for (size_t i = 0; i < n && i + 2 < CONF_BALANCE_RULES; i++) {
		const struct conf_uplink *u = conf_uplink_at(conf, i);
		uint64_t t = conf_uplink_table(b, u, i);

		if (u->s.origin || !u->interface[0])
			continue;
		if (u->table)
			conf_routing_claim(c, b, u, "table", true, t, t + 1);
		else
			conf_routing_claim(c, b, b, "table_base", true, t, t + 1);
	}
}

const struct conf_section_type conf_balance_type = {
	.name = "balance",
	.size = sizeof(struct conf_balance),
	.keys = balance_keys,
	.n_keys = ARRAY_SIZE(balance_keys),
	.validate = balance_validate,
	.validate_expanded = conf_routing_validate,
	.routing_claims = balance_routing_claims,
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
