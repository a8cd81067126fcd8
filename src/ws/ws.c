/*
 * ws.c - a WebSocket session (RFC 6455) on a libevent bufferevent, once its opening
 * handshake is done: wslay frames, masks, assembles messages and answers pings and
 * closes; this file moves bytes between wslay and the bufferevent, sends heartbeats,
 * bounds what a peer may make us hold, and tells the owner when it is over.
 *
 * States: CONNECTING and HANDSHAKE (client only, ws_client.c), OPEN, CLOSING (our close
 * sent), DRAINING (over, the last bytes going out), DONE (close_cb on the next loop turn).
 * One timer per session serves the state: connect deadline, heartbeat, close and drain.
 *
 * Must not: block; buffer without bound (a message beyond max_message closes with 1009,
 * output beyond max_pending fails ws_send() with -ENOBUFS, and a peer that sends pings
 * without reading our pongs is dropped); call close_cb from inside a call of its owner
 * (it always comes on a loop turn of its own); trust a frame (wslay checks them, a bad one
 * closes with 1002).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "log.h"
#include "util.h"
#include "ws.h"
#include "ws_int.h"

#define WS_DEF_MAX_MESSAGE (16u << 20)
#define WS_DEF_MAX_PENDING (64u << 20)
#define WS_DEF_PING_MS 10000
#define WS_DEF_TIMEOUT_MS 30000
/* How long a close waits for the peer's close, and the last bytes for the peer. */
#define WS_CLOSE_WAIT_MS 3000

const char *const ws_state_name[_WS_STATE_MAX] = {
	[WS_CONNECTING] = "connecting",
	[WS_HANDSHAKE] = "handshake",
	[WS_OPEN] = "open",
	[WS_CLOSING] = "closing",
	[WS_DRAINING] = "draining",
	[WS_DONE] = "done",
};

void ws_transition(struct ws *w, enum ws_state to)
{
	log_debug("ws %s: %s -> %s", w->peer, ws_state_name[w->state], ws_state_name[to]);
	w->state = to;
}

void ws_timer(struct ws *w, uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	event_add(w->timer, &tv);
}

/* ---------------------------------------------------------------- wslay's I/O */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
	void *user)
{
	struct ws *w = user;
	int n;

	(void)flags;
	if (w->freeing || w->state >= WS_DRAINING) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	n = evbuffer_remove(bufferevent_get_input(w->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
	void *user)
{
	struct ws *w = user;

	(void)flags;
	if (evbuffer_add(bufferevent_get_output(w->bev), data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)user;
	if (RAND_bytes(buf, (int)len) != 1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
	void *user)
{
	struct ws *w = user;

	if (m->opcode == WSLAY_BINARY_FRAME) {
		log_debug("ws %s: a binary message, closing with 1003", w->peer);
		wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
			(const uint8_t *)"text only", 9);
		wslay_event_shutdown_read(ctx);
		return;
	}
	if (m->opcode != WSLAY_TEXT_FRAME || w->freeing || w->state != WS_OPEN)
		return;
	if (!utf8_valid(m->msg, m->msg_length)) {
		/* RFC 6455 8.1 */
		log_debug("ws %s: a text message that is not UTF-8, closing with 1007", w->peer);
		wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
			(const uint8_t *)"not UTF-8", 9);
		wslay_event_shutdown_read(ctx);
		return;
	}
	if (m->msg_length + 1 > w->msg_size) {
		w->msg_size = m->msg_length + 1;
		w->msg = xrealloc(w->msg, w->msg_size);
	}
	memcpy(w->msg, m->msg, m->msg_length);
	w->msg[m->msg_length] = '\0';
	if (w->cb.message_cb) {
		w->in_cb++;
		w->cb.message_cb(w, w->msg, m->msg_length, w->arg);
		w->in_cb--;
	}
	/* a big message's copy goes; small ones keep their buffer */
	if (w->msg_size > 65536) {
		FREE_AND_NULL(w->msg);
		w->msg_size = 0;
	}
}

/* ---------------------------------------------------------------- the end */

void ws_destroy(struct ws *w)
{
	if (w->timer)
		event_free(w->timer);
	if (w->defer)
		event_free(w->defer);
	if (w->ctx)
		wslay_event_context_free(w->ctx);
	if (w->bev)
		bufferevent_setcb(w->bev, NULL, NULL, NULL, NULL);
	if (w->server) {
		if (w->release_cb)
			w->release_cb(w->release_arg);
	} else {
		ws_client_free(w->cl);
	}
	free(w->msg);
	free(w);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *w = arg;

	(void)fd;
	(void)what;
	if (w->cb.close_cb)
		w->cb.close_cb(w, w->err, w->why, w->arg);
	ws_destroy(w);
}

/* Nothing more to do on the connection: close_cb next turn. */
static void ws_done(struct ws *w)
{
	if (w->state == WS_DONE)
		return;
	ws_transition(w, WS_DONE);
	event_del(w->timer);
	if (w->bev)
		bufferevent_disable(w->bev, EV_READ | EV_WRITE);
	event_active(w->defer, 0, 0);
}

static void ws_vfail(struct ws *w, int err, const char *fmt, va_list ap)
{
	if (w->state >= WS_DRAINING)
		return;
	w->err = err;
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	if (w->bev && w->state >= WS_OPEN &&
		evbuffer_get_length(bufferevent_get_output(w->bev)) > 0) {
		/* what is queued (our close frame, most often) goes out first */
		ws_transition(w, WS_DRAINING);
		bufferevent_disable(w->bev, EV_READ);
		bufferevent_enable(w->bev, EV_WRITE);
		ws_timer(w, WS_CLOSE_WAIT_MS);
		return;
	}
	ws_done(w);
}

void ws_fail(struct ws *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ws_vfail(w, err, fmt, ap);
	va_end(ap);
}

/* After wslay read or wrote: is the close exchange over, or did wslay give up? */
static void ws_check(struct ws *w)
{
	wslay_event_context_ptr ctx = w->ctx;
	uint16_t sent, rcvd;

	if (w->state != WS_OPEN && w->state != WS_CLOSING)
		return;
	sent = wslay_event_get_status_code_sent(ctx);
	rcvd = wslay_event_get_status_code_received(ctx);
	if (wslay_event_get_close_sent(ctx) && sent == WSLAY_CODE_MESSAGE_TOO_BIG &&
		!wslay_event_get_close_received(ctx)) {
		ws_fail(w, -EMSGSIZE, "message too big (max_message %zu)", w->o.max_message);
		return;
	}
	if (wslay_event_get_close_sent(ctx) && sent == WSLAY_CODE_PROTOCOL_ERROR &&
		!wslay_event_get_close_received(ctx)) {
		ws_fail(w, -EPROTO, "protocol error (1002)");
		return;
	}
	if (wslay_event_get_close_sent(ctx) && sent == WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA &&
		!wslay_event_get_close_received(ctx)) {
		ws_fail(w, -EPROTO, "text message not UTF-8 (1007)");
		return;
	}
	if (wslay_event_get_close_sent(ctx) && sent == WSLAY_CODE_UNSUPPORTED_DATA &&
		!wslay_event_get_close_received(ctx)) {
		ws_fail(w, -EPROTO, "binary message (1003)");
		return;
	}
	if (wslay_event_get_close_received(ctx)) {
		if (!wslay_event_want_write(ctx)) {
			if (w->state == WS_CLOSING)
				ws_fail(w, 0, "closed (%u)", sent);
			else
				ws_fail(w, 0, "closed by peer (%u)", rcvd);
		}
		return;
	}
	if (!wslay_event_get_read_enabled(ctx) && !wslay_event_get_close_sent(ctx)) {
		ws_fail(w, -EPROTO, "protocol error");
		return;
	}
	if (wslay_event_get_close_sent(ctx) && w->state == WS_OPEN) {
		ws_transition(w, WS_CLOSING);
		ws_timer(w, WS_CLOSE_WAIT_MS);
	}
}

static void ws_flush(struct ws *w)
{
	if (wslay_event_send(w->ctx) < 0) {
		ws_fail(w, -EIO, "cannot queue output");
		return;
	}
	ws_check(w);
}

/* Free now, unless inside a callback: then when it returns. */
bool ws_reap(struct ws *w)
{
	if (!w->freeing || w->in_cb)
		return false;
	ws_destroy(w);
	return true;
}

/* ---------------------------------------------------------------- the connection's events */

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct ws *w = arg;

	if (w->state != WS_OPEN && w->state != WS_CLOSING) {
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(bev)) == 0)
		return;
	w->last_rx_ms = now_ms();
	w->pinged = false;
	w->in_cb++;
	int r = wslay_event_recv(w->ctx);
	w->in_cb--;
	if (ws_reap(w))
		return;
	if (r < 0) {
		ws_fail(w, -EIO, "cannot read frames");
		return;
	}
	if (ws_pending(w) > w->o.max_pending) {
		/* pongs and closes for a peer that sends but does not read */
		ws_fail(w, -ENOBUFS, "peer does not read (%zu bytes queued)", ws_pending(w));
		return;
	}
	ws_flush(w);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct ws *w = arg;

	(void)bev;
	if (w->state == WS_DRAINING)
		ws_done(w);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws *w = arg;

	(void)bev;
	if (w->state == WS_DRAINING) {
		ws_done(w);
		return;
	}
	if (w->ctx && wslay_event_get_close_received(w->ctx))
		ws_fail(w, 0, "closed by peer (%u)", wslay_event_get_status_code_received(w->ctx));
	else if (w->state == WS_CLOSING)
		ws_fail(w, 0, "closed (%u)", wslay_event_get_status_code_sent(w->ctx));
	else if (what & BEV_EVENT_EOF)
		ws_fail(w, -ECONNRESET, "connection closed by peer without a close frame");
	else
		ws_fail(w, -ECONNRESET, "connection lost: %s",
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* Heartbeat: a ping after ping_ms of silence, the end after timeout_ms of it. */
static void heartbeat(struct ws *w)
{
	uint64_t idle = now_ms() - w->last_rx_ms;
	uint64_t next;

	if (idle >= w->o.timeout_ms) {
		ws_fail(w, -ETIMEDOUT, "timeout (nothing for %u ms)", w->o.timeout_ms);
		return;
	}
	if (idle >= w->o.ping_ms && !w->pinged) {
		struct wslay_event_msg ping = {.opcode = WSLAY_PING};

		w->pinged = true;
		wslay_event_queue_msg(w->ctx, &ping);
		ws_flush(w);
		if (w->state != WS_OPEN)
			return;
	}
	next = w->pinged ? w->o.timeout_ms : w->o.ping_ms;
	if (next > w->o.timeout_ms)
		next = w->o.timeout_ms;
	ws_timer(w, (uint32_t)(next - (idle < next ? idle : next)) + 1);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *w = arg;

	(void)fd;
	(void)what;
	switch (w->state) {
	case WS_CONNECTING:
	case WS_HANDSHAKE:
		ws_client_timeout(w);
		break;
	case WS_OPEN:
		heartbeat(w);
		break;
	case WS_CLOSING:
		ws_fail(w, 0, "closed (%u), the peer did not answer",
			wslay_event_get_status_code_sent(w->ctx));
		break;
	case WS_DRAINING:
		ws_done(w);
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- life cycle */

struct ws *ws_alloc(struct event_base *base, bool server, const struct ws_opts *o,
	const struct ws_callbacks *cb, void *arg)
{
	struct ws *w = xcalloc(1, sizeof(*w));

	w->base = base;
	w->server = server;
	if (o)
		w->o = *o;
	if (!w->o.max_message)
		w->o.max_message = WS_DEF_MAX_MESSAGE;
	if (!w->o.max_pending)
		w->o.max_pending = WS_DEF_MAX_PENDING;
	if (!w->o.ping_ms)
		w->o.ping_ms = WS_DEF_PING_MS;
	if (!w->o.timeout_ms)
		w->o.timeout_ms = WS_DEF_TIMEOUT_MS;
	w->cb = *cb;
	w->arg = arg;
	snprintf(w->peer, sizeof(w->peer), "?");
	w->timer = evtimer_new(base, timer_cb, w);
	w->defer = event_new(base, -1, 0, defer_cb, w);
	if (!w->timer || !w->defer)
		fatalx("ws: out of memory for a connection");
	return w;
}

void ws_begin(struct ws *w, struct bufferevent *bev)
{
	struct wslay_event_callbacks cbs = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_msg_recv_callback = msg_cb,
	};
	int r;

	w->bev = bev;
	r = w->server ? wslay_event_context_server_init(&w->ctx, &cbs, w) :
			wslay_event_context_client_init(&w->ctx, &cbs, w);
	if (r < 0)
		fatalx("ws: out of memory for a session");
	wslay_event_config_set_max_recv_msg_length(w->ctx, w->o.max_message);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, w);
	bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/*
	 * No timeouts: the heartbeat bounds the session.  Clearing evhttp's is not enough
	 * while its read is disabled (it is, during the request's handler): libevent 2.1 keeps
	 * a persistent event's last timeout (ev_io_timeout) when the event is added again
	 * without one, and re-arms it after every read, so the server's [api] timeout came
	 * back after the first message and closed every idle WebSocket.  With both events
	 * pending, a timeout set and then cleared is removed from the events themselves.
	 */
	bufferevent_set_timeouts(bev, &(struct timeval){.tv_sec = 3600}, &(struct timeval){.tv_sec = 3600});
	bufferevent_set_timeouts(bev, NULL, NULL);
	ws_transition(w, WS_OPEN);
	w->last_rx_ms = now_ms();
	w->pinged = false;
	ws_timer(w, w->o.ping_ms < w->o.timeout_ms ? w->o.ping_ms : w->o.timeout_ms);
	/* frames that came with the handshake: read on the next loop turn */
	if (evbuffer_get_length(bufferevent_get_input(bev)))
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

struct ws *ws_server_new(struct event_base *base, struct bufferevent *bev, const char *peer,
	const struct ws_opts *o, const struct ws_callbacks *cb, void *arg,
	void (*release_cb)(void *), void *release_arg)
{
	struct ws *w = ws_alloc(base, true, o, cb, arg);

	snprintf(w->peer, sizeof(w->peer), "%s", peer ? peer : "?");
	w->release_cb = release_cb;
	w->release_arg = release_arg;
	ws_begin(w, bev);
	return w;
}

void ws_server_lost(struct ws *w)
{
	w->release_cb = NULL;
	if (w->bev)
		bufferevent_setcb(w->bev, NULL, NULL, NULL, NULL);
	w->bev = NULL;
	if (w->state < WS_DRAINING) {
		w->err = -ECONNRESET;
		snprintf(w->why, sizeof(w->why), "server stopping");
	}
	if (w->freeing) {
		/* ws_free() inside a callback: the callback's caller frees it */
		return;
	}
	event_del(w->defer);
	if (w->cb.close_cb)
		w->cb.close_cb(w, w->err, w->why, w->arg);
	ws_destroy(w);
}

int ws_send(struct ws *w, const char *data, size_t len)
{
	struct wslay_event_msg m = {
		.opcode = WSLAY_TEXT_FRAME,
		.msg = (const uint8_t *)data,
		.msg_length = len,
	};

	if (w->freeing || w->state != WS_OPEN)
		return -ENOTCONN;
	if (ws_pending(w) + len > w->o.max_pending)
		return -ENOBUFS;
	if (wslay_event_queue_msg(w->ctx, &m) < 0)
		return -ENOTCONN;
	ws_flush(w);
	return 0;
}

size_t ws_pending(const struct ws *w)
{
	size_t n = 0;

	if (w->bev)
		n += evbuffer_get_length(bufferevent_get_output(w->bev));
	if (w->ctx)
		n += wslay_event_get_queued_msg_length(w->ctx);
	return n;
}

void ws_close(struct ws *w, uint16_t code, const char *reason)
{
	size_t len = reason ? strlen(reason) : 0;

	if (w->freeing)
		return;
	if (w->state == WS_CONNECTING || w->state == WS_HANDSHAKE) {
		ws_fail(w, -ECANCELED, "closed before it opened");
		return;
	}
	if (w->state != WS_OPEN)
		return;
	if (len > 123) /* RFC 6455 5.5: a control frame's payload is at most 125 bytes */
		len = 123;
	wslay_event_queue_close(w->ctx, code, (const uint8_t *)reason, len);
	ws_flush(w);
}

void ws_free(struct ws *w)
{
	if (!w || w->freeing)
		return;
	w->freeing = true;
	event_del(w->timer);
	event_del(w->defer);
	if (w->bev)
		bufferevent_disable(w->bev, EV_READ | EV_WRITE);
	if (w->in_cb)
		return; /* freed when the callback returns */
	ws_destroy(w);
}

const char *ws_peer(const struct ws *w)
{
	return w->peer;
}
