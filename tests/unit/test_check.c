/*
 * test_check.c - unit tests for the health-check state machine (src/check/check_sm.c) and
 * the DNS codec of the DNS check (src/check/check_dns_pkt.c).
 *
 * The state machine is driven on a fake clock: a simulated target that is alive or dead
 * over time, rounds scheduled with the engine's own rule (check_sm_next_start), probes that
 * answer at once or time out.  DNS answers are canned byte arrays written by hand from
 * RFC 1035 section 4.  Pure computation: no sockets, no kernel, no real clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check/check_dns_pkt.h"
#include "check/check_sm.h"
#include "uplink.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

/* The configuration defaults of egress.conf(5) (conf_keys.c). */
static struct uplink_check defaults(void)
{
	return (struct uplink_check){
		.kind = CHECK_ICMP,
		.quorum = 1,
		.interval_ms = 1000,
		.interval_failing_ms = 500,
		.interval_recovering_ms = 500,
		.timeout_ms = 500,
		.fall = 3,
		.rise = 3,
		.window = 20,
	};
}

struct sim {
	struct check_sm sm;
	struct uplink_check c;
	enum uplink_state state;
	struct check_sm_verdict v;
	unsigned transitions;
};

static void sim_init(struct sim *s, const struct uplink_check *c, enum uplink_state state)
{
	memset(s, 0, sizeof(*s));
	s->c = *c;
	s->state = state;
	check_sm_init(&s->sm, (unsigned)c->window);
}

static void sim_clear(struct sim *s)
{
	check_sm_clear(&s->sm);
}

/* One round: sent probes, ok answered with rtt_ms each. Returns the new state. */
static enum uplink_state feed(
	struct sim *s, unsigned sent, unsigned ok, unsigned rtt_ms, const char *why)
{
	struct check_sm_round r = {
		.sent = sent, .ok = ok, .rtt_us = (uint64_t)ok * rtt_ms * 1000, .why = why};

	check_sm_round(&s->sm, &s->c, s->state, &r, &s->v);
	if (s->v.state != s->state) {
		assert_true(s->v.reason[0] != '\0');
		s->transitions++;
	}
	s->state = s->v.state;
	return s->state;
}

static enum uplink_state pass(struct sim *s)
{
	return feed(s, 1, 1, 1, NULL);
}

static enum uplink_state lose(struct sim *s)
{
	return feed(s, 1, 0, 0, "timeout");
}

/* ---------------------------------------------------------------- state machine */

static void test_init_first_round_decides(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	sim_init(&s, &c, UPLINK_INIT);
	assert_int_equal(pass(&s), UPLINK_UP);
	assert_string_equal(s.v.reason, "first round passed");
	assert_int_equal(s.v.next_ms, 1000);
	sim_clear(&s);

	sim_init(&s, &c, UPLINK_INIT);
	assert_int_equal(lose(&s), UPLINK_DOWN);
	assert_string_equal(s.v.reason, "first round failed: timeout");
	/* down and failing: the normal interval, not the failing one */
	assert_int_equal(s.v.next_ms, 1000);
	sim_clear(&s);
}

static void test_fall(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	sim_init(&s, &c, UPLINK_UP);
	assert_int_equal(lose(&s), UPLINK_UP);
	assert_int_equal(s.v.next_ms, 500); /* failing while up */
	assert_false(s.v.passed);
	assert_string_equal(s.v.why, "timeout");
	assert_int_equal(lose(&s), UPLINK_UP);
	assert_int_equal(s.v.next_ms, 500);
	assert_int_equal(lose(&s), UPLINK_DOWN);
	assert_string_equal(s.v.reason, "3 of 3 rounds failed: timeout");
	assert_int_equal(s.v.next_ms, 1000);
	assert_int_equal(s.transitions, 1);
	/* staying down is no transition */
	assert_int_equal(lose(&s), UPLINK_DOWN);
	assert_int_equal(s.transitions, 1);
	sim_clear(&s);

	/* fall 1: the first failed round takes it down */
	c.fall = 1;
	sim_init(&s, &c, UPLINK_UP);
	assert_int_equal(lose(&s), UPLINK_DOWN);
	assert_string_equal(s.v.reason, "1 of 1 rounds failed: timeout");
	sim_clear(&s);
}

static void test_rise(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	c.rise = 4;
	sim_init(&s, &c, UPLINK_DOWN);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pass(&s), UPLINK_DOWN);
		assert_int_equal(s.v.next_ms, 500); /* recovering */
	}
	/* a failure in between starts the count again */
	assert_int_equal(lose(&s), UPLINK_DOWN);
	assert_int_equal(s.v.next_ms, 1000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pass(&s), UPLINK_DOWN);
	assert_int_equal(pass(&s), UPLINK_UP);
	assert_string_equal(s.v.reason, "4 of 4 rounds passed");
	assert_int_equal(s.v.next_ms, 1000);
	assert_int_equal(s.transitions, 1);
	sim_clear(&s);
}

static void test_single_lost_probe_no_transition(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	sim_init(&s, &c, UPLINK_INIT);
	assert_int_equal(pass(&s), UPLINK_UP);
	for (int i = 0; i < 100; i++) {
		/* every fifth round loses its probe, or two in a row now and then */
		if (i % 5 == 0 || i % 17 == 0)
			assert_int_equal(lose(&s), UPLINK_UP);
		else
			assert_int_equal(pass(&s), UPLINK_UP);
	}
	assert_int_equal(s.transitions, 1);
	/* and the same while down: one good round does not bring it up */
	for (int i = 0; i < 3; i++)
		lose(&s);
	assert_int_equal(s.state, UPLINK_DOWN);
	for (int i = 0; i < 20; i++) {
		if (i % 2)
			assert_int_equal(pass(&s), UPLINK_DOWN);
		else
			assert_int_equal(lose(&s), UPLINK_DOWN);
	}
	sim_clear(&s);
}

static void test_quorum(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	c.quorum = 2;
	sim_init(&s, &c, UPLINK_INIT);
	/* 2 of 3 answered: passes */
	assert_int_equal(feed(&s, 3, 2, 5, "timeout"), UPLINK_UP);
	assert_true(s.v.passed);
	/* 1 of 3: fails, and says how short it fell */
	assert_int_equal(feed(&s, 3, 1, 5, "Connection refused"), UPLINK_UP);
	assert_false(s.v.passed);
	assert_string_equal(s.v.why, "Connection refused (1 of 3 answered, quorum 2)");
	feed(&s, 3, 1, 5, "timeout");
	assert_int_equal(feed(&s, 3, 0, 0, "timeout"), UPLINK_DOWN);
	assert_string_equal(
		s.v.reason, "3 of 3 rounds failed: timeout (0 of 3 answered, quorum 2)");
	sim_clear(&s);

	/* a quorum larger than the targets means all of them */
	c.quorum = 5;
	sim_init(&s, &c, UPLINK_INIT);
	assert_int_equal(feed(&s, 2, 2, 1, NULL), UPLINK_UP);
	sim_clear(&s);
	sim_init(&s, &c, UPLINK_INIT);
	assert_int_equal(feed(&s, 2, 1, 1, "timeout"), UPLINK_DOWN);
	sim_clear(&s);
}

static void test_link_down_round_fails(void **state)
{
	struct uplink_check c = defaults();
	struct check_sm_round r = {
		.sent = 1, .ok = 1, .rtt_us = 100, .link_down = "link isp1 is down"};
	struct sim s;

	(void)state;
	sim_init(&s, &c, UPLINK_DOWN);
	for (int i = 0; i < 5; i++) {
		check_sm_round(&s.sm, &s.c, s.state, &r, &s.v);
		assert_false(s.v.passed);
		assert_string_equal(s.v.why, "link isp1 is down");
		assert_int_equal(s.v.state, UPLINK_DOWN);
	}
	/* from INIT too: a down link never makes it up */
	check_sm_round(&s.sm, &s.c, UPLINK_INIT, &r, &s.v);
	assert_int_equal(s.v.state, UPLINK_DOWN);
	assert_string_equal(s.v.reason, "first round failed: link isp1 is down");
	sim_clear(&s);
}

static void test_forced_down_needs_rise(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	sim_init(&s, &c, UPLINK_DOWN);
	pass(&s);
	pass(&s);
	/* the link goes down (link.c) before the third good round */
	check_sm_forced(&s.sm, UPLINK_DOWN);
	assert_int_equal(pass(&s), UPLINK_DOWN);
	assert_int_equal(pass(&s), UPLINK_DOWN);
	assert_int_equal(pass(&s), UPLINK_UP);
	sim_clear(&s);

	/* an uplink that was up and is forced down also needs rise rounds */
	sim_init(&s, &c, UPLINK_UP);
	pass(&s);
	check_sm_forced(&s.sm, UPLINK_DOWN);
	s.state = UPLINK_DOWN;
	assert_int_equal(pass(&s), UPLINK_DOWN);
	assert_int_equal(pass(&s), UPLINK_DOWN);
	assert_int_equal(pass(&s), UPLINK_UP);
	sim_clear(&s);
}

static void test_degraded_by_loss(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	c.window = 4;
	c.max_loss_pct = 20;
	c.quorum = 1;
	sim_init(&s, &c, UPLINK_INIT);
	/* 4 targets, 1 lost per round: 25% loss, but the window must fill first */
	assert_int_equal(feed(&s, 4, 3, 10, "timeout"), UPLINK_UP);
	assert_int_equal(feed(&s, 4, 3, 10, "timeout"), UPLINK_UP);
	assert_int_equal(feed(&s, 4, 3, 10, "timeout"), UPLINK_UP);
	assert_int_equal(check_sm_loss_permille(&s.sm), 250);
	assert_int_equal(feed(&s, 4, 3, 10, "timeout"), UPLINK_DEGRADED);
	assert_string_equal(s.v.reason, "loss 25% over 4 rounds > 20%");
	/* degraded is usable: a failed round uses the failing interval */
	assert_int_equal(feed(&s, 4, 0, 0, "timeout"), UPLINK_DEGRADED);
	assert_int_equal(s.v.next_ms, 500);
	/* good rounds push the lossy ones out: 4 of 16 lost (25%) is still too much */
	feed(&s, 4, 4, 10, NULL);
	feed(&s, 4, 4, 10, NULL);
	feed(&s, 4, 4, 10, NULL);
	assert_int_equal(s.state, UPLINK_DEGRADED);
	assert_int_equal(check_sm_loss_permille(&s.sm), 250);
	assert_int_equal(feed(&s, 4, 4, 10, NULL), UPLINK_UP);
	assert_string_equal(s.v.reason, "loss 0% over 4 rounds <= 20%");
	assert_int_equal(s.transitions, 3);
	sim_clear(&s);

	/* exactly at the limit stays up */
	sim_init(&s, &c, UPLINK_UP);
	for (int i = 0; i < 4; i++)
		assert_int_equal(feed(&s, 5, 4, 10, "timeout"), UPLINK_UP);
	sim_clear(&s);
}

static void test_degraded_by_rtt(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	c.window = 3;
	c.max_rtt_ms = 100;
	sim_init(&s, &c, UPLINK_UP);
	assert_int_equal(feed(&s, 1, 1, 150, NULL), UPLINK_UP);
	assert_int_equal(feed(&s, 1, 1, 150, NULL), UPLINK_UP);
	assert_int_equal(feed(&s, 1, 1, 150, NULL), UPLINK_DEGRADED);
	assert_string_equal(s.v.reason, "rtt 150ms over 3 rounds > 100ms");
	assert_int_equal(check_sm_avg_rtt_us(&s.sm), 150000);
	/* average 150, 150, 10 = 103: still over */
	assert_int_equal(feed(&s, 1, 1, 10, NULL), UPLINK_DEGRADED);
	/* 150, 10, 10 = 56: back */
	assert_int_equal(feed(&s, 1, 1, 10, NULL), UPLINK_UP);
	assert_string_equal(s.v.reason, "rtt 57ms over 3 rounds <= 100ms");
	sim_clear(&s);

	/* RTT and loss both set: both must be within */
	c.max_loss_pct = 10;
	sim_init(&s, &c, UPLINK_UP);
	for (int i = 0; i < 3; i++)
		feed(&s, 2, 2, 20, NULL);
	assert_int_equal(s.state, UPLINK_UP);
	assert_int_equal(feed(&s, 2, 1, 20, "timeout"), UPLINK_DEGRADED); /* 1 of 6 lost */
	assert_string_equal(s.v.reason, "loss 17% over 3 rounds > 10%");
	feed(&s, 2, 2, 20, NULL);
	assert_int_equal(feed(&s, 2, 2, 20, NULL), UPLINK_DEGRADED);
	assert_int_equal(feed(&s, 2, 2, 20, NULL), UPLINK_UP);
	assert_string_equal(s.v.reason, "loss 0% <= 10%, rtt 20ms <= 100ms over 3 rounds");
	sim_clear(&s);
}

static void test_outage_is_not_loss(void **state)
{
	struct uplink_check c = defaults();
	struct sim s;

	(void)state;
	c.window = 5;
	c.max_loss_pct = 10;
	sim_init(&s, &c, UPLINK_UP);
	for (int i = 0; i < 5; i++)
		pass(&s);
	for (int i = 0; i < 3; i++)
		lose(&s);
	assert_int_equal(s.state, UPLINK_DOWN);
	for (int i = 0; i < 3; i++)
		pass(&s);
	assert_int_equal(s.state, UPLINK_UP);
	/* the window starts afresh: the three failed rounds do not make it degraded */
	assert_int_equal(check_sm_window_rounds(&s.sm), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pass(&s), UPLINK_UP);
	sim_clear(&s);
}

/*
 * The fake clock: a target that dies at dead_ms (and never comes back, or comes back at
 * back_ms).  Rounds run by the engine's rule; a probe started while the target is alive
 * answers after 1 ms, otherwise it times out.  Returns the time the uplink went to `want`.
 */
static uint64_t run_clock(const struct uplink_check *c, uint64_t dead_ms, uint64_t back_ms,
	enum uplink_state want, uint64_t limit_ms)
{
	struct sim s;
	uint64_t start = 0, at = UINT64_MAX;

	sim_init(&s, c, UPLINK_INIT);
	while (start / 1000 < limit_ms) {
		uint64_t t = start / 1000;
		bool alive = t < dead_ms || t >= back_ms;
		uint64_t end = start + (alive ? 1000 : (uint64_t)c->timeout_ms * 1000);
		enum uplink_state before = s.state;

		if (alive)
			pass(&s);
		else
			lose(&s);
		if (s.state == want && before != want && t >= dead_ms) {
			at = end / 1000;
			break;
		}
		start = check_sm_next_start(start, end, s.v.next_ms);
	}
	sim_clear(&s);
	return at;
}

static void test_detection_time_of_defaults(void **state)
{
	struct uplink_check c = defaults();
	uint64_t worst = 0, best = UINT64_MAX;

	(void)state;
	/* die at every 10 ms across a few intervals after start-up */
	for (uint64_t dead = 3000; dead < 6000; dead += 10) {
		uint64_t at = run_clock(&c, dead, UINT64_MAX, UPLINK_DOWN, 20000);

		assert_true(at != UINT64_MAX);
		worst = MAX(worst, at - dead);
		best = MIN(best, at - dead);
	}
	print_message("defaults: a dead uplink is down after %llu..%llu ms\n",
		(unsigned long long)best, (unsigned long long)worst);
	assert_true(worst <= 2500);
	/* and not faster than fall rounds can take: 2 x failing + timeout */
	assert_true(best >= 1500);

	/* recovery: rise rounds at the recovering interval after the first good one */
	uint64_t up = run_clock(&c, 3000, 8000, UPLINK_UP, 30000);
	assert_true(up != UINT64_MAX);
	assert_true(up - 8000 <= 1000 + 2 * 500 + 1);
	assert_true(up - 8000 >= 2 * 500);
}

static void test_detection_never_on_one_loss(void **state)
{
	struct uplink_check c = defaults();

	(void)state;
	/* dead for one probe's worth only (under one interval): no transition at all */
	for (uint64_t dead = 3000; dead < 4000; dead += 50) {
		struct sim s;
		uint64_t start = 0;

		sim_init(&s, &c, UPLINK_INIT);
		while (start / 1000 < 15000) {
			uint64_t t = start / 1000;
			bool alive = t < dead || t >= dead + 400;
			uint64_t end = start + (alive ? 1000 : (uint64_t)c.timeout_ms * 1000);

			if (alive)
				pass(&s);
			else
				lose(&s);
			start = check_sm_next_start(start, end, s.v.next_ms);
		}
		assert_int_equal(s.transitions, 1); /* init -> up only */
		sim_clear(&s);
	}
}

static void test_next_start(void **state)
{
	(void)state;
	assert_int_equal(check_sm_next_start(1000000, 1500000, 1000), 2000000);
	/* a round longer than the interval: the next starts when it ended */
	assert_int_equal(check_sm_next_start(1000000, 1500000, 100), 1500000);
}

/* ---------------------------------------------------------------- DNS codec */

/* probe.test A IN, ID 0xbeef, RD */
static const uint8_t q_probe[] = {
	0xbe,
	0xef,
	0x01,
	0x00,
	0x00,
	0x01,
	0x00,
	0x00,
	0x00,
	0x00,
	0x00,
	0x00,
	0x05,
	'p',
	'r',
	'o',
	'b',
	'e',
	0x04,
	't',
	'e',
	's',
	't',
	0x00,
	0x00,
	0x01,
	0x00,
	0x01,
};

/* its answer: NOERROR, one A record whose name is a pointer to the question (0xc00c) */
static const uint8_t a_probe[] = {
	0xbe,
	0xef,
	0x81,
	0x80,
	0x00,
	0x01,
	0x00,
	0x01,
	0x00,
	0x00,
	0x00,
	0x00,
	0x05,
	'p',
	'r',
	'o',
	'b',
	'e',
	0x04,
	't',
	'e',
	's',
	't',
	0x00,
	0x00,
	0x01,
	0x00,
	0x01,
	0xc0,
	0x0c,
	0x00,
	0x01,
	0x00,
	0x01,
	0x00,
	0x00,
	0x00,
	0x3c,
	0x00,
	0x04,
	192,
	0,
	2,
	9,
};

static void test_dns_query_build(void **state)
{
	uint8_t buf[DNS_QUERY_MAX];
	size_t len;

	(void)state;
	assert_int_equal(
		dns_query_build(buf, sizeof(buf), 0xbeef, "probe.test", DNS_TYPE_A, &len), 0);
	assert_int_equal(len, sizeof(q_probe));
	assert_memory_equal(buf, q_probe, len);
	/* a trailing dot is the same name */
	assert_int_equal(
		dns_query_build(buf, sizeof(buf), 0xbeef, "probe.test.", DNS_TYPE_A, &len), 0);
	assert_memory_equal(buf, q_probe, len);

	/* the root: NS, a single zero byte for the name */
	static const uint8_t q_root[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
	assert_int_equal(dns_check_qtype("."), DNS_TYPE_NS);
	assert_int_equal(dns_check_qtype("example.org"), DNS_TYPE_A);
	assert_int_equal(
		dns_query_build(buf, sizeof(buf), 0x1234, ".", dns_check_qtype("."), &len), 0);
	assert_int_equal(len, sizeof(q_root));
	assert_memory_equal(buf, q_root, len);

	/* bad names */
	char long_label[80], long_name[300];
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_int_equal(dns_query_build(buf, sizeof(buf), 1, long_label, 1, &len), -EINVAL);
	long_label[63] = '\0';
	assert_int_equal(dns_query_build(buf, sizeof(buf), 1, long_label, 1, &len), 0);
	assert_int_equal(dns_query_build(buf, sizeof(buf), 1, "a..b", 1, &len), -EINVAL);
	assert_int_equal(dns_query_build(buf, sizeof(buf), 1, ".a", 1, &len), -EINVAL);
	/* 254 bytes of wire name is the longest: 63+1 x 3 + 61+1 + 1 = 255 */
	snprintf(long_name, sizeof(long_name), "%.63s.%.63s.%.63s.%.61s", long_label, long_label,
		long_label, long_label);
	assert_int_equal(dns_query_build(buf, sizeof(buf), 1, long_name, 1, &len), 0);
	assert_int_equal(len, DNS_HEADER_LEN + 255 + 4);
	snprintf(long_name, sizeof(long_name), "%.63s.%.63s.%.63s.%.62s", long_label, long_label,
		long_label, long_label);
	assert_int_equal(dns_query_build(buf, sizeof(buf), 1, long_name, 1, &len), -EINVAL);
	/* too small a buffer */
	assert_int_equal(dns_query_build(buf, 20, 1, "probe.test", 1, &len), -ENOBUFS);
}

static int check_answer(const uint8_t *a, size_t len, unsigned *rcode)
{
	return dns_answer_check(a, len, q_probe, sizeof(q_probe), rcode);
}

static void test_dns_answer_valid(void **state)
{
	uint8_t a[sizeof(a_probe)];
	unsigned rcode = 99;

	(void)state;
	assert_int_equal(check_answer(a_probe, sizeof(a_probe), &rcode), 0);
	assert_int_equal(rcode, DNS_RCODE_NOERROR);

	/* NXDOMAIN, no records */
	static const uint8_t nx[] = {0xbe, 0xef, 0x81, 0x83, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x05, 'p', 'r', 'o', 'b', 'e', 0x04, 't', 'e', 's', 't', 0x00, 0x00,
		0x01, 0x00, 0x01};
	assert_int_equal(check_answer(nx, sizeof(nx), &rcode), 0);
	assert_int_equal(rcode, DNS_RCODE_NXDOMAIN);
	assert_string_equal(dns_rcode_name(rcode), "NXDOMAIN");
	assert_string_equal(dns_rcode_name(DNS_RCODE_REFUSED), "REFUSED");
	assert_string_equal(dns_rcode_name(13), "RCODE13");

	/* SERVFAIL is a valid answer too: the caller decides it means down */
	memcpy(a, nx, sizeof(nx));
	a[3] = 0x82;
	assert_int_equal(check_answer(a, sizeof(nx), &rcode), 0);
	assert_int_equal(rcode, DNS_RCODE_SERVFAIL);

	/* the question's case may differ (0x20 mixing by a server) */
	memcpy(a, a_probe, sizeof(a));
	a[13] = 'P';
	a[20] = 'E';
	assert_int_equal(check_answer(a, sizeof(a), &rcode), 0);

	/* TC: fewer records than counted is fine */
	memcpy(a, a_probe, sizeof(a));
	a[2] |= 0x02;
	assert_int_equal(check_answer(a, 28, &rcode), 0);
}

static void test_dns_answer_not_ours(void **state)
{
	uint8_t a[sizeof(a_probe)];
	unsigned rcode;

	(void)state;
	/* wrong ID */
	memcpy(a, a_probe, sizeof(a));
	a[1] = 0xee;
	assert_int_equal(check_answer(a, sizeof(a), &rcode), -ENOMSG);
	/* a query, not a response */
	memcpy(a, a_probe, sizeof(a));
	a[2] &= 0x7f;
	assert_int_equal(check_answer(a, sizeof(a), &rcode), -ENOMSG);
	/* another opcode */
	memcpy(a, a_probe, sizeof(a));
	a[2] |= 0x08;
	assert_int_equal(check_answer(a, sizeof(a), &rcode), -ENOMSG);
	/* wrong question: another name of the same length */
	memcpy(a, a_probe, sizeof(a));
	a[14] = 'x';
	assert_int_equal(check_answer(a, sizeof(a), &rcode), -ENOMSG);
	/* wrong question type */
	memcpy(a, a_probe, sizeof(a));
	a[25] = 0x1c;
	assert_int_equal(check_answer(a, sizeof(a), &rcode), -ENOMSG);
	/* no question */
	memcpy(a, a_probe, sizeof(a));
	a[5] = 0;
	assert_int_equal(check_answer(a, sizeof(a), &rcode), -ENOMSG);
}

static void test_dns_answer_malformed(void **state)
{
	uint8_t a[sizeof(a_probe) + 16];
	unsigned rcode;

	(void)state;
	/* every truncation of a valid answer is refused as malformed */
	for (size_t n = 0; n < sizeof(a_probe); n++)
		assert_int_equal(check_answer(a_probe, n, &rcode), -EBADMSG);
	/* a record counted but absent */
	memcpy(a, a_probe, sizeof(a_probe));
	a[7] = 2;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	/* rdlength past the end */
	memcpy(a, a_probe, sizeof(a_probe));
	a[39] = 5;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	/* compression pointer forwards (to itself) */
	memcpy(a, a_probe, sizeof(a_probe));
	a[28] = 0xc0;
	a[29] = 28;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	/* pointer past the end */
	a[29] = 0xff;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	/* pointer into the header */
	a[29] = 2;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	/* pointer cut in half at the end */
	assert_int_equal(check_answer(a, 29, &rcode), -EBADMSG);
	/* a pointer to a pointer to the question works */
	memcpy(a, a_probe, sizeof(a_probe));
	static const uint8_t second[] = {0xc0, 0x1c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c,
		0x00, 0x04, 192, 0, 2, 10};
	memcpy(a + sizeof(a_probe), second, sizeof(second));
	a[7] = 2;
	assert_int_equal(check_answer(a, sizeof(a_probe) + sizeof(second), &rcode), 0);
	/* reserved label types 0x40 and 0x80 */
	memcpy(a, a_probe, sizeof(a_probe));
	a[28] = 0x40;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	a[28] = 0x80;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
	/* a question name with a compression pointer to itself */
	memcpy(a, a_probe, sizeof(a_probe));
	a[12] = 0xc0;
	a[13] = 12;
	assert_int_equal(check_answer(a, sizeof(a_probe), &rcode), -EBADMSG);
}

/*
 * A name longer than 255 bytes built from backward pointers is refused.  The first answer
 * record (owner: the root) carries, as its rdata, a chain of 30 labels "aaaaaaaaa" each
 * followed by a pointer to the previous one (the first to the question); the second
 * record's owner points at the last link: 30 x 10 bytes plus "probe.test".
 */
static void test_dns_answer_long_name(void **state)
{
	static const uint8_t rr_tail[] = {0x00, 0x01, 0x00, 0x01, 0, 0, 0, 1};
	uint8_t m[DNS_UDP_MAX];
	size_t off, prev = DNS_HEADER_LEN, rdlen_at;
	unsigned rcode;

	(void)state;
	memcpy(m, a_probe, 28); /* header and question */
	m[7] = 2;		/* two answers */
	off = 28;
	m[off++] = 0; /* record 1: the root */
	memcpy(m + off, rr_tail, sizeof(rr_tail));
	off += sizeof(rr_tail);
	rdlen_at = off;
	off += 2;
	for (int i = 0; i < 30; i++) {
		size_t here = off;
		m[off++] = 9;
		memset(m + off, 'a', 9);
		off += 9;
		m[off++] = (uint8_t)(0xc0 | prev >> 8);
		m[off++] = (uint8_t)prev;
		prev = here;
	}
	m[rdlen_at] = (uint8_t)((off - rdlen_at - 2) >> 8);
	m[rdlen_at + 1] = (uint8_t)(off - rdlen_at - 2);
	size_t rec2 = off;
	m[off++] = (uint8_t)(0xc0 | prev >> 8); /* record 2: the last link */
	m[off++] = (uint8_t)prev;
	memcpy(m + off, rr_tail, sizeof(rr_tail));
	off += sizeof(rr_tail);
	m[off++] = 0;
	m[off++] = 0;
	assert_true(off <= sizeof(m));
	assert_int_equal(check_answer(m, off, &rcode), -EBADMSG);

	/* the same with record 2 pointing at the 20th link (20 x 10 + 12 = 212 bytes): fine */
	size_t link20 = 28 + 1 + sizeof(rr_tail) + 2 + 19 * 12;
	m[rec2] = (uint8_t)(0xc0 | link20 >> 8);
	m[rec2 + 1] = (uint8_t)link20;
	assert_int_equal(check_answer(m, off, &rcode), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_first_round_decides),
		cmocka_unit_test(test_fall),
		cmocka_unit_test(test_rise),
		cmocka_unit_test(test_single_lost_probe_no_transition),
		cmocka_unit_test(test_quorum),
		cmocka_unit_test(test_link_down_round_fails),
		cmocka_unit_test(test_forced_down_needs_rise),
		cmocka_unit_test(test_degraded_by_loss),
		cmocka_unit_test(test_degraded_by_rtt),
		cmocka_unit_test(test_outage_is_not_loss),
		cmocka_unit_test(test_detection_time_of_defaults),
		cmocka_unit_test(test_detection_never_on_one_loss),
		cmocka_unit_test(test_next_start),
		cmocka_unit_test(test_dns_query_build),
		cmocka_unit_test(test_dns_answer_valid),
		cmocka_unit_test(test_dns_answer_not_ours),
		cmocka_unit_test(test_dns_answer_malformed),
		cmocka_unit_test(test_dns_answer_long_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
