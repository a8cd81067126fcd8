/*
 * check_dns_pkt.c - build one DNS query, validate one answer (RFC 1035 4.1).
 *
 * Must not trust the answer: every read is bounds-checked; names are read
 * by dns_name_read() (src/dns/dns_msg.c), whose compression pointers must
 * point backwards and whose names stay within 255 bytes, so every walk ends.
 * No logging, no allocation: the caller counts and logs what is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check_dns_pkt.h"

uint16_t dns_check_qtype(const char *name)
{
	return !name || !name[0] || (name[0] == '.' && !name[1]) ? DNS_TYPE_NS : DNS_TYPE_A;
}

int dns_query_build(
	uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t qtype, size_t *ret_len)
{
	uint8_t wire[DNS_NAME_MAX];
	size_t wl = 0;
	const char *p = name ? name : "";

	if (p[0] == '.' && !p[1])
		p++;
	/* labels: "a.b.c" or "a.b.c." */
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (l == 0 || l > 63)
			return -EINVAL;
		if (wl + 1 + l + 1 > DNS_NAME_MAX)
			return -EINVAL;
		wire[wl++] = (uint8_t)l;
		memcpy(wire + wl, p, l);
		wl += l;
		p += l;
		if (*p == '.')
			p++;
	}
	wire[wl++] = 0;
	if (len < DNS_HEADER_LEN + wl + 4)
		return -ENOBUFS;
	memset(buf, 0, DNS_HEADER_LEN);
	dns_put16(buf, id);
	dns_put16(buf + 2, DNS_FLAG_RD);
	dns_put16(buf + 4, 1); /* QDCOUNT */
	memcpy(buf + DNS_HEADER_LEN, wire, wl);
	dns_put16(buf + DNS_HEADER_LEN + wl, qtype);
	dns_put16(buf + DNS_HEADER_LEN + wl + 2, DNS_CLASS_IN);
	*ret_len = DNS_HEADER_LEN + wl + 4;
	return 0;
}

int dns_answer_check(
	const uint8_t *m, size_t len, const uint8_t *query, size_t qlen, unsigned *ret_rcode)
{
	uint8_t qname[DNS_NAME_MAX], aname[DNS_NAME_MAX];
	size_t qnl, anl, qnext, off;
	uint16_t flags;
	unsigned records;
	int r;

	if (len < DNS_HEADER_LEN)
		return -EBADMSG;
	if (qlen < DNS_HEADER_LEN + 5)
		return -EINVAL;
	flags = dns_get16(m + 2);
	if (dns_get16(m) != dns_get16(query) || !(flags & DNS_FLAG_QR) || DNS_OPCODE(flags) != 0)
		return -ENOMSG;
	if (dns_get16(m + 4) != 1)
		return -ENOMSG;

	/* the question must be ours */
	r = dns_name_read(query, qlen, DNS_HEADER_LEN, qname, &qnl, &qnext);
	if (r < 0 || qnext + 4 > qlen)
		return -EINVAL;
	r = dns_name_read(m, len, DNS_HEADER_LEN, aname, &anl, &off);
	if (r < 0)
		return r;
	if (off + 4 > len)
		return -EBADMSG;
	if (!dns_name_eq(qname, qnl, aname, anl) || memcmp(m + off, query + qnext, 4))
		return -ENOMSG;
	off += 4;

	/* a truncated answer (TC) may hold fewer records than it counts */
	if (!(flags & DNS_FLAG_TC)) {
		records = (unsigned)dns_get16(m + 6) + dns_get16(m + 8) + dns_get16(m + 10);
		for (unsigned i = 0; i < records; i++) {
			r = dns_name_read(m, len, off, NULL, NULL, &off);
			if (r < 0)
				return r;
			if (off + 10 > len)
				return -EBADMSG;
			size_t rdlen = dns_get16(m + off + 8);
			off += 10;
			if (off + rdlen > len)
				return -EBADMSG;
			off += rdlen;
		}
	}
	*ret_rcode = DNS_RCODE(flags);
	return 0;
}
