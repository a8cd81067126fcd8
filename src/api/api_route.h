/*
 * api_route.h - the API's router: request paths taken apart, route tables searched.
 *
 * Pure (no socket, no libevent loop): the server (api.c) asks it which route a request
 * goes to; unit tests and a fuzzer drive it directly.
 */
#ifndef EGRESS_API_ROUTE_H
#define EGRESS_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"

#define API_PATH_MAX 2048    /* bytes of a request path, encoded */
#define API_PATH_SEGS 32     /* segments of a request path */
#define API_ROUTE_PARAMS 8   /* {placeholders} of one route */

/*
 * A request path taken apart: "/api/uplinks/isp%201" is "api", "uplinks", "isp 1".  Each
 * segment is URI-decoded; a segment that decodes to nothing, ".", "..", or holds a '/' or a
 * NUL is refused, so a segment is always one plain name.  The root "/" has no segment.
 * The segments point into buf: parse in place, never copy one.
 */
struct api_path {
	char buf[API_PATH_MAX + 1];
	const char *seg[API_PATH_SEGS]; /* into buf */
	size_t n;
	bool trailing_slash; /* "/vendor/chart.js/" */
};

/* Take raw (the path part of the request target, still encoded) apart.  0 or -EINVAL. */
int api_path_parse(const char *raw, struct api_path *ret);

/* One route table: the daemon's or a module's. */
struct api_route_table {
	const char *module; /* NULL: the daemon's own routes */
	const struct api_route *routes;
	size_t n;
	void *arg;    /* the handlers' arg: the running module, NULL while it is stopped */
	bool running; /* a module's: is it running? (the daemon's always is) */
};

struct api_param {
	const char *name; /* the placeholder without braces, in the route's pattern: not NUL-
			     terminated; name_len bytes */
	size_t name_len;
	const char *value; /* a segment of the request's api_path */
};

/* What the router found for a request. */
struct api_match {
	const struct api_route_table *table;
	const struct api_route *route;
	struct api_param params[API_ROUTE_PARAMS];
	size_t n_params;
	char allow[96]; /* 405: the methods the path has, "GET, HEAD, POST" */
};

/* Does the pattern ("/api/uplinks/{name}") match the path?  Fills params (may be NULL). */
bool api_route_match(const char *pattern, const struct api_path *p, struct api_param *params,
	size_t *n_params);

/*
 * Find the route of method and path in tables (searched in order, first match wins):
 * 200 with *ret filled, 404 when no route has the path, 405 when some have it but not the
 * method (ret->allow lists theirs).  A GET route answers HEAD too.
 */
int api_route_find(const struct api_route_table *tables, size_t n_tables,
	enum evhttp_cmd_type method, const struct api_path *p, struct api_match *ret);

/* "GET", "POST", ...; "?" for others. */
const char *api_method_name(enum evhttp_cmd_type method);

#endif
