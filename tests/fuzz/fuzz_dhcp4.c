/*
 * fuzz_dhcp4.c - libFuzzer harness for every parser of the DHCPv4 client
 * (src/devices/dhcp4_msg.c) and the state machine behind them (dhcp4_sm.c), fed what a
 * packet socket hands the client.  The first byte picks the entry, the rest is the packet
 * (in a heap buffer of exactly its size):
 *   0  an IPv4 packet: dhcp4_udp_parse() with and without the UDP checksum, then the
 *      DHCP message it carries, as 1
 *   1  a DHCP message: dhcp4_msg_parse(); an accepted one is built again and parsed back,
 *      then handed (with our xid and MAC put in) to state machines in SELECTING,
 *      REQUESTING, RENEWING and REBOOTING, whose timers are then run out
 *   2  an ARP packet: dhcp4_arp_parse(), then to a machine probing an address
 * Checked for every input: results are 0, -EBADMSG or -EPROTO; a payload lies inside the
 * packet; parsed fields are within their bounds; the machines keep their invariants
 * (t1 <= t2 <= lease, a prefix length of at most 32, at most two events).  Any violation
 * aborts.  No side effects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/dhcp4_sm.h"

#include "fuzz.h"

static const uint8_t mac[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };
static const uint8_t srv_mac[6] = { 0x02, 0x53, 0, 0, 0, 1 };

static void check_out(const struct dhcp4_sm *sm, const struct dhcp4_sm_out *out)
{
	CHECK(sm->state < _DHCP4_STATE_MAX);
	CHECK(out->n_events <= 2);
	for (unsigned i = 0; i < out->n_events; i++)
		CHECK(out->events[i].ev < _DHCP4_EV_MAX);
	if (sm->have_lease) {
		CHECK(sm->lease.plen <= 32);
		CHECK(sm->lease.t1_s <= sm->lease.t2_s);
		CHECK(sm->lease.t2_s <= sm->lease.lease_s);
		CHECK(sm->lease.n_dns <= DHCP4_DNS_MAX);
	}
	if (out->send) {
		uint8_t buf[DHCP4_MAX_MSG];
		size_t len;

		CHECK(dhcp4_msg_build(&out->msg, buf, sizeof(buf), &len) == 0);
	}
}

static void sm_setup(struct dhcp4_sm *sm, struct dhcp4_now *now)
{
	struct dhcp4_sm_conf c = { .retry_min_ms = 1000, .retry_max_ms = 8000,
		.arp_probe_ms = 200 };

	memcpy(c.mac, mac, 6);
	c.client_id[0] = 1;
	memcpy(c.client_id + 1, mac, 6);
	c.client_id_len = 7;
	dhcp4_sm_init(sm, &c, 1);
	now->mono_ms = 1000000;
	now->wall_ms = 1765000000000LL;
}

/* A reply the machine takes, to move it along. */
static struct dhcp4_msg canned(const struct dhcp4_sm *sm, uint8_t type)
{
	struct dhcp4_msg m = { .op = DHCP4_OP_REPLY, .htype = 1, .hlen = 6, .type = type };

	m.xid = sm->xid;
	memcpy(m.chaddr, mac, 6);
	m.yiaddr.s_addr = htonl(0xc000020a);
	m.has_server_id = true;
	m.server_id.s_addr = htonl(0xc0000201);
	m.has_lease = true;
	m.lease_s = 120;
	return m;
}

static void run_out(struct dhcp4_sm *sm, struct dhcp4_now *now)
{
	struct dhcp4_sm_out out;

	/* a bounded number of timer firings: retransmissions, probes, T1, T2, expiry */
	for (int i = 0; i < 12 && sm->timer_at; i++) {
		if (sm->timer_at > now->mono_ms) {
			now->wall_ms += sm->timer_at - now->mono_ms;
			now->mono_ms = sm->timer_at;
		}
		dhcp4_sm_timeout(sm, now, &out);
		check_out(sm, &out);
	}
}

/* Hand m to a machine in each state that reads messages. */
static void drive(const struct dhcp4_msg *parsed)
{
	struct in_addr src = { htonl(0xc0000201) };
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_now now;
	struct dhcp4_msg m, c;
	struct dhcp4_lease kept = { .lease_s = 120, .t1_s = 60, .t2_s = 105, .plen = 24 };

	for (int stage = 0; stage < 4; stage++) {
		sm_setup(&sm, &now);
		if (stage == 3) {
			kept.addr.family = AF_INET;
			kept.addr.v4.s_addr = htonl(0xc000020a);
			kept.obtained_at = now.wall_ms / 1000;
			dhcp4_sm_start(&sm, &kept, &now, &out);
		} else {
			dhcp4_sm_start(&sm, NULL, &now, &out);
		}
		if (stage >= 1 && stage <= 2) {
			c = canned(&sm, DHCP4_OFFER);
			dhcp4_sm_receive(&sm, &c, srv_mac, src, &now, &out);
		}
		if (stage == 2) {
			sm.conf.arp_probe_ms = UINT32_MAX;
			c = canned(&sm, DHCP4_ACK);
			dhcp4_sm_receive(&sm, &c, srv_mac, src, &now, &out);
			CHECK(sm.state == DHCP4_BOUND);
			now.mono_ms += 60000;
			dhcp4_sm_timeout(&sm, &now, &out);
			CHECK(sm.state == DHCP4_RENEWING);
		}
		m = *parsed;
		m.xid = sm.xid;
		memcpy(m.chaddr, mac, 6);
		m.op = DHCP4_OP_REPLY;
		m.hlen = 6;
		dhcp4_sm_receive(&sm, &m, srv_mac, src, &now, &out);
		check_out(&sm, &out);
		run_out(&sm, &now);
		dhcp4_sm_release(&sm, &now, &out);
		check_out(&sm, &out);
		CHECK(sm.state == DHCP4_STOPPED);
	}
}

static void message(const uint8_t *p, size_t n)
{
	struct dhcp4_msg m, back;
	uint8_t buf[DHCP4_MAX_MSG];
	size_t len;
	int r = dhcp4_msg_parse(p, n, &m);

	CHECK(r == 0 || r == -EBADMSG);
	if (r)
		return;
	CHECK(m.type >= DHCP4_DISCOVER && m.type < _DHCP4_MSG_TYPE_MAX);
	CHECK(m.hlen <= 16);
	CHECK(m.n_dns <= DHCP4_MSG_DNS_MAX);
	CHECK(memchr(m.message, '\0', sizeof(m.message)));
	for (const char *s = m.message; *s; s++)
		CHECK(*s >= 0x20 && *s < 0x7f);
	/* what we read, written again and read back */
	CHECK(dhcp4_msg_build(&m, buf, sizeof(buf), &len) == 0);
	CHECK(dhcp4_msg_parse(buf, len, &back) == 0);
	CHECK(back.type == m.type && back.xid == m.xid && back.flags == m.flags);
	CHECK(back.ciaddr.s_addr == m.ciaddr.s_addr && back.yiaddr.s_addr == m.yiaddr.s_addr);
	CHECK(back.has_server_id == m.has_server_id);
	CHECK(!m.has_server_id || back.server_id.s_addr == m.server_id.s_addr);
	CHECK(!memcmp(back.chaddr, m.chaddr, 16));
	drive(&m);
}

static void packet(const uint8_t *p, size_t n)
{
	for (int csum = 0; csum < 2; csum++) {
		struct dhcp4_udp u;
		const uint8_t *pay = NULL;
		size_t plen = 0;
		int r = dhcp4_udp_parse(p, n, csum, &u, &pay, &plen);

		CHECK(r == 0 || r == -EBADMSG || r == -EPROTO);
		if (r)
			continue;
		CHECK(pay >= p + 28 && pay + plen <= p + n);
		if (csum)
			message(pay, plen);
	}
}

static void arp(const uint8_t *p, size_t n)
{
	struct dhcp4_sm sm;
	struct dhcp4_sm_out out;
	struct dhcp4_now now;
	struct dhcp4_msg c;
	struct dhcp4_arp a;
	struct in_addr src = { htonl(0xc0000201) };
	int r = dhcp4_arp_parse(p, n, &a);

	CHECK(r == 0 || r == -EBADMSG || r == -EPROTO);
	if (r)
		return;
	CHECK(a.op == DHCP4_ARP_REQUEST || a.op == DHCP4_ARP_REPLY);
	sm_setup(&sm, &now);
	dhcp4_sm_start(&sm, NULL, &now, &out);
	c = canned(&sm, DHCP4_OFFER);
	dhcp4_sm_receive(&sm, &c, srv_mac, src, &now, &out);
	c = canned(&sm, DHCP4_ACK);
	dhcp4_sm_receive(&sm, &c, srv_mac, src, &now, &out);
	CHECK(sm.probing);
	dhcp4_sm_arp(&sm, &a, &now, &out);
	check_out(&sm, &out);
	CHECK(!out.send || (out.msg.type == DHCP4_DECLINE && sm.state == DHCP4_INIT));
	run_out(&sm, &now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (size < 1)
		return 0;
	buf = fuzz_dup(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		packet(buf, size - 1);
		break;
	case 1:
		message(buf, size - 1);
		break;
	default:
		arp(buf, size - 1);
		break;
	}
	free(buf);
	return 0;
}
