/*
 * ctl_devices.h - egressctl's device gateway commands (ctl_devices.c), and the pieces of them
 * the unit tests reach: the store's folder for --direct, a port forward's request body, the
 * devices' table.
 */
#ifndef EGRESS_CTL_DEVICES_H
#define EGRESS_CTL_DEVICES_H

#include <stdio.h>

#include <jansson.h>

#include "ctl.h"

/*
 * The folder of the devices' store for --direct: state_dir if given, else [devices]
 * state_dir of the configuration at conf_path (its default when the file has no [devices]),
 * else that of egressd's default configuration file when it is readable, else
 * /var/lib/egress.  0, or -EINVAL after printing why to err.
 */
int ctl_devices_state_dir(const char *conf_path, const char *state_dir, char *ret, size_t len,
	FILE *err);
/* {"gateway_port", "device_port", "device_ip" or "device" (MAC)} from the command line's
 * words; NULL after printing which word was wrong to err.  The caller owns the result. */
json_t *ctl_forward_body(const char *gw_port, const char *device, const char *dev_port,
	FILE *err);
/* A devices document ({"devices": [...]}) as a table, or JSON with --json. */
int ctl_devices_print(struct ctl *c, json_t *doc);
/* devices --direct, status --direct: the store read-only, saying so and when it was written. */
int ctl_devices_direct(struct ctl *c, const char *status);
int ctl_devices_status_direct(struct ctl *c);
/* GET /api/devices/status, or NULL when egressd has none (the module does not run). */
json_t *ctl_devices_status(struct ctl *c);

/* The subcommands (args as struct ctl_cmd's run). */
int ctl_cmd_devices(struct ctl *c, char **args);
int ctl_cmd_forward_add(struct ctl *c, char **args);
int ctl_cmd_forward_list(struct ctl *c, char **args);
int ctl_cmd_forward_remove(struct ctl *c, char **args);
int ctl_cmd_forward_quick(struct ctl *c, char **args);
int ctl_cmd_diagnose(struct ctl *c, char **args);

#endif
