/*
 * server_api.h - the allowlist's routes of egress-server's API (server_api.c); their
 * handlers take the struct server as arg.
 */
#ifndef EGRESS_SERVER_API_H
#define EGRESS_SERVER_API_H

#include <stddef.h>

#include "api.h"

extern const struct api_route server_api_routes[];
extern const size_t server_api_n_routes;

#endif
