/*
 * test_dhcp6.c - the DHCPv6 client's codec (src/devices/dhcp6_msg.c) byte for byte and
 * against malformed input, and its state machine (src/devices/dhcp6_sm.c) with a fake clock:
 * SOLICIT -> REQUEST -> BOUND, retransmission per RFC 8415 15, RENEW at T1, REBIND at T2,
 * LOST at the end of the valid lifetime, NoBinding, DECLINE, RELEASE, a kept lease.
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

#include "devices/dhcp6_int.h"

static const uint8_t MAC[6] = { 0x02, 0x66, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t SRV_DUID[] = { 0x00, 0x01, 0x00, 0x01, 0x2e, 0x8f, 0x11, 0x22, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x99 };

static struct in6_addr a6(const char *s)
{
	struct in6_addr a;

	assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
	return a;
}

/* ------------------------------------------------------------ codec */

static void test_duid_ll(void **state)
{
	uint8_t buf[10];
	static const uint8_t want[] = { 0, 3, 0, 1, 0x02, 0x66, 0, 0, 0, 1 };

	(void)state;
	assert_int_equal(dhcp6_duid_ll(MAC, buf), 10);
	assert_memory_equal(buf, want, 10);
}

static void test_build_solicit(void **state)
{
	static const uint8_t want[] = {
		0x01, 0x12, 0x34, 0x56,					/* SOLICIT, xid */
		0x00, 0x01, 0x00, 0x0a, 0, 3, 0, 1, 0x02, 0x66, 0, 0, 0, 1, /* CLIENTID */
		0x00, 0x03, 0x00, 0x0c, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, /* IA_NA */
		0x00, 0x06, 0x00, 0x02, 0x00, 0x17,			/* ORO: DNS */
		0x00, 0x08, 0x00, 0x02, 0x00, 0x00,			/* ELAPSED_TIME */
	};
	struct dhcp6_msg m = { .type = DHCP6_MSG_SOLICIT, .xid = 0x123456, .has_ia = true,
		.iaid = 1, .oro_dns = true, .has_elapsed = true };
	uint8_t buf[DHCP6_MSG_MAX];
	size_t len;

	(void)state;
	m.client_duid_len = dhcp6_duid_ll(MAC, m.client_duid);
	assert_int_equal(dhcp6_msg_build(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, len);
	/* too small a buffer at every length: -ENOBUFS */
	for (size_t cap = 0; cap < sizeof(want); cap++)
		assert_int_equal(dhcp6_msg_build(&m, buf, cap, &len), -ENOBUFS);
}

static void test_build_request(void **state)
{
	static const uint8_t want[] = {
		0x03, 0x00, 0x00, 0x07,					/* REQUEST */
		0x00, 0x01, 0x00, 0x0a, 0, 3, 0, 1, 0x02, 0x66, 0, 0, 0, 1, /* CLIENTID */
		0x00, 0x02, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x2e, 0x8f, 0x11, 0x22, 0x02,
		0x00, 0x00, 0x00, 0x00, 0x99,				/* SERVERID */
		0x00, 0x03, 0x00, 0x28, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, /* IA_NA */
		0x00, 0x05, 0x00, 0x18, 0xfd, 0x00, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x01, 0xa2, 0, 0, 0, 0, 0, 0, 0, 0,			/* IAADDR */
		0x00, 0x06, 0x00, 0x02, 0x00, 0x17,			/* ORO */
		0x00, 0x08, 0x00, 0x02, 0x00, 0x64,			/* ELAPSED_TIME 1 s */
	};
	struct dhcp6_msg m = { .type = DHCP6_MSG_REQUEST, .xid = 7, .has_ia = true, .iaid = 1,
		.n_addrs = 1, .oro_dns = true, .has_elapsed = true, .elapsed_cs = 100 };
	uint8_t buf[DHCP6_MSG_MAX];
	struct dhcp6_msg back;
	size_t len;

	(void)state;
	m.client_duid_len = dhcp6_duid_ll(MAC, m.client_duid);
	memcpy(m.server_duid, SRV_DUID, sizeof(SRV_DUID));
	m.server_duid_len = sizeof(SRV_DUID);
	m.addrs[0].addr = a6("fd00:6::1a2");
	assert_int_equal(dhcp6_msg_build(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, len);
	/* and it parses back to the same fields */
	assert_int_equal(dhcp6_msg_parse(buf, len, &back), 0);
	assert_int_equal(back.type, DHCP6_MSG_REQUEST);
	assert_int_equal(back.xid, 7);
	assert_int_equal(back.server_duid_len, sizeof(SRV_DUID));
	assert_true(back.has_ia && back.iaid == 1 && back.n_addrs == 1);
	assert_memory_equal(&back.addrs[0].addr, &m.addrs[0].addr, 16);
	assert_true(back.has_elapsed && back.elapsed_cs == 100);
	assert_int_equal(back.status, DHCP6_STATUS_NONE);
}

/* A REPLY as dnsmasq sends it: SERVERID, CLIENTID, IA_NA with one IAADDR, DNS, status. */
static const uint8_t REPLY[] = {
	0x07, 0xab, 0xcd, 0xef,
	0x00, 0x02, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x2e, 0x8f, 0x11, 0x22, 0x02, 0x00, 0x00,
	0x00, 0x00, 0x99,
	0x00, 0x01, 0x00, 0x0a, 0, 3, 0, 1, 0x02, 0x66, 0, 0, 0, 1,
	0x00, 0x03, 0x00, 0x36, 0, 0, 0, 1, 0, 0, 0, 60, 0, 0, 0, 105,
	0x00, 0x05, 0x00, 0x18, 0xfd, 0x00, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xa2,
	0, 0, 0, 120, 0, 0, 0, 120,
	0x00, 0x0d, 0x00, 0x0a, 0x00, 0x00, 'a', 's', 's', 'i', 'g', 'n', 'e', 'd', /* IA status */
	0x00, 0x0d, 0x00, 0x09, 0x00, 0x00, 's', 'u', 'c', 'c', 'e', 's', 's',
	0x00, 0x17, 0x00, 0x10, 0xfd, 0x00, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
	0x00, 0x07, 0x00, 0x01, 0xff,
	0x00, 0x63, 0x00, 0x02, 0xaa, 0xbb, /* unknown: skipped */
};

static void test_parse_reply(void **state)
{
	struct dhcp6_msg m;
	struct in6_addr want = a6("fd00:6::1a2"), dns = a6("fd00:6::53");

	(void)state;
	assert_int_equal(dhcp6_msg_parse(REPLY, sizeof(REPLY), &m), 0);
	assert_int_equal(m.type, DHCP6_MSG_REPLY);
	assert_int_equal(m.xid, 0xabcdef);
	assert_int_equal(m.server_duid_len, sizeof(SRV_DUID));
	assert_memory_equal(m.server_duid, SRV_DUID, sizeof(SRV_DUID));
	assert_int_equal(m.client_duid_len, 10);
	assert_true(m.has_ia);
	assert_int_equal(m.iaid, 1);
	assert_int_equal(m.t1_s, 60);
	assert_int_equal(m.t2_s, 105);
	assert_int_equal(m.ia_status, DHCP6_STATUS_SUCCESS);
	assert_int_equal(m.n_addrs, 1);
	assert_memory_equal(&m.addrs[0].addr, &want, 16);
	assert_int_equal(m.addrs[0].preferred_s, 120);
	assert_int_equal(m.addrs[0].valid_s, 120);
	assert_int_equal(m.addrs[0].status, DHCP6_STATUS_NONE);
	assert_int_equal(m.status, DHCP6_STATUS_SUCCESS);
	assert_int_equal(m.n_dns, 1);
	assert_memory_equal(&m.dns[0], &dns, 16);
	assert_true(m.has_preference && m.preference == 255);
	/* every proper prefix that cuts an option is refused; one that ends between options
	 * parses (with fewer options) */
	for (size_t n = 0; n < sizeof(REPLY); n++) {
		int r = dhcp6_msg_parse(REPLY, n, &m);

		assert_true(r == 0 || r == -EBADMSG);
		if (n < 4)
			assert_int_equal(r, -EBADMSG);
	}
	assert_int_equal(dhcp6_msg_parse(REPLY, 5, &m), -EBADMSG);
	assert_int_equal(dhcp6_msg_parse(REPLY, 4, &m), 0);
}

/* One malformed message: a header and one option given as bytes. */
static int parse_one(uint8_t type, const uint8_t *opt, size_t n)
{
	uint8_t buf[512] = { type, 0, 0, 1 };
	struct dhcp6_msg m;

	if (n)
		memcpy(buf + 4, opt, n);
	return dhcp6_msg_parse(buf, 4 + n, &m);
}

static void test_parse_malformed(void **state)
{
	static const uint8_t past_end[] = { 0x00, 0x01, 0x00, 0x0b, 0, 3, 0, 1, 2, 0x66, 0, 0, 0,
		1 };
	static const uint8_t short_ia[] = { 0x00, 0x03, 0x00, 0x0b, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		0 };
	static const uint8_t short_iaaddr[] = { 0x00, 0x03, 0x00, 0x1f, 0, 0, 0, 1, 0, 0, 0, 0, 0,
		0, 0, 0, 0x00, 0x05, 0x00, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t iaaddr_past_ia[] = { 0x00, 0x03, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0,
		0, 0, 0, 0, 0x00, 0x05, 0x00, 0x18 };
	static const uint8_t duid_1[] = { 0x00, 0x02, 0x00, 0x01, 0x00 };
	static const uint8_t pref_2[] = { 0x00, 0x07, 0x00, 0x02, 0x00, 0x01 };
	static const uint8_t elapsed_1[] = { 0x00, 0x08, 0x00, 0x01, 0x00 };
	static const uint8_t dns_15[] = { 0x00, 0x17, 0x00, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0 };
	static const uint8_t status_1[] = { 0x00, 0x0d, 0x00, 0x01, 0x00 };
	static const uint8_t rapid_1[] = { 0x00, 0x0e, 0x00, 0x01, 0x00 };
	static const uint8_t trailing[] = { 0x00, 0x07, 0x00 };
	static const uint8_t two_serverids[] = { 0x00, 0x02, 0x00, 0x02, 0x00, 0x01, 0x00, 0x02,
		0x00, 0x02, 0x00, 0x01 };
	uint8_t long_duid[4 + 131] = { 0x00, 0x01, 0x00, 131 };
	uint8_t max_duid[4 + 130] = { 0x00, 0x01, 0x00, 130 };
	struct dhcp6_msg m;

	(void)state;
	assert_int_equal(dhcp6_msg_parse(NULL, 0, &m), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, past_end, sizeof(past_end)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, short_ia, sizeof(short_ia)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, short_iaaddr, sizeof(short_iaaddr)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, iaaddr_past_ia, sizeof(iaaddr_past_ia)),
		-EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, duid_1, sizeof(duid_1)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, pref_2, sizeof(pref_2)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, elapsed_1, sizeof(elapsed_1)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, dns_15, sizeof(dns_15)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, status_1, sizeof(status_1)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, rapid_1, sizeof(rapid_1)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, trailing, sizeof(trailing)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, two_serverids, sizeof(two_serverids)),
		-EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, long_duid, sizeof(long_duid)), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, max_duid, sizeof(max_duid)), 0);
	/* relay messages and type 0 are not for a client */
	assert_int_equal(parse_one(0, NULL, 0), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_RELAY_FORW, NULL, 0), -EBADMSG);
	assert_int_equal(parse_one(DHCP6_MSG_RELAY_REPL, NULL, 0), -EBADMSG);
	/* a refused message leaves nothing behind */
	assert_int_equal(parse_one(DHCP6_MSG_REPLY, two_serverids, sizeof(two_serverids)),
		-EBADMSG);
	assert_int_equal(dhcp6_msg_parse(REPLY, 5, &m), -EBADMSG);
	assert_int_equal(m.type, 0);
	assert_int_equal(m.server_duid_len, 0);
}

/* ------------------------------------------------------------ state machine */

struct fx {
	struct dhcp6_sm sm;
	struct dhcp6_out out;
	int64_t now;  /* monotonic ms */
	int64_t wall; /* unix s at now == 0 */
};

static int64_t wall_of(const struct fx *f)
{
	return f->wall + f->now / 1000;
}

static void fx_init(struct fx *f, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->wall = 1800000000;
	dhcp6_sm_init(&f->sm, MAC, NULL, 0, 0, 0, seed);
}

/* Advance the clock to the timer and fire it. */
static void fire(struct fx *f)
{
	assert_true(f->out.timer_ms >= f->now);
	f->now = f->out.timer_ms;
	dhcp6_sm_timeout(&f->sm, f->now, wall_of(f), &f->out);
}

struct srv {
	uint8_t type;
	const char *addr;
	uint32_t pref, valid, t1, t2;
	uint16_t ia_status, status;
	int preference; /* -1: none */
	bool no_ia;
	uint32_t iaid; /* 0: the client's */
	uint32_t xid_xor; /* another transaction's answer */
};

/* The server's answer to the message the client just sent. */
static void answer(struct fx *f, const struct srv *s)
{
	struct dhcp6_msg m;
	struct addr from = { .family = AF_INET6 };

	memset(&m, 0, sizeof(m));
	m.type = s->type;
	m.xid = f->sm.xid ^ s->xid_xor;
	memcpy(m.client_duid, f->sm.duid, f->sm.duid_len);
	m.client_duid_len = f->sm.duid_len;
	memcpy(m.server_duid, SRV_DUID, sizeof(SRV_DUID));
	m.server_duid_len = sizeof(SRV_DUID);
	m.status = s->status ? s->status : DHCP6_STATUS_NONE;
	m.ia_status = s->ia_status ? s->ia_status : DHCP6_STATUS_NONE;
	if (!s->no_ia) {
		m.has_ia = true;
		m.iaid = s->iaid ? s->iaid : f->sm.iaid;
		m.t1_s = s->t1;
		m.t2_s = s->t2;
		if (s->addr) {
			m.addrs[0].addr = a6(s->addr);
			m.addrs[0].preferred_s = s->pref;
			m.addrs[0].valid_s = s->valid;
			m.addrs[0].status = DHCP6_STATUS_NONE;
			m.n_addrs = 1;
		}
	}
	if (s->preference >= 0) {
		m.has_preference = true;
		m.preference = (uint8_t)s->preference;
	}
	m.dns[0] = a6("fd00:6::53");
	m.n_dns = 1;
	from.v6 = a6("fe80::1");
	dhcp6_sm_receive(&f->sm, f->now, wall_of(f), &m, &from, &f->out);
}

static const struct srv ADV = { .type = DHCP6_MSG_ADVERTISE, .addr = "fd00:6::1a2",
	.pref = 120, .valid = 120, .preference = -1 };
static const struct srv ACK = { .type = DHCP6_MSG_REPLY, .addr = "fd00:6::1a2", .pref = 120,
	.valid = 120, .t1 = 60, .t2 = 105, .preference = -1 };

static void assert_sent(const struct fx *f, uint8_t type)
{
	uint8_t buf[DHCP6_MSG_MAX];
	struct dhcp6_msg back;
	size_t len;

	assert_true(f->out.send);
	assert_int_equal(f->out.msg.type, type);
	assert_int_equal(f->out.msg.xid, f->sm.xid);
	/* what goes out builds and parses again */
	assert_int_equal(dhcp6_msg_build(&f->out.msg, buf, sizeof(buf), &len), 0);
	assert_int_equal(dhcp6_msg_parse(buf, len, &back), 0);
	assert_int_equal(back.type, type);
	assert_int_equal(back.client_duid_len, 10);
	assert_true(back.has_ia && back.iaid == 0x00000001);
	assert_true(back.has_elapsed);
}

/* Start, SOLICIT, ADVERTISE, REQUEST, REPLY: bound to fd00:6::1a2 at f->now. */
static void do_bind(struct fx *f)
{
	dhcp6_sm_start(&f->sm, f->now, wall_of(f), NULL, &f->out);
	/* RFC 8415 18.2.1: the first SOLICIT waits up to SOL_MAX_DELAY */
	assert_false(f->out.send);
	assert_true(f->out.timer_ms >= f->now && f->out.timer_ms <= f->now + DHCP6_SOL_MAX_DELAY);
	fire(f);
	assert_sent(f, DHCP6_MSG_SOLICIT);
	assert_int_equal(f->out.msg.elapsed_cs, 0);
	assert_int_equal(f->out.msg.server_duid_len, 0);
	assert_int_equal(f->out.msg.n_addrs, 0);
	assert_true(f->out.msg.oro_dns);
	f->now += 50;
	answer(f, &ADV);
	assert_false(f->out.send); /* waits out the first RT for a better server */
	assert_int_equal(f->sm.state, DHCP6_SOLICIT);
	fire(f);
	assert_sent(f, DHCP6_MSG_REQUEST);
	assert_int_equal(f->out.msg.server_duid_len, sizeof(SRV_DUID));
	assert_int_equal(f->out.msg.n_addrs, 1);
	assert_int_equal(f->sm.state, DHCP6_REQUEST);
	f->now += 30;
	answer(f, &ACK);
	assert_false(f->out.send);
	assert_int_equal(f->out.n_ev, 1);
	assert_int_equal(f->out.ev[0], DHCP6_EV_BOUND);
	assert_int_equal(f->sm.state, DHCP6_BOUND);
}

static void test_sm_bind(void **state)
{
	struct fx f;
	const struct dhcp6_lease *l;
	char buf[ADDR_STRLEN];

	(void)state;
	fx_init(&f, 1);
	do_bind(&f);
	l = &f.out.ev_lease[0];
	assert_string_equal(addr_str(&l->addr, buf, sizeof(buf)), "fd00:6::1a2");
	assert_int_equal(l->valid_s, 120);
	assert_int_equal(l->preferred_s, 120);
	assert_int_equal(l->t1_s, 60);
	assert_int_equal(l->t2_s, 105);
	assert_int_equal(l->server_duid_len, sizeof(SRV_DUID));
	assert_string_equal(addr_str(&l->server, buf, sizeof(buf)), "fe80::1");
	assert_int_equal(l->n_dns, 1);
	assert_int_equal(l->obtained_at, wall_of(&f));
	assert_true(f.sm.have_lease);
	/* next: RENEW at T1 */
	assert_int_equal(f.out.timer_ms, f.now + 60000);
}

static void test_sm_preference_255(void **state)
{
	struct fx f;
	struct srv adv = ADV;

	(void)state;
	fx_init(&f, 2);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	fire(&f);
	adv.preference = 255;
	answer(&f, &adv);
	/* RFC 8415 18.2.1: at once */
	assert_sent(&f, DHCP6_MSG_REQUEST);
}

static void test_sm_ignores_foreign(void **state)
{
	struct fx f;
	struct srv adv = ADV;

	(void)state;
	fx_init(&f, 3);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	fire(&f);
	fire(&f); /* past the first RT: any usable ADVERTISE is taken at once */
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* NoAddrsAvail, another IAID, no IA, a wrong xid: all ignored */
	adv.ia_status = DHCP6_STATUS_NO_ADDRS_AVAIL;
	answer(&f, &adv);
	assert_false(f.out.send);
	adv = ADV;
	adv.iaid = 77;
	answer(&f, &adv);
	assert_false(f.out.send);
	adv = ADV;
	adv.no_ia = true;
	answer(&f, &adv);
	assert_false(f.out.send);
	adv = ADV;
	adv.xid_xor = 1;
	answer(&f, &adv);
	assert_false(f.out.send);
	/* a REPLY in SOLICIT (we never ask for rapid commit) */
	answer(&f, &ACK);
	assert_false(f.out.send);
	assert_int_equal(f.out.n_ev, 0);
	assert_int_equal(f.sm.state, DHCP6_SOLICIT);
	/* the real one */
	answer(&f, &ADV);
	assert_sent(&f, DHCP6_MSG_REQUEST);
}

static void test_sm_solicit_backoff(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed < 50; seed++) {
		struct fx f;
		int64_t prev_rt = 0, sent_at;

		fx_init(&f, seed);
		f.sm.sol_max_rt_ms = 20000;
		dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
		fire(&f);
		sent_at = f.now;
		for (int i = 0; i < 12; i++) {
			int64_t rt = f.out.timer_ms - sent_at;

			if (i == 0) {
				/* RFC 8415 18.2.1: IRT < RT <= IRT * 1.1 */
				assert_true(rt > DHCP6_SOL_TIMEOUT && rt <= 1100);
			} else {
				/* RFC 8415 15: 2 RTprev +- 0.1 RTprev, or MRT +- 0.1 MRT past MRT */
				bool doubled = rt * 10 >= prev_rt * 19 - 10 &&
					rt * 10 <= prev_rt * 21 + 10;
				bool capped = prev_rt * 21 > 200000 && rt >= 18000 && rt <= 22000;

				assert_true(doubled || capped);
			}
			/* never past MRT + 10% */
			assert_true(rt <= 22000);
			prev_rt = rt;
			fire(&f);
			assert_sent(&f, DHCP6_MSG_SOLICIT);
			assert_int_equal(f.out.msg.elapsed_cs, (f.now - f.sm.start_ms) / 10);
			sent_at = f.now;
		}
		assert_true(prev_rt >= 18000);
	}
}

static void test_sm_request_gives_up(void **state)
{
	struct fx f;
	uint32_t xid;

	(void)state;
	fx_init(&f, 4);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	fire(&f);
	answer(&f, &ADV);
	fire(&f);
	assert_sent(&f, DHCP6_MSG_REQUEST);
	xid = f.sm.xid;
	/* REQ_MAX_RC transmissions, the same transaction, RT doubling up to REQ_MAX_RT */
	for (int i = 1; i < DHCP6_REQ_MAX_RC; i++) {
		fire(&f);
		assert_sent(&f, DHCP6_MSG_REQUEST);
		assert_int_equal(f.sm.xid, xid);
		assert_true(f.sm.rt_ms <= DHCP6_REQ_MAX_RT * 11 / 10);
	}
	fire(&f);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	assert_int_equal(f.sm.state, DHCP6_SOLICIT);
	assert_int_not_equal(f.sm.xid, xid);
}

static void test_sm_renew_rebind_lost(void **state)
{
	struct fx f;
	int64_t bound_at, renews = 0;

	(void)state;
	fx_init(&f, 5);
	do_bind(&f);
	bound_at = f.now;
	fire(&f);
	assert_int_equal(f.now, bound_at + 60000);
	assert_sent(&f, DHCP6_MSG_RENEW);
	assert_int_equal(f.sm.state, DHCP6_RENEW);
	assert_int_equal(f.out.msg.server_duid_len, sizeof(SRV_DUID));
	assert_int_equal(f.out.msg.n_addrs, 1);
	assert_int_equal(f.out.msg.addrs[0].valid_s, 0);
	/* RENEW retransmits until T2 (its MRD), never past it */
	while (f.sm.state == DHCP6_RENEW) {
		assert_true(f.out.timer_ms <= bound_at + 105000);
		renews++;
		fire(&f);
	}
	assert_true(renews >= 3);
	assert_int_equal(f.now, bound_at + 105000);
	assert_sent(&f, DHCP6_MSG_REBIND);
	assert_int_equal(f.out.msg.server_duid_len, 0); /* RFC 8415 18.2.5 */
	assert_int_equal(f.out.n_ev, 0);
	/* REBIND until the valid lifetime ends: then LOST and SOLICIT */
	while (f.sm.state == DHCP6_REBIND) {
		assert_true(f.out.timer_ms <= bound_at + 120000);
		assert_int_equal(f.out.n_ev, 0);
		fire(&f);
	}
	assert_int_equal(f.now, bound_at + 120000);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	assert_false(f.sm.have_lease);
}

static void test_sm_renewed(void **state)
{
	struct fx f;
	struct srv ack = ACK;
	int64_t t;

	(void)state;
	fx_init(&f, 6);
	do_bind(&f);
	fire(&f);
	assert_sent(&f, DHCP6_MSG_RENEW);
	f.now += 20;
	ack.t1 = 100;
	ack.t2 = 160;
	ack.valid = ack.pref = 200;
	answer(&f, &ack);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_RENEWED);
	assert_int_equal(f.out.ev_lease[0].valid_s, 200);
	assert_int_equal(f.sm.state, DHCP6_BOUND);
	assert_int_equal(f.out.timer_ms, f.now + 100000);
	/* and from REBIND too */
	t = f.now;
	fire(&f);
	while (f.sm.state == DHCP6_RENEW)
		fire(&f);
	assert_int_equal(f.now, t + 160000);
	assert_sent(&f, DHCP6_MSG_REBIND);
	answer(&f, &ACK);
	assert_int_equal(f.out.ev[0], DHCP6_EV_RENEWED);
	assert_int_equal(f.sm.state, DHCP6_BOUND);
}

static void test_sm_renew_nobinding(void **state)
{
	struct fx f;
	struct srv nb = { .type = DHCP6_MSG_REPLY, .ia_status = DHCP6_STATUS_NO_BINDING,
		.preference = -1 };

	(void)state;
	fx_init(&f, 7);
	do_bind(&f);
	fire(&f);
	assert_sent(&f, DHCP6_MSG_RENEW);
	answer(&f, &nb);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_int_equal(f.out.status, DHCP6_STATUS_NO_BINDING);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	assert_int_equal(f.sm.state, DHCP6_SOLICIT);
	assert_false(f.sm.have_lease);
}

static void test_sm_renew_other_address(void **state)
{
	struct fx f;
	struct srv ack = ACK;
	char buf[ADDR_STRLEN];

	(void)state;
	fx_init(&f, 8);
	do_bind(&f);
	fire(&f);
	ack.addr = "fd00:6::1b3";
	answer(&f, &ack);
	assert_int_equal(f.out.n_ev, 2);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_string_equal(addr_str(&f.out.ev_lease[0].addr, buf, sizeof(buf)), "fd00:6::1a2");
	assert_int_equal(f.out.ev[1], DHCP6_EV_BOUND);
	assert_string_equal(addr_str(&f.out.ev_lease[1].addr, buf, sizeof(buf)), "fd00:6::1b3");
	/* our address with a valid lifetime of 0 and nothing else: LOST, SOLICIT */
	fire(&f);
	ack.valid = ack.pref = 0;
	answer(&f, &ack);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
}

static void test_sm_rebind_noaddrsavail(void **state)
{
	struct fx f;
	/* what dnsmasq answers a REBIND for an address of a prefix it no longer serves: the
	 * status in the message (not in the IA), the address at lifetime 0 */
	struct srv gone = { .type = DHCP6_MSG_REPLY, .addr = "fd00:6::1a2", .t1 = DHCP6_INFINITE,
		.t2 = DHCP6_INFINITE, .status = DHCP6_STATUS_NO_ADDRS_AVAIL, .preference = -1 };
	struct srv none = { .type = DHCP6_MSG_REPLY, .ia_status = DHCP6_STATUS_NO_ADDRS_AVAIL,
		.preference = -1 };

	(void)state;
	fx_init(&f, 23);
	do_bind(&f);
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	assert_sent(&f, DHCP6_MSG_REBIND);
	answer(&f, &gone);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_int_equal(f.out.status, DHCP6_STATUS_NO_ADDRS_AVAIL);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* the same with the status in the IA, as RFC 8415 puts it */
	fx_init(&f, 25);
	do_bind(&f);
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	gone.status = 0;
	gone.ia_status = DHCP6_STATUS_NO_ADDRS_AVAIL;
	answer(&f, &gone);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* NotOnLink to a REBIND: the address is not for this link */
	fx_init(&f, 26);
	do_bind(&f);
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	gone.ia_status = 0;
	gone.status = DHCP6_STATUS_NOT_ON_LINK;
	gone.no_ia = true;
	answer(&f, &gone);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* NoAddrsAvail to a RENEW that names nothing of ours: the lease is kept */
	fx_init(&f, 24);
	do_bind(&f);
	fire(&f);
	assert_sent(&f, DHCP6_MSG_RENEW);
	answer(&f, &none);
	assert_int_equal(f.out.n_ev, 0);
	assert_false(f.out.send);
	assert_int_equal(f.sm.state, DHCP6_RENEW);
	assert_true(f.sm.have_lease);
	/* ... and with an address at a lifetime: still not taken (the IA failed) */
	none.addr = "fd00:6::1b3";
	none.pref = none.valid = 100;
	answer(&f, &none);
	assert_int_equal(f.out.n_ev, 0);
	assert_int_equal(f.sm.state, DHCP6_RENEW);
}

static void test_sm_bad_reply_ignored(void **state)
{
	struct fx f;
	struct srv ack = ACK;

	(void)state;
	fx_init(&f, 9);
	do_bind(&f);
	fire(&f);
	/* RFC 8415 21.4: T1 > T2 discards the IA; UnspecFail: retransmit as usual */
	ack.t1 = 90;
	ack.t2 = 80;
	answer(&f, &ack);
	assert_int_equal(f.out.n_ev, 0);
	assert_int_equal(f.sm.state, DHCP6_RENEW);
	ack = ACK;
	ack.status = DHCP6_STATUS_UNSPEC_FAIL;
	answer(&f, &ack);
	assert_int_equal(f.out.n_ev, 0);
	assert_int_equal(f.sm.state, DHCP6_RENEW);
	/* preferred beyond valid: not usable; nothing else offered, the lease is kept */
	ack = ACK;
	ack.pref = 500;
	answer(&f, &ack);
	assert_int_equal(f.out.n_ev, 0);
	assert_int_equal(f.sm.state, DHCP6_RENEW);
	assert_true(f.sm.have_lease);
}

static void test_sm_decline(void **state)
{
	struct fx f;
	struct dhcp6_msg empty = { .type = DHCP6_MSG_REPLY };
	struct addr from = { .family = AF_INET6 };

	(void)state;
	fx_init(&f, 10);
	do_bind(&f);
	f.now += 500;
	dhcp6_sm_decline(&f.sm, f.now, wall_of(&f), &f.out);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_sent(&f, DHCP6_MSG_DECLINE);
	assert_int_equal(f.out.msg.server_duid_len, sizeof(SRV_DUID));
	assert_int_equal(f.out.msg.n_addrs, 1);
	assert_int_equal(f.sm.state, DHCP6_DECLINE);
	/* a REPLY (with no IA at all) ends it: SOLICIT again, without delay */
	empty.xid = f.sm.xid;
	memcpy(empty.client_duid, f.sm.duid, f.sm.duid_len);
	empty.client_duid_len = f.sm.duid_len;
	memcpy(empty.server_duid, SRV_DUID, sizeof(SRV_DUID));
	empty.server_duid_len = sizeof(SRV_DUID);
	empty.status = DHCP6_STATUS_SUCCESS;
	empty.ia_status = DHCP6_STATUS_NONE;
	dhcp6_sm_receive(&f.sm, f.now, wall_of(&f), &empty, &from, &f.out);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* without an answer: DEC_MAX_RC transmissions, then SOLICIT */
	fx_init(&f, 11);
	do_bind(&f);
	dhcp6_sm_decline(&f.sm, f.now, wall_of(&f), &f.out);
	for (int i = 1; i < DHCP6_DEC_MAX_RC; i++) {
		fire(&f);
		assert_sent(&f, DHCP6_MSG_DECLINE);
	}
	fire(&f);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* nothing to decline when not bound */
	fx_init(&f, 12);
	dhcp6_sm_decline(&f.sm, 0, wall_of(&f), &f.out);
	assert_false(f.out.send);
	assert_int_equal(f.sm.state, DHCP6_STOPPED);
}

static void test_sm_release(void **state)
{
	struct fx f;
	struct srv ok = { .type = DHCP6_MSG_REPLY, .no_ia = true, .preference = -1 };

	(void)state;
	fx_init(&f, 13);
	do_bind(&f);
	dhcp6_sm_release(&f.sm, f.now, wall_of(&f), &f.out);
	assert_sent(&f, DHCP6_MSG_RELEASE);
	assert_int_equal(f.out.msg.server_duid_len, sizeof(SRV_DUID));
	assert_int_equal(f.out.msg.n_addrs, 1);
	assert_false(f.out.msg.oro_dns);
	assert_int_equal(f.out.n_ev, 0); /* the device is leaving: no LOST */
	assert_int_equal(f.sm.state, DHCP6_RELEASE);
	answer(&f, &ok);
	assert_int_equal(f.sm.state, DHCP6_STOPPED);
	assert_int_equal(f.out.timer_ms, -1);
	assert_false(f.sm.have_lease);
	/* no answer: REL_MAX_RC transmissions, then stopped */
	fx_init(&f, 14);
	do_bind(&f);
	dhcp6_sm_release(&f.sm, f.now, wall_of(&f), &f.out);
	for (int i = 1; i < DHCP6_REL_MAX_RC; i++) {
		fire(&f);
		assert_sent(&f, DHCP6_MSG_RELEASE);
	}
	fire(&f);
	assert_false(f.out.send);
	assert_int_equal(f.sm.state, DHCP6_STOPPED);
	assert_int_equal(f.out.timer_ms, -1);
	/* not bound: just stop */
	fx_init(&f, 15);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	dhcp6_sm_release(&f.sm, 0, wall_of(&f), &f.out);
	assert_false(f.out.send);
	assert_int_equal(f.sm.state, DHCP6_STOPPED);
}

static void kept_lease(struct dhcp6_lease *l, int64_t obtained_at)
{
	memset(l, 0, sizeof(*l));
	l->addr.family = AF_INET6;
	l->addr.v6 = a6("fd00:6::1a2");
	l->preferred_s = l->valid_s = 120;
	l->t1_s = 60;
	l->t2_s = 105;
	memcpy(l->server_duid, SRV_DUID, sizeof(SRV_DUID));
	l->server_duid_len = sizeof(SRV_DUID);
	l->obtained_at = obtained_at;
}

static void test_sm_kept_lease(void **state)
{
	struct fx f;
	struct dhcp6_lease l;

	(void)state;
	/* 30 s old: RENEW it at once, to its server, until its T2 */
	fx_init(&f, 16);
	kept_lease(&l, f.wall - 30);
	dhcp6_sm_start(&f.sm, 0, f.wall, &l, &f.out);
	assert_sent(&f, DHCP6_MSG_RENEW);
	assert_int_equal(f.out.msg.server_duid_len, sizeof(SRV_DUID));
	assert_int_equal(f.out.n_ev, 0);
	assert_true(f.out.timer_ms <= 75000);
	f.now += 10;
	answer(&f, &ACK);
	assert_int_equal(f.out.ev[0], DHCP6_EV_RENEWED);
	/* 110 s old: past T2, REBIND */
	fx_init(&f, 17);
	kept_lease(&l, f.wall - 110);
	dhcp6_sm_start(&f.sm, 0, f.wall, &l, &f.out);
	assert_sent(&f, DHCP6_MSG_REBIND);
	assert_true(f.out.timer_ms <= 10000);
	/* 200 s old: gone, LOST, SOLICIT */
	fx_init(&f, 18);
	kept_lease(&l, f.wall - 200);
	dhcp6_sm_start(&f.sm, 0, f.wall, &l, &f.out);
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_int_equal(f.sm.state, DHCP6_SOLICIT);
	assert_false(f.sm.have_lease);
}

static void test_sm_recheck(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 19);
	do_bind(&f);
	f.now += 5000;
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	/* REBIND: any server may answer, the address named */
	assert_sent(&f, DHCP6_MSG_REBIND);
	assert_int_equal(f.out.msg.server_duid_len, 0);
	assert_int_equal(f.out.msg.n_addrs, 1);
	answer(&f, &ACK);
	assert_int_equal(f.out.ev[0], DHCP6_EV_RENEWED);
	assert_int_equal(f.sm.state, DHCP6_BOUND);
	/* the address gone after a renumbering: LOST, SOLICIT at once */
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	{
		struct srv gone = ACK;

		gone.pref = gone.valid = 0;
		answer(&f, &gone);
	}
	assert_int_equal(f.out.n_ev, 1);
	assert_int_equal(f.out.ev[0], DHCP6_EV_LOST);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	/* in SOLICIT: start over at once, from the first RT */
	fx_init(&f, 20);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	for (int i = 0; i < 6; i++)
		fire(&f);
	assert_true(f.sm.rt_ms > 16000);
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	assert_sent(&f, DHCP6_MSG_SOLICIT);
	assert_true(f.sm.rt_ms <= 1100);
	/* stopped: nothing */
	dhcp6_sm_stop(&f.sm, &f.out);
	dhcp6_sm_recheck(&f.sm, f.now, wall_of(&f), &f.out);
	assert_false(f.out.send);
	assert_int_equal(f.out.timer_ms, -1);
}

static void test_sm_default_times(void **state)
{
	struct fx f;
	struct srv ack = ACK;

	(void)state;
	fx_init(&f, 21);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	fire(&f);
	fire(&f);
	answer(&f, &ADV);
	/* T1 = T2 = 0: 0.5 and 0.8 of the preferred lifetime */
	ack.t1 = ack.t2 = 0;
	ack.pref = 1000;
	ack.valid = 2000;
	answer(&f, &ack);
	assert_int_equal(f.out.ev[0], DHCP6_EV_BOUND);
	assert_int_equal(f.out.ev_lease[0].t1_s, 500);
	assert_int_equal(f.out.ev_lease[0].t2_s, 800);
	/* infinite: never renewed */
	fx_init(&f, 22);
	dhcp6_sm_start(&f.sm, 0, wall_of(&f), NULL, &f.out);
	fire(&f);
	fire(&f);
	answer(&f, &ADV);
	ack.pref = ack.valid = DHCP6_INFINITE;
	answer(&f, &ack);
	assert_int_equal(f.out.ev[0], DHCP6_EV_BOUND);
	assert_int_equal(f.out.timer_ms, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duid_ll),
		cmocka_unit_test(test_build_solicit),
		cmocka_unit_test(test_build_request),
		cmocka_unit_test(test_parse_reply),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_sm_bind),
		cmocka_unit_test(test_sm_preference_255),
		cmocka_unit_test(test_sm_ignores_foreign),
		cmocka_unit_test(test_sm_solicit_backoff),
		cmocka_unit_test(test_sm_request_gives_up),
		cmocka_unit_test(test_sm_renew_rebind_lost),
		cmocka_unit_test(test_sm_renewed),
		cmocka_unit_test(test_sm_renew_nobinding),
		cmocka_unit_test(test_sm_renew_other_address),
		cmocka_unit_test(test_sm_rebind_noaddrsavail),
		cmocka_unit_test(test_sm_bad_reply_ignored),
		cmocka_unit_test(test_sm_decline),
		cmocka_unit_test(test_sm_release),
		cmocka_unit_test(test_sm_kept_lease),
		cmocka_unit_test(test_sm_recheck),
		cmocka_unit_test(test_sm_default_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
