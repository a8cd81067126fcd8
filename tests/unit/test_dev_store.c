/*
 * test_dev_store.c - the devices' SQLite store (src/devices/dev_store.c) and its JSON
 * (dev_json.c): records with leases round trip, history newest first and bounded, forwards,
 * meta, a read-only open that never creates the file, a schema from the future refused, and
 * durability: a child killed by SIGKILL right after a put returned, its record found by the
 * parent.
 *
 * Each test works in a directory of its own under /tmp, removed after.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "dev_conf.h"
#include "dev_json.h"
#include "dev_store.h"
#include "util.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_dev_store.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/state/" DEV_STORE_FILE, f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	static const char *const files[] = {"", "-wal", "-shm", "-journal"};
	char p[192];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/state", f->dir);
	rmdir(p);
	if (rmdir(f->dir) < 0)
		return -1;
	free(f);
	return 0;
}

static void record(struct dev_record *r, uint8_t last)
{
	memset(r, 0, sizeof(*r));
	r->mac[0] = 0x02;
	r->mac[5] = last;
	snprintf(r->hostname, sizeof(r->hostname), "dev%u", last);
	addr_parse("192.168.1.100", &r->lan4);
	r->lan4.b[3] = last;
	r->status = DEV_ACTIVE;
	r->first_seen = 1700000000;
	r->last_seen = 1700000100;
	r->slot = last;
	snprintf(r->ifname, sizeof(r->ifname), "egd%u", last);
	r->has_lease4 = true;
	addr_parse("10.1.2.50", &r->lease4.addr);
	r->lease4.plen = 24;
	addr_parse("10.1.2.1", &r->lease4.router);
	addr_parse("10.1.2.2", &r->lease4.server_id);
	addr_parse("10.1.2.3", &r->lease4.dns[0]);
	r->lease4.n_dns = 1;
	r->lease4.lease_s = 3600;
	r->lease4.t1_s = 1800;
	r->lease4.t2_s = 3150;
	r->lease4.obtained_at = 1700000050;
	memcpy(r->lease4.server_mac, (uint8_t[]){0x52, 0x54, 0, 0, 0, 1}, 6);
	addr_parse("2001:db8::1234", &r->wan6.addr);
	r->wan6.plen = 64;
	r->v6_source = DEV_V6_DHCPV6;
	r->has_lease6 = true;
	addr_parse("2001:db8::1234", &r->lease6.addr);
	r->lease6.preferred_s = 1800;
	r->lease6.valid_s = 7200;
	r->lease6.t1_s = 900;
	r->lease6.t2_s = 1440;
	r->lease6.server_duid_len = 10;
	memcpy(r->lease6.server_duid, (uint8_t[]){0, 3, 0, 1, 0x52, 0x54, 0, 0, 0, 1}, 10);
	addr_parse("fe80::1", &r->lease6.server);
	r->lease6.obtained_at = 1700000060;
	/* DUID-LL (RFC 8415 11.4): type 3, hardware type 1, the MAC */
	memcpy(r->duid, (uint8_t[]){0, 3, 0, 1}, 4);
	memcpy(r->duid + 4, r->mac, 6);
	r->duid_len = 10;
	r->iaid = 0x01020304;
}

static void assert_record_equal(const struct dev_record *a, const struct dev_record *b)
{
	assert_memory_equal(a->mac, b->mac, 6);
	assert_string_equal(a->hostname, b->hostname);
	assert_true(addr_eq(&a->lan4, &b->lan4));
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->first_seen, b->first_seen);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->slot, b->slot);
	assert_string_equal(a->ifname, b->ifname);
	assert_int_equal(a->has_lease4, b->has_lease4);
	if (!a->has_lease4)
		goto lease6;
	assert_true(addr_eq(&a->lease4.addr, &b->lease4.addr));
	assert_int_equal(a->lease4.plen, b->lease4.plen);
	assert_true(addr_eq(&a->lease4.router, &b->lease4.router));
	assert_true(addr_eq(&a->lease4.server_id, &b->lease4.server_id));
	assert_int_equal(a->lease4.n_dns, b->lease4.n_dns);
	assert_int_equal(a->lease4.lease_s, b->lease4.lease_s);
	assert_int_equal(a->lease4.t1_s, b->lease4.t1_s);
	assert_int_equal(a->lease4.t2_s, b->lease4.t2_s);
	assert_int_equal(a->lease4.obtained_at, b->lease4.obtained_at);
	assert_memory_equal(a->lease4.server_mac, b->lease4.server_mac, 6);
	assert_int_equal(cidr_cmp(&a->wan6, &b->wan6), 0);
	assert_int_equal(a->v6_source, b->v6_source);
lease6:
	assert_int_equal(a->has_lease6, b->has_lease6);
	if (!a->has_lease6)
		goto duid;
	assert_true(addr_eq(&a->lease6.addr, &b->lease6.addr));
	assert_int_equal(a->lease6.preferred_s, b->lease6.preferred_s);
	assert_int_equal(a->lease6.valid_s, b->lease6.valid_s);
	assert_int_equal(a->lease6.server_duid_len, b->lease6.server_duid_len);
	assert_memory_equal(a->lease6.server_duid, b->lease6.server_duid,
		a->lease6.server_duid_len);
	assert_true(addr_eq(&a->lease6.server, &b->lease6.server));
	assert_int_equal(a->lease6.obtained_at, b->lease6.obtained_at);
duid:
	assert_int_equal(a->duid_len, b->duid_len);
	assert_memory_equal(a->duid, b->duid, a->duid_len);
	assert_int_equal(a->iaid, b->iaid);
}

static int count_cb(const struct dev_record *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void test_put_get(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	struct dev_record r, got, bare = {.mac = {2, 0, 0, 0, 0, 9}, .status = DEV_DISCOVERED};
	int n = 0;

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	record(&r, 1);
	assert_int_equal(dev_store_put(st, &r), 0);
	assert_int_equal(dev_store_get(st, r.mac, &got), 0);
	assert_record_equal(&r, &got);
	/* replace by mac */
	r.status = DEV_INACTIVE;
	r.has_lease4 = false;
	assert_int_equal(dev_store_put(st, &r), 0);
	assert_int_equal(dev_store_get(st, r.mac, &got), 0);
	assert_int_equal(got.status, DEV_INACTIVE);
	assert_false(got.has_lease4);
	/* nothing known but the MAC */
	assert_int_equal(dev_store_put(st, &bare), 0);
	assert_int_equal(dev_store_get(st, bare.mac, &got), 0);
	assert_record_equal(&bare, &got);
	assert_int_equal(dev_store_list(st, count_cb, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(dev_store_delete(st, bare.mac), 0);
	assert_int_equal(dev_store_delete(st, bare.mac), -ENOENT);
	assert_int_equal(dev_store_get(st, bare.mac, &got), -ENOENT);
	dev_store_close(st);
	/* and again after a reopen */
	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_get(st, r.mac, &got), 0);
	assert_record_equal(&r, &got);
	dev_store_close(st);
}

static void test_batch(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	struct dev_record r;
	int n = 0;

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_begin(st), 0);
	for (uint8_t i = 1; i <= 50; i++) {
		record(&r, i);
		assert_int_equal(dev_store_put(st, &r), 0);
	}
	assert_int_equal(dev_store_commit(st), 0);
	assert_int_equal(dev_store_list(st, count_cb, &n), 0);
	assert_int_equal(n, 50);
	dev_store_close(st);
}

struct hist {
	int n;
	char first[64];
};

static int hist_cb(int64_t at, const char *event, void *arg)
{
	struct hist *h = arg;

	assert_true(at > 0);
	if (h->n++ == 0)
		snprintf(h->first, sizeof(h->first), "%s", event);
	return 0;
}

static void test_history(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	uint8_t mac[6] = {2, 0, 0, 0, 0, 1}, other[6] = {2, 0, 0, 0, 0, 2};
	struct hist h = {0};
	char ev[32];

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_history_add(st, other, "left"), 0);
	for (int i = 0; i < 250; i++) {
		snprintf(ev, sizeof(ev), "acquired 10.1.2.%d", i);
		assert_int_equal(dev_store_history_add(st, mac, ev), 0);
	}
	assert_int_equal(dev_store_history(st, mac, 3, hist_cb, &h), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.first, "acquired 10.1.2.249");
	/* bounded per device: the newest 200 */
	h = (struct hist){0};
	assert_int_equal(dev_store_history(st, mac, 0, hist_cb, &h), 0);
	assert_int_equal(h.n, 200);
	h = (struct hist){0};
	assert_int_equal(dev_store_history(st, other, 0, hist_cb, &h), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.first, "left");
	dev_store_close(st);
}

static int fwd_cb(const struct dev_forward *fw, void *arg)
{
	struct dev_forward *out = arg;
	int i = 0;

	while (out[i].outer)
		i++;
	out[i] = *fw;
	return 0;
}

static void test_forwards(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	struct dev_forward a = {.mac = {2, 0, 0, 0, 0, 1}, .outer = 8443, .inner = 443};
	struct dev_forward b = {.mac = {2, 0, 0, 0, 0, 1}, .outer = 2222, .inner = 22};
	struct dev_forward c = a, seen[8] = {0};

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_forward_add(st, &a), 0);
	assert_int_equal(dev_store_forward_add(st, &b), 0);
	c.inner = 444; /* the same gateway port on the same device */
	assert_int_equal(dev_store_forward_add(st, &c), -EEXIST);
	assert_int_equal(dev_store_forward_list(st, fwd_cb, seen), 0);
	assert_int_equal(seen[0].outer, 2222); /* by port */
	assert_int_equal(seen[1].outer, 8443);
	assert_int_equal(seen[1].inner, 443);
	assert_int_equal(seen[2].outer, 0);
	assert_int_equal(dev_store_forward_del(st, &c), -ENOENT);
	assert_int_equal(dev_store_forward_del(st, &a), 0);
	assert_int_equal(dev_store_forward_del(st, &a), -ENOENT);
	dev_store_close(st);
}

static void test_meta(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	char buf[64];

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_meta_get(st, "wan4", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(dev_store_meta_set(st, "wan4", "yes"), 0);
	assert_int_equal(dev_store_meta_set(st, "wan4", "no"), 0);
	assert_int_equal(dev_store_meta_get(st, "wan4", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "no");
	dev_store_close(st);
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	struct dev_store *st, *ro;
	struct dev_record r, got;
	struct stat sb;

	/* a missing store is an error, and stays missing */
	assert_int_equal(dev_store_open(f->path, true, &ro), -ENOENT);
	assert_int_equal(stat(f->path, &sb), -1);
	assert_int_equal(errno, ENOENT);
	/* read beside a writer (WAL) */
	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	record(&r, 7);
	assert_int_equal(dev_store_put(st, &r), 0);
	assert_int_equal(dev_store_open(f->path, true, &ro), 0);
	assert_int_equal(dev_store_get(ro, r.mac, &got), 0);
	assert_record_equal(&r, &got);
	assert_true(dev_store_put(ro, &r) < 0);
	assert_true(dev_store_meta_set(ro, "x", "y") < 0);
	r.slot = 99;
	assert_int_equal(dev_store_put(st, &r), 0);
	assert_int_equal(dev_store_get(ro, r.mac, &got), 0);
	assert_int_equal(got.slot, 99);
	dev_store_close(ro);
	dev_store_close(st);
	/* and with the writer gone */
	assert_int_equal(dev_store_open(f->path, true, &ro), 0);
	assert_int_equal(dev_store_get(ro, r.mac, &got), 0);
	assert_int_equal(got.slot, 99);
	dev_store_close(ro);
}

static void test_version(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	sqlite3 *db;

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	dev_store_close(st);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(dev_store_open(f->path, false, &st), -EPROTONOSUPPORT);
	assert_int_equal(dev_store_open(f->path, true, &st), -EPROTONOSUPPORT);
}

/*
 * A put that returned is on disk: the child signals the parent right after dev_store_put()
 * returns and then waits to be killed; SIGKILL gives SQLite no chance to flush or close.
 */
static void test_kill9(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	struct dev_record r, got;
	int p[2], status;
	char c;
	pid_t pid;

	record(&r, 42);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (dev_store_open(f->path, false, &st) < 0 || dev_store_put(st, &r) < 0)
			_exit(1);
		if (write(p[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(p[0]);
	/* read-only first: the WAL the child left is read as it is */
	assert_int_equal(dev_store_open(f->path, true, &st), 0);
	assert_int_equal(dev_store_get(st, r.mac, &got), 0);
	assert_record_equal(&r, &got);
	dev_store_close(st);
	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_get(st, r.mac, &got), 0);
	assert_record_equal(&r, &got);
	dev_store_close(st);
}

static void test_json(void **state)
{
	struct fx *f = *state;
	struct dev_store *st;
	struct dev_record r, r2;
	struct dev_forward fw = {.outer = 8443, .inner = 443};
	json_t *o, *doc, *dev;

	record(&r, 1);
	o = dev_record_json(&r);
	assert_non_null(o);
	/* the reference tool's names */
	assert_string_equal(json_string_value(json_object_get(o, "mac_address")),
		"02:00:00:00:00:01");
	assert_string_equal(json_string_value(json_object_get(o, "ipv4_address")), "192.168.1.1");
	assert_string_equal(json_string_value(json_object_get(o, "ipv4_wan_address")),
		"10.1.2.50");
	assert_string_equal(json_string_value(json_object_get(o, "ipv6_address")),
		"2001:db8::1234");
	assert_string_equal(json_string_value(json_object_get(o, "status")), "active");
	assert_string_equal(json_string_value(json_object_get(o, "hostname")), "dev1");
	/* ours */
	assert_string_equal(json_string_value(json_object_get(o, "ipv6_source")), "dhcpv6");
	assert_string_equal(json_string_value(json_object_get(o, "interface")), "egd1");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "lease4"),
				 "expires")),
		1700000050 + 3600);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "lease4"),
				 "renew_at")),
		1700000050 + 1800);
	assert_string_equal(json_string_value(json_object_get(o, "first_seen")),
		"2023-11-14T22:13:20Z");
	assert_int_equal(json_integer_value(json_object_get(o, "last_seen_unix")), 1700000100);
	json_decref(o);

	assert_int_equal(dev_store_open(f->path, false, &st), 0);
	assert_int_equal(dev_store_put(st, &r), 0);
	record(&r2, 2);
	r2.status = DEV_INACTIVE;
	r2.has_lease4 = false;
	assert_int_equal(dev_store_put(st, &r2), 0);
	memcpy(fw.mac, r.mac, 6);
	assert_int_equal(dev_store_forward_add(st, &fw), 0);
	doc = dev_store_devices_json(st, NULL);
	assert_int_equal(json_integer_value(json_object_get(doc, "count")), 2);
	json_decref(doc);
	doc = dev_store_devices_json(st, "active");
	assert_int_equal(json_integer_value(json_object_get(doc, "count")), 1);
	dev = json_array_get(json_object_get(doc, "devices"), 0);
	assert_string_equal(json_string_value(json_object_get(dev, "mac_address")),
		"02:00:00:00:00:01");
	o = json_array_get(json_object_get(dev, "forwards"), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "gateway_port")), 8443);
	assert_int_equal(json_integer_value(json_object_get(o, "device_port")), 443);
	assert_string_equal(json_string_value(json_object_get(o, "device")), "02:00:00:00:00:01");
	json_decref(doc);
	assert_null(dev_store_devices_json(st, "bogus"));
	doc = dev_store_status_json(st);
	assert_int_equal(json_integer_value(json_object_get(doc, "total_devices")), 2);
	assert_int_equal(json_integer_value(json_object_get(doc, "active_devices")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc,
							  "devices_by_status"), "inactive")),
		1);
	assert_true(json_is_string(json_object_get(doc, "written_at")));
	json_decref(doc);
	assert_int_equal(dev_store_meta_set(st, "upstream", "dual"), 0);
	doc = dev_store_status_json(st);
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "gateway"),
				    "upstream")),
		"dual");
	json_decref(doc);
	dev_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forwards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
