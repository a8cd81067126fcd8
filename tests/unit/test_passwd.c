/*
 * test_passwd.c - unit tests for src/core/passwd.c: a hash verifies its password and no
 * other; each hash has its own salt; a hash written elsewhere (Python's hashlib.scrypt,
 * the PHC string format) verifies; malformed or too costly hashes are refused with a
 * message that says what was expected; random tokens are base64url of the asked length.
 * Pure computation on OpenSSL: no files, no sockets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "passwd.h"
#include "util.h"

/* hashlib.scrypt(b"correct horse battery staple", salt=bytes(range(16)), n=1024, r=8, p=1,
 * dklen=32), salt and key in base64 without padding */
static const char known[] =
	"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlRU";

static void test_round_trip(void **state)
{
	char *h = NULL;

	(void)state;
	assert_int_equal(passwd_hash("s3cret pass", &h), 0);
	assert_non_null(h);
	assert_true(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
	assert_null(strstr(h, "s3cret"));
	assert_int_equal(passwd_check(h, NULL), 0);
	assert_int_equal(passwd_verify(h, "s3cret pass", NULL), 0);
	assert_int_equal(passwd_verify(h, "s3cret pas", NULL), -EACCES);
	free(h);
}

static void test_wrong_password(void **state)
{
	char *h = NULL;

	(void)state;
	assert_int_equal(passwd_hash_cost("hunter2", 10, 8, 1, &h), 0);
	assert_int_equal(passwd_verify(h, "hunter2", NULL), 0);
	assert_int_equal(passwd_verify(h, "hunter3", NULL), -EACCES);
	assert_int_equal(passwd_verify(h, "Hunter2", NULL), -EACCES);
	assert_int_equal(passwd_verify(h, "hunter2 ", NULL), -EACCES);
	assert_int_equal(passwd_verify(h, "", NULL), -EACCES);
	free(h);
}

static void test_salts_differ(void **state)
{
	char *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(passwd_hash_cost("same", 10, 8, 1, &a), 0);
	assert_int_equal(passwd_hash_cost("same", 10, 8, 1, &b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(passwd_verify(a, "same", NULL), 0);
	assert_int_equal(passwd_verify(b, "same", NULL), 0);
	free(a);
	free(b);
}

static void test_known_answer(void **state)
{
	(void)state;
	assert_int_equal(passwd_verify(known, "correct horse battery staple", NULL), 0);
	assert_int_equal(passwd_verify(known, "correct horse battery stapler", NULL), -EACCES);
}

static void test_bad_passwords_not_hashed(void **state)
{
	char *h = NULL, *longpw = xmalloc(PASSWD_MAX + 2);

	(void)state;
	assert_int_equal(passwd_hash("", &h), -EINVAL);
	memset(longpw, 'a', PASSWD_MAX + 1);
	longpw[PASSWD_MAX + 1] = '\0';
	assert_int_equal(passwd_hash_cost(longpw, 10, 8, 1, &h), -EINVAL);
	longpw[PASSWD_MAX] = '\0';
	assert_int_equal(passwd_hash_cost(longpw, 10, 8, 1, &h), 0);
	assert_int_equal(passwd_verify(h, longpw, NULL), 0);
	free(h);
	assert_int_equal(passwd_hash_cost("x", 9, 8, 1, &h), -EINVAL);
	assert_int_equal(passwd_hash_cost("x", 10, 0, 1, &h), -EINVAL);
	assert_int_equal(passwd_hash_cost("x", 10, 8, 0, &h), -EINVAL);
	free(longpw);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *hash, *why;
	} bad[] = {
		{"", "expected $scrypt$ln=N,r=N,p=N$SALT$HASH"},
		{"hunter2", "expected $scrypt$ln=N,r=N,p=N$SALT$HASH"},
		{"$2y$10$abcdefghijklmnopqrstuv", "unknown scheme"},
		{"$pbkdf2-sha256$29000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "unknown scheme"},
		{"$scrypt$", "bad parameters"},
		{"$scrypt$ln=10,p=1,r=8$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"bad parameters"},
		{"$scrypt$ln=10,r=8$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"bad parameters"},
		{"$scrypt$ln= 10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"bad parameters"},
		{"$scrypt$ln=-10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"bad parameters"},
		{"$scrypt$ln=010,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"bad parameters"},
		{"$scrypt$ln=99999,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"bad parameters"},
		{"$scrypt$ln=9,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"ln must be"},
		{"$scrypt$ln=25,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"ln must be"},
		{"$scrypt$ln=10,r=0,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"r must be"},
		{"$scrypt$ln=10,r=8,p=17$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"p must be"},
		{"$scrypt$ln=20,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"cost too high"},
		{"$scrypt$ln=18,r=8,p=16$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"cost too high"},
		{"$scrypt$ln=10,r=8,p=1$mp90zEQd5XGhjEv4WArVH4", "SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$$mp90zEQd5XGhjEv4WArVH4", "SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQ$mp90zEQd5XGhjEv4WArVH4", "SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw==$mp90zEQd5XGhjEv4WArVH4",
			"SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQF BgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4",
			"SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$A$mp90zEQd5XGhjEv4WArVH4", "SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$"
		 "AAECAwQFBgcICQoLDA0ODwAAECAwQFBgcICQoLDA0ODwAAECAwQFBgcICQoLDA0OD"
		 "wAAECAwQFBgcICQoLDA0ODwAA$mp90zEQd5XGhjEv4WArVH4",
			"SALT must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$", "HASH must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGh", "HASH must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4$",
			"HASH must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4\n",
			"HASH must be"},
		{"$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$"
		 "mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
		 "AXJlRUmp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlRUAAAA",
			"HASH must be"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *why = NULL;

		if (passwd_check(bad[i].hash, &why) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i].hash);
		assert_non_null(why);
		if (!strstr(why, bad[i].why))
			fail_msg("\"%s\": \"%s\", expected \"%s\"", bad[i].hash, why, bad[i].why);
		why = NULL;
		assert_int_equal(
			passwd_verify(bad[i].hash, "correct horse battery staple", &why), -EINVAL);
		assert_non_null(why);
	}
	/* NULL for why_ret is fine */
	assert_int_equal(passwd_check("nope", NULL), -EINVAL);
	assert_int_equal(passwd_verify("nope", "x", NULL), -EINVAL);
}

static void test_random_token(void **state)
{
	char *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(passwd_random_token(32, &a), 0);
	assert_int_equal(passwd_random_token(32, &b), 0);
	assert_int_equal(strlen(a), 43); /* 256 bits, base64 without padding */
	assert_int_equal(
		strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	for (size_t n = 1; n <= 9; n++) {
		assert_int_equal(passwd_random_token(n, &a), 0);
		assert_int_equal(strlen(a), (4 * n + 2) / 3);
		free(a);
	}
	assert_int_equal(passwd_random_token(0, &a), -EINVAL);
	assert_int_equal(passwd_random_token(257, &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_salts_differ),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_bad_passwords_not_hashed),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_random_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
