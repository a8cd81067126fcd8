/*
 * dispatch.h - which uplink a new proxied connection leaves through.
 *
 * go-dispatch-proxy's "contention ratio", made deterministic: among the usable uplinks, uplink
 * i gets weight_i / (sum of the usable uplinks' weights) of the new connections, spread by
 * smooth weighted round robin (nginx's), so 1000 connections at 3:2 are exactly 600/400.
 * Per-client rules (exact address or CIDR, the longest prefix wins) carry weights of their own
 * and a round-robin state of their own.  Optional affinity keeps a client on the uplink it got
 * for a while, in a bounded table; the ratio then holds over the picks that are not held.
 *
 * Pure: no sockets, no logging, no clock (the time is passed in).  Not thread-safe.
 */
#ifndef EGRESS_DISPATCH_H
#define EGRESS_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

/* Bounds on what configuration (or a rules file) can make us allocate. */
#define DISPATCH_MAX_UPLINKS	 256
#define DISPATCH_MAX_RULES	 65536
#define DISPATCH_MAX_WEIGHT	 1000000
#define DISPATCH_AFFINITY_MAX	 65536 /* clients remembered, by default */
#define DISPATCH_MAX_DESCRIPTION 1024  /* bytes of a rule's description kept */

struct dispatch; /* owns its state */

/* The caller's view of one uplink, by index.  weight <= 0: never picked by default. */
struct dispatch_uplink {
	const char *name;
	int weight;
	bool usable;
};

/* A new dispatcher (owned by the caller: dispatch_free()) without uplinks, rules or affinity. */
struct dispatch *dispatch_new(void);
/* Accepts NULL. */
void dispatch_free(struct dispatch *d);

/*
 * Replace the uplinks (index = position in v; v is borrowed, names and weights are copied).
 * Round-robin and affinity state follow an uplink by name where it stays; affinity to an
 * uplink that is gone is forgotten.  Rules keep their weights by index: reload them when the
 * order of the uplinks changes.  -E2BIG (nothing changed) past DISPATCH_MAX_UPLINKS.
 */
int dispatch_set_uplinks(struct dispatch *d, const struct dispatch_uplink *v, size_t n);
/* Out-of-range i is ignored. */
void dispatch_set_usable(struct dispatch *d, size_t i, bool usable);
size_t dispatch_n_uplinks(const struct dispatch *d);

/*
 * Add a rule: clients inside src (borrowed; host bits ignored) use weights[0..n) (borrowed,
 * copied) per uplink index; an index past n, or weight 0, means "not for these clients".  If
 * none of the uplinks the rule names is usable, its clients get the default weights.
 * description (borrowed, copied, may be NULL) is for the operator.
 * -EINVAL unset family or negative weight, -ERANGE weight above DISPATCH_MAX_WEIGHT or n above
 * DISPATCH_MAX_UPLINKS, -EEXIST a rule for that very prefix exists, -E2BIG too many rules.
 */
int dispatch_add_rule(struct dispatch *d, const struct cidr *src, const int *weights, size_t n,
	const char *description);
void dispatch_clear_rules(struct dispatch *d);
size_t dispatch_rule_count(const struct dispatch *d);
/*
 * Rule i (in the order added): everything returned points into d and stays valid until the
 * rules change.  Any output may be NULL.  -ENOENT if i is out of range.
 */
int dispatch_rule_get(const struct dispatch *d, size_t i, struct cidr *src, const int **weights,
	size_t *n, const char **description);
/* The index of the rule client falls under (longest prefix), -1 if none. */
int dispatch_match_rule(const struct dispatch *d, const struct addr *client);

/* 0 turns affinity off and forgets every client. */
void dispatch_set_affinity(struct dispatch *d, uint32_t affinity_ms);
/*
 * At most max clients are remembered (default DISPATCH_AFFINITY_MAX; 1 or more); when full,
 * the client idle the longest is forgotten first.  Changing it forgets every client.
 */
void dispatch_set_affinity_limit(struct dispatch *d, size_t max);
/* Clients remembered now, expired ones included until they are swept. */
size_t dispatch_affinity_count(const struct dispatch *d);
/* The uplink client is held to at now_ms (usable or not), or -1. */
int dispatch_affinity_get(const struct dispatch *d, const struct addr *client, uint64_t now_ms);

/*
 * The uplink index for a new connection from client (borrowed; NULL or unset: no rule, no
 * affinity; IPv4-mapped IPv6 is taken as IPv4) at now_ms, or -1 if none is usable.
 * exclude: an index to avoid (the one that just failed), -1 for none.  If it is the only
 * usable one, -1: the caller decides.  For rules, an excluded uplink counts as not usable.
 */
int dispatch_pick(struct dispatch *d, const struct addr *client, uint64_t now_ms, int exclude);

/*
 * The uplinks client may also leave through besides first (the one it was given), for racing
 * a slow connect: into out[0..max), heaviest first (ties: lower index), the count returned.
 * The weights are the client's as dispatch_pick() sees them with nothing excluded: its rule's
 * while any uplink the rule gives weight is usable (first included), so an uplink the rule
 * leaves out never carries its connections; else the defaults.  Only usable uplinks of
 * weight > 0.  Changes no state.
 */
size_t dispatch_candidates(const struct dispatch *d, const struct addr *client, int first,
	int *out, size_t max);

/*
 * Load go-dispatch-proxy's client rules file (text: len bytes, borrowed, need not end in NUL):
 *   {"<uplink>": {"<client IP or CIDR>": {"source_ip": "<the same client>",
 *     "contention_ratio": N, "description": "..."}}}
 * where N is 0..1000 and source_ip and description are optional.  resolve(uplink key exactly
 * as written, e.g. "192.168.1.10:0", arg) returns the uplink index or -1 (dispatch_uplink_key()
 * helps).  One rule per distinct client prefix, with the weight of every uplink that names it;
 * a description is the first non-empty one.  On error, -EINVAL (or -EEXIST, -E2BIG) and a
 * message in err (errlen bytes, caller's) giving jansson's line and column or the JSON path,
 * e.g. "192.168.1.10:0"."192.168.100.0/24".contention_ratio, what was expected and what was
 * seen; no rule is added then.
 */
int dispatch_load_rules_json(struct dispatch *d, const char *text, size_t len,
	int (*resolve)(const char *uplink, void *arg), void *arg, char *err, size_t errlen);

/*
 * The address of an uplink key of that file: "IP:PORT", "[IPv6]:PORT" or a bare "IP".
 * *ret_port (optional) gets the port (0 when bare).  -EINVAL if it is none of these.
 */
int dispatch_uplink_key(const char *key, struct addr *ret, uint16_t *ret_port);

#endif
