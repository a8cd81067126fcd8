/*
 * test_dev_net_kernel.c - the devices module's kernel side (src/devices/dev_net.c) in a real
 * kernel.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and makes two more beside it: "up", the upstream, holding the WAN veth's peer with the
 * router's address, and "lan", holding one LAN device.  Nothing runs before the first
 * unshare() succeeded, and the other two namespaces live only as long as this process.
 *
 * The tests run in order on one gateway: a device's macvlan made and set up (sysctls,
 * addresses without prefix routes, its table, its rules), the same again changing nothing,
 * a restart adopting the macvlan, the nftables table read back and traffic through it (a
 * LAN packet leaving with the device's MAC and WAN address, a forward reaching the device,
 * only the macvlan answering ARP for the device's address), the sweep removing only ours,
 * diagnose finding and repairing a deleted rule and a deleted macvlan, and the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dev_fwd.h"
#include "dev_net.h"
#include "kernel_test.h"
#include "nft.h"
#include "nl.h"
#include "sysctl.h"

#define TABLE_BASE 30000
#define PRIO	   3000

static int g_own = -1, g_up = -1, g_lan = -1; /* namespaces */
static struct nl *g_nl, *g_nl_up, *g_nl_lan;
static struct nft *g_nft;
static struct dev_net *g_net;
static int g_wan, g_wanp, g_macvlan;
static uint8_t g_wan_mac[6], g_wanp_mac[6];

static const uint8_t mac_a[6] = {0x02, 0x00, 0xc0, 0xa8, 0x01, 0x02};
static const uint8_t mac_c[6] = {0x02, 0x00, 0x00, 0x00, 0xbe, 0xef};
static const struct dev_forward fwds_a[] = {
	{.mac = {0x02, 0x00, 0xc0, 0xa8, 0x01, 0x02}, .outer = 8080, .inner = 80},
	{.mac = {0x02, 0x00, 0xc0, 0xa8, 0x01, 0x02}, .outer = 2323, .inner = 23},
};

static struct addr ip(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static struct cidr pfx(const char *s)
{
	struct cidr c;

	/* Host bits kept: a lease is an address with its subnet's length. */
	memset(&c, 0, sizeof(c));
	{
		char buf[64], *slash;

		snprintf(buf, sizeof(buf), "%s", s);
		slash = strchr(buf, '/');
		assert_non_null(slash);
		*slash = 0;
		c.addr = ip(buf);
		c.plen = (uint8_t)atoi(slash + 1);
	}
	return c;
}

static struct dev_net_conf conf(void)
{
	return (struct dev_net_conf){.wan = "wan0", .lan = "lan0", .table_base = TABLE_BASE,
		.rule_priority = PRIO, .macvlan_mode = NL_MACVLAN_BRIDGE};
}

/* Device A: a full dual-stack lease and two forwards. */
static struct dev_net_want want_a(void)
{
	struct dev_net_want w = {.slot = 1, .lan4 = ip("192.168.1.2"),
		.wan4 = pfx("198.51.100.10/24"), .router4 = ip("198.51.100.1"), .wan4_valid_s = 3600,
		.wan6 = pfx("2001:db8:1::10/128"), .wan6_valid_s = 3600,
		.wan6_src = ip("2001:db8:1::10"), .router6 = ip("fe80::1"), .fwds = fwds_a,
		.n_fwds = 2};

	memcpy(w.mac, mac_a, 6);
	return w;
}

/* Device C: IPv4 only, another slot. */
static struct dev_net_want want_c(void)
{
	struct dev_net_want w = {.slot = 2, .lan4 = ip("192.168.1.3"),
		.wan4 = pfx("198.51.100.11/24"), .router4 = ip("198.51.100.1")};

	memcpy(w.mac, mac_c, 6);
	return w;
}

/* ---- namespaces ----------------------------------------------------------------------- */

static int ns_self(void)
{
	return open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

/* A new namespace beside ours, lo up; we stay in ours. */
static int ns_new(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) < 0 || kt_lo_up() < 0)
		return -1;
	fd = ns_self();
	if (setns(g_own, CLONE_NEWNET) < 0)
		return -1;
	return fd;
}

static void ns_enter(int fd)
{
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
}

/* A socket of (domain, type, proto) living in namespace fd. */
static int socket_in(int fd, int domain, int type, int proto)
{
	int s;

	ns_enter(fd);
	s = socket(domain, type | SOCK_CLOEXEC, proto);
	ns_enter(g_own);
	assert_true(s >= 0);
	return s;
}

static struct nl *nl_in(int fd)
{
	struct nl *nl;

	ns_enter(fd);
	assert_int_equal(nl_open(NETLINK_ROUTE, &nl), 0);
	ns_enter(g_own);
	return nl;
}

static void ip_add(struct nl *nl, int ifindex, const char *c)
{
	struct nl_addr a = {.ifindex = ifindex, .local = pfx(c)};

	assert_int_equal(nl_addr_apply(nl, NL_ADD, &a), 0);
}

static int link_index(struct nl *nl, const char *name, uint8_t *mac)
{
	struct nl_link l;

	assert_int_equal(nl_link_get(nl, 0, name, &l), 0);
	if (mac)
		memcpy(mac, l.addr, 6);
	return l.ifindex;
}

static void link_up(struct nl *nl, const char *name)
{
	assert_int_equal(nl_link_set_up(nl, link_index(nl, name, NULL), true), 0);
}

/* ---- what the kernel holds ------------------------------------------------------------ */

static int sysctl_now(const char *fmt, const char *ifname)
{
	char key[128];
	int v = -1;

	snprintf(key, sizeof(key), fmt, ifname);
	assert_int_equal(sysctl_read(key, &v), 0);
	return v;
}

struct addrs {
	struct nl_addr a[16];
	size_t n;
};

static int addrs_cb(const struct nl_addr *a, void *arg)
{
	struct addrs *l = arg;

	if (l->n < 16)
		l->a[l->n++] = *a;
	return 0;
}

static const struct nl_addr *addr_find(const struct addrs *l, const char *s)
{
	struct addr a = ip(s);

	for (size_t i = 0; i < l->n; i++)
		if (addr_eq(&l->a[i].local.addr, &a))
			return &l->a[i];
	return NULL;
}

static struct addrs addrs_of(int ifindex)
{
	struct addrs l = {.n = 0};

	assert_int_equal(nl_addr_dump(g_nl, AF_UNSPEC, ifindex, addrs_cb, &l), 0);
	return l;
}

struct routes {
	struct nl_route r[16];
	size_t n;
	int oif; /* 0: any */
};

static int routes_cb(const struct nl_route *r, void *arg)
{
	struct routes *l = arg;

	if (l->n < 16 && (!l->oif || r->oif == l->oif)) {
		l->r[l->n] = *r;
		l->r[l->n].hops = NULL;
		l->n++;
	}
	return 0;
}

/* Routes of table (both families), leaving by oif (0: any). */
static struct routes routes_of(uint32_t table, int oif)
{
	struct routes l = {.n = 0, .oif = oif};

	assert_int_equal(nl_route_dump(g_nl, AF_INET, table, routes_cb, &l), 0);
	assert_int_equal(nl_route_dump(g_nl, AF_INET6, table, routes_cb, &l), 0);
	return l;
}

static const struct nl_route *route_find(const struct routes *l, const char *dst, const char *gw)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct nl_route *r = &l->r[i];
		char b[CIDR_STRLEN], g[ADDR_STRLEN];

		cidr_str(&r->dst, b, sizeof(b));
		if (!r->dst.addr.family)
			snprintf(b, sizeof(b), "default%s", r->family == AF_INET6 ? "6" : "");
		if (!strcmp(b, dst) && (!gw || !strcmp(addr_str(&r->gw, g, sizeof(g)), gw)))
			return r;
	}
	return NULL;
}

struct rules {
	struct nl_rule r[32];
	size_t n;
	uint32_t table;
};

static int rules_cb(const struct nl_rule *r, void *arg)
{
	struct rules *l = arg;

	if (r->table == l->table && l->n < 32)
		l->r[l->n++] = *r;
	return 0;
}

static struct rules rules_to(uint32_t table)
{
	struct rules l = {.n = 0, .table = table};

	assert_int_equal(nl_rule_dump(g_nl, AF_INET, rules_cb, &l), 0);
	assert_int_equal(nl_rule_dump(g_nl, AF_INET6, rules_cb, &l), 0);
	return l;
}

static const struct nl_rule *rule_find(const struct rules *l, const char *src, const char *iif)
{
	struct cidr c;

	assert_int_equal(cidr_parse(src, CIDR_BARE, &c), 0);
	for (size_t i = 0; i < l->n; i++)
		if (cidr_cmp(&l->r[i].src, &c) == 0 && !strcmp(l->r[i].iif, iif ? iif : ""))
			return &l->r[i];
	return NULL;
}

static bool link_exists(const char *name)
{
	struct nl_link l;

	return nl_link_get(g_nl, 0, name, &l) == 0;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_ifname(void **state)
{
	char b[16];

	(void)state;
	dev_ifname(mac_a, b);
	assert_string_equal(b, "eg0200c0a80102");
}

static void test_bad_conf(void **state)
{
	struct dev_net_conf c = conf();
	struct dev_net *n;

	(void)state;
	c.lan = "lan\"0";
	assert_int_equal(dev_net_new(&c, &n), -EINVAL);
	assert_null(n);
	c = conf();
	c.macvlan_mode = 99;
	assert_int_equal(dev_net_new(&c, &n), -EINVAL);
}

/* A device's macvlan made and set up, and what it holds; a second run changes nothing. */
static void test_link_and_device(void **state)
{
	struct dev_net_conf c = conf();
	struct dev_net_want a = want_a();
	const struct nl_addr *na;
	struct nl_link l;
	struct addrs ad;
	struct routes rt;
	struct rules ru;
	struct nl_route got;

	(void)state;
	assert_int_equal(dev_net_new(&c, &g_net), 0);
	assert_int_equal(sysctl_now("net/ipv4/ip_forward%s", ""), 1);
	assert_int_equal(sysctl_now("net/ipv4/conf/%s/arp_ignore", "wan0"), 1);
	assert_int_equal(sysctl_now("net/ipv4/conf/%s/arp_announce", "wan0"), 2);

	assert_int_equal(dev_net_link(g_net, &a, &g_macvlan), 0);
	assert_int_equal(nl_link_get(g_nl, 0, "eg0200c0a80102", &l), 0);
	assert_int_equal(l.ifindex, g_macvlan);
	assert_string_equal(l.kind, "macvlan");
	assert_int_equal(l.parent, g_wan);
	assert_int_equal(l.macvlan_mode, NL_MACVLAN_BRIDGE);
	assert_memory_equal(l.addr, mac_a, 6);
	assert_true(l.flags & IFF_UP);
	assert_int_equal(sysctl_now("net/ipv6/conf/%s/accept_ra", l.name), 2);
	assert_int_equal(sysctl_now("net/ipv6/conf/%s/accept_ra_defrtr", l.name), 0);
	assert_int_equal(sysctl_now("net/ipv6/conf/%s/autoconf", l.name), 1);
	assert_int_equal(sysctl_now("net/ipv6/conf/%s/addr_gen_mode", l.name), 0);
	assert_int_equal(sysctl_now("net/ipv4/conf/%s/rp_filter", l.name), 2);
	assert_int_equal(sysctl_now("net/ipv4/conf/%s/arp_ignore", l.name), 1);
	assert_int_equal(sysctl_now("net/ipv4/conf/%s/arp_announce", l.name), 2);
	/* The WAN's own MAC and address are not touched. */
	assert_int_equal(nl_link_get(g_nl, g_wan, NULL, &l), 0);
	assert_memory_equal(l.addr, g_wan_mac, 6);

	for (int i = 0; i < 2; i++) {
		assert_int_equal(dev_net_device(g_net, &a), 0);
		ad = addrs_of(g_macvlan);
		na = addr_find(&ad, "198.51.100.10");
		assert_non_null(na);
		assert_int_equal(na->local.plen, 24);
		assert_true(na->flags & IFA_F_NOPREFIXROUTE);
		assert_true(na->valid_lft > 0 && na->valid_lft <= 3600);
		na = addr_find(&ad, "2001:db8:1::10");
		assert_non_null(na);
		assert_int_equal(na->local.plen, 128);
		assert_true(na->valid_lft > 0 && na->valid_lft <= 3600);
		ad = addrs_of(g_wan);
		assert_null(addr_find(&ad, "198.51.100.10"));
		assert_non_null(addr_find(&ad, "198.51.100.2"));

		/* Main has nothing on the macvlan but what the kernel puts there for IPv6
		 * (fe80::/64, multicast): no subnet route, no default. */
		rt = routes_of(RT_TABLE_MAIN, g_macvlan);
		assert_null(route_find(&rt, "198.51.100.0/24", NULL));
		assert_null(route_find(&rt, "default", NULL));
		assert_null(route_find(&rt, "default6", NULL));
		rt = routes_of(TABLE_BASE + 1, 0);
		assert_int_equal(rt.n, 3);
		assert_non_null(route_find(&rt, "198.51.100.0/24", NULL));
		assert_non_null(route_find(&rt, "default", "198.51.100.1"));
		assert_non_null(route_find(&rt, "default6", "fe80::1"));
		for (size_t j = 0; j < rt.n; j++) {
			assert_int_equal(rt.r[j].oif, g_macvlan);
			assert_int_equal(rt.r[j].protocol, RTPROT_EGRESS);
		}

		ru = rules_to(TABLE_BASE + 1);
		assert_int_equal(ru.n, 3);
		assert_non_null(rule_find(&ru, "192.168.1.2", "lan0"));
		assert_non_null(rule_find(&ru, "198.51.100.10", NULL));
		assert_non_null(rule_find(&ru, "2001:db8:1::10", NULL));
		for (size_t j = 0; j < ru.n; j++) {
			assert_int_equal(ru.r[j].priority, PRIO);
			assert_int_equal(ru.r[j].protocol, RTPROT_EGRESS);
		}
	}

	/* The device's traffic from the LAN leaves by its macvlan; the host's own by the WAN. */
	{
		struct nl_route_query q = {.dst = ip("203.0.113.5"), .src = ip("192.168.1.2"),
			.iif = link_index(g_nl, "lan0", NULL)};

		assert_int_equal(nl_route_lookup(g_nl, &q, &got), 0);
		assert_int_equal(got.oif, g_macvlan);
		assert_int_equal(got.table, TABLE_BASE + 1);
		q.src = ip("192.168.1.9"); /* another LAN host */
		assert_int_equal(nl_route_lookup(g_nl, &q, &got), 0);
		assert_int_equal(got.oif, g_wan);
	}
	{
		struct addr d = ip("203.0.113.5");

		assert_int_equal(nl_route_get(g_nl, &d, &got), 0);
		assert_int_equal(got.oif, g_wan);
		d = ip("198.51.100.77"); /* the WAN's subnet: by the WAN, not the macvlan */
		assert_int_equal(nl_route_get(g_nl, &d, &got), 0);
		assert_int_equal(got.oif, g_wan);
	}
}

/* A new lease replaces the old address and routes; the old ones go. */
static void test_renumber(void **state)
{
	struct dev_net_want a = want_a();
	struct addrs ad;
	struct routes rt;
	struct rules ru;

	(void)state;
	a.wan4 = pfx("198.51.100.20/25");
	a.wan6 = (struct cidr){.plen = 0};
	a.wan6_src = (struct addr){0};
	assert_int_equal(dev_net_device(g_net, &a), 0);
	ad = addrs_of(g_macvlan);
	assert_null(addr_find(&ad, "198.51.100.10"));
	assert_null(addr_find(&ad, "2001:db8:1::10"));
	assert_non_null(addr_find(&ad, "198.51.100.20"));
	rt = routes_of(TABLE_BASE + 1, 0);
	assert_null(route_find(&rt, "198.51.100.0/24", NULL));
	assert_non_null(route_find(&rt, "198.51.100.0/25", NULL));
	ru = rules_to(TABLE_BASE + 1);
	assert_int_equal(ru.n, 2);
	assert_null(rule_find(&ru, "198.51.100.10", NULL));
	assert_non_null(rule_find(&ru, "198.51.100.20", NULL));
	/* A /32 lease: its router is outside the subnet, on the link all the same. */
	a.wan4 = pfx("198.51.100.21/32");
	assert_int_equal(dev_net_device(g_net, &a), 0);
	rt = routes_of(TABLE_BASE + 1, 0);
	assert_non_null(route_find(&rt, "198.51.100.21/32", NULL));
	assert_non_null(route_find(&rt, "default", "198.51.100.1"));
	/* And back. */
	a = want_a();
	assert_int_equal(dev_net_device(g_net, &a), 0);
	assert_int_equal(rules_to(TABLE_BASE + 1).n, 3);
}

/* A restart adopts the macvlan: same link, same addresses. */
static void test_restart_adopts(void **state)
{
	struct dev_net_conf c = conf();
	struct dev_net_want a = want_a();
	struct addrs ad;
	int ifindex = 0;

	(void)state;
	dev_net_free(g_net, true);
	g_net = NULL;
	assert_true(link_exists("eg0200c0a80102"));
	assert_int_equal(sysctl_now("net/ipv4/ip_forward%s", ""), 1);
	assert_int_equal(dev_net_new(&c, &g_net), 0);
	assert_int_equal(dev_net_link(g_net, &a, &ifindex), 0);
	assert_int_equal(ifindex, g_macvlan);
	ad = addrs_of(g_macvlan);
	assert_non_null(addr_find(&ad, "198.51.100.10"));
	assert_int_equal(dev_net_device(g_net, &a), 0);
	assert_int_equal(rules_to(TABLE_BASE + 1).n, 3);
	assert_int_equal(routes_of(TABLE_BASE + 1, 0).n, 3);
}

static void test_nft(void **state)
{
	struct dev_net_want all[2] = {want_a(), want_c()};
	char *text = NULL;

	(void)state;
	all[1].wan4 = (struct cidr){.plen = 0}; /* C has no lease yet: nothing for it */
	assert_int_equal(dev_net_nft(g_net, all, 2), 0);
	assert_int_equal(nft_table_list(g_nft, "inet", DEV_NFT_TABLE, 0, &text), 0);
	assert_non_null(strstr(text,
		"oifname \"eg0200c0a80102\" ip saddr 192.168.1.2 counter packets 0 bytes 0 snat "
		"ip to 198.51.100.10"));
	assert_non_null(strstr(text, "iifname \"eg0200c0a80102\" ip daddr 198.51.100.10 "
				     "tcp dport 8080"));
	assert_non_null(strstr(text, "dnat ip to 192.168.1.2:80"));
	assert_non_null(strstr(text, "dnat ip to 192.168.1.2:23"));
	assert_non_null(strstr(text, "iifname \"lan0\" oifname \"eg0200c0a80102\" ip saddr "
				     "192.168.1.2 counter"));
	assert_null(strstr(text, "192.168.1.3"));
	assert_null(strstr(text, "oifname \"eg02000000beef\""));
	assert_non_null(strstr(text, "iifname != { \"eg0200c0a80102\", \"eg02000000beef\" } accept"));
	assert_non_null(strstr(text, "iifname \"eg0200c0a80102\" meta nfproto ipv6 tcp dport { 2323, 8080 } accept"));
	/* The host's own traffic never leaves with a device's address but by its macvlan. */
	assert_non_null(strstr(text, "oifname { \"lo\", \"eg0200c0a80102\", \"eg02000000beef\" } accept"));
	assert_non_null(strstr(text, "ip saddr 198.51.100.10 counter packets 0 bytes 0 reject"));
	assert_non_null(strstr(text, "ip6 saddr 2001:db8:1::10 counter packets 0 bytes 0 reject"));
	free(text);
	/* Replaced whole: without A's lease, nothing of A. */
	all[0].wan4 = (struct cidr){.plen = 0};
	assert_int_equal(dev_net_nft(g_net, all, 2), 0);
	assert_int_equal(nft_table_list(g_nft, "inet", DEV_NFT_TABLE, 0, &text), 0);
	assert_null(strstr(text, "192.168.1.2"));
	free(text);
	all[0] = want_a();
	assert_int_equal(dev_net_nft(g_net, all, 1), 0);
}

/* ---- traffic -------------------------------------------------------------------------- */

struct arp_pkt {
	struct ethhdr eth;
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t op;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

static void arp_request(int s, const char *target)
{
	struct arp_pkt p = {.htype = htons(1), .ptype = htons(ETH_P_IP), .hlen = 6, .plen = 4,
		.op = htons(1)};
	struct addr t = ip(target), src = ip("198.51.100.1");

	memset(p.eth.h_dest, 0xff, 6);
	memcpy(p.eth.h_source, g_wanp_mac, 6);
	p.eth.h_proto = htons(ETH_P_ARP);
	memcpy(p.sha, g_wanp_mac, 6);
	memcpy(p.spa, src.b, 4);
	memcpy(p.tpa, t.b, 4);
	assert_int_equal(send(s, &p, sizeof(p), 0), (ssize_t)sizeof(p));
}

/* A raw socket on wanp in the upstream namespace; recv gives up after 5 s (a hang guard). */
static int upstream_raw(uint16_t proto)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(proto),
		.sll_ifindex = g_wanp};
	struct timeval tv = {.tv_sec = 5};
	int s = socket_in(g_up, AF_PACKET, SOCK_RAW, htons(proto));

	assert_int_equal(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return s;
}

/*
 * ARP for the device's address, then for the WAN's own.  The WAN answers both in order, so
 * an answer of the WAN's for the device's address would come before its answer for its own.
 * Returns how many answers for the device's address carried the WAN's MAC; *device_seen
 * whether the device's MAC answered.
 */
static int arp_probe(bool *device_seen)
{
	int s = upstream_raw(ETH_P_ARP), wan_answers = 0;
	struct addr dev = ip("198.51.100.10"), own = ip("198.51.100.2");
	bool own_seen = false;

	*device_seen = false;
	arp_request(s, "198.51.100.10");
	arp_request(s, "198.51.100.2");
	while (!own_seen || !*device_seen) {
		struct arp_pkt p;
		ssize_t n = recv(s, &p, sizeof(p), 0);

		assert_true(n >= (ssize_t)sizeof(p)); /* not timed out */
		if (ntohs(p.op) != 2)
			continue;
		if (!memcmp(p.spa, own.b, 4) && !memcmp(p.sha, g_wan_mac, 6))
			own_seen = true;
		if (!memcmp(p.spa, dev.b, 4)) {
			if (!memcmp(p.sha, g_wan_mac, 6))
				wan_answers++;
			if (!memcmp(p.sha, mac_a, 6))
				*device_seen = true;
		}
	}
	close(s);
	return wan_answers;
}

static void write_sysctl(const char *key, int v)
{
	char path[256], b[16];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(b, sizeof(b), "%d\n", v);
	assert_int_equal(write(fd, b, strlen(b)), (ssize_t)strlen(b));
	close(fd);
}

static void test_arp(void **state)
{
	bool dev_seen;

	(void)state;
	assert_int_equal(arp_probe(&dev_seen), 0);
	assert_true(dev_seen);
	/* The check can fail: with the WAN's arp_ignore at the kernel's default it answers. */
	write_sysctl("net/ipv4/conf/wan0/arp_ignore", 0);
	assert_int_equal(arp_probe(&dev_seen), 1);
	assert_true(dev_seen);
	write_sysctl("net/ipv4/conf/wan0/arp_ignore", 1);
}

static void nft_cli(const char *cmds)
{
	char buf[512], *argv[] = {"nft", buf, NULL};
	int status = -1;

	snprintf(buf, sizeof(buf), "%s", cmds);
	free(kt_run_capture(-1, argv, false, &status));
	assert_int_equal(status, 0);
}

/*
 * A UDP packet from the LAN device to the internet, as it arrives upstream: the device's MAC
 * and WAN address, though another table would SNAT it elsewhere at the usual priority.
 */
static void test_egress_identity(void **state)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
	int cap = upstream_raw(ETH_P_IP);
	int s = socket_in(g_lan, AF_INET, SOCK_DGRAM, 0);
	bool seen = false;

	(void)state;
	nft_cli("add table ip othernat; add chain ip othernat post { type nat hook postrouting "
		"priority srcnat; }; add rule ip othernat post snat to 198.51.100.99");
	inet_pton(AF_INET, "203.0.113.5", &to.sin_addr);
	assert_int_equal(sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	while (!seen) {
		uint8_t b[2048];
		ssize_t n = recv(cap, b, sizeof(b), 0);
		const struct ethhdr *eth = (const void *)b;
		struct iphdr iph;

		assert_true(n > 0); /* not timed out */
		if ((size_t)n < sizeof(*eth) + sizeof(iph))
			continue;
		memcpy(&iph, b + sizeof(*eth), sizeof(iph));
		if (iph.protocol != IPPROTO_UDP || iph.daddr != to.sin_addr.s_addr)
			continue;
		assert_memory_equal(eth->h_source, mac_a, 6);
		assert_int_equal(iph.saddr, ip("198.51.100.10").v4.s_addr);
		seen = true;
	}
	close(s);
	close(cap);
	nft_cli("delete table ip othernat");
}

/* A connection to the device's WAN address and forward port reaches it on the LAN. */
static void test_forward_reaches_device(void **state)
{
	struct sockaddr_in lsa = {.sin_family = AF_INET, .sin_port = htons(80)};
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(8080)};
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int l = socket_in(g_lan, AF_INET, SOCK_STREAM, 0), c, a, one = 1;
	struct timeval tv = {.tv_sec = 5};
	char buf[8] = "";

	(void)state;
	inet_pton(AF_INET, "192.168.1.2", &lsa.sin_addr);
	inet_pton(AF_INET, "198.51.100.10", &dst.sin_addr);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(l, (struct sockaddr *)&lsa, sizeof(lsa)), 0);
	assert_int_equal(listen(l, 4), 0);
	assert_int_equal(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	c = socket_in(g_up, AF_INET, SOCK_STREAM, 0);
	assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&dst, sizeof(dst)), 0);
	a = accept(l, (struct sockaddr *)&peer, &plen);
	assert_true(a >= 0);
	assert_int_equal(peer.sin_addr.s_addr, ip("198.51.100.1").v4.s_addr);
	assert_int_equal(write(a, "hi", 2), 2);
	assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(read(c, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	close(a);
	close(c);
	close(l);
}

/* Wait (a hang guard of 10 s, not a timing) until pred holds. */
static bool wait_for(bool (*pred)(void))
{
	for (int i = 0; i < 200; i++) {
		if (pred())
			return true;
		usleep(50 * 1000);
	}
	return pred();
}

static bool wanp_ll_ready(void)
{
	struct addrs l = {.n = 0};

	assert_int_equal(nl_addr_dump(g_nl_up, AF_INET6, g_wanp, addrs_cb, &l), 0);
	for (size_t i = 0; i < l.n; i++)
		if (l.a[i].scope == RT_SCOPE_LINK && !(l.a[i].flags & IFA_F_TENTATIVE))
			return true;
	return false;
}

/* SLAAC from the device's MAC: 02:00:c0:a8:01:02 -> ::c0ff:fea8:102 */
static bool slaac_seen(void)
{
	struct addrs ad = addrs_of(g_macvlan);

	return addr_find(&ad, "2001:db8:1:0:0:c0ff:fea8:102") != NULL;
}

static bool wan_default6(void)
{
	struct routes rt = routes_of(RT_TABLE_MAIN, g_wan);

	return route_find(&rt, "default6", NULL) != NULL;
}

static bool prefix_route_back(void)
{
	struct routes rt = routes_of(RT_TABLE_MAIN, g_macvlan);

	return route_find(&rt, "2001:db8:1::/64", NULL) != NULL;
}

/* The upstream's router advertisement: default router, prefix 2001:db8:1::/64 for SLAAC. */
static void send_ra(void)
{
	struct {
		struct nd_router_advert ra;
		struct nd_opt_prefix_info pi;
	} __attribute__((packed)) m = {0};
	struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_scope_id = (uint32_t)g_wanp};
	int s = socket_in(g_up, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), hops = 255;

	m.ra.nd_ra_type = ND_ROUTER_ADVERT;
	m.ra.nd_ra_curhoplimit = 64;
	m.ra.nd_ra_router_lifetime = htons(1800);
	m.pi.nd_opt_pi_type = ND_OPT_PREFIX_INFORMATION;
	m.pi.nd_opt_pi_len = 4;
	m.pi.nd_opt_pi_prefix_len = 64;
	m.pi.nd_opt_pi_flags_reserved = ND_OPT_PI_FLAG_ONLINK | ND_OPT_PI_FLAG_AUTO;
	m.pi.nd_opt_pi_valid_time = htonl(86400);
	m.pi.nd_opt_pi_preferred_time = htonl(14400);
	inet_pton(AF_INET6, "2001:db8:1::", &m.pi.nd_opt_pi_prefix);
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	assert_int_equal(setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)), 0);
	assert_int_equal(setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &g_wanp, sizeof(g_wanp)), 0);
	assert_int_equal(sendto(s, &m, sizeof(m), 0, (struct sockaddr *)&to, sizeof(to)),
		(ssize_t)sizeof(m));
	close(s);
}

/*
 * An RA upstream: the macvlan makes its SLAAC address from the device's MAC, but its
 * default route stays out of main (the WAN's own does land there: the RA was heard); the
 * device's IPv6 leaves by its table, the host's own by the WAN.
 */
static void test_ra(void **state)
{
	struct dev_net_want a = want_a();
	struct nl_route_query q = {.dst = ip("2001:db8:ffff::1"), .src = ip("2001:db8:1::10")};
	struct routes rt;
	struct nl_route got;

	(void)state;
	assert_true(wait_for(wanp_ll_ready));
	send_ra();
	assert_true(wait_for(slaac_seen));
	assert_true(wait_for(wan_default6));
	rt = routes_of(RT_TABLE_MAIN, g_macvlan);
	assert_null(route_find(&rt, "default6", NULL));
	assert_int_equal(nl_route_lookup(g_nl, &q, &got), 0);
	assert_int_equal(got.oif, g_macvlan);
	assert_int_equal(got.table, TABLE_BASE + 1);
	assert_int_equal(nl_route_get(g_nl, &q.dst, &got), 0);
	assert_int_equal(got.oif, g_wan);
	/* SLAAC put the prefix's on-link route in main on the macvlan, beside the WAN's: the
	 * next update takes it out, and the host's own traffic to the prefix takes the WAN. */
	rt = routes_of(RT_TABLE_MAIN, g_macvlan);
	assert_non_null(route_find(&rt, "2001:db8:1::/64", NULL));
	assert_int_equal(dev_net_device(g_net, &a), 0);
	rt = routes_of(RT_TABLE_MAIN, g_macvlan);
	assert_null(route_find(&rt, "2001:db8:1::/64", NULL));
	assert_non_null(route_find(&rt, "fe80::/64", NULL));
	rt = routes_of(RT_TABLE_MAIN, g_wan);
	assert_non_null(route_find(&rt, "2001:db8:1::/64", NULL));
	assert_true(slaac_seen());
	q.dst = ip("2001:db8:1::99");
	assert_int_equal(nl_route_get(g_nl, &q.dst, &got), 0);
	assert_int_equal(got.oif, g_wan);
	/* Again after the next RA. */
	send_ra();
	assert_true(wait_for(prefix_route_back));
	assert_int_equal(dev_net_prune_main(g_net, mac_a), 0);
	assert_false(prefix_route_back());
	assert_int_equal(dev_net_prune_main(g_net, mac_c), -ENODEV);
}

/* The drop counter of the input chain. */
static long input_drops(void)
{
	char *text = NULL, *p;
	long v = -1;

	assert_int_equal(nft_table_list(g_nft, "inet", DEV_NFT_TABLE, 0, &text), 0);
	for (p = text; (p = strstr(p, "counter packets ")); p++) {
		char *eol = strchr(p, '\n');

		if (eol && memmem(p, (size_t)(eol - p), "drop", 4)) {
			v = strtol(p + strlen("counter packets "), NULL, 10);
			break;
		}
	}
	free(text);
	assert_true(v >= 0);
	return v;
}

static int listen_on(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	struct timeval tv = {.tv_sec = 5};
	socklen_t len;
	struct addr a = ip(addr);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(s >= 0);
	assert_int_equal(addr_to_sockaddr(&a, port, &ss, &len), 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	assert_int_equal(bind(s, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(s, 8), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return s;
}

/* A socket in the upstream namespace connecting to addr:port; blocking unless nonblock. */
static int upstream_connect(const char *addr, uint16_t port, bool nonblock)
{
	struct sockaddr_storage ss;
	struct timeval tv = {.tv_sec = 5};
	socklen_t len;
	struct addr a = ip(addr);
	int s = socket_in(g_up, a.family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0), r;

	assert_int_equal(addr_to_sockaddr(&a, port, &ss, &len), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	r = connect(s, (struct sockaddr *)&ss, len);
	if (nonblock)
		assert_true(r == 0 || errno == EINPROGRESS);
	else
		assert_int_equal(r, 0);
	return s;
}

/*
 * The host's services are not open on the devices' addresses: a connection to the host on a
 * device's WAN IPv4 is dropped (one to the WAN's own address, sent after it, gets through
 * and is the only one accepted), while the relay's port on the device's WAN IPv6 is open.
 */
static void test_input(void **state)
{
	long drops = input_drops();
	int l = listen_on(AF_INET, "0.0.0.0", 2222), c1, c2, a;
	struct sockaddr_in local;
	socklen_t len = sizeof(local);

	(void)state;
	c1 = upstream_connect("198.51.100.10", 2222, true);
	c2 = upstream_connect("198.51.100.2", 2222, false);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(getsockname(a, (struct sockaddr *)&local, &len), 0);
	assert_int_equal(local.sin_addr.s_addr, ip("198.51.100.2").v4.s_addr);
	assert_true(input_drops() > drops);
	close(a);
	close(c1);
	close(c2);
	close(l);

	l = listen_on(AF_INET6, "2001:db8:1::10", 8080);
	c1 = upstream_connect("2001:db8:1::10", 8080, false);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	close(a);
	close(c1);
	close(l);
}

/* ---- sweep, diagnose, the end --------------------------------------------------------- */

static void test_sweep(void **state)
{
	struct dev_net_want a = want_a(), cw = want_c();
	struct nl_macvlan foreign = {.name = "mv0", .parent = g_wan, .mode = NL_MACVLAN_BRIDGE};
	struct nl_macvlan named = {.name = "eg0200deadbeef", .parent = 0,
		.mode = NL_MACVLAN_BRIDGE};
	struct nl_rule frule = {.family = AF_INET, .protocol = RTPROT_EGRESS, .has_priority = true,
		.priority = PRIO, .table = 500};
	struct nl_rule frule2 = {.family = AF_INET, .protocol = RTPROT_STATIC,
		.has_priority = true, .priority = PRIO, .table = TABLE_BASE + 7};
	struct nl_route froute = {.family = AF_INET, .table = TABLE_BASE + 7,
		.protocol = RTPROT_STATIC, .type = RTN_BLACKHOLE};

	(void)state;
	named.parent = link_index(g_nl, "lan0", NULL);
	assert_int_equal(nl_link_add_macvlan(g_nl, &foreign), 0);
	assert_int_equal(nl_link_add_macvlan(g_nl, &named), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &frule), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_ADD, &frule2), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_ADD, &froute), 0);
	/* C, a device of an earlier run. */
	assert_int_equal(dev_net_link(g_net, &cw, NULL), 0);
	assert_int_equal(dev_net_device(g_net, &cw), 0);
	assert_true(link_exists("eg02000000beef"));
	assert_int_equal(rules_to(TABLE_BASE + 2).n, 2);

	/* An earlier run's table with many routes (more than one read of a table holds). */
	for (int i = 0; i < 100; i++) {
		struct nl_route bh = {.family = AF_INET, .table = TABLE_BASE + 5,
			.protocol = RTPROT_EGRESS, .type = RTN_BLACKHOLE};
		char d[32];

		snprintf(d, sizeof(d), "10.9.%d.0/24", i);
		assert_int_equal(cidr_parse(d, 0, &bh.dst), 0);
		assert_int_equal(nl_route_apply(g_nl, NL_ADD, &bh), 0);
	}

	assert_int_equal(dev_net_sweep(g_net, &a, 1), 0);
	assert_int_equal(routes_of(TABLE_BASE + 5, 0).n, 0);
	assert_false(link_exists("eg02000000beef"));
	assert_int_equal(rules_to(TABLE_BASE + 2).n, 0);
	assert_int_equal(routes_of(TABLE_BASE + 2, 0).n, 0);
	/* Ours that are wanted stay. */
	assert_true(link_exists("eg0200c0a80102"));
	assert_int_equal(rules_to(TABLE_BASE + 1).n, 3);
	assert_int_equal(routes_of(TABLE_BASE + 1, 0).n, 3);
	/* Nobody else's goes. */
	assert_true(link_exists("mv0"));
	assert_true(link_exists("eg0200deadbeef"));
	assert_int_equal(rules_to(500).n, 1);
	assert_int_equal(rules_to(TABLE_BASE + 7).n, 1);
	assert_int_equal(routes_of(TABLE_BASE + 7, 0).n, 1);
	assert_int_equal(nl_link_del(g_nl, link_index(g_nl, "mv0", NULL)), 0);
	assert_int_equal(nl_link_del(g_nl, link_index(g_nl, "eg0200deadbeef", NULL)), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &frule), 0);
	assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &frule2), 0);
	assert_int_equal(nl_route_apply(g_nl, NL_DEL, &froute), 0);
}

/* The check named name in checks (an array of diagnose's objects). */
static json_t *check_get(json_t *checks, const char *name)
{
	size_t i;
	json_t *c;

	json_array_foreach(checks, i, c)
		if (!strcmp(json_string_value(json_object_get(c, "check")), name))
			return c;
	fail_msg("no check %s", name);
	return NULL;
}

static void want_check(json_t *checks, const char *name, bool ok, bool fixed)
{
	json_t *c = check_get(checks, name);

	if (json_is_true(json_object_get(c, "ok")) != ok ||
		json_is_true(json_object_get(c, "fixed")) != fixed)
		fail_msg("%s: %s", name, json_dumps(c, 0));
}

static void test_diagnose(void **state)
{
	struct dev_net_want a = want_a();
	struct nl_rule r = {.family = AF_INET, .protocol = RTPROT_EGRESS, .has_priority = true,
		.priority = PRIO, .table = TABLE_BASE + 1};
	json_t *checks = json_array();

	(void)state;
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, false, checks), 0);
	want_check(checks, "forwarding", true, false);
	want_check(checks, "wan link", true, false);
	want_check(checks, "macvlan eg0200c0a80102", true, false);
	want_check(checks, "rules eg0200c0a80102", true, false);
	want_check(checks, "nft", true, false);
	assert_string_equal(json_string_value(json_object_get(
				    check_get(checks, "macvlan eg0200c0a80102"), "device")),
		"02:00:c0:a8:01:02");
	json_array_clear(checks);

	/* A deleted rule: found, then put back. */
	cidr_from_addr(&a.wan4.addr, &r.src);
	assert_int_equal(nl_rule_apply(g_nl, NL_DEL, &r), 0);
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, false, checks), 1);
	want_check(checks, "rules eg0200c0a80102", false, false);
	want_check(checks, "macvlan eg0200c0a80102", true, false);
	json_array_clear(checks);
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, true, checks), 0);
	want_check(checks, "rules eg0200c0a80102", false, true);
	{
		struct rules ru = rules_to(TABLE_BASE + 1);

		assert_int_equal(ru.n, 3);
		assert_non_null(rule_find(&ru, "198.51.100.10", NULL));
	}
	json_array_clear(checks);

	/* A deleted macvlan (and with it its addresses and routes): found, then made again. */
	assert_int_equal(nl_link_del(g_nl, g_macvlan), 0);
	assert_true(dev_net_diagnose(g_net, &a, 1, false, checks) >= 3);
	want_check(checks, "macvlan eg0200c0a80102", false, false);
	want_check(checks, "addresses eg0200c0a80102", false, false);
	want_check(checks, "routes eg0200c0a80102", false, false);
	assert_false(link_exists("eg0200c0a80102"));
	json_array_clear(checks);
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, true, checks), 0);
	want_check(checks, "macvlan eg0200c0a80102", false, true);
	g_macvlan = link_index(g_nl, "eg0200c0a80102", NULL);
	{
		struct addrs ad = addrs_of(g_macvlan);

		assert_non_null(addr_find(&ad, "198.51.100.10"));
	}
	assert_int_equal(routes_of(TABLE_BASE + 1, 0).n, 3);
	assert_int_equal(sysctl_now("net/ipv4/conf/%s/rp_filter", "eg0200c0a80102"), 2);
	json_array_clear(checks);

	/* A setting changed behind our back. */
	write_sysctl("net/ipv6/conf/eg0200c0a80102/accept_ra_defrtr", 1);
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, false, checks), 1);
	want_check(checks, "settings eg0200c0a80102", false, false);
	json_array_clear(checks);
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, true, checks), 0);
	want_check(checks, "settings eg0200c0a80102", false, true);
	assert_int_equal(sysctl_now("net/ipv6/conf/%s/accept_ra_defrtr", "eg0200c0a80102"), 0);
	json_array_clear(checks);

	/* The nft table deleted behind our back. */
	{
		char *err = NULL;

		assert_int_equal(nft_table_delete(g_nft, "inet", DEV_NFT_TABLE, &err), 0);
		free(err);
	}
	assert_int_equal(dev_net_diagnose(g_net, &a, 1, true, checks), 0);
	want_check(checks, "nft", false, true);
	assert_int_equal(nft_table_exists(g_nft, "inet", DEV_NFT_TABLE), 1);
	json_decref(checks);
}

static int proxy_entries(void);

static void test_device_del_and_free(void **state)
{
	struct dev_net_want a = want_a();

	(void)state;
	assert_int_equal(dev_net_device_del(g_net, a.mac, a.slot), 0);
	assert_false(link_exists("eg0200c0a80102"));
	assert_int_equal(rules_to(TABLE_BASE + 1).n, 0);
	assert_int_equal(routes_of(TABLE_BASE + 1, 0).n, 0);
	/* Again: nothing left to remove is no error. */
	assert_int_equal(dev_net_device_del(g_net, a.mac, a.slot), 0);
	/* Stop without keep: every link, rule and the table go.  (The sysctls stay: this
	 * instance found them at its values, held since the one before the restart.) */
	assert_int_equal(dev_net_link(g_net, &a, NULL), 0);
	assert_int_equal(dev_net_device(g_net, &a), 0);
	dev_net_free(g_net, false);
	g_net = NULL;
	assert_false(link_exists("eg0200c0a80102"));
	assert_int_equal(rules_to(TABLE_BASE + 1).n, 0);
	assert_int_equal(nft_table_exists(g_nft, "inet", DEV_NFT_TABLE), 0);
	assert_int_equal(proxy_entries(), 0);
}

static int proxy_cb(const struct nl_neigh *ne, void *arg)
{
	struct addr want = ip("2001:db8:1::10");

	if (ne->ifindex == g_wan && addr_eq(&ne->dst, &want))
		(*(int *)arg)++;
	return 0;
}

static int proxy_entries(void)
{
	int n = 0;

	assert_int_equal(nl_neigh_dump(g_nl, AF_INET6, g_wan, true, proxy_cb, &n), 0);
	return n;
}

/* With proxy_ndp, the WAN answers NS for the device's WAN IPv6; the entry goes with it. */
static void test_proxy_ndp(void **state)
{
	struct dev_net_conf c = conf();
	struct dev_net_want a = want_a();

	(void)state;
	assert_int_equal(proxy_entries(), 0);
	dev_net_free(g_net, true);
	c.proxy_ndp = true;
	assert_int_equal(dev_net_new(&c, &g_net), 0);
	assert_int_equal(sysctl_now("net/ipv6/conf/%s/proxy_ndp", "wan0"), 1);
	assert_int_equal(dev_net_device(g_net, &a), 0);
	assert_int_equal(proxy_entries(), 1);
	a.wan6_src = ip("2001:db8:1::11");
	assert_int_equal(dev_net_device(g_net, &a), 0);
	assert_int_equal(proxy_entries(), 0); /* the old address's entry went */
	a = want_a();
	assert_int_equal(dev_net_device(g_net, &a), 0);
	assert_int_equal(proxy_entries(), 1);
	assert_int_equal(dev_net_device_del(g_net, a.mac, a.slot), 0);
	assert_int_equal(proxy_entries(), 0);
	assert_int_equal(dev_net_link(g_net, &a, &g_macvlan), 0);
	assert_int_equal(dev_net_device(g_net, &a), 0);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	struct nl_route def = {.family = AF_INET, .gw = {.family = 0}};

	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0 || (g_own = ns_self()) < 0 || (g_up = ns_new()) < 0 ||
		(g_lan = ns_new()) < 0)
		return -1;
	if (nl_open(NETLINK_ROUTE, &g_nl) < 0 || !(g_nft = nft_new()))
		return -1;
	g_nl_up = nl_in(g_up);
	g_nl_lan = nl_in(g_lan);
	if (nl_link_add_veth(g_nl, "wan0", "wanp", g_up) < 0 ||
		nl_link_add_veth(g_nl, "lan0", "lanp", g_lan) < 0)
		return -1;
	g_wan = link_index(g_nl, "wan0", g_wan_mac);
	g_wanp = link_index(g_nl_up, "wanp", g_wanp_mac);
	link_up(g_nl, "wan0");
	link_up(g_nl, "lan0");
	link_up(g_nl_up, "wanp");
	link_up(g_nl_lan, "lanp");
	ip_add(g_nl, g_wan, "198.51.100.2/24");
	ip_add(g_nl, link_index(g_nl, "lan0", NULL), "192.168.1.1/24");
	ip_add(g_nl_up, g_wanp, "198.51.100.1/24");
	/* The IPv6 router: the link-local the devices' tables route by, an address on the
	 * prefix; no DAD, so they are usable at once. */
	{
		struct nl_addr a6 = {.ifindex = g_wanp, .local = pfx("fe80::1/64"),
			.flags = IFA_F_NODAD};

		if (nl_addr_apply(g_nl_up, NL_ADD, &a6) < 0)
			return -1;
		a6.local = pfx("2001:db8:1::1/64");
		if (nl_addr_apply(g_nl_up, NL_ADD, &a6) < 0)
			return -1;
	}
	ip_add(g_nl_lan, link_index(g_nl_lan, "lanp", NULL), "192.168.1.2/24");
	def.gw = ip("198.51.100.1");
	def.oif = g_wan;
	if (nl_route_apply(g_nl, NL_ADD, &def) < 0)
		return -1;
	def.gw = ip("192.168.1.1");
	def.oif = link_index(g_nl_lan, "lanp", NULL);
	if (nl_route_apply(g_nl_lan, NL_ADD, &def) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dev_net_free(g_net, false);
	nft_free(g_nft);
	nl_free(g_nl);
	nl_free(g_nl_up);
	nl_free(g_nl_lan);
	close(g_up);
	close(g_lan);
	close(g_own);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ifname),
		cmocka_unit_test(test_bad_conf),
		cmocka_unit_test(test_link_and_device),
		cmocka_unit_test(test_renumber),
		cmocka_unit_test(test_restart_adopts),
		cmocka_unit_test(test_nft),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_egress_identity),
		cmocka_unit_test(test_forward_reaches_device),
		cmocka_unit_test(test_ra),
		cmocka_unit_test(test_input),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_diagnose),
		cmocka_unit_test(test_proxy_ndp),
		cmocka_unit_test(test_device_del_and_free),
	};

	return kt_exit_status(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
