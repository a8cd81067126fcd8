/*
 * ddns_conf.c - the keyword table of [ddns] (gateway-route-manager's -ddns-* and
 * -public-ip-service-* flags, with its defaults, and the RFC 2136 keys) and its validation.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's.  Secrets are keys
 * with CONF_SECRET, so -n and the API mask them.
 */
#include <stdlib.h>
#include <string.h>

#include "ddns_conf.h"
#include "util.h"

const char *const ddns_provider_name[_DDNS_PROVIDER_MAX] = {
	[DDNS_NONE] = "none",
	[DDNS_DYNUDNS] = "dynudns",
	[DDNS_RFC2136] = "rfc2136",
};

const char *const ddns_scheme_name[_DDNS_SCHEME_MAX] = {
	[DDNS_HTTP] = "http",
	[DDNS_HTTPS] = "https",
};

const char *const ddns_tsig_alg_name[_DDNS_TSIG_ALG_MAX] = {
	[DDNS_HMAC_MD5] = "hmac-md5",
	[DDNS_HMAC_SHA1] = "hmac-sha1",
	[DDNS_HMAC_SHA224] = "hmac-sha224",
	[DDNS_HMAC_SHA256] = "hmac-sha256",
	[DDNS_HMAC_SHA384] = "hmac-sha384",
	[DDNS_HMAC_SHA512] = "hmac-sha512",
};

static bool rfc2136_key(const struct conf_section *s)
{
	return ((const struct conf_ddns *)s)->provider == DDNS_RFC2136;
}

static bool dynu_key(const struct conf_section *s)
{
	return ((const struct conf_ddns *)s)->provider == DDNS_DYNUDNS;
}

static const struct conf_key ddns_keys[] = {
	{
		.name = "provider",
		.type = CONF_ENUM,
		KEY(conf_ddns, provider),
		.def = "none",
		.names = ddns_provider_name,
		.n_names = _DDNS_PROVIDER_MAX,
		.help = "where the public addresses are published: dynudns, rfc2136, or none "
			"(only learn them)",
	},
	{
		.name = "hostname",
		.type = CONF_STRING,
		KEY(conf_ddns, hostname),
		.help = "the name that holds the public addresses of the healthy uplinks",
	},
	{
		.name = "username",
		.type = CONF_STRING,
		KEY(conf_ddns, username),
		.help = "DDNS user name (no provider uses it; accepted as gateway-route-manager does)",
	},
	{
		.name = "password",
		.type = CONF_STRING,
		KEY(conf_ddns, password),
		.flags = CONF_SECRET,
		.help = "DynuDNS API key (unset: password_file, else the environment's "
			"DDNS_PASSWORD)",
	},
	{
		.name = "password_file",
		.type = CONF_STRING,
		KEY(conf_ddns, password_file),
		.help = "file holding the DynuDNS API key",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_ddns, timeout_ms),
		.min = 100,
		.max = 600000,
		.def = "60s",
		.help = "timeout of one update",
	},
	{
		.name = "record_ttl",
		.type = CONF_DURATION,
		KEY(conf_ddns, record_ttl_ms),
		.min = 1000,
		.max = 86400000,
		.def = "60s",
		.help = "TTL of the published records",
	},
	{
		.name = "dynu_url",
		.type = CONF_STRING,
		KEY(conf_ddns, dynu_url),
		.def = "https://api.dynu.com/v2",
		.help = "DynuDNS API base URL",
		.relevant = dynu_key,
	},
	{
		.name = "require_ip_address",
		.type = CONF_ADDR,
		KEY(conf_ddns, require_ip),
		.help = "publish only while this address is on a local interface (the VRRP master "
			"of a pair)",
	},
	{
		.name = "server",
		.type = CONF_ADDR,
		KEY(conf_ddns, server),
		.help = "rfc2136: the DNS server that takes the updates",
		.relevant = rfc2136_key,
	},
	{
		.name = "server_port",
		.type = CONF_INT,
		KEY(conf_ddns, server_port),
		.min = 1,
		.max = 65535,
		.def = "53",
		.help = "rfc2136: its port",
		.relevant = rfc2136_key,
	},
	{
		.name = "zone",
		.type = CONF_STRING,
		KEY(conf_ddns, zone),
		.help = "rfc2136: the zone updated (unset: the hostname's parent)",
		.relevant = rfc2136_key,
	},
	{
		.name = "tsig_key_name",
		.type = CONF_STRING,
		KEY(conf_ddns, tsig_key_name),
		.help = "rfc2136: name of the TSIG key",
		.relevant = rfc2136_key,
	},
	{
		.name = "tsig_algorithm",
		.type = CONF_ENUM,
		KEY(conf_ddns, tsig_algorithm),
		.def = "hmac-sha256",
		.names = ddns_tsig_alg_name,
		.n_names = _DDNS_TSIG_ALG_MAX,
		.help = "rfc2136: algorithm of the TSIG key",
		.relevant = rfc2136_key,
	},
	{
		.name = "tsig_secret_file",
		.type = CONF_STRING,
		KEY(conf_ddns, tsig_secret_file),
		.help = "rfc2136: file holding the key's secret in base64 (as BIND's key statement)",
		.relevant = rfc2136_key,
	},
	{
		.name = "retry_min",
		.type = CONF_DURATION,
		KEY(conf_ddns, retry_min_ms),
		.min = 100,
		.max = 3600000,
		.def = "2s",
		.help = "first wait after a failed update; it doubles up to retry_max",
	},
	{
		.name = "retry_max",
		.type = CONF_DURATION,
		KEY(conf_ddns, retry_max_ms),
		.min = 100,
		.max = 86400000,
		.def = "5m",
		.help = "longest wait between attempts of an update",
	},
	{
		.name = "public_ip_service_hostname",
		.type = CONF_STRING,
		KEY(conf_ddns, ip_host),
		.help = "public address service (unset: each uplink's own check address is asked)",
	},
	{
		.name = "public_ip_service_hostname6",
		.type = CONF_STRING,
		KEY(conf_ddns, ip_host6),
		.help = "public address service asked over IPv6 for the IPv6 address (unset: none)",
	},
	{
		.name = "public_ip_service_port",
		.type = CONF_INT,
		KEY(conf_ddns, ip_port),
		.min = 1,
		.max = 65535,
		.def = "443",
		.help = "its port",
	},
	{
		.name = "public_ip_service_scheme",
		.type = CONF_ENUM,
		KEY(conf_ddns, ip_scheme),
		.def = "https",
		.names = ddns_scheme_name,
		.n_names = _DDNS_SCHEME_MAX,
		.help = "its scheme: http or https",
	},
	{
		.name = "public_ip_service_path",
		.type = CONF_STRING,
		KEY(conf_ddns, ip_path),
		.def = "/",
		.help = "its URL path",
	},
	{
		.name = "public_ip_service_username",
		.type = CONF_STRING,
		KEY(conf_ddns, ip_username),
		.help = "its HTTP basic authentication user",
	},
	{
		.name = "public_ip_service_password",
		.type = CONF_STRING,
		KEY(conf_ddns, ip_password),
		.flags = CONF_SECRET,
		.help = "its HTTP basic authentication password (unset: the environment's "
			"PUBLIC_IP_SERVICE_PASSWORD)",
	},
	{
		.name = "public_ip_service_tls_verify",
		.type = CONF_BOOL,
		KEY(conf_ddns, ip_tls_verify),
		.def = "true",
		.help = "verify its certificate (https)",
	},
	{
		.name = "public_ip_interval",
		.type = CONF_DURATION,
		KEY(conf_ddns, ip_interval_ms),
		.min = 1000,
		.max = 86400000,
		.def = "5m",
		.help = "ask again this often while an uplink is up (and at once when it comes up)",
	},
	{
		.name = "public_ip_timeout",
		.type = CONF_DURATION,
		KEY(conf_ddns, ip_timeout_ms),
		.min = 100,
		.max = 600000,
		.def = "10s",
		.help = "timeout of one request for a public address",
	},
};

/* A DNS name as ldns takes it: labels of 1..63, 253 characters in all, no empty label. */
static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n && s[n - 1] == '.')
		n--;
	if (!n || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (!label)
				return false;
			label = 0;
		} else if (++label > 63 || (unsigned char)s[i] <= ' ') {
			return false;
		}
	}
	return label > 0;
}

/* Is name within zone (both without the root's dot)? */
static bool in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (n && name[n - 1] == '.')
		n--;
	if (z && zone[z - 1] == '.')
		z--;
	if (z > n)
		return false;
	if (strncasecmp(name + n - z, zone, z))
		return false;
	return z == n || name[n - z - 1] == '.';
}

static void ddns_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_ddns *d = section;

	(void)conf;
	if (d->hostname && !dns_name_ok(d->hostname))
		conf_section_error(errs, &d->s, "hostname", "expected a DNS name, got \"%s\"",
			d->hostname);
	if (d->provider != DDNS_NONE && !d->hostname)
		conf_section_error(errs, &d->s, "hostname", "provider %s needs a hostname",
			ddns_provider_name[d->provider]);
	if (d->password && d->password_file)
		conf_section_error(errs, &d->s, "password_file",
			"give password or password_file, not both");
	if (d->provider == DDNS_DYNUDNS && !d->password && !d->password_file &&
		!(getenv("DDNS_PASSWORD") && *getenv("DDNS_PASSWORD")))
		conf_section_error(errs, &d->s, "password",
			"provider dynudns needs an API key: password, password_file or the "
			"environment's DDNS_PASSWORD");
	if (d->provider == DDNS_DYNUDNS && d->dynu_url && strncmp(d->dynu_url, "https://", 8) &&
		strncmp(d->dynu_url, "http://", 7))
		conf_section_error(errs, &d->s, "dynu_url",
			"expected an http:// or https:// URL, got \"%s\"", d->dynu_url);
	if (d->provider == DDNS_RFC2136) {
		if (!addr_is_set(&d->server))
			conf_section_error(errs, &d->s, "server",
				"provider rfc2136 needs the address of the DNS server");
		if (!d->tsig_key_name)
			conf_section_error(errs, &d->s, "tsig_key_name",
				"provider rfc2136 needs a TSIG key name");
		else if (!dns_name_ok(d->tsig_key_name))
			conf_section_error(errs, &d->s, "tsig_key_name",
				"expected a DNS name, got \"%s\"", d->tsig_key_name);
		if (!d->tsig_secret_file)
			conf_section_error(errs, &d->s, "tsig_secret_file",
				"provider rfc2136 needs the file of the TSIG key's secret");
		if (d->zone && !dns_name_ok(d->zone))
			conf_section_error(errs, &d->s, "zone", "expected a DNS name, got \"%s\"",
				d->zone);
		else if (d->zone && d->hostname && !in_zone(d->hostname, d->zone))
			conf_section_error(errs, &d->s, "zone",
				"expected a zone that holds hostname %s, got \"%s\"", d->hostname,
				d->zone);
		else if (!d->zone && d->hostname && !strchr(d->hostname, '.'))
			conf_section_error(errs, &d->s, "zone",
				"hostname %s has no parent: give the zone", d->hostname);
	}
	if (d->ip_path && d->ip_path[0] != '/')
		conf_section_error(errs, &d->s, "public_ip_service_path",
			"expected a path starting with '/', got \"%s\"", d->ip_path);
	if (d->retry_min_ms > d->retry_max_ms)
		conf_section_error(errs, &d->s, "retry_min", "expected at most retry_max");
}

const struct conf_section_type conf_ddns_type = {
	.name = "ddns",
	.size = sizeof(struct conf_ddns),
	.keys = ddns_keys,
	.n_keys = ARRAY_SIZE(ddns_keys),
	.validate = ddns_validate,
};

struct conf_ddns *conf_ddns(const struct conf *conf)
{
	return (struct conf_ddns *)conf_find(conf, "ddns", NULL);
}
