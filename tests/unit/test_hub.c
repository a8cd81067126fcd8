/*
 * test_hub.c - unit tests for src/server/hub.c with its neighbours replaced at link time:
 * a fake store (versions, changes, subscriber, gateway reports, audit), fake API requests
 * and fake WebSocket connections that record what the hub sends.  The codec (al_proto.c)
 * and the config machinery are the real ones.
 *
 * What they show: auth (token, certificate, refusals answered and audited), hello answered
 * from the version held, deltas pipelined to every gateway that said hello and encoded once
 * per starting version, acks checked, a gateway too slow to read dropped, a second
 * connection of a gateway replacing the first, max_gateways, the hello timeout, the
 * registry's version and lag, and [hub]'s validation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "al_proto.h"
#include "api.h"
#include "api_route.h"
#include "conf.h"
#include "hub_conf.h"
#include "server.h"
#include "store.h"
#include "util.h"
#include "ws.h"

/* --- the fake store --- */

#define MAX_REPORTS 32

struct store {
	uint64_t version;
	uint64_t oldest; /* a delta from before this is a snapshot */
	void (*cb)(void *arg, uint64_t version);
	void *cb_arg;
	unsigned n_changes;
	struct store_gateway reports[MAX_REPORTS]; /* the last one of each name */
	size_t n_reports;
	unsigned n_audit;
	char audit_who[64];
	char audit_reason[256];
};

static struct store fake;

uint64_t store_version(struct store *s)
{
	return s->version;
}

int store_changes(struct store *s, uint64_t from, struct al_msg *ret)
{
	char key[32];

	al_msg_init(ret);
	s->n_changes++;
	ret->version = s->version;
	if (from == 0 || from < s->oldest || from > s->version) {
		ret->type = AL_MSG_SNAPSHOT;
		return 0;
	}
	ret->type = AL_MSG_DELTA;
	ret->from = from;
	for (uint64_t v = from + 1; v <= s->version; v++) {
		snprintf(key, sizeof(key), "%llu", (unsigned long long)v);
		assert_int_equal(al_msg_add_del(ret, key), 0);
	}
	return 0;
}

void store_subscribe(struct store *s, void (*cb)(void *arg, uint64_t version), void *arg)
{
	s->cb = cb;
	s->cb_arg = arg;
}

int store_gateway_report(struct store *s, const struct store_gateway *g)
{
	for (size_t i = 0; i < s->n_reports; i++)
		if (streq(s->reports[i].name, g->name)) {
			s->reports[i] = *g;
			return 0;
		}
	assert_true(s->n_reports < MAX_REPORTS);
	s->reports[s->n_reports++] = *g;
	return 0;
}

int store_gateways_each(struct store *s, int (*cb)(const struct store_gateway *g, void *arg),
	void *arg)
{
	for (size_t i = 0; i < s->n_reports; i++)
		cb(&s->reports[i], arg);
	return 0;
}

int store_audit(struct store *s, const struct store_who *who, const char *action,
	int64_t entry, const json_t *detail)
{
	(void)entry;
	assert_string_equal(action, "gateway-refused");
	s->n_audit++;
	snprintf(s->audit_who, sizeof(s->audit_who), "%s", who->who);
	snprintf(s->audit_reason, sizeof(s->audit_reason), "%s",
		json_string_value(json_object_get(detail, "reason")));
	return 0;
}

/* The version moved: what store.c does on the next loop turn. */
static void move(uint64_t version)
{
	fake.version = version;
	fake.cb(fake.cb_arg, version);
}

/* --- fake requests --- */

struct api_req {
	const char *who; /* "" for nobody */
	enum api_access access;
	const char *cn;
	const char *authorization;
	int code; /* the error answered, 0 for none */
	char error[256];
};

const char *api_req_who(const struct api_req *r)
{
	return r->who;
}

enum api_access api_req_access(const struct api_req *r)
{
	return r->access;
}

const char *api_req_tls_peer(const struct api_req *r)
{
	return r->cn;
}

const char *api_req_header(const struct api_req *r, const char *name)
{
	return streq(name, "Authorization") ? r->authorization : NULL;
}

const char *api_req_peer(const struct api_req *r)
{
	(void)r;
	return "192.0.2.1";
}

void api_reply_error(struct api_req *r, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	(void)field;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

/* --- fake WebSocket connections: they record what is sent --- */

#define MAX_SENT 16

static struct ws *last_ws; /* the last one api_ws_accept() made */

struct ws {
	const struct ws_callbacks *cb;
	void *arg;
	json_t *sent[MAX_SENT];
	size_t n_sent;
	bool full;	/* the peer reads nothing: ws_send() says -ENOBUFS */
	bool closed;	/* ws_close() called */
	uint16_t code;
	struct ws_opts opts;
};

struct ws *api_ws_accept(struct api_req *r, const struct ws_opts *o,
	const struct ws_callbacks *cb, void *arg)
{
	struct ws *w = xcalloc(1, sizeof(*w));

	(void)r;
	w->cb = cb;
	w->arg = arg;
	w->opts = *o;
	last_ws = w;
	return w;
}

int ws_send(struct ws *w, const char *data, size_t len)
{
	json_error_t e;

	if (w->closed)
		return -ENOTCONN;
	if (w->full)
		return -ENOBUFS;
	assert_true(w->n_sent < MAX_SENT);
	w->sent[w->n_sent] = json_loadb(data, len, 0, &e);
	assert_non_null(w->sent[w->n_sent]);
	w->n_sent++;
	return 0;
}

size_t ws_pending(const struct ws *w)
{
	(void)w;
	return 65536;
}

void ws_close(struct ws *w, uint16_t code, const char *reason)
{
	(void)reason;
	w->closed = true;
	w->code = code;
}

void ws_free(struct ws *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_sent; i++)
		json_decref(w->sent[i]);
	free(w);
}

/* --- the test's side of a connection --- */

static struct event_base *base;
static struct server srv;
static struct hub *hub;

static void setup_hub(const char *conf_text)
{
	static const struct conf_section_type *const types[] = {&conf_hub_type};
	struct conf_errors errs = {0};

	memset(&fake, 0, sizeof(fake));
	fake.version = 10;
	fake.oldest = 5;
	base = event_base_new();
	srv = (struct server){.base = base, .name = "r1", .store = &fake};
	srv.conf = conf_new(types, ARRAY_SIZE(types));
	assert_int_equal(conf_load_string(srv.conf, "t.conf", conf_text, &errs), 0);
	assert_int_equal(conf_validate(srv.conf, &errs), 0);
	assert_int_equal(hub_new(&srv, &hub), 0);
	assert_non_null(fake.cb);
}

static int teardown(void **state)
{
	(void)state;
	hub_free(hub);
	hub = NULL;
	conf_free(srv.conf);
	event_base_free(base);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	setup_hub("[hub]\nmax_gateways = 3\n");
	return 0;
}

static struct api_route_table routes(void)
{
	struct api_route_table t;

	hub_routes(hub, &t);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.routes[0].path, "/ws");
	assert_int_equal(t.routes[0].access, API_OPEN);
	return t;
}

/* The request's answer: a new connection, or NULL when refused (r->code says how). */
static struct ws *request(struct api_req *r)
{
	struct api_route_table t = routes();

	last_ws = NULL;
	t.routes[0].handler_cb(r, t.arg);
	return r->code ? NULL : last_ws;
}

static struct ws *connect_token(void)
{
	struct api_req r = {.who = "token:gw", .access = API_READ, .authorization = "Bearer x"};
	struct ws *w = request(&r);

	assert_non_null(w);
	return w;
}

static void deliver(struct ws *w, const char *text)
{
	w->cb->message_cb(w, text, strlen(text), w->arg);
}

static void hello(struct ws *w, const char *name, unsigned long long version)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
		"{\"type\":\"hello\",\"protocol\":1,\"gateway\":\"%s\",\"version\":%llu}", name,
		version);
	deliver(w, buf);
}

static void ack(struct ws *w, unsigned long long version)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "{\"type\":\"ack\",\"version\":%llu}", version);
	deliver(w, buf);
}

/* The peer is gone: what the ws does after a close (the hub frees its side). */
static void gone(struct ws *w)
{
	w->cb->close_cb(w, 0, "closed by peer (1000)", w->arg);
	ws_free(w);
}

static json_t *sent(struct ws *w, size_t i)
{
	assert_true(i < w->n_sent);
	return w->sent[i];
}

static const char *type_of(json_t *m)
{
	return json_string_value(json_object_get(m, "type"));
}

static json_int_t int_of(json_t *m, const char *key)
{
	return json_integer_value(json_object_get(m, key));
}

/* The registry's entry of a gateway (hub_gateways()), or NULL: a new reference. */
static json_t *gateway(const char *name)
{
	json_t *arr = hub_gateways(hub), *g, *ret = NULL;
	size_t i;

	json_array_foreach(arr, i, g)
		if (streq(json_string_value(json_object_get(g, "name")), name)) {
			assert_null(ret); /* listed once */
			ret = json_incref(g);
		}
	json_decref(arr);
	return ret;
}

/* --- tests --- */

static void test_auth(void **state)
{
	struct api_req nobody = {.who = "", .access = API_OPEN};
	struct api_req unknown = {.who = "", .access = API_OPEN, .authorization = "Bearer bad"};
	struct api_req session = {.who = "admin", .access = API_ADMIN};
	struct api_req cert = {.who = "", .access = API_OPEN, .cn = "gw-cert"};
	struct ws *w;

	(void)state;
	assert_null(request(&nobody));
	assert_int_equal(nobody.code, 401);
	assert_int_equal(fake.n_audit, 1);
	assert_string_equal(fake.audit_who, "anonymous");
	assert_string_equal(fake.audit_reason,
		"authentication required: a bearer token or a client certificate");
	assert_null(request(&unknown));
	assert_int_equal(unknown.code, 401);
	assert_string_equal(unknown.error, "unknown token");
	assert_int_equal(fake.n_audit, 2);
	/* a browser's session is not a gateway */
	assert_null(request(&session));
	assert_int_equal(session.code, 401);
	assert_int_equal(fake.n_audit, 3);

	w = request(&cert);
	assert_non_null(w);
	assert_int_equal(w->opts.max_message, 65536);
	assert_int_equal(w->opts.ping_ms, 10000);
	assert_int_equal(w->opts.timeout_ms, 30000);
	hello(w, "gw1", 0);
	assert_int_equal(w->n_sent, 1);
	w = connect_token();
	hello(w, "gw2", 0);
	assert_int_equal(w->n_sent, 1);
	assert_int_equal(fake.n_audit, 3);
}

static void test_hello_answers_from_the_version_held(void **state)
{
	struct ws *a = connect_token(), *b = connect_token(), *c = connect_token();
	json_t *g;

	(void)state;
	assert_int_equal(a->n_sent, 0); /* nothing before the hello */
	hello(a, "a", 0);
	hello(b, "b", 7);
	hello(c, "c", 10);
	assert_string_equal(type_of(sent(a, 0)), "snapshot");
	assert_int_equal(int_of(sent(a, 0), "version"), 10);
	assert_string_equal(type_of(sent(b, 0)), "delta");
	assert_int_equal(int_of(sent(b, 0), "from"), 7);
	assert_int_equal(json_array_size(json_object_get(sent(b, 0), "del")), 3);
	/* up to date: an empty delta */
	assert_string_equal(type_of(sent(c, 0)), "delta");
	assert_int_equal(int_of(sent(c, 0), "from"), 10);
	assert_int_equal(int_of(sent(c, 0), "version"), 10);
	/* what a hello says it holds counts as acknowledged */
	g = gateway("b");
	assert_non_null(g);
	assert_int_equal(int_of(g, "version"), 7);
	assert_int_equal(int_of(g, "lag"), 3);
	assert_true(json_is_true(json_object_get(g, "connected")));
	assert_string_equal(json_string_value(json_object_get(g, "replica")), "r1");
	json_decref(g);
	/* a version the store never had is not acknowledged */
	gone(a);
	a = connect_token();
	hello(a, "a", 99);
	assert_string_equal(type_of(sent(a, 0)), "snapshot");
	g = gateway("a");
	assert_int_equal(int_of(g, "version"), 0);
	json_decref(g);
}

static void test_deltas_pipelined_and_encoded_once(void **state)
{
	struct ws *a = connect_token(), *b = connect_token(), *quiet = connect_token();
	unsigned before;

	(void)state;
	hello(a, "a", 10);
	hello(b, "b", 10);
	before = fake.n_changes;
	move(11);
	/* both at 10: one store_changes() for both */
	assert_int_equal(fake.n_changes - before, 1);
	move(13);
	assert_int_equal(a->n_sent, 3);
	assert_int_equal(int_of(sent(a, 1), "from"), 10);
	assert_int_equal(int_of(sent(a, 1), "version"), 11);
	/* not acknowledged, yet the next delta follows the last one sent */
	assert_int_equal(int_of(sent(a, 2), "from"), 11);
	assert_int_equal(int_of(sent(a, 2), "version"), 13);
	assert_true(json_equal(sent(a, 2), sent(b, 2)));
	/* no hello, nothing sent */
	assert_int_equal(quiet->n_sent, 0);

	ack(a, 11);
	ack(a, 13);
	assert_false(a->closed);
	json_t *g = gateway("a");
	assert_int_equal(int_of(g, "version"), 13);
	assert_int_equal(int_of(g, "lag"), 0);
	json_decref(g);
	g = gateway("b");
	assert_int_equal(int_of(g, "lag"), 3);
	json_decref(g);
}

static void test_bad_acks_and_messages(void **state)
{
	struct ws *w = connect_token();
	json_t *m;

	(void)state;
	ack(w, 1); /* before hello */
	assert_true(w->closed);
	assert_int_equal(w->code, 1008);
	m = sent(w, 0);
	assert_string_equal(type_of(m), "error");
	assert_string_equal(json_string_value(json_object_get(m, "error")), "ack before hello");
	gone(w);

	w = connect_token();
	hello(w, "gw", 8);
	ack(w, 11); /* never sent */
	assert_true(w->closed);
	assert_int_equal(w->code, 1008);
	assert_string_equal(type_of(sent(w, 1)), "error");
	gone(w);

	w = connect_token();
	hello(w, "gw", 8);
	ack(w, 7); /* older than what it holds */
	assert_true(w->closed);
	gone(w);

	w = connect_token();
	deliver(w, "{\"type\":\"hello\",\"protocol\":2,\"gateway\":\"gw\",\"version\":0}");
	assert_true(w->closed);
	assert_non_null(strstr(json_string_value(json_object_get(sent(w, 0), "error")),
		"protocol 2"));
	gone(w);

	w = connect_token();
	deliver(w, "not json");
	assert_true(w->closed);
	assert_string_equal(type_of(sent(w, 0)), "error");
	gone(w);

	/* a second hello must name the same gateway */
	w = connect_token();
	hello(w, "gw", 10);
	hello(w, "gw", 10);
	assert_false(w->closed);
	assert_int_equal(w->n_sent, 2);
	hello(w, "other", 10);
	assert_true(w->closed);
	gone(w);
	/* gone: the registry says so */
	m = gateway("gw");
	assert_true(json_is_false(json_object_get(m, "connected")));
	json_decref(m);
}

static void test_slow_gateway_dropped(void **state)
{
	struct ws *slow = connect_token(), *fast = connect_token();
	json_t *g;

	(void)state;
	hello(slow, "slow", 10);
	hello(fast, "fast", 10);
	slow->full = true;
	move(11);
	/* dropped, not buffered for: closed with 1013, the others go on */
	assert_true(slow->closed);
	assert_int_equal(slow->code, 1013);
	assert_int_equal(slow->n_sent, 1);
	assert_int_equal(fast->n_sent, 2);
	g = gateway("slow");
	assert_true(json_is_false(json_object_get(g, "connected")));
	json_decref(g);
	gone(slow);
	move(12);
	assert_int_equal(fast->n_sent, 3);
	assert_false(fast->closed);
}

static void test_same_gateway_again_replaces(void **state)
{
	struct ws *old = connect_token(), *young = connect_token();
	json_t *g;

	(void)state;
	hello(old, "gw", 10);
	hello(young, "gw", 10);
	assert_true(old->closed);
	assert_non_null(strstr(json_string_value(json_object_get(sent(old, 1), "error")),
		"replaced by a new connection"));
	assert_false(young->closed);
	/* the old one's close does not mark the gateway disconnected */
	gone(old);
	g = gateway("gw");
	assert_true(json_is_true(json_object_get(g, "connected")));
	json_decref(g);
	for (size_t i = 0; i < fake.n_reports; i++)
		if (streq(fake.reports[i].name, "gw"))
			assert_true(fake.reports[i].connected);
}

static void test_max_gateways(void **state)
{
	struct api_req r = {.who = "token:gw", .access = API_READ, .authorization = "Bearer x"};
	struct ws *w[3];

	(void)state;
	for (size_t i = 0; i < 3; i++)
		w[i] = connect_token();
	assert_null(request(&r));
	assert_int_equal(r.code, 503);
	assert_int_equal(fake.n_audit, 1);
	gone(w[1]);
	r.code = 0;
	assert_non_null(request(&r));
	(void)w;
}

static void test_hello_timeout(void **state)
{
	struct ws *w;
	struct timeval tv = {.tv_usec = 600000};

	(void)state;
	teardown(NULL);
	setup_hub("[hub]\nping = 100ms\ntimeout = 300ms\n");
	w = connect_token();
	assert_int_equal(w->opts.timeout_ms, 300);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_true(w->closed);
	assert_non_null(strstr(json_string_value(json_object_get(sent(w, 0), "error")),
		"no hello within 300ms"));
}

static void test_conf(void **state)
{
	static const struct conf_section_type *const types[] = {&conf_hub_type};
	static const char *const bad[] = {
		"[hub]\npath = ws\n",
		"[hub]\npath = /\n",
		"[hub]\npath = /a/{b}\n",
		"[hub]\nping = 10s\ntimeout = 5s\n",
		"[hub]\nmax_gateways = 0\n",
		"[hub]\nmax_message = 10\n",
	};
	struct conf_errors errs = {0};
	struct conf *c;
	struct api_route_table t;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		c = conf_new(types, 1);
		if (conf_load_string(c, "t.conf", bad[i], &errs) == 0)
			assert_int_equal(conf_validate(c, &errs), -EINVAL);
		assert_true(errs.n > 0);
		conf_errors_clear(&errs);
		conf_free(c);
	}
	/* a reload moves the endpoint */
	c = conf_new(types, 1);
	assert_int_equal(conf_load_string(c, "t.conf", "[hub]\npath = /gw/ws\n", &errs), 0);
	assert_int_equal(conf_validate(c, &errs), 0);
	assert_int_equal(hub_reconf(hub, c), 0);
	hub_routes(hub, &t);
	assert_string_equal(t.routes[0].path, "/gw/ws");
	assert_int_equal(hub_reconf(hub, srv.conf), 0);
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_answers_from_the_version_held, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_deltas_pipelined_and_encoded_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_bad_acks_and_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_gateway_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_gateway_again_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_gateways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
