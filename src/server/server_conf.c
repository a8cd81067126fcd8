/*
 * server_conf.c - egress-server's section [server] and the table of every section type
 * its file may hold: [server], [store], [resolver], [hub], [api].  Each part owns its
 * section's keys in its own *_conf.c; this file only lists their types.
 *
 * [api] is egressd's own section type; egress-server gives it other defaults (its own
 * port, state directory, UNIX socket and page) as presets, which apply only where neither
 * the file nor a flag set the key, so egressd and egress-server can share a host.
 */
#include <stddef.h>
#include <unistd.h>

#include "api_conf.h"
#include "conf_keys.h"
#include "hub_conf.h"
#include "log.h"
#include "resolver_conf.h"
#include "server.h"
#include "server_conf.h"
#include "store_conf.h"
#include "util.h"

static const struct conf_key server_keys[] = {
	{
		.name = "name",
		.type = CONF_STRING,
		KEY(conf_server, name),
		.help = "this replica's name, shown with the gateways connected to it (default: "
			"the host name)",
	},
	{
		.name = "log_level",
		.type = CONF_ENUM,
		KEY(conf_server, log_level),
		.def = "info",
		.names = log_level_name,
		.n_names = _LOG_LEVEL_MAX,
		.help = "log level: debug, info, warn or error",
	},
};

static void server_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs)
{
	const struct conf_server *c = section;

	(void)conf;
	if (c->name && (!c->name[0] || strlen(c->name) >= 64))
		conf_section_error(errs, &c->s, "name",
			"expected a name of 1 to 63 bytes, got \"%s\"", c->name);
}

const struct conf_section_type conf_server_type = {
	.name = "server",
	.size = sizeof(struct conf_server),
	.keys = server_keys,
	.n_keys = ARRAY_SIZE(server_keys),
	.validate = server_validate,
};

/* The first one always exists (conf_new()); -n prints them in this order. */
const struct conf_section_type *const server_conf_types[] = {
	&conf_server_type,
	&conf_store_type,
	&conf_resolver_type,
	&conf_hub_type,
	&conf_api_type,
};
const size_t n_server_conf_types = ARRAY_SIZE(server_conf_types);

/* [api] as egress-server has it unless told otherwise. */
static const struct {
	const char *key, *value;
} api_presets[] = {
	{"listen", "127.0.0.1:8091"},
	{"socket", "/run/egress-server/egress-server.sock"},
	{"state_dir", "/var/lib/egress-server"},
};

const struct conf_server *conf_server(const struct conf *conf)
{
	return (const struct conf_server *)conf_find(conf, "server", NULL);
}

struct conf *server_conf_read(const char *path, const struct conf_overrides *o,
	const struct conf *running, struct conf_errors *errs)
{
	struct conf *conf = conf_new(server_conf_types, n_server_conf_types);
	struct conf_overrides presets = {0};
	size_t before = errs->n;

	for (size_t i = 0; i < n_server_conf_types; i++)
		if (!server_conf_types[i]->named)
			conf_get_unnamed(conf, server_conf_types[i]->name);
	if (path)
		conf_load_file(conf, path, errs);
	if (o && errs->n == before)
		conf_apply_overrides(conf, o, errs);
	for (size_t i = 0; i < ARRAY_SIZE(api_presets); i++)
		conf_overrides_preset(&presets, "api", NULL, api_presets[i].key, api_presets[i].value);
	if (errs->n == before)
		conf_apply_overrides(conf, &presets, errs);
	conf_overrides_clear(&presets);
	if (errs->n == before)
		conf_keep_secrets(conf, running, errs);
	if (errs->n == before)
		conf_validate(conf, errs);
	if (errs->n > before) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}
