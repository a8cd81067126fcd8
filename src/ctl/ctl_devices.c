/*
 * ctl_devices.c - egressctl's device gateway commands: devices [active], the devices part of
 * status, port-forward add|list|remove|quick-device, diagnose [--fix-all]; and --direct, which
 * reads the devices' store read-only instead of asking egressd (console use while the API is
 * down, or egressd is stopped).
 *
 * What it must not do: write the store (it is opened read-only, never created), or present
 * what it read from the store as live: --direct says where it read and when that was written.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_keys.h"
#include "ctl.h"
#include "ctl_cmds.h"
#include "ctl_devices.h"
#include "ctl_table.h"
#include "dev_conf.h"
#include "dev_json.h"
#include "dev_store.h"
#include "log.h"
#include "modules.h"
#include "util.h"

#define DEFAULT_CONF EGRESS_SYSCONFDIR "/egress/egress.conf"
#define DEFAULT_STATE_DIR "/var/lib/egress"

static void print_json(struct ctl *c, json_t *doc)
{
	json_dumpf(doc, c->out, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', c->out);
}

/* --- the store, for --direct --- */

/*
 * [devices] state_dir of the configuration file at path, into ret.  The section types are
 * egressd's, with [devices] added should this build's module table not list it.  0, -ENOENT
 * (no [devices] in the file: the caller uses the default), or -EINVAL after printing why.
 */
static int state_dir_of_conf(const char *path, char *ret, size_t len, FILE *err)
{
	const struct conf_section_type *types[64];
	size_t n, k = 0;
	const struct conf_section_type *const *all = egress_conf_types(&n);
	struct conf_errors errs = {0};
	struct conf_devices *d;
	struct conf *conf;
	bool have = false;
	int r = 0;

	for (size_t i = 0; i < n && k < ARRAY_SIZE(types) - 1; i++) {
		types[k++] = all[i];
		have = have || all[i] == &conf_devices_type;
	}
	if (!have)
		types[k++] = &conf_devices_type;
	conf = conf_new(types, k);
	if (conf_load_file(conf, path, &errs) < 0 || conf_validate(conf, &errs) < 0) {
		conf_errors_print(&errs, err);
		fprintf(err, "egressctl: %s: cannot read the configuration (%zu error%s); "
			     "--state-dir DIR names the store's folder instead\n",
			path, errs.n, errs.n == 1 ? "" : "s");
		r = -EINVAL;
		goto out;
	}
	d = conf_devices(conf);
	if (!d) {
		r = -ENOENT;
		goto out;
	}
	snprintf(ret, len, "%s", d->state_dir);
out:
	conf_errors_clear(&errs);
	conf_free(conf);
	return r;
}

int ctl_devices_state_dir(const char *conf_path, const char *state_dir, char *ret, size_t len,
	FILE *err)
{
	int r;

	if (state_dir) {
		snprintf(ret, len, "%s", state_dir);
		return 0;
	}
	if (conf_path) {
		r = state_dir_of_conf(conf_path, ret, len, err);
		if (r == -ENOENT) {
			fprintf(err, "egressctl: %s has no [devices] section; its store would be in "
				     "%s\n", conf_path, DEFAULT_STATE_DIR);
			snprintf(ret, len, "%s", DEFAULT_STATE_DIR);
			return 0;
		}
		return r;
	}
	/* egressd's default file, when it is there and readable; else the default folder */
	if (access(DEFAULT_CONF, R_OK) == 0) {
		FILE *quiet = fopen("/dev/null", "we");

		r = state_dir_of_conf(DEFAULT_CONF, ret, len, quiet ? quiet : err);
		if (quiet)
			fclose(quiet);
		if (r == 0)
			return 0;
	}
	snprintf(ret, len, "%s", DEFAULT_STATE_DIR);
	return 0;
}

/* The store of --direct, read-only; NULL after printing why (*code says how to exit). */
static struct dev_store *direct_open(struct ctl *c, int *code)
{
	char dir[4096], path[4200];
	struct dev_store *st;
	int r;

	if (ctl_devices_state_dir(c->conf_path, c->state_dir, dir, sizeof(dir), c->err) < 0) {
		*code = CTL_USAGE;
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, DEV_STORE_FILE);
	log_set_level(LOG_LEVEL_ERROR); /* the store's own warnings: we say it here */
	r = dev_store_open(path, true, &st);
	if (r < 0) {
		fprintf(c->err, "egressctl: cannot read the devices' store %s: %s%s\n", path,
			r == -ENOENT ? "no such file" : strerror(-r),
			r == -ENOENT ? " (has the devices module run here? --state-dir DIR or -c "
				       "FILE names another)"
				     : "");
		*code = r == -EACCES ? CTL_AUTH : CTL_REFUSED;
		return NULL;
	}
	return st;
}

/* What --direct adds to every document: where it read, and when that was written. */
static void direct_source(struct ctl *c, struct dev_store *st, json_t *doc)
{
	json_t *status = dev_store_status_json(st);
	json_t *written = json_object_get(status, "written_at");
	char buf[64];

	json_object_set_new(doc, "source", json_string("store"));
	json_object_set_new(doc, "store", json_string(dev_store_path(st)));
	json_object_set(doc, "written_at", written ? written : json_null());
	if (!c->json)
		fprintf(c->out, "read from the store %s directly, not from egressd; last written %s\n\n",
			dev_store_path(st), ctl_cell(written, CELL_TIME, buf, sizeof(buf)));
	json_decref(status);
}

/* --- devices --- */

static const struct ctl_column device_cols[] = {
	{"MAC", "mac_address", CELL_TEXT},
	{"STATUS", "status", CELL_TEXT},
	{"LAN IPV4", "ipv4_address", CELL_TEXT},
	{"WAN IPV4", "ipv4_wan_address", CELL_TEXT},
	{"WAN IPV6", "ipv6_address", CELL_TEXT},
	{"HOSTNAME", "hostname", CELL_TEXT},
	{"LEASE UNTIL", "lease4.expires_at|lease6.expires_at", CELL_TIME},
	{"LAST SEEN", "last_seen", CELL_TIME},
};

int ctl_devices_print(struct ctl *c, json_t *doc)
{
	json_t *rows;

	if (c->json) {
		print_json(c, doc);
		return CTL_OK;
	}
	rows = ctl_json_rows(doc, "devices");
	if (!rows) {
		print_json(c, doc);
		return CTL_OK;
	}
	if (json_array_size(rows))
		ctl_print_rows(rows, device_cols, ARRAY_SIZE(device_cols), c->out);
	else
		fprintf(c->out, "no devices\n");
	json_decref(rows);
	return CTL_OK;
}

int ctl_devices_direct(struct ctl *c, const char *status)
{
	int code = CTL_OK;
	struct dev_store *st = direct_open(c, &code);
	json_t *doc;

	if (!st)
		return code;
	doc = dev_store_devices_json(st, status);
	if (!doc) {
		fprintf(c->err, "egressctl: cannot read the devices from %s\n", dev_store_path(st));
		dev_store_close(st);
		return CTL_REFUSED;
	}
	direct_source(c, st, doc);
	ctl_devices_print(c, doc);
	json_decref(doc);
	dev_store_close(st);
	return CTL_OK;
}

int ctl_cmd_devices(struct ctl *c, char **args)
{
	const char *status = args[0];
	char path[64];
	json_t *doc;
	int r;

	if (status && dev_status_from_name(status) < 0) {
		fprintf(c->err, "egressctl: devices: expected a status (");
		for (int i = 0; i < _DEV_STATUS_MAX; i++)
			fprintf(c->err, "%s%s", i ? ", " : "", dev_status_name[i]);
		fprintf(c->err, "), got \"%s\"\n", status);
		return CTL_USAGE;
	}
	if (c->direct)
		return ctl_devices_direct(c, status);
	snprintf(path, sizeof(path), "/api/devices%s%s", status ? "?status=" : "",
		status ? status : "");
	r = ctl_get_json(c, path, &doc);
	if (r != CTL_OK)
		return r;
	ctl_devices_print(c, doc);
	json_decref(doc);
	return CTL_OK;
}

/* --- status: the devices part --- */

int ctl_devices_status_direct(struct ctl *c)
{
	int code = CTL_OK;
	struct dev_store *st = direct_open(c, &code);
	json_t *doc;

	if (!st)
		return code;
	doc = dev_store_status_json(st);
	if (!doc) {
		fprintf(c->err, "egressctl: cannot read %s\n", dev_store_path(st));
		dev_store_close(st);
		return CTL_REFUSED;
	}
	if (c->json) {
		print_json(c, doc);
	} else {
		char buf[64];

		fprintf(c->out, "read from the store %s directly, not from egressd; last written %s\n\n",
			dev_store_path(st),
			ctl_cell(json_object_get(doc, "written_at"), CELL_TIME, buf, sizeof(buf)));
		json_object_del(doc, "written_at");
		json_object_del(doc, "written_at_unix");
		json_object_del(doc, "source");
		ctl_print_object(doc, c->out);
	}
	json_decref(doc);
	dev_store_close(st);
	return CTL_OK;
}

json_t *ctl_devices_status(struct ctl *c)
{
	struct ctl_reply rep;
	json_t *doc = NULL;

	if (ctl_request(c, "GET", "/api/devices/status", NULL, NULL, 404, &rep) != CTL_OK)
		return NULL;
	if (rep.status == 200 && json_is_object(rep.json))
		doc = json_incref(rep.json);
	ctl_reply_clear(&rep);
	return doc;
}

/* --- port-forward --- */

/* A port 1-65535 from the whole of s; 0 or -EINVAL. */
static int port_arg(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* The device of a command line: a LAN IPv4 address ("device_ip") or a MAC ("device"). */
static int device_arg(const char *s, json_t *body, FILE *err, const char *what)
{
	struct in_addr a;
	uint8_t mac[6];
	char buf[18];

	if (inet_pton(AF_INET, s, &a) == 1) {
		json_object_set_new(body, "device_ip", json_string(s));
		return 0;
	}
	if (dev_mac_parse(s, mac) == 0) {
		json_object_set_new(body, "device", json_string(dev_mac_str(mac, buf)));
		return 0;
	}
	fprintf(err, "egressctl: %s: expected the device's LAN IPv4 address (192.168.1.100) or its "
		     "MAC (aa:bb:cc:dd:ee:ff), got \"%s\"\n", what, s);
	return -EINVAL;
}

json_t *ctl_forward_body(const char *gw_port, const char *device, const char *dev_port, FILE *err)
{
	json_t *body = json_object();
	int g, d;

	if (port_arg(gw_port, &g) < 0) {
		fprintf(err, "egressctl: GW_PORT: expected a port from 1 to 65535, got \"%s\"\n",
			gw_port);
		goto bad;
	}
	if (device_arg(device, body, err, "DEVICE") < 0)
		goto bad;
	if (port_arg(dev_port, &d) < 0) {
		fprintf(err, "egressctl: DEVICE_PORT: expected a port from 1 to 65535, got \"%s\"\n",
			dev_port);
		goto bad;
	}
	json_object_set_new(body, "gateway_port", json_integer(g));
	json_object_set_new(body, "device_port", json_integer(d));
	return body;
bad:
	json_decref(body);
	return NULL;
}

/* POST or DELETE body (stolen) to path; print what egressd answered. */
static int forward_change(struct ctl *c, const char *method, const char *path, json_t *body,
	const char *done)
{
	struct ctl_reply rep;
	char *text = json_dumps(body, JSON_COMPACT);
	int r;

	json_decref(body);
	r = ctl_request(c, method, path, text, NULL, 0, &rep);
	free(text);
	if (r != CTL_OK)
		return r;
	if (c->json && rep.json)
		print_json(c, rep.json);
	else if (!c->json)
		fprintf(c->out, "%s\n", done);
	ctl_reply_clear(&rep);
	return CTL_OK;
}

int ctl_cmd_forward_add(struct ctl *c, char **args)
{
	json_t *body = ctl_forward_body(args[0], args[1], args[2], c->err);
	char done[256];

	if (!body)
		return CTL_USAGE;
	snprintf(done, sizeof(done), "forwarding gateway port %s to %s port %s", args[0], args[1],
		args[2]);
	return forward_change(c, "POST", "/api/devices/port-forwards", body, done);
}

int ctl_cmd_forward_remove(struct ctl *c, char **args)
{
	json_t *body = ctl_forward_body(args[0], args[1], args[2], c->err);
	char done[256];

	if (!body)
		return CTL_USAGE;
	snprintf(done, sizeof(done), "removed the forward of gateway port %s to %s port %s",
		args[0], args[1], args[2]);
	return forward_change(c, "DELETE", "/api/devices/port-forwards", body, done);
}

int ctl_cmd_forward_quick(struct ctl *c, char **args)
{
	struct in_addr a;
	char done[256];

	if (inet_pton(AF_INET, args[0], &a) != 1) {
		fprintf(c->err, "egressctl: DEVICE_IP: expected the device's LAN IPv4 address "
				"(192.168.1.100), got \"%s\"\n", args[0]);
		return CTL_USAGE;
	}
	snprintf(done, sizeof(done),
		"forwarding gateway ports 8080, 2323, 8443, 2222 to %s ports 80, 23, 443, 22",
		args[0]);
	return forward_change(c, "POST", "/api/devices/port-forwards/quick-device",
		json_pack("{ss}", "device_ip", args[0]), done);
}

static const struct ctl_column forward_cols[] = {
	{"DEVICE", "device", CELL_TEXT},
	{"DEVICE IP", "device_ip|ipv4_address", CELL_TEXT},
	{"GATEWAY PORT", "gateway_port", CELL_TEXT},
	{"DEVICE PORT", "device_port", CELL_TEXT},
	{"AUTOMATIC", "automatic", CELL_TEXT},
	{"WAN IPV4", "ipv4_wan_address", CELL_TEXT},
	{"WAN IPV6", "ipv6_address", CELL_TEXT},
};

int ctl_cmd_forward_list(struct ctl *c, char **args)
{
	char *path = NULL;
	json_t *doc, *rows;
	int r;

	if (args[0]) {
		uint8_t mac[6];
		char buf[18];

		if (dev_mac_parse(args[0], mac) < 0) {
			fprintf(c->err, "egressctl: MAC: expected the device's MAC (aa:bb:cc:dd:ee:ff), "
					"got \"%s\"\n", args[0]);
			return CTL_USAGE;
		}
		if (asprintf(&path, "/api/devices/port-forwards?device=%s", dev_mac_str(mac, buf)) < 0)
			abort();
	}
	r = ctl_get_json(c, path ? path : "/api/devices/port-forwards", &doc);
	free(path);
	if (r != CTL_OK)
		return r;
	rows = c->json ? NULL : ctl_json_rows(doc, "forwards");
	if (!rows)
		print_json(c, doc);
	else if (!json_array_size(rows))
		fprintf(c->out, "no port forwards\n");
	else
		ctl_print_rows(rows, forward_cols, ARRAY_SIZE(forward_cols), c->out);
	json_decref(rows);
	json_decref(doc);
	return CTL_OK;
}

/* --- diagnose --- */

static const struct ctl_column check_cols[] = {
	{"CHECK", "check|name", CELL_TEXT},
	{"DEVICE", "device", CELL_TEXT},
	{"OK", "ok", CELL_TEXT},
	{"FIXED", "fixed", CELL_TEXT},
	{"DETAIL", "detail|message", CELL_TEXT},
};

/*
 * POST /api/devices/diagnose: egressd answers with the result when it had it at once, else
 * 202 {"running": true}, and GET /api/devices/diagnose shows it until "running" is false.
 * Polled once a second within the timeout.  *ret: the result (the caller's), or an exit code.
 */
static int diagnose_run(struct ctl *c, json_t **ret)
{
	struct ctl_reply rep;
	json_t *doc;
	long waited = 0;
	int r;

	r = ctl_request(c, "POST",
		c->fix_all ? "/api/devices/diagnose?fix=1" : "/api/devices/diagnose", "{}", NULL, 0,
		&rep);
	if (r != CTL_OK)
		return r;
	doc = json_is_object(rep.json) ? json_incref(rep.json) : NULL;
	ctl_reply_clear(&rep);
	while (doc && json_is_true(json_object_get(doc, "running"))) {
		json_decref(doc);
		doc = NULL;
		if (waited++ >= c->timeout_s) {
			fprintf(c->err, "egressctl: diagnose still runs after %lds: egressctl diagnose "
					"later, or --timeout SECS\n", c->timeout_s);
			return CTL_UNREACHABLE;
		}
		sleep(1);
		r = ctl_get_json(c, "/api/devices/diagnose", &doc);
		if (r != CTL_OK)
			return r;
	}
	if (!json_is_object(doc)) {
		fprintf(c->err, "egressctl: diagnose: egressd's answer is not a JSON object\n");
		json_decref(doc);
		return CTL_REFUSED;
	}
	*ret = doc;
	return CTL_OK;
}

int ctl_cmd_diagnose(struct ctl *c, char **args)
{
	json_t *doc = NULL, *rows, *fixed;
	long saved = c->timeout_s;
	int r;

	/* the checks through each device's identity take a moment */
	if (!c->timeout_set && c->timeout_s < 120)
		c->timeout_s = 120;
	r = diagnose_run(c, &doc);
	c->timeout_s = saved;
	if (r != CTL_OK)
		return r;
	r = json_is_true(json_object_get(doc, "ok")) ? CTL_OK : CTL_REFUSED;
	if (c->json) {
		print_json(c, doc);
		goto out;
	}
	rows = ctl_json_rows(doc, "checks");
	if (rows) {
		ctl_print_rows(rows, check_cols, ARRAY_SIZE(check_cols), c->out);
		json_decref(rows);
	} else {
		print_json(c, doc);
	}
	fixed = json_object_get(doc, "fixed");
	if (c->fix_all)
		fprintf(c->out, "\nfixed %" JSON_INTEGER_FORMAT " problem%s\n",
			json_integer_value(fixed), json_integer_value(fixed) == 1 ? "" : "s");
	fprintf(c->out, "%s%s\n", c->fix_all ? "" : "\n",
		r == CTL_OK ? "all checks passed"
		: c->fix_all ? "some checks still fail: see DETAIL"
			     : "some checks fail: see DETAIL (egressctl diagnose --fix-all repairs "
			       "what it safely can)");
out:
	json_decref(doc);
	return r;
}
