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
#include "util.h"

/* A body is read (and thrown away) up to this many bytes; then the probe is judged. */
#define HTTP_BODY_MAX (64 * 1024)

struct check_http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	bool ca_dir; /* libcurl has a default CA directory: verify through it alone */
};

/* One socket curl asked us to watch. */
struct http_sock {
	struct check_http *h;
	struct event *ev;
};

struct http_probe {
	CURL *easy;
	struct curl_slist *connect_to;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	size_t body;
	bool capped;
	bool in_multi;
	int sock_err; /* errno from our open-socket callback */
};

/* ------------------------------------------------------------ curl <-> libevent */

static void http_check_done(struct check_http *h);

static void http_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_http *h = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
		     ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(h->multi, fd, action, &running);
	http_check_done(h);
}

static void http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_http *h = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants (or stop watching it). */
static int http_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct check_http *h = userp;
	struct http_sock *hs = socketp;
	short ev;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (hs) {
			event_free(hs->ev);
			free(hs);
		}
		return 0;
	}
	ev = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	     ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (!hs) {
		hs = xcalloc(1, sizeof(*hs));
		hs->h = h;
		curl_multi_assign(h->multi, s, hs);
	} else {
		event_free(hs->ev);
	}
	hs->ev = event_new(h->base, s, ev, http_event_cb, h);
	if (!hs->ev || event_add(hs->ev, NULL) < 0)
		fatalx("check http: cannot watch a socket");
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake curl after timeout_ms (-1: never). */
static int http_timer_set_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct check_http *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return 0;
}

int check_http_new(struct event_base *base, struct check_http **ret)
{
	const curl_version_info_data *info;
	struct check_http *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, http_timer_cb, h);
	if (!h->multi || !h->timer) {
		check_http_free(h);
		return -ENOMEM;
	}
	info = curl_version_info(CURLVERSION_NOW);
	h->ca_dir = info && info->age >= CURLVERSION_SEVENTH && info->capath && info->capath[0];
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_set_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	*ret = h;
	return 0;
}

void check_http_free(struct check_http *h)
{
	if (!h)
		return;
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->timer)
		event_free(h->timer);
	free(h);
	curl_global_cleanup();
}

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
		curl_easy_getinfo(hp->easy, CURLINFO_RESPONSE_CODE, &code);
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
		curl_easy_getinfo(hp->easy, CURLINFO_OS_ERRNO, &oserr);
		if (oserr) {
			check_target_done(
				t, check_errno_result((int)oserr), "%s", strerror((int)oserr));
			return;
		}
	}
	check_target_done(t, CHECK_ERROR, "%s", msg);
}

/* Take the finished transfers off the multi handle and report them. */
static void http_check_done(struct check_http *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		CURL *easy = m->easy_handle;
		CURLcode res = m->data.result;
		struct check_target *t = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(h->multi, easy);
		if (!t)
			continue;
		((struct http_probe *)t->priv)->in_multi = false;
		http_report(t, res);
	}
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
	hp->easy = e = curl_easy_init();
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
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)t);
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
	/*
	 * OpenSSL 3 parses a whole CA bundle in tens of milliseconds, on the loop, for every
	 * connection (libcurl 7.87+ caches the parsed bundle, but not while a CA directory is
	 * set too, as Debian's libcurl does).  A hashed CA directory is read lazily, a few
	 * certificates per handshake: use it alone where libcurl has one.
	 */
	if (c->tls_verify && t->cu->e->http->ca_dir)
		curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
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
	struct check_http *h = t->cu->e->http;

	if (!hp || !hp->easy || !hp->url)
		return -ENOMEM;
	hp->body = 0;
	hp->capped = false;
	hp->sock_err = 0;
	hp->errbuf[0] = '\0';
	if (curl_multi_add_handle(h->multi, hp->easy) != CURLM_OK)
		return -EIO;
	hp->in_multi = true;
	return 0;
}

void check_http_cancel(struct check_target *t)
{
	struct http_probe *hp = t->priv;

	if (hp && hp->in_multi) {
		curl_multi_remove_handle(t->cu->e->http->multi, hp->easy);
		hp->in_multi = false;
	}
}

void check_http_teardown(struct check_target *t)
{
	struct http_probe *hp = t->priv;

	if (!hp)
		return;
	check_http_cancel(t);
	if (hp->easy)
		curl_easy_cleanup(hp->easy);
	curl_slist_free_all(hp->connect_to);
	free(hp->url);
	free(hp);
	t->priv = NULL;
}
