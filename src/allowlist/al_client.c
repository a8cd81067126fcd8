/*
 * al_client.c - the gateway agent's connection to egress-server's hub (al_client.h).
 *
 * One state machine: CONNECTING -> SYNCING (hello sent) -> SYNCED (each list applied is
 * acknowledged) and, on any failure, WAITING for the backoff's timer, then CONNECTING
 * again.  Messages are the codec's (al_proto.c); the socket is the WebSocket layer's.
 * Must not touch the kernel or block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "al_client.h"
#include "log.h"
#include "util.h"
#include "ws.h"

const char *const al_client_state_name[_AL_CLIENT_STATE_MAX] = {
	[AL_CLIENT_CONNECTING] = "connecting",
	[AL_CLIENT_SYNCING] = "syncing",
	[AL_CLIENT_SYNCED] = "synced",
	[AL_CLIENT_WAITING] = "waiting",
};

struct al_client {
	struct event_base *base;
	struct ws_client_conf wc; /* its strings are the copies below */
	char *url, *ca, *cert, *key, *token;
	struct ws_opts wo;
	char *name;
	uint32_t min_ms, max_ms;
	const struct al_client_ops *ops;
	void *arg;

	enum al_client_state state;
	int64_t since;	     /* unix seconds of the last state change */
	struct ws *ws;	     /* NULL while waiting */
	struct event *timer; /* the next attempt */
	uint64_t retry_at;   /* now_ms() of it, while waiting */
	unsigned failures;   /* since the last list applied */
	unsigned long connects;
	uint64_t acked;	      /* the last version acknowledged */
	int64_t last_contact; /* unix seconds: when the last connection ended */
	char last_error[400];
	char close_why[400]; /* why we close this connection ourselves, or "" */
	struct log_ratelimit rl;
};

static void client_connect(struct al_client *cl);

uint32_t al_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned failures, uint32_t rnd)
{
	uint64_t d = min_ms;

	for (unsigned i = 0; i < failures && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	/* "equal jitter": half of it fixed, the other half random */
	return (uint32_t)(d - (d / 2 ? rnd % (d / 2 + 1) : 0));
}

static void transition(struct al_client *cl, enum al_client_state s, const char *why)
{
	if (cl->state == s)
		return;
	log_info("allowlist: server %s: %s -> %s%s%s", cl->wc.url, al_client_state_name[cl->state],
		al_client_state_name[s], why && *why ? " (" : "", why && *why ? why : "");
	if (why && *why && s == AL_CLIENT_WAITING)
		snprintf(cl->last_error, sizeof(cl->last_error), "%s", why);
	cl->state = s;
	cl->since = (int64_t)time(NULL);
	if (cl->ops->state_cb)
		cl->ops->state_cb(cl->arg, s, why ? why : "");
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_connect(arg);
}

/* Wait for the backoff, then connect again. */
static void client_wait(struct al_client *cl, const char *why)
{
	uint32_t rnd = 0, ms;
	struct timeval tv;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)now_ms();
	ms = al_backoff_ms(cl->min_ms, cl->max_ms, cl->failures++, rnd);
	cl->retry_at = now_ms() + ms;
	transition(cl, AL_CLIENT_WAITING, why);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(cl->timer, &tv);
}

/* Send m; a failure closes (the close callback waits and reconnects). */
static int client_send(struct al_client *cl, const struct al_msg *m)
{
	size_t len;
	char *text = al_msg_encode(m, &len);
	int r;

	if (!text)
		return -ENOMEM;
	r = ws_send(cl->ws, text, len);
	free(text);
	return r;
}

static void send_hello(struct al_client *cl)
{
	struct al_msg m;

	al_msg_init(&m);
	m.type = AL_MSG_HELLO;
	m.protocol = AL_PROTOCOL;
	snprintf(m.gateway, sizeof(m.gateway), "%s", cl->name);
	m.version = cl->ops->version_cb(cl->arg);
	if (client_send(cl, &m) < 0)
		ws_close(cl->ws, 1011, "cannot send");
	al_msg_clear(&m);
}

/* Tell the server why, and close: the close callback reconnects after the backoff. */
static void send_error(struct al_client *cl, uint64_t version, uint16_t code, const char *why)
{
	struct al_msg m;

	al_msg_init(&m);
	m.type = AL_MSG_ERROR;
	m.version = version;
	m.error = xstrdup(why);
	(void)client_send(cl, &m);
	al_msg_clear(&m);
	snprintf(cl->close_why, sizeof(cl->close_why), "%s", why);
	ws_close(cl->ws, code, why);
}

static void open_cb(struct ws *w, void *arg)
{
	struct al_client *cl = arg;

	(void)w;
	cl->connects++;
	cl->close_why[0] = '\0';
	transition(cl, AL_CLIENT_SYNCING, "");
	send_hello(cl);
}

static void message_cb(struct ws *w, const char *data, size_t len, void *arg)
{
	struct al_client *cl = arg;
	struct al_error err = {0};
	struct al_msg m;
	char why[400] = "";
	int r;

	(void)w;
	r = al_msg_parse(data, len, &m, &err);
	if (r < 0) {
		snprintf(why, sizeof(why), "message from the server: %s: %s", err.field, err.msg);
		if (log_ratelimit(&cl->rl))
			log_warnx("allowlist: server %s: %s", cl->wc.url, why);
		send_error(cl, 0, 1002, why);
		goto out;
	}
	switch (m.type) {
	case AL_MSG_SNAPSHOT:
	case AL_MSG_DELTA:
		r = cl->ops->apply_cb(cl->arg, &m, why, sizeof(why));
		if (r == -ESTALE) {
			send_hello(cl);
		} else if (r < 0) {
			send_error(cl, m.version, 1011, why[0] ? why : strerror(-r));
		} else {
			struct al_msg ack;

			al_msg_init(&ack);
			ack.type = AL_MSG_ACK;
			ack.version = m.version;
			if (client_send(cl, &ack) < 0)
				ws_close(cl->ws, 1011, "cannot send");
			al_msg_clear(&ack);
			cl->acked = m.version;
			cl->failures = 0;
			transition(cl, AL_CLIENT_SYNCED, "");
		}
		break;
	case AL_MSG_ERROR:
		snprintf(why, sizeof(why), "the server refused: %s", m.error ? m.error : "");
		log_warnx("allowlist: server %s: %s", cl->wc.url, why);
		snprintf(cl->close_why, sizeof(cl->close_why), "%s", why);
		ws_close(cl->ws, 1000, "error received");
		break;
	default:
		snprintf(why, sizeof(why), "unexpected %s from the server",
			al_msg_type_name[m.type]);
		send_error(cl, m.version, 1002, why);
		break;
	}
out:
	al_msg_clear(&m);
}

static void close_cb(struct ws *w, int err, const char *why, void *arg)
{
	struct al_client *cl = arg;
	char buf[400];

	(void)w;
	cl->ws = NULL;
	if (cl->state == AL_CLIENT_SYNCING || cl->state == AL_CLIENT_SYNCED)
		cl->last_contact = (int64_t)time(NULL); /* its heartbeat held until now */
	if (cl->close_why[0])
		snprintf(buf, sizeof(buf), "%s", cl->close_why);
	else
		snprintf(buf, sizeof(buf), "%s", why && *why ? why : err ? strerror(-err) : "closed");
	cl->close_why[0] = '\0';
	client_wait(cl, buf);
}

static const struct ws_callbacks client_cbs = {
	.open_cb = open_cb,
	.message_cb = message_cb,
	.close_cb = close_cb,
};

static void client_connect(struct al_client *cl)
{
	int r;

	transition(cl, AL_CLIENT_CONNECTING, "");
	r = ws_connect(cl->base, &cl->wc, &cl->wo, &client_cbs, cl, &cl->ws);
	if (r < 0) {
		cl->ws = NULL;
		client_wait(cl, strerror(-r));
	}
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int al_client_new(struct event_base *base, const struct al_client_conf *c,
	const struct al_client_ops *ops, void *arg, struct al_client **ret)
{
	struct al_client *cl = xcalloc(1, sizeof(*cl));

	cl->base = base;
	cl->wc.url = cl->url = xstrdup(c->url);
	cl->wc.ca_file = cl->ca = dup_or_null(c->ca);
	cl->wc.cert_file = cl->cert = dup_or_null(c->cert);
	cl->wc.key_file = cl->key = dup_or_null(c->key);
	cl->wc.token = cl->token = dup_or_null(c->token);
	cl->wo = (struct ws_opts){.max_message = c->max_message, .ping_ms = c->ping_ms,
		.timeout_ms = c->timeout_ms};
	cl->name = xstrdup(c->name);
	cl->min_ms = c->reconnect_min_ms ? c->reconnect_min_ms : 1000;
	cl->max_ms = c->reconnect_max_ms > cl->min_ms ? c->reconnect_max_ms : cl->min_ms;
	cl->ops = ops;
	cl->arg = arg;
	cl->state = AL_CLIENT_WAITING;
	cl->since = (int64_t)time(NULL);
	cl->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	cl->timer = evtimer_new(base, retry_cb, cl);
	if (!cl->timer) {
		al_client_free(cl);
		*ret = NULL;
		return -ENOMEM;
	}
	*ret = cl;
	client_connect(cl);
	return 0;
}

void al_client_free(struct al_client *cl)
{
	if (!cl)
		return;
	ws_free(cl->ws);
	if (cl->timer)
		event_free(cl->timer);
	free(cl->url);
	free(cl->ca);
	free(cl->cert);
	free(cl->key);
	free(cl->token);
	free(cl->name);
	free(cl);
}

enum al_client_state al_client_get_state(const struct al_client *cl)
{
	return cl->state;
}

json_t *al_client_status(const struct al_client *cl)
{
	uint64_t now = now_ms();

	return json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "state",
		al_client_state_name[cl->state], "since", (json_int_t)cl->since,
		"last_error", cl->last_error, "connects", (json_int_t)cl->connects, "failures",
		(json_int_t)cl->failures, "retry_in_ms",
		(json_int_t)(cl->state == AL_CLIENT_WAITING && cl->retry_at > now
				     ? cl->retry_at - now
				     : 0),
		"acked", (json_int_t)cl->acked, "last_contact",
		(json_int_t)(cl->ws && cl->state != AL_CLIENT_CONNECTING ? (int64_t)time(NULL)
									  : cl->last_contact));
}
