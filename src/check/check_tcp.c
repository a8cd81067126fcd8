/*
 * check_tcp.c - TCP connect probes: a non-blocking connect() through the
 * uplink; the handshake completing is a good probe.
 *
 * The socket is closed with an abortive close (SO_LINGER 0: a reset), so
 * hundreds of probes a second leave no TIME_WAIT sockets behind.  Must not
 * send any payload.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "check_int.h"

static void tcp_close(struct check_target *t)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (t->ev) {
		event_free(t->ev);
		t->ev = NULL;
	}
	if (t->fd >= 0) {
		(void)setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(t->fd);
		t->fd = -1;
	}
}

static void tcp_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_target *t = arg;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)what;
	if (getsockopt((int)fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	tcp_close(t);
	if (err)
		check_target_done(t, check_errno_result(err), "%s", strerror(err));
	else
		check_target_done(t, CHECK_OK, "connected");
}

int check_tcp_start(struct check_target *t)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int r;

	r = check_target_sockaddr(t, &ss, &len);
	if (r < 0)
		return r;
	r = check_sock_open(t->cu, t->addr.family, SOCK_STREAM, 0, &t->fd);
	if (r < 0)
		return r;
	if (connect(t->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	/* connected at once (loopback) or later: either way the socket becomes writable */
	t->ev = event_new(t->cu->e->base, t->fd, EV_WRITE, tcp_event_cb, t);
	if (!t->ev || event_add(t->ev, NULL) < 0)
		r = -ENOMEM;
out:
	if (r < 0)
		tcp_close(t);
	return r;
}

void check_tcp_cancel(struct check_target *t)
{
	tcp_close(t);
}
