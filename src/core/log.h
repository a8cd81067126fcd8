/*
 * log.h - the one logging facility of egress.
 *
 * Messages go to stderr when running in the foreground and to syslog (which
 * journald collects) otherwise.  log_warn() appends strerror(errno);
 * log_warnx() does not.  fatal()/fatalx() log and exit: use them only for
 * broken invariants and start-up failures, never for outside input.
 *
 * Code under src/net/ and protocol codecs return errors and log at debug only.
 */
#ifndef EGRESS_LOG_H
#define EGRESS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	_LOG_LEVEL_MAX,
};

extern const char *const log_level_name[_LOG_LEVEL_MAX];

/* Name to level ("debug", "info", "warn"/"warning", "error"); -EINVAL if unknown. */
int log_level_from_name(const char *name);

/*
 * Set up logging.  foreground: true writes to stderr, false to syslog under
 * ident.  May be called again (e.g. after parsing flags).
 */
void log_init(const char *ident, bool foreground, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_is_debug(void);

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

/* The level-taking core that every helper above ends in. */
void log_vmsg(enum log_level level, const char *fmt, va_list ap) LOG_PRINTF(2, 0);
void log_msg(enum log_level level, const char *fmt, ...) LOG_PRINTF(2, 3);

/*
 * Object-prefixed helpers: log_obj(LOG_LEVEL_INFO, "uplink", "isp1", "up -> down")
 * prints "uplink isp1: up -> down".
 */
void log_obj(enum log_level level, const char *kind, const char *name, const char *fmt, ...)
	LOG_PRINTF(4, 5);

/*
 * A hook for error lines (the event log takes them in): called with each error line as
 * logged, from the thread that logged it, after it was written out.  It must not log.  NULL
 * removes it; once removed, no call of the old hook is in flight.
 */
typedef void (*log_hook_cb)(const char *msg, void *arg);
void log_set_error_hook(log_hook_cb cb, void *arg);

/*
 * Rate limiting for messages caused by outside input: returns true when a
 * message may be logged now.  At most burst messages per interval_ms; the
 * number suppressed is reported with the next message that passes.
 */
struct log_ratelimit {
	unsigned interval_ms;
	unsigned burst;
	unsigned long long begin_ms;
	unsigned printed;
	unsigned missed;
};
#define LOG_RATELIMIT_INIT(ms, n) { .interval_ms = (ms), .burst = (n) }
bool log_ratelimit(struct log_ratelimit *rl);

#endif
