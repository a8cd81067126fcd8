/*
 * link.c - the link watcher: netlink link dump and events -> uplink model.
 *
 * Must not change any link: it only reads.
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>

#include "link.h"
#include "log.h"
#include "nl.h"
#include "uplink.h"
#include "util.h"

/* <net/if.h> stops at IFF_DYNAMIC; <linux/if.h> clashes with it. */
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

struct link_watch {
	struct uplink_set *set;
	struct nl *nl;
	struct nl_monitor *mon;
	bool *seen; /* per uplink, during a dump */
	size_t n_seen;
};

static bool link_is_up(const struct nl_link *l)
{
	return (l->flags & IFF_UP) && (l->flags & IFF_LOWER_UP);
}

static void link_update(struct link_watch *w, const struct nl_link *l, bool gone)
{
	struct uplink_set *set = w->set;

	for (size_t i = 0; i < set->n; i++) {
		struct uplink *u = set->v[i];
		if (!u->ifname[0])
			continue;
		if (streq(u->ifname, l->name)) {
			if (i < w->n_seen)
				w->seen[i] = true;
			uplink_set_link(set, u->ifname, gone ? 0 : l->ifindex, !gone && link_is_up(l));
		} else if (u->ifindex == l->ifindex) {
			/* renamed away from the name the uplink uses */
			uplink_set_link(set, u->ifname, 0, false);
		}
	}
}

static int link_dump_cb(const struct nl_link *l, void *arg)
{
	link_update(arg, l, false);
	return 0;
}

int link_watch_refresh(struct link_watch *w)
{
	int r;

	free(w->seen);
	w->n_seen = w->set->n;
	w->seen = xcalloc(w->n_seen + 1, sizeof(*w->seen));
	r = nl_link_dump(w->nl, link_dump_cb, w);
	if (r < 0) {
		log_warnx("netlink: link dump: %s", strerror(-r));
		return r;
	}
	for (size_t i = 0; i < w->n_seen && i < w->set->n; i++) {
		struct uplink *u = w->set->v[i];
		if (u->ifname[0] && !w->seen[i])
			uplink_set_link(w->set, u->ifname, 0, false);
	}
	return 0;
}

static void link_event_cb(const struct nl_event *ev, void *arg)
{
	struct link_watch *w = arg;

	if (ev->type == NL_EVENT_RESYNC) {
		log_warnx("netlink: link events were lost; dumping the links again");
		link_watch_refresh(w);
		return;
	}
	if (ev->type != NL_EVENT_LINK)
		return;
	log_debug("netlink: link %s index %d flags 0x%x%s", ev->link.name, ev->link.ifindex,
		ev->link.flags, ev->del ? " deleted" : "");
	w->n_seen = 0; /* not during a dump */
	link_update(w, &ev->link, ev->del);
}

int link_watch_new(struct event_base *base, struct uplink_set *set, struct link_watch **ret)
{
	struct link_watch *w = xcalloc(1, sizeof(*w));
	int r;

	w->set = set;
	r = nl_open(NETLINK_ROUTE, &w->nl);
	if (r < 0)
		goto fail;
	/* Subscribe before the dump so no change falls between the two. */
	r = nl_monitor_new(base, NL_GROUP_LINK, link_event_cb, w, &w->mon);
	if (r < 0)
		goto fail;
	r = link_watch_refresh(w);
	if (r < 0)
		goto fail;
	*ret = w;
	return 0;
fail:
	link_watch_free(w);
	return r;
}

void link_watch_free(struct link_watch *w)
{
	if (!w)
		return;
	nl_monitor_free(w->mon);
	nl_free(w->nl);
	free(w->seen);
	free(w);
}
