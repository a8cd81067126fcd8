/*
 * nl_addr.c - interface addresses over rtnetlink: add, replace and delete IPv4/IPv6
 * addresses with flags (nodad, noprefixroute, ...) and lifetimes; parse and dump.
 *
 * It must not remove addresses it was not asked to, nor log above debug.
 */
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "log.h"
#include "nl_int.h"

int nl_addr_build(void *buf, size_t buflen, enum nl_op op, const struct nl_addr *a)
{
	int family = a->local.addr.family;
	struct ifaddrmsg *ifa;
	struct nlb b;

	if ((unsigned)op >= _NL_OP_MAX || a->ifindex <= 0 || !addr_len(family) ||
		a->local.plen > 8 * addr_len(family) ||
		(addr_is_set(&a->peer) && a->peer.family != family) ||
		strnlen(a->label, NL_IFNAMSIZ) == NL_IFNAMSIZ)
		return -EINVAL;
	nlb_init(&b, buf, buflen, op == NL_DEL ? RTM_DELADDR : RTM_NEWADDR, nl_op_flags(op));
	ifa = nlb_reserve(&b, sizeof(*ifa));
	if (!ifa)
		return nlb_end(&b);
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = a->local.plen;
	ifa->ifa_flags = (uint8_t)a->flags;
	ifa->ifa_scope = a->scope;
	ifa->ifa_index = (uint32_t)a->ifindex;
	/* IFA_LOCAL is our address, IFA_ADDRESS the peer's (the same unless point-to-point). */
	nlb_addr(&b, IFA_LOCAL, &a->local.addr);
	nlb_addr(&b, IFA_ADDRESS, addr_is_set(&a->peer) ? &a->peer : &a->local.addr);
	/* ifa_flags has room for the first eight only; IFA_FLAGS (3.14+) takes them all. */
	if (a->flags)
		nlb_u32(&b, IFA_FLAGS, a->flags);
	if (a->label[0] && family == AF_INET)
		nlb_str(&b, IFA_LABEL, a->label);
	if (a->valid_lft && op != NL_DEL) {
		struct ifa_cacheinfo ci = {
			.ifa_prefered = a->preferred_lft,
			.ifa_valid = a->valid_lft,
		};

		nlb_put(&b, IFA_CACHEINFO, sizeof(ci), &ci);
	}
	return nlb_end(&b);
}

int nl_addr_build_dump(void *buf, size_t buflen, int family, int ifindex)
{
	struct ifaddrmsg *ifa;
	struct nlb b;

	if (ifindex < 0)
		return -EINVAL;
	nlb_init(&b, buf, buflen, RTM_GETADDR, NLM_F_DUMP);
	ifa = nlb_reserve(&b, sizeof(*ifa));
	if (ifa) {
		ifa->ifa_family = (uint8_t)family;
		/* A filter with NETLINK_GET_STRICT_CHK; ignored (we filter too) without. */
		ifa->ifa_index = (uint32_t)ifindex;
	}
	return nlb_end(&b);
}

int nl_addr_parse(const struct nlmsghdr *nlh, struct nl_addr *ret)
{
	const struct nlattr *tb[IFA_MAX + 1];
	const struct ifaddrmsg *ifa;
	struct addr address;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*ifa), tb, IFA_MAX);
	if (err)
		return err;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (ifa->ifa_prefixlen > 8 * addr_len(ifa->ifa_family))
		return -EBADMSG;
	ret->ifindex = (int)ifa->ifa_index;
	ret->local.plen = ifa->ifa_prefixlen;
	ret->flags = ifa->ifa_flags;
	ret->scope = ifa->ifa_scope;
	/* IPv6 sends IFA_ADDRESS alone, IPv4 both; with a peer, IFA_LOCAL is ours. */
	if (!tb[IFA_ADDRESS] && !tb[IFA_LOCAL])
		return -EBADMSG;
	if (tb[IFA_ADDRESS] && (err = nl_get_addr(tb[IFA_ADDRESS], ifa->ifa_family, &address)))
		return err;
	if (tb[IFA_LOCAL]) {
		if ((err = nl_get_addr(tb[IFA_LOCAL], ifa->ifa_family, &ret->local.addr)))
			return err;
		if (tb[IFA_ADDRESS] && !addr_eq(&address, &ret->local.addr))
			ret->peer = address;
	} else {
		ret->local.addr = address;
	}
	if (tb[IFA_FLAGS] && (err = nl_get_u32(tb[IFA_FLAGS], &ret->flags)))
		return err;
	if (tb[IFA_LABEL] && (err = nl_get_str(tb[IFA_LABEL], ret->label, sizeof(ret->label))))
		return err;
	if (tb[IFA_CACHEINFO]) {
		struct ifa_cacheinfo ci;

		if (mnl_attr_get_payload_len(tb[IFA_CACHEINFO]) != sizeof(ci))
			return -EBADMSG;
		memcpy(&ci, mnl_attr_get_payload(tb[IFA_CACHEINFO]), sizeof(ci));
		ret->valid_lft = ci.ifa_valid;
		ret->preferred_lft = ci.ifa_prefered;
	}
	return 0;
}

int nl_addr_apply(struct nl *nl, enum nl_op op, const struct nl_addr *a)
{
	int err = nl_addr_build(nl_sendbuf(nl), NL_MSG_BUFSIZE, op, a);

	if (err)
		return err;
	return nl_request(nl, nl_sendbuf(nl));
}

struct nl_addr_dump_ctx {
	nl_addr_cb cb;
	void *arg;
	int family;
	int ifindex;
};

static int nl_addr_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_addr_dump_ctx *ctx = arg;
	struct nl_addr a;
	int err;

	err = nl_addr_parse(nlh, &a);
	if (err == -EAFNOSUPPORT)
		return 0;
	if (err) {
		log_debug("netlink: address dump: bad message: %s", strerror(-err));
		return err;
	}
	if ((ctx->family && a.local.addr.family != ctx->family) ||
		(ctx->ifindex && a.ifindex != ctx->ifindex))
		return 0;
	return ctx->cb(&a, ctx->arg);
}

int nl_addr_dump(struct nl *nl, int family, int ifindex, nl_addr_cb cb, void *arg)
{
	struct nl_addr_dump_ctx ctx = {.cb = cb, .arg = arg, .family = family, .ifindex = ifindex};
	int err;

	err = nl_addr_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE, family, ifindex);
	if (err)
		return err;
	return nl_dump(nl, nl_sendbuf(nl), nl_addr_dump_cb, &ctx);
}
