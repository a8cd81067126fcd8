/*
 * test_srcroute_kernel.c - the proxy's source routing (src/proxy/srcroute.c) against the
 * real kernel: two rules (main without its default, then the uplink's table) and a table per
 * uplink with a source, and nothing else touched.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and builds a veth pair eg0/eg1, with 192.0.2.1/24 and 192.0.2.2/24 on eg0 and a default
 * route via 192.0.2.254; nothing runs before the unshare() succeeded, so the host's namespace
 * is never touched.  Results are read back with `ip`, run as child processes in the same
 * namespace.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rtnetlink.h>

#include <event2/event.h>

#include <cmocka.h>

#include "conf_keys.h"
#include "kernel_test.h"
#include "modules.h"
#include "nl.h"
#include "proxy_conf.h"
#include "srcroute.h"
#include "util.h"

static struct event_base *g_base;
static struct nl *g_nl;

/* ---- helpers -------------------------------------------------------------------------- */

static struct conf *conf_from(const char *text)
{
	struct conf *c = egress_conf_new();
	struct conf_errors errs = {0};

	if (conf_load_string(c, "test.conf", text, &errs) < 0 || conf_validate(c, &errs) < 0) {
		conf_errors_print(&errs, stderr);
		fail_msg("bad test configuration");
	}
	conf_errors_clear(&errs);
	return c;
}

static char *run(char *const argv[])
{
	int status;
	char *out = kt_run_capture(-1, argv, false, &status);

	assert_int_equal(status, 0);
	return out;
}

static char *rules(void)
{
	return run((char *const[]){"ip", "rule", "list", NULL});
}

static char *table(char *t)
{
	return run((char *const[]){"ip", "route", "show", "table", t, NULL});
}

static bool has(char *text, const char *what)
{
	bool r = strstr(text, what) != NULL;

	free(text);
	return r;
}

static char *route_get(char *dst, char *src)
{
	return run((char *const[]){"ip", "route", "get", dst, "from", src, NULL});
}

static int count(char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	free(text);
	return n;
}

static bool empty(char *text)
{
	bool r = !text[strspn(text, " \n")];

	free(text);
	return r;
}

/* The rules of uplinks 0 and 1 at the default priorities: main's routes but its default for
 * the source, then the uplink's table. */
#define MAIN_A "5000:\tfrom 192.0.2.1 lookup main suppress_prefixlength 0 proto 235\n"
#define RULE_A "5001:\tfrom 192.0.2.1 lookup 5000 proto 235\n"
#define MAIN_B "5002:\tfrom 192.0.2.2 lookup main suppress_prefixlength 0 proto 235\n"
#define RULE_B "5003:\tfrom 192.0.2.2 lookup 5001 proto 235\n"

/* Rules of egressd's protocol that belong to other modules, in srcroute's priority range. */
static const struct nl_rule g_foreign[] = {
	/* the route module's pair with [route] rule_priority = 5100 */
	{.family = AF_INET, .protocol = RTPROT_EGRESS, .has_priority = true, .priority = 5100,
		.table = RT_TABLE_MAIN, .has_suppress_prefixlen = true, .suppress_prefixlen = 0},
	{.family = AF_INET, .protocol = RTPROT_EGRESS, .has_priority = true, .priority = 5101,
		.table = 4501},
	/* and one on the priority srcroute gives its second uplink's table */
	{.family = AF_INET, .protocol = RTPROT_EGRESS, .has_priority = true, .priority = 5003,
		.has_fwmark = true, .fwmark = 0x100, .fwmask = 0xff00, .table = 4601},
};

static void foreign_add(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_foreign); i++)
		assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &g_foreign[i]), 0);
}

static void foreign_check_and_del(void)
{
	char *r = rules();

	assert_non_null(strstr(r, "5100:\tfrom all lookup main suppress_prefixlength 0 proto 235"));
	assert_non_null(strstr(r, "5101:\tfrom all lookup 4501 proto 235"));
	assert_non_null(strstr(r, "5003:\tfrom all fwmark 0x100/0xff00 lookup 4601 proto 235"));
	free(r);
	for (size_t i = 0; i < ARRAY_SIZE(g_foreign); i++)
		assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &g_foreign[i]), 0);
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Another module's rules of the same protocol inside srcroute's priority range survive every
 * apply and the stop: srcroute's rules are the ones that look up its own tables. */
static void test_foreign_rules_survive(void **state)
{
	struct conf *c = conf_from("[proxy]\nport = 1080\ndispatch = 192.0.2.1\n");
	struct conf *c2 = conf_from("[proxy]\nport = 1080\ndispatch = 192.0.2.1 192.0.2.2\n");
	struct srcroute *s;

	foreign_add();
	assert_int_equal(srcroute_new(g_base, c, &s), 0);
	assert_true(has(rules(), MAIN_A) && has(rules(), RULE_A));
	assert_true(has(table("5000"), "default via 192.0.2.254 dev eg0"));
	/* a reload: another apply, a second uplink (whose priority a foreign rule shares) */
	assert_int_equal(srcroute_reconf(s, c2), 0);
	assert_true(has(rules(), MAIN_B) && has(rules(), RULE_B));
	/* and back: the second uplink's rule goes, the foreign one on its priority stays */
	assert_int_equal(srcroute_reconf(s, c), 0);
	assert_false(has(rules(), "lookup 5001"));
	assert_false(has(rules(), "from 192.0.2.2"));
	assert_true(empty(table("5001")));
	/* a move of the whole range removes ours only */
	struct conf *c3 = conf_from(
		"[proxy]\nport = 1080\ndispatch = 192.0.2.1\nrule_priority = 5050\n");
	assert_int_equal(srcroute_reconf(s, c3), 0);
	assert_true(has(rules(), "5050:\tfrom 192.0.2.1 lookup main suppress_prefixlength 0 proto "
				 "235\n5051:\tfrom 192.0.2.1 lookup 5000 proto 235\n"));
	assert_false(has(rules(), "5000:\tfrom 192.0.2.1"));
	assert_false(has(rules(), "5001:\tfrom 192.0.2.1"));
	srcroute_free(s, false);
	assert_false(has(rules(), "from 192.0.2.1"));
	assert_true(empty(table("5000")));
	foreign_check_and_del();
	conf_free(c);
	conf_free(c2);
	conf_free(c3);
}

/*
 * s dies leaving its state (192.0.2.2's rule into table 5001 among it), and a new run starts
 * with `after`, which has no rule for 192.0.2.2: what the first run made for it is gone as
 * soon as the new one has started, while other rules of our protocol in the range stay.
 */
static void restart_without_b(struct srcroute *s, struct conf *after)
{
	assert_true(has(rules(), MAIN_B) && has(rules(), RULE_B));
	assert_true(has(table("5001"), "default via 192.0.2.254 dev eg0"));
	srcroute_free(s, true);
	foreign_add();
	assert_int_equal(srcroute_new(g_base, after, &s), 0);
	assert_false(has(rules(), "from 192.0.2.2"));
	assert_true(empty(table("5001")));
	/* a's rules are adopted, not added twice */
	assert_int_equal(count(rules(), "from 192.0.2.1 "), 2);
	assert_true(has(rules(), MAIN_A) && has(rules(), RULE_A));
	srcroute_free(s, false);
	assert_false(has(rules(), "from 192.0.2.1"));
	assert_true(empty(table("5000")));
	foreign_check_and_del();
}

/* An uplink that loses its source on a reload loses its rule and its table's route; one
 * without a source at start gets whatever an earlier run left in its table flushed. */
static void test_source_removed(void **state)
{
	struct conf *c = conf_from("[proxy]\nport = 1080\n"
				   "[uplink a]\nsource = 192.0.2.1\n"
				   "[uplink b]\nsource = 192.0.2.2\n");
	struct conf *c2 = conf_from("[proxy]\nport = 1080\n"
				    "[uplink a]\nsource = 192.0.2.1\n"
				    "[uplink b]\ninterface = eg0\n");
	struct srcroute *s;

	assert_int_equal(srcroute_new(g_base, c, &s), 0);
	assert_true(has(rules(), MAIN_B) && has(rules(), RULE_B));
	assert_true(has(table("5001"), "default via 192.0.2.254 dev eg0"));
	assert_int_equal(srcroute_reconf(s, c2), 0);
	assert_false(has(rules(), "from 192.0.2.2"));
	assert_true(empty(table("5001")));
	assert_true(has(table("5000"), "default via 192.0.2.254 dev eg0"));

	/* stop keeping the kernel state, with b's source; start again without it */
	assert_int_equal(srcroute_reconf(s, c), 0);
	assert_true(has(table("5001"), "default via 192.0.2.254 dev eg0"));
	restart_without_b(s, c2);
	conf_free(c);
	conf_free(c2);
}

/* A restart with fewer uplinks: what the earlier run made for the extra one goes at start,
 * found by its rule's shape. */
static void test_restart_with_fewer_uplinks(void **state)
{
	struct conf *c2 = conf_from("[proxy]\nport = 1080\ndispatch = 192.0.2.1 192.0.2.2\n");
	struct conf *c = conf_from("[proxy]\nport = 1080\ndispatch = 192.0.2.1\n");
	struct srcroute *s;

	assert_int_equal(srcroute_new(g_base, c2, &s), 0);
	restart_without_b(s, c);
	conf_free(c);
	conf_free(c2);
}

/* For its source, an uplink's table takes only main's default: main's connected and specific
 * routes still win (a LAN client's replies, a VPN), and any other destination leaves by the
 * uplink's gateway. */
static void test_main_routes_first(void **state)
{
	struct conf *c = conf_from("[proxy]\nport = 1080\n"
				   "[uplink a]\nsource = 192.0.2.1\ngateway = 192.0.2.253\n");
	char *const specific[] = {"ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.252",
		NULL};
	char *const specific_del[] = {"ip", "route", "del", "198.51.100.0/24", NULL};
	struct srcroute *s;

	free(run(specific));
	assert_int_equal(srcroute_new(g_base, c, &s), 0);
	assert_true(has(route_get("203.0.113.5", "192.0.2.1"), "via 192.0.2.253 dev eg0"));
	assert_true(has(route_get("198.51.100.5", "192.0.2.1"), "via 192.0.2.252 dev eg0"));
	char *lan = route_get("192.0.2.77", "192.0.2.1");
	assert_non_null(strstr(lan, "192.0.2.77 from 192.0.2.1 dev eg0"));
	assert_null(strstr(lan, "via"));
	free(lan);
	/* negative: another source keeps main's default */
	assert_true(has(route_get("203.0.113.5", "192.0.2.2"), "via 192.0.2.254 dev eg0"));
	srcroute_free(s, false);
	assert_true(has(route_get("203.0.113.5", "192.0.2.1"), "via 192.0.2.254 dev eg0"));
	free(run(specific_del));
	conf_free(c);
}

/* A run from before the rules into main left one rule per uplink (rule_priority + i, from
 * SOURCE lookup table_base + i): the new run replaces them with its pairs, removes the rule
 * and flushes the table of the uplink it does not have, and leaves foreign rules alone. */
static void test_old_layout_cleaned(void **state)
{
	struct conf *c = conf_from("[proxy]\nport = 1080\ndispatch = 192.0.2.1 192.0.2.2\n");
	static char *const old[][16] = {
		{"ip", "rule", "add", "priority", "5000", "from", "192.0.2.1", "lookup", "5000",
			"proto", "235", NULL},
		{"ip", "rule", "add", "priority", "5001", "from", "192.0.2.2", "lookup", "5001",
			"proto", "235", NULL},
		{"ip", "rule", "add", "priority", "5002", "from", "192.0.2.2", "lookup", "5002",
			"proto", "235", NULL},
		{"ip", "route", "add", "default", "via", "192.0.2.254", "table", "5000", "proto",
			"235", NULL},
		{"ip", "route", "add", "default", "via", "192.0.2.254", "table", "5001", "proto",
			"235", NULL},
		{"ip", "route", "add", "default", "via", "192.0.2.254", "table", "5002", "proto",
			"235", NULL},
	};
	struct srcroute *s;

	for (size_t i = 0; i < ARRAY_SIZE(old); i++)
		free(run(old[i]));
	foreign_add();
	assert_int_equal(srcroute_new(g_base, c, &s), 0);
	assert_true(has(rules(), MAIN_A));
	assert_true(has(rules(), RULE_A));
	assert_true(has(rules(), MAIN_B));
	assert_true(has(rules(), RULE_B));
	assert_int_equal(count(rules(), "from 192.0.2.1 "), 2);
	assert_int_equal(count(rules(), "from 192.0.2.2 "), 2);
	assert_false(has(rules(), "lookup 5002"));
	assert_true(empty(table("5002")));
	assert_true(has(table("5001"), "default via 192.0.2.254 dev eg0"));
	srcroute_free(s, false);
	assert_false(has(rules(), "from 192.0.2."));
	assert_true(empty(table("5000")));
	assert_true(empty(table("5001")));
	foreign_check_and_del();
	conf_free(c);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	static char *const cmds[][12] = {
		{"ip", "link", "add", "eg0", "type", "veth", "peer", "name", "eg1", NULL},
		{"ip", "link", "set", "eg0", "up", NULL},
		{"ip", "link", "set", "eg1", "up", NULL},
		{"ip", "addr", "add", "192.0.2.1/24", "dev", "eg0", NULL},
		{"ip", "addr", "add", "192.0.2.2/24", "dev", "eg0", NULL},
		{"ip", "route", "add", "default", "via", "192.0.2.254", "dev", "eg0", NULL},
	};

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (these tests need root)\n",
			strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0)
		return -1;
	log_init("test_srcroute_kernel", true,
		getenv("SRCROUTE_TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		free(run(cmds[i]));
	g_base = event_base_new();
	if (!g_base || nl_open(NETLINK_ROUTE, &g_nl) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	nl_free(g_nl);
	if (g_base)
		event_base_free(g_base);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_foreign_rules_survive),
		cmocka_unit_test(test_source_removed),
		cmocka_unit_test(test_restart_with_fewer_uplinks),
		cmocka_unit_test(test_main_routes_first),
		cmocka_unit_test(test_old_layout_cleaned),
	};

	return cmocka_run_group_tests_name("source routing", tests, group_setup, group_teardown);
}
