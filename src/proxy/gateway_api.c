/*
 * gateway_api.c - gateway mode as go-dispatch-proxy's gateway-mode fork shows it on its
 * JSON API (GET /api/gateway, GET /api/gateway/iptables/backup), in the fork's field names,
 * plus ours where the fork has nothing to say (intercept, table, backup_file).
 *
 * The fork's "iptables_rules" are the rules it ran; ours are the lines of table inet
 * egress_gateway as it is (or would be) installed.  It has a DHCP range; egressd serves no
 * DHCP, so those fields are empty strings.
 *
 * Must not change anything: what changes gateway mode goes through the daemon's change of
 * the configuration (module_env.change), never straight to the kernel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "conf.h"
#include "conf_keys.h"
#include "gateway_conf.h"
#include "gateway_int.h"
#include "module.h"
#include "nft.h"
#include "util.h"

/* "192.168.100.0/24, fd00::/64": the fork has one subnet, as a string. */
static json_t *subnets_str(const struct cidr_list *l)
{
	char buf[1024] = "", c[ADDR_STRLEN + 8];
	size_t off = 0;

	for (size_t i = 0; i < l->n && off < sizeof(buf); i++) {
		cidr_str(&l->v[i], c, sizeof(c));
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? ", " : "", c);
	}
	return json_string(buf);
}

/* The table's lines, without the blank ones. */
static json_t *rules_json(const struct conf_gateway *g)
{
	json_t *a = json_array();
	struct nft_buf b;
	char *save = NULL;

	nft_buf_init(&b);
	gateway_body(g, &b);
	for (char *line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		while (*line == '\t' || *line == ' ')
			line++;
		if (*line)
			json_array_append_new(a, json_string(line));
	}
	nft_buf_clear(&b);
	return a;
}

/* "disabled", "active" (our table is in), "starting" (its backup waits for the xtables
 * lock), "manual" (auto_config off: the operator installs it), "error" (it is not in). */
static const char *gateway_state(const struct gateway_module *m, const struct conf_gateway *g)
{
	if (!g || !g->enabled)
		return "disabled";
	if (m->applied)
		return "active";
	if (m->lock_deadline)
		return "starting";
	return g->auto_config ? "error" : "manual";
}

json_t *gateway_info_json(const struct gateway_module *m)
{
	const struct conf_gateway *g = m ? conf_gateway_section(m->conf) : NULL;
	char a[ADDR_STRLEN];
	json_t *o;

	if (!g)
		return json_pack("{s:b, s:s, s:b}", "enabled", false, "status", "disabled",
			"configured", false);
	o = json_pack("{s:b, s:s, s:o, s:i, s:i, s:s, s:b, s:s, s:s, s:o, s:s}", "enabled",
		g->enabled, "gateway_ip", addr_str(&g->address, a, sizeof(a)), "subnet_cidr",
		subnets_str(&g->subnet), "transparent_port", g->transparent_port, "dns_port",
		g->dns_port, "nat_interface", g->nat_interface ? g->nat_interface : "auto",
		"auto_configure", g->auto_config, "dhcp_range_start", "", "dhcp_range_end", "",
		"iptables_rules", g->enabled ? rules_json(g) : json_array(), "status",
		gateway_state(m, g));
	json_object_set_new(o, "configured", json_true());
	json_object_set_new(o, "intercept", json_string(gateway_intercept_name[g->intercept]));
	json_object_set_new(o, "table", json_string("inet " GATEWAY_TABLE));
	json_object_set_new(o, "table_installed", json_boolean(m->applied));
	json_object_set_new(o, "backup_file", json_string(g->backup_file));
	return o;
}

json_t *gateway_backup_json(const struct gateway_module *m)
{
	const struct conf_gateway *g = conf_gateway_section(m->conf);
	struct gateway_backup_info info;
	struct stat st;
	char stamp[32] = "";
	struct tm tm;
	int r;
	json_t *o;

	r = gateway_backup_info(g->backup_file, &info);
	if (r == 0 && info.exists && localtime_r(&info.timestamp, &tm))
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	o = json_pack("{s:b, s:s, s:s, s:I, s:b, s:b, s:b}", "backup_exists", r == 0 && info.exists,
		"backup_file", g->backup_file, "backup_timestamp", stamp, "backup_size",
		(json_int_t)(r == 0 ? info.size : 0), "backup_file_exists",
		stat(g->backup_file, &st) == 0, "is_configured", m->applied, "auto_configure",
		g->auto_config);
	if (r == -EBADMSG)
		json_object_set_new(o, "backup_error",
			json_string("the file is not a ruleset backup of egressd"));
	else if (r < 0)
		json_object_set_new(o, "backup_error", json_string(strerror(-r)));
	return o;
}

/* ------------------------------------------------------------ routes */

/* The fork's fields of POST /api/gateway/config and the [gateway] keys they set. */
static const struct {
	const char *field, *key;
	json_type type;
} config_fields[] = {
	{"enabled", "enabled", JSON_TRUE},
	{"gateway_ip", "address", JSON_STRING},
	{"subnet_cidr", "subnet", JSON_STRING},
	{"transparent_port", "transparent_port", JSON_INTEGER},
	{"dns_port", "dns_port", JSON_INTEGER},
	{"nat_interface", "nat_interface", JSON_STRING},
	{"auto_configure", "auto_config", JSON_TRUE},
};

static const char *field_of_key(const char *key)
{
	for (size_t i = 0; key && i < ARRAY_SIZE(config_fields); i++)
		if (streq(config_fields[i].key, key))
			return config_fields[i].field;
	return NULL;
}

/*
 * Change [gateway] as an operator (module_env.change): 0 done, or -errno after the error
 * reply (400 naming the JSON field of the key at fault, 409 while another change awaits
 * its confirmation).  m stays valid: the change reconfigures it, a switched-off gateway
 * module keeps running.
 */
static int gateway_change(struct api_req *r, struct gateway_module *m,
	const struct conf_setting *v, size_t n, uint32_t confirm_ms)
{
	struct conf_errors errs = {0};
	int e;

	if (!m->env || !m->env->change) {
		api_reply_error(r, 503, NULL, "this egressd takes no changes of its configuration");
		return -ENOTSUP;
	}
	e = m->env->change(m->env->change_arg, v, n, confirm_ms, api_req_who(r), &errs);
	if (e == -EINVAL && errs.n) {
		const struct conf_error_at *at = errs.at ? &errs.at[0] : NULL;
		const char *field = at ? field_of_key(at->key) : NULL;

		if (at && at->expected && at->seen)
			api_reply_error(r, 400, field, "expected %s, got \"%s\"", at->expected,
				at->seen);
		else
			api_reply_error(r, 400, field, "%s", errs.msgs[0]);
	} else if (e == -EBUSY) {
		api_reply_error(r, 409, NULL,
			"another change awaits its confirmation (GET /api/config/pending)");
	} else if (e < 0) {
		api_reply_error(r, 500, NULL, "the change could not be applied (rolled back): %s",
			strerror(-e));
	}
	conf_errors_clear(&errs);
	return e;
}

/* The fork's answer to a change: success, the state now, and how long it may be undone. */
static json_t *changed_json(const struct gateway_module *m, bool changed, uint32_t confirm_ms)
{
	const struct conf_gateway *g = conf_gateway_section(m->conf);
	json_t *o = json_pack("{s:b, s:b, s:s, s:b}", "success", true, "enabled", g->enabled,
		"status", gateway_state(m, g), "changed", changed);

	if (changed && confirm_ms)
		json_object_set_new(o, "seconds_left", json_integer((confirm_ms + 999) / 1000));
	return o;
}

/* GET /api/gateway (also while gateway mode is not configured: arg NULL) */
static void gateway_route_cb(struct api_req *r, void *arg)
{
	api_reply_json(r, 200, gateway_info_json(arg));
}

/* POST /api/gateway/toggle {"enabled": bool} [?confirm=60s] */
static void toggle_route_cb(struct api_req *r, void *arg)
{
	static const char *const allowed[] = {"enabled", NULL};
	struct gateway_module *m = arg;
	struct conf_setting set = {.section = "gateway", .key = "enabled"};
	uint32_t confirm_ms;
	json_t *body, *enabled;
	bool want;

	if (!m) {
		api_reply_error(r, 409, NULL,
			"gateway mode is not configured: egressd needs a [gateway] section and the "
			"proxy ([proxy]) to switch it (egressd dispatch -gateway)");
		return;
	}
	if (!api_req_confirm(r, &confirm_ms) || !(body = api_req_json(r)) ||
		!api_json_only(r, body, allowed))
		return;
	enabled = json_object_get(body, "enabled");
	if (!json_is_boolean(enabled)) {
		api_reply_error(r, 400, "enabled", "expected true or false");
		return;
	}
	want = json_is_true(enabled);
	if (want == conf_gateway_section(m->conf)->enabled) {
		api_reply_json(r, 200, changed_json(m, false, 0));
		return;
	}
	set.value = want ? "true" : "false";
	if (gateway_change(r, m, &set, 1, confirm_ms) == 0)
		api_reply_json(r, 200, changed_json(m, true, confirm_ms));
}

/* GET /api/gateway/config: the fork's fields of POST, as they are now */
static void config_get_route_cb(struct api_req *r, void *arg)
{
	const struct conf_gateway *g = conf_gateway_section(((struct gateway_module *)arg)->conf);
	char a[ADDR_STRLEN];

	api_reply_json(r, 200,
		json_pack("{s:b, s:s, s:o, s:i, s:i, s:s, s:b}", "enabled", g->enabled, "gateway_ip",
			addr_str(&g->address, a, sizeof(a)), "subnet_cidr", subnets_str(&g->subnet),
			"transparent_port", g->transparent_port, "dns_port", g->dns_port,
			"nat_interface", g->nat_interface ? g->nat_interface : "auto",
			"auto_configure", g->auto_config));
}

/*
 * A field's value as [gateway] takes it, into buf: false after a 400 naming the field.
 * subnet_cidr may also be a list of strings; the fork's DHCP range may only be empty.
 */
static bool config_value(struct api_req *r, size_t i, json_t *v, char *buf, size_t len)
{
	const char *field = config_fields[i].field;

	switch (config_fields[i].type) {
	case JSON_TRUE:
		if (!json_is_boolean(v))
			break;
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
		return true;
	case JSON_INTEGER:
		if (!json_is_integer(v))
			break;
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return true;
	default:
		if (json_is_string(v) && json_string_length(v) < len) {
			snprintf(buf, len, "%s", json_string_value(v));
			return true;
		}
		if (json_is_array(v) && streq(field, "subnet_cidr") && json_array_size(v)) {
			size_t off = 0, k;
			json_t *e;

			buf[0] = '\0';
			json_array_foreach(v, k, e) {
				if (!json_is_string(e) || off >= len)
					goto bad;
				off += (size_t)snprintf(buf + off, len - off, "%s%s", k ? ", " : "",
					json_string_value(e));
			}
			if (off < len)
				return true;
		}
	}
bad:
	api_reply_error(r, 400, field, "expected %s",
		config_fields[i].type == JSON_TRUE      ? "true or false"
		: config_fields[i].type == JSON_INTEGER ? "an integer"
		: streq(field, "subnet_cidr")		? "a prefix such as 192.168.100.0/24, or a list of them"
		: streq(field, "gateway_ip")		? "an IPv4 address such as 192.168.100.1"
							: "a string");
	return false;
}

/* POST /api/gateway/config {gateway_ip, subnet_cidr, transparent_port, dns_port, ...}
 * [?confirm=60s]: the fields given change, the others stay. */
static void config_post_route_cb(struct api_req *r, void *arg)
{
	static const char *const allowed[] = {"enabled", "gateway_ip", "subnet_cidr",
		"transparent_port", "dns_port", "nat_interface", "auto_configure",
		"dhcp_range_start", "dhcp_range_end", NULL};
	struct gateway_module *m = arg;
	struct conf_setting set[ARRAY_SIZE(config_fields)];
	char values[ARRAY_SIZE(config_fields)][512];
	uint32_t confirm_ms;
	size_t n = 0;
	json_t *body;

	if (!api_req_confirm(r, &confirm_ms) || !(body = api_req_json(r)) ||
		!api_json_only(r, body, allowed))
		return;
	/* egressd serves no DHCP: the fork's range may come, empty */
	for (int k = 0; k < 2; k++) {
		const char *f = k ? "dhcp_range_end" : "dhcp_range_start";
		json_t *v = json_object_get(body, f);

		if (v && !(json_is_string(v) && !json_string_length(v))) {
			api_reply_error(r, 400, f,
				"egressd serves no DHCP: expected an empty string (run a DHCP server "
				"such as dnsmasq for the clients)");
			return;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(config_fields); i++) {
		json_t *v = json_object_get(body, config_fields[i].field);

		if (!v)
			continue;
		if (!config_value(r, i, v, values[n], sizeof(values[n])))
			return;
		set[n] = (struct conf_setting){.section = "gateway", .key = config_fields[i].key,
			.value = values[n]};
		n++;
	}
	if (!n) {
		api_reply_error(r, 400, NULL,
			"expected at least one of gateway_ip, subnet_cidr, transparent_port, "
			"dns_port, nat_interface, auto_configure, enabled");
		return;
	}
	if (gateway_change(r, m, set, n, confirm_ms) < 0)
		return;
	body = changed_json(m, true, confirm_ms);
	json_object_set_new(body, "message", json_string("gateway configuration updated"));
	api_reply_json(r, 200, body);
}

/* GET /api/gateway/iptables/backup */
static void backup_route_cb(struct api_req *r, void *arg)
{
	api_reply_json(r, 200, gateway_backup_json(arg));
}

/*
 * POST /api/gateway/iptables/restore: the ruleset saved before gateway mode's first change
 * comes back.  Gateway mode is switched off first (enabled = no, kept), since its table is
 * not part of what was saved: otherwise a reload would put it back over the restored rules.
 */
static void restore_route_cb(struct api_req *r, void *arg)
{
	static const struct conf_setting off = {.section = "gateway", .key = "enabled",
		.value = "false"};
	struct gateway_module *m = arg;
	const struct conf_gateway *g = conf_gateway_section(m->conf);
	struct gateway_backup_info info;
	char *err = NULL, *path;
	bool was_on = g->enabled;
	int e;

	e = gateway_backup_info(g->backup_file, &info);
	if (e < 0 || !info.exists) {
		api_reply_error(r, 409, NULL, "no ruleset backup to restore at %s%s%s",
			g->backup_file, e < 0 ? ": " : "",
			e == -EBADMSG ? "not a ruleset backup of egressd" : e < 0 ? strerror(-e) : "");
		return;
	}
	if (was_on && gateway_change(r, m, &off, 1, 0) < 0)
		return;
	path = xstrdup(conf_gateway_section(m->conf)->backup_file);
	e = gateway_restore(m->nft, path, &err);
	if (e < 0) {
		api_reply_error(r, 500, NULL, "%s", err ? err : strerror(-e));
	} else {
		json_t *o = json_pack("{s:b, s:s, s:b, s:s}", "success", true, "message",
			"Original iptables rules restored successfully", "enabled", false,
			"backup_file", path);

		if (was_on)
			json_object_set_new(o, "switched_off", json_true());
		api_reply_json(r, 200, o);
	}
	free(err);
	free(path);
}

const struct api_route gateway_api_routes[GATEWAY_N_API_ROUTES] = {
	{EVHTTP_REQ_GET, "/api/gateway", API_READ, gateway_route_cb, true},
	{EVHTTP_REQ_POST, "/api/gateway/toggle", API_ADMIN, toggle_route_cb, true},
	{EVHTTP_REQ_GET, "/api/gateway/config", API_READ, config_get_route_cb, false},
	{EVHTTP_REQ_POST, "/api/gateway/config", API_ADMIN, config_post_route_cb, false},
	{EVHTTP_REQ_GET, "/api/gateway/iptables/backup", API_READ, backup_route_cb, false},
	{EVHTTP_REQ_POST, "/api/gateway/iptables/restore", API_ADMIN, restore_route_cb, false},
};
