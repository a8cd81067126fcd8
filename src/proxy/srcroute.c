/*
 * srcroute.c - a routing table and two "from SOURCE" rules per uplink with a
 * source address (see srcroute.h).
 *
 * Reconciles on start, on reload and whenever an address or a default route
 * of the main table changes (netlink events, at most once per loop turn).
 * Uplink i's rules, in this order:
 *
 *   rule_priority + 2i      from SOURCE lookup main suppress_prefixlength 0
 *   rule_priority + 2i + 1  from SOURCE lookup table_base + i
 *
 * so main's connected and specific routes keep working for the source (the
 * replies to a LAN client that connects to the uplink's address, a VPN, a
 * management subnet) and only main's default gives way to the uplink's.
 * A rule is ours when it has our protocol and one of those shapes, or the
 * shape of the single rule per uplink of older versions (rule_priority + i,
 * from SOURCE lookup table_base + i), which goes at start; routes are ours by
 * protocol and the table of such a rule.  So a restart adopts what an earlier
 * run left, one with more uplinks too, and removes what it no longer wants at
 * once.
 *
 * Must not touch rules or routes that are not of our protocol, nor rules of
 * another shape (the route and policy modules and gateway mode use the same
 * protocol, and their priorities may lie inside our range), nor any table but
 * ours.
 */
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rtnetlink.h>

#include <event2/event.h>

#include "conf_keys.h"
#include "log.h"
#include "nl.h"
#include "proxy_conf.h"
#include "srcroute.h"
#include "util.h"

#define SRCROUTE_MAX CONF_SRCROUTE_MAX

struct srcroute {
	struct event_base *base;
	const struct conf *conf;
	struct nl *nl;
	struct nl_monitor *mon;
	struct event *apply_ev;
	uint32_t prio, table_base; /* in force */
	/* table_base + i may hold our route: flushed once uplink i has no source any more, or
	 * is gone (an earlier run's are found by their rules) */
	bool filled[SRCROUTE_MAX];
	char *last;		   /* what the last apply logged, to log changes only */
};

struct addr_find {
	const struct addr *want;
	int ifindex;
};

static int addr_find_cb(const struct nl_addr *a, void *arg)
{
	struct addr_find *af = arg;

	if (addr_eq(&a->local.addr, af->want))
		af->ifindex = a->ifindex;
	return 0;
}

struct gw_find {
	int ifindex;
	uint32_t best;
	bool found;
	struct addr gw;
};

/* main's default route through ifindex with the lowest metric */
static int gw_find_cb(const struct nl_route *r, void *arg)
{
	struct gw_find *g = arg;

	if (r->dst.plen || r->type != RTN_UNICAST || r->table != RT_TABLE_MAIN)
		return 0;
	if (r->oif == g->ifindex && (!g->found || r->priority < g->best)) {
		g->found = true;
		g->best = r->priority;
		g->gw = r->gw;
	}
	for (size_t i = 0; i < r->n_hops; i++)
		if (r->hops[i].oif == g->ifindex && (!g->found || r->priority < g->best)) {
			g->found = true;
			g->best = r->priority;
			g->gw = r->hops[i].gw;
		}
	return 0;
}

static void table_flush(struct srcroute *s, uint32_t table)
{
	for (int f = 0; f < 2; f++) {
		struct nl_route rt = {.family = f ? AF_INET6 : AF_INET, .table = table,
			.protocol = RTPROT_EGRESS};
		nl_route_apply(s->nl, NL_DEL, &rt);
	}
}

/* A rule from a source, looking up table (suppress: main, all but its default routes). */
static bool rule_is_from(const struct nl_rule *r, uint64_t table, bool suppress)
{
	return r->table == table && addr_is_set(&r->src.addr) && !r->has_fwmark &&
	       !r->has_goto && r->has_suppress_prefixlen == suppress &&
	       (!suppress || r->suppress_prefixlen == 0);
}

/* One of uplink i's rules (see the top of the file), or the single rule older versions
 * gave it at prio + i.  The table it looks up is noted. */
static bool rule_mine_cb(const struct nl_rule *r, void *arg)
{
	struct srcroute *s = arg;
	uint32_t k = r->priority - s->prio, i = k / 2;

	if (k >= 2 * SRCROUTE_MAX)
		return false;
	if (k % 2 == 0 && rule_is_from(r, RT_TABLE_MAIN, true))
		return true;
	if (k % 2 == 1 && rule_is_from(r, (uint64_t)s->table_base + i, false)) {
		s->filled[i] = true;
		return true;
	}
	/* older versions' rule, uplink k's */
	if (k < SRCROUTE_MAX && rule_is_from(r, (uint64_t)s->table_base + k, false)) {
		s->filled[k] = true;
		return true;
	}
	return false;
}

/* Our rules are exactly want[0..n_want); any other rule is left alone. */
static int rules_reconcile(struct srcroute *s, const struct nl_rule *want, size_t n_want)
{
	return nl_rule_reconcile_mine(s->nl, RTPROT_EGRESS, s->prio, s->prio + 2 * SRCROUTE_MAX,
		rule_mine_cb, s, want, n_want);
}

/* Uplink i's two rules for source src into want[0..1] (see the top of the file). */
static void rules_want(const struct conf_proxy *p, size_t i, const struct addr *src,
	struct nl_rule *want)
{
	for (uint32_t j = 0; j < 2; j++)
		want[j] = (struct nl_rule){.family = src->family, .protocol = RTPROT_EGRESS,
			.has_priority = true, .priority = p->rule_priority + 2 * (uint32_t)i + j,
			.table = j ? p->table_base + (uint32_t)i : RT_TABLE_MAIN,
			.has_suppress_prefixlen = !j,
			.src = {.addr = *src, .plen = src->family == AF_INET ? 32 : 128}};
}

/* Flush the tables from table_base + from on that may hold a route of ours. */
static void tables_flush(struct srcroute *s, size_t from)
{
	for (size_t i = from; i < SRCROUTE_MAX; i++) {
		if (s->filled[i])
			table_flush(s, s->table_base + (uint32_t)i);
		s->filled[i] = false;
	}
}

static int srcroute_apply(struct srcroute *s)
{
	const struct conf_proxy *p = conf_proxy(s->conf);
	size_t n = MIN(conf_n_uplinks(s->conf), (size_t)SRCROUTE_MAX);
	struct nl_rule *want = xcalloc(2 * n + 1, sizeof(*want));
	size_t n_want = 0;
	char *log = NULL;
	size_t log_len = 0;
	FILE *lf = open_memstream(&log, &log_len);
	int r = 0, e;

	for (size_t i = 0; i < n; i++) {
		const struct conf_uplink *u = conf_uplink_at(s->conf, i);
		uint32_t table = p->table_base + (uint32_t)i;
		struct addr_find af = {.want = &u->source};
		struct gw_find g = {0};
		char src[ADDR_STRLEN], gw[ADDR_STRLEN];

		if (!addr_is_set(&u->source)) {
			/* it lost its source on a reload (or the uplinks moved): its rule goes
			 * with the reconcile below, its route with this */
			if (s->filled[i])
				table_flush(s, table);
			s->filled[i] = false;
			continue;
		}
		addr_str(&u->source, src, sizeof(src));
		e = nl_addr_dump(s->nl, u->source.family, 0, addr_find_cb, &af);
		if (e < 0 || !af.ifindex) {
			fprintf(lf, "uplink %s: %s is not an address of this host (yet); ", u->s.name,
				src);
			table_flush(s, table);
			s->filled[i] = false;
			continue;
		}
		g.ifindex = af.ifindex;
		if (addr_is_set(&u->gateway)) {
			g.found = true;
			g.gw = u->gateway;
		} else {
			nl_route_dump(s->nl, u->source.family, RT_TABLE_MAIN, gw_find_cb, &g);
		}
		struct nl_route rt = {.family = u->source.family, .table = table,
			.protocol = RTPROT_EGRESS, .oif = af.ifindex, .prefsrc = u->source};
		if (g.found)
			rt.gw = g.gw;
		else
			rt.scope = RT_SCOPE_LINK; /* no gateway known: the link itself */
		s->filled[i] = true; /* even if refused: the old route may still be there */
		e = nl_route_apply(s->nl, NL_REPLACE, &rt);
		if (e < 0) {
			log_warnx("proxy: uplink %s: default route in table %u: %s%s%s", u->s.name,
				table, strerror(-e), *nl_last_error(s->nl) ? ": " : "",
				nl_last_error(s->nl));
			r = r ? r : e;
			continue;
		}
		if (addr_is_set(&rt.gw)) {
			addr_str(&rt.gw, gw, sizeof(gw));
			fprintf(lf, "uplink %s: from %s via %s (table %u); ", u->s.name, src, gw,
				table);
		} else {
			char ifname[IF_NAMESIZE];
			if (!if_indextoname((unsigned)af.ifindex, ifname))
				snprintf(ifname, sizeof(ifname), "#%d", af.ifindex);
			fprintf(lf, "uplink %s: from %s to the link itself (table %u): no gateway: "
				    "neither `gateway` nor a default route of main through %s; ",
				u->s.name, src, table, ifname);
		}
		rules_want(p, i, &u->source, &want[n_want]);
		n_want += 2;
	}
	e = rules_reconcile(s, want, n_want);
	if (e < 0) {
		log_warnx("proxy: source rules: %s", strerror(-e));
		r = r ? r : e;
	}
	/* the tables of uplinks that went away (in this run or since an earlier one) */
	tables_flush(s, n);
	free(want);
	fclose(lf);
	if (log_len && (!s->last || strcmp(s->last, log)))
		log_info("proxy: source routing: %.*s", (int)(log_len - 2), log);
	free(s->last);
	s->last = log;
	return r;
}

static void apply_cb(evutil_socket_t fd, short what, void *arg)
{
	srcroute_apply(arg);
}

static void event_cb(const struct nl_event *ev, void *arg)
{
	struct srcroute *s = arg;

	if (ev->type == NL_EVENT_ROUTE &&
		(ev->route.protocol == RTPROT_EGRESS || ev->route.dst.plen ||
			ev->route.table != RT_TABLE_MAIN))
		return;
	if (ev->type == NL_EVENT_ADDR || ev->type == NL_EVENT_ROUTE ||
		ev->type == NL_EVENT_RESYNC)
		event_active(s->apply_ev, 0, 0);
}

static void srcroute_remove(struct srcroute *s)
{
	rules_reconcile(s, NULL, 0);
	tables_flush(s, 0);
}

int srcroute_new(struct event_base *base, const struct conf *conf, struct srcroute **ret)
{
	struct srcroute *s = xcalloc(1, sizeof(*s));
	int r;

	s->base = base;
	s->conf = conf;
	r = nl_open(NETLINK_ROUTE, &s->nl);
	if (r < 0)
		goto fail;
	r = nl_monitor_new(base, NL_GROUP_ADDR | NL_GROUP_ROUTE, event_cb, s, &s->mon);
	if (r < 0)
		goto fail;
	s->apply_ev = event_new(base, -1, 0, apply_cb, s);
	s->prio = conf_proxy(conf)->rule_priority;
	s->table_base = conf_proxy(conf)->table_base;
	/* an earlier run may have filled the table of an uplink that has no source now */
	for (size_t i = 0; i < MIN(conf_n_uplinks(conf), (size_t)SRCROUTE_MAX); i++)
		s->filled[i] = true;
	srcroute_apply(s);
	*ret = s;
	return 0;
fail:
	log_warnx("proxy: source routing: netlink: %s", strerror(-r));
	srcroute_free(s, true);
	return r;
}

int srcroute_reconf(struct srcroute *s, const struct conf *conf)
{
	const struct conf_proxy *p = conf_proxy(conf);

	if (p->rule_priority != s->prio || p->table_base != s->table_base) {
		srcroute_remove(s);
		s->prio = p->rule_priority;
		s->table_base = p->table_base;
	}
	s->conf = conf;
	return srcroute_apply(s);
}

void srcroute_free(struct srcroute *s, bool keep)
{
	if (!s)
		return;
	if (s->nl && !keep)
		srcroute_remove(s);
	if (s->apply_ev)
		event_free(s->apply_ev);
	nl_monitor_free(s->mon);
	nl_free(s->nl);
	free(s->last);
	free(s);
}
