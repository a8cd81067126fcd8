/*
 * dev_conf.h - the devices module's section of egress.conf: [devices].
 *
 * dev_conf.c describes the keys (names, defaults, help; `egressd -n` prints them) and
 * validates the section; the module reads this struct, only the config machinery writes it.
 * `egressd devices [flags]` (src/cmd/egressd.c) maps its flags onto these keys.
 */
#ifndef EGRESS_DEV_CONF_H
#define EGRESS_DEV_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "conf_keys.h"

/* The store's file name in state_dir. */
#define DEV_STORE_FILE "devices.db"

/* One configured port forward: gateway port -> device port (TCP). */
struct dev_port_map {
	uint16_t outer, inner;
};
#define DEV_PORT_MAPS_MAX 64

struct conf_devices {
	struct conf_section s;
	char wan[IFNAMSIZ];	   /* the upstream interface (macvlans' parent) */
	char lan[IFNAMSIZ];	   /* where the devices are */
	struct word_list allow;	   /* MACs allowed (empty: all), "aa:bb:cc:dd:ee:ff" */
	struct word_list deny;	   /* MACs never served */
	int max_devices;	   /* default 1000 */
	uint32_t grace_ms;	   /* a device silent this long has left (default 10m) */
	char *leases_file;	   /* the LAN DHCP server's leases (dnsmasq format); NULL: none */
	bool ipv4, ipv6;	   /* ask for each family (each is used only if offered) */
	uint32_t dhcp4_retry_min_ms, dhcp4_retry_max_ms;
	uint32_t dhcp6_retry_max_ms;
	char *state_dir;	   /* DEV_STORE_FILE lives here (default /var/lib/egress) */
	uint32_t table_base;	   /* device N's routing table: table_base + N (default 30000) */
	uint32_t rule_priority;	   /* its rules' priority (default 3000) */
	uint32_t mark;		   /* SO_MARK of egressd's sockets on a device's IPv6 address,
				    * which its IPv6 rule asks for (default 0x10000) */
	int macvlan_mode;	   /* enum nl_macvlan_mode (default bridge) */
	bool port_forwards;	   /* set up port_map for every device (default yes) */
	struct word_list port_map_words; /* key port_map: "8080:80 2323:23" (the default) */
	struct dev_port_map port_map[DEV_PORT_MAPS_MAX]; /* parsed from it by validation */
	int n_port_map;
	bool proxy_ndp;		   /* answer NS for devices' IPv6 on the WAN itself (default no) */
	uint32_t relay_idle_ms;	   /* IPv6 -> IPv4 relay idle timeout (default 2h) */
	bool keep_links;	   /* leave macvlans, rules and NAT in place on stop (default no) */
};

extern const struct conf_section_type conf_devices_type;

/* The [devices] section, or NULL when the module is off. */
struct conf_devices *conf_devices(const struct conf *conf);

/* "aa:bb:cc:dd:ee:ff" (any case, ':' or '-') to 6 bytes: 0 or -EINVAL. */
int dev_mac_parse(const char *s, uint8_t mac[6]);
/* Lower case with ':' into buf (at least 18 bytes); returns buf. */
const char *dev_mac_str(const uint8_t mac[6], char *buf);

#endif
