/*
 * fuzz_ws_handshake.c - libFuzzer harness for the WebSocket handshake's pure code
 * (src/ws/ws_handshake.c): the server's response head as the client reads it
 * (ws_handshake_response(), to the key of RFC 6455 1.3's example), and ws:// URLs.
 *
 * The input is the server's answer, in a buffer of exactly its size with no NUL after it;
 * the same bytes, NUL-terminated, are also a URL.  Checked:
 *   - the result is 0, -EPROTO, -EACCES, -E2BIG or a head length <= n and <= WS_HEAD_MAX;
 *     only an input of at least WS_HEAD_MAX bytes may be -E2BIG;
 *   - -EACCES comes with the status read (100..599, not 101); a head is a 101;
 *   - a complete head parses to the same length from exactly its bytes, and its prefix
 *     r - 1 needs more;
 *   - a URL that parses has a host, a port, and a path starting with '/' without spaces.
 * Any violation aborts.  No side effects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws_handshake.h"

#include "fuzz.h"

static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";

static ssize_t parse_copy(const uint8_t *data, size_t n, int *status)
{
	char *c = fuzz_dup(data, n);
	const char *why = NULL;
	ssize_t r;

	r = ws_handshake_response(c, n, key, status, &why);
	if (r < 0)
		CHECK(why && *why);
	free(c);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int status, s2;
	ssize_t r = parse_copy(data, size, &status);

	CHECK(r == 0 || r == -EPROTO || r == -EACCES || r == -E2BIG || r > 0);
	if (r == -E2BIG)
		CHECK(size >= WS_HEAD_MAX);
	if (r == -EACCES)
		CHECK(status >= 100 && status <= 599 && status != 101);
	if (r > 0) {
		CHECK((size_t)r <= size && r <= WS_HEAD_MAX);
		CHECK(status == 101);
		CHECK(parse_copy(data, (size_t)r, &s2) == r);
		CHECK(parse_copy(data, (size_t)r - 1, &s2) == 0);
	}

	if (size < 4096) {
		char *url = malloc(size + 1);
		struct ws_url u;
		const char *why = NULL;

		CHECK(url);
		memcpy(url, data, size);
		url[size] = '\0';
		if (ws_url_parse(url, &u, &why) == 0) {
			CHECK(u.host[0] && u.port);
			CHECK(u.path[0] == '/' && !strchr(u.path, ' '));
		} else {
			CHECK(why && *why);
		}
		free(url);
	}
	return 0;
}
