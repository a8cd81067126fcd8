/*
 * test_events.c - unit tests for src/core/events.c: the bounded ring, ids, the walk after an
 * id, subscribers (one that unsubscribes or adds events from its callback), the JSON form,
 * and the error lines of the log taken in from the loop's thread and from another thread.
 *
 * The loop is the test's own event base, turned by hand; nothing here needs privileges.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>

#include "events.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

struct seen {
	unsigned long long ids[128];
	char *msgs[128];
	enum event_kind kinds[128];
	size_t n;
};

static void seen_cb(const struct event *e, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < ARRAY_SIZE(s->ids));
	s->ids[s->n] = e->id;
	s->kinds[s->n] = e->kind;
	s->msgs[s->n] = xstrdup(e->message);
	s->n++;
}

static void seen_clear(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->msgs[i]);
	memset(s, 0, sizeof(*s));
}

static void kept(struct event_log *l, unsigned long long after, struct seen *s)
{
	seen_clear(s);
	event_log_foreach(l, after, seen_cb, s);
}

/* Turn the loop until it has nothing more to do right now. */
static void turn(struct event_base *base)
{
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* ---------------------------------------------------------------- the ring */

static void test_ids_and_ring(void **state)
{
	struct event_log *l = event_log_new(3);
	struct seen s = {0};

	(void)state;
	assert_int_equal(event_log_last_id(l), 0);
	kept(l, 0, &s);
	assert_int_equal(s.n, 0);
	for (int i = 1; i <= 5; i++)
		event_log_add(l, EVENT_CHANGE, "admin", NULL, "change %d", i);
	assert_int_equal(event_log_last_id(l), 5);
	kept(l, 0, &s); /* the two oldest went */
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ids[0], 3);
	assert_int_equal(s.ids[2], 5);
	assert_string_equal(s.msgs[0], "change 3");
	kept(l, 4, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.ids[0], 5);
	kept(l, 5, &s);
	assert_int_equal(s.n, 0);
	seen_clear(&s);
	event_log_free(l);
	event_log_free(NULL);
}

static void json_cb(const struct event *e, void *arg)
{
	json_t **ret = arg; /* the last one called */

	json_decref(*ret);
	*ret = event_json(e);
}

static void test_event_json(void **state)
{
	struct event_log *l = event_log_new(4);
	json_t *j = NULL;

	(void)state;
	event_log_add(l, EVENT_TRANSITION, NULL, json_pack("{s:s}", "uplink", "isp1"),
		"isp1: up -> down\n(3/3 failed)");
	event_log_add(l, EVENT_LOGIN, "admin", NULL, "login");
	event_log_foreach(l, 1, json_cb, &j);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "login");
	assert_string_equal(json_string_value(json_object_get(j, "who")), "admin");
	assert_true(json_is_object(json_object_get(j, "data"))); /* no data: an empty object */
	assert_int_equal(json_object_size(json_object_get(j, "data")), 0);
	json_decref(j);

	/* who defaults to egressd; one line; time in UTC with milliseconds */
	j = NULL;
	event_log_foreach(l, 0, json_cb, &j);
	json_decref(j); /* the login again: foreach calls for both, the last one stays */
	struct event_log *one = event_log_new(1);
	event_log_add(one, EVENT_TRANSITION, NULL, json_pack("{s:s}", "uplink", "isp1"),
		"isp1: up -> down\n(3/3 failed)");
	j = NULL;
	event_log_foreach(one, 0, json_cb, &j);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "transition");
	assert_string_equal(json_string_value(json_object_get(j, "who")), "egressd");
	assert_string_equal(json_string_value(json_object_get(j, "message")),
		"isp1: up -> down (3/3 failed)");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "data"), "uplink")), "isp1");
	const char *t = json_string_value(json_object_get(j, "time"));
	assert_non_null(t);
	assert_int_equal(strlen(t), strlen("2026-01-01T00:00:00.000Z"));
	assert_int_equal(t[10], 'T');
	assert_int_equal(t[23], 'Z');
	json_decref(j);
	event_log_free(one);
	event_log_free(l);
}

static void test_kind_names(void **state)
{
	(void)state;
	for (int i = 0; i < _EVENT_KIND_MAX; i++) {
		assert_non_null(event_kind_name[i]);
		assert_int_equal(event_kind_from_name(event_kind_name[i]), i);
	}
	assert_int_equal(event_kind_from_name("nonsense"), -EINVAL);
	assert_int_equal(event_kind_from_name(""), -EINVAL);
}

/* ---------------------------------------------------------------- subscribers */

struct self_unsub {
	struct event_log *l;
	struct seen seen;
	bool add_one; /* add an event from the callback, once */
};

static void self_unsub_cb(const struct event *e, void *arg)
{
	struct self_unsub *u = arg;

	seen_cb(e, &u->seen);
	event_log_unsubscribe(u->l, self_unsub_cb, u);
}

static void adder_cb(const struct event *e, void *arg)
{
	struct self_unsub *u = arg;

	seen_cb(e, &u->seen);
	if (u->add_one) {
		u->add_one = false;
		event_log_add(u->l, EVENT_APPLY, NULL, NULL, "added by a subscriber");
	}
}

static void test_subscribers(void **state)
{
	struct event_log *l = event_log_new(1); /* the ring's one slot is reused by the adder */
	struct self_unsub once = {.l = l}, adder = {.l = l, .add_one = true};
	struct seen all = {0};

	(void)state;
	event_log_subscribe(l, self_unsub_cb, &once);
	event_log_subscribe(l, adder_cb, &adder);
	event_log_subscribe(l, seen_cb, &all);
	event_log_add(l, EVENT_CONFIG, "uid:0", NULL, "first");
	/* once saw only the first; the event the adder added comes after the first, to all */
	assert_int_equal(once.seen.n, 1);
	assert_string_equal(once.seen.msgs[0], "first");
	assert_int_equal(adder.seen.n, 2);
	assert_string_equal(adder.seen.msgs[0], "first");
	assert_string_equal(adder.seen.msgs[1], "added by a subscriber");
	assert_int_equal(all.n, 2);
	assert_int_equal(all.ids[0], 1);
	assert_int_equal(all.ids[1], 2);
	assert_string_equal(all.msgs[1], "added by a subscriber");
	event_log_add(l, EVENT_CONFIG, NULL, NULL, "second");
	assert_int_equal(once.seen.n, 1);
	assert_int_equal(adder.seen.n, 3);
	assert_int_equal(all.n, 3);
	assert_int_equal(all.ids[2], 3);
	event_log_unsubscribe(l, adder_cb, &adder);
	event_log_unsubscribe(l, adder_cb, &adder); /* not subscribed: nothing */
	event_log_add(l, EVENT_CONFIG, NULL, NULL, "third");
	assert_int_equal(adder.seen.n, 3);
	assert_int_equal(all.n, 4);
	seen_clear(&once.seen);
	seen_clear(&adder.seen);
	seen_clear(&all);
	event_log_free(l);
}

/* ---------------------------------------------------------------- error lines */

static void *log_from_thread(void *arg)
{
	(void)arg;
	log_error("relay: from a worker thread");
	log_warnx("relay: only a warning");
	return NULL;
}

struct logging_sub {
	struct seen seen;
};

/* A subscriber whose own failure is logged as an error: that line must not come back. */
static void logging_cb(const struct event *e, void *arg)
{
	struct logging_sub *s = arg;

	seen_cb(e, &s->seen);
	log_error("stream: cannot send event %llu", e->id);
}

static void test_error_lines(void **state)
{
	struct event_base *base = event_base_new();
	struct event_log *l = event_log_new(200);
	struct logging_sub sub = {0};
	struct seen s = {0};
	pthread_t t;

	(void)state;
	assert_non_null(base);
	log_error("before: not taken");
	assert_int_equal(event_log_take_errors(l, base), 0);
	assert_int_equal(event_log_take_errors(l, base), -EALREADY);
	event_log_subscribe(l, logging_cb, &sub);

	log_error("on the loop's thread");
	log_info("an info line is not an event");
	kept(l, 0, &s);
	assert_int_equal(s.n, 0); /* not in the middle of the code that logged it */
	turn(base);
	kept(l, 0, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.kinds[0], EVENT_ERROR);
	assert_string_equal(s.msgs[0], "on the loop's thread");
	assert_int_equal(sub.seen.n, 1);

	assert_int_equal(pthread_create(&t, NULL, log_from_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	turn(base);
	kept(l, 0, &s);
	assert_int_equal(s.n, 2); /* the subscriber's own error lines did not come back */
	assert_string_equal(s.msgs[1], "relay: from a worker thread");

	/* a burst beyond the queue: the rest is counted in one event */
	for (int i = 0; i < 100; i++)
		log_error("burst %d", i);
	turn(base);
	kept(l, 2, &s);
	assert_int_equal(s.n, 65);
	assert_string_equal(s.msgs[0], "burst 0");
	assert_string_equal(s.msgs[63], "burst 63");
	assert_string_equal(s.msgs[64], "36 more error lines were not kept");

	seen_clear(&s);
	seen_clear(&sub.seen);
	event_log_free(l); /* lets go of the hook */
	log_error("after: not taken");
	turn(base);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_and_ring),
		cmocka_unit_test(test_event_json),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_subscribers),
		cmocka_unit_test(test_error_lines),
	};

	log_init("test_events", true, LOG_LEVEL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
