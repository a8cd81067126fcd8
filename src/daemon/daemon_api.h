/*
 * daemon_api.h - the daemon's own routes of the REST API (daemon_api.c): configuration,
 * events, modules.  Their handlers take the daemon (struct daemon) as arg.
 */
#ifndef EGRESS_DAEMON_API_H
#define EGRESS_DAEMON_API_H

#include <stddef.h>

#include "api.h"

extern const struct api_route daemon_api_routes[];
extern const size_t daemon_api_n_routes;

#endif
