/*
 * test_textdiff.c - unit tests for src/core/textdiff.c: the unified format of diff -u (the
 * expected outputs are what GNU diff -u prints for the same texts, heads aside), hunks that
 * merge or stay apart, texts that end without a newline, and the bound on the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "textdiff.h"
#include "util.h"

static void expect_diff(const char *a, const char *b, const char *want)
{
	char *got = text_diff(a, b, "running", "posted");

	if (!streq(got, want)) {
		fprintf(stderr, "--- got\n%s--- wanted\n%s---\n", got, want);
		fail_msg("diff differs");
	}
	free(got);
}

static void test_same(void **state)
{
	(void)state;
	expect_diff("", "", "");
	expect_diff("a\nb\n", "a\nb\n", "");
}

static void test_one_change(void **state)
{
	(void)state;
	expect_diff("[uplink isp1]\ninterface = eth1\nweight = 1\n",
		"[uplink isp1]\ninterface = eth1\nweight = 3\n",
		"--- running\n+++ posted\n"
		"@@ -1,3 +1,3 @@\n"
		" [uplink isp1]\n"
		" interface = eth1\n"
		"-weight = 1\n"
		"+weight = 3\n");
}

static void test_add_and_remove(void **state)
{
	(void)state;
	/* to and from nothing: a range of no lines starts at line 0 */
	expect_diff("", "a\nb\n", "--- running\n+++ posted\n@@ -0,0 +1,2 @@\n+a\n+b\n");
	expect_diff("a\nb\n", "", "--- running\n+++ posted\n@@ -1,2 +0,0 @@\n-a\n-b\n");
	/* a line put in the middle */
	expect_diff("1\n2\n3\n4\n5\n6\n7\n8\n", "1\n2\n3\n4\nnew\n5\n6\n7\n8\n",
		"--- running\n+++ posted\n"
		"@@ -2,6 +2,7 @@\n"
		" 2\n 3\n 4\n+new\n 5\n 6\n 7\n");
}

static void test_hunks(void **state)
{
	(void)state;
	/* changes 4 lines apart share a hunk; 8 apart get two */
	expect_diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n",
		"1\nB\n3\n4\n5\n6\nF\n8\n9\n10\n11\n12\n13\n14\n15\nP\n17\n18\n19\n20\n",
		"--- running\n+++ posted\n"
		"@@ -1,10 +1,10 @@\n"
		" 1\n-2\n+B\n 3\n 4\n 5\n 6\n-7\n+F\n 8\n 9\n 10\n"
		"@@ -13,7 +13,7 @@\n"
		" 13\n 14\n 15\n-16\n+P\n 17\n 18\n 19\n");
}

static void test_no_newline_at_end(void **state)
{
	(void)state;
	expect_diff("a\nb", "a\nc", "--- running\n+++ posted\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
}

static void test_bound(void **state)
{
	/* past TEXTDIFF_MAX_CELLS the middle is told apart as a whole, still a valid diff */
	size_t n = 2100, len = n * 8 + 1;
	char *a = xmalloc(len), *b = xmalloc(len), *p = a, *q = b;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		p += sprintf(p, "%zu\n", i);
		q += sprintf(q, "%zu\n", i % 2 && i != n - 1 ? i : i + 100000);
	}
	char *d = text_diff(a, b, "running", "posted");
	size_t minus = 0, plus = 0;
	for (const char *l = d; *l; l = strchr(l, '\n') + 1) {
		minus += l[0] == '-' && l[1] != '-';
		plus += l[0] == '+' && l[1] != '+';
	}
	assert_int_equal(minus, n); /* the first and last lines differ: no head, no tail */
	assert_int_equal(plus, n);
	free(d);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_one_change),
		cmocka_unit_test(test_add_and_remove),
		cmocka_unit_test(test_hunks),
		cmocka_unit_test(test_no_newline_at_end),
		cmocka_unit_test(test_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
