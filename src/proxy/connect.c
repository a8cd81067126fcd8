/*
 * connect.c - outbound TCP connects raced over uplinks, and the socket set-up of every
 * outbound socket (see connect.h).
 *
 * A race holds up to CONNECT_MAX_VIAS attempts, each a nonblocking socket with a write event;
 * a connect is done when the socket turns writable, and SO_ERROR says whether it worked.  Two
 * timers: "race" (started with each attempt while candidates remain; when it fires the next
 * candidate starts beside the ones still trying) and "deadline" (the whole race).  A third,
 * never-timed event delivers a result reached inside connect_race_start() on the next loop
 * turn, so the caller's callback never runs inside its own call.
 *
 * Must not log (the caller reports the result), block, or keep a socket after the race ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "connect.h"
#include "util.h"

struct attempt {
	struct connect_race *r;
	int fd; /* -1: slot free */
	int via;
	struct event *ev;
};

struct connect_race {
	struct event_base *base;
	struct sockaddr_storage target;
	socklen_t tlen;
	int family;
	struct connect_via vias[CONNECT_MAX_VIAS];
	size_t n, next; /* next: the candidate to start next */
	struct connect_opts o;
	connect_done_cb cb;
	void *arg;

	struct attempt at[CONNECT_MAX_VIAS];
	size_t pending;
	int attempts;
	int last_err, last_err_uplink;
	struct event *race_ev, *deadline_ev, *done_ev;

	bool in_start; /* inside connect_race_start(): results wait for done_ev */
	int res_fd, res_err, res_uplink;
};

int uplink_socket(int family, int type, const struct connect_via *via)
{
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, ret = 0;

	if ((family != AF_INET && family != AF_INET6) ||
		(base != SOCK_STREAM && base != SOCK_DGRAM))
		return -EINVAL;
	if (via && addr_is_set(&via->source) && via->source.family != family)
		return -EAFNOSUPPORT;
	fd = socket(family, base | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (via && via->mark &&
		setsockopt(fd, SOL_SOCKET, SO_MARK, &via->mark, sizeof(via->mark)) < 0)
		goto fail;
	if (via && addr_is_set(&via->source)) {
		/*
		 * Without IP_BIND_ADDRESS_NO_PORT, bind() picks the port now, among those no
		 * socket on this address holds at all; with it the choice waits for connect(),
		 * which may reuse a port towards other destinations.
		 */
		if (base == SOCK_STREAM &&
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
			goto fail;
		ret = addr_to_sockaddr(&via->source, 0, &ss, &sl);
		if (ret < 0)
			goto out;
		if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
			goto fail;
	} else if (via && via->ifname[0]) {
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, via->ifname,
			    (socklen_t)strnlen(via->ifname, sizeof(via->ifname))) < 0)
			goto fail;
	}
	if (base == SOCK_STREAM && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		goto fail;
	return fd;
fail:
	ret = -errno;
out:
	close(fd);
	return ret;
}

static void attempt_close(struct attempt *a)
{
	if (a->fd < 0)
		return;
	event_free(a->ev);
	a->ev = NULL;
	close(a->fd);
	a->fd = -1;
	a->r->pending--;
}

static void race_free(struct connect_race *r)
{
	for (size_t i = 0; i < ARRAY_SIZE(r->at); i++)
		attempt_close(&r->at[i]);
	if (r->race_ev)
		event_free(r->race_ev);
	if (r->deadline_ev)
		event_free(r->deadline_ev);
	if (r->done_ev)
		event_free(r->done_ev);
	free(r);
}

/* End the race: free it, then tell the caller (fd, if any, passes to the callback). */
static void race_finish(struct connect_race *r, int fd, int err, int uplink)
{
	connect_done_cb cb = r->cb;
	void *arg = r->arg;
	int attempts = r->attempts;

	if (r->in_start) {
		r->res_fd = fd;
		r->res_err = err;
		r->res_uplink = uplink;
		event_active(r->done_ev, 0, 0);
		return;
	}
	race_free(r);
	cb(fd, err, uplink, attempts, arg);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct connect_race *r = arg;

	race_finish(r, r->res_fd, r->res_err, r->res_uplink);
}

/* Attempt a won: take its socket out of the race; freeing the race closes the others. */
static void race_win(struct connect_race *r, struct attempt *a)
{
	int fd = a->fd, uplink = r->vias[a->via].uplink;

	event_free(a->ev);
	a->ev = NULL;
	a->fd = -1;
	r->pending--;
	race_finish(r, fd, 0, uplink);
}

static void note_err(struct connect_race *r, int via, int err)
{
	r->last_err = err;
	r->last_err_uplink = r->vias[via].uplink;
}

static void attempt_cb(evutil_socket_t fd, short what, void *arg);

static void add_ms(struct event *ev, uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/*
 * Start the next candidate that gets as far as a pending connect, passing over those that
 * fail at once; when none is left and nothing is pending, the race is over.
 */
static void race_next(struct connect_race *r)
{
	while (r->next < r->n) {
		size_t v = r->next++;
		struct attempt *a = NULL;
		int fd;

		/* skipped, not failed: its uplink is not to blame */
		if (addr_is_set(&r->vias[v].source) && r->vias[v].source.family != r->family)
			continue;
		fd = uplink_socket(r->family, SOCK_STREAM, &r->vias[v]);
		if (fd < 0) {
			note_err(r, (int)v, fd);
			continue;
		}
		r->attempts++;
		if (connect(fd, (struct sockaddr *)&r->target, r->tlen) < 0 &&
			errno != EINPROGRESS) {
			note_err(r, (int)v, -errno);
			close(fd);
			continue;
		}
		/* At most one attempt per candidate, so a slot is always free. */
		for (size_t i = 0; !a && i < ARRAY_SIZE(r->at); i++)
			if (r->at[i].fd < 0)
				a = &r->at[i];
		a->ev = event_new(r->base, fd, EV_WRITE, attempt_cb, a);
		if (!a->ev) {
			note_err(r, (int)v, -ENOMEM);
			close(fd);
			continue;
		}
		a->fd = fd;
		a->via = (int)v;
		r->pending++;
		/* A connect that worked at once (it may, locally) also reports by the event. */
		event_add(a->ev, NULL);
		if (r->o.race_ms && r->next < r->n)
			add_ms(r->race_ev, r->o.race_ms);
		return;
	}
	if (!r->pending) {
		evtimer_del(r->race_ev);
		evtimer_del(r->deadline_ev);
		race_finish(r, -1, r->last_err, r->last_err_uplink);
	}
}

static void attempt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct attempt *a = arg;
	struct connect_race *r = a->r;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err) {
		race_win(r, a);
		return;
	}
	note_err(r, a->via, -err);
	attempt_close(a);
	race_next(r);
}

static void race_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	race_next(arg);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct connect_race *r = arg;

	for (size_t i = 0; i < ARRAY_SIZE(r->at); i++) {
		if (r->at[i].fd >= 0) {
			note_err(r, r->at[i].via, -ETIMEDOUT);
			attempt_close(&r->at[i]);
		}
	}
	evtimer_del(r->race_ev);
	race_finish(r, -1, r->last_err, r->last_err_uplink);
}

int connect_race_start(struct event_base *base, const struct sockaddr *target, socklen_t tlen,
	const struct connect_via *vias, size_t n, const struct connect_opts *o, connect_done_cb cb,
	void *arg, struct connect_race **ret)
{
	struct connect_race *r;

	if (!base || !target || !vias || !cb || !ret || !n || n > CONNECT_MAX_VIAS ||
		tlen > sizeof(r->target))
		return -EINVAL;
	if (!(target->sa_family == AF_INET && tlen >= sizeof(struct sockaddr_in)) &&
		!(target->sa_family == AF_INET6 && tlen >= sizeof(struct sockaddr_in6)))
		return -EINVAL;

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	memcpy(&r->target, target, tlen);
	r->tlen = tlen;
	r->family = target->sa_family;
	memcpy(r->vias, vias, n * sizeof(*vias));
	r->n = n;
	if (o)
		r->o = *o;
	r->cb = cb;
	r->arg = arg;
	r->last_err = -EAFNOSUPPORT; /* stays so only if every candidate is skipped */
	r->last_err_uplink = -1;
	for (size_t i = 0; i < ARRAY_SIZE(r->at); i++) {
		r->at[i].r = r;
		r->at[i].fd = -1;
	}
	r->race_ev = evtimer_new(base, race_timer_cb, r);
	r->deadline_ev = evtimer_new(base, deadline_cb, r);
	r->done_ev = event_new(base, -1, 0, done_cb, r);
	if (!r->race_ev || !r->deadline_ev || !r->done_ev) {
		race_free(r);
		return -ENOMEM;
	}
	if (r->o.deadline_ms)
		add_ms(r->deadline_ev, r->o.deadline_ms);

	r->in_start = true;
	race_next(r);
	r->in_start = false;
	*ret = r;
	return 0;
}

void connect_race_cancel(struct connect_race *r)
{
	if (r)
		race_free(r);
}
