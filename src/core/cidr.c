/*
 * cidr.c - addresses, CIDR prefixes and prefix sets (see cidr.h).
 *
 * Both families share one range representation: an address is an unsigned 128-bit integer,
 * IPv4 in the low 32 bits.  A set keeps, per family, an array of inclusive ranges whose
 * head is sorted, disjoint and not adjacent ("clean") and whose tail holds additions not
 * merged yet; readers merge the tail first.  Every set operation is a linear sweep over
 * clean arrays into a fresh array that replaces the old one only on success.
 *
 * This file must not log, keep global state or depend on anything but libc and util.h:
 * config, route, allowlist and the fuzzers all link it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "util.h"

typedef unsigned __int128 u128;

#define U128_MAX (~(u128)0)
#define V4_MAX ((u128)UINT32_MAX)

#define CIDR_FLAGS_ALL (CIDR_BARE | CIDR_HOSTBITS | CIDR_V4 | CIDR_V6 | CIDR_DEFAULT)

/* Characters that separate the tokens of a pfxset_parse() list. */
#define LIST_SEPARATORS ", \t\r\n\v\f"

/* ---------------------------------------------------------------- integers */

/* 0 for IPv4, 1 for IPv6, -1 for anything else: the index into pfxset.fam[]. */
static int family_index(int family)
{
	return family == AF_INET ? 0 : family == AF_INET6 ? 1 : -1;
}

static int index_family(int idx)
{
	return idx == 0 ? AF_INET : AF_INET6;
}

static unsigned index_bits(int idx)
{
	return idx == 0 ? 32 : 128;
}

static u128 index_max(int idx)
{
	return idx == 0 ? V4_MAX : U128_MAX;
}

/* The host part of a prefix of plen bits in a bits-wide family, as a mask. */
static u128 host_mask(unsigned bits, unsigned plen)
{
	unsigned host = bits - plen;

	return host >= 128 ? U128_MAX : ((u128)1 << host) - 1;
}

static unsigned ctz128(u128 v)
{
	uint64_t lo = (uint64_t)v, hi = (uint64_t)(v >> 64);

	if (lo)
		return (unsigned)__builtin_ctzll(lo);
	if (hi)
		return 64 + (unsigned)__builtin_ctzll(hi);
	return 128;
}

/* floor(log2(v)) for v > 0. */
static unsigned log2_128(u128 v)
{
	uint64_t hi = (uint64_t)(v >> 64);

	if (hi)
		return 127 - (unsigned)__builtin_clzll(hi);
	return 63 - (unsigned)__builtin_clzll((uint64_t)v);
}

static u128 addr_to_u128(const struct addr *a)
{
	size_t n = addr_len(a->family);
	u128 v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | a->b[i];
	return v;
}

static void u128_to_addr(u128 v, int family, struct addr *ret)
{
	size_t n = addr_len(family);

	memset(ret, 0, sizeof(*ret));
	ret->family = family;
	for (size_t i = n; i-- > 0;) {
		ret->b[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* ---------------------------------------------------------------- addresses */

size_t addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

int addr_parse_family(const char *s, int family, struct addr *ret)
{
	struct addr a = { 0 };

	if (family != AF_UNSPEC && family_index(family) < 0)
		return -EAFNOSUPPORT;
	if (!s)
		return -EINVAL;
	a.family = strchr(s, ':') ? AF_INET6 : AF_INET;
	if (family != AF_UNSPEC && family != a.family)
		return -EINVAL;
	if (inet_pton(a.family, s, a.b) != 1)
		return -EINVAL;
	*ret = a;
	return 0;
}

int addr_parse(const char *s, struct addr *ret)
{
	return addr_parse_family(s, AF_UNSPEC, ret);
}

int addr_port_parse(const char *s, struct addr *ret, uint16_t *ret_port)
{
	char host[ADDR_STRLEN + 2];
	const char *colon = strrchr(s, ':');
	size_t hl;
	char *end;
	long p;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	hl = (size_t)(colon - s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (host[0] == '[') {
		if (hl < 3 || host[hl - 1] != ']')
			return -EINVAL;
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || p < 1 || p > 65535)
		return -EINVAL;
	if (addr_parse(host, ret) < 0)
		return -EINVAL;
	*ret_port = (uint16_t)p;
	return 0;
}

const char *addr_str(const struct addr *a, char *buf, size_t len)
{
	if (!len)
		return buf;
	if (!addr_is_set(a))
		snprintf(buf, len, "unset");
	else if (!inet_ntop(a->family, a->b, buf, (socklen_t)MIN(len, (size_t)ADDR_STRLEN)))
		snprintf(buf, len, "?");
	return buf;
}

static int family_rank(int family)
{
	return family == AF_INET ? 1 : family == AF_INET6 ? 2 : 0;
}

int addr_cmp(const struct addr *a, const struct addr *b)
{
	int ra = family_rank(a->family), rb = family_rank(b->family), r;

	if (ra != rb)
		return ra < rb ? -1 : 1;
	r = memcmp(a->b, b->b, addr_len(a->family));
	return r < 0 ? -1 : r > 0;
}

bool addr_eq(const struct addr *a, const struct addr *b)
{
	return addr_cmp(a, b) == 0;
}

bool addr_is_set(const struct addr *a)
{
	return family_index(a->family) >= 0;
}

bool addr_is_any(const struct addr *a)
{
	size_t n = addr_len(a->family);

	for (size_t i = 0; i < n; i++)
		if (a->b[i])
			return false;
	return n > 0;
}

int addr_add(struct addr *a, uint64_t n)
{
	int idx = family_index(a->family);
	u128 v;

	if (idx < 0)
		return -EINVAL;
	v = addr_to_u128(a);
	if (n > index_max(idx) - v)
		return -ERANGE;
	u128_to_addr(v + n, a->family, a);
	return 0;
}

int addr_range_count(const struct addr *first, const struct addr *last, uint64_t *ret)
{
	u128 f, l;

	if (!addr_is_set(first) || first->family != last->family)
		return -EINVAL;
	f = addr_to_u128(first);
	l = addr_to_u128(last);
	if (l < f)
		return -EINVAL;
	if (l - f >= UINT64_MAX)
		return -ERANGE;
	*ret = (uint64_t)(l - f) + 1;
	return 0;
}

bool addr_unmap_v4(struct addr *a)
{
	struct in_addr v4;

	if (a->family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->v6))
		return false;
	memcpy(&v4, a->b + 12, sizeof(v4));
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->v4 = v4;
	return true;
}

int addr_from_sockaddr(const struct sockaddr *sa, struct addr *ret, uint16_t *ret_port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(ret, 0, sizeof(*ret));
	switch (sa->sa_family) {
	case AF_INET:
		memcpy(&sin, sa, sizeof(sin));
		ret->family = AF_INET;
		ret->v4 = sin.sin_addr;
		if (ret_port)
			*ret_port = ntohs(sin.sin_port);
		return 0;
	case AF_INET6:
		memcpy(&sin6, sa, sizeof(sin6));
		ret->family = AF_INET6;
		ret->v6 = sin6.sin6_addr;
		if (ret_port)
			*ret_port = ntohs(sin6.sin6_port);
		return 0;
	default:
		return -EAFNOSUPPORT;
	}
}

int addr_to_sockaddr(const struct addr *a, uint16_t port, struct sockaddr_storage *ret,
	socklen_t *ret_len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	memset(ret, 0, sizeof(*ret));
	switch (a->family) {
	case AF_INET:
		sin.sin_addr = a->v4;
		memcpy(ret, &sin, sizeof(sin));
		if (ret_len)
			*ret_len = sizeof(sin);
		return 0;
	case AF_INET6:
		sin6.sin6_addr = a->v6;
		memcpy(ret, &sin6, sizeof(sin6));
		if (ret_len)
			*ret_len = sizeof(sin6);
		return 0;
	default:
		return -EAFNOSUPPORT;
	}
}

/* ---------------------------------------------------------------- prefixes */

/* Read "/plen" digits: decimal, no sign, no leading zero, at most bits. */
static int parse_plen(const char *p, unsigned bits, uint8_t *ret)
{
	unsigned v = 0;

	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1]))
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v <= 128)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (*p)
		return -EINVAL;
	if (v > bits)
		return -ERANGE;
	*ret = (uint8_t)v;
	return 0;
}

int cidr_parse(const char *s, unsigned flags, struct cidr *ret)
{
	char buf[ADDR_STRLEN];
	const char *slash;
	struct cidr c = { 0 };
	int family = AF_UNSPEC, r;
	unsigned bits;
	size_t len;
	u128 v, hm;

	if (!s || (flags & ~(unsigned)CIDR_FLAGS_ALL))
		return -EINVAL;
	if ((flags & (CIDR_V4 | CIDR_V6)) == CIDR_V4)
		family = AF_INET;
	else if ((flags & (CIDR_V4 | CIDR_V6)) == CIDR_V6)
		family = AF_INET6;

	if ((flags & CIDR_DEFAULT) && streq(s, "default")) {
		c.addr.family = family; /* AF_UNSPEC: the default of each family */
		*ret = c;
		return 0;
	}

	slash = strchr(s, '/');
	len = slash ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	r = addr_parse_family(buf, family, &c.addr);
	if (r < 0)
		return r;
	bits = (unsigned)addr_len(c.addr.family) * 8;

	if (!slash) {
		if (!(flags & CIDR_BARE))
			return -EINVAL;
		c.plen = (uint8_t)bits;
	} else {
		r = parse_plen(slash + 1, bits, &c.plen);
		if (r < 0)
			return r;
	}

	v = addr_to_u128(&c.addr);
	hm = host_mask(bits, c.plen);
	if (v & hm) {
		if (!(flags & CIDR_HOSTBITS))
			return -EDOM;
		u128_to_addr(v & ~hm, c.addr.family, &c.addr);
	}
	*ret = c;
	return 0;
}

const char *cidr_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case EINVAL:
		return "not an address/prefix-length of the expected family";
	case ERANGE:
		return "prefix length too long";
	case EDOM:
		return "host bits set";
	case E2BIG:
		return "too many prefixes";
	case EAFNOSUPPORT:
		return "unsupported address family";
	default:
		return "invalid prefix";
	}
}

bool cidr_is_any_default(const struct cidr *c)
{
	return c->addr.family == AF_UNSPEC && c->plen == 0;
}

const char *cidr_str(const struct cidr *c, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	if (len && cidr_is_any_default(c))
		snprintf(buf, len, "default");
	else if (len)
		snprintf(buf, len, "%s/%u", addr_str(&c->addr, a, sizeof(a)), c->plen);
	return buf;
}

void cidr_from_addr(const struct addr *a, struct cidr *ret)
{
	ret->addr = *a;
	ret->plen = (uint8_t)(addr_len(a->family) * 8);
}

void cidr_clear_hostbits(struct cidr *c)
{
	unsigned bits = (unsigned)addr_len(c->addr.family) * 8;

	if (!bits || c->plen > bits)
		return;
	u128_to_addr(addr_to_u128(&c->addr) & ~host_mask(bits, c->plen), c->addr.family,
		&c->addr);
}

bool cidr_contains(const struct cidr *c, const struct addr *a)
{
	unsigned bits = (unsigned)addr_len(c->addr.family) * 8;
	u128 hm;

	if (!bits || a->family != c->addr.family || c->plen > bits)
		return false;
	hm = host_mask(bits, c->plen);
	return (addr_to_u128(a) & ~hm) == (addr_to_u128(&c->addr) & ~hm);
}

bool cidr_contains_cidr(const struct cidr *outer, const struct cidr *inner)
{
	return inner->plen >= outer->plen && cidr_contains(outer, &inner->addr);
}

int cidr_cmp(const struct cidr *a, const struct cidr *b)
{
	int r = addr_cmp(&a->addr, &b->addr);

	if (r)
		return r;
	return a->plen < b->plen ? -1 : a->plen > b->plen;
}

/* ---------------------------------------------------------------- ranges */

struct pfxrange {
	u128 first, last; /* inclusive */
};

struct pfxset_family {
	struct pfxrange *r;
	size_t n;     /* ranges in r */
	size_t cap;   /* room in r */
	size_t clean; /* r[0..clean) sorted, disjoint, not adjacent; r[clean..n) pending */
};

/* A range starting at first (>= the start of the one ending at prev_last) merges with it. */
static bool touches(u128 prev_last, u128 first)
{
	return prev_last == U128_MAX || first <= prev_last + 1;
}

/* Append [first, last] to a clean array out[0..*n), merging; first >= out[*n-1].first. */
static void range_push(struct pfxrange *out, size_t *n, u128 first, u128 last)
{
	struct pfxrange *p = *n ? &out[*n - 1] : NULL;

	if (p && touches(p->last, first)) {
		if (last > p->last)
			p->last = last;
		return;
	}
	out[*n].first = first;
	out[*n].last = last;
	(*n)++;
}

static int range_cmp_cb(const void *a, const void *b)
{
	const struct pfxrange *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return 0;
}

/* out = a | b (both clean); out has room for na + nb; returns its length. */
static size_t ranges_union(const struct pfxrange *a, size_t na, const struct pfxrange *b,
	size_t nb, struct pfxrange *out)
{
	size_t i = 0, j = 0, o = 0;

	while (i < na || j < nb) {
		const struct pfxrange *p;

		if (j == nb || (i < na && a[i].first <= b[j].first))
			p = &a[i++];
		else
			p = &b[j++];
		range_push(out, &o, p->first, p->last);
	}
	return o;
}

/* out = a - b (both clean); out has room for na + nb; returns its length. */
static size_t ranges_subtract(const struct pfxrange *a, size_t na, const struct pfxrange *b,
	size_t nb, struct pfxrange *out)
{
	size_t j = 0, o = 0;

	for (size_t i = 0; i < na; i++) {
		u128 lo = a[i].first, hi = a[i].last;
		bool gone = false;

		while (j < nb && b[j].last < lo)
			j++;
		for (size_t k = j; k < nb && b[k].first <= hi; k++) {
			if (b[k].first > lo) {
				out[o].first = lo;
				out[o++].last = b[k].first - 1;
			}
			if (b[k].last >= hi) {
				gone = true;
				break;
			}
			lo = b[k].last + 1;
		}
		if (!gone) {
			out[o].first = lo;
			out[o++].last = hi;
		}
	}
	return o;
}

/* out = a & b (both clean); out has room for na + nb; returns its length. */
static size_t ranges_intersect(const struct pfxrange *a, size_t na, const struct pfxrange *b,
	size_t nb, struct pfxrange *out)
{
	size_t i = 0, j = 0, o = 0;

	while (i < na && j < nb) {
		u128 lo = MAX(a[i].first, b[j].first), hi = MIN(a[i].last, b[j].last);

		if (lo <= hi) {
			out[o].first = lo;
			out[o++].last = hi;
		}
		if (a[i].last < b[j].last)
			i++;
		else
			j++;
	}
	return o;
}

/* out = [0, max] - a (clean); out has room for na + 1; returns its length. */
static size_t ranges_complement(const struct pfxrange *a, size_t na, u128 max,
	struct pfxrange *out)
{
	size_t o = 0;
	u128 lo = 0;

	for (size_t i = 0; i < na; i++) {
		if (a[i].first > lo) {
			out[o].first = lo;
			out[o++].last = a[i].first - 1;
		}
		if (a[i].last == max)
			return o;
		lo = a[i].last + 1;
	}
	out[o].first = lo;
	out[o++].last = max;
	return o;
}

/*
 * Split [lo, hi] into the fewest prefixes: at each step the largest block that is aligned
 * at lo and ends at or before hi.  Writes them to out if not NULL; returns how many.
 */
static size_t range_to_cidrs(u128 lo, u128 hi, int idx, struct cidr *out)
{
	unsigned bits = index_bits(idx);
	size_t n = 0;

	for (;;) {
		u128 span = hi - lo; /* block size - 1 */
		unsigned k = MIN(ctz128(lo), bits);
		u128 m;

		if (span != U128_MAX)
			k = MIN(k, log2_128(span + 1));
		m = host_mask(128, 128 - k);
		if (out) {
			u128_to_addr(lo, index_family(idx), &out[n].addr);
			out[n].plen = (uint8_t)(bits - k);
		}
		n++;
		if (m == span)
			return n;
		lo += m + 1;
	}
}

/* ---------------------------------------------------------------- sets */

void pfxset_init(struct pfxset *s)
{
	s->fam[0] = NULL;
	s->fam[1] = NULL;
}

static void family_free(struct pfxset *s, int idx)
{
	if (!s->fam[idx])
		return;
	free(s->fam[idx]->r);
	FREE_AND_NULL(s->fam[idx]);
}

void pfxset_clear(struct pfxset *s)
{
	family_free(s, 0);
	family_free(s, 1);
}

/* Merge the pending tail of f into its clean head. */
static void family_normalize(struct pfxset_family *f)
{
	size_t k, o;
	struct pfxrange *out;

	if (f->clean == f->n)
		return;
	qsort(f->r + f->clean, f->n - f->clean, sizeof(*f->r), range_cmp_cb);
	k = 0;
	for (size_t i = f->clean; i < f->n; i++)
		range_push(f->r + f->clean, &k, f->r[i].first, f->r[i].last);
	if (f->clean == 0) {
		f->n = f->clean = k;
		return;
	}
	out = xmalloc((f->clean + k) * sizeof(*out));
	o = ranges_union(f->r, f->clean, f->r + f->clean, k, out);
	free(f->r);
	f->r = out;
	f->cap = f->clean + k;
	f->n = f->clean = o;
}

/*
 * The clean ranges of one family of s, or NULL when it has none.  s is logically const:
 * only the private order of its storage changes (see cidr.h).
 */
static const struct pfxset_family *family_ready(const struct pfxset *s, int idx)
{
	struct pfxset_family *f = s->fam[idx];

	if (!f)
		return NULL;
	family_normalize(f);
	return f->n ? f : NULL;
}

/* Install r (n ranges, room for cap; ownership passes to s) as family idx of s. */
static void family_commit(struct pfxset *s, int idx, struct pfxrange *r, size_t n, size_t cap)
{
	struct pfxset_family *f;

	family_free(s, idx);
	if (!n) {
		free(r);
		return;
	}
	if (n < cap / 2) {
		r = xrealloc(r, n * sizeof(*r));
		cap = n;
	}
	f = xcalloc(1, sizeof(*f));
	f->r = r;
	f->n = f->clean = n;
	f->cap = cap;
	s->fam[idx] = f;
}

enum set_op {
	SET_UNION,
	SET_SUBTRACT,
	SET_INTERSECT,
	SET_COMPLEMENT,
	_SET_OP_MAX,
};

/*
 * Compute family idx of (s op b) into a new array *ret (owned by the caller) of *ret_n
 * ranges and room for *ret_cap.  b is a clean array (may be s's own).  -E2BIG if the result
 * would hold more than PFXSET_MAX_RANGES ranges.
 */
static int family_compute(const struct pfxset *s, int idx, const struct pfxrange *b, size_t nb,
	enum set_op op, struct pfxrange **ret, size_t *ret_n, size_t *ret_cap)
{
	const struct pfxset_family *a = family_ready(s, idx);
	const struct pfxrange *ra = a ? a->r : NULL;
	size_t na = a ? a->n : 0, cap = na + nb + 1, n = 0;
	struct pfxrange *out = xmalloc(cap * sizeof(*out));

	switch (op) {
	case SET_UNION:
		n = ranges_union(ra, na, b, nb, out);
		break;
	case SET_SUBTRACT:
		n = ranges_subtract(ra, na, b, nb, out);
		break;
	case SET_INTERSECT:
		n = ranges_intersect(ra, na, b, nb, out);
		break;
	case SET_COMPLEMENT:
		n = ranges_complement(ra, na, index_max(idx), out);
		break;
	case _SET_OP_MAX:
		abort();
	}
	if (n > PFXSET_MAX_RANGES) {
		free(out);
		return -E2BIG;
	}
	*ret = out;
	*ret_n = n;
	*ret_cap = cap;
	return 0;
}

/* s = s op other for the families in mask (bit idx), all or nothing. */
static int set_apply(struct pfxset *s, const struct pfxset *other, enum set_op op, unsigned mask)
{
	struct pfxrange *out[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 }, cap[2] = { 0, 0 };
	int r = 0;

	for (int idx = 0; idx < 2; idx++) {
		const struct pfxset_family *b = other ? family_ready(other, idx) : NULL;

		if (!(mask & (1u << idx)))
			continue;
		r = family_compute(s, idx, b ? b->r : NULL, b ? b->n : 0, op, &out[idx], &n[idx],
			&cap[idx]);
		if (r < 0)
			goto out;
	}
	for (int idx = 0; idx < 2; idx++) {
		if (mask & (1u << idx)) {
			family_commit(s, idx, out[idx], n[idx], cap[idx]);
			out[idx] = NULL;
		}
	}
out:
	free(out[0]);
	free(out[1]);
	return r;
}

/* s = s op [first, last] within family idx. */
static int set_apply_range(struct pfxset *s, int idx, u128 first, u128 last, enum set_op op)
{
	struct pfxrange one = { first, last }, *out;
	size_t n, cap;
	int r;

	r = family_compute(s, idx, &one, 1, op, &out, &n, &cap);
	if (r < 0)
		return r;
	family_commit(s, idx, out, n, cap);
	return 0;
}

/* Union of family idx of s with [first, last]: appended, merged on the next read. */
static int set_add_range(struct pfxset *s, int idx, u128 first, u128 last)
{
	struct pfxset_family *f = s->fam[idx];
	bool in_order;

	if (!f)
		f = s->fam[idx] = xcalloc(1, sizeof(*f));
	in_order = f->clean == f->n;
	if (in_order && f->n) {
		struct pfxrange *p = &f->r[f->n - 1];

		if (first >= p->first && touches(p->last, first)) {
			if (last > p->last)
				p->last = last;
			return 0;
		}
		in_order = first > p->first;
	}
	if (f->n >= PFXSET_MAX_RANGES) {
		family_normalize(f);
		if (f->n >= PFXSET_MAX_RANGES)
			return set_apply_range(s, idx, first, last, SET_UNION);
		in_order = false;
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? MIN(2 * f->cap, (size_t)PFXSET_MAX_RANGES) : 16;
		f->r = xrealloc(f->r, f->cap * sizeof(*f->r));
	}
	f->r[f->n].first = first;
	f->r[f->n].last = last;
	f->n++;
	if (in_order)
		f->clean = f->n;
	return 0;
}

/* The range of addresses of prefix c, with host bits ignored; -EINVAL if c is not valid. */
static int cidr_range(const struct cidr *c, int *ret_idx, u128 *ret_first, u128 *ret_last)
{
	int idx = family_index(c->addr.family);
	u128 hm;

	if (idx < 0 || c->plen > index_bits(idx))
		return -EINVAL;
	hm = host_mask(index_bits(idx), c->plen);
	*ret_idx = idx;
	*ret_first = addr_to_u128(&c->addr) & ~hm;
	*ret_last = *ret_first | hm;
	return 0;
}

int pfxset_add(struct pfxset *s, const struct cidr *c)
{
	u128 first, last;
	int idx, r;

	if (cidr_is_any_default(c)) {
		static const struct cidr all4 = {.addr.family = AF_INET};
		static const struct cidr all6 = {.addr.family = AF_INET6};

		r = pfxset_add(s, &all4);
		return r < 0 ? r : pfxset_add(s, &all6);
	}
	r = cidr_range(c, &idx, &first, &last);
	if (r < 0)
		return r;
	return set_add_range(s, idx, first, last);
}

int pfxset_add_addr(struct pfxset *s, const struct addr *a)
{
	int idx = family_index(a->family);
	u128 v;

	if (idx < 0)
		return -EINVAL;
	v = addr_to_u128(a);
	return set_add_range(s, idx, v, v);
}

int pfxset_add_range(struct pfxset *s, const struct addr *first, const struct addr *last)
{
	int idx = family_index(first->family);
	u128 f, l;

	if (idx < 0 || first->family != last->family)
		return -EINVAL;
	f = addr_to_u128(first);
	l = addr_to_u128(last);
	if (l < f)
		return -EINVAL;
	return set_add_range(s, idx, f, l);
}

int pfxset_remove(struct pfxset *s, const struct cidr *c)
{
	u128 first, last;
	int idx, r;

	r = cidr_range(c, &idx, &first, &last);
	if (r < 0)
		return r;
	if (!family_ready(s, idx))
		return 0;
	return set_apply_range(s, idx, first, last, SET_SUBTRACT);
}

int pfxset_union(struct pfxset *s, const struct pfxset *other)
{
	return set_apply(s, other, SET_UNION, 3);
}

int pfxset_subtract(struct pfxset *s, const struct pfxset *other)
{
	return set_apply(s, other, SET_SUBTRACT, 3);
}

int pfxset_intersect(struct pfxset *s, const struct pfxset *other)
{
	return set_apply(s, other, SET_INTERSECT, 3);
}

int pfxset_complement(struct pfxset *s, int family)
{
	int idx = family_index(family);

	if (family == AF_UNSPEC)
		return set_apply(s, NULL, SET_COMPLEMENT, 3);
	if (idx < 0)
		return -EAFNOSUPPORT;
	return set_apply(s, NULL, SET_COMPLEMENT, 1u << idx);
}

int pfxset_copy(struct pfxset *dst, const struct pfxset *src)
{
	struct pfxset tmp;
	int r;

	if (dst == src)
		return 0;
	pfxset_init(&tmp);
	r = set_apply(&tmp, src, SET_UNION, 3);
	if (r < 0)
		return r;
	pfxset_clear(dst);
	*dst = tmp;
	return 0;
}

bool pfxset_contains(const struct pfxset *s, const struct addr *a)
{
	int idx = family_index(a->family);
	const struct pfxset_family *f = idx < 0 ? NULL : family_ready(s, idx);
	size_t lo = 0, hi;
	u128 v;

	if (!f)
		return false;
	/* Find the last range that starts at or before v. */
	v = addr_to_u128(a);
	hi = f->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->r[mid].first <= v)
			lo = mid;
		else
			hi = mid;
	}
	return f->r[lo].first <= v && v <= f->r[lo].last;
}

bool pfxset_equal(const struct pfxset *a, const struct pfxset *b)
{
	for (int idx = 0; idx < 2; idx++) {
		const struct pfxset_family *fa = family_ready(a, idx), *fb = family_ready(b, idx);
		size_t na = fa ? fa->n : 0, nb = fb ? fb->n : 0;

		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++) {
			if (fa->r[i].first != fb->r[i].first || fa->r[i].last != fb->r[i].last)
				return false;
		}
	}
	return true;
}

bool pfxset_empty(const struct pfxset *s)
{
	/* Every stored range, clean or pending, holds at least one address. */
	return !(s->fam[0] && s->fam[0]->n) && !(s->fam[1] && s->fam[1]->n);
}

/* Bit idx set for each family that family (AF_UNSPEC: both) selects; 0 if none. */
static unsigned family_mask(int family)
{
	if (family == AF_UNSPEC)
		return 3;
	return family_index(family) < 0 ? 0 : 1u << family_index(family);
}

size_t pfxset_count_cidrs(const struct pfxset *s, int family)
{
	unsigned mask = family_mask(family);
	size_t n = 0;

	for (int idx = 0; idx < 2; idx++) {
		const struct pfxset_family *f = (mask & (1u << idx)) ? family_ready(s, idx) : NULL;

		for (size_t i = 0; f && i < f->n; i++)
			n += range_to_cidrs(f->r[i].first, f->r[i].last, idx, NULL);
	}
	return n;
}

int pfxset_to_cidrs(const struct pfxset *s, int family, struct cidr **ret, size_t *n)
{
	unsigned mask = family_mask(family);
	size_t count, o = 0;
	struct cidr *out;

	*ret = NULL;
	*n = 0;
	if (!mask)
		return -EAFNOSUPPORT;
	count = pfxset_count_cidrs(s, family);
	if (!count)
		return 0;
	if (count > PFXSET_MAX_CIDRS)
		return -E2BIG;
	out = xcalloc(count, sizeof(*out));
	for (int idx = 0; idx < 2; idx++) {
		const struct pfxset_family *f = (mask & (1u << idx)) ? family_ready(s, idx) : NULL;

		for (size_t i = 0; f && i < f->n; i++)
			o += range_to_cidrs(f->r[i].first, f->r[i].last, idx, out + o);
	}
	*ret = out;
	*n = o;
	return 0;
}

/*
 * Special-purpose ranges that are not globally reachable.  Sources: RFC 6890 and the IANA
 * IPv4/IPv6 Special-Purpose Address Registries it set up (with later additions), RFC 5735
 * for the IPv4 list, plus multicast.  A few registry entries inside a listed block are
 * themselves global (e.g. 192.0.0.9/32 PCP anycast); the whole block is excluded anyway.
 */
/*
 * Each range with what it is: "is W" when a prefix lies inside it, "includes W" when a prefix
 * covers part of it (cidr_reserved()).  The first row a prefix meets names it, so a range
 * inside another comes first.
 */
struct reserved {
	const char *prefix;
	const char *is, *includes;
};
#define RESERVED(p, what) { p, "is " what, "includes " what }

static const struct reserved reserved_v4[] = {
	/* RFC 791 s3.2, RFC 1122 s3.2.1.3 */
	RESERVED("0.0.0.0/8", "\"this network\" (RFC 791)"),
	RESERVED("10.0.0.0/8", "private (RFC 1918)"),
	/* carrier-grade NAT */
	RESERVED("100.64.0.0/10", "shared address space (RFC 6598)"),
	/* RFC 1122 s3.2.1.3 */
	RESERVED("127.0.0.0/8", "loopback (RFC 1122)"),
	RESERVED("169.254.0.0/16", "link-local (RFC 3927)"),
	RESERVED("172.16.0.0/12", "private (RFC 1918)"),
	/* RFC 6890 s2.1 (RFC 7335, 8880) */
	RESERVED("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
	/* TEST-NET-1 */
	RESERVED("192.0.2.0/24", "documentation (RFC 5737)"),
	/* deprecated by RFC 7526 */
	RESERVED("192.88.99.0/24", "6to4 relay anycast (RFC 3068)"),
	RESERVED("192.168.0.0/16", "private (RFC 1918)"),
	RESERVED("198.18.0.0/15", "benchmarking (RFC 2544)"),
	/* TEST-NET-2, TEST-NET-3 */
	RESERVED("198.51.100.0/24", "documentation (RFC 5737)"),
	RESERVED("203.0.113.0/24", "documentation (RFC 5737)"),
	/* RFC 5735 s3 */
	RESERVED("224.0.0.0/4", "multicast (RFC 5771)"),
	/* RFC 919 s7, RFC 8190; inside 240/4, so before it */
	RESERVED("255.255.255.255/32", "limited broadcast (RFC 919)"),
	/* RFC 1112 s4 */
	RESERVED("240.0.0.0/4", "reserved for future use (RFC 1112)"),
};

static const struct reserved reserved_v6[] = {
	/* RFC 4291 s2.5.2, s2.5.3, s2.5.5.2 */
	RESERVED("::/128", "unspecified (RFC 4291)"),
	RESERVED("::1/128", "loopback (RFC 4291)"),
	RESERVED("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
	/* RFC 6052 s2.1: the well-known prefix */
	RESERVED("64:ff9b::/96", "IPv4/IPv6 translation (RFC 6052)"),
	RESERVED("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
	RESERVED("100::/64", "discard-only (RFC 6666)"),
	/* TEREDO RFC 4380, RFC 5180... */
	RESERVED("2001::/23", "IETF protocol assignments (RFC 2928)"),
	RESERVED("2001:db8::/32", "documentation (RFC 3849)"),
	/* RFC 6890 table 26; relays deprecated by RFC 7526 */
	RESERVED("2002::/16", "6to4 (RFC 3056)"),
	RESERVED("3fff::/20", "documentation (RFC 9637)"),
	RESERVED("5f00::/16", "segment routing SIDs (RFC 9602)"),
	RESERVED("fc00::/7", "unique local (RFC 4193)"),
	/* RFC 4291 s2.5.6, s2.7 */
	RESERVED("fe80::/10", "link-local (RFC 4291)"),
	RESERVED("ff00::/8", "multicast (RFC 4291)"),
};

static void reserved_row(const struct reserved *row, struct cidr *ret)
{
	if (cidr_parse(row->prefix, 0, ret) < 0)
		abort(); /* our own table is broken */
}

static int add_list(struct pfxset *s, const struct reserved *list, size_t n)
{
	struct cidr c;
	int r;

	for (size_t i = 0; i < n; i++) {
		reserved_row(&list[i], &c);
		r = pfxset_add(s, &c);
		if (r < 0)
			return r;
	}
	return 0;
}

const char *cidr_reserved(const struct cidr *c)
{
	int v4 = c->addr.family == AF_INET;
	const struct reserved *list = v4 ? reserved_v4 : reserved_v6;
	size_t n = v4 ? ARRAY_SIZE(reserved_v4) : ARRAY_SIZE(reserved_v6);
	struct cidr rc;

	if (!v4 && c->addr.family != AF_INET6)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		reserved_row(&list[i], &rc);
		if (cidr_contains_cidr(&rc, c))
			return list[i].is;
		if (cidr_contains_cidr(c, &rc))
			return list[i].includes;
	}
	return NULL;
}

int pfxset_add_reserved(struct pfxset *s, int family)
{
	unsigned mask = family_mask(family);
	struct pfxset tmp;
	int r = 0;

	if (!mask)
		return -EAFNOSUPPORT;
	pfxset_init(&tmp);
	if (mask & 1)
		r = add_list(&tmp, reserved_v4, ARRAY_SIZE(reserved_v4));
	if (r == 0 && (mask & 2))
		r = add_list(&tmp, reserved_v6, ARRAY_SIZE(reserved_v6));
	if (r == 0)
		r = pfxset_union(s, &tmp);
	pfxset_clear(&tmp);
	return r;
}

int pfxset_parse(struct pfxset *s, const char *list, unsigned flags, const char **bad_token)
{
	char tok[CIDR_STRLEN];
	const char *p = list, *bad = NULL;
	struct pfxset tmp;
	struct cidr c;
	size_t len;
	int r = 0;

	pfxset_init(&tmp);
	if (!list) {
		r = -EINVAL;
		goto out;
	}
	for (;;) {
		p += strspn(p, LIST_SEPARATORS);
		if (!*p)
			break;
		bad = p;
		len = strcspn(p, LIST_SEPARATORS);
		r = len < sizeof(tok) ? 0 : -EINVAL;
		if (r < 0)
			goto out;
		memcpy(tok, p, len);
		tok[len] = '\0';
		r = cidr_parse(tok, flags, &c);
		if (r < 0)
			goto out;
		r = pfxset_add(&tmp, &c);
		if (r < 0)
			goto out;
		p += len;
	}
	bad = NULL;
	r = pfxset_union(s, &tmp);
out:
	if (bad_token)
		*bad_token = r < 0 ? bad : NULL;
	pfxset_clear(&tmp);
	return r;
}
