/*
 * check_sock.c - sockets that leave through one uplink, the clock and the
 * random numbers of the health checks.
 *
 * Every probe socket of every kind (curl's too, through its open-socket
 * callback), and every request the DDNS module sends through an uplink to
 * learn its public address, is made here, so "a probe cannot succeed
 * through another uplink" is decided in one place: SO_BINDTODEVICE to the uplink's
 * interface, bind to its source address, SO_MARK check_mark.
 *
 * Must not log: callers report errors as probe results.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_int.h"
#include "util.h"

uint64_t check_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * DNS IDs and ICMP cookies must not be guessable by an off-path sender, so
 * they come from the kernel's generator, a buffer at a time.
 */
uint32_t check_random32(void)
{
	static uint32_t pool[64];
	static unsigned left;

	if (!left) {
		ssize_t n = getrandom(pool, sizeof(pool), GRND_NONBLOCK);
		if (n != (ssize_t)sizeof(pool)) {
			/* no entropy yet at early boot: still unique enough for a probe */
			for (unsigned i = 0; i < ARRAY_SIZE(pool); i++)
				pool[i] ^= (uint32_t)(check_now_us() * 2654435761u) + i * 40503u;
		}
		left = ARRAY_SIZE(pool);
	}
	return pool[--left];
}

enum check_result check_errno_result(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return CHECK_REFUSED;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EADDRNOTAVAIL:
	case ENODEV:
	case ENXIO:
		return CHECK_UNREACHABLE;
	case ETIMEDOUT:
		return CHECK_TIMEOUT;
	default:
		return CHECK_ERROR;
	}
}

int check_sock_open(const struct check_uplink *cu, int family, int type, int proto, int *ret_fd)
{
	return uplink_sock_open(cu->u, family, type, proto, ret_fd);
}

int uplink_sock_open(const struct uplink *u, int family, int type, int proto, int *ret_fd)
{
	int fd, r = 0;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -errno;
	if (u->ifname[0] &&
		setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, u->ifname, strlen(u->ifname) + 1) < 0) {
		r = -errno;
		goto out;
	}
	if (u->check.mark &&
		setsockopt(fd, SOL_SOCKET, SO_MARK, &u->check.mark, sizeof(u->check.mark)) < 0) {
		r = -errno;
		goto out;
	}
	if (addr_is_set(&u->source) && u->source.family == family) {
		struct sockaddr_storage ss;
		socklen_t len;
		int one = 1;

		/* a TCP probe takes its port at connect(), not here: no port runs out */
		if (type == SOCK_STREAM)
			(void)setsockopt(
				fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		r = addr_to_sockaddr(&u->source, 0, &ss, &len);
		if (r < 0)
			goto out;
		if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&u->source.v6))
			((struct sockaddr_in6 *)&ss)->sin6_scope_id = (uint32_t)u->ifindex;
		if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
			r = -errno;
			goto out;
		}
	}
out:
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int check_target_sockaddr(
	const struct check_target *t, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	int r = addr_to_sockaddr(&t->addr, t->port, ret, ret_len);

	if (r < 0)
		return r;
	if (t->addr.family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&t->addr.v6))
		((struct sockaddr_in6 *)ret)->sin6_scope_id = (uint32_t)t->cu->u->ifindex;
	return 0;
}
