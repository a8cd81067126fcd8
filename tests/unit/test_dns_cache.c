/*
 * test_dns_cache.c - the forwarder's answer cache (src/dns/dns_cache.c) on a fake clock:
 * hits with the asker's ID and spelling, TTL ageing and expiry, LRU eviction, negative
 * caching (RFC 2308), the key (type, EDNS0, DO), what must not be cached.
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

#include "dns_cache.h"
#include "dns_msg.h"
#include "util.h"

#define T0 1000000 /* ms on the fake clock */

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

static void mb_name(struct mb *m, const char *name)
{
	const char *p = name;

	while (*p) {
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

enum { EDNS_NONE, EDNS_PLAIN, EDNS_DO };

/* A query: id, name, type, EDNS state; parsed into *q. */
static void query(struct mb *m, struct dns_msg *q, uint16_t id, const char *name, uint16_t type,
	int edns)
{
	m->n = 0;
	mb_u16(m, id);
	mb_u16(m, DNS_FLAG_RD);
	mb_u16(m, 1);
	mb_u16(m, 0);
	mb_u16(m, 0);
	mb_u16(m, edns != EDNS_NONE);
	mb_name(m, name);
	mb_u16(m, type);
	mb_u16(m, DNS_CLASS_IN);
	if (edns != EDNS_NONE) {
		mb_u8(m, 0);
		mb_u16(m, DNS_TYPE_OPT);
		mb_u16(m, 1232);
		mb_u32(m, edns == EDNS_DO ? DNS_EDNS_DO : 0);
		mb_u16(m, 0);
	}
	assert_int_equal(dns_msg_parse(m->b, m->n, q), 0);
}

/*
 * An answer: rcode, n A records of TTL ttl (the last one 10.0.0.<tag>), an SOA in the
 * authority section when soa_min is not 0.
 */
static void answer(struct mb *m, struct dns_msg *a, uint16_t flags, const char *name,
	uint16_t type, unsigned n, uint32_t ttl, uint8_t tag, uint32_t soa_min)
{
	m->n = 0;
	mb_u16(m, 0x7777);
	mb_u16(m, (uint16_t)(DNS_FLAG_QR | DNS_FLAG_RA | flags));
	mb_u16(m, 1);
	mb_u16(m, (uint16_t)n);
	mb_u16(m, soa_min ? 1 : 0);
	mb_u16(m, 0);
	mb_name(m, name);
	mb_u16(m, type);
	mb_u16(m, DNS_CLASS_IN);
	for (unsigned i = 0; i < n; i++) {
		mb_u16(m, 0xc00c);
		mb_u16(m, DNS_TYPE_A);
		mb_u16(m, DNS_CLASS_IN);
		mb_u32(m, ttl + i * 100);
		mb_u16(m, 4);
		mb_u32(m, 0x0a000000u | (i + 1 == n ? tag : 0));
	}
	if (soa_min) {
		mb_u16(m, 0xc00c);
		mb_u16(m, DNS_TYPE_SOA);
		mb_u16(m, DNS_CLASS_IN);
		mb_u32(m, soa_min > 3600 ? soa_min : 3600);
		mb_u16(m, 2 + 2 + 20);
		mb_u16(m, 0xc00c);
		mb_u16(m, 0xc00c);
		mb_u32(m, 1);
		mb_u32(m, 2);
		mb_u32(m, 3);
		mb_u32(m, 4);
		mb_u32(m, soa_min);
	}
	assert_int_equal(dns_msg_parse(m->b, m->n, a), 0);
}

/* The tag of the last A record of a cached answer, and its first TTL. */
static uint8_t tag_of(const uint8_t *msg, size_t len)
{
	return msg[len - 1];
}

static uint32_t first_ttl(const uint8_t *msg, const struct dns_msg *q)
{
	return dns_get32(msg + q->question_end + 6);
}

static void test_hit(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am, q2m;
	struct dns_msg q, a, q2, r;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 0x1111, "www.example.test", DNS_TYPE_A, EDNS_NONE);
	answer(&am, &a, 0, "www.example.test", DNS_TYPE_A, 2, 300, 7, 0);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_count(c), 1);

	/* another client, another ID, 0x20 mixed case, 42.9 s later */
	query(&q2m, &q2, 0x2222, "wWw.ExAmple.tESt", DNS_TYPE_A, EDNS_NONE);
	assert_int_equal(dns_cache_get(c, &q2, T0 + 42900, &hit, &len), 0);
	assert_int_equal(len, am.n);
	assert_int_equal(dns_msg_parse(hit, len, &r), 0);
	assert_int_equal(r.id, 0x2222);
	assert_memory_equal(r.qname, q2.qname, q2.qname_len);
	assert_int_equal(tag_of(hit, len), 7);
	/* TTLs aged by whole seconds: 300 - 42, 400 - 42 */
	assert_int_equal(first_ttl(hit, &q2), 258);
	assert_int_equal(r.min_ttl, 258);
	free(hit);

	/* the stored copy is not changed by a hit */
	assert_int_equal(dns_cache_get(c, &q, T0 + 1000, &hit, &len), 0);
	assert_int_equal(first_ttl(hit, &q), 299);
	assert_int_equal(dns_get16(hit), 0x1111);
	free(hit);
	dns_cache_free(c);
}

static void test_expiry(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am;
	struct dns_msg q, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 1, "a.test", DNS_TYPE_A, EDNS_NONE);
	/* min TTL 60 (the first record), the second 160 */
	answer(&am, &a, 0, "a.test", DNS_TYPE_A, 2, 60, 1, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 + 59999, &hit, &len), 0);
	assert_int_equal(first_ttl(hit, &q), 1);
	free(hit);
	assert_int_equal(dns_cache_get(c, &q, T0 + 60000, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_count(c), 0);
	/* a clock that goes back does not serve a stale copy */
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 - 1, &hit, &len), -ENOENT);
	dns_cache_free(c);
}

static void test_lru(void **state)
{
	struct dns_cache *c = dns_cache_new(2);
	struct mb qa, qb, qc, am;
	struct dns_msg q1, q2, q3, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qa, &q1, 1, "a.test", DNS_TYPE_A, EDNS_NONE);
	query(&qb, &q2, 2, "b.test", DNS_TYPE_A, EDNS_NONE);
	query(&qc, &q3, 3, "c.test", DNS_TYPE_A, EDNS_NONE);
	answer(&am, &a, 0, "a.test", DNS_TYPE_A, 1, 300, 1, 0);
	assert_int_equal(dns_cache_put(c, &q1, am.b, am.n, &a, T0), 0);
	answer(&am, &a, 0, "b.test", DNS_TYPE_A, 1, 300, 2, 0);
	assert_int_equal(dns_cache_put(c, &q2, am.b, am.n, &a, T0 + 1), 0);
	/* a is used, so b is the least recently used when c comes */
	assert_int_equal(dns_cache_get(c, &q1, T0 + 2, &hit, &len), 0);
	free(hit);
	answer(&am, &a, 0, "c.test", DNS_TYPE_A, 1, 300, 3, 0);
	assert_int_equal(dns_cache_put(c, &q3, am.b, am.n, &a, T0 + 3), 0);
	assert_int_equal(dns_cache_count(c), 2);
	assert_int_equal(dns_cache_get(c, &q2, T0 + 4, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_get(c, &q1, T0 + 4, &hit, &len), 0);
	assert_int_equal(tag_of(hit, len), 1);
	free(hit);
	assert_int_equal(dns_cache_get(c, &q3, T0 + 4, &hit, &len), 0);
	assert_int_equal(tag_of(hit, len), 3);
	free(hit);

	/* replacing keeps one entry per key, with the new answer */
	answer(&am, &a, 0, "c.test", DNS_TYPE_A, 1, 300, 9, 0);
	assert_int_equal(dns_cache_put(c, &q3, am.b, am.n, &a, T0 + 5), 0);
	assert_int_equal(dns_cache_count(c), 2);
	assert_int_equal(dns_cache_get(c, &q3, T0 + 6, &hit, &len), 0);
	assert_int_equal(tag_of(hit, len), 9);
	free(hit);
	/* a is the oldest now: shrinking to one drops it */
	dns_cache_set_max(c, 1);
	assert_int_equal(dns_cache_count(c), 1);
	assert_int_equal(dns_cache_get(c, &q1, T0 + 7, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_get(c, &q3, T0 + 7, &hit, &len), 0);
	free(hit);
	dns_cache_free(c);
}

static void test_negative(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am;
	struct dns_msg q, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	/* NXDOMAIN, SOA TTL 3600, MINIMUM 30: cached 30 s (RFC 2308 5) */
	query(&qm, &q, 1, "nx.test", DNS_TYPE_A, EDNS_NONE);
	answer(&am, &a, DNS_RCODE_NXDOMAIN, "nx.test", DNS_TYPE_A, 0, 0, 0, 30);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 + 29999, &hit, &len), 0);
	assert_int_equal(DNS_RCODE(dns_get16(hit + 2)), DNS_RCODE_NXDOMAIN);
	/* the SOA's TTL ages too */
	assert_int_equal(dns_get32(hit + q.question_end + 6), 3600 - 29);
	free(hit);
	assert_int_equal(dns_cache_get(c, &q, T0 + 30000, &hit, &len), -ENOENT);

	/* NODATA */
	query(&qm, &q, 1, "a.test", DNS_TYPE_AAAA, EDNS_NONE);
	answer(&am, &a, 0, "a.test", DNS_TYPE_AAAA, 0, 0, 0, 45);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 + 44000, &hit, &len), 0);
	free(hit);
	assert_int_equal(dns_cache_get(c, &q, T0 + 45000, &hit, &len), -ENOENT);

	/* without SOA: not cached */
	query(&qm, &q, 1, "nx.test", DNS_TYPE_A, EDNS_NONE);
	answer(&am, &a, DNS_RCODE_NXDOMAIN, "nx.test", DNS_TYPE_A, 0, 0, 0, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), -ENOENT);

	/* long negative TTLs are cut to 3 hours */
	answer(&am, &a, DNS_RCODE_NXDOMAIN, "nx.test", DNS_TYPE_A, 0, 0, 0, 86400);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 + DNS_CACHE_MAX_NEG_TTL * 1000ULL - 1, &hit, &len),
		0);
	free(hit);
	assert_int_equal(
		dns_cache_get(c, &q, T0 + DNS_CACHE_MAX_NEG_TTL * 1000ULL, &hit, &len), -ENOENT);
	dns_cache_free(c);
}

static void test_key(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am;
	struct dns_msg q, qdo, qedns, qaaaa, a;
	struct mb m1, m2, m3;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 1, "k.test", DNS_TYPE_A, EDNS_NONE);
	query(&m1, &qdo, 2, "k.test", DNS_TYPE_A, EDNS_DO);
	query(&m2, &qedns, 3, "k.test", DNS_TYPE_A, EDNS_PLAIN);
	query(&m3, &qaaaa, 4, "k.test", DNS_TYPE_AAAA, EDNS_NONE);
	answer(&am, &a, 0, "k.test", DNS_TYPE_A, 1, 300, 1, 0);
	assert_int_equal(dns_cache_put(c, &qdo, am.b, am.n, &a, T0), 0);
	/* asked with DO: only a DO query gets it */
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_get(c, &qedns, T0, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_get(c, &qaaaa, T0, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_get(c, &qdo, T0, &hit, &len), 0);
	free(hit);
	/* without EDNS: its own entry */
	answer(&am, &a, 0, "k.test", DNS_TYPE_A, 1, 300, 2, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_count(c), 2);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), 0);
	assert_int_equal(tag_of(hit, len), 2);
	free(hit);
	assert_int_equal(dns_cache_get(c, &qdo, T0, &hit, &len), 0);
	assert_int_equal(tag_of(hit, len), 1);
	free(hit);
	dns_cache_free(c);
}

/* The CD bit is part of the key: an answer to a query with Checking Disabled may be one
 * that validation refuses, and must not reach those who did not ask so. */
static void test_key_cd(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, cdm, am;
	struct dns_msg q, qcd, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 1, "bogus.test", DNS_TYPE_A, EDNS_DO);
	query(&cdm, &qcd, 2, "bogus.test", DNS_TYPE_A, EDNS_DO);
	cdm.b[3] |= DNS_FLAG_CD;
	assert_int_equal(dns_msg_parse(cdm.b, cdm.n, &qcd), 0);
	answer(&am, &a, DNS_FLAG_CD, "bogus.test", DNS_TYPE_A, 1, 300, 6, 0);
	assert_int_equal(dns_cache_put(c, &qcd, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_get(c, &qcd, T0, &hit, &len), 0);
	free(hit);
	dns_cache_free(c);
}

/* Append an OPT record with one option (code, data) to a message built by query()/answer()
 * and count it in ARCOUNT. */
static void add_opt(struct mb *m, struct dns_msg *parsed, uint16_t code, const char *data)
{
	size_t dl = strlen(data);

	mb_u8(m, 0);
	mb_u16(m, DNS_TYPE_OPT);
	mb_u16(m, 1232);
	mb_u32(m, 0);
	mb_u16(m, (uint16_t)(4 + dl));
	mb_u16(m, code);
	mb_u16(m, (uint16_t)dl);
	for (size_t i = 0; i < dl; i++)
		mb_u8(m, (uint8_t)data[i]);
	dns_put16(m->b + 10, (uint16_t)(dns_get16(m->b + 10) + 1));
	assert_int_equal(dns_msg_parse(m->b, m->n, parsed), 0);
}

/* An answer's EDNS options (a COOKIE) were for the client that asked: the cached copy has
 * none; an answer for a client subnet (ECS) is not cached at all. */
static void test_edns_options(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am;
	struct dns_msg q, a, r;
	uint8_t *hit;
	size_t len;

	(void)state;
	/* a query with a COOKIE option, and its answer with the client's and the server's */
	query(&qm, &q, 1, "o.test", DNS_TYPE_A, EDNS_NONE);
	add_opt(&qm, &q, 10, "CLIENT_A");
	answer(&am, &a, 0, "o.test", DNS_TYPE_A, 1, 300, 4, 0);
	add_opt(&am, &a, 10, "CLIENT_ASERVERCK");
	assert_true(a.edns && a.opt_rdlen == 20 && !a.edns_ecs);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), 0);
	assert_int_equal(len, am.n - 20);
	assert_int_equal(dns_msg_parse(hit, len, &r), 0);
	assert_true(r.edns && r.opt_rdlen == 0 && r.edns_udp == 1232);
	assert_null(memmem(hit, len, "CLIENT_A", 8));
	free(hit);

	/* Client Subnet, in the query or in the answer: not cached */
	query(&qm, &q, 1, "e.test", DNS_TYPE_A, EDNS_NONE);
	add_opt(&qm, &q, DNS_EDNS_ECS, "\x00\x01\x18\x00\x0a\x00\x00");
	assert_true(q.edns_ecs);
	answer(&am, &a, 0, "e.test", DNS_TYPE_A, 1, 300, 5, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	query(&qm, &q, 1, "e.test", DNS_TYPE_A, EDNS_NONE);
	add_opt(&am, &a, DNS_EDNS_ECS, "\x00\x01\x18\x18\x0a\x00\x00");
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);

	/* options that do not fill the OPT data exactly: malformed */
	query(&qm, &q, 1, "m.test", DNS_TYPE_A, EDNS_NONE);
	add_opt(&qm, &q, 10, "12345678");
	dns_put16(qm.b + qm.n - 10, 9); /* the option says 9 bytes, 8 follow */
	assert_int_equal(dns_msg_parse(qm.b, qm.n, &q), -EBADMSG);
	dns_cache_free(c);
}

/* Bytes are bounded too: DNS_CACHE_BYTES_PER_ENTRY per entry of the count bound. */
static void test_byte_bound(void **state)
{
	struct dns_cache *c = dns_cache_new(1);
	struct mb qm, am;
	struct dns_msg q, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	/* 140 A records: about 2.3 KB, more than a one-entry cache holds */
	query(&qm, &q, 1, "big.test", DNS_TYPE_A, EDNS_NONE);
	answer(&am, &a, 0, "big.test", DNS_TYPE_A, 140, 300, 1, 0);
	assert_true(am.n > DNS_CACHE_BYTES_PER_ENTRY && am.n < 2 * DNS_CACHE_BYTES_PER_ENTRY);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	/* four entries hold 8 KiB: three such answers; the fourth evicts the oldest */
	dns_cache_set_max(c, 4);
	for (int i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "n%d.test", i);
		query(&qm, &q, 1, name, DNS_TYPE_A, EDNS_NONE);
		answer(&am, &a, 0, name, DNS_TYPE_A, 140, 300, 1, 0);
		assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	}
	assert_int_equal(dns_cache_count(c), 3);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), 0); /* n3, the newest */
	free(hit);
	query(&qm, &q, 1, "n0.test", DNS_TYPE_A, EDNS_NONE);
	assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), -ENOENT);
	dns_cache_free(c);
}

/* NXDOMAIN after a CNAME: the CNAME's shorter TTL bounds the entry, not only the SOA's. */
static void test_negative_after_cname(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am;
	struct dns_msg q, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 1, "alias.test", DNS_TYPE_A, EDNS_NONE);
	/* one record of TTL 10 in the answer (standing in for the CNAME), SOA MINIMUM 300 */
	answer(&am, &a, DNS_RCODE_NXDOMAIN, "alias.test", DNS_TYPE_A, 1, 10, 1, 300);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 + 9999, &hit, &len), 0);
	free(hit);
	assert_int_equal(dns_cache_get(c, &q, T0 + 10000, &hit, &len), -ENOENT);
	dns_cache_free(c);
}

static void test_not_cached(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am, qx;
	struct dns_msg q, a, noq;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 1, "a.test", DNS_TYPE_A, EDNS_NONE);
	/* TC */
	answer(&am, &a, DNS_FLAG_TC, "a.test", DNS_TYPE_A, 1, 300, 1, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	/* SERVFAIL */
	answer(&am, &a, DNS_RCODE_SERVFAIL, "a.test", DNS_TYPE_A, 0, 0, 0, 60);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	/* an answer to another question */
	answer(&am, &a, 0, "b.test", DNS_TYPE_A, 1, 300, 1, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	/* an answer without question */
	am.n = 0;
	memcpy(am.b, "\x77\x77\x81\x80\0\0\0\0\0\0\0\0", 12);
	am.n = 12;
	assert_int_equal(dns_msg_parse(am.b, am.n, &a), 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), -ENOENT);
	/* a query without question */
	memcpy(qx.b, "\x77\x77\x01\x00\0\0\0\0\0\0\0\0", 12);
	assert_int_equal(dns_msg_parse(qx.b, 12, &noq), 0);
	answer(&am, &a, 0, "a.test", DNS_TYPE_A, 1, 300, 1, 0);
	assert_int_equal(dns_cache_put(c, &noq, am.b, am.n, &a, T0), -EINVAL);
	assert_int_equal(dns_cache_get(c, &noq, T0, &hit, &len), -ENOENT);
	assert_int_equal(dns_cache_count(c), 0);
	/* the same answer, right: stored */
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(dns_cache_count(c), 1);
	dns_cache_free(c);
}

static void test_ttl_cap(void **state)
{
	struct dns_cache *c = dns_cache_new(16);
	struct mb qm, am;
	struct dns_msg q, a;
	uint8_t *hit;
	size_t len;

	(void)state;
	query(&qm, &q, 1, "a.test", DNS_TYPE_A, EDNS_NONE);
	answer(&am, &a, 0, "a.test", DNS_TYPE_A, 1, 7 * 86400, 1, 0);
	assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	assert_int_equal(
		dns_cache_get(c, &q, T0 + DNS_CACHE_MAX_TTL * 1000ULL - 1, &hit, &len), 0);
	free(hit);
	assert_int_equal(
		dns_cache_get(c, &q, T0 + DNS_CACHE_MAX_TTL * 1000ULL, &hit, &len), -ENOENT);
	dns_cache_free(c);
}

/*
 * A resolver that compresses its question against itself: the answer is served as stored
 * (only the ID changes), never overwritten with the asker's spelling at the wrong length.
 */
static void test_compressed_question(void **state)
{
	static const uint8_t odd[] = {
		0x77, 0x77, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
		0x03, 'a', 0x07, 'b', 0xc0, 0x0e, 0x00, 0x01, 0x00, 0x01, /* question */
		0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 10, 0, 0, 5,
	};
	static const uint8_t plain[] = {
		0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x03, 'a', 0x07, 'B', 0x07, 'b', 0xc0, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x00,
		0x00, 0x01, 0x00, 0x01,
	};
	struct dns_cache *c = dns_cache_new(4);
	struct dns_msg q, a, r;
	uint8_t *hit;
	size_t len;

	(void)state;
	assert_int_equal(dns_msg_parse(odd, sizeof(odd), &a), 0);
	assert_int_equal(dns_msg_parse(plain, sizeof(plain), &q), 0);
	assert_true(dns_msg_same_question(&q, &a));
	assert_int_equal(dns_cache_put(c, &q, odd, sizeof(odd), &a, T0), 0);
	assert_int_equal(dns_cache_get(c, &q, T0 + 1000, &hit, &len), 0);
	assert_int_equal(len, sizeof(odd));
	assert_int_equal(dns_get16(hit), 0x1234);
	assert_memory_equal(hit + 4, odd + 4, 18); /* counts and question as stored */
	assert_int_equal(dns_msg_parse(hit, len, &r), 0);
	assert_true(dns_msg_same_question(&q, &r));
	assert_int_equal(r.min_ttl, 59);
	free(hit);
	dns_cache_free(c);
}

/* Many names: the table grows and every one stays reachable; the bound holds. */
static void test_many(void **state)
{
	struct dns_cache *c = dns_cache_new(1000);
	struct mb qm, am;
	struct dns_msg q, a;
	char name[32];
	uint8_t *hit;
	size_t len;

	(void)state;
	for (unsigned i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "n%u.test", i);
		query(&qm, &q, 1, name, DNS_TYPE_A, EDNS_NONE);
		answer(&am, &a, 0, name, DNS_TYPE_A, 1, 300, (uint8_t)i, 0);
		assert_int_equal(dns_cache_put(c, &q, am.b, am.n, &a, T0), 0);
	}
	assert_int_equal(dns_cache_count(c), 1000);
	for (unsigned i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "n%u.test", i);
		query(&qm, &q, 1, name, DNS_TYPE_A, EDNS_NONE);
		if (i < 500) {
			assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), -ENOENT);
			continue;
		}
		assert_int_equal(dns_cache_get(c, &q, T0, &hit, &len), 0);
		assert_int_equal(tag_of(hit, len), (uint8_t)i);
		free(hit);
	}
	dns_cache_free(c);
	dns_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_key_cd),
		cmocka_unit_test(test_edns_options),
		cmocka_unit_test(test_byte_bound),
		cmocka_unit_test(test_negative_after_cname),
		cmocka_unit_test(test_not_cached),
		cmocka_unit_test(test_ttl_cap),
		cmocka_unit_test(test_compressed_question),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
