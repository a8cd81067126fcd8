/*
 * check_sm.c - the health-check state machine of one uplink (rules in check_sm.h).
 *
 * Must not read a clock, log or do I/O: check.c feeds it rounds and applies
 * its verdicts, and tests/unit/test_check.c drives it on a fake clock.
 */
#include <stdio.h>
#include <string.h>

#include "check_sm.h"
#include "util.h"

void check_sm_init(struct check_sm *sm, unsigned window)
{
	memset(sm, 0, sizeof(*sm));
	sm->size = window ? window : 1;
	sm->win = xcalloc(sm->size, sizeof(*sm->win));
}

void check_sm_clear(struct check_sm *sm)
{
	free(sm->win);
	memset(sm, 0, sizeof(*sm));
}

static void window_reset(struct check_sm *sm)
{
	memset(sm->win, 0, sm->size * sizeof(*sm->win));
	sm->n = sm->head = 0;
	sm->win_sent = sm->win_ok = sm->win_rtt_us = 0;
}

static void window_push(struct check_sm *sm, const struct check_sm_round *r)
{
	struct check_sm_slot *s = &sm->win[sm->head];

	if (sm->n == sm->size) {
		sm->win_sent -= s->sent;
		sm->win_ok -= s->ok;
		sm->win_rtt_us -= s->rtt_us;
	} else {
		sm->n++;
	}
	s->sent = (uint16_t)MIN(r->sent, UINT16_MAX);
	s->ok = (uint16_t)MIN(MIN(r->ok, r->sent), UINT16_MAX);
	s->rtt_us = (uint32_t)MIN(r->rtt_us, UINT32_MAX);
	sm->win_sent += s->sent;
	sm->win_ok += s->ok;
	sm->win_rtt_us += s->rtt_us;
	sm->head = (sm->head + 1) % sm->size;
}

unsigned check_sm_window_rounds(const struct check_sm *sm)
{
	return sm->n;
}

uint32_t check_sm_avg_rtt_us(const struct check_sm *sm)
{
	return sm->win_ok ? (uint32_t)(sm->win_rtt_us / sm->win_ok) : 0;
}

unsigned check_sm_loss_permille(const struct check_sm *sm)
{
	if (!sm->win_sent)
		return 0;
	return (unsigned)(((sm->win_sent - sm->win_ok) * 1000 + sm->win_sent / 2) / sm->win_sent);
}

/* Loss over the window above max_loss?  Exact: lost/sent > pct/100. */
static bool loss_over(const struct check_sm *sm, const struct uplink_check *c)
{
	return c->max_loss_pct > 0 && sm->win_sent &&
	       (sm->win_sent - sm->win_ok) * 100 > (uint64_t)c->max_loss_pct * sm->win_sent;
}

static bool rtt_over(const struct check_sm *sm, const struct uplink_check *c)
{
	return c->max_rtt_ms > 0 && sm->win_ok &&
	       sm->win_rtt_us > (uint64_t)c->max_rtt_ms * 1000 * sm->win_ok;
}

/* "loss 25% over 20 rounds > 20%", "rtt 150ms over 20 rounds > 100ms", or both within. */
static void quality_reason(
	const struct check_sm *sm, const struct uplink_check *c, char *buf, size_t len)
{
	unsigned loss = (check_sm_loss_permille(sm) + 5) / 10;
	unsigned rtt = (check_sm_avg_rtt_us(sm) + 500) / 1000;
	bool lo = loss_over(sm, c), ro = rtt_over(sm, c);

	if (lo)
		snprintf(buf, len, "loss %u%% over %u rounds > %d%%", loss, sm->n, c->max_loss_pct);
	else if (ro)
		snprintf(buf, len, "rtt %ums over %u rounds > %ums", rtt, sm->n,
			(unsigned)c->max_rtt_ms);
	else if (c->max_loss_pct > 0 && c->max_rtt_ms > 0)
		snprintf(buf, len, "loss %u%% <= %d%%, rtt %ums <= %ums over %u rounds", loss,
			c->max_loss_pct, rtt, (unsigned)c->max_rtt_ms, sm->n);
	else if (c->max_loss_pct > 0)
		snprintf(
			buf, len, "loss %u%% over %u rounds <= %d%%", loss, sm->n, c->max_loss_pct);
	else
		snprintf(buf, len, "rtt %ums over %u rounds <= %ums", rtt, sm->n,
			(unsigned)c->max_rtt_ms);
}

/* Did the round pass, and if not, why (into ret->why)? */
static void round_judge(
	const struct uplink_check *c, const struct check_sm_round *r, struct check_sm_verdict *ret)
{
	const char *why = r->why && r->why[0] ? r->why : "failed";
	unsigned quorum = (unsigned)MAX(c->quorum, 1);

	quorum = MIN(quorum, MAX(r->sent, 1u));
	ret->passed = r->sent > 0 && r->ok >= quorum;
	ret->why[0] = '\0';
	if (!ret->passed && r->sent > 1)
		snprintf(ret->why, sizeof(ret->why), "%s (%u of %u answered, quorum %u)", why,
			r->ok, r->sent, quorum);
	else if (!ret->passed)
		snprintf(ret->why, sizeof(ret->why), "%s", why);
	if (r->link_down) {
		if (ret->passed)
			snprintf(ret->why, sizeof(ret->why), "%s", r->link_down);
		ret->passed = false;
	}
}

void check_sm_round(struct check_sm *sm, const struct uplink_check *c, enum uplink_state cur,
	const struct check_sm_round *r, struct check_sm_verdict *ret)
{
	const char *why;
	bool usable, passed;

	round_judge(c, r, ret);
	passed = ret->passed;
	why = ret->why;
	ret->state = cur;
	ret->reason[0] = '\0';
	window_push(sm, r);
	if (passed) {
		sm->good_run++;
		sm->bad_run = 0;
	} else {
		sm->bad_run++;
		sm->good_run = 0;
	}

	switch (cur) {
	case UPLINK_INIT:
		if (passed) {
			ret->state = UPLINK_UP;
			snprintf(ret->reason, sizeof(ret->reason), "first round passed");
		} else {
			ret->state = UPLINK_DOWN;
			snprintf(ret->reason, sizeof(ret->reason), "first round failed: %.100s",
				why);
		}
		break;
	case UPLINK_DOWN:
		if (passed && sm->good_run >= (unsigned)MAX(c->rise, 1)) {
			ret->state = UPLINK_UP;
			snprintf(ret->reason, sizeof(ret->reason), "%u of %u rounds passed",
				sm->good_run, sm->good_run);
			/* judge latency and loss afresh: the outage is not loss */
			window_reset(sm);
		}
		break;
	case UPLINK_UP:
	case UPLINK_DEGRADED:
		if (!passed) {
			if (sm->bad_run >= (unsigned)MAX(c->fall, 1)) {
				ret->state = UPLINK_DOWN;
				snprintf(ret->reason, sizeof(ret->reason),
					"%u of %u rounds failed: %.80s", sm->bad_run, sm->bad_run,
					why);
			}
			break;
		}
		if (sm->n < sm->size || (!c->max_loss_pct && !c->max_rtt_ms))
			break;
		ret->state = loss_over(sm, c) || rtt_over(sm, c) ? UPLINK_DEGRADED : UPLINK_UP;
		if (ret->state != cur)
			quality_reason(sm, c, ret->reason, sizeof(ret->reason));
		break;
	default:
		break;
	}

	usable = ret->state == UPLINK_UP || ret->state == UPLINK_DEGRADED;
	if (!passed && usable)
		ret->next_ms = c->interval_failing_ms;
	else if (passed && ret->state == UPLINK_DOWN)
		ret->next_ms = c->interval_recovering_ms;
	else
		ret->next_ms = c->interval_ms;
}

uint64_t check_sm_next_start(uint64_t start_us, uint64_t end_us, uint32_t next_ms)
{
	uint64_t next = start_us + (uint64_t)next_ms * 1000;

	return next > end_us ? next : end_us;
}

void check_sm_forced(struct check_sm *sm, enum uplink_state to)
{
	if (to == UPLINK_DOWN)
		sm->good_run = 0;
}
