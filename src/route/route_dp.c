/*
 * route_dp.c - the route module's kernel dataplane (see route_dp.h): reads what is ours
 * from the kernel, computes the difference to what is wanted and applies it in an order
 * that never leaves a managed destination without a route while gateways are usable:
 *
 *   1. gateway nexthops, then the resilient group (replace: routes follow at once)
 *   2. routes, each by replace (nexthop group, multipath legs, or prohibit)
 *   3. rules (added before anything is removed; rules have no replace)
 *   4. removals: routes and rules no longer wanted, then - only if no group or route change
 *      failed - groups, then gateway nexthops.
 *
 * It must not touch anything that is not ours (see route_dp.h), must not log (it reports in
 * struct route_dp_result), and must not keep a private idea of the kernel's state between
 * applies: the kernel is read every time, so an outside change or an earlier run's leftovers
 * are reconciled like any other difference.
 */
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "route_dp.h"
#include "util.h"

#define RDP_IP6_RT_PRIO_USER 1024 /* the metric IPv6 gives a route added without one */

struct route_dp {
	struct route_dp_conf conf;
	struct nl *nl;
	bool resilient;
	char mode[64];
};

/* ---- what the kernel has (ours, and foreign objects in our way) ---- */

struct rdp_route {
	struct nl_route r; /* r.hops points to hops */
	struct nl_hop *hops;
	bool ours; /* our protocol: removed when not wanted */
	bool used; /* stands for a wanted prefix this pass */
};

struct rdp_nh {
	struct nl_nexthop nh; /* nh.members points to members */
	struct nl_nh_member *members;
	bool foreign; /* in our id range, but not our protocol: never touched */
	bool keep;    /* wanted this pass */
	bool deleted; /* removed during this pass */
};

struct rdp_rule {
	struct nl_rule r;
	bool keep;
};

struct rdp_snap {
	struct rdp_route *routes; /* sorted by family, dst, priority */
	size_t n_routes, cap_routes;
	struct rdp_nh *nhs; /* sorted by id */
	size_t n_nhs, cap_nhs;
	struct rdp_rule *rules;
	size_t n_rules, cap_rules;
};

/* ---- what is wanted ---- */

struct rdp_member {
	const struct route_dp_gw *gw;
	int oif;
	uint32_t id;
};

struct rdp_fam {
	int family;
	const struct cidr *pfx; /* into the run's sorted prefixes */
	size_t n_pfx;
	struct rdp_member *base; /* usable and resolved gateways */
	size_t n_base;
	struct rdp_member *m; /* in service this pass */
	size_t n_m;
	uint32_t gid;	/* resilient group in use this pass; 0: none */
	bool failed;	/* the group could not be made: this family's routes stay as they are */
};

struct rdp_run {
	struct route_dp *dp;
	struct route_dp_result *res;
	struct rdp_snap snap;
	struct rdp_fam fam[2];
	int first_err;
	bool unsafe; /* a group or route change failed: remove no nexthop */
	bool again;  /* objects in the way were removed: one more pass adds what they blocked */
};

static int fam_index(int family)
{
	return family == AF_INET6;
}

static uint64_t rdp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint32_t rdp_group_id(const struct route_dp *dp, int fi, bool alt)
{
	return dp->conf.nh_id_base + (uint32_t)fi + (alt ? 2u : 0u);
}

static uint16_t rdp_buckets(const struct route_dp *dp)
{
	return dp->conf.buckets ? dp->conf.buckets : ROUTE_DP_BUCKETS;
}

static uint32_t rdp_idle_s(const struct route_dp *dp)
{
	return dp->conf.idle_timer_s ? dp->conf.idle_timer_s : ROUTE_DP_IDLE_TIMER_S;
}

static bool rdp_id_ours(const struct route_dp *dp, uint32_t id)
{
	return id >= dp->conf.nh_id_base && id - dp->conf.nh_id_base < ROUTE_DP_NH_IDS;
}

/* ---- reporting ---- */

static void rdp_error(struct route_dp_result *res, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rdp_error(struct route_dp_result *res, int err, const char *fmt, ...)
{
	va_list ap;

	if (res->n_errors < ROUTE_DP_MAX_ERRORS) {
		struct route_dp_error *e = &res->errors[res->n_errors];

		e->err = err;
		va_start(ap, fmt);
		vsnprintf(e->text, sizeof(e->text), fmt, ap);
		va_end(ap);
	}
	res->n_errors++;
}

/*
 * Count a kernel change; on failure record "OP WHAT: strerror: extack".  Returns err.
 * counted_as is how the change is reported (a route replace that created the route is an
 * add).
 */
static int rdp_done(struct rdp_run *run, enum nl_op counted_as, int err, const char *what)
{
	const char *ext = nl_last_error(run->dp->nl);

	if (!err) {
		run->res->ok[counted_as]++;
		return 0;
	}
	run->res->failed[counted_as]++;
	if (!run->first_err)
		run->first_err = err;
	rdp_error(run->res, err, "%s %s: %s%s%s", nl_op_name[counted_as], what, strerror(-err),
		ext[0] ? ": " : "", ext);
	return err;
}

/* ---- reading the kernel ---- */

static void rdp_snap_clear(struct rdp_snap *s)
{
	size_t i;

	for (i = 0; i < s->n_routes; i++)
		free(s->routes[i].hops);
	for (i = 0; i < s->n_nhs; i++)
		free(s->nhs[i].members);
	free(s->routes);
	free(s->nhs);
	free(s->rules);
	memset(s, 0, sizeof(*s));
}

static void *rdp_grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : 16;
	return xrealloc(p, *cap * size);
}

struct rdp_dump_ctx {
	struct route_dp *dp;
	struct rdp_snap *snap;
};

static int rdp_route_cb(const struct nl_route *r, void *arg)
{
	struct rdp_dump_ctx *ctx = arg;
	struct rdp_snap *s = ctx->snap;
	struct rdp_route *e;

	if (r->table != ctx->dp->conf.table)
		return 0;
	s->routes = rdp_grow(s->routes, &s->cap_routes, s->n_routes, sizeof(*s->routes));
	e = &s->routes[s->n_routes++];
	memset(e, 0, sizeof(*e));
	e->r = *r;
	/* The default route comes without RTA_DST: give it its family's 0/0. */
	if (!addr_is_set(&e->r.dst.addr)) {
		memset(&e->r.dst, 0, sizeof(e->r.dst));
		e->r.dst.addr.family = r->family;
	}
	if (r->n_hops) {
		e->hops = xmalloc(r->n_hops * sizeof(*e->hops));
		memcpy(e->hops, r->hops, r->n_hops * sizeof(*e->hops));
	}
	e->r.hops = e->hops;
	e->ours = r->protocol == ctx->dp->conf.protocol;
	return 0;
}

/* Our rule at P + i (i: 0 or 1) of family, as we add it. */
static void rdp_rule_want(const struct route_dp *dp, int family, int i, struct nl_rule *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->family = family;
	ret->action = FR_ACT_TO_TBL;
	ret->protocol = dp->conf.protocol;
	ret->has_priority = true;
	ret->priority = dp->conf.rule_priority + (uint32_t)i;
	if (i == 0) {
		ret->table = RT_TABLE_MAIN;
		ret->has_suppress_prefixlen = true;
		ret->suppress_prefixlen = 0;
	} else {
		ret->table = dp->conf.table;
	}
}

static bool rdp_rule_equal(const struct nl_rule *a, const struct nl_rule *b)
{
	return a->family == b->family && a->priority == b->priority && a->table == b->table &&
	       a->action == b->action && a->protocol == b->protocol && a->tos == b->tos &&
	       a->flags == b->flags && a->has_fwmark == b->has_fwmark &&
	       a->has_suppress_prefixlen == b->has_suppress_prefixlen &&
	       a->suppress_prefixlen == b->suppress_prefixlen && a->has_goto == b->has_goto &&
	       !addr_is_set(&a->src.addr) && !addr_is_set(&a->dst.addr) && !a->iif[0] &&
	       !a->oif[0];
}

/*
 * Ours: one of our two rules, by shape (family, priority, table, suppress_prefixlength) as
 * this conf makes them.  Another tool's rule of our protocol at P or P+1 (into another
 * table, say) is not, and is never touched.
 */
static int rdp_rule_cb(const struct nl_rule *r, void *arg)
{
	struct rdp_dump_ctx *ctx = arg;
	struct rdp_snap *s = ctx->snap;
	uint32_t p = ctx->dp->conf.rule_priority;
	struct nl_rule shape;

	if (r->protocol != ctx->dp->conf.protocol || (r->priority != p && r->priority != p + 1))
		return 0;
	rdp_rule_want(ctx->dp, r->family, (int)(r->priority - p), &shape);
	if (!rdp_rule_equal(r, &shape))
		return 0;
	s->rules = rdp_grow(s->rules, &s->cap_rules, s->n_rules, sizeof(*s->rules));
	s->rules[s->n_rules].r = *r;
	s->rules[s->n_rules].keep = false;
	s->n_rules++;
	return 0;
}

static int rdp_nexthop_cb(const struct nl_nexthop *nh, void *arg)
{
	struct rdp_dump_ctx *ctx = arg;
	struct rdp_snap *s = ctx->snap;
	struct rdp_nh *e;

	if (!rdp_id_ours(ctx->dp, nh->id))
		return 0;
	s->nhs = rdp_grow(s->nhs, &s->cap_nhs, s->n_nhs, sizeof(*s->nhs));
	e = &s->nhs[s->n_nhs++];
	memset(e, 0, sizeof(*e));
	e->nh = *nh;
	if (nh->n_members) {
		e->members = xmalloc(nh->n_members * sizeof(*e->members));
		memcpy(e->members, nh->members, nh->n_members * sizeof(*e->members));
	}
	e->nh.members = e->members;
	e->foreign = nh->protocol != ctx->dp->conf.protocol;
	return 0;
}

static uint32_t rdp_route_prio(const struct nl_route *r)
{
	/* IPv6 stores "no metric" as 1024: the same route key. */
	if (r->family == AF_INET6 && r->priority == RDP_IP6_RT_PRIO_USER)
		return 0;
	return r->priority;
}

static int rdp_route_cmp(const void *a, const void *b)
{
	const struct nl_route *x = &((const struct rdp_route *)a)->r;
	const struct nl_route *y = &((const struct rdp_route *)b)->r;
	int c = cidr_cmp(&x->dst, &y->dst);

	if (c)
		return c;
	if (rdp_route_prio(x) != rdp_route_prio(y))
		return rdp_route_prio(x) < rdp_route_prio(y) ? -1 : 1;
	return (int)x->tos - (int)y->tos;
}

static int rdp_nh_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct rdp_nh *)a)->nh.id, y = ((const struct rdp_nh *)b)->nh.id;

	return x < y ? -1 : x > y;
}

/*
 * Read our rules, our table and our nexthop id range into *snap.  A dump interrupted by a
 * concurrent change (-EINTR) is read again.
 */
static int rdp_snap_read(struct route_dp *dp, struct rdp_snap *snap)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct rdp_dump_ctx ctx = { .dp = dp, .snap = snap };
	int tries, err = 0;
	size_t i;

	for (tries = 0; tries < 5; tries++) {
		rdp_snap_clear(snap);
		err = 0;
		for (i = 0; !err && i < ARRAY_SIZE(families); i++) {
			err = nl_route_dump(dp->nl, families[i], dp->conf.table, rdp_route_cb, &ctx);
			if (!err)
				err = nl_rule_dump(dp->nl, families[i], rdp_rule_cb, &ctx);
		}
		if (!err) {
			err = nl_nexthop_dump(dp->nl, rdp_nexthop_cb, &ctx);
			/* A kernel without nexthop objects has none of ours (multipath mode). */
			if ((err == -EOPNOTSUPP || err == -EINVAL) && !dp->resilient)
				err = 0;
		}
		if (err != -EINTR)
			break;
	}
	if (err) {
		rdp_snap_clear(snap);
		return err;
	}
	if (snap->n_routes)
		qsort(snap->routes, snap->n_routes, sizeof(*snap->routes), rdp_route_cmp);
	if (snap->n_nhs)
		qsort(snap->nhs, snap->n_nhs, sizeof(*snap->nhs), rdp_nh_cmp);
	return 0;
}

static struct rdp_nh *rdp_snap_nh(struct rdp_snap *snap, uint32_t id)
{
	struct rdp_nh key = { .nh = { .id = id } };

	if (!snap->n_nhs)
		return NULL;
	return bsearch(&key, snap->nhs, snap->n_nhs, sizeof(*snap->nhs), rdp_nh_cmp);
}

/* The route of our table with key (dst, tos 0, no metric): the one a replace would hit. */
static struct rdp_route *rdp_snap_route(struct rdp_snap *snap, const struct cidr *dst)
{
	struct rdp_route key = { .r = { .family = dst->addr.family, .dst = *dst } };

	if (!snap->n_routes)
		return NULL;
	return bsearch(&key, snap->routes, snap->n_routes, sizeof(*snap->routes), rdp_route_cmp);
}

/* ---- input ---- */

static bool rdp_prefix_ok(const struct cidr *c)
{
	struct cidr clean = *c;

	if (c->addr.family != AF_INET && c->addr.family != AF_INET6)
		return false;
	if (c->plen > 8 * addr_len(c->addr.family))
		return false;
	cidr_clear_hostbits(&clean);
	return addr_eq(&clean.addr, &c->addr);
}

static int rdp_slot_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

static int rdp_check_input(const struct cidr *prefixes, size_t n_prefixes,
	const struct route_dp_gw *gws, size_t n_gws)
{
	unsigned *slots;
	size_t i;
	int err = 0;

	if ((n_prefixes && !prefixes) || (n_gws && !gws))
		return -EINVAL;
	for (i = 0; i < n_prefixes; i++)
		if (!rdp_prefix_ok(&prefixes[i]))
			return -EINVAL;
	for (i = 0; i < n_gws; i++) {
		const struct route_dp_gw *g = &gws[i];

		if ((g->gw.family != AF_INET && g->gw.family != AF_INET6) || g->ifindex < 0 ||
			g->weight < 1 || g->weight > ROUTE_DP_MAX_WEIGHT ||
			g->slot >= ROUTE_DP_MAX_SLOTS)
			return -EINVAL;
	}
	if (!n_gws)
		return 0;
	slots = xmalloc(n_gws * sizeof(*slots));
	for (i = 0; i < n_gws; i++)
		slots[i] = gws[i].slot;
	qsort(slots, n_gws, sizeof(*slots), rdp_slot_cmp);
	for (i = 1; i < n_gws; i++)
		if (slots[i] == slots[i - 1])
			err = -EINVAL;
	free(slots);
	return err;
}

/*
 * The gateway's outgoing interface, from a route lookup.  The gateway must be on a connected
 * network (the kernel accepts no other for a nexthop), and must not be reached through our
 * own table: that would route the gateway over itself.
 */
static int rdp_resolve(struct rdp_run *run, const struct route_dp_gw *g, int *ret)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	struct nl_route r;
	int err;

	if (g->ifindex) {
		*ret = g->ifindex;
		return 0;
	}
	addr_str(&g->gw, a, sizeof(a));
	err = nl_route_get(run->dp->nl, &g->gw, &r);
	if (err) {
		rdp_error(run->res, err, "gateway %s: no route to it: %s", a, strerror(-err));
		return err;
	}
	if (r.type != RTN_UNICAST) {
		rdp_error(run->res, -EADDRNOTAVAIL, "gateway %s: is a %s address, not a router", a,
			r.type == RTN_LOCAL ? "local" : "special");
		return -EADDRNOTAVAIL;
	}
	if (r.table == run->dp->conf.table) {
		rdp_error(run->res, -ELOOP, "gateway %s: only reached through table %u, ours", a,
			r.table);
		return -ELOOP;
	}
	if (addr_is_set(&r.gw) || r.oif <= 0) {
		rdp_error(run->res, -EHOSTUNREACH,
			"gateway %s: not on a connected network (reached via %s)", a,
			addr_is_set(&r.gw) ? addr_str(&r.gw, b, sizeof(b)) : "no interface");
		return -EHOSTUNREACH;
	}
	*ret = r.oif;
	return 0;
}

/* Split the sorted prefixes by family and find each family's usable gateways. */
static void rdp_plan(struct rdp_run *run, const struct cidr *sorted, size_t n,
	const struct route_dp_gw *gws, size_t n_gws)
{
	size_t i;
	int fi;

	run->fam[0].family = AF_INET;
	run->fam[1].family = AF_INET6;
	for (i = 0; i < n; i++) {
		struct rdp_fam *f = &run->fam[fam_index(sorted[i].addr.family)];

		if (!f->n_pfx)
			f->pfx = &sorted[i];
		f->n_pfx++;
	}
	for (fi = 0; fi < 2; fi++) {
		struct rdp_fam *f = &run->fam[fi];

		if (!f->n_pfx)
			continue;
		f->base = xcalloc(n_gws ? n_gws : 1, sizeof(*f->base));
		f->m = xcalloc(n_gws ? n_gws : 1, sizeof(*f->m));
		for (i = 0; i < n_gws; i++) {
			const struct route_dp_gw *g = &gws[i];
			int oif;

			if (!g->usable || g->gw.family != f->family)
				continue;
			if (rdp_resolve(run, g, &oif)) {
				run->res->unresolved++;
				continue;
			}
			f->base[f->n_base].gw = g;
			f->base[f->n_base].oif = oif;
			f->base[f->n_base].id =
				run->dp->conf.nh_id_base + ROUTE_DP_NH_GW_FIRST + g->slot;
			f->n_base++;
		}
	}
}

/* ---- 1. nexthops and groups ---- */

static const char *rdp_nh_what(const struct rdp_member *m, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	snprintf(buf, len, "nexthop %u (%s dev %d)", m->id, addr_str(&m->gw->gw, a, sizeof(a)),
		m->oif);
	return buf;
}

static void rdp_drop_member(struct rdp_fam *f, size_t i)
{
	memmove(&f->m[i], &f->m[i + 1], (f->n_m - i - 1) * sizeof(*f->m));
	f->n_m--;
}

/* Remove an object of ours that stands where something else must go; pass 2 adds that. */
static void rdp_remove_in_way(struct rdp_run *run, struct rdp_nh *e)
{
	char what[64];

	snprintf(what, sizeof(what), "nexthop %u (in the way)", e->nh.id);
	if (!rdp_done(run, NL_DEL, nl_nexthop_apply(run->dp->nl, NL_DEL, &e->nh), what))
		e->deleted = true;
	run->again = true;
}

static void rdp_nexthops(struct rdp_run *run, struct rdp_fam *f)
{
	size_t i = 0;

	while (i < f->n_m) {
		struct rdp_member *m = &f->m[i];
		struct rdp_nh *e = rdp_snap_nh(&run->snap, m->id);
		struct nl_nexthop want = {
			.id = m->id,
			.family = m->gw->gw.family,
			.protocol = run->dp->conf.protocol,
			.oif = m->oif,
			.gw = m->gw->gw,
		};
		enum nl_op op = NL_ADD;
		char what[96];

		rdp_nh_what(m, what, sizeof(what));
		if (e && e->foreign) {
			rdp_error(run->res, -EEXIST, "%s: id taken by protocol %u", what,
				e->nh.protocol);
			if (!run->first_err)
				run->first_err = -EEXIST;
			rdp_drop_member(f, i);
			continue;
		}
		if (e && !e->deleted && (e->nh.n_members || e->nh.blackhole)) {
			rdp_remove_in_way(run, e);
			rdp_drop_member(f, i);
			continue;
		}
		if (e && !e->deleted) {
			if (e->nh.family == want.family && addr_eq(&e->nh.gw, &want.gw) &&
				e->nh.oif == want.oif) {
				e->keep = true;
				run->res->kept++;
				i++;
				continue;
			}
			op = NL_REPLACE;
		}
		if (rdp_done(run, op, nl_nexthop_apply(run->dp->nl, op, &want), what)) {
			rdp_drop_member(f, i); /* left out; the others still serve */
			continue;
		}
		if (e)
			e->keep = true;
		i++;
	}
}

static int rdp_member_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct nl_nh_member *)a)->id, y = ((const struct nl_nh_member *)b)->id;

	return x < y ? -1 : x > y;
}

/* Whether group e can become what we want by a replace (buckets and type cannot change). */
static bool rdp_group_compatible(const struct route_dp *dp, const struct rdp_nh *e)
{
	return e && !e->foreign && !e->deleted && e->nh.n_members &&
	       e->nh.group_type == NL_NH_GROUP_RES && e->nh.buckets == rdp_buckets(dp) &&
	       /* a replace that leaves the unbalanced timer out keeps the old one */
	       (dp->conf.unbalanced_timer_s || !e->nh.unbalanced_timer_ms);
}

static bool rdp_group_equal(const struct route_dp *dp, const struct rdp_nh *e,
	const struct nl_nh_member *want, size_t n)
{
	struct nl_nh_member *have;
	bool eq;

	if (e->nh.n_members != n ||
		(e->nh.idle_timer_ms + 500) / 1000 != rdp_idle_s(dp) ||
		(e->nh.unbalanced_timer_ms + 500) / 1000 != dp->conf.unbalanced_timer_s)
		return false;
	have = xmalloc(n * sizeof(*have));
	memcpy(have, e->members, n * sizeof(*have));
	qsort(have, n, sizeof(*have), rdp_member_cmp);
	eq = !memcmp(have, want, n * sizeof(*have));
	free(have);
	return eq;
}

/* The group id the family's routes point at now, or 0. */
static uint32_t rdp_group_in_use(const struct rdp_run *run, const struct rdp_fam *f)
{
	size_t i;

	for (i = 0; i < run->snap.n_routes; i++) {
		const struct nl_route *r = &run->snap.routes[i].r;

		if (r->family == f->family && r->nh_id && rdp_id_ours(run->dp, r->nh_id))
			return r->nh_id;
	}
	return 0;
}

/*
 * Pick the group id: one that can be replaced into what we want (the one in use first),
 * else a free one of the family's two, else the one not in use, removed first.
 */
static uint32_t rdp_group_pick(struct rdp_run *run, struct rdp_fam *f, bool *exists)
{
	int fi = fam_index(f->family);
	uint32_t cand[2] = { rdp_group_id(run->dp, fi, false), rdp_group_id(run->dp, fi, true) };
	uint32_t used = rdp_group_in_use(run, f);
	struct rdp_nh *e;
	int i;

	if (used == cand[1]) {
		cand[1] = cand[0];
		cand[0] = used;
	}
	for (i = 0; i < 2; i++) {
		if (rdp_group_compatible(run->dp, rdp_snap_nh(&run->snap, cand[i]))) {
			*exists = true;
			return cand[i];
		}
	}
	*exists = false;
	for (i = 0; i < 2; i++) {
		e = rdp_snap_nh(&run->snap, cand[i]);
		if (!e || e->deleted)
			return cand[i];
	}
	for (i = 1; i >= 0; i--) {
		char what[64];

		e = rdp_snap_nh(&run->snap, cand[i]);
		if (e->foreign || cand[i] == used)
			continue;
		snprintf(what, sizeof(what), "group %u (to be made anew)", e->nh.id);
		if (rdp_done(run, NL_DEL, nl_nexthop_apply(run->dp->nl, NL_DEL, &e->nh), what))
			return 0;
		e->deleted = true;
		return cand[i];
	}
	rdp_error(run->res, -EEXIST, "group ids %u and %u are taken by another protocol",
		cand[0], cand[1]);
	return 0;
}

static void rdp_group(struct rdp_run *run, struct rdp_fam *f)
{
	struct route_dp *dp = run->dp;
	struct nl_nh_member *members;
	struct nl_nexthop want = {
		.protocol = dp->conf.protocol,
		.group_type = NL_NH_GROUP_RES,
		.buckets = rdp_buckets(dp),
		.idle_timer_ms = rdp_idle_s(dp) * 1000,
		.unbalanced_timer_ms = dp->conf.unbalanced_timer_s * 1000,
	};
	bool exists;
	char what[64];
	size_t i;
	int err;

	f->gid = 0;
	if (!f->n_m)
		return;
	members = xcalloc(f->n_m, sizeof(*members));
	for (i = 0; i < f->n_m; i++) {
		members[i].id = f->m[i].id;
		members[i].weight = f->m[i].gw->weight;
	}
	qsort(members, f->n_m, sizeof(*members), rdp_member_cmp);
	want.members = members;
	want.n_members = f->n_m;
	want.id = rdp_group_pick(run, f, &exists);
	if (!want.id) {
		f->failed = true;
		run->unsafe = true;
		if (!run->first_err)
			run->first_err = -EEXIST;
		goto out;
	}
	if (exists) {
		struct rdp_nh *e = rdp_snap_nh(&run->snap, want.id);

		e->keep = true;
		if (rdp_group_equal(dp, e, members, f->n_m)) {
			run->res->kept++;
			f->gid = want.id;
			goto out;
		}
	}
	snprintf(what, sizeof(what), "group %u (%zu members)", want.id, f->n_m);
	err = nl_nexthop_apply(dp->nl, exists ? NL_REPLACE : NL_ADD, &want);
	if (rdp_done(run, exists ? NL_REPLACE : NL_ADD, err, what)) {
		f->failed = true;
		run->unsafe = true;
		goto out;
	}
	f->gid = want.id;
out:
	free(members);
}

/* ---- 2. routes ---- */

static bool rdp_hop_has(const struct nl_hop *hops, size_t n, const struct nl_hop *h)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (addr_eq(&hops[i].gw, &h->gw) && hops[i].oif == h->oif &&
			(hops[i].weight ? hops[i].weight : 1) == h->weight)
			return true;
	return false;
}

static bool rdp_route_equal(const struct rdp_route *e, const struct nl_route *want)
{
	const struct nl_route *r = &e->r;
	struct nl_hop single = { .gw = r->gw, .oif = r->oif, .weight = 1 };
	const struct nl_hop *hops = r->n_hops ? r->hops : &single;
	size_t n = r->n_hops ? r->n_hops : 1, i;

	if (!e->ours || r->type != want->type)
		return false;
	if (want->type != RTN_UNICAST)
		return true;
	if (want->nh_id)
		return r->nh_id == want->nh_id;
	if (r->nh_id || n != want->n_hops)
		return false;
	/* One leg is stored as a plain path, and its weight is not kept. */
	if (n == 1)
		return addr_eq(&hops[0].gw, &want->hops[0].gw) && hops[0].oif == want->hops[0].oif;
	for (i = 0; i < n; i++)
		if (!rdp_hop_has(hops, n, &want->hops[i]))
			return false;
	return true;
}

static void rdp_routes(struct rdp_run *run, struct rdp_fam *f)
{
	struct route_dp *dp = run->dp;
	struct nl_route want = {
		.family = f->family,
		.table = dp->conf.table,
		.protocol = dp->conf.protocol,
		.type = RTN_UNICAST,
	};
	struct nl_hop *hops = NULL;
	size_t i;

	if (f->n_m && dp->resilient) {
		want.nh_id = f->gid;
	} else if (f->n_m) {
		hops = xcalloc(f->n_m, sizeof(*hops));
		for (i = 0; i < f->n_m; i++) {
			hops[i].gw = f->m[i].gw->gw;
			hops[i].oif = f->m[i].oif;
			hops[i].weight = f->m[i].gw->weight;
		}
		want.hops = hops;
		want.n_hops = f->n_m;
	} else if (dp->conf.fail_closed) {
		want.type = RTN_PROHIBIT;
	}
	for (i = 0; i < f->n_pfx; i++) {
		struct rdp_route *e = rdp_snap_route(&run->snap, &f->pfx[i]);
		char what[CIDR_STRLEN + 32], c[CIDR_STRLEN];
		enum nl_op counted;
		int err;

		if (e)
			e->used = f->failed || f->n_m || dp->conf.fail_closed || !e->ours;
		/* A failed group: leave the routes on what they use now. */
		if (f->failed || (!f->n_m && !dp->conf.fail_closed))
			continue;
		if (e && rdp_route_equal(e, &want)) {
			run->res->kept++;
			continue;
		}
		want.dst = f->pfx[i];
		snprintf(what, sizeof(what), "route %s table %u", cidr_str(&f->pfx[i], c, sizeof(c)),
			dp->conf.table);
		counted = e ? NL_REPLACE : NL_ADD;
		err = nl_route_apply(dp->nl, NL_REPLACE, &want);
		if (rdp_done(run, counted, err, what))
			run->unsafe = true;
	}
	free(hops);
}

/* ---- 3. rules ---- */

static void rdp_rules(struct rdp_run *run, struct rdp_fam *f)
{
	int i;

	for (i = 0; i < 2; i++) {
		struct nl_rule want;
		char what[64];
		size_t j;
		int err;

		rdp_rule_want(run->dp, f->family, i, &want);
		for (j = 0; j < run->snap.n_rules; j++) {
			struct rdp_rule *e = &run->snap.rules[j];

			if (!e->keep && rdp_rule_equal(&e->r, &want)) {
				e->keep = true;
				break;
			}
		}
		if (j < run->snap.n_rules) {
			run->res->kept++;
			continue;
		}
		snprintf(what, sizeof(what), "rule %u (%s)", want.priority,
			i ? "lookup our table" : "lookup main suppress_prefixlength 0");
		err = nl_rule_apply(run->dp->nl, NL_ADD, &want);
		if (err == -EEXIST) /* an equal rule is there already */
			err = 0;
		rdp_done(run, NL_ADD, err, what);
	}
}

/* ---- 4. removals ---- */

static void rdp_del_route(struct rdp_run *run, const struct nl_route *r)
{
	struct nl_route del = {
		.family = r->family,
		.table = r->table,
		.protocol = r->protocol,
		.tos = r->tos,
		.dst = r->dst,
		.priority = r->priority,
	};
	char what[CIDR_STRLEN + 32], c[CIDR_STRLEN];
	int err;

	snprintf(what, sizeof(what), "route %s table %u", cidr_str(&r->dst, c, sizeof(c)),
		r->table);
	err = nl_route_apply(run->dp->nl, NL_DEL, &del);
	if (err == -ESRCH || err == -ENOENT) /* gone already (with its nexthop, say) */
		err = 0;
	rdp_done(run, NL_DEL, err, what);
}

static void rdp_del_rule(struct rdp_run *run, const struct nl_rule *r)
{
	char what[32];
	int err;

	snprintf(what, sizeof(what), "rule %u", r->priority);
	err = nl_rule_apply(run->dp->nl, NL_DEL, r);
	if (err == -ENOENT)
		err = 0;
	rdp_done(run, NL_DEL, err, what);
}

/* Groups first (so no member leaves a group we keep), then gateway nexthops. */
static void rdp_del_nexthops(struct rdp_run *run, bool all)
{
	int groups;
	size_t i;

	for (groups = 1; groups >= 0; groups--) {
		for (i = 0; i < run->snap.n_nhs; i++) {
			struct rdp_nh *e = &run->snap.nhs[i];
			char what[48];
			int err;

			if (e->foreign || e->deleted || (e->keep && !all) ||
				!!e->nh.n_members != !!groups)
				continue;
			snprintf(what, sizeof(what), "%s %u", groups ? "group" : "nexthop", e->nh.id);
			err = nl_nexthop_apply(run->dp->nl, NL_DEL, &e->nh);
			if (err == -ENOENT)
				err = 0;
			if (!rdp_done(run, NL_DEL, err, what))
				e->deleted = true;
		}
	}
}

static void rdp_removals(struct rdp_run *run)
{
	size_t i;

	for (i = 0; i < run->snap.n_routes; i++)
		if (run->snap.routes[i].ours && !run->snap.routes[i].used)
			rdp_del_route(run, &run->snap.routes[i].r);
	for (i = 0; i < run->snap.n_rules; i++)
		if (!run->snap.rules[i].keep)
			rdp_del_rule(run, &run->snap.rules[i].r);
	if (!run->unsafe)
		rdp_del_nexthops(run, false);
}

/* ---- apply ---- */

static int rdp_pass(struct rdp_run *run)
{
	int fi, err;

	err = rdp_snap_read(run->dp, &run->snap);
	if (err) {
		rdp_error(run->res, err, "read the kernel's routes, rules and nexthops: %s%s%s",
			strerror(-err), nl_last_error(run->dp->nl)[0] ? ": " : "",
			nl_last_error(run->dp->nl));
		return err;
	}
	run->res->kept = 0;
	for (fi = 0; fi < 2; fi++) {
		struct rdp_fam *f = &run->fam[fi];

		f->failed = false;
		f->gid = 0;
		f->n_m = f->n_base;
		if (f->n_base)
			memcpy(f->m, f->base, f->n_base * sizeof(*f->m));
		if (f->n_pfx && run->dp->resilient) {
			rdp_nexthops(run, f);
			rdp_group(run, f);
		}
	}
	for (fi = 0; fi < 2; fi++)
		if (run->fam[fi].n_pfx)
			rdp_routes(run, &run->fam[fi]);
	for (fi = 0; fi < 2; fi++)
		if (run->fam[fi].n_pfx)
			rdp_rules(run, &run->fam[fi]);
	rdp_removals(run);
	for (fi = 0; fi < 2; fi++)
		run->res->in_service[fi] = run->fam[fi].failed ? 0 : (unsigned)run->fam[fi].n_m;
	rdp_snap_clear(&run->snap);
	return 0;
}

static int rdp_prefix_cmp(const void *a, const void *b)
{
	return cidr_cmp(a, b);
}

int route_dp_apply(struct route_dp *dp, const struct cidr *prefixes, size_t n_prefixes,
	const struct route_dp_gw *gws, size_t n_gws, struct route_dp_result *ret)
{
	struct route_dp_result scratch;
	struct rdp_run run = { .dp = dp, .res = ret ? ret : &scratch };
	uint64_t t0 = rdp_now_us();
	struct cidr *sorted = NULL;
	size_t n = 0, i;
	int err, pass;

	memset(run.res, 0, sizeof(*run.res));
	err = rdp_check_input(prefixes, n_prefixes, gws, n_gws);
	if (err) {
		rdp_error(run.res, err, "invalid prefixes or gateways");
		goto out;
	}
	if (n_prefixes) {
		sorted = xmalloc(n_prefixes * sizeof(*sorted));
		memcpy(sorted, prefixes, n_prefixes * sizeof(*sorted));
		qsort(sorted, n_prefixes, sizeof(*sorted), rdp_prefix_cmp);
		for (i = 0; i < n_prefixes; i++)
			if (!n || cidr_cmp(&sorted[n - 1], &sorted[i]))
				sorted[n++] = sorted[i];
	}
	rdp_plan(&run, sorted, n, gws, n_gws);
	for (pass = 0; pass < 2; pass++) {
		run.again = false;
		err = rdp_pass(&run);
		if (err || !run.again || run.unsafe)
			break;
	}
	if (!err)
		err = run.first_err;
out:
	for (i = 0; i < 2; i++) {
		free(run.fam[i].base);
		free(run.fam[i].m);
	}
	free(sorted);
	run.res->duration_us = rdp_now_us() - t0;
	return err;
}

/* ---- stop ---- */

int route_dp_stop(struct route_dp *dp, bool keep, struct route_dp_result *ret)
{
	struct route_dp_result scratch;
	struct rdp_run run = { .dp = dp, .res = ret ? ret : &scratch };
	uint64_t t0 = rdp_now_us();
	size_t i;
	int err;

	memset(run.res, 0, sizeof(*run.res));
	if (keep)
		goto out;
	err = rdp_snap_read(dp, &run.snap);
	if (err) {
		rdp_error(run.res, err, "read the kernel's routes, rules and nexthops: %s",
			strerror(-err));
		run.first_err = err;
		goto out;
	}
	/* Rules first: traffic goes back to main at once, before any route goes. */
	for (i = 0; i < run.snap.n_rules; i++)
		rdp_del_rule(&run, &run.snap.rules[i].r);
	for (i = 0; i < run.snap.n_routes; i++)
		if (run.snap.routes[i].ours)
			rdp_del_route(&run, &run.snap.routes[i].r);
	rdp_del_nexthops(&run, true);
	rdp_snap_clear(&run.snap);
out:
	run.res->duration_us = rdp_now_us() - t0;
	return run.first_err;
}

/* ---- life cycle ---- */

static bool rdp_conf_ok(const struct route_dp_conf *c)
{
	return c->table && c->table != RT_TABLE_DEFAULT && c->table != RT_TABLE_MAIN &&
	       c->table != RT_TABLE_LOCAL && c->rule_priority && c->rule_priority < UINT32_MAX &&
	       c->protocol > RTPROT_STATIC && c->nh_id_base &&
	       c->nh_id_base <= UINT32_MAX - ROUTE_DP_NH_IDS + 1 &&
	       c->idle_timer_s <= UINT32_MAX / 1000 && c->unbalanced_timer_s <= UINT32_MAX / 1000;
}

int route_dp_new(const struct route_dp_conf *conf, struct route_dp **ret)
{
	struct route_dp *dp;
	int err, probe = 0;

	if (!rdp_conf_ok(conf))
		return -EINVAL;
	dp = xcalloc(1, sizeof(*dp));
	dp->conf = *conf;
	err = nl_open(NETLINK_ROUTE, &dp->nl);
	if (err)
		goto out;
	if (!conf->force_multipath) {
		probe = nl_nexthop_probe_resilient(dp->nl);
		if (probe < 0) {
			err = probe;
			goto out;
		}
	}
	dp->resilient = probe == 1;
	if (dp->resilient)
		snprintf(dp->mode, sizeof(dp->mode), "resilient nexthop groups (%u buckets)",
			rdp_buckets(dp));
	else
		snprintf(dp->mode, sizeof(dp->mode), "multipath routes");
out:
	if (err)
		route_dp_free(dp);
	else
		*ret = dp;
	return err;
}

const char *route_dp_mode(const struct route_dp *dp)
{
	return dp->mode;
}

bool route_dp_resilient(const struct route_dp *dp)
{
	return dp->resilient;
}

void route_dp_free(struct route_dp *dp)
{
	if (!dp)
		return;
	nl_free(dp->nl);
	free(dp);
}
