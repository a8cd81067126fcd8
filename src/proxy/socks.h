/*
 * socks.h - SOCKS4, SOCKS4a and SOCKS5 message codecs (RFC 1928, RFC 1929, the SOCKS4 and
 * SOCKS4a protocol notes) and the target type the proxy protocols share.
 *
 * Pure code: no sockets, no logging, no allocation, no global state.  Every parser is
 * incremental: given the bytes received so far it returns 0 (need more bytes), >0 (the length
 * of one complete message, which it consumed) or -errno for malformed input:
 *   -EPROTO   malformed,
 *   -E2BIG    a user name or host name longer than 255 bytes,
 *   -ENOTSUP  a command or address type the protocol has a reply code for.
 * A parser never reads past n, and once it has returned 0 for a prefix of a valid message it
 * keeps returning 0 until the whole message is there.  Outputs are only meaningful after a
 * return > 0 (or the -ENOTSUP of socks5_request_parse(), which sets ->reply).
 */
#ifndef EGRESS_SOCKS_H
#define EGRESS_SOCKS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum proxy_proto {
	PROXY_PROTO_SOCKS4,
	PROXY_PROTO_SOCKS5,
	PROXY_PROTO_HTTP,
	_PROXY_PROTO_MAX,
};

extern const char *const proxy_proto_name[_PROXY_PROTO_MAX]; /* "socks4", "socks5", "http" */

/* From the first byte: 0x04 SOCKS4/4a, 0x05 SOCKS5, uppercase ASCII HTTP, else -EPROTO. */
int proxy_detect(uint8_t first);

enum proxy_target_kind {
	TARGET_ADDR,
	TARGET_NAME,
	_TARGET_KIND_MAX,
};

extern const char *const proxy_target_kind_name[_TARGET_KIND_MAX]; /* "addr", "name" */

/*
 * Where a client wants to go.  A host name that is an IPv4 or IPv6 literal ("198.51.100.1",
 * "2001:db8::1") is turned into TARGET_ADDR by every parser, so TARGET_NAME always needs a
 * lookup.
 */
struct proxy_target {
	int kind;		      /* enum proxy_target_kind */
	struct sockaddr_storage addr; /* TARGET_ADDR: family, address, port (net order) */
	char name[256];		      /* TARGET_NAME: NUL-terminated, no CR or LF */
	uint16_t port;		      /* host order, both kinds */
};

/* Longest proxy_target_str(): "[" IPv6 "]:" port, or a 255-byte name ":" port, and the NUL. */
#define PROXY_TARGET_STRLEN (255 + 1 + 5 + 1)

/*
 * "[2001:db8::1]:443", "example.com:80", "198.51.100.1:80" - for logs.  Writes into buf (the
 * caller's, len bytes, truncated if short; PROXY_TARGET_STRLEN is always enough); returns buf.
 */
char *proxy_target_str(const struct proxy_target *t, char *buf, size_t len);

/* ------------------------------------------------------------------ SOCKS5 (RFC 1928) */

#define SOCKS5_VERSION	       0x05
#define SOCKS5_METHOD_NONE     0x00
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_REFUSED  0xff

/* Methods the client offers (others are ignored). */
struct socks5_greeting {
	bool none, userpass;
};

/* VER NMETHODS METHODS (section 3).  NMETHODS 0 is -EPROTO. */
ssize_t socks5_greeting_parse(const uint8_t *p, size_t n, struct socks5_greeting *ret);
/* VER METHOD into out; returns 2. */
size_t socks5_method_reply(uint8_t method, uint8_t out[2]);

/*
 * RFC 1929 username/password sub-negotiation: VER=0x01 ULEN UNAME PLEN PASSWD.  Empty fields
 * are accepted (the comparison refuses them); a NUL inside either is -EPROTO, so that the
 * NUL-terminated strings are exactly what the client sent.
 */
struct socks5_auth {
	char user[256], pass[256];
};

ssize_t socks5_auth_parse(const uint8_t *p, size_t n, struct socks5_auth *ret);
/* VER=0x01 STATUS (0 success, 1 failure) into out; returns 2. */
size_t socks5_auth_reply(bool ok, uint8_t out[2]);

enum socks5_cmd {
	SOCKS5_CONNECT = 1,
	SOCKS5_BIND = 2,
	SOCKS5_UDP_ASSOCIATE = 3,
};

/* REP codes of RFC 1928 section 6 */
enum socks5_rep {
	SOCKS5_OK = 0,
	SOCKS5_FAILURE = 1,
	SOCKS5_NOT_ALLOWED = 2,
	SOCKS5_NET_UNREACH = 3,
	SOCKS5_HOST_UNREACH = 4,
	SOCKS5_REFUSED = 5,
	SOCKS5_TTL_EXPIRED = 6,
	SOCKS5_CMD_UNSUPPORTED = 7,
	SOCKS5_ATYP_UNSUPPORTED = 8,
	_SOCKS5_REP_MAX,
};

extern const char *const socks5_rep_name[_SOCKS5_REP_MAX];

#define SOCKS5_ATYP_IPV4 0x01
#define SOCKS5_ATYP_NAME 0x03
#define SOCKS5_ATYP_IPV6 0x04

struct socks5_request {
	int cmd; /* enum socks5_cmd */
	struct proxy_target target;
	int reply; /* on -ENOTSUP: the REP to send (7 or 8) */
};

/*
 * VER CMD RSV ATYP DST.ADDR DST.PORT (section 4).  A command other than 1..3 or an address
 * type other than 1, 3, 4 is -ENOTSUP with ret->reply set; a domain name of length 0 or with
 * NUL, CR or LF is -EPROTO.  RSV is ignored.  Port 0 and 0.0.0.0 are accepted (UDP ASSOCIATE
 * sends them when the client does not know its address yet).
 */
ssize_t socks5_request_parse(const uint8_t *p, size_t n, struct socks5_request *ret);

/*
 * VER REP RSV ATYP BND.ADDR BND.PORT; bound (borrowed) NULL or AF_UNSPEC: 0.0.0.0:0.
 * Returns the length: 10 for IPv4, 22 for IPv6.
 */
size_t socks5_reply_build(uint8_t rep, const struct sockaddr *bound, uint8_t out[22]);

/*
 * UDP ASSOCIATE datagrams (section 7): RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA.
 * A datagram is whole, so a short one is -EPROTO, not 0.  Returns the header length (>0,
 * the data follows it) or -errno: fragments (FRAG != 0) and unknown address types are
 * -ENOTSUP, the rest as socks5_request_parse().
 */
ssize_t socks5_udp_parse(const uint8_t *p, size_t n, struct proxy_target *ret);
/* Header for an answer from `from` (borrowed; NULL: 0.0.0.0:0); returns its length (10 or 22). */
size_t socks5_udp_header_build(const struct sockaddr *from, uint8_t out[22]);

/* ------------------------------------------------------------------ SOCKS4 and SOCKS4a */

#define SOCKS4_VERSION 0x04
#define SOCKS4_CONNECT 1
#define SOCKS4_BIND    2

/*
 * VN=4 CD DSTPORT DSTIP USERID NUL [HOST NUL when DSTIP is 0.0.0.x, x != 0].
 * CD other than 1 (CONNECT) or 2 (BIND) is -ENOTSUP (answer SOCKS4_REJECTED).  The user id
 * may hold any byte but NUL; the 4a host must be non-empty without CR or LF.
 */
struct socks4_request {
	int cmd;
	struct proxy_target target;
	char user[256];
};

ssize_t socks4_request_parse(const uint8_t *p, size_t n, struct socks4_request *ret);

#define SOCKS4_GRANTED	90
#define SOCKS4_REJECTED 91

/* VN=0 CD DSTPORT DSTIP; bound (borrowed) NULL: 0.0.0.0:0.  Returns 8. */
size_t socks4_reply_build(uint8_t code, const struct sockaddr_in *bound, uint8_t out[8]);

/*
 * Shared with httpproxy.c: set t to host (len bytes, not NUL-terminated) and port.  An IPv4
 * or IPv6 literal becomes TARGET_ADDR, anything else TARGET_NAME.  -E2BIG beyond 255 bytes,
 * -EPROTO if empty or holding NUL, CR or LF.  No other syntax is checked.
 */
int proxy_target_set_host(struct proxy_target *t, const char *host, size_t len, uint16_t port);

#endif
