/*
 * dhcp4_msg.c - build and parse DHCPv4 messages (RFC 2131, RFC 2132, RFC 3396), their IPv4
 * and UDP headers, and ARP packets.
 *
 * Must not trust input: every read is bounds-checked against the length the caller gave,
 * every option walk advances, and option overload (52) is honoured once per field, so a
 * message cannot make the walk loop or read outside it.  No logging, no allocation, no
 * clock: the caller counts and logs what is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dhcp4_msg.h"

const char *const dhcp4_msg_type_name[_DHCP4_MSG_TYPE_MAX] = {
	[DHCP4_DISCOVER] = "discover",
	[DHCP4_OFFER] = "offer",
	[DHCP4_REQUEST] = "request",
	[DHCP4_DECLINE] = "decline",
	[DHCP4_ACK] = "ack",
	[DHCP4_NAK] = "nak",
	[DHCP4_RELEASE] = "release",
	[DHCP4_INFORM] = "inform",
};

static const uint8_t magic[4] = { 99, 130, 83, 99 };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Offsets in the fixed part (RFC 2131 figure 1). */
enum {
	OFF_OP = 0,
	OFF_HTYPE = 1,
	OFF_HLEN = 2,
	OFF_XID = 4,
	OFF_SECS = 8,
	OFF_FLAGS = 10,
	OFF_CIADDR = 12,
	OFF_YIADDR = 16,
	OFF_SIADDR = 20,
	OFF_GIADDR = 24,
	OFF_CHADDR = 28,
	OFF_SNAME = 44,
	OFF_FILE = 108,
	OFF_COOKIE = 236,
	OFF_OPTIONS = 240,
	SNAME_LEN = 64,
	FILE_LEN = 128,
	BOOTP_MIN = 300,
};

/* The parameter request list (option 55) every request carries. */
static const uint8_t param_list[] = {
	DHCP4_OPT_SUBNET_MASK, DHCP4_OPT_ROUTER, DHCP4_OPT_DNS, DHCP4_OPT_DOMAIN,
	DHCP4_OPT_LEASE_TIME, DHCP4_OPT_SERVER_ID, DHCP4_OPT_T1, DHCP4_OPT_T2,
};

/* Append option code with data[0..n) at *off; -ENOBUFS when it does not fit. */
static int put_opt(uint8_t *buf, size_t len, size_t *off, uint8_t code, const void *data, size_t n)
{
	if (n > 255 || *off + 2 + n > len)
		return -ENOBUFS;
	buf[*off] = code;
	buf[*off + 1] = (uint8_t)n;
	memcpy(buf + *off + 2, data, n);
	*off += 2 + n;
	return 0;
}

int dhcp4_msg_build(const struct dhcp4_msg *m, uint8_t *buf, size_t len, size_t *ret_len)
{
	size_t off = OFF_OPTIONS, hl = strnlen(m->hostname, sizeof(m->hostname));
	uint8_t b[2];
	int r;

	if (m->type < DHCP4_DISCOVER || m->type >= _DHCP4_MSG_TYPE_MAX)
		return -EINVAL;
	if (m->client_id_len > sizeof(m->client_id) || hl > DHCP4_HOSTNAME_MAX)
		return -EINVAL;
	if (len < BOOTP_MIN)
		return -ENOBUFS;
	memset(buf, 0, BOOTP_MIN);
	buf[OFF_OP] = m->op ? m->op : DHCP4_OP_REQUEST;
	buf[OFF_HTYPE] = 1; /* Ethernet */
	buf[OFF_HLEN] = 6;
	put32(buf + OFF_XID, m->xid);
	put16(buf + OFF_SECS, m->secs);
	put16(buf + OFF_FLAGS, m->flags);
	memcpy(buf + OFF_CIADDR, &m->ciaddr, 4);
	memcpy(buf + OFF_YIADDR, &m->yiaddr, 4);
	memcpy(buf + OFF_SIADDR, &m->siaddr, 4);
	memcpy(buf + OFF_GIADDR, &m->giaddr, 4);
	memcpy(buf + OFF_CHADDR, m->chaddr, 16);
	memcpy(buf + OFF_COOKIE, magic, 4);

	r = put_opt(buf, len, &off, DHCP4_OPT_MSG_TYPE, &m->type, 1);
	if (!r && m->client_id_len)
		r = put_opt(buf, len, &off, DHCP4_OPT_CLIENT_ID, m->client_id, m->client_id_len);
	if (!r && m->has_requested_ip)
		r = put_opt(buf, len, &off, DHCP4_OPT_REQUESTED_IP, &m->requested_ip, 4);
	if (!r && m->has_server_id)
		r = put_opt(buf, len, &off, DHCP4_OPT_SERVER_ID, &m->server_id, 4);
	if (!r && hl)
		r = put_opt(buf, len, &off, DHCP4_OPT_HOSTNAME, m->hostname, hl);
	if (!r && m->max_size) {
		put16(b, m->max_size);
		r = put_opt(buf, len, &off, DHCP4_OPT_MAX_SIZE, b, 2);
	}
	if (!r && m->param_list)
		r = put_opt(buf, len, &off, DHCP4_OPT_PARAM_LIST, param_list, sizeof(param_list));
	if (r)
		return r;
	if (off + 1 > len)
		return -ENOBUFS;
	buf[off++] = DHCP4_OPT_END;
	if (off < BOOTP_MIN) {
		memset(buf + off, 0, BOOTP_MIN - off);
		off = BOOTP_MIN;
	}
	*ret_len = off;
	return 0;
}

/*
 * Where each option we read was found: up to FRAG_MAX instances (RFC 3396 lets a long
 * option be split; the parts are joined in the order met).
 */
#define FRAG_MAX 8
struct frag {
	const uint8_t *p;
	uint8_t len;
};
struct opt_slot {
	uint8_t code;
	uint8_t n;
	struct frag f[FRAG_MAX];
};
static const uint8_t wanted[] = {
	DHCP4_OPT_SUBNET_MASK, DHCP4_OPT_ROUTER, DHCP4_OPT_DNS, DHCP4_OPT_REQUESTED_IP,
	DHCP4_OPT_LEASE_TIME, DHCP4_OPT_OVERLOAD, DHCP4_OPT_MSG_TYPE, DHCP4_OPT_SERVER_ID,
	DHCP4_OPT_MESSAGE, DHCP4_OPT_T1, DHCP4_OPT_T2,
};
#define N_WANTED (sizeof(wanted) / sizeof(wanted[0]))

static struct opt_slot *slot_of(struct opt_slot *slots, uint8_t code)
{
	for (size_t i = 0; i < N_WANTED; i++)
		if (slots[i].code == code)
			return &slots[i];
	return NULL;
}

/*
 * Walk the options in p[0..len): pad skipped, end stops, each other option must fit.
 * Records the ones we read in slots.  overload_ok: option 52 counts only in the options
 * field proper (RFC 2131 4.1); elsewhere it is ignored.
 */
static int walk(const uint8_t *p, size_t len, struct opt_slot *slots, bool overload_ok)
{
	size_t i = 0;

	while (i < len) {
		uint8_t code = p[i], n;
		struct opt_slot *s;

		if (code == DHCP4_OPT_PAD) {
			i++;
			continue;
		}
		if (code == DHCP4_OPT_END)
			return 0;
		if (i + 2 > len)
			return -EBADMSG;
		n = p[i + 1];
		if (i + 2 + n > len)
			return -EBADMSG;
		s = slot_of(slots, code);
		if (s && (code != DHCP4_OPT_OVERLOAD || overload_ok)) {
			if (s->n == FRAG_MAX)
				return -EBADMSG;
			s->f[s->n].p = p + i + 2;
			s->f[s->n].len = n;
			s->n++;
		}
		i += 2 + (size_t)n;
	}
	/* no end option: tolerated, the field simply ends */
	return 0;
}

/* Join an option's parts into out[0..cap); the joined length, or -EBADMSG if it exceeds cap. */
static int join(const struct opt_slot *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (n + s->f[i].len > cap)
			return -EBADMSG;
		memcpy(out + n, s->f[i].p, s->f[i].len);
		n += s->f[i].len;
	}
	return (int)n;
}

/* An option of exactly 4 bytes (an address or a 32-bit time); -EBADMSG for another length. */
static int opt_4(const struct opt_slot *s, uint8_t out[4])
{
	uint8_t v[8];
	int n = join(s, v, sizeof(v));

	if (n != 4)
		return -EBADMSG;
	memcpy(out, v, 4);
	return 0;
}

int dhcp4_msg_parse(const uint8_t *buf, size_t len, struct dhcp4_msg *ret)
{
	struct opt_slot slots[N_WANTED];
	/* a list option joined from every field: at most the whole message */
	uint8_t v[DHCP4_MAX_MSG + 255];
	uint8_t b4[4];
	struct opt_slot *s;
	int n, r;

	memset(ret, 0, sizeof(*ret));
	memset(slots, 0, sizeof(slots));
	for (size_t i = 0; i < N_WANTED; i++)
		slots[i].code = wanted[i];
	if (len < DHCP4_MIN_LEN || memcmp(buf + OFF_COOKIE, magic, 4))
		return -EBADMSG;
	ret->op = buf[OFF_OP];
	ret->htype = buf[OFF_HTYPE];
	ret->hlen = buf[OFF_HLEN];
	if (ret->hlen > 16)
		return -EBADMSG;
	ret->xid = get32(buf + OFF_XID);
	ret->secs = get16(buf + OFF_SECS);
	ret->flags = get16(buf + OFF_FLAGS);
	memcpy(&ret->ciaddr, buf + OFF_CIADDR, 4);
	memcpy(&ret->yiaddr, buf + OFF_YIADDR, 4);
	memcpy(&ret->siaddr, buf + OFF_SIADDR, 4);
	memcpy(&ret->giaddr, buf + OFF_GIADDR, 4);
	memcpy(ret->chaddr, buf + OFF_CHADDR, 16);

	r = walk(buf + OFF_OPTIONS, len - OFF_OPTIONS, slots, true);
	if (r)
		return r;
	/* RFC 2131 4.1: with option 52, "file" and then "sname" carry options too */
	s = slot_of(slots, DHCP4_OPT_OVERLOAD);
	if (s->n) {
		uint8_t ov[4];

		if (join(s, ov, sizeof(ov)) != 1 || ov[0] < 1 || ov[0] > 3)
			return -EBADMSG;
		s->n = 0; /* consumed: the other fields cannot overload again */
		if (ov[0] & 1) {
			r = walk(buf + OFF_FILE, FILE_LEN, slots, false);
			if (r)
				return r;
		}
		if (ov[0] & 2) {
			r = walk(buf + OFF_SNAME, SNAME_LEN, slots, false);
			if (r)
				return r;
		}
	}

	s = slot_of(slots, DHCP4_OPT_MSG_TYPE);
	if (!s->n || join(s, v, sizeof(v)) != 1 || v[0] < DHCP4_DISCOVER ||
		v[0] >= _DHCP4_MSG_TYPE_MAX)
		return -EBADMSG;
	ret->type = v[0];

	s = slot_of(slots, DHCP4_OPT_SUBNET_MASK);
	if (s->n) {
		if (opt_4(s, b4))
			return -EBADMSG;
		memcpy(&ret->mask, b4, 4);
		ret->has_mask = true;
	}
	s = slot_of(slots, DHCP4_OPT_ROUTER);
	if (s->n) {
		n = join(s, v, sizeof(v));
		if (n < 4 || n % 4)
			return -EBADMSG;
		memcpy(&ret->router, v, 4);
		ret->has_router = true;
	}
	s = slot_of(slots, DHCP4_OPT_DNS);
	if (s->n) {
		n = join(s, v, sizeof(v));
		if (n < 4 || n % 4)
			return -EBADMSG;
		for (int i = 0; i < n / 4 && ret->n_dns < DHCP4_MSG_DNS_MAX; i++)
			memcpy(&ret->dns[ret->n_dns++], v + 4 * i, 4);
	}
	s = slot_of(slots, DHCP4_OPT_SERVER_ID);
	if (s->n) {
		if (opt_4(s, b4))
			return -EBADMSG;
		memcpy(&ret->server_id, b4, 4);
		ret->has_server_id = true;
	}
	s = slot_of(slots, DHCP4_OPT_REQUESTED_IP);
	if (s->n) {
		if (opt_4(s, b4))
			return -EBADMSG;
		memcpy(&ret->requested_ip, b4, 4);
		ret->has_requested_ip = true;
	}
	s = slot_of(slots, DHCP4_OPT_LEASE_TIME);
	if (s->n) {
		if (opt_4(s, b4))
			return -EBADMSG;
		ret->lease_s = get32(b4);
		ret->has_lease = true;
	}
	s = slot_of(slots, DHCP4_OPT_T1);
	if (s->n) {
		if (opt_4(s, b4))
			return -EBADMSG;
		ret->t1_s = get32(b4);
		ret->has_t1 = true;
	}
	s = slot_of(slots, DHCP4_OPT_T2);
	if (s->n) {
		if (opt_4(s, b4))
			return -EBADMSG;
		ret->t2_s = get32(b4);
		ret->has_t2 = true;
	}
	s = slot_of(slots, DHCP4_OPT_MESSAGE);
	if (s->n) {
		size_t k = 0;

		n = join(s, v, sizeof(v));
		if (n < 0)
			return -EBADMSG;
		/* printable ASCII only, so that a log line cannot be forged */
		for (int i = 0; i < n && k < DHCP4_MESSAGE_MAX; i++)
			ret->message[k++] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
		ret->message[k] = '\0';
	}
	return 0;
}

uint16_t dhcp4_csum(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t s = sum;

	for (; len > 1; p += 2, len -= 2)
		s += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		s += (uint32_t)(p[0] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* The UDP pseudo header's sum (RFC 768): addresses, protocol, UDP length. */
static uint32_t pseudo_sum(struct in_addr src, struct in_addr dst, size_t ulen)
{
	uint8_t a[4], b[4];
	uint32_t s;

	memcpy(a, &src, 4);
	memcpy(b, &dst, 4);
	s = (uint32_t)(a[0] << 8 | a[1]) + (uint32_t)(a[2] << 8 | a[3]);
	s += (uint32_t)(b[0] << 8 | b[1]) + (uint32_t)(b[2] << 8 | b[3]);
	s += IPPROTO_UDP + (uint32_t)ulen;
	return s;
}

int dhcp4_udp_build(const struct dhcp4_udp *u, uint16_t id, const uint8_t *payload, size_t plen,
	uint8_t *buf, size_t len, size_t *ret_len)
{
	size_t total = DHCP4_IPUDP_LEN + plen;
	uint8_t *ip = buf, *udp = buf + 20;
	uint16_t c;

	if (total > 0xffff || total > len)
		return -ENOBUFS;
	memset(buf, 0, DHCP4_IPUDP_LEN);
	ip[0] = 0x45; /* version 4, 5 words */
	put16(ip + 2, (uint16_t)total);
	put16(ip + 4, id);
	ip[8] = 64; /* TTL */
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &u->src, 4);
	memcpy(ip + 16, &u->dst, 4);
	put16(ip + 10, dhcp4_csum(ip, 20, 0));

	put16(udp, u->sport);
	put16(udp + 2, u->dport);
	put16(udp + 4, (uint16_t)(8 + plen));
	memmove(udp + 8, payload, plen);
	c = dhcp4_csum(udp, 8 + plen, pseudo_sum(u->src, u->dst, 8 + plen));
	put16(udp + 6, c ? c : 0xffff); /* RFC 768: a computed 0 is sent as all ones */
	*ret_len = total;
	return 0;
}

int dhcp4_udp_parse(const uint8_t *pkt, size_t len, bool udp_csum, struct dhcp4_udp *ret,
	const uint8_t **ret_payload, size_t *ret_plen)
{
	size_t ihl, total, ulen;
	const uint8_t *udp;

	if (len < 20 || pkt[0] >> 4 != 4)
		return -EBADMSG;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	if (ihl < 20 || ihl > len)
		return -EBADMSG;
	total = get16(pkt + 2);
	if (total < ihl || total > len)
		return -EBADMSG;
	if (dhcp4_csum(pkt, ihl, 0) != 0)
		return -EBADMSG;
	if (get16(pkt + 6) & 0x3fff) /* MF or a fragment offset */
		return -EPROTO;
	if (pkt[9] != IPPROTO_UDP)
		return -EPROTO;
	if (total - ihl < 8)
		return -EBADMSG;
	udp = pkt + ihl;
	ulen = get16(udp + 4);
	if (ulen < 8 || ulen > total - ihl)
		return -EBADMSG;
	memcpy(&ret->src, pkt + 12, 4);
	memcpy(&ret->dst, pkt + 16, 4);
	ret->sport = get16(udp);
	ret->dport = get16(udp + 2);
	if (udp_csum && get16(udp + 6) &&
		dhcp4_csum(udp, ulen, pseudo_sum(ret->src, ret->dst, ulen)) != 0)
		return -EBADMSG;
	*ret_payload = udp + 8;
	*ret_plen = ulen - 8;
	return 0;
}

int dhcp4_arp_build(const struct dhcp4_arp *a, uint8_t *buf, size_t len)
{
	if (len < DHCP4_ARP_LEN)
		return -ENOBUFS;
	put16(buf, 1);	     /* Ethernet */
	put16(buf + 2, 0x0800); /* IPv4 */
	buf[4] = 6;
	buf[5] = 4;
	put16(buf + 6, a->op);
	memcpy(buf + 8, a->sha, 6);
	memcpy(buf + 14, &a->spa, 4);
	memcpy(buf + 18, a->tha, 6);
	memcpy(buf + 24, &a->tpa, 4);
	return 0;
}

int dhcp4_arp_parse(const uint8_t *buf, size_t len, struct dhcp4_arp *ret)
{
	if (len < DHCP4_ARP_LEN)
		return -EBADMSG;
	if (get16(buf) != 1 || get16(buf + 2) != 0x0800 || buf[4] != 6 || buf[5] != 4)
		return -EPROTO;
	ret->op = get16(buf + 6);
	if (ret->op != DHCP4_ARP_REQUEST && ret->op != DHCP4_ARP_REPLY)
		return -EPROTO;
	memcpy(ret->sha, buf + 8, 6);
	memcpy(&ret->spa, buf + 14, 4);
	memcpy(ret->tha, buf + 18, 6);
	memcpy(&ret->tpa, buf + 24, 4);
	return 0;
}
