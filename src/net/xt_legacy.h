/*
 * xt_legacy.h - the legacy x_tables of iptables-legacy and ip6tables-legacy, saved and put
 * back whole through the kernel's own socket options (IPT_SO_GET_INFO/GET_ENTRIES,
 * IPT_SO_SET_REPLACE/SET_ADD_COUNTERS and their IPv6 twins).
 *
 * We never write rules here: this is the "before we touched anything" snapshot that gateway
 * mode's backup promises, for hosts whose firewall still lives in iptables-legacy.  A saved
 * table is the kernel's blob as it was handed out (rules, chains, policies, counters) and goes
 * back through the same validation the kernel applies to iptables-legacy-restore.
 */
#ifndef EGRESS_XT_LEGACY_H
#define EGRESS_XT_LEGACY_H

#include <stddef.h>

/* XT_TABLE_MAXNAMELEN and NF_INET_NUMHOOKS, without the kernel headers (which clash with
 * <netinet/in.h> when included after it) */
#define XT_LEGACY_NAMELEN 32
#define XT_LEGACY_HOOKS	  5

struct xt_legacy_table {
	int family; /* AF_INET or AF_INET6 */
	char name[XT_LEGACY_NAMELEN];
	unsigned int valid_hooks;
	unsigned int hook_entry[XT_LEGACY_HOOKS];
	unsigned int underflow[XT_LEGACY_HOOKS];
	unsigned int num_entries;
	unsigned int size;
	unsigned char *entries; /* size bytes, as the kernel hands them out */
};

void xt_legacy_table_clear(struct xt_legacy_table *t);
void xt_legacy_tables_free(struct xt_legacy_table *v, size_t n);

/*
 * Every table of both families that is in use in this network namespace (listed in
 * /proc/net/ip{,6}_tables_names; none is created by asking).  0 with *n = 0 where the
 * kernel has no legacy x_tables at all.  A table larger than a backup line may hold
 * (-EFBIG) is an error; err (may be NULL) names the table and says why.
 */
int xt_legacy_save_all(struct xt_legacy_table **ret, size_t *n, char **err);
/* One table as it is now (created by the kernel if it can be and is not yet). */
int xt_legacy_get(int family, const char *name, struct xt_legacy_table *ret);
/* Replace the table's rules with t's and give them t's counters back; err says why not. */
int xt_legacy_replace(const struct xt_legacy_table *t, char **err);

/*
 * iptables-legacy's lock: flock(LOCK_EX) on /run/xtables.lock (or $XTABLES_LOCKFILE), which
 * it holds across its own read-modify-write of a table.  Hold it across a save, or across a
 * restore and its rollback, so neither lands halfway through someone else's change.
 * Waits up to 5 s for it, then fails (-EBUSY, err names the file).  0 with *fd = -1 where
 * the kernel has no legacy x_tables (no lock file is made there).
 */
int xt_legacy_lock(int *fd, char **err);
void xt_legacy_unlock(int fd);

/*
 * The same lock in steps, for a caller on an event loop that must not sleep: open the lock
 * file (0 with *fd = -1 where the kernel has no legacy x_tables; xt_legacy_unlock() closes
 * it), then try to take it without waiting: 0 taken (also for fd -1), -EWOULDBLOCK held by
 * another program (try again in XT_LOCK_POLL_MS, give up after XT_LOCK_WAIT_MS with
 * xt_legacy_lock_held_error()'s text), another -errno with err set.
 */
#define XT_LOCK_WAIT_MS 5000
#define XT_LOCK_POLL_MS 50
int xt_legacy_lock_open(int *fd, char **err);
int xt_legacy_lock_try(int fd, char **err);
/* The lock file: $XTABLES_LOCKFILE or /run/xtables.lock. */
const char *xt_legacy_lock_path(void);
/* "the xtables lock PATH is held by another program ...; gave up after 5 s" (caller frees). */
char *xt_legacy_lock_held_error(void);

/*
 * One table as one line of text, "# xt-legacy FAMILY NAME HOOKS ENTRIES SIZE H,H,H,H,H
 * U,U,U,U,U BASE64" with FAMILY ipv4 or ipv6 (a comment to nft, so a backup file stays
 * something `nft -f` reads).  Caller frees.
 */
char *xt_legacy_format(const struct xt_legacy_table *t);
#define XT_LEGACY_PREFIX "# xt-legacy "
/*
 * Parse one such line (len bytes, no newline) and check that its entries walk exactly to
 * its size; 0 or -EBADMSG with *err naming what is wrong (caller frees).
 */
int xt_legacy_parse(const char *line, size_t len, struct xt_legacy_table *ret, char **err);

#endif
