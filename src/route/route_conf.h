/*
 * route_conf.h - the route module's section of egress.conf: [route].
 *
 * route_conf.c describes its keys; the module reads the struct, only the config
 * machinery (conf.c, conf_flags.c) writes it.
 */
#ifndef EGRESS_ROUTE_CONF_H
#define EGRESS_ROUTE_CONF_H

#include "conf_keys.h"

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
	struct addr_list iptables_gateways; /* route agent mode: public traffic through these;
					     * fail closed unless set, both families managed */
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

extern const struct conf_section_type conf_route_type;

/* The [route] section, or NULL when the route module is not configured. */
struct conf_route *conf_route(const struct conf *conf);
/* The gateways of [route] in order (range, then gateway list, then iptables gateways). */
size_t conf_route_gateways(const struct conf_route *r, struct waddr **ret);
/* A gateway of [route]: the route module's alone (no address or interface of its own for the
 * proxy, the DNS forwarder or the policy module to send through). */
bool conf_uplink_is_route_gateway(const struct conf_uplink *u);

#endif
