/*
 * al_conf.c - the keyword table of [allowlist], the gateway agent's section, and its
 * validation.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's.
 */
#include <stddef.h>
#include <string.h>

#include "al_conf.h"
#include "al_proto.h"
#include "util.h"
#include "ws.h"

static const struct conf_key allowlist_keys[] = {
	{
		.name = "server",
		.type = CONF_STRING,
		KEY(conf_allowlist, server),
		.help = "egress-server's hub: wss://HOST[:PORT]/ws (ws:// only for tests); "
			"unset: enforce the last list kept in state_dir",
	},
	{
		.name = "token",
		.type = CONF_STRING,
		KEY(conf_allowlist, token),
		.flags = CONF_SECRET,
		.help = "token the server knows this gateway by (sent as a bearer token)",
	},
	{
		.name = "token_file",
		.type = CONF_STRING,
		KEY(conf_allowlist, token_file),
		.help = "file holding the token (instead of token)",
	},
	{
		.name = "ca",
		.type = CONF_STRING,
		KEY(conf_allowlist, ca),
		.help = "PEM CAs that verify the server's certificate; unset: the system's",
	},
	{
		.name = "cert",
		.type = CONF_STRING,
		KEY(conf_allowlist, cert),
		.help = "PEM client certificate this gateway authenticates with, with key",
	},
	{
		.name = "key",
		.type = CONF_STRING,
		KEY(conf_allowlist, key),
		.help = "PEM private key of cert",
	},
	{
		.name = "name",
		.type = CONF_STRING,
		KEY(conf_allowlist, name),
		.help = "this gateway's name on the server; unset: the host name",
	},
	{
		.name = "clients",
		.type = CONF_CIDR_LIST,
		KEY(conf_allowlist, clients),
		.flags = CONF_REQUIRED | CONF_BARE,
		.help = "client subnets: they reach allowed destinations only, the rest is dropped",
	},
	{
		.name = "nat",
		.type = CONF_BOOL,
		KEY(conf_allowlist, nat),
		.def = "true",
		.help = "masquerade what clients send to allowed destinations",
	},
	{
		.name = "state_dir",
		.type = CONF_STRING,
		KEY(conf_allowlist, state_dir),
		.def = "/var/lib/egress",
		.help = "where the last list is kept (" AL_STATE_FILE "), enforced at once on start",
	},
	{
		.name = "dns",
		.type = CONF_BOOL,
		KEY(conf_allowlist, dns),
		.def = "true",
		.help = "allow the addresses [dns] answers give for allowed names and wildcards",
	},
	{
		.name = "dns_ttl_min",
		.type = CONF_DURATION,
		KEY(conf_allowlist, dns_ttl_min_ms),
		.min = 1000,
		.max = 86400000,
		.def = "5m",
		.help = "a learned address stays allowed at least this long, whatever its TTL",
	},
	{
		.name = "dns_ttl_max",
		.type = CONF_DURATION,
		KEY(conf_allowlist, dns_ttl_max_ms),
		.min = 1000,
		.max = 604800000,
		.def = "24h",
		.help = "and at most this long",
	},
	{
		.name = "max_items",
		.type = CONF_INT,
		KEY(conf_allowlist, max_items),
		.min = 1,
		.max = 10000000,
		.def = "1000000",
		.help = "items of one list; a bigger list is refused and the last one kept",
	},
	{
		.name = "max_message",
		.type = CONF_INT,
		KEY(conf_allowlist, max_message),
		.min = 4096,
		.max = 1073741824,
		.def = "268435456",
		.help = "bytes of one message from the server",
	},
	{
		.name = "reconnect_min",
		.type = CONF_DURATION,
		KEY(conf_allowlist, reconnect_min_ms),
		.min = 10,
		.max = 3600000,
		.def = "1s",
		.help = "first wait before reconnecting; doubled (with jitter) each failure",
	},
	{
		.name = "reconnect_max",
		.type = CONF_DURATION,
		KEY(conf_allowlist, reconnect_max_ms),
		.min = 10,
		.max = 3600000,
		.def = "1m",
		.help = "longest wait before reconnecting",
	},
	{
		.name = "ping",
		.type = CONF_DURATION,
		KEY(conf_allowlist, ping_ms),
		.min = 100,
		.max = 3600000,
		.def = "10s",
		.help = "a ping after this long without anything from the server",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_allowlist, timeout_ms),
		.min = 100,
		.max = 3600000,
		.def = "30s",
		.help = "nothing from the server for this long: reconnect",
	},
	{
		.name = "drops_max",
		.type = CONF_INT,
		KEY(conf_allowlist, drops_max),
		.min = 16,
		.max = 1048576,
		.def = "65536",
		.help = "clients whose drops are counted apart",
	},
	{
		.name = "keep_table",
		.type = CONF_BOOL,
		KEY(conf_allowlist, keep_table),
		.def = "true",
		.help = "leave the table, and so the last list, enforced when egressd stops "
			"(false: remove it, and clients reach whatever the host forwards)",
	},
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= AL_GATEWAY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
			    (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.' || s[i] == '_' ||
			    s[i] == '-'))
			return false;
	return true;
}

static void allowlist_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs)
{
	const struct conf_allowlist *a = section;
	const char *why = NULL;

	(void)conf;
	if (a->server && ws_url_check(a->server, &why) < 0)
		conf_section_error(errs, &a->s, "server", "expected wss://HOST[:PORT]/PATH: %s",
			why ? why : "bad URL");
	if (a->token && a->token_file)
		conf_section_error(errs, &a->s, "token_file", "give token or token_file, not both");
	if (!a->cert != !a->key)
		conf_section_error(errs, &a->s, a->cert ? "key" : "cert",
			"cert and key go together");
	if (a->name && !name_ok(a->name))
		conf_section_error(errs, &a->s, "name",
			"expected 1-%d characters of [A-Za-z0-9._-], got \"%s\"", AL_GATEWAY_MAX - 1,
			a->name);
	if (!a->state_dir || a->state_dir[0] != '/')
		conf_section_error(errs, &a->s, "state_dir", "expected an absolute path, got \"%s\"",
			a->state_dir ? a->state_dir : "");
	if (a->dns_ttl_min_ms > a->dns_ttl_max_ms)
		conf_section_error(errs, &a->s, "dns_ttl_max", "expected at least dns_ttl_min");
	if (a->reconnect_min_ms > a->reconnect_max_ms)
		conf_section_error(errs, &a->s, "reconnect_max", "expected at least reconnect_min");
	for (size_t i = 0; i < a->clients.n; i++)
		if (a->clients.v[i].plen == 0)
			conf_section_error(errs, &a->s, "clients",
				"a client subnet of the whole address space would cut the gateway "
				"off (clients[%zu])", i);
}

const struct conf_section_type conf_allowlist_type = {
	.name = "allowlist",
	.size = sizeof(struct conf_allowlist),
	.keys = allowlist_keys,
	.n_keys = ARRAY_SIZE(allowlist_keys),
	.validate = allowlist_validate,
};

struct conf_allowlist *conf_allowlist(const struct conf *conf)
{
	return (struct conf_allowlist *)conf_find(conf, "allowlist", NULL);
}
