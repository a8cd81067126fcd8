/*
 * proxy.c - the proxy module: listeners, sessions, uplink choice, hand-over to the relay.
 *
 * A session: accept -> (SOCKS/HTTP: read and parse the request, authenticate) ->
 * choose the uplink (dispatch.c: contention ratio over the usable uplinks, per-client
 * rules, affinity) -> resolve a host name through that uplink's resolvers -> connect,
 * racing a second uplink if the first is slow (connect.c) -> answer the client -> hand
 * both sockets to the relay (relay.c, splice on worker threads) -> count bytes and end.
 * Transparent sessions (REDIRECT, TPROXY) skip the parsing: the destination is the one the
 * client asked the network for.  Tunnel mode relays the client's bytes untouched to the
 * chosen uplink's upstream SOCKS proxy.
 *
 * SOCKS5 UDP associations are in udp_assoc.c; the structures both files share in
 * proxy_int.h.
 *
 * Threads.  Each relay worker (relay.c) has a socket of its own on every listening address
 * (SO_REUSEPORT: the kernel spreads new connections over them) and runs the sessions it
 * accepts from accept to end on its own event_base: handshake, uplink choice, resolving
 * (evdns bases per worker and uplink), connect racing, then the relay itself
 * (relay_start_local(): no hand-over).  The main thread keeps the configuration, the
 * uplinks' health events, the metrics (brought up to date when scraped) and the API.  What
 * both touch is under pm->lock (proxy_int.h), so the limits, ratios and counters are exact
 * across workers.  Bounds: max_connections overall, max_per_client per client address,
 * a handshake deadline, a head size limit (HTTP_HEAD_MAX), UDP associations' pending
 * lookups.  Malformed requests get the protocol's error reply and a rate-limited log line.
 * Clients: [proxy] allow (acl.h), checked at accept; a refused one hears it in its protocol
 * (session_refuse()), a transparent or tunnel one is reset.
 *
 * Must not block the loop; must not read a client's bytes past its request (they belong
 * to the upstream).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "acl.h"
#include "conf_keys.h"
#include "connect.h"
#include "dispatch.h"
#include "gateway.h"
#include "gateway_conf.h"
#include "httpproxy.h"
#include "log.h"
#include "module.h"
#include "metrics.h"
#include "policy_conf.h"
#include "proxy.h"
#include "proxy_conf.h"
#include "route_conf.h"
#include "proxy_int.h"
#include "relay.h"
#include "socks.h"
#include "srcroute.h"
#include "uplink.h"
#include "util.h"

/* <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h> pull in <linux/if.h>,
 * which clashes with <net/if.h>; the values are ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#define IP6T_SO_ORIGINAL_DST 80

#define HANDSHAKE_MS 10000   /* a client must have sent its request by then */
#define HANDSHAKE_BUF_FIRST 512 /* a SOCKS request fits; an HTTP head grows the buffer */
#define CLIENT_MAX 65536     /* client table entries (idle ones are evicted beyond) */
#define REFUSED_MAX 256	     /* refused clients waiting to hear it (more: reset at once) */

/* The label values of egress_proxy_refused_total, shown from the start. */
enum { REFUSED_MAX_CONNECTIONS, REFUSED_MAX_PER_CLIENT, REFUSED_ACL, _REFUSED_WHY_MAX };
static const char *const refused_reasons[_REFUSED_WHY_MAX] = {
	[REFUSED_MAX_CONNECTIONS] = "max_connections",
	[REFUSED_MAX_PER_CLIENT] = "max_per_client",
	[REFUSED_ACL] = "acl",
};

static const char *const listener_kind_name[_LISTEN_KIND_MAX] = {
	[LISTEN_PROXY] = "socks/http",
	[LISTEN_TUNNEL] = "tunnel",
	[LISTEN_REDIRECT] = "transparent",
	[LISTEN_TPROXY] = "tproxy",
};

static void session_connect(struct session *s);

/* ------------------------------------------------------------ clients */

static unsigned client_hash(const struct addr *a)
{
	const uint8_t *p = (const uint8_t *)&a->v6;
	size_t n = a->family == AF_INET ? 4 : 16;
	unsigned h = 2166136261u;

	if (a->family == AF_INET)
		p = (const uint8_t *)&a->v4;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % CLIENT_BUCKETS;
}

static void client_metrics_remove(struct proxy_module *pm, const struct client *c)
{
	struct metric_family *const f[] = {pm->mc_active, pm->mc_total, pm->mc_failed,
		pm->mc_bytes};
	char a[ADDR_STRLEN];

	if (!pm->mc_active)
		return;
	addr_str(&c->addr, a, sizeof(a));
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		metrics_remove_where(f[i], "client", a);
}

/* Drop idle clients that were last seen longest ago, until under the bound. */
static void clients_evict(struct proxy_module *pm)
{
	uint64_t cutoff = now_ms() - 60000;

	for (int pass = 0; pass < 2 && pm->n_clients >= CLIENT_MAX; pass++) {
		for (size_t b = 0; b < CLIENT_BUCKETS; b++) {
			struct client **pp = &pm->clients[b];
			while (*pp) {
				struct client *c = *pp;
				if (!c->st.active && (pass || c->last_ms < cutoff)) {
					*pp = c->next;
					client_metrics_remove(pm, c);
					free(c);
					pm->n_clients--;
				} else {
					pp = &c->next;
				}
			}
		}
	}
}

static struct client *client_get(struct proxy_module *pm, const struct addr *a)
{
	unsigned h = client_hash(a);
	struct client *c;

	for (c = pm->clients[h]; c; c = c->next)
		if (addr_eq(&c->addr, a))
			return c;
	if (pm->n_clients >= CLIENT_MAX)
		clients_evict(pm);
	c = xcalloc(1, sizeof(*c));
	c->addr = *a;
	c->next = pm->clients[h];
	pm->clients[h] = c;
	pm->n_clients++;
	return c;
}

/* ------------------------------------------------------------ uplinks */

static struct puplink *puplink_find(struct proxy_module *pm, const char *name)
{
	for (size_t i = 0; i < pm->n_ups; i++)
		if (streq(pm->ups[i]->name, name))
			return pm->ups[i];
	return NULL;
}

static int puplink_index(const struct proxy_module *pm, const struct puplink *up)
{
	for (size_t i = 0; i < pm->n_ups; i++)
		if (pm->ups[i] == up)
			return (int)i;
	return -1;
}

/* The resolvers of an uplink: its own `dns`, else [proxy] resolver, else resolv.conf;
 * queries leave from its source address (source routing takes them through it).  Only
 * remembered here: each worker builds its own (worker_dns()) when the key has changed. */
static void puplink_dns(struct proxy_module *pm, struct puplink *up, const struct conf_uplink *cu)
{
	const struct conf_proxy *p = conf_proxy(pm->conf);
	const struct addr_list *l = cu->dns.n ? &cu->dns : &p->resolvers;
	char key[sizeof(up->dns_key)], a[ADDR_STRLEN];
	size_t o = 0;

	addr_str(&up->via.source, a, sizeof(a));
	o += (size_t)snprintf(key + o, sizeof(key) - o, "%s;", addr_is_set(&up->via.source) ? a : "");
	for (size_t i = 0; i < l->n && o < sizeof(key); i++) {
		addr_str(&l->v[i].addr, a, sizeof(a));
		o += (size_t)snprintf(key + o, sizeof(key) - o, "%s,", a);
	}
	if (up->dns_gen && streq(key, up->dns_key))
		return;
	snprintf(up->dns_key, sizeof(up->dns_key), "%s", key);
	up->dns_gen++;
	free(up->dns_servers);
	up->dns_servers = xcalloc(l->n ? l->n : 1, sizeof(*up->dns_servers));
	for (size_t i = 0; i < l->n; i++)
		up->dns_servers[i] = l->v[i].addr;
	up->n_dns_servers = l->n;
}

/* A new evdns base for up on base (NULL on failure, logged). */
static struct evdns_base *dns_new(struct event_base *base, const struct puplink *up)
{
	struct evdns_base *dns;
	char a[ADDR_STRLEN];

	dns = evdns_base_new(base, up->n_dns_servers ? 0 : EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!dns) {
		log_warnx("proxy: uplink %s: no resolver (evdns)", up->name);
		return NULL;
	}
	for (size_t i = 0; i < up->n_dns_servers; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		addr_to_sockaddr(&up->dns_servers[i], 53, &ss, &len);
		evdns_base_nameserver_sockaddr_add(dns, (struct sockaddr *)&ss, len, 0);
	}
	if (addr_is_set(&up->via.source)) {
		addr_str(&up->via.source, a, sizeof(a));
		evdns_base_set_option(dns, "bind-to:", a);
	}
	evdns_base_set_option(dns, "timeout:", "2");
	evdns_base_set_option(dns, "attempts:", "2");
	evdns_base_set_option(dns, "randomize-case:", "0");
	return dns;
}

/* Worker wk's resolvers for uplink i, (re)made if its configuration changed.  On wk's thread,
 * locked: freeing an old base fails its pending lookups, whose callbacks lock again. */
static struct evdns_base *worker_dns(struct proxy_worker *wk, size_t i)
{
	struct proxy_module *pm = wk->pm;
	struct puplink *up = pm->ups[i];

	if (i >= wk->n_dns) {
		size_t n = pm->n_ups;
		wk->dns = xrealloc(wk->dns, n * sizeof(*wk->dns));
		wk->dns_gen = xrealloc(wk->dns_gen, n * sizeof(*wk->dns_gen));
		for (size_t k = wk->n_dns; k < n; k++) {
			wk->dns[k] = NULL;
			wk->dns_gen[k] = 0;
		}
		wk->n_dns = n;
	}
	if (wk->dns[i] && wk->dns_gen[i] == up->dns_gen)
		return wk->dns[i];
	if (wk->dns[i]) {
		struct evdns_base *old = wk->dns[i];
		wk->dns[i] = NULL;
		evdns_base_free(old, 1);
	}
	wk->dns[i] = dns_new(wk->base, up);
	wk->dns_gen[i] = up->dns_gen;
	return wk->dns[i];
}

struct evdns_base *proxy_session_dns(struct session *s)
{
	int i = puplink_index(s->pm, s->up);

	return i < 0 ? NULL : worker_dns(s->wk, (size_t)i);
}

/* Tell d the uplinks: index = position in pm->ups; absent ones get no weight. */
static void dispatch_uplinks(struct proxy_module *pm, struct dispatch *d)
{
	struct dispatch_uplink *dv = xcalloc(pm->n_ups ? pm->n_ups : 1, sizeof(*dv));

	for (size_t i = 0; i < pm->n_ups; i++)
		dv[i] = (struct dispatch_uplink){.name = pm->ups[i]->name,
			.weight = pm->ups[i]->present ? pm->ups[i]->weight : 0,
			.usable = pm->ups[i]->present && pm->ups[i]->usable};
	dispatch_set_uplinks(d, dv, pm->n_ups);
	free(dv);
}

/* Make the uplink table and dispatch follow the configuration and the uplinks' states. */
static void uplinks_sync(struct proxy_module *pm)
{
	const struct conf_balance *bal = conf_balance(pm->conf);
	size_t n = conf_n_uplinks(pm->conf);

	for (size_t i = 0; i < pm->n_ups; i++)
		pm->ups[i]->present = false;
	for (size_t i = 0; i < n; i++) {
		const struct conf_uplink *cu = conf_uplink_at(pm->conf, i);
		struct puplink *up = puplink_find(pm, cu->s.name);
		const struct uplink *u = uplink_find(pm->set, cu->s.name);

		if (conf_uplink_is_route_gateway(cu))
			continue;
		if (!up) {
			up = xcalloc(1, sizeof(*up));
			up->name = xstrdup(cu->s.name);
			pm->ups = xrealloc(pm->ups, (pm->n_ups + 1) * sizeof(*pm->ups));
			pm->ups[pm->n_ups++] = up;
		}
		up->present = true;
		up->weight = cu->weight;
		up->usable = u && uplink_worth_trying(u);
		up->via.uplink = puplink_index(pm, up);
		up->via.source = cu->source;
		up->via.mark = bal ? conf_uplink_mark(bal, cu, i) : 0;
		snprintf(up->via.ifname, sizeof(up->via.ifname), "%s", cu->interface);
		up->tunnel = cu->tunnel;
		up->tunnel_port = cu->tunnel_port;
		puplink_dns(pm, up, cu);
	}
	dispatch_uplinks(pm, pm->disp);
}

static void uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct proxy_module *pm = arg;
	struct puplink *up;

	PROXY_LOCK(pm);
	up = puplink_find(pm, u->name);
	if (ev == UPLINK_STATE && up) {
		up->usable = uplink_worth_trying(u);
		dispatch_set_usable(pm->disp, (size_t)puplink_index(pm, up), up->usable);
	} else if (ev != UPLINK_STATE) {
		uplinks_sync(pm);
	}
	PROXY_UNLOCK(pm);
}

static int rules_resolve_cb(const char *uplink, void *arg)
{
	struct proxy_module *pm = arg;
	struct addr a;

	/* "192.168.1.10:0" names the uplink by its source address (tunnel: its upstream) */
	if (dispatch_uplink_key(uplink, &a, NULL) < 0)
		return -1;
	for (size_t i = 0; i < pm->n_ups; i++)
		if (pm->ups[i]->present && (addr_eq(&pm->ups[i]->via.source, &a) ||
						   addr_eq(&pm->ups[i]->tunnel, &a)))
			return (int)i;
	return -1;
}

/* [client] sections and the client_rules file.  On error the old rules stay. */
static int rules_load(struct proxy_module *pm, const struct conf *conf)
{
	const struct conf_proxy *p = conf_proxy(conf);
	char *text = NULL, err[512] = "";
	size_t len = 0;
	int *w = xcalloc(pm->n_ups ? pm->n_ups : 1, sizeof(*w));
	int r = 0;

	if (p->client_rules) {
		FILE *f = fopen(p->client_rules, "re");
		if (!f) {
			r = -errno;
			log_error("proxy: client_rules %s: %s", p->client_rules, strerror(errno));
			goto out;
		}
		char chunk[4096];
		size_t got;
		while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
			text = xrealloc(text, len + got + 1);
			memcpy(text + len, chunk, got);
			len += got;
		}
		fclose(f);
	}
	if (text) {
		/* try the file on the side first: a bad file leaves the running rules alone */
		struct dispatch *trial = dispatch_new();
		dispatch_uplinks(pm, trial);
		r = dispatch_load_rules_json(trial, text, len, rules_resolve_cb, pm, err,
			sizeof(err));
		dispatch_free(trial);
		if (r < 0) {
			log_error("proxy: client_rules %s: %s", p->client_rules, err);
			goto out;
		}
	}
	dispatch_clear_rules(pm->disp);
	if (text)
		dispatch_load_rules_json(pm->disp, text, len, rules_resolve_cb, pm, err, sizeof(err));
	for (size_t i = 0; i < conf_n_clients(conf); i++) {
		const struct conf_client *c = conf_client_at(conf, i);
		memset(w, 0, (pm->n_ups ? pm->n_ups : 1) * sizeof(*w));
		for (size_t j = 0; j < c->ratio.n; j++) {
			char name[128];
			int weight, idx = -1;
			struct puplink *up;
			conf_ratio_parse(c->ratio.v[j], name, sizeof(name), &weight);
			up = puplink_find(pm, name);
			idx = up ? puplink_index(pm, up) : rules_resolve_cb(name, pm);
			if (idx >= 0)
				w[idx] = weight;
		}
		for (size_t j = 0; j < c->source.n; j++)
			dispatch_add_rule(pm->disp, &c->source.v[j], w, pm->n_ups, c->s.name);
	}
	dispatch_set_affinity(pm->disp, p->affinity_ms);
out:
	free(text);
	free(w);
	return r;
}

/* ------------------------------------------------------------ sessions */

static void session_log_fail(struct session *s, const char *what, int err)
{
	char c[ADDR_STRLEN], t[300];

	if (!log_ratelimit(&s->pm->rl))
		return;
	addr_str(&s->client, c, sizeof(c));
	if (s->state >= S_RESOLVE)
		proxy_target_str(&s->target, t, sizeof(t));
	else
		snprintf(t, sizeof(t), "-");
	log_warnx("proxy: client %s -> %s%s%s: %s%s%s", c, t, s->up ? " via " : "",
		s->up ? s->up->name : "", what, err ? ": " : "", err ? strerror(err) : "");
}

static void session_unlink(struct session *s)
{
	struct proxy_module *pm = s->pm;

	if (s->prev)
		s->prev->next = s->next;
	else if (pm->sessions == s)
		pm->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	pm->n_sessions--;
}

void proxy_session_free(struct session *s)
{
	if (!s)
		return;
	if (s->dreq)
		evdns_getaddrinfo_cancel(s->dreq);
	connect_race_cancel(s->race);
	udp_assoc_free(s->udp);
	if (s->ev)
		event_free(s->ev);
	if (s->timer)
		event_free(s->timer);
	if (s->fd >= 0)
		close(s->fd);
	if (s->refused)
		s->pm->n_refused--;
	if (s->ce && s->ce->st.active)
		s->ce->st.active--;
	if (s->ce)
		s->ce->last_ms = now_ms();
	free(s->buf);
	free(s->to_server);
	session_unlink(s);
	free(s);
}

/* Small replies: a fresh connection's send buffer always has room. */
int proxy_client_send(struct session *s, const void *p, size_t n)
{
	ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	return w == (ssize_t)n ? 0 : -EIO;
}

static uint8_t socks5_rep(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return SOCKS5_REFUSED;
	case ENETUNREACH:
		return SOCKS5_NET_UNREACH;
	case EHOSTUNREACH:
	case ETIMEDOUT:
	case ENOENT: /* name not found */
		return SOCKS5_HOST_UNREACH;
	case EACCES:
	case EPERM:
		return SOCKS5_NOT_ALLOWED;
	default:
		return SOCKS5_FAILURE;
	}
}

/* Tell the client the request failed (in its protocol) and end the session. */
void proxy_session_fail(struct session *s, int err, const char *what)
{
	uint8_t out[22];
	size_t n;

	session_log_fail(s, what, err);
	if (s->up)
		s->up->st.failed++; /* the metric catches up when scraped */
	if (s->ce)
		s->ce->st.failed++;
	if (s->kind == LISTEN_PROXY) {
		switch (s->proto) {
		case PROXY_PROTO_SOCKS5:
			if (s->state >= S_SOCKS5_REQUEST) {
				n = socks5_reply_build(socks5_rep(err), NULL, out);
				proxy_client_send(s, out, n);
			}
			break;
		case PROXY_PROTO_SOCKS4:
			n = socks4_reply_build(SOCKS4_REJECTED, NULL, out);
			proxy_client_send(s, out, n);
			break;
		case PROXY_PROTO_HTTP: {
			const char *resp = http_response(err == ETIMEDOUT ? 504 : 502);
			proxy_client_send(s, resp, strlen(resp));
			break;
		}
		}
	}
	proxy_session_free(s);
}

/* A session begins to count: connected and relaying, or a UDP association made. */
void proxy_count_start(struct session *s)
{
	s->up->st.active++;
	s->up->st.total++;
	if (s->ce)
		s->ce->st.total++; /* its active count went up at accept */
}

/* ... and ends: its bytes join its uplink's and its client's totals. */
void proxy_count_end(struct session *s)
{
	s->up->st.active--;
	s->up->st.bytes_up += s->counters.up;
	s->up->st.bytes_down += s->counters.down;
	if (s->ce) {
		s->ce->st.bytes_up += s->counters.up;
		s->ce->st.bytes_down += s->counters.down;
	}
}

static void session_relay_done_cb(void *arg, enum relay_end end, int err)
{
	struct session *s = arg;
	struct proxy_module *pm = s->pm;
	uint64_t up = s->counters.up, down = s->counters.down;

	PROXY_LOCK(pm);
	s->fd = -1; /* the relay closed it */
	if (s->up)
		proxy_count_end(s);
	if (end == RELAY_END_ERROR || end == RELAY_END_IDLE) {
		char c[ADDR_STRLEN];
		addr_str(&s->client, c, sizeof(c));
		log_debug("proxy: client %s via %s: %s%s%s after %" PRIu64 "/%" PRIu64 " bytes", c,
			s->up ? s->up->name : "-", relay_end_name[end], err ? ": " : "",
			err ? strerror(err) : "", up, down);
	}
	proxy_session_free(s);
	PROXY_UNLOCK(pm);
}

/* A plain HTTP request (not CONNECT) is being forwarded. */
static bool plain_http(const struct session *s)
{
	return s->kind == LISTEN_PROXY && s->proto == PROXY_PROTO_HTTP && !s->http_connect;
}

/* Connected: answer the client, then relay. */
static void session_relay(struct session *s, int fd)
{
	struct proxy_module *pm = s->pm;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int r;

	s->reply_len = 0;
	if (s->kind == LISTEN_PROXY) {
		/* the SOCKS replies carry the bound address; nothing else needs it */
		if (s->proto != PROXY_PROTO_HTTP &&
			getsockname(fd, (struct sockaddr *)&bound, &blen) < 0)
			memset(&bound, 0, sizeof(bound));
		if (s->proto == PROXY_PROTO_SOCKS5) {
			s->reply_len = socks5_reply_build(SOCKS5_OK, (struct sockaddr *)&bound,
				s->reply);
		} else if (s->proto == PROXY_PROTO_SOCKS4) {
			s->reply_len = socks4_reply_build(SOCKS4_GRANTED,
				bound.ss_family == AF_INET ? (struct sockaddr_in *)&bound : NULL,
				s->reply);
		} else if (s->proto == PROXY_PROTO_HTTP && s->http_connect) {
			const char *ok = http_response(200);
			s->reply_len = strlen(ok);
			memcpy(s->reply, ok, s->reply_len);
		}
	}
	/* an idle relayed connection holds no more than it needs: the handshake's events and
	 * buffer go (the relay watches the sockets from here) */
	event_free(s->ev);
	event_free(s->timer);
	s->ev = s->timer = NULL;
	s->state = S_RELAY;
	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
	r = relay_start_local(pm->relay, s->wk->idx, s->fd, fd, s->to_server, s->n_to_server,
		s->reply, s->reply_len, plain_http(s) ? &s->http : NULL, &s->counters,
		session_relay_done_cb, s);
	if (r < 0) {
		close(fd);
		proxy_session_fail(s, -r, "relay");
		return;
	}
	free(s->to_server);
	s->to_server = NULL;
	s->n_to_server = 0;
	s->fd = -1; /* the relay's now */
	proxy_count_start(s);
}

static void session_connected(struct session *s, int fd, int err, int uplink, int attempts);

static void session_connected_cb(int fd, int err, int uplink, int attempts, void *arg)
{
	struct session *s = arg;
	struct proxy_module *pm = s->pm;

	PROXY_LOCK(pm);
	session_connected(s, fd, err, uplink, attempts);
	PROXY_UNLOCK(pm);
}

static void session_connected(struct session *s, int fd, int err, int uplink, int attempts)
{
	s->race = NULL;
	if (uplink >= 0 && (size_t)uplink < s->pm->n_ups)
		s->up = s->pm->ups[uplink];
	if (fd < 0) {
		/* tunnel mode: each uplink has its own upstream; try the next one */
		if (s->kind == LISTEN_TUNNEL && s->n_tried < RACE_MAX) {
			session_log_fail(s, "upstream proxy", -err);
			session_connect(s);
			return;
		}
		proxy_session_fail(s, -err,
			attempts > 1 ? "connect (every uplink tried)" : "connect");
		return;
	}
	if (attempts > 1 && log_ratelimit(&s->pm->rl))
		log_debug("proxy: connect won by uplink %s after %d attempts", s->up->name,
			attempts);
	session_relay(s, fd);
}

/*
 * The uplinks to try, best first: the chosen one, then the others this client may use, by
 * its weights - a client that its rule keeps off an uplink must not leave through it just
 * because the first connect was slow.
 */
static size_t session_vias(struct session *s, int first, struct connect_via *v)
{
	struct proxy_module *pm = s->pm;
	int more[RACE_MAX - 1];
	size_t n = 0, k;

	v[n++] = pm->ups[first]->via;
	k = dispatch_candidates(pm->disp, &s->client, first, more, ARRAY_SIZE(more));
	for (size_t i = 0; i < k; i++)
		if ((size_t)more[i] < pm->n_ups)
			v[n++] = pm->ups[more[i]]->via;
	return n;
}

static void session_connect_addr(struct session *s)
{
	struct proxy_module *pm = s->pm;
	const struct conf_proxy *p = conf_proxy(pm->conf);
	struct connect_opts o = {.race_ms = p->connect_timeout_ms,
		.deadline_ms = p->connect_deadline_ms};
	struct connect_via v[RACE_MAX];
	size_t n;
	int r;

	s->state = S_CONNECT;
	n = session_vias(s, puplink_index(pm, s->up), v);
	r = connect_race_start(s->wk->base, (struct sockaddr *)&s->dst, s->dstlen, v, n, &o,
		session_connected_cb, s, &s->race);
	if (r < 0)
		proxy_session_fail(s, -r, "connect");
}

static void resolved(struct session *s, int result, struct evutil_addrinfo *res);

static void resolve_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct session *s = arg;
	struct proxy_module *pm;

	/* cancelled: libevent calls back on a later loop turn, when the session that
	 * cancelled it has been freed - touch nothing */
	if (result == EVUTIL_EAI_CANCEL) {
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	pm = s->pm; /* s may be freed by the time the lock is let go */
	PROXY_LOCK(pm);
	resolved(s, result, res);
	PROXY_UNLOCK(pm);
}

static void resolved(struct session *s, int result, struct evutil_addrinfo *res)
{
	struct evutil_addrinfo *pick = NULL;
	int want;

	s->dreq = NULL;
	want = s->up->via.source.family;
	if (result) {
		proxy_session_fail(s, result == EVUTIL_EAI_NONAME ? ENOENT : EHOSTUNREACH,
			evutil_gai_strerror(result));
		return;
	}
	/* an address of the uplink's family (a source address decides it), else the first */
	for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
		if (!pick && (!want || ai->ai_family == want))
			pick = ai;
	if (!pick)
		pick = res;
	memcpy(&s->dst, pick->ai_addr, pick->ai_addrlen);
	s->dstlen = (socklen_t)pick->ai_addrlen;
	if (s->dst.ss_family == AF_INET)
		((struct sockaddr_in *)&s->dst)->sin_port = htons(s->target.port);
	else
		((struct sockaddr_in6 *)&s->dst)->sin6_port = htons(s->target.port);
	evutil_freeaddrinfo(res);
	session_connect_addr(s);
}

static void session_connect(struct session *s)
{
	struct proxy_module *pm = s->pm;
	int exclude = s->n_tried ? s->tried[s->n_tried - 1] : -1;
	int i = dispatch_pick(pm->disp, &s->client, now_ms(), exclude);

	/* the request is complete: what the client sends now (a request body, its EOF)
	 * stays in the socket for the relay */
	event_del(s->ev);

	for (int k = 0; k < s->n_tried && i >= 0; k++)
		if (s->tried[k] == i)
			i = -1;
	if (i < 0) {
		proxy_session_fail(s, ENETUNREACH, "no usable uplink");
		return;
	}
	s->up = pm->ups[i];
	if (s->n_tried < RACE_MAX)
		s->tried[s->n_tried++] = i;
	if (s->kind == LISTEN_TUNNEL) {
		struct connect_opts o = {.race_ms = conf_proxy(pm->conf)->connect_deadline_ms,
			.deadline_ms = conf_proxy(pm->conf)->connect_deadline_ms};
		struct connect_via v = {.uplink = i};
		int r;
		s->state = S_CONNECT;
		addr_to_sockaddr(&s->up->tunnel, (uint16_t)s->up->tunnel_port, &s->dst, &s->dstlen);
		r = connect_race_start(s->wk->base, (struct sockaddr *)&s->dst, s->dstlen, &v, 1, &o,
			session_connected_cb, s, &s->race);
		if (r < 0)
			proxy_session_fail(s, -r, "connect");
		return;
	}
	if (s->target.kind == TARGET_ADDR) {
		memcpy(&s->dst, &s->target.addr, sizeof(s->dst));
		s->dstlen = s->dst.ss_family == AF_INET ? sizeof(struct sockaddr_in)
							: sizeof(struct sockaddr_in6);
		session_connect_addr(s);
		return;
	}
	struct evdns_base *dns = proxy_session_dns(s);
	if (!dns) {
		proxy_session_fail(s, EHOSTUNREACH, "no resolver");
		return;
	}
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP, .ai_flags = EVUTIL_AI_ADDRCONFIG};
	struct evdns_getaddrinfo_request *req;
	s->state = S_RESOLVE;
	req = evdns_getaddrinfo(dns, s->target.name, NULL, &hints, resolve_cb, s);
	/* evdns may answer at once (a literal, a cache hit, a name it refuses): then it
	 * returns NULL and the callback has run, and may have freed s */
	if (req)
		s->dreq = req;
}

/* ------------------------------------------------------------ request parsing */

static bool auth_required(const struct session *s)
{
	return conf_proxy(s->pm->conf)->username != NULL;
}

/* Bytes after the request are the client's first data for the upstream. */
static void keep_early_data(struct session *s, size_t consumed)
{
	if (s->n > consumed) {
		s->n_to_server = s->n - consumed;
		s->to_server = xmalloc(s->n_to_server);
		memcpy(s->to_server, s->buf + consumed, s->n_to_server);
	}
	s->n = 0;
}

static void consume(struct session *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->n - n);
	s->n -= n;
}

/* A short body says why: curl and browsers show it. */
#define HTTP_403_ACL_BODY "This proxy does not serve your address.\n"
static const char http_403_acl[] = "HTTP/1.1 403 Forbidden\r\n"
				   "Content-Type: text/plain\r\n"
				   "Content-Length: 40\r\n"
				   "Connection: close\r\n\r\n" HTTP_403_ACL_BODY;
_Static_assert(sizeof(HTTP_403_ACL_BODY) - 1 == 40, "Content-Length of http_403_acl");

/*
 * The ACL refused s's client (counted and logged at accept): now that its request is
 * complete, say so in its protocol and close.  Nothing of the request (but an HTTP body)
 * is left unread, so the close is a FIN behind the reply, not a reset that could destroy
 * it.  SOCKS5 refuses
 * the request with reply 0x02, "connection not allowed by ruleset" (RFC 1928 6), rather
 * than the greeting with method 0xFF: curl reports 0x02 as "Can't complete SOCKS5
 * connection ... (2)" with CURLPX_REPLY_NOT_ALLOWED, 0xFF as "No authentication method was
 * acceptable", which sends a user looking for a password problem.
 */
static void session_refuse(struct session *s)
{
	uint8_t out[22];
	const void *msg = out;
	size_t n = 0;

	switch (s->proto) {
	case PROXY_PROTO_SOCKS5:
		n = socks5_reply_build(SOCKS5_NOT_ALLOWED, NULL, out);
		break;
	case PROXY_PROTO_SOCKS4:
		n = socks4_reply_build(SOCKS4_REJECTED, NULL, out);
		break;
	case PROXY_PROTO_HTTP:
		msg = http_403_acl;
		n = sizeof(http_403_acl) - 1;
		break;
	}
	if (n)
		proxy_client_send(s, msg, n);
	proxy_session_free(s);
}

/* Parse what is in the buffer; 0: wait for more, <0: the session ended. */
static int session_parse(struct session *s)
{
	const struct conf_proxy *p = conf_proxy(s->pm->conf);
	uint8_t out[22];
	ssize_t r;

	for (;;) {
		switch (s->state) {
		case S_DETECT:
			if (!s->n)
				return 0;
			s->proto = proxy_detect(s->buf[0]);
			if (s->proto < 0) {
				proxy_session_fail(s, EPROTO, "not SOCKS or HTTP");
				return -1;
			}
			s->state = s->proto == PROXY_PROTO_SOCKS5 ? S_SOCKS5_GREETING
				   : s->proto == PROXY_PROTO_SOCKS4 ? S_SOCKS4_REQUEST
								    : S_HTTP_HEAD;
			break;
		case S_SOCKS5_GREETING: {
			struct socks5_greeting g;
			uint8_t method;
			r = socks5_greeting_parse(s->buf, s->n, &g);
			if (r <= 0)
				goto parsed;
			consume(s, (size_t)r);
			/* a refused client is not asked for a password: it is refused whatever
			 * it would say */
			method = auth_required(s) && !s->refused
					 ? (g.userpass ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_REFUSED)
					 : (g.none ? SOCKS5_METHOD_NONE : SOCKS5_METHOD_REFUSED);
			proxy_client_send(s, out, socks5_method_reply(method, out));
			if (method == SOCKS5_METHOD_REFUSED && s->refused) {
				proxy_session_free(s);
				return -1;
			}
			if (method == SOCKS5_METHOD_REFUSED) {
				proxy_session_fail(s, EACCES,
					"no acceptable authentication method");
				return -1;
			}
			s->state = method == SOCKS5_METHOD_USERPASS ? S_SOCKS5_AUTH
								    : S_SOCKS5_REQUEST;
			break;
		}
		case S_SOCKS5_AUTH: {
			struct socks5_auth a;
			bool ok;
			r = socks5_auth_parse(s->buf, s->n, &a);
			if (r <= 0)
				goto parsed;
			consume(s, (size_t)r);
			ok = streq(a.user, p->username) && streq(a.pass, p->password);
			explicit_bzero(&a, sizeof(a));
			proxy_client_send(s, out, socks5_auth_reply(ok, out));
			if (!ok) {
				proxy_session_fail(s, EACCES, "wrong username or password");
				return -1;
			}
			s->state = S_SOCKS5_REQUEST;
			break;
		}
		case S_SOCKS5_REQUEST: {
			struct socks5_request req = {0};
			r = socks5_request_parse(s->buf, s->n, &req);
			if (s->refused && (r > 0 || r == -ENOTSUP)) {
				session_refuse(s);
				return -1;
			}
			if (r == -ENOTSUP) {
				proxy_client_send(s, out,
					socks5_reply_build((uint8_t)req.reply, NULL, out));
				s->proto = -1; /* answered */
				proxy_session_fail(s, ENOTSUP,
					"unsupported command or address type");
				return -1;
			}
			if (r <= 0)
				goto parsed;
			s->target = req.target;
			if (req.cmd == SOCKS5_UDP_ASSOCIATE) {
				consume(s, (size_t)r);
				udp_assoc_start(s);
				return -1;
			}
			if (req.cmd != SOCKS5_CONNECT) {
				proxy_client_send(s, out,
					socks5_reply_build(SOCKS5_CMD_UNSUPPORTED, NULL, out));
				s->proto = -1; /* answered */
				proxy_session_fail(s, ENOTSUP, "BIND is not supported");
				return -1;
			}
			keep_early_data(s, (size_t)r);
			session_connect(s);
			return -1;
		}
		case S_SOCKS4_REQUEST: {
			struct socks4_request req = {0};
			r = socks4_request_parse(s->buf, s->n, &req);
			if (r <= 0)
				goto parsed;
			if (s->refused) {
				session_refuse(s);
				return -1;
			}
			s->target = req.target;
			if (req.cmd != 1 || auth_required(s)) {
				proxy_session_fail(s, auth_required(s) ? EACCES : ENOTSUP,
					auth_required(s) ? "SOCKS4 has no password: refused"
							 : "BIND is not supported");
				return -1;
			}
			keep_early_data(s, (size_t)r);
			session_connect(s);
			return -1;
		}
		case S_HTTP_HEAD: {
			struct http_request req = {0};
			r = http_request_parse(s->buf, s->n, &req);
			if (r <= 0) {
				int status = r == -E2BIG ? 431 : r == -ENOTSUP ? 501 : 400;
				http_request_clear(&req);
				if (r == 0)
					return 0;
				const char *resp = http_response(status);
				proxy_client_send(s, resp, strlen(resp));
				s->proto = -1; /* answered */
				proxy_session_fail(s, EPROTO, "bad HTTP request");
				return -1;
			}
			if (s->refused) {
				http_request_clear(&req);
				session_refuse(s);
				return -1;
			}
			if (auth_required(s) &&
				!http_basic_auth_ok(req.proxy_auth, p->username, p->password)) {
				const char *resp = http_response(407);
				http_request_clear(&req);
				proxy_client_send(s, resp, strlen(resp));
				s->proto = -1;
				proxy_session_fail(s, EACCES, "proxy authentication required");
				return -1;
			}
			s->target = req.target;
			s->http_connect = req.connect;
			if (req.connect) {
				keep_early_data(s, (size_t)r);
			} else {
				/* plain forwarding: the rewritten head, then what followed it, up
				 * to the end of the body: a request after it is not for this origin
				 * (the client will send it again on a new connection once this one
				 * closes; if it sends more here, the relay drops it); the relay
				 * follows the rest of the exchange (struct relay_http) */
				ssize_t rest;
				http_request_body(&req, &s->http.request);
				rest = http_body_feed(
					&s->http.request, s->buf + r, s->n - (size_t)r);
				if (rest < 0) {
					const char *resp = http_response(400);
					http_request_clear(&req);
					proxy_client_send(s, resp, strlen(resp));
					s->proto = -1; /* answered */
					proxy_session_fail(s, EPROTO, "bad HTTP request body");
					return -1;
				}
				s->http.head = !strcmp(req.method, "HEAD");
				s->http.http10 = req.http10;
				s->n_to_server = req.upstream_len + (size_t)rest;
				s->to_server = xmalloc(s->n_to_server);
				memcpy(s->to_server, req.upstream_head, req.upstream_len);
				memcpy(s->to_server + req.upstream_len, s->buf + r, (size_t)rest);
				s->n = 0;
			}
			http_request_clear(&req);
			session_connect(s);
			return -1;
		}
		default:
			return 0;
		}
	}
parsed:
	if (r == 0)
		return 0;
	proxy_session_fail(s, r == -E2BIG ? E2BIG : EPROTO, "malformed request");
	return -1;
}

static void client_read(struct session *s, ssize_t n, int err);

/*
 * The handshake's bytes are read before the lock is taken: s->buf, n and cap are this
 * worker's alone until the request is complete (the main thread lists relayed sessions
 * only).  Parsing, and what follows it, is locked.
 */
static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct proxy_module *pm = s->pm;
	ssize_t n = 0;
	int err = E2BIG;

	if (s->n < HTTP_HEAD_MAX) {
		if (s->n == s->cap) { /* grows as the request does, up to HTTP_HEAD_MAX */
			s->cap = s->cap ? MIN(s->cap * 2, (size_t)HTTP_HEAD_MAX)
					: HANDSHAKE_BUF_FIRST;
			s->buf = xrealloc(s->buf, s->cap);
		}
		/* peek-free: the buffer only holds the request and what came with it */
		n = recv(fd, s->buf + s->n, s->cap - s->n, MSG_DONTWAIT);
		err = n < 0 ? errno : 0;
		if (n < 0 && (err == EAGAIN || err == EINTR))
			return;
	}
	PROXY_LOCK(pm);
	client_read(s, n, err);
	PROXY_UNLOCK(pm);
}

/* n, err: what recv() said; err E2BIG with n 0: the buffer is full, nothing was read. */
static void client_read(struct session *s, ssize_t n, int err)
{
	if (err == E2BIG) {
		proxy_session_fail(s, E2BIG, "request too long");
		return;
	}
	if (n <= 0) {
		/* a client that goes away before its request is complete */
		if (s->kind == LISTEN_PROXY)
			s->proto = -1;
		proxy_session_fail(s, n == 0 ? 0 : err, n == 0 ? "closed during the handshake"
							  : "read");
		return;
	}
	s->n += (size_t)n;
	session_parse(s);
}

/* While resolving or connecting, the client's socket is not read; if it goes away, the
 * relay finds out.  The handshake timer covers a client that never finishes. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct proxy_module *pm = s->pm;

	PROXY_LOCK(pm);
	if (s->state < S_RESOLVE) {
		if (s->kind == LISTEN_PROXY && s->proto == PROXY_PROTO_HTTP)
			s->proto = -1;
		proxy_session_fail(s, ETIMEDOUT, "no complete request in time");
	}
	PROXY_UNLOCK(pm);
}

/* ------------------------------------------------------------ listeners */

static int original_dst(struct session *s, enum listener_kind kind)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int r;

	if (kind == LISTEN_TPROXY) {
		r = getsockname(s->fd, (struct sockaddr *)&ss, &len);
	} else {
		r = getsockopt(s->fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
		if (r < 0) {
			len = sizeof(ss);
			r = getsockopt(s->fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
		}
	}
	if (r < 0)
		return -errno;
	s->target.kind = TARGET_ADDR;
	memcpy(&s->target.addr, &ss, sizeof(ss));
	addr_from_sockaddr((struct sockaddr *)&ss, &(struct addr){0}, &s->target.port);
	return 0;
}

/* Close with a reset: a refused transparent or tunnel client, where we speak no protocol. */
static void close_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* A client the ACL refused at accept: counted and logged (rate-limited). */
static void acl_refused(struct proxy_module *pm, const struct listener *li,
	const struct addr *client, int ifindex, enum acl_verdict verdict)
{
	char c[ADDR_STRLEN], why[128];

	pm->refused_n[REFUSED_ACL]++;
	if (log_ratelimit(&pm->rl))
		log_warnx("proxy: client %s refused on the %s listener: %s",
			addr_str(client, c, sizeof(c)), listener_kind_name[li->kind],
			acl_reason(verdict, ifindex, why, sizeof(why)));
}

static void accepted(struct proxy_worker *wk, struct listener *li, int fd,
	const struct addr *client, uint16_t cport, int ifindex);

/* On wk's thread: a connection on one of its listening sockets. */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	int salen, void *arg)
{
	struct proxy_worker *wk = arg;
	struct proxy_module *pm = wk->pm;
	struct listener *li = NULL;
	struct addr client;
	uint16_t cport;
	int one = 1, ifindex;

	addr_from_sockaddr(sa, &client, &cport);
	addr_unmap_v4(&client);
	ifindex = acl_sock_ifindex(fd, sa->sa_family); /* the listener's family */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	PROXY_LOCK(pm);
	wk->accepted++;
	for (size_t i = 0; i < pm->n_listeners && !li; i++)
		if (wk->l[i] == l)
			li = &pm->listeners[i];
	if (li)
		accepted(wk, li, fd, &client, cport, ifindex);
	else /* cannot be: each of wk's listeners is one of pm's */
		close(fd);
	PROXY_UNLOCK(pm);
}

/* Admit or refuse a connection accepted on wk; start its session.  Locked. */
static void accepted(struct proxy_worker *wk, struct listener *li, int fd,
	const struct addr *clientp, uint16_t cport, int ifindex)
{
	struct proxy_module *pm = wk->pm;
	const struct conf_proxy *p = conf_proxy(pm->conf);
	struct addr client = *clientp;
	struct session *s;
	struct client *ce = NULL;
	enum acl_verdict verdict;

	verdict = acl_check(pm->acl, &client, ifindex);
	if (verdict != ACL_ALLOW) {
		/* not in the client table: an outsider makes no entry and no metric series */
		acl_refused(pm, li, &client, ifindex, verdict);
		if (li->kind != LISTEN_PROXY || pm->n_refused >= REFUSED_MAX ||
			pm->n_sessions >= (size_t)p->max_connections) {
			close_reset(fd);
			return;
		}
	} else {
		ce = client_get(pm, &client);
	}
	if (ce && (pm->n_sessions >= (size_t)p->max_connections ||
			  ce->st.active >= (uint64_t)p->max_per_client)) {
		char c[ADDR_STRLEN];
		int why = pm->n_sessions >= (size_t)p->max_connections ? REFUSED_MAX_CONNECTIONS
								       : REFUSED_MAX_PER_CLIENT;
		const char *limit = refused_reasons[why];
		pm->refused_limit++;
		pm->refused_n[why]++;
		if (log_ratelimit(&pm->rl)) {
			addr_str(&client, c, sizeof(c));
			log_warnx("proxy: client %s refused: %s reached", c, limit);
		}
		close(fd);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->pm = pm;
	s->wk = wk;
	s->fd = fd;
	s->kind = li->kind;
	s->proto = -1;
	s->client = client;
	s->client_port = cport;
	s->ce = ce;
	s->refused = verdict != ACL_ALLOW;
	pm->n_refused += s->refused;
	if (ce) {
		ce->st.active++;
		ce->last_ms = now_ms();
	}
	s->started_ms = now_ms();
	s->started_wall_ms = clock_wall_ms();
	s->id = ++pm->next_id;
	s->next = pm->sessions;
	if (pm->sessions)
		pm->sessions->prev = s;
	pm->sessions = s;
	pm->n_sessions++;
	s->ev = event_new(wk->base, fd, EV_READ | EV_PERSIST, client_read_cb, s);
	s->timer = evtimer_new(wk->base, timer_cb, s);
	switch (li->kind) {
	case LISTEN_PROXY:
		s->cap = HANDSHAKE_BUF_FIRST;
		s->buf = xmalloc(s->cap);
		event_add(s->ev, NULL);
		event_add(s->timer, &(struct timeval){HANDSHAKE_MS / 1000, 0});
		return;
	case LISTEN_TUNNEL:
		session_connect(s);
		return;
	case LISTEN_REDIRECT:
	case LISTEN_TPROXY: {
		int r = original_dst(s, li->kind);
		if (r < 0) {
			proxy_session_fail(s, -r, "original destination");
			return;
		}
		session_connect(s);
		return;
	}
	default:
		abort();
	}
}

static void listener_error_cb(struct evconnlistener *l, void *arg)
{
	struct proxy_worker *wk = arg;
	int e = EVUTIL_SOCKET_ERROR();

	/* EMFILE/ENFILE/ENOBUFS: libevent retries on the next readiness */
	PROXY_LOCK(wk->pm);
	if (log_ratelimit(&wk->pm->rl))
		log_warnx("proxy: worker %d: accept: %s", wk->idx, strerror(e));
	PROXY_UNLOCK(wk->pm);
}

/* A bound socket on a:port for one worker (SO_REUSEPORT: each worker has one); -errno. */
static int listener_socket(enum listener_kind kind, const struct addr *a, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, r;

	addr_to_sockaddr(a, (uint16_t)port, &ss, &len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		r = -errno;
		goto fail;
	}
	if (ss.ss_family == AF_INET6) {
		/* "::" serves both families, except transparent listeners, which open an IPv4
		 * socket of their own (SO_ORIGINAL_DST is per family) */
		int v6only = kind == LISTEN_REDIRECT || kind == LISTEN_TPROXY;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	}
	r = acl_sock_prepare(fd, ss.ss_family);
	if (r < 0)
		goto fail;
	if (kind == LISTEN_TPROXY) {
		r = ss.ss_family == AF_INET
			    ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))
			    : setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
		if (r < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

/* A listening address: a bound socket per worker, listening once listeners_start() ran. */
static int listener_open(struct proxy_module *pm, enum listener_kind kind, const struct addr *a,
	int port)
{
	size_t n = pm->n_listeners;
	struct listener *li = &pm->listeners[n];
	char buf[ADDR_STRLEN];
	int fd;

	if (n >= LISTENERS_MAX)
		return -ENOSPC;
	for (int w = 0; w < pm->n_wk; w++) {
		fd = listener_socket(kind, a, port);
		if (fd < 0) {
			while (w-- > 0) {
				close(pm->wk[w].fd[n]);
				pm->wk[w].fd[n] = -1;
			}
			return fd;
		}
		pm->wk[w].fd[n] = fd;
	}
	li->pm = pm;
	li->kind = kind;
	li->addr = *a;
	li->port = port;
	pm->n_listeners++;
	addr_str(a, buf, sizeof(buf));
	log_info("proxy: %s listener on [%s]:%d, a socket on each of %d workers",
		listener_kind_name[kind], buf, port, pm->n_wk);
	return 0;
}

/* On each worker's thread: listen on its sockets, accepting on its base. */
static void listeners_start_cb(int worker, struct event_base *base, void *arg)
{
	struct proxy_module *pm = arg;
	struct proxy_worker *wk = &pm->wk[worker];

	for (size_t i = 0; i < pm->n_listeners; i++) {
		if (wk->l[i] || wk->fd[i] < 0)
			continue;
		wk->l[i] = evconnlistener_new(base, accept_cb, wk, LEV_OPT_CLOSE_ON_FREE, 1024,
			wk->fd[i]);
		if (!wk->l[i]) {
			log_warnx("proxy: worker %d: cannot listen on the %s listener", worker,
				listener_kind_name[pm->listeners[i].kind]);
			close(wk->fd[i]);
		} else {
			evconnlistener_set_error_cb(wk->l[i], listener_error_cb);
		}
		wk->fd[i] = -1;
	}
}

/* On each worker's thread: close its listening sockets. */
static void listeners_stop_cb(int worker, struct event_base *base, void *arg)
{
	struct proxy_module *pm = arg;
	struct proxy_worker *wk = &pm->wk[worker];

	(void)base;
	for (size_t i = 0; i < LISTENERS_MAX; i++) {
		if (wk->l[i])
			evconnlistener_free(wk->l[i]);
		wk->l[i] = NULL;
		if (wk->fd[i] >= 0)
			close(wk->fd[i]);
		wk->fd[i] = -1;
	}
}

/* Not locked: waits for the workers. */
static void listeners_close(struct proxy_module *pm)
{
	if (pm->wk)
		relay_pool_each(pm->relay, listeners_stop_cb, pm);
	pm->n_listeners = 0;
}

/* Both families for a transparent port; the IPv6 one may be missing (no IPv6). */
static int listeners_transparent(struct proxy_module *pm, enum listener_kind kind, int port)
{
	struct addr any4, any6;
	int r;

	addr_parse("0.0.0.0", &any4);
	addr_parse("::", &any6);
	r = listener_open(pm, kind, &any4, port);
	if (r < 0)
		return r;
	if (listener_open(pm, kind, &any6, port) < 0)
		log_info("proxy: no IPv6 %s listener on port %d", listener_kind_name[kind], port);
	return 0;
}

static int listeners_open(struct proxy_module *pm, const struct conf *conf)
{
	const struct conf_proxy *p = conf_proxy(conf);
	const struct conf_gateway *g = conf_gateway(conf);
	int tport = p->transparent_port, xport = p->tproxy_port, r = 0;

	if (g && g->intercept == INTERCEPT_REDIRECT && !tport)
		tport = g->transparent_port;
	if (g && g->intercept == INTERCEPT_TPROXY && !xport)
		xport = g->transparent_port;
	if (p->port)
		r = listener_open(pm, p->tunnel ? LISTEN_TUNNEL : LISTEN_PROXY, &p->address,
			p->port);
	if (!r && tport)
		r = listeners_transparent(pm, LISTEN_REDIRECT, tport);
	if (!r && xport)
		r = listeners_transparent(pm, LISTEN_TPROXY, xport);
	if (r < 0) {
		log_error("proxy: cannot listen: %s", strerror(-r));
		listeners_close(pm);
		return r;
	}
	relay_pool_each(pm->relay, listeners_start_cb, pm);
	return 0;
}

/* Same listeners as now? */
static bool listeners_same(const struct conf *a, const struct conf *b)
{
	const struct conf_proxy *pa = conf_proxy(a), *pb = conf_proxy(b);
	const struct conf_gateway *ga = conf_gateway(a), *gb = conf_gateway(b);

	return pa->port == pb->port && addr_eq(&pa->address, &pb->address) &&
	       pa->tunnel == pb->tunnel && pa->transparent_port == pb->transparent_port &&
	       pa->tproxy_port == pb->tproxy_port && !ga == !gb &&
	       (!ga || (ga->intercept == gb->intercept &&
				ga->transparent_port == gb->transparent_port));
}

/* ------------------------------------------------------------ module */

/* Add to counter f what v has grown by since *reported (0 too: a client's series all show). */
static void counter_catch_up(struct metric_family *f, uint64_t v, uint64_t *reported,
	const char *client, const char *direction)
{
	double grown = v > *reported ? (double)(v - *reported) : 0;

	if (direction)
		metrics_counter_add(f, grown, client, direction);
	else
		metrics_counter_add(f, grown, client);
	*reported = MAX(*reported, v);
}

/* The client table into egress_proxy_client_* (live_up/down filled by scrape_cb). */
static void client_metrics_scrape(struct proxy_module *pm)
{
	for (size_t b = 0; b < CLIENT_BUCKETS; b++)
		for (struct client *c = pm->clients[b]; c; c = c->next) {
			struct proxy_stats *rep = &c->reported;
			char a[ADDR_STRLEN];

			addr_str(&c->addr, a, sizeof(a));
			metrics_gauge_set(pm->mc_active, (double)c->st.active, a);
			counter_catch_up(pm->mc_total, c->st.total, &rep->total, a, NULL);
			counter_catch_up(pm->mc_failed, c->st.failed, &rep->failed, a, NULL);
			counter_catch_up(pm->mc_bytes, c->st.bytes_up + c->live_up, &rep->bytes_up, a,
				"up");
			counter_catch_up(pm->mc_bytes, c->st.bytes_down + c->live_down,
				&rep->bytes_down, a, "down");
			c->live_up = c->live_down = 0;
		}
}

static void scrape_cb(struct metrics *m, void *arg)
{
	struct proxy_module *pm = arg;

	(void)m;
	PROXY_LOCK(pm);
	/* the workers count; the metrics catch up here, on the main thread */
	for (size_t i = 0; i < pm->n_ups; i++) {
		struct puplink *up = pm->ups[i];

		if (up->st.total) /* the series appears with the uplink's first connection */
			metrics_gauge_set(pm->m_active, (double)up->st.active, up->name);
		if (up->st.total > up->reported_total)
			metrics_counter_add(pm->m_total, (double)(up->st.total - up->reported_total),
				up->name);
		if (up->st.failed > up->reported_failed)
			metrics_counter_add(pm->m_failed,
				(double)(up->st.failed - up->reported_failed), up->name);
		up->reported_total = up->st.total;
		up->reported_failed = up->st.failed;
	}
	for (size_t i = 0; i < _REFUSED_WHY_MAX; i++) {
		metrics_counter_add(pm->m_refused, (double)(pm->refused_n[i] -
			pm->reported_refused[i]), refused_reasons[i]);
		pm->reported_refused[i] = pm->refused_n[i];
	}
	for (int w = 0; w < pm->n_wk; w++) {
		struct proxy_worker *wk = &pm->wk[w];
		char label[16];

		snprintf(label, sizeof(label), "%d", w);
		metrics_counter_add(pm->m_accepted, (double)(wk->accepted - wk->reported_accepted),
			label);
		wk->reported_accepted = wk->accepted;
	}
	/* bytes of the connections still open, so a long download shows while it runs */
	for (struct session *s = pm->sessions; s; s = s->next) {
		if (s->state != S_RELAY && s->state != S_UDP)
			continue;
		s->up->live_up += s->counters.up;
		s->up->live_down += s->counters.down;
		if (s->ce) {
			s->ce->live_up += s->counters.up;
			s->ce->live_down += s->counters.down;
		}
	}
	for (size_t i = 0; i < pm->n_ups; i++) {
		struct puplink *up = pm->ups[i];
		uint64_t live_up = up->st.bytes_up + up->live_up;
		uint64_t live_down = up->st.bytes_down + up->live_down;

		up->live_up = up->live_down = 0;
		if (live_up > up->reported_up)
			metrics_counter_add(pm->m_bytes, (double)(live_up - up->reported_up),
				up->name, "up");
		if (live_down > up->reported_down)
			metrics_counter_add(pm->m_bytes, (double)(live_down - up->reported_down),
				up->name, "down");
		up->reported_up = MAX(up->reported_up, live_up);
		up->reported_down = MAX(up->reported_down, live_down);
	}
	if (pm->mc_active)
		client_metrics_scrape(pm);
	PROXY_UNLOCK(pm);
}

static void client_metrics_drop(struct proxy_module *pm)
{
	if (!pm->mc_active)
		return;
	metrics_clear(pm->mc_active);
	metrics_clear(pm->mc_total);
	metrics_clear(pm->mc_failed);
	metrics_clear(pm->mc_bytes);
	pm->mc_active = pm->mc_total = pm->mc_failed = pm->mc_bytes = NULL;
}

/* The egress_proxy_client_* families while client_metrics is on; off: their series go. */
static void client_metrics_setup(struct proxy_module *pm)
{
	struct metrics *m = pm->metrics;
	bool on = m && conf_proxy(pm->conf)->client_metrics;

	if (on && !pm->mc_active) {
		metrics_gauge_new(m, "egress_proxy_client_connections_active",
			"Proxied connections open now, per client address", METRICS_LABELS("client"),
			&pm->mc_active);
		metrics_counter_new(m, "egress_proxy_client_connections_total",
			"Proxied connections established, per client address",
			METRICS_LABELS("client"), &pm->mc_total);
		metrics_counter_new(m, "egress_proxy_client_connect_failures_total",
			"Requests the proxy could not connect, per client address",
			METRICS_LABELS("client"), &pm->mc_failed);
		metrics_counter_new(m, "egress_proxy_client_bytes_total",
			"Bytes relayed per client address and direction (up: client to server), open "
			"connections included",
			METRICS_LABELS("client", "direction"), &pm->mc_bytes);
		for (size_t b = 0; b < CLIENT_BUCKETS; b++)
			for (struct client *c = pm->clients[b]; c; c = c->next)
				memset(&c->reported, 0, sizeof(c->reported));
	} else if (!on) {
		client_metrics_drop(pm);
	}
}


static void metrics_setup(struct proxy_module *pm)
{
	struct metrics *m = pm->metrics;

	if (!m)
		return;
	metrics_gauge_new(m, "egress_proxy_connections_active",
		"Proxied connections open now, per uplink", METRICS_LABELS("uplink"),
		&pm->m_active);
	metrics_counter_new(m, "egress_proxy_connections_total",
		"Proxied connections established, per uplink", METRICS_LABELS("uplink"),
		&pm->m_total);
	metrics_counter_new(m, "egress_proxy_connect_failures_total",
		"Connections the proxy could not establish, per uplink that was tried last",
		METRICS_LABELS("uplink"), &pm->m_failed);
	metrics_counter_new(m, "egress_proxy_bytes_total",
		"Bytes relayed per uplink and direction (up: client to server), open connections "
		"included",
		METRICS_LABELS("uplink", "direction"), &pm->m_bytes);
	metrics_counter_new(m, "egress_proxy_refused_total",
		"Connections refused at accept: max_connections or max_per_client reached, or "
		"the client not admitted by [proxy] allow (acl)",
		METRICS_LABELS("reason"), &pm->m_refused);
	metrics_counter_new(m, "egress_proxy_accepted_total",
		"Connections accepted, per worker thread (each has a listening socket of its own)",
		METRICS_LABELS("worker"), &pm->m_accepted);
	if (pm->m_refused)
		for (size_t i = 0; i < ARRAY_SIZE(refused_reasons); i++)
			metrics_counter_add(pm->m_refused, 0, refused_reasons[i]);
	for (int w = 0; pm->m_accepted && w < pm->n_wk; w++) {
		char label[16];

		snprintf(label, sizeof(label), "%d", w);
		metrics_counter_add(pm->m_accepted, 0, label);
	}
	client_metrics_setup(pm);
	metrics_on_scrape(m, scrape_cb, pm);
}

int proxy_uplink_stats(struct proxy_module *pm, const char *uplink, struct proxy_stats *ret)
{
	struct puplink *up;

	PROXY_LOCK(pm);
	up = puplink_find(pm, uplink);
	if (!up) {
		PROXY_UNLOCK(pm);
		return -ENOENT;
	}
	*ret = up->st;
	for (struct session *s = pm->sessions; s; s = s->next)
		if (s->up == up && (s->state == S_RELAY || s->state == S_UDP)) {
			ret->bytes_up += s->counters.up;
			ret->bytes_down += s->counters.down;
		}
	PROXY_UNLOCK(pm);
	return 0;
}

void proxy_bytes_now(struct proxy_module *pm, uint64_t *up, uint64_t *down)
{
	for (size_t i = 0; i < pm->n_ups; i++) {
		up[i] = pm->ups[i]->st.bytes_up;
		down[i] = pm->ups[i]->st.bytes_down;
	}
	for (struct session *s = pm->sessions; s; s = s->next) {
		if (s->state != S_RELAY && s->state != S_UDP)
			continue;
		up[s->up->via.uplink] += s->counters.up;
		down[s->up->via.uplink] += s->counters.down;
	}
}

/* evdns talks about its nameservers on stderr unless told where */
static void evdns_log_cb(int is_warn, const char *msg)
{
	if (is_warn)
		log_info("proxy: resolver: %s", msg);
	else
		log_debug("proxy: resolver: %s", msg);
}

int proxy_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct metrics *metrics, struct proxy_module **ret)
{
	const struct conf_proxy *p = conf_proxy(conf);
	struct proxy_module *pm = xcalloc(1, sizeof(*pm));
	struct relay_opts ro = {.workers = p->workers, .idle_timeout_ms = p->idle_timeout_ms};
	pthread_mutexattr_t ma;
	int r;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&pm->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pm->base = base;
	pm->conf = conf;
	pm->set = set;
	pm->metrics = metrics;
	pm->started_wall_ms = clock_wall_ms();
	pm->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 20);
	pm->disp = dispatch_new();
	evdns_set_log_fn(evdns_log_cb);
	r = relay_pool_new(base, &ro, &pm->relay);
	if (r < 0) {
		log_error("proxy: relay: %s", strerror(-r));
		goto fail;
	}
	pm->n_wk = relay_pool_workers(pm->relay);
	pm->wk = xcalloc((size_t)pm->n_wk, sizeof(*pm->wk));
	for (int w = 0; w < pm->n_wk; w++) {
		pm->wk[w].pm = pm;
		pm->wk[w].idx = w;
		pm->wk[w].base = relay_pool_worker_base(pm->relay, w);
		for (size_t i = 0; i < LISTENERS_MAX; i++)
			pm->wk[w].fd[i] = -1;
	}
	r = acl_new(set, &pm->acl);
	if (r >= 0)
		r = acl_set_allow(pm->acl, &p->allow);
	if (r >= 0)
		r = acl_follow(pm->acl, base);
	if (r < 0) {
		log_error("proxy: client ACL: %s", strerror(-r));
		goto fail;
	}
	uplinks_sync(pm); /* no worker has a session yet: no lock needed until the listeners */
	r = rules_load(pm, conf);
	if (r < 0)
		goto fail;
	r = srcroute_new(base, conf, &pm->srcroute);
	if (r < 0)
		goto fail;
	r = listeners_open(pm, conf);
	if (r < 0)
		goto fail;
	uplink_set_subscribe(set, uplink_cb, pm);
	metrics_setup(pm);
	*ret = pm;
	return 0;
fail:
	proxy_module_free(pm);
	return r;
}

int proxy_module_reconf(struct proxy_module *pm, const struct conf *conf)
{
	const struct conf *old = pm->conf;
	int r;

	/*
	 * The new configuration is ours from here on, even when a part of it cannot be
	 * applied: the daemon frees the old one once every module has had the new one.  A
	 * client_rules file that cannot be read or parsed leaves the running rules in place
	 * (rules_load tries it on the side) and the rest of the reload applies.
	 */
	PROXY_LOCK(pm);
	pm->conf = conf;
	uplinks_sync(pm);
	r = rules_load(pm, conf);
	srcroute_reconf(pm->srcroute, conf);
	acl_set_allow(pm->acl, &conf_proxy(conf)->allow); /* validated: cannot fail */
	client_metrics_setup(pm);
	PROXY_UNLOCK(pm);
	if (!listeners_same(old, conf)) { /* unlocked: the workers close and open them */
		listeners_close(pm);
		int e = listeners_open(pm, conf);
		r = r < 0 ? r : e;
	}
	return r;
}

void proxy_module_free(struct proxy_module *pm)
{
	if (!pm)
		return;
	uplink_set_unsubscribe(pm->set, uplink_cb, pm);
	proxy_traffic_stop(pm);
	if (pm->metrics && pm->m_bytes)
		metrics_on_scrape_remove(pm->metrics, scrape_cb, pm);
	client_metrics_drop(pm); /* the client table goes, and its series with it */
	/* the workers stop first: then this thread may free what ran on their bases */
	relay_pool_stop(pm->relay);
	listeners_close(pm);
	while (pm->sessions) {
		struct session *s = pm->sessions;
		if (s->state == S_RELAY)
			s->fd = -1; /* the relay's: it closes it without calling back */
		proxy_session_free(s);
	}
	for (int w = 0; w < pm->n_wk; w++) {
		for (size_t i = 0; i < pm->wk[w].n_dns; i++)
			if (pm->wk[w].dns[i])
				evdns_base_free(pm->wk[w].dns[i], 0);
		free(pm->wk[w].dns);
		free(pm->wk[w].dns_gen);
	}
	free(pm->wk);
	pm->wk = NULL;
	relay_pool_free(pm->relay);
	srcroute_free(pm->srcroute, false);
	for (size_t i = 0; i < pm->n_ups; i++) {
		free(pm->ups[i]->dns_servers);
		free(pm->ups[i]->name);
		free(pm->ups[i]);
	}
	free(pm->ups);
	for (size_t b = 0; b < CLIENT_BUCKETS; b++)
		while (pm->clients[b]) {
			struct client *c = pm->clients[b];
			pm->clients[b] = c->next;
			free(c);
		}
	dispatch_free(pm->disp);
	acl_free(pm->acl);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* The module as the daemon sees it (module.h): runs while conf has [proxy].  It comes
 * before gateway mode in the table: it listens before gateway mode sends anything its way. */
static bool proxy_wanted_cb(const struct conf *conf)
{
	return conf_proxy(conf) != NULL;
}

static int proxy_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct proxy_module *m = NULL;
	int r = proxy_module_new(env->base, conf, env->uplinks, env->metrics, &m);

	*ret = m;
	return r;
}

static int proxy_reconf_cb(void *m, const struct conf *conf)
{
	return proxy_module_reconf(m, conf);
}

static void proxy_free_cb(void *m)
{
	proxy_module_free(m);
}

static json_t *proxy_status_cb(void *m)
{
	return proxy_status_json(m);
}

static int proxy_uplink_traffic_cb(void *m, const char *name, struct module_traffic *ret)
{
	struct proxy_stats st;
	int r = proxy_uplink_stats(m, name, &st);

	if (r < 0)
		return r;
	*ret = (struct module_traffic){.bytes_up = st.bytes_up, .bytes_down = st.bytes_down,
		.connections_active = st.active, .connections_total = st.total};
	return 0;
}

static const struct conf_section_type *const proxy_conf_types[] = {
	&conf_proxy_type,
	&conf_client_type,
};

const struct module module_proxy = {
	.name = "proxy",
	.conf_types = proxy_conf_types,
	.n_conf_types = ARRAY_SIZE(proxy_conf_types),
	.wanted = proxy_wanted_cb,
	.new = proxy_new_cb,
	.reconf = proxy_reconf_cb,
	.free = proxy_free_cb,
	.status = proxy_status_cb,
	.api_routes = proxy_api_routes,
	.n_api_routes = ARRAY_SIZE(proxy_api_routes),
	.uplink_traffic = proxy_uplink_traffic_cb,
};
