/*
 * conf_keys.h - egress.conf's own sections, [global] and [uplink NAME], and what the
 * modules' sections share.
 *
 * Each section is a struct that starts with struct conf_section; its keys are
 * described in conf_keys.c, a module's sections in its own folder (route_conf.h,
 * policy_conf.h, ...).  Modules read these structs; only conf.c and conf_flags.c
 * write them.
 */
#ifndef EGRESS_CONF_KEYS_H
#define EGRESS_CONF_KEYS_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	bool enabled; /* false: drained, no new connection or flow (existing ones go on) */
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

extern const struct conf_section_type conf_global_type;
extern const struct conf_section_type conf_uplink_type;

/* A keyword table's entry for a field of a section struct. */
#define KEY(st, field) .offset = offsetof(struct st, field)

/* "allow" of a section: each word "local" or an address or prefix (acl.h). */
void conf_allow_validate(const struct conf_section *s, const struct word_list *l,
	struct conf_errors *errs);

/*
 * What the modules put in the kernel's routing rules, from their rule_priority (and
 * table_base) on.  They share one protocol (RTPROT_EGRESS), so the configuration keeps
 * their ranges apart: a section type's routing_claims (conf.h) tells each range to
 * conf_routing_claim(), [lo, hi) of rule priorities or of tables, set by key of section s,
 * reported by owner (the module's section); ranges of one owner, key and section that
 * meet become one.  conf_routing_validate() is the validate_expanded of those types: it
 * refuses a range of its section that overlaps another module's, or tables the kernel
 * keeps for itself.  The policy module and source routing know their rules by priority
 * and table as well as protocol, and leave another's alone even where ranges meet.
 */
void conf_routing_claim(struct rt_claims *c, const void *owner, const void *s, const char *key,
	bool table, uint64_t lo, uint64_t hi);
void conf_routing_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs);

/* Typed access. */
struct conf_global *conf_global(struct conf *conf);
size_t conf_n_uplinks(const struct conf *conf);
struct conf_uplink *conf_uplink_at(const struct conf *conf, size_t i);

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
