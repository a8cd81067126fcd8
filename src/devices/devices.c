/*
 * devices.c - egressd's [devices] module: each LAN device with its own upstream identity.
 *
 * Finds the devices on the LAN (neighbour events on lan and a dump at start, the LAN DHCP
 * server's leases file followed with inotify), decides which are served (allow, deny,
 * max_devices) and gives each served device its identity: a stable slot and a macvlan
 * carrying its MAC (dev_net.c), a DHCPv4 client, and a DHCPv6 client when the upstream's
 * router advertisements ask for one (or a lease is kept), with the DUID and IAID kept in the
 * store; the SLAAC addresses the kernel makes on the macvlan come in as address events.
 * Each lease change goes to the store (one transaction per loop turn), to the device's
 * addresses, routes and rules, to the nftables table (rebuilt once per turn for all) and to
 * the IPv6 -> IPv4 relay.  A device is present while it answers: silent, it is probed, and
 * silent for grace_ms it has left, which releases its leases and removes its macvlan.
 * Changes of the WAN (link, carrier, its own addresses, the prefixes its router advertises)
 * make each device confirm its leases on its own client.  A restart adopts the devices of
 * the store and hands their kept leases to the clients, which renew them.
 *
 * Must not: flush every device's addresses on a WAN change (each client confirms its own),
 * take its own macvlans' events for WAN changes (that would loop), poll the kernel, touch
 * the WAN's own addresses or MAC, or block the loop beyond a store write.
 */
#include <errno.h>
#include <limits.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dev_conf.h"
#include "dev_fwd.h"
#include "dev_json.h"
#include "dev_net.h"
#include "dev_store.h"
#include "devices.h"
#include "devices_int.h"
#include "dhcp4.h"
#include "dhcp6.h"
#include "events.h"
#include "fileio.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "nl.h"
#include "ra.h"
#include "util.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

#define SLOT_NONE	   UINT32_MAX
#define SLAAC_MAX	   4
#define RECHECK_DELAY_MS   500	 /* WAN events within this much make one recheck */
#define RECHECK_GAP_MS	   5000	 /* and rechecks are at least this far apart */
#define RELINK_DELAY_MS	   10000 /* a macvlan deleted by hand is made again after this */
#define RETRY_IDENTITY_MS  10000 /* a macvlan that could not be made is tried again */
#define TEARDOWN_MS	   2000	 /* time a DHCPv6 RELEASE gets before its macvlan goes */
#define TEARDOWN_POLL_MS   50	 /* how often its end is looked for meanwhile */
#define PROBE_MAX_MS	   60000 /* a silent device is probed at least this often */
#define PROBE_MIN_MS	   500
#define PROBE_ANSWER_MS	   3000 /* a probed neighbour has this long to answer (3 ARPs) */
#define MAKE_BURST	   16	/* macvlans made per loop turn: the API answers meanwhile */
#define NFT_GAP_MS	   200	/* the nftables table is rebuilt at most this often */
#define NFT_SHARE	   4	/* ... and after a rebuild of t ms, not before NFT_SHARE * t ms */
#define NET_BURST	   16	/* devices' addresses, routes and rules set per loop turn */
#define DIAG_TIMEOUT_MS	   2000
#define LAST_SEEN_WRITE_S  60 /* last_seen is written when it moved this much */
#define LEASES_DEBOUNCE_MS 100
#define LEASES_FILE_MAX	   (8u << 20)
#define RECORDS_EXTRA	   1024 /* devices tracked beyond max_devices (denied ones) */
#define HISTORY_SHOWN	   20

enum {
	DIRTY_STORE = 1 << 0,
	DIRTY_NET = 1 << 1,
	DIRTY_RELAY = 1 << 2,
	DIRTY_ALL = DIRTY_STORE | DIRTY_NET | DIRTY_RELAY,
};

enum deny_why {
	DENY_NONE,
	DENY_LIST,  /* on the deny list */
	DENY_ALLOW, /* not on a non-empty allow list */
	DENY_MAX,   /* max_devices are served */
	_DENY_WHY_MAX,
};
static const char *const deny_why_name[_DENY_WHY_MAX] = {
	[DENY_NONE] = "",
	[DENY_LIST] = "on the deny list",
	[DENY_ALLOW] = "not on the allow list",
	[DENY_MAX] = "max_devices reached",
};

struct slaac {
	struct cidr addr;
	bool deprecated;
};

struct device {
	struct devices *d;
	struct dev_record rec;
	char macs[18];
	enum deny_why denied;
	bool present;  /* heard within grace_ms */
	bool identity; /* its macvlan is made and its clients run */
	int ifindex;   /* its macvlan's */
	uint64_t heard_ms, probe_at_ms, retry_at_ms, relink_at_ms, teardown_at_ms;
	uint64_t teardown_end_ms; /* the DHCPv6 RELEASE's time is up */
	bool leaving;		  /* inactive once its macvlan is gone */
	bool making;		  /* its identity is queued (make_cb) */
	uint64_t probed_ms;	  /* first probe since it was last heard */
	uint16_t nud;		  /* the last neighbour state seen for it on the LAN */
	struct addr probe_dst;	  /* an address of it on the LAN (IPv4 preferred) */
	struct dhcp4_client *c4;
	struct dhcp6_client *c6; /* also while teardown_at_ms: its RELEASE on the way */
	struct slaac slaac[SLAAC_MAX];
	size_t n_slaac;
	unsigned dirty;
	struct dev_forward *fwds; /* automatic, then added by hand */
	size_t n_fwds;
	/* what the nftables table last committed holds for it (nft_has: it is in it) */
	bool nft_has;
	struct addr nft_lan4, nft_wan4, nft_wan6;
};

/* A device's DHCPv4 address, the time it was written in the lease file: to tell news. */
struct lan_lease {
	uint8_t mac[6];
	struct addr lan4;
	char hostname[64];
	int64_t expiry; /* unix s; 0: infinite */
};

struct history {
	uint8_t mac[6];
	char event[96];
};

struct diag;

struct devices {
	struct module_env *env;
	const struct conf *conf;
	/* what needs a restart to change: copied from the conf egressd started with */
	char wan[IFNAMSIZ], lan[IFNAMSIZ];
	char store_path[PATH_MAX];

	struct nl *nl;
	struct nl_monitor *mon;
	struct dev_store *st;
	struct dev_net *net;
	struct dev_relay *relay;
	struct ra_watch *raw;
	int wan_ifindex, lan_ifindex;
	uint32_t slots; /* device slots are < slots (max_devices at start) */
	bool wan_up;
	struct cidr wan_addrs[32]; /* the WAN's own addresses (scope global) */
	size_t n_wan_addrs;

	uint8_t (*allow)[6], (*deny)[6];
	size_t n_allow, n_deny;

	struct device **v;
	size_t n, cap;
	struct dev_forward *hand; /* forwards added by hand, as in the store */
	size_t n_hand;
	struct lan_lease *leases;
	size_t n_leases;
	struct history *hist;
	size_t n_hist;

	/* the upstream as the router advertisements tell it */
	bool ra_seen;
	struct ra_info ra;
	int64_t ra_at_ms; /* wall */
	struct addr router6;

	struct event *flush_ev, *tick_ev, *recheck_ev, *leases_ev, *inotify_ev, *make_ev, *nft_ev;
	uint64_t nft_at_ms; /* the table's last rebuild */
	uint64_t nft_gap_ms; /* until the next at least: NFT_GAP_MS, or NFT_SHARE times the last */
	bool flush_pending, nft_dirty, recheck4, recheck6;
	bool meta_v4; /* upstream_ipv4 written */
	char recheck_why[96];
	uint64_t recheck_last_ms;
	int inotify_fd;
	char *leases_path; /* the one watched */

	struct diag *diag;
	uint64_t rechecks, adopted;
	struct dhcp4_stats retired4; /* counters of clients freed */
	struct dhcp6_stats retired6;
	int64_t started_at;
	char last_error[256];
	struct log_ratelimit rl_net, rl_full;

	struct metric_family *m_devices, *m_leases, *m_msgs, *m_rechecks;
};

static const struct conf_devices *dconf(const struct devices *d)
{
	return conf_devices(d->conf);
}

static void devices_schedule(struct devices *d);
static void tick_arm(struct devices *d);
static void device_serve(struct device *v);
static void identity_drop(struct device *v, bool release);

/* ------------------------------------------------------------------ small helpers */

static bool mac_zero(const uint8_t mac[6])
{
	static const uint8_t z[6];

	return !memcmp(mac, z, 6);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* Seconds the lease has left from now: 0 when over, UINT32_MAX when infinite. */
static uint32_t lease4_left(const struct dhcp4_lease *l)
{
	int64_t end;

	if (l->lease_s == UINT32_MAX)
		return UINT32_MAX;
	end = l->obtained_at + (int64_t)l->lease_s - now_s();
	return end > 0 ? (uint32_t)end : 0;
}

static uint32_t lease6_left(const struct dhcp6_lease *l)
{
	int64_t end;

	if (l->valid_s == UINT32_MAX)
		return UINT32_MAX;
	end = l->obtained_at + (int64_t)l->valid_s - now_s();
	return end > 0 ? (uint32_t)end : 0;
}

static bool cidr_same(const struct cidr *a, const struct cidr *b)
{
	if (a->addr.family != b->addr.family)
		return false;
	return !a->addr.family || (a->plen == b->plen && addr_eq(&a->addr, &b->addr));
}

static bool addr_same(const struct addr *a, const struct addr *b)
{
	if (a->family != b->family)
		return false;
	return !a->family || addr_eq(a, b);
}

static void set_error(struct devices *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_error(struct devices *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
	va_end(ap);
}

/* An event of the daemon's log, and the device's history in the store (next flush). */
static void device_note(struct device *v, enum event_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void device_note(struct device *v, enum event_kind kind, const char *fmt, ...)
{
	struct devices *d = v->d;
	struct history *h;
	va_list ap;

	d->hist = xrealloc(d->hist, (d->n_hist + 1) * sizeof(*d->hist));
	h = &d->hist[d->n_hist++];
	memcpy(h->mac, v->rec.mac, 6);
	va_start(ap, fmt);
	vsnprintf(h->event, sizeof(h->event), fmt, ap);
	va_end(ap);
	log_info("devices: %s: %s", v->macs, h->event);
	if (d->env->events)
		event_log_add(d->env->events, kind, NULL,
			json_pack("{s:s, s:s}", "module", "devices", "device", v->macs),
			"devices: %s: %s", v->macs, h->event);
	devices_schedule(d);
}

/* ------------------------------------------------------------------ the device table */

static struct device *device_find(const struct devices *d, const uint8_t mac[6])
{
	for (size_t i = 0; i < d->n; i++)
		if (!memcmp(d->v[i]->rec.mac, mac, 6))
			return d->v[i];
	return NULL;
}

static struct device *device_by_ifindex(const struct devices *d, int ifindex)
{
	for (size_t i = 0; ifindex > 0 && i < d->n; i++)
		if (d->v[i]->ifindex == ifindex)
			return d->v[i];
	return NULL;
}

static struct device *device_by_lan4(const struct devices *d, const struct addr *a)
{
	struct device *best = NULL;

	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (!addr_same(&v->rec.lan4, a))
			continue;
		/* an old record may hold an address the LAN gave to another since */
		if (!best || v->present || v->rec.last_seen > best->rec.last_seen)
			best = v;
	}
	return best;
}

static const struct lan_lease *lease_find(const struct devices *d, const uint8_t mac[6])
{
	for (size_t i = 0; i < d->n_leases; i++)
		if (!memcmp(d->leases[i].mac, mac, 6))
			return &d->leases[i];
	return NULL;
}

static bool mac_in(const uint8_t (*list)[6], size_t n, const uint8_t mac[6])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(list[i], mac, 6))
			return true;
	return false;
}

static size_t served_count(const struct devices *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		n += d->v[i]->identity || d->v[i]->making;
	return n;
}

/*
 * The lowest slot no device holds.  Slots stay with their device for life, as long as there
 * are enough: when all d->slots are held, the one of the device gone longest (not served)
 * is taken back.  SLOT_NONE if every slot is in use by a served device.
 */
static uint32_t slot_alloc(struct devices *d)
{
	bool *used = xcalloc(d->slots + 1, sizeof(*used));
	struct device *oldest = NULL;
	uint32_t s = 0;

	for (size_t i = 0; i < d->n; i++)
		if (d->v[i]->rec.slot < d->slots)
			used[d->v[i]->rec.slot] = true;
	while (s < d->slots && used[s])
		s++;
	free(used);
	if (s < d->slots)
		return s;
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (v->identity || v->teardown_at_ms || v->rec.slot >= d->slots ||
			(v->present && v->rec.status != DEV_DENIED))
			continue;
		if (!oldest || v->rec.last_seen < oldest->rec.last_seen)
			oldest = v;
	}
	if (!oldest)
		return SLOT_NONE;
	s = oldest->rec.slot;
	oldest->rec.slot = SLOT_NONE;
	oldest->dirty |= DIRTY_STORE;
	return s;
}

/* The device's forwards: port_map's for every device (port_forwards), then its own. */
static void device_fwds_build(struct device *v)
{
	const struct conf_devices *c = dconf(v->d);
	struct devices *d = v->d;
	size_t n = 0;

	free(v->fwds);
	v->fwds = xcalloc((size_t)c->n_port_map + d->n_hand + 1, sizeof(*v->fwds));
	for (int i = 0; c->port_forwards && i < c->n_port_map; i++) {
		struct dev_forward *f = &v->fwds[n++];

		memcpy(f->mac, v->rec.mac, 6);
		f->outer = c->port_map[i].outer;
		f->inner = c->port_map[i].inner;
		f->automatic = true;
	}
	for (size_t i = 0; i < d->n_hand; i++)
		if (!memcmp(d->hand[i].mac, v->rec.mac, 6))
			v->fwds[n++] = d->hand[i];
	v->n_fwds = n;
}

/* A device as its record says (from the store, or new).  NULL when the table is full. */
static struct device *device_add(struct devices *d, const struct dev_record *r)
{
	const struct conf_devices *c = dconf(d);
	struct device *v;

	if (d->n >= (size_t)c->max_devices + RECORDS_EXTRA) {
		char m[18];

		if (log_ratelimit(&d->rl_full))
			log_warnx("devices: %s: %zu devices known already: not tracked",
				dev_mac_str(r->mac, m), d->n);
		return NULL;
	}
	v = xcalloc(1, sizeof(*v));
	v->d = d;
	v->rec = *r;
	dev_mac_str(r->mac, v->macs);
	if (!v->rec.ifname[0])
		dev_ifname(r->mac, v->rec.ifname);
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 64;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	d->v[d->n++] = v;
	device_fwds_build(v);
	return v;
}

/* A device seen for the first time. */
static struct device *device_new(struct devices *d, const uint8_t mac[6])
{
	struct dev_record r = {0};
	const struct lan_lease *l = lease_find(d, mac);
	struct device *v;

	memcpy(r.mac, mac, 6);
	r.status = DEV_DISCOVERED;
	r.first_seen = r.last_seen = now_s();
	r.slot = SLOT_NONE;
	if (l) {
		r.lan4 = l->lan4;
		snprintf(r.hostname, sizeof(r.hostname), "%s", l->hostname);
	}
	v = device_add(d, &r);
	if (!v)
		return NULL;
	v->dirty |= DIRTY_STORE;
	device_note(v, EVENT_CHANGE, "discovered on %s", d->lan);
	return v;
}

/* What the kernel should hold for v. */
static void device_want(const struct device *v, struct dev_net_want *w)
{
	const struct dev_record *r = &v->rec;

	memset(w, 0, sizeof(*w));
	memcpy(w->mac, r->mac, 6);
	w->slot = r->slot;
	w->lan4 = r->lan4;
	if (r->has_lease4 && lease4_left(&r->lease4)) {
		w->wan4.addr = r->lease4.addr;
		w->wan4.plen = r->lease4.plen ? r->lease4.plen : 32;
		w->router4 = r->lease4.router;
		w->wan4_valid_s = lease4_left(&r->lease4);
		if (w->wan4_valid_s == UINT32_MAX)
			w->wan4_valid_s = 0;
	}
	if (r->has_lease6 && lease6_left(&r->lease6)) {
		cidr_from_addr(&r->lease6.addr, &w->wan6);
		w->wan6_valid_s = lease6_left(&r->lease6);
		if (w->wan6_valid_s == UINT32_MAX)
			w->wan6_valid_s = 0;
	}
	w->wan6_src = r->wan6.addr;
	w->router6 = v->d->router6;
	w->fwds = v->fwds;
	w->n_fwds = v->n_fwds;
}

/* The wants of every device with an identity (caller frees). */
static struct dev_net_want *wants_all(const struct devices *d, size_t *n_ret)
{
	struct dev_net_want *w = xcalloc(d->n + 1, sizeof(*w));
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		if (d->v[i]->identity)
			device_want(d->v[i], &w[n++]);
	*n_ret = n;
	return w;
}

/*
 * Whether the kernel holds what v's addresses need: its addresses, routes and rules set
 * (no DIRTY_NET pending) and a committed nftables table with its SNAT as it is now.
 */
static bool device_applied(const struct device *v)
{
	struct dev_net_want w;

	if (!v->nft_has || (v->dirty & DIRTY_NET))
		return false;
	device_want(v, &w);
	return addr_same(&v->nft_lan4, &w.lan4) && addr_same(&v->nft_wan4, &w.wan4.addr) &&
	       addr_same(&v->nft_wan6, &w.wan6_src);
}

/*
 * ACTIVE with a WAN address once the kernel holds it (device_applied()), ACQUIRING before,
 * while it has its identity: a client told `active` finds its NAT in place.
 */
static void status_update(struct device *v)
{
	enum dev_status s;

	if (!v->identity)
		return;
	s = (v->rec.has_lease4 || v->rec.wan6.addr.family) && device_applied(v) ? DEV_ACTIVE :
										 DEV_ACQUIRING;
	if (s != v->rec.status) {
		v->rec.status = s;
		v->dirty |= DIRTY_STORE;
	}
}

/* Which IPv6 address the device uses upstream: its DHCPv6 lease, else a SLAAC address. */
static void wan6_update(struct device *v)
{
	struct cidr want = {0};
	enum dev_v6_source src = DEV_V6_NONE;

	if (v->rec.has_lease6) {
		cidr_from_addr(&v->rec.lease6.addr, &want);
		src = DEV_V6_DHCPV6;
	} else if (v->n_slaac) {
		want = v->slaac[0].addr;
		for (size_t i = 0; i < v->n_slaac; i++)
			if (!v->slaac[i].deprecated) {
				want = v->slaac[i].addr;
				break;
			}
		src = DEV_V6_SLAAC;
	}
	if (cidr_same(&want, &v->rec.wan6) && src == v->rec.v6_source)
		return;
	if (want.addr.family && src == DEV_V6_SLAAC) {
		char a[CIDR_STRLEN];

		device_note(v, EVENT_APPLY, "slaac %s", cidr_str(&want, a, sizeof(a)));
	}
	v->rec.wan6 = want;
	v->rec.v6_source = src;
	v->dirty |= DIRTY_ALL;
	v->d->nft_dirty = true;
	status_update(v);
	devices_schedule(v->d);
}

/* ------------------------------------------------------------------ metrics */

static void lease_metric(struct devices *d, const char *family, const char *event)
{
	if (d->m_leases)
		metrics_counter_add(d->m_leases, 1, family, event);
}

static void stats_sum(const struct devices *d, struct dhcp4_stats *s4, struct dhcp6_stats *s6)
{
	*s4 = d->retired4;
	*s6 = d->retired6;
	for (size_t i = 0; i < d->n; i++) {
		struct dhcp4_stats a;
		struct dhcp6_stats b;

		if (d->v[i]->c4) {
			dhcp4_client_stats(d->v[i]->c4, &a);
			s4->sent += a.sent;
			s4->received += a.received;
			s4->naks += a.naks;
			s4->declines += a.declines;
			s4->bad += a.bad;
		}
		if (d->v[i]->c6) {
			dhcp6_client_stats(d->v[i]->c6, &b);
			s6->sent += b.sent;
			s6->received += b.received;
			s6->bad += b.bad;
		}
	}
}

static void status_counts(const struct devices *d, size_t counts[_DEV_STATUS_MAX])
{
	memset(counts, 0, _DEV_STATUS_MAX * sizeof(*counts));
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i]->rec.status < _DEV_STATUS_MAX)
			counts[d->v[i]->rec.status]++;
}

static void scrape_cb(struct metrics *m, void *arg)
{
	struct devices *d = arg;
	size_t counts[_DEV_STATUS_MAX];
	struct dhcp4_stats s4;
	struct dhcp6_stats s6;

	(void)m;
	status_counts(d, counts);
	for (int i = 0; i < _DEV_STATUS_MAX; i++)
		metrics_gauge_set(d->m_devices, (double)counts[i], dev_status_name[i]);
	stats_sum(d, &s4, &s6);
	metrics_clear(d->m_msgs);
	metrics_counter_add(d->m_msgs, (double)s4.sent, "dhcpv4", "sent");
	metrics_counter_add(d->m_msgs, (double)s4.received, "dhcpv4", "received");
	metrics_counter_add(d->m_msgs, (double)s4.bad, "dhcpv4", "bad");
	metrics_counter_add(d->m_msgs, (double)s6.sent, "dhcpv6", "sent");
	metrics_counter_add(d->m_msgs, (double)s6.received, "dhcpv6", "received");
	metrics_counter_add(d->m_msgs, (double)s6.bad, "dhcpv6", "bad");
}

static int metrics_init(struct devices *d)
{
	struct metrics *r = d->env->metrics;
	int e = 0;

	if (!r)
		return 0;
	e |= metrics_gauge_new(r, "egress_devices", "LAN devices by status",
		METRICS_LABELS("status"), &d->m_devices);
	e |= metrics_counter_new(r, "egress_devices_lease_events_total",
		"Lease events of the devices' identities: acquired, renewed, lost, released",
		METRICS_LABELS("family", "event"), &d->m_leases);
	e |= metrics_counter_new(r, "egress_devices_dhcp_messages_total",
		"DHCP messages of the devices' clients: sent, received, bad (malformed or not "
		"ours)",
		METRICS_LABELS("protocol", "direction"), &d->m_msgs);
	e |= metrics_counter_new(r, "egress_devices_rechecks_total",
		"Times a change of the WAN made every device confirm its leases", NULL,
		&d->m_rechecks);
	if (e)
		return -EINVAL;
	return metrics_on_scrape(r, scrape_cb, d);
}

static void client4_retire(struct devices *d, struct dhcp4_client *c)
{
	struct dhcp4_stats s;

	dhcp4_client_stats(c, &s);
	d->retired4.sent += s.sent;
	d->retired4.received += s.received;
	d->retired4.naks += s.naks;
	d->retired4.declines += s.declines;
	d->retired4.bad += s.bad;
	dhcp4_client_free(c);
}

static void client6_retire(struct devices *d, struct dhcp6_client *c)
{
	struct dhcp6_stats s;

	dhcp6_client_stats(c, &s);
	d->retired6.sent += s.sent;
	d->retired6.received += s.received;
	d->retired6.bad += s.bad;
	dhcp6_client_free(c);
}

/* ------------------------------------------------------------------ the clients */

static void dhcp4_event_cb(void *arg, enum dhcp4_event ev, const struct dhcp4_lease *l)
{
	struct device *v = arg;
	struct devices *d = v->d;
	char a[ADDR_STRLEN];
	bool moved;

	if (!v->identity)
		return;
	addr_str(&l->addr, a, sizeof(a));
	switch (ev) {
	case DHCP4_EV_BOUND:
		v->rec.lease4 = *l;
		v->rec.has_lease4 = true;
		lease_metric(d, "ipv4", "acquired");
		if (!d->meta_v4 && d->st) {
			d->meta_v4 = true;
			(void)dev_store_meta_set(d->st, "upstream_ipv4", "dhcpv4");
		}
		device_note(v, EVENT_APPLY, "dhcpv4 acquired %s", a);
		moved = true;
		break;
	case DHCP4_EV_RENEWED:
		moved = !v->rec.has_lease4 || !addr_same(&v->rec.lease4.addr, &l->addr) ||
			!addr_same(&v->rec.lease4.router, &l->router) ||
			v->rec.lease4.plen != l->plen;
		v->rec.lease4 = *l;
		v->rec.has_lease4 = true;
		lease_metric(d, "ipv4", "renewed");
		log_debug("devices: %s: dhcpv4 renewed %s for %us", v->macs, a, l->lease_s);
		break;
	case DHCP4_EV_LOST:
	default:
		v->rec.has_lease4 = false;
		lease_metric(d, "ipv4", "lost");
		device_note(v, EVENT_APPLY, "dhcpv4 lost %s", a);
		moved = true;
		break;
	}
	v->dirty |= DIRTY_STORE | DIRTY_NET;
	if (moved) {
		v->dirty |= DIRTY_RELAY;
		d->nft_dirty = true;
	}
	status_update(v);
	devices_schedule(d);
}

static void dhcp6_event_cb(void *arg, enum dhcp6_event ev, const struct dhcp6_lease *l)
{
	struct device *v = arg;
	struct devices *d = v->d;
	char a[ADDR_STRLEN];

	if (!v->identity)
		return;
	addr_str(&l->addr, a, sizeof(a));
	switch (ev) {
	case DHCP6_EV_BOUND:
		v->rec.lease6 = *l;
		v->rec.has_lease6 = true;
		lease_metric(d, "ipv6", "acquired");
		device_note(v, EVENT_APPLY, "dhcpv6 acquired %s", a);
		break;
	case DHCP6_EV_RENEWED:
		v->rec.lease6 = *l;
		v->rec.has_lease6 = true;
		lease_metric(d, "ipv6", "renewed");
		log_debug("devices: %s: dhcpv6 renewed %s for %us", v->macs, a, l->valid_s);
		break;
	case DHCP6_EV_LOST:
	default:
		v->rec.has_lease6 = false;
		lease_metric(d, "ipv6", "lost");
		device_note(v, EVENT_APPLY, "dhcpv6 lost %s", a);
		break;
	}
	v->dirty |= DIRTY_STORE | DIRTY_NET;
	wan6_update(v);
	status_update(v);
	devices_schedule(d);
}

static void client4_start(struct device *v)
{
	const struct conf_devices *c = dconf(v->d);
	struct dhcp4_opts o = {
		.ifindex = v->ifindex,
		.hostname = v->rec.hostname[0] ? v->rec.hostname : NULL,
		.retry_min_ms = c->dhcp4_retry_min_ms,
		.retry_max_ms = c->dhcp4_retry_max_ms,
	};
	const struct dhcp4_lease *kept = NULL;
	int r;

	memcpy(o.mac, v->rec.mac, 6);
	if (v->rec.has_lease4 && lease4_left(&v->rec.lease4))
		kept = &v->rec.lease4;
	r = dhcp4_client_new(v->d->env->base, &o, dhcp4_event_cb, v, &v->c4);
	if (r == 0)
		r = dhcp4_client_start(v->c4, kept);
	if (r < 0) {
		log_warnx("devices: %s: dhcpv4 client on %s: %s", v->macs, v->rec.ifname,
			strerror(-r));
		set_error(v->d, "%s: dhcpv4 client: %s", v->macs, strerror(-r));
		if (v->c4)
			client4_retire(v->d, v->c4);
		v->c4 = NULL;
		return;
	}
	if (kept) {
		char a[ADDR_STRLEN];

		log_info("devices: %s: dhcpv4 renewing the kept lease of %s", v->macs,
			addr_str(&kept->addr, a, sizeof(a)));
	}
}

static void client6_start(struct device *v)
{
	const struct conf_devices *c = dconf(v->d);
	struct dhcp6_opts o = {
		.ifindex = v->ifindex,
		.duid = v->rec.duid,
		.duid_len = v->rec.duid_len,
		.iaid = v->rec.iaid,
		.solicit_max_ms = c->dhcp6_retry_max_ms,
	};
	const struct dhcp6_lease *kept = NULL;
	int r;

	if (v->c6)
		return;
	memcpy(o.mac, v->rec.mac, 6);
	if (v->rec.has_lease6 && lease6_left(&v->rec.lease6))
		kept = &v->rec.lease6;
	r = dhcp6_client_new(v->d->env->base, &o, dhcp6_event_cb, v, &v->c6);
	if (r == 0)
		r = dhcp6_client_start(v->c6, kept);
	if (r < 0) {
		log_warnx("devices: %s: dhcpv6 client on %s: %s", v->macs, v->rec.ifname,
			strerror(-r));
		set_error(v->d, "%s: dhcpv6 client: %s", v->macs, strerror(-r));
		if (v->c6)
			client6_retire(v->d, v->c6);
		v->c6 = NULL;
	}
}

/* DHCPv6 runs where the upstream's RA says addresses come by DHCPv6 (M), or a lease is kept. */
static bool want_dhcp6(const struct device *v)
{
	const struct devices *d = v->d;

	if (!dconf(d)->ipv6)
		return false;
	if (v->rec.has_lease6 && lease6_left(&v->rec.lease6))
		return true;
	return d->ra_seen && d->ra.managed;
}

/* ------------------------------------------------------------------ identity */

static int slaac_dump_cb(const struct nl_addr *a, void *arg);

/* Make v's macvlan (or adopt it) and start its clients.  On failure, try again later. */
static void identity_make(struct device *v)
{
	struct devices *d = v->d;
	struct dev_net_want w;
	int ifindex = 0, r;

	device_want(v, &w);
	r = dev_net_link(d->net, &w, &ifindex);
	if (r < 0) {
		log_warnx("devices: %s: macvlan %s on %s: %s: trying again in %ds", v->macs,
			v->rec.ifname, d->wan, strerror(-r), RETRY_IDENTITY_MS / 1000);
		set_error(d, "%s: macvlan %s: %s", v->macs, v->rec.ifname, strerror(-r));
		v->retry_at_ms = now_ms() + RETRY_IDENTITY_MS;
		if (v->rec.status != DEV_DISCOVERED) {
			v->rec.status = DEV_DISCOVERED;
			v->dirty |= DIRTY_STORE;
		}
		return;
	}
	v->retry_at_ms = 0;
	v->ifindex = ifindex;
	v->identity = true;
	v->n_slaac = 0;
	(void)nl_addr_dump(d->nl, AF_INET6, ifindex, slaac_dump_cb, d);
	v->dirty |= DIRTY_ALL;
	d->nft_dirty = true;
	if (dconf(d)->ipv4)
		client4_start(v);
	if (want_dhcp6(v))
		client6_start(v);
	wan6_update(v);
	if (v->rec.status != DEV_ACTIVE && v->rec.status != DEV_ACQUIRING)
		device_note(v, EVENT_APPLY, "identity %s on %s", v->rec.ifname, d->wan);
	status_update(v);
	devices_schedule(d);
}

/* The macvlan goes when the release is done or had its time; a device leaving is gone. */
static void teardown_finish(struct device *v)
{
	struct devices *d = v->d;
	int r;

	v->teardown_at_ms = v->teardown_end_ms = 0;
	if (v->c6) {
		client6_retire(d, v->c6);
		v->c6 = NULL;
	}
	if (v->identity)
		return; /* served again meanwhile: the macvlan stays */
	r = dev_net_device_del(d->net, v->rec.mac, v->rec.slot);
	if (r < 0 && r != -ENODEV && r != -ENOENT)
		log_warnx("devices: %s: removing %s: %s", v->macs, v->rec.ifname, strerror(-r));
	v->ifindex = 0;
	if (v->leaving) {
		v->leaving = false;
		v->rec.status = DEV_INACTIVE;
		v->dirty |= DIRTY_STORE;
		device_note(v, EVENT_CHANGE, "left (silent for %ums)", dconf(d)->grace_ms);
	}
}

/*
 * Take v's identity down: the clients release their leases (a device that left) or stop
 * without a word (egressd stops, or the macvlan is made again), the relay's listeners go.
 */
static void identity_drop(struct device *v, bool release)
{
	struct devices *d = v->d;

	if (!v->identity)
		return;
	v->identity = false;
	if (v->c4) {
		if (release)
			dhcp4_client_release(v->c4);
		else
			dhcp4_client_stop(v->c4);
		client4_retire(d, v->c4);
		v->c4 = NULL;
	}
	if (v->c6) {
		if (release) {
			dhcp6_client_release(v->c6);
			if (dhcp6_client_state(v->c6) != DHCP6_STOPPED) {
				/* the RELEASE waits for its REPLY on the macvlan */
				v->teardown_end_ms = now_ms() + TEARDOWN_MS;
				v->teardown_at_ms = now_ms() + TEARDOWN_POLL_MS;
			}
		} else
			dhcp6_client_stop(v->c6);
		if (!v->teardown_at_ms) {
			client6_retire(d, v->c6);
			v->c6 = NULL;
		}
	}
	if (d->relay)
		(void)dev_relay_set(d->relay, v->rec.mac, NULL, NULL, NULL, 0);
	v->n_slaac = 0;
	d->nft_dirty = true;
	if (release && !v->teardown_at_ms)
		teardown_finish(v);
	devices_schedule(d);
}

/* Stop v's clients and make its macvlan again (kept leases are renewed). */
static void identity_restart(struct device *v)
{
	identity_drop(v, false);
	v->ifindex = 0;
	identity_make(v);
}

static void device_deny(struct device *v, enum deny_why why)
{
	bool was = v->rec.status == DEV_DENIED && v->denied == why;

	v->denied = why;
	v->making = false;
	if (v->identity) {
		identity_drop(v, true);
		if (v->rec.has_lease4 || v->rec.has_lease6)
			lease_metric(v->d, v->rec.has_lease4 ? "ipv4" : "ipv6", "released");
		v->rec.has_lease4 = v->rec.has_lease6 = false;
		v->rec.wan6 = (struct cidr){0};
		v->rec.v6_source = DEV_V6_NONE;
	}
	if (was)
		return;
	v->rec.status = DEV_DENIED;
	v->dirty |= DIRTY_STORE;
	device_note(v, EVENT_CHANGE, "denied: %s", deny_why_name[why]);
}

static enum deny_why device_policy(const struct devices *d, const uint8_t mac[6])
{
	if (mac_in((const uint8_t(*)[6])d->deny, d->n_deny, mac))
		return DENY_LIST;
	if (d->n_allow && !mac_in((const uint8_t(*)[6])d->allow, d->n_allow, mac))
		return DENY_ALLOW;
	return DENY_NONE;
}

/* v is present: serve it if it may be. */
static void device_serve(struct device *v)
{
	struct devices *d = v->d;
	enum deny_why why = device_policy(d, v->rec.mac);

	if (why == DENY_NONE && !v->identity && !v->making &&
		served_count(d) >= (size_t)dconf(d)->max_devices)
		why = DENY_MAX;
	if (why != DENY_NONE) {
		device_deny(v, why);
		return;
	}
	v->denied = DENY_NONE;
	if (v->identity || v->making)
		return;
	if (v->teardown_at_ms) {
		/* back while its release was on the way: the macvlan is adopted again */
		if (v->c6) {
			client6_retire(d, v->c6);
			v->c6 = NULL;
		}
		v->teardown_at_ms = v->teardown_end_ms = 0;
		v->leaving = false;
	}
	if (v->rec.slot >= d->slots) {
		v->rec.slot = slot_alloc(d);
		v->dirty |= DIRTY_STORE;
		if (v->rec.slot == SLOT_NONE) {
			device_deny(v, DENY_MAX);
			return;
		}
	}
	if (!v->rec.duid_len) {
		/* made once, kept in the store: the server sees the same client for good */
		v->rec.duid_len = dhcp6_duid_ll(v->rec.mac, v->rec.duid);
		v->rec.iaid = (uint32_t)v->rec.mac[2] << 24 | (uint32_t)v->rec.mac[3] << 16 |
			      (uint32_t)v->rec.mac[4] << 8 | v->rec.mac[5];
		v->dirty |= DIRTY_STORE;
	}
	if (v->rec.status == DEV_INACTIVE || v->rec.status == DEV_DENIED) {
		v->rec.status = DEV_DISCOVERED;
		device_note(v, EVENT_CHANGE, "back on %s", d->lan);
	}
	/* made a few per loop turn: 200 devices at once do not hold the loop for seconds */
	v->making = true;
	event_active(d->make_ev, EV_TIMEOUT, 0);
}

static void make_cb(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	int made = 0;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (!v->making)
			continue;
		if (made == MAKE_BURST) {
			event_active(d->make_ev, EV_TIMEOUT, 0);
			break;
		}
		v->making = false;
		if (!v->present || v->identity || v->rec.status == DEV_DENIED)
			continue;
		identity_make(v);
		made++;
	}
}

/* v answered on the LAN. */
static void device_heard(struct device *v)
{
	int64_t s = now_s();

	v->heard_ms = now_ms();
	v->probe_at_ms = 0;
	v->probed_ms = 0;
	if (s - v->rec.last_seen >= LAST_SEEN_WRITE_S || !v->present) {
		v->rec.last_seen = s;
		v->dirty |= DIRTY_STORE;
	}
	if (!v->present) {
		v->present = true;
		device_serve(v);
	} else if (!v->identity && v->rec.status == DEV_DENIED && v->denied == DENY_MAX &&
		   served_count(v->d) < (size_t)dconf(v->d)->max_devices)
		device_serve(v);
	devices_schedule(v->d);
}

/* v was silent for grace_ms: it has left. */
static void device_leave(struct device *v)
{
	struct devices *d = v->d;
	bool had4 = v->rec.has_lease4, had6 = v->rec.has_lease6;

	v->present = false;
	v->making = false;
	if (v->rec.status == DEV_DENIED)
		return;
	if (had4)
		lease_metric(d, "ipv4", "released");
	if (had6)
		lease_metric(d, "ipv6", "released");
	if (had4 || had6)
		device_note(v, EVENT_APPLY, "silent for %ums: leases released", dconf(d)->grace_ms);
	v->rec.has_lease4 = v->rec.has_lease6 = false;
	v->rec.wan6 = (struct cidr){0};
	v->rec.v6_source = DEV_V6_NONE;
	v->dirty |= DIRTY_STORE;
	v->leaving = true;
	/* inactive once the macvlan is gone: at once, or when the DHCPv6 RELEASE is done */
	identity_drop(v, true);
	if (v->leaving && !v->teardown_at_ms)
		teardown_finish(v);
}

/* Ask the kernel to probe the neighbour now (unicast ARP or NS to its MAC). */
static void neigh_probe(struct devices *d, const struct addr *dst, const uint8_t mac[6])
{
	struct nl_neigh n = {
		.family = dst->family,
		.ifindex = d->lan_ifindex,
		.dst = *dst,
		.lladdr_len = 6,
		.state = NUD_PROBE,
	};
	int r;

	if (!dst->family)
		return;
	memcpy(n.lladdr, mac, 6);
	r = nl_neigh_apply(d->nl, NL_REPLACE, &n);
	if (r < 0)
		log_debug("devices: probing a neighbour on %s: %s", d->lan, strerror(-r));
}

/* ------------------------------------------------------------------ the loop's work */

/* dev_net_ct_forget(), logged. */
static void ct_forget(struct device *v, const struct addr *lan4, const struct addr *wan4)
{
	char a[ADDR_STRLEN];
	int r = dev_net_ct_forget(v->d->net, lan4, wan4);

	addr_str(wan4->family ? wan4 : lan4, a, sizeof(a));
	if (r < 0)
		log_warnx("devices: %s: conntrack entries of %s: %s", v->macs, a, strerror(-r));
	else if (r > 0)
		log_info("devices: %s: %d conntrack entries of %s %s deleted", v->macs, r,
			wan4->family ? "its old WAN address" : "its LAN address without NAT", a);
}

/*
 * The table just committed holds every device with an identity as it is now.  A device
 * whose SNAT went or changed address loses the conntrack entries of the old one: its
 * flows (a UDP stream that never pauses, a TCP connection) would keep leaving with an
 * address that is no longer its own.
 */
static void nft_committed(struct devices *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];
		struct dev_net_want w = {0};

		if (v->identity)
			device_want(v, &w);
		if (!v->nft_has)
			v->nft_wan4 = v->nft_lan4 = (struct addr){0};
		if (!addr_same(&v->nft_wan4, &w.wan4.addr) || !addr_same(&v->nft_lan4, &w.lan4)) {
			if (v->nft_wan4.family)
				ct_forget(v, &v->nft_lan4, &v->nft_wan4);
			if (w.wan4.addr.family)
				ct_forget(v, &w.lan4, &(struct addr){0});
		}
		v->nft_has = v->identity;
		v->nft_lan4 = w.lan4;
		v->nft_wan4 = w.wan4.addr;
		v->nft_wan6 = w.wan6_src;
	}
}

/* Once per loop turn: the store in one transaction, then the kernel, then the relay. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	bool store = d->n_hist > 0, net_more = false, again = false;
	int net_done = 0, r;

	(void)fd;
	(void)what;
	d->flush_pending = false;
	for (size_t i = 0; i < d->n && !store; i++)
		store = d->v[i]->dirty & DIRTY_STORE;
	if (store && d->st) {
		r = dev_store_begin(d->st);
		for (size_t i = 0; i < d->n && r == 0; i++)
			if (d->v[i]->dirty & DIRTY_STORE)
				r = dev_store_put(d->st, &d->v[i]->rec);
		for (size_t i = 0; i < d->n_hist && r == 0; i++)
			r = dev_store_history_add(d->st, d->hist[i].mac, d->hist[i].event);
		if (r == 0)
			r = dev_store_commit(d->st);
		if (r < 0) {
			log_warnx("devices: writing %s: %s", d->store_path, strerror(-r));
			set_error(d, "store: %s", strerror(-r));
		}
		for (size_t i = 0; i < d->n; i++)
			d->v[i]->dirty &= ~(unsigned)DIRTY_STORE;
		d->n_hist = 0;
	}
	for (size_t i = 0; i < d->n && d->net; i++) {
		struct device *v = d->v[i];
		struct dev_net_want w;

		if (!(v->dirty & DIRTY_NET))
			continue;
		if (net_done == NET_BURST) {
			/* the rest at the next turn: a burst of leases does not hold the loop */
			net_more = true;
			break;
		}
		net_done++;
		v->dirty &= ~(unsigned)DIRTY_NET;
		if (!v->identity)
			continue;
		device_want(v, &w);
		r = dev_net_device(d->net, &w);
		if (r < 0) {
			if (log_ratelimit(&d->rl_net))
				log_warnx("devices: %s: addresses, routes and rules: %s", v->macs,
					strerror(-r));
			set_error(d, "%s: addresses, routes and rules: %s", v->macs, strerror(-r));
		}
	}
	if (d->nft_dirty && d->net && now_ms() < d->nft_at_ms + d->nft_gap_ms) {
		/*
		 * A burst of leases makes one table, not one per loop turn; and the whole table
		 * (a few rules per device) is made again only after NFT_SHARE times what the
		 * last took, so that with hundreds of devices its rebuilds take at most about
		 * 1/NFT_SHARE of the loop while leases keep coming.
		 */
		if (!evtimer_pending(d->nft_ev, NULL)) {
			uint64_t left = d->nft_at_ms + d->nft_gap_ms - now_ms();
			struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};

			evtimer_add(d->nft_ev, &tv);
		}
	} else if (d->nft_dirty && d->net) {
		size_t n;
		struct dev_net_want *w = wants_all(d, &n);
		uint64_t took;

		d->nft_at_ms = now_ms();
		d->nft_dirty = false;
		r = dev_net_nft(d->net, w, n);
		free(w);
		took = now_ms() - d->nft_at_ms;
		d->nft_gap_ms = took * NFT_SHARE > NFT_GAP_MS ? took * NFT_SHARE : NFT_GAP_MS;
		if (r < 0) {
			log_warnx("devices: nftables table %s: %s", DEV_NFT_TABLE, strerror(-r));
			set_error(d, "nftables: %s", strerror(-r));
		} else
			nft_committed(d);
	}
	/* ACTIVE now that the kernel holds it; the store gets it at the next turn */
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];
		enum dev_status was = v->rec.status;

		status_update(v);
		if (v->rec.status != was)
			again = true;
	}
	for (size_t i = 0; i < d->n && d->relay; i++) {
		struct device *v = d->v[i];
		bool on;

		if (!(v->dirty & DIRTY_RELAY))
			continue;
		v->dirty &= ~(unsigned)DIRTY_RELAY;
		on = v->identity && v->rec.wan6.addr.family && v->rec.lan4.family;
		(void)dev_relay_set(d->relay, v->rec.mac, on ? &v->rec.wan6.addr : NULL,
			on ? &v->rec.lan4 : NULL, v->fwds, on ? v->n_fwds : 0);
	}
	tick_arm(d);
	if (net_more || again)
		devices_schedule(d);
}

static void nft_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	devices_schedule(arg);
}

static void devices_schedule(struct devices *d)
{
	if (d->flush_pending || !d->flush_ev)
		return;
	d->flush_pending = true;
	event_active(d->flush_ev, EV_TIMEOUT, 0);
}

static uint32_t probe_after_ms(const struct devices *d)
{
	uint32_t g = dconf(d)->grace_ms / 2;

	return g < PROBE_MAX_MS ? g : PROBE_MAX_MS;
}

static uint32_t probe_every_ms(const struct devices *d)
{
	uint32_t g = dconf(d)->grace_ms / 4;

	if (g > PROBE_MAX_MS)
		g = PROBE_MAX_MS;
	return g < PROBE_MIN_MS ? PROBE_MIN_MS : g;
}

/*
 * When v has left: silent for grace_ms, and probed PROBE_ANSWER_MS before without an
 * answer.  A loop that was busy (its events not read yet) makes no device leave: the probe
 * goes out late, and its answer is waited for.
 */
static uint64_t leave_at(const struct devices *d, const struct device *v)
{
	uint64_t at = v->heard_ms + dconf(d)->grace_ms;
	uint64_t probed = v->probed_ms ? v->probed_ms : v->heard_ms + probe_after_ms(d);

	return at > probed + PROBE_ANSWER_MS ? at : probed + PROBE_ANSWER_MS;
}

static void min_at(uint64_t *next, uint64_t at)
{
	if (at && (!*next || at < *next))
		*next = at;
}

/* Arm the one timer at the next thing due: a probe, a leave, a retry, a teardown. */
static void tick_arm(struct devices *d)
{
	uint64_t next = 0, now = now_ms();
	struct timeval tv;

	if (!d->tick_ev)
		return;
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		min_at(&next, v->teardown_at_ms);
		min_at(&next, v->relink_at_ms);
		if (!v->present || v->rec.status == DEV_DENIED)
			continue;
		min_at(&next, v->retry_at_ms);
		min_at(&next, leave_at(d, v));
		if (v->probe_at_ms)
			min_at(&next, v->probe_at_ms);
		else
			min_at(&next, v->heard_ms + probe_after_ms(d));
	}
	if (!next) {
		evtimer_del(d->tick_ev);
		return;
	}
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(d->tick_ev, &tv);
}

/* The LAN's neighbour table, read once for the devices due to leave at one tick. */
struct lan_table {
	bool read;
	struct nl_neigh *v;
	size_t n;
};

static int lan_table_cb(const struct nl_neigh *n, void *arg)
{
	struct lan_table *t = arg;

	if (n->lladdr_len != 6 || (n->flags & NTF_PROXY))
		return 0;
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n++] = *n;
	return 0;
}

/*
 * Before a device is said to have left, the kernel's neighbour table is asked (netlink
 * events may have been lost while the loop was busy): an entry REACHABLE is an answer; one
 * being probed, or STALE, waits for another probe; FAILED or none: it has left.
 */
static bool still_there(struct devices *d, struct device *v, struct lan_table *t, uint64_t now)
{
	uint16_t states = 0;

	if (!t->read) {
		t->read = true;
		(void)nl_neigh_dump(d->nl, AF_UNSPEC, d->lan_ifindex, false, lan_table_cb, t);
	}
	for (size_t i = 0; i < t->n; i++)
		if (!memcmp(t->v[i].lladdr, v->rec.mac, 6))
			states |= t->v[i].state;
	if (states & NUD_REACHABLE) {
		device_heard(v);
		return true;
	}
	if (states & (NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_INCOMPLETE)) {
		if (states & NUD_STALE)
			neigh_probe(d, &v->probe_dst, v->rec.mac);
		v->probed_ms = now;
		v->probe_at_ms = now + probe_every_ms(d);
		return true;
	}
	return false;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	uint64_t now = now_ms();
	struct lan_table lan = {0};

	(void)fd;
	(void)what;
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (v->teardown_at_ms && now >= v->teardown_at_ms) {
			if (v->c6 && dhcp6_client_state(v->c6) != DHCP6_STOPPED &&
				now < v->teardown_end_ms)
				v->teardown_at_ms = now + TEARDOWN_POLL_MS;
			else
				teardown_finish(v);
		}
		if (v->relink_at_ms && now >= v->relink_at_ms) {
			struct nl_link l;

			v->relink_at_ms = 0;
			/* unless made again meanwhile (egressctl diagnose --fix-all) */
			if (v->identity && (nl_link_get(d->nl, 0, v->rec.ifname, &l) < 0 ||
						   l.ifindex != v->ifindex))
				identity_restart(v);
		}
		if (!v->present || v->rec.status == DEV_DENIED)
			continue;
		if (now >= leave_at(d, v) && !still_there(d, v, &lan, now)) {
			device_leave(v);
			continue;
		}
		if (v->retry_at_ms && now >= v->retry_at_ms) {
			v->retry_at_ms = 0;
			device_serve(v);
		}
		if (now >= v->heard_ms + probe_after_ms(d) && now >= v->probe_at_ms) {
			neigh_probe(d, &v->probe_dst, v->rec.mac);
			v->probe_at_ms = now + probe_every_ms(d);
			if (!v->probed_ms)
				v->probed_ms = now;
		}
	}
	free(lan.v);
	devices_schedule(d);
	tick_arm(d);
}

/* ------------------------------------------------------------------ WAN changes */

/* Whether v's DHCPv6 address is outside every prefix the last RA gave (an RA without
 * prefixes says nothing about it). */
static bool lease6_off_link(const struct devices *d, const struct device *v)
{
	size_t n = 0;

	if (!v->rec.has_lease6 || !d->ra_seen)
		return false;
	for (size_t i = 0; i < d->ra.n_prefixes; i++) {
		if (!d->ra.prefixes[i].valid_s)
			continue;
		n++;
		if (cidr_contains(&d->ra.prefixes[i].prefix, &v->rec.lease6.addr))
			return false;
	}
	return n > 0;
}

static void recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	size_t n = 0;

	(void)fd;
	(void)what;
	d->recheck_last_ms = now_ms();
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (!v->identity)
			continue;
		n++;
		if (d->recheck4 && v->c4)
			dhcp4_client_recheck(v->c4);
		if (d->recheck6 && v->c6 && lease6_off_link(d, v)) {
			/* renumbered: the old server is gone with its prefix, ask afresh */
			char a[ADDR_STRLEN];

			addr_str(&v->rec.lease6.addr, a, sizeof(a));
			dhcp6_client_stop(v->c6);
			client6_retire(d, v->c6);
			v->c6 = NULL;
			v->rec.has_lease6 = false;
			lease_metric(d, "ipv6", "lost");
			device_note(v, EVENT_APPLY,
				"dhcpv6 %s is not on the upstream's prefixes any more", a);
			v->dirty |= DIRTY_STORE | DIRTY_NET;
			wan6_update(v);
			status_update(v);
			if (want_dhcp6(v))
				client6_start(v);
		} else if (d->recheck6 && v->c6)
			dhcp6_client_recheck(v->c6);
		else if (d->recheck6 && want_dhcp6(v))
			client6_start(v);
	}
	d->rechecks++;
	if (d->m_rechecks)
		metrics_counter_add(d->m_rechecks, 1);
	log_info("devices: %s: %zu devices confirm their %s leases", d->recheck_why, n,
		d->recheck4 && d->recheck6 ? "IPv4 and IPv6"
		: d->recheck4		   ? "IPv4"
					   : "IPv6");
	if (d->env->events)
		event_log_add(d->env->events, EVENT_APPLY, NULL,
			json_pack("{s:s, s:s, s:I}", "module", "devices", "why", d->recheck_why,
				"devices", (json_int_t)n),
			"devices: %s: %zu devices confirm their leases", d->recheck_why, n);
	d->recheck4 = d->recheck6 = false;
	d->recheck_why[0] = '\0';
}

/*
 * Each device confirms its leases on its own client, soon: the WAN's events of a burst make
 * one round, and rounds are RECHECK_GAP_MS apart at least.  Only the WAN's own events come
 * here, never the macvlans' (whose changes are ours).
 */
static void recheck_schedule(struct devices *d, bool v4, bool v6, const char *why)
{
	uint64_t now = now_ms(), delay = RECHECK_DELAY_MS;
	struct timeval tv;

	d->recheck4 |= v4 && dconf(d)->ipv4;
	d->recheck6 |= v6 && dconf(d)->ipv6;
	if (!d->recheck4 && !d->recheck6)
		return;
	if (!d->recheck_why[0])
		snprintf(d->recheck_why, sizeof(d->recheck_why), "%s", why);
	if (evtimer_pending(d->recheck_ev, NULL))
		return;
	if (d->recheck_last_ms && d->recheck_last_ms + RECHECK_GAP_MS > now + delay)
		delay = d->recheck_last_ms + RECHECK_GAP_MS - now;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(d->recheck_ev, &tv);
}

static void wan_link(struct devices *d, const struct nl_link *l)
{
	bool up = (l->flags & IFF_UP) && (l->flags & IFF_LOWER_UP);

	if (up && !d->wan_up) {
		log_info("devices: %s is up", d->wan);
		recheck_schedule(d, true, true, "WAN link up");
		if (d->raw)
			(void)ra_watch_solicit(d->raw);
	} else if (!up && d->wan_up)
		log_info("devices: %s is down: leases are confirmed when it comes back", d->wan);
	d->wan_up = up;
}

static void ra_info_cb(void *arg, const struct ra_info *ra);

/* The WAN interface was made again (new ifindex): every identity is made again on it. */
static void wan_recreated(struct devices *d, const struct nl_link *l)
{
	int r;

	log_warnx("devices: %s is back as ifindex %d: the devices' macvlans are made again", d->wan,
		l->ifindex);
	d->wan_ifindex = l->ifindex;
	d->n_wan_addrs = 0;
	ra_watch_free(d->raw);
	d->raw = NULL;
	r = ra_watch_new(d->env->base, d->wan_ifindex, ra_info_cb, d, &d->raw);
	if (r < 0)
		log_warnx("devices: router advertisements on %s: %s", d->wan, strerror(-r));
	else
		(void)ra_watch_solicit(d->raw);
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i]->identity)
			identity_restart(d->v[i]);
	wan_link(d, l);
}

static bool wan_addr_has(const struct devices *d, const struct cidr *c, size_t *at)
{
	for (size_t i = 0; i < d->n_wan_addrs; i++)
		if (cidr_same(&d->wan_addrs[i], c)) {
			if (at)
				*at = i;
			return true;
		}
	return false;
}

/* The WAN's own address set changed (not its lifetimes): returns whether it did. */
static bool wan_addr_event(struct devices *d, const struct nl_addr *a, bool del)
{
	size_t at;

	if (a->scope != RT_SCOPE_UNIVERSE)
		return false;
	if (del) {
		if (!wan_addr_has(d, &a->local, &at))
			return false;
		d->wan_addrs[at] = d->wan_addrs[--d->n_wan_addrs];
		return true;
	}
	if (wan_addr_has(d, &a->local, NULL) || d->n_wan_addrs == ARRAY_SIZE(d->wan_addrs))
		return false;
	d->wan_addrs[d->n_wan_addrs++] = a->local;
	return true;
}

static int wan_addr_dump_cb(const struct nl_addr *a, void *arg)
{
	(void)wan_addr_event(arg, a, false);
	return 0;
}

/* An IPv6 address the kernel made on a device's macvlan (SLAAC), or one that failed DAD. */
static void macvlan_addr_event(struct device *v, const struct nl_addr *a, bool del)
{
	bool dhcp6 = v->rec.has_lease6 && addr_eq(&a->local.addr, &v->rec.lease6.addr);
	size_t i;

	if (a->local.addr.family != AF_INET6 || a->scope != RT_SCOPE_UNIVERSE)
		return;
	if (!del && (a->flags & IFA_F_DADFAILED)) {
		char s[ADDR_STRLEN];

		addr_str(&a->local.addr, s, sizeof(s));
		if (dhcp6 && v->c6) {
			device_note(v, EVENT_ERROR,
				"%s failed duplicate address detection: "
				"declined",
				s);
			dhcp6_client_decline(v->c6);
		} else
			log_warnx("devices: %s: %s failed duplicate address detection", v->macs, s);
		del = true; /* unusable either way */
	}
	if (dhcp6 || a->local.plen == 128)
		return; /* the DHCPv6 address, ours */
	for (i = 0; i < v->n_slaac; i++)
		if (addr_eq(&v->slaac[i].addr.addr, &a->local.addr))
			break;
	if (del || (a->flags & IFA_F_TENTATIVE)) {
		if (i == v->n_slaac)
			return;
		v->slaac[i] = v->slaac[--v->n_slaac];
	} else {
		bool dep = (a->flags & IFA_F_DEPRECATED) || a->preferred_lft == 0;

		if (i == v->n_slaac) {
			if (v->n_slaac == SLAAC_MAX)
				return;
			v->n_slaac++;
		}
		v->slaac[i].addr = a->local;
		v->slaac[i].deprecated = dep;
	}
	wan6_update(v);
}

static int slaac_dump_cb(const struct nl_addr *a, void *arg)
{
	struct device *v = device_by_ifindex(arg, a->ifindex);

	if (v)
		macvlan_addr_event(v, a, false);
	return 0;
}

static bool prefixes_same(const struct ra_info *a, const struct ra_info *b)
{
	size_t na = 0, nb = 0;

	for (size_t i = 0; i < a->n_prefixes; i++) {
		bool found = false;

		if (!a->prefixes[i].valid_s)
			continue;
		na++;
		for (size_t j = 0; j < b->n_prefixes && !found; j++)
			found = b->prefixes[j].valid_s &&
				cidr_same(&a->prefixes[i].prefix, &b->prefixes[j].prefix);
		if (!found)
			return false;
	}
	for (size_t j = 0; j < b->n_prefixes; j++)
		nb += b->prefixes[j].valid_s != 0;
	return na == nb;
}

/* A router advertisement on the WAN: what the upstream offers over IPv6. */
static void ra_info_cb(void *arg, const struct ra_info *ra)
{
	struct devices *d = arg;
	struct addr router = {0};
	bool first = !d->ra_seen, same_router = d->ra_seen && addr_same(&d->ra.router, &ra->router);
	bool renumbered = same_router && !prefixes_same(&d->ra, ra);
	bool managed_now = ra->managed && !(d->ra_seen && d->ra.managed);

	if (ra->lifetime_s)
		router = ra->router;
	if (first || ra->managed != d->ra.managed || ra->other != d->ra.other) {
		char s[ADDR_STRLEN];

		log_info("devices: %s: router %s advertises %zu prefixes, addresses by %s%s",
			d->wan, addr_str(&ra->router, s, sizeof(s)), ra->n_prefixes,
			ra->managed ? "DHCPv6" : "SLAAC",
			ra->other ? ", other configuration by DHCPv6" : "");
	}
	if (d->st &&
		(first || ra->managed != d->ra.managed || !addr_same(&ra->router, &d->ra.router))) {
		char s[ADDR_STRLEN];

		(void)dev_store_meta_set(d->st, "upstream_ipv6", ra->managed ? "dhcpv6" : "slaac");
		(void)dev_store_meta_set(d->st, "router6", addr_str(&ra->router, s, sizeof(s)));
	}
	d->ra = *ra;
	d->ra_seen = true;
	d->ra_at_ms = clock_wall_ms();
	if (!addr_same(&router, &d->router6) && (router.family || same_router)) {
		d->router6 = router;
		for (size_t i = 0; i < d->n; i++)
			if (d->v[i]->identity)
				d->v[i]->dirty |= DIRTY_NET;
		devices_schedule(d);
	}
	if (renumbered)
		recheck_schedule(d, true, true, "the upstream's IPv6 prefixes changed");
	if (managed_now)
		for (size_t i = 0; i < d->n; i++)
			if (d->v[i]->identity && want_dhcp6(d->v[i]))
				client6_start(d->v[i]);
}

/* ------------------------------------------------------------------ the LAN */

/* A neighbour of the LAN: a device that answered, or one to probe. */
static void lan_neigh(struct devices *d, const struct nl_neigh *n, bool del, bool dump)
{
	const uint8_t *mac = n->lladdr;
	struct device *v;
	bool valid, heard;

	if (n->ifindex != d->lan_ifindex || n->lladdr_len != 6 || (n->flags & NTF_PROXY))
		return;
	if ((mac[0] & 1) || mac_zero(mac))
		return;
	v = device_find(d, mac);
	valid = !del && (n->state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE));
	/* REACHABLE is an answer; STALE is one unless it only aged from REACHABLE (a timer) */
	heard = !del && !dump &&
		((n->state & NUD_REACHABLE) ||
			((n->state & NUD_STALE) &&
				!(v && (v->nud & (NUD_REACHABLE | NUD_DELAY | NUD_PROBE)))));
	if (dump && !del && (n->state & NUD_REACHABLE))
		heard = true;
	if (!v) {
		if (!heard) {
			/* known to the kernel from before we ran: ask it whether it is there */
			if (dump && valid)
				neigh_probe(d, &n->dst, mac);
			return;
		}
		v = device_new(d, mac);
		if (!v)
			return;
	}
	v->nud = del ? 0 : n->state;
	if (valid && (n->dst.family == AF_INET || !v->probe_dst.family ||
			     v->probe_dst.family == AF_INET6))
		v->probe_dst = n->dst;
	if (valid && n->dst.family == AF_INET && !addr_same(&v->rec.lan4, &n->dst) &&
		(heard || !v->rec.lan4.family)) {
		v->rec.lan4 = n->dst;
		v->dirty |= DIRTY_ALL;
		d->nft_dirty = true;
		devices_schedule(d);
	}
	if (heard)
		device_heard(v);
	else if (dump && valid && v->present)
		neigh_probe(d, &n->dst, mac);
}

static int neigh_dump_cb(const struct nl_neigh *n, void *arg)
{
	lan_neigh(arg, n, false, true);
	return 0;
}

/* One line of dnsmasq's leases file: "expiry mac ipv4 hostname client-id". */
static int lease_line_parse(char *line, struct lan_lease *ret)
{
	char *f[5], *save = NULL;
	int n = 0;
	long long exp;
	char *end;

	for (char *t = strtok_r(line, " \t", &save); t && n < 5; t = strtok_r(NULL, " \t", &save))
		f[n++] = t;
	if (n < 4)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	exp = strtoll(f[0], &end, 10);
	if (*end || exp < 0)
		return -EINVAL;
	ret->expiry = exp;
	if (dev_mac_parse(f[1], ret->mac) < 0)
		return -EINVAL; /* "duid ...", the IPv6 lines (IAID) and other hardware types */
	if (addr_parse_family(f[2], AF_INET, &ret->lan4) < 0)
		return -EINVAL;
	if (strcmp(f[3], "*"))
		snprintf(ret->hostname, sizeof(ret->hostname), "%s", f[3]);
	return 0;
}

/*
 * Read the leases file.  A lease new or renewed since the last read is a device that just
 * talked to the LAN's server: heard.  At start, a lease still running is only probed.
 * Leases missing from one read are kept until they expire (the server rewrites the file in
 * place: a read may catch it half written).
 */
static void leases_read(struct devices *d, bool initial)
{
	char *text = NULL, *save = NULL;
	size_t len;
	int64_t now = now_s();
	int r;

	if (!d->leases_path)
		return;
	r = file_read(d->leases_path, LEASES_FILE_MAX, &text, &len);
	if (r < 0) {
		if (r != -ENOENT || initial)
			log_debug("devices: leases file %s: %s", d->leases_path, strerror(-r));
		return;
	}
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct lan_lease l, *old = NULL;
		struct device *v;
		bool news, running;

		if (lease_line_parse(line, &l) < 0)
			continue;
		for (size_t i = 0; i < d->n_leases && !old; i++)
			if (!memcmp(d->leases[i].mac, l.mac, 6))
				old = &d->leases[i];
		news = !old || old->expiry != l.expiry || !addr_same(&old->lan4, &l.lan4);
		running = !l.expiry || l.expiry > now;
		if (!old) {
			d->leases = xrealloc(d->leases, (d->n_leases + 1) * sizeof(*d->leases));
			old = &d->leases[d->n_leases++];
		}
		*old = l;
		v = device_find(d, l.mac);
		if (v && l.hostname[0] && strcmp(v->rec.hostname, l.hostname)) {
			snprintf(v->rec.hostname, sizeof(v->rec.hostname), "%s", l.hostname);
			v->dirty |= DIRTY_STORE;
		}
		if (!running || !news)
			continue;
		if (initial) {
			neigh_probe(d, &l.lan4, l.mac);
			continue;
		}
		if (!v)
			v = device_new(d, l.mac);
		if (!v)
			continue;
		if (!addr_same(&v->rec.lan4, &l.lan4)) {
			v->rec.lan4 = l.lan4;
			v->dirty |= DIRTY_ALL;
			d->nft_dirty = true;
		}
		if (!v->probe_dst.family)
			v->probe_dst = l.lan4;
		device_heard(v);
	}
	free(text);
	/* forget leases over for a day */
	for (size_t i = 0; i < d->n_leases;)
		if (d->leases[i].expiry && d->leases[i].expiry + 86400 < now)
			d->leases[i] = d->leases[--d->n_leases];
		else
			i++;
	devices_schedule(d);
}

static void leases_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	leases_read(arg, false);
}

static void inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(d->leases_path, '/');
	bool hit = false;
	ssize_t n;

	(void)what;
	base = base ? base + 1 : d->leases_path;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (e->len && !strcmp(e->name, base))
				hit = true;
			if (e->mask & IN_Q_OVERFLOW)
				hit = true;
			p += sizeof(*e) + e->len;
		}
	}
	if (hit) {
		struct timeval tv = {0, LEASES_DEBOUNCE_MS * 1000};

		evtimer_add(d->leases_ev, &tv);
	}
}

static void leases_unwatch(struct devices *d)
{
	if (d->inotify_ev)
		event_free(d->inotify_ev);
	d->inotify_ev = NULL;
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	d->inotify_fd = -1;
	free(d->leases_path);
	d->leases_path = NULL;
}

/* Follow the leases file: inotify on its folder (the server may write it in place or
 * replace it). */
static void leases_watch(struct devices *d, const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	leases_unwatch(d);
	if (!path)
		return;
	d->leases_path = xstrdup(path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0 ||
		inotify_add_watch(d->inotify_fd, dir,
			IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE) < 0) {
		log_warn("devices: following leases file %s", path);
		if (d->inotify_fd >= 0)
			close(d->inotify_fd);
		d->inotify_fd = -1;
		return;
	}
	d->inotify_ev = event_new(d->env->base, d->inotify_fd, EV_READ | EV_PERSIST, inotify_cb, d);
	event_add(d->inotify_ev, NULL);
}

/* ------------------------------------------------------------------ netlink events */

static void netlink_cb(const struct nl_event *ev, void *arg)
{
	struct devices *d = arg;
	struct device *v;

	switch (ev->type) {
	case NL_EVENT_NEIGH:
		lan_neigh(d, &ev->neigh, ev->del, false);
		break;
	case NL_EVENT_LINK:
		if (ev->link.ifindex == d->wan_ifindex) {
			if (ev->del) {
				log_warnx("devices: %s is gone: the devices' macvlans with it",
					d->wan);
				d->wan_up = false;
			} else
				wan_link(d, &ev->link);
		} else if (!ev->del && !strcmp(ev->link.name, d->wan)) {
			wan_recreated(d, &ev->link);
		} else if (ev->link.ifindex == d->lan_ifindex && ev->del) {
			log_warnx("devices: %s is gone: devices are found again when it is back",
				d->lan);
			d->lan_ifindex = 0;
		} else if (!ev->del && !d->lan_ifindex && !strcmp(ev->link.name, d->lan)) {
			d->lan_ifindex = ev->link.ifindex;
		} else if (ev->del && (v = device_by_ifindex(d, ev->link.ifindex)) && v->identity &&
			   !v->relink_at_ms) {
			log_warnx("devices: %s: macvlan %s was deleted: made again in %ds", v->macs,
				v->rec.ifname, RELINK_DELAY_MS / 1000);
			v->relink_at_ms = now_ms() + RELINK_DELAY_MS;
			tick_arm(d);
		}
		break;
	case NL_EVENT_ADDR:
		if (ev->addr.ifindex == d->wan_ifindex) {
			if (wan_addr_event(d, &ev->addr, ev->del))
				recheck_schedule(d, true, true, "the WAN's addresses changed");
		} else if ((v = device_by_ifindex(d, ev->addr.ifindex)) && v->identity) {
			macvlan_addr_event(v, &ev->addr, ev->del);
			/* An RA that refreshed SLAAC may have put the prefix's route back in main.
			 */
			if (!ev->del && ev->addr.local.addr.family == AF_INET6 &&
				!(ev->addr.flags & IFA_F_NOPREFIXROUTE) &&
				!(ev->addr.local.addr.b[0] == 0xfe &&
					(ev->addr.local.addr.b[1] & 0xc0) == 0x80))
				(void)dev_net_prune_main(d->net, v->rec.mac);
		}
		break;
	case NL_EVENT_RESYNC:
		/* events were lost: what they would have said is in the tables */
		log_info("devices: netlink events lost: reading the LAN's neighbours again");
		(void)nl_neigh_dump(d->nl, AF_UNSPEC, d->lan_ifindex, false, neigh_dump_cb, d);
		for (size_t i = 0; i < d->n; i++)
			if (d->v[i]->identity)
				(void)nl_addr_dump(
					d->nl, AF_INET6, d->v[i]->ifindex, slaac_dump_cb, d);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ devices_int.h */

/*
 * Whether forward f of v is listed: one added by hand always; an automatic one only while
 * v has a WAN address it is reached at (before that it is a promise, not a forward).
 */
static bool fwd_listed(const struct device *v, const struct dev_forward *f)
{
	return !f->automatic || v->rec.has_lease4 || v->rec.wan6.addr.family;
}

static json_t *device_json(struct devices *d, const struct device *v)
{
	json_t *o = dev_record_json(&v->rec), *f = json_array(), *sl = json_array();
	char s[CIDR_STRLEN];

	for (size_t i = 0; i < v->n_fwds; i++)
		if (fwd_listed(v, &v->fwds[i]))
			json_array_append_new(f, dev_forward_json(&v->fwds[i]));
	for (size_t i = 0; i < v->n_slaac; i++)
		json_array_append_new(sl, json_string(cidr_str(&v->slaac[i].addr, s, sizeof(s))));
	json_object_set_new(o, "forwards", f);
	json_object_set_new(o, "slaac", sl);
	json_object_set_new(o, "dhcp4_state",
		json_string(v->c4 ? dhcp4_state_name[dhcp4_client_state(v->c4)] : "stopped"));
	json_object_set_new(o, "dhcp6_state",
		json_string(v->c6 ? dhcp6_state_name[dhcp6_client_state(v->c6)] : "stopped"));
	json_object_set_new(o, "present", json_boolean(v->present));
	if (v->rec.status == DEV_DENIED && v->denied != DENY_NONE)
		json_object_set_new(o, "denied", json_string(deny_why_name[v->denied]));
	if (d->relay && v->identity)
		json_object_set_new(o, "relay", dev_relay_json(d->relay, v->rec.mac));
	return o;
}

static int device_cmp(const void *x, const void *y)
{
	const struct device *a = *(struct device *const *)x, *b = *(struct device *const *)y;

	return memcmp(a->rec.mac, b->rec.mac, 6);
}

/* The devices sorted by MAC (caller frees the array, not the devices). */
static struct device **devices_sorted(const struct devices *d)
{
	struct device **s = xcalloc(d->n + 1, sizeof(*s));

	memcpy(s, d->v, d->n * sizeof(*s));
	qsort(s, d->n, sizeof(*s), device_cmp);
	return s;
}

json_t *devices_list_json(struct devices *d, const char *status)
{
	int want = status ? dev_status_from_name(status) : -1;
	struct device **s = devices_sorted(d);
	json_t *a = json_array();

	for (size_t i = 0; i < d->n; i++)
		if (want < 0 || s[i]->rec.status == (enum dev_status)want)
			json_array_append_new(a, device_json(d, s[i]));
	free(s);
	return json_pack("{s:o, s:I}", "devices", a, "count", (json_int_t)json_array_size(a));
}

static int history_cb(int64_t at, const char *event, void *arg)
{
	char t[TIME_ISO_STRLEN];

	json_array_append_new(
		arg, json_pack("{s:s, s:I, s:s}", "time", time_iso(at * 1000, t, sizeof(t)), "at",
			     (json_int_t)at, "event", event));
	return 0;
}

json_t *devices_one_json(struct devices *d, const uint8_t mac[6])
{
	struct device *v = device_find(d, mac);
	json_t *o, *h;

	if (!v)
		return NULL;
	o = device_json(d, v);
	h = json_array();
	if (d->st)
		(void)dev_store_history(d->st, mac, HISTORY_SHOWN, history_cb, h);
	json_object_set_new(o, "history", h);
	return o;
}

json_t *devices_status_json(struct devices *d)
{
	const struct conf_devices *c = dconf(d);
	size_t counts[_DEV_STATUS_MAX], present = 0;
	struct dhcp4_stats s4;
	struct dhcp6_stats s6;
	json_t *o, *by = json_object(), *v6, *pfx = json_array();
	char s[CIDR_STRLEN], t[TIME_ISO_STRLEN];

	status_counts(d, counts);
	for (int i = 0; i < _DEV_STATUS_MAX; i++)
		json_object_set_new(by, dev_status_name[i], json_integer((json_int_t)counts[i]));
	for (size_t i = 0; i < d->n; i++)
		present += d->v[i]->present;
	stats_sum(d, &s4, &s6);
	for (size_t i = 0; d->ra_seen && i < d->ra.n_prefixes; i++)
		json_array_append_new(
			pfx, json_pack("{s:s, s:b, s:I, s:I}", "prefix",
				     cidr_str(&d->ra.prefixes[i].prefix, s, sizeof(s)),
				     "autonomous", d->ra.prefixes[i].autonomous, "valid",
				     (json_int_t)d->ra.prefixes[i].valid_s, "preferred",
				     (json_int_t)d->ra.prefixes[i].preferred_s));
	v6 = json_pack("{s:b, s:b, s:b, s:o}", "offered",
		d->ra_seen && (d->ra.lifetime_s || d->ra.n_prefixes || d->ra.managed), "managed",
		d->ra_seen && d->ra.managed, "other", d->ra_seen && d->ra.other, "prefixes", pfx);
	if (d->router6.family)
		json_object_set_new(v6, "router", json_string(addr_str(&d->router6, s, sizeof(s))));
	if (d->ra_seen)
		json_object_set_new(
			v6, "last_ra", json_string(time_iso(d->ra_at_ms, t, sizeof(t))));
	o = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:o, s:{s:b, s:b, s:I, s:I}, s:o, s:I, "
		      "s:s, s:s?, s:I, s:I, s:s}",
		"status", "running", "wan", d->wan, "lan", d->lan, "wan_up", d->wan_up,
		"total_devices", (json_int_t)d->n, "active_devices", (json_int_t)counts[DEV_ACTIVE],
		"present", (json_int_t)present, "devices_by_status", by, "ipv4", "asked", c->ipv4,
		"offered", s4.received > 0, "dhcp_sent", (json_int_t)s4.sent, "dhcp_received",
		(json_int_t)s4.received, "ipv6", v6, "max_devices", (json_int_t)c->max_devices,
		"store", d->store_path, "leases_file", d->leases_path, "rechecks",
		(json_int_t)d->rechecks, "started_at", (json_int_t)d->started_at, "last_error",
		d->last_error);
	{
		size_t with4 = 0, with6 = 0;

		for (size_t i = 0; i < d->n; i++) {
			with4 += d->v[i]->rec.has_lease4;
			with6 += d->v[i]->rec.wan6.addr.family != 0;
		}
		json_object_set_new(o, "devices_with_ipv4", json_integer((json_int_t)with4));
		json_object_set_new(o, "devices_with_ipv6", json_integer((json_int_t)with6));
		json_object_set_new(o, "source", json_string("daemon"));
	}
	json_object_set_new(json_object_get(o, "ipv6"), "asked", json_boolean(c->ipv6));
	json_object_set_new(
		json_object_get(o, "ipv6"), "dhcp_sent", json_integer((json_int_t)s6.sent));
	json_object_set_new(
		json_object_get(o, "ipv6"), "dhcp_received", json_integer((json_int_t)s6.received));
	return o;
}

json_t *devices_forwards_json(struct devices *d, const uint8_t *mac)
{
	struct device **s = devices_sorted(d);
	json_t *a = json_array();

	for (size_t i = 0; i < d->n; i++) {
		const struct device *v = s[i];

		if (mac && memcmp(v->rec.mac, mac, 6))
			continue;
		if (!mac && v->rec.status != DEV_ACTIVE && v->rec.status != DEV_ACQUIRING) {
			/* every device's automatic ones would be noise: only the served ones' */
			for (size_t j = 0; j < v->n_fwds; j++)
				if (!v->fwds[j].automatic)
					json_array_append_new(a, dev_forward_json(&v->fwds[j]));
			continue;
		}
		for (size_t j = 0; j < v->n_fwds; j++) {
			json_t *f;
			char ip[ADDR_STRLEN];

			if (!fwd_listed(v, &v->fwds[j]))
				continue;
			f = dev_forward_json(&v->fwds[j]);

			if (v->rec.lan4.family)
				json_object_set_new(f, "device_ip",
					json_string(addr_str(&v->rec.lan4, ip, sizeof(ip))));
			if (v->rec.has_lease4)
				json_object_set_new(f, "wan_ipv4",
					json_string(addr_str(&v->rec.lease4.addr, ip, sizeof(ip))));
			if (v->rec.wan6.addr.family)
				json_object_set_new(f, "wan_ipv6",
					json_string(addr_str(&v->rec.wan6.addr, ip, sizeof(ip))));
			json_array_append_new(a, f);
		}
	}
	free(s);
	return json_pack("{s:o, s:I}", "forwards", a, "count", (json_int_t)json_array_size(a));
}

/* The device a forward request names, by MAC or by LAN address: 0, -ENOENT or -EINVAL. */
static int forward_device(struct devices *d, const uint8_t *mac, const struct addr *lan4, char *err,
	size_t errlen, const char **field, struct device **ret)
{
	char s[ADDR_STRLEN], m[18];

	if (mac) {
		*ret = device_find(d, mac);
		if (*ret)
			return 0;
		snprintf(err, errlen, "no device %s", dev_mac_str(mac, m));
		*field = "device";
		return -ENOENT;
	}
	if (lan4 && lan4->family) {
		*ret = device_by_lan4(d, lan4);
		if (*ret)
			return 0;
		snprintf(err, errlen, "no device has LAN address %s", addr_str(lan4, s, sizeof(s)));
		*field = "device_ip";
		return -ENOENT;
	}
	snprintf(err, errlen, "expected the device's MAC (device) or LAN address (device_ip)");
	*field = "device";
	return -EINVAL;
}

static void forwards_changed(struct devices *d, const uint8_t mac[6])
{
	struct device *v = device_find(d, mac);

	if (!v)
		return;
	device_fwds_build(v);
	v->dirty |= DIRTY_RELAY;
	d->nft_dirty = true;
	devices_schedule(d);
}

static int forward_add(struct devices *d, struct device *v, uint16_t outer, uint16_t inner,
	char *err, size_t errlen, const char **field)
{
	struct dev_forward f = {.outer = outer, .inner = inner};
	int r;

	*field = NULL;
	if (!outer || !inner) {
		snprintf(err, errlen, "expected ports 1..65535");
		*field = !outer ? "gateway_port" : "device_port";
		return -EINVAL;
	}
	for (size_t i = 0; i < v->n_fwds; i++) {
		if (v->fwds[i].outer != outer)
			continue;
		if (v->fwds[i].inner == inner) {
			snprintf(
				err, errlen, "%s already forwards %u to %u", v->macs, outer, inner);
			*field = "gateway_port";
			return -EEXIST;
		}
		snprintf(err, errlen, "port %u of %s already forwards to %u", outer, v->macs,
			v->fwds[i].inner);
		*field = "gateway_port";
		return -EADDRINUSE;
	}
	memcpy(f.mac, v->rec.mac, 6);
	r = d->st ? dev_store_forward_add(d->st, &f) : -ENODEV;
	if (r < 0) {
		snprintf(err, errlen, "keeping the forward: %s", strerror(-r));
		return r;
	}
	d->hand = xrealloc(d->hand, (d->n_hand + 1) * sizeof(*d->hand));
	d->hand[d->n_hand++] = f;
	forwards_changed(d, v->rec.mac);
	if (d->env->events)
		event_log_add(d->env->events, EVENT_CHANGE, NULL,
			json_pack("{s:s, s:s, s:i, s:i}", "module", "devices", "device", v->macs,
				"gateway_port", outer, "device_port", inner),
			"devices: %s: port forward %u -> %u added", v->macs, outer, inner);
	return 0;
}

int devices_forward_add(struct devices *d, const uint8_t *mac, const struct addr *lan4,
	uint16_t outer, uint16_t inner, char *err, size_t errlen, const char **field)
{
	struct device *v;
	int r;

	*field = NULL;
	r = forward_device(d, mac, lan4, err, errlen, field, &v);
	if (r < 0)
		return r;
	return forward_add(d, v, outer, inner, err, errlen, field);
}

int devices_forward_remove(struct devices *d, const uint8_t *mac, const struct addr *lan4,
	uint16_t outer, uint16_t inner, char *err, size_t errlen, const char **field)
{
	struct device *v;
	int r;

	*field = NULL;
	r = forward_device(d, mac, lan4, err, errlen, field, &v);
	if (r < 0)
		return r;
	for (size_t i = 0; i < d->n_hand; i++) {
		struct dev_forward *f = &d->hand[i];

		if (memcmp(f->mac, v->rec.mac, 6) || f->outer != outer ||
			(inner && f->inner != inner))
			continue;
		r = d->st ? dev_store_forward_del(d->st, f) : -ENODEV;
		if (r < 0 && r != -ENOENT) {
			snprintf(err, errlen, "removing the forward: %s", strerror(-r));
			return r;
		}
		if (d->env->events)
			event_log_add(d->env->events, EVENT_CHANGE, NULL,
				json_pack("{s:s, s:s, s:i, s:i}", "module", "devices", "device",
					v->macs, "gateway_port", f->outer, "device_port", f->inner),
				"devices: %s: port forward %u -> %u removed", v->macs, f->outer,
				f->inner);
		*f = d->hand[--d->n_hand];
		forwards_changed(d, v->rec.mac);
		return 0;
	}
	for (size_t i = 0; i < v->n_fwds; i++)
		if (v->fwds[i].automatic && v->fwds[i].outer == outer &&
			(!inner || v->fwds[i].inner == inner)) {
			snprintf(err, errlen,
				"%u -> %u is every device's (port_map of [devices]): change it "
				"there",
				outer, v->fwds[i].inner);
			*field = "gateway_port";
			return -EINVAL;
		}
	snprintf(err, errlen, "%s has no forward of port %u", v->macs, outer);
	*field = "gateway_port";
	return -ENOENT;
}

int devices_forward_quick(
	struct devices *d, const struct addr *lan4, char *err, size_t errlen, const char **field)
{
	static const struct dev_port_map quick[] = {
		{8080, 80}, {2323, 23}, {8443, 443}, {2222, 22}};
	struct device *v;
	int first = 0, r;

	*field = NULL;
	r = forward_device(d, NULL, lan4, err, errlen, field, &v);
	if (r < 0)
		return r;
	/* those there already are fine; the first other error is told */
	for (size_t i = 0; i < ARRAY_SIZE(quick); i++) {
		char e[256];
		const char *fl = NULL;

		r = forward_add(d, v, quick[i].outer, quick[i].inner, e, sizeof(e), &fl);
		if (r < 0 && r != -EEXIST && !first) {
			first = r;
			snprintf(err, errlen, "%s", e);
			*field = fl;
		}
	}
	return first;
}

/* ---- diagnose */

struct diag_probe {
	struct diag *g;
	struct device *v;
	int fd, family;
	uint16_t id;
	struct addr dst;
	struct event *ev;
};

struct diag {
	struct devices *d;
	json_t *checks;
	int fails, fixed;
	size_t pending;
	struct diag_probe *p;
	size_t n;
	devices_diag_cb done;
	void *arg;
	struct event *done_ev;
};

static void diag_check(
	struct diag *g, const char *check, const struct device *v, bool ok, const char *detail)
{
	json_array_append_new(
		g->checks, json_pack("{s:s, s:s?, s:b, s:s, s:b}", "check", check, "device",
				   v ? v->macs : NULL, "ok", ok, "detail", detail, "fixed", false));
	g->fails += !ok;
}

static void diag_free(struct diag *g)
{
	for (size_t i = 0; i < g->n; i++) {
		if (g->p[i].ev)
			event_free(g->p[i].ev);
		if (g->p[i].fd >= 0)
			close(g->p[i].fd);
	}
	free(g->p);
	if (g->done_ev)
		event_free(g->done_ev);
	json_decref(g->checks);
	free(g);
}

static void diag_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct diag *g = arg;
	struct devices *d = g->d;
	json_t *res;

	(void)fd;
	(void)what;
	res = json_pack("{s:b, s:O, s:i, s:i}", "ok", g->fails == 0, "checks", g->checks, "fixed",
		g->fixed, "failures", g->fails);
	d->diag = NULL;
	g->done(res, g->arg);
	diag_free(g);
}

static void diag_finish_soon(struct diag *g)
{
	if (g->pending)
		return;
	g->done_ev = evtimer_new(g->d->env->base, diag_done_cb, g);
	event_active(g->done_ev, EV_TIMEOUT, 0);
}

static void probe_result(struct diag_probe *p, bool ok, const char *why)
{
	struct diag *g = p->g;
	char check[64], detail[160], s[ADDR_STRLEN];

	snprintf(check, sizeof(check), "upstream %s %s", p->family == AF_INET ? "ipv4" : "ipv6",
		p->v->rec.ifname);
	snprintf(detail, sizeof(detail), "echo to router %s through %s: %s",
		addr_str(&p->dst, s, sizeof(s)), p->v->rec.ifname, why);
	diag_check(g, check, p->v, ok, detail);
	event_free(p->ev);
	p->ev = NULL;
	close(p->fd);
	p->fd = -1;
	g->pending--;
	diag_finish_soon(g);
}

static void probe_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct diag_probe *p = arg;
	uint8_t buf[1500];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t n;

	if (what & EV_TIMEOUT) {
		probe_result(p, false, "no answer");
		return;
	}
	while ((n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl)) > 0) {
		struct addr from;

		if (addr_from_sockaddr((struct sockaddr *)&ss, &from, NULL) < 0 ||
			!addr_eq(&from, &p->dst)) {
			sl = sizeof(ss);
			continue;
		}
		if (p->family == AF_INET) {
			size_t hl = (size_t)(buf[0] & 0x0f) * 4;
			const struct icmphdr *h = (const struct icmphdr *)(buf + hl);

			if ((size_t)n >= hl + sizeof(*h) && h->type == ICMP_ECHOREPLY &&
				ntohs(h->un.echo.id) == p->id) {
				probe_result(p, true, "answered");
				return;
			}
		} else {
			const struct icmp6_hdr *h = (const struct icmp6_hdr *)buf;

			if ((size_t)n >= sizeof(*h) && h->icmp6_type == ICMP6_ECHO_REPLY &&
				ntohs(h->icmp6_id) == p->id) {
				probe_result(p, true, "answered");
				return;
			}
		}
		sl = sizeof(ss);
	}
}

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *b = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* An ICMP echo from the device's WAN address, out of its macvlan, to its router. */
static int probe_start(struct diag *g, struct device *v, int family)
{
	struct diag_probe *p = &g->p[g->n];
	struct sockaddr_storage src, dst;
	socklen_t sl, dl;
	uint8_t pkt[24] = {0};
	struct timeval tv = {DIAG_TIMEOUT_MS / 1000, (DIAG_TIMEOUT_MS % 1000) * 1000};
	const struct addr *from = family == AF_INET ? &v->rec.lease4.addr : &v->rec.wan6.addr;
	int r;

	memset(p, 0, sizeof(*p));
	p->g = g;
	p->v = v;
	p->family = family;
	p->id = (uint16_t)(random() & 0xffff);
	p->dst = family == AF_INET ? v->rec.lease4.router : g->d->router6;
	p->fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (p->fd < 0)
		return -errno;
	g->n++;
	if (family == AF_INET6) {
		struct icmp6_filter flt;

		ICMP6_FILTER_SETBLOCKALL(&flt);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &flt);
		(void)setsockopt(p->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &flt, sizeof(flt));
	}
	if (setsockopt(p->fd, SOL_SOCKET, SO_BINDTODEVICE, v->rec.ifname,
		    (socklen_t)strlen(v->rec.ifname)) < 0)
		return -errno;
	/* the device's IPv6 rule asks for the mark (dev_net.h) */
	if (dconf(g->d)->mark && setsockopt(p->fd, SOL_SOCKET, SO_MARK, &dconf(g->d)->mark,
					 sizeof(dconf(g->d)->mark)) < 0)
		return -errno;
	if ((r = addr_to_sockaddr(from, 0, &src, &sl)) < 0 ||
		(r = addr_to_sockaddr(&p->dst, 0, &dst, &dl)) < 0)
		return r;
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&dst)->sin6_scope_id = (uint32_t)v->ifindex;
	if (bind(p->fd, (struct sockaddr *)&src, sl) < 0)
		return -errno;
	if (family == AF_INET) {
		struct icmphdr *h = (struct icmphdr *)pkt;

		h->type = ICMP_ECHO;
		h->un.echo.id = htons(p->id);
		h->un.echo.sequence = htons(1);
		h->checksum = csum16(pkt, sizeof(pkt));
	} else {
		struct icmp6_hdr *h = (struct icmp6_hdr *)pkt;

		h->icmp6_type = ICMP6_ECHO_REQUEST;
		h->icmp6_id = htons(p->id);
		h->icmp6_seq = htons(1); /* the kernel sums ICMPv6 */
	}
	if (sendto(p->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, dl) < 0)
		return -errno;
	p->ev = event_new(g->d->env->base, p->fd, EV_READ | EV_PERSIST, probe_read_cb, p);
	event_add(p->ev, &tv);
	g->pending++;
	return 0;
}

/* The module's own checks of one device: its leases, then its upstream, asynchronously. */
static void diag_device(struct diag *g, struct device *v, bool fix)
{
	struct devices *d = g->d;
	const struct conf_devices *c = dconf(d);
	char check[64], detail[160], s[ADDR_STRLEN];
	bool ok;
	int r;

	/*
	 * A lease held must be valid; a device that never got one is acquiring (its MAC may not
	 * be registered upstream yet): said, not counted as a failure.
	 */
	if (c->ipv4) {
		snprintf(check, sizeof(check), "lease ipv4 %s", v->rec.ifname);
		ok = !v->rec.has_lease4 || lease4_left(&v->rec.lease4);
		if (v->rec.has_lease4 && ok)
			snprintf(detail, sizeof(detail), "%s for %us more",
				addr_str(&v->rec.lease4.addr, s, sizeof(s)),
				lease4_left(&v->rec.lease4));
		else
			snprintf(detail, sizeof(detail), "%s (dhcpv4 %s)%s",
				ok ? "none yet: is the MAC registered upstream?" : "expired",
				v->c4 ? dhcp4_state_name[dhcp4_client_state(v->c4)] : "stopped",
				fix && v->c4 ? ": asked again" : "");
		if ((!ok || !v->rec.has_lease4) && fix && v->c4)
			dhcp4_client_recheck(v->c4);
		diag_check(g, check, v, ok, detail);
	}
	if (c->ipv6 && v->rec.has_lease6) {
		snprintf(check, sizeof(check), "lease ipv6 %s", v->rec.ifname);
		ok = lease6_left(&v->rec.lease6) != 0;
		snprintf(detail, sizeof(detail), "%s %s",
			addr_str(&v->rec.lease6.addr, s, sizeof(s)), ok ? "valid" : "expired");
		if (!ok && fix && v->c6)
			dhcp6_client_recheck(v->c6);
		diag_check(g, check, v, ok, detail);
	}
	if (v->rec.has_lease4 && v->rec.lease4.router.family) {
		r = probe_start(g, v, AF_INET);
		if (r < 0) {
			snprintf(check, sizeof(check), "upstream ipv4 %s", v->rec.ifname);
			snprintf(detail, sizeof(detail), "echo through %s: %s", v->rec.ifname,
				strerror(-r));
			diag_check(g, check, v, false, detail);
		}
	}
	if (v->rec.wan6.addr.family && d->router6.family) {
		r = probe_start(g, v, AF_INET6);
		if (r < 0) {
			snprintf(check, sizeof(check), "upstream ipv6 %s", v->rec.ifname);
			snprintf(detail, sizeof(detail), "echo through %s: %s", v->rec.ifname,
				strerror(-r));
			diag_check(g, check, v, false, detail);
		}
	}
}

int devices_diagnose(struct devices *d, bool fix, devices_diag_cb done, void *arg)
{
	struct diag *g;
	struct dev_net_want *w;
	size_t n;

	if (d->diag)
		return -EBUSY;
	g = xcalloc(1, sizeof(*g));
	g->d = d;
	g->done = done;
	g->arg = arg;
	g->checks = json_array();
	g->p = xcalloc(2 * d->n + 1, sizeof(*g->p));
	d->diag = g;
	w = wants_all(d, &n);
	g->fails += dev_net_diagnose(d->net, w, n, fix, g->checks);
	free(w);
	for (size_t i = 0; i < json_array_size(g->checks); i++)
		g->fixed += json_is_true(json_object_get(json_array_get(g->checks, i), "fixed"));
	if (fix && g->fixed) {
		/* a macvlan made again has a new ifindex: its clients start over on it */
		for (size_t i = 0; i < d->n; i++) {
			struct device *v = d->v[i];
			struct nl_link l;

			if (!v->identity)
				continue;
			v->relink_at_ms = 0;
			if (nl_link_get(d->nl, 0, v->rec.ifname, &l) == 0 &&
				l.ifindex != v->ifindex)
				identity_restart(v);
			v->dirty |= DIRTY_NET;
		}
		d->nft_dirty = true;
		devices_schedule(d);
		log_info("devices: diagnose repaired %d things", g->fixed);
		if (d->env->events)
			event_log_add(d->env->events, EVENT_APPLY, NULL,
				json_pack("{s:s, s:i}", "module", "devices", "fixed", g->fixed),
				"devices: diagnose repaired %d things", g->fixed);
	}
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i]->identity)
			diag_device(g, d->v[i], fix);
	diag_finish_soon(g);
	return 0;
}

/* ------------------------------------------------------------------ the module */

/* The store's meta key (egressctl status --direct shows them) set to the time now. */
static void meta_time(struct devices *d, const char *key)
{
	char t[TIME_ISO_STRLEN];

	if (d->st)
		(void)dev_store_meta_set(d->st, key, time_iso(clock_wall_ms(), t, sizeof(t)));
}

static void mac_list(const struct word_list *l, uint8_t (**ret)[6], size_t *n_ret)
{
	uint8_t(*v)[6] = xcalloc(l->n + 1, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		if (dev_mac_parse(l->v[i], v[n]) == 0)
			n++;
	free(*ret);
	*ret = v;
	*n_ret = n;
}

static int record_cb(const struct dev_record *r, void *arg)
{
	struct devices *d = arg;

	(void)device_add(d, r);
	return 0;
}

static int forward_cb(const struct dev_forward *f, void *arg)
{
	struct devices *d = arg;

	d->hand = xrealloc(d->hand, (d->n_hand + 1) * sizeof(*d->hand));
	d->hand[d->n_hand] = *f;
	d->hand[d->n_hand++].automatic = false;
	return 0;
}

/*
 * The devices the store says were served: they get their identity back at once with their
 * kept leases (renewed, not acquired again) and the grace period to show up on the LAN.
 * What of ours the kernel holds for no such device goes.
 */
static void adopt(struct devices *d)
{
	struct dev_net_want *w = xcalloc(d->n + 1, sizeof(*w));
	size_t n = 0;
	uint64_t now = now_ms();
	int r;

	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];
		enum dev_status s = v->rec.status;

		if (s != DEV_ACTIVE && s != DEV_ACQUIRING && s != DEV_DISCOVERED)
			continue;
		if (v->rec.has_lease4 && !lease4_left(&v->rec.lease4))
			v->rec.has_lease4 = false;
		if (v->rec.has_lease6 && !lease6_left(&v->rec.lease6))
			v->rec.has_lease6 = false;
		if (v->rec.slot >= d->slots)
			continue; /* max_devices went down: served again when it shows up */
		if (s == DEV_ACTIVE)
			v->rec.status = DEV_ACQUIRING; /* until its NAT is in place again */
		v->present = true;
		v->heard_ms = now;
		device_want(v, &w[n++]);
	}
	r = dev_net_sweep(d->net, w, n);
	if (r < 0)
		log_warnx("devices: removing what belongs to no device: %s", strerror(-r));
	free(w);
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (!v->present)
			continue;
		d->adopted++;
		device_serve(v);
	}
}

static void devices_free(void *m);

static int devices_new(struct module_env *env, const struct conf *conf, void **ret)
{
	struct devices *d = xcalloc(1, sizeof(*d));
	const struct conf_devices *c = conf_devices(conf);
	struct nl_link l;
	struct dev_net_conf nc;
	int r;

	*ret = d;
	d->env = env;
	d->conf = conf;
	d->inotify_fd = -1;
	d->started_at = now_s();
	d->rl_net = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	d->rl_full = (struct log_ratelimit)LOG_RATELIMIT_INIT(60000, 3);
	d->slots = (uint32_t)c->max_devices;
	snprintf(d->wan, sizeof(d->wan), "%s", c->wan);
	snprintf(d->lan, sizeof(d->lan), "%s", c->lan);
	mac_list(&c->allow, &d->allow, &d->n_allow);
	mac_list(&c->deny, &d->deny, &d->n_deny);
	r = nl_open(NETLINK_ROUTE, &d->nl);
	if (r < 0) {
		log_warnx("devices: netlink: %s", strerror(-r));
		return r;
	}
	r = nl_link_get(d->nl, 0, d->wan, &l);
	if (r < 0) {
		log_warnx("devices: wan %s: %s", d->wan, strerror(-r));
		return r;
	}
	d->wan_ifindex = l.ifindex;
	d->wan_up = (l.flags & IFF_UP) && (l.flags & IFF_LOWER_UP);
	r = nl_link_get(d->nl, 0, d->lan, &l);
	if (r < 0) {
		log_warnx("devices: lan %s: %s", d->lan, strerror(-r));
		return r;
	}
	d->lan_ifindex = l.ifindex;

	snprintf(d->store_path, sizeof(d->store_path), "%s/%s", c->state_dir, DEV_STORE_FILE);
	r = dir_ensure(c->state_dir, 0700);
	if (r < 0) {
		log_warnx("devices: state_dir %s: %s", c->state_dir, strerror(-r));
		return r;
	}
	r = dev_store_open(d->store_path, false, &d->st);
	if (r < 0)
		return r;
	nc = (struct dev_net_conf){.wan = d->wan,
		.lan = d->lan,
		.table_base = c->table_base,
		.rule_priority = c->rule_priority,
		.mark = c->mark,
		.slots = d->slots,
		.macvlan_mode = c->macvlan_mode,
		.proxy_ndp = c->proxy_ndp};
	r = dev_net_new(&nc, &d->net);
	if (r < 0)
		return r;
	r = dev_relay_new(env->base, c->relay_idle_ms, c->mark, &d->relay);
	if (r < 0) {
		log_warnx("devices: relay: %s", strerror(-r));
		return r;
	}
	r = metrics_init(d);
	if (r < 0)
		return r;
	d->flush_ev = event_new(env->base, -1, 0, flush_cb, d);
	d->tick_ev = evtimer_new(env->base, tick_cb, d);
	d->recheck_ev = evtimer_new(env->base, recheck_cb, d);
	d->leases_ev = evtimer_new(env->base, leases_timer_cb, d);
	d->make_ev = event_new(env->base, -1, 0, make_cb, d);
	d->nft_ev = evtimer_new(env->base, nft_timer_cb, d);

	(void)dev_store_forward_list(d->st, forward_cb, d);
	r = dev_store_list(d->st, record_cb, d);
	if (r < 0) {
		log_warnx("devices: reading %s: %s", d->store_path, strerror(-r));
		return r;
	}
	r = nl_monitor_new(
		env->base, NL_GROUP_LINK | NL_GROUP_ADDR | NL_GROUP_NEIGH, netlink_cb, d, &d->mon);
	if (r < 0) {
		log_warnx("devices: netlink events: %s", strerror(-r));
		return r;
	}
	(void)nl_addr_dump(d->nl, AF_UNSPEC, d->wan_ifindex, wan_addr_dump_cb, d);
	r = ra_watch_new(env->base, d->wan_ifindex, ra_info_cb, d, &d->raw);
	if (r < 0)
		log_warnx("devices: router advertisements on %s: %s: IPv6 by SLAAC only", d->wan,
			strerror(-r));
	else
		(void)ra_watch_solicit(d->raw);

	adopt(d);
	(void)nl_neigh_dump(d->nl, AF_UNSPEC, d->lan_ifindex, false, neigh_dump_cb, d);
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		/* adopted: ask at once whether it is still there */
		if (v->present)
			neigh_probe(
				d, v->probe_dst.family ? &v->probe_dst : &v->rec.lan4, v->rec.mac);
	}
	if (c->leases_file) {
		leases_watch(d, c->leases_file);
		leases_read(d, true);
	}
	meta_time(d, "started_at");
	(void)dev_store_meta_set(d->st, "wan", d->wan);
	(void)dev_store_meta_set(d->st, "lan", d->lan);
	log_info("devices: %s -> %s: %zu devices known, %llu adopted with their leases", d->lan,
		d->wan, d->n, (unsigned long long)d->adopted);
	if (env->events)
		event_log_add(env->events, EVENT_APPLY, NULL,
			json_pack("{s:s, s:I, s:I}", "module", "devices", "known", (json_int_t)d->n,
				"adopted", (json_int_t)d->adopted),
			"devices: started on %s -> %s, %llu devices adopted", d->lan, d->wan,
			(unsigned long long)d->adopted);
	devices_schedule(d);
	return 0;
}

static void restart_key(const char *key, bool changed)
{
	if (changed)
		log_warnx(
			"devices: reload: %s changed: it takes effect when egressd restarts", key);
}

static int devices_reconf(void *m, const struct conf *conf)
{
	struct devices *d = m;
	const struct conf_devices *o = dconf(d), *c = conf_devices(conf);
	bool leases = !!o->leases_file != !!c->leases_file ||
		      (c->leases_file && strcmp(o->leases_file, c->leases_file));

	restart_key("wan", strcmp(d->wan, c->wan) != 0);
	restart_key("lan", strcmp(d->lan, c->lan) != 0);
	restart_key("state_dir", strcmp(o->state_dir, c->state_dir) != 0);
	restart_key("table_base", o->table_base != c->table_base);
	restart_key("rule_priority", o->rule_priority != c->rule_priority);
	restart_key("macvlan_mode", o->macvlan_mode != c->macvlan_mode);
	restart_key("proxy_ndp", o->proxy_ndp != c->proxy_ndp);
	restart_key("relay_idle", o->relay_idle_ms != c->relay_idle_ms);
	restart_key("mark", o->mark != c->mark);
	restart_key("max_devices (its routing tables)", (uint32_t)c->max_devices > d->slots);
	d->conf = conf;
	mac_list(&c->allow, &d->allow, &d->n_allow);
	mac_list(&c->deny, &d->deny, &d->n_deny);
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];
		enum deny_why why = device_policy(d, v->rec.mac);

		device_fwds_build(v);
		v->dirty |= DIRTY_RELAY;
		if (why != DENY_NONE && (v->identity || v->present))
			device_deny(v, why);
		else if (why == DENY_NONE && v->present && !v->identity)
			device_serve(v);
	}
	d->nft_dirty = true;
	if (leases) {
		leases_watch(d, c->leases_file);
		leases_read(d, true);
	}
	devices_schedule(d);
	return 0;
}

static void devices_free(void *m)
{
	struct devices *d = m;

	if (!d)
		return;
	if (d->diag)
		diag_free(d->diag);
	if (d->env->metrics && d->m_devices)
		metrics_on_scrape_remove(d->env->metrics, scrape_cb, d);
	nl_monitor_free(d->mon);
	leases_unwatch(d);
	/* clients stop without a word: their leases are kept for the next start */
	for (size_t i = 0; i < d->n; i++) {
		struct device *v = d->v[i];

		if (v->c4) {
			dhcp4_client_stop(v->c4);
			dhcp4_client_free(v->c4);
		}
		if (v->c6) {
			dhcp6_client_stop(v->c6);
			dhcp6_client_free(v->c6);
		}
		v->c4 = NULL;
		v->c6 = NULL;
		v->dirty &= DIRTY_STORE;
	}
	d->nft_dirty = false;
	if (d->flush_ev)
		flush_cb(-1, 0, d); /* what is not written yet */
	meta_time(d, "stopped_at");
	dev_relay_free(d->relay);
	if (d->net)
		dev_net_free(d->net, dconf(d)->keep_links);
	ra_watch_free(d->raw);
	dev_store_close(d->st);
	nl_free(d->nl);
	if (d->flush_ev)
		event_free(d->flush_ev);
	if (d->tick_ev)
		event_free(d->tick_ev);
	if (d->recheck_ev)
		event_free(d->recheck_ev);
	if (d->leases_ev)
		event_free(d->leases_ev);
	if (d->make_ev)
		event_free(d->make_ev);
	if (d->nft_ev)
		event_free(d->nft_ev);
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i]->fwds);
		free(d->v[i]);
	}
	free(d->v);
	free(d->hand);
	free(d->leases);
	free(d->hist);
	free(d->allow);
	free(d->deny);
	free(d);
}

static json_t *devices_status_cb(void *m)
{
	return devices_status_json(m);
}

static bool devices_wanted(const struct conf *conf)
{
	return conf_devices(conf) != NULL;
}

static const struct conf_section_type *const devices_types[] = {&conf_devices_type};

const struct module module_devices = {
	.name = "devices",
	.conf_types = devices_types,
	.n_conf_types = ARRAY_SIZE(devices_types),
	.wanted = devices_wanted,
	.new = devices_new,
	.reconf = devices_reconf,
	.free = devices_free,
	.status = devices_status_cb,
	.api_routes = devices_api_routes,
	.n_api_routes = DEVICES_API_N_ROUTES,
};
