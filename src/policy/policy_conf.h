/*
 * policy_conf.h - the policy module's sections of egress.conf: [balance], [policy NAME],
 * [rule NAME], [set NAME].
 *
 * policy_conf.c describes their keys; the module reads the structs, only the config
 * machinery (conf.c, conf_flags.c) writes them.
 */
#ifndef EGRESS_POLICY_CONF_H
#define EGRESS_POLICY_CONF_H

#include "conf_keys.h"

/* [balance]: the policy module's settings; its presence turns the module on. */
struct conf_balance {
	struct conf_section s;
	struct word_list lan;	/* LAN interfaces served */
	bool output;		/* also the gateway's own traffic */
	char *default_policy;	/* NULL: the first [policy] */
	uint32_t mark_mask;
	uint32_t table_base;
	uint32_t rule_priority;
	bool keep;		/* leave the dataplane when stopping */
	bool flush_conntrack;	/* delete a down uplink's conntrack entries */
};

enum policy_sticky_kind {
	STICKY_NONE,
	STICKY_SOURCE,
	STICKY_SOURCE_DEST,
	_STICKY_MAX,
};
extern const char *const sticky_name[_STICKY_MAX];

enum last_resort_kind {
	LAST_RESORT_MAIN,
	LAST_RESORT_REJECT,
	_LAST_RESORT_MAX,
};
extern const char *const last_resort_name[_LAST_RESORT_MAX];

/* [policy NAME]: a set of uplinks with weights and tiers. */
struct conf_policy {
	struct conf_section s;
	struct word_list members; /* UPLINK[@WEIGHT][/TIER] */
	int sticky;
	uint32_t sticky_timeout_ms;
	int sticky_prefix4, sticky_prefix6;
	int last_resort;
};

enum rule_proto {
	RULE_PROTO_ANY,
	RULE_PROTO_TCP,
	RULE_PROTO_UDP,
	RULE_PROTO_ICMP,
	_RULE_PROTO_MAX,
};
extern const char *const rule_proto_name[_RULE_PROTO_MAX];

/* [rule NAME]: traffic to a policy (or "main"); first match wins, in file order. */
struct conf_rule {
	struct conf_section s;
	struct cidr_list src, dst;
	char *dst_set;
	int proto;
	struct range_list dport;
	char iif[IFNAMSIZ];
	char *policy;
};

/* [set NAME]: a named destination set (what ipset was for). */
struct conf_set {
	struct conf_section s;
	struct cidr_list prefixes;
};

/* A [policy] member parsed: "isp1@3/2". */
struct policy_member_spec {
	char uplink[64];
	int weight; /* 0: the uplink's weight */
	int tier;   /* 0: the uplink's tier */
};
int policy_member_parse(const char *s, struct policy_member_spec *ret);

extern const struct conf_section_type conf_balance_type;
extern const struct conf_section_type conf_policy_type;
extern const struct conf_section_type conf_rule_type;
extern const struct conf_section_type conf_set_type;

/* The [balance] section, or NULL when the policy module is off. */
struct conf_balance *conf_balance(const struct conf *conf);
/* An uplink's effective mark and table under [balance] b (position i among the uplinks). */
uint32_t conf_uplink_mark(const struct conf_balance *b, const struct conf_uplink *u, size_t i);
uint32_t conf_uplink_table(const struct conf_balance *b, const struct conf_uplink *u, size_t i);
/* The mark a new connection from the LAN is looked up with, to learn whether main routes it
 * by more than its default route (policy_model.probe_mark): the highest value inside the
 * mask that no uplink's mark is; 0 when there is none (the configuration is refused). */
uint32_t conf_balance_probe_mark(const struct conf *conf, const struct conf_balance *b);

/* The policy module's rules: in [rule_priority, + CONF_BALANCE_RULES), the rules into main
 * (by incoming interface) and for the probe mark at rule_priority, then the mark rules into
 * the uplinks' tables; an uplink's table is conf_uplink_table(). */
#define CONF_BALANCE_RULES 256

#endif
