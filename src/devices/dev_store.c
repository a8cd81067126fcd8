/*
 * dev_store.c - the devices module's SQLite store (see dev_store.h): schema, migrations,
 * records in and out.
 *
 * Leases are kept as JSON text beside plain columns for what an operator reads with sqlite3
 * (wan4, wan6, lease expiry), so a field added to a lease needs no schema change.  A
 * read-only open (egressctl --direct) never creates the file nor changes its schema.
 *
 * Must not: keep a statement across calls that could hold a read lock on the WAL (the
 * daemon's checkpoints would stall behind egressctl); log what a caller logs again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "dev_conf.h"
#include "dev_store.h"
#include "log.h"
#include "util.h"

/* The schema's version (PRAGMA user_version); a newer file is refused, an older migrated. */
#define DEV_STORE_VERSION 1
/* Events kept per device; older ones go as new ones come. */
#define DEV_HISTORY_KEEP 200

struct dev_store {
	sqlite3 *db;
	char *path;
	bool readonly;
};

const char *const dev_status_name[_DEV_STATUS_MAX] = {
	[DEV_DISCOVERED] = "discovered",
	[DEV_ACQUIRING] = "acquiring",
	[DEV_ACTIVE] = "active",
	[DEV_INACTIVE] = "inactive",
	[DEV_DENIED] = "denied",
};

static const char *const v6_source_name[_DEV_V6_SOURCE_MAX] = {
	[DEV_V6_NONE] = "none",
	[DEV_V6_SLAAC] = "slaac",
	[DEV_V6_DHCPV6] = "dhcpv6",
};

int dev_status_from_name(const char *name)
{
	for (int i = 0; i < _DEV_STATUS_MAX; i++)
		if (name && streq(name, dev_status_name[i]))
			return i;
	return -EINVAL;
}

static const char *const schema[] = {
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS devices ("
	" mac TEXT PRIMARY KEY,"
	" hostname TEXT NOT NULL DEFAULT '',"
	" lan4 TEXT,"
	" status TEXT NOT NULL,"
	" first_seen INTEGER NOT NULL,"
	" last_seen INTEGER NOT NULL,"
	" slot INTEGER NOT NULL,"
	" ifname TEXT NOT NULL DEFAULT '',"
	" wan4 TEXT,"
	" lease4_expires INTEGER,"
	" lease4 TEXT,"
	" wan6 TEXT,"
	" v6_source TEXT NOT NULL DEFAULT 'none',"
	" lease6_expires INTEGER,"
	" lease6 TEXT,"
	" duid BLOB,"
	" iaid INTEGER NOT NULL DEFAULT 0,"
	" updated_at INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS history ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" mac TEXT NOT NULL,"
	" at INTEGER NOT NULL,"
	" event TEXT NOT NULL)",
	"CREATE INDEX IF NOT EXISTS history_mac ON history (mac, id)",
	"CREATE TABLE IF NOT EXISTS forwards ("
	" mac TEXT NOT NULL,"
	" outer_port INTEGER NOT NULL,"
	" inner_port INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" PRIMARY KEY (mac, outer_port))",
};

/* An SQLite result code as -errno. */
static int sq_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

static int sq_fail(struct dev_store *st, const char *what, int rc)
{
	log_warnx("devices: store %s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
	return sq_errno(rc);
}

static int sq_exec(struct dev_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(st, sql, rc);
}

static int sq_prepare(struct dev_store *st, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, ret, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(st, "prepare", rc);
}

/* Step a statement that returns no row, and finalize it. */
static int sq_run(struct dev_store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : sq_errno(rc);

	if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT)
		sq_fail(st, what, rc);
	sqlite3_finalize(s);
	return r;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int schema_version(struct dev_store *st, int *ret)
{
	sqlite3_stmt *s;
	int r = sq_prepare(st, "PRAGMA user_version", &s);

	if (r < 0)
		return r;
	r = sqlite3_step(s) == SQLITE_ROW ? 0 : sq_fail(st, "user_version", SQLITE_ERROR);
	if (r == 0)
		*ret = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return r;
}

/* Create or migrate the schema in one transaction. */
static int schema_setup(struct dev_store *st)
{
	char sql[64];
	int v, r;

	r = schema_version(st, &v);
	if (r < 0)
		return r;
	if (v > DEV_STORE_VERSION) {
		log_warnx("devices: store %s has schema version %d, newer than this egressd's %d",
			st->path, v, DEV_STORE_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (v == DEV_STORE_VERSION)
		return 0;
	r = sq_exec(st, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(schema) && r == 0; i++)
		r = sq_exec(st, schema[i]);
	/* version 0 -> 1: the tables above; later versions add their steps here */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", DEV_STORE_VERSION);
	if (r == 0)
		r = sq_exec(st, sql);
	if (r == 0)
		r = sq_exec(st, "COMMIT");
	else
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* The folder of path, made (0700) when it is missing, as a fresh /var/lib/egress is. */
static int make_dir(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int r = 0;

	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			r = -errno;
	}
	free(dir);
	return r;
}

static int open_rw(struct dev_store *st)
{
	int rc, r;

	r = make_dir(st->path);
	if (r < 0) {
		log_warnx("devices: store %s: cannot make its folder: %s", st->path, strerror(-r));
		return r;
	}
	rc = sqlite3_open_v2(st->path, &st->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(st, "open", rc);
	sqlite3_busy_timeout(st->db, 5000);
	/* journal_mode answers with the mode it is in: anything but wal is a failure */
	sqlite3_stmt *s;

	r = sq_prepare(st, "PRAGMA journal_mode = WAL", &s);
	if (r < 0)
		return r;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW || !sqlite3_column_text(s, 0) ||
		strcmp((const char *)sqlite3_column_text(s, 0), "wal")) {
		sqlite3_finalize(s);
		if (rc == SQLITE_ROW)
			log_warnx("devices: store %s: cannot use WAL", st->path);
		return rc == SQLITE_ROW ? -EIO : sq_fail(st, "journal_mode", rc);
	}
	sqlite3_finalize(s);
	r = sq_exec(st, "PRAGMA synchronous = FULL");
	if (r == 0)
		r = schema_setup(st);
	return r;
}

static int open_ro(struct dev_store *st)
{
	struct stat sb;
	char *uri;
	int rc, v, r;

	/* SQLITE_OPEN_READONLY never creates the file; say "not there" plainly */
	if (stat(st->path, &sb) < 0) {
		r = -errno;
		log_warnx("devices: store %s: %s", st->path, strerror(errno));
		return r;
	}
	rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(st->db, 5000);
		rc = schema_version(st, &v) < 0 ? SQLITE_CANTOPEN : SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		/*
		 * A WAL file whose -shm is missing cannot be read by a reader that may not make
		 * one (no write access to the folder): with the daemon stopped its last close
		 * left no WAL to read, and the file may be opened as immutable.
		 */
		sqlite3_close(st->db);
		st->db = NULL;
		if (asprintf(&uri, "file:%s?immutable=1", st->path) < 0)
			abort();
		rc = sqlite3_open_v2(uri, &st->db,
			SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
		free(uri);
		if (rc != SQLITE_OK)
			return sq_fail(st, "open read-only", rc);
		r = schema_version(st, &v);
		if (r < 0)
			return r;
	}
	if (v != DEV_STORE_VERSION) {
		log_warnx("devices: store %s: schema version %d, expected %d%s", st->path, v,
			DEV_STORE_VERSION, v == 0 ? " (not a devices store)" : "");
		return v == 0 ? -EBADMSG : -EPROTONOSUPPORT;
	}
	return 0;
}

int dev_store_open(const char *path, bool readonly, struct dev_store **ret)
{
	struct dev_store *st = xcalloc(1, sizeof(*st));
	int r;

	st->path = xstrdup(path);
	st->readonly = readonly;
	r = readonly ? open_ro(st) : open_rw(st);
	if (r < 0) {
		dev_store_close(st);
		return r;
	}
	*ret = st;
	return 0;
}

void dev_store_close(struct dev_store *st)
{
	if (!st)
		return;
	if (st->db)
		sqlite3_close(st->db);
	free(st->path);
	free(st);
}

int dev_store_begin(struct dev_store *st)
{
	return sq_exec(st, "BEGIN IMMEDIATE");
}

int dev_store_commit(struct dev_store *st)
{
	int r = sq_exec(st, "COMMIT");

	if (r < 0)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* --- leases as JSON --- */

static json_t *addr_json(const struct addr *a)
{
	char buf[ADDR_STRLEN];

	return addr_is_set(a) ? json_string(addr_str(a, buf, sizeof(buf))) : json_null();
}

static void addr_from_json(json_t *v, struct addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (json_is_string(v))
		addr_parse(json_string_value(v), ret);
}

static json_t *addrs_json(const struct addr *a, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, addr_json(&a[i]));
	return arr;
}

static size_t addrs_from_json(json_t *arr, struct addr *ret, size_t max)
{
	size_t i, n = 0;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (n == max)
			break;
		addr_from_json(v, &ret[n]);
		if (addr_is_set(&ret[n]))
			n++;
	}
	return n;
}

static char *hex_of(const uint8_t *b, size_t n)
{
	char *s = xmalloc(n * 2 + 1);

	for (size_t i = 0; i < n; i++)
		snprintf(s + i * 2, 3, "%02x", b[i]);
	s[n * 2] = '\0';
	return s;
}

static size_t hex_to(const char *s, uint8_t *ret, size_t max)
{
	size_t n = 0;

	while (s && s[0] && s[1] && n < max && hex_digit(s[0]) >= 0 && hex_digit(s[1]) >= 0) {
		ret[n++] = (uint8_t)(hex_digit(s[0]) << 4 | hex_digit(s[1]));
		s += 2;
	}
	return n;
}

static char *lease4_text(const struct dhcp4_lease *l)
{
	char mac[18];
	json_t *o = json_pack("{sosisosososIsIsIsIss}", "addr", addr_json(&l->addr), "plen",
		l->plen, "router", addr_json(&l->router), "server_id", addr_json(&l->server_id),
		"dns", addrs_json(l->dns, l->n_dns), "lease_s", (json_int_t)l->lease_s,
		"t1_s", (json_int_t)l->t1_s, "t2_s", (json_int_t)l->t2_s, "obtained_at",
		(json_int_t)l->obtained_at, "server_mac", dev_mac_str(l->server_mac, mac));
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

static void lease4_parse(const char *text, struct dhcp4_lease *ret)
{
	json_t *o = json_loads(text, 0, NULL);

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(o))
		goto out;
	addr_from_json(json_object_get(o, "addr"), &ret->addr);
	ret->plen = (uint8_t)json_integer_value(json_object_get(o, "plen"));
	addr_from_json(json_object_get(o, "router"), &ret->router);
	addr_from_json(json_object_get(o, "server_id"), &ret->server_id);
	ret->n_dns = addrs_from_json(json_object_get(o, "dns"), ret->dns, DHCP4_DNS_MAX);
	ret->lease_s = (uint32_t)json_integer_value(json_object_get(o, "lease_s"));
	ret->t1_s = (uint32_t)json_integer_value(json_object_get(o, "t1_s"));
	ret->t2_s = (uint32_t)json_integer_value(json_object_get(o, "t2_s"));
	ret->obtained_at = json_integer_value(json_object_get(o, "obtained_at"));
	if (json_is_string(json_object_get(o, "server_mac")))
		dev_mac_parse(json_string_value(json_object_get(o, "server_mac")), ret->server_mac);
out:
	json_decref(o);
}

static char *lease6_text(const struct dhcp6_lease *l)
{
	char *duid = hex_of(l->server_duid, l->server_duid_len);
	json_t *o = json_pack("{sosIsIsIsIsssososI}", "addr", addr_json(&l->addr),
		"preferred_s", (json_int_t)l->preferred_s, "valid_s", (json_int_t)l->valid_s,
		"t1_s", (json_int_t)l->t1_s, "t2_s", (json_int_t)l->t2_s, "server_duid", duid,
		"server", addr_json(&l->server), "dns", addrs_json(l->dns, l->n_dns),
		"obtained_at", (json_int_t)l->obtained_at);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	free(duid);
	return s;
}

static void lease6_parse(const char *text, struct dhcp6_lease *ret)
{
	json_t *o = json_loads(text, 0, NULL);

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(o))
		goto out;
	addr_from_json(json_object_get(o, "addr"), &ret->addr);
	ret->preferred_s = (uint32_t)json_integer_value(json_object_get(o, "preferred_s"));
	ret->valid_s = (uint32_t)json_integer_value(json_object_get(o, "valid_s"));
	ret->t1_s = (uint32_t)json_integer_value(json_object_get(o, "t1_s"));
	ret->t2_s = (uint32_t)json_integer_value(json_object_get(o, "t2_s"));
	ret->server_duid_len = hex_to(json_string_value(json_object_get(o, "server_duid")),
		ret->server_duid, sizeof(ret->server_duid));
	addr_from_json(json_object_get(o, "server"), &ret->server);
	ret->n_dns = addrs_from_json(json_object_get(o, "dns"), ret->dns, DHCP6_DNS_MAX);
	ret->obtained_at = json_integer_value(json_object_get(o, "obtained_at"));
out:
	json_decref(o);
}

/* When a lease with this length, obtained then, ends (unix s); INT64_MAX: never. */
static int64_t lease_end(int64_t obtained_at, uint32_t secs)
{
	return secs == 0xffffffffu ? INT64_MAX : obtained_at + secs;
}

/* --- devices --- */

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
	if (t)
		sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static void bind_addr(sqlite3_stmt *s, int i, const struct addr *a)
{
	char buf[ADDR_STRLEN];

	bind_text(s, i, addr_is_set(a) ? addr_str(a, buf, sizeof(buf)) : NULL);
}

int dev_store_put(struct dev_store *st, const struct dev_record *r)
{
	sqlite3_stmt *s;
	char mac[18], wan6[CIDR_STRLEN];
	char *l4 = NULL, *l6 = NULL;
	int res;

	res = sq_prepare(st,
		"INSERT OR REPLACE INTO devices (mac, hostname, lan4, status, first_seen, last_seen,"
		" slot, ifname, wan4, lease4_expires, lease4, wan6, v6_source, lease6_expires,"
		" lease6, duid, iaid, updated_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
		" ?17, ?18)",
		&s);
	if (res < 0)
		return res;
	bind_text(s, 1, dev_mac_str(r->mac, mac));
	bind_text(s, 2, r->hostname);
	bind_addr(s, 3, &r->lan4);
	bind_text(s, 4, dev_status_name[r->status < _DEV_STATUS_MAX ? r->status : DEV_DISCOVERED]);
	sqlite3_bind_int64(s, 5, r->first_seen);
	sqlite3_bind_int64(s, 6, r->last_seen);
	sqlite3_bind_int64(s, 7, r->slot);
	bind_text(s, 8, r->ifname);
	if (r->has_lease4) {
		l4 = lease4_text(&r->lease4);
		bind_addr(s, 9, &r->lease4.addr);
		sqlite3_bind_int64(s, 10, lease_end(r->lease4.obtained_at, r->lease4.lease_s));
		bind_text(s, 11, l4);
	}
	bind_text(s, 12, r->wan6.addr.family ? cidr_str(&r->wan6, wan6, sizeof(wan6)) : NULL);
	bind_text(s, 13, v6_source_name[r->v6_source < _DEV_V6_SOURCE_MAX ? r->v6_source : 0]);
	if (r->has_lease6) {
		l6 = lease6_text(&r->lease6);
		sqlite3_bind_int64(s, 14, lease_end(r->lease6.obtained_at, r->lease6.valid_s));
		bind_text(s, 15, l6);
	}
	if (r->duid_len)
		sqlite3_bind_blob(s, 16, r->duid, (int)MIN(r->duid_len, sizeof(r->duid)),
			SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 17, r->iaid);
	sqlite3_bind_int64(s, 18, now_s());
	res = sq_run(st, s, "put");
	free(l4);
	free(l6);
	return res;
}

/* "2001:db8::1234/64": an address with its prefix length (host bits kept). */
static void wan6_parse(const char *t, struct cidr *ret)
{
	char buf[CIDR_STRLEN];
	char *slash;

	memset(ret, 0, sizeof(*ret));
	snprintf(buf, sizeof(buf), "%s", t);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (addr_parse(buf, &ret->addr) < 0)
		return;
	ret->plen = slash ? (uint8_t)atoi(slash + 1) : 128;
}

static const char device_cols[] =
	"SELECT mac, hostname, lan4, status, first_seen, last_seen, slot, ifname, lease4, wan6,"
	" v6_source, lease6, duid, iaid FROM devices";

static const char *col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* The current row of a device_cols query into ret. */
static void device_row(sqlite3_stmt *s, struct dev_record *ret)
{
	const char *t;
	int v;

	memset(ret, 0, sizeof(*ret));
	dev_mac_parse(col_text(s, 0), ret->mac);
	snprintf(ret->hostname, sizeof(ret->hostname), "%s", col_text(s, 1) ?: "");
	if (col_text(s, 2))
		addr_parse(col_text(s, 2), &ret->lan4);
	v = dev_status_from_name(col_text(s, 3));
	ret->status = v < 0 ? DEV_DISCOVERED : (enum dev_status)v;
	ret->first_seen = sqlite3_column_int64(s, 4);
	ret->last_seen = sqlite3_column_int64(s, 5);
	ret->slot = (uint32_t)sqlite3_column_int64(s, 6);
	snprintf(ret->ifname, sizeof(ret->ifname), "%s", col_text(s, 7) ?: "");
	if ((t = col_text(s, 8))) {
		ret->has_lease4 = true;
		lease4_parse(t, &ret->lease4);
	}
	if ((t = col_text(s, 9)))
		wan6_parse(t, &ret->wan6);
	t = col_text(s, 10);
	for (int i = 0; t && i < _DEV_V6_SOURCE_MAX; i++)
		if (streq(t, v6_source_name[i]))
			ret->v6_source = (enum dev_v6_source)i;
	if ((t = col_text(s, 11))) {
		ret->has_lease6 = true;
		lease6_parse(t, &ret->lease6);
	}
	ret->duid_len = MIN((size_t)sqlite3_column_bytes(s, 12), sizeof(ret->duid));
	if (ret->duid_len)
		memcpy(ret->duid, sqlite3_column_blob(s, 12), ret->duid_len);
	ret->iaid = (uint32_t)sqlite3_column_int64(s, 13);
}

int dev_store_get(struct dev_store *st, const uint8_t mac[6], struct dev_record *ret)
{
	sqlite3_stmt *s;
	char sql[sizeof(device_cols) + 32], m[18];
	int rc, r;

	snprintf(sql, sizeof(sql), "%s WHERE mac = ?1", device_cols);
	r = sq_prepare(st, sql, &s);
	if (r < 0)
		return r;
	bind_text(s, 1, dev_mac_str(mac, m));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		device_row(s, ret);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_fail(st, "get", rc);
	sqlite3_finalize(s);
	return r;
}

int dev_store_delete(struct dev_store *st, const uint8_t mac[6])
{
	sqlite3_stmt *s;
	char m[18];
	int r = sq_prepare(st, "DELETE FROM devices WHERE mac = ?1", &s);

	if (r < 0)
		return r;
	bind_text(s, 1, dev_mac_str(mac, m));
	r = sq_run(st, s, "delete");
	if (r == 0 && sqlite3_changes(st->db) == 0)
		r = -ENOENT;
	return r;
}

int dev_store_list(struct dev_store *st, dev_record_cb cb, void *arg)
{
	sqlite3_stmt *s;
	char sql[sizeof(device_cols) + 32];
	struct dev_record rec;
	int rc, r;

	snprintf(sql, sizeof(sql), "%s ORDER BY mac", device_cols);
	r = sq_prepare(st, sql, &s);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		device_row(s, &rec);
		r = cb(&rec, arg);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(st, "list", rc);
	sqlite3_finalize(s);
	return r;
}

/* --- history --- */

int dev_store_history_add(struct dev_store *st, const uint8_t mac[6], const char *event)
{
	sqlite3_stmt *s;
	char m[18];
	int r = sq_prepare(st, "INSERT INTO history (mac, at, event) VALUES (?1, ?2, ?3)", &s);

	if (r < 0)
		return r;
	bind_text(s, 1, dev_mac_str(mac, m));
	sqlite3_bind_int64(s, 2, now_s());
	bind_text(s, 3, event);
	r = sq_run(st, s, "history");
	if (r < 0)
		return r;
	/* bounded: the newest DEV_HISTORY_KEEP per device */
	r = sq_prepare(st,
		"DELETE FROM history WHERE mac = ?1 AND id <= (SELECT id FROM history WHERE mac = ?1"
		" ORDER BY id DESC LIMIT 1 OFFSET ?2)",
		&s);
	if (r < 0)
		return r;
	bind_text(s, 1, m);
	sqlite3_bind_int(s, 2, DEV_HISTORY_KEEP);
	return sq_run(st, s, "history trim");
}

int dev_store_history(struct dev_store *st, const uint8_t mac[6], size_t limit, dev_history_cb cb,
	void *arg)
{
	sqlite3_stmt *s;
	char m[18];
	int rc, r = sq_prepare(st,
		"SELECT at, event FROM history WHERE mac = ?1 ORDER BY id DESC LIMIT ?2", &s);

	if (r < 0)
		return r;
	bind_text(s, 1, dev_mac_str(mac, m));
	sqlite3_bind_int64(s, 2, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = cb(sqlite3_column_int64(s, 0), col_text(s, 1) ?: "", arg);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(st, "history", rc);
	sqlite3_finalize(s);
	return r;
}

/* --- forwards --- */

int dev_store_forward_add(struct dev_store *st, const struct dev_forward *f)
{
	sqlite3_stmt *s;
	char m[18];
	int r = sq_prepare(st,
		"INSERT INTO forwards (mac, outer_port, inner_port, created_at) VALUES (?1, ?2, ?3, ?4)",
		&s);

	if (r < 0)
		return r;
	bind_text(s, 1, dev_mac_str(f->mac, m));
	sqlite3_bind_int(s, 2, f->outer);
	sqlite3_bind_int(s, 3, f->inner);
	sqlite3_bind_int64(s, 4, now_s());
	return sq_run(st, s, "forward add");
}

int dev_store_forward_del(struct dev_store *st, const struct dev_forward *f)
{
	sqlite3_stmt *s;
	char m[18];
	int r = sq_prepare(st,
		"DELETE FROM forwards WHERE mac = ?1 AND outer_port = ?2 AND inner_port = ?3", &s);

	if (r < 0)
		return r;
	bind_text(s, 1, dev_mac_str(f->mac, m));
	sqlite3_bind_int(s, 2, f->outer);
	sqlite3_bind_int(s, 3, f->inner);
	r = sq_run(st, s, "forward remove");
	if (r == 0 && sqlite3_changes(st->db) == 0)
		r = -ENOENT;
	return r;
}

int dev_store_forward_list(struct dev_store *st, dev_forward_cb cb, void *arg)
{
	sqlite3_stmt *s;
	struct dev_forward f;
	int rc, r = sq_prepare(st,
		"SELECT mac, outer_port, inner_port FROM forwards ORDER BY mac, outer_port", &s);

	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&f, 0, sizeof(f));
		dev_mac_parse(col_text(s, 0), f.mac);
		f.outer = (uint16_t)sqlite3_column_int(s, 1);
		f.inner = (uint16_t)sqlite3_column_int(s, 2);
		r = cb(&f, arg);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(st, "forward list", rc);
	sqlite3_finalize(s);
	return r;
}

/* --- meta --- */

int dev_store_meta_set(struct dev_store *st, const char *key, const char *value)
{
	sqlite3_stmt *s;
	int r = sq_prepare(st, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", &s);

	if (r < 0)
		return r;
	bind_text(s, 1, key);
	bind_text(s, 2, value ? value : "");
	return sq_run(st, s, "meta");
}

int dev_store_meta_get(struct dev_store *st, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *s;
	int rc, r = sq_prepare(st, "SELECT value FROM meta WHERE key = ?1", &s);

	if (r < 0)
		return r;
	bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		snprintf(buf, len, "%s", col_text(s, 0) ?: "");
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_fail(st, "meta", rc);
	sqlite3_finalize(s);
	return r;
}

int dev_store_meta_list(struct dev_store *st, dev_meta_cb cb, void *arg)
{
	sqlite3_stmt *s;
	int rc, r = sq_prepare(st, "SELECT key, value FROM meta ORDER BY key", &s);

	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = cb(col_text(s, 0) ?: "", col_text(s, 1) ?: "", arg);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(st, "meta list", rc);
	sqlite3_finalize(s);
	return r;
}

int64_t dev_store_written_at(struct dev_store *st)
{
	sqlite3_stmt *s;
	int64_t at = 0;

	if (sq_prepare(st, "SELECT max(updated_at) FROM devices", &s) < 0)
		return 0;
	if (sqlite3_step(s) == SQLITE_ROW)
		at = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return at;
}

const char *dev_store_path(const struct dev_store *st)
{
	return st->path;
}
