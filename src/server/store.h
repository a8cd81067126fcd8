/*
 * store.h - egress-server's store: the entries, the items they publish, the versioned
 * change log the hub serves deltas from, the audit log, the gateways' last reports and
 * the resolver's leadership among replicas.
 *
 * Two backends behind one interface (store_int.h): SQLite (one file, WAL, the default)
 * and PostgreSQL through libpq for several replicas sharing one database, where a change
 * made on any replica reaches every replica's subscribers (LISTEN/NOTIFY) and one replica
 * at a time holds the resolver's advisory lock.
 *
 * Versions: one counter for the whole list.  Every committed change that alters the
 * published items (an entry added or deleted, a domain's resolved addresses changing, an
 * import) takes the next version, and every item it sets or deletes is recorded with it,
 * deletions as tombstones.  A gateway holding version N gets the changes after N, or a
 * snapshot when N is older than the oldest tombstone kept (or 0, or newer than the
 * store's).  A function returns only after its change is durable (committed; SQLite
 * synchronous=FULL), so what the API acknowledged survives kill -9.
 *
 * Every function runs on the loop and returns 0 or -errno (logged by the store at debug;
 * the caller reports).  Entries passed in are borrowed; entries and messages handed out
 * are the caller's to clear.
 */
#ifndef EGRESS_STORE_H
#define EGRESS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "al_entry.h"
#include "al_proto.h"

struct conf;
struct event_base;
struct store;

/* Who made a change, for the audit log. */
struct store_who {
	const char *who;  /* "admin", "token:NAME", "resolver", "cert:CN" */
	const char *from; /* peer address, "unix", or NULL */
};

/*
 * Open what conf's [store] says (creating the schema if it is missing).  base for the
 * PostgreSQL backend's notifications and leadership timer.  *ret the caller's.
 */
int store_open(struct event_base *base, const struct conf *conf, struct store **ret);
void store_free(struct store *s);
/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *s);

/* --- entries --- */

/*
 * Add e (its limits normalised by al_entry_from_*).  Sets e->id, e->created,
 * e->created_by.  Publishes the entry's own item (al_item_of_entry) in the same
 * transaction; audited as "add".  -EEXIST when an al_entry_same() entry exists.
 */
int store_entry_add(struct store *s, struct al_entry *e, const struct store_who *who);
/*
 * Delete entry id and every item it publishes (its resolved addresses included).
 * -ENOENT; -EPERM when it is non_deletable and override is false.  With override on a
 * non_deletable entry the audit records "delete-override".
 */
int store_entry_delete(struct store *s, int64_t id, bool override, const struct store_who *who);
int store_entry_get(struct store *s, int64_t id, struct al_entry *ret);
/*
 * Each entry whose value or comment contains search (case-insensitive; NULL: all), in id
 * order; a nonzero return of cb stops and is returned.
 */
int store_entries_each(struct store *s, const char *search,
	int (*cb)(const struct al_entry *e, void *arg), void *arg);
/*
 * Add many entries in one transaction, all or none: an entry that exists already is
 * skipped (not an error), counted in *skipped_ret (may be NULL).  Audited as one
 * "import" with the count.
 */
int store_import(struct store *s, struct al_entry *v, size_t n, const struct store_who *who,
	size_t *skipped_ret);

/* --- what the resolver publishes --- */

/*
 * The addresses domain entry `entry` publishes now (those in their grace period
 * included): the store sets and deletes "ENTRY/ADDR" items so that exactly these remain,
 * in one transaction, and takes a version only if something changed.  -ENOENT when the
 * entry is gone (deleted meanwhile: not an error for the resolver).
 */
int store_resolved_set(struct store *s, int64_t entry, const struct addr *addrs, size_t n);
/* The addresses it publishes now, malloc'd into *ret (NULL when none). */
int store_resolved_get(struct store *s, int64_t entry, struct addr **ret, size_t *n_ret);

/* --- versions, deltas, subscribers --- */

uint64_t store_version(struct store *s);
/*
 * What a gateway holding version `from` needs to reach the current version: a DELTA
 * (from, version, set, del) or, when from is 0, too old or unknown, a SNAPSHOT (every
 * live item).  *ret initialised by the call.
 */
int store_changes(struct store *s, uint64_t from, struct al_msg *ret);
/*
 * cb runs on the loop after the version moved, made here or (PostgreSQL) on another
 * replica, with the new version; several moves may come as one call.  One subscriber
 * per store (the hub); NULL cb removes it.
 */
void store_subscribe(struct store *s, void (*cb)(void *arg, uint64_t version), void *arg);

/* --- audit --- */

/*
 * Record an action that is not an entry change (token made, login, gateway refused...).
 * detail: a JSON object or NULL (borrowed).
 */
int store_audit(struct store *s, const struct store_who *who, const char *action,
	int64_t entry, const json_t *detail);
/*
 * Each audit record with id > after, oldest first, at most limit (0: no limit): {"id",
 * "time" (ISO 8601 UTC), "who", "from", "action", "entry", "detail"}.  The record is
 * borrowed for the call (json_incref() to keep it).  cb's nonzero return stops.
 */
int store_audit_each(struct store *s, int64_t after, size_t limit,
	int (*cb)(json_t *record, void *arg), void *arg);

/* --- gateways and replicas --- */

/*
 * A gateway's state as the hub of this replica sees it; kept so that every replica's API
 * shows every gateway.  connected false when it went away; such a report from a replica
 * other than the one the gateway is connected to is ignored (it moved there).
 */
struct store_gateway {
	char name[AL_GATEWAY_MAX];
	char replica[64];   /* [server] name of the replica it is connected to */
	char peer[64];	    /* its address */
	uint64_t version;   /* acknowledged */
	int64_t last_seen;  /* unix ms of its last message or pong */
	bool connected;
};
int store_gateway_report(struct store *s, const struct store_gateway *g);
int store_gateways_each(struct store *s, int (*cb)(const struct store_gateway *g, void *arg),
	void *arg);

/*
 * Should this replica run the resolver now?  SQLite: always true.  PostgreSQL: holds or
 * takes a session advisory lock (it is released when the replica's connection dies, so
 * another replica takes over on its next try).  Called by the resolver before each round.
 */
bool store_leader(struct store *s);

#endif
