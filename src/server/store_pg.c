/*
 * store_pg.c - the store on PostgreSQL (libpq), for several egress-server replicas sharing
 * one database.
 *
 * The same versions, tombstones and deltas as store_sqlite.c: one row (allowlist_meta)
 * holds the list's version and the floor below which deltas are no longer complete
 * (tombstones older than the [store] limits are pruned and raise it).  Every write that
 * takes a version locks that row first (SELECT ... FOR UPDATE), so writers of every
 * replica are serialised and versions commit in order: a reader never sees version N+1
 * without N.  The commit sends NOTIFY allowlist (payload: the version) in the same
 * transaction.
 *
 * One connection per replica.  Reads and writes use libpq's synchronous calls on the loop,
 * bounded by a statement timeout (10 s unless conninfo's options say otherwise) and, for
 * (re)connecting, connect_timeout (5 s unless conninfo says otherwise): a store call may
 * hold the loop that long when the database hangs.  TCP keepalives (unless conninfo says
 * otherwise) find a connection whose peer vanished within about 25 s.  Notifications are asynchronous: the
 * connection's socket is an event on the loop, and what it brings (or what a synchronous
 * call read on the way) is handed to store_version_moved().  The same event sees the
 * database close the connection: the store then reconnects with a growing delay, LISTENs
 * again and reports the version if it moved meanwhile; calls made while it is away fail
 * with -ENOTCONN.
 *
 * store_leader(): a session advisory lock on that connection, taken when free and kept
 * while the connection lives; the database drops it with the session, so when a replica
 * dies (or loses its connection) another one takes it on its next try.
 *
 * Entries and items are kept as their JSON (al_entry_to_json(), al_item_to_json()) beside
 * the columns queries need.  Must not block other than through libpq's calls above, nor
 * log above debug except the connection's own events.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "conf.h"
#include "log.h"
#include "store_conf.h"
#include "store_int.h"
#include "util.h"

#define PG_CHANNEL "allowlist"
/* The advisory locks' keys (class, what): class 0x4567416c, "EgAl". */
#define PG_LOCK_LEADER "1164394860, 1"
#define PG_LOCK_SCHEMA "1164394860, 2"
#define PG_LOCK_AUDIT "1164394860, 3"
#define PG_OPTIONS "-c statement_timeout=10000 -c client_min_messages=warning"
#define PG_CONNECT_TIMEOUT "5"
#define PG_RETRY_MIN_MS 100
#define PG_RETRY_MAX_MS 5000
#define PG_PARAMS_MAX 8

struct pg {
	struct store *s;
	struct event_base *base;
	char *conninfo;
	int64_t keep_ms;    /* [store] tombstone_keep */
	int64_t keep_count; /* [store] tombstone_max */
	PGconn *conn;	    /* NULL while disconnected, else CONNECTION_OK as far as known */
	struct event *ev_sock;
	struct event *ev_retry;
	uint32_t retry_ms;
	bool leader;	  /* holds PG_LOCK_LEADER on conn */
	uint64_t version; /* last read */
	uint64_t moved;	  /* last told to store_version_moved() */
	char why[256];	  /* why the last connect failed */
};

/* The columns pg_entry_row() reads, in its order. */
#define PG_ENTRY_COLS "id, created, created_by, body, comment, non_deletable"

/* Text parameters of one statement: numbers are formatted into num[]. */
struct pg_params {
	const char *v[PG_PARAMS_MAX];
	char num[PG_PARAMS_MAX][24];
	int n;
};

static void pg_param_str(struct pg_params *pp, const char *s)
{
	assert(pp->n < PG_PARAMS_MAX);
	pp->v[pp->n++] = s;
}

static void pg_param_i64(struct pg_params *pp, int64_t v)
{
	assert(pp->n < PG_PARAMS_MAX);
	snprintf(pp->num[pp->n], sizeof(pp->num[pp->n]), "%" PRId64, v);
	pp->v[pp->n] = pp->num[pp->n];
	pp->n++;
}

static void pg_connect_later(struct pg *p);

static void pg_version_seen(struct pg *p, uint64_t v)
{
	if (v > p->version)
		p->version = v;
	if (v > p->moved) {
		p->moved = v;
		store_version_moved(p->s, v);
	}
}

/* Hand what notifications libpq holds to the store (a synchronous call may have read some). */
static void pg_drain(struct pg *p)
{
	PGnotify *n;

	while (p->conn && (n = PQnotifies(p->conn))) {
		char *end;
		unsigned long long v = strtoull(n->extra, &end, 10);

		if (end != n->extra && *end == '\0')
			pg_version_seen(p, v);
		else
			log_debug("store: postgresql: notification %s \"%s\" ignored", n->relname,
				n->extra);
		PQfreemem(n);
	}
}

/* libpq's message as one line: its first non-empty one. */
static const char *pg_line(const char *msg, char *buf, size_t len)
{
	size_t n;

	msg += strspn(msg, "\n");
	n = strcspn(msg, "\n");
	snprintf(buf, len, "%.*s", (int)n, msg);
	return buf;
}

/* The server's notices (and libpq's own) at debug, not on stderr. */
static void pg_notice_cb(void *arg, const char *msg)
{
	char line[256];

	(void)arg;
	log_debug("store: postgresql: %s", pg_line(msg, line, sizeof(line)));
}

static void pg_lost(struct pg *p, const char *why)
{
	char line[256];

	if (!p->conn)
		return;
	log_warnx("store: postgresql: connection lost (%s); reconnecting",
		pg_line(why, line, sizeof(line)));
	if (p->leader)
		log_warnx("store: postgresql: no longer the resolver's leader");
	if (p->ev_sock) /* NULL while the session is being set up */
		event_free(p->ev_sock);
	p->ev_sock = NULL;
	PQfinish(p->conn);
	p->conn = NULL;
	p->leader = false;
	p->retry_ms = PG_RETRY_MIN_MS;
	pg_connect_later(p);
}

static int pg_errno(PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (!state)
		return -EIO;
	if (streq(state, "23505")) /* unique_violation */
		return -EEXIST;
	if (streq(state, "57014")) /* query_canceled: the statement timeout */
		return -ETIMEDOUT;
	if (streq(state, "40001") || streq(state, "40P01")) /* serialization, deadlock */
		return -EAGAIN;
	return -EIO;
}

/*
 * Run sql with text parameters pp (may be NULL); *ret (may be NULL: cleared here) the
 * caller's to PQclear.  0, or -ENOTCONN (disconnected, or lost now), -errno of the error.
 */
static int pg_exec(struct pg *p, const char *sql, const struct pg_params *pp, PGresult **ret)
{
	PGresult *r;
	ExecStatusType st;
	int err = 0;

	if (ret)
		*ret = NULL;
	if (!p->conn)
		return -ENOTCONN;
	/* Without parameters, PQexec(): it takes several statements (the schema). */
	r = pp ? PQexecParams(p->conn, sql, pp->n, NULL, pp->v, NULL, NULL, 0) :
		 PQexec(p->conn, sql);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (PQstatus(p->conn) == CONNECTION_BAD) {
			err = -ENOTCONN;
			pg_lost(p, PQerrorMessage(p->conn));
		} else {
			err = pg_errno(r);
			log_debug("store: postgresql: %s: %s", sql, PQresultErrorMessage(r));
		}
		PQclear(r);
		return err;
	}
	pg_drain(p);
	if (ret)
		*ret = r;
	else
		PQclear(r);
	return 0;
}

static void pg_rollback(struct pg *p)
{
	if (p->conn && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		pg_exec(p, "ROLLBACK", NULL, NULL);
}

static int64_t pg_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *pg_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* --- schema and connection --- */

static const char pg_schema[] =
	"CREATE TABLE IF NOT EXISTS allowlist_meta ("
	" id integer PRIMARY KEY CHECK (id = 1),"
	" version bigint NOT NULL,"
	" floor bigint NOT NULL);"
	"INSERT INTO allowlist_meta VALUES (1, 0, 0) ON CONFLICT DO NOTHING;"
	"CREATE TABLE IF NOT EXISTS allowlist_entries ("
	" id bigserial PRIMARY KEY,"
	" kind text NOT NULL,"
	" value text NOT NULL,"
	" comment text,"
	" non_deletable boolean NOT NULL,"
	" created bigint NOT NULL,"
	" created_by text,"
	" body text NOT NULL);"
	"CREATE INDEX IF NOT EXISTS allowlist_entries_value ON allowlist_entries (kind, value);"
	"CREATE TABLE IF NOT EXISTS allowlist_items ("
	" key text PRIMARY KEY,"
	" entry bigint NOT NULL,"
	" version bigint NOT NULL,"
	" deleted boolean NOT NULL,"
	" deleted_at bigint,"
	" body text);"
	"CREATE INDEX IF NOT EXISTS allowlist_items_version ON allowlist_items (version);"
	"CREATE INDEX IF NOT EXISTS allowlist_items_entry ON allowlist_items (entry);"
	"CREATE TABLE IF NOT EXISTS allowlist_audit ("
	" id bigserial PRIMARY KEY,"
	" time bigint NOT NULL,"
	" who text,"
	" peer text,"
	" action text NOT NULL,"
	" entry bigint,"
	" detail text);"
	"CREATE TABLE IF NOT EXISTS allowlist_gateways ("
	" name text PRIMARY KEY,"
	" replica text NOT NULL,"
	" peer text NOT NULL,"
	" version bigint NOT NULL,"
	" last_seen bigint NOT NULL,"
	" connected boolean NOT NULL);";

static void pg_sock_cb(evutil_socket_t fd, short what, void *arg);

static int pg_read_version(struct pg *p, uint64_t *ret)
{
	PGresult *r;
	int err = pg_exec(p, "SELECT version FROM allowlist_meta WHERE id = 1", NULL, &r);

	if (err < 0)
		return err;
	*ret = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

/*
 * Connect, create the schema if it is missing (under a transaction-scoped advisory lock, so
 * that replicas starting together do not race), LISTEN, watch the socket.
 */
static int pg_connect(struct pg *p)
{
	/* Ours first: what conninfo (expanded in place of dbname) says wins. */
	const char *const keys[] = {"connect_timeout", "options", "fallback_application_name",
		"keepalives_idle", "keepalives_interval", "keepalives_count", "dbname", NULL};
	const char *const vals[] = {PG_CONNECT_TIMEOUT, PG_OPTIONS, "egress-server", "10", "5",
		"3", p->conninfo, NULL};
	uint64_t v;
	int err;

	p->conn = PQconnectdbParams(keys, vals, 1);
	if (!p->conn)
		return -ENOMEM;
	PQsetNoticeProcessor(p->conn, pg_notice_cb, p);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		pg_line(PQerrorMessage(p->conn), p->why, sizeof(p->why));
		log_debug("store: postgresql: connect: %s", p->why);
		err = -ECONNREFUSED;
		goto fail;
	}
	if ((err = pg_exec(p, "BEGIN", NULL, NULL)) < 0)
		goto fail;
	if ((err = pg_exec(p, "SELECT pg_advisory_xact_lock(" PG_LOCK_SCHEMA ")", NULL, NULL)) < 0 ||
	    (err = pg_exec(p, pg_schema, NULL, NULL)) < 0 ||
	    (err = pg_exec(p, "COMMIT", NULL, NULL)) < 0 ||
	    (err = pg_exec(p, "LISTEN " PG_CHANNEL, NULL, NULL)) < 0 ||
	    (err = pg_read_version(p, &v)) < 0) {
		pg_rollback(p);
		goto fail;
	}
	p->ev_sock = event_new(p->base, PQsocket(p->conn), EV_READ | EV_PERSIST, pg_sock_cb, p);
	if (!p->ev_sock || event_add(p->ev_sock, NULL) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	if (v > p->version)
		p->version = v;
	return 0;
fail:
	if (p->conn && err != -ECONNREFUSED)
		log_debug("store: postgresql: setting up the session: %s", strerror(-err));
	if (p->ev_sock)
		event_free(p->ev_sock);
	p->ev_sock = NULL;
	PQfinish(p->conn);
	p->conn = NULL;
	return err;
}

static void pg_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg *p = arg;

	(void)fd;
	(void)what;
	if (pg_connect(p) == 0) {
		log_info("store: postgresql: connected again");
		/* What changed meanwhile came with no notification. */
		pg_version_seen(p, p->version);
		return;
	}
	p->retry_ms = p->retry_ms * 2 > PG_RETRY_MAX_MS ? PG_RETRY_MAX_MS : p->retry_ms * 2;
	pg_connect_later(p);
}

static void pg_connect_later(struct pg *p)
{
	struct timeval tv = {p->retry_ms / 1000, (p->retry_ms % 1000) * 1000};

	evtimer_add(p->ev_retry, &tv);
}

/* The connection's socket is readable: notifications, or the server closing it. */
static void pg_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg *p = arg;

	(void)fd;
	(void)what;
	if (!PQconsumeInput(p->conn) || PQstatus(p->conn) == CONNECTION_BAD) {
		pg_lost(p, PQerrorMessage(p->conn));
		return;
	}
	pg_drain(p);
}

/* [store] conninfo and the tombstones' limits. */
static int pg_conf(struct pg *p, const struct conf *conf)
{
	const struct conf_store *c = conf_store(conf);

	if (!c->conninfo || !*c->conninfo) {
		log_debug("store: backend postgresql needs [store] conninfo");
		return -EINVAL;
	}
	p->conninfo = xstrdup(c->conninfo);
	p->keep_ms = c->tombstone_keep_ms;
	p->keep_count = c->tombstone_max;
	return 0;
}

static void pg_close(void *b)
{
	struct pg *p = b;

	if (!p)
		return;
	if (p->ev_sock)
		event_free(p->ev_sock);
	if (p->ev_retry)
		event_free(p->ev_retry);
	if (p->conn)
		PQfinish(p->conn);
	free(p->conninfo);
	free(p);
}

static int pg_open(struct store *s, struct event_base *base, const struct conf *conf, void **ret)
{
	struct pg *p = xcalloc(1, sizeof(*p));
	int err;

	p->s = s;
	p->base = base;
	p->retry_ms = PG_RETRY_MIN_MS;
	p->ev_retry = evtimer_new(base, pg_retry_cb, p);
	if (!p->ev_retry) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = pg_conf(p, conf)) < 0)
		goto fail;
	if ((err = pg_connect(p)) < 0) {
		log_warnx("store: postgresql: %s", err == -ECONNREFUSED ? p->why : strerror(-err));
		goto fail;
	}
	p->moved = p->version;
	*ret = p;
	return 0;
fail:
	pg_close(p);
	return err;
}

/* --- writes: one transaction each, serialised on allowlist_meta's row --- */

/* BEGIN and lock the version row; *v_ret the version before this change. */
static int pg_begin_write(struct pg *p, uint64_t *v_ret)
{
	PGresult *r;
	int err;

	if ((err = pg_exec(p, "BEGIN", NULL, NULL)) < 0)
		return err;
	err = pg_exec(p, "SELECT version FROM allowlist_meta WHERE id = 1 FOR UPDATE", NULL, &r);
	if (err < 0) {
		pg_rollback(p);
		return err;
	}
	*v_ret = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

/* Prune the tombstones past the limits, raising the floor to the newest pruned. */
static int pg_prune(struct pg *p)
{
	struct pg_params pp = {0};

	pg_param_i64(&pp, clock_wall_ms() - p->keep_ms);
	pg_param_i64(&pp, p->keep_count);
	return pg_exec(p,
		"WITH gone AS (DELETE FROM allowlist_items WHERE deleted AND (deleted_at < $1"
		" OR key IN (SELECT key FROM allowlist_items WHERE deleted"
		" ORDER BY version DESC OFFSET $2)) RETURNING version)"
		" UPDATE allowlist_meta SET floor = greatest(floor, (SELECT max(version) FROM gone))"
		" WHERE id = 1 AND EXISTS (SELECT 1 FROM gone)",
		&pp, NULL);
}

/* Commit a write; v: the version it took (0: it took none). */
static int pg_commit(struct pg *p, uint64_t v)
{
	int err;

	if (v) {
		struct pg_params pp = {0};

		pg_param_i64(&pp, (int64_t)v);
		if ((err = pg_exec(p, "UPDATE allowlist_meta SET version = $1 WHERE id = 1", &pp,
			     NULL)) < 0 ||
		    (err = pg_prune(p)) < 0 ||
		    (err = pg_exec(p, "SELECT pg_notify('" PG_CHANNEL "', $1)", &pp, NULL)) < 0) {
			pg_rollback(p);
			return err;
		}
	}
	if ((err = pg_exec(p, "COMMIT", NULL, NULL)) < 0) {
		pg_rollback(p);
		return err;
	}
	if (v)
		pg_version_seen(p, v);
	return 0;
}

static int pg_audit_insert(struct pg *p, const struct store_who *who, const char *action,
	int64_t entry, const json_t *detail)
{
	struct pg_params pp = {0};
	char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	int err;

	if (detail && !text)
		return -ENOMEM;
	/* Ids in commit order: a reader of "after N" never skips one committed late. */
	err = pg_exec(p, "SELECT pg_advisory_xact_lock(" PG_LOCK_AUDIT ")", NULL, NULL);
	if (err == 0) {
		pg_param_i64(&pp, clock_wall_ms());
		pg_param_str(&pp, who ? who->who : NULL);
		pg_param_str(&pp, who ? who->from : NULL);
		pg_param_str(&pp, action);
		if (entry)
			pg_param_i64(&pp, entry);
		else
			pg_param_str(&pp, NULL);
		pg_param_str(&pp, text);
		err = pg_exec(p,
			"INSERT INTO allowlist_audit (time, who, peer, action, entry, detail)"
			" VALUES ($1, $2, $3, $4, $5, $6)",
			&pp, NULL);
	}
	free(text);
	return err;
}

static int pg_item_set(struct pg *p, const struct al_item *it, uint64_t v)
{
	struct pg_params pp = {0};
	json_t *o = al_item_to_json(it);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int err;

	json_decref(o);
	if (!body)
		return -ENOMEM;
	pg_param_str(&pp, it->key);
	pg_param_i64(&pp, it->entry);
	pg_param_i64(&pp, (int64_t)v);
	pg_param_str(&pp, body);
	err = pg_exec(p,
		"INSERT INTO allowlist_items (key, entry, version, deleted, body)"
		" VALUES ($1, $2, $3, false, $4) ON CONFLICT (key) DO UPDATE SET"
		" entry = excluded.entry, version = excluded.version, deleted = false,"
		" deleted_at = NULL, body = excluded.body",
		&pp, NULL);
	free(body);
	return err;
}

/* The entry's JSON without what the store keeps in its own columns (as store_sqlite.c). */
static char *pg_entry_body(const struct al_entry *e)
{
	static const char *const own[] = {"id", "kind", "created", "created_by", "comment",
		"non_deletable"};
	json_t *o = al_entry_to_json(e);
	char *body;

	if (!o)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(own); i++)
		json_object_del(o, own[i]);
	body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return body;
}

/* An entry from its row (PG_ENTRY_COLS); *ret initialised by the call. */
static int pg_entry_row(const PGresult *r, int row, struct al_entry *ret)
{
	struct al_error aerr;
	json_t *o = json_loads(pg_str(r, row, 3), 0, NULL);
	int err;

	if (!o) {
		al_entry_init(ret);
		return -EIO;
	}
	err = al_entry_from_json(o, ret, &aerr);
	json_decref(o);
	if (err < 0) {
		log_debug("store: postgresql: entry %s: %s: %s", PQgetvalue(r, row, 0), aerr.field,
			aerr.msg);
		return -EIO;
	}
	ret->id = pg_i64(r, row, 0);
	ret->created = pg_i64(r, row, 1);
	ret->created_by = pg_str(r, row, 2) ? xstrdup(pg_str(r, row, 2)) : NULL;
	ret->comment = pg_str(r, row, 4) ? xstrdup(pg_str(r, row, 4)) : NULL;
	ret->non_deletable = streq(PQgetvalue(r, row, 5), "t");
	return 0;
}

/* -EEXIST when an al_entry_same() entry is stored (in this transaction's view). */
static int pg_entry_dup(struct pg *p, const struct al_entry *e)
{
	struct pg_params pp = {0};
	PGresult *r;
	int err;

	pg_param_str(&pp, al_kind_name[e->kind]);
	pg_param_str(&pp, e->value);
	err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries"
		" WHERE kind = $1 AND value = $2", &pp, &r);
	if (err < 0)
		return err;
	for (int i = 0; i < PQntuples(r) && err == 0; i++) {
		struct al_entry o;

		err = pg_entry_row(r, i, &o);
		if (err == 0 && al_entry_same(&o, e))
			err = -EEXIST;
		al_entry_clear(&o);
	}
	PQclear(r);
	return err;
}

/* Insert e and its own item with version v; sets e->id, created, created_by. */
static int pg_entry_insert(struct pg *p, struct al_entry *e, const struct store_who *who,
	uint64_t v)
{
	struct pg_params pp = {0};
	struct al_item it;
	PGresult *r;
	char *body = pg_entry_body(e);
	int64_t created = clock_wall_ms() / 1000;
	int err;

	if (!body)
		return -ENOMEM;
	pg_param_str(&pp, al_kind_name[e->kind]);
	pg_param_str(&pp, e->value);
	pg_param_str(&pp, e->comment);
	pg_param_str(&pp, e->non_deletable ? "true" : "false");
	pg_param_i64(&pp, created);
	pg_param_str(&pp, who ? who->who : NULL);
	pg_param_str(&pp, body);
	err = pg_exec(p,
		"INSERT INTO allowlist_entries"
		" (kind, value, comment, non_deletable, created, created_by, body)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
		&pp, &r);
	free(body);
	if (err < 0)
		return err;
	e->id = pg_i64(r, 0, 0);
	PQclear(r);
	e->created = created;
	free(e->created_by);
	e->created_by = who && who->who ? xstrdup(who->who) : NULL;
	if ((err = al_item_of_entry(e, &it)) == 0)
		err = pg_item_set(p, &it, v);
	al_item_clear(&it);
	return err;
}

/* Forget what pg_entry_insert() set on e when its transaction did not commit. */
static void pg_entry_uninsert(struct al_entry *e)
{
	e->id = 0;
	e->created = 0;
	free(e->created_by);
	e->created_by = NULL;
}

static int pg_entry_add(void *b, struct al_entry *e, const struct store_who *who)
{
	struct pg *p = b;
	uint64_t v;
	json_t *detail;
	int err;

	if ((err = pg_begin_write(p, &v)) < 0)
		return err;
	if ((err = pg_entry_dup(p, e)) < 0)
		goto fail;
	if ((err = pg_entry_insert(p, e, who, v + 1)) < 0)
		goto fail_insert;
	detail = al_entry_to_json(e);
	err = detail ? pg_audit_insert(p, who, "add", e->id, detail) : -ENOMEM;
	json_decref(detail);
	if (err < 0)
		goto fail_insert;
	if ((err = pg_commit(p, v + 1)) < 0)
		pg_entry_uninsert(e);
	return err;
fail_insert:
	pg_entry_uninsert(e);
fail:
	pg_rollback(p);
	return err;
}

/* Tombstone every live item of entry in version v. */
static int pg_items_delete_entry(struct pg *p, int64_t entry, uint64_t v)
{
	struct pg_params pp = {0};

	pg_param_i64(&pp, entry);
	pg_param_i64(&pp, (int64_t)v);
	pg_param_i64(&pp, clock_wall_ms());
	return pg_exec(p,
		"UPDATE allowlist_items SET deleted = true, version = $2, deleted_at = $3,"
		" body = NULL WHERE entry = $1 AND NOT deleted",
		&pp, NULL);
}

static int pg_entry_delete(void *b, int64_t id, bool override, const struct store_who *who)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	struct al_entry e;
	json_t *detail = NULL;
	PGresult *r;
	uint64_t v;
	int err;

	al_entry_init(&e);
	if ((err = pg_begin_write(p, &v)) < 0)
		return err;
	pg_param_i64(&pp, id);
	err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries WHERE id = $1 FOR UPDATE",
		&pp, &r);
	if (err < 0)
		goto fail;
	if (PQntuples(r) != 1) {
		PQclear(r);
		err = -ENOENT;
		goto fail;
	}
	err = pg_entry_row(r, 0, &e);
	PQclear(r);
	if (err < 0)
		goto fail;
	if (e.non_deletable && !override) {
		err = -EPERM;
		goto fail;
	}
	detail = al_entry_to_json(&e);
	if ((err = pg_exec(p, "DELETE FROM allowlist_entries WHERE id = $1", &pp, NULL)) < 0 ||
	    (err = pg_items_delete_entry(p, id, v + 1)) < 0 ||
	    (err = pg_audit_insert(p, who, e.non_deletable ? "delete-override" : "delete", id,
		     detail)) < 0)
		goto fail;
	json_decref(detail);
	al_entry_clear(&e);
	return pg_commit(p, v + 1);
fail:
	json_decref(detail);
	al_entry_clear(&e);
	pg_rollback(p);
	return err;
}

static int pg_entry_get(void *b, int64_t id, struct al_entry *ret)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	PGresult *r;
	int err;

	al_entry_init(ret);
	pg_param_i64(&pp, id);
	err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries WHERE id = $1", &pp,
		&r);
	if (err < 0)
		return err;
	if (PQntuples(r) == 1)
		err = pg_entry_row(r, 0, ret);
	else
		err = -ENOENT;
	PQclear(r);
	return err;
}

static int pg_entries_each(void *b, const char *search,
	int (*cb)(const struct al_entry *e, void *arg), void *arg)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	PGresult *r;
	int err;

	if (search) {
		pg_param_str(&pp, search);
		err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries"
			" WHERE strpos(lower(value), lower($1)) > 0"
			" OR strpos(lower(coalesce(comment, '')), lower($1)) > 0 ORDER BY id",
			&pp, &r);
	} else {
		err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries ORDER BY id",
			NULL, &r);
	}
	if (err < 0)
		return err;
	for (int i = 0; i < PQntuples(r) && err == 0; i++) {
		struct al_entry e;

		if ((err = pg_entry_row(r, i, &e)) == 0)
			err = cb(&e, arg);
		al_entry_clear(&e);
	}
	PQclear(r);
	return err;
}

/*
 * An import goes in chunks of rows, each chunk one statement per table over unnest() of
 * array parameters: round trips, not rows, are what costs on a database over the network.
 */
#define PG_IMPORT_CHUNK 1000

/* A text array literal under construction: {"a","b\"c",NULL}. */
struct pg_array {
	FILE *f;
	char *text;
	size_t len;
	bool more;
};

static int pg_array_open(struct pg_array *a)
{
	a->text = NULL;
	a->more = false;
	a->f = open_memstream(&a->text, &a->len);
	if (!a->f)
		return -ENOMEM;
	fputc('{', a->f);
	return 0;
}

static void pg_array_add(struct pg_array *a, const char *s)
{
	if (a->more)
		fputc(',', a->f);
	a->more = true;
	if (!s) {
		fputs("NULL", a->f);
		return;
	}
	fputc('"', a->f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', a->f);
		fputc(*s, a->f);
	}
	fputc('"', a->f);
}

static void pg_array_add_i64(struct pg_array *a, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	pg_array_add(a, num);
}

/* The literal, malloc'd (the caller frees it), or NULL. */
static char *pg_array_close(struct pg_array *a)
{
	fputc('}', a->f);
	if (fclose(a->f) != 0) {
		free(a->text);
		return NULL;
	}
	return a->text;
}

/* Import order by value (then position), to find entries with the same value together. */
static int pg_import_cmp(const void *x, const void *y, void *arg)
{
	const struct al_entry *v = arg;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = strcmp(v[i].value, v[j].value);

	return c ? c : (i > j) - (i < j);
}

static int pg_entry_cmp(const void *x, const void *y)
{
	return strcmp(((const struct al_entry *)x)->value, ((const struct al_entry *)y)->value);
}

/*
 * dup[i]: v[i] is al_entry_same() as a stored entry or an earlier one of v.  One query
 * for the stored entries that share a value with the import.
 */
static int pg_import_dups(struct pg *p, struct al_entry *v, size_t n, bool *dup)
{
	struct pg_params pp = {0};
	struct pg_array values;
	struct al_entry *have = NULL;
	size_t n_have = 0, *order = xcalloc(n, sizeof(*order));
	char *lit;
	PGresult *r;
	int err;

	if ((err = pg_array_open(&values)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		pg_array_add(&values, v[i].value);
	if (!(lit = pg_array_close(&values))) {
		err = -ENOMEM;
		goto out;
	}
	pg_param_str(&pp, lit);
	err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries"
		" WHERE value = ANY ($1::text[])", &pp, &r);
	free(lit);
	if (err < 0)
		goto out;
	have = xcalloc((size_t)PQntuples(r) + 1, sizeof(*have));
	for (int i = 0; i < PQntuples(r) && err == 0; i++)
		if ((err = pg_entry_row(r, i, &have[n_have])) == 0)
			n_have++;
	PQclear(r);
	if (err < 0)
		goto out;
	qsort(have, n_have, sizeof(*have), pg_entry_cmp);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), pg_import_cmp, v);
	for (size_t g = 0, h = 0; g < n;) {
		const char *value = v[order[g]].value;
		size_t end = g;

		while (end < n && streq(v[order[end]].value, value))
			end++;
		while (h < n_have && strcmp(have[h].value, value) < 0)
			h++;
		for (size_t k = g; k < end; k++) {
			const struct al_entry *e = &v[order[k]];

			dup[order[k]] = false;
			for (size_t j = h; j < n_have && streq(have[j].value, value); j++)
				dup[order[k]] = dup[order[k]] || al_entry_same(&have[j], e);
			for (size_t j = g; j < k && !dup[order[k]]; j++)
				dup[order[k]] = !dup[order[j]] && al_entry_same(&v[order[j]], e);
		}
		g = end;
	}
out:
	for (size_t i = 0; i < n_have; i++)
		al_entry_clear(&have[i]);
	free(have);
	free(order);
	return err;
}

/* n new ids of allowlist_entries, ascending, into ids[]. */
static int pg_import_ids(struct pg *p, int64_t *ids, size_t n)
{
	struct pg_params pp = {0};
	PGresult *r;
	int err;

	pg_param_i64(&pp, (int64_t)n);
	err = pg_exec(p, "SELECT nextval(pg_get_serial_sequence('allowlist_entries', 'id'))"
		" FROM generate_series(1, $1) ORDER BY 1", &pp, &r);
	if (err < 0)
		return err;
	if ((size_t)PQntuples(r) != n)
		err = -EIO;
	for (size_t i = 0; i < n && err == 0; i++)
		ids[i] = pg_i64(r, (int)i, 0);
	PQclear(r);
	return err;
}

/* Insert v[i] for each i of idx[0..n) (ids, created, created_by set) and their items. */
static int pg_import_chunk(struct pg *p, struct al_entry *v, const size_t *idx, size_t n,
	uint64_t ver)
{
	struct pg_array a[8];
	char *lit[8] = {NULL};
	struct pg_params pp = {0};
	int err = 0;

	for (size_t c = 0; c < 8; c++)
		if (pg_array_open(&a[c]) < 0) {
			while (c-- > 0)
				free(pg_array_close(&a[c]));
			return -ENOMEM;
		}
	/* entries: id, kind, value, comment, non_deletable, created, created_by, body;
	 * then items over a[0..3) again: key, entry, body */
	for (size_t k = 0; k < n && err == 0; k++) {
		struct al_entry *e = &v[idx[k]];
		char *body = pg_entry_body(e);

		if (!body) {
			err = -ENOMEM;
			break;
		}
		pg_array_add_i64(&a[0], e->id);
		pg_array_add(&a[1], al_kind_name[e->kind]);
		pg_array_add(&a[2], e->value);
		pg_array_add(&a[3], e->comment);
		pg_array_add(&a[4], e->non_deletable ? "true" : "false");
		pg_array_add_i64(&a[5], e->created);
		pg_array_add(&a[6], e->created_by);
		pg_array_add(&a[7], body);
		free(body);
	}
	for (size_t c = 0; c < 8; c++)
		if (!(lit[c] = pg_array_close(&a[c])) && err == 0)
			err = -ENOMEM;
	for (size_t c = 0; c < 8 && err == 0; c++)
		pg_param_str(&pp, lit[c]);
	if (err == 0)
		err = pg_exec(p,
			"INSERT INTO allowlist_entries"
			" (id, kind, value, comment, non_deletable, created, created_by, body)"
			" SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
			" $5::boolean[], $6::bigint[], $7::text[], $8::text[])",
			&pp, NULL);
	for (size_t c = 0; c < 8; c++)
		free(lit[c]);
	if (err < 0)
		return err;

	for (size_t c = 0; c < 3; c++)
		if (pg_array_open(&a[c]) < 0) {
			while (c-- > 0)
				free(pg_array_close(&a[c]));
			return -ENOMEM;
		}
	for (size_t k = 0; k < n && err == 0; k++) {
		struct al_item it;
		json_t *o = NULL;
		char *body = NULL;

		if ((err = al_item_of_entry(&v[idx[k]], &it)) == 0) {
			o = al_item_to_json(&it);
			body = o ? json_dumps(o, JSON_COMPACT) : NULL;
			err = body ? 0 : -ENOMEM;
		}
		if (err == 0) {
			pg_array_add(&a[0], it.key);
			pg_array_add_i64(&a[1], it.entry);
			pg_array_add(&a[2], body);
		}
		free(body);
		json_decref(o);
		al_item_clear(&it);
	}
	for (size_t c = 0; c < 3; c++)
		if (!(lit[c] = pg_array_close(&a[c])) && err == 0)
			err = -ENOMEM;
	if (err == 0) {
		pp.n = 0;
		pg_param_str(&pp, lit[0]);
		pg_param_str(&pp, lit[1]);
		pg_param_str(&pp, lit[2]);
		pg_param_i64(&pp, (int64_t)ver);
		err = pg_exec(p,
			"INSERT INTO allowlist_items (key, entry, version, deleted, body)"
			" SELECT k, e, $4, false, b FROM unnest($1::text[], $2::bigint[], $3::text[])"
			" AS u (k, e, b) ON CONFLICT (key) DO UPDATE SET entry = excluded.entry,"
			" version = excluded.version, deleted = false, deleted_at = NULL,"
			" body = excluded.body",
			&pp, NULL);
	}
	for (size_t c = 0; c < 3; c++)
		free(lit[c]);
	return err;
}

static int pg_import(void *b, struct al_entry *v, size_t n, const struct store_who *who,
	size_t *skipped_ret)
{
	struct pg *p = b;
	bool *dup = xcalloc(n + 1, sizeof(*dup));
	size_t *idx = xcalloc(n + 1, sizeof(*idx));
	int64_t *ids = NULL;
	int64_t created = clock_wall_ms() / 1000;
	uint64_t ver;
	size_t added = 0;
	json_t *detail;
	int err;

	if ((err = pg_begin_write(p, &ver)) < 0)
		goto out;
	if ((err = pg_import_dups(p, v, n, dup)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (!dup[i])
			idx[added++] = i;
	ids = xcalloc(added + 1, sizeof(*ids));
	if (added && (err = pg_import_ids(p, ids, added)) < 0)
		goto fail;
	for (size_t k = 0; k < added; k++) {
		struct al_entry *e = &v[idx[k]];

		e->id = ids[k];
		e->created = created;
		free(e->created_by);
		e->created_by = xstrdup(who->who);
	}
	for (size_t k = 0; k < added; k += PG_IMPORT_CHUNK)
		if ((err = pg_import_chunk(p, v, idx + k,
			     added - k < PG_IMPORT_CHUNK ? added - k : PG_IMPORT_CHUNK, ver + 1)) < 0)
			goto fail;
	detail = json_pack("{sIsI}", "added", (json_int_t)added, "skipped",
		(json_int_t)(n - added));
	err = detail ? pg_audit_insert(p, who, "import", 0, detail) : -ENOMEM;
	json_decref(detail);
	if (err < 0 || (err = pg_commit(p, added ? ver + 1 : 0)) < 0)
		goto fail;
	*skipped_ret = n - added;
	goto out;
fail:
	pg_rollback(p);
	for (size_t k = 0; k < added; k++)
		pg_entry_uninsert(&v[idx[k]]);
out:
	free(ids);
	free(idx);
	free(dup);
	return err;
}

/* --- what the resolver publishes --- */

static bool pg_key_in(const char *key, char (*keys)[AL_KEY_MAX], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(key, keys[i]))
			return true;
	return false;
}

/* The live resolved items of entry ("ENTRY/ADDR"): key only. */
static int pg_resolved_rows(struct pg *p, int64_t entry, PGresult **ret)
{
	struct pg_params pp = {0};

	pg_param_i64(&pp, entry);
	return pg_exec(p, "SELECT key FROM allowlist_items WHERE entry = $1 AND NOT deleted"
		" AND key <> $1::text ORDER BY key", &pp, ret);
}

static int pg_resolved_set(void *b, int64_t entry, const struct addr *addrs, size_t n)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	struct al_entry e;
	struct al_item *want = n ? xcalloc(n, sizeof(*want)) : NULL;
	char(*keys)[AL_KEY_MAX] = n ? xcalloc(n, sizeof(*keys)) : NULL;
	PGresult *r = NULL;
	uint64_t v;
	bool changed = false;
	int err;

	al_entry_init(&e);
	for (size_t i = 0; i < n; i++)
		al_item_init(&want[i]);
	if ((err = pg_begin_write(p, &v)) < 0)
		goto out;
	pg_param_i64(&pp, entry);
	err = pg_exec(p, "SELECT " PG_ENTRY_COLS " FROM allowlist_entries WHERE id = $1", &pp,
		&r);
	if (err < 0)
		goto fail;
	err = PQntuples(r) == 1 ? pg_entry_row(r, 0, &e) : -ENOENT;
	PQclear(r);
	r = NULL;
	if (err == 0 && e.kind != AL_DOMAIN)
		err = -EINVAL;
	if (err < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		al_item_clear(&want[i]);
		if ((err = al_item_resolved(&e, &addrs[i], &want[i])) < 0)
			goto fail;
		snprintf(keys[i], AL_KEY_MAX, "%s", want[i].key);
	}
	if ((err = pg_resolved_rows(p, entry, &r)) < 0)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		struct pg_params dp = {0};
		const char *key = PQgetvalue(r, i, 0);

		if (pg_key_in(key, keys, n))
			continue;
		pg_param_str(&dp, key);
		pg_param_i64(&dp, (int64_t)v + 1);
		pg_param_i64(&dp, clock_wall_ms());
		err = pg_exec(p, "UPDATE allowlist_items SET deleted = true, version = $2,"
			" deleted_at = $3, body = NULL WHERE key = $1", &dp, NULL);
		if (err < 0)
			goto fail;
		changed = true;
	}
	for (size_t i = 0; i < n; i++) {
		bool have = false;

		for (int j = 0; j < PQntuples(r) && !have; j++)
			have = streq(PQgetvalue(r, j, 0), keys[i]);
		/* The same address twice in addrs: set once. */
		if (have || pg_key_in(keys[i], keys, i))
			continue;
		if ((err = pg_item_set(p, &want[i], v + 1)) < 0)
			goto fail;
		changed = true;
	}
	PQclear(r);
	r = NULL;
	err = pg_commit(p, changed ? v + 1 : 0);
	goto out;
fail:
	PQclear(r);
	pg_rollback(p);
out:
	for (size_t i = 0; i < n; i++)
		al_item_clear(&want[i]);
	free(want);
	free(keys);
	al_entry_clear(&e);
	return err;
}

static int pg_resolved_get(void *b, int64_t entry, struct addr **ret, size_t *n_ret)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	PGresult *r;
	struct addr *v = NULL;
	size_t n = 0;
	int err;

	*ret = NULL;
	*n_ret = 0;
	pg_param_i64(&pp, entry);
	if ((err = pg_exec(p, "SELECT 1 FROM allowlist_entries WHERE id = $1", &pp, &r)) < 0)
		return err;
	err = PQntuples(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	if (err < 0 || (err = pg_resolved_rows(p, entry, &r)) < 0)
		return err;
	if (PQntuples(r) > 0)
		v = xcalloc((size_t)PQntuples(r), sizeof(*v));
	for (int i = 0; i < PQntuples(r); i++) {
		const char *slash = strchr(PQgetvalue(r, i, 0), '/');

		if (slash && addr_parse(slash + 1, &v[n]) == 0)
			n++;
		else
			log_debug("store: postgresql: item %s: not an address", PQgetvalue(r, i, 0));
	}
	PQclear(r);
	if (n == 0) {
		free(v);
		v = NULL;
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

/* --- versions and changes --- */

static uint64_t pg_version(void *b)
{
	struct pg *p = b;
	uint64_t v;

	if (pg_read_version(p, &v) == 0 && v > p->version)
		p->version = v;
	return p->version;
}

static int pg_item_row(const PGresult *r, int row, int col, struct al_item *ret)
{
	struct al_error aerr;
	json_t *o = json_loads(pg_str(r, row, col) ? pg_str(r, row, col) : "", 0, NULL);
	int err;

	if (!o) {
		al_item_init(ret);
		return -EIO;
	}
	err = al_item_from_json(o, ret, &aerr);
	json_decref(o);
	if (err < 0) {
		log_debug("store: postgresql: item: %s: %s", aerr.field, aerr.msg);
		return -EIO;
	}
	return 0;
}

static int pg_changes(void *b, uint64_t from, struct al_msg *ret)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	PGresult *r;
	uint64_t v, floor;
	bool snapshot;
	int err;

	al_msg_init(ret);
	if ((err = pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, NULL)) < 0)
		return err;
	if ((err = pg_exec(p, "SELECT version, floor FROM allowlist_meta WHERE id = 1", NULL,
		     &r)) < 0)
		goto fail;
	v = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 0) : 0;
	floor = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 1) : 0;
	PQclear(r);
	snapshot = from == 0 || from > v || from < floor;
	if (snapshot) {
		err = pg_exec(p, "SELECT key, deleted, body FROM allowlist_items WHERE NOT deleted"
			" ORDER BY key", NULL, &r);
	} else {
		pg_param_i64(&pp, (int64_t)from);
		err = pg_exec(p, "SELECT key, deleted, body FROM allowlist_items"
			" WHERE version > $1 ORDER BY version, key", &pp, &r);
	}
	if (err < 0)
		goto fail;
	ret->type = snapshot ? AL_MSG_SNAPSHOT : AL_MSG_DELTA;
	ret->version = v;
	ret->from = snapshot ? 0 : from;
	for (int i = 0; i < PQntuples(r) && err == 0; i++) {
		struct al_item it;

		if (streq(PQgetvalue(r, i, 1), "t")) {
			err = al_msg_add_del(ret, PQgetvalue(r, i, 0));
			continue;
		}
		if ((err = pg_item_row(r, i, 2, &it)) == 0)
			err = al_msg_add_set(ret, &it);
		al_item_clear(&it);
	}
	PQclear(r);
	if (err < 0)
		goto fail;
	if ((err = pg_exec(p, "COMMIT", NULL, NULL)) < 0)
		goto fail;
	if (v > p->version)
		p->version = v;
	return 0;
fail:
	pg_rollback(p);
	al_msg_clear(ret);
	al_msg_init(ret);
	return err;
}

/* --- audit --- */

static int pg_audit(void *b, const struct store_who *who, const char *action, int64_t entry,
	const json_t *detail)
{
	struct pg *p = b;
	int err;

	if ((err = pg_exec(p, "BEGIN", NULL, NULL)) < 0)
		return err;
	if ((err = pg_audit_insert(p, who, action, entry, detail)) < 0) {
		pg_rollback(p);
		return err;
	}
	return pg_commit(p, 0);
}

static json_t *pg_audit_record(const PGresult *r, int row)
{
	char when[TIME_ISO_STRLEN];
	const char *detail = pg_str(r, row, 6);
	json_t *d = detail ? json_loads(detail, 0, NULL) : NULL;
	json_t *o = json_pack("{sIsssosososo}", "id", (json_int_t)pg_i64(r, row, 0), "time",
		time_iso(pg_i64(r, row, 1), when, sizeof(when)), "who",
		pg_str(r, row, 2) ? json_string(pg_str(r, row, 2)) : json_null(), "from",
		pg_str(r, row, 3) ? json_string(pg_str(r, row, 3)) : json_null(), "action",
		json_string(pg_str(r, row, 4)), "entry",
		pg_str(r, row, 5) ? json_integer(pg_i64(r, row, 5)) : json_null());

	if (o)
		json_object_set_new(o, "detail", d ? d : json_null());
	else
		json_decref(d);
	return o;
}

static int pg_audit_each(void *b, int64_t after, size_t limit,
	int (*cb)(json_t *record, void *arg), void *arg)
{
	struct pg *p = b;
	struct pg_params pp = {0};
	PGresult *r;
	int err;

	pg_param_i64(&pp, after);
	if (limit && limit < INT64_MAX)
		pg_param_i64(&pp, (int64_t)limit);
	else
		pg_param_str(&pp, NULL); /* LIMIT NULL: all */
	err = pg_exec(p, "SELECT id, time, who, peer, action, entry, detail FROM allowlist_audit"
		" WHERE id > $1 ORDER BY id LIMIT $2", &pp, &r);
	if (err < 0)
		return err;
	for (int i = 0; i < PQntuples(r) && err == 0; i++) {
		json_t *o = pg_audit_record(r, i);

		if (!o) {
			err = -ENOMEM;
			break;
		}
		err = cb(o, arg);
		json_decref(o);
	}
	PQclear(r);
	return err;
}

/* --- gateways and leadership --- */

static int pg_gateway_report(void *b, const struct store_gateway *g)
{
	struct pg *p = b;
	struct pg_params pp = {0};

	pg_param_str(&pp, g->name);
	pg_param_str(&pp, g->replica);
	pg_param_str(&pp, g->peer);
	pg_param_i64(&pp, (int64_t)g->version);
	pg_param_i64(&pp, g->last_seen);
	pg_param_str(&pp, g->connected ? "true" : "false");
	/* A replica the gateway left says nothing over the one it is connected to now. */
	return pg_exec(p,
		"INSERT INTO allowlist_gateways (name, replica, peer, version, last_seen, connected)"
		" VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET"
		" replica = excluded.replica, peer = excluded.peer, version = excluded.version,"
		" last_seen = excluded.last_seen, connected = excluded.connected"
		" WHERE excluded.connected OR allowlist_gateways.replica = excluded.replica"
		" OR NOT allowlist_gateways.connected",
		&pp, NULL);
}

static int pg_gateways_each(void *b, int (*cb)(const struct store_gateway *g, void *arg),
	void *arg)
{
	struct pg *p = b;
	PGresult *r;
	int err;

	err = pg_exec(p, "SELECT name, replica, peer, version, last_seen, connected"
		" FROM allowlist_gateways ORDER BY name", NULL, &r);
	if (err < 0)
		return err;
	for (int i = 0; i < PQntuples(r) && err == 0; i++) {
		struct store_gateway g = {0};

		snprintf(g.name, sizeof(g.name), "%s", PQgetvalue(r, i, 0));
		snprintf(g.replica, sizeof(g.replica), "%s", PQgetvalue(r, i, 1));
		snprintf(g.peer, sizeof(g.peer), "%s", PQgetvalue(r, i, 2));
		g.version = (uint64_t)pg_i64(r, i, 3);
		g.last_seen = pg_i64(r, i, 4);
		g.connected = streq(PQgetvalue(r, i, 5), "t");
		err = cb(&g, arg);
	}
	PQclear(r);
	return err;
}

static bool pg_leader(void *b)
{
	struct pg *p = b;
	PGresult *r;

	if (!p->conn)
		return false;
	if (p->leader) {
		/* Held while the session lives: is it still alive (a round trip finds out)? */
		if (pg_exec(p, "SELECT 1", NULL, NULL) < 0)
			return false;
		if (p->leader)
			return true;
	}
	if (pg_exec(p, "SELECT pg_try_advisory_lock(" PG_LOCK_LEADER ")", NULL, &r) < 0)
		return false;
	p->leader = PQntuples(r) == 1 && streq(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	if (p->leader)
		log_info("store: postgresql: this replica now runs the resolver");
	return p->leader;
}

const struct store_backend_ops store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.entry_add = pg_entry_add,
	.entry_delete = pg_entry_delete,
	.entry_get = pg_entry_get,
	.entries_each = pg_entries_each,
	.import = pg_import,
	.resolved_set = pg_resolved_set,
	.resolved_get = pg_resolved_get,
	.version = pg_version,
	.changes = pg_changes,
	.audit = pg_audit,
	.audit_each = pg_audit_each,
	.gateway_report = pg_gateway_report,
	.gateways_each = pg_gateways_each,
	.leader = pg_leader,
};
