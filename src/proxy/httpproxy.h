/*
 * httpproxy.h - the HTTP/1.x proxy request codec (RFC 9110, RFC 9112): CONNECT and plain
 * forwarding of absolute-form "http://" requests, Basic proxy authentication, canned answers.
 *
 * Pure code: no sockets, no logging.  The parser is incremental (0 need more, >0 the head's
 * length, -errno malformed), never reads past n, does not need NUL-terminated input and
 * allocates only the rewritten head, whose size is bounded by twice HTTP_HEAD_MAX.
 */
#ifndef EGRESS_HTTPPROXY_H
#define EGRESS_HTTPPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "socks.h"

#define HTTP_HEAD_MAX 16384

struct http_request {
	bool connect; /* CONNECT host:port */
	char method[16];
	/*
	 * From the CONNECT authority or the absolute URI (default port 80).  Literal IPv4 and
	 * IPv6 ("[::1]") hosts are TARGET_ADDR, others TARGET_NAME.
	 */
	struct proxy_target target;
	size_t head_len;      /* the client's request head, blank line included */
	char proxy_auth[512]; /* value of Proxy-Authorization, "" if none */
	/*
	 * Plain forwarding: the head to send upstream - request line in origin form
	 * ("GET /path?q HTTP/1.1"), Host from the URI (RFC 9112 3.2.2: a proxy replaces the
	 * client's Host), Proxy-Connection, Proxy-Authorization, Connection, Keep-Alive and the
	 * headers Connection names dropped, "Connection: close" added, lines ended by CRLF.
	 * Owned by the struct; NULL for CONNECT.
	 */
	char *upstream_head;
	size_t upstream_len;
	/*
	 * Plain forwarding: the length of the request's body (RFC 9112 6.3: Content-Length, 0
	 * without it and without Transfer-Encoding), or -1 with Transfer-Encoding (chunked: the
	 * length is known only from the chunks).  What the client sends after the body is
	 * another request, which must not go to this request's origin.
	 */
	int64_t body_len;
};

/*
 * Parse the request head in p[0..n) (borrowed; need not be NUL-terminated).  ret is
 * overwritten; on > 0 it may own upstream_head, free it with http_request_clear().  On error
 * nothing is owned (clearing is still harmless).
 *   0        need more bytes;
 *   >0       head_len;
 *   -EPROTO  malformed (answer 400): bad request line, not "HTTP/1.x", obs-fold, NUL or bare
 *            CR, space before a colon, two Host, Content-Length together with
 *            Transfer-Encoding, a Content-Length over 2^62, userinfo in the URI, a bad
 *            host or port;
 *   -E2BIG   head longer than HTTP_HEAD_MAX (answer 431), or Proxy-Authorization longer
 *            than 511 bytes;
 *   -ENOTSUP unsupported scheme (https:// included: plain forwarding speaks only http) or
 *            request-target form (origin-form, asterisk-form), method longer than 15 (501).
 * Headers are matched case-insensitively; lines may end in LF alone.
 */
ssize_t http_request_parse(const uint8_t *p, size_t n, struct http_request *ret);
/* Frees upstream_head; r stays usable (upstream_head NULL). */
void http_request_clear(struct http_request *r);

/*
 * True if header_value (borrowed, NUL-terminated, may be NULL) is "Basic base64(user:pass)"
 * for exactly this user and pass (borrowed).  The scheme is case-insensitive; the comparison
 * takes the same time wherever the credentials differ.
 */
bool http_basic_auth_ok(const char *header_value, const char *user, const char *pass);

/*
 * A whole response as text: "HTTP/1.1 200 Connection established\r\n\r\n"; 400, 403, 407
 * (with Proxy-Authenticate: Basic realm="egress"), 431, 500, 501, 502, 503 and 504 with
 * Content-Length: 0 and Connection: close.  Any other status gives the 500 response.
 * Returns a static string.
 */
const char *http_response(int status);

#endif
