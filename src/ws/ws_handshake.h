/*
 * ws_handshake.h - the WebSocket opening handshake (RFC 6455 section 4) and ws:// URLs, as
 * pure code: no sockets, no logging, no allocation.  ws_client.c and api_ws_accept() use
 * it; the fuzzer drives ws_handshake_response() alone.
 */
#ifndef EGRESS_WS_HANDSHAKE_H
#define EGRESS_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_KEY_LEN 24	   /* Sec-WebSocket-Key: base64 of 16 random bytes */
#define WS_ACCEPT_LEN 28   /* Sec-WebSocket-Accept: base64 of a SHA-1 */
#define WS_HEAD_MAX 16384  /* a handshake response's head, in bytes */
#define WS_HOST_MAX 255
#define WS_PATH_MAX 2048

struct ws_url {
	bool tls;			/* wss:// */
	char host[WS_HOST_MAX + 1];	/* without the brackets of an IPv6 literal */
	bool host_v6;			/* it had them */
	uint16_t port;			/* 80 / 443 unless given */
	char path[WS_PATH_MAX + 1];	/* "/" and what follows, query included */
};

/* Parse a ws:// or wss:// URL.  0, or -EINVAL with *why set (a static phrase). */
int ws_url_parse(const char *url, struct ws_url *ret, const char **why);

/* A fresh Sec-WebSocket-Key (random), NUL-terminated. */
void ws_handshake_key(char ret[WS_KEY_LEN + 1]);

/* Sec-WebSocket-Accept for key (RFC 6455 4.2.2: base64(SHA-1(key + GUID))). */
void ws_handshake_accept(const char *key, char ret[WS_ACCEPT_LEN + 1]);

/*
 * A server's check of an upgrade request's headers (each borrowed, NULL when missing):
 * 0 (upgrade), 400 (not a WebSocket handshake, or a bad key), 426 (a version other than
 * 13: answer with "Sec-WebSocket-Version: 13").  *why says what is wrong.
 */
int ws_handshake_check(bool get, const char *upgrade, const char *connection,
	const char *version, const char *key, const char **why);

/*
 * Parse the server's response head in p[0..n) (borrowed, need not be NUL-terminated) to a
 * request made with key:
 *   0        need more bytes;
 *   >0       the head's length: a 101 with Upgrade: websocket, Connection: upgrade and the
 *            Sec-WebSocket-Accept of key; what follows it is WebSocket frames;
 *   -EPROTO  malformed, or not the upgrade (*why says how);
 *   -EACCES  a well-formed answer other than 101 (*status_ret is its status);
 *   -E2BIG   no end of head within WS_HEAD_MAX bytes.
 * *status_ret is the status once the status line is read, else 0.
 */
ssize_t ws_handshake_response(const char *p, size_t n, const char *key, int *status_ret,
	const char **why);

/* Does the comma-separated list value name token (case-insensitive)?  value may be NULL. */
bool ws_token_list_has(const char *value, size_t len, const char *token);

#endif
