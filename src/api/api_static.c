/*
 * api_static.c - the dashboard's files: web/ at /, Debian's Chart.js at /vendor/chart.js/.
 *
 * Paths come taken apart by api_route.c, whose segments are never "", "." or ".." and
 * never hold a '/'; here a segment starting with '.' is refused too (no hidden files), so a
 * request names a file under one of the two folders and nothing else.  Files are sent as
 * they are (sendfile where the connection allows), GET and HEAD only.
 *
 * Must not serve anything outside the two folders; must not block for long (local files).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "api_int.h"
#include "log.h"
#include "util.h"

#ifndef EGRESS_WEBDIR
#define EGRESS_WEBDIR "/usr/local/share/egress/web"
#endif
/* Where Debian's libjs-chart.js installs Chart.js: a package dependency, never a copy. */
#define CHARTJS_DIR "/usr/share/javascript/chart.js"
/* No file of the dashboard is near this; a bigger one is not ours to send. */
#define STATIC_MAX (32 * 1024 * 1024)

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{".html", "text/html; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".json", "application/json"},
	{".map", "application/json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".woff2", "font/woff2"},
	{".txt", "text/plain; charset=utf-8"},
};

static const char *content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < ARRAY_SIZE(types); i++)
		if (streq(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* The file a path names, into buf: 0, or -ENOENT when it names none of ours. */
static int static_path(const struct api_path *p, const char *web_root, const char *index,
	char *buf, size_t len, bool *vendor)
{
	const char *root = web_root ? web_root : EGRESS_WEBDIR;
	size_t first = 0, off;

	*vendor = false;
	if (p->n == 0) {
		snprintf(buf, len, "%s/%s", root, index ? index : "index.html");
		return 0;
	}
	if (streq(p->seg[0], "api") || p->trailing_slash)
		return -ENOENT;
	if (p->n >= 3 && streq(p->seg[0], "vendor") && streq(p->seg[1], "chart.js")) {
		root = CHARTJS_DIR;
		first = 2;
		*vendor = true;
	}
	off = (size_t)snprintf(buf, len, "%s", root);
	for (size_t i = first; i < p->n; i++) {
		if (p->seg[i][0] == '.')
			return -ENOENT;
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "/%s", p->seg[i]);
	}
	return off < len ? 0 : -ENOENT;
}

bool api_static_serve(struct api_req *r, const char *web_root, const char *index)
{
	char path[PATH_MAX], clen[24];
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *buf;
	struct stat st;
	bool vendor;
	int fd;

	if (static_path(&r->path, web_root, index, path, sizeof(path), &vendor) < 0)
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX) {
		close(fd);
		return false;
	}
	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
		close(fd);
		snprintf(r->allow, sizeof(r->allow), "GET, HEAD");
		api_reply_error(r, 405, NULL, "%s is not allowed here (allowed: GET, HEAD)",
			api_method_name(r->method));
		return true;
	}
	buf = evbuffer_new();
	if (!buf)
		fatalx("api: out of memory for a file");
	evhttp_add_header(h, "Content-Type", content_type(path));
	snprintf(clen, sizeof(clen), "%lld", (long long)st.st_size);
	evhttp_add_header(h, "Content-Length", clen);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Cache-Control", vendor ? "max-age=86400" : "no-cache");
	if (!vendor) {
		evhttp_add_header(h, "X-Frame-Options", "DENY");
		evhttp_add_header(h, "Content-Security-Policy", "frame-ancestors 'none'");
	}
	if (r->method == EVHTTP_REQ_HEAD || st.st_size == 0)
		close(fd);
	else if (evbuffer_add_file(buf, fd, 0, st.st_size) < 0) /* owns fd from here */
		fatalx("api: cannot queue %s", path);
	r->replied = true;
	r->status = 200;
	evhttp_send_reply(r->req, 200, "OK", buf);
	evbuffer_free(buf);
	return true;
}
