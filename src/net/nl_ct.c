/*
 * nl_ct.c - conntrack over ctnetlink (NETLINK_NETFILTER): delete every entry whose mark
 * matches under a mask (so that flows of a failed uplink pick a new one), delete one entry
 * by its tuple, dump and count entries by mark, and create entries (for tests and tools).
 *
 * All ctnetlink numbers are big-endian on the wire.  This file must not flush conntrack
 * beyond the mark it is given, nor log above debug.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <string.h>

#include "log.h"
#include "nl_int.h"

#define NL_CT_TIMEOUT_DEFAULT 60

static struct nfgenmsg *nl_ct_start(struct nlb *b, void *buf, size_t buflen, uint8_t msg,
	uint16_t flags, int family, uint8_t version)
{
	struct nfgenmsg *nfg;

	nlb_init(b, buf, buflen, (NFNL_SUBSYS_CTNETLINK << 8) | msg, flags);
	nfg = nlb_reserve(b, sizeof(*nfg));
	if (nfg) {
		nfg->nfgen_family = (uint8_t)family;
		nfg->version = version;
		nfg->res_id = htons(0);
	}
	return nfg;
}

static bool nl_ct_family_ok(int family)
{
	return family == AF_UNSPEC || family == AF_INET || family == AF_INET6;
}

int nl_ct_build_delete_mark(void *buf, size_t buflen, int family, uint32_t mark, uint32_t mask)
{
	struct nlb b;

	/* mask 0 would flush everything; bits outside the mask would match nothing. */
	if (!nl_ct_family_ok(family) || !mask || (mark & mask) != mark)
		return -EINVAL;
	/*
	 * A delete without a tuple is a flush, filtered by CTA_MARK/CTA_MARK_MASK.  Kernel
	 * quirk: the flush honours nfgen_family only when version is non-zero (since 4.19 and
	 * its stable backports, commit f8e608982022 and fixes), because old tools left the
	 * family uninitialised; with version 0 both families are flushed.  Older kernels
	 * ignore the family either way.
	 */
	nl_ct_start(&b, buf, buflen, IPCTNL_MSG_CT_DELETE, 0, family, 1);
	nlb_be32(&b, CTA_MARK, mark);
	nlb_be32(&b, CTA_MARK_MASK, mask);
	return nlb_end(&b);
}

int nl_ct_build_dump(void *buf, size_t buflen, int family, uint32_t mark, uint32_t mask)
{
	struct nlb b;

	if (!nl_ct_family_ok(family))
		return -EINVAL;
	nl_ct_start(&b, buf, buflen, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, NFNETLINK_V0);
	if (mask) {
		nlb_be32(&b, CTA_MARK, mark);
		nlb_be32(&b, CTA_MARK_MASK, mask);
	}
	return nlb_end(&b);
}

static void nl_ct_put_tuple(struct nlb *b, uint16_t type, uint8_t proto, const struct addr *src,
	const struct addr *dst, uint16_t sport, uint16_t dport)
{
	bool v4 = src->family == AF_INET;
	struct nlattr *tuple, *ip, *l4;

	tuple = nlb_nest(b, type | NLA_F_NESTED);
	ip = nlb_nest(b, CTA_TUPLE_IP | NLA_F_NESTED);
	nlb_addr(b, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, src);
	nlb_addr(b, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, dst);
	nlb_nest_end(b, ip);
	l4 = nlb_nest(b, CTA_TUPLE_PROTO | NLA_F_NESTED);
	nlb_u8(b, CTA_PROTO_NUM, proto);
	nlb_be16(b, CTA_PROTO_SRC_PORT, sport);
	nlb_be16(b, CTA_PROTO_DST_PORT, dport);
	nlb_nest_end(b, l4);
	nlb_nest_end(b, tuple);
}

int nl_ct_build_delete(void *buf, size_t buflen, const struct nl_ct *ct)
{
	struct nlb b;

	if ((ct->family != AF_INET && ct->family != AF_INET6) || ct->src.family != ct->family ||
		ct->dst.family != ct->family ||
		(ct->proto != IPPROTO_UDP && ct->proto != IPPROTO_TCP))
		return -EINVAL;
	nl_ct_start(&b, buf, buflen, IPCTNL_MSG_CT_DELETE, 0, ct->family, NFNETLINK_V0);
	nl_ct_put_tuple(&b, CTA_TUPLE_ORIG, ct->proto, &ct->src, &ct->dst, ct->sport, ct->dport);
	if (ct->id)
		nlb_be32(&b, CTA_ID, ct->id);
	if (ct->zone)
		nlb_be16(&b, CTA_ZONE, ct->zone);
	return nlb_end(&b);
}

int nl_ct_build_new(void *buf, size_t buflen, const struct nl_ct *ct)
{
	bool reply = addr_is_set(&ct->reply_src);
	struct nlb b;

	if ((ct->family != AF_INET && ct->family != AF_INET6) || ct->src.family != ct->family ||
		ct->dst.family != ct->family ||
		(reply && (ct->reply_src.family != ct->family ||
				  ct->reply_dst.family != ct->family)) ||
		(ct->proto != IPPROTO_UDP && ct->proto != IPPROTO_TCP))
		return -EINVAL;
	nl_ct_start(&b, buf, buflen, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, ct->family,
		NFNETLINK_V0);
	nl_ct_put_tuple(&b, CTA_TUPLE_ORIG, ct->proto, &ct->src, &ct->dst, ct->sport, ct->dport);
	if (reply)
		nl_ct_put_tuple(&b, CTA_TUPLE_REPLY, ct->proto, &ct->reply_src, &ct->reply_dst,
			ct->reply_sport, ct->reply_dport);
	else
		nl_ct_put_tuple(
			&b, CTA_TUPLE_REPLY, ct->proto, &ct->dst, &ct->src, ct->dport, ct->sport);
	nlb_be32(&b, CTA_TIMEOUT, ct->timeout ? ct->timeout : NL_CT_TIMEOUT_DEFAULT);
	if (ct->mark)
		nlb_be32(&b, CTA_MARK, ct->mark);
	if (ct->status)
		nlb_be32(&b, CTA_STATUS, ct->status);
	if (ct->zone)
		nlb_be16(&b, CTA_ZONE, ct->zone);
	return nlb_end(&b);
}

static int nl_ct_get_tuple(const struct nlattr *a, int family, uint8_t *proto, struct addr *src,
	struct addr *dst, uint16_t *sport, uint16_t *dport)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1];
	const struct nlattr *ip[CTA_IP_MAX + 1];
	const struct nlattr *l4[CTA_PROTO_MAX + 1];
	bool v4 = family == AF_INET;
	int err;

	nl_attrs_nested(a, tb, CTA_TUPLE_MAX);
	if (!tb[CTA_TUPLE_IP] || !tb[CTA_TUPLE_PROTO])
		return -EBADMSG;
	nl_attrs_nested(tb[CTA_TUPLE_IP], ip, CTA_IP_MAX);
	if (!ip[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC] || !ip[v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST])
		return -EBADMSG;
	if ((err = nl_get_addr(ip[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC], family, src)) ||
		(err = nl_get_addr(ip[v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST], family, dst)))
		return err;
	nl_attrs_nested(tb[CTA_TUPLE_PROTO], l4, CTA_PROTO_MAX);
	if (!l4[CTA_PROTO_NUM] || (err = nl_get_u8(l4[CTA_PROTO_NUM], proto)))
		return -EBADMSG;
	if (l4[CTA_PROTO_SRC_PORT] && (err = nl_get_be16(l4[CTA_PROTO_SRC_PORT], sport)))
		return err;
	if (l4[CTA_PROTO_DST_PORT] && (err = nl_get_be16(l4[CTA_PROTO_DST_PORT], dport)))
		return err;
	return 0;
}

int nl_ct_parse(const struct nlmsghdr *nlh, struct nl_ct *ret)
{
	const struct nlattr *tb[CTA_MAX + 1];
	const struct nfgenmsg *nfg;
	uint8_t proto;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK ||
		(NFNL_MSG_TYPE(nlh->nlmsg_type) != IPCTNL_MSG_CT_NEW &&
			NFNL_MSG_TYPE(nlh->nlmsg_type) != IPCTNL_MSG_CT_DELETE))
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*nfg), tb, CTA_MAX);
	if (err)
		return err;
	nfg = mnl_nlmsg_get_payload(nlh);
	if (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6)
		return -EAFNOSUPPORT;
	ret->family = nfg->nfgen_family;
	if (!tb[CTA_TUPLE_ORIG])
		return -EBADMSG;
	err = nl_ct_get_tuple(tb[CTA_TUPLE_ORIG], ret->family, &ret->proto, &ret->src, &ret->dst,
		&ret->sport, &ret->dport);
	if (err)
		return err;
	if (tb[CTA_TUPLE_REPLY] &&
		(err = nl_ct_get_tuple(tb[CTA_TUPLE_REPLY], ret->family, &proto, &ret->reply_src,
			 &ret->reply_dst, &ret->reply_sport, &ret->reply_dport)))
		return err;
	if (tb[CTA_MARK] && (err = nl_get_be32(tb[CTA_MARK], &ret->mark)))
		return err;
	if (tb[CTA_TIMEOUT] && (err = nl_get_be32(tb[CTA_TIMEOUT], &ret->timeout)))
		return err;
	if (tb[CTA_STATUS] && (err = nl_get_be32(tb[CTA_STATUS], &ret->status)))
		return err;
	if (tb[CTA_ID] && (err = nl_get_be32(tb[CTA_ID], &ret->id)))
		return err;
	if (tb[CTA_ZONE] && (err = nl_get_be16(tb[CTA_ZONE], &ret->zone)))
		return err;
	return 0;
}

int nl_ct_delete_mark(struct nl *nl, int family, uint32_t mark, uint32_t mask)
{
	int err = nl_ct_build_delete_mark(nl_sendbuf(nl), NL_MSG_BUFSIZE, family, mark, mask);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

int nl_ct_delete(struct nl *nl, const struct nl_ct *ct)
{
	int err = nl_ct_build_delete(nl_sendbuf(nl), NL_MSG_BUFSIZE, ct);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

int nl_ct_add(struct nl *nl, const struct nl_ct *ct)
{
	int err = nl_ct_build_new(nl_sendbuf(nl), NL_MSG_BUFSIZE, ct);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

struct nl_ct_dump_ctx {
	nl_ct_cb cb;
	void *arg;
	int family;
	uint32_t mark;
	uint32_t mask;
	size_t count;
};

static int nl_ct_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_ct_dump_ctx *ctx = arg;
	struct nl_ct ct;
	int err;

	err = nl_ct_parse(nlh, &ct);
	if (err == -EAFNOSUPPORT)
		return 0;
	if (err) {
		log_debug("netlink: conntrack dump: bad message: %s", strerror(-err));
		return err;
	}
	/* Kernels before 4.x ignore the filter of a dump: check again. */
	if ((ctx->family && ct.family != ctx->family) || (ct.mark & ctx->mask) != ctx->mark)
		return 0;
	ctx->count++;
	return ctx->cb ? ctx->cb(&ct, ctx->arg) : 0;
}

static int nl_ct_run_dump(struct nl *nl, struct nl_ct_dump_ctx *ctx)
{
	int err;

	if ((ctx->mark & ctx->mask) != ctx->mark)
		return -EINVAL;
	err = nl_ct_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE, ctx->family, ctx->mark, ctx->mask);
	if (err)
		return err;
	return nl_dump(nl, nl_sendbuf(nl), nl_ct_dump_cb, ctx);
}

int nl_ct_dump(struct nl *nl, int family, uint32_t mark, uint32_t mask, nl_ct_cb cb, void *arg)
{
	struct nl_ct_dump_ctx ctx = {
		.cb = cb,
		.arg = arg,
		.family = family,
		.mark = mark,
		.mask = mask,
	};

	return nl_ct_run_dump(nl, &ctx);
}

int nl_ct_count(struct nl *nl, int family, uint32_t mark, uint32_t mask, size_t *ret)
{
	struct nl_ct_dump_ctx ctx = {.family = family, .mark = mark, .mask = mask};
	int err = nl_ct_run_dump(nl, &ctx);

	*ret = ctx.count;
	return err;
}
