/*
 * ctl_cmds.h - egressctl's subcommands: a table of them, each a function over the API.
 */
#ifndef EGRESS_CTL_CMDS_H
#define EGRESS_CTL_CMDS_H

#include <stddef.h>

#include "ctl.h"

/* Options only some subcommands take. */
#define CTL_OPT_FOLLOW	(1u << 0)
#define CTL_OPT_CONFIRM (1u << 1)
#define CTL_OPT_LOCAL	(1u << 2)
#define CTL_OPT_DIRECT	(1u << 3) /* --direct, -c, --state-dir */
#define CTL_OPT_FIX	(1u << 4) /* --fix-all */

struct ctl_cmd {
	const char *name;
	const char *sub; /* "check" of "config check", or NULL */
	int min_args, max_args;
	unsigned opts; /* CTL_OPT_* it takes */
	/* args: the operands (min_args..max_args of them) */
	int (*run)(struct ctl *c, char **args);
	const char *synopsis;
	const char *help;
};

extern const struct ctl_cmd ctl_cmds[];
extern const size_t ctl_cmds_n;

/* --confirm's value: "60", "60s", "5m" (1s..1h) as "60s" in ret.  0 or -EINVAL. */
int ctl_parse_confirm(const char *s, char *ret, size_t size);

#endif
