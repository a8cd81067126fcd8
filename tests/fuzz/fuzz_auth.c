/*
 * fuzz_auth.c - libFuzzer harness for what the API's authentication parses from outside:
 * a password hash (passwd_check(), as [api] password_hash or the state file give it), a
 * Cookie header (auth_cookie_session()) and an Authorization header (auth_bearer()).
 *
 * The input, cut at its first NUL, goes to each.  A hash that passes must have its form;
 * a refused one must say why; a cookie value must be a copy of bytes of the header that
 * fit the buffer; a bearer token must lie inside the header.  Nothing is hashed (the cost
 * of a hash the input names is bounded, not small), nothing logged, no file touched.
 */
#include <stdlib.h>
#include <string.h>

#include "auth_store.h"
#include "passwd.h"

#include "fuzz.h"

#define MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, buf[AUTH_SECRET_LEN + 1];
	const char *why = NULL, *v, *t;

	if (size > MAX_INPUT)
		return 0;
	s = malloc(size + 1);
	CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';

	if (passwd_check(s, &why) == 0)
		CHECK(strncmp(s, "$scrypt$ln=", 11) == 0 && strchr(s + 11, '$'));
	else
		CHECK(why && why[0]);

	v = auth_cookie_session(s, buf, sizeof(buf));
	if (v) {
		CHECK(v == buf && strlen(v) < sizeof(buf));
		CHECK(strstr(s, AUTH_COOKIE "=") && strstr(s, v));
	}

	t = auth_bearer(s);
	if (t)
		CHECK(t > s && t < s + strlen(s) && strncasecmp(s, "bearer ", 7) == 0);

	free(s);
	return 0;
}
