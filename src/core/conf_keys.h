/*
 * conf_keys.h - the sections and keys of egress.conf.
 *
 * Each section is a struct that starts with struct conf_section; its keys are
 * described in conf_keys.c.  Modules read these structs; only conf.c and
 * conf_flags.c write them.
 */
#ifndef EGRESS_CONF_KEYS_H
#define EGRESS_CONF_KEYS_H

#include <net/if.h>

#include "conf.h"
#include "log.h"
#include "uplink.h"

struct conf_global {
	struct conf_section s;
	int log_level; /* enum log_level */
};

struct conf_uplink {
	struct conf_section s;
	char interface[IFNAMSIZ];
	struct addr gateway;
	struct addr source;
	int weight;
	struct uplink_check check;
};

extern const struct conf_section_type conf_global_type;
extern const struct conf_section_type conf_uplink_type;

/* Every section type of egress.conf; the first is [global]. */
extern const struct conf_section_type *const egress_conf_types[];
extern const size_t egress_conf_n_types;

/* Typed access. */
struct conf_global *conf_global(struct conf *conf);
size_t conf_n_uplinks(const struct conf *conf);
struct conf_uplink *conf_uplink_at(const struct conf *conf, size_t i);

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

#endif
