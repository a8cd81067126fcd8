/*
 * dhcp6_int.h - the DHCPv6 client's insides: the message codec (dhcp6_msg.c) and the pure
 * state machine (dhcp6_sm.c) that dhcp6.c drives and the unit tests drive with a fake clock.
 *
 * Nothing declared here touches a socket, a clock or the log: times come in as arguments,
 * what to send and what to report go out in a struct dhcp6_out.
 */
#ifndef EGRESS_DHCP6_INT_H
#define EGRESS_DHCP6_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dhcp6.h"

#define DHCP6_CLIENT_PORT 546
#define DHCP6_SERVER_PORT 547

/* RFC 8415 7.3: message types */
enum {
	DHCP6_MSG_SOLICIT = 1,
	DHCP6_MSG_ADVERTISE = 2,
	DHCP6_MSG_REQUEST = 3,
	DHCP6_MSG_CONFIRM = 4,
	DHCP6_MSG_RENEW = 5,
	DHCP6_MSG_REBIND = 6,
	DHCP6_MSG_REPLY = 7,
	DHCP6_MSG_RELEASE = 8,
	DHCP6_MSG_DECLINE = 9,
	DHCP6_MSG_RECONFIGURE = 10,
	DHCP6_MSG_INFORMATION_REQUEST = 11,
	DHCP6_MSG_RELAY_FORW = 12,
	DHCP6_MSG_RELAY_REPL = 13,
};

/* RFC 8415 21 (and RFC 3646 for DNS servers): the options this client reads or writes */
enum {
	DHCP6_OPT_CLIENTID = 1,
	DHCP6_OPT_SERVERID = 2,
	DHCP6_OPT_IA_NA = 3,
	DHCP6_OPT_IAADDR = 5,
	DHCP6_OPT_ORO = 6,
	DHCP6_OPT_PREFERENCE = 7,
	DHCP6_OPT_ELAPSED_TIME = 8,
	DHCP6_OPT_STATUS_CODE = 13,
	DHCP6_OPT_RAPID_COMMIT = 14,
	DHCP6_OPT_DNS_SERVERS = 23,
	DHCP6_OPT_SOL_MAX_RT = 82,
};

/* RFC 8415 21.13: status codes */
enum {
	DHCP6_STATUS_SUCCESS = 0,
	DHCP6_STATUS_UNSPEC_FAIL = 1,
	DHCP6_STATUS_NO_ADDRS_AVAIL = 2,
	DHCP6_STATUS_NO_BINDING = 3,
	DHCP6_STATUS_NOT_ON_LINK = 4,
	DHCP6_STATUS_USE_MULTICAST = 5,
};

#define DHCP6_MSG_ADDRS_MAX 4	/* IAADDRs kept of one IA_NA (more are checked, not kept) */
#define DHCP6_MSG_MAX	    1500 /* what we build and what we read from a datagram */
#define DHCP6_INFINITE	    0xffffffffu

/* No status option: what RFC 8415 21.13 says its absence means (Success). */
#define DHCP6_STATUS_NONE 0xffff

struct dhcp6_msg_addr {
	struct in6_addr addr;
	uint32_t preferred_s, valid_s;
	uint16_t status; /* DHCP6_STATUS_NONE when the IAADDR has no status option */
};

/*
 * A DHCPv6 client/server message (RFC 8415 8), as parsed or to be built.  Of the IA_NAs
 * only the first is kept (we send one); its IAADDRs up to DHCP6_MSG_ADDRS_MAX.
 */
struct dhcp6_msg {
	uint8_t type;
	uint32_t xid; /* 24 bits */
	uint8_t client_duid[DHCP6_DUID_MAX];
	size_t client_duid_len; /* 0: no CLIENTID */
	uint8_t server_duid[DHCP6_DUID_MAX];
	size_t server_duid_len; /* 0: no SERVERID */
	bool has_ia;
	uint32_t iaid, t1_s, t2_s;
	uint16_t ia_status; /* DHCP6_STATUS_NONE: none */
	struct dhcp6_msg_addr addrs[DHCP6_MSG_ADDRS_MAX];
	size_t n_addrs;
	uint16_t status; /* the message's own status; DHCP6_STATUS_NONE: none */
	bool has_preference;
	uint8_t preference;
	bool rapid_commit;
	bool has_elapsed;
	uint16_t elapsed_cs; /* ELAPSED_TIME, hundredths of a second */
	bool oro_dns;	     /* build: ask for DNS servers (ORO) */
	struct in6_addr dns[DHCP6_DNS_MAX];
	size_t n_dns;
	uint32_t sol_max_rt_s; /* 0: no SOL_MAX_RT option */
};

extern const char *const dhcp6_msg_type_name[14]; /* "solicit", ..., index by type; [0] "?" */
const char *dhcp6_msg_type_str(uint8_t type);
const char *dhcp6_status_str(uint16_t status);

/*
 * Parse a message as it arrives on port 546 (borrowed buf).  0, or -EBADMSG for anything
 * malformed: shorter than its header, an option past the end, an option of the wrong
 * length, a DUID out of 1..130 bytes, two CLIENTIDs or SERVERIDs, a relay message type.
 */
int dhcp6_msg_parse(const uint8_t *buf, size_t len, struct dhcp6_msg *ret);
/*
 * Build m into buf (cap bytes, caller's): options in the order CLIENTID, SERVERID, IA_NA
 * (with its IAADDRs), ORO, ELAPSED_TIME.  0 and *ret_len, or -ENOBUFS.
 */
int dhcp6_msg_build(const struct dhcp6_msg *m, uint8_t *buf, size_t cap, size_t *ret_len);

/* RFC 8415 7.6: transmission and retransmission parameters, in ms */
#define DHCP6_SOL_MAX_DELAY 1000
#define DHCP6_SOL_TIMEOUT   1000
#define DHCP6_SOL_MAX_RT    3600000
#define DHCP6_REQ_TIMEOUT   1000
#define DHCP6_REQ_MAX_RT    30000
#define DHCP6_REQ_MAX_RC    10
#define DHCP6_REN_TIMEOUT   10000
#define DHCP6_REN_MAX_RT    600000
#define DHCP6_REB_TIMEOUT   10000
#define DHCP6_REB_MAX_RT    600000
#define DHCP6_REL_TIMEOUT   1000
#define DHCP6_REL_MAX_RC    4
#define DHCP6_DEC_TIMEOUT   1000
#define DHCP6_DEC_MAX_RC    4

/* What one state machine step asks of its caller: send, report, re-arm the timer. */
struct dhcp6_out {
	bool send;
	struct dhcp6_msg msg; /* to ff02::1:2 port 547, when send */
	size_t n_ev;
	enum dhcp6_event ev[2];
	struct dhcp6_lease ev_lease[2];
	int64_t timer_ms; /* monotonic ms of the next dhcp6_sm_timeout(); -1: none */
	uint16_t status;  /* the status that caused a transition (for the log); NONE if none */
};

/*
 * The client's state, embedded in struct dhcp6_client.  Fields below the configuration are
 * the machine's own; callers read state, lease and have_lease.
 */
struct dhcp6_sm {
	/* configuration (dhcp6_sm_init) */
	uint8_t duid[DHCP6_DUID_MAX];
	size_t duid_len;
	uint32_t iaid;
	uint32_t sol_max_rt_ms;
	uint64_t rng; /* xorshift state, never 0 */

	enum dhcp6_state state;
	enum dhcp6_state after; /* RELEASE: STOPPED; DECLINE: SOLICIT */
	bool have_lease;
	struct dhcp6_lease lease;
	int64_t lease_mono_ms; /* the monotonic instant of lease.obtained_at */

	/* the exchange in progress (RFC 8415 15) */
	uint32_t xid;
	int64_t start_ms;   /* its first transmission */
	int64_t rt_ms;	    /* the current retransmission timeout */
	int64_t end_ms;	    /* MRD: give up at (0: none) */
	uint32_t count;	    /* transmissions so far */
	bool first_rt_over; /* SOLICIT: the first RT passed (take any ADVERTISE now) */

	/* SOLICIT: the best ADVERTISE so far */
	bool have_adv;
	struct dhcp6_msg adv;
	struct addr adv_from;
	/* REQUEST/RENEW/REBIND/RELEASE/DECLINE: what the message names */
	uint8_t server_duid[DHCP6_DUID_MAX];
	size_t server_duid_len;
	struct in6_addr req_addr;
	bool has_req_addr;

	int64_t timer_ms;
};

/* duid/duid_len as in struct dhcp6_opts (NULL: DUID-LL of mac); seed: any number. */
void dhcp6_sm_init(struct dhcp6_sm *sm, const uint8_t mac[6], const uint8_t *duid,
	size_t duid_len, uint32_t iaid, uint32_t sol_max_rt_ms, uint64_t seed);
/* Start: with kept (borrowed; NULL: none) RENEW it (REBIND past T2, SOLICIT past valid). */
void dhcp6_sm_start(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s,
	const struct dhcp6_lease *kept, struct dhcp6_out *out);
/* The timer the last step asked for has come. */
void dhcp6_sm_timeout(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out);
/* A message (parsed) came from from (the server's link-local address). */
void dhcp6_sm_receive(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s,
	const struct dhcp6_msg *m, const struct addr *from, struct dhcp6_out *out);
void dhcp6_sm_recheck(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out);
void dhcp6_sm_decline(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out);
void dhcp6_sm_release(struct dhcp6_sm *sm, int64_t now_ms, int64_t wall_s, struct dhcp6_out *out);
void dhcp6_sm_stop(struct dhcp6_sm *sm, struct dhcp6_out *out);

#endif
