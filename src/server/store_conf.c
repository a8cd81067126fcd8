/*
 * store_conf.c - the keyword table of [store] and its validation, and how conninfo's
 * passwords are shown (masked) and taken back.
 *
 * Must not hold logic beyond the section's own: opening the store is store.c's.  Must not
 * print or log a password.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "conf.h"
#include "log.h"
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

/* The keywords of a libpq connection string that hold a secret. */
static bool conninfo_secret(const char *keyword)
{
	return streq(keyword, "password") || streq(keyword, "sslpassword");
}

/* Append "keyword=value" to f, the value quoted where libpq needs it (a space, a quote,
 * a backslash, or nothing at all). */
static void conninfo_append(FILE *f, bool first, const char *keyword, const char *value)
{
	bool quote = !*value || strpbrk(value, " \t\n\r\f\v'\\");

	fprintf(f, "%s%s=%s", first ? "" : " ", keyword, quote ? "'" : "");
	for (const char *p = value; quote && *p; p++)
		fprintf(f, "%s%c", *p == '\'' || *p == '\\' ? "\\" : "", *p);
	fprintf(f, "%s%s", quote ? "" : value, quote ? "'" : "");
}

/*
 * opts as a connection string in key=value form (a URI comes back so too), each secret
 * replaced by CONF_SECRET_MASK (mask) or by the running one where it is the mask (from).
 */
static char *conninfo_build(const PQconninfoOption *opts, bool mask, const PQconninfoOption *from)
{
	char *text = NULL;
	size_t len = 0;
	bool first = true;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		fatalx("store: out of memory for a connection string");
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = o->val;

		if (!v)
			continue;
		if (conninfo_secret(o->keyword) && mask)
			v = CONF_SECRET_MASK;
		else if (conninfo_secret(o->keyword) && from && streq(v, CONF_SECRET_MASK))
			for (const PQconninfoOption *r = from; r->keyword; r++)
				if (streq(r->keyword, o->keyword))
					v = r->val;
		conninfo_append(f, first, o->keyword, v);
		first = false;
	}
	if (fclose(f) != 0)
		fatalx("store: out of memory for a connection string");
	return text;
}

static bool conninfo_has_secret(const PQconninfoOption *opts)
{
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (conninfo_secret(o->keyword) && o->val && *o->val)
			return true;
	return false;
}

/* conninfo as -n shows it: as written without a password, else with it masked. */
static char *conninfo_mask(const char *value)
{
	PQconninfoOption *opts = PQconninfoParse(value, NULL);
	char *shown;

	if (!opts)
		return NULL;
	shown = conninfo_has_secret(opts) ? conninfo_build(opts, true, NULL) : xstrdup(value);
	PQconninfoFree(opts);
	return shown;
}

/* A conninfo shown masked and posted back: its masked passwords are the running ones. */
static char *conninfo_unmask(const char *posted, const char *running, const char **why_ret)
{
	PQconninfoOption *opts = PQconninfoParse(posted, NULL), *from = NULL;
	char *made = NULL;

	if (!opts) {
		*why_ret = "expected a libpq connection string (key=value pairs or a URI)";
		return NULL;
	}
	from = running ? PQconninfoParse(running, NULL) : NULL;
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		bool found = false;

		if (!conninfo_secret(o->keyword) || !o->val || !streq(o->val, CONF_SECRET_MASK))
			continue;
		for (const PQconninfoOption *f = from; f && f->keyword; f++)
			if (streq(f->keyword, o->keyword) && f->val && *f->val)
				found = true;
		if (!found) {
			*why_ret = "expected the password itself: " CONF_SECRET_MASK " stands for "
				   "the running one, and there is none";
			goto out;
		}
	}
	made = conninfo_build(opts, false, from);
out:
	PQconninfoFree(opts);
	if (from)
		PQconninfoFree(from);
	return made;
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
		.flags = CONF_SECRET,
		.help = "postgresql: libpq connection string or URI, e.g. "
			"\"host=db1 dbname=egress user=egress\" (a password is better in "
			"~/.pgpass; one here is shown masked)",
		.relevant = is_postgresql,
		.mask = conninfo_mask,
		.unmask = conninfo_unmask,
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
