/*
 * ddns_int.h - what the DDNS module (ddns.c) and its providers (ddns_dynu.c,
 * ddns_rfc2136.c) share.
 *
 * A provider publishes a whole set of addresses under one name: the records of the name
 * become exactly that set (A for IPv4, AAAA for IPv6).  One update runs at a time; it
 * ends with the done callback, exactly once, unless cancelled.  A provider logs nothing:
 * what went wrong comes back as a message (which never holds a secret).
 *
 * Must not be included outside src/ddns/.
 */
#ifndef EGRESS_DDNS_INT_H
#define EGRESS_DDNS_INT_H

#include <stdint.h>

#include "ddns_conf.h"
#include "ddns_ip.h"

struct curl_loop;
struct event_base;

/* err: 0 or -errno; msg: what went wrong ("" on success), borrowed for the call. */
typedef void (*ddns_done_cb)(void *arg, int err, const char *msg);

/* ddns_dynu.c: DynuDNS API v2 over libcurl (the calls gateway-route-manager makes). */
struct ddns_dynu;
/* key (copied) is the API key; c and loop are borrowed and outlive it. */
int ddns_dynu_new(struct curl_loop *loop, const struct conf_ddns *c, const char *key,
	struct ddns_dynu **ret);
void ddns_dynu_free(struct ddns_dynu *d);
/* Make the name's records want (copied); -EBUSY while one runs. */
int ddns_dynu_update(struct ddns_dynu *d, const struct ddns_set *want, ddns_done_cb cb,
	void *arg);
void ddns_dynu_cancel(struct ddns_dynu *d);

/* ddns_rfc2136.c: a DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945), built by ldns. */
struct ddns_rfc2136;
/* secret (copied) is the key's base64; c is borrowed for the call. -EINVAL: bad names. */
int ddns_rfc2136_new(struct event_base *base, const struct conf_ddns *c, const char *secret,
	struct ddns_rfc2136 **ret);
void ddns_rfc2136_free(struct ddns_rfc2136 *r);
int ddns_rfc2136_update(struct ddns_rfc2136 *r, const struct ddns_set *want, ddns_done_cb cb,
	void *arg);
void ddns_rfc2136_cancel(struct ddns_rfc2136 *r);

#endif
