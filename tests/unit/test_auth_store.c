/*
 * test_auth_store.c - unit tests for src/api/auth_store.c over a temporary state folder and
 * a fake clock: the first start makes a password and keeps only its hash (0600), never
 * replaces it, and a configured hash wins; sessions end, make room and carry their CSRF
 * token; tokens are kept by their SHA-256 only, survive a new store, and a file that
 * cannot be written changes nothing; failed logins are limited per address (IPv6 per
 * /64) and a success forgets them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth_store.h"
#include "fileio.h"
#include "passwd.h"
#include "util.h"

/* hashlib.scrypt(b"correct horse battery staple", salt=bytes(range(16)), n=1024, r=8, p=1) */
static const char known[] =
	"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlRU";

static char dir[] = "/tmp/test_auth_store.XXXXXX";
static char path[512];

static const char *in_dir(const char *file)
{
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return path;
}

static char *slurp(const char *file)
{
	char *text = NULL;

	assert_int_equal(file_read(in_dir(file), 1 << 20, &text, NULL), 0);
	return text;
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(in_dir(AUTH_PASSWORD_FILE));
	unlink(in_dir(AUTH_TOKENS_FILE));
	unlink(in_dir("file"));
	rmdir(dir);
	return 0;
}

static void test_password_first_start(void **state)
{
	struct auth_store *s = auth_store_new(dir), *again;
	char err[256] = "", *pw = NULL, *pw2 = NULL, *kept, *kept2;
	struct stat st;

	(void)state;
	unlink(in_dir(AUTH_PASSWORD_FILE));
	assert_int_equal(auth_password_verify(s, "anything"), -EACCES); /* none yet */
	assert_int_equal(auth_password_init(s, NULL, &pw, err, sizeof(err)), 0);
	assert_non_null(pw);
	assert_int_equal(strlen(pw), 24);
	assert_int_equal(auth_password_verify(s, pw), 0);
	assert_int_equal(auth_password_verify(s, "admin"), -EACCES);

	assert_int_equal(stat(in_dir(AUTH_PASSWORD_FILE), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	kept = slurp(AUTH_PASSWORD_FILE);
	assert_null(strstr(kept, pw));
	assert_true(strncmp(kept, "$scrypt$", 8) == 0);
	assert_int_equal(passwd_verify(strtok(kept, "\n"), pw, NULL), 0);

	/* a restart takes the kept hash and makes no new password */
	again = auth_store_new(dir);
	assert_int_equal(auth_password_init(again, NULL, &pw2, err, sizeof(err)), 0);
	assert_null(pw2);
	assert_int_equal(auth_password_verify(again, pw), 0);
	kept2 = slurp(AUTH_PASSWORD_FILE);
	assert_int_equal(strncmp(kept, kept2, strlen(kept)), 0);

	free(kept);
	free(kept2);
	free(pw);
	auth_store_free(s);
	auth_store_free(again);
}

static void test_password_configured(void **state)
{
	struct auth_store *s = auth_store_new(dir);
	char err[256] = "", *pw = NULL;

	(void)state;
	unlink(in_dir(AUTH_PASSWORD_FILE));
	assert_int_equal(auth_password_init(s, known, &pw, err, sizeof(err)), 0);
	assert_null(pw);
	assert_int_equal(auth_password_verify(s, "correct horse battery staple"), 0);
	assert_int_equal(auth_password_verify(s, "Correct horse battery staple"), -EACCES);
	/* nothing made, nothing written */
	assert_int_equal(access(in_dir(AUTH_PASSWORD_FILE), F_OK), -1);

	/* a bad one is refused, naming the key and what was expected; no password is left */
	assert_int_equal(auth_password_init(s, "admin", &pw, err, sizeof(err)), -EINVAL);
	assert_null(pw);
	assert_non_null(strstr(err, "password_hash: "));
	assert_non_null(strstr(err, "expected $scrypt$"));
	assert_int_equal(auth_password_verify(s, "correct horse battery staple"), -EACCES);
	assert_int_equal(access(in_dir(AUTH_PASSWORD_FILE), F_OK), -1);
	auth_store_free(s);
}

static void test_password_bad_file(void **state)
{
	struct auth_store *s = auth_store_new(dir), *nodir;
	char err[256] = "", *pw = NULL, *kept;
	static const char junk[] = "$scrypt$ln=10,r=8,p=1$nope\n";

	(void)state;
	assert_int_equal(
		file_write_atomic(in_dir(AUTH_PASSWORD_FILE), junk, strlen(junk), 0600), 0);
	assert_int_equal(auth_password_init(s, NULL, &pw, err, sizeof(err)), -EINVAL);
	assert_null(pw);
	assert_non_null(strstr(err, in_dir(AUTH_PASSWORD_FILE)));
	assert_non_null(strstr(err, "SALT must be"));
	kept = slurp(AUTH_PASSWORD_FILE); /* never replaced */
	assert_string_equal(kept, junk);
	free(kept);
	unlink(in_dir(AUTH_PASSWORD_FILE));
	auth_store_free(s);

	/* a state folder that cannot be made */
	assert_int_equal(file_write_atomic(in_dir("file"), "x", 1, 0600), 0);
	nodir = auth_store_new(in_dir("file"));
	assert_int_equal(auth_password_init(nodir, NULL, &pw, err, sizeof(err)), -ENOTDIR);
	assert_null(pw);
	assert_non_null(strstr(err, "file"));
	auth_store_free(nodir);

	nodir = auth_store_new(NULL);
	assert_int_equal(auth_password_init(nodir, NULL, &pw, err, sizeof(err)), -EINVAL);
	assert_null(pw);
	auth_store_free(nodir);
}

static void test_sessions(void **state)
{
	struct auth_store *s = auth_store_new(NULL);
	const struct auth_session *a, *b;
	char id_a[AUTH_SECRET_LEN + 1], csrf_a[AUTH_SECRET_LEN + 1], id_b[AUTH_SECRET_LEN + 1];
	const uint64_t t0 = 1000, life = AUTH_SESSION_LIFETIME_S * UINT64_C(1000);

	(void)state;
	a = auth_session_new(s, "admin", t0);
	assert_non_null(a);
	assert_int_equal(strlen(a->id), AUTH_SECRET_LEN);
	assert_int_equal(strlen(a->csrf), AUTH_SECRET_LEN);
	assert_string_not_equal(a->id, a->csrf);
	assert_string_equal(a->who, "admin");
	strcpy(id_a, a->id);
	strcpy(csrf_a, a->csrf);
	b = auth_session_new(s, "admin", t0);
	strcpy(id_b, b->id);
	assert_string_not_equal(id_a, id_b);

	a = auth_session_find(s, id_a, t0 + 1);
	assert_non_null(a);
	assert_true(auth_session_csrf_ok(a, csrf_a));
	assert_false(auth_session_csrf_ok(a, NULL));
	assert_false(auth_session_csrf_ok(a, ""));
	assert_false(auth_session_csrf_ok(a, id_a));
	assert_false(auth_session_csrf_ok(b, csrf_a)); /* another session's token */
	/* not the cookie of a session: another's CSRF token, a prefix, nothing */
	assert_null(auth_session_find(s, csrf_a, t0));
	id_a[10] = '\0';
	assert_null(auth_session_find(s, id_a, t0));
	assert_null(auth_session_find(s, "", t0));
	assert_null(auth_session_find(s, NULL, t0));

	/* logout */
	assert_int_equal(auth_session_drop(s, id_b), 0);
	assert_null(auth_session_find(s, id_b, t0));
	assert_int_equal(auth_session_drop(s, id_b), -ENOENT);

	/* the lifetime ends a session */
	b = auth_session_new(s, "admin", t0);
	strcpy(id_b, b->id);
	assert_non_null(auth_session_find(s, id_b, t0 + life - 1));
	assert_null(auth_session_find(s, id_b, t0 + life));
	assert_null(auth_session_find(s, id_b, t0)); /* gone for good */
	auth_store_free(s);
}

static void test_sessions_bounded(void **state)
{
	struct auth_store *s = auth_store_new(NULL);
	char ids[AUTH_SESSIONS_MAX + 1][AUTH_SECRET_LEN + 1];

	(void)state;
	/* session i starts at i ms: session 0 ends first */
	for (size_t i = 0; i < AUTH_SESSIONS_MAX; i++)
		strcpy(ids[i], auth_session_new(s, "admin", 1 + i)->id);
	strcpy(ids[AUTH_SESSIONS_MAX], auth_session_new(s, "admin", 100)->id);
	assert_null(auth_session_find(s, ids[0], 100));
	for (size_t i = 1; i <= AUTH_SESSIONS_MAX; i++)
		assert_non_null(auth_session_find(s, ids[i], 100));
	auth_store_free(s);
}

static void test_cookie_and_bearer(void **state)
{
	static const struct {
		const char *header, *want;
	} cases[] = {
		{"egress_session=abc", "abc"}, {"a=1; egress_session=abc; b=2", "abc"},
		{"a=1;egress_session=abc  ", "abc"},
		{"egress_session=first; egress_session=second", "first"}, {"egress_session=", ""},
		{"xegress_session=abc", NULL}, {"egress_sessionx=abc", NULL},
		{"egress_session", NULL}, {"a=egress_session=abc", NULL}, {"", NULL},
		{";;; ", NULL}, {NULL, NULL},
		{"egress_session=0123456789012345678901234567890123456789012", /* 43: fits */
			"0123456789012345678901234567890123456789012"},
		{"egress_session=01234567890123456789012345678901234567890123", NULL}, /* 44 */
	};
	char buf[AUTH_SECRET_LEN + 1];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *got = auth_cookie_session(cases[i].header, buf, sizeof(buf));

		if (!cases[i].want != !got || (got && strcmp(got, cases[i].want)))
			fail_msg("\"%s\": \"%s\", expected \"%s\"",
				cases[i].header ? cases[i].header : "(null)", got ? got : "(null)",
				cases[i].want ? cases[i].want : "(null)");
	}
	assert_string_equal(auth_bearer("Bearer abc"), "abc");
	assert_string_equal(auth_bearer("bearer  abc"), "abc");
	assert_null(auth_bearer("Bearer "));
	assert_null(auth_bearer("Basic YWRtaW46YWRtaW4="));
	assert_null(auth_bearer("Bearerabc"));
	assert_null(auth_bearer(NULL));
}

static void test_tokens(void **state)
{
	struct auth_store *s = auth_store_new(dir), *again;
	char err[256] = "", *ro = NULL, *adm = NULL, *text;
	const struct auth_token *t;
	const char *why = NULL;
	struct stat st;
	char first;

	(void)state;
	unlink(in_dir(AUTH_TOKENS_FILE));
	assert_int_equal(auth_tokens_load(s, err, sizeof(err)), 0); /* no file: no token */
	assert_int_equal(auth_tokens_count(s), 0);
	assert_int_equal(auth_token_create(s, "ci", API_READ, 1700000000, &ro, &why), 0);
	assert_int_equal(
		auth_token_create(s, "deploy.bot-1", API_ADMIN, 1700000001, &adm, &why), 0);
	assert_int_equal(strlen(ro), AUTH_SECRET_LEN);
	assert_string_not_equal(ro, adm);

	t = auth_token_find(s, ro);
	assert_non_null(t);
	assert_string_equal(t->name, "ci");
	assert_int_equal(t->access, API_READ);
	assert_int_equal(t->created, 1700000000);
	t = auth_token_find(s, adm);
	assert_non_null(t);
	assert_string_equal(t->name, "deploy.bot-1");
	assert_int_equal(t->access, API_ADMIN);
	assert_null(auth_token_find(s, NULL));
	assert_null(auth_token_find(s, ""));
	first = ro[0];
	ro[0] = first == 'A' ? 'B' : 'A';
	assert_null(auth_token_find(s, ro));
	ro[0] = first;

	/* the file: 0600, no secret in it */
	assert_int_equal(stat(in_dir(AUTH_TOKENS_FILE), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	text = slurp(AUTH_TOKENS_FILE);
	assert_null(strstr(text, ro));
	assert_null(strstr(text, adm));
	assert_non_null(strstr(text, "\"deploy.bot-1\""));
	free(text);

	/* a restart keeps them */
	again = auth_store_new(dir);
	assert_int_equal(auth_tokens_load(again, err, sizeof(err)), 0);
	assert_int_equal(auth_tokens_count(again), 2);
	assert_string_equal(auth_token_find(again, ro)->name, "ci");
	assert_int_equal(auth_token_find(again, adm)->access, API_ADMIN);
	assert_int_equal(auth_token_at(again, 1)->created, 1700000001);
	assert_null(auth_token_at(again, 2));

	/* delete: gone here and after a restart */
	assert_int_equal(auth_token_delete(again, "ci"), 0);
	assert_int_equal(auth_token_delete(again, "ci"), -ENOENT);
	assert_null(auth_token_find(again, ro));
	assert_non_null(auth_token_find(again, adm));
	assert_int_equal(auth_tokens_load(s, err, sizeof(err)), 0);
	assert_null(auth_token_find(s, ro));
	assert_string_equal(auth_token_find(s, adm)->name, "deploy.bot-1");
	assert_int_equal(auth_tokens_count(s), 1);

	free(ro);
	free(adm);
	auth_store_free(s);
	auth_store_free(again);
}

static void test_tokens_refused(void **state)
{
	struct auth_store *s = auth_store_new(NULL), *bad;
	char *secret = NULL, name[80];
	const char *why = NULL;

	(void)state;
	static const char *const names[] = {"", "a b", "a/b", "ä", "x\n",
		"0123456789012345678901234567890123456789012345678", /* 49 */
		"0123456789012345678901234567890123456789012345678901234567890123456789"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		why = NULL;
		assert_int_equal(
			auth_token_create(s, names[i], API_READ, 0, &secret, &why), -EINVAL);
		assert_non_null(why);
	}
	assert_int_equal(auth_token_create(s, "x", API_OPEN, 0, &secret, &why), -EINVAL);
	assert_non_null(strstr(why, "read"));
	assert_int_equal(auth_tokens_count(s), 0);
	assert_int_equal(auth_token_create(s, "012345678901234567890123456789012345678901234567",
				 API_READ, 0, &secret, &why),
		0); /* 48 */
	free(secret);
	assert_int_equal(
		auth_token_delete(s, "012345678901234567890123456789012345678901234567"), 0);

	for (size_t i = 0; i < AUTH_TOKENS_MAX; i++) {
		snprintf(name, sizeof(name), "t%zu", i);
		assert_int_equal(auth_token_create(s, name, API_READ, 0, &secret, &why), 0);
		free(secret);
	}
	assert_int_equal(auth_token_create(s, "t0", API_READ, 0, &secret, &why), -EEXIST);
	assert_int_equal(auth_token_create(s, "more", API_READ, 0, &secret, &why), -ENOSPC);
	auth_store_free(s);

	/* a file that cannot be written: nothing changes */
	assert_int_equal(file_write_atomic(in_dir("file"), "x", 1, 0600), 0);
	bad = auth_store_new(in_dir("file"));
	secret = NULL;
	assert_int_equal(auth_token_create(bad, "ci", API_READ, 0, &secret, &why), -ENOTDIR);
	assert_null(secret);
	assert_int_equal(auth_tokens_count(bad), 0);
	auth_store_free(bad);
}

static void test_tokens_bad_file(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{"", "tokens.json:"},
		{"[]", "expected {\"tokens\": [...]}"},
		{"{\"tokens\": [], \"x\": 1}", "expected {\"tokens\": [...]}"},
		{"{\"tokens\": [{\"name\": \"a\"}]}", "tokens[0]"},
		{"{\"tokens\": [{\"name\": \"a b\", \"access\": \"read\", \"sha256\": "
		 "\"0000000000000000000000000000000000000000000000000000000000000000\", "
		 "\"created\": 1}]}",
			"tokens[0].name"},
		{"{\"tokens\": [{\"name\": \"a\", \"access\": \"root\", \"sha256\": "
		 "\"0000000000000000000000000000000000000000000000000000000000000000\", "
		 "\"created\": 1}]}",
			"tokens[0].access: expected \"read\" or \"admin\", seen \"root\""},
		{"{\"tokens\": [{\"name\": \"a\", \"access\": \"read\", \"sha256\": \"00\", "
		 "\"created\": 1}]}",
			"tokens[0].sha256"},
		{"{\"tokens\": [{\"name\": \"a\", \"access\": \"read\", \"sha256\": "
		 "\"0000000000000000000000000000000000000000000000000000000000000000\", "
		 "\"created\": 1, \"secret\": \"x\"}]}",
			"tokens[0]"},
		{"{\"tokens\": [{\"name\": \"a\", \"access\": \"read\", \"sha256\": "
		 "\"0000000000000000000000000000000000000000000000000000000000000000\", "
		 "\"created\": 1}, {\"name\": \"a\", \"access\": \"admin\", \"sha256\": "
		 "\"1111111111111111111111111111111111111111111111111111111111111111\", "
		 "\"created\": 2}]}",
			"tokens[1].name: \"a\" twice"},
	};
	struct auth_store *s = auth_store_new(dir);
	char err[512], *secret = NULL;
	const char *why;

	(void)state;
	assert_int_equal(auth_token_create(s, "kept", API_READ, 0, &secret, &why), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(file_write_atomic(in_dir(AUTH_TOKENS_FILE), bad[i].text,
					 strlen(bad[i].text), 0600),
			0);
		err[0] = '\0';
		assert_int_equal(auth_tokens_load(s, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].err) || !strstr(err, AUTH_TOKENS_FILE))
			fail_msg("\"%s\": \"%s\", expected \"%s\"", bad[i].text, err, bad[i].err);
		assert_int_equal(auth_tokens_count(s), 0);
		assert_null(auth_token_find(s, secret));
	}
	free(secret);
	auth_store_free(s);
}

static void test_rate_limit(void **state)
{
	struct auth_store *s = auth_store_new(NULL);
	const uint64_t t0 = 5000000;
	unsigned retry = 0;

	(void)state;
	for (int i = 0; i < AUTH_RATE_BURST; i++) {
		assert_int_equal(auth_rate_check(s, "192.0.2.7", t0, &retry), 0);
		auth_rate_failed(s, "192.0.2.7", t0);
	}
	assert_int_equal(auth_rate_check(s, "192.0.2.7", t0, &retry), -EAGAIN);
	assert_int_equal(retry, AUTH_RATE_INTERVAL_MS / 1000);
	assert_int_equal(auth_rate_check(s, "::ffff:192.0.2.7", t0, &retry), -EAGAIN);
	assert_int_equal(auth_rate_check(s, "192.0.2.8", t0, &retry), 0); /* another address */
	assert_int_equal(auth_rate_check(s, "unix", t0, &retry), 0);

	/* one interval later, one more try */
	assert_int_equal(
		auth_rate_check(s, "192.0.2.7", t0 + AUTH_RATE_INTERVAL_MS - 1, &retry), -EAGAIN);
	assert_int_equal(retry, 1);
	assert_int_equal(auth_rate_check(s, "192.0.2.7", t0 + AUTH_RATE_INTERVAL_MS, &retry), 0);
	auth_rate_failed(s, "192.0.2.7", t0 + AUTH_RATE_INTERVAL_MS);
	assert_int_equal(
		auth_rate_check(s, "192.0.2.7", t0 + AUTH_RATE_INTERVAL_MS, &retry), -EAGAIN);
	assert_int_equal(retry, AUTH_RATE_INTERVAL_MS / 1000);

	/* a success forgets */
	auth_rate_clear(s, "192.0.2.7");
	assert_int_equal(auth_rate_check(s, "192.0.2.7", t0 + AUTH_RATE_INTERVAL_MS, &retry), 0);

	/* IPv6: the /64 counts as one address */
	for (int i = 0; i < AUTH_RATE_BURST; i++)
		auth_rate_failed(s, i % 2 ? "2001:db8:1:2::1" : "2001:db8:1:2:a:b:c:d", t0);
	assert_int_equal(auth_rate_check(s, "2001:db8:1:2::99", t0, &retry), -EAGAIN);
	assert_int_equal(auth_rate_check(s, "2001:db8:1:3::1", t0, &retry), 0);
	auth_store_free(s);
}

static void test_rate_limit_bounded(void **state)
{
	struct auth_store *s = auth_store_new(NULL);
	const uint64_t t0 = 5000000;
	unsigned retry = 0;
	char addr[64];

	(void)state;
	/* a locked-out address, then more addresses with one failure each than the table holds */
	for (int i = 0; i < AUTH_RATE_BURST; i++)
		auth_rate_failed(s, "198.51.100.1", t0);
	for (int i = 0; i < 2 * AUTH_RATE_ADDRS; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		auth_rate_failed(s, addr, t0);
	}
	/* the table made room from those with the least against them */
	assert_int_equal(auth_rate_check(s, "198.51.100.1", t0, &retry), -EAGAIN);
	/* spent entries make room first */
	assert_int_equal(auth_rate_check(s, "198.51.100.1", t0 + 3600000, &retry), 0);
	auth_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_first_start),
		cmocka_unit_test(test_password_configured),
		cmocka_unit_test(test_password_bad_file),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_sessions_bounded),
		cmocka_unit_test(test_cookie_and_bearer),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_tokens_refused),
		cmocka_unit_test(test_tokens_bad_file),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_limit_bounded),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
