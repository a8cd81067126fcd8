/*
 * test_api.c - unit tests for the API server (src/api/api.c) with route tables of its own:
 * handlers and their params, query and caller; 404, 405 with Allow, 503 for a stopped
 * module's route and when_stopped; JSON bodies (bad JSON, not an object, unknown field);
 * 413; a handler that forgets to answer; event streams (framing, max_streams, a client
 * that goes, a client that does not read); the request deadline (a slow client is closed
 * while others are served) and max_clients (the oldest waiting connection makes room).
 *
 * The server listens on a UNIX socket in a temporary folder only (listen = none), on the
 * test's own loop; the clients are plain sockets read between turns of that loop.  Every
 * wait is bounded.  The caller is an admin over the socket when it is root or in
 * socket_group, which the test sets to its own primary group.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "api.h"
#include "api_server.h"
#include "auth_store.h"
#include "conf.h"
#include "metrics.h"
#include "passwd.h"
#include "modules.h"
#include "util.h"

struct t {
	char dir[64];
	char sock[100];
	struct event_base *base;
	struct conf *conf;
	struct metrics *metrics;
	struct api *api;
	/* what the handlers saw */
	int calls;
	void *arg_seen;
	struct api_stream *stream;
	int stream_closed;
};

static struct t *T; /* the handlers' view of the test */

/* ---------------------------------------------------------------- handlers */

static void h_item(struct api_req *r, void *arg)
{
	const char *q = api_req_query(r, "q");

	T->calls++;
	T->arg_seen = arg;
	api_reply_json(r, 200, json_pack("{s:s, s:s?, s:s, s:s, s:i, s:b}", "id",
		api_req_param(r, "id"), "q", q, "who", api_req_who(r), "peer", api_req_peer(r),
		"access", (int)api_req_access(r), "tls", api_req_tls(r)));
}

static void h_post(struct api_req *r, void *arg)
{
	static const char *const allowed[] = {"weight", "enabled", NULL};
	json_t *o = api_req_json(r);

	(void)arg;
	T->calls++;
	if (!o || !api_json_only(r, o, allowed))
		return;
	api_reply_json(r, 201, json_pack("{sO}", "got", o));
}

static void h_forgets(struct api_req *r, void *arg)
{
	(void)r;
	(void)arg;
	T->calls++;
}

static void stream_close_cb(struct api_stream *s, void *arg)
{
	struct t *t = arg;

	assert_ptr_equal(s, t->stream);
	t->stream = NULL;
	t->stream_closed++;
}

static void h_stream(struct api_req *r, void *arg)
{
	struct api_stream *s;

	(void)arg;
	T->calls++;
	s = api_stream_start(r, stream_close_cb, T);
	if (s)
		T->stream = s;
}

static int module_running = 1;

static const struct api_route daemon_routes[] = {
	{EVHTTP_REQ_GET, "/t/items/{id}", API_READ, h_item, false},
	{EVHTTP_REQ_POST, "/t/items/{id}", API_ADMIN, h_post, false},
	{EVHTTP_REQ_GET, "/t/forgets", API_READ, h_forgets, false},
	{EVHTTP_REQ_GET, "/t/stream", API_READ, h_stream, false},
};

static const struct api_route module_routes[] = {
	{EVHTTP_REQ_GET, "/m/status", API_READ, h_item, true},
	{EVHTTP_REQ_GET, "/m/{id}", API_READ, h_item, false},
};

static void set_routes(struct t *t, bool running)
{
	struct api_route_table tables[] = {
		{NULL, daemon_routes, ARRAY_SIZE(daemon_routes), t, true},
		{"mod", module_routes, ARRAY_SIZE(module_routes), running ? &module_running : NULL,
			running},
	};

	api_set_routes(t->api, tables, ARRAY_SIZE(tables));
}

/* ---------------------------------------------------------------- set-up */

static int setup_with(void **state, const char *extra)
{
	struct t *t = xcalloc(1, sizeof(*t));
	struct conf_errors errs = {0};
	struct group *g = getgrgid(getgid());
	char text[1024];
	int r;

	signal(SIGPIPE, SIG_IGN);
	snprintf(t->dir, sizeof(t->dir), "/tmp/egress-test-api.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->sock, sizeof(t->sock), "%s/api.sock", t->dir);
	snprintf(text, sizeof(text),
		"[api]\nlisten = none\nsocket = %s\nsocket_group = %s\nstate_dir = %s/state\n"
		"max_body = 1024\nmax_streams = 1\n%s",
		t->sock, g ? g->gr_name : "root", t->dir, extra);
	t->conf = egress_conf_new();
	r = conf_load_string(t->conf, "test.conf", text, &errs);
	if (r == 0)
		r = conf_validate(t->conf, &errs);
	if (r < 0) {
		conf_errors_print(&errs, stderr);
		fail();
	}
	t->base = event_base_new();
	t->metrics = metrics_new();
	r = api_new(&(struct api_env){.base = t->base, .metrics = t->metrics}, t->conf, &t->api);
	assert_int_equal(r, 0);
	set_routes(t, true);
	T = t;
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, "");
}

static int teardown(void **state)
{
	struct t *t = *state;
	char path[160];

	api_free(t->api);
	assert_int_equal(access(t->sock, F_OK), -1); /* the socket went with the server */
	metrics_free(t->metrics);
	event_base_free(t->base);
	conf_free(t->conf);
	/* what egressd keeps in state_dir: the first start's password hash, the tokens */
	snprintf(path, sizeof(path), "%s/state/password_hash", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state/tokens.json", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state", t->dir);
	rmdir(path);
	rmdir(t->dir);
	free(t);
	T = NULL;
	return 0;
}

/* ---------------------------------------------------------------- clients */

static int client(struct t *t)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, 10);
			continue;
		}
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* Turn the loop (without blocking) and wait up to ms for fd to be readable. */
static void pump(struct t *t, int fd, int ms)
{
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	if (fd >= 0)
		poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, ms);
	else
		usleep((useconds_t)ms * 1000);
	event_base_loop(t->base, EVLOOP_NONBLOCK);
}

/*
 * Read from fd, turning the loop, until the peer closes or *out holds until (a substring);
 * at most 5 s.  Returns the bytes read (NUL-terminated, caller frees); *eof: it closed.
 */
static char *read_until(struct t *t, int fd, const char *until, bool *eof)
{
	size_t len = 0, cap = 4096;
	char *out = xmalloc(cap);
	uint64_t end = now_ms() + 5000;

	*eof = false;
	out[0] = '\0';
	while (now_ms() < end) {
		ssize_t n;

		pump(t, fd, 10);
		n = recv(fd, out + len, cap - len - 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			*eof = true;
			break;
		}
		if (n > 0) {
			len += (size_t)n;
			out[len] = '\0';
			if (cap - len < 1024)
				out = xrealloc(out, cap *= 2);
			if (until && strstr(out, until))
				break;
		}
	}
	return out;
}

struct resp {
	int status;
	char head[2048];
	json_t *json;
	char *body;
};

static void resp_clear(struct resp *r)
{
	json_decref(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* One request on its own connection ("Connection: close" is added to the head), with
 * headers (NULL or lines each ending in CRLF). */
static void request_h(struct t *t, const char *method, const char *path, const char *headers,
	const char *body, struct resp *ret)
{
	char head[1024];
	char *all, *sep;
	bool eof;
	int fd = client(t);

	memset(ret, 0, sizeof(*ret));
	snprintf(head, sizeof(head),
		"%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n",
		method, path, body ? strlen(body) : 0, headers ? headers : "");
	send_all(fd, head, strlen(head));
	if (body)
		send_all(fd, body, strlen(body));
	all = read_until(t, fd, NULL, &eof);
	close(fd);
	assert_true(eof);
	sep = strstr(all, "\r\n\r\n");
	assert_non_null(sep);
	*sep = '\0';
	snprintf(ret->head, sizeof(ret->head), "%s", all);
	assert_int_equal(sscanf(all, "HTTP/1.1 %d", &ret->status), 1);
	ret->body = xstrdup(sep + 4);
	ret->json = json_loads(ret->body, JSON_DECODE_ANY, NULL);
	free(all);
}

static void request(struct t *t, const char *method, const char *path, const char *body,
	struct resp *ret)
{
	request_h(t, method, path, NULL, body, ret);
}

/* Does the registry's text hold line (a whole line)? */
static bool metrics_have(struct t *t, const char *line)
{
	char *text, want[256];
	size_t len;
	bool found;

	assert_int_equal(metrics_render(t->metrics, &text, &len), 0);
	snprintf(want, sizeof(want), "\n%s\n", line);
	found = strstr(text, want) != NULL;
	free(text);
	return found;
}

static const char *jstr(const struct resp *r, const char *key)
{
	return json_string_value(json_object_get(r->json, key));
}

/* ---------------------------------------------------------------- tests */

static void test_route_params_query_caller(void **state)
{
	struct t *t = *state;
	struct resp r;
	char who[32];

	request(t, "GET", "/t/items/a%20b?q=x%26y&other=1", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(&r, "id"), "a b");
	assert_string_equal(jstr(&r, "q"), "x&y");
	snprintf(who, sizeof(who), "uid:%u", (unsigned)getuid());
	assert_string_equal(jstr(&r, "who"), who);
	assert_string_equal(jstr(&r, "peer"), "unix");
	assert_false(json_boolean_value(json_object_get(r.json, "tls")));
	assert_int_equal(json_integer_value(json_object_get(r.json, "access")), API_ADMIN);
	assert_ptr_equal(t->arg_seen, t);
	assert_non_null(strstr(r.head, "Content-Type: application/json"));
	resp_clear(&r);
	/* HEAD of a GET route: the head, no body */
	request(t, "HEAD", "/t/items/1", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");
	assert_non_null(strstr(r.head, "Content-Length: "));
	resp_clear(&r);
}

static void test_not_found_and_not_allowed(void **state)
{
	struct t *t = *state;
	struct resp r;

	request(t, "GET", "/t/nothing", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(jstr(&r, "error"), "no such resource: /t/nothing");
	resp_clear(&r);
	request(t, "DELETE", "/t/items/1", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.head, "\r\nAllow: GET, HEAD, POST"));
	assert_non_null(jstr(&r, "error"));
	resp_clear(&r);
	request(t, "GET", "/t/items/..", NULL, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(jstr(&r, "error"), "bad request path");
	resp_clear(&r);
	assert_int_equal(t->calls, 0);
}

static void test_stopped_module(void **state)
{
	struct t *t = *state;
	struct resp r;

	request(t, "GET", "/m/x", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_ptr_equal(t->arg_seen, &module_running);
	resp_clear(&r);
	set_routes(t, false);
	t->calls = 0;
	request(t, "GET", "/m/x", NULL, &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(jstr(&r, "error"), "module mod is not running");
	assert_int_equal(t->calls, 0);
	resp_clear(&r);
	/* when_stopped: called, with arg NULL */
	t->arg_seen = t;
	request(t, "GET", "/m/status", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(t->calls, 1);
	assert_null(t->arg_seen);
	resp_clear(&r);
}

static void test_json_bodies(void **state)
{
	struct t *t = *state;
	struct resp r;

	request(t, "POST", "/t/items/1", "{\"weight\": 3, \"enabled\": false}", &r);
	assert_int_equal(r.status, 201);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "got"),
				 "weight")), 3);
	resp_clear(&r);
	request(t, "POST", "/t/items/1", "{\"weight\": 3,", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(jstr(&r, "error"), "bad JSON at line 1 column"));
	assert_null(json_object_get(r.json, "field"));
	resp_clear(&r);
	request(t, "POST", "/t/items/1", "[1, 2]", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(jstr(&r, "error"), "expected a JSON object");
	resp_clear(&r);
	request(t, "POST", "/t/items/1", NULL, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(jstr(&r, "error"), "expected a JSON object, got an empty body");
	resp_clear(&r);
	request(t, "POST", "/t/items/1", "{\"weight\": 1, \"wieght\": 2}", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(jstr(&r, "error"), "unknown field \"wieght\"");
	assert_string_equal(jstr(&r, "field"), "wieght");
	resp_clear(&r);
	request(t, "POST", "/t/items/1", "{\"weight\": 1, \"weight\": 2}", &r);
	assert_int_equal(r.status, 400);
	resp_clear(&r);
}

static void test_body_too_large(void **state)
{
	struct t *t = *state;
	char body[2048];
	struct resp r;

	memset(body, ' ', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	body[0] = '{';
	body[sizeof(body) - 2] = '}';
	t->calls = 0;
	request(t, "POST", "/t/items/1", body, &r);
	assert_int_equal(r.status, 413);
	assert_int_equal(t->calls, 0);
	resp_clear(&r);
}

static void test_handler_that_does_not_answer(void **state)
{
	struct t *t = *state;
	struct resp r;

	request(t, "GET", "/t/forgets", NULL, &r);
	assert_int_equal(r.status, 500);
	assert_int_equal(t->calls, 1);
	resp_clear(&r);
}

static void test_healthz_without_uplinks(void **state)
{
	struct t *t = *state;
	struct resp r;

	request(t, "GET", "/healthz", NULL, &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "{\"status\":\"unavailable\",\"uplinks\":0,\"usable\":0}\n");
	resp_clear(&r);
}

/* egress-server has no uplinks: it is healthy while it answers. */
static void test_healthz_no_uplinks(void **state)
{
	struct t *t = *state;
	struct resp r;

	api_free(t->api);
	assert_int_equal(api_new(&(struct api_env){.base = t->base, .metrics = t->metrics,
					     .no_uplinks = true},
				 t->conf, &t->api),
		0);
	set_routes(t, true);
	request(t, "GET", "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}\n");
	resp_clear(&r);
}

static int open_stream(struct t *t, char **head)
{
	static const char req[] = "GET /t/stream HTTP/1.1\r\nHost: t\r\n\r\n";
	bool eof;
	int fd = client(t);

	send_all(fd, req, sizeof(req) - 1);
	*head = read_until(t, fd, "\r\n\r\n", &eof);
	assert_false(eof);
	return fd;
}

static void test_stream(void **state)
{
	struct t *t = *state;
	char *head, *got;
	bool eof;
	int fd = open_stream(t, &head);
	struct resp r;

	assert_non_null(strstr(head, "HTTP/1.1 200"));
	assert_non_null(strstr(head, "Content-Type: text/event-stream"));
	assert_non_null(t->stream);
	free(head);
	assert_int_equal(api_stream_send(t->stream, "uplink", 7, "line one\nline two"), 0);
	got = read_until(t, fd, "\n\n", &eof);
	/* chunked: the event is one chunk, framed as RFC 8895 9.2 says */
	assert_non_null(strstr(got, "event: uplink\nid: 7\ndata: line one\ndata: line two\n\n"));
	free(got);
	/* max_streams = 1 */
	request(t, "GET", "/t/stream", NULL, &r);
	assert_int_equal(r.status, 503);
	resp_clear(&r);
	/* the client goes: noticed at the next send, close_cb runs once */
	close(fd);
	for (int i = 0; i < 50 && t->stream; i++) {
		api_stream_send(t->stream, NULL, 0, "ping");
		pump(t, -1, 10);
	}
	assert_null(t->stream);
	assert_int_equal(t->stream_closed, 1);
	/* a new stream may start */
	fd = open_stream(t, &head);
	free(head);
	assert_non_null(t->stream);
	/* closed from our side: close_cb runs, the chunked reply ends */
	api_stream_close(t->stream);
	assert_int_equal(t->stream_closed, 2);
	got = read_until(t, fd, "0\r\n\r\n", &eof);
	assert_non_null(strstr(got, "0\r\n\r\n"));
	free(got);
	close(fd);
}

static void test_stream_not_read_is_dropped(void **state)
{
	struct t *t = *state;
	char data[16384], *head;
	int fd = open_stream(t, &head), r = 0, sent = 0;

	free(head);
	memset(data, 'x', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	/* the client never reads: its queue fills, and the stream is refused, not grown */
	for (int i = 0; i < 4096 && r == 0; i++) {
		r = api_stream_send(t->stream, "big", 0, data);
		sent += r == 0;
		pump(t, -1, 0);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(sent < 1024); /* well under 16 MiB queued */
	for (int i = 0; i < 100 && t->stream; i++)
		pump(t, -1, 10);
	assert_null(t->stream);
	assert_int_equal(t->stream_closed, 1);
	close(fd);
}

static void test_slow_client_is_closed_others_served(void **state)
{
	struct t *t = *state;
	static const char part[] = "GET /t/items/1 HTTP/1.1\r\nHost: t\r\n";
	struct resp r;
	bool closed = false;
	int slow = client(t);

	send_all(slow, part, sizeof(part) - 1);
	pump(t, -1, 10);
	/* meanwhile others are served */
	request(t, "GET", "/t/items/2", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	/*
	 * A byte every 50 ms does not keep it: it is closed at the deadline (timeout = 300ms)
	 * while it is still sending.  (evhttp's own idle timer, 1 s, would never fire: each
	 * byte resets it.)
	 */
	for (int i = 0; i < 60 && !closed; i++) {
		char c;
		ssize_t n;

		if (send(slow, "X", 1, MSG_NOSIGNAL) < 0) {
			closed = true;
			break;
		}
		pump(t, slow, 50);
		n = recv(slow, &c, 1, MSG_DONTWAIT);
		assert_true(n <= 0); /* no answer to a request that never ends */
		closed = n == 0 || (n < 0 && errno == ECONNRESET);
	}
	assert_true(closed);
	close(slow);
	assert_int_equal(t->calls, 1);
}

static void test_max_clients_oldest_waiting_goes(void **state)
{
	struct t *t = *state;
	static const char last[] = "GET /t/items/4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	int idle[2];
	struct resp r;
	char *got;
	bool eof;

	/* max_clients = 2: two connections that have sent nothing yet */
	idle[0] = client(t);
	pump(t, -1, 10);
	idle[1] = client(t);
	pump(t, -1, 10);
	/* a third one is served, and the oldest waiting one made room */
	request(t, "GET", "/t/items/3", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	got = read_until(t, idle[0], NULL, &eof);
	assert_true(eof);
	free(got);
	/* the younger one still gets its answer */
	send_all(idle[1], last, strlen(last));
	got = read_until(t, idle[1], NULL, &eof);
	assert_true(eof);
	assert_non_null(strstr(got, "HTTP/1.1 200"));
	free(got);
	close(idle[0]);
	close(idle[1]);
}

/* A stream outlives the request deadline: the client sends nothing more once it asked, and
 * that is not slowness (the deadline closed every quiet stream after timeout). */
static void test_stream_outlives_the_deadline(void **state)
{
	struct t *t = *state;
	char *head, *got;
	bool eof;
	int fd = open_stream(t, &head);

	free(head);
	assert_non_null(t->stream);
	for (int i = 0; i < 25; i++)
		pump(t, -1, 100); /* 2.5 s: past timeout = 300ms and evhttp's whole second */
	assert_non_null(t->stream);
	assert_int_equal(t->stream_closed, 0);
	assert_int_equal(api_stream_send(t->stream, "late", 1, "still here"), 0);
	got = read_until(t, fd, "\n\n", &eof);
	assert_false(eof);
	assert_non_null(strstr(got, "event: late\nid: 1\ndata: still here\n\n"));
	free(got);
	api_stream_close(t->stream);
	close(fd);
}

/*
 * Unknown bearer tokens count against the address as failed logins do: the first ones are
 * 401, then 429 with Retry-After before any lookup, each counted; a caller without a token
 * (here the socket's admin) is not held back by them.
 */
static void test_unknown_tokens_are_rate_limited(void **state)
{
	struct t *t = *state;
	struct resp r;
	char line[128];

	for (int i = 0; i < AUTH_RATE_BURST; i++) {
		request_h(t, "GET", "/t/items/1", "Authorization: Bearer not-a-token\r\n", NULL, &r);
		assert_int_equal(r.status, 401);
		assert_string_equal(jstr(&r, "error"), "unknown token");
		resp_clear(&r);
	}
	request_h(t, "GET", "/t/items/1", "Authorization: Bearer not-a-token\r\n", NULL, &r);
	assert_int_equal(r.status, 429);
	assert_non_null(strstr(r.head, "Retry-After: "));
	resp_clear(&r);
	/* an open route takes tokens too (a gateway's WebSocket): limited the same */
	request_h(t, "GET", "/healthz", "Authorization: Bearer not-a-token\r\n", NULL, &r);
	assert_int_equal(r.status, 429);
	resp_clear(&r);
	snprintf(line, sizeof(line), "egress_api_tokens_refused_total{result=\"unknown\"} %d",
		AUTH_RATE_BURST);
	assert_true(metrics_have(t, line));
	assert_true(metrics_have(t, "egress_api_tokens_refused_total{result=\"rate_limited\"} 2"));
	/* a malformed header is no guess at a token: 401, not counted */
	request_h(t, "GET", "/t/items/1", "Authorization: Basic eDp5\r\n", NULL, &r);
	assert_int_equal(r.status, 401);
	resp_clear(&r);
	assert_true(metrics_have(t, "egress_api_tokens_refused_total{result=\"rate_limited\"} 2"));
	request(t, "GET", "/t/items/1", NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
}

/* The threads of this process (the login checks run on threads of their own). */
static int threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static bool readable(int fd)
{
	return poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 0) == 1;
}

#define LOGIN_OK "{\"username\":\"admin\",\"password\":\"correct horse\"}"
#define LOGIN_BAD "{\"username\":\"admin\",\"password\":\"wrong horse\"}"

/* Send a login on a connection of its own, and turn the loop until its password is being
 * checked on a thread (or, were it checked on the loop, until it is answered). */
static int login_begin(struct t *t, const char *body, int base_threads)
{
	char head[256];
	uint64_t end = now_ms() + 5000;
	int fd = client(t);

	snprintf(head, sizeof(head),
		"POST /api/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		strlen(body));
	send_all(fd, head, strlen(head));
	send_all(fd, body, strlen(body));
	while (threads() == base_threads && !readable(fd) && now_ms() < end)
		pump(t, -1, 1);
	return fd;
}

/*
 * A login's scrypt (here a costly one, 64 MiB) runs on a thread: while it runs the loop
 * answers other requests, and a second login from the same address gets 429; the answer
 * comes back on the loop with the session.  A client that does not wait for a wrong
 * password's answer still counts as a failed login; a server freed with a check under way
 * waits for it and leaks nothing.
 */
static void test_login_off_the_loop(void **state)
{
	struct t *t = *state;
	int base = threads(), fd;
	struct resp r;
	char *got;
	bool eof;

	fd = login_begin(t, LOGIN_OK, base);
	assert_int_equal(threads(), base + 1); /* its password is checked on a thread */
	assert_false(readable(fd));	      /* and not answered yet */
	request_h(t, "POST", "/api/login", "Content-Type: application/json\r\n", LOGIN_OK, &r);
	assert_int_equal(r.status, 429);
	resp_clear(&r);
	request(t, "GET", "/t/items/1", NULL, &r); /* the loop is free for others */
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	got = read_until(t, fd, NULL, &eof);
	close(fd);
	assert_true(eof);
	assert_non_null(strstr(got, "HTTP/1.1 200"));
	assert_non_null(strstr(got, "Set-Cookie: egress_session="));
	assert_non_null(strstr(got, "\"csrf\""));
	free(got);
	assert_int_equal(threads(), base); /* joined */
	assert_true(metrics_have(t, "egress_api_logins_total{result=\"success\"} 1"));
	assert_true(metrics_have(t, "egress_api_logins_total{result=\"rate_limited\"} 1"));

	/* a wrong password whose client went: a failure all the same */
	fd = login_begin(t, LOGIN_BAD, base);
	assert_int_equal(threads(), base + 1);
	close(fd);
	for (uint64_t end = now_ms() + 5000; threads() > base && now_ms() < end;)
		pump(t, -1, 1);
	pump(t, -1, 1);
	assert_true(metrics_have(t, "egress_api_logins_total{result=\"failure\"} 1"));
	request_h(t, "POST", "/api/login", "Content-Type: application/json\r\n", LOGIN_BAD, &r);
	assert_int_equal(r.status, 401);
	resp_clear(&r);

	/* one under way when the server goes: teardown frees it */
	fd = login_begin(t, LOGIN_OK, base);
	assert_int_equal(threads(), base + 1);
	close(fd);
}

static int setup_login(void **state)
{
	static char extra[256];
	char *hash = NULL;

	/* 2^16 x 8 x 128 bytes: a check that takes a while */
	assert_int_equal(passwd_hash_cost("correct horse", 16, 8, 1, &hash), 0);
	snprintf(extra, sizeof(extra), "password_hash = %s\n", hash);
	free(hash);
	return setup_with(state, extra);
}

static int setup_slow(void **state)
{
	return setup_with(state, "timeout = 300ms\n");
}

static int setup_two(void **state)
{
	return setup_with(state, "max_clients = 2\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_route_params_query_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found_and_not_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_module, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handler_that_does_not_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_healthz_without_uplinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_healthz_no_uplinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_not_read_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_is_closed_others_served,
			setup_slow, teardown),
		cmocka_unit_test_setup_teardown(test_stream_outlives_the_deadline, setup_slow,
			teardown),
		cmocka_unit_test_setup_teardown(test_max_clients_oldest_waiting_goes, setup_two,
			teardown),
		cmocka_unit_test_setup_teardown(test_unknown_tokens_are_rate_limited, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_login_off_the_loop, setup_login, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
