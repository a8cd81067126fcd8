/*
 * dhcp6_msg.c - the DHCPv6 message codec (RFC 8415 8 and 21): build what the client sends,
 * parse what a server answers.
 *
 * Pure: no sockets, no clock, no log.  Every length is checked before it is read; a
 * malformed message is refused whole (-EBADMSG), never partly used.  Fuzzed by
 * tests/fuzz/fuzz_dhcp6.c.
 */
#include <errno.h>
#include <string.h>

#include "dhcp6_int.h"

const char *const dhcp6_msg_type_name[14] = {
	"?", "solicit", "advertise", "request", "confirm", "renew", "rebind", "reply", "release",
	"decline", "reconfigure", "information-request", "relay-forw", "relay-repl",
};

const char *dhcp6_msg_type_str(uint8_t type)
{
	return type < 14 ? dhcp6_msg_type_name[type] : "?";
}

const char *dhcp6_status_str(uint16_t status)
{
	switch (status) {
	case DHCP6_STATUS_SUCCESS: return "Success";
	case DHCP6_STATUS_UNSPEC_FAIL: return "UnspecFail";
	case DHCP6_STATUS_NO_ADDRS_AVAIL: return "NoAddrsAvail";
	case DHCP6_STATUS_NO_BINDING: return "NoBinding";
	case DHCP6_STATUS_NOT_ON_LINK: return "NotOnLink";
	case DHCP6_STATUS_USE_MULTICAST: return "UseMulticast";
	case DHCP6_STATUS_NONE: return "none";
	default: return "unknown status";
	}
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A STATUS_CODE option's body (RFC 8415 21.13): code, then UTF-8 text we do not keep. */
static int parse_status(const uint8_t *p, size_t len, uint16_t *ret)
{
	if (len < 2)
		return -EBADMSG;
	*ret = get16(p);
	return 0;
}

/* An IAADDR option's body (RFC 8415 21.6): address, lifetimes, its own options. */
static int parse_iaaddr(const uint8_t *p, size_t len, struct dhcp6_msg_addr *ret)
{
	size_t off = 24;

	if (len < 24)
		return -EBADMSG;
	memcpy(&ret->addr, p, 16);
	ret->preferred_s = get32(p + 16);
	ret->valid_s = get32(p + 20);
	ret->status = DHCP6_STATUS_NONE;
	while (off < len) {
		uint16_t code, olen;

		if (len - off < 4)
			return -EBADMSG;
		code = get16(p + off);
		olen = get16(p + off + 2);
		off += 4;
		if (olen > len - off)
			return -EBADMSG;
		if (code == DHCP6_OPT_STATUS_CODE && parse_status(p + off, olen, &ret->status) < 0)
			return -EBADMSG;
		off += olen;
	}
	return 0;
}

/* An IA_NA option's body (RFC 8415 21.4); keep says whether it is the one we keep. */
static int parse_ia_na(const uint8_t *p, size_t len, bool keep, struct dhcp6_msg *m)
{
	struct dhcp6_msg_addr a;
	uint16_t status = DHCP6_STATUS_NONE;
	size_t off = 12, n = 0;

	if (len < 12)
		return -EBADMSG;
	while (off < len) {
		uint16_t code, olen;

		if (len - off < 4)
			return -EBADMSG;
		code = get16(p + off);
		olen = get16(p + off + 2);
		off += 4;
		if (olen > len - off)
			return -EBADMSG;
		switch (code) {
		case DHCP6_OPT_IAADDR:
			if (parse_iaaddr(p + off, olen, &a) < 0)
				return -EBADMSG;
			if (keep && n < DHCP6_MSG_ADDRS_MAX)
				m->addrs[n++] = a;
			break;
		case DHCP6_OPT_STATUS_CODE:
			if (parse_status(p + off, olen, &status) < 0)
				return -EBADMSG;
			break;
		default:
			break;
		}
		off += olen;
	}
	if (keep) {
		m->has_ia = true;
		m->iaid = get32(p);
		m->t1_s = get32(p + 4);
		m->t2_s = get32(p + 8);
		m->ia_status = status;
		m->n_addrs = n;
	}
	return 0;
}

static int parse_duid(const uint8_t *p, size_t len, uint8_t *dst, size_t *dst_len)
{
	/* RFC 8415 11.1: a 2-byte type and up to 128 bytes; a second copy is malformed */
	if (len < 2 || len > DHCP6_DUID_MAX || *dst_len)
		return -EBADMSG;
	memcpy(dst, p, len);
	*dst_len = len;
	return 0;
}

int dhcp6_msg_parse(const uint8_t *buf, size_t len, struct dhcp6_msg *ret)
{
	struct dhcp6_msg *m = ret;
	size_t off = 4;

	memset(m, 0, sizeof(*m));
	m->status = DHCP6_STATUS_NONE;
	m->ia_status = DHCP6_STATUS_NONE;
	if (len < 4 || buf[0] == 0 || buf[0] == DHCP6_MSG_RELAY_FORW ||
		buf[0] == DHCP6_MSG_RELAY_REPL)
		goto bad;
	m->type = buf[0];
	m->xid = (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	while (off < len) {
		const uint8_t *p;
		uint16_t code, olen;

		if (len - off < 4)
			goto bad;
		code = get16(buf + off);
		olen = get16(buf + off + 2);
		off += 4;
		if (olen > len - off)
			goto bad;
		p = buf + off;
		switch (code) {
		case DHCP6_OPT_CLIENTID:
			if (parse_duid(p, olen, m->client_duid, &m->client_duid_len) < 0)
				goto bad;
			break;
		case DHCP6_OPT_SERVERID:
			if (parse_duid(p, olen, m->server_duid, &m->server_duid_len) < 0)
				goto bad;
			break;
		case DHCP6_OPT_IA_NA:
			if (parse_ia_na(p, olen, !m->has_ia, m) < 0)
				goto bad;
			break;
		case DHCP6_OPT_STATUS_CODE:
			if (parse_status(p, olen, &m->status) < 0)
				goto bad;
			break;
		case DHCP6_OPT_PREFERENCE:
			if (olen != 1)
				goto bad;
			m->has_preference = true;
			m->preference = p[0];
			break;
		case DHCP6_OPT_ELAPSED_TIME:
			if (olen != 2)
				goto bad;
			m->has_elapsed = true;
			m->elapsed_cs = get16(p);
			break;
		case DHCP6_OPT_RAPID_COMMIT:
			if (olen != 0)
				goto bad;
			m->rapid_commit = true;
			break;
		case DHCP6_OPT_DNS_SERVERS:
			if (olen % 16)
				goto bad;
			for (size_t i = 0; i < olen / 16 && m->n_dns < DHCP6_DNS_MAX; i++)
				memcpy(&m->dns[m->n_dns++], p + 16 * i, 16);
			break;
		case DHCP6_OPT_ORO:
			if (olen % 2)
				goto bad;
			break;
		case DHCP6_OPT_SOL_MAX_RT:
			if (olen != 4)
				goto bad;
			m->sol_max_rt_s = get32(p);
			break;
		default:
			break; /* RFC 8415 16: unknown options are ignored */
		}
		off += olen;
	}
	return 0;
bad:
	memset(m, 0, sizeof(*m));
	return -EBADMSG;
}

/* A writer over the caller's buffer: put*() stop writing (and set err) once it is full. */
struct wbuf {
	uint8_t *p;
	size_t cap, len;
	bool err;
};

static void put(struct wbuf *w, const void *data, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = true;
		return;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

static void put16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 2);
}

static void put32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 4);
}

static void put_opt(struct wbuf *w, uint16_t code, const void *data, size_t n)
{
	put16(w, code);
	put16(w, (uint16_t)n);
	put(w, data, n);
}

int dhcp6_msg_build(const struct dhcp6_msg *m, uint8_t *buf, size_t cap, size_t *ret_len)
{
	struct wbuf w = { .p = buf, .cap = cap };
	uint8_t hdr[4] = { m->type, (uint8_t)(m->xid >> 16), (uint8_t)(m->xid >> 8),
		(uint8_t)m->xid };

	put(&w, hdr, 4);
	if (m->client_duid_len)
		put_opt(&w, DHCP6_OPT_CLIENTID, m->client_duid, m->client_duid_len);
	if (m->server_duid_len)
		put_opt(&w, DHCP6_OPT_SERVERID, m->server_duid, m->server_duid_len);
	if (m->has_ia) {
		put16(&w, DHCP6_OPT_IA_NA);
		put16(&w, (uint16_t)(12 + 28 * m->n_addrs));
		put32(&w, m->iaid);
		put32(&w, m->t1_s);
		put32(&w, m->t2_s);
		for (size_t i = 0; i < m->n_addrs; i++) {
			put16(&w, DHCP6_OPT_IAADDR);
			put16(&w, 24);
			put(&w, &m->addrs[i].addr, 16);
			put32(&w, m->addrs[i].preferred_s);
			put32(&w, m->addrs[i].valid_s);
		}
	}
	if (m->oro_dns) {
		put16(&w, DHCP6_OPT_ORO);
		put16(&w, 2);
		put16(&w, DHCP6_OPT_DNS_SERVERS);
	}
	if (m->has_elapsed) {
		put16(&w, DHCP6_OPT_ELAPSED_TIME);
		put16(&w, 2);
		put16(&w, m->elapsed_cs);
	}
	if (w.err)
		return -ENOBUFS;
	*ret_len = w.len;
	return 0;
}

size_t dhcp6_duid_ll(const uint8_t mac[6], uint8_t *buf)
{
	/* RFC 8415 11.4: DUID-LL, type 3, hardware type 1 (Ethernet), the address */
	buf[0] = 0;
	buf[1] = 3;
	buf[2] = 0;
	buf[3] = 1;
	memcpy(buf + 4, mac, 6);
	return 10;
}
