/*
 * udp_assoc.c - SOCKS5 UDP ASSOCIATE (RFC 1928 section 7) for the proxy module.
 *
 * The client gets a UDP port of ours on the address it reached us on; its datagrams (only
 * from its own address) are unwrapped and sent out through the association's uplink, names
 * resolved through that uplink's resolvers; answers come back wrapped.  The TCP connection
 * of the request holds the association: when it closes, the association ends.
 *
 * An association runs on its session's worker thread; what it shares with the module
 * (the uplink's resolvers, the counting) is taken under pm->lock.
 *
 * Bounds: UDP_PENDING_MAX name lookups at a time (more datagrams are dropped, as a
 * congested network would), UDP_BUF bytes per datagram.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dispatch.h"
#include "log.h"
#include "proxy_int.h"
#include "socks.h"
#include "util.h"

#define UDP_PENDING_MAX 16 /* name lookups per UDP association */
#define UDP_BUF 65536

struct udp_pending {
	struct udp_assoc *a;
	struct evdns_getaddrinfo_request *req;
	uint16_t port;
	size_t n;
	uint8_t data[];
};

struct udp_assoc {
	struct session *s;
	int cfd;			/* the socket the client sends to */
	struct event *cev;
	struct sockaddr_storage client;	/* where the client sends from (learned) */
	socklen_t clen;
	bool client_known;
	uint16_t client_port;		/* the port the request named, 0: any (until learned) */
	int ufd[2];			/* per family, through the uplink */
	struct event *uev[2];
	struct udp_pending *pending[UDP_PENDING_MAX];
};

static void udp_send_out(struct udp_assoc *a, const struct sockaddr *to, socklen_t tlen,
	const uint8_t *p, size_t n)
{
	int f = to->sa_family == AF_INET6;

	if (a->ufd[f] < 0)
		return;
	if (sendto(a->ufd[f], p, n, MSG_DONTWAIT, to, tlen) < 0)
		log_debug("proxy: udp associate: send: %s", strerror(errno));
	else
		a->s->counters.up += n;
}

static void udp_resolve_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct udp_pending *p = arg;
	struct udp_assoc *a;

	/* cancelled: libevent calls back on a later loop turn, when the association that
	 * cancelled it (and p) have been freed - touch nothing */
	if (result == EVUTIL_EAI_CANCEL) {
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	a = p->a;
	for (size_t i = 0; i < UDP_PENDING_MAX; i++)
		if (a->pending[i] == p)
			a->pending[i] = NULL;
	/* an address of a family the uplink has a socket for */
	const struct evutil_addrinfo *ai = NULL;
	for (const struct evutil_addrinfo *x = result ? NULL : res; x && !ai; x = x->ai_next)
		if (a->ufd[x->ai_family == AF_INET6] >= 0)
			ai = x;
	if (ai) {
		struct sockaddr_storage ss;
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(p->port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(p->port);
		udp_send_out(a, (struct sockaddr *)&ss, (socklen_t)ai->ai_addrlen, p->data, p->n);
	}
	if (res)
		evutil_freeaddrinfo(res);
	free(p);
}

/* A datagram from the client: RSV FRAG ATYP DST.ADDR DST.PORT DATA. */
static void udp_client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc *a = arg;
	struct session *s = a->s;
	uint8_t buf[UDP_BUF];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	struct proxy_target t;
	struct evdns_base *dns;
	struct addr fa;
	uint16_t fport;
	ssize_t n, h;

	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	if (n <= 0)
		return;
	/* only the client of the TCP connection may use the association, from the port its
	 * request named (if it named one), and once it has sent, from that port only */
	if (addr_from_sockaddr((struct sockaddr *)&from, &fa, &fport) < 0)
		return;
	addr_unmap_v4(&fa);
	if (!addr_eq(&fa, &s->client) || (a->client_port && fport != a->client_port))
		return;
	if (a->client_known && (flen != a->clen || memcmp(&from, &a->client, flen)))
		return;
	if (!a->client_known) {
		memcpy(&a->client, &from, flen);
		a->clen = flen;
		a->client_known = true;
	}
	h = socks5_udp_parse(buf, (size_t)n, &t);
	if (h <= 0)
		return;
	if (t.kind == TARGET_ADDR) {
		socklen_t tl = t.addr.ss_family == AF_INET ? sizeof(struct sockaddr_in)
							  : sizeof(struct sockaddr_in6);
		udp_send_out(a, (struct sockaddr *)&t.addr, tl, buf + h, (size_t)(n - h));
		return;
	}
	PROXY_LOCK(s->pm);
	dns = proxy_session_dns(s);
	PROXY_UNLOCK(s->pm);
	if (!dns)
		return; /* no resolver: dropped */
	for (size_t i = 0; i < UDP_PENDING_MAX; i++) {
		if (a->pending[i])
			continue;
		struct udp_pending *p = xmalloc(sizeof(*p) + (size_t)(n - h));
		struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
		struct evdns_getaddrinfo_request *req;
		p->a = a;
		p->req = NULL;
		p->port = t.port;
		p->n = (size_t)(n - h);
		memcpy(p->data, buf + h, p->n);
		a->pending[i] = p;
		req = evdns_getaddrinfo(dns, t.name, NULL, &hints, udp_resolve_cb, p);
		/* NULL: the callback has run and freed p */
		if (req)
			p->req = req;
		return;
	}
	/* too many lookups at once: drop, as a congested network would */
}

/* An answer from the outside: wrap it and send it to the client. */
static void udp_out_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc *a = arg;
	uint8_t buf[UDP_BUF];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	size_t h;
	ssize_t n;

	/* the datagram lands after room for the longest header (IPv6: 22 bytes) */
	n = recvfrom(fd, buf + 22, sizeof(buf) - 22, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	if (n <= 0 || !a->client_known)
		return;
	h = socks5_udp_header_build((struct sockaddr *)&from, buf);
	memmove(buf + h, buf + 22, (size_t)n);
	if (sendto(a->cfd, buf, h + (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&a->client,
		    a->clen) >= 0)
		a->s->counters.down += (size_t)n;
}

void udp_assoc_free(struct udp_assoc *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < UDP_PENDING_MAX; i++)
		if (a->pending[i]) {
			if (a->pending[i]->req)
				evdns_getaddrinfo_cancel(a->pending[i]->req);
			free(a->pending[i]);
		}
	for (int f = 0; f < 2; f++) {
		if (a->uev[f])
			event_free(a->uev[f]);
		if (a->ufd[f] >= 0)
			close(a->ufd[f]);
	}
	if (a->cev)
		event_free(a->cev);
	if (a->cfd >= 0)
		close(a->cfd);
	free(a);
}

/* The TCP connection of an association: it ends the association when it closes. */
static void udp_tcp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		struct proxy_module *pm = s->pm;

		PROXY_LOCK(pm);
		proxy_count_end(s);
		proxy_session_free(s);
		PROXY_UNLOCK(pm);
	}
}

void udp_assoc_start(struct session *s)
{
	struct proxy_module *pm = s->pm;
	struct udp_assoc *a = xcalloc(1, sizeof(*a));
	struct sockaddr_storage local, shown;
	socklen_t llen = sizeof(local), slen;
	struct addr la;
	uint16_t lport;
	uint8_t out[22];
	size_t n;
	int i;

	a->s = s;
	a->cfd = -1;
	a->ufd[0] = a->ufd[1] = -1;
	s->udp = a;
	/* RFC 1928: DST.ADDR and DST.PORT say where the client will send from, zeros when it
	 * does not know.  The port is kept to unless the address names another host (a
	 * client behind NAT, whose port is not the one we will see either). */
	if (s->target.kind == TARGET_ADDR) {
		struct addr ra;
		uint16_t rport;
		if (addr_from_sockaddr((struct sockaddr *)&s->target.addr, &ra, &rport) == 0) {
			addr_unmap_v4(&ra);
			if (addr_is_any(&ra) || addr_eq(&ra, &s->client))
				a->client_port = rport;
		}
	}
	i = dispatch_pick(pm->disp, &s->client, now_ms(), -1);
	if (i < 0) {
		proxy_session_fail(s, ENETUNREACH, "no usable uplink");
		return;
	}
	s->up = pm->ups[i];
	/* the client sends to the address it reached us on, on a port of our choosing */
	getsockname(s->fd, (struct sockaddr *)&local, &llen);
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	a->cfd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->cfd < 0 || bind(a->cfd, (struct sockaddr *)&local, llen) < 0 ||
		getsockname(a->cfd, (struct sockaddr *)&local, &llen) < 0) {
		proxy_session_fail(s, errno, "udp associate");
		return;
	}
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		if (addr_is_set(&s->up->via.source) && s->up->via.source.family != family)
			continue;
		a->ufd[f] = uplink_socket(family, SOCK_DGRAM, &s->up->via);
		if (a->ufd[f] < 0) {
			a->ufd[f] = -1;
			continue;
		}
		a->uev[f] = event_new(s->wk->base, a->ufd[f], EV_READ | EV_PERSIST, udp_out_cb, a);
		event_add(a->uev[f], NULL);
	}
	a->cev = event_new(s->wk->base, a->cfd, EV_READ | EV_PERSIST, udp_client_cb, a);
	event_add(a->cev, NULL);
	/* BND.ADDR: an IPv4 client of a dual-stack listener gets the IPv4 address, not its
	 * IPv4-mapped IPv6 form */
	addr_from_sockaddr((struct sockaddr *)&local, &la, &lport);
	addr_unmap_v4(&la);
	addr_to_sockaddr(&la, lport, &shown, &slen);
	n = socks5_reply_build(SOCKS5_OK, (struct sockaddr *)&shown, out);
	proxy_client_send(s, out, n);
	s->state = S_UDP;
	free(s->buf);
	s->buf = NULL;
	event_del(s->timer);
	event_del(s->ev);
	event_assign(s->ev, s->wk->base, s->fd, EV_READ | EV_PERSIST, udp_tcp_cb, s);
	event_add(s->ev, NULL);
	proxy_count_start(s);
}
