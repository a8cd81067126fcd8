/*
 * proxy_int.h - what the proxy module's files share (proxy.c, udp_assoc.c): its session,
 * uplink, client and module structures and the session functions the UDP associations use
 * (named proxy_*: they are not static).
 * Not for other modules: they see proxy.h.
 */
#ifndef EGRESS_PROXY_INT_H
#define EGRESS_PROXY_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "api.h"
#include "cidr.h"
#include "connect.h"
#include "log.h"
#include "proxy.h"
#include "relay.h"
#include "socks.h"

#define CLIENT_BUCKETS 4096
#define RACE_MAX 4 /* uplinks tried per connection */

struct conf;
struct dispatch;
struct event;
struct event_base;
struct evconnlistener;
struct evdns_base;
struct evdns_getaddrinfo_request;
struct metric_family;
struct metrics;
struct srcroute;
struct uplink_set;

enum listener_kind {
	LISTEN_PROXY,	    /* SOCKS4/4a/5 and HTTP, detected from the first byte */
	LISTEN_TUNNEL,	    /* whole connections to upstream SOCKS proxies */
	LISTEN_REDIRECT,    /* SO_ORIGINAL_DST */
	LISTEN_TPROXY,	    /* the local address is the destination */
	_LISTEN_KIND_MAX,
};

enum sess_state {
	S_DETECT,
	S_SOCKS5_GREETING,
	S_SOCKS5_AUTH,
	S_SOCKS5_REQUEST,
	S_SOCKS4_REQUEST,
	S_HTTP_HEAD,
	S_RESOLVE,
	S_CONNECT,
	S_RELAY,
	S_UDP, /* a SOCKS5 UDP association: the TCP connection only holds it open */
	_S_MAX,
};

struct proxy_module;
struct acl;

/* An uplink as the proxy sees it.  Entries are never freed before the module: sessions
 * point at them; an uplink removed by a reload is only marked absent. */
struct puplink {
	char *name;
	bool present;
	bool usable;
	int weight;
	struct connect_via via;
	struct addr tunnel;
	int tunnel_port;
	char dns_key[512];	/* what its resolvers are built from */
	unsigned dns_gen;	/* bumped when dns_key changes: the workers rebuild theirs */
	struct addr *dns_servers; /* none: the system's (resolv.conf) */
	size_t n_dns_servers;
	struct proxy_stats st;
	uint64_t reported_up, reported_down; /* what the bytes counter says */
	uint64_t reported_total, reported_failed; /* ... and the connection counters */
	uint64_t live_up, live_down; /* open connections' bytes, while a scrape adds them up */
	uint64_t rate_up, rate_down; /* bytes per second over the traffic sampler's last second */
	uint64_t sampled_up, sampled_down; /* its totals at that sample */
};

struct client {
	struct client *next;
	struct addr addr;
	struct proxy_stats st;
	uint64_t last_ms;
	struct proxy_stats reported; /* what the client metrics say (client_metrics) */
	uint64_t live_up, live_down; /* open connections' bytes, while a scrape adds them up */
};

/* A listening address; each worker has a socket of its own on it (SO_REUSEPORT). */
struct listener {
	struct proxy_module *pm;
	enum listener_kind kind;
	struct addr addr;
	int port;
};

#define LISTENERS_MAX 6

/*
 * A worker of the relay pool as the proxy sees it: its listening sockets, the sessions it
 * accepted run on its base (handshake, resolving, connecting, relaying), and its resolvers,
 * one evdns base per uplink, made on first use on its own thread.
 */
struct proxy_worker {
	struct proxy_module *pm;
	int idx;
	struct event_base *base;
	struct evconnlistener *l[LISTENERS_MAX]; /* pm->listeners[i]'s socket here */
	int fd[LISTENERS_MAX];			 /* before l[i] owns it; -1: none */
	struct evdns_base **dns;		 /* [uplink index] */
	unsigned *dns_gen;			 /* puplink dns_gen each was built for */
	size_t n_dns;
	uint64_t accepted, reported_accepted; /* connections accepted here (the metric) */
};

struct udp_assoc;

struct session {
	struct proxy_module *pm;
	struct proxy_worker *wk; /* the worker it was accepted on and runs on */
	struct session *prev, *next;
	enum listener_kind kind;
	enum sess_state state;
	int proto; /* enum proxy_proto, or -1 */
	bool http_connect; /* an HTTP CONNECT (else plain forwarding) */
	bool refused;	   /* by the ACL: it hears so once its request is complete */
	int fd;
	struct event *ev;    /* client readable, before the relay */
	struct event *timer; /* handshake deadline */
	uint8_t *buf;	     /* handshake bytes; freed at the hand-over */
	size_t n, cap;	     /* bytes in buf, its size (grown up to HTTP_HEAD_MAX) */
	struct addr client;
	uint16_t client_port;
	struct client *ce;
	struct proxy_target target;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct puplink *up;
	int tried[RACE_MAX]; /* tunnel mode: uplinks tried */
	int n_tried;
	struct evdns_getaddrinfo_request *dreq;
	struct connect_race *race;
	uint8_t *to_server; /* bytes for the upstream before relaying (HTTP head, early data) */
	size_t n_to_server;
	struct relay_http http; /* plain HTTP forwarding: the exchange the relay follows */
	uint8_t reply[64];
	size_t reply_len;
	struct relay_counters counters;
	uint64_t started_ms;
	int64_t started_wall_ms; /* the same, on the wall clock (for the API) */
	uint64_t id;		 /* 1, 2, ...: for the life of the module */
	struct udp_assoc *udp;
};

/* The API's traffic rates: totals sampled once a second, the last minute of them kept,
 * while someone asks (proxy_api.c). */
#define TRAFFIC_SAMPLES 61
struct traffic_sample {
	uint64_t ms;	    /* now_ms() */
	uint64_t up, down;  /* bytes, every uplink */
	uint64_t conns;	    /* connections established so far */
};

struct proxy_traffic {
	struct event *ev; /* the 1 s sampler; stopped when nobody asked for a minute */
	uint64_t asked_ms;
	struct traffic_sample s[TRAFFIC_SAMPLES]; /* a ring: s[head] is the newest */
	size_t n, head;
};

/*
 * Threads: the sessions run on the workers, the configuration, health events, metrics and API
 * on the main thread.  lock guards everything here that both touch (sessions, clients,
 * uplinks, dispatch, counters); it is recursive, as a callback libevent runs from inside a
 * call (a failed lookup, a freed resolver) takes it again.  The bytes of a session are
 * atomics (struct relay_counters) and read under the lock too.  The main thread never waits
 * for a worker while it holds the lock.
 */
struct proxy_module {
	pthread_mutex_t lock;
	struct event_base *base;
	const struct conf *conf;
	struct uplink_set *set;
	struct metrics *metrics;
	struct relay_pool *relay;
	struct dispatch *disp;
	struct srcroute *srcroute;
	struct listener listeners[LISTENERS_MAX];
	size_t n_listeners;
	struct proxy_worker *wk; /* one per relay worker */
	int n_wk;
	struct puplink **ups; /* index = dispatch index */
	size_t n_ups;
	struct session *sessions;
	size_t n_sessions;
	struct client *clients[CLIENT_BUCKETS];
	size_t n_clients;
	struct log_ratelimit rl;
	struct acl *acl;
	size_t n_refused; /* sessions of refused clients waiting to hear it */
	struct metric_family *m_active, *m_total, *m_failed, *m_bytes, *m_refused, *m_accepted;
	uint64_t refused_n[3], reported_refused[3]; /* by reason: refused_reasons[] */
	struct metric_family *mc_active, *mc_total, *mc_failed, *mc_bytes; /* per client */
	uint64_t refused_limit;
	uint64_t next_id;	   /* of the next session */
	int64_t started_wall_ms;   /* the module's start, wall clock */
	struct proxy_traffic traffic;
};

/* proxy.c */
#define PROXY_LOCK(pm) pthread_mutex_lock(&(pm)->lock)
#define PROXY_UNLOCK(pm) pthread_mutex_unlock(&(pm)->lock)
/* The resolvers of s's uplink on s's worker (made or remade here); NULL: none.  Locked. */
struct evdns_base *proxy_session_dns(struct session *s);
void proxy_session_free(struct session *s);
/* Tell the client the request failed (in its protocol) and end the session. */
void proxy_session_fail(struct session *s, int err, const char *what);
/* Write to the client's socket before the relay has it; <0 on error. */
int proxy_client_send(struct session *s, const void *p, size_t n);
/* Counting of a session that relays or holds a UDP association: begins, ends. */
void proxy_count_start(struct session *s);
void proxy_count_end(struct session *s);

/* Bytes of every uplink now, finished and open connections (walks the sessions): up[i] and
 * down[i] for pm->ups[i] (arrays of pm->n_ups, the caller's). */
void proxy_bytes_now(struct proxy_module *pm, uint64_t *up, uint64_t *down);

/* proxy_api.c: what the API and GET /api/modules show of the proxy */
struct proxy_conn_filter {
	const char *source;	 /* a substring of the client's address, or NULL */
	const char *destination; /* a substring of the destination address or name, or NULL */
	const char *uplink;	 /* an uplink's name, or NULL */
	size_t limit;		 /* at most this many connections listed */
};
/* The live connections, newest first: {"active_connections": [...], "total_count",
 * "limit", "matched"} (a new object, the caller's). */
json_t *proxy_connections_json(struct proxy_module *pm, const struct proxy_conn_filter *f);
/* Totals and rates (starts the sampler; the first rates come a second later). */
json_t *proxy_traffic_json(struct proxy_module *pm);
json_t *proxy_status_json(struct proxy_module *pm);
void proxy_traffic_stop(struct proxy_module *pm);
/* GET /api/connections and GET /api/traffic (api.h) */
#define PROXY_N_API_ROUTES 2
extern const struct api_route proxy_api_routes[PROXY_N_API_ROUTES];

/* udp_assoc.c */
/* SOCKS5 UDP ASSOCIATE for s (its request parsed): choose the uplink, open the relay
 * sockets, answer; the session then only holds the association open. */
void udp_assoc_start(struct session *s);
void udp_assoc_free(struct udp_assoc *a);

#endif
