/*
 * fuzz_cidr.c - libFuzzer harness for the address, prefix and prefix-list parsers.
 *
 * The input, cut at its first NUL, goes to addr_parse() (checked against inet_pton()),
 * cidr_parse() with several flag sets and pfxset_parse().  Whatever parses must format and
 * parse back to the same value and obey the set invariants; any violation aborts.  No other
 * side effects: nothing is logged, nothing touches the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "util.h"

#include "fuzz.h"

/* Longer inputs only slow the fuzzer down: every token is short. */
#define MAX_INPUT 4096

static const unsigned flag_sets[] = {
	0,
	CIDR_BARE,
	CIDR_HOSTBITS,
	CIDR_BARE | CIDR_HOSTBITS | CIDR_DEFAULT,
	CIDR_V4 | CIDR_BARE,
	CIDR_V6 | CIDR_HOSTBITS | CIDR_DEFAULT,
	CIDR_V4 | CIDR_V6 | CIDR_DEFAULT,
};

static void check_addr(const char *s)
{
	uint8_t buf6[16];
	char str[ADDR_STRLEN];
	struct sockaddr_storage ss;
	struct addr a, b;
	uint16_t port = 0;
	uint64_t n = 0;
	int r = addr_parse(s, &a);
	bool ok4 = inet_pton(AF_INET, s, buf6) == 1, ok6 = inet_pton(AF_INET6, s, buf6) == 1;

	CHECK(r == 0 || r == -EINVAL);
	CHECK((r == 0) == (ok4 || ok6));
	if (r < 0)
		return;
	CHECK(a.family == (ok4 ? AF_INET : AF_INET6));
	CHECK(addr_is_set(&a));
	addr_str(&a, str, sizeof(str));
	CHECK(addr_parse(str, &b) == 0);
	CHECK(addr_eq(&a, &b));
	CHECK(addr_parse_family(s, a.family, &b) == 0);
	CHECK(addr_parse_family(s, a.family == AF_INET ? AF_INET6 : AF_INET, &b) == -EINVAL);
	CHECK(addr_range_count(&a, &a, &n) == 0 && n == 1);
	CHECK(addr_to_sockaddr(&a, 443, &ss, NULL) == 0);
	CHECK(addr_from_sockaddr((const struct sockaddr *)&ss, &b, &port) == 0);
	CHECK(addr_eq(&a, &b) && port == 443);
	b = a;
	if (addr_add(&b, 1) == 0)
		CHECK(addr_cmp(&a, &b) < 0);
}

static void check_cidr(const char *s, unsigned flags)
{
	char str[CIDR_STRLEN];
	struct cidr c, d;
	unsigned bits;
	int r = cidr_parse(s, flags, &c);

	CHECK(r == 0 || r == -EINVAL || r == -ERANGE || r == -EDOM);
	CHECK(cidr_strerror(r) != NULL);
	if (r == -EDOM) {
		CHECK(!(flags & CIDR_HOSTBITS));
		CHECK(cidr_parse(s, flags | CIDR_HOSTBITS, &d) == 0);
	}
	if (r < 0)
		return;
	if (cidr_is_any_default(&c)) {
		/* "default" of each family: only where no one family is asked for */
		CHECK((flags & CIDR_DEFAULT) && streq(s, "default"));
		CHECK((flags & (CIDR_V4 | CIDR_V6)) != CIDR_V4 &&
		      (flags & (CIDR_V4 | CIDR_V6)) != CIDR_V6);
		CHECK(streq(cidr_str(&c, str, sizeof(str)), "default"));
		CHECK(cidr_parse(str, CIDR_DEFAULT, &d) == 0 && cidr_cmp(&c, &d) == 0);
		return;
	}
	bits = (unsigned)addr_len(c.addr.family) * 8;
	CHECK(bits == 32 || bits == 128);
	CHECK(c.plen <= bits);
	if ((flags & (CIDR_V4 | CIDR_V6)) == CIDR_V4)
		CHECK(c.addr.family == AF_INET);
	if ((flags & (CIDR_V4 | CIDR_V6)) == CIDR_V6)
		CHECK(c.addr.family == AF_INET6);
	if (!strchr(s, '/'))
		CHECK((flags & CIDR_BARE) || ((flags & CIDR_DEFAULT) && streq(s, "default")));
	d = c;
	cidr_clear_hostbits(&d);
	CHECK(cidr_cmp(&c, &d) == 0);
	CHECK(cidr_contains(&c, &c.addr));
	CHECK(cidr_contains_cidr(&c, &c));
	cidr_str(&c, str, sizeof(str));
	CHECK(cidr_parse(str, 0, &d) == 0);
	CHECK(cidr_cmp(&c, &d) == 0);
	if (!(flags & CIDR_HOSTBITS)) {
		CHECK(cidr_parse(s, flags | CIDR_HOSTBITS, &d) == 0);
		CHECK(cidr_cmp(&c, &d) == 0);
	}
}

/* Every parsed token is in s, every output prefix too, and the algebra holds. */
static void check_set_contents(const struct pfxset *s, const char *list, unsigned flags)
{
	struct pfxset t, u;
	struct cidr *v = NULL, c;
	char *copy = xstrdup(list), *save = NULL;
	size_t n = 0;

	for (char *tok = strtok_r(copy, ", \t\r\n\v\f", &save); tok;
		tok = strtok_r(NULL, ", \t\r\n\v\f", &save)) {
		CHECK(cidr_parse(tok, flags, &c) == 0);
		if (cidr_is_any_default(&c)) {
			/* both families whole */
			struct cidr all4 = {.addr.family = AF_INET}, all6 = {.addr.family = AF_INET6};

			CHECK(pfxset_contains(s, &all4.addr) && pfxset_contains(s, &all6.addr));
			CHECK(pfxset_count_cidrs(s, AF_UNSPEC) == 2);
			continue;
		}
		CHECK(pfxset_contains(s, &c.addr));
	}
	free(copy);

	pfxset_init(&t);
	pfxset_init(&u);
	CHECK(pfxset_to_cidrs(s, AF_UNSPEC, &v, &n) == 0);
	CHECK(n == pfxset_count_cidrs(s, AF_UNSPEC));
	CHECK((n == 0) == pfxset_empty(s));
	for (size_t i = 0; i < n; i++) {
		c = v[i];
		cidr_clear_hostbits(&c);
		CHECK(cidr_cmp(&c, &v[i]) == 0);
		CHECK(pfxset_contains(s, &v[i].addr));
		if (i) {
			CHECK(cidr_cmp(&v[i - 1], &v[i]) < 0);
			CHECK(!cidr_contains(&v[i - 1], &v[i].addr));
		}
		CHECK(pfxset_add(&t, &v[i]) == 0);
	}
	free(v);
	CHECK(pfxset_equal(&t, s));

	/* t = complement: disjoint from s, together the whole space, and back again. */
	CHECK(pfxset_complement(&t, AF_UNSPEC) == 0);
	CHECK(pfxset_copy(&u, &t) == 0);
	CHECK(pfxset_intersect(&u, s) == 0);
	CHECK(pfxset_empty(&u));
	CHECK(pfxset_copy(&u, &t) == 0);
	CHECK(pfxset_union(&u, s) == 0);
	CHECK(pfxset_count_cidrs(&u, AF_UNSPEC) == 2);
	CHECK(pfxset_complement(&t, AF_UNSPEC) == 0);
	CHECK(pfxset_equal(&t, s));
	CHECK(pfxset_subtract(&t, s) == 0);
	CHECK(pfxset_empty(&t));
	pfxset_clear(&t);
	pfxset_clear(&u);
}

static void check_set(const char *list, unsigned flags)
{
	const char *bad = NULL;
	struct pfxset s, before;
	struct cidr doc = { .addr = { .family = AF_INET }, .plen = 24 };
	int r;

	pfxset_init(&s);
	pfxset_init(&before);
	doc.addr.b[0] = 192;
	doc.addr.b[2] = 2;
	CHECK(pfxset_add(&s, &doc) == 0);
	CHECK(pfxset_copy(&before, &s) == 0);

	r = pfxset_parse(&s, list, flags, &bad);
	if (r < 0) {
		char tok[CIDR_STRLEN];
		size_t len;
		struct cidr c;

		CHECK(pfxset_equal(&s, &before));
		CHECK(bad && bad >= list && bad < list + strlen(list));
		len = strcspn(bad, ", \t\r\n\v\f");
		CHECK(len > 0);
		/* A token longer than any prefix is refused without being parsed. */
		CHECK(len < sizeof(tok) || r == -EINVAL);
		if (len < sizeof(tok)) {
			memcpy(tok, bad, len);
			tok[len] = '\0';
			CHECK(cidr_parse(tok, flags, &c) == r);
		}
	} else {
		CHECK(bad == NULL);
		CHECK(pfxset_contains(&s, &doc.addr));
		check_set_contents(&s, list, flags);
	}
	pfxset_clear(&s);
	pfxset_clear(&before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > MAX_INPUT)
		return 0;
	s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';

	check_addr(s);
	for (size_t i = 0; i < ARRAY_SIZE(flag_sets); i++)
		check_cidr(s, flag_sets[i]);
	check_set(s, CIDR_BARE | CIDR_HOSTBITS | CIDR_DEFAULT);
	check_set(s, CIDR_V6);

	free(s);
	return 0;
}
