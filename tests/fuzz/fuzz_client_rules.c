/*
 * fuzz_client_rules.c - libFuzzer harness for the loader of go-dispatch-proxy's client rules
 * file (dispatch_load_rules_json() in src/proxy/dispatch.c).
 *
 * The input is the file.  Two uplinks exist, "192.168.1.10:0" (index 0) and
 * "10.81.201.18:0" (index 1); every other uplink key is unknown.  Checked after each load:
 *   - the result is 0, -EINVAL, -EEXIST or -E2BIG, and the message is empty exactly on 0,
 *     NUL-terminated inside the buffer, with the bytes past the buffer untouched;
 *   - an error adds no rule; a success adds rules of two weights each in 0..1000, each of
 *     which its own prefix address is matched by (longest prefix: the rule or a longer one),
 *     and picks for those addresses return a usable uplink;
 *   - loading the same text again adds nothing: the same error if the first load failed, else
 *     -EEXIST if it added rules, else 0.
 * Any violation aborts.  No side effects: nothing is logged, no sockets, no files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dispatch.h"

#include "fuzz.h"

#define ERRLEN 200

static int resolve_cb(const char *uplink, void *arg)
{
	(void)arg;
	if (strcmp(uplink, "192.168.1.10:0") == 0)
		return 0;
	if (strcmp(uplink, "10.81.201.18:0") == 0)
		return 1;
	return -1;
}

static int load(struct dispatch *d, const uint8_t *data, size_t size)
{
	char err[ERRLEN + 16];
	size_t before = dispatch_rule_count(d);
	int r;

	memset(err, 'Z', sizeof(err));
	r = dispatch_load_rules_json(d, (const char *)data, size, resolve_cb, NULL, err, ERRLEN);
	CHECK(r == 0 || r == -EINVAL || r == -EEXIST || r == -E2BIG);
	CHECK(memchr(err, '\0', ERRLEN) != NULL);
	for (size_t i = ERRLEN; i < sizeof(err); i++)
		CHECK(err[i] == 'Z');
	if (r < 0) {
		CHECK(err[0] != '\0');
		CHECK(dispatch_rule_count(d) == before);
	} else {
		CHECK(err[0] == '\0');
		CHECK(dispatch_rule_count(d) >= before);
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dispatch_uplink up[] = {
		{.name = "192.168.1.10", .weight = 3, .usable = true},
		{.name = "10.81.201.18", .weight = 2, .usable = true},
	};
	struct dispatch *d;
	size_t n;
	int r;

	if (size > 1 << 16)
		return 0;
	d = dispatch_new();
	CHECK(dispatch_set_uplinks(d, up, 2) == 0);
	r = load(d, data, size);
	n = dispatch_rule_count(d);
	CHECK(r < 0 ? n == 0 : 1);

	for (size_t i = 0; i < n; i++) {
		const char *desc;
		const int *w;
		struct cidr c, m;
		size_t nw;
		int j;

		CHECK(dispatch_rule_get(d, i, &c, &w, &nw, &desc) == 0);
		CHECK(nw == 2);
		CHECK(w[0] >= 0 && w[0] <= 1000 && w[1] >= 0 && w[1] <= 1000);
		CHECK(!desc || (desc[0] && strlen(desc) <= DISPATCH_MAX_DESCRIPTION));
		j = dispatch_match_rule(d, &c.addr);
		CHECK(j >= 0);
		CHECK(dispatch_rule_get(d, (size_t)j, &m, NULL, NULL, NULL) == 0);
		CHECK(m.plen >= c.plen && cidr_contains(&m, &c.addr));
		CHECK(cidr_contains(&c, &c.addr));
		j = dispatch_pick(d, &c.addr, 0, -1);
		CHECK(j == 0 || j == 1);
	}

	CHECK(load(d, data, size) == (r < 0 ? r : n ? -EEXIST : 0));
	CHECK(dispatch_rule_count(d) == n);
	dispatch_free(d);
	return 0;
}
