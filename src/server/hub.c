/*
 * hub.c - egress-server's hub: the WebSocket endpoint gateways connect to ([hub] path,
 * "/ws" by default, on the API's listeners), speaking the allowlist protocol
 * (al_proto.h, doc/allowlist-protocol.md).
 *
 * A gateway authenticates with an API token (Authorization: Bearer, read access is
 * enough) or a client certificate the API's TLS verified ([api] tls_client_ca); a refusal
 * is answered 401 and audited.  Then it says hello with the version it holds, gets what it
 * lacks (store_changes(): a delta or a snapshot), and from then on every change as the
 * store's subscriber reports a new version; it acknowledges each version it applied.
 * Messages to a gateway are pipelined: each delta follows the last one sent, acknowledged
 * or not, so a gateway that keeps up never waits for a round trip.
 *
 * The registry: each gateway's acknowledged version, last contact and connection are
 * kept here for this replica's gateways and written to the store (store_gateway_report()) on
 * connect, on disconnect and at most once a second in between, so that every replica's
 * GET /api/gateways shows every gateway.
 *
 * Must not: buffer without bound for a gateway (one that does not read gets dropped once
 * [hub] max_pending is queued), block on the loop, or parse messages itself (al_proto.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>

#include "al_proto.h"
#include "api.h"
#include "api_route.h"
#include "hub_conf.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "util.h"
#include "ws.h"

#define HUB_FLUSH_MS 1000 /* at most one report per gateway to the store in this time */

/* WebSocket close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TRY_AGAIN 1013

enum hub_gw_state {
	HUB_GW_HELLO,  /* connected, its hello not in yet */
	HUB_GW_SYNCED, /* said hello: gets every change */
	_HUB_GW_STATE_MAX,
};

/* One gateway connection of this replica. */
struct hub_gw {
	LIST_ENTRY(hub_gw) link;
	struct hub *hub;
	struct ws *ws;	      /* owned: ws_free() or freed after its close_cb */
	enum hub_gw_state state;
	bool closing;	      /* ws_close() called: send nothing more */
	bool dirty;	      /* its state changed since the last report to the store */
	char name[AL_GATEWAY_MAX]; /* from its hello; "" before */
	char who[64];	      /* "token:NAME", "cert:CN" */
	char peer[64];
	uint64_t sent;	      /* the version its last snapshot or delta brought it to */
	uint64_t acked;	      /* the version it acknowledged (or said it held) */
	int64_t last_seen;    /* wall ms of its last message */
	struct event *hello_timer;
};

LIST_HEAD(hub_gw_list, hub_gw);

struct hub {
	struct server *srv;   /* borrowed: outlives the hub */
	struct conf *defaults; /* a [hub] with its defaults, for a config without one */
	const struct conf_hub *conf;
	char path[HUB_PATH_MAX];
	struct api_route route;
	struct hub_gw_list gws;
	size_t n_gws;
	uint64_t version; /* the store's, as its subscriber heard last */
	struct event *flush_timer;
	struct log_ratelimit audit_rl;
	struct log_ratelimit log_rl;
};

/* One encoded message per distinct starting version, for one round of pushes. */
struct hub_cache {
	struct {
		uint64_t from;
		uint64_t version;
		char *text;
		size_t len;
	} *v;
	size_t n;
};

static void ws_message_cb(struct ws *w, const char *data, size_t len, void *arg);
static void ws_close_cb(struct ws *w, int err, const char *why, void *arg);

static const struct ws_callbacks hub_ws_callbacks = {
	.message_cb = ws_message_cb,
	.close_cb = ws_close_cb,
};

/* "gateway gw1 (192.0.2.7)", or "connection from 192.0.2.7" before its hello. */
static const char *gw_label(const struct hub_gw *g, char *buf, size_t len)
{
	if (g->name[0])
		snprintf(buf, len, "gateway %s (%s)", g->name, g->peer);
	else
		snprintf(buf, len, "connection from %s", g->peer);
	return buf;
}

/* --- the registry --- */

static void gw_report(struct hub_gw *g, bool connected)
{
	struct hub *h = g->hub;
	struct store_gateway sg = {
		.version = g->acked,
		.last_seen = g->last_seen,
		.connected = connected,
	};
	int rc;

	g->dirty = false;
	if (!g->name[0])
		return;
	snprintf(sg.name, sizeof(sg.name), "%s", g->name);
	snprintf(sg.replica, sizeof(sg.replica), "%s", h->srv->name ? h->srv->name : "");
	snprintf(sg.peer, sizeof(sg.peer), "%s", g->peer);
	rc = store_gateway_report(h->srv->store, &sg);
	if (rc < 0)
		log_warnx("hub: gateway %s: report to the store: %s", g->name, strerror(-rc));
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hub *h = arg;
	struct hub_gw *g;

	(void)fd;
	(void)what;
	LIST_FOREACH(g, &h->gws, link)
		if (g->dirty && g->state == HUB_GW_SYNCED)
			gw_report(g, true);
}

static void mark_dirty(struct hub_gw *g)
{
	struct hub *h = g->hub;
	struct timeval tv = {.tv_sec = HUB_FLUSH_MS / 1000, .tv_usec = HUB_FLUSH_MS % 1000 * 1000};

	g->dirty = true;
	if (!evtimer_pending(h->flush_timer, NULL))
		evtimer_add(h->flush_timer, &tv);
}

/* --- one gateway --- */

static void gw_free(struct hub_gw *g)
{
	if (!g)
		return;
	if (g->hub) {
		LIST_REMOVE(g, link);
		g->hub->n_gws--;
	}
	if (g->hello_timer)
		event_free(g->hello_timer);
	free(g);
}

/*
 * Send an error message and close.  The gateway is freed by ws_close_cb (perhaps before
 * this returns): the caller must not touch g afterwards.
 */
static void gw_fail(struct hub_gw *g, uint16_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void gw_fail(struct hub_gw *g, uint16_t code, const char *fmt, ...)
{
	char why[256], label[160];
	struct al_msg m;
	va_list ap;
	size_t len;
	char *text;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (g->closing)
		return;
	if (log_ratelimit(&g->hub->log_rl))
		log_warnx("hub: %s: %s", gw_label(g, label, sizeof(label)), why);
	al_msg_init(&m);
	m.type = AL_MSG_ERROR;
	m.version = g->hub->version;
	m.error = why;
	text = al_msg_encode(&m, &len);
	m.error = NULL;
	al_msg_clear(&m);
	if (text)
		ws_send(g->ws, text, len); /* best effort: it may be the queue that is full */
	free(text);
	g->closing = true;
	ws_close(g->ws, code, code == WS_CLOSE_TRY_AGAIN ? "too slow" : "protocol error");
}

static void cache_clear(struct hub_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].text);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* The message that brings a gateway from `from` to the store's version, encoded once. */
static int cache_get(struct hub *h, struct hub_cache *c, uint64_t from, size_t *ret)
{
	struct al_msg m;
	char *text;
	size_t len;
	int rc;

	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].from == from) {
			*ret = i;
			return 0;
		}
	rc = store_changes(h->srv->store, from, &m);
	if (rc < 0) {
		al_msg_clear(&m);
		return rc;
	}
	text = al_msg_encode(&m, &len);
	if (!text) {
		al_msg_clear(&m);
		return -ENOMEM;
	}
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n].from = from;
	c->v[c->n].version = m.version;
	c->v[c->n].text = text;
	c->v[c->n].len = len;
	*ret = c->n++;
	al_msg_clear(&m);
	return 0;
}

/*
 * Send g what it lacks since g->sent.  A gateway that does not read what it was sent is
 * dropped (freed: the caller must not touch g after a nonzero return).
 */
static int gw_push(struct hub_gw *g, struct hub_cache *c)
{
	size_t i;
	int rc;

	if (g->closing)
		return 0;
	rc = cache_get(g->hub, c, g->sent, &i);
	if (rc < 0) {
		gw_fail(g, WS_CLOSE_TRY_AGAIN, "the store cannot say what changed since version "
			"%" PRIu64 ": %s", g->sent, strerror(-rc));
		return rc;
	}
	rc = ws_send(g->ws, c->v[i].text, c->v[i].len);
	if (rc == -ENOBUFS) {
		gw_fail(g, WS_CLOSE_TRY_AGAIN,
			"too slow: %zu bytes queued and unread (max_pending %d)", ws_pending(g->ws),
			g->hub->conf->max_pending);
		return rc;
	}
	if (rc < 0)
		return rc; /* closing: its close_cb follows */
	g->sent = c->v[i].version;
	return 0;
}

/* The store's version moved: every gateway that said hello gets the changes. */
static void version_cb(void *arg, uint64_t version)
{
	struct hub *h = arg;
	struct hub_cache c = {0};
	struct hub_gw *g, *next;

	h->version = version;
	for (g = LIST_FIRST(&h->gws); g; g = next) {
		next = LIST_NEXT(g, link);
		if (g->state == HUB_GW_SYNCED && g->sent != version)
			gw_push(g, &c);
	}
	cache_clear(&c);
}

static void gw_hello(struct hub_gw *g, const struct al_msg *m)
{
	struct hub *h = g->hub;
	struct hub_cache c = {0};
	struct hub_gw *o;

	if (m->protocol != AL_PROTOCOL) {
		gw_fail(g, WS_CLOSE_POLICY, "protocol %d is not spoken here (this server speaks %d)",
			m->protocol, AL_PROTOCOL);
		return;
	}
	if (g->state == HUB_GW_SYNCED && !streq(g->name, m->gateway)) {
		gw_fail(g, WS_CLOSE_POLICY, "this connection is gateway \"%s\", not \"%s\"",
			g->name, m->gateway);
		return;
	}
	if (g->state == HUB_GW_HELLO) {
		/* the same gateway again: its new connection wins, the old one is stale */
		LIST_FOREACH(o, &h->gws, link)
			if (o != g && o->state == HUB_GW_SYNCED && streq(o->name, m->gateway)) {
				gw_fail(o, WS_CLOSE_POLICY,
					"replaced by a new connection of the same gateway from %s",
					g->peer);
				break;
			}
		snprintf(g->name, sizeof(g->name), "%s", m->gateway);
		event_del(g->hello_timer);
		log_info("hub: gateway %s connected from %s as %s, holding version %" PRIu64,
			g->name, g->peer, g->who, m->version);
	}
	g->state = HUB_GW_SYNCED;
	g->sent = m->version;
	/* what it holds counts as acknowledged, unless the store never had that version */
	g->acked = m->version <= store_version(h->srv->store) ? m->version : 0;
	gw_report(g, true);
	if (gw_push(g, &c) == 0 && g->sent != m->version)
		log_debug("hub: gateway %s: sent version %" PRIu64 " (from %" PRIu64 ")", g->name,
			g->sent, m->version);
	cache_clear(&c);
}

static void gw_ack(struct hub_gw *g, const struct al_msg *m)
{
	if (g->state != HUB_GW_SYNCED) {
		gw_fail(g, WS_CLOSE_POLICY, "ack before hello");
		return;
	}
	if (m->version > g->sent || m->version < g->acked) {
		gw_fail(g, WS_CLOSE_POLICY,
			"ack of version %" PRIu64 ": expected one from %" PRIu64 " to %" PRIu64
			" (acknowledged to what was sent)", m->version, g->acked, g->sent);
		return;
	}
	g->acked = m->version;
	mark_dirty(g);
}

static void ws_message_cb(struct ws *w, const char *data, size_t len, void *arg)
{
	struct hub_gw *g = arg;
	struct al_error err = {0};
	char label[160];
	struct al_msg m;

	(void)w;
	if (g->closing)
		return;
	g->last_seen = clock_wall_ms();
	if (al_msg_parse(data, len, &m, &err) < 0) {
		gw_fail(g, WS_CLOSE_POLICY, "bad message: %s%s%s", err.field,
			err.field[0] ? ": " : "", err.msg);
		goto out;
	}
	switch (m.type) {
	case AL_MSG_HELLO:
		gw_hello(g, &m);
		break;
	case AL_MSG_ACK:
		gw_ack(g, &m);
		break;
	case AL_MSG_ERROR:
		log_warnx("hub: %s gave up: %s", gw_label(g, label, sizeof(label)),
			m.error ? m.error : "?");
		g->closing = true;
		ws_close(g->ws, WS_CLOSE_NORMAL, "");
		break;
	default:
		gw_fail(g, WS_CLOSE_POLICY, "a gateway does not send a %s",
			al_msg_type_name[m.type]);
		break;
	}
out:
	al_msg_clear(&m);
}

/* Another connection of this replica that is gateway `name` (a newer one replaced g)? */
static bool gw_other(const struct hub_gw *g, const char *name)
{
	const struct hub_gw *o;

	LIST_FOREACH(o, &g->hub->gws, link)
		if (o != g && o->state == HUB_GW_SYNCED && streq(o->name, name))
			return true;
	return false;
}

static void ws_close_cb(struct ws *w, int err, const char *why, void *arg)
{
	struct hub_gw *g = arg;

	(void)w;
	(void)err;
	if (g->name[0])
		log_info("hub: gateway %s (%s) went away: %s", g->name, g->peer, why);
	else
		log_debug("hub: connection from %s went away before its hello: %s", g->peer, why);
	if (g->state == HUB_GW_SYNCED && !gw_other(g, g->name))
		gw_report(g, false);
	gw_free(g);
}

static void hello_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hub_gw *g = arg;

	(void)fd;
	(void)what;
	gw_fail(g, WS_CLOSE_POLICY, "no hello within %ums", g->hub->conf->timeout_ms);
}

/* --- the endpoint --- */

/* A refused gateway: answered, logged and audited (both rate-limited). */
static void refuse(struct hub *h, struct api_req *r, int code, const char *who, const char *why)
{
	struct store_who sw = {.who = who, .from = api_req_peer(r)};
	json_t *detail;

	api_reply_error(r, code, NULL, "%s", why);
	if (!log_ratelimit(&h->audit_rl))
		return;
	log_warnx("hub: refused %s from %s: %s", who, sw.from, why);
	detail = json_pack("{sssi}", "reason", why, "status", code);
	store_audit(h->srv->store, &sw, "gateway-refused", 0, detail);
	json_decref(detail);
}

/*
 * Who is this gateway?  An API token (read access or more) or a client certificate the
 * TLS handshake verified; a browser's session is not a gateway.  false: refused.
 */
static bool gateway_auth(struct hub *h, struct api_req *r, char *who, size_t len)
{
	const char *caller = api_req_who(r);
	const char *cn = api_req_tls_peer(r);

	if (api_req_access(r) >= API_READ && strncmp(caller, "token:", 6) == 0) {
		snprintf(who, len, "%s", caller);
		return true;
	}
	if (cn) {
		snprintf(who, len, "cert:%s", cn);
		return true;
	}
	if (api_req_header(r, "Authorization"))
		refuse(h, r, 401, "unknown", "unknown token");
	else
		refuse(h, r, 401, "anonymous",
			"authentication required: a bearer token or a client certificate");
	return false;
}

static void ws_route_cb(struct api_req *r, void *arg)
{
	struct hub *h = arg;
	struct ws_opts o = {
		.max_message = (size_t)h->conf->max_message,
		.max_pending = (size_t)h->conf->max_pending,
		.ping_ms = h->conf->ping_ms,
		.timeout_ms = h->conf->timeout_ms,
	};
	struct timeval tv = {
		.tv_sec = h->conf->timeout_ms / 1000,
		.tv_usec = h->conf->timeout_ms % 1000 * 1000,
	};
	char who[64];
	struct hub_gw *g;

	if (!gateway_auth(h, r, who, sizeof(who)))
		return;
	if (h->n_gws >= (size_t)h->conf->max_gateways) {
		refuse(h, r, 503, who, "too many gateways (max_gateways)");
		return;
	}
	g = xcalloc(1, sizeof(*g));
	g->hello_timer = evtimer_new(h->srv->base, hello_timeout_cb, g);
	if (!g->hello_timer) {
		free(g);
		api_reply_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(g->who, sizeof(g->who), "%s", who);
	snprintf(g->peer, sizeof(g->peer), "%s", api_req_peer(r));
	g->last_seen = clock_wall_ms();
	g->hub = h;
	LIST_INSERT_HEAD(&h->gws, g, link);
	h->n_gws++;
	g->ws = api_ws_accept(r, &o, &hub_ws_callbacks, g);
	if (!g->ws) { /* answered 400 or 426 */
		gw_free(g);
		return;
	}
	evtimer_add(g->hello_timer, &tv);
}

/* --- the hub --- */

static const struct conf_hub *hub_conf_of(struct hub *h, const struct conf *conf)
{
	const struct conf_hub *c = conf_hub(conf);

	return c ? c : conf_hub(h->defaults);
}

void hub_routes(struct hub *h, struct api_route_table *ret)
{
	*ret = (struct api_route_table){
		.module = NULL,
		.routes = &h->route,
		.n = 1,
		.arg = h,
		.running = true,
	};
}

int hub_new(struct server *srv, struct hub **ret)
{
	static const struct conf_section_type *const types[] = {&conf_hub_type};
	struct hub *h = xcalloc(1, sizeof(*h));

	h->srv = srv;
	h->defaults = conf_new(types, ARRAY_SIZE(types));
	h->flush_timer = evtimer_new(srv->base, flush_cb, h);
	if (!h->flush_timer) {
		conf_free(h->defaults);
		free(h);
		return -ENOMEM;
	}
	LIST_INIT(&h->gws);
	h->audit_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 10);
	h->log_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 20);
	h->route = (struct api_route){
		.method = EVHTTP_REQ_GET,
		.path = h->path,
		.access = API_OPEN, /* gateway_auth(): tokens and certificates, audited */
		.handler_cb = ws_route_cb,
	};
	hub_reconf(h, srv->conf);
	h->version = store_version(srv->store);
	store_subscribe(srv->store, version_cb, h);
	*ret = h;
	return 0;
}

int hub_reconf(struct hub *h, const struct conf *conf)
{
	const struct conf_hub *c = hub_conf_of(h, conf);

	if (h->conf && !streq(h->path, c->path))
		log_info("hub: gateways now connect to %s (those connected to %s stay)", c->path,
			h->path);
	h->conf = c;
	snprintf(h->path, sizeof(h->path), "%s", c->path);
	/* connected gateways keep the bounds they came with; new ones get these */
	return 0;
}

void hub_free(struct hub *h)
{
	struct hub_gw *g;

	if (!h)
		return;
	store_subscribe(h->srv->store, NULL, NULL);
	while ((g = LIST_FIRST(&h->gws))) {
		if (g->state == HUB_GW_SYNCED)
			gw_report(g, false);
		ws_free(g->ws);
		gw_free(g);
	}
	event_free(h->flush_timer);
	conf_free(h->defaults);
	free(h);
}

struct gateways_ctx {
	struct hub *h;
	json_t *arr;
	uint64_t version;
};

static json_t *gateway_json(const struct store_gateway *sg, uint64_t version)
{
	char t[TIME_ISO_STRLEN];

	return json_pack("{sssssssbsIsIss}", "name", sg->name, "replica", sg->replica, "peer",
		sg->peer, "connected", sg->connected, "version", (json_int_t)sg->version, "lag",
		(json_int_t)(version > sg->version ? version - sg->version : 0), "last_seen",
		sg->last_seen ? time_iso(sg->last_seen, t, sizeof(t)) : "");
}

static int gateways_cb(const struct store_gateway *sg, void *arg)
{
	struct gateways_ctx *x = arg;
	struct hub_gw *g;

	/* the gateways connected here: what the hub knows now, not their last report */
	LIST_FOREACH(g, &x->h->gws, link)
		if (g->state == HUB_GW_SYNCED && streq(g->name, sg->name))
			return 0;
	json_array_append_new(x->arr, gateway_json(sg, x->version));
	return 0;
}

json_t *hub_gateways(struct hub *h)
{
	struct gateways_ctx x = {.h = h, .arr = json_array(), .version = store_version(h->srv->store)};
	struct store_gateway sg;
	struct hub_gw *g;
	int rc;

	LIST_FOREACH(g, &h->gws, link) {
		if (g->state != HUB_GW_SYNCED)
			continue;
		sg = (struct store_gateway){
			.version = g->acked,
			.last_seen = g->last_seen,
			.connected = !g->closing,
		};
		snprintf(sg.name, sizeof(sg.name), "%s", g->name);
		snprintf(sg.replica, sizeof(sg.replica), "%s", h->srv->name ? h->srv->name : "");
		snprintf(sg.peer, sizeof(sg.peer), "%s", g->peer);
		json_array_append_new(x.arr, gateway_json(&sg, x.version));
	}
	rc = store_gateways_each(h->srv->store, gateways_cb, &x);
	if (rc < 0)
		log_warnx("hub: the store's gateways: %s", strerror(-rc));
	return x.arr;
}
