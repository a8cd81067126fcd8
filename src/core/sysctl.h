/*
 * sysctl.h - the kernel settings egressd changes (/proc/sys/net/...), and only through here.
 *
 * A module holds a setting at a value: the first hold writes it and logs the value it
 * replaces; a setting that already has the value is only counted.  Two modules holding the
 * same setting at the same value share it (a count); one holding it at another value is
 * refused.  When the last holder lets go, the old value is written back, newest setting
 * first - unless someone else changed it since we set it: then it is theirs, left as it is
 * and logged.  Keys are paths under /proc/sys ("net/ipv4/conf/eth1/rp_filter"); they are
 * logged as sysctl(8) names.
 *
 * Owners are opaque pointers (the module's object).  Everything runs on the loop thread.
 */
#ifndef EGRESS_SYSCTL_H
#define EGRESS_SYSCTL_H

#include <stdbool.h>

/*
 * Hold key at value for owner; why is logged with a change ("loose reverse-path filtering
 * on uplink isp1").  Holding what owner holds already only refreshes it (see
 * sysctl_sweep()).  0, -EBUSY if another owner holds key at another value, or the -errno
 * of reading or writing it (nothing held then).
 */
int sysctl_hold(const void *owner, const char *key, int value, const char *why);
/*
 * The same for settings of which there are many alike, one set per object (each device's
 * macvlan): the change and its end are logged at debug; the caller logs one line for the
 * object.  Failures are logged as sysctl_hold() logs them.
 */
int sysctl_hold_quiet(const void *owner, const char *key, int value, const char *why);
/* The value of key now, in *ret.  0 or -errno. */
int sysctl_read(const char *key, int *ret);
/* Let go of owner's hold on key (no-op if none): the last holder puts the old value back. */
void sysctl_release(const void *owner, const char *key);
/*
 * Mark-and-sweep for holds that follow a changing set (the uplinks' interfaces):
 * sysctl_mark() marks all of owner's holds stale, sysctl_hold() refreshes the ones still
 * wanted, sysctl_sweep() releases the rest.
 */
void sysctl_mark(const void *owner);
void sysctl_sweep(const void *owner);
/*
 * Let go of everything owner holds, newest first.  keep: leave the values as they are (a
 * dataplane kept in place needs them) and forget them.
 */
void sysctl_release_all(const void *owner, bool keep);

/* Tests: the directory standing in for /proc/sys (NULL: /proc/sys). */
void sysctl_set_root(const char *dir);

#endif
