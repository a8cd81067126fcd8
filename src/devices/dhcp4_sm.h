/*
 * dhcp4_sm.h - the DHCPv4 client's state machine (RFC 2131 4.4), pure.
 *
 * Events in (start, a parsed message, an ARP packet seen while probing, the timer, recheck,
 * release), actions out (one message to send and where, an ARP probe, lease events for the
 * owner) plus the one deadline at which dhcp4_sm_timeout() wants to be called.  Time comes
 * in with every call (monotonic ms, and wall ms for the lease's obtained_at), randomness
 * from a seed: a unit test drives it with a fake clock and gets the same run every time.
 *
 * Must not read a clock, allocate, log, or touch anything outside the struct: dhcp4.c does
 * the I/O, the timer and the logging.
 */
#ifndef EGRESS_DHCP4_SM_H
#define EGRESS_DHCP4_SM_H

#include <stdbool.h>
#include <stdint.h>

#include "dhcp4.h"
#include "dhcp4_msg.h"

/* Fixed waits (ms). */
#define DHCP4_DECLINE_WAIT_MS 10000   /* RFC 2131 3.1.5: at least ten seconds after DECLINE */
#define DHCP4_RENEW_MIN_MS 60000      /* RFC 2131 4.4.5: renew/rebind retransmit floor */
#define DHCP4_REQUEST_TRIES 4	      /* REQUESTING/REBOOTING: sends before giving up */
#define DHCP4_ARP_PROBES 2	      /* probes per window: at its start and its middle */

struct dhcp4_now {
	int64_t mono_ms; /* monotonic */
	int64_t wall_ms; /* unix */
};

/* The settings the machine reads (from struct dhcp4_opts with defaults applied). */
struct dhcp4_sm_conf {
	uint8_t mac[6];
	uint8_t client_id[DHCP4_CLIENT_ID_MAX];
	size_t client_id_len;
	char hostname[DHCP4_HOSTNAME_MAX + 1];
	uint32_t retry_min_ms, retry_max_ms;
	uint32_t arp_probe_ms; /* UINT32_MAX: no probe */
};

/* What one call asks the I/O to do, in this order: send, probe, then report events. */
struct dhcp4_sm_out {
	bool send;
	struct dhcp4_msg msg;
	struct in_addr src, dst; /* IP source and destination */
	uint8_t dst_mac[6];	 /* ff:ff:ff:ff:ff:ff for a broadcast */
	bool arp_probe;		 /* send an ARP probe for sm->offer.addr */
	unsigned n_events;
	struct {
		enum dhcp4_event ev;
		struct dhcp4_lease lease;
	} events[2];
};

struct dhcp4_sm {
	struct dhcp4_sm_conf conf;
	enum dhcp4_state state;
	uint32_t xid;
	int64_t xid_start_ms; /* when this exchange began: the secs field */
	uint32_t attempt;     /* sends in this exchange so far, minus one */
	uint32_t nak_run;     /* NAKs in a row: restarts back off after the first */
	int64_t timer_at;     /* monotonic ms at which to call dhcp4_sm_timeout(); 0: none */
	bool probing;	      /* REQUESTING with an ACK in hand: the ARP probe window is open */
	uint32_t probes_sent;
	struct dhcp4_lease offer; /* the address being requested or probed */
	bool have_lease;	  /* lease is held (reported BOUND, or kept from a restart) */
	struct dhcp4_lease lease;
	int64_t bound_ms; /* monotonic time lease times count from */
	uint64_t rng;
	uint64_t sent, received, naks, declines, bad;
};

/* seed: any value (the I/O gives a random one; a test a fixed one). */
void dhcp4_sm_init(struct dhcp4_sm *sm, const struct dhcp4_sm_conf *conf, uint64_t seed);
/* kept: a lease from the store (borrowed) or NULL. */
void dhcp4_sm_start(struct dhcp4_sm *sm, const struct dhcp4_lease *kept,
	const struct dhcp4_now *now, struct dhcp4_sm_out *out);
void dhcp4_sm_recheck(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out);
/* Call when now->mono_ms >= sm->timer_at (early calls do nothing). */
void dhcp4_sm_timeout(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out);
/*
 * A message from the wire, parsed (borrowed); src_mac: its link-layer source, src_ip its IP
 * source.  Not ours (op, xid, chaddr, type for the state) counts as bad and changes nothing.
 */
void dhcp4_sm_receive(struct dhcp4_sm *sm, const struct dhcp4_msg *m, const uint8_t src_mac[6],
	struct in_addr src_ip, const struct dhcp4_now *now, struct dhcp4_sm_out *out);
/* An ARP packet seen on the link (borrowed); acts only while probing. */
void dhcp4_sm_arp(struct dhcp4_sm *sm, const struct dhcp4_arp *a, const struct dhcp4_now *now,
	struct dhcp4_sm_out *out);
/* RELEASE when a lease is held; then STOPPED.  No event. */
void dhcp4_sm_release(struct dhcp4_sm *sm, const struct dhcp4_now *now, struct dhcp4_sm_out *out);
/* STOPPED, silently; the lease stays readable. */
void dhcp4_sm_stop(struct dhcp4_sm *sm);

/*
 * The wait before the send numbered attempt (0 for the first retransmission): retry_min
 * doubled per attempt up to retry_max, then moved at random by up to a quarter of itself
 * and at most one second either way (RFC 2131 4.1's "randomized by +/- 1 second").
 */
uint32_t dhcp4_sm_backoff(struct dhcp4_sm *sm, uint32_t attempt);

/* Prefix length of a contiguous netmask; -1 when it is not one. */
int dhcp4_mask_plen(struct in_addr mask);

#endif
