/*
 * dev_fwd.c - port forwards of the devices: "OUTER:INNER" words and the IPv6 -> IPv4 relay.
 *
 * Each device with a WAN IPv6 gets one listening socket per forward, bound to that address
 * and the forward's outer port.  An accepted client gets a non-blocking connect to the
 * device's LAN IPv4 and inner port; once it is up, both sockets go to the splice relay pool
 * (src/proxy/relay.h), which moves the bytes on its worker threads until the session ends.
 * Everything here runs on the main loop and never blocks.
 *
 * This file must not touch the kernel's configuration (addresses, routes, nftables: that is
 * dev_net.c) nor know the module's devices beyond what dev_relay_set() is told.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "dev_fwd.h"
#include "log.h"
#include "relay.h"
#include "util.h"

/* Connections (connecting and relayed) one forward may have at once: a client that opens
 * more is reset at once (each holds two sockets and, while bytes move, pipes). */
#define FWD_CONNS_MAX 512
/* A device that does not answer the connect within this is given up on. */
#define FWD_CONNECT_TIMEOUT_S 10
#define FWD_BACKLOG 128
/* Accepts per wake-up, so that one busy forward does not hold the loop. */
#define FWD_ACCEPT_BURST 32

struct fwd_dev;
struct fwd_lst;

/* One client: connecting (ev set), then relayed (the pool owns both fds). */
struct fwd_conn {
	struct dev_relay *r;
	struct fwd_lst *l; /* NULL once its forward is gone (a relayed session runs on) */
	int cfd, sfd;	   /* -1 once the relay has them */
	struct event *ev;  /* the connect's completion, with its timeout */
	struct relay_counters ctr;
	struct fwd_conn *prev, *next; /* dev_relay.conns */
};

/* One forward of one device: its listener and counters. */
struct fwd_lst {
	struct fwd_dev *dev;
	uint16_t outer, inner;
	int fd; /* -1: not listening (err says why) */
	int err;
	struct event *ev;
	bool paused; /* out of descriptors: not accepting until the relay's pause timer */
	uint64_t active, total, bytes_in, bytes_out, errors;
	struct fwd_lst *next;
};

struct fwd_dev {
	struct dev_relay *r;
	uint8_t mac[6];
	struct addr listen6, dst4;
	struct fwd_lst *lsts;
	struct fwd_dev *next;
};

struct dev_relay {
	struct event_base *base;
	uint32_t mark;
	struct relay_pool *pool;
	struct fwd_dev *devs;
	struct fwd_conn *conns;
	struct event *pause; /* takes paused listeners back */
	struct log_ratelimit rl;
};

/* A listener whose accept() found no descriptor left waits this long before trying again
 * (it stays readable: accepting at once again would spin). */
#define FWD_PAUSE_MS 200

int dev_port_map_parse(const char *s, uint16_t *outer, uint16_t *inner, const char **why)
{
	unsigned long v[2];
	const char *p = s;
	char *end;

	if (!s || !*s) {
		*why = "expected OUTER:INNER, e.g. 8080:80";
		return -EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		if (*p < '0' || *p > '9') {
			*why = "expected OUTER:INNER, e.g. 8080:80";
			return -EINVAL;
		}
		errno = 0;
		v[i] = strtoul(p, &end, 10);
		if (errno || v[i] < 1 || v[i] > 65535 || end - p > 5) {
			*why = "ports are 1 to 65535";
			return -EINVAL;
		}
		p = end;
		if (i == 0) {
			if (*p != ':') {
				*why = "expected OUTER:INNER, e.g. 8080:80";
				return -EINVAL;
			}
			p++;
		}
	}
	if (*p) {
		*why = "expected OUTER:INNER, e.g. 8080:80";
		return -EINVAL;
	}
	*outer = (uint16_t)v[0];
	*inner = (uint16_t)v[1];
	return 0;
}

static const char *mac_str(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		mac[5]);
	return buf;
}

/* "[2001:db8::5]:8080" into buf (ADDR_STRLEN + 8). */
static const char *lst_str(const struct fwd_lst *l, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	snprintf(buf, len, "[%s]:%u", addr_str(&l->dev->listen6, a, sizeof(a)), l->outer);
	return buf;
}

static void relay_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev_relay *r = arg;

	for (struct fwd_dev *d = r->devs; d; d = d->next)
		for (struct fwd_lst *l = d->lsts; l; l = l->next)
			if (l->paused) {
				l->paused = false;
				event_add(l->ev, NULL);
			}
}

int dev_relay_new(struct event_base *base, uint32_t idle_ms, uint32_t mark,
	struct dev_relay **ret)
{
	struct dev_relay *r = xcalloc(1, sizeof(*r));
	struct relay_opts o = {.idle_timeout_ms = idle_ms};
	int e;

	r->base = base;
	r->mark = mark;
	r->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 20);
	r->pause = evtimer_new(base, relay_resume_cb, r);
	if (!r->pause) {
		free(r);
		return -ENOMEM;
	}
	e = relay_pool_new(base, &o, &r->pool);
	if (e < 0) {
		event_free(r->pause);
		free(r);
		return e;
	}
	*ret = r;
	return 0;
}

static void conn_unlink(struct fwd_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* Close what c still holds and free it; the client gets a reset (the forward failed it). */
static void conn_free(struct fwd_conn *c)
{
	if (c->cfd >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->cfd);
	}
	if (c->sfd >= 0)
		close(c->sfd);
	if (c->ev)
		event_free(c->ev);
	conn_unlink(c);
	free(c);
}

static void conn_fail(struct fwd_conn *c, int err, const char *what)
{
	struct fwd_lst *l = c->l;

	if (l) {
		char b[ADDR_STRLEN + 8], m[18];
		l->active--;
		l->errors++;
		if (log_ratelimit(&c->r->rl))
			log_debug("devices: %s: forward %s -> %u: %s: %s",
				mac_str(l->dev->mac, m), lst_str(l, b, sizeof(b)), l->inner, what,
				strerror(err));
	}
	conn_free(c);
}

static void conn_relay_done_cb(void *arg, enum relay_end end, int err)
{
	struct fwd_conn *c = arg;
	struct fwd_lst *l = c->l;

	if (l) {
		l->active--;
		l->bytes_in += c->ctr.up;
		l->bytes_out += c->ctr.down;
		if (end == RELAY_END_ERROR)
			l->errors++;
	}
	(void)err;
	conn_free(c); /* the relay closed both fds */
}

static void conn_connected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fwd_conn *c = arg;
	int err = ETIMEDOUT, e;
	socklen_t len = sizeof(err);

	if ((what & EV_WRITE) && getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn_fail(c, err, "connect");
		return;
	}
	event_free(c->ev);
	c->ev = NULL;
	e = relay_start(c->r->pool, c->cfd, c->sfd, NULL, 0, NULL, 0, NULL, &c->ctr,
		conn_relay_done_cb, c);
	if (e < 0) {
		conn_fail(c, -e, "relay");
		return;
	}
	c->cfd = c->sfd = -1; /* the relay's now */
	(void)fd;
}

/* An accepted client of l (cfd is ours): connect to the device, then wait on the loop. */
static void conn_start(struct fwd_lst *l, int cfd)
{
	struct dev_relay *r = l->dev->r;
	struct fwd_conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t slen;
	struct timeval tv = {FWD_CONNECT_TIMEOUT_S, 0};
	int one = 1, e;

	c->r = r;
	c->l = l;
	c->cfd = cfd;
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	l->active++;
	l->total++;
	if (l->active > FWD_CONNS_MAX) {
		conn_fail(c, EMFILE, "too many connections");
		return;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	e = addr_to_sockaddr(&l->dev->dst4, l->inner, &ss, &slen);
	if (e < 0) {
		conn_fail(c, -e, "device address");
		return;
	}
	c->sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->sfd < 0) {
		conn_fail(c, errno, "socket");
		return;
	}
	setsockopt(c->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->sfd, (struct sockaddr *)&ss, slen) < 0 && errno != EINPROGRESS) {
		conn_fail(c, errno, "connect");
		return;
	}
	/* even a connect that completed at once is handed over from the callback: one path */
	c->ev = event_new(r->base, c->sfd, EV_WRITE, conn_connected_cb, c);
	if (!c->ev || event_add(c->ev, &tv) < 0) {
		conn_fail(c, ENOMEM, "event");
		return;
	}
}

static void lst_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fwd_lst *l = arg;

	for (int i = 0; i < FWD_ACCEPT_BURST; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			/* EAGAIN: all taken; ECONNABORTED and the like: that client only;
			 * EMFILE, ENFILE, ENOBUFS: pause, then try again */
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				struct dev_relay *r = l->dev->r;
				struct timeval tv = {0, FWD_PAUSE_MS * 1000};
				char b[ADDR_STRLEN + 8], m[18];

				l->errors++;
				if (log_ratelimit(&r->rl))
					log_warn("devices: %s: forward %s: accept",
						mac_str(l->dev->mac, m), lst_str(l, b, sizeof(b)));
				event_del(l->ev);
				l->paused = true;
				if (!evtimer_pending(r->pause, NULL))
					evtimer_add(r->pause, &tv);
			}
			return;
		}
		conn_start(l, cfd);
	}
	(void)what;
}

/*
 * Listen on the device's WAN IPv6 and l's outer port: 0 or -errno (then l->err is set and
 * l has no socket).  IPV6_FREEBIND: the address may still be tentative (DAD) or not yet
 * on the macvlan; the bind holds and the listener serves once the kernel has it.
 */
static int lst_open(struct fwd_lst *l)
{
	struct dev_relay *r = l->dev->r;
	struct sockaddr_storage ss;
	socklen_t slen;
	int one = 1, fd, e;
	char b[ADDR_STRLEN + 8], m[18];

	l->err = 0;
	e = addr_to_sockaddr(&l->dev->listen6, l->outer, &ss, &slen);
	if (e < 0)
		goto fail;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = -errno;
		goto fail;
	}
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) < 0 ||
		(r->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &r->mark, sizeof(r->mark)) < 0) ||
		bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, FWD_BACKLOG) < 0) {
		e = -errno;
		close(fd);
		goto fail;
	}
	l->ev = event_new(r->base, fd, EV_READ | EV_PERSIST, lst_accept_cb, l);
	if (!l->ev || event_add(l->ev, NULL) < 0) {
		if (l->ev)
			event_free(l->ev);
		l->ev = NULL;
		close(fd);
		e = -ENOMEM;
		goto fail;
	}
	l->fd = fd;
	log_debug("devices: %s: forward %s -> %u listening", mac_str(l->dev->mac, m),
		lst_str(l, b, sizeof(b)), l->inner);
	return 0;
fail:
	l->err = -e;
	log_warnx("devices: %s: forward %s -> %u: %s%s", mac_str(l->dev->mac, m),
		lst_str(l, b, sizeof(b)), l->inner, strerror(-e),
		e == -EADDRINUSE ? " (the port is taken on that address)" : "");
	return e;
}

/* Stop listening and free l.  Its relayed sessions run on to their end without it; the
 * ones still connecting are cut (the forward is gone before they were served). */
static void lst_free(struct fwd_lst *l)
{
	struct fwd_conn *c, *next;

	for (c = l->dev->r->conns; c; c = next) {
		next = c->next;
		if (c->l != l)
			continue;
		c->l = NULL;
		if (c->ev)
			conn_free(c);
	}
	if (l->ev)
		event_free(l->ev);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

static struct fwd_dev *dev_find(struct dev_relay *r, const uint8_t mac[6], struct fwd_dev ***pp)
{
	struct fwd_dev **p;

	for (p = &r->devs; *p; p = &(*p)->next)
		if (!memcmp((*p)->mac, mac, 6))
			break;
	if (pp)
		*pp = p;
	return *p;
}

static const struct dev_forward *fwd_find(const struct dev_forward *fwds, size_t n,
	uint16_t outer, uint16_t inner)
{
	for (size_t i = 0; i < n; i++)
		if (fwds[i].outer == outer && fwds[i].inner == inner)
			return &fwds[i];
	return NULL;
}

int dev_relay_set(struct dev_relay *r, const uint8_t mac[6], const struct addr *listen6,
	const struct addr *dst4, const struct dev_forward *fwds, size_t n)
{
	struct fwd_dev **pp, *d = dev_find(r, mac, &pp);
	struct fwd_lst **lp, *l;
	bool on = listen6 && listen6->family == AF_INET6 && dst4 && dst4->family == AF_INET;
	int ret = 0;

	if (!on)
		n = 0;
	if (!d) {
		if (!n)
			return 0;
		d = xcalloc(1, sizeof(*d));
		d->r = r;
		memcpy(d->mac, mac, 6);
		*pp = d;
	}
	/* another address: every listener is bound to the old one */
	if (on && !addr_eq(&d->listen6, listen6)) {
		while (d->lsts) {
			l = d->lsts;
			d->lsts = l->next;
			lst_free(l);
		}
	}
	if (on) {
		d->listen6 = *listen6;
		d->dst4 = *dst4; /* new connections go there; relayed ones stay where they are */
	}
	/* listeners not wanted go first, so that a port moving to another inner port is free */
	for (lp = &d->lsts; (l = *lp);) {
		if (!fwd_find(fwds, n, l->outer, l->inner)) {
			*lp = l->next;
			lst_free(l);
		} else {
			lp = &l->next;
		}
	}
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		for (l = d->lsts; l; l = l->next)
			if (l->outer == fwds[i].outer) {
				dup = true;
				break;
			}
		if (dup) {
			/* already right (kept; a failed bind is tried again), or a second forward
			 * of the same outer port, which cannot be */
			if (l->inner != fwds[i].inner) {
				char m[18];
				log_warnx("devices: %s: forward %u -> %u: port %u is already "
					  "forwarded to %u", mac_str(mac, m), fwds[i].outer,
					fwds[i].inner, fwds[i].outer, l->inner);
				if (!ret)
					ret = -EADDRINUSE;
			} else if (l->fd < 0) {
				int e = lst_open(l);
				if (e < 0 && !ret)
					ret = e;
			}
			continue;
		}
		l = xcalloc(1, sizeof(*l));
		l->dev = d;
		l->fd = -1;
		l->outer = fwds[i].outer;
		l->inner = fwds[i].inner;
		*lp = l; /* at the end, in the caller's order */
		lp = &l->next;
		int e = lst_open(l);
		if (e < 0 && !ret)
			ret = e;
	}
	if (!d->lsts) {
		*pp = d->next;
		free(d);
	}
	return ret;
}

json_t *dev_relay_json(const struct dev_relay *r, const uint8_t mac[6])
{
	const struct fwd_dev *d = r->devs;
	json_t *a = json_array();

	while (d && memcmp(d->mac, mac, 6))
		d = d->next;

	for (struct fwd_lst *l = d ? d->lsts : NULL; l; l = l->next) {
		uint64_t in = l->bytes_in, out = l->bytes_out;
		char b[ADDR_STRLEN + 8];
		json_t *o;

		/* the live sessions' bytes so far (the relay's workers add to them) */
		for (struct fwd_conn *c = r->conns; c; c = c->next) {
			if (c->l == l) {
				in += c->ctr.up;
				out += c->ctr.down;
			}
		}
		o = json_pack("{s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I}", "gateway_port",
			(int)l->outer, "device_port", (int)l->inner, "listen",
			lst_str(l, b, sizeof(b)), "connections_active", (json_int_t)l->active,
			"connections_total", (json_int_t)l->total, "bytes_in", (json_int_t)in,
			"bytes_out", (json_int_t)out, "errors", (json_int_t)l->errors);
		json_object_set_new(o, "listening", json_boolean(l->fd >= 0));
		if (l->fd < 0)
			json_object_set_new(o, "error", json_string(strerror(l->err)));
		json_array_append_new(a, o);
	}
	return a;
}

void dev_relay_free(struct dev_relay *r)
{
	if (!r)
		return;
	/* first: no relay callback runs after this, and every relayed socket is closed */
	relay_pool_free(r->pool);
	while (r->conns) {
		struct fwd_conn *c = r->conns;
		if (!c->ev)
			c->cfd = c->sfd = -1; /* the relay had them and closed them */
		conn_free(c);
	}
	while (r->devs) {
		struct fwd_dev *d = r->devs;
		r->devs = d->next;
		while (d->lsts) {
			struct fwd_lst *l = d->lsts;
			d->lsts = l->next;
			lst_free(l);
		}
		free(d);
	}
	event_free(r->pause);
	free(r);
}
