/*
 * ctl_http.c - egressctl's HTTP client (libcurl, blocking): one request and its reply, or a
 * server-sent event stream, over egressd's UNIX socket or over HTTP(S) with a Bearer token.
 *
 * It turns what went wrong into egressctl's exit codes: no answer (3), not allowed (4),
 * refused (1).  What it must not do: print anything on success; the subcommands do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "util.h"

/* A reply larger than this is not egressd's. */
#define CTL_MAX_BODY (64u << 20)

struct buf {
	char *p;
	size_t len, cap;
	bool too_big;
};

static size_t buf_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (b->len + len > CTL_MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		b->cap = MAX(b->cap * 2, b->len + len + 1);
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

void ctl_reply_clear(struct ctl_reply *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static const char *where(const struct ctl *c)
{
	return c->url ? c->url : c->socket_path;
}

/* The handle for a request to path, with our headers in *headers (freed by the caller). */
static CURL *easy_new(struct ctl *c, const char *path, const char *content_type,
	struct curl_slist **headers, char *errbuf)
{
	CURL *e = curl_easy_init();
	char *url, *auth = NULL;
	size_t base_len;

	if (!e)
		return NULL;
	if (c->url) {
		base_len = strlen(c->url);
		while (base_len && c->url[base_len - 1] == '/')
			base_len--;
		if (asprintf(&url, "%.*s%s", (int)base_len, c->url, path) < 0)
			url = NULL;
	} else {
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
		if (asprintf(&url, "http://localhost%s", path) < 0)
			url = NULL;
	}
	if (!url) {
		curl_easy_cleanup(e);
		return NULL;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "egressctl/" EGRESS_VERSION);
	if (c->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
	*headers = curl_slist_append(NULL, "Accept: application/json");
	if (content_type) {
		char h[128];

		snprintf(h, sizeof(h), "Content-Type: %s", content_type);
		*headers = curl_slist_append(*headers, h);
	}
	if (c->token && asprintf(&auth, "Authorization: Bearer %s", c->token) >= 0) {
		*headers = curl_slist_append(*headers, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	return e;
}

/* egressd did not answer: say why and where. */
static int transport_error(struct ctl *c, CURL *e, CURLcode res, const char *errbuf)
{
	long os_errno = 0;
	const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(res);

	curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
	if (res == CURLE_COULDNT_CONNECT && (os_errno == EACCES || os_errno == EPERM)) {
		fprintf(c->err, "egressctl: %s: %s (root or the egress group may use the socket)\n",
			where(c), strerror((int)os_errno));
		return CTL_AUTH;
	}
	if (res == CURLE_COULDNT_CONNECT && os_errno)
		fprintf(c->err, "egressctl: cannot reach egressd at %s: %s\n", where(c),
			strerror((int)os_errno));
	else
		fprintf(c->err, "egressctl: cannot reach egressd at %s: %s\n", where(c), msg);
	return CTL_UNREACHABLE;
}

void ctl_print_error(struct ctl *c, const struct ctl_reply *r)
{
	const char *error = NULL, *field = NULL;

	if (json_is_object(r->json)) {
		error = json_string_value(json_object_get(r->json, "error"));
		field = json_string_value(json_object_get(r->json, "field"));
	}
	if (error && field)
		fprintf(c->err, "egressctl: egressd: %s: %s\n", field, error);
	else if (error)
		fprintf(c->err, "egressctl: egressd: %s\n", error);
	else if (r->body && r->len)
		fprintf(c->err, "egressctl: egressd answered %ld: %.*s\n", r->status,
			(int)strcspn(r->body, "\n"), r->body);
	else
		fprintf(c->err, "egressctl: egressd answered %ld\n", r->status);
}

static int status_exit(long status)
{
	if (status >= 200 && status < 300)
		return CTL_OK;
	if (status == 401 || status == 403)
		return CTL_AUTH;
	return CTL_REFUSED;
}

int ctl_request(struct ctl *c, const char *method, const char *path, const char *body,
	const char *content_type, long accept_status, struct ctl_reply *ret)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct buf b = {0};
	CURLcode res;
	CURL *e;
	int r;

	memset(ret, 0, sizeof(*ret));
	e = easy_new(c, path, body ? (content_type ? content_type : "application/json") : NULL,
		&headers, errbuf);
	if (!e) {
		fprintf(c->err, "egressctl: cannot make the request: out of memory\n");
		return CTL_UNREACHABLE;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	res = curl_easy_perform(e);
	if (res != CURLE_OK) {
		if (b.too_big)
			fprintf(c->err, "egressctl: %s: the reply is larger than %u bytes\n",
				where(c), CTL_MAX_BODY);
		r = b.too_big ? CTL_UNREACHABLE : transport_error(c, e, res, errbuf);
		free(b.p);
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &ret->status);
	ret->body = b.p ? b.p : xstrdup("");
	ret->len = b.len;
	ret->json = json_loadb(ret->body, ret->len, JSON_DECODE_ANY, NULL);
	r = status_exit(ret->status);
	if (r != CTL_OK && ret->status == accept_status)
		r = CTL_OK;
	else if (r != CTL_OK) {
		ctl_print_error(c, ret);
		ctl_reply_clear(ret);
	}
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(e);
	return r;
}

int ctl_get_json(struct ctl *c, const char *path, json_t **ret)
{
	struct ctl_reply rep;
	int r = ctl_request(c, "GET", path, NULL, NULL, 0, &rep);

	*ret = NULL;
	if (r != CTL_OK)
		return r;
	if (!rep.json) {
		fprintf(c->err, "egressctl: %s%s: the reply is not JSON\n", where(c), path);
		ctl_reply_clear(&rep);
		return CTL_UNREACHABLE;
	}
	*ret = json_incref(rep.json);
	ctl_reply_clear(&rep);
	return CTL_OK;
}

/* --- server-sent events (the HTML standard's event stream format) --- */

struct sse {
	struct ctl *c;
	CURL *e;
	long status;   /* 0 until the first bytes */
	struct buf line;  /* the incomplete line */
	struct buf data;  /* the event's data lines, joined by \n */
	char event[64];
	unsigned long long id;
	struct buf error; /* the body of a refusal */
	ctl_event_cb cb;
	void *arg;
	int cb_ret;
};

static void sse_line(struct sse *s, char *line)
{
	char *value = strchr(line, ':');

	if (!*line) {
		if (s->data.len || s->event[0])
			s->cb_ret = s->cb(s->id, s->event[0] ? s->event : NULL,
				s->data.p ? s->data.p : "", s->arg);
		s->data.len = 0;
		if (s->data.p)
			s->data.p[0] = '\0';
		s->event[0] = '\0';
		return;
	}
	if (value == line) /* a comment: keep-alive */
		return;
	if (value) {
		*value++ = '\0';
		if (*value == ' ')
			value++;
	} else {
		value = line + strlen(line);
	}
	if (streq(line, "data")) {
		if (s->data.len)
			buf_write_cb((char *)"\n", 1, 1, &s->data);
		buf_write_cb(value, 1, strlen(value), &s->data);
	} else if (streq(line, "event")) {
		snprintf(s->event, sizeof(s->event), "%s", value);
	} else if (streq(line, "id")) {
		s->id = strtoull(value, NULL, 10);
	}
}

static size_t sse_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct sse *s = arg;
	size_t len = size * n;

	if (!s->status)
		curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200)
		return buf_write_cb(data, size, n, &s->error);
	for (size_t i = 0; i < len && !s->cb_ret; i++) {
		if (data[i] != '\n') {
			if (buf_write_cb(&data[i], 1, 1, &s->line) != 1)
				return 0;
			continue;
		}
		if (s->line.len && s->line.p[s->line.len - 1] == '\r')
			s->line.p[--s->line.len] = '\0';
		sse_line(s, s->line.p ? s->line.p : (char *)"");
		s->line.len = 0;
		if (s->line.p)
			s->line.p[0] = '\0';
	}
	return s->cb_ret ? 0 : len;
}

int ctl_stream(struct ctl *c, const char *path, unsigned long long last_id, ctl_event_cb cb,
	void *arg)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct sse s = {.c = c, .cb = cb, .arg = arg};
	CURLcode res;
	int r;

	s.e = easy_new(c, path, NULL, &headers, errbuf);
	if (!s.e) {
		fprintf(c->err, "egressctl: cannot make the request: out of memory\n");
		return CTL_UNREACHABLE;
	}
	headers = curl_slist_append(headers, "Accept: text/event-stream");
	if (last_id) {
		char h[64];

		snprintf(h, sizeof(h), "Last-Event-ID: %llu", last_id);
		headers = curl_slist_append(headers, h);
	}
	curl_easy_setopt(s.e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(s.e, CURLOPT_CONNECTTIMEOUT, c->timeout_s);
	curl_easy_setopt(s.e, CURLOPT_WRITEFUNCTION, sse_write_cb);
	curl_easy_setopt(s.e, CURLOPT_WRITEDATA, &s);
	res = curl_easy_perform(s.e);
	if (s.cb_ret) {
		r = s.cb_ret;
	} else if (s.status && s.status != 200) {
		struct ctl_reply rep = {.status = s.status, .body = s.error.p, .len = s.error.len};

		rep.json = s.error.p ? json_loadb(s.error.p, s.error.len, 0, NULL) : NULL;
		ctl_print_error(c, &rep);
		json_decref(rep.json);
		r = status_exit(s.status);
		r = r == CTL_OK ? CTL_REFUSED : r;
	} else if (res != CURLE_OK && !s.status) {
		r = transport_error(c, s.e, res, errbuf);
	} else {
		fprintf(c->err, "egressctl: egressd at %s closed the event stream\n", where(c));
		r = CTL_UNREACHABLE;
	}
	free(s.line.p);
	free(s.data.p);
	free(s.error.p);
	curl_slist_free_all(headers);
	curl_easy_cleanup(s.e);
	return r;
}
