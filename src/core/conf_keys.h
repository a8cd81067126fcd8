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
	/* proxy and dns modules */
	struct addr_list dns;	 /* resolvers reached through this uplink */
	struct addr tunnel;	 /* proxy -tunnel mode: the upstream SOCKS proxy of this uplink */
	int tunnel_port;
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
	uint32_t idle_timer_ms;		  /* resilient: a bucket idle this long may move */
	uint32_t unbalanced_timer_ms;	  /* resilient: then move busy ones too; 0: never */
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

/* [proxy]: SOCKS4/4a/5 and HTTP proxy on one port, transparent proxy (go-dispatch-proxy). */
struct conf_proxy {
	struct conf_section s;
	struct addr address;	     /* of the SOCKS/HTTP listener */
	int port;		     /* 0: no SOCKS/HTTP listener */
	struct word_list allow;	     /* clients admitted: prefixes and "local" (acl.h) */
	struct word_list dispatch;   /* ADDR@N (or HOST:PORT@N with tunnel): become uplinks */
	bool tunnel;		     /* relay whole connections to upstream SOCKS proxies */
	int transparent_port;	     /* REDIRECT listener (SO_ORIGINAL_DST); 0: none */
	int tproxy_port;	     /* TPROXY listener (IP_TRANSPARENT); 0: none */
	char *username, *password;   /* RFC 1929 / Basic; NULL: no authentication */
	uint32_t connect_timeout_ms; /* race a second uplink after this */
	uint32_t connect_deadline_ms;	 /* give up (tell the client) after this */
	uint32_t idle_timeout_ms;
	int max_connections;
	int max_per_client;
	struct addr_list resolvers;  /* names in requests (default: uplink's dns, resolv.conf) */
	char *client_rules;	     /* path of a JSON file of per-client ratios (the fork's format) */
	uint32_t affinity_ms;	     /* keep a client on its uplink this long; 0: off */
	bool client_metrics;	     /* egress_proxy_client_* series per client address */
	int workers;		     /* relay threads; 0: one per CPU */
	int check;		     /* enum check_kind of the dispatch uplinks' checks */
	struct addr_list check_targets;
	int check_port;
	uint32_t check_interval_ms;
	uint32_t table_base;	     /* source routing of uplinks with a source address */
	uint32_t rule_priority;
};

/* [client NAME]: per-client contention ratios (longest prefix wins). */
struct conf_client {
	struct conf_section s;
	struct cidr_list source;
	struct word_list ratio; /* UPLINK@N: UPLINK is an uplink name or its source address */
};

/* [dns]: DNS forwarder over the uplinks' resolvers. */
struct conf_dns {
	struct conf_section s;
	struct addr address;
	int port;
	struct word_list allow;	   /* clients admitted: prefixes and "local" (acl.h) */
	struct addr_list upstream; /* resolvers used through the main routing table */
	uint32_t timeout_ms;	   /* per attempt; the next attempt goes to another uplink */
	int attempts;
	int cache_size;		   /* answers kept; 0: no cache */
	int max_pending;
	bool tcp;		   /* also listen on TCP */
};

enum gateway_intercept {
	INTERCEPT_REDIRECT,
	INTERCEPT_TPROXY,
	_INTERCEPT_MAX,
};
extern const char *const gateway_intercept_name[_INTERCEPT_MAX];

/* [gateway]: go-dispatch-proxy's gateway mode: transparent proxy, DNS, NAT for a subnet. */
struct conf_gateway {
	struct conf_section s;
	struct addr address;	  /* -gateway-ip */
	struct cidr_list subnet;  /* clients */
	int transparent_port;
	int dns_port;
	char *nat_interface;	  /* "auto": every uplink's interface */
	bool auto_config;	  /* install the nftables table (off: print it) */
	int intercept;		  /* enum gateway_intercept */
	char *backup_file;	  /* the ruleset saved before our first change */
	uint32_t tproxy_mark;	  /* TPROXY: mark and table of the local-delivery rule */
	uint32_t tproxy_table;
	uint32_t rule_priority;
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
extern const struct conf_section_type conf_proxy_type;
extern const struct conf_section_type conf_client_type;
extern const struct conf_section_type conf_dns_type;
extern const struct conf_section_type conf_gateway_type;

/* The [proxy], [dns], [gateway] sections, or NULL when the module is off. */
struct conf_proxy *conf_proxy(const struct conf *conf);
struct conf_dns *conf_dns(const struct conf *conf);
struct conf_gateway *conf_gateway(const struct conf *conf);
size_t conf_n_clients(const struct conf *conf);
struct conf_client *conf_client_at(const struct conf *conf, size_t i);

/* A "NAME@N" or "ADDR@N" ratio word: name (or address text) and weight (default 1). */
int conf_ratio_parse(const char *s, char *name, size_t len, int *weight);

/* The [balance] section, or NULL when the policy module is off. */
struct conf_balance *conf_balance(const struct conf *conf);
/* An uplink's effective mark and table under [balance] b (position i among the uplinks). */
uint32_t conf_uplink_mark(const struct conf_balance *b, const struct conf_uplink *u, size_t i);
uint32_t conf_uplink_table(const struct conf_balance *b, const struct conf_uplink *u, size_t i);

/*
 * What the modules put in the kernel's routing rules, from their rule_priority (and
 * table_base) on.  They share one protocol (RTPROT_EGRESS), so the configuration keeps
 * their ranges apart (conf_keys.c).  The route module: rule_priority and the next, and its
 * table.  The policy module: in [rule_priority, + CONF_BALANCE_RULES), the rule into main
 * and the mark rules into its tables; an uplink's table is conf_uplink_table().  The proxy's
 * source routing: rules + 2i and + 2i + 1 and table + i for uplink i < CONF_SRCROUTE_MAX.
 * Gateway mode (tproxy): one rule, one table.  The policy module and source routing know
 * their rules by priority and table as well as protocol, and leave another's alone even
 * where ranges meet.
 */
#define CONF_BALANCE_RULES 256
#define CONF_SRCROUTE_MAX  256

/* Every section type of egress.conf; the first is [global]. */
extern const struct conf_section_type *const egress_conf_types[];
extern const size_t egress_conf_n_types;

/* Typed access. */
struct conf_global *conf_global(struct conf *conf);
size_t conf_n_uplinks(const struct conf *conf);
struct conf_uplink *conf_uplink_at(const struct conf *conf, size_t i);
/* A gateway of [route]: the route module's alone (no address or interface of its own for the
 * proxy, the DNS forwarder or the policy module to send through). */
bool conf_uplink_is_route_gateway(const struct conf_uplink *u);

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

/*
 * May conf replace running in one reload?  Each module reconciles its routing rules and
 * tables in turn, removing what it finds in its own ranges: a range that passes from one
 * module to another would be flushed by the new owner while the old one still uses it, and
 * then by the old one after the new one filled it.  So a new range of one module must not
 * overlap a running range of another.  Returns 0, or -EINVAL with the reasons in errs.
 */
int egress_conf_check_reload(const struct conf *running, const struct conf *conf,
	struct conf_errors *errs);

#endif
