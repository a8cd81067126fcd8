/*
 * nl.h - netlink for egress over libmnl: routes (multipath, nexthop ids), nexthop objects
 * and groups (resilient too), FIB rules, links (veth, macvlan), addresses, neighbours,
 * conntrack by mark, and an event monitor on the libevent loop.
 *
 * Layers, bottom up:
 *  - struct nl: one netlink socket of one protocol with its own sequence numbers.
 *    nl_request() sends one message and waits for the kernel's ack; nl_dump() and
 *    nl_query() pass each reply to a callback.  Errors are -errno from the kernel, and the
 *    kernel's extended ack text stays readable through nl_last_error().
 *  - builders: nl_<object>_build() writes one request into a caller's buffer and touches
 *    no socket, so unit tests compare bytes.  They set NLM_F_REQUEST | NLM_F_ACK and the
 *    operation's flags; sequence and port id are filled in by nl_request().
 *  - parsers: nl_<object>_parse() reads a kernel message (a dump reply or an event) into a
 *    struct.  They trust nothing: every length and attribute is checked.
 *  - wrappers: nl_<object>_apply() (build + request), nl_<object>_dump() (typed callbacks).
 *
 * Nothing here logs above debug, keeps global state or changes anything the caller did
 * not ask for.  Every function returns 0 or -errno unless its comment says otherwise.
 * Typed callbacks return 0 to go on or -errno to stop; a dump stopped by its callback
 * still reads the rest of the kernel's answer, then returns the callback's error.
 * Pointers inside a parsed struct handed to a callback (hops, group members) are valid
 * only during the callback.
 */
#ifndef EGRESS_NL_H
#define EGRESS_NL_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

struct event_base;

#define NL_IFNAMSIZ    16    /* IFNAMSIZ, without pulling in <net/if.h> or <linux/if.h> */
#define NL_LLADDR_MAX  32    /* MAX_ADDR_LEN */
#define NL_ERRMSG_MAX  256   /* longest extended ack text kept */
#define NL_MSG_BUFSIZE 65536 /* send buffer of the wrappers; plenty for 1000 multipath hops */

/* What a request does to an object: NLM_F_CREATE|NLM_F_EXCL, NLM_F_CREATE|NLM_F_REPLACE, delete. */
enum nl_op {
	NL_ADD,
	NL_REPLACE,
	NL_DEL,
	_NL_OP_MAX,
};
extern const char *const nl_op_name[_NL_OP_MAX];

/* ---- socket, request/ack, dump (nl.c) ---- */

struct nl;

/* Raw message callback; nlh is borrowed for the call.  0 go on, -errno stop. */
typedef int (*nl_msg_cb)(const struct nlmsghdr *nlh, void *arg);

/*
 * Open a blocking netlink socket of protocol (NETLINK_ROUTE, NETLINK_NETFILTER) with
 * extended acks on (and strict dump checking for NETLINK_ROUTE).  *ret is owned by the
 * caller: nl_free() it.
 */
int nl_open(int protocol, struct nl **ret);
void nl_free(struct nl *nl);
int nl_fd(const struct nl *nl);

/*
 * Send nlh (the caller's buffer; nlmsg_seq and nlmsg_pid are overwritten, NLM_F_ACK is
 * added) and wait for the kernel's answer.  Returns 0 on ack or the kernel's -errno.
 * Replies other than the ack (NLM_F_ECHO, RTM_GET* without NLM_F_DUMP) go to cb if set.
 * -ENOBUFS if the socket overran, -EMSGSIZE if a reply did not fit our buffer.
 */
int nl_request(struct nl *nl, struct nlmsghdr *nlh);
int nl_query(struct nl *nl, struct nlmsghdr *nlh, nl_msg_cb cb, void *arg);
/*
 * As nl_query() with NLM_F_DUMP added.  -EINTR when the kernel flagged the dump as
 * interrupted by a concurrent change (NLM_F_DUMP_INTR): everything was delivered, but may
 * be inconsistent; dump again.
 */
int nl_dump(struct nl *nl, struct nlmsghdr *nlh, nl_msg_cb cb, void *arg);
/*
 * The kernel's extended ack text for the last request that failed ("Nexthop device is not
 * up"), or "" when it gave none.  Owned by nl, valid until the next request.
 */
const char *nl_last_error(const struct nl *nl);

/*
 * Parse an NLMSG_ERROR message (nlh borrowed): returns its error (0 for an ack, or -errno)
 * and copies the extended ack text, if any, into msg (caller's, msglen bytes, always
 * NUL-terminated when msglen > 0).  -EBADMSG if the message is malformed.
 */
int nl_ack_parse(const struct nlmsghdr *nlh, char *msg, size_t msglen);

/* ---- routes (nl_route.c) ---- */

/* One path of a route, or one leg of RTA_MULTIPATH. */
struct nl_hop {
	struct addr gw;	 /* unset: none; an IPv6 gateway on an IPv4 route goes out as RTA_VIA */
	int oif;	 /* 0: none */
	unsigned weight; /* 1..256 (rtnh_hops + 1); 0 is taken as 1 */
	uint32_t flags;	 /* RTNH_F_ONLINK when building; the kernel also reports DEAD, LINKDOWN */
};

struct nl_route {
	int family;	  /* AF_INET or AF_INET6 */
	uint32_t table;	  /* 0: main; > 255 goes in RTA_TABLE (it always does) */
	uint8_t protocol; /* RTPROT_*, or egress's own number; 0 on delete: any */
	uint8_t scope;	  /* RT_SCOPE_*; 0 (universe) on delete means any */
	uint8_t type;	  /* RTN_UNICAST, _BLACKHOLE, _UNREACHABLE, _PROHIBIT, _THROW; 0: unicast */
	uint8_t tos;
	uint32_t flags;	     /* rtm_flags, e.g. RTNH_F_ONLINK for gw */
	struct cidr dst;     /* family unset: the default route of r->family */
	struct addr prefsrc; /* unset: none */
	uint32_t priority;   /* metric; 0: none (kernel default) */
	/*
	 * The path: at most one of (oif and/or gw), nh_id, hops.  A parsed route with nh_id
	 * may carry its group's legs in hops too (sysctl net.ipv4.nexthop_compat_mode).
	 */
	int oif;
	struct addr gw;
	uint32_t nh_id;		   /* RTA_NH_ID; 0: none */
	const struct nl_hop *hops; /* RTA_MULTIPATH legs, borrowed (see the parse/dump comments) */
	size_t n_hops;
};

/*
 * Build an RTM_NEWROUTE/RTM_DELROUTE for r (borrowed) into buf (caller's, buflen bytes).
 * -EMSGSIZE if it does not fit, -EINVAL for an inconsistent route.  On NL_DEL, what is left
 * 0 (protocol, scope, type, priority, the path) matches any route to dst in table.
 */
int nl_route_build(void *buf, size_t buflen, enum nl_op op, const struct nl_route *r);
/* RTM_GETROUTE dump request: family AF_INET, AF_INET6 or AF_UNSPEC; table 0: all. */
int nl_route_build_dump(void *buf, size_t buflen, int family, uint32_t table);
/*
 * Parse an RTM_NEWROUTE/RTM_DELROUTE (nlh borrowed) into *ret.  Multipath legs are written
 * to hops (caller's, max_hops entries) and ret->hops points there.  -ENOSPC when there are
 * more legs than max_hops: ret->n_hops then says how many; -EBADMSG when malformed.
 */
int nl_route_parse(
	const struct nlmsghdr *nlh, struct nl_route *ret, struct nl_hop *hops, size_t max_hops);
int nl_route_apply(struct nl *nl, enum nl_op op, const struct nl_route *r);

typedef int (*nl_route_cb)(const struct nl_route *r, void *arg);
/* Dump family's routes of table (0: all tables); r and r->hops are valid during cb only. */
int nl_route_dump(struct nl *nl, int family, uint32_t table, nl_route_cb cb, void *arg);
/*
 * RTM_GETROUTE for the single address dst (borrowed): the route a packet this host sends to
 * dst would take, rules applied.  IPv4 asks for the table the lookup ended in
 * (RTM_F_LOOKUP_TABLE); IPv6 always reports it.
 */
int nl_route_build_get(void *buf, size_t buflen, const struct addr *dst);
/*
 * The kernel's answer to that request in *ret (oif, gw, table, type, prefsrc; legs are not
 * kept: ret->hops is NULL).  The kernel's -errno when there is no route (-ENETUNREACH), or
 * the route refuses (-EACCES for prohibit, -EHOSTUNREACH for unreachable).
 */
int nl_route_get(struct nl *nl, const struct addr *dst, struct nl_route *ret);

/*
 * A route lookup as a packet would see it: from src (unset: any) to dst, leaving by oif
 * or, with iif, arriving on iif - the input lookup then includes the reverse-path check,
 * which the kernel fails with -EINVAL - carrying mark.  0 fields are left out.
 */
struct nl_route_query {
	struct addr dst, src;
	int iif, oif;
	uint32_t mark;
};
int nl_route_build_lookup(void *buf, size_t buflen, const struct nl_route_query *q);
/* As nl_route_get() for q (borrowed). */
int nl_route_lookup(struct nl *nl, const struct nl_route_query *q, struct nl_route *ret);

/* ---- nexthop objects and groups (nl_nexthop.c) ---- */

enum nl_nh_group_type {
	NL_NH_GROUP_MPATH, /* hash-threshold */
	NL_NH_GROUP_RES,   /* resilient: buckets that move only when needed */
	_NL_NH_GROUP_TYPE_MAX,
};
extern const char *const nl_nh_group_type_name[_NL_NH_GROUP_TYPE_MAX];

struct nl_nh_member {
	uint32_t id;
	unsigned weight; /* 1..256; 0 is taken as 1 */
};

/*
 * A nexthop object: either a single path (family, oif and/or gw, or blackhole) or a group
 * (n_members > 0, family AF_UNSPEC).
 */
struct nl_nexthop {
	uint32_t id; /* 0 on add: the kernel picks one */
	int family;  /* AF_INET/AF_INET6 for a gateway nexthop, else AF_UNSPEC */
	uint8_t protocol;
	uint32_t flags; /* RTNH_F_ONLINK; the kernel reports DEAD/LINKDOWN */
	int oif;
	struct addr gw;
	bool blackhole;
	enum nl_nh_group_type group_type;
	const struct nl_nh_member *members; /* borrowed */
	size_t n_members;
	/* resilient groups */
	uint16_t buckets;	      /* 0: kernel default (128) */
	uint32_t idle_timer_ms;	      /* 0: kernel default (120 s) on add */
	uint32_t unbalanced_timer_ms; /* 0: never force rebalancing */
	uint64_t unbalanced_time_ms;  /* parse only: how long the group has been unbalanced */
};

/* NL_ADD/NL_REPLACE build the whole object; NL_DEL needs only nh->id. */
int nl_nexthop_build(void *buf, size_t buflen, enum nl_op op, const struct nl_nexthop *nh);
int nl_nexthop_build_dump(void *buf, size_t buflen);
int nl_nexthop_build_get(void *buf, size_t buflen, uint32_t id);
/* As nl_route_parse(), with group members in members (caller's, max_members entries). */
int nl_nexthop_parse(const struct nlmsghdr *nlh, struct nl_nexthop *ret,
	struct nl_nh_member *members, size_t max_members);
int nl_nexthop_apply(struct nl *nl, enum nl_op op, const struct nl_nexthop *nh);

typedef int (*nl_nexthop_cb)(const struct nl_nexthop *nh, void *arg);
int nl_nexthop_dump(struct nl *nl, nl_nexthop_cb cb, void *arg);
/* The one nexthop id, to cb; -ENOENT if there is none. */
int nl_nexthop_get(struct nl *nl, uint32_t id, nl_nexthop_cb cb, void *arg);
/*
 * Whether the kernel has resilient nexthop groups (Linux 5.13+): 1 yes, 0 no, or -errno.
 * Side-effect free: it asks for a nexthop bucket dump, which came with them.
 */
int nl_nexthop_probe_resilient(struct nl *nl);

/* ---- FIB rules (nl_rule.c) ---- */

struct nl_rule {
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t action;	  /* FR_ACT_*; 0: goto if has_goto, else to table on add, any on delete */
	uint8_t protocol; /* RTPROT_*, or egress's own; 0 on delete: any */
	uint8_t tos;
	uint32_t flags; /* FIB_RULE_INVERT */
	bool has_priority;
	uint32_t priority;
	bool has_fwmark;
	uint32_t fwmark;
	uint32_t fwmask; /* sent with the mark: 0xffffffff for an exact match */
	uint32_t table;	 /* 0: none (e.g. for goto or blackhole) */
	struct cidr src; /* family unset: any */
	struct cidr dst;
	char iif[NL_IFNAMSIZ]; /* "": any */
	char oif[NL_IFNAMSIZ];
	bool has_suppress_prefixlen;
	uint8_t suppress_prefixlen;
	bool has_goto;
	uint32_t goto_priority;
};

int nl_rule_build(void *buf, size_t buflen, enum nl_op op, const struct nl_rule *r);
int nl_rule_build_dump(void *buf, size_t buflen, int family);
int nl_rule_parse(const struct nlmsghdr *nlh, struct nl_rule *ret);
/*
 * NL_REPLACE gives -EOPNOTSUPP: the kernel has no replace for rules and would add a
 * duplicate.  Add the new rule, then delete the old one.
 */
int nl_rule_apply(struct nl *nl, enum nl_op op, const struct nl_rule *r);

typedef int (*nl_rule_cb)(const struct nl_rule *r, void *arg);
int nl_rule_dump(struct nl *nl, int family, nl_rule_cb cb, void *arg);
/* Same selectors, action and target (what `ip rule` would call a duplicate). */
bool nl_rule_same(const struct nl_rule *a, const struct nl_rule *b);
/*
 * Make the rules of protocol `protocol` with a priority in [prio_lo, prio_hi) exactly
 * want[0..n) (borrowed), in both families: add the missing, delete the others.  Rules
 * already in place are not touched, so traffic never sees a gap.  Returns 0 or the first
 * error (the rest is still attempted).
 */
int nl_rule_reconcile(struct nl *nl, uint8_t protocol, uint32_t prio_lo, uint32_t prio_hi,
	const struct nl_rule *want, size_t n);
/*
 * The same, limited to the rules mine(r, arg) says are the caller's, among those of the
 * protocol and priority range: for a module that knows its rules by the tables they look up
 * and how their priority goes with them, so that another's rules of the same protocol in
 * that range are not taken for stale ones and deleted.  mine sees every candidate, the
 * wanted ones too (e.g. to note the tables of stale ones); want[] must be the caller's by
 * the same test.
 */
typedef bool (*nl_rule_mine_cb)(const struct nl_rule *r, void *arg);
int nl_rule_reconcile_mine(struct nl *nl, uint8_t protocol, uint32_t prio_lo, uint32_t prio_hi,
	nl_rule_mine_cb mine, void *arg, const struct nl_rule *want, size_t n);

/* ---- links (nl_link.c) ---- */

enum nl_macvlan_mode {
	NL_MACVLAN_PRIVATE,
	NL_MACVLAN_VEPA,
	NL_MACVLAN_BRIDGE,
	NL_MACVLAN_PASSTHRU,
	NL_MACVLAN_SOURCE,
	_NL_MACVLAN_MODE_MAX,
};
extern const char *const nl_macvlan_mode_name[_NL_MACVLAN_MODE_MAX];
/* Name ("bridge") to mode; -EINVAL if unknown. */
int nl_macvlan_mode_from_name(const char *name);

struct nl_link {
	int ifindex;
	char name[NL_IFNAMSIZ];
	uint16_t type;	/* ARPHRD_* */
	unsigned flags; /* IFF_* (IFF_UP, IFF_LOWER_UP, ...) */
	unsigned mtu;
	uint8_t addr[NL_LLADDR_MAX];
	uint8_t addr_len; /* 0: no link-layer address */
	int parent;	  /* IFLA_LINK (a macvlan's lower device, a veth's peer); 0: none */
	int master;
	int link_netnsid;  /* IFLA_LINK_NETNSID: parent lives in another namespace; -1: none */
	uint8_t operstate; /* IF_OPER_* */
	char kind[16];	   /* IFLA_INFO_KIND: "veth", "macvlan", ...; "": none */
	enum nl_macvlan_mode macvlan_mode; /* when kind is "macvlan" or "macvtap" */
};

/* A change to an existing link; fields left zero are kept. */
enum nl_link_admin {
	NL_LINK_KEEP,
	NL_LINK_UP,
	NL_LINK_DOWN,
};
/* How the kernel makes a link's IPv6 link-local address (IFLA_INET6_ADDR_GEN_MODE). */
enum nl_addr_gen {
	NL_ADDR_GEN_KEEP, /* leave it as it is */
	NL_ADDR_GEN_EUI64, /* from the MAC */
	NL_ADDR_GEN_NONE,
	NL_ADDR_GEN_STABLE_PRIVACY,
	NL_ADDR_GEN_RANDOM,
	_NL_ADDR_GEN_MAX,
};
struct nl_link_change {
	int ifindex;
	enum nl_link_admin admin;
	unsigned mtu;
	const uint8_t *mac; /* borrowed; NULL: keep */
	size_t mac_len;
	enum nl_addr_gen addr_gen; /* takes effect when the link next comes up */
};

struct nl_macvlan {
	const char *name; /* borrowed */
	int parent;	  /* ifindex of the lower device */
	enum nl_macvlan_mode mode;
	const uint8_t *mac; /* borrowed, 6 bytes; NULL: random */
};

/* RTM_GETLINK of ifindex, or of name when ifindex is 0. */
int nl_link_build_get(void *buf, size_t buflen, int ifindex, const char *name);
int nl_link_build_dump(void *buf, size_t buflen);
int nl_link_build_change(void *buf, size_t buflen, const struct nl_link_change *c);
/* A veth pair name <-> peer; peer_netns_fd >= 0 creates the peer in that namespace. */
int nl_link_build_veth(
	void *buf, size_t buflen, const char *name, const char *peer, int peer_netns_fd);
int nl_link_build_macvlan(void *buf, size_t buflen, const struct nl_macvlan *m);
int nl_link_build_del(void *buf, size_t buflen, int ifindex);
int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *ret);

/* By ifindex, or by name when ifindex is 0; -ENODEV if there is no such link. */
int nl_link_get(struct nl *nl, int ifindex, const char *name, struct nl_link *ret);
/* The kernel's byte and packet counters of a link (IFLA_STATS64), since it was created. */
struct nl_link_stats {
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};
int nl_link_build_get_stats(void *buf, size_t buflen, int ifindex);
/* From an RTM_NEWLINK that carries IFLA_STATS64; -ENODATA if it carries none. */
int nl_link_parse_stats(const struct nlmsghdr *nlh, struct nl_link_stats *ret);
/* 0, -ENODEV, -ENODATA or -errno. */
int nl_link_stats(struct nl *nl, int ifindex, struct nl_link_stats *ret);
typedef int (*nl_link_cb)(const struct nl_link *l, void *arg);
int nl_link_dump(struct nl *nl, nl_link_cb cb, void *arg);
int nl_link_change(struct nl *nl, const struct nl_link_change *c);
int nl_link_set_up(struct nl *nl, int ifindex, bool up);
int nl_link_set_mtu(struct nl *nl, int ifindex, unsigned mtu);
int nl_link_set_mac(struct nl *nl, int ifindex, const uint8_t *mac, size_t len);
int nl_link_add_veth(struct nl *nl, const char *name, const char *peer, int peer_netns_fd);
int nl_link_add_macvlan(struct nl *nl, const struct nl_macvlan *m);
int nl_link_del(struct nl *nl, int ifindex);

/* ---- addresses (nl_addr.c) ---- */

struct nl_addr {
	int ifindex;
	struct cidr local;	 /* the address and its prefix length (IFA_LOCAL/IFA_ADDRESS) */
	struct addr peer;	 /* point-to-point peer (IFA_ADDRESS != IFA_LOCAL); unset: none */
	uint32_t flags;		 /* IFA_F_NODAD, IFA_F_NOPREFIXROUTE, ... (IFA_FLAGS) */
	uint8_t scope;		 /* RT_SCOPE_* */
	char label[NL_IFNAMSIZ]; /* IPv4 only; "": none */
	uint32_t valid_lft;	 /* seconds; 0 on add: forever; 0xffffffff: forever (as parsed) */
	uint32_t preferred_lft;
};

int nl_addr_build(void *buf, size_t buflen, enum nl_op op, const struct nl_addr *a);
int nl_addr_build_dump(void *buf, size_t buflen, int family, int ifindex);
int nl_addr_parse(const struct nlmsghdr *nlh, struct nl_addr *ret);
int nl_addr_apply(struct nl *nl, enum nl_op op, const struct nl_addr *a);

typedef int (*nl_addr_cb)(const struct nl_addr *a, void *arg);
/* family AF_UNSPEC: both; ifindex 0: all links. */
int nl_addr_dump(struct nl *nl, int family, int ifindex, nl_addr_cb cb, void *arg);

/* ---- neighbours (nl_neigh.c) ---- */

struct nl_neigh {
	int family; /* AF_INET, AF_INET6 (or AF_BRIDGE when parsed) */
	int ifindex;
	struct addr dst;
	uint8_t lladdr[NL_LLADDR_MAX];
	uint8_t lladdr_len; /* 0: none (always for proxy entries) */
	uint16_t state;	    /* NUD_*; 0 on add: NUD_PERMANENT */
	uint8_t flags;	    /* NTF_PROXY for a proxy entry, NTF_ROUTER, ... */
	uint8_t type;	    /* RTN_* as the kernel reports it */
};

int nl_neigh_build(void *buf, size_t buflen, enum nl_op op, const struct nl_neigh *n);
int nl_neigh_build_dump(void *buf, size_t buflen, int family, int ifindex, bool proxy);
int nl_neigh_parse(const struct nlmsghdr *nlh, struct nl_neigh *ret);
int nl_neigh_apply(struct nl *nl, enum nl_op op, const struct nl_neigh *n);

typedef int (*nl_neigh_cb)(const struct nl_neigh *n, void *arg);
/* proxy: dump the proxy entries (ip neigh show proxy) instead of the neighbour cache. */
int nl_neigh_dump(struct nl *nl, int family, int ifindex, bool proxy, nl_neigh_cb cb, void *arg);

/* ---- conntrack over NETLINK_NETFILTER (nl_ct.c) ---- */

/* A conntrack entry; ports in host order.  Only TCP/UDP ports are read and written. */
struct nl_ct {
	int family;
	uint8_t proto; /* IPPROTO_UDP, IPPROTO_TCP, ... */
	struct addr src, dst;
	uint16_t sport, dport;
	struct addr reply_src, reply_dst; /* unset on build: the inverse of the original */
	uint16_t reply_sport, reply_dport;
	uint32_t mark;
	uint32_t timeout; /* seconds; 0 on build: 60 */
	uint32_t status;  /* IPS_* */
	uint32_t id;
	uint16_t zone;
};

/*
 * IPCTNL_MSG_CT_DELETE with CTA_MARK/CTA_MARK_MASK and no tuple: the kernel deletes every
 * entry with (ctmark & mask) == mark of family (AF_INET, AF_INET6; AF_UNSPEC: both) and
 * acks with 0 whether or not anything matched.  -EINVAL for mask 0 (that would be a flush
 * of everything) or mark bits outside mask.
 */
int nl_ct_build_delete_mark(void *buf, size_t buflen, int family, uint32_t mark, uint32_t mask);
/* Dump request; mask 0: every entry of family. */
int nl_ct_build_dump(void *buf, size_t buflen, int family, uint32_t mark, uint32_t mask);
/*
 * IPCTNL_MSG_CT_DELETE of the one entry with ct's original tuple (TCP or UDP; its id too
 * when set, so that a newer entry of the same tuple stays).  -EINVAL for another protocol.
 */
int nl_ct_build_delete(void *buf, size_t buflen, const struct nl_ct *ct);
/* IPCTNL_MSG_CT_NEW creating ct (borrowed): for tests and tools. */
int nl_ct_build_new(void *buf, size_t buflen, const struct nl_ct *ct);
int nl_ct_parse(const struct nlmsghdr *nlh, struct nl_ct *ret);

/* nl must be a NETLINK_NETFILTER socket. */
int nl_ct_delete_mark(struct nl *nl, int family, uint32_t mark, uint32_t mask);
int nl_ct_add(struct nl *nl, const struct nl_ct *ct);
/* -ENOENT when it is gone already. */
int nl_ct_delete(struct nl *nl, const struct nl_ct *ct);
typedef int (*nl_ct_cb)(const struct nl_ct *ct, void *arg);
int nl_ct_dump(struct nl *nl, int family, uint32_t mark, uint32_t mask, nl_ct_cb cb, void *arg);
/* Number of entries with (ctmark & mask) == mark in *ret. */
int nl_ct_count(struct nl *nl, int family, uint32_t mark, uint32_t mask, size_t *ret);

/* ---- event monitor (nl.c) ---- */

/* What to subscribe to: both IPv4 and IPv6 groups where the kernel splits them. */
enum nl_group {
	NL_GROUP_LINK = 1 << 0,
	NL_GROUP_ADDR = 1 << 1,
	NL_GROUP_ROUTE = 1 << 2,
	NL_GROUP_RULE = 1 << 3,
	NL_GROUP_NEIGH = 1 << 4,
	NL_GROUP_NEXTHOP = 1 << 5,
	NL_GROUP_ALL = (1 << 6) - 1,
};

enum nl_event_type {
	NL_EVENT_LINK,
	NL_EVENT_ADDR,
	NL_EVENT_ROUTE,
	NL_EVENT_RULE,
	NL_EVENT_NEIGH,
	NL_EVENT_NEXTHOP,
	NL_EVENT_RESYNC, /* events were lost (socket overrun): dump everything again */
	_NL_EVENT_TYPE_MAX,
};
extern const char *const nl_event_type_name[_NL_EVENT_TYPE_MAX];

struct nl_event {
	enum nl_event_type type;
	uint16_t msg_type;	    /* RTM_NEWROUTE, RTM_DELLINK, ...; 0 for NL_EVENT_RESYNC */
	bool del;		    /* an RTM_DEL* */
	const struct nlmsghdr *nlh; /* the raw message; NULL for NL_EVENT_RESYNC */
	union {
		struct nl_link link;
		struct nl_addr addr;
		struct nl_route route;
		struct nl_rule rule;
		struct nl_neigh neigh;
		struct nl_nexthop nexthop;
	};
};

/* ev and everything it points to are borrowed for the call. */
typedef void (*nl_event_cb)(const struct nl_event *ev, void *arg);

struct nl_monitor;

/*
 * Subscribe to groups (NL_GROUP_* ored) on a non-blocking NETLINK_ROUTE socket read from
 * base's loop; each message that parses is handed to cb, malformed ones are dropped.
 * *ret is owned by the caller: nl_monitor_free() it (also allowed from inside cb).
 */
int nl_monitor_new(struct event_base *base, unsigned groups, nl_event_cb cb, void *arg,
	struct nl_monitor **ret);
void nl_monitor_free(struct nl_monitor *m);
/* The socket, e.g. to read its drop counters; owned by m. */
int nl_monitor_fd(const struct nl_monitor *m);
/* Counters for tests and metrics: events handed to cb, malformed messages dropped. */
uint64_t nl_monitor_events(const struct nl_monitor *m);
uint64_t nl_monitor_dropped(const struct nl_monitor *m);

/* Egress's routing protocol number (rtm_protocol, rule and nexthop protocol): marks what is
 * ours, in the range nobody registers. */
#define RTPROT_EGRESS 0xeb

#endif
