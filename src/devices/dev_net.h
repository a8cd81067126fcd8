/*
 * dev_net.h - the kernel side of the devices module: each device's macvlan, addresses,
 * routing table and rules, and the module's nftables table (SNAT of each device's LAN
 * address to its WAN address, DNAT of its port forwards).
 *
 * Everything is reconciled, not replayed: the module says what one device should have
 * (struct dev_net_want) and dev_net_device() makes it so, adding what is missing and
 * removing what is stale; dev_net_nft() replaces the whole table `inet egress_devices` in one
 * transaction.  Routes and rules carry RTPROT_EGRESS and the device's table; macvlans are
 * named DEV_IFNAME_PREFIX + the MAC's 12 hex digits, so a restart adopts them and
 * dev_net_sweep() finds the ones of devices no longer wanted.  The WAN interface's own
 * addresses and MAC are never touched.
 *
 * Per device (slot N, table T = table_base + N):
 *  - macvlan on wan, the device's MAC, up; sysctls: accept_ra=2, accept_ra_defrtr=0,
 *    autoconf=1 (SLAAC by the kernel), rp_filter=2, arp_ignore=1, arp_announce=2;
 *  - its WAN IPv4 (lease) with IFA_F_NOPREFIXROUTE and lifetimes from the lease; in T: the
 *    subnet on the macvlan and the default via the lease's router; its DHCPv6 address
 *    (/128) the same way; in T: default via the RA's router on the macvlan (IPv6);
 *  - rules at rule_priority: from LAN address iif lan -> T; from WAN IPv4 -> T;
 *    from WAN IPv6 fwmark mark/mark -> T (egressd's relay leaves by the device's identity;
 *    the host's other sockets never do, not even when the kernel picks the device's
 *    address as their source for want of a route in main);
 *  - proxy NDP entry for its WAN IPv6 on wan when proxy_ndp;
 *  - none of its routes in main: the kernel's on-link route of each RA prefix SLAAC takes
 *    is taken out again (dev_net_prune_main()).
 * Once: forwarding on (sysctl_hold), arp_ignore=1/arp_announce=2 on wan, so that the WAN
 * does not answer ARP for the devices' addresses with its own MAC.  The nft table also
 * drops what arrives by a macvlan for the host itself (but replies, ICMP, the DHCP clients'
 * ports and the IPv6 relay's ports of each device's forwards).
 */
#ifndef EGRESS_DEV_NET_H
#define EGRESS_DEV_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cidr.h"

struct dev_net;
struct dev_forward;

#define DEV_IFNAME_PREFIX "eg" /* "eg" + 12 hex digits: 14 characters */
#define DEV_NFT_TABLE	  "egress_devices"

/* "eg0200c0a80102" for 02:00:c0:a8:01:02 into buf (at least 16 bytes). */
void dev_ifname(const uint8_t mac[6], char *buf);

struct dev_net_conf {
	const char *wan, *lan; /* interface names, borrowed */
	uint32_t table_base, rule_priority;
	uint32_t slots;	       /* slots are < slots: tables table_base.. are ours (0: 1000) */
	uint32_t mark;	       /* the devices' IPv6 rules ask for fwmark mark/mark (0: none) */
	int macvlan_mode;      /* enum nl_macvlan_mode */
	bool proxy_ndp;
};

/* What one device should have.  Unset addresses: none. */
struct dev_net_want {
	uint8_t mac[6];
	uint32_t slot;
	struct addr lan4;
	struct cidr wan4;
	struct addr router4;
	uint32_t wan4_valid_s;	/* the address's lifetime from now (0: forever) */
	struct cidr wan6;	/* DHCPv6 address to add (/128); a SLAAC one is the kernel's */
	uint32_t wan6_valid_s;
	struct addr wan6_src;	/* the device's WAN IPv6 in use (SLAAC or DHCPv6), for rules */
	struct addr router6;	/* link-local, from the RA */
	const struct dev_forward *fwds; /* borrowed */
	size_t n_fwds;
};

/* c is copied.  Opens netlink and nftables, holds the sysctls.  0 or -errno (logged). */
int dev_net_new(const struct dev_net_conf *c, struct dev_net **ret);
/* Stop: remove every device's macvlan, rules and tables and the nft table, unless keep. */
void dev_net_free(struct dev_net *n, bool keep);

/*
 * Make w's macvlan exist and be up (created or adopted) and its sysctls set; *ifindex_ret
 * (optional) its ifindex.  Only the link: the caller then calls dev_net_device() for
 * addresses, routes and rules (a device without a lease yet has none to lose).  0 or -errno.
 */
int dev_net_link(struct dev_net *n, const struct dev_net_want *w, int *ifindex_ret);
int dev_net_device(struct dev_net *n, const struct dev_net_want *w);
/*
 * Take the kernel's on-link routes of the RA's prefixes on mac's macvlan out of main (SLAAC
 * puts them there beside the WAN's; the host's own traffic could follow them).
 * dev_net_device() does it too; call this when a route of the macvlan appears in main (the
 * kernel adds it again at an RA that finds it missing).  0 or -errno (-ENODEV: no macvlan).
 */
int dev_net_prune_main(struct dev_net *n, const uint8_t mac[6]);
/* The device left: its macvlan (and with it addresses and routes), rules, NDP entry. */
int dev_net_device_del(struct dev_net *n, const uint8_t mac[6], uint32_t slot);
/* The whole nftables table for these devices (SNAT, DNAT of forwards), atomically. */
int dev_net_nft(struct dev_net *n, const struct dev_net_want *all, size_t n_all);
/*
 * A device's WAN IPv4 changed from wan4 (its LAN address was lan4): delete the conntrack
 * entries our NAT made with the old address (TCP and UDP from lan4 SNAT'd to wan4, and
 * forwards to wan4 DNAT'd to lan4), whose packets would otherwise keep leaving with it.
 * wan4 unset: the device just got its SNAT, and the entries of lan4 that no NAT touched
 * (made while it had no address upstream) go, so that its flows take the SNAT.  Only those:
 * other entries of the device or the host stay.  Call it once the table with the new
 * address is committed.  The number deleted, or -errno.
 */
int dev_net_ct_forget(struct dev_net *n, const struct addr *lan4, const struct addr *wan4);
/* At start: remove macvlans, rules and tables of ours that belong to no device in all. */
int dev_net_sweep(struct dev_net *n, const struct dev_net_want *all, size_t n_all);

/*
 * Diagnose (egressctl diagnose): check forwarding, the WAN's link, each device's macvlan,
 * addresses, table routes, rules and nft rules against w; with fix, repair what is missing
 * or stale.  Appends one object per check to checks: {"check": "macvlan eg0200..",
 * "device": mac or null, "ok": b, "detail": "...", "fixed": b}.  Returns the failures left.
 */
int dev_net_diagnose(struct dev_net *n, const struct dev_net_want *all, size_t n_all, bool fix,
	json_t *checks);

#endif
