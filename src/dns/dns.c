/*
 * dns.c - the DNS forwarder: client sockets (UDP, TCP), workers, upstream queries through
 * the uplinks, retries, the shared cache and the counters.
 *
 * Workers ([dns] workers, default one per CPU): each has a UDP socket of one SO_REUSEPORT
 * group (the kernel spreads clients over them by address and port), its own event loop,
 * upstream socket pools, queries and client ACL.  Worker 0 runs on the daemon's loop and
 * also serves TCP; the others on a thread each.  Client datagrams are read with
 * recvmmsg(), and the answers a wakeup produces leave together with sendmmsg().  What the
 * workers share: the cache (dns_cache.c, in CACHE_SHARDS shards with a lock each, so an
 * answer is kept once and cache_size bounds the whole), the max_pending bound (an atomic
 * count) and nothing else.  The uplink set belongs to the main thread: a thread worker
 * reads a copy (struct dns_view) the main thread sends it on every uplink event, reload
 * and unannounced change (uplinks_sig(), each second).  Counters are per worker (relaxed
 * atomics) and moved into the registry at each scrape, so they are exact.  The DNS watch
 * is the main thread's too: a thread worker leaves an answer the watch must see first to
 * the main thread (handoff()), which tells the watch and then sends it.
 *
 * A client's query is parsed (dns_msg.c), answered from the cache or sent to one
 * resolver: the resolvers of the usable uplinks (each uplink's share by its weight) and
 * [dns] upstream.  Each attempt goes out on a socket picked at random from the resolver's
 * pool in that worker (UP_POOL sockets, each connect()ed to the resolver, so the kernel gave
 * it a random port), with a fresh random ID not in use on that socket; the answer must
 * come from that resolver to that socket with that ID and question (RFC 5452 9.1).  A
 * socket is replaced by a new one (a new random port) after UP_SOCK_USES queries, as
 * unbound's outgoing-range rotates its ports, so that ports keep changing without the
 * cost of a socket per query; a retired socket closes when its last query is done.  On
 * timeout, ICMP error, SERVFAIL or REFUSED the next attempt goes to another uplink (or
 * resolver) until `attempts`, then the client gets SERVFAIL.  An upstream answer with TC
 * set is asked again over TCP of the same resolver.  Answers are relayed whole, never cut
 * (RFC 6891 7: the OPT record goes as it came); one larger than the client takes over UDP
 * becomes header + question with TC (RFC 1035 4.2.1), and the client comes back over TCP.
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
 * SO_BINDTODEVICE, SO_MARK) choose the uplink.  Must not let a thread worker touch what
 * the main thread owns (the uplink set, the metrics registry, the watch).  Outside input is
 * never trusted; what is refused is counted and logged rate-limited.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
#define RECV_BATCH	 32	      /* client datagrams per recvmmsg() */
#define RECV_SLOT	 4096	      /* bytes per client datagram: a query is far smaller */
#define OUT_SLOT	 4096	      /* answers up to this size wait for the batch (sendmmsg) */
#define CACHE_SHARDS	 16	      /* locks of the shared cache */
#define CACHE_SHARD_MIN	 64	      /* entries per shard: a smaller cache is one shard */
#define WORKERS_MAX	 64

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
	struct dns_worker *w;
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
	struct dns_worker *w;
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
	struct dns_worker *w;
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
	bool released; /* no longer counted in the module's pending */
};

/*
 * A copy of the uplinks for one worker, made by the main thread (view_new()) and read
 * by the worker alone: the uplink set itself belongs to the main thread.
 */
struct dns_view {
	struct dns_view *next; /* in a worker's inbox */
	struct uplink **uplinks; /* copies, owned */
	size_t n_uplinks;
	/* the configuration, when it changed (has_conf) */
	bool has_conf;
	uint32_t timeout_ms;
	int attempts;
	struct word_list allow;	      /* owned copy */
	struct dns_resolver **specs; /* without sockets: each worker makes its own resolvers */
	size_t n_specs;
	/* an uplink that changed: its sockets are retired; move: its queries move on */
	char *event_uplink;
	bool event_move;
	bool event_removed; /* still in the daemon's set, and up, while worker 0 is told */
};

/* Counters a worker adds to and the scrape empties into the registry (relaxed atomics). */
enum dns_stat {
	ST_QUERIES_UDP,
	ST_QUERIES_TCP,
	ST_ANSWERS_UDP,
	ST_ANSWERS_TCP,
	ST_HITS,
	ST_MISSES,
	ST_SERVFAIL,
	ST_REFUSED_PENDING,
	ST_REFUSED_ACL,
	ST_MALFORMED_CLIENT,
	ST_MALFORMED_UPSTREAM,
	ST_MISMATCH,
	ST_TRUNCATED,
	_ST_MAX,
};

/* Upstream counters by uplink label ("": [dns] upstream), under the worker's lock. */
struct dns_up_stat {
	char *label;
	uint64_t udp, tcp, timeouts;
};

/* An answer waiting in a worker's batch for sendmmsg(). */
struct out_slot {
	struct sockaddr_storage peer;
	socklen_t peer_len;
	union { /* struct cmsghdr ends in a flexible array: only its alignment is borrowed */
		size_t align;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} cbuf;
	size_t cmsg_len;
	size_t len;
	uint8_t b[OUT_SLOT];
};

/*
 * One worker: a UDP socket of the SO_REUSEPORT group with its own loop, upstream pools,
 * queries and ACL.  Worker 0 runs on the daemon's loop and also takes the TCP clients;
 * the others each on a thread of their own.  Everything here is its thread's alone but
 * `lock` (inbox and up_stats) and the atomics (st).
 */
struct dns_worker {
	struct dns_module *mod;
	int index;
	struct event_base *base;
	bool threaded;
	bool running; /* its thread was started */
	pthread_t thread;
	bool stop; /* atomic: the thread leaves its loop */
	int notify_fd; /* eventfd: the main thread wrote to the inbox or set stop */
	struct event *notify_ev;

	struct uplink_set *set;	   /* worker 0: the daemon's; the others: uplinks */
	struct uplink_set uplinks; /* a thread worker's copy (dns_view) */
	struct acl *acl;
	uint32_t timeout_ms;
	int attempts;
	struct dns_resolver **resolvers;
	size_t n_resolvers;
	const char *leaving; /* an uplink being removed, while its queries move on */

	int udp_fd;
	struct event *udp_ev;
	bool pktinfo; /* a wildcard address: answer from the address that was asked */
	struct dns_query *queries;
	struct dns_conn *conns; /* worker 0 */
	unsigned n_conns;

	bool batching; /* answers wait in out[] until the callback is done */
	struct out_slot *out;
	unsigned n_out;

	pthread_mutex_t lock;
	struct dns_view *inbox, *inbox_tail;
	struct dns_up_stat *up_stats;
	size_t n_up_stats;
	uint64_t st[_ST_MAX];

	struct log_ratelimit rl_client, rl_upstream, rl_bound;
	uint8_t buf[DNS_MSG_MAX + 1];
	uint8_t rbuf[RECV_BATCH][RECV_SLOT];		 /* client queries */
	uint8_t ubuf[UP_RECV_BATCH][DNS_MSG_MAX + 1]; /* upstream answers */
};

/* One part of the shared cache: a question's hash picks its shard. */
struct dns_shard {
	pthread_mutex_t lock;
	struct dns_cache *c; /* NULL: no cache */
};

/* An answer a thread worker leaves to the main thread: the DNS watch first, then sent. */
struct dns_handoff {
	struct dns_handoff *next;
	struct dns_worker *w;
	struct dns_client c;
	uint8_t *full; /* the whole answer, for the watch */
	size_t full_len;
	uint8_t *msg; /* what goes to the client (header + question with TC if too large) */
	size_t len;
};

struct dns_module {
	struct event_base *base;
	struct uplink_set *set;
	struct metrics *metrics;
	struct dnswatch *watch; /* the daemon's (module_env.dnswatch), or NULL */

	/* listeners: a UDP socket per worker, TCP on worker 0 */
	struct addr address;
	int port;
	bool tcp;
	struct evconnlistener *tcp_l;
	int n_workers;
	struct dns_worker **w;

	/* what the workers share */
	unsigned max_pending;
	unsigned pending; /* atomic: queries upstream, every worker */
	struct dns_shard shards[CACHE_SHARDS];
	int cache_size;
	unsigned n_shards; /* atomic: in use (0: no cache) */
	uint64_t shard_k0;
	struct conf_dns_copy {
		uint32_t timeout_ms;
		int attempts;
		struct word_list allow;
		struct dns_resolver **specs;
		size_t n_specs;
	} conf;

	pthread_mutex_t ho_lock;
	struct dns_handoff *ho, *ho_tail;
	int ho_fd; /* eventfd: a handoff is waiting */
	struct event *ho_ev;
	struct event *sig_ev; /* each second: uplinks_sig() */
	uint64_t sig;

	struct metric_family *m_queries, *m_answers, *m_hits, *m_misses, *m_timeouts, *m_upstream,
		*m_servfail, *m_refused, *m_malformed, *m_mismatch, *m_truncated, *m_pending,
		*m_conns, *m_entries, *m_worker_queries;
};

static void query_attempt(struct dns_query *qr);
static void worker_take_views(struct dns_worker *w);
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
	e |= metrics_counter_new(r, "egress_dns_worker_queries_total",
		"DNS queries from clients by the worker that took them (0 also takes TCP)",
		METRICS_LABELS("worker"), &m->m_worker_queries);
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

static void inc(struct dns_worker *w, enum dns_stat k)
{
	__atomic_fetch_add(&w->st[k], 1, __ATOMIC_RELAXED);
}

/* The upstream counters of label, made on first use (under w->lock). */
static struct dns_up_stat *up_stat(struct dns_worker *w, const char *label)
{
	for (size_t i = 0; i < w->n_up_stats; i++)
		if (streq(w->up_stats[i].label, label))
			return &w->up_stats[i];
	w->up_stats = xrealloc(w->up_stats, (w->n_up_stats + 1) * sizeof(*w->up_stats));
	w->up_stats[w->n_up_stats] = (struct dns_up_stat){.label = xstrdup(label)};
	return &w->up_stats[w->n_up_stats++];
}

/*
 * Move what w counted since the last time into the registry (the main thread's): exact,
 * since each count leaves the worker by an atomic exchange.
 */
static void stats_flush(struct dns_module *m, struct dns_worker *w)
{
	static const struct {
		size_t fam; /* offsetof the family in dns_module */
		const char *label;
	} map[_ST_MAX] = {
		[ST_QUERIES_UDP] = {offsetof(struct dns_module, m_queries), "udp"},
		[ST_QUERIES_TCP] = {offsetof(struct dns_module, m_queries), "tcp"},
		[ST_ANSWERS_UDP] = {offsetof(struct dns_module, m_answers), "udp"},
		[ST_ANSWERS_TCP] = {offsetof(struct dns_module, m_answers), "tcp"},
		[ST_HITS] = {offsetof(struct dns_module, m_hits), NULL},
		[ST_MISSES] = {offsetof(struct dns_module, m_misses), NULL},
		[ST_SERVFAIL] = {offsetof(struct dns_module, m_servfail), NULL},
		[ST_REFUSED_PENDING] = {offsetof(struct dns_module, m_refused), "max_pending"},
		[ST_REFUSED_ACL] = {offsetof(struct dns_module, m_refused), "acl"},
		[ST_MALFORMED_CLIENT] = {offsetof(struct dns_module, m_malformed), "client"},
		[ST_MALFORMED_UPSTREAM] = {offsetof(struct dns_module, m_malformed), "upstream"},
		[ST_MISMATCH] = {offsetof(struct dns_module, m_mismatch), NULL},
		[ST_TRUNCATED] = {offsetof(struct dns_module, m_truncated), NULL},
	};
	char idx[16];
	uint64_t queries = 0;

	for (int k = 0; k < _ST_MAX; k++) {
		uint64_t d = __atomic_exchange_n(&w->st[k], 0, __ATOMIC_RELAXED);
		struct metric_family *f = *(struct metric_family **)((char *)m + map[k].fam);

		if (k == ST_QUERIES_UDP || k == ST_QUERIES_TCP)
			queries += d;
		if (!d || !f)
			continue;
		if (map[k].label)
			metrics_counter_add(f, (double)d, map[k].label);
		else
			metrics_counter_add(f, (double)d);
	}
	snprintf(idx, sizeof(idx), "%d", w->index);
	if (m->m_worker_queries)
		metrics_counter_add(m->m_worker_queries, (double)queries, idx);
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n_up_stats; i++) {
		struct dns_up_stat *s = &w->up_stats[i];

		if (m->m_upstream && s->udp)
			metrics_counter_add(m->m_upstream, (double)s->udp, s->label, "udp");
		if (m->m_upstream && s->tcp)
			metrics_counter_add(m->m_upstream, (double)s->tcp, s->label, "tcp");
		if (m->m_timeouts && s->timeouts)
			metrics_counter_add(m->m_timeouts, (double)s->timeouts, s->label);
		s->udp = s->tcp = s->timeouts = 0;
	}
	pthread_mutex_unlock(&w->lock);
}

static size_t cache_count(struct dns_module *m)
{
	size_t n = 0;

	for (int i = 0; i < CACHE_SHARDS; i++) {
		pthread_mutex_lock(&m->shards[i].lock);
		n += m->shards[i].c ? dns_cache_count(m->shards[i].c) : 0;
		pthread_mutex_unlock(&m->shards[i].lock);
	}
	return n;
}

static void dns_scrape_cb(struct metrics *r, void *arg)
{
	struct dns_module *m = arg;

	(void)r;
	for (int i = 0; i < m->n_workers; i++)
		stats_flush(m, m->w[i]);
	if (m->m_pending)
		metrics_gauge_set(m->m_pending, __atomic_load_n(&m->pending, __ATOMIC_RELAXED));
	if (m->m_conns)
		metrics_gauge_set(m->m_conns, m->n_workers ? m->w[0]->n_conns : 0);
	if (m->m_entries)
		metrics_gauge_set(m->m_entries, (double)cache_count(m));
}

/* ------------------------------------------------------------ random numbers */

/*
 * The kernel's random numbers (IDs, sockets, resolvers), fetched RND_WORDS at a time per
 * thread: glibc's arc4random() makes a getrandom() system call on every call, which was
 * 7.5% of the forwarder's CPU without cache (four or more calls per query).  Each word is
 * used once and wiped.
 */
#define RND_WORDS 64

static _Thread_local struct {
	uint32_t v[RND_WORDS];
	unsigned n;
} rnd;

static uint32_t rnd32(void)
{
	uint32_t x;

	if (!rnd.n) {
		arc4random_buf(rnd.v, sizeof(rnd.v));
		rnd.n = RND_WORDS;
	}
	x = rnd.v[--rnd.n];
	rnd.v[rnd.n] = 0;
	return x;
}

/* Uniform in [0, upper) without modulo bias (as arc4random_uniform()); 0 if upper < 2. */
static uint32_t rnd_uniform(uint32_t upper)
{
	uint32_t min, x;

	if (upper < 2)
		return 0;
	min = -upper % upper; /* 2^32 mod upper: below it, the values that would bias */
	do
		x = rnd32();
	while (x < min);
	return x % upper;
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
static bool is_self(const struct conf_dns *l, const struct addr *a)
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
static void resolv_conf_read(const struct conf_dns *l, struct addr **ret, size_t *n)
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
static void resolvers_build(const struct conf *conf, struct dns_resolver ***ret, size_t *ret_n)
{
	const struct conf_dns *d = conf_dns(conf), *l = d;
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
static struct dns_resolver *resolver_pick(struct dns_worker *w, const struct dns_query *qr)
{
	struct dns_resolver **cand = xcalloc(w->n_resolvers + 1, sizeof(*cand));
	int *cls = xcalloc(w->n_resolvers + 1, sizeof(*cls));
	unsigned *weight = xcalloc(w->n_resolvers + 1, sizeof(*weight));
	size_t n = 0, n_best = 0;
	int best = 3;
	uint64_t total = 0;
	struct dns_resolver *ret = NULL;

	for (size_t i = 0; i < w->n_resolvers; i++) {
		struct dns_resolver *r = w->resolvers[i];
		struct uplink *u = NULL;
		int c = 0;

		if (r->uplink) {
			u = uplink_find(w->set, r->uplink);
			if (!u || !uplink_worth_trying(u) ||
				(w->leaving && streq(w->leaving, r->uplink)))
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
		uint32_t x = rnd_uniform((uint32_t)MIN(total, (uint64_t)UINT32_MAX));
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
		pick = rnd_uniform((uint32_t)k);
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

/* The pktinfo control message for an answer to c into cbuf: its length, 0 for none. */
static size_t pktinfo_cmsg(const struct dns_client *c, struct cmsghdr *h)
{
	if (c->pi_level == IPPROTO_IP) {
		struct in_pktinfo pi = {.ipi_spec_dst = c->pi.v4.ipi_spec_dst};

		h->cmsg_level = IPPROTO_IP;
		h->cmsg_type = IP_PKTINFO;
		h->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(h), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	if (c->pi_level == IPPROTO_IPV6) {
		/* answer from the address asked; the interface matters for link-local only */
		struct in6_pktinfo pi = {.ipi6_addr = c->pi.v6.ipi6_addr};
		const struct sockaddr_in6 *peer = (const struct sockaddr_in6 *)&c->peer;

		if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr) || IN6_IS_ADDR_LINKLOCAL(&peer->sin6_addr))
			pi.ipi6_ifindex = c->pi.v6.ipi6_ifindex;
		h->cmsg_level = IPPROTO_IPV6;
		h->cmsg_type = IPV6_PKTINFO;
		h->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(h), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	return 0;
}

/* Send the answers waiting in w's batch, with as few sendmmsg() calls as the kernel takes. */
static void out_flush(struct dns_worker *w)
{
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	unsigned n = w->n_out, done = 0;

	if (!n)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct out_slot *o = &w->out[i];

		iov[i] = (struct iovec){.iov_base = o->b, .iov_len = o->len};
		mm[i] = (struct mmsghdr){.msg_hdr = {
			.msg_name = &o->peer,
			.msg_namelen = o->peer_len,
			.msg_iov = &iov[i],
			.msg_iovlen = 1,
			.msg_control = o->cmsg_len ? o->cbuf.b : NULL,
			.msg_controllen = o->cmsg_len,
		}};
	}
	w->n_out = 0;
	while (done < n) {
		int r = sendmmsg(w->udp_fd, mm + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r <= 0) {
			/* a full socket buffer drops the answer, as the network would: the client
			 * asks again; the ones behind it still get their turn */
			log_debug("dns: udp answer: %s", r < 0 ? strerror(errno) : "not sent");
			done++;
			continue;
		}
		done += (unsigned)r;
	}
}

/* Send msg (len bytes, borrowed) to UDP client c now, from the address it asked. */
static void udp_send_now(
	struct dns_worker *w, const struct dns_client *c, const uint8_t *msg, size_t len)
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
	size_t cl;

	if (w->udp_fd < 0)
		return;
	memset(&cbuf, 0, sizeof(cbuf));
	cl = pktinfo_cmsg(c, &cbuf.h);
	if (cl) {
		mh.msg_control = cbuf.b;
		mh.msg_controllen = cl;
	}
	/* a full socket buffer drops the answer, as the network would: the client asks again */
	if (sendmsg(w->udp_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("dns: udp answer: %s", strerror(errno));
}

/*
 * Answer a UDP client: into w's batch while a callback reads (udp_read_cb(), up_sock_cb():
 * sent with one sendmmsg() when it is done), else at once.
 */
static void udp_send(
	struct dns_worker *w, const struct dns_client *c, const uint8_t *msg, size_t len)
{
	if (w->batching && len <= OUT_SLOT && w->udp_fd >= 0) {
		struct out_slot *o = &w->out[w->n_out++];

		memcpy(&o->peer, &c->peer, c->peer_len);
		o->peer_len = c->peer_len;
		memset(&o->cbuf, 0, sizeof(o->cbuf));
		o->cmsg_len = pktinfo_cmsg(c, (struct cmsghdr *)(void *)o->cbuf.b);
		memcpy(o->b, msg, len);
		o->len = len;
		if (w->n_out == UDP_BATCH)
			out_flush(w);
		return;
	}
	udp_send_now(w, c, msg, len);
}

/* Start batching answers in a callback of w; returns what to pass to batch_end(). */
static bool batch_begin(struct dns_worker *w)
{
	bool was = w->batching;

	w->batching = true;
	return was;
}

static void batch_end(struct dns_worker *w, bool was)
{
	w->batching = was;
	if (!was)
		out_flush(w);
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
	static struct dns_chain ch; /* 4 KiB of names: not on the stack; the main thread only */
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
 * A thread worker's answer that the DNS watch must see first: to the main thread, which
 * tells the watch and then sends it from w's socket (ho_cb()).
 */
static void handoff(struct dns_worker *w, const struct dns_client *c, const uint8_t *full,
	size_t full_len, const uint8_t *msg, size_t len)
{
	struct dns_module *m = w->mod;
	struct dns_handoff *h = xcalloc(1, sizeof(*h));
	uint64_t one = 1;

	h->w = w;
	h->c = *c;
	h->full = xmalloc(full_len);
	memcpy(h->full, full, full_len);
	h->full_len = full_len;
	h->msg = xmalloc(len);
	memcpy(h->msg, msg, len);
	h->len = len;
	pthread_mutex_lock(&m->ho_lock);
	if (m->ho_tail)
		m->ho_tail->next = h;
	else
		m->ho = h;
	m->ho_tail = h;
	pthread_mutex_unlock(&m->ho_lock);
	if (write(m->ho_fd, &one, sizeof(one)) < 0)
		log_debug("dns: handoff: %s", strerror(errno));
}

/* The main thread: the thread workers' answers for the watch (see handoff()). */
static void ho_run(struct dns_module *m)
{
	struct dns_handoff *h, *next;

	pthread_mutex_lock(&m->ho_lock);
	h = m->ho;
	m->ho = m->ho_tail = NULL;
	pthread_mutex_unlock(&m->ho_lock);
	for (; h; h = next) {
		next = h->next;
		watch_answer(m, &h->c, h->full, h->full_len);
		/* sendmsg() on another thread's socket: the kernel serializes it */
		udp_send_now(h->w, &h->c, h->msg, h->len);
		free(h->full);
		free(h->msg);
		free(h);
	}
}

static void ho_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug("dns: handoff: %s", strerror(errno));
	ho_run(arg);
}

/*
 * Send msg (len bytes, borrowed) to client c in answer to query (qlen bytes, borrowed;
 * parsed into q, NULL if it did not parse).  Over UDP, an answer larger than the client
 * takes goes as header + question with TC (RFC 1035 4.2.1, RFC 6891 7).
 */
static void client_send(struct dns_worker *w, const struct dns_client *c, const uint8_t *query,
	size_t qlen, const struct dns_msg *q, const uint8_t *msg, size_t len)
{
	uint8_t tc[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
	unsigned rcode = DNS_RCODE(dns_get16(msg + 2));
	bool watched = rcode == DNS_RCODE_NOERROR && dnswatch_wanted(w->mod->watch);
	const uint8_t *full = msg;
	size_t full_len = len;

	/* counted before it leaves: whoever reads the counters after the answer came sees it */
	inc(w, c->transport == DNS_TCP ? ST_ANSWERS_TCP : ST_ANSWERS_UDP);
	if (rcode == DNS_RCODE_SERVFAIL)
		inc(w, ST_SERVFAIL);
	/* before it leaves: the watch's subscribers act on it before the client can */
	if (watched && !w->threaded)
		watch_answer(w->mod, c, msg, len);
	if (c->transport == DNS_UDP) {
		size_t limit = q ? dns_msg_udp_limit(q) : DNS_PLAIN_UDP;

		if (len > limit &&
			dns_msg_reply(query, qlen, q, rcode, true, tc, sizeof(tc), &len) == 0) {
			msg = tc;
			inc(w, ST_TRUNCATED);
		}
		if (watched && w->threaded)
			handoff(w, c, full, full_len, msg, len);
		else
			udp_send(w, c, msg, len);
	} else if (c->conn) {
		tcp_send(c->conn, msg, len);
	}
}

/* A reply without records made here (FORMERR, NOTIMP, REFUSED, SERVFAIL). */
static void client_reply(struct dns_worker *w, const struct dns_client *c, const uint8_t *query,
	size_t qlen, const struct dns_msg *q, unsigned rcode)
{
	uint8_t buf[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
	size_t len;

	if (dns_msg_reply(query, qlen, q, rcode, false, buf, sizeof(buf), &len) == 0)
		client_send(w, c, query, qlen, q, buf, len);
}

static const char *client_str(const struct dns_client *c, char *buf, size_t len)
{
	struct addr a;

	if (client_addr(c, &a) < 0)
		return "?";
	return addr_str(&a, buf, len);
}

/* ------------------------------------------------------------ the shared cache */

/*
 * The cache is shared by the workers, cut in shards with a lock each: an answer is kept
 * once whichever worker fetched it, a client hits it whichever worker the kernel hands
 * its datagram to, and cache_size bounds the whole.  A small cache (under
 * CACHE_SHARD_MIN entries per shard) is one shard, so that its LRU order is exact.
 */
static unsigned shards_for(int cache_size)
{
	return cache_size >= CACHE_SHARDS * CACHE_SHARD_MIN ? CACHE_SHARDS : 1;
}

/* The shard of q's question: a keyed hash of its name (any case) and type. */
static struct dns_shard *shard_of(struct dns_module *m, const struct dns_msg *q)
{
	unsigned n = __atomic_load_n(&m->n_shards, __ATOMIC_RELAXED);
	uint64_t h = m->shard_k0;

	if (n <= 1)
		return &m->shards[0];
	for (size_t i = 0; i < q->qname_len; i++) {
		uint8_t b = q->qname[i];

		if (b >= 'A' && b <= 'Z')
			b = (uint8_t)(b + 32);
		h = (h ^ b) * 0x100000001b3ULL;
	}
	h = (h ^ q->qtype) * 0x100000001b3ULL;
	h ^= h >> 29;
	return &m->shards[h % n];
}

/* 0 and a copy in *ret (the caller frees it), -ENOENT on a miss, -ENODATA without cache. */
static int cache_get(struct dns_module *m, const struct dns_msg *q, uint8_t **ret, size_t *len)
{
	struct dns_shard *s = shard_of(m, q);
	int r = -ENODATA;

	pthread_mutex_lock(&s->lock);
	if (s->c)
		r = dns_cache_get(s->c, q, now_ms(), ret, len);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void cache_put(struct dns_module *m, const struct dns_msg *q, const uint8_t *msg,
	size_t len, const struct dns_msg *a)
{
	struct dns_shard *s = shard_of(m, q);

	pthread_mutex_lock(&s->lock);
	if (s->c)
		(void)dns_cache_put(s->c, q, msg, len, a, now_ms());
	pthread_mutex_unlock(&s->lock);
}

/* Size the cache (0: none); a change in the count of shards empties it. */
static void cache_resize(struct dns_module *m, int size)
{
	unsigned n = size > 0 ? shards_for(size) : 0;
	unsigned old = __atomic_load_n(&m->n_shards, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		struct dns_shard *s = &m->shards[i];
		size_t max = i < n ? (size_t)size / n + ((size_t)size % n > i) : 0;

		pthread_mutex_lock(&s->lock);
		if (!max || n != old) {
			dns_cache_free(s->c);
			s->c = NULL;
		}
		if (max && s->c)
			dns_cache_set_max(s->c, max);
		else if (max)
			s->c = dns_cache_new(max);
		pthread_mutex_unlock(&s->lock);
	}
	__atomic_store_n(&m->n_shards, n, __ATOMIC_RELAXED);
	m->cache_size = size;
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
	struct dns_worker *w = qr->w;

	upstream_close(qr);
	if (qr->timer)
		event_free(qr->timer);
	for (int i = 0; i < qr->n_tried; i++)
		resolver_put(qr->tried[i]);
	if (qr->prev)
		qr->prev->next = qr->next;
	else
		w->queries = qr->next;
	if (qr->next)
		qr->next->prev = qr->prev;
	if (!qr->released)
		__atomic_fetch_sub(&w->mod->pending, 1, __ATOMIC_RELAXED);
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
	struct dns_worker *w = qr->w;
	struct dns_conn *c = qr->client.conn;

	/* no longer pending once the client can have its answer */
	__atomic_fetch_sub(&w->mod->pending, 1, __ATOMIC_RELAXED);
	qr->released = true;
	client_send(w, &qr->client, qr->msg, qr->len, &qr->q, msg, len);
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
		qr->w->attempts, why);
	upstream_close(qr);
	if (qr->n_tried < qr->w->attempts)
		query_attempt(qr);
	else
		query_fail(qr, DNS_RCODE_SERVFAIL);
}

static void query_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *qr = arg;
	struct dns_worker *w = qr->w;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->lock);
	up_stat(w, resolver_label(qr->tried[qr->n_tried - 1]))->timeouts++;
	pthread_mutex_unlock(&w->lock);
	query_next(qr, "timeout");
}

static void timer_arm(struct dns_query *qr)
{
	struct timeval tv = {
		.tv_sec = qr->w->timeout_ms / 1000,
		.tv_usec = (qr->w->timeout_ms % 1000) * 1000,
	};
	/* every query has the same timeout: a queue instead of the heap (the same time) */
	const struct timeval *ct = event_base_init_common_timeout(qr->w->base, &tv);

	event_add(qr->timer, ct ? ct : &tv);
}

/*
 * A socket that leaves through r's uplink: bound to the uplink's source address if it has
 * one of r's family, else to its interface if it has one; SO_MARK r's mark.
 */
static int upstream_socket(
	struct dns_worker *w, const struct dns_resolver *r, int type, int *ret_fd)
{
	struct uplink *u = r->uplink ? uplink_find(w->set, r->uplink) : NULL;
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
	struct dns_worker *w = qr->w;

	dns_put16(msg, qr->q.id);
	cache_put(w->mod, &qr->q, msg, len, a);
	query_finish(qr, msg, len);
}

static int upstream_tcp(struct dns_query *qr);

/*
 * An upstream message for qr (len bytes in msg, writable).  Returns 0 if it is ignored
 * (qr waits on), 1 if qr moved on (answered, freed, or its next attempt started).
 */
static int upstream_take(struct dns_query *qr, uint8_t *msg, size_t len)
{
	struct dns_worker *w = qr->w;
	struct dns_msg a;
	unsigned rcode;

	if (dns_msg_parse(msg, len, &a) < 0) {
		inc(w, ST_MALFORMED_UPSTREAM);
		if (log_ratelimit(&w->rl_upstream)) {
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
		inc(w, ST_MISMATCH);
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
		qr->n_tried < w->attempts) {
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
	struct dns_worker *w = s->w;
	uint8_t(*bufs)[DNS_MSG_MAX + 1] = w->ubuf;
	struct sockaddr_storage from[UP_RECV_BATCH];
	struct iovec iov[UP_RECV_BATCH];
	struct mmsghdr mm[UP_RECV_BATCH];
	bool batch = batch_begin(w);

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
				inc(w, ST_MISMATCH);
				continue;
			}
			qr = up_sock_find(s, dns_get16(bufs[i]));
			if (!qr) {
				inc(w, ST_MISMATCH);
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
	batch_end(w, batch);
}

static void upstream_tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct dns_query *qr = arg;
	struct dns_worker *w = qr->w;
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
		evbuffer_remove(in, w->buf, n);
		if (upstream_take(qr, w->buf, n))
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
	struct dns_worker *w = qr->w;
	struct dns_up_stat *s;

	pthread_mutex_lock(&w->lock);
	s = up_stat(w, resolver_label(qr->tried[qr->n_tried - 1]));
	if (t == DNS_TCP)
		s->tcp++;
	else
		s->udp++;
	pthread_mutex_unlock(&w->lock);
}

/* Ask the current resolver again over TCP (RFC 7766 5: after a TC answer over UDP). */
static int upstream_tcp(struct dns_query *qr)
{
	struct dns_worker *w = qr->w;
	const struct dns_resolver *r = qr->tried[qr->n_tried - 1];
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t hdr[4];
	int fd = -1, ret;

	upstream_close(qr);
	ret = addr_to_sockaddr(&r->addr, DNS_PORT, &ss, &sl);
	if (ret < 0)
		return ret;
	ret = upstream_socket(w, r, SOCK_STREAM, &fd);
	if (ret < 0)
		return ret;
	qr->up_bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!qr->up_bev) {
		close(fd);
		return -ENOMEM;
	}
	qr->up_tcp = true;
	bufferevent_setcb(qr->up_bev, upstream_tcp_read_cb, NULL, upstream_tcp_event_cb, qr);
	if (bufferevent_socket_connect(qr->up_bev, (struct sockaddr *)&ss, (int)sl) < 0)
		return -ECONNREFUSED;
	qr->up_id = (uint16_t)rnd32();
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
static int up_sock_new(struct dns_worker *w, struct dns_resolver *r, struct up_sock **ret)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct up_sock *s;
	int fd = -1, ret_;

	ret_ = addr_to_sockaddr(&r->addr, DNS_PORT, &ss, &sl);
	if (ret_ < 0)
		return ret_;
	ret_ = upstream_socket(w, r, SOCK_DGRAM, &fd);
	if (ret_ < 0)
		return ret_;
	/* connected: the kernel picks a random port and drops datagrams from anyone else */
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		ret_ = -errno;
		close(fd);
		return ret_;
	}
	s = xcalloc(1, sizeof(*s));
	s->w = w;
	s->r = r;
	s->addr = r->addr;
	s->fd = fd;
	s->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, up_sock_cb, s);
	event_add(s->ev, NULL);
	*ret = s;
	return 0;
}

/* A socket of r's pool picked at random (a new one where the slot is empty). */
static int up_sock_pick(struct dns_worker *w, struct dns_resolver *r, struct up_sock **ret)
{
	uint32_t i = rnd_uniform(UP_POOL);

	if (!r->pool[i]) {
		int e = up_sock_new(w, r, &r->pool[i]);

		if (e < 0)
			return e;
	}
	*ret = r->pool[i];
	return 0;
}

/* Send qr to resolver r over UDP: a socket of r's pool, a new ID not in use on it. */
static int upstream_udp(struct dns_query *qr, struct dns_resolver *r)
{
	struct dns_worker *w = qr->w;
	struct up_sock *s;
	uint8_t id[2];
	struct iovec iov[2];
	int ret;

	ret = up_sock_pick(w, r, &s);
	if (ret < 0)
		return ret;
	do
		qr->up_id = (uint16_t)rnd32();
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
	struct dns_worker *w = qr->w;

	while (qr->n_tried < w->attempts) {
		struct dns_resolver *r = resolver_pick(w, qr);
		char a[ADDR_STRLEN];
		int ret;

		if (!r) {
			if (log_ratelimit(&w->rl_bound))
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
		if (log_ratelimit(&w->rl_upstream))
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
	struct dns_worker *w, const struct dns_client *c, const uint8_t *msg, size_t len)
{
	struct dns_query *qr;
	struct dns_msg q;
	uint8_t *hit;
	size_t hit_len;
	char a[ADDR_STRLEN];
	int r;

	inc(w, c->transport == DNS_TCP ? ST_QUERIES_TCP : ST_QUERIES_UDP);
	r = dns_msg_parse(msg, len, &q);
	if (len < DNS_HEADER_LEN || (q.flags & DNS_FLAG_QR)) {
		inc(w, ST_MALFORMED_CLIENT);
		if (log_ratelimit(&w->rl_client))
			log_warnx("dns: %s from %s dropped",
				len < DNS_HEADER_LEN ? "runt" : "response",
				client_str(c, a, sizeof(a)));
		return;
	}
	if (c->refused) {
		/* told at once, whatever it asked: REFUSED says "not here", FORMERR would not */
		inc(w, ST_REFUSED_ACL);
		client_reply(w, c, msg, len, r < 0 ? NULL : &q, DNS_RCODE_REFUSED);
		return;
	}
	if (r < 0 || q.qdcount != 1) {
		inc(w, ST_MALFORMED_CLIENT);
		if (log_ratelimit(&w->rl_client))
			log_warnx("dns: malformed query from %s: FORMERR",
				client_str(c, a, sizeof(a)));
		client_reply(w, c, msg, len, NULL, DNS_RCODE_FORMERR);
		return;
	}
	if (DNS_OPCODE(q.flags) != 0) {
		client_reply(w, c, msg, len, &q, DNS_RCODE_NOTIMP);
		return;
	}
	if (!dns_msg_query_ok(&q)) {
		inc(w, ST_MALFORMED_CLIENT);
		if (log_ratelimit(&w->rl_client))
			log_warnx("dns: query from %s carries %u answer and %u authority records: "
				  "FORMERR",
				client_str(c, a, sizeof(a)), q.ancount, q.nscount);
		client_reply(w, c, msg, len, &q, DNS_RCODE_FORMERR);
		return;
	}
	r = cache_get(w->mod, &q, &hit, &hit_len);
	if (r == 0) {
		inc(w, ST_HITS);
		client_send(w, c, msg, len, &q, hit, hit_len);
		free(hit);
		return;
	}
	if (r == -ENOENT)
		inc(w, ST_MISSES);
	/* the bound is the module's, whichever worker asks: taken before the query exists */
	if (__atomic_add_fetch(&w->mod->pending, 1, __ATOMIC_RELAXED) >
		__atomic_load_n(&w->mod->max_pending, __ATOMIC_RELAXED)) {
		unsigned n = __atomic_sub_fetch(&w->mod->pending, 1, __ATOMIC_RELAXED);

		inc(w, ST_REFUSED_PENDING);
		if (log_ratelimit(&w->rl_bound))
			log_warnx("dns: %u queries pending (max_pending): REFUSED to %s", n,
				client_str(c, a, sizeof(a)));
		client_reply(w, c, msg, len, &q, DNS_RCODE_REFUSED);
		return;
	}

	qr = xcalloc(1, sizeof(*qr));
	qr->w = w;
	qr->client = *c;
	qr->msg = xmalloc(len);
	memcpy(qr->msg, msg, len);
	qr->len = len;
	qr->q = q;
	qr->timer = evtimer_new(w->base, query_timeout_cb, qr);
	qr->next = w->queries;
	if (w->queries)
		w->queries->prev = qr;
	w->queries = qr;
	if (c->conn)
		c->conn->inflight++;
	query_attempt(qr);
}

/* ------------------------------------------------------------ client sockets */

/* A client the ACL refused: counted by the caller, logged here (rate-limited). */
static void acl_log(struct dns_worker *w, const struct addr *a, int ifindex,
	enum acl_verdict v, const char *what)
{
	char s[ADDR_STRLEN], why[128];

	if (log_ratelimit(&w->rl_client))
		log_warnx("dns: %s from %s refused: %s", what, addr_str(a, s, sizeof(s)),
			acl_reason(v, ifindex, why, sizeof(why)));
}

/*
 * The ACL over a UDP query: true to go on (c->refused set if it is to hear REFUSED).  One
 * that came in through an uplink interface, or through one we cannot name, is dropped
 * unanswered: a UDP source address is easily forged, and a REFUSED would go to whoever it
 * names - a forwarder on the internet side must not reflect, nor show itself to scanners.
 */
static bool udp_acl(struct dns_worker *w, struct dns_client *c)
{
	struct addr a;
	enum acl_verdict v;

	if (addr_from_sockaddr((struct sockaddr *)&c->peer, &a, NULL) < 0)
		return false;
	addr_unmap_v4(&a);
	v = acl_check(w->acl, &a, c->ifindex);
	if (v == ACL_ALLOW)
		return true;
	acl_log(w, &a, c->ifindex, v, "UDP query");
	if (v == ACL_DENY_UNLISTED) {
		c->refused = true;
		return true;
	}
	inc(w, ST_REFUSED_ACL);
	return false;
}

/*
 * Client datagrams: read RECV_BATCH at a time with recvmmsg(), up to UDP_BATCH per wakeup
 * (then timers and TCP get their turn); the answers they get at once (the cache, errors)
 * leave together with sendmmsg() when the batch is done.
 */
static void udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_worker *w = arg;
	union cbuf {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			  CMSG_SPACE(sizeof(struct in_pktinfo))];
	} cbuf[RECV_BATCH];
	struct dns_client cl[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct mmsghdr mm[RECV_BATCH];
	bool batch;

	(void)what;
	/* what the main thread changed before these datagrams came counts for them */
	if (w->threaded)
		worker_take_views(w);
	batch = batch_begin(w);
	for (int round = 0; round < UDP_BATCH / RECV_BATCH; round++) {
		int n;

		for (int i = 0; i < RECV_BATCH; i++) {
			cl[i] = (struct dns_client){.transport = DNS_UDP};
			iov[i] = (struct iovec){.iov_base = w->rbuf[i], .iov_len = RECV_SLOT};
			mm[i] = (struct mmsghdr){.msg_hdr = {
				.msg_name = &cl[i].peer,
				.msg_namelen = sizeof(cl[i].peer),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
				.msg_control = cbuf[i].b,
				.msg_controllen = sizeof(cbuf[i]),
			}};
		}
		n = recvmmsg(fd, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("dns: udp: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct dns_client *c = &cl[i];
			struct msghdr *mh = &mm[i].msg_hdr;

			c->peer_len = mh->msg_namelen;
			for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
				if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO) {
					c->pi_level = IPPROTO_IP;
					memcpy(&c->pi.v4, CMSG_DATA(h), sizeof(c->pi.v4));
					c->ifindex = c->pi.v4.ipi_ifindex;
				} else if (h->cmsg_level == IPPROTO_IPV6 &&
					   h->cmsg_type == IPV6_PKTINFO) {
					c->pi_level = IPPROTO_IPV6;
					memcpy(&c->pi.v6, CMSG_DATA(h), sizeof(c->pi.v6));
					c->ifindex = (int)c->pi.v6.ipi6_ifindex;
				}
			}
			if (!w->pktinfo)
				c->pi_level = 0; /* one address: answers leave from it anyway */
			if (mh->msg_flags & MSG_TRUNC) {
				/* over RECV_SLOT bytes: no query is that large */
				inc(w, ST_QUERIES_UDP);
				inc(w, ST_MALFORMED_CLIENT);
				continue;
			}
			if (udp_acl(w, c))
				dns_client_query(w, c, w->rbuf[i], mm[i].msg_len);
		}
		if (n < RECV_BATCH)
			break;
	}
	batch_end(w, batch);
}

static void conn_free(struct dns_conn *c)
{
	struct dns_worker *w = c->w;

	/* its queries die with it: nobody is left to answer */
	for (struct dns_query *qr = w->queries, *next; qr; qr = next) {
		next = qr->next;
		if (qr->client.conn == c)
			query_free(qr);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
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
	struct dns_worker *w = c->w;
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
		evbuffer_remove(in, w->buf, n);
		c->active_ms = now_ms();
		c->partial_ms = 0;
		cl.refused = c->refused;
		dns_client_query(w, &cl, w->buf, n);
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
			if (log_ratelimit(&w->rl_bound)) {
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

static size_t conns_of(const struct dns_worker *w, const struct addr *a)
{
	size_t n = 0;

	for (const struct dns_conn *c = w->conns; c; c = c->next)
		n += addr_eq(&c->peer, a);
	return n;
}

/* Close the connection idle longest (nothing asked, nothing to write); false if none is. */
static bool conn_evict(struct dns_worker *w)
{
	struct dns_conn *victim = NULL;

	for (struct dns_conn *c = w->conns; c; c = c->next) {
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
	struct dns_worker *w = arg;
	struct timeval idle = {.tv_sec = TCP_IDLE_MS / 1000};
	struct dns_conn *c;
	struct addr a;
	char s[ADDR_STRLEN];
	enum acl_verdict v;
	int ifindex = acl_sock_ifindex(fd, w->mod->address.family);

	(void)l;
	(void)salen;
	if (addr_from_sockaddr(sa, &a, NULL) < 0) {
		close(fd);
		return;
	}
	addr_unmap_v4(&a);
	/* TCP cannot be forged: a refused client hears REFUSED, also through an uplink */
	v = acl_check(w->acl, &a, ifindex);
	if (v != ACL_ALLOW)
		acl_log(w, &a, ifindex, v, "TCP connection");
	/* one address gets TCP_PER_CLIENT; when all are taken, the connection that has been
	 * quiet longest with nothing in flight makes room (RFC 7766 6.2.3), never for a
	 * refused one */
	if (conns_of(w, &a) >= TCP_PER_CLIENT ||
		(w->n_conns >= TCP_MAX_CONN && (v != ACL_ALLOW || !conn_evict(w)))) {
		if (log_ratelimit(&w->rl_bound))
			log_warnx("dns: TCP connection from %s refused: %s",
				addr_str(&a, s, sizeof(s)),
				w->n_conns >= TCP_MAX_CONN ? "every connection is busy"
							   : "too many from that address");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->peer = a;
	c->refused = v != ACL_ALLOW;
	c->active_ms = now_ms();
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
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

/*
 * A listening socket of type at a:port; "::" takes IPv4 too.  UDP sockets join the port's
 * SO_REUSEPORT group: one per worker, the kernel spreads the clients over them (by
 * address and port, so one client's datagrams stay with one worker).
 */
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
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		ret = -errno;
		goto out;
	}
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

/* ------------------------------------------------------------ views of the uplinks */

static void uplinks_free(struct uplink_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i]->name);
		free(set->v[i]);
	}
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

static void word_list_copy(struct word_list *dst, const struct word_list *src)
{
	dst->n = src->n;
	dst->v = xcalloc(src->n + 1, sizeof(*dst->v));
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = xstrdup(src->v[i]);
}

static void word_list_free(struct word_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void view_free(struct dns_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n_uplinks; i++) {
		free(v->uplinks[i]->name);
		free(v->uplinks[i]);
	}
	free(v->uplinks);
	word_list_free(&v->allow);
	resolvers_free(v->specs, v->n_specs);
	free(v->event_uplink);
	free(v);
}

/*
 * The uplinks as they are now, copied for a thread worker (without `removed`, an uplink
 * on its way out), with the configuration if with_conf, and an uplink event (NULL: none).
 */
static struct dns_view *view_new(struct dns_module *m, bool with_conf, const char *removed,
	const char *event_uplink, bool move)
{
	struct dns_view *v = xcalloc(1, sizeof(*v));

	v->uplinks = xcalloc(m->set->n + 1, sizeof(*v->uplinks));
	for (size_t i = 0; i < m->set->n; i++) {
		const struct uplink *u = m->set->v[i];
		struct uplink *c;

		if (removed && streq(u->name, removed))
			continue;
		c = xmalloc(sizeof(*c));
		*c = *u;
		c->name = xstrdup(u->name);
		memset(&c->check, 0, sizeof(c->check)); /* its pointers are the main thread's */
		v->uplinks[v->n_uplinks++] = c;
	}
	if (with_conf) {
		v->has_conf = true;
		v->timeout_ms = m->conf.timeout_ms;
		v->attempts = m->conf.attempts;
		word_list_copy(&v->allow, &m->conf.allow);
		v->specs = xcalloc(m->conf.n_specs + 1, sizeof(*v->specs));
		for (size_t i = 0; i < m->conf.n_specs; i++) {
			const struct dns_resolver *r = m->conf.specs[i];

			v->specs[v->n_specs++] = resolver_new(r->uplink, &r->addr, r->mark);
		}
	}
	v->event_uplink = event_uplink ? xstrdup(event_uplink) : NULL;
	v->event_move = move;
	v->event_removed = removed != NULL;
	return v;
}

/*
 * Take v into w on w's thread: the uplinks (a thread worker's copy), the configuration,
 * and an uplink event: whatever changed (address, interface, state), its new sockets are
 * made as it is now; an uplink that stops being usable takes its queries' current attempts
 * with it: they move on at once instead of waiting for their timeout.
 */
static void view_apply(struct dns_worker *w, struct dns_view *v)
{
	if (w->threaded) {
		uplinks_free(&w->uplinks);
		w->uplinks.v = v->uplinks;
		w->uplinks.n = v->n_uplinks;
		v->uplinks = NULL;
		v->n_uplinks = 0;
	}
	if (v->has_conf) {
		acl_set_allow(w->acl, &v->allow); /* validated: cannot fail */
		w->timeout_ms = v->timeout_ms;
		w->attempts = MIN(MAX(v->attempts, 1), ATTEMPTS_MAX);
		resolvers_free(w->resolvers, w->n_resolvers);
		w->resolvers = xcalloc(v->n_specs + 1, sizeof(*w->resolvers));
		w->n_resolvers = 0;
		for (size_t i = 0; i < v->n_specs; i++) {
			const struct dns_resolver *r = v->specs[i];

			w->resolvers[w->n_resolvers++] = resolver_new(r->uplink, &r->addr, r->mark);
		}
	}
	if (!v->event_uplink)
		return;
	for (size_t i = 0; i < w->n_resolvers; i++) {
		struct dns_resolver *r = w->resolvers[i];

		if (r->uplink && streq(r->uplink, v->event_uplink))
			for (int j = 0; j < UP_POOL; j++)
				if (r->pool[j])
					up_sock_retire(r->pool[j]);
	}
	if (!v->event_move)
		return;
	if (v->event_removed)
		w->leaving = v->event_uplink;
	for (struct dns_query *qr = w->queries, *next; qr; qr = next) {
		const struct dns_resolver *r = qr->tried[qr->n_tried - 1];

		next = qr->next;
		if (r->uplink && streq(r->uplink, v->event_uplink))
			query_next(qr, "uplink not usable");
	}
	w->leaving = NULL;
}

/* A thread worker takes what the main thread left in its inbox, in order. */
static void worker_take_views(struct dns_worker *w)
{
	struct dns_view *v, *next;
	bool batch;

	pthread_mutex_lock(&w->lock);
	v = w->inbox;
	w->inbox = w->inbox_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	if (!v)
		return;
	batch = batch_begin(w);
	for (; v; v = next) {
		next = v->next;
		view_apply(w, v);
		view_free(v);
	}
	batch_end(w, batch);
}

/* The uplinks' state and configuration to every worker (see view_new()). */
static void views_post(struct dns_module *m, bool with_conf, const char *removed,
	const char *event_uplink, bool move)
{
	for (int i = 0; i < m->n_workers; i++) {
		struct dns_worker *w = m->w[i];
		struct dns_view *v = view_new(m, with_conf, removed, event_uplink, move);
		uint64_t one = 1;

		if (!w->threaded) {
			view_apply(w, v); /* worker 0 reads the daemon's uplinks themselves */
			view_free(v);
			continue;
		}
		pthread_mutex_lock(&w->lock);
		if (w->inbox_tail)
			w->inbox_tail->next = v;
		else
			w->inbox = v;
		w->inbox_tail = v;
		pthread_mutex_unlock(&w->lock);
		if (write(w->notify_fd, &one, sizeof(one)) < 0)
			log_debug("dns: worker %d: %s", w->index, strerror(errno));
	}
}

/*
 * What the thread workers' copies depend on, hashed: an interface that comes back under
 * a new index is not announced as an uplink event, yet the ACL must know it.
 */
static uint64_t uplinks_sig(const struct uplink_set *set)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < set->n; i++) {
		const struct uplink *u = set->v[i];
		const void *parts[] = {u->name, u->ifname, &u->ifindex, &u->link_up, &u->source,
			&u->weight, &u->enabled, &u->state};
		const size_t lens[] = {strlen(u->name), strlen(u->ifname), sizeof(u->ifindex),
			sizeof(u->link_up), sizeof(u->source), sizeof(u->weight), sizeof(u->enabled),
			sizeof(u->state)};

		for (size_t p = 0; p < ARRAY_SIZE(parts); p++)
			for (size_t j = 0; j < lens[p]; j++)
				h = (h ^ ((const uint8_t *)parts[p])[j]) * 0x100000001b3ULL;
	}
	return h;
}

/* Every second on the main thread: the copies follow changes no event announced. */
static void sig_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_module *m = arg;
	uint64_t h = uplinks_sig(m->set);

	(void)fd;
	(void)what;
	if (h != m->sig && m->n_workers > 1)
		views_post(m, false, NULL, NULL, false);
	m->sig = h;
}

static void dns_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct dns_module *m = arg;
	bool move = ev == UPLINK_REMOVED || (ev == UPLINK_STATE && !uplink_worth_trying(u));

	/* a removed uplink is still in the set, and up, while we are told: not a candidate */
	views_post(m, false, ev == UPLINK_REMOVED ? u->name : NULL, u->name, move);
	m->sig = uplinks_sig(m->set);
}

/* ------------------------------------------------------------ workers */

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_worker *w = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug("dns: worker %d: %s", w->index, strerror(errno));
	worker_take_views(w);
	if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
		event_base_loopbreak(w->base);
}

static void *worker_main(void *arg)
{
	struct dns_worker *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/*
 * Worker index of m on udp_fd (taken).  *ret is set even on error: worker_free() it.
 * Worker 0 runs on m's loop; the others on a thread each, started here.
 */
static int worker_new(struct dns_module *m, int index, int udp_fd, struct dns_worker **ret)
{
	struct dns_worker *w = xcalloc(1, sizeof(*w));
	struct dns_view *v;
	int r = 0;

	w->mod = m;
	w->index = index;
	w->threaded = index > 0;
	w->udp_fd = udp_fd;
	w->notify_fd = -1;
	w->pktinfo = addr_is_any(&m->address);
	w->rl_client = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	w->rl_upstream = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	w->rl_bound = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	w->out = xcalloc(UDP_BATCH, sizeof(*w->out));
	pthread_mutex_init(&w->lock, NULL);
	w->set = w->threaded ? &w->uplinks : m->set;
	w->base = w->threaded ? event_base_new() : m->base;
	*ret = w;
	if (!w->base)
		return -ENOMEM;
	r = acl_new(w->set, &w->acl);
	if (r >= 0)
		r = acl_follow(w->acl, w->base);
	if (r < 0) {
		log_warnx("dns: client ACL: %s", strerror(-r));
		return r;
	}
	w->udp_ev = event_new(w->base, udp_fd, EV_READ | EV_PERSIST, udp_read_cb, w);
	event_add(w->udp_ev, NULL);
	v = view_new(m, true, NULL, NULL, false);
	view_apply(w, v);
	view_free(v);
	if (w->threaded) {
		sigset_t all, old;

		w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->notify_fd < 0)
			return -errno;
		w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, notify_cb, w);
		event_add(w->notify_ev, NULL);
		/* signals are the main thread's */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = -pthread_create(&w->thread, NULL, worker_main, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r < 0) {
			w->threaded = false; /* nothing to join */
			log_warnx("dns: worker %d: %s", index, strerror(-r));
			return r;
		}
		w->running = true;
	}
	return 0;
}

/* Stop w's thread, drop its queries unanswered, close its sockets, free it. */
static void worker_free(struct dns_worker *w)
{
	struct dns_module *m;

	if (!w)
		return;
	m = w->mod;
	if (w->running) {
		uint64_t one = 1;

		__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
		if (write(w->notify_fd, &one, sizeof(one)) < 0)
			log_warn("dns: worker %d: stop", w->index);
		pthread_join(w->thread, NULL);
	}
	/* from here on w is the main thread's */
	ho_run(m); /* answers it left for the watch still go, from its socket */
	stats_flush(m, w);
	while (w->conns)
		conn_free(w->conns);
	while (w->queries)
		query_free(w->queries);
	if (w->udp_ev)
		event_free(w->udp_ev);
	if (w->udp_fd >= 0)
		close(w->udp_fd);
	resolvers_free(w->resolvers, w->n_resolvers);
	acl_free(w->acl);
	uplinks_free(&w->uplinks);
	for (struct dns_view *v = w->inbox, *next; v; v = next) {
		next = v->next;
		view_free(v);
	}
	for (size_t i = 0; i < w->n_up_stats; i++)
		free(w->up_stats[i].label);
	free(w->up_stats);
	if (w->notify_ev)
		event_free(w->notify_ev);
	if (w->notify_fd >= 0)
		close(w->notify_fd);
	if (w->base && w->base != m->base)
		event_base_free(w->base);
	free(w->out);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* ------------------------------------------------------------ module */

/* [dns] workers: 0 is one per CPU the process may run on. */
static int workers_for(const struct conf_dns *d)
{
	long n = d->workers;

	if (n <= 0) {
		cpu_set_t cs;

		n = sched_getaffinity(0, sizeof(cs), &cs) == 0 ? CPU_COUNT(&cs)
							       : sysconf(_SC_NPROCESSORS_ONLN);
	}
	return (int)MIN(MAX(n, 1), WORKERS_MAX);
}

static void conf_copy_free(struct dns_module *m)
{
	word_list_free(&m->conf.allow);
	resolvers_free(m->conf.specs, m->conf.n_specs);
	m->conf.specs = NULL;
	m->conf.n_specs = 0;
}

/*
 * The UDP sockets of n workers at d's address and port (into fds, n of them), and the TCP
 * listener when tcp_fd is not NULL: all or none.
 */
static int listeners_open(const struct conf_dns *d, int n, int *fds, int *tcp_fd)
{
	char a[ADDR_STRLEN];
	int r = 0, i;

	for (i = 0; i < n && r == 0; i++)
		r = listen_socket(&d->address, d->port, SOCK_DGRAM, &fds[i]);
	if (r == 0 && tcp_fd)
		r = listen_socket(&d->address, d->port, SOCK_STREAM, tcp_fd);
	if (r < 0) {
		/* fds[i - 1] failed: it is not open */
		for (int j = 0; j < i - 1; j++)
			close(fds[j]);
		log_warnx("dns: listen on %s port %d: %s", addr_str(&d->address, a, sizeof(a)),
			d->port, strerror(-r));
	}
	return r;
}

static int dns_apply(struct dns_module *m, const struct conf *conf, bool first)
{
	const struct conf_dns *d = conf_dns(conf);
	int n, *fds = NULL, tcp_fd = -1, ret = 0;
	bool moved, udp_new, tcp_new;
	char a[ADDR_STRLEN];

	if (!d)
		return -EINVAL;
	n = workers_for(d);
	moved = first || !addr_eq(&d->address, &m->address) || d->port != m->port;
	udp_new = moved || n != m->n_workers;
	tcp_new = d->tcp && (moved || !m->tcp_l);
	if (udp_new || tcp_new) {
		fds = xcalloc((size_t)n, sizeof(*fds));
		ret = listeners_open(d, udp_new ? n : 0, fds, tcp_new ? &tcp_fd : NULL);
		if (ret < 0) {
			free(fds);
			return ret;
		}
	}
	/* from here on it cannot fail but for a worker's thread or ACL */
	conf_copy_free(m);
	m->conf.timeout_ms = d->timeout_ms;
	m->conf.attempts = d->attempts;
	word_list_copy(&m->conf.allow, &d->allow);
	resolvers_build(conf, &m->conf.specs, &m->conf.n_specs);
	__atomic_store_n(&m->max_pending, (unsigned)MAX(d->max_pending, 1), __ATOMIC_RELAXED);
	cache_resize(m, d->cache_size);
	if (tcp_new || !d->tcp) {
		if (m->tcp_l)
			evconnlistener_free(m->tcp_l);
		m->tcp_l = NULL;
	}
	m->address = d->address;
	m->port = d->port;
	m->tcp = d->tcp;
	if (udp_new) {
		/* the thread workers go with their queries (their clients ask again); worker 0
		 * keeps its queries and TCP clients and takes the new socket */
		for (int i = 1; i < m->n_workers; i++)
			worker_free(m->w[i]);
		m->w = xrealloc(m->w, (size_t)n * sizeof(*m->w));
		if (!m->n_workers) {
			ret = worker_new(m, 0, fds[0], &m->w[0]);
			m->n_workers = 1;
		} else {
			struct dns_worker *w0 = m->w[0];

			event_free(w0->udp_ev);
			close(w0->udp_fd);
			w0->udp_fd = fds[0];
			w0->pktinfo = addr_is_any(&m->address);
			w0->udp_ev = event_new(m->base, fds[0], EV_READ | EV_PERSIST, udp_read_cb, w0);
			event_add(w0->udp_ev, NULL);
			m->n_workers = 1;
		}
		for (int i = 1; i < n; i++) {
			struct dns_worker *w;
			int r;

			if (ret < 0) {
				close(fds[i]);
				continue;
			}
			/* a worker that cannot start leaves the group: nobody would read its socket */
			r = worker_new(m, m->n_workers, fds[i], &w);
			if (r < 0) {
				worker_free(w);
				ret = r;
				continue;
			}
			m->w[m->n_workers++] = w;
		}
		log_info("dns: listening on %s port %d (udp%s), %d worker%s",
			addr_str(&d->address, a, sizeof(a)), d->port, d->tcp ? ", tcp" : "", n,
			n == 1 ? "" : "s");
	}
	if (tcp_new) {
		m->tcp_l = evconnlistener_new(
			m->base, tcp_accept_cb, m->w[0], LEV_OPT_CLOSE_ON_FREE, -1, tcp_fd);
		if (!m->tcp_l) {
			close(tcp_fd);
			ret = -ENOMEM;
		} else {
			evconnlistener_set_error_cb(m->tcp_l, tcp_error_cb);
		}
	}
	free(fds);
	views_post(m, true, NULL, NULL, false);
	m->sig = uplinks_sig(m->set);
	log_debug("dns: %zu resolvers, timeout %ums, %d attempts, cache %d, max_pending %u",
		m->conf.n_specs, d->timeout_ms, d->attempts, d->cache_size, m->max_pending);
	return ret;
}

/* dns_module_new() with the DNS watch (NULL: none), set before any worker starts. */
static int module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct metrics *metrics, struct dnswatch *watch, struct dns_module **ret)
{
	struct dns_module *m = xcalloc(1, sizeof(*m));
	struct timeval sec = {.tv_sec = 1};
	int r;

	m->base = base;
	m->watch = watch;
	m->set = set;
	m->metrics = metrics;
	m->ho_fd = -1;
	pthread_mutex_init(&m->ho_lock, NULL);
	for (int i = 0; i < CACHE_SHARDS; i++)
		pthread_mutex_init(&m->shards[i].lock, NULL);
	m->shard_k0 = ((uint64_t)arc4random() << 32) | arc4random();
	m->ho_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->ho_fd < 0) {
		r = -errno;
		dns_module_free(m);
		return r;
	}
	m->ho_ev = event_new(base, m->ho_fd, EV_READ | EV_PERSIST, ho_cb, m);
	event_add(m->ho_ev, NULL);
	m->sig_ev = event_new(base, -1, EV_PERSIST, sig_cb, m);
	event_add(m->sig_ev, &sec);
	uplink_set_subscribe(set, dns_uplink_cb, m);
	metrics_init(m);
	if (metrics)
		metrics_on_scrape(metrics, dns_scrape_cb, m);
	r = dns_apply(m, conf, true);
	if (r < 0) {
		dns_module_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

int dns_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct metrics *metrics, struct dns_module **ret)
{
	return module_new(base, conf, set, metrics, NULL, ret);
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
	for (int i = m->n_workers - 1; i >= 0; i--)
		worker_free(m->w[i]);
	free(m->w);
	if (m->tcp_l)
		evconnlistener_free(m->tcp_l);
	conf_copy_free(m);
	for (int i = 0; i < CACHE_SHARDS; i++) {
		dns_cache_free(m->shards[i].c);
		pthread_mutex_destroy(&m->shards[i].lock);
	}
	ho_run(m);
	if (m->ho_ev)
		event_free(m->ho_ev);
	if (m->ho_fd >= 0)
		close(m->ho_fd);
	if (m->sig_ev)
		event_free(m->sig_ev);
	pthread_mutex_destroy(&m->ho_lock);
	free(m);
}

/* Its state for GET /api/modules; the counters are on /metrics (egress_dns_*). */
static json_t *dns_status_json(struct dns_module *m)
{
	json_t *res = json_array();
	char a[ADDR_STRLEN];

	for (size_t i = 0; i < m->conf.n_specs; i++) {
		const struct dns_resolver *rv = m->conf.specs[i];

		json_array_append_new(res, json_pack("{s:o, s:s}", "uplink",
						   rv->uplink ? json_string(rv->uplink) : json_null(),
						   "address", addr_str(&rv->addr, a, sizeof(a))));
	}
	return json_pack("{s:{s:s, s:i, s:b}, s:i, s:o, s:I, s:i, s:I, s:I}", "listen",
		"address", addr_str(&m->address, a, sizeof(a)), "port", m->port, "tcp", m->tcp,
		"workers", m->n_workers, "resolvers", res, "pending",
		(json_int_t)__atomic_load_n(&m->pending, __ATOMIC_RELAXED), "max_pending",
		(int)m->max_pending, "tcp_connections",
		(json_int_t)(m->n_workers ? m->w[0]->n_conns : 0), "cache_entries",
		(json_int_t)cache_count(m));
}

/* The module as the daemon sees it (module.h): runs while conf has [dns]. */
static bool dns_wanted_cb(const struct conf *conf)
{
	return conf_dns(conf) != NULL;
}

static int dns_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct dns_module *m = NULL;
	int r = module_new(env->base, conf, env->uplinks, env->metrics, env->dnswatch, &m);

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
