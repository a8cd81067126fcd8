/*
 * dev_net.c - the kernel side of the devices module (see dev_net.h): each device's macvlan,
 * its sysctls, addresses, routing table and rules, proxy NDP entry, and the module's
 * nftables table `inet egress_devices`.
 *
 * Every step reconciles: it reads what the kernel holds, adds what is missing and removes
 * what is stale, so running it twice changes nothing and a restart adopts what the last run
 * left.  What is ours is known by name and number only: macvlans named DEV_IFNAME_PREFIX +
 * 12 hex digits on the WAN, routes of protocol RTPROT_EGRESS in tables table_base ..
 * table_base + slots - 1, rules of that protocol at rule_priority looking those tables up.
 * It must not touch anything else: not the WAN's addresses, MAC or routes, not main, not
 * another module's rules (they may share our protocol and priority), and no table but ours.
 */
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_fwd.h"
#include "dev_net.h"
#include "log.h"
#include "nft.h"
#include "nl.h"
#include "sysctl.h"
#include "util.h"

#ifndef IFF_LOWER_UP /* <linux/if.h>'s, which does not mix with <net/if.h> */
#define IFF_LOWER_UP 0x10000
#endif

#define DEV_NET_SLOTS_DEFAULT 1000 /* max_devices' default */
#define MAC_STRLEN	      18

/* What we remember of a device between calls; also the owner of its sysctl holds. */
struct dev_rec {
	uint8_t mac[6];
	uint32_t slot;
	struct addr ndp; /* proxy NDP entry on the WAN; unset: none */
};

struct dev_net {
	struct dev_net_conf c;
	char wan[NL_IFNAMSIZ], lan[NL_IFNAMSIZ];
	struct nl *nl;
	struct nl *ct; /* NETLINK_NETFILTER, opened at the first dev_net_ct_forget() */
	struct nft *nft;
	struct dev_rec **recs; /* each allocated alone: its address owns sysctl holds */
	size_t n_recs;
};

/* What one device should have in the kernel, worked out from its dev_net_want. */
struct dev_plan {
	char ifname[NL_IFNAMSIZ];
	char mac[MAC_STRLEN];
	uint32_t table;
	struct nl_route routes[3];
	size_t n_routes;
	struct nl_rule rules[3];
	size_t n_rules;
};

void dev_ifname(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 16, DEV_IFNAME_PREFIX "%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2],
		mac[3], mac[4], mac[5]);
}

static const char *mac_str(const uint8_t mac[6], char *buf)
{
	snprintf(buf, MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		mac[4], mac[5]);
	return buf;
}

/* Is name one of ours: the prefix and exactly 12 lower-case hex digits? */
static bool ifname_ours(const char *name)
{
	size_t n = strlen(DEV_IFNAME_PREFIX);

	if (strncmp(name, DEV_IFNAME_PREFIX, n) || strlen(name) != n + 12)
		return false;
	for (const char *p = name + n; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static bool table_ours(const struct dev_net *n, uint32_t table)
{
	return table >= n->c.table_base && table - n->c.table_base < n->c.slots;
}

static uint32_t slot_table(const struct dev_net *n, uint32_t slot)
{
	return n->c.table_base + slot;
}

static const char *nlerr(const struct dev_net *n)
{
	return nl_last_error(n->nl);
}

/* ---- records ---------------------------------------------------------------------- */

static struct dev_rec *rec_find(const struct dev_net *n, const uint8_t mac[6])
{
	for (size_t i = 0; i < n->n_recs; i++)
		if (!memcmp(n->recs[i]->mac, mac, 6))
			return n->recs[i];
	return NULL;
}

static struct dev_rec *rec_get(struct dev_net *n, const uint8_t mac[6], uint32_t slot)
{
	struct dev_rec *r = rec_find(n, mac);

	if (!r) {
		r = xcalloc(1, sizeof(*r));
		memcpy(r->mac, mac, 6);
		n->recs = xrealloc(n->recs, (n->n_recs + 1) * sizeof(*n->recs));
		n->recs[n->n_recs++] = r;
	}
	r->slot = slot;
	return r;
}

/* Forget r; keep: leave its sysctls as they are (its macvlan is gone or kept). */
static void rec_drop(struct dev_net *n, struct dev_rec *r)
{
	for (size_t i = 0; i < n->n_recs; i++)
		if (n->recs[i] == r) {
			n->recs[i] = n->recs[--n->n_recs];
			break;
		}
	sysctl_release_all(r, true);
	free(r);
}

/* ---- sysctls ---------------------------------------------------------------------- */

/*
 * Once for the module: forwarding, and a WAN that answers ARP only for its own addresses
 * (arp_ignore=1) and sources its ARP requests from them (arp_announce=2): the devices'
 * addresses are local to this host, and without these the WAN would answer ARP for them
 * with its own MAC.  The per-WAN ones are tried again at each link (the WAN may come
 * later); only forwarding's failure is returned.
 */
static int host_sysctls(struct dev_net *n)
{
	char key[128];
	int r;

	r = sysctl_hold(n, "net/ipv4/ip_forward", 1, "devices: the devices are forwarded");
	if (r < 0)
		log_warnx("devices: net.ipv4.ip_forward: %s", strerror(-r));
	snprintf(key, sizeof(key), "net/ipv4/conf/%s/arp_ignore", n->wan);
	sysctl_hold(n, key, 1, "devices: the WAN answers ARP for its own addresses only");
	snprintf(key, sizeof(key), "net/ipv4/conf/%s/arp_announce", n->wan);
	sysctl_hold(n, key, 2, "devices: the WAN's ARP requests carry its own addresses");
	if (n->c.proxy_ndp) {
		snprintf(key, sizeof(key), "net/ipv6/conf/%s/proxy_ndp", n->wan);
		sysctl_hold(n, key, 1, "devices: the WAN answers NS for the devices");
	}
	return r;
}

struct dev_sysctl {
	const char *fmt;
	int value;
	const char *why;
};

/*
 * A macvlan's settings: SLAAC by the kernel (accept_ra=2 also when forwarding) but no
 * default route from RAs (it would land in main and take the host's own traffic), loose
 * reverse-path filtering (replies to DNAT'd connections arrive on the macvlan while main
 * routes their source by the WAN), and ARP for its own address only.
 */
static const struct dev_sysctl dev_sysctls[] = {
	{"net/ipv6/conf/%s/accept_ra", 2, "devices: SLAAC on the device's macvlan"},
	{"net/ipv6/conf/%s/accept_ra_defrtr", 0, "devices: no RA default route in main"},
	{"net/ipv6/conf/%s/autoconf", 1, "devices: SLAAC on the device's macvlan"},
	{"net/ipv4/conf/%s/rp_filter", 2, "devices: loose reverse-path filter"},
	{"net/ipv4/conf/%s/arp_ignore", 1, "devices: ARP for the device's address only"},
	{"net/ipv4/conf/%s/arp_announce", 2, "devices: ARP from the device's address"},
};

static int link_sysctls(struct dev_rec *r, const char *ifname)
{
	char key[128];
	int ret = 0, e;

	for (size_t i = 0; i < ARRAY_SIZE(dev_sysctls); i++) {
		snprintf(key, sizeof(key), dev_sysctls[i].fmt, ifname);
		/* at debug: the device's own info line (devices.c) says its macvlan is made */
		e = sysctl_hold_quiet(r, key, dev_sysctls[i].value, dev_sysctls[i].why);
		if (e < 0) {
			log_warnx("devices: %s: %s: %s", ifname, key, strerror(-e));
			ret = ret ? ret : e;
		}
	}
	return ret;
}

/* ---- new, free -------------------------------------------------------------------- */

/* Interface names go into nft's text between quotes: none of what would end them. */
static bool ifname_ok(const char *s)
{
	size_t len = s ? strnlen(s, NL_IFNAMSIZ) : 0;

	if (!len || len >= NL_IFNAMSIZ)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s == '"' || *s == '\\' || *s == '/' || *s == 0x7f)
			return false;
	return true;
}

int dev_net_new(const struct dev_net_conf *c, struct dev_net **ret)
{
	struct dev_net *n;
	int r;

	*ret = NULL;
	for (int i = 0; i < 2; i++) {
		const char *v = i ? c->lan : c->wan;

		if (!ifname_ok(v)) {
			log_warnx("devices: %s \"%s\": expected an interface name (1-15 characters, "
				  "no spaces, quotes, slashes or backslashes)", i ? "lan" : "wan",
				v ? v : "");
			return -EINVAL;
		}
	}
	if (c->macvlan_mode < 0 || c->macvlan_mode >= _NL_MACVLAN_MODE_MAX) {
		log_warnx("devices: macvlan mode %d: expected one of private, vepa, bridge, "
			  "passthru, source", c->macvlan_mode);
		return -EINVAL;
	}
	n = xcalloc(1, sizeof(*n));
	n->c = *c;
	if (!n->c.slots)
		n->c.slots = DEV_NET_SLOTS_DEFAULT;
	snprintf(n->wan, sizeof(n->wan), "%s", c->wan);
	snprintf(n->lan, sizeof(n->lan), "%s", c->lan);
	n->c.wan = n->wan;
	n->c.lan = n->lan;
	if ((r = nl_open(NETLINK_ROUTE, &n->nl)) < 0) {
		log_warnx("devices: netlink: %s", strerror(-r));
		goto fail;
	}
	if (!(n->nft = nft_new())) {
		r = -ENOMEM;
		log_warnx("devices: nftables: %s", strerror(-r));
		goto fail;
	}
	if ((r = host_sysctls(n)) < 0)
		goto fail;
	*ret = n;
	return 0;
fail:
	sysctl_release_all(n, false);
	nl_free(n->nl);
	nft_free(n->nft);
	free(n);
	return r;
}

void dev_net_free(struct dev_net *n, bool keep)
{
	char *err = NULL;

	if (!n)
		return;
	if (!keep) {
		dev_net_sweep(n, NULL, 0);
		for (size_t i = 0; i < n->n_recs; i++)
			if (addr_is_set(&n->recs[i]->ndp)) {
				struct nl_neigh ne = {.family = AF_INET6, .dst = n->recs[i]->ndp,
					.flags = NTF_PROXY};
				struct nl_link wan;

				if (!nl_link_get(n->nl, 0, n->wan, &wan)) {
					ne.ifindex = wan.ifindex;
					nl_neigh_apply(n->nl, NL_DEL, &ne);
				}
			}
		if (nft_table_delete(n->nft, "inet", DEV_NFT_TABLE, &err) < 0)
			log_warnx("devices: nft: delete table: %s", err ? err : "failed");
		free(err);
	}
	while (n->n_recs)
		rec_drop(n, n->recs[0]);
	free(n->recs);
	sysctl_release_all(n, keep);
	nl_free(n->ct);
	nl_free(n->nl);
	nft_free(n->nft);
	free(n);
}

/* ---- the plan of one device --------------------------------------------------------- */

static void plan_make(const struct dev_net *n, const struct dev_net_want *w, int ifindex,
	struct dev_plan *p)
{
	memset(p, 0, sizeof(*p));
	dev_ifname(w->mac, p->ifname);
	mac_str(w->mac, p->mac);
	p->table = slot_table(n, w->slot);
	if (w->wan4.addr.family == AF_INET) {
		struct nl_route *rt = &p->routes[p->n_routes++];

		/* The lease's subnet, on the macvlan only in the device's table: main never
		 * sees it (the address carries IFA_F_NOPREFIXROUTE). */
		*rt = (struct nl_route){.family = AF_INET, .table = p->table,
			.protocol = RTPROT_EGRESS, .scope = RT_SCOPE_LINK, .dst = w->wan4,
			.prefsrc = w->wan4.addr, .oif = ifindex};
		cidr_clear_hostbits(&rt->dst);
		/* On the link whatever the mask says: a /32 lease's router is outside it. */
		if (w->router4.family == AF_INET)
			p->routes[p->n_routes++] = (struct nl_route){.family = AF_INET,
				.table = p->table, .protocol = RTPROT_EGRESS, .oif = ifindex,
				.gw = w->router4, .flags = RTNH_F_ONLINK};
		p->rules[p->n_rules++] = (struct nl_rule){.family = AF_INET,
			.protocol = RTPROT_EGRESS, .has_priority = true,
			.priority = n->c.rule_priority, .table = p->table};
		cidr_from_addr(&w->wan4.addr, &p->rules[p->n_rules - 1].src);
		if (w->lan4.family == AF_INET) {
			struct nl_rule *ru = &p->rules[p->n_rules++];

			*ru = (struct nl_rule){.family = AF_INET, .protocol = RTPROT_EGRESS,
				.has_priority = true, .priority = n->c.rule_priority,
				.table = p->table};
			cidr_from_addr(&w->lan4, &ru->src);
			snprintf(ru->iif, sizeof(ru->iif), "%s", n->lan);
		}
	}
	if (w->router6.family == AF_INET6)
		p->routes[p->n_routes++] = (struct nl_route){.family = AF_INET6, .table = p->table,
			.protocol = RTPROT_EGRESS, .oif = ifindex, .gw = w->router6};
	if (w->wan6_src.family == AF_INET6) {
		struct nl_rule *ru = &p->rules[p->n_rules++];

		*ru = (struct nl_rule){.family = AF_INET6, .protocol = RTPROT_EGRESS,
			.has_priority = true, .priority = n->c.rule_priority, .table = p->table,
			.has_fwmark = n->c.mark != 0, .fwmark = n->c.mark, .fwmask = n->c.mark};
		cidr_from_addr(&w->wan6_src, &ru->src);
	}
}

/* ---- links ------------------------------------------------------------------------ */

static int wan_ifindex(struct dev_net *n)
{
	struct nl_link l;
	int r = nl_link_get(n->nl, 0, n->wan, &l);

	return r < 0 ? r : l.ifindex;
}

/* Is l the macvlan we would make for mac on the WAN? */
static bool link_right(const struct nl_link *l, int wan, const uint8_t mac[6])
{
	return !strcmp(l->kind, "macvlan") && l->parent == wan && l->link_netnsid < 0 &&
	       l->addr_len == 6 && !memcmp(l->addr, mac, 6);
}

int dev_net_link(struct dev_net *n, const struct dev_net_want *w, int *ifindex_ret)
{
	char name[NL_IFNAMSIZ], mac[MAC_STRLEN];
	struct dev_rec *rec;
	struct nl_link l;
	bool made = false;
	int wan, r;

	dev_ifname(w->mac, name);
	mac_str(w->mac, mac);
	host_sysctls(n);
	if ((wan = wan_ifindex(n)) < 0) {
		log_warnx("devices: %s: wan %s: %s", mac, n->wan, strerror(-wan));
		return wan;
	}
	rec = rec_get(n, w->mac, w->slot);
	r = nl_link_get(n->nl, 0, name, &l);
	if (r == 0 && !link_right(&l, wan, w->mac)) {
		/* Ours by name but not what we make (another parent or MAC): start over. */
		log_info("devices: %s: %s is not a macvlan on %s with the device's MAC: "
			 "made again", mac, name, n->wan);
		nl_link_del(n->nl, l.ifindex);
		r = -ENODEV;
	}
	if (r == -ENODEV) {
		struct nl_macvlan m = {.name = name, .parent = wan,
			.mode = (enum nl_macvlan_mode)n->c.macvlan_mode, .mac = w->mac};

		r = nl_link_add_macvlan(n->nl, &m);
		if (r < 0 && r != -EEXIST) {
			log_warnx("devices: %s: add macvlan %s on %s: %s%s%s", mac, name, n->wan,
				strerror(-r), *nlerr(n) ? ": " : "", nlerr(n));
			return r;
		}
		made = r == 0;
		r = nl_link_get(n->nl, 0, name, &l);
	}
	if (r < 0) {
		log_warnx("devices: %s: macvlan %s: %s", mac, name, strerror(-r));
		return r;
	}
	if (made) {
		/* A new link: holds on an earlier one of that name are stale. */
		struct nl_link_change ch = {.ifindex = l.ifindex, .addr_gen = NL_ADDR_GEN_EUI64};

		sysctl_release_all(rec, true);
		/* The link-local address from the device's MAC, whatever the default is. */
		if ((r = nl_link_change(n->nl, &ch)) < 0)
			log_warnx("devices: %s: %s: addr_gen_mode eui64: %s", mac, name,
				strerror(-r));
		/* at debug: the module's note of the device (devices.c) is its info line */
		log_debug("devices: %s: macvlan %s on %s", mac, name, n->wan);
	}
	/* Settings before the link comes up, so its first RS and DAD see them. */
	link_sysctls(rec, name);
	if (!(l.flags & IFF_UP) && (r = nl_link_set_up(n->nl, l.ifindex, true)) < 0) {
		log_warnx("devices: %s: %s up: %s", mac, name, strerror(-r));
		return r;
	}
	if (ifindex_ret)
		*ifindex_ret = l.ifindex;
	return 0;
}

/* ---- addresses -------------------------------------------------------------------- */

#define MAX_ADDRS 32

struct addr_list {
	struct nl_addr a[MAX_ADDRS];
	size_t n;
};

static int addr_collect_cb(const struct nl_addr *a, void *arg)
{
	struct addr_list *l = arg;

	if (l->n < MAX_ADDRS)
		l->a[l->n++] = *a;
	return 0;
}

/* Addresses we put on a macvlan: IPv4 (the lease), or IPv6 /128 of global scope (DHCPv6);
 * a SLAAC /64 and the link-local are the kernel's. */
static bool addr_ours(const struct nl_addr *a)
{
	if (a->local.addr.family == AF_INET)
		return true;
	return a->local.plen == 128 && a->scope == RT_SCOPE_UNIVERSE;
}

static bool addr_wanted(const struct nl_addr *a, const struct dev_net_want *w)
{
	const struct cidr *c = a->local.addr.family == AF_INET ? &w->wan4 : &w->wan6;

	return addr_eq(&a->local.addr, &c->addr) && a->local.plen == c->plen;
}

static int addrs_apply(struct dev_net *n, const struct dev_plan *p, int ifindex,
	const struct dev_net_want *w)
{
	struct addr_list have = {.n = 0};
	int ret = 0, r;

	for (int f = 0; f < 2; f++) {
		const struct cidr *c = f ? &w->wan6 : &w->wan4;
		uint32_t valid = f ? w->wan6_valid_s : w->wan4_valid_s;
		struct nl_addr a = {.ifindex = ifindex, .local = *c,
			.flags = IFA_F_NOPREFIXROUTE, .valid_lft = valid, .preferred_lft = valid};

		if (c->addr.family != (f ? AF_INET6 : AF_INET))
			continue;
		if ((r = nl_addr_apply(n->nl, NL_REPLACE, &a)) < 0) {
			char b[CIDR_STRLEN];

			log_warnx("devices: %s: address %s on %s: %s%s%s", p->mac,
				cidr_str(c, b, sizeof(b)), p->ifname, strerror(-r),
				*nlerr(n) ? ": " : "", nlerr(n));
			ret = ret ? ret : r;
		}
	}
	if ((r = nl_addr_dump(n->nl, AF_UNSPEC, ifindex, addr_collect_cb, &have)) < 0)
		return ret ? ret : r;
	for (size_t i = 0; i < have.n; i++)
		if (have.a[i].ifindex == ifindex && addr_ours(&have.a[i]) &&
			!addr_wanted(&have.a[i], w)) {
			char b[CIDR_STRLEN];

			log_info("devices: %s: stale address %s on %s removed", p->mac,
				cidr_str(&have.a[i].local, b, sizeof(b)), p->ifname);
			nl_addr_apply(n->nl, NL_DEL, &have.a[i]);
		}
	return ret;
}

/* ---- routes ----------------------------------------------------------------------- */

#define MAX_ROUTES 64

struct route_list {
	struct nl_route r[MAX_ROUTES];
	size_t n;
	uint32_t table;
};

static int route_collect_cb(const struct nl_route *r, void *arg)
{
	struct route_list *l = arg;

	if (r->protocol != RTPROT_EGRESS || l->n >= MAX_ROUTES)
		return 0;
	if (r->table != l->table)
		return 0;
	l->r[l->n] = *r;
	l->r[l->n].hops = NULL;
	l->r[l->n].n_hops = 0;
	l->n++;
	return 0;
}

static int routes_of_table(struct dev_net *n, uint32_t table, struct route_list *l)
{
	int r = 0;

	memset(l, 0, sizeof(*l));
	l->table = table;
	for (int f = 0; f < 2 && !r; f++)
		r = nl_route_dump(n->nl, f ? AF_INET6 : AF_INET, table, route_collect_cb, l);
	return r;
}

static bool route_same_dst(const struct nl_route *a, const struct nl_route *b)
{
	return a->family == b->family && a->table == b->table && a->dst.plen == b->dst.plen &&
	       (a->dst.plen == 0 || addr_eq(&a->dst.addr, &b->dst.addr));
}

/* Is the route the kernel holds (have) the one we want (w)? */
static bool route_match(const struct nl_route *have, const struct nl_route *w)
{
	return route_same_dst(have, w) && have->oif == w->oif && addr_eq(&have->gw, &w->gw) &&
	       (!addr_is_set(&w->prefsrc) || addr_eq(&have->prefsrc, &w->prefsrc));
}

static int routes_apply(struct dev_net *n, const struct dev_plan *p)
{
	struct route_list have;
	int ret = 0, r;

	for (size_t i = 0; i < p->n_routes; i++)
		if ((r = nl_route_apply(n->nl, NL_REPLACE, &p->routes[i])) < 0) {
			log_warnx("devices: %s: %s route in table %u: %s%s%s", p->mac,
				p->routes[i].family == AF_INET ? "IPv4" : "IPv6", p->table,
				strerror(-r), *nlerr(n) ? ": " : "", nlerr(n));
			ret = ret ? ret : r;
		}
	if ((r = routes_of_table(n, p->table, &have)) < 0)
		return ret ? ret : r;
	for (size_t j = 0; j < have.n; j++) {
		bool wanted = false;

		for (size_t i = 0; i < p->n_routes && !wanted; i++)
			wanted = route_same_dst(&have.r[j], &p->routes[i]);
		if (!wanted)
			nl_route_apply(n->nl, NL_DEL, &have.r[j]);
	}
	return ret;
}

/* Every route of ours in table (a device gone: the kernel took those on its macvlan). */
static void table_flush(struct dev_net *n, uint32_t table)
{
	struct route_list have;

	if (routes_of_table(n, table, &have) < 0)
		return;
	for (size_t j = 0; j < have.n; j++)
		nl_route_apply(n->nl, NL_DEL, &have.r[j]);
}

/* ---- rules ------------------------------------------------------------------------ */

static bool rule_of_table_cb(const struct nl_rule *r, void *arg)
{
	return r->table == *(const uint32_t *)arg;
}

static int rules_apply(struct dev_net *n, uint32_t table, const struct nl_rule *want, size_t nw,
	const char *mac)
{
	int r = nl_rule_reconcile_mine(n->nl, RTPROT_EGRESS, n->c.rule_priority,
		n->c.rule_priority + 1, rule_of_table_cb, &table, want, nw);

	if (r < 0)
		log_warnx("devices: %s: rules to table %u: %s%s%s", mac, table, strerror(-r),
			*nlerr(n) ? ": " : "", nlerr(n));
	return r;
}

/* ---- proxy NDP -------------------------------------------------------------------- */

static int ndp_apply(struct dev_net *n, struct dev_rec *rec, const struct addr *want)
{
	struct nl_neigh ne = {.family = AF_INET6, .flags = NTF_PROXY};
	int wan = wan_ifindex(n), r = 0;

	if (wan < 0)
		return wan;
	ne.ifindex = wan;
	if (addr_is_set(&rec->ndp) && !addr_eq(&rec->ndp, want)) {
		ne.dst = rec->ndp;
		nl_neigh_apply(n->nl, NL_DEL, &ne);
		rec->ndp = (struct addr){.family = 0};
	}
	if (addr_is_set(want)) {
		ne.dst = *want;
		r = nl_neigh_apply(n->nl, NL_REPLACE, &ne);
		if (r == 0)
			rec->ndp = *want;
	}
	return r;
}

/* ---- main ------------------------------------------------------------------------- */

struct main_scan {
	int oif;
	struct nl_route r[16];
	size_t n;
};

/* The kernel's on-link routes of an RA's prefixes on the macvlan (SLAAC puts them in main). */
static int main_scan_cb(const struct nl_route *r, void *arg)
{
	struct main_scan *ms = arg;

	if (r->oif != ms->oif || r->table != RT_TABLE_MAIN || !r->dst.plen ||
		(r->protocol != RTPROT_KERNEL && r->protocol != RTPROT_RA) ||
		(r->type && r->type != RTN_UNICAST) || addr_is_set(&r->gw) ||
		(r->dst.addr.b[0] == 0xfe && (r->dst.addr.b[1] & 0xc0) == 0x80) || ms->n >= 16)
		return 0;
	ms->r[ms->n] = *r;
	ms->r[ms->n].hops = NULL;
	ms->r[ms->n].n_hops = 0;
	ms->n++;
	return 0;
}

/*
 * Take the macvlan's prefix routes out of main.  The kernel adds one for each prefix its
 * SLAAC takes, beside the WAN's own for the same prefix, and the host's own traffic to the
 * upstream's link could then leave by a device's macvlan with the device's address.  The
 * device's traffic does not need them (its table routes all by the router).  The kernel puts
 * one back at the next RA that finds it missing: each call takes it out again.
 */
static int main_prune(struct dev_net *n, int ifindex, const char *mac)
{
	struct main_scan ms = {.oif = ifindex};
	int r = nl_route_dump(n->nl, AF_INET6, RT_TABLE_MAIN, main_scan_cb, &ms);

	for (size_t i = 0; r == 0 && i < ms.n; i++) {
		char b[CIDR_STRLEN];

		if (nl_route_apply(n->nl, NL_DEL, &ms.r[i]) == 0)
			log_debug("devices: %s: on-link route %s out of main", mac,
				cidr_str(&ms.r[i].dst, b, sizeof(b)));
	}
	return r;
}

int dev_net_prune_main(struct dev_net *n, const uint8_t mac[6])
{
	char name[NL_IFNAMSIZ], ms[MAC_STRLEN];
	struct nl_link l;
	int r;

	dev_ifname(mac, name);
	if ((r = nl_link_get(n->nl, 0, name, &l)) < 0)
		return r;
	return main_prune(n, l.ifindex, mac_str(mac, ms));
}

/* ---- one device ------------------------------------------------------------------- */

int dev_net_device(struct dev_net *n, const struct dev_net_want *w)
{
	char name[NL_IFNAMSIZ], mac[MAC_STRLEN];
	struct dev_plan p;
	struct dev_rec *rec;
	struct nl_link l;
	int ret, r;

	dev_ifname(w->mac, name);
	mac_str(w->mac, mac);
	if ((r = nl_link_get(n->nl, 0, name, &l)) < 0) {
		log_warnx("devices: %s: macvlan %s: %s", mac, name, strerror(-r));
		return r;
	}
	rec = rec_get(n, w->mac, w->slot);
	plan_make(n, w, l.ifindex, &p);
	ret = addrs_apply(n, &p, l.ifindex, w);
	/* Routes after addresses: the IPv4 subnet route's prefsrc must exist. */
	r = routes_apply(n, &p);
	ret = ret ? ret : r;
	r = rules_apply(n, p.table, p.rules, p.n_rules, mac);
	ret = ret ? ret : r;
	main_prune(n, l.ifindex, mac);
	if (n->c.proxy_ndp || addr_is_set(&rec->ndp)) {
		struct addr none = {.family = 0};

		r = ndp_apply(n, rec, n->c.proxy_ndp ? &w->wan6_src : &none);
		if (r < 0)
			log_warnx("devices: %s: proxy NDP on %s: %s", mac, n->wan, strerror(-r));
		ret = ret ? ret : r;
	}
	return ret;
}

int dev_net_device_del(struct dev_net *n, const uint8_t mac[6], uint32_t slot)
{
	char name[NL_IFNAMSIZ], ms[MAC_STRLEN];
	uint32_t table = slot_table(n, slot);
	struct dev_rec *rec = rec_find(n, mac);
	struct nl_link l;
	int ret = 0, r;

	dev_ifname(mac, name);
	mac_str(mac, ms);
	if (rec && addr_is_set(&rec->ndp)) {
		struct addr none = {.family = 0};

		ndp_apply(n, rec, &none);
	}
	r = rules_apply(n, table, NULL, 0, ms);
	ret = ret ? ret : r;
	if ((r = nl_link_get(n->nl, 0, name, &l)) == 0) {
		if ((r = nl_link_del(n->nl, l.ifindex)) < 0 && r != -ENODEV) {
			log_warnx("devices: %s: delete %s: %s", ms, name, strerror(-r));
			ret = ret ? ret : r;
		} else {
			log_debug("devices: %s: macvlan %s removed", ms, name);
		}
	}
	table_flush(n, table);
	if (rec)
		rec_drop(n, rec);
	return ret;
}

/* ---- conntrack -------------------------------------------------------------------- */

struct ct_forget {
	const struct addr *lan4, *wan4;
	struct nl_ct *v;
	size_t n, cap;
};

/* An entry our NAT made for the device with wan4: kept to be deleted after the dump. */
static int ct_forget_cb(const struct nl_ct *ct, void *arg)
{
	struct ct_forget *f = arg;
	bool snat, dnat;

	if (f->wan4->family) {
		snat = addr_eq(&ct->src, f->lan4) && addr_eq(&ct->reply_dst, f->wan4);
		dnat = addr_eq(&ct->dst, f->wan4) && addr_eq(&ct->reply_src, f->lan4);
	} else {
		/* not NAT'd: the reply goes back to the device's LAN address itself */
		snat = addr_eq(&ct->src, f->lan4) && addr_eq(&ct->reply_dst, f->lan4) &&
		       addr_eq(&ct->reply_src, &ct->dst);
		dnat = false;
	}
	if ((ct->proto != IPPROTO_TCP && ct->proto != IPPROTO_UDP) || !(snat || dnat))
		return 0;
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 16;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n++] = *ct;
	return 0;
}

int dev_net_ct_forget(struct dev_net *n, const struct addr *lan4, const struct addr *wan4)
{
	struct ct_forget f = {.lan4 = lan4, .wan4 = wan4};
	int r, deleted = 0;

	if (lan4->family != AF_INET || (wan4->family && wan4->family != AF_INET))
		return 0;
	if (!n->ct && (r = nl_open(NETLINK_NETFILTER, &n->ct)) < 0)
		return r;
	r = nl_ct_dump(n->ct, AF_INET, 0, 0, ct_forget_cb, &f);
	for (size_t i = 0; r == 0 && i < f.n; i++) {
		int e = nl_ct_delete(n->ct, &f.v[i]);

		if (e == 0)
			deleted++;
		else if (e != -ENOENT)
			r = e;
	}
	free(f.v);
	return r < 0 ? r : deleted;
}

/* ---- nftables --------------------------------------------------------------------- */

/*
 * The table's text for these devices (see dev_net.h); caller frees.  The NAT chains run just
 * before the usual priorities: the first chain to bind a connection's NAT wins, so another
 * table's masquerade (all that leaves but to the LAN, say) does not take the devices'.
 */
static char *nft_body(const struct dev_net *n, const struct dev_net_want *all, size_t n_all)
{
	struct nft_buf post, pre, fwd, in, links, out, src4, src6;
	char *body;

	nft_buf_init(&src4);
	nft_buf_init(&src6);
	nft_buf_init(&post);
	nft_buf_init(&pre);
	nft_buf_init(&fwd);
	nft_buf_init(&in);
	nft_buf_init(&links);
	nft_buf_init(&out);
	for (size_t i = 0; i < n_all; i++) {
		const struct dev_net_want *w = &all[i];
		char name[NL_IFNAMSIZ], mac[MAC_STRLEN], lan4[ADDR_STRLEN], wan4[ADDR_STRLEN];

		dev_ifname(w->mac, name);
		mac_str(w->mac, mac);
		nft_buf_printf(&links, "%s\"%s\"", links.len ? ", " : "", name);
		if (w->wan4.addr.family == AF_INET) {
			addr_str(&w->wan4.addr, wan4, sizeof(wan4));
			nft_buf_printf(&src4, "%s%s", src4.len ? ", " : "", wan4);
		}
		for (int k = 0; k < 2; k++) {
			const struct addr *a6 = k ? &w->wan6.addr : &w->wan6_src;
			char b6[ADDR_STRLEN];

			if (a6->family != AF_INET6 || (k && addr_eq(a6, &w->wan6_src)))
				continue;
			addr_str(a6, b6, sizeof(b6));
			nft_buf_printf(&src6, "%s%s", src6.len ? ", " : "", b6);
		}
		/* The IPv6 relay's listeners on the device's WAN address. */
		if (w->n_fwds) {
			nft_buf_printf(&in, "\t\tiifname \"%s\" meta nfproto ipv6 tcp dport { ", name);
			for (size_t j = 0; j < w->n_fwds; j++)
				nft_buf_printf(&in, "%s%u", j ? ", " : "", w->fwds[j].outer);
			nft_buf_printf(&in, " } accept comment \"%s relay\"\n", mac);
		}
		if (w->lan4.family != AF_INET || w->wan4.addr.family != AF_INET)
			continue;
		addr_str(&w->lan4, lan4, sizeof(lan4));
		addr_str(&w->wan4.addr, wan4, sizeof(wan4));
		/* What the device sends out by its macvlan leaves with its WAN address. */
		nft_buf_printf(&post,
			"\t\toifname \"%s\" ip saddr %s counter snat ip to %s comment \"%s\"\n",
			name, lan4, wan4, mac);
		/* Its forwards: the WAN address's outer port to the device's inner one. */
		for (size_t j = 0; j < w->n_fwds; j++)
			nft_buf_printf(&pre,
				"\t\tiifname \"%s\" ip daddr %s tcp dport %u counter dnat ip to "
				"%s:%u comment \"%s\"\n",
				name, wan4, w->fwds[j].outer, lan4, w->fwds[j].inner, mac);
		/* Accepted here (and counted per device) both ways. */
		nft_buf_printf(&fwd,
			"\t\tiifname \"%s\" oifname \"%s\" ip saddr %s counter accept comment "
			"\"%s out\"\n",
			n->lan, name, lan4, mac);
		nft_buf_printf(&fwd,
			"\t\tiifname \"%s\" oifname \"%s\" ip daddr %s counter accept comment "
			"\"%s in\"\n",
			name, n->lan, lan4, mac);
	}
	/*
	 * The host's own services are not the devices': what arrives by a macvlan for the host
	 * itself is dropped but replies, ICMP (neighbour discovery, RAs), the DHCP clients'
	 * ports and the relay's listeners.  Without this, a firewall that guards the WAN by its
	 * name would leave every service open on every device's address.
	 */
	if (links.len)
		nft_buf_printf(&out,
			"\tchain input {\n\t\ttype filter hook input priority filter; "
			"policy accept;\n"
			"\t\tiifname != { %s } accept\n"
			"\t\tct state established,related accept\n"
			"\t\tmeta l4proto { icmp, ipv6-icmp } accept\n"
			"\t\tudp dport { 68, 546 } accept comment \"DHCP clients\"\n"
			"%s"
			"\t\tcounter drop comment \"not the host's\"\n\t}\n",
			links.data, in.data);
	/*
	 * The host's own traffic never carries a device's address out of anything but that
	 * device's macvlan.  A socket of the host that is not bound takes the route of main (by
	 * the WAN) and then a source address; when the WAN has none of that family (a host
	 * with a DHCPv4 client alone still gets an IPv6 default route from the RAs), the kernel
	 * picks a device's, and the host's traffic would leave by the WAN's MAC as that device.
	 * It is refused at once instead (the program sees an error, not a silent wait).
	 * Neighbour discovery passes (proxy NDP answers on the WAN for the devices).
	 */
	if (src4.len || src6.len) {
		nft_buf_printf(&out,
			"\tchain output {\n\t\ttype filter hook output priority filter; "
			"policy accept;\n"
			"\t\toifname { \"lo\", %s } accept\n"
			"\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n",
			links.data);
		if (src4.len)
			nft_buf_printf(&out, "\t\tip saddr { %s } counter reject with icmpx "
				"admin-prohibited comment \"a device's address, not by its macvlan\"\n",
				src4.data);
		if (src6.len)
			nft_buf_printf(&out, "\t\tip6 saddr { %s } counter reject with icmpx "
				"admin-prohibited comment \"a device's address, not by its macvlan\"\n",
				src6.data);
		nft_buf_printf(&out, "\t}\n");
	}
	nft_buf_printf(&out,
		"\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat - 1; policy accept;\n"
		"%s\t}\n"
		"\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat - 1; "
		"policy accept;\n%s\t}\n"
		"\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
		"%s\t}\n",
		pre.data, post.data, fwd.data);
	body = nft_buf_steal(&out);
	nft_buf_clear(&out);
	nft_buf_clear(&post);
	nft_buf_clear(&pre);
	nft_buf_clear(&fwd);
	nft_buf_clear(&in);
	nft_buf_clear(&links);
	nft_buf_clear(&src4);
	nft_buf_clear(&src6);
	return body;
}

int dev_net_nft(struct dev_net *n, const struct dev_net_want *all, size_t n_all)
{
	char *body = nft_body(n, all, n_all), *err = NULL;
	int r = nft_table_apply(n->nft, "inet", DEV_NFT_TABLE, body, &err);

	if (r < 0)
		log_warnx("devices: nft table inet %s: %s", DEV_NFT_TABLE,
			err ? err : strerror(-r));
	free(err);
	free(body);
	return r;
}

/* ---- sweep ------------------------------------------------------------------------ */

struct sweep_ctx {
	struct dev_net *n;
	const struct dev_net_want *all;
	size_t n_all;
	int wan;
	int *del; /* ifindexes to delete */
	size_t n_del;
	struct nl_route *stale; /* routes of ours in tables no device uses */
	size_t n_stale;
};

static bool wanted_mac(const struct dev_net_want *all, size_t n_all, const char *ifname)
{
	char name[NL_IFNAMSIZ];

	for (size_t i = 0; i < n_all; i++) {
		dev_ifname(all[i].mac, name);
		if (!strcmp(name, ifname))
			return true;
	}
	return false;
}

static int sweep_link_cb(const struct nl_link *l, void *arg)
{
	struct sweep_ctx *sc = arg;

	if (strcmp(l->kind, "macvlan") || l->parent != sc->wan || l->link_netnsid >= 0 ||
		!ifname_ours(l->name) || wanted_mac(sc->all, sc->n_all, l->name))
		return 0;
	sc->del = xrealloc(sc->del, (sc->n_del + 1) * sizeof(*sc->del));
	sc->del[sc->n_del++] = l->ifindex;
	return 0;
}

static bool wanted_table(const struct dev_net *n, const struct dev_net_want *all, size_t n_all,
	uint32_t table)
{
	for (size_t i = 0; i < n_all; i++)
		if (slot_table(n, all[i].slot) == table)
			return true;
	return false;
}

static int sweep_route_cb(const struct nl_route *r, void *arg)
{
	struct sweep_ctx *sc = arg;

	if (r->protocol != RTPROT_EGRESS || !table_ours(sc->n, r->table) ||
		wanted_table(sc->n, sc->all, sc->n_all, r->table))
		return 0;
	sc->stale = xrealloc(sc->stale, (sc->n_stale + 1) * sizeof(*sc->stale));
	sc->stale[sc->n_stale] = *r;
	sc->stale[sc->n_stale].hops = NULL;
	sc->stale[sc->n_stale].n_hops = 0;
	sc->n_stale++;
	return 0;
}

/* A rule of ours no wanted device looks up. */
static bool rule_stale_cb(const struct nl_rule *r, void *arg)
{
	const struct sweep_ctx *sc = arg;

	return table_ours(sc->n, r->table) && !wanted_table(sc->n, sc->all, sc->n_all, r->table);
}

int dev_net_sweep(struct dev_net *n, const struct dev_net_want *all, size_t n_all)
{
	struct sweep_ctx sc = {.n = n, .all = all, .n_all = n_all};
	int ret, r;

	/* Rules first: no traffic is sent to a table being emptied. */
	r = nl_rule_reconcile_mine(n->nl, RTPROT_EGRESS, n->c.rule_priority,
		n->c.rule_priority + 1, rule_stale_cb, &sc, NULL, 0);
	if (r < 0)
		log_warnx("devices: sweep: rules: %s", strerror(-r));
	ret = r;
	sc.wan = wan_ifindex(n);
	if (sc.wan > 0) {
		if ((r = nl_link_dump(n->nl, sweep_link_cb, &sc)) < 0)
			ret = ret ? ret : r;
		for (size_t i = 0; i < sc.n_del; i++) {
			struct nl_link l;

			if (nl_link_get(n->nl, sc.del[i], NULL, &l) == 0)
				log_info("devices: sweep: macvlan %s of no device removed", l.name);
			if ((r = nl_link_del(n->nl, sc.del[i])) < 0 && r != -ENODEV)
				ret = ret ? ret : r;
		}
		free(sc.del);
	}
	/* Routes left in tables of ours no device uses (their macvlans took most). */
	for (int f = 0; f < 2; f++)
		if ((r = nl_route_dump(n->nl, f ? AF_INET6 : AF_INET, 0, sweep_route_cb, &sc)) < 0)
			ret = ret ? ret : r;
	for (size_t j = 0; j < sc.n_stale; j++)
		nl_route_apply(n->nl, NL_DEL, &sc.stale[j]);
	free(sc.stale);
	/* Records of devices no longer wanted. */
	for (size_t i = 0; i < n->n_recs;) {
		char name[NL_IFNAMSIZ];

		dev_ifname(n->recs[i]->mac, name);
		if (wanted_mac(all, n_all, name)) {
			i++;
			continue;
		}
		if (addr_is_set(&n->recs[i]->ndp)) {
			struct addr none = {.family = 0};

			ndp_apply(n, n->recs[i], &none);
		}
		rec_drop(n, n->recs[i]);
	}
	return ret;
}

/* ---- diagnose --------------------------------------------------------------------- */

struct diag {
	struct dev_net *n;
	json_t *checks;
	bool fix;
	int left;
};

/* One check's object; ok: as found; fixed: repaired and seen right afterwards. */
static void diag_add(struct diag *d, const char *check, const char *mac, bool ok, bool fixed,
	const char *detail)
{
	json_array_append_new(d->checks,
		json_pack("{s:s, s:o, s:b, s:s, s:b}", "check", check, "device",
			mac ? json_string(mac) : json_null(), "ok", ok, "detail", detail, "fixed",
			fixed));
	if (!ok && !fixed)
		d->left++;
}

static bool check_forwarding(char *detail, size_t len)
{
	int v = -1, r = sysctl_read("net/ipv4/ip_forward", &v);

	if (r < 0)
		snprintf(detail, len, "net.ipv4.ip_forward: %s", strerror(-r));
	else
		snprintf(detail, len, "net.ipv4.ip_forward = %d", v);
	return r == 0 && v == 1;
}

static void diag_forwarding(struct diag *d)
{
	char detail[128];
	bool ok = check_forwarding(detail, sizeof(detail)), fixed = false;

	if (!ok && d->fix) {
		/* Someone set it back: our hold is theirs now; hold it again. */
		sysctl_release(d->n, "net/ipv4/ip_forward");
		host_sysctls(d->n);
		fixed = check_forwarding(detail, sizeof(detail));
	}
	diag_add(d, "forwarding", NULL, ok, fixed, detail);
}

static bool check_wan_arp(struct dev_net *n, char *detail, size_t len)
{
	char k1[128], k2[128];
	int ig = -1, an = -1;

	snprintf(k1, sizeof(k1), "net/ipv4/conf/%s/arp_ignore", n->wan);
	snprintf(k2, sizeof(k2), "net/ipv4/conf/%s/arp_announce", n->wan);
	sysctl_read(k1, &ig);
	sysctl_read(k2, &an);
	snprintf(detail, len, "arp_ignore = %d, arp_announce = %d on %s (want 1 and 2)", ig, an,
		n->wan);
	return ig == 1 && an == 2;
}

static void diag_wan(struct diag *d)
{
	char detail[160];
	struct nl_link l;
	int r = nl_link_get(d->n->nl, 0, d->n->wan, &l);
	bool ok, fixed = false;

	if (r < 0)
		snprintf(detail, sizeof(detail), "%s: %s", d->n->wan, strerror(-r));
	else
		snprintf(detail, sizeof(detail), "%s is %s%s", d->n->wan,
			l.flags & IFF_UP ? "up" : "down",
			l.flags & IFF_LOWER_UP ? ", carrier" : ", no carrier");
	/* The WAN is the operator's: reported, never changed. */
	diag_add(d, "wan link", NULL, r == 0 && (l.flags & IFF_UP) && (l.flags & IFF_LOWER_UP),
		false, detail);
	ok = check_wan_arp(d->n, detail, sizeof(detail));
	if (!ok && d->fix) {
		char key[128];

		snprintf(key, sizeof(key), "net/ipv4/conf/%s/arp_ignore", d->n->wan);
		sysctl_release(d->n, key);
		snprintf(key, sizeof(key), "net/ipv4/conf/%s/arp_announce", d->n->wan);
		sysctl_release(d->n, key);
		host_sysctls(d->n);
		fixed = check_wan_arp(d->n, detail, sizeof(detail));
	}
	diag_add(d, "wan arp", NULL, ok, fixed, detail);
}

/* The device's macvlan: there, a macvlan on the WAN with its MAC, up. */
static bool check_macvlan(struct dev_net *n, const struct dev_net_want *w, int *ifindex,
	char *detail, size_t len)
{
	char name[NL_IFNAMSIZ];
	struct nl_link l;
	int wan = wan_ifindex(n), r;

	dev_ifname(w->mac, name);
	*ifindex = 0;
	if ((r = nl_link_get(n->nl, 0, name, &l)) < 0) {
		snprintf(detail, len, "%s: %s", name, r == -ENODEV ? "missing" : strerror(-r));
		return false;
	}
	*ifindex = l.ifindex;
	if (!link_right(&l, wan, w->mac)) {
		snprintf(detail, len, "%s is not a macvlan on %s with the device's MAC", name,
			n->wan);
		return false;
	}
	if (!(l.flags & IFF_UP)) {
		snprintf(detail, len, "%s is down", name);
		return false;
	}
	snprintf(detail, len, "%s on %s, up", name, n->wan);
	return true;
}

static bool check_addrs(struct dev_net *n, const struct dev_net_want *w, int ifindex,
	char *detail, size_t len)
{
	struct addr_list have = {.n = 0};
	char b[CIDR_STRLEN];

	if (ifindex <= 0) {
		snprintf(detail, len, "no macvlan");
		return false;
	}
	nl_addr_dump(n->nl, AF_UNSPEC, ifindex, addr_collect_cb, &have);
	for (int f = 0; f < 2; f++) {
		const struct cidr *c = f ? &w->wan6 : &w->wan4;
		bool found = false;

		if (c->addr.family != (f ? AF_INET6 : AF_INET))
			continue;
		for (size_t i = 0; i < have.n && !found; i++)
			found = have.a[i].ifindex == ifindex && addr_eq(&have.a[i].local.addr, &c->addr);
		if (!found) {
			snprintf(detail, len, "%s missing", cidr_str(c, b, sizeof(b)));
			return false;
		}
	}
	snprintf(detail, len, "%s%s%s", w->wan4.addr.family ? cidr_str(&w->wan4, b, sizeof(b)) : "",
		w->wan4.addr.family && w->wan6.addr.family ? ", " : "",
		w->wan6.addr.family ? "DHCPv6 address present" : "");
	if (!w->wan4.addr.family && !w->wan6.addr.family)
		snprintf(detail, len, "no lease to hold");
	return true;
}

static bool check_routes(struct dev_net *n, const struct dev_plan *p, char *detail, size_t len)
{
	struct route_list have;
	int r = routes_of_table(n, p->table, &have);

	if (r < 0) {
		snprintf(detail, len, "table %u: %s", p->table, strerror(-r));
		return false;
	}
	for (size_t i = 0; i < p->n_routes; i++) {
		bool found = false;

		for (size_t j = 0; j < have.n && !found; j++)
			found = route_match(&have.r[j], &p->routes[i]);
		if (!found) {
			char b[CIDR_STRLEN];

			snprintf(detail, len, "table %u: %s route %s missing", p->table,
				p->routes[i].family == AF_INET ? "IPv4" : "IPv6",
				p->routes[i].dst.addr.family ? cidr_str(&p->routes[i].dst, b, sizeof(b))
							     : "default");
			return false;
		}
	}
	snprintf(detail, len, "table %u: %zu routes", p->table, p->n_routes);
	return true;
}

struct rule_find {
	const struct nl_rule *want;
	size_t n;
	bool *found;
};

static int rule_find_cb(const struct nl_rule *r, void *arg)
{
	struct rule_find *rf = arg;

	if (r->protocol != RTPROT_EGRESS)
		return 0;
	for (size_t i = 0; i < rf->n; i++)
		if (nl_rule_same(r, &rf->want[i]))
			rf->found[i] = true;
	return 0;
}

static bool check_rules(struct dev_net *n, const struct dev_plan *p, char *detail, size_t len)
{
	bool found[3] = {false, false, false};
	struct rule_find rf = {.want = p->rules, .n = p->n_rules, .found = found};

	for (int f = 0; f < 2; f++)
		nl_rule_dump(n->nl, f ? AF_INET6 : AF_INET, rule_find_cb, &rf);
	for (size_t i = 0; i < p->n_rules; i++)
		if (!found[i]) {
			char b[CIDR_STRLEN];

			snprintf(detail, len, "rule from %s%s%s lookup %u missing",
				cidr_str(&p->rules[i].src, b, sizeof(b)), p->rules[i].iif[0] ? " iif " : "",
				p->rules[i].iif, p->table);
			return false;
		}
	snprintf(detail, len, "%zu rules at priority %u lookup %u", p->n_rules, n->c.rule_priority,
		p->table);
	return true;
}

/* The macvlan's sysctls at their values; the first that is not, in detail. */
static bool check_link_sysctls(const char *ifname, char *detail, size_t len)
{
	char key[128];

	for (size_t i = 0; i < ARRAY_SIZE(dev_sysctls); i++) {
		int v = -1, r;

		snprintf(key, sizeof(key), dev_sysctls[i].fmt, ifname);
		r = sysctl_read(key, &v);
		if (r < 0 || v != dev_sysctls[i].value) {
			snprintf(detail, len, "%s is %d, want %d", key, v, dev_sysctls[i].value);
			return false;
		}
	}
	snprintf(detail, len, "%s: %zu settings right", ifname, ARRAY_SIZE(dev_sysctls));
	return true;
}

/* Set them again: holds on values someone changed are theirs now; hold them afresh. */
static void fix_link_sysctls(struct dev_net *n, const struct dev_net_want *w,
	const char *ifname)
{
	struct dev_rec *rec = rec_get(n, w->mac, w->slot);
	char key[128];

	for (size_t i = 0; i < ARRAY_SIZE(dev_sysctls); i++) {
		snprintf(key, sizeof(key), dev_sysctls[i].fmt, ifname);
		sysctl_release(rec, key);
	}
	link_sysctls(rec, ifname);
}

static void diag_device(struct diag *d, const struct dev_net_want *w)
{
	struct dev_net *n = d->n;
	char check[64], detail[200];
	struct dev_plan p;
	bool ok[3], fixed[3] = {false, false, false}, mv, mv_fixed = false;
	int ifindex;

	plan_make(n, w, 0, &p);
	mv = check_macvlan(n, w, &ifindex, detail, sizeof(detail));
	if (!mv && d->fix && dev_net_link(n, w, &ifindex) == 0) {
		dev_net_device(n, w);
		mv_fixed = check_macvlan(n, w, &ifindex, detail, sizeof(detail));
	}
	snprintf(check, sizeof(check), "macvlan %s", p.ifname);
	diag_add(d, check, p.mac, mv, mv_fixed, detail);
	if (ifindex > 0) {
		bool sok = check_link_sysctls(p.ifname, detail, sizeof(detail)), sfixed = false;

		if (!sok && d->fix) {
			fix_link_sysctls(n, w, p.ifname);
			sfixed = check_link_sysctls(p.ifname, detail, sizeof(detail));
		}
		snprintf(check, sizeof(check), "settings %s", p.ifname);
		diag_add(d, check, p.mac, sok, sfixed, detail);
	}

	plan_make(n, w, ifindex, &p);
	{
		char da[200], dr[200], dl[200];

		ok[0] = check_addrs(n, w, ifindex, da, sizeof(da));
		ok[1] = check_routes(n, &p, dr, sizeof(dr));
		ok[2] = check_rules(n, &p, dl, sizeof(dl));
		if ((!ok[0] || !ok[1] || !ok[2]) && d->fix && ifindex > 0) {
			dev_net_device(n, w);
			fixed[0] = !ok[0] && check_addrs(n, w, ifindex, da, sizeof(da));
			fixed[1] = !ok[1] && check_routes(n, &p, dr, sizeof(dr));
			fixed[2] = !ok[2] && check_rules(n, &p, dl, sizeof(dl));
		}
		snprintf(check, sizeof(check), "addresses %s", p.ifname);
		diag_add(d, check, p.mac, ok[0], fixed[0], da);
		snprintf(check, sizeof(check), "routes %s", p.ifname);
		diag_add(d, check, p.mac, ok[1], fixed[1], dr);
		snprintf(check, sizeof(check), "rules %s", p.ifname);
		diag_add(d, check, p.mac, ok[2], fixed[2], dl);
	}
}

/* The nft table is there and holds each leased device's SNAT. */
static bool check_nft(struct dev_net *n, const struct dev_net_want *all, size_t n_all,
	char *detail, size_t len)
{
	char *text = NULL;
	int r = nft_table_list(n->nft, "inet", DEV_NFT_TABLE, 0, &text);
	size_t snats = 0;

	if (r < 0) {
		snprintf(detail, len, "table inet %s: %s", DEV_NFT_TABLE,
			r == -ENOENT ? "missing" : strerror(-r));
		return false;
	}
	for (size_t i = 0; i < n_all; i++) {
		char want[64], b[ADDR_STRLEN];

		if (all[i].lan4.family != AF_INET || all[i].wan4.addr.family != AF_INET)
			continue;
		snprintf(want, sizeof(want), "snat ip to %s ",
			addr_str(&all[i].wan4.addr, b, sizeof(b)));
		if (!strstr(text, want)) {
			char m[MAC_STRLEN];

			snprintf(detail, len, "table inet %s: no SNAT of %s to %s", DEV_NFT_TABLE,
				mac_str(all[i].mac, m), b);
			free(text);
			return false;
		}
		snats++;
	}
	free(text);
	snprintf(detail, len, "table inet %s: %zu SNAT rules", DEV_NFT_TABLE, snats);
	return true;
}

int dev_net_diagnose(struct dev_net *n, const struct dev_net_want *all, size_t n_all, bool fix,
	json_t *checks)
{
	struct diag d = {.n = n, .checks = checks, .fix = fix};
	char detail[200];
	bool ok, fixed = false;

	diag_forwarding(&d);
	diag_wan(&d);
	for (size_t i = 0; i < n_all; i++)
		diag_device(&d, &all[i]);
	ok = check_nft(n, all, n_all, detail, sizeof(detail));
	if (!ok && fix && dev_net_nft(n, all, n_all) == 0)
		fixed = check_nft(n, all, n_all, detail, sizeof(detail));
	diag_add(&d, "nft", NULL, ok, fixed, detail);
	return d.left;
}
