/*
 * nl_rule.c - FIB rules (ip rule) over rtnetlink: priority, fwmark/mask, table, source and
 * destination prefixes, iif/oif, suppress_prefixlength, goto, protocol; build, parse, dump.
 *
 * It must not pick priorities or tables (the policy module does) nor log above debug.
 */
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "log.h"
#include "nl_int.h"

static bool nl_rule_prefix_ok(const struct nl_rule *r, const struct cidr *c)
{
	return !addr_is_set(&c->addr) ||
	       (c->addr.family == r->family && c->plen <= 8 * addr_len(r->family));
}

int nl_rule_build(void *buf, size_t buflen, enum nl_op op, const struct nl_rule *r)
{
	struct fib_rule_hdr *frh;
	struct nlb b;

	/*
	 * The kernel has no replace for rules: NLM_F_REPLACE is ignored and a second, equal
	 * rule is added.  Refuse it rather than duplicate.
	 */
	if (op == NL_REPLACE)
		return -EOPNOTSUPP;
	if ((unsigned)op >= _NL_OP_MAX || (r->family != AF_INET && r->family != AF_INET6) ||
		!nl_rule_prefix_ok(r, &r->src) || !nl_rule_prefix_ok(r, &r->dst) ||
		strnlen(r->iif, NL_IFNAMSIZ) == NL_IFNAMSIZ ||
		strnlen(r->oif, NL_IFNAMSIZ) == NL_IFNAMSIZ)
		return -EINVAL;
	nlb_init(&b, buf, buflen, op == NL_DEL ? RTM_DELRULE : RTM_NEWRULE, nl_op_flags(op));
	frh = nlb_reserve(&b, sizeof(*frh));
	if (!frh)
		return nlb_end(&b);
	frh->family = (uint8_t)r->family;
	frh->tos = r->tos;
	frh->flags = r->flags;
	frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	frh->action = r->action;
	/*
	 * On delete, action 0 matches any; on add the kernel needs one.  FRA_GOTO comes with
	 * FR_ACT_GOTO either way ("Unexpected goto" otherwise).
	 */
	if (!frh->action && r->has_goto)
		frh->action = FR_ACT_GOTO;
	else if (!frh->action && op != NL_DEL)
		frh->action = FR_ACT_TO_TBL;
	if (r->has_priority)
		nlb_u32(&b, FRA_PRIORITY, r->priority);
	if (r->table)
		nlb_u32(&b, FRA_TABLE, r->table);
	if (r->has_fwmark) {
		nlb_u32(&b, FRA_FWMARK, r->fwmark);
		nlb_u32(&b, FRA_FWMASK, r->fwmask);
	}
	if (addr_is_set(&r->src.addr)) {
		frh->src_len = r->src.plen;
		nlb_addr(&b, FRA_SRC, &r->src.addr);
	}
	if (addr_is_set(&r->dst.addr)) {
		frh->dst_len = r->dst.plen;
		nlb_addr(&b, FRA_DST, &r->dst.addr);
	}
	if (r->iif[0])
		nlb_str(&b, FRA_IIFNAME, r->iif);
	if (r->oif[0])
		nlb_str(&b, FRA_OIFNAME, r->oif);
	if (r->has_suppress_prefixlen)
		nlb_u32(&b, FRA_SUPPRESS_PREFIXLEN, r->suppress_prefixlen);
	if (r->has_goto)
		nlb_u32(&b, FRA_GOTO, r->goto_priority);
	if (r->protocol)
		nlb_u8(&b, FRA_PROTOCOL, r->protocol);
	return nlb_end(&b);
}

int nl_rule_build_dump(void *buf, size_t buflen, int family)
{
	struct fib_rule_hdr *frh;
	struct nlb b;

	nlb_init(&b, buf, buflen, RTM_GETRULE, NLM_F_DUMP);
	frh = nlb_reserve(&b, sizeof(*frh));
	if (frh)
		frh->family = (uint8_t)family;
	return nlb_end(&b);
}

static int nl_rule_get_prefix(const struct nlattr *a, int family, uint8_t plen, struct cidr *ret)
{
	int err = nl_get_addr(a, family, &ret->addr);

	if (err)
		return err;
	if (plen > 8 * addr_len(family))
		return -EBADMSG;
	ret->plen = plen;
	return 0;
}

int nl_rule_parse(const struct nlmsghdr *nlh, struct nl_rule *ret)
{
	const struct nlattr *tb[FRA_MAX + 1];
	const struct fib_rule_hdr *frh;
	uint32_t v;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (nlh->nlmsg_type != RTM_NEWRULE && nlh->nlmsg_type != RTM_DELRULE)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*frh), tb, FRA_MAX);
	if (err)
		return err;
	frh = mnl_nlmsg_get_payload(nlh);
	if (frh->family != AF_INET && frh->family != AF_INET6)
		return -EAFNOSUPPORT;
	ret->family = frh->family;
	ret->action = frh->action;
	ret->tos = frh->tos;
	ret->flags = frh->flags;
	ret->table = frh->table;
	if (tb[FRA_TABLE] && (err = nl_get_u32(tb[FRA_TABLE], &ret->table)))
		return err;
	/* The kernel leaves out priority 0 (the local rule): every rule has one. */
	ret->has_priority = true;
	if (tb[FRA_PRIORITY] && (err = nl_get_u32(tb[FRA_PRIORITY], &ret->priority)))
		return err;
	/* ... and a mask of 0xffffffff, and both when mark and mask are 0 and ~0. */
	if (tb[FRA_FWMARK] || tb[FRA_FWMASK]) {
		ret->has_fwmark = true;
		ret->fwmask = UINT32_MAX;
		if (tb[FRA_FWMARK] && (err = nl_get_u32(tb[FRA_FWMARK], &ret->fwmark)))
			return err;
		if (tb[FRA_FWMASK] && (err = nl_get_u32(tb[FRA_FWMASK], &ret->fwmask)))
			return err;
	}
	if (tb[FRA_SRC] &&
		(err = nl_rule_get_prefix(tb[FRA_SRC], ret->family, frh->src_len, &ret->src)))
		return err;
	if (tb[FRA_DST] &&
		(err = nl_rule_get_prefix(tb[FRA_DST], ret->family, frh->dst_len, &ret->dst)))
		return err;
	if (tb[FRA_IIFNAME] && (err = nl_get_str(tb[FRA_IIFNAME], ret->iif, sizeof(ret->iif))))
		return err;
	if (tb[FRA_OIFNAME] && (err = nl_get_str(tb[FRA_OIFNAME], ret->oif, sizeof(ret->oif))))
		return err;
	if (tb[FRA_SUPPRESS_PREFIXLEN]) {
		if ((err = nl_get_u32(tb[FRA_SUPPRESS_PREFIXLEN], &v)))
			return err;
		if (v <= 128) {
			ret->has_suppress_prefixlen = true;
			ret->suppress_prefixlen = (uint8_t)v;
		}
	}
	if (tb[FRA_GOTO]) {
		if ((err = nl_get_u32(tb[FRA_GOTO], &ret->goto_priority)))
			return err;
		ret->has_goto = true;
	}
	if (tb[FRA_PROTOCOL] && (err = nl_get_u8(tb[FRA_PROTOCOL], &ret->protocol)))
		return err;
	return 0;
}

int nl_rule_apply(struct nl *nl, enum nl_op op, const struct nl_rule *r)
{
	int err = nl_rule_build(nl_sendbuf(nl), NL_MSG_BUFSIZE, op, r);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

struct nl_rule_dump_ctx {
	nl_rule_cb cb;
	void *arg;
	int family;
};

static int nl_rule_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_rule_dump_ctx *ctx = arg;
	struct nl_rule r;
	int err;

	err = nl_rule_parse(nlh, &r);
	if (err == -EAFNOSUPPORT)
		return 0;
	if (err) {
		log_debug("netlink: rule dump: bad message: %s", strerror(-err));
		return err;
	}
	if (ctx->family && r.family != ctx->family)
		return 0;
	return ctx->cb(&r, ctx->arg);
}

int nl_rule_dump(struct nl *nl, int family, nl_rule_cb cb, void *arg)
{
	struct nl_rule_dump_ctx ctx = {.cb = cb, .arg = arg, .family = family};
	int err;

	err = nl_rule_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE, family);
	if (err)
		return err;
	return nl_dump(nl, nl_sendbuf(nl), nl_rule_dump_cb, &ctx);
}

/* Rules we build leave the action 0 ("to the table", or goto); the kernel reports it. */
static uint8_t rule_action(const struct nl_rule *r)
{
	if (r->action)
		return r->action;
	return r->has_goto ? FR_ACT_GOTO : FR_ACT_TO_TBL;
}

bool nl_rule_same(const struct nl_rule *a, const struct nl_rule *b)
{
	return a->family == b->family && a->priority == b->priority &&
	       rule_action(a) == rule_action(b) &&
	       (a->flags & FIB_RULE_INVERT) == (b->flags & FIB_RULE_INVERT) &&
	       a->has_fwmark == b->has_fwmark && a->fwmark == b->fwmark &&
	       a->fwmask == b->fwmask && a->table == b->table &&
	       a->src.plen == b->src.plen && addr_eq(&a->src.addr, &b->src.addr) &&
	       a->dst.plen == b->dst.plen && addr_eq(&a->dst.addr, &b->dst.addr) &&
	       !strcmp(a->iif, b->iif) && !strcmp(a->oif, b->oif) &&
	       a->has_suppress_prefixlen == b->has_suppress_prefixlen &&
	       a->suppress_prefixlen == b->suppress_prefixlen;
}

struct rule_scan {
	uint8_t protocol;
	uint32_t lo, hi;
	nl_rule_mine_cb mine; /* NULL: all of the above are the caller's */
	void *arg;
	struct nl_rule *found;
	size_t n;
};

static int rule_scan_cb(const struct nl_rule *r, void *arg)
{
	struct rule_scan *sc = arg;

	if (r->protocol != sc->protocol || !r->has_priority || r->priority < sc->lo ||
		r->priority >= sc->hi)
		return 0;
	if (sc->mine && !sc->mine(r, sc->arg))
		return 0;
	sc->found = xrealloc(sc->found, (sc->n + 1) * sizeof(*sc->found));
	sc->found[sc->n++] = *r;
	return 0;
}

/* sc: what to look for, found empty */
static int rule_reconcile(struct nl *nl, struct rule_scan sc, const struct nl_rule *want,
	size_t n)
{
	int r = 0, e;

	for (int f = 0; f < 2; f++) {
		e = nl_rule_dump(nl, f ? AF_INET6 : AF_INET, rule_scan_cb, &sc);
		if (e < 0) {
			free(sc.found);
			return e;
		}
	}
	for (size_t i = 0; i < n; i++) {
		bool have = false;
		for (size_t j = 0; j < sc.n && !have; j++)
			have = nl_rule_same(&sc.found[j], &want[i]);
		if (!have && (e = nl_rule_apply(nl, NL_ADD, &want[i])) < 0 && e != -EEXIST) {
			log_debug("netlink: add rule priority %u lookup %u: %s", want[i].priority,
				want[i].table, strerror(-e));
			r = r ? r : e;
		}
	}
	for (size_t j = 0; j < sc.n; j++) {
		bool wanted = false;
		for (size_t i = 0; i < n && !wanted; i++)
			wanted = nl_rule_same(&sc.found[j], &want[i]);
		if (!wanted && (e = nl_rule_apply(nl, NL_DEL, &sc.found[j])) < 0 && e != -ENOENT)
			r = r ? r : e;
	}
	free(sc.found);
	return r;
}

int nl_rule_reconcile(struct nl *nl, uint8_t protocol, uint32_t prio_lo, uint32_t prio_hi,
	const struct nl_rule *want, size_t n)
{
	struct rule_scan sc = {.protocol = protocol, .lo = prio_lo, .hi = prio_hi};

	return rule_reconcile(nl, sc, want, n);
}

int nl_rule_reconcile_mine(struct nl *nl, uint8_t protocol, uint32_t prio_lo, uint32_t prio_hi,
	nl_rule_mine_cb mine, void *arg, const struct nl_rule *want, size_t n)
{
	struct rule_scan sc = {.protocol = protocol, .lo = prio_lo, .hi = prio_hi, .mine = mine,
		.arg = arg};

	return rule_reconcile(nl, sc, want, n);
}
