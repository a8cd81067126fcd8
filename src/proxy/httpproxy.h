/*
 * httpproxy.h - the HTTP/1.x proxy codec (RFC 9110, RFC 9112): CONNECT and plain forwarding
 * of absolute-form "http://" requests, the origin's response head, where a message body ends
 * (Content-Length, the chunked coding, the close), Basic proxy authentication, canned answers.
 *
 * Pure code: no sockets, no logging.  The head parsers are incremental (0 need more, >0 the
 * head's length, -errno malformed), never read past n, do not need NUL-terminated input and
 * allocate only the rewritten head, whose size is bounded by twice HTTP_HEAD_MAX.  The body
 * decoder takes a byte stream in pieces of any size and keeps only a few counters.
 */
#ifndef EGRESS_HTTPPROXY_H
#define EGRESS_HTTPPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "socks.h"

#define HTTP_HEAD_MAX 16384
#define HTTP_BODY_MAX	    (UINT64_C(1) << 62) /* a Content-Length or chunk-size above is refused */
#define HTTP_CHUNK_LINE_MAX 4096		/* chunk-size and chunk extensions, CRLF excluded */

/*
 * The chunked transfer coding (RFC 9112 7.1), followed as its bytes pass: the decoder only
 * finds where the message ends, it does not decode (the bytes are forwarded as they came).
 * Strict where two parsers could disagree about that end (RFC 9112 11.2): every line ends in
 * CRLF, a chunk-size is hex digits only, extensions start with ';' and hold no control
 * character, trailer fields are "name:value" without obs-fold.
 */
enum http_chunked_state {
	HTTP_CH_SIZE,	 /* chunk-size digits */
	HTTP_CH_SIZE_WS, /* whitespace after them (BWS before ';') */
	HTTP_CH_EXT,	 /* chunk-ext */
	HTTP_CH_SIZE_LF, /* the LF ending the chunk-size line */
	HTTP_CH_DATA,	 /* chunk-data, size bytes to come */
	HTTP_CH_DATA_CR, /* the CRLF after chunk-data */
	HTTP_CH_DATA_LF,
	HTTP_CH_TRAILER,    /* the start of a trailer line, or the final CRLF */
	HTTP_CH_FIELD_NAME, /* a trailer field */
	HTTP_CH_FIELD_VALUE,
	HTTP_CH_FIELD_LF,
	HTTP_CH_LAST_LF, /* the LF of the final CRLF */
	HTTP_CH_DONE,	 /* the whole chunked body has passed */
	_HTTP_CH_MAX,
};

struct http_chunked {
	enum http_chunked_state state;
	uint64_t size;	/* the chunk-size read so far; in HTTP_CH_DATA the data bytes left */
	bool digits;	/* at least one digit of chunk-size */
	size_t line;	/* bytes of the current chunk-size line */
	size_t trailer; /* bytes of the trailer section */
};

/* Where a message body ends (RFC 9112 6.3). */
enum http_framing {
	HTTP_FRAMING_LENGTH,  /* left bytes (Content-Length; 0: no body) */
	HTTP_FRAMING_CHUNKED, /* the chunked coding is final: its last chunk and trailers */
	HTTP_FRAMING_CLOSE,   /* a response with neither: the server's close */
	_HTTP_FRAMING_MAX,
};

extern const char *const http_framing_name[_HTTP_FRAMING_MAX];

struct http_body {
	enum http_framing framing;
	uint64_t left; /* LENGTH: bytes still to come */
	struct http_chunked chunked;
};

/* HTTP_BODY_UNBOUNDED from http_body_take(): everything up to the close. */
#define HTTP_BODY_UNBOUNDED UINT64_MAX

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
	bool http10; /* HTTP/1.0: the client is not sent 1xx responses (RFC 9110 15.2) */
};

/*
 * Parse the request head in p[0..n) (borrowed; need not be NUL-terminated).  ret is
 * overwritten; on > 0 it may own upstream_head, free it with http_request_clear().  On error
 * nothing is owned (clearing is still harmless).
 *   0        need more bytes;
 *   >0       head_len;
 *   -EPROTO  malformed (answer 400): bad request line, not "HTTP/1.x", obs-fold, NUL or bare
 *            CR, space before a colon, two Host, Content-Length together with
 *            Transfer-Encoding, a Content-Length over 2^62, a Transfer-Encoding whose final
 *            coding is not chunked, that names chunked twice or comes in HTTP/1.0 (RFC 9112
 *            6.1, 6.3), userinfo in the URI, a bad host or port;
 *   -E2BIG   head longer than HTTP_HEAD_MAX (answer 431), or Proxy-Authorization longer
 *            than 511 bytes;
 *   -ENOTSUP unsupported scheme (https:// included: plain forwarding speaks only http) or
 *            request-target form (origin-form, asterisk-form), method longer than 15 (501).
 * Headers are matched case-insensitively; lines may end in LF alone.
 */
ssize_t http_request_parse(const uint8_t *p, size_t n, struct http_request *ret);
/* Frees upstream_head; r stays usable (upstream_head NULL). */
void http_request_clear(struct http_request *r);
/* Where r's body ends: Content-Length (0 without it) or chunked.  r is borrowed. */
void http_request_body(const struct http_request *r, struct http_body *ret);

/* The origin server's response head, as plain forwarding passes it on. */
struct http_response_head {
	int status;	 /* 100..599, 101 excluded */
	size_t head_len; /* the origin's head, blank line included */
	bool interim;	 /* 1xx: the final response head follows (RFC 9110 15.2) */
	/*
	 * The head for the client: the status line as it came, Connection, Keep-Alive,
	 * Proxy-Connection and the fields Connection names dropped, the others as they came
	 * (Content-Length and Transfer-Encoding included: the body is passed on as it is),
	 * "Connection: close" added to a final response (the proxy closes after it), lines
	 * ended by CRLF.  Owned by the struct.
	 */
	char *client_head;
	size_t client_len;
	/* How the body after the head ends: LENGTH 0 for 1xx, 204, 304 and a HEAD request's
	 * response (RFC 9112 6.3 items 1 and 2, whatever the fields say). */
	struct http_body body;
};

/*
 * Parse the response head in p[0..n) (borrowed; need not be NUL-terminated) to a request
 * whose method was HEAD if head_request.  ret is overwritten; on > 0 it owns client_head,
 * free it with http_response_head_clear().  On error nothing is owned.
 *   0        need more bytes;
 *   >0       head_len;
 *   -EPROTO  malformed or framing that cannot be trusted (answer 502, RFC 9112 6.3): not
 *            "HTTP/1.x NNN", a status outside 100..599, 101 (no upgrade is asked for),
 *            obs-fold, NUL, bare CR, space before a colon, Transfer-Encoding together with
 *            Content-Length or in HTTP/1.0, chunked twice or with parameters, an empty
 *            Transfer-Encoding, a bad Content-Length or two that differ;
 *   -E2BIG   head longer than HTTP_HEAD_MAX.
 */
ssize_t http_response_head_parse(
	const uint8_t *p, size_t n, bool head_request, struct http_response_head *ret);
/* Frees client_head; r stays usable. */
void http_response_head_clear(struct http_response_head *r);

/* A chunked body at its start. */
void http_chunked_init(struct http_chunked *c);
/*
 * Follow the next n bytes of a chunked body (p borrowed): how many of them belong to it
 * (all of them, unless its end is among them: then up to and including its last byte), or
 * -EPROTO (malformed: answer 400 or 502) or -E2BIG (a chunk-size line longer than
 * HTTP_CHUNK_LINE_MAX, a trailer section longer than HTTP_HEAD_MAX, a chunk-size over
 * HTTP_BODY_MAX).  After an error c is undefined.
 */
ssize_t http_chunked_feed(struct http_chunked *c, const uint8_t *p, size_t n);

/*
 * Follow a body: http_body_feed() is http_chunked_feed() for every framing (LENGTH takes up
 * to left bytes, CLOSE all).  http_body_take() passes the bytes known to belong to the body
 * without looking at them (the rest of a length or of a chunk's data; HTTP_BODY_UNBOUNDED
 * for CLOSE; 0 when the next bytes must be fed) and counts them as fed: the caller moves
 * them itself (splice).  http_body_done(): the body has ended (never for CLOSE).
 */
ssize_t http_body_feed(struct http_body *b, const uint8_t *p, size_t n);
uint64_t http_body_take(struct http_body *b);
bool http_body_done(const struct http_body *b);

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
