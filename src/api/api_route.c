/*
 * api_route.c - request paths taken apart and matched against route tables.
 *
 * The path is outside input: it is bounded (API_PATH_MAX, API_PATH_SEGS), decoded once
 * here, and whatever does not decode to plain segments is refused, so no handler (and no
 * static file lookup) ever sees "..", an empty segment or an encoded '/'.
 * Must not allocate or log: the fuzzer and the unit tests call it directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api_route.h"
#include "util.h"

const char *const api_access_name[_API_ACCESS_MAX] = {
	[API_OPEN] = "open",
	[API_READ] = "read",
	[API_ADMIN] = "admin",
};

/* Decode one segment of [s, s + len) in place into out (which may be s): RFC 3986 2.1
 * percent-encoding; '+' stays '+' (it means a space only in a query).  -EINVAL for a bad
 * escape, a NUL or a '/' once decoded. */
static int segment_decode(const char *s, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = hex_digit((unsigned char)s[i + 1]);
			lo = hex_digit((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0' || c == '/')
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

int api_path_parse(const char *raw, struct api_path *ret)
{
	size_t len = strlen(raw);
	char *w;
	const char *s;

	ret->n = 0;
	ret->trailing_slash = false;
	if (raw[0] != '/' || len > API_PATH_MAX)
		return -EINVAL;
	w = ret->buf;
	s = raw + 1;
	while (*s) {
		const char *end = strchrnul(s, '/');
		int n;

		if (end == s)
			return -EINVAL; /* "//" */
		if (ret->n == API_PATH_SEGS)
			return -EINVAL;
		n = segment_decode(s, (size_t)(end - s), w);
		if (n <= 0 || streq(w, ".") || streq(w, ".."))
			return -EINVAL;
		ret->seg[ret->n++] = w;
		w += n + 1;
		if (!*end)
			break;
		s = end + 1;
		if (!*s)
			ret->trailing_slash = true;
	}
	return 0;
}

bool api_route_match(const char *pattern, const struct api_path *p, struct api_param *params,
	size_t *n_params)
{
	const char *s = pattern;
	size_t i = 0, np = 0;

	if (*s++ != '/' || p->trailing_slash)
		return false;
	while (*s) {
		const char *end = strchrnul(s, '/');
		size_t len = (size_t)(end - s);

		if (i == p->n)
			return false;
		if (len >= 3 && s[0] == '{' && s[len - 1] == '}') {
			if (np == API_ROUTE_PARAMS)
				return false;
			if (params)
				params[np] = (struct api_param){s + 1, len - 2, p->seg[i]};
			np++;
		} else if (strlen(p->seg[i]) != len || memcmp(p->seg[i], s, len) != 0) {
			return false;
		}
		i++;
		s = *end ? end + 1 : end;
	}
	if (i != p->n)
		return false;
	if (n_params)
		*n_params = np;
	return true;
}

static const struct {
	enum evhttp_cmd_type method;
	const char *name;
} methods[] = {
	{EVHTTP_REQ_GET, "GET"},
	{EVHTTP_REQ_HEAD, "HEAD"},
	{EVHTTP_REQ_POST, "POST"},
	{EVHTTP_REQ_PUT, "PUT"},
	{EVHTTP_REQ_PATCH, "PATCH"},
	{EVHTTP_REQ_DELETE, "DELETE"},
	{EVHTTP_REQ_OPTIONS, "OPTIONS"},
	{EVHTTP_REQ_TRACE, "TRACE"},
	{EVHTTP_REQ_CONNECT, "CONNECT"},
};

const char *api_method_name(enum evhttp_cmd_type method)
{
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (methods[i].method == method)
			return methods[i].name;
	return "?";
}

static bool answers(const struct api_route *r, enum evhttp_cmd_type method)
{
	return r->method == method || (method == EVHTTP_REQ_HEAD && r->method == EVHTTP_REQ_GET);
}

int api_route_find(const struct api_route_table *tables, size_t n_tables,
	enum evhttp_cmd_type method, const struct api_path *p, struct api_match *ret)
{
	unsigned allowed = 0; /* bits: index into methods[] */
	size_t off = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t t = 0; t < n_tables; t++)
		for (size_t i = 0; i < tables[t].n; i++) {
			const struct api_route *r = &tables[t].routes[i];

			if (!api_route_match(r->path, p, NULL, NULL))
				continue;
			if (answers(r, method) && !ret->route) {
				ret->table = &tables[t];
				ret->route = r;
				api_route_match(r->path, p, ret->params, &ret->n_params);
			}
			for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
				if (answers(r, methods[m].method))
					allowed |= 1u << m;
		}
	if (ret->route)
		return 200;
	if (!allowed)
		return 404;
	for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
		if (allowed & (1u << m))
			off += (size_t)snprintf(ret->allow + off, sizeof(ret->allow) - off, "%s%s",
				off ? ", " : "", methods[m].name);
	return 405;
}
