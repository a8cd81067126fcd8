/*
 * conf_keys.h - the sections and keys of egress.conf.
 *
 * Each section is a struct that starts with struct conf_section; its keys are
 * described in conf_keys.c.  Modules read these structs; only conf.c and
 * conf_flags.c write them.
 */
#ifndef EGRESS_CONF_KEYS_H
#define EGRESS_CONF_KEYS_H

#include <net/if.h>

#include "conf.h"
#include "log.h"
#include "uplink.h"

struct conf_global {
	struct conf_section s;
	int log_level; /* enum log_level */
	int metrics_port; /* 0: no metrics endpoint */
	struct addr metrics_address;
};

struct conf_uplink {
	struct conf_section s;
	char interface[IFNAMSIZ];
	struct addr gateway;
	struct addr gateway6; /* a dual-stack uplink's IPv6 next hop */
	struct addr source;
	int weight;
	struct uplink_check check;
	/* policy module */
	uint32_t mark;	/* 0: assigned from the uplink's position */
	uint32_t table; /* 0: [balance] table_base + position */
	int tier;
	bool masquerade;
};

enum route_fail {
	ROUTE_FAIL_OPEN,   /* no healthy gateway: routes removed, traffic uses the main table */
	ROUTE_FAIL_CLOSED, /* no healthy gateway: traffic to managed destinations is refused */
	_ROUTE_FAIL_MAX,
};
extern const char *const route_fail_name[_ROUTE_FAIL_MAX];

/* [route]: ECMP routes over the healthy gateways (gateway-route-manager's job). */
struct conf_route {
	struct conf_section s;
	struct addr start_ip, end_ip;	  /* a range of gateways */
	struct addr_list gateways;	  /* gateways one by one, IP@weight */
	struct addr_list iptables_gateways; /* route agent mode: public IPv4 through these */
	int check;			  /* enum check_kind of the gateways' checks */
	int port;
	char *path;
	char *host;
	bool tls_verify;
	uint32_t timeout_ms;
	uint32_t check_period_ms;
	int fall, rise;
	struct cidr_list routes;	  /* managed destinations */
	struct cidr_list exclude;	  /* kept on the main table */
	bool exclude_reserved;
	uint32_t table;
	uint32_t rule_priority;
	int fail;			  /* enum route_fail */
	bool keep;			  /* leave routes and rules when stopping */
	bool resilient;			  /* use resilient nexthop groups where the kernel has them */
	int buckets;
	uint32_t nexthop_id_base;
};

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

extern const struct conf_section_type conf_global_type;
extern const struct conf_section_type conf_uplink_type;
extern const struct conf_section_type conf_route_type;
extern const struct conf_section_type conf_balance_type;
extern const struct conf_section_type conf_policy_type;
extern const struct conf_section_type conf_rule_type;
extern const struct conf_section_type conf_set_type;

/* The [balance] section, or NULL when the policy module is off. */
struct conf_balance *conf_balance(const struct conf *conf);
/* An uplink's effective mark and table under [balance] b (position i among the uplinks). */
uint32_t conf_uplink_mark(const struct conf_balance *b, const struct conf_uplink *u, size_t i);
uint32_t conf_uplink_table(const struct conf_balance *b, const struct conf_uplink *u, size_t i);

/* Every section type of egress.conf; the first is [global]. */
extern const struct conf_section_type *const egress_conf_types[];
extern const size_t egress_conf_n_types;

/* Typed access. */
struct conf_global *conf_global(struct conf *conf);
size_t conf_n_uplinks(const struct conf *conf);
struct conf_uplink *conf_uplink_at(const struct conf *conf, size_t i);

/* The [route] section, or NULL when the route module is not configured. */
struct conf_route *conf_route(const struct conf *conf);
/* The gateways of [route] in order (range, then gateway list, then iptables gateways). */
size_t conf_route_gateways(const struct conf_route *r, struct waddr **ret);

/* A new empty configuration of egress.conf's section types. */
struct conf *egress_conf_new(void);

/*
 * Read, apply flags and validate: the whole path from a file to a
 * configuration that may be used.  path may be NULL (flags only).  On error
 * returns NULL with the reasons in errs.  Ownership of the result passes to
 * the caller (conf_free).
 */
struct conf *egress_conf_read(const char *path, const struct conf_overrides *o,
	struct conf_errors *errs);

#endif
