/*
 * util.c - allocation wrappers, the clocks, a listening TCP socket.
 */
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		fatal("malloc %zu", n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		fatal("calloc %zu x %zu", nmemb, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		fatal("realloc %zu", n);
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		fatal("strdup");
	return p;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_of_mono_ms(uint64_t mono_ms)
{
	return clock_wall_ms() - (int64_t)(now_ms() - mono_ms);
}

char *time_iso(int64_t wall_ms, char *buf, size_t len)
{
	time_t sec = (time_t)(wall_ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(wall_ms % 1000));
	return buf;
}

int tcp_listen(const char *addr, uint16_t port, int backlog, int *ret_fd, uint16_t *ret_port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char service[8];
	int fd = -1, on = 1, off = 0, r;

	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(addr ? addr : "::", service, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && !addr && errno == EAFNOSUPPORT) {
		/* IPv6 is off on this host: the default falls back to IPv4. */
		freeaddrinfo(ai);
		ai = NULL;
		if (getaddrinfo("0.0.0.0", service, &hints, &ai) != 0 || !ai)
			return -EINVAL;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
		r = -errno;
		goto out;
	}
	/* "::" serves IPv4 too, whatever net.ipv6.bindv6only says. */
	if (ai->ai_family == AF_INET6 &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
		r = -errno;
		goto out;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0 ||
		getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		r = -errno;
		goto out;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return r;
}

bool utf8_valid(const void *p, size_t len)
{
	const unsigned char *s = p, *end = s + len;

	while (s < end) {
		unsigned char c = *s;
		size_t n;
		unsigned lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			s++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		s++;
		if ((size_t)(end - s) < n)
			return false;
		for (size_t i = 0; i < n; i++, s++) {
			if (*s < lo || *s > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
	}
	return true;
}
