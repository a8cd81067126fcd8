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
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "conf_keys.h"
#include "gateway_conf.h"
#include "gateway_int.h"
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
