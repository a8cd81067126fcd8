/*
 * hub_conf.h - the hub's section of egress-server's config: [hub].
 *
 * hub_conf.c describes its keys; the hub (hub.c) reads the struct, only the config
 * machinery writes it.  [hub] always exists (with its defaults) in egress-server's config.
 */
#ifndef EGRESS_HUB_CONF_H
#define EGRESS_HUB_CONF_H

#include <stdint.h>

#include "conf.h"

#define HUB_PATH_MAX 128

/* [hub]: where gateways connect and how the hub bounds them. */
struct conf_hub {
	struct conf_section s;
	char *path;	     /* the WebSocket endpoint on the API's listeners: "/ws" */
	int max_message;     /* bytes of one message from a gateway */
	int max_pending;     /* bytes queued for one gateway; a gateway that lets more pile up
			      * is dropped */
	uint32_t ping_ms;    /* a ping after this long without anything from a gateway */
	uint32_t timeout_ms; /* nothing (pong included) for this long, or no hello: dropped */
	int max_gateways;    /* connections at once */
};

extern const struct conf_section_type conf_hub_type;

/* The [hub] section, or NULL when conf has none (then the defaults apply). */
const struct conf_hub *conf_hub(const struct conf *conf);

#endif
