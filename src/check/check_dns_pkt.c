/*
 * check_dns_pkt.c - build one DNS query, validate one answer (RFC 1035 4.1).
 *
 * Must not trust the answer: every read is bounds-checked, compression
 * pointers (RFC 1035 4.1.4) must point backwards into the message (so a loop
 * is impossible) and names stay within 255 bytes.  No logging, no
 * allocation: the caller counts and logs what is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check_dns_pkt.h"

#define DNS_FLAG_QR   0x8000
#define DNS_FLAG_TC   0x0200
#define DNS_FLAG_RD   0x0100
#define DNS_OPCODE(f) (((f) >> 11) & 0xf)
#define DNS_RCODE(f)  ((f)&0xf)

static const char *const rcode_names[] = {
	[DNS_RCODE_NOERROR] = "NOERROR",
	[DNS_RCODE_FORMERR] = "FORMERR",
	[DNS_RCODE_SERVFAIL] = "SERVFAIL",
	[DNS_RCODE_NXDOMAIN] = "NXDOMAIN",
	[DNS_RCODE_NOTIMP] = "NOTIMP",
	[DNS_RCODE_REFUSED] = "REFUSED",
	[6] = "YXDOMAIN",
	[7] = "YXRRSET",
	[8] = "NXRRSET",
	[9] = "NOTAUTH",
	[10] = "NOTZONE",
};

const char *dns_rcode_name(unsigned rcode)
{
	static const char *const other[] = {"RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15"};

	if (rcode < sizeof(rcode_names) / sizeof(rcode_names[0]))
		return rcode_names[rcode];
	if (rcode < 16)
		return other[rcode - 11];
	return "RCODE?";
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

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
	put16(buf, id);
	put16(buf + 2, DNS_FLAG_RD);
	put16(buf + 4, 1); /* QDCOUNT */
	memcpy(buf + DNS_HEADER_LEN, wire, wl);
	put16(buf + DNS_HEADER_LEN + wl, qtype);
	put16(buf + DNS_HEADER_LEN + wl + 2, DNS_CLASS_IN);
	*ret_len = DNS_HEADER_LEN + wl + 4;
	return 0;
}

/*
 * Read the name at off into out (DNS_NAME_MAX bytes, uncompressed wire form;
 * NULL: just skip it).  *ret_next is where the record goes on after the name.
 */
static int read_name(const uint8_t *m, size_t len, size_t off, uint8_t *out, size_t *ret_out_len,
	size_t *ret_next)
{
	size_t pos = off, next = 0, ol = 0;

	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t c = m[pos];

		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -EBADMSG;
			size_t ptr = (size_t)(c & 0x3f) << 8 | m[pos + 1];
			/* strictly backwards and past the header: every jump makes progress */
			if (ptr < DNS_HEADER_LEN || ptr >= pos)
				return -EBADMSG;
			if (!next)
				next = pos + 2;
			pos = ptr;
			continue;
		}
		if (c & 0xc0) /* 0x40, 0x80: extended label types, not in use */
			return -EBADMSG;
		if (ol + 1 + c > DNS_NAME_MAX)
			return -EBADMSG;
		if (c == 0) {
			if (out)
				out[ol] = 0;
			ol++;
			if (!next)
				next = pos + 1;
			break;
		}
		if (pos + 1 + c > len)
			return -EBADMSG;
		if (out)
			memcpy(out + ol, m + pos, 1 + (size_t)c);
		ol += 1 + (size_t)c;
		pos += 1 + (size_t)c;
	}
	if (ret_out_len)
		*ret_out_len = ol;
	*ret_next = next;
	return 0;
}

static uint8_t fold(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool name_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al != bl)
		return false;
	for (size_t i = 0; i < al; i++)
		if (fold(a[i]) != fold(b[i]))
			return false;
	return true;
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
	flags = get16(m + 2);
	if (get16(m) != get16(query) || !(flags & DNS_FLAG_QR) || DNS_OPCODE(flags) != 0)
		return -ENOMSG;
	if (get16(m + 4) != 1)
		return -ENOMSG;

	/* the question must be ours */
	r = read_name(query, qlen, DNS_HEADER_LEN, qname, &qnl, &qnext);
	if (r < 0 || qnext + 4 > qlen)
		return -EINVAL;
	r = read_name(m, len, DNS_HEADER_LEN, aname, &anl, &off);
	if (r < 0)
		return r;
	if (off + 4 > len)
		return -EBADMSG;
	if (!name_eq(qname, qnl, aname, anl) || memcmp(m + off, query + qnext, 4))
		return -ENOMSG;
	off += 4;

	/* a truncated answer (TC) may hold fewer records than it counts */
	if (!(flags & DNS_FLAG_TC)) {
		records = (unsigned)get16(m + 6) + get16(m + 8) + get16(m + 10);
		for (unsigned i = 0; i < records; i++) {
			r = read_name(m, len, off, NULL, NULL, &off);
			if (r < 0)
				return r;
			if (off + 10 > len)
				return -EBADMSG;
			size_t rdlen = get16(m + off + 8);
			off += 10;
			if (off + rdlen > len)
				return -EBADMSG;
			off += rdlen;
		}
	}
	*ret_rcode = DNS_RCODE(flags);
	return 0;
}
