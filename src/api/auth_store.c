/*
 * auth_store.c - the API's credentials: password hash, sessions, tokens, login rate limits.
 *
 * Every table here has a fixed size, so nothing a client sends grows egressd's memory:
 * sessions (the one that ends first makes room), tokens (refused past the limit) and the
 * addresses of failed logins (the one with the least to hold against it makes room).
 * Must not log, nor keep a password or a token's secret.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth_store.h"
#include "cidr.h"
#include "fileio.h"
#include "log.h"
#include "passwd.h"
#include "util.h"

/*
 * Failed logins, as GCRA (the generic cell rate algorithm): each failure moves the
 * address's "theoretical arrival time" tat one interval on; a login may be tried while
 * tat lies at most BURST - 1 intervals ahead of now.
 */
struct rate_entry {
	struct cidr key; /* the address, an IPv6 one as its /64; family 0: the UNIX socket */
	uint64_t tat;	 /* 0: a free entry */
};

struct auth_store {
	char *state_dir;
	char *password_hash;
	struct auth_session sessions[AUTH_SESSIONS_MAX]; /* id[0] == '\0': free */
	struct auth_token tokens[AUTH_TOKENS_MAX];
	size_t n_tokens;
	struct rate_entry rate[AUTH_RATE_ADDRS];
};

struct auth_store *auth_store_new(const char *state_dir)
{
	struct auth_store *s = xcalloc(1, sizeof(*s));

	s->state_dir = state_dir ? xstrdup(state_dir) : NULL;
	return s;
}

void auth_store_free(struct auth_store *s)
{
	if (!s)
		return;
	free(s->state_dir);
	free(s->password_hash);
	OPENSSL_cleanse(s->sessions, sizeof(s->sessions));
	free(s);
}

static char *state_path(const struct auth_store *s, const char *file)
{
	char *p;

	if (asprintf(&p, "%s/%s", s->state_dir, file) < 0)
		fatal("asprintf");
	return p;
}

/* --- the admin password --- */

static int password_from_file(struct auth_store *s, const char *path, char *err, size_t errlen)
{
	const char *why;
	char *text;
	size_t len;
	int r;

	r = file_read(path, 1024, &text, &len);
	if (r < 0) {
		if (r != -ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	r = passwd_check(text, &why);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s (delete the file to have a new password made)", path,
			why);
		free(text);
		return r;
	}
	s->password_hash = text;
	return 0;
}

static int password_generate(
	struct auth_store *s, const char *path, char **generated_ret, char *err, size_t errlen)
{
	char *password = NULL, *hash = NULL, *line = NULL;
	int r;

	r = dir_ensure(s->state_dir, 0700);
	if (r < 0) {
		snprintf(err, errlen, "state folder %s: %s", s->state_dir, strerror(-r));
		return r;
	}
	/* 18 bytes: 144 bits in 24 characters someone can type */
	r = passwd_random_token(18, &password);
	if (r == 0)
		r = passwd_hash(password, &hash);
	if (r < 0) {
		snprintf(err, errlen, "making a password: %s", strerror(-r));
		goto out;
	}
	if (asprintf(&line, "%s\n", hash) < 0)
		fatal("asprintf");
	r = file_write_atomic(path, line, strlen(line), 0600);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	s->password_hash = hash;
	hash = NULL;
	*generated_ret = password;
	password = NULL;
out:
	if (password)
		OPENSSL_cleanse(password, strlen(password));
	free(password);
	free(hash);
	free(line);
	return r;
}

int auth_password_init(
	struct auth_store *s, const char *conf_hash, char **generated_ret, char *err, size_t errlen)
{
	const char *why;
	char *path;
	int r;

	*generated_ret = NULL;
	FREE_AND_NULL(s->password_hash);
	if (conf_hash) {
		r = passwd_check(conf_hash, &why);
		if (r < 0) {
			snprintf(err, errlen, "password_hash: %s", why);
			return r;
		}
		s->password_hash = xstrdup(conf_hash);
		return 0;
	}
	if (!s->state_dir) {
		snprintf(err, errlen, "no password_hash and no state folder to keep one in");
		return -EINVAL;
	}
	path = state_path(s, AUTH_PASSWORD_FILE);
	r = password_from_file(s, path, err, errlen);
	if (r == -ENOENT)
		r = password_generate(s, path, generated_ret, err, errlen);
	free(path);
	return r;
}

int auth_password_verify(const struct auth_store *s, const char *password)
{
	if (!s->password_hash)
		return -EACCES;
	return passwd_verify(s->password_hash, password, NULL);
}

const char *auth_password_hash(const struct auth_store *s)
{
	return s->password_hash;
}

/* --- sessions --- */

static bool secret_eq(const char *known, const char *given)
{
	return given && strlen(given) == AUTH_SECRET_LEN &&
	       !CRYPTO_memcmp(known, given, AUTH_SECRET_LEN);
}

static int secret_make(char *buf)
{
	char *t;
	int r = passwd_random_token(AUTH_SECRET_BYTES, &t);

	if (r < 0)
		return r;
	memcpy(buf, t, AUTH_SECRET_LEN + 1);
	OPENSSL_cleanse(t, AUTH_SECRET_LEN);
	free(t);
	return 0;
}

const struct auth_session *auth_session_new(struct auth_store *s, const char *who, uint64_t now_ms)
{
	struct auth_session *ss = &s->sessions[0];

	for (size_t i = 0; i < AUTH_SESSIONS_MAX; i++) {
		struct auth_session *c = &s->sessions[i];

		if (!c->id[0] || c->expires_ms <= now_ms) {
			ss = c;
			break;
		}
		if (c->expires_ms < ss->expires_ms)
			ss = c;
	}
	OPENSSL_cleanse(ss, sizeof(*ss));
	if (secret_make(ss->id) < 0 || secret_make(ss->csrf) < 0) {
		OPENSSL_cleanse(ss, sizeof(*ss));
		return NULL;
	}
	snprintf(ss->who, sizeof(ss->who), "%s", who);
	ss->expires_ms = now_ms + AUTH_SESSION_LIFETIME_S * UINT64_C(1000);
	return ss;
}

static struct auth_session *session_lookup(struct auth_store *s, const char *id)
{
	struct auth_session *found = NULL;

	for (size_t i = 0; i < AUTH_SESSIONS_MAX; i++)
		if (s->sessions[i].id[0] && secret_eq(s->sessions[i].id, id))
			found = &s->sessions[i];
	return found;
}

const struct auth_session *auth_session_find(struct auth_store *s, const char *id, uint64_t now_ms)
{
	struct auth_session *ss = session_lookup(s, id);

	if (ss && ss->expires_ms <= now_ms) {
		OPENSSL_cleanse(ss, sizeof(*ss));
		return NULL;
	}
	return ss;
}

int auth_session_drop(struct auth_store *s, const char *id)
{
	struct auth_session *ss = session_lookup(s, id);

	if (!ss)
		return -ENOENT;
	OPENSSL_cleanse(ss, sizeof(*ss));
	return 0;
}

bool auth_session_csrf_ok(const struct auth_session *ss, const char *token)
{
	return secret_eq(ss->csrf, token);
}

const char *auth_cookie_session(const char *header, char *buf, size_t len)
{
	const size_t nl = strlen(AUTH_COOKIE);
	const char *p = header;

	while (p && *p) {
		size_t n;

		p += strspn(p, " \t;");
		n = strcspn(p, ";");
		if (n > nl && !strncmp(p, AUTH_COOKIE "=", nl + 1)) {
			p += nl + 1;
			n -= nl + 1;
			while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if (n >= len)
				return NULL;
			memcpy(buf, p, n);
			buf[n] = '\0';
			return buf;
		}
		p += n;
	}
	return NULL;
}

const char *auth_bearer(const char *authorization)
{
	/* the scheme's case does not matter (RFC 7235 section 2.1) */
	if (!authorization || strncasecmp(authorization, "Bearer ", 7))
		return NULL;
	authorization += 7;
	authorization += strspn(authorization, " ");
	return *authorization ? authorization : NULL;
}

/* --- API tokens --- */

static void sha256(const char *text, unsigned char *ret)
{
	if (!EVP_Digest(text, strlen(text), ret, NULL, EVP_sha256(), NULL))
		fatalx("api: SHA-256 failed"); /* no allocation, no engine: cannot happen */
}

static const char *access_word(enum api_access a)
{
	return a == API_ADMIN ? "admin" : "read";
}

static int access_from_word(const char *w, enum api_access *ret)
{
	if (streq(w, "read"))
		*ret = API_READ;
	else if (streq(w, "admin"))
		*ret = API_ADMIN;
	else
		return -EINVAL;
	return 0;
}

static bool token_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= AUTH_TOKEN_NAME_MAX &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
		       len;
}

static int hex_decode(const char *hex, unsigned char *out, size_t len)
{
	if (strlen(hex) != 2 * len || strspn(hex, "0123456789abcdef") != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int tokens_save(const struct auth_store *s)
{
	json_t *list, *doc;
	char *path, *text;
	int r;

	if (!s->state_dir)
		return 0;
	list = json_array();
	for (size_t i = 0; i < s->n_tokens; i++) {
		const struct auth_token *t = &s->tokens[i];
		char hex[2 * sizeof(t->sha256) + 1];

		for (size_t j = 0; j < sizeof(t->sha256); j++)
			snprintf(hex + 2 * j, 3, "%02x", t->sha256[j]);
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "name", t->name,
						    "access", access_word(t->access), "sha256", hex,
						    "created", (json_int_t)t->created));
	}
	doc = json_pack("{s:o}", "tokens", list);
	text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		fatal("json_dumps");
	r = dir_ensure(s->state_dir, 0700);
	if (r == 0) {
		path = state_path(s, AUTH_TOKENS_FILE);
		r = file_write_atomic(path, text, strlen(text), 0600);
		free(path);
	}
	free(text);
	return r;
}

/* One entry of the tokens file; the error names it by its index. */
static int token_from_json(json_t *o, size_t i, struct auth_token *t, char *err, size_t errlen)
{
	const char *name = NULL, *access = NULL, *hex = NULL;
	json_int_t created = 0;
	json_error_t je;

	if (json_unpack_ex(o, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I}", "name", &name, "access",
		    &access, "sha256", &hex, "created", &created) < 0) {
		snprintf(err, errlen, "tokens[%zu]: %s", i, je.text);
		return -EINVAL;
	}
	if (!token_name_ok(name)) {
		snprintf(err, errlen, "tokens[%zu].name: expected 1..48 of A-Z a-z 0-9 . _ -", i);
		return -EINVAL;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	if (access_from_word(access, &t->access) < 0) {
		snprintf(err, errlen,
			"tokens[%zu].access: expected \"read\" or \"admin\", seen \"%s\"", i,
			access);
		return -EINVAL;
	}
	if (hex_decode(hex, t->sha256, sizeof(t->sha256)) < 0) {
		snprintf(err, errlen, "tokens[%zu].sha256: expected 64 lower-case hex digits", i);
		return -EINVAL;
	}
	t->created = created;
	return 0;
}

int auth_tokens_load(struct auth_store *s, char *err, size_t errlen)
{
	char *path, *text = NULL, sub[200];
	json_t *doc = NULL, *list;
	json_error_t je;
	size_t i;
	int r;

	s->n_tokens = 0;
	if (!s->state_dir)
		return 0;
	path = state_path(s, AUTH_TOKENS_FILE);
	r = file_read(path, AUTH_TOKENS_FILE_MAX, &text, NULL);
	if (r == -ENOENT) {
		r = 0;
		goto out;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	r = -EINVAL;
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
		goto out;
	}
	list = json_object_get(doc, "tokens");
	if (!json_is_array(list) || json_object_size(doc) != 1) {
		snprintf(err, errlen, "%s: expected {\"tokens\": [...]}", path);
		goto out;
	}
	if (json_array_size(list) > AUTH_TOKENS_MAX) {
		snprintf(err, errlen, "%s: more than %d tokens", path, AUTH_TOKENS_MAX);
		goto out;
	}
	for (i = 0; i < json_array_size(list); i++) {
		if (token_from_json(json_array_get(list, i), i, &s->tokens[i], sub, sizeof(sub)) <
			0) {
			snprintf(err, errlen, "%s: %s", path, sub);
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (streq(s->tokens[j].name, s->tokens[i].name)) {
				snprintf(err, errlen, "%s: tokens[%zu].name: \"%s\" twice", path, i,
					s->tokens[i].name);
				goto out;
			}
	}
	s->n_tokens = i;
	r = 0;
out:
	json_decref(doc);
	free(text);
	free(path);
	return r;
}

static struct auth_token *token_by_name(struct auth_store *s, const char *name)
{
	for (size_t i = 0; i < s->n_tokens; i++)
		if (streq(s->tokens[i].name, name))
			return &s->tokens[i];
	return NULL;
}

int auth_token_create(struct auth_store *s, const char *name, enum api_access access,
	long long now_s, char **secret_ret, const char **why_ret)
{
	struct auth_token *t;
	char *secret;
	int r;

	if (!token_name_ok(name)) {
		*why_ret = "expected 1..48 of A-Z a-z 0-9 . _ -";
		return -EINVAL;
	}
	if (access != API_READ && access != API_ADMIN) {
		*why_ret = "expected \"read\" or \"admin\"";
		return -EINVAL;
	}
	if (token_by_name(s, name))
		return -EEXIST;
	if (s->n_tokens == AUTH_TOKENS_MAX)
		return -ENOSPC;
	r = passwd_random_token(AUTH_SECRET_BYTES, &secret);
	if (r < 0)
		return r;
	t = &s->tokens[s->n_tokens++];
	*t = (struct auth_token){.access = access, .created = now_s};
	snprintf(t->name, sizeof(t->name), "%s", name);
	sha256(secret, t->sha256);
	r = tokens_save(s);
	if (r < 0) {
		s->n_tokens--;
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
		return r;
	}
	*secret_ret = secret;
	return 0;
}

int auth_token_delete(struct auth_store *s, const char *name)
{
	struct auth_token *t = token_by_name(s, name), keep;
	size_t i;
	int r;

	if (!t)
		return -ENOENT;
	i = (size_t)(t - s->tokens);
	keep = *t;
	memmove(t, t + 1, (s->n_tokens - i - 1) * sizeof(*t));
	s->n_tokens--;
	r = tokens_save(s);
	if (r < 0) {
		memmove(&s->tokens[i + 1], &s->tokens[i], (s->n_tokens - i) * sizeof(*t));
		s->tokens[i] = keep;
		s->n_tokens++;
	}
	return r;
}

const struct auth_token *auth_token_find(const struct auth_store *s, const char *secret)
{
	const struct auth_token *found = NULL;
	unsigned char d[32];

	if (!secret || strlen(secret) != AUTH_SECRET_LEN)
		return NULL;
	sha256(secret, d);
	for (size_t i = 0; i < s->n_tokens; i++)
		if (!CRYPTO_memcmp(d, s->tokens[i].sha256, sizeof(d)))
			found = &s->tokens[i];
	return found;
}

size_t auth_tokens_count(const struct auth_store *s)
{
	return s->n_tokens;
}

const struct auth_token *auth_token_at(const struct auth_store *s, size_t i)
{
	return i < s->n_tokens ? &s->tokens[i] : NULL;
}

/* --- failed logins --- */

static void rate_key(const char *peer, struct cidr *ret)
{
	struct addr a;

	memset(ret, 0, sizeof(*ret));
	if (addr_parse(peer, &a) < 0)
		return; /* "unix": one key for the socket */
	addr_unmap_v4(&a);
	cidr_from_addr(&a, ret);
	if (a.family == AF_INET6) {
		ret->plen = 64; /* one host holds a whole /64 */
		cidr_clear_hostbits(ret);
	}
}

static struct rate_entry *rate_lookup(struct auth_store *s, const struct cidr *key)
{
	for (size_t i = 0; i < AUTH_RATE_ADDRS; i++)
		if (s->rate[i].tat && !cidr_cmp(&s->rate[i].key, key))
			return &s->rate[i];
	return NULL;
}

int auth_rate_check(struct auth_store *s, const char *peer, uint64_t now_ms, unsigned *retry_s)
{
	const uint64_t room = (AUTH_RATE_BURST - 1) * (uint64_t)AUTH_RATE_INTERVAL_MS;
	struct rate_entry *e;
	struct cidr key;

	rate_key(peer, &key);
	e = rate_lookup(s, &key);
	if (!e || e->tat <= now_ms + room)
		return 0;
	*retry_s = (unsigned)((e->tat - now_ms - room + 999) / 1000);
	return -EAGAIN;
}

void auth_rate_failed(struct auth_store *s, const char *peer, uint64_t now_ms)
{
	struct rate_entry *e;
	struct cidr key;

	rate_key(peer, &key);
	e = rate_lookup(s, &key);
	if (!e) {
		/* a free or spent entry, else the one with the least against it */
		e = &s->rate[0];
		for (size_t i = 0; i < AUTH_RATE_ADDRS && e->tat > now_ms; i++)
			if (s->rate[i].tat < e->tat)
				e = &s->rate[i];
		e->key = key;
		e->tat = 0;
	}
	e->tat = MAX(e->tat, now_ms) + AUTH_RATE_INTERVAL_MS;
}

void auth_rate_clear(struct auth_store *s, const char *peer)
{
	struct rate_entry *e;
	struct cidr key;

	rate_key(peer, &key);
	e = rate_lookup(s, &key);
	if (e)
		e->tat = 0;
}
