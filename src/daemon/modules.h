/*
 * modules.h - the modules egressd runs, in the order they start.
 */
#ifndef EGRESS_MODULES_H
#define EGRESS_MODULES_H

#include <stddef.h>

#include "module.h"

extern const struct module *const modules[];
extern const size_t modules_n;

#endif
