/*
 * loop.h - the event-loop glue: one libevent base per process, signals, and
 * the service manager's readiness protocol.
 *
 * SIGTERM and SIGINT stop the loop; SIGHUP calls the reload callback.  The
 * callbacks run on the loop, never in signal context.
 */
#ifndef EGRESS_LOOP_H
#define EGRESS_LOOP_H

#include <stdbool.h>

struct event_base;

typedef void (*loop_reload_cb)(void *arg);

struct loop;

/* Returns a loop with its signal events armed; NULL on failure. */
struct loop *loop_new(void);
void loop_free(struct loop *l);
struct event_base *loop_base(struct loop *l);
void loop_set_reload(struct loop *l, loop_reload_cb cb, void *arg);
/* Run until a stop signal or loop_stop(); returns the signal number or 0. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* Stop because something failed after the start: loop_run() returns -1. */
void loop_fail(struct loop *l);

/*
 * Tell the service manager about our state ("READY=1", "RELOADING=1",
 * "STOPPING=1", "STATUS=..."), if NOTIFY_SOCKET names one.  Returns 1 when
 * sent, 0 when not under a service manager, -errno on error.
 */
int loop_notify(const char *state);

#endif
