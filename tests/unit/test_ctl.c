/*
 * test_ctl.c - unit tests for egressctl's output and command line (src/ctl/): aligned tables,
 * the cells made of the API's JSON, the rows of a reply in each shape the API may send, and
 * the values of --confirm; the device commands' words, and --direct reading a devices' store
 * made in a folder of the test's own.  No daemon, no network; tables are printed to memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_cmds.h"
#include "ctl_devices.h"
#include "dev_conf.h"
#include "dev_store.h"
#include "ctl_table.h"
#include "util.h"

/* What f printed: a new string. */
static char *printed(void (*print)(void *, FILE *), void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	print(arg, f);
	fclose(f);
	return text;
}

static void print_table(void *arg, FILE *f)
{
	table_print(arg, f);
}

static void test_table_aligns(void **state)
{
	struct table *t = table_new(3, (const char *const[]){"NAME", "STATE", "RTT"});
	char *out;

	table_align_right(t, 2);
	table_add(t, (const char *const[]){"isp1", "up", "12.0ms"});
	table_add(t, (const char *const[]){"fibre-backup", NULL, "1.25s"});
	out = printed(print_table, t);
	assert_string_equal(out, "NAME          STATE     RTT\n"
				 "isp1          up     12.0ms\n"
				 "fibre-backup  -       1.25s\n");
	free(out);
	table_free(t);
}

/* The last column is not padded; a UTF-8 cell is as wide as its characters. */
static void test_table_last_column_and_utf8(void **state)
{
	struct table *t = table_new(2, NULL);
	char *out;

	table_add(t, (const char *const[]){"müller", "a"});
	table_add(t, (const char *const[]){"x", "longer text"});
	table_add(t, (const char *const[]){"end", ""});
	out = printed(print_table, t);
	assert_string_equal(out, "müller  a\n"
				 "x       longer text\n"
				 "end\n");
	free(out);
	table_free(t);
}

static const char *cell(const char *json, enum cell_fmt fmt)
{
	static char buf[128];
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	const char *s;

	assert_non_null(v);
	s = ctl_cell(v, fmt, buf, sizeof(buf));
	if (s != buf) {
		snprintf(buf, sizeof(buf), "%s", s);
	}
	json_decref(v);
	return buf;
}

static void test_cells(void **state)
{
	assert_string_equal(cell("\"up\"", CELL_TEXT), "up");
	assert_string_equal(cell("3", CELL_TEXT), "3");
	assert_string_equal(cell("1.5", CELL_TEXT), "1.5");
	assert_string_equal(cell("null", CELL_MS), "-");
	assert_string_equal(cell("true", CELL_TEXT), "yes");
	assert_string_equal(cell("false", CELL_TEXT), "no");
	assert_string_equal(cell("false", CELL_ENABLED), "drained");
	assert_string_equal(cell("true", CELL_ENABLED), "yes");
	assert_string_equal(cell("12.04", CELL_MS), "12.0ms");
	assert_string_equal(cell("1250", CELL_MS), "1.25s");
	assert_string_equal(cell("0.5", CELL_PCT), "0.5%");
	assert_string_equal(cell("0", CELL_PCT), "0%");
	assert_string_equal(cell("25", CELL_PCT), "25%");
	assert_string_equal(cell("0.25", CELL_RATIO), "25%");
	assert_string_equal(cell("0.005", CELL_RATIO), "0.5%");
	assert_string_equal(cell("512", CELL_BYTES), "512B");
	assert_string_equal(cell("1536", CELL_BYTES), "1.5K");
	assert_string_equal(cell("52428800", CELL_BYTES), "50M");
	assert_string_equal(cell("12000000", CELL_BPS), "12Mbit/s");
	assert_string_equal(cell("1500.0", CELL_BPS), "1.5kbit/s");
	assert_string_equal(cell("800", CELL_BPS), "800bit/s");
	assert_string_equal(cell("42", CELL_SECS), "42s");
	assert_string_equal(cell("185", CELL_SECS), "3m05s");
	assert_string_equal(cell("7260", CELL_SECS), "2h01m");
	assert_string_equal(cell("273600", CELL_SECS), "3d04h");
	assert_string_equal(cell("[1,2]", CELL_TEXT), "[1,2]");
}

static void test_cell_time_is_local(void **state)
{
	setenv("TZ", "UTC0", 1);
	tzset();
	assert_string_equal(cell("1767366245000", CELL_TIME), "2026-01-02 15:04:05");
	setenv("TZ", "CET-1", 1);
	tzset();
	assert_string_equal(cell("1767366245000", CELL_TIME), "2026-01-02 16:04:05");
	assert_string_equal(cell("\"2026-01-02T15:04:05.123Z\"", CELL_TIME),
		"2026-01-02 16:04:05");
	assert_string_equal(cell("\"2026-01-02T15:04:05Z\"", CELL_TIME), "2026-01-02 16:04:05");
	assert_string_equal(cell("\"yesterday\"", CELL_TIME), "yesterday");
	unsetenv("TZ");
	tzset();
}

static void test_json_get(void **state)
{
	json_t *o = json_loads("{\"rtt\": 3, \"check\": {\"rtt_ms\": 4}}", 0, NULL);

	assert_int_equal(json_integer_value(ctl_json_get(o, "rtt_ms|rtt")), 3);
	assert_int_equal(json_integer_value(ctl_json_get(o, "check.rtt_ms|rtt")), 4);
	assert_null(ctl_json_get(o, "loss|check.loss"));
	assert_null(ctl_json_get(json_object_get(o, "rtt"), "rtt"));
	json_decref(o);
}

static const struct ctl_column cols[] = {
	{"UPLINK", "name", CELL_TEXT},
	{"ENABLED", "enabled", CELL_ENABLED},
	{"RTT", "rtt_ms", CELL_MS},
};


static void print_rows_cb(void *arg, FILE *f)
{
	ctl_print_rows(arg, cols, ARRAY_SIZE(cols), f);
}

/* An array, an array under a member, an object of objects by name: the same table. */
static void test_rows_shapes(void **state)
{
	static const char *const docs[] = {
		"[{\"name\": \"isp1\", \"enabled\": true, \"rtt_ms\": 5},"
		" {\"name\": \"isp2\", \"enabled\": false}]",
		"{\"uplinks\": [{\"name\": \"isp1\", \"enabled\": true, \"rtt_ms\": 5},"
		" {\"name\": \"isp2\", \"enabled\": false}]}",
		"{\"uplinks\": {\"isp1\": {\"enabled\": true, \"rtt_ms\": 5},"
		" \"isp2\": {\"enabled\": false}}}",
		"{\"isp1\": {\"enabled\": true, \"rtt_ms\": 5}, \"isp2\": {\"enabled\": false}}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		json_t *doc = json_loads(docs[i], 0, NULL);
		json_t *rows = ctl_json_rows(doc, "uplinks");
		char *out;

		assert_non_null(rows);
		out = printed(print_rows_cb, rows);
		assert_string_equal(out, "UPLINK  ENABLED    RTT\n"
					 "isp1    yes      5.0ms\n"
					 "isp2    drained      -\n");
		free(out);
		json_decref(rows);
		json_decref(doc);
	}
}

static const struct ctl_column conn_cols[] = {
	{"CLIENT", "ip+port", CELL_TEXT},
	{"AGE", "age", CELL_SECS},
};

static void print_conns_cb(void *arg, FILE *f)
{
	ctl_print_rows(arg, conn_cols, ARRAY_SIZE(conn_cols), f);
}

static void test_rows_address_and_port(void **state)
{
	json_t *rows = json_loads("[{\"ip\": \"192.0.2.1\", \"port\": 80, \"age\": 1.4},"
				  " {\"ip\": \"2001:db8::1\", \"port\": 443, \"age\": 61},"
				  " {\"ip\": \"192.0.2.9\"}, {\"port\": 1}]", 0, NULL);
	char *out = printed(print_conns_cb, rows);

	assert_string_equal(out, "CLIENT               AGE\n"
				 "192.0.2.1:80          1s\n"
				 "[2001:db8::1]:443  1m01s\n"
				 "192.0.2.9              -\n"
				 "-                      -\n");
	free(out);
	json_decref(rows);
}

/* A reply of another shape has no rows: egressctl prints it as JSON, not as a table. */
static void test_rows_refuses_other_shapes(void **state)
{
	static const char *const docs[] = {"\"text\"", "{\"uplinks\": 3, \"x\": 1}",
		"{\"a\": {\"b\": 1}, \"c\": 2}"};

	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		json_t *doc = json_loads(docs[i], JSON_DECODE_ANY, NULL);

		assert_null(ctl_json_rows(doc, "uplinks"));
		json_decref(doc);
	}
}

static void print_object_cb(void *arg, FILE *f)
{
	ctl_print_object(arg, f);
}

static void test_print_object(void **state)
{
	json_t *o = json_loads("{\"backup_exists\": true, \"backup_file\": \"/var/x\", "
			       "\"backup_size\": 2048}", 0, NULL);
	char *out = printed(print_object_cb, o);

	assert_string_equal(out, "backup_exists:  yes\n"
				 "backup_file:    /var/x\n"
				 "backup_size:    2048\n");
	free(out);
	json_decref(o);
}

static void test_confirm_values(void **state)
{
	char buf[32];

	assert_int_equal(ctl_parse_confirm("60s", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "60s");
	assert_int_equal(ctl_parse_confirm("90", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "90s");
	assert_int_equal(ctl_parse_confirm("5m", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "300s");
	assert_int_equal(ctl_parse_confirm("60m", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "3600s");
	assert_int_equal(ctl_parse_confirm("61m", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ctl_parse_confirm("0s", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ctl_parse_confirm("-5", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ctl_parse_confirm("5h", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ctl_parse_confirm("s", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ctl_parse_confirm("99999999999999999999999", buf, sizeof(buf)),
		-EINVAL);
}

/* port-forward's words: ports bounded, the device a LAN IPv4 address or a MAC. */
static void test_forward_body(void **state)
{
	FILE *err = fopen("/dev/null", "w");
	json_t *b;

	b = ctl_forward_body("8080", "192.168.1.100", "80", err);
	assert_non_null(b);
	assert_int_equal(json_integer_value(json_object_get(b, "gateway_port")), 8080);
	assert_int_equal(json_integer_value(json_object_get(b, "device_port")), 80);
	assert_string_equal(json_string_value(json_object_get(b, "device_ip")), "192.168.1.100");
	assert_null(json_object_get(b, "device"));
	json_decref(b);
	b = ctl_forward_body("2323", "AA-BB-CC-DD-EE-FF", "23", err);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "device")), "aa:bb:cc:dd:ee:ff");
	assert_null(json_object_get(b, "device_ip"));
	json_decref(b);
	assert_null(ctl_forward_body("0", "192.168.1.100", "80", err));
	assert_null(ctl_forward_body("8080", "192.168.1.100", "65536", err));
	assert_null(ctl_forward_body("80x", "192.168.1.100", "80", err));
	assert_null(ctl_forward_body("8080", "192.168.1", "80", err));
	assert_null(ctl_forward_body("8080", "2001:db8::1", "80", err));
	fclose(err);
}

struct dirs {
	char dir[64], conf[96], store[96];
};

static void dirs_make(struct dirs *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/test_ctl.XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->conf, sizeof(d->conf), "%s/egress.conf", d->dir);
	snprintf(d->store, sizeof(d->store), "%s/" DEV_STORE_FILE, d->dir);
}

static void dirs_remove(struct dirs *d)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	char p[128];

	unlink(d->conf);
	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		snprintf(p, sizeof(p), "%s%s", d->store, suffix[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(d->dir), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* --direct finds the store: --state-dir, else -c FILE's [devices] state_dir. */
static void test_direct_state_dir(void **state)
{
	FILE *err = fopen("/dev/null", "w");
	struct dirs d;
	char dir[256], text[256];

	dirs_make(&d);
	assert_int_equal(ctl_devices_state_dir(NULL, "/srv/x", dir, sizeof(dir), err), 0);
	assert_string_equal(dir, "/srv/x");
	snprintf(text, sizeof(text), "[devices]\nwan = eth0\nlan = eth1\nstate_dir = %s\n",
		d.dir);
	write_file(d.conf, text);
	assert_int_equal(ctl_devices_state_dir(d.conf, NULL, dir, sizeof(dir), err), 0);
	assert_string_equal(dir, d.dir);
	/* --state-dir wins over the file */
	assert_int_equal(ctl_devices_state_dir(d.conf, "/srv/y", dir, sizeof(dir), err), 0);
	assert_string_equal(dir, "/srv/y");
	/* a file without [devices]: the default folder */
	write_file(d.conf, "[global]\nlog_level = info\n");
	assert_int_equal(ctl_devices_state_dir(d.conf, NULL, dir, sizeof(dir), err), 0);
	assert_string_equal(dir, "/var/lib/egress");
	/* a broken file is an error, not a guess */
	write_file(d.conf, "[devices]\nwan = eth0\nlan = eth0\n");
	assert_int_equal(ctl_devices_state_dir(d.conf, NULL, dir, sizeof(dir), err), -EINVAL);
	dirs_remove(&d);
	fclose(err);
}

/* devices --direct: the store's devices, saying where and when they were read from. */
static void test_direct_devices(void **state)
{
	struct dirs d;
	struct dev_store *st;
	struct dev_record r = {.mac = {0x44, 0xb7, 0xd0, 0xa6, 0x6d, 0xfc}, .status = DEV_ACTIVE};
	struct dev_record gone = {.mac = {2, 0, 0, 0, 0, 2}, .status = DEV_INACTIVE};
	struct ctl c = {.timeout_s = 10};
	char *text = NULL;
	size_t len = 0;
	struct stat sb;

	dirs_make(&d);
	c.direct = true;
	c.state_dir = d.dir;
	c.err = fopen("/dev/null", "w");
	/* no store: an error, and still no store */
	c.out = open_memstream(&text, &len);
	assert_int_equal(ctl_devices_direct(&c, NULL), CTL_REFUSED);
	fclose(c.out);
	free(text);
	assert_int_equal(stat(d.store, &sb), -1);

	assert_int_equal(dev_store_open(d.store, false, &st), 0);
	addr_parse("192.168.1.100", &r.lan4);
	r.has_lease4 = true;
	addr_parse("10.1.2.50", &r.lease4.addr);
	r.lease4.lease_s = 3600;
	r.lease4.obtained_at = 1700000000;
	addr_parse("2001:db8::1234", &r.wan6.addr);
	r.wan6.plen = 64;
	assert_int_equal(dev_store_put(st, &r), 0);
	assert_int_equal(dev_store_put(st, &gone), 0);

	c.out = open_memstream(&text, &len);
	assert_int_equal(ctl_devices_direct(&c, "active"), CTL_OK);
	fclose(c.out);
	assert_non_null(strstr(text, "read from the store "));
	assert_non_null(strstr(text, "directly, not from egressd; last written "));
	assert_non_null(strstr(text, "MAC "));
	assert_non_null(strstr(text, "44:b7:d0:a6:6d:fc  active  192.168.1.100  10.1.2.50  "
				     "2001:db8::1234"));
	assert_null(strstr(text, "02:00:00:00:00:02"));
	free(text);

	c.json = true;
	c.out = open_memstream(&text, &len);
	assert_int_equal(ctl_devices_direct(&c, NULL), CTL_OK);
	fclose(c.out);
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "source")), "store");
	assert_int_equal(json_integer_value(json_object_get(doc, "count")), 2);
	assert_true(json_is_string(json_object_get(doc, "written_at")));
	json_decref(doc);
	free(text);

	c.out = open_memstream(&text, &len);
	assert_int_equal(ctl_devices_status_direct(&c), CTL_OK);
	fclose(c.out);
	doc = json_loads(text, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(doc, "active_devices")), 1);
	assert_int_equal(json_integer_value(json_object_get(doc, "total_devices")), 2);
	json_decref(doc);
	free(text);

	dev_store_close(st);
	fclose(c.err);
	dirs_remove(&d);
}

/* The command line's checks: --direct's options without it, options of other commands. */
static void test_devices_usage(void **state)
{
	char *a1[] = {"egressctl", "--state-dir", "/tmp", "devices", NULL};
	char *a2[] = {"egressctl", "--fix-all", "devices", NULL};
	char *a3[] = {"egressctl", "--direct", "diagnose", NULL};
	char *a4[] = {"egressctl", "port-forward", "add", "8080", "192.168.1.100", NULL};
	char *a5[] = {"egressctl", "port-forward", "add", "8080", "192.168.1.100", "0", NULL};
	char *a6[] = {"egressctl", "devices", "everything", NULL};
	char *a7[] = {"egressctl", "port-forward", "quick-device", "aa:bb:cc:dd:ee:ff", NULL};
	FILE *saved = stderr;

	stderr = fopen("/dev/null", "w");
	assert_int_equal(ctl_main(4, a1), CTL_USAGE);
	assert_int_equal(ctl_main(3, a2), CTL_USAGE);
	assert_int_equal(ctl_main(3, a3), CTL_USAGE);
	assert_int_equal(ctl_main(5, a4), CTL_USAGE);
	assert_int_equal(ctl_main(6, a5), CTL_USAGE);
	assert_int_equal(ctl_main(3, a6), CTL_USAGE);
	assert_int_equal(ctl_main(4, a7), CTL_USAGE);
	fclose(stderr);
	stderr = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_aligns),
		cmocka_unit_test(test_table_last_column_and_utf8),
		cmocka_unit_test(test_cells),
		cmocka_unit_test(test_cell_time_is_local),
		cmocka_unit_test(test_json_get),
		cmocka_unit_test(test_rows_shapes),
		cmocka_unit_test(test_rows_address_and_port),
		cmocka_unit_test(test_rows_refuses_other_shapes),
		cmocka_unit_test(test_print_object),
		cmocka_unit_test(test_confirm_values),
		cmocka_unit_test(test_forward_body),
		cmocka_unit_test(test_direct_state_dir),
		cmocka_unit_test(test_direct_devices),
		cmocka_unit_test(test_devices_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
