/*
 * devices_api.c - the devices module on egressd's REST API.
 *
 * Two spellings of each route: the dual-stack gateway's (GET /health, /status, /devices,
 * /devices?status=active, its port forwards and diagnose), so that what its users scripted
 * against :5050 keeps working with `[api] listen` on that port, and ours under /api/devices.
 * Both are authenticated like the rest of the API: /health is open (a monitor's check), the
 * rest needs a reader, changes an admin.
 *
 * The handlers check the request and answer; what they read and change is the module's
 * (devices_int.h).  This file must not touch the kernel or the store itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cidr.h"
#include "dev_conf.h"
#include "dev_store.h"
#include "devices_int.h"
#include "util.h"

/* The statuses, for "expected one of ..." (filled once). */
static const char *status_names(void)
{
	static char buf[128];

	if (!buf[0]) {
		size_t off = 0;
		for (int i = 0; i < _DEV_STATUS_MAX && off < sizeof(buf); i++)
			off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? ", " : "",
				dev_status_name[i]);
	}
	return buf;
}

/* The reference's health check: the module answers. */
static void health_cb(struct api_req *r, void *arg)
{
	api_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "healthy", "module", "devices"));
}

static void status_cb(struct api_req *r, void *arg)
{
	api_reply_json(r, 200, devices_status_json(arg));
}

/* GET /devices[?status=active] */
static void list_cb(struct api_req *r, void *arg)
{
	const char *status = api_req_query(r, "status");

	if (status && !*status)
		status = NULL;
	if (status && dev_status_from_name(status) < 0) {
		api_reply_error(r, 400, "status", "expected one of %s, got \"%s\"", status_names(),
			status);
		return;
	}
	api_reply_json(r, 200, devices_list_json(arg, status));
}

static bool mac_param(struct api_req *r, const char *s, const char *field, uint8_t mac[6])
{
	if (!s || dev_mac_parse(s, mac) < 0) {
		api_reply_error(r, 400, field, "expected a MAC address (aa:bb:cc:dd:ee:ff), got \"%s\"",
			s ? s : "");
		return false;
	}
	return true;
}

/* GET /devices/{mac} */
static void one_cb(struct api_req *r, void *arg)
{
	const char *s = api_req_param(r, "mac");
	uint8_t mac[6];
	json_t *o;

	if (!mac_param(r, s, "mac", mac))
		return;
	o = devices_one_json(arg, mac);
	if (!o) {
		api_reply_error(r, 404, "mac", "no device %s", s);
		return;
	}
	api_reply_json(r, 200, o);
}

/* GET /port-forwards[?device=MAC] */
static void forwards_cb(struct api_req *r, void *arg)
{
	const char *s = api_req_query(r, "device");
	uint8_t mac[6];

	if (s && *s && !mac_param(r, s, "device", mac))
		return;
	api_reply_json(r, 200, devices_forwards_json(arg, s && *s ? mac : NULL));
}

/* A forward as a request gives it: in the body, or (DELETE) in the query. */
struct fwd_req {
	uint16_t outer, inner;
	bool has_mac;
	uint8_t mac[6];
	struct addr lan4;
	char device[32]; /* as given, for the reply */
};

/* A port from a JSON value (a number, or a string of digits as a shell script sends). */
static bool port_value(struct api_req *r, json_t *v, const char *field, uint16_t *ret)
{
	long long p = -1;
	char buf[32];

	if (json_is_integer(v)) {
		p = json_integer_value(v);
	} else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 5 &&
		   strspn(json_string_value(v), "0123456789") == json_string_length(v)) {
		p = strtoll(json_string_value(v), NULL, 10);
	}
	if (p < 1 || p > 65535) {
		if (!v)
			snprintf(buf, sizeof(buf), "nothing");
		else if (json_is_string(v))
			snprintf(buf, sizeof(buf), "\"%.20s\"", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		else
			snprintf(buf, sizeof(buf), "a JSON %s",
				json_is_object(v) ? "object" : json_is_array(v) ? "array"
					: json_is_boolean(v) ? "boolean" : json_is_null(v) ? "null"
					: "number");
		api_reply_error(r, 400, field, "expected a TCP port 1-65535, got %s", buf);
		return false;
	}
	*ret = (uint16_t)p;
	return true;
}

/* gateway_port, device_port (optional unless need_inner: 0) and the device: "device" (MAC)
 * or "device_ip" (LAN IPv4), exactly one.  false: answered. */
static bool fwd_req_parse(struct api_req *r, json_t *o, bool need_inner, struct fwd_req *ret)
{
	json_t *dev = json_object_get(o, "device"), *ip = json_object_get(o, "device_ip");

	memset(ret, 0, sizeof(*ret));
	if (!port_value(r, json_object_get(o, "gateway_port"), "gateway_port", &ret->outer))
		return false;
	if ((need_inner || json_object_get(o, "device_port")) &&
		!port_value(r, json_object_get(o, "device_port"), "device_port", &ret->inner))
		return false;
	if (dev && ip) {
		api_reply_error(r, 400, "device_ip",
			"give the device by its MAC (device) or its LAN address (device_ip), not both");
		return false;
	}
	if (dev) {
		if (!json_is_string(dev) ||
			!mac_param(r, json_string_value(dev), "device", ret->mac)) {
			if (!json_is_string(dev))
				api_reply_error(r, 400, "device",
					"expected a MAC address (aa:bb:cc:dd:ee:ff) as a string");
			return false;
		}
		ret->has_mac = true;
		snprintf(ret->device, sizeof(ret->device), "%s", json_string_value(dev));
		return true;
	}
	if (ip) {
		if (!json_is_string(ip) ||
			addr_parse_family(json_string_value(ip), AF_INET, &ret->lan4) < 0) {
			api_reply_error(r, 400, "device_ip",
				"expected the device's LAN IPv4 address (192.168.1.100)%s%.40s%s",
				json_is_string(ip) ? ", got \"" : "",
				json_is_string(ip) ? json_string_value(ip) : "",
				json_is_string(ip) ? "\"" : "");
			return false;
		}
		snprintf(ret->device, sizeof(ret->device), "%s", json_string_value(ip));
		return true;
	}
	api_reply_error(r, 400, "device",
		"expected the device: its MAC (device) or its LAN IPv4 address (device_ip)");
	return false;
}

/* The errors of devices_int.h's changes as HTTP. */
static void change_error(struct api_req *r, int e, const char *err, const char *field)
{
	int code = e == -ENOENT ? 404 : e == -EEXIST || e == -EADDRINUSE ? 409 :
		e == -EINVAL ? 400 : 500;

	api_reply_error(r, code, field, "%s", *err ? err : strerror(-e));
}

static json_t *fwd_reply(const struct fwd_req *f, const char *message)
{
	json_t *o = json_pack("{s:b, s:s, s:i}", "success", true, "message", message,
		"gateway_port", (int)f->outer);

	if (f->inner)
		json_object_set_new(o, "device_port", json_integer(f->inner));

	json_object_set_new(o, f->has_mac ? "device" : "device_ip", json_string(f->device));
	return o;
}

/* POST /port-forwards {"gateway_port", "device_port", "device" or "device_ip"} */
static void forward_add_cb(struct api_req *r, void *arg)
{
	static const char *const fields[] = {"gateway_port", "device_port", "device", "device_ip",
		NULL};
	json_t *body = api_req_json(r);
	struct fwd_req f;
	const char *field = NULL;
	char err[256] = "";
	int e;

	if (!body || !api_json_only(r, body, fields) || !fwd_req_parse(r, body, true, &f))
		return;
	e = devices_forward_add(arg, f.has_mac ? f.mac : NULL, f.has_mac ? NULL : &f.lan4,
		f.outer, f.inner, err, sizeof(err), &field);
	if (e < 0) {
		change_error(r, e, err, field);
		return;
	}
	api_reply_json(r, 201, fwd_reply(&f, "port forward added"));
}

/* DELETE /port-forwards: the same fields in the body, or in the query string; without
 * device_port, the device's forward of gateway_port whatever its device port. */
static void forward_remove_cb(struct api_req *r, void *arg)
{
	static const char *const fields[] = {"gateway_port", "device_port", "device", "device_ip",
		NULL};
	size_t len = 0;
	json_t *body;
	struct fwd_req f;
	const char *field = NULL;
	char err[256] = "";
	bool ok;
	int e;

	api_req_body(r, &len);
	if (len) {
		body = api_req_json(r);
		if (!body || !api_json_only(r, body, fields))
			return;
		ok = fwd_req_parse(r, body, false, &f);
	} else {
		/* ?gateway_port=8080&device_port=80&device_ip=192.168.1.100 */
		body = json_object();
		for (size_t i = 0; fields[i]; i++) {
			const char *v = api_req_query(r, fields[i]);
			if (v)
				json_object_set_new(body, fields[i], json_string(v));
		}
		ok = fwd_req_parse(r, body, false, &f);
		json_decref(body);
	}
	if (!ok)
		return;
	e = devices_forward_remove(arg, f.has_mac ? f.mac : NULL, f.has_mac ? NULL : &f.lan4,
		f.outer, f.inner, err, sizeof(err), &field);
	if (e < 0) {
		change_error(r, e, err, field);
		return;
	}
	api_reply_json(r, 200, fwd_reply(&f, "port forward removed"));
}

/* POST /port-forwards/quick-device {"device_ip"}: the reference's usual set. */
static void forward_quick_cb(struct api_req *r, void *arg)
{
	static const char *const fields[] = {"device_ip", NULL};
	json_t *body = api_req_json(r), *ip;
	struct addr lan4;
	const char *field = NULL;
	char err[256] = "";
	int e;

	if (!body || !api_json_only(r, body, fields))
		return;
	ip = json_object_get(body, "device_ip");
	if (!json_is_string(ip) || addr_parse_family(json_string_value(ip), AF_INET, &lan4) < 0) {
		api_reply_error(r, 400, "device_ip",
			"expected the device's LAN IPv4 address (192.168.1.100)");
		return;
	}
	e = devices_forward_quick(arg, &lan4, err, sizeof(err), &field);
	if (e < 0) {
		change_error(r, e, err, field);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:b, s:s, s:s}", "success", true, "message",
				       "port forwards added", "device_ip", json_string_value(ip)));
}

/*
 * Diagnose takes a moment (probes through each device's identity) and an API handler
 * answers before it returns: POST starts one and answers with its result when the module
 * had it at once, else 202 {"running": true}; GET /diagnose shows the one running or the
 * last one's result (a client polls it until "running" is false).  One
 * module runs at a time, so one such record is enough; it follows the running module.
 */
static struct {
	struct devices *d;
	bool running, fix;
	int64_t started, finished; /* unix ms */
	json_t *result;
} diag;

static void diag_done_cb(json_t *res, void *arg)
{
	if (arg != diag.d) { /* a module stopped since */
		json_decref(res);
		return;
	}
	json_decref(diag.result);
	diag.result = res;
	diag.running = false;
	diag.finished = clock_wall_ms();
}

/* The last result's own fields ({"ok", "checks", "fixed"}) once it is in, with "running",
 * "fix", "started_at" and "finished_at" beside them. */
static json_t *diag_json(void)
{
	char t[TIME_ISO_STRLEN];
	json_t *o = !diag.running && diag.result ? json_deep_copy(diag.result) : json_object();

	json_object_set_new(o, "running", json_boolean(diag.running));
	json_object_set_new(o, "fix", json_boolean(diag.fix));
	json_object_set_new(o, "started_at",
		diag.started ? json_string(time_iso(diag.started, t, sizeof(t))) : json_null());
	json_object_set_new(o, "finished_at",
		!diag.running && diag.finished ? json_string(time_iso(diag.finished, t, sizeof(t)))
					       : json_null());
	return o;
}

/* POST /diagnose[?fix=1] */
static void diagnose_post_cb(struct api_req *r, void *arg)
{
	const char *fix = api_req_query(r, "fix");
	bool want_fix;
	int e;

	if (fix && !streq(fix, "1") && !streq(fix, "0") && !streq(fix, "true") &&
		!streq(fix, "false")) {
		api_reply_error(r, 400, "fix", "expected 1 or 0, got \"%s\"", fix);
		return;
	}
	want_fix = fix && (streq(fix, "1") || streq(fix, "true"));
	if (diag.d != arg) {
		json_decref(diag.result);
		memset(&diag, 0, sizeof(diag));
		diag.d = arg;
	}
	/* the module knows whether one runs (this record may have missed an end) */
	bool was_running = diag.running;
	bool was_fix = diag.fix;
	int64_t was_started = diag.started;

	diag.running = true;
	diag.fix = want_fix;
	diag.started = clock_wall_ms();
	e = devices_diagnose(arg, want_fix, diag_done_cb, arg);
	if (e < 0) {
		diag.running = was_running;
		diag.fix = was_fix;
		diag.started = was_started;
		if (e == -EBUSY)
			api_reply_error(r, 409, NULL,
				"a diagnose runs already (GET /api/devices/diagnose)");
		else
			api_reply_error(r, 500, NULL, "diagnose: %s", strerror(-e));
		return;
	}
	api_reply_json(r, diag.running ? 202 : 200, diag_json());
}

/* GET /diagnose: the one running, or the last one's result. */
static void diagnose_get_cb(struct api_req *r, void *arg)
{
	if (diag.d != arg) {
		json_decref(diag.result);
		memset(&diag, 0, sizeof(diag));
		diag.d = arg;
	}
	api_reply_json(r, 200, diag_json());
}

/* Literal paths come before /api/devices/{mac}: the first route that matches wins. */
const struct api_route devices_api_routes[DEVICES_API_N_ROUTES] = {
	/* the dual-stack gateway's paths */
	{EVHTTP_REQ_GET, "/health", API_OPEN, health_cb, false},
	{EVHTTP_REQ_GET, "/status", API_READ, status_cb, false},
	{EVHTTP_REQ_GET, "/devices", API_READ, list_cb, false},
	{EVHTTP_REQ_GET, "/devices/{mac}", API_READ, one_cb, false},
	{EVHTTP_REQ_GET, "/port-forwards", API_READ, forwards_cb, false},
	{EVHTTP_REQ_POST, "/port-forwards", API_ADMIN, forward_add_cb, false},
	{EVHTTP_REQ_DELETE, "/port-forwards", API_ADMIN, forward_remove_cb, false},
	{EVHTTP_REQ_POST, "/port-forwards/quick-device", API_ADMIN, forward_quick_cb, false},
	{EVHTTP_REQ_POST, "/diagnose", API_ADMIN, diagnose_post_cb, false},
	{EVHTTP_REQ_GET, "/diagnose", API_READ, diagnose_get_cb, false},
	/* ours */
	{EVHTTP_REQ_GET, "/api/devices/health", API_OPEN, health_cb, false},
	{EVHTTP_REQ_GET, "/api/devices/status", API_READ, status_cb, false},
	{EVHTTP_REQ_GET, "/api/devices", API_READ, list_cb, false},
	{EVHTTP_REQ_GET, "/api/devices/port-forwards", API_READ, forwards_cb, false},
	{EVHTTP_REQ_POST, "/api/devices/port-forwards", API_ADMIN, forward_add_cb, false},
	{EVHTTP_REQ_DELETE, "/api/devices/port-forwards", API_ADMIN, forward_remove_cb, false},
	{EVHTTP_REQ_POST, "/api/devices/port-forwards/quick-device", API_ADMIN, forward_quick_cb,
		false},
	{EVHTTP_REQ_POST, "/api/devices/diagnose", API_ADMIN, diagnose_post_cb, false},
	{EVHTTP_REQ_GET, "/api/devices/diagnose", API_READ, diagnose_get_cb, false},
	{EVHTTP_REQ_GET, "/api/devices/{mac}", API_READ, one_cb, false},
};
const size_t devices_api_n_routes = DEVICES_API_N_ROUTES;
