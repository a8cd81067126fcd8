/*
 * fuzz_ddns_ip.c - libFuzzer harness for the public address service's reply parser
 * (ddns_ip_parse): any body either gives a set address that formats and parses back to
 * itself, or -EINVAL with a reason; the body is read within its length only.
 */
#include <errno.h>
#include <string.h>

#include "ddns_ip.h"
#include "util.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body, why[128] = "", str[ADDR_STRLEN];
	struct addr a, b;
	int r;

	if (size > DDNS_REPLY_MAX)
		return 0;
	body = fuzz_dup(data, size);
	r = ddns_ip_parse(body, size, &a, why, sizeof(why));
	CHECK(r == 0 || r == -EINVAL);
	if (r == 0) {
		CHECK(addr_is_set(&a) && !addr_is_any(&a));
		addr_str(&a, str, sizeof(str));
		CHECK(ddns_ip_parse(str, strlen(str), &b, why, sizeof(why)) == 0);
		CHECK(addr_eq(&a, &b));
	} else {
		CHECK(why[0] != '\0');
	}
	free(body);
	return 0;
}
