/*
 * dhcp6_sm.c - the DHCPv6 client's state machine (RFC 8415 18.2), pure.
 *
 * Events come in as calls (start, timeout, a parsed message, recheck, decline, release,
 * stop) with the time; what to send, what to report and when to be called again go out in a
 * struct dhcp6_out.  No sockets, no clock, no log: dhcp6.c does those, and the unit tests
 * drive this file with a fake clock.  Randomness (RFC 8415 15's RAND, transaction ids,
 * the first SOLICIT's delay) comes from a small generator seeded by the caller.
 *
 * One deliberate departure from RFC 8415 18.2.10.1: a Reply with NoBinding for our IA to a
 * RENEW or REBIND ends the lease (LOST) and starts over with SOLICIT rather than sending a
 * REQUEST to the same server: the server has forgotten us, so the address is not ours any
 * more, and the device module removes it before any other server hands out a new one.
 */
#include <errno.h>
#include <string.h>

#include "dhcp6_int.h"

const char *const dhcp6_state_name[_DHCP6_STATE_MAX] = {
	[DHCP6_STOPPED] = "stopped",
	[DHCP6_SOLICIT] = "solicit",
	[DHCP6_REQUEST] = "request",
	[DHCP6_BOUND] = "bound",
	[DHCP6_RENEW] = "renew",
	[DHCP6_REBIND] = "rebind",
	[DHCP6_RELEASE] = "release",
	[DHCP6_DECLINE] = "decline",
};

#define NEVER INT64_MAX

static uint64_t rnd(struct dhcp6_sm *sm)
{
	/* xorshift64* */
	uint64_t x = sm->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sm->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* base * RAND, RAND uniform in [-0.1, 0.1] (RFC 8415 15); positive_only: [0, 0.1]. */
static int64_t jitter(struct dhcp6_sm *sm, int64_t base, bool positive_only)
{
	int64_t r = (int64_t)(rnd(sm) % 2001) - 1000; /* -1000 .. 1000 */

	if (positive_only && r < 0)
		r = -r;
	return base * r / 10000;
}

static int64_t lease_at(const struct dhcp6_sm *sm, uint32_t s)
{
	if (s == DHCP6_INFINITE)
		return NEVER;
	return sm->lease_mono_ms + (int64_t)s * 1000;
}

static int64_t t1_at(const struct dhcp6_sm *sm)
{
	return lease_at(sm, sm->lease.t1_s);
}

static int64_t t2_at(const struct dhcp6_sm *sm)
{
	return lease_at(sm, sm->lease.t2_s);
}

static int64_t valid_at(const struct dhcp6_sm *sm)
{
	return lease_at(sm, sm->lease.valid_s);
}

static void report(struct dhcp6_out *out, enum dhcp6_event ev, const struct dhcp6_lease *l)
{
	if (out->n_ev >= 2)
		return;
	out->ev[out->n_ev] = ev;
	out->ev_lease[out->n_ev] = *l;
	out->n_ev++;
}

static void out_begin(struct dhcp6_out *out)
{
	memset(out, 0, sizeof(*out));
	out->status = DHCP6_STATUS_NONE;
	out->timer_ms = -1;
}

static void out_end(const struct dhcp6_sm *sm, struct dhcp6_out *out)
{
	out->timer_ms = sm->state == DHCP6_STOPPED || sm->timer_ms == NEVER ? -1 : sm->timer_ms;
}

/* Drop the lease, telling the caller to remove its address. */
static void lose(struct dhcp6_sm *sm, struct dhcp6_out *out)
{
	if (!sm->have_lease)
		return;
	report(out, DHCP6_EV_LOST, &sm->lease);
	sm->have_lease = false;
}

/* Fill out->msg with the current exchange's message and count a transmission. */
static void transmit(struct dhcp6_sm *sm, int64_t now_ms, struct dhcp6_out *out)
{
	struct dhcp6_msg *m = &out->msg;
	int64_t elapsed = (now_ms - sm->start_ms) / 10;
	static const uint8_t type[_DHCP6_STATE_MAX] = {
		[DHCP6_SOLICIT] = DHCP6_MSG_SOLICIT,
		[DHCP6_REQUEST] = DHCP6_MSG_REQUEST,
		[DHCP6_RENEW] = DHCP6_MSG_RENEW,
		[DHCP6_REBIND] = DHCP6_MSG_REBIND,
		[DHCP6_RELEASE] = DHCP6_MSG_RELEASE,
		[DHCP6_DECLINE] = DHCP6_MSG_DECLINE,
	};

	memset(m, 0, sizeof(*m));
	m->type = type[sm->state];
	m->xid = sm->xid;
	memcpy(m->client_duid, sm->duid, sm->duid_len);
	m->client_duid_len = sm->duid_len;
	/* RFC 8415 18.2.5: no SERVERID in REBIND; SOLICIT knows no server yet */
	if (sm->state != DHCP6_SOLICIT && sm->state != DHCP6_REBIND) {
		memcpy(m->server_duid, sm->server_duid, sm->server_duid_len);
		m->server_duid_len = sm->server_duid_len;
	}
	m->has_ia = true;
	m->iaid = sm->iaid;
	if (sm->has_req_addr && sm->state != DHCP6_SOLICIT) {
		/* RFC 8415 18.2.2/18.2.4: lifetimes and T1/T2 of 0, the server decides */
		m->addrs[0].addr = sm->req_addr;
		m->n_addrs = 1;
	}
	m->oro_dns = sm->state != DHCP6_RELEASE && sm->state != DHCP6_DECLINE;
	/* RFC 8415 21.9: hundredths of a second since the first message, 0xffff at most */
	m->has_elapsed = true;
	m->elapsed_cs = (uint16_t)(elapsed > 0xffff ? 0xffff : elapsed < 0 ? 0 : elapsed);
	out->send = true;
	sm->count++;
}

static int64_t irt_of(enum dhcp6_state s)
{
	switch (s) {
	case DHCP6_SOLICIT: return DHCP6_SOL_TIMEOUT;
	case DHCP6_REQUEST: return DHCP6_REQ_TIMEOUT;
	case DHCP6_RENEW: return DHCP6_REN_TIMEOUT;
	case DHCP6_REBIND: return DHCP6_REB_TIMEOUT;
	case DHCP6_RELEASE: return DHCP6_REL_TIMEOUT;
	case DHCP6_DECLINE: return DHCP6_DEC_TIMEOUT;
	default: return 0;
	}
}

static int64_t mrt_of(const struct dhcp6_sm *sm)
{
	switch (sm->state) {
	case DHCP6_SOLICIT: return sm->sol_max_rt_ms;
	case DHCP6_REQUEST: return DHCP6_REQ_MAX_RT;
	case DHCP6_RENEW: return DHCP6_REN_MAX_RT;
	case DHCP6_REBIND: return DHCP6_REB_MAX_RT;
	default: return 0;
	}
}

static uint32_t mrc_of(enum dhcp6_state s)
{
	switch (s) {
	case DHCP6_REQUEST: return DHCP6_REQ_MAX_RC;
	case DHCP6_RELEASE: return DHCP6_REL_MAX_RC;
	case DHCP6_DECLINE: return DHCP6_DEC_MAX_RC;
	default: return 0;
	}
}

/* The next timer of an exchange: after RT, but never past its MRD. */
static void arm(struct dhcp6_sm *sm, int64_t now_ms)
{
	sm->timer_ms = now_ms + sm->rt_ms;
	if (sm->end_ms && sm->timer_ms > sm->end_ms)
		sm->timer_ms = sm->end_ms;
}

/*
 * Start an exchange (RFC 8415 15): a new transaction id, the first RT, its MRD, and the
 * first message now, or for the first SOLICIT after a random delay (18.2.1).
 */
static void begin(struct dhcp6_sm *sm, enum dhcp6_state s, int64_t now_ms, bool delay,
	struct dhcp6_out *out)
{
	int64_t irt = irt_of(s);

	sm->state = s;
	sm->xid = (uint32_t)(rnd(sm) & 0xffffff);
	sm->count = 0;
	sm->first_rt_over = false;
	sm->have_adv = false;
	sm->start_ms = now_ms;
	/* RFC 8415 18.2.1: the first RT of SOLICIT is strictly greater than IRT */
	sm->rt_ms = irt + jitter(sm, irt, s == DHCP6_SOLICIT);
	if (s == DHCP6_SOLICIT && sm->rt_ms <= irt)
		sm->rt_ms = irt + 1;
	switch (s) {
	case DHCP6_RENEW:
		sm->end_ms = t2_at(sm) == NEVER ? 0 : t2_at(sm);
		break;
	case DHCP6_REBIND:
		sm->end_ms = valid_at(sm) == NEVER ? 0 : valid_at(sm);
		break;
	default:
		sm->end_ms = 0;
		break;
	}
	if (delay) {
		sm->timer_ms = now_ms + (int64_t)(rnd(sm) % (DHCP6_SOL_MAX_DELAY + 1));
		return;
	}
	transmit(sm, now_ms, out);
	arm(sm, now_ms);
}

static void solicit(struct dhcp6_sm *sm, int64_t now_ms, struct dhcp6_out *out)
{
	sm->has_req_addr = false;
	sm->server_duid_len = 0;
	begin(sm, DHCP6_SOLICIT, now_ms, false, out);
}

/* RENEW what we hold (REBIND past T2): its address, to its server (RFC 8415 18.2.4/5). */
static void renew(struct dhcp6_sm *sm, int64_t now_ms, struct dhcp6_out *out)
{
	memcpy(sm->server_duid, sm->lease.server_duid, sm->lease.server_duid_len);
	sm->server_duid_len = sm->lease.server_duid_len;
	sm->req_addr = sm->lease.addr.v6;
	sm->has_req_addr = true;
	begin(sm, now_ms >= t2_at(sm) ? DHCP6_REBIND : DHCP6_RENEW, now_ms, false, out);
}

/* Bound: wait for T1 (or T2, or the end of the valid lifetime, whichever is first due). */
static void bound_timer(struct dhcp6_sm *sm)
{
	sm->state = DHCP6_BOUND;
	sm->timer_ms = t1_at(sm);
}

/*
 * RFC 8415 21.4: T1 and T2 of 0 leave the times to the client: 0.5 and 0.8 of the
 * preferred lifetime.  Both are kept within the valid lifetime, T1 within T2.
 */
static void lease_times(struct dhcp6_lease *l)
{
	if (!l->t1_s)
		l->t1_s = l->preferred_s == DHCP6_INFINITE ? DHCP6_INFINITE : l->preferred_s / 2;
	if (!l->t2_s)
		l->t2_s = l->preferred_s == DHCP6_INFINITE ? DHCP6_INFINITE
							   : (uint32_t)((uint64_t)l->preferred_s * 4 / 5);
	if (l->t2_s > l->valid_s)
		l->t2_s = l->valid_s;
	if (l->t1_s > l->t2_s)
		l->t1_s = l->t2_s;
}

void dhcp6_sm_init(struct dhcp6_sm *sm, const uint8_t mac[6], const uint8_t *duid,
	size_t duid_len, uint32_t iaid, uint32_t sol_max_rt_ms, uint64_t seed)
{
	memset(sm, 0, sizeof(*sm));
	if (duid && duid_len && duid_len <= DHCP6_DUID_MAX) {
		memcpy(sm->duid, duid, duid_len);
		sm->duid_len = duid_len;
	} else {
		sm->duid_len = dhcp6_duid_ll(mac, sm->duid);
	}
	sm->iaid = iaid ? iaid
			: (uint32_t)mac[2] << 24 | (uint32_t)mac[3] << 16 | (uint32_t)mac[4] << 8 |
				  mac[5];
	sm->sol_max_rt_ms = sol_max_rt_ms ? sol_max_rt_ms : DHCP6_SOL_MAX_RT;
	sm->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
	sm->state = DHCP6_STOPPED;
	sm->timer_ms = NEVER;
}

void dhcp6_sm_start(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s,
	const struct dhcp6_lease *kept, struct dhcp6_out *out)
{
	out_begin(out);
	if (kept && addr_is_set(&kept->addr)) {
		sm->lease = *kept;
		lease_times(&sm->lease);
		sm->lease_mono_ms = now_ms - (wall_s - kept->obtained_at) * 1000;
		sm->have_lease = true;
	}
	if (sm->have_lease && now_ms >= valid_at(sm))
		lose(sm, out);
	if (!sm->have_lease) {
		sm->has_req_addr = false;
		sm->server_duid_len = 0;
		begin(sm, DHCP6_SOLICIT, now_ms, true, out);
		goto out;
	}
	/* a restart renews what it holds: the same server, then any */
	renew(sm, now_ms, out);
out:
	out_end(sm, out);
}

/* The exchange failed (MRC or MRD reached): what RFC 8415 18.2 says comes next. */
static void exchange_failed(struct dhcp6_sm *sm, int64_t now_ms, struct dhcp6_out *out)
{
	switch (sm->state) {
	case DHCP6_REQUEST:
	case DHCP6_DECLINE:
		solicit(sm, now_ms, out);
		break;
	case DHCP6_RENEW:
		begin(sm, DHCP6_REBIND, now_ms, false, out);
		break;
	case DHCP6_REBIND:
		lose(sm, out);
		solicit(sm, now_ms, out);
		break;
	case DHCP6_RELEASE:
	default:
		sm->state = DHCP6_STOPPED;
		sm->timer_ms = NEVER;
		break;
	}
}

/* The ADVERTISE kept in SOLICIT: REQUEST its address from its server. */
static void request_advertised(struct dhcp6_sm *sm, int64_t now_ms, struct dhcp6_out *out)
{
	const struct dhcp6_msg *a = &sm->adv;

	memcpy(sm->server_duid, a->server_duid, a->server_duid_len);
	sm->server_duid_len = a->server_duid_len;
	sm->has_req_addr = false;
	for (size_t i = 0; i < a->n_addrs; i++) {
		if (a->addrs[i].valid_s && a->addrs[i].preferred_s <= a->addrs[i].valid_s) {
			sm->req_addr = a->addrs[i].addr;
			sm->has_req_addr = true;
			break;
		}
	}
	begin(sm, DHCP6_REQUEST, now_ms, false, out);
}

void dhcp6_sm_timeout(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out)
{
	int64_t mrt;
	uint32_t mrc;

	(void)wall_s;
	out_begin(out);
	if (sm->state == DHCP6_STOPPED || now_ms < sm->timer_ms)
		goto out;
	/* whatever the state, a lease past its valid lifetime is gone */
	if (sm->have_lease && now_ms >= valid_at(sm) && sm->state != DHCP6_RELEASE) {
		lose(sm, out);
		solicit(sm, now_ms, out);
		goto out;
	}
	if (sm->state == DHCP6_BOUND) {
		renew(sm, now_ms, out);
		goto out;
	}
	if (sm->count == 0) { /* the delayed first SOLICIT */
		sm->start_ms = now_ms;
		transmit(sm, now_ms, out);
		arm(sm, now_ms);
		goto out;
	}
	if (sm->state == DHCP6_SOLICIT && sm->have_adv) {
		request_advertised(sm, now_ms, out);
		goto out;
	}
	mrc = mrc_of(sm->state);
	if ((mrc && sm->count >= mrc) || (sm->end_ms && now_ms >= sm->end_ms)) {
		exchange_failed(sm, now_ms, out);
		goto out;
	}
	/* RFC 8415 15: RT = 2*RTprev + RAND*RTprev, then MRT + RAND*MRT once past MRT */
	sm->first_rt_over = true;
	sm->rt_ms = 2 * sm->rt_ms + jitter(sm, sm->rt_ms, false);
	mrt = mrt_of(sm);
	if (mrt && sm->rt_ms > mrt)
		sm->rt_ms = mrt + jitter(sm, mrt, false);
	transmit(sm, now_ms, out);
	arm(sm, now_ms);
out:
	out_end(sm, out);
}

/* An IAADDR we may use: a lifetime left, preferred within valid, no failure status. */
static bool addr_usable(const struct dhcp6_msg_addr *a)
{
	return a->valid_s && a->preferred_s <= a->valid_s &&
		(a->status == DHCP6_STATUS_NONE || a->status == DHCP6_STATUS_SUCCESS);
}

/* Does m carry an IA_NA of ours with an address we may use (RFC 8415 18.2.9/21.4)? */
static bool ia_usable(const struct dhcp6_sm *sm, const struct dhcp6_msg *m)
{
	if (!m->has_ia || m->iaid != sm->iaid)
		return false;
	if (m->t1_s && m->t2_s && m->t1_s > m->t2_s)
		return false;
	if (m->ia_status != DHCP6_STATUS_NONE && m->ia_status != DHCP6_STATUS_SUCCESS)
		return false;
	for (size_t i = 0; i < m->n_addrs; i++)
		if (addr_usable(&m->addrs[i]))
			return true;
	return false;
}

static void take_advertise(struct dhcp6_sm *sm, int64_t now_ms, const struct dhcp6_msg *m,
	const struct addr *from, struct dhcp6_out *out)
{
	uint8_t pref = m->has_preference ? m->preference : 0;

	if (m->status != DHCP6_STATUS_NONE && m->status != DHCP6_STATUS_SUCCESS)
		return;
	if (!ia_usable(sm, m))
		return; /* RFC 8415 18.2.9: NoAddrsAvail, nothing for us */
	if (m->sol_max_rt_s >= 60 && m->sol_max_rt_s <= 86400)
		sm->sol_max_rt_ms = m->sol_max_rt_s * 1000;
	if (!sm->have_adv || pref > (sm->adv.has_preference ? sm->adv.preference : 0)) {
		sm->adv = *m;
		sm->adv_from = *from;
		sm->have_adv = true;
	}
	/* RFC 8415 18.2.1: at once for preference 255 or after the first RT */
	if (pref == 255 || sm->first_rt_over)
		request_advertised(sm, now_ms, out);
}

/* The lease a REPLY gives, its address a (one of m's). */
static void lease_from(const struct dhcp6_msg *m, const struct dhcp6_msg_addr *a,
	const struct addr *from, int64_t wall_s, struct dhcp6_lease *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->addr.family = AF_INET6;
	ret->addr.v6 = a->addr;
	ret->preferred_s = a->preferred_s;
	ret->valid_s = a->valid_s;
	ret->t1_s = m->t1_s;
	ret->t2_s = m->t2_s;
	memcpy(ret->server_duid, m->server_duid, m->server_duid_len);
	ret->server_duid_len = m->server_duid_len;
	if (from)
		ret->server = *from;
	for (size_t i = 0; i < m->n_dns; i++) {
		ret->dns[i].family = AF_INET6;
		ret->dns[i].v6 = m->dns[i];
	}
	ret->n_dns = m->n_dns;
	ret->obtained_at = wall_s;
	lease_times(ret);
}

static void take_reply(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s,
	const struct dhcp6_msg *m, const struct addr *from, struct dhcp6_out *out)
{
	const struct dhcp6_msg_addr *pick = NULL;
	bool ours_gone = false;
	struct dhcp6_lease l;
	uint16_t ia_status;

	out->status = m->status != DHCP6_STATUS_NONE ? m->status : m->ia_status;
	/* UnspecFail, UseMulticast (we always multicast): retransmit as usual */
	if (m->status == DHCP6_STATUS_UNSPEC_FAIL || m->status == DHCP6_STATUS_USE_MULTICAST)
		return;
	/* RFC 8415 18.2.10.1: NotOnLink, the address is not for this link (any more) */
	if (m->status == DHCP6_STATUS_NOT_ON_LINK) {
		lose(sm, out);
		solicit(sm, now_ms, out);
		return;
	}
	if (!m->has_ia || m->iaid != sm->iaid || (m->t1_s && m->t2_s && m->t1_s > m->t2_s)) {
		/* RFC 8415 21.4: such an IA is discarded; a REQUEST refused outright looks again */
		if (sm->state == DHCP6_REQUEST && m->status != DHCP6_STATUS_NONE &&
			m->status != DHCP6_STATUS_SUCCESS)
			solicit(sm, now_ms, out);
		return;
	}
	/* dnsmasq puts NoAddrsAvail in the message, not the IA: it is the IA's all the same */
	ia_status = m->ia_status;
	if ((ia_status == DHCP6_STATUS_NONE || ia_status == DHCP6_STATUS_SUCCESS) &&
		m->status != DHCP6_STATUS_NONE)
		ia_status = m->status;
	for (size_t i = 0; i < m->n_addrs; i++) {
		const struct dhcp6_msg_addr *a = &m->addrs[i];
		bool ours = sm->have_lease && !memcmp(&a->addr, &sm->lease.addr.v6, 16);

		/* RFC 8415 18.2.10.1: a valid lifetime of 0 takes it away; RFC 8415 21.6: an
		 * IAADDR preferred beyond valid is ignored */
		if (ours && !a->valid_s)
			ours_gone = true;
		else if (addr_usable(a) && (!pick || ours))
			pick = a;
	}
	/*
	 * An address given back with a valid lifetime of 0 is gone whatever the IA's status:
	 * dnsmasq answers a REBIND after renumbering with NoAddrsAvail and the old address at 0.
	 */
	if (ours_gone || ia_status == DHCP6_STATUS_NO_BINDING)
		lose(sm, out);
	if (ia_status != DHCP6_STATUS_NONE && ia_status != DHCP6_STATUS_SUCCESS)
		pick = NULL; /* NoAddrsAvail, NoBinding: nothing offered here is ours to use */
	if (!pick) {
		/* nothing held: look again; still holding (NoAddrsAvail to a RENEW): keep it */
		if (sm->state == DHCP6_REQUEST || !sm->have_lease)
			solicit(sm, now_ms, out);
		return;
	}
	lease_from(m, pick, from, wall_s, &l);
	if (sm->have_lease && addr_eq(&l.addr, &sm->lease.addr)) {
		sm->lease = l;
		report(out, DHCP6_EV_RENEWED, &l);
	} else {
		lose(sm, out);
		sm->lease = l;
		sm->have_lease = true;
		report(out, DHCP6_EV_BOUND, &l);
	}
	sm->lease_mono_ms = now_ms;
	bound_timer(sm);
}

void dhcp6_sm_receive(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s,
	const struct dhcp6_msg *m, const struct addr *from, struct dhcp6_out *out)
{
	out_begin(out);
	/* RFC 8415 16.10/16.11: our transaction, our CLIENTID, a SERVERID */
	if (m->type != DHCP6_MSG_ADVERTISE && m->type != DHCP6_MSG_REPLY)
		goto out;
	if (m->xid != sm->xid || m->client_duid_len != sm->duid_len ||
		memcmp(m->client_duid, sm->duid, sm->duid_len) || !m->server_duid_len)
		goto out;
	if (sm->count == 0)
		goto out; /* nothing sent in this exchange yet */
	switch (sm->state) {
	case DHCP6_SOLICIT:
		if (m->type == DHCP6_MSG_ADVERTISE)
			take_advertise(sm, now_ms, m, from, out);
		break;
	case DHCP6_REQUEST:
	case DHCP6_RENEW:
	case DHCP6_REBIND:
		if (m->type == DHCP6_MSG_REPLY)
			take_reply(sm, now_ms, wall_s, m, from, out);
		break;
	case DHCP6_RELEASE:
		if (m->type == DHCP6_MSG_REPLY) {
			sm->state = DHCP6_STOPPED;
			sm->timer_ms = NEVER;
		}
		break;
	case DHCP6_DECLINE:
		if (m->type == DHCP6_MSG_REPLY)
			solicit(sm, now_ms, out);
		break;
	default:
		break;
	}
out:
	out_end(sm, out);
}

void dhcp6_sm_recheck(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out)
{
	(void)wall_s;
	out_begin(out);
	switch (sm->state) {
	case DHCP6_BOUND:
	case DHCP6_RENEW:
	case DHCP6_REBIND:
		if (now_ms >= valid_at(sm)) {
			lose(sm, out);
			solicit(sm, now_ms, out);
			break;
		}
		/*
		 * The link may have changed under us (RFC 8415 18.2.12): REBIND, which any
		 * server answers, the one that gave the lease or another that took over
		 * (a RENEW names the old server's DUID, and another server must drop it).
		 */
		sm->req_addr = sm->lease.addr.v6;
		sm->has_req_addr = true;
		begin(sm, DHCP6_REBIND, now_ms, false, out);
		break;
	case DHCP6_SOLICIT:
		solicit(sm, now_ms, out);
		break;
	default:
		break;
	}
	out_end(sm, out);
}

void dhcp6_sm_decline(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out)
{
	(void)wall_s;
	out_begin(out);
	if (!sm->have_lease || sm->state == DHCP6_STOPPED || sm->state == DHCP6_RELEASE)
		goto out;
	memcpy(sm->server_duid, sm->lease.server_duid, sm->lease.server_duid_len);
	sm->server_duid_len = sm->lease.server_duid_len;
	sm->req_addr = sm->lease.addr.v6;
	sm->has_req_addr = true;
	lose(sm, out);
	begin(sm, DHCP6_DECLINE, now_ms, false, out);
out:
	out_end(sm, out);
}

void dhcp6_sm_release(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out)
{
	(void)wall_s;
	out_begin(out);
	if (sm->have_lease && sm->state != DHCP6_STOPPED && sm->state != DHCP6_RELEASE &&
		now_ms < valid_at(sm)) {
		memcpy(sm->server_duid, sm->lease.server_duid, sm->lease.server_duid_len);
		sm->server_duid_len = sm->lease.server_duid_len;
		sm->req_addr = sm->lease.addr.v6;
		sm->has_req_addr = true;
		sm->have_lease = false;
		begin(sm, DHCP6_RELEASE, now_ms, false, out);
	} else if (sm->state != DHCP6_RELEASE) {
		sm->have_lease = false;
		sm->state = DHCP6_STOPPED;
		sm->timer_ms = NEVER;
	}
	out_end(sm, out);
}

void dhcp6_sm_stop(struct dhcp6_sm *sm, struct dhcp6_out *out)
{
	out_begin(out);
	sm->state = DHCP6_STOPPED;
	sm->timer_ms = NEVER;
	out_end(sm, out);
}
