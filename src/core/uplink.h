/*
 * uplink.h - the uplink model that every module of egressd shares.
 *
 * An uplink is a path out: an interface and/or a next-hop gateway and/or a
 * local source address, with a weight and a state.  The set of uplinks
 * follows the configuration (uplink_set_sync) and the kernel's link state
 * (uplink_set_link); every change is pushed to subscribers, so dataplanes
 * never poll.
 */
#ifndef EGRESS_UPLINK_H
#define EGRESS_UPLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "cidr.h"
#include "conf.h"

struct conf;

enum uplink_state {
	UPLINK_INIT, /* not yet known */
	UPLINK_DOWN,
	UPLINK_UP,
	UPLINK_DEGRADED, /* up, but over its latency or loss threshold: still usable */
	_UPLINK_STATE_MAX,
};

extern const char *const uplink_state_name[_UPLINK_STATE_MAX];

enum uplink_event {
	UPLINK_ADDED,
	UPLINK_REMOVED, /* the uplink is freed after the callbacks return */
	UPLINK_CHANGED, /* its configuration changed */
	UPLINK_STATE,	/* its state changed */
	_UPLINK_EVENT_MAX,
};

extern const char *const uplink_event_name[_UPLINK_EVENT_MAX];

enum check_kind {
	CHECK_NONE, /* the link state alone decides */
	CHECK_HTTP,
	CHECK_HTTPS,
	CHECK_TCP,
	CHECK_ICMP,
	CHECK_DNS,
	_CHECK_KIND_MAX,
};

extern const char *const check_kind_name[_CHECK_KIND_MAX];

/* How an uplink is health-checked ([uplink] check* keys; egress.conf(5)). */
struct uplink_check {
	int kind;		    /* enum check_kind */
	struct addr_list targets;   /* empty: the uplink's gateway */
	int port;		    /* 0: the kind's default (80, 443, 53; TCP needs one) */
	char *path;		    /* HTTP(S) path */
	char *host;		    /* HTTP(S) Host header; NULL: the target */
	struct range_list status;   /* HTTP(S) status codes that mean up */
	bool tls_verify;	    /* HTTPS: verify the certificate */
	char *dns_name;		    /* DNS: name to query (type A) */
	int quorum;		    /* targets that must answer for a round to pass */
	uint32_t interval_ms;	    /* between rounds while up (or down and not recovering) */
	uint32_t interval_failing_ms;	 /* between rounds after a failed round while up */
	uint32_t interval_recovering_ms; /* between rounds after a good round while down */
	uint32_t timeout_ms;	    /* per probe */
	int fall;		    /* failed rounds in a row: down */
	int rise;		    /* good rounds in a row: up */
	uint32_t max_rtt_ms;	    /* average RTT over the window above this: degraded; 0: off */
	int max_loss_pct;	    /* probe loss over the window above this: degraded; 0: off */
	int window;		    /* rounds in the rolling RTT/loss window */
	uint32_t mark;		    /* SO_MARK of probes; 0: none */
};

/* Deep copy (dst must be cleared or zeroed), free, compare. */
void uplink_check_copy(struct uplink_check *dst, const struct uplink_check *src);
void uplink_check_clear(struct uplink_check *c);
bool uplink_check_equal(const struct uplink_check *a, const struct uplink_check *b);

/* One transition, for the history an operator sees (GET /api/uplinks). */
struct uplink_transition_rec {
	uint64_t at_ms; /* monotonic, as since_ms */
	enum uplink_state from, to;
	char reason[128];
};

#define UPLINK_HISTORY 8 /* transitions kept per uplink */

struct uplink {
	char *name;
	char ifname[IFNAMSIZ]; /* "" = none configured */
	int ifindex;	       /* 0 = the interface does not exist (now) */
	bool link_up;	       /* administratively up and with carrier */
	struct addr gateway;
	struct addr source;
	int weight;
	/*
	 * false: drained by the operator ([uplink] enabled = false).  Its state still follows
	 * its link and checks, and what already goes through it goes on; only new connections,
	 * flows and queries avoid it.  Not a state: a drained uplink is still up or down.
	 */
	bool enabled;
	struct uplink_check check; /* owned copy */
	enum uplink_state state;
	enum uplink_state prev_state; /* the one before the last transition */
	uint64_t since_ms; /* monotonic time of the last transition */
	unsigned transitions;
	char reason[128]; /* why it is in its state */
	/* the last transitions, oldest first: hist[0..n_hist) */
	struct uplink_transition_rec hist[UPLINK_HISTORY];
	size_t n_hist;
};

typedef void (*uplink_event_cb)(struct uplink *u, enum uplink_event ev, void *arg);

struct uplink_sub {
	uplink_event_cb cb;
	void *arg;
};

/* The set owns its uplinks. */
struct uplink_set {
	struct uplink **v;
	size_t n;
	struct uplink_sub *subs;
	size_t n_subs;
};

void uplink_set_init(struct uplink_set *set);
/* Frees every uplink (REMOVED is not announced: the subscribers are going too). */
void uplink_set_clear(struct uplink_set *set);
void uplink_set_subscribe(struct uplink_set *set, uplink_event_cb cb, void *arg);
void uplink_set_unsubscribe(struct uplink_set *set, uplink_event_cb cb, void *arg);
struct uplink *uplink_find(const struct uplink_set *set, const char *name);
struct uplink *uplink_find_ifname(const struct uplink_set *set, const char *ifname);

/*
 * Make the set match conf: add, remove and update uplinks, announcing each
 * change and logging it ("uplink isp2: weight 1 -> 2").  Returns the number
 * of changes.
 */
unsigned uplink_set_sync(struct uplink_set *set, const struct conf *conf);

/*
 * The kernel says interface ifname has index ifindex (0: it is gone) and is
 * up or not.  Uplinks on that interface follow: link down makes them DOWN at
 * once; link up makes an uplink without health check UP, while one with a
 * check stays down until its checks pass (the check engine decides).
 */
void uplink_set_link(struct uplink_set *set, const char *ifname, int ifindex, bool up);

/* Up or degraded: dataplanes may send traffic through it. */
static inline bool uplink_usable(const struct uplink *u)
{
	return u->state == UPLINK_UP || u->state == UPLINK_DEGRADED;
}

/* Usable and not drained: kernel dataplanes (route, policy) choose it for new flows. */
static inline bool uplink_in_service(const struct uplink *u)
{
	return u->enabled && uplink_usable(u);
}

/*
 * Not drained, and usable or not judged yet: for choices made per connection or per query
 * (proxy, DNS), which race or retry another uplink when one fails.  A restart must not
 * refuse clients for the length of the first check round; kernel routes wait for the
 * verdict instead.
 */
static inline bool uplink_worth_trying(const struct uplink *u)
{
	return u->enabled && (uplink_usable(u) || u->state == UPLINK_INIT);
}

/* Change state, log "uplink isp1: up -> down (reason)" and announce it. */
void uplink_transition(struct uplink_set *set, struct uplink *u, enum uplink_state to,
	const char *reason_fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
