/*
 * dhcp4_sm.c - the DHCPv4 client's state machine (RFC 2131 4.4; conflict probe RFC 5227).
 *
 *   start ---> INIT -- DISCOVER --> SELECTING -- OFFER/REQUEST --> REQUESTING -- ACK -->
 *              (probe window: ARP probes; an answer: DECLINE, INIT after 10 s) --> BOUND
 *   BOUND -- T1 --> RENEWING (unicast) -- T2 --> REBINDING (broadcast) -- expiry --> LOST, INIT
 *   start with a kept lease ---> INIT-REBOOT -- REQUEST --> REBOOTING -- ACK: RENEWED,
 *              NAK: LOST + INIT, silence: keep using the lease (RFC 2131 3.2)
 *   a NAK while holding a lease: LOST, INIT.
 *
 * Must not read a clock, allocate, log or do I/O: every call gets the time and returns what
 * to send in a struct dhcp4_sm_out; dhcp4.c acts on it.
 */
#include <string.h>

#include "dhcp4_sm.h"

const char *const dhcp4_state_name[_DHCP4_STATE_MAX] = {
	[DHCP4_STOPPED] = "stopped",
	[DHCP4_INIT] = "init",
	[DHCP4_SELECTING] = "selecting",
	[DHCP4_REQUESTING] = "requesting",
	[DHCP4_BOUND] = "bound",
	[DHCP4_RENEWING] = "renewing",
	[DHCP4_REBINDING] = "rebinding",
	[DHCP4_INIT_REBOOT] = "init-reboot",
	[DHCP4_REBOOTING] = "rebooting",
};

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t zero_mac[6];

/* xorshift64*: enough for xids and jitter, reproducible from the seed. */
static uint32_t rnd(struct dhcp4_sm *sm)
{
	uint64_t x = sm->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sm->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

void dhcp4_sm_init(struct dhcp4_sm *sm, const struct dhcp4_sm_conf *conf, uint64_t seed)
{
	memset(sm, 0, sizeof(*sm));
	sm->conf = *conf;
	if (!sm->conf.retry_min_ms)
		sm->conf.retry_min_ms = 4000;
	if (!sm->conf.retry_max_ms)
		sm->conf.retry_max_ms = 64000;
	if (sm->conf.retry_max_ms < sm->conf.retry_min_ms)
		sm->conf.retry_max_ms = sm->conf.retry_min_ms;
	if (!sm->conf.arp_probe_ms)
		sm->conf.arp_probe_ms = 500;
	sm->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
	sm->state = DHCP4_STOPPED;
}

uint32_t dhcp4_sm_backoff(struct dhcp4_sm *sm, uint32_t attempt)
{
	uint64_t base = sm->conf.retry_min_ms;
	uint32_t j;

	for (uint32_t i = 0; i < attempt && base < sm->conf.retry_max_ms; i++)
		base *= 2;
	if (base > sm->conf.retry_max_ms)
		base = sm->conf.retry_max_ms;
	j = (uint32_t)(base / 4 < 1000 ? base / 4 : 1000);
	return (uint32_t)(base - j + rnd(sm) % (2 * (uint64_t)j + 1));
}

int dhcp4_mask_plen(struct in_addr mask)
{
	uint32_t m = ntohl(mask.s_addr);
	int n = 0;

	while (n < 32 && (m & (0x80000000u >> n)))
		n++;
	if (n < 32 && (m << n))
		return -1;
	return n;
}

static void out_clear(struct dhcp4_sm_out *out)
{
	memset(out, 0, sizeof(*out));
}

static void emit(struct dhcp4_sm_out *out, enum dhcp4_event ev, const struct dhcp4_lease *l)
{
	if (out->n_events < 2) {
		out->events[out->n_events].ev = ev;
		out->events[out->n_events].lease = *l;
		out->n_events++;
	}
}

static void new_exchange(struct dhcp4_sm *sm, const struct dhcp4_now *now)
{
	sm->xid = rnd(sm);
	sm->xid_start_ms = now->mono_ms;
	sm->attempt = 0;
}

/* The common part of every message we send; the caller adds addresses and options. */
static struct dhcp4_msg *msg_base(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out, uint8_t type)
{
	struct dhcp4_msg *m = &out->msg;
	int64_t secs = (now->mono_ms - sm->xid_start_ms) / 1000;

	out->send = true;
	memset(m, 0, sizeof(*m));
	m->op = DHCP4_OP_REQUEST;
	m->type = type;
	m->xid = sm->xid;
	m->secs = (uint16_t)(secs < 0 ? 0 : secs > 0xffff ? 0xffff : secs);
	memcpy(m->chaddr, sm->conf.mac, 6);
	memcpy(m->client_id, sm->conf.client_id, sm->conf.client_id_len);
	m->client_id_len = sm->conf.client_id_len;
	if (type == DHCP4_DISCOVER || type == DHCP4_REQUEST) {
		memcpy(m->hostname, sm->conf.hostname, sizeof(m->hostname));
		m->max_size = DHCP4_MAX_MSG;
		m->param_list = true;
	}
	out->src.s_addr = INADDR_ANY;
	out->dst.s_addr = INADDR_BROADCAST;
	memcpy(out->dst_mac, bcast_mac, 6);
	sm->sent++;
	return m;
}

/* Unicast to the lease's server: the link-layer address its answers came from. */
static void to_server(struct dhcp4_sm *sm, struct dhcp4_sm_out *out)
{
	out->src = sm->lease.addr.v4;
	out->dst = sm->lease.server_id.v4;
	if (memcmp(sm->lease.server_mac, zero_mac, 6))
		memcpy(out->dst_mac, sm->lease.server_mac, 6);
}

static int64_t lease_at(const struct dhcp4_sm *sm, uint32_t secs)
{
	if (secs == UINT32_MAX)
		return INT64_MAX;
	return sm->bound_ms + (int64_t)secs * 1000;
}

static void send_discover(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	struct dhcp4_msg *m = msg_base(sm, now, out, DHCP4_DISCOVER);

	m->flags = DHCP4_FLAG_BROADCAST;
	sm->timer_at = now->mono_ms + dhcp4_sm_backoff(sm, sm->attempt);
}

static void start_discover(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	sm->state = DHCP4_SELECTING;
	sm->probing = false;
	new_exchange(sm, now);
	send_discover(sm, now, out);
}

/* INIT: discover now (delay 0) or when the timer fires. */
static void enter_init(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out,
	uint32_t delay_ms)
{
	sm->probing = false;
	if (!delay_ms) {
		start_discover(sm, now, out);
		return;
	}
	sm->state = DHCP4_INIT;
	sm->timer_at = now->mono_ms + delay_ms;
}

/* The held lease is gone: report it and forget it. */
static void lose(struct dhcp4_sm *sm, struct dhcp4_sm_out *out)
{
	if (sm->have_lease)
		emit(out, DHCP4_EV_LOST, &sm->lease);
	sm->have_lease = false;
}

/* REQUESTING: the REQUEST that answers the chosen OFFER (RFC 2131 4.4.1). */
static void send_select_request(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	struct dhcp4_msg *m = msg_base(sm, now, out, DHCP4_REQUEST);

	m->flags = DHCP4_FLAG_BROADCAST;
	m->has_requested_ip = true;
	m->requested_ip = sm->offer.addr.v4;
	m->has_server_id = true;
	m->server_id = sm->offer.server_id.v4;
	sm->timer_at = now->mono_ms + dhcp4_sm_backoff(sm, sm->attempt);
}

/* REBOOTING: confirm a kept address (RFC 2131 3.2, 4.3.2: option 50, no server id). */
static void send_reboot_request(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	struct dhcp4_msg *m = msg_base(sm, now, out, DHCP4_REQUEST);

	m->flags = DHCP4_FLAG_BROADCAST;
	m->has_requested_ip = true;
	m->requested_ip = sm->lease.addr.v4;
	sm->timer_at = now->mono_ms + dhcp4_sm_backoff(sm, sm->attempt);
}

static void start_reboot(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	sm->state = DHCP4_REBOOTING; /* INIT-REBOOT sends at once and moves on */
	sm->probing = false;
	new_exchange(sm, now);
	send_reboot_request(sm, now, out);
}

/*
 * RENEWING and REBINDING: a REQUEST with ciaddr, no option 50 or 54 (RFC 2131 4.3.2);
 * unicast to the server when renewing, broadcast when rebinding.  The next send is half
 * the time left until deadline, at least a minute, and never after deadline (4.4.5).
 */
static void send_extend(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out, int64_t deadline)
{
	struct dhcp4_msg *m = msg_base(sm, now, out, DHCP4_REQUEST);
	int64_t wait = (deadline - now->mono_ms) / 2;

	m->ciaddr = sm->lease.addr.v4;
	if (sm->state == DHCP4_RENEWING) {
		to_server(sm, out);
	} else {
		out->src = sm->lease.addr.v4;
		m->flags = DHCP4_FLAG_BROADCAST;
	}
	if (wait < DHCP4_RENEW_MIN_MS)
		wait = DHCP4_RENEW_MIN_MS;
	sm->timer_at = now->mono_ms + wait < deadline ? now->mono_ms + wait : deadline;
}

/*
 * A held lease's timers: expiry -> LOST and INIT; past T2 -> REBINDING; past T1 ->
 * RENEWING; else wait for T1 in BOUND.  Entering RENEWING/REBINDING starts an exchange.
 */
static void lease_step(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	int64_t t1 = lease_at(sm, sm->lease.t1_s), t2 = lease_at(sm, sm->lease.t2_s);
	int64_t end = lease_at(sm, sm->lease.lease_s);

	if (now->mono_ms >= end) {
		lose(sm, out);
		enter_init(sm, now, out, 0);
	} else if (now->mono_ms >= t2) {
		if (sm->state != DHCP4_REBINDING) {
			sm->state = DHCP4_REBINDING;
			new_exchange(sm, now);
		} else {
			sm->attempt++;
		}
		send_extend(sm, now, out, end);
	} else if (now->mono_ms >= t1) {
		if (sm->state != DHCP4_RENEWING) {
			sm->state = DHCP4_RENEWING;
			new_exchange(sm, now);
		} else {
			sm->attempt++;
		}
		send_extend(sm, now, out, t2);
	} else {
		sm->state = DHCP4_BOUND;
		sm->timer_at = t1 == INT64_MAX ? 0 : t1;
	}
}

/* A lease from an ACK (or OFFER): times made consistent, t1 <= t2 <= lease. */
static void lease_from(const struct dhcp4_msg *m, const uint8_t src_mac[6],
	const struct dhcp4_now *now, struct dhcp4_lease *l)
{
	int plen = m->has_mask ? dhcp4_mask_plen(m->mask) : -1;

	memset(l, 0, sizeof(*l));
	l->addr.family = AF_INET;
	l->addr.v4 = m->yiaddr;
	l->plen = (uint8_t)(plen < 0 ? 32 : plen);
	if (m->has_router) {
		l->router.family = AF_INET;
		l->router.v4 = m->router;
	}
	l->server_id.family = AF_INET;
	l->server_id.v4 = m->server_id;
	for (size_t i = 0; i < m->n_dns && i < DHCP4_DNS_MAX; i++) {
		l->dns[i].family = AF_INET;
		l->dns[i].v4 = m->dns[i];
		l->n_dns++;
	}
	l->lease_s = m->lease_s;
	if (l->lease_s == UINT32_MAX) {
		l->t1_s = l->t2_s = UINT32_MAX;
	} else {
		l->t2_s = m->has_t2 && m->t2_s <= l->lease_s ? m->t2_s
							       : (uint32_t)((uint64_t)l->lease_s * 7 / 8);
		l->t1_s = m->has_t1 && m->t1_s <= l->t2_s ? m->t1_s : l->lease_s / 2;
		if (l->t1_s > l->t2_s)
			l->t1_s = l->t2_s;
	}
	l->obtained_at = now->wall_ms / 1000;
	memcpy(l->server_mac, src_mac, 6);
}

/* An ACK accepted: hold its lease and report what changed. */
static void bind_lease(struct dhcp4_sm *sm, const struct dhcp4_lease *l, int64_t acked_ms,
	const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	if (sm->have_lease && addr_eq(&sm->lease.addr, &l->addr)) {
		emit(out, DHCP4_EV_RENEWED, l);
	} else {
		lose(sm, out);
		emit(out, DHCP4_EV_BOUND, l);
	}
	sm->have_lease = true;
	sm->lease = *l;
	sm->bound_ms = acked_ms;
	sm->probing = false;
	sm->nak_run = 0;
	sm->attempt = 0;
	sm->state = DHCP4_BOUND;
	lease_step(sm, now, out);
}

void dhcp4_sm_start(struct dhcp4_sm *sm, const struct dhcp4_lease *kept,
	const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	out_clear(out);
	sm->probing = false;
	sm->nak_run = 0;
	sm->have_lease = false;
	if (kept && kept->addr.family == AF_INET && !addr_is_any(&kept->addr) &&
		(kept->lease_s == UINT32_MAX ||
			(kept->obtained_at + (int64_t)kept->lease_s) * 1000 > now->wall_ms)) {
		sm->have_lease = true;
		sm->lease = *kept;
		sm->bound_ms = now->mono_ms - (now->wall_ms - kept->obtained_at * 1000);
		sm->state = DHCP4_INIT_REBOOT;
		start_reboot(sm, now, out);
		return;
	}
	enter_init(sm, now, out, 0);
}

void dhcp4_sm_recheck(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	out_clear(out);
	if (sm->state == DHCP4_STOPPED)
		return;
	if (sm->have_lease && now->mono_ms < lease_at(sm, sm->lease.lease_s)) {
		start_reboot(sm, now, out);
		return;
	}
	lose(sm, out);
	enter_init(sm, now, out, 0);
}

/* The probe window: probes at its start and middle; silence to its end means BOUND. */
static void probe_step(struct dhcp4_sm *sm, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	uint32_t step = sm->conf.arp_probe_ms / DHCP4_ARP_PROBES;

	if (sm->probes_sent < DHCP4_ARP_PROBES) {
		out->arp_probe = true;
		sm->probes_sent++;
		sm->timer_at = now->mono_ms + (step ? step : 1);
		return;
	}
	bind_lease(sm, &sm->offer, sm->bound_ms, now, out);
}

void dhcp4_sm_timeout(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	out_clear(out);
	if (!sm->timer_at || now->mono_ms < sm->timer_at)
		return;
	sm->timer_at = 0;
	switch (sm->state) {
	case DHCP4_STOPPED:
		break;
	case DHCP4_INIT:
		start_discover(sm, now, out);
		break;
	case DHCP4_SELECTING:
		sm->attempt++;
		send_discover(sm, now, out);
		break;
	case DHCP4_REQUESTING:
		if (sm->probing) {
			probe_step(sm, now, out);
		} else if (sm->attempt + 1 >= DHCP4_REQUEST_TRIES) {
			enter_init(sm, now, out, 0);
		} else {
			sm->attempt++;
			send_select_request(sm, now, out);
		}
		break;
	case DHCP4_INIT_REBOOT:
	case DHCP4_REBOOTING:
		if (sm->attempt + 1 >= DHCP4_REQUEST_TRIES) {
			/* RFC 2131 3.2: no answer; use the lease for the rest of its time */
			sm->attempt = 0;
			lease_step(sm, now, out);
		} else {
			sm->attempt++;
			send_reboot_request(sm, now, out);
		}
		break;
	case DHCP4_BOUND:
	case DHCP4_RENEWING:
	case DHCP4_REBINDING:
		lease_step(sm, now, out);
		break;
	case _DHCP4_STATE_MAX:
		break;
	}
}

/* A NAK: whatever was held is lost; start again, backing off when NAKs repeat. */
static void on_nak(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	sm->naks++;
	lose(sm, out);
	enter_init(sm, now, out, sm->nak_run ? dhcp4_sm_backoff(sm, sm->nak_run - 1) : 0);
	sm->nak_run++;
}

void dhcp4_sm_receive(struct dhcp4_sm *sm, const struct dhcp4_msg *m, const uint8_t src_mac[6],
	struct in_addr src_ip, const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	struct dhcp4_lease l;
	struct dhcp4_msg mm;

	out_clear(out);
	sm->received++;
	if (m->op != DHCP4_OP_REPLY || m->xid != sm->xid || m->hlen != 6 ||
		memcmp(m->chaddr, sm->conf.mac, 6) || sm->probing)
		goto bad;
	mm = *m;
	/* RFC 2131 4.1: the server MUST send option 54; fall back to the IP source */
	if (!mm.has_server_id) {
		mm.server_id = src_ip;
		mm.has_server_id = src_ip.s_addr != INADDR_ANY;
	}
	switch (sm->state) {
	case DHCP4_SELECTING:
		if (mm.type != DHCP4_OFFER || mm.yiaddr.s_addr == INADDR_ANY ||
			mm.yiaddr.s_addr == INADDR_BROADCAST || !mm.has_server_id)
			goto bad;
		lease_from(&mm, src_mac, now, &sm->offer);
		sm->state = DHCP4_REQUESTING;
		sm->attempt = 0;
		send_select_request(sm, now, out);
		return;
	case DHCP4_REQUESTING:
		if (mm.type == DHCP4_NAK) {
			if (mm.server_id.s_addr != sm->offer.server_id.v4.s_addr)
				goto bad;
			on_nak(sm, now, out);
			return;
		}
		if (mm.type != DHCP4_ACK || !mm.has_lease || mm.lease_s == 0 ||
			mm.yiaddr.s_addr != sm->offer.addr.v4.s_addr ||
			mm.server_id.s_addr != sm->offer.server_id.v4.s_addr)
			goto bad;
		lease_from(&mm, src_mac, now, &l);
		sm->offer = l;
		sm->bound_ms = now->mono_ms;
		if (sm->conf.arp_probe_ms == UINT32_MAX) {
			bind_lease(sm, &l, now->mono_ms, now, out);
			return;
		}
		/* RFC 5227 2.1.1: probe before use */
		sm->probing = true;
		sm->probes_sent = 0;
		probe_step(sm, now, out);
		return;
	case DHCP4_REBOOTING:
	case DHCP4_INIT_REBOOT:
	case DHCP4_RENEWING:
	case DHCP4_REBINDING:
		if (mm.type == DHCP4_NAK) {
			on_nak(sm, now, out);
			return;
		}
		if (mm.type != DHCP4_ACK || !mm.has_lease || mm.lease_s == 0 ||
			mm.yiaddr.s_addr == INADDR_ANY || !mm.has_server_id)
			goto bad;
		lease_from(&mm, src_mac, now, &l);
		bind_lease(sm, &l, now->mono_ms, now, out);
		return;
	default:
		goto bad;
	}
bad:
	sm->bad++;
}

void dhcp4_sm_arp(struct dhcp4_sm *sm, const struct dhcp4_arp *a, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out)
{
	struct in_addr ip = sm->offer.addr.v4;
	struct dhcp4_msg *m;

	out_clear(out);
	if (!sm->probing || !memcmp(a->sha, sm->conf.mac, 6))
		return;
	/*
	 * RFC 5227 2.1.1: a conflict is any ARP packet whose sender is the address, or a
	 * probe of another host (sender 0.0.0.0) for the same address.
	 */
	if (a->spa.s_addr != ip.s_addr &&
		!(a->op == DHCP4_ARP_REQUEST && a->spa.s_addr == INADDR_ANY && a->tpa.s_addr == ip.s_addr))
		return;
	/* RFC 2131 4.4.1: DECLINE (option 50 and 54, ciaddr 0), then INIT after 10 s */
	m = msg_base(sm, now, out, DHCP4_DECLINE);
	m->has_requested_ip = true;
	m->requested_ip = ip;
	m->has_server_id = true;
	m->server_id = sm->offer.server_id.v4;
	sm->declines++;
	sm->probing = false;
	enter_init(sm, now, out, DHCP4_DECLINE_WAIT_MS);
}

void dhcp4_sm_release(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out)
{
	struct dhcp4_msg *m;

	out_clear(out);
	/* an address ACKed but still being probed is the server's lease too: give it back */
	if (sm->state != DHCP4_STOPPED && !sm->have_lease && sm->probing) {
		sm->lease = sm->offer;
		sm->have_lease = true;
	}
	if (sm->state != DHCP4_STOPPED && sm->have_lease) {
		/* RFC 2131 4.4.6: ciaddr, option 54; unicast to the server */
		new_exchange(sm, now);
		m = msg_base(sm, now, out, DHCP4_RELEASE);
		m->ciaddr = sm->lease.addr.v4;
		m->has_server_id = true;
		m->server_id = sm->lease.server_id.v4;
		to_server(sm, out);
		sm->have_lease = false;
	}
	dhcp4_sm_stop(sm);
}

void dhcp4_sm_stop(struct dhcp4_sm *sm)
{
	sm->state = DHCP4_STOPPED;
	sm->timer_at = 0;
	sm->probing = false;
}
