/*
 * test_dev_fwd_kernel.c - the devices' port forwards (src/devices/dev_fwd.c) over real TCP:
 * an IPv6 client -> the forward's listener on the device's WAN IPv6 -> the relay -> an
 * IPv4 server standing in for the device.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and brings lo up; the "WAN IPv6" 2001:db8::5 is put on lo only after the listeners were
 * bound (IPV6_FREEBIND), and "the device" listens on 127.0.0.1.  Everything disappears with
 * the process.  Waits run the main loop with deadlines, never bare sleeps; each positive
 * check has a negative one beside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <cmocka.h>

#include "dev_fwd.h"
#include "kernel_test.h"
#include "util.h"

#define WAN6 "2001:db8::5"

static struct event_base *g_base;
static const uint8_t g_mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
static struct addr g_wan6, g_lan4;
/* two "device" services on 127.0.0.1: their listeners and ports */
static int g_srv[2] = {-1, -1};
static uint16_t g_srv_port[2];

/* ---- helpers -------------------------------------------------------------------------- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* One turn of the main loop, waking after at most 5 ms. */
static void loop_once(void)
{
	struct timeval tv = {0, 5000};
	struct event *t = evtimer_new(g_base, tick_cb, NULL);

	evtimer_add(t, &tv);
	event_base_loop(g_base, EVLOOP_ONCE);
	event_free(t);
}

/* A connection from an IPv6 client to [WAN6]:port (nonblocking, connecting). */
static int client_connect(uint16_t port)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin6_addr = g_wan6.v6;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		assert_int_equal(errno, EINPROGRESS);
	return fd;
}

/* Accept on the device's service i while running the loop: the fd, or -1 after ms. */
static int srv_accept(int i, int ms, struct sockaddr_storage *peer)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		socklen_t len = sizeof(*peer);
		int fd = accept4(g_srv[i], (struct sockaddr *)peer, &len,
			SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		assert_int_equal(errno, EAGAIN);
		loop_once();
	} while (now_ms() < end);
	return -1;
}

/* The client's connect outcome while running the loop: 0 connected, or the errno. */
static int client_result(int fd, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, 0) == 1) {
			int err = 0;
			socklen_t len = sizeof(err);
			assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
			return err;
		}
		loop_once();
	} while (now_ms() < end);
	return ETIMEDOUT;
}

/*
 * Send n bytes of pattern seed from a to b and check b gets exactly them, running the loop
 * throughout (the relay's connect finishes there).  Returns the bytes b got in order.
 */
static size_t pump(int a, int b, size_t n, unsigned seed)
{
	uint8_t *out = xmalloc(n), in[65536];
	size_t sent = 0, got = 0;
	uint64_t end = now_ms() + 20000;

	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
	while (got < n && now_ms() < end) {
		if (sent < n) {
			ssize_t w = send(a, out + sent, n - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else
				assert_int_equal(errno, EAGAIN);
		}
		ssize_t r = recv(b, in, sizeof(in), 0);
		if (r > 0) {
			assert_true(got + (size_t)r <= n);
			assert_memory_equal(in, out + got, (size_t)r);
			got += (size_t)r;
			continue;
		}
		assert_true(r < 0 && errno == EAGAIN);
		loop_once();
	}
	free(out);
	return got;
}

/* recv() on fd within ms, running the loop: bytes, 0 at EOF, -errno (-EAGAIN: nothing). */
static ssize_t recv_wait(int fd, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	uint8_t b[256];

	do {
		ssize_t r = recv(fd, b, sizeof(b), 0);
		if (r >= 0)
			return r;
		if (errno != EAGAIN)
			return -errno;
		loop_once();
	} while (now_ms() < end);
	return -EAGAIN;
}

static json_t *fwd_of(struct dev_relay *r, uint16_t outer)
{
	json_t *a = dev_relay_json(r, g_mac), *o, *ret = NULL;
	size_t i;

	json_array_foreach(a, i, o) {
		if (json_integer_value(json_object_get(o, "gateway_port")) == outer)
			ret = json_incref(o);
	}
	json_decref(a);
	return ret;
}

static json_int_t fwd_int(struct dev_relay *r, uint16_t outer, const char *key)
{
	json_t *o = fwd_of(r, outer);
	json_int_t v;

	assert_non_null(o);
	v = json_integer_value(json_object_get(o, key));
	json_decref(o);
	return v;
}

static bool fwd_idle(struct dev_relay *r, uint16_t outer, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		if (fwd_int(r, outer, "connections_active") == 0)
			return true;
		loop_once();
	} while (now_ms() < end);
	return false;
}

static size_t n_forwards(struct dev_relay *r)
{
	json_t *a = dev_relay_json(r, g_mac);
	size_t n = json_array_size(a);

	json_decref(a);
	return n;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_port_map_parse(void **state)
{
	static const char *const bad[] = {"", "8080", "8080:", ":80", "0:80", "8080:0",
		"65536:80", "80:65536", "8080:80:1", "8080-80", " 8080:80", "8080:80 ", "+80:80",
		"-1:80", "a:80", "8080:8o", "000008080:80"};
	uint16_t o = 1, i = 1;
	const char *why = NULL;

	assert_int_equal(dev_port_map_parse("8080:80", &o, &i, &why), 0);
	assert_int_equal(o, 8080);
	assert_int_equal(i, 80);
	assert_int_equal(dev_port_map_parse("65535:1", &o, &i, &why), 0);
	assert_int_equal(o, 65535);
	assert_int_equal(i, 1);
	for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
		o = i = 7;
		why = NULL;
		assert_int_equal(dev_port_map_parse(bad[k], &o, &i, &why), -EINVAL);
		assert_non_null(why);
		assert_int_equal(o, 7); /* untouched */
		assert_int_equal(i, 7);
	}
}

/*
 * Listeners bound before the address exists (IPV6_FREEBIND); an IPv6 client reaches the
 * IPv4 service, 1 MiB exact each way, both EOFs passed on, the counters count it.
 */
static void test_relay_bytes(void **state)
{
	struct dev_relay *r;
	struct dev_forward f[1] = {{.outer = 8080, .inner = g_srv_port[0]}};
	struct sockaddr_storage peer;
	char *argv[] = {"ip", "-6", "addr", "add", WAN6 "/128", "dev", "lo", "nodad", NULL};
	int c, s, status;

	memcpy(f[0].mac, g_mac, 6);
	assert_int_equal(dev_relay_new(g_base, 0, 0, &r), 0);
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 1), 0);
	assert_int_equal(n_forwards(r), 1);
	free(kt_run_capture(-1, argv, false, &status));
	assert_int_equal(status, 0);

	c = client_connect(8080);
	s = srv_accept(0, 5000, &peer);
	assert_true(s >= 0);
	assert_int_equal(peer.ss_family, AF_INET); /* the device sees IPv4 */
	assert_int_equal(client_result(c, 5000), 0);
	assert_int_equal(pump(c, s, 1 << 20, 1), 1 << 20);
	assert_int_equal(pump(s, c, 1 << 20, 2), 1 << 20);
	/* the client's EOF reaches the device, and the device's the client */
	assert_int_equal(recv_wait(s, 100), -EAGAIN);
	shutdown(c, SHUT_WR);
	assert_int_equal(recv_wait(s, 5000), 0);
	assert_int_equal(recv_wait(c, 100), -EAGAIN);
	shutdown(s, SHUT_WR);
	assert_int_equal(recv_wait(c, 5000), 0);
	assert_true(fwd_idle(r, 8080, 5000));
	assert_int_equal(fwd_int(r, 8080, "connections_total"), 1);
	assert_int_equal(fwd_int(r, 8080, "bytes_in"), 1 << 20);
	assert_int_equal(fwd_int(r, 8080, "bytes_out"), 1 << 20);
	assert_int_equal(fwd_int(r, 8080, "errors"), 0);
	close(c);
	close(s);

	/* a port not forwarded is refused; the forward's service down: the client is reset */
	c = client_connect(8081);
	assert_int_equal(client_result(c, 5000), ECONNREFUSED);
	close(c);
	f[0].inner = 9; /* nothing listens there */
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 1), 0);
	c = client_connect(8080);
	assert_int_equal(client_result(c, 5000), 0); /* the listener accepted */
	ssize_t e = recv_wait(c, 5000);
	assert_true(e == -ECONNRESET || e == 0);
	assert_true(fwd_idle(r, 8080, 5000));
	assert_int_equal(fwd_int(r, 8080, "errors"), 1);
	assert_int_equal(fwd_int(r, 8080, "connections_total"), 1); /* a new forward */
	close(c);
	dev_relay_free(r);
	/* freed: nothing listens any more */
	c = client_connect(8080);
	assert_int_equal(client_result(c, 5000), ECONNREFUSED);
	close(c);
}

/*
 * Reconciling: a forward kept keeps its listener, counters and relayed connection; a
 * removed one no longer answers; an added one does; a new address moves them all; no
 * address or no forwards removes them.
 */
static void test_reconcile(void **state)
{
	struct dev_relay *r;
	struct dev_forward f[3] = {{.outer = 8080, .inner = g_srv_port[0]},
		{.outer = 2323, .inner = g_srv_port[1]}, {.outer = 9090, .inner = g_srv_port[1]}};
	struct sockaddr_storage peer;
	struct addr other;
	int c, s, c2, s2;

	for (int i = 0; i < 3; i++)
		memcpy(f[i].mac, g_mac, 6);
	assert_int_equal(dev_relay_new(g_base, 0, 0, &r), 0);
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 2), 0);
	assert_int_equal(n_forwards(r), 2);
	c = client_connect(8080);
	s = srv_accept(0, 5000, &peer);
	assert_true(s >= 0);
	assert_int_equal(pump(c, s, 1000, 3), 1000);
	c2 = client_connect(2323);
	s2 = srv_accept(1, 5000, &peer); /* 2323 goes to the second service */
	assert_true(s2 >= 0);
	assert_int_equal(srv_accept(0, 50, &peer), -1);
	close(c2);
	close(s2);
	assert_true(fwd_idle(r, 2323, 5000));

	/* keep 8080, drop 2323, add 9090 */
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, (struct dev_forward[]){f[0], f[2]},
		2), 0);
	assert_int_equal(n_forwards(r), 2);
	assert_null(fwd_of(r, 2323));
	assert_int_equal(fwd_int(r, 8080, "connections_active"), 1);
	assert_int_equal(pump(c, s, 1000, 4), 1000); /* the session still runs */
	assert_int_equal(pump(s, c, 1000, 5), 1000);
	assert_int_equal(fwd_int(r, 8080, "bytes_in"), 2000);
	c2 = client_connect(2323);
	assert_int_equal(client_result(c2, 5000), ECONNREFUSED);
	close(c2);
	c2 = client_connect(9090);
	s2 = srv_accept(1, 5000, &peer);
	assert_true(s2 >= 0);
	assert_int_equal(pump(c2, s2, 1000, 6), 1000);
	close(c2);
	close(s2);
	assert_true(fwd_idle(r, 9090, 5000));
	assert_int_equal(fwd_int(r, 9090, "connections_total"), 1);

	/* the same set again changes nothing (the 8080 session and its count stay) */
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, (struct dev_forward[]){f[0], f[2]},
		2), 0);
	assert_int_equal(fwd_int(r, 8080, "connections_active"), 1);
	assert_int_equal(fwd_int(r, 9090, "connections_total"), 1);
	close(c);
	close(s);
	assert_true(fwd_idle(r, 8080, 5000));

	/* another address (not on the host yet: freebind): the old one answers no more */
	assert_int_equal(addr_parse("2001:db8::6", &other), 0);
	assert_int_equal(dev_relay_set(r, g_mac, &other, &g_lan4, f, 1), 0);
	assert_int_equal(fwd_int(r, 8080, "connections_total"), 0);
	c = client_connect(8080);
	assert_int_equal(client_result(c, 5000), ECONNREFUSED);
	close(c);

	/* no address: no listeners */
	assert_int_equal(dev_relay_set(r, g_mac, NULL, &g_lan4, f, 1), 0);
	assert_int_equal(n_forwards(r), 0);
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 1), 0);
	assert_int_equal(n_forwards(r), 1);
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, NULL, 0), 0);
	assert_int_equal(n_forwards(r), 0);
	c = client_connect(8080);
	assert_int_equal(client_result(c, 5000), ECONNREFUSED);
	close(c);
	dev_relay_free(r);
}

/*
 * A port taken on the address is reported (-EADDRINUSE, "listening": false with the error),
 * the others of the same set still listen, and the next set binds it once it is free.
 */
static void test_port_taken(void **state)
{
	struct dev_relay *r;
	struct dev_forward f[2] = {{.outer = 7070, .inner = g_srv_port[0]},
		{.outer = 7071, .inner = g_srv_port[1]}};
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(7070)};
	struct sockaddr_storage peer;
	int t = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), c, s;
	json_t *o;

	memcpy(f[0].mac, g_mac, 6);
	memcpy(f[1].mac, g_mac, 6);
	sa.sin6_addr = g_wan6.v6;
	assert_int_equal(bind(t, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(t, 8), 0);
	assert_int_equal(dev_relay_new(g_base, 0, 0, &r), 0);
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 2), -EADDRINUSE);
	o = fwd_of(r, 7070);
	assert_non_null(o);
	assert_false(json_boolean_value(json_object_get(o, "listening")));
	assert_string_equal(json_string_value(json_object_get(o, "error")), strerror(EADDRINUSE));
	json_decref(o);
	o = fwd_of(r, 7071);
	assert_true(json_boolean_value(json_object_get(o, "listening")));
	assert_null(json_object_get(o, "error"));
	json_decref(o);
	c = client_connect(7071);
	s = srv_accept(1, 5000, &peer);
	assert_true(s >= 0);
	close(c);
	close(s);

	/* still taken: still reported; freed: bound on the next set */
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 2), -EADDRINUSE);
	close(t);
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 2), 0);
	o = fwd_of(r, 7070);
	assert_true(json_boolean_value(json_object_get(o, "listening")));
	json_decref(o);
	c = client_connect(7070);
	s = srv_accept(0, 5000, &peer);
	assert_true(s >= 0);
	close(c);
	close(s);

	/* two forwards of one outer port in a set: the second is refused, the first serves */
	f[1].outer = 7070;
	assert_int_equal(dev_relay_set(r, g_mac, &g_wan6, &g_lan4, f, 2), -EADDRINUSE);
	assert_int_equal(n_forwards(r), 1);
	assert_int_equal(fwd_int(r, 7070, "device_port"), g_srv_port[0]);
	dev_relay_free(r);
	dev_relay_free(NULL);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	g_base = event_base_new();
	if (!g_base || addr_parse(WAN6, &g_wan6) < 0 || addr_parse("127.0.0.1", &g_lan4) < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (tcp_listen("127.0.0.1", 0, 64, &g_srv[i], &g_srv_port[i]) < 0)
			return -1;
	return 0;
}

static int group_teardown(void **state)
{
	close(g_srv[0]);
	close(g_srv[1]);
	event_base_free(g_base);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_map_parse),
		cmocka_unit_test(test_relay_bytes),
		cmocka_unit_test(test_reconcile),
		cmocka_unit_test(test_port_taken),
	};

	return kt_exit_status(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
