/*
 * nl_neigh.c - neighbour entries over rtnetlink (ARP/NDP cache and proxy entries): add,
 * replace, delete, parse and dump.
 *
 * It must not flush or age neighbours on its own, nor log above debug.
 */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "log.h"
#include "nl_int.h"

int nl_neigh_build(void *buf, size_t buflen, enum nl_op op, const struct nl_neigh *n)
{
	struct ndmsg *ndm;
	struct nlb b;

	if ((unsigned)op >= _NL_OP_MAX || n->ifindex <= 0 || !addr_is_set(&n->dst) ||
		(n->family && n->family != n->dst.family) || n->lladdr_len > NL_LLADDR_MAX)
		return -EINVAL;
	nlb_init(&b, buf, buflen, op == NL_DEL ? RTM_DELNEIGH : RTM_NEWNEIGH, nl_op_flags(op));
	ndm = nlb_reserve(&b, sizeof(*ndm));
	if (!ndm)
		return nlb_end(&b);
	ndm->ndm_family = (uint8_t)n->dst.family;
	ndm->ndm_ifindex = n->ifindex;
	ndm->ndm_flags = n->flags;
	ndm->ndm_type = n->type;
	ndm->ndm_state = n->state;
	if (!ndm->ndm_state && op != NL_DEL)
		ndm->ndm_state = NUD_PERMANENT;
	nlb_addr(&b, NDA_DST, &n->dst);
	if (n->lladdr_len && op != NL_DEL)
		nlb_put(&b, NDA_LLADDR, n->lladdr_len, n->lladdr);
	return nlb_end(&b);
}

int nl_neigh_build_dump(void *buf, size_t buflen, int family, int ifindex, bool proxy)
{
	struct ndmsg *ndm;
	struct nlb b;

	if (ifindex < 0)
		return -EINVAL;
	nlb_init(&b, buf, buflen, RTM_GETNEIGH, NLM_F_DUMP);
	ndm = nlb_reserve(&b, sizeof(*ndm));
	if (ndm) {
		ndm->ndm_family = (uint8_t)family;
		ndm->ndm_flags = proxy ? NTF_PROXY : 0;
	}
	/* Strict checking wants the device as an attribute, not in the header. */
	if (ifindex)
		nlb_u32(&b, NDA_IFINDEX, (uint32_t)ifindex);
	return nlb_end(&b);
}

int nl_neigh_parse(const struct nlmsghdr *nlh, struct nl_neigh *ret)
{
	const struct nlattr *tb[NDA_MAX + 1];
	const struct ndmsg *ndm;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (nlh->nlmsg_type != RTM_NEWNEIGH && nlh->nlmsg_type != RTM_DELNEIGH)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*ndm), tb, NDA_MAX);
	if (err)
		return err;
	ndm = mnl_nlmsg_get_payload(nlh);
	/* Bridge FDB entries (AF_BRIDGE) share the message type: not ours. */
	if (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6)
		return -EAFNOSUPPORT;
	ret->family = ndm->ndm_family;
	ret->ifindex = ndm->ndm_ifindex;
	ret->state = ndm->ndm_state;
	ret->flags = ndm->ndm_flags;
	ret->type = ndm->ndm_type;
	if (!tb[NDA_DST] || (err = nl_get_addr(tb[NDA_DST], ret->family, &ret->dst)))
		return -EBADMSG;
	if (tb[NDA_LLADDR]) {
		size_t len = mnl_attr_get_payload_len(tb[NDA_LLADDR]);

		if (len > NL_LLADDR_MAX)
			return -EBADMSG;
		memcpy(ret->lladdr, mnl_attr_get_payload(tb[NDA_LLADDR]), len);
		ret->lladdr_len = (uint8_t)len;
	}
	return 0;
}

int nl_neigh_apply(struct nl *nl, enum nl_op op, const struct nl_neigh *n)
{
	int err = nl_neigh_build(nl_sendbuf(nl), NL_MSG_BUFSIZE, op, n);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

struct nl_neigh_dump_ctx {
	nl_neigh_cb cb;
	void *arg;
	int family;
	int ifindex;
	bool proxy;
};

static int nl_neigh_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_neigh_dump_ctx *ctx = arg;
	struct nl_neigh n;
	int err;

	err = nl_neigh_parse(nlh, &n);
	if (err == -EAFNOSUPPORT)
		return 0;
	if (err) {
		log_debug("netlink: neighbour dump: bad message: %s", strerror(-err));
		return err;
	}
	if ((ctx->family && n.family != ctx->family) ||
		(ctx->ifindex && n.ifindex != ctx->ifindex) ||
		ctx->proxy != !!(n.flags & NTF_PROXY))
		return 0;
	return ctx->cb(&n, ctx->arg);
}

int nl_neigh_dump(struct nl *nl, int family, int ifindex, bool proxy, nl_neigh_cb cb, void *arg)
{
	struct nl_neigh_dump_ctx ctx = {
		.cb = cb,
		.arg = arg,
		.family = family,
		.ifindex = ifindex,
		.proxy = proxy,
	};
	int err;

	err = nl_neigh_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE, family, ifindex, proxy);
	if (err)
		return err;
	return nl_dump(nl, nl_sendbuf(nl), nl_neigh_dump_cb, &ctx);
}
