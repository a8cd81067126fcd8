/*
 * dev_conf.c - the keyword table of [devices], the device gateway's section, and its
 * validation: MAC lists, the port map (parsed into port_map[] here), wan and lan apart.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's, the module reads the
 * result.  Validation is the one place that writes a derived field (port_map[]).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_conf.h"
#include "nl.h"
#include "util.h"

static const struct conf_key devices_keys[] = {
	{
		.name = "wan",
		.type = CONF_IFNAME,
		KEY(conf_devices, wan),
		.flags = CONF_REQUIRED,
		.help = "the upstream interface: each device gets a macvlan on it with its MAC "
			"(the interface's own address and MAC are left alone)",
	},
	{
		.name = "lan",
		.type = CONF_IFNAME,
		KEY(conf_devices, lan),
		.flags = CONF_REQUIRED,
		.help = "the interface the devices are on (found by neighbour events)",
	},
	{
		.name = "allow",
		.type = CONF_WORD_LIST,
		KEY(conf_devices, allow),
		.help = "MACs served (aa:bb:cc:dd:ee:ff); unset: every device on lan",
	},
	{
		.name = "deny",
		.type = CONF_WORD_LIST,
		KEY(conf_devices, deny),
		.help = "MACs never served, even when allowed",
	},
	{
		.name = "max_devices",
		.type = CONF_INT,
		KEY(conf_devices, max_devices),
		.min = 1,
		.max = 65536,
		.def = "1000",
		.help = "devices served at most; more are listed as denied",
	},
	{
		.name = "grace",
		.type = CONF_DURATION,
		KEY(conf_devices, grace_ms),
		.min = 1000,
		.max = 604800000,
		.def = "10m",
		.help = "a device silent this long has left: its leases are released",
	},
	{
		.name = "leases_file",
		.type = CONF_STRING,
		KEY(conf_devices, leases_file),
		.help = "the LAN DHCP server's leases (dnsmasq format), watched for devices; "
			"unset: neighbour events alone",
	},
	{
		.name = "ipv4",
		.type = CONF_BOOL,
		KEY(conf_devices, ipv4),
		.def = "true",
		.help = "ask for a DHCPv4 lease per device (when the upstream offers IPv4)",
	},
	{
		.name = "ipv6",
		.type = CONF_BOOL,
		KEY(conf_devices, ipv6),
		.def = "true",
		.help = "take SLAAC and ask for a DHCPv6 address per device (when the upstream "
			"offers IPv6)",
	},
	{
		.name = "dhcp4_retry_min",
		.type = CONF_DURATION,
		KEY(conf_devices, dhcp4_retry_min_ms),
		.min = 100,
		.max = 3600000,
		.def = "4s",
		.help = "first DHCPv4 retransmission wait; doubled (with jitter) up to "
			"dhcp4_retry_max",
	},
	{
		.name = "dhcp4_retry_max",
		.type = CONF_DURATION,
		KEY(conf_devices, dhcp4_retry_max_ms),
		.min = 100,
		.max = 3600000,
		.def = "64s",
		.help = "longest DHCPv4 retransmission wait",
	},
	{
		.name = "dhcp6_retry_max",
		.type = CONF_DURATION,
		KEY(conf_devices, dhcp6_retry_max_ms),
		.min = 1000,
		.max = 3600000,
		.def = "2m",
		.help = "longest wait between DHCPv6 solicits (RFC 8415's SOL_MAX_RT; shorter than "
			"its 1h so a MAC registered late gets its address within minutes)",
	},
	{
		.name = "state_dir",
		.type = CONF_STRING,
		KEY(conf_devices, state_dir),
		.def = "/var/lib/egress",
		.help = "where the devices' store is kept (" DEV_STORE_FILE "): leases, DUIDs, "
			"history, forwards",
	},
	{
		.name = "table_base",
		.type = CONF_U32,
		KEY(conf_devices, table_base),
		.min = 1,
		.max = 0xfffe0000,
		.def = "30000",
		.help = "device N's routing table is table_base + N (max_devices tables)",
	},
	{
		.name = "rule_priority",
		.type = CONF_U32,
		KEY(conf_devices, rule_priority),
		.min = 1,
		.max = 32765,
		.def = "3000",
		.help = "priority of the devices' routing rules (ahead of the main table)",
	},
	{
		.name = "mark",
		.type = CONF_U32,
		KEY(conf_devices, mark),
		.flags = CONF_HEX,
		.min = 1,
		.max = 0xffffffff,
		.def = "0x10000",
		.help = "the packet mark (all of its bits) a socket on a device's IPv6 address "
			"carries to leave as the device (egressd's relay does)",
	},
	{
		.name = "macvlan_mode",
		.type = CONF_ENUM,
		KEY(conf_devices, macvlan_mode),
		.names = nl_macvlan_mode_name,
		.n_names = _NL_MACVLAN_MODE_MAX,
		.def = "private",
		.help = "the devices' macvlans: private (no frame between two devices' macvlans), bridge or vepa",
	},
	{
		.name = "port_forwards",
		.type = CONF_BOOL,
		KEY(conf_devices, port_forwards),
		.def = "true",
		.help = "forward port_map to every device, from its WAN IPv4 and IPv6",
	},
	{
		.name = "port_map",
		.type = CONF_WORD_LIST,
		KEY(conf_devices, port_map_words),
		.def = "8080:80 2323:23",
		.help = "GATEWAY_PORT:DEVICE_PORT of each automatic forward (TCP)",
	},
	{
		.name = "proxy_ndp",
		.type = CONF_BOOL,
		KEY(conf_devices, proxy_ndp),
		.def = "false",
		.help = "answer neighbour solicitations for the devices' IPv6 on wan itself "
			"(only where the upstream does not see the macvlans)",
	},
	{
		.name = "relay_idle",
		.type = CONF_DURATION,
		KEY(conf_devices, relay_idle_ms),
		.min = 1000,
		.max = 604800000,
		.def = "2h",
		.help = "an IPv6 to IPv4 forwarded connection idle this long is closed",
	},
	{
		.name = "keep_links",
		.type = CONF_BOOL,
		KEY(conf_devices, keep_links),
		.def = "false",
		.help = "leave the macvlans, rules and NAT in place when egressd stops",
	},
};

int dev_mac_parse(const char *s, uint8_t mac[6])
{
	char sep = 0;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + i * 3;
		char hex[3] = {p[0], p[1], '\0'};

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
			return -EINVAL;
		if (i < 5) {
			if (p[2] != ':' && p[2] != '-')
				return -EINVAL;
			if (sep && p[2] != sep)
				return -EINVAL;
			sep = p[2];
		}
		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	return 0;
}

const char *dev_mac_str(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		mac[4], mac[5]);
	return buf;
}

/* A port 1-65535 from the whole of s (digits only): 0 or -EINVAL. */
static int port_parse(const char *s, size_t len, uint16_t *ret)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* "OUTER:INNER" (dev_fwd.c's dev_port_map_parse() says the same for the API). */
static int port_map_parse(const char *s, struct dev_port_map *ret)
{
	const char *colon = strchr(s, ':');

	if (!colon)
		return -EINVAL;
	if (port_parse(s, (size_t)(colon - s), &ret->outer) < 0 ||
		port_parse(colon + 1, strlen(colon + 1), &ret->inner) < 0)
		return -EINVAL;
	return 0;
}

/* Each word of a MAC list parses; a multicast MAC cannot be a device's. */
static void validate_macs(const struct conf_devices *d, const struct word_list *l,
	const char *key, struct conf_errors *errs)
{
	uint8_t mac[6];

	for (size_t i = 0; i < l->n; i++) {
		if (dev_mac_parse(l->v[i], mac) < 0)
			conf_section_error(errs, &d->s, key,
				"expected a MAC address such as aa:bb:cc:dd:ee:ff, got \"%s\"",
				l->v[i]);
		else if (mac[0] & 1)
			conf_section_error(errs, &d->s, key,
				"expected a unicast MAC address, got \"%s\" (a multicast one)",
				l->v[i]);
	}
}

/* port_map's words into port_map[]: each parses, no gateway port twice. */
static void validate_port_map(struct conf_devices *d, struct conf_errors *errs)
{
	d->n_port_map = 0;
	if (d->port_map_words.n > DEV_PORT_MAPS_MAX) {
		conf_section_error(errs, &d->s, "port_map", "expected at most %d forwards, got %zu",
			DEV_PORT_MAPS_MAX, d->port_map_words.n);
		return;
	}
	for (size_t i = 0; i < d->port_map_words.n; i++) {
		struct dev_port_map m;
		const char *w = d->port_map_words.v[i];

		if (port_map_parse(w, &m) < 0) {
			conf_section_error(errs, &d->s, "port_map",
				"expected GATEWAY_PORT:DEVICE_PORT (ports 1-65535) such as 8080:80, "
				"got \"%s\"", w);
			continue;
		}
		for (int j = 0; j < d->n_port_map; j++)
			if (d->port_map[j].outer == m.outer) {
				conf_section_error(errs, &d->s, "port_map",
					"gateway port %u is mapped twice (\"%s\")", m.outer, w);
				goto next;
			}
		d->port_map[d->n_port_map++] = m;
next:;
	}
}

static void devices_validate(const struct conf *conf, const void *section,
	struct conf_errors *errs)
{
	/* validation fills port_map[] from port_map's words (see dev_conf.h) */
	struct conf_devices *d = (struct conf_devices *)(uintptr_t)section;

	(void)conf;
	if (d->wan[0] && d->lan[0] && streq(d->wan, d->lan))
		conf_section_error(errs, &d->s, "lan",
			"expected an interface other than wan (\"%s\"): devices are on one side, the "
			"upstream on the other", d->lan);
	validate_macs(d, &d->allow, "allow", errs);
	validate_macs(d, &d->deny, "deny", errs);
	validate_port_map(d, errs);
	if (!d->ipv4 && !d->ipv6)
		conf_section_error(errs, &d->s, "ipv6",
			"ipv4 and ipv6 are both off: a device would get no address");
	if (d->dhcp4_retry_min_ms > d->dhcp4_retry_max_ms)
		conf_section_error(errs, &d->s, "dhcp4_retry_max",
			"expected at least dhcp4_retry_min");
	if (!d->state_dir || d->state_dir[0] != '/')
		conf_section_error(errs, &d->s, "state_dir", "expected an absolute path, got \"%s\"",
			d->state_dir ? d->state_dir : "");
	if (d->leases_file && d->leases_file[0] != '/')
		conf_section_error(errs, &d->s, "leases_file",
			"expected an absolute path, got \"%s\"", d->leases_file);
	if (d->macvlan_mode != NL_MACVLAN_BRIDGE && d->macvlan_mode != NL_MACVLAN_PRIVATE &&
		d->macvlan_mode != NL_MACVLAN_VEPA)
		conf_section_error(errs, &d->s, "macvlan_mode",
			"expected bridge, private or vepa, got \"%s\" (one macvlan per device)",
			nl_macvlan_mode_name[d->macvlan_mode]);
	if ((uint64_t)d->table_base + (uint64_t)d->max_devices > 0xffffffffull)
		conf_section_error(errs, &d->s, "table_base",
			"table_base + max_devices must stay below 4294967296");
}

/* dev_net.c: every device's rules at rule_priority, tables table_base.. + max_devices. */
static void devices_routing_claims(const struct conf *conf, const void *section,
	struct rt_claims *c)
{
	const struct conf_devices *d = section;

	(void)conf;
	conf_routing_claim(c, d, d, "rule_priority", false, d->rule_priority,
		d->rule_priority + 1ull);
	conf_routing_claim(c, d, d, "table_base", true, d->table_base,
		(uint64_t)d->table_base + (uint64_t)d->max_devices);
}

const struct conf_section_type conf_devices_type = {
	.name = "devices",
	.size = sizeof(struct conf_devices),
	.keys = devices_keys,
	.n_keys = ARRAY_SIZE(devices_keys),
	.validate = devices_validate,
	.validate_expanded = conf_routing_validate,
	.routing_claims = devices_routing_claims,
};

struct conf_devices *conf_devices(const struct conf *conf)
{
	return (struct conf_devices *)conf_find(conf, "devices", NULL);
}
