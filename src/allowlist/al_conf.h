/*
 * al_conf.h - the gateway agent's section of egress.conf: [allowlist].
 *
 * al_conf.c describes its keys; the module reads the struct, only the config machinery
 * (conf.c, conf_flags.c) writes it.
 */
#ifndef EGRESS_AL_CONF_H
#define EGRESS_AL_CONF_H

#include "conf_keys.h"

/* The state file's name in state_dir. */
#define AL_STATE_FILE "allowlist.json"

/* [allowlist]: enforce egress-server's list for the client subnets. */
struct conf_allowlist {
	struct conf_section s;
	char *server;		   /* wss://HOST[:PORT]/ws; NULL: the state file alone */
	char *token;		   /* bearer token, or */
	char *token_file;	   /* a file holding it */
	char *ca;		   /* PEM CAs that verify the server; NULL: the system's */
	char *cert, *key;	   /* client certificate and key, or NULL */
	char *name;		   /* this gateway's name; NULL: the host name */
	struct cidr_list clients;  /* client subnets: allowed destinations only */
	bool nat;		   /* masquerade what clients send out */
	char *state_dir;	   /* where the last list is kept */
	bool dns;		   /* learn allowed names' addresses from the DNS forwarder */
	uint32_t dns_ttl_min_ms;   /* a learned address stays at least this long */
	uint32_t dns_ttl_max_ms;   /* and at most this long */
	int max_items;		   /* items of one list */
	int max_message;	   /* bytes of one message from the server */
	uint32_t reconnect_min_ms; /* backoff: first wait, doubled up to reconnect_max */
	uint32_t reconnect_max_ms;
	uint32_t ping_ms, timeout_ms; /* heartbeats of the connection */
	int drops_max;		   /* clients whose drops are counted apart */
	bool keep_table;	   /* leave the table in place when egressd stops */
};

extern const struct conf_section_type conf_allowlist_type;

/* The [allowlist] section, or NULL when the agent is off. */
struct conf_allowlist *conf_allowlist(const struct conf *conf);

#endif
