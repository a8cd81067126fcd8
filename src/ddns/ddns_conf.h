/*
 * ddns_conf.h - the DDNS module's section of egress.conf: [ddns].
 *
 * ddns_conf.c describes its keys (gateway-route-manager's -ddns-* and -public-ip-service-*
 * flags, and ours for RFC 2136); the module reads the struct, only the config machinery
 * (conf.c, conf_flags.c) writes it.
 */
#ifndef EGRESS_DDNS_CONF_H
#define EGRESS_DDNS_CONF_H

#include "conf_keys.h"

enum ddns_provider {
	DDNS_NONE,    /* learn the public addresses, publish nothing */
	DDNS_DYNUDNS, /* DynuDNS's API v2 */
	DDNS_RFC2136, /* a DNS UPDATE signed with TSIG, to any standard server */
	_DDNS_PROVIDER_MAX,
};
extern const char *const ddns_provider_name[_DDNS_PROVIDER_MAX];

enum ddns_scheme {
	DDNS_HTTP,
	DDNS_HTTPS,
	_DDNS_SCHEME_MAX,
};
extern const char *const ddns_scheme_name[_DDNS_SCHEME_MAX];

/* TSIG algorithms, by the names of RFC 8945 (ldns knows them by these). */
enum ddns_tsig_alg {
	DDNS_HMAC_MD5,
	DDNS_HMAC_SHA1,
	DDNS_HMAC_SHA224,
	DDNS_HMAC_SHA256,
	DDNS_HMAC_SHA384,
	DDNS_HMAC_SHA512,
	_DDNS_TSIG_ALG_MAX,
};
extern const char *const ddns_tsig_alg_name[_DDNS_TSIG_ALG_MAX];

/* [ddns]: the public address of each healthy uplink, published under one name. */
struct conf_ddns {
	struct conf_section s;
	int provider; /* enum ddns_provider */
	char *hostname;
	char *username;	     /* not used by any provider (gateway-route-manager has it too) */
	char *password;	     /* DynuDNS's API key; unset: password_file, or DDNS_PASSWORD */
	char *password_file;
	uint32_t timeout_ms;  /* of one update */
	uint32_t record_ttl_ms;
	char *dynu_url;	      /* DynuDNS's API base URL */
	struct addr require_ip; /* publish only while this address is on a local interface */
	/* RFC 2136 */
	struct addr server;
	int server_port;
	char *zone;	      /* unset: the hostname's parent */
	char *tsig_key_name;
	int tsig_algorithm;   /* enum ddns_tsig_alg */
	char *tsig_secret_file; /* the key's secret in base64, as in BIND's key statement */
	uint32_t retry_min_ms, retry_max_ms;
	/* the public address service */
	char *ip_host;	      /* unset: each uplink's own check address (its gateway) */
	char *ip_host6;	      /* asked over IPv6 for the IPv6 address; unset: not asked */
	int ip_port;
	int ip_scheme;	      /* enum ddns_scheme */
	char *ip_path;
	char *ip_username;
	char *ip_password;    /* unset: PUBLIC_IP_SERVICE_PASSWORD */
	bool ip_tls_verify;
	uint32_t ip_interval_ms; /* asked again this often while the uplink is up */
	uint32_t ip_timeout_ms;
};

extern const struct conf_section_type conf_ddns_type;

/* The [ddns] section, or NULL when the module is off. */
struct conf_ddns *conf_ddns(const struct conf *conf);

#endif
