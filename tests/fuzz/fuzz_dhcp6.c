/*
 * fuzz_dhcp6.c - libFuzzer harness for the DHCPv6 client's codec and state machine
 * (src/devices/dhcp6_msg.c, src/devices/dhcp6_sm.c).
 *
 * The input is one message as a server (or anyone on the link) could send it to port 546.
 * Invariants:
 *   - dhcp6_msg_parse() returns 0 or -EBADMSG; on 0 every count is within its array, DUIDs
 *     are 2..130 bytes, the xid 24 bits;
 *   - what parsed builds again and parses back to the same type, xid, DUIDs and IA;
 *   - fed to a client waiting in SOLICIT, REQUEST and RENEW (with the message's own xid and
 *     CLIENTID, so that it is taken seriously), the state machine stays in a valid state,
 *     reports at most two events, never reports an address without a valid lifetime, and
 *     asks for a timer in the future or none.
 * Any violation aborts.  No side effects: nothing is logged, no sockets.
 */
#include <errno.h>
#include <string.h>

#include "devices/dhcp6_int.h"

#include "fuzz.h"

static const uint8_t MAC[6] = { 0x02, 0x66, 0, 0, 0, 1 };

static void check_out(const struct dhcp6_sm *sm, const struct dhcp6_out *out, int64_t now)
{
	CHECK(sm->state < _DHCP6_STATE_MAX);
	CHECK(out->n_ev <= 2);
	for (size_t i = 0; i < out->n_ev; i++) {
		CHECK(out->ev[i] < _DHCP6_EV_MAX);
		CHECK(out->ev_lease[i].addr.family == AF_INET6);
		if (out->ev[i] != DHCP6_EV_LOST) {
			CHECK(out->ev_lease[i].valid_s > 0);
			CHECK(out->ev_lease[i].preferred_s <= out->ev_lease[i].valid_s);
			CHECK(out->ev_lease[i].t1_s <= out->ev_lease[i].t2_s);
			CHECK(out->ev_lease[i].n_dns <= DHCP6_DNS_MAX);
		}
	}
	CHECK(out->timer_ms == -1 || out->timer_ms >= now);
	if (out->send) {
		uint8_t buf[DHCP6_MSG_MAX];
		size_t len;

		CHECK(dhcp6_msg_build(&out->msg, buf, sizeof(buf), &len) == 0);
	}
}

/* A client in state s (SOLICIT, REQUEST or RENEW) receives m. */
static void feed(const struct dhcp6_msg *m, enum dhcp6_state s)
{
	static struct dhcp6_sm sm;
	struct dhcp6_out out;
	struct addr from = { .family = AF_INET6 };
	int64_t now = 1000, wall = 1800000000;

	dhcp6_sm_init(&sm, MAC, m->client_duid_len ? m->client_duid : NULL, m->client_duid_len,
		m->has_ia ? m->iaid : 0, 0, m->xid + 1);
	if (s == DHCP6_RENEW) {
		struct dhcp6_lease l = { .addr = { .family = AF_INET6 }, .preferred_s = 100,
			.valid_s = 200, .t1_s = 50, .t2_s = 80, .obtained_at = wall - 60 };

		if (m->n_addrs)
			l.addr.v6 = m->addrs[0].addr;
		dhcp6_sm_start(&sm, now, wall, &l, &out);
		CHECK(sm.state == DHCP6_RENEW);
	} else {
		dhcp6_sm_start(&sm, now, wall, NULL, &out);
		now = out.timer_ms;
		dhcp6_sm_timeout(&sm, now, wall, &out);
		CHECK(sm.state == DHCP6_SOLICIT);
		if (s == DHCP6_REQUEST) {
			/* an ADVERTISE of its own makes it request */
			struct dhcp6_msg adv = { .type = DHCP6_MSG_ADVERTISE, .xid = sm.xid,
				.has_ia = true, .iaid = sm.iaid, .n_addrs = 1,
				.status = DHCP6_STATUS_NONE, .ia_status = DHCP6_STATUS_NONE,
				.has_preference = true, .preference = 255 };

			memcpy(adv.client_duid, sm.duid, sm.duid_len);
			adv.client_duid_len = sm.duid_len;
			adv.server_duid_len = 2;
			adv.addrs[0].valid_s = adv.addrs[0].preferred_s = 10;
			adv.addrs[0].status = DHCP6_STATUS_NONE;
			dhcp6_sm_receive(&sm, now, wall, &adv, &from, &out);
			CHECK(sm.state == DHCP6_REQUEST);
		}
	}
	sm.xid = m->xid; /* as if it answered us */
	from.v6.s6_addr[0] = 0xfe;
	from.v6.s6_addr[1] = 0x80;
	dhcp6_sm_receive(&sm, now + 10, wall, m, &from, &out);
	check_out(&sm, &out, now + 10);
	/* and the state it is left in survives its timer */
	if (out.timer_ms >= 0) {
		int64_t t = out.timer_ms;

		dhcp6_sm_timeout(&sm, t, wall + 100, &out);
		check_out(&sm, &out, t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dhcp6_msg m, back;
	uint8_t *copy, buf[DHCP6_MSG_MAX];
	size_t len;
	int r;

	if (size > DHCP6_MSG_MAX)
		return 0;
	copy = fuzz_dup(data, size);
	r = dhcp6_msg_parse(copy, size, &m);
	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		goto out;
	CHECK(size >= 4);
	CHECK(m.xid <= 0xffffff);
	CHECK(m.client_duid_len == 0 || (m.client_duid_len >= 2 && m.client_duid_len <= 130));
	CHECK(m.server_duid_len == 0 || (m.server_duid_len >= 2 && m.server_duid_len <= 130));
	CHECK(m.n_addrs <= DHCP6_MSG_ADDRS_MAX);
	CHECK(m.n_dns <= DHCP6_DNS_MAX);
	CHECK(m.has_ia || m.n_addrs == 0);
	/* build it back: the same type, xid, DUIDs and IA */
	CHECK(dhcp6_msg_build(&m, buf, sizeof(buf), &len) == 0);
	CHECK(dhcp6_msg_parse(buf, len, &back) == 0);
	CHECK(back.type == m.type && back.xid == m.xid);
	CHECK(back.client_duid_len == m.client_duid_len &&
		!memcmp(back.client_duid, m.client_duid, m.client_duid_len));
	CHECK(back.server_duid_len == m.server_duid_len &&
		!memcmp(back.server_duid, m.server_duid, m.server_duid_len));
	CHECK(back.has_ia == m.has_ia && back.iaid == m.iaid && back.n_addrs == m.n_addrs);
	for (size_t i = 0; i < m.n_addrs; i++)
		CHECK(!memcmp(&back.addrs[i], &m.addrs[i], offsetof(struct dhcp6_msg_addr, status)));
	feed(&m, DHCP6_SOLICIT);
	feed(&m, DHCP6_REQUEST);
	feed(&m, DHCP6_RENEW);
out:
	free(copy);
	return 0;
}
