/*
 * dhcp6.h - a DHCPv6 client (RFC 8415) for one device identity: IA_NA on one macvlan.
 *
 * Talks from the macvlan's link-local address (made by the kernel from the device's MAC)
 * on UDP 546 to ff02::1:2 port 547, with the device's DUID and IAID (kept in the store, so
 * the server sees the same client after a restart).  SOLICIT / ADVERTISE / REQUEST / REPLY,
 * RENEW at T1, REBIND at T2, CONFIRM-free restart: started with a kept lease it RENEWs it
 * (REBIND if no answer), a recheck (link or prefix change) REBINDs it, RELEASE when the device leaves, DECLINE when the kernel reports the
 * address failed DAD.  Retransmission per RFC 8415 15 (IRT/MRT with +-0.1 randomization).
 * Like dhcp4.h it only reports; dev_net.c adds the address.
 *
 * Split: dhcp6_msg.c (codec, pure, fuzzed), dhcp6_sm.c (state machine, pure), dhcp6.c (I/O).
 */
#ifndef EGRESS_DHCP6_H
#define EGRESS_DHCP6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

struct event_base;
struct dhcp6_client;

#define DHCP6_DUID_MAX 130 /* RFC 8415 11.1: 2-byte type + up to 128 bytes */
#define DHCP6_DNS_MAX  4

struct dhcp6_lease {
	struct addr addr;	 /* the IA_NA address */
	uint32_t preferred_s, valid_s; /* its lifetimes; 0xffffffff: infinite */
	uint32_t t1_s, t2_s;	 /* of the IA_NA (0: the client picks 0.5 / 0.8 of preferred) */
	uint8_t server_duid[DHCP6_DUID_MAX];
	size_t server_duid_len;
	struct addr server;	 /* the link-local address the REPLY came from */
	struct addr dns[DHCP6_DNS_MAX];
	size_t n_dns;
	int64_t obtained_at;	 /* unix seconds of the REPLY */
};

enum dhcp6_state {
	DHCP6_STOPPED,
	DHCP6_SOLICIT,
	DHCP6_REQUEST,
	DHCP6_BOUND,
	DHCP6_RENEW,
	DHCP6_REBIND,
	DHCP6_RELEASE,
	DHCP6_DECLINE, /* DECLINE sent for an address that failed DAD; then SOLICIT */
	_DHCP6_STATE_MAX,
};
extern const char *const dhcp6_state_name[_DHCP6_STATE_MAX];

enum dhcp6_event {
	DHCP6_EV_BOUND,	  /* a new address: add it */
	DHCP6_EV_RENEWED, /* same address, new lifetimes */
	DHCP6_EV_LOST,	  /* valid lifetime over, NoBinding, declined: remove it */
	_DHCP6_EV_MAX,
};

typedef void (*dhcp6_cb)(void *arg, enum dhcp6_event ev, const struct dhcp6_lease *lease);

struct dhcp6_opts {
	int ifindex;		/* the macvlan */
	uint8_t mac[6];
	const uint8_t *duid;	/* borrowed; NULL: DUID-LL (type 3) of mac */
	size_t duid_len;
	uint32_t iaid;		/* 0: the last 4 bytes of mac */
	uint32_t solicit_max_ms; /* SOL_MAX_RT cap; 0: 3600000 (RFC 8415) */
};

/* Make a DUID-LL of mac into buf (at least 10 bytes): its length. */
size_t dhcp6_duid_ll(const uint8_t mac[6], uint8_t *buf);

int dhcp6_client_new(struct event_base *base, const struct dhcp6_opts *o, dhcp6_cb cb, void *arg,
	struct dhcp6_client **ret);
/*
 * kept: a lease from the store (borrowed): RENEW it (REBIND past its T2; past its valid
 * lifetime it is reported LOST and the client SOLICITs), or NULL or an unset address
 * (SOLICIT).  Without kept, a client stopped with a lease renews that one.  0 or -errno.
 * Callbacks run on the loop, also from within these calls; a callback may free the client.
 * RELEASE reports no event (the device is leaving); every other loss is DHCP6_EV_LOST.
 */
int dhcp6_client_start(struct dhcp6_client *c, const struct dhcp6_lease *kept);
/*
 * The link came back, or the RA's prefixes changed: REBIND the lease now (any server may
 * answer; one that says the address is gone ends it: LOST, SOLICIT), or SOLICIT again from
 * the first retransmission timeout.  Nothing while stopped, requesting or releasing.
 */
void dhcp6_client_recheck(struct dhcp6_client *c);
/* The address failed DAD: DECLINE it and SOLICIT again. */
void dhcp6_client_decline(struct dhcp6_client *c);
void dhcp6_client_release(struct dhcp6_client *c); /* RELEASE when bound, then stop */
void dhcp6_client_stop(struct dhcp6_client *c);	   /* stop silently, lease kept */
enum dhcp6_state dhcp6_client_state(const struct dhcp6_client *c);
const struct dhcp6_lease *dhcp6_client_lease(const struct dhcp6_client *c);
struct dhcp6_stats {
	uint64_t sent, received, bad;
	uint32_t attempt;
	int64_t next_at_ms;
};
void dhcp6_client_stats(const struct dhcp6_client *c, struct dhcp6_stats *ret);
void dhcp6_client_free(struct dhcp6_client *c);

#endif
