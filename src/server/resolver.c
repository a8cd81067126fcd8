/*
 * resolver.c - egress-server's resolver: resolver_core.c's rules on the loop, with
 * libevent's evdns for the queries and the store for the entries and what they publish.
 *
 * evdns asks the configured recursive resolvers (or those of /etc/resolv.conf) an A and
 * an AAAA question per domain, without search domains, and takes every address record of
 * the answer section: a CNAME chain the resolver followed ends in the records of its last
 * name, so CNAMEs are followed.  Its TTL is the lowest of those address records (a
 * CNAME's own TTL is not given).  Answers are matched to questions with 0x20 case
 * randomisation on, so that an off-path forger has more to guess.
 *
 * Must not decide anything: what to resolve, when, and what to publish is the core's.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "log.h"
#include "resolver_conf.h"
#include "resolver_core.h"
#include "server.h"
#include "store.h"
#include "util.h"

#define NEVER UINT64_MAX

/* One evdns request in flight. */
struct rq {
	struct resolver *r;
	struct rsv_query *q; /* NULL: the core forgot it, its answer is dropped */
	struct rq *prev, *next;
};

struct resolver {
	struct server *srv;
	struct rsv *core;
	struct evdns_base *dns;
	struct event *timer;
	uint64_t timer_at; /* NEVER: not armed */
	struct rq *rqs;
	struct word_list ns; /* the configured nameservers (copies); none: the system's */
	uint32_t timeout_ms;
	int concurrency;
};

/* What resolver_new() and resolver_reconf() take from [resolver]. */
struct settings {
	struct rsv_opts o;
	struct word_list ns; /* borrowed from the conf */
	uint32_t timeout_ms;
	int concurrency;
};

static const struct conf_section_type *const defaults_types[] = {&conf_resolver_type};

/* [resolver] of conf, or its defaults: *tmp holds them then (conf_free() it). */
static const struct conf_resolver *settings_of(const struct conf *conf, struct conf **tmp)
{
	const struct conf_resolver *c = conf_resolver(conf);

	*tmp = NULL;
	if (c)
		return c;
	*tmp = conf_new(defaults_types, ARRAY_SIZE(defaults_types));
	return (const struct conf_resolver *)conf_get_unnamed(*tmp, conf_resolver_type.name);
}

static void settings_get(const struct conf_resolver *c, struct settings *ret)
{
	*ret = (struct settings){
		.o = {
			.interval_ms = c->interval_ms,
			.ttl_min_ms = c->ttl_min_ms,
			.ttl_max_ms = c->ttl_max_ms,
			.grace_ms = c->grace_ms,
			.concurrency = (unsigned)c->concurrency,
		},
		.ns = c->nameservers,
		.timeout_ms = c->timeout_ms,
		.concurrency = c->concurrency,
	};
}

/* --- the timer --- */

static void arm(struct resolver *r, uint64_t at)
{
	uint64_t now = now_ms();
	uint64_t ms = at > now ? at - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	if (at >= r->timer_at)
		return;
	r->timer_at = at;
	evtimer_add(r->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	r->timer_at = NEVER;
	arm(r, rsv_run(r->core, now_ms()));
}

/* --- evdns --- */

static void rq_unlink(struct resolver *r, struct rq *rq)
{
	if (rq->prev)
		rq->prev->next = rq->next;
	else
		r->rqs = rq->next;
	if (rq->next)
		rq->next->prev = rq->prev;
}

static void dns_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct rq *rq = arg;
	struct resolver *r = rq->r;
	struct rsv_answer a = {.rcode = RSV_FAILED};
	struct addr *v = NULL;

	rq_unlink(r, rq);
	if (!rq->q) {
		free(rq);
		return;
	}
	switch (result) {
	case DNS_ERR_NONE:
		a.rcode = RSV_NODATA;
		if (count <= 0 || (type != DNS_IPv4_A && type != DNS_IPv6_AAAA))
			break;
		v = xcalloc((size_t)count, sizeof(*v));
		for (int i = 0; i < count; i++) {
			v[i].family = type == DNS_IPv4_A ? AF_INET : AF_INET6;
			memcpy(v[i].b, (const uint8_t *)addresses + i * (int)addr_len(v[i].family),
				addr_len(v[i].family));
		}
		a = (struct rsv_answer){.rcode = RSV_ANSWER, .addrs = v, .n = (size_t)count,
			.ttl = ttl > 0 ? (uint32_t)ttl : 0};
		break;
	case DNS_ERR_NODATA:
		a.rcode = RSV_NODATA;
		break;
	case DNS_ERR_NOTEXIST:
		a.rcode = RSV_NXDOMAIN;
		break;
	default:
		a.error = evdns_err_to_string(result);
		break;
	}
	arm(r, rsv_answer(r->core, rq->q, &a, now_ms()));
	free(v);
	free(rq);
}

/* evdns talks about its nameservers on stderr unless told where */
static void evdns_log_cb(int is_warn, const char *msg)
{
	if (is_warn)
		log_info("resolver: evdns: %s", msg);
	else
		log_debug("resolver: evdns: %s", msg);
}

static int dns_nameservers(struct resolver *r)
{
	int rc;

	if (r->ns.n == 0) {
		/* nameservers only: no search list, no ndots, no options of resolv.conf */
		rc = evdns_base_resolv_conf_parse(r->dns, DNS_OPTION_NAMESERVERS,
			"/etc/resolv.conf");
		if (rc)
			log_warnx("resolver: /etc/resolv.conf: unreadable or without a nameserver "
				  "(evdns error %d): asking 127.0.0.1",
				rc);
		return 0;
	}
	for (size_t i = 0; i < r->ns.n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		struct addr a;
		uint16_t port;

		if (conf_resolver_nameserver(r->ns.v[i], &a, &port) < 0 ||
			addr_to_sockaddr(&a, port, &ss, &len) < 0)
			return -EINVAL; /* validated by the conf */
		rc = evdns_base_nameserver_sockaddr_add(r->dns, (struct sockaddr *)&ss, len, 0);
		if (rc) {
			log_warnx("resolver: nameserver %s: evdns refuses it (%d)", r->ns.v[i], rc);
			return -EINVAL;
		}
	}
	return 0;
}

static void dns_options(struct resolver *r)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%u.%03u", r->timeout_ms / 1000, r->timeout_ms % 1000);
	evdns_base_set_option(r->dns, "timeout:", buf);
	evdns_base_set_option(r->dns, "attempts:", "2");
	snprintf(buf, sizeof(buf), "%d", MIN(2 * r->concurrency, 0xffff));
	evdns_base_set_option(r->dns, "max-inflight:", buf);
}

static void ns_copy(struct word_list *dst, const struct word_list *src)
{
	for (size_t i = 0; i < dst->n; i++)
		free(dst->v[i]);
	free(dst->v);
	dst->v = src->n ? xcalloc(src->n, sizeof(dst->v[0])) : NULL;
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = xstrdup(src->v[i]);
	dst->n = src->n;
}

static bool ns_same(const struct word_list *a, const struct word_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!streq(a->v[i], b->v[i]))
			return false;
	return true;
}

/* --- what the core asks --- */

static bool op_leader(void *arg)
{
	struct resolver *r = arg;

	return store_leader(r->srv->store);
}

struct entries_ctx {
	int (*cb)(void *ctx, int64_t entry, const char *name);
	void *ctx;
};

static int entries_cb(const struct al_entry *e, void *arg)
{
	struct entries_ctx *c = arg;

	return e->kind == AL_DOMAIN ? c->cb(c->ctx, e->id, e->value) : 0;
}

static int op_entries(void *arg, int (*cb)(void *ctx, int64_t entry, const char *name),
	void *ctx)
{
	struct resolver *r = arg;
	struct entries_ctx c = {.cb = cb, .ctx = ctx};

	return store_entries_each(r->srv->store, NULL, entries_cb, &c);
}

static int op_published(void *arg, int64_t entry, struct addr **ret, size_t *n_ret)
{
	struct resolver *r = arg;

	return store_resolved_get(r->srv->store, entry, ret, n_ret);
}

static int op_publish(void *arg, int64_t entry, const struct addr *addrs, size_t n)
{
	struct resolver *r = arg;

	return store_resolved_set(r->srv->store, entry, addrs, n);
}

static int op_query(void *arg, struct rsv_query *q, const char *name, int family, void **ret_io)
{
	struct resolver *r = arg;
	struct rq *rq = xcalloc(1, sizeof(*rq));
	struct evdns_request *req;

	rq->r = r;
	rq->q = q;
	rq->next = r->rqs;
	if (r->rqs)
		r->rqs->prev = rq;
	r->rqs = rq;
	if (family == AF_INET)
		req = evdns_base_resolve_ipv4(r->dns, name, DNS_QUERY_NO_SEARCH, dns_cb, rq);
	else
		req = evdns_base_resolve_ipv6(r->dns, name, DNS_QUERY_NO_SEARCH, dns_cb, rq);
	if (!req) {
		rq_unlink(r, rq);
		free(rq);
		return -EIO;
	}
	*ret_io = rq;
	return 0;
}

/*
 * The request runs out by itself (within timeout x attempts) and its answer is dropped:
 * evdns_cancel_request() would call back later anyway, and this way nothing the
 * resolver frees can be called back.
 */
static void op_cancel(void *arg, void *io)
{
	struct rq *rq = io;

	rq->q = NULL;
}

static const struct rsv_ops resolver_ops = {
	.leader = op_leader,
	.entries = op_entries,
	.published = op_published,
	.publish = op_publish,
	.query = op_query,
	.cancel = op_cancel,
};

/* --- server.h --- */

int resolver_new(struct server *srv, struct resolver **ret)
{
	struct resolver *r = xcalloc(1, sizeof(*r));
	struct conf *tmp;
	struct settings s;
	int rc = -ENOMEM;

	settings_get(settings_of(srv->conf, &tmp), &s);
	r->srv = srv;
	r->timer_at = NEVER;
	r->timeout_ms = s.timeout_ms;
	r->concurrency = s.concurrency;
	ns_copy(&r->ns, &s.ns);
	evdns_set_log_fn(evdns_log_cb);
	r->dns = evdns_base_new(srv->base, 0);
	r->timer = evtimer_new(srv->base, timer_cb, r);
	if (!r->dns || !r->timer)
		goto fail;
	dns_options(r);
	rc = dns_nameservers(r);
	if (rc < 0)
		goto fail;
	r->core = rsv_new(&s.o, &resolver_ops, r);
	log_info("resolver: every %u s or at the TTL (%u s to %u s), grace %u s, nameservers %s",
		s.o.interval_ms / 1000, s.o.ttl_min_ms / 1000, s.o.ttl_max_ms / 1000,
		s.o.grace_ms / 1000, r->ns.n ? "as configured" : "of /etc/resolv.conf");
	arm(r, now_ms());
	conf_free(tmp);
	*ret = r;
	return 0;
fail:
	conf_free(tmp);
	resolver_free(r);
	return rc;
}

int resolver_reconf(struct resolver *r, const struct conf *conf)
{
	struct conf *tmp;
	struct settings s;
	int rc = 0;

	settings_get(settings_of(conf, &tmp), &s);
	rsv_set_opts(r->core, &s.o, now_ms());
	r->timeout_ms = s.timeout_ms;
	r->concurrency = s.concurrency;
	dns_options(r);
	if (!ns_same(&r->ns, &s.ns)) {
		ns_copy(&r->ns, &s.ns);
		evdns_base_clear_nameservers_and_suspend(r->dns);
		rc = dns_nameservers(r);
		evdns_base_resume(r->dns);
	}
	conf_free(tmp);
	arm(r, now_ms());
	return rc;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	rsv_free(r->core); /* forgets its queries */
	if (r->dns)
		evdns_base_free(r->dns, 0); /* without calling back */
	while (r->rqs) {
		struct rq *rq = r->rqs;
		r->rqs = rq->next;
		free(rq);
	}
	if (r->timer)
		event_free(r->timer);
	ns_copy(&r->ns, &(struct word_list){0});
	free(r);
}

void resolver_entry_added(struct resolver *r, int64_t entry)
{
	struct al_entry e;

	if (!r)
		return;
	al_entry_init(&e);
	if (store_entry_get(r->srv->store, entry, &e) == 0 && e.kind == AL_DOMAIN) {
		rsv_entry_added(r->core, entry, e.value, now_ms());
		arm(r, now_ms());
	}
	al_entry_clear(&e);
}

void resolver_entry_deleted(struct resolver *r, int64_t entry)
{
	if (r)
		rsv_entry_deleted(r->core, entry);
}

json_t *resolver_entry_status(struct resolver *r, int64_t entry)
{
	uint64_t now = now_ms();

	return r ? rsv_entry_status(r->core, entry, now, clock_wall_ms() - (int64_t)now) : NULL;
}

json_t *resolver_status(struct resolver *r)
{
	uint64_t now = now_ms();
	json_t *o, *ns;

	if (!r)
		return json_pack("{s:b}", "leader", 0);
	o = rsv_status(r->core, now, clock_wall_ms() - (int64_t)now);
	ns = json_array();
	for (int i = 0;; i++) {
		struct sockaddr_storage ss;
		struct addr a;
		uint16_t port;
		char s[ADDR_STRLEN], buf[ADDR_STRLEN + 8];
		int len = evdns_base_get_nameserver_addr(r->dns, i, (struct sockaddr *)&ss,
			sizeof(ss));

		if (len <= 0 || (size_t)len > sizeof(ss))
			break;
		if (addr_from_sockaddr((struct sockaddr *)&ss, &a, &port) < 0)
			continue;
		addr_str(&a, s, sizeof(s));
		snprintf(buf, sizeof(buf), a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", s, port);
		json_array_append_new(ns, json_string(buf));
	}
	json_object_set_new(o, "nameservers", ns);
	return o;
}
