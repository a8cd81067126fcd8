/*
 * api_conf.h - the REST API's section of egress.conf: [api].
 *
 * api_conf.c describes its keys; the server (api.c) reads the struct, only the config
 * machinery writes it.  [api] always exists: the API is on with its defaults unless
 * `listen = none` and `socket = none` turn it off.
 */
#ifndef EGRESS_API_CONF_H
#define EGRESS_API_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "conf_keys.h"

#define API_NONE "none"

/* [api]: where the REST API listens and how it bounds its clients. */
struct conf_api {
	struct conf_section s;
	struct word_list listen; /* "ADDR:PORT", "[V6]:PORT", "PORT" (every address), or "none" */
	char *socket;		 /* UNIX socket for egressctl, or "none" */
	char *socket_group;	 /* its members are admins over the socket */
	char *tls_cert;		 /* PEM files: TLS on every TCP listener; NULL: plain HTTP */
	char *tls_key;
	char *tls_client_ca;	 /* PEM CAs that verify client certificates, or NULL */
	char *state_dir;	 /* what the API keeps (password hash, tokens, changes) */
	char *password_hash;	 /* the admin's ($scrypt$...); NULL: the one made on first start */
	int max_headers;	 /* bytes of a request's head */
	int max_body;		 /* bytes of a request's body */
	uint32_t timeout_ms;	 /* from a connection's start to its request complete */
	int max_clients;	 /* connections at once, every listener together */
	int max_streams;	 /* event streams at once */
	char *web_root;		 /* the dashboard's files; NULL: where egress installs them */
	bool metrics;		 /* also serve /metrics here (read access) */
};

extern const struct conf_section_type conf_api_type;

/* The [api] section (it always exists in a configuration made by egress_conf_new()). */
const struct conf_api *conf_api(const struct conf *conf);

/* One TCP listener of `listen`. */
struct api_endpoint {
	struct addr addr; /* unset: every address (IPv6 and IPv4, or IPv4 where IPv6 is off) */
	uint16_t port;
};

/* Parse one word of `listen`: "127.0.0.1:8090", "[::1]:8090" or "8090".  0 or -EINVAL. */
int api_endpoint_parse(const char *s, struct api_endpoint *ret);

/* Is `listen` "none"? */
bool conf_api_no_listen(const struct conf_api *c);

#endif
