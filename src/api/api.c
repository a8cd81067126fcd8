/*
 * api.c - egressd's REST API server: listeners, connections, requests, replies, streams.
 *
 * One evhttp server per listener (the TCP addresses of [api] listen, with TLS when a
 * certificate is given, and the UNIX socket for egressctl), all on the daemon's loop and
 * all answering through api_request_cb(): take the path apart (api_route.c), find its
 * route in the tables the daemon passes, ask api_auth.c whether the caller may, then call
 * the handler.  Besides the routes: /healthz (open), /metrics ([api] metrics = yes) and the
 * dashboard's static files (api_static.c).
 *
 * Bounds, so that no client grows egressd's memory or holds others out: evhttp bounds a
 * request's head and body; each connection must complete its request within [api] timeout
 * from its start (or from its previous answer), else it is closed - a client that sends a
 * byte now and then (slowloris) gains nothing; at [api] max_clients connections a new one
 * closes the oldest that is still sending its request; streams are few ([api] max_streams)
 * and a stream whose client does not read is dropped.
 *
 * evhttp (libevent 2.1) tells a server nothing of its connections before their first
 * request is complete, so the server learns of each one from the bufferevent it makes for
 * it (evhttp_set_bevcb), and takes the connection on the same loop turn, once evhttp has
 * wrapped it (conn_take_cb); the connection's close callback then says when it goes.
 *
 * Must not block the loop (static files are read from local disk, small); must not trust
 * anything a client sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "api_auth.h"
#include "api_conf.h"
#include "api_int.h"
#include "api_metrics.h"
#include "api_route.h"
#include "api_server.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "uplink.h"
#include "util.h"
#include "ws_handshake.h"
#include "ws_int.h"

#define API_BACKLOG 64
/* The most a reply's write sends at once (a UNIX socket takes about 200 kB). */
#define API_MAX_SINGLE_WRITE (1024 * 1024)
/* What a stream may have queued for a client that does not read; beyond, it is dropped. */
#define API_STREAM_QUEUE_MAX (256 * 1024)
/* A comment line on every stream this often: a client gone is noticed, proxies keep it. */
#define API_STREAM_KEEPALIVE_S 15
/* ?confirm= of a commit-confirmed change */
#define API_CONFIRM_MIN_MS 1000
#define API_CONFIRM_MAX_MS (3600 * 1000)
#define API_METHODS                                                                                \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
		EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

enum api_listener_kind {
	API_LISTEN_TCP,
	API_LISTEN_UNIX,
};

struct api_listener {
	struct api *api;
	enum api_listener_kind kind;
	bool tls;
	struct evhttp *http;
	char name[128]; /* "127.0.0.1:8090", "unix:/run/egress/egressd.sock" */
};

struct api_conn {
	struct api *api;
	struct api_listener *l;
	struct api_conn *prev, *next;	 /* api->conns, oldest first */
	struct bufferevent *bev;	 /* ours until evhttp wraps it */
	struct evhttp_connection *evcon; /* NULL until taken */
	struct event *take;		 /* conn_take_cb, on the loop turn it came */
	struct event *deadline;		 /* its request must be complete by then */
	struct api_peer peer;
	bool busy;		  /* a request is being answered */
	struct api_stream *stream; /* the event stream it carries */
	struct api_req *deferred;  /* its request, answered later (api_req_defer()) */
	struct ws *ws;		  /* the WebSocket it was upgraded to (api_ws_accept()) */
	bool upgraded;		  /* then it no longer counts among the API's clients */
	bool tls_peer_done;	  /* tls_peer is known */
	char tls_peer[256];	  /* the verified client certificate's CN, or "" */
};

struct api_stream {
	struct api_conn *c;
	struct evhttp_request *req;
	void (*close_cb)(struct api_stream *, void *);
	void *arg;
	struct event *keepalive;
	struct event *drop; /* a client that does not read goes on the next loop turn */
	bool dropping;
};

struct api {
	struct api_env env;
	const struct conf_api *conf;
	struct api_auth *auth;
	SSL_CTX *tls;
	struct api_listener **listeners;
	size_t n_listeners;
	bool socket_bound; /* conf->socket is ours to unlink */
	char *socket_path;
	struct event *rebuild; /* api_reconf: replace the listeners on the next loop turn */
	struct api_conn *conns, *conns_tail;
	size_t n_conns, n_streams;
	struct api_metrics metrics; /* egress_api_* */
	struct api_route_table *tables; /* [0]: authentication's, then api_set_routes()' */
	size_t n_tables;
	/* what the listeners were made from, to tell whether a reload changes them */
	char *listen_key;
};

/* ---------------------------------------------------------------- connections */

static void conn_unlink(struct api_conn *c)
{
	struct api *a = c->api;

	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		a->conns_tail = c->prev;
	if (!c->upgraded)
		a->n_conns--;
}

static void stream_free(struct api_stream *s, bool notify)
{
	struct api *a = s->c->api;

	s->c->stream = NULL;
	a->n_streams--;
	api_metrics_streams(&a->metrics, (unsigned)a->n_streams);
	if (s->keepalive)
		event_free(s->keepalive);
	if (s->drop)
		event_free(s->drop);
	if (notify && s->close_cb)
		s->close_cb(s, s->arg);
	free(s);
}

static void conn_free(struct api_conn *c)
{
	conn_unlink(c);
	if (c->stream)
		stream_free(c->stream, true);
	event_free(c->take);
	event_free(c->deadline);
	free(c);
}

/* evhttp closes the connection (client gone, timeout, answered with close, server freed). */
static void conn_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct api_conn *c = arg;
	struct evhttp_request *orphan = NULL;

	(void)evcon;
	if (c->ws) {
		/* the server stops under a WebSocket (its own end releases it first) */
		struct ws *w = c->ws;

		c->ws = NULL;
		ws_server_lost(w);
	}
	/* A stream's client went (EOF, error, timeout): libevent has already taken the
	 * request off the connection, which it then frees without it, and leaves the request
	 * to whoever answers it - ending the reply frees it.  Closed any other way, the request
	 * is still the connection's and goes with it. */
	if (c->stream && !evhttp_request_get_connection(c->stream->req))
		orphan = c->stream->req;
	/* The same for a request answered later: its owner learns it is gone. */
	if (c->deferred) {
		struct api_req *r = c->deferred;

		if (!evhttp_request_get_connection(r->req))
			evhttp_request_free(r->req);
		r->req = NULL;
		r->conn = NULL;
		c->deferred = NULL;
	}
	conn_free(c);
	if (orphan)
		evhttp_send_reply_end(orphan);
}

/* Its request did not come in time: close it (evhttp then frees it and calls close). */
static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api_conn *c = arg;

	(void)fd;
	(void)what;
	log_debug("api: %s: %s: request not complete in time, closing", c->l->name,
		c->peer.addr);
	evhttp_connection_free(c->evcon);
}

static void conn_arm_deadline(struct api_conn *c)
{
	struct timeval tv = {
		.tv_sec = c->api->conf->timeout_ms / 1000,
		.tv_usec = (c->api->conf->timeout_ms % 1000) * 1000,
	};

	event_add(c->deadline, &tv);
}

static void conn_peer(struct api_conn *c, evutil_socket_t fd)
{
	struct api_peer *p = &c->peer;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr addr;
	uint16_t port;

	p->tls = c->l->tls;
	if (c->l->kind == API_LISTEN_UNIX) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		gid_t groups[API_PEER_GROUPS];
		socklen_t glen = sizeof(groups);

		p->unix_socket = true;
		snprintf(p->addr, sizeof(p->addr), "unix");
		p->uid = (uid_t)-1;
		p->gid = (gid_t)-1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
			p->uid = cred.uid;
			p->gid = cred.gid;
		}
		/* ERANGE with more groups than we take: the first ones are enough to tell
		 * most callers; a member of many groups may need its primary group. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			p->n_groups = glen / sizeof(gid_t);
		memcpy(p->groups, groups, p->n_groups * sizeof(gid_t));
		return;
	}
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
		addr_from_sockaddr((struct sockaddr *)&ss, &addr, &port) == 0)
		addr_str(&addr, p->addr, sizeof(p->addr));
	else
		snprintf(p->addr, sizeof(p->addr), "?");
}

static int addr_cmp_cb(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The peer address that holds the most connections, into buf. */
static void busiest_peer(const struct api *a, char *buf, size_t len)
{
	const char **v = xmalloc(a->n_conns * sizeof(*v));
	size_t n = 0, best = 0;

	for (const struct api_conn *c = a->conns; c; c = c->next)
		if (c->evcon && !c->upgraded)
			v[n++] = c->peer.addr;
	qsort(v, n, sizeof(*v), addr_cmp_cb);
	buf[0] = '\0';
	for (size_t i = 0, run = 1; i < n; i++, run++) {
		if (i + 1 < n && streq(v[i], v[i + 1]))
			continue;
		if (run > best) {
			best = run;
			snprintf(buf, len, "%s", v[i]);
		}
		run = 0;
	}
	free(v);
}

/*
 * At max_clients: a connection still waiting for its request goes, the oldest of the peer
 * that holds the most connections (then the oldest of any peer), so that one address that
 * opens connection after connection (slowloris) makes room with its own.
 */
static bool conn_evict(struct api *a, const struct api_conn *keep)
{
	char top[ADDR_STRLEN];

	busiest_peer(a, top, sizeof(top));
	for (int pass = 0; pass < 2; pass++)
		for (struct api_conn *c = a->conns; c; c = c->next)
			if (c != keep && c->evcon && !c->busy && !c->stream &&
				(pass || streq(c->peer.addr, top))) {
				log_debug("api: %s: %s: %zu clients, closing its oldest waiting one",
					c->l->name, c->peer.addr, a->n_conns);
				evhttp_connection_free(c->evcon);
				return true;
			}
	return false;
}

/*
 * The loop turn a connection came: evhttp has wrapped our bufferevent in its connection,
 * which is the bufferevent's callback argument (evhttp sets its callbacks with the
 * connection as their argument).  We held a reference to the bufferevent, so that if evhttp
 * gave up on the connection meanwhile (it clears the callbacks when it frees it) we see it
 * instead of touching freed memory.
 */
static void conn_take_cb(evutil_socket_t fd_unused, short what, void *arg)
{
	struct api_conn *c = arg;
	struct api *a = c->api;
	bufferevent_data_cb readcb = NULL;
	void *cbarg = NULL;

	(void)fd_unused;
	(void)what;
	bufferevent_getcb(c->bev, &readcb, NULL, NULL, &cbarg);
	if (!readcb || !cbarg) {
		bufferevent_decref(c->bev);
		conn_free(c);
		return;
	}
	c->evcon = cbarg;
	conn_peer(c, bufferevent_getfd(c->bev));
	bufferevent_decref(c->bev);
	c->bev = NULL;
	evhttp_connection_set_closecb(c->evcon, conn_close_cb, c);
	conn_arm_deadline(c);
	if (a->n_conns > (size_t)a->conf->max_clients && !conn_evict(a, c)) {
		log_debug("api: %s: %s: %zu clients, none waiting: closing the new one",
			c->l->name, c->peer.addr, a->n_conns);
		evhttp_connection_free(c->evcon);
	}
}

/* evhttp wants a bufferevent for a connection it accepted: ours, so we know of it. */
static struct bufferevent *conn_bev_cb(struct event_base *base, void *arg)
{
	struct api_listener *l = arg;
	struct api *a = l->api;
	struct api_conn *c = xcalloc(1, sizeof(*c));
	SSL *ssl = NULL;

	c->api = a;
	c->l = l;
	if (l->tls) {
		ssl = SSL_new(a->tls);
		if (ssl)
			c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
				BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		else if (ssl)
			SSL_free(ssl);
	} else {
		c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		/*
		 * A reply in as few writes as the socket takes (libevent's default is 16 kB a
		 * loop turn): GET /devices with 200 devices, about 170 kB, took 11 turns, and a
		 * loop busy with a burst of leases made that seconds.
		 */
		if (c->bev)
			bufferevent_set_max_single_write(c->bev, API_MAX_SINGLE_WRITE);
	}
	c->take = event_new(base, -1, 0, conn_take_cb, c);
	c->deadline = evtimer_new(base, conn_deadline_cb, c);
	if (!c->bev || !c->take || !c->deadline)
		fatalx("api: out of memory for a connection");
	bufferevent_incref(c->bev);
	c->prev = a->conns_tail;
	if (a->conns_tail)
		a->conns_tail->next = c;
	else
		a->conns = c;
	a->conns_tail = c;
	a->n_conns++;
	event_active(c->take, 0, 0);
	return c->bev;
}

static struct api_conn *conn_of(struct api *a, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	for (struct api_conn *c = a->conns; c; c = c->next)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

/* ---------------------------------------------------------------- replies */

static const char *reason(int code)
{
	switch (code) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return code < 300 ? "OK" : code < 500 ? "Bad Request" : "Error";
	}
}

static void req_finish(struct api *a, struct api_req *r);

static void reply_bytes(struct api_req *r, int code, const char *content_type, const void *data,
	size_t len, void (*cleanup)(const void *, size_t, void *))
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *buf = evbuffer_new();
	char clen[24];

	/* answered later: finished here (evhttp may close the connection on the way) */
	struct api *finish = r->deferred && !r->in_dispatch ? r->conn->api : NULL;

	if (r->replied)
		fatalx("api: %s %s: a second reply", api_method_name(r->method), r->raw_path);
	if (finish)
		r->conn->deferred = NULL;
	r->replied = true;
	r->status = code;
	if (!buf)
		fatalx("api: out of memory for a reply");
	if (content_type)
		evhttp_add_header(h, "Content-Type", content_type);
	if (code == 405 && r->allow[0])
		evhttp_add_header(h, "Allow", r->allow);
	if (code == 401)
		evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"egressd\"");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	snprintf(clen, sizeof(clen), "%zu", len);
	evhttp_add_header(h, "Content-Length", clen);
	if (r->method != EVHTTP_REQ_HEAD && len) {
		if (cleanup)
			evbuffer_add_reference(buf, data, len, cleanup, NULL);
		else
			evbuffer_add(buf, data, len);
	} else if (cleanup) {
		cleanup(data, len, NULL);
	}
	evhttp_send_reply(r->req, code, reason(code), buf);
	evbuffer_free(buf);
	if (finish)
		req_finish(finish, r);
}

void api_reply_data(struct api_req *r, int code, const char *content_type, const void *data,
	size_t len)
{
	reply_bytes(r, code, content_type, data, len, NULL);
}

static void free_dump_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);
}

void api_reply_json(struct api_req *r, int code, json_t *body)
{
	char *text;

	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-store");
	if (!body)
		body = json_object();
	text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(body);
	if (!text)
		fatalx("api: out of memory for a JSON reply");
	/* one line, like every JSON API a shell user pipes to jq */
	size_t len = strlen(text);
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	text[len] = '\0';
	reply_bytes(r, code, "application/json", text, len, free_dump_cb);
}

void api_reply_error(struct api_req *r, int code, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_pack("{ss}", "error", msg);
	if (field)
		json_object_set_new(o, "field", json_string(field));
	api_reply_json(r, code, o);
}

bool api_json_only(struct api_req *r, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		bool ok = false;

		for (size_t i = 0; allowed && allowed[i] && !ok; i++)
			ok = streq(key, allowed[i]);
		if (!ok) {
			api_reply_error(r, 400, key, "unknown field \"%s\"", key);
			return false;
		}
	}
	return true;
}

bool api_req_confirm(struct api_req *r, uint32_t *ret_ms)
{
	const char *v = api_req_query(r, "confirm");
	uint32_t ms;

	*ret_ms = 0;
	if (!v)
		return true;
	if (conf_parse_duration(v, &ms) < 0 || ms < API_CONFIRM_MIN_MS || ms > API_CONFIRM_MAX_MS) {
		api_reply_error(r, 400, "confirm",
			"expected a duration from 1s to 1h (60s, 5m), got \"%s\"", v);
		return false;
	}
	*ret_ms = ms;
	return true;
}

/* ---------------------------------------------------------------- the request */

enum evhttp_cmd_type api_req_method(const struct api_req *r)
{
	return r->method;
}

const char *api_req_path(const struct api_req *r)
{
	return r->raw_path;
}

const char *api_req_param(const struct api_req *r, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < r->match.n_params; i++)
		if (r->match.params[i].name_len == len &&
			memcmp(r->match.params[i].name, name, len) == 0)
			return r->match.params[i].value;
	return NULL;
}

const char *api_req_query(const struct api_req *r, const char *key)
{
	struct api_req *w = (struct api_req *)(uintptr_t)r;

	if (!w->query_parsed) {
		const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
		const char *q = uri ? evhttp_uri_get_query(uri) : NULL;

		w->query_parsed = true;
		TAILQ_INIT(&w->query);
		if (q && evhttp_parse_query_str(q, &w->query) < 0) {
			evhttp_clear_headers(&w->query);
			TAILQ_INIT(&w->query);
		}
	}
	return evhttp_find_header(&w->query, key);
}

const char *api_req_header(const struct api_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

const char *api_req_body(const struct api_req *r, size_t *len_ret)
{
	struct api_req *w = (struct api_req *)(uintptr_t)r;

	if (!w->body) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r->req);

		w->body_len = evbuffer_get_length(in);
		w->body = xmalloc(w->body_len + 1);
		evbuffer_copyout(in, w->body, w->body_len);
		w->body[w->body_len] = '\0';
	}
	if (len_ret)
		*len_ret = w->body_len;
	return w->body;
}

json_t *api_req_json(struct api_req *r)
{
	json_error_t err;
	size_t len;
	const char *body;

	if (r->json)
		return r->json;
	body = api_req_body(r, &len);
	if (!len) {
		api_reply_error(r, 400, NULL, "expected a JSON object, got an empty body");
		return NULL;
	}
	r->json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!r->json) {
		api_reply_error(r, 400, NULL, "bad JSON at line %d column %d: %s", err.line,
			err.column, err.text);
		return NULL;
	}
	if (!json_is_object(r->json)) {
		json_decref(r->json);
		r->json = NULL;
		api_reply_error(r, 400, NULL, "expected a JSON object");
		return NULL;
	}
	return r->json;
}

const char *api_req_who(const struct api_req *r)
{
	return r->caller.who;
}

const char *api_req_peer(const struct api_req *r)
{
	return r->conn->peer.addr;
}

enum api_access api_req_access(const struct api_req *r)
{
	return r->caller.access;
}

bool api_req_tls(const struct api_req *r)
{
	return r->conn->peer.tls;
}

struct evhttp_request *api_req_evhttp(struct api_req *r)
{
	return r->req;
}

/* ---------------------------------------------------------------- streams */

static void stream_drop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api_stream *s = arg;

	(void)fd;
	(void)what;
	log_debug("api: %s: event stream not read, dropping it", s->c->peer.addr);
	evhttp_connection_free(s->c->evcon); /* close_cb runs from conn_close_cb */
}

static void stream_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	api_stream_send(arg, NULL, 0, NULL);
}

struct api_stream *api_stream_start(struct api_req *r, void (*close_cb)(struct api_stream *, void *),
	void *arg)
{
	struct api *a = r->conn->api;
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct timeval tv = {.tv_sec = API_STREAM_KEEPALIVE_S};
	struct api_stream *s;

	if (a->n_streams >= (size_t)a->conf->max_streams) {
		api_reply_error(r, 503, NULL, "too many event streams (max_streams %d)",
			a->conf->max_streams);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->c = r->conn;
	s->req = r->req;
	s->close_cb = close_cb;
	s->arg = arg;
	s->keepalive = event_new(a->env.base, -1, EV_PERSIST, stream_keepalive_cb, s);
	s->drop = event_new(a->env.base, -1, 0, stream_drop_cb, s);
	if (!s->keepalive || !s->drop)
		fatalx("api: out of memory for a stream");
	event_add(s->keepalive, &tv);
	r->conn->stream = s;
	a->n_streams++;
	api_metrics_streams(&a->metrics, (unsigned)a->n_streams);
	r->replied = true;
	r->status = 200;
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	evhttp_send_reply_start(r->req, 200, "OK");
	/*
	 * The client has asked; from now on it only listens.  evhttp's read timeout would
	 * close every stream that went [api] timeout without an event; a stalled write still
	 * drops it (and the queue bound above).
	 */
	struct timeval wtv = {
		.tv_sec = a->conf->timeout_ms / 1000,
		.tv_usec = (a->conf->timeout_ms % 1000) * 1000,
	};
	bufferevent_set_timeouts(evhttp_connection_get_bufferevent(r->conn->evcon), NULL, &wtv);
	return s;
}

int api_stream_send(struct api_stream *s, const char *event, unsigned long long id,
	const char *data)
{
	struct evhttp_connection *evcon = s->c->evcon;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	struct evbuffer *buf;

	if (s->dropping)
		return -ENOBUFS;
	if (evbuffer_get_length(bufferevent_get_output(bev)) > API_STREAM_QUEUE_MAX) {
		s->dropping = true;
		event_active(s->drop, 0, 0);
		return -ENOBUFS;
	}
	buf = evbuffer_new();
	if (!buf)
		return -ENOMEM;
	if (!event && !id && !data) {
		evbuffer_add_printf(buf, ":\n\n");
	} else {
		if (event)
			evbuffer_add_printf(buf, "event: %s\n", event);
		if (id)
			evbuffer_add_printf(buf, "id: %llu\n", id);
		/* a data line per line of data: a newline in it must not end the event */
		for (const char *p = data ? data : ""; ;) {
			const char *nl = strchrnul(p, '\n');

			evbuffer_add_printf(buf, "data: %.*s\n", (int)(nl - p), p);
			if (!*nl)
				break;
			p = nl + 1;
		}
		evbuffer_add(buf, "\n", 1);
	}
	evhttp_send_reply_chunk(s->req, buf);
	evbuffer_free(buf);
	return 0;
}

void api_stream_close(struct api_stream *s)
{
	struct evhttp_request *req = s->req;

	stream_free(s, true);
	evhttp_send_reply_end(req);
}

/* ---------------------------------------------------------------- WebSockets */

/* The WebSocket is over: its connection goes (conn_close_cb then frees c). */
static void ws_release_cb(void *arg)
{
	struct api_conn *c = arg;

	c->ws = NULL;
	evhttp_connection_free(c->evcon);
}

/*
 * RFC 6455 4.2: check the upgrade, answer 101 on the connection's bufferevent ourselves and
 * leave the request unanswered for evhttp: the connection stays evhttp's (its callbacks
 * replaced by the WebSocket's) until the WebSocket releases it, so that evhttp frees it in
 * one place whichever side ends first.  The request's deadline was stopped when the request
 * came and is not armed again; the WebSocket has its own heartbeat.
 */
struct ws *api_ws_accept(struct api_req *r, const struct ws_opts *o, const struct ws_callbacks *cb,
	void *arg)
{
	struct api_conn *c = r->conn;
	struct api *a = c->api;
	const char *key = api_req_header(r, "Sec-WebSocket-Key");
	char accept[WS_ACCEPT_LEN + 1];
	struct bufferevent *bev;
	const char *why = "";
	int code;

	code = ws_handshake_check(r->method == EVHTTP_REQ_GET, api_req_header(r, "Upgrade"),
		api_req_header(r, "Connection"), api_req_header(r, "Sec-WebSocket-Version"), key,
		&why);
	if (code) {
		if (code == 426) {
			struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

			evhttp_add_header(h, "Upgrade", "websocket");
			evhttp_add_header(h, "Sec-WebSocket-Version", "13");
		}
		api_reply_error(r, code, NULL, "%s", why);
		return NULL;
	}
	if (c->stream || c->ws)
		fatalx("api: %s: a WebSocket on a connection already taken", c->peer.addr);
	ws_handshake_accept(key, accept);
	bev = evhttp_connection_get_bufferevent(c->evcon);
	evbuffer_add_printf(bufferevent_get_output(bev),
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		accept);
	r->replied = true;
	r->status = 101;
	c->upgraded = true;
	a->n_conns--;
	log_debug("api: %s: %s %s: WebSocket", c->l->name, c->peer.addr, r->raw_path);
	c->ws = ws_server_new(a->env.base, bev, c->peer.addr, o, cb, arg, ws_release_cb, c);
	return c->ws;
}

/* The CN of the client certificate the TLS handshake verified, into c->tls_peer. */
static void tls_peer_cn(struct api_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(c->evcon));
	X509 *x = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	int n;

	c->tls_peer[0] = '\0';
	if (x && SSL_get_verify_result(ssl) == X509_V_OK) {
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
			c->tls_peer, sizeof(c->tls_peer));
		/* none, too long, or a NUL inside: no name we could trust */
		if (n <= 0 || (size_t)n != strlen(c->tls_peer))
			c->tls_peer[0] = '\0';
	}
	X509_free(x);
}

const char *api_req_tls_peer(const struct api_req *r)
{
	struct api_conn *c = r->conn;

	if (!c->tls_peer_done) {
		c->tls_peer_done = true;
		if (c->peer.tls)
			tls_peer_cn(c);
	}
	return c->tls_peer[0] ? c->tls_peer : NULL;
}

/* ---------------------------------------------------------------- built-in routes */

/* GET /healthz: for load balancers and monitors, no credentials.  A server without
 * uplinks (egress-server) is healthy while it answers. */
static void healthz(struct api_req *r)
{
	const struct uplink_set *set = r->conn->api->env.uplinks;
	size_t usable = 0, n = set ? set->n : 0;

	if (r->conn->api->env.no_uplinks) {
		api_reply_json(r, 200, json_pack("{ss}", "status", "ok"));
		return;
	}
	for (size_t i = 0; i < n; i++)
		usable += uplink_usable(set->v[i]);
	api_reply_json(r, usable ? 200 : 503,
		json_pack("{sssIsI}", "status", usable ? "ok" : "unavailable", "uplinks",
			(json_int_t)n, "usable", (json_int_t)usable));
}

/* ---------------------------------------------------------------- dispatch */

static bool is_state_change(enum evhttp_cmd_type m)
{
	return m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_OPTIONS;
}

/* Who asks, and may they?  false: answered. */
static bool authorize(struct api_req *r, enum api_access need)
{
	const char *err = "not allowed";
	int code = api_auth_check(r->conn->api->auth, r->req, &r->conn->peer, need,
		is_state_change(r->method), &r->caller, &err);

	if (code == 0)
		return true;
	api_reply_error(r, code, NULL, "%s", err);
	return false;
}

static void dispatch(struct api_req *r)
{
	struct api *a = r->conn->api;
	int code;

	if (streq(r->raw_path, "/healthz")) {
		r->route = "/healthz";
		if (r->method == EVHTTP_REQ_GET || r->method == EVHTTP_REQ_HEAD) {
			if (authorize(r, API_OPEN)) /* else 429: a bearer token guessed too often */
				healthz(r);
		} else {
			snprintf(r->allow, sizeof(r->allow), "GET, HEAD");
			api_reply_error(r, 405, NULL, "use GET or HEAD");
		}
		return;
	}
	if (streq(r->raw_path, "/metrics") && a->conf->metrics) {
		r->route = "/metrics";
		if (authorize(r, API_READ)) {
			r->replied = true;
			/* as metrics_http_reply() answers */
			r->status = r->method == EVHTTP_REQ_GET || r->method == EVHTTP_REQ_HEAD ? 200 : 405;
			metrics_http_reply(a->env.metrics, r->req);
		}
		return;
	}
	code = api_route_find(a->tables, a->n_tables, r->method, &r->path, &r->match);
	if (code == 404 && api_static_serve(r, a->conf->web_root, a->env.index)) {
		r->route = API_METRICS_STATIC;
		return;
	}
	if (code == 404) {
		api_reply_error(r, 404, NULL, "no such resource: %s", r->raw_path);
		return;
	}
	if (code == 405) {
		snprintf(r->allow, sizeof(r->allow), "%s", r->match.allow);
		api_reply_error(r, 405, NULL, "%s is not allowed here (allowed: %s)",
			api_method_name(r->method), r->allow);
		return;
	}
	r->route = r->match.route->path;
	/* who asks comes first: a caller without the right learns nothing of the modules */
	if (!authorize(r, r->match.route->access))
		return;
	if (r->match.table->module && !r->match.table->running && !r->match.route->when_stopped) {
		api_reply_error(r, 503, NULL, "module %s is not running", r->match.table->module);
		return;
	}
	r->match.route->handler_cb(r, r->match.table->running ? r->match.table->arg : NULL);
	if (!r->replied && !r->deferred) {
		log_warnx("api: %s %s: the handler did not answer", api_method_name(r->method),
			r->raw_path);
		api_reply_error(r, 500, NULL, "internal error: no answer");
	}
}

/* The connection answered its request: the next one must come in time too. */
static void request_done_cb(struct evhttp_request *req, void *arg)
{
	struct api_conn *c = arg;

	(void)req;
	c->busy = false;
	conn_arm_deadline(c);
}

/* For the requests' durations: now_ms() is too coarse for a status read. */
static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* r was answered (or its client went: a NULL): count it in a's metrics and free it. */
static void req_finish(struct api *a, struct api_req *r)
{
	if (r->replied && a)
		api_metrics_request(&a->metrics, r->route, api_method_name(r->method), r->status,
			(double)(mono_us() - r->start_us) / 1e6);
	if (r->query_parsed)
		evhttp_clear_headers(&r->query);
	json_decref(r->json);
	free(r->body);
	free(r);
}

void api_req_defer(struct api_req *r)
{
	if (r->replied || r->deferred || r->conn->deferred)
		fatalx("api: %s %s: deferred twice or after its answer", api_method_name(r->method),
			r->raw_path);
	r->deferred = true;
	r->conn->deferred = r;
}

bool api_req_gone(const struct api_req *r)
{
	return !r->req;
}

void api_req_drop(struct api_req *r)
{
	if (!r->deferred)
		fatalx("api: dropping a request that was not deferred");
	if (!api_req_gone(r)) {
		api_reply_error(r, 503, NULL, "the server is stopping");
		return;
	}
	req_finish(NULL, r);
}

static void api_request_cb(struct evhttp_request *req, void *arg)
{
	struct api_listener *l = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct api_req *r;

	r = xcalloc(1, sizeof(*r));
	r->req = req;
	r->method = evhttp_request_get_command(req);
	r->route = API_METRICS_UNMATCHED;
	r->start_us = mono_us();
	r->conn = conn_of(l->api, req);
	if (!r->conn) {
		/* cannot happen: every connection comes through conn_bev_cb */
		log_warnx("api: %s: a request from an unknown connection", l->name);
		evhttp_send_error(req, 503, NULL);
		free(r);
		return;
	}
	event_del(r->conn->deadline);
	r->conn->busy = true;
	evhttp_request_set_on_complete_cb(req, request_done_cb, r->conn);
	snprintf(r->raw_path, sizeof(r->raw_path), "%s", path && *path ? path : "/");
	if (!path || strlen(path) > API_PATH_MAX || api_path_parse(*path ? path : "/", &r->path) < 0)
		api_reply_error(r, 400, NULL, "bad request path");
	else {
		r->in_dispatch = true;
		dispatch(r);
		r->in_dispatch = false;
	}
	/* a deferred request is finished by its answer (reply_bytes) or api_req_drop() */
	if (r->deferred && !r->replied)
		return;
	if (r->deferred)
		r->conn->deferred = NULL;
	req_finish(l->api, r);
}

/* ---------------------------------------------------------------- listeners */

static void listener_free(struct api_listener *l)
{
	if (!l)
		return;
	if (l->http)
		evhttp_free(l->http); /* every connection: conn_close_cb */
	free(l);
}

/* An evhttp server on the listening socket fd (owned from here on). */
static int listener_add(struct api *a, enum api_listener_kind kind, bool tls, int fd,
	const char *name)
{
	struct api_listener *l = xcalloc(1, sizeof(*l));

	l->api = a;
	l->kind = kind;
	l->tls = tls;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->http = evhttp_new(a->env.base);
	if (!l->http) {
		close(fd);
		free(l);
		return -ENOMEM;
	}
	evhttp_set_allowed_methods(l->http, API_METHODS);
	evhttp_set_max_headers_size(l->http, (ev_ssize_t)a->conf->max_headers);
	evhttp_set_max_body_size(l->http, (ev_ssize_t)a->conf->max_body);
	/* idle and stalled writes; the whole request is bounded by the deadline */
	evhttp_set_timeout(l->http, (int)((a->conf->timeout_ms + 999) / 1000));
	evhttp_set_bevcb(l->http, conn_bev_cb, l);
	evhttp_set_gencb(l->http, api_request_cb, l);
	if (!evhttp_accept_socket_with_handle(l->http, fd)) {
		close(fd);
		listener_free(l);
		return -ENOMEM;
	}
	a->listeners = xrealloc(a->listeners, (a->n_listeners + 1) * sizeof(*a->listeners));
	a->listeners[a->n_listeners++] = l;
	return 0;
}

static int listen_tcp(struct api *a, const char *word)
{
	struct api_endpoint e;
	char addr[ADDR_STRLEN], name[128];
	uint16_t port;
	int fd, r;

	if (api_endpoint_parse(word, &e) < 0)
		return -EINVAL; /* validated already */
	if (addr_is_set(&e.addr))
		addr_str(&e.addr, addr, sizeof(addr));
	r = tcp_listen(addr_is_set(&e.addr) ? addr : NULL, e.port, API_BACKLOG, &fd, &port);
	if (r < 0) {
		log_error("api: cannot listen on %s: %s", word, strerror(-r));
		return r;
	}
	snprintf(name, sizeof(name), "%s", word);
	r = listener_add(a, API_LISTEN_TCP, a->tls != NULL, fd, name);
	if (r < 0)
		log_error("api: %s: %s", word, strerror(-r));
	else
		log_info("api: serving %s://%s/", a->tls ? "https" : "http", word);
	return r;
}

/* Make the socket's folder (0755) if it is missing, as /run/egress is after a boot. */
static int socket_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Is a server answering on the UNIX socket path?  Then it is not ours to take. */
static bool socket_alive(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return alive;
}

static int listen_unix(struct api *a, const char *path, const char *group)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct group *g;
	char name[sizeof(sun.sun_path) + 8];
	int fd = -1, r;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	r = socket_dir(path);
	if (r < 0)
		goto fail;
	if (socket_alive(&sun)) {
		r = -EADDRINUSE;
		goto fail;
	}
	unlink(path); /* a socket an earlier run left */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		goto fail;
	}
	a->socket_bound = true;
	free(a->socket_path);
	a->socket_path = xstrdup(path);
	/* root and the group; the kernel's credentials decide again per request */
	g = getgrnam(group);
	if (chmod(path, g ? 0660 : 0600) < 0 || (g && chown(path, 0, g->gr_gid) < 0))
		log_warn("api: %s: cannot give the socket to group %s", path, group);
	if (listen(fd, API_BACKLOG) < 0) {
		r = -errno;
		goto fail;
	}
	snprintf(name, sizeof(name), "unix:%s", path);
	r = listener_add(a, API_LISTEN_UNIX, false, fd, name);
	fd = -1;
	if (r < 0)
		goto fail;
	log_info("api: serving the UNIX socket %s", path);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	log_error("api: cannot listen on the UNIX socket %s: %s", path,
		r == -EADDRINUSE ? "another egressd answers there" : strerror(-r));
	return r;
}

static void listeners_close(struct api *a)
{
	for (size_t i = 0; i < a->n_listeners; i++)
		listener_free(a->listeners[i]);
	FREE_AND_NULL(a->listeners);
	a->n_listeners = 0;
	if (a->socket_bound)
		unlink(a->socket_path);
	a->socket_bound = false;
	FREE_AND_NULL(a->socket_path);
	if (a->tls)
		SSL_CTX_free(a->tls);
	a->tls = NULL;
}

/* A client certificate always passes the handshake: whether it verified is api_req_tls_peer()'s. */
static int tls_verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	(void)preverify_ok;
	(void)x;
	return 1;
}

/*
 * [api] tls_client_ca: ask every client for a certificate, signed by these CAs.  One is
 * optional; one that does not verify does not end the handshake either (the client may
 * still log in or show a token): it only names nobody.
 */
static int tls_client_ca(SSL_CTX *ctx, const char *file)
{
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(file);
	unsigned long e;
	char err[256];

	if (!names || SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
		e = ERR_get_error();
		ERR_error_string_n(e, err, sizeof(err));
		ERR_clear_error();
		log_error("api: TLS: cannot use tls_client_ca %s: %s", file,
			e ? err : "no certificate in it");
		if (names)
			sk_X509_NAME_pop_free(names, X509_NAME_free);
		return -EINVAL;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"egress-api", 10);
	return 0;
}

static int tls_load(struct api *a, const struct conf_api *c)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	unsigned long e;
	char err[256];

	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
		SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
		SSL_CTX_check_private_key(ctx) != 1) {
		e = ERR_get_error();
		ERR_error_string_n(e, err, sizeof(err));
		ERR_clear_error();
		log_error("api: TLS: cannot use tls_cert %s and tls_key %s: %s", c->tls_cert,
			c->tls_key, err);
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	if (c->tls_client_ca && tls_client_ca(ctx, c->tls_client_ca) < 0) {
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	a->tls = ctx;
	return 0;
}

/* What the listeners are made of, as one string: a reload compares them. */
static char *listen_key(const struct conf_api *c)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		fatalx("api: out of memory");
	for (size_t i = 0; i < c->listen.n; i++)
		fprintf(f, "%s,", c->listen.v[i]);
	fprintf(f, "|%s|%s|%s|%s|%s|%d|%d|%u", c->socket, c->socket_group,
		c->tls_cert ? c->tls_cert : "", c->tls_key ? c->tls_key : "",
		c->tls_client_ca ? c->tls_client_ca : "", c->max_headers, c->max_body,
		c->timeout_ms);
	fclose(f);
	return s;
}

static int listeners_open(struct api *a)
{
	const struct conf_api *c = a->conf;
	int r;

	free(a->listen_key);
	a->listen_key = listen_key(c);
	if (c->tls_cert) {
		r = tls_load(a, c);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->listen.n && !conf_api_no_listen(c); i++) {
		r = listen_tcp(a, c->listen.v[i]);
		if (r < 0)
			return r;
	}
	if (c->socket && !streq(c->socket, API_NONE)) {
		r = listen_unix(a, c->socket, c->socket_group);
		if (r < 0)
			return r;
	}
	return 0;
}

static void rebuild_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;

	(void)fd;
	(void)what;
	listeners_close(a);
	if (listeners_open(a) < 0)
		log_error("api: the new listeners failed; serving what could be opened");
}

/* ---------------------------------------------------------------- life cycle */

static void tables_set(struct api *a, const struct api_route_table *t, size_t n)
{
	a->tables = xrealloc(a->tables, (n + 1) * sizeof(*a->tables));
	api_auth_routes(a->auth, &a->tables[0]);
	if (n)
		memcpy(&a->tables[1], t, n * sizeof(*t));
	a->n_tables = n + 1;
}

int api_new(const struct api_env *env, const struct conf *conf, struct api **ret)
{
	struct api *a = xcalloc(1, sizeof(*a));
	int r;

	*ret = a;
	a->env = *env;
	a->conf = conf_api(conf);
	a->rebuild = evtimer_new(env->base, rebuild_cb, a);
	if (!a->rebuild)
		return -ENOMEM;
	r = api_auth_new(env->base, a->conf, env->events, &a->auth);
	if (r < 0)
		return r;
	r = api_metrics_init(&a->metrics, env->metrics);
	if (r < 0)
		log_warnx("api: no egress_api_* metrics: %s", strerror(-r));
	api_auth_set_metrics(a->auth, &a->metrics);
	tables_set(a, NULL, 0);
	/* the API's state lives here; authentication and the daemon fill it */
	if (mkdir(a->conf->state_dir, 0700) < 0 && errno != EEXIST)
		log_warn("api: cannot make the state directory %s", a->conf->state_dir);
	return listeners_open(a);
}

int api_reconf(struct api *a, const struct conf *conf)
{
	const struct conf_api *c = conf_api(conf);
	char *key = listen_key(c);
	int r;

	a->conf = c;
	r = api_auth_reconf(a->auth, c);
	if (!streq(key, a->listen_key)) {
		struct timeval now = {0};

		event_add(a->rebuild, &now);
	}
	free(key);
	return r;
}

void api_set_routes(struct api *a, const struct api_route_table *tables, size_t n)
{
	tables_set(a, tables, n);
}

void api_free(struct api *a)
{
	if (!a)
		return;
	listeners_close(a);
	/* connections still being taken (no evhttp connection yet) */
	while (a->conns) {
		struct api_conn *c = a->conns;

		if (c->bev)
			bufferevent_decref(c->bev);
		conn_free(c);
	}
	if (a->rebuild)
		event_free(a->rebuild);
	api_auth_free(a->auth);
	free(a->tables);
	free(a->listen_key);
	free(a);
}
