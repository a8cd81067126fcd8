/*
 * check.h - the uplink health-check engine of egressd.
 *
 * One engine per process, on the one event loop.  It follows the uplink set
 * (ADDED/CHANGED/REMOVED events: a reload needs nothing more) and probes
 * every uplink whose `check` is not none: HTTP/HTTPS GET (libcurl multi),
 * TCP connect, ICMP echo (IPv4 and IPv6), DNS over UDP.  Each probe leaves
 * through the uplink it tests (SO_BINDTODEVICE to its interface, bound to
 * its source address, SO_MARK check_mark), so it cannot pass through
 * another uplink.  Rounds feed one state machine per uplink (check_sm.h)
 * whose verdicts become uplink_transition() calls; dataplanes learn of them
 * through their uplink subscriptions and never poll.
 *
 * The metrics and API modules read the figures with check_stats_get() and
 * may hook every probe and every round.
 */
#ifndef EGRESS_CHECK_H
#define EGRESS_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "cidr.h"
#include "uplink.h"

struct event_base;
struct check_engine;

/* How one probe ended. */
enum check_result {
	CHECK_OK,
	CHECK_TIMEOUT,	   /* no (valid) answer within the timeout */
	CHECK_REFUSED,	   /* TCP reset, ICMP port unreachable */
	CHECK_UNREACHABLE, /* no route, network or host unreachable, link down */
	CHECK_BAD_STATUS,  /* HTTP status outside check_status */
	CHECK_TLS,	   /* TLS handshake or certificate verification failed */
	CHECK_BAD_RCODE,   /* DNS answer with an rcode other than NOERROR/NXDOMAIN */
	CHECK_ERROR,	   /* anything else (socket errors, protocol errors) */
	_CHECK_RESULT_MAX,
};

extern const char *const check_result_name[_CHECK_RESULT_MAX];

/* Probes in flight per uplink: one per target, at most this many targets. */
#define CHECK_MAX_TARGETS 64

/* What the engine knows about one uplink's checks. */
struct check_stats {
	int kind;		 /* enum check_kind */
	enum uplink_state state; /* the uplink's state ... */
	uint64_t since_ms;	 /* ... and the monotonic time it entered it */
	char reason[128];	 /* why it is in that state */
	unsigned targets;	 /* probed per round */
	uint64_t rounds;	 /* rounds completed */
	uint64_t rounds_failed;
	uint64_t probes;		      /* probes completed */
	uint64_t failures[_CHECK_RESULT_MAX]; /* probes per result; [CHECK_OK] = good ones */
	uint64_t malformed;		      /* answers dropped: malformed or not ours */
	unsigned consecutive_failures;	      /* failed rounds in a row */
	unsigned consecutive_passes;	      /* good rounds in a row */
	uint32_t last_rtt_us;		      /* RTT of the last good probe; 0: none yet */
	uint32_t avg_rtt_us;		      /* average RTT of good probes over the window */
	unsigned loss_permille;		      /* probe loss over the window */
	unsigned window_rounds;		      /* rounds in the window now */
	uint64_t last_round_ms;		      /* monotonic end of the last round; 0: none */
	bool last_round_passed;
};

/* One probe, as the probe hook sees it.  Every pointer is borrowed for the call. */
struct check_probe_info {
	const struct uplink *uplink;
	int kind; /* enum check_kind */
	const struct addr *target;
	uint16_t port; /* 0 for ICMP */
	enum check_result result;
	uint32_t duration_us; /* the RTT when result is CHECK_OK */
	const char *reason;   /* "timeout", "status 503", ...; "" when OK */
	int http_status;      /* http(s): the answer's status code; 0: no answer */
};

/* One round, as the round hook sees it (after the state machine ran). */
struct check_round_info {
	const struct uplink *uplink;
	bool passed;
	unsigned ok, sent;
	const struct check_stats *stats; /* borrowed for the call */
};

typedef void (*check_probe_cb)(const struct check_probe_info *p, void *arg);
typedef void (*check_round_cb)(const struct check_round_info *r, void *arg);

/*
 * Start checking the uplinks of set (borrowed; it must outlive the engine,
 * and the engine must be freed before the set is cleared).  The engine
 * subscribes to the set and starts the first round of every checked uplink
 * on the next loop turn.  *ret is owned by the caller (check_engine_free).
 */
int check_engine_new(struct event_base *base, struct uplink_set *set, struct check_engine **ret);
/* Cancel every probe and free the engine; NULL is fine. */
void check_engine_free(struct check_engine *e);

/* Hooks: called after every probe / every round, in the order added. */
void check_engine_on_probe(struct check_engine *e, check_probe_cb cb, void *arg);
void check_engine_on_round(struct check_engine *e, check_round_cb cb, void *arg);
/* Remove every hook added with arg (a module that stops). */
void check_engine_off(struct check_engine *e, void *arg);

/*
 * A non-blocking socket that leaves through uplink u as its probes do: SO_BINDTODEVICE to
 * its interface, SO_MARK its check mark, bound to its source address when that is of
 * family.  For whatever else must go out through one uplink and no other (the DDNS
 * module's public address requests).  *ret_fd is the caller's to close; 0 or -errno.
 */
int uplink_sock_open(const struct uplink *u, int family, int type, int proto, int *ret_fd);

/* Figures of uplink `name`: 0, or -ENOENT if there is no such uplink or it is not checked. */
int check_stats_get(const struct check_engine *e, const char *name, struct check_stats *ret);

#endif
