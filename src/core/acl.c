/*
 * acl.c - the client ACL of the proxy and the DNS forwarder: the allow list, the host's
 * addresses as the kernel reports them, the verdict, and the socket options that tell
 * which interface a client came in through.
 *
 * Threads: acl_check() may run on the proxy's workers while the main thread follows the
 * kernel's addresses or sets a new allow list; those are under the acl's rwlock (taken for
 * reading by acl_check(), for writing by the changes).  The uplink set is read as it is:
 * it changes on the main thread at a reload only.
 *
 * Must not change anything in the kernel (it only reads addresses), nor log: its callers
 * log their refusals, rate-limited, with the client's address.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>

#include "acl.h"
#include "conf.h"
#include "log.h"
#include "nl.h"
#include "uplink.h"
#include "util.h"

const char *const acl_verdict_name[_ACL_VERDICT_MAX] = {
	[ACL_ALLOW] = "allowed",
	[ACL_DENY_UPLINK] = "came in through an uplink interface",
	[ACL_DENY_UNLISTED] = "not in the allow list",
	[ACL_DENY_NO_IFACE] = "the interface it came in through is unknown",
};

/* What "local" always holds: loopback, RFC 1918, RFC 4193 (fc00::/7), link-local. */
#define ACL_BUILTIN                                                                                \
	"127.0.0.0/8 ::1/128 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7 "                    \
	"169.254.0.0/16 fe80::/10"

/* An address of the host: on which interface, and the subnet it makes reachable there. */
struct acl_ifaddr {
	int ifindex;
	struct addr local;
	struct cidr subnet; /* the peer's prefix on a point-to-point address */
};

struct acl {
	pthread_rwlock_t lock; /* allow, local, addrs */
	struct uplink_set *set;
	struct pfxset allow;
	bool local;
	struct pfxset builtin;
	struct acl_ifaddr *addrs;
	size_t n_addrs;
	struct nl *nl;
	struct nl_monitor *mon;
};

int acl_word_parse(const char *w, struct cidr *ret)
{
	if (streq(w, ACL_LOCAL))
		return 1;
	return cidr_parse(w, CIDR_BARE | CIDR_V4 | CIDR_V6, ret);
}

int acl_new(struct uplink_set *set, struct acl **ret)
{
	struct acl *a = xcalloc(1, sizeof(*a));
	int r;

	pthread_rwlock_init(&a->lock, NULL);
	a->set = set;
	pfxset_init(&a->allow);
	pfxset_init(&a->builtin);
	r = pfxset_parse(&a->builtin, ACL_BUILTIN, 0, NULL);
	if (r < 0) {
		acl_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

void acl_free(struct acl *a)
{
	if (!a)
		return;
	nl_monitor_free(a->mon);
	nl_free(a->nl);
	pfxset_clear(&a->allow);
	pfxset_clear(&a->builtin);
	free(a->addrs);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

int acl_set_allow(struct acl *a, const struct word_list *allow)
{
	struct pfxset s;
	bool local = false;
	struct cidr c;
	int r = 0;

	pfxset_init(&s);
	for (size_t i = 0; i < allow->n && r >= 0; i++) {
		r = acl_word_parse(allow->v[i], &c);
		if (r == 1)
			local = true;
		else if (r == 0)
			r = pfxset_add(&s, &c);
	}
	if (r < 0) {
		pfxset_clear(&s);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&a->lock);
	pfxset_clear(&a->allow);
	a->allow = s;
	a->local = local;
	pthread_rwlock_unlock(&a->lock);
	return 0;
}

static struct acl_ifaddr *ifaddr_find(struct acl *a, int ifindex, const struct addr *local)
{
	for (size_t i = 0; i < a->n_addrs; i++)
		if (a->addrs[i].ifindex == ifindex && addr_eq(&a->addrs[i].local, local))
			return &a->addrs[i];
	return NULL;
}

/* Write-locked. */
static void addr_event(struct acl *a, const struct nl_addr *addr, bool del)
{
	struct acl_ifaddr *e = ifaddr_find(a, addr->ifindex, &addr->local.addr);

	if (del) {
		if (e)
			*e = a->addrs[--a->n_addrs];
		return;
	}
	if (!e) {
		a->addrs = xrealloc(a->addrs, (a->n_addrs + 1) * sizeof(*a->addrs));
		e = &a->addrs[a->n_addrs++];
	}
	e->ifindex = addr->ifindex;
	e->local = addr->local.addr;
	e->subnet.addr = addr_is_set(&addr->peer) ? addr->peer : addr->local.addr;
	e->subnet.plen = addr->local.plen;
	cidr_clear_hostbits(&e->subnet);
}

void acl_addr_event(struct acl *a, const struct nl_addr *addr, bool del)
{
	pthread_rwlock_wrlock(&a->lock);
	addr_event(a, addr, del);
	pthread_rwlock_unlock(&a->lock);
}

/* Is ifindex the interface of an uplink: the one it names, or the one with its source? */
static bool uplink_interface(const struct acl *a, int ifindex)
{
	for (size_t i = 0; i < a->set->n; i++) {
		const struct uplink *u = a->set->v[i];

		if (u->ifname[0] && u->ifindex == ifindex)
			return true;
		if (!addr_is_set(&u->source))
			continue;
		for (size_t j = 0; j < a->n_addrs; j++)
			if (a->addrs[j].ifindex == ifindex &&
				addr_eq(&a->addrs[j].local, &u->source))
				return true;
	}
	return false;
}

static bool own_address(const struct acl *a, const struct addr *client)
{
	for (size_t i = 0; i < a->n_addrs; i++)
		if (addr_eq(&a->addrs[i].local, client))
			return true;
	return false;
}

/* In "local": the built-in ranges, the host's addresses, its non-uplink subnets. */
static bool local_client(const struct acl *a, const struct addr *client)
{
	if (pfxset_contains(&a->builtin, client) || own_address(a, client))
		return true;
	for (size_t i = 0; i < a->n_addrs; i++)
		if (cidr_contains(&a->addrs[i].subnet, client) &&
			!uplink_interface(a, a->addrs[i].ifindex))
			return true;
	return false;
}

static enum acl_verdict check(struct acl *a, const struct addr *client, int ifindex)
{
	if (!own_address(a, client)) {
		if (ifindex <= 0)
			return ACL_DENY_NO_IFACE;
		if (uplink_interface(a, ifindex))
			return ACL_DENY_UPLINK;
	}
	if (pfxset_contains(&a->allow, client) || (a->local && local_client(a, client)))
		return ACL_ALLOW;
	return ACL_DENY_UNLISTED;
}

enum acl_verdict acl_check(struct acl *a, const struct addr *client, int ifindex)
{
	enum acl_verdict v;

	pthread_rwlock_rdlock(&a->lock);
	v = check(a, client, ifindex);
	pthread_rwlock_unlock(&a->lock);
	return v;
}

const char *acl_reason(enum acl_verdict v, int ifindex, char *buf, size_t len)
{
	char ifname[IF_NAMESIZE];

	if (ifindex <= 0)
		snprintf(buf, len, "%s", acl_verdict_name[v]);
	else if (if_indextoname((unsigned)ifindex, ifname))
		snprintf(buf, len, "%s (%s)", acl_verdict_name[v], ifname);
	else
		snprintf(buf, len, "%s (interface %d)", acl_verdict_name[v], ifindex);
	return buf;
}

/* ------------------------------------------------------------ the kernel's addresses */

static int dump_cb(const struct nl_addr *addr, void *arg)
{
	addr_event(arg, addr, false);
	return 0;
}

static int acl_dump(struct acl *a)
{
	int r;

	/* the dump's messages are read while locked: the proxy's workers wait meanwhile */
	pthread_rwlock_wrlock(&a->lock);
	a->n_addrs = 0;
	r = nl_addr_dump(a->nl, AF_UNSPEC, 0, dump_cb, a);
	pthread_rwlock_unlock(&a->lock);
	if (r < 0)
		log_debug("acl: address dump: %s", strerror(-r));
	return r;
}

static void event_cb(const struct nl_event *ev, void *arg)
{
	struct acl *a = arg;

	if (ev->type == NL_EVENT_RESYNC)
		acl_dump(a);
	else if (ev->type == NL_EVENT_ADDR)
		acl_addr_event(a, &ev->addr, ev->del);
}

int acl_follow(struct acl *a, struct event_base *base)
{
	int r;

	if (a->mon)
		return 0;
	r = nl_open(NETLINK_ROUTE, &a->nl);
	if (r < 0)
		return r;
	/* subscribe before the dump so that no change falls between the two */
	r = nl_monitor_new(base, NL_GROUP_ADDR, event_cb, a, &a->mon);
	if (r < 0)
		return r;
	return acl_dump(a);
}

/* ------------------------------------------------------------ sockets */

int acl_sock_prepare(int fd, int family)
{
	int one = 1, r;

	if (family == AF_INET)
		r = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	else
		r = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	return r < 0 ? -errno : 0;
}

/*
 * Which interface a TCP connection came in through, once accepted.  The ways to learn it:
 * - the interface that holds the local address: wrong, Linux is a weak host and takes a
 *   packet for its LAN address from any interface (and a TPROXY socket's local address is
 *   not even ours);
 * - a route lookup back to the client: says where replies would go, not where the client
 *   came from, and policy routing makes the two differ;
 * - a listener per interface with SO_BINDTODEVICE: every address change would reopen them;
 * - IP_PKTOPTIONS / IPV6_2292PKTOPTIONS, used here: with IP_PKTINFO / IPV6_RECVPKTINFO on
 *   the listener, the kernel keeps in each socket it makes from a handshake the interface
 *   the handshake's packet came in through (inet_iif(), in tcp_v4_syn_recv_sock() and
 *   tcp_v6_syn_recv_sock(): also IPv4 on a dual-stack socket, and REDIRECTed and TPROXY
 *   connections, which take the same path) and returns it as an IP_PKTINFO or
 *   IPV6_PKTINFO control message.
 * A connection from the host itself reports the interface that holds the address it
 * connected to (acl_check() knows).
 */
int acl_sock_ifindex(int fd, int family)
{
	union {
		struct cmsghdr h;
		uint8_t b[256];
	} buf;
	socklen_t len = sizeof(buf);
	struct msghdr mh = {0};
	int r;

	if (family == AF_INET)
		r = getsockopt(fd, IPPROTO_IP, IP_PKTOPTIONS, buf.b, &len);
	else
		r = getsockopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, buf.b, &len);
	if (r < 0)
		return -errno;
	mh.msg_control = buf.b;
	mh.msg_controllen = len;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO &&
			h->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(h), sizeof(pi));
			return pi.ipi_ifindex > 0 ? pi.ipi_ifindex : -ENOENT;
		}
		if (h->cmsg_level == IPPROTO_IPV6 && h->cmsg_type == IPV6_PKTINFO &&
			h->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(h), sizeof(pi));
			return pi.ipi6_ifindex > 0 ? (int)pi.ipi6_ifindex : -ENOENT;
		}
	}
	return -ENOENT;
}
