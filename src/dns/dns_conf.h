/*
 * dns_conf.h - the DNS forwarder's section of egress.conf: [dns].
 *
 * dns_conf.c describes its keys; the forwarder reads the struct, only the config
 * machinery (conf.c, conf_flags.c) writes it.
 */
#ifndef EGRESS_DNS_CONF_H
#define EGRESS_DNS_CONF_H

#include "conf_keys.h"

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
	int workers;		   /* UDP sockets with a loop each; 0: one per CPU */
	bool tcp;		   /* also listen on TCP */
};

extern const struct conf_section_type conf_dns_type;

/* The [dns] section, or NULL when the forwarder is off. */
struct conf_dns *conf_dns(const struct conf *conf);

#endif
