/*
 * check.c - the health-check engine: per-uplink rounds on one timer each,
 * probe bookkeeping, the state machine's verdicts applied to the model.
 *
 * A round probes every target of an uplink at once; it ends when every
 * probe has reported or its deadline (check timeout) has passed, and passes
 * when at least check_quorum targets answered.  The next round starts the
 * verdict's interval after this one started (never before this one ended),
 * so with the defaults a dead uplink is down at most
 * interval + (fall - 1) x interval_failing + timeout = 2.5 s after its last
 * good probe.
 *
 * Must not block the loop, must not poll the uplinks (it follows their
 * events) and must not change an uplink's state except through
 * uplink_transition().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check_int.h"
#include "curl_loop.h"
#include "util.h"

const char *const check_result_name[_CHECK_RESULT_MAX] = {
	[CHECK_OK] = "ok",
	[CHECK_TIMEOUT] = "timeout",
	[CHECK_REFUSED] = "refused",
	[CHECK_UNREACHABLE] = "unreachable",
	[CHECK_BAD_STATUS] = "status",
	[CHECK_TLS] = "tls",
	[CHECK_BAD_RCODE] = "rcode",
	[CHECK_ERROR] = "error",
};

struct check_ops {
	int (*setup)(struct check_target *t); /* per-target state for the settings in force */
	int (*start)(struct check_target *t); /* 0, or -errno: not started, nothing reported */
	void (*cancel)(struct check_target *t);
	void (*teardown)(struct check_target *t);
	uint16_t port; /* default port; 0: check_port (TCP) or none (ICMP) */
};

static const struct check_ops kind_ops[_CHECK_KIND_MAX] = {
	[CHECK_HTTP] = {check_http_setup, check_http_start, check_http_cancel, check_http_teardown,
		80},
	[CHECK_HTTPS] = {check_http_setup, check_http_start, check_http_cancel, check_http_teardown,
		443},
	[CHECK_TCP] = {NULL, check_tcp_start, check_tcp_cancel, NULL, 0},
	[CHECK_ICMP] = {NULL, check_icmp_start, check_icmp_cancel, NULL, 0},
	[CHECK_DNS] = {check_dns_setup, check_dns_start, check_dns_cancel, check_dns_teardown, 53},
};

static void round_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct check_uplink *cu_find(const struct check_engine *e, const struct uplink *u)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i]->u == u)
			return e->v[i];
	return NULL;
}

static void timer_in(struct check_uplink *cu, uint64_t us)
{
	struct timeval tv = {
		.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};

	evtimer_add(cu->timer, &tv);
}

/* ------------------------------------------------------------ configuration */

static void target_label(struct check_target *t)
{
	char a[ADDR_STRLEN];

	addr_str(&t->addr, a, sizeof(a));
	if (!t->port)
		snprintf(t->label, sizeof(t->label), "%s", a);
	else if (t->addr.family == AF_INET6)
		snprintf(t->label, sizeof(t->label), "[%s]:%u", a, t->port);
	else
		snprintf(t->label, sizeof(t->label), "%s:%u", a, t->port);
}

/* Targets and per-target state for the uplink's settings in force; the first round now. */
static void cu_configure(struct check_uplink *cu)
{
	const struct uplink *u = cu->u;
	const struct uplink_check *c = &u->check;
	const struct check_ops *ops = &kind_ops[c->kind];
	size_t n = c->targets.n ? c->targets.n : 1;

	cu->kind = c->kind;
	if (n > CHECK_MAX_TARGETS) {
		log_obj(LOG_LEVEL_WARN, "uplink", u->name,
			"check: %zu targets, probing the first %d only", n, CHECK_MAX_TARGETS);
		n = CHECK_MAX_TARGETS;
	}
	cu->n_t = (unsigned)n;
	cu->t = xcalloc(n, sizeof(*cu->t));
	for (unsigned i = 0; i < cu->n_t; i++) {
		struct check_target *t = &cu->t[i];

		t->cu = cu;
		t->idx = i;
		t->fd = -1;
		t->addr = c->targets.n ? c->targets.v[i].addr : u->gateway;
		t->port = (uint16_t)(c->port ? c->port : ops->port);
		if (c->kind == CHECK_ICMP)
			t->port = 0;
		target_label(t);
		if (ops->setup && ops->setup(t) < 0)
			log_obj(LOG_LEVEL_WARN, "uplink", u->name, "check %s %s: cannot set up",
				check_kind_name[cu->kind], t->label);
	}
	check_sm_init(&cu->sm, (unsigned)MAX(c->window, 1));
	cu->stats.kind = c->kind;
	cu->stats.targets = cu->n_t;
	cu->stats.consecutive_failures = cu->stats.consecutive_passes = 0;
	cu->due_us = 0;
	timer_in(cu, 0);
}

/* Stop the round in flight (nothing is reported) and release the per-target state. */
static void cu_unconfigure(struct check_uplink *cu)
{
	const struct check_ops *ops = &kind_ops[cu->kind];

	evtimer_del(cu->timer);
	for (unsigned i = 0; i < cu->n_t; i++) {
		struct check_target *t = &cu->t[i];

		if (t->pending) {
			t->pending = false;
			ops->cancel(t);
		}
		if (ops->teardown)
			ops->teardown(t);
	}
	cu->in_round = false;
	cu->pending = 0;
	check_icmp_uplink_clear(cu);
	FREE_AND_NULL(cu->t);
	cu->n_t = 0;
	check_sm_clear(&cu->sm);
}

static void cu_new(struct check_engine *e, struct uplink *u)
{
	struct check_uplink *cu = xcalloc(1, sizeof(*cu));

	cu->e = e;
	cu->u = u;
	cu->timer = evtimer_new(e->base, round_timer_cb, cu);
	if (!cu->timer)
		fatalx("check: cannot make a timer");
	e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
	e->v[e->n++] = cu;
	log_obj(LOG_LEVEL_DEBUG, "uplink", u->name, "check %s: %zu target%s, every %ums",
		check_kind_name[u->check.kind], u->check.targets.n ? u->check.targets.n : 1,
		u->check.targets.n == 1 || !u->check.targets.n ? "" : "s",
		(unsigned)u->check.interval_ms);
	cu_configure(cu);
}

static void cu_free(struct check_engine *e, struct check_uplink *cu)
{
	for (size_t i = 0; i < e->n; i++) {
		if (e->v[i] != cu)
			continue;
		memmove(&e->v[i], &e->v[i + 1], (e->n - i - 1) * sizeof(*e->v));
		e->n--;
		break;
	}
	cu_unconfigure(cu);
	event_free(cu->timer);
	free(cu);
}

/* ------------------------------------------------------------ rounds */

static void round_start(struct check_uplink *cu)
{
	const struct check_ops *ops = &kind_ops[cu->kind];
	uint64_t now = check_now_us();

	cu->in_round = true;
	cu->starting = true;
	/* rounds keep their cadence: a timer that fires a little late does not push the
	 * following rounds back (it would add up over hours and over the fall rounds) */
	cu->round_start_us =
		cu->due_us && now >= cu->due_us && now - cu->due_us < 50000 ? cu->due_us : now;
	cu->pending = cu->n_t;
	for (unsigned i = 0; i < cu->n_t; i++) {
		struct check_target *t = &cu->t[i];
		int r;

		t->pending = true;
		t->sent_us = now;
		t->result = CHECK_TIMEOUT;
		t->rtt_us = 0;
		t->reason[0] = '\0';
		if (!addr_is_set(&t->addr)) {
			check_target_done(t, CHECK_ERROR, "no address to probe");
			continue;
		}
		r = ops->start(t);
		if (r < 0)
			check_target_done(t, check_errno_result(-r), "%s", strerror(-r));
	}
	cu->starting = false;
	if (cu->pending)
		timer_in(cu, (uint64_t)cu->u->check.timeout_ms * 1000);
	else
		timer_in(cu, 0); /* everything failed at once: end the round on the next turn */
}

/* The deadline passed: whatever has not answered timed out. */
static void round_deadline(struct check_uplink *cu)
{
	const struct check_ops *ops = &kind_ops[cu->kind];

	cu->starting = true;
	for (unsigned i = 0; i < cu->n_t; i++) {
		struct check_target *t = &cu->t[i];

		if (!t->pending)
			continue;
		ops->cancel(t);
		check_target_done(t, CHECK_TIMEOUT, "timeout");
	}
	cu->starting = false;
}

static void run_round_hooks(struct check_uplink *cu, bool passed, unsigned ok)
{
	struct check_engine *e = cu->e;
	struct check_stats st;
	struct check_round_info ri = {
		.uplink = cu->u, .passed = passed, .ok = ok, .sent = cu->n_t, .stats = &st};

	if (!e->n_round_hooks)
		return;
	check_stats_get(e, cu->u->name, &st);
	for (size_t i = 0; i < e->n_round_hooks; i++)
		e->round_hooks[i].cb(&ri, e->round_hooks[i].arg);
}

/* Down on timeouts: tell the user if the kernel would never let a probe through. */
static void say_why(const struct check_uplink *cu)
{
	char why[256];

	for (unsigned i = 0; i < cu->n_t; i++) {
		const struct check_target *t = &cu->t[i];
		if (t->result != CHECK_TIMEOUT)
			continue;
		if (check_path_why(cu, t, why, sizeof(why)) > 0)
			log_obj(LOG_LEVEL_WARN, "uplink", cu->u->name, "check %s %s: %s",
				check_kind_name[cu->kind], t->label, why);
		return;
	}
}

static void round_end(struct check_uplink *cu)
{
	struct uplink *u = cu->u;
	struct check_sm_round r = {.sent = cu->n_t};
	struct check_sm_verdict v;
	char link[IFNAMSIZ + 32];
	uint64_t now;

	cu->in_round = false;
	for (unsigned i = 0; i < cu->n_t; i++) {
		const struct check_target *t = &cu->t[i];
		if (t->result == CHECK_OK) {
			r.ok++;
			r.rtt_us += t->rtt_us;
		} else if (!r.why) {
			r.why = t->reason;
		}
	}
	/* a probe cannot prove an uplink whose link is down */
	if (u->ifname[0] && !u->link_up) {
		snprintf(link, sizeof(link), "link %s is down", u->ifname);
		r.link_down = link;
	}
	check_sm_round(&cu->sm, &u->check, u->state, &r, &v);

	now = check_now_us();
	cu->stats.rounds++;
	cu->stats.rounds_failed += !v.passed;
	cu->stats.last_round_ms = now / 1000;
	cu->stats.last_round_passed = v.passed;
	cu->stats.consecutive_failures = cu->sm.bad_run;
	cu->stats.consecutive_passes = cu->sm.good_run;
	if (v.state != u->state) {
		cu->transitioning = true;
		uplink_transition(cu->e->set, u, v.state, "%s", v.reason);
		cu->transitioning = false;
		if (v.state == UPLINK_DOWN)
			say_why(cu);
	}
	run_round_hooks(cu, v.passed, r.ok);
	cu->due_us = check_sm_next_start(cu->round_start_us, now, v.next_ms);
	timer_in(cu, cu->due_us - now);
}

static void round_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_uplink *cu = arg;

	(void)fd;
	(void)what;
	if (!cu->in_round) {
		round_start(cu);
		return;
	}
	if (cu->pending)
		round_deadline(cu);
	if (cu->in_round && !cu->pending)
		round_end(cu);
}

void check_target_done(struct check_target *t, enum check_result res, const char *fmt, ...)
{
	struct check_uplink *cu = t->cu;
	struct check_engine *e = cu->e;
	va_list ap;

	if (!t->pending)
		return;
	t->pending = false;
	t->result = res;
	t->rtt_us = (uint32_t)MIN(check_now_us() - t->sent_us, UINT32_MAX);
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);

	cu->stats.probes++;
	cu->stats.failures[res]++;
	if (res == CHECK_OK)
		cu->stats.last_rtt_us = t->rtt_us;
	else
		log_obj(LOG_LEVEL_DEBUG, "uplink", cu->u->name, "check %s %s: %s",
			check_kind_name[cu->kind], t->label, t->reason);
	if (e->n_probe_hooks) {
		struct check_probe_info pi = {
			.uplink = cu->u,
			.kind = cu->kind,
			.target = &t->addr,
			.port = t->port,
			.result = res,
			.duration_us = t->rtt_us,
			.reason = res == CHECK_OK ? "" : t->reason,
			.http_status = t->http_status,
		};
		for (size_t i = 0; i < e->n_probe_hooks; i++)
			e->probe_hooks[i].cb(&pi, e->probe_hooks[i].arg);
	}
	t->http_status = 0;
	if (cu->pending)
		cu->pending--;
	/* while probes start or the deadline sweeps, the caller ends the round */
	if (!cu->pending && !cu->starting && cu->in_round) {
		evtimer_del(cu->timer);
		round_end(cu);
	}
}

void check_malformed(struct check_uplink *cu, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	cu->stats.malformed++;
	if (!log_is_debug() || !log_ratelimit(&cu->e->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_obj(LOG_LEVEL_DEBUG, "uplink", cu->u->name, "check %s: dropped %s",
		check_kind_name[cu->kind], buf);
}

/* ------------------------------------------------------------ uplink events */

/* The check was removed: the link state alone decides again (as uplink_set_link would). */
static void settle_unchecked(struct check_engine *e, struct uplink *u)
{
	if (!u->ifname[0] || u->link_up)
		uplink_transition(e->set, u, UPLINK_UP, "check removed");
}

static void engine_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct check_engine *e = arg;
	struct check_uplink *cu = cu_find(e, u);

	switch (ev) {
	case UPLINK_ADDED:
		if (!cu && u->check.kind != CHECK_NONE)
			cu_new(e, u);
		break;
	case UPLINK_CHANGED:
		if (cu) {
			/* interface, addresses or settings may all have changed: start over,
			 * keeping the counters and the uplink's state */
			cu_unconfigure(cu);
			if (u->check.kind == CHECK_NONE) {
				cu_free(e, cu);
				settle_unchecked(e, u);
			} else {
				cu_configure(cu);
			}
		} else if (u->check.kind != CHECK_NONE) {
			cu_new(e, u);
		}
		break;
	case UPLINK_REMOVED:
		if (cu)
			cu_free(e, cu);
		break;
	case UPLINK_STATE:
		/* the link went down (link.c): rise good rounds from now on to come back */
		if (cu && !cu->transitioning)
			check_sm_forced(&cu->sm, u->state);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------ engine */

int check_engine_new(struct event_base *base, struct uplink_set *set, struct check_engine **ret)
{
	struct check_engine *e = xcalloc(1, sizeof(*e));
	int r;

	e->base = base;
	e->set = set;
	e->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 10);
	r = curl_loop_new(base, &e->http);
	if (r < 0) {
		free(e);
		return r;
	}
	uplink_set_subscribe(set, engine_uplink_cb, e);
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i]->check.kind != CHECK_NONE)
			cu_new(e, set->v[i]);
	*ret = e;
	return 0;
}

void check_engine_free(struct check_engine *e)
{

	if (!e)
		return;
	while (e->n)
		cu_free(e, e->v[e->n - 1]);
	free(e->v);
	curl_loop_free(e->http);
	uplink_set_unsubscribe(e->set, engine_uplink_cb, e);
	free(e->probe_hooks);
	free(e->round_hooks);
	free(e);
}

void check_engine_off(struct check_engine *e, void *arg)
{
	size_t j = 0;

	for (size_t i = 0; i < e->n_probe_hooks; i++)
		if (e->probe_hooks[i].arg != arg)
			e->probe_hooks[j++] = e->probe_hooks[i];
	e->n_probe_hooks = j;
	j = 0;
	for (size_t i = 0; i < e->n_round_hooks; i++)
		if (e->round_hooks[i].arg != arg)
			e->round_hooks[j++] = e->round_hooks[i];
	e->n_round_hooks = j;
}

void check_engine_on_probe(struct check_engine *e, check_probe_cb cb, void *arg)
{
	e->probe_hooks = xrealloc(e->probe_hooks, (e->n_probe_hooks + 1) * sizeof(*e->probe_hooks));
	e->probe_hooks[e->n_probe_hooks].cb = cb;
	e->probe_hooks[e->n_probe_hooks].arg = arg;
	e->n_probe_hooks++;
}

void check_engine_on_round(struct check_engine *e, check_round_cb cb, void *arg)
{
	e->round_hooks = xrealloc(e->round_hooks, (e->n_round_hooks + 1) * sizeof(*e->round_hooks));
	e->round_hooks[e->n_round_hooks].cb = cb;
	e->round_hooks[e->n_round_hooks].arg = arg;
	e->n_round_hooks++;
}

int check_stats_get(const struct check_engine *e, const char *name, struct check_stats *ret)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct check_uplink *cu = e->v[i];
		const struct uplink *u = cu->u;

		if (!streq(u->name, name))
			continue;
		*ret = cu->stats;
		ret->state = u->state;
		ret->since_ms = u->since_ms;
		snprintf(ret->reason, sizeof(ret->reason), "%s", u->reason);
		ret->avg_rtt_us = check_sm_avg_rtt_us(&cu->sm);
		ret->loss_permille = check_sm_loss_permille(&cu->sm);
		ret->window_rounds = check_sm_window_rounds(&cu->sm);
		return 0;
	}
	return -ENOENT;
}
