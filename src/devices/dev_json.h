/*
 * dev_json.h - devices as JSON, the same for GET /devices and `egressctl devices --direct`.
 *
 * Field names are the reference tool's where it had them: mac_address, ipv4_address (LAN),
 * ipv4_wan_address, ipv6_address (WAN), status ("active", ...), hostname; then ours:
 * interface, ipv6_source, lease4 {server, router, expires (unix s), renew_at}, lease6
 * {expires, ...}, first_seen, last_seen (ISO 8601 UTC and unix), forwards [...].
 */
#ifndef EGRESS_DEV_JSON_H
#define EGRESS_DEV_JSON_H

#include <jansson.h>

#include "dev_store.h"

/* A new object for r (live fields the caller adds, e.g. "dhcp4_state", go on top). */
json_t *dev_record_json(const struct dev_record *r);
/* {"gateway_port": outer, "device_port": inner, "device": mac, "automatic": b, ...}. */
json_t *dev_forward_json(const struct dev_forward *f);
/* The device with status filter (NULL: all) from the store: {"devices": [...], "count": n}. */
json_t *dev_store_devices_json(struct dev_store *st, const char *status);
/* /status when only the store is there (--direct): counts by status, WAN summary, ... */
json_t *dev_store_status_json(struct dev_store *st);

#endif
