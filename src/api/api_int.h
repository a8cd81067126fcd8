/*
 * api_int.h - the server's own view of a request, shared by api.c and api_static.c.
 */
#ifndef EGRESS_API_INT_H
#define EGRESS_API_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "api_auth.h"
#include "api_route.h"

struct api_conn;

struct api_req {
	struct evhttp_request *req;
	struct api_conn *conn;
	enum evhttp_cmd_type method;
	char raw_path[API_PATH_MAX + 1]; /* as sent, still encoded */
	struct api_path path;
	struct api_match match;
	const char *route; /* its label in the metrics: a route's pattern, or api_metrics.h's */
	struct api_caller caller;
	char allow[96]; /* a 405's Allow header */
	bool replied;
	bool deferred; /* api_req_defer(): answered, and freed, after the handler returned */
	bool in_dispatch; /* its handler has not returned yet */
	int status;
	uint64_t start_us; /* when it came, for its duration */
	bool query_parsed;
	struct evkeyvalq query;
	char *body; /* NUL-terminated copy, made on demand */
	size_t body_len;
	json_t *json;
};

/*
 * Answer r from the dashboard's files when its path is one of them: GET or HEAD of a file
 * under web_root (NULL: where egress installs them; "/" is index, NULL: index.html), or of Debian's
 * Chart.js under /vendor/chart.js/.  Returns false, without answering, when the path is
 * not a static file's (an /api/ path, a missing file): the caller answers 404.
 */
bool api_static_serve(struct api_req *r, const char *web_root, const char *index);

#endif
