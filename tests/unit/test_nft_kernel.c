/*
 * test_nft_kernel.c - the nftables layer (src/net/nft.c) against the real kernel.
 *
 * The group setup moves the whole process into a private network namespace
 * (unshare(CLONE_NEWNET)), brings lo up and checks that the ruleset there is empty before any
 * test runs; every table created here disappears with the process.  It must never touch the
 * host's namespace: nothing here runs before the unshare() succeeded.
 *
 * "Foreign" tables (someone else's, e.g. `table ip filter`) are made through a second, raw
 * libnftables context, not through the layer under test.  Each positive check is paired with a
 * negative one.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nftables/libnftables.h>

#include "kernel_test.h"
#include "nft.h"
#include "util.h"

static struct nft *g_nft;
static struct nft_ctx *g_raw; /* for foreign tables and cross-checks */

/* ---- helpers -------------------------------------------------------------------------- */

/* Run cmd on the raw context; returns its rc.  Output/error buffers are drained. */
static int raw_run(const char *cmd)
{
	int rc = nft_run_cmd_from_buffer(g_raw, cmd);

	nft_ctx_get_output_buffer(g_raw);
	nft_ctx_get_error_buffer(g_raw);
	return rc;
}

/* Output of cmd on the raw context (stateful, no handles); caller frees. */
static char *raw_out(const char *cmd)
{
	int rc = nft_run_cmd_from_buffer(g_raw, cmd);
	char *s = xstrdup(nft_ctx_get_output_buffer(g_raw));

	nft_ctx_get_error_buffer(g_raw);
	assert_int_equal(rc, 0);
	return s;
}

/* Stateful listing of one of our tables; caller frees. */
static char *list(const char *family, const char *name)
{
	char *s = NULL;

	assert_int_equal(nft_table_list(g_nft, family, name, 0, &s), 0);
	assert_non_null(s);
	return s;
}


static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* Number of elements of set `set` in a JSON listing, -1 if there is no such set. */
static int json_set_elems(json_t *root, const char *set)
{
	json_t *arr = json_object_get(root, "nftables"), *item, *s;
	size_t i;

	json_array_foreach(arr, i, item) {
		s = json_object_get(item, "set");
		if (s && streq(json_string_value(json_object_get(s, "name")) ?: "", set)) {
			json_t *elem = json_object_get(s, "elem");

			return elem ? (int)json_array_size(elem) : 0;
		}
	}
	return -1;
}

static int set_count(const char *family, const char *table, const char *set)
{
	json_t *root = NULL;
	int n;

	assert_int_equal(nft_table_list_json(g_nft, family, table, &root), 0);
	n = json_set_elems(root, set);
	json_decref(root);
	return n;
}

/* ---- bodies and golden listings ------------------------------------------------------- */

static const char body_v1[] =
	"set allow4 {\n"
	"	type ipv4_addr\n"
	"	flags interval\n"
	"	elements = { 10.0.0.0/8, 192.0.2.1 }\n"
	"}\n"
	"set ports {\n"
	"	type inet_service\n"
	"	elements = { 80, 443 }\n"
	"}\n"
	"map mark_of {\n"
	"	type ipv4_addr : mark\n"
	"	elements = { 192.0.2.2 : 0x00000001 }\n"
	"}\n"
	"chain out {\n"
	"	type filter hook output priority filter; policy accept;\n"
	"	ip daddr @allow4 tcp dport @ports counter packets 5 bytes 300 accept\n"
	"	meta mark set ip daddr map @mark_of\n"
	"	jump old\n"
	"}\n"
	"chain old {\n"
	"	counter\n"
	"}\n";

/* body_v1 with chain old renamed new and a new element */
static const char body_v2[] =
	"set allow4 {\n"
	"	type ipv4_addr\n"
	"	flags interval\n"
	"	elements = { 10.0.0.0/8, 192.0.2.1, 198.51.100.0/24 }\n"
	"}\n"
	"chain out {\n"
	"	type filter hook output priority filter; policy accept;\n"
	"	ip daddr @allow4 accept\n"
	"	jump new\n"
	"}\n"
	"chain new {\n"
	"	counter\n"
	"}\n";

static const char golden_v1[] =
	"table inet egress {\n"
	"	set allow4 {\n"
	"		type ipv4_addr\n"
	"		flags interval\n"
	"		elements = { 10.0.0.0/8, 192.0.2.1 }\n"
	"	}\n"
	"\n"
	"	set ports {\n"
	"		type inet_service\n"
	"		elements = { 80, 443 }\n"
	"	}\n"
	"\n"
	"	map mark_of {\n"
	"		type ipv4_addr : mark\n"
	"		elements = { 192.0.2.2 : 0x00000001 }\n"
	"	}\n"
	"\n"
	"	chain out {\n"
	"		type filter hook output priority filter; policy accept;\n"
	"		ip daddr @allow4 tcp dport @ports counter packets 5 bytes 300 accept\n"
	"		meta mark set ip daddr map @mark_of\n"
	"		jump old\n"
	"	}\n"
	"\n"
	"	chain old {\n"
	"		counter packets 0 bytes 0\n"
	"	}\n"
	"}\n";

static const char golden_v2[] =
	"table inet egress {\n"
	"	set allow4 {\n"
	"		type ipv4_addr\n"
	"		flags interval\n"
	"		elements = { 10.0.0.0/8, 192.0.2.1,\n"
	"			     198.51.100.0/24 }\n"
	"	}\n"
	"\n"
	"	chain out {\n"
	"		type filter hook output priority filter; policy accept;\n"
	"		ip daddr @allow4 accept\n"
	"		jump new\n"
	"	}\n"
	"\n"
	"	chain new {\n"
	"		counter packets 0 bytes 0\n"
	"	}\n"
	"}\n";

static const char foreign_ruleset[] =
	"table ip filter {\n"
	"	chain input {\n"
	"		type filter hook input priority filter; policy accept;\n"
	"		counter packets 7 bytes 700 accept\n"
	"	}\n"
	"}\n";

/* ---- setup ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	const char *out;

	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0) {
		fprintf(stderr, "lo up: %s\n", strerror(errno));
		return -1;
	}
	/* Only now, inside the private namespace, open any netlink socket. */
	g_raw = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!g_raw || nft_ctx_buffer_output(g_raw) || nft_ctx_buffer_error(g_raw))
		return -1;
	if (nft_run_cmd_from_buffer(g_raw, "list ruleset") != 0)
		return -1;
	out = nft_ctx_get_output_buffer(g_raw);
	nft_ctx_get_error_buffer(g_raw);
	if (*out) {
		fprintf(stderr, "fresh namespace has a ruleset?\n%s", out);
		return -1;
	}
	g_nft = nft_new();
	return g_nft ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	nft_free(g_nft);
	if (g_raw)
		nft_ctx_free(g_raw);
	return 0;
}

/* Each test starts from an empty ruleset (of the private namespace). */
static int setup(void **state)
{
	(void)state;
	return raw_run("flush ruleset") == 0 ? 0 : -1;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_names(void **state)
{
	char longname[300];

	(void)state;
	assert_int_equal(nft_table_name_check("egress"), 0);
	assert_int_equal(nft_table_name_check("egress_v4"), 0);
	assert_int_equal(nft_table_name_check("egress-x.y"), 0);
	assert_int_equal(nft_table_name_check("filter"), -EPERM);
	assert_int_equal(nft_table_name_check("Egress"), -EPERM);
	assert_int_equal(nft_table_name_check("egres"), -EPERM);
	assert_int_equal(nft_table_name_check(""), -EPERM);
	assert_int_equal(nft_table_name_check("egress x"), -EINVAL);
	assert_int_equal(nft_table_name_check("egress;flush"), -EINVAL);
	assert_int_equal(nft_table_name_check("egress}"), -EINVAL);
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "egress", 6);
	longname[255] = '\0';
	assert_int_equal(nft_table_name_check(longname), 0);
	longname[255] = 'a';
	longname[256] = '\0';
	assert_int_equal(nft_table_name_check(longname), -EINVAL);
	assert_true(nft_family_valid("inet"));
	assert_true(nft_family_valid("netdev"));
	assert_false(nft_family_valid("ipx"));
	assert_false(nft_family_valid("INET"));
}

static void test_cmds_check(void **state)
{
	static const struct {
		const char *cmds;
		int rc;
	} cases[] = {
		{ "add table inet egress", 0 },
		{ "add table egress", 0 },
		{ "add table ip6 egressv6", 0 },
		{ "add table inet \"egress_q\"", 0 },
		{ "add element inet egress allow4 { 1.2.3.4, 5.6.7.8 }", 0 },
		{ "delete element inet egress allow4 { 1.2.3.4 }\nadd element inet egress allow4 "
		  "{ 5.6.7.9 }", 0 },
		{ "table inet egress {\n chain c {\n }\n}", 0 },
		{ "chain inet egress c { type filter hook output priority 0; }", 0 },
		{ "add rule inet egress c ip daddr 1.2.3.4 counter comment \"flush table ip x\"",
			0 },
		{ "# delete table ip filter\nadd table inet egress", 0 },
		{ "add chain inet egress c { comment \"}\"; }", 0 },
		{ "flush set inet egress allow4; flush chain inet egress out", 0 },
		{ "reset counters table inet egress", 0 },
		{ "add ct helper inet egress h { type \"ftp\" protocol tcp; }", 0 },
		{ "add quota inet egress q { 25 mbytes }", 0 },
		{ "rename chain inet egress a b", 0 },
		{ "rename chain ip filter a b", -EPERM },
		{ "delete table ip filter", -EPERM },
		{ "flush table ip filter", -EPERM },
		{ "add rule ip filter input drop", -EPERM },
		{ "add table inet egress; flush table ip filter", -EPERM },
		{ "add table inet egress\nflush ruleset", -EPERM },
		{ "flush ruleset", -EPERM },
		{ "list ruleset", -EPERM },
		{ "list table inet egress", -EPERM },
		{ "add table inet", -EPERM },
		{ "add table", -EPERM },
		{ "add", -EPERM },
		{ "table ip nat {\n}", -EPERM },
		{ "add table inet $t", -EPERM },
		{ "delete table inet handle 3", -EPERM },
		{ "ADD table ip filter", -EPERM },
		{ "reset counters", -EPERM },
		{ "add element inet egress s { 1.1.1.1 } ; delete table inet x", -EPERM },
		{ "add chain inet egress c { comment \"}\"; }\ndelete table ip filter", -EPERM },
		{ "add table inet egress \\\n; delete table ip filter", -EPERM },
		{ "add rule inet egress c accept # \" \ndelete table ip filter", -EPERM },
		{ "define t = filter\nadd table inet egress", -EPERM },
		{ "include \"/etc/nftables.conf\"", -EPERM },
		{ "{\"nftables\": [{\"flush\": {\"ruleset\": null}}]}", -EINVAL },
		{ "add table inet egress }", -EINVAL },
		{ "add element inet egress s { 1.1.1.1", -EINVAL },
		{ "add rule inet egress c comment \"open", -EINVAL },
		{ "", -EINVAL },
		{ "  \n# only a comment\n;", -EINVAL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *err = NULL;
		int r = nft_cmds_check_owned(cases[i].cmds, &err);

		if (r != cases[i].rc)
			fail_msg("case %zu \"%s\": got %d want %d (%s)", i, cases[i].cmds, r,
				cases[i].rc, err ? err : "");
		/* a refusal always says why; an acceptance says nothing */
		if (r == 0)
			assert_null(err);
		else
			assert_non_null(err);
		free(err);
	}
}

static void test_apply_golden(void **state)
{
	char *err = (char *)1, *s;

	(void)state;
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 0);
	assert_int_equal(nft_table_list(g_nft, "inet", "egress", 0, &s), -ENOENT);
	assert_null(s);

	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	assert_null(err);
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 1);
	/* same name, other family: absent */
	assert_int_equal(nft_table_exists(g_nft, "ip", "egress"), 0);
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress2"), 0);
	assert_int_equal(nft_table_exists(g_nft, "ipx", "egress"), -EINVAL);

	s = list("inet", "egress");
	assert_string_equal(s, golden_v1);
	free(s);

	/* the raw context sees the same thing (no private cache in our context) */
	s = raw_out("list table inet egress");
	assert_string_equal(s, golden_v1);
	free(s);

	/* stateless: counter values masked */
	assert_int_equal(nft_table_list(g_nft, "inet", "egress", NFT_LIST_STATELESS, &s), 0);
	assert_null(strstr(s, "packets"));
	assert_non_null(strstr(s, "@ports counter accept\n"));
	free(s);
	/* handles only when asked */
	assert_int_equal(nft_table_list(g_nft, "inet", "egress", NFT_LIST_HANDLES, &s), 0);
	assert_non_null(strstr(s, "# handle "));
	free(s);
	/* terse: no elements */
	assert_int_equal(nft_table_list(g_nft, "inet", "egress", NFT_LIST_TERSE, &s), 0);
	assert_null(strstr(s, "elements"));
	assert_non_null(strstr(s, "set allow4"));
	free(s);

	/* JSON agrees: 2 elements in allow4 and ports, no set "nope" */
	assert_int_equal(set_count("inet", "egress", "allow4"), 2);
	assert_int_equal(set_count("inet", "egress", "ports"), 2);
	assert_int_equal(set_count("inet", "egress", "nope"), -1);

	/* other families get tables of their own */
	assert_int_equal(nft_table_apply(g_nft, "ip6", "egress6", "chain c {\n}\n", &err), 0);
	assert_int_equal(nft_table_exists(g_nft, "ip6", "egress6"), 1);
	assert_int_equal(nft_table_exists(g_nft, "ip", "egress6"), 0);
	assert_int_equal(nft_table_apply(g_nft, "ipx", "egress6", "", &err), -EINVAL);
	assert_non_null(strstr(err, "family"));
	free(err);
}

static void test_replace(void **state)
{
	char *err = NULL, *s;

	(void)state;
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	s = list("inet", "egress");
	assert_non_null(strstr(s, "chain old"));
	assert_null(strstr(s, "chain new"));
	free(s);

	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v2, &err), 0);
	assert_null(err);
	s = list("inet", "egress");
	assert_string_equal(s, golden_v2);
	/* replaced, not merged: old chain, sets, map and counter values are gone */
	assert_null(strstr(s, "chain old"));
	assert_null(strstr(s, "mark_of"));
	assert_null(strstr(s, "packets 5"));
	assert_non_null(strstr(s, "chain new"));
	free(s);

	/* applying the same body again is a no-op in effect */
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v2, &err), 0);
	s = list("inet", "egress");
	assert_string_equal(s, golden_v2);
	free(s);
}

/* Apply v1, then bad, and check bad failed with rc/text and left v1 byte-identical. */
static void check_rejected(const char *bad, int want_rc, const char *const *want_text, size_t n)
{
	char *err = NULL, *before, *after;
	size_t i;

	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	before = list("inet", "egress");
	assert_string_equal(before, golden_v1);

	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", bad, &err), want_rc);
	assert_non_null(err);
	for (i = 0; i < n; i++)
		if (!strstr(err, want_text[i]))
			fail_msg("error text lacks \"%s\":\n%s", want_text[i], err);
	free(err);

	after = list("inet", "egress");
	assert_string_equal(after, before);
	free(before);
	free(after);
}

static void test_syntax_error(void **state)
{
	static const char bad[] =
		"chain out {\n"
		"	tpye filter hook output priority filter;\n"
		"}\n";
	static const char *const want[] = { "syntax error", "tpye" };

	(void)state;
	check_rejected(bad, -EINVAL, want, ARRAY_SIZE(want));
}

static void test_unbalanced_body(void **state)
{
	static const char escape[] = "}\ntable ip filter {\nchain c {\n}\n";
	static const char *const want1[] = { "closes more" };
	static const char *const want2[] = { "unclosed" };
	static const char *const want3[] = { "include" };

	(void)state;
	/* a body that would close our table and open someone else's is refused by us */
	check_rejected(escape, -EINVAL, want1, 1);
	assert_int_equal(nft_table_exists(g_nft, "ip", "filter"), 0);
	check_rejected("chain c {\n", -EINVAL, want2, 1);
	check_rejected("include \"/etc/nftables.conf\"\n", -EINVAL, want3, 1);
	/* braces inside strings and comments do not count */
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress",
				 "chain c {\n\tcomment \"}}\" # {\n}\n", NULL),
		0);
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 1);
}

static void test_kernel_error(void **state)
{
	/* the table delete, two sets and a chain precede the failing rule in the batch */
	static const char jump_missing[] =
		"set allow4 {\n"
		"	type ipv4_addr\n"
		"	elements = { 192.0.2.7 }\n"
		"}\n"
		"chain out {\n"
		"	type filter hook output priority filter; policy drop;\n"
		"	jump nope\n"
		"}\n";
	static const char set_full[] =
		"chain out {\n"
		"	type filter hook output priority filter; policy drop;\n"
		"}\n"
		"set full {\n"
		"	type ipv4_addr\n"
		"	size 2\n"
		"	elements = { 192.0.2.1, 192.0.2.2, 192.0.2.3 }\n"
		"}\n";
	static const char wrong_type[] =
		"set ports {\n"
		"	type inet_service\n"
		"	elements = { 80, 70000 }\n"
		"}\n";
	static const char *const want1[] = { "No such file or directory", "jump nope" };
	static const char *const want2[] = { "Could not process rule", "192.0.2.3" };
	static const char *const want3[] = { "70000", "out of range" };

	(void)state;
	check_rejected(jump_missing, -ENOENT, want1, ARRAY_SIZE(want1));
	check_rejected(set_full, -ENFILE, want2, ARRAY_SIZE(want2));
	check_rejected(wrong_type, -EINVAL, want3, ARRAY_SIZE(want3));
}

static void test_check_mode(void **state)
{
	char *err = NULL, *before, *after;

	(void)state;
	/* on an absent table: valid body passes, nothing is created */
	assert_int_equal(nft_table_check(g_nft, "inet", "egress", body_v1, &err), 0);
	assert_null(err);
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 0);

	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	before = list("inet", "egress");

	/* valid change: accepted, not applied */
	assert_int_equal(nft_table_check(g_nft, "inet", "egress", body_v2, &err), 0);
	after = list("inet", "egress");
	assert_string_equal(after, before);
	assert_null(strstr(after, "chain new"));
	free(after);

	/* kernel-side error is still found in check mode */
	assert_int_equal(nft_table_check(g_nft, "inet", "egress",
				 "chain c {\n\tjump nope\n}\n", &err),
		-ENOENT);
	assert_non_null(strstr(err, "nope"));
	free(err);
	/* syntax error too */
	assert_int_equal(nft_table_check(g_nft, "inet", "egress", "chain c {\n\tbogus\n}\n", &err),
		-EINVAL);
	assert_non_null(strstr(err, "bogus"));
	free(err);
	/* foreign name refused before anything is sent */
	assert_int_equal(nft_table_check(g_nft, "ip", "filter", "", &err), -EPERM);
	free(err);

	after = list("inet", "egress");
	assert_string_equal(after, before);
	free(after);
	free(before);
}

static void test_delete(void **state)
{
	char *err = (char *)1;

	(void)state;
	/* absent: fine */
	assert_int_equal(nft_table_delete(g_nft, "inet", "egress", &err), 0);
	assert_null(err);
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	assert_int_equal(nft_table_apply(g_nft, "ip", "egress4", "chain c {\n}\n", &err), 0);
	assert_int_equal(nft_table_delete(g_nft, "inet", "egress", &err), 0);
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 0);
	/* only that one */
	assert_int_equal(nft_table_exists(g_nft, "ip", "egress4"), 1);
	assert_int_equal(nft_table_delete(g_nft, "inet", "egress", &err), 0);
	assert_int_equal(nft_table_delete(g_nft, "ip", "egress4", &err), 0);
	assert_int_equal(nft_table_exists(g_nft, "ip", "egress4"), 0);
}

static void test_foreign_untouched(void **state)
{
	char *err = NULL, *before, *after, *s;

	(void)state;
	assert_int_equal(raw_run(foreign_ruleset), 0);
	assert_int_equal(raw_run("table inet other {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n"), 0);
	before = raw_out("list ruleset");
	assert_non_null(strstr(before, "packets 7 bytes 700"));

	/* ours come and go */
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v2, &err), 0);
	assert_int_equal(nft_run(g_nft, "add element inet egress allow4 { 192.0.2.9 }", &err), 0);
	assert_null(err);
	s = list("inet", "egress");
	assert_non_null(strstr(s, "192.0.2.9"));
	free(s);
	assert_int_equal(nft_table_delete(g_nft, "inet", "egress", &err), 0);
	after = raw_out("list ruleset");
	assert_string_equal(after, before);
	free(after);

	/* theirs cannot be named */
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	assert_int_equal(nft_table_apply(g_nft, "ip", "filter", "chain c {\n}\n", &err), -EPERM);
	assert_non_null(strstr(err, "not ours"));
	free(err);
	assert_int_equal(nft_table_delete(g_nft, "ip", "filter", &err), -EPERM);
	free(err);
	assert_int_equal(nft_table_delete(g_nft, "inet", "other", NULL), -EPERM);
	assert_int_equal(nft_run(g_nft, "flush table ip filter", &err), -EPERM);
	assert_non_null(strstr(err, "flush table ip filter"));
	free(err);
	assert_int_equal(nft_run(g_nft, "add rule ip filter input drop", &err), -EPERM);
	free(err);
	assert_int_equal(nft_run(g_nft, "flush ruleset", &err), -EPERM);
	free(err);
	/* a batch with one foreign command is refused whole: the element is not added either */
	assert_int_equal(nft_run(g_nft,
				 "add element inet egress allow4 { 192.0.2.9 }\n"
				 "delete table ip filter",
				 &err),
		-EPERM);
	free(err);
	s = list("inet", "egress");
	assert_null(strstr(s, "192.0.2.9"));
	free(s);
	/* a batch the kernel rejects half-way is not applied at all */
	assert_int_equal(nft_run(g_nft,
				 "add element inet egress allow4 { 192.0.2.10 }\n"
				 "add rule inet egress out jump nope",
				 &err),
		-ENOENT);
	assert_non_null(strstr(err, "nope"));
	free(err);
	s = list("inet", "egress");
	assert_null(strstr(s, "192.0.2.10"));
	free(s);

	assert_int_equal(nft_table_delete(g_nft, "inet", "egress", &err), 0);
	after = raw_out("list ruleset");
	assert_string_equal(after, before);
	free(after);
	free(before);
}

/* 100 000 elements, one transaction each way. */
static void test_large_set(void **state)
{
	enum { N = 100000 };
	struct nft_buf b;
	char *err = NULL;
	uint64_t t0, t_apply, t_reapply, t_json, t_bad;
	int i;

	(void)state;
	nft_buf_init(&b);
	nft_buf_add(&b, "set big {\n\ttype ipv4_addr\n\telements = { ");
	for (i = 0; i < N; i++)
		nft_buf_printf(&b, "%s10.%d.%d.%d", i ? ", " : "", (i >> 16) & 255, (i >> 8) & 255,
			i & 255);
	nft_buf_add(&b, " }\n}\n");

	t0 = now_ms();
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", b.data, &err), 0);
	t_apply = now_ms() - t0;
	t0 = now_ms();
	assert_int_equal(set_count("inet", "egress", "big"), N);
	t_json = now_ms() - t0;
	/* replacing 100 000 with 100 000 */
	t0 = now_ms();
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", b.data, &err), 0);
	t_reapply = now_ms() - t0;
	assert_int_equal(set_count("inet", "egress", "big"), N);

	/* the same elements into a set one too small: the kernel refuses the whole thing */
	nft_buf_reset(&b);
	nft_buf_add(&b, "set big {\n\ttype ipv4_addr\n\tsize 99999\n\telements = { ");
	for (i = 0; i < N; i++)
		nft_buf_printf(&b, "%s10.%d.%d.%d", i ? ", " : "", (i >> 16) & 255, (i >> 8) & 255,
			i & 255);
	nft_buf_add(&b, " }\n}\n");
	t0 = now_ms();
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", b.data, &err), -ENFILE);
	t_bad = now_ms() - t0;
	assert_non_null(err);
	free(err);
	assert_int_equal(set_count("inet", "egress", "big"), N);

	/* 1000 more through nft_run in one batch */
	nft_buf_reset(&b);
	nft_buf_add(&b, "add element inet egress big { ");
	for (i = 0; i < 1000; i++)
		nft_buf_printf(&b, "%s10.200.%d.%d", i ? ", " : "", i >> 8, i & 255);
	nft_buf_add(&b, " }");
	assert_int_equal(nft_run(g_nft, b.data, &err), 0);
	assert_int_equal(set_count("inet", "egress", "big"), N + 1000);
	nft_buf_clear(&b);

	print_message("100000 elements: apply %llu ms, re-apply %llu ms, refused apply %llu ms, "
		      "JSON read-back %llu ms\n",
		(unsigned long long)t_apply, (unsigned long long)t_reapply,
		(unsigned long long)t_bad, (unsigned long long)t_json);
}

static void test_ruleset_dump_restore(void **state)
{
	char *err = NULL, *dump, *before, *s;
	struct nft_buf b;

	(void)state;
	assert_int_equal(raw_run(foreign_ruleset), 0);
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v1, &err), 0);
	assert_int_equal(nft_ruleset_dump(g_nft, &dump), 0);
	assert_non_null(strstr(dump, "table ip filter"));
	assert_non_null(strstr(dump, "packets 7 bytes 700"));
	assert_non_null(strstr(dump, "table inet egress"));

	/* change everything, then restore */
	assert_int_equal(raw_run("delete table ip filter"), 0);
	assert_int_equal(raw_run("add table ip nat"), 0);
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body_v2, &err), 0);
	assert_int_equal(nft_ruleset_dump(g_nft, &s), 0);
	assert_string_not_equal(s, dump);
	free(s);

	assert_int_equal(nft_ruleset_restore(g_nft, dump, &err), 0);
	assert_null(err);
	assert_int_equal(nft_ruleset_dump(g_nft, &s), 0);
	assert_string_equal(s, dump);
	free(s);
	s = raw_out("list ruleset");
	assert_string_equal(s, dump);
	free(s);

	/* a restore the kernel rejects leaves the ruleset as it was: flush is in the batch, and
	 * the kernel only refuses the set after it has processed the flush */
	assert_int_equal(raw_run("add table ip nat"), 0);
	assert_int_equal(nft_ruleset_dump(g_nft, &before), 0);
	nft_buf_init(&b);
	nft_buf_add(&b, dump);
	nft_buf_add(&b, "table inet egress_bad {\n\tset s {\n\t\ttype ipv4_addr\n\t\tsize 1\n"
			"\t\telements = { 192.0.2.1, 192.0.2.2 }\n\t}\n}\n");
	assert_int_equal(nft_ruleset_restore(g_nft, b.data, &err), -ENFILE);
	assert_non_null(strstr(err, "192.0.2.2"));
	free(err);
	assert_int_equal(nft_ruleset_dump(g_nft, &s), 0);
	assert_string_equal(s, before);
	assert_non_null(strstr(s, "table ip nat"));
	free(s);
	/* the same with an error found before the kernel sees anything */
	nft_buf_reset(&b);
	nft_buf_add(&b, dump);
	nft_buf_add(&b, "table inet egress_bad {\n\tchain c {\n\t\tbogus\n\t}\n}\n");
	assert_int_equal(nft_ruleset_restore(g_nft, b.data, &err), -EINVAL);
	assert_non_null(strstr(err, "bogus"));
	free(err);
	assert_int_equal(nft_ruleset_dump(g_nft, &s), 0);
	assert_string_equal(s, before);
	free(s);
	free(before);
	nft_buf_clear(&b);
	free(dump);
}

/* One context serves many calls, sees changes made by others, leaks nothing. */
static void test_ctx_reuse(void **state)
{
	char *err = NULL, *s;
	int fds, i;
	uint64_t t0;

	(void)state;
	fds = count_fds();
	t0 = now_ms();
	for (i = 0; i < 200; i++) {
		char body[128];

		snprintf(body, sizeof(body), "chain c%d {\n\tcounter\n}\n", i);
		assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body, &err), 0);
		assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 1);
		assert_int_equal(nft_table_list(g_nft, "inet", "egress", NFT_LIST_STATELESS, &s),
			0);
		snprintf(body, sizeof(body), "chain c%d {", i);
		assert_non_null(strstr(s, body));
		free(s);
		assert_int_equal(nft_table_apply(g_nft, "inet", "egress", "chain x {\n\tjump y\n}\n",
					 &err),
			-ENOENT);
		free(err);
	}
	print_message("200 x (apply + exists + list + failed apply): %llu ms\n",
		(unsigned long long)(now_ms() - t0));
	assert_int_equal(count_fds(), fds);

	/* changes made through another context are seen at once ... */
	assert_int_equal(raw_run("add table inet egress_ext"), 0);
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress_ext"), 1);
	assert_int_equal(nft_table_delete(g_nft, "inet", "egress_ext", &err), 0);
	assert_int_equal(raw_run("list table inet egress_ext"), -1);
	/* ... both ways */
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress_ext"), 0);
}

/*
 * The context is bound to the namespace it was created in: a child that moves to yet another
 * namespace still sees this one through the inherited context, and nothing through a new one.
 */
static void test_ctx_netns_bound(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(nft_table_apply(g_nft, "inet", "egress", "chain c {\n}\n", NULL), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct nft *n2;
		int a, b;

		if (unshare(CLONE_NEWNET) < 0)
			_exit(10);
		a = nft_table_exists(g_nft, "inet", "egress");
		n2 = nft_new();
		b = n2 ? nft_table_exists(n2, "inet", "egress") : -1;
		nft_free(n2);
		_exit(a == 1 && b == 0 ? 0 : 20 + (a + 1) * 3 + (b + 1));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_buf(void **state)
{
	struct nft_buf b;
	char *s;
	int i;

	(void)state;
	nft_buf_init(&b);
	assert_string_equal(b.data, "");
	for (i = 0; i < 10000; i++)
		nft_buf_printf(&b, "%d,", i % 10);
	assert_int_equal(b.len, 20000);
	assert_int_equal(strlen(b.data), 20000);
	assert_memory_equal(b.data + 19990, "5,6,7,8,9,", 10);
	nft_buf_reset(&b);
	assert_int_equal(b.len, 0);
	nft_buf_add(&b, "abc");
	s = nft_buf_steal(&b);
	assert_string_equal(s, "abc");
	assert_string_equal(b.data, "");
	assert_ptr_not_equal(s, b.data);
	free(s);
	nft_buf_clear(&b);
	assert_null(b.data);
	/* usable again after clear */
	nft_buf_reset(&b);
	nft_buf_printf(&b, "%s-%d", "x", 1);
	nft_buf_add(&b, "!");
	assert_string_equal(b.data, "x-1!");
	nft_buf_clear(&b);
	nft_buf_add(&b, "y");
	assert_string_equal(b.data, "y");
	nft_buf_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cmds_check),
		cmocka_unit_test_setup(test_apply_golden, setup),
		cmocka_unit_test_setup(test_replace, setup),
		cmocka_unit_test_setup(test_syntax_error, setup),
		cmocka_unit_test_setup(test_unbalanced_body, setup),
		cmocka_unit_test_setup(test_kernel_error, setup),
		cmocka_unit_test_setup(test_check_mode, setup),
		cmocka_unit_test_setup(test_delete, setup),
		cmocka_unit_test_setup(test_foreign_untouched, setup),
		cmocka_unit_test_setup(test_large_set, setup),
		cmocka_unit_test_setup(test_ruleset_dump_restore, setup),
		cmocka_unit_test_setup(test_ctx_reuse, setup),
		cmocka_unit_test_setup(test_ctx_netns_bound, setup),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_nft_kernel: needs root (private network namespace); skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
