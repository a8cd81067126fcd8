/*
 * fuzz_socks.c - libFuzzer harness for the SOCKS codecs (src/proxy/socks.c).
 *
 * The input is fed, as is, to every SOCKS parser: SOCKS5 greeting, RFC 1929 credentials,
 * SOCKS5 request, SOCKS5 UDP header and SOCKS4/4a request.  For each one:
 *   - the result is 0, a length <= n, or one of the errors the parser documents;
 *   - a complete message of length r parses to r again from exactly r bytes, and its
 *     prefixes r - 1 and r / 2 need more (a stream parser must not decide early);
 *     the UDP parser, which takes whole datagrams, instead answers -EPROTO to a cut header;
 *   - every string output is NUL-terminated within its array, names are non-empty without
 *     CR or LF, an address target's two ports agree, and the -ENOTSUP of a request sets
 *     REP 7 or 8;
 *   - an address target written by socks5_udp_header_build() parses back to itself.
 * Any violation aborts.  No side effects: nothing is logged, no sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socks.h"

#include "fuzz.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_target(const struct proxy_target *t)
{
	char buf[PROXY_TARGET_STRLEN], small[5];

	if (t->kind == TARGET_NAME) {
		CHECK(terminated(t->name, sizeof(t->name)));
		CHECK(t->name[0] != '\0');
		CHECK(!strpbrk(t->name, "\r\n"));
	} else {
		CHECK(t->kind == TARGET_ADDR);
		if (t->addr.ss_family == AF_INET) {
			CHECK(ntohs(((const struct sockaddr_in *)&t->addr)->sin_port) == t->port);
		} else {
			CHECK(t->addr.ss_family == AF_INET6);
			CHECK(ntohs(((const struct sockaddr_in6 *)&t->addr)->sin6_port) == t->port);
		}
	}
	proxy_target_str(t, buf, sizeof(buf));
	CHECK(strlen(buf) < sizeof(buf));
	proxy_target_str(t, small, sizeof(small));
	CHECK(strlen(small) < sizeof(small));
}

/* Complete at r: the same r from exactly r bytes, and shorter prefixes need more. */
#define CHECK_PREFIXES(call, r)                                                                    \
	do {                                                                                       \
		size_t _r = (size_t)(r), _cut[] = {_r, _r - 1, _r / 2};                            \
		for (size_t _i = 0; _i < sizeof(_cut) / sizeof(_cut[0]); _i++) {                   \
			uint8_t *_c = malloc(_cut[_i] ? _cut[_i] : 1);                             \
			ssize_t _x;                                                                \
			CHECK(_c);                                                                 \
			memcpy(_c, data, _cut[_i]);                                                \
			_x = call(_c, _cut[_i]);                                                   \
			free(_c);                                                                  \
			CHECK(_i == 0 ? _x == (ssize_t)_r : _x == 0);                              \
		}                                                                                  \
	} while (0)

static ssize_t greeting(const uint8_t *p, size_t n)
{
	struct socks5_greeting g;

	return socks5_greeting_parse(p, n, &g);
}

static ssize_t auth(const uint8_t *p, size_t n)
{
	struct socks5_auth a;

	return socks5_auth_parse(p, n, &a);
}

static ssize_t request(const uint8_t *p, size_t n)
{
	struct socks5_request req;

	return socks5_request_parse(p, n, &req);
}

static ssize_t socks4(const uint8_t *p, size_t n)
{
	struct socks4_request req;

	return socks4_request_parse(p, n, &req);
}

static void fuzz_socks5(const uint8_t *data, size_t size)
{
	struct socks5_greeting g;
	struct socks5_auth a;
	struct socks5_request req;
	uint8_t out[22];
	ssize_t r;

	r = socks5_greeting_parse(data, size, &g);
	CHECK(r == 0 || r == -EPROTO || (r >= 3 && (size_t)r <= size && r <= 257));
	if (r > 0)
		CHECK_PREFIXES(greeting, r);

	memset(&a, 0xa5, sizeof(a));
	r = socks5_auth_parse(data, size, &a);
	CHECK(r == 0 || r == -EPROTO || (r >= 3 && (size_t)r <= size && r <= 513));
	if (r > 0) {
		CHECK(terminated(a.user, sizeof(a.user)) && terminated(a.pass, sizeof(a.pass)));
		CHECK(strlen(a.user) + strlen(a.pass) + 3 == (size_t)r);
		CHECK_PREFIXES(auth, r);
	}

	memset(&req, 0xa5, sizeof(req));
	r = socks5_request_parse(data, size, &req);
	CHECK(r == 0 || r == -EPROTO || r == -E2BIG || r == -ENOTSUP ||
		(r >= 8 && (size_t)r <= size && r <= 4 + 1 + 255 + 2));
	if (r == -ENOTSUP)
		CHECK(req.reply == SOCKS5_CMD_UNSUPPORTED || req.reply == SOCKS5_ATYP_UNSUPPORTED);
	if (r > 0) {
		CHECK(req.cmd >= SOCKS5_CONNECT && req.cmd <= SOCKS5_UDP_ASSOCIATE);
		check_target(&req.target);
		CHECK_PREFIXES(request, r);
		const struct sockaddr *bound = req.target.kind == TARGET_ADDR
						       ? (const struct sockaddr *)&req.target.addr
						       : NULL;
		CHECK(socks5_reply_build(SOCKS5_OK, bound, out) <= 22);
	}
}

static void fuzz_udp(const uint8_t *data, size_t size)
{
	struct proxy_target t, back;
	uint8_t out[22];
	ssize_t r, h;

	r = socks5_udp_parse(data, size, &t);
	CHECK(r == -EPROTO || r == -E2BIG || r == -ENOTSUP ||
		(r >= 8 && (size_t)r <= size && r <= 3 + 1 + 1 + 255 + 2));
	if (r <= 0)
		return;
	check_target(&t);
	/* a datagram is whole: a cut header is malformed */
	for (size_t k = r > 3 ? (size_t)r - 3 : 0; k < (size_t)r; k++) {
		uint8_t *c = malloc(k ? k : 1);
		CHECK(c);
		memcpy(c, data, k);
		CHECK(socks5_udp_parse(c, k, &back) == -EPROTO);
		free(c);
	}
	if (t.kind == TARGET_ADDR) {
		h = (ssize_t)socks5_udp_header_build((const struct sockaddr *)&t.addr, out);
		CHECK(h == (t.addr.ss_family == AF_INET ? 10 : 22));
		CHECK(socks5_udp_parse(out, (size_t)h, &back) == h);
		CHECK(back.kind == TARGET_ADDR && back.port == t.port &&
			back.addr.ss_family == t.addr.ss_family);
		/* sent as an address (not as a literal name): the same bytes after RSV FRAG */
		if (data[3] != SOCKS5_ATYP_NAME)
			CHECK(h == r && !memcmp(out + 3, data + 3, (size_t)h - 3));
	}
}

static void fuzz_socks4(const uint8_t *data, size_t size)
{
	struct socks4_request req;
	uint8_t out[8];
	ssize_t r;

	memset(&req, 0xa5, sizeof(req));
	r = socks4_request_parse(data, size, &req);
	CHECK(r == 0 || r == -EPROTO || r == -E2BIG || r == -ENOTSUP ||
		(r >= 9 && (size_t)r <= size && r <= 8 + 256 + 256));
	if (r <= 0)
		return;
	CHECK(req.cmd == SOCKS4_CONNECT || req.cmd == SOCKS4_BIND);
	CHECK(terminated(req.user, sizeof(req.user)));
	check_target(&req.target);
	CHECK_PREFIXES(socks4, r);
	CHECK(socks4_reply_build(SOCKS4_GRANTED,
		      req.target.kind == TARGET_ADDR && req.target.addr.ss_family == AF_INET
			      ? (const struct sockaddr_in *)&req.target.addr
			      : NULL,
		      out) == 8);
	CHECK(out[0] == 0 && out[1] == SOCKS4_GRANTED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int proto;

	if (size > 4096)
		return 0;
	if (size) {
		proto = proxy_detect(data[0]);
		CHECK(proto == -EPROTO || (proto >= 0 && proto < _PROXY_PROTO_MAX));
	}
	fuzz_socks5(data, size);
	fuzz_udp(data, size);
	fuzz_socks4(data, size);
	return 0;
}
