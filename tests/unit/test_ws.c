/*
 * test_ws.c - unit tests for WebSockets (src/ws/) and the API's upgrade (api_ws_accept(),
 * api_req_tls_peer()): URLs and the handshake's pure code; a client (ws_connect()) and the
 * API server's side over loopback, plain and TLS (the server verified, a client certificate
 * named or not); failures told by close_cb (refused, untrusted certificate, HTTP error);
 * bad upgrade requests (400, 426); the server stopping under a WebSocket.
 *
 * The API server listens on 127.0.0.1 at a port the test found free, on the test's own
 * loop; certificates (a CA, the server's for 127.0.0.1, clients' from that CA and from
 * another) are made in a temporary folder.  Every wait is bounded.
 */
#include <errno.h>
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "api.h"
#include "api_server.h"
#include "conf.h"
#include "metrics.h"
#include "modules.h"
#include "util.h"
#include "ws.h"
#include "ws_handshake.h"

struct side {
	struct ws *w;
	int opened;
	int messages;
	char last[256];
	size_t last_len;
	int closed;
	int err;
	char why[256];
};

struct t {
	char dir[64];
	uint16_t port;
	bool tls;
	struct event_base *base;
	struct conf *conf;
	struct metrics *metrics;
	struct api *api;
	struct ws_opts srv_opts;
	struct side srv, cli;
	bool have_peer;
	char peer[128];
	char auth[128]; /* the upgrade request's Authorization */
};

static struct t *T;

/* ---------------------------------------------------------------- callbacks */

static void open_cb(struct ws *w, void *arg)
{
	struct side *s = arg;

	assert_ptr_equal(w, s->w);
	s->opened++;
}

static void message_cb(struct ws *w, const char *data, size_t len, void *arg)
{
	struct side *s = arg;

	assert_ptr_equal(w, s->w);
	assert_int_equal(data[len], '\0');
	s->messages++;
	s->last_len = len;
	snprintf(s->last, sizeof(s->last), "%.*s", (int)(len < 200 ? len : 200), data);
	if (s == &T->srv && streq(data, "free-me")) {
		/* freed inside its own callback: no close_cb, nothing touched after */
		ws_free(w);
		s->w = NULL;
		s->closed = -1;
		return;
	}
	if (s == &T->srv) {
		/* the server echoes */
		char *e = xmalloc(len + 6);

		memcpy(e, "echo:", 5);
		memcpy(e + 5, data, len);
		assert_int_equal(ws_send(w, e, len + 5), 0);
		free(e);
	}
}

static void close_cb(struct ws *w, int err, const char *why, void *arg)
{
	struct side *s = arg;

	assert_ptr_equal(w, s->w);
	s->w = NULL;
	s->closed++;
	s->err = err;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

static const struct ws_callbacks cbs = {open_cb, message_cb, close_cb};

static void h_ws(struct api_req *r, void *arg)
{
	struct t *t = arg;
	const char *peer = api_req_tls_peer(r);
	struct ws *w;

	t->have_peer = peer != NULL;
	snprintf(t->auth, sizeof(t->auth), "%s",
		api_req_header(r, "Authorization") ? api_req_header(r, "Authorization") : "");
	snprintf(t->peer, sizeof(t->peer), "%s", peer ? peer : "");
	w = api_ws_accept(r, &t->srv_opts, &cbs, &t->srv);
	if (w) {
		assert_null(t->srv.w);
		t->srv.w = w;
	}
}

static const struct api_route routes[] = {
	{EVHTTP_REQ_GET, "/ws", API_OPEN, h_ws, false},
};

/* ---------------------------------------------------------------- certificates */

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, value);

	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key named cn, signed by issuer (NULL: itself); written to DIR/NAME.pem
 * with its key in DIR/NAME.key. */
static X509 *cert_make(struct t *t, const char *name, EVP_PKEY *key, const char *cn, X509 *issuer,
	EVP_PKEY *issuer_key, bool ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v;
	char path[128];
	FILE *f;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx_nodb(&v);
	X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &v, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(x, &v, NID_key_usage, "critical,keyCertSign,cRLSign");
	else
		add_ext(x, &v, NID_subject_alt_name, "IP:127.0.0.1");
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/%s.pem", t->dir, name);
	assert_non_null(f = fopen(path, "w"));
	PEM_write_X509(f, x);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", t->dir, name);
	assert_non_null(f = fopen(path, "w"));
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return x;
}

static void certs_make(struct t *t)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *ca2_key = EVP_EC_gen("P-256");
	EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256"), *k3 = EVP_EC_gen("P-256");
	X509 *ca = cert_make(t, "ca", ca_key, "test CA", NULL, NULL, true);
	X509 *ca2 = cert_make(t, "ca2", ca2_key, "other CA", NULL, NULL, true);

	X509_free(cert_make(t, "server", k1, "127.0.0.1", ca, ca_key, false));
	X509_free(cert_make(t, "gw1", k2, "gw1", ca, ca_key, false));
	X509_free(cert_make(t, "stranger", k3, "stranger", ca2, ca2_key, false));
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ca2_key);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
}

static void certs_remove(struct t *t)
{
	static const char *const names[] = {"ca", "ca2", "server", "gw1", "stranger"};
	char path[128];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s.pem", t->dir, names[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s.key", t->dir, names[i]);
		unlink(path);
	}
}

/* ---------------------------------------------------------------- set-up */

static uint16_t free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int setup_with(void **state, bool tls, const char *more)
{
	struct t *t = xcalloc(1, sizeof(*t));
	struct conf_errors errs = {0};
	char text[2048], extra[1024] = "";
	struct api_route_table table = {NULL, routes, ARRAY_SIZE(routes), t, true};
	int r;

	signal(SIGPIPE, SIG_IGN);
	snprintf(t->dir, sizeof(t->dir), "/tmp/egress-test-ws.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->port = free_port();
	t->tls = tls;
	if (tls) {
		certs_make(t);
		snprintf(extra, sizeof(extra),
			"tls_cert = %s/server.pem\ntls_key = %s/server.key\n"
			"tls_client_ca = %s/ca.pem\n",
			t->dir, t->dir, t->dir);
	}
	snprintf(text, sizeof(text),
		"[api]\nlisten = 127.0.0.1:%u\nsocket = none\nstate_dir = %s/state\n%s%s",
		t->port, t->dir, extra, more);
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
	api_set_routes(t->api, &table, 1);
	T = t;
	*state = t;
	return 0;
}

static int setup_plain(void **state)
{
	return setup_with(state, false, "");
}

static int setup_tls(void **state)
{
	return setup_with(state, true, "");
}

static int teardown(void **state)
{
	struct t *t = *state;
	char path[160];

	ws_free(t->cli.w);
	api_free(t->api);
	metrics_free(t->metrics);
	event_base_free(t->base);
	conf_free(t->conf);
	if (t->tls)
		certs_remove(t);
	snprintf(path, sizeof(path), "%s/state/password_hash", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state", t->dir);
	rmdir(path);
	rmdir(t->dir);
	free(t);
	T = NULL;
	return 0;
}

/* ---------------------------------------------------------------- helpers */

/* Turn the loop until *flag is non-zero, at most 10 s.  Returns *flag. */
static int run_until(struct t *t, const int *flag)
{
	uint64_t end = now_ms() + 10000;

	while (!*flag && now_ms() < end) {
		struct timeval tv = {.tv_usec = 10000};

		event_base_loopexit(t->base, &tv);
		event_base_dispatch(t->base);
	}
	return *flag;
}

/* Turn the loop for about ms. */
static void run_for(struct t *t, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		struct timeval tv = {.tv_usec = 10000};

		event_base_loopexit(t->base, &tv);
		event_base_dispatch(t->base);
	}
}

static int connect_to(struct t *t, const char *path, const struct ws_client_conf *extra,
	const struct ws_opts *o)
{
	struct ws_client_conf c = {0};
	char url[256];

	if (extra)
		c = *extra;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", t->tls ? "wss" : "ws", t->port, path);
	c.url = url;
	return ws_connect(t->base, &c, o, &cbs, &t->cli, &t->cli.w);
}

static void path_in(struct t *t, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", t->dir, name);
}

/* Echo a message, then close from the client: both sides told. */
static void echo_and_close(struct t *t)
{
	assert_true(run_until(t, &t->cli.opened));
	assert_non_null(t->srv.w);
	assert_int_equal(ws_send(t->cli.w, "hello", 5), 0);
	assert_true(run_until(t, &t->cli.messages));
	assert_string_equal(t->cli.last, "echo:hello");
	assert_string_equal(t->srv.last, "hello");
	assert_string_equal(ws_peer(t->srv.w), "127.0.0.1");
	ws_close(t->cli.w, 1000, "bye");
	assert_int_equal(ws_send(t->cli.w, "late", 4), -ENOTCONN);
	assert_true(run_until(t, &t->cli.closed));
	assert_true(run_until(t, &t->srv.closed));
	assert_int_equal(t->cli.err, 0);
	assert_string_equal(t->cli.why, "closed (1000)");
	assert_int_equal(t->srv.err, 0);
	assert_string_equal(t->srv.why, "closed by peer (1000)");
}

/* A raw TCP client's request; returns its fd. */
static int raw_request(struct t *t, const char *head)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(t->port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
	return fd;
}

/* Read what fd got until the head's end (or EOF), turning the loop; at most 10 s. */
static void raw_head(struct t *t, int fd, char *buf, size_t len)
{
	size_t n = 0;
	uint64_t end = now_ms() + 10000;

	buf[0] = '\0';
	while (n + 1 < len && !strstr(buf, "\r\n\r\n") && now_ms() < end) {
		ssize_t r;

		run_for(t, 10);
		r = recv(fd, buf + n, len - n - 1, MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0) {
			n += (size_t)r;
			buf[n] = '\0';
		}
	}
}

/* A raw client's upgrade on a fresh connection, its 101 read: the fd, blocking. */
static int raw_upgrade(struct t *t)
{
	char key[WS_KEY_LEN + 1], head[512], buf[4096];
	int fd;

	ws_handshake_key(key);
	snprintf(head, sizeof(head),
		"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n",
		key);
	fd = raw_request(t, head);
	raw_head(t, fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 101 Switching Protocols\r\n"));
	assert_non_null(t->srv.w);
	return fd;
}

/* ---------------------------------------------------------------- pure code */

static void test_url(void **state)
{
	struct ws_url u;
	const char *why;

	(void)state;
	assert_int_equal(ws_url_parse("ws://example.org/ws", &u, &why), 0);
	assert_false(u.tls);
	assert_string_equal(u.host, "example.org");
	assert_int_equal(u.port, 80);
	assert_string_equal(u.path, "/ws");
	assert_int_equal(ws_url_parse("WSS://[2001:db8::1]:8443", &u, &why), 0);
	assert_true(u.tls);
	assert_true(u.host_v6);
	assert_string_equal(u.host, "2001:db8::1");
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.path, "/");
	assert_int_equal(ws_url_parse("wss://h?x=1", &u, &why), 0);
	assert_int_equal(u.port, 443);
	assert_string_equal(u.path, "/?x=1");
	assert_int_equal(ws_url_check("http://h/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://h:0/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://h:65536/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://h:80x/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://user:pw@h/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://[::1/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://[nope]/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://[::1]x/", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://h/a b", &why), -EINVAL);
	assert_int_equal(ws_url_check("ws://h/#frag", &why), -EINVAL);
	assert_int_equal(ws_url_check(NULL, &why), -EINVAL);
}

static void test_handshake(void **state)
{
	/* RFC 6455 1.3's example */
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
	char acc[WS_ACCEPT_LEN + 1], k[WS_KEY_LEN + 1];
	const char *why;
	const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
			 "Connection: keep-alive, Upgrade\r\n"
			 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nFRAMES";
	int status;

	(void)state;
	ws_handshake_accept(key, acc);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ws_handshake_key(k);
	assert_int_equal(strlen(k), WS_KEY_LEN);
	assert_int_equal(ws_handshake_check(true, "websocket", "Upgrade", "13", k, &why), 0);
	assert_int_equal(ws_handshake_check(false, "websocket", "Upgrade", "13", k, &why), 400);
	assert_int_equal(ws_handshake_check(true, NULL, "Upgrade", "13", k, &why), 426);
	assert_int_equal(ws_handshake_check(true, "websocket", "close", "13", k, &why), 400);
	assert_int_equal(ws_handshake_check(true, "websocket", "Upgrade", "8", k, &why), 426);
	assert_int_equal(ws_handshake_check(true, "websocket", "Upgrade", "13", "short", &why), 400);
	assert_int_equal(ws_handshake_check(true, "websocket", "Upgrade", "13",
		"dGhlIHNhbXBsZSBub25jZR==", &why), 400);

	assert_int_equal(ws_handshake_response(ok, strlen(ok), key, &status, &why),
		(ssize_t)(strlen(ok) - 6));
	assert_int_equal(status, 101);
	for (size_t n = 0; n < strlen(ok) - 6; n++)
		assert_int_equal(ws_handshake_response(ok, n, key, &status, &why), 0);
	assert_int_equal(ws_handshake_response(ok, strlen(ok), "AAAAAAAAAAAAAAAAAAAAAA==",
		&status, &why), -EPROTO);
	{
		const char *no = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
		const char *bad = "HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n";
		const char *noup = "HTTP/1.1 101 OK\r\nConnection: upgrade\r\n"
				   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
		const char *ext = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
				  "Sec-WebSocket-Extensions: permessage-deflate\r\n"
				  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

		assert_int_equal(ws_handshake_response(no, strlen(no), key, &status, &why), -EACCES);
		assert_int_equal(status, 401);
		assert_int_equal(ws_handshake_response(bad, strlen(bad), key, &status, &why), -EPROTO);
		assert_int_equal(ws_handshake_response(noup, strlen(noup), key, &status, &why),
			-EPROTO);
		assert_int_equal(ws_handshake_response(ext, strlen(ext), key, &status, &why),
			-EPROTO);
		assert_int_equal(ws_handshake_response("SSH-2.0-x\r\n\r\n", 13, key, &status, &why),
			-EPROTO);
	}
	{
		char *big = xmalloc(WS_HEAD_MAX + 1);

		memset(big, 'a', WS_HEAD_MAX + 1);
		memcpy(big, "HTTP/1.1 101 OK\r\nX: ", 20);
		assert_int_equal(ws_handshake_response(big, WS_HEAD_MAX + 1, key, &status, &why),
			-E2BIG);
		free(big);
	}
}

/* ---------------------------------------------------------------- over loopback */

static void test_plain_echo(void **state)
{
	struct t *t = *state;

	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	echo_and_close(t);
	assert_false(t->have_peer);
}

static void test_tls_echo_client_cert(void **state)
{
	struct t *t = *state;
	char ca[128], cert[128], key[128];

	path_in(t, ca, sizeof(ca), "ca.pem");
	path_in(t, cert, sizeof(cert), "gw1.pem");
	path_in(t, key, sizeof(key), "gw1.key");
	assert_int_equal(connect_to(t, "/ws",
		&(struct ws_client_conf){.ca_file = ca, .cert_file = cert, .key_file = key}, NULL), 0);
	echo_and_close(t);
	assert_true(t->have_peer);
	assert_string_equal(t->peer, "gw1");
}

static void test_tls_without_client_cert(void **state)
{
	struct t *t = *state;
	char ca[128];

	path_in(t, ca, sizeof(ca), "ca.pem");
	assert_int_equal(connect_to(t, "/ws", &(struct ws_client_conf){.ca_file = ca}, NULL), 0);
	echo_and_close(t);
	assert_false(t->have_peer);
}

/* A certificate of another CA names nobody, and the connection still works. */
static void test_tls_client_cert_of_another_ca(void **state)
{
	struct t *t = *state;
	char ca[128], cert[128], key[128];

	path_in(t, ca, sizeof(ca), "ca.pem");
	path_in(t, cert, sizeof(cert), "stranger.pem");
	path_in(t, key, sizeof(key), "stranger.key");
	assert_int_equal(connect_to(t, "/ws",
		&(struct ws_client_conf){.ca_file = ca, .cert_file = cert, .key_file = key}, NULL), 0);
	echo_and_close(t);
	assert_false(t->have_peer);
}

/* The server's certificate is not signed by a CA the client trusts. */
static void test_tls_untrusted_server(void **state)
{
	struct t *t = *state;
	char ca[128];

	path_in(t, ca, sizeof(ca), "ca2.pem");
	assert_int_equal(connect_to(t, "/ws", &(struct ws_client_conf){.ca_file = ca}, NULL), 0);
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->cli.opened, 0);
	assert_true(t->cli.err < 0);
	assert_non_null(strstr(t->cli.why, "certificate verify failed"));
	assert_null(t->srv.w);
}

/* The server's certificate names 127.0.0.1 only: as localhost it is refused. */
static void test_tls_name_checked(void **state)
{
	struct t *t = *state;
	struct ws_client_conf c = {0};
	char ca[128], url[128];

	path_in(t, ca, sizeof(ca), "ca.pem");
	snprintf(url, sizeof(url), "wss://localhost:%u/ws", t->port);
	c.url = url;
	c.ca_file = ca;
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), 0);
	assert_true(run_until(t, &t->cli.closed));
	if (strstr(t->cli.why, "connect ") || strstr(t->cli.why, "resolve"))
		skip(); /* localhost is not 127.0.0.1 here */
	assert_int_equal(t->cli.opened, 0);
	assert_non_null(strstr(t->cli.why, "certificate verify failed"));
	assert_null(t->srv.w);
}

static void test_tls_files_missing(void **state)
{
	struct t *t = *state;
	char ca[128];

	path_in(t, ca, sizeof(ca), "missing.pem");
	assert_int_equal(connect_to(t, "/ws", &(struct ws_client_conf){.ca_file = ca}, NULL),
		-ENOENT);
	assert_null(t->cli.w);
}

static void test_refused_and_http_error(void **state)
{
	struct t *t = *state;
	struct ws_client_conf c = {.url = "ws://127.0.0.1:1/ws"};

	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), 0);
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->cli.err, -ECONNREFUSED);
	assert_int_equal(t->cli.opened, 0);

	memset(&t->cli, 0, sizeof(t->cli));
	assert_int_equal(connect_to(t, "/nothing-here", NULL, NULL), 0);
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->cli.err, -EACCES);
	assert_string_equal(t->cli.why, "handshake: HTTP 404");

	c.url = "http://127.0.0.1/";
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), -EINVAL);
	/* a token must not add a header */
	c.url = "ws://127.0.0.1/";
	c.token = "x\r\nX-Evil: 1";
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), -EINVAL);
	assert_null(t->cli.w);
}

static void test_bad_upgrade_requests(void **state)
{
	struct t *t = *state;
	char buf[4096];
	int fd;

	fd = raw_request(t, "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	raw_head(t, fd, buf, sizeof(buf));
	close(fd);
	assert_non_null(strstr(buf, "HTTP/1.1 426 "));
	assert_non_null(strstr(buf, "Sec-WebSocket-Version: 13"));

	fd = raw_request(t, "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
			    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
			    "Sec-WebSocket-Key: bad\r\n\r\n");
	raw_head(t, fd, buf, sizeof(buf));
	close(fd);
	assert_non_null(strstr(buf, "HTTP/1.1 400 "));
	assert_null(t->srv.w);
	assert_int_equal(t->srv.closed, 0);
}

/* The API server stops under an open WebSocket: both ends are told. */
static void test_server_stops(void **state)
{
	struct t *t = *state;

	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	assert_true(run_until(t, &t->cli.opened));
	assert_non_null(t->srv.w);
	api_free(t->api);
	t->api = NULL;
	assert_int_equal(t->srv.closed, 1);
	assert_string_equal(t->srv.why, "server stopping");
	assert_true(run_until(t, &t->cli.closed));
	assert_true(t->cli.err < 0);
}

/* A message over max_message closes with 1009; one of exactly max_message passes. */
static void test_max_message(void **state)
{
	struct t *t = *state;
	char *big = xmalloc(2001);

	memset(big, 'a', 2000);
	big[2000] = '\0';
	t->srv_opts.max_message = 1024;
	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	assert_true(run_until(t, &t->cli.opened));
	assert_int_equal(ws_send(t->cli.w, big, 1024), 0);
	assert_true(run_until(t, &t->srv.messages));
	assert_int_equal(t->srv.last_len, 1024);
	assert_int_equal(ws_send(t->cli.w, big, 2000), 0);
	assert_true(run_until(t, &t->srv.closed));
	assert_int_equal(t->srv.err, -EMSGSIZE);
	assert_int_equal(t->srv.messages, 1);
	assert_true(run_until(t, &t->cli.closed));
	assert_string_equal(t->cli.why, "closed by peer (1009)");
	free(big);
}

/* The server closes: the client is told the peer's code. */
static void test_server_closes(void **state)
{
	struct t *t = *state;

	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	assert_true(run_until(t, &t->cli.opened));
	ws_close(t->srv.w, 4000, "go away");
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->cli.err, 0);
	assert_string_equal(t->cli.why, "closed by peer (4000)");
	assert_true(run_until(t, &t->srv.closed));
	assert_string_equal(t->srv.why, "closed (4000)");
}

/* A server that takes the connection and never answers: the connect timeout ends it; a
 * close before the open is told as such. */
static void test_connect_timeout_and_early_close(void **state)
{
	struct t *t = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	struct ws_client_conf c = {.connect_timeout_ms = 300};
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0); /* the kernel accepts; nobody answers */
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/ws", ntohs(sin.sin_port));
	c.url = url;
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), 0);
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->cli.err, -ETIMEDOUT);
	assert_string_equal(t->cli.why, "handshake timeout");

	memset(&t->cli, 0, sizeof(t->cli));
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), 0);
	ws_close(t->cli.w, 1000, NULL);
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->cli.err, -ECANCELED);
	assert_int_equal(t->cli.opened, 0);
	close(fd);
}

/* A text message that is not UTF-8 closes with 1007 (RFC 6455 8.1). */
static void test_not_utf8(void **state)
{
	struct t *t = *state;

	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	assert_true(run_until(t, &t->cli.opened));
	assert_int_equal(ws_send(t->cli.w, "caf\xc3\xa9", 5), 0);
	assert_true(run_until(t, &t->srv.messages));
	assert_int_equal(ws_send(t->cli.w, "\xc3(", 2), 0);
	assert_true(run_until(t, &t->srv.closed));
	assert_int_equal(t->srv.err, -EPROTO);
	assert_int_equal(t->srv.messages, 1);
	assert_true(run_until(t, &t->cli.closed));
	assert_string_equal(t->cli.why, "closed by peer (1007)");
}

/* A peer that does not read: ws_send() fails with -ENOBUFS, what is queued stays bounded. */
static void test_max_pending(void **state)
{
	struct t *t = *state;
	char msg[4096];
	int fd, r = 0, sent = 0;
	int small = 4096;

	t->srv_opts.max_pending = 64 * 1024;
	fd = raw_upgrade(t);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(msg, 'm', sizeof(msg));
	/* the kernel's buffers take some, then ours fill */
	for (int i = 0; i < 100000 && r == 0; i++) {
		r = ws_send(t->srv.w, msg, sizeof(msg));
		if (r == 0)
			sent++;
		assert_true(ws_pending(t->srv.w) <= t->srv_opts.max_pending);
		if (i % 16 == 0)
			run_for(t, 1);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(sent > 0);
	assert_int_equal(t->srv.closed, 0);
	close(fd);
	assert_true(run_until(t, &t->srv.closed));
	assert_true(t->srv.err < 0);
}

/* Silence past timeout_ms ends it, pings unanswered. */
static void test_heartbeat_timeout(void **state)
{
	struct t *t = *state;
	int fd;

	t->srv_opts.ping_ms = 50;
	t->srv_opts.timeout_ms = 300;
	fd = raw_upgrade(t);
	assert_true(run_until(t, &t->srv.closed));
	assert_int_equal(t->srv.err, -ETIMEDOUT);
	assert_non_null(strstr(t->srv.why, "timeout"));
	close(fd);
}

/* Pings answered keep a quiet connection: both ends idle for several timeouts stay open. */
static void test_heartbeat_keeps_it(void **state)
{
	struct t *t = *state;
	struct ws_opts o = {.ping_ms = 50, .timeout_ms = 300};

	t->srv_opts = o;
	assert_int_equal(connect_to(t, "/ws", NULL, &o), 0);
	assert_true(run_until(t, &t->cli.opened));
	run_for(t, 1200);
	assert_int_equal(t->srv.closed, 0);
	assert_int_equal(t->cli.closed, 0);
	echo_and_close(t);
}

/* An upgraded connection outlives [api] timeout and leaves room among max_clients. */
static void test_not_an_api_client(void **state)
{
	struct t *t = *state;
	char buf[4096];
	int fd;

	assert_int_equal(connect_to(t, "/ws", &(struct ws_client_conf){.token = "tok-1"}, NULL),
		0);
	if (!run_until(t, &t->cli.opened))
		fail_msg("not open: %s", t->cli.why);
	assert_string_equal(t->auth, "Bearer tok-1");
	/* a message read re-arms whatever timeout the read event kept from evhttp */
	assert_int_equal(ws_send(t->cli.w, "hello", 5), 0);
	run_for(t, 1500); /* past timeout = 300ms and evhttp's whole second */
	assert_int_equal(t->cli.closed, 0);
	/* max_clients = 1: a request is still served */
	fd = raw_request(t, "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	raw_head(t, fd, buf, sizeof(buf));
	close(fd);
	assert_non_null(strstr(buf, "HTTP/1.1 426 "));
	echo_and_close(t);
}

/* ws_free() inside message_cb: nothing more is called, the peer sees the connection go. */
static void test_free_in_callback(void **state)
{
	struct t *t = *state;

	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	assert_true(run_until(t, &t->cli.opened));
	assert_int_equal(ws_send(t->cli.w, "free-me", 7), 0);
	assert_true(run_until(t, &t->cli.closed));
	assert_int_equal(t->srv.closed, -1);
	assert_true(t->cli.err < 0);
}

/* A host name is resolved on the loop. */
static void test_host_name(void **state)
{
	struct t *t = *state;
	struct ws_client_conf c = {0};
	char url[128];

	snprintf(url, sizeof(url), "ws://localhost:%u/ws", t->port);
	c.url = url;
	/* freed while it resolves, and while it connects: nothing is called, nothing left */
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), 0);
	ws_free(t->cli.w);
	t->cli.w = NULL;
	run_for(t, 50);
	assert_int_equal(t->cli.closed, 0);
	assert_int_equal(connect_to(t, "/ws", NULL, NULL), 0);
	ws_free(t->cli.w);
	t->cli.w = NULL;
	run_for(t, 50);
	assert_int_equal(t->cli.closed + t->cli.opened, 0);
	assert_int_equal(ws_connect(t->base, &c, NULL, &cbs, &t->cli, &t->cli.w), 0);
	if (!run_until(t, &t->cli.opened) && t->cli.closed)
		skip(); /* localhost is not 127.0.0.1 here (IPv6 first, or no hosts entry) */
	echo_and_close(t);
}

static int setup_limits(void **state)
{
	return setup_with(state, false, "timeout = 300ms\nmax_clients = 1\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test_setup_teardown(test_plain_echo, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_refused_and_http_error, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_bad_upgrade_requests, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_server_stops, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_max_message, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_not_utf8, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_server_closes, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout_and_early_close, setup_plain,
			teardown),
		cmocka_unit_test_setup_teardown(test_max_pending, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_timeout, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_keeps_it, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_not_an_api_client, setup_limits, teardown),
		cmocka_unit_test_setup_teardown(test_free_in_callback, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_host_name, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tls_echo_client_cert, setup_tls, teardown),
		cmocka_unit_test_setup_teardown(test_tls_without_client_cert, setup_tls, teardown),
		cmocka_unit_test_setup_teardown(test_tls_client_cert_of_another_ca, setup_tls,
			teardown),
		cmocka_unit_test_setup_teardown(test_tls_untrusted_server, setup_tls, teardown),
		cmocka_unit_test_setup_teardown(test_tls_files_missing, setup_tls, teardown),
		cmocka_unit_test_setup_teardown(test_tls_name_checked, setup_tls, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
