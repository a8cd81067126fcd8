/*
 * test_dhcp4_msg.c - the DHCPv4 codec (src/devices/dhcp4_msg.c): messages we send, byte
 * for byte; replies parsed (lists, RFC 3396 split options, option overload); malformed
 * input refused (truncation at every length, bad lengths, a missing type, no cookie); the
 * IPv4/UDP wrapper and its checksums; ARP packets.
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

#include "devices/dhcp4_msg.h"

static const uint8_t mac[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* ------------------------------------------------------------ what we send */

static void test_discover_bytes(void **state)
{
	struct dhcp4_msg m = { 0 };
	uint8_t buf[DHCP4_MAX_MSG], want[300] = { 0 };
	size_t len, o = 240;

	m.type = DHCP4_DISCOVER;
	m.xid = 0x11223344;
	m.secs = 3;
	m.flags = DHCP4_FLAG_BROADCAST;
	memcpy(m.chaddr, mac, 6);
	m.client_id[0] = 1;
	memcpy(m.client_id + 1, mac, 6);
	m.client_id_len = 7;
	strcpy(m.hostname, "dev1");
	m.max_size = 1500;
	m.param_list = true;
	assert_int_equal(dhcp4_msg_build(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 300);

	want[0] = 1;
	want[1] = 1;
	want[2] = 6;
	memcpy(want + 4, "\x11\x22\x33\x44", 4);
	memcpy(want + 8, "\x00\x03\x80\x00", 4);
	memcpy(want + 28, mac, 6);
	memcpy(want + 236, "\x63\x82\x53\x63", 4);
	memcpy(want + o, "\x35\x01\x01", 3), o += 3;
	memcpy(want + o, "\x3d\x07\x01", 3), o += 3;
	memcpy(want + o, mac, 6), o += 6;
	memcpy(want + o, "\x0c\x04" "dev1", 6), o += 6;
	memcpy(want + o, "\x39\x02\x05\xdc", 4), o += 4;
	memcpy(want + o, "\x37\x08\x01\x03\x06\x0f\x33\x36\x3a\x3b", 10), o += 10;
	want[o++] = 0xff;
	assert_memory_equal(buf, want, 300);
}

static void test_request_bytes(void **state)
{
	struct dhcp4_msg m = { 0 };
	uint8_t buf[DHCP4_MAX_MSG];
	size_t len;
	static const uint8_t opts[] = {
		0x35, 0x01, 0x03,			  /* REQUEST */
		0x32, 0x04, 192, 0, 2, 10,		  /* requested 192.0.2.10 */
		0x36, 0x04, 192, 0, 2, 1,		  /* server 192.0.2.1 */
		0xff,
	};

	m.type = DHCP4_REQUEST;
	m.xid = 7;
	memcpy(m.chaddr, mac, 6);
	m.has_requested_ip = true;
	m.requested_ip = ip("192.0.2.10");
	m.has_server_id = true;
	m.server_id = ip("192.0.2.1");
	m.ciaddr = ip("192.0.2.99");
	assert_int_equal(dhcp4_msg_build(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 300);
	assert_memory_equal(buf + 12, "\xc0\x00\x02\x63", 4); /* ciaddr */
	assert_memory_equal(buf + 240, opts, sizeof(opts));
	for (size_t i = 240 + sizeof(opts); i < 300; i++)
		assert_int_equal(buf[i], 0);

	/* refused: no type, a hostname too long, no room */
	m.type = 0;
	assert_int_equal(dhcp4_msg_build(&m, buf, sizeof(buf), &len), -EINVAL);
	m.type = 9;
	assert_int_equal(dhcp4_msg_build(&m, buf, sizeof(buf), &len), -EINVAL);
	m.type = DHCP4_REQUEST;
	assert_int_equal(dhcp4_msg_build(&m, buf, 299, &len), -ENOBUFS);
	m.client_id_len = DHCP4_CLIENT_ID_MAX + 1;
	assert_int_equal(dhcp4_msg_build(&m, buf, sizeof(buf), &len), -EINVAL);
}

/* ------------------------------------------------------------ replies */

struct mb {
	uint8_t b[DHCP4_MAX_MSG];
	size_t n;
};

/* A BOOTREPLY's fixed part for mac, yiaddr 192.0.2.10, then the cookie. */
static void mb_reply(struct mb *m, uint32_t xid)
{
	memset(m, 0, sizeof(*m));
	m->b[0] = 2;
	m->b[1] = 1;
	m->b[2] = 6;
	m->b[4] = (uint8_t)(xid >> 24);
	m->b[5] = (uint8_t)(xid >> 16);
	m->b[6] = (uint8_t)(xid >> 8);
	m->b[7] = (uint8_t)xid;
	memcpy(m->b + 16, "\xc0\x00\x02\x0a", 4);
	memcpy(m->b + 28, mac, 6);
	memcpy(m->b + 236, "\x63\x82\x53\x63", 4);
	m->n = 240;
}

static void mb_opt(struct mb *m, uint8_t code, const void *data, uint8_t len)
{
	m->b[m->n++] = code;
	m->b[m->n++] = len;
	memcpy(m->b + m->n, data, len);
	m->n += len;
}

static void mb_ack(struct mb *m)
{
	mb_reply(m, 0xdeadbeef);
	mb_opt(m, 53, "\x05", 1);
	mb_opt(m, 54, "\xc0\x00\x02\x01", 4);
	mb_opt(m, 51, "\x00\x00\x0e\x10", 4); /* 3600 */
	mb_opt(m, 58, "\x00\x00\x07\x08", 4); /* 1800 */
	mb_opt(m, 59, "\x00\x00\x0c\x4e", 4); /* 3150 */
	mb_opt(m, 1, "\xff\xff\xff\x00", 4);
	mb_opt(m, 3, "\xc0\x00\x02\x01\xc0\x00\x02\x02", 8);
	mb_opt(m, 6, "\x01\x01\x01\x01\x02\x02\x02\x02\x03\x03\x03\x03\x04\x04\x04\x04"
		     "\x05\x05\x05\x05", 20);
	mb_opt(m, 15, "lab", 3); /* not read: skipped */
	m->b[m->n++] = 0;	 /* a pad */
	m->b[m->n++] = 255;
}

static void test_parse_ack(void **state)
{
	struct dhcp4_msg r;
	struct mb m;

	mb_ack(&m);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), 0);
	assert_int_equal(r.op, 2);
	assert_int_equal(r.type, DHCP4_ACK);
	assert_int_equal(r.xid, 0xdeadbeef);
	assert_int_equal(r.yiaddr.s_addr, ip("192.0.2.10").s_addr);
	assert_memory_equal(r.chaddr, mac, 6);
	assert_true(r.has_server_id);
	assert_int_equal(r.server_id.s_addr, ip("192.0.2.1").s_addr);
	assert_true(r.has_lease && r.has_t1 && r.has_t2);
	assert_int_equal(r.lease_s, 3600);
	assert_int_equal(r.t1_s, 1800);
	assert_int_equal(r.t2_s, 3150);
	assert_true(r.has_mask);
	assert_int_equal(r.mask.s_addr, ip("255.255.255.0").s_addr);
	assert_true(r.has_router);
	assert_int_equal(r.router.s_addr, ip("192.0.2.1").s_addr);
	assert_int_equal(r.n_dns, DHCP4_MSG_DNS_MAX); /* the fifth is dropped */
	assert_int_equal(r.dns[3].s_addr, ip("4.4.4.4").s_addr);
	assert_string_equal(r.message, "");
}

static void test_split_and_message(void **state)
{
	struct dhcp4_msg r;
	struct mb m;

	/* RFC 3396: the DNS list in two parts, joined in order */
	mb_reply(&m, 1);
	mb_opt(&m, 53, "\x06", 1);
	mb_opt(&m, 6, "\x01\x01", 2);
	mb_opt(&m, 56, "no\naddress", 10);
	mb_opt(&m, 6, "\x01\x01\x02\x02\x02\x02", 6);
	m.b[m.n++] = 255;
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), 0);
	assert_int_equal(r.type, DHCP4_NAK);
	assert_int_equal(r.n_dns, 2);
	assert_int_equal(r.dns[0].s_addr, ip("1.1.1.1").s_addr);
	assert_int_equal(r.dns[1].s_addr, ip("2.2.2.2").s_addr);
	assert_string_equal(r.message, "no?address"); /* control bytes never reach a log */

	/* no end option: the field just ends */
	mb_reply(&m, 1);
	mb_opt(&m, 53, "\x02", 1);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), 0);
	assert_int_equal(r.type, DHCP4_OFFER);
}

static void test_overload(void **state)
{
	struct dhcp4_msg r;
	struct mb m;

	/* 52 = 3: "file" (108..236) then "sname" (44..108) carry options */
	mb_reply(&m, 2);
	mb_opt(&m, 52, "\x03", 1);
	m.b[m.n++] = 255;
	memcpy(m.b + 108, "\x35\x01\x05\x33\x04\x00\x00\x00\x3c\xff", 10);
	memcpy(m.b + 44, "\x36\x04\xc0\x00\x02\x01\x34\x01\x01\xff", 10);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), 0);
	assert_int_equal(r.type, DHCP4_ACK);
	assert_int_equal(r.lease_s, 60);
	assert_true(r.has_server_id);

	/* 52 = 1: sname is not read */
	m.b[242] = 1;
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), 0);
	assert_false(r.has_server_id);

	/* without 52, neither is: no type at all */
	m.b[240] = 0;
	m.b[241] = 0;
	m.b[242] = 0;
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);

	/* bad values */
	mb_reply(&m, 2);
	mb_opt(&m, 53, "\x05", 1);
	mb_opt(&m, 52, "\x04", 1);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	mb_reply(&m, 2);
	mb_opt(&m, 53, "\x05", 1);
	mb_opt(&m, 52, "\x01\x01", 2);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);

	/* an option in "file" that runs past its 128 bytes */
	mb_reply(&m, 2);
	mb_opt(&m, 53, "\x05", 1);
	mb_opt(&m, 52, "\x01", 1);
	m.b[108 + 126] = 15;
	m.b[108 + 127] = 10;
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
}

static void test_malformed(void **state)
{
	struct dhcp4_msg r;
	struct mb m;
	int ok = 0;

	/* every truncation: below 240 refused; inside an option refused; never a crash */
	mb_ack(&m);
	for (size_t n = 0; n < m.n; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		int rc;

		memcpy(copy, m.b, n);
		rc = dhcp4_msg_parse(copy, n, &r);
		free(copy);
		if (n < 240 + 3)
			assert_int_equal(rc, -EBADMSG);
		else if (rc == 0)
			ok++;
	}
	/* option boundaries only: after 53 (3 bytes in), ... ; at most one per option */
	assert_true(ok > 0 && ok <= 11);

	/* no cookie */
	mb_ack(&m);
	m.b[236] = 0;
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	/* hlen above 16 */
	mb_ack(&m);
	m.b[2] = 17;
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	/* no message type; type 0; type 9; type of length 2 */
	mb_reply(&m, 3);
	mb_opt(&m, 51, "\x00\x00\x0e\x10", 4);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x00", 1);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x09", 1);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x05\x05", 2);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	/* wrong lengths: lease of 3 bytes, a router list of 6, a server id of 0 */
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x05", 1);
	mb_opt(&m, 51, "\x00\x00\x0e", 3);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x05", 1);
	mb_opt(&m, 3, "\x01\x02\x03\x04\x05\x06", 6);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x05", 1);
	mb_opt(&m, 54, "", 0);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
	/* more than 8 parts of one option */
	mb_reply(&m, 3);
	mb_opt(&m, 53, "\x05", 1);
	for (int i = 0; i < 9; i++)
		mb_opt(&m, 6, "\x01", 1);
	assert_int_equal(dhcp4_msg_parse(m.b, m.n, &r), -EBADMSG);
}

/* ------------------------------------------------------------ IPv4 + UDP, ARP */

static void test_csum(void **state)
{
	/* RFC 1071 4.1's example: the sum is ddf2, so the checksum is its complement */
	static const uint8_t b[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	assert_int_equal(dhcp4_csum(b, sizeof(b), 0), 0x220d);
	/* an odd length pads with a zero byte */
	assert_int_equal(dhcp4_csum(b, 1, 0), (uint16_t)~0x0000);
	assert_int_equal(dhcp4_csum("\x12", 1, 0), (uint16_t)~0x1200);
}

static void test_udp(void **state)
{
	struct dhcp4_udp u = { .src = { INADDR_ANY }, .sport = 68, .dport = 67 }, r;
	uint8_t pay[300], buf[400];
	const uint8_t *p;
	size_t len, plen;

	u.dst.s_addr = INADDR_BROADCAST;
	for (size_t i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)i;
	assert_int_equal(dhcp4_udp_build(&u, 0x1234, pay, sizeof(pay), buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 328);
	/* the IPv4 header, byte for byte (checksum worked out by hand: 0x6772) */
	assert_memory_equal(buf, "\x45\x00\x01\x48\x12\x34\x00\x00\x40\x11\x00\x00"
				 "\x00\x00\x00\x00\xff\xff\xff\xff", 10);
	assert_int_equal(buf[10] << 8 | buf[11], 0x6772);
	assert_memory_equal(buf + 12, "\x00\x00\x00\x00\xff\xff\xff\xff", 8);
	assert_memory_equal(buf + 20, "\x00\x44\x00\x43\x01\x34", 6);
	assert_int_equal(dhcp4_udp_parse(buf, len, true, &r, &p, &plen), 0);
	assert_int_equal(plen, sizeof(pay));
	assert_memory_equal(p, pay, sizeof(pay));
	assert_int_equal(r.sport, 68);
	assert_int_equal(r.dport, 67);
	assert_int_equal(r.dst.s_addr, INADDR_BROADCAST);

	/* a flipped payload byte: the UDP checksum refuses it, unless not filled in yet */
	buf[100] ^= 1;
	assert_int_equal(dhcp4_udp_parse(buf, len, true, &r, &p, &plen), -EBADMSG);
	assert_int_equal(dhcp4_udp_parse(buf, len, false, &r, &p, &plen), 0);
	buf[100] ^= 1;
	/* a zero UDP checksum means none */
	buf[26] = buf[27] = 0;
	buf[100] ^= 1;
	assert_int_equal(dhcp4_udp_parse(buf, len, true, &r, &p, &plen), 0);
	assert_int_equal(dhcp4_udp_build(&u, 0x1234, pay, sizeof(pay), buf, sizeof(buf), &len), 0);

	/* the IP header checksum; a fragment; another protocol; lengths */
	buf[8] = 63;
	assert_int_equal(dhcp4_udp_parse(buf, len, true, &r, &p, &plen), -EBADMSG);
	buf[8] = 64;
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(dhcp4_udp_parse(buf, n, true, &r, &p, &plen), 0);
	assert_int_equal(dhcp4_udp_parse(buf, len + 10, true, &r, &p, &plen), 0); /* trailer */
	buf[6] = 0x20; /* MF */
	buf[10] = buf[11] = 0;
	buf[10] = (uint8_t)(dhcp4_csum(buf, 20, 0) >> 8);
	buf[11] = (uint8_t)dhcp4_csum(buf, 20, 0);
	assert_int_equal(dhcp4_udp_parse(buf, len, true, &r, &p, &plen), -EPROTO);
	assert_int_equal(dhcp4_udp_build(&u, 1, pay, sizeof(pay), buf, 300, &len), -ENOBUFS);
	buf[0] = 0x46; /* an IHL beyond the packet is caught before the checksum */
	assert_int_equal(dhcp4_udp_parse(buf, 22, true, &r, &p, &plen), -EBADMSG);
}

static void test_arp(void **state)
{
	struct dhcp4_arp a = { .op = DHCP4_ARP_REQUEST }, r;
	uint8_t buf[DHCP4_ARP_LEN + 18] = { 0 };
	static const uint8_t want[] = {
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
		0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 192, 0, 2, 10,
	};

	memcpy(a.sha, mac, 6);
	a.tpa = ip("192.0.2.10");
	assert_int_equal(dhcp4_arp_build(&a, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(dhcp4_arp_parse(buf, sizeof(buf), &r), 0); /* with padding */
	assert_int_equal(r.op, DHCP4_ARP_REQUEST);
	assert_memory_equal(r.sha, mac, 6);
	assert_int_equal(r.spa.s_addr, 0);
	assert_int_equal(r.tpa.s_addr, a.tpa.s_addr);
	assert_int_equal(dhcp4_arp_parse(buf, 27, &r), -EBADMSG);
	buf[7] = 3;
	assert_int_equal(dhcp4_arp_parse(buf, sizeof(buf), &r), -EPROTO);
	buf[7] = 2;
	buf[5] = 16;
	assert_int_equal(dhcp4_arp_parse(buf, sizeof(buf), &r), -EPROTO);
	assert_int_equal(dhcp4_arp_build(&a, buf, 27), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discover_bytes),
		cmocka_unit_test(test_request_bytes),
		cmocka_unit_test(test_parse_ack),
		cmocka_unit_test(test_split_and_message),
		cmocka_unit_test(test_overload),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_csum),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_arp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
