/*
 * modules.h - the modules egressd runs, in the order they start, and the section types
 * of egress.conf they make.
 */
#ifndef EGRESS_MODULES_H
#define EGRESS_MODULES_H

#include <stddef.h>

#include "conf.h"
#include "module.h"

extern const struct module *const modules[];
extern const size_t modules_n;

/* Every section type of egress.conf, from the table: [global], [uplink], then each
 * module's.  Static; *n_ret is their number. */
const struct conf_section_type *const *egress_conf_types(size_t *n_ret);

/* A new empty configuration of egress.conf's section types. */
struct conf *egress_conf_new(void);

/*
 * Read, apply flags and validate: the whole path from a file to a
 * configuration that may be used.  path may be NULL (flags only).  On error
 * returns NULL with the reasons in errs.  Ownership of the result passes to
 * the caller (conf_free).
 */
struct conf *egress_conf_read(const char *path, const struct conf_overrides *o,
	struct conf_errors *errs);

/*
 * The same over every layer, each on top of the one before: the file's text (text, named
 * path in errors), or the file at path when text is NULL; the flags; the operator's settings
 * (made through the API; those naming a section that the layers below lack are left out).
 * Any layer may be NULL.  A secret given as CONF_SECRET_MASK (a configuration printed by
 * -n or GET /api/config, posted or saved back) keeps its value in running, the
 * configuration in force (NULL at start: then the mask is an error).
 */
struct conf *egress_conf_layers(const char *path, const char *text,
	const struct conf_overrides *flags, const struct conf_overrides *settings,
	const struct conf *running, struct conf_errors *errs);

#endif
