/*
 * test_dns_kernel.c - the DNS forwarder (src/dns/dns.c) against real sockets.
 *
 * The group setup moves the process into a private network namespace (unshare) and brings
 * lo up; nothing runs before that succeeded and everything disappears with the process.
 *
 *     test client --> forwarder 127.0.0.1:5354 / [::]:5354   (this thread, its event loop)
 *                        |  isp1: source 127.0.0.5 --> resolver 127.0.0.2:53 --+
 *                        |  isp2: source 127.0.0.6 --> resolver 127.0.0.3:53 --+-- fake
 *                        |  [dns] upstream          --> resolver [::1]:53    --+   servers
 *                                                                                (a thread)
 *
 * The fake resolvers answer A records 10.0.0.<tag> (tag 2, 3, 6: which one answered), and
 * behave by the query's first label: "big" (60 records), "tc" (TC over UDP, whole over
 * TCP), "wrongid"/"wrongq"/"spoof" (a bad answer first, tag 66, then the good one), "nx"
 * (NXDOMAIN with SOA), "servfail"; a resolver set silent drops everything.  They record
 * what they saw (source address and port, ID).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf_keys.h"
#include "dns.h"
#include "dns_conf.h"
#include "dnswatch.h"
#include "module.h"
#include "dns_msg.h"
#include "kernel_test.h"
#include "log.h"
#include "metrics.h"
#include "modules.h"
#include "uplink.h"
#include "util.h"

#define PORT	 5354
#define TAG_BAD	 66  /* what a wrong answer carries */
#define TAG_TCP	 100 /* added to the tag of answers over TCP */
#define N_FAKES	 3

/* ------------------------------------------------------------ building messages */

struct mb {
	uint8_t b[4096];
	size_t n;
};

static void mb_u8(struct mb *m, uint8_t v)
{
	if (m->n < sizeof(m->b))
		m->b[m->n++] = v;
}

static void mb_u16(struct mb *m, uint16_t v)
{
	mb_u8(m, (uint8_t)(v >> 8));
	mb_u8(m, (uint8_t)v);
}

static void mb_u32(struct mb *m, uint32_t v)
{
	mb_u16(m, (uint16_t)(v >> 16));
	mb_u16(m, (uint16_t)v);
}

static void mb_bytes(struct mb *m, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mb_u8(m, p[i]);
}

static void mb_name(struct mb *m, const char *name)
{
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		mb_u8(m, (uint8_t)l);
		mb_bytes(m, (const uint8_t *)p, l);
		p += l;
		if (*p == '.')
			p++;
	}
	mb_u8(m, 0);
}

static void mb_opt(struct mb *m, uint16_t size)
{
	mb_u8(m, 0);
	mb_u16(m, DNS_TYPE_OPT);
	mb_u16(m, size);
	mb_u32(m, 0);
	mb_u16(m, 0);
}

/* A query; edns: the payload size of an OPT record, 0 for none. */
static void build_query(struct mb *m, uint16_t id, const char *name, uint16_t edns)
{
	m->n = 0;
	mb_u16(m, id);
	mb_u16(m, DNS_FLAG_RD);
	mb_u16(m, 1);
	mb_u16(m, 0);
	mb_u16(m, 0);
	mb_u16(m, edns ? 1 : 0);
	mb_name(m, name);
	mb_u16(m, DNS_TYPE_A);
	mb_u16(m, DNS_CLASS_IN);
	if (edns)
		mb_opt(m, edns);
}

/*
 * An answer to question (wire bytes from offset 12 to the end of the question) with id:
 * n A records 10.0.0.tag, TTL 300, then an SOA if rcode is NXDOMAIN, then OPT if edns.
 */
static void build_answer(struct mb *m, uint16_t id, uint16_t flags, const uint8_t *question,
	size_t qlen, unsigned n, uint8_t tag, bool edns)
{
	bool soa = DNS_RCODE(flags) == DNS_RCODE_NXDOMAIN;

	m->n = 0;
	mb_u16(m, id);
	mb_u16(m, (uint16_t)(DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | flags));
	mb_u16(m, 1);
	mb_u16(m, (uint16_t)n);
	mb_u16(m, soa ? 1 : 0);
	mb_u16(m, edns ? 1 : 0);
	mb_bytes(m, question, qlen);
	for (unsigned i = 0; i < n; i++) {
		mb_u16(m, 0xc00c);
		mb_u16(m, DNS_TYPE_A);
		mb_u16(m, DNS_CLASS_IN);
		mb_u32(m, 300);
		mb_u16(m, 4);
		mb_u32(m, 0x0a000000u | tag);
	}
	if (soa) {
		mb_u16(m, 0xc00c);
		mb_u16(m, DNS_TYPE_SOA);
		mb_u16(m, DNS_CLASS_IN);
		mb_u32(m, 600);
		mb_u16(m, 24);
		mb_u16(m, 0xc00c);
		mb_u16(m, 0xc00c);
		for (int i = 0; i < 4; i++)
			mb_u32(m, 1000);
		mb_u32(m, 60);
	}
	if (edns)
		mb_opt(m, 1232);
}

/* The tag of the last A record of an answer (0 without one). */
static uint8_t answer_tag(const uint8_t *b, size_t len)
{
	struct dns_msg a;

	if (dns_msg_parse(b, len, &a) < 0 || !a.ancount)
		return 0;
	/* the records are all the same size: the last A's address ends 16 bytes per record in */
	return b[a.question_end + 16 * a.ancount - 1];
}

/* ------------------------------------------------------------ fake resolvers */

struct fake {
	const char *addr;
	uint8_t tag;
	int udp, tcp;
	/* under g_lock */
	bool silent;
	unsigned n_udp, n_tcp;
	struct addr last_src;
	uint16_t last_port, last_id;
};

static struct fake g_fakes[N_FAKES] = {
	{.addr = "127.0.0.2", .tag = 2},
	{.addr = "127.0.0.3", .tag = 3},
	{.addr = "::1", .tag = 6},
};
static int g_spoof = -1; /* 127.0.0.9:53: answers from the wrong address */
static int g_stop[2] = {-1, -1};
static pthread_t g_thread;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct event_base *g_base;

static int bind_socket(const char *addr, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct addr a;
	int fd, one = 1;

	assert_int_equal(addr_parse(addr, &a), 0);
	assert_int_equal(addr_to_sockaddr(&a, (uint16_t)port, &ss, &len), 0);
	fd = socket(a.family, type | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* What fake f answers to query q (len bytes), by its first label; into out[0..1]. */
static size_t fake_answers(struct fake *f, const uint8_t *q, size_t len, bool tcp, struct mb *out)
{
	struct dns_msg m;
	const uint8_t *question = q + DNS_HEADER_LEN;
	size_t qlen;
	char label[16] = "";

	if (dns_msg_parse(q, len, &m) < 0 || !m.question_end)
		return 0;
	qlen = m.question_end - DNS_HEADER_LEN;
	if (m.qname[0] < sizeof(label)) {
		memcpy(label, m.qname + 1, m.qname[0]);
		label[m.qname[0]] = '\0';
	}
	if (streq(label, "big")) {
		build_answer(&out[0], m.id, 0, question, qlen, 60, f->tag, m.edns);
	} else if (streq(label, "tc")) {
		if (tcp)
			build_answer(&out[0], m.id, 0, question, qlen, 3, f->tag + TAG_TCP, m.edns);
		else
			build_answer(&out[0], m.id, DNS_FLAG_TC, question, qlen, 0, 0, m.edns);
	} else if (streq(label, "nx")) {
		build_answer(&out[0], m.id, DNS_RCODE_NXDOMAIN, question, qlen, 0, 0, m.edns);
	} else if (streq(label, "servfail")) {
		build_answer(&out[0], m.id, DNS_RCODE_SERVFAIL, question, qlen, 0, 0, m.edns);
	} else if (streq(label, "wrongid")) {
		build_answer(&out[0], (uint16_t)(m.id ^ 1), 0, question, qlen, 1, TAG_BAD, m.edns);
		build_answer(&out[1], m.id, 0, question, qlen, 1, f->tag, m.edns);
		return 2;
	} else if (streq(label, "wrongq")) {
		struct mb other;

		build_query(&other, m.id, "wrongx.test", 0);
		build_answer(&out[0], m.id, 0, other.b + DNS_HEADER_LEN,
			other.n - DNS_HEADER_LEN, 1, TAG_BAD, false);
		build_answer(&out[1], m.id, 0, question, qlen, 1, f->tag, m.edns);
		return 2;
	} else {
		build_answer(&out[0], m.id, 0, question, qlen, 1, f->tag + (tcp ? TAG_TCP : 0),
			m.edns);
	}
	return 1;
}

static void fake_record(struct fake *f, const struct sockaddr_storage *from, const uint8_t *q,
	bool tcp)
{
	pthread_mutex_lock(&g_lock);
	if (tcp)
		f->n_tcp++;
	else
		f->n_udp++;
	addr_from_sockaddr((const struct sockaddr *)from, &f->last_src, &f->last_port);
	f->last_id = dns_get16(q);
	pthread_mutex_unlock(&g_lock);
}

static void fake_udp(struct fake *f)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	uint8_t q[2048];
	struct mb out[2];
	ssize_t n = recvfrom(f->udp, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	size_t k;
	bool silent;

	if (n < DNS_HEADER_LEN)
		return;
	fake_record(f, &from, q, false);
	pthread_mutex_lock(&g_lock);
	silent = f->silent;
	pthread_mutex_unlock(&g_lock);
	if (silent)
		return;
	k = fake_answers(f, q, (size_t)n, false, out);
	if (k == 1 && !memcmp(q + DNS_HEADER_LEN, "\005spoof", 6)) {
		/* the right ID and question, from another address */
		struct mb bad = out[0];

		bad.b[bad.n - 1] = TAG_BAD;
		sendto(g_spoof, bad.b, bad.n, 0, (struct sockaddr *)&from, fl);
	}
	for (size_t i = 0; i < k; i++)
		sendto(f->udp, out[i].b, out[i].n, 0, (struct sockaddr *)&from, fl);
}

static bool read_full(int fd, uint8_t *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* One query per connection, as the forwarder asks after TC. */
static void fake_tcp(struct fake *f)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	struct timeval tv = {.tv_sec = 2};
	uint8_t hdr[2], q[2048];
	struct mb out[2];
	int fd = accept(f->tcp, (struct sockaddr *)&from, &fl);
	size_t n, k;

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!read_full(fd, hdr, 2) || (n = dns_get16(hdr)) < DNS_HEADER_LEN || n > sizeof(q) ||
		!read_full(fd, q, n)) {
		close(fd);
		return;
	}
	fake_record(f, &from, q, true);
	k = fake_answers(f, q, n, true, out);
	for (size_t i = 0; i < k; i++) {
		dns_put16(hdr, (uint16_t)out[i].n);
		if (write(fd, hdr, 2) != 2 || write(fd, out[i].b, out[i].n) != (ssize_t)out[i].n)
			break;
	}
	close(fd);
}

static void *fake_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2 * N_FAKES + 1];

		for (int i = 0; i < N_FAKES; i++) {
			p[2 * i] = (struct pollfd){.fd = g_fakes[i].udp, .events = POLLIN};
			p[2 * i + 1] = (struct pollfd){.fd = g_fakes[i].tcp, .events = POLLIN};
		}
		p[2 * N_FAKES] = (struct pollfd){.fd = g_stop[0], .events = POLLIN};
		if (poll(p, 2 * N_FAKES + 1, -1) < 0)
			continue;
		if (p[2 * N_FAKES].revents)
			return NULL;
		for (int i = 0; i < N_FAKES; i++) {
			if (p[2 * i].revents & POLLIN)
				fake_udp(&g_fakes[i]);
			if (p[2 * i + 1].revents & POLLIN)
				fake_tcp(&g_fakes[i]);
		}
	}
}

static void fakes_reset(void)
{
	pthread_mutex_lock(&g_lock);
	for (int i = 0; i < N_FAKES; i++) {
		g_fakes[i].silent = false;
		g_fakes[i].n_udp = g_fakes[i].n_tcp = 0;
		g_fakes[i].last_port = g_fakes[i].last_id = 0;
		memset(&g_fakes[i].last_src, 0, sizeof(g_fakes[i].last_src));
	}
	pthread_mutex_unlock(&g_lock);
}

static void fake_silent(int i, bool silent)
{
	pthread_mutex_lock(&g_lock);
	g_fakes[i].silent = silent;
	pthread_mutex_unlock(&g_lock);
}

static struct fake fake_get(int i)
{
	struct fake f;

	pthread_mutex_lock(&g_lock);
	f = g_fakes[i];
	pthread_mutex_unlock(&g_lock);
	return f;
}

/* ------------------------------------------------------------ the forwarder under test */

struct fwd {
	struct conf *conf;
	struct uplink_set set;
	struct metrics *metrics;
	struct dns_module *m;
};

/* Global, so a failed test's teardown can still stop it. */
static struct fwd g_fwd;
static bool g_fwd_active;

static struct conf *conf_from(const char *text)
{
	struct conf *c = egress_conf_new();
	struct conf_errors errs = {0};

	if (conf_load_string(c, "test.conf", text, &errs) < 0 || conf_validate(c, &errs) < 0) {
		conf_errors_print(&errs, stderr);
		fail_msg("bad test configuration");
	}
	conf_errors_clear(&errs);
	return c;
}

/* Start the forwarder of text with every uplink up. */
static void fwd_start(struct fwd *f, const char *text)
{
	fakes_reset();
	f->conf = conf_from(text);
	uplink_set_init(&f->set);
	uplink_set_sync(&f->set, f->conf);
	for (size_t i = 0; i < f->set.n; i++)
		uplink_transition(&f->set, f->set.v[i], UPLINK_UP, "test");
	f->metrics = metrics_new();
	assert_int_equal(dns_module_new(g_base, f->conf, &f->set, f->metrics, &f->m), 0);
	g_fwd_active = true;
}

static void fwd_stop(struct fwd *f)
{
	g_fwd_active = false;
	dns_module_free(f->m);
	uplink_set_clear(&f->set);
	metrics_free(f->metrics);
	conf_free(f->conf);
}

/* The value of one rendered series, e.g. "egress_dns_cache_hits_total"; -1 if absent. */
static double metric(struct fwd *f, const char *series)
{
	char *text, *p;
	size_t n = strlen(series);
	double v = -1;

	assert_int_equal(metrics_render(f->metrics, &text, NULL), 0);
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, series, n) && p[n] == ' ') {
			v = strtod(p + n + 1, NULL);
			break;
		}
	}
	free(text);
	return v;
}

static void pump(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		event_base_loop(g_base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* Run the loop until fd is readable or ms passed. */
static bool pump_until(int fd, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		event_base_loop(g_base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) > 0)
			return true;
	} while (now_ms() < end);
	return false;
}

/* ------------------------------------------------------------ clients */

/* A UDP client connected to the forwarder at addr. */
static int client_udp(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct addr a;
	int fd;

	assert_int_equal(addr_parse(addr, &a), 0);
	assert_int_equal(addr_to_sockaddr(&a, (uint16_t)port, &ss, &len), 0);
	fd = socket(a.family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

/* Send q from fd and wait for its answer: its length, or -1 after ms. */
static ssize_t udp_wait(int fd, uint8_t *ans, size_t cap, int ms)
{
	if (!pump_until(fd, ms))
		return -1;
	return recv(fd, ans, cap, 0);
}

/* Ask name over UDP at addr:port (one socket per question); the answer's length or -1. */
static ssize_t ask_at(const char *addr, int port, uint16_t id, const char *name, uint16_t edns,
	uint8_t *ans, size_t cap, int ms)
{
	struct mb q;
	int fd = client_udp(addr, port);
	ssize_t n;

	build_query(&q, id, name, edns);
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	n = udp_wait(fd, ans, cap, ms);
	close(fd);
	return n;
}

static ssize_t ask(uint16_t id, const char *name, uint16_t edns, uint8_t *ans, size_t cap)
{
	return ask_at("127.0.0.1", PORT, id, name, edns, ans, cap, 3000);
}

static unsigned rcode_of(const uint8_t *b)
{
	return DNS_RCODE(dns_get16(b + 2));
}

static const char *const base_conf = "[uplink isp1]\n"
				     "source = 127.0.0.5\n"
				     "dns = 127.0.0.2\n"
				     "weight = 100\n"
				     "[uplink isp2]\n"
				     "source = 127.0.0.6\n"
				     "dns = 127.0.0.3\n"
				     "weight = 1\n"
				     "[dns]\n"
				     "address = 127.0.0.1\n"
				     "port = 5354\n"
				     "timeout = 300ms\n"
				     "attempts = 2\n"
				     "cache_size = 100\n"
				     "max_pending = 16\n";

/* ------------------------------------------------------------ tests */

/* An answer through isp1 (its source address), fresh ID and port per query, then the cache. */
static void test_udp_and_cache(void **state)
{
	uint8_t ans[4096];
	ssize_t n;
	struct fake s, s2;
	struct dns_msg a;

	(void)state;
	fwd_start(&g_fwd, "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\ncache_size = 10\n");
	n = ask(0x1234, "a.test", 0, ans, sizeof(ans));
	assert_true(n > DNS_HEADER_LEN);
	assert_int_equal(dns_get16(ans), 0x1234); /* the client's ID is back */
	assert_int_equal(rcode_of(ans), DNS_RCODE_NOERROR);
	assert_int_equal(answer_tag(ans, (size_t)n), 2);
	s = fake_get(0);
	assert_int_equal(s.n_udp, 1);
	char src[ADDR_STRLEN];
	assert_string_equal(addr_str(&s.last_src, src, sizeof(src)), "127.0.0.5");
	assert_int_equal(fake_get(1).n_udp, 0);

	/* another name: asked again (ports and IDs vary: checked below, over many queries) */
	n = ask(0x1234, "b.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	s2 = fake_get(0);
	assert_int_equal(s2.n_udp, 2);

	/* a.test again: from the cache, the resolver is not asked, TTL at most 300 */
	n = ask(0x4321, "A.Test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(dns_get16(ans), 0x4321);
	assert_int_equal(answer_tag(ans, (size_t)n), 2);
	assert_memory_equal(ans + DNS_HEADER_LEN, "\001A\004Test", 7);
	assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
	assert_true(a.min_ttl <= 300 && a.min_ttl >= 298);
	assert_int_equal(fake_get(0).n_udp, 2);
	assert_true(metric(&g_fwd, "egress_dns_cache_hits_total") == 1);
	assert_true(metric(&g_fwd, "egress_dns_cache_misses_total") == 2);
	assert_true(metric(&g_fwd, "egress_dns_queries_total{transport=\"udp\"}") == 3);
	assert_true(metric(&g_fwd, "egress_dns_answers_total{transport=\"udp\"}") == 3);
	assert_true(metric(&g_fwd, "egress_dns_upstream_queries_total{uplink=\"isp1\","
				 "transport=\"udp\"}") == 2);
	assert_true(metric(&g_fwd, "egress_dns_cache_entries") == 2);
	assert_true(metric(&g_fwd, "egress_dns_pending") == 0);

	/*
	 * Source ports and IDs: each query goes out on one of a pool of 16 sockets picked at
	 * random, with a random ID, so two queries may share either by chance (1 in 16, 1 in
	 * 65 536), and an ID may equal the client's.  Over 12 queries: more than one port (all
	 * on one socket: 16^-11), at least 10 distinct IDs (three or more repeats: about 1e-7)
	 * and at most one client ID passed on.  The checks before this one were pairwise and
	 * failed by chance once in 16 runs.
	 */
	uint16_t ports[12], ids[12];
	unsigned n_ports = 0, n_ids = 0, n_client_id = 0;

	for (unsigned i = 0; i < 12; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%u.test", i);
		n = ask((uint16_t)(0x100 + i), name, 0, ans, sizeof(ans));
		assert_true(n > DNS_HEADER_LEN);
		s2 = fake_get(0);
		n_client_id += s2.last_id == (uint16_t)(0x100 + i);
		ports[i] = s2.last_port;
		ids[i] = s2.last_id;
		bool port_seen = false, id_seen = false;
		for (unsigned j = 0; j < i; j++) {
			port_seen |= ports[j] == ports[i];
			id_seen |= ids[j] == ids[i];
		}
		n_ports += !port_seen;
		n_ids += !id_seen;
	}
	assert_true(n_ports >= 2);
	assert_true(n_ids >= 10);
	assert_true(n_client_id <= 1); /* the resolver is not sent the client's ID */
	fwd_stop(&g_fwd);
}

/* ------------------------------------------------------------ the DNS watch */

struct watched {
	int client_fd;	     /* the asking client's socket */
	int calls;
	bool client_had_it;  /* the answer was already at the client when the watch saw it */
	char name[64];
	char addr[ADDR_STRLEN];
	uint32_t ttl;
};

static void watch_cb(void *arg, const struct dnswatch_answer *a)
{
	struct watched *w = arg;
	uint8_t b[16];

	w->calls++;
	w->client_had_it = recv(w->client_fd, b, sizeof(b), MSG_DONTWAIT | MSG_PEEK) >= 0;
	snprintf(w->name, sizeof(w->name), "%s", a->n_names ? a->names[0] : "");
	if (a->n_addrs) {
		addr_str(&a->addrs[a->n_addrs - 1].addr, w->addr, sizeof(w->addr));
		w->ttl = a->addrs[a->n_addrs - 1].ttl;
	}
}

/* The module (through its description, as the daemon starts it) tells the daemon's watch
 * about each answer, from the upstream and from the cache, before the client has it;
 * NXDOMAIN is not told. */
static void test_watch(void **state)
{
	struct watched w = {0};
	struct uplink_set set;
	struct conf *conf = conf_from(base_conf);
	struct dnswatch *watch;
	struct module_env env = {0};
	struct mb q;
	uint8_t ans[512];
	void *m = NULL;

	(void)state;
	fakes_reset();
	uplink_set_init(&set);
	uplink_set_sync(&set, conf);
	for (size_t i = 0; i < set.n; i++)
		uplink_transition(&set, set.v[i], UPLINK_UP, "test");
	assert_int_equal(dnswatch_new(&watch), 0);
	env = (struct module_env){.base = g_base, .uplinks = &set, .dnswatch = watch};
	assert_int_equal(module_dns.new(&env, conf, &m), 0);
	assert_int_equal(dnswatch_subscribe(watch, watch_cb, &w), 0);
	for (int round = 0; round < 2; round++) { /* upstream, then the cache */
		w.client_fd = client_udp("127.0.0.1", PORT);
		build_query(&q, 7, "Watch.test", 0);
		assert_int_equal(send(w.client_fd, q.b, q.n, 0), (ssize_t)q.n);
		assert_true(udp_wait(w.client_fd, ans, sizeof(ans), 3000) > 0);
		close(w.client_fd);
		assert_int_equal(w.calls, round + 1);
		assert_false(w.client_had_it);
		assert_string_equal(w.name, "watch.test");
		assert_string_equal(w.addr, "10.0.0.2");
		assert_true(w.ttl > 0 && w.ttl <= 300);
	}
	assert_int_equal(fake_get(0).n_udp, 1);
	assert_true(ask(8, "nx.test", 0, ans, sizeof(ans)) > 0);
	assert_int_equal(w.calls, 2);
	module_dns.free(m);
	dnswatch_free(watch);
	uplink_set_clear(&set);
	conf_free(conf);
}

/* Over 512 bytes: TC for a client without EDNS0, the whole answer with EDNS0 or TCP. */
static void test_big_answer(void **state)
{
	uint8_t ans[4096];
	struct dns_msg a;
	ssize_t n;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	n = ask(1, "big.test", 0, ans, sizeof(ans));
	assert_true(n > 0 && n <= 512);
	assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
	assert_true(a.flags & DNS_FLAG_TC);
	assert_int_equal(a.ancount, 0);
	assert_int_equal(a.question_end, (size_t)n); /* header and question only */
	assert_true(metric(&g_fwd, "egress_dns_truncated_total") == 1);

	n = ask(2, "big.test", 4096, ans, sizeof(ans));
	assert_true(n > 512);
	assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
	assert_false(a.flags & DNS_FLAG_TC);
	assert_int_equal(a.ancount, 60);
	assert_true(a.edns); /* the OPT came through */
	assert_true(metric(&g_fwd, "egress_dns_truncated_total") == 1);

	/* a small answer fits a small EDNS0 size ("big2" is not "big") */
	n = ask(3, "big2.test", 600, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
	assert_false(a.flags & DNS_FLAG_TC);
	assert_int_equal(a.ancount, 1);
	/* EDNS0 with a size below the answer (from the cache this time): TC with the OPT */
	n = ask(4, "big.test", 700, ans, sizeof(ans));
	assert_true(n > 0 && n <= 700);
	assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
	assert_true(a.flags & DNS_FLAG_TC);
	assert_true(a.edns);
	fwd_stop(&g_fwd);
}

/* An upstream TC answer makes the forwarder ask the same resolver over TCP. */
static void test_upstream_tc(void **state)
{
	uint8_t ans[4096];
	struct dns_msg a;
	ssize_t n;
	struct fake s;

	(void)state;
	fwd_start(&g_fwd, "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\ncache_size = 0\n");
	n = ask(7, "tc.test", 1232, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
	assert_false(a.flags & DNS_FLAG_TC);
	assert_int_equal(a.ancount, 3);
	assert_int_equal(answer_tag(ans, (size_t)n), 2 + TAG_TCP);
	assert_int_equal(a.id, 7);
	s = fake_get(0);
	assert_int_equal(s.n_udp, 1);
	assert_int_equal(s.n_tcp, 1);
	char src[ADDR_STRLEN];
	assert_string_equal(addr_str(&s.last_src, src, sizeof(src)), "127.0.0.5");
	assert_true(metric(&g_fwd, "egress_dns_upstream_queries_total{uplink=\"isp1\","
				 "transport=\"tcp\"}") == 1);
	/* a name without TC stays on UDP */
	n = ask(8, "a.test", 1232, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(answer_tag(ans, (size_t)n), 2);
	assert_int_equal(fake_get(0).n_tcp, 1);
	fwd_stop(&g_fwd);
}

/* Wrong ID, wrong question, wrong source: ignored; the right answer comes through. */
static void test_wrong_answers(void **state)
{
	static const char *const names[] = {"wrongid.test", "wrongq.test", "spoof.test"};
	uint8_t ans[4096];
	ssize_t n;

	(void)state;
	fwd_start(&g_fwd, "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\ncache_size = 0\n");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		n = ask((uint16_t)(100 + i), names[i], 0, ans, sizeof(ans));
		assert_true(n > 0);
		assert_int_equal(dns_get16(ans), 100 + i);
		assert_int_equal(answer_tag(ans, (size_t)n), 2);
	}
	/* the wrong ID and the wrong question reached us and were refused; the kernel dropped
	 * the spoofed one (connected socket) */
	assert_true(metric(&g_fwd, "egress_dns_upstream_mismatch_total") == 2);
	assert_true(metric(&g_fwd, "egress_dns_answers_total{transport=\"udp\"}") == 3);
	fwd_stop(&g_fwd);
}

/* isp1's resolver is silent: after the timeout the next attempt goes through isp2. */
static void test_timeout_failover(void **state)
{
	uint8_t ans[4096];
	char name[32];
	ssize_t n;
	uint64_t t0;
	unsigned via_isp2_late = 0;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	fake_silent(0, true);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "t%d.test", i);
		t0 = now_ms();
		n = ask((uint16_t)i, name, 0, ans, sizeof(ans));
		assert_true(n > 0);
		assert_int_equal(rcode_of(ans), DNS_RCODE_NOERROR);
		assert_int_equal(answer_tag(ans, (size_t)n), 3);
		if (now_ms() - t0 >= 290)
			via_isp2_late++;
	}
	/* isp1 weighs 100 to 1: it was asked first nearly always, and timed out */
	assert_true(fake_get(0).n_udp >= 1);
	assert_int_equal(fake_get(1).n_udp, 4);
	assert_int_equal(via_isp2_late, fake_get(0).n_udp);
	assert_true(metric(&g_fwd, "egress_dns_upstream_timeouts_total{uplink=\"isp1\"}") ==
		    fake_get(0).n_udp);
	assert_true(metric(&g_fwd, "egress_dns_upstream_timeouts_total{uplink=\"isp2\"}") < 1);

	/* both silent: SERVFAIL after two attempts, one per uplink */
	fake_silent(1, true);
	t0 = now_ms();
	n = ask(9, "t9.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
	assert_true(now_ms() - t0 >= 590);
	assert_int_equal(dns_get16(ans), 9);
	assert_true(metric(&g_fwd, "egress_dns_servfail_total") == 1);
	fwd_stop(&g_fwd);
}

/* SERVFAIL from one resolver: the other is asked; from the last one, it is relayed. */
static void test_servfail_retry(void **state)
{
	uint8_t ans[4096];
	ssize_t n;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	n = ask(1, "servfail.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
	/* both were asked, each once */
	assert_int_equal(fake_get(0).n_udp, 1);
	assert_int_equal(fake_get(1).n_udp, 1);
	/* not cached: asked again */
	n = ask(2, "servfail.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(fake_get(0).n_udp + fake_get(1).n_udp, 4);
	/* NXDOMAIN is an answer: relayed at once and cached */
	n = ask(3, "nx.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_NXDOMAIN);
	assert_int_equal(fake_get(0).n_udp + fake_get(1).n_udp, 5);
	n = ask(4, "nx.test", 0, ans, sizeof(ans));
	assert_int_equal(rcode_of(ans), DNS_RCODE_NXDOMAIN);
	assert_int_equal(fake_get(0).n_udp + fake_get(1).n_udp, 5);
	assert_true(metric(&g_fwd, "egress_dns_cache_hits_total") == 1);
	fwd_stop(&g_fwd);
}

/* max_pending: the query over the bound gets REFUSED at once, the others SERVFAIL later. */
static void test_pending_bound(void **state)
{
	uint8_t ans[512];
	int fd[3];
	char name[32];
	uint64_t t0;

	(void)state;
	fwd_start(&g_fwd, "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\ntimeout = 500ms\nattempts = 1\n"
		      "max_pending = 2\n");
	fake_silent(0, true);
	for (int i = 0; i < 3; i++) {
		struct mb q;

		snprintf(name, sizeof(name), "p%d.test", i);
		build_query(&q, (uint16_t)(50 + i), name, 0);
		fd[i] = client_udp("127.0.0.1", PORT);
		assert_int_equal(send(fd[i], q.b, q.n, 0), (ssize_t)q.n);
		pump(20);
	}
	t0 = now_ms();
	assert_true(metric(&g_fwd, "egress_dns_pending") == 2);
	assert_true(udp_wait(fd[2], ans, sizeof(ans), 200) > 0);
	assert_true(now_ms() - t0 < 200);
	assert_int_equal(rcode_of(ans), DNS_RCODE_REFUSED);
	assert_int_equal(dns_get16(ans), 52);
	assert_true(metric(&g_fwd, "egress_dns_refused_total{reason=\"max_pending\"}") == 1);
	/* the first two are still waiting */
	struct pollfd p = {.fd = fd[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
	for (int i = 0; i < 2; i++) {
		assert_true(udp_wait(fd[i], ans, sizeof(ans), 2000) > 0);
		assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
		assert_int_equal(dns_get16(ans), 50 + i);
	}
	assert_true(metric(&g_fwd, "egress_dns_pending") == 0);
	/* room again: a fourth one is forwarded (and times out) rather than refused */
	assert_int_equal(fake_get(0).n_udp, 2);
	ssize_t n = ask(60, "p4.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
	assert_int_equal(fake_get(0).n_udp, 3);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	fwd_stop(&g_fwd);
}

/* Read one framed TCP message; its length or -1. */
static ssize_t tcp_read_msg(int fd, uint8_t *b, size_t cap, int ms)
{
	uint8_t hdr[2];
	size_t got = 0, need = 2;
	uint64_t end = now_ms() + (uint64_t)ms;

	while (got < need) {
		ssize_t r;

		if (now_ms() > end || !pump_until(fd, (int)(end - now_ms())))
			return -1;
		r = recv(fd, got < 2 ? hdr + got : b + got - 2, need - got, MSG_DONTWAIT);
		if (r == 0)
			return -1;
		if (r < 0)
			continue;
		got += (size_t)r;
		if (got == 2 && need == 2) {
			need = 2 + (size_t)dns_get16(hdr);
			if (need - 2 > cap)
				return -1;
		}
	}
	return (ssize_t)(need - 2);
}

/* A TCP connection to addr:port, from src (NULL: any address). */
static int tcp_connect_from(const char *src, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct addr a;
	int fd;

	assert_int_equal(addr_parse(addr, &a), 0);
	fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (src) {
		struct addr sa;
		assert_int_equal(addr_parse(src, &sa), 0);
		assert_int_equal(addr_to_sockaddr(&sa, 0, &ss, &len), 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	}
	assert_int_equal(addr_to_sockaddr(&a, (uint16_t)port, &ss, &len), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

static int tcp_connect(const char *addr, int port)
{
	return tcp_connect_from(NULL, addr, port);
}

/* Closed by the other side: EOF (or a reset) within ms. */
static bool closed_within(int fd, int ms)
{
	char b;

	return pump_until(fd, ms) && recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

/* Several queries in one write over one connection; answers by ID, the big one whole. */
static void test_tcp_pipelined(void **state)
{
	static const char *const names[] = {"a.test", "nx.test", "big.test", "tc.test"};
	struct mb q, all = {.n = 0};
	uint8_t ans[8192];
	bool seen[ARRAY_SIZE(names)] = {false};
	struct dns_msg a;
	int fd;

	(void)state;
	fwd_start(&g_fwd, "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\n");
	fd = tcp_connect("127.0.0.1", PORT);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		build_query(&q, (uint16_t)(200 + i), names[i], 0);
		mb_u16(&all, (uint16_t)q.n);
		mb_bytes(&all, q.b, q.n);
	}
	assert_int_equal(write(fd, all.b, all.n), (ssize_t)all.n);
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		ssize_t n = tcp_read_msg(fd, ans, sizeof(ans), 3000);
		size_t i;

		assert_true(n > 0);
		assert_int_equal(dns_msg_parse(ans, (size_t)n, &a), 0);
		i = (size_t)(a.id - 200);
		assert_true(i < ARRAY_SIZE(names));
		assert_false(seen[i]);
		seen[i] = true;
		assert_false(a.flags & DNS_FLAG_TC);
		if (streq(names[i], "nx.test"))
			assert_int_equal(DNS_RCODE(a.flags), DNS_RCODE_NXDOMAIN);
		else if (streq(names[i], "big.test"))
			assert_int_equal(a.ancount, 60);
		else if (streq(names[i], "tc.test"))
			assert_int_equal(answer_tag(ans, (size_t)n), 2 + TAG_TCP);
		else
			assert_int_equal(answer_tag(ans, (size_t)n), 2);
	}
	assert_true(metric(&g_fwd, "egress_dns_queries_total{transport=\"tcp\"}") == 4);
	assert_true(metric(&g_fwd, "egress_dns_answers_total{transport=\"tcp\"}") == 4);
	assert_true(metric(&g_fwd, "egress_dns_tcp_connections") == 1);
	/* a runt inside the framing is dropped; the connection carries on */
	uint8_t runt[] = {0, 3, 1, 2, 3};
	assert_int_equal(write(fd, runt, sizeof(runt)), (ssize_t)sizeof(runt));
	build_query(&q, 300, "a.test", 0);
	all.n = 0;
	mb_u16(&all, (uint16_t)q.n);
	mb_bytes(&all, q.b, q.n);
	assert_int_equal(write(fd, all.b, all.n), (ssize_t)all.n);
	ssize_t n = tcp_read_msg(fd, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	assert_int_equal(dns_get16(ans), 300);
	/* half-close: still answered, then the forwarder closes */
	build_query(&q, 301, "b.test", 0);
	all.n = 0;
	mb_u16(&all, (uint16_t)q.n);
	mb_bytes(&all, q.b, q.n);
	assert_int_equal(write(fd, all.b, all.n), (ssize_t)all.n);
	shutdown(fd, SHUT_WR);
	n = tcp_read_msg(fd, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	assert_int_equal(dns_get16(ans), 301);
	assert_true(pump_until(fd, 1000));
	assert_int_equal(recv(fd, ans, sizeof(ans), MSG_DONTWAIT), 0);
	pump(10);
	assert_true(metric(&g_fwd, "egress_dns_tcp_connections") == 0);
	close(fd);
	fwd_stop(&g_fwd);
}

/*
 * A connection may have 32 queries upstream at once: the rest wait in its buffer; past
 * 128 connections a new one is closed.
 */
static void test_tcp_bounds(void **state)
{
	struct mb q, all = {.n = 0};
	uint8_t ans[512];
	char name[32];
	int fd, conns[128], extra;
	bool seen[40] = {false};

	(void)state;
	fwd_start(&g_fwd, "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
			  "[dns]\naddress = 127.0.0.1\nport = 5354\ntimeout = 400ms\n"
			  "attempts = 1\n");
	fake_silent(0, true);
	fd = tcp_connect("127.0.0.1", PORT);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "b%d.test", i);
		build_query(&q, (uint16_t)i, name, 0);
		mb_u16(&all, (uint16_t)q.n);
		mb_bytes(&all, q.b, q.n);
	}
	assert_int_equal(write(fd, all.b, all.n), (ssize_t)all.n);
	pump(100);
	assert_true(metric(&g_fwd, "egress_dns_pending") == 32);
	assert_int_equal(fake_get(0).n_udp, 32);
	/* as the first 32 fail, the last 8 go out; every one is answered */
	for (int k = 0; k < 40; k++) {
		ssize_t n = tcp_read_msg(fd, ans, sizeof(ans), 3000);

		assert_true(n > 0);
		assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
		assert_true(dns_get16(ans) < 40);
		assert_false(seen[dns_get16(ans)]);
		seen[dns_get16(ans)] = true;
	}
	assert_int_equal(fake_get(0).n_udp, 40);
	close(fd);
	pump(20);
	assert_true(metric(&g_fwd, "egress_dns_tcp_connections") == 0);

	/* 16 connections from one address; the 17th is closed at once */
	for (int i = 0; i < 128; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.1.%d", 1 + i / 16);
		conns[i] = tcp_connect_from(src, "127.0.0.1", PORT);
		pump(1); /* accepted in order: conns[0] is the quietest */
	}
	pump(50);
	assert_true(metric(&g_fwd, "egress_dns_tcp_connections") == 128);
	extra = tcp_connect_from("127.0.1.1", "127.0.0.1", PORT);
	assert_true(closed_within(extra, 1000));
	close(extra);
	assert_true(metric(&g_fwd, "egress_dns_tcp_connections") == 128);
	/* every slot taken, a newcomer from elsewhere: the connection idle longest (nothing
	 * asked, nothing to write) makes room for it */
	extra = tcp_connect_from("127.0.2.1", "127.0.0.1", PORT);
	assert_true(closed_within(conns[0], 1000));
	struct pollfd p = {.fd = extra, .events = POLLIN};
	pump(20);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_true(metric(&g_fwd, "egress_dns_tcp_connections") == 128);
	/* the newcomer is served */
	build_query(&q, 0x4242, "a.test", 0);
	uint8_t len2[2];
	dns_put16(len2, (uint16_t)q.n);
	assert_int_equal(write(extra, len2, 2), 2);
	assert_int_equal(write(extra, q.b, q.n), (ssize_t)q.n);
	assert_true(tcp_read_msg(extra, ans, sizeof(ans), 3000) > 0);
	assert_int_equal(dns_get16(ans), 0x4242);
	for (int i = 0; i < 128; i++)
		close(conns[i]);
	close(extra);
	fwd_stop(&g_fwd);
}

/* A message that trickles in slower than TCP_FRAME_MS (5 s) loses its connection: a few
 * such clients would otherwise hold every slot. */
static void test_tcp_trickle(void **state)
{
	struct mb q;
	uint8_t len2[2];
	int fd;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	build_query(&q, 0x1234, "a.test", 0);
	dns_put16(len2, (uint16_t)q.n);
	fd = tcp_connect("127.0.0.1", PORT);
	assert_int_equal(write(fd, len2, 2), 2);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(write(fd, q.b + i, 1), 1);
		assert_false(pump_until(fd, 1500));
	}
	assert_int_equal(write(fd, q.b + 4, 1), 1);
	assert_true(closed_within(fd, 1000));
	close(fd);
	fwd_stop(&g_fwd);
}

/* A record at the end of m: owner the root, type, class, TTL 0, rdlen bytes of zeros. */
static void mb_rr(struct mb *m, uint16_t type, uint16_t class, uint16_t rdlen)
{
	mb_u8(m, 0);
	mb_u16(m, type);
	mb_u16(m, class);
	mb_u32(m, 0);
	mb_u16(m, rdlen);
	for (uint16_t i = 0; i < rdlen; i++)
		mb_u8(m, 0);
}

/* Garbage is dropped, a query that does not parse gets FORMERR, a response nothing. */
static void test_malformed(void **state)
{
	uint8_t ans[512];
	int fd;
	struct mb q;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	fd = client_udp("127.0.0.1", PORT);
	assert_int_equal(send(fd, "\x01\x02\x03\x04\x05", 5, 0), 5);
	assert_int_equal(udp_wait(fd, ans, sizeof(ans), 100), -1);
	/* a name cut short */
	build_query(&q, 0x5555, "cut.test", 0);
	assert_int_equal(send(fd, q.b, DNS_HEADER_LEN + 5, 0), DNS_HEADER_LEN + 5);
	assert_int_equal(udp_wait(fd, ans, sizeof(ans), 1000), DNS_HEADER_LEN);
	assert_int_equal(dns_get16(ans), 0x5555);
	assert_int_equal(rcode_of(ans), DNS_RCODE_FORMERR);
	/* a response: never answered (two forwarders could loop) */
	build_query(&q, 0x6666, "a.test", 0);
	q.b[2] |= 0x80;
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	assert_int_equal(udp_wait(fd, ans, sizeof(ans), 100), -1);
	/* another opcode (NOTIFY): NOTIMP */
	build_query(&q, 0x7777, "a.test", 0);
	q.b[2] = (uint8_t)(4 << 3);
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	assert_true(udp_wait(fd, ans, sizeof(ans), 1000) > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_NOTIMP);
	/* a query carrying an answer record, or an authority record: FORMERR, not forwarded */
	build_query(&q, 0x9999, "a.test", 0);
	q.b[7] = 1; /* ANCOUNT */
	mb_rr(&q, DNS_TYPE_A, DNS_CLASS_IN, 4);
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	assert_true(udp_wait(fd, ans, sizeof(ans), 1000) > 0);
	assert_int_equal(dns_get16(ans), 0x9999);
	assert_int_equal(rcode_of(ans), DNS_RCODE_FORMERR);
	build_query(&q, 0xaaaa, "a.test", 1232);
	q.b[9] = 1; /* NSCOUNT: the record goes before the OPT of the additional section */
	q.n -= 11;
	mb_rr(&q, DNS_TYPE_SOA, DNS_CLASS_IN, 22);
	mb_opt(&q, 1232);
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	assert_true(udp_wait(fd, ans, sizeof(ans), 1000) > 0);
	assert_int_equal(dns_get16(ans), 0xaaaa);
	assert_int_equal(rcode_of(ans), DNS_RCODE_FORMERR);
	/* and a good one still works, with more than OPT in the additional section (a TSIG) */
	build_query(&q, 0x8888, "a.test", 1232);
	q.b[11] = 2; /* ARCOUNT */
	mb_rr(&q, 250, 255, 8); /* TSIG, class ANY (RFC 8945) */
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	assert_true(udp_wait(fd, ans, sizeof(ans), 3000) > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_NOERROR);
	assert_true(metric(&g_fwd, "egress_dns_malformed_total{from=\"client\"}") == 5);
	assert_int_equal(fake_get(0).n_udp + fake_get(1).n_udp, 1);
	close(fd);
	fwd_stop(&g_fwd);
}

/* "::" serves IPv4 and IPv6 clients from the address they asked; [dns] upstream over ::1. */
static void test_dual_stack(void **state)
{
	uint8_t ans[512];
	ssize_t n;

	(void)state;
	fwd_start(&g_fwd, "[dns]\naddress = ::\nport = 5354\nupstream = ::1\ncache_size = 0\n");
	/* connected client sockets take answers only from the address they sent to */
	n = ask_at("127.0.0.1", PORT, 1, "a.test", 0, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	assert_int_equal(answer_tag(ans, (size_t)n), 6);
	n = ask_at("127.0.0.4", PORT, 2, "a.test", 0, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	assert_int_equal(answer_tag(ans, (size_t)n), 6);
	n = ask_at("::1", PORT, 3, "a.test", 0, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	assert_int_equal(answer_tag(ans, (size_t)n), 6);
	assert_int_equal(fake_get(2).n_udp, 3);
	assert_true(metric(&g_fwd, "egress_dns_upstream_queries_total{uplink=\"\","
				 "transport=\"udp\"}") == 3);
	/* a port nobody listens on: no answer */
	n = ask_at("::1", PORT + 1, 4, "a.test", 0, ans, sizeof(ans), 100);
	assert_int_equal(n, -1);
	fwd_stop(&g_fwd);
}

/* Only usable uplinks carry queries; none usable: SERVFAIL at once. */
static void test_uplink_state(void **state)
{
	uint8_t ans[512];
	char name[32];
	ssize_t n;
	uint64_t t0;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	uplink_transition(&g_fwd.set, uplink_find(&g_fwd.set, "isp1"), UPLINK_DOWN, "test");
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "u%d.test", i);
		n = ask((uint16_t)i, name, 0, ans, sizeof(ans));
		assert_true(n > 0);
		assert_int_equal(answer_tag(ans, (size_t)n), 3);
	}
	assert_int_equal(fake_get(0).n_udp, 0);
	assert_int_equal(fake_get(1).n_udp, 5);
	struct fake s1 = fake_get(1);
	char src[ADDR_STRLEN];
	assert_string_equal(addr_str(&s1.last_src, src, sizeof(src)), "127.0.0.6");

	uplink_transition(&g_fwd.set, uplink_find(&g_fwd.set, "isp2"), UPLINK_DOWN, "test");
	t0 = now_ms();
	n = ask(9, "u9.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
	assert_true(now_ms() - t0 < 250);
	assert_int_equal(fake_get(1).n_udp, 5);

	/* degraded still counts as usable */
	uplink_transition(&g_fwd.set, uplink_find(&g_fwd.set, "isp1"), UPLINK_DEGRADED, "test");
	n = ask(10, "u10.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(answer_tag(ans, (size_t)n), 2);

	/* an uplink going down moves its waiting queries on at once */
	fake_silent(0, true);
	int fd = client_udp("127.0.0.1", PORT);
	struct mb q;
	build_query(&q, 11, "u11.test", 0);
	assert_int_equal(send(fd, q.b, q.n, 0), (ssize_t)q.n);
	pump(30);
	assert_int_equal(fake_get(0).n_udp, 2); /* isp1 has it, isp2 is down */
	uplink_transition(&g_fwd.set, uplink_find(&g_fwd.set, "isp2"), UPLINK_UP, "test");
	t0 = now_ms();
	uplink_transition(&g_fwd.set, uplink_find(&g_fwd.set, "isp1"), UPLINK_DOWN, "test");
	n = udp_wait(fd, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	assert_true(now_ms() - t0 < 250);
	assert_int_equal(rcode_of(ans), DNS_RCODE_NOERROR);
	assert_int_equal(answer_tag(ans, (size_t)n), 3);
	assert_int_equal(fake_get(1).n_udp, 6);
	assert_true(metric(&g_fwd, "egress_dns_upstream_timeouts_total{uplink=\"isp1\"}") < 1);
	close(fd);
	fwd_stop(&g_fwd);
}

/* SO_BINDTODEVICE: an uplink on lo reaches the resolver, one on a veth does not. */
static void test_bind_device(void **state)
{
	char *const add[] = {
		"ip", "link", "add", "egdns0", "type", "veth", "peer", "name", "egdns1", NULL};
	char *const up[] = {"ip", "link", "set", "egdns0", "up", NULL};
	uint8_t ans[512];
	ssize_t n;
	int status;

	(void)state;
	free(kt_run_capture(-1, add, false, &status));
	assert_int_equal(status, 0);
	free(kt_run_capture(-1, up, false, &status));
	assert_int_equal(status, 0);
	fwd_start(&g_fwd, "[uplink lo]\ninterface = lo\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\ntimeout = 200ms\nattempts = 1\n");
	n = ask(1, "a.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(answer_tag(ans, (size_t)n), 2);
	fwd_stop(&g_fwd);

	fwd_start(&g_fwd, "[uplink d]\ninterface = egdns0\ndns = 127.0.0.2\n"
		      "[dns]\naddress = 127.0.0.1\nport = 5354\ntimeout = 200ms\nattempts = 1\n");
	n = ask(2, "a.test", 0, ans, sizeof(ans));
	assert_true(n > 0);
	assert_int_equal(rcode_of(ans), DNS_RCODE_SERVFAIL);
	assert_int_equal(fake_get(0).n_udp, 0);
	fwd_stop(&g_fwd);
}

/* Reload: a new port moves the listener, a taken one leaves the old in place. */
static void test_reconf(void **state)
{
	struct conf *c2, *c3;
	uint8_t ans[512];
	ssize_t n;
	int blocker;

	(void)state;
	fwd_start(&g_fwd, base_conf);
	c2 = conf_from("[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		       "[uplink isp2]\nsource = 127.0.0.6\ndns = 127.0.0.3\n"
		       "[dns]\naddress = 127.0.0.1\nport = 5355\ntcp = no\n");
	assert_int_equal(dns_module_reconf(g_fwd.m, c2), 0);
	n = ask_at("127.0.0.1", PORT + 1, 1, "a.test", 0, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	n = ask_at("127.0.0.1", PORT, 2, "a.test", 0, ans, sizeof(ans), 100);
	assert_int_equal(n, -1);

	/* 5356 is taken: the reload fails and 5355 stays */
	blocker = bind_socket("127.0.0.1", PORT + 2, SOCK_DGRAM);
	c3 = conf_from("[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
		       "[dns]\naddress = 127.0.0.1\nport = 5356\n");
	assert_int_equal(dns_module_reconf(g_fwd.m, c3), -EADDRINUSE);
	n = ask_at("127.0.0.1", PORT + 1, 3, "b.test", 0, ans, sizeof(ans), 3000);
	assert_true(n > 0);
	close(blocker);
	fwd_stop(&g_fwd);
	conf_free(c2);
	conf_free(c3);
}

/*
 * workers = 2: both sockets of the SO_REUSEPORT group answer (64 client sockets: all on one
 * worker once in 2^63), the cache is one for both (one upstream query for 64 questions),
 * and the counters add up exactly; a reload to 3 workers starts them again and they answer.
 */
static void test_workers(void **state)
{
	const char *text = "[uplink isp1]\nsource = 127.0.0.5\ndns = 127.0.0.2\n"
			   "[dns]\naddress = 127.0.0.1\nport = 5354\nworkers = %d\n";
	char buf[256];
	uint8_t ans[512];
	struct conf *c3;

	(void)state;
	snprintf(buf, sizeof(buf), text, 2);
	fwd_start(&g_fwd, buf);
	for (int i = 0; i < 64; i++) {
		ssize_t n = ask((uint16_t)i, "w.test", 0, ans, sizeof(ans));

		assert_true(n > DNS_HEADER_LEN);
		assert_int_equal(dns_get16(ans), i);
		assert_int_equal(rcode_of(ans), DNS_RCODE_NOERROR);
	}
	assert_int_equal(fake_get(0).n_udp, 1);
	assert_true(metric(&g_fwd, "egress_dns_worker_queries_total{worker=\"0\"}") > 0);
	assert_true(metric(&g_fwd, "egress_dns_worker_queries_total{worker=\"1\"}") > 0);
	assert_true(metric(&g_fwd, "egress_dns_worker_queries_total{worker=\"0\"}") +
			    metric(&g_fwd, "egress_dns_worker_queries_total{worker=\"1\"}") ==
		    64);
	assert_true(metric(&g_fwd, "egress_dns_queries_total{transport=\"udp\"}") == 64);
	assert_true(metric(&g_fwd, "egress_dns_answers_total{transport=\"udp\"}") == 64);
	assert_true(metric(&g_fwd, "egress_dns_cache_hits_total") == 63);
	assert_true(metric(&g_fwd, "egress_dns_cache_misses_total") == 1);
	assert_true(metric(&g_fwd, "egress_dns_cache_entries") == 1);

	snprintf(buf, sizeof(buf), text, 3);
	c3 = conf_from(buf);
	assert_int_equal(dns_module_reconf(g_fwd.m, c3), 0);
	for (int i = 0; i < 16; i++)
		assert_true(ask((uint16_t)i, "w.test", 0, ans, sizeof(ans)) > DNS_HEADER_LEN);
	/* counted on: the workers that left gave their counts in */
	assert_true(metric(&g_fwd, "egress_dns_queries_total{transport=\"udp\"}") == 80);
	assert_true(metric(&g_fwd, "egress_dns_cache_hits_total") == 79);
	fwd_stop(&g_fwd);
	conf_free(c3);
}

/* ------------------------------------------------------------ setup */

static int teardown(void **state)
{
	(void)state;
	if (g_fwd_active)
		fwd_stop(&g_fwd);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (these tests need root)\n",
			strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0)
		return -1;
	log_init("test_dns_kernel", true,
		getenv("DNS_TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	for (int i = 0; i < N_FAKES; i++) {
		g_fakes[i].udp = bind_socket(g_fakes[i].addr, 53, SOCK_DGRAM);
		g_fakes[i].tcp = bind_socket(g_fakes[i].addr, 53, SOCK_STREAM);
	}
	g_spoof = bind_socket("127.0.0.9", 53, SOCK_DGRAM);
	if (pipe2(g_stop, O_CLOEXEC) < 0)
		return -1;
	if (pthread_create(&g_thread, NULL, fake_thread, NULL))
		return -1;
	g_base = event_base_new();
	return g_base ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (write(g_stop[1], "x", 1) == 1)
		pthread_join(g_thread, NULL);
	event_base_free(g_base);
	for (int i = 0; i < N_FAKES; i++) {
		close(g_fakes[i].udp);
		close(g_fakes[i].tcp);
	}
	close(g_spoof);
	close(g_stop[0]);
	close(g_stop[1]);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_udp_and_cache, teardown),
		cmocka_unit_test_teardown(test_watch, teardown),
		cmocka_unit_test_teardown(test_big_answer, teardown),
		cmocka_unit_test_teardown(test_upstream_tc, teardown),
		cmocka_unit_test_teardown(test_wrong_answers, teardown),
		cmocka_unit_test_teardown(test_timeout_failover, teardown),
		cmocka_unit_test_teardown(test_servfail_retry, teardown),
		cmocka_unit_test_teardown(test_pending_bound, teardown),
		cmocka_unit_test_teardown(test_tcp_pipelined, teardown),
		cmocka_unit_test_teardown(test_tcp_bounds, teardown),
		cmocka_unit_test_teardown(test_tcp_trickle, teardown),
		cmocka_unit_test_teardown(test_malformed, teardown),
		cmocka_unit_test_teardown(test_dual_stack, teardown),
		cmocka_unit_test_teardown(test_uplink_state, teardown),
		cmocka_unit_test_teardown(test_bind_device, teardown),
		cmocka_unit_test_teardown(test_reconf, teardown),
		cmocka_unit_test_teardown(test_workers, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
