/*
 * store_int.h - what a backend of the store (store_sqlite.c, store_pg.c) provides:
 * store.c checks arguments, keeps the subscriber, and calls these.  Each member has the
 * meaning of the store.h function of the same name, on the backend's own state.
 */
#ifndef EGRESS_STORE_INT_H
#define EGRESS_STORE_INT_H

#include "store.h"

struct store_backend_ops {
	const char *name; /* "sqlite", "postgresql" */
	/* *ret is the backend's state, handed back as `b` below. */
	int (*open)(struct store *s, struct event_base *base, const struct conf *conf, void **ret);
	void (*close)(void *b);
	int (*entry_add)(void *b, struct al_entry *e, const struct store_who *who);
	int (*entry_delete)(void *b, int64_t id, bool override, const struct store_who *who);
	int (*entry_get)(void *b, int64_t id, struct al_entry *ret);
	int (*entries_each)(void *b, const char *search,
		int (*cb)(const struct al_entry *e, void *arg), void *arg);
	int (*import)(void *b, struct al_entry *v, size_t n, const struct store_who *who,
		size_t *skipped_ret);
	int (*resolved_set)(void *b, int64_t entry, const struct addr *addrs, size_t n);
	int (*resolved_get)(void *b, int64_t entry, struct addr **ret, size_t *n_ret);
	uint64_t (*version)(void *b);
	int (*changes)(void *b, uint64_t from, struct al_msg *ret);
	int (*audit)(void *b, const struct store_who *who, const char *action, int64_t entry,
		const json_t *detail);
	int (*audit_each)(void *b, int64_t after, size_t limit,
		int (*cb)(json_t *record, void *arg), void *arg);
	int (*gateway_report)(void *b, const struct store_gateway *g);
	int (*gateways_each)(void *b, int (*cb)(const struct store_gateway *g, void *arg),
		void *arg);
	bool (*leader)(void *b);
};

extern const struct store_backend_ops store_sqlite_ops;
extern const struct store_backend_ops store_pg_ops;

/*
 * For a backend: the version moved (its own commit, or a notification from another
 * replica).  store.c calls the subscriber on the next loop turn, once per turn.
 */
void store_version_moved(struct store *s, uint64_t version);

#endif
