/*
 * test_api_route.c - unit tests for src/api/api_route.c: request paths taken apart
 * (decoding, what is refused), route patterns matched, route tables searched (first match,
 * 404, 405 with the methods the path has, GET answering HEAD), and the [api] listen words.
 * Pure: no socket, no loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api_conf.h"
#include "api_route.h"
#include "util.h"

/* Parse in place: a path's segments point into its own buffer (no copies). */
#define P(raw) parse(&p, raw)

static void parse(struct api_path *p, const char *raw)
{
	int r = api_path_parse(raw, p);

	if (r < 0)
		fail_msg("api_path_parse(\"%s\") = %d", raw, r);
}

static void test_path_segments(void **state)
{
	struct api_path p;

	(void)state;
	P("/");
	assert_int_equal(p.n, 0);
	assert_false(p.trailing_slash);
	P("/api/uplinks/isp1");
	assert_int_equal(p.n, 3);
	assert_string_equal(p.seg[0], "api");
	assert_string_equal(p.seg[1], "uplinks");
	assert_string_equal(p.seg[2], "isp1");
	assert_false(p.trailing_slash);
	P("/vendor/chart.js/");
	assert_int_equal(p.n, 2);
	assert_true(p.trailing_slash);
	/* percent-decoding, hex either case; '+' is a plus in a path */
	P("/api/uplinks/isp%201%2b2%2B3+4");
	assert_string_equal(p.seg[2], "isp 1+2+3+4");
	P("/a/%2e%2e%2e");
	assert_string_equal(p.seg[1], "...");
	P("/%C3%A9t%C3%A9");
	assert_string_equal(p.seg[0], "\xc3\xa9t\xc3\xa9");
}

static void test_path_refused(void **state)
{
	static const char *const bad[] = {
		"",		/* not absolute */
		"api/x",
		"//",		/* empty segment */
		"/api//x",
		"/..",		/* dot segments, plain or encoded */
		"/api/../x",
		"/api/.",
		"/api/%2e%2E/x",
		"/api/%2e",
		"/a%2fb",	/* an encoded '/' */
		"/a%2Fb",
		"/a%00b",	/* an encoded NUL */
		"/a%",		/* bad escapes */
		"/a%2",
		"/a%zz",
		"/a%g0",
	};
	struct api_path p;
	char big[API_PATH_MAX + 8], many[API_PATH_SEGS * 2 + 4];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (api_path_parse(bad[i], &p) != -EINVAL)
			fail_msg("\"%s\" was taken", bad[i]);
	big[0] = '/';
	memset(big + 1, 'a', sizeof(big) - 2);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(api_path_parse(big, &p), -EINVAL);
	big[API_PATH_MAX] = '\0'; /* exactly API_PATH_MAX bytes */
	assert_int_equal(api_path_parse(big, &p), 0);
	for (size_t i = 0; i < API_PATH_SEGS + 1; i++)
		memcpy(many + 2 * i, "/a", 2);
	many[2 * (API_PATH_SEGS + 1)] = '\0';
	assert_int_equal(api_path_parse(many, &p), -EINVAL);
	many[2 * API_PATH_SEGS] = '\0';
	assert_int_equal(api_path_parse(many, &p), 0);
	assert_int_equal(p.n, API_PATH_SEGS);
}

static void test_match(void **state)
{
	struct api_path p;
	struct api_param params[API_ROUTE_PARAMS];
	size_t n = 99;

	(void)state;
	P("/api/uplinks/isp%201");
	assert_true(api_route_match("/api/uplinks/{name}", &p, params, &n));
	assert_int_equal(n, 1);
	assert_int_equal(params[0].name_len, 4);
	assert_memory_equal(params[0].name, "name", 4);
	assert_string_equal(params[0].value, "isp 1");
	assert_false(api_route_match("/api/uplinks", &p, NULL, NULL));
	assert_false(api_route_match("/api/uplinks/{name}/x", &p, NULL, NULL));
	assert_false(api_route_match("/api/uplink/{name}", &p, NULL, NULL));
	assert_false(api_route_match("/api/uplinks/isp1", &p, NULL, NULL));
	assert_true(api_route_match("/{a}/{b}/{c}", &p, params, &n));
	assert_int_equal(n, 3);
	assert_string_equal(params[1].value, "uplinks");
	/* a literal matches whole segments only */
	P("/api/uplinksx");
	assert_false(api_route_match("/api/uplinks", &p, NULL, NULL));
	P("/api/uplink");
	assert_false(api_route_match("/api/uplinks", &p, NULL, NULL));
	/* a trailing slash is another path */
	P("/api/uplinks/");
	assert_false(api_route_match("/api/uplinks", &p, NULL, NULL));
	P("/");
	assert_false(api_route_match("/api", &p, NULL, NULL));
	/* "{}" is a literal, not a placeholder of no name */
	P("/a/{}");
	assert_true(api_route_match("/a/{}", &p, NULL, NULL));
	P("/a/b");
	assert_false(api_route_match("/a/{}", &p, NULL, NULL));
}

static void h_a(struct api_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

static void h_b(struct api_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

static const struct api_route daemon_routes[] = {
	{EVHTTP_REQ_GET, "/api/uplinks", API_READ, h_a, false},
	{EVHTTP_REQ_GET, "/api/uplinks/{name}", API_READ, h_a, false},
	{EVHTTP_REQ_PATCH, "/api/uplinks/{name}", API_ADMIN, h_b, false},
};

static const struct api_route module_routes[] = {
	{EVHTTP_REQ_GET, "/api/gateway", API_READ, h_a, true},
	{EVHTTP_REQ_POST, "/api/gateway/toggle", API_ADMIN, h_b, false},
	{EVHTTP_REQ_GET, "/api/uplinks", API_READ, h_b, false}, /* shadowed by the daemon's */
};

static void test_find(void **state)
{
	struct api_route_table t[] = {
		{NULL, daemon_routes, ARRAY_SIZE(daemon_routes), NULL, true},
		{"gateway", module_routes, ARRAY_SIZE(module_routes), NULL, false},
	};
	struct api_match m;
	struct api_path p;

	(void)state;
	P("/api/uplinks/isp1");
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_GET, &p, &m), 200);
	assert_ptr_equal(m.route, &daemon_routes[1]);
	assert_ptr_equal(m.table, &t[0]);
	assert_int_equal(m.n_params, 1);
	assert_string_equal(m.params[0].value, "isp1");
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_PATCH, &p, &m), 200);
	assert_ptr_equal(m.route, &daemon_routes[2]);
	/* GET answers HEAD */
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_HEAD, &p, &m), 200);
	assert_ptr_equal(m.route, &daemon_routes[1]);
	/* 405 with the methods this path has, in a fixed order */
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_DELETE, &p, &m), 405);
	assert_null(m.route);
	assert_string_equal(m.allow, "GET, HEAD, PATCH");
	/* first table wins */
	P("/api/uplinks");
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_GET, &p, &m), 200);
	assert_ptr_equal(m.route, &daemon_routes[0]);
	/* a module's route, found whatever its state (the server answers 503) */
	P("/api/gateway/toggle");
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_POST, &p, &m), 200);
	assert_ptr_equal(m.table, &t[1]);
	assert_false(m.table->running);
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_GET, &p, &m), 405);
	assert_string_equal(m.allow, "POST");
	P("/api/gateway/toggle/x");
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_POST, &p, &m), 404);
	P("/");
	assert_int_equal(api_route_find(t, 2, EVHTTP_REQ_GET, &p, &m), 404);
	assert_int_equal(api_route_find(NULL, 0, EVHTTP_REQ_GET, &p, &m), 404);
}

static void test_method_names(void **state)
{
	(void)state;
	assert_string_equal(api_method_name(EVHTTP_REQ_PATCH), "PATCH");
	assert_string_equal(api_method_name(EVHTTP_REQ_GET), "GET");
	assert_string_equal(api_method_name((enum evhttp_cmd_type)0), "?");
}

static void test_endpoints(void **state)
{
	struct api_endpoint e;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(api_endpoint_parse("127.0.0.1:8090", &e), 0);
	assert_int_equal(e.port, 8090);
	assert_string_equal(addr_str(&e.addr, buf, sizeof(buf)), "127.0.0.1");
	assert_int_equal(api_endpoint_parse("[::1]:443", &e), 0);
	assert_int_equal(e.port, 443);
	assert_string_equal(addr_str(&e.addr, buf, sizeof(buf)), "::1");
	assert_int_equal(api_endpoint_parse("8091", &e), 0);
	assert_int_equal(e.port, 8091);
	assert_false(addr_is_set(&e.addr));
	static const char *const bad[] = {"0", "65536", "127.0.0.1", "127.0.0.1:", ":80",
		"127.0.0.1:0", "[::1]", "[::1:80", "host:80", "127.0.0.1:80x", "80x", "-80",
		"127.0.0.1:+80", "[]:80"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (api_endpoint_parse(bad[i], &e) != -EINVAL)
			fail_msg("\"%s\" was taken", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_segments),
		cmocka_unit_test(test_path_refused),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_method_names),
		cmocka_unit_test(test_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
