/*
 * store_sqlite.c - the store in one SQLite file: the default backend, for one server.
 *
 * WAL journal with synchronous=FULL: a call returns after its transaction is in the
 * log on disk, so what the API acknowledged survives kill -9 and power loss.  Every
 * change is one IMMEDIATE transaction; a failure rolls it back whole.
 *
 * Tables:
 *   meta (k, v)      "schema" 1, "version" (the list's), "floor" (the newest version whose
 *                    tombstones were dropped: deltas start at it or later)
 *   entries          one row per entry; "spec" is its JSON without the store's members
 *                    (read back through al_entry_from_json, so the model owns the format)
 *   items (key ...)  each item ever published: its JSON and the version that set it, or
 *                    NULL and the version that deleted it (a tombstone)
 *   audit            who did what, when, from where
 *   gateways         each gateway's last report
 *
 * Must not check arguments (store.c does) nor hold a policy of its own beyond keeping
 * the schema's invariants.  There is one replica, so it always leads the resolver.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "fileio.h"
#include "log.h"
#include "store_conf.h"
#include "store_int.h"
#include "util.h"

#define SCHEMA_VERSION 1

/* Statements are prepared once per SQL text (a literal: known by its address). */
#define STMT_CACHE 32

struct sq_stmt {
	const char *sql;
	sqlite3_stmt *st;
	bool busy; /* handed out: a nested use of the same SQL gets a statement of its own */
};

struct sqlite_store {
	struct store *s;
	sqlite3 *db;
	struct sq_stmt cache[STMT_CACHE];
	size_t n_cache;
	char *path;
	uint64_t version;	/* committed */
	uint64_t keep_ms;	/* [store] tombstone_keep */
	int64_t max_tombstones; /* [store] tombstone_max */
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES ('schema', 1), ('version', 0), ('floor', 0);"
	"CREATE TABLE IF NOT EXISTS entries ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind TEXT NOT NULL, value TEXT NOT NULL, spec TEXT NOT NULL, comment TEXT,"
	" non_deletable INTEGER NOT NULL, created INTEGER NOT NULL, created_by TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS entries_value ON entries (value);"
	"CREATE TABLE IF NOT EXISTS items ("
	" key TEXT PRIMARY KEY, entry INTEGER NOT NULL, version INTEGER NOT NULL,"
	" item TEXT, changed INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS items_version ON items (version);"
	"CREATE INDEX IF NOT EXISTS items_entry ON items (entry);"
	"CREATE INDEX IF NOT EXISTS items_tombstones ON items (version) WHERE item IS NULL;"
	"CREATE TABLE IF NOT EXISTS audit ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, who TEXT NOT NULL,"
	" peer TEXT, action TEXT NOT NULL, entry INTEGER, detail TEXT);"
	"CREATE TABLE IF NOT EXISTS gateways ("
	" name TEXT PRIMARY KEY, replica TEXT NOT NULL, peer TEXT NOT NULL,"
	" version INTEGER NOT NULL, last_seen INTEGER NOT NULL, connected INTEGER NOT NULL);";

/* -errno for an SQLite result code, its message at debug. */
static int sq_err(struct sqlite_store *b, int rc, const char *what)
{
	log_debug("store %s: %s: %s", b->path, what, sqlite3_errmsg(b->db));
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int sq_exec(struct sqlite_store *b, const char *sql)
{
	int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_err(b, rc, sql);
}

/* A statement of sql (a string literal), to give back with sq_release(). */
static int sq_prepare(struct sqlite_store *b, const char *sql, sqlite3_stmt **ret)
{
	struct sq_stmt *c;
	int rc;

	for (size_t i = 0; i < b->n_cache; i++) {
		c = &b->cache[i];
		if (c->sql == sql && !c->busy) {
			c->busy = true;
			*ret = c->st;
			return 0;
		}
	}
	rc = sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL);
	if (rc != SQLITE_OK)
		return sq_err(b, rc, sql);
	if (b->n_cache < STMT_CACHE)
		b->cache[b->n_cache++] = (struct sq_stmt){.sql = sql, .st = *ret, .busy = true};
	return 0;
}

/* Done with st: reset for its next use, or finalised if it is not kept. */
static void sq_release(struct sqlite_store *b, sqlite3_stmt *st)
{
	for (size_t i = 0; i < b->n_cache; i++) {
		if (b->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			b->cache[i].busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

/* Run a statement that returns no row, and finalise it. */
static int sq_done(struct sqlite_store *b, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_DONE ? 0 : sq_err(b, rc, sqlite3_sql(st));

	sq_release(b, st);
	return r;
}

/* Bind text that may be NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static int meta_get(struct sqlite_store *b, const char *k, int64_t *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	r = sq_prepare(b, "SELECT v FROM meta WHERE k = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EIO : sq_err(b, rc, "meta");
	sq_release(b, st);
	return r;
}

static int meta_set(struct sqlite_store *b, const char *k, int64_t v)
{
	sqlite3_stmt *st;
	int r = sq_prepare(b, "UPDATE meta SET v = ? WHERE k = ?", &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_text(st, 2, k, -1, SQLITE_STATIC);
	return sq_done(b, st);
}

/* --- transactions --- */

static int tx_begin(struct sqlite_store *b)
{
	return sq_exec(b, "BEGIN IMMEDIATE");
}

/* Commit; on failure roll back (nothing of it stays). */
static int tx_commit(struct sqlite_store *b)
{
	int r = sq_exec(b, "COMMIT");

	if (r < 0)
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* Roll back if a transaction is open; returns r. */
static int tx_abort(struct sqlite_store *b, int r)
{
	if (!sqlite3_get_autocommit(b->db))
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/*
 * The version a change in the open transaction takes; tx_commit_version() commits it.  Read
 * from the file, not from memory: another process writing the same file (one it should
 * not share) can make the versions stale, never reuse one.
 */
static int tx_version(struct sqlite_store *b, uint64_t *ret)
{
	int64_t v;
	int r = meta_get(b, "version", &v);

	if (r < 0)
		return r;
	*ret = (uint64_t)v + 1;
	return meta_set(b, "version", v + 1);
}

/* Commit a transaction that took version v (0: none) and tell the subscriber. */
static int tx_commit_version(struct sqlite_store *b, uint64_t v)
{
	int r = tx_commit(b);

	if (r < 0 || !v)
		return r;
	b->version = v;
	store_version_moved(b->s, v);
	return 0;
}

/* --- entries --- */

/* The entry's JSON without what the store keeps in its own columns. */
static char *entry_spec(const struct al_entry *e)
{
	static const char *const own[] = {
		"id", "kind", "created", "created_by", "comment", "non_deletable"};
	json_t *o = al_entry_to_json(e);
	char *spec;

	if (!o)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(own); i++)
		json_object_del(o, own[i]);
	spec = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return spec;
}

#define ENTRY_COLUMNS "id, spec, comment, non_deletable, created, created_by"

/* The entry of a row selected with ENTRY_COLUMNS, into *ret (initialised here). */
static int entry_of_row(struct sqlite_store *b, sqlite3_stmt *st, struct al_entry *ret)
{
	const char *spec = (const char *)sqlite3_column_text(st, 1);
	const char *comment = (const char *)sqlite3_column_text(st, 2);
	struct al_error err;
	json_t *o = spec ? json_loads(spec, 0, NULL) : NULL;
	int r;

	al_entry_init(ret);
	if (!o) {
		log_debug("store %s: entry %lld: unreadable", b->path,
			(long long)sqlite3_column_int64(st, 0));
		return -EIO;
	}
	r = al_entry_from_json(o, ret, &err);
	json_decref(o);
	if (r < 0) {
		log_debug("store %s: entry %lld: %s: %s", b->path,
			(long long)sqlite3_column_int64(st, 0), err.field, err.msg);
		return -EIO;
	}
	ret->id = sqlite3_column_int64(st, 0);
	ret->comment = comment ? xstrdup(comment) : NULL;
	ret->non_deletable = sqlite3_column_int(st, 3) != 0;
	ret->created = sqlite3_column_int64(st, 4);
	ret->created_by = xstrdup((const char *)sqlite3_column_text(st, 5));
	return 0;
}

static int sq_entry_get(void *bv, int64_t id, struct al_entry *ret)
{
	struct sqlite_store *b = bv;
	sqlite3_stmt *st;
	int rc, r;

	r = sq_prepare(b, "SELECT " ENTRY_COLUMNS " FROM entries WHERE id = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = entry_of_row(b, st, ret);
	else
		r = rc == SQLITE_DONE ? -ENOENT : sq_err(b, rc, "entry");
	sq_release(b, st);
	return r;
}

/*
 * cb for each entry of a statement selecting ENTRY_COLUMNS, which it finalises; a nonzero
 * return of cb stops and is returned.
 */
static int entries_walk(struct sqlite_store *b, sqlite3_stmt *st,
	int (*cb)(const struct al_entry *e, void *arg), void *arg)
{
	struct al_entry e;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = entry_of_row(b, st, &e);
		if (r == 0)
			r = cb(&e, arg);
		al_entry_clear(&e);
		if (r)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sq_err(b, rc, "entries");
	sq_release(b, st);
	return r;
}

static int same_cb(const struct al_entry *e, void *arg)
{
	const struct al_entry *const *want = arg;

	return al_entry_same(e, *want);
}

/* Is there an entry al_entry_same() as e?  1, 0 or -errno. */
static int entry_exists(struct sqlite_store *b, const struct al_entry *e)
{
	sqlite3_stmt *st;
	int r;

	r = sq_prepare(
		b, "SELECT " ENTRY_COLUMNS " FROM entries WHERE value = ? AND kind = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, e->value, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, al_kind_name[e->kind], -1, SQLITE_STATIC);
	return entries_walk(b, st, same_cb, &e);
}

/* Set (item non-NULL) or delete (NULL: a tombstone) the item key in version v. */
static int item_put(struct sqlite_store *b, const char *key, int64_t entry, uint64_t v,
	const struct al_item *it)
{
	sqlite3_stmt *st;
	json_t *o = NULL;
	char *text = NULL;
	int r;

	if (it) {
		o = al_item_to_json(it);
		text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text)
			return -ENOMEM;
	}
	r = sq_prepare(b,
		"INSERT INTO items (key, entry, version, item, changed) VALUES (?, ?, ?, ?, ?) "
		"ON CONFLICT (key) DO UPDATE SET entry = excluded.entry, "
		"version = excluded.version, item = excluded.item, changed = excluded.changed",
		&st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, entry);
		sqlite3_bind_int64(st, 3, (int64_t)v);
		bind_text(st, 4, text);
		sqlite3_bind_int64(st, 5, clock_wall_ms());
		r = sq_done(b, st);
	}
	free(text);
	return r;
}

/* Publish e's own item in version v. */
static int entry_publish(struct sqlite_store *b, const struct al_entry *e, uint64_t v)
{
	struct al_item it;
	int r = al_item_of_entry(e, &it);

	if (r == 0)
		r = item_put(b, it.key, e->id, v, &it);
	al_item_clear(&it);
	return r;
}

static int audit_insert(struct sqlite_store *b, const struct store_who *who, const char *action,
	int64_t entry, const json_t *detail)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	sqlite3_stmt *st;
	int r;

	if (detail && !text)
		return -ENOMEM;
	r = sq_prepare(b,
		"INSERT INTO audit (time, who, peer, action, entry, detail) "
		"VALUES (?, ?, ?, ?, ?, ?)",
		&st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, clock_wall_ms());
		sqlite3_bind_text(st, 2, who->who, -1, SQLITE_STATIC);
		bind_text(st, 3, who->from);
		sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
		if (entry > 0)
			sqlite3_bind_int64(st, 5, entry);
		else
			sqlite3_bind_null(st, 5);
		bind_text(st, 6, text);
		r = sq_done(b, st);
	}
	free(text);
	return r;
}

/* An entry change's audit record: the entry's JSON as its detail. */
static int audit_entry(struct sqlite_store *b, const struct store_who *who, const char *action,
	const struct al_entry *e)
{
	json_t *o = al_entry_to_json(e);
	int r;

	if (!o)
		return -ENOMEM;
	r = audit_insert(b, who, action, e->id, o);
	json_decref(o);
	return r;
}

/* Insert e (not yet there) in the open transaction; sets its id, created, created_by. */
static int entry_insert(struct sqlite_store *b, struct al_entry *e, const struct store_who *who)
{
	char *spec = entry_spec(e);
	sqlite3_stmt *st;
	int r;

	if (!spec)
		return -ENOMEM;
	r = sq_prepare(b,
		"INSERT INTO entries (kind, value, spec, comment, non_deletable, created, "
		"created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
		&st);
	if (r == 0) {
		e->created = (int64_t)time(NULL);
		sqlite3_bind_text(st, 1, al_kind_name[e->kind], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, e->value, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, spec, -1, SQLITE_STATIC);
		bind_text(st, 4, e->comment);
		sqlite3_bind_int(st, 5, e->non_deletable);
		sqlite3_bind_int64(st, 6, e->created);
		sqlite3_bind_text(st, 7, who->who, -1, SQLITE_STATIC);
		r = sq_done(b, st);
	}
	free(spec);
	if (r < 0)
		return r;
	e->id = sqlite3_last_insert_rowid(b->db);
	free(e->created_by);
	e->created_by = xstrdup(who->who);
	return 0;
}

/* Forget what entry_insert() set on e, after a rollback. */
static void entry_uninsert(struct al_entry *e)
{
	e->id = 0;
	e->created = 0;
	FREE_AND_NULL(e->created_by);
}

/*
 * Drop tombstones older than tombstone_keep, and the oldest beyond tombstone_max; raise
 * the floor to the newest version dropped (deltas from before it would miss deletions).
 */
static int tombstones_prune(struct sqlite_store *b)
{
	sqlite3_stmt *st;
	int64_t floor, dropped = 0;
	int rc, r;

	r = sq_prepare(b,
		"SELECT max(version) FROM ("
		" SELECT version FROM items WHERE item IS NULL AND changed < ?1"
		" UNION ALL"
		" SELECT version FROM (SELECT version FROM items WHERE item IS NULL"
		"  ORDER BY version DESC LIMIT -1 OFFSET ?2))",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, clock_wall_ms() - (int64_t)b->keep_ms);
	sqlite3_bind_int64(st, 2, b->max_tombstones);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		dropped = sqlite3_column_int64(st, 0); /* NULL (nothing to drop) reads 0 */
	else
		r = sq_err(b, rc, "tombstones");
	sq_release(b, st);
	if (r < 0 || dropped <= 0)
		return r;
	r = sq_prepare(b, "DELETE FROM items WHERE item IS NULL AND version <= ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, dropped);
	r = sq_done(b, st);
	if (r == 0)
		r = meta_get(b, "floor", &floor);
	if (r == 0 && dropped > floor)
		r = meta_set(b, "floor", dropped);
	return r;
}

static int sq_entry_add(void *bv, struct al_entry *e, const struct store_who *who)
{
	struct sqlite_store *b = bv;
	bool inserted = false;
	uint64_t v = 0;
	int r;

	r = tx_begin(b);
	if (r < 0)
		return r;
	r = entry_exists(b, e);
	if (r > 0)
		r = -EEXIST;
	if (r == 0) {
		r = entry_insert(b, e, who);
		inserted = r == 0;
	}
	if (r == 0)
		r = tx_version(b, &v);
	if (r == 0)
		r = entry_publish(b, e, v);
	if (r == 0)
		r = audit_entry(b, who, "add", e);
	if (r == 0)
		r = tx_commit_version(b, v);
	if (r < 0 && inserted)
		entry_uninsert(e);
	return tx_abort(b, r);
}

/* Tombstone every live item of entry in version v. */
static int entry_unpublish(struct sqlite_store *b, int64_t entry, uint64_t v)
{
	sqlite3_stmt *st;
	int r;

	r = sq_prepare(b,
		"UPDATE items SET item = NULL, version = ?, changed = ? "
		"WHERE entry = ? AND item IS NOT NULL",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (int64_t)v);
	sqlite3_bind_int64(st, 2, clock_wall_ms());
	sqlite3_bind_int64(st, 3, entry);
	return sq_done(b, st);
}

static int sq_entry_delete(void *bv, int64_t id, bool override, const struct store_who *who)
{
	struct sqlite_store *b = bv;
	struct al_entry e;
	sqlite3_stmt *st;
	uint64_t v = 0;
	int r;

	al_entry_init(&e);
	r = tx_begin(b);
	if (r < 0)
		return r;
	r = sq_entry_get(b, id, &e);
	if (r == 0 && e.non_deletable && !override)
		r = -EPERM;
	if (r == 0)
		r = tx_version(b, &v);
	if (r == 0)
		r = entry_unpublish(b, id, v);
	if (r == 0)
		r = sq_prepare(b, "DELETE FROM entries WHERE id = ?", &st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, id);
		r = sq_done(b, st);
	}
	if (r == 0)
		r = audit_entry(b, who, e.non_deletable ? "delete-override" : "delete", &e);
	if (r == 0)
		r = tombstones_prune(b);
	if (r == 0)
		r = tx_commit_version(b, v);
	al_entry_clear(&e);
	return tx_abort(b, r);
}

static int sq_entries_each(
	void *bv, const char *search, int (*cb)(const struct al_entry *e, void *arg), void *arg)
{
	struct sqlite_store *b = bv;
	sqlite3_stmt *st;
	int r;

	/* instr(), not LIKE: the search is plain text, '%' and '_' included. */
	r = sq_prepare(b,
		"SELECT " ENTRY_COLUMNS " FROM entries WHERE ?1 IS NULL"
		" OR instr(lower(value), lower(?1)) > 0"
		" OR instr(lower(coalesce(comment, '')), lower(?1)) > 0 ORDER BY id",
		&st);
	if (r < 0)
		return r;
	bind_text(st, 1, search);
	return entries_walk(b, st, cb, arg);
}

static int sq_import(
	void *bv, struct al_entry *v, size_t n, const struct store_who *who, size_t *skipped_ret)
{
	struct sqlite_store *b = bv;
	bool *inserted = xcalloc(n ? n : 1, sizeof(*inserted));
	size_t skipped = 0, added = 0;
	uint64_t ver = 0;
	json_t *detail;
	int r;

	r = tx_begin(b);
	if (r < 0) {
		free(inserted);
		return r;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		r = entry_exists(b, &v[i]);
		if (r > 0) {
			skipped++;
			r = 0;
			continue;
		}
		if (r == 0 && !ver)
			r = tx_version(b, &ver); /* the import's, if it adds any */
		if (r == 0) {
			r = entry_insert(b, &v[i], who);
			inserted[i] = r == 0;
		}
		if (r == 0)
			r = entry_publish(b, &v[i], ver);
		added += r == 0;
	}
	if (r == 0) {
		detail = json_pack(
			"{sI sI}", "added", (json_int_t)added, "skipped", (json_int_t)skipped);
		r = detail ? audit_insert(b, who, "import", 0, detail) : -ENOMEM;
		json_decref(detail);
	}
	if (r == 0)
		r = tx_commit_version(b, ver);
	for (size_t i = 0; i < n && r < 0; i++)
		if (inserted[i])
			entry_uninsert(&v[i]);
	free(inserted);
	if (r == 0)
		*skipped_ret = skipped;
	return tx_abort(b, r);
}

/* --- what the resolver publishes --- */

/* The live resolved items of entry: their keys ("42/ADDR"), sorted, into *ret. */
static int resolved_keys(struct sqlite_store *b, int64_t entry, struct word_list *ret)
{
	sqlite3_stmt *st;
	char prefix[32];
	int rc, r;

	snprintf(prefix, sizeof(prefix), "%lld/", (long long)entry);
	r = sq_prepare(b,
		"SELECT key FROM items WHERE entry = ? AND item IS NOT NULL "
		"AND substr(key, 1, ?) = ? ORDER BY key",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, entry);
	sqlite3_bind_int(st, 2, (int)strlen(prefix));
	sqlite3_bind_text(st, 3, prefix, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret->v = xrealloc(ret->v, (ret->n + 1) * sizeof(*ret->v));
		ret->v[ret->n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	if (rc != SQLITE_DONE)
		r = sq_err(b, rc, "items");
	sq_release(b, st);
	return r;
}

static void words_clear(struct word_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static bool words_has(const struct word_list *l, const char *w)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->v[i], w))
			return true;
	return false;
}

/* The item key of address a of entry e into *key (AL_KEY_MAX). */
static void resolved_key(const struct al_entry *e, const struct addr *a, char *key)
{
	char buf[ADDR_STRLEN];

	snprintf(key, AL_KEY_MAX, "%lld/%s", (long long)e->id, addr_str(a, buf, sizeof(buf)));
}

static int sq_resolved_set(void *bv, int64_t entry, const struct addr *addrs, size_t n)
{
	struct sqlite_store *b = bv;
	struct word_list now = {0}, want = {0};
	char key[AL_KEY_MAX];
	struct al_entry e;
	struct al_item it;
	uint64_t v = 0;
	int r;

	al_entry_init(&e);
	r = tx_begin(b);
	if (r < 0)
		return r;
	r = sq_entry_get(b, entry, &e);
	if (r == 0 && e.kind != AL_DOMAIN)
		r = -EINVAL;
	if (r == 0)
		r = resolved_keys(b, entry, &now);
	for (size_t i = 0; i < n && r == 0; i++) {
		resolved_key(&e, &addrs[i], key);
		if (words_has(&want, key))
			continue;
		want.v = xrealloc(want.v, (want.n + 1) * sizeof(*want.v));
		want.v[want.n++] = xstrdup(key);
		if (words_has(&now, key))
			continue;
		al_item_init(&it);
		if (!v)
			r = tx_version(b, &v);
		if (r == 0)
			r = al_item_resolved(&e, &addrs[i], &it);
		if (r == 0)
			r = item_put(b, key, entry, v, &it);
		al_item_clear(&it);
	}
	for (size_t i = 0; i < now.n && r == 0; i++) {
		if (words_has(&want, now.v[i]))
			continue;
		if (!v)
			r = tx_version(b, &v);
		if (r == 0)
			r = item_put(b, now.v[i], entry, v, NULL);
	}
	if (r == 0 && v)
		r = tombstones_prune(b);
	if (r == 0)
		r = tx_commit_version(b, v);
	words_clear(&now);
	words_clear(&want);
	al_entry_clear(&e);
	return tx_abort(b, r);
}

static int sq_resolved_get(void *bv, int64_t entry, struct addr **ret, size_t *n_ret)
{
	struct sqlite_store *b = bv;
	struct word_list keys = {0};
	struct addr *v = NULL;
	struct al_entry e;
	size_t n = 0;
	int r;

	al_entry_init(&e);
	r = sq_exec(b, "BEGIN");
	if (r < 0)
		return r;
	r = sq_entry_get(b, entry, &e);
	al_entry_clear(&e);
	if (r == 0)
		r = resolved_keys(b, entry, &keys);
	if (r == 0 && keys.n)
		v = xcalloc(keys.n, sizeof(*v));
	for (size_t i = 0; i < keys.n && r == 0; i++)
		if (addr_parse(strchr(keys.v[i], '/') + 1, &v[n++]) < 0)
			r = -EIO;
	words_clear(&keys);
	tx_abort(b, 0);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

/* --- versions --- */

static uint64_t sq_version(void *bv)
{
	return ((struct sqlite_store *)bv)->version;
}

/* Append the items selected by st (key, item) to m: set when live, del when NULL. */
static int changes_rows(struct sqlite_store *b, sqlite3_stmt *st, struct al_msg *m)
{
	struct al_error err;
	struct al_item it;
	const char *text;
	json_t *o;
	int rc, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		text = (const char *)sqlite3_column_text(st, 1);
		if (!text) {
			r = al_msg_add_del(m, (const char *)sqlite3_column_text(st, 0));
			continue;
		}
		al_item_init(&it);
		o = json_loads(text, 0, NULL);
		r = o ? al_item_from_json(o, &it, &err) : -EIO;
		json_decref(o);
		if (r == 0)
			r = al_msg_add_set(m, &it);
		else
			log_debug("store %s: item %s: unreadable", b->path,
				(const char *)sqlite3_column_text(st, 0));
		al_item_clear(&it);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(b, rc, "items");
	return r;
}

static int sq_changes(void *bv, uint64_t from, struct al_msg *ret)
{
	struct sqlite_store *b = bv;
	int64_t version, floor;
	sqlite3_stmt *st;
	int r;

	r = sq_exec(b, "BEGIN");
	if (r < 0)
		return r;
	r = meta_get(b, "version", &version);
	if (r == 0)
		r = meta_get(b, "floor", &floor);
	if (r < 0)
		return tx_abort(b, r);
	ret->version = (uint64_t)version;
	if (from == 0 || from > (uint64_t)version || from < (uint64_t)floor) {
		ret->type = AL_MSG_SNAPSHOT;
		r = sq_prepare(
			b, "SELECT key, item FROM items WHERE item IS NOT NULL ORDER BY key", &st);
	} else {
		ret->type = AL_MSG_DELTA;
		ret->from = from;
		r = sq_prepare(b,
			"SELECT key, item FROM items WHERE version > ? ORDER BY version, key", &st);
		if (r == 0)
			sqlite3_bind_int64(st, 1, (int64_t)from);
	}
	if (r == 0) {
		r = changes_rows(b, st, ret);
		sq_release(b, st);
	}
	return tx_abort(b, r);
}

/* --- audit --- */

static int sq_audit(void *bv, const struct store_who *who, const char *action, int64_t entry,
	const json_t *detail)
{
	struct sqlite_store *b = bv;
	int r = tx_begin(b);

	if (r == 0)
		r = audit_insert(b, who, action, entry, detail);
	if (r == 0)
		r = tx_commit(b);
	return tx_abort(b, r);
}

/* A column that may be NULL as a JSON string or null. */
static json_t *json_text_or_null(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? json_string(s) : json_null();
}

static json_t *audit_record(sqlite3_stmt *st)
{
	const char *detail = (const char *)sqlite3_column_text(st, 6);
	char when[TIME_ISO_STRLEN];
	json_t *d = detail ? json_loads(detail, 0, NULL) : NULL;

	return json_pack("{sI ss ss so ss so so}", "id", (json_int_t)sqlite3_column_int64(st, 0),
		"time", time_iso(sqlite3_column_int64(st, 1), when, sizeof(when)), "who",
		(const char *)sqlite3_column_text(st, 2), "from", json_text_or_null(st, 3),
		"action", (const char *)sqlite3_column_text(st, 4), "entry",
		sqlite3_column_type(st, 5) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(st, 5)),
		"detail", d ? d : json_null());
}

static int sq_audit_each(
	void *bv, int64_t after, size_t limit, int (*cb)(json_t *record, void *arg), void *arg)
{
	struct sqlite_store *b = bv;
	sqlite3_stmt *st;
	json_t *rec;
	int rc, r;

	r = sq_prepare(b,
		"SELECT id, time, who, peer, action, entry, detail FROM audit WHERE id > ? "
		"ORDER BY id LIMIT ?",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, limit && limit < INT64_MAX ? (int64_t)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rec = audit_record(st);
		r = rec ? cb(rec, arg) : -ENOMEM;
		json_decref(rec);
		if (r)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sq_err(b, rc, "audit");
	sq_release(b, st);
	return r;
}

/* --- gateways --- */

static int sq_gateway_report(void *bv, const struct store_gateway *g)
{
	struct sqlite_store *b = bv;
	sqlite3_stmt *st;
	int r;

	r = sq_prepare(b,
		"INSERT INTO gateways (name, replica, peer, version, last_seen, connected) "
		"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
		"replica = excluded.replica, peer = excluded.peer, version = excluded.version, "
		"last_seen = excluded.last_seen, connected = excluded.connected "
		"WHERE excluded.connected OR gateways.replica = excluded.replica "
		"OR NOT gateways.connected",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, g->replica, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, g->peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)g->version);
	sqlite3_bind_int64(st, 5, g->last_seen);
	sqlite3_bind_int(st, 6, g->connected);
	return sq_done(b, st);
}

static int sq_gateways_each(
	void *bv, int (*cb)(const struct store_gateway *g, void *arg), void *arg)
{
	struct sqlite_store *b = bv;
	struct store_gateway g;
	sqlite3_stmt *st;
	int rc, r;

	r = sq_prepare(b,
		"SELECT name, replica, peer, version, last_seen, connected FROM gateways "
		"ORDER BY name",
		&st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&g, 0, sizeof(g));
		snprintf(g.name, sizeof(g.name), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(g.replica, sizeof(g.replica), "%s",
			(const char *)sqlite3_column_text(st, 1));
		snprintf(g.peer, sizeof(g.peer), "%s", (const char *)sqlite3_column_text(st, 2));
		g.version = (uint64_t)sqlite3_column_int64(st, 3);
		g.last_seen = sqlite3_column_int64(st, 4);
		g.connected = sqlite3_column_int(st, 5) != 0;
		r = cb(&g, arg);
		if (r)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sq_err(b, rc, "gateways");
	sq_release(b, st);
	return r;
}

static bool sq_leader(void *bv)
{
	(void)bv;
	return true; /* one server per file */
}

/* --- life cycle --- */

static void sq_close(void *bv)
{
	struct sqlite_store *b = bv;

	if (!b)
		return;
	for (size_t i = 0; i < b->n_cache; i++)
		sqlite3_finalize(b->cache[i].st);
	sqlite3_close(b->db);
	free(b->path);
	free(b);
}

/* Write-ahead logging, or -EIO when the file cannot have it. */
static int sq_wal(struct sqlite_store *b)
{
	sqlite3_stmt *st;
	const char *mode;
	int rc, r;

	r = sq_prepare(b, "PRAGMA journal_mode = WAL", &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (rc != SQLITE_ROW)
		r = sq_err(b, rc, "journal_mode");
	else if (!mode || strcasecmp(mode, "wal") != 0) {
		log_debug("store %s: journal_mode stays %s", b->path, mode ? mode : "?");
		r = -EIO;
	}
	sq_release(b, st);
	return r;
}

/* Schema, journal, durability; the committed version. */
static int sq_setup(struct sqlite_store *b)
{
	int64_t schema, version;
	int r;

	r = sq_wal(b);
	if (r == 0)
		r = sq_exec(b, "PRAGMA synchronous = FULL");
	if (r == 0)
		r = tx_begin(b);
	if (r == 0)
		r = sq_exec(b, schema_sql);
	if (r == 0)
		r = meta_get(b, "schema", &schema);
	if (r == 0 && schema != SCHEMA_VERSION) {
		log_debug("store %s: schema %lld, this egress-server knows %d", b->path,
			(long long)schema, SCHEMA_VERSION);
		r = -EPROTO;
	}
	if (r == 0)
		r = meta_get(b, "version", &version);
	if (r == 0) {
		b->version = (uint64_t)version;
		r = tombstones_prune(b);
	}
	if (r == 0)
		r = tx_commit(b);
	return tx_abort(b, r);
}

static int sq_open(struct store *s, struct event_base *base, const struct conf *conf, void **ret)
{
	const struct conf_store *c = conf_store(conf);
	struct sqlite_store *b;
	int rc, r;

	(void)base;
	b = xcalloc(1, sizeof(*b));
	b->s = s;
	b->path = xstrdup(c->path);
	b->keep_ms = c->tombstone_keep_ms;
	b->max_tombstones = c->tombstone_max;
	/* its folder, as for a state_dir (/var/lib/egress-server): made if missing */
	{
		char *dir = xstrdup(b->path);
		r = dir_ensure(dirname(dir), 0700);
		free(dir);
		if (r < 0) {
			log_debug("store: %s: cannot make its folder: %s", c->path, strerror(-r));
			sq_close(b);
			return r;
		}
	}
	rc = sqlite3_open_v2(b->path, &b->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = b->db ? sq_err(b, rc, "open") : -ENOMEM;
		sq_close(b);
		return r;
	}
	sqlite3_busy_timeout(b->db, 2000);
	r = sq_setup(b);
	if (r < 0) {
		sq_close(b);
		return r;
	}
	*ret = b;
	return 0;
}

const struct store_backend_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.entry_add = sq_entry_add,
	.entry_delete = sq_entry_delete,
	.entry_get = sq_entry_get,
	.entries_each = sq_entries_each,
	.import = sq_import,
	.resolved_set = sq_resolved_set,
	.resolved_get = sq_resolved_get,
	.version = sq_version,
	.changes = sq_changes,
	.audit = sq_audit,
	.audit_each = sq_audit_each,
	.gateway_report = sq_gateway_report,
	.gateways_each = sq_gateways_each,
	.leader = sq_leader,
};
