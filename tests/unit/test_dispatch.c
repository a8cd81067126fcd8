/*
 * test_dispatch.c - unit tests for src/proxy/dispatch.c: the contention-ratio split over the
 * usable uplinks, per-client rules (longest prefix wins), affinity with a fake clock and a
 * bounded table, and go-dispatch-proxy's client rules file.
 *
 * Expected counts follow from smooth weighted round robin being exact over every run of
 * sum-of-weights picks: they are worked out by hand, not read back from the code.  Pure
 * computation: no network, no kernel, no files, no clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

static struct addr A(const char *s)
{
	struct addr a;
	int r = addr_parse(s, &a);

	if (r < 0)
		fail_msg("addr_parse(\"%s\") = %d", s, r);
	return a;
}

static struct cidr C(const char *s)
{
	struct cidr c;
	int r = cidr_parse(s, CIDR_BARE, &c);

	if (r < 0)
		fail_msg("cidr_parse(\"%s\") = %d", s, r);
	return c;
}

/* A dispatcher with uplinks "u0".."u<n-1>" of these weights, all usable. */
static struct dispatch *mk(const int *w, size_t n)
{
	static const char *names[] = { "u0", "u1", "u2", "u3", "u4", "u5" };
	struct dispatch_uplink v[6];
	struct dispatch *d = dispatch_new();

	assert_true(n <= ARRAY_SIZE(v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct dispatch_uplink){ .name = names[i], .weight = w[i], .usable = true };
	assert_int_equal(dispatch_set_uplinks(d, v, n), 0);
	return d;
}

/* count[i] = picks of uplink i over n picks for client (may be NULL); -1 picks fail. */
static void count_picks(struct dispatch *d, const char *client, int n, int exclude, int *count,
	size_t ncount)
{
	struct addr a;

	if (client)
		a = A(client);
	memset(count, 0, ncount * sizeof(*count));
	for (int k = 0; k < n; k++) {
		int u = dispatch_pick(d, client ? &a : NULL, 0, exclude);

		if (u < 0)
			fail_msg("pick %d for %s failed", k, client ? client : "(none)");
		assert_true((size_t)u < ncount);
		count[u]++;
	}
}

/* ---------------------------------------------------------------- split */

static void test_split_3_2(void **state)
{
	int w[] = { 3, 2 }, cnt[2], seq[5];
	struct dispatch *d = mk(w, 2);

	count_picks(d, NULL, 1000, -1, cnt, 2);
	assert_int_equal(cnt[0], 600);
	assert_int_equal(cnt[1], 400);

	/* smooth, not bursty: every window of 5 holds exactly 3 of u0 */
	for (int k = 0; k < 5; k++)
		seq[k] = dispatch_pick(d, NULL, 0, -1);
	for (int start = 0; start < 50; start++) {
		int a = 0;

		for (int k = 0; k < 5; k++) {
			a += seq[k] == 0;
			seq[k] = k < 4 ? seq[k + 1] : dispatch_pick(d, NULL, 0, -1);
		}
		assert_int_equal(a, 3);
	}
	/* never 3 of the same in a row at 3:2 (a burst would do AAABB) */
	for (int k = 0, run = 0, last = -1; k < 100; k++) {
		int u = dispatch_pick(d, NULL, 0, -1);

		run = u == last ? run + 1 : 1;
		last = u;
		assert_true(run <= 2);
	}
	dispatch_free(d);

	/* negative: other weights give another split */
	d = mk((int[]){ 1, 1 }, 2);
	count_picks(d, NULL, 1000, -1, cnt, 2);
	assert_int_equal(cnt[0], 500);
	assert_int_equal(cnt[1], 500);
	dispatch_free(d);
}

static void test_down_moves_share(void **state)
{
	int w[] = { 3, 2, 5 }, cnt[3];
	struct dispatch *d = mk(w, 3);

	count_picks(d, NULL, 1000, -1, cnt, 3);
	assert_int_equal(cnt[0], 300);
	assert_int_equal(cnt[1], 200);
	assert_int_equal(cnt[2], 500);

	dispatch_set_usable(d, 2, false);
	count_picks(d, NULL, 1000, -1, cnt, 3);
	assert_int_equal(cnt[0], 600);
	assert_int_equal(cnt[1], 400);
	assert_int_equal(cnt[2], 0);

	dispatch_set_usable(d, 2, true);
	dispatch_set_usable(d, 99, false); /* out of range: ignored */
	count_picks(d, NULL, 1000, -1, cnt, 3);
	assert_int_equal(cnt[0], 300);
	assert_int_equal(cnt[1], 200);
	assert_int_equal(cnt[2], 500);
	dispatch_free(d);
}

static void test_all_down(void **state)
{
	int w[] = { 1, 1 }, cnt[2];
	struct dispatch *d = dispatch_new();

	assert_int_equal(dispatch_pick(d, NULL, 0, -1), -1); /* no uplinks at all */
	dispatch_free(d);

	d = mk(w, 2);
	dispatch_set_usable(d, 0, false);
	dispatch_set_usable(d, 1, false);
	assert_int_equal(dispatch_pick(d, NULL, 0, -1), -1);
	dispatch_set_usable(d, 1, true);
	assert_int_equal(dispatch_pick(d, NULL, 0, -1), 1);
	dispatch_free(d);

	/* weight 0: never picked by default, even when it is the only usable one */
	d = mk((int[]){ 0, 2 }, 2);
	count_picks(d, NULL, 100, -1, cnt, 2);
	assert_int_equal(cnt[0], 0);
	assert_int_equal(cnt[1], 100);
	dispatch_set_usable(d, 1, false);
	assert_int_equal(dispatch_pick(d, NULL, 0, -1), -1);
	dispatch_free(d);
}

static void test_exclude(void **state)
{
	int w[] = { 3, 2 }, cnt[2];
	struct dispatch *d = mk(w, 2);

	count_picks(d, NULL, 100, 0, cnt, 2);
	assert_int_equal(cnt[0], 0);
	assert_int_equal(cnt[1], 100);
	count_picks(d, NULL, 100, 1, cnt, 2);
	assert_int_equal(cnt[0], 100);
	assert_int_equal(cnt[1], 0);
	/* out-of-range exclude excludes nothing */
	count_picks(d, NULL, 1000, 7, cnt, 2);
	assert_int_equal(cnt[0], 600);

	/* the excluded one is the only usable one: -1, the caller decides */
	dispatch_set_usable(d, 1, false);
	assert_int_equal(dispatch_pick(d, NULL, 0, 0), -1);
	assert_int_equal(dispatch_pick(d, NULL, 0, -1), 0);
	dispatch_free(d);
}

/* ---------------------------------------------------------------- rules */

static void test_rules_longest_prefix(void **state)
{
	int w[] = { 1, 1, 1 }, cnt[3];
	struct dispatch *d = mk(w, 3);
	struct cidr c;

	c = C("10.0.0.0/24");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 5, 0 }, 3, "lan"), 0);
	c = C("10.0.0.7");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 0, 1 }, 3, "printer"), 0);
	c = C("10.0.0.0/16");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1, 3 }, 2, NULL), 0);
	assert_int_equal(dispatch_rule_count(d), 3);

	count_picks(d, "10.0.0.7", 100, -1, cnt, 3); /* /32 */
	assert_int_equal(cnt[2], 100);
	count_picks(d, "10.0.0.8", 100, -1, cnt, 3); /* /24 */
	assert_int_equal(cnt[1], 100);
	count_picks(d, "10.0.1.1", 400, -1, cnt, 3); /* /16: 1:3, u2 not named */
	assert_int_equal(cnt[0], 100);
	assert_int_equal(cnt[1], 300);
	assert_int_equal(cnt[2], 0);
	count_picks(d, "10.1.0.1", 300, -1, cnt, 3); /* no rule: defaults */
	assert_int_equal(cnt[0], 100);
	assert_int_equal(cnt[1], 100);
	assert_int_equal(cnt[2], 100);
	count_picks(d, NULL, 300, -1, cnt, 3);
	assert_int_equal(cnt[2], 100);

	assert_int_equal(dispatch_match_rule(d, &(struct addr){ 0 }), -1);
	{
		struct addr a = A("10.0.0.7"), b = A("10.0.0.9"), e = A("::ffff:10.0.0.7");
		struct addr f = A("11.0.0.1");

		assert_int_equal(dispatch_match_rule(d, &a), 1);
		assert_int_equal(dispatch_match_rule(d, &b), 0);
		/* an IPv4-mapped client is the IPv4 client */
		assert_int_equal(dispatch_match_rule(d, &e), 1);
		assert_int_equal(dispatch_match_rule(d, &f), -1);
	}

	/* cleared: defaults for everyone */
	dispatch_clear_rules(d);
	assert_int_equal(dispatch_rule_count(d), 0);
	count_picks(d, "10.0.0.7", 300, -1, cnt, 3);
	assert_int_equal(cnt[0], 100);
	assert_int_equal(cnt[2], 100);
	dispatch_free(d);
}

static void test_rules_v6(void **state)
{
	int w[] = { 1, 1 }, cnt[2];
	struct dispatch *d = mk(w, 2);
	struct cidr c;

	c = C("2001:db8::/32");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1, 0 }, 2, NULL), 0);
	c = C("2001:db8:1::/48");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 1 }, 2, NULL), 0);
	count_picks(d, "2001:db8:1::5", 50, -1, cnt, 2);
	assert_int_equal(cnt[1], 50);
	count_picks(d, "2001:db8:2::5", 50, -1, cnt, 2);
	assert_int_equal(cnt[0], 50);
	count_picks(d, "2001:db9::5", 50, -1, cnt, 2);
	assert_int_equal(cnt[0], 25);
	/* a v4 rule "0.0.0.0/0" does not catch IPv6 clients */
	c = C("0.0.0.0/0");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 1 }, 2, NULL), 0);
	count_picks(d, "2001:db9::5", 50, -1, cnt, 2);
	assert_int_equal(cnt[0], 25);
	count_picks(d, "192.0.2.1", 50, -1, cnt, 2);
	assert_int_equal(cnt[1], 50);
	dispatch_free(d);
}

/* Each rule and the defaults keep their own round robin: interleaving does not disturb. */
static void test_rules_own_state(void **state)
{
	int w[] = { 3, 2 }, rule_cnt[2] = { 0 }, def_cnt[2] = { 0 };
	struct dispatch *d = mk(w, 2);
	struct addr in = A("10.0.0.1"), out = A("192.0.2.1");
	struct cidr c = C("10.0.0.0/8");

	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1, 4 }, 2, NULL), 0);
	for (int k = 0; k < 500; k++) {
		rule_cnt[dispatch_pick(d, &in, 0, -1)]++;
		def_cnt[dispatch_pick(d, &out, 0, -1)]++;
	}
	assert_int_equal(rule_cnt[0], 100);
	assert_int_equal(rule_cnt[1], 400);
	assert_int_equal(def_cnt[0], 300);
	assert_int_equal(def_cnt[1], 200);
	dispatch_free(d);
}

static void test_rules_down_fall_back(void **state)
{
	int w[] = { 3, 2, 1 }, cnt[3];
	struct dispatch *d = mk(w, 3);
	struct cidr c = C("10.0.0.0/24");

	/* the rule names only u1 */
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 7 }, 2, NULL), 0);
	count_picks(d, "10.0.0.5", 60, -1, cnt, 3);
	assert_int_equal(cnt[1], 60);

	/* u1 down: the rule names no usable uplink, so the default weights apply (3:_:1) */
	dispatch_set_usable(d, 1, false);
	count_picks(d, "10.0.0.5", 400, -1, cnt, 3);
	assert_int_equal(cnt[0], 300);
	assert_int_equal(cnt[1], 0);
	assert_int_equal(cnt[2], 100);

	/* u1 excluded (just failed) counts as not usable for the rule: defaults too */
	dispatch_set_usable(d, 1, true);
	count_picks(d, "10.0.0.5", 400, 1, cnt, 3);
	assert_int_equal(cnt[0], 300);
	assert_int_equal(cnt[2], 100);

	/* a rule naming a usable uplink does not fall back: u2 only while u2 is usable */
	c = C("10.0.0.5");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 1, 1 }, 3, NULL), 0);
	dispatch_set_usable(d, 1, false);
	count_picks(d, "10.0.0.5", 50, -1, cnt, 3);
	assert_int_equal(cnt[2], 50);
	dispatch_free(d);
}

/* The uplinks a slow connect may be raced to: the client's own candidates, heaviest first. */
static void test_candidates_honour_rules(void **state)
{
	int w[] = { 1, 5, 3, 2 }, out[4];
	struct dispatch *d = mk(w, 4);
	struct addr lan = A("10.0.0.5"), mapped = A("::ffff:10.0.0.5"), only = A("10.0.0.7");
	struct addr other = A("192.0.2.1");
	struct cidr c = C("10.0.0.0/24");

	/* no rule: the default weights, first left out, ties would go to the lower index */
	assert_int_equal(dispatch_candidates(d, &other, 1, out, 4), 3);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[2], 0);
	assert_int_equal(dispatch_candidates(d, NULL, 0, out, 2), 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 2);

	/* the rule gives u1 weight 0 and does not name u3: neither is ever raced for its
	 * clients, however heavy by default */
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 4, 0, 1 }, 3, NULL), 0);
	assert_int_equal(dispatch_candidates(d, &lan, 0, out, 4), 1);
	assert_int_equal(out[0], 2);
	assert_int_equal(dispatch_candidates(d, &mapped, 2, out, 4), 1);
	assert_int_equal(out[0], 0);
	/* the rule's order, not the defaults' (u2 is lighter than u0 by default) */
	c = C("10.0.0.8/29");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1, 0, 9, 4 }, 4, NULL), 0);
	struct addr eight = A("10.0.0.9");
	assert_int_equal(dispatch_candidates(d, &eight, 1, out, 4), 3);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[2], 0);
	/* one uplink only: nothing to race */
	c = C("10.0.0.7");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 0, 0, 1, 0 }, 4, NULL), 0);
	assert_int_equal(dispatch_candidates(d, &only, 2, out, 4), 0);

	/* u2 down: the /24's clients still have u0 (the rule holds), so nothing else */
	dispatch_set_usable(d, 2, false);
	assert_int_equal(dispatch_candidates(d, &lan, 0, out, 4), 0);
	/* u0 down too: the rule names nothing usable, its clients get the defaults - as
	 * dispatch_pick() gave them first */
	dispatch_set_usable(d, 0, false);
	assert_int_equal(dispatch_pick(d, &lan, 0, -1), 1);
	assert_int_equal(dispatch_candidates(d, &lan, 1, out, 4), 1);
	assert_int_equal(out[0], 3);
	/* the exact rule names only u2, which is down: defaults as well */
	assert_int_equal(dispatch_candidates(d, &only, 1, out, 4), 1);
	assert_int_equal(out[0], 3);
	/* max 0: nothing written */
	assert_int_equal(dispatch_candidates(d, &other, 1, out, 0), 0);
	dispatch_free(d);
}

static void test_add_rule_errors(void **state)
{
	int w[] = { 1, 1 };
	struct dispatch *d = mk(w, 2);
	struct cidr c = C("10.0.0.0/24"), c2, unset = { 0 };
	const char *desc;
	const int *rw;
	size_t n;

	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1, 2 }, 2, "x"), 0);
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1 }, 1, NULL), -EEXIST);
	/* host bits are ignored: the same prefix */
	c2 = c;
	c2.addr.b[3] = 9;
	assert_int_equal(dispatch_add_rule(d, &c2, (int[]){ 1 }, 1, NULL), -EEXIST);
	c2 = C("10.0.1.0/24");
	assert_int_equal(dispatch_add_rule(d, &c2, (int[]){ -1 }, 1, NULL), -EINVAL);
	assert_int_equal(dispatch_add_rule(d, &c2, (int[]){ DISPATCH_MAX_WEIGHT + 1 }, 1, NULL),
		-ERANGE);
	assert_int_equal(dispatch_add_rule(d, &unset, (int[]){ 1 }, 1, NULL), -EINVAL);
	c2.plen = 33;
	assert_int_equal(dispatch_add_rule(d, &c2, (int[]){ 1 }, 1, NULL), -EINVAL);
	assert_int_equal(dispatch_rule_count(d), 1);

	assert_int_equal(dispatch_rule_get(d, 0, &c2, &rw, &n, &desc), 0);
	assert_int_equal(cidr_cmp(&c2, &c), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rw[1], 2);
	assert_string_equal(desc, "x");
	assert_int_equal(dispatch_rule_get(d, 1, NULL, NULL, NULL, NULL), -ENOENT);

	/* the rule count is bounded */
	dispatch_clear_rules(d);
	for (uint32_t i = 0; i < DISPATCH_MAX_RULES; i++) {
		struct cidr r = { .addr = { .family = AF_INET }, .plen = 32 };

		r.addr.v4.s_addr = htonl(0x0a000000u + i);
		assert_int_equal(dispatch_add_rule(d, &r, (int[]){ 1 }, 1, NULL), 0);
	}
	c2 = C("192.0.2.0/24");
	assert_int_equal(dispatch_add_rule(d, &c2, (int[]){ 1 }, 1, NULL), -E2BIG);
	assert_int_equal(dispatch_rule_count(d), DISPATCH_MAX_RULES);
	{
		struct addr a = A("10.0.255.255"), b = A("10.1.0.0");

		assert_int_equal(dispatch_match_rule(d, &a), 65535);
		assert_int_equal(dispatch_match_rule(d, &b), -1);
	}
	dispatch_free(d);
}

/* With the most rules, each client still finds its own (the cost of a lookup with many rules
 * beside one is measured in bench/bench_core.c, dispatch-pick). */
static void test_rules_many(void **state)
{
	int w[] = { 1, 1 };
	struct dispatch *d = mk(w, 2);
	int hits = 0;

	for (uint32_t i = 0; i < DISPATCH_MAX_RULES; i++) {
		struct cidr r = { .addr = { .family = AF_INET }, .plen = 32 };

		r.addr.v4.s_addr = htonl(0x0a000000u + i * 2); /* every other address */
		assert_int_equal(dispatch_add_rule(d, &r, (int[]){ 0, 1 }, 2, NULL), 0);
	}
	for (uint32_t i = 0; i < 4 * DISPATCH_MAX_RULES; i++) {
		struct addr a = { .family = AF_INET };

		a.v4.s_addr = htonl(0x0a000000u + (i % (2 * DISPATCH_MAX_RULES)));
		hits += dispatch_pick(d, &a, 0, -1) == 1;
	}
	/* half the clients have a rule (all u1), the other half split 1:1 */
	assert_int_equal(hits, 3 * DISPATCH_MAX_RULES);
	dispatch_free(d);
}

/* ---------------------------------------------------------------- affinity */

static void test_affinity_keeps_and_expires(void **state)
{
	int w[] = { 1, 1 };
	struct dispatch *d = mk(w, 2);
	struct addr x = A("192.0.2.10"), y = A("192.0.2.11");
	uint64_t t = 1000000;
	int u;

	/* without affinity the round robin alternates */
	assert_int_equal(dispatch_pick(d, &x, t, -1), 0);
	assert_int_equal(dispatch_pick(d, &x, t, -1), 1);
	assert_int_equal(dispatch_affinity_get(d, &x, t), -1);

	dispatch_set_affinity(d, 1000);
	u = dispatch_pick(d, &x, t, -1);
	assert_int_equal(u, 0);
	for (int k = 1; k <= 10; k++) /* every 500 ms: each renews the hold */
		assert_int_equal(dispatch_pick(d, &x, t + 500 * (uint64_t)k, -1), u);
	t += 5000;
	/* another client keeps the round robin moving (it got none from x's repeats) */
	assert_int_equal(dispatch_pick(d, &y, t, -1), 1);
	assert_int_equal(dispatch_affinity_get(d, &x, t + 999), 0);
	assert_int_equal(dispatch_affinity_get(d, &x, t + 1000), -1);
	/* expired: x follows the round robin again (next is u0, then u1) */
	assert_int_equal(dispatch_pick(d, &y, t + 999, -1), 1);
	assert_int_equal(dispatch_pick(d, NULL, t + 999, -1), 0);
	assert_int_equal(dispatch_pick(d, &x, t + 1000, -1), 1);
	assert_int_equal(dispatch_affinity_get(d, &x, t + 1000), 1);

	/* expired entries are swept from the table */
	assert_int_equal(dispatch_affinity_count(d), 2);
	dispatch_pick(d, NULL, t + 100000, -1); /* no client: no sweep needed */
	dispatch_pick(d, &x, t + 100000, -1);
	assert_int_equal(dispatch_affinity_count(d), 1);

	/* off: forgotten */
	dispatch_set_affinity(d, 0);
	assert_int_equal(dispatch_affinity_count(d), 0);
	assert_int_equal(dispatch_affinity_get(d, &x, t + 100000), -1);
	dispatch_free(d);
}

static void test_affinity_moves_when_down(void **state)
{
	int w[] = { 1, 1, 1 };
	struct dispatch *d = mk(w, 3);
	struct addr x = A("2001:db8::10"), xm = A("::ffff:192.0.2.1"), x4 = A("192.0.2.1");
	struct cidr c;
	int u;

	dispatch_set_affinity(d, 60000);
	assert_int_equal(dispatch_pick(d, &x, 0, -1), 0);
	dispatch_set_usable(d, 0, false);
	assert_int_equal(dispatch_pick(d, &x, 1, -1), 1);
	dispatch_set_usable(d, 0, true);
	/* it stays on its new uplink when the old one comes back */
	assert_int_equal(dispatch_pick(d, &x, 2, -1), 1);
	assert_int_equal(dispatch_pick(d, &x, 3, -1), 1);
	/* excluded (it just failed): moves, and stays moved */
	assert_int_equal(dispatch_pick(d, &x, 4, 1), 2);
	assert_int_equal(dispatch_pick(d, &x, 5, -1), 2);

	/* a rule that no longer allows its uplink moves it too */
	c = C("2001:db8::/64");
	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1 }, 1, NULL), 0);
	assert_int_equal(dispatch_pick(d, &x, 6, -1), 0);
	assert_int_equal(dispatch_pick(d, &x, 7, -1), 0);

	/* an IPv4-mapped client is held as the IPv4 client */
	u = dispatch_pick(d, &xm, 8, -1);
	assert_int_equal(dispatch_affinity_get(d, &x4, 9), u);
	assert_int_equal(dispatch_pick(d, &x4, 9, -1), u);
	dispatch_free(d);
}

static void test_affinity_follows_names(void **state)
{
	struct dispatch_uplink v[] = { { "a", 1, true }, { "b", 1, true } };
	struct dispatch_uplink v2[] = { { "b", 1, true }, { "c", 1, true } };
	struct dispatch *d = dispatch_new();
	struct addr x = A("192.0.2.1"), y = A("192.0.2.2");

	assert_int_equal(dispatch_set_uplinks(d, v, 2), 0);
	dispatch_set_affinity(d, 60000);
	assert_int_equal(dispatch_pick(d, &x, 0, -1), 0); /* a */
	assert_int_equal(dispatch_pick(d, &y, 0, -1), 1); /* b */
	assert_int_equal(dispatch_set_uplinks(d, v2, 2), 0);
	assert_int_equal(dispatch_n_uplinks(d), 2);
	/* y stays on b, now index 0; x's a is gone */
	assert_int_equal(dispatch_affinity_get(d, &y, 1), 0);
	assert_int_equal(dispatch_affinity_get(d, &x, 1), -1);
	assert_int_equal(dispatch_affinity_count(d), 1);
	assert_int_equal(dispatch_pick(d, &y, 1, -1), 0);

	{
		struct dispatch_uplink many[DISPATCH_MAX_UPLINKS + 1];

		for (size_t i = 0; i < ARRAY_SIZE(many); i++)
			many[i] = (struct dispatch_uplink){ "n", 1, true };
		assert_int_equal(dispatch_set_uplinks(d, many, ARRAY_SIZE(many)), -E2BIG);
		assert_int_equal(dispatch_n_uplinks(d), 2);
		assert_int_equal(dispatch_set_uplinks(d, many, DISPATCH_MAX_UPLINKS), 0);
		assert_int_equal(dispatch_n_uplinks(d), DISPATCH_MAX_UPLINKS);
	}
	dispatch_free(d);
}

static void test_affinity_bounded(void **state)
{
	int w[] = { 1, 1 };
	struct dispatch *d = mk(w, 2);
	struct addr a = { .family = AF_INET };

	dispatch_set_affinity(d, 3600000);
	dispatch_set_affinity_limit(d, 100);
	for (uint32_t i = 0; i < 150; i++) {
		a.v4.s_addr = htonl(0xc0000200u + i);
		assert_true(dispatch_pick(d, &a, i, -1) >= 0);
	}
	assert_int_equal(dispatch_affinity_count(d), 100);
	/* the 50 idle the longest were forgotten, the latest 100 are held */
	for (uint32_t i = 0; i < 150; i++) {
		a.v4.s_addr = htonl(0xc0000200u + i);
		if (i < 50)
			assert_int_equal(dispatch_affinity_get(d, &a, 200), -1);
		else
			assert_true(dispatch_affinity_get(d, &a, 200) >= 0);
	}
	/* a client that comes back is the most recent: the next eviction spares it */
	a.v4.s_addr = htonl(0xc0000200u + 50);
	dispatch_pick(d, &a, 300, -1);
	a.v4.s_addr = htonl(0xc0000300u);
	dispatch_pick(d, &a, 301, -1);
	a.v4.s_addr = htonl(0xc0000200u + 50);
	assert_true(dispatch_affinity_get(d, &a, 302) >= 0);
	a.v4.s_addr = htonl(0xc0000200u + 51);
	assert_int_equal(dispatch_affinity_get(d, &a, 302), -1);
	assert_int_equal(dispatch_affinity_count(d), 100);

	/* the default bound: a flood of distinct clients stops at DISPATCH_AFFINITY_MAX */
	dispatch_set_affinity_limit(d, DISPATCH_AFFINITY_MAX);
	for (uint32_t i = 0; i < 200000; i++) {
		a.v4.s_addr = htonl(0x0a000000u + i);
		dispatch_pick(d, &a, 1000, -1);
	}
	assert_int_equal(dispatch_affinity_count(d), DISPATCH_AFFINITY_MAX);
	a.v4.s_addr = htonl(0x0a000000u + 199999);
	assert_true(dispatch_affinity_get(d, &a, 1000) >= 0);
	a.v4.s_addr = htonl(0x0a000000u);
	assert_int_equal(dispatch_affinity_get(d, &a, 1000), -1);
	dispatch_free(d);
}

/* ---------------------------------------------------------------- JSON */

static int resolve_cb(const char *uplink, void *arg)
{
	struct addr a;
	uint16_t port;

	(*(int *)arg)++;
	if (dispatch_uplink_key(uplink, &a, &port) < 0)
		return -1;
	{
		char buf[ADDR_STRLEN];

		addr_str(&a, buf, sizeof(buf));
		if (streq(buf, "192.168.1.10"))
			return 0;
		if (streq(buf, "10.81.201.18"))
			return 1;
	}
	return -1;
}

/* The example of reference/go-dispatch-proxy-gateway-mode.md, byte for byte. */
static const char reference_json[] = "{\n"
				     "  \"192.168.1.10:0\": {\n"
				     "    \"192.168.100.50\": {\n"
				     "      \"source_ip\": \"192.168.100.50\",\n"
				     "      \"contention_ratio\": 5,\n"
				     "      \"description\": \"High-priority client device\"\n"
				     "    },\n"
				     "    \"192.168.100.0/24\": {\n"
				     "      \"source_ip\": \"192.168.100.0/24\",\n"
				     "      \"contention_ratio\": 2,\n"
				     "      \"description\": \"Default for all gateway clients\"\n"
				     "    }\n"
				     "  }\n"
				     "}\n";

static void test_json_reference(void **state)
{
	struct dispatch *d = mk((int[]){ 3, 2 }, 2);
	char err[256], buf[CIDR_STRLEN];
	const char *desc;
	const int *w;
	struct cidr c;
	int calls = 0, cnt[2];
	size_t n;

	assert_int_equal(dispatch_load_rules_json(d, reference_json, strlen(reference_json),
				 resolve_cb, &calls, err, sizeof(err)),
		0);
	assert_string_equal(err, "");
	assert_int_equal(calls, 1);
	assert_int_equal(dispatch_rule_count(d), 2);

	assert_int_equal(dispatch_rule_get(d, 0, &c, &w, &n, &desc), 0);
	assert_string_equal(cidr_str(&c, buf, sizeof(buf)), "192.168.100.50/32");
	assert_int_equal(n, 2);
	assert_int_equal(w[0], 5);
	assert_int_equal(w[1], 0);
	assert_string_equal(desc, "High-priority client device");

	assert_int_equal(dispatch_rule_get(d, 1, &c, &w, &n, &desc), 0);
	assert_string_equal(cidr_str(&c, buf, sizeof(buf)), "192.168.100.0/24");
	assert_int_equal(w[0], 2);
	assert_int_equal(w[1], 0);
	assert_string_equal(desc, "Default for all gateway clients");

	/* in effect: gateway clients use 192.168.1.10 only, others the default 3:2 */
	count_picks(d, "192.168.100.50", 50, -1, cnt, 2);
	assert_int_equal(cnt[0], 50);
	count_picks(d, "192.168.100.77", 50, -1, cnt, 2);
	assert_int_equal(cnt[0], 50);
	count_picks(d, "192.168.200.1", 500, -1, cnt, 2);
	assert_int_equal(cnt[0], 300);
	/* 192.168.1.10 down: the rules name nothing usable, the defaults apply */
	dispatch_set_usable(d, 0, false);
	count_picks(d, "192.168.100.50", 50, -1, cnt, 2);
	assert_int_equal(cnt[1], 50);
	dispatch_free(d);
}

static void test_json_grouped(void **state)
{
	static const char text[] =
		"{\"192.168.1.10:0\": {\"192.168.100.0/24\": {\"contention_ratio\": 3},"
		"                     \"10.0.0.1\": {\"contention_ratio\": 0}},"
		" \"10.81.201.18:0\": {\"192.168.100.0/24\": {\"contention_ratio\": 2,"
		"                                            \"description\": \"lan\"},"
		"                     \"2001:db8::/32\": {\"contention_ratio\": 1,"
		"                                        \"source_ip\": \"2001:db8:0::/32\"}},"
		" \"[2001:db8::9]:0\": {}}";
	struct dispatch *d = mk((int[]){ 1, 1 }, 2);
	char err[256];
	const char *desc;
	const int *w;
	int calls = 0, cnt[2];
	size_t n;

	/* [2001:db8::9]:0 is not an uplink of ours */
	assert_int_equal(dispatch_load_rules_json(d, text, strlen(text), resolve_cb, &calls, err,
				 sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "\"[2001:db8::9]:0\": unknown uplink");
	assert_int_equal(dispatch_rule_count(d), 0);

	/* without it (the text need not end in NUL: len stops before the last member) */
	{
		const char *cut = strstr(text, ", \"[2001");
		char *t = xstrdup(text);
		size_t len = (size_t)(cut - text);

		t[len] = '}';
		assert_int_equal(dispatch_load_rules_json(d, t, len + 1, resolve_cb, &calls, err,
					 sizeof(err)),
			0);
		free(t);
	}
	assert_int_equal(dispatch_rule_count(d), 3);
	assert_int_equal(dispatch_rule_get(d, 0, NULL, &w, &n, &desc), 0);
	assert_int_equal(n, 2);
	assert_int_equal(w[0], 3);
	assert_int_equal(w[1], 2);
	assert_string_equal(desc, "lan");
	assert_int_equal(dispatch_rule_get(d, 1, NULL, &w, &n, &desc), 0);
	assert_int_equal(w[0], 0);
	assert_int_equal(w[1], 0);
	assert_null(desc);
	assert_int_equal(dispatch_rule_get(d, 2, NULL, &w, &n, NULL), 0);
	assert_int_equal(w[0], 0);
	assert_int_equal(w[1], 1);

	count_picks(d, "192.168.100.9", 500, -1, cnt, 2);
	assert_int_equal(cnt[0], 300);
	assert_int_equal(cnt[1], 200);
	/* 10.0.0.1's rule is all zeros: it names nothing, the defaults apply */
	count_picks(d, "10.0.0.1", 100, -1, cnt, 2);
	assert_int_equal(cnt[0], 50);

	/* loading again: the prefixes have rules already, nothing is added */
	assert_int_equal(dispatch_load_rules_json(d, text, strlen(text) - 24, resolve_cb, &calls,
				 err, sizeof(err)),
		-EINVAL); /* cut mid-text: a syntax error */
	assert_non_null(strstr(err, "line 1 column"));
	{
		static const char again[] = "{\"10.81.201.18:0\": {\"10.9.9.9\": "
					    "{\"contention_ratio\": 1}, \"2001:db8::/32\": "
					    "{\"contention_ratio\": 1}}}";

		assert_int_equal(dispatch_load_rules_json(d, again, strlen(again), resolve_cb,
					 &calls, err, sizeof(err)),
			-EEXIST);
		assert_string_equal(err,
			"\"10.81.201.18:0\".\"2001:db8::/32\": a rule for 2001:db8::/32 exists "
			"already");
	}
	assert_int_equal(dispatch_rule_count(d), 3);
	dispatch_free(d);
}

struct json_bad {
	const char *text;
	const char *err; /* expected message, exactly */
};

static const struct json_bad json_bad[] = {
	{ "[]", "expected an object of uplinks, got an array" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1}}",
		"line 1 column 56: '}' expected near end of file" },
	{ "{\"192.168.1.10:0\": {}, \"192.168.1.10:0\": {}}",
		"line 1 column 39: duplicate object key near '\"192.168.1.10:0\"'" },
	{ "{\"1.2.3.4:0\": {}}", "\"1.2.3.4:0\": unknown uplink" },
	{ "{\"192.168.1.10:0\": {}, \"192.168.1.10:00\": {}}",
		"\"192.168.1.10:00\": the same uplink as \"192.168.1.10:0\"" },
	{ "{\"192.168.1.10:0\": 5}",
		"\"192.168.1.10:0\": expected an object of clients, got 5" },
	{ "{\"192.168.1.10:0\": {\"bogus\": {\"contention_ratio\": 1}}}",
		"\"192.168.1.10:0\".\"bogus\": expected a client IP address or CIDR prefix "
		"(not an address/prefix-length of the expected family)" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.0/33\": {\"contention_ratio\": 1}}}",
		"\"192.168.1.10:0\".\"10.0.0.0/33\": expected a client IP address or CIDR prefix "
		"(prefix length too long)" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": \"fast\"}}",
		"\"192.168.1.10:0\".\"10.0.0.1\": expected an object with \"contention_ratio\", "
		"got \"fast\"" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".contention_ratio: missing (expected an integer "
		"0-1000)" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": \"3\"}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".contention_ratio: expected an integer 0-1000, "
		"got \"3\"" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1001}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".contention_ratio: expected an integer 0-1000, "
		"got 1001" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": -1}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".contention_ratio: expected an integer 0-1000, "
		"got -1" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 2.5}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".contention_ratio: expected an integer 0-1000, "
		"got 2.5" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": null}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".contention_ratio: expected an integer 0-1000, "
		"got null" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.0/24\": {\"contention_ratio\": 1, "
	  "\"source_ip\": \"10.0.1.0/24\"}}}",
		"\"192.168.1.10:0\".\"10.0.0.0/24\".source_ip: expected the client of the key "
		"(10.0.0.0/24), got 10.0.1.0/24" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.0/24\": {\"contention_ratio\": 1, "
	  "\"source_ip\": true}}}",
		"\"192.168.1.10:0\".\"10.0.0.0/24\".source_ip: expected a client IP address or "
		"CIDR prefix, got true" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1, "
	  "\"description\": [1]}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".description: expected a string, got an array" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1, \"colour\": 1}}}",
		"\"192.168.1.10:0\".\"10.0.0.1\".colour: unknown member (expected source_ip, "
		"contention_ratio or description)" },
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1}, "
	  "\"10.0.0.1/32\": {\"contention_ratio\": 2}}}",
		"\"192.168.1.10:0\".\"10.0.0.1/32\": client 10.0.0.1/32 is given twice for this "
		"uplink" },
	/* keys are quoted and escaped in the path */
	{ "{\"192.168.1.10:0\": {\"a\\\"b\\u0001\": {}}}",
		"\"192.168.1.10:0\".\"a\\\"b\\x01\": expected a client IP address or CIDR prefix "
		"(not an address/prefix-length of the expected family)" },
	/* an error after good entries: none of them is added */
	{ "{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1}}, "
	  "\"10.81.201.18:0\": {\"10.0.0.2\": {\"contention_ratio\": 1}, "
	  "\"10.0.0.3\": {\"contention_ratio\": 1, \"x\": 0}}}",
		"\"10.81.201.18:0\".\"10.0.0.3\".x: unknown member (expected source_ip, "
		"contention_ratio or description)" },
	{ "", "line 1 column 0: '[' or '{' expected near end of file" },
};

static void test_json_errors(void **state)
{
	struct dispatch *d = mk((int[]){ 1, 1 }, 2);
	struct cidr c = C("172.16.0.0/12");
	char err[512];
	int calls = 0;

	assert_int_equal(dispatch_add_rule(d, &c, (int[]){ 1 }, 1, "before"), 0);
	for (size_t i = 0; i < ARRAY_SIZE(json_bad); i++) {
		int r = dispatch_load_rules_json(d, json_bad[i].text, strlen(json_bad[i].text),
			resolve_cb, &calls, err, sizeof(err));

		if (r >= 0 || !streq(err, json_bad[i].err))
			fail_msg("case %zu: %s\n  got %d \"%s\"\n  expected \"%s\"", i,
				json_bad[i].text, r, err, json_bad[i].err);
		assert_int_equal(dispatch_rule_count(d), 1);
	}
	/* positive pair: a good file after all that loads, and the old rule stays */
	{
		static const char good[] =
			"{\"192.168.1.10:0\": {\"10.0.0.1\": {\"contention_ratio\": 1}}}";

		assert_int_equal(dispatch_load_rules_json(d, good, strlen(good), resolve_cb,
					 &calls, err, sizeof(err)),
			0);
		assert_int_equal(dispatch_rule_count(d), 2);
	}
	/* a tiny error buffer is cut, never overrun; errlen 0 is allowed */
	{
		char small[8];

		memset(small, 'x', sizeof(small));
		assert_true(dispatch_load_rules_json(d, "[]", 2, resolve_cb, &calls, small, 5) < 0);
		assert_string_equal(small, "expe");
		assert_int_equal(small[5], 'x');
		assert_true(dispatch_load_rules_json(d, "[]", 2, resolve_cb, &calls, NULL, 0) < 0);
	}
	dispatch_free(d);
}

static void test_uplink_key(void **state)
{
	struct addr a;
	uint16_t port = 99;
	char buf[ADDR_STRLEN];

	assert_int_equal(dispatch_uplink_key("192.168.1.10:0", &a, &port), 0);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "192.168.1.10");
	assert_int_equal(port, 0);
	assert_int_equal(dispatch_uplink_key("[2001:db8::1]:1080", &a, &port), 0);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(port, 1080);
	assert_int_equal(dispatch_uplink_key("10.0.0.1", &a, &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(dispatch_uplink_key("2001:db8::1", &a, NULL), 0);
	assert_int_equal(a.family, AF_INET6);

	assert_int_equal(dispatch_uplink_key("host:0", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("10.0.0.1:", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("10.0.0.1:65536", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("10.0.0.1:-1", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("10.0.0.1:1x", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("[10.0.0.1]:0", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("[2001:db8::1:0", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key(":0", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key("", &a, &port), -EINVAL);
	assert_int_equal(dispatch_uplink_key(NULL, &a, &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_3_2),
		cmocka_unit_test(test_down_moves_share),
		cmocka_unit_test(test_all_down),
		cmocka_unit_test(test_exclude),
		cmocka_unit_test(test_rules_longest_prefix),
		cmocka_unit_test(test_rules_v6),
		cmocka_unit_test(test_rules_own_state),
		cmocka_unit_test(test_rules_down_fall_back),
		cmocka_unit_test(test_candidates_honour_rules),
		cmocka_unit_test(test_add_rule_errors),
		cmocka_unit_test(test_rules_many),
		cmocka_unit_test(test_affinity_keeps_and_expires),
		cmocka_unit_test(test_affinity_moves_when_down),
		cmocka_unit_test(test_affinity_follows_names),
		cmocka_unit_test(test_affinity_bounded),
		cmocka_unit_test(test_json_reference),
		cmocka_unit_test(test_json_grouped),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_uplink_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
