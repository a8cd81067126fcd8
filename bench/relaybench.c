/*
 * relaybench.c - throughput of the splice relay (src/proxy/relay.c) over loopback TCP, beside
 * a direct loopback transfer, for 1 and 8 parallel streams.
 *
 *   direct:  sender -> receiver                              (one TCP connection)
 *   relay:   sender -> [a  relay  s] -> receiver              (two TCP connections)
 *
 * Each stream has a sender thread (send() of a 256 KiB buffer in a loop) and a receiver thread
 * (recv() and count).  After a 0.3 s warm-up the bytes received during SECONDS are counted;
 * CPU is the process's user+system time over the same window (all threads: senders,
 * receivers and relay workers), in percent of one CPU; "cpu/Gbit" divides it by the rate
 * (CPU % per Gbit/s, per run): on a shared machine whose steal makes the rates wander, this
 * cost per byte is the steadier number.  Relay rows: pipe 64 KiB and 256 KiB,
 * and the copy path (recv/send through a buffer) for comparison; then plain HTTP forwarding
 * (struct relay_http): the stream is a request body, of a Content-Length, or chunked in
 * chunks of 16 KiB or 256 KiB (each chunk-size line looked at, the data spliced by length);
 * the receiver answers 204 at the end.  Rows "+ reader": the 64 KiB splice relay while another
 * thread reads every session's counters (bytes both ways, last activity) as the API's table
 * of live connections does, once a millisecond (a dashboard asks every second or two) and
 * without pause (the worst case): what reading the counters costs the relay's workers.
 *
 * Usage: relaybench [-w WORKERS] [-s SECONDS] [-r RUNS] [-j]
 *   -r: measure each row RUNS times, the rows interleaved (so drift of a shared machine hits
 *       all rows alike), and print the median with the min-max range.  -j: JSON lines.
 * Runs in the current network namespace and uses 127.0.0.1 only; run it inside `unshare -n`
 * (after `ip link set lo up`) or a lab namespace.  Must not be run where loopback traffic
 * of others would disturb the numbers.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "relay.h"
#include "util.h"

#define BUF_SIZE    (256 * 1024)
#define MAX_STREAMS 8
#define WARMUP_MS   300
#define MAX_RUNS    15

struct stream {
	int snd, rcv; /* the sender's and the receiver's sockets */
	int http; /* 0: bytes; < 0: an HTTP body of a Content-Length; > 0: chunks of that size */
	pthread_t ts, tr;
	struct relay_counters ctr;
	bool done;
};

static _Atomic bool g_stop;
static _Atomic uint64_t g_bytes;
static struct sockaddr_in g_addr;
static int g_lfd = -1;

static void die(const char *what)
{
	fprintf(stderr, "relaybench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A connected loopback pair (blocking): *conn connected out, *acc accepted. */
static void tcp_pair(int *conn, int *acc)
{
	*conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*conn < 0 || connect(*conn, (struct sockaddr *)&g_addr, sizeof(g_addr)) < 0)
		die("connect");
	*acc = accept4(g_lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*acc < 0)
		die("accept");
}

/* BUF_SIZE bytes of a chunked body in chunks of `chunk` bytes (chunk-size line and CRLF
 * included), so that the buffer sent again and again is a valid stream. */
static void chunked_fill(char *buf, int chunk)
{
	for (size_t off = 0; off < BUF_SIZE; off += (size_t)chunk) {
		int hdr = snprintf(buf + off, 16, "%05x\r\n", chunk - 9);

		if (hdr != 7 || off + (size_t)chunk > BUF_SIZE)
			die("chunk size");
		memcpy(buf + off + (size_t)chunk - 2, "\r\n", 2);
	}
}

static void *sender_main(void *arg)
{
	struct stream *st = arg;
	char *buf = xcalloc(1, BUF_SIZE);
	size_t off = 0;
	ssize_t n;

	if (st->http > 0)
		chunked_fill(buf, st->http);
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		/* whole buffers: a chunk cut short would break the stream */
		n = send(st->snd, buf + off, BUF_SIZE - off, MSG_NOSIGNAL);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0)
			off = (off + (size_t)n) % BUF_SIZE;
	}
	shutdown(st->snd, SHUT_WR);
	while ((n = recv(st->snd, buf, BUF_SIZE, 0)) > 0 || (n < 0 && errno == EINTR))
		; /* the receiver's answer, then its EOF */
	free(buf);
	return NULL;
}

static void *receiver_main(void *arg)
{
	struct stream *st = arg;
	char *buf = xmalloc(BUF_SIZE);
	ssize_t n;

	while ((n = recv(st->rcv, buf, BUF_SIZE, 0)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		atomic_fetch_add_explicit(&g_bytes, (uint64_t)n, memory_order_relaxed);
	}
	if (st->http) {
		static const char resp[] = "HTTP/1.1 204 No Content\r\n\r\n";

		send(st->rcv, resp, sizeof(resp) - 1, MSG_NOSIGNAL);
	}
	shutdown(st->rcv, SHUT_WR);
	free(buf);
	return NULL;
}

struct reader {
	struct stream *st;
	int n;
	int period_us; /* 0: without pause */
	pthread_t t;
	uint64_t reads;
};

/* Read every stream's counters until g_stop, as GET /api/connections reads them. */
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint64_t sink = 0;

	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		for (int i = 0; i < rd->n; i++) {
			struct relay_counters *c = &rd->st[i].ctr;

			sink += atomic_load_explicit(&c->up, memory_order_relaxed) +
				atomic_load_explicit(&c->down, memory_order_relaxed) +
				atomic_load_explicit(&c->last_ms, memory_order_relaxed);
		}
		rd->reads++;
		if (rd->period_us)
			usleep((useconds_t)rd->period_us);
	}
	return (void *)(uintptr_t)sink;
}

static void done_cb(void *arg, enum relay_end end, int err)
{
	struct stream *st = arg;

	st->done = true;
	if (end != RELAY_END_CLOSED)
		fprintf(stderr, "relaybench: session ended %s (%s)\n", relay_end_name[end],
			strerror(err));
}

/* One measurement; pool NULL: direct; http as in struct stream; reader_us >= 0: a reader
 * of the counters with that period.  Returns Gbit/s, *cpu: percent of one CPU. */
static double run(struct event_base *base, struct relay_pool *pool, int http, int reader_us,
	int n, double secs, double *cpu)
{
	struct stream st[MAX_STREAMS];
	struct reader rd = {.st = st, .n = n, .period_us = reader_us};
	uint64_t b0, b1;
	double t0, t1, c0, c1;

	memset(st, 0, sizeof(st));
	atomic_store(&g_stop, false);
	atomic_store(&g_bytes, 0);
	for (int i = 0; i < n; i++) {
		st[i].http = http;
		if (pool) {
			struct http_request req = {.body_len = http < 0 ? INT64_C(1) << 62 : -1};
			struct relay_http h = {0};
			int a, s, r;

			http_request_body(&req, &h.request);
			tcp_pair(&st[i].snd, &a);
			tcp_pair(&s, &st[i].rcv);
			r = relay_start(pool, a, s, NULL, 0, NULL, 0, http ? &h : NULL, &st[i].ctr,
				done_cb, &st[i]);
			if (r < 0) {
				errno = -r;
				die("relay_start");
			}
		} else {
			tcp_pair(&st[i].snd, &st[i].rcv);
			st[i].done = true;
		}
		pthread_create(&st[i].tr, NULL, receiver_main, &st[i]);
		pthread_create(&st[i].ts, NULL, sender_main, &st[i]);
	}
	if (reader_us >= 0)
		pthread_create(&rd.t, NULL, reader_main, &rd);
	usleep(WARMUP_MS * 1000);
	b0 = atomic_load(&g_bytes);
	t0 = now_s();
	c0 = cpu_s();
	usleep((useconds_t)(secs * 1e6));
	b1 = atomic_load(&g_bytes);
	t1 = now_s();
	c1 = cpu_s();
	atomic_store(&g_stop, true);
	if (reader_us >= 0)
		pthread_join(rd.t, NULL);
	for (int i = 0; i < n; i++) {
		pthread_join(st[i].ts, NULL);
		pthread_join(st[i].tr, NULL); /* at EOF: everything sent arrived */
		close(st[i].snd);
		close(st[i].rcv);
	}
	/* Relay sessions end when both apps closed; wait for their callbacks on our base. */
	for (int i = 0; i < n; i++)
		while (!st[i].done)
			event_base_loop(base, EVLOOP_ONCE);
	*cpu = 100.0 * (c1 - c0) / (t1 - t0);
	return (double)(b1 - b0) * 8 / (t1 - t0) / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: relaybench [-w WORKERS] [-s SECONDS] [-r RUNS] [-j]\n");
	exit(2);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n, double *lo, double *hi)
{
	double s[MAX_RUNS];

	memcpy(s, v, sizeof(*v) * (size_t)n);
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	*lo = s[0];
	*hi = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int pipe_size; /* < 0: direct */
		bool no_splice;
		int http;      /* as in struct stream */
		int reader_us; /* a reader of the counters, this often; -1: none */
	} modes[] = {
		{"direct", -1, false, 0, -1},
		{"relay splice 64K", 64 * 1024, false, 0, -1},
		{"+ reader 1ms", 64 * 1024, false, 0, 1000},
		{"+ reader busy", 64 * 1024, false, 0, 0},
		{"relay splice 256K", 256 * 1024, false, 0, -1},
		{"relay copy", 0, true, 0, -1},
		{"http length 64K", 64 * 1024, false, -1, -1},
		{"http chunked 16K", 64 * 1024, false, 16 * 1024, -1},
		{"http chunked 256K", 64 * 1024, false, 256 * 1024, -1},
	};
	static const int streams[] = {1, 8};
	socklen_t len = sizeof(g_addr);
	struct event_base *base;
	struct relay_pool *pools[ARRAY_SIZE(modes)] = {0};
	double gbps[ARRAY_SIZE(modes)][ARRAY_SIZE(streams)][MAX_RUNS];
	double cpu[ARRAY_SIZE(modes)][ARRAY_SIZE(streams)][MAX_RUNS];
	double eff[ARRAY_SIZE(modes)][ARRAY_SIZE(streams)][MAX_RUNS];
	double secs = 3;
	int workers = 0, runs = 1, c, one = 1;
	bool json = false;

	while ((c = getopt(argc, argv, "w:s:r:jh")) != -1) {
		switch (c) {
		case 'w':
			workers = atoi(optarg);
			break;
		case 's':
			secs = atof(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			usage();
		}
	}
	if (workers < 0 || secs <= 0 || runs < 1 || runs > MAX_RUNS)
		usage();
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!base || g_lfd < 0)
		die("setup");
	setsockopt(g_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	g_addr.sin_family = AF_INET;
	g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(g_lfd, (struct sockaddr *)&g_addr, sizeof(g_addr)) < 0 || listen(g_lfd, 64) < 0 ||
		getsockname(g_lfd, (struct sockaddr *)&g_addr, &len) < 0)
		die("listen on 127.0.0.1 (is lo up?)");

	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		struct relay_opts o = {.workers = workers,
			.pipe_size = modes[m].pipe_size,
			.no_splice = modes[m].no_splice};

		int r = modes[m].pipe_size < 0 ? 0 : relay_pool_new(base, &o, &pools[m]);

		if (r < 0) {
			errno = -r;
			die("relay_pool_new");
		}
	}
	for (int r = 0; r < runs; r++) {
		for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
			for (size_t k = 0; k < ARRAY_SIZE(streams); k++) {
				double *cu = &cpu[m][k][r];

				gbps[m][k][r] = run(base, pools[m], modes[m].http,
					modes[m].reader_us, streams[k], secs, cu);
				eff[m][k][r] = *cu / MAX(gbps[m][k][r], 1e-9);
			}
		}
	}
	if (!json)
		printf("%-20s %7s %9s %15s %6s %9s   (%.1f s x %d runs, %d workers, %ld CPUs)\n",
			"mode", "streams", "Gbit/s", "(min-max)", "cpu %", "cpu/Gbit", secs, runs,
			pools[1] ? relay_pool_workers(pools[1]) : 0, sysconf(_SC_NPROCESSORS_ONLN));
	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		for (size_t k = 0; k < ARRAY_SIZE(streams); k++) {
			double lo, hi, clo, chi, g = median(gbps[m][k], runs, &lo, &hi);
			double cp = median(cpu[m][k], runs, &clo, &chi);
			double e = median(eff[m][k], runs, &clo, &chi);

			if (json)
				printf("{\"bench\": \"relay\", \"mode\": \"%s\", \"workers\": %d, "
				       "\"streams\": %d, \"runs\": %d, \"gbit_s\": %.2f, "
				       "\"gbit_s_min\": %.2f, \"gbit_s_max\": %.2f, \"cpu_pct\": "
				       "%.0f, "
				       "\"cpu_pct_per_gbit\": %.2f}\n",
					modes[m].name, pools[m] ? relay_pool_workers(pools[m]) : 0,
					streams[k], runs, g, lo, hi, cp, e);
			else
				printf("%-20s %7d %9.2f %7.2f-%-7.2f %6.0f %9.2f\n", modes[m].name,
					streams[k], g, lo, hi, cp, e);
		}
		relay_pool_free(pools[m]);
	}
	close(g_lfd);
	event_base_free(base);
	return 0;
}
