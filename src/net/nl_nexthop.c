/*
 * nl_nexthop.c - nexthop objects over rtnetlink (Linux 5.3+): single paths, blackholes,
 * hash-threshold groups and resilient groups (5.13+) with their bucket count and idle and
 * unbalanced timers; build, parse, dump, get, and a probe for resilient group support.
 *
 * A route points at a group with RTA_NH_ID (nl_route.c); replacing the group's members
 * then changes every such route at once, without removing it.  This file must not decide
 * membership nor log above debug.
 */
#include <errno.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "nl_int.h"

const char *const nl_nh_group_type_name[_NL_NH_GROUP_TYPE_MAX] = {
	[NL_NH_GROUP_MPATH] = "mpath",
	[NL_NH_GROUP_RES] = "resilient",
};

/* The resilient group timers are clock_t on the wire: USER_HZ ticks. */
static uint64_t nl_user_hz(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	return hz > 0 ? (uint64_t)hz : 100;
}

static uint32_t nl_ms_to_clock(uint32_t ms)
{
	uint64_t t = ((uint64_t)ms * nl_user_hz() + 999) / 1000;

	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static uint64_t nl_clock_to_ms(uint64_t t)
{
	return t * 1000 / nl_user_hz();
}

static void nl_nexthop_put_group(struct nlb *b, const struct nl_nexthop *nh)
{
	struct nexthop_grp *grp;
	struct nlattr *nest;
	size_t i;

	if (nh->n_members > UINT16_MAX / sizeof(*grp) || !nh->members ||
		(unsigned)nh->group_type >= _NL_NH_GROUP_TYPE_MAX) {
		nlb_fail(b, -EINVAL);
		return;
	}
	/* An array filled in place, not a nest: the nest helpers just frame it. */
	nest = nlb_nest(b, NHA_GROUP);
	grp = nlb_reserve(b, nh->n_members * sizeof(*grp));
	for (i = 0; grp && i < nh->n_members; i++) {
		unsigned weight = nh->members[i].weight ? nh->members[i].weight : 1;

		if (weight > 256 || !nh->members[i].id) {
			nlb_fail(b, -EINVAL);
			return;
		}
		grp[i].id = nh->members[i].id;
		grp[i].weight = (uint8_t)(weight - 1);
	}
	nlb_nest_end(b, nest);
	nlb_u16(b, NHA_GROUP_TYPE,
		nh->group_type == NL_NH_GROUP_RES ? NEXTHOP_GRP_TYPE_RES : NEXTHOP_GRP_TYPE_MPATH);
	if (nh->group_type != NL_NH_GROUP_RES)
		return;
	/*
	 * Only what is set: on replace, the kernel keeps the timers that are left out.  The
	 * nexthop code parses strictly (unlike older rtnetlink): nests need NLA_F_NESTED.
	 */
	nest = nlb_nest(b, NHA_RES_GROUP | NLA_F_NESTED);
	if (nh->buckets)
		nlb_u16(b, NHA_RES_GROUP_BUCKETS, nh->buckets);
	if (nh->idle_timer_ms)
		nlb_u32(b, NHA_RES_GROUP_IDLE_TIMER, nl_ms_to_clock(nh->idle_timer_ms));
	if (nh->unbalanced_timer_ms)
		nlb_u32(b, NHA_RES_GROUP_UNBALANCED_TIMER, nl_ms_to_clock(nh->unbalanced_timer_ms));
	nlb_nest_end(b, nest);
}

int nl_nexthop_build(void *buf, size_t buflen, enum nl_op op, const struct nl_nexthop *nh)
{
	struct nhmsg *nhm;
	struct nlb b;
	int family = nh->family;

	if ((unsigned)op >= _NL_OP_MAX || (op == NL_DEL && !nh->id) || nh->oif < 0)
		return -EINVAL;
	nlb_init(&b, buf, buflen, op == NL_DEL ? RTM_DELNEXTHOP : RTM_NEWNEXTHOP, nl_op_flags(op));
	nhm = nlb_reserve(&b, sizeof(*nhm));
	if (!nhm)
		return nlb_end(&b);
	if (op == NL_DEL) {
		nlb_u32(&b, NHA_ID, nh->id);
		return nlb_end(&b);
	}
	if (nh->n_members) {
		family = AF_UNSPEC;
	} else if (!family) {
		/* ip(8) does the same: a blackhole needs some family, a gateway has one. */
		family = addr_is_set(&nh->gw) ? nh->gw.family : AF_INET;
	}
	if (addr_is_set(&nh->gw) && nh->gw.family != family)
		return -EINVAL;
	nhm->nh_family = (uint8_t)family;
	nhm->nh_protocol = nh->protocol;
	nhm->nh_flags = nh->flags;
	if (nh->id)
		nlb_u32(&b, NHA_ID, nh->id);
	if (nh->n_members) {
		nl_nexthop_put_group(&b, nh);
	} else if (nh->blackhole) {
		nlb_flag(&b, NHA_BLACKHOLE);
	} else {
		if (nh->oif)
			nlb_u32(&b, NHA_OIF, (uint32_t)nh->oif);
		if (addr_is_set(&nh->gw))
			nlb_addr(&b, NHA_GATEWAY, &nh->gw);
	}
	return nlb_end(&b);
}

int nl_nexthop_build_dump(void *buf, size_t buflen)
{
	struct nlb b;

	nlb_init(&b, buf, buflen, RTM_GETNEXTHOP, NLM_F_DUMP);
	nlb_reserve(&b, sizeof(struct nhmsg));
	return nlb_end(&b);
}

int nl_nexthop_build_get(void *buf, size_t buflen, uint32_t id)
{
	struct nlb b;

	nlb_init(&b, buf, buflen, RTM_GETNEXTHOP, 0);
	nlb_reserve(&b, sizeof(struct nhmsg));
	nlb_u32(&b, NHA_ID, id);
	return nlb_end(&b);
}

static int nl_nexthop_get_res(const struct nlattr *nest, struct nl_nexthop *ret)
{
	const struct nlattr *tb[NHA_RES_GROUP_MAX + 1];
	uint32_t t;
	int err = 0;

	nl_attrs_nested(nest, tb, NHA_RES_GROUP_MAX);
	if (tb[NHA_RES_GROUP_BUCKETS] &&
		(err = nl_get_u16(tb[NHA_RES_GROUP_BUCKETS], &ret->buckets)))
		return err;
	if (tb[NHA_RES_GROUP_IDLE_TIMER]) {
		if ((err = nl_get_u32(tb[NHA_RES_GROUP_IDLE_TIMER], &t)))
			return err;
		ret->idle_timer_ms = (uint32_t)MIN(nl_clock_to_ms(t), UINT32_MAX);
	}
	if (tb[NHA_RES_GROUP_UNBALANCED_TIMER]) {
		if ((err = nl_get_u32(tb[NHA_RES_GROUP_UNBALANCED_TIMER], &t)))
			return err;
		ret->unbalanced_timer_ms = (uint32_t)MIN(nl_clock_to_ms(t), UINT32_MAX);
	}
	if (tb[NHA_RES_GROUP_UNBALANCED_TIME]) {
		uint64_t t64;

		if ((err = nl_get_u64(tb[NHA_RES_GROUP_UNBALANCED_TIME], &t64)))
			return err;
		ret->unbalanced_time_ms = nl_clock_to_ms(t64);
	}
	return 0;
}

static int nl_nexthop_get_group(
	const struct nlattr *a, struct nl_nexthop *ret, struct nl_nh_member *members, size_t max)
{
	const struct nexthop_grp *grp = mnl_attr_get_payload(a);
	size_t len = mnl_attr_get_payload_len(a);
	size_t i, n;

	if (!len || len % sizeof(*grp))
		return -EBADMSG;
	n = len / sizeof(*grp);
	ret->n_members = n;
	if (n > max)
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		members[i].id = grp[i].id;
		/* resvd1 became weight_high in Linux 6.12 (weights up to 65536). */
		members[i].weight = ((unsigned)grp[i].resvd1 << 8 | grp[i].weight) + 1;
	}
	ret->members = members;
	return 0;
}

int nl_nexthop_parse(const struct nlmsghdr *nlh, struct nl_nexthop *ret,
	struct nl_nh_member *members, size_t max_members)
{
	const struct nlattr *tb[NHA_MAX + 1];
	const struct nhmsg *nhm;
	uint32_t oif;
	uint16_t type;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (nlh->nlmsg_type != RTM_NEWNEXTHOP && nlh->nlmsg_type != RTM_DELNEXTHOP)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*nhm), tb, NHA_MAX);
	if (err)
		return err;
	nhm = mnl_nlmsg_get_payload(nlh);
	ret->family = nhm->nh_family;
	ret->protocol = nhm->nh_protocol;
	ret->flags = nhm->nh_flags;
	if (!tb[NHA_ID] || (err = nl_get_u32(tb[NHA_ID], &ret->id)))
		return -EBADMSG;
	ret->blackhole = tb[NHA_BLACKHOLE] != NULL;
	if (tb[NHA_OIF]) {
		if ((err = nl_get_u32(tb[NHA_OIF], &oif)))
			return err;
		ret->oif = (int)oif;
	}
	if (tb[NHA_GATEWAY] && (err = nl_get_addr(tb[NHA_GATEWAY], ret->family, &ret->gw)))
		return err;
	if (tb[NHA_GROUP_TYPE]) {
		if ((err = nl_get_u16(tb[NHA_GROUP_TYPE], &type)))
			return err;
		if (type == NEXTHOP_GRP_TYPE_MPATH)
			ret->group_type = NL_NH_GROUP_MPATH;
		else if (type == NEXTHOP_GRP_TYPE_RES)
			ret->group_type = NL_NH_GROUP_RES;
		else
			return -EBADMSG;
	}
	if (tb[NHA_RES_GROUP] && (err = nl_nexthop_get_res(tb[NHA_RES_GROUP], ret)))
		return err;
	if (tb[NHA_GROUP])
		return nl_nexthop_get_group(tb[NHA_GROUP], ret, members, max_members);
	return 0;
}

int nl_nexthop_apply(struct nl *nl, enum nl_op op, const struct nl_nexthop *nh)
{
	int err = nl_nexthop_build(nl_sendbuf(nl), NL_MSG_BUFSIZE, op, nh);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

struct nl_nexthop_dump_ctx {
	nl_nexthop_cb cb;
	void *arg;
	struct nl_scratch scratch;
};

static int nl_nexthop_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_nexthop_dump_ctx *ctx = arg;
	struct nl_nexthop nh;
	int err;

	err = nl_nexthop_parse_scratch(nlh, &nh, &ctx->scratch);
	if (err) {
		log_debug("netlink: nexthop dump: bad message: %s", strerror(-err));
		return err;
	}
	return ctx->cb(&nh, ctx->arg);
}

int nl_nexthop_dump(struct nl *nl, nl_nexthop_cb cb, void *arg)
{
	struct nl_nexthop_dump_ctx ctx = {.cb = cb, .arg = arg};
	int err;

	err = nl_nexthop_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE);
	if (!err)
		err = nl_dump(nl, nl_sendbuf(nl), nl_nexthop_dump_cb, &ctx);
	nl_scratch_clear(&ctx.scratch);
	return err;
}

int nl_nexthop_get(struct nl *nl, uint32_t id, nl_nexthop_cb cb, void *arg)
{
	struct nl_nexthop_dump_ctx ctx = {.cb = cb, .arg = arg};
	int err;

	err = nl_nexthop_build_get(nl_sendbuf(nl), NL_MSG_BUFSIZE, id);
	if (!err)
		err = nl_query(nl, nl_sendbuf(nl), nl_nexthop_dump_cb, &ctx);
	nl_scratch_clear(&ctx.scratch);
	return err;
}

int nl_nexthop_probe_resilient(struct nl *nl)
{
	struct nlb b;
	int err;

	/*
	 * RTM_GETNEXTHOPBUCKET came with resilient groups (5.13).  An older kernel answers a
	 * message type it does not know with EOPNOTSUPP (EINVAL on some); one without
	 * nexthops at all the same.  A dump of no buckets is a plain success.
	 */
	nlb_init(&b, nl_sendbuf(nl), NL_MSG_BUFSIZE, RTM_GETNEXTHOPBUCKET, 0);
	nlb_reserve(&b, sizeof(struct nhmsg));
	err = nlb_end(&b);
	if (err)
		return err;
	err = nl_dump(nl, nl_sendbuf(nl), NULL, NULL);
	if (err == -EOPNOTSUPP || err == -EINVAL)
		return 0;
	if (err == -EINTR)
		return 1;
	return err ? err : 1;
}
