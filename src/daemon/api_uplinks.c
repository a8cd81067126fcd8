/*
 * api_uplinks.c - the daemon's uplink routes:
 *
 *   GET   /api/uplinks          every uplink (uplink_stats.h): state, reason, since, enabled,
 *                               weight, tier, RTT, loss, throughput, share, last transitions
 *   GET   /api/uplinks/{name}   one of them
 *   PATCH /api/uplinks/{name}   {"weight": 1..256, "enabled": bool}: an operator's setting
 *                               of [uplink NAME], through env.change (?confirm=60s: rolled
 *                               back unless POST /api/config/confirm comes in time)
 *
 * Must not change the running configuration but through env.change, so that a change is
 * validated, applied, persisted, confirmed or rolled back, and logged as any other.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_uplinks.h"
#include "conf_keys.h"
#include "daemon_int.h"
#include "uplink_stats.h"
#include "util.h"

#define WEIGHT_MIN 1
#define WEIGHT_MAX 256

static struct uplink *uplink_of(struct api_req *r, struct daemon *d)
{
	const char *name = api_req_param(r, "name");
	struct uplink *u = name ? uplink_find(&d->uplinks, name) : NULL;

	if (!u)
		api_reply_error(r, 404, NULL, "no uplink called \"%s\"", name ? name : "");
	return u;
}

static void uplinks_get_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;

	api_reply_json(r, 200, uplink_stats_list_json(d->uplink_stats));
}

static void uplink_get_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	struct uplink *u = uplink_of(r, d);

	if (u)
		api_reply_json(r, 200, uplink_stats_json(d->uplink_stats, u));
}

/* ?confirm=60s (a duration as in egress.conf; a bare number is seconds).  false: replied. */
static bool confirm_of(struct api_req *r, uint32_t *ret_ms)
{
	const char *q = api_req_query(r, "confirm");
	char buf[32];

	*ret_ms = 0;
	if (!q)
		return true;
	snprintf(buf, sizeof(buf), "%s%s", q, q[0] && strspn(q, "0123456789") == strlen(q) ? "s" : "");
	if (strlen(q) >= sizeof(buf) - 1 || conf_parse_duration(buf, ret_ms) < 0 || !*ret_ms) {
		api_reply_error(r, 400, "confirm",
			"expected a duration such as 60s or 2m, got \"%s\"", q);
		return false;
	}
	return true;
}

/*
 * The body's settings, checked: at most "weight" and "enabled", each of its type and range.
 * Fills v (2 entries) and bufs; returns how many, or -1 after a 400.
 */
static int settings_of(struct api_req *r, json_t *body, const char *name, struct conf_setting *v,
	char weight_buf[16])
{
	static const char *const allowed[] = {"weight", "enabled", NULL};
	json_t *w = json_object_get(body, "weight"), *e = json_object_get(body, "enabled");
	int n = 0;

	if (!api_json_only(r, body, allowed))
		return -1;
	if (w) {
		json_int_t x = json_is_integer(w) ? json_integer_value(w) : 0;

		if (!json_is_integer(w) || x < WEIGHT_MIN || x > WEIGHT_MAX) {
			char *seen = json_dumps(w, JSON_ENCODE_ANY);
			api_reply_error(r, 400, "weight", "expected an integer from %d to %d, got %s",
				WEIGHT_MIN, WEIGHT_MAX, seen ? seen : "?");
			free(seen);
			return -1;
		}
		snprintf(weight_buf, 16, "%" JSON_INTEGER_FORMAT, x);
		v[n++] = (struct conf_setting){.section = "uplink", .name = name, .key = "weight",
			.value = weight_buf};
	}
	if (e) {
		if (!json_is_boolean(e)) {
			char *seen = json_dumps(e, JSON_ENCODE_ANY);
			api_reply_error(r, 400, "enabled", "expected true or false, got %s",
				seen ? seen : "?");
			free(seen);
			return -1;
		}
		v[n++] = (struct conf_setting){.section = "uplink", .name = name, .key = "enabled",
			.value = json_is_true(e) ? "true" : "false"};
	}
	if (!n)
		api_reply_error(r, 400, NULL, "nothing to change: expected \"weight\" or \"enabled\"");
	return n ? n : -1;
}

/* The JSON field a configuration error is about: the key of [uplink NAME] it names. */
static const char *error_field(const struct conf_errors *errs, size_t i)
{
	const char *key = errs->at ? errs->at[i].key : NULL;

	return key && (streq(key, "weight") || streq(key, "enabled")) ? key : NULL;
}

static void uplink_patch_cb(struct api_req *r, void *arg)
{
	struct daemon *d = arg;
	struct uplink *u = uplink_of(r, d);
	struct conf_errors errs = {0};
	struct conf_setting v[2];
	const struct conf_section *s;
	char weight_buf[16], name[128];
	json_t *body;
	uint32_t confirm_ms;
	int n, e;

	if (!u)
		return;
	body = api_req_json(r);
	if (!body)
		return;
	snprintf(name, sizeof(name), "%s", u->name); /* u may go in a reload */
	n = settings_of(r, body, name, v, weight_buf);
	if (n < 0 || !confirm_of(r, &confirm_ms))
		return;
	s = conf_find(d->conf, "uplink", name);
	if (s && s->origin) {
		api_reply_error(r, 409, v[0].key,
			"uplink %s is made by [%s] of the configuration: change it there", name,
			s->origin->type->name);
		return;
	}
	e = d->env.change(d->env.change_arg, v, (size_t)n, confirm_ms, api_req_who(r), &errs);
	if (e == -EINVAL) {
		api_reply_error(r, 400, errs.n ? error_field(&errs, 0) : NULL, "%s",
			errs.n ? errs.msgs[0] : "invalid setting");
	} else if (e == -EBUSY) {
		api_reply_error(r, 409, NULL,
			"another change awaits its confirmation (POST /api/config/confirm)");
	} else if (e < 0) {
		api_reply_error(r, 500, NULL, "the change could not be applied: %s", strerror(-e));
	} else if (!(u = uplink_find(&d->uplinks, name))) {
		api_reply_error(r, 404, NULL, "no uplink called \"%s\"", name);
	} else {
		json_t *o = uplink_stats_json(d->uplink_stats, u);
		if (confirm_ms)
			json_object_set_new(o, "confirm_within_s", json_integer(confirm_ms / 1000));
		api_reply_json(r, 200, o);
	}
	conf_errors_clear(&errs);
}

const struct api_route api_uplinks_routes[] = {
	{EVHTTP_REQ_GET, "/api/uplinks", API_READ, uplinks_get_cb, false},
	{EVHTTP_REQ_GET, "/api/uplinks/{name}", API_READ, uplink_get_cb, false},
	{EVHTTP_REQ_PATCH, "/api/uplinks/{name}", API_ADMIN, uplink_patch_cb, false},
};

const size_t api_uplinks_n_routes = ARRAY_SIZE(api_uplinks_routes);
