/*
 * proxy_conf.h - the proxy's sections of egress.conf: [proxy], [client NAME].
 *
 * proxy_conf.c describes their keys; the proxy reads the structs, only the config
 * machinery (conf.c, conf_flags.c) writes them.
 */
#ifndef EGRESS_PROXY_CONF_H
#define EGRESS_PROXY_CONF_H

#include "conf_keys.h"

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
	int workers;		     /* connection threads (accept to relay); 0: one per CPU */
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

extern const struct conf_section_type conf_proxy_type;
extern const struct conf_section_type conf_client_type;

/* The [proxy] section, or NULL when the module is off. */
struct conf_proxy *conf_proxy(const struct conf *conf);
size_t conf_n_clients(const struct conf *conf);
struct conf_client *conf_client_at(const struct conf *conf, size_t i);

/* A "NAME@N" or "ADDR@N" ratio word: name (or address text) and weight (default 1). */
int conf_ratio_parse(const char *s, char *name, size_t len, int *weight);

/* The proxy's source routing: rules + 2i and + 2i + 1 and table + i for uplink
 * i < CONF_SRCROUTE_MAX. */
#define CONF_SRCROUTE_MAX  256

#endif
