/*
 * loop.c - one libevent base, signal handling and sd_notify.
 *
 * The readiness protocol is a datagram to $NOTIFY_SOCKET (see sd_notify(3));
 * it is small enough that linking libsystemd for it is not worth the
 * dependency on systems (OpenWrt) that have no systemd.
 *
 * Must not block: everything here is an event on the base.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "loop.h"
#include "util.h"

struct loop {
	struct event_base *base;
	struct event *sig_term;
	struct event *sig_int;
	struct event *sig_hup;
	loop_reload_cb reload_cb;
	void *reload_arg;
	int stop_signal;
};

static void loop_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct loop *l = arg;

	(void)what;
	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reloading the configuration");
		if (l->reload_cb)
			l->reload_cb(l->reload_arg);
		break;
	default:
		log_info("%s: stopping", strsignal((int)sig));
		l->stop_signal = (int)sig;
		event_base_loopbreak(l->base);
		break;
	}
}

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	/* the proxy's relay threads report finished sessions to this base (event_active from
	 * another thread needs a base with locks) */
	evthread_use_pthreads();
	l->base = event_base_new();
	if (!l->base)
		goto fail;
	l->sig_term = evsignal_new(l->base, SIGTERM, loop_signal_cb, l);
	l->sig_int = evsignal_new(l->base, SIGINT, loop_signal_cb, l);
	l->sig_hup = evsignal_new(l->base, SIGHUP, loop_signal_cb, l);
	if (!l->sig_term || !l->sig_int || !l->sig_hup)
		goto fail;
	if (evsignal_add(l->sig_term, NULL) < 0 || evsignal_add(l->sig_int, NULL) < 0 ||
		evsignal_add(l->sig_hup, NULL) < 0)
		goto fail;
	/* A peer that goes away mid-write must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	return l;
fail:
	loop_free(l);
	return NULL;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->sig_term)
		event_free(l->sig_term);
	if (l->sig_int)
		event_free(l->sig_int);
	if (l->sig_hup)
		event_free(l->sig_hup);
	if (l->base)
		event_base_free(l->base);
	free(l);
}

struct event_base *loop_base(struct loop *l)
{
	return l->base;
}

void loop_set_reload(struct loop *l, loop_reload_cb cb, void *arg)
{
	l->reload_cb = cb;
	l->reload_arg = arg;
}

int loop_run(struct loop *l)
{
	l->stop_signal = 0;
	if (event_base_dispatch(l->base) < 0)
		return -EIO;
	return l->stop_signal;
}

void loop_stop(struct loop *l)
{
	event_base_loopbreak(l->base);
}

void loop_fail(struct loop *l)
{
	l->stop_signal = -1;
	event_base_loopbreak(l->base);
}

int loop_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	size_t plen;
	int fd, r = 1;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		r = -errno;
	close(fd);
	return r;
}
