/*
 * dispatch.c - which uplink a new proxied connection leaves through (see dispatch.h).
 *
 * Smooth weighted round robin as nginx does it: every candidate's "current" grows by its
 * weight, the largest wins and gives back the sum of the candidates' weights.  Over any run of
 * sum-of-weights picks with a stable set of candidates each gets exactly its weight, spread
 * out rather than in bursts.  The default weights and each rule keep their own currents.
 *
 * Rules sit in a hash table keyed by (family, prefix length, prefix); a client is looked up at
 * each prefix length some rule uses, longest first, so a match costs at most 33 (129) probes
 * whatever the number of rules.  The affinity table is a hash of clients with an LRU list:
 * expired clients are swept from its old end, and when full the oldest is forgotten.  Both
 * hashes are keyed with a random seed so that peers cannot aim at one chain.
 *
 * Must not: touch sockets, read the clock, log, or grow without bound on a peer's behalf.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "dispatch.h"
#include "util.h"

#define NIL	       UINT32_MAX
#define AFF_LIMIT_MAX  (1u << 24)
#define JSON_RATIO_MAX 1000

struct dispatch_up {
	char *name;
	int weight;
	bool usable;
};

struct dispatch_rule {
	struct cidr src; /* host bits clear */
	int *w;		 /* nw weights by uplink index */
	size_t nw;
	char *desc;   /* may be NULL */
	int64_t *cur; /* n_up round-robin currents; NULL until the rule is first used */
};

struct aff {
	struct addr client;
	uint64_t last; /* the client's last connection */
	int uplink;
	uint32_t hnext;	     /* hash chain, or free list */
	uint32_t prev, next; /* LRU list: prev is more recent */
};

struct dispatch {
	uint64_t seed;

	struct dispatch_up *up;
	size_t n_up;
	int64_t *cur; /* default currents, n_up */

	struct dispatch_rule *rules;
	size_t n_rules, cap_rules;
	uint32_t *rhash; /* rule index + 1, 0 = empty; open addressing, rhash_cap a power of 2 */
	size_t rhash_cap;
	uint32_t plen_rules[2][129]; /* rules per family and prefix length */

	uint32_t affinity_ms; /* 0: off */
	size_t aff_max;
	struct aff *aff; /* aff_used entries made so far, aff_cap allocated */
	size_t aff_used, aff_cap, aff_count;
	uint32_t *bucket; /* n_bucket (a power of 2) chain heads */
	size_t n_bucket;
	uint32_t aff_free, lru_head, lru_tail;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t key_hash(uint64_t seed, const struct addr *a, unsigned plen)
{
	uint64_t w[2] = {0, 0};
	uint64_t h;

	memcpy(w, a->b, addr_len(a->family));
	h = mix64(seed ^ ((uint64_t)a->family << 8) ^ plen);
	h = mix64(h ^ w[0]);
	return mix64(h ^ w[1]);
}

static int fam_index(int family)
{
	return family == AF_INET ? 0 : 1;
}

static unsigned fam_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* ::ffff:a.b.c.d/n (n >= 96) is the IPv4 prefix a.b.c.d/(n - 96). */
static void cidr_unmap_v4(struct cidr *c)
{
	if (c->plen >= 96 && addr_unmap_v4(&c->addr))
		c->plen -= 96;
}

struct dispatch *dispatch_new(void)
{
	struct dispatch *d = xcalloc(1, sizeof(*d));

	if (getrandom(&d->seed, sizeof(d->seed), GRND_NONBLOCK) != (ssize_t)sizeof(d->seed))
		d->seed = mix64((uint64_t)(uintptr_t)d ^ 0x9e3779b97f4a7c15ULL);
	d->aff_max = DISPATCH_AFFINITY_MAX;
	d->aff_free = d->lru_head = d->lru_tail = NIL;
	return d;
}

/* ---- affinity table ---- */

static void aff_reset(struct dispatch *d)
{
	FREE_AND_NULL(d->aff);
	FREE_AND_NULL(d->bucket);
	d->aff_used = d->aff_cap = d->aff_count = d->n_bucket = 0;
	d->aff_free = d->lru_head = d->lru_tail = NIL;
}

static uint32_t aff_find(const struct dispatch *d, const struct addr *client)
{
	uint32_t i;

	if (!d->n_bucket)
		return NIL;
	i = d->bucket[key_hash(d->seed, client, 0) & (d->n_bucket - 1)];
	for (; i != NIL; i = d->aff[i].hnext)
		if (addr_eq(&d->aff[i].client, client))
			return i;
	return NIL;
}

static bool aff_expired(const struct dispatch *d, const struct aff *e, uint64_t now)
{
	return now >= e->last && now - e->last >= d->affinity_ms;
}

static void lru_unlink(struct dispatch *d, uint32_t i)
{
	struct aff *e = &d->aff[i];

	if (e->prev != NIL)
		d->aff[e->prev].next = e->next;
	else
		d->lru_head = e->next;
	if (e->next != NIL)
		d->aff[e->next].prev = e->prev;
	else
		d->lru_tail = e->prev;
}

static void lru_push_head(struct dispatch *d, uint32_t i)
{
	struct aff *e = &d->aff[i];

	e->prev = NIL;
	e->next = d->lru_head;
	if (d->lru_head != NIL)
		d->aff[d->lru_head].prev = i;
	d->lru_head = i;
	if (d->lru_tail == NIL)
		d->lru_tail = i;
}

static void aff_remove(struct dispatch *d, uint32_t i)
{
	uint32_t *p = &d->bucket[key_hash(d->seed, &d->aff[i].client, 0) & (d->n_bucket - 1)];

	while (*p != i)
		p = &d->aff[*p].hnext;
	*p = d->aff[i].hnext;
	lru_unlink(d, i);
	d->aff[i].hnext = d->aff_free;
	d->aff_free = i;
	d->aff_count--;
}

static void aff_rehash(struct dispatch *d, size_t n_bucket)
{
	free(d->bucket);
	d->bucket = xmalloc(n_bucket * sizeof(*d->bucket));
	d->n_bucket = n_bucket;
	for (size_t b = 0; b < n_bucket; b++)
		d->bucket[b] = NIL;
	for (uint32_t i = d->lru_head; i != NIL; i = d->aff[i].next) {
		uint32_t *h = &d->bucket[key_hash(d->seed, &d->aff[i].client, 0) & (n_bucket - 1)];

		d->aff[i].hnext = *h;
		*h = i;
	}
}

/* Remember (or refresh) client -> uplink at now. */
static void aff_set(struct dispatch *d, const struct addr *client, int uplink, uint64_t now)
{
	uint32_t i = aff_find(d, client), *h;

	if (i != NIL) {
		d->aff[i].uplink = uplink;
		d->aff[i].last = now;
		lru_unlink(d, i);
		lru_push_head(d, i);
		return;
	}
	if (d->aff_count >= d->aff_max)
		aff_remove(d, d->lru_tail);
	if (d->aff_free != NIL) {
		i = d->aff_free;
		d->aff_free = d->aff[i].hnext;
	} else {
		/* every entry made is in use, so aff_used == aff_count < aff_max */
		if (d->aff_used == d->aff_cap) {
			d->aff_cap = MIN(MAX(d->aff_cap * 2, (size_t)64), d->aff_max);
			d->aff = xrealloc(d->aff, d->aff_cap * sizeof(*d->aff));
		}
		i = (uint32_t)d->aff_used++;
	}
	d->aff[i].client = *client;
	d->aff[i].uplink = uplink;
	d->aff[i].last = now;
	lru_push_head(d, i);
	d->aff_count++;
	if (d->aff_count > d->n_bucket) {
		aff_rehash(d, MAX(d->n_bucket * 2, (size_t)64)); /* links the new entry too */
		return;
	}
	h = &d->bucket[key_hash(d->seed, client, 0) & (d->n_bucket - 1)];
	d->aff[i].hnext = *h;
	*h = i;
}

/* The LRU list is in order of last use, so expired clients are all at its old end. */
static void aff_sweep(struct dispatch *d, uint64_t now)
{
	while (d->lru_tail != NIL && aff_expired(d, &d->aff[d->lru_tail], now))
		aff_remove(d, d->lru_tail);
}

void dispatch_set_affinity(struct dispatch *d, uint32_t affinity_ms)
{
	d->affinity_ms = affinity_ms;
	if (!affinity_ms)
		aff_reset(d);
}

void dispatch_set_affinity_limit(struct dispatch *d, size_t max)
{
	aff_reset(d);
	d->aff_max = MIN(MAX(max, (size_t)1), (size_t)AFF_LIMIT_MAX);
}

size_t dispatch_affinity_count(const struct dispatch *d)
{
	return d->aff_count;
}

int dispatch_affinity_get(const struct dispatch *d, const struct addr *client, uint64_t now_ms)
{
	struct addr a;
	uint32_t i;

	if (!d->affinity_ms || !client || !addr_is_set(client))
		return -1;
	a = *client;
	addr_unmap_v4(&a);
	i = aff_find(d, &a);
	if (i == NIL || aff_expired(d, &d->aff[i], now_ms))
		return -1;
	return d->aff[i].uplink;
}

/* ---- rules ---- */

static int rule_find(const struct dispatch *d, const struct cidr *c)
{
	size_t mask = d->rhash_cap - 1, i;
	uint32_t slot;

	if (!d->rhash_cap)
		return -1;
	for (i = key_hash(d->seed, &c->addr, c->plen) & mask; (slot = d->rhash[i]);
		i = (i + 1) & mask) {
		const struct dispatch_rule *r = &d->rules[slot - 1];

		if (r->src.plen == c->plen && addr_eq(&r->src.addr, &c->addr))
			return (int)slot - 1;
	}
	return -1;
}

static void rhash_insert(struct dispatch *d, size_t idx)
{
	const struct cidr *c = &d->rules[idx].src;
	size_t mask = d->rhash_cap - 1, i;

	for (i = key_hash(d->seed, &c->addr, c->plen) & mask; d->rhash[i]; i = (i + 1) & mask)
		;
	d->rhash[i] = (uint32_t)idx + 1;
}

/* Take over *r (its arrays now belong to d). */
static void rule_append(struct dispatch *d, struct dispatch_rule *r)
{
	if (d->n_rules == d->cap_rules) {
		d->cap_rules = MAX(d->cap_rules * 2, (size_t)8);
		d->rules = xrealloc(d->rules, d->cap_rules * sizeof(*d->rules));
	}
	d->rules[d->n_rules++] = *r;
	if (d->n_rules * 2 > d->rhash_cap) {
		d->rhash_cap = MAX(d->rhash_cap * 2, (size_t)16);
		free(d->rhash);
		d->rhash = xcalloc(d->rhash_cap, sizeof(*d->rhash));
		for (size_t i = 0; i < d->n_rules; i++)
			rhash_insert(d, i);
	} else {
		rhash_insert(d, d->n_rules - 1);
	}
	d->plen_rules[fam_index(r->src.addr.family)][r->src.plen]++;
}

static void rule_clear(struct dispatch_rule *r)
{
	FREE_AND_NULL(r->w);
	FREE_AND_NULL(r->desc);
	FREE_AND_NULL(r->cur);
}

static char *desc_dup(const char *s)
{
	size_t n;
	char *p;

	if (!s || !*s)
		return NULL;
	n = strnlen(s, DISPATCH_MAX_DESCRIPTION);
	p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* A normalised copy of src in *ret: -EINVAL unless it is a prefix of a known family. */
static int rule_prefix(const struct cidr *src, struct cidr *ret)
{
	if (!src || (src->addr.family != AF_INET && src->addr.family != AF_INET6) ||
		src->plen > fam_bits(src->addr.family))
		return -EINVAL;
	*ret = *src;
	cidr_clear_hostbits(ret);
	cidr_unmap_v4(ret);
	return 0;
}

int dispatch_add_rule(struct dispatch *d, const struct cidr *src, const int *weights, size_t n,
	const char *description)
{
	struct dispatch_rule r = {0};
	int ret;

	ret = rule_prefix(src, &r.src);
	if (ret < 0)
		return ret;
	if (n > DISPATCH_MAX_UPLINKS)
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		if (weights[i] < 0)
			return -EINVAL;
		if (weights[i] > DISPATCH_MAX_WEIGHT)
			return -ERANGE;
	}
	if (rule_find(d, &r.src) >= 0)
		return -EEXIST;
	if (d->n_rules >= DISPATCH_MAX_RULES)
		return -E2BIG;
	r.nw = n;
	r.w = xcalloc(MAX(n, (size_t)1), sizeof(*r.w));
	if (n)
		memcpy(r.w, weights, n * sizeof(*r.w));
	r.desc = desc_dup(description);
	rule_append(d, &r);
	return 0;
}

void dispatch_clear_rules(struct dispatch *d)
{
	for (size_t i = 0; i < d->n_rules; i++)
		rule_clear(&d->rules[i]);
	FREE_AND_NULL(d->rules);
	FREE_AND_NULL(d->rhash);
	d->n_rules = d->cap_rules = d->rhash_cap = 0;
	memset(d->plen_rules, 0, sizeof(d->plen_rules));
}

size_t dispatch_rule_count(const struct dispatch *d)
{
	return d->n_rules;
}

int dispatch_rule_get(const struct dispatch *d, size_t i, struct cidr *src, const int **weights,
	size_t *n, const char **description)
{
	const struct dispatch_rule *r;

	if (i >= d->n_rules)
		return -ENOENT;
	r = &d->rules[i];
	if (src)
		*src = r->src;
	if (weights)
		*weights = r->w;
	if (n)
		*n = r->nw;
	if (description)
		*description = r->desc;
	return 0;
}

/* client: set, not IPv4-mapped. */
static int rule_match(const struct dispatch *d, const struct addr *client)
{
	const uint32_t *count = d->plen_rules[fam_index(client->family)];
	struct cidr c;
	int r;

	if (!d->n_rules)
		return -1;
	for (int plen = (int)fam_bits(client->family); plen >= 0; plen--) {
		if (!count[plen])
			continue;
		c.addr = *client;
		c.plen = (uint8_t)plen;
		cidr_clear_hostbits(&c);
		r = rule_find(d, &c);
		if (r >= 0)
			return r;
	}
	return -1;
}

int dispatch_match_rule(const struct dispatch *d, const struct addr *client)
{
	struct addr a;

	if (!client || (client->family != AF_INET && client->family != AF_INET6))
		return -1;
	a = *client;
	addr_unmap_v4(&a);
	return rule_match(d, &a);
}

/* ---- uplinks ---- */

static void up_clear(struct dispatch *d)
{
	for (size_t i = 0; i < d->n_up; i++)
		free(d->up[i].name);
	FREE_AND_NULL(d->up);
	FREE_AND_NULL(d->cur);
	d->n_up = 0;
}

/* A new currents array for the new uplinks: map[new] = old index or -1. */
static int64_t *cur_remap(const int64_t *old, const int *map, size_t n)
{
	int64_t *cur = xcalloc(MAX(n, (size_t)1), sizeof(*cur));

	for (size_t i = 0; old && i < n; i++)
		if (map[i] >= 0)
			cur[i] = old[map[i]];
	return cur;
}

int dispatch_set_uplinks(struct dispatch *d, const struct dispatch_uplink *v, size_t n)
{
	struct dispatch_up *up;
	int *map, *back;
	int64_t *cur;

	if (n > DISPATCH_MAX_UPLINKS)
		return -E2BIG;
	up = xcalloc(MAX(n, (size_t)1), sizeof(*up));
	map = xcalloc(MAX(n, (size_t)1), sizeof(*map));
	back = xcalloc(MAX(d->n_up, (size_t)1), sizeof(*back));
	for (size_t j = 0; j < d->n_up; j++)
		back[j] = -1;
	for (size_t i = 0; i < n; i++) {
		up[i].name = xstrdup(v[i].name ? v[i].name : "");
		up[i].weight = MIN(v[i].weight, DISPATCH_MAX_WEIGHT);
		up[i].usable = v[i].usable;
		map[i] = -1;
		for (size_t j = 0; j < d->n_up; j++) {
			if (back[j] < 0 && streq(d->up[j].name, up[i].name)) {
				map[i] = (int)j;
				back[j] = (int)i;
				break;
			}
		}
	}

	cur = cur_remap(d->cur, map, n);
	for (size_t k = 0; k < d->n_rules; k++) {
		struct dispatch_rule *r = &d->rules[k];
		int64_t *rc = r->cur ? cur_remap(r->cur, map, n) : NULL;

		free(r->cur);
		r->cur = rc;
	}
	for (uint32_t i = d->lru_head, next; i != NIL; i = next) {
		next = d->aff[i].next;
		if (d->aff[i].uplink < 0 || (size_t)d->aff[i].uplink >= d->n_up ||
			back[d->aff[i].uplink] < 0)
			aff_remove(d, i);
		else
			d->aff[i].uplink = back[d->aff[i].uplink];
	}

	up_clear(d);
	d->up = up;
	d->n_up = n;
	d->cur = cur;
	free(map);
	free(back);
	return 0;
}

void dispatch_set_usable(struct dispatch *d, size_t i, bool usable)
{
	if (i < d->n_up)
		d->up[i].usable = usable;
}

size_t dispatch_n_uplinks(const struct dispatch *d)
{
	return d->n_up;
}

void dispatch_free(struct dispatch *d)
{
	if (!d)
		return;
	dispatch_clear_rules(d);
	up_clear(d);
	aff_reset(d);
	free(d);
}

/* ---- picking ---- */

/* Weight of uplink i for a pick under rule r (NULL: the defaults). */
static int weight_of(const struct dispatch *d, const struct dispatch_rule *r, size_t i)
{
	if (!r)
		return d->up[i].weight;
	return i < r->nw ? r->w[i] : 0;
}

static bool candidate(
	const struct dispatch *d, const struct dispatch_rule *r, size_t i, int exclude)
{
	return d->up[i].usable && (int)i != exclude && weight_of(d, r, i) > 0;
}

static bool rule_has_candidate(const struct dispatch *d, const struct dispatch_rule *r, int exclude)
{
	for (size_t i = 0; i < MIN(r->nw, d->n_up); i++)
		if (candidate(d, r, i, exclude))
			return true;
	return false;
}

/* Smooth weighted round robin over the candidates, with currents cur (n_up). */
static int swrr(const struct dispatch *d, const struct dispatch_rule *r, int64_t *cur, int exclude)
{
	int64_t total = 0;
	int best = -1;

	for (size_t i = 0; i < d->n_up; i++) {
		if (!candidate(d, r, i, exclude))
			continue;
		cur[i] += weight_of(d, r, i);
		total += weight_of(d, r, i);
		if (best < 0 || cur[i] > cur[best])
			best = (int)i;
	}
	if (best >= 0)
		cur[best] -= total;
	return best;
}

int dispatch_pick(struct dispatch *d, const struct addr *client, uint64_t now_ms, int exclude)
{
	struct dispatch_rule *r = NULL;
	struct addr a = {0};
	bool have = false;
	int64_t *cur;
	uint32_t e;
	int ri, u;

	if (client && (client->family == AF_INET || client->family == AF_INET6)) {
		a = *client;
		addr_unmap_v4(&a);
		have = true;
	}
	ri = have ? rule_match(d, &a) : -1;
	if (ri >= 0 && rule_has_candidate(d, &d->rules[ri], exclude))
		r = &d->rules[ri];

	if (have && d->affinity_ms) {
		aff_sweep(d, now_ms);
		e = aff_find(d, &a);
		if (e != NIL) {
			u = d->aff[e].uplink;
			if (u >= 0 && (size_t)u < d->n_up && candidate(d, r, (size_t)u, exclude)) {
				aff_set(d, &a, u, now_ms);
				return u;
			}
		}
	}

	if (r) {
		if (!r->cur)
			r->cur = xcalloc(MAX(d->n_up, (size_t)1), sizeof(*r->cur));
		cur = r->cur;
	} else {
		cur = d->cur;
	}
	u = d->n_up ? swrr(d, r, cur, exclude) : -1;
	if (u >= 0 && have && d->affinity_ms)
		aff_set(d, &a, u, now_ms);
	return u;
}

size_t dispatch_candidates(const struct dispatch *d, const struct addr *client, int first,
	int *out, size_t max)
{
	const struct dispatch_rule *r = NULL;
	bool used[DISPATCH_MAX_UPLINKS] = {0};
	struct addr a;
	size_t n = 0;
	int ri;

	if (client && (client->family == AF_INET || client->family == AF_INET6)) {
		a = *client;
		addr_unmap_v4(&a);
		ri = rule_match(d, &a);
		/* as dispatch_pick() decides, for the pick that gave first */
		if (ri >= 0 && rule_has_candidate(d, &d->rules[ri], -1))
			r = &d->rules[ri];
	}
	if (first >= 0 && (size_t)first < d->n_up)
		used[first] = true;
	while (n < max) {
		int best = -1;

		for (size_t i = 0; i < d->n_up; i++)
			if (!used[i] && candidate(d, r, i, -1) &&
				(best < 0 || weight_of(d, r, i) > weight_of(d, r, (size_t)best)))
				best = (int)i;
		if (best < 0)
			break;
		used[best] = true;
		out[n++] = best;
	}
	return n;
}

/* ---- go-dispatch-proxy's client rules file ---- */

int dispatch_uplink_key(const char *key, struct addr *ret, uint16_t *ret_port)
{
	char host[ADDR_STRLEN + 2];
	const char *colon, *h = key;
	unsigned long port = 0;
	size_t hl;
	char *end;

	if (!key)
		return -EINVAL;
	if (addr_parse(key, ret) == 0) {
		if (ret_port)
			*ret_port = 0;
		return 0;
	}
	colon = strrchr(key, ':');
	if (!colon || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	hl = (size_t)(colon - key);
	if (hl >= 2 && key[0] == '[' && key[hl - 1] == ']') {
		h = key + 1;
		hl -= 2;
	} else if (memchr(key, ':', hl)) {
		return -EINVAL; /* IPv6 with a port needs brackets */
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (addr_parse(host, ret) < 0 || (h != key && ret->family != AF_INET6))
		return -EINVAL;
	if (ret_port)
		*ret_port = (uint16_t)port;
	return 0;
}

/* Append s, quoted and escaped like a JSON string (cut after 64 bytes), to buf at *pos. */
static void put_quoted(char *buf, size_t len, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	if (*pos + 1 >= len)
		return;
	buf[(*pos)++] = '"';
	for (i = 0; s[i] && i < 64 && *pos + 8 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = 'x';
			buf[(*pos)++] = hex[c >> 4];
			buf[(*pos)++] = hex[c & 15];
		} else {
			buf[(*pos)++] = (char)c;
		}
	}
	if (s[i] && *pos + 4 < len) {
		memcpy(buf + *pos, "...", 3);
		*pos += 3;
	}
	if (*pos + 1 < len)
		buf[(*pos)++] = '"';
	buf[*pos] = '\0';
}

/* The JSON path "uplink"."client".member of an error (client and member may be NULL). */
static const char *json_path(
	char *buf, size_t len, const char *uplink, const char *client, const char *member)
{
	size_t pos = 0;

	buf[0] = '\0';
	put_quoted(buf, len, &pos, uplink);
	if (client) {
		if (pos + 1 < len)
			buf[pos++] = '.';
		put_quoted(buf, len, &pos, client);
	}
	if (member)
		snprintf(buf + pos, len - pos, ".%s", member);
	return buf;
}

/* What a JSON value is, for "got ...". */
static const char *json_seen(const json_t *v, char *buf, size_t len)
{
	size_t pos = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		buf[0] = '\0';
		put_quoted(buf, len, &pos, json_string_value(v));
		return buf;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct rules_load {
	struct dispatch *d;   /* the target (existing rules checked, nothing added) */
	struct dispatch *tmp; /* rules being built; weight -1 = uplink not named yet */
	size_t nw;	      /* weights per rule: uplinks, or the highest index named + 1 */
	char *err;
	size_t errlen;
};

/* One client entry of uplink ukey (index ix).  0 or -errno with the message written. */
static int load_client(
	struct rules_load *L, const char *ukey, int ix, const char *ckey, json_t *cval)
{
	char path[320], seen[96], a[CIDR_STRLEN], b[CIDR_STRLEN];
	const char *desc = NULL, *mkey;
	json_int_t ratio = -1;
	struct dispatch_rule *r;
	struct cidr c, sc;
	json_t *mval;
	int ret, ri;

	ret = cidr_parse(ckey, CIDR_BARE | CIDR_HOSTBITS, &c);
	if (ret < 0) {
		errf(L->err, L->errlen, "%s: expected a client IP address or CIDR prefix (%s)",
			json_path(path, sizeof(path), ukey, ckey, NULL), cidr_strerror(ret));
		return -EINVAL;
	}
	cidr_unmap_v4(&c);
	if (!json_is_object(cval)) {
		errf(L->err, L->errlen, "%s: expected an object with \"contention_ratio\", got %s",
			json_path(path, sizeof(path), ukey, ckey, NULL),
			json_seen(cval, seen, sizeof(seen)));
		return -EINVAL;
	}
	json_object_foreach(cval, mkey, mval) {
		json_path(path, sizeof(path), ukey, ckey, mkey);
		if (streq(mkey, "contention_ratio")) {
			if (!json_is_integer(mval) || json_integer_value(mval) < 0 ||
				json_integer_value(mval) > JSON_RATIO_MAX) {
				errf(L->err, L->errlen, "%s: expected an integer 0-%d, got %s",
					path, JSON_RATIO_MAX, json_seen(mval, seen, sizeof(seen)));
				return -EINVAL;
			}
			ratio = json_integer_value(mval);
		} else if (streq(mkey, "source_ip")) {
			if (!json_is_string(mval) || cidr_parse(json_string_value(mval),
							     CIDR_BARE | CIDR_HOSTBITS, &sc) < 0) {
				errf(L->err, L->errlen,
					"%s: expected a client IP address or CIDR prefix, got %s",
					path, json_seen(mval, seen, sizeof(seen)));
				return -EINVAL;
			}
			cidr_unmap_v4(&sc);
			if (cidr_cmp(&sc, &c) != 0) {
				errf(L->err, L->errlen,
					"%s: expected the client of the key (%s), got %s", path,
					cidr_str(&c, a, sizeof(a)), cidr_str(&sc, b, sizeof(b)));
				return -EINVAL;
			}
		} else if (streq(mkey, "description")) {
			if (!json_is_string(mval)) {
				errf(L->err, L->errlen, "%s: expected a string, got %s", path,
					json_seen(mval, seen, sizeof(seen)));
				return -EINVAL;
			}
			desc = json_string_value(mval);
		} else {
			errf(L->err, L->errlen,
				"%s: unknown member (expected source_ip, contention_ratio or "
				"description)",
				path);
			return -EINVAL;
		}
	}
	if (ratio < 0) {
		errf(L->err, L->errlen, "%s: missing (expected an integer 0-%d)",
			json_path(path, sizeof(path), ukey, ckey, "contention_ratio"),
			JSON_RATIO_MAX);
		return -EINVAL;
	}

	ri = rule_find(L->tmp, &c);
	if (ri < 0) {
		struct dispatch_rule nr = {.src = c, .nw = L->nw};

		if (rule_find(L->d, &c) >= 0) {
			errf(L->err, L->errlen, "%s: a rule for %s exists already",
				json_path(path, sizeof(path), ukey, ckey, NULL),
				cidr_str(&c, a, sizeof(a)));
			return -EEXIST;
		}
		if (L->d->n_rules + L->tmp->n_rules >= DISPATCH_MAX_RULES) {
			errf(L->err, L->errlen, "%s: too many client rules (at most %d)",
				json_path(path, sizeof(path), ukey, ckey, NULL),
				DISPATCH_MAX_RULES);
			return -E2BIG;
		}
		nr.w = xmalloc(L->nw * sizeof(*nr.w));
		for (size_t i = 0; i < L->nw; i++)
			nr.w[i] = -1;
		rule_append(L->tmp, &nr);
		ri = (int)L->tmp->n_rules - 1;
	}
	r = &L->tmp->rules[ri];
	if (r->w[ix] >= 0) {
		errf(L->err, L->errlen, "%s: client %s is given twice for this uplink",
			json_path(path, sizeof(path), ukey, ckey, NULL),
			cidr_str(&c, a, sizeof(a)));
		return -EINVAL;
	}
	r->w[ix] = (int)ratio;
	if (!r->desc)
		r->desc = desc_dup(desc);
	return 0;
}

int dispatch_load_rules_json(struct dispatch *d, const char *text, size_t len,
	int (*resolve)(const char *uplink, void *arg), void *arg, char *err, size_t errlen)
{
	const char *seen_by[DISPATCH_MAX_UPLINKS] = {0};
	struct rules_load L = {.d = d, .err = err, .errlen = errlen};
	char path[160], seen[96];
	const char *ukey, *ckey;
	json_t *root, *uval, *cval;
	json_error_t jerr;
	int *idx = NULL, ret = 0;
	size_t k;

	if (errlen)
		err[0] = '\0';
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		errf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		errf(err, errlen, "expected an object of uplinks, got %s",
			json_seen(root, seen, sizeof(seen)));
		ret = -EINVAL;
		goto out;
	}

	/* Resolve every uplink first: the rules need to know how many weights they carry. */
	idx = xcalloc(MAX(json_object_size(root), (size_t)1), sizeof(*idx));
	k = 0;
	json_object_foreach(root, ukey, uval) {
		int ix = resolve(ukey, arg);

		json_path(path, sizeof(path), ukey, NULL, NULL);
		if (ix < 0 || ix >= DISPATCH_MAX_UPLINKS) {
			errf(err, errlen, "%s: unknown uplink", path);
			ret = -EINVAL;
			goto out;
		}
		if (seen_by[ix]) {
			char other[160];

			errf(err, errlen, "%s: the same uplink as %s", path,
				json_path(other, sizeof(other), seen_by[ix], NULL, NULL));
			ret = -EINVAL;
			goto out;
		}
		if (!json_is_object(uval)) {
			errf(err, errlen, "%s: expected an object of clients, got %s", path,
				json_seen(uval, seen, sizeof(seen)));
			ret = -EINVAL;
			goto out;
		}
		seen_by[ix] = ukey;
		idx[k++] = ix;
		L.nw = MAX(L.nw, (size_t)ix + 1);
	}

	L.nw = MAX(L.nw, d->n_up);
	L.tmp = dispatch_new();
	L.tmp->seed = d->seed;
	k = 0;
	json_object_foreach(root, ukey, uval) {
		json_object_foreach(uval, ckey, cval) {
			ret = load_client(&L, ukey, idx[k], ckey, cval);
			if (ret < 0)
				goto out;
		}
		k++;
	}

	/* All checked: hand the rules over. */
	for (size_t i = 0; i < L.tmp->n_rules; i++) {
		struct dispatch_rule *r = &L.tmp->rules[i];

		for (size_t j = 0; j < r->nw; j++)
			if (r->w[j] < 0)
				r->w[j] = 0;
		rule_append(d, r);
	}
	L.tmp->n_rules = 0;
out:
	dispatch_free(L.tmp);
	free(idx);
	json_decref(root);
	return ret;
}
