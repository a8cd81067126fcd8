/*
 * test_socks.c - unit tests for src/proxy/socks.c: SOCKS4/4a and SOCKS5 parsers and reply
 * builders.
 *
 * The client messages marked "curl" were captured from curl 7.88.1 talking to a listener on
 * loopback in a private network namespace; the others are written by hand from RFC 1928,
 * RFC 1929 and the SOCKS4/4a notes.  Every parser is also fed each proper prefix of every
 * valid message, copied into a heap buffer of exactly that size so that ASan catches a read
 * past n.  Pure computation: no sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "socks.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

typedef ssize_t (*parse_fn)(const uint8_t *p, size_t n, void *ret);

static ssize_t greeting_cb(const uint8_t *p, size_t n, void *ret)
{
	return socks5_greeting_parse(p, n, ret);
}

static ssize_t auth_cb(const uint8_t *p, size_t n, void *ret)
{
	return socks5_auth_parse(p, n, ret);
}

static ssize_t request_cb(const uint8_t *p, size_t n, void *ret)
{
	return socks5_request_parse(p, n, ret);
}

static ssize_t socks4_cb(const uint8_t *p, size_t n, void *ret)
{
	return socks4_request_parse(p, n, ret);
}

static ssize_t udp_cb(const uint8_t *p, size_t n, void *ret)
{
	return socks5_udp_parse(p, n, ret);
}

/* Parse the first n bytes of msg from a heap copy of exactly n bytes. */
static ssize_t parse_exact(parse_fn fn, const void *msg, size_t n, void *ret)
{
	uint8_t *copy = malloc(n ? n : 1);
	ssize_t r;

	assert_non_null(copy);
	memcpy(copy, msg, n);
	r = fn(copy, n, ret);
	free(copy);
	return r;
}

/*
 * msg (len bytes) is one valid message: every proper prefix needs more, the whole returns
 * len, and bytes after it are left alone.  The last parse, of the whole, fills ret.
 */
static void check_whole(parse_fn fn, const void *msg, size_t len, void *ret, size_t retsize)
{
	uint8_t more[600];

	assert_true(len + 3 <= sizeof(more));
	for (size_t k = 0; k < len; k++) {
		memset(ret, 0xa5, retsize);
		if (parse_exact(fn, msg, k, ret) != 0)
			fail_msg("prefix of %zu/%zu bytes: not 0", k, len);
	}
	memcpy(more, msg, len);
	memcpy(more + len, "xyz", 3);
	memset(ret, 0xa5, retsize);
	assert_int_equal(parse_exact(fn, more, len + 3, ret), (ssize_t)len);
	memset(ret, 0xa5, retsize);
	assert_int_equal(parse_exact(fn, msg, len, ret), (ssize_t)len);
}

#define CHECK_WHOLE(fn, msg, ret) check_whole(fn, msg, sizeof(msg) - 1, ret, sizeof(*(ret)))

static void assert_v4(const struct proxy_target *t, const char *addr, uint16_t port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;
	struct in_addr want;

	assert_int_equal(t->kind, TARGET_ADDR);
	assert_int_equal(t->addr.ss_family, AF_INET);
	assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
	assert_memory_equal(&s4->sin_addr, &want, 4);
	assert_int_equal(ntohs(s4->sin_port), port);
	assert_int_equal(t->port, port);
}

static void assert_v6(const struct proxy_target *t, const char *addr, uint16_t port)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;
	struct in6_addr want;

	assert_int_equal(t->kind, TARGET_ADDR);
	assert_int_equal(t->addr.ss_family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
	assert_memory_equal(&s6->sin6_addr, &want, 16);
	assert_int_equal(ntohs(s6->sin6_port), port);
	assert_int_equal(t->port, port);
}

static void assert_name(const struct proxy_target *t, const char *name, uint16_t port)
{
	assert_int_equal(t->kind, TARGET_NAME);
	assert_string_equal(t->name, name);
	assert_int_equal(t->port, port);
}

static struct sockaddr_in sin4(const char *a, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

	assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 sin6(const char *a, uint16_t port)
{
	struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	return s;
}

/* ---------------------------------------------------------------- detection, targets */

static void test_detect(void **state)
{
	assert_int_equal(proxy_detect(0x04), PROXY_PROTO_SOCKS4);
	assert_int_equal(proxy_detect(0x05), PROXY_PROTO_SOCKS5);
	assert_int_equal(proxy_detect('G'), PROXY_PROTO_HTTP);
	assert_int_equal(proxy_detect('C'), PROXY_PROTO_HTTP);
	assert_int_equal(proxy_detect('Z'), PROXY_PROTO_HTTP);
	assert_int_equal(proxy_detect('A'), PROXY_PROTO_HTTP);
	assert_int_equal(proxy_detect('g'), -EPROTO);
	assert_int_equal(proxy_detect('@'), -EPROTO);
	assert_int_equal(proxy_detect('['), -EPROTO);
	assert_int_equal(proxy_detect(0x16), -EPROTO); /* a TLS ClientHello */
	assert_int_equal(proxy_detect(0x00), -EPROTO);
	assert_int_equal(proxy_detect(0x03), -EPROTO);
	assert_int_equal(proxy_detect(0x06), -EPROTO);
	assert_string_equal(proxy_proto_name[PROXY_PROTO_SOCKS4], "socks4");
	assert_string_equal(proxy_proto_name[PROXY_PROTO_SOCKS5], "socks5");
	assert_string_equal(proxy_proto_name[PROXY_PROTO_HTTP], "http");
}

static void test_target_str(void **state)
{
	struct proxy_target t;
	char buf[PROXY_TARGET_STRLEN], small[8];
	char big[256];

	assert_int_equal(proxy_target_set_host(&t, "2001:db8::1", 11, 443), 0);
	assert_string_equal(proxy_target_str(&t, buf, sizeof(buf)), "[2001:db8::1]:443");
	assert_int_equal(proxy_target_set_host(&t, "198.51.100.1", 12, 80), 0);
	assert_string_equal(proxy_target_str(&t, buf, sizeof(buf)), "198.51.100.1:80");
	assert_int_equal(proxy_target_set_host(&t, "example.com", 11, 80), 0);
	assert_string_equal(proxy_target_str(&t, buf, sizeof(buf)), "example.com:80");
	/* truncated, still terminated */
	assert_ptr_equal(proxy_target_str(&t, small, sizeof(small)), small);
	assert_string_equal(small, "example");
	/* the longest name fits */
	memset(big, 'a', 255);
	assert_int_equal(proxy_target_set_host(&t, big, 255, 65535), 0);
	proxy_target_str(&t, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 255 + 6);
	assert_string_equal(buf + 255, ":65535");
}

static void test_target_set_host(void **state)
{
	struct proxy_target t;
	char big[256];

	assert_int_equal(proxy_target_set_host(&t, "10.0.0.1x", 8, 1), 0);
	assert_v4(&t, "10.0.0.1", 1);
	assert_int_equal(proxy_target_set_host(&t, "::ffff:10.0.0.1", 15, 2), 0);
	assert_v6(&t, "::ffff:10.0.0.1", 2);
	/* not dotted-quad: a name the resolver decides about */
	assert_int_equal(proxy_target_set_host(&t, "10.1", 4, 3), 0);
	assert_name(&t, "10.1", 3);
	assert_int_equal(proxy_target_set_host(&t, "", 0, 3), -EPROTO);
	assert_int_equal(proxy_target_set_host(&t, "a\0b", 3, 3), -EPROTO);
	assert_int_equal(proxy_target_set_host(&t, "a\rb", 3, 3), -EPROTO);
	assert_int_equal(proxy_target_set_host(&t, "a\nb", 3, 3), -EPROTO);
	memset(big, 'b', sizeof(big));
	assert_int_equal(proxy_target_set_host(&t, big, 256, 3), -E2BIG);
	assert_int_equal(proxy_target_set_host(&t, big, 255, 3), 0);
	assert_int_equal(strlen(t.name), 255);
}

/* ---------------------------------------------------------------- SOCKS5 greeting */

static void test_socks5_greeting(void **state)
{
	/* curl 7.88.1, no credentials: no authentication, GSSAPI */
	static const char curl2[] = "\x05\x02\x00\x01";
	/* curl 7.88.1 with -U: no authentication, GSSAPI, username/password */
	static const char curl3[] = "\x05\x03\x00\x01\x02";
	/* one method (Firefox, Python's PySocks without credentials) */
	static const char one[] = "\x05\x01\x00";
	static const char userpass_only[] = "\x05\x01\x02";
	static const char unknown_only[] = "\x05\x02\x01\x80";
	struct socks5_greeting g;
	uint8_t all[2 + 255], out[2];

	CHECK_WHOLE(greeting_cb, curl2, &g);
	assert_true(g.none);
	assert_false(g.userpass);
	CHECK_WHOLE(greeting_cb, curl3, &g);
	assert_true(g.none);
	assert_true(g.userpass);
	CHECK_WHOLE(greeting_cb, one, &g);
	assert_true(g.none);
	assert_false(g.userpass);
	CHECK_WHOLE(greeting_cb, userpass_only, &g);
	assert_false(g.none);
	assert_true(g.userpass);
	CHECK_WHOLE(greeting_cb, unknown_only, &g);
	assert_false(g.none);
	assert_false(g.userpass);

	/* all 255 methods */
	all[0] = 5;
	all[1] = 255;
	for (int i = 0; i < 255; i++)
		all[2 + i] = (uint8_t)i;
	check_whole(greeting_cb, all, sizeof(all), &g, sizeof(g));
	assert_true(g.none && g.userpass);

	/* malformed: no methods, another version */
	assert_int_equal(parse_exact(greeting_cb, "\x05\x00", 2, &g), -EPROTO);
	assert_int_equal(parse_exact(greeting_cb, "\x04\x01\x00", 3, &g), -EPROTO);
	assert_int_equal(parse_exact(greeting_cb, "\x04", 1, &g), -EPROTO);
	assert_int_equal(parse_exact(greeting_cb, "GET / HTTP/1.1\r\n", 16, &g), -EPROTO);

	assert_int_equal(socks5_method_reply(SOCKS5_METHOD_NONE, out), 2);
	assert_memory_equal(out, "\x05\x00", 2);
	assert_int_equal(socks5_method_reply(SOCKS5_METHOD_USERPASS, out), 2);
	assert_memory_equal(out, "\x05\x02", 2);
	assert_int_equal(socks5_method_reply(SOCKS5_METHOD_REFUSED, out), 2);
	assert_memory_equal(out, "\x05\xff", 2);
}

/* ---------------------------------------------------------------- RFC 1929 */

static void test_socks5_auth(void **state)
{
	/* curl 7.88.1 -U alice:secret */
	static const char curl[] = "\x01\x05"
				   "alice"
				   "\x06"
				   "secret";
	static const char empty[] = "\x01\x00\x00";
	static const char empty_pass[] = "\x01\x01u\x00";
	struct socks5_auth a;
	uint8_t longest[3 + 255 + 255], out[2];

	CHECK_WHOLE(auth_cb, curl, &a);
	assert_string_equal(a.user, "alice");
	assert_string_equal(a.pass, "secret");
	CHECK_WHOLE(auth_cb, empty, &a);
	assert_string_equal(a.user, "");
	assert_string_equal(a.pass, "");
	CHECK_WHOLE(auth_cb, empty_pass, &a);
	assert_string_equal(a.user, "u");
	assert_string_equal(a.pass, "");

	longest[0] = 1;
	longest[1] = 255;
	memset(longest + 2, 'u', 255);
	longest[2 + 255] = 255;
	memset(longest + 3 + 255, 'p', 255);
	check_whole(auth_cb, longest, sizeof(longest), &a, sizeof(a));
	assert_int_equal(strlen(a.user), 255);
	assert_int_equal(strlen(a.pass), 255);
	assert_int_equal(a.user[0], 'u');
	assert_int_equal(a.pass[254], 'p');

	/* malformed: version, NUL inside a field */
	assert_int_equal(parse_exact(auth_cb, "\x05\x01u\x01p", 5, &a), -EPROTO);
	assert_int_equal(parse_exact(auth_cb, "\x02", 1, &a), -EPROTO);
	assert_int_equal(parse_exact(auth_cb, "\x01\x02u\x00\x01p", 6, &a), -EPROTO);
	assert_int_equal(parse_exact(auth_cb, "\x01\x01u\x02p\x00", 6, &a), -EPROTO);
	/* ... and the same lengths without NUL are fine */
	assert_int_equal(parse_exact(auth_cb, "\x01\x02uv\x01p", 6, &a), 6);
	assert_int_equal(parse_exact(auth_cb, "\x01\x01u\x02pq", 6, &a), 6);

	assert_int_equal(socks5_auth_reply(true, out), 2);
	assert_memory_equal(out, "\x01\x00", 2);
	assert_int_equal(socks5_auth_reply(false, out), 2);
	assert_memory_equal(out, "\x01\x01", 2);
}

/* ---------------------------------------------------------------- SOCKS5 requests */

static void test_socks5_request_curl(void **state)
{
	/* curl 7.88.1 -x socks5h:// http://example.com/ */
	static const char name[] = "\x05\x01\x00\x03\x0b"
				   "example.com"
				   "\x00\x50";
	/* curl 7.88.1 -x socks5:// http://127.0.0.1:8080/ */
	static const char v4[] = "\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90";
	/* curl 7.88.1 -x socks5:// http://[2001:db8::1]:443/ */
	static const char v6[] = "\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00"
				 "\x00\x00\x00\x01\x01\xbb";
	struct socks5_request req;

	CHECK_WHOLE(request_cb, name, &req);
	assert_int_equal(req.cmd, SOCKS5_CONNECT);
	assert_name(&req.target, "example.com", 80);
	CHECK_WHOLE(request_cb, v4, &req);
	assert_int_equal(req.cmd, SOCKS5_CONNECT);
	assert_v4(&req.target, "127.0.0.1", 8080);
	CHECK_WHOLE(request_cb, v6, &req);
	assert_int_equal(req.cmd, SOCKS5_CONNECT);
	assert_v6(&req.target, "2001:db8::1", 443);
}

static void test_socks5_request_other(void **state)
{
	static const char udp[] = "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00";
	static const char bind[] = "\x05\x02\x00\x01\xc6\x33\x64\x07\x00\x15";
	static const char literal[] = "\x05\x01\x00\x03\x0c"
				      "198.51.100.7"
				      "\x01\xbb";
	static const char literal6[] = "\x05\x01\x00\x03\x03"
				       "::1"
				       "\x00\x16";
	static const char rsv[] = "\x05\x01\x7f\x01\x0a\x00\x00\x01\x00\x50";
	struct socks5_request req;
	uint8_t longest[4 + 1 + 255 + 2];

	CHECK_WHOLE(request_cb, udp, &req);
	assert_int_equal(req.cmd, SOCKS5_UDP_ASSOCIATE);
	assert_v4(&req.target, "0.0.0.0", 0);
	CHECK_WHOLE(request_cb, bind, &req);
	assert_int_equal(req.cmd, SOCKS5_BIND);
	assert_v4(&req.target, "198.51.100.7", 21);
	/* a literal sent as a name is an address */
	CHECK_WHOLE(request_cb, literal, &req);
	assert_v4(&req.target, "198.51.100.7", 443);
	CHECK_WHOLE(request_cb, literal6, &req);
	assert_v6(&req.target, "::1", 22);
	/* RSV is ignored */
	CHECK_WHOLE(request_cb, rsv, &req);
	assert_v4(&req.target, "10.0.0.1", 80);

	memcpy(longest, "\x05\x01\x00\x03\xff", 5);
	memset(longest + 5, 'n', 255);
	memcpy(longest + 5 + 255, "\xff\xff", 2);
	check_whole(request_cb, longest, sizeof(longest), &req, sizeof(req));
	assert_int_equal(req.target.kind, TARGET_NAME);
	assert_int_equal(strlen(req.target.name), 255);
	assert_int_equal(req.target.port, 65535);
}

static void test_socks5_request_bad(void **state)
{
	struct socks5_request req;

	/* unknown command: -ENOTSUP with REP 7, as soon as CMD is there */
	req.reply = -1;
	assert_int_equal(parse_exact(request_cb, "\x05\x04", 2, &req), -ENOTSUP);
	assert_int_equal(req.reply, SOCKS5_CMD_UNSUPPORTED);
	req.reply = -1;
	assert_int_equal(parse_exact(request_cb, "\x05\x00\x00\x01", 4, &req), -ENOTSUP);
	assert_int_equal(req.reply, SOCKS5_CMD_UNSUPPORTED);
	/* unknown address type: REP 8 */
	req.reply = -1;
	assert_int_equal(parse_exact(request_cb, "\x05\x01\x00\x02", 4, &req), -ENOTSUP);
	assert_int_equal(req.reply, SOCKS5_ATYP_UNSUPPORTED);
	req.reply = -1;
	assert_int_equal(parse_exact(request_cb, "\x05\x01\x00\x05\x00", 5, &req), -ENOTSUP);
	assert_int_equal(req.reply, SOCKS5_ATYP_UNSUPPORTED);
	/* ... while the known ones only need more */
	assert_int_equal(parse_exact(request_cb, "\x05\x01\x00\x04", 4, &req), 0);
	assert_int_equal(parse_exact(request_cb, "\x05\x03\x00\x03", 4, &req), 0);
	/* version */
	assert_int_equal(parse_exact(request_cb, "\x04\x01\x00\x01", 4, &req), -EPROTO);
	/* empty name, NUL / CR / LF inside */
	assert_int_equal(parse_exact(request_cb, "\x05\x01\x00\x03\x00\x00\x50", 7, &req), -EPROTO);
	assert_int_equal(parse_exact(request_cb, "\x05\x01\x00\x03\x00", 5, &req), -EPROTO);
	assert_int_equal(parse_exact(request_cb,
				 "\x05\x01\x00\x03\x03"
				 "a\0b"
				 "\x00\x50",
				 10, &req),
		-EPROTO);
	assert_int_equal(parse_exact(request_cb,
				 "\x05\x01\x00\x03\x03"
				 "a\rb"
				 "\x00\x50",
				 10, &req),
		-EPROTO);
	assert_int_equal(parse_exact(request_cb,
				 "\x05\x01\x00\x03\x03"
				 "a\nb"
				 "\x00\x50",
				 10, &req),
		-EPROTO);
	assert_int_equal(parse_exact(request_cb,
				 "\x05\x01\x00\x03\x03"
				 "a.b"
				 "\x00\x50",
				 10, &req),
		10);
}

static void test_socks5_reply(void **state)
{
	struct sockaddr_in s4 = sin4("192.0.2.5", 1080);
	struct sockaddr_in6 s6 = sin6("2001:db8::7", 443);
	struct sockaddr_storage unspec = {.ss_family = AF_UNSPEC};
	uint8_t out[22];

	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks5_reply_build(SOCKS5_OK, NULL, out), 10);
	assert_memory_equal(out, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
	assert_int_equal(out[10], 0xee);
	assert_int_equal(socks5_reply_build(SOCKS5_REFUSED, (struct sockaddr *)&unspec, out), 10);
	assert_memory_equal(out, "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10);
	assert_int_equal(socks5_reply_build(SOCKS5_OK, (struct sockaddr *)&s4, out), 10);
	assert_memory_equal(out, "\x05\x00\x00\x01\xc0\x00\x02\x05\x04\x38", 10);
	assert_int_equal(socks5_reply_build(SOCKS5_HOST_UNREACH, (struct sockaddr *)&s6, out), 22);
	assert_memory_equal(out,
		"\x05\x04\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"
		"\x01\xbb",
		22);
	assert_string_equal(socks5_rep_name[SOCKS5_CMD_UNSUPPORTED], "command not supported");
}

/* ---------------------------------------------------------------- UDP ASSOCIATE */

static void test_socks5_udp(void **state)
{
	static const char v4[] = "\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35"
				 "DATA";
	static const char v6[] = "\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
				 "\x00\x00\x00\x01\x00\x35";
	static const char name[] = "\x00\x00\x00\x03\x07"
				   "dns.lab"
				   "\x00\x35"
				   "q";
	struct proxy_target t;
	struct sockaddr_in6 s6 = sin6("2001:db8::53", 5353);
	struct sockaddr_in s4 = sin4("203.0.113.9", 53);
	uint8_t out[22];

	assert_int_equal(parse_exact(udp_cb, v4, sizeof(v4) - 1, &t), 10);
	assert_v4(&t, "127.0.0.1", 53);
	assert_int_equal(parse_exact(udp_cb, v6, sizeof(v6) - 1, &t), 22);
	assert_v6(&t, "::1", 53);
	assert_int_equal(parse_exact(udp_cb, name, sizeof(name) - 1, &t), 14);
	assert_name(&t, "dns.lab", 53);
	/* a datagram is whole: a cut header is malformed, not "need more" */
	for (size_t k = 0; k < 10; k++)
		assert_int_equal(parse_exact(udp_cb, v4, k, &t), -EPROTO);
	for (size_t k = 0; k < 22; k++)
		assert_int_equal(parse_exact(udp_cb, v6, k, &t), -EPROTO);
	for (size_t k = 0; k < 14; k++)
		assert_int_equal(parse_exact(udp_cb, name, k, &t), -EPROTO);
	/* fragments and unknown address types are not supported */
	assert_int_equal(
		parse_exact(udp_cb, "\x00\x00\x01\x01\x7f\x00\x00\x01\x00\x35", 10, &t), -ENOTSUP);
	assert_int_equal(
		parse_exact(udp_cb, "\x00\x00\x00\x02\x7f\x00\x00\x01\x00\x35", 10, &t), -ENOTSUP);
	assert_int_equal(parse_exact(udp_cb, "\x00\x00\x00\x03\x00\x00\x35", 7, &t), -EPROTO);

	assert_int_equal(socks5_udp_header_build(NULL, out), 10);
	assert_memory_equal(out, "\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
	assert_int_equal(socks5_udp_header_build((struct sockaddr *)&s4, out), 10);
	assert_memory_equal(out, "\x00\x00\x00\x01\xcb\x00\x71\x09\x00\x35", 10);
	assert_int_equal(socks5_udp_header_build((struct sockaddr *)&s6, out), 22);
	assert_memory_equal(out, "\x00\x00\x00\x04\x20\x01\x0d\xb8", 8);
	/* what we build parses back to the same address */
	assert_int_equal(parse_exact(udp_cb, out, 22, &t), 22);
	assert_v6(&t, "2001:db8::53", 5353);
}

/* ---------------------------------------------------------------- SOCKS4 and 4a */

static void test_socks4_curl(void **state)
{
	/* curl 7.88.1 -x socks4a:// -U alice: http://example.com/ */
	static const char s4a[] = "\x04\x01\x00\x50\x00\x00\x00\x01"
				  "alice\0"
				  "example.com";
	/* curl 7.88.1 -x socks4:// http://127.0.0.1:8080/ */
	static const char s4[] = "\x04\x01\x1f\x90\x7f\x00\x00\x01";
	struct socks4_request req;

	/* sizeof includes the final NUL, which both messages end with */
	check_whole(socks4_cb, s4a, sizeof(s4a), &req, sizeof(req));
	assert_int_equal(req.cmd, SOCKS4_CONNECT);
	assert_string_equal(req.user, "alice");
	assert_name(&req.target, "example.com", 80);
	check_whole(socks4_cb, s4, sizeof(s4), &req, sizeof(req));
	assert_int_equal(req.cmd, SOCKS4_CONNECT);
	assert_string_equal(req.user, "");
	assert_v4(&req.target, "127.0.0.1", 8080);
}

static void test_socks4_other(void **state)
{
	static const char bind[] = "\x04\x02\x00\x15\xc6\x33\x64\x07"
				   "u";
	static const char zero[] = "\x04\x01\x00\x50\x00\x00\x00\x00";
	static const char lit6[] = "\x04\x01\x01\xbb\x00\x00\x00\xff"
				   "\0"
				   "2001:db8::2";
	struct socks4_request req;
	uint8_t longest[8 + 256 + 256];

	check_whole(socks4_cb, bind, sizeof(bind), &req, sizeof(req));
	assert_int_equal(req.cmd, SOCKS4_BIND);
	assert_string_equal(req.user, "u");
	assert_v4(&req.target, "198.51.100.7", 21);
	/* 0.0.0.0 is an address, not SOCKS4a */
	check_whole(socks4_cb, zero, sizeof(zero), &req, sizeof(req));
	assert_v4(&req.target, "0.0.0.0", 80);
	check_whole(socks4_cb, lit6, sizeof(lit6), &req, sizeof(req));
	assert_v6(&req.target, "2001:db8::2", 443);

	/* user and host of 255 bytes each */
	memcpy(longest, "\x04\x01\x00\x50\x00\x00\x00\x01", 8);
	memset(longest + 8, 'u', 255);
	longest[8 + 255] = 0;
	memset(longest + 8 + 256, 'h', 255);
	longest[8 + 256 + 255] = 0;
	check_whole(socks4_cb, longest, sizeof(longest), &req, sizeof(req));
	assert_int_equal(strlen(req.user), 255);
	assert_int_equal(strlen(req.target.name), 255);
	/* one more byte in the host: too long */
	longest[8 + 256 + 255] = 'h';
	assert_int_equal(parse_exact(socks4_cb, longest, sizeof(longest), &req), -E2BIG);
	assert_int_equal(parse_exact(socks4_cb, longest, sizeof(longest) - 1, &req), 0);
	/* one more byte in the user id: too long, as soon as the 256th byte is not NUL */
	memset(longest + 8, 'u', 256);
	assert_int_equal(parse_exact(socks4_cb, longest, 8 + 256, &req), -E2BIG);
	assert_int_equal(parse_exact(socks4_cb, longest, 8 + 255, &req), 0);

	/* malformed */
	assert_int_equal(parse_exact(socks4_cb, "\x05\x01", 2, &req), -EPROTO);
	assert_int_equal(parse_exact(socks4_cb, "\x04\x03", 2, &req), -ENOTSUP);
	assert_int_equal(parse_exact(socks4_cb, "\x04\x00", 2, &req), -ENOTSUP);
	/* empty 4a host, CR / LF in it */
	assert_int_equal(
		parse_exact(socks4_cb, "\x04\x01\x00\x50\x00\x00\x00\x01\0\0", 10, &req), -EPROTO);
	assert_int_equal(
		parse_exact(socks4_cb, "\x04\x01\x00\x50\x00\x00\x00\x01\0a\rb\0", 13, &req),
		-EPROTO);
	assert_int_equal(
		parse_exact(socks4_cb, "\x04\x01\x00\x50\x00\x00\x00\x01\0a\nb\0", 13, &req),
		-EPROTO);
	assert_int_equal(
		parse_exact(socks4_cb, "\x04\x01\x00\x50\x00\x00\x00\x01\0a.b\0", 13, &req), 13);
}

static void test_socks4_reply(void **state)
{
	struct sockaddr_in s4 = sin4("192.0.2.5", 1080);
	uint8_t out[8];

	assert_int_equal(socks4_reply_build(SOCKS4_GRANTED, &s4, out), 8);
	assert_memory_equal(out, "\x00\x5a\x04\x38\xc0\x00\x02\x05", 8);
	assert_int_equal(socks4_reply_build(SOCKS4_REJECTED, NULL, out), 8);
	assert_memory_equal(out, "\x00\x5b\x00\x00\x00\x00\x00\x00", 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_target_str),
		cmocka_unit_test(test_target_set_host),
		cmocka_unit_test(test_socks5_greeting),
		cmocka_unit_test(test_socks5_auth),
		cmocka_unit_test(test_socks5_request_curl),
		cmocka_unit_test(test_socks5_request_other),
		cmocka_unit_test(test_socks5_request_bad),
		cmocka_unit_test(test_socks5_reply),
		cmocka_unit_test(test_socks5_udp),
		cmocka_unit_test(test_socks4_curl),
		cmocka_unit_test(test_socks4_other),
		cmocka_unit_test(test_socks4_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
