/*
 * policy.h - the policy module: kernel multi-WAN load balancing.
 *
 * The kernel forwards every packet; egressd only reconciles: one nftables table
 * (inet egress: connection marks, a weighted choice per policy, masquerade), and per
 * uplink an fwmark rule to a routing table that holds its default route.  An uplink
 * going down leaves the weighted choice in the same transaction and only its own
 * connections are deleted from conntrack, so clients reconnect at once through another
 * uplink while the flows of healthy uplinks are untouched.
 */
#ifndef EGRESS_POLICY_H
#define EGRESS_POLICY_H

#include "module.h"

struct conf;
struct event_base;
struct uplink_set;
struct policy_module;

/*
 * Start for conf's [balance] (conf borrowed until the next policy_module_reconf or free:
 * the daemon keeps its configuration alive that long).  set is borrowed and must outlive
 * the module.  *ret is the caller's.
 */
int policy_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct policy_module **ret);
/* A reload: apply conf (borrowed as above).  On error the running dataplane stays. */
int policy_module_reconf(struct policy_module *pm, const struct conf *conf);
/* Remove the table, rules and routes unless keep_dataplane; free (NULL is fine). */
void policy_module_free(struct policy_module *pm);

/* The module's description for the daemon's table (module.h). */
extern const struct module module_policy;

#endif
