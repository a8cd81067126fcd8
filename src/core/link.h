/*
 * link.h - follow the kernel's links for the uplink model.
 *
 * Dumps the links once and then follows RTM_NEWLINK/RTM_DELLINK events, so
 * each uplink knows whether its interface exists and is up with carrier.
 */
#ifndef EGRESS_LINK_H
#define EGRESS_LINK_H

struct event_base;
struct uplink_set;
struct link_watch;

/* Watch links for set (borrowed; must outlive the watch). *ret is the caller's. */
int link_watch_new(struct event_base *base, struct uplink_set *set, struct link_watch **ret);
void link_watch_free(struct link_watch *w);
/* Dump again, e.g. after a reload brought new interface names. */
int link_watch_refresh(struct link_watch *w);

#endif
