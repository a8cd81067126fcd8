/*
 * test_ra.c - the router advertisement parser (src/devices/ra.c, ra_parse()): a canned RA
 * with every option we read, the checks of RFC 4861 6.1.2 and 4.6, prefixes left out or
 * kept, and truncation at every length.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "devices/ra.h"

/* An RA as dnsmasq sends it with --enable-ra and a DHCPv6 range: M and O set. */
static const uint8_t RA[] = {
	134, 0, 0x12, 0x34,	/* type, code, checksum (the kernel's to check) */
	64, 0xc0, 0x07, 0x08,	/* hop limit, M|O, router lifetime 1800 */
	0, 0, 0, 0, 0, 0, 0, 0, /* reachable, retrans */
	1, 1, 0x02, 0x53, 0x00, 0x00, 0x00, 0x01,	    /* source link-layer address */
	5, 1, 0, 0, 0, 0, 0x05, 0xdc,			    /* MTU 1500 */
	3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, /* prefix: L|A, 86400, 14400 */
	0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, /* host bit */
	25, 3, 0, 0, 0, 0, 0x0e, 0x10, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
	/* RDNSS: unknown to us, skipped */
};

static struct addr ll(void)
{
	struct addr a = { .family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, "fe80::53:ff:fe00:1", &a.v6), 1);
	return a;
}

static void test_parse(void **state)
{
	struct addr src = ll();
	struct ra_info ra;
	char buf[CIDR_STRLEN];
	static const uint8_t mac[6] = { 0x02, 0x53, 0, 0, 0, 1 };

	(void)state;
	assert_int_equal(ra_parse(RA, sizeof(RA), &src, &ra), 0);
	assert_true(addr_eq(&ra.router, &src));
	assert_memory_equal(ra.router_mac, mac, 6);
	assert_true(ra.managed);
	assert_true(ra.other);
	assert_int_equal(ra.lifetime_s, 1800);
	assert_int_equal(ra.mtu, 1500);
	assert_int_equal(ra.n_prefixes, 1);
	assert_string_equal(cidr_str(&ra.prefixes[0].prefix, buf, sizeof(buf)), "2001:db8:1::/64");
	assert_true(ra.prefixes[0].onlink);
	assert_true(ra.prefixes[0].autonomous);
	assert_int_equal(ra.prefixes[0].valid_s, 86400);
	assert_int_equal(ra.prefixes[0].preferred_s, 14400);
}

static void test_flags_off(void **state)
{
	uint8_t m[sizeof(RA)];
	struct addr src = ll();
	struct ra_info ra;

	(void)state;
	memcpy(m, RA, sizeof(m));
	m[5] = 0;
	m[6] = m[7] = 0;
	m[35] = 0x80; /* prefix: L only */
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), 0);
	assert_false(ra.managed);
	assert_false(ra.other);
	assert_int_equal(ra.lifetime_s, 0);
	assert_true(ra.prefixes[0].onlink);
	assert_false(ra.prefixes[0].autonomous);
	/* no options at all */
	assert_int_equal(ra_parse(m, 16, &src, &ra), 0);
	assert_int_equal(ra.n_prefixes, 0);
	assert_int_equal(ra.mtu, 0);
	assert_memory_equal(ra.router_mac, (uint8_t[6]){ 0 }, 6);
}

static void test_refused(void **state)
{
	uint8_t m[sizeof(RA)];
	struct addr src = ll(), global = { .family = AF_INET6 }, v4 = { .family = AF_INET };
	struct ra_info ra;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &global.v6), 1);
	/* RFC 4861 6.1.2: the source must be link-local */
	assert_int_equal(ra_parse(RA, sizeof(RA), &global, &ra), -EBADMSG);
	assert_int_equal(ra_parse(RA, sizeof(RA), &v4, &ra), -EBADMSG);
	assert_int_equal(ra_parse(RA, sizeof(RA), NULL, &ra), -EBADMSG);
	/* type, code */
	memcpy(m, RA, sizeof(m));
	m[0] = 133;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), -EBADMSG);
	memcpy(m, RA, sizeof(m));
	m[1] = 1;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), -EBADMSG);
	/* an option of length 0 */
	memcpy(m, RA, sizeof(m));
	m[17] = 0;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), -EBADMSG);
	/* an option past the end */
	memcpy(m, RA, sizeof(m));
	m[17] = 20;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), -EBADMSG);
	/* a prefix option that is not 32 bytes, an MTU option that is not 8 */
	memcpy(m, RA, sizeof(m));
	m[33] = 5;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), -EBADMSG);
	memcpy(m, RA, sizeof(m));
	m[25] = 2;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), -EBADMSG);
	/* every truncation that is not at an option boundary */
	for (size_t n = 0; n < sizeof(RA); n++) {
		int r = ra_parse(RA, n, &src, &ra);

		if (n == 16 || n == 24 || n == 32 || n == 64)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, -EBADMSG);
	}
	/* a refused RA leaves nothing behind */
	assert_int_equal(ra.n_prefixes, 0);
	assert_false(ra.managed);
}

static void test_prefixes(void **state)
{
	uint8_t m[16 + 10 * 32];
	struct addr src = ll();
	struct ra_info ra;

	(void)state;
	memcpy(m, RA, 16);
	for (int i = 0; i < 10; i++) {
		uint8_t *o = m + 16 + 32 * i;

		memcpy(o, RA + 32, 32);
		o[21] = (uint8_t)i; /* 2001:db8:i::/64 */
	}
	/* the second: preferred beyond valid (RFC 4862 5.5.3 c), the third: /129 */
	m[16 + 32 + 8] = 0xff;
	m[16 + 64 + 2] = 129;
	assert_int_equal(ra_parse(m, sizeof(m), &src, &ra), 0);
	assert_int_equal(ra.n_prefixes, RA_PREFIX_MAX);
	assert_int_equal(ra.prefixes[0].prefix.addr.b[5], 0);
	assert_int_equal(ra.prefixes[1].prefix.addr.b[5], 3);
	assert_int_equal(ra.prefixes[RA_PREFIX_MAX - 1].prefix.addr.b[5], RA_PREFIX_MAX + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_flags_off),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_prefixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
