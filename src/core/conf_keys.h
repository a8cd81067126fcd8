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
	struct addr source;
	int weight;
	struct uplink_check check;
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

extern const struct conf_section_type conf_global_type;
extern const struct conf_section_type conf_uplink_type;
extern const struct conf_section_type conf_route_type;

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
