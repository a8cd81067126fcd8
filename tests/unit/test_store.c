/*
 * test_store.c - unit tests for egress-server's store (src/server/store*.c), one body for
 * every backend: SQLite in a temporary folder always, and PostgreSQL as well when
 * EGRESS_TEST_PG names a libpq connection to a scratch database (its public schema is
 * emptied before each test; tests/lab/pgcluster.py run -- test_store sets it).
 *
 * Covers: add/get/delete/search, -EEXIST, non_deletable and its override, import all or
 * nothing (a trigger makes the backend fail in the middle), the resolver's address sets,
 * versions, deltas with tombstones, a snapshot for a version too old (too many tombstones,
 * or too old ones), the subscriber (once per loop turn), audit, gateway reports, [store]'s
 * validation and its conninfo's password masked and taken back, and durability: a child adds an entry and is killed with SIGKILL as soon as
 * the call returned; the entry is there when the store opens again.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "al_entry.h"
#include "al_proto.h"
#include "conf.h"
#include "store.h"
#include "store_conf.h"
#include "util.h"

/* What the tests do to a backend's database from outside the store, in its own SQL. */
struct backend {
	const char *name;
	const char *reset;	 /* an empty database, as a new one is; NULL: a new folder is */
	const char *fail_insert; /* inserting entry boom.example.com fails from now on */
	const char *age_deleted; /* every deletion so far happened at the epoch */
};

static const struct backend backends[] = {
	{
		.name = "sqlite",
		.fail_insert = "CREATE TRIGGER boom BEFORE INSERT ON entries "
			       "WHEN NEW.value = 'boom.example.com' BEGIN "
			       "SELECT RAISE(ABORT, 'boom'); END",
		.age_deleted = "UPDATE items SET changed = 0 WHERE item IS NULL",
	},
	{
		.name = "postgresql",
		.reset = "SET client_min_messages = warning; "
			 "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public",
		.fail_insert = "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
			       "IF NEW.value = 'boom.example.com' THEN RAISE EXCEPTION 'boom'; "
			       "END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
			       "CREATE TRIGGER boom BEFORE INSERT ON allowlist_entries "
			       "FOR EACH ROW EXECUTE FUNCTION boom()",
		.age_deleted = "UPDATE allowlist_items SET deleted_at = 0 WHERE deleted",
	},
};

/* The backend the tests run on now. */
static const struct backend *be;
static const char *backend;	/* its name */
static const char *pg_conninfo; /* postgresql: EGRESS_TEST_PG */

static const struct store_who admin = {.who = "admin", .from = "192.0.2.10"};

struct fx {
	char dir[64];
	struct event_base *base;
	struct conf *conf;
	struct store *s;
};

static const struct conf_section_type *const types[] = {&conf_store_type};

/* A configuration of the backend under test plus extra [store] lines. */
static struct conf *conf_for(const char *dir, const char *extra)
{
	struct conf_errors errs = {0};
	struct conf *conf = conf_new(types, ARRAY_SIZE(types));
	char text[1024];

	if (streq(backend, "sqlite"))
		snprintf(text, sizeof(text), "[store]\npath = %s/allowlist.db\n%s", dir, extra);
	else
		snprintf(text, sizeof(text), "[store]\nbackend = postgresql\nconninfo = %s\n%s",
			pg_conninfo, extra);
	assert_int_equal(conf_load_string(conf, "test", text, &errs), 0);
	assert_int_equal(conf_validate(conf, &errs), 0);
	conf_errors_clear(&errs);
	return conf;
}

/* Run SQL on the backend's database from outside the store. */
static void sql(const char *dir, const char *text)
{
	char path[128];
	sqlite3 *db;
	PGconn *c;
	PGresult *res;

	if (streq(backend, "sqlite")) {
		snprintf(path, sizeof(path), "%s/allowlist.db", dir);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		if (sqlite3_exec(db, text, NULL, NULL, NULL) != SQLITE_OK)
			fail_msg("%s: %s", text, sqlite3_errmsg(db));
		sqlite3_close(db);
		return;
	}
	c = PQconnectdb(pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("postgresql %s: %s", pg_conninfo, PQerrorMessage(c));
	res = PQexec(c, text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", text, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
}

static void fx_open(struct fx *f, const char *extra)
{
	conf_free(f->conf);
	f->conf = conf_for(f->dir, extra);
	assert_int_equal(store_open(f->base, f->conf, &f->s), 0);
	assert_string_equal(store_backend(f->s), backend);
}

static void fx_close(struct fx *f)
{
	store_free(f->s);
	f->s = NULL;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (be->reset)
		sql(f->dir, be->reset);
	f->base = event_base_new();
	assert_non_null(f->base);
	fx_open(f, "");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[128];

	fx_close(f);
	conf_free(f->conf);
	event_base_free(f->base);
	for (const char *const *n = (const char *const[]){"", "-wal", "-shm", NULL}; *n; n++) {
		snprintf(path, sizeof(path), "%s/allowlist.db%s", f->dir, *n);
		unlink(path);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* An entry from its one-line form. */
static struct al_entry entry(const char *line)
{
	struct al_entry e;
	struct al_error err;

	if (al_entry_from_line(line, &e, &err) < 0)
		fail_msg("%s: %s: %s", line, err.field, err.msg);
	return e;
}

/* Add the entry of line; its id. */
static int64_t add(struct fx *f, const char *line)
{
	struct al_entry e = entry(line);
	int64_t id;

	assert_int_equal(store_entry_add(f->s, &e, &admin), 0);
	id = e.id;
	al_entry_clear(&e);
	return id;
}

static struct addr ip_of(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

/* The keys of a message's set and del, as "set KEY" / "del KEY" lines, sorted by kind. */
static char *msg_keys(const struct al_msg *m)
{
	static char buf[2048];
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < m->n_set; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "set %s\n", m->set[i].key);
	for (size_t i = 0; i < m->n_del; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "del %s\n", m->del[i]);
	return buf;
}

/* What a gateway holding from gets: "snapshot V" or "delta FROM V", then the keys. */
static const char *changes(struct fx *f, uint64_t from)
{
	static char buf[4096];
	struct al_msg m;

	assert_int_equal(store_changes(f->s, from, &m), 0);
	if (m.type == AL_MSG_SNAPSHOT)
		snprintf(buf, sizeof(buf), "snapshot %llu\n%s", (unsigned long long)m.version,
			msg_keys(&m));
	else if (m.type == AL_MSG_DELTA)
		snprintf(buf, sizeof(buf), "delta %llu %llu\n%s", (unsigned long long)m.from,
			(unsigned long long)m.version, msg_keys(&m));
	else
		fail_msg("changes: message type %d", m.type);
	al_msg_clear(&m);
	return buf;
}

static int collect_cb(const struct al_entry *e, void *arg)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 1024 - n, "%s%s", n ? " " : "", e->value);
	return 0;
}

/* The values of the entries search finds, in order, space-separated. */
static const char *search(struct fx *f, const char *what)
{
	static char buf[1024];

	buf[0] = 0;
	assert_int_equal(store_entries_each(f->s, what, collect_cb, buf), 0);
	return buf;
}

static void test_add_get_delete(void **state)
{
	struct fx *f = *state;
	struct al_entry e = entry("8.8.8.7 proto=tcp ports=443,80 sources=10.1.0.0/16 # web"), got;
	int64_t before = (int64_t)time(NULL);

	assert_int_equal(store_version(f->s), 0);
	assert_int_equal(store_entry_add(f->s, &e, &admin), 0);
	assert_true(e.id > 0);
	assert_true(e.created >= before);
	assert_string_equal(e.created_by, "admin");
	assert_int_equal(store_version(f->s), 1);

	assert_int_equal(store_entry_get(f->s, e.id, &got), 0);
	assert_true(al_entry_same(&got, &e));
	assert_int_equal(got.id, e.id);
	assert_string_equal(got.comment, "web");
	assert_false(got.non_deletable);
	assert_int_equal(got.created, e.created);
	assert_string_equal(got.created_by, "admin");
	al_entry_clear(&got);

	assert_int_equal(store_entry_delete(f->s, e.id, false, &admin), 0);
	assert_int_equal(store_version(f->s), 2);
	assert_int_equal(store_entry_get(f->s, e.id, &got), -ENOENT);
	assert_int_equal(store_entry_delete(f->s, e.id, false, &admin), -ENOENT);
	assert_int_equal(store_version(f->s), 2);
	assert_string_equal(search(f, NULL), "");
	al_entry_clear(&e);
}

static void test_exists(void **state)
{
	struct fx *f = *state;
	struct al_entry e = entry("example.com ports=443");

	add(f, "example.com ports=443 # first");
	assert_int_equal(store_entry_add(f->s, &e, &admin), -EEXIST);
	assert_int_equal(e.id, 0);
	assert_int_equal(store_version(f->s), 1);
	/* Same value, other limits: another entry. */
	add(f, "example.com ports=80");
	add(f, "example.com");
	add(f, "*.example.com");
	assert_int_equal(store_version(f->s), 4);
	assert_string_equal(search(f, NULL), "example.com example.com example.com *.example.com");
	al_entry_clear(&e);
}

static int stop_cb(const struct al_entry *e, void *arg)
{
	(*(int *)arg)++;
	return e->kind == AL_CIDR ? 7 : 0;
}

static int count_cb(const struct al_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

/* Each entry sees the whole list from inside the walk (the same query, nested). */
static int nested_cb(const struct al_entry *e, void *arg)
{
	struct fx *f = arg;
	int n = 0;

	assert_int_equal(store_entries_each(f->s, NULL, count_cb, &n), 0);
	return n == 4 ? 0 : (int)e->id;
}

static void test_search(void **state)
{
	struct fx *f = *state;
	int n = 0;

	add(f, "api.example.com # Payments");
	add(f, "9.9.9.0/24 # partner range");
	add(f, "2a00:1450:1::/48");
	add(f, "8.8.8.9 # 100% PAYMENTS_backup");
	assert_string_equal(search(f, "payments"), "api.example.com 8.8.8.9");
	assert_string_equal(search(f, "EXAMPLE"), "api.example.com");
	assert_string_equal(search(f, "%"), "8.8.8.9"); /* plain text, not a pattern */
	assert_string_equal(search(f, "s_b"), "8.8.8.9");
	assert_string_equal(search(f, "nothing"), "");
	assert_string_equal(search(f, ""), search(f, NULL)); /* empty: everything */
	/* A nonzero return stops the walk and is returned. */
	assert_int_equal(store_entries_each(f->s, NULL, stop_cb, &n), 7);
	assert_int_equal(n, 2);
	assert_int_equal(store_entries_each(f->s, NULL, nested_cb, f), 0);
}

static int audit_last_cb(json_t *rec, void *arg)
{
	json_t **last = arg;

	json_decref(*last);
	*last = json_incref(rec);
	return 0;
}

/* The newest audit record (a new reference). */
static json_t *audit_last(struct fx *f)
{
	json_t *last = NULL;

	assert_int_equal(store_audit_each(f->s, 0, 0, audit_last_cb, &last), 0);
	assert_non_null(last);
	return last;
}

static void test_non_deletable(void **state)
{
	struct fx *f = *state;
	struct al_entry got;
	int64_t id = add(f, "8.8.8.1 non_deletable # dns");
	json_t *rec;

	assert_int_equal(store_entry_delete(f->s, id, false, &admin), -EPERM);
	assert_int_equal(store_entry_get(f->s, id, &got), 0);
	assert_true(got.non_deletable);
	al_entry_clear(&got);
	assert_int_equal(store_version(f->s), 1);
	rec = audit_last(f);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "add");
	json_decref(rec);

	assert_int_equal(store_entry_delete(f->s, id, true, &admin), 0);
	assert_int_equal(store_entry_get(f->s, id, &got), -ENOENT);
	rec = audit_last(f);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "delete-override");
	assert_int_equal(json_integer_value(json_object_get(rec, "entry")), id);
	json_decref(rec);

	/* override on an ordinary entry is an ordinary delete. */
	id = add(f, "8.8.8.2");
	assert_int_equal(store_entry_delete(f->s, id, true, &admin), 0);
	rec = audit_last(f);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "delete");
	json_decref(rec);
}

static void test_import(void **state)
{
	struct fx *f = *state;
	struct al_entry v[4];
	size_t skipped = 99;
	json_t *rec;

	add(f, "8.8.8.7");
	v[0] = entry("example.org");
	v[1] = entry("8.8.8.7");     /* exists: skipped */
	v[2] = entry("example.org"); /* twice in the import: once */
	v[3] = entry("9.9.9.0/24 proto=udp ports=53");
	assert_int_equal(store_import(f->s, v, 4, &admin, &skipped), 0);
	assert_int_equal(skipped, 2);
	assert_true(v[0].id > 0 && v[3].id > 0);
	assert_int_equal(v[1].id, 0);
	assert_int_equal(store_version(f->s), 2); /* one version for the whole import */
	assert_string_equal(search(f, NULL), "8.8.8.7 example.org 9.9.9.0/24");
	assert_string_equal(changes(f, 1), "delta 1 2\nset 2\nset 3\n");
	rec = audit_last(f);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "import");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(rec, "detail"), "added")), 2);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(rec, "detail"), "skipped")), 2);
	json_decref(rec);
	for (size_t i = 0; i < 4; i++)
		al_entry_clear(&v[i]);

	/* Nothing new: no version. */
	v[0] = entry("example.org");
	assert_int_equal(store_import(f->s, v, 1, &admin, NULL), 0);
	assert_int_equal(store_version(f->s), 2);
	al_entry_clear(&v[0]);

	/* All or nothing: a bad entry anywhere and none is added. */
	v[0] = entry("new.example.net");
	v[1] = entry("8.8.8.99");
	v[1].value[0] = 0;
	assert_int_equal(store_import(f->s, v, 2, &admin, &skipped), -EINVAL);
	assert_int_equal(v[0].id, 0);
	assert_string_equal(search(f, "new"), "");
	assert_int_equal(store_version(f->s), 2);
	al_entry_clear(&v[0]);
	al_entry_clear(&v[1]);
}

/* A deletion older than tombstone_keep is forgotten as well (its time set back by hand). */
static void test_tombstone_age(void **state)
{
	struct fx *f = *state;
	int64_t a, b;

	fx_close(f);
	fx_open(f, "tombstone_keep = 1m\n");
	a = add(f, "8.8.8.1");
	b = add(f, "8.8.8.2");
	assert_int_equal(store_entry_delete(f->s, a, false, &admin), 0); /* 3 */
	sql(f->dir, be->age_deleted);
	assert_string_equal(changes(f, 2), "delta 2 3\ndel 1\n");	 /* still there... */
	assert_int_equal(store_entry_delete(f->s, b, false, &admin), 0); /* 4: ...until now */
	assert_string_equal(changes(f, 2), "snapshot 4\n");
	assert_string_equal(changes(f, 3), "delta 3 4\ndel 2\n");
}

struct heard {
	int calls;
	uint64_t version;
};

static void heard_cb(void *arg, uint64_t version)
{
	struct heard *h = arg;

	h->calls++;
	h->version = version;
}

/* The backend fails inside an import (its entries table refuses one value): none stays. */
static void test_import_rollback(void **state)
{
	struct fx *f = *state;
	struct al_entry v[3];
	struct heard h = {0};

	sql(f->dir, be->fail_insert);
	add(f, "8.8.8.7");
	event_base_loop(f->base, EVLOOP_NONBLOCK); /* that one heard by nobody */
	store_subscribe(f->s, heard_cb, &h);
	v[0] = entry("one.example.com");
	v[1] = entry("8.8.8.8");
	v[2] = entry("boom.example.com");
	assert_true(store_import(f->s, v, 3, &admin, NULL) < 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(v[i].id, 0);
		assert_null(v[i].created_by);
		al_entry_clear(&v[i]);
	}
	assert_string_equal(search(f, NULL), "8.8.8.7");
	assert_int_equal(store_version(f->s), 1);
	assert_string_equal(changes(f, 0), "snapshot 1\nset 1\n");
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(h.calls, 0);

	/* The same for one entry. */
	v[0] = entry("boom.example.com");
	assert_true(store_entry_add(f->s, &v[0], &admin) < 0);
	assert_int_equal(v[0].id, 0);
	al_entry_clear(&v[0]);
	assert_int_equal(store_version(f->s), 1);
	/* The store goes on. */
	add(f, "ok.example.com");
	assert_int_equal(store_version(f->s), 2);
}

static void test_resolved(void **state)
{
	struct fx *f = *state;
	const struct addr ab[] = {ip_of("8.8.8.1"), ip_of("2606:4700::1"), ip_of("8.8.8.1")};
	const struct addr bc[] = {ip_of("2606:4700::1"), ip_of("9.9.9.5")};
	const struct addr bad[] = {ip_of("9.9.9.6"), ip_of("10.0.0.1")};
	int64_t d = add(f, "example.com"), ip = add(f, "1.1.1.200"), d2;
	struct addr *got;
	size_t n;
	char want[256];

	assert_int_equal(store_version(f->s), 2);
	assert_int_equal(store_resolved_get(f->s, d, &got, &n), 0);
	assert_null(got);
	assert_int_equal(n, 0);

	assert_int_equal(store_resolved_set(f->s, d, ab, 3), 0);
	assert_int_equal(store_version(f->s), 3);
	assert_string_equal(changes(f, 2), "delta 2 3\nset 1/2606:4700::1\nset 1/8.8.8.1\n");
	assert_int_equal(store_resolved_get(f->s, d, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_true(addr_eq(&got[0], &ab[1]) || addr_eq(&got[1], &ab[1]));
	assert_true(addr_eq(&got[0], &ab[0]) || addr_eq(&got[1], &ab[0]));
	free(got);

	/* The same set again: no version. */
	assert_int_equal(store_resolved_set(f->s, d, ab, 2), 0);
	assert_int_equal(store_version(f->s), 3);

	assert_int_equal(store_resolved_set(f->s, d, bc, 2), 0);
	assert_int_equal(store_version(f->s), 4);
	assert_string_equal(changes(f, 3), "delta 3 4\nset 1/9.9.9.5\ndel 1/8.8.8.1\n");

	/* Another domain claiming the same address publishes its own item. */
	d2 = add(f, "www.example.com");
	assert_int_equal(store_resolved_set(f->s, d2, bc, 1), 0);
	snprintf(want, sizeof(want), "delta 5 6\nset %lld/2606:4700::1\n", (long long)d2);
	assert_string_equal(changes(f, 5), want);

	/* Refused: not a domain, a reserved address, an entry that is gone. */
	assert_int_equal(store_resolved_set(f->s, ip, bc, 1), -EINVAL);
	assert_int_equal(store_resolved_set(f->s, d, bad, 2), -EINVAL);
	assert_int_equal(store_resolved_set(f->s, 999, bc, 1), -ENOENT);
	assert_int_equal(store_resolved_get(f->s, 999, &got, &n), -ENOENT);
	assert_int_equal(store_version(f->s), 6);

	/* Deleting the domain deletes its addresses; the other domain keeps its own. */
	assert_int_equal(store_entry_delete(f->s, d, false, &admin), 0);
	snprintf(want, sizeof(want), "delta 6 7\ndel 1\ndel 1/2606:4700::1\ndel 1/9.9.9.5\n");
	assert_string_equal(changes(f, 6), want);
	assert_int_equal(store_resolved_set(f->s, d, bc, 1), -ENOENT);

	/* None: every address goes. */
	assert_int_equal(store_resolved_set(f->s, d2, NULL, 0), 0);
	snprintf(want, sizeof(want), "delta 7 8\ndel %lld/2606:4700::1\n", (long long)d2);
	assert_string_equal(changes(f, 7), want);
}

static void test_versions_deltas(void **state)
{
	struct fx *f = *state;
	int64_t a, b;

	assert_string_equal(changes(f, 0), "snapshot 0\n");
	a = add(f, "8.8.8.10");
	b = add(f, "example.net");
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	assert_int_equal(store_entry_delete(f->s, a, false, &admin), 0);
	assert_int_equal(store_version(f->s), 3);

	assert_string_equal(changes(f, 0), "snapshot 3\nset 2\n");
	assert_string_equal(changes(f, 1), "delta 1 3\nset 2\ndel 1\n");
	assert_string_equal(changes(f, 2), "delta 2 3\ndel 1\n");
	assert_string_equal(changes(f, 3), "delta 3 3\n");
	assert_string_equal(changes(f, 4), "snapshot 3\nset 2\n"); /* newer than the store's */

	/* The same after a restart. */
	fx_close(f);
	fx_open(f, "");
	assert_int_equal(store_version(f->s), 3);
	assert_string_equal(changes(f, 1), "delta 1 3\nset 2\ndel 1\n");
	/* Ids are never given again: a key names one entry for good. */
	assert_int_equal(add(f, "8.8.8.10"), 3);
}

static void test_snapshot_too_old(void **state)
{
	struct fx *f = *state;
	int64_t a, b;

	fx_close(f);
	fx_open(f, "tombstone_max = 1\n");
	a = add(f, "8.8.8.1");
	b = add(f, "8.8.8.2");
	add(f, "8.8.8.3");
	assert_int_equal(store_entry_delete(f->s, a, false, &admin), 0); /* 4 */
	assert_string_equal(changes(f, 3), "delta 3 4\ndel 1\n");
	assert_int_equal(store_entry_delete(f->s, b, false, &admin), 0); /* 5: 1's tombstone goes */
	assert_string_equal(changes(f, 4), "delta 4 5\ndel 2\n");
	assert_string_equal(changes(f, 3), "snapshot 5\nset 3\n"); /* would miss "del 1" */
	assert_string_equal(changes(f, 1), "snapshot 5\nset 3\n");

	/* Without tombstones every deletion ends the deltas before it. */
	fx_close(f);
	fx_open(f, "tombstone_max = 0\n");
	add(f, "8.8.8.4"); /* 6 */
	assert_string_equal(changes(f, 5), "delta 5 6\nset 4\n");
	assert_int_equal(store_entry_delete(f->s, 3, false, &admin), 0); /* 7 */
	assert_string_equal(changes(f, 6), "snapshot 7\nset 4\n");
	assert_string_equal(changes(f, 7), "delta 7 7\n");
}

static void test_subscriber(void **state)
{
	struct fx *f = *state;
	struct heard h = {0};

	store_subscribe(f->s, heard_cb, &h);
	add(f, "8.8.8.1");
	add(f, "8.8.8.2");
	assert_int_equal(h.calls, 0); /* on the loop, not inside the call */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(h.calls, 1); /* two moves, one turn, one call */
	assert_int_equal(h.version, 2);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(h.calls, 1);

	/* A change that changes nothing is not heard. */
	assert_int_equal(store_entry_delete(f->s, 99, false, &admin), -ENOENT);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(h.calls, 1);

	store_subscribe(f->s, NULL, NULL);
	add(f, "8.8.8.3");
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(h.calls, 1);
}

struct records {
	json_t *v;
	size_t stop_at;
};

static int records_cb(json_t *rec, void *arg)
{
	struct records *r = arg;

	json_array_append(r->v, rec);
	return r->stop_at && json_array_size(r->v) == r->stop_at ? 1 : 0;
}

static void test_audit(void **state)
{
	struct fx *f = *state;
	const struct store_who token = {.who = "token:ci", .from = NULL};
	struct records r = {.v = json_array()};
	json_t *rec, *detail = json_pack("{sb}", "ok", 1);
	const char *t;
	int64_t id;

	id = add(f, "example.com # shop");
	assert_int_equal(store_entry_delete(f->s, id, false, &token), 0);
	assert_int_equal(store_audit(f->s, &admin, "login", 0, detail), 0);
	assert_int_equal(store_audit(f->s, &token, "token-made", 0, NULL), 0);
	assert_int_equal(store_version(f->s), 2); /* audit alone takes no version */

	assert_int_equal(store_audit_each(f->s, 0, 0, records_cb, &r), 0);
	assert_int_equal(json_array_size(r.v), 4);
	rec = json_array_get(r.v, 0);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "add");
	assert_string_equal(json_string_value(json_object_get(rec, "who")), "admin");
	assert_string_equal(json_string_value(json_object_get(rec, "from")), "192.0.2.10");
	assert_int_equal(json_integer_value(json_object_get(rec, "entry")), id);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(rec, "detail"), "value")),
		"example.com");
	t = json_string_value(json_object_get(rec, "time"));
	assert_non_null(t);
	assert_int_equal(strlen(t), strlen("2026-12-07T13:00:00.123Z"));
	assert_int_equal(t[strlen(t) - 1], 'Z');
	rec = json_array_get(r.v, 1);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "delete");
	assert_string_equal(json_string_value(json_object_get(rec, "who")), "token:ci");
	assert_true(json_is_null(json_object_get(rec, "from")));
	rec = json_array_get(r.v, 2);
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "login");
	assert_true(json_is_null(json_object_get(rec, "entry")));
	assert_true(json_equal(json_object_get(rec, "detail"), detail));
	rec = json_array_get(r.v, 3);
	assert_true(json_is_null(json_object_get(rec, "detail")));
	for (size_t i = 1; i < 4; i++)
		assert_true(json_integer_value(json_object_get(json_array_get(r.v, i), "id")) >
			    json_integer_value(json_object_get(json_array_get(r.v, i - 1), "id")));

	/* after, limit, and a stop. */
	id = json_integer_value(json_object_get(json_array_get(r.v, 1), "id"));
	json_array_clear(r.v);
	assert_int_equal(store_audit_each(f->s, id, 0, records_cb, &r), 0);
	assert_int_equal(json_array_size(r.v), 2);
	json_array_clear(r.v);
	assert_int_equal(store_audit_each(f->s, 0, 3, records_cb, &r), 0);
	assert_int_equal(json_array_size(r.v), 3);
	json_array_clear(r.v);
	r.stop_at = 1;
	assert_int_equal(store_audit_each(f->s, 0, 0, records_cb, &r), 1);
	assert_int_equal(json_array_size(r.v), 1);

	/* Refused. */
	assert_int_equal(store_audit(f->s, &admin, "", 0, NULL), -EINVAL);
	assert_int_equal(store_audit(f->s, &(struct store_who){0}, "x", 0, NULL), -EINVAL);
	json_decref(r.v);
	json_decref(detail);
}

static int gateways_cb(const struct store_gateway *g, void *arg)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 512 - n, "%s %s %s %llu %lld %d\n", g->name, g->replica, g->peer,
		(unsigned long long)g->version, (long long)g->last_seen, g->connected);
	return 0;
}

/* The gateways' reports, as gateways_cb prints them. */
static const char *gateways(struct fx *f)
{
	static char buf[512];

	buf[0] = 0;
	assert_int_equal(store_gateways_each(f->s, gateways_cb, buf), 0);
	return buf;
}

static void test_gateways(void **state)
{
	struct fx *f = *state;
	struct store_gateway g = {.name = "gw2",
		.replica = "r1",
		.peer = "192.0.2.2",
		.version = 3,
		.last_seen = 1000,
		.connected = true};

	assert_string_equal(gateways(f), "");
	assert_int_equal(store_gateway_report(f->s, &g), 0);
	snprintf(g.name, sizeof(g.name), "gw1");
	assert_int_equal(store_gateway_report(f->s, &g), 0);
	g.version = 5;
	g.last_seen = 2000;
	assert_int_equal(store_gateway_report(f->s, &g), 0);
	assert_string_equal(gateways(f), "gw1 r1 192.0.2.2 5 2000 1\ngw2 r1 192.0.2.2 3 1000 1\n");

	/* gw1 moves to replica r2; r1 then sees its old connection close: r2's report stays. */
	snprintf(g.replica, sizeof(g.replica), "r2");
	snprintf(g.peer, sizeof(g.peer), "192.0.2.3");
	g.last_seen = 3000;
	assert_int_equal(store_gateway_report(f->s, &g), 0);
	snprintf(g.replica, sizeof(g.replica), "r1");
	g.connected = false;
	assert_int_equal(store_gateway_report(f->s, &g), 0);
	assert_string_equal(gateways(f), "gw1 r2 192.0.2.3 5 3000 1\ngw2 r1 192.0.2.2 3 1000 1\n");
	/* r2 says it went away: it did. */
	snprintf(g.replica, sizeof(g.replica), "r2");
	g.last_seen = 4000;
	assert_int_equal(store_gateway_report(f->s, &g), 0);
	assert_string_equal(gateways(f), "gw1 r2 192.0.2.3 5 4000 0\ngw2 r1 192.0.2.2 3 1000 1\n");

	g.name[0] = 0;
	assert_int_equal(store_gateway_report(f->s, &g), -EINVAL);
	assert_true(store_leader(f->s) || !streq(backend, "sqlite"));
}

static void test_durability(void **state)
{
	struct fx *f = *state;
	struct al_entry got;
	int fds[2], status;
	char c;
	pid_t pid;

	fx_close(f); /* the child has the store alone */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct event_base *base = event_base_new();
		struct store *s;
		struct al_entry e = entry("durable.example.com non_deletable");

		close(fds[0]);
		if (!base || store_open(base, f->conf, &s) < 0 ||
			store_entry_add(s, &e, &admin) < 0)
			_exit(1);
		/* Acknowledged: from here on it must survive anything. */
		if (write(fds[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(fds[0]);

	fx_open(f, "");
	assert_int_equal(store_version(f->s), 1);
	assert_int_equal(store_entry_get(f->s, 1, &got), 0);
	assert_string_equal(got.value, "durable.example.com");
	assert_true(got.non_deletable);
	al_entry_clear(&got);
	assert_string_equal(changes(f, 0), "snapshot 1\nset 1\n");
}

static void test_arguments(void **state)
{
	struct fx *f = *state;
	struct al_entry e = entry("8.8.8.5");
	struct al_msg m;

	assert_int_equal(store_entry_add(f->s, &e, NULL), -EINVAL);
	assert_int_equal(store_entry_add(f->s, &e, &(struct store_who){.who = ""}), -EINVAL);
	assert_int_equal(store_entry_add(f->s, NULL, &admin), -EINVAL);
	assert_int_equal(store_entry_delete(f->s, 0, false, &admin), -EINVAL);
	assert_int_equal(store_entry_delete(f->s, 1, false, NULL), -EINVAL);
	assert_int_equal(store_entry_get(f->s, -1, &e), -ENOENT);
	assert_int_equal(store_entries_each(f->s, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(store_import(f->s, NULL, 1, &admin, NULL), -EINVAL);
	assert_int_equal(store_resolved_set(f->s, 0, NULL, 0), -EINVAL);
	assert_int_equal(store_changes(f->s, 0, NULL), -EINVAL);
	assert_int_equal(store_changes(f->s, 0, &m), 0);
	al_msg_clear(&m);
	assert_int_equal(store_version(f->s), 0);
}

/* [store]: bad values name the key; nothing is opened. */
static void test_conf(void **state)
{
	static const struct {
		const char *text, *error;
	} bad[] = {
		{"backend = mysql\n", "backend"},
		{"backend = postgresql\n", "conninfo"},
		{"path = allowlist.db\n", "path"},
		{"tombstone_max = -1\n", "tombstone_max"},
		{"tombstone_keep = 1s\n", "tombstone_keep"},
	};
	struct conf_errors errs = {0};
	const struct conf_store *c;
	struct conf *conf;
	char text[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		conf = conf_new(types, ARRAY_SIZE(types));
		snprintf(text, sizeof(text), "[store]\n%s", bad[i].text);
		if (conf_load_string(conf, "t", text, &errs) == 0)
			conf_validate(conf, &errs);
		assert_int_equal(errs.n, 1);
		if (!strstr(errs.msgs[0], bad[i].error))
			fail_msg("%s: %s", bad[i].text, errs.msgs[0]);
		conf_errors_clear(&errs);
		conf_free(conf);
	}
	/* Defaults, also for a configuration without [store]. */
	conf = conf_new((const struct conf_section_type *const[]){&conf_store_type}, 0);
	c = conf_store(conf);
	assert_int_equal(c->backend, STORE_SQLITE);
	assert_string_equal(c->path, "/var/lib/egress-server/allowlist.db");
	assert_int_equal(c->tombstone_keep_ms, 168 * 3600 * 1000u);
	assert_int_equal(c->tombstone_max, 100000);
	conf_free(conf);
}

/* [store] conninfo as -n prints it (conf_print): a password masked, the rest as given;
 * and written back so, the running password taken in again. */
static struct conf *conf_of(const char *conninfo)
{
	struct conf_errors errs = {0};
	struct conf *conf = conf_new(types, ARRAY_SIZE(types));
	char text[512];

	snprintf(text, sizeof(text), "[store]\nbackend = postgresql\nconninfo = %s\n", conninfo);
	assert_int_equal(conf_load_string(conf, "t", text, &errs), 0);
	assert_int_equal(errs.n, 0);
	return conf;
}

static char *printed(const struct conf *conf)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	conf_print(conf, f);
	fclose(f);
	return text;
}

static void test_conf_conninfo_secret(void **state)
{
	struct conf_errors errs = {0};
	struct conf *running, *posted;
	char *text;

	(void)state;
	running = conf_of("host=db1 dbname=egress user=egress password='it\\'s secret'");
	text = printed(running);
	assert_null(strstr(text, "secret"));
	assert_non_null(strstr(text, "password=********"));
	assert_non_null(strstr(text, "host=db1"));
	assert_non_null(strstr(text, "user=egress"));
	free(text);
	/* posted back masked: the running password, the host as posted */
	posted = conf_of("host=db2 dbname=egress user=egress password=********");
	conf_keep_secrets(posted, running, &errs);
	assert_int_equal(errs.n, 0);
	{
		PQconninfoOption *o = PQconninfoParse(conf_store(posted)->conninfo, NULL);
		int seen = 0;

		assert_non_null(o);
		for (PQconninfoOption *p = o; p->keyword; p++) {
			if (streq(p->keyword, "password") && ++seen)
				assert_string_equal(p->val, "it's secret");
			if (streq(p->keyword, "host") && ++seen)
				assert_string_equal(p->val, "db2");
		}
		assert_int_equal(seen, 2);
		PQconninfoFree(o);
	}
	conf_free(posted);
	/* a mask with nothing running is refused, naming the key */
	posted = conf_of("postgresql://egress:********@db1/egress");
	conf_keep_secrets(posted, NULL, &errs);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msgs[0], "conninfo"));
	conf_errors_clear(&errs);
	conf_free(posted);
	/* without a password: shown as written */
	conf_free(running);
	running = conf_of("postgresql://egress@db1/egress");
	text = printed(running);
	assert_non_null(strstr(text, "conninfo = postgresql://egress@db1/egress\n"));
	free(text);
	conf_free(running);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
	T(test_add_get_delete),
	T(test_exists),
	T(test_search),
	T(test_non_deletable),
	T(test_import),
	T(test_import_rollback),
	T(test_resolved),
	T(test_versions_deltas),
	T(test_snapshot_too_old),
	T(test_tombstone_age),
	T(test_subscriber),
	T(test_audit),
	T(test_gateways),
	T(test_durability),
	T(test_arguments),
};

int main(void)
{
	static const struct CMUnitTest conf_tests[] = {
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_conf_conninfo_secret),
	};
	int failed;

	failed = cmocka_run_group_tests_name("store_conf", conf_tests, NULL, NULL);
	pg_conninfo = getenv("EGRESS_TEST_PG");
	for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
		be = &backends[i];
		backend = be->name;
		if (streq(backend, "postgresql") && !(pg_conninfo && pg_conninfo[0]))
			continue; /* its run is under tests/lab/pgcluster.py */
		failed += _cmocka_run_group_tests(backend, tests, ARRAY_SIZE(tests), NULL, NULL);
	}
	return failed ? 1 : 0;
}
