/*
 * al_entry.h - an allowlist entry (what an operator adds on egress-server) and an item
 * (what the server publishes to gateways), with their JSON and one-per-line forms.
 *
 * Shared by egress-server (src/server/) and egressd's allowlist module (src/allowlist/):
 * pure code, no I/O, no store, no kernel.  Parsers take outside input (API bodies, import
 * files, protocol messages) and are fuzzed.
 */
#ifndef EGRESS_AL_ENTRY_H
#define EGRESS_AL_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cidr.h"
#include "conf.h" /* struct range_list, struct cidr_list */

/* What an entry allows. */
enum al_kind {
	AL_IP,	     /* "203.0.113.7", "2001:db8::7": one address */
	AL_CIDR,     /* "198.51.100.0/24" (host bits refused) */
	AL_DOMAIN,   /* "example.com": its A and AAAA, re-resolved by the server */
	AL_WILDCARD, /* "*.example.com": names under it, learned by the gateways' DNS */
	_AL_KIND_MAX,
};
extern const char *const al_kind_name[_AL_KIND_MAX]; /* "ip", "cidr", "domain", "wildcard" */

enum al_proto {
	AL_PROTO_ANY,
	AL_PROTO_TCP,
	AL_PROTO_UDP,
	_AL_PROTO_MAX,
};
extern const char *const al_proto_name[_AL_PROTO_MAX]; /* "any", "tcp", "udp" */

#define AL_VALUE_MAX 256   /* a domain name's text form, with "*." */
#define AL_COMMENT_MAX 512
#define AL_PORTS_MAX 64	   /* ranges in one entry's port list */
#define AL_SOURCES_MAX 64  /* source subnets in one entry */

struct al_entry {
	int64_t id;		  /* the store's; 0 before it is stored */
	enum al_kind kind;
	char value[AL_VALUE_MAX]; /* normalised: lower-case name, no trailing dot; canonical
				   * address or prefix text */
	struct cidr dst;	  /* AL_IP (a host prefix), AL_CIDR */
	enum al_proto proto;	  /* AL_PROTO_ANY with ports: TCP and UDP */
	struct range_list ports;  /* 1-65535; empty: every port */
	struct cidr_list sources; /* client subnets it is for; empty: every client */
	char *comment;		  /* NULL or at most AL_COMMENT_MAX bytes */
	bool non_deletable;
	int64_t created;	  /* unix seconds, the store's */
	char *created_by;	  /* "admin", "token:NAME"; the store's; NULL before */
};

/* Where a parse failed: the field ("value", "ports", "sources[2]") and what was wrong. */
struct al_error {
	char field[64];
	char msg[256];
};

/* Fill *err (NULL-safe) with field and a printf message; returns -EINVAL. */
int al_error_set(struct al_error *err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Zero an entry; _clear() frees what it owns (NULL-safe, leaves it zeroed). */
void al_entry_init(struct al_entry *e);
void al_entry_clear(struct al_entry *e);
/* A deep copy into *ret (initialised by the call).  0 or -ENOMEM. */
int al_entry_copy(const struct al_entry *e, struct al_entry *ret);

/*
 * An API body: {"value": "example.com", "proto": "tcp", "ports": "80,443,8000-8100" (or
 * [80, 443]), "sources": ["10.1.0.0/16"], "comment": "...", "non_deletable": false}.
 * Unknown members, wrong types, bad values and reserved destinations are refused:
 * -EINVAL with *err naming the field.  Only "value" is required.  The members
 * al_entry_to_json() adds are accepted so that an export imports again: "kind" must be the
 * value's, "id", "created" and "created_by" are checked for type and otherwise ignored (the
 * store sets them).  Ports are sorted and merged, sources sorted without repeats, a comment
 * trimmed (empty: none; one line of UTF-8).  *ret is initialised by
 * the call and the caller's to clear, also on error.
 */
int al_entry_from_json(const json_t *o, struct al_entry *ret, struct al_error *err);
/* The same object as above plus "id", "kind", "created", "created_by". New reference. */
json_t *al_entry_to_json(const struct al_entry *e);

/*
 * One line of a text import: "VALUE [proto=tcp] [ports=80,443] [sources=10.1.0.0/16,...]
 * [non_deletable] [# comment]".  Blank lines and lines starting with '#': -ENODATA.
 * Errors as al_entry_from_json (field names the same).
 */
int al_entry_from_line(const char *line, struct al_entry *ret, struct al_error *err);
/* The line al_entry_from_line() reads back to the same entry.  malloc'd, or NULL. */
char *al_entry_to_line(const struct al_entry *e);

/*
 * Is this destination refused (private, loopback, link-local, multicast, documentation,
 * other reserved: the RFC 6890 sets of pfxset_add_reserved())?  A prefix is refused when
 * any part of it is reserved.  *why (may be NULL) gets a static phrase ("is private
 * (RFC 1918)", "is loopback", ...) naming the reason.
 */
bool al_dst_refused(const struct cidr *c, const char **why);

/* Same entry for the store's uniqueness: kind, value, proto, ports, sources. */
bool al_entry_same(const struct al_entry *a, const struct al_entry *b);

/* --- items: what a gateway enforces --- */

enum al_item_kind {
	AL_ITEM_DST,  /* a destination prefix: an AL_IP/AL_CIDR entry, or an address a domain
		       * entry resolved to */
	AL_ITEM_NAME, /* an AL_DOMAIN or AL_WILDCARD entry's name, for the gateways' DNS
		       * learning */
	_AL_ITEM_KIND_MAX,
};

#define AL_KEY_MAX 80

struct al_item {
	/* Unique in a version of the list: "42" for entry 42's own item (its DST for
	 * ip/cidr, its NAME for domain/wildcard), "42/203.0.113.7" for an address entry 42
	 * resolved to (canonical address text). */
	char key[AL_KEY_MAX];
	enum al_item_kind kind;
	int64_t entry;		  /* the entry it comes from */
	char label[AL_VALUE_MAX]; /* the entry's value: metrics label it by this */
	struct cidr dst;	  /* AL_ITEM_DST */
	char name[AL_VALUE_MAX];  /* AL_ITEM_NAME: "example.com" or "*.example.com" */
	enum al_proto proto;	  /* the entry's limits, copied */
	struct range_list ports;
	struct cidr_list sources;
};

void al_item_init(struct al_item *it);
void al_item_clear(struct al_item *it);
int al_item_copy(const struct al_item *it, struct al_item *ret);
/*
 * The items entry e publishes by itself: one (its DST or NAME).  Resolved addresses of a
 * domain entry: al_item_resolved().  0 or -ENOMEM; *ret initialised by the call.
 */
int al_item_of_entry(const struct al_entry *e, struct al_item *ret);
int al_item_resolved(const struct al_entry *e, const struct addr *a, struct al_item *ret);

/*
 * JSON of an item on the wire: {"key": "42/203.0.113.7", "entry": 42, "label":
 * "example.com", "dst": "203.0.113.7/32"} or {..., "name": "*.example.com"}, plus
 * "proto", "ports" (as text), "sources" where the entry limits them.  Parsing refuses what
 * al_entry_from_json would (but not reserved destinations: the agent skips and logs
 * those itself).  -EINVAL with *err.
 */
json_t *al_item_to_json(const struct al_item *it);
int al_item_from_json(const json_t *o, struct al_item *ret, struct al_error *err);
/* Is key an item's key: "42" or "42/ADDRESS" (canonical address text), < AL_KEY_MAX bytes? */
bool al_item_key_valid(const char *key);

#endif
