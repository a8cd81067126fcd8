/*
 * ws_handshake.c - the WebSocket opening handshake (RFC 6455 section 4) and ws:// URLs.
 *
 * Pure code: no sockets, no logging, no allocation; never reads past the n bytes it is
 * given.  The client's side (ws_client.c) makes a key and checks the server's answer; the
 * server's side (api_ws_accept()) checks the request's headers and computes the accept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "util.h"
#include "ws_handshake.h"

/* RFC 6455 1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_url_parse(const char *url, struct ws_url *ret, const char **why)
{
	struct ws_url u = {0};
	const char *p, *host, *host_end, *end;
	size_t len;

	if (!url || !*url) {
		*why = "expected a ws:// or wss:// URL, got nothing";
		return -EINVAL;
	}
	if (strncasecmp(url, "ws://", 5) == 0) {
		p = url + 5;
		u.port = 80;
	} else if (strncasecmp(url, "wss://", 6) == 0) {
		p = url + 6;
		u.tls = true;
		u.port = 443;
	} else {
		*why = "expected a URL starting with ws:// or wss://";
		return -EINVAL;
	}
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p))) {
		*why = "credentials in the URL are not supported (use a token)";
		return -EINVAL;
	}
	if (*p == '[') {
		host = p + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end) {
			*why = "expected ] after an IPv6 address";
			return -EINVAL;
		}
		u.host_v6 = true;
		p = host_end + 1;
	} else {
		host = p;
		host_end = p + strcspn(p, ":/?#");
		p = host_end;
	}
	len = (size_t)(host_end - host);
	if (!len || len > WS_HOST_MAX) {
		*why = len ? "host name too long" : "expected a host";
		return -EINVAL;
	}
	memcpy(u.host, host, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)u.host[i];

		if (c <= ' ' || c >= 127 || strchr("\"<>\\^`{|}%", c)) {
			*why = "bad character in the host";
			return -EINVAL;
		}
	}
	if (u.host_v6) {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, u.host, &a6) != 1) {
			*why = "expected an IPv6 address between [ and ]";
			return -EINVAL;
		}
	}
	if (*p == ':') {
		char *e;
		long port;

		p++;
		if (*p < '0' || *p > '9') {
			*why = "expected a port number (1-65535) after :";
			return -EINVAL;
		}
		errno = 0;
		port = strtol(p, &e, 10);
		if (errno || port < 1 || port > 65535 || (*e && !strchr("/?#", *e))) {
			*why = "expected a port number (1-65535) after :";
			return -EINVAL;
		}
		u.port = (uint16_t)port;
		p = e;
	}
	if (*p && *p != '/' && *p != '?' && *p != '#') {
		*why = "expected :PORT, / or the end after the host";
		return -EINVAL;
	}
	if (strchr(p, '#')) {
		*why = "a WebSocket URL has no fragment (#)";
		return -EINVAL;
	}
	if (*p == '?')
		len = (size_t)snprintf(u.path, sizeof(u.path), "/%s", p);
	else
		len = (size_t)snprintf(u.path, sizeof(u.path), "%s", *p ? p : "/");
	if (len >= sizeof(u.path)) {
		*why = "path too long";
		return -EINVAL;
	}
	for (const char *c = u.path; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 127) {
			*why = "bad character in the path (spaces and controls must be %-encoded)";
			return -EINVAL;
		}
	*ret = u;
	return 0;
}

void ws_handshake_key(char ret[WS_KEY_LEN + 1])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("ws: no random bytes for a handshake key");
	EVP_EncodeBlock((unsigned char *)ret, raw, sizeof(raw));
}

void ws_handshake_accept(const char *key, char ret[WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
		EVP_DigestUpdate(ctx, key, strlen(key)) != 1 ||
		EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) != 1 ||
		EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 20)
		fatalx("ws: SHA-1 failed");
	EVP_MD_CTX_free(ctx);
	EVP_EncodeBlock((unsigned char *)ret, md, 20);
}

bool ws_token_list_has(const char *value, size_t len, const char *token)
{
	size_t tlen = strlen(token);
	size_t i = 0;

	if (!value)
		return false;
	while (i < len) {
		size_t start, stop;

		while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		start = i;
		while (i < len && value[i] != ',')
			i++;
		stop = i;
		while (stop > start && (value[stop - 1] == ' ' || value[stop - 1] == '\t'))
			stop--;
		if (stop - start == tlen && strncasecmp(value + start, token, tlen) == 0)
			return true;
	}
	return false;
}

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '+' || c == '/';
}

int ws_handshake_check(bool get, const char *upgrade, const char *connection,
	const char *version, const char *key, const char **why)
{
	if (!get) {
		*why = "a WebSocket handshake is a GET";
		return 400;
	}
	if (!upgrade || !ws_token_list_has(upgrade, strlen(upgrade), "websocket")) {
		*why = "expected Upgrade: websocket";
		return 426;
	}
	if (!connection || !ws_token_list_has(connection, strlen(connection), "upgrade")) {
		*why = "expected Connection: Upgrade";
		return 400;
	}
	if (!version || strcmp(version, "13") != 0) {
		*why = "expected Sec-WebSocket-Version: 13";
		return 426;
	}
	/* 16 bytes in base64: 22 characters, the last of them holding 2 bits, then "==" */
	if (!key || strlen(key) != WS_KEY_LEN || strcmp(key + 22, "==") != 0 ||
		!strchr("AQgw", key[21])) {
		*why = "expected a Sec-WebSocket-Key of 16 bytes in base64";
		return 400;
	}
	for (int i = 0; i < 22; i++)
		if (!is_b64(key[i])) {
			*why = "expected a Sec-WebSocket-Key of 16 bytes in base64";
			return 400;
		}
	return 0;
}

/* The end of the head in p[0..n): the offset past its blank line, or 0. */
static size_t head_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

ssize_t ws_handshake_response(const char *p, size_t n, const char *key, int *status_ret,
	const char **why)
{
	char accept[WS_ACCEPT_LEN + 1];
	bool upgrade = false, connection = false, accepted = false;
	size_t end = head_end(p, n < WS_HEAD_MAX ? n : WS_HEAD_MAX), i = 0;
	int status;

	*status_ret = 0;
	if (!end) {
		if (n >= WS_HEAD_MAX) {
			*why = "response head too long";
			return -E2BIG;
		}
		return 0;
	}
	/* RFC 9112 4: HTTP-version SP 3DIGIT SP [reason] */
	if (end < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
		p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
		p[11] < '0' || p[11] > '9') {
		*why = "not an HTTP/1.x status line";
		return -EPROTO;
	}
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	*status_ret = status;
	ws_handshake_accept(key, accept);
	while (i < end && p[i] != '\n')
		i++;
	for (i++; i < end;) {
		size_t line = i, eol, colon, vs, ve;

		while (i < end && p[i] != '\n')
			i++;
		eol = i++;
		if (eol > line && p[eol - 1] == '\r')
			eol--;
		if (eol == line)
			break; /* the blank line */
		for (size_t k = line; k < eol; k++)
			if (p[k] == '\0' || p[k] == '\r') {
				*why = "NUL or bare CR in a header";
				return -EPROTO;
			}
		if (p[line] == ' ' || p[line] == '\t') {
			*why = "obsolete line folding in a header";
			return -EPROTO;
		}
		colon = line;
		while (colon < eol && p[colon] != ':')
			colon++;
		if (colon == eol || colon == line || p[colon - 1] == ' ' || p[colon - 1] == '\t') {
			*why = "malformed header line";
			return -EPROTO;
		}
		vs = colon + 1;
		while (vs < eol && (p[vs] == ' ' || p[vs] == '\t'))
			vs++;
		ve = eol;
		while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
			ve--;
#define NAME_IS(s) (colon - line == sizeof(s) - 1 && strncasecmp(p + line, s, sizeof(s) - 1) == 0)
		if (NAME_IS("Upgrade"))
			upgrade = upgrade || ws_token_list_has(p + vs, ve - vs, "websocket");
		else if (NAME_IS("Connection"))
			connection = connection || ws_token_list_has(p + vs, ve - vs, "upgrade");
		else if (NAME_IS("Sec-WebSocket-Accept")) {
			if (accepted || ve - vs != WS_ACCEPT_LEN ||
				memcmp(p + vs, accept, WS_ACCEPT_LEN) != 0) {
				*why = "wrong Sec-WebSocket-Accept";
				return -EPROTO;
			}
			accepted = true;
		} else if (NAME_IS("Sec-WebSocket-Extensions") || NAME_IS("Sec-WebSocket-Protocol")) {
			/* RFC 6455 4.1: none was asked for, so none may be answered */
			*why = "an extension or subprotocol that was not asked for";
			return -EPROTO;
		}
#undef NAME_IS
	}
	if (status != 101) {
		*why = "not upgraded";
		return -EACCES;
	}
	if (!upgrade || !connection || !accepted) {
		*why = !upgrade ? "101 without Upgrade: websocket" :
			!connection ? "101 without Connection: upgrade" :
				      "101 without Sec-WebSocket-Accept";
		return -EPROTO;
	}
	return (ssize_t)end;
}
