/*
 * dhcp6.c - the DHCPv6 client's sockets and timer: drives dhcp6_sm.c on the event loop.
 *
 * One UDP socket per client, bound to the macvlan (SO_BINDTODEVICE) and to its link-local
 * address port 546.  The kernel makes that address from the MAC (EUI-64, RFC 4291 2.5.1)
 * shortly after the link comes up, and it stays tentative during DAD: IPV6_FREEBIND lets us
 * bind before it exists; until it is usable a send fails and the next retransmission tries
 * again.  Everything goes to ff02::1:2 port 547 (we never use the server-unicast option).
 *
 * This file only moves bytes, keeps time and reports; the protocol is in dhcp6_sm.c and the
 * codec in dhcp6_msg.c.  It logs at debug only, but for malformed messages (counted,
 * at most five lines a minute); what the device module should tell the operator arrives
 * through the callback.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dhcp6_int.h"
#include "log.h"
#include "util.h"

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

struct dhcp6_client {
	struct event_base *base;
	int ifindex;
	uint8_t mac[6];
	char name[IF_NAMESIZE];
	dhcp6_cb cb;
	void *arg;
	int fd;
	struct event *ev_read, *ev_timer;
	struct dhcp6_sm sm;
	struct dhcp6_stats stats;
	int busy;  /* inside a callback */
	bool dead; /* freed from a callback: free when it returns */
};

static int64_t wall_s(void)
{
	return (int64_t)time(NULL);
}

/* RFC 4291 2.5.1 / RFC 2464 5: fe80::/64 with the modified EUI-64 of mac. */
static void link_local_of(const uint8_t mac[6], struct in6_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->s6_addr[0] = 0xfe;
	ret->s6_addr[1] = 0x80;
	ret->s6_addr[8] = mac[0] ^ 0x02;
	ret->s6_addr[9] = mac[1];
	ret->s6_addr[10] = mac[2];
	ret->s6_addr[11] = 0xff;
	ret->s6_addr[12] = 0xfe;
	ret->s6_addr[13] = mac[3];
	ret->s6_addr[14] = mac[4];
	ret->s6_addr[15] = mac[5];
}

static int open_socket(struct dhcp6_client *c)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(DHCP6_CLIENT_PORT) };
	int one = 1, hops = 1, fd, r;
	unsigned idx = (unsigned)c->ifindex;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
		setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0)
		goto fail;
	/* the address is the kernel's to make; it may not exist (or be tentative) yet */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) < 0 &&
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0)
		goto fail;
	/* SO_BINDTOIFINDEX is Linux 5.0; older kernels take the name */
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &c->ifindex, sizeof(c->ifindex)) < 0 &&
		(errno != ENOPROTOOPT ||
			setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c->name, (socklen_t)strlen(c->name)) < 0))
		goto fail;
	link_local_of(c->mac, &sin6.sin6_addr);
	sin6.sin6_scope_id = idx;
	if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)
		goto fail;
	c->fd = fd;
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

static void deliver(struct dhcp6_client *c, const struct dhcp6_out *out);

static void send_msg(struct dhcp6_client *c, const struct dhcp6_msg *m)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(DHCP6_SERVER_PORT),
		.sin6_scope_id = (uint32_t)c->ifindex };
	uint8_t buf[DHCP6_MSG_MAX];
	size_t len;

	/* ff02::1:2, All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1) */
	to.sin6_addr.s6_addr[0] = 0xff;
	to.sin6_addr.s6_addr[1] = 0x02;
	to.sin6_addr.s6_addr[13] = 0x01;
	to.sin6_addr.s6_addr[15] = 0x02;
	if (dhcp6_msg_build(m, buf, sizeof(buf), &len) < 0)
		return;
	if (sendto(c->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		/* EADDRNOTAVAIL while the link-local address is tentative: retransmission retries */
		log_debug("dhcp6 %s: send %s: %s", c->name, dhcp6_msg_type_str(m->type),
			strerror(errno));
		return;
	}
	c->stats.sent++;
	log_debug("dhcp6 %s: sent %s (xid %06x)", c->name, dhcp6_msg_type_str(m->type), m->xid);
}

/* Act on one step of the state machine: send, re-arm, report (in that order). */
static void deliver(struct dhcp6_client *c, const struct dhcp6_out *out)
{
	enum dhcp6_state s = c->sm.state;

	if (out->send)
		send_msg(c, &out->msg);
	if (out->timer_ms >= 0) {
		int64_t d = out->timer_ms - (int64_t)now_ms();
		struct timeval tv;

		if (d < 0)
			d = 0;
		tv.tv_sec = d / 1000;
		tv.tv_usec = (d % 1000) * 1000;
		evtimer_add(c->ev_timer, &tv);
	} else {
		evtimer_del(c->ev_timer);
	}
	c->stats.attempt = c->sm.count;
	c->stats.next_at_ms = out->timer_ms;
	if (out->status != DHCP6_STATUS_NONE && out->status != DHCP6_STATUS_SUCCESS)
		log_debug("dhcp6 %s: %s in %s", c->name, dhcp6_status_str(out->status),
			dhcp6_state_name[s]);
	c->busy++;
	for (size_t i = 0; i < out->n_ev && !c->dead; i++)
		c->cb(c->arg, out->ev[i], &out->ev_lease[i]);
	c->busy--;
	if (c->dead && !c->busy)
		dhcp6_client_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp6_client *c = arg;
	struct dhcp6_out out;

	(void)fd;
	(void)what;
	dhcp6_sm_timeout(&c->sm, (int64_t)now_ms(), wall_s(), &out);
	deliver(c, &out);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp6_client *c = arg;
	uint8_t buf[DHCP6_MSG_MAX];
	struct sockaddr_in6 from;
	struct dhcp6_msg m;
	struct dhcp6_out out;
	struct addr src;

	(void)what;
	for (int i = 0; i < 16; i++) {
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (n < 0)
			return; /* EAGAIN, or an ICMP error we have nothing to do with */
		c->stats.received++;
		src.family = AF_INET6;
		src.v6 = from.sin6_addr;
		if (from.sin6_family != AF_INET6 || ntohs(from.sin6_port) != DHCP6_SERVER_PORT ||
			dhcp6_msg_parse(buf, (size_t)n, &m) < 0) {
			static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60000, 5);
			char a[ADDR_STRLEN];

			c->stats.bad++;
			if (log_ratelimit(&rl))
				log_warnx("dhcp6 %s: malformed message (%zd bytes) from %s port %u: "
					  "dropped",
					c->name, n, addr_str(&src, a, sizeof(a)),
					ntohs(from.sin6_port));
			continue;
		}
		log_debug("dhcp6 %s: got %s (xid %06x)", c->name, dhcp6_msg_type_str(m.type),
			m.xid);
		dhcp6_sm_receive(&c->sm, (int64_t)now_ms(), wall_s(), &m, &src, &out);
		c->busy++;
		deliver(c, &out);
		c->busy--;
		if (c->dead) {
			if (!c->busy)
				dhcp6_client_free(c);
			return;
		}
	}
}

int dhcp6_client_new(struct event_base *base, const struct dhcp6_opts *o, dhcp6_cb cb, void *arg,
	struct dhcp6_client **ret)
{
	struct dhcp6_client *c;
	uint64_t seed = 0;
	int r;

	if (!o->ifindex || (o->duid && (o->duid_len < 2 || o->duid_len > DHCP6_DUID_MAX)))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->base = base;
	c->ifindex = o->ifindex;
	memcpy(c->mac, o->mac, 6);
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	if (!if_indextoname((unsigned)o->ifindex, c->name)) {
		r = -errno;
		goto fail;
	}
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = now_ms() ^ ((uint64_t)o->ifindex << 32);
	dhcp6_sm_init(&c->sm, o->mac, o->duid, o->duid_len, o->iaid, o->solicit_max_ms, seed);
	r = open_socket(c);
	if (r < 0)
		goto fail;
	c->ev_read = event_new(base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
	c->ev_timer = evtimer_new(base, timer_cb, c);
	if (!c->ev_read || !c->ev_timer || event_add(c->ev_read, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = c;
	return 0;
fail:
	dhcp6_client_free(c);
	return r;
}

int dhcp6_client_start(struct dhcp6_client *c, const struct dhcp6_lease *kept)
{
	struct dhcp6_out out;

	if (kept && !addr_is_set(&kept->addr))
		kept = NULL; /* a store row without an IPv6 lease */
	if (kept && kept->addr.family != AF_INET6)
		return -EINVAL;
	dhcp6_sm_start(&c->sm, (int64_t)now_ms(), wall_s(), kept, &out);
	deliver(c, &out);
	return 0;
}

void dhcp6_client_recheck(struct dhcp6_client *c)
{
	struct dhcp6_out out;

	dhcp6_sm_recheck(&c->sm, (int64_t)now_ms(), wall_s(), &out);
	deliver(c, &out);
}

void dhcp6_client_decline(struct dhcp6_client *c)
{
	struct dhcp6_out out;

	dhcp6_sm_decline(&c->sm, (int64_t)now_ms(), wall_s(), &out);
	deliver(c, &out);
}

void dhcp6_client_release(struct dhcp6_client *c)
{
	struct dhcp6_out out;

	dhcp6_sm_release(&c->sm, (int64_t)now_ms(), wall_s(), &out);
	deliver(c, &out);
}

void dhcp6_client_stop(struct dhcp6_client *c)
{
	struct dhcp6_out out;

	dhcp6_sm_stop(&c->sm, &out);
	deliver(c, &out);
}

enum dhcp6_state dhcp6_client_state(const struct dhcp6_client *c)
{
	return c->sm.state;
}

const struct dhcp6_lease *dhcp6_client_lease(const struct dhcp6_client *c)
{
	return c->sm.have_lease ? &c->sm.lease : NULL;
}

void dhcp6_client_stats(const struct dhcp6_client *c, struct dhcp6_stats *ret)
{
	*ret = c->stats;
}

void dhcp6_client_free(struct dhcp6_client *c)
{
	if (!c)
		return;
	if (c->busy) {
		c->dead = true;
		return;
	}
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_timer)
		event_free(c->ev_timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
