/*
 * api_auth.c - who may use the API, and its routes for logging in and for tokens.
 *
 * Three kinds of callers (api.h has the access levels):
 *   - a peer on the UNIX socket that is root or in [api] socket_group, by the kernel's
 *     credentials (SO_PEERCRED, SO_PEERGROUPS): admin;
 *   - a script with an API token, `Authorization: Bearer TOKEN`: read or admin, as the
 *     token was made (POST /api/tokens);
 *   - a browser with the session cookie of POST /api/login: admin, and each state change
 *     must carry the session's CSRF token in X-CSRF-Token.
 * Anyone else may use only the open routes: 401 elsewhere; a known caller without the right
 * gets 403.  The admin password is [api] password_hash, or one made on the first start
 * (printed once, only its hash kept in state_dir).  Failed logins and unknown bearer tokens
 * are limited per address, together: past the limit neither is checked (429).
 *
 * auth_store.c keeps the credentials; this file speaks HTTP, logs and adds events.  Must not
 * log a password or a token.  A login costs one scrypt (tens of milliseconds, 32 MiB): it
 * runs on a thread of its own, so that the loop (the proxy, the health checks) goes on, and
 * the answer is given on the loop when the thread is done (an eventfd wakes it).  At most
 * AUTH_LOGINS_MAX are checked at once and one per address; the rate limit bounds how often
 * a client can make egressd pay one.  Must not touch the store or the request from a thread.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "api_auth.h"
#include "api_conf.h"
#include "api_metrics.h"
#include "api_route.h"
#include "auth_store.h"
#include "events.h"
#include "log.h"
#include "passwd.h"
#include "util.h"

/* Logins whose password is being checked at once (each holds 32 MiB while it runs). */
#define AUTH_LOGINS_MAX 4

/* A login whose password a thread checks.  The thread reads hash and password and writes
 * result, then done; everything else is the loop's. */
struct login_job {
	struct api_auth *a;
	struct login_job *next;
	struct api_req *r;
	pthread_t thread;
	unsigned store_gen;	  /* the store it was checked against (a reload may replace it) */
	char *hash;		  /* a copy of the store's */
	char *password;		  /* cleansed and freed with the job */
	bool user_ok;
	char peer[ADDR_STRLEN];
	int result; /* passwd_verify()'s */
	atomic_bool done;
};

struct api_auth {
	struct event_base *base;
	int wake_fd;		  /* eventfd: a login thread is done */
	struct event *wake;
	struct login_job *logins; /* being checked, newest first */
	size_t n_logins;
	const struct conf_api *conf;
	struct event_log *events;
	bool have_group; /* socket_group exists */
	gid_t group;
	struct auth_store *store;
	unsigned store_gen; /* counts the stores taken */
	char *store_dir; /* what the store was made from, to see a reload change it */
	char *store_hash;
	struct log_ratelimit failed_rl;
	struct api_metrics *metrics; /* egress_api_logins_total */
};

static void take_group(struct api_auth *a, const struct conf_api *c)
{
	struct group *g;

	errno = 0;
	g = getgrnam(c->socket_group);
	a->have_group = g != NULL;
	a->group = g ? g->gr_gid : 0;
	if (!g && !conf_api_no_listen(c))
		log_debug("api: no group %s: only root may use the socket", c->socket_group);
}

static bool str_same(const char *x, const char *y)
{
	return x == y || (x && y && streq(x, y));
}

/*
 * A store for c's state_dir and password_hash: the password (made and printed on the first
 * start), the tokens kept.  0 or -errno, logged.
 */
static int store_open(const struct conf_api *c, struct auth_store **ret)
{
	struct auth_store *s = auth_store_new(c->state_dir);
	char err[512], *made = NULL;
	int r;

	r = auth_password_init(s, c->password_hash, &made, err, sizeof(err));
	if (r == 0)
		r = auth_tokens_load(s, err, sizeof(err));
	if (r < 0) {
		log_error("api: %s", err);
		free(made);
		auth_store_free(s);
		return r;
	}
	if (made) {
		log_info("api: first start: the password for %s is %s", AUTH_USER, made);
		log_info("api: it is shown only this once; only its hash is kept, in %s/%s "
			 "(egressctl passwd makes a hash for [api] password_hash)",
			c->state_dir, AUTH_PASSWORD_FILE);
		OPENSSL_cleanse(made, strlen(made));
		free(made);
	}
	*ret = s;
	return 0;
}

static int take_store(struct api_auth *a, const struct conf_api *c)
{
	struct auth_store *s;
	int r;

	if (a->store && str_same(a->store_dir, c->state_dir) &&
		str_same(a->store_hash, c->password_hash))
		return 0;
	r = store_open(c, &s);
	if (r < 0)
		return r;
	if (a->store)
		log_info("api: the password or state_dir changed: every session ends");
	auth_store_free(a->store);
	a->store = s;
	a->store_gen++;
	free(a->store_dir);
	free(a->store_hash);
	a->store_dir = c->state_dir ? xstrdup(c->state_dir) : NULL;
	a->store_hash = c->password_hash ? xstrdup(c->password_hash) : NULL;
	return 0;
}

static void login_wake_cb(evutil_socket_t fd, short what, void *arg);

int api_auth_new(struct event_base *base, const struct conf_api *c, struct event_log *events,
	struct api_auth **ret)
{
	struct api_auth *a = xcalloc(1, sizeof(*a));
	int r;

	a->base = base;
	a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->wake_fd < 0) {
		r = -errno;
		log_error("api: eventfd: %s", strerror(-r));
		free(a);
		return r;
	}
	a->wake = event_new(base, a->wake_fd, EV_READ | EV_PERSIST, login_wake_cb, a);
	if (!a->wake || event_add(a->wake, NULL) < 0)
		fatalx("api: out of memory for an event");
	a->events = events;
	a->failed_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60000, 10);
	a->conf = c;
	take_group(a, c);
	r = take_store(a, c);
	if (r < 0) {
		api_auth_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

int api_auth_reconf(struct api_auth *a, const struct conf_api *c)
{
	/* the old section goes with the old configuration; the store keeps what it needs */
	a->conf = c;
	take_group(a, c);
	/* on error the old password, tokens and sessions stay */
	return take_store(a, c);
}

void api_auth_set_metrics(struct api_auth *a, struct api_metrics *am)
{
	a->metrics = am;
}

static void login_job_free(struct login_job *j);

void api_auth_free(struct api_auth *a)
{
	if (!a)
		return;
	/* the checks under way end first (the server has closed their connections) */
	while (a->logins) {
		struct login_job *j = a->logins;

		a->logins = j->next;
		pthread_join(j->thread, NULL);
		api_req_drop(j->r);
		login_job_free(j);
	}
	if (a->wake)
		event_free(a->wake);
	close(a->wake_fd);
	auth_store_free(a->store);
	free(a->store_dir);
	free(a->store_hash);
	free(a);
}

/* --- checking a request --- */

static bool peer_in_group(const struct api_auth *a, const struct api_peer *p)
{
	if (!a->have_group)
		return false;
	if (p->gid == a->group)
		return true;
	for (size_t i = 0; i < p->n_groups; i++)
		if (p->groups[i] == a->group)
			return true;
	return false;
}

static const struct auth_session *session_of(struct api_auth *a, struct evkeyvalq *headers)
{
	char buf[AUTH_SECRET_LEN + 1];
	const char *id =
		auth_cookie_session(evhttp_find_header(headers, "Cookie"), buf, sizeof(buf));

	return id ? auth_session_find(a->store, id, now_ms()) : NULL;
}

/*
 * Has peer failed too often (logins and tokens share the limit)?  Then the token is not
 * even looked up, so that guessing gains nothing, and the reply says when to try again.
 */
static bool token_limited(struct api_auth *a, struct evhttp_request *req,
	const struct api_peer *peer)
{
	unsigned retry;
	char buf[16];

	if (auth_rate_check(a->store, peer->addr, now_ms(), &retry) == 0)
		return false;
	snprintf(buf, sizeof(buf), "%u", retry);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", buf);
	return true;
}

static int token_refused(struct api_auth *a, const char *result, int code, const char **err_ret)
{
	if (a->metrics)
		api_metrics_token_refused(a->metrics, result);
	*err_ret = code == 429 ? "too many failed authentications from this address: try again later"
			       : "unknown token";
	return code;
}

int api_auth_check(struct api_auth *a, struct evhttp_request *req, const struct api_peer *peer,
	enum api_access need, bool state_change, struct api_caller *caller, const char **err_ret)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *authorization = evhttp_find_header(in, "Authorization");
	const struct auth_session *ss;

	*caller = (struct api_caller){.access = API_OPEN};
	if (authorization) {
		const char *bearer = auth_bearer(authorization);
		const struct auth_token *t = NULL;

		/* open routes too: a gateway's WebSocket (/ws) takes tokens on one */
		if (bearer && token_limited(a, req, peer))
			return token_refused(a, "rate_limited", 429, err_ret);
		t = bearer ? auth_token_find(a->store, bearer) : NULL;
		if (!t && bearer) {
			auth_rate_failed(a->store, peer->addr, now_ms());
			if (log_ratelimit(&a->failed_rl))
				log_warnx("api: unknown bearer token from %s", peer->addr);
			if (need != API_OPEN)
				return token_refused(a, "unknown", 401, err_ret);
			token_refused(a, "unknown", 401, err_ret);
			return 0; /* an open route: answered as to anyone */
		}
		if (!t) {
			if (need == API_OPEN)
				return 0;
			*err_ret = "expected Authorization: Bearer TOKEN";
			return 401;
		}
		caller->access = t->access;
		snprintf(caller->who, sizeof(caller->who), "token:%s", t->name);
	} else if (peer->unix_socket && (peer->uid == 0 || peer_in_group(a, peer))) {
		caller->access = API_ADMIN;
		snprintf(caller->who, sizeof(caller->who), "uid:%u", (unsigned)peer->uid);
	} else if ((ss = session_of(a, in))) {
		caller->access = API_ADMIN;
		snprintf(caller->who, sizeof(caller->who), "%s", ss->who);
		/* a page of another site can make the browser send the cookie, never the token */
		if (state_change && need != API_OPEN &&
			!auth_session_csrf_ok(ss, evhttp_find_header(in, "X-CSRF-Token"))) {
			*err_ret = "missing or wrong X-CSRF-Token (GET /api/session has it)";
			return 403;
		}
	}
	if (caller->access >= need)
		return 0;
	if (caller->access != API_OPEN) {
		*err_ret = "this needs admin access (the token is read-only)";
		return 403;
	}
	if (peer->unix_socket) {
		*err_ret = "the UNIX socket is for root and the members of [api] socket_group";
		return 403;
	}
	*err_ret = "authentication required";
	return 401;
}

/* --- routes --- */

static void count_login(struct api_auth *a, const char *result)
{
	if (a->metrics)
		api_metrics_login(a->metrics, result);
}

static void set_cookie(struct api_auth *a, struct api_req *r, const char *value, long max_age)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
		AUTH_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Strict%s", value, max_age,
		a->conf->tls_cert ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(api_req_evhttp(r)), "Set-Cookie", buf);
}

static json_t *session_json(const struct auth_session *ss, uint64_t now)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I}", "who", ss->who, "user", ss->who, "access",
		api_access_name[API_ADMIN], "csrf", ss->csrf, "expires_in",
		(json_int_t)((ss->expires_ms - now) / 1000));
}

static void login_failed(struct api_auth *a, struct api_req *r, const char *peer, uint64_t now)
{
	auth_rate_failed(a->store, peer, now);
	count_login(a, "failure");
	/* not the user it tried: people type their password there too */
	if (log_ratelimit(&a->failed_rl))
		log_warnx("api: failed login from %s", peer);
	if (a->events)
		event_log_add(a->events, EVENT_LOGIN, "anonymous", json_pack("{s:s}", "peer", peer),
			"failed login from %s", peer);
	api_reply_error(r, 401, NULL, "wrong user or password");
}

/* A string member of a request's object, or NULL (missing, not a string, holds a NUL). */
static const char *json_str(json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);
	const char *s = json_string_value(v);

	return s && strlen(s) == json_string_length(v) ? s : NULL;
}

static void login_job_free(struct login_job *j)
{
	if (j->password) {
		OPENSSL_cleanse(j->password, strlen(j->password));
		free(j->password);
	}
	free(j->hash);
	free(j);
}

/* On its own thread: the scrypt, and nothing else. */
static void *login_thread(void *arg)
{
	struct login_job *j = arg;
	uint64_t one = 1;

	j->result = j->hash ? passwd_verify(j->hash, j->password, NULL) : -EACCES;
	atomic_store(&j->done, true);
	/* an eventfd's counter only grows: the write cannot fail short of overflow */
	if (write(j->a->wake_fd, &one, sizeof(one)) < 0)
		abort();
	return NULL;
}

static void login_finish(struct api_auth *a, struct login_job *j);

/* A login thread is done: answer every login whose check is over. */
static void login_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api_auth *a = arg;
	struct login_job **pp = &a->logins;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("api: reading the login eventfd");
	while (*pp) {
		struct login_job *j = *pp;

		if (!atomic_load(&j->done)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		a->n_logins--;
		pthread_join(j->thread, NULL);
		login_finish(a, j);
		login_job_free(j);
	}
}

/*
 * Check password on a thread and answer r when it is done (login_finish()).  One login per
 * address at a time (so that the rate limit sees each failure before the next try), and
 * AUTH_LOGINS_MAX in all.
 */
static void login_start(struct api_auth *a, struct api_req *r, const char *peer,
	const char *user, const char *password)
{
	const char *hash = auth_password_hash(a->store);
	sigset_t all, old;
	struct login_job *j;
	int rc;

	for (j = a->logins; j; j = j->next)
		if (streq(j->peer, peer)) {
			count_login(a, "rate_limited");
			evhttp_add_header(evhttp_request_get_output_headers(api_req_evhttp(r)),
				"Retry-After", "1");
			api_reply_error(r, 429, NULL, "a login from %s is being checked already",
				peer);
			return;
		}
	if (a->n_logins >= AUTH_LOGINS_MAX) {
		evhttp_add_header(
			evhttp_request_get_output_headers(api_req_evhttp(r)), "Retry-After", "1");
		api_reply_error(r, 503, NULL, "%d logins are being checked: try again in a moment",
			AUTH_LOGINS_MAX);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->a = a;
	j->r = r;
	j->store_gen = a->store_gen;
	j->hash = hash ? xstrdup(hash) : NULL;
	j->password = xstrdup(password);
	j->user_ok = streq(user, AUTH_USER);
	snprintf(j->peer, sizeof(j->peer), "%s", peer);
	atomic_init(&j->done, false);
	/* the loop takes the signals, never the thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&j->thread, NULL, login_thread, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_warnx("api: no thread for a login: %s", strerror(rc));
		login_job_free(j);
		api_reply_error(r, 503, NULL, "no thread to check the password: try again");
		return;
	}
	log_debug("api: login from %s: checking the password", peer);
	api_req_defer(r);
	j->next = a->logins;
	a->logins = j;
	a->n_logins++;
}

static void login_cb(struct api_req *r, void *arg)
{
	static const char *const fields[] = {"username", "password", NULL};
	struct api_auth *a = arg;
	const char *peer = api_req_peer(r), *user, *password;
	uint64_t now = now_ms();
	unsigned retry;
	json_t *body;
	char buf[16];

	body = api_req_json(r);
	if (!body || !api_json_only(r, body, fields))
		return;
	user = json_str(body, "username");
	password = json_str(body, "password");
	if (!user) {
		api_reply_error(r, 400, "username", "expected a string (\"%s\")", AUTH_USER);
		return;
	}
	if (!password) {
		api_reply_error(r, 400, "password", "expected a string");
		return;
	}
	if (auth_rate_check(a->store, peer, now, &retry) < 0) {
		count_login(a, "rate_limited");
		snprintf(buf, sizeof(buf), "%u", retry);
		evhttp_add_header(
			evhttp_request_get_output_headers(api_req_evhttp(r)), "Retry-After", buf);
		api_reply_error(r, 429, NULL, "too many failed logins from %s: try again in %u s",
			peer, retry);
		return;
	}
	login_start(a, r, peer, user, password);
}

/* The password was checked (j->result): answer j's login, on the loop. */
static void login_finish(struct api_auth *a, struct login_job *j)
{
	struct api_req *r = j->r;
	const char *peer = j->peer;
	const struct auth_session *ss;
	uint64_t now = now_ms();

	if (j->store_gen != a->store_gen) {
		/* a reload changed the password meanwhile: the check says nothing now */
		if (api_req_gone(r))
			api_req_drop(r);
		else
			api_reply_error(r, 503, NULL, "the password changed meanwhile: try again");
		return;
	}
	/* the hash is checked whatever the user, so the time tells nothing about it */
	if (j->result < 0 || !j->user_ok) {
		/* counted even when the client did not wait for the answer */
		if (api_req_gone(r)) {
			auth_rate_failed(a->store, peer, now);
			count_login(a, "failure");
			api_req_drop(r);
			return;
		}
		login_failed(a, r, peer, now);
		return;
	}
	auth_rate_clear(a->store, peer);
	if (api_req_gone(r)) {
		api_req_drop(r); /* no one to give the session to */
		return;
	}
	ss = auth_session_new(a->store, AUTH_USER, now);
	if (!ss) {
		api_reply_error(r, 500, NULL, "no random bytes for a session");
		return;
	}
	count_login(a, "success");
	set_cookie(a, r, ss->id, AUTH_SESSION_LIFETIME_S);
	log_info("api: %s logged in from %s", ss->who, peer);
	if (a->events)
		event_log_add(a->events, EVENT_LOGIN, ss->who, json_pack("{s:s}", "peer", peer),
			"%s logged in from %s", ss->who, peer);
	api_reply_json(r, 200, session_json(ss, now));
}

static void logout_cb(struct api_req *r, void *arg)
{
	struct api_auth *a = arg;
	char buf[AUTH_SECRET_LEN + 1];
	const char *id = auth_cookie_session(api_req_header(r, "Cookie"), buf, sizeof(buf));

	if (id)
		set_cookie(a, r, "", 0); /* the browser forgets it, ended or not */
	if (id && auth_session_drop(a->store, id) == 0) {
		if (a->events)
			event_log_add(a->events, EVENT_LOGIN, api_req_who(r),
				json_pack("{s:s}", "peer", api_req_peer(r)), "%s logged out",
				api_req_who(r));
	}
	api_reply_json(r, 200, NULL);
}

static void session_cb(struct api_req *r, void *arg)
{
	struct api_auth *a = arg;
	char buf[AUTH_SECRET_LEN + 1];
	const char *id = auth_cookie_session(api_req_header(r, "Cookie"), buf, sizeof(buf));
	const struct auth_session *ss = NULL;
	uint64_t now = now_ms();

	/* the session the caller was admitted by, not a cookie beside a token */
	if (id && !api_req_header(r, "Authorization"))
		ss = auth_session_find(a->store, id, now);
	if (ss && streq(ss->who, api_req_who(r))) {
		api_reply_json(r, 200, session_json(ss, now));
		return;
	}
	api_reply_json(r, 200,
		json_pack("{s:s, s:s}", "who", api_req_who(r), "access",
			api_access_name[api_req_access(r)]));
}

static json_t *token_json(const struct auth_token *t)
{
	return json_pack("{s:s, s:s, s:I}", "name", t->name, "access", api_access_name[t->access],
		"created", (json_int_t)t->created);
}

static void tokens_list_cb(struct api_req *r, void *arg)
{
	struct api_auth *a = arg;
	json_t *list = json_array();

	for (size_t i = 0; i < auth_tokens_count(a->store); i++)
		json_array_append_new(list, token_json(auth_token_at(a->store, i)));
	api_reply_json(r, 200, json_pack("{s:o}", "tokens", list));
}

static void token_create_cb(struct api_req *r, void *arg)
{
	static const char *const fields[] = {"name", "access", NULL};
	struct api_auth *a = arg;
	const char *name, *access, *why = NULL;
	enum api_access level;
	char *secret = NULL;
	json_t *body, *o;
	int rc;

	body = api_req_json(r);
	if (!body || !api_json_only(r, body, fields))
		return;
	name = json_str(body, "name");
	access = json_str(body, "access");
	if (!name) {
		api_reply_error(r, 400, "name", "expected a string");
		return;
	}
	if (!access || !(streq(access, "read") || streq(access, "admin"))) {
		api_reply_error(r, 400, "access", "expected \"read\" or \"admin\"");
		return;
	}
	level = streq(access, "admin") ? API_ADMIN : API_READ;
	rc = auth_token_create(a->store, name, level, (long long)time(NULL), &secret, &why);
	if (rc == -EINVAL) {
		api_reply_error(r, 400, "name", "%s", why);
		return;
	}
	if (rc == -EEXIST) {
		api_reply_error(r, 409, "name", "a token named \"%s\" exists", name);
		return;
	}
	if (rc == -ENOSPC) {
		api_reply_error(
			r, 409, NULL, "there are %d tokens already: delete one", AUTH_TOKENS_MAX);
		return;
	}
	if (rc < 0) {
		log_error("api: keeping token %s: %s", name, strerror(-rc));
		api_reply_error(r, 500, NULL, "the token could not be kept: %s", strerror(-rc));
		return;
	}
	if (a->events)
		event_log_add(a->events, EVENT_CHANGE, api_req_who(r),
			json_pack("{s:s, s:s}", "token", name, "access", access),
			"token %s (%s) made", name, access);
	o = token_json(auth_token_find(a->store, secret));
	json_object_set_new(o, "token", json_string(secret));
	free(secret);
	api_reply_json(r, 201, o);
}

static void token_delete_cb(struct api_req *r, void *arg)
{
	struct api_auth *a = arg;
	const char *name = api_req_param(r, "name");
	int rc = auth_token_delete(a->store, name);

	if (rc == -ENOENT) {
		api_reply_error(r, 404, NULL, "no token named \"%s\"", name);
		return;
	}
	if (rc < 0) {
		log_error("api: forgetting token %s: %s", name, strerror(-rc));
		api_reply_error(
			r, 500, NULL, "the token could not be forgotten: %s", strerror(-rc));
		return;
	}
	if (a->events)
		event_log_add(a->events, EVENT_CHANGE, api_req_who(r),
			json_pack("{s:s}", "token", name), "token %s deleted", name);
	api_reply_json(r, 200, NULL);
}

static const struct api_route auth_routes[] = {
	{EVHTTP_REQ_POST, "/api/login", API_OPEN, login_cb, false},
	{EVHTTP_REQ_POST, "/api/logout", API_READ, logout_cb, false},
	{EVHTTP_REQ_GET, "/api/session", API_READ, session_cb, false},
	{EVHTTP_REQ_GET, "/api/tokens", API_ADMIN, tokens_list_cb, false},
	{EVHTTP_REQ_POST, "/api/tokens", API_ADMIN, token_create_cb, false},
	{EVHTTP_REQ_DELETE, "/api/tokens/{name}", API_ADMIN, token_delete_cb, false},
};

void api_auth_routes(struct api_auth *a, struct api_route_table *ret)
{
	*ret = (struct api_route_table){
		.routes = auth_routes, .n = ARRAY_SIZE(auth_routes), .arg = a, .running = true};
}
