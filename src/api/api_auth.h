/*
 * api_auth.h - who is asking the API, and may they: the seam between the server (api.c)
 * and authentication (api_auth.c).
 *
 * The server learns a connection's peer (its address, or over the UNIX socket its
 * credentials) and, for every request that found its route, asks api_auth_check() before
 * the handler runs.  Authentication owns everything else: passwords, sessions and their
 * cookies, CSRF tokens, API tokens, rate limits, and its own routes (login, logout, ...).
 * It never replies to a request it is asked to check: it says which status to answer.
 */
#ifndef EGRESS_API_AUTH_H
#define EGRESS_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/http.h>

#include "api.h"
#include "cidr.h"

struct api_auth;
struct api_route_table;
struct conf_api;
struct event_log;

#define API_PEER_GROUPS 64

/* A connection's peer, as the server found it when the connection came. */
struct api_peer {
	bool unix_socket; /* the UNIX socket: uid, gid and groups are the kernel's word */
	bool tls;
	char addr[ADDR_STRLEN]; /* "192.0.2.1", "::1"; "unix" for the UNIX socket */
	uid_t uid;		/* UNIX socket only (SO_PEERCRED) */
	gid_t gid;
	gid_t groups[API_PEER_GROUPS]; /* supplementary groups (SO_PEERGROUPS), the first ones */
	size_t n_groups;
};

/* What a check found: who is asking, and what they may do. */
struct api_caller {
	enum api_access access; /* API_OPEN for nobody in particular */
	char who[64];		/* "uid:0", "admin", "token:NAME"; "" for nobody */
};

/*
 * Authentication for the API's [api] section c (borrowed until the next reconf or free),
 * on base (a login's password is checked on a thread, its answer given on base).  events
 * (may be NULL) takes its logins.  0 or -errno, logged; *ret is the caller's.
 */
int api_auth_new(struct event_base *base, const struct conf_api *c, struct event_log *events,
	struct api_auth **ret);
/* Take a new [api] section (reload).  0 or -errno, logged; keeps the old one on error. */
int api_auth_reconf(struct api_auth *a, const struct conf_api *c);
void api_auth_free(struct api_auth *a);

struct api_metrics;

/* Count logins in am (borrowed: it outlives a; NULL counts nothing). */
void api_auth_set_metrics(struct api_auth *a, struct api_metrics *am);

/*
 * May req, from peer, do what its route needs?  state_change: the request changes
 * something (not GET or HEAD), so a session must carry its CSRF token.  Returns 0 with
 * *caller filled (also for need == API_OPEN: whoever the credentials say), or the HTTP
 * status to answer - 401 (unknown caller), 403 (known, not allowed), 429 (too many failed
 * attempts) - with *err_ret a message for the reply (static).
 */
int api_auth_check(struct api_auth *a, struct evhttp_request *req, const struct api_peer *peer,
	enum api_access need, bool state_change, struct api_caller *caller, const char **err_ret);

/* Authentication's own routes (login, logout, session, tokens): *ret is filled, with a as
 * the handlers' arg; n may be 0. */
void api_auth_routes(struct api_auth *a, struct api_route_table *ret);

#endif
