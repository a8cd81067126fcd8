/*
 * ra.c - the router advertisement watch: a raw ICMPv6 socket on one interface, filtered to
 * RAs (RFC 4861 4.2), and router solicitations (4.1) on demand.
 *
 * ra_parse() is pure (fuzzed by tests/fuzz/fuzz_ra.c): it checks the message the way RFC
 * 4861 6.1.2 asks (code 0, at least 16 bytes, options of non-zero length within the message,
 * a link-local source) and keeps what the device module acts on.  The kernel has already
 * checked the ICMPv6 checksum; the hop limit of 255 (the RA was not forwarded) is checked
 * here from IPV6_RECVHOPLIMIT.  This file changes nothing on the interface: the kernel's
 * own SLAAC (accept_ra) is dev_net.c's business.  A dropped RA is counted and logged at
 * most five times a minute.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "ra.h"
#include "util.h"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

struct ra_watch {
	struct event_base *base;
	int ifindex;
	char name[IF_NAMESIZE];
	int fd;
	struct event *ev;
	ra_cb cb;
	void *arg;
	bool have_last;
	struct ra_info last;
	int64_t last_at_ms;
	uint64_t bad;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 4861 4.6.2: a prefix information option (32 bytes); false to leave it out. */
static bool parse_prefix(const uint8_t *o, struct ra_prefix *ret)
{
	uint8_t plen = o[2];

	if (plen > 128)
		return false;
	memset(ret, 0, sizeof(*ret));
	ret->onlink = o[3] & 0x80;
	ret->autonomous = o[3] & 0x40;
	ret->valid_s = get32(o + 4);
	ret->preferred_s = get32(o + 8);
	/* RFC 4862 5.5.3 c: preferred beyond valid makes the option void */
	if (ret->preferred_s > ret->valid_s)
		return false;
	ret->prefix.addr.family = AF_INET6;
	memcpy(ret->prefix.addr.b, o + 16, 16);
	ret->prefix.plen = plen;
	cidr_clear_hostbits(&ret->prefix);
	return true;
}

int ra_parse(const uint8_t *msg, size_t len, const struct addr *src, struct ra_info *ret)
{
	size_t off = 16;

	memset(ret, 0, sizeof(*ret));
	/* RFC 4861 6.1.2: from a link-local address, code 0, 16 bytes or more */
	if (!src || src->family != AF_INET6 || src->b[0] != 0xfe || (src->b[1] & 0xc0) != 0x80)
		goto bad;
	if (len < 16 || msg[0] != ND_ROUTER_ADVERT || msg[1] != 0)
		goto bad;
	ret->router = *src;
	ret->managed = msg[5] & 0x80;
	ret->other = msg[5] & 0x40;
	ret->lifetime_s = get16(msg + 6);
	while (off < len) {
		const uint8_t *o = msg + off;
		size_t olen;

		if (len - off < 2 || o[1] == 0)
			goto bad;
		olen = (size_t)o[1] * 8;
		if (olen > len - off)
			goto bad;
		switch (o[0]) {
		case ND_OPT_SOURCE_LINKADDR:
			/* Ethernet: 6 bytes in an 8-byte option; other link types are not ours */
			if (olen == 8)
				memcpy(ret->router_mac, o + 2, 6);
			break;
		case ND_OPT_PREFIX_INFORMATION:
			if (olen != 32)
				goto bad;
			if (ret->n_prefixes < RA_PREFIX_MAX &&
				parse_prefix(o, &ret->prefixes[ret->n_prefixes]))
				ret->n_prefixes++;
			break;
		case ND_OPT_MTU:
			if (olen != 8)
				goto bad;
			ret->mtu = get32(o + 4);
			break;
		default:
			break; /* RFC 4861 4.6: unknown options are skipped */
		}
		off += olen;
	}
	return 0;
bad:
	memset(ret, 0, sizeof(*ret));
	return -EBADMSG;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ra_watch *w = arg;
	uint8_t buf[1500];
	uint8_t cbuf[CMSG_SPACE(sizeof(int))];

	(void)what;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_in6 from;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			.msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		struct ra_info ra;
		struct addr src;
		int hops = -1;
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0)
			return;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT &&
				cm->cmsg_len >= CMSG_LEN(sizeof(int)))
				memcpy(&hops, CMSG_DATA(cm), sizeof(int));
		src.family = AF_INET6;
		src.v6 = from.sin6_addr;
		/* RFC 4861 6.1.2: hop limit 255, or it came from off the link */
		if (hops != 255 || ra_parse(buf, (size_t)n, &src, &ra) < 0) {
			static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60000, 5);
			char a[ADDR_STRLEN];

			w->bad++;
			if (log_ratelimit(&rl))
				log_warnx("ra %s: %s router advertisement (%zd bytes) from %s: "
					  "dropped",
					w->name, hops != 255 ? "forwarded (hop limit not 255)"
							     : "malformed",
					n, addr_str(&src, a, sizeof(a)));
			continue;
		}
		w->last = ra;
		w->have_last = true;
		w->last_at_ms = (int64_t)now_ms();
		if (w->cb)
			w->cb(w->arg, &w->last);
	}
}

int ra_watch_new(struct event_base *base, int ifindex, ra_cb cb, void *arg, struct ra_watch **ret)
{
	struct icmp6_filter filt;
	struct ra_watch *w;
	int one = 1, hops = 255, r;
	unsigned idx = (unsigned)ifindex;

	if (ifindex <= 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->base = base;
	w->ifindex = ifindex;
	w->cb = cb;
	w->arg = arg;
	w->fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (w->fd < 0 || !if_indextoname(idx, w->name))
		goto fail;
	ICMP6_FILTER_SETBLOCKALL(&filt);
	ICMP6_FILTER_SETPASS(ND_ROUTER_ADVERT, &filt);
	if (setsockopt(w->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof(filt)) < 0 ||
		setsockopt(w->fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one)) < 0 ||
		setsockopt(w->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
		setsockopt(w->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
		setsockopt(w->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) < 0)
		goto fail;
	if (setsockopt(w->fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof(ifindex)) < 0 &&
		(errno != ENOPROTOOPT || setsockopt(w->fd, SOL_SOCKET, SO_BINDTODEVICE, w->name,
						 (socklen_t)strlen(w->name)) < 0))
		goto fail;
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, read_cb, w);
	if (!w->ev || event_add(w->ev, NULL) < 0) {
		errno = ENOMEM;
		goto fail;
	}
	*ret = w;
	return 0;
fail:
	r = errno ? -errno : -EIO;
	ra_watch_free(w);
	return r;
}

int ra_watch_solicit(struct ra_watch *w)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_scope_id = (uint32_t)w->ifindex };
	uint8_t msg[16] = { ND_ROUTER_SOLICIT };
	size_t len = 8;
	struct ifreq ifr;

	/* ff02::2, all routers */
	to.sin6_addr.s6_addr[0] = 0xff;
	to.sin6_addr.s6_addr[1] = 0x02;
	to.sin6_addr.s6_addr[15] = 0x02;
	/* RFC 4861 4.1: the source link-layer address, when the link has one */
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, w->name, sizeof(ifr.ifr_name) - 1);
	if (ioctl(w->fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == 1 /* ether */) {
		msg[8] = ND_OPT_SOURCE_LINKADDR;
		msg[9] = 1;
		memcpy(msg + 10, ifr.ifr_hwaddr.sa_data, 6);
		len = 16;
	}
	if (sendto(w->fd, msg, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

const struct ra_info *ra_watch_last(const struct ra_watch *w, int64_t *at_ms)
{
	if (!w->have_last)
		return NULL;
	if (at_ms)
		*at_ms = w->last_at_ms;
	return &w->last;
}

void ra_watch_free(struct ra_watch *w)
{
	if (!w)
		return;
	if (w->ev)
		event_free(w->ev);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}
