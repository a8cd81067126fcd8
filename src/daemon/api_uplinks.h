/*
 * api_uplinks.h - the daemon's routes of the uplinks (GET /api/uplinks, GET and PATCH
 * /api/uplinks/{name}); their handlers take the daemon as arg.
 */
#ifndef EGRESS_API_UPLINKS_H
#define EGRESS_API_UPLINKS_H

#include <stddef.h>

struct api_route;

extern const struct api_route api_uplinks_routes[];
extern const size_t api_uplinks_n_routes;

#endif
