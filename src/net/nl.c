/*
 * nl.c - the netlink socket of egress: synchronous request/ack and dumps over libmnl, the
 * message builder and attribute readers the object files share, and the event monitor that
 * reads rtnetlink multicast groups on the libevent loop.
 *
 * It must not log above debug, keep global state, or interpret objects beyond handing
 * each event to its parser; the object files (nl_route.c, ...) know the messages.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "nl_int.h"
#include "util.h"

/*
 * Receive buffer.  The kernel builds dump datagrams of up to 32 KiB and notifications of
 * whatever one object needs; 64 KiB leaves room, and a datagram that still does not fit is
 * reported (-EMSGSIZE, or a resync for the monitor) rather than read half.
 */
#define NL_RECV_BUFSIZE 65536
/* Monitor socket receive buffer: big enough to ride out a burst of route changes. */
#define NL_MONITOR_RCVBUF (4 << 20)
/* Datagrams read per wakeup of the monitor before giving the loop back. */
#define NL_MONITOR_BATCH 64

const char *const nl_op_name[_NL_OP_MAX] = {
	[NL_ADD] = "add",
	[NL_REPLACE] = "replace",
	[NL_DEL] = "del",
};

const char *const nl_event_type_name[_NL_EVENT_TYPE_MAX] = {
	[NL_EVENT_LINK] = "link",
	[NL_EVENT_ADDR] = "addr",
	[NL_EVENT_ROUTE] = "route",
	[NL_EVENT_RULE] = "rule",
	[NL_EVENT_NEIGH] = "neigh",
	[NL_EVENT_NEXTHOP] = "nexthop",
	[NL_EVENT_RESYNC] = "resync",
};

struct nl {
	struct mnl_socket *sock;
	int protocol;
	uint32_t portid;
	uint32_t seq;
	bool busy; /* inside a request: callbacks must not reuse this socket */
	char errmsg[NL_ERRMSG_MAX];
	uint8_t *rbuf;
	uint8_t *sbuf;
};

uint16_t nl_op_flags(enum nl_op op)
{
	switch (op) {
	case NL_ADD:
		return NLM_F_CREATE | NLM_F_EXCL;
	case NL_REPLACE:
		return NLM_F_CREATE | NLM_F_REPLACE;
	default:
		return 0;
	}
}

/* ---- builder ---- */

void nlb_init(struct nlb *b, void *buf, size_t buflen, uint16_t type, uint16_t flags)
{
	b->nlh = buf;
	b->cap = buflen;
	b->err = 0;
	if (buflen < MNL_NLMSG_HDRLEN) {
		b->err = -EMSGSIZE;
		return;
	}
	memset(buf, 0, MNL_NLMSG_HDRLEN);
	b->nlh->nlmsg_len = MNL_NLMSG_HDRLEN;
	b->nlh->nlmsg_type = type;
	b->nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
}

void nlb_fail(struct nlb *b, int err)
{
	if (!b->err)
		b->err = err;
}

void *nlb_reserve(struct nlb *b, size_t len)
{
	size_t alen = MNL_ALIGN(len);
	void *p;

	if (b->err)
		return NULL;
	if (alen > b->cap - b->nlh->nlmsg_len) {
		b->err = -EMSGSIZE;
		return NULL;
	}
	p = (uint8_t *)b->nlh + b->nlh->nlmsg_len;
	memset(p, 0, alen);
	b->nlh->nlmsg_len += alen;
	return p;
}

/* As mnl_attr_put_check(), but padding is always zeroed (libmnl 1.0.4 leaves it). */
void nlb_put(struct nlb *b, uint16_t type, size_t len, const void *data)
{
	struct nlattr *attr;

	if (!b->err && len > UINT16_MAX - MNL_ATTR_HDRLEN)
		b->err = -EMSGSIZE;
	attr = nlb_reserve(b, MNL_ATTR_HDRLEN + len);
	if (!attr)
		return;
	attr->nla_type = type;
	attr->nla_len = (uint16_t)(MNL_ATTR_HDRLEN + len);
	if (len)
		memcpy((uint8_t *)attr + MNL_ATTR_HDRLEN, data, len);
}

void nlb_u8(struct nlb *b, uint16_t type, uint8_t v)
{
	nlb_put(b, type, sizeof(v), &v);
}

void nlb_u16(struct nlb *b, uint16_t type, uint16_t v)
{
	nlb_put(b, type, sizeof(v), &v);
}

void nlb_u32(struct nlb *b, uint16_t type, uint32_t v)
{
	nlb_put(b, type, sizeof(v), &v);
}

void nlb_be16(struct nlb *b, uint16_t type, uint16_t host)
{
	nlb_u16(b, type, htons(host));
}

void nlb_be32(struct nlb *b, uint16_t type, uint32_t host)
{
	nlb_u32(b, type, htonl(host));
}

void nlb_str(struct nlb *b, uint16_t type, const char *s)
{
	nlb_put(b, type, strlen(s) + 1, s);
}

void nlb_flag(struct nlb *b, uint16_t type)
{
	nlb_put(b, type, 0, NULL);
}

void nlb_addr(struct nlb *b, uint16_t type, const struct addr *a)
{
	size_t len = addr_len(a->family);

	if (!len) {
		nlb_fail(b, -EAFNOSUPPORT);
		return;
	}
	nlb_put(b, type, len, a->b);
}

struct nlattr *nlb_nest(struct nlb *b, uint16_t type)
{
	struct nlattr *nest = nlb_reserve(b, MNL_ATTR_HDRLEN);

	if (nest)
		nest->nla_type = type;
	return nest;
}

void nlb_nest_end(struct nlb *b, struct nlattr *nest)
{
	size_t len;

	if (b->err || !nest)
		return;
	len = (size_t)((uint8_t *)b->nlh + b->nlh->nlmsg_len - (uint8_t *)nest);
	if (len > UINT16_MAX) {
		b->err = -EMSGSIZE;
		return;
	}
	nest->nla_len = (uint16_t)len;
}

int nlb_end(struct nlb *b)
{
	return b->err;
}

/* ---- attribute readers ---- */

int nl_attrs_range(const void *start, const void *end, const struct nlattr **tb, unsigned max)
{
	const struct nlattr *attr = start;

	memset(tb, 0, (max + 1) * sizeof(*tb));
	while (mnl_attr_ok(attr, (int)((const char *)end - (const char *)attr))) {
		uint16_t type = mnl_attr_get_type(attr);

		if (type <= max)
			tb[type] = attr;
		attr = mnl_attr_next(attr);
	}
	return 0;
}

int nl_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb, unsigned max)
{
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(hdrlen)) {
		/* Keep tb defined for callers that look at it regardless. */
		memset(tb, 0, (max + 1) * sizeof(*tb));
		return -EBADMSG;
	}
	/* Not mnl_nlmsg_get_payload_tail(): it rounds nlmsg_len up, past a short message. */
	return nl_attrs_range(mnl_nlmsg_get_payload_offset(nlh, hdrlen),
		(const uint8_t *)nlh + nlh->nlmsg_len, tb, max);
}

int nl_attrs_nested(const struct nlattr *nest, const struct nlattr **tb, unsigned max)
{
	return nl_attrs_range(mnl_attr_get_payload(nest),
		(const uint8_t *)nest + mnl_attr_get_len(nest), tb, max);
}

static int nl_get_fixed(const struct nlattr *a, void *ret, size_t len)
{
	if (mnl_attr_get_payload_len(a) != len)
		return -EBADMSG;
	memcpy(ret, mnl_attr_get_payload(a), len);
	return 0;
}

int nl_get_u8(const struct nlattr *a, uint8_t *ret)
{
	return nl_get_fixed(a, ret, sizeof(*ret));
}

int nl_get_u16(const struct nlattr *a, uint16_t *ret)
{
	return nl_get_fixed(a, ret, sizeof(*ret));
}

int nl_get_u32(const struct nlattr *a, uint32_t *ret)
{
	return nl_get_fixed(a, ret, sizeof(*ret));
}

int nl_get_u64(const struct nlattr *a, uint64_t *ret)
{
	return nl_get_fixed(a, ret, sizeof(*ret));
}

int nl_get_be16(const struct nlattr *a, uint16_t *ret)
{
	int err = nl_get_u16(a, ret);

	if (!err)
		*ret = ntohs(*ret);
	return err;
}

int nl_get_be32(const struct nlattr *a, uint32_t *ret)
{
	int err = nl_get_u32(a, ret);

	if (!err)
		*ret = ntohl(*ret);
	return err;
}

int nl_get_str(const struct nlattr *a, char *buf, size_t len)
{
	const char *s = mnl_attr_get_payload(a);
	size_t plen = mnl_attr_get_payload_len(a);
	size_t n = strnlen(s, plen);

	if (n == plen || n >= len)
		return -EBADMSG;
	memcpy(buf, s, n + 1);
	return 0;
}

int nl_get_addr(const struct nlattr *a, int family, struct addr *ret)
{
	size_t len = addr_len(family);

	memset(ret, 0, sizeof(*ret));
	if (!len || mnl_attr_get_payload_len(a) != len)
		return -EBADMSG;
	ret->family = family;
	memcpy(ret->b, mnl_attr_get_payload(a), len);
	return 0;
}

/* ---- scratch ---- */

void nl_scratch_clear(struct nl_scratch *s)
{
	FREE_AND_NULL(s->hops);
	FREE_AND_NULL(s->members);
	s->n_hops = 0;
	s->n_members = 0;
}

int nl_route_parse_scratch(const struct nlmsghdr *nlh, struct nl_route *ret, struct nl_scratch *s)
{
	int err = nl_route_parse(nlh, ret, s->hops, s->n_hops);

	if (err != -ENOSPC)
		return err;
	/* More legs than ever before: grow to what this message needs (bounded by its size). */
	s->hops = xrealloc(s->hops, ret->n_hops * sizeof(*s->hops));
	s->n_hops = ret->n_hops;
	return nl_route_parse(nlh, ret, s->hops, s->n_hops);
}

int nl_nexthop_parse_scratch(
	const struct nlmsghdr *nlh, struct nl_nexthop *ret, struct nl_scratch *s)
{
	int err = nl_nexthop_parse(nlh, ret, s->members, s->n_members);

	if (err != -ENOSPC)
		return err;
	s->members = xrealloc(s->members, ret->n_members * sizeof(*s->members));
	s->n_members = ret->n_members;
	return nl_nexthop_parse(nlh, ret, s->members, s->n_members);
}

/* ---- socket ---- */

static int nl_setsockopt_int(struct mnl_socket *sock, int level, int opt, int val)
{
	if (setsockopt(mnl_socket_get_fd(sock), level, opt, &val, sizeof(val)) < 0)
		return -errno;
	return 0;
}

int nl_open(int protocol, struct nl **ret)
{
	struct nl *nl = xcalloc(1, sizeof(*nl));
	int err;

	nl->protocol = protocol;
	nl->sock = mnl_socket_open2(protocol, SOCK_CLOEXEC);
	if (!nl->sock) {
		err = -errno;
		goto fail;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	/*
	 * Extended acks carry the kernel's reason ("Nexthop device is not up"); capped acks
	 * leave out the echo of our request, which we never read.  Both exist since 4.12;
	 * older kernels just give bare errnos, so their failure is not fatal.
	 */
	err = nl_setsockopt_int(nl->sock, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	if (err)
		log_debug("netlink: NETLINK_EXT_ACK: %s", strerror(-err));
	err = nl_setsockopt_int(nl->sock, SOL_NETLINK, NETLINK_CAP_ACK, 1);
	if (err)
		log_debug("netlink: NETLINK_CAP_ACK: %s", strerror(-err));
	/* Strict checking makes the kernel filter route dumps by table for us (4.20+). */
	if (protocol == NETLINK_ROUTE) {
		err = nl_setsockopt_int(nl->sock, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
		if (err)
			log_debug("netlink: NETLINK_GET_STRICT_CHK: %s", strerror(-err));
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	nl->rbuf = xmalloc(NL_RECV_BUFSIZE);
	nl->sbuf = xmalloc(NL_MSG_BUFSIZE);
	*ret = nl;
	return 0;
fail:
	nl_free(nl);
	return err;
}

void nl_free(struct nl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->rbuf);
	free(nl->sbuf);
	free(nl);
}

int nl_fd(const struct nl *nl)
{
	return mnl_socket_get_fd(nl->sock);
}

const char *nl_last_error(const struct nl *nl)
{
	return nl->errmsg;
}

void *nl_sendbuf(struct nl *nl)
{
	return nl->sbuf;
}

/* Copy the NLMSGERR_ATTR_MSG text found in attributes from attr to tail. */
static void nl_extack_msg(const struct nlattr *attr, const void *tail, char *msg, size_t msglen)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	nl_attrs_range(attr, tail, tb, NLMSGERR_ATTR_MAX);
	if (tb[NLMSGERR_ATTR_MSG] && msglen > 0) {
		const char *s = mnl_attr_get_payload(tb[NLMSGERR_ATTR_MSG]);
		size_t n = strnlen(s, mnl_attr_get_payload_len(tb[NLMSGERR_ATTR_MSG]));

		n = MIN(n, msglen - 1);
		memcpy(msg, s, n);
		msg[n] = '\0';
	}
}

int nl_ack_parse(const struct nlmsghdr *nlh, char *msg, size_t msglen)
{
	const struct nlmsgerr *e;
	size_t off;
	int err;

	if (msglen > 0)
		msg[0] = '\0';
	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*e))
		return -EBADMSG;
	e = mnl_nlmsg_get_payload(nlh);
	/* The kernel sends a negative errno; anything else is not from it. */
	err = e->error <= 0 ? e->error : -EPROTO;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return err;
	/* TLVs follow the echoed request: its header only when capped, else all of it. */
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return -EBADMSG;
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	}
	if (MNL_NLMSG_HDRLEN + off > nlh->nlmsg_len)
		return -EBADMSG;
	nl_extack_msg(mnl_nlmsg_get_payload_offset(nlh, MNL_ALIGN(off)),
		(const uint8_t *)nlh + nlh->nlmsg_len, msg, msglen);
	return err;
}

/* NLMSG_DONE may carry the dump's error (an int) and, after it, extended ack TLVs. */
static int nl_done_parse(struct nl *nl, const struct nlmsghdr *nlh)
{
	int err;

	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(int))
		return 0;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		nl_extack_msg(mnl_nlmsg_get_payload_offset(nlh, sizeof(int)),
			(const uint8_t *)nlh + nlh->nlmsg_len, nl->errmsg, sizeof(nl->errmsg));
	return err <= 0 ? err : -EPROTO;
}

/* Read one datagram into buf (len bytes); its length, 0 to skip it, or -errno. */
static ssize_t nl_recv(int fd, void *buf, size_t len)
{
	struct sockaddr_nl sa;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {
		.msg_name = &sa,
		.msg_namelen = sizeof(sa),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;

	do {
		n = recvmsg(fd, &mh, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	if (mh.msg_namelen != sizeof(sa) || sa.nl_pid != 0)
		return 0; /* not from the kernel: ignore */
	return n;
}

/*
 * Read answers to seq until its ack, error or NLMSG_DONE.  Messages of other sequence
 * numbers are left-overs of a request abandoned after an error and are skipped.  A
 * callback's error stops the callbacks, not the reading: the socket must be drained.
 */
static int nl_run(struct nl *nl, uint32_t seq, nl_msg_cb cb, void *arg)
{
	int fd = mnl_socket_get_fd(nl->sock);
	bool intr = false;
	int cb_err = 0;

	for (;;) {
		ssize_t n = nl_recv(fd, nl->rbuf, NL_RECV_BUFSIZE);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->rbuf;
		int len;

		if (n == 0)
			continue;
		if (n < 0)
			return (int)n;
		for (len = (int)n; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			int err;

			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != nl->portid)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			switch (nlh->nlmsg_type) {
			case NLMSG_NOOP:
				continue;
			case NLMSG_ERROR:
				err = nl_ack_parse(nlh, nl->errmsg, sizeof(nl->errmsg));
				return cb_err ? cb_err : err;
			case NLMSG_DONE:
				err = nl_done_parse(nl, nlh);
				if (cb_err || err)
					return cb_err ? cb_err : err;
				return intr ? -EINTR : 0;
			default:
				if (cb && !cb_err)
					cb_err = cb(nlh, arg);
				break;
			}
		}
	}
}

static int nl_send(struct nl *nl, struct nlmsghdr *nlh)
{
	ssize_t n;

	nlh->nlmsg_seq = ++nl->seq;
	nlh->nlmsg_pid = nl->portid;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	do {
		n = mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != nlh->nlmsg_len)
		return -EMSGSIZE;
	return 0;
}

int nl_query(struct nl *nl, struct nlmsghdr *nlh, nl_msg_cb cb, void *arg)
{
	uint16_t type = nlh->nlmsg_type;
	int err;

	if (nl->busy)
		return -EBUSY;
	nl->errmsg[0] = '\0';
	nl->busy = true;
	err = nl_send(nl, nlh);
	if (!err)
		err = nl_run(nl, nlh->nlmsg_seq, cb, arg);
	nl->busy = false;
	if (!err)
		nl->errmsg[0] = '\0'; /* a warning on success is not "the last error" */
	if (err && err != -EINTR)
		log_debug("netlink: request type %u: %s%s%s", type, strerror(-err),
			nl->errmsg[0] ? ": " : "", nl->errmsg);
	return err;
}

int nl_request(struct nl *nl, struct nlmsghdr *nlh)
{
	return nl_query(nl, nlh, NULL, NULL);
}

int nl_dump(struct nl *nl, struct nlmsghdr *nlh, nl_msg_cb cb, void *arg)
{
	nlh->nlmsg_flags |= NLM_F_DUMP;
	return nl_query(nl, nlh, cb, arg);
}

/* ---- monitor ---- */

struct nl_monitor {
	struct mnl_socket *sock;
	struct event *ev;
	nl_event_cb cb;
	void *arg;
	uint8_t *buf;
	struct nl_scratch scratch;
	uint64_t events;
	uint64_t dropped;
	bool in_cb;
	bool dead; /* freed from inside cb: finish the free when the callback returns */
};

static const struct {
	unsigned group;
	unsigned rtnlgrp;
} nl_monitor_groups[] = {
	{NL_GROUP_LINK, RTNLGRP_LINK},
	{NL_GROUP_ADDR, RTNLGRP_IPV4_IFADDR},
	{NL_GROUP_ADDR, RTNLGRP_IPV6_IFADDR},
	{NL_GROUP_ROUTE, RTNLGRP_IPV4_ROUTE},
	{NL_GROUP_ROUTE, RTNLGRP_IPV6_ROUTE},
	{NL_GROUP_RULE, RTNLGRP_IPV4_RULE},
	{NL_GROUP_RULE, RTNLGRP_IPV6_RULE},
	{NL_GROUP_NEIGH, RTNLGRP_NEIGH},
	{NL_GROUP_NEXTHOP, RTNLGRP_NEXTHOP},
};

int nl_monitor_fd(const struct nl_monitor *m)
{
	return mnl_socket_get_fd(m->sock);
}

uint64_t nl_monitor_events(const struct nl_monitor *m)
{
	return m->events;
}

uint64_t nl_monitor_dropped(const struct nl_monitor *m)
{
	return m->dropped;
}

static void nl_monitor_emit(struct nl_monitor *m, struct nl_event *ev)
{
	m->events++;
	m->cb(ev, m->arg);
}

static void nl_monitor_resync(struct nl_monitor *m)
{
	struct nl_event ev = {.type = NL_EVENT_RESYNC};

	nl_monitor_emit(m, &ev);
}

/* Parse one notification into ev; -EAGAIN for types we do not report. */
static int nl_monitor_parse(struct nl_monitor *m, const struct nlmsghdr *nlh, struct nl_event *ev)
{
	ev->msg_type = nlh->nlmsg_type;
	ev->nlh = nlh;
	switch (nlh->nlmsg_type) {
	case RTM_DELLINK:
		ev->del = true;
		/* fall through */
	case RTM_NEWLINK:
		ev->type = NL_EVENT_LINK;
		return nl_link_parse(nlh, &ev->link);
	case RTM_DELADDR:
		ev->del = true;
		/* fall through */
	case RTM_NEWADDR:
		ev->type = NL_EVENT_ADDR;
		return nl_addr_parse(nlh, &ev->addr);
	case RTM_DELROUTE:
		ev->del = true;
		/* fall through */
	case RTM_NEWROUTE:
		ev->type = NL_EVENT_ROUTE;
		return nl_route_parse_scratch(nlh, &ev->route, &m->scratch);
	case RTM_DELRULE:
		ev->del = true;
		/* fall through */
	case RTM_NEWRULE:
		ev->type = NL_EVENT_RULE;
		return nl_rule_parse(nlh, &ev->rule);
	case RTM_DELNEIGH:
		ev->del = true;
		/* fall through */
	case RTM_NEWNEIGH:
		ev->type = NL_EVENT_NEIGH;
		return nl_neigh_parse(nlh, &ev->neigh);
	case RTM_DELNEXTHOP:
		ev->del = true;
		/* fall through */
	case RTM_NEWNEXTHOP:
		ev->type = NL_EVENT_NEXTHOP;
		return nl_nexthop_parse_scratch(nlh, &ev->nexthop, &m->scratch);
	default:
		return -EAGAIN;
	}
}

static void nl_monitor_dispatch(struct nl_monitor *m, size_t n)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)m->buf;
	int len = (int)n;

	for (; mnl_nlmsg_ok(nlh, len) && !m->dead; nlh = mnl_nlmsg_next(nlh, &len)) {
		struct nl_event ev;
		int err;

		memset(&ev, 0, sizeof(ev));
		err = nl_monitor_parse(m, nlh, &ev);
		if (err == -EAGAIN)
			continue;
		if (err) {
			m->dropped++;
			log_debug("netlink monitor: message type %u dropped: %s", nlh->nlmsg_type,
				strerror(-err));
			continue;
		}
		nl_monitor_emit(m, &ev);
	}
}

static void nl_monitor_destroy(struct nl_monitor *m)
{
	if (m->ev)
		event_free(m->ev);
	if (m->sock)
		mnl_socket_close(m->sock);
	nl_scratch_clear(&m->scratch);
	free(m->buf);
	free(m);
}

static void nl_monitor_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nl_monitor *m = arg;
	int i;

	m->in_cb = true;
	for (i = 0; i < NL_MONITOR_BATCH && !m->dead; i++) {
		ssize_t n = nl_recv(fd, m->buf, NL_RECV_BUFSIZE);

		if (n == -EAGAIN || n == -EWOULDBLOCK)
			break;
		if (n == 0)
			continue;
		if (n == -ENOBUFS || n == -EMSGSIZE) {
			/* The kernel dropped notifications, or we could not read one whole. */
			log_debug("netlink monitor: %s: resync", strerror((int)-n));
			nl_monitor_resync(m);
			continue;
		}
		if (n < 0) {
			log_debug("netlink monitor: recv: %s", strerror((int)-n));
			break;
		}
		nl_monitor_dispatch(m, (size_t)n);
	}
	m->in_cb = false;
	if (m->dead)
		nl_monitor_destroy(m);
}

int nl_monitor_new(struct event_base *base, unsigned groups, nl_event_cb cb, void *arg,
	struct nl_monitor **ret)
{
	struct nl_monitor *m;
	size_t i;
	int err;

	if (!groups || (groups & ~(unsigned)NL_GROUP_ALL) || !cb)
		return -EINVAL;
	m = xcalloc(1, sizeof(*m));
	m->cb = cb;
	m->arg = arg;
	m->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!m->sock) {
		err = -errno;
		goto fail;
	}
	if (mnl_socket_bind(m->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	/* RTNLGRP_NEXTHOP is 32: past the bind() bitmask, so join every group by number. */
	for (i = 0; i < ARRAY_SIZE(nl_monitor_groups); i++) {
		int grp = (int)nl_monitor_groups[i].rtnlgrp;

		if (!(groups & nl_monitor_groups[i].group))
			continue;
		if (mnl_socket_setsockopt(m->sock, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
			err = -errno;
			goto fail;
		}
	}
	/* A larger buffer means fewer overruns; FORCE works with CAP_NET_ADMIN only. */
	if (nl_setsockopt_int(m->sock, SOL_SOCKET, SO_RCVBUFFORCE, NL_MONITOR_RCVBUF) &&
		nl_setsockopt_int(m->sock, SOL_SOCKET, SO_RCVBUF, NL_MONITOR_RCVBUF))
		log_debug("netlink monitor: SO_RCVBUF: %s", strerror(errno));
	m->buf = xmalloc(NL_RECV_BUFSIZE);
	m->ev = event_new(
		base, mnl_socket_get_fd(m->sock), EV_READ | EV_PERSIST, nl_monitor_read_cb, m);
	if (!m->ev || event_add(m->ev, NULL) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	nl_monitor_destroy(m);
	return err;
}

void nl_monitor_free(struct nl_monitor *m)
{
	if (!m)
		return;
	if (m->in_cb) {
		/* Called from our own callback: stop reading now, free on the way out. */
		event_del(m->ev);
		m->dead = true;
		return;
	}
	nl_monitor_destroy(m);
}
