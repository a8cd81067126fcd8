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

struct conf;

enum uplink_state {
	UPLINK_INIT, /* not yet known */
	UPLINK_DOWN,
	UPLINK_UP,
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

struct uplink {
	char *name;
	char ifname[IFNAMSIZ]; /* "" = none configured */
	int ifindex;	       /* 0 = the interface does not exist (now) */
	bool link_up;	       /* administratively up and with carrier */
	struct addr gateway;
	struct addr source;
	int weight;
	enum uplink_state state;
	uint64_t since_ms; /* monotonic time of the last transition */
	unsigned transitions;
	char reason[128]; /* why it is in its state */
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
 * once; link up makes them UP until health checks take over.
 */
void uplink_set_link(struct uplink_set *set, const char *ifname, int ifindex, bool up);

/* Change state, log "uplink isp1: up -> down (reason)" and announce it. */
void uplink_transition(struct uplink_set *set, struct uplink *u, enum uplink_state to,
	const char *reason_fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
