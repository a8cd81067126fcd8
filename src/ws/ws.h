/*
 * ws.h - WebSocket (RFC 6455) connections on the loop: wslay does the framing, masking
 * and control frames; this code does the opening handshake, the I/O on a libevent
 * bufferevent (plain or OpenSSL), heartbeats and bounds.
 *
 * Client: ws_connect() to ws:// or wss:// URLs (TLS verified against the system's CAs
 * or ca_file, optional client certificate, optional bearer token).  Server: an API
 * request upgraded by api_ws_accept() (src/api/api.h), the connection leaving evhttp.
 *
 * Messages are whole text messages, bounded by max_message (a bigger one closes with
 * 1009).  Heartbeats: a ping after ping_ms without anything from the peer; nothing
 * (pong included) for timeout_ms closes.  Must not: block, or buffer without bound (a
 * peer that does not read makes ws_send() fail with -ENOBUFS past max_pending).
 */
#ifndef EGRESS_WS_H
#define EGRESS_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ws;

struct ws_opts {
	size_t max_message;   /* bytes of one incoming message; 0: 16 MiB */
	size_t max_pending;   /* bytes queued for the peer; 0: 64 MiB */
	uint32_t ping_ms;     /* 0: 10 s */
	uint32_t timeout_ms;  /* 0: 30 s */
};

struct ws_callbacks {
	/* Client only: the handshake is done; ws_send() may be called. */
	void (*open_cb)(struct ws *w, void *arg);
	/* A whole text message (data is NUL-terminated at data[len]; borrowed for the call). */
	void (*message_cb)(struct ws *w, const char *data, size_t len, void *arg);
	/*
	 * The connection is over (peer's close, timeout, error, failed connect or handshake):
	 * err 0 or -errno, why a short phrase ("closed by peer (1000)", "timeout", "TLS:
	 * certificate verify failed", "handshake: HTTP 401").  w is freed after cb returns;
	 * calling ws_free() from cb is not allowed.  Not called after ws_free().
	 */
	void (*close_cb)(struct ws *w, int err, const char *why, void *arg);
};

struct ws_client_conf {
	const char *url;       /* ws://HOST[:PORT]/PATH or wss://...; HOST may be [v6] */
	const char *ca_file;   /* PEM CAs that verify the server; NULL: the system's */
	const char *cert_file; /* client certificate (PEM) and its key, or NULL */
	const char *key_file;
	const char *token;     /* sent as "Authorization: Bearer TOKEN", or NULL */
	uint32_t connect_timeout_ms; /* TCP + TLS + handshake; 0: 10 s */
};

/* Is url a ws:// or wss:// URL we can connect to?  0 or -EINVAL with *why set. */
int ws_url_check(const char *url, const char **why);
/*
 * Connect.  Returns 0 with *ret set (then exactly one of open_cb / close_cb follows), or
 * -errno for what fails at once (bad URL, TLS files unreadable).  The strings of c are
 * copied.  *ret is freed after close_cb or by ws_free().
 */
int ws_connect(struct event_base *base, const struct ws_client_conf *c, const struct ws_opts *o,
	const struct ws_callbacks *cb, void *arg, struct ws **ret);
/* Queue a text message.  0, -ENOBUFS (max_pending), -ENOTCONN (closing or not open). */
int ws_send(struct ws *w, const char *data, size_t len);
/* Bytes queued and not yet written. */
size_t ws_pending(const struct ws *w);
/* Start a clean close (close frame with code and reason); close_cb follows. */
void ws_close(struct ws *w, uint16_t code, const char *reason);
/* Drop at once, without callbacks.  NULL is fine. */
void ws_free(struct ws *w);
/* The peer's address as text ("192.0.2.1", "unix"). */
const char *ws_peer(const struct ws *w);

#endif
