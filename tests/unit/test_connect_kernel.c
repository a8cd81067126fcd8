/*
 * test_connect_kernel.c - the racing connector and the uplink socket set-up
 * (src/proxy/connect.c) against the real kernel.
 *
 * The group setup moves the whole process into a private network namespace
 * (unshare(CLONE_NEWNET)), brings lo up and builds, with `ip` and `nft` run as children (they
 * inherit the namespace), this topology; all of it disappears with the process:
 *
 *   eg-d1 (veth, peer eg-p1) 10.9.1.1/24, fd00:9:1::1/64   source "A" (uplink 10)
 *   eg-d2 (veth, peer eg-p2) 10.9.2.1/24                   source "B" (uplink 20)
 *   listeners on 0.0.0.0 ports 7001 7003 7004 7006 and [::]:7003; nothing on 7002
 *   table inet egtest, output hook:
 *     from 10.9.1.1 to port 7001: drop          (A's SYN is lost: A hangs)
 *     from 10.9.1.1 to port 7004: tcp reset     (A is refused)
 *     mark 0x2a to port 7006: tcp reset         (a marked socket is refused)
 *     to port 7005: drop                        (everyone hangs)
 *
 * It must never touch the host's namespace: nothing here runs before unshare() succeeded.
 * Each positive check is paired with a negative one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "connect.h"
#include "kernel_test.h"
#include "util.h"

#define UP_A 10
#define UP_B 20
#define UP_6 30

static struct event_base *g_base;
static int g_listen[5] = { -1, -1, -1, -1, -1 }; /* 7001 7003 7004 7006 [::]:7003 */
static const uint16_t g_ports[] = { 7001, 7003, 7004, 7006, 7003 };

/* ---- helpers -------------------------------------------------------------------------- */

static int run(char *const argv[])
{
	int status;
	char *out = kt_run_capture(-1, argv, false, &status);

	free(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct addr A(const char *s)
{
	struct addr a;

	if (addr_parse(s, &a) < 0)
		fail_msg("addr_parse(\"%s\")", s);
	return a;
}

static struct connect_via via(int uplink, const char *src, uint32_t mark)
{
	struct connect_via v = { .uplink = uplink, .mark = mark };

	if (src)
		v.source = A(src);
	return v;
}

static socklen_t target(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	struct addr a = A(ip);
	socklen_t len;

	assert_int_equal(addr_to_sockaddr(&a, port, ss, &len), 0);
	return len;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* The local address of fd as text, and its port. */
static const char *sock_name(int fd, char *buf, size_t len, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addr a;

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &a, port), 0);
	return addr_str(&a, buf, len);
}

/* Accept one pending connection on listener k (nonblocking): its peer address, or NULL. */
static const char *accept_peer(int k, char *buf, size_t len, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addr a;
	int fd;

	fd = accept4(g_listen[k], (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		return NULL;
	}
	close(fd);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, &a, port), 0);
	addr_unmap_v4(&a);
	return addr_str(&a, buf, len);
}

struct result {
	int calls;
	int fd, err, uplink, attempts;
	uint64_t t_done;
};

static void done_cb(int fd, int err, int uplink, int attempts, void *arg)
{
	struct result *r = arg;

	r->calls++;
	r->fd = fd;
	r->err = err;
	r->uplink = uplink;
	r->attempts = attempts;
	r->t_done = now_ms();
	event_base_loopbreak(g_base);
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
	event_base_loopbreak(g_base);
}

/* Run the loop until a callback or ms pass; true if the time ran out. */
static bool loop_for(uint32_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	bool expired = false;
	struct event *guard = evtimer_new(g_base, guard_cb, &expired);

	evtimer_add(guard, &tv);
	event_base_dispatch(g_base);
	event_free(guard);
	return expired;
}

/* Race to ip:port over vias; waits for the result (at most 5 s).  Returns the elapsed ms. */
static uint64_t race(const char *ip, uint16_t port, const struct connect_via *v, size_t n,
	uint32_t race_ms, uint32_t deadline_ms, struct result *res)
{
	struct connect_opts o = { .race_ms = race_ms, .deadline_ms = deadline_ms };
	struct sockaddr_storage ss;
	socklen_t len = target(ip, port, &ss);
	struct connect_race *r = NULL;
	uint64_t t0 = now_ms();

	memset(res, 0, sizeof(*res));
	res->fd = -2;
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v, n, &o, done_cb,
				 res, &r),
		0);
	assert_non_null(r);
	assert_int_equal(res->calls, 0); /* never from inside start */
	assert_false(loop_for(5000));
	assert_int_equal(res->calls, 1);
	return res->t_done - t0;
}

/* ---- setup ---------------------------------------------------------------------------- */

static int listen_on(int family, uint16_t port)
{
	struct sockaddr_storage ss;
	struct addr any = { .family = family };
	socklen_t len;
	int fd, one = 1;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	addr_to_sockaddr(&any, port, &ss, &len);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int group_setup(void **state)
{
	static char *const cmds[][12] = {
		{ "ip", "link", "add", "eg-d1", "type", "veth", "peer", "name", "eg-p1" },
		{ "ip", "link", "add", "eg-d2", "type", "veth", "peer", "name", "eg-p2" },
		{ "ip", "addr", "add", "10.9.1.1/24", "dev", "eg-d1" },
		{ "ip", "addr", "add", "10.9.2.1/24", "dev", "eg-d2" },
		{ "ip", "-6", "addr", "add", "fd00:9:1::1/64", "dev", "eg-d1", "nodad" },
		{ "ip", "link", "set", "eg-d1", "up" },
		{ "ip", "link", "set", "eg-p1", "up" },
		{ "ip", "link", "set", "eg-d2", "up" },
		{ "ip", "link", "set", "eg-p2", "up" },
		{ "nft", "add table inet egtest; "
			 "add chain inet egtest out { type filter hook output priority 0; }; "
			 "add rule inet egtest out ip saddr 10.9.1.1 tcp dport 7001 drop; "
			 "add rule inet egtest out ip saddr 10.9.1.1 tcp dport 7004 "
			 "reject with tcp reset; "
			 "add rule inet egtest out meta mark 0x2a tcp dport 7006 "
			 "reject with tcp reset; "
			 "add rule inet egtest out tcp dport 7005 drop" },
	};

	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0) {
		fprintf(stderr, "lo up: %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (run(cmds[i]) != 0) {
			fprintf(stderr, "setup: %s %s ... failed\n", cmds[i][0], cmds[i][1]);
			return -1;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(g_listen); i++) {
		g_listen[i] = listen_on(i == 4 ? AF_INET6 : AF_INET, g_ports[i]);
		if (g_listen[i] < 0) {
			fprintf(stderr, "listen %u: %s\n", g_ports[i], strerror(errno));
			return -1;
		}
	}
	g_base = event_base_new();
	return g_base ? 0 : -1;
}

static int group_teardown(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_listen); i++)
		if (g_listen[i] >= 0)
			close(g_listen[i]);
	if (g_base)
		event_base_free(g_base);
	return 0;
}

/* Drain whatever an earlier test left queued on the listeners. */
static int drain(void **state)
{
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < ARRAY_SIZE(g_listen); i++)
		while (accept_peer((int)i, buf, sizeof(buf), NULL))
			;
	return 0;
}

/* ---- tests ---------------------------------------------------------------------------- */

/* The topology is what the tests assume (cross-checked with ip -j). */
static void test_topology(void **state)
{
	char *argv[] = { "ip", "-j", "addr", "show", "dev", "eg-d1", NULL };
	char *argv2[] = { "ip", "-j", "addr", "show", "dev", "eg-d2", NULL };
	int status;
	char *out;

	out = kt_run_capture(-1, argv, false, &status);
	assert_int_equal(status, 0);
	assert_non_null(strstr(out, "\"10.9.1.1\""));
	assert_non_null(strstr(out, "\"fd00:9:1::1\""));
	assert_null(strstr(out, "\"10.9.2.1\""));
	free(out);
	out = kt_run_capture(-1, argv2, false, &status);
	assert_non_null(strstr(out, "\"10.9.2.1\""));
	free(out);
}

/* A's SYN is dropped: after race_ms B starts and wins; A's socket is closed. */
static void test_race_slow_first(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0), via(UP_B, "10.9.2.1", 0) };
	char buf[ADDR_STRLEN], peer[ADDR_STRLEN];
	uint16_t lport, pport;
	struct result res;
	int fds = count_fds();
	uint64_t ms;

	ms = race("10.9.2.1", 7001, v, 2, 150, 5000, &res);
	assert_true(res.fd >= 0);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.uplink, UP_B);
	assert_int_equal(res.attempts, 2);
	assert_in_range(ms, 140, 1000);
	assert_string_equal(sock_name(res.fd, buf, sizeof(buf), &lport), "10.9.2.1");
	assert_non_null(accept_peer(0, peer, sizeof(peer), &pport));
	assert_string_equal(peer, "10.9.2.1");
	assert_int_equal(pport, lport);
	assert_null(accept_peer(0, peer, sizeof(peer), NULL)); /* A never got through */
	assert_int_equal(count_fds(), fds + 1);		       /* only the winner is left */
	close(res.fd);

	/* three candidates, two hanging: the race timer starts each in turn */
	v[1] = via(UP_A + 1, "10.9.1.1", 0);
	{
		struct connect_via v3[] = { v[0], v[1], via(UP_B, "10.9.2.1", 0) };

		ms = race("10.9.2.1", 7001, v3, 3, 100, 5000, &res);
		assert_int_equal(res.uplink, UP_B);
		assert_int_equal(res.attempts, 3);
		assert_in_range(ms, 190, 1000);
		close(res.fd);
	}
	assert_int_equal(count_fds(), fds);
}

/* Negative of the above: a first candidate that connects wins alone, before race_ms. */
static void test_race_first_fast(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0), via(UP_B, "10.9.2.1", 0) };
	char buf[ADDR_STRLEN], peer[ADDR_STRLEN];
	struct result res;
	uint64_t ms;

	ms = race("10.9.2.1", 7003, v, 2, 150, 5000, &res);
	assert_true(res.fd >= 0);
	assert_int_equal(res.uplink, UP_A);
	assert_int_equal(res.attempts, 1);
	assert_true(ms < 140);
	assert_string_equal(sock_name(res.fd, buf, sizeof(buf), NULL), "10.9.1.1");
	assert_non_null(accept_peer(1, peer, sizeof(peer), NULL));
	assert_string_equal(peer, "10.9.1.1");
	assert_null(accept_peer(1, peer, sizeof(peer), NULL)); /* B was never started */
	close(res.fd);
}

/* race_ms 0: no racing, so a hanging first candidate runs into the deadline alone. */
static void test_no_race(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0), via(UP_B, "10.9.2.1", 0) };
	struct result res;
	uint64_t ms;

	ms = race("10.9.2.1", 7001, v, 2, 0, 400, &res);
	assert_int_equal(res.fd, -1);
	assert_int_equal(res.err, -ETIMEDOUT);
	assert_int_equal(res.uplink, UP_A);
	assert_int_equal(res.attempts, 1);
	assert_in_range(ms, 390, 2000);
}

/* A is refused: B starts at once, long before race_ms. */
static void test_refused_moves_on(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0), via(UP_B, "10.9.2.1", 0) };
	char buf[ADDR_STRLEN];
	struct result res;
	uint64_t ms;

	ms = race("10.9.2.1", 7004, v, 2, 3000, 10000, &res);
	assert_true(res.fd >= 0);
	assert_int_equal(res.uplink, UP_B);
	assert_int_equal(res.attempts, 2);
	assert_true(ms < 1000);
	assert_string_equal(sock_name(res.fd, buf, sizeof(buf), NULL), "10.9.2.1");
	close(res.fd);

	/* negative: B first is not refused and wins alone */
	v[0] = via(UP_B, "10.9.2.1", 0);
	race("10.9.2.1", 7004, v, 1, 3000, 10000, &res);
	assert_int_equal(res.uplink, UP_B);
	assert_int_equal(res.attempts, 1);
	close(res.fd);
}

/* Every candidate fails: the caller gets the last error. */
static void test_all_fail(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0), via(UP_B, "10.9.2.1", 0) };
	struct result res;
	int fds = count_fds();
	uint64_t ms;

	/* nothing listens on 7002: both refused, at once */
	ms = race("10.9.2.1", 7002, v, 2, 3000, 10000, &res);
	assert_int_equal(res.fd, -1);
	assert_int_equal(res.err, -ECONNREFUSED);
	assert_int_equal(res.uplink, UP_B);
	assert_int_equal(res.attempts, 2);
	assert_true(ms < 1000);

	/* 7005 drops everyone: both race, then the deadline */
	ms = race("10.9.2.1", 7005, v, 2, 100, 400, &res);
	assert_int_equal(res.fd, -1);
	assert_int_equal(res.err, -ETIMEDOUT);
	assert_int_equal(res.attempts, 2);
	assert_in_range(ms, 390, 2000);

	/* a source that is not ours: bind fails, no connect is started */
	v[0] = via(UP_A, "10.9.3.3", 0);
	race("10.9.2.1", 7003, v, 1, 100, 400, &res);
	assert_int_equal(res.err, -EADDRNOTAVAIL);
	assert_int_equal(res.attempts, 0);
	assert_int_equal(res.uplink, UP_A);
	assert_int_equal(count_fds(), fds);
}

/* SO_MARK is set before the SYN leaves: the marked candidate is refused by the mark rule. */
static void test_mark(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0x2a), via(UP_B, "10.9.2.1", 0x7) };
	struct result res;
	uint32_t mark = 0;
	socklen_t len = sizeof(mark);

	race("10.9.2.1", 7006, v, 2, 3000, 10000, &res);
	assert_true(res.fd >= 0);
	assert_int_equal(res.uplink, UP_B);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(getsockopt(res.fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
	assert_int_equal(mark, 0x7);
	close(res.fd);

	/* negative: without the mark A goes through, and its socket has no mark */
	v[0].mark = 0;
	race("10.9.2.1", 7006, v, 2, 3000, 10000, &res);
	assert_int_equal(res.uplink, UP_A);
	assert_int_equal(res.attempts, 1);
	mark = 99;
	assert_int_equal(getsockopt(res.fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
	assert_int_equal(mark, 0);
	close(res.fd);
}

/* A candidate whose source family is not the target's is skipped. */
static void test_family(void **state)
{
	struct connect_via v[] = { via(UP_6, "fd00:9:1::1", 0), via(UP_B, "10.9.2.1", 0) };
	char buf[ADDR_STRLEN], peer[ADDR_STRLEN];
	struct result res;

	race("10.9.2.1", 7003, v, 2, 3000, 10000, &res);
	assert_int_equal(res.uplink, UP_B);
	assert_int_equal(res.attempts, 1);
	close(res.fd);

	/* IPv6 target: the IPv6 source is used, the IPv4 one skipped */
	v[0] = via(UP_B, "10.9.2.1", 0);
	v[1] = via(UP_6, "fd00:9:1::1", 0);
	race("fd00:9:1::1", 7003, v, 2, 3000, 10000, &res);
	assert_true(res.fd >= 0);
	assert_int_equal(res.uplink, UP_6);
	assert_int_equal(res.attempts, 1);
	assert_string_equal(sock_name(res.fd, buf, sizeof(buf), NULL), "fd00:9:1::1");
	assert_non_null(accept_peer(4, peer, sizeof(peer), NULL));
	assert_string_equal(peer, "fd00:9:1::1");
	close(res.fd);

	/* none fits: -EAFNOSUPPORT, no attempt, still delivered on the loop */
	race("fd00:9:1::1", 7003, v, 1, 3000, 10000, &res);
	assert_int_equal(res.fd, -1);
	assert_int_equal(res.err, -EAFNOSUPPORT);
	assert_int_equal(res.attempts, 0);
	assert_int_equal(res.uplink, -1);
}

/* Cancel: sockets closed, no callback, also right after start. */
static void test_cancel(void **state)
{
	struct connect_via v[] = { via(UP_A, "10.9.1.1", 0), via(UP_A, "10.9.1.1", 0) };
	struct connect_opts o = { .race_ms = 50, .deadline_ms = 300 };
	struct sockaddr_storage ss;
	socklen_t len = target("10.9.2.1", 7001, &ss);
	struct connect_race *r = NULL;
	struct result res = { 0 };
	int fds = count_fds();

	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v, 2, &o,
				 done_cb, &res, &r),
		0);
	assert_true(loop_for(120)); /* both attempts are pending now */
	assert_int_equal(count_fds(), fds + 2);
	connect_race_cancel(r);
	assert_int_equal(count_fds(), fds);
	assert_true(loop_for(500)); /* past the deadline: still no callback */
	assert_int_equal(res.calls, 0);

	/* a race whose result is already known (no candidate fits) cancelled before the loop */
	v[0] = via(UP_6, "fd00:9:1::1", 0);
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v, 1, &o,
				 done_cb, &res, &r),
		0);
	connect_race_cancel(r);
	assert_true(loop_for(100));
	assert_int_equal(res.calls, 0);
	connect_race_cancel(NULL);

	/* negative: the same race left alone does call back */
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v, 1, &o,
				 done_cb, &res, &r),
		0);
	assert_false(loop_for(100));
	assert_int_equal(res.calls, 1);
}

static void test_start_errors(void **state)
{
	struct connect_via v[CONNECT_MAX_VIAS + 1];
	struct sockaddr_storage ss;
	socklen_t len = target("10.9.2.1", 7003, &ss);
	struct connect_race *r = NULL;
	struct result res = { 0 };
	struct sockaddr_un_like {
		sa_family_t family;
		char path[20];
	} un = { .family = AF_UNIX };

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		v[i] = via(UP_A, "10.9.1.1", 0);
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v, 0, NULL,
				 done_cb, &res, &r),
		-EINVAL);
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v,
				 CONNECT_MAX_VIAS + 1, NULL, done_cb, &res, &r),
		-EINVAL);
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss,
				 sizeof(struct sockaddr_in) - 1, v, 1, NULL, done_cb, &res, &r),
		-EINVAL);
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&un, sizeof(un), v, 1, NULL,
				 done_cb, &res, &r),
		-EINVAL);
	assert_true(loop_for(50));
	assert_int_equal(res.calls, 0);
	/* positive: the maximum number of candidates, no options */
	assert_int_equal(connect_race_start(g_base, (struct sockaddr *)&ss, len, v,
				 CONNECT_MAX_VIAS, NULL, done_cb, &res, &r),
		0);
	assert_false(loop_for(2000));
	assert_int_equal(res.calls, 1);
	assert_int_equal(res.attempts, 1);
	close(res.fd);
}

static int int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void test_uplink_socket(void **state)
{
	struct connect_via v = via(UP_A, "10.9.1.1", 0);
	char buf[ADDR_STRLEN], dev[IFNAMSIZ];
	socklen_t len;
	uint16_t port = 1;
	int fd;

	/* a source: bound to it with no port yet; the interface name is ignored then */
	strcpy(v.ifname, "eg-d2");
	fd = uplink_socket(AF_INET, SOCK_STREAM, &v);
	assert_true(fd >= 0);
	assert_string_equal(sock_name(fd, buf, sizeof(buf), &port), "10.9.1.1");
	assert_int_equal(port, 0);
	assert_int_equal(int_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT), 1);
	assert_int_equal(int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_MARK), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	len = sizeof(dev);
	memset(dev, 'x', sizeof(dev));
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len), 0);
	assert_true(len == 0 || dev[0] == '\0');
	close(fd);

	/* no source: bound to the device, not to an address */
	v.source = (struct addr){ 0 };
	v.mark = 5;
	fd = uplink_socket(AF_INET, SOCK_STREAM, &v);
	assert_true(fd >= 0);
	len = sizeof(dev);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len), 0);
	assert_string_equal(dev, "eg-d2");
	assert_string_equal(sock_name(fd, buf, sizeof(buf), NULL), "0.0.0.0");
	assert_int_equal(int_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT), 0);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_MARK), 5);
	close(fd);
	strcpy(v.ifname, "eg-nosuch");
	assert_int_equal(uplink_socket(AF_INET, SOCK_STREAM, &v), -ENODEV);

	/* datagrams: bound with a port at once, no TCP options */
	v = via(UP_A, "10.9.1.1", 0);
	fd = uplink_socket(AF_INET, SOCK_DGRAM, &v);
	assert_true(fd >= 0);
	assert_string_equal(sock_name(fd, buf, sizeof(buf), &port), "10.9.1.1");
	assert_true(port != 0);
	assert_int_equal(int_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT), 0);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
	close(fd);

	/* IPv6 */
	v = via(UP_6, "fd00:9:1::1", 0);
	fd = uplink_socket(AF_INET6, SOCK_STREAM, &v);
	assert_true(fd >= 0);
	assert_string_equal(sock_name(fd, buf, sizeof(buf), &port), "fd00:9:1::1");
	assert_int_equal(port, 0);
	close(fd);

	/* errors */
	assert_int_equal(uplink_socket(AF_INET, SOCK_STREAM, &v), -EAFNOSUPPORT);
	v = via(UP_A, "10.9.3.3", 0);
	assert_int_equal(uplink_socket(AF_INET, SOCK_STREAM, &v), -EADDRNOTAVAIL);
	assert_int_equal(uplink_socket(AF_INET, SOCK_RAW, NULL), -EINVAL);
	assert_int_equal(uplink_socket(AF_UNIX, SOCK_STREAM, NULL), -EINVAL);
	fd = uplink_socket(AF_INET, SOCK_STREAM, NULL);
	assert_true(fd >= 0);
	assert_string_equal(sock_name(fd, buf, sizeof(buf), NULL), "0.0.0.0");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_topology, drain),
		cmocka_unit_test_setup(test_race_slow_first, drain),
		cmocka_unit_test_setup(test_race_first_fast, drain),
		cmocka_unit_test_setup(test_no_race, drain),
		cmocka_unit_test_setup(test_refused_moves_on, drain),
		cmocka_unit_test_setup(test_all_fail, drain),
		cmocka_unit_test_setup(test_mark, drain),
		cmocka_unit_test_setup(test_family, drain),
		cmocka_unit_test_setup(test_cancel, drain),
		cmocka_unit_test_setup(test_start_errors, drain),
		cmocka_unit_test_setup(test_uplink_socket, drain),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
