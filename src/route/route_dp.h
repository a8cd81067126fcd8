/*
 * route_dp.h - the route module's kernel dataplane: one route per managed destination prefix
 * over the usable gateways, in egressd's own routing table reached through its own rules.
 *
 *   priority P    lookup main suppress_prefixlength 0   (main's specific routes keep working)
 *   priority P+1  lookup TABLE                          (our routes; the rest falls to main)
 *
 * Two ways to spread the flows, picked once in route_dp_new():
 *  - resilient nexthop groups (Linux 5.13+): one nexthop object per gateway (id
 *    nh_id_base + ROUTE_DP_NH_GW_FIRST + slot) and one resilient group per family (id
 *    nh_id_base + 0 for IPv4, + 1 for IPv6; + 2 / + 3 while a group with other buckets is
 *    being swapped out); the routes point at the group.  A gateway joining or leaving is one
 *    group replace: flows through the gateways that stay keep their buckets.
 *  - multipath routes (older kernels, or force_multipath): each route is replaced with the
 *    usable gateways as weighted legs.
 * Either way every change is a replace: a route is never removed to be changed.
 *
 * State is reconciled, not replayed: each apply reads what is ours from the kernel (rules of
 * our protocol shaped as the two above - P into main with suppress_prefixlength 0, P+1 into
 * TABLE, either family -, routes of our protocol in our table, nexthops of our protocol in
 * [nh_id_base, nh_id_base + ROUTE_DP_NH_IDS)), keeps what is wanted, changes what differs
 * and removes the rest - so what an earlier run left (also after kill -9) is adopted without
 * a gap.  Anything else (other tables, priorities, protocols or ids; a rule of our protocol
 * at P or P+1 into another table) is never touched.
 *
 * This module decides nothing about health, exclusions or configuration (the caller
 * computes the prefixes and the gateways' usability) and does not log: it reports.
 */
#ifndef EGRESS_ROUTE_DP_H
#define EGRESS_ROUTE_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "nl.h"

#define ROUTE_DP_NH_IDS	       65536u /* nexthop ids reserved from nh_id_base on */
#define ROUTE_DP_NH_GW_FIRST   16u    /* the first gateway id's offset; groups below */
#define ROUTE_DP_MAX_SLOTS     (ROUTE_DP_NH_IDS - ROUTE_DP_NH_GW_FIRST)
#define ROUTE_DP_BUCKETS       512u /* resilient group buckets when the config says 0 */
#define ROUTE_DP_IDLE_TIMER_S  120u /* the kernel's default idle timer */
#define ROUTE_DP_MAX_WEIGHT    256u
#define ROUTE_DP_MAX_ERRORS    8u
#define ROUTE_DP_ERR_TEXT      224u

struct route_dp_conf {
	uint32_t table;		/* our routing table: not 0 (unspec) nor 253..255 (default/main/local) */
	uint32_t rule_priority; /* P; P+1 is used too; 1 .. UINT32_MAX - 1 */
	uint8_t protocol;	/* of our rules, routes and nexthops; > RTPROT_STATIC */
	uint32_t nh_id_base;	/* ids [base, base + ROUTE_DP_NH_IDS) are ours; base >= 1 */
	bool fail_closed;	/* no usable gateway: prohibit routes (else remove them) */
	bool force_multipath;	/* multipath routes even where resilient groups exist */
	uint16_t buckets;	/* resilient groups; 0: ROUTE_DP_BUCKETS */
	uint32_t idle_timer_s;	/* resilient: a bucket idle this long may move; 0: 120 */
	uint32_t unbalanced_timer_s; /* resilient: force rebalancing after this; 0: never */
};

struct route_dp_gw {
	struct addr gw;	 /* IPv4 gateways serve IPv4 prefixes, IPv6 gateways IPv6 ones */
	int ifindex;	 /* 0: found with a route lookup (RTM_GETROUTE) on every apply;
			  * give it for IPv6 link-local gateways */
	unsigned weight; /* 1 .. ROUTE_DP_MAX_WEIGHT */
	unsigned slot;	 /* stable per gateway, unique, < ROUTE_DP_MAX_SLOTS */
	bool usable;	 /* healthy: carries traffic */
};

struct route_dp_error {
	int err; /* -errno */
	/* "replace nexthop 282640 (192.0.2.11 dev 3): Network is down: Nexthop device is not up" */
	char text[ROUTE_DP_ERR_TEXT];
};

/* What one apply or stop did.  Counts are kernel objects (rules, routes, nexthops). */
struct route_dp_result {
	unsigned ok[_NL_OP_MAX];     /* changes that succeeded, by operation (add/replace/del) */
	unsigned failed[_NL_OP_MAX]; /* changes the kernel refused */
	unsigned kept;		     /* found in place as wanted (adopted) and left alone */
	unsigned unresolved;	     /* usable gateways left out: no on-link route to them */
	unsigned in_service[2];	     /* gateways carrying traffic: IPv4, IPv6 */
	uint64_t duration_us;
	size_t n_errors; /* every error, also those past ROUTE_DP_MAX_ERRORS */
	struct route_dp_error errors[ROUTE_DP_MAX_ERRORS];
};

struct route_dp;

/*
 * Check conf (copied), open a netlink socket and pick the mode (probing for resilient
 * groups unless conf->force_multipath).  Touches no kernel state.  -EINVAL for a bad conf.
 * *ret is the caller's: route_dp_stop() if wanted, then route_dp_free().
 */
int route_dp_new(const struct route_dp_conf *conf, struct route_dp **ret);
/* "resilient nexthop groups (512 buckets)" or "multipath routes"; owned by dp. */
const char *route_dp_mode(const struct route_dp *dp);
bool route_dp_resilient(const struct route_dp *dp);

/*
 * Make the kernel carry prefixes (borrowed, both families mixed, any order, no host bits,
 * duplicates ignored) over the usable gateways of gws (borrowed).  Families without prefixes
 * get no rules and no routes.  Order: new nexthops and groups, then routes, then rules, then
 * removals - and no nexthop or group is removed after a failed change, so a failure leaves
 * the earlier working state.  A gateway the kernel refuses, or that has no on-link route,
 * is left out and reported.
 *
 * *ret (caller's, optional) is filled in either way.  Returns 0 when every kernel change
 * succeeded (unresolved gateways are only reported), -EINVAL for bad input (nothing
 * changed), else the first kernel error.
 */
int route_dp_apply(struct route_dp *dp, const struct cidr *prefixes, size_t n_prefixes,
	const struct route_dp_gw *gws, size_t n_gws, struct route_dp_result *ret);

/*
 * Remove our rules, routes, groups and nexthops (whatever run made them), unless keep: those
 * that conf names, so after a change of table, rule_priority or nh_id_base it is the old
 * conf's dp that removes the old ones.
 * *ret (caller's, optional) as for route_dp_apply(); returns 0 or the first error, having
 * tried to remove everything.
 */
int route_dp_stop(struct route_dp *dp, bool keep, struct route_dp_result *ret);

/* Close the socket and free dp (NULL is fine); the kernel state stays as it is. */
void route_dp_free(struct route_dp *dp);

#endif
