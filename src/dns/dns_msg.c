/*
 * dns_msg.c - the DNS message codec: names, the walk over a whole message, short replies,
 * TTL ageing (RFC 1035 4.1, RFC 2181 8, RFC 2308, RFC 6891).
 *
 * Must not trust a message: every read is bounds-checked, compression pointers (RFC 1035
 * 4.1.4) must point backwards into the message and names stay within 255 bytes, which
 * together end every walk (a loop through a label grows the name until it is refused).
 * No logging, no allocation, no sockets: callers count and log what is refused.
 */
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include "dns_msg.h"

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
	if (rcode < _DNS_RCODE_MAX)
		return other[rcode - 11];
	return "RCODE?";
}

/* ------------------------------------------------------------ names */

int dns_name_read(const uint8_t *m, size_t len, size_t off, uint8_t *out, size_t *ret_out_len,
	size_t *ret_next)
{
	size_t pos = off, next = 0, ol = 0;
	unsigned jumps = 0;

	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t c = m[pos];

		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > DNS_PTR_MAX)
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
		if (c & 0xc0) /* 0x40, 0x80: extended label types (RFC 6891 5), not in use */
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

bool dns_name_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al != bl)
		return false;
	for (size_t i = 0; i < al; i++)
		if (fold(a[i]) != fold(b[i]))
			return false;
	return true;
}

void dns_name_lower(uint8_t *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		name[i] = fold(name[i]);
}

const char *dns_name_text(const uint8_t *name, size_t len, char *buf, size_t buflen)
{
	size_t o = 0, i = 0;

	if (!buflen)
		return buf;
	buf[0] = '\0';
	if (len <= 1) {
		snprintf(buf, buflen, ".");
		return buf;
	}
	while (i < len && name[i]) {
		size_t l = name[i++];

		for (size_t j = 0; j < l && i < len; j++, i++) {
			uint8_t c = name[i];
			int n;

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || c == '-' || c == '_')
				n = snprintf(buf + o, buflen - o, "%c", c);
			else
				n = snprintf(buf + o, buflen - o, "\\%03u", c);
			if (n < 0 || (size_t)n >= buflen - o)
				return buf;
			o += (size_t)n;
		}
		if (o + 1 >= buflen)
			return buf;
		buf[o++] = '.';
		buf[o] = '\0';
	}
	return buf;
}

/* ------------------------------------------------------------ records */

enum dns_section {
	DNS_SECTION_ANSWER,
	DNS_SECTION_AUTHORITY,
	DNS_SECTION_ADDITIONAL,
	_DNS_SECTION_MAX,
};

/* One resource record as the walk sees it. */
struct dns_rr {
	enum dns_section section;
	size_t owner; /* offset of the owner name */
	uint16_t type, class;
	size_t ttl_off; /* offset of the TTL field */
	size_t rdata;	/* offset of the data */
	uint16_t rdlen;
};

struct dns_rr_iter {
	const uint8_t *m;
	size_t len;
	size_t off;
	unsigned left[_DNS_SECTION_MAX];
	int section;
};

/* Start after the question (at off) of a message whose header is at least 12 bytes. */
static void rr_iter_init(struct dns_rr_iter *it, const uint8_t *m, size_t len, size_t off)
{
	it->m = m;
	it->len = len;
	it->off = off;
	it->left[DNS_SECTION_ANSWER] = dns_get16(m + 6);
	it->left[DNS_SECTION_AUTHORITY] = dns_get16(m + 8);
	it->left[DNS_SECTION_ADDITIONAL] = dns_get16(m + 10);
	it->section = DNS_SECTION_ANSWER;
}

/* 1 and the next record in *ret, 0 at the end, -EBADMSG for a record cut or malformed. */
static int rr_iter_next(struct dns_rr_iter *it, struct dns_rr *ret)
{
	size_t off;
	int r;

	while (it->section < _DNS_SECTION_MAX && !it->left[it->section])
		it->section++;
	if (it->section == _DNS_SECTION_MAX)
		return 0;
	ret->section = (enum dns_section)it->section;
	ret->owner = it->off;
	r = dns_name_read(it->m, it->len, it->off, NULL, NULL, &off);
	if (r < 0)
		return r;
	if (off + 10 > it->len)
		return -EBADMSG;
	ret->type = dns_get16(it->m + off);
	ret->class = dns_get16(it->m + off + 2);
	ret->ttl_off = off + 4;
	ret->rdlen = dns_get16(it->m + off + 8);
	ret->rdata = off + 10;
	if (ret->rdata + ret->rdlen > it->len)
		return -EBADMSG;
	it->off = ret->rdata + ret->rdlen;
	it->left[it->section]--;
	return 1;
}

static uint32_t rr_ttl(const uint8_t *m, const struct dns_rr *rr)
{
	uint32_t ttl = dns_get32(m + rr->ttl_off);

	return ttl & 0x80000000u ? 0 : ttl;
}

/* SOA data (RFC 1035 3.3.13): MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM. */
static int soa_minimum(const uint8_t *m, size_t len, const struct dns_rr *rr, uint32_t *ret)
{
	size_t end = rr->rdata + rr->rdlen, off;

	if (dns_name_read(m, len, rr->rdata, NULL, NULL, &off) < 0 || off > end)
		return -EBADMSG;
	if (dns_name_read(m, len, off, NULL, NULL, &off) < 0 || off + 20 != end)
		return -EBADMSG;
	*ret = dns_get32(m + off + 16);
	return 0;
}

/* The OPT pseudo-record (RFC 6891 6.1.2, 6.1.3). */
static int take_opt(const uint8_t *m, const struct dns_rr *rr, struct dns_msg *ret)
{
	uint32_t ttl = dns_get32(m + rr->ttl_off);

	/* one, in the additional section, owned by the root (6.1.1) */
	if (rr->section != DNS_SECTION_ADDITIONAL || ret->edns || m[rr->owner] != 0)
		return -EBADMSG;
	ret->edns = true;
	ret->edns_udp = rr->class;
	ret->edns_ext_rcode = (uint8_t)(ttl >> 24);
	ret->edns_version = (uint8_t)(ttl >> 16);
	ret->edns_do = (ttl & DNS_EDNS_DO) != 0;
	ret->opt_rdata = rr->rdata;
	ret->opt_rdlen = rr->rdlen;
	/* the options: code, length, data (6.1.2); they must fill the data exactly */
	for (size_t o = 0; o < rr->rdlen;) {
		uint16_t code, olen;
		if (rr->rdlen - o < 4)
			return -EBADMSG;
		code = dns_get16(m + rr->rdata + o);
		olen = dns_get16(m + rr->rdata + o + 2);
		if (rr->rdlen - o - 4 < olen)
			return -EBADMSG;
		if (code == DNS_EDNS_ECS)
			ret->edns_ecs = true;
		o += 4 + (size_t)olen;
	}
	return 0;
}

bool dns_msg_opt_strippable(const struct dns_msg *a)
{
	return !a->edns || !a->opt_rdlen || a->opt_rdata + a->opt_rdlen == a->end;
}

size_t dns_msg_strip_opt_options(uint8_t *m, size_t len, const struct dns_msg *a)
{
	size_t end;

	if (!a->edns || !a->opt_rdlen || a->opt_rdata < 2)
		return len;
	end = a->opt_rdata + a->opt_rdlen;
	/* only the last record: names after it may point at names after it, which move */
	if (end != a->end || end > len)
		return len;
	memmove(m + a->opt_rdata, m + end, len - end);
	dns_put16(m + a->opt_rdata - 2, 0);
	return len - a->opt_rdlen;
}

int dns_msg_parse(const uint8_t *m, size_t len, struct dns_msg *ret)
{
	struct dns_rr_iter it;
	struct dns_rr rr;
	size_t off = DNS_HEADER_LEN;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->min_ttl = UINT32_MAX;
	if (len < DNS_HEADER_LEN)
		return -EBADMSG;
	ret->id = dns_get16(m);
	ret->flags = dns_get16(m + 2);
	ret->qdcount = dns_get16(m + 4);
	ret->ancount = dns_get16(m + 6);
	ret->nscount = dns_get16(m + 8);
	ret->arcount = dns_get16(m + 10);
	/* nobody implements several questions (RFC 9619): refuse them */
	if (ret->qdcount > 1)
		return -EBADMSG;
	if (ret->qdcount == 1) {
		r = dns_name_read(m, len, off, ret->qname, &ret->qname_len, &off);
		if (r < 0 || off + 4 > len)
			return -EBADMSG;
		ret->qtype = dns_get16(m + off);
		ret->qclass = dns_get16(m + off + 2);
		off += 4;
		ret->question_end = off;
	}
	ret->end = off;

	rr_iter_init(&it, m, len, off);
	while ((r = rr_iter_next(&it, &rr)) > 0) {
		if (rr.type == DNS_TYPE_OPT) {
			if (take_opt(m, &rr, ret) < 0)
				return -EBADMSG;
			continue;
		}
		uint32_t ttl = rr_ttl(m, &rr);

		if (ttl < ret->min_ttl)
			ret->min_ttl = ttl;
		if (rr.section == DNS_SECTION_AUTHORITY && rr.type == DNS_TYPE_SOA) {
			uint32_t minimum;

			r = soa_minimum(m, len, &rr, &minimum);
			if (r < 0)
				break;
			if (minimum < ttl)
				ttl = minimum;
			if (!ret->soa || ttl < ret->soa_ttl)
				ret->soa_ttl = ttl;
			ret->soa = true;
		}
	}
	if (r < 0) {
		/* a truncated answer may hold fewer records than it counts (RFC 2181 9) */
		if (!(ret->flags & DNS_FLAG_TC))
			return -EBADMSG;
		return 0;
	}
	ret->records_ok = true;
	ret->end = it.off;
	return 0;
}

/* The lower-case dotted text of the wire name at off into buf (DNS_CHAIN_TEXT). */
static int chain_name(const uint8_t *m, size_t len, size_t off, char *buf)
{
	uint8_t name[DNS_NAME_MAX];
	size_t nl, next;
	int r = dns_name_read(m, len, off, name, &nl, &next);

	if (r < 0)
		return r;
	dns_name_lower(name, nl);
	dns_name_text(name, nl, buf, DNS_CHAIN_TEXT);
	nl = strlen(buf);
	if (nl > 1 && buf[nl - 1] == '.')
		buf[nl - 1] = '\0';
	return 0;
}

static bool chain_has(const struct dns_chain *c, const char *name)
{
	for (size_t i = 0; i < c->n_names; i++)
		if (!strcmp(c->names[i], name))
			return true;
	return false;
}

int dns_msg_chain(const uint8_t *m, size_t len, const struct dns_msg *a, struct dns_chain *ret)
{
	struct dns_rr_iter it;
	struct dns_rr rr;
	char owner[DNS_CHAIN_TEXT], target[DNS_CHAIN_TEXT];
	bool moved = true;
	int r;

	ret->n_names = ret->n_addrs = 0;
	if (!a->question_end || !a->records_ok)
		return -ENOENT;
	r = chain_name(m, len, DNS_HEADER_LEN, ret->names[ret->n_names++]);
	if (r < 0)
		return r;
	/* Follow CNAMEs whatever their order in the section (RFC 1034 3.6.2 puts them first,
	 * not every server does): one pass per link, at most DNS_CHAIN_NAMES. */
	while (moved && ret->n_names < DNS_CHAIN_NAMES) {
		moved = false;
		rr_iter_init(&it, m, len, a->question_end);
		while ((r = rr_iter_next(&it, &rr)) > 0) {
			if (rr.section != DNS_SECTION_ANSWER || rr.type != DNS_TYPE_CNAME ||
				rr.class != DNS_CLASS_IN)
				continue;
			if (chain_name(m, len, rr.owner, owner) < 0 ||
				strcmp(owner, ret->names[ret->n_names - 1]))
				continue;
			if (chain_name(m, len, rr.rdata, target) < 0)
				return -EBADMSG;
			if (chain_has(ret, target))
				break; /* a loop */
			memcpy(ret->names[ret->n_names++], target, sizeof(target));
			moved = true;
			break;
		}
		if (r < 0)
			return -EBADMSG;
	}
	rr_iter_init(&it, m, len, a->question_end);
	while ((r = rr_iter_next(&it, &rr)) > 0) {
		struct dns_chain_addr *ad;

		if (rr.section != DNS_SECTION_ANSWER || rr.class != DNS_CLASS_IN ||
			!((rr.type == DNS_TYPE_A && rr.rdlen == 4) ||
				(rr.type == DNS_TYPE_AAAA && rr.rdlen == 16)))
			continue;
		if (ret->n_addrs == DNS_CHAIN_ADDRS)
			break;
		if (chain_name(m, len, rr.owner, owner) < 0 ||
			strcmp(owner, ret->names[ret->n_names - 1]))
			continue;
		ad = &ret->addrs[ret->n_addrs++];
		ad->family = rr.type == DNS_TYPE_A ? AF_INET : AF_INET6;
		memcpy(ad->addr, m + rr.rdata, rr.rdlen);
		ad->ttl = rr_ttl(m, &rr);
	}
	return r < 0 ? -EBADMSG : 0;
}

bool dns_msg_query_ok(const struct dns_msg *q)
{
	return q->qdcount == 1 && q->question_end && !q->ancount && !q->nscount;
}

bool dns_msg_same_question(const struct dns_msg *a, const struct dns_msg *b)
{
	return a->question_end && b->question_end && a->qtype == b->qtype &&
	       a->qclass == b->qclass &&
	       dns_name_eq(a->qname, a->qname_len, b->qname, b->qname_len);
}

size_t dns_msg_udp_limit(const struct dns_msg *q)
{
	return q->edns && q->edns_udp > DNS_PLAIN_UDP ? q->edns_udp : DNS_PLAIN_UDP;
}

int dns_msg_reply(const uint8_t *query, size_t qlen, const struct dns_msg *q, unsigned rcode,
	bool tc, uint8_t *buf, size_t len, size_t *ret_len)
{
	size_t qsec = 0, need, off = DNS_HEADER_LEN;
	bool opt = q && q->edns;
	uint16_t qflags, flags;

	if (qlen < DNS_HEADER_LEN)
		return -EINVAL;
	if (q && q->question_end)
		qsec = q->qname_len + 4;
	need = DNS_HEADER_LEN + qsec + (opt ? 11 : 0);
	if (len < need)
		return -ENOBUFS;
	qflags = dns_get16(query + 2);
	flags = (uint16_t)(DNS_FLAG_QR | (qflags & (0xf << 11)) | (qflags & DNS_FLAG_RD) |
			   DNS_FLAG_RA | (qflags & DNS_FLAG_CD) | (rcode & 0xf));
	if (tc)
		flags |= DNS_FLAG_TC;
	memcpy(buf, query, 2);
	dns_put16(buf + 2, flags);
	dns_put16(buf + 4, qsec ? 1 : 0);
	dns_put16(buf + 6, 0);
	dns_put16(buf + 8, 0);
	dns_put16(buf + 10, opt ? 1 : 0);
	/*
	 * The question is written out from the parsed name: the query's bytes may hold a
	 * pointer back into a label whose bytes run past the question.
	 */
	if (qsec) {
		memcpy(buf + off, q->qname, q->qname_len);
		off += q->qname_len;
		dns_put16(buf + off, q->qtype);
		dns_put16(buf + off + 2, q->qclass);
		off += 4;
	}
	if (opt) {
		buf[off] = 0; /* root */
		dns_put16(buf + off + 1, DNS_TYPE_OPT);
		dns_put16(buf + off + 3, DNS_EDNS_UDP);
		dns_put32(buf + off + 5, q->edns_do ? DNS_EDNS_DO : 0);
		dns_put16(buf + off + 9, 0);
		off += 11;
	}
	*ret_len = off;
	return 0;
}

int dns_msg_cache_ttl(const struct dns_msg *a, uint32_t *ret_ttl)
{
	unsigned rcode = DNS_RCODE(a->flags);
	uint32_t ttl;

	if (!(a->flags & DNS_FLAG_QR) || DNS_OPCODE(a->flags) != 0 || (a->flags & DNS_FLAG_TC) ||
		!a->records_ok || !a->question_end || a->edns_ext_rcode)
		return -ENOENT;
	if (rcode == DNS_RCODE_NOERROR && a->ancount) {
		ttl = a->min_ttl;
	} else if (rcode == DNS_RCODE_NXDOMAIN || rcode == DNS_RCODE_NOERROR) {
		/* negative answers without SOA are not cached (RFC 2308 5) */
		if (!a->soa)
			return -ENOENT;
		ttl = a->min_ttl; /* a CNAME on the way, the SOA record's own TTL */
	} else {
		return -ENOENT;
	}
	/* with an SOA (NXDOMAIN, NODATA, also after a CNAME) its MINIMUM bounds it too */
	if (a->soa && a->soa_ttl < ttl)
		ttl = a->soa_ttl;
	if (!ttl || ttl == UINT32_MAX)
		return -ENOENT;
	*ret_ttl = ttl;
	return 0;
}

int dns_msg_age(uint8_t *m, size_t len, uint32_t secs)
{
	struct dns_msg info;
	struct dns_rr_iter it;
	struct dns_rr rr;
	int r;

	r = dns_msg_parse(m, len, &info);
	if (r < 0)
		return r;
	if (!info.records_ok)
		return -EBADMSG;
	rr_iter_init(&it, m, len, info.question_end ? info.question_end : DNS_HEADER_LEN);
	while ((r = rr_iter_next(&it, &rr)) > 0) {
		if (rr.type == DNS_TYPE_OPT)
			continue;
		uint32_t ttl = rr_ttl(m, &rr);

		dns_put32(m + rr.ttl_off, ttl > secs ? ttl - secs : 0);
	}
	if (r < 0)
		return r;
	/* a name may point into a TTL (legal, if perverse): the result must still parse */
	r = dns_msg_parse(m, len, &info);
	return r < 0 || !info.records_ok ? -EBADMSG : 0;
}
