/*
 * httpproxy.c - parse an HTTP/1.x proxy request head and rewrite it for the origin server,
 * parse the origin's response head and rewrite it for the client, follow a message body to
 * its end (Content-Length, the chunked coding, the close), check Basic proxy credentials, and
 * hold the few whole responses a proxy sends itself.
 *
 * Must not trust either peer: the input is not NUL-terminated and every read stays below n;
 * a head is bounded by HTTP_HEAD_MAX and only one buffer is allocated (the rewritten head,
 * at most twice the head).  Everything that lets two parsers disagree about where a message
 * ends (RFC 9112 section 11.2, request smuggling and response splitting) is refused rather
 * than repaired: obs-fold, bare CR, NUL, whitespace before a colon, two Host fields,
 * Content-Length together with Transfer-Encoding, a Transfer-Encoding that does not end in
 * chunked, a chunk line not ended by CRLF.  No sockets, no logging.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "httpproxy.h"
#include "log.h"
#include "util.h"

/* A piece of the input: not NUL-terminated. */
struct span {
	const char *p;
	size_t len;
};

/* Connection options remembered per request (RFC 9110 7.6.1); more is refused. */
#define HTTP_CONN_TOKENS_MAX 32

struct head_state {
	struct span method, target, version;
	struct span authority, path; /* absolute-form only; path may be empty */
	struct span conn[HTTP_CONN_TOKENS_MAX];
	size_t n_conn;
	size_t first_header; /* offset of the first header line */
	bool has_host, has_te, has_auth;
	bool te_chunked;	    /* Transfer-Encoding's final coding (so far) is chunked */
	bool chunked_seen;	    /* ... and chunked was named (once) */
	struct span content_length; /* the first one, len 0 if none */
	uint64_t length;	    /* its value */
};

/* RFC 9110 5.6.2: tchar */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool span_eq(struct span s, const char *lit)
{
	return s.len == strlen(lit) && !strncasecmp(s.p, lit, s.len);
}

static bool span_eq_span(struct span a, struct span b)
{
	return a.len == b.len && !strncasecmp(a.p, b.p, a.len);
}

static struct span span_trim(struct span s)
{
	while (s.len && is_ows(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && is_ows(s.p[s.len - 1]))
		s.len--;
	return s;
}

/*
 * The next line starting at *pos below lim: its content without CR LF or LF into *ret and
 * *pos moved past it.  0 if the line is not complete, 1 if it is, -EPROTO for a NUL or a CR
 * that does not end the line.
 */
static int next_line(const char *p, size_t lim, size_t *pos, struct span *ret)
{
	const char *start = p + *pos;
	const char *lf = memchr(start, '\n', lim - *pos);
	size_t len = lf ? (size_t)(lf - start) : lim - *pos;

	if (memchr(start, '\0', len))
		return -EPROTO;
	if (!lf) {
		/* a CR may only be the last byte so far: the LF is still to come */
		const char *cr = memchr(start, '\r', len);
		return cr && cr != start + len - 1 ? -EPROTO : 0;
	}
	if (len && start[len - 1] == '\r')
		len--;
	if (memchr(start, '\r', len))
		return -EPROTO;
	ret->p = start;
	ret->len = len;
	*pos += (size_t)(lf - start) + 1;
	return 1;
}

/* RFC 9112 3: method SP request-target SP HTTP-version */
static int request_line_parse(struct span l, struct head_state *h)
{
	const char *sp1, *sp2;

	sp1 = memchr(l.p, ' ', l.len);
	if (!sp1)
		return -EPROTO;
	h->method = (struct span){l.p, (size_t)(sp1 - l.p)};
	sp2 = memchr(sp1 + 1, ' ', l.len - h->method.len - 1);
	if (!sp2)
		return -EPROTO;
	h->target = (struct span){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
	h->version = (struct span){sp2 + 1, l.len - (size_t)(sp2 + 1 - l.p)};
	if (!h->method.len || !h->target.len)
		return -EPROTO;
	for (size_t i = 0; i < h->method.len; i++)
		if (!is_tchar((unsigned char)h->method.p[i]))
			return -EPROTO;
	for (size_t i = 0; i < h->target.len; i++) {
		unsigned char c = (unsigned char)h->target.p[i];
		if (c <= 0x20 || c == 0x7f)
			return -EPROTO;
	}
	if (h->version.len != 8 || memcmp(h->version.p, "HTTP/1.", 7) || h->version.p[7] < '0' ||
		h->version.p[7] > '9')
		return -EPROTO;
	if (h->method.len >= sizeof(((struct http_request *)0)->method))
		return -ENOTSUP;
	return 0;
}

/* 1 to 5 digits, 1..65535. */
static int port_parse(struct span s, uint16_t *ret)
{
	unsigned v = 0;

	if (!s.len || s.len > 5)
		return -EPROTO;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -EPROTO;
		v = v * 10 + (unsigned)(s.p[i] - '0');
	}
	if (!v || v > 65535)
		return -EPROTO;
	*ret = (uint16_t)v;
	return 0;
}

/*
 * RFC 9110 4.2.1 / RFC 3986 3.2.2: host [ ":" port ], host an IPv6 literal in brackets, an
 * IPv4 literal or a name of letters, digits, '-', '.' and '_'.  need_port: CONNECT, where
 * the port is required; otherwise an absent or empty port means 80.
 */
static int authority_parse(struct span a, bool need_port, struct proxy_target *ret)
{
	struct span host, port = {NULL, 0};
	uint16_t portnum = 80;
	bool has_port = false;
	const char *colon;
	int r;

	if (a.len && a.p[0] == '[') {
		const char *rb = memchr(a.p, ']', a.len);
		if (!rb)
			return -EPROTO;
		host = (struct span){a.p + 1, (size_t)(rb - a.p - 1)};
		if ((size_t)(rb + 1 - a.p) < a.len) {
			if (rb[1] != ':')
				return -EPROTO;
			has_port = true;
			port = (struct span){rb + 2, a.len - (size_t)(rb + 2 - a.p)};
		}
	} else {
		colon = memchr(a.p, ':', a.len);
		host = (struct span){a.p, colon ? (size_t)(colon - a.p) : a.len};
		if (colon) {
			has_port = true;
			port = (struct span){colon + 1, a.len - host.len - 1};
		}
		for (size_t i = 0; i < host.len; i++) {
			char c = host.p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
				return -EPROTO;
		}
	}
	if (!host.len)
		return -EPROTO;
	if (need_port && (!has_port || !port.len))
		return -EPROTO;
	if (port.len) {
		r = port_parse(port, &portnum);
		if (r < 0)
			return r;
	}
	r = proxy_target_set_host(ret, host.p, host.len, portnum);
	if (r < 0)
		return r;
	/* brackets hold an IPv6 literal and nothing else (no zone, no IPvFuture) */
	if (a.p[0] == '[' && (ret->kind != TARGET_ADDR || ret->addr.ss_family != AF_INET6))
		return -EPROTO;
	return 0;
}

/* "scheme:" (RFC 3986 3.1) at the start of t? */
static bool has_scheme(struct span t)
{
	size_t i;

	if (!t.len || !((t.p[0] >= 'a' && t.p[0] <= 'z') || (t.p[0] >= 'A' && t.p[0] <= 'Z')))
		return false;
	for (i = 1; i < t.len; i++) {
		char c = t.p[i];
		if (c == ':')
			return true;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '+' || c == '-' || c == '.'))
			return false;
	}
	return false;
}

/* The request-target (RFC 9112 3.2): authority-form for CONNECT, absolute-form otherwise. */
static int target_parse(struct head_state *h, struct http_request *ret)
{
	struct span t = h->target;
	size_t i;

	if (ret->connect)
		return authority_parse(t, true, &ret->target);
	if (t.len < 7 || strncasecmp(t.p, "http://", 7))
		return has_scheme(t) || t.p[0] == '/' || span_eq(t, "*") ? -ENOTSUP : -EPROTO;
	for (i = 7; i < t.len; i++)
		if (t.p[i] == '/' || t.p[i] == '?' || t.p[i] == '#')
			break;
	h->authority = (struct span){t.p + 7, i - 7};
	h->path = (struct span){t.p + i, t.len - i};
	/* the fragment is the client's own business (RFC 9110 4.2.5) */
	for (i = 0; i < h->path.len; i++)
		if (h->path.p[i] == '#')
			h->path.len = i;
	if (memchr(h->authority.p, '@', h->authority.len))
		return -EPROTO; /* userinfo: deprecated (RFC 9110 4.2.4) and a phishing aid */
	return authority_parse(h->authority, false, &ret->target);
}

/* Remember the options of a Connection field (comma-separated tokens). */
static int connection_parse(struct span v, struct head_state *h)
{
	size_t i = 0;

	while (i < v.len) {
		const char *comma = memchr(v.p + i, ',', v.len - i);
		size_t end = comma ? (size_t)(comma - v.p) : v.len;
		struct span tok = span_trim((struct span){v.p + i, end - i});

		for (size_t k = 0; k < tok.len; k++)
			if (!is_tchar((unsigned char)tok.p[k]))
				return -EPROTO;
		if (tok.len) {
			if (h->n_conn == ARRAY_SIZE(h->conn))
				return -EPROTO;
			h->conn[h->n_conn++] = tok;
		}
		i = end + 1;
	}
	return 0;
}

/* Split a header line into name and trimmed value; check both (RFC 9112 5, RFC 9110 5.5). */
static int header_split(struct span l, struct span *name, struct span *value)
{
	const char *colon;

	if (is_ows(l.p[0]))
		return -EPROTO; /* obs-fold (RFC 9112 5.2) */
	colon = memchr(l.p, ':', l.len);
	if (!colon || colon == l.p)
		return -EPROTO;
	*name = (struct span){l.p, (size_t)(colon - l.p)};
	for (size_t i = 0; i < name->len; i++)
		if (!is_tchar((unsigned char)name->p[i]))
			return -EPROTO; /* includes whitespace before the colon */
	*value = span_trim((struct span){colon + 1, l.len - name->len - 1});
	for (size_t i = 0; i < value->len; i++) {
		unsigned char c = (unsigned char)value->p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EPROTO;
	}
	return 0;
}

/*
 * Transfer-Encoding (RFC 9112 6.1): a list of transfer codings, the fields' values joined.
 * Remember whether the final coding is chunked; chunked twice (RFC 9112 7.1: a sender must
 * not apply it more than once), with parameters (it takes none) or an empty list are
 * refused: a recipient that reads them otherwise would end the body elsewhere.
 */
static int transfer_encoding_parse(struct span v, struct head_state *h)
{
	size_t i = 0;

	if (!v.len)
		return -EPROTO;
	while (i < v.len) {
		const char *comma = memchr(v.p + i, ',', v.len - i);
		size_t end = comma ? (size_t)(comma - v.p) : v.len;
		struct span elem = span_trim((struct span){v.p + i, end - i});
		const char *semi = memchr(elem.p, ';', elem.len);
		struct span coding =
			span_trim((struct span){elem.p, semi ? (size_t)(semi - elem.p) : elem.len});

		i = end + 1;
		if (!elem.len)
			continue; /* empty list elements are allowed (RFC 9110 5.6.1) */
		if (!coding.len)
			return -EPROTO;
		for (size_t k = 0; k < coding.len; k++)
			if (!is_tchar((unsigned char)coding.p[k]))
				return -EPROTO;
		h->te_chunked = span_eq(coding, "chunked");
		if (h->te_chunked && (h->chunked_seen || semi))
			return -EPROTO;
		h->chunked_seen |= h->te_chunked;
	}
	return 0;
}

/*
 * The fields that frame the body, in a request or a response (RFC 9112 6.3): Content-Length
 * (digits only, at most HTTP_BODY_MAX, repeated only with the same value: item 5) and
 * Transfer-Encoding, never both (item 3).  Other fields: nothing to do.
 */
static int framing_check(struct span name, struct span value, struct head_state *h)
{
	int r;

	if (span_eq(name, "Transfer-Encoding")) {
		h->has_te = true;
		r = transfer_encoding_parse(value, h);
		if (r < 0)
			return r;
	} else if (span_eq(name, "Content-Length")) {
		if (!value.len)
			return -EPROTO;
		for (size_t i = 0; i < value.len; i++)
			if (value.p[i] < '0' || value.p[i] > '9')
				return -EPROTO;
		if (h->content_length.len && !span_eq_span(value, h->content_length))
			return -EPROTO; /* RFC 9112 6.3 item 5 */
		if (!h->content_length.len) {
			uint64_t v = 0;
			for (size_t i = 0; i < value.len; i++) {
				if (v > HTTP_BODY_MAX / 10)
					return -EPROTO; /* no body is that long */
				v = v * 10 + (uint64_t)(value.p[i] - '0');
			}
			if (v > HTTP_BODY_MAX)
				return -EPROTO;
			h->length = v;
		}
		h->content_length = value;
	}
	if (h->has_te && h->content_length.len)
		return -EPROTO; /* RFC 9112 6.3 item 3: a proxy must not forward both */
	return 0;
}

static int header_check(
	struct span name, struct span value, struct head_state *h, struct http_request *ret)
{
	if (span_eq(name, "Host")) {
		if (h->has_host)
			return -EPROTO; /* RFC 9112 3.2 */
		h->has_host = true;
	} else if (span_eq(name, "Proxy-Authorization")) {
		if (h->has_auth)
			return -EPROTO;
		h->has_auth = true;
		if (value.len >= sizeof(ret->proxy_auth))
			return -E2BIG;
		memcpy(ret->proxy_auth, value.p, value.len);
		ret->proxy_auth[value.len] = '\0';
	} else if (span_eq(name, "Connection")) {
		return connection_parse(value, h);
	}
	return framing_check(name, value, h);
}

/* Hop-by-hop fields we drop on plain forwarding (RFC 9110 7.6.1). */
static bool header_dropped(struct span name, const struct head_state *h)
{
	static const char *const hop[] = {
		"Connection", "Proxy-Connection", "Proxy-Authorization", "Keep-Alive", "Host"};

	for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
		if (span_eq(name, hop[i]))
			return true;
	/* framing stays whatever Connection says: dropping it would change the body's length */
	if (span_eq(name, "Content-Length") || span_eq(name, "Transfer-Encoding"))
		return false;
	for (size_t i = 0; i < h->n_conn; i++)
		if (span_eq_span(name, h->conn[i]))
			return true;
	return false;
}

/* An append-only buffer whose capacity was computed in advance. */
struct outbuf {
	char *p;
	size_t len, cap;
};

static void out_add(struct outbuf *o, const char *p, size_t len)
{
	if (len > o->cap - o->len)
		fatalx("httpproxy: upstream head overflows its bound");
	memcpy(o->p + o->len, p, len);
	o->len += len;
}

static void out_str(struct outbuf *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void out_span(struct outbuf *o, struct span s)
{
	out_add(o, s.p, s.len);
}

/* The header lines of the head p[0..head_len) from first_header on, but those dropped. */
static void out_fields(struct outbuf *o, const char *p, size_t head_len, const struct head_state *h)
{
	size_t pos = h->first_header;
	struct span l, name, value;

	/* the head was checked whole: every line is complete and well formed */
	while (next_line(p, head_len, &pos, &l) == 1 && l.len) {
		header_split(l, &name, &value);
		if (header_dropped(name, h))
			continue;
		out_span(o, name);
		out_str(o, ": ");
		out_span(o, value);
		out_str(o, "\r\n");
	}
}

/*
 * The head for the origin server.  Bound: the request line loses "http://" and gains "/", a
 * CR and "Host: " CRLF (3 bytes more at most, the authority moves); a header line of at
 * least 3 bytes ("a:" LF) gains at most a space and a CR; the end adds 21 bytes.
 */
static void upstream_build(const char *p, const struct head_state *h, struct http_request *ret)
{
	struct outbuf o = {.cap = 2 * ret->head_len + 64};
	struct span host;

	o.p = xmalloc(o.cap);
	out_span(&o, h->method);
	out_str(&o, " ");
	if (!h->path.len || h->path.p[0] != '/')
		out_str(&o, "/");
	out_span(&o, h->path);
	out_str(&o, " ");
	out_span(&o, h->version);
	out_str(&o, "\r\nHost: ");
	host = h->authority;
	if (host.p[host.len - 1] == ':')
		host.len--; /* an empty port is the default one */
	out_span(&o, host);
	out_str(&o, "\r\n");
	out_fields(&o, p, ret->head_len, h);
	out_str(&o, "Connection: close\r\n\r\n");
	ret->upstream_head = o.p;
	ret->upstream_len = o.len;
}

/*
 * Find the end of the head in p[0..n): its length, 0 if not complete, -E2BIG if it is longer
 * than HTTP_HEAD_MAX, -EPROTO for a bad line.  *first is the first line as soon as it is
 * complete (whatever the result; p NULL before), so that a bad start line is refused early,
 * and *first_header where the header lines start.
 */
static ssize_t head_scan(const char *p, size_t n, struct span *first, size_t *first_header)
{
	size_t lim = MIN(n, (size_t)HTTP_HEAD_MAX), pos = 0;
	struct span l;
	int r;

	first->p = NULL;
	first->len = 0;
	for (;;) {
		r = next_line(p, lim, &pos, &l);
		if (r < 0)
			return r;
		if (r == 0)
			return n >= HTTP_HEAD_MAX ? -E2BIG : 0;
		if (!first->p) {
			*first = l;
			*first_header = pos;
		} else if (!l.len) {
			return (ssize_t)pos;
		}
	}
}

ssize_t http_request_parse(const uint8_t *data, size_t n, struct http_request *ret)
{
	const char *p = (const char *)data;
	struct head_state h = {0};
	struct span l, name, value;
	size_t pos;
	ssize_t len;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!n)
		return 0;
	len = head_scan(p, n, &l, &h.first_header);
	if (l.p) {
		r = request_line_parse(l, &h);
		if (r < 0)
			return r;
	}
	if (len <= 0)
		return len;
	ret->head_len = (size_t)len;

	pos = h.first_header;
	while (next_line(p, ret->head_len, &pos, &l) == 1 && l.len) {
		r = header_split(l, &name, &value);
		if (r < 0)
			return r;
		r = header_check(name, value, &h, ret);
		if (r < 0)
			return r;
	}
	ret->http10 = h.version.p[7] == '0';
	/* RFC 9112 6.3 item 4: a request's body must end with chunked; 6.1: not in HTTP/1.0 */
	if (h.has_te && (!h.te_chunked || ret->http10))
		return -EPROTO;

	memcpy(ret->method, h.method.p, h.method.len);
	ret->method[h.method.len] = '\0';
	ret->connect = h.method.len == 7 && !memcmp(h.method.p, "CONNECT", 7); /* case matters */
	r = target_parse(&h, ret);
	if (r < 0)
		return r;
	ret->body_len = h.has_te ? -1 : (int64_t)h.length;
	if (!ret->connect)
		upstream_build(p, &h, ret);
	return (ssize_t)ret->head_len;
}

void http_request_clear(struct http_request *r)
{
	FREE_AND_NULL(r->upstream_head);
	r->upstream_len = 0;
}

void http_request_body(const struct http_request *r, struct http_body *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (r->body_len < 0) {
		ret->framing = HTTP_FRAMING_CHUNKED;
		http_chunked_init(&ret->chunked);
	} else {
		ret->framing = HTTP_FRAMING_LENGTH;
		ret->left = (uint64_t)r->body_len;
	}
}

/*
 * RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ].  The SP before
 * an empty reason is often left out; it is not needed to tell where anything ends.
 */
static int status_line_parse(struct span l, struct head_state *h, int *status)
{
	if (l.len < 12 || memcmp(l.p, "HTTP/1.", 7) || l.p[7] < '0' || l.p[7] > '9' ||
		l.p[8] != ' ')
		return -EPROTO;
	h->version = (struct span){l.p, 8};
	for (size_t i = 9; i < 12; i++)
		if (l.p[i] < '0' || l.p[i] > '9')
			return -EPROTO;
	*status = (l.p[9] - '0') * 100 + (l.p[10] - '0') * 10 + (l.p[11] - '0');
	if (*status < 100 || *status > 599)
		return -EPROTO; /* RFC 9110 15 */
	if (*status == 101)
		return -EPROTO; /* no Upgrade is forwarded, none is accepted (RFC 9110 7.8) */
	if (l.len > 12 && l.p[12] != ' ')
		return -EPROTO;
	for (size_t i = 13; i < l.len; i++) {
		unsigned char c = (unsigned char)l.p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EPROTO;
	}
	return 0;
}

/* Could p[0..n) still become a status line?  Refuses HTTP/0.9 and other protocols early. */
static bool status_line_start(const char *p, size_t n)
{
	static const char start[] = "HTTP/1.";

	return !memcmp(p, start, MIN(n, sizeof(start) - 1));
}

/* The head for the client: the status line, the fields but the hop-by-hop ones (RFC 9110
 * 7.6.1), "Connection: close" after a final response.  Bound as upstream_build()'s. */
static void client_build(const char *p, struct span status_line, const struct head_state *h,
	struct http_response_head *ret)
{
	struct outbuf o = {.cap = 2 * ret->head_len + 64};

	o.p = xmalloc(o.cap);
	out_span(&o, status_line);
	out_str(&o, "\r\n");
	out_fields(&o, p, ret->head_len, h);
	if (!ret->interim)
		out_str(&o, "Connection: close\r\n");
	out_str(&o, "\r\n");
	ret->client_head = o.p;
	ret->client_len = o.len;
}

/* RFC 9112 6.3: where the response's body ends. */
static int response_framing(
	const struct head_state *h, bool head_request, struct http_response_head *ret)
{
	struct http_body *b = &ret->body;

	b->framing = HTTP_FRAMING_LENGTH;
	b->left = 0;
	/* item 1: the request or the status says there is no body, whatever the fields say */
	if (head_request || ret->interim || ret->status == 204 || ret->status == 304)
		return 0;
	if (h->has_te) {
		/* 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing */
		if (h->version.p[7] == '0')
			return -EPROTO;
		/* item 4: chunked final; otherwise the body ends with the connection */
		if (h->te_chunked) {
			b->framing = HTTP_FRAMING_CHUNKED;
			http_chunked_init(&b->chunked);
		} else {
			b->framing = HTTP_FRAMING_CLOSE;
		}
		return 0;
	}
	if (h->content_length.len) {
		b->left = h->length; /* item 6 */
		return 0;
	}
	b->framing = HTTP_FRAMING_CLOSE; /* item 8 */
	return 0;
}

ssize_t http_response_head_parse(
	const uint8_t *data, size_t n, bool head_request, struct http_response_head *ret)
{
	const char *p = (const char *)data;
	struct head_state h = {0};
	struct span status_line, l, name, value;
	size_t pos;
	ssize_t len;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!n)
		return 0;
	if (!status_line_start(p, n))
		return -EPROTO;
	len = head_scan(p, n, &status_line, &h.first_header);
	if (status_line.p) {
		r = status_line_parse(status_line, &h, &ret->status);
		if (r < 0)
			return r;
	}
	if (len <= 0)
		return len;
	ret->head_len = (size_t)len;
	ret->interim = ret->status < 200;

	pos = h.first_header;
	while (next_line(p, ret->head_len, &pos, &l) == 1 && l.len) {
		r = header_split(l, &name, &value);
		if (r < 0)
			return r;
		if (span_eq(name, "Connection"))
			r = connection_parse(value, &h);
		else
			r = framing_check(name, value, &h);
		if (r < 0)
			return r;
	}
	r = response_framing(&h, head_request, ret);
	if (r < 0)
		return r;
	client_build(p, status_line, &h, ret);
	return (ssize_t)ret->head_len;
}

void http_response_head_clear(struct http_response_head *r)
{
	FREE_AND_NULL(r->client_head);
	r->client_len = 0;
}

/* ---- bodies ----------------------------------------------------------------------------- */

const char *const http_framing_name[_HTTP_FRAMING_MAX] = {
	[HTTP_FRAMING_LENGTH] = "length",
	[HTTP_FRAMING_CHUNKED] = "chunked",
	[HTTP_FRAMING_CLOSE] = "close",
};

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = HTTP_CH_SIZE;
}

/* A byte a chunk extension or a trailer field's value may hold: VCHAR, obs-text, SP, HTAB. */
static bool is_field_byte(uint8_t b)
{
	return b == '\t' || (b >= 0x20 && b != 0x7f);
}

/* The one byte state takes: want, then next. */
static int expect(struct http_chunked *c, uint8_t b, uint8_t want, enum http_chunked_state next)
{
	if (b != want)
		return -EPROTO;
	c->state = next;
	return 0;
}

/* A byte of a line's text that ok() accepts, or the CR that ends it (then cr_state). */
static int text(
	struct http_chunked *c, uint8_t b, bool (*ok)(uint8_t), enum http_chunked_state cr_state)
{
	if (b == '\r')
		c->state = cr_state;
	else if (!ok(b))
		return -EPROTO;
	return 0;
}

/*
 * One byte of a chunk-size line or of the trailer section (RFC 9112 7.1, 7.1.1, 7.1.2):
 *   chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk = 1*("0") [ chunk-ext ] CRLF;  trailer-section = *( field-line CRLF ) CRLF
 * 0 or -errno.  HTTP_CH_DATA is left to the caller, which takes the data in bulk.
 */
static int chunked_byte(struct http_chunked *c, uint8_t b)
{
	int d;

	if (c->state <= HTTP_CH_SIZE_LF && ++c->line > HTTP_CHUNK_LINE_MAX + 2)
		return -E2BIG;
	if (c->state >= HTTP_CH_TRAILER && ++c->trailer > HTTP_HEAD_MAX)
		return -E2BIG;
	switch (c->state) {
	case HTTP_CH_SIZE:
		d = hex_digit(b);
		if (d >= 0) {
			if (c->size > HTTP_BODY_MAX >> 4)
				return -E2BIG;
			c->size = c->size << 4 | (uint64_t)d;
			c->digits = true;
			return c->size > HTTP_BODY_MAX ? -E2BIG : 0;
		}
		if (!c->digits)
			return -EPROTO;
		/* what follows the digits */
		/* fall through */
	case HTTP_CH_SIZE_WS:
		if (b == ' ' || b == '\t')
			c->state = HTTP_CH_SIZE_WS;
		else if (b == ';')
			c->state = HTTP_CH_EXT;
		else
			return expect(c, b, '\r', HTTP_CH_SIZE_LF);
		return 0;
	case HTTP_CH_EXT:
		return text(c, b, is_field_byte, HTTP_CH_SIZE_LF);
	case HTTP_CH_SIZE_LF:
		c->line = 0;
		return expect(c, b, '\n', c->size ? HTTP_CH_DATA : HTTP_CH_TRAILER);
	case HTTP_CH_DATA_CR:
		return expect(c, b, '\r', HTTP_CH_DATA_LF);
	case HTTP_CH_DATA_LF:
		if (b != '\n')
			return -EPROTO;
		http_chunked_init(c); /* the next chunk */
		return 0;
	case HTTP_CH_TRAILER:
		if (b == '\r')
			c->state = HTTP_CH_LAST_LF;
		else if (is_tchar(b))
			c->state = HTTP_CH_FIELD_NAME;
		else
			return -EPROTO; /* obs-fold, whitespace or a colon first */
		return 0;
	case HTTP_CH_FIELD_NAME:
		if (b == ':')
			c->state = HTTP_CH_FIELD_VALUE;
		else if (!is_tchar(b))
			return -EPROTO;
		return 0;
	case HTTP_CH_FIELD_VALUE:
		return text(c, b, is_field_byte, HTTP_CH_FIELD_LF);
	case HTTP_CH_FIELD_LF:
		return expect(c, b, '\n', HTTP_CH_TRAILER);
	case HTTP_CH_LAST_LF:
		return expect(c, b, '\n', HTTP_CH_DONE);
	default:
		fatalx("httpproxy: chunked decoder in state %d", c->state);
	}
}

ssize_t http_chunked_feed(struct http_chunked *c, const uint8_t *p, size_t n)
{
	size_t i = 0;
	int r;

	while (i < n && c->state != HTTP_CH_DONE) {
		if (c->state == HTTP_CH_DATA) {
			uint64_t k = MIN(c->size, (uint64_t)(n - i));

			i += (size_t)k;
			c->size -= k;
			if (!c->size)
				c->state = HTTP_CH_DATA_CR;
			continue;
		}
		r = chunked_byte(c, p[i++]);
		if (r < 0)
			return r;
	}
	return (ssize_t)i;
}

ssize_t http_body_feed(struct http_body *b, const uint8_t *p, size_t n)
{
	uint64_t k;

	switch (b->framing) {
	case HTTP_FRAMING_LENGTH:
		k = MIN(b->left, (uint64_t)n);
		b->left -= k;
		return (ssize_t)k;
	case HTTP_FRAMING_CHUNKED:
		return http_chunked_feed(&b->chunked, p, n);
	default:
		return (ssize_t)n;
	}
}

uint64_t http_body_take(struct http_body *b)
{
	uint64_t k;

	switch (b->framing) {
	case HTTP_FRAMING_LENGTH:
		k = b->left;
		b->left = 0;
		return k;
	case HTTP_FRAMING_CHUNKED:
		if (b->chunked.state != HTTP_CH_DATA)
			return 0;
		k = b->chunked.size;
		b->chunked.size = 0;
		b->chunked.state = HTTP_CH_DATA_CR;
		return k;
	default:
		return HTTP_BODY_UNBOUNDED;
	}
}

bool http_body_done(const struct http_body *b)
{
	switch (b->framing) {
	case HTTP_FRAMING_LENGTH:
		return !b->left;
	case HTTP_FRAMING_CHUNKED:
		return b->chunked.state == HTTP_CH_DONE;
	default:
		return false;
	}
}

/* RFC 7617: "Basic" 1*SP token68, the token the base64 of user-id ":" password. */
bool http_basic_auth_ok(const char *header_value, const char *user, const char *pass)
{
	unsigned char want[1024], got[1024 / 4 * 3 + 1];
	size_t ulen, plen, len, pad = 0;
	const char *s = header_value;
	bool ok = false;
	int dl;

	if (!s || !user || !pass)
		return false;
	ulen = strlen(user);
	plen = strlen(pass);
	if (ulen + 1 + plen > sizeof(want))
		return false;
	while (is_ows(*s))
		s++;
	if (strncasecmp(s, "Basic", 5) || !is_ows(s[5]))
		return false;
	s += 5;
	while (is_ows(*s))
		s++;
	len = strcspn(s, " \t");
	if (s[len + strspn(s + len, " \t")] != '\0')
		return false;
	if (!len || len % 4 || len > sizeof(want))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '=') {
			if (i < len - 2 || (i == len - 2 && s[len - 1] != '='))
				return false;
			pad++;
		} else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				   (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return false;
		}
	}
	dl = EVP_DecodeBlock(got, (const unsigned char *)s, (int)len);
	if (dl < 0 || (size_t)dl < pad)
		goto out;
	dl -= (int)pad;
	memcpy(want, user, ulen);
	want[ulen] = ':';
	memcpy(want + ulen + 1, pass, plen);
	/* compare the whole length every time; only the lengths' equality is not secret */
	ok = (size_t)dl == ulen + 1 + plen &&
	     !CRYPTO_memcmp(got, want, MIN((size_t)dl, ulen + 1 + plen));
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

#define HTTP_CLOSE "Content-Length: 0\r\nConnection: close\r\n\r\n"

static const struct {
	int status;
	const char *text;
} http_responses[] = {
	{200, "HTTP/1.1 200 Connection established\r\n\r\n"},
	{400, "HTTP/1.1 400 Bad Request\r\n" HTTP_CLOSE},
	{403, "HTTP/1.1 403 Forbidden\r\n" HTTP_CLOSE},
	{407, "HTTP/1.1 407 Proxy Authentication Required\r\n"
	      "Proxy-Authenticate: Basic realm=\"egress\"\r\n" HTTP_CLOSE},
	{431, "HTTP/1.1 431 Request Header Fields Too Large\r\n" HTTP_CLOSE},
	{500, "HTTP/1.1 500 Internal Server Error\r\n" HTTP_CLOSE},
	{501, "HTTP/1.1 501 Not Implemented\r\n" HTTP_CLOSE},
	{502, "HTTP/1.1 502 Bad Gateway\r\n" HTTP_CLOSE},
	{503, "HTTP/1.1 503 Service Unavailable\r\n" HTTP_CLOSE},
	{504, "HTTP/1.1 504 Gateway Timeout\r\n" HTTP_CLOSE},
};

const char *http_response(int status)
{
	for (size_t i = 0; i < ARRAY_SIZE(http_responses); i++)
		if (http_responses[i].status == status)
			return http_responses[i].text;
	return http_response(500);
}
