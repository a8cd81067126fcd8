/*
 * test_route_dp_kernel.c - the route module's kernel dataplane (src/route/route_dp.c)
 * against the real kernel.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and builds:
 *
 *     eg0 (192.0.2.1/24, 2001:db8::1/64) ==veth== eg1
 *     main: default via 192.0.2.254, ::/0 via 2001:db8::254 (the "normal" route)
 *     gateways 192.0.2.11-14 and 2001:db8::11-12, on-link on eg0
 *
 * Nothing runs before the unshare() succeeded; everything disappears with the process.
 * Results are cross-checked with `ip -j` run as child processes (they inherit the
 * namespace) and with netlink events.  Each test leaves the namespace as it found it (a
 * stop that must leave nothing of ours behind), and every positive check has a negative one.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cidr.h"
#include "nl.h"
#include "route/route_dp.h"
#include "util.h"
#include "kernel_test.h"

#define TABLE 200
#define PRIO 1000
#define PROTO 0x45
#define BASE 0x45000u
#define G4 (BASE + 0)
#define G6 (BASE + 1)
#define NH(slot) (BASE + ROUTE_DP_NH_GW_FIRST + (slot))

static struct nl *g_nl;
static int g_eg0;

/* ---- helpers ---------------------------------------------------------------------------- */

static struct addr ip(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static struct cidr pfx(const char *s)
{
	struct cidr c;

	assert_int_equal(cidr_parse(s, CIDR_BARE | CIDR_DEFAULT, &c), 0);
	return c;
}

static struct route_dp_conf conf_default(void)
{
	struct route_dp_conf c = {
		.table = TABLE,
		.rule_priority = PRIO,
		.protocol = PROTO,
		.nh_id_base = BASE,
		.buckets = 64,
		.idle_timer_s = 7,
	};

	return c;
}

static struct route_dp_gw gw(const char *addr, unsigned weight, unsigned slot)
{
	struct route_dp_gw g = { .gw = ip(addr), .weight = weight, .slot = slot, .usable = true };

	return g;
}

/* A prefix in static storage, valid until the next call. */
static const struct cidr *pfxp(const char *s)
{
	static struct cidr c;

	c = pfx(s);
	return &c;
}

/* Managed: everything but the LAN and 203.0.113.0/24 (IPv4), all but 2001:db8::/32 (IPv6). */
static size_t managed(int family, struct cidr **ret)
{
	struct pfxset s;
	size_t n;

	pfxset_init(&s);
	if (family != AF_INET6) {
		assert_int_equal(pfxset_add(&s, pfxp("0.0.0.0/0")), 0);
		assert_int_equal(pfxset_remove(&s, pfxp("192.0.2.0/24")), 0);
		assert_int_equal(pfxset_remove(&s, pfxp("203.0.113.0/24")), 0);
	}
	if (family != AF_INET) {
		assert_int_equal(pfxset_add(&s, pfxp("::/0")), 0);
		assert_int_equal(pfxset_remove(&s, pfxp("2001:db8::/32")), 0);
	}
	assert_int_equal(pfxset_to_cidrs(&s, AF_UNSPEC, ret, &n), 0);
	pfxset_clear(&s);
	return n;
}

static size_t count_family(const struct cidr *p, size_t n, int family)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += p[i].addr.family == family;
	return k;
}

static void print_errors(const struct route_dp_result *r)
{
	size_t i;

	for (i = 0; i < MIN(r->n_errors, (size_t)ROUTE_DP_MAX_ERRORS); i++)
		fprintf(stderr, "    reported: %s\n", r->errors[i].text);
}

/* Apply and expect success with no error reported. */
static void apply_ok(struct route_dp *dp, const struct cidr *p, size_t n,
	const struct route_dp_gw *g, size_t n_g, struct route_dp_result *res)
{
	int err = route_dp_apply(dp, p, n, g, n_g, res);

	if (err || res->n_errors) {
		print_errors(res);
		fail_msg("route_dp_apply: %s, %zu errors", strerror(-err), res->n_errors);
	}
}

static unsigned changes(const struct route_dp_result *r)
{
	return r->ok[NL_ADD] + r->ok[NL_REPLACE] + r->ok[NL_DEL];
}


/* `ip -j ARGS` (printf format, space separated); NULL if ip failed. Caller json_decref()s. */
static json_t *ipj_try(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *ipj_try(const char *fmt, ...)
{
	char args[256], *save = NULL, *tok, *out;
	char *argv[32] = { "ip", "-j" };
	json_error_t jerr;
	int argc = 2, status;
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	for (tok = strtok_r(args, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	out = kt_run_capture(-1, argv, true, &status);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(out);
		return NULL;
	}
	/* ip prints nothing at all for an empty table */
	j = out[strspn(out, " \n")] ? json_loads(out, 0, &jerr) : json_array();
	if (!j)
		fail_msg("ip -j: bad JSON (%s): %s", jerr.text, out);
	free(out);
	return j;
}

#define ipj(...)                                                                                   \
	({                                                                                         \
		json_t *j_ = ipj_try(__VA_ARGS__);                                                 \
		if (!j_)                                                                           \
			fail_msg("ip -j " __VA_ARGS__);                                            \
		j_;                                                                                \
	})

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* An integer that ip prints as a number, or as a string where it has no name for it. */
static long long jnum(const json_t *o, const char *key, long long dflt)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 0);
	return dflt;
}

static bool is_ours_proto(const json_t *o)
{
	return jnum(o, "protocol", -1) == PROTO;
}

/* The nexthop of id in `ip -j nexthop show`, or NULL; j is the caller's. */
static json_t *nh_find(json_t *j, uint32_t id)
{
	size_t i;
	json_t *e;

	json_array_foreach(j, i, e)
		if (jnum(e, "id", 0) == id)
			return e;
	return NULL;
}

/* Nexthops in our id range, and of those, ours. */
static size_t nh_in_range(size_t *ours)
{
	json_t *j = ipj("nexthop show"), *e;
	size_t i, n = 0;

	*ours = 0;
	json_array_foreach(j, i, e) {
		long long id = jnum(e, "id", 0);

		if (id >= BASE && id < BASE + ROUTE_DP_NH_IDS) {
			n++;
			*ours += is_ours_proto(e);
		}
	}
	json_decref(j);
	return n;
}

/* The weight of member id of group g (ip leaves out weight 1), 0 if not a member. */
static unsigned group_weight(json_t *g, uint32_t id)
{
	size_t i;
	json_t *m;

	json_array_foreach(json_object_get(g, "group"), i, m)
		if (jnum(m, "id", 0) == id)
			return (unsigned)jnum(m, "weight", 1);
	return 0;
}

static size_t group_size(uint32_t gid)
{
	json_t *j = ipj("nexthop show"), *g = nh_find(j, gid);
	size_t n = g ? json_array_size(json_object_get(g, "group")) : 0;

	json_decref(j);
	return n;
}

/* The routes of family in table (ip refuses to show a table that does not exist). */
static json_t *routes_of(int family, int table)
{
	json_t *all = ipj("%s route show table all", family == AF_INET6 ? "-6" : "-4");
	json_t *ret = json_array(), *e;
	size_t i;

	json_array_foreach(all, i, e)
		if (jnum(e, "table", RT_TABLE_MAIN) == table)
			json_array_append(ret, e);
	json_decref(all);
	return ret;
}

/* Our table's routes of family. */
static json_t *table_routes(int family)
{
	return routes_of(family, TABLE);
}

static json_t *route_find(json_t *routes, const char *dst)
{
	size_t i;
	json_t *e;

	json_array_foreach(routes, i, e)
		if (streq(jstr(e, "dst"), dst))
			return e;
	return NULL;
}

static const char *dst_name(const struct cidr *c, char *buf, size_t len)
{
	if (c->plen == 0)
		return "default";
	return cidr_str(c, buf, len);
}

/* Rules at priority prio of family, and of those the one with our protocol. */
static size_t rules_at(int family, uint32_t prio, json_t **ret_copy)
{
	json_t *j = ipj("%s rule show", family == AF_INET6 ? "-6" : "-4"), *e;
	size_t i, n = 0;

	if (ret_copy)
		*ret_copy = NULL;
	json_array_foreach(j, i, e) {
		if (jnum(e, "priority", -1) != prio)
			continue;
		n++;
		if (ret_copy && !*ret_copy)
			*ret_copy = json_deep_copy(e);
	}
	json_decref(j);
	return n;
}

/* Rules of family at prio into table (ip's name: "main", "200") of our protocol. */
static size_t ours_into(int family, uint32_t prio, const char *table)
{
	json_t *j = ipj("%s rule show", family == AF_INET6 ? "-6" : "-4"), *e;
	size_t i, n = 0;

	json_array_foreach(j, i, e)
		n += jnum(e, "priority", -1) == prio && streq(jstr(e, "table"), table) &&
		     is_ours_proto(e);
	json_decref(j);
	return n;
}

/* Both of our rules of family, exactly once and as designed. */
static void expect_rules(int family)
{
	json_t *r;

	assert_int_equal(rules_at(family, PRIO, &r), 1);
	assert_string_equal(jstr(r, "table"), "main");
	assert_int_equal(jnum(r, "suppress_prefixlen", -1), 0);
	assert_true(is_ours_proto(r));
	json_decref(r);
	assert_int_equal(rules_at(family, PRIO + 1, &r), 1);
	assert_int_equal(jnum(r, "table", 0), TABLE);
	assert_int_equal(jnum(r, "suppress_prefixlen", -1), -1);
	assert_true(is_ours_proto(r));
	json_decref(r);
}

static void expect_no_rules(int family)
{
	assert_int_equal(rules_at(family, PRIO, NULL), 0);
	assert_int_equal(rules_at(family, PRIO + 1, NULL), 0);
}

/*
 * `ip route get dst`: false when the kernel refused (prohibit); else the table the lookup
 * ended in ("main" when ip names none) and the gateway ("" when on-link).
 */
static bool lookup(const char *dst, char *table, size_t tlen, char *via, size_t vlen)
{
	json_t *j = ipj_try("route get %s", dst), *r;

	if (!j)
		return false;
	r = json_array_get(j, 0);
	snprintf(table, tlen, "%s", json_object_get(r, "table") ? jstr(r, "table") : "main");
	snprintf(via, vlen, "%s", jstr(r, "gateway"));
	json_decref(j);
	return true;
}

static void expect_lookup(const char *dst, const char *want_table, const char *want_via)
{
	char table[32], via[64];

	if (!lookup(dst, table, sizeof(table), via, sizeof(via)))
		fail_msg("ip route get %s: refused", dst);
	if (!streq(table, want_table))
		fail_msg("ip route get %s: table %s, want %s", dst, table, want_table);
	if (want_via && !streq(via, want_via))
		fail_msg("ip route get %s: via %s, want %s", dst, via, want_via);
}

/* A lookup through our table, by one of the gateways in vias (NULL-terminated). */
static void expect_lookup_ours(const char *dst, const char *const *vias)
{
	char table[32], via[64];
	size_t i;

	assert_true(lookup(dst, table, sizeof(table), via, sizeof(via)));
	assert_int_equal(atoi(table), TABLE);
	for (i = 0; vias[i]; i++)
		if (streq(via, vias[i]))
			return;
	fail_msg("ip route get %s: via %s, not one of ours", dst, via);
}

/* Every managed route of family in our table, pointing at the group gid (0: multipath). */
static void expect_routes(const struct cidr *p, size_t n, int family, uint32_t gid)
{
	json_t *routes = table_routes(family), *r;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		char buf[CIDR_STRLEN];

		if (p[i].addr.family != family)
			continue;
		k++;
		r = route_find(routes, dst_name(&p[i], buf, sizeof(buf)));
		if (!r)
			fail_msg("no route %s in table %d", buf, TABLE);
		assert_true(is_ours_proto(r));
		assert_string_equal(jstr(r, "type"), "");
		if (gid)
			assert_int_equal(jnum(r, "nhid", 0), gid);
		else
			assert_null(json_object_get(r, "nhid"));
	}
	json_array_foreach(routes, i, r)
		k -= is_ours_proto(r);
	assert_int_equal(k, 0); /* and no other route of ours */
	json_decref(routes);
}

static size_t table_size(int family)
{
	json_t *j = table_routes(family);
	size_t n = json_array_size(j);

	json_decref(j);
	return n;
}

/* Nothing of ours anywhere: rules, routes, nexthops. */
static void expect_clean(void)
{
	size_t ours;

	expect_no_rules(AF_INET);
	expect_no_rules(AF_INET6);
	assert_int_equal(table_size(AF_INET), 0);
	assert_int_equal(table_size(AF_INET6), 0);
	nh_in_range(&ours);
	assert_int_equal(ours, 0);
}

static void stop_clean(struct route_dp *dp)
{
	struct route_dp_result res;

	if (route_dp_stop(dp, false, &res)) {
		print_errors(&res);
		fail_msg("route_dp_stop failed");
	}
	route_dp_free(dp);
	expect_clean();
}

/* bucket index -> nexthop id of group gid */
static size_t buckets_of(uint32_t gid, uint32_t *ret, size_t max)
{
	json_t *j = ipj("nexthop bucket show id %u", gid), *e;
	size_t i, n = 0;

	json_array_foreach(j, i, e) {
		json_t *b = json_object_get(e, "bucket");
		long long idx = jnum(b, "index", -1);

		assert_true(idx >= 0 && (size_t)idx < max);
		ret[idx] = (uint32_t)jnum(b, "nhid", 0);
		n++;
	}
	json_decref(j);
	return n;
}

/* ---- netlink events: did a route of our table go away? ---- */

struct watch {
	struct event_base *base;
	struct nl_monitor *mon;
	unsigned route_del; /* routes of our table removed */
	unsigned route_new;
	bool sentinel;
};

static void watch_cb(const struct nl_event *ev, void *arg)
{
	struct watch *w = arg;

	if (ev->type != NL_EVENT_ROUTE)
		return;
	if (ev->route.table == TABLE) {
		w->route_del += ev->del;
		w->route_new += !ev->del;
	}
	if (ev->route.table == 999 && !ev->del)
		w->sentinel = true;
}

static void watch_start(struct watch *w)
{
	memset(w, 0, sizeof(*w));
	w->base = event_base_new();
	assert_non_null(w->base);
	assert_int_equal(nl_monitor_new(w->base, NL_GROUP_ROUTE, watch_cb, w, &w->mon), 0);
}

/* Wait for a sentinel route (table 999) so every event before it has been read. */
static void watch_stop(struct watch *w)
{
	struct nl_route r = { .family = AF_INET, .table = 999, .oif = g_eg0,
		.dst = pfx("10.199.0.0/16"), .scope = RT_SCOPE_LINK };
	uint64_t deadline;

	assert_int_equal(nl_route_apply(g_nl, NL_ADD, &r), 0);
	deadline = now_ms() + 3000;
	while (!w->sentinel && now_ms() < deadline) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 20 * 1000 };

		event_base_loopexit(w->base, &tv);
		event_base_dispatch(w->base);
	}
	assert_true(w->sentinel);
	assert_int_equal(nl_route_apply(g_nl, NL_DEL, &r), 0);
	nl_monitor_free(w->mon);
	event_base_free(w->base);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	struct nl_addr a4 = { .local = { .plen = 24 } }, a6 = { .flags = IFA_F_NODAD };
	struct nl_route d4 = { .family = AF_INET, .gw = ip("192.0.2.254") };
	struct nl_route d6 = { .family = AF_INET6, .gw = ip("2001:db8::254") };
	struct nl_link l;
	int err;

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (these tests need root)\n",
			strerror(errno));
		return -1;
	}
	if (nl_open(NETLINK_ROUTE, &g_nl))
		return -1;
	err = nl_link_set_up(g_nl, 1, true);
	if (!err)
		err = nl_link_add_veth(g_nl, "eg0", "eg1", -1);
	if (!err)
		err = nl_link_get(g_nl, 0, "eg0", &l);
	if (err)
		goto out;
	g_eg0 = l.ifindex;
	a4.ifindex = a6.ifindex = d4.oif = d6.oif = g_eg0;
	a4.local = (struct cidr){ ip("192.0.2.1"), 24 };
	a6.local = (struct cidr){ ip("2001:db8::1"), 64 };
	err = nl_link_get(g_nl, 0, "eg1", &l);
	if (!err)
		err = nl_link_set_up(g_nl, g_eg0, true);
	if (!err)
		err = nl_link_set_up(g_nl, l.ifindex, true);
	if (!err)
		err = nl_addr_apply(g_nl, NL_ADD, &a4);
	if (!err)
		err = nl_addr_apply(g_nl, NL_ADD, &a6);
	if (!err)
		err = nl_route_apply(g_nl, NL_ADD, &d4);
	if (!err)
		err = nl_route_apply(g_nl, NL_ADD, &d6);
out:
	if (err)
		fprintf(stderr, "setup: %s: %s\n", strerror(-err), nl_last_error(g_nl));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	nl_free(g_nl);
	return 0;
}

static struct route_dp *dp_new(const struct route_dp_conf *c)
{
	struct route_dp *dp = NULL;

	assert_int_equal(route_dp_new(c, &dp), 0);
	if (!c->force_multipath && !route_dp_resilient(dp)) {
		route_dp_free(dp);
		kt_skip("kernel has no resilient nexthop groups (5.13+; route falls back to "
			"multipath routes)");
	}
	return dp;
}

/* ---- tests ---- */

static void test_conf_and_input(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[2] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 1, 1) };
	struct cidr p[1] = { pfx("198.18.0.0/15") }, bad = pfx("198.18.0.0/15");
	struct route_dp_result res;
	struct route_dp *dp = NULL;

	/* refused configurations */
	c.table = RT_TABLE_MAIN;
	assert_int_equal(route_dp_new(&c, &dp), -EINVAL);
	c = conf_default();
	c.protocol = RTPROT_STATIC;
	assert_int_equal(route_dp_new(&c, &dp), -EINVAL);
	c = conf_default();
	c.rule_priority = UINT32_MAX;
	assert_int_equal(route_dp_new(&c, &dp), -EINVAL);
	c = conf_default();
	c.nh_id_base = UINT32_MAX - 100;
	assert_int_equal(route_dp_new(&c, &dp), -EINVAL);
	assert_null(dp);
	/* and the good one, with its mode */
	c = conf_default();
	dp = dp_new(&c);
	assert_string_equal(route_dp_mode(dp), "resilient nexthop groups (64 buckets)");
	route_dp_free(dp);
	c.force_multipath = true;
	dp = dp_new(&c);
	assert_string_equal(route_dp_mode(dp), "multipath routes");
	assert_false(route_dp_resilient(dp));

	/* refused input changes nothing */
	g[1].slot = 0; /* duplicate slot */
	assert_int_equal(route_dp_apply(dp, p, 1, g, 2, &res), -EINVAL);
	assert_int_equal(changes(&res), 0);
	assert_int_equal(res.n_errors, 1);
	g[1].slot = 1;
	g[1].weight = ROUTE_DP_MAX_WEIGHT + 1;
	assert_int_equal(route_dp_apply(dp, p, 1, g, 2, &res), -EINVAL);
	g[1].weight = 0;
	assert_int_equal(route_dp_apply(dp, p, 1, g, 2, &res), -EINVAL);
	g[1].weight = 1;
	bad.addr.b[3] = 1; /* host bits */
	assert_int_equal(route_dp_apply(dp, &bad, 1, g, 2, &res), -EINVAL);
	expect_clean();
	/* the same input, made valid, is taken */
	apply_ok(dp, p, 1, g, 2, &res);
	assert_int_equal(table_size(AF_INET), 1);
	stop_clean(dp);
}

static void test_resilient(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[3] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 2, 1),
		gw("192.0.2.13", 3, 2) };
	static const char *const all3[] = { "192.0.2.11", "192.0.2.12", "192.0.2.13", NULL };
	static const char *const two[] = { "192.0.2.11", "192.0.2.13", NULL };
	uint32_t b1[64], b2[64];
	struct route_dp_result res;
	struct route_dp *dp;
	struct cidr *p;
	size_t n, i, moved = 0;
	json_t *j, *grp;

	n = managed(AF_INET, &p);
	assert_true(n > 10);
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 3, &res);
	assert_int_equal(res.ok[NL_ADD], 3 + 1 + n + 2);
	assert_int_equal(res.ok[NL_REPLACE] + res.ok[NL_DEL], 0);
	assert_int_equal(res.kept, 0);
	assert_int_equal(res.in_service[0], 3);
	assert_int_equal(res.in_service[1], 0);

	/* the group: three members with their weights, our buckets and idle timer */
	j = ipj("nexthop show");
	grp = nh_find(j, G4);
	assert_non_null(grp);
	assert_string_equal(jstr(grp, "type"), "resilient");
	assert_true(is_ours_proto(grp));
	assert_int_equal(json_array_size(json_object_get(grp, "group")), 3);
	assert_int_equal(group_weight(grp, NH(0)), 1);
	assert_int_equal(group_weight(grp, NH(1)), 2);
	assert_int_equal(group_weight(grp, NH(2)), 3);
	assert_int_equal(group_weight(grp, NH(3)), 0);
	assert_int_equal(jnum(json_object_get(grp, "resilient_args"), "buckets", 0), 64);
	assert_int_equal(jnum(json_object_get(grp, "resilient_args"), "idle_timer", 0), 7);
	assert_string_equal(jstr(nh_find(j, NH(1)), "gateway"), "192.0.2.12");
	assert_null(nh_find(j, G6)); /* no IPv6 prefixes: no IPv6 group */
	json_decref(j);

	/* routes, rules, and where lookups end */
	expect_routes(p, n, AF_INET, G4);
	assert_int_equal(table_size(AF_INET6), 0);
	expect_rules(AF_INET);
	expect_no_rules(AF_INET6);
	expect_lookup_ours("8.8.8.8", all3);
	expect_lookup_ours("198.51.100.1", all3);
	expect_lookup("203.0.113.5", "main", "192.0.2.254"); /* excluded: main's default */
	expect_lookup("192.0.2.77", "main", "");	      /* the LAN: main's connected route */

	/* the same again: nothing to do, everything adopted */
	apply_ok(dp, p, n, g, 3, &res);
	assert_int_equal(changes(&res), 0);
	assert_int_equal(res.kept, 3 + 1 + n + 2);

	/* a gateway that only our own table reaches (main's default is suppressed for it) */
	{
		struct route_dp_gw g4[4] = { g[0], g[1], g[2], gw("198.51.100.7", 1, 3) };

		assert_int_equal(route_dp_apply(dp, p, n, g4, 4, &res), 0);
		assert_int_equal(changes(&res), 0);
		assert_int_equal(res.unresolved, 1);
		assert_int_equal(res.n_errors, 1);
		assert_non_null(strstr(res.errors[0].text, "198.51.100.7: only reached through"));
		assert_int_equal(group_size(G4), 3);
	}

	/* a gateway leaves: one group replace; the others' buckets stay where they were */
	assert_int_equal(buckets_of(G4, b1, ARRAY_SIZE(b1)), 64);
	g[1].usable = false;
	apply_ok(dp, p, n, g, 3, &res);
	fprintf(stderr, "    a gateway leaves, %zu prefixes, resilient: %llu us\n", n,
		(unsigned long long)res.duration_us);
	assert_int_equal(res.ok[NL_REPLACE], 1);
	assert_int_equal(res.ok[NL_DEL], 1); /* its nexthop, after the group let go of it */
	assert_int_equal(res.ok[NL_ADD], 0);
	assert_int_equal(res.in_service[0], 2);
	assert_int_equal(group_size(G4), 2);
	expect_routes(p, n, AF_INET, G4);
	assert_int_equal(buckets_of(G4, b2, ARRAY_SIZE(b2)), 64);
	for (i = 0; i < 64; i++) {
		assert_int_not_equal(b2[i], NH(1));
		if (b1[i] == NH(1))
			moved++;
		else
			assert_int_equal(b2[i], b1[i]); /* no rehash of the survivors' flows */
	}
	assert_true(moved > 0);
	j = ipj("nexthop show");
	assert_null(nh_find(j, NH(1)));
	assert_non_null(nh_find(j, NH(0)));
	json_decref(j);
	expect_lookup_ours("8.8.8.8", two);

	/* none usable, fail open: our routes go, lookups use main; the rules stay */
	g[0].usable = g[2].usable = false;
	apply_ok(dp, p, n, g, 3, &res);
	assert_int_equal(res.ok[NL_DEL], n + 1 + 2);
	assert_int_equal(table_size(AF_INET), 0);
	assert_int_equal(group_size(G4), 0);
	expect_lookup("8.8.8.8", "main", "192.0.2.254");
	expect_rules(AF_INET);

	/* back */
	g[0].usable = g[1].usable = g[2].usable = true;
	apply_ok(dp, p, n, g, 3, &res);
	assert_int_equal(res.ok[NL_ADD], 3 + 1 + n);
	expect_routes(p, n, AF_INET, G4);
	assert_int_equal(group_size(G4), 3);
	expect_lookup_ours("8.8.8.8", all3);
	stop_clean(dp);
	expect_lookup("8.8.8.8", "main", "192.0.2.254");
	free(p);
}

static void test_fail_closed(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[2] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 1, 1) };
	static const char *const both[] = { "192.0.2.11", "192.0.2.12", NULL };
	char table[32], via[64];
	struct route_dp_result res;
	struct route_dp *dp;
	struct cidr *p;
	json_t *j, *e;
	size_t n, i;

	c.fail_closed = true;
	n = managed(AF_INET, &p);
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 2, &res);
	expect_lookup_ours("8.8.8.8", both);

	g[0].usable = g[1].usable = false;
	apply_ok(dp, p, n, g, 2, &res);
	assert_int_equal(res.ok[NL_REPLACE], n); /* routes became prohibit, none went away */
	assert_int_equal(res.ok[NL_DEL], 1 + 2);
	j = table_routes(AF_INET);
	assert_int_equal(json_array_size(j), n);
	json_array_foreach(j, i, e) {
		assert_string_equal(jstr(e, "type"), "prohibit");
		assert_null(json_object_get(e, "nhid"));
	}
	json_decref(j);
	assert_false(lookup("8.8.8.8", table, sizeof(table), via, sizeof(via)));
	expect_lookup("203.0.113.5", "main", "192.0.2.254"); /* excluded: still fine */
	assert_int_equal(group_size(G4), 0);

	g[1].usable = true;
	apply_ok(dp, p, n, g, 2, &res);
	assert_int_equal(res.ok[NL_REPLACE], n);
	expect_routes(p, n, AF_INET, G4);
	assert_int_equal(group_size(G4), 1);
	expect_lookup("8.8.8.8", "200", "192.0.2.12");
	stop_clean(dp);
	free(p);
}

static void test_dual_stack(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[3] = { gw("192.0.2.11", 1, 0), gw("2001:db8::11", 1, 1),
		gw("2001:db8::12", 4, 2) };
	static const char *const v4[] = { "192.0.2.11", NULL };
	static const char *const v6[] = { "2001:db8::11", "2001:db8::12", NULL };
	struct cidr def6 = pfx("::/0");
	struct route_dp_result res;
	struct route_dp *dp;
	struct cidr *p;
	size_t n, n6;
	json_t *j;

	n = managed(AF_UNSPEC, &p);
	n6 = count_family(p, n, AF_INET6);
	assert_true(n6 > 10 && n6 < n);
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 3, &res);
	assert_int_equal(res.in_service[0], 1);
	assert_int_equal(res.in_service[1], 2);
	j = ipj("nexthop show");
	assert_int_equal(group_weight(nh_find(j, G6), NH(1)), 1);
	assert_int_equal(group_weight(nh_find(j, G6), NH(2)), 4);
	assert_int_equal(group_weight(nh_find(j, G6), NH(0)), 0);
	assert_int_equal(group_weight(nh_find(j, G4), NH(0)), 1);
	assert_int_equal(group_weight(nh_find(j, G4), NH(1)), 0);
	json_decref(j);
	expect_routes(p, n, AF_INET, G4);
	expect_routes(p, n, AF_INET6, G6);
	expect_rules(AF_INET);
	expect_rules(AF_INET6);
	expect_lookup_ours("2001:4860::1", v6);
	expect_lookup_ours("8.8.8.8", v4);
	expect_lookup("2001:db8:ffff::1", "main", "2001:db8::254"); /* excluded */

	/* IPv6 only, ::/0: the IPv4 side goes entirely, the IPv6 group stays as it is */
	apply_ok(dp, &def6, 1, g, 3, &res);
	assert_int_equal(res.ok[NL_ADD], 1); /* ::/0 */
	assert_int_equal(res.ok[NL_REPLACE], 0);
	/* all other routes, IPv4's rules, group and nexthop */
	assert_int_equal(res.ok[NL_DEL], n + 2 + 1 + 1);
	expect_routes(&def6, 1, AF_INET6, G6);
	assert_int_equal(table_size(AF_INET), 0);
	expect_no_rules(AF_INET);
	expect_rules(AF_INET6);
	assert_int_equal(group_size(G4), 0);
	assert_int_equal(group_size(G6), 2);
	expect_lookup_ours("2001:db8:ffff::1", v6); /* no exclusion any more */
	expect_lookup("8.8.8.8", "main", "192.0.2.254");
	j = ipj("nexthop show");
	assert_null(nh_find(j, NH(0)));
	assert_non_null(nh_find(j, NH(2)));
	json_decref(j);
	stop_clean(dp);
	free(p);
}

static void test_unresolvable(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[5] = {
		gw("192.0.2.11", 1, 0),
		gw("198.51.100.7", 1, 1), /* behind main's default: not on-link */
		gw("192.0.2.1", 1, 2),	  /* our own address */
		gw("192.0.2.12", 1, 3),	  /* given its interface */
		gw("10.200.0.13", 1, 4),  /* on a link that is down */
	};
	struct cidr p = pfx("198.18.0.0/15");
	struct route_dp_result res;
	struct route_dp *dp;
	struct nl_link l, peer;
	int err;

	assert_int_equal(nl_link_add_veth(g_nl, "eg2", "eg3", -1), 0);
	assert_int_equal(nl_link_get(g_nl, 0, "eg2", &l), 0);
	assert_int_equal(nl_link_get(g_nl, 0, "eg3", &peer), 0);
	assert_int_equal(nl_addr_apply(g_nl, NL_ADD,
				 &(struct nl_addr){ .ifindex = l.ifindex,
					 .local = { ip("10.200.0.1"), 24 } }), 0);
	g[3].ifindex = g_eg0;
	g[4].ifindex = l.ifindex;
	dp = dp_new(&c);
	err = route_dp_apply(dp, &p, 1, g, 5, &res);
	print_errors(&res);
	assert_int_equal(err, -ENETDOWN); /* the kernel refused one nexthop */
	assert_int_equal(res.unresolved, 2);
	assert_int_equal(res.n_errors, 3);
	assert_non_null(strstr(res.errors[0].text, "198.51.100.7"));
	assert_non_null(strstr(res.errors[0].text, "not on a connected network"));
	assert_non_null(strstr(res.errors[1].text, "192.0.2.1:"));
	assert_non_null(strstr(res.errors[2].text, "Nexthop device is not up"));
	assert_int_equal(res.failed[NL_ADD], 1);
	assert_int_equal(res.in_service[0], 2);
	assert_int_equal(group_size(G4), 2);
	expect_routes(&p, 1, AF_INET, G4);

	/* the link comes up: the next apply takes it */
	assert_int_equal(nl_link_set_up(g_nl, l.ifindex, true), 0);
	assert_int_equal(nl_link_set_up(g_nl, peer.ifindex, true), 0);
	g[1].usable = g[2].usable = false;
	apply_ok(dp, &p, 1, g, 5, &res);
	assert_int_equal(res.in_service[0], 3);
	assert_int_equal(group_size(G4), 3);
	stop_clean(dp);
	assert_int_equal(nl_link_del(g_nl, l.ifindex), 0);
}

/* Foreign objects: they must outlive everything we do. */
static void add_foreign(void)
{
	struct nl_nexthop nh7 = { .id = 7, .protocol = RTPROT_STATIC, .oif = g_eg0,
		.gw = ip("192.0.2.50") };
	struct nl_nexthop inrange = { .id = NH(100), .protocol = RTPROT_STATIC, .oif = g_eg0,
		.gw = ip("192.0.2.51") };
	struct nl_route r100 = { .family = AF_INET, .table = 100, .protocol = RTPROT_STATIC,
		.dst = pfx("10.99.0.0/16"), .gw = ip("192.0.2.50"), .oif = g_eg0 };
	struct nl_route rours = { .family = AF_INET, .table = TABLE, .protocol = RTPROT_STATIC,
		.dst = pfx("100.64.0.0/10"), .gw = ip("192.0.2.50"), .oif = g_eg0 };
	struct nl_rule rule500 = { .family = AF_INET, .has_priority = true, .priority = 500,
		.table = 100 };
	struct nl_rule policy = { .family = AF_INET, .has_priority = true, .priority = PRIO + 5,
		.table = 100, .protocol = PROTO };

	assert_int_equal(nl_nexthop_apply(g_nl, NL_ADD, &nh7), 0);
	assert_int_equal(nl_nexthop_apply(g_nl, NL_ADD, &inrange), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_ADD, &r100), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_ADD, &rours), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &rule500), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &policy), 0);
}

static void expect_foreign(void)
{
	json_t *j = ipj("nexthop show"), *r;

	assert_string_equal(jstr(nh_find(j, 7), "gateway"), "192.0.2.50");
	assert_string_equal(jstr(nh_find(j, NH(100)), "gateway"), "192.0.2.51");
	json_decref(j);
	j = routes_of(AF_INET, 100);
	assert_non_null(route_find(j, "10.99.0.0/16"));
	json_decref(j);
	j = table_routes(AF_INET);
	assert_non_null(route_find(j, "100.64.0.0/10"));
	json_decref(j);
	assert_int_equal(rules_at(AF_INET, 500, NULL), 1);
	assert_int_equal(rules_at(AF_INET, PRIO + 5, &r), 1);
	assert_int_equal(jnum(r, "table", 0), 100);
	json_decref(r);
}

static void del_foreign(void)
{
	struct nl_rule rule500 = { .family = AF_INET, .has_priority = true, .priority = 500 };
	struct nl_rule policy = { .family = AF_INET, .has_priority = true, .priority = PRIO + 5 };
	struct nl_route rours = { .family = AF_INET, .table = TABLE, .dst = pfx("100.64.0.0/10") };
	struct nl_route r100 = { .family = AF_INET, .table = 100, .dst = pfx("10.99.0.0/16") };

	assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &rule500), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &policy), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_DEL, &rours), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_DEL, &r100), 0);
	assert_int_equal(nl_nexthop_apply(g_nl, NL_DEL, &(struct nl_nexthop){ .id = NH(100) }), 0);
	assert_int_equal(nl_nexthop_apply(g_nl, NL_DEL, &(struct nl_nexthop){ .id = 7 }), 0);
}

static void test_adoption(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw abc[3] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 2, 1),
		gw("192.0.2.13", 1, 2) };
	struct route_dp_gw bcd[3] = { gw("192.0.2.12", 2, 1), gw("192.0.2.13", 1, 2),
		gw("192.0.2.14", 5, 3) };
	/* what an older run with IPv6 prefixes too left: its IPv6 rule; and an excluded route */
	struct nl_rule stale_rule = { .family = AF_INET6, .has_priority = true,
		.priority = PRIO + 1, .table = TABLE, .protocol = PROTO };
	struct nl_route stale_route = { .family = AF_INET, .table = TABLE, .protocol = PROTO,
		.dst = pfx("203.0.113.0/24"), .type = RTN_BLACKHOLE };
	struct route_dp_result res;
	struct route_dp *dp;
	struct watch w;
	struct cidr *p;
	size_t n, in_range, ours;
	json_t *j;

	add_foreign();
	n = managed(AF_INET, &p);
	dp = dp_new(&c);
	apply_ok(dp, p, n, abc, 3, &res);
	route_dp_free(dp); /* as after kill -9: no stop */
	assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &stale_rule), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_ADD, &stale_route), 0);
	assert_int_equal(rules_at(AF_INET6, PRIO + 1, NULL), 1);

	/* a new run, another gateway set: adopted without a route going away */
	dp = dp_new(&c);
	watch_start(&w);
	apply_ok(dp, p, n, bcd, 3, &res);
	watch_stop(&w);
	assert_int_equal(w.route_del, 1); /* the stale route only */
	assert_int_equal(res.ok[NL_ADD], 1);	 /* D's nexthop */
	assert_int_equal(res.ok[NL_REPLACE], 1); /* the group */
	assert_int_equal(res.ok[NL_DEL], 3);	 /* A's nexthop, the stale rule and route */
	assert_int_equal(res.kept, 2 + n + 2); /* B, C, the routes, the rules */
	expect_rules(AF_INET); /* exactly one pair */
	expect_no_rules(AF_INET6);
	expect_routes(p, n, AF_INET, G4);
	j = ipj("nexthop show");
	assert_null(nh_find(j, NH(0)));
	assert_int_equal(group_weight(nh_find(j, G4), NH(1)), 2);
	assert_int_equal(group_weight(nh_find(j, G4), NH(3)), 5);
	assert_int_equal(group_weight(nh_find(j, G4), NH(0)), 0);
	json_decref(j);
	in_range = nh_in_range(&ours);
	assert_int_equal(ours, 4); /* group, B, C, D: no stale nexthop */
	assert_int_equal(in_range, 5);
	expect_foreign();

	/* stop, keeping: everything stays */
	assert_int_equal(route_dp_stop(dp, true, &res), 0);
	assert_int_equal(changes(&res), 0);
	route_dp_free(dp);
	expect_rules(AF_INET);
	assert_int_equal(table_size(AF_INET), n + 1);
	nh_in_range(&ours);
	assert_int_equal(ours, 4);

	/* a plain stop, from a run that applied nothing: all ours goes, the rest stays */
	dp = dp_new(&c);
	assert_int_equal(route_dp_stop(dp, false, &res), 0);
	assert_int_equal(res.ok[NL_DEL], 2 + n + 4);
	route_dp_free(dp);
	expect_no_rules(AF_INET);
	assert_int_equal(table_size(AF_INET), 1); /* the foreign one */
	in_range = nh_in_range(&ours);
	assert_int_equal(ours, 0);
	assert_int_equal(in_range, 1);
	expect_foreign();
	del_foreign();
	expect_clean();
	free(p);
}

/*
 * Another tool's rules of our protocol at our priorities, into another table, are not ours:
 * they outlive a start, a reconcile, a family going, a reload to another table and priority
 * (whose old dp removes its own old rules) and a stop.
 */
static void test_foreign_rules_of_our_protocol(void **state)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	static const uint32_t prios[] = { PRIO, PRIO + 1, PRIO + 10, PRIO + 11 };
	struct route_dp_conf c = conf_default(), c2 = conf_default();
	struct route_dp_gw g[2] = { gw("192.0.2.11", 1, 0), gw("2001:db8::11", 1, 1) };
	struct route_dp_result res;
	struct route_dp *dp, *dp2;
	struct cidr *p, *p4;
	size_t n, n4, f, k;

	c2.table = TABLE + 1;
	c2.rule_priority = PRIO + 10;
	for (f = 0; f < 2; f++)
		for (k = 0; k < ARRAY_SIZE(prios); k++) {
			struct nl_rule r = { .family = fams[f], .has_priority = true,
				.priority = prios[k], .table = 300, .protocol = PROTO };

			assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &r), 0);
		}
	n = managed(AF_UNSPEC, &p);
	n4 = managed(AF_INET, &p4);

	/* start: ours made, nothing removed */
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 2, &res);
	assert_int_equal(res.ok[NL_DEL], 0);
	for (f = 0; f < 2; f++) {
		assert_int_equal(ours_into(fams[f], PRIO, "main"), 1);
		assert_int_equal(ours_into(fams[f], PRIO + 1, "200"), 1);
	}
	/* again: all adopted */
	apply_ok(dp, p, n, g, 2, &res);
	assert_int_equal(changes(&res), 0);
	/* IPv6 goes: our IPv6 rules go with it, not the foreign IPv6 ones */
	apply_ok(dp, p4, n4, g, 2, &res);
	assert_int_equal(ours_into(AF_INET6, PRIO, "main"), 0);
	assert_int_equal(ours_into(AF_INET6, PRIO + 1, "200"), 0);
	assert_int_equal(ours_into(AF_INET, PRIO, "main"), 1);
	assert_int_equal(ours_into(AF_INET, PRIO + 1, "200"), 1);
	for (f = 0; f < 2; f++)
		for (k = 0; k < ARRAY_SIZE(prios); k++)
			assert_int_equal(ours_into(fams[f], prios[k], "300"), 1);

	/* a reload to another table and priority, as the route module does it: the old dp
	 * removes its rules, the new one makes its own */
	dp2 = dp_new(&c2);
	assert_int_equal(route_dp_stop(dp, false, &res), 0);
	assert_int_equal(res.ok[NL_DEL], 2 + n4 + 2);
	route_dp_free(dp);
	apply_ok(dp2, p, n, g, 2, &res);
	for (f = 0; f < 2; f++) {
		assert_int_equal(ours_into(fams[f], PRIO, "main"), 0);
		assert_int_equal(ours_into(fams[f], PRIO + 1, "200"), 0);
		assert_int_equal(ours_into(fams[f], PRIO + 10, "main"), 1);
		assert_int_equal(ours_into(fams[f], PRIO + 11, "201"), 1);
		for (k = 0; k < ARRAY_SIZE(prios); k++)
			assert_int_equal(ours_into(fams[f], prios[k], "300"), 1);
	}

	/* stop: ours go, the foreign ones stay */
	assert_int_equal(route_dp_stop(dp2, false, &res), 0);
	route_dp_free(dp2);
	for (f = 0; f < 2; f++) {
		assert_int_equal(ours_into(fams[f], PRIO + 10, "main"), 0);
		assert_int_equal(ours_into(fams[f], PRIO + 11, "201"), 0);
		for (k = 0; k < ARRAY_SIZE(prios); k++) {
			struct nl_rule r = { .family = fams[f], .has_priority = true,
				.priority = prios[k], .table = 300 };

			assert_int_equal(ours_into(fams[f], prios[k], "300"), 1);
			assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &r), 0);
		}
	}
	for (f = 0; f < 2; f++) {
		json_t *j = routes_of(fams[f], TABLE + 1);

		assert_int_equal(json_array_size(j), 0);
		json_decref(j);
	}
	expect_clean();
	free(p);
	free(p4);
}

/* Each route of family: legs with these gateways and weights (a single leg: a plain path). */
static void expect_legs(const struct cidr *p, size_t n, int family, const char *const *gws,
	const unsigned *weights, size_t n_legs)
{
	json_t *routes = table_routes(family), *r;
	size_t i, k, l;

	assert_int_equal(json_array_size(routes), count_family(p, n, family));
	json_array_foreach(routes, i, r) {
		json_t *legs = json_object_get(r, "nexthops"), *leg;

		assert_true(is_ours_proto(r));
		assert_null(json_object_get(r, "nhid"));
		if (n_legs == 1) {
			assert_null(legs);
			assert_string_equal(jstr(r, "gateway"), gws[0]);
			continue;
		}
		assert_int_equal(json_array_size(legs), n_legs);
		for (k = 0; k < n_legs; k++) {
			bool found = false;

			json_array_foreach(legs, l, leg)
				if (streq(jstr(leg, "gateway"), gws[k])) {
					assert_int_equal(jnum(leg, "weight", 1), weights[k]);
					found = true;
				}
			assert_true(found);
		}
	}
	json_decref(routes);
}

static void test_multipath(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[5] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 2, 1),
		gw("192.0.2.13", 3, 2), gw("2001:db8::11", 1, 3), gw("2001:db8::12", 4, 4) };
	static const char *const v4[] = { "192.0.2.11", "192.0.2.12", "192.0.2.13", NULL };
	static const char *const v4b[] = { "192.0.2.11", "192.0.2.13", NULL };
	static const char *const v6[] = { "2001:db8::11", "2001:db8::12", NULL };
	static const unsigned w4[] = { 1, 2, 3 }, w4b[] = { 1, 3 }, w6[] = { 1, 4 };
	char table[32], via[64];
	struct route_dp_result res;
	struct route_dp *dp;
	struct cidr *p;
	size_t n, n4, n6, ours;

	c.force_multipath = true;
	n = managed(AF_UNSPEC, &p);
	n4 = count_family(p, n, AF_INET);
	n6 = n - n4;
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 5, &res);
	assert_int_equal(res.ok[NL_ADD], n + 4);
	expect_legs(p, n, AF_INET, v4, w4, 3);
	expect_legs(p, n, AF_INET6, v6, w6, 2);
	assert_int_equal(nh_in_range(&ours), 0); /* no nexthop objects in this mode */
	expect_rules(AF_INET);
	expect_rules(AF_INET6);
	expect_lookup_ours("8.8.8.8", v4);
	expect_lookup_ours("2001:4860::1", v6);
	expect_lookup("203.0.113.5", "main", "192.0.2.254");

	apply_ok(dp, p, n, g, 5, &res);
	assert_int_equal(changes(&res), 0);
	assert_int_equal(res.kept, n + 4);

	/* one leaves: every IPv4 route replaced with two legs; IPv6 untouched */
	g[1].usable = false;
	apply_ok(dp, p, n, g, 5, &res);
	fprintf(stderr, "    a gateway leaves, %zu prefixes, multipath: %llu us\n", n4,
		(unsigned long long)res.duration_us);
	assert_int_equal(res.ok[NL_REPLACE], n4);
	assert_int_equal(res.ok[NL_ADD] + res.ok[NL_DEL], 0);
	expect_legs(p, n, AF_INET, v4b, w4b, 2);
	expect_legs(p, n, AF_INET6, v6, w6, 2);
	expect_lookup_ours("8.8.8.8", v4b);

	/* one left: a plain path */
	g[2].usable = false;
	apply_ok(dp, p, n, g, 5, &res);
	expect_legs(p, n, AF_INET, v4b, w4b, 1);
	apply_ok(dp, p, n, g, 5, &res);
	assert_int_equal(changes(&res), 0);

	/* none: fail open for IPv4; IPv6 goes on */
	g[0].usable = false;
	apply_ok(dp, p, n, g, 5, &res);
	assert_int_equal(res.ok[NL_DEL], n4);
	assert_int_equal(table_size(AF_INET), 0);
	assert_int_equal(table_size(AF_INET6), n6);
	expect_lookup("8.8.8.8", "main", "192.0.2.254");
	route_dp_free(dp);

	/* fail closed (a new run adopting the old one's routes) */
	c.fail_closed = true;
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 5, &res);
	assert_int_equal(res.ok[NL_ADD], n4);
	assert_int_equal(table_size(AF_INET), n4);
	assert_false(lookup("8.8.8.8", table, sizeof(table), via, sizeof(via)));
	expect_lookup_ours("2001:4860::1", v6);

	/* back */
	g[0].usable = g[1].usable = g[2].usable = true;
	apply_ok(dp, p, n, g, 5, &res);
	assert_int_equal(res.ok[NL_REPLACE], n4);
	expect_legs(p, n, AF_INET, v4, w4, 3);
	expect_lookup_ours("8.8.8.8", v4);
	stop_clean(dp);
	free(p);
}

static void test_mode_switch(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[2] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 3, 1) };
	static const char *const v4[] = { "192.0.2.11", "192.0.2.12", NULL };
	static const unsigned w4[] = { 1, 3 };
	struct route_dp_result res;
	struct route_dp *dp;
	struct watch w;
	struct cidr *p;
	size_t n, ours;
	json_t *j;

	n = managed(AF_INET, &p);
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 2, &res);
	route_dp_free(dp);

	/* other buckets: a group cannot change them; a new one takes over without a gap */
	c.buckets = 128;
	dp = dp_new(&c);
	watch_start(&w);
	apply_ok(dp, p, n, g, 2, &res);
	watch_stop(&w);
	assert_int_equal(w.route_del, 0);
	assert_int_equal(res.ok[NL_ADD], 1);
	assert_int_equal(res.ok[NL_REPLACE], n);
	assert_int_equal(res.ok[NL_DEL], 1);
	expect_routes(p, n, AF_INET, BASE + 2);
	j = ipj("nexthop show");
	assert_null(nh_find(j, G4));
	assert_int_equal(jnum(json_object_get(nh_find(j, BASE + 2), "resilient_args"), "buckets",
				 0), 128);
	json_decref(j);
	route_dp_free(dp);

	/* to multipath routes: routes replaced, then the nexthops go */
	c.force_multipath = true;
	dp = dp_new(&c);
	watch_start(&w);
	apply_ok(dp, p, n, g, 2, &res);
	watch_stop(&w);
	assert_int_equal(w.route_del, 0);
	assert_int_equal(res.ok[NL_REPLACE], n);
	assert_int_equal(res.ok[NL_DEL], 3);
	expect_legs(p, n, AF_INET, v4, w4, 2);
	assert_int_equal(nh_in_range(&ours), 0);
	route_dp_free(dp);

	/* and back to a group, at the first id again */
	c.force_multipath = false;
	c.buckets = 64;
	dp = dp_new(&c);
	watch_start(&w);
	apply_ok(dp, p, n, g, 2, &res);
	watch_stop(&w);
	assert_int_equal(w.route_del, 0);
	assert_int_equal(res.ok[NL_ADD], 3);
	assert_int_equal(res.ok[NL_REPLACE], n);
	expect_routes(p, n, AF_INET, G4);
	stop_clean(dp);
	free(p);
}

/* The resilient group's timers ([route] idle_timer, unbalanced_timer) as read back. */
static void expect_timers(uint32_t id, int idle_s, int unbalanced_s)
{
	json_t *j = ipj("nexthop show");
	json_t *args = json_object_get(nh_find(j, id), "resilient_args");

	assert_non_null(args);
	assert_int_equal(jnum(args, "idle_timer", -1), idle_s);
	assert_int_equal(jnum(args, "unbalanced_timer", -1), unbalanced_s);
	json_decref(j);
}

static void test_timers(void **state)
{
	struct route_dp_conf c = conf_default();
	struct route_dp_gw g[2] = { gw("192.0.2.11", 1, 0), gw("192.0.2.12", 3, 1) };
	struct route_dp_result res;
	struct route_dp *dp;
	struct watch w;
	struct cidr *p;
	size_t n;

	(void)state;
	n = managed(AF_INET, &p);
	dp = dp_new(&c);
	apply_ok(dp, p, n, g, 2, &res);
	expect_timers(G4, 7, 0);
	route_dp_free(dp);

	/* new timers: the group is replaced in place, the routes stay */
	c.idle_timer_s = 3;
	c.unbalanced_timer_s = 30;
	dp = dp_new(&c);
	watch_start(&w);
	apply_ok(dp, p, n, g, 2, &res);
	watch_stop(&w);
	assert_int_equal(w.route_del, 0);
	assert_int_equal(res.ok[NL_REPLACE], 1);
	assert_int_equal(res.ok[NL_ADD] + res.ok[NL_DEL], 0);
	expect_timers(G4, 3, 30);
	apply_ok(dp, p, n, g, 2, &res);
	assert_int_equal(changes(&res), 0);
	route_dp_free(dp);

	/* unbalanced_timer back to never: a replace would keep the old one, so a new group
	 * takes over without a gap */
	c.unbalanced_timer_s = 0;
	dp = dp_new(&c);
	watch_start(&w);
	apply_ok(dp, p, n, g, 2, &res);
	watch_stop(&w);
	assert_int_equal(w.route_del, 0);
	expect_routes(p, n, AF_INET, BASE + 2);
	expect_timers(BASE + 2, 3, 0);
	stop_clean(dp);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_and_input),
		cmocka_unit_test(test_resilient),
		cmocka_unit_test(test_fail_closed),
		cmocka_unit_test(test_dual_stack),
		cmocka_unit_test(test_unresolvable),
		cmocka_unit_test(test_adoption),
		cmocka_unit_test(test_foreign_rules_of_our_protocol),
		cmocka_unit_test(test_multipath),
		cmocka_unit_test(test_mode_switch),
		cmocka_unit_test(test_timers),
	};

	return kt_exit_status(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
