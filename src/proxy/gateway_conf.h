/*
 * gateway_conf.h - gateway mode's section of egress.conf: [gateway].
 *
 * gateway_conf.c describes its keys; gateway mode reads the struct, only the config
 * machinery (conf.c, conf_flags.c) writes it.
 */
#ifndef EGRESS_GATEWAY_CONF_H
#define EGRESS_GATEWAY_CONF_H

#include "conf_keys.h"

enum gateway_intercept {
	INTERCEPT_REDIRECT,
	INTERCEPT_TPROXY,
	_INTERCEPT_MAX,
};
extern const char *const gateway_intercept_name[_INTERCEPT_MAX];

/* [gateway]: go-dispatch-proxy's gateway mode: transparent proxy, DNS, NAT for a subnet. */
struct conf_gateway {
	struct conf_section s;
	bool enabled;		  /* off: gateway mode configured but switched off */
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

extern const struct conf_section_type conf_gateway_type;

/* The [gateway] section, or NULL when gateway mode is off (no section, or enabled = no). */
struct conf_gateway *conf_gateway(const struct conf *conf);
/* The [gateway] section, enabled or not, or NULL. */
struct conf_gateway *conf_gateway_section(const struct conf *conf);

#endif
