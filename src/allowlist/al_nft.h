/*
 * al_nft.h - the allowlist's nftables table: what the gateway agent enforces.
 *
 * Table `inet egress_allowlist` of our own (the policy module owns `inet egress`):
 *
 *   clients4/6   the configured client subnets (interval sets)
 *   dst4/6       addresses allowed to every client, any protocol and port (a hash set,
 *                per-element counters)
 *   net4/6       prefixes allowed the same way (intervals, counters; a prefix inside
 *                another one is left out: the kernel refuses overlapping intervals)
 *   lim4/6       source . destination . protocol . port, for entries limited to sources,
 *                a protocol or ports (interval concatenations, counters)
 *   dns4/6       addresses learned from DNS answers for allowed names (timeouts, counters)
 *   dnslim4/6    the same for limited names (concatenation, intervals, timeouts, counters)
 *   drops4/6     per-client drop counters (dynamic, bounded)
 *
 * A forward chain sends what comes from a client subnet through those sets: allowed goes on,
 * everything else is counted per client and dropped (fail closed).  Every packet is looked
 * up, so a deleted entry cuts its connections too.  With nat, what clients send out is
 * masqueraded (it is only what was allowed: the rest never leaves the forward hook).
 *
 * Counters map back to the key of the item that put each element there ("42",
 * "42/203.0.113.7") through the elements kept here, not through element comments (a
 * comment each cost a third of a 100 000 element transaction).  Changes are computed as the
 * difference between what is installed and what the items ask for and sent as ONE
 * transaction; the same items twice send nothing.  Must not log (the module does) or touch
 * any other table.
 */
#ifndef EGRESS_AL_NFT_H
#define EGRESS_AL_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "al_entry.h"
#include "cidr.h"
#include "conf.h"

#define AL_NFT_FAMILY "inet"
#define AL_NFT_TABLE "egress_allowlist"

struct nft;
struct al_nft;

struct al_nft_conf {
	struct cidr_list clients; /* borrowed: the client subnets (both families) */
	bool nat;		  /* masquerade what clients send out */
	uint32_t drops_max;	  /* clients whose drops are counted apart; 0: 65536 */
};

/* A new table manager over nft (borrowed, must outlive it).  Nothing is sent yet. */
struct al_nft *al_nft_new(struct nft *nft);
/* Forget the state; the table stays in the kernel (al_nft_remove() takes it out). */
void al_nft_free(struct al_nft *n);

/*
 * Replace the table in one transaction with c and the elements of items (n_items, borrowed,
 * sorted by key with strcmp): what a start does, and the way back after a failed change.
 * Counters start from zero; learned addresses are forgotten.  0 or -errno with *err
 * (malloc'd, the caller's).
 */
int al_nft_start(struct al_nft *n, const struct al_nft_conf *c, const struct al_item *items,
	size_t n_items, char **err);
/* A new configuration: chains and client sets are replaced, element sets kept (counters,
 * learned addresses and all), in one transaction.  Needs a started table. */
int al_nft_reconf(struct al_nft *n, const struct al_nft_conf *c, char **err);
/*
 * Make the table enforce items (sorted by key, borrowed): the elements that differ are
 * added and deleted in one transaction, learned addresses of names no longer allowed go
 * with them.  *changed_ret (may be NULL): elements added plus deleted (0: nothing sent).
 * On failure nothing changed.  Items whose destination al_dst_refused() are the caller's
 * to leave out.
 */
int al_nft_apply(struct al_nft *n, const struct al_item *items, size_t n_items,
	size_t *changed_ret, char **err);

/* An address a DNS answer gave for a name item. */
struct al_nft_learn {
	const struct al_item *item; /* an AL_ITEM_NAME item of the last apply (borrowed) */
	struct addr addr;
	uint32_t timeout_s; /* how long it stays (>= 1) */
};
/*
 * Add learned addresses in one transaction (with their timeouts; an address already there
 * for longer is left alone).  *added_ret (may be NULL): elements sent.  0 or -errno with
 * *err.
 */
int al_nft_learn(struct al_nft *n, const struct al_nft_learn *v, size_t cnt, size_t *added_ret,
	char **err);

/* Delete the table.  0 or -errno with *err. */
int al_nft_remove(struct al_nft *n, char **err);

/* Elements installed (learned ones not included), and learned ones not yet expired. */
size_t al_nft_count(const struct al_nft *n);
size_t al_nft_learned(const struct al_nft *n);

/*
 * The counters of the kernel's elements: cb(key, destination text, packets, bytes, arg) for
 * each element of the dst, lim, dns and dnslim sets, and drop_cb(client text, packets,
 * bytes, arg) for each client of drops4/6.  Either cb may be NULL.  0 or -errno.
 */
typedef void (*al_nft_counter_cb)(const char *key, const char *dst, uint64_t packets,
	uint64_t bytes, void *arg);
typedef void (*al_nft_drop_cb)(const char *client, uint64_t packets, uint64_t bytes, void *arg);
int al_nft_counters(struct al_nft *n, al_nft_counter_cb cb, al_nft_drop_cb drop_cb, void *arg);

/* Pure, for tests: the table body al_nft_start() sends for c and items (malloc'd). */
char *al_nft_body(const struct al_nft_conf *c, const struct al_item *items, size_t n_items);

#endif
