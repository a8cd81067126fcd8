/*
 * events.h - egressd's event log: what happened, when, and who did it.
 *
 * Uplink transitions, applies of modules, errors, configuration changes, logins and every
 * state change an operator makes.  A bounded ring (the oldest go first) that the API serves
 * as history (GET /api/events) and as a live stream (GET /api/events/stream, server-sent
 * events): subscribers are called for each new event, on the loop.
 */
#ifndef EGRESS_EVENTS_H
#define EGRESS_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum event_kind {
	EVENT_TRANSITION, /* an uplink changed state */
	EVENT_APPLY,	  /* a module applied a new state to the kernel */
	EVENT_ERROR,	  /* something failed (error lines of the log) */
	EVENT_CONFIG,	  /* the configuration changed: reload, API, rollback, confirm */
	EVENT_LOGIN,	  /* a login, a failed login, a logout */
	EVENT_CHANGE,	  /* any other state change made by an operator */
	_EVENT_KIND_MAX,
};

extern const char *const event_kind_name[_EVENT_KIND_MAX];

/* Name to kind ("transition", ...); -EINVAL if unknown. */
int event_kind_from_name(const char *name);

struct event {
	unsigned long long id; /* 1, 2, ...: increasing for the life of the process */
	int64_t time_ms;       /* wall clock, ms since the epoch */
	enum event_kind kind;
	char *who;     /* "admin", "token:ci", "uid:0", "egressd" */
	char *message; /* one line, as in the log */
	json_t *data;  /* an object with details, or NULL */
};

struct event_log;

typedef void (*event_cb)(const struct event *e, void *arg);

/* capacity: events kept (older ones are dropped). */
struct event_log *event_log_new(size_t capacity);
void event_log_free(struct event_log *l);

/* Add an event; data (may be NULL) is stolen.  who NULL: "egressd". */
void event_log_add(struct event_log *l, enum event_kind kind, const char *who, json_t *data,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Call cb for each kept event with id > after, oldest first. */
void event_log_foreach(const struct event_log *l, unsigned long long after, event_cb cb,
	void *arg);

/* The id of the newest event so far (0: none yet). */
unsigned long long event_log_last_id(const struct event_log *l);

/* The JSON form served by the API: {"id", "time", "kind", "who", "message", "data"}. */
json_t *event_json(const struct event *e);

/*
 * Subscribers are called on the loop for each new event, in the order they subscribed; one
 * may unsubscribe itself or another, or add events, from its callback.  The event passed is
 * only valid during the call.
 */
void event_log_subscribe(struct event_log *l, event_cb cb, void *arg);
void event_log_unsubscribe(struct event_log *l, event_cb cb, void *arg);

struct event_base;

/*
 * Take the error lines of the log (log_error(), fatal(): any thread) in as EVENT_ERROR
 * events, added on base's loop at its next turn.  Lines logged while the subscribers run are
 * not taken.  One event log at a time; event_log_free() lets go.  0 or -errno.
 */
int event_log_take_errors(struct event_log *l, struct event_base *base);

#endif
