/*
 * api.h - egressd's REST API as its routes see it: requests, JSON replies, errors,
 * server-sent event streams.
 *
 * The server (api.c) listens where [api] says: TCP addresses (optionally TLS) and a UNIX
 * socket for egressctl.  It bounds headers and bodies, times out slow clients, finds the
 * route, checks who is asking (api_auth.c) and only then calls the route's handler.  A
 * handler runs on the loop, must not block, and answers before it returns (streams aside,
 * and a request it defers to answer later from the loop, once a thread has done the slow
 * part): exactly one api_reply_*() per request.
 *
 * Routes are tables: the daemon's own (uplinks, modules, config, events) and each module's
 * (struct module.api_routes), so a module adds endpoints in its own folder.
 *
 * JSON conventions (doc/egressd-api.7): bodies in and out are JSON objects; an error is
 * {"error": "what went wrong", "field": "the.json.path"} ("field" omitted when no field is
 * to blame) with 400 (bad JSON, unknown field, bad value), 401 (who are you?), 403 (not
 * allowed: read-only token, missing CSRF token), 404, 405 (with Allow), 409 (conflict, e.g.
 * nothing to confirm), 413, 429, 503 (module not running).  Bad input changes nothing.
 */
#ifndef EGRESS_API_H
#define EGRESS_API_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

struct api;
struct api_req;
struct api_stream;
struct ws;
struct ws_callbacks;
struct ws_opts;

/* What a route needs of its caller. */
enum api_access {
	API_OPEN,  /* anyone: /healthz, the login page and its assets */
	API_READ,  /* a session, or a token of either kind */
	API_ADMIN, /* a session (with the CSRF token for a state change), or an admin token */
	_API_ACCESS_MAX,
};

extern const char *const api_access_name[_API_ACCESS_MAX];

typedef void (*api_handler_cb)(struct api_req *r, void *arg);

struct api_route {
	enum evhttp_cmd_type method; /* EVHTTP_REQ_GET, _POST, _PATCH, _PUT, _DELETE */
	/*
	 * Literal segments and "{name}" placeholders, each matching one non-empty segment:
	 * "/api/uplinks/{name}".  A GET route answers HEAD too.
	 */
	const char *path;
	enum api_access access;
	api_handler_cb handler_cb;
	/*
	 * Module routes only: also called while the module is not running (arg is then
	 * NULL); otherwise the server answers 503 "module NAME is not running".
	 */
	bool when_stopped;
};

/* --- the request --- */

enum evhttp_cmd_type api_req_method(const struct api_req *r);
const char *api_req_path(const struct api_req *r);
/* A {name} placeholder's value (URI-decoded), or NULL. */
const char *api_req_param(const struct api_req *r, const char *name);
/* A query string value (?confirm=60s), or NULL. */
const char *api_req_query(const struct api_req *r, const char *key);
/*
 * ?confirm=DURATION of a change that rolls back unless confirmed ("60s", "5m"; a bare number
 * is seconds; 1s to 1h): *ret_ms, 0 without one.  A bad one has been answered 400 naming
 * "confirm": returns false and the handler returns.
 */
bool api_req_confirm(struct api_req *r, uint32_t *ret_ms);
const char *api_req_header(const struct api_req *r, const char *name);
/* The body (bounded by [api] max_body), NUL-terminated; *len_ret may be NULL. */
const char *api_req_body(const struct api_req *r, size_t *len_ret);
/*
 * The body parsed as a JSON object (borrowed; the request owns it).  On bad JSON or a body
 * that is not an object it has already replied 400 and returns NULL: the handler returns.
 */
json_t *api_req_json(struct api_req *r);
/* Who is asking, for the event log: "admin" (login), "token:NAME", "uid:0" (UNIX socket). */
const char *api_req_who(const struct api_req *r);
/* The peer's address as text ("192.0.2.1", "::1", "unix"). */
const char *api_req_peer(const struct api_req *r);
enum api_access api_req_access(const struct api_req *r); /* what the caller may do */
/* Did the request come over TLS?  (A session cookie is Secure then.) */
bool api_req_tls(const struct api_req *r);
/*
 * The CN of the client certificate this TLS connection showed and [api] tls_client_ca
 * verified, or NULL (no TLS, no certificate, one that did not verify, or no CN).  Borrowed
 * from the connection.
 */
const char *api_req_tls_peer(const struct api_req *r);
struct evhttp_request *api_req_evhttp(struct api_req *r);

/* --- replies: exactly one per request --- */

/* body is stolen (json_decref'd); NULL sends an empty object.  Sets Content-Type. */
void api_reply_json(struct api_req *r, int code, json_t *body);
/* {"error": fmt..., "field": field}; field may be NULL. */
void api_reply_error(struct api_req *r, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Raw bytes (copied), e.g. text/plain for GET /api/config. */
void api_reply_data(struct api_req *r, int code, const char *content_type, const void *data,
	size_t len);

/*
 * The handler answers later, from the loop (a thread does the slow part, e.g. a login's
 * scrypt): r stays valid after the handler returns, until its one api_reply_*() or
 * api_req_drop().  Meanwhile the connection may go: api_req_gone() then says so, and only
 * api_req_drop() may be called (api_req_peer() and the headers are gone with it: copy what
 * is needed before deferring).
 */
void api_req_defer(struct api_req *r);
bool api_req_gone(const struct api_req *r);
/* Free a deferred request without an answer (its client went), or answer it 503. */
void api_req_drop(struct api_req *r);

/*
 * Check a JSON object against the fields a request may carry: any other key gets 400
 * "unknown field" naming it (replied; returns false).  allowed: NULL-terminated.
 */
bool api_json_only(struct api_req *r, json_t *obj, const char *const *allowed);

/* --- WebSockets (src/ws/ws.h) --- */

/*
 * Upgrade the request to a WebSocket (RFC 6455): on a valid handshake, answer 101 and hand
 * the connection over from the HTTP server; returns the WebSocket (the caller's until its
 * close_cb, or ws_free()).  Otherwise answer 400 (not a WebSocket handshake, bad key) or
 * 426 (another version, or no Upgrade: websocket) and return NULL.  A handler checks who is
 * asking first (the route's access, api_req_tls_peer()).  The connection then no longer
 * counts among [api] max_clients nor has the request deadline ([api] timeout): o's
 * heartbeat bounds it.  If the API server stops first, close_cb runs ("server stopping").
 */
struct ws *api_ws_accept(struct api_req *r, const struct ws_opts *o, const struct ws_callbacks *cb,
	void *arg);

/* --- server-sent events (text/event-stream) --- */

/*
 * Turn the request into an event stream: sends the headers and keeps the connection.
 * close_cb runs once when the client goes or the server stops (then the stream is freed;
 * do not use it afterwards).  Returns NULL (after a 5xx reply) on failure.  Streams are
 * bounded in number ([api] max_streams) and in what they may have queued: a client that
 * does not read is dropped, it never grows egressd's memory.
 */
struct api_stream *api_stream_start(struct api_req *r, void (*close_cb)(struct api_stream *, void *),
	void *arg);
/* "event: EVENT\nid: ID\ndata: DATA\n\n"; event may be NULL, id 0 for none.  0 or -errno. */
int api_stream_send(struct api_stream *s, const char *event, unsigned long long id,
	const char *data);
/* Close from our side (close_cb runs). */
void api_stream_close(struct api_stream *s);

#endif
