/*
 * dnswatch.h - DNS answers as the forwarder passes them, for whoever wants the
 * addresses at once (the allowlist agent admits an allowed name's addresses before its
 * answer reaches the client).
 *
 * The daemon owns one watch and lends it to every module (struct module_env.dnswatch).
 * The dns module calls dnswatch_answer() for each answer it is about to send, from its
 * upstream or its cache, synchronously, before sending it; subscribers run inside that
 * call and must be quick (one nftables transaction at most).  Core: names no module.
 */
#ifndef EGRESS_DNSWATCH_H
#define EGRESS_DNSWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

struct dnswatch;

struct dnswatch_addr {
	struct addr addr; /* an A or AAAA record's */
	uint32_t ttl;	  /* seconds, as the client will see it */
};

/*
 * One answer: names are the query name then each CNAME target in order (lower-case, no
 * trailing dot); addrs the A/AAAA records at the end of that chain.  client is the
 * address that asked.  All borrowed for the call.
 */
struct dnswatch_answer {
	const char *const *names;
	size_t n_names;
	const struct dnswatch_addr *addrs;
	size_t n_addrs;
	const struct addr *client;
};

typedef void (*dnswatch_cb)(void *arg, const struct dnswatch_answer *a);

int dnswatch_new(struct dnswatch **ret);
void dnswatch_free(struct dnswatch *w);
/* 0, -ENOMEM, -EEXIST (the same cb and arg twice). */
int dnswatch_subscribe(struct dnswatch *w, dnswatch_cb cb, void *arg);
void dnswatch_unsubscribe(struct dnswatch *w, dnswatch_cb cb, void *arg);
/*
 * Does anyone listen?  (The dns module skips parsing answers when nobody does.)  The one
 * call that any thread may make: the DNS workers ask it; everything else is the loop's.
 */
bool dnswatch_wanted(const struct dnswatch *w);
void dnswatch_answer(struct dnswatch *w, const struct dnswatch_answer *a);

#endif
