/*
 * test_dhcp4_sm.c - the DHCPv4 client's state machine (src/devices/dhcp4_sm.c) on a fake
 * clock: INIT to BOUND through the ARP probe, renewal at T1 (unicast to the server's MAC),
 * rebinding at T2 (broadcast), expiry (LOST, then DISCOVER), NAK (LOST, INIT), INIT-REBOOT
 * confirmed, refused and unanswered, DECLINE on an ARP conflict, RELEASE, messages that are
 * not ours, and the retransmission backoff's bounds.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/dhcp4_sm.h"

static const uint8_t mac[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };
static const uint8_t srv_mac[6] = { 0x02, 0x53, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t other_mac[6] = { 0x02, 0x66, 0x00, 0x00, 0x00, 0x09 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

#define T0 1000000 /* monotonic ms at the start */
#define W0 1765000000000LL /* wall ms at the start */

static struct dhcp4_now now;

static void at(int64_t ms_from_start)
{
	now.mono_ms = T0 + ms_from_start;
	now.wall_ms = W0 + ms_from_start;
}

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void sm_new(struct dhcp4_sm *sm, uint32_t arp_ms)
{
	struct dhcp4_sm_conf c = { .retry_min_ms = 4000, .retry_max_ms = 64000 };

	memcpy(c.mac, mac, 6);
	c.client_id[0] = 1;
	memcpy(c.client_id + 1, mac, 6);
	c.client_id_len = 7;
	strcpy(c.hostname, "dev1");
	c.arp_probe_ms = arp_ms;
	dhcp4_sm_init(sm, &c, 42);
	at(0);
}

/* A reply as the server sends it: lease 120 s, T1 60, T2 105 unless changed after. */
static struct dhcp4_msg reply(const struct dhcp4_sm *sm, uint8_t type, const char *yiaddr)
{
	struct dhcp4_msg m = { 0 };

	m.op = DHCP4_OP_REPLY;
	m.htype = 1;
	m.hlen = 6;
	m.xid = sm->xid;
	memcpy(m.chaddr, mac, 6);
	m.type = type;
	m.yiaddr = ip(yiaddr);
	m.has_server_id = true;
	m.server_id = ip("192.0.2.1");
	if (type != DHCP4_NAK) {
		m.has_lease = m.has_t1 = m.has_t2 = m.has_mask = m.has_router = true;
		m.lease_s = 120;
		m.t1_s = 60;
		m.t2_s = 105;
		m.mask = ip("255.255.255.0");
		m.router = ip("192.0.2.1");
	}
	return m;
}

static void deliver(struct dhcp4_sm *sm, const struct dhcp4_msg *m, struct dhcp4_sm_out *out)
{
	dhcp4_sm_receive(sm, m, srv_mac, ip("192.0.2.1"), &now, out);
}

/* Fire the timer: the clock moves to its deadline. */
static void fire(struct dhcp4_sm *sm, struct dhcp4_sm_out *out)
{
	assert_true(sm->timer_at > 0);
	now.wall_ms += sm->timer_at - now.mono_ms;
	now.mono_ms = sm->timer_at;
	dhcp4_sm_timeout(sm, &now, out);
}

/* From start to BOUND on 192.0.2.10 (ARP probe included); the clock ends at the bind. */
static void to_bound(struct dhcp4_sm *sm, struct dhcp4_sm_out *out)
{
	struct dhcp4_msg m;

	dhcp4_sm_start(sm, NULL, &now, out);
	m = reply(sm, DHCP4_OFFER, "192.0.2.10");
	deliver(sm, &m, out);
	m = reply(sm, DHCP4_ACK, "192.0.2.10");
	deliver(sm, &m, out);
	if (sm->conf.arp_probe_ms != UINT32_MAX) {
		fire(sm, out);
		fire(sm, out);
	}
	assert_int_equal(sm->state, DHCP4_BOUND);
	assert_int_equal(out->n_events, 1);
	assert_int_equal(out->events[0].ev, DHCP4_EV_BOUND);
}

static void test_init_to_bound(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_msg m;
	uint32_t xid;
	int64_t acked;

	sm_new(&sm, 500);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_DISCOVER);
	assert_int_equal(out.msg.flags, DHCP4_FLAG_BROADCAST);
	assert_memory_equal(out.msg.chaddr, mac, 6);
	assert_int_equal(out.msg.client_id_len, 7);
	assert_string_equal(out.msg.hostname, "dev1");
	assert_true(out.msg.param_list);
	assert_int_equal(out.dst.s_addr, INADDR_BROADCAST);
	assert_int_equal(out.src.s_addr, INADDR_ANY);
	assert_memory_equal(out.dst_mac, bcast, 6);
	assert_int_equal(out.n_events, 0);
	assert_in_range(sm.timer_at, T0 + 3000, T0 + 5000);
	xid = out.msg.xid;

	/* the OFFER: a REQUEST for it, same xid, options 50 and 54 */
	at(300);
	m = reply(&sm, DHCP4_OFFER, "192.0.2.10");
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_REQUESTING);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_REQUEST);
	assert_int_equal(out.msg.xid, xid);
	assert_true(out.msg.has_requested_ip && out.msg.has_server_id);
	assert_int_equal(out.msg.requested_ip.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(out.msg.server_id.s_addr, ip("192.0.2.1").s_addr);
	assert_int_equal(out.msg.ciaddr.s_addr, 0);
	assert_int_equal(out.dst.s_addr, INADDR_BROADCAST);

	/* a second OFFER (another server) is not taken */
	m = reply(&sm, DHCP4_OFFER, "192.0.2.77");
	deliver(&sm, &m, &out);
	assert_false(out.send);
	assert_int_equal(sm.bad, 1);

	/* the ACK: the ARP probe first, nothing reported yet */
	at(400);
	acked = now.mono_ms;
	m = reply(&sm, DHCP4_ACK, "192.0.2.10");
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_REQUESTING);
	assert_true(sm.probing);
	assert_true(out.arp_probe);
	assert_false(out.send);
	assert_int_equal(out.n_events, 0);
	assert_int_equal(sm.timer_at, acked + 250);
	fire(&sm, &out);
	assert_true(out.arp_probe);
	assert_int_equal(out.n_events, 0);
	fire(&sm, &out);
	assert_false(out.arp_probe);
	assert_int_equal(sm.state, DHCP4_BOUND);
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_BOUND);
	{
		const struct dhcp4_lease *l = &out.events[0].lease;

		assert_int_equal(l->addr.family, AF_INET);
		assert_int_equal(l->addr.v4.s_addr, ip("192.0.2.10").s_addr);
		assert_int_equal(l->plen, 24);
		assert_int_equal(l->router.v4.s_addr, ip("192.0.2.1").s_addr);
		assert_int_equal(l->server_id.v4.s_addr, ip("192.0.2.1").s_addr);
		assert_int_equal(l->lease_s, 120);
		assert_int_equal(l->t1_s, 60);
		assert_int_equal(l->t2_s, 105);
		assert_memory_equal(l->server_mac, srv_mac, 6);
		assert_int_equal(l->obtained_at, (W0 + 400) / 1000);
	}
	/* times count from the ACK, not from the end of the probe */
	assert_int_equal(sm.timer_at, acked + 60000);
	assert_int_equal(sm.sent, 2);
}

static void test_no_probe(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;

	sm_new(&sm, UINT32_MAX);
	to_bound(&sm, &out);
	assert_false(out.arp_probe);
}

static void test_renew_at_t1(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_msg m;
	int64_t bound = 0;

	sm_new(&sm, UINT32_MAX);
	to_bound(&sm, &out);
	bound = now.mono_ms;
	/* nothing before T1 */
	at(59999);
	dhcp4_sm_timeout(&sm, &now, &out);
	assert_false(out.send);
	assert_int_equal(sm.state, DHCP4_BOUND);
	fire(&sm, &out);
	assert_int_equal(now.mono_ms, bound + 60000);
	assert_int_equal(sm.state, DHCP4_RENEWING);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_REQUEST);
	assert_int_equal(out.msg.ciaddr.s_addr, ip("192.0.2.10").s_addr);
	assert_false(out.msg.has_requested_ip);
	assert_false(out.msg.has_server_id);
	assert_int_equal(out.src.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(out.dst.s_addr, ip("192.0.2.1").s_addr);
	assert_memory_equal(out.dst_mac, srv_mac, 6);
	/* T2 is 45 s away: the next send waits the 60 s floor, cut at T2 */
	assert_int_equal(sm.timer_at, bound + 105000);

	m = reply(&sm, DHCP4_ACK, "192.0.2.10");
	m.lease_s = 300;
	m.has_t1 = m.has_t2 = false;
	at(now.mono_ms - T0 + 10);
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_BOUND);
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_RENEWED);
	assert_int_equal(out.events[0].lease.lease_s, 300);
	assert_int_equal(out.events[0].lease.t1_s, 150); /* 0.5 and 0.875 of the lease */
	assert_int_equal(out.events[0].lease.t2_s, 262);
	assert_int_equal(sm.timer_at, now.mono_ms + 150000);
}

static void test_rebind_and_expiry(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_msg m;
	int64_t bound;
	int sends = 0;

	sm_new(&sm, UINT32_MAX);
	to_bound(&sm, &out);
	bound = now.mono_ms;
	fire(&sm, &out); /* T1: renewing */
	assert_int_equal(sm.state, DHCP4_RENEWING);
	fire(&sm, &out); /* T2: rebinding, broadcast with ciaddr */
	assert_int_equal(now.mono_ms, bound + 105000);
	assert_int_equal(sm.state, DHCP4_REBINDING);
	assert_true(out.send);
	assert_int_equal(out.msg.ciaddr.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(out.dst.s_addr, INADDR_BROADCAST);
	assert_memory_equal(out.dst_mac, bcast, 6);
	assert_false(out.msg.has_server_id);
	assert_int_equal(out.n_events, 0);

	/* a rebinding ACK from another server: RENEWED, its MAC now the unicast target */
	{
		struct dhcp4_sm sm2 = sm;
		struct dhcp4_sm_out o2;

		m = reply(&sm2, DHCP4_ACK, "192.0.2.10");
		m.server_id = ip("192.0.2.2");
		dhcp4_sm_receive(&sm2, &m, other_mac, ip("192.0.2.2"), &now, &o2);
		assert_int_equal(sm2.state, DHCP4_BOUND);
		assert_int_equal(o2.n_events, 1);
		assert_int_equal(o2.events[0].ev, DHCP4_EV_RENEWED);
		assert_memory_equal(sm2.lease.server_mac, other_mac, 6);
		assert_int_equal(sm2.lease.server_id.v4.s_addr, ip("192.0.2.2").s_addr);
	}

	/* silence: the lease ends at 120 s, reported LOST, and DISCOVER starts at once */
	while (sm.state == DHCP4_REBINDING) {
		fire(&sm, &out);
		assert_true(now.mono_ms <= bound + 120000);
		if (sm.state == DHCP4_REBINDING)
			assert_int_equal(out.n_events, 0);
		sends++;
	}
	assert_int_equal(now.mono_ms, bound + 120000);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_LOST);
	assert_int_equal(out.events[0].lease.addr.v4.s_addr, ip("192.0.2.10").s_addr);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_DISCOVER);
	assert_false(sm.have_lease);
}

static void test_nak(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_msg m;

	/* renewing: NAK -> LOST, INIT, DISCOVER */
	sm_new(&sm, UINT32_MAX);
	to_bound(&sm, &out);
	fire(&sm, &out);
	m = reply(&sm, DHCP4_NAK, "0.0.0.0");
	deliver(&sm, &m, &out);
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_LOST);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_DISCOVER);
	assert_int_equal(sm.naks, 1);

	/* requesting: a NAK restarts without an event; the second one in a row backs off */
	m = reply(&sm, DHCP4_OFFER, "192.0.2.11");
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_NAK, "0.0.0.0");
	deliver(&sm, &m, &out);
	assert_int_equal(out.n_events, 0);
	assert_int_equal(sm.state, DHCP4_INIT);
	assert_false(out.send);
	assert_in_range(sm.timer_at, now.mono_ms + 3000, now.mono_ms + 5000);
	fire(&sm, &out);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_int_equal(out.msg.type, DHCP4_DISCOVER);
	/* a NAK from a server we did not ask is not ours */
	m = reply(&sm, DHCP4_OFFER, "192.0.2.11");
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_NAK, "0.0.0.0");
	m.server_id = ip("192.0.2.99");
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_REQUESTING);
	/* a lease resets the run: the next NAK restarts at once */
	m = reply(&sm, DHCP4_ACK, "192.0.2.11");
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_BOUND);
	dhcp4_sm_recheck(&sm, &now, &out);
	m = reply(&sm, DHCP4_NAK, "0.0.0.0");
	deliver(&sm, &m, &out);
	assert_int_equal(out.events[0].ev, DHCP4_EV_LOST);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_int_equal(sm.naks, 3);
}

static struct dhcp4_lease kept_lease(void)
{
	struct dhcp4_lease k = { 0 };

	k.addr.family = AF_INET;
	k.addr.v4 = ip("192.0.2.10");
	k.plen = 24;
	k.server_id.family = AF_INET;
	k.server_id.v4 = ip("192.0.2.1");
	k.lease_s = 120;
	k.t1_s = 60;
	k.t2_s = 105;
	k.obtained_at = W0 / 1000 - 10; /* ten seconds ago */
	memcpy(k.server_mac, srv_mac, 6);
	return k;
}

static void test_init_reboot(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_lease k = kept_lease();
	struct dhcp4_msg m;

	/* confirmed: REQUEST with 50, no 54, ciaddr 0, broadcast; ACK -> RENEWED */
	sm_new(&sm, 500);
	dhcp4_sm_start(&sm, &k, &now, &out);
	assert_int_equal(sm.state, DHCP4_REBOOTING);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_REQUEST);
	assert_true(out.msg.has_requested_ip);
	assert_int_equal(out.msg.requested_ip.s_addr, k.addr.v4.s_addr);
	assert_false(out.msg.has_server_id);
	assert_int_equal(out.msg.ciaddr.s_addr, 0);
	assert_int_equal(out.msg.flags, DHCP4_FLAG_BROADCAST);
	assert_int_equal(out.dst.s_addr, INADDR_BROADCAST);
	assert_non_null(&sm.lease);
	assert_true(sm.have_lease);
	m = reply(&sm, DHCP4_ACK, "192.0.2.10");
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_BOUND);
	assert_false(out.arp_probe); /* our own address: no probe */
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_RENEWED);

	/* refused: NAK -> LOST, then a fresh lease -> BOUND */
	sm_new(&sm, UINT32_MAX);
	dhcp4_sm_start(&sm, &k, &now, &out);
	m = reply(&sm, DHCP4_NAK, "0.0.0.0");
	deliver(&sm, &m, &out);
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_LOST);
	assert_int_equal(out.events[0].lease.addr.v4.s_addr, k.addr.v4.s_addr);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	m = reply(&sm, DHCP4_OFFER, "192.0.2.20");
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_ACK, "192.0.2.20");
	deliver(&sm, &m, &out);
	assert_int_equal(out.n_events, 1);
	assert_int_equal(out.events[0].ev, DHCP4_EV_BOUND);

	/* unanswered: four sends, then the kept lease is used (no event), renewed at T1 */
	sm_new(&sm, UINT32_MAX);
	k.lease_s = 3600;
	k.t1_s = 1800;
	k.t2_s = 3150;
	dhcp4_sm_start(&sm, &k, &now, &out);
	for (int i = 0; i < DHCP4_REQUEST_TRIES - 1; i++) {
		fire(&sm, &out);
		assert_int_equal(sm.state, DHCP4_REBOOTING);
		assert_true(out.send);
	}
	fire(&sm, &out);
	assert_int_equal(sm.state, DHCP4_BOUND);
	assert_int_equal(out.n_events, 0);
	assert_int_equal(sm.timer_at, T0 - 10000 + 1800000); /* T1 from obtained_at */

	/* an expired kept lease: plain INIT */
	sm_new(&sm, UINT32_MAX);
	k.lease_s = 120;
	k.obtained_at = W0 / 1000 - 121;
	dhcp4_sm_start(&sm, &k, &now, &out);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_false(sm.have_lease);
	assert_int_equal(out.n_events, 0);

	/* recheck while bound: INIT-REBOOT for the lease */
	sm_new(&sm, UINT32_MAX);
	to_bound(&sm, &out);
	dhcp4_sm_recheck(&sm, &now, &out);
	assert_int_equal(sm.state, DHCP4_REBOOTING);
	assert_true(out.msg.has_requested_ip);
	assert_int_equal(out.n_events, 0);
}

static void test_decline(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_arp a = { .op = DHCP4_ARP_REPLY };
	struct dhcp4_msg m;

	sm_new(&sm, 500);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	m = reply(&sm, DHCP4_OFFER, "192.0.2.10");
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_ACK, "192.0.2.10");
	deliver(&sm, &m, &out);
	assert_true(sm.probing);

	/* our own probe and unrelated traffic are no conflict */
	memcpy(a.sha, mac, 6);
	a.spa = ip("192.0.2.10");
	dhcp4_sm_arp(&sm, &a, &now, &out);
	assert_false(out.send);
	memcpy(a.sha, other_mac, 6);
	a.spa = ip("192.0.2.50");
	a.tpa = ip("192.0.2.1");
	dhcp4_sm_arp(&sm, &a, &now, &out);
	assert_false(out.send);
	assert_true(sm.probing);

	/* another host's probe for the same address is */
	{
		struct dhcp4_sm sm2 = sm;
		struct dhcp4_arp p = { .op = DHCP4_ARP_REQUEST };

		memcpy(p.sha, other_mac, 6);
		p.tpa = ip("192.0.2.10");
		dhcp4_sm_arp(&sm2, &p, &now, &out);
		assert_true(out.send);
		assert_int_equal(out.msg.type, DHCP4_DECLINE);
	}

	/* a reply from the address: DECLINE with 50 and 54, INIT for ten seconds */
	a.spa = ip("192.0.2.10");
	dhcp4_sm_arp(&sm, &a, &now, &out);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_DECLINE);
	assert_int_equal(out.msg.requested_ip.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(out.msg.server_id.s_addr, ip("192.0.2.1").s_addr);
	assert_int_equal(out.msg.ciaddr.s_addr, 0);
	assert_int_equal(out.dst.s_addr, INADDR_BROADCAST);
	assert_false(out.msg.param_list);
	assert_int_equal(out.n_events, 0);
	assert_int_equal(sm.declines, 1);
	assert_int_equal(sm.state, DHCP4_INIT);
	assert_false(sm.probing);
	assert_int_equal(sm.timer_at, now.mono_ms + DHCP4_DECLINE_WAIT_MS);
	/* the late ARP timer and the ACK's retransmission change nothing now */
	dhcp4_sm_arp(&sm, &a, &now, &out);
	assert_false(out.send);
	fire(&sm, &out);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_int_equal(out.msg.type, DHCP4_DISCOVER);
}

static void test_release(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;

	sm_new(&sm, UINT32_MAX);
	to_bound(&sm, &out);
	dhcp4_sm_release(&sm, &now, &out);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_RELEASE);
	assert_int_equal(out.msg.ciaddr.s_addr, ip("192.0.2.10").s_addr);
	assert_true(out.msg.has_server_id);
	assert_false(out.msg.has_requested_ip);
	assert_int_equal(out.dst.s_addr, ip("192.0.2.1").s_addr);
	assert_memory_equal(out.dst_mac, srv_mac, 6);
	assert_int_equal(out.n_events, 0);
	assert_int_equal(sm.state, DHCP4_STOPPED);
	assert_false(sm.have_lease);
	assert_int_equal(sm.timer_at, 0);

	/* ACKed but still probing: the server holds the lease, so it is given back */
	sm_new(&sm, 500);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	{
		struct dhcp4_msg m = reply(&sm, DHCP4_OFFER, "192.0.2.10");

		deliver(&sm, &m, &out);
		m = reply(&sm, DHCP4_ACK, "192.0.2.10");
		deliver(&sm, &m, &out);
	}
	assert_true(sm.probing);
	dhcp4_sm_release(&sm, &now, &out);
	assert_true(out.send);
	assert_int_equal(out.msg.type, DHCP4_RELEASE);
	assert_int_equal(out.msg.ciaddr.s_addr, ip("192.0.2.10").s_addr);
	assert_memory_equal(out.dst_mac, srv_mac, 6);
	assert_int_equal(out.n_events, 0);
	assert_false(sm.have_lease);

	/* nothing held: nothing sent */
	sm_new(&sm, UINT32_MAX);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	dhcp4_sm_release(&sm, &now, &out);
	assert_false(out.send);
	assert_int_equal(sm.state, DHCP4_STOPPED);
}

static void test_not_ours(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_msg m;

	sm_new(&sm, UINT32_MAX);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	m = reply(&sm, DHCP4_OFFER, "192.0.2.10");
	m.xid ^= 1;
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_OFFER, "192.0.2.10");
	m.chaddr[5] ^= 1;
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_OFFER, "192.0.2.10");
	m.op = DHCP4_OP_REQUEST;
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_ACK, "192.0.2.10"); /* an ACK while selecting */
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_OFFER, "0.0.0.0");
	deliver(&sm, &m, &out);
	assert_int_equal(sm.bad, 5);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	/* an ACK without a lease time is not taken */
	m = reply(&sm, DHCP4_OFFER, "192.0.2.10");
	deliver(&sm, &m, &out);
	m = reply(&sm, DHCP4_ACK, "192.0.2.10");
	m.has_lease = false;
	deliver(&sm, &m, &out);
	assert_int_equal(sm.state, DHCP4_REQUESTING);
	assert_int_equal(sm.bad, 6);
	/* a REQUEST unanswered four times: back to DISCOVER */
	for (int i = 0; i < DHCP4_REQUEST_TRIES - 1; i++) {
		fire(&sm, &out);
		assert_int_equal(out.msg.type, DHCP4_REQUEST);
	}
	fire(&sm, &out);
	assert_int_equal(sm.state, DHCP4_SELECTING);
	assert_int_equal(out.msg.type, DHCP4_DISCOVER);
}

static void test_backoff(void **state)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	uint32_t lo = UINT32_MAX, hi = 0;
	int64_t prev;

	sm_new(&sm, UINT32_MAX);
	/* bounds: base 4 s doubled per attempt, capped at 64 s, +/- min(base/4, 1 s) */
	for (uint32_t a = 0; a < 12; a++) {
		uint64_t base = 4000ULL << (a < 5 ? a : 5);
		uint32_t j;

		if (base > 64000)
			base = 64000;
		j = (uint32_t)(base / 4 < 1000 ? base / 4 : 1000);
		for (int i = 0; i < 2000; i++) {
			uint32_t d = dhcp4_sm_backoff(&sm, a);

			assert_in_range(d, base - j, base + j);
			if (a == 0) {
				lo = d < lo ? d : lo;
				hi = d > hi ? d : hi;
			}
		}
	}
	/* the jitter is there and spans most of its range */
	assert_true(lo < 3200 && hi > 4800);

	/* small settings: the jitter stays within a quarter */
	sm.conf.retry_min_ms = 100;
	sm.conf.retry_max_ms = 400;
	for (int i = 0; i < 1000; i++) {
		assert_in_range(dhcp4_sm_backoff(&sm, 0), 75, 125);
		assert_in_range(dhcp4_sm_backoff(&sm, 9), 300, 500);
	}

	/* DISCOVER forever: the waits grow, then stay at the cap */
	sm_new(&sm, UINT32_MAX);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	prev = now.mono_ms;
	for (int i = 0; i < 100; i++) {
		int64_t wait = sm.timer_at - prev;

		if (i >= 4)
			assert_in_range(wait, 63000, 65000);
		fire(&sm, &out);
		assert_true(out.send);
		assert_int_equal(out.msg.type, DHCP4_DISCOVER);
		prev = now.mono_ms;
	}
	assert_int_equal(sm.attempt, 100);
	/* the secs field counts from the exchange's start, saturating */
	assert_true(out.msg.secs > 5000);
}

static void test_mask(void **state)
{
	assert_int_equal(dhcp4_mask_plen(ip("255.255.255.0")), 24);
	assert_int_equal(dhcp4_mask_plen(ip("255.255.255.255")), 32);
	assert_int_equal(dhcp4_mask_plen(ip("0.0.0.0")), 0);
	assert_int_equal(dhcp4_mask_plen(ip("255.255.128.0")), 17);
	assert_int_equal(dhcp4_mask_plen(ip("255.0.255.0")), -1);
	assert_string_equal(dhcp4_state_name[DHCP4_REBINDING], "rebinding");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_to_bound),
		cmocka_unit_test(test_no_probe),
		cmocka_unit_test(test_renew_at_t1),
		cmocka_unit_test(test_rebind_and_expiry),
		cmocka_unit_test(test_nak),
		cmocka_unit_test(test_init_reboot),
		cmocka_unit_test(test_decline),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_mask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
