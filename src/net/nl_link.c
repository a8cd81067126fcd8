/*
 * nl_link.c - network links over rtnetlink: get by name or index, dump, set up/down, MTU
 * and MAC, create veth pairs (the peer optionally in another namespace) and macvlans, and
 * delete.
 *
 * It must not rename, move or delete links it was not asked to, nor log above debug.
 */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <string.h>

#include "log.h"
#include "nl_int.h"

const char *const nl_macvlan_mode_name[_NL_MACVLAN_MODE_MAX] = {
	[NL_MACVLAN_PRIVATE] = "private",
	[NL_MACVLAN_VEPA] = "vepa",
	[NL_MACVLAN_BRIDGE] = "bridge",
	[NL_MACVLAN_PASSTHRU] = "passthru",
	[NL_MACVLAN_SOURCE] = "source",
};

static const uint32_t nl_macvlan_mode_kernel[_NL_MACVLAN_MODE_MAX] = {
	[NL_MACVLAN_PRIVATE] = MACVLAN_MODE_PRIVATE,
	[NL_MACVLAN_VEPA] = MACVLAN_MODE_VEPA,
	[NL_MACVLAN_BRIDGE] = MACVLAN_MODE_BRIDGE,
	[NL_MACVLAN_PASSTHRU] = MACVLAN_MODE_PASSTHRU,
	[NL_MACVLAN_SOURCE] = MACVLAN_MODE_SOURCE,
};

int nl_macvlan_mode_from_name(const char *name)
{
	int i;

	for (i = 0; i < _NL_MACVLAN_MODE_MAX; i++)
		if (streq(name, nl_macvlan_mode_name[i]))
			return i;
	return -EINVAL;
}

static bool nl_ifname_ok(const char *name)
{
	size_t n = name ? strnlen(name, NL_IFNAMSIZ) : 0;

	return n > 0 && n < NL_IFNAMSIZ;
}

/* Start an RTM_*LINK message with its struct ifinfomsg; NULL after an error. */
static struct ifinfomsg *nl_link_start(
	struct nlb *b, void *buf, size_t buflen, uint16_t type, uint16_t flags, int ifindex)
{
	struct ifinfomsg *ifi;

	nlb_init(b, buf, buflen, type, flags);
	ifi = nlb_reserve(b, sizeof(*ifi));
	if (ifi) {
		ifi->ifi_family = AF_UNSPEC;
		ifi->ifi_index = ifindex;
	}
	return ifi;
}

int nl_link_build_get(void *buf, size_t buflen, int ifindex, const char *name)
{
	struct nlb b;

	if (ifindex < 0 || (!ifindex && !nl_ifname_ok(name)))
		return -EINVAL;
	nl_link_start(&b, buf, buflen, RTM_GETLINK, 0, ifindex);
	if (!ifindex)
		nlb_str(&b, IFLA_IFNAME, name);
	nlb_u32(&b, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nlb_end(&b);
}

int nl_link_build_dump(void *buf, size_t buflen)
{
	struct nlb b;

	nl_link_start(&b, buf, buflen, RTM_GETLINK, NLM_F_DUMP, 0);
	nlb_u32(&b, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nlb_end(&b);
}

int nl_link_build_change(void *buf, size_t buflen, const struct nl_link_change *c)
{
	struct ifinfomsg *ifi;
	struct nlb b;

	if (c->ifindex <= 0 || (c->mac && (!c->mac_len || c->mac_len > NL_LLADDR_MAX)) ||
		(unsigned)c->addr_gen >= _NL_ADDR_GEN_MAX)
		return -EINVAL;
	ifi = nl_link_start(&b, buf, buflen, RTM_NEWLINK, 0, c->ifindex);
	if (ifi && c->admin != NL_LINK_KEEP) {
		ifi->ifi_change = IFF_UP;
		ifi->ifi_flags = c->admin == NL_LINK_UP ? IFF_UP : 0;
	}
	if (c->mtu)
		nlb_u32(&b, IFLA_MTU, c->mtu);
	if (c->mac)
		nlb_put(&b, IFLA_ADDRESS, c->mac_len, c->mac);
	if (c->addr_gen != NL_ADDR_GEN_KEEP) {
		/* IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE u8 } }; the enum is the
		 * kernel's IN6_ADDR_GEN_MODE_* plus one. */
		struct nlattr *spec = nlb_nest(&b, IFLA_AF_SPEC), *inet6 = nlb_nest(&b, AF_INET6);

		nlb_u8(&b, IFLA_INET6_ADDR_GEN_MODE, (uint8_t)(c->addr_gen - 1));
		nlb_nest_end(&b, inet6);
		nlb_nest_end(&b, spec);
	}
	return nlb_end(&b);
}

int nl_link_build_veth(
	void *buf, size_t buflen, const char *name, const char *peer, int peer_netns_fd)
{
	struct nlattr *linkinfo, *data, *peerinfo;
	struct ifinfomsg *peer_ifi;
	struct nlb b;

	if (!nl_ifname_ok(name) || !nl_ifname_ok(peer))
		return -EINVAL;
	nl_link_start(&b, buf, buflen, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	nlb_str(&b, IFLA_IFNAME, name);
	linkinfo = nlb_nest(&b, IFLA_LINKINFO);
	nlb_str(&b, IFLA_INFO_KIND, "veth");
	data = nlb_nest(&b, IFLA_INFO_DATA);
	/* The peer is described like a link of its own: an ifinfomsg, then attributes. */
	peerinfo = nlb_nest(&b, VETH_INFO_PEER);
	peer_ifi = nlb_reserve(&b, sizeof(*peer_ifi));
	if (peer_ifi)
		peer_ifi->ifi_family = AF_UNSPEC;
	nlb_str(&b, IFLA_IFNAME, peer);
	if (peer_netns_fd >= 0)
		nlb_u32(&b, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	nlb_nest_end(&b, peerinfo);
	nlb_nest_end(&b, data);
	nlb_nest_end(&b, linkinfo);
	return nlb_end(&b);
}

int nl_link_build_macvlan(void *buf, size_t buflen, const struct nl_macvlan *m)
{
	struct nlattr *linkinfo, *data;
	struct nlb b;

	if (!nl_ifname_ok(m->name) || m->parent <= 0 || (unsigned)m->mode >= _NL_MACVLAN_MODE_MAX)
		return -EINVAL;
	nl_link_start(&b, buf, buflen, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	nlb_str(&b, IFLA_IFNAME, m->name);
	nlb_u32(&b, IFLA_LINK, (uint32_t)m->parent);
	if (m->mac)
		nlb_put(&b, IFLA_ADDRESS, 6, m->mac);
	linkinfo = nlb_nest(&b, IFLA_LINKINFO);
	nlb_str(&b, IFLA_INFO_KIND, "macvlan");
	data = nlb_nest(&b, IFLA_INFO_DATA);
	nlb_u32(&b, IFLA_MACVLAN_MODE, nl_macvlan_mode_kernel[m->mode]);
	nlb_nest_end(&b, data);
	nlb_nest_end(&b, linkinfo);
	return nlb_end(&b);
}

int nl_link_build_del(void *buf, size_t buflen, int ifindex)
{
	struct nlb b;

	if (ifindex <= 0)
		return -EINVAL;
	nl_link_start(&b, buf, buflen, RTM_DELLINK, 0, ifindex);
	return nlb_end(&b);
}

static int nl_link_get_info(const struct nlattr *a, struct nl_link *ret)
{
	const struct nlattr *tb[IFLA_INFO_MAX + 1];
	const struct nlattr *data[IFLA_MACVLAN_MAX + 1];
	uint32_t mode;
	int err, i;

	nl_attrs_nested(a, tb, IFLA_INFO_MAX);
	if (!tb[IFLA_INFO_KIND])
		return 0;
	if ((err = nl_get_str(tb[IFLA_INFO_KIND], ret->kind, sizeof(ret->kind))))
		return err;
	if ((!streq(ret->kind, "macvlan") && !streq(ret->kind, "macvtap")) || !tb[IFLA_INFO_DATA])
		return 0;
	nl_attrs_nested(tb[IFLA_INFO_DATA], data, IFLA_MACVLAN_MAX);
	if (!data[IFLA_MACVLAN_MODE])
		return 0;
	if ((err = nl_get_u32(data[IFLA_MACVLAN_MODE], &mode)))
		return err;
	for (i = 0; i < _NL_MACVLAN_MODE_MAX; i++)
		if (nl_macvlan_mode_kernel[i] == mode)
			ret->macvlan_mode = i;
	return 0;
}

static int nl_get_ifindex(const struct nlattr *a, int *ret)
{
	uint32_t v;
	int err = nl_get_u32(a, &v);

	if (!err)
		*ret = (int)v;
	return err;
}

int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *ret)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	const struct ifinfomsg *ifi;
	int err;

	memset(ret, 0, sizeof(*ret));
	ret->link_netnsid = -1;
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(*ifi), tb, IFLA_MAX);
	if (err)
		return err;
	ifi = mnl_nlmsg_get_payload(nlh);
	ret->ifindex = ifi->ifi_index;
	ret->type = ifi->ifi_type;
	ret->flags = ifi->ifi_flags;
	if (!tb[IFLA_IFNAME] || (err = nl_get_str(tb[IFLA_IFNAME], ret->name, sizeof(ret->name))))
		return -EBADMSG;
	if (tb[IFLA_MTU] && (err = nl_get_u32(tb[IFLA_MTU], &ret->mtu)))
		return err;
	if (tb[IFLA_ADDRESS]) {
		size_t len = mnl_attr_get_payload_len(tb[IFLA_ADDRESS]);

		if (len > NL_LLADDR_MAX)
			return -EBADMSG;
		memcpy(ret->addr, mnl_attr_get_payload(tb[IFLA_ADDRESS]), len);
		ret->addr_len = (uint8_t)len;
	}
	if (tb[IFLA_LINK] && (err = nl_get_ifindex(tb[IFLA_LINK], &ret->parent)))
		return err;
	if (tb[IFLA_MASTER] && (err = nl_get_ifindex(tb[IFLA_MASTER], &ret->master)))
		return err;
	if (tb[IFLA_LINK_NETNSID] &&
		(err = nl_get_ifindex(tb[IFLA_LINK_NETNSID], &ret->link_netnsid)))
		return err;
	if (tb[IFLA_OPERSTATE] && (err = nl_get_u8(tb[IFLA_OPERSTATE], &ret->operstate)))
		return err;
	if (tb[IFLA_LINKINFO] && (err = nl_link_get_info(tb[IFLA_LINKINFO], ret)))
		return err;
	return 0;
}

static int nl_link_get_cb(const struct nlmsghdr *nlh, void *arg)
{
	return nl_link_parse(nlh, arg);
}

int nl_link_get(struct nl *nl, int ifindex, const char *name, struct nl_link *ret)
{
	int err;

	err = nl_link_build_get(nl_sendbuf(nl), NL_MSG_BUFSIZE, ifindex, name);
	if (err)
		return err;
	memset(ret, 0, sizeof(*ret));
	err = nl_query(nl, nl_sendbuf(nl), nl_link_get_cb, ret);
	if (!err && !ret->ifindex)
		err = -ENODEV;
	return err;
}

int nl_link_build_get_stats(void *buf, size_t buflen, int ifindex)
{
	struct nlb b;

	if (ifindex <= 0)
		return -EINVAL;
	nl_link_start(&b, buf, buflen, RTM_GETLINK, 0, ifindex);
	return nlb_end(&b); /* no RTEXT_FILTER_SKIP_STATS: the counters come along */
}

int nl_link_parse_stats(const struct nlmsghdr *nlh, struct nl_link_stats *ret)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	struct rtnl_link_stats64 st;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (nlh->nlmsg_type != RTM_NEWLINK)
		return -EBADMSG;
	err = nl_attrs(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	if (err)
		return err;
	if (!tb[IFLA_STATS64])
		return -ENODATA;
	/* older kernels send a shorter struct: take what there is, the rest stays 0 */
	memset(&st, 0, sizeof(st));
	memcpy(&st, mnl_attr_get_payload(tb[IFLA_STATS64]),
		MIN(sizeof(st), (size_t)mnl_attr_get_payload_len(tb[IFLA_STATS64])));
	ret->rx_bytes = st.rx_bytes;
	ret->tx_bytes = st.tx_bytes;
	ret->rx_packets = st.rx_packets;
	ret->tx_packets = st.tx_packets;
	return 0;
}

struct nl_link_stats_ctx {
	struct nl_link_stats *st;
	int err;
	bool seen;
};

static int nl_link_stats_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_link_stats_ctx *ctx = arg;

	ctx->err = nl_link_parse_stats(nlh, ctx->st);
	ctx->seen = true;
	return 0;
}

int nl_link_stats(struct nl *nl, int ifindex, struct nl_link_stats *ret)
{
	struct nl_link_stats_ctx ctx = {.st = ret};
	int err;

	memset(ret, 0, sizeof(*ret));
	err = nl_link_build_get_stats(nl_sendbuf(nl), NL_MSG_BUFSIZE, ifindex);
	if (err)
		return err;
	err = nl_query(nl, nl_sendbuf(nl), nl_link_stats_cb, &ctx);
	if (err)
		return err;
	return ctx.seen ? ctx.err : -ENODEV;
}

struct nl_link_dump_ctx {
	nl_link_cb cb;
	void *arg;
};

static int nl_link_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nl_link_dump_ctx *ctx = arg;
	struct nl_link l;
	int err;

	err = nl_link_parse(nlh, &l);
	if (err) {
		log_debug("netlink: link dump: bad message: %s", strerror(-err));
		return err;
	}
	return ctx->cb(&l, ctx->arg);
}

int nl_link_dump(struct nl *nl, nl_link_cb cb, void *arg)
{
	struct nl_link_dump_ctx ctx = {.cb = cb, .arg = arg};
	int err;

	err = nl_link_build_dump(nl_sendbuf(nl), NL_MSG_BUFSIZE);
	if (err)
		return err;
	return nl_dump(nl, nl_sendbuf(nl), nl_link_dump_cb, &ctx);
}

static int nl_link_send(struct nl *nl, int err)
{
	return err ? err : nl_request(nl, nl_sendbuf(nl));
}

int nl_link_change(struct nl *nl, const struct nl_link_change *c)
{
	return nl_link_send(nl, nl_link_build_change(nl_sendbuf(nl), NL_MSG_BUFSIZE, c));
}

int nl_link_set_up(struct nl *nl, int ifindex, bool up)
{
	struct nl_link_change c = {
		.ifindex = ifindex,
		.admin = up ? NL_LINK_UP : NL_LINK_DOWN,
	};

	return nl_link_change(nl, &c);
}

int nl_link_set_mtu(struct nl *nl, int ifindex, unsigned mtu)
{
	struct nl_link_change c = {.ifindex = ifindex, .mtu = mtu};

	if (!mtu)
		return -EINVAL;
	return nl_link_change(nl, &c);
}

int nl_link_set_mac(struct nl *nl, int ifindex, const uint8_t *mac, size_t len)
{
	struct nl_link_change c = {.ifindex = ifindex, .mac = mac, .mac_len = len};

	if (!mac)
		return -EINVAL;
	return nl_link_change(nl, &c);
}

int nl_link_add_veth(struct nl *nl, const char *name, const char *peer, int peer_netns_fd)
{
	return nl_link_send(
		nl, nl_link_build_veth(nl_sendbuf(nl), NL_MSG_BUFSIZE, name, peer, peer_netns_fd));
}

int nl_link_add_macvlan(struct nl *nl, const struct nl_macvlan *m)
{
	return nl_link_send(nl, nl_link_build_macvlan(nl_sendbuf(nl), NL_MSG_BUFSIZE, m));
}

int nl_link_del(struct nl *nl, int ifindex)
{
	return nl_link_send(nl, nl_link_build_del(nl_sendbuf(nl), NL_MSG_BUFSIZE, ifindex));
}
