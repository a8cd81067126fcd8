/*
 * curl_loop.c - libcurl's multi interface driven by the libevent loop (curl_loop.h).
 *
 * Must not block, log, or touch a transfer's options but CURLOPT_PRIVATE.
 */
#include <errno.h>
#include <stdlib.h>

#include <event2/event.h>

#include "curl_loop.h"
#include "log.h"
#include "util.h"

struct curl_loop {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	bool ca_dir; /* libcurl has a default CA directory: verify through it alone */
};

/* One socket curl asked us to watch. */
struct curl_sock {
	struct event *ev;
};

static void curl_loop_check_done(struct curl_loop *l);

static void curl_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *l = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
		     ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(l->multi, fd, action, &running);
	curl_loop_check_done(l);
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *l = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_loop_check_done(l);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants (or stop watching it). */
static int curl_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_loop *l = userp;
	struct curl_sock *cs = socketp;
	short ev;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (cs) {
			event_free(cs->ev);
			free(cs);
		}
		return 0;
	}
	ev = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	     ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (!cs) {
		cs = xcalloc(1, sizeof(*cs));
		curl_multi_assign(l->multi, s, cs);
	} else {
		event_free(cs->ev);
	}
	cs->ev = event_new(l->base, s, ev, curl_event_cb, l);
	if (!cs->ev || event_add(cs->ev, NULL) < 0)
		fatalx("curl: cannot watch a socket");
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake curl after timeout_ms (-1: never). */
static int curl_timer_set_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_loop *l = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(l->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(l->timer, &tv);
	return 0;
}

int curl_loop_new(struct event_base *base, struct curl_loop **ret)
{
	const curl_version_info_data *info;
	struct curl_loop *l;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	l = xcalloc(1, sizeof(*l));
	l->base = base;
	l->multi = curl_multi_init();
	l->timer = evtimer_new(base, curl_timer_cb, l);
	if (!l->multi || !l->timer) {
		curl_loop_free(l);
		return -ENOMEM;
	}
	info = curl_version_info(CURLVERSION_NOW);
	l->ca_dir = info && info->age >= CURLVERSION_SEVENTH && info->capath && info->capath[0];
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, curl_timer_set_cb);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	*ret = l;
	return 0;
}

void curl_loop_free(struct curl_loop *l)
{
	if (!l)
		return;
	if (l->multi)
		curl_multi_cleanup(l->multi);
	if (l->timer)
		event_free(l->timer);
	free(l);
	curl_global_cleanup();
}

/* Take the finished transfers off the multi handle and hand them to their owners. */
static void curl_loop_check_done(struct curl_loop *l)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(l->multi, &left))) {
		CURL *easy = m->easy_handle;
		CURLcode res = m->data.result;
		struct curl_xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(l->multi, easy);
		if (!x)
			continue;
		x->in_multi = false;
		x->done_cb(x, res, x->arg);
	}
}

int curl_loop_add(struct curl_loop *l, struct curl_xfer *x)
{
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
	if (curl_multi_add_handle(l->multi, x->easy) != CURLM_OK)
		return -EIO;
	x->in_multi = true;
	return 0;
}

void curl_loop_remove(struct curl_loop *l, struct curl_xfer *x)
{
	if (x->in_multi) {
		curl_multi_remove_handle(l->multi, x->easy);
		x->in_multi = false;
	}
}

void curl_loop_ca_setup(const struct curl_loop *l, CURL *easy)
{
	if (l->ca_dir)
		curl_easy_setopt(easy, CURLOPT_CAINFO, NULL);
}
