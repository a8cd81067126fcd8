/*
 * store_conf.c - the keyword table of [store] and its validation.
 *
 * Must not hold logic beyond the section's own: opening the store is store.c's.
 */
#include <stddef.h>

#include "conf_keys.h"
#include "store_conf.h"
#include "util.h"

const char *const store_kind_name[_STORE_KIND_MAX] = {
	[STORE_SQLITE] = "sqlite",
	[STORE_POSTGRESQL] = "postgresql",
};

static bool is_sqlite(const struct conf_section *s)
{
	return ((const struct conf_store *)s)->backend == STORE_SQLITE;
}

static bool is_postgresql(const struct conf_section *s)
{
	return ((const struct conf_store *)s)->backend == STORE_POSTGRESQL;
}

static const struct conf_key store_keys[] = {
	{
		.name = "backend",
		.type = CONF_ENUM,
		KEY(conf_store, backend),
		.def = "sqlite",
		.names = store_kind_name,
		.n_names = _STORE_KIND_MAX,
		.help = "sqlite (one file, one server) or postgresql (several replicas share it)",
	},
	{
		.name = "path",
		.type = CONF_STRING,
		KEY(conf_store, path),
		.def = "/var/lib/egress-server/allowlist.db",
		.help = "sqlite: the database file (WAL mode; its folder must exist)",
		.relevant = is_sqlite,
	},
	{
		.name = "conninfo",
		.type = CONF_STRING,
		KEY(conf_store, conninfo),
		.help = "postgresql: libpq connection string or URI, e.g. "
			"\"host=db1 dbname=egress user=egress\" (a password is better in "
			"~/.pgpass)",
		.relevant = is_postgresql,
	},
	{
		.name = "tombstone_keep",
		.type = CONF_DURATION,
		KEY(conf_store, tombstone_keep_ms),
		.min = 60000,
		.max = 2592000000,
		.def = "168h",
		.help = "how long a deletion is remembered: a gateway away for longer gets a "
			"snapshot instead of a delta",
	},
	{
		.name = "tombstone_max",
		.type = CONF_INT,
		KEY(conf_store, tombstone_max),
		.min = 0,
		.max = 10000000,
		.def = "100000",
		.help = "how many deletions are remembered at most (the oldest go first)",
	},
};

static void store_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_store *c = section;

	(void)conf;
	if (c->backend == STORE_SQLITE && (!c->path || c->path[0] != '/'))
		conf_section_error(errs, &c->s, "path", "expected an absolute path, got \"%s\"",
			c->path ? c->path : "");
	if (c->backend == STORE_POSTGRESQL && (!c->conninfo || !c->conninfo[0]))
		conf_section_error(errs, &c->s, "conninfo",
			"backend postgresql needs a libpq connection string");
}

const struct conf_section_type conf_store_type = {
	.name = "store",
	.size = sizeof(struct conf_store),
	.keys = store_keys,
	.n_keys = ARRAY_SIZE(store_keys),
	.validate = store_validate,
};

const struct conf_store *conf_store(const struct conf *conf)
{
	static const struct conf_section_type *const types[] = {&conf_store_type};
	static struct conf *defaults;
	const struct conf_section *s = conf_find(conf, conf_store_type.name, NULL);

	if (s)
		return (const struct conf_store *)s;
	if (!defaults)
		defaults = conf_new(types, ARRAY_SIZE(types)); /* [store] with its defaults */
	return (const struct conf_store *)conf_find(defaults, conf_store_type.name, NULL);
}
