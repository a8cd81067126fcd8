/*
 * dns.c - the DNS forwarder: client sockets (UDP, TCP), upstream queries through the
 * uplinks, retries, the cache and the counters.
 *
 * A client's query is parsed (dns_msg.c), answered from the cache (dns_cache.c) or sent to
 * one resolver: the resolvers of the usable uplinks (each uplink's share by its weight)
 * and [dns] upstream.  Each attempt goes out on a socket picked at random from the
 * resolver's pool (UP_POOL sockets, each connect()ed to the resolver, so the kernel gave
 * it a random port), with a fresh random ID not in use on that socket; the answer must
 * come from that resolver to that socket with that ID and question (RFC 5452 9.1).  A
 * socket is replaced by a new one (a new random port) after UP_SOCK_USES queries, as
 * unbound's outgoing-range rotates its ports, so that ports keep changing without the
 * cost of a socket per query; a retired socket closes when its last query is done.  On timeout, ICMP error,
 * SERVFAIL or REFUSED the next attempt goes to another uplink (or resolver) until
 * `attempts`, then the client gets SERVFAIL.  An upstream answer with TC set is asked
 * again over TCP of the same resolver.  Answers are relayed whole, never cut (RFC 6891
 * 7: the OPT record goes as it came); one larger than the client takes over UDP becomes
 * header + question with TC (RFC 1035 4.2.1), and the client comes back over TCP.
 *
 * Bounds: max_pending queries upstream (over it: REFUSED, see dns_client_query()),
 * TCP_MAX_CONN client connections (TCP_PER_CLIENT from one address; when all are taken, the
 * quietest idle one is closed for a newcomer), TCP_FRAME_MS for a message to arrive whole,
 * TCP_MAX_INFLIGHT queries and TCP_OUT_MAX bytes of answers per connection, cache_size
 * answers and DNS_CACHE_BYTES_PER_ENTRY bytes per answer on average.
 *
 * Clients: [dns] allow (acl.h); one outside it gets REFUSED, except a UDP query that came in
 * through an uplink interface, which is dropped (see udp_acl()).
 *
 * Must not touch routes, rules or nftables: the socket options alone (source address,
 * SO_BINDTODEVICE, SO_MARK) choose the uplink.  Outside input is never trusted; what is
 * refused is counted and logged rate-limited.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "acl.h"
#include "conf_keys.h"
#include "dns.h"
#include "dns_cache.h"
#include "dns_conf.h"
#include "dns_msg.h"
#include "dnswatch.h"
#include "log.h"
#include "module.h"
#include "metrics.h"
#include "policy_conf.h"
#include "proxy_conf.h"
#include "route_conf.h"
#include "uplink.h"
#include "util.h"

#define DNS_PORT	 53
#define TCP_MAX_CONN	 128	      /* client connections at once */
#define TCP_MAX_INFLIGHT 32	      /* queries upstream per client connection (pipelining) */
#define TCP_OUT_MAX	 (256 * 1024) /* unread answers per connection: then we stop reading */
#define TCP_IDLE_MS	 10000	      /* RFC 7766 6.2.3: seconds, not minutes */
#define TCP_PER_CLIENT	 16	      /* connections from one address at once */
#define TCP_FRAME_MS	 5000	      /* a message must be whole this long after its first byte */
#define UDP_BATCH	 64	      /* datagrams per wakeup: TCP and timers get their turn */
#define ATTEMPTS_MAX	 10	      /* [dns] attempts' upper bound */
#define RESOLV_CONF	 "/etc/resolv.conf"
#define UP_POOL		 16	      /* UDP sockets per resolver at once */
#define UP_SOCK_USES	 64	      /* queries per socket before a new one takes its place */
#define UP_RECV_BATCH	 32	      /* datagrams per recvmmsg() */

enum dns_transport {
	DNS_UDP,
	DNS_TCP,
	_DNS_TRANSPORT_MAX,
};

static const char *const dns_transport_name[_DNS_TRANSPORT_MAX] = {
	[DNS_UDP] = "udp",
	[DNS_TCP] = "tcp",
};

struct up_sock;

/* One upstream resolver; queries hold references, so a reload never pulls one away. */
struct dns_resolver {
	unsigned refs;
	char *uplink; /* NULL: [dns] upstream, through the main routing table */
	struct addr addr;
	uint32_t mark; /* SO_MARK; 0: none */
	struct up_sock *pool[UP_POOL]; /* UDP sockets in use; NULL: none yet */
};

/*
 * A UDP socket connect()ed to one resolver, shared by the queries in flight on it (found
 * by ID).  In its resolver's pool until retired (after UP_SOCK_USES queries, an ICMP
 * error or an uplink event); then freed when its last query leaves it.
 */
struct up_sock {
	struct dns_module *m;
	struct dns_resolver *r; /* not a reference: its queries hold those; NULL: r is gone */
	struct addr addr;	/* r's */
	int fd;
	struct event *ev;
	unsigned uses;
	unsigned inflight;
	bool retired;
	bool busy; /* in up_sock_cb(): freed there when it is done */
	struct dns_query *queries;
};

/* Who asked, and how to answer. */
struct dns_client {
	enum dns_transport transport;
	/* UDP */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int pi_level; /* 0, IPPROTO_IP or IPPROTO_IPV6: the pktinfo below is set */
	union {
		struct in_pktinfo v4;
		struct in6_pktinfo v6;
	} pi;
	int ifindex; /* it came in through (0: not known) */
	/* TCP */
	struct dns_conn *conn;
	bool refused; /* by the ACL: REFUSED to each query */
};

struct dns_conn {
	struct dns_module *m;
	struct dns_conn *prev, *next;
	struct bufferevent *bev;
	struct addr peer;
	uint64_t active_ms;  /* a whole message came or an answer went */
	uint64_t partial_ms; /* the first byte of the message not yet whole came; 0: none */
	unsigned inflight; /* its queries upstream */
	bool paused;	   /* reading stopped by a bound */
	bool reading;	   /* in conn_read() */
	bool eof;	   /* the client closed its side: close once everything is written */
	bool refused;	   /* by the ACL: REFUSED to its first query, then closed */
};

struct dns_query {
	struct dns_module *m;
	struct dns_query *prev, *next;
	struct dns_client client;
	uint8_t *msg; /* the client's query, owned, with its ID */
	size_t len;
	struct dns_msg q;
	/* attempts: tried[n_tried - 1] is the current one */
	struct dns_resolver *tried[ATTEMPTS_MAX];
	int n_tried;
	uint16_t up_id;
	bool up_tcp;
	struct up_sock *up_sock; /* UDP: the socket it is in flight on */
	struct dns_query *s_prev, *s_next; /* on up_sock */
	struct bufferevent *up_bev; /* TCP */
	struct event *timer;
};

struct dns_listeners {
	struct addr address;
	int port;
	bool tcp;
	int udp_fd;
	bool pktinfo; /* a wildcard address: answer from the address that was asked */
	struct event *udp_ev;
	struct evconnlistener *tcp_l;
};

struct dns_module {
	struct event_base *base;
	struct uplink_set *set;
	struct metrics *metrics;
	struct dnswatch *watch; /* the daemon's (module_env.dnswatch), or NULL */

	uint32_t timeout_ms;
	int attempts;
	int max_pending;
	struct dns_resolver **resolvers;
	size_t n_resolvers;
	const char *leaving; /* an uplink being removed, while its queries move on */

	struct dns_listeners l;
	struct dns_query *queries;
	unsigned n_pending;
	struct dns_conn *conns;
	unsigned n_conns;
	struct dns_cache *cache;
	struct acl *acl;

	struct log_ratelimit rl_client, rl_upstream, rl_bound;
	uint8_t buf[DNS_MSG_MAX + 1];

	struct metric_family *m_queries, *m_answers, *m_hits, *m_misses, *m_timeouts, *m_upstream,
		*m_servfail, *m_refused, *m_malformed, *m_mismatch, *m_truncated, *m_pending,
		*m_conns, *m_entries;
};

static void query_attempt(struct dns_query *qr);
static void conn_read(struct dns_conn *c);

/* ------------------------------------------------------------ metrics */

static void metrics_init(struct dns_module *m)
{
	struct metrics *r = m->metrics;
	int e = 0;

	if (!r)
		return;
	e |= metrics_counter_new(r, "egress_dns_queries_total", "DNS queries from clients",
		METRICS_LABELS("transport"), &m->m_queries);
	e |= metrics_counter_new(r, "egress_dns_answers_total", "DNS answers sent to clients",
		METRICS_LABELS("transport"), &m->m_answers);
	e |= metrics_counter_new(r, "egress_dns_cache_hits_total",
		"Queries answered from the cache", NULL, &m->m_hits);
	e |= metrics_counter_new(r, "egress_dns_cache_misses_total",
		"Queries the cache could not answer", NULL, &m->m_misses);
	e |= metrics_counter_new(r, "egress_dns_upstream_queries_total",
		"Queries sent to resolvers by uplink (empty: [dns] upstream) and transport",
		METRICS_LABELS("uplink", "transport"), &m->m_upstream);
	e |= metrics_counter_new(r, "egress_dns_upstream_timeouts_total",
		"Upstream attempts that timed out, by uplink (empty: [dns] upstream)",
		METRICS_LABELS("uplink"), &m->m_timeouts);
	e |= metrics_counter_new(r, "egress_dns_servfail_total", "SERVFAIL answers sent to clients",
		NULL, &m->m_servfail);
	e |= metrics_counter_new(r, "egress_dns_refused_total",
		"Queries refused: max_pending queries were waiting, or the client is not admitted "
		"by [dns] allow (acl: answered REFUSED, or dropped over UDP through an uplink)",
		METRICS_LABELS("reason"), &m->m_refused);
	e |= metrics_counter_new(r, "egress_dns_malformed_total",
		"Malformed messages dropped or answered FORMERR, by sender", METRICS_LABELS("from"),
		&m->m_malformed);
	e |= metrics_counter_new(r, "egress_dns_upstream_mismatch_total",
		"Upstream answers ignored: wrong ID, question or source", NULL, &m->m_mismatch);
	e |= metrics_counter_new(r, "egress_dns_truncated_total",
		"UDP answers too large for the client, sent as TC", NULL, &m->m_truncated);
	e |= metrics_gauge_new(r, "egress_dns_pending", "Queries waiting for an upstream answer",
		NULL, &m->m_pending);
	e |= metrics_gauge_new(
		r, "egress_dns_tcp_connections", "Client TCP connections open", NULL, &m->m_conns);
	e |= metrics_gauge_new(
		r, "egress_dns_cache_entries", "Answers in the cache", NULL, &m->m_entries);
	if (e)
		log_warnx("dns: some egress_dns_* metrics could not be registered");
	for (int t = 0; t < _DNS_TRANSPORT_MAX; t++) {
		if (m->m_queries)
			metrics_counter_add(m->m_queries, 0, dns_transport_name[t]);
		if (m->m_answers)
			metrics_counter_add(m->m_answers, 0, dns_transport_name[t]);
	}
	if (m->m_malformed) {
		metrics_counter_add(m->m_malformed, 0, "client");
		metrics_counter_add(m->m_malformed, 0, "upstream");
	}
	if (m->m_refused) {
		metrics_counter_add(m->m_refused, 0, "max_pending");
		metrics_counter_add(m->m_refused, 0, "acl");
	}
}

static void inc(struct metric_family *f)
{
	if (f)
		metrics_counter_add(f, 1);
}

static void inc1(struct metric_family *f, const char *v)
{
	if (f)
		metrics_counter_add(f, 1, v);
}

static void dns_scrape_cb(struct metrics *r, void *arg)
{
	struct dns_module *m = arg;

	(void)r;
	if (m->m_pending)
		metrics_gauge_set(m->m_pending, m->n_pending);
	if (m->m_conns)
		metrics_gauge_set(m->m_conns, m->n_conns);
	if (m->m_entries)
		metrics_gauge_set(m->m_entries, m->cache ? (double)dns_cache_count(m->cache) : 0);
}

/* ------------------------------------------------------------ resolvers */

static struct dns_resolver *resolver_new(const char *uplink, const struct addr *a, uint32_t mark)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));

	r->refs = 1;
	r->uplink = uplink ? xstrdup(uplink) : NULL;
	r->addr = *a;
	r->mark = mark;
	return r;
}

static struct dns_resolver *resolver_get(struct dns_resolver *r)
{
	r->refs++;
	return r;
}

static void up_sock_free(struct up_sock *s);

static void resolver_put(struct dns_resolver *r)
{
	if (!r || --r->refs)
		return;
	/* no query holds r: every socket of its pool is idle */
	for (int i = 0; i < UP_POOL; i++) {
		struct up_sock *s = r->pool[i];

		if (!s)
			continue;
		if (s->busy) { /* up_sock_cb() frees it when it is done */
			s->r = NULL;
			s->retired = true;
		} else {
			up_sock_free(s);
		}
	}
	free(r->uplink);
	free(r);
}

static const char *resolver_label(const struct dns_resolver *r)
{
	return r->uplink ? r->uplink : "";
}

static bool same_uplink(const struct dns_resolver *a, const struct dns_resolver *b)
{
	if (!a->uplink || !b->uplink)
		return !a->uplink && !b->uplink;
	return streq(a->uplink, b->uplink);
}

static bool same_resolver(const struct dns_resolver *a, const struct dns_resolver *b)
{
	return same_uplink(a, b) && addr_eq(&a->addr, &b->addr);
}

static void resolvers_add(struct dns_resolver ***v, size_t *n, struct dns_resolver *r)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = r;
}

/* Is a the forwarder itself (a resolv.conf pointing at us)? */
static bool is_self(const struct dns_listeners *l, const struct addr *a)
{
	if (l->port != DNS_PORT)
		return false;
	if (addr_eq(&l->address, a))
		return true;
	if (a->family == AF_INET && (ntohl(a->v4.s_addr) >> 24) == 127)
		return true;
	return a->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a->v6);
}

/* The nameservers of resolv.conf into *ret (caller's, freed with free()). */
static void resolv_conf_read(const struct dns_listeners *l, struct addr **ret, size_t *n)
{
	FILE *f = fopen(RESOLV_CONF, "re");
	char line[256], word[64];
	struct addr a;

	*ret = NULL;
	*n = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "nameserver %63s", word) != 1 || addr_parse(word, &a) < 0)
			continue;
		if (is_self(l, &a))
			continue;
		*ret = xrealloc(*ret, (*n + 1) * sizeof(**ret));
		(*ret)[(*n)++] = a;
	}
	fclose(f);
}

/*
 * The resolvers of conf: each uplink's `dns` through that uplink, then [dns] upstream.
 * With none at all (gateway mode implies [dns] without resolvers), [proxy] resolver or
 * else resolv.conf's nameservers, through every uplink.
 */
static void resolvers_build(const struct dns_listeners *l, const struct conf *conf,
	struct dns_resolver ***ret, size_t *ret_n)
{
	const struct conf_dns *d = conf_dns(conf);
	const struct conf_balance *b = conf_balance(conf);
	const struct conf_proxy *p = conf_proxy(conf);
	size_t nu = conf_n_uplinks(conf), n = 0, nf = 0;
	struct dns_resolver **v = NULL;
	struct addr *fallback = NULL;

	for (size_t i = 0; i < nu; i++) {
		const struct conf_uplink *cu = conf_uplink_at(conf, i);
		uint32_t mark = b ? conf_uplink_mark(b, cu, i) : 0;

		for (size_t j = 0; j < cu->dns.n; j++)
			resolvers_add(&v, &n, resolver_new(cu->s.name, &cu->dns.v[j].addr, mark));
	}
	for (size_t j = 0; j < d->upstream.n; j++)
		resolvers_add(&v, &n, resolver_new(NULL, &d->upstream.v[j].addr, 0));
	if (n)
		goto out;

	if (p && p->resolvers.n) {
		fallback = xcalloc(p->resolvers.n, sizeof(*fallback));
		for (size_t j = 0; j < p->resolvers.n; j++)
			fallback[nf++] = p->resolvers.v[j].addr;
	} else {
		resolv_conf_read(l, &fallback, &nf);
	}
	for (size_t j = 0; j < nf; j++) {
		bool through_uplink = false;

		for (size_t i = 0; i < nu; i++) {
			const struct conf_uplink *cu = conf_uplink_at(conf, i);
			uint32_t mark = b ? conf_uplink_mark(b, cu, i) : 0;

			/* [route]'s gateways have no address of ours to send from */
			if (conf_uplink_is_route_gateway(cu))
				continue;
			resolvers_add(&v, &n, resolver_new(cu->s.name, &fallback[j], mark));
			through_uplink = true;
		}
		if (!through_uplink)
			resolvers_add(&v, &n, resolver_new(NULL, &fallback[j], 0));
	}
	free(fallback);
	if (n)
		log_info("dns: no resolvers configured: using %s's through every uplink",
			p && p->resolvers.n ? "[proxy] resolver" : RESOLV_CONF);
	else
		log_warnx("dns: no resolvers: 'upstream', an uplink's 'dns' or " RESOLV_CONF);
out:
	*ret = v;
	*ret_n = n;
}

static void resolvers_free(struct dns_resolver **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		resolver_put(v[i]);
	free(v);
}

/*
 * The next resolver for qr, borrowed from m: one on a usable uplink (or [dns] upstream)
 * whose uplink this query has not tried, else one it has not tried, else any.  Among
 * those, an uplink is drawn by weight ([dns] upstream weighs 1), then one of its
 * resolvers evenly.  NULL when no resolver is usable.
 */
static struct dns_resolver *resolver_pick(struct dns_module *m, const struct dns_query *qr)
{
	struct dns_resolver **cand = xcalloc(m->n_resolvers + 1, sizeof(*cand));
	int *cls = xcalloc(m->n_resolvers + 1, sizeof(*cls));
	unsigned *weight = xcalloc(m->n_resolvers + 1, sizeof(*weight));
	size_t n = 0, n_best = 0;
	int best = 3;
	uint64_t total = 0;
	struct dns_resolver *ret = NULL;

	for (size_t i = 0; i < m->n_resolvers; i++) {
		struct dns_resolver *r = m->resolvers[i];
		struct uplink *u = NULL;
		int c = 0;

		if (r->uplink) {
			u = uplink_find(m->set, r->uplink);
			if (!u || !uplink_worth_trying(u) ||
				(m->leaving && streq(m->leaving, r->uplink)))
				continue;
		}
		for (int t = 0; t < qr->n_tried; t++) {
			if (same_resolver(qr->tried[t], r))
				c = 2;
			else if (same_uplink(qr->tried[t], r) && c < 1)
				c = 1;
		}
		cand[n] = r;
		cls[n] = c;
		weight[n] = u && u->weight > 0 ? (unsigned)u->weight : 1;
		if (c < best)
			best = c;
		n++;
	}
	/* keep the best class; an uplink's weight counts once, however many resolvers it has */
	for (size_t i = 0; i < n; i++) {
		bool first = true;

		if (cls[i] != best)
			continue;
		for (size_t j = 0; j < n_best; j++)
			if (same_uplink(cand[j], cand[i]))
				first = false;
		cand[n_best] = cand[i];
		weight[n_best] = first ? weight[i] : 0;
		total += weight[n_best];
		n_best++;
	}
	if (n_best) {
		uint32_t x = arc4random_uniform((uint32_t)MIN(total, (uint64_t)UINT32_MAX));
		size_t g = 0, k = 0, pick;

		for (g = 0; g < n_best; g++) {
			if (x < weight[g])
				break;
			x -= weight[g];
		}
		if (g == n_best)
			g = 0;
		for (size_t i = 0; i < n_best; i++)
			k += same_uplink(cand[i], cand[g]);
		pick = arc4random_uniform((uint32_t)k);
		for (size_t i = 0; i < n_best; i++) {
			if (!same_uplink(cand[i], cand[g]))
				continue;
			if (!pick--) {
				ret = cand[i];
				break;
			}
		}
	}
	free(cand);
	free(cls);
	free(weight);
	return ret;
}

/* ------------------------------------------------------------ answering clients */

static void udp_send(
	struct dns_module *m, const struct dns_client *c, const uint8_t *msg, size_t len)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} cbuf;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)msg, .iov_len = len};
	struct msghdr mh = {
		.msg_name = (void *)(uintptr_t)&c->peer,
		.msg_namelen = c->peer_len,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	if (m->l.udp_fd < 0)
		return;
	memset(&cbuf, 0, sizeof(cbuf));
	if (c->pi_level == IPPROTO_IP) {
		struct in_pktinfo pi = {.ipi_spec_dst = c->pi.v4.ipi_spec_dst};

		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		cbuf.h.cmsg_level = IPPROTO_IP;
		cbuf.h.cmsg_type = IP_PKTINFO;
		cbuf.h.cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(&cbuf.h), &pi, sizeof(pi));
	} else if (c->pi_level == IPPROTO_IPV6) {
		/* answer from the address asked; the interface matters for link-local only */
		struct in6_pktinfo pi = {.ipi6_addr = c->pi.v6.ipi6_addr};
		const struct sockaddr_in6 *peer = (const struct sockaddr_in6 *)&c->peer;

		if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr) || IN6_IS_ADDR_LINKLOCAL(&peer->sin6_addr))
			pi.ipi6_ifindex = c->pi.v6.ipi6_ifindex;
		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		cbuf.h.cmsg_level = IPPROTO_IPV6;
		cbuf.h.cmsg_type = IPV6_PKTINFO;
		cbuf.h.cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(&cbuf.h), &pi, sizeof(pi));
	}
	/* a full socket buffer drops the answer, as the network would: the client asks again */
	if (sendmsg(m->l.udp_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("dns: udp answer: %s", strerror(errno));
}

static void tcp_send(struct dns_conn *c, const uint8_t *msg, size_t len)
{
	uint8_t hdr[2];

	dns_put16(hdr, (uint16_t)len);
	bufferevent_write(c->bev, hdr, sizeof(hdr));
	bufferevent_write(c->bev, msg, len);
	c->active_ms = now_ms();
}

static int client_addr(const struct dns_client *c, struct addr *ret)
{
	if (c->transport == DNS_TCP) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		evutil_socket_t fd = bufferevent_getfd(c->conn->bev);

		if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0 ||
			addr_from_sockaddr((struct sockaddr *)&ss, ret, NULL) < 0)
			return -EINVAL;
	} else if (addr_from_sockaddr((const struct sockaddr *)&c->peer, ret, NULL) < 0) {
		return -EINVAL;
	}
	addr_unmap_v4(ret);
	return 0;
}

/*
 * Tell the DNS watch (dnswatch.h) what answer msg (len bytes, borrowed) gives: the names
 * of its CNAME chain and its addresses, before the client has it.  Only NOERROR answers
 * with addresses are told; an answer that does not read is not.
 */
static void watch_answer(struct dns_module *m, const struct dns_client *c, const uint8_t *msg,
	size_t len)
{
	static struct dns_chain ch; /* 4 KiB of names: not on the stack; the loop's thread only */
	struct dnswatch_addr addrs[DNS_CHAIN_ADDRS];
	const char *names[DNS_CHAIN_NAMES];
	struct addr client = {0};
	struct dns_msg a;

	if (dns_msg_parse(msg, len, &a) < 0 || DNS_RCODE(a.flags) != DNS_RCODE_NOERROR ||
		dns_msg_chain(msg, len, &a, &ch) < 0 || !ch.n_addrs)
		return;
	for (size_t i = 0; i < ch.n_names; i++)
		names[i] = ch.names[i];
	for (size_t i = 0; i < ch.n_addrs; i++) {
		addrs[i] = (struct dnswatch_addr){.addr.family = ch.addrs[i].family,
			.ttl = ch.addrs[i].ttl};
		memcpy(addrs[i].addr.b, ch.addrs[i].addr, addr_len(ch.addrs[i].family));
	}
	(void)client_addr(c, &client);
	dnswatch_answer(m->watch, &(struct dnswatch_answer){.names = names,
					  .n_names = ch.n_names, .addrs = addrs,
					  .n_addrs = ch.n_addrs, .client = &client});
}

/*
 * Send msg (len bytes, borrowed) to client c in answer to query (qlen bytes, borrowed;
 * parsed into q, NULL if it did not parse).  Over UDP, an answer larger than the client
 * takes goes as header + question with TC (RFC 1035 4.2.1, RFC 6891 7).
 */
static void client_send(struct dns_module *m, const struct dns_client *c, const uint8_t *query,
	size_t qlen, const struct dns_msg *q, const uint8_t *msg, size_t len)
{
	uint8_t tc[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
	unsigned rcode = DNS_RCODE(dns_get16(msg + 2));

	/* before it leaves: the watch's subscribers act on it before the client can */
	if (rcode == DNS_RCODE_NOERROR && dnswatch_wanted(m->watch))
		watch_answer(m, c, msg, len);
	if (c->transport == DNS_UDP) {
		size_t limit = q ? dns_msg_udp_limit(q) : DNS_PLAIN_UDP;

		if (len > limit &&
			dns_msg_reply(query, qlen, q, rcode, true, tc, sizeof(tc), &len) == 0) {
			msg = tc;
			inc(m->m_truncated);
		}
		udp_send(m, c, msg, len);
	} else if (c->conn) {
		tcp_send(c->conn, msg, len);
	}
	inc1(m->m_answers, dns_transport_name[c->transport]);
	if (rcode == DNS_RCODE_SERVFAIL)
		inc(m->m_servfail);
}

/* A reply without records made here (FORMERR, NOTIMP, REFUSED, SERVFAIL). */
static void client_reply(struct dns_module *m, const struct dns_client *c, const uint8_t *query,
	size_t qlen, const struct dns_msg *q, unsigned rcode)
{
	uint8_t buf[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
	size_t len;

	if (dns_msg_reply(query, qlen, q, rcode, false, buf, sizeof(buf), &len) == 0)
		client_send(m, c, query, qlen, q, buf, len);
}

static const char *client_str(const struct dns_client *c, char *buf, size_t len)
{
	struct addr a;

	if (client_addr(c, &a) < 0)
		return "?";
	return addr_str(&a, buf, len);
}

/* ------------------------------------------------------------ queries */

static void up_sock_free(struct up_sock *s)
{
	event_free(s->ev);
	close(s->fd);
	free(s);
}

/* Take s out of its resolver's pool: no new query goes on it. */
static void up_sock_retire(struct up_sock *s)
{
	struct dns_resolver *r = s->r;

	if (s->retired)
		return;
	s->retired = true;
	for (int i = 0; r && i < UP_POOL; i++)
		if (r->pool[i] == s)
			r->pool[i] = NULL;
	if (!s->inflight && !s->busy)
		up_sock_free(s);
}

/* Take qr off its UDP socket; a retired socket goes with its last query. */
static void up_sock_leave(struct dns_query *qr)
{
	struct up_sock *s = qr->up_sock;

	if (!s)
		return;
	if (qr->s_prev)
		qr->s_prev->s_next = qr->s_next;
	else
		s->queries = qr->s_next;
	if (qr->s_next)
		qr->s_next->s_prev = qr->s_prev;
	qr->s_prev = qr->s_next = NULL;
	qr->up_sock = NULL;
	s->inflight--;
	if (s->retired && !s->inflight && !s->busy)
		up_sock_free(s);
}

static void upstream_close(struct dns_query *qr)
{
	up_sock_leave(qr);
	if (qr->up_bev) {
		bufferevent_free(qr->up_bev);
		qr->up_bev = NULL;
	}
	qr->up_tcp = false;
}

static void query_free(struct dns_query *qr)
{
	struct dns_module *m = qr->m;

	upstream_close(qr);
	if (qr->timer)
		event_free(qr->timer);
	for (int i = 0; i < qr->n_tried; i++)
		resolver_put(qr->tried[i]);
	if (qr->prev)
		qr->prev->next = qr->next;
	else
		m->queries = qr->next;
	if (qr->next)
		qr->next->prev = qr->prev;
	m->n_pending--;
	if (qr->client.conn)
		qr->client.conn->inflight--;
	free(qr->msg);
	free(qr);
}

static void conn_free(struct dns_conn *c);

/* After an answer to c: close it if the client is done, read on if a bound was lifted. */
static void conn_kick(struct dns_conn *c)
{
	if (c->reading)
		return; /* conn_read() looks again when it is done */
	if (c->eof && !c->inflight && !evbuffer_get_length(bufferevent_get_output(c->bev))) {
		conn_free(c);
		return;
	}
	if (c->paused || c->eof)
		conn_read(c);
}

/* Answer qr's client with msg (len bytes, borrowed) and free qr. */
static void query_finish(struct dns_query *qr, const uint8_t *msg, size_t len)
{
	struct dns_module *m = qr->m;
	struct dns_conn *c = qr->client.conn;

	client_send(m, &qr->client, qr->msg, qr->len, &qr->q, msg, len);
	query_free(qr);
	if (c)
		conn_kick(c);
}

static void query_fail(struct dns_query *qr, unsigned rcode)
{
	uint8_t buf[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
	size_t len;

	if (dns_msg_reply(qr->msg, qr->len, &qr->q, rcode, false, buf, sizeof(buf), &len) < 0) {
		/* cannot happen: the query parsed */
		struct dns_conn *c = qr->client.conn;

		query_free(qr);
		if (c)
			conn_kick(c);
		return;
	}
	query_finish(qr, buf, len);
}

/* The current attempt failed (why, for the debug log): the next one, or SERVFAIL. */
static void query_next(struct dns_query *qr, const char *why)
{
	struct dns_resolver *r = qr->tried[qr->n_tried - 1];
	char a[ADDR_STRLEN], n[DNS_NAME_TEXT_MAX];

	log_debug("dns: %s via %s: %s (attempt %d of %d): %s",
		dns_name_text(qr->q.qname, qr->q.qname_len, n, sizeof(n)),
		r->uplink ? r->uplink : "upstream", addr_str(&r->addr, a, sizeof(a)), qr->n_tried,
		qr->m->attempts, why);
	upstream_close(qr);
	if (qr->n_tried < qr->m->attempts)
		query_attempt(qr);
	else
		query_fail(qr, DNS_RCODE_SERVFAIL);
}

static void query_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *qr = arg;

	(void)fd;
	(void)what;
	inc1(qr->m->m_timeouts, resolver_label(qr->tried[qr->n_tried - 1]));
	query_next(qr, "timeout");
}

static void timer_arm(struct dns_query *qr)
{
	struct timeval tv = {
		.tv_sec = qr->m->timeout_ms / 1000,
		.tv_usec = (qr->m->timeout_ms % 1000) * 1000,
	};
	/* every query has the same timeout: a queue instead of the heap (the same time) */
	const struct timeval *ct = event_base_init_common_timeout(qr->m->base, &tv);

	event_add(qr->timer, ct ? ct : &tv);
}

/*
 * A socket that leaves through r's uplink: bound to the uplink's source address if it has
 * one of r's family, else to its interface if it has one; SO_MARK r's mark.
 */
static int upstream_socket(
	struct dns_module *m, const struct dns_resolver *r, int type, int *ret_fd)
{
	struct uplink *u = r->uplink ? uplink_find(m->set, r->uplink) : NULL;
	int fd, ret = 0, one = 1;

	fd = socket(r->addr.family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (r->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &r->mark, sizeof(r->mark)) < 0) {
		ret = -errno;
		goto out;
	}
	if (u && addr_is_set(&u->source) && u->source.family == r->addr.family) {
		struct sockaddr_storage ss;
		socklen_t len;

		/* a TCP socket takes its port at connect(): no port is held in between */
		if (type == SOCK_STREAM)
			(void)setsockopt(
				fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		ret = addr_to_sockaddr(&u->source, 0, &ss, &len);
		if (ret < 0)
			goto out;
		if (u->source.family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&u->source.v6))
			((struct sockaddr_in6 *)&ss)->sin6_scope_id = (uint32_t)u->ifindex;
		if (bind(fd, (struct sockaddr *)&ss, len) < 0)
			ret = -errno;
	} else if (u && u->ifname[0]) {
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, u->ifname, strlen(u->ifname) + 1) <
			0)
			ret = -errno;
	}
out:
	if (ret < 0) {
		close(fd);
		return ret;
	}
	*ret_fd = fd;
	return 0;
}

static void query_answer(struct dns_query *qr, uint8_t *msg, size_t len, const struct dns_msg *a)
{
	struct dns_module *m = qr->m;

	dns_put16(msg, qr->q.id);
	if (m->cache)
		(void)dns_cache_put(m->cache, &qr->q, msg, len, a, now_ms());
	query_finish(qr, msg, len);
}

static int upstream_tcp(struct dns_query *qr);

/*
 * An upstream message for qr (len bytes in msg, writable).  Returns 0 if it is ignored
 * (qr waits on), 1 if qr moved on (answered, freed, or its next attempt started).
 */
static int upstream_take(struct dns_query *qr, uint8_t *msg, size_t len)
{
	struct dns_module *m = qr->m;
	struct dns_msg a;
	unsigned rcode;

	if (dns_msg_parse(msg, len, &a) < 0) {
		inc1(m->m_malformed, "upstream");
		if (log_ratelimit(&m->rl_upstream)) {
			char s[ADDR_STRLEN];
			log_warnx("dns: malformed answer from %s dropped",
				addr_str(&qr->tried[qr->n_tried - 1]->addr, s, sizeof(s)));
		}
		return 0;
	}
	/* RFC 5452 9.1: ID, question and (checked by the caller) source */
	if (!(a.flags & DNS_FLAG_QR) || a.id != qr->up_id ||
		DNS_OPCODE(a.flags) != DNS_OPCODE(qr->q.flags) ||
		!dns_msg_same_question(&qr->q, &a)) {
		inc(m->m_mismatch);
		return 0;
	}
	if ((a.flags & DNS_FLAG_TC) && !qr->up_tcp) {
		int r = upstream_tcp(qr);

		if (r < 0)
			query_next(qr, strerror(-r));
		return 1;
	}
	rcode = DNS_RCODE(a.flags);
	if ((rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED) &&
		qr->n_tried < m->attempts) {
		query_next(qr, dns_rcode_name(rcode));
		return 1;
	}
	query_answer(qr, msg, len, &a);
	return 1;
}

/* The query in flight on s with upstream ID id, or NULL. */
static struct dns_query *up_sock_find(const struct up_sock *s, uint16_t id)
{
	for (struct dns_query *qr = s->queries; qr; qr = qr->s_next)
		if (qr->up_id == id)
			return qr;
	return NULL;
}

static void up_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct up_sock *s = arg;
	struct dns_module *m = s->m;
	static uint8_t bufs[UP_RECV_BATCH][DNS_MSG_MAX + 1];
	struct sockaddr_storage from[UP_RECV_BATCH];
	struct iovec iov[UP_RECV_BATCH];
	struct mmsghdr mm[UP_RECV_BATCH];

	(void)what;
	s->busy = true;
	/* a retired socket is read on: its queries' answers are still to come */
	for (int round = 0; round < 4; round++) {
		int n;

		for (int i = 0; i < UP_RECV_BATCH; i++) {
			iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof(bufs[i])};
			mm[i] = (struct mmsghdr){.msg_hdr = {
				.msg_name = &from[i],
				.msg_namelen = sizeof(from[i]),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
			}};
		}
		n = recvmmsg(fd, mm, UP_RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/*
			 * ECONNREFUSED and friends: an ICMP error from the resolver, no need to
			 * wait; it says as much for every query on this socket
			 */
			int err = errno;

			up_sock_retire(s);
			while (s->queries)
				query_next(s->queries, strerror(err));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct dns_query *qr;
			struct addr a;
			uint16_t port;
			size_t len = mm[i].msg_len;

			/* connect() filters already; this keeps the rule visible */
			if (addr_from_sockaddr((struct sockaddr *)&from[i], &a, &port) < 0 ||
				!addr_eq(&a, &s->addr) || port != DNS_PORT || len < 2) {
				inc(m->m_mismatch);
				continue;
			}
			qr = up_sock_find(s, dns_get16(bufs[i]));
			if (!qr) {
				inc(m->m_mismatch);
				continue;
			}
			(void)upstream_take(qr, bufs[i], len);
		}
		if (n < UP_RECV_BATCH)
			break;
	}
	s->busy = false;
	if (s->retired && !s->inflight)
		up_sock_free(s);
}

static void upstream_tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct dns_query *qr = arg;
	struct dns_module *m = qr->m;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		uint8_t hdr[2];
		size_t n;

		if (evbuffer_copyout(in, hdr, 2) < 2)
			return;
		n = dns_get16(hdr);
		if (evbuffer_get_length(in) < 2 + n)
			return;
		evbuffer_drain(in, 2);
		evbuffer_remove(in, m->buf, n);
		if (upstream_take(qr, m->buf, n))
			return;
	}
}

static void upstream_tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dns_query *qr = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	query_next(qr, what & BEV_EVENT_EOF ? "tcp: connection closed" : "tcp: connection error");
}

static void upstream_count(struct dns_query *qr, enum dns_transport t)
{
	struct metric_family *f = qr->m->m_upstream;

	if (f)
		metrics_counter_add(
			f, 1, resolver_label(qr->tried[qr->n_tried - 1]), dns_transport_name[t]);
}

/* Ask the current resolver again over TCP (RFC 7766 5: after a TC answer over UDP). */
static int upstream_tcp(struct dns_query *qr)
{
	struct dns_module *m = qr->m;
	const struct dns_resolver *r = qr->tried[qr->n_tried - 1];
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t hdr[4];
	int fd = -1, ret;

	upstream_close(qr);
	ret = addr_to_sockaddr(&r->addr, DNS_PORT, &ss, &sl);
	if (ret < 0)
		return ret;
	ret = upstream_socket(m, r, SOCK_STREAM, &fd);
	if (ret < 0)
		return ret;
	qr->up_bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!qr->up_bev) {
		close(fd);
		return -ENOMEM;
	}
	qr->up_tcp = true;
	bufferevent_setcb(qr->up_bev, upstream_tcp_read_cb, NULL, upstream_tcp_event_cb, qr);
	if (bufferevent_socket_connect(qr->up_bev, (struct sockaddr *)&ss, (int)sl) < 0)
		return -ECONNREFUSED;
	qr->up_id = (uint16_t)arc4random();
	dns_put16(hdr, (uint16_t)qr->len);
	dns_put16(hdr + 2, qr->up_id);
	bufferevent_write(qr->up_bev, hdr, sizeof(hdr));
	bufferevent_write(qr->up_bev, qr->msg + 2, qr->len - 2);
	bufferevent_enable(qr->up_bev, EV_READ | EV_WRITE);
	upstream_count(qr, DNS_TCP);
	timer_arm(qr);
	return 0;
}

/* A new socket for r's pool, connect()ed: the kernel picks a random port. */
static int up_sock_new(struct dns_module *m, struct dns_resolver *r, struct up_sock **ret)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct up_sock *s;
	int fd = -1, ret_;

	ret_ = addr_to_sockaddr(&r->addr, DNS_PORT, &ss, &sl);
	if (ret_ < 0)
		return ret_;
	ret_ = upstream_socket(m, r, SOCK_DGRAM, &fd);
	if (ret_ < 0)
		return ret_;
	/* connected: the kernel picks a random port and drops datagrams from anyone else */
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		ret_ = -errno;
		close(fd);
		return ret_;
	}
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->r = r;
	s->addr = r->addr;
	s->fd = fd;
	s->ev = event_new(m->base, fd, EV_READ | EV_PERSIST, up_sock_cb, s);
	event_add(s->ev, NULL);
	*ret = s;
	return 0;
}

/* A socket of r's pool picked at random (a new one where the slot is empty). */
static int up_sock_pick(struct dns_module *m, struct dns_resolver *r, struct up_sock **ret)
{
	uint32_t i = arc4random_uniform(UP_POOL);

	if (!r->pool[i]) {
		int e = up_sock_new(m, r, &r->pool[i]);

		if (e < 0)
			return e;
	}
	*ret = r->pool[i];
	return 0;
}

/* Send qr to resolver r over UDP: a socket of r's pool, a new ID not in use on it. */
static int upstream_udp(struct dns_query *qr, struct dns_resolver *r)
{
	struct dns_module *m = qr->m;
	struct up_sock *s;
	uint8_t id[2];
	struct iovec iov[2];
	int ret;

	ret = up_sock_pick(m, r, &s);
	if (ret < 0)
		return ret;
	do
		qr->up_id = (uint16_t)arc4random();
	while (up_sock_find(s, qr->up_id));
	dns_put16(id, qr->up_id);
	iov[0] = (struct iovec){.iov_base = id, .iov_len = 2};
	iov[1] = (struct iovec){.iov_base = qr->msg + 2, .iov_len = qr->len - 2};
	if (writev(s->fd, iov, 2) < 0) {
		ret = -errno;
		/* a pending ICMP error of an earlier query, or worse: this port is done */
		up_sock_retire(s);
		return ret;
	}
	qr->up_sock = s;
	qr->s_prev = NULL;
	qr->s_next = s->queries;
	if (s->queries)
		s->queries->s_prev = qr;
	s->queries = qr;
	s->inflight++;
	if (++s->uses >= UP_SOCK_USES)
		up_sock_retire(s);
	upstream_count(qr, DNS_UDP);
	return 0;
}

/* Start the next attempt of qr; when none can start, SERVFAIL. */
static void query_attempt(struct dns_query *qr)
{
	struct dns_module *m = qr->m;

	while (qr->n_tried < m->attempts) {
		struct dns_resolver *r = resolver_pick(m, qr);
		char a[ADDR_STRLEN];
		int ret;

		if (!r) {
			if (log_ratelimit(&m->rl_bound))
				log_warnx(
					"dns: no usable resolver (no uplink with resolvers is up)");
			break;
		}
		qr->tried[qr->n_tried++] = resolver_get(r);
		ret = upstream_udp(qr, r);
		if (ret == 0) {
			timer_arm(qr);
			return;
		}
		if (log_ratelimit(&m->rl_upstream))
			log_warnx("dns: query to %s via %s: %s", addr_str(&r->addr, a, sizeof(a)),
				r->uplink ? r->uplink : "upstream", strerror(-ret));
	}
	query_fail(qr, DNS_RCODE_SERVFAIL);
}

/*
 * A message from a client (len bytes in msg, borrowed).  Responses are dropped (answering
 * them could loop two forwarders); what does not parse is FORMERR; an opcode other than
 * QUERY is NOTIMP; a QUERY with answer or authority records is FORMERR (not forwarded:
 * an upstream would read or cache them as it pleases).  Over max_pending the answer is REFUSED, not SERVFAIL: REFUSED says
 * "not now, ask another server" and sends a stub to its next server at once, while
 * SERVFAIL claims the name failed to resolve and may be cached as such (RFC 2308 7.1).
 */
static void dns_client_query(
	struct dns_module *m, const struct dns_client *c, const uint8_t *msg, size_t len)
{
	struct dns_query *qr;
	struct dns_msg q;
	uint8_t *hit;
	size_t hit_len;
	char a[ADDR_STRLEN];
	int r;

	inc1(m->m_queries, dns_transport_name[c->transport]);
	r = dns_msg_parse(msg, len, &q);
	if (len < DNS_HEADER_LEN || (q.flags & DNS_FLAG_QR)) {
		inc1(m->m_malformed, "client");
		if (log_ratelimit(&m->rl_client))
			log_warnx("dns: %s from %s dropped",
				len < DNS_HEADER_LEN ? "runt" : "response",
				client_str(c, a, sizeof(a)));
		return;
	}
	if (c->refused) {
		/* told at once, whatever it asked: REFUSED says "not here", FORMERR would not */
		inc1(m->m_refused, "acl");
		client_reply(m, c, msg, len, r < 0 ? NULL : &q, DNS_RCODE_REFUSED);
		return;
	}
	if (r < 0 || q.qdcount != 1) {
		inc1(m->m_malformed, "client");
		if (log_ratelimit(&m->rl_client))
			log_warnx("dns: malformed query from %s: FORMERR",
				client_str(c, a, sizeof(a)));
		client_reply(m, c, msg, len, NULL, DNS_RCODE_FORMERR);
		return;
	}
	if (DNS_OPCODE(q.flags) != 0) {
		client_reply(m, c, msg, len, &q, DNS_RCODE_NOTIMP);
		return;
	}
	if (!dns_msg_query_ok(&q)) {
		inc1(m->m_malformed, "client");
		if (log_ratelimit(&m->rl_client))
			log_warnx("dns: query from %s carries %u answer and %u authority records: "
				  "FORMERR",
				client_str(c, a, sizeof(a)), q.ancount, q.nscount);
		client_reply(m, c, msg, len, &q, DNS_RCODE_FORMERR);
		return;
	}
	if (m->cache) {
		if (dns_cache_get(m->cache, &q, now_ms(), &hit, &hit_len) == 0) {
			inc(m->m_hits);
			client_send(m, c, msg, len, &q, hit, hit_len);
			free(hit);
			return;
		}
		inc(m->m_misses);
	}
	if (m->n_pending >= (unsigned)m->max_pending) {
		inc1(m->m_refused, "max_pending");
		if (log_ratelimit(&m->rl_bound))
			log_warnx("dns: %u queries pending (max_pending): REFUSED to %s",
				m->n_pending, client_str(c, a, sizeof(a)));
		client_reply(m, c, msg, len, &q, DNS_RCODE_REFUSED);
		return;
	}

	qr = xcalloc(1, sizeof(*qr));
	qr->m = m;
	qr->client = *c;
	qr->msg = xmalloc(len);
	memcpy(qr->msg, msg, len);
	qr->len = len;
	qr->q = q;
	qr->timer = evtimer_new(m->base, query_timeout_cb, qr);
	qr->next = m->queries;
	if (m->queries)
		m->queries->prev = qr;
	m->queries = qr;
	m->n_pending++;
	if (c->conn)
		c->conn->inflight++;
	query_attempt(qr);
}

/* ------------------------------------------------------------ client sockets */

/* A client the ACL refused: counted by the caller, logged here (rate-limited). */
static void acl_log(struct dns_module *m, const struct addr *a, int ifindex,
	enum acl_verdict v, const char *what)
{
	char s[ADDR_STRLEN], why[128];

	if (log_ratelimit(&m->rl_client))
		log_warnx("dns: %s from %s refused: %s", what, addr_str(a, s, sizeof(s)),
			acl_reason(v, ifindex, why, sizeof(why)));
}

/*
 * The ACL over a UDP query: true to go on (c->refused set if it is to hear REFUSED).  One
 * that came in through an uplink interface, or through one we cannot name, is dropped
 * unanswered: a UDP source address is easily forged, and a REFUSED would go to whoever it
 * names - a forwarder on the internet side must not reflect, nor show itself to scanners.
 */
static bool udp_acl(struct dns_module *m, struct dns_client *c)
{
	struct addr a;
	enum acl_verdict v;

	if (addr_from_sockaddr((struct sockaddr *)&c->peer, &a, NULL) < 0)
		return false;
	addr_unmap_v4(&a);
	v = acl_check(m->acl, &a, c->ifindex);
	if (v == ACL_ALLOW)
		return true;
	acl_log(m, &a, c->ifindex, v, "UDP query");
	if (v == ACL_DENY_UNLISTED) {
		c->refused = true;
		return true;
	}
	inc1(m->m_refused, "acl");
	return false;
}

static void udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_module *m = arg;

	(void)what;
	for (int i = 0; i < UDP_BATCH; i++) {
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
				  CMSG_SPACE(sizeof(struct in_pktinfo))];
		} cbuf;
		struct dns_client c = {.transport = DNS_UDP};
		struct iovec iov = {.iov_base = m->buf, .iov_len = sizeof(m->buf)};
		struct msghdr mh = {
			.msg_name = &c.peer,
			.msg_namelen = sizeof(c.peer),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf.b,
			.msg_controllen = sizeof(cbuf),
		};
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("dns: udp: %s", strerror(errno));
			return;
		}
		c.peer_len = mh.msg_namelen;
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
			if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO) {
				c.pi_level = IPPROTO_IP;
				memcpy(&c.pi.v4, CMSG_DATA(h), sizeof(c.pi.v4));
				c.ifindex = c.pi.v4.ipi_ifindex;
			} else if (h->cmsg_level == IPPROTO_IPV6 && h->cmsg_type == IPV6_PKTINFO) {
				c.pi_level = IPPROTO_IPV6;
				memcpy(&c.pi.v6, CMSG_DATA(h), sizeof(c.pi.v6));
				c.ifindex = (int)c.pi.v6.ipi6_ifindex;
			}
		}
		if (!m->l.pktinfo)
			c.pi_level = 0; /* one address: answers leave from it anyway */
		if (udp_acl(m, &c))
			dns_client_query(m, &c, m->buf, (size_t)n);
	}
}

static void conn_free(struct dns_conn *c)
{
	struct dns_module *m = c->m;

	/* its queries die with it: nobody is left to answer */
	for (struct dns_query *qr = m->queries, *next; qr; qr = next) {
		next = qr->next;
		if (qr->client.conn == c)
			query_free(qr);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->n_conns--;
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Take every whole message of c's input while the bounds allow (RFC 7766 6.2.1.1: many
 * queries per connection, answered as they come).  Not reentrant: an answer sent on the
 * way (a cache hit, an error) kicks c, and that must not read deeper on this stack.
 */
static void conn_read(struct dns_conn *c)
{
	struct dns_module *m = c->m;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->reading)
		return;
	c->reading = true;
	for (;;) {
		struct dns_client cl = {.transport = DNS_TCP, .conn = c};
		uint8_t hdr[2];
		size_t n;

		if (c->inflight >= TCP_MAX_INFLIGHT || evbuffer_get_length(out) > TCP_OUT_MAX) {
			c->paused = true;
			bufferevent_disable(c->bev, EV_READ);
			c->reading = false;
			return;
		}
		if (evbuffer_copyout(in, hdr, 2) < 2)
			break;
		n = dns_get16(hdr);
		if (evbuffer_get_length(in) < 2 + n)
			break;
		evbuffer_drain(in, 2);
		evbuffer_remove(in, m->buf, n);
		c->active_ms = now_ms();
		c->partial_ms = 0;
		cl.refused = c->refused;
		dns_client_query(m, &cl, m->buf, n);
		if (c->refused) {
			/* told: close once the answer is out */
			c->eof = true;
			bufferevent_disable(c->bev, EV_READ);
			evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
	}
	c->reading = false;
	/* a message that trickles in byte by byte holds a slot: it gets TCP_FRAME_MS */
	if (evbuffer_get_length(in)) {
		uint64_t now = now_ms();
		if (!c->partial_ms) {
			c->partial_ms = now;
		} else if (now - c->partial_ms > TCP_FRAME_MS) {
			if (log_ratelimit(&m->rl_bound)) {
				char s[ADDR_STRLEN];
				log_warnx("dns: TCP client %s: no whole message in %d ms: closed",
					addr_str(&c->peer, s, sizeof(s)), TCP_FRAME_MS);
			}
			conn_free(c);
			return;
		}
	}
	if (c->paused) {
		c->paused = false;
		if (!c->eof)
			bufferevent_enable(c->bev, EV_READ);
	}
	if (c->eof && !c->inflight && !evbuffer_get_length(out))
		conn_free(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_read(arg);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct dns_conn *c = arg;

	(void)bev;
	conn_kick(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dns_conn *c = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->inflight) {
		/* quiet while we work for it: not idle */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* half-closed: answer what was asked, then close */
		c->eof = true;
		conn_kick(c);
		return;
	}
	conn_free(c);
}

static size_t conns_of(const struct dns_module *m, const struct addr *a)
{
	size_t n = 0;

	for (const struct dns_conn *c = m->conns; c; c = c->next)
		n += addr_eq(&c->peer, a);
	return n;
}

/* Close the connection idle longest (nothing asked, nothing to write); false if none is. */
static bool conn_evict(struct dns_module *m)
{
	struct dns_conn *victim = NULL;

	for (struct dns_conn *c = m->conns; c; c = c->next) {
		if (c->inflight || evbuffer_get_length(bufferevent_get_output(c->bev)))
			continue;
		if (!victim || c->active_ms < victim->active_ms)
			victim = c;
	}
	if (!victim)
		return false;
	conn_free(victim);
	return true;
}

static void tcp_accept_cb(
	struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct dns_module *m = arg;
	struct timeval idle = {.tv_sec = TCP_IDLE_MS / 1000};
	struct dns_conn *c;
	struct addr a;
	char s[ADDR_STRLEN];
	enum acl_verdict v;
	int ifindex = acl_sock_ifindex(fd, m->l.address.family);

	(void)l;
	(void)salen;
	if (addr_from_sockaddr(sa, &a, NULL) < 0) {
		close(fd);
		return;
	}
	addr_unmap_v4(&a);
	/* TCP cannot be forged: a refused client hears REFUSED, also through an uplink */
	v = acl_check(m->acl, &a, ifindex);
	if (v != ACL_ALLOW)
		acl_log(m, &a, ifindex, v, "TCP connection");
	/* one address gets TCP_PER_CLIENT; when all are taken, the connection that has been
	 * quiet longest with nothing in flight makes room (RFC 7766 6.2.3), never for a
	 * refused one */
	if (conns_of(m, &a) >= TCP_PER_CLIENT ||
		(m->n_conns >= TCP_MAX_CONN && (v != ACL_ALLOW || !conn_evict(m)))) {
		if (log_ratelimit(&m->rl_bound))
			log_warnx("dns: TCP connection from %s refused: %s",
				addr_str(&a, s, sizeof(s)),
				m->n_conns >= TCP_MAX_CONN ? "every connection is busy"
							   : "too many from that address");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->m = m;
	c->peer = a;
	c->refused = v != ACL_ALLOW;
	c->active_ms = now_ms();
	c->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	c->next = m->conns;
	if (m->conns)
		m->conns->prev = c;
	m->conns = c;
	m->n_conns++;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void tcp_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and the like: the listener retries on the next connection */
	log_warn("dns: accept");
}

/* A listening socket of type at a:port; "::" takes IPv4 too. */
static int listen_socket(const struct addr *a, int port, int type, int *ret_fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, zero = 0, ret = 0;

	ret = addr_to_sockaddr(a, (uint16_t)port, &ss, &len);
	if (ret < 0)
		return ret;
	fd = socket(a->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->family == AF_INET6 && addr_is_any(a) &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0) {
		ret = -errno;
		goto out;
	}
	/* the interface each query comes in through (the ACL), and on a wildcard address the
	 * address it was sent to (answers leave from it); IPV6_RECVPKTINFO also reports IPv4 on
	 * a dual-stack socket, as mapped addresses */
	ret = acl_sock_prepare(fd, a->family);
	if (ret < 0)
		goto out;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
		(type == SOCK_STREAM && listen(fd, 128) < 0))
		ret = -errno;
out:
	if (ret < 0) {
		close(fd);
		return ret;
	}
	*ret_fd = fd;
	return 0;
}

static void listeners_close(struct dns_listeners *l)
{
	if (l->udp_ev)
		event_free(l->udp_ev);
	if (l->udp_fd >= 0)
		close(l->udp_fd);
	if (l->tcp_l)
		evconnlistener_free(l->tcp_l);
	l->udp_ev = NULL;
	l->udp_fd = -1;
	l->tcp_l = NULL;
}

static int listeners_open(struct dns_module *m, const struct conf_dns *d, struct dns_listeners *l)
{
	char a[ADDR_STRLEN];
	int fd = -1, ret;

	memset(l, 0, sizeof(*l));
	l->udp_fd = -1;
	l->address = d->address;
	l->port = d->port;
	l->tcp = d->tcp;
	l->pktinfo = addr_is_any(&d->address);
	ret = listen_socket(&d->address, d->port, SOCK_DGRAM, &l->udp_fd);
	if (ret < 0)
		goto out;
	l->udp_ev = event_new(m->base, l->udp_fd, EV_READ | EV_PERSIST, udp_read_cb, m);
	event_add(l->udp_ev, NULL);
	if (d->tcp) {
		ret = listen_socket(&d->address, d->port, SOCK_STREAM, &fd);
		if (ret < 0)
			goto out;
		l->tcp_l = evconnlistener_new(
			m->base, tcp_accept_cb, m, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (!l->tcp_l) {
			close(fd);
			ret = -ENOMEM;
			goto out;
		}
		evconnlistener_set_error_cb(l->tcp_l, tcp_error_cb);
	}
out:
	if (ret < 0) {
		log_warnx("dns: listen on %s port %d: %s", addr_str(&d->address, a, sizeof(a)),
			d->port, strerror(-ret));
		listeners_close(l);
	}
	return ret;
}

/* ------------------------------------------------------------ uplinks */

/*
 * An uplink that stops being usable takes its queries' current attempts with it: they
 * move on at once instead of waiting for their timeout.
 */
static void dns_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct dns_module *m = arg;

	/* whatever changed (address, interface, state), new sockets are made as it is now */
	for (size_t i = 0; i < m->n_resolvers; i++) {
		struct dns_resolver *r = m->resolvers[i];

		if (r->uplink && streq(r->uplink, u->name))
			for (int j = 0; j < UP_POOL; j++)
				if (r->pool[j])
					up_sock_retire(r->pool[j]);
	}
	if (!(ev == UPLINK_REMOVED || (ev == UPLINK_STATE && !uplink_worth_trying(u))))
		return;
	/* a removed uplink is still in the set, and up, while we are told: not a candidate */
	m->leaving = u->name;
	for (struct dns_query *qr = m->queries, *next; qr; qr = next) {
		const struct dns_resolver *r = qr->tried[qr->n_tried - 1];

		next = qr->next;
		if (r->uplink && streq(r->uplink, u->name))
			query_next(qr, "uplink not usable");
	}
	m->leaving = NULL;
}

/* ------------------------------------------------------------ module */

static int dns_apply(struct dns_module *m, const struct conf *conf, bool first)
{
	const struct conf_dns *d = conf_dns(conf);
	struct dns_listeners l;
	char a[ADDR_STRLEN];
	int ret;

	if (!d)
		return -EINVAL;
	if (first || !addr_eq(&d->address, &m->l.address) || d->port != m->l.port ||
		d->tcp != m->l.tcp) {
		ret = listeners_open(m, d, &l);
		if (ret < 0)
			return ret;
		listeners_close(&m->l);
		m->l = l;
		log_info("dns: listening on %s port %d (udp%s)",
			addr_str(&d->address, a, sizeof(a)), d->port, d->tcp ? ", tcp" : "");
	}
	acl_set_allow(m->acl, &d->allow); /* validated: cannot fail */
	m->timeout_ms = d->timeout_ms;
	m->attempts = MIN(MAX(d->attempts, 1), ATTEMPTS_MAX);
	m->max_pending = MAX(d->max_pending, 1);
	resolvers_free(m->resolvers, m->n_resolvers);
	resolvers_build(&m->l, conf, &m->resolvers, &m->n_resolvers);
	if (d->cache_size <= 0) {
		dns_cache_free(m->cache);
		m->cache = NULL;
	} else if (m->cache) {
		dns_cache_set_max(m->cache, (size_t)d->cache_size);
	} else {
		m->cache = dns_cache_new((size_t)d->cache_size);
	}
	log_debug("dns: %zu resolvers, timeout %ums, %d attempts, cache %d, max_pending %d",
		m->n_resolvers, m->timeout_ms, m->attempts, d->cache_size, m->max_pending);
	return 0;
}

int dns_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct metrics *metrics, struct dns_module **ret)
{
	struct dns_module *m = xcalloc(1, sizeof(*m));
	int r;

	m->base = base;
	m->set = set;
	m->metrics = metrics;
	m->l.udp_fd = -1;
	m->rl_client = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	m->rl_upstream = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	m->rl_bound = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	uplink_set_subscribe(set, dns_uplink_cb, m);
	metrics_init(m);
	if (metrics)
		metrics_on_scrape(metrics, dns_scrape_cb, m);
	r = acl_new(set, &m->acl);
	if (r >= 0)
		r = acl_follow(m->acl, base);
	if (r < 0) {
		log_warnx("dns: client ACL: %s", strerror(-r));
		dns_module_free(m);
		return r;
	}
	r = dns_apply(m, conf, true);
	if (r < 0) {
		dns_module_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

int dns_module_reconf(struct dns_module *m, const struct conf *conf)
{
	return dns_apply(m, conf, false);
}

void dns_module_free(struct dns_module *m)
{
	if (!m)
		return;
	uplink_set_unsubscribe(m->set, dns_uplink_cb, m);
	if (m->metrics)
		metrics_on_scrape_remove(m->metrics, dns_scrape_cb, m);
	while (m->conns)
		conn_free(m->conns);
	while (m->queries)
		query_free(m->queries);
	listeners_close(&m->l);
	resolvers_free(m->resolvers, m->n_resolvers);
	dns_cache_free(m->cache);
	acl_free(m->acl);
	free(m);
}

/* Its state for GET /api/modules; the counters are on /metrics (egress_dns_*). */
static json_t *dns_status_json(const struct dns_module *m)
{
	json_t *res = json_array();
	char a[ADDR_STRLEN];

	for (size_t i = 0; i < m->n_resolvers; i++) {
		const struct dns_resolver *rv = m->resolvers[i];

		json_array_append_new(res, json_pack("{s:o, s:s}", "uplink",
						   rv->uplink ? json_string(rv->uplink) : json_null(),
						   "address", addr_str(&rv->addr, a, sizeof(a))));
	}
	return json_pack("{s:{s:s, s:i, s:b}, s:o, s:I, s:i, s:I, s:I}", "listen", "address",
		addr_str(&m->l.address, a, sizeof(a)), "port", m->l.port, "tcp", m->l.tcp,
		"resolvers", res, "pending", (json_int_t)m->n_pending, "max_pending",
		m->max_pending, "tcp_connections", (json_int_t)m->n_conns, "cache_entries",
		(json_int_t)dns_cache_count(m->cache));
}

/* The module as the daemon sees it (module.h): runs while conf has [dns]. */
static bool dns_wanted_cb(const struct conf *conf)
{
	return conf_dns(conf) != NULL;
}

static int dns_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct dns_module *m = NULL;
	int r = dns_module_new(env->base, conf, env->uplinks, env->metrics, &m);

	if (m)
		m->watch = env->dnswatch;
	*ret = m;
	return r;
}

static int dns_reconf_cb(void *m, const struct conf *conf)
{
	return dns_module_reconf(m, conf);
}

static void dns_free_cb(void *m)
{
	dns_module_free(m);
}

static json_t *dns_status_cb(void *m)
{
	return dns_status_json(m);
}

static const struct conf_section_type *const dns_conf_types[] = {
	&conf_dns_type,
};

const struct module module_dns = {
	.name = "dns",
	.conf_types = dns_conf_types,
	.n_conf_types = ARRAY_SIZE(dns_conf_types),
	.wanted = dns_wanted_cb,
	.new = dns_new_cb,
	.reconf = dns_reconf_cb,
	.free = dns_free_cb,
	.status = dns_status_cb,
};
