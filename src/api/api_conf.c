/*
 * api_conf.c - the keyword table of [api], the REST API's section, and its validation.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's, serving api.c's.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "api_conf.h"
#include "passwd.h"
#include "util.h"

static const struct conf_key api_keys[] = {
	{
		.name = "listen",
		.type = CONF_WORD_LIST,
		KEY(conf_api, listen),
		.def = "127.0.0.1:8090",
		.help = "TCP addresses served: ADDR:PORT, [IPV6]:PORT, PORT (every address), or "
			"none",
	},
	{
		.name = "socket",
		.type = CONF_STRING,
		KEY(conf_api, socket),
		.def = "/run/egress/egressd.sock",
		.help = "UNIX socket for egressctl (root and socket_group are admins), or none",
	},
	{
		.name = "socket_group",
		.type = CONF_STRING,
		KEY(conf_api, socket_group),
		.def = "egress",
		.help = "group whose members may use the UNIX socket as admins",
	},
	{
		.name = "tls_cert",
		.type = CONF_STRING,
		KEY(conf_api, tls_cert),
		.help = "PEM certificate (chain): HTTPS on every TCP listener, with tls_key",
	},
	{
		.name = "tls_key",
		.type = CONF_STRING,
		KEY(conf_api, tls_key),
		.help = "PEM private key of tls_cert",
	},
	{
		.name = "tls_client_ca",
		.type = CONF_STRING,
		KEY(conf_api, tls_client_ca),
		.help = "PEM CA certificates: TLS listeners ask clients for a certificate and verify "
			"it against them (optional for the client; a verified one names it to routes "
			"that accept one, such as the allowlist hub's)",
	},
	{
		.name = "state_dir",
		.type = CONF_STRING,
		KEY(conf_api, state_dir),
		.def = "/var/lib/egress",
		.help = "where the API keeps its state (password hash, tokens, operator changes)",
	},
	{
		.name = "password_hash",
		.type = CONF_STRING,
		KEY(conf_api, password_hash),
		.flags = CONF_SECRET,
		.help = "the admin password's scrypt hash (egressctl passwd makes one); default: a "
			"password made on the first start, its hash kept in state_dir",
	},
	{
		.name = "max_headers",
		.type = CONF_INT,
		KEY(conf_api, max_headers),
		.min = 1024,
		.max = 1048576,
		.def = "16384",
		.help = "bytes of a request's line and headers; more gets 400",
	},
	{
		.name = "max_body",
		.type = CONF_INT,
		KEY(conf_api, max_body),
		.min = 1024,
		.max = 67108864,
		.def = "1048576",
		.help = "bytes of a request's body; more gets 413",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_api, timeout_ms),
		.min = 100,
		.max = 600000,
		.def = "10s",
		.help = "a client must send its whole request within this (slow clients are closed)",
	},
	{
		.name = "max_clients",
		.type = CONF_INT,
		KEY(conf_api, max_clients),
		.min = 1,
		.max = 100000,
		.def = "256",
		.help = "connections at once; beyond, one still sending its request goes (the oldest "
			"of the address that has the most)",
	},
	{
		.name = "max_streams",
		.type = CONF_INT,
		KEY(conf_api, max_streams),
		.min = 0,
		.max = 10000,
		.def = "32",
		.help = "event streams (server-sent events) at once; more get 503",
	},
	{
		.name = "web_root",
		.type = CONF_STRING,
		KEY(conf_api, web_root),
		.help = "the dashboard's files, served at / (default: where egress installs them)",
	},
	{
		.name = "metrics",
		.type = CONF_BOOL,
		KEY(conf_api, metrics),
		.def = "false",
		.help = "also serve /metrics on the API's listeners, to callers with read access",
	},
};

int api_endpoint_parse(const char *s, struct api_endpoint *ret)
{
	struct api_endpoint e = {0};
	char *end;
	long p;

	if (s[0] >= '0' && s[0] <= '9' && !strpbrk(s, ".:")) {
		errno = 0;
		p = strtol(s, &end, 10);
		if (errno || *end || p < 1 || p > 65535)
			return -EINVAL;
		e.port = (uint16_t)p;
	} else if (addr_port_parse(s, &e.addr, &e.port) < 0) {
		return -EINVAL;
	}
	*ret = e;
	return 0;
}

bool conf_api_no_listen(const struct conf_api *c)
{
	return c->listen.n == 1 && streq(c->listen.v[0], API_NONE);
}

static bool is_none(const char *s)
{
	return !s || streq(s, API_NONE);
}

static void api_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_api *c = section;
	struct api_endpoint e, f;
	struct sockaddr_un sun;
	const char *why;

	(void)conf;
	for (size_t i = 0; i < c->listen.n && !conf_api_no_listen(c); i++) {
		if (streq(c->listen.v[i], API_NONE)) {
			conf_section_error(errs, &c->s, "listen",
				"none stands alone: no TCP listener, or a list of them");
			continue;
		}
		if (api_endpoint_parse(c->listen.v[i], &e) < 0) {
			conf_section_error(errs, &c->s, "listen",
				"expected ADDR:PORT, [IPV6]:PORT, PORT (1-65535) or none, got \"%s\"",
				c->listen.v[i]);
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (api_endpoint_parse(c->listen.v[j], &f) == 0 && f.port == e.port &&
				addr_eq(&f.addr, &e.addr))
				conf_section_error(errs, &c->s, "listen",
					"\"%s\" is listed twice", c->listen.v[i]);
	}
	if (!is_none(c->socket) &&
		(c->socket[0] != '/' || strlen(c->socket) >= sizeof(sun.sun_path)))
		conf_section_error(errs, &c->s, "socket",
			"expected an absolute path of at most %zu bytes, or none, got \"%s\"",
			sizeof(sun.sun_path) - 1, c->socket);
	if (!c->socket_group || !c->socket_group[0])
		conf_section_error(errs, &c->s, "socket_group", "expected a group name, got \"\"");
	if (!c->state_dir || c->state_dir[0] != '/')
		conf_section_error(errs, &c->s, "state_dir", "expected an absolute path, got \"%s\"",
			c->state_dir ? c->state_dir : "");
	if (c->password_hash && passwd_check(c->password_hash, &why) < 0)
		conf_section_error(errs, &c->s, "password_hash", "%s", why);
	if (c->web_root && c->web_root[0] != '/')
		conf_section_error(errs, &c->s, "web_root", "expected an absolute path, got \"%s\"",
			c->web_root);
	if (!c->tls_cert != !c->tls_key)
		conf_section_error(errs, &c->s, c->tls_cert ? "tls_key" : "tls_cert",
			"TLS needs both tls_cert and tls_key");
	if (c->tls_client_ca && !c->tls_cert)
		conf_section_error(errs, &c->s, "tls_client_ca",
			"client certificates need TLS: set tls_cert and tls_key too");
	if (c->tls_cert && conf_api_no_listen(c))
		conf_section_error(errs, &c->s, "tls_cert",
			"TLS is for the TCP listeners, and listen is none");
}

const struct conf_section_type conf_api_type = {
	.name = "api",
	.size = sizeof(struct conf_api),
	.keys = api_keys,
	.n_keys = ARRAY_SIZE(api_keys),
	.validate = api_validate,
};

const struct conf_api *conf_api(const struct conf *conf)
{
	return (const struct conf_api *)conf_find(conf, "api", NULL);
}
