/*
 * proxy_conf.c - the keyword tables of the proxy's sections: [proxy] (go-dispatch-proxy's
 * flags), [client NAME]; their validation, and the dispatch addresses made uplinks.
 *
 * Must not hold logic beyond the sections' own: parsing is conf.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "gateway_conf.h"
#include "proxy_conf.h"
#include "util.h"

static bool proxy_has_check(const struct conf_section *s)
{
	return ((const struct conf_proxy *)s)->check != CHECK_NONE;
}

static const struct conf_key proxy_keys[] = {
	{
		.name = "address",
		.type = CONF_ADDR,
		KEY(conf_proxy, address),
		.def = "127.0.0.1",
		.help = "address of the SOCKS/HTTP listener (-lhost)",
	},
	{
		.name = "port",
		.type = CONF_INT,
		KEY(conf_proxy, port),
		.min = 0,
		.max = 65535,
		.def = "8080",
		.help = "port of the SOCKS4/4a/5 and HTTP proxy listener; 0: none (-lport)",
	},
	{
		.name = "allow",
		.type = CONF_WORD_LIST,
		KEY(conf_proxy, allow),
		.def = ACL_LOCAL,
		.help = "clients admitted, on every listener: prefixes and 'local' (loopback, "
			"private and link-local ranges, this host, its non-uplink subnets); never "
			"one that came in through an uplink interface (-allow)",
	},
	{
		.name = "dispatch",
		.type = CONF_WORD_LIST,
		KEY(conf_proxy, dispatch),
		.help = "uplinks as local addresses ADDR@RATIO (with tunnel: upstream SOCKS "
			"proxies HOST:PORT@RATIO); each becomes an [uplink]",
	},
	{
		.name = "tunnel",
		.type = CONF_BOOL,
		KEY(conf_proxy, tunnel),
		.def = "false",
		.help = "relay whole connections to the uplinks' upstream SOCKS proxies",
	},
	{
		.name = "transparent_port",
		.type = CONF_INT,
		KEY(conf_proxy, transparent_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the transparent listener for REDIRECT (SO_ORIGINAL_DST); 0: none",
	},
	{
		.name = "tproxy_port",
		.type = CONF_INT,
		KEY(conf_proxy, tproxy_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the transparent listener for TPROXY (IP_TRANSPARENT); 0: none",
	},
	{
		.name = "username",
		.type = CONF_STRING,
		KEY(conf_proxy, username),
		.help = "clients must authenticate (SOCKS5 RFC 1929, HTTP Basic) with this user",
	},
	{
		.name = "password",
		.type = CONF_STRING,
		KEY(conf_proxy, password),
		.flags = CONF_SECRET,
		.help = "and this password",
	},
	{
		.name = "connect_timeout",
		.type = CONF_DURATION,
		KEY(conf_proxy, connect_timeout_ms),
		.min = 10,
		.max = 60000,
		.def = "300ms",
		.help = "an uplink that has not connected by then is raced by another",
	},
	{
		.name = "connect_deadline",
		.type = CONF_DURATION,
		KEY(conf_proxy, connect_deadline_ms),
		.min = 100,
		.max = 300000,
		.def = "10s",
		.help = "the client is told the connect failed after this",
	},
	{
		.name = "idle_timeout",
		.type = CONF_DURATION,
		KEY(conf_proxy, idle_timeout_ms),
		.min = 0,
		.max = 7 * 24 * 3600 * 1000LL,
		.def = "1h",
		.help = "a connection without a byte either way for this long is closed; 0: never",
	},
	{
		.name = "max_connections",
		.type = CONF_INT,
		KEY(conf_proxy, max_connections),
		.min = 1,
		.max = 1000000,
		.def = "20000",
		.help = "connections at once, all clients together",
	},
	{
		.name = "max_per_client",
		.type = CONF_INT,
		KEY(conf_proxy, max_per_client),
		.min = 1,
		.max = 1000000,
		.def = "1000",
		.help = "connections at once from one client address",
	},
	{
		.name = "resolver",
		.type = CONF_ADDR_LIST,
		KEY(conf_proxy, resolvers),
		.help = "resolvers for host names in requests, asked through the connection's "
			"uplink (default: the uplink's dns, else /etc/resolv.conf)",
	},
	{
		.name = "client_rules",
		.type = CONF_STRING,
		KEY(conf_proxy, client_rules),
		.help = "JSON file of per-client contention ratios (go-dispatch-proxy's format)",
	},
	{
		.name = "affinity",
		.type = CONF_DURATION,
		KEY(conf_proxy, affinity_ms),
		.min = 0,
		.max = 24 * 3600 * 1000LL,
		.def = "0",
		.help = "keep a client on the uplink it last used for this long; 0: off",
	},
	{
		.name = "client_metrics",
		.type = CONF_BOOL,
		KEY(conf_proxy, client_metrics),
		.def = "true",
		.help = "egress_proxy_client_* metrics: a series per client address, dropped when "
			"the client has been idle and is forgotten",
	},
	{
		.name = "workers",
		.type = CONF_INT,
		KEY(conf_proxy, workers),
		.min = 0,
		.max = 256,
		.def = "0",
		.help = "threads that accept, handshake, connect and relay connections, each on its own "
			"listening socket (0: one per CPU)",
	},
	{
		.name = "check",
		.type = CONF_ENUM,
		KEY(conf_proxy, check),
		.def = "none",
		.names = check_kind_name,
		.n_names = _CHECK_KIND_MAX,
		.help = "health check of the dispatch uplinks: none, http, https, tcp, icmp or dns "
			"(tunnel mode: tcp to the upstream proxy unless set)",
	},
	{
		.name = "check_target",
		.type = CONF_ADDR_LIST,
		KEY(conf_proxy, check_targets),
		.help = "addresses the dispatch uplinks' checks probe",
		.relevant = proxy_has_check,
	},
	{
		.name = "check_port",
		.type = CONF_INT,
		KEY(conf_proxy, check_port),
		.min = 0,
		.max = 65535,
		.def = "0",
		.help = "port of the checks (0: the kind's default)",
		.relevant = proxy_has_check,
	},
	{
		.name = "check_interval",
		.type = CONF_DURATION,
		KEY(conf_proxy, check_interval_ms),
		.min = 100,
		.max = 3600 * 1000,
		.def = "1s",
		.help = "between the dispatch uplinks' check rounds",
		.relevant = proxy_has_check,
	},
	{
		.name = "table_base",
		.type = CONF_U32,
		KEY(conf_proxy, table_base),
		.min = 1,
		.max = 0xfffffff0,
		.def = "5000",
		.help = "uplinks with a source address get routing table table_base + position",
	},
	{
		.name = "rule_priority",
		.type = CONF_U32,
		KEY(conf_proxy, rule_priority),
		.min = 1,
		.max = 32000,
		.def = "5000",
		.help = "priority of the source rules (two per uplink, upwards from here)",
	},
};

int conf_ratio_parse(const char *s, char *name, size_t len, int *weight)
{
	const char *at = strrchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);
	char *end;
	long w = 1;

	if (!n || n >= len)
		return -EINVAL;
	if (at) {
		errno = 0;
		w = strtol(at + 1, &end, 10);
		if (errno || end == at + 1 || *end || w < 1 || w > 1000)
			return -ERANGE;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	*weight = (int)w;
	return 0;
}

/* "ADDR" or "[ADDR]:PORT" / "ADDR:PORT" (tunnel mode) of a dispatch word without its ratio. */
static int dispatch_addr_parse(const char *s, bool tunnel, struct addr *ret, int *port)
{
	uint16_t p;
	int r;

	if (!tunnel)
		return addr_parse(s, ret);
	r = addr_port_parse(s, ret, &p);
	if (r == 0)
		*port = p;
	return r;
}

static void proxy_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_proxy *p = section;
	char name[128];
	struct addr a;
	int w, port;

	conf_allow_validate(&p->s, &p->allow, errs);
	for (size_t i = 0; i < p->dispatch.n; i++) {
		if (conf_ratio_parse(p->dispatch.v[i], name, sizeof(name), &w) < 0 ||
			dispatch_addr_parse(name, p->tunnel, &a, &port) < 0)
			conf_section_error(errs, &p->s, "dispatch",
				"expected %s with an optional @RATIO (1-1000), got \"%s\"",
				p->tunnel ? "an upstream proxy HOST:PORT" : "a local address",
				p->dispatch.v[i]);
	}
	if (!p->username != !p->password)
		conf_section_error(errs, &p->s, p->username ? "password" : "username",
			"'username' and 'password' go together");
	if (p->check != CHECK_NONE && !p->check_targets.n && !p->tunnel)
		conf_section_error(errs, &p->s, "check", "check = %s needs 'check_target'",
			check_kind_name[p->check]);
	if (p->check == CHECK_TCP && !p->check_port && !p->tunnel)
		conf_section_error(errs, &p->s, "check", "check = tcp needs 'check_port'");
	if (p->connect_timeout_ms > p->connect_deadline_ms)
		conf_section_error(errs, &p->s, "connect_timeout",
			"expected at most 'connect_deadline' (%" PRIu32 "ms), got %" PRIu32 "ms",
			p->connect_deadline_ms, p->connect_timeout_ms);
	if (!p->port && !p->transparent_port && !p->tproxy_port && !conf_gateway(conf))
		conf_section_error(errs, &p->s, "port",
			"the proxy needs a listener: 'port', 'transparent_port' or 'tproxy_port'");
	if (!p->dispatch.n && !conf_n_uplinks(conf))
		conf_section_error(errs, &p->s, "dispatch",
			"the proxy needs uplinks: 'dispatch' or [uplink] sections");
}

/* Each dispatch word becomes an [uplink ADDR] (tunnel: [uplink HOST:PORT]). */
static void proxy_expand(struct conf *conf, const struct conf_section *section,
	struct conf_errors *errs)
{
	const struct conf_proxy *p = (const struct conf_proxy *)section;
	const struct conf_key *ck = conf_key_find(&conf_proxy_type, "check");
	char name[128], buf[64];
	struct addr a;
	int w, port = 0, kind;

	for (size_t i = 0; i < p->dispatch.n; i++) {
		struct conf_section *u;

		conf_ratio_parse(p->dispatch.v[i], name, sizeof(name), &w);
		dispatch_addr_parse(name, p->tunnel, &a, &port);
		u = conf_add_generated(conf, "uplink", name, &p->s, errs);
		if (!u)
			continue;
		addr_str(&a, buf, sizeof(buf));
		conf_set_key(u, p->tunnel ? "tunnel" : "source", buf);
		if (p->tunnel) {
			snprintf(buf, sizeof(buf), "%d", port);
			conf_set_key(u, "tunnel_port", buf);
		}
		snprintf(buf, sizeof(buf), "%d", w);
		conf_set_key(u, "weight", buf);
		kind = p->check;
		if (p->tunnel && !conf_key_is_set(&p->s, ck))
			kind = CHECK_TCP;
		conf_set_key(u, "check", check_kind_name[kind]);
		if (kind == CHECK_NONE)
			continue;
		for (size_t j = 0; j < p->check_targets.n; j++) {
			addr_str(&p->check_targets.v[j].addr, buf, sizeof(buf));
			conf_set_key(u, "check_target", buf);
		}
		if (!p->check_targets.n) {
			/* tunnel mode: the upstream proxy itself */
			addr_str(&a, buf, sizeof(buf));
			conf_set_key(u, "check_target", buf);
		}
		if (p->check_port || p->tunnel) {
			snprintf(buf, sizeof(buf), "%d",
				p->check_port ? p->check_port : port);
			conf_set_key(u, "check_port", buf);
		}
		conf_format_duration(p->check_interval_ms, buf, sizeof(buf));
		conf_set_key(u, "interval", buf);
		conf_format_duration(MIN(p->check_interval_ms, 500), buf, sizeof(buf));
		conf_set_key(u, "interval_failing", buf);
		conf_set_key(u, "interval_recovering", buf);
		conf_format_duration(MIN(p->check_interval_ms, 1000), buf, sizeof(buf));
		conf_set_key(u, "timeout", buf);
	}
}

/* srcroute.c: rules + 2i and + 2i + 1 and table + i for uplink i with a source; it deletes
 * the rules of those shapes and flushes the tables of the uplinks, sources or not. */
static void proxy_routing_claims(const struct conf *conf, const void *section,
	struct rt_claims *c)
{
	const struct conf_proxy *p = section;
	size_t n = conf_n_uplinks(conf);
	size_t k = MIN(n, (size_t)CONF_SRCROUTE_MAX);

	if (!n)
		return;
	conf_routing_claim(c, p, p, "rule_priority", false, p->rule_priority,
		p->rule_priority + 2ull * k);
	conf_routing_claim(c, p, p, "table_base", true, p->table_base, p->table_base + k);
}

const struct conf_section_type conf_proxy_type = {
	.name = "proxy",
	.size = sizeof(struct conf_proxy),
	.keys = proxy_keys,
	.n_keys = ARRAY_SIZE(proxy_keys),
	.validate = proxy_validate,
	.expand = proxy_expand,
	.validate_expanded = conf_routing_validate,
	.routing_claims = proxy_routing_claims,
};

struct conf_proxy *conf_proxy(const struct conf *conf)
{
	return (struct conf_proxy *)conf_find(conf, "proxy", NULL);
}

static const struct conf_key client_keys[] = {
	{
		.name = "source",
		.type = CONF_CIDR_LIST,
		KEY(conf_client, source),
		.flags = CONF_BARE | CONF_REQUIRED,
		.help = "client addresses and prefixes (longest prefix wins among [client]s)",
	},
	{
		.name = "ratio",
		.type = CONF_WORD_LIST,
		KEY(conf_client, ratio),
		.flags = CONF_REQUIRED,
		.help = "UPLINK@N ...: contention ratios for these clients (UPLINK: name or "
			"source address)",
	},
};

static bool uplink_named(const struct conf *conf, const char *name)
{
	struct addr a;
	bool is_addr = addr_parse(name, &a) == 0;

	for (size_t i = 0; i < conf_n_uplinks(conf); i++) {
		const struct conf_uplink *u = conf_uplink_at(conf, i);
		if (streq(u->s.name, name) || (is_addr && addr_eq(&u->source, &a)))
			return true;
	}
	return false;
}

static void client_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_client *c = section;
	const struct conf_proxy *p = conf_proxy(conf);
	char name[128];
	int w;

	for (size_t i = 0; i < c->ratio.n; i++) {
		if (conf_ratio_parse(c->ratio.v[i], name, sizeof(name), &w) < 0) {
			conf_section_error(errs, &c->s, "ratio",
				"expected UPLINK@N (N 1-1000), got \"%s\"", c->ratio.v[i]);
			continue;
		}
		bool in_dispatch = false;
		for (size_t j = 0; p && j < p->dispatch.n; j++)
			if (!strncmp(p->dispatch.v[j], name, strlen(name)) &&
				(p->dispatch.v[j][strlen(name)] == '@' ||
					!p->dispatch.v[j][strlen(name)]))
				in_dispatch = true;
		if (!in_dispatch && !uplink_named(conf, name))
			conf_section_error(errs, &c->s, "ratio", "no uplink called \"%s\"", name);
	}
	if (!p)
		conf_section_error(errs, &c->s, NULL, "[client] needs a [proxy] section");
}

const struct conf_section_type conf_client_type = {
	.name = "client",
	.named = true,
	.size = sizeof(struct conf_client),
	.keys = client_keys,
	.n_keys = ARRAY_SIZE(client_keys),
	.validate = client_validate,
};

size_t conf_n_clients(const struct conf *conf)
{
	return conf_sections(conf, "client")->n;
}

struct conf_client *conf_client_at(const struct conf *conf, size_t i)
{
	return (struct conf_client *)conf_sections(conf, "client")->items[i];
}
