/*
 * util.h - small helpers shared by every part of egress.
 *
 * Only macros and trivial inline functions live here; anything with state or
 * policy belongs in a module of its own.
 */
#ifndef EGRESS_UTIL_H
#define EGRESS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define UNUSED __attribute__((unused))

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Free *p and clear it, for pointers that stay reachable. */
#define FREE_AND_NULL(p)                                                                           \
	do {                                                                                       \
		free(p);                                                                           \
		(p) = NULL;                                                                        \
	} while (0)

static inline int streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* The value of a hexadecimal digit (either case), or -1. */
static inline int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Allocation failures are fatal: egressd cannot run degraded without memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Is p[0..len) well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF? */
bool utf8_valid(const void *p, size_t len);

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);

/* Wall clock in milliseconds since the epoch. */
int64_t clock_wall_ms(void);

/* "2026-12-07T13:00:00.123Z" (UTC, RFC 3339) for a wall clock time in ms; returns buf. */
#define TIME_ISO_STRLEN 32
char *time_iso(int64_t wall_ms, char *buf, size_t len);
/* The wall clock time of monotonic instant mono_ms (from now_ms()), in ms since the epoch. */
int64_t wall_of_mono_ms(uint64_t mono_ms);

/*
 * A listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR) on the numeric
 * address addr: "::" serves both families; NULL means "::", or "0.0.0.0" where IPv6 is
 * off.  port 0 picks a free port; *ret_port (host order) says which.  0 or -errno
 * (-EINVAL for a bad address).
 */
int tcp_listen(const char *addr, uint16_t port, int backlog, int *ret_fd, uint16_t *ret_port);

#endif
