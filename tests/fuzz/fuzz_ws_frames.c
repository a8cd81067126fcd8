/*
 * fuzz_ws_frames.c - libFuzzer harness for what a WebSocket peer sends once the handshake
 * is done (src/ws/ws.c over wslay): the input's first byte picks the side (bit 0: we are
 * the client, so frames come unmasked from a server; else we are the server and frames
 * must come masked) and how the rest arrives (bits 1-3: in pieces of 1 << n bytes); the
 * rest is the peer's bytes, written into the other end of a bufferevent pair.
 *
 * Checked: every message delivered is at most max_message (4096) and NUL-terminated at its
 * length; close_cb comes at most once, with a reason; what we queued for the peer stays
 * under max_pending; nothing leaks or is used after free (the session is freed from inside
 * a message callback on the message "free", and by ws_free() at the end otherwise).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ws.h"
#include "ws_int.h"

#include "fuzz.h"

#define MAX_MESSAGE 4096
#define MAX_PENDING 65536

struct run {
	struct ws *w;
	int closed;
	bool released;
};

static void message_cb(struct ws *w, const char *data, size_t len, void *arg)
{
	struct run *r = arg;

	CHECK(w == r->w);
	CHECK(len <= MAX_MESSAGE);
	CHECK(data[len] == '\0');
	if (len == 4 && !memcmp(data, "free", 4)) {
		ws_free(w);
		r->w = NULL;
		return;
	}
	/* answer, so that output is made too */
	ws_send(w, data, len);
	CHECK(ws_pending(w) <= MAX_PENDING);
}

static void close_cb(struct ws *w, int err, const char *why, void *arg)
{
	struct run *r = arg;

	CHECK(w == r->w);
	CHECK(why && *why);
	CHECK(err <= 0);
	r->closed++;
	CHECK(r->closed == 1);
	r->w = NULL;
}

static void release_cb(void *arg)
{
	struct run *r = arg;

	CHECK(!r->released);
	r->released = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base *base;
	static const struct ws_callbacks cbs = {NULL, message_cb, close_cb};
	const struct ws_opts o = {.max_message = MAX_MESSAGE, .max_pending = MAX_PENDING};
	struct bufferevent *pair[2];
	struct run r = {0};
	size_t piece;
	bool client;

	if (size < 1)
		return 0;
	if (!base)
		base = event_base_new();
	CHECK(base);
	client = data[0] & 1;
	piece = (size_t)1 << ((data[0] >> 1) & 7);
	data++;
	size--;
	CHECK(bufferevent_pair_new(base, 0, pair) == 0);
	if (client) {
		r.w = ws_alloc(base, false, &o, &cbs, &r);
		ws_begin(r.w, pair[0]);
	} else {
		r.w = ws_server_new(base, pair[0], "fuzz", &o, &cbs, &r, release_cb, &r);
	}
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	for (size_t off = 0; off < size && r.w; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		bufferevent_write(pair[1], data + off, n);
		event_base_loop(base, EVLOOP_NONBLOCK);
		evbuffer_drain(bufferevent_get_input(pair[1]),
			evbuffer_get_length(bufferevent_get_input(pair[1])));
	}
	for (int i = 0; i < 4 && r.w; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ws_free(r.w);
	if (!client && !r.closed)
		CHECK(r.released || !r.w);
	bufferevent_free(pair[0]);
	bufferevent_free(pair[1]);
	event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
