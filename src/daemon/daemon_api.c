/*
 * daemon_api.c - the daemon's own routes of the REST API (api.h): the running configuration
 * (GET, POST with ?dry_run=1 and ?confirm=, confirm, cancel, what awaits a confirmation),
 * the event log (history, and a live stream of server-sent events) and the modules.
 *
 * Each handler runs on the loop, takes the daemon as its arg, and answers before it returns
 * (the stream aside).  Changes go through daemon_change.c, which applies them as a reload
 * does; nothing here changes the running configuration by itself.
 *
 * Must not block, or answer a configuration error without saying where it is (line, key,
 * what was expected, what was seen).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "api.h"
#include "daemon_api.h"
#include "daemon_int.h"
#include "events.h"
#include "log.h"
#include "modules.h"
#include "textdiff.h"
#include "util.h"

#define EVENTS_LIMIT	   100 /* GET /api/events without ?limit= */
#define STREAM_HEARTBEAT_S 15  /* a comment on an idle stream: proxies keep it open */

/* ---- errors ------------------------------------------------------------------------- */

/* "uplink.isp1.weight" for section "uplink isp1" and key "weight". */
static void error_field(const struct conf_error_at *at, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "%s", at->section ? at->section : "");

	for (size_t i = 0; i < off && i < len; i++)
		if (buf[i] == ' ')
			buf[i] = '.';
	if (at->key && off < len)
		snprintf(buf + off, len - off, "%s%s", off ? "." : "", at->key);
}

static json_t *error_json(const char *msg, const struct conf_error_at *at)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char field[256];

	error_field(at, field, sizeof(field));
	if (field[0])
		json_object_set_new(o, "field", json_string(field));
	if (at->line)
		json_object_set_new(o, "line", json_integer(at->line));
	if (at->key)
		json_object_set_new(o, "key", json_string(at->key));
	if (at->expected)
		json_object_set_new(o, "expected", json_string(at->expected));
	if (at->seen)
		json_object_set_new(o, "seen", json_string(at->seen));
	return o;
}

/*
 * 400 with the first error's {"error", "field", "line", "key", "expected", "seen"} (those
 * known) and every error in "errors".
 */
static void reply_conf_errors(struct api_req *r, const struct conf_errors *errs)
{
	json_t *list = json_array(), *top;

	for (size_t i = 0; i < errs->n; i++)
		json_array_append_new(list, error_json(errs->msgs[i], &errs->at[i]));
	top = errs->n ? json_deep_copy(json_array_get(list, 0))
		      : json_pack("{s:s}", "error", "invalid configuration");
	json_object_set_new(top, "errors", list);
	api_reply_json(r, 400, top);
}

/* ---- query values ------------------------------------------------------------------- */

static bool query_bool(struct api_req *r, const char *key, bool *ret)
{
	const char *v = api_req_query(r, key);

	*ret = false;
	if (!v)
		return true;
	if (conf_parse_bool(v, ret) < 0) {
		api_reply_error(r, 400, key, "expected 1 or 0 (true, false), got \"%s\"", v);
		return false;
	}
	return true;
}

/* ?NAME=N within [0, max]; def without one; false after a 400. */
static bool query_ull(struct api_req *r, const char *key, unsigned long long max,
	unsigned long long def, unsigned long long *ret)
{
	const char *v = api_req_query(r, key);
	char *end;

	*ret = def;
	if (!v)
		return true;
	errno = 0;
	*ret = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || *ret > max) {
		api_reply_error(r, 400, key, "expected a number from 0 to %llu, got \"%s\"", max, v);
		return false;
	}
	return true;
}

/* ---- the configuration --------------------------------------------------------------- */

static json_t *pending_json(const struct daemon *d)
{
	const struct daemon_pending *p = d->pending;
	uint64_t now = now_ms();

	if (!p)
		return json_pack("{s:b}", "pending", false);
	return json_pack("{s:b, s:s, s:s, s:I}", "pending", true, "what", p->what, "who", p->who,
		"seconds_left",
		(json_int_t)(p->deadline_ms > now ? (p->deadline_ms - now + 999) / 1000 : 0));
}

/* {"global": {...}, "uplink": {"isp1": {...}}}: what the file says, values as written. */
static json_t *conf_json(const struct conf *conf)
{
	json_t *root = json_object();
	char buf[512];

	for (size_t i = 0; i < conf->n_types; i++) {
		const struct conf_section_type *t = conf->types[i];
		for (size_t j = 0; j < conf->lists[i].n; j++) {
			const struct conf_section *s = conf->lists[i].items[j];
			if (s->origin)
				continue; /* implied by another section, as egressd -n leaves it out */
			json_t *keys = json_object();
			for (size_t ki = 0; ki < t->n_keys; ki++) {
				const struct conf_key *k = &t->keys[ki];
				size_t n = conf_value_count(s, k);
				json_t *v = conf_type_is_list(k->type) ? json_array() : NULL;
				if (!n || (k->relevant && !k->relevant(s))) {
					json_decref(v);
					continue;
				}
				for (size_t vi = 0; vi < n; vi++) {
					conf_format(s, k, vi, buf, sizeof(buf));
					if (k->flags & CONF_SECRET)
						snprintf(buf, sizeof(buf), "%s", CONF_SECRET_MASK);
					if (v)
						json_array_append_new(v, json_string(buf));
					else
						v = json_string(buf);
				}
				json_object_set_new(keys, k->name, v);
			}
			if (!t->named) {
				json_object_set_new(root, t->name, keys);
				continue;
			}
			json_t *named = json_object_get(root, t->name);
			if (!named) {
				named = json_object();
				json_object_set_new(root, t->name, named);
			}
			json_object_set_new(named, s->name, keys);
		}
	}
	return root;
}

static void config_get_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	const char *format = api_req_query(r, "format");

	if (format && streq(format, "json")) {
		api_reply_json(r, 200, conf_json(d->conf));
		return;
	}
	if (format && !streq(format, "text")) {
		api_reply_error(r, 400, "format", "expected text or json, got \"%s\"", format);
		return;
	}
	char *text = daemon_conf_text(d->conf);
	api_reply_data(r, 200, "text/plain; charset=utf-8", text, strlen(text));
	free(text);
}

static void config_post_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	struct conf_overrides none = {0};
	struct conf_errors errs = {0};
	const char *who = api_req_who(r);
	uint32_t confirm_ms;
	bool dry_run;
	char *now, *next, *diff;
	struct conf *conf;
	int e;

	if (!query_bool(r, "dry_run", &dry_run) || !api_req_confirm(r, &confirm_ms))
		return;
	size_t len;
	const char *text = api_req_body(r, &len);
	if (strlen(text) != len) {
		api_reply_error(r, 400, NULL, "expected the text of a configuration file, got a NUL "
					      "byte at %zu",
			strlen(text));
		return;
	}
	conf = daemon_conf_build(d, text, &none, &errs);
	if (!conf) {
		reply_conf_errors(r, &errs);
		conf_errors_clear(&errs);
		return;
	}
	now = daemon_conf_text(d->conf);
	next = daemon_conf_text(conf);
	diff = text_diff(now, next, "running", "posted");
	conf_free(conf);
	free(now);
	free(next);
	if (dry_run) {
		api_reply_json(r, 200, json_pack("{s:b, s:b, s:s}", "valid", true, "changes",
					       diff[0] != '\0', "diff", diff));
		free(diff);
		return;
	}
	e = daemon_config_post(d, text, confirm_ms, who, &errs);
	if (e == -EINVAL)
		reply_conf_errors(r, &errs);
	else if (e == -EBUSY)
		api_reply_error(r, 409, NULL, "%s (by %s) awaits its confirmation",
			d->pending->what, d->pending->who);
	else if (e == -ENOENT)
		api_reply_error(r, 409, NULL,
			"egressd runs without a configuration file (-c): nothing to write");
	else if (e < 0)
		api_reply_error(r, 500, NULL, "the configuration could not be applied: %s",
			strerror(-e));
	else {
		json_t *body = json_pack("{s:b, s:b, s:s}", "applied", true, "changes",
			diff[0] != '\0', "diff", diff);
		if (confirm_ms) {
			json_object_set_new(body, "pending", pending_json(d));
			json_object_set_new(body, "seconds_left",
				json_integer((confirm_ms + 999) / 1000));
		}
		api_reply_json(r, 200, body);
	}
	conf_errors_clear(&errs);
	free(diff);
}

static void config_confirm_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	int e = daemon_confirm(d, api_req_who(r));

	if (e == -ENOENT)
		api_reply_error(r, 409, NULL, "nothing awaits a confirmation");
	else if (e < 0)
		api_reply_error(r, 500, NULL, "the change could not be kept (%s): it still awaits "
					      "its confirmation",
			strerror(-e));
	else
		api_reply_json(r, 200, json_pack("{s:b}", "confirmed", true));
}

static void config_cancel_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;

	if (daemon_cancel(d, api_req_who(r)) == -ENOENT)
		api_reply_error(r, 409, NULL, "nothing awaits a confirmation");
	else
		api_reply_json(r, 200, json_pack("{s:b}", "rolled_back", true));
}

static void config_pending_cb(struct api_req *r, void *arg)
{
	api_reply_json(r, 200, pending_json(arg));
}

/* ---- the event log ------------------------------------------------------------------- */

/* ?kind=transition,error: the kinds asked for, as bits; false after a 400. */
static bool query_kinds(struct api_req *r, unsigned *ret)
{
	const char *v = api_req_query(r, "kind");
	char word[32];

	*ret = ~0u;
	if (!v || !*v)
		return true;
	*ret = 0;
	for (const char *p = v; *p;) {
		size_t len = strcspn(p, ",");
		int k;
		snprintf(word, sizeof(word), "%.*s", (int)MIN(len, sizeof(word) - 1), p);
		k = event_kind_from_name(word);
		if (k < 0) {
			api_reply_error(r, 400, "kind",
				"expected transition, apply, error, config, login or change, got "
				"\"%s\"",
				word);
			return false;
		}
		*ret |= 1u << k;
		p += len + (p[len] == ',');
	}
	return true;
}

struct events_query {
	unsigned kinds;
	json_t *list;
};

static void events_collect_cb(const struct event *e, void *arg)
{
	struct events_query *q = arg;

	if (q->kinds & (1u << e->kind))
		json_array_append_new(q->list, event_json(e));
}

static void events_get_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	struct events_query q = {0};
	unsigned long long after, limit;

	if (!query_ull(r, "after", ~0ull, 0, &after) ||
		!query_ull(r, "limit", DAEMON_EVENTS_MAX, EVENTS_LIMIT, &limit) ||
		!query_kinds(r, &q.kinds))
		return;
	q.list = json_array();
	event_log_foreach(d->events, after, events_collect_cb, &q);
	/* after an id: the first ones after it (paging forward); else the newest */
	size_t n = json_array_size(q.list);
	while (n > limit) {
		json_array_remove(q.list, api_req_query(r, "after") ? n - 1 : 0);
		n--;
	}
	api_reply_json(r, 200, json_pack("{s:o, s:I}", "events", q.list, "last_id",
				       (json_int_t)event_log_last_id(d->events)));
}

/* One client of GET /api/events/stream. */
struct events_stream {
	struct event_log *events;
	struct api_stream *s;
	unsigned kinds;
};

/* Send e if the client asked for its kind.  A client that does not read is dropped by the
 * server (its close_cb comes on a later loop turn): nothing more to do here on an error. */
static void stream_event_cb(const struct event *e, void *arg)
{
	struct events_stream *st = arg;
	json_t *j;
	char *data;

	if (!(st->kinds & (1u << e->kind)))
		return;
	j = event_json(e);
	data = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	api_stream_send(st->s, event_kind_name[e->kind], e->id, data);
	free(data);
}

static void stream_close_cb(struct api_stream *s, void *arg)
{
	struct events_stream *st = arg;

	(void)s;
	event_log_unsubscribe(st->events, stream_event_cb, st);
	free(st);
}

/*
 * GET /api/events/stream: each new event as "event: KIND", "id: ID", "data: JSON".  A client
 * that comes back with Last-Event-ID (or ?after=ID) first gets what it missed that the log
 * still keeps.  The server sends a comment on an idle stream.
 */
static void events_stream_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	const char *last = api_req_header(r, "Last-Event-ID");
	unsigned long long after = 0;
	struct events_stream *st;
	unsigned kinds;
	char *end;

	if (!query_kinds(r, &kinds) || !query_ull(r, "after", ~0ull, 0, &after))
		return;
	bool resume = api_req_query(r, "after") || (last && *last);
	if (last && *last) {
		errno = 0;
		after = strtoull(last, &end, 10);
		if (*end || errno || last[0] == '-') {
			api_reply_error(r, 400, "Last-Event-ID", "expected an event id, got \"%s\"",
				last);
			return;
		}
	}
	st = xcalloc(1, sizeof(*st));
	st->events = d->events;
	st->kinds = kinds;
	st->s = api_stream_start(r, stream_close_cb, st);
	if (!st->s) {
		free(st);
		return;
	}
	if (resume) {
		if (after > event_log_last_id(d->events))
			after = 0; /* an id of an earlier run of egressd: all it keeps is new */
		event_log_foreach(d->events, after, stream_event_cb, st);
	}
	event_log_subscribe(d->events, stream_event_cb, st);
}

/* ---- the modules --------------------------------------------------------------------- */

static void modules_get_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	json_t *list = json_array();

	for (size_t i = 0; i < modules_n; i++) {
		const struct module *m = modules[i];
		void *run = d->running[i];
		json_t *status = run && m->status ? m->status(run) : NULL;

		json_array_append_new(list, json_pack("{s:s, s:b, s:b, s:o}", "name", m->name,
						    "wanted", m->wanted(d->conf), "running",
						    run != NULL, "status",
						    status ? status : json_null()));
	}
	api_reply_json(r, 200, json_pack("{s:o}", "modules", list));
}

/* ---- the table ----------------------------------------------------------------------- */

const struct api_route daemon_api_routes[] = {
	{EVHTTP_REQ_GET, "/api/config", API_READ, config_get_cb, false},
	{EVHTTP_REQ_POST, "/api/config", API_ADMIN, config_post_cb, false},
	{EVHTTP_REQ_POST, "/api/config/confirm", API_ADMIN, config_confirm_cb, false},
	{EVHTTP_REQ_POST, "/api/config/cancel", API_ADMIN, config_cancel_cb, false},
	{EVHTTP_REQ_GET, "/api/config/pending", API_READ, config_pending_cb, false},
	{EVHTTP_REQ_GET, "/api/events", API_READ, events_get_cb, false},
	{EVHTTP_REQ_GET, "/api/events/stream", API_READ, events_stream_cb, false},
	{EVHTTP_REQ_GET, "/api/modules", API_READ, modules_get_cb, false},
};
const size_t daemon_api_n_routes = ARRAY_SIZE(daemon_api_routes);
