/*
 * fuzz_dns_msg.c - libFuzzer harness for the forwarder's DNS codec and cache
 * (src/dns/dns_msg.c, src/dns/dns_cache.c).
 *
 * The input is one message, as a client or a resolver could send it.  Invariants:
 *   - dns_msg_parse() returns 0 or -EBADMSG; on 0 every offset lies within the message,
 *     the name within 255 bytes, and records_ok is false only with TC set;
 *   - a message with a question gets a short reply (dns_msg_reply) that parses again,
 *     asks the same question and carries TC when asked to;
 *   - ageing a well-formed message keeps it well formed with the same counts and no
 *     larger TTL, or says it cannot (names compressed against TTL bytes);
 *   - what the cache takes it gives back whole, with the asker's ID, and parseable (or
 *     drops, when ageing cannot);
 *   - dns_name_text() stays within any buffer;
 *   - dns_msg_chain() (what the DNS watch is told) stays within its bounds: names
 *     NUL-terminated without a trailing dot, distinct, addresses of either family.
 * Any violation aborts.  No side effects: nothing is logged, no sockets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns_cache.h"
#include "dns/dns_msg.h"

#include "fuzz.h"

static void check_reply(const uint8_t *m, size_t len, const struct dns_msg *q)
{
	uint8_t buf[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
	struct dns_msg r;
	size_t rlen;

	CHECK(dns_msg_reply(m, len, q, DNS_RCODE_SERVFAIL, true, buf, sizeof(buf), &rlen) == 0);
	CHECK(rlen <= sizeof(buf));
	CHECK(dns_msg_parse(buf, rlen, &r) == 0);
	CHECK(r.id == q->id);
	CHECK(r.flags & DNS_FLAG_QR);
	CHECK(r.flags & DNS_FLAG_TC);
	CHECK(DNS_RCODE(r.flags) == DNS_RCODE_SERVFAIL);
	CHECK(r.ancount == 0 && r.nscount == 0);
	CHECK(r.edns == q->edns);
	if (q->question_end)
		CHECK(dns_msg_same_question(q, &r));
	else
		CHECK(r.qdcount == 0);
	CHECK(dns_msg_reply(m, len, NULL, DNS_RCODE_FORMERR, false, buf, sizeof(buf), &rlen) == 0);
	CHECK(rlen == DNS_HEADER_LEN);
	CHECK(dns_msg_reply(m, len, q, 0, false, buf, 11, &rlen) == -ENOBUFS);
}

static void check_age(const uint8_t *m, size_t len, const struct dns_msg *a)
{
	uint8_t *copy = malloc(len);
	struct dns_msg b;

	int r;

	memcpy(copy, m, len);
	r = dns_msg_age(copy, len, 1 + (uint32_t)(len % 1000));
	/* -EBADMSG only for names compressed against TTL bytes */
	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		goto out;
	CHECK(dns_msg_parse(copy, len, &b) == 0);
	CHECK(b.records_ok);
	CHECK(b.ancount == a->ancount && b.nscount == a->nscount && b.arcount == a->arcount);
	CHECK(b.end == a->end);
	CHECK(b.min_ttl <= a->min_ttl);
	CHECK(b.edns == a->edns && b.edns_do == a->edns_do && b.edns_udp == a->edns_udp);
out:
	free(copy);
}

static void check_cache(const uint8_t *m, size_t len, const struct dns_msg *a)
{
	struct dns_cache *c = dns_cache_new(2);
	struct dns_msg q = *a, r;
	uint32_t ttl;
	uint8_t *hit;
	size_t hl;
	int put, r0;

	/* the message asked of itself, by another client with another ID */
	q.id = (uint16_t)(a->id + 1);
	q.flags = DNS_FLAG_RD;
	put = dns_cache_put(c, &q, m, len, a, 1000);
	CHECK(put == 0 || put == -ENOENT || put == -EINVAL);
	CHECK((put == 0) ==
		(dns_msg_cache_ttl(a, &ttl) == 0 && a->question_end != 0 && !a->edns_ecs &&
			dns_msg_opt_strippable(a) &&
			len - a->opt_rdlen <= 2 * DNS_CACHE_BYTES_PER_ENTRY));
	if (put == 0) {
		CHECK(ttl > 0);
		CHECK(dns_cache_count(c) == 1);
		r0 = dns_cache_get(c, &q, 1000 + 999, &hit, &hl);
		CHECK(r0 == 0 || r0 == -ENOENT);
		if (r0 < 0) {
			/* ageing broke it (see check_age): dropped, not served */
			CHECK(dns_cache_count(c) == 0);
			goto out;
		}
		CHECK(hl == len - a->opt_rdlen); /* the options are not kept */
		CHECK(dns_msg_parse(hit, hl, &r) == 0);
		CHECK(r.id == q.id);
		CHECK(dns_msg_same_question(&q, &r));
		free(hit);
		/* expired once the lowest TTL has passed (cut to the cache's maximum) */
		CHECK(dns_cache_get(c, &q, 1000 + (uint64_t)ttl * 1000, &hit, &hl) == -ENOENT);
		CHECK(dns_cache_count(c) == 0);
	} else {
		CHECK(dns_cache_get(c, &q, 1000, &hit, &hl) == -ENOENT);
	}
out:
	dns_cache_free(c);
}

static void check_chain(const uint8_t *m, size_t size, const struct dns_msg *a)
{
	static struct dns_chain ch;
	int r = dns_msg_chain(m, size, a, &ch);

	CHECK(r == 0 || r == -ENOENT || r == -EBADMSG);
	if (r < 0)
		return;
	CHECK(ch.n_names >= 1 && ch.n_names <= DNS_CHAIN_NAMES);
	CHECK(ch.n_addrs <= DNS_CHAIN_ADDRS);
	for (size_t i = 0; i < ch.n_names; i++) {
		size_t l = strnlen(ch.names[i], DNS_CHAIN_TEXT);

		CHECK(l < DNS_CHAIN_TEXT);
		CHECK(l == 1 || ch.names[i][l - 1] != '.');
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(ch.names[i], ch.names[j]) != 0);
	}
	for (size_t i = 0; i < ch.n_addrs; i++)
		CHECK(ch.addrs[i].family == AF_INET || ch.addrs[i].family == AF_INET6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_msg a;
	uint8_t *m;
	char text[DNS_NAME_TEXT_MAX], small[7];
	int r;

	if (size > DNS_MSG_MAX)
		return 0;
	/* an exact copy, so a read past the end is caught */
	m = malloc(size ? size : 1);
	memcpy(m, data, size);
	r = dns_msg_parse(m, size, &a);
	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		goto out;
	CHECK(size >= DNS_HEADER_LEN);
	CHECK(a.qdcount <= 1);
	CHECK(a.question_end <= size && a.end <= size);
	CHECK(a.question_end == 0 || a.question_end >= DNS_HEADER_LEN + 5);
	CHECK(a.qname_len <= DNS_NAME_MAX);
	CHECK(a.records_ok || (a.flags & DNS_FLAG_TC));
	if (a.question_end) {
		CHECK(a.qname_len >= 1);
		dns_name_text(a.qname, a.qname_len, text, sizeof(text));
		CHECK(strlen(text) < sizeof(text));
		dns_name_text(a.qname, a.qname_len, small, sizeof(small));
		CHECK(strlen(small) < sizeof(small));
	}
	check_reply(m, size, &a);
	if (a.records_ok)
		check_age(m, size, &a);
	check_cache(m, size, &a);
	check_chain(m, size, &a);
out:
	free(m);
	return 0;
}
