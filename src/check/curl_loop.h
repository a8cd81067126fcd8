/*
 * curl_loop.h - libcurl's multi interface on the one libevent loop, shared by the HTTP(S)
 * health checks (check_http.c) and the DDNS module (public addresses, DynuDNS).
 *
 * curl tells us which sockets to watch and when to wake it (curl_multi_socket_action); we
 * tell it what happened and hand each finished transfer to its owner's callback.  A
 * transfer is a struct curl_xfer the caller owns (usually inside its own state), with an
 * easy handle the caller set up; CURLOPT_PRIVATE is ours.
 *
 * Must not set any option of a transfer but CURLOPT_PRIVATE, nor log.
 */
#ifndef EGRESS_CURL_LOOP_H
#define EGRESS_CURL_LOOP_H

#include <stdbool.h>

#include <curl/curl.h>

struct event_base;
struct curl_loop;
struct curl_xfer;

/* A transfer ended (res: how); it is off the multi handle already and may be re-added or
 * freed from here. */
typedef void (*curl_xfer_done_cb)(struct curl_xfer *x, CURLcode res, void *arg);

struct curl_xfer {
	CURL *easy; /* the caller's */
	curl_xfer_done_cb done_cb;
	void *arg;
	bool in_multi; /* curl_loop's: added and not yet done or removed */
};

/* *ret is the caller's (curl_loop_free). 0, -EIO or -ENOMEM. */
int curl_loop_new(struct event_base *base, struct curl_loop **ret);
/* Free it; every transfer must be removed first.  NULL is fine. */
void curl_loop_free(struct curl_loop *l);
/* Start x (x->easy, done_cb and arg set); x is borrowed until done or removed. */
int curl_loop_add(struct curl_loop *l, struct curl_xfer *x);
/* Stop x if it runs; done_cb is not called. */
void curl_loop_remove(struct curl_loop *l, struct curl_xfer *x);
/*
 * Verify certificates through libcurl's CA directory alone, where it has one: OpenSSL 3
 * parses a whole CA bundle in tens of milliseconds, on the loop, for every connection
 * (libcurl 7.87+ caches the parsed bundle, but not while a CA directory is set too, as
 * Debian's libcurl does); a hashed CA directory is read lazily, a few certificates per
 * handshake.  Call on an easy handle that verifies.
 */
void curl_loop_ca_setup(const struct curl_loop *l, CURL *easy);

#endif
