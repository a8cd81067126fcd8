/*
 * resolver_core.h - egress-server's resolver without its I/O: the domain entries it knows,
 * what each resolved to, when each is resolved next, which addresses are in their grace
 * period, and what each entry publishes.
 *
 * resolver.c lends it the store and evdns through struct rsv_ops and a clock: every
 * function takes `now`, monotonic milliseconds.  tests/unit/test_resolver.c drives it with
 * a fake clock and canned answers.
 *
 * The rules:
 *  - A round runs every `interval`: it asks ops->leader() and, while this replica leads,
 *    lists the domain entries (so that entries added or deleted through another replica
 *    are seen too).  A replica that does not lead forgets every domain and asks again
 *    after min(interval, 5 s).
 *  - A domain is resolved (A and AAAA together) as soon as it is known, then again after
 *    min(interval, TTL clamped to [ttl_min, ttl_max]), TTL the lowest of its answers'
 *    (a negative answer's TTL does not count).  After a failed query (timeout, SERVFAIL,
 *    REFUSED...) it is tried again after ttl_min, doubled for each failure in a row, at
 *    most interval.  Domains due within a second of each other are resolved together.
 *  - An address an answer gives is published unless al_dst_refused() refuses it (the
 *    status lists it and why).  Its record expires after its TTL clamped.
 *  - An address a later answer of its family no longer gives (or NXDOMAIN, or no record
 *    of that family) has left DNS: it stays published for `grace`, then goes.  One whose
 *    record expired with no answer to confirm it (queries failing) stays for `grace`
 *    after its expiry.  An answer that gives it again brings it back.
 *  - At most `concurrency` domains are being resolved at once; the others wait.
 *  - What an entry publishes goes to ops->publish() when it changes (retried after
 *    ttl_min when that fails).  When it starts leading, the resolver adopts what the
 *    store publishes for each entry as expired records: they stay for `grace` unless DNS
 *    confirms them, so a restart or a change of leader drops no address at once.
 *
 * Must not read a clock or touch a socket or the store other than through ops.
 */
#ifndef EGRESS_RESOLVER_CORE_H
#define EGRESS_RESOLVER_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cidr.h"

/* How a query ended. */
enum rsv_rcode {
	RSV_ANSWER,   /* addresses */
	RSV_NODATA,   /* the name has no record of the family */
	RSV_NXDOMAIN, /* the name does not exist */
	RSV_FAILED,   /* no answer: timeout, SERVFAIL, REFUSED, ... */
	_RSV_RCODE_MAX,
};

struct rsv_answer {
	enum rsv_rcode rcode;
	const char *error;	  /* RSV_FAILED: what failed ("request timed out"); borrowed */
	const struct addr *addrs; /* RSV_ANSWER (borrowed); addresses of another family are
				   * ignored */
	size_t n;
	uint32_t ttl;		  /* seconds: the lowest TTL of the answer's records */
};

struct rsv_opts {
	uint32_t interval_ms;
	uint32_t ttl_min_ms;
	uint32_t ttl_max_ms;
	uint32_t grace_ms;
	unsigned concurrency; /* at least 1 */
};

/* One family of one domain being resolved: the core's, handed to the I/O as a token. */
struct rsv_query;

/* What the core asks of its I/O; arg is rsv_new()'s. */
struct rsv_ops {
	/* Should this replica resolve now (store_leader())? */
	bool (*leader)(void *arg);
	/* cb(ctx, id, name) for every domain entry; cb's nonzero return stops it.  0 or
	 * -errno (the round keeps the domains it knew then). */
	int (*entries)(void *arg, int (*cb)(void *ctx, int64_t entry, const char *name),
		void *ctx);
	/* What the store publishes for entry now, malloc'd into *ret (NULL when none). */
	int (*published)(void *arg, int64_t entry, struct addr **ret, size_t *n_ret);
	/* Publish exactly these addresses for entry (borrowed).  -ENOENT: entry is gone. */
	int (*publish)(void *arg, int64_t entry, const struct addr *addrs, size_t n);
	/*
	 * Ask for name's addresses of family (AF_INET: A, AF_INET6: AAAA).  The answer comes
	 * through rsv_answer(q, ...) later, never from inside this call.  *ret_io: the I/O's
	 * handle for cancel.  0 or -errno (then no answer comes).
	 */
	int (*query)(void *arg, struct rsv_query *q, const char *name, int family,
		void **ret_io);
	/* Forget the query with handle io: rsv_answer() must not be called for it. */
	void (*cancel)(void *arg, void *io);
};

struct rsv;

/* o and ops are copied; arg is lent to every op.  The first rsv_run() starts a round. */
struct rsv *rsv_new(const struct rsv_opts *o, const struct rsv_ops *ops, void *arg);
/* Cancels what is in flight; NULL-safe. */
void rsv_free(struct rsv *r);
/* New settings: they apply from now on (a later next resolution is brought forward). */
void rsv_set_opts(struct rsv *r, const struct rsv_opts *o, uint64_t now);

/*
 * Do what is due at now: a round, addresses whose grace ended, domains to resolve.
 * Returns when to call it next (monotonic ms, after now).
 */
uint64_t rsv_run(struct rsv *r, uint64_t now);
/*
 * The answer to q (which the call frees).  Returns a time by which rsv_run() must run
 * (the domain's next resolution or removal), to be taken with the last one it returned.
 */
uint64_t rsv_answer(struct rsv *r, struct rsv_query *q, const struct rsv_answer *a,
	uint64_t now);

/* Entry `entry` (named name) was added here: resolve it on the next rsv_run(). */
void rsv_entry_added(struct rsv *r, int64_t entry, const char *name, uint64_t now);
/* Entry `entry` was deleted (the store removed what it published): forget it. */
void rsv_entry_deleted(struct rsv *r, int64_t entry);

/* Does this replica lead (as of the last round)? */
bool rsv_leading(const struct rsv *r);

/*
 * Status for the API (see resolver_entry_status() in server.h), times in ISO 8601 UTC:
 * wall_off_ms is the wall clock minus the monotonic one.  NULL when the entry is not a
 * domain this replica resolves.  New reference.
 */
json_t *rsv_entry_status(struct rsv *r, int64_t entry, uint64_t now, int64_t wall_off_ms);
/* {"leader", "domains", "resolving", "waiting", "failing", "publishing_nothing",
 * "last_round", "next_round"}.  New reference. */
json_t *rsv_status(struct rsv *r, uint64_t now, int64_t wall_off_ms);

#endif
