/*
 * uplink_metrics.c - the egress_uplink_* families, for every uplink of the set.
 *
 * State, up, transitions, weight and enabled follow the set's events; RTT and loss are read from
 * the check engine and the tier from the running configuration when /metrics is scraped, so
 * nothing runs per probe.  The series of an uplink
 * exist from its ADDED to its REMOVED, so a dashboard sees zeros, not gaps.
 *
 * Must not: keep pointers to uplinks (the set frees them), or log above debug.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "check.h"
#include "conf_keys.h"
#include "metrics.h"
#include "uplink.h"
#include "uplink_metrics.h"
#include "util.h"

struct uplink_metrics {
	struct metrics *m;
	struct uplink_set *set;
	struct check_engine *checks;
	const struct conf *const *conf;
	struct metric_family *up, *state, *rtt, *loss, *transitions, *weight, *enabled, *tier;
};

static void uplink_metrics_state(struct uplink_metrics *um, const struct uplink *u)
{
	metrics_gauge_set(um->up, uplink_usable(u) ? 1 : 0, u->name);
	for (int s = 0; s < _UPLINK_STATE_MAX; s++)
		metrics_gauge_set(um->state, u->state == (enum uplink_state)s ? 1 : 0, u->name,
			uplink_state_name[s]);
}

static void uplink_metrics_remove(struct uplink_metrics *um, const char *name)
{
	struct metric_family *const all[] = {um->up, um->state, um->rtt, um->loss, um->transitions,
		um->weight, um->enabled, um->tier};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		metrics_remove_where(all[i], "uplink", name);
}

static void uplink_metrics_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct uplink_metrics *um = arg;

	switch (ev) {
	case UPLINK_ADDED:
		metrics_counter_add(um->transitions, u->transitions, u->name);
		/* fall through */
	case UPLINK_CHANGED:
		metrics_gauge_set(um->weight, u->weight, u->name);
		metrics_gauge_set(um->enabled, u->enabled ? 1 : 0, u->name);
		uplink_metrics_state(um, u);
		break;
	case UPLINK_STATE:
		metrics_counter_add(um->transitions, 1, u->name);
		uplink_metrics_state(um, u);
		break;
	case UPLINK_REMOVED:
		uplink_metrics_remove(um, u->name);
		break;
	default:
		break;
	}
}

/*
 * The figures that change with every probe, only when someone looks; and the tier, which
 * only the configuration knows.
 */
static void uplink_metrics_scrape_cb(struct metrics *m, void *arg)
{
	struct uplink_metrics *um = arg;
	struct check_stats st;

	(void)m;
	for (size_t i = 0; i < um->set->n; i++) {
		const char *n = um->set->v[i]->name;
		const struct conf_uplink *c =
			um->conf && *um->conf ? (const void *)conf_find(*um->conf, "uplink", n)
					      : NULL;

		if (c)
			metrics_gauge_set(um->tier, c->tier, n);
		if (!um->checks || check_stats_get(um->checks, n, &st) < 0)
			continue;
		metrics_gauge_set(um->rtt, st.avg_rtt_us / 1e6, n);
		metrics_gauge_set(um->loss, st.loss_permille / 1000.0, n);
	}
}

#define FAMILY(member) offsetof(struct uplink_metrics, member)

static const struct {
	enum metric_type type;
	const char *name;
	const char *help;
	bool by_state; /* labels uplink and state; otherwise uplink */
	size_t off;    /* of its struct metric_family * in struct uplink_metrics */
} families[] = {
	{METRIC_GAUGE, "egress_uplink_up", "1 if the uplink carries traffic", false, FAMILY(up)},
	{METRIC_GAUGE, "egress_uplink_state", "1 for the uplink's current state", true,
		FAMILY(state)},
	{METRIC_GAUGE, "egress_uplink_rtt_seconds",
		"Average probe round-trip time over the check window", false, FAMILY(rtt)},
	{METRIC_GAUGE, "egress_uplink_loss_ratio", "Probe loss over the check window", false,
		FAMILY(loss)},
	{METRIC_COUNTER, "egress_uplink_transitions_total", "State changes of the uplink", false,
		FAMILY(transitions)},
	{METRIC_GAUGE, "egress_uplink_weight",
		"The uplink's weight: its share of new connections and flows relative to the other "
		"uplinks",
		false, FAMILY(weight)},
	{METRIC_GAUGE, "egress_uplink_enabled",
		"0 while the uplink is drained ([uplink] enabled = false): no new connection or "
		"flow goes through it",
		false, FAMILY(enabled)},
	{METRIC_GAUGE, "egress_uplink_tier",
		"The uplink's tier: a policy uses the lowest tier that has an uplink up", false,
		FAMILY(tier)},
};

/* 0, or the first registration's -errno. */
static int uplink_metrics_register(struct uplink_metrics *um)
{
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		const char *const *labels = families[i].by_state ? METRICS_LABELS("uplink", "state")
								 : METRICS_LABELS("uplink");
		struct metric_family **f = (void *)((char *)um + families[i].off);
		int r = families[i].type == METRIC_COUNTER
				? metrics_counter_new(
					  um->m, families[i].name, families[i].help, labels, f)
				: metrics_gauge_new(
					  um->m, families[i].name, families[i].help, labels, f);
		if (r < 0)
			return r;
	}
	return 0;
}

int uplink_metrics_new(struct metrics *m, struct uplink_set *set, struct check_engine *checks,
	const struct conf *const *conf, struct uplink_metrics **ret)
{
	struct uplink_metrics *um = xcalloc(1, sizeof(*um));
	int r;

	um->m = m;
	um->set = set;
	um->checks = checks;
	um->conf = conf;
	r = uplink_metrics_register(um);
	if (r == 0)
		r = metrics_on_scrape(m, uplink_metrics_scrape_cb, um);
	if (r < 0) {
		free(um);
		return r;
	}
	for (size_t i = 0; i < set->n; i++)
		uplink_metrics_uplink_cb(set->v[i], UPLINK_ADDED, um);
	uplink_set_subscribe(set, uplink_metrics_uplink_cb, um);
	*ret = um;
	return 0;
}

void uplink_metrics_free(struct uplink_metrics *um)
{
	if (!um)
		return;
	uplink_set_unsubscribe(um->set, uplink_metrics_uplink_cb, um);
	metrics_on_scrape_remove(um->m, uplink_metrics_scrape_cb, um);
	free(um);
}
