/*
 * events.c - egressd's event log: a bounded ring of what happened, its subscribers, and
 * the error lines of the log taken in as events.
 *
 * The ring and the subscribers belong to the loop's thread.  Error lines may be logged by
 * any thread (the proxy's relay workers): they go through a small mutex-guarded queue and an
 * eventfd that the loop watches, and become events on the loop's next turn - never in the
 * middle of the code that logged them.  A line logged while the subscribers run (a stream
 * that fails to send) is not taken: it would feed on itself.
 *
 * Must not: grow without bound (the ring keeps `capacity` events, the queue of error lines
 * EVENT_ERRQ_MAX), call a subscriber from any thread but the loop's, or log from the hook.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "events.h"
#include "log.h"
#include "util.h"

#define EVENT_ERRQ_MAX 64 /* error lines waiting for the loop; more are counted, not kept */

const char *const event_kind_name[_EVENT_KIND_MAX] = {
	[EVENT_TRANSITION] = "transition",
	[EVENT_APPLY] = "apply",
	[EVENT_ERROR] = "error",
	[EVENT_CONFIG] = "config",
	[EVENT_LOGIN] = "login",
	[EVENT_CHANGE] = "change",
};

struct event_sub {
	event_cb cb; /* NULL: unsubscribed while the subscribers ran, removed afterwards */
	void *arg;
};

/* Error lines on their way from any thread to the loop. */
struct event_errq {
	pthread_mutex_t lock; /* lines, n, dropped */
	char *lines[EVENT_ERRQ_MAX];
	size_t n;
	unsigned long dropped;
	int fd; /* eventfd, written when the queue stops being empty */
	struct event *ev;
};

struct event_log {
	struct event *ring; /* capacity slots; the oldest at head */
	size_t capacity, head, n;
	unsigned long long next_id;
	unsigned long long published; /* the subscribers have had every id up to this one */
	struct event_sub *subs;
	size_t n_subs, cap_subs;
	bool dispatching; /* event_log_publish() is walking the subscribers */
	struct event_errq *errq; /* NULL unless event_log_take_errors() */
};

/* Set on the loop's thread while the subscribers run: their error lines are not taken. */
static __thread bool event_in_subscribers;

int event_kind_from_name(const char *name)
{
	for (int i = 0; i < _EVENT_KIND_MAX; i++)
		if (streq(name, event_kind_name[i]))
			return i;
	return -EINVAL;
}

struct event_log *event_log_new(size_t capacity)
{
	struct event_log *l = xcalloc(1, sizeof(*l));

	l->capacity = capacity ? capacity : 1;
	l->ring = xcalloc(l->capacity, sizeof(*l->ring));
	l->next_id = 1;
	return l;
}

static void event_clear(struct event *e)
{
	free(e->who);
	free(e->message);
	json_decref(e->data);
	memset(e, 0, sizeof(*e));
}

static void event_errq_free(struct event_errq *q);

void event_log_free(struct event_log *l)
{
	if (!l)
		return;
	if (l->errq) {
		log_set_error_hook(NULL, NULL);
		event_errq_free(l->errq);
	}
	for (size_t i = 0; i < l->n; i++)
		event_clear(&l->ring[(l->head + i) % l->capacity]);
	free(l->ring);
	free(l->subs);
	free(l);
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line: control characters (a newline in a logged message) become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* The kept event of that id, or NULL (gone from the ring, or not yet added). */
static const struct event *event_log_find(const struct event_log *l, unsigned long long id)
{
	if (!l->n || id < l->ring[l->head].id || id - l->ring[l->head].id >= l->n)
		return NULL;
	return &l->ring[(l->head + (id - l->ring[l->head].id)) % l->capacity];
}

/*
 * Call the subscribers for each event not yet published, in the order of their ids.  An event
 * added by a subscriber is published by the walk already running, after the current one, so
 * every subscriber sees the ids increase.
 */
static void event_log_publish(struct event_log *l)
{
	if (l->dispatching)
		return;
	l->dispatching = true;
	event_in_subscribers = true;
	while (l->published + 1 < l->next_id) {
		const struct event *e = event_log_find(l, ++l->published);
		size_t n = l->n_subs; /* one subscribed by a callback starts with the next event */
		if (!e)
			continue;
		/* a subscriber may add events, which can reuse e's slot: hand out a copy */
		struct event copy = *e;
		copy.who = xstrdup(e->who);
		copy.message = xstrdup(e->message);
		json_incref(copy.data);
		for (size_t i = 0; i < n; i++)
			if (l->subs[i].cb)
				l->subs[i].cb(&copy, l->subs[i].arg);
		event_clear(&copy);
	}
	event_in_subscribers = false;
	l->dispatching = false;
	size_t k = 0;
	for (size_t i = 0; i < l->n_subs; i++)
		if (l->subs[i].cb)
			l->subs[k++] = l->subs[i];
	l->n_subs = k;
}

static void event_log_vadd(struct event_log *l, enum event_kind kind, const char *who,
	json_t *data, const char *fmt, va_list ap)
{
	struct event *e;
	char *msg;

	if (vasprintf(&msg, fmt, ap) < 0)
		fatal("vasprintf");
	one_line(msg);
	if (l->n == l->capacity) { /* the oldest goes */
		event_clear(&l->ring[l->head]);
		l->head = (l->head + 1) % l->capacity;
		l->n--;
	}
	e = &l->ring[(l->head + l->n) % l->capacity];
	l->n++;
	*e = (struct event){
		.id = l->next_id++,
		.time_ms = wall_ms(),
		.kind = kind,
		.who = xstrdup(who ? who : "egressd"),
		.message = msg,
		.data = data,
	};
	event_log_publish(l);
}

void event_log_add(struct event_log *l, enum event_kind kind, const char *who, json_t *data,
	const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	event_log_vadd(l, kind, who, data, fmt, ap);
	va_end(ap);
}

void event_log_foreach(const struct event_log *l, unsigned long long after, event_cb cb,
	void *arg)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct event *e = &l->ring[(l->head + i) % l->capacity];
		if (e->id > after)
			cb(e, arg);
	}
}

unsigned long long event_log_last_id(const struct event_log *l)
{
	return l->next_id - 1;
}

json_t *event_json(const struct event *e)
{
	time_t sec = (time_t)(e->time_ms / 1000);
	char stamp[40];
	struct tm tm;

	gmtime_r(&sec, &tm);
	size_t len = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + len, sizeof(stamp) - len, ".%03dZ", (int)(e->time_ms % 1000));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "id", (json_int_t)e->id, "time", stamp,
		"kind", event_kind_name[e->kind], "who", e->who, "message", e->message, "data",
		e->data ? json_incref(e->data) : json_object());
}

void event_log_subscribe(struct event_log *l, event_cb cb, void *arg)
{
	if (l->n_subs == l->cap_subs) {
		l->cap_subs = l->cap_subs ? 2 * l->cap_subs : 8;
		l->subs = xrealloc(l->subs, l->cap_subs * sizeof(*l->subs));
	}
	l->subs[l->n_subs++] = (struct event_sub){cb, arg};
}

void event_log_unsubscribe(struct event_log *l, event_cb cb, void *arg)
{
	for (size_t i = 0; i < l->n_subs; i++) {
		if (l->subs[i].cb != cb || l->subs[i].arg != arg)
			continue;
		if (l->dispatching) {
			l->subs[i].cb = NULL; /* the loop in event_log_publish() is walking them */
		} else {
			memmove(&l->subs[i], &l->subs[i + 1], (l->n_subs - i - 1) * sizeof(*l->subs));
			l->n_subs--;
		}
		return;
	}
}

/* ---- error lines of the log ---------------------------------------------------------- */

/* log.c's hook: any thread, any time.  Must not log. */
static void event_error_hook(const char *msg, void *arg)
{
	struct event_errq *q = arg;
	bool was_empty;

	if (event_in_subscribers)
		return;
	char *line = strdup(msg); /* no xstrdup: its failure would log */
	pthread_mutex_lock(&q->lock);
	was_empty = q->n == 0 && q->dropped == 0;
	if (line && q->n < EVENT_ERRQ_MAX) {
		q->lines[q->n++] = line;
		line = NULL;
	} else {
		q->dropped++;
	}
	pthread_mutex_unlock(&q->lock);
	free(line);
	if (was_empty) {
		uint64_t one = 1;
		if (write(q->fd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow here: the loop reads it before the next write */
		}
	}
}

static void event_errq_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_log *l = arg;
	struct event_errq *q = l->errq;
	char *lines[EVENT_ERRQ_MAX];
	unsigned long dropped;
	uint64_t count;
	size_t n;

	(void)what;
	if (read(fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing was signalled */
	}
	pthread_mutex_lock(&q->lock);
	n = q->n;
	memcpy(lines, q->lines, n * sizeof(*lines));
	q->n = 0;
	dropped = q->dropped;
	q->dropped = 0;
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < n; i++) {
		event_log_add(l, EVENT_ERROR, NULL, NULL, "%s", lines[i]);
		free(lines[i]);
	}
	if (dropped)
		event_log_add(l, EVENT_ERROR, NULL, json_pack("{s:I}", "dropped", (json_int_t)dropped),
			"%lu more error lines were not kept", dropped);
}

static void event_errq_free(struct event_errq *q)
{
	event_free(q->ev);
	if (q->fd >= 0)
		close(q->fd);
	for (size_t i = 0; i < q->n; i++)
		free(q->lines[i]);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

int event_log_take_errors(struct event_log *l, struct event_base *base)
{
	struct event_errq *q;

	if (l->errq)
		return -EALREADY;
	q = xcalloc(1, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->fd < 0) {
		int r = -errno;
		event_errq_free(q);
		return r;
	}
	q->ev = event_new(base, q->fd, EV_READ | EV_PERSIST, event_errq_cb, l);
	if (!q->ev || event_add(q->ev, NULL) < 0) {
		event_errq_free(q);
		return -ENOMEM;
	}
	l->errq = q;
	log_set_error_hook(event_error_hook, q);
	return 0;
}
