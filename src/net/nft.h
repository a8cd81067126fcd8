/*
 * nft.h - egress's nftables layer over libnftables.
 *
 * Every rule egress installs lives in tables of its own: `inet egress`, and tables named
 * `egress*` in other families where a family needs them.  This layer enforces that: it refuses
 * to create, replace, delete or change a table whose name does not start with "egress", never
 * flushes anything else, and applies a whole table in ONE transaction, so the kernel commits
 * all of it or none of it.  Tables can be read back as text (golden tests) or JSON.
 *
 * It must not log above debug, must not run the nft binary, and must not touch tables it does
 * not own; the only exception is the explicit backup/restore pair nft_ruleset_dump() /
 * nft_ruleset_restore(), which works on the whole ruleset because that is what it is for.
 *
 * All functions return 0 (or a count/boolean where documented) or -errno:
 *   -EPERM   a table name that is not ours (nothing was sent to the kernel);
 *   -EINVAL  bad arguments, or text libnftables rejected (syntax or evaluation error);
 *   -Exxx    the errno the kernel gave when it rejected the transaction ("Could not process
 *            rule: <strerror>"), e.g. -ENOENT for a jump to a missing chain, -ENFILE for a
 *            full set.
 * On failure, *err (when the function takes one) is set to a malloc'd, NUL-terminated
 * message the caller frees: libnftables' own error text (with the offending line and a caret)
 * or ours.  On success *err is NULL.  err may be NULL if the caller does not want the text.
 *
 * A struct nft is not thread-safe; use one per thread.  It is bound to the network namespace
 * that was current when nft_new() ran (libnftables opens its netlink socket there), so create
 * it after entering the namespace it should manage.  One struct nft serves any number of calls:
 * libnftables re-validates its cache against the kernel's generation id on every command.
 */
#ifndef EGRESS_NFT_H
#define EGRESS_NFT_H

#include <stdarg.h>
#include <stddef.h>

#include <jansson.h>

#include "log.h"

/* Prefix every table of ours carries. */
#define NFT_TABLE_PREFIX "egress"

struct nft;

/* A new context in the current network namespace; NULL if libnftables fails (-ENOMEM). */
struct nft *nft_new(void);
/* Frees nft and its libnftables context; accepts NULL. */
void nft_free(struct nft *nft);

/*
 * Family names nftables accepts in `table FAMILY NAME`.  nft_family_valid() says whether
 * family is one of them; nft_table_name_check() returns 0 for a valid name of ours, -EPERM for
 * a valid name without the egress prefix and -EINVAL for a name nft would not parse as an
 * identifier.
 */
int nft_family_valid(const char *family);
int nft_table_name_check(const char *name);

/*
 * Replace table `family name` with `body` (the text that goes inside `table FAMILY NAME { }`)
 * in one transaction:
 *	add table F N
 *	delete table F N
 *	table F N {
 *	<body>
 *	}
 * On failure the running table is unchanged.  body is borrowed; its braces must balance (so it
 * cannot close our table and open someone else's) and it may not `include` files: -EINVAL
 * otherwise.  Counters and set elements not in body start from zero/absent: this is a
 * replacement, not a merge.
 */
int nft_table_apply(struct nft *nft, const char *family, const char *name, const char *body,
	char **err);
/*
 * The same for a table made from old (a body, borrowed) by one of these calls, but the sets
 * named in keep[] (NULL-terminated, borrowed) stay as they are, their elements and what is
 * left of their timeouts included: body must not declare them.  One transaction flushes the
 * table's rules, deletes the chains, sets and maps old declares but the kept ones, and adds
 * body.  -ENOENT if old does not declare a set of keep[]; if the table is not what old made,
 * the kernel may refuse (a missing chain: -ENOENT).  Nothing changes on failure.
 */
int nft_table_apply_keep(struct nft *nft, const char *family, const char *name, const char *old,
	const char *body, const char *const *keep, char **err);
/* Validate the same text as nft_table_apply() with libnftables' dry run: the kernel sees the
 * transaction and aborts it, so kernel-side errors (missing chain, full set) are caught too.
 * Nothing changes. */
int nft_table_check(struct nft *nft, const char *family, const char *name, const char *body,
	char **err);
/* Delete table `family name` (`add table` + `delete table` in one transaction); absent -> 0. */
int nft_table_delete(struct nft *nft, const char *family, const char *name, char **err);
/* 1 if table `family name` exists, 0 if not, -errno.  Works for any name (read-only). */
int nft_table_exists(struct nft *nft, const char *family, const char *name);

/* Flags of nft_table_list(). */
enum nft_list_flags {
	NFT_LIST_STATELESS = 1 << 0, /* counters/quotas without their values (golden tests) */
	NFT_LIST_HANDLES = 1 << 1,   /* "# handle N" comments */
	NFT_LIST_TERSE = 1 << 2,     /* omit set elements */
	NFT_LIST_NUMERIC = 1 << 3,   /* protocols, priorities, symbols and times as numbers */
};

/*
 * `list table family name` as text in *ret (malloc'd, caller frees).  Without flags the text is
 * what `nft list table` prints: tabs, no handles, stable for the same ruleset.  Works for any
 * name (read-only).  -ENOENT if the table does not exist.
 */
int nft_table_list(struct nft *nft, const char *family, const char *name, unsigned flags,
	char **ret);
/* The same as libnftables JSON ({"nftables": [...]}); *ret is a new reference, caller
 * json_decref()s it.  -ENOENT if absent, -EBADMSG if the output does not parse. */
int nft_table_list_json(struct nft *nft, const char *family, const char *name, json_t **ret);

/*
 * `list set family table set` as libnftables JSON, the set's elements with their remaining
 * timeouts included; *ret is a new reference, caller json_decref()s it.  Read-only, any name.
 * -ENOENT if the table or the set does not exist, -EBADMSG if the output does not parse.
 */
int nft_set_list_json(struct nft *nft, const char *family, const char *table, const char *set,
	json_t **ret);

/*
 * Run cmds (nft syntax, commands separated by newlines or ';') in one transaction; their
 * output, if any, is discarded.  Every command must name one of our tables:
 * `[add|create|insert|replace|delete|destroy|flush|reset|rename] OBJECT [FAMILY] egress...`, or an
 * implicit add such as `table inet egress { ... }`.  Anything else (`flush ruleset`, a foreign
 * table, `list`, `include`, `define`, JSON input) is refused with -EPERM/-EINVAL before anything
 * is sent.  This check is a safety net for trusted callers, not a sandbox.  cmds is borrowed.
 */
int nft_run(struct nft *nft, const char *cmds, char **err);
/* The same check alone: 0 if nft_run() would send cmds, -EPERM/-EINVAL (and *err) if not. */
int nft_cmds_check_owned(const char *cmds, char **err);

/* Whole ruleset as `list ruleset` prints it (with counter values, no handles) in *ret
 * (malloc'd, caller frees); for backup files. */
int nft_ruleset_dump(struct nft *nft, char **ret);
/*
 * Does the kernel have nftables flowtables (CONFIG_NF_FLOW_TABLE)?  Tries one in a throwaway
 * table (egress_probe, created and deleted in one transaction).  1 yes, 0 no (*err: the
 * kernel's answer), or another negative errno when the probe itself failed.
 */
int nft_flowtable_probe(struct nft *nft, char **err);
/* `flush ruleset` + text in ONE transaction: on failure the old ruleset stays.  Only for the
 * explicit backup/restore feature.  text is borrowed. */
int nft_ruleset_restore(struct nft *nft, const char *text, char **err);

/*
 * A growable text buffer for building large bodies (100 000 set elements is a few MB).
 * Embedded object: nft_buf_init() / nft_buf_clear() (after which it may be reused).  Allocation
 * failure is fatal (xrealloc).  buf->data is always NUL-terminated after init; the buffer owns
 * it.
 */
struct nft_buf {
	char *data;
	size_t len;
	size_t cap;
};

void nft_buf_init(struct nft_buf *buf);
void nft_buf_clear(struct nft_buf *buf);
/* Empty the buffer, keeping its memory. */
void nft_buf_reset(struct nft_buf *buf);
void nft_buf_add(struct nft_buf *buf, const char *s);
void nft_buf_printf(struct nft_buf *buf, const char *fmt, ...) LOG_PRINTF(2, 3);
void nft_buf_vprintf(struct nft_buf *buf, const char *fmt, va_list ap) LOG_PRINTF(2, 0);
/* Hand the text over to the caller (who frees it) and leave buf empty and initialised. */
char *nft_buf_steal(struct nft_buf *buf);

#endif
