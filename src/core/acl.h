/*
 * acl.h - the client ACL of egressd's services (the proxy, the DNS forwarder): who may
 * use them.
 *
 * A client is admitted when its address is in the allow list ([proxy] allow, [dns] allow:
 * prefixes and the word "local") and it did not come in through an uplink interface,
 * whatever the list says.  "local" stands for loopback, the private ranges (RFC 1918,
 * RFC 4193), link-local, this host's own addresses and the subnets of its interfaces that
 * are not uplink interfaces.
 *
 * An uplink interface is the interface an uplink names, or the one that holds an uplink's
 * source address (a dispatch uplink `192.0.2.1@3` leaves through the interface with
 * 192.0.2.1).  An uplink known only by its gateway names no interface: the route module's
 * gateways often sit on the LAN itself, beside the clients.
 *
 * The host's addresses are learned from the kernel (a netlink dump, then address events),
 * so a new address or interface counts from the next client on; the uplinks are read from
 * the shared model at each decision.
 */
#ifndef EGRESS_ACL_H
#define EGRESS_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"

struct event_base;
struct nl_addr;
struct uplink_set;
struct word_list;

enum acl_verdict {
	ACL_ALLOW,
	ACL_DENY_UPLINK,   /* came in through an uplink interface */
	ACL_DENY_UNLISTED, /* its address is not in the allow list */
	ACL_DENY_NO_IFACE, /* the interface it came in through is unknown */
	_ACL_VERDICT_MAX,
};
extern const char *const acl_verdict_name[_ACL_VERDICT_MAX];

/* The word that stands for the default set. */
#define ACL_LOCAL "local"

/*
 * One word of an allow list: 1 for "local", 0 for an address or prefix (into *ret; a bare
 * address is a host prefix), or -errno as cidr_parse() (cidr_strerror() says why).
 */
int acl_word_parse(const char *w, struct cidr *ret);

struct acl;

/* An ACL over the uplinks of set (borrowed: must outlive it); it admits nobody until
 * acl_set_allow().  *ret is the caller's: acl_free() it. */
int acl_new(struct uplink_set *set, struct acl **ret);
void acl_free(struct acl *a);
/* Follow the host's addresses from the kernel: a dump now, then address events on base. */
int acl_follow(struct acl *a, struct event_base *base);
/* Replace the allow list (borrowed, validated by the configuration); -EINVAL changes nothing. */
int acl_set_allow(struct acl *a, const struct word_list *allow);
/* An address of the host appeared or went (what acl_follow() feeds in; also for tests). */
void acl_addr_event(struct acl *a, const struct nl_addr *addr, bool del);

/*
 * May client (an unmapped address) use the service, having come in through interface
 * ifindex (0 or less: not known)?  A client that is one of the host's own addresses is the
 * host itself: its packets come in through the interface that holds the address it asked
 * for, which says nothing about where it is, so only the list decides.
 */
enum acl_verdict acl_check(struct acl *a, const struct addr *client, int ifindex);

/* "came in through an uplink interface (isp1)": why, for a log line, into buf (returned). */
const char *acl_reason(enum acl_verdict v, int ifindex, char *buf, size_t len);

/* Make a listening socket (TCP or UDP) of family report the interface each connection or
 * datagram comes in through; 0 or -errno. */
int acl_sock_prepare(int fd, int family);
/* The interface an accepted TCP connection came in through (its listener, of family,
 * prepared), or -errno. */
int acl_sock_ifindex(int fd, int family);

#endif
