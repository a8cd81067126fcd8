/*
 * modules.c - the table of egressd's modules: the one place that names them all.
 *
 * The daemon starts and reconfigures them in this order and stops them in the reverse
 * one.  The order matters: gateway mode diverts a subnet's TCP to the proxy and its DNS to
 * the forwarder, so it comes after both and starts only while the proxy runs
 * (module_gateway.needs); it goes first on the way out.  A new module adds its line here.
 *
 * The section types of egress.conf come from the same table: [global] and [uplink], then
 * each module's in the table's order, which is the order `egressd -n` prints them in, then
 * the daemon's own [api], which always exists.
 */
#include <errno.h>

#include "allowlist.h"
#include "api_conf.h"
#include "conf_keys.h"
#include "ddns.h"
#include "devices.h"
#include "dns.h"
#include "gateway.h"
#include "log.h"
#include "modules.h"
#include "policy.h"
#include "proxy.h"
#include "route.h"
#include "util.h"

const struct module *const modules[] = {
	&module_route,
	&module_policy,
	&module_proxy,
	&module_dns,
	&module_gateway,
	&module_allowlist,
	&module_devices,
	&module_ddns,
};
const size_t modules_n = ARRAY_SIZE(modules);

/* Enough for every module's sections; more is a broken invariant. */
#define EGRESS_CONF_TYPES_MAX 32

const struct conf_section_type *const *egress_conf_types(size_t *n_ret)
{
	static const struct conf_section_type *types[EGRESS_CONF_TYPES_MAX];
	static size_t n;

	if (!n) {
		types[n++] = &conf_global_type;
		types[n++] = &conf_uplink_type;
		for (size_t i = 0; i < modules_n; i++)
			for (size_t j = 0; j < modules[i]->n_conf_types; j++) {
				if (n == EGRESS_CONF_TYPES_MAX)
					fatalx("more than %d section types", EGRESS_CONF_TYPES_MAX);
				types[n++] = modules[i]->conf_types[j];
			}
		if (n == EGRESS_CONF_TYPES_MAX)
			fatalx("more than %d section types", EGRESS_CONF_TYPES_MAX);
		types[n++] = &conf_api_type;
	}
	*n_ret = n;
	return types;
}

struct conf *egress_conf_new(void)
{
	size_t n;
	const struct conf_section_type *const *types = egress_conf_types(&n);
	struct conf *conf = conf_new(types, n);

	conf_get_unnamed(conf, conf_api_type.name); /* the API is on unless told otherwise */
	return conf;
}

/* Settings for a named section that the file and the flags do not have are left out: a
 * setting would make the section, and the file that dropped it wins. */
static void egress_conf_apply_settings(struct conf *conf, const struct conf_overrides *settings,
	struct conf_errors *errs)
{
	struct conf_overrides o = {.where = settings->where};

	o.v = xcalloc(settings->n, sizeof(*o.v));
	for (size_t i = 0; i < settings->n; i++) {
		const struct conf_override *ov = &settings->v[i];
		if (ov->name && !conf_find(conf, ov->section, ov->name)) {
			log_warnx("operator setting %s: there is no [%s %s]: left out", ov->origin,
				ov->section, ov->name);
			continue;
		}
		o.v[o.n++] = *ov; /* borrowed */
	}
	conf_apply_overrides(conf, &o, errs);
	free(o.v);
}

struct conf *egress_conf_layers(const char *path, const char *text,
	const struct conf_overrides *flags, const struct conf_overrides *settings,
	const struct conf *running, struct conf_errors *errs)
{
	struct conf *conf = egress_conf_new();
	size_t before = errs->n;

	if (text)
		conf_load_string(conf, path ? path : "configuration", text, errs);
	else if (path)
		conf_load_file(conf, path, errs);
	if (flags)
		conf_apply_overrides(conf, flags, errs);
	if (settings && errs->n == before)
		egress_conf_apply_settings(conf, settings, errs);
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

struct conf *egress_conf_read(const char *path, const struct conf_overrides *o,
	struct conf_errors *errs)
{
	return egress_conf_layers(path, NULL, o, NULL, NULL, errs);
}
