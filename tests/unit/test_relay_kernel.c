/*
 * test_relay_kernel.c - the splice relay (src/proxy/relay.c) over real TCP on loopback.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and brings lo up; every socket here lives there and disappears with the process.  A session
 * is four sockets: the test's client app c talks to a (the relay's client side), the relay's
 * server side s talks to the test's server app u:   c <-> a ==relay== s <-> u.
 * Waits are on the main event loop or poll() with deadlines, never bare sleeps.  Each
 * positive check has a negative one beside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <cmocka.h>

#include "kernel_test.h"
#include "relay.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static struct event_base *g_base;
static int g_lfd = -1;
static struct sockaddr_in g_laddr;

struct sess {
	int c, u; /* the test's client and server apps */
	int a, s; /* the relay's ends (the relay owns them once started) */
	struct relay_counters ctr;
	int done;
	enum relay_end end;
	int err;
	struct relay_pool **free_pool; /* set: the callback frees this pool */
};

/* ---- helpers -------------------------------------------------------------------------- */

static void done_cb(void *arg, enum relay_end end, int err)
{
	struct sess *s = arg;

	s->done++;
	s->end = end;
	s->err = err;
	if (s->free_pool) {
		relay_pool_free(*s->free_pool);
		*s->free_pool = NULL;
	}
}

static void set_nb(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A connected loopback pair: *conn connected out, *acc accepted; both nonblocking. */
static void tcp_pair(int *conn, int *acc)
{
	*conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*conn >= 0);
	assert_int_equal(connect(*conn, (struct sockaddr *)&g_laddr, sizeof(g_laddr)), 0);
	*acc = accept4(g_lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*acc >= 0);
	set_nb(*conn);
	set_nb(*acc);
}

static void sess_make(struct sess *s)
{
	memset(s, 0, sizeof(*s));
	tcp_pair(&s->c, &s->a);
	tcp_pair(&s->s, &s->u);
	s->end = _RELAY_END_MAX;
}

static void sess_start(struct relay_pool *p, struct sess *s, const void *up, size_t nup,
	const void *down, size_t ndown)
{
	assert_int_equal(
		relay_start(p, s->a, s->s, up, nup, down, ndown, NULL, &s->ctr, done_cb, s), 0);
}

/* Plain HTTP forwarding of a request whose head went already, with a body of body_len bytes
 * (-1: chunked). */
static void sess_start_http(struct relay_pool *p, struct sess *s, int64_t body_len, bool head)
{
	struct http_request req = {.body_len = body_len};
	struct relay_http h = {.head = head};

	http_request_body(&req, &h.request);
	assert_int_equal(relay_start(p, s->a, s->s, NULL, 0, NULL, 0, &h, &s->ctr, done_cb, s), 0);
}

static void sess_close_apps(struct sess *s)
{
	close(s->c);
	close(s->u);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Run the main loop until cond(arg) or timeout_ms; returns cond's last value. */
static bool loop_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	bool fired = false;
	struct event *tick = evtimer_new(g_base, deadline_cb, &fired);

	while (!cond(arg) && now_ms() < end) {
		/* wake at least every 5 ms for conditions the loop cannot see (socket states) */
		struct timeval tv = {0, 5000};

		fired = false;
		evtimer_add(tick, &tv);
		event_base_loop(g_base, EVLOOP_ONCE);
	}
	event_free(tick);
	return cond(arg);
}

static bool is_done(void *arg)
{
	return ((struct sess *)arg)->done > 0;
}

static bool never(void *arg)
{
	return false;
}

/* Run the loop for ms (a negative check's observation window). */
static void loop_for(int ms)
{
	loop_until(never, NULL, ms);
}

/* Read exactly n bytes from fd within timeout_ms: n, fewer at EOF, or -errno. */
static ssize_t recv_all(int fd, void *buf, size_t n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r = recv(fd, (uint8_t *)buf + got, n - got, 0);

		if (r == 0)
			break;
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (errno != EAGAIN)
			return -errno;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		poll(&pfd, 1, (int)(end - now_ms()));
	}
	return (ssize_t)got;
}

/* recv() outcome within timeout_ms: bytes (> 0), 0 at EOF, -errno (-EAGAIN: nothing). */
static ssize_t recv_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint8_t b[4096];
	ssize_t r;

	poll(&pfd, 1, timeout_ms);
	r = recv(fd, b, sizeof(b), 0);
	return r < 0 ? -errno : r;
}

static void send_all(int fd, const void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t r = send(fd, (const uint8_t *)buf + off, n - off, MSG_NOSIGNAL);

		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		assert_true(poll(&pfd, 1, 5000) == 1);
	}
}

/* The byte at offset i of direction d: shifts by 1, 256, 64 Ki or 16 Mi bytes all show. */
static uint8_t pat(int d, uint64_t i)
{
	return (uint8_t)(i ^ ((i >> 8) * 31) ^ ((i >> 16) * 7) ^ ((i >> 24) * 13) ^ (d * 0x55));
}

static void pat_fill(int d, uint64_t off, uint8_t *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		b[k] = pat(d, off + k);
}

/* Offset of the first wrong byte, or -1. */
static int64_t pat_check(int d, uint64_t off, const uint8_t *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (b[k] != pat(d, off + k))
			return (int64_t)(off + k);
	return -1;
}

/*
 * Send `total` pattern bytes each way (c -> u direction 0, u -> c direction 1) at once, with
 * poll(); checks every byte received.  Returns when both sides got everything.
 */
static void transfer(struct sess *s, uint64_t total)
{
	enum { CHUNK = 256 * 1024 };
	uint8_t *tx = xmalloc(CHUNK), *rx = xmalloc(CHUNK);
	uint64_t sent[2] = {0}, got[2] = {0};
	int wfd[2] = {s->c, s->u}, rfd[2] = {s->u, s->c};
	uint64_t deadline = now_ms() + 120000;

	while (got[0] < total || got[1] < total) {
		struct pollfd pfd[4];

		for (int d = 0; d < 2; d++) {
			pfd[d] = (struct pollfd){
				.fd = wfd[d], .events = sent[d] < total ? POLLOUT : 0};
			pfd[2 + d] = (struct pollfd){.fd = rfd[d], .events = POLLIN};
		}
		assert_true(poll(pfd, 4, 5000) > 0);
		assert_true(now_ms() < deadline);
		for (int d = 0; d < 2; d++) {
			if (sent[d] < total && (pfd[d].revents & POLLOUT)) {
				size_t n = (size_t)MIN((uint64_t)CHUNK, total - sent[d]);
				ssize_t r;

				pat_fill(d, sent[d], tx, n);
				r = send(wfd[d], tx, n, MSG_NOSIGNAL);
				if (r < 0)
					assert_int_equal(errno, EAGAIN);
				else
					sent[d] += (uint64_t)r;
			}
			if (pfd[2 + d].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(rfd[d], rx, CHUNK, 0);

				if (r < 0) {
					assert_int_equal(errno, EAGAIN);
					continue;
				}
				assert_true(r > 0); /* no EOF before the end */
				assert_true(got[d] + (uint64_t)r <= total);
				assert_int_equal(pat_check(d, got[d], rx, (size_t)r), -1);
				got[d] += (uint64_t)r;
			}
		}
	}
	free(tx);
	free(rx);
}

/* Both apps half-close in turn (c first), each sees EOF; then the session ends CLOSED. */
static void close_both_ways(struct sess *s)
{
	assert_int_equal(shutdown(s->c, SHUT_WR), 0);
	assert_int_equal(recv_wait(s->u, 5000), 0);
	assert_int_equal(shutdown(s->u, SHUT_WR), 0);
	assert_int_equal(recv_wait(s->c, 5000), 0);
	assert_true(loop_until(is_done, s, 5000));
	assert_int_equal(s->done, 1);
	assert_int_equal(s->end, RELAY_END_CLOSED);
	assert_int_equal(s->err, 0);
}

static struct relay_pool *pool_new(int workers, uint32_t idle_ms, int pipe_size, bool no_splice)
{
	struct relay_opts o = {.workers = workers,
		.idle_timeout_ms = idle_ms,
		.pipe_size = pipe_size,
		.no_splice = no_splice};
	struct relay_pool *p = NULL;

	assert_int_equal(relay_pool_new(g_base, &o, &p), 0);
	assert_non_null(p);
	return p;
}

/* Userspace heap in use (all arenas, mmapped chunks included). */
static size_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_pattern_checker(void **state)
{
	uint8_t b[512];

	/* The checker the transfer tests rely on sees a flipped byte, a shift and a swap. */
	pat_fill(0, 1000, b, sizeof(b));
	assert_int_equal(pat_check(0, 1000, b, sizeof(b)), -1);
	assert_int_equal(pat_check(1, 1000, b, sizeof(b)), 1000);
	assert_int_equal(pat_check(0, 1256, b, sizeof(b)), 1256);
	b[300] ^= 1;
	assert_int_equal(pat_check(0, 1000, b, sizeof(b)), 1300);
}

static void run_transfer(int workers, int pipe_size, bool no_splice, uint64_t total)
{
	struct relay_pool *p = pool_new(workers, 0, pipe_size, no_splice);
	struct sess s;
	uint64_t t0;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	t0 = now_ms();
	transfer(&s, total);
	print_message("    %llu MiB each way in %llu ms (pipe %d, %s)\n",
		(unsigned long long)(total >> 20), (unsigned long long)(now_ms() - t0),
		relay_pool_pipe_size(p), no_splice ? "copy" : "splice");
	/* Still open: no callback yet, the session counts. */
	loop_for(20);
	assert_int_equal(s.done, 0);
	assert_int_equal(relay_pool_sessions(p), 1);
	close_both_ways(&s);
	/* final once the callback ran (the worker adds after each write the apps may see first) */
	assert_int_equal(atomic_load(&s.ctr.up), total);
	assert_int_equal(atomic_load(&s.ctr.down), total);
	assert_int_equal(relay_pool_sessions(p), 0);
	assert_int_equal(relay_pool_pipes_busy(p), 0);
	if (no_splice)
		assert_int_equal(relay_pool_pipes(p), 0);
	else
		assert_true(relay_pool_pipes(p) > 0); /* splice used pipes, now back in the pool */
	sess_close_apps(&s);
	relay_pool_free(p);
}

static void test_transfer_64m(void **state)
{
	run_transfer(2, 0, false, 64ull << 20);
}

static void test_transfer_64m_pipe256k(void **state)
{
	run_transfer(2, 256 * 1024, false, 64ull << 20);
}

static void test_transfer_copy(void **state)
{
	run_transfer(1, 0, true, 16ull << 20);
}

static void test_pending_first(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	static const char up[] = "PREFACE-UP", down[] = "PREFACE-DOWN";
	char buf[64];
	struct sess s;

	sess_make(&s);
	/* Bytes already queued in the sockets before the hand-over come after the pending ones. */
	send_all(s.c, "abc", 3);
	send_all(s.u, "xyz", 3);
	sess_start(p, &s, up, strlen(up), down, strlen(down));
	assert_int_equal(recv_all(s.u, buf, 13, 5000), 13);
	assert_memory_equal(buf, "PREFACE-UPabc", 13);
	assert_int_equal(recv_all(s.c, buf, 15, 5000), 15);
	assert_memory_equal(buf, "PREFACE-DOWNxyz", 15);
	/* Nothing else: the client's pending bytes never reach the client, nor vice versa. */
	assert_int_equal(recv_wait(s.u, 50), -EAGAIN);
	assert_int_equal(recv_wait(s.c, 50), -EAGAIN);
	close_both_ways(&s);
	/* the pending bytes to the server count (the client's), those to the client do not
	 * (the caller's own reply) */
	assert_int_equal(atomic_load(&s.ctr.up), 13);
	assert_int_equal(atomic_load(&s.ctr.down), 3);
	sess_close_apps(&s);
	relay_pool_free(p);
}

/* Pending bytes larger than the socket buffers: written with back-pressure, in order. */
static void test_pending_large(void **state)
{
	enum { N = 8 << 20 };
	struct relay_pool *p = pool_new(1, 0, 0, false);
	uint8_t *big = xmalloc(N), *rx = xmalloc(N);
	struct sess s;

	pat_fill(0, 0, big, N);
	sess_make(&s);
	send_all(s.c, "tail", 4);
	sess_start(p, &s, big, N, NULL, 0);
	memset(big, 0, N); /* copied by relay_start */
	assert_int_equal(recv_all(s.u, rx, N, 10000), N);
	assert_int_equal(pat_check(0, 0, rx, N), -1);
	assert_int_equal(recv_all(s.u, rx, 4, 5000), 4);
	assert_memory_equal(rx, "tail", 4);
	close_both_ways(&s);
	assert_int_equal(atomic_load(&s.ctr.up), N + 4);
	sess_close_apps(&s);
	free(big);
	free(rx);
	relay_pool_free(p);
}

static void test_half_close_client_first(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	char buf[16];
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	send_all(s.c, "req", 3);
	assert_int_equal(shutdown(s.c, SHUT_WR), 0);
	assert_int_equal(recv_all(s.u, buf, 3, 5000), 3);
	assert_int_equal(recv_wait(s.u, 5000), 0); /* the server sees the client's EOF */
	/* ...and still talks to the client, whose read side is open. */
	send_all(s.u, "reply", 5);
	assert_int_equal(recv_all(s.c, buf, 5, 5000), 5);
	assert_memory_equal(buf, "reply", 5);
	loop_for(30);
	assert_int_equal(s.done, 0); /* one direction is still open */
	close(s.u);
	assert_int_equal(recv_wait(s.c, 5000), 0);
	assert_true(loop_until(is_done, &s, 5000));
	assert_int_equal(s.end, RELAY_END_CLOSED);
	assert_int_equal(atomic_load(&s.ctr.up), 3);
	assert_int_equal(atomic_load(&s.ctr.down), 5);
	close(s.c);
	relay_pool_free(p);
}

static void test_half_close_server_first(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	char buf[16];
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	send_all(s.u, "banner", 6);
	assert_int_equal(shutdown(s.u, SHUT_WR), 0);
	assert_int_equal(recv_all(s.c, buf, 6, 5000), 6);
	assert_int_equal(recv_wait(s.c, 5000), 0);
	send_all(s.c, "late", 4);
	assert_int_equal(recv_all(s.u, buf, 4, 5000), 4);
	assert_memory_equal(buf, "late", 4);
	loop_for(30);
	assert_int_equal(s.done, 0);
	assert_int_equal(shutdown(s.c, SHUT_WR), 0);
	assert_int_equal(recv_wait(s.u, 5000), 0);
	assert_true(loop_until(is_done, &s, 5000));
	assert_int_equal(s.end, RELAY_END_CLOSED);
	sess_close_apps(&s);
	relay_pool_free(p);
}

static void rst_close(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	close(fd);
}

static void test_reset_from_server(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	char buf[8];
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	send_all(s.c, "x", 1);
	assert_int_equal(recv_all(s.u, buf, 1, 5000), 1);
	rst_close(s.u);
	assert_int_equal(recv_wait(s.c, 5000), -ECONNRESET); /* not a clean EOF */
	assert_true(loop_until(is_done, &s, 5000));
	assert_int_equal(s.end, RELAY_END_RESET);
	assert_int_equal(s.err, ECONNRESET);
	close(s.c);
	relay_pool_free(p);
}

static void test_reset_from_client(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	rst_close(s.c);
	assert_int_equal(recv_wait(s.u, 5000), -ECONNRESET);
	assert_true(loop_until(is_done, &s, 5000));
	assert_int_equal(s.end, RELAY_END_RESET);
	close(s.u);
	relay_pool_free(p);
}

#define OK_5	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
#define OK_5_CLIENT "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"

/* Receive until EOF (at most n - 1 bytes, NUL-terminated): the length, or -errno. */
static ssize_t recv_to_eof(int fd, char *buf, size_t n, int timeout_ms)
{
	ssize_t got = recv_all(fd, buf, n - 1, timeout_ms);

	if (got >= 0) {
		buf[got] = '\0';
		if ((size_t)got == n - 1)
			return -E2BIG;
	}
	return got;
}

/* An HTTP exchange: the request's body passes up to its Content-Length (also across several
 * reads), the response's head and exactly its body reach the client, then its EOF; what the
 * server sends after the body does not; the session ends by itself. */
static void test_http_length_bodies(void **state)
{
	for (int copy = 0; copy < 2; copy++) {
		struct relay_pool *p = pool_new(1, 0, 0, copy);
		char buf[256];
		struct sess s;

		sess_make(&s);
		sess_start_http(p, &s, 10, false);
		send_all(s.c, "01234", 5);
		assert_int_equal(recv_all(s.u, buf, 5, 5000), 5);
		send_all(s.c, "56789", 5);
		assert_int_equal(recv_all(s.u, buf, 5, 5000), 5);
		assert_memory_equal(buf, "56789", 5);
		send_all(s.u, OK_5 "helloHTTP/1.1 200 OK\r\n\r\nforged", strlen(OK_5) + 30);
		assert_int_equal(recv_to_eof(s.c, buf, sizeof(buf), 5000), strlen(OK_5_CLIENT) + 5);
		assert_string_equal(buf, OK_5_CLIENT "hello");
		assert_true(loop_until(is_done, &s, 5000));
		assert_int_equal(s.end, RELAY_END_CLOSED);
		assert_int_equal(atomic_load(&s.ctr.up), 10);
		assert_int_equal(atomic_load(&s.ctr.down), strlen(OK_5_CLIENT) + 5);
		sess_close_apps(&s);
		relay_pool_free(p);
	}
}

/* Bytes past the request's body never reach the server (no EOF either); the server's answer
 * still reaches the client, and the session ends with it, without a reset. */
static void test_http_past_the_body(void **state)
{
	static const char sent[] = "bodyGET http://other/ HTTP/1.1\r\n";

	for (int copy = 0; copy < 2; copy++) {
		struct relay_pool *p = pool_new(1, 0, 0, copy);
		char buf[128];
		struct sess s;

		sess_make(&s);
		sess_start_http(p, &s, 4, false);
		send_all(s.c, sent, strlen(sent));
		assert_int_equal(recv_all(s.u, buf, 4, 5000), 4);
		assert_memory_equal(buf, "body", 4);
		loop_for(30);
		assert_int_equal(s.done, 0);
		assert_int_equal(recv_wait(s.u, 50), -EAGAIN); /* nothing more, no EOF */
		send_all(s.u, OK_5 "hello", strlen(OK_5) + 5);
		assert_int_equal(recv_to_eof(s.c, buf, sizeof(buf), 5000), strlen(OK_5_CLIENT) + 5);
		assert_true(loop_until(is_done, &s, 5000));
		assert_int_equal(s.end, RELAY_END_CLOSED);
		/* closed, not reset: the client's unread request was drained first */
		assert_int_equal(recv_wait(s.u, 5000), 0);
		assert_int_equal(atomic_load(&s.ctr.up), 4);
		sess_close_apps(&s);
		relay_pool_free(p);
	}
}

/* A request without a body: no byte from the client is forwarded; a response without length
 * ends with the server's close. */
static void test_http_no_body(void **state)
{
	static const char resp[] = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nreply";
	static const char want[] = "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nreply";
	struct relay_pool *p = pool_new(1, 0, 0, false);
	char buf[128];
	struct sess s;

	sess_make(&s);
	sess_start_http(p, &s, 0, false);
	send_all(s.c, "x", 1);
	send_all(s.u, resp, strlen(resp));
	loop_for(30);
	assert_int_equal(recv_wait(s.u, 50), -EAGAIN);
	close(s.u);
	s.u = -1;
	assert_int_equal(recv_to_eof(s.c, buf, sizeof(buf), 5000), strlen(want));
	assert_string_equal(buf, want);
	assert_true(loop_until(is_done, &s, 5000));
	assert_int_equal(s.end, RELAY_END_CLOSED);
	assert_int_equal(atomic_load(&s.ctr.up), 0);
	close(s.c);
	relay_pool_free(p);
}

/*
 * A chunked request body with a chunk much larger than a pipe (spliced by length) and small
 * ones, in pieces that split its lines: exactly the body reaches the server, not the request
 * behind it.  The response: 100 Continue, then a chunked one with trailers and a forged
 * response behind it, which the client never sees.
 */
static void test_http_chunked(void **state)
{
	enum { BIG = 300000 };
	static const char tail[] = "\r\n5;ext=\"a b\"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n";
	static const char after[] = "GET http://other/ HTTP/1.1\r\n\r\n";
	static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "3\r\nabc\r\n0\r\n\r\n"
				   "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged";
	static const char want[] = "HTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
				   "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

	for (int copy = 0; copy < 2; copy++) {
		struct relay_pool *p = pool_new(1, 0, 0, copy);
		size_t total = 7 + BIG + strlen(tail);
		uint8_t *body = xmalloc(total + strlen(after)), *got = xmalloc(total + 64);
		char buf[256];
		struct sess s;

		memcpy(body, "493e0\r\n", 7); /* 300000 */
		memset(body + 7, 'b', BIG);
		memcpy(body + 7 + BIG, tail, strlen(tail));
		memcpy(body + total, after, strlen(after));
		sess_make(&s);
		sess_start_http(p, &s, -1, false);
		send_all(s.c, body, 3); /* "493" */
		loop_for(20);
		send_all(s.c, body + 3, 70000);
		loop_for(20);
		send_all(s.c, body + 70003, total + strlen(after) - 70003 - 10);
		loop_for(20);
		send_all(s.c, body + total + strlen(after) - 10, 10);
		assert_int_equal(recv_all(s.u, got, total, 5000), total);
		assert_memory_equal(got, body, total);
		loop_for(30);
		assert_int_equal(recv_wait(s.u, 50), -EAGAIN);
		send_all(s.u, resp, strlen(resp));
		assert_int_equal(recv_to_eof(s.c, buf, sizeof(buf), 5000), strlen(want));
		assert_string_equal(buf, want);
		assert_true(loop_until(is_done, &s, 5000));
		assert_int_equal(s.end, RELAY_END_CLOSED);
		assert_int_equal(atomic_load(&s.ctr.up), total);
		sess_close_apps(&s);
		relay_pool_free(p);
		free(body);
		free(got);
	}
}

/* A malformed response head, or none before the server's EOF: the client gets a 502; a
 * malformed chunked request body before any response: a 400; the server a reset. */
static void test_http_refused(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"SSH-2.0-OpenSSH_9.2\r\n", "HTTP/1.1 200 OK\r\nContent", /* then EOF */
	};
	static const char *const bad_body = "5\r\nhello\r\nzz\r\n";
	struct relay_pool *p = pool_new(1, 0, 0, false);
	char buf[256];

	for (size_t i = 0; i <= ARRAY_SIZE(bad); i++) {
		struct sess s;

		sess_make(&s);
		sess_start_http(p, &s, i < ARRAY_SIZE(bad) ? 0 : -1, false);
		if (i < ARRAY_SIZE(bad)) {
			send_all(s.u, bad[i], strlen(bad[i]));
			if (i == ARRAY_SIZE(bad) - 1)
				shutdown(s.u, SHUT_WR);
		} else {
			send_all(s.c, bad_body, strlen(bad_body));
		}
		assert_int_equal(recv_to_eof(s.c, buf, sizeof(buf), 5000),
			strlen(http_response(i < ARRAY_SIZE(bad) ? 502 : 400)));
		assert_string_equal(buf, http_response(i < ARRAY_SIZE(bad) ? 502 : 400));
		assert_true(loop_until(is_done, &s, 5000));
		assert_int_equal(s.end, RELAY_END_CLOSED);
		assert_int_equal(recv_wait(s.u, 5000), -ECONNRESET);
		assert_int_equal(atomic_load(&s.ctr.down), 0); /* ours, not the server's */
		sess_close_apps(&s);
	}
	relay_pool_free(p);
}

/* A reset arriving on a side that is neither read (EOF seen) nor written is noticed too. */
static void test_reset_after_eof(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	assert_int_equal(shutdown(s.u, SHUT_WR), 0);
	assert_int_equal(recv_wait(s.c, 5000), 0);
	loop_for(20);
	assert_int_equal(s.done, 0);
	rst_close(s.u);
	assert_true(loop_until(is_done, &s, 5000));
	assert_int_equal(s.end, RELAY_END_RESET);
	/*
	 * c had its EOF already (CLOSE_WAIT), where the kernel turns a RST into EPIPE for the
	 * next send rather than an error on recv.
	 */
	assert_int_equal(send(s.c, "x", 1, MSG_NOSIGNAL), -1);
	assert_true(errno == EPIPE || errno == ECONNRESET);
	close(s.c);
	relay_pool_free(p);
}

struct trickle {
	struct sess *s;
	struct event *ev;
	int sent, drained;
};

static void trickle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct trickle *t = arg;
	uint8_t b[16];

	assert_int_equal(send(t->s->c, "t", 1, MSG_NOSIGNAL), 1);
	t->sent++;
	for (ssize_t r; (r = recv(t->s->u, b, sizeof(b), 0)) > 0;) /* drain what arrived */
		t->drained += (int)r;
}

static bool up_is(void *arg)
{
	struct trickle *t = arg;

	return atomic_load(&t->s->ctr.up) == (uint64_t)t->sent;
}

static void test_idle_timeout(void **state)
{
	enum { IDLE = 300 };
	struct relay_pool *p = pool_new(2, IDLE, 0, false);
	struct timeval every = {0, 100 * 1000};
	struct trickle t = {0};
	uint64_t t0, took;
	char buf[64];
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	/* A byte every 100 ms for 1.2 s (4 timeouts' worth): the timeout must not fire. */
	t.s = &s;
	t.ev = event_new(g_base, -1, EV_PERSIST, trickle_cb, &t);
	event_add(t.ev, &every);
	loop_for(1200);
	event_free(t.ev);
	assert_true(t.sent >= 8);
	assert_int_equal(s.done, 0);
	assert_true(loop_until(up_is, &t, 1000)); /* every byte went through */
	assert_int_equal(recv_all(s.u, buf, (size_t)t.sent - t.drained, 1000), t.sent - t.drained);
	/* Silence: it fires, not before IDLE, well before 3 x IDLE. */
	t0 = now_ms();
	assert_true(loop_until(is_done, &s, 3 * IDLE));
	took = now_ms() - t0;
	print_message("    idle end after %llu ms of silence (timeout %d ms)\n",
		(unsigned long long)took, IDLE);
	assert_true(took >= IDLE - 110); /* the last byte went through up to 100 ms before t0 */
	assert_int_equal(s.end, RELAY_END_IDLE);
	assert_int_equal(recv_wait(s.c, 5000), 0); /* both apps see a clean close */
	assert_int_equal(recv_wait(s.u, 5000), 0);
	sess_close_apps(&s);
	relay_pool_free(p);
}

/* A held client (past its request's body) that resets: the session ends at once, the server
 * is told; one that closes: its EOF goes to the server as usual. */
static void test_http_held_client_goes(void **state)
{
	for (int how = 0; how < 2; how++) {
		struct relay_pool *p = pool_new(1, 0, 0, false);
		char buf[128];
		struct sess s;

		sess_make(&s);
		sess_start_http(p, &s, 2, false);
		send_all(s.c, "okNEXT", 6);
		assert_int_equal(recv_all(s.u, buf, 2, 5000), 2);
		loop_for(30);
		if (how == 0) {
			rst_close(s.c);
			s.c = -1;
			assert_true(loop_until(is_done, &s, 2000));
			assert_int_equal(s.end, RELAY_END_RESET);
			assert_int_equal(recv_wait(s.u, 5000), -ECONNRESET);
			close(s.u);
		} else {
			assert_int_equal(shutdown(s.c, SHUT_WR), 0);
			assert_int_equal(recv_wait(s.u, 5000), 0); /* EOF, nothing of "NEXT" */
			send_all(s.u, OK_5 "hello", strlen(OK_5) + 5);
			assert_int_equal(
				recv_to_eof(s.c, buf, sizeof(buf), 5000), strlen(OK_5_CLIENT) + 5);
			assert_true(loop_until(is_done, &s, 2000));
			assert_int_equal(s.end, RELAY_END_CLOSED);
			sess_close_apps(&s);
		}
		assert_int_equal(atomic_load(&s.ctr.up), 2);
		relay_pool_free(p);
	}
}

static void test_no_idle_timeout(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	struct sess s;

	/* Without idle_timeout_ms a silent session stays. */
	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	loop_for(300);
	assert_int_equal(s.done, 0);
	assert_int_equal(recv_wait(s.c, 10), -EAGAIN);
	sess_close_apps(&s);
	assert_true(loop_until(is_done, &s, 5000));
	relay_pool_free(p);
}

/* Write pattern bytes from offset *off until the relay path is full (no progress in 300 ms). */
static void fill_until_blocked(int fd, uint64_t *off)
{
	uint8_t *b = xmalloc(65536);

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t r;

		pat_fill(0, *off, b, 65536);
		r = send(fd, b, 65536, MSG_NOSIGNAL);
		if (r > 0) {
			*off += (uint64_t)r;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (poll(&pfd, 1, 300) == 0)
			break;
	}
	free(b);
}

static bool no_pipe_busy(void *arg)
{
	return relay_pool_pipes_busy(arg) == 0;
}

static void test_backpressure(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	uint64_t written = 0, got = 0, up;
	uint8_t *rx = xmalloc(1 << 20);
	size_t heap0;
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	heap0 = heap_used();
	/* The server app reads nothing: the client must end up blocked. */
	fill_until_blocked(s.c, &written);
	up = atomic_load(&s.ctr.up);
	print_message("    blocked after %llu KiB written, %llu KiB relayed, heap +%zd B\n",
		(unsigned long long)(written >> 10), (unsigned long long)(up >> 10),
		(ssize_t)(heap_used() - heap0));
	assert_true(written < (256ull << 20)); /* the relay did not swallow without bound */
	assert_true(up < written);	       /* the rest waits in the client's socket */
	assert_true(relay_pool_pipes_busy(p) <= 1);
	assert_true(relay_pool_pipes(p) <= 2);
	if (!UNDER_ASAN)
		assert_true(heap_used() < heap0 + 64 * 1024);
	loop_for(200);
	assert_int_equal(atomic_load(&s.ctr.up), up); /* nothing moves while blocked */
	/* Resume: everything arrives, intact and in order; then the path is free again. */
	written += 1 << 20;
	{
		uint64_t sent = 0;

		while (got < written) {
			struct pollfd pfd[2] = {
				{.fd = s.u, .events = POLLIN}, {.fd = s.c, .events = POLLOUT}};
			uint64_t extra_from = written - (1 << 20);
			ssize_t r;

			assert_true(poll(pfd, 2, 5000) > 0);
			if (sent < (1 << 20) && (pfd[1].revents & POLLOUT)) {
				uint8_t b[65536];
				size_t n = MIN(sizeof(b), (size_t)((1 << 20) - sent));

				pat_fill(0, extra_from + sent, b, n);
				r = send(s.c, b, n, MSG_NOSIGNAL);
				if (r > 0)
					sent += (uint64_t)r;
			}
			r = recv(s.u, rx, 1 << 20, 0);
			if (r < 0) {
				assert_int_equal(errno, EAGAIN);
				continue;
			}
			assert_true(r > 0);
			assert_int_equal(pat_check(0, got, rx, (size_t)r), -1);
			got += (uint64_t)r;
		}
	}
	assert_int_equal(got, written);
	assert_true(loop_until(no_pipe_busy, p, 2000));
	close_both_ways(&s);
	assert_int_equal(atomic_load(&s.ctr.up), written);
	sess_close_apps(&s);
	free(rx);
	relay_pool_free(p);
}

static void test_idle_sessions_hold_no_pipe(void **state)
{
	enum { N = 1000 };
	struct relay_pool *p = pool_new(2, 0, 0, false);
	struct sess *v = xcalloc(N, sizeof(*v));
	size_t heap0, heap1;
	char b;

	for (int i = 0; i < N; i++)
		sess_make(&v[i]);
	heap0 = heap_used();
	for (int i = 0; i < N; i++)
		sess_start(p, &v[i], NULL, 0, NULL, 0);
	/* One byte each way through every session: all are live and relaying. */
	for (int i = 0; i < N; i++) {
		send_all(v[i].c, "u", 1);
		send_all(v[i].u, "d", 1);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(recv_all(v[i].u, &b, 1, 5000), 1);
		assert_int_equal(b, 'u');
		assert_int_equal(recv_all(v[i].c, &b, 1, 5000), 1);
		assert_int_equal(b, 'd');
	}
	/* the worker gives the pipe back just after the splice the app saw */
	assert_true(loop_until(no_pipe_busy, p, 2000));
	heap1 = heap_used();
	print_message("    %d idle sessions: %zu pipes busy, %zu allocated, heap %zd B/session\n",
		N, relay_pool_pipes_busy(p), relay_pool_pipes(p), (ssize_t)(heap1 - heap0) / N);
	assert_int_equal(relay_pool_sessions(p), N);
	assert_int_equal(relay_pool_pipes_busy(p), 0);
	assert_true(relay_pool_pipes(p) <= 2 * 256); /* free lists are capped per worker */
	if (!UNDER_ASAN)
		assert_true((heap1 - heap0) / N < 3072);
	/* While one of them is blocked, exactly that one holds a pipe. */
	{
		uint64_t written = 0;

		fill_until_blocked(v[0].c, &written);
		assert_int_equal(relay_pool_pipes_busy(p), 1);
	}
	for (int i = 0; i < N; i++)
		sess_close_apps(&v[i]);
	relay_pool_free(p);
	for (int i = 0; i < N; i++)
		assert_int_equal(v[i].done, 0);
	free(v);
}

/* Idle with bytes stuck for a peer that stopped reading: both peers get a reset. */
static void test_idle_timeout_stuck(void **state)
{
	enum { IDLE = 1000 };
	struct relay_pool *p = pool_new(1, IDLE, 0, false);
	static uint8_t b[65536];
	struct sess s;

	sess_make(&s);
	sess_start(p, &s, NULL, 0, NULL, 0);
	/* u never reads: once every buffer on the way is full the relay holds bytes for it */
	for (int quiet = 0; quiet < 20;) {
		if (send(s.c, b, sizeof(b), MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
			quiet = 0;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		quiet++;
		loop_for(5);
	}
	assert_true(loop_until(is_done, &s, 3 * IDLE + 2000));
	assert_int_equal(s.end, RELAY_END_IDLE);
	assert_int_equal(recv_wait(s.c, 5000), -ECONNRESET);
	sess_close_apps(&s);
	relay_pool_free(p);
}

static void test_free_with_active_sessions(void **state)
{
	struct relay_pool *p = pool_new(2, 1000, 0, false);
	struct sess v[3], ended;
	uint64_t written = 0;

	for (int i = 0; i < 3; i++) {
		sess_make(&v[i]);
		sess_start(p, &v[i], NULL, 0, NULL, 0);
	}
	fill_until_blocked(v[0].c, &written); /* one holds a pipe full of data */
	assert_int_equal(relay_pool_pipes_busy(p), 1);
	/* A fourth one ends on its worker, but its callback has not run when the pool goes. */
	sess_make(&ended);
	sess_start(p, &ended, NULL, 0, NULL, 0);
	rst_close(ended.c);
	assert_int_equal(recv_wait(ended.u, 5000), -ECONNRESET);
	relay_pool_free(p);
	for (int i = 0; i < 3; i++) {
		ssize_t r = recv_wait(v[i].u, 2000);

		/* cut: a reset, never an EOF that would pass for a whole transfer (bytes
		 * that had arrived before may come first) */
		while (r > 0)
			r = recv_wait(v[i].u, 2000);
		assert_int_equal(r, -ECONNRESET);
		r = recv_wait(v[i].c, 2000);
		assert_int_equal(r, -ECONNRESET);
	}
	loop_for(100);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(v[i].done, 0);
		sess_close_apps(&v[i]);
	}
	assert_int_equal(ended.done, 0);
	close(ended.u);
}

static bool any_done(void *arg)
{
	struct sess *v = arg;

	return v[0].done || v[1].done;
}

static void test_free_from_callback(void **state)
{
	struct relay_pool *p = pool_new(1, 0, 0, false);
	struct sess v[2];

	for (int i = 0; i < 2; i++) {
		sess_make(&v[i]);
		v[i].free_pool = &p;
		sess_start(p, &v[i], NULL, 0, NULL, 0);
	}
	/* Both end on the worker before the main loop runs: one batch of two callbacks. */
	rst_close(v[0].c);
	rst_close(v[1].c);
	assert_int_equal(recv_wait(v[0].u, 5000), -ECONNRESET);
	assert_int_equal(recv_wait(v[1].u, 5000), -ECONNRESET);
	assert_true(loop_until(any_done, v, 5000));
	loop_for(50);
	assert_null(p);
	assert_int_equal(v[0].done + v[1].done, 1); /* the first freed the pool: no second */
	close(v[0].u);
	close(v[1].u);
}

static bool two_workers_busy(void *arg)
{
	struct relay_pool *p = arg;

	return relay_pool_worker_sessions(p, 0) == 1 && relay_pool_worker_sessions(p, 1) == 1;
}

static void test_two_workers(void **state)
{
	struct relay_pool *p = pool_new(2, 0, 0, false), *p1 = pool_new(1, 0, 0, false);
	struct sess v[2], w[2];

	assert_int_equal(relay_pool_workers(p), 2);
	for (int i = 0; i < 2; i++) {
		sess_make(&v[i]);
		sess_start(p, &v[i], NULL, 0, NULL, 0);
	}
	assert_true(two_workers_busy(p));
	for (int i = 0; i < 2; i++)
		transfer(&v[i], 4 << 20);
	/* One worker: both sessions on it. */
	assert_int_equal(relay_pool_workers(p1), 1);
	for (int i = 0; i < 2; i++) {
		sess_make(&w[i]);
		sess_start(p1, &w[i], NULL, 0, NULL, 0);
	}
	assert_int_equal(relay_pool_worker_sessions(p1, 0), 2);
	assert_int_equal(relay_pool_worker_sessions(p1, 1), 0);
	/* The least loaded worker gets the next session. */
	close_both_ways(&v[0]);
	{
		struct sess x;
		int idle_worker = relay_pool_worker_sessions(p, 0) == 0 ? 0 : 1;

		assert_int_equal(relay_pool_worker_sessions(p, idle_worker), 0);
		sess_make(&x);
		sess_start(p, &x, NULL, 0, NULL, 0);
		assert_int_equal(relay_pool_worker_sessions(p, idle_worker), 1);
		close_both_ways(&x);
		sess_close_apps(&x);
	}
	close_both_ways(&v[1]);
	for (int i = 0; i < 2; i++) {
		sess_close_apps(&v[i]);
		sess_close_apps(&w[i]);
	}
	relay_pool_free(p);
	relay_pool_free(p1);
}

/* ---- sessions run on the workers themselves (relay_start_local, relay_pool_each) -------- */

struct local_sess {
	struct sess s;
	struct relay_pool *p;
	int worker;	      /* relay_pool_each() ran with this index */
	pthread_t ran_on;     /* the thread that ran it */
	pthread_t reported_on; /* the thread the end was reported on */
	_Atomic int done;
	enum relay_end end;
	bool base_ok;	/* the base it was given is the worker's */
	int start_r;	/* relay_start_local()'s */
};

static void local_done_cb(void *arg, enum relay_end end, int err)
{
	struct local_sess *l = arg;

	l->reported_on = pthread_self();
	l->end = end;
	atomic_store(&l->done, 1);
}

/* On worker i's thread: start l[i]'s session there (no cmocka assert off the test's
 * thread: the results are checked after). */
static void start_local_cb(int worker, struct event_base *base, void *arg)
{
	struct local_sess *l = (struct local_sess *)arg + worker;

	l->worker = worker;
	l->ran_on = pthread_self();
	l->base_ok = base == relay_pool_worker_base(l->p, worker);
	l->start_r = relay_start_local(l->p, worker, l->s.a, l->s.s, NULL, 0, NULL, 0, NULL,
		&l->s.ctr, local_done_cb, l);
}

static void count_cb(int worker, struct event_base *base, void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1 << (worker * 4));
}

static void test_local_sessions(void **state)
{
	struct relay_pool *p = pool_new(2, 0, 0, false);
	struct local_sess l[2];
	_Atomic int ran = 0;

	memset(l, 0, sizeof(l));
	for (int i = 0; i < 2; i++) {
		sess_make(&l[i].s);
		l[i].p = p;
		l[i].worker = -1;
	}
	assert_int_equal(relay_pool_each(p, start_local_cb, l), 0);
	for (int i = 0; i < 2; i++) {
		/* each ran on its own worker, not here, and the session stayed there */
		assert_int_equal(l[i].worker, i);
		assert_true(l[i].base_ok);
		assert_int_equal(l[i].start_r, 0);
		assert_false(pthread_equal(l[i].ran_on, pthread_self()));
		assert_int_equal(relay_pool_worker_sessions(p, i), 1);
	}
	assert_false(pthread_equal(l[0].ran_on, l[1].ran_on));
	for (int i = 0; i < 2; i++) {
		transfer(&l[i].s, 1 << 20);
		assert_int_equal(shutdown(l[i].s.c, SHUT_WR), 0);
		assert_int_equal(recv_wait(l[i].s.u, 5000), 0);
		assert_int_equal(shutdown(l[i].s.u, SHUT_WR), 0);
		assert_int_equal(recv_wait(l[i].s.c, 5000), 0);
		for (int k = 0; k < 500 && !atomic_load(&l[i].done); k++)
			usleep(10000);
		/* reported on the worker's thread, without the main loop running */
		assert_int_equal(atomic_load(&l[i].done), 1);
		assert_true(pthread_equal(l[i].reported_on, l[i].ran_on));
		assert_int_equal(l[i].end, RELAY_END_CLOSED);
		assert_int_equal(l[i].s.ctr.up, 1 << 20);
		assert_int_equal(l[i].s.ctr.down, 1 << 20);
		sess_close_apps(&l[i].s);
	}
	assert_int_equal(relay_pool_sessions(p), 0);
	/* once stopped, relay_pool_each() runs here, for every worker */
	relay_pool_stop(p);
	assert_int_equal(relay_pool_each(p, count_cb, &ran), 0);
	assert_int_equal(ran, 0x11);
	relay_pool_free(p);
}

static void test_pipe_size(void **state)
{
	struct relay_pool *p;

	p = pool_new(1, 0, 0, false);
	assert_int_equal(relay_pool_pipe_size(p), 64 * 1024);
	relay_pool_free(p);
	p = pool_new(1, 0, 256 * 1024, false);
	assert_int_equal(relay_pool_pipe_size(p), 256 * 1024);
	relay_pool_free(p);
	p = pool_new(1, 0, 100000, false); /* rounded up to a power of two pages */
	assert_int_equal(relay_pool_pipe_size(p), 128 * 1024);
	relay_pool_free(p);
}

static void test_bad_args(void **state)
{
	struct relay_opts bad = {.workers = -1};
	struct relay_pool *p = NULL;
	struct relay_counters ctr = {0};
	struct sess s;

	assert_int_equal(relay_pool_new(g_base, &bad, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(relay_pool_new(NULL, NULL, &p), -EINVAL);
	assert_int_equal(relay_pool_new(g_base, NULL, &p), 0); /* defaults: a worker per CPU */
	assert_int_equal(relay_pool_workers(p), (int)sysconf(_SC_NPROCESSORS_ONLN));
	sess_make(&s);
	assert_int_equal(
		relay_start(p, s.a, s.s, NULL, 0, NULL, 0, NULL, NULL, done_cb, &s), -EINVAL);
	assert_int_equal(
		relay_start(p, s.a, s.s, NULL, 5, NULL, 0, NULL, &ctr, done_cb, &s), -EINVAL);
	assert_int_equal(
		relay_start(p, s.a, s.a, NULL, 0, NULL, 0, NULL, &ctr, done_cb, &s), -EINVAL);
	assert_int_equal(
		relay_start(p, -1, s.s, NULL, 0, NULL, 0, NULL, &ctr, done_cb, &s), -EINVAL);
	/* refused: the fds are still ours */
	assert_true(fd_open(s.a) && fd_open(s.s));
	assert_int_equal(relay_pool_sessions(p), 0);
	assert_string_equal(relay_end_name[RELAY_END_IDLE], "idle");
	close(s.a);
	close(s.s);
	sess_close_apps(&s);
	relay_pool_free(p);
	relay_pool_free(NULL);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	struct rlimit rl = {16384, 16384};
	socklen_t len = sizeof(g_laddr);
	int one = 1;

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	g_base = event_base_new();
	g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!g_base || g_lfd < 0)
		return -1;
	setsockopt(g_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	g_laddr.sin_family = AF_INET;
	g_laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(g_lfd, (struct sockaddr *)&g_laddr, sizeof(g_laddr)) < 0 ||
		listen(g_lfd, 128) < 0 || getsockname(g_lfd, (struct sockaddr *)&g_laddr, &len) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	close(g_lfd);
	event_base_free(g_base);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_checker),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_pipe_size),
		cmocka_unit_test(test_transfer_64m),
		cmocka_unit_test(test_transfer_64m_pipe256k),
		cmocka_unit_test(test_transfer_copy),
		cmocka_unit_test(test_pending_first),
		cmocka_unit_test(test_pending_large),
		cmocka_unit_test(test_half_close_client_first),
		cmocka_unit_test(test_half_close_server_first),
		cmocka_unit_test(test_reset_from_server),
		cmocka_unit_test(test_reset_from_client),
		cmocka_unit_test(test_reset_after_eof),
		cmocka_unit_test(test_http_length_bodies),
		cmocka_unit_test(test_http_past_the_body),
		cmocka_unit_test(test_http_no_body),
		cmocka_unit_test(test_http_chunked),
		cmocka_unit_test(test_http_refused),
		cmocka_unit_test(test_http_held_client_goes),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_idle_timeout_stuck),
		cmocka_unit_test(test_no_idle_timeout),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_idle_sessions_hold_no_pipe),
		cmocka_unit_test(test_free_with_active_sessions),
		cmocka_unit_test(test_free_from_callback),
		cmocka_unit_test(test_two_workers),
		cmocka_unit_test(test_local_sessions),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
