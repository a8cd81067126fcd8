/*
 * allowlist.h - the gateway agent, egressd's [allowlist] module: enforces egress-server's
 * allowlist for the client subnets (allowlist.c).
 */
#ifndef EGRESS_ALLOWLIST_H
#define EGRESS_ALLOWLIST_H

#include "module.h"

/* The module's description for the daemon's table (module.h). */
extern const struct module module_allowlist;

#endif
