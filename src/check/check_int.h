/*
 * check_int.h - what the engine (check.c) and the probe kinds
 * (check_http.c, check_tcp.c, check_icmp.c, check_dns.c) share.
 *
 * A kind starts a probe of one target, and reports how it ended exactly
 * once with check_target_done() - after releasing whatever it held for the
 * probe, because the report may end the round.  The engine owns the round
 * deadline: when it passes, it cancels the probes still in flight (the
 * kind's cancel function, which must not report) and counts them as
 * timeouts.
 *
 * Must not be included outside src/check/.
 */
#ifndef EGRESS_CHECK_INT_H
#define EGRESS_CHECK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "check.h"
#include "check_sm.h"
#include "log.h"
#include "uplink.h"

struct event;
struct curl_loop;
struct check_icmp_sock;

struct check_target {
	struct check_uplink *cu;
	unsigned idx; /* in cu->t */
	struct addr addr;
	uint16_t port;		     /* 0 for ICMP */
	char label[ADDR_STRLEN + 8]; /* "192.0.2.2:80", "[2001:db8::2]:53", "192.0.2.2" */
	/* the current probe */
	bool pending;
	uint64_t sent_us;
	enum check_result result;
	uint32_t rtt_us;
	char reason[160];
	/* kind state */
	int fd;		   /* tcp, dns: the probe's socket while in flight; -1 otherwise */
	struct event *ev;  /* tcp, dns: its event */
	uint16_t echo_seq; /* icmp: sequence number of the echo in flight */
	int http_status;   /* http(s): the status of the answer to the probe; 0: none */
	void *priv;	   /* http: struct http_probe; dns: the query */
};

struct check_uplink {
	struct check_engine *e;
	struct uplink *u; /* borrowed: valid until its REMOVED event */
	int kind;	  /* enum check_kind in force */
	struct check_target *t;
	unsigned n_t;
	struct check_sm sm;
	struct event *timer; /* the round deadline while a round runs, else the next round */
	bool in_round;
	bool starting;	    /* starting the round's probes: no round end yet */
	bool transitioning; /* our own uplink_transition(): ignore its STATE event */
	uint64_t round_start_us;
	uint64_t due_us; /* when the next round should start; 0: now */
	unsigned pending;
	struct check_stats stats;
	struct check_icmp_sock *icmp[2]; /* IPv4, IPv6; opened on demand, owned */
};

struct check_engine {
	struct event_base *base;
	struct uplink_set *set; /* borrowed */
	struct check_uplink **v;
	size_t n;
	struct curl_loop *http; /* curl multi on the loop; made on demand, owned */
	struct {
		check_probe_cb cb;
		void *arg;
	} * probe_hooks;
	size_t n_probe_hooks;
	struct {
		check_round_cb cb;
		void *arg;
	} * round_hooks;
	size_t n_round_hooks;
	struct log_ratelimit rl; /* malformed answers */
};

/* check.c */
void check_target_done(struct check_target *t, enum check_result res, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An answer that is malformed or not ours: count it, log at debug (rate-limited), drop it. */
void check_malformed(struct check_uplink *cu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* check_sock.c */
uint64_t check_now_us(void);
uint32_t check_random32(void);
/* errno (positive) to a probe result. */
enum check_result check_errno_result(int err);
/*
 * A non-blocking socket that leaves through cu's uplink: SO_BINDTODEVICE to
 * its interface, SO_MARK check_mark, bound to its source address when that
 * is of family.  *ret_fd is the caller's to close.
 */
int check_sock_open(const struct check_uplink *cu, int family, int type, int proto, int *ret_fd);
/* The target's socket address (link-local IPv6 scoped to the uplink's interface). */
int check_target_sockaddr(
	const struct check_target *t, struct sockaddr_storage *ret, socklen_t *ret_len);

/* check_path.c: 1 and a reason in buf if the kernel says t's probes or their replies
 * cannot pass (no route out, reverse-path filtering), 0 if the paths look right, or -errno. */
int check_path_why(const struct check_uplink *cu, const struct check_target *t, char *buf,
	size_t len);

/* check_tcp.c */
int check_tcp_start(struct check_target *t);
void check_tcp_cancel(struct check_target *t);

/* check_dns.c */
int check_dns_setup(struct check_target *t);
int check_dns_start(struct check_target *t);
void check_dns_cancel(struct check_target *t);
void check_dns_teardown(struct check_target *t);

/* check_icmp.c */
int check_icmp_start(struct check_target *t);
void check_icmp_cancel(struct check_target *t);
void check_icmp_uplink_clear(struct check_uplink *cu);

/* check_http.c: one curl multi handle per engine (curl_loop.h), one easy handle per target */
int check_http_setup(struct check_target *t);
int check_http_start(struct check_target *t);
void check_http_cancel(struct check_target *t);
void check_http_teardown(struct check_target *t);

#endif
