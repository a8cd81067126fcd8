/*
 * dhcp4.c - the DHCPv4 client's I/O: one packet socket per client on its macvlan, the ARP
 * socket of the conflict probe, the one timer, and the owner's callback.
 *
 * The socket is AF_PACKET/SOCK_DGRAM bound to the macvlan's ifindex with a classic BPF
 * filter that passes only BOOTREPLYs to UDP port 68 whose chaddr is this client's MAC, so
 * a hundred clients on one link do not each parse the others' broadcasts.  We build the
 * IPv4 and UDP headers ourselves: before a lease there is no address to send from.
 *
 * Must not block, add addresses or routes, or trust a packet: everything goes through
 * dhcp4_msg.c's parsers, and dhcp4_sm.c decides.  The callback may call back into the
 * client, even free it: see deliver().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dhcp4.h"
#include "dhcp4_msg.h"
#include "dhcp4_sm.h"
#include "log.h"
#include "util.h"

struct dhcp4_client {
	struct event_base *base;
	int ifindex;
	char name[IF_NAMESIZE + 8]; /* for log lines: the interface's name, or "if<index>" */
	dhcp4_cb cb;
	void *arg;
	struct dhcp4_sm sm;
	int fd, arp_fd;
	struct event *ev, *arp_ev, *timer;
	uint16_t ip_id;
	uint64_t bad_io; /* malformed packets the codec refused */
	unsigned in_cb;	 /* callbacks running now */
	bool free_pending;
	struct log_ratelimit rl;
};

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void clock_now(struct dhcp4_now *n)
{
	n->mono_ms = (int64_t)now_ms();
	n->wall_ms = clock_wall_ms();
}

static bool apply(struct dhcp4_client *c, struct dhcp4_sm_out *out, enum dhcp4_state was);

int dhcp4_client_new(struct event_base *base, const struct dhcp4_opts *o, dhcp4_cb cb, void *arg,
	struct dhcp4_client **ret)
{
	struct dhcp4_sm_conf conf;
	struct dhcp4_client *c;
	uint64_t seed;
	char ifname[IF_NAMESIZE];

	if (o->ifindex <= 0)
		return -EINVAL;
	if (o->client_id && (o->client_id_len < 2 || o->client_id_len > DHCP4_CLIENT_ID_MAX))
		return -EINVAL;
	if (o->hostname && strlen(o->hostname) > DHCP4_HOSTNAME_MAX)
		return -EINVAL;
	memset(&conf, 0, sizeof(conf));
	memcpy(conf.mac, o->mac, 6);
	if (o->client_id) {
		memcpy(conf.client_id, o->client_id, o->client_id_len);
		conf.client_id_len = o->client_id_len;
	} else {
		/* RFC 2132 9.14: hardware type 1 (Ethernet), then the MAC */
		conf.client_id[0] = 1;
		memcpy(conf.client_id + 1, o->mac, 6);
		conf.client_id_len = 7;
	}
	if (o->hostname)
		snprintf(conf.hostname, sizeof(conf.hostname), "%s", o->hostname);
	conf.retry_min_ms = o->retry_min_ms;
	conf.retry_max_ms = o->retry_max_ms;
	conf.arp_probe_ms = o->arp_probe_ms;

	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->ifindex = o->ifindex;
	if (if_indextoname((unsigned)o->ifindex, ifname))
		snprintf(c->name, sizeof(c->name), "%s", ifname);
	else
		snprintf(c->name, sizeof(c->name), "if%d", o->ifindex);
	c->cb = cb;
	c->arg = arg;
	c->fd = c->arp_fd = -1;
	c->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = now_ms() ^ ((uint64_t)o->ifindex << 32);
	dhcp4_sm_init(&c->sm, &conf, seed);
	c->ip_id = (uint16_t)seed;
	*ret = c;
	return 0;
}

/*
 * The filter (offsets from the IP header: SOCK_DGRAM strips the link layer): UDP, not a
 * later fragment, destination port 68, op BOOTREPLY, chaddr this MAC.
 */
static int attach_filter(int fd, const uint8_t mac[6])
{
	uint32_t m0 = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 |
		      mac[3];
	uint32_t m1 = (uint32_t)mac[4] << 8 | mac[5];
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9), /* protocol */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 12),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6), /* flags, fragment offset */
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 10, 0),
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0), /* x = IP header length */
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),	/* UDP destination port */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DHCP4_CLIENT_PORT, 0, 7),
		BPF_STMT(BPF_LD | BPF_B | BPF_IND, 8), /* op */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DHCP4_OP_REPLY, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_IND, 8 + 28), /* chaddr[0..4) */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, m0, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, 8 + 32), /* chaddr[4..6) */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, m1, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(f), .filter = f };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	return 0;
}

/*
 * A packet socket on the client's interface for ethertype proto.  Made with protocol 0 (it
 * receives nothing) so that the filter is in place before bind() starts the flow.
 */
static int open_packet(struct dhcp4_client *c, uint16_t proto, bool filter, int *ret)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(proto),
		.sll_ifindex = c->ifindex,
	};
	int fd, one = 1, r;

	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (filter) {
		r = attach_filter(fd, c->sm.conf.mac);
		if (r)
			goto fail;
		/* checksums a veth peer left to offload are not filled in: the kernel says so */
		if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		r = -errno;
		goto fail;
	}
	*ret = fd;
	return 0;
fail:
	close(fd);
	return r;
}

static void close_arp(struct dhcp4_client *c)
{
	if (c->arp_ev) {
		event_free(c->arp_ev);
		c->arp_ev = NULL;
	}
	if (c->arp_fd >= 0) {
		close(c->arp_fd);
		c->arp_fd = -1;
	}
}

static void close_all(struct dhcp4_client *c)
{
	close_arp(c);
	if (c->ev) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->timer)
		evtimer_del(c->timer);
}

static void send_msg(struct dhcp4_client *c, const struct dhcp4_sm_out *out)
{
	uint8_t buf[DHCP4_IPUDP_LEN + DHCP4_MAX_MSG];
	struct dhcp4_udp u = {
		.src = out->src,
		.dst = out->dst,
		.sport = DHCP4_CLIENT_PORT,
		.dport = DHCP4_SERVER_PORT,
	};
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = c->ifindex,
		.sll_halen = 6,
	};
	size_t mlen, len;
	int r;

	r = dhcp4_msg_build(&out->msg, buf + DHCP4_IPUDP_LEN, DHCP4_MAX_MSG, &mlen);
	if (!r)
		r = dhcp4_udp_build(&u, c->ip_id++, buf + DHCP4_IPUDP_LEN, mlen, buf, sizeof(buf),
			&len);
	if (r)
		fatalx("dhcp4 %s: cannot build a %s: %s", c->name,
			dhcp4_msg_type_name[out->msg.type], strerror(-r));
	memcpy(sll.sll_addr, out->dst_mac, 6);
	if (c->fd < 0)
		return;
	if (sendto(c->fd, buf, len, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		if (log_ratelimit(&c->rl))
			log_warn("dhcp4 %s: send %s", c->name, dhcp4_msg_type_name[out->msg.type]);
		return;
	}
	log_debug("dhcp4 %s: sent %s xid %08x", c->name, dhcp4_msg_type_name[out->msg.type],
		out->msg.xid);
}

static void arp_read_cb(evutil_socket_t fd, short what, void *arg);

/* The probe's socket is open exactly while the probe window is. */
static void send_probe(struct dhcp4_client *c)
{
	struct dhcp4_arp a = { .op = DHCP4_ARP_REQUEST };
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ARP),
		.sll_ifindex = c->ifindex,
		.sll_halen = 6,
	};
	uint8_t buf[DHCP4_ARP_LEN];
	int r;

	if (c->arp_fd < 0) {
		r = open_packet(c, ETH_P_ARP, false, &c->arp_fd);
		if (r) {
			if (log_ratelimit(&c->rl))
				log_warnx("dhcp4 %s: ARP socket: %s", c->name, strerror(-r));
			return;
		}
		c->arp_ev = event_new(c->base, c->arp_fd, EV_READ | EV_PERSIST, arp_read_cb, c);
		if (!c->arp_ev || event_add(c->arp_ev, NULL))
			fatalx("dhcp4 %s: cannot add the ARP event", c->name);
	}
	/* RFC 5227 2.1.1: sender our MAC and 0.0.0.0, target the address */
	memcpy(a.sha, c->sm.conf.mac, 6);
	a.tpa = c->sm.offer.addr.v4;
	dhcp4_arp_build(&a, buf, sizeof(buf));
	memcpy(sll.sll_addr, bcast_mac, 6);
	if (sendto(c->arp_fd, buf, sizeof(buf), 0, (struct sockaddr *)&sll, sizeof(sll)) < 0 &&
		log_ratelimit(&c->rl))
		log_warn("dhcp4 %s: send ARP probe", c->name);
}

/*
 * Report events.  The callback may free c: then it is freed here once the outermost
 * callback returned, and this returns true (the caller must not touch c again).
 */
static bool deliver(struct dhcp4_client *c, const struct dhcp4_sm_out *out)
{
	char ab[ADDR_STRLEN];

	for (unsigned i = 0; i < out->n_events && !c->free_pending; i++) {
		const struct dhcp4_lease *l = &out->events[i].lease;

		switch (out->events[i].ev) {
		case DHCP4_EV_BOUND:
			log_info("dhcp4 %s: bound %s/%u, lease %us", c->name,
				addr_str(&l->addr, ab, sizeof(ab)), l->plen, l->lease_s);
			break;
		case DHCP4_EV_RENEWED:
			log_debug("dhcp4 %s: renewed %s, lease %us", c->name,
				addr_str(&l->addr, ab, sizeof(ab)), l->lease_s);
			break;
		default:
			log_info("dhcp4 %s: lost %s", c->name, addr_str(&l->addr, ab, sizeof(ab)));
			break;
		}
		if (!c->cb)
			continue;
		c->in_cb++;
		c->cb(c->arg, out->events[i].ev, l);
		c->in_cb--;
	}
	if (c->free_pending && !c->in_cb) {
		dhcp4_client_free(c);
		return true;
	}
	return false;
}

/* Act on what the state machine asked for; true when c was freed meanwhile (deliver()). */
static bool apply(struct dhcp4_client *c, struct dhcp4_sm_out *out, enum dhcp4_state was)
{
	struct dhcp4_now n;

	if (out->send)
		send_msg(c, out);
	if (out->arp_probe)
		send_probe(c);
	if (!c->sm.probing)
		close_arp(c);
	if (was != c->sm.state)
		log_debug("dhcp4 %s: %s -> %s", c->name, dhcp4_state_name[was],
			dhcp4_state_name[c->sm.state]);
	if (c->sm.timer_at && c->sm.state != DHCP4_STOPPED) {
		int64_t d;
		struct timeval tv;

		clock_now(&n);
		d = c->sm.timer_at - n.mono_ms;
		if (d < 0)
			d = 0;
		tv.tv_sec = d / 1000;
		tv.tv_usec = (d % 1000) * 1000;
		evtimer_add(c->timer, &tv);
	} else if (c->timer) {
		evtimer_del(c->timer);
	}
	return deliver(c, out);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp4_client *c = arg;
	enum dhcp4_state was = c->sm.state;
	struct dhcp4_sm_out out;
	struct dhcp4_now n;

	clock_now(&n);
	if (c->sm.timer_at && n.mono_ms < c->sm.timer_at) {
		/* woken a little early (ms rounding): wait the rest */
		out.send = out.arp_probe = false;
		out.n_events = 0;
		apply(c, &out, was);
		return;
	}
	dhcp4_sm_timeout(&c->sm, &n, &out);
	apply(c, &out, was);
}

/* One packet from the socket with its source and whether its UDP checksum is filled in. */
static ssize_t recv_pkt(int fd, uint8_t *buf, size_t len, struct sockaddr_ll *sll, bool *csum_ok)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = {
		.msg_name = sll,
		.msg_namelen = sizeof(*sll),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = &ctl,
		.msg_controllen = sizeof(ctl),
	};
	ssize_t n = recvmsg(fd, &mh, MSG_TRUNC);

	*csum_ok = true;
	if (n < 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		struct tpacket_auxdata aux;

		if (cm->cmsg_level != SOL_PACKET || cm->cmsg_type != PACKET_AUXDATA)
			continue;
		memcpy(&aux, CMSG_DATA(cm), sizeof(aux));
		if (aux.tp_status & TP_STATUS_CSUMNOTREADY)
			*csum_ok = false;
	}
	return n;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp4_client *c = arg;
	uint8_t buf[DHCP4_IPUDP_LEN + DHCP4_MAX_MSG + 64];

	/* a bounded batch per wake-up, so one busy link cannot starve the loop */
	for (int i = 0; i < 16 && c->fd >= 0 && !c->free_pending; i++) {
		enum dhcp4_state was = c->sm.state;
		struct sockaddr_ll sll;
		struct dhcp4_sm_out out;
		struct dhcp4_udp u;
		struct dhcp4_msg m;
		struct dhcp4_now n;
		const uint8_t *p;
		size_t plen;
		bool csum_ok;
		ssize_t len = recv_pkt(c->fd, buf, sizeof(buf), &sll, &csum_ok);
		int r;

		if (len < 0) {
			if (errno != EAGAIN && errno != EINTR && log_ratelimit(&c->rl))
				log_warn("dhcp4 %s: receive", c->name);
			return;
		}
		if (sll.sll_pkttype == PACKET_OUTGOING)
			continue;
		if ((size_t)len > sizeof(buf)) {
			r = -EMSGSIZE;
		} else {
			r = dhcp4_udp_parse(buf, (size_t)len, csum_ok, &u, &p, &plen);
			if (!r && (u.dport != DHCP4_CLIENT_PORT || u.sport != DHCP4_SERVER_PORT))
				r = -EPROTO;
			if (!r)
				r = dhcp4_msg_parse(p, plen, &m);
		}
		if (r) {
			c->bad_io++;
			if (log_ratelimit(&c->rl))
				log_debug("dhcp4 %s: dropped a packet: %s", c->name, strerror(-r));
			continue;
		}
		log_debug("dhcp4 %s: received %s xid %08x", c->name, dhcp4_msg_type_name[m.type],
			m.xid);
		if (m.type == DHCP4_NAK && m.message[0])
			log_info("dhcp4 %s: NAK: %s", c->name, m.message);
		clock_now(&n);
		dhcp4_sm_receive(&c->sm, &m, sll.sll_addr, u.src, &n, &out);
		if (apply(c, &out, was))
			return;
	}
}

static void arp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp4_client *c = arg;
	uint8_t buf[256];

	for (int i = 0; i < 16 && c->arp_fd >= 0 && !c->free_pending; i++) {
		enum dhcp4_state was = c->sm.state;
		struct sockaddr_ll sll;
		socklen_t sl = sizeof(sll);
		struct dhcp4_sm_out out;
		struct dhcp4_arp a;
		struct dhcp4_now n;
		ssize_t len = recvfrom(c->arp_fd, buf, sizeof(buf), 0, (struct sockaddr *)&sll, &sl);

		if (len < 0)
			return;
		if (sll.sll_pkttype == PACKET_OUTGOING || dhcp4_arp_parse(buf, (size_t)len, &a))
			continue;
		clock_now(&n);
		dhcp4_sm_arp(&c->sm, &a, &n, &out);
		if (out.send) {
			char ab[ADDR_STRLEN];

			log_warnx("dhcp4 %s: %s is in use by %02x:%02x:%02x:%02x:%02x:%02x: declined",
				c->name, addr_str(&c->sm.offer.addr, ab, sizeof(ab)), a.sha[0],
				a.sha[1], a.sha[2], a.sha[3], a.sha[4], a.sha[5]);
		}
		if (apply(c, &out, was))
			return;
	}
}

int dhcp4_client_start(struct dhcp4_client *c, const struct dhcp4_lease *kept)
{
	enum dhcp4_state was = c->sm.state;
	struct dhcp4_sm_out out;
	struct dhcp4_now n;
	int r;

	close_all(c);
	r = open_packet(c, ETH_P_IP, true, &c->fd);
	if (r)
		return r;
	c->ev = event_new(c->base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
	if (!c->timer)
		c->timer = evtimer_new(c->base, timer_cb, c);
	if (!c->ev || !c->timer || event_add(c->ev, NULL)) {
		close_all(c);
		return -ENOMEM;
	}
	clock_now(&n);
	dhcp4_sm_start(&c->sm, kept, &n, &out);
	apply(c, &out, was);
	return 0;
}

void dhcp4_client_recheck(struct dhcp4_client *c)
{
	enum dhcp4_state was = c->sm.state;
	struct dhcp4_sm_out out;
	struct dhcp4_now n;

	if (c->sm.state == DHCP4_STOPPED || c->fd < 0)
		return;
	clock_now(&n);
	dhcp4_sm_recheck(&c->sm, &n, &out);
	apply(c, &out, was);
}

void dhcp4_client_release(struct dhcp4_client *c)
{
	struct dhcp4_sm_out out;
	struct dhcp4_now n;
	char ab[ADDR_STRLEN];

	clock_now(&n);
	if (c->sm.have_lease)
		log_info("dhcp4 %s: releasing %s", c->name,
			addr_str(&c->sm.lease.addr, ab, sizeof(ab)));
	dhcp4_sm_release(&c->sm, &n, &out);
	if (out.send)
		send_msg(c, &out);
	close_all(c);
}

void dhcp4_client_stop(struct dhcp4_client *c)
{
	dhcp4_sm_stop(&c->sm);
	close_all(c);
}

enum dhcp4_state dhcp4_client_state(const struct dhcp4_client *c)
{
	return c->sm.state;
}

const struct dhcp4_lease *dhcp4_client_lease(const struct dhcp4_client *c)
{
	return c->sm.have_lease ? &c->sm.lease : NULL;
}

void dhcp4_client_stats(const struct dhcp4_client *c, struct dhcp4_stats *ret)
{
	ret->sent = c->sm.sent;
	ret->received = c->sm.received + c->bad_io;
	ret->naks = c->sm.naks;
	ret->declines = c->sm.declines;
	ret->bad = c->sm.bad + c->bad_io;
	ret->attempt = c->sm.attempt;
	ret->next_at_ms = c->sm.state == DHCP4_STOPPED ? 0 : c->sm.timer_at;
}

void dhcp4_client_free(struct dhcp4_client *c)
{
	if (!c)
		return;
	if (c->in_cb) {
		/* called from our own callback: finish once it returns (deliver()) */
		dhcp4_sm_stop(&c->sm);
		close_all(c);
		c->free_pending = true;
		return;
	}
	close_all(c);
	if (c->timer)
		event_free(c->timer);
	free(c);
}
