/*
 * uplink_stats.h - what the API shows of each uplink: its model (state, reason, since,
 * weight, tier, drained), its check window (RTT, loss), its throughput each way and share
 * of the traffic, and its last transitions.
 */
#ifndef EGRESS_UPLINK_STATS_H
#define EGRESS_UPLINK_STATS_H

#include <jansson.h>

#include "module.h"

struct check_engine;
struct conf;
struct event_base;
struct uplink;
struct uplink_set;
struct uplink_stats;

/* Where the stats come from; all borrowed, and outliving the stats. */
struct uplink_stats_deps {
	struct event_base *base;
	struct uplink_set *set;
	struct check_engine *checks; /* may be NULL */
	/* The running configuration (for the tier), or NULL. */
	const struct conf *(*conf_cb)(void *arg);
	/*
	 * The running modules' counters of uplink `name`, summed, and the name of the module
	 * that has them in *source: 0, or -ENOENT if no running module has any.
	 */
	int (*traffic_cb)(void *arg, const char *name, struct module_traffic *ret,
		const char **source);
	/* NULL, or add the running modules' fields of uplink u to its object o. */
	void (*extra_cb)(void *arg, const struct uplink *u, json_t *o);
	void *arg;
};

/*
 * Sample every uplink's byte counters once a second, for rates over the last second:
 * an uplink with an interface by the kernel's counters of that interface (everything that
 * leaves or arrives through it: policy, route, proxy, probes), one without by the running
 * modules' (the proxy's per-uplink bytes).  0 or -errno.
 */
int uplink_stats_new(const struct uplink_stats_deps *deps, struct uplink_stats **ret);
void uplink_stats_free(struct uplink_stats *s);

/* Take a sample now (the timer does it once a second). */
void uplink_stats_sample(struct uplink_stats *s);

/* One uplink as the API shows it: a new object the caller owns. */
json_t *uplink_stats_json(struct uplink_stats *s, const struct uplink *u);
/* {"uplinks": [every uplink, in the set's order]}: a new object. */
json_t *uplink_stats_list_json(struct uplink_stats *s);

#endif
