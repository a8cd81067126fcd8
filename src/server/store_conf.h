/*
 * store_conf.h - egress-server's [store] section: which backend keeps the allowlist,
 * where, and how much change history (tombstones) it keeps for the gateways' deltas.
 *
 * store_conf.c describes the keys; the store (store.c and its backends) reads the struct,
 * only the config machinery writes it.
 */
#ifndef EGRESS_STORE_CONF_H
#define EGRESS_STORE_CONF_H

#include <stdint.h>

#include "conf.h"

enum store_kind {
	STORE_SQLITE,
	STORE_POSTGRESQL,
	_STORE_KIND_MAX,
};
extern const char *const store_kind_name[_STORE_KIND_MAX]; /* "sqlite", "postgresql" */

/* [store] */
struct conf_store {
	struct conf_section s;
	int backend;		    /* enum store_kind */
	char *path;		    /* sqlite: the database file (its folder must exist) */
	char *conninfo;		    /* postgresql: a libpq connection string or URI */
	uint32_t tombstone_keep_ms; /* a deletion is remembered this long for deltas */
	int tombstone_max;	    /* and at most this many deletions are remembered */
};

extern const struct conf_section_type conf_store_type;

/*
 * The [store] section of conf; a configuration without one gets the defaults (a section
 * kept by store_conf.c, never freed).  Borrowed.
 */
const struct conf_store *conf_store(const struct conf *conf);

#endif
