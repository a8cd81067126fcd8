/*
 * policy_nft.c - the nftables ruleset of the policy module (multi-WAN load balancing).
 *
 * Turns a struct policy_model into the body of `table inet egress { ... }`.  How the ruleset
 * works, chain by chain (the golden test in tests/unit/test_policy_nft.c shows a whole one):
 *
 *   prerouting (filter, mangle)  packets of known connections get their routing mark back from
 *                                the conntrack mark (vmap on the masked ct mark -> restore.UP);
 *                                a new connection from an uplink interface records that uplink
 *                                in its ct mark (replies leave the way they came) and gets
 *                                its packet mark (its reverse-path check uses it); a new
 *                                connection from a LAN interface is looked up with the probe
 *                                mark first: where main routes it by more than its default
 *                                route (a LAN, an uplink's own subnet) it stays unmarked and
 *                                goes by main; the others go through classify.
 *   output (route, mangle)       a socket that set a mark of ours (SO_MARK, e.g. a health
 *                                probe) keeps it and has it recorded in the ct mark, so its
 *                                replies get it back; with model->output the rest of the
 *                                gateway's own traffic goes the way of prerouting.
 *   classify                     the rules in order: goto policy.P, or return (main: no mark);
 *                                what no rule matches goes to the default policy.
 *   policy.P                     affinity first (sticky sets of P's chosen members), then a
 *                                weighted random choice (numgen vmap) among the usable members
 *                                of the lowest tier that has one, per address family; then the
 *                                last resort (return = main table, or reject).
 *   pick.P.UP                    refreshes P's affinity sets, then goto mark.UP.
 *   mark.UP                      sets the ct mark and the packet mark (our bits only).
 *   postrouting (nat, srcnat)    masquerade per uplink that asks for it.
 *   forward (filter)             only with model->flowtable: an established connection of
 *                                ours (a mark in its ct mark) joins the flowtable `fast`, whose
 *                                later packets skip every chain and the routing rules.
 *
 * The established path is one rule: the vmap on the masked ct mark (no `ct state` test: a
 * connection has a mark of ours only once it was classified, and a repeated first packet,
 * e.g. a retransmitted SYN, keeps the uplink chosen for the first instead of being classified
 * again).  A packet whose connection has no mark of ours goes on to `ct state != new return`.
 *
 * Every change of a mark touches only the bits of mark_mask, with constants only
 * (`ct mark set ct mark and ~MASK or MARK`), as nft 1.0.6 requires; this is also why the
 * restore goes through one small chain per uplink instead of `meta mark set ct mark and MASK`
 * (which would clear the other tools' bits of the packet mark).
 *
 * This file must not touch the kernel, log, or keep state: it only writes text.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft.h"
#include "policy_nft.h"
#include "util.h"

const char *const policy_sticky_name[_POLICY_STICKY_MAX] = {
	[POLICY_STICKY_NONE] = "none",
	[POLICY_STICKY_SOURCE] = "source",
	[POLICY_STICKY_SOURCE_DEST] = "source_dest",
};

const char *const policy_last_resort_name[_POLICY_LAST_MAX] = {
	[POLICY_LAST_MAIN] = "main",
	[POLICY_LAST_REJECT] = "reject",
};

#define NAME_SZ	   (POLICY_NFT_NAME_MAX + 1)
#define STICKY_NAME_SZ (2 * POLICY_NFT_NAME_MAX + 16) /* "sticky.P.U.v4" */
#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */

/* The two address families, index 0 and 1 everywhere below. */
static const struct fam {
	int af;
	const char *ip;	       /* payload protocol: ip / ip6 */
	const char *nfproto;   /* meta nfproto value */
	const char *addr_type; /* set key type */
	const char *sfx;       /* set name suffix */
	const char *icmp;      /* meta l4proto of ICMP */
	unsigned bits;
} fams[2] = {
	{AF_INET, "ip", "ipv4", "ipv4_addr", "v4", "icmp", 32},
	{AF_INET6, "ip6", "ipv6", "ipv6_addr", "v6", "ipv6-icmp", 128},
};

struct gen {
	const struct policy_model *m;
	struct nft_buf b;
	char (*up)[NAME_SZ];  /* sanitised uplink names */
	char (*pol)[NAME_SZ]; /* sanitised policy names */
	char (*set)[NAME_SZ]; /* sanitised set names */
	int (*tier)[2];	      /* per policy and family: the tier in use, 0 = none usable */
	uint32_t keep;	      /* ~mark_mask: the bits we leave alone */
};

/* ---- validation ----------------------------------------------------------------------- */

/* Lower-case name into ret with anything but [a-z0-9_] as '_'; -EINVAL if empty or long. */
static int sanitize(const char *name, char ret[NAME_SZ])
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n > POLICY_NFT_NAME_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		ret[i] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
	}
	ret[n] = '\0';
	return 0;
}

/* Sanitise n names (stride bytes apart, name first) into ret; -EINVAL on a clash. */
static int sanitize_all(const void *items, size_t n, size_t stride, char (*ret)[NAME_SZ])
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const char *name = *(const char *const *)((const char *)items + i * stride);

		if (sanitize(name, ret[i]) < 0)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (streq(ret[i], ret[j]))
				return -EINVAL;
	}
	return 0;
}

/* An interface name nft can quote: 1..15 printable characters, no '"' or '\'. */
static bool ifname_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > IFNAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

static bool cidrs_ok(const struct cidr *c, size_t n)
{
	size_t i;

	if (n && !c)
		return false;
	for (i = 0; i < n; i++)
		if ((c[i].addr.family != AF_INET && c[i].addr.family != AF_INET6) ||
			c[i].plen > (c[i].addr.family == AF_INET ? 32 : 128))
			return false;
	return true;
}

static int find_set(const struct policy_model *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n_sets; i++)
		if (streq(m->sets[i].name, name))
			return (int)i;
	return -1;
}

static int validate_uplinks(const struct policy_model *m)
{
	size_t i, j;

	if (m->probe_mark & ~m->mark_mask)
		return -EINVAL;
	for (i = 0; i < m->n_uplinks; i++) {
		const struct policy_uplink *u = &m->uplinks[i];

		if (u->mark == 0 || (u->mark & ~m->mark_mask) || u->mark == m->probe_mark)
			return -EINVAL;
		if (u->ifname && !ifname_ok(u->ifname))
			return -EINVAL;
		if (u->masquerade && !u->ifname)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (m->uplinks[j].mark == u->mark)
				return -EINVAL;
		for (j = 0; j < m->n_lan; j++)
			if (u->ifname && streq(u->ifname, m->lan[j]))
				return -EINVAL;
	}
	return 0;
}

static int validate_policy(const struct policy_model *m, const struct policy_def *p)
{
	size_t i, j;

	if (p->n_members && !p->members)
		return -EINVAL;
	for (i = 0; i < p->n_members; i++) {
		const struct policy_member *mb = &p->members[i];

		if (mb->uplink >= m->n_uplinks || mb->weight < 1 || mb->weight > 256 ||
			mb->tier < 1)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (p->members[j].uplink == mb->uplink)
				return -EINVAL;
	}
	if (p->sticky < 0 || p->sticky >= _POLICY_STICKY_MAX)
		return -EINVAL;
	if (p->sticky != POLICY_STICKY_NONE && p->sticky_timeout_ms == 0)
		return -EINVAL;
	if (p->sticky == POLICY_STICKY_SOURCE_DEST &&
		(p->sticky_prefix4 < 1 || p->sticky_prefix4 > 32 || p->sticky_prefix6 < 1 ||
			p->sticky_prefix6 > 128))
		return -EINVAL;
	if (p->last_resort < 0 || p->last_resort >= _POLICY_LAST_MAX)
		return -EINVAL;
	return 0;
}

static int validate_rule(const struct policy_model *m, const struct policy_rule *r)
{
	char name[NAME_SZ];
	size_t i;

	if (r->name && sanitize(r->name, name) < 0)
		return -EINVAL;
	if (!cidrs_ok(r->src, r->n_src) || !cidrs_ok(r->dst, r->n_dst))
		return -EINVAL;
	if (r->dst_set && find_set(m, r->dst_set) < 0)
		return -EINVAL;
	if (r->proto != 0 && r->proto != IPPROTO_TCP && r->proto != IPPROTO_UDP &&
		r->proto != IPPROTO_ICMP)
		return -EINVAL;
	if (r->n_dport && (!r->dport || (r->proto != IPPROTO_TCP && r->proto != IPPROTO_UDP)))
		return -EINVAL;
	for (i = 0; i < r->n_dport; i++)
		if (r->dport[i].lo > r->dport[i].hi || r->dport[i].hi > 65535)
			return -EINVAL;
	if (r->iif && !ifname_ok(r->iif))
		return -EINVAL;
	if (r->policy < -1 || r->policy >= (int)m->n_policies)
		return -EINVAL;
	return 0;
}

/* Check the whole model and fill g's name tables; -EINVAL at the first inconsistency. */
static int validate(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t i;
	int r;

	if (m->mark_mask == 0 || m->n_policies == 0 || m->default_policy < 0 ||
		m->default_policy >= (int)m->n_policies)
		return -EINVAL;
	if ((m->n_lan && !m->lan) || (m->n_uplinks && !m->uplinks) || !m->policies ||
		(m->n_sets && !m->sets) || (m->n_rules && !m->rules) ||
		(m->n_carry && !m->carry))
		return -EINVAL;
	for (i = 0; i < m->n_carry; i++)
		if (!m->carry[i].set || (m->carry[i].n && !m->carry[i].elems))
			return -EINVAL;
	for (i = 0; i < m->n_lan; i++)
		if (!ifname_ok(m->lan[i]))
			return -EINVAL;
	r = sanitize_all(m->uplinks, m->n_uplinks, sizeof(*m->uplinks), g->up);
	if (r < 0)
		return r;
	r = sanitize_all(m->policies, m->n_policies, sizeof(*m->policies), g->pol);
	if (r < 0)
		return r;
	r = sanitize_all(m->sets, m->n_sets, sizeof(*m->sets), g->set);
	if (r < 0)
		return r;
	r = validate_uplinks(m);
	if (r < 0)
		return r;
	for (i = 0; i < m->n_policies; i++)
		if ((r = validate_policy(m, &m->policies[i])) < 0)
			return r;
	for (i = 0; i < m->n_sets; i++)
		if (!cidrs_ok(m->sets[i].prefixes, m->sets[i].n))
			return -EINVAL;
	for (i = 0; i < m->n_rules; i++)
		if ((r = validate_rule(m, &m->rules[i])) < 0)
			return r;
	return 0;
}

/* ---- model queries -------------------------------------------------------------------- */

static bool up_carries(const struct policy_uplink *u, int f)
{
	return f == 0 ? u->v4 : u->v6;
}

/* Can member mb of a policy take new connections of family f now? */
static bool member_live(const struct gen *g, const struct policy_member *mb, int f)
{
	const struct policy_uplink *u = &g->m->uplinks[mb->uplink];

	return u->usable && up_carries(u, f);
}

/* The lowest tier of p with a live member for family f; 0 if none. */
static int pick_tier(const struct gen *g, const struct policy_def *p, int f)
{
	int best = 0;
	size_t i;

	for (i = 0; i < p->n_members; i++)
		if (member_live(g, &p->members[i], f) && (best == 0 || p->members[i].tier < best))
			best = p->members[i].tier;
	return best;
}

/* Is member mb of policy pi among those chosen from for family f? */
static bool chosen(const struct gen *g, size_t pi, const struct policy_member *mb, int f)
{
	return g->tier[pi][f] && mb->tier == g->tier[pi][f] && member_live(g, mb, f);
}

/* ---- text helpers --------------------------------------------------------------------- */

/* A prefix as nft lists it: host prefixes without their length. */
static const char *pfx_str(const struct cidr *c, char buf[CIDR_STRLEN])
{
	if (c->plen == (c->addr.family == AF_INET ? 32 : 128))
		return addr_str(&c->addr, buf, CIDR_STRLEN);
	return cidr_str(c, buf, CIDR_STRLEN);
}

/* The prefixes of family f in c[0..n), merged into the fewest; *ret owned by the caller. */
static int merged(const struct cidr *c, size_t n, int f, struct cidr **ret, size_t *ret_n)
{
	struct pfxset s;
	size_t i;
	int r = 0;

	pfxset_init(&s);
	for (i = 0; i < n && r == 0; i++)
		if (c[i].addr.family == fams[f].af)
			r = pfxset_add(&s, &c[i]);
	if (r == 0)
		r = pfxset_to_cidrs(&s, fams[f].af, ret, ret_n);
	pfxset_clear(&s);
	return r;
}

/* " { a, b }" or " a" for one element. */
static void put_cidrs(struct nft_buf *b, const struct cidr *c, size_t n)
{
	char buf[CIDR_STRLEN];
	size_t i;

	if (n == 1) {
		nft_buf_printf(b, " %s", pfx_str(&c[0], buf));
		return;
	}
	nft_buf_add(b, " {");
	for (i = 0; i < n; i++)
		nft_buf_printf(b, "%s %s", i ? "," : "", pfx_str(&c[i], buf));
	nft_buf_add(b, " }");
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* " 80", " 8000-8999" or " { 80, 443 }", overlapping and adjacent ranges merged. */
static void put_ports(struct nft_buf *b, const struct range *v, size_t n)
{
	struct range *s = xmalloc(n * sizeof(*s));
	size_t i, k = 0;

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), range_cmp);
	for (i = 1; i < n; i++) {
		if (s[i].lo <= s[k].hi + 1) {
			s[k].hi = MAX(s[k].hi, s[i].hi);
			continue;
		}
		s[++k] = s[i];
	}
	n = k + 1;
	nft_buf_add(b, n > 1 ? " {" : "");
	for (i = 0; i < n; i++) {
		nft_buf_printf(b, "%s %u", i ? "," : "", s[i].lo);
		if (s[i].hi != s[i].lo)
			nft_buf_printf(b, "-%u", s[i].hi);
	}
	nft_buf_add(b, n > 1 ? " }" : "");
	free(s);
}

/* A duration as nft writes it: 1h30m, 500ms. */
static void put_duration(struct nft_buf *b, uint32_t ms)
{
	static const struct {
		uint32_t ms;
		const char *unit;
	} units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (ms >= units[i].ms) {
			nft_buf_printf(b, "%u%s", ms / units[i].ms, units[i].unit);
			ms %= units[i].ms;
		}
	}
}

/* The network mask of a /plen of family f, e.g. 255.255.255.0. */
static const char *mask_str(int f, unsigned plen, char buf[ADDR_STRLEN])
{
	struct addr a = {.family = fams[f].af};
	unsigned i;

	for (i = 0; i < plen; i++)
		a.b[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	return addr_str(&a, buf, ADDR_STRLEN);
}

/* The affinity key of policy p for family f: "ip saddr" or "ip saddr . ip daddr and MASK". */
static void put_sticky_key(struct nft_buf *b, const struct policy_def *p, int f)
{
	unsigned plen = f == 0 ? p->sticky_prefix4 : p->sticky_prefix6;
	char buf[ADDR_STRLEN];

	nft_buf_printf(b, "%s saddr", fams[f].ip);
	if (p->sticky != POLICY_STICKY_SOURCE_DEST)
		return;
	nft_buf_printf(b, " . %s daddr", fams[f].ip);
	if (plen < fams[f].bits)
		nft_buf_printf(b, " and %s", mask_str(f, plen, buf));
}

/* `X mark set X mark and ~MASK or MARK`: our bits only, constants only (nft 1.0.6). */
static void put_mark_set(struct gen *g, const char *what, uint32_t mark)
{
	nft_buf_printf(
		&g->b, "%s mark set %s mark and 0x%08x or 0x%08x", what, what, g->keep, mark);
}

/* ---- sections ------------------------------------------------------------------------- */

static void emit_header(struct gen *g)
{
	nft_buf_printf(&g->b,
		"# egressd policy: multi-WAN balancing by conntrack mark (generated, do not "
		"edit).\n"
		"# Only the bits 0x%08x of the packet and conntrack marks are ours.\n",
		g->m->mark_mask);
}

static int emit_dst_sets(struct gen *g)
{
	const struct policy_model *m = g->m;
	char buf[CIDR_STRLEN];
	size_t i, j, n;
	int f, r;

	for (i = 0; i < m->n_sets; i++) {
		for (f = 0; f < 2; f++) {
			struct cidr *c = NULL;

			r = merged(m->sets[i].prefixes, m->sets[i].n, f, &c, &n);
			if (r < 0)
				return r;
			if (n == 0)
				continue;
			nft_buf_printf(&g->b,
				"\tset dst.%s.%s {\n"
				"\t\ttype %s\n"
				"\t\tflags interval\n"
				"\t\tauto-merge\n"
				"\t\telements = {",
				g->set[i], fams[f].sfx, fams[f].addr_type);
			for (j = 0; j < n; j++)
				nft_buf_printf(&g->b, "%s %s", j ? "," : "", pfx_str(&c[j], buf));
			nft_buf_add(&g->b, " }\n\t}\n");
			free(c);
		}
	}
	return 0;
}

/* The name of policy pi's affinity set for member mb and family f. */
static void sticky_set_name(const struct gen *g, size_t pi, const struct policy_member *mb, int f,
	char ret[STICKY_NAME_SZ])
{
	snprintf(ret, STICKY_NAME_SZ, "sticky.%s.%s.%s", g->pol[pi], g->up[mb->uplink],
		fams[f].sfx);
}

/* Does carried entry e fit a set of policy p for family f as the set is now? */
static bool carry_fits(const struct policy_def *p, int f, const struct policy_sticky_elem *e)
{
	unsigned plen = f == 0 ? p->sticky_prefix4 : p->sticky_prefix6;
	struct cidr masked;

	if (e->src.family != fams[f].af || !e->expires_ms)
		return false;
	if (p->sticky != POLICY_STICKY_SOURCE_DEST)
		return !addr_is_set(&e->dst);
	/* a destination masked with another prefix length would never match again */
	masked = (struct cidr){.addr = e->dst, .plen = (uint8_t)plen};
	cidr_clear_hostbits(&masked);
	return e->dst.family == fams[f].af && addr_eq(&masked.addr, &e->dst);
}

/* The carried entries of set `name` of policy p (family f) that still fit it. */
static void put_carried(struct gen *g, const char *name, const struct policy_def *p, int f)
{
	char a[ADDR_STRLEN], d[ADDR_STRLEN];
	size_t i, j, n = 0;

	for (i = 0; i < g->m->n_carry; i++) {
		const struct policy_carry *c = &g->m->carry[i];

		if (!streq(c->set, name))
			continue;
		for (j = 0; j < c->n; j++) {
			const struct policy_sticky_elem *e = &c->elems[j];

			if (!carry_fits(p, f, e))
				continue;
			nft_buf_add(&g->b, n++ ? ", " : "\t\telements = { ");
			nft_buf_add(&g->b, addr_str(&e->src, a, sizeof(a)));
			if (p->sticky == POLICY_STICKY_SOURCE_DEST)
				nft_buf_printf(&g->b, " . %s", addr_str(&e->dst, d, sizeof(d)));
			nft_buf_add(&g->b, " expires ");
			put_duration(&g->b, MIN(e->expires_ms, p->sticky_timeout_ms));
		}
	}
	if (n)
		nft_buf_add(&g->b, " }\n");
}

static bool name_listed(const char *const *names, const char *name)
{
	for (size_t i = 0; names && names[i]; i++)
		if (streq(names[i], name))
			return true;
	return false;
}

static void emit_sticky_sets(struct gen *g)
{
	const struct policy_model *m = g->m;
	char name[STICKY_NAME_SZ];
	size_t pi, i;
	int f;

	for (pi = 0; pi < m->n_policies; pi++) {
		const struct policy_def *p = &m->policies[pi];

		if (p->sticky == POLICY_STICKY_NONE)
			continue;
		for (i = 0; i < p->n_members; i++) {
			const struct policy_member *mb = &p->members[i];

			for (f = 0; f < 2; f++) {
				if (!chosen(g, pi, mb, f))
					continue;
				sticky_set_name(g, pi, mb, f, name);
				if (name_listed(m->keep_sets, name))
					continue;
				nft_buf_printf(
					&g->b, "\tset %s {\n\t\ttype %s", name, fams[f].addr_type);
				if (p->sticky == POLICY_STICKY_SOURCE_DEST)
					nft_buf_printf(&g->b, " . %s", fams[f].addr_type);
				nft_buf_add(&g->b, "\n\t\tflags dynamic,timeout\n\t\ttimeout ");
				put_duration(&g->b, p->sticky_timeout_ms);
				nft_buf_add(&g->b, "\n");
				put_carried(g, name, p, f);
				nft_buf_add(&g->b, "\t}\n");
			}
		}
	}
}

/* mark.UP: a new connection leaves through UP; restore.UP: a packet of one that does. */
static void emit_uplink_chains(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t i;

	for (i = 0; i < m->n_uplinks; i++) {
		const struct policy_uplink *u = &m->uplinks[i];

		nft_buf_printf(
			&g->b, "\tchain mark.%s {\n\t\tcomment \"uplink %s", g->up[i], g->up[i]);
		if (u->ifname)
			nft_buf_printf(&g->b, " (%s)", u->ifname);
		nft_buf_printf(&g->b, "%s: new connections\"\n\t\t",
			u->usable ? "" : u->drained ? ", drained" : ", not usable");
		put_mark_set(g, "ct", u->mark);
		nft_buf_add(&g->b, "\n\t\t");
		put_mark_set(g, "meta", u->mark);
		nft_buf_printf(&g->b, "\n\t}\n\tchain restore.%s {\n\t\t", g->up[i]);
		put_mark_set(g, "meta", u->mark);
		nft_buf_add(&g->b, "\n\t}\n");
	}
}

/* pick.P.UP for sticky policies: refresh the affinity, then mark. */
static void emit_pick_chains(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t pi, i;
	int f;

	for (pi = 0; pi < m->n_policies; pi++) {
		const struct policy_def *p = &m->policies[pi];

		if (p->sticky == POLICY_STICKY_NONE)
			continue;
		for (i = 0; i < p->n_members; i++) {
			const struct policy_member *mb = &p->members[i];

			if (!chosen(g, pi, mb, 0) && !chosen(g, pi, mb, 1))
				continue;
			nft_buf_printf(
				&g->b, "\tchain pick.%s.%s {\n", g->pol[pi], g->up[mb->uplink]);
			for (f = 0; f < 2; f++) {
				if (!chosen(g, pi, mb, f))
					continue;
				nft_buf_printf(&g->b, "\t\tupdate @sticky.%s.%s.%s { ", g->pol[pi],
					g->up[mb->uplink], fams[f].sfx);
				put_sticky_key(&g->b, p, f);
				nft_buf_add(&g->b, " }\n");
			}
			nft_buf_printf(&g->b, "\t\tgoto mark.%s\n\t}\n", g->up[mb->uplink]);
		}
	}
}

/* The chain a choice of member mb of policy pi leads to. */
static void put_target(struct gen *g, size_t pi, const struct policy_member *mb)
{
	if (g->m->policies[pi].sticky == POLICY_STICKY_NONE)
		nft_buf_printf(&g->b, "mark.%s", g->up[mb->uplink]);
	else
		nft_buf_printf(&g->b, "pick.%s.%s", g->pol[pi], g->up[mb->uplink]);
}

/* The weighted choice among the chosen members of policy pi for family f (-1: both). */
static void put_choice(struct gen *g, size_t pi, int f)
{
	const struct policy_def *p = &g->m->policies[pi];
	int ff = f < 0 ? 0 : f, total = 0, at = 0, n = 0;
	size_t i;

	for (i = 0; i < p->n_members; i++) {
		if (chosen(g, pi, &p->members[i], ff)) {
			total += p->members[i].weight;
			n++;
		}
	}
	nft_buf_add(&g->b, "\t\t");
	if (f >= 0)
		nft_buf_printf(&g->b, "meta nfproto %s ", fams[f].nfproto);
	if (n == 1) {
		for (i = 0; i < p->n_members; i++)
			if (chosen(g, pi, &p->members[i], ff))
				break;
		nft_buf_add(&g->b, "goto ");
		put_target(g, pi, &p->members[i]);
	} else {
		nft_buf_printf(&g->b, "numgen random mod %d vmap {", total);
		for (i = 0; i < p->n_members; i++) {
			const struct policy_member *mb = &p->members[i];

			if (!chosen(g, pi, mb, ff))
				continue;
			nft_buf_printf(&g->b, "%s %d", at ? "," : "", at);
			if (mb->weight > 1)
				nft_buf_printf(&g->b, "-%d", at + mb->weight - 1);
			nft_buf_add(&g->b, " : goto ");
			put_target(g, pi, mb);
			at += mb->weight;
		}
		nft_buf_add(&g->b, " }");
	}
	nft_buf_printf(&g->b, " comment \"tier %d\"\n", g->tier[pi][ff]);
}

/* Do both families choose among the same members? */
static bool same_choice(const struct gen *g, size_t pi)
{
	const struct policy_def *p = &g->m->policies[pi];
	size_t i;

	for (i = 0; i < p->n_members; i++)
		if (chosen(g, pi, &p->members[i], 0) != chosen(g, pi, &p->members[i], 1))
			return false;
	return g->tier[pi][0] && g->tier[pi][1];
}

static void emit_policy_chain(struct gen *g, size_t pi)
{
	const struct policy_def *p = &g->m->policies[pi];
	size_t i;
	int f;

	nft_buf_printf(&g->b, "\tchain policy.%s {\n\t\tcomment \"policy %s: sticky %s", g->pol[pi],
		g->pol[pi], policy_sticky_name[p->sticky]);
	if (p->sticky != POLICY_STICKY_NONE) {
		nft_buf_add(&g->b, " ");
		put_duration(&g->b, p->sticky_timeout_ms);
	}
	nft_buf_printf(&g->b, ", last resort %s\"\n", policy_last_resort_name[p->last_resort]);

	if (p->sticky != POLICY_STICKY_NONE) {
		for (i = 0; i < p->n_members; i++) {
			const struct policy_member *mb = &p->members[i];

			for (f = 0; f < 2; f++) {
				if (!chosen(g, pi, mb, f))
					continue;
				nft_buf_add(&g->b, "\t\t");
				put_sticky_key(&g->b, p, f);
				nft_buf_printf(&g->b, " @sticky.%s.%s.%s goto pick.%s.%s\n",
					g->pol[pi], g->up[mb->uplink], fams[f].sfx, g->pol[pi],
					g->up[mb->uplink]);
			}
		}
	}
	if (same_choice(g, pi)) {
		put_choice(g, pi, -1);
	} else {
		for (f = 0; f < 2; f++)
			if (g->tier[pi][f])
				put_choice(g, pi, f);
	}
	/* Whatever is still here has no usable member for its family. */
	if (!g->tier[pi][0] || !g->tier[pi][1]) {
		if (p->last_resort == POLICY_LAST_MAIN) {
			nft_buf_add(&g->b, "\t\treturn comment \"no usable uplink: main table\"\n");
		} else {
			nft_buf_add(&g->b, "\t\tmeta l4proto tcp reject with tcp reset "
					   "comment \"no usable uplink\"\n"
					   "\t\treject with icmpx type admin-prohibited\n");
		}
	}
	nft_buf_add(&g->b, "\t}\n");
}

/* One line of rule r for family f (-1: any family) with its prefixes of that family. */
static int put_rule_line(struct gen *g, const struct policy_rule *r, const char *label, int f,
	const struct cidr *src, size_t n_src, const struct cidr *dst, size_t n_dst)
{
	struct nft_buf *b = &g->b;
	int si;

	nft_buf_add(b, "\t\t");
	if (r->iif)
		nft_buf_printf(b, "iifname \"%s\" ", r->iif);
	if (n_src) {
		nft_buf_printf(b, "%s saddr", fams[f].ip);
		put_cidrs(b, src, n_src);
		nft_buf_add(b, " ");
	}
	if (n_dst) {
		nft_buf_printf(b, "%s daddr", fams[f].ip);
		put_cidrs(b, dst, n_dst);
		nft_buf_add(b, " ");
	}
	if (r->dst_set) {
		si = find_set(g->m, r->dst_set);
		nft_buf_printf(b, "%s daddr @dst.%s.%s ", fams[f].ip, g->set[si], fams[f].sfx);
	}
	if (r->n_dport) {
		nft_buf_add(b, r->proto == IPPROTO_TCP ? "tcp dport" : "udp dport");
		put_ports(b, r->dport, r->n_dport);
		nft_buf_add(b, " ");
	} else if (r->proto == IPPROTO_TCP || r->proto == IPPROTO_UDP) {
		nft_buf_add(b, r->proto == IPPROTO_TCP ? "meta l4proto tcp " : "meta l4proto udp ");
	} else if (r->proto == IPPROTO_ICMP) {
		if (f < 0)
			nft_buf_printf(b, "meta l4proto { %s, %s } ", fams[0].icmp, fams[1].icmp);
		else
			nft_buf_printf(b, "meta l4proto %s ", fams[f].icmp);
	}
	if (r->policy < 0)
		nft_buf_printf(b, "return comment \"%s: main\"\n", label);
	else
		nft_buf_printf(b, "goto policy.%s comment \"%s\"\n", g->pol[r->policy], label);
	return 0;
}

static int emit_rule(struct gen *g, size_t ri)
{
	const struct policy_rule *r = &g->m->rules[ri];
	struct cidr *src[2] = {NULL, NULL}, *dst[2] = {NULL, NULL};
	size_t n_src[2] = {0, 0}, n_dst[2] = {0, 0};
	char label[NAME_SZ + 8];
	int f, lines = 0, rc = 0;

	if (r->name) {
		char name[NAME_SZ];

		sanitize(r->name, name);
		snprintf(label, sizeof(label), "rule %s", name);
	} else {
		snprintf(label, sizeof(label), "rule %zu", ri + 1);
	}
	if (!r->n_src && !r->n_dst && !r->dst_set)
		return put_rule_line(g, r, label, -1, NULL, 0, NULL, 0);

	for (f = 0; f < 2; f++) {
		bool set_has = true;

		rc = merged(r->src, r->n_src, f, &src[f], &n_src[f]);
		if (rc == 0)
			rc = merged(r->dst, r->n_dst, f, &dst[f], &n_dst[f]);
		if (rc < 0)
			goto out;
		if (r->dst_set) {
			const struct policy_set *s = &g->m->sets[find_set(g->m, r->dst_set)];
			size_t i;

			set_has = false;
			for (i = 0; i < s->n; i++)
				set_has |= s->prefixes[i].addr.family == fams[f].af;
		}
		if ((r->n_src && !n_src[f]) || (r->n_dst && !n_dst[f]) || !set_has)
			continue;
		put_rule_line(g, r, label, f, src[f], n_src[f], dst[f], n_dst[f]);
		lines++;
	}
	if (!lines)
		nft_buf_printf(&g->b, "\t\t# %s matches no address family: left out\n", label);
out:
	for (f = 0; f < 2; f++) {
		free(src[f]);
		free(dst[f]);
	}
	return rc;
}

static int emit_classify(struct gen *g)
{
	size_t i;
	int r;

	nft_buf_add(&g->b, "\tchain classify {\n"
			   "\t\tcomment \"new connections: the first matching rule wins\"\n");
	for (i = 0; i < g->m->n_rules; i++)
		if ((r = emit_rule(g, i)) < 0)
			return r;
	nft_buf_printf(&g->b, "\t\tgoto policy.%s comment \"default policy\"\n",
		g->pol[g->m->default_policy]);
	nft_buf_add(&g->b, "\t}\n");
	return 0;
}

/* Known connections: the ct mark back onto the packet, through restore.UP. */
static void put_restore(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t i;

	if (!m->n_uplinks)
		return;
	nft_buf_printf(&g->b, "\t\tct mark and 0x%08x vmap {", m->mark_mask);
	for (i = 0; i < m->n_uplinks; i++)
		nft_buf_printf(&g->b, "%s 0x%08x : goto restore.%s", i ? "," : "",
			m->uplinks[i].mark, g->up[i]);
	nft_buf_add(&g->b, " }\n");
}

static bool ifname_seen(const struct policy_model *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (m->uplinks[i].ifname && streq(m->uplinks[i].ifname, m->uplinks[n].ifname))
			return true;
	return false;
}

/* `\t\tiifname "lan0" ` or `\t\tiifname { "lan0", "lan1" } `. */
static void put_lan_iifname(struct gen *g)
{
	const struct policy_model *m = g->m;

	nft_buf_add(&g->b, "\t\tiifname");
	if (m->n_lan > 1)
		nft_buf_add(&g->b, " {");
	for (size_t i = 0; i < m->n_lan; i++)
		nft_buf_printf(&g->b, "%s \"%s\"", i ? "," : "", m->lan[i]);
	nft_buf_add(&g->b, m->n_lan > 1 ? " } " : " ");
}

static void emit_prerouting(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t i;

	nft_buf_add(&g->b, "\tchain prerouting {\n"
			   "\t\ttype filter hook prerouting priority mangle; policy accept;\n");
	put_restore(g);
	nft_buf_add(&g->b, "\t\tct state != new return\n");
	for (i = 0; i < m->n_uplinks; i++) {
		const struct policy_uplink *u = &m->uplinks[i];

		if (!u->ifname || ifname_seen(m, i))
			continue;
		nft_buf_printf(&g->b, "\t\tiifname \"%s\" ", u->ifname);
		put_mark_set(g, "ct", u->mark);
		nft_buf_add(&g->b, " ");
		put_mark_set(g, "meta", u->mark); /* the reverse-path check uses it already */
		nft_buf_printf(&g->b,
			" return comment \"from uplink %s: replies leave through it\"\n", g->up[i]);
	}
	if (m->n_lan) {
		nft_buf_add(&g->b, "\t\tfib daddr type { local, broadcast, multicast } return "
				   "comment \"to the gateway itself\"\n");
		if (m->probe_mark) {
			put_lan_iifname(g);
			nft_buf_printf(&g->b, "meta mark set meta mark and 0x%08x or 0x%08x "
					      "fib daddr . mark oif exists meta mark set meta mark "
					      "and 0x%08x return comment \"main routes it: not "
					      "balanced\"\n",
				g->keep, m->probe_mark, g->keep);
			put_lan_iifname(g);
			nft_buf_printf(&g->b, "meta mark set meta mark and 0x%08x jump classify\n",
				g->keep);
		} else {
			put_lan_iifname(g);
			nft_buf_add(&g->b, "jump classify\n");
		}
	}
	nft_buf_add(&g->b, "\t}\n");
}

/*
 * The gateway's own connections.  A socket that chose an uplink by its mark (a health probe)
 * has it recorded in the ct mark, always: the replies get it back (restore.UP) and pass the
 * reverse-path check in that uplink's table, also when main has no route back.
 */
static void emit_output(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t i;

	nft_buf_add(&g->b, "\tchain output {\n"
			   "\t\ttype route hook output priority mangle; policy accept;\n");
	if (m->output)
		put_restore(g);
	nft_buf_add(&g->b, "\t\tct state != new return\n");
	if (m->n_uplinks) {
		nft_buf_printf(&g->b, "\t\tmeta mark and 0x%08x vmap {", m->mark_mask);
		for (i = 0; i < m->n_uplinks; i++)
			nft_buf_printf(&g->b, "%s 0x%08x : goto mark.%s", i ? "," : "",
				m->uplinks[i].mark, g->up[i]);
		nft_buf_add(&g->b, " }\n");
	}
	if (m->output)
		nft_buf_printf(&g->b,
			"\t\tmeta mark and 0x%08x != 0 return comment \"the socket chose its "
			"uplink\"\n"
			"\t\tfib daddr type { local, broadcast, multicast } return "
			"comment \"to the gateway itself\"\n"
			"\t\tjump classify\n",
			m->mark_mask);
	nft_buf_add(&g->b, "\t}\n");
}

static void emit_postrouting(struct gen *g)
{
	const struct policy_model *m = g->m;
	bool any = false;
	size_t i;

	for (i = 0; i < m->n_uplinks; i++) {
		const struct policy_uplink *u = &m->uplinks[i];

		if (!u->masquerade || ifname_seen(m, i))
			continue;
		if (!any)
			nft_buf_add(&g->b, "\tchain postrouting {\n\t\ttype nat hook postrouting "
					   "priority srcnat; policy accept;\n");
		any = true;
		nft_buf_add(&g->b, "\t\t");
		if (u->v4 != u->v6)
			nft_buf_printf(&g->b, "meta nfproto %s ", u->v4 ? "ipv4" : "ipv6");
		nft_buf_printf(&g->b, "oifname \"%s\" masquerade comment \"uplink %s\"\n",
			u->ifname, g->up[i]);
	}
	if (any)
		nft_buf_add(&g->b, "\t}\n");
}

/* The interfaces of the flowtable: the LAN ones, then each uplink interface once. */
static void put_flow_devs(struct gen *g)
{
	const struct policy_model *m = g->m;
	size_t i, n = 0;

	nft_buf_add(&g->b, "\t\tdevices = {");
	for (i = 0; i < m->n_lan; i++)
		nft_buf_printf(&g->b, "%s \"%s\"", n++ ? "," : "", m->lan[i]);
	for (i = 0; i < m->n_uplinks; i++)
		if (m->uplinks[i].ifname && !ifname_seen(m, i))
			nft_buf_printf(&g->b, "%s \"%s\"", n++ ? "," : "", m->uplinks[i].ifname);
	nft_buf_add(&g->b, " }\n");
}

/* Is there a flowtable to declare: asked for, with a LAN and an uplink interface? */
static bool want_flowtable(const struct policy_model *m)
{
	size_t i;

	if (!m->flowtable || !m->n_lan)
		return false;
	for (i = 0; i < m->n_uplinks; i++)
		if (m->uplinks[i].ifname)
			return true;
	return false;
}

static void emit_flowtable(struct gen *g)
{
	if (!want_flowtable(g->m))
		return;
	nft_buf_add(&g->b, "\tflowtable fast {\n\t\thook ingress priority filter\n");
	put_flow_devs(g);
	nft_buf_add(&g->b, "\t}\n");
}

static void emit_forward(struct gen *g)
{
	if (!want_flowtable(g->m))
		return;
	nft_buf_printf(&g->b,
		"\tchain forward {\n"
		"\t\ttype filter hook forward priority filter; policy accept;\n"
		"\t\tct state established ct mark and 0x%08x != 0 meta l4proto { tcp, udp } "
		"flow add @fast comment \"established: the flowtable from now on\"\n"
		"\t}\n",
		g->m->mark_mask);
}

static void gen_clear(struct gen *g)
{
	nft_buf_clear(&g->b);
	free(g->up);
	free(g->pol);
	free(g->set);
	free(g->tier);
}

/* Validate m and work out the names and the tiers in use; gen_clear() g in any case. */
static int gen_init(struct gen *g, const struct policy_model *m)
{
	size_t i;
	int r, f;

	memset(g, 0, sizeof(*g));
	g->m = m;
	g->up = xcalloc(m->n_uplinks + 1, NAME_SZ);
	g->pol = xcalloc(m->n_policies + 1, NAME_SZ);
	g->set = xcalloc(m->n_sets + 1, NAME_SZ);
	g->tier = xcalloc(m->n_policies + 1, sizeof(*g->tier));
	nft_buf_init(&g->b);
	r = validate(g);
	if (r < 0)
		return r;
	g->keep = ~m->mark_mask;
	for (i = 0; i < m->n_policies; i++)
		for (f = 0; f < 2; f++)
			g->tier[i][f] = pick_tier(g, &m->policies[i], f);
	return 0;
}

int policy_nft_body(const struct policy_model *m, char **ret)
{
	struct gen g;
	size_t i;
	int r;

	if (!m || !ret)
		return -EINVAL;
	r = gen_init(&g, m);
	if (r < 0)
		goto out;

	emit_header(&g);
	r = emit_dst_sets(&g);
	if (r < 0)
		goto out;
	emit_sticky_sets(&g);
	emit_flowtable(&g);
	emit_uplink_chains(&g);
	emit_pick_chains(&g);
	for (i = 0; i < m->n_policies; i++)
		emit_policy_chain(&g, i);
	r = emit_classify(&g);
	if (r < 0)
		goto out;
	emit_prerouting(&g);
	emit_output(&g);
	emit_postrouting(&g);
	emit_forward(&g);
	*ret = nft_buf_steal(&g.b);
out:
	gen_clear(&g);
	return r;
}

int policy_nft_sticky_sets(const struct policy_model *m, char ***ret)
{
	char name[STICKY_NAME_SZ], **names = NULL;
	size_t pi, i, n = 0;
	struct gen g;
	int r, f;

	if (!m || !ret)
		return -EINVAL;
	r = gen_init(&g, m);
	if (r < 0)
		goto out;
	names = xcalloc(1, sizeof(*names));
	for (pi = 0; pi < m->n_policies; pi++) {
		const struct policy_def *p = &m->policies[pi];

		for (i = 0; i < p->n_members && p->sticky != POLICY_STICKY_NONE; i++) {
			for (f = 0; f < 2; f++) {
				if (!chosen(&g, pi, &p->members[i], f))
					continue;
				sticky_set_name(&g, pi, &p->members[i], f, name);
				names = xrealloc(names, (n + 2) * sizeof(*names));
				names[n++] = xstrdup(name);
				names[n] = NULL;
			}
		}
	}
	*ret = names;
out:
	gen_clear(&g);
	return r;
}

/* The declaration of set `name` in body: from its "\tset" line to its closing "\t}". */
static const char *set_block(const char *body, const char *name, size_t *len)
{
	char head[STICKY_NAME_SZ + 16];
	const char *a, *e;

	snprintf(head, sizeof(head), "\tset %s {\n", name);
	a = body ? strstr(body, head) : NULL;
	e = a ? strstr(a, "\n\t}\n") : NULL;
	if (!e)
		return NULL;
	*len = (size_t)(e - a);
	return a;
}

bool policy_nft_set_same(const char *old, const char *new, const char *name)
{
	size_t lo, ln;
	const char *o = set_block(old, name, &lo), *n = set_block(new, name, &ln);

	return o && n && lo == ln && memcmp(o, n, lo) == 0;
}

void policy_nft_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

/* One literal address of an element's key into ret; false if it is anything else. */
static bool json_addr(const json_t *v, struct addr *ret)
{
	const char *s = json_string_value(v);

	return s && addr_parse(s, ret) == 0;
}

/* One element of `list set` JSON: {"elem": {"val": KEY, "expires": SECONDS, ...}}. */
static bool sticky_elem_parse(const json_t *item, struct policy_sticky_elem *ret)
{
	const json_t *e = json_object_get(item, "elem");
	const json_t *val = json_object_get(e, "val");
	const json_t *cat = json_object_get(val, "concat");
	json_int_t left = json_integer_value(json_object_get(e, "expires"));

	memset(ret, 0, sizeof(*ret));
	if (left < 1) /* none (a set without timeouts) or about to expire */
		return false;
	ret->expires_ms = left > UINT32_MAX / 1000 ? UINT32_MAX / 1000 * 1000
						   : (uint32_t)left * 1000;
	if (cat)
		return json_array_size(cat) == 2 && json_addr(json_array_get(cat, 0), &ret->src) &&
		       json_addr(json_array_get(cat, 1), &ret->dst);
	return json_addr(val, &ret->src);
}

int policy_nft_sticky_parse(const json_t *root, struct policy_sticky_elem **ret, size_t *n)
{
	const json_t *item, *set = NULL, *elems;
	size_t i;

	*ret = NULL;
	*n = 0;
	json_array_foreach(json_object_get(root, "nftables"), i, item) {
		if (json_object_get(item, "set"))
			set = json_object_get(item, "set");
	}
	if (!set)
		return -EBADMSG;
	elems = json_object_get(set, "elem");
	json_array_foreach(elems, i, item) {
		struct policy_sticky_elem e;

		if (!sticky_elem_parse(item, &e))
			continue;
		*ret = xrealloc(*ret, (*n + 1) * sizeof(**ret));
		(*ret)[(*n)++] = e;
	}
	return 0;
}
