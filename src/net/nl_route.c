/*
 * nl_route.c - routes over rtnetlink: build RTM_NEWROUTE/RTM_DELROUTE (single path,
 * RTA_MULTIPATH legs with weights, RTA_NH_ID, RTA_VIA for IPv4 over an IPv6 gateway), parse
 * route dumps and events, dump by family and table.
 *
 * It must not decide which routes should exist (that is the route and policy modules'
 * job) nor log above debug.
 */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "log.h"
#include "nl_int.h"

/* The gateway of a path: RTA_GATEWAY in the route's family, RTA_VIA for IPv4 over IPv6. */
static void nl_route_put_gw(struct nlb *b, int family, const struct addr *gw)
{
	uint8_t via[sizeof(struct rtvia) + sizeof(struct in6_addr)];
	struct rtvia *rtvia = (struct rtvia *)via;

	if (!addr_is_set(gw))
		return;
	if (gw->family == family) {
		nlb_addr(b, RTA_GATEWAY, gw);
		return;
	}
	if (family != AF_INET || gw->family != AF_INET6) {
		nlb_fail(b, -EINVAL);
		return;
	}
	rtvia->rtvia_family = AF_INET6;
	memcpy(rtvia->rtvia_addr, gw->b, sizeof(struct in6_addr));
	nlb_put(b, RTA_VIA, sizeof(via), via);
}

/* RTA_MULTIPATH: a run of struct rtnexthop, each followed by its own attributes. */
static void nl_route_put_multipath(struct nlb *b, int family, const struct nl_hop *hops, size_t n)
{
	struct nlattr *nest = nlb_nest(b, RTA_MULTIPATH);
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned weight = hops[i].weight ? hops[i].weight : 1;
		struct rtnexthop *rtnh;

		if (weight > 256 || hops[i].oif < 0) {
			nlb_fail(b, -EINVAL);
			return;
		}
		rtnh = nlb_reserve(b, sizeof(*rtnh));
		if (!rtnh)
			return;
		rtnh->rtnh_flags = (uint8_t)hops[i].flags;
		rtnh->rtnh_hops = (uint8_t)(weight - 1);
		rtnh->rtnh_ifindex = hops[i].oif;
		nl_route_put_gw(b, family, &hops[i].gw);
		if (nlb_end(b))
			return;
		rtnh->rtnh_len =
			(unsigned short)((uint8_t *)b->nlh + b->nlh->nlmsg_len - (uint8_t *)rtnh);
	}
	nlb_nest_end(b, nest);
}

static bool nl_route_valid(const struct nl_route *r)
{
	unsigned paths = 0;

	if (r->family != AF_INET && r->family != AF_INET6)
		return false;
	if (addr_is_set(&r->dst.addr) &&
		(r->dst.addr.family != r->family || r->dst.plen > 8 * addr_len(r->family)))
		return false;
	if (addr_is_set(&r->prefsrc) && r->prefsrc.family != r->family)
		return false;
	if (r->oif < 0 || (r->n_hops && !r->hops))
		return false;
	paths += r->oif || addr_is_set(&r->gw);
	paths += r->nh_id != 0;
	paths += r->n_hops != 0;
	return paths <= 1;
}

int nl_route_build(void *buf, size_t buflen, enum nl_op op, const struct nl_route *r)
{
	uint32_t table = r->table ? r->table : RT_TABLE_MAIN;
	struct rtmsg *rtm;
	struct nlb b;

	if ((unsigned)op >= _NL_OP_MAX || !nl_route_valid(r))
		return -EINVAL;
	nlb_init(&b, buf, buflen, op == NL_DEL ? RTM_DELROUTE : RTM_NEWROUTE, nl_op_flags(op));
	rtm = nlb_reserve(&b, sizeof(*rtm));
	if (!rtm)
		return nlb_end(&b);
	rtm->rtm_family = (uint8_t)r->family;
	rtm->rtm_dst_len = addr_is_set(&r->dst.addr) ? r->dst.plen : 0;
	rtm->rtm_tos = r->tos;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = r->protocol;
	rtm->rtm_flags = r->flags;
	if (op == NL_DEL) {
		/* As ip(8): RT_SCOPE_NOWHERE and RTN_UNSPEC match any scope and type. */
		rtm->rtm_scope = r->scope ? r->scope : RT_SCOPE_NOWHERE;
		rtm->rtm_type = r->type;
	} else {
		rtm->rtm_scope = r->scope;
		rtm->rtm_type = r->type ? r->type : RTN_UNICAST;
	}
	nlb_u32(&b, RTA_TABLE, table);
	if (rtm->rtm_dst_len)
		nlb_addr(&b, RTA_DST, &r->dst.addr);
	if (addr_is_set(&r->prefsrc))
		nlb_addr(&b, RTA_PREFSRC, &r->prefsrc);
	if (r->priority)
		nlb_u32(&b, RTA_PRIORITY, r->priority);
	if (r->oif)
		nlb_u32(&b, RTA_OIF, (uint32_t)r->oif);
	nl_route_put_gw(&b, r->family, &r->gw);
	if (r->nh_id)
		nlb_u32(&b, RTA_NH_ID, r->nh_id);
	if (r->n_hops)
		nl_route_put_multipath(&b, r->family, r->hops, r->n_hops);
	return nlb_end(&b);
}

int nl_route_build_dump(void *buf, size_t buflen, int family, uint32_t table)
{
	struct rtmsg *rtm;
	struct nlb b;

	nlb_init(&b, buf, buflen, RTM_GETROUTE, NLM_F_DUMP);
	rtm = nlb_reserve(&b, sizeof(*rtm));
	if (!rtm)
		return nlb_end(&b);
	rtm->rtm_family = (uint8_t)family;
	if (table) {
		/* Filtered by the kernel when the socket has NETLINK_GET_STRICT_CHK. */
		rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
		nlb_u32(&b, RTA_TABLE, table);
	}
	return nlb_end(&b);
}

int nl_route_build_get(void *buf, size_t buflen, const struct addr *dst)
{
	return nl_route_build_lookup(buf, buflen, &(struct nl_route_query){.dst = *dst});
}

int nl_route_build_lookup(void *buf, size_t buflen, const struct nl_route_query *q)
{
	struct rtmsg *rtm;
	struct nlb b;
	size_t len = 8 * addr_len(q->dst.family);

	if (q->dst.family != AF_INET && q->dst.family != AF_INET6)
		return -EINVAL;
	if (addr_is_set(&q->src) && q->src.family != q->dst.family)
		return -EINVAL;
	nlb_init(&b, buf, buflen, RTM_GETROUTE, 0);
	rtm = nlb_reserve(&b, sizeof(*rtm));
	if (!rtm)
		return nlb_end(&b);
	rtm->rtm_family = (uint8_t)q->dst.family;
	/* Strict checking wants a full-length prefix and no flag IPv6 does not know. */
	rtm->rtm_dst_len = (uint8_t)len;
	if (q->dst.family == AF_INET)
		rtm->rtm_flags = RTM_F_LOOKUP_TABLE;
	nlb_addr(&b, RTA_DST, &q->dst);
	if (addr_is_set(&q->src)) {
		rtm->rtm_src_len = (uint8_t)len;
		nlb_addr(&b, RTA_SRC, &q->src);
	}
	if (q->iif)
		nlb_u32(&b, RTA_IIF, (uint32_t)q->iif);
	if (q->oif)
		nlb_u32(&b, RTA_OIF, (uint32_t)q->oif);
	if (q->mark)
		nlb_u32(&b, RTA_MARK, q->mark);
	return nlb_end(&b);
}

/* RTA_GATEWAY (in the route's family) or RTA_VIA of a route or of one multipath leg. */
static int nl_route_get_gw(const struct nlattr **tb, int family, struct addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (tb[RTA_GATEWAY])
		return nl_get_addr(tb[RTA_GATEWAY], family, ret);
	if (tb[RTA_VIA]) {
		const struct rtvia *via = mnl_attr_get_payload(tb[RTA_VIA]);
		size_t len = mnl_attr_get_payload_len(tb[RTA_VIA]);
		size_t alen;

		if (len < sizeof(*via))
			return -EBADMSG;
		alen = addr_len(via->rtvia_family);
		if (!alen || len != sizeof(*via) + alen)
			return -EBADMSG;
		ret->family = via->rtvia_family;
		memcpy(ret->b, via->rtvia_addr, alen);
	}
	return 0;
}

/*
 * Walk the struct rtnexthop run of RTA_MULTIPATH, filling up to max legs; *ret_n is the
 * number of legs in the message.  A leg's length is checked against what is left before
 * anything in it is read.
 */
static int nl_route_get_multipath(
	const struct nlattr *a, int family, struct nl_hop *hops, size_t max, size_t *ret_n)
{
	const uint8_t *p = mnl_attr_get_payload(a);
	size_t left = mnl_attr_get_payload_len(a);
	size_t n = 0;

	while (left >= sizeof(struct rtnexthop)) {
		const struct rtnexthop *rtnh = (const struct rtnexthop *)p;
		size_t step;

		if (rtnh->rtnh_len < sizeof(*rtnh) || rtnh->rtnh_len > left)
			return -EBADMSG;
		if (n < max) {
			const struct nlattr *tb[RTA_MAX + 1];
			struct nl_hop *hop = &hops[n];
			int err;

			nl_attrs_range(
				p + RTNH_ALIGN(sizeof(*rtnh)), p + rtnh->rtnh_len, tb, RTA_MAX);
			memset(hop, 0, sizeof(*hop));
			hop->oif = rtnh->rtnh_ifindex;
			hop->weight = rtnh->rtnh_hops + 1u;
			hop->flags = rtnh->rtnh_flags;
			err = nl_route_get_gw(tb, family, &hop->gw);
			if (err)
				return err;
		}
		n++;
		step = RTNH_ALIGN(rtnh->rtnh_len);
		if (step >= left)
			break;
		p += step;
		left -= step;
	}
	*ret_n = n;
	return n > max ? -ENOSPC : 0;
}

int nl_route_parse(
	const struct nlmsghdr *nlh, struct nl_route *ret, struct nl_hop *hops, size_t max_hops)
{
	const struct nlattr *tb[RTA_MAX + 1];
	const struct rtmsg *rtm;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_DELROUTE)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*rtm), tb, RTA_MAX);
	if (err)
		return err;
	rtm = mnl_nlmsg_get_payload(nlh);
	/* IPMR, MPLS and the like come in AF_UNSPEC dumps: not ours to read. */
	if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6)
		return -EAFNOSUPPORT;
	ret->family = rtm->rtm_family;
	if (rtm->rtm_dst_len > 8 * addr_len(ret->family))
		return -EBADMSG;
	ret->table = rtm->rtm_table;
	ret->protocol = rtm->rtm_protocol;
	ret->scope = rtm->rtm_scope;
	ret->type = rtm->rtm_type;
	ret->tos = rtm->rtm_tos;
	ret->flags = rtm->rtm_flags;
	if (tb[RTA_TABLE] && (err = nl_get_u32(tb[RTA_TABLE], &ret->table)))
		return err;
	if (tb[RTA_DST]) {
		err = nl_get_addr(tb[RTA_DST], ret->family, &ret->dst.addr);
		if (err)
			return err;
		ret->dst.plen = rtm->rtm_dst_len;
	}
	if (tb[RTA_PREFSRC] && (err = nl_get_addr(tb[RTA_PREFSRC], ret->family, &ret->prefsrc)))
		return err;
	if (tb[RTA_PRIORITY] && (err = nl_get_u32(tb[RTA_PRIORITY], &ret->priority)))
		return err;
	if (tb[RTA_OIF]) {
		uint32_t oif;

		err = nl_get_u32(tb[RTA_OIF], &oif);
		if (err)
			return err;
		ret->oif = (int)oif;
	}
	if (tb[RTA_NH_ID] && (err = nl_get_u32(tb[RTA_NH_ID], &ret->nh_id)))
		return err;
	err = nl_route_get_gw(tb, ret->family, &ret->gw);
	if (err)
		return err;
	if (tb[RTA_MULTIPATH]) {
		err = nl_route_get_multipath(
			tb[RTA_MULTIPATH], ret->family, hops, max_hops, &ret->n_hops);
		if (err)
			return err;
		ret->hops = ret->n_hops ? hops : NULL;
	}
	return 0;
}

int nl_route_apply(struct nl *nl, enum nl_op op, const struct nl_route *r)
{
	int err = nl_route_build(nl_sendbuf(nl), NL_MSG_BUFSIZE, op, r);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

static int nl_route_get_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_route *ret = arg;
	int err;

	/* No room for legs: -ENOSPC then only says there were some; the rest is parsed. */
	err = nl_route_parse(nlh, ret, NULL, 0);
	if (err == -ENOSPC)
		err = 0;
	ret->hops = NULL;
	ret->n_hops = 0;
	return err;
}

int nl_route_get(struct nl *nl, const struct addr *dst, struct nl_route *ret)
{
	return nl_route_lookup(nl, &(struct nl_route_query){.dst = *dst}, ret);
}

int nl_route_lookup(struct nl *nl, const struct nl_route_query *q, struct nl_route *ret)
{
	int err;

	memset(ret, 0, sizeof(*ret));
	err = nl_route_build_lookup(nl_sendbuf(nl), NL_MSG_BUFSIZE, q);
	if (err)
		return err;
	err = nl_query(nl, nl_sendbuf(nl), nl_route_get_cb, ret);
	if (!err && !ret->family)
		err = -ENODATA; /* acked without an answer */
	return err;
}

struct nl_route_dump_ctx {
	nl_route_cb cb;
	void *arg;
	int family;
	uint32_t table;
	struct nl_scratch scratch;
};

static int nl_route_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_route_dump_ctx *ctx = arg;
	struct nl_route r;
	int err;

	err = nl_route_parse_scratch(nlh, &r, &ctx->scratch);
	if (err == -EAFNOSUPPORT)
		return 0;
	if (err) {
		log_debug("netlink: route dump: bad message: %s", strerror(-err));
		return err;
	}
	/* Without strict checking (kernels before 4.20) the kernel dumps everything. */
	if ((ctx->family && r.family != ctx->family) || (ctx->table && r.table != ctx->table))
		return 0;
	return ctx->cb(&r, ctx->arg);
}

int nl_route_dump(struct nl *nl, int family, uint32_t table, nl_route_cb cb, void *arg)
{
	struct nl_route_dump_ctx ctx = {.cb = cb, .arg = arg, .family = family, .table = table};
	int err;

	err = nl_route_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE, family, table);
	if (err)
		return err;
	err = nl_dump(nl, nl_sendbuf(nl), nl_route_dump_cb, &ctx);
	/* A table that was never created: the kernel says ENOENT, we say "no routes". */
	if (err == -ENOENT && table)
		err = 0;
	nl_scratch_clear(&ctx.scratch);
	return err;
}
