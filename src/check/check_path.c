/*
 * check_path.c - why an uplink's probes time out when they never had a chance: the
 * kernel is asked how a probe leaves (its interface, mark and source, as check_sock.c
 * sends it) and, for IPv4, whether a reply from the target arriving on that interface
 * would pass the reverse-path check (an input route lookup with RTA_IIF, which the kernel
 * fails with -EINVAL when rp_filter drops).  The reply is assumed to carry the probe's
 * mark, as the policy module's table restores it; the kernel uses it only where
 * src_valid_mark is on, as it would for the real reply.
 *
 * Asked only when an uplink goes down on timeouts.  Must not change anything.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "check_int.h"
#include "nl.h"
#include "sysctl.h"
#include "util.h"

/* The reverse-path filtering in force on ifname: the higher of all's and its own. */
static int rp_filter_of(const char *ifname)
{
	char key[96];
	int all = 0, own = 0;

	snprintf(key, sizeof(key), "net/ipv4/conf/%s/rp_filter", ifname);
	(void)sysctl_read("net/ipv4/conf/all/rp_filter", &all);
	(void)sysctl_read(key, &own);
	return MAX(all, own);
}

static int path_why(struct nl *nl, const struct check_uplink *cu, const struct check_target *t,
	char *buf, size_t len)
{
	const struct uplink *u = cu->u;
	struct nl_route_query q = {.dst = t->addr, .oif = u->ifindex, .mark = u->check.mark};
	struct nl_route out, in;
	char dst[ADDR_STRLEN], src[ADDR_STRLEN], via[IFNAMSIZ + 16] = "", ifname[IF_NAMESIZE];
	int r;

	addr_str(&t->addr, dst, sizeof(dst));
	if (u->ifname[0])
		snprintf(via, sizeof(via), " through %s", u->ifname);
	if (u->source.family == t->addr.family)
		q.src = u->source;
	r = nl_route_lookup(nl, &q, &out);
	if (r < 0) {
		snprintf(buf, len, "no route to %s%s: %s", dst, via, strerror(-r));
		return 1;
	}
	/* IPv4 bound to a device without a route: the kernel takes the target as on-link */
	if (t->addr.family == AF_INET && !out.table && !addr_is_set(&out.gw)) {
		snprintf(buf, len, "no route to %s%s (sent to the link as if it were on it)", dst,
			via);
		return 1;
	}
	if (t->addr.family != AF_INET || !out.oif || !addr_is_set(&out.prefsrc))
		return 0;
	q = (struct nl_route_query){.dst = out.prefsrc, .src = t->addr, .iif = out.oif,
		.mark = u->check.mark};
	r = nl_route_lookup(nl, &q, &in);
	if (r >= 0)
		return 0;
	addr_str(&out.prefsrc, src, sizeof(src));
	if (!if_indextoname((unsigned)out.oif, ifname))
		snprintf(ifname, sizeof(ifname), "#%d", out.oif);
	if (r == -EINVAL && rp_filter_of(ifname) > 0)
		snprintf(buf, len, "no route back from %s to %s: rp_filter on %s would drop its replies",
			dst, src, ifname);
	else
		snprintf(buf, len, "replies from %s to %s on %s would be dropped: %s", dst, src,
			ifname, strerror(-r));
	return 1;
}

int check_path_why(const struct check_uplink *cu, const struct check_target *t, char *buf,
	size_t len)
{
	struct nl *nl;
	int r = nl_open(NETLINK_ROUTE, &nl);

	if (r < 0)
		return r;
	r = path_why(nl, cu, t, buf, len);
	nl_free(nl);
	return r;
}
