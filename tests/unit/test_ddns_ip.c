/*
 * test_ddns_ip.c - unit tests for src/ddns/ddns_ip.c: a public address service's reply
 * (plain text and each JSON key gateway-route-manager reads, and what is refused) and the
 * address sets whose difference a provider publishes.  Pure: no network, no files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ddns_ip.h"
#include "util.h"

static struct addr A(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static void parse_ok(const char *body, const char *want)
{
	struct addr a, w = A(want);
	char why[128] = "";

	assert_int_equal(ddns_ip_parse(body, strlen(body), &a, why, sizeof(why)), 0);
	assert_true(addr_eq(&a, &w));
}

static void parse_bad(const char *body, const char *why_part)
{
	struct addr a;
	char why[128] = "";

	assert_int_equal(ddns_ip_parse(body, strlen(body), &a, why, sizeof(why)), -EINVAL);
	if (!strstr(why, why_part))
		fail_msg("\"%s\": expected a reason with \"%s\", got \"%s\"", body, why_part, why);
}

static void test_plain(void **state)
{
	(void)state;
	parse_ok("203.0.113.7", "203.0.113.7");
	parse_ok("  203.0.113.7\r\n", "203.0.113.7");
	parse_ok("2001:db8::7\n", "2001:db8::7");
	parse_ok("::ffff:198.51.100.9", "198.51.100.9"); /* mapped: IPv4 */
	parse_bad("", "empty");
	parse_bad("\n \n", "empty");
	parse_bad("not an address", "expected an address");
	parse_bad("203.0.113.7 198.51.100.1", "expected an address");
	parse_bad("0.0.0.0", "public");
	parse_bad("::", "public");
	parse_bad("fe80::1%eth0", "expected an address");
	parse_bad("<html>203.0.113.7</html>", "expected an address");
}

static void test_json(void **state)
{
	(void)state;
	parse_ok("{\"public_ip\": \"203.0.113.7\"}", "203.0.113.7");
	parse_ok("{\"ip_address\": \"203.0.113.8\"}", "203.0.113.8");
	parse_ok("{\"ip_addr\": \"2001:db8::8\"}", "2001:db8::8");
	parse_ok(" {\"ip\": \"198.51.100.4\", \"country\": \"XX\"}\n", "198.51.100.4");
	/* gateway-route-manager's order: public_ip first */
	parse_ok("{\"ip\": \"198.51.100.1\", \"public_ip\": \"198.51.100.2\"}", "198.51.100.2");
	parse_ok("\"203.0.113.9\"", "203.0.113.9");
	parse_bad("{\"address\": \"203.0.113.7\"}", "no public_ip");
	parse_bad("{\"ip\": 3405803783}", "string");
	parse_bad("{\"ip\": \"nope\"}", "expected an address");
	parse_bad("{\"ip\": \"203.0.113.7\"", "invalid JSON");
	parse_bad("{\"ip\": \"1.2.3.4\", \"ip\": \"5.6.7.8\"}", "invalid JSON");
	parse_bad("[\"203.0.113.7\"]", "expected an address");
}

static void test_parse_nul(void **state)
{
	static const char body[] = "203.0.113.7\0garbage";
	struct addr a;
	char why[128];

	(void)state;
	assert_int_equal(ddns_ip_parse(body, sizeof(body) - 1, &a, why, sizeof(why)), -EINVAL);
}

static void set_of(struct ddns_set *s, const char *const *v)
{
	ddns_set_clear(s);
	for (; *v; v++) {
		struct addr a = A(*v);
		ddns_set_add(s, &a);
	}
}

static void assert_set(const struct ddns_set *s, const char *want)
{
	char buf[512];

	assert_string_equal(ddns_set_str(s, buf, sizeof(buf)), want);
}

static void test_set(void **state)
{
	struct ddns_set a = {0}, b = {0}, add = {0}, del = {0};

	(void)state;
	assert_set(&a, "none");
	set_of(&a, (const char *const[]){"203.0.113.9", "2001:db8::1", "198.51.100.1",
			   "203.0.113.9", NULL});
	/* sorted, once each, IPv4 before IPv6 */
	assert_set(&a, "198.51.100.1, 203.0.113.9, 2001:db8::1");
	assert_int_equal(ddns_set_count(&a, AF_INET), 2);
	assert_int_equal(ddns_set_count(&a, AF_INET6), 1);
	set_of(&b, (const char *const[]){"2001:db8::1", "203.0.113.9", "198.51.100.1", NULL});
	assert_true(ddns_set_equal(&a, &b));
	ddns_set_diff(&a, &b, &add, &del);
	assert_int_equal(add.n, 0);
	assert_int_equal(del.n, 0);

	/* one uplink down, another's address changed, a new one up */
	set_of(&b, (const char *const[]){"203.0.113.9", "198.51.100.77", "2001:db8::2", NULL});
	assert_false(ddns_set_equal(&a, &b));
	ddns_set_diff(&a, &b, &add, &del);
	assert_set(&add, "198.51.100.77, 2001:db8::2");
	assert_set(&del, "198.51.100.1, 2001:db8::1");

	/* everything goes, from nothing */
	ddns_set_clear(&b);
	ddns_set_diff(&a, &b, &add, &del);
	assert_int_equal(add.n, 0);
	assert_set(&del, "198.51.100.1, 203.0.113.9, 2001:db8::1");
	ddns_set_diff(&b, &a, &add, &del);
	assert_set(&add, "198.51.100.1, 203.0.113.9, 2001:db8::1");
	assert_int_equal(del.n, 0);

	ddns_set_copy(&b, &a);
	assert_true(ddns_set_equal(&a, &b));
	ddns_set_clear(&a);
	ddns_set_clear(&b);
	ddns_set_clear(&add);
	ddns_set_clear(&del);
}

static void test_set_many(void **state)
{
	struct ddns_set s = {0};
	struct addr a = A("10.0.0.0"), prev;

	(void)state;
	/* added in reverse: the set stays sorted */
	for (int i = 999; i >= 0; i--) {
		struct addr x = a;
		addr_add(&x, (uint64_t)i);
		ddns_set_add(&s, &x);
		ddns_set_add(&s, &x);
	}
	assert_int_equal(s.n, 1000);
	prev = s.v[0];
	for (size_t i = 1; i < s.n; i++) {
		assert_true(addr_cmp(&prev, &s.v[i]) < 0);
		prev = s.v[i];
	}
	ddns_set_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_parse_nul),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_set_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
