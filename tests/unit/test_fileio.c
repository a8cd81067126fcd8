/*
 * test_fileio.c - unit tests for src/core/fileio.c: a file replaced whole, its mode, what a
 * failed write leaves (nothing beside it, the old file), reads bounded by size.
 *
 * Works in a temporary folder of its own, removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"
#include "util.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_fileio.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, remove_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static size_t entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_write_read(void **state)
{
	char path[128], *text = NULL;
	struct stat st;
	size_t len = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/settings.json", dir);
	assert_int_equal(file_read(path, 1024, &text, &len), -ENOENT);
	assert_int_equal(file_write_atomic(path, "old\n", 4, 0600), 0);
	assert_int_equal(file_write_atomic(path, "new text\n", 9, 0640), 0);
	assert_int_equal(file_read(path, 1024, &text, &len), 0);
	assert_string_equal(text, "new text\n");
	assert_int_equal(len, 9);
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(entries(dir), 1); /* no temporary file left */
	/* a bound: exactly max passes, one more is refused */
	assert_int_equal(file_read(path, 9, &text, NULL), 0);
	free(text);
	assert_int_equal(file_read(path, 8, &text, NULL), -EFBIG);
	/* an empty file */
	assert_int_equal(file_write_atomic(path, "", 0, 0600), 0);
	assert_int_equal(file_read(path, 8, &text, &len), 0);
	assert_string_equal(text, "");
	assert_int_equal(len, 0);
	free(text);
	unlink(path);
}

static void test_failed_write_leaves_the_old_file(void **state)
{
	char path[128], sub[128], *text = NULL;

	(void)state;
	/* a folder in the way of the rename: refused, the folder stays, nothing beside it */
	snprintf(sub, sizeof(sub), "%s/taken", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/taken/x", dir);
	assert_int_equal(file_write_atomic(path, "x", 1, 0600), 0);
	assert_int_equal(file_write_atomic(sub, "data", 4, 0600), -EISDIR);
	assert_int_equal(entries(dir), 1);
	assert_int_equal(file_read(path, 16, &text, NULL), 0);
	assert_string_equal(text, "x");
	free(text);
	/* a folder that does not exist */
	snprintf(path, sizeof(path), "%s/none/x", dir);
	assert_int_equal(file_write_atomic(path, "x", 1, 0600), -ENOENT);
}

static void test_dir_ensure(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(dir_ensure(path, 0700), 0);
	assert_int_equal(dir_ensure(path, 0700), 0); /* there already */
	snprintf(path, sizeof(path), "%s/file", dir);
	assert_int_equal(file_write_atomic(path, "", 0, 0600), 0);
	assert_int_equal(dir_ensure(path, 0700), -ENOTDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_failed_write_leaves_the_old_file),
		cmocka_unit_test(test_dir_ensure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
