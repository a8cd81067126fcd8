/*
 * resolver_conf.h - egress-server's [resolver] section: how often and how the domain
 * entries are re-resolved.
 *
 * resolver_conf.c describes its keys; the resolver (resolver.c) reads the struct, only the
 * config machinery writes it.  The section is optional: without it every key has its
 * default.
 */
#ifndef EGRESS_RESOLVER_CONF_H
#define EGRESS_RESOLVER_CONF_H

#include <stdint.h>

#include "conf.h"

struct conf_resolver {
	struct conf_section s;
	uint32_t interval_ms;	 /* every domain is resolved again at least this often */
	uint32_t ttl_min_ms;	 /* a record's TTL counts as at least this... */
	uint32_t ttl_max_ms;	 /* ...and at most this */
	uint32_t grace_ms;	 /* an address that left DNS stays published this long */
	struct word_list nameservers; /* "ADDR", "ADDR:PORT", "[V6]:PORT"; empty: the system's */
	uint32_t timeout_ms;	 /* per query attempt */
	int concurrency;	 /* domains being resolved at once */
};

extern const struct conf_section_type conf_resolver_type;

/* The [resolver] section, or NULL when the file has none (every default then). */
const struct conf_resolver *conf_resolver(const struct conf *conf);

/* One word of `nameservers`: "ADDR" (port 53), "ADDR:PORT" or "[V6]:PORT".  0 or -EINVAL. */
int conf_resolver_nameserver(const char *s, struct addr *ret, uint16_t *ret_port);

#endif
