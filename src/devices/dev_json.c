/*
 * dev_json.c - devices, forwards and the store's summary as JSON (see dev_json.h): one shape
 * for GET /devices and for `egressctl devices --direct`, in the reference tool's field names
 * where it had them.
 *
 * Must not: add what only the running module knows (DHCP states, relay counters); the
 * module puts those on top.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dev_conf.h"
#include "dev_json.h"
#include "util.h"

static const char *const v6_source_json[_DEV_V6_SOURCE_MAX] = {
	[DEV_V6_NONE] = "none",
	[DEV_V6_SLAAC] = "slaac",
	[DEV_V6_DHCPV6] = "dhcpv6",
};

/* Unix seconds as "2026-12-07T13:00:00Z"; null for 0 (never) and for "never ends". */
static json_t *time_json(int64_t at)
{
	char buf[32];
	time_t t = (time_t)at;
	struct tm tm;

	if (at <= 0 || at == INT64_MAX || !gmtime_r(&t, &tm))
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *addr_json(const struct addr *a)
{
	char buf[ADDR_STRLEN];

	return addr_is_set(a) ? json_string(addr_str(a, buf, sizeof(buf))) : json_null();
}

/* obtained + secs, or null when the lease never ends (0xffffffff). */
static json_t *lease_time(int64_t obtained, uint32_t secs)
{
	return secs == 0xffffffffu ? json_null() : json_integer(obtained + secs);
}

static json_t *lease4_json(const struct dhcp4_lease *l)
{
	json_t *dns = json_array();

	for (size_t i = 0; i < l->n_dns && i < DHCP4_DNS_MAX; i++)
		json_array_append_new(dns, addr_json(&l->dns[i]));
	return json_pack("{sosisosososIsosososo}", "address", addr_json(&l->addr), "plen",
		l->plen ? l->plen : 32, "server", addr_json(&l->server_id), "router",
		addr_json(&l->router), "dns", dns, "obtained_at", (json_int_t)l->obtained_at,
		"expires", lease_time(l->obtained_at, l->lease_s), "expires_at",
		l->lease_s == 0xffffffffu ? json_null() : time_json(l->obtained_at + l->lease_s),
		"renew_at", lease_time(l->obtained_at, l->t1_s), "rebind_at",
		lease_time(l->obtained_at, l->t2_s));
}

static json_t *lease6_json(const struct dhcp6_lease *l)
{
	json_t *dns = json_array();

	for (size_t i = 0; i < l->n_dns && i < DHCP6_DNS_MAX; i++)
		json_array_append_new(dns, addr_json(&l->dns[i]));
	return json_pack("{sosososIsosososo}", "address", addr_json(&l->addr), "server",
		addr_json(&l->server), "dns", dns, "obtained_at", (json_int_t)l->obtained_at,
		"expires", lease_time(l->obtained_at, l->valid_s), "expires_at",
		l->valid_s == 0xffffffffu ? json_null() : time_json(l->obtained_at + l->valid_s),
		"preferred_until", lease_time(l->obtained_at, l->preferred_s), "renew_at",
		lease_time(l->obtained_at, l->t1_s));
}

json_t *dev_record_json(const struct dev_record *r)
{
	char mac[18], duid[2 * DHCP6_DUID_MAX + 1] = "";
	json_t *o;

	for (size_t i = 0; i < r->duid_len && i < DHCP6_DUID_MAX; i++)
		snprintf(duid + 2 * i, 3, "%02x", r->duid[i]);
	o = json_pack("{sssososssssisssssosIsosIso}",
		"mac_address", dev_mac_str(r->mac, mac),
		"ipv4_address", addr_json(&r->lan4),
		"ipv4_wan_address", r->has_lease4 ? addr_json(&r->lease4.addr) : json_null(),
		"status", r->status < _DEV_STATUS_MAX ? dev_status_name[r->status] : "unknown",
		"hostname", r->hostname,
		"slot", (int)r->slot,
		"interface", r->ifname,
		"ipv6_source",
		v6_source_json[r->v6_source < _DEV_V6_SOURCE_MAX ? r->v6_source : DEV_V6_NONE],
		"ipv6_address", r->wan6.addr.family ? addr_json(&r->wan6.addr) : json_null(),
		"first_seen_unix", (json_int_t)r->first_seen,
		"first_seen", time_json(r->first_seen),
		"last_seen_unix", (json_int_t)r->last_seen,
		"last_seen", time_json(r->last_seen));
	if (!o)
		return NULL;
	json_object_set_new(o, "lease4", r->has_lease4 ? lease4_json(&r->lease4) : json_null());
	json_object_set_new(o, "lease6", r->has_lease6 ? lease6_json(&r->lease6) : json_null());
	json_object_set_new(o, "duid", r->duid_len ? json_string(duid) : json_null());
	json_object_set_new(o, "iaid", json_integer(r->iaid));
	return o;
}

json_t *dev_forward_json(const struct dev_forward *f)
{
	char mac[18];

	return json_pack("{sisisssbss}", "gateway_port", f->outer, "device_port", f->inner,
		"device", dev_mac_str(f->mac, mac), "automatic", f->automatic, "protocol", "tcp");
}

struct list_ctx {
	json_t *devices;
	int status; /* -1: all */
	json_t *forwards; /* mac -> [forward] of the store */
};

static int forward_cb(const struct dev_forward *f, void *arg)
{
	struct list_ctx *c = arg;
	char mac[18];
	json_t *arr = json_object_get(c->forwards, dev_mac_str(f->mac, mac));

	if (!arr) {
		arr = json_array();
		json_object_set_new(c->forwards, mac, arr);
	}
	json_array_append_new(arr, dev_forward_json(f));
	return 0;
}

static int device_cb(const struct dev_record *r, void *arg)
{
	struct list_ctx *c = arg;
	char mac[18];
	json_t *o, *fw;

	if (c->status >= 0 && (int)r->status != c->status)
		return 0;
	o = dev_record_json(r);
	if (!o)
		return -ENOMEM;
	fw = json_object_get(c->forwards, dev_mac_str(r->mac, mac));
	json_object_set_new(o, "forwards", fw ? json_incref(fw) : json_array());
	json_array_append_new(c->devices, o);
	return 0;
}

json_t *dev_store_devices_json(struct dev_store *st, const char *status)
{
	struct list_ctx c = {.devices = json_array(), .status = -1, .forwards = json_object()};
	json_t *doc = NULL;

	if (status) {
		c.status = dev_status_from_name(status);
		if (c.status < 0)
			goto out; /* the caller said which statuses there are */
	}
	if (dev_store_forward_list(st, forward_cb, &c) < 0 ||
		dev_store_list(st, device_cb, &c) < 0)
		goto out;
	doc = json_pack("{sOsI}", "devices", c.devices, "count",
		(json_int_t)json_array_size(c.devices));
out:
	json_decref(c.devices);
	json_decref(c.forwards);
	return doc;
}

struct count_ctx {
	json_int_t by_status[_DEV_STATUS_MAX];
	json_int_t total, with4, with6;
};

static int count_cb(const struct dev_record *r, void *arg)
{
	struct count_ctx *c = arg;

	if (r->status < _DEV_STATUS_MAX)
		c->by_status[r->status]++;
	c->total++;
	c->with4 += r->has_lease4;
	c->with6 += r->wan6.addr.family != 0;
	return 0;
}

/* The newest modification time of the store's file and its WAL (what was written last). */
static int64_t file_mtime(const char *path)
{
	struct stat sb;
	char wal[4096];
	int64_t t = 0;

	if (stat(path, &sb) == 0)
		t = sb.st_mtime;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &sb) == 0 && sb.st_size > 0 && sb.st_mtime > t)
		t = sb.st_mtime;
	return t;
}

static int meta_cb(const char *key, const char *value, void *arg)
{
	json_object_set_new(arg, key, json_string(value));
	return 0;
}

json_t *dev_store_status_json(struct dev_store *st)
{
	struct count_ctx c = {0};
	json_t *counts, *meta, *doc;
	int64_t written = file_mtime(dev_store_path(st));

	if (dev_store_list(st, count_cb, &c) < 0)
		return NULL;
	counts = json_object();
	for (int i = 0; i < _DEV_STATUS_MAX; i++)
		json_object_set_new(counts, dev_status_name[i], json_integer(c.by_status[i]));
	meta = json_object();
	dev_store_meta_list(st, meta_cb, meta); /* what the module last knew of the gateway */
	doc = json_pack("{sssssIsIsIsIsosososIso}", "source", "store", "store",
		dev_store_path(st), "total_devices", c.total, "active_devices",
		c.by_status[DEV_ACTIVE], "devices_with_ipv4", c.with4, "devices_with_ipv6",
		c.with6, "devices_by_status", counts, "gateway", meta, "written_at",
		time_json(written), "written_at_unix", (json_int_t)written,
		"device_updated_at", time_json(dev_store_written_at(st)));
	return doc;
}
