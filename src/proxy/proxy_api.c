/*
 * proxy_api.c - what the proxy shows an operator: its live connections, its traffic and its
 * status, in the JSON shapes of go-dispatch-proxy's gateway-mode fork where it has one
 * (GET /api/connections, GET /api/traffic), plus the names of our model (uplink, age).
 *
 * Threads.  A session runs on a worker from accept to end, but it is on the module's list
 * (pm->sessions) all along, under pm->lock; the relay adds to the session's relay_counters
 * (relaxed atomics).  So a table of live connections is one walk of that list on the main
 * thread under the lock, reading the counters as they are: no message to a worker, nothing
 * added to the relay's work.  The walk is bounded by max_connections; what is listed, by the
 * request's limit.
 *
 * Must not block the loop or keep a pointer to a session past the call.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api.h"
#include "proxy_conf.h"
#include "proxy_int.h"
#include "util.h"

#define TRAFFIC_PERIOD_MS 1000
#define TRAFFIC_IDLE_MS	  60000 /* the sampler stops when nobody asked this long */

static const char *const listener_kind_api[_LISTEN_KIND_MAX] = {
	[LISTEN_PROXY] = "proxy",
	[LISTEN_TUNNEL] = "tunnel",
	[LISTEN_REDIRECT] = "transparent",
	[LISTEN_TPROXY] = "tproxy",
};

/* What the fork calls a connection's load balancer: the uplink's local address (tunnel mode:
 * its upstream proxy, ADDR:PORT), else its name. */
static void load_balancer_str(const struct puplink *up, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	if (addr_is_set(&up->tunnel)) {
		addr_str(&up->tunnel, a, sizeof(a));
		snprintf(buf, len, up->tunnel.family == AF_INET6 ? "[%s]:%d" : "%s:%d", a,
			up->tunnel_port);
	} else if (addr_is_set(&up->via.source)) {
		addr_str(&up->via.source, buf, len);
	} else {
		snprintf(buf, len, "%s", up->name);
	}
}

/* "socks5", "http", "transparent", ...: how the client reached us. */
static const char *session_kind(const struct session *s)
{
	if (s->kind == LISTEN_PROXY && s->proto >= 0 && s->proto < _PROXY_PROTO_MAX)
		return proxy_proto_name[s->proto];
	return listener_kind_api[s->kind];
}

struct conn_view {
	char client[ADDR_STRLEN], dst[ADDR_STRLEN];
	uint16_t dst_port;
	const char *host; /* the name the client asked for, or NULL */
};

static void conn_view(const struct session *s, struct conn_view *v)
{
	struct addr a;

	addr_str(&s->client, v->client, sizeof(v->client));
	v->dst[0] = '\0';
	v->dst_port = 0;
	v->host = s->target.kind == TARGET_NAME ? s->target.name : NULL;
	if (s->state == S_RELAY && s->dstlen &&
		addr_from_sockaddr((const struct sockaddr *)&s->dst, &a, &v->dst_port) == 0) {
		addr_unmap_v4(&a);
		addr_str(&a, v->dst, sizeof(v->dst));
	}
}

static bool conn_match(const struct conn_view *v, const struct proxy_conn_filter *f)
{
	if (f->source && !strstr(v->client, f->source))
		return false;
	return !f->destination || strstr(v->dst, f->destination) ||
	       (v->host && strstr(v->host, f->destination));
}

static json_t *conn_json(const struct session *s, const struct conn_view *v, uint64_t now,
	int64_t wall_now)
{
	uint64_t up = atomic_load_explicit(&s->counters.up, memory_order_relaxed);
	uint64_t down = atomic_load_explicit(&s->counters.down, memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&s->counters.last_ms, memory_order_relaxed);
	char id[24], lb[ADDR_STRLEN + 8], start[TIME_ISO_STRLEN], active[TIME_ISO_STRLEN];
	int64_t last_wall;
	json_t *o;

	/* UDP associations (not timed by the relay) and relays that moved nothing yet: their start */
	last_wall = last && last <= now ? wall_now - (int64_t)(now - last) : s->started_wall_ms;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)s->id);
	load_balancer_str(s->up, lb, sizeof(lb));
	o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:s, s:I, s:I, s:s, s:s}",
		"id", id, "source_ip", v->client, "source_port", (int)s->client_port,
		"destination_ip", v->dst, "destination_port", (int)v->dst_port,
		"load_balancer", lb, "lb_index", s->up->via.uplink,
		"start_time", time_iso(s->started_wall_ms, start, sizeof(start)),
		"last_activity", time_iso(last_wall, active, sizeof(active)),
		/* the fork's "in" is what the client receives, "out" what it sends */
		"bytes_in", (json_int_t)down, "bytes_out", (json_int_t)up,
		"status", "active", "protocol", s->state == S_UDP ? "UDP" : "TCP");
	json_object_set_new(o, "uplink", json_string(s->up->name));
	json_object_set_new(o, "kind", json_string(session_kind(s)));
	json_object_set_new(o, "host", v->host ? json_string(v->host) : json_null());
	json_object_set_new(o, "age", json_real((double)(now - s->started_ms) / 1000.0));
	return o;
}

static json_t *connections_json(struct proxy_module *pm, const struct proxy_conn_filter *f)
{
	json_t *list = json_array();
	uint64_t now = now_ms();
	int64_t wall_now = clock_wall_ms();
	size_t matched = 0;

	for (const struct session *s = pm->sessions; s; s = s->next) {
		struct conn_view v;

		if (s->state != S_RELAY && s->state != S_UDP)
			continue; /* not connected yet: no uplink carries it */
		if (f->uplink && !streq(s->up->name, f->uplink))
			continue;
		/* the addresses as text only where a filter or the list needs them */
		if (!f->source && !f->destination && matched >= f->limit) {
			matched++;
			continue;
		}
		conn_view(s, &v);
		if (!conn_match(&v, f))
			continue;
		if (matched++ < f->limit)
			json_array_append_new(list, conn_json(s, &v, now, wall_now));
	}
	return json_pack("{s:o, s:I, s:I, s:I}", "active_connections", list, "total_count",
		(json_int_t)json_array_size(list), "limit", (json_int_t)f->limit, "matched",
		(json_int_t)matched);
}

/* ------------------------------------------------------------ traffic */

static struct traffic_sample *sample_at(struct proxy_traffic *t, size_t age)
{
	return &t->s[(t->head + TRAFFIC_SAMPLES - age) % TRAFFIC_SAMPLES];
}

/* Take a sample of the totals; each uplink's rate over the last period. */
static void traffic_sample(struct proxy_module *pm)
{
	struct proxy_traffic *t = &pm->traffic;
	uint64_t *up = xcalloc(pm->n_ups ? pm->n_ups : 1, sizeof(*up));
	uint64_t *down = xcalloc(pm->n_ups ? pm->n_ups : 1, sizeof(*down));
	uint64_t now = now_ms();
	struct traffic_sample *prev = t->n ? sample_at(t, 0) : NULL;
	struct traffic_sample cur = {.ms = now};

	proxy_bytes_now(pm, up, down);
	for (size_t i = 0; i < pm->n_ups; i++) {
		struct puplink *u = pm->ups[i];
		uint64_t dt = prev ? now - prev->ms : 0;

		cur.up += up[i];
		cur.down += down[i];
		cur.conns += u->st.total;
		u->rate_up = dt && up[i] >= u->sampled_up ? (up[i] - u->sampled_up) * 1000 / dt : 0;
		u->rate_down = dt && down[i] >= u->sampled_down
				       ? (down[i] - u->sampled_down) * 1000 / dt
				       : 0;
		u->sampled_up = up[i];
		u->sampled_down = down[i];
	}
	t->head = t->n ? (t->head + 1) % TRAFFIC_SAMPLES : 0;
	t->s[t->head] = cur;
	t->n = MIN(t->n + 1, (size_t)TRAFFIC_SAMPLES);
	free(up);
	free(down);
}

static void traffic_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_module *pm = arg;

	(void)fd;
	(void)what;
	if (now_ms() - pm->traffic.asked_ms >= TRAFFIC_IDLE_MS) {
		proxy_traffic_stop(pm);
		return;
	}
	PROXY_LOCK(pm);
	traffic_sample(pm);
	PROXY_UNLOCK(pm);
}

void proxy_traffic_stop(struct proxy_module *pm)
{
	struct proxy_traffic *t = &pm->traffic;

	if (t->ev)
		event_free(t->ev);
	t->ev = NULL;
	t->n = t->head = 0;
}

static void traffic_start(struct proxy_module *pm)
{
	struct proxy_traffic *t = &pm->traffic;
	struct timeval tv = {TRAFFIC_PERIOD_MS / 1000, (TRAFFIC_PERIOD_MS % 1000) * 1000};

	t->asked_ms = now_ms();
	if (t->ev)
		return;
	t->ev = event_new(pm->base, -1, EV_PERSIST, traffic_cb, pm);
	if (!t->ev || event_add(t->ev, &tv) < 0) {
		proxy_traffic_stop(pm);
		return;
	}
	traffic_sample(pm);
}

/* Per second between the newest sample and the one age periods older (or the oldest). */
static uint64_t rate(struct proxy_traffic *t, size_t age, size_t field)
{
	struct traffic_sample *a, *b;
	uint64_t va, vb;

	if (t->n < 2)
		return 0;
	a = sample_at(t, MIN(age, t->n - 1));
	b = sample_at(t, 0);
	va = field == 0 ? a->up : field == 1 ? a->down : a->conns;
	vb = field == 0 ? b->up : field == 1 ? b->down : b->conns;
	if (vb < va || b->ms <= a->ms)
		return 0;
	return (vb - va) * 1000 / (b->ms - a->ms);
}

static json_t *traffic_json(struct proxy_module *pm)
{
	struct proxy_traffic *t;
	uint64_t total_up = 0, total_down = 0, conns = 0, active = 0, in_s, out_s, per_min = 0;
	json_t *o, *ups = json_object();

	traffic_start(pm);
	t = &pm->traffic;
	for (size_t i = 0; i < pm->n_ups; i++) {
		struct puplink *u = pm->ups[i];

		if (!u->present)
			continue;
		total_up += u->sampled_up;
		total_down += u->sampled_down;
		conns += u->st.total;
		active += u->st.active;
		json_object_set_new(ups, u->name,
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "bytes_in",
				(json_int_t)u->sampled_down, "bytes_out", (json_int_t)u->sampled_up,
				"bytes_in_per_second", (json_int_t)u->rate_down,
				"bytes_out_per_second", (json_int_t)u->rate_up,
				"active_connections", (json_int_t)u->st.active,
				"total_connections", (json_int_t)u->st.total, "usable", u->usable));
	}
	in_s = rate(t, 1, 1);
	out_s = rate(t, 1, 0);
	if (t->n >= 2) {
		struct traffic_sample *a = sample_at(t, t->n - 1), *b = sample_at(t, 0);
		per_min = b->conns - a->conns; /* over the minute kept, or since the sampler began */
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
		"total_bytes_in", (json_int_t)total_down, "total_bytes_out", (json_int_t)total_up,
		"total_data_transferred", (json_int_t)(total_up + total_down),
		"bytes_per_second", (json_int_t)(in_s + out_s), "bytes_in_per_second",
		(json_int_t)in_s, "bytes_out_per_second", (json_int_t)out_s,
		"connections_per_minute", (json_int_t)per_min, "connections_per_second",
		(json_int_t)rate(t, 1, 2), "active_connections", (json_int_t)active,
		"total_connections", (json_int_t)conns, "uptime_seconds",
		(double)(clock_wall_ms() - pm->started_wall_ms) / 1000.0);
	json_object_set_new(o, "uplinks", ups);
	return o;
}

/* ------------------------------------------------------------ status */

static json_t *status_json(struct proxy_module *pm)
{
	const struct conf_proxy *p = conf_proxy(pm->conf);
	json_t *listeners = json_array(), *ups = json_array(), *relay;
	uint64_t *up = xcalloc(pm->n_ups ? pm->n_ups : 1, sizeof(*up));
	uint64_t *down = xcalloc(pm->n_ups ? pm->n_ups : 1, sizeof(*down));
	uint64_t active = 0;
	json_t *o;

	for (size_t i = 0; i < pm->n_listeners; i++) {
		const struct listener *li = &pm->listeners[i];
		char a[ADDR_STRLEN];

		json_array_append_new(listeners,
			json_pack("{s:s, s:s, s:i}", "kind", listener_kind_api[li->kind], "address",
				addr_str(&li->addr, a, sizeof(a)), "port", li->port));
	}
	proxy_bytes_now(pm, up, down);
	for (size_t i = 0; i < pm->n_ups; i++) {
		const struct puplink *u = pm->ups[i];

		if (!u->present)
			continue;
		active += u->st.active;
		json_array_append_new(ups,
			json_pack("{s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:I}", "name", u->name,
				"usable", u->usable, "weight", u->weight, "active",
				(json_int_t)u->st.active, "total", (json_int_t)u->st.total, "failed",
				(json_int_t)u->st.failed, "bytes_up", (json_int_t)up[i], "bytes_down",
				(json_int_t)down[i]));
	}
	free(up);
	free(down);
	relay = json_pack("{s:i, s:I, s:I, s:I}", "workers", relay_pool_workers(pm->relay),
		"sessions", (json_int_t)relay_pool_sessions(pm->relay), "pipes",
		(json_int_t)relay_pool_pipes(pm->relay), "pipes_busy",
		(json_int_t)relay_pool_pipes_busy(pm->relay));
	o = json_pack("{s:o, s:o, s:I, s:I, s:i, s:i, s:I, s:I, s:o}", "listeners", listeners,
		"uplinks", ups, "connections", (json_int_t)active, "sessions",
		(json_int_t)pm->n_sessions, "max_connections", p->max_connections, "max_per_client",
		p->max_per_client, "clients", (json_int_t)pm->n_clients, "refused_limit",
		(json_int_t)pm->refused_limit, "relay", relay);
	json_object_set_new(o, "tunnel", json_boolean(p->tunnel));
	return o;
}

/* The same, under the module's lock (the sessions run on the workers). */
json_t *proxy_connections_json(struct proxy_module *pm, const struct proxy_conn_filter *f)
{
	json_t *o;

	PROXY_LOCK(pm);
	o = connections_json(pm, f);
	PROXY_UNLOCK(pm);
	return o;
}

json_t *proxy_traffic_json(struct proxy_module *pm)
{
	json_t *o;

	PROXY_LOCK(pm);
	o = traffic_json(pm);
	PROXY_UNLOCK(pm);
	return o;
}

json_t *proxy_status_json(struct proxy_module *pm)
{
	json_t *o;

	PROXY_LOCK(pm);
	o = status_json(pm);
	PROXY_UNLOCK(pm);
	return o;
}

/* ------------------------------------------------------------ routes */

#define CONNECTIONS_LIMIT     100 /* listed when the request names no limit (the fork's) */
#define CONNECTIONS_LIMIT_MAX 500 /* at most (the fork's) */

/* GET /api/connections?source=&destination=&uplink=&limit= */
static void connections_route_cb(struct api_req *r, void *arg)
{
	struct proxy_conn_filter f = {
		.source = api_req_query(r, "source"),
		.destination = api_req_query(r, "destination"),
		.uplink = api_req_query(r, "uplink"),
		.limit = CONNECTIONS_LIMIT,
	};
	const char *limit = api_req_query(r, "limit");

	if (limit) {
		char *end;
		unsigned long v = strtoul(limit, &end, 10);

		if (!*limit || *end || *limit == '-' || v < 1 || v > CONNECTIONS_LIMIT_MAX) {
			api_reply_error(r, 400, "limit", "expected an integer from 1 to %d, got \"%s\"",
				CONNECTIONS_LIMIT_MAX, limit);
			return;
		}
		f.limit = v;
	}
	/* an empty filter filters nothing */
	if (f.source && !*f.source)
		f.source = NULL;
	if (f.destination && !*f.destination)
		f.destination = NULL;
	if (f.uplink && !*f.uplink)
		f.uplink = NULL;
	api_reply_json(r, 200, proxy_connections_json(arg, &f));
}

/* GET /api/traffic */
static void traffic_route_cb(struct api_req *r, void *arg)
{
	api_reply_json(r, 200, proxy_traffic_json(arg));
}

const struct api_route proxy_api_routes[PROXY_N_API_ROUTES] = {
	{EVHTTP_REQ_GET, "/api/connections", API_READ, connections_route_cb, false},
	{EVHTTP_REQ_GET, "/api/traffic", API_READ, traffic_route_cb, false},
};
