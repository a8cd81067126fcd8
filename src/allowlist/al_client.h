/*
 * al_client.h - the gateway agent's connection to egress-server's hub (al_proto.h,
 * doc/allowlist-protocol.md) over a WebSocket (src/ws/).
 *
 * Connects, says hello with the version the agent holds, hands each snapshot or delta to
 * the agent and acknowledges it once applied; a delta from another version than the one
 * held gets a new hello.  Any failure (connect, TLS, refusal, heartbeat timeout, a message
 * that does not parse) closes and reconnects after an exponential backoff with jitter,
 * which a successful apply resets.  Must not touch the kernel: the agent's callbacks do.
 */
#ifndef EGRESS_AL_CLIENT_H
#define EGRESS_AL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "al_proto.h"

struct event_base;
struct al_client;

enum al_client_state {
	AL_CLIENT_CONNECTING, /* TCP, TLS, WebSocket handshake */
	AL_CLIENT_SYNCING,    /* hello sent, waiting for the server's list */
	AL_CLIENT_SYNCED,     /* the last list applied and acknowledged */
	AL_CLIENT_WAITING,    /* before the next attempt */
	_AL_CLIENT_STATE_MAX,
};
extern const char *const al_client_state_name[_AL_CLIENT_STATE_MAX];

struct al_client_conf {
	const char *url; /* ws:// or wss:// */
	const char *ca, *cert, *key, *token; /* NULL: none */
	const char *name; /* the gateway's, in hello */
	size_t max_message;
	uint32_t ping_ms, timeout_ms;
	uint32_t reconnect_min_ms, reconnect_max_ms;
};

struct al_client_ops {
	/* The version the agent holds (0: none), for hello. */
	uint64_t (*version_cb)(void *arg);
	/*
	 * A snapshot or a delta (m borrowed for the call).  0: applied, acknowledged;
	 * -ESTALE: a delta from another version than the one held (a new hello follows);
	 * other -errno: refused, why says it (sent to the server in an error, then a
	 * reconnect after the backoff).
	 */
	int (*apply_cb)(void *arg, const struct al_msg *m, char *why, size_t why_len);
	/* The state changed; why: a short phrase (may be ""). */
	void (*state_cb)(void *arg, enum al_client_state s, const char *why);
};

/*
 * Start connecting to c->url at once.  c's strings are copied; ops and arg are borrowed
 * and must outlive the client.  *ret is the caller's (al_client_free).  0 or -errno.
 */
int al_client_new(struct event_base *base, const struct al_client_conf *c,
	const struct al_client_ops *ops, void *arg, struct al_client **ret);
/* Close without callbacks; NULL is fine. */
void al_client_free(struct al_client *cl);

enum al_client_state al_client_get_state(const struct al_client *cl);
/* {"state", "since" (unix seconds), "last_error", "connects", "failures", "retry_in_ms",
 * "acked" (the last version acknowledged), "last_contact" (unix seconds: now while connected,
 * its heartbeat checking the server; else when the last connection ended)}. */
json_t *al_client_status(const struct al_client *cl);

/*
 * Pure: the wait before attempt number failures+1: min doubled per failure up to max,
 * then a random part of it taken off (half of it at most, rnd picks how much), so
 * gateways that lost the server together do not come back together.
 */
uint32_t al_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned failures, uint32_t rnd);

#endif
