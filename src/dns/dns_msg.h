/*
 * dns_msg.h - the DNS message codec (RFC 1035 4.1, EDNS0 of RFC 6891) shared by the
 * forwarder and the DNS health check: read names, walk a whole message, build short
 * replies, age TTLs.
 *
 * Pure code: no sockets, no logging, no allocation.  Outside input is read only within
 * its length and every failure is an error code.
 */
#ifndef EGRESS_DNS_MSG_H
#define EGRESS_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN	  12
#define DNS_NAME_MAX	  255 /* wire length of a name, RFC 1035 2.3.4 */
#define DNS_PTR_MAX	  128 /* compression pointers followed in one name (127 labels at most) */
#define DNS_LABEL_MAX	  63
#define DNS_PLAIN_UDP	  512	/* what a client without EDNS0 takes (RFC 1035 4.2.1) */
#define DNS_EDNS_UDP	  1232	/* the payload size we advertise (DNS flag day 2020) */
#define DNS_MSG_MAX	  65535 /* TCP's two-byte length */
#define DNS_NAME_TEXT_MAX (4 * DNS_NAME_MAX + 2) /* dns_name_text(): "\\ddd" per byte */

#define DNS_TYPE_A     1
#define DNS_TYPE_NS    2
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SOA   6
#define DNS_TYPE_AAAA  28
#define DNS_TYPE_OPT   41
#define DNS_CLASS_IN   1

/* Header flags (the second 16-bit word). */
#define DNS_FLAG_QR   0x8000
#define DNS_FLAG_AA   0x0400
#define DNS_FLAG_TC   0x0200
#define DNS_FLAG_RD   0x0100
#define DNS_FLAG_RA   0x0080
#define DNS_FLAG_AD   0x0020
#define DNS_FLAG_CD   0x0010
#define DNS_OPCODE(f) (((f) >> 11) & 0xf)
#define DNS_RCODE(f)  ((f)&0xf)

#define DNS_EDNS_DO 0x8000 /* in the low 16 bits of the OPT record's TTL (RFC 3225) */
#define DNS_EDNS_ECS 8	    /* EDNS option code: Client Subnet (RFC 7871) */

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	_DNS_RCODE_MAX = 16,
};

/* "NOERROR", ..., or "RCODE<n>" for codes without a name (static storage). */
const char *dns_rcode_name(unsigned rcode);

static inline uint16_t dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t dns_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void dns_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void dns_put32(uint8_t *p, uint32_t v)
{
	dns_put16(p, (uint16_t)(v >> 16));
	dns_put16(p + 2, (uint16_t)v);
}

/*
 * Read the name at off of message m (len bytes, borrowed) into out (DNS_NAME_MAX bytes,
 * uncompressed wire form; NULL: only skip it) and its length into *ret_out_len (optional).
 * *ret_next is where the message goes on after the name.  A compression pointer (RFC 1035
 * 4.1.4) must point strictly backwards and past the header, and the name must end within
 * 255 bytes: a chain of pointers cannot cycle, and a loop through a label grows the name
 * until it is refused.  At most DNS_PTR_MAX pointers are followed per name: a chain of
 * pointers to pointers, legal but never needed, would otherwise cost a walk per record
 * over the whole message.  -EBADMSG otherwise.
 */
int dns_name_read(const uint8_t *m, size_t len, size_t off, uint8_t *out, size_t *ret_out_len,
	size_t *ret_next);

/* Equal wire names, ASCII case-insensitively (RFC 4343). */
bool dns_name_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* Lowercase a wire name in place (length bytes are below 'A' and stay as they are). */
void dns_name_lower(uint8_t *name, size_t len);

/*
 * The dotted text of a wire name (borrowed, as read by dns_name_read) into buf
 * (DNS_NAME_TEXT_MAX bytes is always enough): "." for the root, other bytes than
 * [A-Za-z0-9-_] escaped as \ddd.  Returns buf; a name that does not fit is cut.
 */
const char *dns_name_text(const uint8_t *name, size_t len, char *buf, size_t buflen);

/* What dns_msg_parse() found in a message. */
struct dns_msg {
	uint16_t id, flags;
	uint16_t qdcount, ancount, nscount, arcount;
	/* the question (qdcount 1); question_end is 0 when there is none */
	uint8_t qname[DNS_NAME_MAX]; /* wire form as sent */
	size_t qname_len;
	uint16_t qtype, qclass;
	size_t question_end;
	/* false only for a truncated (TC) message whose records are cut short */
	bool records_ok;
	size_t end; /* where the last record ended (bytes after it are ignored) */
	/* EDNS0 (RFC 6891 6.1): the one OPT record of the additional section */
	bool edns;
	uint16_t edns_udp; /* requestor's payload size as sent */
	uint8_t edns_version;
	bool edns_do; /* DNSSEC OK (RFC 3225) */
	uint8_t edns_ext_rcode;
	size_t opt_rdata;  /* where the OPT record's options are (0: no OPT) */
	uint16_t opt_rdlen; /* and their length */
	bool edns_ecs;	   /* an EDNS Client Subnet option (RFC 7871) among them */
	/* TTLs (RFC 2181 8: a TTL with the top bit set counts as 0) */
	uint32_t min_ttl; /* of every record but OPT; UINT32_MAX when there is none */
	bool soa;	  /* an SOA in the authority section (RFC 2308 3) */
	uint32_t soa_ttl; /* min(its TTL, its MINIMUM field): the negative TTL (RFC 2308 5) */
};

/*
 * Walk message m (len bytes, borrowed) whole: header, at most one question, every record
 * of the three sections (names, lengths, one OPT in the additional section whose owner is
 * the root).  Fills *ret.  A message with TC set may end early: then records_ok is false
 * and the result holds what the header and question say.  -EBADMSG for a malformed
 * message (then *ret holds at least what the header says if len >= 12).
 */
int dns_msg_parse(const uint8_t *m, size_t len, struct dns_msg *ret);

/* What an answer says its question's name leads to (dns_msg_chain()). */
#define DNS_CHAIN_NAMES 16 /* the query name and up to 15 CNAME targets */
#define DNS_CHAIN_ADDRS 64 /* A and AAAA records kept */
#define DNS_CHAIN_TEXT	256 /* a name's dotted text: 253 bytes and a NUL (longer: cut) */
struct dns_chain {
	char names[DNS_CHAIN_NAMES][DNS_CHAIN_TEXT]; /* lower-case, no trailing dot */
	size_t n_names;
	struct dns_chain_addr {
		int family; /* AF_INET, AF_INET6 */
		uint8_t addr[16];
		uint32_t ttl; /* RFC 2181 8: top bit set counts as 0 */
	} addrs[DNS_CHAIN_ADDRS];
	size_t n_addrs;
};

/*
 * The CNAME chain of answer m (len bytes, borrowed, parsed into a) from its question's
 * name, and the A and AAAA records (class IN) of the chain's last name, from the answer
 * section.  A chain longer than DNS_CHAIN_NAMES or a loop stops where it is; records past
 * DNS_CHAIN_ADDRS are left out.  -ENOENT without a question or with records cut short;
 * -EBADMSG for a record that does not read.
 */
int dns_msg_chain(const uint8_t *m, size_t len, const struct dns_msg *a, struct dns_chain *ret);

/*
 * Whether a parsed query (QR clear) holds what a query may: one question and no answer or
 * authority records (RFC 1035 4.1.1; a query that carries them, as only an UPDATE or a
 * NOTIFY may, is FORMERR).  The additional section stays open: OPT (RFC 6891, with a
 * COOKIE of RFC 7873), TSIG (RFC 8945).
 */
bool dns_msg_query_ok(const struct dns_msg *q);

/*
 * Remove the options of message m's OPT record (a: m parsed), keeping the record itself
 * (payload size, extended RCODE, version, DO): options such as a COOKIE (RFC 7873) or
 * padding belong to one client's exchange.  Returns m's new length (len without the
 * options); only done when OPT is the message's last record (else len: see
 * dns_msg_opt_strippable()).
 */
size_t dns_msg_strip_opt_options(uint8_t *m, size_t len, const struct dns_msg *a);
/* Whether a (parsed) has no OPT options, or has them in its last record (strippable). */
bool dns_msg_opt_strippable(const struct dns_msg *a);

/* The same question: name case-insensitively, type and class (RFC 5452 9.1). */
bool dns_msg_same_question(const struct dns_msg *a, const struct dns_msg *b);

/* The largest UDP answer the sender of query q takes: 512, or its EDNS0 size if larger. */
size_t dns_msg_udp_limit(const struct dns_msg *q);

/*
 * Build a reply without records to query (qlen bytes, borrowed, parsed into q) into buf
 * (len bytes): the query's ID, opcode, RD and CD; QR and RA set; rcode; TC if tc.  It
 * carries the question (the name written out uncompressed) when q is not NULL and has
 * one, and an OPT record (our payload
 * size, the query's DO bit) when q says the query had one.  q NULL: the header only, for a
 * query that did not parse (only its first 12 bytes are read).  *ret_len gets the length;
 * -EINVAL if query is shorter than a header, -ENOBUFS if buf is too small
 * (DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11 is always enough).
 */
int dns_msg_reply(const uint8_t *query, size_t qlen, const struct dns_msg *q, unsigned rcode,
	bool tc, uint8_t *buf, size_t len, size_t *ret_len);

/*
 * How long answer a (parsed) may be cached, in seconds, in *ret_ttl: the lowest TTL of
 * its records for a positive answer, the SOA's negative TTL for NXDOMAIN and NODATA
 * (RFC 2308 5).  -ENOENT when it must not be cached: not a standard response, TC set,
 * records cut, no question, an rcode other than NOERROR and NXDOMAIN, a negative answer
 * without SOA, a TTL of 0.
 */
int dns_msg_cache_ttl(const struct dns_msg *a, uint32_t *ret_ttl);

/*
 * Age every record's TTL of message m (len bytes, writable) by secs, down to 0; the OPT
 * record's TTL field (not a TTL) is left alone.  -EBADMSG if m does not parse, before or
 * after (a name compressed against a TTL's bytes reads differently once they change):
 * then m must be thrown away.
 */
int dns_msg_age(uint8_t *m, size_t len, uint32_t secs);

#endif
