/*
 * ddns_dynu.c - the DynuDNS provider: the calls of Dynu's API v2 that gateway-route-manager
 * makes, over libcurl on the loop (curl_loop.h), for A and AAAA records.
 *
 *   GET    {base}/dns/getroot/{hostname}  once: the root domain's id and the node name
 *   GET    {base}/dns/{id}/record         each update: the records of the node
 *   DELETE {base}/dns/{id}/record/{rid}   records whose address is no longer wanted
 *   POST   {base}/dns/{id}/record         addresses not there yet
 *
 * Deletes and creates run in parallel.  Every request carries the API key in the API-Key
 * header; a status outside 200-299 is an error whose message is the body's
 * {"exception": {"message": ...}}.
 *
 * Must not log, nor put the API key anywhere but in that header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "curl_loop.h"
#include "ddns_int.h"
#include "util.h"

#define DYNU_BODY_MAX (1024 * 1024)

enum dynu_step {
	DYNU_IDLE,
	DYNU_ROOT,
	DYNU_LIST,
	DYNU_CHANGE,
};

struct dynu_req {
	struct curl_xfer x;
	struct ddns_dynu *d;
	struct curl_slist *hdrs;
	char *url, *out;
	char *body;
	size_t len;
	bool overflow;
	char errbuf[CURL_ERROR_SIZE];
	char what[64]; /* "getroot", "delete 203.0.113.7", ... for messages */
};

struct ddns_dynu {
	struct curl_loop *loop;
	char *base;
	char *hostname;
	char *key_hdr; /* "API-Key: ..." */
	long ttl_s, timeout_ms;
	long root_id; /* 0: not known yet */
	char *node;
	enum dynu_step step;
	struct dynu_req **reqs;
	size_t n_reqs, pending;
	struct ddns_set want;
	char error[256];
	ddns_done_cb cb;
	void *arg;
};

static void dynu_req_free(struct ddns_dynu *d, struct dynu_req *q)
{
	if (!q)
		return;
	if (q->x.easy) {
		curl_loop_remove(d->loop, &q->x);
		curl_easy_cleanup(q->x.easy);
	}
	curl_slist_free_all(q->hdrs);
	free(q->url);
	free(q->out);
	free(q->body);
	free(q);
}

static void dynu_reqs_clear(struct ddns_dynu *d)
{
	for (size_t i = 0; i < d->n_reqs; i++)
		dynu_req_free(d, d->reqs[i]);
	FREE_AND_NULL(d->reqs);
	d->n_reqs = d->pending = 0;
}

static void dynu_finish(struct ddns_dynu *d, int err)
{
	ddns_done_cb cb = d->cb;

	d->step = DYNU_IDLE;
	d->cb = NULL;
	if (cb)
		cb(d->arg, err, err ? d->error : "");
}

static size_t dynu_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct dynu_req *q = arg;
	size_t n = size * nmemb;

	if (q->len + n > DYNU_BODY_MAX) {
		q->overflow = true;
		return 0;
	}
	q->body = xrealloc(q->body, q->len + n + 1);
	memcpy(q->body + q->len, ptr, n);
	q->len += n;
	q->body[q->len] = '\0';
	return n;
}

static void dynu_done_cb(struct curl_xfer *x, CURLcode res, void *arg);

/* Start a request; method NULL: GET.  out (owned after the call) is the JSON body. */
static int dynu_req(struct ddns_dynu *d, const char *method, char *out, const char *what,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int dynu_req(struct ddns_dynu *d, const char *method, char *out, const char *what,
	const char *fmt, ...)
{
	struct dynu_req *q = xcalloc(1, sizeof(*q));
	char *path;
	va_list ap;
	CURL *e;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&path, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("out of memory");
	if (asprintf(&q->url, "%s%s", d->base, path) < 0)
		fatalx("out of memory");
	free(path);
	q->d = d;
	q->out = out;
	snprintf(q->what, sizeof(q->what), "%s", what);
	q->x.easy = e = curl_easy_init();
	if (!e)
		fatalx("out of memory");
	q->x.done_cb = dynu_done_cb;
	q->x.arg = q;
	q->hdrs = curl_slist_append(NULL, d->key_hdr);
	q->hdrs = curl_slist_append(q->hdrs, "Content-Type: application/json");
	q->hdrs = curl_slist_append(q->hdrs, "Accept: application/json");
	curl_easy_setopt(e, CURLOPT_URL, q->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "egressd/" EGRESS_VERSION);
	curl_loop_ca_setup(d->loop, e);
	if (method)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (out)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, out);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, dynu_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
	d->reqs = xrealloc(d->reqs, (d->n_reqs + 1) * sizeof(*d->reqs));
	d->reqs[d->n_reqs++] = q;
	if (curl_loop_add(d->loop, &q->x) < 0)
		return -EIO;
	d->pending++;
	return 0;
}

/* The first error of an update is the one reported. */
static void dynu_error(struct ddns_dynu *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void dynu_error(struct ddns_dynu *d, const char *fmt, ...)
{
	va_list ap;

	if (d->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(d->error, sizeof(d->error), fmt, ap);
	va_end(ap);
}

/* The body of q as JSON if it succeeded; NULL with the error noted otherwise. */
static json_t *dynu_reply(struct dynu_req *q, CURLcode res)
{
	struct ddns_dynu *d = q->d;
	long code = 0;
	json_t *doc;

	if (res != CURLE_OK) {
		dynu_error(d, "%s: %s", q->what,
			q->overflow ? "reply too long" : q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
		return NULL;
	}
	curl_easy_getinfo(q->x.easy, CURLINFO_RESPONSE_CODE, &code);
	doc = q->body ? json_loadb(q->body, q->len, 0, NULL) : NULL;
	if (code < 200 || code > 299) {
		json_t *m = json_object_get(json_object_get(doc, "exception"), "message");
		dynu_error(d, "%s: status %ld: %s", q->what, code,
			json_is_string(m) ? json_string_value(m) : "no message");
		json_decref(doc);
		return NULL;
	}
	if (!doc)
		doc = json_object(); /* a DELETE may answer with nothing */
	return doc;
}

static void dynu_list(struct ddns_dynu *d)
{
	d->step = DYNU_LIST;
	if (dynu_req(d, NULL, NULL, "list records", "/dns/%ld/record", d->root_id) < 0) {
		dynu_error(d, "list records: cannot start the request");
		dynu_finish(d, -EIO);
	}
}

static bool dynu_root(struct ddns_dynu *d, json_t *doc)
{
	json_t *id = json_object_get(doc, "id"), *node = json_object_get(doc, "node");

	if (!json_is_integer(id) || json_integer_value(id) <= 0 || (node && !json_is_string(node) &&
								       !json_is_null(node))) {
		dynu_error(d, "getroot: expected {\"id\": number, \"node\": string}");
		return false;
	}
	d->root_id = (long)json_integer_value(id);
	free(d->node);
	d->node = xstrdup(json_is_string(node) ? json_string_value(node) : "");
	return true;
}

/* The node's A and AAAA records: delete what is not wanted, post what is missing. */
static void dynu_change(struct ddns_dynu *d, json_t *doc)
{
	json_t *recs = json_object_get(doc, "dnsRecords"), *r;
	struct ddns_set have = {0};
	size_t i;
	char a[ADDR_STRLEN], what[64];

	d->step = DYNU_CHANGE;
	if (recs && !json_is_array(recs)) {
		dynu_error(d, "list records: expected dnsRecords to be an array");
		goto out;
	}
	json_array_foreach(recs, i, r) {
		const char *node = json_string_value(json_object_get(r, "nodeName"));
		const char *type = json_string_value(json_object_get(r, "recordType"));
		json_t *id = json_object_get(r, "id");
		const char *ip;
		struct addr x;

		if (!type || !json_is_integer(id) || strcasecmp(node ? node : "", d->node))
			continue;
		if (!strcasecmp(type, "A"))
			ip = json_string_value(json_object_get(r, "ipv4Address"));
		else if (!strcasecmp(type, "AAAA"))
			ip = json_string_value(json_object_get(r, "ipv6Address"));
		else
			continue;
		/* a record of another address, a duplicate or one that is not an address goes */
		if (ip && addr_parse(ip, &x) == 0 && ddns_set_has(&d->want, &x) &&
			!ddns_set_has(&have, &x)) {
			ddns_set_add(&have, &x);
			continue;
		}
		snprintf(what, sizeof(what), "delete %s", ip ? ip : "record");
		if (dynu_req(d, "DELETE", NULL, what, "/dns/%ld/record/%" JSON_INTEGER_FORMAT,
			    d->root_id, json_integer_value(id)) < 0)
			dynu_error(d, "%s: cannot start the request", what);
	}
	for (i = 0; i < d->want.n; i++) {
		const struct addr *x = &d->want.v[i];
		bool v6 = x->family == AF_INET6;
		json_t *o;

		if (ddns_set_has(&have, x))
			continue;
		addr_str(x, a, sizeof(a));
		o = json_pack("{s:s, s:s, s:I, s:b, s:s}", "nodeName", d->node, "recordType",
			v6 ? "AAAA" : "A", "ttl", (json_int_t)d->ttl_s, "state", 1,
			v6 ? "ipv6Address" : "ipv4Address", a);
		snprintf(what, sizeof(what), "add %s", a);
		if (dynu_req(d, "POST", json_dumps(o, JSON_COMPACT), what, "/dns/%ld/record",
			    d->root_id) < 0)
			dynu_error(d, "%s: cannot start the request", what);
		json_decref(o);
	}
out:
	ddns_set_clear(&have);
	if (!d->pending)
		dynu_finish(d, d->error[0] ? -EIO : 0);
}

static void dynu_done_cb(struct curl_xfer *x, CURLcode res, void *arg)
{
	struct dynu_req *q = arg;
	struct ddns_dynu *d = q->d;
	json_t *doc = dynu_reply(q, res);

	(void)x;
	d->pending--;
	switch (d->step) {
	case DYNU_ROOT:
		if (doc && dynu_root(d, doc))
			dynu_list(d);
		else
			dynu_finish(d, -EIO);
		break;
	case DYNU_LIST:
		if (!doc) {
			/* the root may have changed (a deleted domain): ask again next time */
			d->root_id = 0;
			dynu_finish(d, -EIO);
		} else {
			dynu_change(d, doc);
		}
		break;
	case DYNU_CHANGE:
		if (!d->pending)
			dynu_finish(d, d->error[0] ? -EIO : 0);
		break;
	default:
		break;
	}
	json_decref(doc);
}

int ddns_dynu_new(struct curl_loop *loop, const struct conf_ddns *c, const char *key,
	struct ddns_dynu **ret)
{
	struct ddns_dynu *d = xcalloc(1, sizeof(*d));
	size_t n;

	d->loop = loop;
	d->base = xstrdup(c->dynu_url);
	n = strlen(d->base);
	while (n && d->base[n - 1] == '/')
		d->base[--n] = '\0';
	d->hostname = xstrdup(c->hostname);
	n = strlen(d->hostname);
	if (n && d->hostname[n - 1] == '.')
		d->hostname[n - 1] = '\0';
	if (asprintf(&d->key_hdr, "API-Key: %s", key) < 0)
		fatalx("out of memory");
	d->ttl_s = (long)(c->record_ttl_ms / 1000);
	d->timeout_ms = (long)c->timeout_ms;
	*ret = d;
	return 0;
}

void ddns_dynu_cancel(struct ddns_dynu *d)
{
	dynu_reqs_clear(d);
	d->step = DYNU_IDLE;
	d->cb = NULL;
}

void ddns_dynu_free(struct ddns_dynu *d)
{
	if (!d)
		return;
	ddns_dynu_cancel(d);
	free(d->base);
	free(d->hostname);
	explicit_bzero(d->key_hdr, strlen(d->key_hdr));
	free(d->key_hdr);
	free(d->node);
	ddns_set_clear(&d->want);
	free(d);
}

int ddns_dynu_update(struct ddns_dynu *d, const struct ddns_set *want, ddns_done_cb cb,
	void *arg)
{
	if (d->step != DYNU_IDLE)
		return -EBUSY;
	dynu_reqs_clear(d);
	ddns_set_copy(&d->want, want);
	d->error[0] = '\0';
	d->cb = cb;
	d->arg = arg;
	if (d->root_id) {
		dynu_list(d);
		return 0;
	}
	d->step = DYNU_ROOT;
	if (dynu_req(d, NULL, NULL, "getroot", "/dns/getroot/%s", d->hostname) < 0) {
		d->step = DYNU_IDLE;
		d->cb = NULL;
		return -EIO;
	}
	return 0;
}
