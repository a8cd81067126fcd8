/*
 * dev_store.h - the devices module's state in SQLite (state_dir/devices.db).
 *
 * One row per device with everything a restart needs to renew rather than acquire again
 * (leases, DUID and IAID, routing slot) and what an operator reads (status, addresses,
 * first and last seen); a history of each device's events; the port forwards added by hand.
 * WAL with synchronous=FULL: a write that returned is on disk, so a kill -9 right after
 * loses nothing acknowledged.  egressctl --direct opens the same file read-only while the
 * daemon runs (WAL lets it), or when it does not.
 *
 * Calls block on disk for a moment (an fsync per write); the module batches a burst of
 * changes into one transaction with dev_store_begin()/dev_store_commit().
 */
#ifndef EGRESS_DEV_STORE_H
#define EGRESS_DEV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "dhcp4.h"
#include "dhcp6.h"

struct dev_store;

enum dev_status {
	DEV_DISCOVERED, /* seen on the LAN, identity not made yet */
	DEV_ACQUIRING,	/* macvlan up, asking for leases */
	DEV_ACTIVE,	/* holds at least one WAN address (the reference's "active") */
	DEV_INACTIVE,	/* left the LAN (after the grace period); leases released */
	DEV_DENIED,	/* on the deny list, or over max_devices */
	_DEV_STATUS_MAX,
};
extern const char *const dev_status_name[_DEV_STATUS_MAX]; /* "discovered", "active", ... */
int dev_status_from_name(const char *name);		   /* -EINVAL if unknown */

/* How the device's WAN IPv6 address came. */
enum dev_v6_source {
	DEV_V6_NONE,
	DEV_V6_SLAAC,
	DEV_V6_DHCPV6,
	_DEV_V6_SOURCE_MAX,
};

struct dev_record {
	uint8_t mac[6];		/* the key */
	char hostname[64];	/* from the LAN lease; "": none */
	struct addr lan4;	/* the device's LAN address; unset: not known yet */
	enum dev_status status;
	int64_t first_seen, last_seen; /* unix seconds */
	uint32_t slot;		/* its routing table is table_base + slot; stable for life */
	char ifname[16];	/* its macvlan */
	bool has_lease4;
	struct dhcp4_lease lease4;
	struct cidr wan6;	/* its WAN IPv6 (SLAAC or DHCPv6); family unset: none */
	enum dev_v6_source v6_source;
	bool has_lease6;
	struct dhcp6_lease lease6;
	uint8_t duid[DHCP6_DUID_MAX];
	size_t duid_len;
	uint32_t iaid;
};

/* A port forward: outer (on the device's WAN addresses) -> inner (on its LAN address). */
struct dev_forward {
	uint8_t mac[6];
	uint16_t outer, inner;
	bool automatic;		/* from port_map, not added by hand (not stored) */
};

/* readonly: egressctl --direct (never creates or migrates).  0 or -errno, logged. */
int dev_store_open(const char *path, bool readonly, struct dev_store **ret);
void dev_store_close(struct dev_store *st);

int dev_store_begin(struct dev_store *st);
int dev_store_commit(struct dev_store *st); /* durable when it returns 0 */

/* Insert or replace by mac. */
int dev_store_put(struct dev_store *st, const struct dev_record *r);
int dev_store_get(struct dev_store *st, const uint8_t mac[6], struct dev_record *ret); /* -ENOENT */
int dev_store_delete(struct dev_store *st, const uint8_t mac[6]);
typedef int (*dev_record_cb)(const struct dev_record *r, void *arg); /* 0 go on, -errno stop */
int dev_store_list(struct dev_store *st, dev_record_cb cb, void *arg); /* by mac */

/* History: "acquired 10.1.2.50", "left", "released", ... with the time. */
int dev_store_history_add(struct dev_store *st, const uint8_t mac[6], const char *event);
typedef int (*dev_history_cb)(int64_t at, const char *event, void *arg);
int dev_store_history(struct dev_store *st, const uint8_t mac[6], size_t limit, dev_history_cb cb,
	void *arg); /* newest first */

/* Forwards added by hand (automatic ones come from port_map and are not stored). */
int dev_store_forward_add(struct dev_store *st, const struct dev_forward *f); /* -EEXIST */
int dev_store_forward_del(struct dev_store *st, const struct dev_forward *f); /* -ENOENT */
typedef int (*dev_forward_cb)(const struct dev_forward *f, void *arg);
int dev_store_forward_list(struct dev_store *st, dev_forward_cb cb, void *arg);

/* Small values of the module's own: "wan4", "wan6", "started_at", ... */
int dev_store_meta_set(struct dev_store *st, const char *key, const char *value);
int dev_store_meta_get(struct dev_store *st, const char *key, char *buf, size_t len); /* -ENOENT */
typedef int (*dev_meta_cb)(const char *key, const char *value, void *arg);
int dev_store_meta_list(struct dev_store *st, dev_meta_cb cb, void *arg); /* by key */

/* When a device row was last written (unix s; 0: never), for --direct's "as of". */
int64_t dev_store_written_at(struct dev_store *st);
/* The file it opened (owned by st). */
const char *dev_store_path(const struct dev_store *st);

#endif
