/*
 * resolver_core.c - the resolver's domains, answers, grace periods and schedule (the
 * rules are in resolver_core.h).
 *
 * Must not read a clock, open a socket or call the store: resolver.c does the I/O through
 * struct rsv_ops, and the unit test a fake one.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "al_entry.h"
#include "log.h"
#include "resolver_core.h"
#include "util.h"

#define NEVER UINT64_MAX
/* Domains due within this much of each other are started by the same run. */
#define SLACK_MS 1000
/* A replica that does not lead asks again after at most this long. */
#define LEADER_RETRY_MS 5000

/* An address a domain publishes: in DNS now, or in its grace period. */
struct rsv_addr {
	struct addr addr;
	uint32_t ttl;	  /* seconds, as last answered (0: adopted from the store) */
	uint64_t expires; /* its record's expiry (TTL clamped) */
	uint64_t gone;	  /* 0: in DNS; else the end of its grace period */
	bool hit;	  /* in the answer being applied */
};

struct rsv_refused {
	struct addr addr;
	const char *why; /* al_dst_refused()'s static phrase */
};

/* What the last query of one family (A or AAAA) said. */
struct rsv_fam {
	struct rsv_query *q; /* in flight */
	bool answered;
	enum rsv_rcode rcode;
	uint32_t ttl;
	char error[96];		/* RSV_FAILED */
	struct rsv_refused *refused;	/* of its last answer */
	size_t n_refused;
};

struct rsv_domain {
	int64_t entry;
	char *name;
	struct rsv_addr *addrs; /* sorted by address */
	size_t n_addrs;
	struct rsv_fam fam[2];	/* [0] A, [1] AAAA */
	uint64_t resolved_at;	/* 0: never */
	uint64_t next_at;
	unsigned failures;	/* rounds in a row with a failed query */
	unsigned pending;	/* queries of this round still out */
	bool waiting;		/* in the queue for a slot */
	struct rsv_domain *wnext;
	struct addr *pub;	/* what the store publishes (as far as known) */
	size_t n_pub;
	bool pub_ok;		/* pub is known; false: publish at pub_retry */
	uint64_t pub_retry;
	char last_error[256];	/* the error last logged */
	bool nothing_logged;	/* "publishes nothing" logged */
	bool seen;		/* listed by the round's entries */
};

struct rsv_query {
	struct rsv_domain *d;
	int f;
	void *io;
};

struct rsv {
	struct rsv_opts o;
	struct rsv_ops ops;
	void *arg;
	bool leader;
	bool asked;	     /* a round has run */
	uint64_t round_at;   /* the next round (0: at the first run) */
	uint64_t last_round; /* 0: none while leading */
	struct rsv_domain **v; /* sorted by entry */
	size_t n, cap;
	struct rsv_domain *whead, *wtail; /* waiting for a slot */
	unsigned resolving;
};

static int fam_family(int f)
{
	return f ? AF_INET6 : AF_INET;
}

static uint64_t ttl_clamp(const struct rsv *r, uint32_t ttl)
{
	uint64_t ms = (uint64_t)ttl * 1000;

	return MIN(MAX(ms, r->o.ttl_min_ms), r->o.ttl_max_ms);
}

/* When an address goes unless an answer confirms it. */
static uint64_t addr_removal(const struct rsv *r, const struct rsv_addr *a)
{
	return a->gone ? a->gone : a->expires + r->o.grace_ms;
}

/* --- the domain table --- */

/* Index of entry in r->v, or -(insertion point) - 1. */
static ssize_t domain_index(const struct rsv *r, int64_t entry)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->v[mid]->entry == entry)
			return (ssize_t)mid;
		if (r->v[mid]->entry < entry)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ssize_t)lo - 1;
}

static struct rsv_domain *domain_find(const struct rsv *r, int64_t entry)
{
	ssize_t i = domain_index(r, entry);

	return i >= 0 ? r->v[i] : NULL;
}

static void queue_remove(struct rsv *r, struct rsv_domain *d)
{
	struct rsv_domain **p = &r->whead, *prev = NULL;

	if (!d->waiting)
		return;
	while (*p != d) {
		prev = *p;
		p = &(*p)->wnext;
	}
	*p = d->wnext;
	if (r->wtail == d)
		r->wtail = prev;
	d->wnext = NULL;
	d->waiting = false;
}

static void queue_push(struct rsv *r, struct rsv_domain *d)
{
	d->waiting = true;
	d->wnext = NULL;
	if (r->wtail)
		r->wtail->wnext = d;
	else
		r->whead = d;
	r->wtail = d;
}

static void fam_clear_refused(struct rsv_fam *fm)
{
	FREE_AND_NULL(fm->refused);
	fm->n_refused = 0;
}

/* Free d, cancelling its queries; the caller takes it out of r->v. */
static void domain_free(struct rsv *r, struct rsv_domain *d)
{
	for (int f = 0; f < 2; f++) {
		struct rsv_query *q = d->fam[f].q;
		if (q) {
			r->ops.cancel(r->arg, q->io);
			free(q);
		}
		fam_clear_refused(&d->fam[f]);
	}
	if (d->pending)
		r->resolving--;
	queue_remove(r, d);
	free(d->addrs);
	free(d->pub);
	free(d->name);
	free(d);
}

static void domain_remove_at(struct rsv *r, size_t i)
{
	domain_free(r, r->v[i]);
	memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
	r->n--;
}

static void domain_remove(struct rsv *r, struct rsv_domain *d)
{
	ssize_t i = domain_index(r, d->entry);

	if (i >= 0)
		domain_remove_at(r, (size_t)i);
}

/* Insert a (not in d yet) in address order; returns it. */
static struct rsv_addr *addr_insert(struct rsv_domain *d, const struct addr *a)
{
	size_t i = 0;

	while (i < d->n_addrs && addr_cmp(&d->addrs[i].addr, a) < 0)
		i++;
	d->addrs = xrealloc(d->addrs, (d->n_addrs + 1) * sizeof(d->addrs[0]));
	memmove(&d->addrs[i + 1], &d->addrs[i], (d->n_addrs - i) * sizeof(d->addrs[0]));
	d->n_addrs++;
	memset(&d->addrs[i], 0, sizeof(d->addrs[i]));
	d->addrs[i].addr = *a;
	return &d->addrs[i];
}

static struct rsv_addr *addr_find(struct rsv_domain *d, const struct addr *a)
{
	for (size_t i = 0; i < d->n_addrs; i++)
		if (addr_eq(&d->addrs[i].addr, a))
			return &d->addrs[i];
	return NULL;
}

/*
 * Adopt what the store publishes for d: records expired now, so they stay for the grace
 * period unless DNS confirms them.  An address refused now is dropped (the next publish
 * takes it away).
 */
static void domain_adopt(struct rsv *r, struct rsv_domain *d, uint64_t now)
{
	struct addr *v = NULL;
	size_t n = 0;
	int rc = r->ops.published(r->arg, d->entry, &v, &n);

	if (rc < 0) {
		log_warnx("resolver: %s (entry %lld): what it publishes: %s", d->name,
			(long long)d->entry, strerror(-rc));
		return; /* pub_ok stays false: the first answers decide */
	}
	d->pub = v;
	d->n_pub = n;
	d->pub_ok = true;
	for (size_t i = 0; i < n; i++) {
		struct cidr c;
		cidr_from_addr(&v[i], &c);
		if (al_dst_refused(&c, NULL) || addr_find(d, &v[i]))
			continue;
		addr_insert(d, &v[i])->expires = now;
	}
}

static struct rsv_domain *domain_add(struct rsv *r, int64_t entry, const char *name,
	uint64_t now)
{
	ssize_t i = domain_index(r, entry);
	struct rsv_domain *d;

	if (i >= 0)
		return r->v[i];
	d = xcalloc(1, sizeof(*d));
	d->entry = entry;
	d->name = xstrdup(name);
	d->next_at = now;
	d->pub_retry = NEVER;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = xrealloc(r->v, r->cap * sizeof(r->v[0]));
	}
	i = -i - 1;
	memmove(&r->v[i + 1], &r->v[i], (r->n - (size_t)i) * sizeof(r->v[0]));
	r->v[i] = d;
	r->n++;
	domain_adopt(r, d, now);
	return d;
}

static void forget_all(struct rsv *r)
{
	while (r->n)
		domain_remove_at(r, r->n - 1);
}

/* --- what a domain says --- */

/* The domain's error for the status and the log, "" when none. */
static void domain_error(const struct rsv_domain *d, char *buf, size_t len)
{
	const struct rsv_fam *a = &d->fam[0], *aaaa = &d->fam[1];
	bool fa = a->answered && a->rcode == RSV_FAILED;
	bool faaaa = aaaa->answered && aaaa->rcode == RSV_FAILED;

	buf[0] = '\0';
	if ((a->answered && a->rcode == RSV_NXDOMAIN) ||
		(aaaa->answered && aaaa->rcode == RSV_NXDOMAIN))
		snprintf(buf, len, "name does not exist (NXDOMAIN)");
	else if (fa && faaaa && streq(a->error, aaaa->error))
		snprintf(buf, len, "A and AAAA: %s", a->error);
	else if (fa && faaaa)
		snprintf(buf, len, "A: %s; AAAA: %s", a->error, aaaa->error);
	else if (fa || faaaa)
		snprintf(buf, len, "%s: %s", fa ? "A" : "AAAA", fa ? a->error : aaaa->error);
	else if (a->answered && a->rcode == RSV_NODATA && aaaa->answered &&
		 aaaa->rcode == RSV_NODATA)
		snprintf(buf, len, "no A or AAAA record");
}

static bool domain_failing(const struct rsv_domain *d)
{
	for (int f = 0; f < 2; f++)
		if (d->fam[f].answered &&
			(d->fam[f].rcode == RSV_FAILED || d->fam[f].rcode == RSV_NXDOMAIN))
			return true;
	return false;
}

/* It resolves only to refused addresses (and nothing it had is left). */
static bool domain_publishes_nothing(const struct rsv_domain *d)
{
	return d->n_addrs == 0 && (d->fam[0].n_refused || d->fam[1].n_refused);
}

/* --- publishing --- */

/* Append " ADDR" to buf (a log line), with "..." once full. */
static void line_addr(char *buf, size_t len, const struct addr *a)
{
	size_t o = strlen(buf);
	char s[ADDR_STRLEN];

	if (o + 5 >= len)
		return;
	if (o + 1 + strlen(addr_str(a, s, sizeof(s))) + 4 >= len) {
		snprintf(buf + o, len - o, " ...");
		return;
	}
	snprintf(buf + o, len - o, " %s", s);
}

static bool addr_in(const struct addr *v, size_t n, const struct addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (addr_eq(&v[i], a))
			return true;
	return false;
}

static void log_publish(const struct rsv_domain *d, const struct addr *v, size_t n)
{
	char plus[256] = "", minus[256] = "";

	for (size_t i = 0; i < n; i++)
		if (!d->pub_ok || !addr_in(d->pub, d->n_pub, &v[i]))
			line_addr(plus, sizeof(plus), &v[i]);
	for (size_t i = 0; d->pub_ok && i < d->n_pub; i++)
		if (!addr_in(v, n, &d->pub[i]))
			line_addr(minus, sizeof(minus), &d->pub[i]);
	log_info("resolver: %s (entry %lld): publishes %zu address%s%s%s%s%s", d->name,
		(long long)d->entry, n, n == 1 ? "" : "es", plus[0] ? ", added" : "", plus,
		minus[0] ? ", removed" : "", minus);
}

/* Tell the store what d publishes if that changed.  -ENOENT: the entry is gone. */
static int domain_publish(struct rsv *r, struct rsv_domain *d, uint64_t now)
{
	struct addr *v = xcalloc(d->n_addrs + 1, sizeof(*v));
	size_t n = d->n_addrs;
	int rc;

	for (size_t i = 0; i < n; i++)
		v[i] = d->addrs[i].addr;
	if (d->pub_ok && d->n_pub == n && (n == 0 || !memcmp(d->pub, v, n * sizeof(*v)))) {
		free(v);
		return 0;
	}
	rc = r->ops.publish(r->arg, d->entry, v, n);
	if (rc == -ENOENT) {
		free(v);
		return rc;
	}
	if (rc < 0) {
		log_warnx("resolver: %s (entry %lld): publishing: %s (trying again)", d->name,
			(long long)d->entry, strerror(-rc));
		d->pub_ok = false;
		d->pub_retry = now + r->o.ttl_min_ms;
		free(v);
		return 0;
	}
	log_publish(d, v, n);
	free(d->pub);
	d->pub = v;
	d->n_pub = n;
	d->pub_ok = true;
	d->pub_retry = NEVER;
	return 0;
}

/* Addresses whose grace period ended go.  True if one went. */
static bool domain_expire(struct rsv *r, struct rsv_domain *d, uint64_t now)
{
	size_t j = 0;

	for (size_t i = 0; i < d->n_addrs; i++)
		if (addr_removal(r, &d->addrs[i]) > now)
			d->addrs[j++] = d->addrs[i];
	if (j == d->n_addrs)
		return false;
	d->n_addrs = j;
	return true;
}

static uint64_t domain_due(const struct rsv *r, const struct rsv_domain *d)
{
	uint64_t t = d->pending || d->waiting ? NEVER : d->next_at;

	for (size_t i = 0; i < d->n_addrs; i++)
		t = MIN(t, addr_removal(r, &d->addrs[i]));
	if (!d->pub_ok)
		t = MIN(t, d->pub_retry);
	return t;
}

/* --- answers --- */

static void fam_refuse(struct rsv_fam *fm, const struct addr *a, const char *why)
{
	for (size_t i = 0; i < fm->n_refused; i++)
		if (addr_eq(&fm->refused[i].addr, a))
			return;
	fm->refused = xrealloc(fm->refused, (fm->n_refused + 1) * sizeof(fm->refused[0]));
	fm->refused[fm->n_refused++] = (struct rsv_refused){.addr = *a, .why = why};
}

static void domain_apply(struct rsv *r, struct rsv_domain *d, int f, const struct rsv_answer *a,
	uint64_t now)
{
	struct rsv_fam *fm = &d->fam[f];
	enum rsv_rcode rcode = a->rcode;
	size_t n = 0;

	for (size_t i = 0; rcode == RSV_ANSWER && i < a->n; i++)
		if (a->addrs[i].family == fam_family(f))
			n++;
	if (rcode == RSV_ANSWER && n == 0)
		rcode = RSV_NODATA;
	fm->answered = true;
	fm->rcode = rcode;
	fm->ttl = 0;
	fm->error[0] = '\0';
	if (rcode == RSV_FAILED) {
		/* what it had stays until its records expire, then for the grace period */
		snprintf(fm->error, sizeof(fm->error), "%s", a->error ? a->error : "failed");
		return;
	}
	fam_clear_refused(fm);
	for (size_t i = 0; i < d->n_addrs; i++)
		d->addrs[i].hit = false;
	if (rcode == RSV_ANSWER) {
		uint64_t ttl_ms = ttl_clamp(r, a->ttl);

		fm->ttl = a->ttl;
		for (size_t i = 0; i < a->n; i++) {
			const struct addr *ad = &a->addrs[i];
			const char *why = NULL;
			struct rsv_addr *ra;
			struct cidr c;

			if (ad->family != fam_family(f))
				continue;
			cidr_from_addr(ad, &c);
			if (al_dst_refused(&c, &why)) {
				fam_refuse(fm, ad, why ? why : "is reserved");
				continue;
			}
			ra = addr_find(d, ad);
			if (!ra)
				ra = addr_insert(d, ad);
			ra->ttl = a->ttl;
			ra->expires = now + ttl_ms;
			ra->gone = 0;
			ra->hit = true;
		}
	}
	/* the family's others left DNS: grace from now (or from an earlier expiry) */
	for (size_t i = 0; i < d->n_addrs; i++) {
		struct rsv_addr *ra = &d->addrs[i];
		if (ra->addr.family == fam_family(f) && !ra->hit && !ra->gone)
			ra->gone = MIN(ra->expires, now) + r->o.grace_ms;
	}
}

static void domain_log_state(struct rsv_domain *d)
{
	char err[sizeof(d->last_error)];

	domain_error(d, err, sizeof(err));
	if (!streq(err, d->last_error)) {
		if (err[0])
			log_info("resolver: %s (entry %lld): %s", d->name, (long long)d->entry,
				err);
		else
			log_info("resolver: %s (entry %lld): resolves again", d->name,
				(long long)d->entry);
		snprintf(d->last_error, sizeof(d->last_error), "%s", err);
	}
	if (domain_publishes_nothing(d) != d->nothing_logged) {
		d->nothing_logged = !d->nothing_logged;
		if (d->nothing_logged) {
			const struct rsv_refused *x =
				d->fam[0].n_refused ? &d->fam[0].refused[0] : &d->fam[1].refused[0];
			char s[ADDR_STRLEN];

			log_info("resolver: %s (entry %lld): resolves only to reserved addresses "
				 "(%s %s, ...): publishes nothing",
				d->name, (long long)d->entry, addr_str(&x->addr, s, sizeof(s)),
				x->why);
		}
	}
}

/* Both queries of d's round are in: schedule the next one, publish.  -ENOENT: gone. */
static int domain_finish(struct rsv *r, struct rsv_domain *d, uint64_t now)
{
	uint64_t delay = r->o.interval_ms;
	bool failed = false;

	r->resolving--;
	d->resolved_at = now;
	for (int f = 0; f < 2; f++) {
		if (d->fam[f].rcode == RSV_ANSWER)
			delay = MIN(delay, ttl_clamp(r, d->fam[f].ttl));
		else if (d->fam[f].rcode == RSV_FAILED)
			failed = true;
	}
	if (failed) {
		unsigned shift = MIN(d->failures, 20u);
		d->failures++;
		delay = MIN(delay, (uint64_t)r->o.ttl_min_ms << shift);
	} else {
		d->failures = 0;
	}
	d->next_at = now + delay;
	domain_log_state(d);
	return domain_publish(r, d, now);
}

static void domain_start(struct rsv *r, struct rsv_domain *d, uint64_t now)
{
	r->resolving++;
	d->pending = 0;
	for (int f = 0; f < 2; f++) {
		struct rsv_query *q = xcalloc(1, sizeof(*q));
		int rc;

		q->d = d;
		q->f = f;
		rc = r->ops.query(r->arg, q, d->name, fam_family(f), &q->io);
		if (rc < 0) {
			struct rsv_answer a = {.rcode = RSV_FAILED, .error = strerror(-rc)};
			free(q);
			domain_apply(r, d, f, &a, now);
			continue;
		}
		d->fam[f].q = q;
		d->pending++;
	}
	if (d->pending == 0 && domain_finish(r, d, now) == -ENOENT)
		domain_remove(r, d);
}

static void start_waiting(struct rsv *r, uint64_t now)
{
	while (r->whead && r->resolving < r->o.concurrency) {
		struct rsv_domain *d = r->whead;
		queue_remove(r, d);
		domain_start(r, d, now);
	}
}

/* --- rounds --- */

struct sync_ctx {
	struct rsv *r;
	uint64_t now;
};

static int sync_cb(void *arg, int64_t entry, const char *name)
{
	struct sync_ctx *c = arg;

	domain_add(c->r, entry, name, c->now)->seen = true;
	return 0;
}

/* Know exactly the domain entries the store has. */
static void sync_entries(struct rsv *r, uint64_t now)
{
	struct sync_ctx c = {.r = r, .now = now};
	int rc;

	for (size_t i = 0; i < r->n; i++)
		r->v[i]->seen = false;
	rc = r->ops.entries(r->arg, sync_cb, &c);
	if (rc < 0) {
		log_warnx("resolver: listing the domain entries: %s", strerror(-rc));
		return;
	}
	for (size_t i = r->n; i-- > 0;)
		if (!r->v[i]->seen)
			domain_remove_at(r, i);
}

static void round_run(struct rsv *r, uint64_t now)
{
	bool lead = r->ops.leader(r->arg);

	if (!lead) {
		if (r->leader)
			log_info("resolver: another replica resolves now: stopped, %zu domain%s "
				 "forgotten",
				r->n, r->n == 1 ? "" : "s");
		else if (!r->asked)
			log_info("resolver: another replica resolves");
		forget_all(r);
		r->leader = false;
		r->asked = true;
		r->last_round = 0;
		r->round_at = now + MIN(r->o.interval_ms, LEADER_RETRY_MS);
		return;
	}
	r->round_at = now + r->o.interval_ms;
	r->last_round = now;
	sync_entries(r, now);
	if (!r->leader)
		log_info("resolver: this replica resolves the domain entries (%zu)", r->n);
	r->leader = true;
	r->asked = true;
}

/* --- the interface --- */

struct rsv *rsv_new(const struct rsv_opts *o, const struct rsv_ops *ops, void *arg)
{
	struct rsv *r = xcalloc(1, sizeof(*r));

	r->o = *o;
	r->ops = *ops;
	r->arg = arg;
	return r;
}

void rsv_free(struct rsv *r)
{
	if (!r)
		return;
	forget_all(r);
	free(r->v);
	free(r);
}

void rsv_set_opts(struct rsv *r, const struct rsv_opts *o, uint64_t now)
{
	r->o = *o;
	if (r->round_at > now + o->interval_ms)
		r->round_at = now + o->interval_ms;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i]->next_at > now + o->interval_ms)
			r->v[i]->next_at = now + o->interval_ms;
}

uint64_t rsv_run(struct rsv *r, uint64_t now)
{
	uint64_t next;

	if (now >= r->round_at)
		round_run(r, now);
	if (!r->leader)
		return r->round_at;
	for (size_t i = 0; i < r->n;) {
		struct rsv_domain *d = r->v[i];
		bool changed = domain_expire(r, d, now);

		if ((changed || (!d->pub_ok && now >= d->pub_retry)) &&
			domain_publish(r, d, now) == -ENOENT) {
			domain_remove_at(r, i);
			continue;
		}
		if (changed)
			domain_log_state(d);
		if (!d->pending && !d->waiting && d->next_at <= now + SLACK_MS)
			queue_push(r, d);
		i++;
	}
	start_waiting(r, now);
	next = r->round_at;
	for (size_t i = 0; i < r->n; i++)
		next = MIN(next, domain_due(r, r->v[i]));
	return MAX(next, now + 1);
}

uint64_t rsv_answer(struct rsv *r, struct rsv_query *q, const struct rsv_answer *a,
	uint64_t now)
{
	struct rsv_domain *d = q->d;
	uint64_t due = NEVER;

	d->fam[q->f].q = NULL;
	domain_apply(r, d, q->f, a, now);
	free(q);
	if (--d->pending == 0 && domain_finish(r, d, now) == -ENOENT) {
		domain_remove(r, d);
		d = NULL;
	}
	if (d)
		due = domain_due(r, d);
	start_waiting(r, now);
	return due;
}

void rsv_entry_added(struct rsv *r, int64_t entry, const char *name, uint64_t now)
{
	if (r->leader)
		domain_add(r, entry, name, now);
}

void rsv_entry_deleted(struct rsv *r, int64_t entry)
{
	ssize_t i = domain_index(r, entry);

	if (i >= 0)
		domain_remove_at(r, (size_t)i);
}

bool rsv_leading(const struct rsv *r)
{
	return r->leader;
}

/* --- status --- */

static json_t *json_time(uint64_t mono, int64_t wall_off_ms)
{
	char buf[TIME_ISO_STRLEN];

	return json_string(time_iso((int64_t)mono + wall_off_ms, buf, sizeof(buf)));
}

static json_t *json_addr(const struct addr *a)
{
	char s[ADDR_STRLEN];

	return json_string(addr_str(a, s, sizeof(s)));
}

json_t *rsv_entry_status(struct rsv *r, int64_t entry, uint64_t now, int64_t wall_off_ms)
{
	struct rsv_domain *d = domain_find(r, entry);
	json_t *o, *addrs, *refused;
	char err[256];

	if (!d)
		return NULL;
	addrs = json_array();
	for (size_t i = 0; i < d->n_addrs; i++) {
		const struct rsv_addr *a = &d->addrs[i];
		bool live = !a->gone && a->expires > now;

		json_array_append_new(addrs, json_pack("{s:o, s:I, s:o}", "address",
			json_addr(&a->addr), "ttl", (json_int_t)a->ttl,
			live ? "expires" : "grace_until",
			json_time(live ? a->expires : addr_removal(r, a), wall_off_ms)));
	}
	refused = json_array();
	for (int f = 0; f < 2; f++)
		for (size_t i = 0; i < d->fam[f].n_refused; i++)
			json_array_append_new(refused, json_pack("{s:o, s:s}", "address",
				json_addr(&d->fam[f].refused[i].addr), "why",
				d->fam[f].refused[i].why));
	domain_error(d, err, sizeof(err));
	o = json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:b, s:o}", "entry", (json_int_t)entry,
		"name", d->name, "addresses", addrs, "refused", refused, "resolved_at",
		d->resolved_at ? json_time(d->resolved_at, wall_off_ms) : json_null(), "next_at",
		json_time(d->next_at, wall_off_ms), "resolving", d->pending > 0, "error",
		err[0] ? json_string(err) : json_null());
	if (domain_publishes_nothing(d))
		json_object_set_new(o, "publishes_nothing",
			json_string("resolves only to reserved addresses"));
	for (int f = 0; f < 2; f++)
		if (d->fam[f].answered && d->fam[f].rcode == RSV_ANSWER)
			json_object_set_new(o, f ? "ttl_aaaa" : "ttl_a",
				json_integer(d->fam[f].ttl));
	return o;
}

json_t *rsv_status(struct rsv *r, uint64_t now, int64_t wall_off_ms)
{
	size_t waiting = 0, failing = 0, nothing = 0;

	for (size_t i = 0; i < r->n; i++) {
		waiting += r->v[i]->waiting;
		failing += domain_failing(r->v[i]);
		nothing += domain_publishes_nothing(r->v[i]);
	}
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "leader", r->leader,
		"domains", (json_int_t)r->n, "resolving", (json_int_t)r->resolving, "waiting",
		(json_int_t)waiting, "failing", (json_int_t)failing, "publishing_nothing",
		(json_int_t)nothing, "last_round",
		r->last_round ? json_time(r->last_round, wall_off_ms) : json_null(), "next_round",
		r->asked ? json_time(MAX(r->round_at, now), wall_off_ms) : json_null());
}
