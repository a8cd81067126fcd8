/*
 * socks.c - SOCKS4/4a and SOCKS5 codecs: parse what a client sends, build what we answer.
 *
 * Must not trust the client: every read is checked against n before it is made, names are
 * bounded by the one-byte lengths of the protocol (SOCKS4a by 255 bytes) and nothing is
 * allocated.  No sockets, no logging above debug (none at all here): the caller decides what
 * to answer and what to count.  The layouts are those of RFC 1928 (SOCKS5), RFC 1929
 * (username/password) and the SOCKS4 and SOCKS4a protocol notes (Ying-Da Lee).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "socks.h"
#include "util.h"

const char *const proxy_proto_name[_PROXY_PROTO_MAX] = {
	[PROXY_PROTO_SOCKS4] = "socks4",
	[PROXY_PROTO_SOCKS5] = "socks5",
	[PROXY_PROTO_HTTP] = "http",
};

const char *const proxy_target_kind_name[_TARGET_KIND_MAX] = {
	[TARGET_ADDR] = "addr",
	[TARGET_NAME] = "name",
};

const char *const socks5_rep_name[_SOCKS5_REP_MAX] = {
	[SOCKS5_OK] = "succeeded",
	[SOCKS5_FAILURE] = "general failure",
	[SOCKS5_NOT_ALLOWED] = "not allowed by ruleset",
	[SOCKS5_NET_UNREACH] = "network unreachable",
	[SOCKS5_HOST_UNREACH] = "host unreachable",
	[SOCKS5_REFUSED] = "connection refused",
	[SOCKS5_TTL_EXPIRED] = "TTL expired",
	[SOCKS5_CMD_UNSUPPORTED] = "command not supported",
	[SOCKS5_ATYP_UNSUPPORTED] = "address type not supported",
};

int proxy_detect(uint8_t first)
{
	if (first == SOCKS4_VERSION)
		return PROXY_PROTO_SOCKS4;
	if (first == SOCKS5_VERSION)
		return PROXY_PROTO_SOCKS5;
	if (first >= 'A' && first <= 'Z')
		return PROXY_PROTO_HTTP;
	return -EPROTO;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

char *proxy_target_str(const struct proxy_target *t, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (!len)
		return buf;
	if (t->kind == TARGET_NAME) {
		snprintf(buf, len, "%s:%u", t->name, t->port);
	} else if (t->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, t->port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;
		if (t->addr.ss_family == AF_INET)
			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, t->port);
	}
	return buf;
}

static void target_set_v4(struct proxy_target *t, const uint8_t a[4], uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;

	memset(t, 0, sizeof(*t));
	t->kind = TARGET_ADDR;
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, a, 4);
	s4->sin_port = htons(port);
	t->port = port;
}

static void target_set_v6(struct proxy_target *t, const uint8_t a[16], uint16_t port)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

	memset(t, 0, sizeof(*t));
	t->kind = TARGET_ADDR;
	s6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, a, 16);
	s6->sin6_port = htons(port);
	t->port = port;
}

int proxy_target_set_host(struct proxy_target *t, const char *host, size_t len, uint16_t port)
{
	uint8_t a[16];

	if (!len)
		return -EPROTO;
	if (len > sizeof(t->name) - 1)
		return -E2BIG;
	if (memchr(host, '\0', len) || memchr(host, '\r', len) || memchr(host, '\n', len))
		return -EPROTO;
	memset(t, 0, sizeof(*t));
	memcpy(t->name, host, len);
	t->name[len] = '\0';
	if (inet_pton(AF_INET, t->name, a) == 1) {
		target_set_v4(t, a, port);
	} else if (inet_pton(AF_INET6, t->name, a) == 1) {
		target_set_v6(t, a, port);
	} else {
		t->kind = TARGET_NAME;
		t->port = port;
	}
	return 0;
}

/* ------------------------------------------------------------------ SOCKS5 */

/* RFC 1928 section 3: VER NMETHODS METHODS */
ssize_t socks5_greeting_parse(const uint8_t *p, size_t n, struct socks5_greeting *ret)
{
	size_t nmethods;

	if (n < 1)
		return 0;
	if (p[0] != SOCKS5_VERSION)
		return -EPROTO;
	if (n < 2)
		return 0;
	nmethods = p[1];
	if (!nmethods)
		return -EPROTO;
	if (n < 2 + nmethods)
		return 0;
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < nmethods; i++) {
		if (p[2 + i] == SOCKS5_METHOD_NONE)
			ret->none = true;
		else if (p[2 + i] == SOCKS5_METHOD_USERPASS)
			ret->userpass = true;
	}
	return (ssize_t)(2 + nmethods);
}

size_t socks5_method_reply(uint8_t method, uint8_t out[2])
{
	out[0] = SOCKS5_VERSION;
	out[1] = method;
	return 2;
}

/* RFC 1929 section 2: VER ULEN UNAME PLEN PASSWD */
ssize_t socks5_auth_parse(const uint8_t *p, size_t n, struct socks5_auth *ret)
{
	size_t ulen, plen;

	if (n < 1)
		return 0;
	if (p[0] != 0x01)
		return -EPROTO;
	if (n < 2)
		return 0;
	ulen = p[1];
	if (n < 2 + ulen + 1)
		return 0;
	plen = p[2 + ulen];
	if (n < 3 + ulen + plen)
		return 0;
	if (memchr(p + 2, '\0', ulen) || memchr(p + 3 + ulen, '\0', plen))
		return -EPROTO;
	memcpy(ret->user, p + 2, ulen);
	ret->user[ulen] = '\0';
	memcpy(ret->pass, p + 3 + ulen, plen);
	ret->pass[plen] = '\0';
	return (ssize_t)(3 + ulen + plen);
}

size_t socks5_auth_reply(bool ok, uint8_t out[2])
{
	out[0] = 0x01;
	out[1] = ok ? 0x00 : 0x01;
	return 2;
}

/*
 * ATYP DST.ADDR DST.PORT at p (n bytes left), shared by requests (section 4) and UDP
 * headers (section 7).  Returns its length, 0 if short, -ENOTSUP for an unknown ATYP,
 * -EPROTO/-E2BIG for a bad name.
 */
static ssize_t socks5_addr_parse(const uint8_t *p, size_t n, struct proxy_target *ret)
{
	size_t len;
	int r;

	if (n < 1)
		return 0;
	switch (p[0]) {
	case SOCKS5_ATYP_IPV4:
		if (n < 1 + 4 + 2)
			return 0;
		target_set_v4(ret, p + 1, get16(p + 5));
		return 1 + 4 + 2;
	case SOCKS5_ATYP_IPV6:
		if (n < 1 + 16 + 2)
			return 0;
		target_set_v6(ret, p + 1, get16(p + 17));
		return 1 + 16 + 2;
	case SOCKS5_ATYP_NAME:
		if (n < 2)
			return 0;
		len = p[1];
		if (!len)
			return -EPROTO;
		if (n < 2 + len + 2)
			return 0;
		r = proxy_target_set_host(ret, (const char *)p + 2, len, get16(p + 2 + len));
		if (r < 0)
			return r;
		return (ssize_t)(2 + len + 2);
	default:
		return -ENOTSUP;
	}
}

/* RFC 1928 section 4: VER CMD RSV ATYP DST.ADDR DST.PORT */
ssize_t socks5_request_parse(const uint8_t *p, size_t n, struct socks5_request *ret)
{
	ssize_t r;

	if (n < 1)
		return 0;
	if (p[0] != SOCKS5_VERSION)
		return -EPROTO;
	if (n < 2)
		return 0;
	if (p[1] < SOCKS5_CONNECT || p[1] > SOCKS5_UDP_ASSOCIATE) {
		ret->reply = SOCKS5_CMD_UNSUPPORTED;
		return -ENOTSUP;
	}
	if (n < 3)
		return 0;
	r = socks5_addr_parse(p + 3, n - 3, &ret->target);
	if (r == -ENOTSUP)
		ret->reply = SOCKS5_ATYP_UNSUPPORTED;
	if (r <= 0)
		return r;
	ret->cmd = p[1];
	return 3 + r;
}

/* ATYP BND.ADDR BND.PORT of a, NULL or AF_UNSPEC meaning 0.0.0.0:0; returns its length. */
static size_t socks5_addr_build(const struct sockaddr *a, uint8_t *out)
{
	if (a && a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
		out[0] = SOCKS5_ATYP_IPV6;
		memcpy(out + 1, &s6->sin6_addr, 16);
		memcpy(out + 17, &s6->sin6_port, 2);
		return 1 + 16 + 2;
	}
	out[0] = SOCKS5_ATYP_IPV4;
	if (a && a->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
		memcpy(out + 1, &s4->sin_addr, 4);
		memcpy(out + 5, &s4->sin_port, 2);
	} else {
		memset(out + 1, 0, 6);
	}
	return 1 + 4 + 2;
}

/* RFC 1928 section 6: VER REP RSV ATYP BND.ADDR BND.PORT */
size_t socks5_reply_build(uint8_t rep, const struct sockaddr *bound, uint8_t out[22])
{
	out[0] = SOCKS5_VERSION;
	out[1] = rep;
	out[2] = 0;
	return 3 + socks5_addr_build(bound, out + 3);
}

/* RFC 1928 section 7: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA */
ssize_t socks5_udp_parse(const uint8_t *p, size_t n, struct proxy_target *ret)
{
	ssize_t r;

	if (n < 4)
		return -EPROTO;
	if (p[2] != 0)
		return -ENOTSUP; /* fragment reassembly is optional; we drop them */
	r = socks5_addr_parse(p + 3, n - 3, ret);
	if (r == 0)
		return -EPROTO;
	if (r < 0)
		return r;
	return 3 + r;
}

size_t socks5_udp_header_build(const struct sockaddr *from, uint8_t out[22])
{
	out[0] = 0;
	out[1] = 0;
	out[2] = 0;
	return 3 + socks5_addr_build(from, out + 3);
}

/* ------------------------------------------------------------------ SOCKS4 and 4a */

/*
 * A NUL-terminated field of at most 255 bytes at p (n bytes left).  Returns its length
 * including the NUL, 0 if the NUL has not arrived yet, -E2BIG if 255 bytes came without one.
 */
static ssize_t socks4_field(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, '\0', MIN(n, (size_t)256));

	if (nul)
		return nul - p + 1;
	return n >= 256 ? -E2BIG : 0;
}

/* VN CD DSTPORT DSTIP USERID NUL [HOST NUL] */
ssize_t socks4_request_parse(const uint8_t *p, size_t n, struct socks4_request *ret)
{
	ssize_t ulen, hlen = 0;
	uint16_t port;
	int r;

	if (n < 1)
		return 0;
	if (p[0] != SOCKS4_VERSION)
		return -EPROTO;
	if (n < 2)
		return 0;
	if (p[1] != SOCKS4_CONNECT && p[1] != SOCKS4_BIND)
		return -ENOTSUP;
	if (n < 8)
		return 0;
	ulen = socks4_field(p + 8, n - 8);
	if (ulen <= 0)
		return ulen;
	port = get16(p + 2);
	if (p[4] == 0 && p[5] == 0 && p[6] == 0 && p[7] != 0) {
		/* SOCKS4a: the name follows the user id */
		hlen = socks4_field(p + 8 + ulen, n - 8 - (size_t)ulen);
		if (hlen <= 0)
			return hlen;
		r = proxy_target_set_host(
			&ret->target, (const char *)p + 8 + ulen, (size_t)hlen - 1, port);
		if (r < 0)
			return r;
	} else {
		target_set_v4(&ret->target, p + 4, port);
	}
	ret->cmd = p[1];
	memcpy(ret->user, p + 8, (size_t)ulen);
	return 8 + ulen + hlen;
}

size_t socks4_reply_build(uint8_t code, const struct sockaddr_in *bound, uint8_t out[8])
{
	out[0] = 0;
	out[1] = code;
	if (bound) {
		memcpy(out + 2, &bound->sin_port, 2);
		memcpy(out + 4, &bound->sin_addr, 4);
	} else {
		memset(out + 2, 0, 6);
	}
	return 8;
}
