/*
 * test_dns_msg.c - the DNS message codec (src/dns/dns_msg.c): canned queries and answers,
 * EDNS0 OPT records, compression pointers (loops included), truncation at every length,
 * TTLs for the cache, short replies and TTL ageing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dns_msg.h"
#include "util.h"

/* ------------------------------------------------------------ a message builder */

struct mb {
	uint8_t b[4096];
	size_t n;
};

static void mb_u8(struct mb *m, uint8_t v)
{
	assert_true(m->n < sizeof(m->b));
	m->b[m->n++] = v;
}

static void mb_u16(struct mb *m, uint16_t v)
{
	mb_u8(m, (uint8_t)(v >> 8));
	mb_u8(m, (uint8_t)v);
}

static void mb_u32(struct mb *m, uint32_t v)
{
	mb_u16(m, (uint16_t)(v >> 16));
	mb_u16(m, (uint16_t)v);
}

static void mb_hdr(struct mb *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
	uint16_t ns, uint16_t ar)
{
	m->n = 0;
	mb_u16(m, id);
	mb_u16(m, flags);
	mb_u16(m, qd);
	mb_u16(m, an);
	mb_u16(m, ns);
	mb_u16(m, ar);
}

/* "a.b.c" uncompressed; "" or "." is the root */
static void mb_name(struct mb *m, const char *name)
{
	const char *p = name;

	while (*p && strcmp(p, ".")) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		mb_u8(m, (uint8_t)l);
		for (size_t i = 0; i < l; i++)
			mb_u8(m, (uint8_t)p[i]);
		p += l;
		if (*p == '.')
			p++;
	}
	mb_u8(m, 0);
}

static void mb_ptr(struct mb *m, uint16_t off)
{
	mb_u16(m, (uint16_t)(0xc000 | off));
}

static void mb_question(struct mb *m, const char *name, uint16_t type)
{
	mb_name(m, name);
	mb_u16(m, type);
	mb_u16(m, DNS_CLASS_IN);
}

/* type, class, ttl, rdlength after an owner name already written */
static void mb_rr_tail(struct mb *m, uint16_t type, uint16_t class, uint32_t ttl, uint16_t rdlen)
{
	mb_u16(m, type);
	mb_u16(m, class);
	mb_u32(m, ttl);
	mb_u16(m, rdlen);
}

static void mb_a(struct mb *m, uint32_t ttl, uint32_t addr)
{
	mb_ptr(m, DNS_HEADER_LEN);
	mb_rr_tail(m, DNS_TYPE_A, DNS_CLASS_IN, ttl, 4);
	mb_u32(m, addr);
}

static void mb_opt(struct mb *m, uint16_t size, bool dnssec_ok)
{
	mb_u8(m, 0);
	mb_rr_tail(m, DNS_TYPE_OPT, size, dnssec_ok ? DNS_EDNS_DO : 0, 0);
}

/* SOA owned by the root zone "test.", MNAME/RNAME compressed against it */
static void mb_soa(struct mb *m, uint32_t ttl, uint32_t minimum)
{
	size_t owner = m->n;

	mb_name(m, "test");
	mb_rr_tail(m, DNS_TYPE_SOA, DNS_CLASS_IN, ttl, 2 + 4 + 2 + 20);
	mb_ptr(m, (uint16_t)owner); /* MNAME = test. */
	mb_u8(m, 3);		     /* RNAME = nsx.test. */
	mb_u8(m, 'n');
	mb_u8(m, 's');
	mb_u8(m, 'x');
	mb_ptr(m, (uint16_t)owner);
	mb_u32(m, 1);	 /* serial */
	mb_u32(m, 3600); /* refresh */
	mb_u32(m, 600);	 /* retry */
	mb_u32(m, 86400); /* expire */
	mb_u32(m, minimum);
}

/* Parse a copy in a buffer of exactly len bytes, so ASan sees any read past the end. */
static int parse_exact(const uint8_t *b, size_t len, struct dns_msg *ret)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	memcpy(copy, b, len);
	r = dns_msg_parse(copy, len, ret);
	free(copy);
	return r;
}

/* ------------------------------------------------------------ canned packets */

/* dig +dnssec www.Example.COM A: EDNS0 4096, DO, RD, AD (as dig 9.18 sends it) */
static const uint8_t q_www[] = {
	0x4a, 0x61, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* header */
	0x03, 'w', 'w', 'w', 0x07, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 'C', 'O', 'M', 0x00,
	0x00, 0x01, 0x00, 0x01,					/* A IN */
	0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, /* OPT 4096 DO */
};

/* its answer: a CNAME and an A, both compressed against the question, and the OPT */
static const uint8_t a_www[] = {
	0x4a, 0x61, 0x81, 0xa0, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
	0x03, 'w', 'w', 'w', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 'c', 'o', 'm', 0x00,
	0x00, 0x01, 0x00, 0x01,
	/* www.example.com CNAME web.example.com, TTL 300 */
	0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06,
	0x03, 'w', 'e', 'b', 0xc0, 0x10,
	/* web.example.com A 93.184.216.34, TTL 120 */
	0xc0, 0x2d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x04,
	93, 184, 216, 34,
	/* OPT 1232, DO */
	0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
};

static void test_query(void **state)
{
	struct dns_msg q;
	char text[DNS_NAME_TEXT_MAX];

	(void)state;
	assert_int_equal(parse_exact(q_www, sizeof(q_www), &q), 0);
	assert_int_equal(q.id, 0x4a61);
	assert_int_equal(q.flags & DNS_FLAG_QR, 0);
	assert_int_equal(q.flags & DNS_FLAG_RD, DNS_FLAG_RD);
	assert_int_equal(q.qdcount, 1);
	assert_int_equal(q.qtype, DNS_TYPE_A);
	assert_int_equal(q.qclass, DNS_CLASS_IN);
	assert_int_equal(q.qname_len, 17);
	assert_int_equal(q.question_end, 33);
	assert_string_equal(dns_name_text(q.qname, q.qname_len, text, sizeof(text)),
		"www.Example.COM.");
	assert_true(q.records_ok);
	assert_int_equal(q.end, sizeof(q_www));
	assert_true(q.edns);
	assert_int_equal(q.edns_udp, 4096);
	assert_true(q.edns_do);
	assert_int_equal(q.edns_version, 0);
	assert_int_equal(dns_msg_udp_limit(&q), 4096);
	/* no record but OPT: no TTL */
	assert_int_equal(q.min_ttl, UINT32_MAX);
}

static void test_udp_limit(void **state)
{
	struct mb m;
	struct dns_msg q;

	(void)state;
	/* without OPT: 512 */
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 0, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_false(q.edns);
	assert_false(q.edns_do);
	assert_int_equal(dns_msg_udp_limit(&q), 512);
	/* an OPT below 512 means 512 (RFC 6891 6.2.5) */
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 0, 0, 1);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_opt(&m, 100, false);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_true(q.edns);
	assert_int_equal(q.edns_udp, 100);
	assert_int_equal(dns_msg_udp_limit(&q), 512);
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 0, 0, 1);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_opt(&m, 1400, false);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_int_equal(dns_msg_udp_limit(&q), 1400);
}

static void test_answer(void **state)
{
	struct dns_msg q, a, other;
	struct mb m;
	uint32_t ttl;

	(void)state;
	assert_int_equal(parse_exact(q_www, sizeof(q_www), &q), 0);
	assert_int_equal(parse_exact(a_www, sizeof(a_www), &a), 0);
	assert_true(a.flags & DNS_FLAG_QR);
	assert_int_equal(a.ancount, 2);
	assert_true(a.records_ok);
	assert_int_equal(a.end, sizeof(a_www));
	assert_int_equal(a.min_ttl, 120);
	assert_true(a.edns);
	assert_int_equal(a.edns_udp, 1232);
	assert_false(a.soa);
	/* the question is the same although the case differs */
	assert_true(dns_msg_same_question(&q, &a));
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), 0);
	assert_int_equal(ttl, 120);

	/* another type, another name, another class: not the same question */
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	mb_question(&m, "www.example.com", DNS_TYPE_AAAA);
	assert_int_equal(parse_exact(m.b, m.n, &other), 0);
	assert_false(dns_msg_same_question(&q, &other));
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	mb_question(&m, "www.example.co", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &other), 0);
	assert_false(dns_msg_same_question(&q, &other));
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	mb_name(&m, "www.example.com");
	mb_u16(&m, DNS_TYPE_A);
	mb_u16(&m, 3); /* CH */
	assert_int_equal(parse_exact(m.b, m.n, &other), 0);
	assert_false(dns_msg_same_question(&q, &other));
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	mb_question(&m, "WWW.EXAMPLE.COM", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &other), 0);
	assert_true(dns_msg_same_question(&q, &other));
	/* no question at all */
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_RCODE_FORMERR, 0, 0, 0, 0);
	assert_int_equal(parse_exact(m.b, m.n, &other), 0);
	assert_int_equal(other.question_end, 0);
	assert_false(dns_msg_same_question(&q, &other));
	assert_int_equal(dns_msg_cache_ttl(&other, &ttl), -ENOENT);
}

static void test_two_questions(void **state)
{
	struct mb m;
	struct dns_msg q;

	(void)state;
	mb_hdr(&m, 1, 0, 2, 0, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_question(&m, "b.test", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &q), -EBADMSG);
	/* the header is still read */
	assert_int_equal(q.qdcount, 2);
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
}

/* What a query may carry: one question, no answer or authority records; the additional
 * section is open (OPT, TSIG). */
static void test_query_sections(void **state)
{
	struct mb m;
	struct dns_msg q;

	(void)state;
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 0, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_true(dns_msg_query_ok(&q));
	/* an answer record */
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 1, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_a(&m, 60, 0x0a000001);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_false(dns_msg_query_ok(&q));
	/* an authority record */
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 0, 1, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_soa(&m, 60, 60);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_false(dns_msg_query_ok(&q));
	/* additional records (a TSIG, class ANY, and an OPT): allowed */
	mb_hdr(&m, 1, DNS_FLAG_RD, 1, 0, 0, 2);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_name(&m, "key.test");
	mb_rr_tail(&m, 250, 255, 0, 4);
	mb_u32(&m, 0);
	mb_opt(&m, 1232, false);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_true(dns_msg_query_ok(&q));
	/* no question */
	mb_hdr(&m, 1, DNS_FLAG_RD, 0, 0, 0, 0);
	assert_int_equal(parse_exact(m.b, m.n, &q), 0);
	assert_false(dns_msg_query_ok(&q));
}

static void test_pointers(void **state)
{
	uint8_t name[DNS_NAME_MAX];
	size_t nl, next;
	struct mb m;
	struct dns_msg a;

	(void)state;
	/* a pointer to an earlier name is followed */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 1, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_a(&m, 60, 0x01020304);
	assert_int_equal(dns_name_read(m.b, m.n, 24, name, &nl, &next), 0);
	assert_int_equal(nl, 8);
	assert_memory_equal(name, "\001a\004test", 8);
	assert_int_equal(next, 26);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);

	/* a pointer to itself: a loop */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
	mb_ptr(&m, DNS_HEADER_LEN);
	mb_u16(&m, DNS_TYPE_A);
	mb_u16(&m, DNS_CLASS_IN);
	assert_int_equal(parse_exact(m.b, m.n, &a), -EBADMSG);
	assert_int_equal(dns_name_read(m.b, m.n, 12, name, &nl, &next), -EBADMSG);

	/* two names pointing at each other: the forward one is refused, so no loop */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 1, 0, 0);
	mb_u8(&m, 1);
	mb_u8(&m, 'x');
	mb_ptr(&m, 20); /* forward, to the answer's owner */
	mb_u16(&m, DNS_TYPE_A);
	mb_u16(&m, DNS_CLASS_IN);
	assert_int_equal(m.n, 20);
	mb_u8(&m, 1);
	mb_u8(&m, 'y');
	mb_ptr(&m, 12); /* backward, to the question */
	mb_rr_tail(&m, DNS_TYPE_A, DNS_CLASS_IN, 60, 4);
	mb_u32(&m, 0);
	assert_int_equal(parse_exact(m.b, m.n, &a), -EBADMSG);
	assert_int_equal(dns_name_read(m.b, m.n, 20, name, &nl, &next), -EBADMSG);

	/* into the header */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
	mb_ptr(&m, 4);
	assert_int_equal(dns_name_read(m.b, m.n, 12, name, &nl, &next), -EBADMSG);

	/* a pointer cut in half */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
	mb_question(&m, "a", DNS_TYPE_A);
	mb_u8(&m, 0xc0);
	assert_int_equal(dns_name_read(m.b, m.n, m.n - 1, name, &nl, &next), -EBADMSG);

	/* extended label types 0x40 and 0x80 */
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	mb_u8(&m, 0x41);
	mb_u8(&m, 'a');
	mb_u8(&m, 0);
	assert_int_equal(dns_name_read(m.b, m.n, 12, name, &nl, &next), -EBADMSG);
	m.b[12] = 0x81;
	assert_int_equal(dns_name_read(m.b, m.n, 12, name, &nl, &next), -EBADMSG);
	m.b[12] = 0x01;
	assert_int_equal(dns_name_read(m.b, m.n, 12, name, &nl, &next), 0);
	assert_int_equal(nl, 3);
}

/* Pointers can repeat labels to build a name longer than 255 bytes: refused. */
/* A chain of pointers to pointers: DNS_PTR_MAX jumps are followed, one more is refused (a
 * long chain would cost a walk per record over the whole message). */
static void test_pointer_chain(void **state)
{
	uint8_t m[12 + 3 + 2 * (DNS_PTR_MAX + 1)] = {0}, out[DNS_NAME_MAX];
	size_t pos = 12, ol, next;

	(void)state;
	m[pos++] = 1;
	m[pos++] = 'a';
	m[pos++] = 0;
	for (size_t k = 0; k <= DNS_PTR_MAX; k++) {
		size_t target = k == 0 ? 12 : pos - 2;
		m[pos] = (uint8_t)(0xc0 | target >> 8);
		m[pos + 1] = (uint8_t)target;
		pos += 2;
	}
	/* the pointer DNS_PTR_MAX pointers in: reached with exactly DNS_PTR_MAX jumps */
	assert_int_equal(dns_name_read(m, sizeof(m), pos - 4, out, &ol, &next), 0);
	assert_int_equal(ol, 3);
	assert_int_equal(next, pos - 2);
	/* the last one needs one jump more */
	assert_int_equal(dns_name_read(m, sizeof(m), pos - 2, out, &ol, &next), -EBADMSG);
}

static void test_name_too_long(void **state)
{
	uint8_t name[DNS_NAME_MAX];
	size_t nl, next, prev;
	struct mb m;

	(void)state;
	mb_hdr(&m, 1, 0, 1, 0, 0, 0);
	/* 63-byte label + root */
	prev = m.n;
	mb_u8(&m, 63);
	for (int i = 0; i < 63; i++)
		mb_u8(&m, 'a');
	mb_u8(&m, 0);
	/* each link adds 64 bytes by pointing at the previous one: 64, 128, 192, 256 */
	for (int k = 0; k < 3; k++) {
		size_t here = m.n;

		mb_u8(&m, 63);
		for (int i = 0; i < 63; i++)
			mb_u8(&m, 'b');
		mb_ptr(&m, (uint16_t)prev);
		if (k < 2) {
			assert_int_equal(dns_name_read(m.b, m.n, here, name, &nl, &next), 0);
			assert_int_equal(nl, 64 * (size_t)(k + 2) + 1);
		} else {
			assert_int_equal(dns_name_read(m.b, m.n, here, name, &nl, &next), -EBADMSG);
		}
		prev = here;
	}
}

static void test_truncation_every_length(void **state)
{
	struct dns_msg a;
	uint8_t tc[sizeof(a_www)];

	(void)state;
	for (size_t n = 0; n < sizeof(a_www); n++)
		assert_int_equal(parse_exact(a_www, n, &a), -EBADMSG);
	assert_int_equal(parse_exact(a_www, sizeof(a_www), &a), 0);

	/* with TC set, a cut in the records is allowed, a cut in the question is not */
	memcpy(tc, a_www, sizeof(tc));
	tc[2] |= DNS_FLAG_TC >> 8;
	for (size_t n = 0; n < sizeof(tc); n++) {
		int r = parse_exact(tc, n, &a);

		if (n < 33) {
			assert_int_equal(r, -EBADMSG);
		} else {
			assert_int_equal(r, 0);
			assert_false(a.records_ok);
			assert_int_equal(a.question_end, 33);
		}
	}
	assert_int_equal(parse_exact(tc, sizeof(tc), &a), 0);
	assert_true(a.records_ok);
	/* and it is never cached */
	uint32_t ttl;
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
}

static void test_opt(void **state)
{
	struct mb m;
	struct dns_msg a;

	(void)state;
	/* two OPT records (RFC 6891 6.1.1: FORMERR) */
	mb_hdr(&m, 1, 0, 1, 0, 0, 2);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_opt(&m, 1232, false);
	mb_opt(&m, 1232, false);
	assert_int_equal(parse_exact(m.b, m.n, &a), -EBADMSG);
	/* OPT in the answer section */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 1, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_opt(&m, 1232, false);
	assert_int_equal(parse_exact(m.b, m.n, &a), -EBADMSG);
	/* OPT owned by another name than the root */
	mb_hdr(&m, 1, 0, 1, 0, 0, 1);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_ptr(&m, DNS_HEADER_LEN);
	mb_rr_tail(&m, DNS_TYPE_OPT, 1232, 0, 0);
	assert_int_equal(parse_exact(m.b, m.n, &a), -EBADMSG);
	/* one OPT with an option (a cookie) and an extended rcode, version 1 */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 1);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_u8(&m, 0);
	mb_rr_tail(&m, DNS_TYPE_OPT, 1232, 0x01018000, 12);
	mb_u16(&m, 10); /* COOKIE */
	mb_u16(&m, 8);
	mb_u32(&m, 0x01020304);
	mb_u32(&m, 0x05060708);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_true(a.edns);
	assert_int_equal(a.edns_ext_rcode, 1);
	assert_int_equal(a.edns_version, 1);
	assert_true(a.edns_do);
	assert_int_equal(a.min_ttl, UINT32_MAX);
}

static void test_negative(void **state)
{
	struct mb m;
	struct dns_msg a;
	uint32_t ttl;

	(void)state;
	/* NXDOMAIN with SOA: min(SOA TTL, MINIMUM) */
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
	mb_question(&m, "nx.test", DNS_TYPE_A);
	mb_soa(&m, 900, 300);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_true(a.soa);
	assert_int_equal(a.soa_ttl, 300);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), 0);
	assert_int_equal(ttl, 300);
	/* the SOA's own TTL is lower */
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
	mb_question(&m, "nx.test", DNS_TYPE_A);
	mb_soa(&m, 30, 300);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), 0);
	assert_int_equal(ttl, 30);
	/* NODATA: NOERROR without answers, with SOA */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 1, 0);
	mb_question(&m, "a.test", DNS_TYPE_AAAA);
	mb_soa(&m, 900, 60);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), 0);
	assert_int_equal(ttl, 60);
	/* negative without SOA: not cached */
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
	mb_question(&m, "nx.test", DNS_TYPE_A);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
	/* an SOA whose data is cut short */
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
	mb_question(&m, "nx.test", DNS_TYPE_A);
	mb_name(&m, "test");
	mb_rr_tail(&m, DNS_TYPE_SOA, DNS_CLASS_IN, 60, 3);
	mb_u8(&m, 0);
	mb_u8(&m, 0);
	mb_u8(&m, 0);
	assert_int_equal(parse_exact(m.b, m.n, &a), -EBADMSG);
}

static void test_not_cacheable(void **state)
{
	struct mb m;
	struct dns_msg a;
	uint32_t ttl;

	(void)state;
	/* SERVFAIL, REFUSED */
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_RCODE_SERVFAIL, 1, 0, 1, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_soa(&m, 60, 60);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
	m.b[3] = (uint8_t)(m.b[3] & 0xf0) | DNS_RCODE_REFUSED;
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
	/* a query, not a response */
	mb_hdr(&m, 1, 0, 1, 1, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_a(&m, 60, 1);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
	m.b[2] |= 0x80;
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), 0);
	assert_int_equal(ttl, 60);
	/* TTL 0, and a TTL with the top bit set (RFC 2181 8: means 0) */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 1, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_a(&m, 0, 1);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 2, 0, 0);
	mb_question(&m, "a.test", DNS_TYPE_A);
	mb_a(&m, 60, 1);
	mb_a(&m, 0x80000001u, 2);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(a.min_ttl, 0);
	assert_int_equal(dns_msg_cache_ttl(&a, &ttl), -ENOENT);
}

static void test_reply(void **state)
{
	struct dns_msg q, r;
	uint8_t buf[512];
	size_t len;

	(void)state;
	assert_int_equal(parse_exact(q_www, sizeof(q_www), &q), 0);
	assert_int_equal(dns_msg_reply(q_www, sizeof(q_www), &q, DNS_RCODE_SERVFAIL, false, buf,
				 sizeof(buf), &len),
		0);
	assert_int_equal(len, sizeof(q_www));
	assert_int_equal(parse_exact(buf, len, &r), 0);
	assert_int_equal(r.id, 0x4a61);
	assert_true(r.flags & DNS_FLAG_QR);
	assert_true(r.flags & DNS_FLAG_RA);
	assert_true(r.flags & DNS_FLAG_RD);
	assert_false(r.flags & DNS_FLAG_TC);
	assert_false(r.flags & DNS_FLAG_AD);
	assert_int_equal(DNS_RCODE(r.flags), DNS_RCODE_SERVFAIL);
	assert_true(dns_msg_same_question(&q, &r));
	assert_memory_equal(buf + 12, q_www + 12, 21);
	assert_true(r.edns);
	assert_int_equal(r.edns_udp, DNS_EDNS_UDP);
	assert_true(r.edns_do);
	assert_int_equal(r.ancount + r.nscount, 0);

	/* TC: header and question (and OPT), nothing more */
	assert_int_equal(dns_msg_reply(q_www, sizeof(q_www), &q, 0, true, buf, sizeof(buf), &len),
		0);
	assert_int_equal(parse_exact(buf, len, &r), 0);
	assert_true(r.flags & DNS_FLAG_TC);
	assert_int_equal(DNS_RCODE(r.flags), 0);

	/* no parsed query: the header only, qdcount 0 */
	assert_int_equal(dns_msg_reply(q_www, sizeof(q_www), NULL, DNS_RCODE_FORMERR, false, buf,
				 sizeof(buf), &len),
		0);
	assert_int_equal(len, DNS_HEADER_LEN);
	assert_int_equal(parse_exact(buf, len, &r), 0);
	assert_int_equal(r.qdcount, 0);
	assert_int_equal(r.id, 0x4a61);
	assert_int_equal(DNS_RCODE(r.flags), DNS_RCODE_FORMERR);

	/*
	 * A question whose pointer leads back into its own label, and that label runs past
	 * the question (into the root owner of the next record): the reply writes the name
	 * out instead of copying the bytes.
	 */
	static const uint8_t q_odd[] = {
		0x00, 0x09, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x03, 'a', 0x07, 'b', 0xc0, 0x0e, 0x00, 0x01, 0x00, 0x01, /* question */
		0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* . TXT */
	};
	assert_int_equal(parse_exact(q_odd, sizeof(q_odd), &q), 0);
	assert_int_equal(q.question_end, 22);
	assert_int_equal(q.qname_len, 13);
	assert_int_equal(q.qtype, DNS_TYPE_A);
	assert_int_equal(dns_msg_reply(q_odd, sizeof(q_odd), &q, 0, true, buf, sizeof(buf), &len),
		0);
	assert_int_equal(len, DNS_HEADER_LEN + 13 + 4);
	assert_int_equal(parse_exact(buf, len, &r), 0);
	assert_true(dns_msg_same_question(&q, &r));
	assert_int_equal(r.qtype, DNS_TYPE_A);

	/* too small a buffer, too short a query */
	assert_int_equal(parse_exact(q_www, sizeof(q_www), &q), 0);
	assert_int_equal(dns_msg_reply(q_www, sizeof(q_www), &q, 0, false, buf, sizeof(q_www) - 1,
				 &len),
		-ENOBUFS);
	assert_int_equal(dns_msg_reply(q_www, 11, NULL, 0, false, buf, sizeof(buf), &len), -EINVAL);
}

static void test_age(void **state)
{
	uint8_t m[sizeof(a_www)];
	struct dns_msg a;

	(void)state;
	memcpy(m, a_www, sizeof(m));
	assert_int_equal(dns_msg_age(m, sizeof(m), 100), 0);
	assert_int_equal(parse_exact(m, sizeof(m), &a), 0);
	assert_int_equal(a.min_ttl, 20);
	assert_int_equal(dns_get32(m + 39), 200); /* CNAME: 300 - 100 */
	assert_int_equal(dns_get32(m + 57), 20);  /* A: 120 - 100 */
	/* the OPT's TTL field holds flags: untouched */
	assert_int_equal(dns_get32(m + sizeof(m) - 6), DNS_EDNS_DO);
	/* down to 0, not below */
	assert_int_equal(dns_msg_age(m, sizeof(m), 1000), 0);
	assert_int_equal(dns_get32(m + 39), 0);
	assert_int_equal(dns_get32(m + 57), 0);
	assert_int_equal(dns_get32(m + sizeof(m) - 6), DNS_EDNS_DO);
	/* not a message */
	assert_int_equal(dns_msg_age(m, 20, 1), -EBADMSG);
}

static void test_names(void **state)
{
	uint8_t n[] = {3, 'W', 'w', 'W', 4, 'a', '.', 0xff, 'Z', 0};
	char text[DNS_NAME_TEXT_MAX], small[6];

	(void)state;
	assert_string_equal(dns_name_text(n, sizeof(n), text, sizeof(text)), "WwW.a\\046\\255Z.");
	assert_string_equal(dns_name_text((const uint8_t *)"", 1, text, sizeof(text)), ".");
	/* cut, still terminated */
	assert_string_equal(dns_name_text(n, sizeof(n), small, sizeof(small)), "WwW.a");
	assert_true(dns_name_eq(n, sizeof(n), (const uint8_t *)"\003www\004a.\377z", sizeof(n)));
	assert_false(dns_name_eq(n, sizeof(n), (const uint8_t *)"\003wwx\004a.\377z", sizeof(n)));
	assert_false(dns_name_eq(n, sizeof(n), n, sizeof(n) - 1));
	dns_name_lower(n, sizeof(n));
	assert_memory_equal(n, "\003www\004a.\377z", sizeof(n));
	assert_string_equal(dns_rcode_name(DNS_RCODE_NXDOMAIN), "NXDOMAIN");
	assert_string_equal(dns_rcode_name(12), "RCODE12");
	assert_string_equal(dns_rcode_name(99), "RCODE?");
}

static void mb_a_of(struct mb *m, const char *owner, uint32_t ttl, uint32_t addr)
{
	mb_name(m, owner);
	mb_rr_tail(m, DNS_TYPE_A, DNS_CLASS_IN, ttl, 4);
	mb_u32(m, addr);
}

/* The CNAME chain from the question's name (records out of order, mixed case, a
 * compressed target), the addresses of its last name only, a loop stopped. */
static void test_chain(void **state)
{
	struct dns_chain ch;
	struct dns_msg a;
	struct mb m;
	size_t q;

	(void)state;
	mb_hdr(&m, 1, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 5, 0, 0);
	q = m.n;
	mb_question(&m, "WWW.Example.com", DNS_TYPE_A);
	/* an A of the query name itself: not the chain's end, left out */
	mb_a(&m, 60, 0xcb007106);
	mb_a_of(&m, "edge.example.net", 0x80000010, 0xcb007108); /* top bit: 0 */
	mb_ptr(&m, (uint16_t)q);
	mb_rr_tail(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 300, 17);
	mb_name(&m, "cdn.example.net");
	mb_name(&m, "cdn.example.net");
	mb_rr_tail(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 300, 18);
	mb_name(&m, "edge.example.net");
	mb_a_of(&m, "other.example.org", 60, 0xcb007109);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_chain(m.b, m.n, &a, &ch), 0);
	assert_int_equal(ch.n_names, 3);
	assert_string_equal(ch.names[0], "www.example.com");
	assert_string_equal(ch.names[1], "cdn.example.net");
	assert_string_equal(ch.names[2], "edge.example.net");
	assert_int_equal(ch.n_addrs, 1);
	assert_int_equal(ch.addrs[0].family, AF_INET);
	assert_int_equal(ch.addrs[0].addr[3], 8);
	assert_int_equal(ch.addrs[0].ttl, 0);

	/* a.x -> b.x -> a.x: stops, no address */
	mb_hdr(&m, 1, DNS_FLAG_QR, 1, 2, 0, 0);
	mb_question(&m, "a.x", DNS_TYPE_A);
	mb_name(&m, "a.x");
	mb_rr_tail(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 300, 5);
	mb_name(&m, "b.x");
	mb_name(&m, "b.x");
	mb_rr_tail(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 300, 5);
	mb_name(&m, "a.x");
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_chain(m.b, m.n, &a, &ch), 0);
	assert_int_equal(ch.n_names, 2);
	assert_int_equal(ch.n_addrs, 0);

	/* no question */
	mb_hdr(&m, 1, DNS_FLAG_QR, 0, 0, 0, 0);
	assert_int_equal(parse_exact(m.b, m.n, &a), 0);
	assert_int_equal(dns_msg_chain(m.b, m.n, &a, &ch), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_udp_limit),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_two_questions),
		cmocka_unit_test(test_query_sections),
		cmocka_unit_test(test_pointers),
		cmocka_unit_test(test_pointer_chain),
		cmocka_unit_test(test_name_too_long),
		cmocka_unit_test(test_truncation_every_length),
		cmocka_unit_test(test_opt),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_not_cacheable),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
