/*
 * ws_client.c - the client's side of a WebSocket: the URL, the TCP connection (a name is
 * resolved with evdns on the loop), TLS for wss:// (the server's certificate verified
 * against the system's CAs or ca_file and its name or address checked; an optional client
 * certificate), and the opening handshake (ws_handshake.c).  Then ws.c takes over.
 *
 * Must not block (no getaddrinfo on the loop), nor wait without bound: TCP, TLS and the
 * handshake together have connect_timeout_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cidr.h"
#include "log.h"
#include "util.h"
#include "ws.h"
#include "ws_handshake.h"
#include "ws_int.h"

#define WS_DEF_CONNECT_TIMEOUT_MS 10000

struct ws_client {
	struct ws_url url;
	char key[WS_KEY_LEN + 1];
	char *token;
	SSL_CTX *tls;
	struct evdns_base *dns;
	struct bufferevent *bev;
};

int ws_url_check(const char *url, const char **why)
{
	struct ws_url u;

	return ws_url_parse(url, &u, why);
}

void ws_client_free(struct ws_client *cl)
{
	if (!cl)
		return;
	if (cl->bev)
		bufferevent_free(cl->bev); /* cancels a pending resolution */
	if (cl->dns)
		evdns_base_free(cl->dns, 0);
	if (cl->tls)
		SSL_CTX_free(cl->tls);
	if (cl->token) {
		explicit_bzero(cl->token, strlen(cl->token));
		free(cl->token);
	}
	free(cl);
}

void ws_client_timeout(struct ws *w)
{
	ws_fail(w, -ETIMEDOUT, "%s timeout",
		w->state == WS_CONNECTING ? "connect" : "handshake");
}

/* OpenSSL's word on what failed, verification first. */
static void tls_error(struct ws *w, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(w->cl->bev);
	unsigned long e = bufferevent_get_openssl_error(w->cl->bev);
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (v != X509_V_OK)
		snprintf(buf, len, "certificate verify failed: %s",
			X509_verify_cert_error_string(v));
	else if (e)
		snprintf(buf, len, "%s", ERR_reason_error_string(e) ?
			ERR_reason_error_string(e) : "error");
	else
		snprintf(buf, len, "connection closed during the handshake");
	while (bufferevent_get_openssl_error(w->cl->bev))
		;
	ERR_clear_error();
}

static void peer_name(struct ws *w)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr a;
	uint16_t port;
	char s[ADDR_STRLEN];

	if (getpeername(bufferevent_getfd(w->cl->bev), (struct sockaddr *)&ss, &len) == 0 &&
		addr_from_sockaddr((struct sockaddr *)&ss, &a, &port) == 0)
		snprintf(w->peer, sizeof(w->peer), "%s", addr_str(&a, s, sizeof(s)));
}

static void send_request(struct ws *w)
{
	struct ws_client *cl = w->cl;
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	bool def = cl->url.port == (cl->url.tls ? 443 : 80);

	ws_handshake_key(cl->key);
	evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s%s%s", cl->url.path,
		cl->url.host_v6 ? "[" : "", cl->url.host, cl->url.host_v6 ? "]" : "");
	if (!def)
		evbuffer_add_printf(out, ":%u", cl->url.port);
	evbuffer_add_printf(out,
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		"User-Agent: egress/" EGRESS_VERSION "\r\n",
		cl->key);
	if (cl->token)
		evbuffer_add_printf(out, "Authorization: Bearer %s\r\n", cl->token);
	evbuffer_add(out, "\r\n", 2);
}

static void hs_read_cb(struct bufferevent *bev, void *arg)
{
	struct ws *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	const char *why = "";
	int status;
	ssize_t r;

	if (w->state != WS_HANDSHAKE)
		return;
	if (n > WS_HEAD_MAX)
		n = WS_HEAD_MAX;
	r = ws_handshake_response((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n, w->cl->key,
		&status, &why);
	if (r == 0)
		return;
	if (r == -EACCES) {
		ws_fail(w, -EACCES, "handshake: HTTP %d", status);
		return;
	}
	if (r < 0) {
		ws_fail(w, -EPROTO, "handshake: %s", why);
		return;
	}
	evbuffer_drain(in, (size_t)r);
	ws_begin(w, bev);
	if (w->cb.open_cb) {
		w->in_cb++;
		w->cb.open_cb(w, w->arg);
		w->in_cb--;
		ws_reap(w);
	}
}

static void hs_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws *w = arg;
	char err[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (w->state != WS_CONNECTING)
			return;
		peer_name(w);
		ws_transition(w, WS_HANDSHAKE);
		send_request(w);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		int dns = bufferevent_socket_get_dns_error(bev);

		if (dns)
			ws_fail(w, -EHOSTUNREACH, "cannot resolve %s: %s", w->cl->url.host,
				evutil_gai_strerror(dns));
		else if (w->cl->tls && (bufferevent_openssl_get_ssl(bev) &&
			(bufferevent_get_openssl_error(bev) ||
				SSL_get_verify_result(bufferevent_openssl_get_ssl(bev)) != X509_V_OK))) {
			tls_error(w, err, sizeof(err));
			ws_fail(w, -EPROTO, "TLS: %s", err);
		} else {
			int e = EVUTIL_SOCKET_ERROR();

			ws_fail(w, e ? -e : -ECONNREFUSED, "connect %s:%u: %s", w->cl->url.host,
				w->cl->url.port, e ? strerror(e) : "failed");
		}
		return;
	}
	if (w->cl->tls && w->state == WS_CONNECTING) {
		tls_error(w, err, sizeof(err));
		ws_fail(w, -EPROTO, "TLS: %s", err);
		return;
	}
	ws_fail(w, -ECONNRESET, "%s: connection closed by the server",
		w->state == WS_CONNECTING ? "connect" : "handshake");
}

/* The TLS context of c: CAs, client certificate.  0 or -errno with *why. */
static int tls_new(const struct ws_client_conf *c, SSL_CTX **ret, char *why, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *what = NULL, *file = NULL;
	int r = -EINVAL;

	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (c->ca_file && access(c->ca_file, R_OK) < 0) {
		r = -errno, what = "ca_file", file = c->ca_file;
		goto fail;
	}
	if (c->ca_file ? SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1 :
			 SSL_CTX_set_default_verify_paths(ctx) != 1) {
		what = "ca_file", file = c->ca_file ? c->ca_file : "(the system's)";
		goto fail;
	}
	if (!c->cert_file != !c->key_file) {
		snprintf(why, len, "a client certificate needs both cert_file and key_file");
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	if (c->cert_file) {
		if (access(c->cert_file, R_OK) < 0) {
			r = -errno, what = "cert_file", file = c->cert_file;
			goto fail;
		}
		if (access(c->key_file, R_OK) < 0) {
			r = -errno, what = "key_file", file = c->key_file;
			goto fail;
		}
		if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1 ||
			SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1 ||
			SSL_CTX_check_private_key(ctx) != 1) {
			what = "cert_file", file = c->cert_file;
			goto fail;
		}
	}
	*ret = ctx;
	return 0;
fail:
	if (r == -EINVAL) {
		unsigned long e = ERR_get_error();

		snprintf(why, len, "%s %s: %s", what, file,
			e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unusable");
	} else {
		snprintf(why, len, "%s %s: %s", what, file, strerror(-r));
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

/* The bufferevent to the server, TLS set up for its name. */
static int client_bev(struct ws *w)
{
	struct ws_client *cl = w->cl;
	SSL *ssl;

	if (!cl->tls) {
		cl->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
		return cl->bev ? 0 : -ENOMEM;
	}
	ssl = SSL_new(cl->tls);
	if (!ssl)
		return -ENOMEM;
	{
		struct in6_addr a;
		bool literal = inet_pton(AF_INET, cl->url.host, &a) == 1 ||
			inet_pton(AF_INET6, cl->url.host, &a) == 1;

		if (literal) {
			X509_VERIFY_PARAM *p = SSL_get0_param(ssl);

			X509_VERIFY_PARAM_set1_ip_asc(p, cl->url.host);
		} else {
			SSL_set_tlsext_host_name(ssl, cl->url.host);
			SSL_set1_host(ssl, cl->url.host);
		}
	}
	cl->bev = bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE);
	if (!cl->bev) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(cl->bev, 1);
	return 0;
}

int ws_connect(struct event_base *base, const struct ws_client_conf *c, const struct ws_opts *o,
	const struct ws_callbacks *cb, void *arg, struct ws **ret)
{
	struct ws_client *cl = xcalloc(1, sizeof(*cl));
	struct sockaddr_storage ss;
	struct addr a;
	char why[320];
	const char *uwhy = "";
	struct ws *w;
	int r;

	*ret = NULL;
	if (ws_url_parse(c->url, &cl->url, &uwhy) < 0) {
		log_debug("ws: %s: %s", c->url ? c->url : "", uwhy);
		free(cl);
		return -EINVAL;
	}
	if (c->token && (!*c->token || strpbrk(c->token, "\r\n") ||
		!utf8_valid(c->token, strlen(c->token)))) {
		log_debug("ws: %s: the token is empty or holds a line break", c->url);
		free(cl);
		return -EINVAL;
	}
	if (cl->url.tls) {
		r = tls_new(c, &cl->tls, why, sizeof(why));
		if (r < 0) {
			log_warnx("ws: %s: TLS: %s", c->url, why);
			free(cl);
			return r;
		}
	}
	if (c->token)
		cl->token = xstrdup(c->token);
	w = ws_alloc(base, false, o, cb, arg);
	w->cl = cl;
	snprintf(w->peer, sizeof(w->peer), "%s", cl->url.host);
	r = client_bev(w);
	if (r < 0) {
		ws_destroy(w);
		return r;
	}
	bufferevent_setcb(cl->bev, hs_read_cb, NULL, hs_event_cb, w);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
	ws_timer(w, c->connect_timeout_ms ? c->connect_timeout_ms : WS_DEF_CONNECT_TIMEOUT_MS);
	*ret = w;
	if (addr_parse(cl->url.host, &a) == 0) {
		socklen_t len = 0;

		addr_to_sockaddr(&a, cl->url.port, &ss, &len);
		if (bufferevent_socket_connect(cl->bev, (struct sockaddr *)&ss, (int)len) < 0)
			ws_fail(w, -errno ? -errno : -ECONNREFUSED, "connect %s:%u: %s",
				cl->url.host, cl->url.port, strerror(errno));
		return 0;
	}
	cl->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
		EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!cl->dns) {
		ws_fail(w, -EHOSTUNREACH, "cannot resolve %s: no resolver", cl->url.host);
		return 0;
	}
	if (bufferevent_socket_connect_hostname(cl->bev, cl->dns, AF_UNSPEC, cl->url.host,
		cl->url.port) < 0)
		ws_fail(w, -EHOSTUNREACH, "cannot resolve %s", cl->url.host);
	return 0;
}
