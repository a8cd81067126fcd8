/*
 * ddns_rfc2136.c - the RFC 2136 provider: one DNS UPDATE that makes the name's A and AAAA
 * records exactly the wanted set (delete both RRsets, RFC 2136 2.5.2, then add each
 * address, 2.5.1), signed with TSIG (RFC 8945); the message is built, signed and its
 * answer's signature checked by ldns, never by hand.
 *
 * The exchange runs on the loop: non-blocking UDP, and TCP (RFC 1035 4.2.2, a length
 * before the message) when the answer comes back truncated.  The answer must carry the
 * query's id and a good TSIG; an rcode other than NOERROR is reported by name with the
 * TSIG error of the answer (BADKEY, BADSIG, BADTIME), which is what a server says when it
 * refuses the key.
 *
 * Must not log, nor put the secret anywhere but in ldns's signing calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <ldns/ldns.h>

#include "ddns_int.h"
#include "util.h"

#define TSIG_FUDGE 300
#define DNS_MAX 65535

struct ddns_rfc2136 {
	struct event_base *base;
	struct addr server;
	uint16_t port;
	ldns_rdf *zone, *name;
	char *key_name, *secret;
	const char *alg;
	uint32_t ttl_s, timeout_ms;

	/* the exchange in flight */
	int fd;
	struct event *ev;
	bool tcp;
	uint8_t *wire; /* the signed query (TCP: with its length in front) */
	size_t wire_len, sent;
	uint16_t id;
	ldns_rdf *mac; /* the query's TSIG MAC, which the answer's signs over */
	uint8_t *in;
	size_t in_len;
	ddns_done_cb cb;
	void *arg;
};

/* ldns's names of the algorithms (tsig.c compares them without the final dot). */
static const char *const alg_ldns[_DDNS_TSIG_ALG_MAX] = {
	[DDNS_HMAC_MD5] = "hmac-md5.sig-alg.reg.int",
	[DDNS_HMAC_SHA1] = "hmac-sha1",
	[DDNS_HMAC_SHA224] = "hmac-sha224",
	[DDNS_HMAC_SHA256] = "hmac-sha256",
	[DDNS_HMAC_SHA384] = "hmac-sha384",
	[DDNS_HMAC_SHA512] = "hmac-sha512",
};

/* RFC 8945 5.2: the TSIG errors a server answers with. */
static const char *tsig_error_name(unsigned e)
{
	switch (e) {
	case 16:
		return "BADSIG";
	case 17:
		return "BADKEY";
	case 18:
		return "BADTIME";
	case 22:
		return "BADTRUNC";
	default:
		return NULL;
	}
}

static void exchange_clear(struct ddns_rfc2136 *r)
{
	if (r->ev) {
		event_free(r->ev);
		r->ev = NULL;
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	FREE_AND_NULL(r->wire);
	FREE_AND_NULL(r->in);
	r->wire_len = r->sent = r->in_len = 0;
	if (r->mac) {
		ldns_rdf_deep_free(r->mac);
		r->mac = NULL;
	}
}

static void finish(struct ddns_rfc2136 *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finish(struct ddns_rfc2136 *r, int err, const char *fmt, ...)
{
	ddns_done_cb cb = r->cb;
	char msg[256] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	exchange_clear(r);
	r->cb = NULL;
	if (cb)
		cb(r->arg, err, msg);
}

/* ------------------------------------------------------------ the message */

static ldns_rr *rr_new(const ldns_rdf *owner, ldns_rr_type type, ldns_rr_class cls, uint32_t ttl)
{
	ldns_rr *rr = ldns_rr_new();

	if (!rr)
		fatalx("out of memory");
	ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
	ldns_rr_set_type(rr, type);
	ldns_rr_set_class(rr, cls);
	ldns_rr_set_ttl(rr, ttl);
	return rr;
}

/* The signed UPDATE for want, its wire form in r->wire; 0 or -EINVAL with why. */
static int build(struct ddns_rfc2136 *r, const struct ddns_set *want, char *why, size_t whylen)
{
	ldns_rr_list *up = ldns_rr_list_new();
	ldns_pkt *pkt = NULL;
	ldns_status st;
	uint8_t *wire = NULL;
	size_t len = 0;
	int ret = -EINVAL;

	if (!up)
		fatalx("out of memory");
	/* RFC 2136 2.5.2: class ANY, TTL 0, no rdata deletes the RRset */
	ldns_rr_list_push_rr(up, rr_new(r->name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY, 0));
	ldns_rr_list_push_rr(up, rr_new(r->name, LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_ANY, 0));
	for (size_t i = 0; i < want->n; i++) {
		bool v6 = want->v[i].family == AF_INET6;
		ldns_rr *rr = rr_new(r->name, v6 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A,
			LDNS_RR_CLASS_IN, r->ttl_s);

		ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
					     v6 ? 16 : 4, want->v[i].b));
		ldns_rr_list_push_rr(up, rr);
	}
	pkt = ldns_update_pkt_new(ldns_rdf_clone(r->zone), LDNS_RR_CLASS_IN, NULL, up, NULL);
	if (!pkt)
		fatalx("out of memory");
	if (getrandom(&r->id, sizeof(r->id), 0) != sizeof(r->id))
		r->id = (uint16_t)now_ms();
	ldns_pkt_set_id(pkt, r->id);
	st = ldns_pkt_tsig_sign(pkt, r->key_name, r->secret, TSIG_FUDGE, r->alg, NULL);
	if (st != LDNS_STATUS_OK) {
		/* ldns's message says what, never the secret */
		snprintf(why, whylen, "signing with key %s: %s", r->key_name,
			ldns_get_errorstr_by_id(st));
		goto out;
	}
	r->mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(pkt), 3));
	st = ldns_pkt2wire(&wire, pkt, &len);
	if (st != LDNS_STATUS_OK || len > DNS_MAX) {
		snprintf(why, whylen, "the update does not fit a DNS message");
		goto out;
	}
	/* room for the TCP length in front, should the answer come back truncated */
	r->wire = xmalloc(len + 2);
	r->wire[0] = (uint8_t)(len >> 8);
	r->wire[1] = (uint8_t)len;
	memcpy(r->wire + 2, wire, len);
	r->wire_len = len;
	ret = 0;
out:
	free(wire);
	ldns_pkt_free(pkt);
	ldns_rr_list_deep_free(up);
	return ret;
}

/* Judge an answer (len bytes); true when it ended the update (finish called). */
static bool answer(struct ddns_rfc2136 *r, const uint8_t *buf, size_t len)
{
	ldns_pkt *p = NULL;
	ldns_rr *tsig;
	unsigned rcode, terr = 0;
	const ldns_lookup_table *name;

	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK)
		return false; /* not a DNS message: wait for the real one (UDP) */
	if (ldns_pkt_id(p) != r->id || !ldns_pkt_qr(p) || ldns_pkt_get_opcode(p) != LDNS_PACKET_UPDATE) {
		ldns_pkt_free(p);
		return false;
	}
	if (ldns_pkt_tc(p) && !r->tcp) {
		ldns_pkt_free(p);
		return false; /* the caller goes over to TCP */
	}
	rcode = ldns_pkt_get_rcode(p);
	tsig = ldns_pkt_tsig(p);
	if (tsig && ldns_rr_rd_count(tsig) > 5)
		terr = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
	if (rcode != LDNS_RCODE_NOERROR) {
		name = ldns_lookup_by_id(ldns_rcodes, (int)rcode);
		if (terr)
			finish(r, -EPERM, "the server answered %s (TSIG %s)",
				name ? name->name : "an error",
				tsig_error_name(terr) ? tsig_error_name(terr) : "error");
		else
			finish(r, -EIO, "the server answered %s", name ? name->name : "an error");
	} else if (!tsig || !ldns_pkt_tsig_verify(p, buf, len, r->key_name, r->secret, r->mac)) {
		finish(r, -EBADMSG, "the answer's TSIG signature is %s", tsig ? "wrong" : "missing");
	} else {
		finish(r, 0, NULL);
	}
	ldns_pkt_free(p);
	return true;
}

/* ------------------------------------------------------------ the exchange */

static int sock_open(struct ddns_rfc2136 *r, int type)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	if (addr_to_sockaddr(&r->server, r->port, &ss, &sl) < 0)
		return -EINVAL;
	fd = socket(r->server.family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	r->fd = fd;
	return 0;
}

static void tcp_cb(evutil_socket_t fd, short what, void *arg);

static void arm(struct ddns_rfc2136 *r, short what, event_callback_fn cb)
{
	struct timeval tv = {.tv_sec = r->timeout_ms / 1000,
		.tv_usec = (r->timeout_ms % 1000) * 1000};

	if (r->ev)
		event_free(r->ev);
	r->ev = event_new(r->base, r->fd, what | EV_PERSIST, cb, r);
	if (!r->ev || event_add(r->ev, &tv) < 0)
		fatalx("rfc2136: cannot watch a socket");
}

static void tcp_start(struct ddns_rfc2136 *r)
{
	int e;

	close(r->fd);
	r->fd = -1;
	r->tcp = true;
	r->sent = 0;
	r->in = xmalloc(DNS_MAX + 2);
	r->in_len = 0;
	e = sock_open(r, SOCK_STREAM);
	if (e < 0) {
		finish(r, e, "TCP to the server: %s", strerror(-e));
		return;
	}
	arm(r, EV_WRITE, tcp_cb);
}

static void udp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ddns_rfc2136 *r = arg;
	uint8_t buf[DNS_MAX];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		finish(r, -ETIMEDOUT, "no answer from the server");
		return;
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) >= 0) {
		if (answer(r, buf, (size_t)n))
			return;
		ldns_pkt *p = NULL;
		if (ldns_wire2pkt(&p, buf, (size_t)n) == LDNS_STATUS_OK && ldns_pkt_id(p) == r->id &&
			ldns_pkt_tc(p)) {
			ldns_pkt_free(p);
			tcp_start(r);
			return;
		}
		ldns_pkt_free(p);
	}
	if (errno != EAGAIN && errno != EINTR)
		finish(r, -errno, "UDP from the server: %s", strerror(errno));
}

static void tcp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ddns_rfc2136 *r = arg;
	size_t total = r->wire_len + 2;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		finish(r, -ETIMEDOUT, "no answer from the server over TCP");
		return;
	}
	if (r->sent < total) {
		n = send(fd, r->wire + r->sent, total - r->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				finish(r, -errno, "TCP to the server: %s", strerror(errno));
			return;
		}
		r->sent += (size_t)n;
		if (r->sent == total)
			arm(r, EV_READ, tcp_cb);
		return;
	}
	n = recv(fd, r->in + r->in_len, DNS_MAX + 2 - r->in_len, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			finish(r, -errno, "TCP from the server: %s", strerror(errno));
		return;
	}
	if (!n) {
		finish(r, -ECONNRESET, "the server closed the TCP connection");
		return;
	}
	r->in_len += (size_t)n;
	if (r->in_len >= 2) {
		size_t want = ((size_t)r->in[0] << 8) | r->in[1];

		if (r->in_len >= want + 2 && !answer(r, r->in + 2, want))
			finish(r, -EBADMSG, "an answer over TCP that is not ours");
	}
}

int ddns_rfc2136_update(struct ddns_rfc2136 *r, const struct ddns_set *want, ddns_done_cb cb,
	void *arg)
{
	char why[256];
	int e;

	if (r->cb)
		return -EBUSY;
	exchange_clear(r);
	r->cb = cb;
	r->arg = arg;
	r->tcp = false;
	if (build(r, want, why, sizeof(why)) < 0) {
		r->cb = NULL;
		exchange_clear(r);
		cb(arg, -EINVAL, why);
		return 0;
	}
	e = sock_open(r, SOCK_DGRAM);
	if (e < 0) {
		finish(r, e, "UDP to the server: %s", strerror(-e));
		return 0;
	}
	if (send(r->fd, r->wire + 2, r->wire_len, 0) < 0) {
		finish(r, -errno, "UDP to the server: %s", strerror(errno));
		return 0;
	}
	arm(r, EV_READ, udp_cb);
	return 0;
}

void ddns_rfc2136_cancel(struct ddns_rfc2136 *r)
{
	exchange_clear(r);
	r->cb = NULL;
}

int ddns_rfc2136_new(struct event_base *base, const struct conf_ddns *c, const char *secret,
	struct ddns_rfc2136 **ret)
{
	struct ddns_rfc2136 *r = xcalloc(1, sizeof(*r));
	char *zone = NULL;

	r->base = base;
	r->fd = -1;
	r->server = c->server;
	r->port = (uint16_t)c->server_port;
	r->ttl_s = c->record_ttl_ms / 1000;
	r->timeout_ms = c->timeout_ms;
	r->alg = alg_ldns[c->tsig_algorithm];
	r->key_name = xstrdup(c->tsig_key_name);
	r->secret = xstrdup(secret);
	r->name = ldns_dname_new_frm_str(c->hostname);
	if (c->zone)
		r->zone = ldns_dname_new_frm_str(c->zone);
	else if (r->name)
		r->zone = ldns_dname_left_chop(r->name);
	free(zone);
	*ret = r;
	if (!r->name || !r->zone) {
		ddns_rfc2136_free(r);
		*ret = NULL;
		return -EINVAL;
	}
	return 0;
}

void ddns_rfc2136_free(struct ddns_rfc2136 *r)
{
	if (!r)
		return;
	exchange_clear(r);
	if (r->name)
		ldns_rdf_deep_free(r->name);
	if (r->zone)
		ldns_rdf_deep_free(r->zone);
	free(r->key_name);
	if (r->secret)
		explicit_bzero(r->secret, strlen(r->secret));
	free(r->secret);
	free(r);
}
