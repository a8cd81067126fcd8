/*
 * policy_nft.h - the nftables ruleset of the policy module (multi-WAN load balancing).
 *
 * A pure function turns a model of uplinks, policies, destination sets and rules into the body
 * of `table inet egress { ... }`, ready for nft_table_apply() (one transaction).  The body is
 * deterministic: the same model always gives the same text (golden tests rely on it).
 *
 * This file must not touch the kernel, log, or keep state: routing tables, ip rules, conntrack
 * flushes and applying the text are the caller's job (policy.c).  The ruleset only sets marks
 * inside mark_mask, so other tools keep their bits of the packet and conntrack marks.
 *
 * Names of uplinks, policies and sets are sanitised to [a-z0-9_] (other characters become '_',
 * upper case is lowered) and appear in chain and set names: `mark.NAME`, `restore.NAME`,
 * `policy.NAME`, `pick.POLICY.UPLINK`, `dst.SET.v4`, `sticky.POLICY.UPLINK.v6`; two names of the
 * same kind that sanitise to the same text are refused.
 */
#ifndef EGRESS_POLICY_NFT_H
#define EGRESS_POLICY_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cidr.h"
#include "conf.h"

/* Longest uplink, policy or set name accepted (after sanitising). */
#define POLICY_NFT_NAME_MAX 48

struct policy_uplink {
	const char *name;   /* uplink name (chain/set names and comments, sanitised) */
	const char *ifname; /* its interface; NULL: none (no inbound marking, no masquerade) */
	uint32_t mark;	    /* its mark: non-zero, inside mark_mask, unique */
	bool v4, v6;	    /* it can carry IPv4 / IPv6 (has a gateway of that family) */
	bool usable;	    /* healthy now and not drained: new connections may choose it */
	bool masquerade;    /* masquerade what leaves through ifname (needs ifname) */
	bool drained;	    /* drained by the operator (only the comment of mark.UP says it) */
};

struct policy_member {
	size_t uplink; /* index into uplinks; an uplink appears at most once per policy */
	int weight;    /* 1..256 */
	int tier;      /* 1 = preferred; higher tiers are used when no lower one is usable */
};

enum policy_sticky {
	POLICY_STICKY_NONE,
	POLICY_STICKY_SOURCE,	   /* a source address keeps its uplink */
	POLICY_STICKY_SOURCE_DEST, /* a source and destination prefix pair keeps its uplink */
	_POLICY_STICKY_MAX,
};
extern const char *const policy_sticky_name[_POLICY_STICKY_MAX];

enum policy_last_resort {
	POLICY_LAST_MAIN,   /* no usable member: no mark, the main table decides */
	POLICY_LAST_REJECT, /* no usable member: tcp reset / icmpx admin-prohibited */
	_POLICY_LAST_MAX,
};
extern const char *const policy_last_resort_name[_POLICY_LAST_MAX];

struct policy_def {
	const char *name;
	const struct policy_member *members;
	size_t n_members;	    /* 0 is allowed: always the last resort */
	int sticky;		    /* enum policy_sticky */
	uint32_t sticky_timeout_ms; /* > 0 when sticky */
	uint8_t sticky_prefix4,
		sticky_prefix6; /* SOURCE_DEST: destination prefix, 1..32 / 1..128 */
	int last_resort;	/* enum policy_last_resort */
};

/* A named destination set; prefixes of both families, overlaps allowed (they are merged). */
struct policy_set {
	const char *name;
	const struct cidr *prefixes;
	size_t n;
};

struct policy_rule {
	const char *name;	/* for the rule's comment; NULL: "rule N" (1-based) */
	const struct cidr *src; /* source prefixes; n_src 0: any */
	size_t n_src;
	const struct cidr *dst; /* destination prefixes; n_dst 0: any */
	size_t n_dst;
	const char *dst_set;	   /* NULL or the name of one of the model's sets */
	int proto;		   /* 0 any, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP (ICMPv6 too) */
	const struct range *dport; /* destination ports 0..65535; n_dport 0: any (needs tcp/udp) */
	size_t n_dport;
	const char *iif; /* NULL: any LAN interface (never matches the gateway's own traffic) */
	int policy;	 /* index into policies, or -1 = "main" (bypass: no mark) */
};

/*
 * Affinity carried over a replacement of the table (which would start every sticky set empty):
 * the entries of one sticky set as the running table holds them, read back just before.
 */
struct policy_sticky_elem {
	struct addr src;
	struct addr dst;     /* source_dest affinity: the masked destination; else unset */
	uint32_t expires_ms; /* what is left of its timeout, > 0 */
};

struct policy_carry {
	const char *set; /* its name, as policy_nft_sticky_sets() gives it */
	const struct policy_sticky_elem *elems;
	size_t n;
};

/*
 * The whole input; every pointer is borrowed.  A rule's conditions are ANDed; where it names
 * prefixes of one family only (src, dst, dst_set), it matches that family only.
 */
struct policy_model {
	uint32_t mark_mask;	/* our bits of the mark, e.g. 0xff00 */
	const char *const *lan; /* LAN interfaces served */
	size_t n_lan;
	bool output; /* also balance the gateway's own traffic (OUTPUT) */
	/* Non-zero: a value inside mark_mask that is no uplink's mark.  A new connection from a
	 * LAN is first looked up in the routing tables with it (nft `fib daddr . mark`): where
	 * the caller's routing rules find a route other than main's default (a LAN, a VPN, an
	 * uplink's own subnet), the connection is not balanced and goes by main; the caller's
	 * rules make a lookup with this mark fail where only a default route would match.  So
	 * a marked packet never needs main's specific routes.  0: every one is classified. */
	uint32_t probe_mark;
	/* The kernel has nftables flowtables (CONFIG_NF_FLOW_TABLE) and every LAN and uplink
	 * interface exists: forwarded connections of ours, once established, are added to the
	 * flowtable `fast` on those interfaces and bypass the ruleset and the routing rules (the
	 * route each direction took is kept with the flow).  false: no flowtable at all. */
	bool flowtable;
	const struct policy_uplink *uplinks;
	size_t n_uplinks;
	const struct policy_def *policies;
	size_t n_policies;
	int default_policy; /* index: what no rule matches uses */
	const struct policy_set *sets;
	size_t n_sets;
	const struct policy_rule *rules; /* first match wins */
	size_t n_rules;
	/* Entries to put back into the sticky sets the body declares, each with what was left
	 * of its timeout (at most the set's timeout now).  A set the body does not declare (its
	 * uplink is no longer chosen: down, gone, or outranked by a lower tier) loses its
	 * entries, and so does an entry whose key no longer fits its set's type. */
	const struct policy_carry *carry;
	size_t n_carry;
	/* Sticky sets the running table keeps as they are (nft_table_apply_keep()): the body
	 * does not declare them.  NULL-terminated; NULL: none. */
	const char *const *keep_sets;
};

/*
 * Build the body of `table inet egress { ... }` for m (borrowed) into *ret, a new string the
 * caller frees.  0, or -EINVAL for an inconsistent model (*ret untouched, nothing allocated).
 */
int policy_nft_body(const struct policy_model *m, char **ret);

/*
 * The names of the sticky sets a body for m declares ("sticky.POLICY.UPLINK.v4"), as a new
 * NULL-terminated array of new strings in *ret; policy_nft_names_free() frees it.  0, or
 * -EINVAL for an inconsistent model (*ret untouched).
 */
int policy_nft_sticky_sets(const struct policy_model *m, char ***ret);
void policy_nft_names_free(char **names);

/*
 * Does set `name` have the same declaration (type, flags, timeout) in the bodies old and new
 * (both without carried entries)?  Then the running set can stay as it is.  False if either
 * lacks it.
 */
bool policy_nft_set_same(const char *old, const char *new, const char *name);

/*
 * The entries of a sticky set out of libnftables' JSON for `list set` (root borrowed), into
 * *ret (a new array, caller frees; NULL when empty) and *n.  An entry that is not one or two
 * literal addresses, or has no time left (libnftables gives it to the second), is skipped.  0, or -EBADMSG when root
 * holds no set.
 */
int policy_nft_sticky_parse(const json_t *root, struct policy_sticky_elem **ret, size_t *n);

#endif
