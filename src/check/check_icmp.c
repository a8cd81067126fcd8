/*
 * check_icmp.c - ICMP echo probes (IPv4 and IPv6), one socket per uplink
 * and family, shared by the uplink's targets.
 *
 * Unprivileged ICMP datagram sockets ("ping sockets") are used where
 * net.ipv4.ping_group_range admits our group: the kernel picks the echo
 * identifier and hands the socket only its own replies.  Otherwise a raw
 * socket (CAP_NET_RAW) with our own random identifier; a raw socket sees
 * every ICMP message that arrives, so a classic BPF filter lets only echo
 * replies with our identifier through (as iputils' ping does), and
 * ICMP6_FILTER does the same by type for IPv6.
 *
 * An echo carries a 64-bit random cookie and the target's index; a reply
 * counts only if its source, sequence number and cookie match a probe in
 * flight.  Anything else is counted and dropped.  Must not read more than a
 * bounded number of datagrams per wake-up.
 */
#include <errno.h>
#include <linux/filter.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "check_int.h"
#include "util.h"

#define ICMP_READ_BURST 64

struct icmp_payload {
	uint64_t cookie;
	uint32_t idx; /* target index */
	uint32_t zero;
};

struct icmp_echo {
	uint8_t type, code;
	uint16_t csum, id, seq; /* network order */
	struct icmp_payload p;
};

struct check_icmp_sock {
	struct check_uplink *cu;
	int family;
	int ifindex; /* of the uplink's interface when opened: SO_BINDTODEVICE holds the index */
	int fd;
	bool raw;
	uint16_t ident; /* raw sockets: ours (host order); ping sockets: the kernel's */
	uint16_t seq;
	uint64_t cookie;
	struct event *ev;
};

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static int attach_filter(struct check_icmp_sock *s)
{
	struct sock_filter f4[] = {
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0), /* X = IPv4 header length */
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4),	/* A = echo identifier */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, s->ident, 0, 3),
		BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0), /* A = ICMP type */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ICMP_ECHOREPLY, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_filter f6[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4), /* raw ICMPv6 starts at the ICMP header */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, s->ident, 0, 3),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ICMP6_ECHO_REPLY, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog;

	if (s->family == AF_INET) {
		prog = (struct sock_fprog){.len = ARRAY_SIZE(f4), .filter = f4};
	} else {
		struct icmp6_filter filt;

		ICMP6_FILTER_SETBLOCKALL(&filt);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filt);
		if (setsockopt(s->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof(filt)) < 0)
			return -errno;
		prog = (struct sock_fprog){.len = ARRAY_SIZE(f6), .filter = f6};
	}
	if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	return 0;
}

static void sock_free(struct check_icmp_sock *s)
{
	if (!s)
		return;
	if (s->ev)
		event_free(s->ev);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

void check_icmp_uplink_clear(struct check_uplink *cu)
{
	for (size_t i = 0; i < ARRAY_SIZE(cu->icmp); i++) {
		sock_free(cu->icmp[i]);
		cu->icmp[i] = NULL;
	}
}

/* A reply (ICMP header onwards, len bytes) from `from`: whose probe does it answer? */
static void icmp_reply(
	struct check_icmp_sock *s, const uint8_t *buf, size_t len, const struct addr *from)
{
	struct check_uplink *cu = s->cu;
	struct icmp_echo e;
	struct check_target *t;
	char a[ADDR_STRLEN];
	uint8_t want = s->family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY;

	if (len < sizeof(e)) {
		check_malformed(cu, "a short ICMP message from %s", addr_str(from, a, sizeof(a)));
		return;
	}
	memcpy(&e, buf, sizeof(e));
	if (e.type != want || e.code != 0 || (s->raw && ntohs(e.id) != s->ident) ||
		e.p.cookie != s->cookie || e.p.idx >= cu->n_t) {
		check_malformed(cu, "an ICMP message from %s that is not ours",
			addr_str(from, a, sizeof(a)));
		return;
	}
	t = &cu->t[e.p.idx];
	if (!t->pending || ntohs(e.seq) != t->echo_seq || !addr_eq(&t->addr, from)) {
		/* late (after its deadline), duplicated, or from elsewhere */
		check_malformed(cu, "an ICMP echo reply from %s for no probe in flight",
			addr_str(from, a, sizeof(a)));
		return;
	}
	check_target_done(t, CHECK_OK, "echo reply");
}

static void icmp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_icmp_sock *s = arg;
	uint8_t buf[1500];

	(void)what;
	for (int i = 0; i < ICMP_READ_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct addr from;
		const uint8_t *p = buf;
		ssize_t n = recvfrom((int)fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
		size_t len;

		if (n < 0)
			return; /* EAGAIN; errors of unconnected sockets carry nothing we need */
		len = (size_t)n;
		if (addr_from_sockaddr((struct sockaddr *)&ss, &from, NULL) < 0)
			continue;
		if (s->raw && s->family == AF_INET) {
			size_t hl = len ? (size_t)(buf[0] & 0xf) * 4 : 0;
			if (hl < 20 || hl > len) {
				check_malformed(s->cu, "a malformed IPv4 packet");
				continue;
			}
			p += hl;
			len -= hl;
		}
		/* the handler may end the round; s stays (it belongs to the uplink) */
		icmp_reply(s, p, len, &from);
	}
}

static int sock_open(struct check_uplink *cu, int family, struct check_icmp_sock **ret)
{
	struct check_icmp_sock *s = xcalloc(1, sizeof(*s));
	int proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int r;

	s->cu = cu;
	s->family = family;
	s->ifindex = cu->u->ifindex;
	s->fd = -1;
	s->cookie = (uint64_t)check_random32() << 32 | check_random32();
	r = check_sock_open(cu, family, SOCK_DGRAM, proto, &s->fd);
	if (r == -EACCES || r == -EPERM || r == -EPROTONOSUPPORT) {
		/* not in net.ipv4.ping_group_range: a raw socket */
		s->raw = true;
		s->ident = (uint16_t)check_random32();
		r = check_sock_open(cu, family, SOCK_RAW, proto, &s->fd);
		if (r == 0)
			r = attach_filter(s);
	}
	if (r < 0)
		goto out;
	s->ev = event_new(cu->e->base, s->fd, EV_READ | EV_PERSIST, icmp_read_cb, s);
	if (!s->ev || event_add(s->ev, NULL) < 0) {
		r = -ENOMEM;
		goto out;
	}
	log_obj(LOG_LEVEL_DEBUG, "uplink", cu->u->name, "check icmp: IPv%d %s socket",
		family == AF_INET ? 4 : 6, s->raw ? "raw" : "ping (datagram)");
out:
	if (r < 0) {
		sock_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

int check_icmp_start(struct check_target *t)
{
	struct check_uplink *cu = t->cu;
	int fi = t->addr.family == AF_INET ? 0 : 1;
	struct check_icmp_sock *s = cu->icmp[fi];
	struct sockaddr_storage ss;
	struct icmp_echo e;
	socklen_t len;
	int r;

	/* the interface was deleted and made again: the old binding leads nowhere */
	if (s && cu->u->ifname[0] && s->ifindex != cu->u->ifindex) {
		sock_free(s);
		cu->icmp[fi] = s = NULL;
	}
	if (!s) {
		r = sock_open(cu, t->addr.family, &cu->icmp[fi]);
		if (r < 0)
			return r;
		s = cu->icmp[fi];
	}
	r = check_target_sockaddr(t, &ss, &len);
	if (r < 0)
		return r;
	t->echo_seq = ++s->seq;
	memset(&e, 0, sizeof(e));
	e.type = t->addr.family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	e.id = htons(s->ident); /* ping sockets put their own */
	e.seq = htons(t->echo_seq);
	e.p.cookie = s->cookie;
	e.p.idx = t->idx;
	if (t->addr.family == AF_INET)
		e.csum = csum16(&e, sizeof(e)); /* the kernel does it for ICMPv6 */
	if (sendto(s->fd, &e, sizeof(e), 0, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	return 0;
}

void check_icmp_cancel(struct check_target *t)
{
	/* nothing to release: a late reply finds no probe in flight and is dropped */
	(void)t;
}
