/*
 * test_xt_legacy_kernel.c - iptables-legacy tables saved and put back (src/net/xt_legacy.c):
 * the text form against hand-made lines, and the kernel round trip in a private network
 * namespace (unshare(CLONE_NEWNET)), where a table is changed through the same socket options
 * and must come back byte for byte, counters included.
 *
 * Nothing runs before the unshare() succeeded; the namespace dies with the process.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include <cmocka.h>

#include "kernel_test.h"
#include "util.h"
#include "xt_legacy.h"

/* ---- the text form -------------------------------------------------------------------- */

/* A table of two minimal entries (header only, next_offset = the entry's size). */
static void fake_table(struct xt_legacy_table *t, int family)
{
	size_t esz = family == AF_INET6 ? sizeof(struct ip6t_entry) : sizeof(struct ipt_entry);
	size_t at = family == AF_INET6 ? offsetof(struct ip6t_entry, next_offset)
				       : offsetof(struct ipt_entry, next_offset);
	uint16_t next = (uint16_t)esz;

	memset(t, 0, sizeof(*t));
	t->family = family;
	strcpy(t->name, "filter");
	t->valid_hooks = 0x0e;
	t->num_entries = 2;
	t->size = (unsigned)(2 * esz);
	t->entries = xcalloc(1, t->size);
	for (int i = 0; i < 2; i++)
		memcpy(t->entries + i * esz + at, &next, sizeof(next));
	for (int h = 1; h <= 3; h++)
		t->hook_entry[h] = t->underflow[h] = (unsigned)esz;
	t->entries[5] = 0xab; /* something for base64 to carry */
}

static void test_format_parse_round_trip(void **state)
{
	for (int fam = 0; fam < 2; fam++) {
		struct xt_legacy_table t, back;
		char *line, *err;

		fake_table(&t, fam ? AF_INET6 : AF_INET);
		line = xt_legacy_format(&t);
		assert_non_null(line);
		assert_true(!strncmp(line,
			fam ? "# xt-legacy ipv6 filter 14 2 " : "# xt-legacy ipv4 filter 14 2 ",
			29));
		assert_int_equal(xt_legacy_parse(line, strlen(line), &back, &err), 0);
		assert_null(err);
		assert_int_equal(back.family, t.family);
		assert_string_equal(back.name, "filter");
		assert_int_equal(back.valid_hooks, 14);
		assert_int_equal(back.size, t.size);
		assert_memory_equal(back.hook_entry, t.hook_entry, sizeof(t.hook_entry));
		assert_memory_equal(back.underflow, t.underflow, sizeof(t.underflow));
		assert_memory_equal(back.entries, t.entries, t.size);
		free(line);
		xt_legacy_table_clear(&back);
		xt_legacy_table_clear(&t);
	}
}

/* Each damaged line is refused with a message naming the part. */
static void test_parse_refuses(void **state)
{
	struct xt_legacy_table t, back;
	char *good, *line, *err;
	static const struct {
		const char *from, *to, *says;
	} cases[] = {
		{"ipv4", "ipv5", "family"},
		{" filter ", " Filter ", "table name"},
		{" 14 ", " 32 ", "hooks"},
		{" 14 2 ", " 14 0 ", "entries"},
		{" 14 2 ", " 14 3 ", "do not add up"},
		{" 14 2 224 ", " 14 2 99999999999 ", "size"},
		{" 14 2 224 ", " 14 2 225 ", "base64"},
		{" 0,112,112,112,0 ", " 0,112,112,999,0 ", "outside"},
		{" 0,112,112,112,0 ", " 0,112,112,112 ", "hook entries"},
		{"AAAA", "AA!A", "base64"},
	};

	fake_table(&t, AF_INET);
	good = xt_legacy_format(&t);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *at = strstr(good, cases[i].from);
		assert_non_null(at);
		assert_true(asprintf(&line, "%.*s%s%s", (int)(at - good), good, cases[i].to,
				    at + strlen(cases[i].from)) > 0);
		assert_int_equal(xt_legacy_parse(line, strlen(line), &back, &err), -EBADMSG);
		assert_non_null(err);
		if (!strstr(err, cases[i].says))
			fail_msg("case %zu: \"%s\" does not say %s", i, err, cases[i].says);
		free(err);
		free(line);
	}
	/* trailing words and a missing prefix */
	assert_true(asprintf(&line, "%s x", good) > 0);
	assert_int_equal(xt_legacy_parse(line, strlen(line), &back, &err), -EBADMSG);
	free(err);
	free(line);
	assert_int_equal(xt_legacy_parse(good + 2, strlen(good + 2), &back, &err), -EBADMSG);
	free(err);
	/* len bounds the line: a cut line is not read past its end */
	assert_int_equal(xt_legacy_parse(good, strlen(good) - 4, &back, &err), -EBADMSG);
	free(err);
	free(good);
	xt_legacy_table_clear(&t);
}

/* ---- against the kernel --------------------------------------------------------------- */

static int group_setup(void **state)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* The policy verdict of hook h: the standard target at the end of its underflow entry. */
static int *policy_verdict(struct xt_legacy_table *t, int h)
{
	unsigned char *e = t->entries + t->underflow[h];
	uint16_t target_offset;

	if (t->family == AF_INET6)
		memcpy(&target_offset, e + offsetof(struct ip6t_entry, target_offset), 2);
	else
		memcpy(&target_offset, e + offsetof(struct ipt_entry, target_offset), 2);
	return (int *)(void *)(e + target_offset + offsetof(struct xt_standard_target, verdict));
}

static struct xt_counters *counters_of(struct xt_legacy_table *t, int h)
{
	size_t at = t->family == AF_INET6 ? offsetof(struct ip6t_entry, counters)
					  : offsetof(struct ipt_entry, counters);
	return (struct xt_counters *)(void *)(t->entries + t->underflow[h] + at);
}

static void round_trip(int family)
{
	struct xt_legacy_table saved, changed, now, *all;
	size_t n;
	char *err;
	int r;

	/* a new namespace uses none: saving creates nothing */
	if (family == AF_INET) {
		assert_int_equal(xt_legacy_save_all(&all, &n, NULL), 0);
		assert_int_equal(n, 0);
		xt_legacy_tables_free(all, n);
	}
	r = xt_legacy_get(family, "filter", &saved);
	if (r == -ENOENT || r == -ENOPROTOOPT) {
		kt_skip("kernel has no iptables-legacy x_tables (only hosts that use them need it)");
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(saved.valid_hooks, 0x0e); /* INPUT, FORWARD, OUTPUT */
	/* now in use, so saved by save_all, and the same as asked for */
	assert_int_equal(xt_legacy_save_all(&all, &n, NULL), 0);
	assert_true(n >= 1);
	assert_int_equal(all[n - 1].family, family);
	assert_string_equal(all[n - 1].name, "filter");
	assert_memory_equal(all[n - 1].entries, saved.entries, saved.size);
	xt_legacy_tables_free(all, n);
	assert_int_equal(*policy_verdict(&saved, NF_INET_FORWARD), -NF_ACCEPT - 1);

	/* change: FORWARD's policy to DROP */
	assert_int_equal(xt_legacy_get(family, "filter", &changed), 0);
	*policy_verdict(&changed, NF_INET_FORWARD) = -NF_DROP - 1;
	assert_int_equal(xt_legacy_replace(&changed, &err), 0);
	assert_null(err);
	assert_int_equal(xt_legacy_get(family, "filter", &now), 0);
	assert_int_equal(*policy_verdict(&now, NF_INET_FORWARD), -NF_DROP - 1);
	xt_legacy_table_clear(&now);

	/* put back, with counters the kernel must hand back as they were saved */
	counters_of(&saved, NF_INET_FORWARD)->pcnt = 7;
	counters_of(&saved, NF_INET_FORWARD)->bcnt = 700;
	assert_int_equal(xt_legacy_replace(&saved, &err), 0);
	assert_null(err);
	assert_int_equal(xt_legacy_get(family, "filter", &now), 0);
	assert_int_equal(now.size, saved.size);
	assert_int_equal(now.num_entries, saved.num_entries);
	assert_memory_equal(now.entries, saved.entries, saved.size);
	assert_int_equal(counters_of(&now, NF_INET_FORWARD)->pcnt, 7);
	xt_legacy_table_clear(&now);

	/* a table the kernel does not have: refused with its name, nothing else changed */
	strcpy(changed.name, "nosuchtable");
	assert_true(xt_legacy_replace(&changed, &err) < 0);
	assert_non_null(err);
	assert_non_null(strstr(err, "nosuchtable"));
	free(err);
	assert_int_equal(xt_legacy_get(family, "filter", &now), 0);
	assert_memory_equal(now.entries, saved.entries, saved.size);
	xt_legacy_table_clear(&now);

	/* a blob the kernel's checks refuse (a jump out of the table): refused */
	xt_legacy_table_clear(&changed);
	assert_int_equal(xt_legacy_get(family, "filter", &changed), 0);
	*policy_verdict(&changed, NF_INET_FORWARD) = (int)changed.size + 64;
	assert_true(xt_legacy_replace(&changed, &err) < 0);
	free(err);
	xt_legacy_table_clear(&changed);
	xt_legacy_table_clear(&saved);
}

static void test_kernel_round_trip_ipv4(void **state)
{
	round_trip(AF_INET);
}

static void test_kernel_round_trip_ipv6(void **state)
{
	round_trip(AF_INET6);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_parse_refuses),
	};
	const struct CMUnitTest kernel[] = {
		cmocka_unit_test(test_kernel_round_trip_ipv4),
		cmocka_unit_test(test_kernel_round_trip_ipv6),
	};
	int r = cmocka_run_group_tests_name("xt_legacy text", pure, NULL, NULL);

	r += cmocka_run_group_tests_name("xt_legacy kernel", kernel, group_setup, NULL);
	return kt_exit_status(r);
}
