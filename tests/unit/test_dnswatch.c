/*
 * test_dnswatch.c - the DNS watch (src/core/dnswatch.c): subscribers called in order with
 * the answer, the same one refused twice, unsubscribing from inside a callback, wanted().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dnswatch.h"

static struct dnswatch *g_w;
static char g_order[16];
static int g_n;

static void a_cb(void *arg, const struct dnswatch_answer *a)
{
	assert_int_equal(a->n_names, 1);
	g_order[g_n++] = *(const char *)arg;
}

/* unsubscribes itself and the one after it */
static void self_cb(void *arg, const struct dnswatch_answer *a)
{
	(void)a;
	g_order[g_n++] = 's';
	dnswatch_unsubscribe(g_w, self_cb, arg);
	dnswatch_unsubscribe(g_w, a_cb, "b");
}

static void test_watch(void **state)
{
	const char *names[] = {"example.com"};
	struct dnswatch_answer ans = {.names = names, .n_names = 1};

	(void)state;
	assert_int_equal(dnswatch_new(&g_w), 0);
	assert_false(dnswatch_wanted(g_w));
	dnswatch_answer(g_w, &ans); /* nobody: nothing */
	assert_int_equal(dnswatch_subscribe(g_w, a_cb, "a"), 0);
	assert_int_equal(dnswatch_subscribe(g_w, a_cb, "a"), -EEXIST);
	assert_int_equal(dnswatch_subscribe(g_w, self_cb, NULL), 0);
	assert_int_equal(dnswatch_subscribe(g_w, a_cb, "b"), 0);
	assert_int_equal(dnswatch_subscribe(g_w, a_cb, "c"), 0);
	assert_true(dnswatch_wanted(g_w));
	dnswatch_answer(g_w, &ans);
	assert_int_equal(g_n, 3);
	assert_memory_equal(g_order, "asc", 3);
	g_n = 0;
	dnswatch_answer(g_w, &ans);
	assert_int_equal(g_n, 2);
	assert_memory_equal(g_order, "ac", 2);
	dnswatch_unsubscribe(g_w, a_cb, "a");
	dnswatch_unsubscribe(g_w, a_cb, "c");
	assert_false(dnswatch_wanted(g_w));
	assert_false(dnswatch_wanted(NULL));
	dnswatch_free(g_w);
	dnswatch_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
