/*
 * test_devices_api.c - the devices module's API routes (src/devices/devices_api.c) served by
 * the real API server, with the module (devices_int.h) replaced by this file's fake.
 *
 * Checks what the routes own: both spellings of each path (the dual-stack gateway's and
 * /api/devices...), literal paths before /api/devices/{mac}, queries and bodies parsed
 * with errors naming the field, bad input never reaching the module, the module's errors
 * as HTTP codes, diagnose's start-then-poll, and 503 while the module is stopped.
 *
 * The server listens on a UNIX socket in a temporary folder only (the caller is an admin
 * there), on the test's own loop; every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "api.h"
#include "api_conf.h"
#include "api_server.h"
#include "conf.h"
#include "dev_conf.h"
#include "dev_store.h"
#include "devices_int.h"
#include "metrics.h"
#include "util.h"

/* ---------------------------------------------------------------- the fake module */

struct devices {
	int calls; /* of the changing functions */
	const char *last;
	bool has_mac, has_lan4;
	uint8_t mac[6];
	struct addr lan4;
	uint16_t outer, inner;
	devices_diag_cb done;
	void *done_arg;
	bool diag_sync;
};

static struct devices g_dev;
static const uint8_t KNOWN[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};

json_t *devices_list_json(struct devices *d, const char *status)
{
	return json_pack("{s:[], s:i, s:s?}", "devices", "count", 0, "status_seen", status);
}

json_t *devices_one_json(struct devices *d, const uint8_t mac[6])
{
	return memcmp(mac, KNOWN, 6) ? NULL : json_pack("{s:s}", "mac_address", "known");
}

json_t *devices_status_json(struct devices *d)
{
	return json_pack("{s:b}", "fake_status", true);
}

json_t *devices_forwards_json(struct devices *d, const uint8_t *mac)
{
	return json_pack("{s:[], s:b}", "forwards", "for_one", mac != NULL);
}

/* Record a change; outer 2000 is taken, a LAN address other than .100 unknown. */
static int record(struct devices *d, const char *what, const uint8_t *mac,
	const struct addr *lan4, uint16_t outer, uint16_t inner, char *err, size_t errlen,
	const char **field)
{
	d->calls++;
	d->last = what;
	d->has_mac = mac != NULL;
	if (mac)
		memcpy(d->mac, mac, 6);
	d->has_lan4 = lan4 != NULL;
	if (lan4)
		d->lan4 = *lan4;
	d->outer = outer;
	d->inner = inner;
	if (lan4 && ntohl(lan4->v4.s_addr) != 0xc0a80164) {
		snprintf(err, errlen, "no device has the LAN address");
		*field = "device_ip";
		return -ENOENT;
	}
	if (outer == 2000) {
		snprintf(err, errlen, "port 2000 is taken on that device");
		*field = "gateway_port";
		return -EADDRINUSE;
	}
	return 0;
}

int devices_forward_add(struct devices *d, const uint8_t *mac, const struct addr *lan4,
	uint16_t outer, uint16_t inner, char *err, size_t errlen, const char **field)
{
	return record(d, "add", mac, lan4, outer, inner, err, errlen, field);
}

int devices_forward_remove(struct devices *d, const uint8_t *mac, const struct addr *lan4,
	uint16_t outer, uint16_t inner, char *err, size_t errlen, const char **field)
{
	return record(d, "remove", mac, lan4, outer, inner, err, errlen, field);
}

int devices_forward_quick(struct devices *d, const struct addr *lan4, char *err, size_t errlen,
	const char **field)
{
	return record(d, "quick", NULL, lan4, 0, 0, err, errlen, field);
}

int devices_diagnose(struct devices *d, bool fix, devices_diag_cb done, void *arg)
{
	if (d->done)
		return -EBUSY;
	d->calls++;
	d->last = fix ? "diagnose fix" : "diagnose";
	if (d->diag_sync) {
		done(json_pack("{s:b, s:[], s:i}", "ok", true, "checks", "fixed", 0), arg);
		return 0;
	}
	d->done = done;
	d->done_arg = arg;
	return 0;
}

/* ---------------------------------------------------------------- the server */

struct t {
	char dir[64];
	char sock[100];
	struct event_base *base;
	struct conf *conf;
	struct metrics *metrics;
	struct api *api;
};

static void set_running(struct t *t, bool running)
{
	struct api_route_table tables[] = {
		{"devices", devices_api_routes, DEVICES_API_N_ROUTES, running ? &g_dev : NULL,
			running},
	};

	api_set_routes(t->api, tables, ARRAY_SIZE(tables));
}

static int setup(void **state)
{
	struct t *t = xcalloc(1, sizeof(*t));
	struct conf_errors errs = {0};
	struct group *g = getgrgid(getgid());
	char text[1024];
	int r;

	signal(SIGPIPE, SIG_IGN);
	memset(&g_dev, 0, sizeof(g_dev));
	snprintf(t->dir, sizeof(t->dir), "/tmp/egress-test-devapi.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->sock, sizeof(t->sock), "%s/api.sock", t->dir);
	snprintf(text, sizeof(text),
		"[api]\nlisten = none\nsocket = %s\nsocket_group = %s\nstate_dir = %s/state\n",
		t->sock, g ? g->gr_name : "root", t->dir);
	/* the API's section alone: the daemon's table of types would bring every module */
	t->conf = conf_new((const struct conf_section_type *const[]){&conf_api_type}, 1);
	r = conf_load_string(t->conf, "test.conf", text, &errs);
	if (r == 0)
		r = conf_validate(t->conf, &errs);
	if (r < 0) {
		conf_errors_print(&errs, stderr);
		fail();
	}
	t->base = event_base_new();
	t->metrics = metrics_new();
	assert_int_equal(
		api_new(&(struct api_env){.base = t->base, .metrics = t->metrics}, t->conf, &t->api),
		0);
	set_running(t, true);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	char path[160];

	api_free(t->api);
	metrics_free(t->metrics);
	event_base_free(t->base);
	conf_free(t->conf);
	snprintf(path, sizeof(path), "%s/state/password_hash", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state", t->dir);
	rmdir(path);
	rmdir(t->dir);
	free(t);
	return 0;
}

struct resp {
	int status;
	json_t *json;
};

/* One request on its own connection; the reply's status and JSON body. */
static void request(struct t *t, const char *method, const char *path, const char *body,
	struct resp *ret)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char head[1024], *out = xcalloc(1, 65536), *sep;
	size_t len = 0;
	uint64_t end = now_ms() + 5000;

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	snprintf(head, sizeof(head),
		"%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
		method, path, body ? strlen(body) : 0, body ? body : "");
	assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
	while (now_ms() < end) {
		ssize_t n;

		event_base_loop(t->base, EVLOOP_NONBLOCK);
		poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 10);
		n = recv(fd, out + len, 65535 - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
	}
	close(fd);
	sep = strstr(out, "\r\n\r\n");
	assert_non_null(sep);
	assert_int_equal(sscanf(out, "HTTP/1.1 %d", &ret->status), 1);
	ret->json = json_loads(sep + 4, 0, NULL);
	free(out);
}

/* status and, for an error, the field it names (NULL: none). */
static void expect(struct t *t, const char *method, const char *path, const char *body,
	int status, const char *field)
{
	struct resp r;

	request(t, method, path, body, &r);
	if (r.status != status)
		fail_msg("%s %s %s: %d, expected %d", method, path, body ? body : "", r.status,
			status);
	if (status >= 400) {
		json_t *f = json_object_get(r.json, "field");
		assert_non_null(json_object_get(r.json, "error"));
		if (field)
			assert_string_equal(json_string_value(f), field);
		else
			assert_null(f);
	}
	json_decref(r.json);
}

/* ---------------------------------------------------------------- tests */

static void test_reads(void **state)
{
	struct t *t = *state;
	struct resp r;

	for (int i = 0; i < 2; i++) {
		const char *p = i ? "/api/devices" : "";
		char path[128];

		snprintf(path, sizeof(path), "%s/health", i ? p : "");
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_string_equal(json_string_value(json_object_get(r.json, "status")), "healthy");
		json_decref(r.json);
		snprintf(path, sizeof(path), "%s/status", i ? p : "");
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200); /* the status, not a device named "status" */
		assert_true(json_is_true(json_object_get(r.json, "fake_status")));
		json_decref(r.json);

		snprintf(path, sizeof(path), "%s?status=active", i ? p : "/devices");
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_string_equal(json_string_value(json_object_get(r.json, "status_seen")),
			"active");
		json_decref(r.json);
		snprintf(path, sizeof(path), "%s", i ? p : "/devices");
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_false(json_is_string(json_object_get(r.json, "status_seen"))); /* all */
		json_decref(r.json);
		snprintf(path, sizeof(path), "%s?status=online", i ? p : "/devices");
		expect(t, "GET", path, NULL, 400, "status");

		snprintf(path, sizeof(path), "%s/02:00:5E:10:00:01", i ? p : "/devices");
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_string_equal(json_string_value(json_object_get(r.json, "mac_address")), "known");
		json_decref(r.json);
		snprintf(path, sizeof(path), "%s/02:00:5e:10:00:02", i ? p : "/devices");
		expect(t, "GET", path, NULL, 404, "mac");
		snprintf(path, sizeof(path), "%s/not-a-mac", i ? p : "/devices");
		expect(t, "GET", path, NULL, 400, "mac");

		snprintf(path, sizeof(path), "%s/port-forwards", p);
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_false(json_is_true(json_object_get(r.json, "for_one")));
		json_decref(r.json);
		snprintf(path, sizeof(path), "%s/port-forwards?device=02:00:5e:10:00:01", p);
		request(t, "GET", path, NULL, &r);
		assert_int_equal(r.status, 200);
		assert_true(json_is_true(json_object_get(r.json, "for_one")));
		json_decref(r.json);
		snprintf(path, sizeof(path), "%s/port-forwards?device=192.168.1.100", p);
		expect(t, "GET", path, NULL, 400, "device");
	}
	assert_int_equal(g_dev.calls, 0);
}

static void test_forward_add(void **state)
{
	struct t *t = *state;
	static const struct {
		const char *body;
		const char *field;
	} bad[] = {
		{"{\"device_port\": 80, \"device_ip\": \"192.168.1.100\"}", "gateway_port"},
		{"{\"gateway_port\": 0, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}",
			"gateway_port"},
		{"{\"gateway_port\": 65536, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}",
			"gateway_port"},
		{"{\"gateway_port\": \"http\", \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}",
			"gateway_port"},
		{"{\"gateway_port\": 8080.5, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}",
			"gateway_port"},
		{"{\"gateway_port\": 8080, \"device_ip\": \"192.168.1.100\"}", "device_port"},
		{"{\"gateway_port\": 8080, \"device_port\": -1, \"device_ip\": \"192.168.1.100\"}",
			"device_port"},
		{"{\"gateway_port\": 8080, \"device_port\": 80}", "device"},
		{"{\"gateway_port\": 8080, \"device_port\": 80, \"device\": \"02:00:5e:10:00:01\", "
		 "\"device_ip\": \"192.168.1.100\"}", "device_ip"},
		{"{\"gateway_port\": 8080, \"device_port\": 80, \"device\": \"192.168.1.100\"}",
			"device"},
		{"{\"gateway_port\": 8080, \"device_port\": 80, \"device\": 7}", "device"},
		{"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"2001:db8::1\"}",
			"device_ip"},
		{"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"192.168.1.300\"}",
			"device_ip"},
		{"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"192.168.1.100\", "
		 "\"protocol\": \"udp\"}", "protocol"},
		{"[8080, 80]", NULL},
		{"", NULL},
	};

	for (int i = 0; i < 2; i++) {
		const char *path = i ? "/api/devices/port-forwards" : "/port-forwards";
		struct resp r;

		for (size_t k = 0; k < ARRAY_SIZE(bad); k++)
			expect(t, "POST", path, bad[k].body, 400, bad[k].field);
		assert_int_equal(g_dev.calls, 0); /* bad input changes nothing */

		request(t, "POST", path,
			"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}",
			&r);
		assert_int_equal(r.status, 201);
		assert_true(json_is_true(json_object_get(r.json, "success")));
		assert_int_equal(json_integer_value(json_object_get(r.json, "gateway_port")), 8080);
		json_decref(r.json);
		assert_string_equal(g_dev.last, "add");
		assert_true(g_dev.has_lan4 && !g_dev.has_mac);
		assert_int_equal(g_dev.outer, 8080);
		assert_int_equal(g_dev.inner, 80);

		/* by MAC, ports as strings (as a shell script sends them) */
		request(t, "POST", path,
			"{\"gateway_port\": \"2323\", \"device_port\": \"23\", "
			"\"device\": \"02:00:5e:10:00:01\"}",
			&r);
		assert_int_equal(r.status, 201);
		json_decref(r.json);
		assert_true(g_dev.has_mac && !g_dev.has_lan4);
		assert_memory_equal(g_dev.mac, KNOWN, 6);
		assert_int_equal(g_dev.outer, 2323);
		assert_int_equal(g_dev.inner, 23);

		/* the module's refusals, with its field */
		expect(t, "POST", path,
			"{\"gateway_port\": 2000, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}",
			409, "gateway_port");
		expect(t, "POST", path,
			"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"192.168.1.101\"}",
			404, "device_ip");
		g_dev.calls = 0;
	}
	/* only an admin's: a GET is not an add */
	expect(t, "PUT", "/port-forwards", "{}", 405, NULL);
}

static void test_forward_remove_quick(void **state)
{
	struct t *t = *state;
	struct resp r;

	/* a body, or the query */
	request(t, "DELETE", "/port-forwards",
		"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}", &r);
	assert_int_equal(r.status, 200);
	json_decref(r.json);
	assert_string_equal(g_dev.last, "remove");
	assert_int_equal(g_dev.outer, 8080);
	assert_int_equal(g_dev.inner, 80);
	request(t, "DELETE",
		"/api/devices/port-forwards?gateway_port=2323&device=02:00:5e:10:00:01", NULL, &r);
	assert_int_equal(r.status, 200);
	json_decref(r.json);
	assert_int_equal(g_dev.outer, 2323);
	assert_int_equal(g_dev.inner, 0); /* whatever its device port */
	assert_true(g_dev.has_mac);
	g_dev.calls = 0;
	expect(t, "DELETE", "/port-forwards?gateway_port=99999&device_ip=192.168.1.100", NULL, 400,
		"gateway_port");
	expect(t, "DELETE", "/port-forwards?gateway_port=8080", NULL, 400, "device");
	expect(t, "DELETE", "/port-forwards", "{\"gateway_port\": 8080, \"device\": \"x\"}", 400,
		"device");
	assert_int_equal(g_dev.calls, 0);
	expect(t, "DELETE", "/port-forwards?gateway_port=8080&device_ip=192.168.1.7", NULL, 404,
		"device_ip");

	g_dev.calls = 0;
	expect(t, "POST", "/port-forwards/quick-device", "{\"device_ip\": \"192.168.1\"}", 400,
		"device_ip");
	expect(t, "POST", "/port-forwards/quick-device", "{\"device\": \"02:00:5e:10:00:01\"}", 400,
		"device");
	expect(t, "POST", "/api/devices/port-forwards/quick-device", "{}", 400, "device_ip");
	assert_int_equal(g_dev.calls, 0);
	request(t, "POST", "/api/devices/port-forwards/quick-device",
		"{\"device_ip\": \"192.168.1.100\"}", &r);
	assert_int_equal(r.status, 200);
	json_decref(r.json);
	assert_string_equal(g_dev.last, "quick");
	assert_true(g_dev.has_lan4);
}

static void test_diagnose(void **state)
{
	struct t *t = *state;
	struct resp r;

	request(t, "GET", "/api/devices/diagnose", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_false(json_is_true(json_object_get(r.json, "running")));
	assert_null(json_object_get(r.json, "checks")); /* none ran */
	json_decref(r.json);

	expect(t, "POST", "/diagnose?fix=maybe", NULL, 400, "fix");
	assert_int_equal(g_dev.calls, 0);
	request(t, "POST", "/diagnose?fix=1", NULL, &r);
	assert_int_equal(r.status, 202);
	assert_true(json_is_true(json_object_get(r.json, "running")));
	assert_true(json_is_true(json_object_get(r.json, "fix")));
	assert_null(json_object_get(r.json, "checks"));
	json_decref(r.json);
	assert_string_equal(g_dev.last, "diagnose fix");
	expect(t, "POST", "/api/devices/diagnose", NULL, 409, NULL);

	g_dev.done(json_pack("{s:b, s:[{s:s}], s:i}", "ok", false, "checks", "check", "macvlan",
			   "fixed", 1),
		g_dev.done_arg);
	g_dev.done = NULL;
	request(t, "GET", "/diagnose", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_false(json_is_true(json_object_get(r.json, "running")));
	assert_int_equal(json_integer_value(json_object_get(r.json, "fixed")), 1);
	assert_int_equal(json_array_size(json_object_get(r.json, "checks")), 1);
	assert_true(json_is_true(json_object_get(r.json, "fix")));
	assert_true(json_is_string(json_object_get(r.json, "finished_at")));
	json_decref(r.json);

	/* a module that has the answer at once: it comes with the POST */
	g_dev.diag_sync = true;
	request(t, "POST", "/api/devices/diagnose", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_false(json_is_true(json_object_get(r.json, "fix")));
	assert_true(json_is_true(json_object_get(r.json, "ok")));
	json_decref(r.json);
}

static void test_stopped(void **state)
{
	struct t *t = *state;

	set_running(t, false);
	expect(t, "GET", "/devices", NULL, 503, NULL);
	expect(t, "GET", "/api/devices/health", NULL, 503, NULL);
	expect(t, "POST", "/port-forwards",
		"{\"gateway_port\": 8080, \"device_port\": 80, \"device_ip\": \"192.168.1.100\"}", 503,
		NULL);
	assert_int_equal(g_dev.calls, 0);
	set_running(t, true);
	expect(t, "GET", "/devices", NULL, 200, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_remove_quick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_diagnose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
