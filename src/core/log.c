/*
 * log.c - stderr or syslog logging with levels.
 *
 * Must not allocate on the logging path beyond a stack buffer: it is called
 * from error paths, including out-of-memory ones.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "util.h"

const char *const log_level_name[_LOG_LEVEL_MAX] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static bool log_foreground = true;
/* read by the proxy's relay threads too, while a reload may change it */
static _Atomic enum log_level log_level = LOG_LEVEL_INFO;
static bool log_syslog_open;
/* the error hook: set and called under log_hook_lock, so unsetting waits for a call */
static pthread_mutex_t log_hook_lock = PTHREAD_MUTEX_INITIALIZER;
static log_hook_cb log_hook;
static void *log_hook_arg;

int log_level_from_name(const char *name)
{
	for (int i = 0; i < _LOG_LEVEL_MAX; i++)
		if (strcasecmp(name, log_level_name[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return LOG_LEVEL_WARN;
	return -EINVAL;
}

void log_init(const char *ident, bool foreground, enum log_level level)
{
	log_foreground = foreground;
	log_level = level;
	if (!foreground && !log_syslog_open) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog_open = true;
	}
	tzset();
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

bool log_is_debug(void)
{
	return log_level >= LOG_LEVEL_DEBUG;
}

static const int syslog_prio[_LOG_LEVEL_MAX] = {
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_WARN] = LOG_WARNING,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

void log_set_error_hook(log_hook_cb cb, void *arg)
{
	pthread_mutex_lock(&log_hook_lock);
	log_hook = cb;
	log_hook_arg = arg;
	pthread_mutex_unlock(&log_hook_lock);
}

static void log_call_hook(enum log_level level, const char *msg)
{
	if (level != LOG_LEVEL_ERROR)
		return;
	pthread_mutex_lock(&log_hook_lock);
	if (log_hook)
		log_hook(msg, log_hook_arg);
	pthread_mutex_unlock(&log_hook_lock);
}

static void log_write(enum log_level level, const char *msg)
{
	if (!log_foreground) {
		syslog(syslog_prio[level], "%s", msg);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %-5s %s\n", stamp, ts.tv_nsec / 1000000, log_level_name[level],
		msg);
	fflush(stderr);
}

static void log_emit(enum log_level level, const char *msg)
{
	log_write(level, msg);
	log_call_hook(level, msg);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char buf[2048];

	if (level > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_emit(level, buf);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* Format fmt and append ": strerror(err)". */
static void log_verr(enum log_level level, int err, const char *fmt, va_list ap)
{
	char buf[2048];
	char ebuf[128];

	if (level > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t len = strlen(buf);
	snprintf(buf + len, sizeof(buf) - len, ": %s", strerror_r(err, ebuf, sizeof(ebuf)));
	log_emit(level, buf);
}

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_verr(LOG_LEVEL_WARN, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_DEBUG, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_verr(LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void log_obj(enum log_level level, const char *kind, const char *name, const char *fmt, ...)
{
	char buf[1800];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(level, "%s %s: %s", kind, name, buf);
}

bool log_ratelimit(struct log_ratelimit *rl)
{
	unsigned long long now = now_ms();

	if (now - rl->begin_ms >= rl->interval_ms) {
		if (rl->missed)
			log_warnx("%u similar messages suppressed", rl->missed);
		rl->begin_ms = now;
		rl->printed = 0;
		rl->missed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return true;
	}
	rl->missed++;
	return false;
}
