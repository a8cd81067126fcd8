/*
 * test_store_pg.c - what the PostgreSQL backend of the store does beyond the behaviour
 * every backend shares: replicas on one database (a change made on one reaches the
 * other's subscriber through NOTIFY), the resolver's advisory lock moving when its holder's
 * connection dies, reconnecting after the database dropped the connection, and its import
 * in chunks of rows per statement.
 *
 * Needs a database: EGRESS_TEST_PG=CONNINFO, which tests/lab/pgcluster.py run sets for a
 * private cluster of its own (meson runs this test that way); without it the tests skip.
 * Waits are on the loop for the visible outcome, with a deadline only against a hang.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "store_conf.h"
#include "util.h"

#define HANG_S 30 /* a wait that lasts this long failed */

static const struct store_who who = {.who = "admin", .from = "unix"};

struct replica {
	struct store *store;
	struct conf *conf;
	uint64_t heard; /* the newest version the subscriber was told */
	int calls;
};

struct fixture {
	struct event_base *base;
	PGconn *admin; /* the test's own connection: cleans up, drops the replicas' */
	struct replica a, b;
};

static const char *conninfo(void)
{
	return getenv("EGRESS_TEST_PG");
}

static PGresult *sql(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", q, PQerrorMessage(c));
	return r;
}

static void heard_cb(void *arg, uint64_t version)
{
	struct replica *r = arg;

	r->heard = version;
	r->calls++;
}

/* Open a replica whose connection is named `name` (application_name). */
static void replica_open(struct fixture *f, struct replica *r, const char *name)
{
	struct conf_errors errs = {0};
	static const struct conf_section_type *const types[] = {&conf_store_type};
	char *text;

	r->conf = conf_new(types, 1);
	assert_int_not_equal(asprintf(&text,
				     "[store]\nbackend = postgresql\nconninfo = %s "
				     "application_name=%s\n",
				     conninfo(), name),
		-1);
	assert_int_equal(conf_load_string(r->conf, "test", text, &errs), 0);
	free(text);
	assert_int_equal(conf_validate(r->conf, &errs), 0);
	assert_int_equal(store_open(f->base, r->conf, &r->store), 0);
	assert_string_equal(store_backend(r->store), "postgresql");
	store_subscribe(r->store, heard_cb, r);
}

static void replica_close(struct replica *r)
{
	store_free(r->store);
	conf_free(r->conf);
	memset(r, 0, sizeof(*r));
}

static int setup(void **state)
{
	struct fixture *f;

	if (!conninfo())
		skip(); /* pgcluster.py run -- sets it */
	f = xcalloc(1, sizeof(*f));
	f->base = event_base_new();
	f->admin = PQconnectdb(conninfo());
	assert_int_equal(PQstatus(f->admin), CONNECTION_OK);
	PQclear(sql(f->admin, "SET client_min_messages = warning"));
	PQclear(sql(f->admin, "DROP TABLE IF EXISTS allowlist_meta, allowlist_entries,"
			      " allowlist_items, allowlist_audit, allowlist_gateways"));
	replica_open(f, &f->a, "egress-a");
	replica_open(f, &f->b, "egress-b");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	replica_close(&f->a);
	replica_close(&f->b);
	PQfinish(f->admin);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Run the loop until pred(arg) holds; a hang fails. pred is checked every 20 ms. */
static void run_until(struct fixture *f, bool (*pred)(void *arg), void *arg, const char *what)
{
	uint64_t end = now_ms() + HANG_S * 1000;
	struct timeval tick = {0, 20000};

	while (!pred(arg)) {
		if (now_ms() > end)
			fail_msg("still waiting after %d s for %s", HANG_S, what);
		event_base_loopexit(f->base, &tick);
		event_base_dispatch(f->base);
	}
}

static void add(struct store *s, const char *line, struct al_entry *e)
{
	struct al_error err;

	assert_int_equal(al_entry_from_line(line, e, &err), 0);
	assert_int_equal(store_entry_add(s, e, &who), 0);
}

struct heard {
	struct replica *r;
	uint64_t version;
};

static bool heard(void *arg)
{
	struct heard *h = arg;

	return h->r->heard >= h->version;
}

/* A change on one replica reaches the other's subscriber, and its deltas are the same. */
static void test_replicas_notify(void **state)
{
	struct fixture *f = *state;
	struct al_entry e;
	struct al_msg m;
	uint64_t v0;

	add(f->a.store, "1.0.0.1", &e); /* a delta needs a version above 0 to start from */
	al_entry_clear(&e);
	v0 = store_version(f->a.store);
	run_until(f, heard, &(struct heard){&f->b, v0}, "replica b to hear a's first change");
	add(f->a.store, "1.1.1.1", &e);
	assert_int_equal(store_version(f->a.store), v0 + 1);
	run_until(f, heard, &(struct heard){&f->b, v0 + 1}, "replica b to hear a's change");
	assert_int_equal(f->b.heard, v0 + 1);
	assert_int_equal(store_version(f->b.store), v0 + 1);

	assert_int_equal(store_changes(f->b.store, v0, &m), 0);
	assert_int_equal(m.type, AL_MSG_DELTA);
	assert_int_equal(m.version, v0 + 1);
	assert_int_equal(m.n_set, 1);
	assert_int_equal(m.set[0].entry, e.id);
	al_msg_clear(&m);

	/* And back: b deletes, a hears, a's delta has the tombstone. */
	assert_int_equal(store_entry_delete(f->b.store, e.id, false, &who), 0);
	run_until(f, heard, &(struct heard){&f->a, v0 + 2}, "replica a to hear b's delete");
	assert_int_equal(store_changes(f->a.store, v0 + 1, &m), 0);
	assert_int_equal(m.type, AL_MSG_DELTA);
	assert_int_equal(m.n_set, 0);
	assert_int_equal(m.n_del, 1);
	al_msg_clear(&m);
	/* The same entry added on both replicas: the second is refused. */
	al_entry_clear(&e);
	add(f->a.store, "1.1.1.1", &e);
	al_entry_clear(&e);
	{
		struct al_error err;

		assert_int_equal(al_entry_from_line("1.1.1.1", &e, &err), 0);
		assert_int_equal(store_entry_add(f->b.store, &e, &who), -EEXIST);
	}
	al_entry_clear(&e);
}

struct leads {
	struct replica *r;
};

static bool leads(void *arg)
{
	return store_leader(((struct leads *)arg)->r->store);
}

/* Terminate the database sessions named name (LIKE pattern); how many went. */
static int drop_sessions(struct fixture *f, const char *name)
{
	const char *v[1] = {name};
	PGresult *r = PQexecParams(f->admin,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		" WHERE application_name LIKE $1",
		1, NULL, v, NULL, NULL, 0);
	int n;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	n = PQntuples(r);
	PQclear(r);
	return n;
}

/* One replica leads; when its session dies the other takes over; it does not take back. */
static void test_leader_moves(void **state)
{
	struct fixture *f = *state;

	assert_true(store_leader(f->a.store));
	assert_true(store_leader(f->a.store));
	assert_false(store_leader(f->b.store));

	assert_int_equal(drop_sessions(f, "egress-a"), 1);
	run_until(f, leads, &(struct leads){&f->b}, "replica b to take the lead");
	assert_true(store_leader(f->b.store));
	assert_false(store_leader(f->a.store));

	/* The leader closing (a replica stopped) frees it too. */
	replica_close(&f->b);
	run_until(f, leads, &(struct leads){&f->a}, "replica a to take the lead back");
}

struct added {
	struct fixture *f;
	struct al_entry e;
	bool done;
};

/* b adds an entry, retrying while it is still reconnecting. */
static bool b_adds(void *arg)
{
	struct added *a = arg;
	struct al_error err;
	int r;

	if (a->done)
		return true;
	al_entry_clear(&a->e);
	assert_int_equal(al_entry_from_line("9.9.9.9 proto=tcp ports=443", &a->e, &err), 0);
	r = store_entry_add(a->f->b.store, &a->e, &who);
	if (r == -ENOTCONN)
		return false;
	assert_int_equal(r, 0);
	a->done = true;
	return true;
}

/*
 * The database drops every replica's connection (as a restart does): both reconnect, the
 * change one makes reaches the other, and calls work again.
 */
static void test_reconnect(void **state)
{
	struct fixture *f = *state;
	struct added a = {.f = f};
	struct al_entry e;
	uint64_t v;

	add(f->a.store, "8.8.8.8", &e);
	al_entry_clear(&e);
	v = store_version(f->a.store);
	run_until(f, heard, &(struct heard){&f->b, v}, "replica b to hear a's change");

	assert_int_equal(drop_sessions(f, "egress-%"), 2);
	run_until(f, b_adds, &a, "replica b to add once it is back");
	run_until(f, heard, &(struct heard){&f->a, v + 1}, "replica a to hear b after both reconnect");
	assert_int_equal(store_entry_get(f->a.store, a.e.id, &e), 0);
	assert_string_equal(e.value, "9.9.9.9");
	assert_int_equal(e.proto, AL_PROTO_TCP);
	al_entry_clear(&e);
	al_entry_clear(&a.e);
	assert_true(store_leader(f->a.store));
}

/* Let the replicas connect to the test's database or not (from another database). */
static void allow_connections(struct fixture *f, bool allow)
{
	char *info, *q;
	PGconn *c;

	assert_int_not_equal(asprintf(&info, "%s dbname=postgres", conninfo()), -1);
	c = PQconnectdb(info);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_not_equal(asprintf(&q, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s",
				     PQdb(f->admin), allow ? "true" : "false"),
		-1);
	PQclear(sql(c, q));
	PQfinish(c);
	free(q);
	free(info);
}

static void loop_for(struct fixture *f, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/*
 * The database refuses connections for a while (as while it restarts): a replica keeps
 * trying, and once it is back it hears what changed meanwhile (no notification reached it).
 */
static void test_database_away(void **state)
{
	struct fixture *f = *state;
	struct al_entry e;
	struct al_error err;
	uint64_t v;

	allow_connections(f, false);
	assert_int_equal(drop_sessions(f, "egress-a"), 1);
	loop_for(f, 500); /* a's first tries fail */
	assert_false(store_leader(f->a.store));
	assert_int_equal(al_entry_from_line("4.4.4.4", &e, &err), 0);
	assert_int_equal(store_entry_add(f->a.store, &e, &who), -ENOTCONN);
	al_entry_clear(&e);

	add(f->b.store, "5.5.5.5", &e);
	al_entry_clear(&e);
	v = store_version(f->b.store);
	allow_connections(f, true);
	run_until(f, heard, &(struct heard){&f->a, v}, "replica a to come back and hear b's add");
	assert_int_equal(store_version(f->a.store), v);
}

/* While the database is gone a call fails at once with -ENOTCONN, and nothing is half-done. */
static void test_down(void **state)
{
	struct fixture *f = *state;
	struct al_entry e;
	struct al_error err;
	struct al_msg m;
	uint64_t v = store_version(f->a.store);

	assert_int_equal(drop_sessions(f, "egress-a"), 1);
	/* The loop has not run: the first call finds the connection dead. */
	assert_int_equal(al_entry_from_line("4.4.4.4", &e, &err), 0);
	assert_int_equal(store_entry_add(f->a.store, &e, &who), -ENOTCONN);
	assert_int_equal(e.id, 0);
	assert_null(e.created_by);
	assert_int_equal(store_entry_add(f->a.store, &e, &who), -ENOTCONN);
	assert_false(store_leader(f->a.store));
	al_entry_clear(&e);
	assert_int_equal(store_changes(f->b.store, 0, &m), 0);
	assert_int_equal(m.version, v);
	al_msg_clear(&m);
}

/*
 * An import larger than one statement's chunk, with entries repeated in it and one that
 * shares a value but not its limits: each distinct entry once, ids in import order, their
 * items in the other replica's snapshot.
 */
static void test_import_chunks(void **state)
{
	struct fixture *f = *state;
	enum { N = 2500 };
	struct al_entry *v = xcalloc(N, sizeof(*v));
	struct al_error err;
	struct al_msg m;
	size_t skipped = 0, added = 0;
	int64_t last = 0;

	for (int i = 0; i < N; i++) {
		char line[64];
		int k = i % 10 == 9 ? i - 9 : i; /* every tenth repeats an earlier one */

		if (i == N - 1)
			snprintf(line, sizeof(line), "11.0.0.0/24 proto=tcp ports=443");
		else
			snprintf(line, sizeof(line), "11.%d.%d.0/24", k / 256, k % 256);
		assert_int_equal(al_entry_from_line(line, &v[i], &err), 0);
	}
	assert_int_equal(store_import(f->a.store, v, N, &who, &skipped), 0);
	for (int i = 0; i < N; i++) {
		if (!v[i].id)
			continue;
		assert_true(v[i].id > last);
		assert_string_equal(v[i].created_by, "admin");
		last = v[i].id;
		added++;
	}
	assert_int_equal(skipped, N / 10 - 1); /* the last tenth is the one with ports */
	assert_int_equal(added + skipped, N);
	assert_int_equal(store_changes(f->b.store, 0, &m), 0);
	assert_int_equal(m.n_set, added);
	al_msg_clear(&m);
	/* Again: all there already, nothing changes. */
	for (int i = 0; i < N; i++)
		al_entry_clear(&v[i]);
	assert_int_equal(al_entry_from_line("11.0.0.0/24", &v[0], &err), 0);
	assert_int_equal(store_import(f->a.store, v, 1, &who, &skipped), 0);
	assert_int_equal(skipped, 1);
	assert_int_equal(v[0].id, 0);
	al_entry_clear(&v[0]);
	free(v);
}

int main(void)
{
	log_init("test_store_pg", true, getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replicas_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leader_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_away, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_chunks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
