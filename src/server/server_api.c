/*
 * server_api.c - the allowlist's routes of egress-server's API: entries (list, search, add,
 * get, delete with an admin's override), bulk import and export as JSON or one entry per
 * line, the audit log, the server's status and its gateways.
 *
 * Entries added or deleted are told to the resolver at once (a domain is resolved now, not
 * at its next round); the hub learns every change from the store.
 *
 * Same conventions as egressd's API (api.h): JSON in and out, errors {"error", "field"},
 * bad input refused with the field and what was expected, and then nothing changed.  Every
 * change goes to the store with who made it (api_req_who) and from where (api_req_peer),
 * and the store audits it in the same transaction.
 *
 * Must not block the loop beyond one store call; must not answer a refused entry without
 * naming it and why.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "al_entry.h"
#include "api.h"
#include "log.h"
#include "server.h"
#include "server_api.h"
#include "store.h"
#include "util.h"

#define AUDIT_LIMIT	100  /* GET /api/audit without ?limit= */
#define AUDIT_LIMIT_MAX 1000

/* ---- helpers ------------------------------------------------------------------------ */

static struct store_who who_of(const struct api_req *r)
{
	return (struct store_who){.who = api_req_who(r), .from = api_req_peer(r)};
}

/*
 * The store failed (not the caller's fault), logged: 503 while its database is away
 * (PostgreSQL reconnecting: try again), 500 otherwise.
 */
static void reply_store_error(struct api_req *r, const char *what, int err)
{
	log_error("api: %s: store: %s", what, strerror(-err));
	if (err == -ENOTCONN) {
		evhttp_add_header(evhttp_request_get_output_headers(api_req_evhttp(r)),
			"Retry-After", "1");
		api_reply_error(r, 503, NULL, "%s: the store's database is not reachable; "
			"try again", what);
		return;
	}
	api_reply_error(r, 500, NULL, "%s: the store failed: %s", what, strerror(-err));
}

/* {id} of the path: *ret, or 404 answered and false. */
static bool entry_id(struct api_req *r, int64_t *ret)
{
	const char *s = api_req_param(r, "id");
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1 || s[0] < '0' || s[0] > '9') {
		api_reply_error(r, 404, NULL, "no entry \"%s\" (ids are positive integers)", s);
		return false;
	}
	*ret = v;
	return true;
}

/* A yes/no query flag (?override=1): *ret, or 400 naming key answered and false. */
static bool query_bool(struct api_req *r, const char *key, bool *ret)
{
	const char *v = api_req_query(r, key);

	*ret = false;
	if (!v)
		return true;
	if (streq(v, "1") || streq(v, "true") || streq(v, "yes")) {
		*ret = true;
		return true;
	}
	if (streq(v, "0") || streq(v, "false") || streq(v, "no"))
		return true;
	api_reply_error(r, 400, key, "expected 1, true, yes, 0, false or no, got \"%s\"", v);
	return false;
}

/* A non-negative integer query value, at most max: *ret (def without one), or 400. */
static bool query_uint(struct api_req *r, const char *key, long long def, long long max,
	long long *ret)
{
	const char *v = api_req_query(r, key);
	char *end;

	*ret = def;
	if (!v)
		return true;
	errno = 0;
	*ret = strtoll(v, &end, 10);
	if (errno || *end || !v[0] || v[0] == '-' || v[0] == '+' || *ret > max) {
		api_reply_error(r, 400, key, "expected an integer from 0 to %lld, got \"%s\"", max, v);
		return false;
	}
	return true;
}

/* An entry with, for a domain, what the resolver knows of it ("resolver"). */
static json_t *entry_json(struct server *srv, const struct al_entry *e)
{
	json_t *o = al_entry_to_json(e), *st = resolver_entry_status(srv->resolver, e->id);

	if (st)
		json_object_set_new(o, "resolver", st);
	return o;
}

/* The export's form: no "resolver", so that it imports again. */
static int entries_json_cb(const struct al_entry *e, void *arg)
{
	json_array_append_new(arg, al_entry_to_json(e));
	return 0;
}

struct list_ctx {
	struct server *srv;
	json_t *list;
};

static int entries_list_json_cb(const struct al_entry *e, void *arg)
{
	struct list_ctx *c = arg;

	json_array_append_new(c->list, entry_json(c->srv, e));
	return 0;
}

/* ---- entries ------------------------------------------------------------------------ */

/* GET /api/entries[?search=TEXT] */
static void entries_list_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	struct list_ctx c = {.srv = srv, .list = json_array()};
	int rc = store_entries_each(srv->store, api_req_query(r, "search"), entries_list_json_cb, &c);

	if (rc < 0) {
		json_decref(c.list);
		reply_store_error(r, "listing the entries", rc);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:o}", "entries", c.list));
}

/* POST /api/entries {"value", "proto", "ports", "sources", "comment", "non_deletable"} */
static void entry_add_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	struct store_who who = who_of(r);
	struct al_error err = {0};
	struct al_entry e;
	json_t *body = api_req_json(r);
	int rc;

	if (!body)
		return;
	if (al_entry_from_json(body, &e, &err) < 0) {
		api_reply_error(r, 400, err.field, "%s", err.msg);
		goto out;
	}
	rc = store_entry_add(srv->store, &e, &who);
	if (rc == -EEXIST) {
		api_reply_error(r, 409, "value", "%s is in the list already, with the same limits",
			e.value);
		goto out;
	}
	if (rc < 0) {
		reply_store_error(r, "adding an entry", rc);
		goto out;
	}
	log_info("entry %" PRId64 " (%s %s) added by %s from %s", e.id, al_kind_name[e.kind],
		e.value, who.who, who.from);
	resolver_entry_added(srv->resolver, e.id);
	api_reply_json(r, 201, al_entry_to_json(&e));
out:
	al_entry_clear(&e);
}

/* GET /api/entries/{id} */
static void entry_get_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	struct al_entry e;
	int64_t id;
	int rc;

	if (!entry_id(r, &id))
		return;
	al_entry_init(&e);
	rc = store_entry_get(srv->store, id, &e);
	if (rc == -ENOENT)
		api_reply_error(r, 404, NULL, "no entry %" PRId64, id);
	else if (rc < 0)
		reply_store_error(r, "reading an entry", rc);
	else
		api_reply_json(r, 200, entry_json(srv, &e));
	al_entry_clear(&e);
}

/* DELETE /api/entries/{id}[?override=1] */
static void entry_delete_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	struct store_who who = who_of(r);
	struct al_entry e;
	bool override;
	int64_t id;
	int rc;

	if (!entry_id(r, &id) || !query_bool(r, "override", &override))
		return;
	al_entry_init(&e);
	rc = store_entry_get(srv->store, id, &e);
	if (rc == 0)
		rc = store_entry_delete(srv->store, id, override, &who);
	if (rc == -ENOENT) {
		api_reply_error(r, 404, NULL, "no entry %" PRId64, id);
	} else if (rc == -EPERM) {
		api_reply_error(r, 409, "override",
			"entry %" PRId64 " (%s) is non_deletable: an admin may delete it with "
			"?override=1, which the audit log records",
			id, e.value);
	} else if (rc < 0) {
		reply_store_error(r, "deleting an entry", rc);
	} else {
		log_info("entry %" PRId64 " (%s) deleted%s by %s from %s", id, e.value,
			override && e.non_deletable ? " with an override" : "", who.who, who.from);
		resolver_entry_deleted(srv->resolver, id);
		api_reply_json(r, 200, json_pack("{s:I, s:s, s:b}", "deleted", (json_int_t)id,
					       "value", e.value, "override",
					       override && e.non_deletable));
	}
	al_entry_clear(&e);
}

/* ---- import and export -------------------------------------------------------------- */

/* What an import holds so far. */
struct import {
	struct al_entry *v;
	size_t n, cap;
};

static struct al_entry *import_next(struct import *im)
{
	if (im->n == im->cap) {
		im->cap = im->cap ? 2 * im->cap : 64;
		im->v = xrealloc(im->v, im->cap * sizeof(*im->v));
	}
	return &im->v[im->n];
}

static void import_clear(struct import *im)
{
	for (size_t i = 0; i < im->n; i++)
		al_entry_clear(&im->v[i]);
	free(im->v);
}

/*
 * A JSON array of entries (export's output reads back): into im.  false after a 400 that
 * names the element and its field ("[3].ports").
 */
static bool import_json(struct api_req *r, const char *body, size_t len, struct import *im)
{
	json_error_t jerr;
	json_t *arr = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *o;
	struct al_error err;
	size_t i;
	bool ok = false;

	if (!arr) {
		api_reply_error(r, 400, NULL, "bad JSON at line %d column %d: %s", jerr.line,
			jerr.column, jerr.text);
		return false;
	}
	if (!json_is_array(arr)) {
		api_reply_error(r, 400, NULL, "expected a JSON array of entries");
		goto out;
	}
	json_array_foreach (arr, i, o) {
		struct al_entry *e = import_next(im);

		memset(&err, 0, sizeof(err));
		if (al_entry_from_json(o, e, &err) < 0) {
			char field[96];

			al_entry_clear(e);
			snprintf(field, sizeof(field), "[%zu]%s%s", i, err.field[0] ? "." : "",
				err.field);
			api_reply_error(r, 400, field, "entry %zu: %s", i, err.msg);
			goto out;
		}
		im->n++;
	}
	ok = true;
out:
	json_decref(arr);
	return ok;
}

/* One entry per line (export's text reads back): into im.  false after a 400 naming the
 * line. */
static bool import_text(struct api_req *r, char *body, struct import *im)
{
	struct al_error err;
	char *line = body, *next;

	for (unsigned n = 1; line; n++, line = next) {
		struct al_entry *e = import_next(im);
		int rc;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (next && next > line + 1 && next[-2] == '\r')
			next[-2] = '\0';
		memset(&err, 0, sizeof(err));
		rc = al_entry_from_line(line, e, &err);
		if (rc == -ENODATA) {
			al_entry_clear(e);
			continue;
		}
		if (rc < 0) {
			json_t *o;

			al_entry_clear(e);
			o = json_pack("{s:o, s:i}", "error",
				json_sprintf("line %u: %s%s%s", n, err.field,
					err.field[0] ? ": " : "", err.msg),
				"line", n);
			if (err.field[0])
				json_object_set_new(o, "field", json_string(err.field));
			api_reply_json(r, 400, o);
			return false;
		}
		im->n++;
	}
	return true;
}

/*
 * POST /api/entries/import: a JSON array of entries (Content-Type application/json) or one
 * entry per line (text/plain), all or nothing.  Entries in the list already are skipped.
 */
static void import_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	struct store_who who = who_of(r);
	const char *type = api_req_header(r, "Content-Type");
	struct import im = {0};
	size_t len, skipped = 0;
	const char *body = api_req_body(r, &len);
	char *text;
	bool ok;
	int rc;

	if (type && !strncasecmp(type, "text/plain", 10)) {
		text = xstrdup(body);
		ok = import_text(r, text, &im);
		free(text);
	} else if (!type || !strncasecmp(type, "application/json", 16)) {
		ok = import_json(r, body, len, &im);
	} else {
		api_reply_error(r, 400, NULL,
			"expected Content-Type application/json (an array of entries) or text/plain "
			"(one entry per line), got \"%s\"",
			type);
		ok = false;
	}
	if (!ok)
		goto out;
	rc = store_import(srv->store, im.v, im.n, &who, &skipped);
	if (rc < 0) {
		reply_store_error(r, "importing entries", rc);
		goto out;
	}
	log_info("import of %zu entries (%zu there already) by %s from %s", im.n, skipped,
		who.who, who.from);
	for (size_t i = 0; i < im.n; i++)
		if (im.v[i].id > 0) /* added, not skipped */
			resolver_entry_added(srv->resolver, im.v[i].id);
	api_reply_json(r, 200, json_pack("{s:I, s:I}", "imported", (json_int_t)(im.n - skipped),
				       "skipped", (json_int_t)skipped));
out:
	import_clear(&im);
}

struct export_text {
	char *buf;
	size_t len;
	FILE *f;
};

static int export_line_cb(const struct al_entry *e, void *arg)
{
	struct export_text *t = arg;
	char *line = al_entry_to_line(e);

	if (!line)
		return -ENOMEM;
	fprintf(t->f, "%s\n", line);
	free(line);
	return 0;
}

/* GET /api/entries/export[?format=json|text] */
static void export_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	const char *format = api_req_query(r, "format");
	struct export_text t = {0};
	json_t *list;
	int rc;

	if (!format || streq(format, "json")) {
		list = json_array();
		rc = store_entries_each(srv->store, NULL, entries_json_cb, list);
		if (rc < 0) {
			json_decref(list);
			reply_store_error(r, "exporting the entries", rc);
			return;
		}
		api_reply_json(r, 200, list);
		return;
	}
	if (!streq(format, "text")) {
		api_reply_error(r, 400, "format", "expected json or text, got \"%s\"", format);
		return;
	}
	t.f = open_memstream(&t.buf, &t.len);
	if (!t.f)
		fatalx("api: out of memory for an export");
	rc = store_entries_each(srv->store, NULL, export_line_cb, &t);
	fclose(t.f);
	if (rc < 0)
		reply_store_error(r, "exporting the entries", rc);
	else
		api_reply_data(r, 200, "text/plain; charset=utf-8", t.buf, t.len);
	free(t.buf);
}

/* ---- audit, status, gateways -------------------------------------------------------- */

static int audit_json_cb(json_t *record, void *arg)
{
	json_array_append(arg, record);
	return 0;
}

/* GET /api/audit[?after=ID][&limit=N]: the oldest records after ID first. */
static void audit_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	long long after, limit;
	json_t *list;
	int rc;

	if (!query_uint(r, "after", 0, INT64_MAX, &after) ||
		!query_uint(r, "limit", AUDIT_LIMIT, AUDIT_LIMIT_MAX, &limit))
		return;
	list = json_array();
	rc = store_audit_each(srv->store, after, (size_t)limit, audit_json_cb, list);
	if (rc < 0) {
		json_decref(list);
		reply_store_error(r, "reading the audit log", rc);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:o}", "audit", list));
}

static int count_cb(const struct al_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

/* GET /api/status: {"version", "backend", "replica", "entries", "resolver_status"} */
static void status_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;
	size_t n = 0;
	int rc = store_entries_each(srv->store, NULL, count_cb, &n);

	if (rc < 0) {
		reply_store_error(r, "counting the entries", rc);
		return;
	}
	api_reply_json(r, 200,
		json_pack("{s:I, s:s, s:s, s:I, s:o}", "version",
			(json_int_t)store_version(srv->store), "backend", store_backend(srv->store),
			"replica", srv->name, "entries", (json_int_t)n, "resolver_status",
			resolver_status(srv->resolver)));
}

/* GET /api/gateways: every gateway any replica has seen, with its version and lag */
static void gateways_cb(struct api_req *r, void *arg)
{
	struct server *srv = arg;

	api_reply_json(r, 200, json_pack("{s:o}", "gateways", hub_gateways(srv->hub)));
}

const struct api_route server_api_routes[] = {
	{EVHTTP_REQ_GET, "/api/entries", API_READ, entries_list_cb, false},
	{EVHTTP_REQ_POST, "/api/entries", API_ADMIN, entry_add_cb, false},
	{EVHTTP_REQ_GET, "/api/entries/export", API_READ, export_cb, false},
	{EVHTTP_REQ_POST, "/api/entries/import", API_ADMIN, import_cb, false},
	{EVHTTP_REQ_GET, "/api/entries/{id}", API_READ, entry_get_cb, false},
	{EVHTTP_REQ_DELETE, "/api/entries/{id}", API_ADMIN, entry_delete_cb, false},
	{EVHTTP_REQ_GET, "/api/audit", API_READ, audit_cb, false},
	{EVHTTP_REQ_GET, "/api/status", API_READ, status_cb, false},
	{EVHTTP_REQ_GET, "/api/gateways", API_READ, gateways_cb, false},
};
const size_t server_api_n_routes = ARRAY_SIZE(server_api_routes);
