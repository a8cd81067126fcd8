/*
 * devices_int.h - what the devices module (devices.c) offers its API routes (devices_api.c).
 *
 * All on the loop, none blocks beyond a store write.  Errors: 0, or -errno with err
 * (caller's, errlen bytes) saying what was wrong and, where a field is to blame, *field
 * naming it (static text) for the API's {"error", "field"}.
 */
#ifndef EGRESS_DEVICES_INT_H
#define EGRESS_DEVICES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"
#include "dev_store.h"

struct devices;


/* {"devices": [dev_record_json + live fields: dhcp4_state, dhcp6_state, forwards], "count"}. */
json_t *devices_list_json(struct devices *d, const char *status); /* status NULL: all */
json_t *devices_one_json(struct devices *d, const uint8_t mac[6]); /* NULL: unknown */
/* /status: the module's status (what GET /api/modules shows for it, too). */
json_t *devices_status_json(struct devices *d);
/* Forwards, automatic and added, of every device or one (mac NULL: all). */
json_t *devices_forwards_json(struct devices *d, const uint8_t *mac);
/* Add or remove a forward by hand: by mac, or by the device's LAN address (the reference's
 * `gateway-port-forward add 8080 192.168.1.100 80`).  -ENOENT no such device, -EEXIST,
 * -EADDRINUSE (outer port taken on that device), -EINVAL. */
int devices_forward_add(struct devices *d, const uint8_t *mac, const struct addr *lan4,
	uint16_t outer, uint16_t inner, char *err, size_t errlen, const char **field);
int devices_forward_remove(struct devices *d, const uint8_t *mac, const struct addr *lan4,
	uint16_t outer, uint16_t inner, char *err, size_t errlen, const char **field);
/* quick-device IP: the reference's set (8080:80, 2323:23, 8443:443, 2222:22) for lan4. */
int devices_forward_quick(struct devices *d, const struct addr *lan4, char *err, size_t errlen,
	const char **field);
/*
 * {"ok": b, "checks": [...], "fixed": n}: dev_net_diagnose() plus the module's own checks
 * (leases valid, upstream reachable through each device identity, which takes a moment):
 * done(res, arg) runs on the loop once all are in (res is the callee's: done steals it).
 * 0, or -EBUSY while another diagnose runs.
 */
typedef void (*devices_diag_cb)(json_t *res, void *arg);
int devices_diagnose(struct devices *d, bool fix, devices_diag_cb done, void *arg);

/* devices_api.c.  The count is a constant here because module_devices (a const struct in
 * devices.c) holds it; the array's declared size makes a table of another length fail to
 * compile. */
#define DEVICES_API_N_ROUTES 20
extern const struct api_route devices_api_routes[DEVICES_API_N_ROUTES];
extern const size_t devices_api_n_routes;

#endif
