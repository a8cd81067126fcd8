/*
 * dhcp4.h - a DHCPv4 client (RFC 2131) for one device identity: one macvlan, one MAC.
 *
 * Many clients run at once on the one event loop; each has its own packet socket (AF_PACKET
 * bound to its macvlan, filtered to UDP port 68), so a slow or silent server holds up no
 * other device.  States INIT, SELECTING, REQUESTING, BOUND, RENEWING, REBINDING, and
 * INIT-REBOOT/REBOOTING when started with a kept lease (a restart renews, it does not
 * acquire again).  Retransmissions back off exponentially with jitter (RFC 2131 4.1), from
 * retry_min_ms up to retry_max_ms, forever: a device whose MAC is not registered yet gets
 * its lease once it is.  An offered address is probed with ARP (RFC 5227) before it is
 * used; an answer means a conflict: DECLINE and start again.  release() sends RELEASE.
 *
 * The client only talks DHCP and reports: it adds no address or route (dev_net.c does, on
 * its callback).  Unicast (renewal, release) goes out through the same packet socket to the
 * link-layer address the server's last answer came from (the server or its relay).
 *
 * Split: dhcp4_msg.c (codec, pure, fuzzed), dhcp4_sm.c (the state machine, pure: events in,
 * actions and timers out, unit-tested with a fake clock), dhcp4.c (sockets, timers).
 */
#ifndef EGRESS_DHCP4_H
#define EGRESS_DHCP4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

struct event_base;
struct dhcp4_client;

#define DHCP4_DNS_MAX 4

struct dhcp4_lease {
	struct addr addr;	/* yiaddr */
	uint8_t plen;		/* from option 1 (subnet mask); 0 when absent: 32 */
	struct addr router;	/* option 3, first router; unset: none */
	struct addr server_id;	/* option 54 */
	struct addr dns[DHCP4_DNS_MAX];
	size_t n_dns;
	uint32_t lease_s;	/* option 51; 0xffffffff: infinite */
	uint32_t t1_s, t2_s;	/* options 58/59, or 0.5 and 0.875 of the lease */
	int64_t obtained_at;	/* unix seconds of the ACK (lease times count from here) */
	uint8_t server_mac[6];	/* link-layer source of the ACK: where unicast goes */
};

enum dhcp4_state {
	DHCP4_STOPPED,
	DHCP4_INIT,
	DHCP4_SELECTING,
	DHCP4_REQUESTING,
	DHCP4_BOUND,
	DHCP4_RENEWING,
	DHCP4_REBINDING,
	DHCP4_INIT_REBOOT,
	DHCP4_REBOOTING,
	_DHCP4_STATE_MAX,
};
extern const char *const dhcp4_state_name[_DHCP4_STATE_MAX]; /* "init", "bound", ... */

enum dhcp4_event {
	DHCP4_EV_BOUND,	  /* a lease with a new address (first, or after NAK/expiry): add it */
	DHCP4_EV_RENEWED, /* the same address, new times (and maybe options) */
	DHCP4_EV_LOST,	  /* the lease expired, was NAKed or declined: remove the address */
	_DHCP4_EV_MAX,
};

/* lease: borrowed for the call; for DHCP4_EV_LOST, the lease that was lost. */
typedef void (*dhcp4_cb)(void *arg, enum dhcp4_event ev, const struct dhcp4_lease *lease);

struct dhcp4_opts {
	int ifindex;		 /* the macvlan */
	uint8_t mac[6];		 /* chaddr, and the frames' source */
	const uint8_t *client_id; /* option 61, borrowed; NULL: 0x01 followed by mac */
	size_t client_id_len;
	const char *hostname;	 /* option 12, borrowed; NULL: none */
	uint32_t retry_min_ms;	 /* first retransmission wait; 0: 4000 (RFC 2131) */
	uint32_t retry_max_ms;	 /* backoff cap; 0: 64000 */
	uint32_t arp_probe_ms;	 /* conflict probe window; 0: 500; UINT32_MAX: no probe */
};

/* o and its strings are copied.  *ret is the caller's: dhcp4_client_free(). */
int dhcp4_client_new(struct event_base *base, const struct dhcp4_opts *o, dhcp4_cb cb, void *arg,
	struct dhcp4_client **ret);
/*
 * Start: with kept (a lease from the store, borrowed) still valid, INIT-REBOOT for it
 * (reported RENEWED when the server confirms it, LOST then BOUND when it does not);
 * otherwise INIT.  Opens the socket: 0 or -errno.
 */
int dhcp4_client_start(struct dhcp4_client *c, const struct dhcp4_lease *kept);
/* The WAN's link came back or changed: confirm the lease now (INIT-REBOOT), or INIT. */
void dhcp4_client_recheck(struct dhcp4_client *c);
/* Send RELEASE when bound, and stop (no event).  The socket is closed. */
void dhcp4_client_release(struct dhcp4_client *c);
/* Stop without a word to the server (egressd stops; the lease is kept for the restart). */
void dhcp4_client_stop(struct dhcp4_client *c);
enum dhcp4_state dhcp4_client_state(const struct dhcp4_client *c);
/* The current lease, or NULL when there is none. */
const struct dhcp4_lease *dhcp4_client_lease(const struct dhcp4_client *c);
/* Counters for status and metrics. */
struct dhcp4_stats {
	uint64_t sent, received, naks, declines, bad; /* bad: malformed or not ours */
	uint32_t attempt;    /* retransmissions in the current exchange */
	int64_t next_at_ms;  /* monotonic ms of the next timer; 0: none */
};
void dhcp4_client_stats(const struct dhcp4_client *c, struct dhcp4_stats *ret);
void dhcp4_client_free(struct dhcp4_client *c);

#endif
