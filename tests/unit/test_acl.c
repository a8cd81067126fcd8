/*
 * test_acl.c - unit tests for src/core/acl.c: the allow list's words, and the verdict from
 * the list, the host's addresses (fed in as the kernel would report them) and the uplinks.
 *
 * The host of these tests:
 *   lo    (1)  127.0.0.1/8, ::1/128
 *   lan0  (2)  198.18.0.1/24, 2001:db8:20::1/64      no uplink: its subnets are "local"
 *   isp1  (3)  192.0.2.1/29, 2001:db8:1::1/64        uplink "isp1" by its source address
 *   wan2  (4)  203.0.113.2/24                        uplink "wan2" by its interface name
 *   tun0  (5)  10.8.0.1 peer 100.64.0.2/32            point-to-point, no uplink
 * Pure computation: no kernel, no sockets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acl.h"
#include "conf.h"
#include "nl.h"
#include "uplink.h"
#include "util.h"

enum { LO = 1, LAN = 2, ISP1 = 3, WAN2 = 4, TUN = 5 };

static struct addr A(const char *s)
{
	struct addr a;
	int r = addr_parse(s, &a);

	if (r < 0)
		fail_msg("addr_parse(\"%s\") = %d", s, r);
	return a;
}

/* An address as RTM_NEWADDR reports it: "198.18.0.1/24", host bits and all. */
static struct nl_addr IFA(int ifindex, const char *local, const char *peer)
{
	struct nl_addr a = {.ifindex = ifindex};
	char buf[64];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", local);
	slash = strchr(buf, '/');
	assert_non_null(slash);
	*slash = '\0';
	a.local.addr = A(buf);
	a.local.plen = (uint8_t)atoi(slash + 1);
	if (peer)
		a.peer = A(peer);
	return a;
}

struct host {
	struct uplink isp1, wan2;
	struct uplink *v[2];
	struct uplink_set set;
	struct acl *acl;
};

static void feed(struct acl *acl, bool del)
{
	const struct nl_addr addrs[] = {
		IFA(LO, "127.0.0.1/8", NULL),
		IFA(LO, "::1/128", NULL),
		IFA(LAN, "198.18.0.1/24", NULL),
		IFA(LAN, "2001:db8:20::1/64", NULL),
		IFA(ISP1, "192.0.2.1/29", NULL),
		IFA(ISP1, "2001:db8:1::1/64", NULL),
		IFA(WAN2, "203.0.113.2/24", NULL),
		IFA(TUN, "10.8.0.1/32", "100.64.0.2"),
	};

	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		acl_addr_event(acl, &addrs[i], del);
}

/* The allow list from one line of words, as the configuration hands it over. */
static int allow(struct acl *acl, const char *words)
{
	char *copy = strdup(words), *save = NULL;
	char *v[16];
	struct word_list l = {.v = v};
	int r;

	for (char *t = strtok_r(copy, " ", &save); t && l.n < ARRAY_SIZE(v);
		t = strtok_r(NULL, " ", &save))
		v[l.n++] = t;
	r = acl_set_allow(acl, &l);
	free(copy);
	return r;
}

static int setup(void **state)
{
	struct host *h = calloc(1, sizeof(*h));

	h->isp1 = (struct uplink){.name = "isp1", .source = A("192.0.2.1")};
	h->wan2 = (struct uplink){.name = "wan2", .ifindex = WAN2};
	snprintf(h->wan2.ifname, sizeof(h->wan2.ifname), "wan2");
	h->v[0] = &h->isp1;
	h->v[1] = &h->wan2;
	h->set = (struct uplink_set){.v = h->v, .n = 2};
	assert_int_equal(acl_new(&h->set, &h->acl), 0);
	feed(h->acl, false);
	assert_int_equal(allow(h->acl, "local"), 0);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct host *h = *state;

	acl_free(h->acl);
	free(h);
	return 0;
}

static enum acl_verdict check(struct host *h, const char *client, int ifindex)
{
	struct addr a = A(client);

	return acl_check(h->acl, &a, ifindex);
}

static void test_words(void **state)
{
	struct cidr c;

	(void)state;
	assert_int_equal(acl_word_parse("local", &c), 1);
	assert_int_equal(acl_word_parse("10.0.0.0/8", &c), 0);
	assert_int_equal(c.plen, 8);
	assert_int_equal(acl_word_parse("203.0.113.9", &c), 0);
	assert_int_equal(c.plen, 32);
	assert_int_equal(acl_word_parse("2001:db8::/32", &c), 0);
	assert_int_equal(acl_word_parse("Local", &c), -EINVAL);
	assert_int_equal(acl_word_parse("lan0", &c), -EINVAL);
	assert_int_equal(acl_word_parse("10.0.0.0/33", &c), -ERANGE);
	assert_int_equal(acl_word_parse("10.1.2.3/8", &c), -EDOM);
	assert_int_equal(acl_word_parse("", &c), -EINVAL);
}

/* "local": loopback, private and link-local ranges, non-uplink subnets, the host itself. */
static void test_local(void **state)
{
	struct host *h = *state;

	assert_int_equal(check(h, "127.0.0.1", LO), ACL_ALLOW);
	assert_int_equal(check(h, "::1", LO), ACL_ALLOW);
	assert_int_equal(check(h, "10.1.2.3", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "172.31.255.1", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "192.168.7.7", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "fd20::2", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "fe80::1", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "169.254.1.1", LAN), ACL_ALLOW);
	/* the LAN's own (public) subnets, and a point-to-point peer */
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "2001:db8:20::77", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "100.64.0.2", TUN), ACL_ALLOW);
	/* next to those: not local */
	assert_int_equal(check(h, "198.18.1.77", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "172.32.0.1", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "100.64.0.3", TUN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "2001:db8:21::77", LAN), ACL_DENY_UNLISTED);
	/* an uplink's subnet is not local, even from a LAN interface */
	assert_int_equal(check(h, "192.0.2.2", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "2001:db8:1::2", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "203.0.113.9", LAN), ACL_DENY_UNLISTED);
}

/* Through an uplink interface, nothing is admitted, whatever the list says. */
static void test_uplink_interfaces(void **state)
{
	struct host *h = *state;

	assert_int_equal(allow(h->acl, "local 0.0.0.0/0 ::/0"), 0);
	/* isp1 holds uplink isp1's source address; wan2 is named by uplink wan2 */
	assert_int_equal(check(h, "192.0.2.2", ISP1), ACL_DENY_UPLINK);
	assert_int_equal(check(h, "10.1.2.3", ISP1), ACL_DENY_UPLINK);
	assert_int_equal(check(h, "fe80::2", ISP1), ACL_DENY_UPLINK);
	assert_int_equal(check(h, "198.18.0.77", WAN2), ACL_DENY_UPLINK);
	assert_int_equal(check(h, "127.0.0.2", WAN2), ACL_DENY_UPLINK);
	/* the same clients through the LAN: the list decides */
	assert_int_equal(check(h, "192.0.2.2", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "10.1.2.3", LAN), ACL_ALLOW);
	/* an interface not known: refused */
	assert_int_equal(check(h, "10.1.2.3", 0), ACL_DENY_NO_IFACE);
	assert_int_equal(check(h, "10.1.2.3", -ENOENT), ACL_DENY_NO_IFACE);
}

/* The host itself connects from its own address; its packets arrive "through" the interface
 * with the address it asked for, an uplink's too: only the list decides. */
static void test_host_itself(void **state)
{
	struct host *h = *state;

	assert_int_equal(check(h, "192.0.2.1", ISP1), ACL_ALLOW);
	assert_int_equal(check(h, "203.0.113.2", WAN2), ACL_ALLOW);
	assert_int_equal(check(h, "2001:db8:1::1", 0), ACL_ALLOW);
	/* a neighbour on the uplink is not the host */
	assert_int_equal(check(h, "192.0.2.3", ISP1), ACL_DENY_UPLINK);
	/* an explicit list without "local" leaves the host out too */
	assert_int_equal(allow(h->acl, "198.18.0.0/24"), 0);
	assert_int_equal(check(h, "192.0.2.1", ISP1), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "127.0.0.1", LO), ACL_DENY_UNLISTED);
}

/* An explicit list replaces the default; "local" in it widens the default. */
static void test_lists(void **state)
{
	struct host *h = *state;

	assert_int_equal(allow(h->acl, "198.51.100.0/24 2001:db8:77::5"), 0);
	assert_int_equal(check(h, "198.51.100.9", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "2001:db8:77::5", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "2001:db8:77::6", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "10.1.2.3", LAN), ACL_DENY_UNLISTED);
	assert_int_equal(allow(h->acl, "local 198.51.100.0/24"), 0);
	assert_int_equal(check(h, "198.51.100.9", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "198.51.101.9", LAN), ACL_DENY_UNLISTED);
	/* a bad word changes nothing */
	assert_int_equal(allow(h->acl, "local lan0"), -EINVAL);
	assert_int_equal(check(h, "198.51.100.9", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "198.51.101.9", LAN), ACL_DENY_UNLISTED);
}

/* Addresses come and go: the verdicts follow. */
static void test_addresses_follow(void **state)
{
	struct host *h = *state;
	struct nl_addr lan = IFA(LAN, "198.18.0.1/24", NULL);
	struct nl_addr moved = IFA(LAN, "192.0.2.1/29", NULL);
	struct nl_addr isp1 = IFA(ISP1, "192.0.2.1/29", NULL);

	acl_addr_event(h->acl, &lan, true);
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_DENY_UNLISTED);
	acl_addr_event(h->acl, &lan, false);
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_ALLOW);
	/* a second report of an address replaces the first, not adds to it */
	acl_addr_event(h->acl, &lan, false);
	acl_addr_event(h->acl, &lan, true);
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_DENY_UNLISTED);
	/* isp1's source address moves to lan0: lan0 becomes the uplink interface */
	acl_addr_event(h->acl, &isp1, true);
	acl_addr_event(h->acl, &moved, false);
	assert_int_equal(check(h, "192.0.2.2", ISP1), ACL_DENY_UNLISTED);
	assert_int_equal(check(h, "10.1.2.3", ISP1), ACL_ALLOW);
	assert_int_equal(check(h, "10.1.2.3", LAN), ACL_DENY_UPLINK);
	/* everything gone: the uplink named by its interface stays one */
	feed(h->acl, true);
	acl_addr_event(h->acl, &moved, true);
	assert_int_equal(check(h, "10.1.2.3", LAN), ACL_ALLOW);
	assert_int_equal(check(h, "10.1.2.3", WAN2), ACL_DENY_UPLINK);
	assert_int_equal(check(h, "198.18.0.77", LAN), ACL_DENY_UNLISTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words),
		cmocka_unit_test_setup_teardown(test_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_interfaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_itself, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addresses_follow, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
