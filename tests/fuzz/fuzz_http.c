/*
 * fuzz_http.c - libFuzzer harness for the HTTP proxy request codec (src/proxy/httpproxy.c).
 *
 * The input is a request head (and whatever follows it), in a buffer of exactly its size
 * with no NUL after it.  Checked:
 *   - the result is 0, -EPROTO, -E2BIG, -ENOTSUP, or a head length <= n and <= HTTP_HEAD_MAX;
 *     only an input of at least HTTP_HEAD_MAX bytes may be -E2BIG for its size alone;
 *   - a complete head parses to the same length from exactly its bytes, and its prefixes
 *     r - 1 and r / 2 need more;
 *   - method and Proxy-Authorization are NUL-terminated, a name target is non-empty without
 *     CR or LF, the target's ports agree;
 *   - CONNECT has no upstream head; any other request has one of at most 2 r + 64 bytes that
 *     starts with "METHOD /", holds no NUL, bare CR or bare LF, carries exactly one Host and
 *     no Proxy-Authorization, and ends in "Connection: close" and a blank line;
 *   - nothing is owned after an error;
 *   - Basic credentials made from the input's first bytes are accepted for themselves and
 *     refused for a different password.
 * Any violation aborts.  No side effects: nothing is logged, no sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "httpproxy.h"

#include "fuzz.h"

static ssize_t parse_copy(const uint8_t *data, size_t n, struct http_request *ret)
{
	uint8_t *c = fuzz_dup(data, n);
	ssize_t r;

	r = http_request_parse(c, n, ret);
	free(c);
	return r;
}

static void check_upstream(const struct http_request *req, size_t r)
{
	const char *h = req->upstream_head;
	size_t len = req->upstream_len, ml = strlen(req->method);
	static const char tail[] = "\r\nConnection: close\r\n\r\n";

	CHECK(h && len <= 2 * r + 64);
	CHECK(len > ml + 1 && !memcmp(h, req->method, ml) && h[ml] == ' ' && h[ml + 1] == '/');
	CHECK(len >= sizeof(tail) - 1 &&
		!memcmp(h + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1));
	fuzz_check_crlf(h, len);
	CHECK(fuzz_count_field(h, len, "Host") == 1);
	CHECK(fuzz_count_field(h, len, "Proxy-Authorization") == 0);
	CHECK(fuzz_count_field(h, len, "Proxy-Connection") == 0);
	CHECK(fuzz_count_field(h, len, "Connection") == 1);
	/* the body: Content-Length's value (at most 2^62), none, or -1 when chunked */
	CHECK(req->body_len >= -1 && req->body_len <= INT64_C(1) << 62);
	CHECK(req->body_len != -1 || fuzz_count_field(h, len, "Transfer-Encoding") >= 1);
	CHECK(req->body_len != -1 || !req->http10); /* no chunked in HTTP/1.0 */
	CHECK(req->body_len <= 0 || fuzz_count_field(h, len, "Content-Length") >= 1);
}

static void check_target(const struct proxy_target *t)
{
	char buf[PROXY_TARGET_STRLEN];

	if (t->kind == TARGET_NAME) {
		CHECK(memchr(t->name, '\0', sizeof(t->name)));
		CHECK(t->name[0] && !strpbrk(t->name, "\r\n"));
	} else {
		CHECK(t->kind == TARGET_ADDR);
		CHECK(t->addr.ss_family == AF_INET || t->addr.ss_family == AF_INET6);
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;
		uint16_t port = t->addr.ss_family == AF_INET ? s4->sin_port : s6->sin6_port;
		CHECK(ntohs(port) == t->port);
	}
	CHECK(t->port != 0);
	proxy_target_str(t, buf, sizeof(buf));
}

/* "Basic " base64(user ":" "pw") must pass for (user, "pw") and fail for (user, "pX"). */
static void check_basic(const uint8_t *data, size_t size)
{
	char user[49], cred[64], header[6 + 88 + 1];
	size_t ul = size < 48 ? size : 48;

	for (size_t i = 0; i < ul; i++)
		user[i] = data[i] ? (char)data[i] : 'x';
	user[ul] = '\0';
	snprintf(cred, sizeof(cred), "%s:pw", user);
	memcpy(header, "Basic ", 6);
	EVP_EncodeBlock(
		(unsigned char *)header + 6, (const unsigned char *)cred, (int)strlen(cred));
	CHECK(http_basic_auth_ok(header, user, "pw"));
	CHECK(!http_basic_auth_ok(header, user, "pX"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req;
	ssize_t r, x;

	if (size > 2 * HTTP_HEAD_MAX)
		return 0;
	r = http_request_parse(data, size, &req);
	CHECK(r == 0 || r == -EPROTO || r == -E2BIG || r == -ENOTSUP ||
		(r > 0 && (size_t)r <= size && r <= HTTP_HEAD_MAX));
	if (r == 0)
		CHECK(size < HTTP_HEAD_MAX);
	if (r <= 0) {
		CHECK(!req.upstream_head);
		http_request_clear(&req);
		check_basic(data, size);
		return 0;
	}
	CHECK(req.head_len == (size_t)r);
	CHECK(memchr(req.method, '\0', sizeof(req.method)) && req.method[0]);
	CHECK(memchr(req.proxy_auth, '\0', sizeof(req.proxy_auth)));
	check_target(&req.target);
	if (req.connect) {
		CHECK(!strcmp(req.method, "CONNECT") && !req.upstream_head && !req.upstream_len);
	} else {
		check_upstream(&req, (size_t)r);
	}
	if (req.proxy_auth[0]) {
		CHECK(!http_basic_auth_ok(req.proxy_auth, "", "\x01"));
	}
	http_request_clear(&req);
	CHECK(!req.upstream_head);

	x = parse_copy(data, (size_t)r, &req);
	CHECK(x == r);
	http_request_clear(&req);
	x = parse_copy(data, (size_t)r - 1, &req);
	CHECK(x == 0 && !req.upstream_head);
	x = parse_copy(data, (size_t)r / 2, &req);
	CHECK(x == 0 && !req.upstream_head);
	check_basic(data, size);
	return 0;
}
