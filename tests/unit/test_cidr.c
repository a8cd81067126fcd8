/*
 * test_cidr.c - unit tests for src/core/cidr.c: address and prefix parsing and formatting,
 * address arithmetic, and exact set algebra on prefix sets of both families.
 *
 * Expected prefix lists were worked out independently (by hand, or with Python's ipaddress
 * module for the reserved-range complements).  The randomised tests check every result
 * against a brute-force membership test over the input prefixes; their seed is fixed so a
 * failure reproduces.  Pure computation: no network, no kernel, no files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"
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

/* Replace s by the prefixes of list. */
static void set_of(struct pfxset *s, const char *list)
{
	const char *bad = NULL;
	int r;

	pfxset_clear(s);
	r = pfxset_parse(s, list, CIDR_BARE, &bad);
	if (r < 0)
		fail_msg("pfxset_parse(\"%s\") = %d at \"%s\"", list, r, bad ? bad : "");
}

/* The prefixes of family in s as one space-separated string, in a static buffer. */
static const char *cidrs_of(const struct pfxset *s, int family)
{
	static char out[65536];
	struct cidr *v = NULL;
	size_t n = 0, len = 0;
	char buf[CIDR_STRLEN];

	assert_int_equal(pfxset_to_cidrs(s, family, &v, &n), 0);
	assert_int_equal(n, pfxset_count_cidrs(s, family));
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "",
			cidr_str(&v[i], buf, sizeof(buf)));
		assert_true(len < sizeof(out));
	}
	free(v);
	return out;
}

static void expect_cidrs(const struct pfxset *s, int family, const char *expected)
{
	assert_string_equal(cidrs_of(s, family), expected);
}

/* xorshift64*: deterministic, good enough to spread prefixes around. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* ---------------------------------------------------------------- addresses */

static void test_addr_parse(void **state)
{
	static const char *const good[] = {
		"0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.1", "::", "::1",
		"2001:db8::1", "2001:DB8::A", "fe80::1:2:3:4", "::ffff:192.0.2.1",
		"1:2:3:4:5:6:7:8", "64:ff9b::192.0.2.33",
	};
	static const char *const bad[] = {
		"", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4x", "01.2.3.4", "1.02.3.4", "1.2.3",
		"1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "0x1.2.3.4", "1.2.3.4/32", "localhost",
		":::", "1::2::3", "g::1", "fe80::1%lo", "1:2:3:4:5:6:7:8:9", "::ffff:1.2.3",
		"2001:db8::1 ", "[::1]",
	};
	struct addr a;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		memset(&a, 0xaa, sizeof(a));
		assert_int_equal(addr_parse(good[i], &a), 0);
		assert_int_equal(a.family, strchr(good[i], ':') ? AF_INET6 : AF_INET);
		assert_true(addr_is_set(&a));
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		a.family = 12345;
		if (addr_parse(bad[i], &a) != -EINVAL)
			fail_msg("addr_parse accepted \"%s\"", bad[i]);
		assert_int_equal(a.family, 12345); /* untouched on error */
	}
	assert_int_equal(addr_parse(NULL, &a), -EINVAL);

	/* The bytes are in network order. */
	a = A("10.1.2.3");
	assert_int_equal(a.b[0], 10);
	assert_int_equal(a.b[3], 3);
	assert_int_equal(ntohl(a.v4.s_addr), 0x0a010203);
	a = A("2001:db8::ff");
	assert_int_equal(a.b[0], 0x20);
	assert_int_equal(a.b[3], 0xb8);
	assert_int_equal(a.b[15], 0xff);

	/* Family restriction. */
	assert_int_equal(addr_parse_family("1.2.3.4", AF_INET, &a), 0);
	assert_int_equal(addr_parse_family("1.2.3.4", AF_INET6, &a), -EINVAL);
	assert_int_equal(addr_parse_family("::1", AF_INET6, &a), 0);
	assert_int_equal(addr_parse_family("::1", AF_INET, &a), -EINVAL);
	assert_int_equal(addr_parse_family("::1", AF_UNSPEC, &a), 0);
	assert_int_equal(addr_parse_family("::1", AF_PACKET, &a), -EAFNOSUPPORT);
}

static void test_addr_str(void **state)
{
	static const char *const pairs[][2] = {
		{ "1.2.3.4", "1.2.3.4" },
		{ "0.0.0.0", "0.0.0.0" },
		{ "2001:DB8:0:0:0:0:0:1", "2001:db8::1" },
		{ "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },
		{ "0:0:0:0:0:0:0:0", "::" },
		{ "::ffff:10.0.0.1", "::ffff:10.0.0.1" },
		{ "FFFF:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};
	char buf[ADDR_STRLEN], small[4];
	struct addr a, b;

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		a = A(pairs[i][0]);
		assert_ptr_equal(addr_str(&a, buf, sizeof(buf)), buf);
		assert_string_equal(buf, pairs[i][1]);
		b = A(buf);
		assert_true(addr_eq(&a, &b));
	}
	memset(&a, 0, sizeof(a));
	assert_false(addr_is_set(&a));
	assert_false(addr_is_any(&a)); /* unset is not "any" */
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "unset");
	a = A("0.0.0.0");
	assert_true(addr_is_any(&a));
	a = A("::");
	assert_true(addr_is_any(&a));
	a = A("0.0.0.1");
	assert_false(addr_is_any(&a));
	a = A("::1");
	assert_false(addr_is_any(&a));
	a = A("8000::");
	assert_false(addr_is_any(&a));
	/* Too small a buffer still yields a terminated string. */
	a = A("192.168.100.200");
	addr_str(&a, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
}

static void test_addr_cmp(void **state)
{
	struct addr unset = { 0 }, a = A("10.0.0.1"), b = A("10.0.0.2"), c = A("255.255.255.255"),
		    d = A("::"), e = A("::1");

	assert_int_equal(addr_cmp(&a, &b), -1);
	assert_int_equal(addr_cmp(&b, &a), 1);
	assert_int_equal(addr_cmp(&a, &a), 0);
	assert_int_equal(addr_cmp(&c, &d), -1); /* every IPv4 sorts before IPv6 */
	assert_int_equal(addr_cmp(&d, &c), 1);
	assert_int_equal(addr_cmp(&d, &e), -1);
	assert_int_equal(addr_cmp(&unset, &a), -1);
	assert_true(addr_eq(&unset, &unset));
	assert_true(addr_eq(&e, &e));
	assert_false(addr_eq(&d, &e));
	/* Same bytes, other family: different. */
	memset(&d, 0, sizeof(d));
	d.family = AF_INET6;
	a = A("0.0.0.0");
	assert_false(addr_eq(&a, &d));
	assert_int_equal(addr_len(AF_INET), 4);
	assert_int_equal(addr_len(AF_INET6), 16);
	assert_int_equal(addr_len(0), 0);
}

static void expect_add(const char *start, uint64_t n, int err, const char *expected)
{
	struct addr a = A(start), before = a;
	char buf[ADDR_STRLEN];

	assert_int_equal(addr_add(&a, n), err);
	if (err) {
		assert_true(addr_eq(&a, &before));
		return;
	}
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), expected);
}

static void test_addr_add(void **state)
{
	struct addr unset = { 0 };

	expect_add("10.0.0.10", 0, 0, "10.0.0.10");
	expect_add("10.0.0.10", 5, 0, "10.0.0.15");
	expect_add("10.0.0.255", 1, 0, "10.0.1.0");
	expect_add("10.255.255.255", 1, 0, "11.0.0.0");
	expect_add("0.0.0.0", 0xffffffff, 0, "255.255.255.255");
	expect_add("255.255.255.254", 1, 0, "255.255.255.255");
	expect_add("255.255.255.254", 2, -ERANGE, NULL);
	expect_add("0.0.0.1", 0xffffffff, -ERANGE, NULL);
	expect_add("1.2.3.4", UINT64_MAX, -ERANGE, NULL);
	expect_add("::", 1, 0, "::1");
	expect_add("::1:ffff:ffff", 1, 0, "::2:0:0");
	expect_add("::ffff:ffff:ffff:ffff", 1, 0, "0:0:0:1::");
	expect_add("2001:db8::", UINT64_MAX, 0, "2001:db8::ffff:ffff:ffff:ffff");
	expect_add("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 1, 0,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_add("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 2, -ERANGE, NULL);
	expect_add("ffff:ffff:ffff:ffff::", UINT64_MAX, 0,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_add("ffff:ffff:ffff:ffff::1", UINT64_MAX, -ERANGE, NULL);
	assert_int_equal(addr_add(&unset, 1), -EINVAL);
}

static void test_addr_range_count(void **state)
{
	struct addr a = A("10.0.0.10"), b = A("10.0.0.15"), c = A("::"), d;
	uint64_t n = 0;

	assert_int_equal(addr_range_count(&a, &b, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(addr_range_count(&a, &a, &n), 0);
	assert_int_equal(n, 1);
	n = 77;
	assert_int_equal(addr_range_count(&b, &a, &n), -EINVAL);
	assert_int_equal(addr_range_count(&a, &c, &n), -EINVAL);
	assert_int_equal(n, 77);
	a = A("0.0.0.0");
	b = A("255.255.255.255");
	assert_int_equal(addr_range_count(&a, &b, &n), 0);
	assert_int_equal(n, 1ULL << 32);
	d = A("::ffff:ffff:ffff:fffe");
	assert_int_equal(addr_range_count(&c, &d, &n), 0);
	assert_int_equal(n, UINT64_MAX);
	d = A("::ffff:ffff:ffff:ffff");
	assert_int_equal(addr_range_count(&c, &d, &n), -ERANGE);
	d = A("::1:0:0:0:0");
	assert_int_equal(addr_range_count(&c, &d, &n), -ERANGE);
	memset(&a, 0, sizeof(a));
	assert_int_equal(addr_range_count(&a, &a, &n), -EINVAL);
}

static void test_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct addr a = A("192.0.2.7"), b, unset = { 0 };
	socklen_t len = 0;
	uint16_t port = 0;

	assert_int_equal(addr_to_sockaddr(&a, 8080, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &b, &port), 0);
	assert_true(addr_eq(&a, &b));
	assert_int_equal(port, 8080);

	a = A("2001:db8::53");
	assert_int_equal(addr_to_sockaddr(&a, 53, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 53);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &b, NULL), 0);
	assert_true(addr_eq(&a, &b));

	assert_int_equal(addr_to_sockaddr(&unset, 1, &ss, NULL), -EAFNOSUPPORT);
	ss.ss_family = AF_UNIX;
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &b, NULL), -EAFNOSUPPORT);

	/* IPv4-mapped addresses from dual-stack sockets. */
	a = A("::ffff:198.51.100.9");
	assert_true(addr_unmap_v4(&a));
	b = A("198.51.100.9");
	assert_true(addr_eq(&a, &b));
	assert_false(addr_unmap_v4(&a));
	a = A("::198.51.100.9");
	assert_false(addr_unmap_v4(&a));
	assert_int_equal(a.family, AF_INET6);
}

/* ---------------------------------------------------------------- prefixes */

struct parse_case {
	const char *in;
	unsigned flags;
	int err;
	const char *out; /* formatted result when err == 0 */
};

static void test_cidr_parse(void **state)
{
	static const struct parse_case cases[] = {
		{ "10.0.0.0/8", 0, 0, "10.0.0.0/8" },
		{ "0.0.0.0/0", 0, 0, "0.0.0.0/0" },
		{ "1.2.3.4/32", 0, 0, "1.2.3.4/32" },
		{ "192.168.1.0/24", CIDR_V4, 0, "192.168.1.0/24" },
		{ "::/0", 0, 0, "::/0" },
		{ "::1/128", 0, 0, "::1/128" },
		{ "2001:DB8::/32", CIDR_V6, 0, "2001:db8::/32" },
		{ "::ffff:0.0.0.0/96", 0, 0, "::ffff:0.0.0.0/96" },
		{ "fe80::/10", CIDR_V4 | CIDR_V6, 0, "fe80::/10" },
		/* bare addresses */
		{ "1.2.3.4", CIDR_BARE, 0, "1.2.3.4/32" },
		{ "2001:db8::1", CIDR_BARE, 0, "2001:db8::1/128" },
		{ "1.2.3.4", 0, -EINVAL, NULL },
		{ "2001:db8::1", CIDR_V6, -EINVAL, NULL },
		/* host bits */
		{ "10.1.2.3/8", 0, -EDOM, NULL },
		{ "10.1.2.3/8", CIDR_HOSTBITS, 0, "10.0.0.0/8" },
		{ "10.0.0.1/31", 0, -EDOM, NULL },
		{ "10.0.0.1/31", CIDR_HOSTBITS, 0, "10.0.0.0/31" },
		{ "255.255.255.255/0", CIDR_HOSTBITS, 0, "0.0.0.0/0" },
		{ "2001:db8::1/64", 0, -EDOM, NULL },
		{ "2001:db8::1/64", CIDR_HOSTBITS, 0, "2001:db8::/64" },
		{ "2001:db8:1234:5678:9abc::/65", 0, -EDOM, NULL },
		{ "2001:db8:1234:5678:8000::/65", 0, 0, "2001:db8:1234:5678:8000::/65" },
		{ "ffff::/0", CIDR_HOSTBITS, 0, "::/0" },
		/* prefix length */
		{ "1.2.3.4/33", 0, -ERANGE, NULL },
		{ "1.2.3.4/33", CIDR_HOSTBITS, -ERANGE, NULL },
		{ "0.0.0.0/4294967296", 0, -ERANGE, NULL },
		{ "::/129", 0, -ERANGE, NULL },
		{ "::/128", 0, 0, "::/128" },
		{ "::/999999999999999999999999", 0, -ERANGE, NULL },
		{ "10.0.0.0/08", 0, -EINVAL, NULL },
		{ "10.0.0.0/+8", 0, -EINVAL, NULL },
		{ "10.0.0.0/-8", 0, -EINVAL, NULL },
		{ "10.0.0.0/ 8", 0, -EINVAL, NULL },
		{ "10.0.0.0/8 ", 0, -EINVAL, NULL },
		{ "10.0.0.0/8x", 0, -EINVAL, NULL },
		{ "10.0.0.0/8/8", 0, -EINVAL, NULL },
		{ "10.0.0.0/0x8", 0, -EINVAL, NULL },
		{ "10.0.0.0/00", 0, -EINVAL, NULL },
		{ "1.2.3.4/", 0, -EINVAL, NULL },
		{ "1.2.3.4/", CIDR_BARE, -EINVAL, NULL },
		{ "/24", 0, -EINVAL, NULL },
		{ "/", CIDR_BARE, -EINVAL, NULL },
		{ "", CIDR_BARE, -EINVAL, NULL },
		/* address part */
		{ "01.2.3.4/32", 0, -EINVAL, NULL },
		{ " 1.2.3.4/32", 0, -EINVAL, NULL },
		{ " 1.2.3.4", CIDR_BARE, -EINVAL, NULL },
		{ "1.2.3.4 /32", 0, -EINVAL, NULL },
		{ "1.2.3/24", 0, -EINVAL, NULL },
		{ "10.0.0.0.0/8", 0, -EINVAL, NULL },
		{ "fe80::1%eth0/64", 0, -EINVAL, NULL },
		{ "2001:db8:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:1/64", 0, -EINVAL,
			NULL },
		/* family restriction */
		{ "10.0.0.0/8", CIDR_V6, -EINVAL, NULL },
		{ "::/0", CIDR_V4, -EINVAL, NULL },
		{ "::/129", CIDR_V4, -EINVAL, NULL },
		/* "default" */
		{ "default", CIDR_DEFAULT, 0, "default" }, /* of each family */
		{ "default", CIDR_DEFAULT | CIDR_V4, 0, "0.0.0.0/0" },
		{ "default", CIDR_DEFAULT | CIDR_V6, 0, "::/0" },
		{ "default", CIDR_DEFAULT | CIDR_V4 | CIDR_V6, 0, "default" },
		{ "default", 0, -EINVAL, NULL },
		{ "default", CIDR_BARE, -EINVAL, NULL },
		{ "Default", CIDR_DEFAULT, -EINVAL, NULL },
		{ "default/0", CIDR_DEFAULT, -EINVAL, NULL },
		/* unknown flags */
		{ "10.0.0.0/8", 1u << 20, -EINVAL, NULL },
	};
	char buf[CIDR_STRLEN];
	struct cidr c, back;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct parse_case *t = &cases[i];
		int r;

		memset(&c, 0x55, sizeof(c));
		r = cidr_parse(t->in, t->flags, &c);
		if (r != t->err)
			fail_msg("cidr_parse(\"%s\", %#x) = %d, want %d", t->in, t->flags, r,
				t->err);
		if (r < 0) {
			assert_int_equal(c.plen, 0x55); /* untouched */
			continue;
		}
		assert_string_equal(cidr_str(&c, buf, sizeof(buf)), t->out);
		/* The formatted form parses back to the same prefix. */
		assert_int_equal(cidr_parse(buf, t->flags & CIDR_DEFAULT, &back), 0);
		assert_int_equal(cidr_cmp(&c, &back), 0);
	}
	assert_int_equal(cidr_parse(NULL, 0, &c), -EINVAL);
}

static void test_cidr_strerror(void **state)
{
	assert_string_equal(cidr_strerror(-EDOM), "host bits set");
	assert_string_equal(cidr_strerror(EDOM), "host bits set");
	assert_string_equal(cidr_strerror(-ERANGE), "prefix length too long");
	assert_string_not_equal(cidr_strerror(-EINVAL), cidr_strerror(-EDOM));
	assert_non_null(cidr_strerror(-12345));
}

static void test_cidr_contains(void **state)
{
	struct cidr net = C("10.0.0.0/8"), sub = C("10.1.0.0/16"), other = C("11.0.0.0/8"),
		    all4 = C("0.0.0.0/0"), all6 = C("::/0"), host = C("2001:db8::1"), c;
	struct addr a = A("10.255.255.255"), b = A("11.0.0.0"), v6 = A("::a00:0");

	assert_true(cidr_contains(&net, &a));
	assert_false(cidr_contains(&net, &b));
	assert_false(cidr_contains(&net, &v6)); /* same low bits, other family */
	assert_true(cidr_contains(&all4, &b));
	assert_false(cidr_contains(&all4, &v6));
	assert_true(cidr_contains(&all6, &v6));
	assert_true(cidr_contains(&host, &host.addr));
	a = A("2001:db8::2");
	assert_false(cidr_contains(&host, &a));

	assert_true(cidr_contains_cidr(&net, &sub));
	assert_false(cidr_contains_cidr(&sub, &net));
	assert_true(cidr_contains_cidr(&net, &net));
	assert_false(cidr_contains_cidr(&net, &other));
	assert_true(cidr_contains_cidr(&all4, &other));
	assert_false(cidr_contains_cidr(&all6, &other));

	assert_int_equal(cidr_cmp(&net, &sub), -1);
	assert_int_equal(cidr_cmp(&net, &other), -1);
	assert_int_equal(cidr_cmp(&other, &all6), -1);
	c = C("10.0.0.0/16");
	assert_int_equal(cidr_cmp(&net, &c), -1); /* same address: shorter first */
	assert_int_equal(cidr_cmp(&c, &net), 1);

	cidr_from_addr(&a, &c);
	assert_int_equal(c.plen, 128);
	assert_true(addr_eq(&c.addr, &a));
	c = (struct cidr){ .addr = A("10.1.2.3"), .plen = 12 };
	cidr_clear_hostbits(&c);
	assert_int_equal(cidr_cmp(&c, &(struct cidr){ .addr = A("10.0.0.0"), .plen = 12 }), 0);
}

/* ---------------------------------------------------------------- sets */

static void test_pfxset_merge(void **state)
{
	struct pfxset s;
	struct addr first = A("10.0.0.1"), last = A("10.0.0.6");

	pfxset_init(&s);
	assert_true(pfxset_empty(&s));
	expect_cidrs(&s, AF_UNSPEC, "");

	set_of(&s, "10.0.0.0/9 10.128.0.0/9");
	expect_cidrs(&s, AF_INET, "10.0.0.0/8");
	/* Adjacent but not aligned: two prefixes stay. */
	set_of(&s, "10.0.0.0/24 10.0.1.0/24 10.0.2.0/24");
	expect_cidrs(&s, AF_INET, "10.0.0.0/23 10.0.2.0/24");
	set_of(&s, "10.0.1.0/24 10.0.2.0/24");
	expect_cidrs(&s, AF_INET, "10.0.1.0/24 10.0.2.0/24");
	/* Contained and duplicated prefixes vanish, in any order. */
	set_of(&s, "10.1.0.0/16 10.0.0.0/8 10.1.2.3 10.0.0.0/8");
	expect_cidrs(&s, AF_INET, "10.0.0.0/8");
	/* Eight /32 in reverse order merge to one /29. */
	set_of(&s, "10.0.0.7 10.0.0.6 10.0.0.5 10.0.0.4 10.0.0.3 10.0.0.2 10.0.0.1 10.0.0.0");
	expect_cidrs(&s, AF_INET, "10.0.0.0/29");
	set_of(&s, "0.0.0.0/1 128.0.0.0/1 ::/1 8000::/1");
	expect_cidrs(&s, AF_UNSPEC, "0.0.0.0/0 ::/0");

	/* A range that is not a prefix. */
	pfxset_clear(&s);
	assert_int_equal(pfxset_add_range(&s, &first, &last), 0);
	expect_cidrs(&s, AF_INET, "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32");
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET), 4);
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET6), 0);
	assert_false(pfxset_contains(&s, &(struct addr){ .family = AF_INET }));
	assert_true(pfxset_contains(&s, &first));
	assert_true(pfxset_contains(&s, &last));
	last = A("10.0.0.7");
	assert_false(pfxset_contains(&s, &last));
	/* The range meets the next prefix: it merges. */
	assert_int_equal(pfxset_add(&s, &(struct cidr){ .addr = A("10.0.0.7"), .plen = 32 }), 0);
	assert_int_equal(pfxset_add_addr(&s, &(struct addr){ 0 }), -EINVAL);
	assert_int_equal(pfxset_add_addr(&s, &first), 0);
	expect_cidrs(&s, AF_INET, "10.0.0.1/32 10.0.0.2/31 10.0.0.4/30");

	/* IPv6 ranges across a 64-bit boundary. */
	first = A("2001:db8::ffff:ffff:ffff:ffff");
	last = A("2001:db8:0:1::1");
	pfxset_clear(&s);
	assert_int_equal(pfxset_add_range(&s, &first, &last), 0);
	expect_cidrs(&s, AF_INET6,
		"2001:db8::ffff:ffff:ffff:ffff/128 2001:db8:0:1::/127");
	expect_cidrs(&s, AF_INET, "");
	/* Bad ranges. */
	assert_int_equal(pfxset_add_range(&s, &last, &first), -EINVAL);
	first = A("10.0.0.0");
	assert_int_equal(pfxset_add_range(&s, &first, &last), -EINVAL);
	assert_int_equal(pfxset_add(&s, &(struct cidr){ .addr = A("10.0.0.0"), .plen = 33 }),
		-EINVAL);
	expect_cidrs(&s, AF_INET6,
		"2001:db8::ffff:ffff:ffff:ffff/128 2001:db8:0:1::/127");

	/* Host bits of a hand-built prefix are ignored. */
	pfxset_clear(&s);
	assert_int_equal(pfxset_add(&s, &(struct cidr){ .addr = A("10.9.8.7"), .plen = 8 }), 0);
	expect_cidrs(&s, AF_INET, "10.0.0.0/8");
	pfxset_clear(&s);
	assert_true(pfxset_empty(&s));
	pfxset_clear(&s); /* twice is fine */
}

static void test_pfxset_edges(void **state)
{
	struct pfxset s;
	struct addr top6 = A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), zero6 = A("::"),
		    top4 = A("255.255.255.255"), zero4 = A("0.0.0.0");

	pfxset_init(&s);
	/* The last address of each family, alone and merged with its neighbour. */
	set_of(&s, "255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_true(pfxset_contains(&s, &top4));
	assert_true(pfxset_contains(&s, &top6));
	assert_false(pfxset_contains(&s, &zero4));
	assert_false(pfxset_contains(&s, &zero6));
	set_of(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
		   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_cidrs(&s, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
	set_of(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::/0");
	expect_cidrs(&s, AF_INET6, "::/0");
	assert_int_equal(pfxset_add_range(&s, &zero6, &top6), 0);
	expect_cidrs(&s, AF_INET6, "::/0");
	assert_int_equal(pfxset_add_range(&s, &zero4, &top4), 0);
	expect_cidrs(&s, AF_UNSPEC, "0.0.0.0/0 ::/0");
	/* Full space minus the first and last addresses. */
	assert_int_equal(pfxset_remove(&s, &(struct cidr){ .addr = zero6, .plen = 128 }), 0);
	assert_int_equal(pfxset_remove(&s, &(struct cidr){ .addr = top6, .plen = 128 }), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET6), 2 * 127);
	assert_false(pfxset_contains(&s, &zero6));
	assert_false(pfxset_contains(&s, &top6));
	assert_int_equal(pfxset_complement(&s, AF_INET6), 0);
	expect_cidrs(&s, AF_INET6, "::/128 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	expect_cidrs(&s, AF_INET, "0.0.0.0/0");
	assert_int_equal(pfxset_complement(&s, AF_PACKET), -EAFNOSUPPORT);
	pfxset_clear(&s);
}

static void test_pfxset_algebra(void **state)
{
	struct pfxset a, b, c;

	pfxset_init(&a);
	pfxset_init(&b);
	pfxset_init(&c);

	/* union */
	set_of(&a, "10.0.0.0/24 192.168.0.0/24 2001:db8::/48");
	set_of(&b, "10.0.1.0/24 192.168.0.128/25 2001:db8:1::/48 fd00::/8");
	assert_int_equal(pfxset_union(&a, &b), 0);
	expect_cidrs(&a, AF_INET, "10.0.0.0/23 192.168.0.0/24");
	expect_cidrs(&a, AF_INET6, "2001:db8::/47 fd00::/8");
	expect_cidrs(&b, AF_INET, "10.0.1.0/24 192.168.0.128/25"); /* other is untouched */

	/* subtract */
	set_of(&a, "10.0.0.0/8 2001:db8::/32");
	set_of(&b, "10.1.0.0/16 10.128.0.0/9 2001:db8:8000::/33 2001:db8::/34 192.168.0.0/16");
	assert_int_equal(pfxset_subtract(&a, &b), 0);
	expect_cidrs(&a, AF_INET, "10.0.0.0/16 10.2.0.0/15 10.4.0.0/14 10.8.0.0/13 10.16.0.0/12 "
				  "10.32.0.0/11 10.64.0.0/10");
	expect_cidrs(&a, AF_INET6, "2001:db8:4000::/34");
	/* Subtracting a single interior address. */
	set_of(&a, "192.0.2.0/24");
	set_of(&b, "192.0.2.77");
	assert_int_equal(pfxset_subtract(&a, &b), 0);
	expect_cidrs(&a, AF_INET, "192.0.2.0/26 192.0.2.64/29 192.0.2.72/30 192.0.2.76/32 "
				  "192.0.2.78/31 192.0.2.80/28 192.0.2.96/27 192.0.2.128/25");
	/* Subtracting everything, and subtracting from oneself. */
	set_of(&a, "10.0.0.0/8 ::/0");
	set_of(&b, "0.0.0.0/0");
	assert_int_equal(pfxset_subtract(&a, &b), 0);
	expect_cidrs(&a, AF_UNSPEC, "::/0");
	assert_int_equal(pfxset_subtract(&a, &a), 0);
	assert_true(pfxset_empty(&a));

	/* intersect */
	set_of(&a, "10.0.0.0/8 172.16.0.0/12 2001:db8::/32 fe80::/10");
	set_of(&b, "10.20.0.0/16 172.0.0.0/8 192.168.0.0/16 2001:db8:5::/48 2001::/16");
	assert_int_equal(pfxset_intersect(&a, &b), 0);
	expect_cidrs(&a, AF_INET, "10.20.0.0/16 172.16.0.0/12");
	expect_cidrs(&a, AF_INET6, "2001:db8::/32");
	set_of(&b, "10.0.0.0/8");
	assert_int_equal(pfxset_intersect(&a, &b), 0);
	expect_cidrs(&a, AF_UNSPEC, "10.20.0.0/16"); /* no IPv6 in b: none left */
	assert_int_equal(pfxset_intersect(&a, &a), 0);
	expect_cidrs(&a, AF_UNSPEC, "10.20.0.0/16");
	assert_int_equal(pfxset_union(&a, &a), 0);
	expect_cidrs(&a, AF_UNSPEC, "10.20.0.0/16");

	/* remove */
	set_of(&a, "10.0.0.0/30 ::/126");
	assert_int_equal(pfxset_remove(&a, &(struct cidr){ .addr = A("10.0.0.1"), .plen = 32 }), 0);
	assert_int_equal(pfxset_remove(&a, &(struct cidr){ .addr = A("::2"), .plen = 127 }), 0);
	expect_cidrs(&a, AF_UNSPEC, "10.0.0.0/32 10.0.0.2/31 ::/127");
	assert_int_equal(pfxset_remove(&a, &(struct cidr){ .addr = A("11.0.0.0"), .plen = 8 }), 0);
	expect_cidrs(&a, AF_UNSPEC, "10.0.0.0/32 10.0.0.2/31 ::/127");
	assert_int_equal(pfxset_remove(&a, &(struct cidr){ .plen = 0 }), -EINVAL);

	/* copy and equal */
	set_of(&a, "10.0.0.0/8 2001:db8::/32");
	set_of(&c, "192.0.2.0/24");
	assert_int_equal(pfxset_copy(&c, &a), 0);
	assert_true(pfxset_equal(&a, &c));
	expect_cidrs(&c, AF_UNSPEC, "10.0.0.0/8 2001:db8::/32");
	assert_int_equal(pfxset_copy(&c, &c), 0);
	assert_true(pfxset_equal(&a, &c));
	set_of(&b, "10.0.0.0/9 10.128.0.0/9 2001:db8::/33 2001:db8:8000::/33");
	assert_true(pfxset_equal(&a, &b)); /* same addresses, other spelling */
	set_of(&b, "10.0.0.0/8 2001:db8::/33");
	assert_false(pfxset_equal(&a, &b));
	set_of(&b, "10.0.0.0/8");
	assert_false(pfxset_equal(&a, &b));
	pfxset_clear(&b);
	assert_false(pfxset_equal(&a, &b));
	assert_true(pfxset_equal(&b, &b));

	pfxset_clear(&a);
	pfxset_clear(&b);
	pfxset_clear(&c);
}

static void test_pfxset_complement(void **state)
{
	struct pfxset s, orig;

	pfxset_init(&s);
	pfxset_init(&orig);
	assert_int_equal(pfxset_complement(&s, AF_INET), 0);
	expect_cidrs(&s, AF_UNSPEC, "0.0.0.0/0");
	assert_int_equal(pfxset_complement(&s, AF_INET6), 0);
	expect_cidrs(&s, AF_UNSPEC, "0.0.0.0/0 ::/0");
	assert_int_equal(pfxset_complement(&s, AF_UNSPEC), 0);
	assert_true(pfxset_empty(&s));

	set_of(&s, "128.0.0.0/1 2000::/3");
	assert_int_equal(pfxset_complement(&s, AF_INET), 0);
	expect_cidrs(&s, AF_INET, "0.0.0.0/1");
	expect_cidrs(&s, AF_INET6, "2000::/3"); /* other family untouched */
	assert_int_equal(pfxset_complement(&s, AF_INET6), 0);
	expect_cidrs(&s, AF_INET6, "::/3 4000::/2 8000::/1");

	set_of(&s, "10.0.0.0/8");
	assert_int_equal(pfxset_complement(&s, AF_INET), 0);
	expect_cidrs(&s, AF_INET, "0.0.0.0/5 8.0.0.0/7 11.0.0.0/8 12.0.0.0/6 16.0.0.0/4 "
				  "32.0.0.0/3 64.0.0.0/2 128.0.0.0/1");

	/* Complement of the complement is the original. */
	set_of(&orig, "1.2.3.4 10.0.0.0/8 192.168.7.0/24 255.255.255.255 ::/128 2001:db8::/32 "
		      "ff02::1");
	assert_int_equal(pfxset_copy(&s, &orig), 0);
	assert_int_equal(pfxset_complement(&s, AF_UNSPEC), 0);
	assert_false(pfxset_equal(&s, &orig));
	assert_false(pfxset_contains(&s, &(struct addr){ .family = AF_INET6 }));
	assert_int_equal(pfxset_complement(&s, AF_UNSPEC), 0);
	assert_true(pfxset_equal(&s, &orig));

	pfxset_clear(&s);
	pfxset_clear(&orig);
}

static void test_pfxset_reserved_v4(void **state)
{
	static const char *const out[] = { "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0",
		"192.0.1.255", "192.88.98.255", "192.88.100.0", "198.17.255.255", "198.20.0.0",
		"223.255.255.255", "172.32.0.0", "169.253.255.255" };
	static const char *const in[] = { "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.255",
		"127.0.0.1", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.170",
		"192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
		"198.51.100.1", "203.0.113.200", "224.0.0.1", "239.255.255.250", "240.0.0.1",
		"255.255.255.255" };
	struct pfxset s, orig;
	struct cidr *v = NULL;
	char buf[CIDR_STRLEN];
	size_t n = 0;

	pfxset_init(&s);
	pfxset_init(&orig);
	assert_int_equal(pfxset_add_reserved(&s, AF_INET), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET6), 0);
	expect_cidrs(&s, AF_INET, "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 "
				  "172.16.0.0/12 192.0.0.0/24 192.0.2.0/24 192.88.99.0/24 "
				  "192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 "
				  "224.0.0.0/3");
	assert_int_equal(pfxset_copy(&orig, &s), 0);

	assert_int_equal(pfxset_complement(&s, AF_INET), 0);
	assert_int_equal(pfxset_to_cidrs(&s, AF_INET, &v, &n), 0);
	/* 116 prefixes (checked with Python's ipaddress.address_exclude). */
	assert_int_equal(n, 116);
	assert_string_equal(cidr_str(&v[0], buf, sizeof(buf)), "1.0.0.0/8");
	assert_string_equal(cidr_str(&v[1], buf, sizeof(buf)), "2.0.0.0/7");
	assert_string_equal(cidr_str(&v[n - 2], buf, sizeof(buf)), "204.0.0.0/6");
	assert_string_equal(cidr_str(&v[n - 1], buf, sizeof(buf)), "208.0.0.0/4");
	free(v);
	for (size_t i = 0; i < ARRAY_SIZE(out); i++) {
		struct addr a = A(out[i]);

		if (!pfxset_contains(&s, &a) || pfxset_contains(&orig, &a))
			fail_msg("%s should be global", out[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		struct addr a = A(in[i]);

		if (pfxset_contains(&s, &a) || !pfxset_contains(&orig, &a))
			fail_msg("%s should be reserved", in[i]);
	}
	assert_int_equal(pfxset_complement(&s, AF_INET), 0);
	assert_true(pfxset_equal(&s, &orig));

	pfxset_clear(&s);
	pfxset_clear(&orig);
}

static void test_pfxset_reserved_v6(void **state)
{
	static const char *const out[] = { "2606:4700:4700::1111", "2a00:1450::1", "::2",
		"::fffe:ffff:ffff", "64:ff9b::1:0:0", "64:ff9b:2::", "2001:200::", "2003::1",
		"2001:db9::", "3ffe:ffff::", "fec0::1", "fe00::" };
	static const char *const in[] = { "::", "::1", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
		"64:ff9b:1::1", "100::1", "2001::1", "2001:1ff:ffff::", "2001:db8::1", "2002::1",
		"3fff::1", "5f00::1", "fc00::1", "fdff::1", "fe80::1", "febf::1", "ff02::1",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" };
	struct pfxset s, orig;
	struct cidr *v = NULL;
	char buf[CIDR_STRLEN];
	size_t n = 0;

	pfxset_init(&s);
	pfxset_init(&orig);
	assert_int_equal(pfxset_add_reserved(&s, AF_INET6), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET6), 13);
	assert_int_equal(pfxset_copy(&orig, &s), 0);

	assert_int_equal(pfxset_complement(&s, AF_INET6), 0);
	assert_int_equal(pfxset_to_cidrs(&s, AF_INET6, &v, &n), 0);
	/* 343 prefixes (checked with Python's ipaddress.address_exclude). */
	assert_int_equal(n, 343);
	assert_string_equal(cidr_str(&v[0], buf, sizeof(buf)), "::2/127");
	assert_string_equal(cidr_str(&v[1], buf, sizeof(buf)), "::4/126");
	assert_string_equal(cidr_str(&v[n - 2], buf, sizeof(buf)), "fe00::/9");
	assert_string_equal(cidr_str(&v[n - 1], buf, sizeof(buf)), "fec0::/10");
	free(v);
	for (size_t i = 0; i < ARRAY_SIZE(out); i++) {
		struct addr a = A(out[i]);

		if (!pfxset_contains(&s, &a) || pfxset_contains(&orig, &a))
			fail_msg("%s should be global", out[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		struct addr a = A(in[i]);

		if (pfxset_contains(&s, &a) || !pfxset_contains(&orig, &a))
			fail_msg("%s should be reserved", in[i]);
	}
	assert_int_equal(pfxset_complement(&s, AF_INET6), 0);
	assert_true(pfxset_equal(&s, &orig));

	/* Both families at once. */
	pfxset_clear(&s);
	assert_int_equal(pfxset_add_reserved(&s, AF_UNSPEC), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_UNSPEC), 14 + 13);
	assert_int_equal(pfxset_add_reserved(&s, AF_PACKET), -EAFNOSUPPORT);

	pfxset_clear(&s);
	pfxset_clear(&orig);
}

static void test_pfxset_parse(void **state)
{
	const char *list, *bad = NULL;
	struct pfxset s;

	pfxset_init(&s);
	assert_int_equal(pfxset_parse(&s, " 10.0.0.0/8,192.168.0.0/16 ,\t2001:db8::/32\n", 0,
				 &bad),
		0);
	assert_null(bad);
	expect_cidrs(&s, AF_UNSPEC, "10.0.0.0/8 192.168.0.0/16 2001:db8::/32");
	/* Adds to what is there. */
	assert_int_equal(pfxset_parse(&s, "11.0.0.0/8,,172.16.0.0/12", 0, &bad), 0);
	expect_cidrs(&s, AF_INET, "10.0.0.0/7 172.16.0.0/12 192.168.0.0/16");
	/* Empty lists add nothing. */
	assert_int_equal(pfxset_parse(&s, "", 0, &bad), 0);
	assert_int_equal(pfxset_parse(&s, " , ", 0, &bad), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_UNSPEC), 4);

	/* A bad token: nothing added, the token is named. */
	list = "1.0.0.0/8, 2.0.0.0/8 3.0.0.1/8,4.0.0.0/8";
	assert_int_equal(pfxset_parse(&s, list, 0, &bad), -EDOM);
	assert_ptr_equal(bad, list + 21);
	assert_int_equal(strncmp(bad, "3.0.0.1/8,", 10), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_UNSPEC), 4);
	/* The same list with CIDR_HOSTBITS is fine. */
	assert_int_equal(pfxset_parse(&s, list, CIDR_HOSTBITS, &bad), 0);
	expect_cidrs(&s, AF_INET, "1.0.0.0/8 2.0.0.0/7 4.0.0.0/8 10.0.0.0/7 172.16.0.0/12 "
				  "192.168.0.0/16");

	list = "10.0.0.0/8 10.0.0.0/33";
	assert_int_equal(pfxset_parse(&s, list, 0, &bad), -ERANGE);
	assert_ptr_equal(bad, list + 11);
	list = "10.0.0.0/8 2001:db8::/32";
	assert_int_equal(pfxset_parse(&s, list, CIDR_V4, &bad), -EINVAL);
	assert_ptr_equal(bad, list + 11);
	list = "1.2.3.4";
	assert_int_equal(pfxset_parse(&s, list, 0, &bad), -EINVAL);
	assert_ptr_equal(bad, list);
	/* A very long token is refused without being copied. */
	list = "10.0.0.0/8 1111111111111111111111111111111111111111111111111111111111111111";
	assert_int_equal(pfxset_parse(&s, list, 0, &bad), -EINVAL);
	assert_ptr_equal(bad, list + 11);
	assert_int_equal(pfxset_parse(&s, "1.2.3.4;5.6.7.8", CIDR_BARE, NULL), -EINVAL);
	assert_int_equal(pfxset_parse(&s, NULL, 0, &bad), -EINVAL);
	assert_null(bad);
	assert_int_equal(pfxset_parse(&s, "default", CIDR_DEFAULT | CIDR_V6, &bad), 0);
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET6), 1);
	expect_cidrs(&s, AF_INET6, "::/0");
	assert_int_equal(pfxset_count_cidrs(&s, AF_INET), 6);
	/* "default" of no one family: both */
	assert_int_equal(pfxset_parse(&s, "default", CIDR_DEFAULT, &bad), 0);
	expect_cidrs(&s, AF_UNSPEC, "0.0.0.0/0 ::/0");
	pfxset_clear(&s);
}

/* ---------------------------------------------------------------- randomised */

struct rnd_list {
	struct cidr *v;
	size_t n;
};

/*
 * A random prefix clustered in a few regions so that prefixes overlap, nest and touch while
 * leaving gaps: IPv4 mostly within 10.0.0.0/12, IPv6 within 2001:db8::/96 and across the
 * 2001:db8:0:1::/64 boundary, plus some wider ones of each family.
 */
static struct cidr rnd_cidr(int family)
{
	unsigned k = rnd_below(4), plen;
	struct cidr c = { 0 };

	c.addr.family = family;
	for (size_t i = 0; i < addr_len(family); i++)
		c.addr.b[i] = (uint8_t)rnd();
	if (family == AF_INET && k < 3) {
		c.addr.b[0] = 10;
		c.addr.b[1] &= 0x0f;
		plen = 20 + rnd_below(13);
	} else if (family == AF_INET) {
		plen = 8 + rnd_below(25);
	} else {
		memcpy(c.addr.b, "\x20\x01\x0d\xb8", 4);
		if (k < 2) {
			memset(c.addr.b + 4, 0, 8);
			plen = 104 + rnd_below(25);
		} else if (k == 2) {
			memset(c.addr.b + 4, 0, 3);
			c.addr.b[7] &= 1;
			plen = 66 + rnd_below(63);
		} else {
			plen = 40 + rnd_below(89);
		}
	}
	c.plen = (uint8_t)plen;
	cidr_clear_hostbits(&c);
	return c;
}

static void rnd_list_fill(struct rnd_list *l, size_t n, struct pfxset *s)
{
	l->v = calloc(n, sizeof(*l->v));
	assert_non_null(l->v);
	l->n = n;
	for (size_t i = 0; i < n; i++) {
		l->v[i] = rnd_cidr(rnd_below(2) ? AF_INET : AF_INET6);
		assert_int_equal(pfxset_add(s, &l->v[i]), 0);
	}
}

static bool brute_contains(const struct rnd_list *l, const struct addr *a)
{
	for (size_t i = 0; i < l->n; i++) {
		if (cidr_contains(&l->v[i], a))
			return true;
	}
	return false;
}

/* Addresses to probe: random ones in the clusters, and the edges of every listed prefix. */
static void probes(const struct rnd_list *l, size_t i, struct addr *ret)
{
	struct cidr c;
	uint64_t last;

	if (i < l->n * 3) {
		c = l->v[i / 3];
		switch (i % 3) {
		case 0: /* first address, or the one before it */
			*ret = c.addr;
			if (rnd_below(2)) {
				for (int k = (int)addr_len(ret->family) - 1; k >= 0; k--) {
					if (ret->b[k]--)
						break;
				}
			}
			return;
		case 1: /* last address, or the one after it (within 64 host bits) */
			*ret = c.addr;
			last = (size_t)c.plen + 64 > addr_len(c.addr.family) * 8
				       ? (1ULL << (addr_len(c.addr.family) * 8 - c.plen)) - 1
				       : UINT64_MAX;
			(void)addr_add(ret, last);
			if (rnd_below(2))
				(void)addr_add(ret, 1);
			return;
		default:
			break;
		}
	}
	*ret = rnd_cidr(rnd_below(2) ? AF_INET : AF_INET6).addr;
	if (ret->family == AF_INET)
		ret->b[3] = (uint8_t)rnd();
	else
		ret->b[15] = (uint8_t)rnd();
}

/*
 * to_cidrs: sorted, disjoint, no host bits, minimal (checked on up to ~3000 of them);
 * re-adding them gives the same set.
 */
static void check_cidrs(const struct pfxset *s)
{
	struct cidr *v = NULL;
	struct pfxset back, sib;
	size_t n = 0, step;

	pfxset_init(&back);
	pfxset_init(&sib);
	assert_int_equal(pfxset_to_cidrs(s, AF_UNSPEC, &v, &n), 0);
	assert_int_equal(n, pfxset_count_cidrs(s, AF_UNSPEC));
	step = n / 3000 + 1;
	for (size_t i = 0; i < n; i++) {
		struct cidr c = v[i], sibling = v[i];

		cidr_clear_hostbits(&c);
		assert_int_equal(cidr_cmp(&c, &v[i]), 0);
		if (i) {
			assert_int_equal(cidr_cmp(&v[i - 1], &v[i]), -1);
			assert_false(cidr_contains(&v[i - 1], &v[i].addr));
		}
		assert_int_equal(pfxset_add(&back, &v[i]), 0);
		/* Minimal: a prefix's sibling is never wholly inside the set. */
		if (v[i].plen && i % step == 0) {
			unsigned bit = v[i].plen - 1;

			sibling.addr.b[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
			pfxset_clear(&sib);
			assert_int_equal(pfxset_add(&sib, &sibling), 0);
			assert_int_equal(pfxset_subtract(&sib, s), 0);
			assert_false(pfxset_empty(&sib));
		}
	}
	assert_true(pfxset_equal(&back, s));
	free(v);
	pfxset_clear(&back);
	pfxset_clear(&sib);
}

static void test_pfxset_random(void **state)
{
	struct rnd_list la, lb;
	struct pfxset a, b, u, d, x, na;
	size_t in_a = 0, out_a = 0, both = 0, only_b = 0;

	rng_state = 0x9e3779b97f4a7c15ULL;
	pfxset_init(&a);
	pfxset_init(&b);
	pfxset_init(&u);
	pfxset_init(&d);
	pfxset_init(&x);
	pfxset_init(&na);
	rnd_list_fill(&la, 2000, &a);
	rnd_list_fill(&lb, 600, &b);

	assert_int_equal(pfxset_copy(&u, &a), 0);
	assert_int_equal(pfxset_union(&u, &b), 0);
	assert_int_equal(pfxset_copy(&d, &a), 0);
	assert_int_equal(pfxset_subtract(&d, &b), 0);
	assert_int_equal(pfxset_copy(&x, &a), 0);
	assert_int_equal(pfxset_intersect(&x, &b), 0);
	assert_int_equal(pfxset_copy(&na, &a), 0);
	assert_int_equal(pfxset_complement(&na, AF_UNSPEC), 0);

	for (size_t i = 0; i < 3 * (la.n + lb.n) + 20000; i++) {
		struct addr p;
		bool ia, ib;

		if (i < 3 * la.n)
			probes(&la, i, &p);
		else if (i < 3 * (la.n + lb.n))
			probes(&lb, i - 3 * la.n, &p);
		else
			probes(&la, SIZE_MAX, &p);
		ia = brute_contains(&la, &p);
		ib = brute_contains(&lb, &p);
		if (pfxset_contains(&a, &p) != ia) {
			char buf[ADDR_STRLEN];
			fail_msg("probe %zu %s: want %d", i, addr_str(&p, buf, sizeof(buf)), ia);
		}
		assert_int_equal(pfxset_contains(&b, &p), ib);
		assert_int_equal(pfxset_contains(&u, &p), ia || ib);
		assert_int_equal(pfxset_contains(&d, &p), ia && !ib);
		assert_int_equal(pfxset_contains(&x, &p), ia && ib);
		assert_int_equal(pfxset_contains(&na, &p), !ia);
		in_a += ia;
		out_a += !ia;
		both += ia && ib;
		only_b += ib && !ia;
	}
	/* The probes hit every region often enough to mean something. */
	print_message("  probes in a: %zu, not in a: %zu, in a and b: %zu, only in b: %zu\n", in_a,
		out_a, both, only_b);
	assert_true(in_a > 2000);
	assert_true(out_a > 2000);
	assert_true(both > 500);
	assert_true(only_b > 500);

	check_cidrs(&a);
	check_cidrs(&u);
	check_cidrs(&d);
	check_cidrs(&x);
	check_cidrs(&na);

	/* Identities. */
	assert_int_equal(pfxset_complement(&na, AF_UNSPEC), 0);
	assert_true(pfxset_equal(&na, &a));
	assert_int_equal(pfxset_union(&d, &x), 0); /* (a - b) | (a & b) == a */
	assert_true(pfxset_equal(&d, &a));
	assert_false(pfxset_equal(&u, &a));

	/* Removing every listed prefix of b one by one equals subtracting b. */
	assert_int_equal(pfxset_copy(&d, &a), 0);
	for (size_t i = 0; i < lb.n; i++)
		assert_int_equal(pfxset_remove(&d, &lb.v[i]), 0);
	assert_int_equal(pfxset_copy(&x, &a), 0);
	assert_int_equal(pfxset_subtract(&x, &b), 0);
	assert_true(pfxset_equal(&d, &x));

	free(la.v);
	free(lb.v);
	pfxset_clear(&a);
	pfxset_clear(&b);
	pfxset_clear(&u);
	pfxset_clear(&d);
	pfxset_clear(&x);
	pfxset_clear(&na);
}

static void test_pfxset_100k(void **state)
{
	enum { N = 100000 };
	struct cidr *v = malloc(N * sizeof(*v));
	struct pfxset s, t;
	struct addr a, outside = A("11.0.0.1"), outside6 = A("2001:db9::");
	uint64_t t0 = now_ms();
	size_t n4;

	assert_non_null(v);
	rng_state = 12345;
	pfxset_init(&s);
	pfxset_init(&t);
	/* Random order, both families, many overlaps. */
	for (size_t i = 0; i < N; i++) {
		struct cidr *c = &v[i];

		memset(c, 0, sizeof(*c));
		if (i % 4) {
			uint32_t x = (uint32_t)rnd();

			c->addr.family = AF_INET;
			c->addr.v4.s_addr = htonl(0x0a000000 | (x & 0x00ffffff));
			c->plen = (uint8_t)(20 + rnd_below(13));
		} else {
			uint64_t x = rnd();

			c->addr = A("2001:db8::");
			memcpy(c->addr.b + 8, &x, sizeof(x));
			c->plen = (uint8_t)(64 + rnd_below(65));
		}
		cidr_clear_hostbits(c);
		assert_int_equal(pfxset_add(&s, c), 0);
	}
	for (size_t i = 0; i < N; i++) {
		if (!pfxset_contains(&s, &v[i].addr))
			fail_msg("prefix %zu lost", i);
	}
	assert_false(pfxset_contains(&s, &outside));
	assert_false(pfxset_contains(&s, &outside6));
	n4 = pfxset_count_cidrs(&s, AF_INET);
	/* A merged set of prefixes never needs more prefixes than went in. */
	assert_true(n4 > 0 && n4 <= N - N / 4);
	assert_true(pfxset_count_cidrs(&s, AF_INET6) <= N / 4);

	/* 100 000 consecutive addresses, in descending order: 0b11000011010100000 has 6 ones. */
	for (uint32_t i = N; i-- > 0;) {
		a = A("10.0.0.0");
		assert_int_equal(addr_add(&a, i), 0);
		assert_int_equal(pfxset_add_addr(&t, &a), 0);
	}
	expect_cidrs(&t, AF_INET, "10.0.0.0/16 10.1.0.0/17 10.1.128.0/22 10.1.132.0/23 "
				  "10.1.134.0/25 10.1.134.128/27");
	a = A("10.1.134.159"); /* 10.0.0.0 + 99999 */
	assert_true(pfxset_contains(&t, &a));
	assert_int_equal(addr_add(&a, 1), 0);
	assert_false(pfxset_contains(&t, &a));
	print_message("  100000 random + 100000 sequential prefixes: %llu ms\n",
		(unsigned long long)(now_ms() - t0));

	free(v);
	pfxset_clear(&s);
	pfxset_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_addr_str),
		cmocka_unit_test(test_addr_cmp),
		cmocka_unit_test(test_addr_add),
		cmocka_unit_test(test_addr_range_count),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_strerror),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_pfxset_merge),
		cmocka_unit_test(test_pfxset_edges),
		cmocka_unit_test(test_pfxset_algebra),
		cmocka_unit_test(test_pfxset_complement),
		cmocka_unit_test(test_pfxset_reserved_v4),
		cmocka_unit_test(test_pfxset_reserved_v6),
		cmocka_unit_test(test_pfxset_parse),
		cmocka_unit_test(test_pfxset_random),
		cmocka_unit_test(test_pfxset_100k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
