/*
 * check_dns.c - DNS probes: one query over UDP through the uplink, a fresh
 * socket (so a fresh source port) and a random ID per probe.
 *
 * The socket is connected, so the kernel drops datagrams from anyone but
 * the target.  An answer must carry the query's ID and question
 * (check_dns_pkt.c); anything else is counted, dropped, and the probe keeps
 * waiting for the real answer until its deadline.  NOERROR and NXDOMAIN
 * mean the server works.  Must not read more than a bounded number of
 * datagrams per wake-up.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "check_dns_pkt.h"
#include "check_int.h"
#include "util.h"

/* Datagrams read per wake-up before yielding to the loop. */
#define DNS_READ_BURST 16

struct dns_query {
	uint8_t buf[DNS_QUERY_MAX];
	size_t len;
	uint16_t qtype;
};

static void dns_close(struct check_target *t)
{
	if (t->ev) {
		event_free(t->ev);
		t->ev = NULL;
	}
	if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
}

int check_dns_setup(struct check_target *t)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	const char *name = t->cu->u->check.dns_name ? t->cu->u->check.dns_name : ".";
	int r;

	q->qtype = dns_check_qtype(name);
	/* validated once here; the ID is rewritten for every probe */
	r = dns_query_build(q->buf, sizeof(q->buf), 0, name, q->qtype, &q->len);
	if (r < 0) {
		free(q);
		return r;
	}
	t->priv = q;
	return 0;
}

void check_dns_teardown(struct check_target *t)
{
	FREE_AND_NULL(t->priv);
}

static void dns_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_target *t = arg;
	struct dns_query *q = t->priv;
	uint8_t buf[DNS_UDP_MAX + 1];
	unsigned rcode;
	int r;

	(void)what;
	for (int i = 0; i < DNS_READ_BURST; i++) {
		ssize_t n = recv((int)fd, buf, sizeof(buf), 0);

		if (n < 0) {
			int err = errno;
			if (err == EAGAIN || err == EINTR)
				return;
			/* ICMP port or host unreachable, reported on the connected socket */
			dns_close(t);
			check_target_done(t, check_errno_result(err), "%s", strerror(err));
			return;
		}
		r = dns_answer_check(buf, (size_t)n, q->buf, q->len, &rcode);
		if (r == -ENOMSG) {
			check_malformed(t->cu, "a DNS answer from %s that is not ours", t->label);
			continue;
		}
		if (r < 0) {
			check_malformed(
				t->cu, "a malformed DNS answer from %s (%zd bytes)", t->label, n);
			continue;
		}
		dns_close(t);
		if (rcode == DNS_RCODE_NOERROR || rcode == DNS_RCODE_NXDOMAIN)
			check_target_done(t, CHECK_OK, "%s", dns_rcode_name(rcode));
		else
			check_target_done(t, CHECK_BAD_RCODE, "rcode %s", dns_rcode_name(rcode));
		return;
	}
}

int check_dns_start(struct check_target *t)
{
	struct dns_query *q = t->priv;
	struct sockaddr_storage ss;
	socklen_t len;
	uint16_t id;
	int r;

	if (!q)
		return -EINVAL;
	r = check_target_sockaddr(t, &ss, &len);
	if (r < 0)
		return r;
	r = check_sock_open(t->cu, t->addr.family, SOCK_DGRAM, 0, &t->fd);
	if (r < 0)
		return r;
	if (connect(t->fd, (struct sockaddr *)&ss, len) < 0) {
		r = -errno;
		goto out;
	}
	id = (uint16_t)check_random32();
	q->buf[0] = (uint8_t)(id >> 8);
	q->buf[1] = (uint8_t)id;
	if (send(t->fd, q->buf, q->len, 0) < 0) {
		r = -errno;
		goto out;
	}
	t->ev = event_new(t->cu->e->base, t->fd, EV_READ | EV_PERSIST, dns_read_cb, t);
	if (!t->ev || event_add(t->ev, NULL) < 0)
		r = -ENOMEM;
out:
	if (r < 0)
		dns_close(t);
	return r;
}

void check_dns_cancel(struct check_target *t)
{
	dns_close(t);
}
