/*
 * test_dhcp4_kernel.c - the DHCPv4 client's socket side (src/devices/dhcp4.c) against the
 * real kernel, with a scripted server on the other end of a veth pair.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and makes, with `ip` run as a child:
 *
 *   c0 (02:00:5e:10:20:30) ---- veth ---- s0 (02:53:00:00:00:01): the test's server, a
 *   packet socket for IPv4 and one for ARP; no addresses anywhere
 *
 * The server checks what the client sends to the byte where it matters (broadcast frames
 * from the client's MAC, IPv4 and UDP checksums, 0.0.0.0 -> 255.255.255.255, RELEASE unicast
 * to the server's MAC from the leased address) and answers with frames it builds itself: a
 * decoy OFFER for another MAC (the client's kernel filter must drop it: it is never
 * counted), a packet with a broken UDP checksum (counted as bad), then the real OFFER and
 * ACK.  A second client frees itself from its BOUND callback.  Nothing here runs before
 * unshare() succeeded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "devices/dhcp4.h"
#include "devices/dhcp4_msg.h"
#include "kernel_test.h"
#include "log.h"

static const uint8_t cmac[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };
static const uint8_t smac[6] = { 0x02, 0x53, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static struct event_base *g_base;
static int g_cif, g_sif;

/* The scripted server. */
struct srv {
	int fd, arp_fd;
	struct event *ev, *arp_ev;
	unsigned discovers, requests, releases, probes;
	struct dhcp4_msg last;	/* the last message from the client */
	struct dhcp4_udp last_udp;
	uint8_t last_dst_mac[6];
	bool dst_mac_seen;
};

/* What the client reported. */
struct seen {
	unsigned bound, renewed, lost;
	struct dhcp4_lease lease;
	struct dhcp4_client **self; /* set: free the client from the BOUND callback */
};

static int run(char *const argv[])
{
	int status;
	char *out = kt_run_capture(-1, argv, false, &status);

	free(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static int packet_socket(int ifindex, uint16_t proto)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(proto),
		.sll_ifindex = ifindex,
	};
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(proto));

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return fd;
}

/* The server sends m (a reply for chaddr) to the client's MAC and 255.255.255.255. */
static void srv_send(struct srv *s, struct dhcp4_msg *m, bool break_csum)
{
	uint8_t buf[DHCP4_IPUDP_LEN + DHCP4_MAX_MSG];
	struct dhcp4_udp u = { .src = ip("192.0.2.1"), .dst = { INADDR_BROADCAST },
		.sport = 67, .dport = 68 };
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = g_sif,
		.sll_halen = 6,
	};
	size_t mlen, len;

	m->op = DHCP4_OP_REPLY;
	assert_int_equal(dhcp4_msg_build(m, buf + DHCP4_IPUDP_LEN, DHCP4_MAX_MSG, &mlen), 0);
	assert_int_equal(dhcp4_udp_build(&u, 1, buf + DHCP4_IPUDP_LEN, mlen, buf, sizeof(buf),
				 &len), 0);
	if (break_csum)
		buf[DHCP4_IPUDP_LEN + 100] ^= 0xff;
	memcpy(sll.sll_addr, bcast, 6);
	assert_int_equal(sendto(s->fd, buf, len, 0, (struct sockaddr *)&sll, sizeof(sll)),
		(ssize_t)len);
}

/* A reply for chaddr: yiaddr 192.0.2.10, options 53 and 54. */
static struct dhcp4_msg srv_reply(const struct dhcp4_msg *req, uint8_t type, const uint8_t *chaddr)
{
	struct dhcp4_msg m = { 0 };

	m.type = type;
	m.xid = req->xid;
	m.flags = req->flags;
	m.yiaddr = ip("192.0.2.10");
	memcpy(m.chaddr, chaddr, 6);
	m.has_server_id = true;
	m.server_id = ip("192.0.2.1");
	return m;
}

/* The server: DISCOVER -> decoy, broken OFFER, OFFER; REQUEST -> ACK; RELEASE noted. */
static void srv_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	uint8_t buf[2048];
	struct sockaddr_ll sll;
	socklen_t sl = sizeof(sll);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&sll, &sl);
	const uint8_t *p;
	size_t plen;
	struct dhcp4_udp u;
	struct dhcp4_msg m, r;

	if (n <= 0 || sll.sll_pkttype == PACKET_OUTGOING)
		return;
	assert_memory_equal(sll.sll_addr, cmac, 6);
	/* our own frames carry full checksums: checked here */
	assert_int_equal(dhcp4_udp_parse(buf, (size_t)n, true, &u, &p, &plen), 0);
	assert_int_equal(u.sport, 68);
	assert_int_equal(u.dport, 67);
	assert_int_equal(dhcp4_msg_parse(p, plen, &m), 0);
	s->last = m;
	s->last_udp = u;
	s->dst_mac_seen = sll.sll_pkttype == PACKET_HOST;
	switch (m.type) {
	case DHCP4_DISCOVER:
		s->discovers++;
		assert_int_equal(u.src.s_addr, INADDR_ANY);
		assert_int_equal(u.dst.s_addr, INADDR_BROADCAST);
		assert_int_equal(sll.sll_pkttype, PACKET_BROADCAST);
		assert_int_equal(m.flags, DHCP4_FLAG_BROADCAST);
		/* a decoy for another MAC, a broken one for ours, then the OFFER */
		{
			static const uint8_t other[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x31 };

			r = srv_reply(&m, DHCP4_OFFER, other);
			srv_send(s, &r, false);
			r = srv_reply(&m, DHCP4_OFFER, cmac);
			srv_send(s, &r, true);
			srv_send(s, &r, false);
		}
		break;
	case DHCP4_REQUEST:
		s->requests++;
		assert_true(m.has_requested_ip && m.has_server_id);
		assert_int_equal(m.requested_ip.s_addr, ip("192.0.2.10").s_addr);
		r = srv_reply(&m, DHCP4_ACK, cmac);
		/*
		 * dhcp4_msg_build() writes what a client sends; an ACK also carries a lease
		 * time and a mask: written over its end option
		 */
		{
			uint8_t b[DHCP4_IPUDP_LEN + DHCP4_MAX_MSG];
			struct dhcp4_udp su = { .src = ip("192.0.2.1"), .dst = { INADDR_BROADCAST },
				.sport = 67, .dport = 68 };
			struct sockaddr_ll to = {
				.sll_family = AF_PACKET,
				.sll_protocol = htons(ETH_P_IP),
				.sll_ifindex = g_sif,
				.sll_halen = 6,
			};
			size_t mlen, len, end;

			r.op = DHCP4_OP_REPLY;
			assert_int_equal(dhcp4_msg_build(&r, b + DHCP4_IPUDP_LEN, DHCP4_MAX_MSG,
						 &mlen), 0);
			/* replace the end option with 51 (60 s) and a new end */
			end = 240;
			while (b[DHCP4_IPUDP_LEN + end] != 0xff)
				end += 2 + b[DHCP4_IPUDP_LEN + end + 1];
			memcpy(b + DHCP4_IPUDP_LEN + end, "\x33\x04\x00\x00\x00\x3c\x01\x04\xff\xff\xff"
							"\x00\xff", 13);
			assert_int_equal(dhcp4_udp_build(&su, 2, b + DHCP4_IPUDP_LEN, mlen, b,
						 sizeof(b), &len), 0);
			memcpy(to.sll_addr, bcast, 6);
			assert_int_equal(sendto(s->fd, b, len, 0, (struct sockaddr *)&to,
						 sizeof(to)), (ssize_t)len);
		}
		break;
	case DHCP4_RELEASE:
		s->releases++;
		memcpy(s->last_dst_mac, smac, 6);
		break;
	default:
		fail_msg("unexpected %s", dhcp4_msg_type_name[m.type]);
	}
}

static void srv_arp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	uint8_t buf[256];
	struct sockaddr_ll sll;
	socklen_t sl = sizeof(sll);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&sll, &sl);
	struct dhcp4_arp a;

	if (n <= 0 || sll.sll_pkttype == PACKET_OUTGOING || dhcp4_arp_parse(buf, (size_t)n, &a))
		return;
	/* RFC 5227 probe: from the client's MAC, sender 0.0.0.0, for the offered address */
	assert_int_equal(a.op, DHCP4_ARP_REQUEST);
	assert_memory_equal(a.sha, cmac, 6);
	assert_int_equal(a.spa.s_addr, 0);
	assert_int_equal(a.tpa.s_addr, ip("192.0.2.10").s_addr);
	s->probes++;
}

static void srv_start(struct srv *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = packet_socket(g_sif, ETH_P_IP);
	s->arp_fd = packet_socket(g_sif, ETH_P_ARP);
	s->ev = event_new(g_base, s->fd, EV_READ | EV_PERSIST, srv_read_cb, s);
	s->arp_ev = event_new(g_base, s->arp_fd, EV_READ | EV_PERSIST, srv_arp_cb, s);
	event_add(s->ev, NULL);
	event_add(s->arp_ev, NULL);
}

static void srv_stop(struct srv *s)
{
	event_free(s->ev);
	event_free(s->arp_ev);
	close(s->fd);
	close(s->arp_fd);
}

static void client_cb(void *arg, enum dhcp4_event ev, const struct dhcp4_lease *l)
{
	struct seen *seen = arg;

	seen->lease = *l;
	if (ev == DHCP4_EV_BOUND)
		seen->bound++;
	else if (ev == DHCP4_EV_RENEWED)
		seen->renewed++;
	else
		seen->lost++;
	if (ev == DHCP4_EV_BOUND && seen->self) {
		dhcp4_client_free(*seen->self);
		*seen->self = NULL;
	}
	event_base_loopbreak(g_base);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(g_base);
}

/* Run the loop until something breaks it or five seconds pass. */
static void run_loop(void)
{
	struct timeval tv = { 5, 0 };
	struct event *t = evtimer_new(g_base, timeout_cb, NULL);

	evtimer_add(t, &tv);
	event_base_dispatch(g_base);
	event_free(t);
}

static struct dhcp4_opts opts(void)
{
	struct dhcp4_opts o = { .ifindex = g_cif, .retry_min_ms = 300, .retry_max_ms = 600,
		.arp_probe_ms = 100, .hostname = "dev1" };

	memcpy(o.mac, cmac, 6);
	return o;
}

static void test_exchange(void **state)
{
	struct dhcp4_opts o = opts();
	struct dhcp4_client *c;
	struct dhcp4_stats st;
	struct seen seen = { 0 };
	struct srv s;

	srv_start(&s);
	assert_int_equal(dhcp4_client_new(g_base, &o, client_cb, &seen, &c), 0);
	assert_int_equal(dhcp4_client_state(c), DHCP4_STOPPED);
	assert_null(dhcp4_client_lease(c));
	assert_int_equal(dhcp4_client_start(c, NULL), 0);
	run_loop();
	assert_int_equal(seen.bound, 1);
	assert_int_equal(dhcp4_client_state(c), DHCP4_BOUND);
	assert_int_equal(seen.lease.addr.v4.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(seen.lease.plen, 24);
	assert_int_equal(seen.lease.lease_s, 60);
	assert_memory_equal(seen.lease.server_mac, smac, 6);
	assert_non_null(dhcp4_client_lease(c));
	assert_int_equal(s.discovers, 1);
	assert_int_equal(s.requests, 1);
	assert_true(s.probes >= 1);
	dhcp4_client_stats(c, &st);
	assert_int_equal(st.sent, 2);
	/* the decoy never reached us (the kernel filter); the broken one was refused */
	assert_int_equal(st.bad, 1);
	assert_int_equal(st.received, 3);
	assert_true(st.next_at_ms > 0);

	/* RELEASE: unicast to the server's MAC and address, from the leased address */
	dhcp4_client_release(c);
	assert_int_equal(dhcp4_client_state(c), DHCP4_STOPPED);
	assert_null(dhcp4_client_lease(c));
	while (!s.releases && event_base_loop(g_base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(s.releases, 1);
	assert_true(s.dst_mac_seen);
	assert_int_equal(s.last_udp.src.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(s.last_udp.dst.s_addr, ip("192.0.2.1").s_addr);
	assert_int_equal(s.last.ciaddr.s_addr, ip("192.0.2.10").s_addr);
	assert_int_equal(seen.lost, 0); /* a release reports nothing */
	dhcp4_client_stats(c, &st);
	assert_int_equal(st.next_at_ms, 0);
	dhcp4_client_free(c);
	srv_stop(&s);
}

static void test_free_in_callback(void **state)
{
	struct dhcp4_opts o = opts();
	struct dhcp4_client *c;
	struct seen seen = { .self = &c };
	struct srv s;

	srv_start(&s);
	o.arp_probe_ms = UINT32_MAX;
	assert_int_equal(dhcp4_client_new(g_base, &o, client_cb, &seen, &c), 0);
	assert_int_equal(dhcp4_client_start(c, NULL), 0);
	run_loop();
	assert_int_equal(seen.bound, 1);
	assert_null(c);
	assert_int_equal(s.probes, 0); /* no probe asked: none sent */
	srv_stop(&s);
}

static void test_bad_opts(void **state)
{
	struct dhcp4_opts o = opts();
	struct dhcp4_client *c;
	char longname[80];

	o.ifindex = 0;
	assert_int_equal(dhcp4_client_new(g_base, &o, client_cb, NULL, &c), -EINVAL);
	o = opts();
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	o.hostname = longname;
	assert_int_equal(dhcp4_client_new(g_base, &o, client_cb, NULL, &c), -EINVAL);
	/* an interface that is gone: start fails, nothing leaks */
	o = opts();
	o.ifindex = 9999;
	assert_int_equal(dhcp4_client_new(g_base, &o, client_cb, NULL, &c), 0);
	assert_true(dhcp4_client_start(c, NULL) < 0);
	dhcp4_client_free(c);
	dhcp4_client_free(NULL);
}

static int group_setup(void **state)
{
	char *const add[] = { "ip", "link", "add", "c0", "address", "02:00:5e:10:20:30", "type",
		"veth", "peer", "name", "s0", "address", "02:53:00:00:00:01", NULL };
	char *const up_c[] = { "ip", "link", "set", "c0", "up", NULL };
	char *const up_s[] = { "ip", "link", "set", "s0", "up", NULL };

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0 || run(add) || run(up_c) || run(up_s))
		return -1;
	g_cif = (int)if_nametoindex("c0");
	g_sif = (int)if_nametoindex("s0");
	g_base = event_base_new();
	log_init("test_dhcp4_kernel", true, LOG_LEVEL_WARN);
	return g_cif && g_sif && g_base ? 0 : -1;
}

static int group_teardown(void **state)
{
	event_base_free(g_base);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exchange),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_bad_opts),
	};

	return kt_exit_status(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
