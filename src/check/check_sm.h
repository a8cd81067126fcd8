/*
 * check_sm.h - the health-check state machine of one uplink, pure.
 *
 * It is fed one check round at a time (how many probes were sent, how many
 * answered, their RTTs, why the first failure failed) together with the
 * uplink's current state, and answers whether the round passed (quorum),
 * the state the uplink should be in, why, and how long after this round's
 * start the next one begins.  It keeps the
 * hysteresis counters (fall/rise) and the rolling window of rounds that the
 * latency and loss thresholds are judged over.
 *
 * The rules (egress.conf(5), [uplink] check keys):
 *  - From INIT the first round decides directly, so start-up is fast.
 *  - Up or degraded: `fall` failed rounds in a row take it down.
 *  - Down: `rise` good rounds in a row bring it up.  The window is cleared
 *    then, so an outage never counts as loss once the uplink is back.
 *  - Up: once the window is full, average RTT above max_rtt or probe loss
 *    above max_loss (each when set) make it degraded (still usable); both
 *    back within their limits make it up again.
 *  - Next round: interval_failing after a failed round while still usable,
 *    interval_recovering after a good round while down, interval otherwise.
 *
 * Must not read a clock, allocate after init, log or touch anything outside
 * the struct: the engine (check.c) does the I/O and applies the verdict.
 */
#ifndef EGRESS_CHECK_SM_H
#define EGRESS_CHECK_SM_H

#include <stdbool.h>
#include <stdint.h>

#include "uplink.h"

/* One round in the rolling window. */
struct check_sm_slot {
	uint16_t sent;
	uint16_t ok;
	uint32_t rtt_us; /* sum over the answered probes, saturating */
};

struct check_sm {
	unsigned good_run; /* good rounds in a row */
	unsigned bad_run;  /* failed rounds in a row */
	/* rolling window: a ring of `size` slots, `n` of them filled, next write at `head` */
	struct check_sm_slot *win; /* owned */
	unsigned size, n, head;
	uint64_t win_sent, win_ok, win_rtt_us; /* sums over the filled slots */
};

/* What happened in one round. */
struct check_sm_round {
	unsigned sent;	       /* probes sent (targets) */
	unsigned ok;	       /* probes that answered in time and correctly */
	uint64_t rtt_us;       /* sum of the answered probes' RTTs */
	const char *why;       /* the first failed probe's reason, e.g. "timeout"; borrowed */
	const char *link_down; /* non-NULL: the uplink's link is down, so the round cannot pass
				* whatever answered; this says so ("link isp1 is down") */
};

/* What the machine decided. */
struct check_sm_verdict {
	bool passed;   /* at least check_quorum probes answered (and the link is up) */
	char why[192]; /* a failed round: why, e.g. "timeout (1 of 3 answered, quorum 2)" */
	enum uplink_state state; /* equal to the current state: no transition */
	char reason[128];	 /* why, when state differs from the current one */
	uint32_t next_ms;	 /* from this round's start to the next round's */
};

/* window: rounds in the rolling window (at least 1). */
void check_sm_init(struct check_sm *sm, unsigned window);
void check_sm_clear(struct check_sm *sm);

/*
 * Feed one round.  cur is the uplink's state now; c its check settings
 * (borrowed).  Fills *ret; the caller applies ret->state.
 */
void check_sm_round(struct check_sm *sm, const struct uplink_check *c, enum uplink_state cur,
	const struct check_sm_round *r, struct check_sm_verdict *ret);

/*
 * Someone else changed the uplink's state (the link went down): a down
 * uplink starts counting its rise rounds from zero.
 */
void check_sm_forced(struct check_sm *sm, enum uplink_state to);

/*
 * When the next round starts: next_ms after this round's start (the
 * verdict's next_ms), but never before this round ended.  Times in us.
 */
uint64_t check_sm_next_start(uint64_t start_us, uint64_t end_us, uint32_t next_ms);

/* Window figures: rounds in it, average RTT of answered probes (0 if none), loss in per mille. */
unsigned check_sm_window_rounds(const struct check_sm *sm);
uint32_t check_sm_avg_rtt_us(const struct check_sm *sm);
unsigned check_sm_loss_permille(const struct check_sm *sm);

#endif
