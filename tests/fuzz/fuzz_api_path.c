/*
 * fuzz_api_path.c - libFuzzer harness for the API's request-path parser and router, and
 * the [api] listen words.
 *
 * The input, cut at its first NUL, is a request path: api_path_parse() must take it or
 * refuse it with -EINVAL; what it takes has plain segments only (non-empty, never "." or
 * "..", no '/' or NUL) that re-encode to a path parsing to the same segments, and routing it
 * through a small table gives 200, 404 or 405 consistently with matching each route by hand.
 * The same input goes to api_endpoint_parse() and addr_port_parse(); what they take has a
 * port from 1 to 65535.  No side effects: nothing is logged, no socket is opened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_conf.h"
#include "api_route.h"
#include "util.h"

#include "fuzz.h"

#define MAX_INPUT (API_PATH_MAX + 64)

static void h(struct api_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

static const struct api_route routes[] = {
	{EVHTTP_REQ_GET, "/api/uplinks", API_READ, h, false},
	{EVHTTP_REQ_GET, "/api/uplinks/{name}", API_READ, h, false},
	{EVHTTP_REQ_PATCH, "/api/uplinks/{name}", API_ADMIN, h, false},
	{EVHTTP_REQ_POST, "/api/{a}/{b}/toggle", API_ADMIN, h, false},
	{EVHTTP_REQ_GET, "/healthz", API_OPEN, h, false},
};

static void check_path(const char *s)
{
	static struct api_path p, q;
	static char enc[API_PATH_MAX * 3 + 8];
	struct api_route_table t = {NULL, routes, ARRAY_SIZE(routes), NULL, true};
	struct api_match m;
	size_t off = 0;
	bool any = false, get = false;
	int r = api_path_parse(s, &p);

	CHECK(r == 0 || r == -EINVAL);
	if (r < 0)
		return;
	CHECK(s[0] == '/');
	CHECK(p.n <= API_PATH_SEGS);
	for (size_t i = 0; i < p.n; i++) {
		const char *g = p.seg[i];

		CHECK(g[0]);
		CHECK(!strchr(g, '/'));
		CHECK(strcmp(g, ".") && strcmp(g, ".."));
		enc[off++] = '/';
		for (; *g; g++)
			off += (size_t)snprintf(enc + off, sizeof(enc) - off, "%%%02X",
				(unsigned char)*g);
	}
	if (!p.n || p.trailing_slash)
		enc[off++] = '/';
	enc[off] = '\0';
	if (off <= API_PATH_MAX) {
		CHECK(api_path_parse(enc, &q) == 0);
		CHECK(q.n == p.n && q.trailing_slash == p.trailing_slash);
		for (size_t i = 0; i < p.n; i++)
			CHECK(streq(q.seg[i], p.seg[i]));
	}
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (api_route_match(routes[i].path, &p, NULL, NULL)) {
			any = true;
			get |= routes[i].method == EVHTTP_REQ_GET;
		}
	r = api_route_find(&t, 1, EVHTTP_REQ_GET, &p, &m);
	CHECK(r == (get ? 200 : any ? 405 : 404));
	if (r == 200) {
		CHECK(m.route && m.route->method == EVHTTP_REQ_GET);
		CHECK(m.n_params <= API_ROUTE_PARAMS);
		for (size_t i = 0; i < m.n_params; i++)
			CHECK(m.params[i].value && m.params[i].value[0]);
	} else if (r == 405) {
		CHECK(m.allow[0] && !m.route);
	}
}

static void check_endpoint(const char *s)
{
	struct api_endpoint e;
	struct addr a;
	uint16_t port = 0;
	int r = api_endpoint_parse(s, &e);

	CHECK(r == 0 || r == -EINVAL);
	if (r == 0)
		CHECK(e.port >= 1);
	r = addr_port_parse(s, &a, &port);
	CHECK(r == 0 || r == -EINVAL);
	if (r == 0)
		CHECK(port >= 1 && addr_is_set(&a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > MAX_INPUT)
		return 0;
	s = malloc(size + 1);
	CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	check_path(s);
	check_endpoint(s);
	free(s);
	return 0;
}
