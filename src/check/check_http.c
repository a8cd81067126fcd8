/*
 * check_http.c - HTTP and HTTPS GET probes over libcurl's multi interface,
 * driven by the one libevent loop (curl_multi_socket_action: curl tells us
 * which sockets to watch and when to wake it; we tell it what happened).
 *
 * One easy handle per target, set up once per configuration and re-added
 * for every probe.  Every probe opens a fresh connection (no reuse: a
 * kept-alive connection would not test the path), through the uplink:
 * curl's sockets come from check_sock_open() by CURLOPT_OPENSOCKETFUNCTION.
 * With check_host, the URL names the host, so the Host header, TLS SNI and
 * certificate verification use it, and CURLOPT_CONNECT_TO sends the
 * connection to the target address.  (CURLOPT_RESOLVE would do the same
 * through the DNS cache that all handles of the multi share, so two uplinks
 * probing one host name through different targets would race on it;
 * CONNECT_TO is per handle.)
 *
 * Must not follow redirects, use a proxy from the environment, raise
 * signals, resolve names, or keep more than HTTP_BODY_MAX bytes of a body
 * (the body is discarded; only the status counts).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "check_int.h"
#include "curl_loop.h"
#include "util.h"

/* A body is read (and thrown away) up to this many bytes; then the probe is judged. */
#define HTTP_BODY_MAX (64 * 1024)

struct http_probe {
	struct curl_xfer x; /* x.easy: set up once per configuration */
	struct check_target *t;
	struct curl_slist *connect_to;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	size_t body;
	bool capped;
	int sock_err; /* errno from our open-socket callback */
};

/* ------------------------------------------------------------ probes */

static bool curl_tls_error(CURLcode res)
{
	switch (res) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return true;
	default:
		return false;
	}
}

static void http_report(struct check_target *t, CURLcode res)
{
	struct http_probe *hp = t->priv;
	const struct uplink_check *c = &t->cu->u->check;
	long code = 0, oserr = 0;
	const char *msg = hp->errbuf[0] ? hp->errbuf : curl_easy_strerror(res);

	if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && hp->capped)) {
		curl_easy_getinfo(hp->x.easy, CURLINFO_RESPONSE_CODE, &code);
		bool good = c->status.n ? range_list_contains(&c->status, (uint32_t)code)
					: code >= 200 && code <= 299;
		t->http_status = (int)code;
		if (good)
			check_target_done(t, CHECK_OK, "status %ld", code);
		else
			check_target_done(t, CHECK_BAD_STATUS, "status %ld", code);
		return;
	}
	if (hp->sock_err) {
		check_target_done(
			t, check_errno_result(hp->sock_err), "%s", strerror(hp->sock_err));
		return;
	}
	if (res == CURLE_OPERATION_TIMEDOUT) {
		check_target_done(t, CHECK_TIMEOUT, "timeout");
		return;
	}
	if (curl_tls_error(res)) {
		check_target_done(t, CHECK_TLS, "tls: %s", msg);
		return;
	}
	if (res == CURLE_COULDNT_CONNECT) {
		curl_easy_getinfo(hp->x.easy, CURLINFO_OS_ERRNO, &oserr);
		if (oserr) {
			check_target_done(
				t, check_errno_result((int)oserr), "%s", strerror((int)oserr));
			return;
		}
	}
	check_target_done(t, CHECK_ERROR, "%s", msg);
}

/* The transfer of t's probe ended (curl_loop.h). */
static void http_done_cb(struct curl_xfer *x, CURLcode res, void *arg)
{
	(void)x;
	http_report(arg, res);
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_probe *hp = arg;
	size_t n = size * nmemb;

	(void)ptr;
	hp->body += n;
	if (hp->body > HTTP_BODY_MAX) {
		hp->capped = true;
		return 0; /* enough: the status is known, stop the transfer */
	}
	return n;
}

static curl_socket_t http_opensocket_cb(
	void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct check_target *t = clientp;
	struct http_probe *hp = t->priv;
	int fd, r;

	(void)purpose;
	r = check_sock_open(t->cu, a->family, a->socktype, a->protocol, &fd);
	if (r < 0) {
		hp->sock_err = -r;
		return CURL_SOCKET_BAD;
	}
	return fd;
}

/* The target as a URL host: "192.0.2.2", "[2001:db8::2]", "[fe80::2%25eth0]". */
static void url_host(const struct check_target *t, char *buf, size_t len)
{
	char a[ADDR_STRLEN];
	const struct uplink *u = t->cu->u;

	addr_str(&t->addr, a, sizeof(a));
	if (t->addr.family != AF_INET6)
		snprintf(buf, len, "%s", a);
	else if (IN6_IS_ADDR_LINKLOCAL(&t->addr.v6) && u->ifname[0])
		snprintf(buf, len, "[%s%%25%s]", a, u->ifname);
	else
		snprintf(buf, len, "[%s]", a);
}

int check_http_setup(struct check_target *t)
{
	const struct uplink_check *c = &t->cu->u->check;
	struct http_probe *hp = xcalloc(1, sizeof(*hp));
	const char *path = c->path && c->path[0] ? c->path : "/";
	char host[ADDR_STRLEN + IFNAMSIZ + 8], *s = NULL;
	CURL *e;
	int n;

	t->priv = hp;
	hp->t = t;
	hp->x.done_cb = http_done_cb;
	hp->x.arg = t;
	hp->x.easy = e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	url_host(t, host, sizeof(host));
	n = asprintf(&hp->url, "%s://%s:%u%s", c->kind == CHECK_HTTPS ? "https" : "http",
		c->host && c->host[0] ? c->host : host, t->port, path);
	if (n < 0) {
		hp->url = NULL;
		return -ENOMEM;
	}
	if (c->host && c->host[0]) {
		if (asprintf(&s, "%s:%u:%s:%u", c->host, t->port, host, t->port) < 0)
			return -ENOMEM;
		hp->connect_to = curl_slist_append(NULL, s);
		free(s);
		if (!hp->connect_to)
			return -ENOMEM;
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, hp->connect_to);
	}
	curl_easy_setopt(e, CURLOPT_URL, hp->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, ""); /* not even from the environment */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "egressd/" EGRESS_VERSION " health check");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
	if (c->tls_verify)
		curl_loop_ca_setup(t->cu->e->http, e);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, hp);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, hp->errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, http_opensocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
	return 0;
}

int check_http_start(struct check_target *t)
{
	struct http_probe *hp = t->priv;

	if (!hp || !hp->x.easy || !hp->url)
		return -ENOMEM;
	hp->body = 0;
	hp->capped = false;
	hp->sock_err = 0;
	hp->errbuf[0] = '\0';
	return curl_loop_add(t->cu->e->http, &hp->x);
}

void check_http_cancel(struct check_target *t)
{
	struct http_probe *hp = t->priv;

	if (hp)
		curl_loop_remove(t->cu->e->http, &hp->x);
}

void check_http_teardown(struct check_target *t)
{
	struct http_probe *hp = t->priv;

	if (!hp)
		return;
	check_http_cancel(t);
	if (hp->x.easy)
		curl_easy_cleanup(hp->x.easy);
	curl_slist_free_all(hp->connect_to);
	free(hp->url);
	free(hp);
	t->priv = NULL;
}
