/*
 * uplink_stats.c - what the API shows of each uplink (uplink_stats.h).
 *
 * The model gives state, reason, since, weight, drained and the last transitions; the
 * check engine its window's RTT and loss; the configuration the tier.  Throughput needs
 * counters over time, so a timer samples them once a second: for an uplink with an
 * interface, the kernel's counters of that interface (RTM_GETLINK, IFLA_STATS64: all its
 * traffic, whichever module sent it, and none of it costs a rule per packet); for one
 * without (a source address of the proxy, a tunnel), the running modules' counters
 * (module.uplink_traffic: the proxy's bytes per uplink).  The share of an uplink is its
 * part of the sum of every uplink's rate over the same second.
 *
 * Must not change anything: it reads the model, the check engine and the kernel's counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <linux/netlink.h>

#include "check.h"
#include "conf_keys.h"
#include "log.h"
#include "nl.h"
#include "uplink.h"
#include "uplink_stats.h"
#include "util.h"

#define SAMPLE_MS 1000

enum traffic_source {
	SOURCE_NONE,
	SOURCE_INTERFACE,
	SOURCE_MODULE,
};

/* One uplink's last sample and the rates it gave. */
struct sample {
	char *name;
	bool seen;		 /* in the set at the last sample */
	enum traffic_source src; /* of the counters below */
	const char *module;	 /* SOURCE_MODULE: whose (a module's static name) */
	int ifindex;		 /* SOURCE_INTERFACE: which */
	uint64_t rx, tx;	 /* bytes: rx back from the uplink, tx towards it */
	uint64_t at_ms;		 /* monotonic; 0: no sample yet */
	double rx_bps, tx_bps;	 /* bits per second over the last interval; < 0: none yet */
	bool have_conns;
	uint64_t conns_active, conns_total;
};

struct uplink_stats {
	struct uplink_stats_deps deps;
	struct nl *nl; /* NETLINK_ROUTE, for the interfaces' counters */
	struct event *timer;
	struct sample *v;
	size_t n;
	double total_bps; /* every uplink's rx + tx rate at the last sample */
};

static struct sample *sample_find(struct uplink_stats *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].name, name))
			return &s->v[i];
	return NULL;
}

static struct sample *sample_get(struct uplink_stats *s, const char *name)
{
	struct sample *x = sample_find(s, name);

	if (x)
		return x;
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	x = &s->v[s->n++];
	*x = (struct sample){.name = xstrdup(name), .rx_bps = -1, .tx_bps = -1};
	return x;
}

/* Rate of a counter that went from a to b in dt_ms; a counter that went back (an
 * interface made again, a module restarted) starts over. */
static double rate_bps(uint64_t a, uint64_t b, uint64_t dt_ms)
{
	if (b < a)
		return 0;
	return (double)(b - a) * 8.0 * 1000.0 / (double)MAX(dt_ms, (uint64_t)1);
}

static void sample_one(struct uplink_stats *s, const struct uplink *u, uint64_t now)
{
	struct sample *x = sample_get(s, u->name);
	struct module_traffic t = {0};
	const char *module = NULL;
	enum traffic_source src = SOURCE_NONE;
	uint64_t rx = 0, tx = 0;
	bool have_t = s->deps.traffic_cb &&
		      s->deps.traffic_cb(s->deps.arg, u->name, &t, &module) == 0;
	struct nl_link_stats ls;

	x->seen = true;
	if (u->ifindex > 0 && s->nl && nl_link_stats(s->nl, u->ifindex, &ls) == 0) {
		src = SOURCE_INTERFACE;
		rx = ls.rx_bytes;
		tx = ls.tx_bytes;
	} else if (have_t) {
		src = SOURCE_MODULE;
		rx = t.bytes_down;
		tx = t.bytes_up;
	}
	x->have_conns = have_t;
	x->conns_active = t.connections_active;
	x->conns_total = t.connections_total;
	if (src == SOURCE_NONE || src != x->src || x->module != module ||
		(src == SOURCE_INTERFACE && x->ifindex != u->ifindex) || !x->at_ms) {
		/* a new series: a rate needs two samples of it */
		x->rx_bps = x->tx_bps = -1;
	} else {
		x->rx_bps = rate_bps(x->rx, rx, now - x->at_ms);
		x->tx_bps = rate_bps(x->tx, tx, now - x->at_ms);
	}
	x->src = src;
	x->module = module;
	x->ifindex = u->ifindex;
	x->rx = rx;
	x->tx = tx;
	x->at_ms = src == SOURCE_NONE ? 0 : now;
}

void uplink_stats_sample(struct uplink_stats *s)
{
	const struct uplink_set *set = s->deps.set;
	uint64_t now = now_ms();
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		s->v[i].seen = false;
	for (size_t i = 0; i < set->n; i++)
		sample_one(s, set->v[i], now);
	/* the uplinks that are gone go with their samples */
	s->total_bps = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->v[i].seen) {
			free(s->v[i].name);
			continue;
		}
		s->v[k++] = s->v[i];
		if (s->v[i].rx_bps > 0)
			s->total_bps += s->v[i].rx_bps;
		if (s->v[i].tx_bps > 0)
			s->total_bps += s->v[i].tx_bps;
	}
	s->n = k;
}

static void uplink_stats_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct uplink_stats *s = arg;

	(void)fd;
	(void)what;
	uplink_stats_sample(s);
}

int uplink_stats_new(const struct uplink_stats_deps *deps, struct uplink_stats **ret)
{
	struct uplink_stats *s = xcalloc(1, sizeof(*s));
	int r;

	s->deps = *deps;
	r = nl_open(NETLINK_ROUTE, &s->nl);
	if (r < 0) {
		/* no interface counters: the modules' still count */
		log_warnx("api: uplink throughput without the interfaces' counters: %s",
			strerror(-r));
		s->nl = NULL;
	}
	s->timer = event_new(deps->base, -1, EV_PERSIST, uplink_stats_timer_cb, s);
	if (!s->timer) {
		uplink_stats_free(s);
		return -ENOMEM;
	}
	uplink_stats_sample(s);
	event_add(s->timer, &(struct timeval){.tv_sec = SAMPLE_MS / 1000});
	*ret = s;
	return 0;
}

void uplink_stats_free(struct uplink_stats *s)
{
	if (!s)
		return;
	if (s->timer)
		event_free(s->timer);
	nl_free(s->nl);
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	free(s);
}

/* ------------------------------------------------------------ JSON */

static json_t *addr_json(const struct addr *a)
{
	char buf[ADDR_STRLEN];

	return addr_is_set(a) ? json_string(addr_str(a, buf, sizeof(buf))) : json_null();
}

static json_t *time_json(uint64_t mono_ms)
{
	char buf[TIME_ISO_STRLEN];

	return json_string(time_iso(wall_of_mono_ms(mono_ms), buf, sizeof(buf)));
}

static json_t *rate_json(double bps)
{
	return bps < 0 ? json_null() : json_real(bps);
}

static const struct conf_uplink *conf_uplink_of(struct uplink_stats *s, const char *name)
{
	const struct conf *conf = s->deps.conf_cb ? s->deps.conf_cb(s->deps.arg) : NULL;

	return conf ? (const struct conf_uplink *)conf_find(conf, "uplink", name) : NULL;
}

/* RTT and loss of the check window; null without a check or before its first figures. */
static void check_json(struct uplink_stats *s, const struct uplink *u, json_t *o)
{
	struct check_stats st;
	bool have = u->check.kind != CHECK_NONE && s->deps.checks &&
		    check_stats_get(s->deps.checks, u->name, &st) == 0;

	json_object_set_new(o, "rtt_ms", have && st.avg_rtt_us ? json_real(st.avg_rtt_us / 1000.0)
							    : json_null());
	json_object_set_new(o, "loss_pct",
		have && st.window_rounds ? json_real(st.loss_permille / 10.0) : json_null());
}

static void traffic_json(struct uplink_stats *s, const struct uplink *u, json_t *o)
{
	static const char *const source_name[] = {
		[SOURCE_NONE] = NULL, [SOURCE_INTERFACE] = "interface", [SOURCE_MODULE] = NULL};
	const struct sample *x = sample_find(s, u->name);
	double bps = -1;
	const char *src = NULL;

	if (x && x->rx_bps >= 0 && x->tx_bps >= 0)
		bps = x->rx_bps + x->tx_bps;
	if (x)
		src = x->src == SOURCE_MODULE ? x->module : source_name[x->src];
	json_object_set_new(o, "rx_bps", rate_json(x ? x->rx_bps : -1));
	json_object_set_new(o, "tx_bps", rate_json(x ? x->tx_bps : -1));
	json_object_set_new(o, "throughput_bps", rate_json(bps));
	/* share: 0..1; share_pct: the same in percent */
	json_object_set_new(o, "share",
		bps >= 0 && s->total_bps > 0 ? json_real(bps / s->total_bps) : json_null());
	json_object_set_new(o, "share_pct",
		bps >= 0 && s->total_bps > 0 ? json_real(100.0 * bps / s->total_bps) : json_null());
	json_object_set_new(o, "rx_bytes", x && x->src ? json_integer((json_int_t)x->rx)
						       : json_null());
	json_object_set_new(o, "tx_bytes", x && x->src ? json_integer((json_int_t)x->tx)
						       : json_null());
	json_object_set_new(o, "traffic_source", src ? json_string(src) : json_null());
	if (x && x->have_conns) {
		json_object_set_new(o, "connections_active",
			json_integer((json_int_t)x->conns_active));
		json_object_set_new(o, "connections_total",
			json_integer((json_int_t)x->conns_total));
	}
}

static json_t *transitions_json(const struct uplink *u)
{
	json_t *a = json_array();

	for (size_t i = 0; i < u->n_hist; i++) {
		const struct uplink_transition_rec *t = &u->hist[i];

		json_array_append_new(a, json_pack("{s:o, s:s, s:s, s:s}", "time",
			time_json(t->at_ms), "from", uplink_state_name[t->from], "to",
			uplink_state_name[t->to], "reason", t->reason));
	}
	return a;
}

json_t *uplink_stats_json(struct uplink_stats *s, const struct uplink *u)
{
	const struct conf_uplink *c = conf_uplink_of(s, u->name);
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(u->name));
	json_object_set_new(o, "state", json_string(uplink_state_name[u->state]));
	json_object_set_new(o, "reason", json_string(u->reason));
	json_object_set_new(o, "since", time_json(u->since_ms));
	json_object_set_new(o, "enabled", json_boolean(u->enabled));
	json_object_set_new(o, "in_service", json_boolean(uplink_in_service(u)));
	json_object_set_new(o, "weight", json_integer(u->weight));
	json_object_set_new(o, "tier", c ? json_integer(c->tier) : json_null());
	json_object_set_new(o, "interface", u->ifname[0] ? json_string(u->ifname) : json_null());
	json_object_set_new(o, "gateway", addr_json(&u->gateway));
	json_object_set_new(o, "source", addr_json(&u->source));
	json_object_set_new(o, "check", json_string(check_kind_name[u->check.kind]));
	check_json(s, u, o);
	traffic_json(s, u, o);
	json_object_set_new(o, "transitions", transitions_json(u));
	json_object_set_new(o, "transitions_total", json_integer(u->transitions));
	if (s->deps.extra_cb)
		s->deps.extra_cb(s->deps.arg, u, o);
	return o;
}

json_t *uplink_stats_list_json(struct uplink_stats *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->deps.set->n; i++)
		json_array_append_new(a, uplink_stats_json(s, s->deps.set->v[i]));
	return json_pack("{s:o}", "uplinks", a);
}
