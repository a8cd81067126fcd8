/*
 * ctl_cmds.c - egressctl's subcommands: each calls egressd's API and prints a table, or with
 * --json the API's JSON as one document.
 *
 * What it must not do: guess.  A reply of an unexpected shape is printed as it came (JSON),
 * never half-parsed into a table that looks right.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "conf.h"
#include "ctl.h"
#include "ctl_cmds.h"
#include "ctl_devices.h"
#include "ctl_table.h"
#include "fileio.h"
#include "modules.h"
#include "passwd.h"
#include "util.h"

/* The JSON as egressd sent it, indented for a person or a script. */
static void print_json(struct ctl *c, json_t *doc)
{
	json_dumpf(doc, c->out, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', c->out);
}

/* rows of doc (see ctl_json_rows) as a table; a document of another shape as JSON. */
static void print_rows(struct ctl *c, json_t *doc, const char *key, const struct ctl_column *cols,
	size_t n_cols)
{
	json_t *rows = ctl_json_rows(doc, key);

	if (rows)
		ctl_print_rows(rows, cols, n_cols, c->out);
	else
		print_json(c, doc);
	json_decref(rows);
}

/* "/api/uplinks/" + name escaped + suffix: a new string. */
static char *path_join(const char *prefix, const char *name, const char *suffix)
{
	char *esc = curl_easy_escape(NULL, name, 0);
	char *path;

	if (!esc || asprintf(&path, "%s%s%s", prefix, esc, suffix) < 0)
		path = NULL;
	curl_free(esc);
	if (!path)
		abort();
	return path;
}

/* Longest configuration file egressctl sends (egressd bounds bodies too). */
#define CTL_MAX_FILE (4u << 20)

/* The whole file at path as a string (the caller frees), or NULL after printing why. */
static char *read_text(struct ctl *c, const char *path)
{
	char *text;
	int r = file_read(path, CTL_MAX_FILE, &text, NULL);

	if (r == -EFBIG) {
		fprintf(c->err, "egressctl: %s: larger than %u bytes\n", path, CTL_MAX_FILE);
		return NULL;
	}
	if (r < 0) {
		fprintf(c->err, "egressctl: %s: %s\n", path, strerror(-r));
		return NULL;
	}
	return text;
}

/* --- status --- */

/* A module's status object as "key=value ..." in one cell (the caller frees). */
static char *status_summary(json_t *status)
{
	char *text = NULL, buf[256];
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	const char *key;
	bool first = true;
	json_t *v;

	json_object_foreach(status, key, v) {
		fprintf(m, "%s%s=%s", first ? "" : " ", key, ctl_cell(v, CELL_TEXT, buf, sizeof(buf)));
		first = false;
	}
	fclose(m);
	return text;
}

/* The devices module's counts in one cell (the rest follows the table). */
static char *devices_summary(json_t *status)
{
	char *text;

	if (asprintf(&text, "active_devices=%" JSON_INTEGER_FORMAT " total_devices=%"
			    JSON_INTEGER_FORMAT " (below)",
		    json_integer_value(json_object_get(status, "active_devices")),
		    json_integer_value(json_object_get(status, "total_devices"))) < 0)
		abort();
	return text;
}

/* Does the module named name run, by /api/modules? */
static bool module_running(json_t *mods, const char *name)
{
	json_t *rows = ctl_json_rows(mods, "modules"), *mod;
	bool running = false;
	size_t i;

	json_array_foreach(rows, i, mod)
		if (json_is_string(json_object_get(mod, "name")) &&
			streq(json_string_value(json_object_get(mod, "name")), name))
			running = json_is_true(json_object_get(mod, "running"));
	json_decref(rows);
	return running;
}

static int cmd_status(struct ctl *c, char **args)
{
	json_t *mods = NULL, *pending = NULL, *devices = NULL, *rows, *mod;
	size_t i;
	int r;

	if (c->direct)
		return ctl_devices_status_direct(c);
	r = ctl_get_json(c, "/api/modules", &mods);
	if (r == CTL_OK)
		r = ctl_get_json(c, "/api/config/pending", &pending);
	if (r != CTL_OK)
		goto out;
	if (module_running(mods, "devices"))
		devices = ctl_devices_status(c);
	if (c->json) {
		json_t *doc = json_pack("{sOsO}", "modules", json_object_get(mods, "modules"),
			"pending", pending);

		if (doc && devices)
			json_object_set(doc, "devices", devices);
		print_json(c, doc ? doc : mods);
		json_decref(doc);
		goto out;
	}
	rows = ctl_json_rows(mods, "modules");
	if (!rows) {
		print_json(c, mods);
	} else {
		struct table *t = table_new(3, (const char *const[]){"MODULE", "STATE", "STATUS"});

		json_array_foreach(rows, i, mod) {
			bool running = json_is_true(json_object_get(mod, "running"));
			bool wanted = json_is_true(json_object_get(mod, "wanted"));
			const char *name = json_string_value(json_object_get(mod, "name"));
			/* the devices module's status is printed in full below the table */
			char *sum = devices && name && streq(name, "devices")
					    ? devices_summary(json_object_get(mod, "status"))
					    : status_summary(json_object_get(mod, "status"));
			const char *cells[] = {json_string_value(json_object_get(mod, "name")),
				running ? "running" : wanted ? "stopped" : "off", sum};

			table_add(t, cells);
			free(sum);
		}
		table_print(t, c->out);
		table_free(t);
		json_decref(rows);
	}
	if (devices) {
		fprintf(c->out, "\ndevices:\n");
		ctl_print_object(devices, c->out);
	}
	if (json_is_true(json_object_get(pending, "pending")))
		fprintf(c->out, "\n%s (by %s) awaits its confirmation: %" JSON_INTEGER_FORMAT
				"s left (egressctl confirm)\n",
			json_string_value(json_object_get(pending, "what")) ?: "a change",
			json_string_value(json_object_get(pending, "who")) ?: "?",
			json_integer_value(json_object_get(pending, "seconds_left")));
out:
	json_decref(devices);
	json_decref(pending);
	json_decref(mods);
	return r;
}

/* --- uplinks, connections --- */

static const struct ctl_column uplink_cols[] = {
	{"UPLINK", "name", CELL_TEXT},
	{"STATE", "state", CELL_TEXT},
	{"ENABLED", "enabled", CELL_ENABLED},
	{"WEIGHT", "weight", CELL_TEXT},
	{"TIER", "tier", CELL_TEXT},
	{"RTT", "rtt_ms", CELL_MS},
	{"LOSS", "loss_pct", CELL_PCT},
	{"SHARE", "share", CELL_RATIO},
	{"RX", "rx_bps", CELL_BPS},
	{"TX", "tx_bps", CELL_BPS},
	{"PUBLIC IP", "public_ip", CELL_TEXT},
};

static int cmd_uplinks(struct ctl *c, char **args)
{
	json_t *doc;
	int r = ctl_get_json(c, "/api/uplinks", &doc);

	if (r != CTL_OK)
		return r;
	if (c->json)
		print_json(c, doc);
	else
		print_rows(c, doc, "uplinks", uplink_cols, ARRAY_SIZE(uplink_cols));
	json_decref(doc);
	return CTL_OK;
}

/* GET /api/connections in go-dispatch-proxy's names; "in" is what the client receives */
static const struct ctl_column conn_cols[] = {
	{"PROTO", "protocol", CELL_TEXT},
	{"CLIENT", "source_ip+source_port", CELL_TEXT},
	{"DESTINATION", "destination_ip+destination_port", CELL_TEXT},
	{"HOST", "host", CELL_TEXT},
	{"UPLINK", "uplink|load_balancer", CELL_TEXT},
	{"SENT", "bytes_out", CELL_BYTES},
	{"RECEIVED", "bytes_in", CELL_BYTES},
	{"AGE", "age", CELL_SECS},
};

static int cmd_connections(struct ctl *c, char **args)
{
	json_t *doc, *matched, *shown;
	int r = ctl_get_json(c, "/api/connections", &doc);

	if (r != CTL_OK)
		return r;
	if (c->json) {
		print_json(c, doc);
		goto out;
	}
	print_rows(c, doc, "active_connections", conn_cols, ARRAY_SIZE(conn_cols));
	matched = json_object_get(doc, "matched");
	shown = json_object_get(doc, "active_connections");
	if (json_is_integer(matched) && json_is_array(shown) &&
		(size_t)json_integer_value(matched) > json_array_size(shown))
		fprintf(c->out, "(%zu of %" JSON_INTEGER_FORMAT " shown)\n", json_array_size(shown),
			json_integer_value(matched));
out:
	json_decref(doc);
	return CTL_OK;
}

/* --- events --- */

static const struct ctl_column event_cols[] = {
	{"ID", "id", CELL_TEXT},
	{"TIME", "time", CELL_TIME},
	{"KIND", "kind", CELL_TEXT},
	{"WHO", "who", CELL_TEXT},
	{"MESSAGE", "message", CELL_TEXT},
};

struct follow {
	struct ctl *c;
	unsigned long long last_id;
};

/* One event as a line of `events -f` (or a line of JSON with --json). */
static void print_event_line(struct follow *fl, json_t *ev)
{
	char b[5][256];
	const char *cell[5];
	json_t *id = json_object_get(ev, "id");

	if (json_is_integer(id)) {
		if ((unsigned long long)json_integer_value(id) <= fl->last_id)
			return; /* already printed from the history */
		fl->last_id = (unsigned long long)json_integer_value(id);
	}
	if (fl->c->json) {
		json_dumpf(ev, fl->c->out, JSON_COMPACT);
		fputc('\n', fl->c->out);
	} else {
		for (size_t i = 0; i < 5; i++)
			cell[i] = ctl_cell(ctl_json_get(ev, event_cols[i].key), event_cols[i].fmt,
				b[i], sizeof(b[i]));
		fprintf(fl->c->out, "%6s  %s  %-10s  %-10s  %s\n", cell[0], cell[1], cell[2],
			cell[3], cell[4]);
	}
	fflush(fl->c->out);
}

static int event_cb(unsigned long long id, const char *event, const char *data, void *arg)
{
	struct follow *fl = arg;
	json_t *ev = json_loads(data, 0, NULL);

	if (json_is_object(ev))
		print_event_line(fl, ev);
	json_decref(ev);
	return 0;
}

static int cmd_events(struct ctl *c, char **args)
{
	struct follow fl = {.c = c};
	json_t *doc, *rows, *ev;
	size_t i;
	int r = ctl_get_json(c, "/api/events", &doc);

	if (r != CTL_OK)
		return r;
	if (!c->follow) {
		if (c->json)
			print_json(c, doc);
		else
			print_rows(c, doc, "events", event_cols, ARRAY_SIZE(event_cols));
		json_decref(doc);
		return CTL_OK;
	}
	rows = ctl_json_rows(doc, "events");
	json_array_foreach(rows, i, ev)
		print_event_line(&fl, ev);
	json_decref(rows);
	/* the stream starts after what was printed, or after the newest when none was */
	json_t *last = json_object_get(doc, "last_id");

	if (!fl.last_id && json_is_integer(last))
		fl.last_id = (unsigned long long)json_integer_value(last);
	json_decref(doc);
	return ctl_stream(c, "/api/events/stream", fl.last_id, event_cb, &fl);
}

/* --- drain, undrain --- */

static int set_enabled(struct ctl *c, const char *name, bool enabled)
{
	struct ctl_reply rep;
	char *path = path_join("/api/uplinks/", name, "");
	char *query = NULL;
	int r;

	if (c->confirm && asprintf(&query, "%s?confirm=%s", path, c->confirm) < 0)
		abort();
	r = ctl_request(c, "PATCH", query ? query : path,
		enabled ? "{\"enabled\": true}" : "{\"enabled\": false}", NULL, 0, &rep);
	free(query);
	free(path);
	if (r != CTL_OK)
		return r;
	if (c->json && rep.json)
		print_json(c, rep.json);
	else if (!c->json) {
		fprintf(c->out, "uplink %s %s\n", name, enabled ? "enabled" : "drained");
		if (c->confirm)
			fprintf(c->out, "rolls back in %s unless confirmed: egressctl confirm\n",
				c->confirm);
	}
	ctl_reply_clear(&rep);
	return CTL_OK;
}

static int cmd_drain(struct ctl *c, char **args)
{
	return set_enabled(c, args[0], false);
}

static int cmd_undrain(struct ctl *c, char **args)
{
	return set_enabled(c, args[0], true);
}

/* --- config --- */

/* egress_conf_read() here, without egressd. */
static int config_check_local(struct ctl *c, const char *path)
{
	struct conf_errors errs = {0};
	struct conf *conf = egress_conf_read(path, NULL, &errs);
	int r = conf ? CTL_OK : CTL_REFUSED;

	if (c->json) {
		json_t *list = json_array();

		for (size_t i = 0; i < errs.n; i++)
			json_array_append_new(list, json_string(errs.msgs[i]));
		json_t *doc = json_pack("{sbso}", "valid", conf != NULL, "errors", list);
		print_json(c, doc);
		json_decref(doc);
	} else if (conf) {
		fprintf(c->out, "%s: the configuration is valid\n", path);
	} else {
		conf_errors_print(&errs, c->err);
		fprintf(c->err, "egressctl: %zu error%s in %s\n", errs.n, errs.n == 1 ? "" : "s",
			path);
	}
	conf_free(conf);
	conf_errors_clear(&errs);
	return r;
}

/*
 * One error of egressd's validation, as egressd words it ("NAME:LINE: [section] key:
 * expected ..., got ..."), with egressd's name of the text replaced by the file's path.
 */
static void print_conf_error(struct ctl *c, const char *path, json_t *e)
{
	json_t *line = json_object_get(e, "line");
	const char *msg = json_string_value(json_object_get(e, "error"));
	char mark[32];
	const char *at;

	if (!msg)
		return;
	if (json_is_integer(line)) {
		snprintf(mark, sizeof(mark), ":%" JSON_INTEGER_FORMAT ": ", json_integer_value(line));
		at = strstr(msg, mark);
		if (at) {
			fprintf(c->err, "%s%s\n", path, at);
			return;
		}
	}
	fprintf(c->err, "%s: %s\n", path, msg);
}

/* POST the file's text to /api/config (query: "?dry_run=1", "?confirm=60s" or ""). */
static int config_post(struct ctl *c, const char *path, const char *query, const char *done)
{
	struct ctl_reply rep;
	char *text = read_text(c, path), *url;
	json_t *errors, *diff;
	int r;

	if (!text)
		return CTL_USAGE;
	if (asprintf(&url, "/api/config%s", query) < 0)
		abort();
	r = ctl_request(c, "POST", url, text, "text/plain; charset=utf-8", 400, &rep);
	free(url);
	free(text);
	if (r != CTL_OK)
		return r;
	if (rep.status == 400)
		r = CTL_REFUSED;
	if (c->json) {
		if (rep.json)
			print_json(c, rep.json);
		else
			ctl_print_error(c, &rep);
		goto out;
	}
	if (rep.status == 400) {
		errors = json_object_get(rep.json, "errors");
		if (json_is_array(errors) && json_array_size(errors)) {
			size_t i;
			json_t *e;

			json_array_foreach(errors, i, e)
				print_conf_error(c, path, e);
			fprintf(c->err, "egressctl: %zu error%s in %s\n", json_array_size(errors),
				json_array_size(errors) == 1 ? "" : "s", path);
		} else {
			ctl_print_error(c, &rep);
		}
		goto out;
	}
	diff = json_object_get(rep.json, "diff");
	if (json_is_string(diff) && *json_string_value(diff))
		fprintf(c->out, "%s", json_string_value(diff));
	else if (json_is_false(json_object_get(rep.json, "changes")))
		fprintf(c->out, "no change to the running configuration\n");
	fprintf(c->out, "%s: %s\n", path, done);
out:
	ctl_reply_clear(&rep);
	return r;
}

static int cmd_config_check(struct ctl *c, char **args)
{
	if (c->local)
		return config_check_local(c, args[0]);
	return config_post(c, args[0], "?dry_run=1", "the configuration is valid");
}

static int cmd_config_apply(struct ctl *c, char **args)
{
	char query[64] = "", done[128] = "applied";

	if (c->confirm) {
		snprintf(query, sizeof(query), "?confirm=%s", c->confirm);
		snprintf(done, sizeof(done),
			"applied; rolls back in %s unless confirmed: egressctl confirm", c->confirm);
	}
	return config_post(c, args[0], query, done);
}

static int cmd_config_show(struct ctl *c, char **args)
{
	struct ctl_reply rep;
	int r = ctl_request(c, "GET", c->json ? "/api/config?format=json" : "/api/config", NULL,
		NULL, 0, &rep);

	if (r != CTL_OK)
		return r;
	if (c->json && rep.json)
		print_json(c, rep.json);
	else
		fputs(rep.body, c->out);
	ctl_reply_clear(&rep);
	return CTL_OK;
}

static int cmd_confirm(struct ctl *c, char **args)
{
	struct ctl_reply rep;
	int r = ctl_request(c, "POST", "/api/config/confirm", "{}", NULL, 0, &rep);

	if (r != CTL_OK)
		return r;
	if (c->json && rep.json)
		print_json(c, rep.json);
	else if (!c->json)
		fprintf(c->out, "confirmed\n");
	ctl_reply_clear(&rep);
	return CTL_OK;
}

static int cmd_cancel(struct ctl *c, char **args)
{
	struct ctl_reply rep;
	int r = ctl_request(c, "POST", "/api/config/cancel", "{}", NULL, 0, &rep);

	if (r != CTL_OK)
		return r;
	if (c->json && rep.json)
		print_json(c, rep.json);
	else if (!c->json)
		fprintf(c->out, "rolled back\n");
	ctl_reply_clear(&rep);
	return CTL_OK;
}

/* --- gateway mode's iptables backup --- */

static int cmd_backup(struct ctl *c, char **args)
{
	json_t *doc;
	int r = ctl_get_json(c, "/api/gateway/iptables/backup", &doc);

	if (r != CTL_OK)
		return r;
	if (c->json || !json_is_object(doc))
		print_json(c, doc);
	else
		ctl_print_object(doc, c->out);
	json_decref(doc);
	return CTL_OK;
}

/* Do a and b name the same file?  (Text first: a file that is gone still compares.) */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (streq(a, b))
		return true;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/*
 * egressd restores the backup it made itself ([gateway] backup_file); a FILE given must be
 * that one, so that no one believes another file was put back.
 */
static int cmd_restore(struct ctl *c, char **args)
{
	struct ctl_reply rep;
	int r;

	if (args[0]) {
		json_t *info;
		const char *theirs;

		r = ctl_get_json(c, "/api/gateway/iptables/backup", &info);
		if (r != CTL_OK)
			return r;
		theirs = json_string_value(json_object_get(info, "backup_file"));
		if (!theirs || !same_file(args[0], theirs)) {
			fprintf(c->err, "egressctl: egressd restores its own backup, %s, not %s "
					"(another file: egressd dispatch -restore -backup-file FILE)\n",
				theirs ? theirs : "(none)", args[0]);
			json_decref(info);
			return CTL_REFUSED;
		}
		json_decref(info);
	}
	r = ctl_request(c, "POST", "/api/gateway/iptables/restore", "{}", NULL, 0, &rep);
	if (r != CTL_OK)
		return r;
	if (c->json && rep.json) {
		print_json(c, rep.json);
	} else if (!c->json) {
		const char *file = json_string_value(json_object_get(rep.json, "backup_file"));

		fprintf(c->out, "restored the ruleset saved in %s%s\n", file ? file : "the backup",
			json_is_true(json_object_get(rep.json, "switched_off"))
				? "; gateway mode is off"
				: "");
	}
	ctl_reply_clear(&rep);
	return CTL_OK;
}

/* --- passwd --- */

static int cmd_passwd(struct ctl *c, char **args)
{
	char *pw = ctl_read_password(c->err);
	char *hash = NULL;
	int r;

	if (!pw)
		return CTL_USAGE;
	r = passwd_hash(pw, &hash);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	if (r == -EINVAL) {
		fprintf(c->err, "egressctl: the password must be 1 to %d bytes\n", PASSWD_MAX);
		return CTL_USAGE;
	}
	if (r < 0) {
		fprintf(c->err, "egressctl: cannot hash the password: %s\n", strerror(-r));
		return CTL_REFUSED;
	}
	if (c->json) {
		json_t *doc = json_pack("{ss}", "password_hash", hash);

		print_json(c, doc);
		json_decref(doc);
	} else {
		fprintf(c->out, "%s\n", hash);
	}
	free(hash);
	return CTL_OK;
}

const struct ctl_cmd ctl_cmds[] = {
	{"status", NULL, 0, 0, CTL_OPT_DIRECT, cmd_status, "status [--direct]",
		"modules and what they do; a change waiting for confirmation (--direct: the "
		"devices' store alone)"},
	{"devices", NULL, 0, 1, CTL_OPT_DIRECT, ctl_cmd_devices, "devices [active] [--direct]",
		"LAN devices and their upstream identities (--direct: from the store)"},
	{"port-forward", "add", 3, 3, 0, ctl_cmd_forward_add,
		"port-forward add GW_PORT DEVICE DEVICE_PORT",
		"forward GW_PORT of DEVICE's WAN addresses to its DEVICE_PORT (DEVICE: LAN IP or MAC)"},
	{"port-forward", "list", 0, 1, 0, ctl_cmd_forward_list, "port-forward list [MAC]",
		"the devices' port forwards, automatic and added"},
	{"port-forward", "remove", 3, 3, 0, ctl_cmd_forward_remove,
		"port-forward remove GW_PORT DEVICE DEVICE_PORT", "remove a forward added by hand"},
	{"port-forward", "quick-device", 1, 1, 0, ctl_cmd_forward_quick,
		"port-forward quick-device DEVICE_IP",
		"forward 8080->80, 2323->23, 8443->443, 2222->22 to DEVICE_IP"},
	{"diagnose", NULL, 0, 0, CTL_OPT_FIX, ctl_cmd_diagnose, "diagnose [--fix-all]",
		"check the device gateway: macvlans, leases, rules, reachability; --fix-all repairs"},
	{"uplinks", NULL, 0, 0, 0, cmd_uplinks, "uplinks",
		"uplinks: state, weight, RTT, loss, share"},
	{"connections", NULL, 0, 0, 0, cmd_connections, "connections",
		"the proxy's live connections"},
	{"events", NULL, 0, 0, CTL_OPT_FOLLOW, cmd_events, "events [-f]",
		"the event log; -f follows it"},
	{"drain", NULL, 1, 1, CTL_OPT_CONFIRM, cmd_drain, "drain UPLINK [--confirm DUR]",
		"no new connection or flow through UPLINK"},
	{"undrain", NULL, 1, 1, CTL_OPT_CONFIRM, cmd_undrain, "undrain UPLINK [--confirm DUR]",
		"UPLINK takes new connections and flows again"},
	{"config", "check", 1, 1, CTL_OPT_LOCAL, cmd_config_check, "config check [--local] FILE",
		"validate FILE (by egressd, or here with --local)"},
	{"config", "apply", 1, 1, CTL_OPT_CONFIRM, cmd_config_apply,
		"config apply FILE [--confirm DUR]", "make FILE egressd's configuration"},
	{"config", "show", 0, 0, 0, cmd_config_show, "config show",
		"the running configuration, normalised"},
	{"confirm", NULL, 0, 0, 0, cmd_confirm, "confirm", "keep the change that waits"},
	{"cancel", NULL, 0, 0, 0, cmd_cancel, "cancel", "roll back the change that waits, now"},
	{"backup", NULL, 0, 0, 0, cmd_backup, "backup",
		"gateway mode's backup of the ruleset: file, time, size"},
	{"restore", NULL, 0, 1, 0, cmd_restore, "restore [FILE]",
		"put back the ruleset gateway mode saved (in FILE)"},
	{"passwd", NULL, 0, 0, 0, cmd_passwd, "passwd",
		"a password's hash for [api] password_hash (no egressd needed)"},
};

const size_t ctl_cmds_n = ARRAY_SIZE(ctl_cmds);
