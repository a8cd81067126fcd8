/*
 * test_nl.c - the netlink builders and parsers of src/net/ without a kernel: requests are
 * compared byte for byte with hand-laid messages (layout per the uapi headers; the kernel
 * tests check the kernel accepts them), parsers read canned kernel messages and the
 * builders' own output back, and malformed or random input must be refused, never crash
 * (run it under ASan+UBSan).
 *
 * It must not open a netlink socket: test_nl_kernel.c does that, in a private namespace.
 */
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"
#include "nl.h"
#include "util.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the expected messages below are laid out for a little-endian host"
#endif

/* Little-endian host order, network order, and netlink headers, for the byte arrays. */
#define B16(x) (uint8_t)((x) & 0xff), (uint8_t)(((x) >> 8) & 0xff)
#define B32(x) B16((x) & 0xffff), B16(((unsigned)(x) >> 16) & 0xffff)
#define BE16(x) (uint8_t)(((x) >> 8) & 0xff), (uint8_t)((x) & 0xff)
#define BE32(x) BE16(((unsigned)(x) >> 16) & 0xffff), BE16((x) & 0xffff)
#define NLH(len, type, flags) B32(len), B16(type), B16(flags), B32(0), B32(0)
#define NLA(len, type) B16(len), B16(type)

#define F_ADD (NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
#define F_REPLACE (NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
#define F_REQ (NLM_F_REQUEST | NLM_F_ACK)

static uint8_t buf[NL_MSG_BUFSIZE];

static struct addr ip(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static struct cidr pfx(const char *s)
{
	struct cidr c;

	assert_int_equal(cidr_parse(s, CIDR_BARE, &c), 0);
	return c;
}

/* An interface address: host bits kept. */
static struct cidr ifaddr(const char *s, uint8_t plen)
{
	struct cidr c = { .addr = ip(s), .plen = plen };

	return c;
}

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
	size_t i;

	fprintf(stderr, "%s (%zu bytes):", what, n);
	for (i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 16 ? " " : "\n  ", p[i]);
	fprintf(stderr, "\n");
}

/* The message in buf must be exactly want. */
static void expect_msg(const uint8_t *want, size_t want_len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;

	if (nlh->nlmsg_len != want_len || memcmp(buf, want, want_len)) {
		hexdump("got", buf, MIN((size_t)nlh->nlmsg_len, sizeof(buf)));
		hexdump("want", want, want_len);
		fail_msg("message differs");
	}
}

/*
 * A builder given every buffer size below what it needs must say -EMSGSIZE and write
 * nothing past the buffer (ASan watches the exact-size heap copy).
 */
typedef int (*build_fn)(void *b, size_t len, const void *obj);

static void expect_bounded(build_fn fn, const void *obj)
{
	size_t need, len;

	assert_int_equal(fn(buf, sizeof(buf), obj), 0);
	need = ((const struct nlmsghdr *)buf)->nlmsg_len;
	for (len = 0; len < need; len++) {
		uint8_t *small = malloc(len ? len : 1);

		assert_int_equal(fn(small, len, obj), -EMSGSIZE);
		free(small);
	}
	{
		uint8_t *exact = malloc(need);

		assert_int_equal(fn(exact, need, obj), 0);
		assert_memory_equal(exact, buf, need);
		free(exact);
	}
}

/* ---- routes ---- */

static int build_route_add(void *b, size_t len, const void *r)
{
	return nl_route_build(b, len, NL_ADD, r);
}

static int build_route_replace(void *b, size_t len, const void *r)
{
	return nl_route_build(b, len, NL_REPLACE, r);
}

static void test_route_single(void **state)
{
	struct nl_route r = {
		.family = AF_INET,
		.table = 1000,
		.protocol = 0x45,
		.dst = pfx("203.0.113.0/24"),
		.priority = 10,
		.oif = 3,
		.gw = ip("192.0.2.2"),
	};
	static const uint8_t want[] = {
		NLH(68, RTM_NEWROUTE, F_ADD),
		/* rtmsg: family, dst_len, src_len, tos, table (in RTA_TABLE), proto, scope, type */
		AF_INET, 24, 0, 0, RT_TABLE_UNSPEC, 0x45, RT_SCOPE_UNIVERSE, RTN_UNICAST, B32(0),
		NLA(8, RTA_TABLE), B32(1000),
		NLA(8, RTA_DST), 203, 0, 113, 0,
		NLA(8, RTA_PRIORITY), B32(10),
		NLA(8, RTA_OIF), B32(3),
		NLA(8, RTA_GATEWAY), 192, 0, 2, 2,
	};

	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), 0);
	expect_msg(want, sizeof(want));
	expect_bounded(build_route_add, &r);
}

static const struct nl_hop three_hops[] = {
	{ .gw = { .family = AF_INET, .b = { 192, 0, 2, 2 } }, .oif = 3, .weight = 1 },
	{ .gw = { .family = AF_INET, .b = { 192, 0, 2, 3 } }, .oif = 3, .weight = 2 },
	/* IPv4 over an IPv6 gateway: RTA_VIA */
	{ .gw = { .family = AF_INET6, .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } }, .oif = 4,
		.weight = 3 },
};

static void test_route_multipath(void **state)
{
	struct nl_route r = {
		.family = AF_INET,
		.table = 101,
		.protocol = 0x45,
		.hops = three_hops,
		.n_hops = ARRAY_SIZE(three_hops),
	};
	static const uint8_t want[] = {
		NLH(104, RTM_NEWROUTE, F_REPLACE),
		AF_INET, 0, 0, 0, 101, 0x45, RT_SCOPE_UNIVERSE, RTN_UNICAST, B32(0),
		NLA(8, RTA_TABLE), B32(101),
		NLA(68, RTA_MULTIPATH),
		/* rtnexthop: len, flags, hops = weight - 1, ifindex; then its attributes */
		B16(16), 0, 0, B32(3),
		NLA(8, RTA_GATEWAY), 192, 0, 2, 2,
		B16(16), 0, 1, B32(3),
		NLA(8, RTA_GATEWAY), 192, 0, 2, 3,
		B16(32), 0, 2, B32(4),
		NLA(22, RTA_VIA), B16(AF_INET6), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 2, 0, 0, /* padding */
	};

	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_REPLACE, &r), 0);
	expect_msg(want, sizeof(want));
	expect_bounded(build_route_replace, &r);
}

static void test_route_nh_id_and_del(void **state)
{
	struct nl_route r = {
		.family = AF_INET,
		.table = 102,
		.protocol = 0x45,
		.dst = pfx("198.18.0.0/15"),
		.nh_id = 100,
	};
	static const uint8_t want_nh[] = {
		NLH(52, RTM_NEWROUTE, F_ADD),
		AF_INET, 15, 0, 0, 102, 0x45, RT_SCOPE_UNIVERSE, RTN_UNICAST, B32(0),
		NLA(8, RTA_TABLE), B32(102),
		NLA(8, RTA_DST), 198, 18, 0, 0,
		NLA(8, RTA_NH_ID), B32(100),
	};
	/* A delete matches any scope (RT_SCOPE_NOWHERE) and type (0), as ip(8) does. */
	static const uint8_t want_del[] = {
		NLH(44, RTM_DELROUTE, F_REQ),
		AF_INET, 15, 0, 0, 102, 0x45, RT_SCOPE_NOWHERE, RTN_UNSPEC, B32(0),
		NLA(8, RTA_TABLE), B32(102),
		NLA(8, RTA_DST), 198, 18, 0, 0,
	};

	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), 0);
	expect_msg(want_nh, sizeof(want_nh));
	r.nh_id = 0;
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_DEL, &r), 0);
	expect_msg(want_del, sizeof(want_del));
}

static void test_route_invalid(void **state)
{
	struct nl_hop bad_weight[] = { { .oif = 3, .weight = 257 } };
	struct nl_route r = { .family = AF_INET, .dst = pfx("10.0.0.0/8") };

	/* the control: this one is fine */
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), 0);
	/* one path only: nh id and gateway */
	r.nh_id = 1;
	r.gw = ip("192.0.2.1");
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	/* IPv6 route over an IPv4 gateway has no encoding */
	memset(&r, 0, sizeof(r));
	r.family = AF_INET6;
	r.gw = ip("192.0.2.1");
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	/* dst of the other family, prefix too long */
	memset(&r, 0, sizeof(r));
	r.family = AF_INET6;
	r.dst = pfx("10.0.0.0/8");
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	r.family = AF_INET;
	r.dst.plen = 33;
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	/* weight past 256 */
	memset(&r, 0, sizeof(r));
	r.family = AF_INET;
	r.hops = bad_weight;
	r.n_hops = 1;
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	bad_weight[0].weight = 256;
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), 0);
	/* no family, bad op */
	r.family = 0;
	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	r.family = AF_INET;
	assert_int_equal(nl_route_build(buf, sizeof(buf), _NL_OP_MAX, &r), -EINVAL);
}

static void test_route_roundtrip(void **state)
{
	struct nl_route r = {
		.family = AF_INET,
		.table = 101,
		.protocol = 0x45,
		.dst = pfx("198.51.100.0/24"),
		.prefsrc = ip("192.0.2.1"),
		.priority = 7,
		.hops = three_hops,
		.n_hops = ARRAY_SIZE(three_hops),
	};
	struct nl_hop hops[3];
	struct nl_route got;
	size_t i;

	assert_int_equal(nl_route_build(buf, sizeof(buf), NL_ADD, &r), 0);
	assert_int_equal(nl_route_parse((struct nlmsghdr *)buf, &got, hops, 3), 0);
	assert_int_equal(got.family, AF_INET);
	assert_int_equal(got.table, 101);
	assert_int_equal(got.protocol, 0x45);
	assert_int_equal(got.type, RTN_UNICAST);
	assert_true(cidr_cmp(&got.dst, &r.dst) == 0);
	assert_true(addr_eq(&got.prefsrc, &r.prefsrc));
	assert_int_equal(got.priority, 7);
	assert_int_equal(got.oif, 0);
	assert_false(addr_is_set(&got.gw));
	assert_int_equal(got.n_hops, 3);
	assert_ptr_equal(got.hops, hops);
	for (i = 0; i < 3; i++) {
		assert_true(addr_eq(&hops[i].gw, &three_hops[i].gw));
		assert_int_equal(hops[i].oif, three_hops[i].oif);
		assert_int_equal(hops[i].weight, three_hops[i].weight);
	}
	/* too little room for the legs: -ENOSPC and how many there are */
	assert_int_equal(nl_route_parse((struct nlmsghdr *)buf, &got, hops, 2), -ENOSPC);
	assert_int_equal(got.n_hops, 3);
	/* a message that is not a route */
	((struct nlmsghdr *)buf)->nlmsg_type = RTM_NEWLINK;
	assert_int_equal(nl_route_parse((struct nlmsghdr *)buf, &got, hops, 3), -EBADMSG);
}

/* A route as the kernel sends it, with attributes we do not read and a bad leg. */
static void test_route_parse_kernel(void **state)
{
	uint8_t msg[] = {
		NLH(100, RTM_NEWROUTE, NLM_F_MULTI),
		AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST,
		B32(0),
		NLA(8, RTA_TABLE), B32(RT_TABLE_MAIN),
		NLA(8, RTA_NH_ID), B32(100),
		NLA(20, RTA_CACHEINFO), B32(0), B32(0), B32(0), B32(0), /* ignored */
		NLA(36, RTA_MULTIPATH),
		B16(16), RTNH_F_LINKDOWN, 0, B32(3),
		NLA(8, RTA_GATEWAY), 192, 0, 2, 2,
		B16(16), 0, 255, B32(5),
		NLA(8, RTA_GATEWAY), 192, 0, 2, 3,
	};
	struct nlmsghdr *nlh = (struct nlmsghdr *)msg;
	struct nl_hop hops[4];
	struct nl_route r;

	assert_int_equal(nl_route_parse(nlh, &r, hops, 4), 0);
	assert_int_equal(r.nh_id, 100);
	assert_int_equal(r.table, RT_TABLE_MAIN);
	assert_false(addr_is_set(&r.dst.addr)); /* the default route */
	assert_int_equal(r.n_hops, 2);
	assert_int_equal(hops[0].flags, RTNH_F_LINKDOWN);
	assert_int_equal(hops[1].weight, 256);
	assert_int_equal(hops[1].oif, 5);
	/* a leg longer than what is left */
	msg[68] = 40;
	assert_int_equal(nl_route_parse(nlh, &r, hops, 4), -EBADMSG);
	msg[68] = 16;
	/* a gateway of the wrong size */
	msg[76] = 7;
	assert_int_equal(nl_route_parse(nlh, &r, hops, 4), -EBADMSG);
	msg[76] = 8;
	assert_int_equal(nl_route_parse(nlh, &r, hops, 4), 0);
	/* shorter than its struct rtmsg */
	nlh->nlmsg_len = 24;
	assert_int_equal(nl_route_parse(nlh, &r, hops, 4), -EBADMSG);
	/* not a family we read (IPMR dumps come with AF_UNSPEC requests) */
	nlh->nlmsg_len = sizeof(msg);
	msg[16] = RTNL_FAMILY_IPMR;
	assert_int_equal(nl_route_parse(nlh, &r, hops, 4), -EAFNOSUPPORT);
}

static void test_route_dump_request(void **state)
{
	static const uint8_t want[] = {
		NLH(36, RTM_GETROUTE, F_REQ | NLM_F_DUMP),
		AF_INET6, 0, 0, 0, RT_TABLE_UNSPEC, 0, 0, 0, B32(0),
		NLA(8, RTA_TABLE), B32(1000),
	};

	assert_int_equal(nl_route_build_dump(buf, sizeof(buf), AF_INET6, 1000), 0);
	expect_msg(want, sizeof(want));
}

static void test_route_get_request(void **state)
{
	static const uint8_t want4[] = {
		NLH(36, RTM_GETROUTE, F_REQ),
		AF_INET, 32, 0, 0, 0, 0, 0, 0, B32(RTM_F_LOOKUP_TABLE),
		NLA(8, RTA_DST), 192, 0, 2, 7,
	};
	static const uint8_t want6[] = {
		NLH(48, RTM_GETROUTE, F_REQ),
		AF_INET6, 128, 0, 0, 0, 0, 0, 0, B32(0),
		NLA(20, RTA_DST), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
	};
	struct addr a4 = ip("192.0.2.7"), a6 = ip("2001:db8::7"), none = { 0 };

	assert_int_equal(nl_route_build_get(buf, sizeof(buf), &a4), 0);
	expect_msg(want4, sizeof(want4));
	assert_int_equal(nl_route_build_get(buf, sizeof(buf), &a6), 0);
	expect_msg(want6, sizeof(want6));
	assert_int_equal(nl_route_build_get(buf, sizeof(buf), &none), -EINVAL);
	assert_int_equal(nl_route_build_get(buf, sizeof(want4) - 1, &a4), -EMSGSIZE);
}

/* An input lookup as a reply would see it: source, arriving interface and mark. */
static void test_route_lookup_request(void **state)
{
	static const uint8_t want[] = {
		NLH(60, RTM_GETROUTE, F_REQ),
		AF_INET, 32, 32, 0, 0, 0, 0, 0, B32(RTM_F_LOOKUP_TABLE),
		NLA(8, RTA_DST), 192, 0, 2, 9,
		NLA(8, RTA_SRC), 198, 51, 100, 2,
		NLA(8, RTA_IIF), B32(3),
		NLA(8, RTA_MARK), B32(0x200),
	};
	struct nl_route_query q = {.dst = ip("192.0.2.9"), .src = ip("198.51.100.2"), .iif = 3,
		.mark = 0x200};

	assert_int_equal(nl_route_build_lookup(buf, sizeof(buf), &q), 0);
	expect_msg(want, sizeof(want));
	/* negative: a source of the other family */
	q.src = ip("2001:db8::2");
	assert_int_equal(nl_route_build_lookup(buf, sizeof(buf), &q), -EINVAL);
}

/* ---- nexthops ---- */

static int build_nh_replace(void *b, size_t len, const void *nh)
{
	return nl_nexthop_build(b, len, NL_REPLACE, nh);
}

static void test_nexthop_resilient(void **state)
{
	struct nl_nh_member members[] = { { 1, 1 }, { 2, 3 } };
	struct nl_nexthop nh = {
		.id = 100,
		.group_type = NL_NH_GROUP_RES,
		.members = members,
		.n_members = 2,
		.buckets = 32,
		.idle_timer_ms = 10000,
	};
	static const uint8_t want[] = {
		NLH(80, RTM_NEWNEXTHOP, F_REPLACE),
		/* nhmsg: family (none for groups), scope, protocol, resvd, flags */
		AF_UNSPEC, 0, 0, 0, B32(0),
		NLA(8, NHA_ID), B32(100),
		/* nexthop_grp: id, weight - 1, resvd1, resvd2 */
		NLA(20, NHA_GROUP), B32(1), 0, 0, B16(0), B32(2), 2, 0, B16(0),
		NLA(6, NHA_GROUP_TYPE), B16(NEXTHOP_GRP_TYPE_RES), 0, 0,
		NLA(20, NHA_RES_GROUP | NLA_F_NESTED),
		NLA(6, NHA_RES_GROUP_BUCKETS), B16(32), 0, 0,
		NLA(8, NHA_RES_GROUP_IDLE_TIMER), B32(1000), /* clock_t: USER_HZ = 100 */
	};
	struct nl_nh_member got_members[2];
	struct nl_nexthop got;

	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_REPLACE, &nh), 0);
	expect_msg(want, sizeof(want));
	expect_bounded(build_nh_replace, &nh);
	/* back again */
	assert_int_equal(nl_nexthop_parse((struct nlmsghdr *)buf, &got, got_members, 2), 0);
	assert_int_equal(got.id, 100);
	assert_int_equal(got.group_type, NL_NH_GROUP_RES);
	assert_int_equal(got.n_members, 2);
	assert_int_equal(got_members[1].id, 2);
	assert_int_equal(got_members[1].weight, 3);
	assert_int_equal(got.buckets, 32);
	assert_int_equal(got.idle_timer_ms, 10000);
	assert_int_equal(nl_nexthop_parse((struct nlmsghdr *)buf, &got, got_members, 1), -ENOSPC);
	assert_int_equal(got.n_members, 2);
	/* weights past 256 and member id 0 are refused */
	members[0].weight = 257;
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_ADD, &nh), -EINVAL);
	members[0].weight = 256;
	members[0].id = 0;
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_ADD, &nh), -EINVAL);
}

static void test_nexthop_single_and_del(void **state)
{
	struct nl_nexthop nh = { .id = 1, .oif = 3, .gw = ip("192.0.2.2"), .protocol = 0x45 };
	static const uint8_t want[] = {
		NLH(48, RTM_NEWNEXTHOP, F_ADD),
		AF_INET, 0, 0x45, 0, B32(0),
		NLA(8, NHA_ID), B32(1),
		NLA(8, NHA_OIF), B32(3),
		NLA(8, NHA_GATEWAY), 192, 0, 2, 2,
	};
	static const uint8_t want_del[] = {
		NLH(32, RTM_DELNEXTHOP, F_REQ),
		AF_UNSPEC, 0, 0, 0, B32(0),
		NLA(8, NHA_ID), B32(1),
	};
	static const uint8_t want_blackhole[] = {
		NLH(36, RTM_NEWNEXTHOP, F_ADD),
		AF_INET, 0, 0, 0, B32(0),
		NLA(8, NHA_ID), B32(9),
		NLA(4, NHA_BLACKHOLE),
	};
	struct nl_nexthop bh = { .id = 9, .blackhole = true };
	struct nl_nexthop got;

	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_ADD, &nh), 0);
	expect_msg(want, sizeof(want));
	assert_int_equal(nl_nexthop_parse((struct nlmsghdr *)buf, &got, NULL, 0), 0);
	assert_int_equal(got.family, AF_INET);
	assert_int_equal(got.oif, 3);
	assert_true(addr_eq(&got.gw, &nh.gw));
	assert_int_equal(got.n_members, 0);
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_DEL, &nh), 0);
	expect_msg(want_del, sizeof(want_del));
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_ADD, &bh), 0);
	expect_msg(want_blackhole, sizeof(want_blackhole));
	/* delete needs an id; a gateway of another family than the nexthop's */
	nh.id = 0;
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_DEL, &nh), -EINVAL);
	nh.family = AF_INET6;
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_ADD, &nh), -EINVAL);
	/* a dump message without its NHA_ID is malformed */
	assert_int_equal(nl_nexthop_build(buf, sizeof(buf), NL_ADD, &bh), 0);
	((struct nlmsghdr *)buf)->nlmsg_len = 24;
	assert_int_equal(nl_nexthop_parse((struct nlmsghdr *)buf, &got, NULL, 0), -EBADMSG);
}

/* ---- rules ---- */

static int build_rule_add(void *b, size_t len, const void *r)
{
	return nl_rule_build(b, len, NL_ADD, r);
}

static void test_rule(void **state)
{
	struct nl_rule r = {
		.family = AF_INET,
		.has_priority = true,
		.priority = 1000,
		.has_fwmark = true,
		.fwmark = 0x100,
		.fwmask = 0xff00,
		.table = 1000,
		.protocol = 0x45,
	};
	static const uint8_t want[] = {
		NLH(68, RTM_NEWRULE, F_ADD),
		/* fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags */
		AF_INET, 0, 0, 0, RT_TABLE_UNSPEC, 0, 0, FR_ACT_TO_TBL, B32(0),
		NLA(8, FRA_PRIORITY), B32(1000),
		NLA(8, FRA_TABLE), B32(1000),
		NLA(8, FRA_FWMARK), B32(0x100),
		NLA(8, FRA_FWMASK), B32(0xff00),
		NLA(5, FRA_PROTOCOL), 0x45, 0, 0, 0,
	};
	static const uint8_t want_misc[] = {
		NLH(76, RTM_DELRULE, F_REQ),
		AF_INET6, 0, 32, 0, RT_TABLE_MAIN, 0, 0, 0, B32(0),
		NLA(8, FRA_TABLE), B32(RT_TABLE_MAIN),
		NLA(20, FRA_SRC), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		NLA(12, FRA_IIFNAME), 'l', 'a', 'n', '0', '.', '1', '2', 0,
		NLA(8, FRA_SUPPRESS_PREFIXLEN), B32(0),
	};
	struct nl_rule misc = {
		.family = AF_INET6,
		.table = RT_TABLE_MAIN,
		.src = pfx("2001:db8::/32"),
		.iif = "lan0.12",
		.has_suppress_prefixlen = true,
	};
	struct nl_rule got;

	assert_int_equal(nl_rule_build(buf, sizeof(buf), NL_ADD, &r), 0);
	expect_msg(want, sizeof(want));
	expect_bounded(build_rule_add, &r);
	assert_int_equal(nl_rule_parse((struct nlmsghdr *)buf, &got), 0);
	assert_true(got.has_priority && got.priority == 1000);
	assert_true(got.has_fwmark && got.fwmark == 0x100 && got.fwmask == 0xff00);
	assert_int_equal(got.table, 1000);
	assert_int_equal(got.protocol, 0x45);
	assert_int_equal(got.action, FR_ACT_TO_TBL);
	assert_false(got.has_suppress_prefixlen);
	assert_false(got.has_goto);

	assert_int_equal(nl_rule_build(buf, sizeof(buf), NL_DEL, &misc), 0);
	expect_msg(want_misc, sizeof(want_misc));
	assert_int_equal(nl_rule_parse((struct nlmsghdr *)buf, &got), 0);
	assert_true(got.has_suppress_prefixlen && got.suppress_prefixlen == 0);
	assert_string_equal(got.iif, "lan0.12");
	assert_true(cidr_cmp(&got.src, &misc.src) == 0);

	/* the kernel would add a duplicate for NLM_F_REPLACE */
	assert_int_equal(nl_rule_build(buf, sizeof(buf), NL_REPLACE, &r), -EOPNOTSUPP);
	/* goto sets the action on add */
	memset(&r, 0, sizeof(r));
	r.family = AF_INET;
	r.has_goto = true;
	r.goto_priority = 32000;
	assert_int_equal(nl_rule_build(buf, sizeof(buf), NL_ADD, &r), 0);
	assert_int_equal(nl_rule_parse((struct nlmsghdr *)buf, &got), 0);
	assert_int_equal(got.action, FR_ACT_GOTO);
	assert_true(got.has_goto && got.goto_priority == 32000);
	/* a name too long for IFNAMSIZ, a prefix of the other family */
	memset(r.iif, 'x', sizeof(r.iif));
	assert_int_equal(nl_rule_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
	memset(r.iif, 0, sizeof(r.iif));
	r.dst = pfx("2001:db8::/32");
	assert_int_equal(nl_rule_build(buf, sizeof(buf), NL_ADD, &r), -EINVAL);
}

/* The kernel leaves out FRA_FWMASK when it is ~0 and FRA_PRIORITY when it is 0. */
static void test_rule_parse_kernel(void **state)
{
	uint8_t msg[] = {
		NLH(44, RTM_NEWRULE, NLM_F_MULTI),
		AF_INET, 0, 0, 0, RT_TABLE_MAIN, 0, 0, FR_ACT_TO_TBL, B32(0),
		NLA(8, FRA_TABLE), B32(RT_TABLE_MAIN),
		NLA(8, FRA_FWMARK), B32(0x42),
	};
	struct nl_rule r;

	assert_int_equal(nl_rule_parse((struct nlmsghdr *)msg, &r), 0);
	assert_true(r.has_priority && r.priority == 0);
	assert_true(r.has_fwmark && r.fwmark == 0x42 && r.fwmask == 0xffffffff);
	/* FRA_FWMARK of the wrong size */
	msg[36] = 6;
	assert_int_equal(nl_rule_parse((struct nlmsghdr *)msg, &r), -EBADMSG);
}

/* ---- links ---- */

static void test_link_veth_macvlan(void **state)
{
	static const uint8_t want_veth[] = {
		NLH(96, RTM_NEWLINK, F_ADD),
		/* ifinfomsg: family, pad, type, index, flags, change */
		AF_UNSPEC, 0, B16(0), B32(0), B32(0), B32(0),
		NLA(8, IFLA_IFNAME), 'e', 'g', '0', 0,
		NLA(56, IFLA_LINKINFO),
		NLA(9, IFLA_INFO_KIND), 'v', 'e', 't', 'h', 0, 0, 0, 0,
		NLA(40, IFLA_INFO_DATA),
		NLA(36, VETH_INFO_PEER),
		AF_UNSPEC, 0, B16(0), B32(0), B32(0), B32(0),
		NLA(8, IFLA_IFNAME), 'e', 'g', '1', 0,
		NLA(8, IFLA_NET_NS_FD), B32(7),
	};
	static const uint8_t want_macvlan[] = {
		NLH(88, RTM_NEWLINK, F_ADD),
		AF_UNSPEC, 0, B16(0), B32(0), B32(0), B32(0),
		NLA(8, IFLA_IFNAME), 'm', 'v', '0', 0,
		NLA(8, IFLA_LINK), B32(3),
		NLA(10, IFLA_ADDRESS), 0x02, 0, 0, 0, 0, 0x01, 0, 0,
		NLA(28, IFLA_LINKINFO),
		NLA(12, IFLA_INFO_KIND), 'm', 'a', 'c', 'v', 'l', 'a', 'n', 0,
		NLA(12, IFLA_INFO_DATA),
		NLA(8, IFLA_MACVLAN_MODE), B32(MACVLAN_MODE_BRIDGE),
	};
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	struct nl_macvlan m = { .name = "mv0", .parent = 3, .mode = NL_MACVLAN_BRIDGE, .mac = mac };
	struct nl_link l;

	assert_int_equal(nl_link_build_veth(buf, sizeof(buf), "eg0", "eg1", 7), 0);
	expect_msg(want_veth, sizeof(want_veth));
	/* without a namespace: no IFLA_NET_NS_FD */
	assert_int_equal(nl_link_build_veth(buf, sizeof(buf), "eg0", "eg1", -1), 0);
	assert_int_equal(((struct nlmsghdr *)buf)->nlmsg_len, 88);
	assert_int_equal(nl_link_build_macvlan(buf, sizeof(buf), &m), 0);
	expect_msg(want_macvlan, sizeof(want_macvlan));
	/* a create request parses like a link message */
	assert_int_equal(nl_link_parse((struct nlmsghdr *)buf, &l), 0);
	assert_string_equal(l.name, "mv0");
	assert_string_equal(l.kind, "macvlan");
	assert_int_equal(l.macvlan_mode, NL_MACVLAN_BRIDGE);
	assert_int_equal(l.parent, 3);
	assert_int_equal(l.addr_len, 6);
	assert_memory_equal(l.addr, mac, 6);
	assert_int_equal(l.link_netnsid, -1);
	/* names: empty, too long; no parent; mode out of range */
	assert_int_equal(nl_link_build_veth(buf, sizeof(buf), "", "eg1", -1), -EINVAL);
	assert_int_equal(nl_link_build_veth(buf, sizeof(buf), "eg0", "0123456789abcdef", -1),
		-EINVAL);
	m.parent = 0;
	assert_int_equal(nl_link_build_macvlan(buf, sizeof(buf), &m), -EINVAL);
	m.parent = 3;
	m.mode = _NL_MACVLAN_MODE_MAX;
	assert_int_equal(nl_link_build_macvlan(buf, sizeof(buf), &m), -EINVAL);
	assert_int_equal(nl_macvlan_mode_from_name("passthru"), NL_MACVLAN_PASSTHRU);
	assert_int_equal(nl_macvlan_mode_from_name("bridged"), -EINVAL);
}

static void test_link_change(void **state)
{
	static const uint8_t mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	struct nl_link_change c = {
		.ifindex = 3,
		.admin = NL_LINK_UP,
		.mtu = 1400,
		.mac = mac,
		.mac_len = 6,
	};
	static const uint8_t want[] = {
		NLH(52, RTM_NEWLINK, F_REQ),
		AF_UNSPEC, 0, B16(0), B32(3), B32(IFF_UP), B32(IFF_UP),
		NLA(8, IFLA_MTU), B32(1400),
		NLA(10, IFLA_ADDRESS), 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0,
	};
	static const uint8_t want_down[] = {
		NLH(32, RTM_NEWLINK, F_REQ),
		AF_UNSPEC, 0, B16(0), B32(3), B32(0), B32(IFF_UP),
	};
	static const uint8_t want_get[] = {
		NLH(48, RTM_GETLINK, F_REQ),
		AF_UNSPEC, 0, B16(0), B32(0), B32(0), B32(0),
		NLA(8, IFLA_IFNAME), 'e', 'g', '0', 0,
		NLA(8, IFLA_EXT_MASK), B32(RTEXT_FILTER_SKIP_STATS),
	};
	static const uint8_t want_gen[] = {
		NLH(48, RTM_NEWLINK, F_REQ),
		AF_UNSPEC, 0, B16(0), B32(3), B32(0), B32(0),
		NLA(16, IFLA_AF_SPEC), NLA(12, AF_INET6),
		NLA(5, IFLA_INET6_ADDR_GEN_MODE), IN6_ADDR_GEN_MODE_EUI64, 0, 0, 0,
	};
	struct nl_link_change down = { .ifindex = 3, .admin = NL_LINK_DOWN };
	struct nl_link_change gen = { .ifindex = 3, .addr_gen = NL_ADDR_GEN_EUI64 };

	assert_int_equal(nl_link_build_change(buf, sizeof(buf), &gen), 0);
	expect_msg(want_gen, sizeof(want_gen));
	gen.addr_gen = _NL_ADDR_GEN_MAX;
	assert_int_equal(nl_link_build_change(buf, sizeof(buf), &gen), -EINVAL);
	assert_int_equal(nl_link_build_change(buf, sizeof(buf), &c), 0);
	expect_msg(want, sizeof(want));
	assert_int_equal(nl_link_build_change(buf, sizeof(buf), &down), 0);
	expect_msg(want_down, sizeof(want_down));
	assert_int_equal(nl_link_build_get(buf, sizeof(buf), 0, "eg0"), 0);
	expect_msg(want_get, sizeof(want_get));
	down.ifindex = 0;
	assert_int_equal(nl_link_build_change(buf, sizeof(buf), &down), -EINVAL);
	assert_int_equal(nl_link_build_get(buf, sizeof(buf), 0, NULL), -EINVAL);
	assert_int_equal(nl_link_build_del(buf, sizeof(buf), 0), -EINVAL);
}

/* ---- addresses, neighbours ---- */

static void test_addr(void **state)
{
	struct nl_addr a = {
		.ifindex = 3,
		.local = ifaddr("2001:db8::1", 64),
		.flags = IFA_F_NODAD | IFA_F_NOPREFIXROUTE,
	};
	static const uint8_t want[] = {
		NLH(72, RTM_NEWADDR, F_ADD),
		/* ifaddrmsg: family, prefixlen, flags (low 8 bits), scope, index */
		AF_INET6, 64, IFA_F_NODAD, 0, B32(3),
		NLA(20, IFA_LOCAL), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		NLA(20, IFA_ADDRESS), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		NLA(8, IFA_FLAGS), B32(IFA_F_NODAD | IFA_F_NOPREFIXROUTE),
	};
	struct nl_addr got;

	assert_int_equal(nl_addr_build(buf, sizeof(buf), NL_ADD, &a), 0);
	expect_msg(want, sizeof(want));
	assert_int_equal(nl_addr_parse((struct nlmsghdr *)buf, &got), 0);
	assert_true(cidr_cmp(&got.local, &a.local) == 0);
	assert_false(addr_is_set(&got.peer));
	assert_int_equal(got.flags, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
	/* IPv4 with a label and a lifetime */
	memset(&a, 0, sizeof(a));
	a.ifindex = 3;
	a.local = ifaddr("192.0.2.1", 24);
	strcpy(a.label, "eg0:1");
	a.valid_lft = 300;
	a.preferred_lft = 200;
	assert_int_equal(nl_addr_build(buf, sizeof(buf), NL_REPLACE, &a), 0);
	assert_int_equal(nl_addr_parse((struct nlmsghdr *)buf, &got), 0);
	assert_string_equal(got.label, "eg0:1");
	assert_int_equal(got.valid_lft, 300);
	assert_int_equal(got.preferred_lft, 200);
	/* no address, no link, peer of another family */
	a.ifindex = 0;
	assert_int_equal(nl_addr_build(buf, sizeof(buf), NL_ADD, &a), -EINVAL);
	a.ifindex = 3;
	a.peer = ip("2001:db8::2");
	assert_int_equal(nl_addr_build(buf, sizeof(buf), NL_ADD, &a), -EINVAL);
	memset(&a.local, 0, sizeof(a.local));
	memset(&a.peer, 0, sizeof(a.peer));
	assert_int_equal(nl_addr_build(buf, sizeof(buf), NL_ADD, &a), -EINVAL);
}

static void test_neigh(void **state)
{
	struct nl_neigh n = { .ifindex = 3, .dst = ip("192.0.2.60"), .flags = NTF_PROXY };
	static const uint8_t want_proxy[] = {
		NLH(36, RTM_NEWNEIGH, F_ADD),
		/* ndmsg: family, pad1, pad2, ifindex, state, flags, type */
		AF_INET, 0, B16(0), B32(3), B16(NUD_PERMANENT), NTF_PROXY, 0,
		NLA(8, NDA_DST), 192, 0, 2, 60,
	};
	static const uint8_t want_lladdr[] = {
		NLH(60, RTM_NEWNEIGH, F_REPLACE),
		AF_INET6, 0, B16(0), B32(3), B16(NUD_REACHABLE), 0, 0,
		NLA(20, NDA_DST), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
		NLA(10, NDA_LLADDR), 0x02, 0, 0, 0, 0, 0x50, 0, 0,
	};
	static const uint8_t want_dump[] = {
		NLH(36, RTM_GETNEIGH, F_REQ | NLM_F_DUMP),
		AF_INET, 0, B16(0), B32(0), B16(0), NTF_PROXY, 0,
		NLA(8, NDA_IFINDEX), B32(3),
	};
	struct nl_neigh got;

	assert_int_equal(nl_neigh_build(buf, sizeof(buf), NL_ADD, &n), 0);
	expect_msg(want_proxy, sizeof(want_proxy));
	memset(&n, 0, sizeof(n));
	n.ifindex = 3;
	n.dst = ip("2001:db8::50");
	n.state = NUD_REACHABLE;
	n.lladdr_len = 6;
	memcpy(n.lladdr, (uint8_t[]){ 0x02, 0, 0, 0, 0, 0x50 }, 6);
	assert_int_equal(nl_neigh_build(buf, sizeof(buf), NL_REPLACE, &n), 0);
	expect_msg(want_lladdr, sizeof(want_lladdr));
	assert_int_equal(nl_neigh_parse((struct nlmsghdr *)buf, &got), 0);
	assert_true(addr_eq(&got.dst, &n.dst));
	assert_int_equal(got.lladdr_len, 6);
	assert_int_equal(got.state, NUD_REACHABLE);
	assert_int_equal(nl_neigh_build_dump(buf, sizeof(buf), AF_INET, 3, true), 0);
	expect_msg(want_dump, sizeof(want_dump));
	/* no destination; family disagreeing with it */
	memset(&n.dst, 0, sizeof(n.dst));
	assert_int_equal(nl_neigh_build(buf, sizeof(buf), NL_ADD, &n), -EINVAL);
	n.dst = ip("192.0.2.1");
	n.family = AF_INET6;
	assert_int_equal(nl_neigh_build(buf, sizeof(buf), NL_ADD, &n), -EINVAL);
}

/* ---- conntrack ---- */

static void test_ct(void **state)
{
	static const uint8_t want_del[] = {
		NLH(36, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, F_REQ),
		/* nfgenmsg: family, version 1 (so the flush honours the family), res_id */
		AF_INET, 1, BE16(0),
		NLA(8, CTA_MARK), BE32(0x100),
		NLA(8, CTA_MARK_MASK), BE32(0xff00),
	};
	static const uint8_t want_dump[] = {
		NLH(20, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, F_REQ | NLM_F_DUMP),
		AF_INET6, 0, BE16(0),
	};
	struct nl_ct ct = {
		.family = AF_INET,
		.proto = IPPROTO_UDP,
		.src = ip("10.1.0.1"),
		.dst = ip("10.2.0.1"),
		.sport = 1000,
		.dport = 53,
		.mark = 0x101,
		.timeout = 120,
	};
	struct nl_ct got;

	assert_int_equal(nl_ct_build_delete_mark(buf, sizeof(buf), AF_INET, 0x100, 0xff00), 0);
	expect_msg(want_del, sizeof(want_del));
	/* mask 0 would flush everything; mark bits outside the mask match nothing */
	assert_int_equal(nl_ct_build_delete_mark(buf, sizeof(buf), AF_INET, 0, 0), -EINVAL);
	assert_int_equal(nl_ct_build_delete_mark(buf, sizeof(buf), AF_INET, 0x1ff, 0xff00),
		-EINVAL);
	assert_int_equal(nl_ct_build_delete_mark(buf, sizeof(buf), AF_PACKET, 1, 1), -EINVAL);
	assert_int_equal(nl_ct_build_dump(buf, sizeof(buf), AF_INET6, 0, 0), 0);
	expect_msg(want_dump, sizeof(want_dump));

	assert_int_equal(nl_ct_build_new(buf, sizeof(buf), &ct), 0);
	assert_int_equal(nl_ct_parse((struct nlmsghdr *)buf, &got), 0);
	assert_int_equal(got.family, AF_INET);
	assert_int_equal(got.proto, IPPROTO_UDP);
	assert_true(addr_eq(&got.src, &ct.src) && addr_eq(&got.dst, &ct.dst));
	assert_int_equal(got.sport, 1000);
	assert_int_equal(got.dport, 53);
	/* the reply tuple is the inverse */
	assert_true(addr_eq(&got.reply_src, &ct.dst) && addr_eq(&got.reply_dst, &ct.src));
	assert_int_equal(got.reply_sport, 53);
	assert_int_equal(got.reply_dport, 1000);
	assert_int_equal(got.mark, 0x101);
	assert_int_equal(got.timeout, 120);
	/* ICMP has no ports to write; mixed families */
	ct.proto = IPPROTO_ICMP;
	assert_int_equal(nl_ct_build_new(buf, sizeof(buf), &ct), -EINVAL);
	ct.proto = IPPROTO_UDP;
	ct.dst = ip("2001:db8::1");
	assert_int_equal(nl_ct_build_new(buf, sizeof(buf), &ct), -EINVAL);
}

/* ---- acks ---- */

static void test_ack_parse(void **state)
{
	/* capped, with TLVs: the echo is the request's header only */
	uint8_t capped[] = {
		NLH(76, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS),
		B32(-ENETDOWN),
		B32(80), B16(RTM_NEWNEXTHOP), B16(F_REPLACE), B32(7), B32(1234),
		NLA(29, NLMSGERR_ATTR_MSG),
		'N', 'e', 'x', 't', 'h', 'o', 'p', ' ', 'd', 'e', 'v', 'i',
		'c', 'e', ' ', 'i', 's', ' ', 'n', 'o', 't', ' ', 'u', 'p', 0, 0, 0, 0,
		NLA(8, NLMSGERR_ATTR_OFFS), B32(32),
	};
	/* not capped: the whole request (24 bytes) is echoed before the TLVs */
	uint8_t full[] = {
		NLH(52, NLMSG_ERROR, NLM_F_ACK_TLVS),
		B32(-EINVAL),
		B32(24), B16(RTM_NEWROUTE), B16(F_ADD), B32(7), B32(1234),
		1, 2, 3, 4, 5, 6, 7, 8,
		NLA(8, NLMSGERR_ATTR_MSG), 'b', 'a', 'd', 0,
	};
	uint8_t ack[] = {
		NLH(36, NLMSG_ERROR, NLM_F_CAPPED),
		B32(0),
		B32(32), B16(RTM_NEWROUTE), B16(F_ADD), B32(7), B32(1234),
	};
	char msg[NL_ERRMSG_MAX];
	char small[8];

	assert_int_equal(nl_ack_parse((struct nlmsghdr *)capped, msg, sizeof(msg)), -ENETDOWN);
	assert_string_equal(msg, "Nexthop device is not up");
	/* truncated to the caller's buffer, still terminated */
	assert_int_equal(nl_ack_parse((struct nlmsghdr *)capped, small, sizeof(small)), -ENETDOWN);
	assert_string_equal(small, "Nexthop");
	assert_int_equal(nl_ack_parse((struct nlmsghdr *)full, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "bad");
	assert_int_equal(nl_ack_parse((struct nlmsghdr *)ack, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	/* an echo longer than the message; a message shorter than struct nlmsgerr */
	full[20] = 200;
	assert_int_equal(nl_ack_parse((struct nlmsghdr *)full, msg, sizeof(msg)), -EBADMSG);
	((struct nlmsghdr *)ack)->nlmsg_len = 24;
	assert_int_equal(nl_ack_parse((struct nlmsghdr *)ack, msg, sizeof(msg)), -EBADMSG);
	/* a positive "errno" is not from the kernel */
	((struct nlmsghdr *)ack)->nlmsg_len = 36;
	ack[16] = 5;
	assert_int_equal(nl_ack_parse((struct nlmsghdr *)ack, msg, sizeof(msg)), -EPROTO);
}

/* ---- every parser against random and mutated input ---- */

/* The parsers of parse_all, in its order, by the message type each reads. */
static const uint16_t fuzz_types[] = {
	RTM_NEWROUTE, RTM_NEWNEXTHOP, RTM_NEWRULE, RTM_NEWLINK, RTM_NEWADDR, RTM_NEWNEIGH,
	(NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, NLMSG_ERROR,
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

/* A parser's answer to any input: accepted, or refused with one of its documented errors. */
static void assert_refused_or_ok(const char *parser, int r)
{
	if (r != 0 && r != -EBADMSG && r != -EAFNOSUPPORT && r != -ENOSPC)
		fail_msg("%s: %d, not 0, -EBADMSG, -EAFNOSUPPORT or -ENOSPC", parser, r);
}

static bool prefix_ok(const struct cidr *c)
{
	return c->plen <= (c->addr.family == AF_INET6 ? 128 : 32);
}

/*
 * Give nlh to every parser: each refuses a message type not its own (-EBADMSG), and the one
 * whose type it is answers 0 or a documented error, with a result that holds together.
 * Returns that parser's answer (NLMSG_ERROR: whether nl_ack_parse read it, 0 or -EBADMSG).
 */
static int parse_all(const struct nlmsghdr *nlh)
{
	struct nl_hop hops[4];
	struct nl_nh_member members[4];
	struct nl_route r;
	struct nl_nexthop nh;
	struct nl_rule rule;
	struct nl_link l;
	struct nl_addr a;
	struct nl_neigh n;
	struct nl_ct ct;
	char msg[64];
	int res[8], own = -1, i;

	memset(msg, 'x', sizeof(msg));
	res[0] = nl_route_parse(nlh, &r, hops, 4);
	res[1] = nl_nexthop_parse(nlh, &nh, members, 4);
	res[2] = nl_rule_parse(nlh, &rule);
	res[3] = nl_link_parse(nlh, &l);
	res[4] = nl_addr_parse(nlh, &a);
	res[5] = nl_neigh_parse(nlh, &n);
	res[6] = nl_ct_parse(nlh, &ct);
	res[7] = nl_ack_parse(nlh, msg, sizeof(msg));
	for (i = 0; i < 8; i++)
		if (fuzz_types[i] == nlh->nlmsg_type)
			own = i;
	assert_true(own >= 0);
	for (i = 0; i < 8; i++)
		if (i != own && res[i] != -EBADMSG)
			fail_msg("parser %d took message type %#x (parser %d's): %d", i,
				nlh->nlmsg_type, own, res[i]);
	assert_non_null(memchr(msg, '\0', sizeof(msg))); /* always terminated */
	if (own == 7) /* the ack's own error, whatever the message says, unless malformed */
		return res[7] == -EBADMSG ? -EBADMSG : 0;
	assert_refused_or_ok("parse", res[own]);
	if (res[own] == 0) {
		switch (own) {
		case 0:
			assert_true(r.family == AF_INET || r.family == AF_INET6);
			assert_true(prefix_ok(&r.dst) && r.n_hops <= 4);
			assert_true(!r.n_hops || r.hops == hops);
			break;
		case 1:
			assert_true(nh.n_members <= 4 && (!nh.n_members || nh.members == members));
			break;
		case 2:
			assert_true(rule.family == AF_INET || rule.family == AF_INET6);
			break;
		case 4:
			assert_true(prefix_ok(&a.local));
			break;
		}
	}
	return res[own];
}

/* A message of exactly len bytes on the heap, so ASan sees any read past it; parse_all's
 * answer. */
static int parse_copy(const uint8_t *p, size_t len)
{
	uint8_t *m = malloc(len);
	int r;

	memcpy(m, p, len);
	((struct nlmsghdr *)m)->nlmsg_len = (uint32_t)len;
	r = parse_all((struct nlmsghdr *)m);
	free(m);
	return r;
}

static void test_fuzz(void **state)
{
	uint8_t tmp[512];
	size_t i, j, ok[5] = { 0 }, refused[5] = { 0 };

	for (i = 0; i < 20000; i++) {
		size_t len = 16 + rnd() % (sizeof(tmp) - 16);

		for (j = 0; j < len; j++)
			tmp[j] = (uint8_t)rnd();
		((struct nlmsghdr *)tmp)->nlmsg_type = fuzz_types[rnd() % ARRAY_SIZE(fuzz_types)];
		parse_copy(tmp, len);
	}
	/* mutations of valid messages reach deeper */
	for (i = 0; i < 20000; i++) {
		struct nl_route r = {
			.family = AF_INET,
			.table = 1000,
			.dst = pfx("10.0.0.0/8"),
			.hops = three_hops,
			.n_hops = 3,
		};
		struct nl_nh_member members[] = { { 1, 1 }, { 2, 2 } };
		struct nl_nexthop nh = { .id = 5, .group_type = NL_NH_GROUP_RES, .members = members,
			.n_members = 2, .buckets = 8 };
		struct nl_ct ct = { .family = AF_INET6, .proto = IPPROTO_TCP,
			.src = ip("2001:db8::1"), .dst = ip("2001:db8::2"), .mark = 1 };
		struct nl_macvlan m = { .name = "mv0", .parent = 3 };
		size_t len, flips;

		switch (i % 5) {
		case 0:
			assert_int_equal(nl_route_build(tmp, sizeof(tmp), NL_ADD, &r), 0);
			break;
		case 1:
			assert_int_equal(nl_nexthop_build(tmp, sizeof(tmp), NL_ADD, &nh), 0);
			break;
		case 2:
			assert_int_equal(nl_ct_build_new(tmp, sizeof(tmp), &ct), 0);
			break;
		case 3:
			assert_int_equal(nl_link_build_veth(tmp, sizeof(tmp), "a", "b", 3), 0);
			break;
		default:
			assert_int_equal(nl_link_build_macvlan(tmp, sizeof(tmp), &m), 0);
			break;
		}
		len = ((struct nlmsghdr *)tmp)->nlmsg_len;
		for (flips = 1 + rnd() % 4; flips; flips--)
			tmp[16 + rnd() % (len - 16)] = (uint8_t)rnd();
		/* sometimes cut it short too */
		if (rnd() % 4 == 0)
			len = 16 + rnd() % (len - 16);
		if (parse_copy(tmp, len) == 0)
			ok[i % 5]++;
		else
			refused[i % 5]++;
	}
	/* the mutations reach both the end of each parser and its refusals */
	for (i = 0; i < 5; i++)
		if (!ok[i] || !refused[i])
			fail_msg("builder %zu: %zu mutations parsed, %zu refused", i, ok[i],
				refused[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_single),
		cmocka_unit_test(test_route_multipath),
		cmocka_unit_test(test_route_nh_id_and_del),
		cmocka_unit_test(test_route_invalid),
		cmocka_unit_test(test_route_roundtrip),
		cmocka_unit_test(test_route_parse_kernel),
		cmocka_unit_test(test_route_dump_request),
		cmocka_unit_test(test_route_get_request),
		cmocka_unit_test(test_route_lookup_request),
		cmocka_unit_test(test_nexthop_resilient),
		cmocka_unit_test(test_nexthop_single_and_del),
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_rule_parse_kernel),
		cmocka_unit_test(test_link_veth_macvlan),
		cmocka_unit_test(test_link_change),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_neigh),
		cmocka_unit_test(test_ct),
		cmocka_unit_test(test_ack_parse),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
