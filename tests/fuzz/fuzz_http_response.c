/*
 * fuzz_http_response.c - libFuzzer harness for the origin's response head parser
 * (http_response_head_parse() in src/proxy/httpproxy.c).
 *
 * The input's first byte says whether the request was HEAD (bit 0); the rest is what the
 * origin sent, in a buffer of exactly its size with no NUL after it.  Checked:
 *   - the result is 0, -EPROTO, -E2BIG, or a head length <= n and <= HTTP_HEAD_MAX; only an
 *     input of at least HTTP_HEAD_MAX bytes may be -E2BIG for its size alone;
 *   - a complete head parses to the same length from exactly its bytes, and its prefixes
 *     r - 1 and r / 2 need more;
 *   - the status is 100..599 but 101, interim exactly when below 200; no body after 1xx, 204,
 *     304 or a HEAD request; a length at most HTTP_BODY_MAX;
 *   - the client head is at most 2 r + 64 bytes, starts with the status line, holds no NUL,
 *     bare CR or bare LF, no Keep-Alive or Proxy-Connection, exactly one Connection field
 *     ("close") after a final response and none after a 1xx, and ends in a blank line;
 *   - the client head parses again as a response head of the same status and framing (what
 *     the client will read is what egressd followed);
 *   - nothing is owned after an error.
 * Any violation aborts.  No side effects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpproxy.h"

#include "fuzz.h"

static ssize_t parse_copy(
	const uint8_t *data, size_t n, bool head_req, struct http_response_head *ret)
{
	uint8_t *c = fuzz_dup(data, n);
	ssize_t r;

	r = http_response_head_parse(c, n, head_req, ret);
	free(c);
	return r;
}

static void check_client_head(const struct http_response_head *rh, size_t r, bool head_req)
{
	const char *h = rh->client_head;
	size_t len = rh->client_len;
	struct http_response_head again;
	ssize_t x;

	CHECK(h && len <= 2 * r + 64);
	CHECK(len >= 16 && !memcmp(h, "HTTP/1.", 7));
	CHECK(!memcmp(h + len - 4, "\r\n\r\n", 4));
	fuzz_check_crlf(h, len);
	CHECK(fuzz_count_field(h, len, "Keep-Alive") == 0);
	CHECK(fuzz_count_field(h, len, "Proxy-Connection") == 0);
	CHECK(fuzz_count_field(h, len, "Connection") == (rh->interim ? 0 : 1));
	if (!rh->interim)
		CHECK(len >= 23 && !memcmp(h + len - 23, "\r\nConnection: close\r\n\r\n", 23));

	x = parse_copy((const uint8_t *)h, len, head_req, &again);
	CHECK(x == (ssize_t)len);
	CHECK(again.status == rh->status && again.interim == rh->interim);
	CHECK(again.body.framing == rh->body.framing && again.body.left == rh->body.left);
	CHECK(again.client_len <= len);
	http_response_head_clear(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response_head rh;
	bool head_req;
	ssize_t r, x;

	if (size < 1 || size > 2 * HTTP_HEAD_MAX)
		return 0;
	head_req = data[0] & 1;
	data++;
	size--;
	r = http_response_head_parse(data, size, head_req, &rh);
	CHECK(r == 0 || r == -EPROTO || r == -E2BIG ||
		(r > 0 && (size_t)r <= size && r <= HTTP_HEAD_MAX));
	if (r == 0)
		CHECK(size < HTTP_HEAD_MAX);
	if (r <= 0) {
		CHECK(!rh.client_head);
		http_response_head_clear(&rh);
		return 0;
	}
	CHECK(rh.head_len == (size_t)r);
	CHECK(rh.status >= 100 && rh.status <= 599 && rh.status != 101);
	CHECK(rh.interim == (rh.status < 200));
	CHECK(rh.body.framing < _HTTP_FRAMING_MAX);
	if (rh.interim || rh.status == 204 || rh.status == 304 || head_req)
		CHECK(rh.body.framing == HTTP_FRAMING_LENGTH && rh.body.left == 0);
	CHECK(rh.body.framing != HTTP_FRAMING_LENGTH || rh.body.left <= HTTP_BODY_MAX);
	if (rh.body.framing == HTTP_FRAMING_CHUNKED)
		CHECK(rh.body.chunked.state == HTTP_CH_SIZE && !rh.body.chunked.size);
	check_client_head(&rh, (size_t)r, head_req);
	http_response_head_clear(&rh);
	CHECK(!rh.client_head);

	x = parse_copy(data, (size_t)r, head_req, &rh);
	CHECK(x == r);
	http_response_head_clear(&rh);
	x = parse_copy(data, (size_t)r - 1, head_req, &rh);
	CHECK(x == 0 && !rh.client_head);
	x = parse_copy(data, (size_t)r / 2, head_req, &rh);
	CHECK(x == 0 && !rh.client_head);
	return 0;
}
