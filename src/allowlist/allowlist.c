/*
 * allowlist.c - the gateway agent: egressd's [allowlist] module.
 *
 * Holds the list egress-server published (items and their version), enforces it through
 * the allowlist's table (al_nft.c), keeps it in state_dir (written whole and atomically
 * once applied, read back and enforced at once on start, so a gateway that restarts while
 * the server is away blocks and allows exactly what it did), follows the server through
 * al_client.c, and admits the addresses the DNS forwarder's answers give for allowed names
 * (dnswatch.h) before the answers leave.  A destination the server should never have sent
 * (private, loopback, documentation, ...: al_dst_refused()) is skipped and logged.
 *
 * Must not: block the loop, touch any table but the allowlist's, or forget the list it
 * enforces when the server is gone (the data plane outlives the control plane).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "al_client.h"
#include "al_conf.h"
#include "al_nft.h"
#include "al_proto.h"
#include "allowlist.h"
#include "api.h"
#include "dnswatch.h"
#include "fileio.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "nft.h"
#include "sysctl.h"
#include "util.h"

struct name_ref {
	const char *name; /* an item's name: "example.com" or "*.example.com" (borrowed) */
	size_t item;	  /* its index in items */
};

#define SKIPS_KEPT 16

/* A destination left out, for the status: the last SKIPS_KEPT different ones. */
struct skip {
	char what[AL_VALUE_MAX]; /* the entry's label, or the name answered */
	char dst[CIDR_STRLEN];
	const char *why; /* al_dst_refused()'s */
	int64_t at;	 /* unix seconds */
};

struct allowlist {
	struct module_env *env;
	const struct conf *conf;
	struct nft *nft;
	struct al_nft *tbl;
	struct al_client *client;
	bool table_in; /* our table is in the kernel */
	char *client_key; /* the settings the client was made from */
	char name[AL_GATEWAY_MAX];

	/* the list enforced: sorted by key */
	struct al_item *items;
	size_t n_items;
	uint64_t version;
	struct name_ref *names; /* sorted by name */
	size_t n_names;
	bool watching;

	uint64_t skipped, learned, applies, apply_errors;
	struct skip skips[SKIPS_KEPT];
	size_t n_skips;
	int64_t applied_at;
	char last_error[256];
	struct log_ratelimit rl_skip, rl_dns;

	struct metric_family *m_bytes, *m_packets, *m_drops, *m_drop_bytes, *m_version, *m_items,
		*m_connected, *m_skipped, *m_learned;
};

static const struct conf_allowlist *al_conf(const struct allowlist *a)
{
	return conf_allowlist(a->conf);
}

/* ------------------------------------------------------------------ the list */

static int item_key_cb(const void *x, const void *y)
{
	return strcmp(((const struct al_item *)x)->key, ((const struct al_item *)y)->key);
}

static void items_free(struct al_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		al_item_clear(&v[i]);
	free(v);
}

static const struct al_item *item_find(const struct allowlist *a, const char *key)
{
	struct al_item k;

	if (!a->n_items)
		return NULL;
	snprintf(k.key, sizeof(k.key), "%s", key);
	return bsearch(&k, a->items, a->n_items, sizeof(*a->items), item_key_cb);
}

/* Count a destination left out and keep it for the status (once per what and dst). */
static void skip_note(struct allowlist *a, const char *what, const char *dst, const char *why)
{
	struct skip *k = NULL;

	a->skipped++;
	for (size_t i = 0; i < a->n_skips && !k; i++)
		if (!strcmp(a->skips[i].what, what) && !strcmp(a->skips[i].dst, dst))
			k = &a->skips[i];
	if (!k) {
		if (a->n_skips == SKIPS_KEPT)
			memmove(a->skips, a->skips + 1, --a->n_skips * sizeof(*a->skips));
		k = &a->skips[a->n_skips++];
		snprintf(k->what, sizeof(k->what), "%s", what);
		snprintf(k->dst, sizeof(k->dst), "%s", dst);
	}
	k->why = why;
	k->at = (int64_t)time(NULL);
}

/*
 * Leave out destinations that must never be allowed (logged), sort v by key and keep one
 * of equal keys (a list has none: a delta's keys are taken out before its items go in).
 * Returns the new count.
 */
static size_t items_tidy(struct allowlist *a, struct al_item *v, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		const char *why = NULL;

		if (v[i].kind == AL_ITEM_DST && al_dst_refused(&v[i].dst, &why)) {
			char d[CIDR_STRLEN];

			cidr_str(&v[i].dst, d, sizeof(d));
			skip_note(a, v[i].label, d, why);
			if (log_ratelimit(&a->rl_skip))
				log_warnx("allowlist: item %s (%s): %s %s: skipped", v[i].key,
					v[i].label, d, why);
			al_item_clear(&v[i]);
			continue;
		}
		if (out != i)
			v[out] = v[i];
		out++;
	}
	n = out;
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), item_key_cb);
	out = 0;
	for (size_t i = 0; i < n; i++) {
		if (out && !strcmp(v[out - 1].key, v[i].key)) {
			al_item_clear(&v[out - 1]);
			v[out - 1] = v[i];
			continue;
		}
		v[out++] = v[i];
	}
	return out;
}

static int name_cb(const void *x, const void *y)
{
	return strcmp(((const struct name_ref *)x)->name, ((const struct name_ref *)y)->name);
}

static void names_index(struct allowlist *a)
{
	free(a->names);
	a->names = NULL;
	a->n_names = 0;
	for (size_t i = 0; i < a->n_items; i++)
		if (a->items[i].kind == AL_ITEM_NAME) {
			a->names = xrealloc(a->names, (a->n_names + 1) * sizeof(*a->names));
			a->names[a->n_names++] = (struct name_ref){a->items[i].name, i};
		}
	if (a->n_names)
		qsort(a->names, a->n_names, sizeof(*a->names), name_cb);
}

/* The state file: the list as a snapshot message. */
static void state_path(const struct allowlist *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", al_conf(a)->state_dir, AL_STATE_FILE);
}

static int state_save(struct allowlist *a)
{
	char path[PATH_MAX], *text;
	struct al_msg m;
	size_t len;
	int r;

	al_msg_init(&m);
	m.type = AL_MSG_SNAPSHOT;
	m.version = a->version;
	/* borrowed: the message only reads them */
	m.set = a->items;
	m.n_set = a->n_items;
	text = al_msg_encode(&m, &len);
	m.set = NULL;
	m.n_set = 0;
	al_msg_clear(&m);
	if (!text)
		return -ENOMEM;
	state_path(a, path, sizeof(path));
	r = dir_ensure(al_conf(a)->state_dir, 0700);
	if (r == 0)
		r = file_write_atomic(path, text, len, 0600);
	free(text);
	if (r < 0)
		log_warnx("allowlist: cannot keep the list in %s: %s", path, strerror(-r));
	return r;
}

/*
 * Enforce items (n, owned: taken whatever happens) as version.  The table changes by the
 * difference in one transaction; if that fails, the whole table is replaced in one.  On
 * failure the running list stays.  0 or -errno with why.
 */
static int list_apply(struct allowlist *a, struct al_item *items, size_t n, uint64_t version,
	bool save, char *why, size_t why_len)
{
	const struct conf_allowlist *c = al_conf(a);
	size_t changed = 0;
	char *err = NULL;
	int r;

	n = items_tidy(a, items, n);
	if (n > (size_t)c->max_items) {
		snprintf(why, why_len, "%zu items: more than max_items (%d)", n, c->max_items);
		items_free(items, n);
		return -E2BIG;
	}
	r = al_nft_apply(a->tbl, items, n, &changed, &err);
	if (r < 0) {
		struct al_nft_conf nc = {.clients = c->clients, .nat = c->nat,
			.drops_max = (uint32_t)c->drops_max};

		log_warnx("allowlist: version %llu: changing the table: %s: replacing it whole",
			(unsigned long long)version, err ? err : strerror(-r));
		free(err);
		err = NULL;
		r = al_nft_start(a->tbl, &nc, items, n, &err);
		changed = n;
	}
	if (r < 0) {
		snprintf(why, why_len, "nftables: %s", err ? err : strerror(-r));
		log_warnx("allowlist: version %llu not applied: %s", (unsigned long long)version,
			why);
		free(err);
		items_free(items, n);
		a->apply_errors++;
		snprintf(a->last_error, sizeof(a->last_error), "%s", why);
		return r;
	}
	items_free(a->items, a->n_items);
	a->items = items;
	a->n_items = n;
	a->version = version;
	a->applies++;
	a->applied_at = (int64_t)time(NULL);
	a->last_error[0] = '\0';
	names_index(a);
	if (changed || save)
		log_info("allowlist: version %llu applied: %zu items, %zu elements changed",
			(unsigned long long)version, n, changed);
	if (save)
		(void)state_save(a);
	if (a->m_version)
		metrics_gauge_set(a->m_version, (double)version);
	if (a->m_items)
		metrics_gauge_set(a->m_items, (double)n);
	return 0;
}

static bool key_in(const char *key, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], key))
			return true;
	return false;
}

/* The list after delta m: the running one without m's del and set keys, plus m's set. */
static int delta_items(const struct allowlist *a, const struct al_msg *m, struct al_item **ret,
	size_t *n_ret)
{
	struct al_item *v = xcalloc(a->n_items + m->n_set + 1, sizeof(*v));
	size_t n = 0;
	char **keys = xcalloc(m->n_set + m->n_del + 1, sizeof(*keys));
	size_t nk = 0;
	int r = 0;

	/* a few keys change at a time: a linear look is cheaper than sorting them */
	for (size_t i = 0; i < m->n_del; i++)
		keys[nk++] = m->del[i];
	for (size_t i = 0; i < m->n_set; i++)
		keys[nk++] = (char *)m->set[i].key;
	for (size_t i = 0; i < a->n_items && r == 0; i++) {
		if (nk < 64 ? key_in(a->items[i].key, keys, nk) : false)
			continue;
		r = al_item_copy(&a->items[i], &v[n]);
		if (r == 0)
			n++;
	}
	if (nk >= 64 && r == 0) {
		/* many: drop them by a sorted look-up instead */
		size_t out = 0;

		qsort(keys, nk, sizeof(*keys), (int (*)(const void *, const void *))strcmp);
		for (size_t i = 0; i < n; i++) {
			size_t lo = 0, hi = nk;
			bool found = false;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				int c = strcmp(keys[mid], v[i].key);

				if (!c) {
					found = true;
					break;
				}
				if (c < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (found)
				al_item_clear(&v[i]);
			else
				v[out++] = v[i];
		}
		n = out;
	}
	for (size_t i = 0; i < m->n_set && r == 0; i++) {
		r = al_item_copy(&m->set[i], &v[n]);
		if (r == 0)
			n++;
	}
	free(keys);
	if (r < 0) {
		items_free(v, n);
		return r;
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

/* Take m's items (copied) for a snapshot. */
static int snapshot_items(const struct al_msg *m, struct al_item **ret, size_t *n_ret)
{
	struct al_item *v = xcalloc(m->n_set + 1, sizeof(*v));
	int r = 0;
	size_t n = 0;

	for (size_t i = 0; i < m->n_set && r == 0; i++) {
		r = al_item_copy(&m->set[i], &v[n]);
		if (r == 0)
			n++;
	}
	if (r < 0) {
		items_free(v, n);
		return r;
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

/* The list kept in state_dir, enforced at once on start: 0 (also when there is none). */
static void state_load(struct allowlist *a, struct al_item **ret, size_t *n_ret,
	uint64_t *version_ret)
{
	const struct conf_allowlist *c = al_conf(a);
	char path[PATH_MAX], *text = NULL;
	struct al_error err = {0};
	struct al_msg m;
	size_t len;
	int r;

	*ret = NULL;
	*n_ret = 0;
	*version_ret = 0;
	state_path(a, path, sizeof(path));
	r = file_read(path, (size_t)c->max_message, &text, &len);
	if (r == -ENOENT) {
		log_info("allowlist: no list kept in %s yet: every destination blocked until the "
			 "server sends one",
			path);
		return;
	}
	if (r < 0) {
		log_warnx("allowlist: cannot read %s: %s: every destination blocked until the "
			  "server sends a list",
			path, strerror(-r));
		return;
	}
	r = al_msg_parse(text, len, &m, &err);
	free(text);
	if (r == 0 && m.type != AL_MSG_SNAPSHOT) {
		r = -EINVAL;
		snprintf(err.field, sizeof(err.field), "type");
		snprintf(err.msg, sizeof(err.msg), "expected a snapshot");
	}
	if (r == 0)
		r = snapshot_items(&m, ret, n_ret);
	if (r < 0)
		log_warnx("allowlist: %s: %s: %s: every destination blocked until the server sends "
			  "a list",
			path, err.field, err.msg);
	else
		*version_ret = m.version;
	al_msg_clear(&m);
}

/* ------------------------------------------------------------------ the server */

static uint64_t version_cb(void *arg)
{
	return ((struct allowlist *)arg)->version;
}

static int apply_cb(void *arg, const struct al_msg *m, char *why, size_t why_len)
{
	struct allowlist *a = arg;
	struct al_item *items = NULL;
	size_t n = 0;
	int r;

	if (m->type == AL_MSG_DELTA && m->from != a->version) {
		log_info("allowlist: a delta from version %llu, we hold %llu: asking again",
			(unsigned long long)m->from, (unsigned long long)a->version);
		return -ESTALE;
	}
	if (m->type == AL_MSG_DELTA)
		r = delta_items(a, m, &items, &n);
	else
		r = snapshot_items(m, &items, &n);
	if (r < 0) {
		snprintf(why, why_len, "%s", strerror(-r));
		return r;
	}
	return list_apply(a, items, n, m->version, true, why, why_len);
}

static void state_cb(void *arg, enum al_client_state s, const char *why)
{
	struct allowlist *a = arg;

	(void)why;
	if (a->m_connected)
		metrics_gauge_set(a->m_connected, s == AL_CLIENT_SYNCED ? 1 : 0);
}

static const struct al_client_ops client_ops = {
	.version_cb = version_cb,
	.apply_cb = apply_cb,
	.state_cb = state_cb,
};

/* What the client is made from, to tell whether a reload changes it. */
static char *client_key(const struct conf_allowlist *c, const char *name)
{
	char *s = NULL;

	if (asprintf(&s, "%s|%s|%s|%s|%s|%s|%s|%s|%d|%u|%u|%u|%u", c->server ?: "", c->token ?: "",
		    c->token_file ?: "", c->ca ?: "", c->cert ?: "", c->key ?: "", c->name ?: "", name,
		    c->max_message, c->ping_ms, c->timeout_ms, c->reconnect_min_ms,
		    c->reconnect_max_ms) < 0)
		fatalx("out of memory");
	return s;
}

static int client_start(struct allowlist *a)
{
	const struct conf_allowlist *c = al_conf(a);
	char *token = NULL;
	int r;

	if (!c->server)
		return 0;
	if (c->token_file) {
		size_t len;

		r = file_read(c->token_file, 4096, &token, &len);
		if (r < 0) {
			log_warnx("allowlist: token_file %s: %s", c->token_file, strerror(-r));
			return r;
		}
		while (len && (token[len - 1] == '\n' || token[len - 1] == '\r' ||
				      token[len - 1] == ' '))
			token[--len] = '\0';
	}
	r = al_client_new(a->env->base,
		&(struct al_client_conf){.url = c->server, .ca = c->ca, .cert = c->cert,
			.key = c->key, .token = token ? token : c->token, .name = a->name,
			.max_message = (size_t)c->max_message, .ping_ms = c->ping_ms,
			.timeout_ms = c->timeout_ms, .reconnect_min_ms = c->reconnect_min_ms,
			.reconnect_max_ms = c->reconnect_max_ms},
		&client_ops, a, &a->client);
	free(token);
	if (r < 0)
		log_warnx("allowlist: server %s: %s", c->server, strerror(-r));
	return r;
}

/* ------------------------------------------------------------------ DNS learning */

/* Add the items named n (exact) to the index list v (no repeats). */
static void names_match(const struct allowlist *a, const char *n, size_t *v, size_t *nv,
	size_t cap)
{
	struct name_ref k = {.name = n};
	struct name_ref *hit;
	size_t i;

	if (!a->n_names)
		return;
	hit = bsearch(&k, a->names, a->n_names, sizeof(*a->names), name_cb);
	if (!hit)
		return;
	i = (size_t)(hit - a->names);
	while (i > 0 && !strcmp(a->names[i - 1].name, n))
		i--;
	for (; i < a->n_names && !strcmp(a->names[i].name, n); i++) {
		bool seen = false;

		for (size_t j = 0; j < *nv; j++)
			seen |= v[j] == a->names[i].item;
		if (!seen && *nv < cap)
			v[(*nv)++] = a->names[i].item;
	}
}

#define MATCH_MAX 64

static void dns_cb(void *arg, const struct dnswatch_answer *ans)
{
	struct allowlist *a = arg;
	const struct conf_allowlist *c = al_conf(a);
	struct al_nft_learn *l;
	size_t match[MATCH_MAX], nm = 0, nl = 0, added = 0;
	char *err = NULL;
	int r;

	/* any name of the chain: the query's name, or a CNAME target the list allows */
	for (size_t i = 0; i < ans->n_names; i++) {
		const char *n = ans->names[i];
		char wild[AL_VALUE_MAX + 2];

		names_match(a, n, match, &nm, MATCH_MAX);
		/* "*.example.com" allows names under example.com, not example.com itself */
		for (const char *p = strchr(n, '.'); p; p = strchr(p + 1, '.')) {
			snprintf(wild, sizeof(wild), "*%s", p);
			names_match(a, wild, match, &nm, MATCH_MAX);
		}
	}
	if (!nm || !ans->n_addrs)
		return;
	l = xcalloc(nm * ans->n_addrs, sizeof(*l));
	for (size_t i = 0; i < ans->n_addrs; i++) {
		const struct dnswatch_addr *d = &ans->addrs[i];
		uint64_t ms = (uint64_t)d->ttl * 1000;
		struct cidr host;
		const char *why;

		cidr_from_addr(&d->addr, &host);
		if (al_dst_refused(&host, &why)) {
			char s[ADDR_STRLEN];

			addr_str(&d->addr, s, sizeof(s));
			skip_note(a, ans->names[0], s, why);
			if (log_ratelimit(&a->rl_skip))
				log_warnx("allowlist: %s answered %s, which %s: skipped",
					ans->names[0], s, why);
			continue;
		}
		if (ms < c->dns_ttl_min_ms)
			ms = c->dns_ttl_min_ms;
		if (ms > c->dns_ttl_max_ms)
			ms = c->dns_ttl_max_ms;
		for (size_t k = 0; k < nm; k++)
			l[nl++] = (struct al_nft_learn){.item = &a->items[match[k]],
				.addr = d->addr, .timeout_s = (uint32_t)((ms + 999) / 1000)};
	}
	r = nl ? al_nft_learn(a->tbl, l, nl, &added, &err) : 0;
	if (r < 0 && log_ratelimit(&a->rl_dns))
		log_warnx("allowlist: learning the addresses of %s: %s", ans->names[0],
			err ? err : strerror(-r));
	if (added) {
		a->learned += added;
		log_debug("allowlist: %s: %zu addresses learned", ans->names[0], added);
		if (a->m_learned)
			metrics_counter_add(a->m_learned, (double)added);
	}
	free(err);
	free(l);
}

static void watch_set(struct allowlist *a)
{
	bool want = al_conf(a)->dns && a->env->dnswatch;

	if (want && !a->watching)
		a->watching = dnswatch_subscribe(a->env->dnswatch, dns_cb, a) == 0;
	else if (!want && a->watching) {
		dnswatch_unsubscribe(a->env->dnswatch, dns_cb, a);
		a->watching = false;
	}
}

/* ------------------------------------------------------------------ metrics */

static void counter_cb(const char *key, const char *dst, uint64_t packets, uint64_t bytes,
	void *arg)
{
	struct allowlist *a = arg;
	const struct al_item *it = item_find(a, key);
	const char *label = it ? it->label : key;

	metrics_counter_add(a->m_bytes, (double)bytes, label, dst);
	metrics_counter_add(a->m_packets, (double)packets, label, dst);
}

static void drop_cb(const char *client, uint64_t packets, uint64_t bytes, void *arg)
{
	struct allowlist *a = arg;

	metrics_counter_add(a->m_drops, (double)packets, client);
	metrics_counter_add(a->m_drop_bytes, (double)bytes, client);
}

/* The kernel holds the counters: each scrape reads them afresh (elements that went are
 * gone from the output with them). */
static void scrape_cb(struct metrics *m, void *arg)
{
	struct allowlist *a = arg;

	(void)m;
	metrics_clear(a->m_bytes);
	metrics_clear(a->m_packets);
	metrics_clear(a->m_drops);
	metrics_clear(a->m_drop_bytes);
	(void)al_nft_counters(a->tbl, counter_cb, drop_cb, a);
	metrics_gauge_set(a->m_skipped, (double)a->skipped);
}

static int metrics_init(struct allowlist *a)
{
	struct metrics *r = a->env->metrics;
	int e = 0;

	if (!r)
		return 0;
	e |= metrics_counter_new(r, "egress_allowlist_bytes_total",
		"Bytes clients sent to an allowed destination, by the entry that allowed it",
		METRICS_LABELS("entry", "destination"), &a->m_bytes);
	e |= metrics_counter_new(r, "egress_allowlist_packets_total",
		"Packets clients sent to an allowed destination, by the entry that allowed it",
		METRICS_LABELS("entry", "destination"), &a->m_packets);
	e |= metrics_counter_new(r, "egress_allowlist_dropped_packets_total",
		"Packets from a client to a destination the allowlist does not allow",
		METRICS_LABELS("client"), &a->m_drops);
	e |= metrics_counter_new(r, "egress_allowlist_dropped_bytes_total",
		"Bytes from a client to a destination the allowlist does not allow",
		METRICS_LABELS("client"), &a->m_drop_bytes);
	e |= metrics_gauge_new(r, "egress_allowlist_version", "Version of the list enforced", NULL,
		&a->m_version);
	e |= metrics_gauge_new(r, "egress_allowlist_items", "Items of the list enforced", NULL,
		&a->m_items);
	e |= metrics_gauge_new(r, "egress_allowlist_server_connected",
		"1 while the list is in step with egress-server", NULL, &a->m_connected);
	e |= metrics_gauge_new(r, "egress_allowlist_skipped",
		"Destinations skipped because they must never be allowed (private, reserved)",
		NULL, &a->m_skipped);
	e |= metrics_counter_new(r, "egress_allowlist_learned_total",
		"Addresses admitted from DNS answers for allowed names", NULL, &a->m_learned);
	if (e)
		return -EINVAL;
	return metrics_on_scrape(r, scrape_cb, a);
}

/* ------------------------------------------------------------------ the module */

static void nft_conf(const struct conf_allowlist *c, struct al_nft_conf *ret)
{
	*ret = (struct al_nft_conf){.clients = c->clients, .nat = c->nat,
		.drops_max = (uint32_t)c->drops_max};
}

static void forwarding_hold(struct allowlist *a)
{
	const struct conf_allowlist *c = al_conf(a);
	bool v6 = false;

	for (size_t i = 0; i < c->clients.n; i++)
		v6 |= c->clients.v[i].addr.family == AF_INET6;
	sysctl_mark(a);
	sysctl_hold(a, "net/ipv4/ip_forward", 1, "allowlist: clients are forwarded");
	if (v6)
		sysctl_hold(a, "net/ipv6/conf/all/forwarding", 1,
			"allowlist: clients are forwarded");
	sysctl_sweep(a);
}

static int allowlist_new(struct module_env *env, const struct conf *conf, void **ret)
{
	struct allowlist *a = xcalloc(1, sizeof(*a));
	const struct conf_allowlist *c = conf_allowlist(conf);
	struct al_nft_conf nc;
	struct al_item *items;
	size_t n;
	uint64_t version;
	char *err = NULL, why[256];
	int r;

	*ret = a;
	a->env = env;
	a->conf = conf;
	a->rl_skip = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 10);
	a->rl_dns = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
	if (c->name)
		snprintf(a->name, sizeof(a->name), "%s", c->name);
	else if (gethostname(a->name, sizeof(a->name)) < 0 || !a->name[0])
		snprintf(a->name, sizeof(a->name), "gateway");
	a->name[sizeof(a->name) - 1] = '\0';
	a->nft = nft_new();
	if (!a->nft)
		return -ENOMEM;
	a->tbl = al_nft_new(a->nft);
	/* fail closed at once: the table with the last list, or with none */
	state_load(a, &items, &n, &version);
	nft_conf(c, &nc);
	r = al_nft_start(a->tbl, &nc, NULL, 0, &err);
	if (r < 0) {
		log_warnx("allowlist: cannot install table %s %s: %s", AL_NFT_FAMILY, AL_NFT_TABLE,
			err ? err : strerror(-r));
		free(err);
		items_free(items, n);
		return r;
	}
	a->table_in = true;
	r = list_apply(a, items, n, version, false, why, sizeof(why));
	if (r < 0)
		return r;
	log_info("allowlist: enforcing version %llu (%zu items) for %zu client subnets%s",
		(unsigned long long)version, a->n_items, c->clients.n,
		c->server ? "" : "; no server: the kept list only");
	forwarding_hold(a);
	r = metrics_init(a);
	if (r < 0)
		return r;
	if (a->m_version)
		metrics_gauge_set(a->m_version, (double)a->version);
	if (a->m_items)
		metrics_gauge_set(a->m_items, (double)a->n_items);
	watch_set(a);
	a->client_key = client_key(c, a->name);
	return client_start(a);
}

static int allowlist_reconf(void *m, const struct conf *conf)
{
	struct allowlist *a = m;
	const struct conf_allowlist *c = conf_allowlist(conf);
	struct al_nft_conf nc;
	char *key, *err = NULL;
	int r;

	a->conf = conf;
	nft_conf(c, &nc);
	r = al_nft_reconf(a->tbl, &nc, &err);
	if (r < 0) {
		log_warnx("allowlist: reload: %s", err ? err : strerror(-r));
		free(err);
		return r;
	}
	forwarding_hold(a);
	watch_set(a);
	if (c->name) /* else the host name it started with */
		snprintf(a->name, sizeof(a->name), "%s", c->name);
	key = client_key(c, a->name);
	if (strcmp(key, a->client_key)) {
		al_client_free(a->client);
		a->client = NULL;
		free(a->client_key);
		a->client_key = key;
		return client_start(a);
	}
	free(key);
	return 0;
}

static void allowlist_free(void *m)
{
	struct allowlist *a = m;
	char *err = NULL;
	bool keep;

	if (!a)
		return;
	/* a table that never came in (new() failed early) has nothing to keep */
	keep = a->table_in && al_conf(a)->keep_table;
	al_client_free(a->client);
	if (a->watching)
		dnswatch_unsubscribe(a->env->dnswatch, dns_cb, a);
	if (a->env->metrics)
		metrics_on_scrape_remove(a->env->metrics, scrape_cb, a);
	if (keep)
		log_info("allowlist: table %s %s left in place, enforcing version %llu "
			 "(keep_table)",
			AL_NFT_FAMILY, AL_NFT_TABLE, (unsigned long long)a->version);
	else if (a->tbl && al_nft_remove(a->tbl, &err) < 0)
		log_warnx("allowlist: removing table %s %s: %s", AL_NFT_FAMILY, AL_NFT_TABLE,
			err ? err : "failed");
	free(err);
	sysctl_release_all(a, keep);
	al_nft_free(a->tbl);
	nft_free(a->nft);
	items_free(a->items, a->n_items);
	free(a->names);
	free(a->client_key);
	free(a);
}

static void status_drop_cb(const char *client, uint64_t packets, uint64_t bytes, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I}", "client", client, "packets",
					   (json_int_t)packets, "bytes", (json_int_t)bytes));
}

static json_t *allowlist_status(void *m)
{
	struct allowlist *a = m;
	const struct conf_allowlist *c = al_conf(a);
	json_t *o, *clients = json_array();
	char s[CIDR_STRLEN], path[PATH_MAX];

	for (size_t i = 0; i < c->clients.n; i++)
		json_array_append_new(clients, json_string(cidr_str(&c->clients.v[i], s, sizeof(s))));
	state_path(a, path, sizeof(path));
	o = json_pack("{s:s?, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:b, s:b, s:s}",
		"server", c->server, "gateway", a->name, "version", (json_int_t)a->version, "items",
		(json_int_t)a->n_items, "elements", (json_int_t)al_nft_count(a->tbl), "learned",
		(json_int_t)al_nft_learned(a->tbl), "skipped", (json_int_t)a->skipped, "applies",
		(json_int_t)a->applies, "applied_at", (json_int_t)a->applied_at, "last_error",
		a->last_error, "clients", clients, "nat", c->nat, "dns", c->dns, "state_file",
		path);
	json_object_set_new(o, "connection", a->client ? al_client_status(a->client) : json_null());
	/* the kernel's drop counters: clients that sent what the list does not allow */
	json_t *drops = json_array();
	(void)al_nft_counters(a->tbl, NULL, status_drop_cb, drops);
	json_object_set_new(o, "drops", drops);
	/* the last destinations skipped, newest first */
	json_t *skips = json_array();
	for (size_t i = a->n_skips; i-- > 0;)
		json_array_append_new(skips, json_pack("{s:s, s:s, s:s, s:I}", "what",
						     a->skips[i].what, "dst", a->skips[i].dst, "why",
						     a->skips[i].why, "at", (json_int_t)a->skips[i].at));
	json_object_set_new(o, "skipped_items", skips);
	return o;
}

/* The items a request returns: the JSON of each, by its index in a->items (NULL: not asked) */
struct route_items {
	const struct allowlist *a;
	json_t **of;
};

/* An element's counters go in its item's "traffic": [{dst, packets, bytes}]. */
static void route_counter_cb(const char *key, const char *dst, uint64_t packets, uint64_t bytes,
	void *arg)
{
	struct route_items *ri = arg;
	const struct al_item *it = item_find(ri->a, key);
	json_t *o = it ? ri->of[it - ri->a->items] : NULL;

	if (!o)
		return;
	if (!json_object_get(o, "traffic"))
		json_object_set_new(o, "traffic", json_array());
	json_array_append_new(json_object_get(o, "traffic"),
		json_pack("{s:s, s:I, s:I}", "dst", dst, "packets", (json_int_t)packets, "bytes",
			(json_int_t)bytes));
}

/* Whether item it has q (any case) in its label, name or destination. */
static bool item_matches(const struct al_item *it, const char *q)
{
	char d[CIDR_STRLEN];

	if (!*q || strcasestr(it->label, q) || strcasestr(it->name, q))
		return true;
	return it->kind == AL_ITEM_DST && strcasestr(cidr_str(&it->dst, d, sizeof(d)), q);
}

/*
 * GET /api/allowlist[?limit=N][&search=TEXT]: the status, with the first N items (default
 * 1000) having TEXT in their label, name or destination in "list" ("items" is the count of
 * all, "matched" of those with TEXT), each with its kernel counters in "traffic".
 */
static void allowlist_route_cb(struct api_req *r, void *arg)
{
	struct allowlist *a = arg;
	const char *ls = api_req_query(r, "limit"), *q = api_req_query(r, "search");
	struct route_items ri = {.a = a};
	json_t *o, *items;
	size_t matched = 0;
	long limit = 1000;
	char *end;

	if (ls) {
		limit = strtol(ls, &end, 10);
		if (*end || limit < 0 || limit > 10000000) {
			api_reply_error(r, 400, "limit", "expected a count of items, got \"%s\"", ls);
			return;
		}
	}
	o = allowlist_status(a);
	items = json_array();
	ri.of = xcalloc(a->n_items ? a->n_items : 1, sizeof(*ri.of));
	for (size_t i = 0; i < a->n_items; i++) {
		if (!item_matches(&a->items[i], q ? q : ""))
			continue;
		if (matched++ < (size_t)limit) {
			ri.of[i] = al_item_to_json(&a->items[i]);
			json_array_append(items, ri.of[i]);
		}
	}
	(void)al_nft_counters(a->tbl, route_counter_cb, NULL, &ri);
	for (size_t i = 0; i < a->n_items; i++)
		json_decref(ri.of[i]);
	free(ri.of);
	json_object_set_new(o, "list", items);
	json_object_set_new(o, "matched", json_integer((json_int_t)matched));
	json_object_set_new(o, "truncated", json_boolean(matched > (size_t)limit));
	api_reply_json(r, 200, o);
}

static const struct api_route allowlist_routes[] = {
	{EVHTTP_REQ_GET, "/api/allowlist", API_READ, allowlist_route_cb, false},
};

static bool allowlist_wanted(const struct conf *conf)
{
	return conf_allowlist(conf) != NULL;
}

static const struct conf_section_type *const allowlist_types[] = {&conf_allowlist_type};

const struct module module_allowlist = {
	.name = "allowlist",
	.conf_types = allowlist_types,
	.n_conf_types = ARRAY_SIZE(allowlist_types),
	.wanted = allowlist_wanted,
	.new = allowlist_new,
	.reconf = allowlist_reconf,
	.free = allowlist_free,
	.status = allowlist_status,
	.api_routes = allowlist_routes,
	.n_api_routes = ARRAY_SIZE(allowlist_routes),
};
