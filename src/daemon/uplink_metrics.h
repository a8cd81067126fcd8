/*
 * uplink_metrics.h - the egress_uplink_* metrics: every uplink of the set, whichever modules
 * use it (state, up, RTT, loss, transitions, weight, drained or not, tier).
 *
 * The families follow the set through its events (an uplink's series come and go with it)
 * and refresh the check figures (RTT, loss) when /metrics is scraped.  Owned by the daemon,
 * beside the set and the check engine it reads.
 */
#ifndef EGRESS_UPLINK_METRICS_H
#define EGRESS_UPLINK_METRICS_H

struct check_engine;
struct conf;
struct metrics;
struct uplink_metrics;
struct uplink_set;

/*
 * Register the families in m and follow set; m, set, checks (NULL: no RTT and loss) and
 * conf (where the running configuration is, read at each scrape for the tiers; NULL: no
 * tiers) are borrowed and must outlive the result, which the caller owns
 * (uplink_metrics_free).  0 or -errno (a family taken by another type: -EEXIST).
 */
int uplink_metrics_new(struct metrics *m, struct uplink_set *set, struct check_engine *checks,
	const struct conf *const *conf, struct uplink_metrics **ret);
/* Stop following the set; the families and their series stay in m.  NULL is accepted. */
void uplink_metrics_free(struct uplink_metrics *um);

#endif
