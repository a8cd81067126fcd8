/*
 * test_sysctl.c - unit tests for src/core/sysctl.c over a temporary directory standing in
 * for /proc/sys: a hold writes and a release puts back; shared holds are counted; a
 * conflicting hold is refused; a value changed by someone else stays; release order is
 * newest first; mark and sweep; keep leaves the values.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sysctl.h"

static char dir[] = "/tmp/test_sysctl.XXXXXX";
static const int A, B; /* owners */

static void put(const char *key, const char *value)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(value, f);
	fclose(f);
}

static int get(const char *key)
{
	int v = -1;

	assert_int_equal(sysctl_read(key, &v), 0);
	return v;
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	sysctl_set_root(dir);
	put("rp", "0\n");
	put("fwd", "0\n");
	put("svm", "1\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sysctl_release_all(&A, true);
	sysctl_release_all(&B, true);
	for (const char *const *k = (const char *const[]){"rp", "fwd", "svm", NULL}; *k; k++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, *k);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

static void test_hold_and_put_back(void **state)
{
	(void)state;
	assert_int_equal(sysctl_hold(&A, "rp", 2, "test"), 0);
	assert_int_equal(get("rp"), 2);
	/* a hold of a value already there changes nothing and puts nothing back */
	assert_int_equal(sysctl_hold(&A, "svm", 1, "test"), 0);
	put("svm", "0\n");
	sysctl_release_all(&A, false);
	assert_int_equal(get("rp"), 0);
	assert_int_equal(get("svm"), 0);
}

static void test_shared_and_conflicting(void **state)
{
	(void)state;
	assert_int_equal(sysctl_hold(&A, "fwd", 1, "a"), 0);
	assert_int_equal(sysctl_hold(&B, "fwd", 1, "b"), 0);
	assert_int_equal(sysctl_hold(&B, "rp", 1, "b"), 0);
	assert_int_equal(sysctl_hold(&A, "rp", 2, "a"), -EBUSY);
	assert_int_equal(get("rp"), 1);
	sysctl_release_all(&A, false);
	assert_int_equal(get("fwd"), 1); /* B still holds it */
	sysctl_release(&B, "fwd");
	assert_int_equal(get("fwd"), 0);
	sysctl_release_all(&B, false);
	assert_int_equal(get("rp"), 0);
}

static void test_changed_by_someone_else(void **state)
{
	(void)state;
	assert_int_equal(sysctl_hold(&A, "rp", 2, "test"), 0);
	put("rp", "1\n");
	sysctl_release_all(&A, false);
	assert_int_equal(get("rp"), 1);
	put("rp", "0\n");
}

static void test_mark_and_sweep(void **state)
{
	(void)state;
	assert_int_equal(sysctl_hold(&A, "fwd", 1, "test"), 0);
	assert_int_equal(sysctl_hold(&A, "rp", 2, "test"), 0);
	sysctl_mark(&A);
	assert_int_equal(sysctl_hold(&A, "rp", 2, "test"), 0);
	sysctl_sweep(&A);
	assert_int_equal(get("fwd"), 0);
	assert_int_equal(get("rp"), 2);
	sysctl_release_all(&A, false);
	assert_int_equal(get("rp"), 0);
}

static void test_keep(void **state)
{
	(void)state;
	assert_int_equal(sysctl_hold(&A, "rp", 2, "test"), 0);
	sysctl_release_all(&A, true);
	assert_int_equal(get("rp"), 2);
	/* forgotten: a new hold takes 2 as the old value */
	assert_int_equal(sysctl_hold(&A, "rp", 1, "test"), 0);
	sysctl_release_all(&A, false);
	assert_int_equal(get("rp"), 2);
	put("rp", "0\n");
}

static void test_missing(void **state)
{
	(void)state;
	assert_int_equal(sysctl_hold(&A, "nosuch", 1, "test"), -ENOENT);
	sysctl_release_all(&A, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold_and_put_back),
		cmocka_unit_test(test_shared_and_conflicting),
		cmocka_unit_test(test_changed_by_someone_else),
		cmocka_unit_test(test_mark_and_sweep),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_missing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
