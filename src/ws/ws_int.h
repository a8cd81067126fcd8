/*
 * ws_int.h - what ws.c (the session) shares with ws_client.c (connect, TLS, handshake) and
 * with the server's side of the upgrade (api_ws_accept() in src/api).
 */
#ifndef EGRESS_WS_INT_H
#define EGRESS_WS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <wslay/wslay.h>

#include "ws.h"

struct bufferevent;
struct event;
struct ws_client;

enum ws_state {
	WS_CONNECTING, /* client: TCP and TLS */
	WS_HANDSHAKE,  /* client: the upgrade request sent, its answer awaited */
	WS_OPEN,
	WS_CLOSING,    /* our close frame sent, the peer's awaited */
	WS_DRAINING,   /* over: what is queued goes out, then the close callback */
	WS_DONE,       /* close_cb on the next loop turn */
	_WS_STATE_MAX,
};

extern const char *const ws_state_name[_WS_STATE_MAX];

struct ws {
	struct event_base *base;
	struct bufferevent *bev;
	bool server;
	enum ws_state state;
	struct ws_opts o;
	struct ws_callbacks cb;
	void *arg;
	wslay_event_context_ptr ctx;
	struct event *timer; /* the state's deadline: connect, heartbeat, close, drain */
	struct event *defer; /* close_cb on a loop turn of its own */
	uint64_t last_rx_ms; /* anything from the peer */
	bool pinged;	     /* since then */
	int in_cb;	     /* inside a user callback (ws_free() then waits) */
	bool freeing;
	int err;
	char why[192];
	char peer[264]; /* an address, or the URL's host before connecting */
	char *msg; /* the NUL-terminated copy of a message */
	size_t msg_size;
	/* server: the connection's owner takes it back */
	void (*release_cb)(void *arg);
	void *release_arg;
	/* client */
	struct ws_client *cl;
};

/* A session not yet on a connection; o and cb copied (defaults filled). */
struct ws *ws_alloc(struct event_base *base, bool server, const struct ws_opts *o,
	const struct ws_callbacks *cb, void *arg);
/* The handshake is done: frames on bev (the client's own; the server's borrowed). */
void ws_begin(struct ws *w, struct bufferevent *bev);
/* Over: err 0 or -errno and why (printf); close_cb on the next loop turn. */
void ws_fail(struct ws *w, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ws_transition(struct ws *w, enum ws_state to);
/* Free at once, without callbacks (the server's connection released). */
void ws_destroy(struct ws *w);
/* ws_free() was called inside a callback that has now returned: free.  True if freed. */
bool ws_reap(struct ws *w);
/* Arm the state's timer for ms from now. */
void ws_timer(struct ws *w, uint32_t ms);
/* ws_client.c: free the client's part (bev, TLS context, resolver). */
void ws_client_free(struct ws_client *cl);
/* ws_client.c: the timer of CONNECTING and HANDSHAKE fired. */
void ws_client_timeout(struct ws *w);

/*
 * Server side (api_ws_accept()): a session on bev, which stays the caller's: the 101 has
 * been queued on it.  release_cb(release_arg) is called once when the session is done with
 * bev (after close_cb, or from ws_free()); the caller then closes the connection.
 */
struct ws *ws_server_new(struct event_base *base, struct bufferevent *bev, const char *peer,
	const struct ws_opts *o, const struct ws_callbacks *cb, void *arg,
	void (*release_cb)(void *), void *release_arg);
/*
 * The server's connection is going from under it (the API server stops): close_cb runs now
 * ("server stopping"), w is freed, bev is not touched again and release_cb not called.
 */
void ws_server_lost(struct ws *w);

#endif
