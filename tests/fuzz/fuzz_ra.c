/*
 * fuzz_ra.c - libFuzzer harness for the router advertisement parser (src/devices/ra.c,
 * ra_parse()).
 *
 * The input is one ICMPv6 message as anyone on the WAN link could send it.  Invariants:
 * ra_parse() returns 0 or -EBADMSG; on 0 the message is an RA of 16 bytes or more, at most
 * RA_PREFIX_MAX prefixes are kept, each IPv6 with a length of 128 or less and no host bits,
 * preferred within valid, and the router is the source given; on -EBADMSG nothing is left
 * in the result.  Any violation aborts.  No side effects.
 */
#include <errno.h>
#include <string.h>

#include "devices/ra.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ra_info ra;
	struct addr src = { .family = AF_INET6 }, copy_of;
	uint8_t *copy;
	int r;

	if (size > 1500)
		return 0;
	src.v6.s6_addr[0] = 0xfe;
	src.v6.s6_addr[1] = 0x80;
	src.v6.s6_addr[15] = 1;
	copy_of = src;
	copy = fuzz_dup(data, size);
	r = ra_parse(copy, size, &src, &ra);
	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0) {
		CHECK(ra.n_prefixes == 0 && !ra.managed && ra.router.family == 0);
		goto out;
	}
	CHECK(size >= 16 && copy[0] == 134 && copy[1] == 0);
	CHECK(addr_eq(&ra.router, &copy_of));
	CHECK(ra.n_prefixes <= RA_PREFIX_MAX);
	for (size_t i = 0; i < ra.n_prefixes; i++) {
		struct cidr c = ra.prefixes[i].prefix;

		CHECK(c.addr.family == AF_INET6 && c.plen <= 128);
		cidr_clear_hostbits(&c);
		CHECK(!memcmp(&c, &ra.prefixes[i].prefix, sizeof(c)));
		CHECK(ra.prefixes[i].preferred_s <= ra.prefixes[i].valid_s);
	}
out:
	free(copy);
	return 0;
}
