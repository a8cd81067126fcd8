/*
 * fuzz_dns_check.c - libFuzzer harness for the DNS codec of the DNS health check
 * (src/check/check_dns_pkt.c).
 *
 * The first byte picks what the rest is:
 *   0: an answer, validated as is against the query for "probe.test" A;
 *   1: the same, but with the query's ID, flags and question written over its start, so
 *      the fuzzer spends its time in the record walk (names, compression pointers);
 *   2: a name (cut at NUL, at most 300 bytes): whatever builds must validate as its own
 *      answer once the QR bit is set, and the answer must not be accepted for another ID.
 * The validator must return 0, -ENOMSG or -EBADMSG, and an rcode below 16 with 0.  Any
 * violation aborts.  No side effects: nothing is logged, no sockets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_dns_pkt.h"

#include "fuzz.h"

static void validate(const uint8_t *m, size_t len, const uint8_t *q, size_t qlen)
{
	unsigned rcode = 99;
	int r = dns_answer_check(m, len, q, qlen, &rcode);

	CHECK(r == 0 || r == -ENOMSG || r == -EBADMSG);
	if (r == 0) {
		CHECK(rcode < 16);
		CHECK(len >= qlen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t q[DNS_QUERY_MAX], m[DNS_UDP_MAX + 64];
	size_t qlen, n;
	char name[301];
	unsigned rcode;

	if (size < 1 || size > sizeof(m) + 1)
		return 0;
	CHECK(dns_query_build(q, sizeof(q), 0xbeef, "probe.test", DNS_TYPE_A, &qlen) == 0);
	n = size - 1;
	memcpy(m, data + 1, n);
	switch (data[0] % 3) {
	case 0:
		validate(m, n, q, qlen);
		break;
	case 1:
		if (n >= qlen) {
			memcpy(m, q, qlen);
			m[2] |= 0x80; /* a response */
		}
		validate(m, n, q, qlen);
		break;
	default:
		n = n < sizeof(name) - 1 ? n : sizeof(name) - 1;
		memcpy(name, data + 1, n);
		name[n] = '\0';
		if (dns_query_build(q, sizeof(q), 0x1234, name, dns_check_qtype(name), &qlen) < 0)
			break;
		CHECK(qlen >= DNS_HEADER_LEN + 5 && qlen <= DNS_QUERY_MAX);
		memcpy(m, q, qlen);
		m[2] |= 0x80;
		CHECK(dns_answer_check(m, qlen, q, qlen, &rcode) == 0 && rcode == 0);
		m[1] ^= 1;
		CHECK(dns_answer_check(m, qlen, q, qlen, &rcode) == -ENOMSG);
		break;
	}
	return 0;
}
