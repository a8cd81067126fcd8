/*
 * ddns.c - the [ddns] module: the public address of each healthy uplink, learnt by an
 * HTTP(S) GET through that uplink, and published under one DNS name by a provider
 * (ddns_dynu.c, ddns_rfc2136.c).
 *
 * Every uplink of the set counts (route gateways, balanced uplinks, proxy uplinks): while
 * it is usable it is asked for its public address when it comes up and every
 * public_ip_interval, through a socket made like its probes' (uplink_sock_open: its
 * interface, source address and mark), on the curl multi glue the health checks use
 * (curl_loop.h).  Without public_ip_service_hostname the uplink's own check address is
 * asked (a gateway that reports its exit, as gluetun's control server does).  An uplink
 * that goes down loses its address at once.
 *
 * The name must hold all, and only, the addresses of the usable uplinks.  An update goes
 * out when that set differs from what was last published, once no usable uplink is still
 * being asked (so one coming up is published with its address, not without it); a failed
 * one is retried with a doubling wait; a set unchanged is counted as skipped.  With
 * require_ip_address, nothing is published while that address is on no local interface
 * (followed through netlink address events), and what was published is taken as unknown
 * once it comes back: the other node of the pair may have published in between.  A reload
 * restarts the module but keeps what was published (and the gate's state) while the name,
 * its provider and require_ip_address stay the same, so that it sends no update for
 * nothing; the addresses are asked again.
 *
 * Must not log or export a secret (the API key, the TSIG secret, the service's password),
 * nor send a public address request through anything but its uplink.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "check.h"
#include "conf_keys.h"
#include "curl_loop.h"
#include "ddns.h"
#include "ddns_conf.h"
#include "ddns_int.h"
#include "ddns_ip.h"
#include "events.h"
#include "fileio.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "nl.h"
#include "uplink.h"
#include "util.h"

#define SECRET_MAX 4096

struct ddns;
struct ddns_uplink;

/* One request for an uplink's public address: [0] the service (or the uplink's check
 * address), [1] the IPv6 service when there is one. */
struct ddns_fetch {
	struct curl_xfer x;
	struct ddns_uplink *du;
	struct curl_slist *hdrs;
	char *url;
	char body[DDNS_REPLY_MAX];
	size_t len;
	bool overflow;
	int sock_err;
	char errbuf[CURL_ERROR_SIZE];
	uint64_t start_ms;
	struct addr addr;     /* what it answered last; unset: nothing (yet, or since down) */
	int64_t at_wall_ms;   /* when */
	char error[160];      /* the last failure, "" after a success */
};

struct ddns_uplink {
	struct ddns *d;
	char *name;
	bool usable;
	struct ddns_fetch f[2];
	unsigned n_f;	     /* requests it makes: 0 (nothing to ask), 1 or 2 */
	struct event *timer; /* the next request */
};

struct ddns {
	struct event_base *base;
	struct uplink_set *set;
	struct metrics *metrics;
	struct event_log *events;
	const struct conf_ddns *c; /* borrowed until the next reconf */
	struct curl_loop *loop;
	char *ip_password;

	struct ddns_uplink **v;
	size_t n;

	/* publication */
	struct ddns_dynu *dynu;
	struct ddns_rfc2136 *rfc;
	struct event *eval_ev;	/* deferred evaluation, once per loop turn */
	struct event *retry_ev;
	bool busy;		/* an update in flight */
	bool retry_pending;
	uint32_t backoff_ms;
	uint64_t update_start_ms;
	struct ddns_set sending;   /* what the update in flight publishes */
	struct ddns_set published; /* what the name holds, as far as we know */
	bool published_known;
	char *target; /* where and what it publishes (ddns_target()), kept over a restart */
	int64_t published_at;
	char last_error[256];
	int64_t last_error_at;
	uint64_t updates_ok, updates_failed, skipped;
	bool skip_logged;

	/* require_ip_address */
	struct nl_monitor *mon;
	bool gate_open;

	struct metric_family *m_fetch, *m_fetch_seconds, *m_unique, *m_changes, *m_updates,
		*m_update_seconds, *m_skipped;
};

static const char *provider_name(const struct ddns *d)
{
	return ddns_provider_name[d->c->provider];
}

/* ------------------------------------------------------------ metrics */

static void ddns_metrics_init(struct ddns *d)
{
	struct metrics *m = d->metrics;
	static const double seconds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
		30, 60};

	if (!m)
		return;
	metrics_counter_new(m, "public_ip_fetch_total",
		"Requests for a gateway's public address by gateway and result",
		METRICS_LABELS("gateway_ip", "status"), &d->m_fetch);
	metrics_histogram_new(m, "public_ip_fetch_duration_seconds",
		"Duration of requests for a gateway's public address", METRICS_LABELS("gateway_ip"),
		seconds, ARRAY_SIZE(seconds), &d->m_fetch_seconds);
	metrics_gauge_new(m, "unique_public_ips_count",
		"Distinct public addresses of the healthy gateways", NULL, &d->m_unique);
	metrics_counter_new(m, "public_ip_changes_total",
		"Changes of a gateway's public address", METRICS_LABELS("gateway_ip"),
		&d->m_changes);
	metrics_counter_new(m, "ddns_updates_total", "DDNS updates by provider and result",
		METRICS_LABELS("provider", "status"), &d->m_updates);
	metrics_histogram_new(m, "ddns_update_duration_seconds", "Duration of DDNS updates",
		METRICS_LABELS("provider"), seconds, ARRAY_SIZE(seconds), &d->m_update_seconds);
	metrics_counter_new(m, "ddns_updates_skipped_total",
		"DDNS updates not sent, by reason (unchanged: the name holds the addresses "
		"already; require_ip_address: the address is on no local interface)",
		METRICS_LABELS("reason"), &d->m_skipped);
}

static void ddns_metrics_provider(struct ddns *d)
{
	if (!d->metrics || d->c->provider == DDNS_NONE)
		return;
	metrics_counter_add(d->m_updates, 0, provider_name(d), "success");
	metrics_counter_add(d->m_updates, 0, provider_name(d), "failure");
	metrics_counter_add(d->m_skipped, 0, "unchanged");
	if (addr_is_set(&d->c->require_ip))
		metrics_counter_add(d->m_skipped, 0, "require_ip_address");
}

/* ------------------------------------------------------------ the set to publish */

static void ddns_wanted(const struct ddns *d, struct ddns_set *ret)
{
	ddns_set_clear(ret);
	for (size_t i = 0; i < d->n; i++) {
		const struct ddns_uplink *du = d->v[i];

		if (!du->usable)
			continue;
		for (unsigned k = 0; k < du->n_f; k++)
			if (addr_is_set(&du->f[k].addr))
				ddns_set_add(ret, &du->f[k].addr);
	}
}

/* Is a usable uplink still being asked for its address? */
static bool ddns_asking(const struct ddns *d)
{
	for (size_t i = 0; i < d->n; i++)
		for (unsigned k = 0; k < d->v[i]->n_f; k++)
			if (d->v[i]->usable && d->v[i]->f[k].x.in_multi)
				return true;
	return false;
}

static void ddns_schedule(struct ddns *d)
{
	event_active(d->eval_ev, EV_TIMEOUT, 0);
}

static void ddns_update_done_cb(void *arg, int err, const char *msg);

static int ddns_provider_start(struct ddns *d)
{
	switch (d->c->provider) {
	case DDNS_DYNUDNS:
		return ddns_dynu_update(d->dynu, &d->sending, ddns_update_done_cb, d);
	case DDNS_RFC2136:
		return ddns_rfc2136_update(d->rfc, &d->sending, ddns_update_done_cb, d);
	default:
		return -EINVAL;
	}
}

static void ddns_skip(struct ddns *d, const char *reason)
{
	d->skipped++;
	if (d->metrics)
		metrics_counter_add(d->m_skipped, 1, reason);
}

/* Publish the set if it changed and nothing holds it back. */
static void ddns_eval_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ddns *d = arg;
	struct ddns_set want = {0};
	char buf[512];
	int r;

	(void)fd;
	(void)what;
	ddns_wanted(d, &want);
	if (d->metrics)
		metrics_gauge_set(d->m_unique, (double)want.n);
	if (d->c->provider == DDNS_NONE || d->busy || d->retry_pending || ddns_asking(d))
		goto out;
	if (d->published_known && ddns_set_equal(&want, &d->published)) {
		ddns_skip(d, "unchanged");
		goto out;
	}
	if (addr_is_set(&d->c->require_ip) && !d->gate_open) {
		ddns_skip(d, "require_ip_address");
		if (!d->skip_logged)
			log_info("ddns: %s: not published (%s) while %s is on no local interface",
				d->c->hostname, ddns_set_str(&want, buf, sizeof(buf)),
				addr_str(&d->c->require_ip, buf + 256, 256));
		d->skip_logged = true;
		goto out;
	}
	d->skip_logged = false;
	ddns_set_copy(&d->sending, &want);
	d->update_start_ms = now_ms();
	d->busy = true;
	log_debug("ddns: %s: publishing %s", d->c->hostname, ddns_set_str(&want, buf, sizeof(buf)));
	r = ddns_provider_start(d);
	if (r < 0) {
		d->busy = false;
		ddns_update_done_cb(d, r, strerror(-r));
	}
out:
	ddns_set_clear(&want);
}

static void ddns_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ddns *d = arg;

	(void)fd;
	(void)what;
	d->retry_pending = false;
	ddns_schedule(d);
}

static void ddns_update_done_cb(void *arg, int err, const char *msg)
{
	struct ddns *d = arg;
	double secs = (double)(now_ms() - d->update_start_ms) / 1000.0;
	char buf[512];

	d->busy = false;
	if (d->metrics) {
		metrics_counter_add(d->m_updates, 1, provider_name(d), err ? "failure" : "success");
		metrics_histogram_observe(d->m_update_seconds, secs, provider_name(d));
	}
	if (!err) {
		ddns_set_copy(&d->published, &d->sending);
		d->published_known = true;
		d->published_at = clock_wall_ms();
		d->backoff_ms = 0;
		d->updates_ok++;
		d->last_error[0] = '\0';
		log_info("ddns: %s: published %s (%s)", d->c->hostname,
			ddns_set_str(&d->published, buf, sizeof(buf)), provider_name(d));
		if (d->events)
			event_log_add(d->events, EVENT_APPLY, "egressd", NULL, "ddns: %s: published %s",
				d->c->hostname, buf);
		ddns_schedule(d);
		return;
	}
	d->updates_failed++;
	/* what the name holds is not known after a failure half-way */
	d->published_known = false;
	d->backoff_ms = d->backoff_ms ? MIN(d->backoff_ms * 2, d->c->retry_max_ms)
				      : d->c->retry_min_ms;
	snprintf(d->last_error, sizeof(d->last_error), "%s", msg && *msg ? msg : strerror(-err));
	d->last_error_at = clock_wall_ms();
	log_warnx("ddns: %s: %s update failed: %s (again in %" PRIu32 "ms)", d->c->hostname,
		provider_name(d), d->last_error, d->backoff_ms);
	if (d->events)
		event_log_add(d->events, EVENT_ERROR, "egressd", NULL, "ddns: %s: %s update failed: %s",
			d->c->hostname, provider_name(d), d->last_error);
	d->retry_pending = true;
	struct timeval tv = {.tv_sec = d->backoff_ms / 1000,
		.tv_usec = (d->backoff_ms % 1000) * 1000};
	event_add(d->retry_ev, &tv);
}

/* ------------------------------------------------------------ public addresses */

static struct ddns_uplink *ddns_uplink_find(const struct ddns *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (streq(d->v[i]->name, name))
			return d->v[i];
	return NULL;
}

static size_t fetch_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct ddns_fetch *f = arg;
	size_t n = size * nmemb;

	if (f->len + n > sizeof(f->body)) {
		f->overflow = true;
		return 0;
	}
	memcpy(f->body + f->len, ptr, n);
	f->len += n;
	return n;
}

static curl_socket_t fetch_opensocket_cb(void *clientp, curlsocktype purpose,
	struct curl_sockaddr *a)
{
	struct ddns_fetch *f = clientp;
	struct uplink *u = uplink_find(f->du->d->set, f->du->name);
	int fd, r;

	(void)purpose;
	if (!u) {
		f->sock_err = ENODEV;
		return CURL_SOCKET_BAD;
	}
	r = uplink_sock_open(u, a->family, a->socktype, a->protocol, &fd);
	if (r < 0) {
		f->sock_err = -r;
		return CURL_SOCKET_BAD;
	}
	return fd;
}

static void fetch_failed(struct ddns_fetch *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fetch_failed(struct ddns_fetch *f, const char *fmt, ...)
{
	struct ddns_uplink *du = f->du;
	char why[sizeof(f->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!streq(why, f->error))
		log_warnx("ddns: uplink %s: public address from %s: %s", du->name, f->url, why);
	snprintf(f->error, sizeof(f->error), "%s", why);
	if (du->d->metrics)
		metrics_counter_add(du->d->m_fetch, 1, du->name, "failure");
}

static void fetch_done_cb(struct curl_xfer *x, CURLcode res, void *arg)
{
	struct ddns_fetch *f = arg;
	struct ddns_uplink *du = f->du;
	struct ddns *d = du->d;
	long code = 0;
	struct addr a;
	char why[128], was[ADDR_STRLEN], now[ADDR_STRLEN];

	(void)x;
	if (d->metrics)
		metrics_histogram_observe(d->m_fetch_seconds, (double)(now_ms() - f->start_ms) / 1000.0,
			du->name);
	if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && f->overflow)) {
		if (f->sock_err)
			fetch_failed(f, "%s", strerror(f->sock_err));
		else
			fetch_failed(f, "%s", f->errbuf[0] ? f->errbuf : curl_easy_strerror(res));
		goto out;
	}
	curl_easy_getinfo(f->x.easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		fetch_failed(f, "status %ld", code);
		goto out;
	}
	if (f->overflow) {
		fetch_failed(f, "a reply longer than %d bytes", DDNS_REPLY_MAX);
		goto out;
	}
	if (ddns_ip_parse(f->body, f->len, &a, why, sizeof(why)) < 0) {
		fetch_failed(f, "%s", why);
		goto out;
	}
	if (d->metrics)
		metrics_counter_add(d->m_fetch, 1, du->name, "success");
	f->error[0] = '\0';
	f->at_wall_ms = clock_wall_ms();
	if (!addr_is_set(&f->addr) || !addr_eq(&f->addr, &a)) {
		if (addr_is_set(&f->addr)) {
			log_info("ddns: uplink %s: public address %s -> %s", du->name,
				addr_str(&f->addr, was, sizeof(was)), addr_str(&a, now, sizeof(now)));
			if (d->metrics)
				metrics_counter_add(d->m_changes, 1, du->name);
		} else {
			log_info("ddns: uplink %s: public address %s", du->name,
				addr_str(&a, now, sizeof(now)));
		}
		f->addr = a;
	}
out:
	ddns_schedule(d);
}

static char *fetch_url(const struct ddns *d, const struct uplink *u, const char *host)
{
	const struct conf_ddns *c = d->c;
	char h[ADDR_STRLEN + IFNAMSIZ + 8], a[ADDR_STRLEN], *url;
	const struct addr *target = u->check.targets.n ? &u->check.targets.v[0].addr
						       : &u->gateway;

	if (!host) {
		if (!addr_is_set(target))
			return NULL;
		addr_str(target, a, sizeof(a));
		if (target->family != AF_INET6)
			snprintf(h, sizeof(h), "%s", a);
		else if (IN6_IS_ADDR_LINKLOCAL(&target->v6) && u->ifname[0])
			snprintf(h, sizeof(h), "[%s%%25%s]", a, u->ifname);
		else
			snprintf(h, sizeof(h), "[%s]", a);
		host = h;
	}
	if (asprintf(&url, "%s://%s:%d%s", ddns_scheme_name[c->ip_scheme], host, c->ip_port,
		    c->ip_path ? c->ip_path : "/") < 0)
		fatalx("out of memory");
	return url;
}

/* Set up request k of du for uplink u; false: nothing to ask. */
static bool fetch_setup(struct ddns_uplink *du, unsigned k, const struct uplink *u)
{
	struct ddns *d = du->d;
	const struct conf_ddns *c = d->c;
	struct ddns_fetch *f = &du->f[k];
	CURL *e;

	f->du = du;
	f->url = fetch_url(d, u, k ? c->ip_host6 : c->ip_host);
	if (!f->url)
		return false;
	f->x.easy = e = curl_easy_init();
	if (!e)
		fatalx("out of memory");
	f->x.done_cb = fetch_done_cb;
	f->x.arg = f;
	f->hdrs = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(e, CURLOPT_URL, f->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->ip_timeout_ms);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "egressd/" EGRESS_VERSION);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->ip_tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->ip_tls_verify ? 2L : 0L);
	if (c->ip_tls_verify)
		curl_loop_ca_setup(d->loop, e);
	if (c->ip_host6)
		curl_easy_setopt(e, CURLOPT_IPRESOLVE,
			k ? (long)CURL_IPRESOLVE_V6 : (long)CURL_IPRESOLVE_V4);
	if (c->ip_username) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, c->ip_username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, d->ip_password ? d->ip_password : "");
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, fetch_opensocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
	return true;
}

static void fetch_clear(struct ddns *d, struct ddns_fetch *f)
{
	if (f->x.easy) {
		curl_loop_remove(d->loop, &f->x);
		curl_easy_cleanup(f->x.easy);
	}
	curl_slist_free_all(f->hdrs);
	free(f->url);
	memset(f, 0, sizeof(*f));
}

static void ddns_uplink_arm(struct ddns_uplink *du)
{
	uint32_t ms = du->d->c->ip_interval_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	evtimer_add(du->timer, &tv);
}

/* Ask for du's public address now (the requests still in flight go on). */
static void ddns_uplink_fetch(struct ddns_uplink *du)
{
	struct ddns *d = du->d;

	for (unsigned k = 0; k < du->n_f; k++) {
		struct ddns_fetch *f = &du->f[k];

		if (f->x.in_multi)
			continue;
		f->len = 0;
		f->overflow = false;
		f->sock_err = 0;
		f->errbuf[0] = '\0';
		f->start_ms = now_ms();
		if (curl_loop_add(d->loop, &f->x) < 0)
			fetch_failed(f, "cannot start the request");
	}
	ddns_uplink_arm(du);
}

static void ddns_uplink_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ddns_uplink *du = arg;

	(void)fd;
	(void)what;
	if (du->usable)
		ddns_uplink_fetch(du);
}

/* Forget what du's requests learnt (it went down) and stop them. */
static void ddns_uplink_forget(struct ddns_uplink *du)
{
	for (unsigned k = 0; k < du->n_f; k++) {
		curl_loop_remove(du->d->loop, &du->f[k].x);
		du->f[k].addr = (struct addr){0};
		du->f[k].at_wall_ms = 0;
	}
	evtimer_del(du->timer);
}

static void ddns_uplink_setup(struct ddns_uplink *du, const struct uplink *u)
{
	du->n_f = 0;
	if (fetch_setup(du, 0, u))
		du->n_f = 1;
	if (du->d->c->ip_host6 && du->n_f == 1 && fetch_setup(du, 1, u))
		du->n_f = 2;
	if (!du->n_f)
		log_info("ddns: uplink %s: no address to ask for its public address (no check "
			 "target or gateway, and no public_ip_service_hostname)",
			du->name);
}

static void ddns_uplink_free(struct ddns_uplink *du)
{
	if (!du)
		return;
	for (unsigned k = 0; k < ARRAY_SIZE(du->f); k++)
		fetch_clear(du->d, &du->f[k]);
	if (du->timer)
		event_free(du->timer);
	free(du->name);
	free(du);
}

static void ddns_uplink_add(struct ddns *d, struct uplink *u)
{
	struct ddns_uplink *du = xcalloc(1, sizeof(*du));

	du->d = d;
	du->name = xstrdup(u->name);
	du->timer = evtimer_new(d->base, ddns_uplink_timer_cb, du);
	if (!du->timer)
		fatalx("out of memory");
	ddns_uplink_setup(du, u);
	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	d->v[d->n++] = du;
	if (d->metrics) {
		metrics_counter_add(d->m_fetch, 0, du->name, "success");
		metrics_counter_add(d->m_fetch, 0, du->name, "failure");
		metrics_counter_add(d->m_changes, 0, du->name);
	}
	du->usable = uplink_usable(u);
	if (du->usable)
		ddns_uplink_fetch(du);
}

static void ddns_uplink_remove(struct ddns *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++) {
		if (!streq(d->v[i]->name, name))
			continue;
		if (d->metrics) {
			metrics_remove_where(d->m_fetch, "gateway_ip", name);
			metrics_remove_where(d->m_changes, "gateway_ip", name);
		}
		ddns_uplink_free(d->v[i]);
		memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(*d->v));
		d->n--;
		return;
	}
}

/* du became usable (ask its public address) or not (it leaves the published set). */
static void ddns_uplink_usable(struct ddns_uplink *du, bool usable)
{
	du->usable = usable;
	if (usable)
		ddns_uplink_fetch(du);
	else
		ddns_uplink_forget(du);
}

static void ddns_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct ddns *d = arg;
	struct ddns_uplink *du = ddns_uplink_find(d, u->name);
	bool usable = uplink_usable(u);

	switch (ev) {
	case UPLINK_ADDED:
		if (!du)
			ddns_uplink_add(d, u);
		break;
	case UPLINK_REMOVED:
		ddns_uplink_remove(d, u->name);
		break;
	case UPLINK_CHANGED:
		if (!du)
			break;
		/* its gateway or check may have changed: ask again where it says now */
		for (unsigned k = 0; k < ARRAY_SIZE(du->f); k++)
			fetch_clear(d, &du->f[k]);
		ddns_uplink_setup(du, u);
		ddns_uplink_usable(du, usable);
		break;
	case UPLINK_STATE:
		if (!du || usable == du->usable)
			break;
		ddns_uplink_usable(du, usable);
		break;
	default:
		break;
	}
	ddns_schedule(d);
}

/* ------------------------------------------------------------ require_ip_address */

static void ddns_gate(struct ddns *d, bool open)
{
	char a[ADDR_STRLEN];

	if (open == d->gate_open)
		return;
	d->gate_open = open;
	addr_str(&d->c->require_ip, a, sizeof(a));
	if (open) {
		log_info("ddns: %s is on a local interface: publishing %s", a, d->c->hostname);
		/* the other node may have published while we could not */
		d->published_known = false;
	} else {
		log_info("ddns: %s is on no local interface: %s is left to the node that has it",
			a, d->c->hostname);
	}
	d->skip_logged = false;
	ddns_schedule(d);
}

struct gate_dump {
	const struct addr *want;
	bool found;
};

static int gate_dump_cb(const struct nl_addr *a, void *arg)
{
	struct gate_dump *g = arg;

	if (addr_eq(&a->local.addr, g->want))
		g->found = true;
	return 0;
}

/* Is require_ip on a local interface now?  -errno if netlink cannot say. */
static int ddns_gate_dump(struct ddns *d)
{
	struct nl *nl;
	struct gate_dump g = {.want = &d->c->require_ip};
	int r = nl_open(NETLINK_ROUTE, &nl);

	if (r < 0)
		return r;
	r = nl_addr_dump(nl, d->c->require_ip.family, 0, gate_dump_cb, &g);
	nl_free(nl);
	if (r < 0)
		return r;
	ddns_gate(d, g.found);
	return 0;
}

static void ddns_nl_cb(const struct nl_event *ev, void *arg)
{
	struct ddns *d = arg;

	if (ev->type == NL_EVENT_RESYNC) {
		if (ddns_gate_dump(d) < 0)
			log_warnx("ddns: cannot read the local addresses");
		return;
	}
	if (ev->type != NL_EVENT_ADDR || !addr_eq(&ev->addr.local.addr, &d->c->require_ip))
		return;
	ddns_gate(d, !ev->del);
}

/* ------------------------------------------------------------ life cycle */

/* A secret from a file, trimmed; *ret is the caller's.  0 or -errno (logged). */
static int read_secret(const char *path, const char *what, char **ret)
{
	size_t len;
	char *s;
	int r = file_read(path, SECRET_MAX, &s, &len);

	if (r < 0) {
		log_warnx("ddns: %s %s: %s", what, path, strerror(-r));
		return r;
	}
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
		       s[len - 1] == '\t'))
		s[--len] = '\0';
	if (!len || memchr(s, '\0', len)) {
		log_warnx("ddns: %s %s: expected one line, got %s", what, path,
			len ? "binary data" : "an empty file");
		free(s);
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

static void ddns_stop(struct ddns *d)
{
	for (size_t i = 0; i < d->n; i++)
		ddns_uplink_free(d->v[i]);
	FREE_AND_NULL(d->v);
	d->n = 0;
	ddns_dynu_free(d->dynu);
	d->dynu = NULL;
	ddns_rfc2136_free(d->rfc);
	d->rfc = NULL;
	nl_monitor_free(d->mon);
	d->mon = NULL;
	if (d->retry_ev)
		evtimer_del(d->retry_ev);
	d->retry_pending = false;
	/* an update cut short leaves the name unknown */
	if (d->busy)
		d->published_known = false;
	d->busy = false;
	d->backoff_ms = 0;
	if (d->ip_password)
		explicit_bzero(d->ip_password, strlen(d->ip_password));
	FREE_AND_NULL(d->ip_password);
}

/*
 * Where and what c publishes, as a string: the provider and its server, the name and its
 * TTL, and the gate.  The secrets are not in it (a new key changes nothing the name holds).
 * The caller frees it.
 */
static char *ddns_target(const struct conf_ddns *c)
{
	char server[ADDR_STRLEN], gate[ADDR_STRLEN], *ret = NULL;

	addr_str(&c->server, server, sizeof(server));
	addr_str(&c->require_ip, gate, sizeof(gate));
	if (asprintf(&ret, "%s %s %s [%s]:%d %s %s %d %" PRIu32 " %s", ddns_provider_name[c->provider],
		    c->hostname ? c->hostname : "", c->dynu_url ? c->dynu_url : "",
		    addr_is_set(&c->server) ? server : "", c->server_port, c->zone ? c->zone : "",
		    c->tsig_key_name ? c->tsig_key_name : "", c->tsig_algorithm, c->record_ttl_ms,
		    addr_is_set(&c->require_ip) ? gate : "") < 0)
		fatalx("ddns: out of memory");
	return ret;
}

static int ddns_start(struct ddns *d, const struct conf *conf)
{
	const struct conf_ddns *c = conf_ddns(conf);
	char *secret = NULL, *target = ddns_target(c);
	bool same = d->target && streq(d->target, target);
	bool was_open = d->gate_open;
	const char *env;
	int r = 0;

	free(d->target);
	d->target = target;
	/* a first start, or another name or provider: what it holds is not known */
	if (!same)
		d->published_known = false;
	d->c = c;
	if (c->ip_password)
		d->ip_password = xstrdup(c->ip_password);
	else if ((env = getenv("PUBLIC_IP_SERVICE_PASSWORD")) && *env)
		d->ip_password = xstrdup(env);
	if (c->provider == DDNS_DYNUDNS) {
		if (c->password)
			secret = xstrdup(c->password);
		else if (c->password_file)
			r = read_secret(c->password_file, "password_file", &secret);
		else if ((env = getenv("DDNS_PASSWORD")) && *env)
			secret = xstrdup(env);
		else
			r = -EINVAL;
		if (r < 0)
			return r;
		r = ddns_dynu_new(d->loop, c, secret, &d->dynu);
	} else if (c->provider == DDNS_RFC2136) {
		r = read_secret(c->tsig_secret_file, "tsig_secret_file", &secret);
		if (r < 0)
			return r;
		r = ddns_rfc2136_new(d->base, c, secret, &d->rfc);
		if (r < 0)
			log_warnx("ddns: rfc2136: %s",
				r == -EINVAL ? "the hostname, zone or key name is not a DNS name"
					     : strerror(-r));
	}
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	if (r < 0)
		return r;
	ddns_metrics_provider(d);
	if (addr_is_set(&c->require_ip)) {
		/* the same gate as before the reload: only a change of it counts */
		d->gate_open = same && was_open;
		r = nl_monitor_new(d->base, NL_GROUP_ADDR, ddns_nl_cb, d, &d->mon);
		if (r < 0 || (r = ddns_gate_dump(d)) < 0) {
			log_warnx("ddns: following the local addresses: %s", strerror(-r));
			return r;
		}
		if (!d->gate_open)
			log_info("ddns: %s is on no local interface: nothing is published until it is",
				addr_str(&c->require_ip, (char[ADDR_STRLEN]){0}, ADDR_STRLEN));
	}
	for (size_t i = 0; i < d->set->n; i++)
		ddns_uplink_add(d, d->set->v[i]);
	ddns_schedule(d);
	return 0;
}

static void ddns_free(struct ddns *d)
{
	if (!d)
		return;
	if (d->set)
		uplink_set_unsubscribe(d->set, ddns_uplink_cb, d);
	ddns_stop(d);
	if (d->eval_ev)
		event_free(d->eval_ev);
	if (d->retry_ev)
		event_free(d->retry_ev);
	curl_loop_free(d->loop);
	ddns_set_clear(&d->sending);
	ddns_set_clear(&d->published);
	free(d->target);
	free(d);
}

static bool ddns_wanted_cb(const struct conf *conf)
{
	return conf_ddns(conf) != NULL;
}

static int ddns_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct ddns *d = xcalloc(1, sizeof(*d));
	int r;

	*ret = d;
	d->base = env->base;
	d->set = env->uplinks;
	d->metrics = env->metrics;
	d->events = env->events;
	d->eval_ev = event_new(d->base, -1, 0, ddns_eval_cb, d);
	d->retry_ev = evtimer_new(d->base, ddns_retry_cb, d);
	if (!d->eval_ev || !d->retry_ev)
		return -ENOMEM;
	r = curl_loop_new(d->base, &d->loop);
	if (r < 0)
		return r;
	ddns_metrics_init(d);
	r = ddns_start(d, conf);
	if (r < 0)
		return r;
	uplink_set_subscribe(d->set, ddns_uplink_cb, d);
	return 0;
}

static int ddns_reconf_cb(void *m, const struct conf *conf)
{
	struct ddns *d = m;

	ddns_stop(d);
	return ddns_start(d, conf);
}

static void ddns_free_cb(void *m)
{
	ddns_free(m);
}

static json_t *time_or_null(int64_t wall_ms)
{
	char buf[64];

	return wall_ms ? json_string(time_iso(wall_ms, buf, sizeof(buf))) : json_null();
}

static json_t *set_json(const struct ddns_set *s)
{
	json_t *a = json_array();
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, json_string(addr_str(&s->v[i], buf, sizeof(buf))));
	return a;
}

/* The uplink's public addresses as GET /api/uplinks shows them (module.h uplink_json). */
static void ddns_uplink_json(void *m, const struct uplink *u, json_t *o)
{
	struct ddns *d = m;
	struct ddns_uplink *du = ddns_uplink_find(d, u->name);
	struct ddns_set s = {0};
	const char *err = NULL;
	int64_t at = 0;
	char buf[ADDR_STRLEN];

	if (!du)
		return;
	for (unsigned k = 0; k < du->n_f; k++) {
		if (addr_is_set(&du->f[k].addr))
			ddns_set_add(&s, &du->f[k].addr);
		if (du->f[k].error[0] && !err)
			err = du->f[k].error;
		at = MAX(at, du->f[k].at_wall_ms);
	}
	json_object_set_new(o, "public_ip",
		s.n ? json_string(addr_str(&s.v[0], buf, sizeof(buf))) : json_null());
	json_object_set_new(o, "public_ips", set_json(&s));
	json_object_set_new(o, "public_ip_at", time_or_null(at));
	json_object_set_new(o, "public_ip_error", err && du->usable ? json_string(err) : json_null());
	ddns_set_clear(&s);
}

static json_t *ddns_status_cb(void *m)
{
	struct ddns *d = m;
	struct ddns_set want = {0};
	json_t *o = json_object(), *ups = json_object();
	char buf[ADDR_STRLEN];

	ddns_wanted(d, &want);
	json_object_set_new(o, "provider", json_string(provider_name(d)));
	json_object_set_new(o, "hostname", d->c->hostname ? json_string(d->c->hostname) : json_null());
	json_object_set_new(o, "wanted", set_json(&want));
	json_object_set_new(o, "published", d->published_known ? set_json(&d->published) : json_null());
	json_object_set_new(o, "published_at", time_or_null(d->published_at));
	json_object_set_new(o, "updating", json_boolean(d->busy));
	json_object_set_new(o, "updates_ok", json_integer((json_int_t)d->updates_ok));
	json_object_set_new(o, "updates_failed", json_integer((json_int_t)d->updates_failed));
	json_object_set_new(o, "updates_skipped", json_integer((json_int_t)d->skipped));
	json_object_set_new(o, "last_error", d->last_error[0] ? json_string(d->last_error) : json_null());
	json_object_set_new(o, "last_error_at", time_or_null(d->last_error_at));
	if (addr_is_set(&d->c->require_ip)) {
		json_object_set_new(o, "require_ip_address",
			json_string(addr_str(&d->c->require_ip, buf, sizeof(buf))));
		json_object_set_new(o, "require_ip_present", json_boolean(d->gate_open));
	}
	for (size_t i = 0; i < d->n; i++) {
		json_t *u = json_object();
		struct uplink *up = uplink_find(d->set, d->v[i]->name);

		if (up)
			ddns_uplink_json(d, up, u);
		json_object_set_new(u, "healthy", json_boolean(d->v[i]->usable));
		json_object_set_new(ups, d->v[i]->name, u);
	}
	json_object_set_new(o, "uplinks", ups);
	ddns_set_clear(&want);
	return o;
}

static const struct conf_section_type *const ddns_conf_types[] = {
	&conf_ddns_type,
};

const struct module module_ddns = {
	.name = "ddns",
	.conf_types = ddns_conf_types,
	.n_conf_types = ARRAY_SIZE(ddns_conf_types),
	.wanted = ddns_wanted_cb,
	.new = ddns_new_cb,
	.reconf = ddns_reconf_cb,
	.free = ddns_free_cb,
	.status = ddns_status_cb,
	.uplink_json = ddns_uplink_json,
};
