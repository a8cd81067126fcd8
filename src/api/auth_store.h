/*
 * auth_store.h - the API's credentials and their bounds: the admin password's hash, login
 * sessions with their CSRF tokens, API tokens, and the rate limit of failed logins.
 *
 * Bookkeeping only, over a monotonic clock the caller passes in (ms) and two files in the
 * state folder (mode 0600, each written in one step): no socket, no loop, no log.
 * api_auth.c speaks HTTP and logs; unit tests drive this directly.  Secrets are compared in
 * constant time; of a token only its SHA-256 is kept, of the password only its scrypt hash.
 */
#ifndef EGRESS_AUTH_STORE_H
#define EGRESS_AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define AUTH_USER   "admin"	     /* the one account a password logs in to */
#define AUTH_COOKIE "egress_session" /* the session cookie's name */

#define AUTH_PASSWORD_FILE "password_hash" /* in the state folder: the hash and a newline */
#define AUTH_TOKENS_FILE   "tokens.json"

#define AUTH_SECRET_BYTES 32 /* of a session id, a CSRF token, an API token */
#define AUTH_SECRET_LEN	  43 /* the same in base64url without padding */

#define AUTH_SESSIONS_MAX	32 /* the one closest to its end goes to make room */
#define AUTH_SESSION_LIFETIME_S (12 * 3600)
#define AUTH_TOKENS_MAX		64
#define AUTH_TOKEN_NAME_MAX	48 /* "token:NAME" fits struct api_caller's who */
#define AUTH_TOKENS_FILE_MAX	(64 * 1024)
#define AUTH_RATE_BURST		5     /* failed logins an address may make in a row, */
#define AUTH_RATE_INTERVAL_MS	12000 /* then one more each 12 s */
#define AUTH_RATE_ADDRS		256   /* addresses remembered; IPv6 ones by their /64 */

struct auth_store;

struct auth_session {
	char id[AUTH_SECRET_LEN + 1];	/* the cookie's value */
	char csrf[AUTH_SECRET_LEN + 1]; /* what X-CSRF-Token must say for a state change */
	char who[32];
	uint64_t expires_ms; /* on the caller's monotonic clock */
};

struct auth_token {
	char name[AUTH_TOKEN_NAME_MAX + 1];
	enum api_access access;	  /* API_READ or API_ADMIN */
	unsigned char sha256[32]; /* of the secret; the secret itself is never kept */
	long long created;	  /* wall clock, seconds since the epoch */
};

/*
 * state_dir: where the password hash and the tokens are kept (copied); NULL keeps nothing
 * on disk.  The caller owns the result.
 */
struct auth_store *auth_store_new(const char *state_dir);
void auth_store_free(struct auth_store *s);

/* --- the admin password --- */

/*
 * Take the admin password's hash: conf_hash ([api] password_hash) when it is set; else the
 * one kept in the state folder; else make a password, keep its hash there and hand the
 * password out once in *generated_ret (the caller's, to print and free; NULL otherwise).
 * A hash kept there is never replaced.  0, or -errno with err saying what is wrong (a
 * malformed hash, a file that cannot be read or written); then the store has no password.
 */
int auth_password_init(struct auth_store *s, const char *conf_hash, char **generated_ret, char *err,
	size_t errlen);
/* Is password the admin's?  0, -EACCES (also with no password set), -EIO. */
int auth_password_verify(const struct auth_store *s, const char *password);
/* The password's hash (borrowed from s; NULL: none), for a check made elsewhere. */
const char *auth_password_hash(const struct auth_store *s);

/* --- sessions --- */

/*
 * A new session for who, ending AUTH_SESSION_LIFETIME_S after now_ms.  When all are taken
 * the one that ends first goes.  Borrowed: valid until the next call that changes
 * sessions.  NULL if the random source fails.
 */
const struct auth_session *auth_session_new(struct auth_store *s, const char *who, uint64_t now_ms);
/* The live session of this cookie value, or NULL (unknown, ended: an ended one goes). */
const struct auth_session *auth_session_find(struct auth_store *s, const char *id, uint64_t now_ms);
/* End the session of this cookie value.  0 or -ENOENT. */
int auth_session_drop(struct auth_store *s, const char *id);
/* Does token (may be NULL) match the session's CSRF token? */
bool auth_session_csrf_ok(const struct auth_session *ss, const char *token);

/*
 * The session cookie's value in a Cookie header (RFC 6265 section 5.4: "name=value" pairs
 * split by ";"), copied into buf (len bytes); NULL when header (may be NULL) has none or
 * its value does not fit.  The first of several wins.
 */
const char *auth_cookie_session(const char *header, char *buf, size_t len);

/* TOKEN of an Authorization header "Bearer TOKEN" (RFC 6750 section 2.1), or NULL. */
const char *auth_bearer(const char *authorization);

/* --- API tokens --- */

/*
 * Read the tokens kept in the state folder (none there: none).  0, or -errno with err
 * naming the file, the entry and what was expected; then the store keeps no token.
 */
int auth_tokens_load(struct auth_store *s, char *err, size_t errlen);
/*
 * A new token name (1..48 of [A-Za-z0-9._-]) with access (API_READ or API_ADMIN), kept in
 * the state folder before this returns.  *secret_ret: the token itself, the caller's; it
 * is never shown again.  0; -EINVAL with *why_ret (static) naming the field; -EEXIST;
 * -ENOSPC (AUTH_TOKENS_MAX); -errno of the file (then nothing changed).
 */
int auth_token_create(struct auth_store *s, const char *name, enum api_access access,
	long long now_s, char **secret_ret, const char **why_ret);
/* Forget a token, in the state folder too.  0, -ENOENT, or -errno of the file (kept). */
int auth_token_delete(struct auth_store *s, const char *name);
/* The token whose secret this is, or NULL.  Borrowed until the tokens change. */
const struct auth_token *auth_token_find(const struct auth_store *s, const char *secret);
size_t auth_tokens_count(const struct auth_store *s);
const struct auth_token *auth_token_at(const struct auth_store *s, size_t i);

/* --- failed logins, per client address --- */

/*
 * May peer ("192.0.2.1", "2001:db8::1", "unix") try to log in now?  0, or -EAGAIN with
 * *retry_s (whole seconds, at least 1) until it may.
 */
int auth_rate_check(struct auth_store *s, const char *peer, uint64_t now_ms, unsigned *retry_s);
void auth_rate_failed(struct auth_store *s, const char *peer, uint64_t now_ms);
/* A login succeeded: the address's failures are forgotten. */
void auth_rate_clear(struct auth_store *s, const char *peer);

#endif
