/*
 * uplink.c - the uplink model: configuration sync, link state, transitions,
 * and the subscribers that are told of every change.
 *
 * Must not touch the kernel: dataplanes do that in their callbacks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_keys.h"
#include "log.h"
#include "uplink.h"
#include "util.h"

const char *const uplink_state_name[_UPLINK_STATE_MAX] = {
	[UPLINK_INIT] = "init",
	[UPLINK_DOWN] = "down",
	[UPLINK_UP] = "up",
	[UPLINK_DEGRADED] = "degraded",
};

const char *const check_kind_name[_CHECK_KIND_MAX] = {
	[CHECK_NONE] = "none",
	[CHECK_HTTP] = "http",
	[CHECK_HTTPS] = "https",
	[CHECK_TCP] = "tcp",
	[CHECK_ICMP] = "icmp",
	[CHECK_DNS] = "dns",
};

static char *strdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void *memdup_or_null(const void *p, size_t n)
{
	void *q;

	if (!n)
		return NULL;
	q = xmalloc(n);
	memcpy(q, p, n);
	return q;
}

void uplink_check_copy(struct uplink_check *dst, const struct uplink_check *src)
{
	*dst = *src;
	dst->targets.v = memdup_or_null(src->targets.v, src->targets.n * sizeof(*src->targets.v));
	dst->status.v = memdup_or_null(src->status.v, src->status.n * sizeof(*src->status.v));
	dst->path = strdup_or_null(src->path);
	dst->host = strdup_or_null(src->host);
	dst->dns_name = strdup_or_null(src->dns_name);
}

void uplink_check_clear(struct uplink_check *c)
{
	free(c->targets.v);
	free(c->status.v);
	free(c->path);
	free(c->host);
	free(c->dns_name);
	memset(c, 0, sizeof(*c));
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && streq(a, b));
}

bool uplink_check_equal(const struct uplink_check *a, const struct uplink_check *b)
{
	if (a->targets.n != b->targets.n || a->status.n != b->status.n)
		return false;
	for (size_t i = 0; i < a->targets.n; i++)
		if (!addr_eq(&a->targets.v[i].addr, &b->targets.v[i].addr) ||
			a->targets.v[i].weight != b->targets.v[i].weight)
			return false;
	if (a->status.n && memcmp(a->status.v, b->status.v, a->status.n * sizeof(*a->status.v)))
		return false;
	return a->kind == b->kind && a->port == b->port && str_eq(a->path, b->path) &&
	       str_eq(a->host, b->host) && a->tls_verify == b->tls_verify &&
	       str_eq(a->dns_name, b->dns_name) && a->quorum == b->quorum &&
	       a->interval_ms == b->interval_ms &&
	       a->interval_failing_ms == b->interval_failing_ms &&
	       a->interval_recovering_ms == b->interval_recovering_ms &&
	       a->timeout_ms == b->timeout_ms && a->fall == b->fall && a->rise == b->rise &&
	       a->max_rtt_ms == b->max_rtt_ms && a->max_loss_pct == b->max_loss_pct &&
	       a->window == b->window && a->mark == b->mark;
}

const char *const uplink_event_name[_UPLINK_EVENT_MAX] = {
	[UPLINK_ADDED] = "added",
	[UPLINK_REMOVED] = "removed",
	[UPLINK_CHANGED] = "changed",
	[UPLINK_STATE] = "state",
};

void uplink_set_init(struct uplink_set *set)
{
	memset(set, 0, sizeof(*set));
}

static void uplink_free(struct uplink *u)
{
	if (!u)
		return;
	free(u->name);
	uplink_check_clear(&u->check);
	free(u);
}

void uplink_set_clear(struct uplink_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		uplink_free(set->v[i]);
	free(set->v);
	free(set->subs);
	memset(set, 0, sizeof(*set));
}

void uplink_set_subscribe(struct uplink_set *set, uplink_event_cb cb, void *arg)
{
	set->subs = xrealloc(set->subs, (set->n_subs + 1) * sizeof(*set->subs));
	set->subs[set->n_subs++] = (struct uplink_sub){cb, arg};
}

void uplink_set_unsubscribe(struct uplink_set *set, uplink_event_cb cb, void *arg)
{
	for (size_t i = 0; i < set->n_subs; i++) {
		if (set->subs[i].cb == cb && set->subs[i].arg == arg) {
			memmove(&set->subs[i], &set->subs[i + 1],
				(set->n_subs - i - 1) * sizeof(*set->subs));
			set->n_subs--;
			return;
		}
	}
}

static void announce(struct uplink_set *set, struct uplink *u, enum uplink_event ev)
{
	for (size_t i = 0; i < set->n_subs; i++)
		set->subs[i].cb(u, ev, set->subs[i].arg);
}

struct uplink *uplink_find(const struct uplink_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (streq(set->v[i]->name, name))
			return set->v[i];
	return NULL;
}

struct uplink *uplink_find_ifname(const struct uplink_set *set, const char *ifname)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i]->ifname[0] && streq(set->v[i]->ifname, ifname))
			return set->v[i];
	return NULL;
}

void uplink_transition(struct uplink_set *set, struct uplink *u, enum uplink_state to,
	const char *reason_fmt, ...)
{
	va_list ap;
	enum uplink_state from = u->state;

	va_start(ap, reason_fmt);
	vsnprintf(u->reason, sizeof(u->reason), reason_fmt, ap);
	va_end(ap);
	if (from == to)
		return;
	u->prev_state = from;
	u->state = to;
	u->since_ms = now_ms();
	u->transitions++;
	if (u->n_hist == UPLINK_HISTORY)
		memmove(&u->hist[0], &u->hist[1], (UPLINK_HISTORY - 1) * sizeof(u->hist[0]));
	else
		u->n_hist++;
	u->hist[u->n_hist - 1] = (struct uplink_transition_rec){.at_ms = u->since_ms,
		.from = from, .to = to};
	snprintf(u->hist[u->n_hist - 1].reason, sizeof(u->hist[0].reason), "%s", u->reason);
	log_obj(to == UPLINK_DOWN ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "uplink", u->name,
		"%s -> %s (%s)", uplink_state_name[from], uplink_state_name[to], u->reason);
	announce(set, u, UPLINK_STATE);
}

/* Copy conf into u; describe what changed into diff. Returns true if anything did. */
static bool uplink_apply_conf(struct uplink *u, const struct conf_uplink *c, char *diff,
	size_t len)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	size_t off = 0;

	diff[0] = '\0';
#define DIFF(...)                                                                                  \
	do {                                                                                       \
		if (off < len)                                                                     \
			off += (size_t)snprintf(diff + off, len - off, "%s", off ? ", " : "");     \
		if (off < len)                                                                     \
			off += (size_t)snprintf(diff + off, len - off, __VA_ARGS__);               \
	} while (0)
	if (!streq(u->ifname, c->interface)) {
		DIFF("interface %s -> %s", u->ifname[0] ? u->ifname : "none",
			c->interface[0] ? c->interface : "none");
		snprintf(u->ifname, sizeof(u->ifname), "%s", c->interface);
		u->ifindex = 0;
		u->link_up = false;
	}
	if (!addr_eq(&u->gateway, &c->gateway)) {
		DIFF("gateway %s -> %s", addr_str(&u->gateway, a, sizeof(a)),
			addr_str(&c->gateway, b, sizeof(b)));
		u->gateway = c->gateway;
	}
	if (!addr_eq(&u->source, &c->source)) {
		DIFF("source %s -> %s", addr_str(&u->source, a, sizeof(a)),
			addr_str(&c->source, b, sizeof(b)));
		u->source = c->source;
	}
	if (u->weight != c->weight) {
		DIFF("weight %d -> %d", u->weight, c->weight);
		u->weight = c->weight;
	}
	if (u->enabled != c->enabled) {
		DIFF("%s", c->enabled ? "enabled again: new connections and flows may use it"
				      : "drained: no new connection or flow, those on it go on");
		u->enabled = c->enabled;
	}
	if (!uplink_check_equal(&u->check, &c->check)) {
		if (u->check.kind != c->check.kind)
			DIFF("check %s -> %s", check_kind_name[u->check.kind],
				check_kind_name[c->check.kind]);
		else
			DIFF("check settings");
		uplink_check_clear(&u->check);
		uplink_check_copy(&u->check, &c->check);
	}
#undef DIFF
	return off > 0;
}

unsigned uplink_set_sync(struct uplink_set *set, const struct conf *conf)
{
	size_t n = conf_n_uplinks(conf);
	unsigned changes = 0;
	char diff[512];

	/* Removed: in the set, not in conf. */
	for (size_t i = 0; i < set->n;) {
		struct uplink *u = set->v[i];
		if (conf_find(conf, "uplink", u->name)) {
			i++;
			continue;
		}
		log_obj(LOG_LEVEL_INFO, "uplink", u->name, "removed");
		announce(set, u, UPLINK_REMOVED);
		uplink_free(u);
		memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) * sizeof(*set->v));
		set->n--;
		changes++;
	}
	/* Added or changed, in conf order. */
	for (size_t i = 0; i < n; i++) {
		const struct conf_uplink *c = conf_uplink_at(conf, i);
		struct uplink *u = uplink_find(set, c->s.name);

		if (u) {
			if (uplink_apply_conf(u, c, diff, sizeof(diff))) {
				log_obj(LOG_LEVEL_INFO, "uplink", u->name, "changed: %s", diff);
				announce(set, u, UPLINK_CHANGED);
				changes++;
			}
			continue;
		}
		u = xcalloc(1, sizeof(*u));
		u->name = xstrdup(c->s.name);
		u->since_ms = now_ms();
		uplink_apply_conf(u, c, diff, sizeof(diff));
		set->v = xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
		set->v[set->n++] = u;
		log_obj(LOG_LEVEL_INFO, "uplink", u->name, "added%s",
			u->enabled ? "" : " (drained: no new connection or flow)");
		announce(set, u, UPLINK_ADDED);
		changes++;
	}
	return changes;
}

void uplink_set_link(struct uplink_set *set, const char *ifname, int ifindex, bool up)
{
	for (size_t i = 0; i < set->n; i++) {
		struct uplink *u = set->v[i];

		if (!u->ifname[0] || !streq(u->ifname, ifname))
			continue;
		bool was = u->link_up;
		u->ifindex = ifindex;
		u->link_up = ifindex && up;
		if (!ifindex)
			uplink_transition(set, u, UPLINK_DOWN, "interface %s does not exist", ifname);
		else if (!u->link_up)
			uplink_transition(set, u, UPLINK_DOWN, "link %s is down", ifname);
		else if (u->check.kind != CHECK_NONE)
			continue; /* the check engine brings it up */
		else if (!was || u->state == UPLINK_INIT)
			uplink_transition(set, u, UPLINK_UP, "link %s is up", ifname);
	}
}
