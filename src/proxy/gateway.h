/*
 * gateway.h - go-dispatch-proxy's gateway mode: intercept a subnet's TCP and DNS, NAT
 * the rest, in table inet egress_gateway; save the ruleset before the first change and
 * put it back on request.
 */
#ifndef EGRESS_GATEWAY_H
#define EGRESS_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "module.h"

struct conf;
struct conf_gateway;
struct nft;
struct nft_buf;

#define GATEWAY_TABLE "egress_gateway"

/* The body of table inet egress_gateway for g (pure).  nat_ifname: resolved
 * nat_interface, or NULL for auto. */
void gateway_body(const struct conf_gateway *g, struct nft_buf *ret);

struct gateway_backup_info {
	bool exists;
	time_t timestamp; /* when the ruleset was saved */
	size_t size;	  /* bytes of the file */
};
/* Save the whole ruleset to path (atomically: a new temporary file, fsync, rename, fsync of
 * the directory) unless a backup is there already and our table is in place (an earlier
 * run's backup holds the state from before us: keep it).  The iptables-legacy tables are
 * read under the xtables lock (waited for up to 5 s). */
int gateway_backup(struct nft *nft, const char *path, char **err);
int gateway_backup_info(const char *path, struct gateway_backup_info *ret);
/*
 * Put the saved ruleset back in one transaction, except that egress's tables of the
 * other modules stay as they are now and table inet egress_gateway goes; then the saved
 * iptables-legacy tables, under the xtables lock.  What was in place before the restore is
 * saved to PATH.before-restore first; an earlier PATH.before-restore moves to
 * PATH.before-restore.1, .1 to .2 and so on, the oldest of five dropped.  If a table cannot
 * be put back, all of it is undone (a legacy table the restore brought into use stays,
 * empty: the kernel cannot unload it) and err says whether the undoing was complete.
 */
int gateway_restore(struct nft *nft, const char *path, char **err);

struct gateway_module;
struct event_base;
/* Called on the loop when the start failed after gateway_module_new() returned: the
 * backup before the first change could not be taken (the xtables lock stayed held). */
typedef void (*gateway_failed_cb)(void *arg);
/* conf borrowed until the next reconf/free; *ret is the caller's.  The first change waits
 * for the backup, which waits up to 5 s for the xtables lock on the loop (base): the
 * table comes later then, and failed_cb says if it never does. */
int gateway_module_new(struct event_base *base, const struct conf *conf,
	gateway_failed_cb failed_cb, void *arg, struct gateway_module **ret);
int gateway_module_reconf(struct gateway_module *m, const struct conf *conf);
/* Removes table inet egress_gateway and what tproxy needed, puts forwarding back. */
void gateway_module_free(struct gateway_module *m);

/* The module's description for the daemon's table (module.h). */
extern const struct module module_gateway;

#endif
