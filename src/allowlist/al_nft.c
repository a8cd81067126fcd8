/*
 * al_nft.c - the allowlist's nftables table (al_nft.h): items become set elements, and the
 * difference between what is installed and what is asked for becomes one transaction.
 *
 * An item becomes one element or several: a destination without limits goes to dstF; one
 * limited to sources, a protocol or ports becomes source x protocol x port-range elements
 * of limF (sources of the other family are left out: an IPv6 source never sends to an IPv4
 * destination).  Names have no element of their own: the addresses DNS answers give for
 * them are learned into dnsF / dnslimF with a timeout.
 *
 * Must not log or touch any table but AL_NFT_TABLE.
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "al_nft.h"
#include "nft.h"
#include "util.h"

enum el_set {
	SET_DST, /* single addresses: a hash (libnftables changes an interval set only after
		  * reading all of it back, which costs a second per change at 100 000) */
	SET_NET, /* prefixes: intervals */
	SET_LIM,
	SET_DNS,
	SET_DNSLIM,
	_SET_MAX,
};
static const char *const set_base[_SET_MAX] = {"dst", "net", "lim", "dns", "dnslim"};

/* Learned addresses whose timeout ends sooner than this are left to expire rather than
 * deleted: the kernel may have dropped them already, and a delete of a missing element
 * fails the whole transaction. */
#define LEARN_DELETE_MARGIN_MS 2000
#define DROPS_TIMEOUT "1h"

struct el {
	uint8_t set; /* enum el_set */
	uint8_t v6;
	uint8_t proto_lo, proto_hi;
	uint16_t port_lo, port_hi;
	struct cidr src, dst; /* src: lim sets only */
	char key[AL_KEY_MAX];
};

struct elvec {
	struct el *v;
	size_t n, cap;
};

struct learned {
	struct el e;
	uint64_t expires_ms; /* now_ms() clock */
};

struct al_nft {
	struct nft *nft;
	bool started;
	struct elvec installed; /* sorted by el_cmp, unique */
	struct learned *learned; /* sorted by el_cmp of .e, unique */
	size_t n_learned;
};

static void elvec_push(struct elvec *v, const struct el *e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = *e;
}

static void elvec_clear(struct elvec *v)
{
	free(v->v);
	*v = (struct elvec){0};
}

static int pfx_cmp(const struct cidr *a, const struct cidr *b)
{
	int r;

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	r = memcmp(a->addr.b, b->addr.b, addr_len(a->addr.family ? a->addr.family : AF_INET));
	if (r)
		return r;
	return a->plen < b->plen ? -1 : a->plen > b->plen;
}

/* Order of the kernel's elements: the family, the set, then the destination (address, then shorter
 * prefixes first, so a prefix comes before the prefixes inside it), then the rest. */
static int el_cmp(const struct el *a, const struct el *b)
{
	int r;

	if (a->v6 != b->v6)
		return a->v6 < b->v6 ? -1 : 1;
	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	r = pfx_cmp(&a->dst, &b->dst);
	if (r)
		return r;
	r = pfx_cmp(&a->src, &b->src);
	if (r)
		return r;
	if (a->proto_lo != b->proto_lo)
		return a->proto_lo < b->proto_lo ? -1 : 1;
	if (a->proto_hi != b->proto_hi)
		return a->proto_hi < b->proto_hi ? -1 : 1;
	if (a->port_lo != b->port_lo)
		return a->port_lo < b->port_lo ? -1 : 1;
	if (a->port_hi != b->port_hi)
		return a->port_hi < b->port_hi ? -1 : 1;
	return 0;
}

/* The same, the item key last: among equal elements the smallest key wins. */
static int el_sort_cb(const void *x, const void *y)
{
	const struct el *a = x, *b = y;
	int r = el_cmp(a, b);

	return r ? r : strcmp(a->key, b->key);
}

static int learned_sort_cb(const void *x, const void *y)
{
	const struct learned *a = x, *b = y;

	return el_cmp(&a->e, &b->e);
}

/* An item key as the counters give it back: keys are "42" or "42/ADDRESS". */
static void key_copy(char *dst, const char *key)
{
	size_t i;

	for (i = 0; key[i] && i < AL_KEY_MAX - 1; i++) {
		char c = key[i];
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  c == '/' || c == '.' || c == ':' || c == '-' || c == '_';
		dst[i] = ok ? c : '_';
	}
	dst[i] = '\0';
}

static bool item_limited(const struct al_item *it)
{
	return it->proto != AL_PROTO_ANY || it->ports.n || it->sources.n;
}

/* The elements of item it for destination dst (learned: into the dns sets). */
static void el_expand(const struct al_item *it, const struct cidr *dst, bool learned,
	struct elvec *out)
{
	int family = dst->addr.family;
	struct el e = {.v6 = family == AF_INET6, .dst = *dst};
	static const uint8_t tcp_udp[] = {6, 17};
	struct cidr any = {.addr = {.family = family}, .plen = 0};

	key_copy(e.key, it->key);
	if (!item_limited(it)) {
		e.set = learned				     ? SET_DNS
			: dst->plen == addr_len(family) * 8 ? SET_DST
							     : SET_NET;
		elvec_push(out, &e);
		return;
	}
	e.set = learned ? SET_DNSLIM : SET_LIM;
	for (size_t s = 0; s < (it->sources.n ? it->sources.n : 1); s++) {
		const struct cidr *src = it->sources.n ? &it->sources.v[s] : &any;

		if (src->addr.family != family)
			continue;
		e.src = *src;
		for (size_t p = 0; p < 2; p++) {
			if (it->proto == AL_PROTO_TCP || it->proto == AL_PROTO_UDP) {
				if (p)
					break;
				e.proto_lo = e.proto_hi = it->proto == AL_PROTO_TCP ? 6 : 17;
			} else if (it->ports.n) {
				e.proto_lo = e.proto_hi = tcp_udp[p];
			} else {
				if (p)
					break;
				e.proto_lo = 0;
				e.proto_hi = 255;
			}
			for (size_t r = 0; r < (it->ports.n ? it->ports.n : 1); r++) {
				e.port_lo = it->ports.n ? (uint16_t)it->ports.v[r].lo : 0;
				e.port_hi = it->ports.n ? (uint16_t)it->ports.v[r].hi : 65535;
				elvec_push(out, &e);
			}
		}
	}
}

/* Sort, keep one of equal elements, and leave out a prefix inside another one (the
 * kernel refuses overlapping intervals; the outer one allows it anyway).  Sorted by
 * address, then shorter first, a prefix inside an earlier one is inside the last one kept. */
static void els_normalise(struct elvec *v)
{
	size_t out = 0;

	if (!v->n)
		return;
	qsort(v->v, v->n, sizeof(*v->v), el_sort_cb);
	for (size_t i = 0; i < v->n; i++) {
		const struct el *e = &v->v[i], *last = out ? &v->v[out - 1] : NULL;

		if (last && el_cmp(last, e) == 0)
			continue;
		if (last && e->set == SET_NET && last->set == SET_NET && last->v6 == e->v6 &&
			cidr_contains_cidr(&last->dst, &e->dst))
			continue;
		v->v[out++] = *e;
	}
	v->n = out;
}

static void els_of_items(const struct al_item *items, size_t n_items, struct elvec *ret)
{
	for (size_t i = 0; i < n_items; i++)
		if (items[i].kind == AL_ITEM_DST && items[i].dst.addr.family)
			el_expand(&items[i], &items[i].dst, false, ret);
	els_normalise(ret);
}

static void set_name(char *buf, size_t len, const char *base, bool v6)
{
	snprintf(buf, len, "%s%c", base, v6 ? '6' : '4');
}

static void pfx_text(struct nft_buf *b, const struct cidr *c)
{
	char s[CIDR_STRLEN];

	if (c->plen == addr_len(c->addr.family) * 8)
		nft_buf_add(b, addr_str(&c->addr, s, sizeof(s)));
	else
		nft_buf_add(b, cidr_str(c, s, sizeof(s)));
}

static void range_text(struct nft_buf *b, unsigned lo, unsigned hi)
{
	if (lo == hi)
		nft_buf_printf(b, "%u", lo);
	else
		nft_buf_printf(b, "%u-%u", lo, hi);
}

/* One element as nft reads it; timeout_s > 0 for learned ones.  No comment: a comment per
 * element costs libnftables and the kernel about a third of a 100 000 element transaction;
 * counters map back to keys through the elements we keep (el_key()). */
static void el_text(struct nft_buf *b, const struct el *e, uint32_t timeout_s)
{
	if (e->set == SET_LIM || e->set == SET_DNSLIM) {
		pfx_text(b, &e->src);
		nft_buf_add(b, " . ");
		pfx_text(b, &e->dst);
		nft_buf_add(b, " . ");
		range_text(b, e->proto_lo, e->proto_hi);
		nft_buf_add(b, " . ");
		range_text(b, e->port_lo, e->port_hi);
	} else {
		pfx_text(b, &e->dst);
	}
	if (timeout_s)
		nft_buf_printf(b, " timeout %us", timeout_s);
}

/* "add element inet TABLE SET { a, b }" commands for v, one per run of the same set. */
static void els_cmds(struct nft_buf *b, const char *verb, const struct el *const *v, size_t n,
	const uint32_t *timeouts)
{
	for (size_t i = 0; i < n; i++) {
		char name[16];

		if (i == 0 || v[i]->set != v[i - 1]->set || v[i]->v6 != v[i - 1]->v6) {
			if (i)
				nft_buf_add(b, " }\n");
			set_name(name, sizeof(name), set_base[v[i]->set], v[i]->v6);
			nft_buf_printf(b, "%s element %s %s %s { ", verb, AL_NFT_FAMILY, AL_NFT_TABLE,
				name);
		} else {
			nft_buf_add(b, ", ");
		}
		el_text(b, v[i], timeouts ? timeouts[i] : 0);
	}
	if (n)
		nft_buf_add(b, " }\n");
}

static void clients_set(struct nft_buf *b, const struct al_nft_conf *c, bool v6)
{
	char s[CIDR_STRLEN];
	bool first = true;

	nft_buf_printf(b, "\tset clients%c {\n\t\ttype %s\n\t\tflags interval\n", v6 ? '6' : '4',
		v6 ? "ipv6_addr" : "ipv4_addr");
	for (size_t i = 0; i < c->clients.n; i++) {
		if ((c->clients.v[i].addr.family == AF_INET6) != v6)
			continue;
		nft_buf_printf(b, "%s%s", first ? "\t\telements = { " : ", ",
			cidr_str(&c->clients.v[i], s, sizeof(s)));
		first = false;
	}
	nft_buf_add(b, first ? "\t}\n" : " }\n\t}\n");
}

/* The element sets (dst, lim, dns, dnslim, drops of both families), with els' elements. */
static void element_sets(struct nft_buf *b, const struct al_nft_conf *c, const struct elvec *els)
{
	size_t k = 0;

	for (int v6 = 0; v6 < 2; v6++) {
		const char *t = v6 ? "ipv6_addr" : "ipv4_addr";

		for (int s = 0; s < _SET_MAX; s++) {
			bool concat = s == SET_LIM || s == SET_DNSLIM;
			bool first = true;

			nft_buf_printf(b, "\tset %s%c {\n\t\ttype ", set_base[s], v6 ? '6' : '4');
			if (concat)
				nft_buf_printf(b, "%s . %s . inet_proto . inet_service\n", t, t);
			else
				nft_buf_printf(b, "%s\n", t);
			if (s != SET_DST)
				nft_buf_printf(b, "\t\tflags %s\n",
					s == SET_NET || s == SET_LIM ? "interval"
					: s == SET_DNS		     ? "timeout"
								     : "interval,timeout");
			nft_buf_add(b, "\t\tcounter\n");
			/* els is sorted by family, then set: this set's run starts at k */
			while (els && k < els->n && els->v[k].set == s && els->v[k].v6 == v6) {
				nft_buf_add(b, first ? "\t\telements = { " : ",\n\t\t\t");
				el_text(b, &els->v[k++], 0);
				first = false;
			}
			nft_buf_add(b, first ? "\t}\n" : " }\n\t}\n");
		}
		nft_buf_printf(b,
			"\tset drops%c {\n\t\ttype %s\n\t\tsize %u\n\t\tflags dynamic,timeout\n"
			"\t\tcounter\n\t\ttimeout %s\n\t}\n",
			v6 ? '6' : '4', t, c->drops_max ? c->drops_max : 65536, DROPS_TIMEOUT);
	}
}

static void chains(struct nft_buf *b, const struct al_nft_conf *c)
{
	nft_buf_add(b, "\tchain forward {\n"
		       "\t\ttype filter hook forward priority filter; policy accept;\n"
		       "\t\tip saddr @clients4 jump client4\n"
		       "\t\tip6 saddr @clients6 jump client6\n"
		       "\t}\n");
	for (int v6 = 0; v6 < 2; v6++) {
		const char *ip = v6 ? "ip6" : "ip";
		char f = v6 ? '6' : '4';

		nft_buf_printf(b,
			"\tchain client%c {\n"
			"\t\t%s daddr @dst%c accept\n"
			"\t\t%s daddr @net%c accept\n"
			"\t\t%s daddr @dns%c accept\n"
			"\t\t%s saddr . %s daddr . meta l4proto . th dport @lim%c accept\n"
			"\t\t%s saddr . %s daddr . meta l4proto . th dport @dnslim%c accept\n"
			"\t\tupdate @drops%c { %s saddr }\n"
			"\t\tcounter drop\n"
			"\t}\n",
			f, ip, f, ip, f, ip, f, ip, ip, f, ip, ip, f, f, ip);
	}
	if (c->nat)
		nft_buf_add(b, "\tchain postrouting {\n"
			       "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
			       "\t\tip saddr @clients4 masquerade\n"
			       "\t\tip6 saddr @clients6 masquerade\n"
			       "\t}\n");
}

static const char *const kept_sets[] = {"dst4", "net4", "lim4", "dns4", "dnslim4", "drops4",
	"dst6", "net6", "lim6", "dns6", "dnslim6", "drops6", NULL};

static char *body_of(const struct al_nft_conf *c, const struct elvec *els, bool with_elements)
{
	struct nft_buf b;
	char *body;

	nft_buf_init(&b);
	clients_set(&b, c, false);
	clients_set(&b, c, true);
	if (with_elements)
		element_sets(&b, c, els);
	chains(&b, c);
	body = nft_buf_steal(&b);
	nft_buf_clear(&b);
	return body;
}

char *al_nft_body(const struct al_nft_conf *c, const struct al_item *items, size_t n_items)
{
	struct elvec els = {0};
	char *body;

	els_of_items(items, n_items, &els);
	body = body_of(c, &els, true);
	elvec_clear(&els);
	return body;
}

struct al_nft *al_nft_new(struct nft *nft)
{
	struct al_nft *n = xcalloc(1, sizeof(*n));

	n->nft = nft;
	return n;
}

void al_nft_free(struct al_nft *n)
{
	if (!n)
		return;
	elvec_clear(&n->installed);
	free(n->learned);
	free(n);
}

int al_nft_start(struct al_nft *n, const struct al_nft_conf *c, const struct al_item *items,
	size_t n_items, char **err)
{
	struct elvec els = {0};
	char *body;
	int r;

	els_of_items(items, n_items, &els);
	body = body_of(c, &els, true);
	r = nft_table_apply(n->nft, AL_NFT_FAMILY, AL_NFT_TABLE, body, err);
	free(body);
	if (r < 0) {
		elvec_clear(&els);
		return r;
	}
	elvec_clear(&n->installed);
	n->installed = els;
	free(n->learned);
	n->learned = NULL;
	n->n_learned = 0;
	n->started = true;
	return 0;
}

int al_nft_reconf(struct al_nft *n, const struct al_nft_conf *c, char **err)
{
	char *old, *body;
	int r;

	if (!n->started) {
		if (err)
			*err = xstrdup("the allowlist table is not started");
		return -ENOENT;
	}
	old = body_of(c, NULL, true);
	body = body_of(c, NULL, false);
	r = nft_table_apply_keep(n->nft, AL_NFT_FAMILY, AL_NFT_TABLE, old, body, kept_sets, err);
	free(old);
	free(body);
	return r;
}

/* Learned addresses of names that items no longer has: to delete (those not about to
 * expire) and to forget.  items is sorted by key. */
static bool name_allowed(const struct al_item *items, size_t n_items, const char *key)
{
	size_t lo = 0, hi = n_items;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		char k[AL_KEY_MAX];
		int r;

		key_copy(k, items[mid].key);
		r = strcmp(k, key);
		if (r == 0)
			return items[mid].kind == AL_ITEM_NAME;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int al_nft_apply(struct al_nft *n, const struct al_item *items, size_t n_items,
	size_t *changed_ret, char **err)
{
	struct elvec want = {0};
	const struct el **del = NULL, **add = NULL;
	size_t n_del = 0, n_add = 0, i = 0, j = 0, keep = 0;
	uint64_t now = now_ms();
	struct nft_buf b;
	int r = 0;

	if (err)
		*err = NULL;
	if (changed_ret)
		*changed_ret = 0;
	if (!n->started) {
		if (err)
			*err = xstrdup("the allowlist table is not started");
		return -ENOENT;
	}
	els_of_items(items, n_items, &want);
	del = xcalloc(n->installed.n + n->n_learned + 1, sizeof(*del));
	add = xcalloc(want.n + 1, sizeof(*add));
	while (i < n->installed.n || j < want.n) {
		const struct el *a = i < n->installed.n ? &n->installed.v[i] : NULL;
		const struct el *w = j < want.n ? &want.v[j] : NULL;
		int c = !a ? 1 : !w ? -1 : el_cmp(a, w);

		if (c == 0 && streq(a->key, w->key)) {
			i++, j++;
			continue;
		}
		if (c <= 0)
			del[n_del++] = &n->installed.v[i++];
		if (c >= 0)
			add[n_add++] = &want.v[j++];
	}
	for (size_t k = 0; k < n->n_learned; k++) {
		const struct learned *l = &n->learned[k];

		if (l->expires_ms <= now || name_allowed(items, n_items, l->e.key))
			continue;
		if (l->expires_ms > now + LEARN_DELETE_MARGIN_MS)
			del[n_del++] = &l->e;
	}
	if (!n_del && !n_add)
		goto done;
	nft_buf_init(&b);
	els_cmds(&b, "delete", del, n_del, NULL);
	els_cmds(&b, "add", add, n_add, NULL);
	r = nft_run(n->nft, b.data, err);
	nft_buf_clear(&b);
	if (r < 0)
		goto out;
done:
	elvec_clear(&n->installed);
	n->installed = want;
	want = (struct elvec){0};
	for (size_t k = 0; k < n->n_learned; k++) {
		const struct learned *l = &n->learned[k];

		if (l->expires_ms > now && name_allowed(items, n_items, l->e.key))
			n->learned[keep++] = *l;
	}
	n->n_learned = keep;
	if (changed_ret)
		*changed_ret = n_del + n_add;
out:
	free(del);
	free(add);
	elvec_clear(&want);
	return r;
}

static struct learned *learned_find(const struct al_nft *n, const struct el *e)
{
	struct learned k = {.e = *e};

	if (!n->n_learned)
		return NULL;
	return bsearch(&k, n->learned, n->n_learned, sizeof(*n->learned), learned_sort_cb);
}

int al_nft_learn(struct al_nft *n, const struct al_nft_learn *v, size_t cnt, size_t *added_ret,
	char **err)
{
	struct elvec els = {0};
	uint32_t *timeouts = NULL;
	const struct el **add = NULL;
	size_t n_add = 0, *src = NULL;
	uint64_t now = now_ms();
	struct nft_buf b;
	int r = 0;

	if (err)
		*err = NULL;
	if (added_ret)
		*added_ret = 0;
	if (!n->started) {
		if (err)
			*err = xstrdup("the allowlist table is not started");
		return -ENOENT;
	}
	for (size_t i = 0; i < cnt; i++) {
		struct cidr host;
		size_t before = els.n;

		cidr_from_addr(&v[i].addr, &host);
		el_expand(v[i].item, &host, true, &els);
		src = xrealloc(src, (els.n + 1) * sizeof(*src));
		for (size_t k = before; k < els.n; k++)
			src[k] = i;
	}
	add = xcalloc(els.n + 1, sizeof(*add));
	timeouts = xcalloc(els.n + 1, sizeof(*timeouts));
	for (size_t k = 0; k < els.n; k++) {
		const struct learned *l = learned_find(n, &els.v[k]);
		uint32_t t = v[src[k]].timeout_s ? v[src[k]].timeout_s : 1;

		if (l && l->expires_ms >= now + (uint64_t)t * 1000)
			continue;
		/* the same element twice in one batch: the longer timeout */
		bool dup = false;
		for (size_t m = 0; m < n_add; m++)
			if (el_cmp(add[m], &els.v[k]) == 0) {
				if (timeouts[m] < t)
					timeouts[m] = t;
				dup = true;
			}
		if (dup)
			continue;
		add[n_add] = &els.v[k];
		timeouts[n_add++] = t;
	}
	if (!n_add)
		goto out;
	nft_buf_init(&b);
	els_cmds(&b, "add", add, n_add, timeouts);
	r = nft_run(n->nft, b.data, err);
	nft_buf_clear(&b);
	if (r < 0)
		goto out;
	for (size_t k = 0; k < n_add; k++) {
		struct learned *l = learned_find(n, add[k]);
		uint64_t exp = now + (uint64_t)timeouts[k] * 1000;

		if (l) {
			l->expires_ms = exp;
			snprintf(l->e.key, sizeof(l->e.key), "%s", add[k]->key);
			continue;
		}
		n->learned = xrealloc(n->learned, (n->n_learned + 1) * sizeof(*n->learned));
		n->learned[n->n_learned++] = (struct learned){.e = *add[k], .expires_ms = exp};
		qsort(n->learned, n->n_learned, sizeof(*n->learned), learned_sort_cb);
	}
	if (added_ret)
		*added_ret = n_add;
out:
	free(add);
	free(timeouts);
	free(src);
	elvec_clear(&els);
	return r;
}

int al_nft_remove(struct al_nft *n, char **err)
{
	n->started = false;
	elvec_clear(&n->installed);
	free(n->learned);
	n->learned = NULL;
	n->n_learned = 0;
	return nft_table_delete(n->nft, AL_NFT_FAMILY, AL_NFT_TABLE, err);
}

size_t al_nft_count(const struct al_nft *n)
{
	return n->installed.n;
}

size_t al_nft_learned(const struct al_nft *n)
{
	uint64_t now = now_ms();
	size_t c = 0;

	for (size_t k = 0; k < n->n_learned; k++)
		c += n->learned[k].expires_ms > now;
	return c;
}

/* libnftables' JSON of a value as text: "203.0.113.7", {"prefix": {"addr", "len"}},
 * {"range": [a, b]}; a concatenation gives its destination (its second member). */
static void json_val_text(const json_t *v, char *buf, size_t len)
{
	const json_t *p;

	buf[0] = '\0';
	if (json_is_string(v)) {
		snprintf(buf, len, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	} else if ((p = json_object_get(v, "prefix"))) {
		snprintf(buf, len, "%s/%lld",
			json_string_value(json_object_get(p, "addr")) ?: "",
			(long long)json_integer_value(json_object_get(p, "len")));
	} else if ((p = json_object_get(v, "range")) && json_array_size(p) == 2) {
		char a[CIDR_STRLEN], b[CIDR_STRLEN];

		json_val_text(json_array_get(p, 0), a, sizeof(a));
		json_val_text(json_array_get(p, 1), b, sizeof(b));
		snprintf(buf, len, "%s-%s", a, b);
	} else if ((p = json_object_get(v, "concat")) && json_array_size(p) >= 2) {
		json_val_text(json_array_get(p, 1), buf, len);
	}
}

/* libnftables' JSON of an address or a prefix: "203.0.113.7", {"prefix": {"addr", "len"}}. */
static bool json_pfx(const json_t *v, struct cidr *c)
{
	const json_t *p = json_object_get(v, "prefix");
	char s[CIDR_STRLEN + 8];

	if (p)
		snprintf(s, sizeof(s), "%s/%lld", json_string_value(json_object_get(p, "addr")) ?: "",
			(long long)json_integer_value(json_object_get(p, "len")));
	else if (json_is_string(v))
		snprintf(s, sizeof(s), "%s", json_string_value(v));
	else
		return false;
	return cidr_parse(s, CIDR_BARE, c) == 0;
}

/* A protocol or port as a number: 6, or a name nft printed ("tcp"). */
static bool json_num(const json_t *v, unsigned *x)
{
	struct protoent pe, *res = NULL;
	char buf[1024];

	if (json_is_integer(v)) {
		*x = (unsigned)json_integer_value(v);
		return true;
	}
	if (!json_is_string(v) ||
		getprotobyname_r(json_string_value(v), &pe, buf, sizeof(buf), &res) || !res)
		return false;
	*x = (unsigned)res->p_proto;
	return true;
}

/* A number or {"range": [lo, hi]}. */
static bool json_range(const json_t *v, unsigned *lo, unsigned *hi)
{
	const json_t *p = json_object_get(v, "range");

	if (!p) {
		if (!json_num(v, lo))
			return false;
		*hi = *lo;
		return true;
	}
	return json_array_size(p) == 2 && json_num(json_array_get(p, 0), lo) &&
	       json_num(json_array_get(p, 1), hi);
}

static int el_bsearch_cb(const void *x, const void *y)
{
	return el_cmp(x, y);
}

/* The key of the item that put the kernel's element val (its JSON) in set (v6: of the IPv6
 * sets), from the elements installed or learned; "" if none. */
static const char *el_key(const struct al_nft *n, int set, bool v6, const json_t *val)
{
	struct el k = {.set = (uint8_t)set, .v6 = v6};
	const json_t *c = json_object_get(val, "concat");
	const struct learned *l;
	const struct el *e;
	unsigned plo, phi, lo, hi;

	if (set == SET_LIM || set == SET_DNSLIM) {
		if (json_array_size(c) != 4 || !json_pfx(json_array_get(c, 0), &k.src) ||
			!json_pfx(json_array_get(c, 1), &k.dst) ||
			!json_range(json_array_get(c, 2), &plo, &phi) ||
			!json_range(json_array_get(c, 3), &lo, &hi))
			return "";
		k.proto_lo = (uint8_t)plo;
		k.proto_hi = (uint8_t)phi;
		k.port_lo = (uint16_t)lo;
		k.port_hi = (uint16_t)hi;
	} else if (!json_pfx(val, &k.dst)) {
		return "";
	}
	if (set == SET_DNS || set == SET_DNSLIM) {
		l = learned_find(n, &k);
		return l ? l->e.key : "";
	}
	e = n->installed.n ? bsearch(&k, n->installed.v, n->installed.n, sizeof(k), el_bsearch_cb)
			   : NULL;
	return e ? e->key : "";
}

/* The counters of one set: set (enum el_set) and v6, or the drops set of v6 with drops. */
static int set_counters(struct al_nft *n, int set, bool v6, bool drops, al_nft_counter_cb cb,
	al_nft_drop_cb drop_cb, void *arg)
{
	json_t *root = NULL, *arr, *item, *elems, *el;
	char name[16];
	size_t i, k;
	int r;

	set_name(name, sizeof(name), drops ? "drops" : set_base[set], v6);
	r = nft_set_list_json(n->nft, AL_NFT_FAMILY, AL_NFT_TABLE, name, &root);
	if (r < 0)
		return r;
	arr = json_object_get(root, "nftables");
	json_array_foreach(arr, i, item) {
		elems = json_object_get(json_object_get(item, "set"), "elem");
		json_array_foreach(elems, k, el) {
			const json_t *e = json_object_get(el, "elem");
			const json_t *ctr = json_object_get(e, "counter");
			uint64_t pk, by;
			char dst[128];

			if (!e || !ctr)
				continue;
			pk = (uint64_t)json_integer_value(json_object_get(ctr, "packets"));
			by = (uint64_t)json_integer_value(json_object_get(ctr, "bytes"));
			json_val_text(json_object_get(e, "val"), dst, sizeof(dst));
			if (drops)
				drop_cb(dst, pk, by, arg);
			else
				cb(el_key(n, set, v6, json_object_get(e, "val")), dst, pk, by, arg);
		}
	}
	json_decref(root);
	return 0;
}

int al_nft_counters(struct al_nft *n, al_nft_counter_cb cb, al_nft_drop_cb drop_cb, void *arg)
{
	int r;

	for (int v6 = 0; v6 < 2; v6++) {
		for (int s = 0; cb && s < _SET_MAX; s++) {
			r = set_counters(n, s, v6, false, cb, NULL, arg);
			if (r < 0)
				return r;
		}
		if (drop_cb) {
			r = set_counters(n, 0, v6, true, NULL, drop_cb, arg);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
