/*
 * test_resolver.c - egress-server's resolver rules (src/server/resolver_core.c) on a fake
 * clock, with a fake store and canned DNS answers: the first resolution, TTL-driven
 * scheduling clamped, an address that leaves DNS kept for the grace period, reserved
 * addresses refused per address, failures keeping what was published, leadership,
 * bounded concurrency, entries added and deleted elsewhere, publishing retried.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resolver_core.h"
#include "util.h"

#define T0 1000000u /* ms on the fake clock */
#define S 1000u

static const struct rsv_opts opts = {
	.interval_ms = 60 * S,
	.ttl_min_ms = 5 * S,
	.ttl_max_ms = 3600 * S,
	.grace_ms = 600 * S,
	.concurrency = 8,
};

/* --- the fake store --- */

#define MAX_ENTRIES 16
#define MAX_ADDRS 8

struct fentry {
	int64_t id;
	const char *name;
	struct addr pub[MAX_ADDRS]; /* what the store publishes */
	size_t n_pub;
};

/* --- fake DNS: the queries asked, answered by the test --- */

#define MAX_QUERIES 64

struct fquery {
	struct rsv_query *q;
	char name[64];
	int family;
	bool open;     /* asked, not answered nor cancelled */
	bool cancelled;
};

static struct {
	bool leader;
	int leader_asked;
	struct fentry e[MAX_ENTRIES];
	size_t n;
	int entries_rc;
	int publish_rc;
	int publishes; /* calls of publish */
	struct fquery q[MAX_QUERIES];
	size_t nq;
} fk;

static struct fentry *fentry(int64_t id)
{
	for (size_t i = 0; i < fk.n; i++)
		if (fk.e[i].id == id)
			return &fk.e[i];
	return NULL;
}

static void fentry_add(int64_t id, const char *name)
{
	assert_true(fk.n < MAX_ENTRIES);
	fk.e[fk.n++] = (struct fentry){.id = id, .name = name};
}

static void fentry_del(int64_t id)
{
	struct fentry *e = fentry(id);

	assert_non_null(e);
	*e = fk.e[--fk.n];
}

static bool op_leader(void *arg)
{
	fk.leader_asked++;
	return fk.leader;
}

static int op_entries(void *arg, int (*cb)(void *ctx, int64_t entry, const char *name), void *ctx)
{
	if (fk.entries_rc)
		return fk.entries_rc;
	for (size_t i = 0; i < fk.n; i++) {
		int rc = cb(ctx, fk.e[i].id, fk.e[i].name);
		if (rc)
			return rc;
	}
	return 0;
}

static int op_published(void *arg, int64_t entry, struct addr **ret, size_t *n_ret)
{
	struct fentry *e = fentry(entry);

	*ret = NULL;
	*n_ret = 0;
	if (!e)
		return -ENOENT;
	if (e->n_pub) {
		*ret = xcalloc(e->n_pub, sizeof(**ret));
		memcpy(*ret, e->pub, e->n_pub * sizeof(**ret));
		*n_ret = e->n_pub;
	}
	return 0;
}

static int op_publish(void *arg, int64_t entry, const struct addr *addrs, size_t n)
{
	struct fentry *e = fentry(entry);

	fk.publishes++;
	if (fk.publish_rc)
		return fk.publish_rc;
	if (!e)
		return -ENOENT;
	assert_true(n <= MAX_ADDRS);
	memcpy(e->pub, addrs, n * sizeof(*addrs));
	e->n_pub = n;
	return 0;
}

static int op_query(void *arg, struct rsv_query *q, const char *name, int family, void **ret_io)
{
	struct fquery *f;

	assert_true(fk.nq < MAX_QUERIES);
	f = &fk.q[fk.nq];
	*f = (struct fquery){.q = q, .family = family, .open = true};
	snprintf(f->name, sizeof(f->name), "%s", name);
	*ret_io = f;
	fk.nq++;
	return 0;
}

static void op_cancel(void *arg, void *io)
{
	struct fquery *f = io;

	assert_true(f->open);
	f->open = false;
	f->cancelled = true;
}

static const struct rsv_ops ops = {
	.leader = op_leader,
	.entries = op_entries,
	.published = op_published,
	.publish = op_publish,
	.query = op_query,
	.cancel = op_cancel,
};

static int setup(void **state)
{
	memset(&fk, 0, sizeof(fk));
	fk.leader = true;
	*state = rsv_new(&opts, &ops, NULL);
	return 0;
}

static int teardown(void **state)
{
	rsv_free(*state);
	for (size_t i = 0; i < fk.nq; i++)
		assert_false(fk.q[i].open); /* every open query was cancelled */
	return 0;
}

/* --- helpers --- */

static struct addr A(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static size_t open_queries(void)
{
	size_t n = 0;

	for (size_t i = 0; i < fk.nq; i++)
		n += fk.q[i].open;
	return n;
}

/* The open query for name and family. */
static struct fquery *query_of(const char *name, int family)
{
	for (size_t i = 0; i < fk.nq; i++)
		if (fk.q[i].open && fk.q[i].family == family && streq(fk.q[i].name, name))
			return &fk.q[i];
	fail_msg("no open %s query for %s", family == AF_INET ? "A" : "AAAA", name);
	return NULL;
}

/* Answer name's open query of family with the addresses listed (NULL-terminated). */
static uint64_t answer(struct rsv *r, uint64_t now, const char *name, int family, uint32_t ttl,
	...)
{
	struct fquery *f = query_of(name, family);
	struct addr v[MAX_ADDRS];
	struct rsv_answer a = {.rcode = RSV_ANSWER, .addrs = v, .ttl = ttl};
	va_list ap;
	const char *s;

	va_start(ap, ttl);
	while ((s = va_arg(ap, const char *)))
		v[a.n++] = A(s);
	va_end(ap);
	f->open = false;
	return rsv_answer(r, f->q, &a, now);
}

static uint64_t answer_rcode(struct rsv *r, uint64_t now, const char *name, int family,
	enum rsv_rcode rcode, const char *error)
{
	struct fquery *f = query_of(name, family);
	struct rsv_answer a = {.rcode = rcode, .error = error};

	f->open = false;
	return rsv_answer(r, f->q, &a, now);
}

/* Entry id publishes exactly the addresses listed (NULL-terminated), in any order. */
static void assert_pub(int64_t id, ...)
{
	struct fentry *e = fentry(id);
	size_t n = 0;
	va_list ap;
	const char *s;

	assert_non_null(e);
	va_start(ap, id);
	while ((s = va_arg(ap, const char *))) {
		struct addr a = A(s);
		bool found = false;
		for (size_t i = 0; i < e->n_pub; i++)
			found |= addr_eq(&e->pub[i], &a);
		if (!found)
			fail_msg("entry %lld does not publish %s", (long long)id, s);
		n++;
	}
	va_end(ap);
	assert_int_equal(e->n_pub, n);
}

/* Status member key of entry id's status (borrowed from *keep, which the caller decrefs). */
static json_t *status_of(struct rsv *r, int64_t id, uint64_t now, json_t **keep)
{
	*keep = rsv_entry_status(r, id, now, 0);
	assert_non_null(*keep);
	return *keep;
}

/* Start: one domain entry, its first round asked. */
static void start_one(struct rsv *r, const char *name)
{
	fentry_add(1, name);
	rsv_run(r, T0);
	assert_int_equal(open_queries(), 2);
	query_of(name, AF_INET);
	query_of(name, AF_INET6);
}

/* --- tests --- */

static void test_first_resolution(void **state)
{
	struct rsv *r = *state;
	json_t *st, *a;
	uint64_t due;

	start_one(r, "example.com");
	due = answer(r, T0 + 20, "example.com", AF_INET, 300, "93.184.216.34", "93.184.216.35",
		NULL);
	assert_int_equal(fk.publishes, 0); /* the round is not over */
	due = answer(r, T0 + 30, "example.com", AF_INET6, 120, "2606:2800:220:1::1", NULL);
	assert_pub(1, "93.184.216.34", "93.184.216.35", "2606:2800:220:1::1", NULL);
	assert_int_equal(fk.publishes, 1);
	/* the lowest TTL is past the interval: the interval decides */
	assert_int_equal(due, T0 + 30 + 60 * S);
	assert_int_equal(rsv_run(r, T0 + 31), T0 + 60 * S); /* the next round comes first */
	assert_int_equal(open_queries(), 0);

	status_of(r, 1, T0 + 40, &st);
	assert_string_equal(json_string_value(json_object_get(st, "name")), "example.com");
	assert_int_equal(json_array_size(json_object_get(st, "addresses")), 3);
	a = json_array_get(json_object_get(st, "addresses"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "address")), "93.184.216.34");
	assert_int_equal(json_integer_value(json_object_get(a, "ttl")), 300);
	assert_non_null(json_object_get(a, "expires"));
	assert_null(json_object_get(a, "grace_until"));
	assert_true(json_is_null(json_object_get(st, "error")));
	assert_null(json_object_get(st, "publishes_nothing"));
	assert_non_null(json_string_value(json_object_get(st, "resolved_at")));
	json_decref(st);

	/* the next round at the interval asks again; the same answer publishes nothing new */
	rsv_run(r, T0 + 30 + 60 * S);
	assert_int_equal(open_queries(), 2);
	answer(r, T0 + 61 * S, "example.com", AF_INET, 300, "93.184.216.35", "93.184.216.34",
		NULL);
	answer(r, T0 + 61 * S, "example.com", AF_INET6, 120, "2606:2800:220:1::1", NULL);
	assert_int_equal(fk.publishes, 1);
	/* a domain that is not an entry has no status */
	assert_null(rsv_entry_status(r, 2, T0 + 61 * S, 0));
}

static void test_ttl_clamped(void **state)
{
	struct rsv *r = *state;
	uint64_t due;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 10, "93.184.216.34", NULL);
	due = answer_rcode(r, T0, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_int_equal(due, T0 + 10 * S); /* sooner than the interval: the TTL */
	assert_int_equal(rsv_run(r, T0 + 1), T0 + 10 * S);
	assert_int_equal(open_queries(), 0);
	rsv_run(r, T0 + 10 * S);
	assert_int_equal(open_queries(), 2);
	/* a TTL below ttl_min counts as ttl_min */
	answer(r, T0 + 10 * S, "example.com", AF_INET, 0, "93.184.216.34", NULL);
	due = answer_rcode(r, T0 + 10 * S, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_int_equal(due, T0 + 15 * S);
}

static void test_ttl_max(void **state)
{
	struct rsv_opts o = opts;
	struct rsv *r;
	json_t *st, *a;

	o.ttl_max_ms = 20 * S;
	o.interval_ms = 3600 * S;
	r = rsv_new(&o, &ops, NULL);
	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 86400, "93.184.216.34", NULL);
	assert_int_equal(answer_rcode(r, T0, "example.com", AF_INET6, RSV_NODATA, NULL),
		T0 + 20 * S);
	status_of(r, 1, T0, &st);
	a = json_array_get(json_object_get(st, "addresses"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "expires")),
		"1970-01-01T00:17:00.000Z"); /* T0 + 20 s, not its day */
	json_decref(st);
	rsv_free(r);
}

static void test_changed_address_grace(void **state)
{
	struct rsv *r = *state;
	uint64_t t = T0 + 60 * S, due;
	json_t *st, *addrs;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 300, "93.184.216.34", NULL);
	answer_rcode(r, T0, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_pub(1, "93.184.216.34", NULL);

	/* the record changes: the new address at once, the old one kept */
	rsv_run(r, t);
	answer(r, t, "example.com", AF_INET, 300, "93.184.216.99", NULL);
	due = answer_rcode(r, t, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_pub(1, "93.184.216.34", "93.184.216.99", NULL);
	assert_int_equal(due, t + 60 * S);
	status_of(r, 1, t, &st);
	addrs = json_object_get(st, "addresses");
	assert_int_equal(json_array_size(addrs), 2);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(addrs, 0), "grace_until")),
		"1970-01-01T00:27:40.000Z"); /* t + 600 s */
	assert_null(json_object_get(json_array_get(addrs, 0), "expires"));
	assert_non_null(json_object_get(json_array_get(addrs, 1), "expires"));
	json_decref(st);

	/* rounds go on; the old address stays to the end of its grace, then goes */
	for (t += 60 * S; t < T0 + 660 * S; t += 60 * S) {
		rsv_run(r, t);
		answer(r, t, "example.com", AF_INET, 300, "93.184.216.99", NULL);
		answer_rcode(r, t, "example.com", AF_INET6, RSV_NODATA, NULL);
		assert_pub(1, "93.184.216.34", "93.184.216.99", NULL);
	}
	assert_int_equal(t, T0 + 660 * S);
	rsv_run(r, t - 1);
	assert_pub(1, "93.184.216.34", "93.184.216.99", NULL);
	rsv_run(r, t);
	assert_pub(1, "93.184.216.99", NULL);
	answer(r, t, "example.com", AF_INET, 300, "93.184.216.99", NULL);
	answer_rcode(r, t, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_pub(1, "93.184.216.99", NULL);
}

static void test_address_back_in_grace(void **state)
{
	struct rsv *r = *state;
	uint64_t t = T0 + 60 * S;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 300, "93.184.216.34", NULL);
	answer(r, T0, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	rsv_run(r, t);
	answer(r, t, "example.com", AF_INET, 300, "93.184.216.99", NULL);
	answer(r, t, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	assert_pub(1, "93.184.216.34", "93.184.216.99", "2606:2800:220:1::1", NULL);
	/* it comes back before its grace ended: it stays, grace forgotten */
	t += 60 * S;
	rsv_run(r, t);
	answer(r, t, "example.com", AF_INET, 300, "93.184.216.34", NULL);
	answer(r, t, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	assert_pub(1, "93.184.216.34", "93.184.216.99", "2606:2800:220:1::1", NULL);
	for (t += 60 * S; t <= T0 + 900 * S; t += 60 * S) {
		rsv_run(r, t);
		answer(r, t, "example.com", AF_INET, 300, "93.184.216.34", NULL);
		answer(r, t, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	}
	/* .99 went at the end of its own grace; .34 and the IPv6 stayed throughout */
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
}

static void test_reserved_refused(void **state)
{
	struct rsv *r = *state;
	json_t *st, *refused;

	fentry_add(1, "internal.example.com");
	fentry_add(2, "mixed.example.com");
	rsv_run(r, T0);
	assert_int_equal(open_queries(), 4);
	answer(r, T0, "internal.example.com", AF_INET, 300, "10.1.2.3", "192.168.7.1", NULL);
	answer(r, T0, "internal.example.com", AF_INET6, 300, "fd00::1", NULL);
	answer(r, T0, "mixed.example.com", AF_INET, 300, "10.1.2.3", "93.184.216.34", NULL);
	answer(r, T0, "mixed.example.com", AF_INET6, 300, "::1", "2606:2800:220:1::1", NULL);

	assert_pub(1, NULL);
	assert_pub(2, "93.184.216.34", "2606:2800:220:1::1", NULL);
	status_of(r, 1, T0, &st);
	assert_string_equal(json_string_value(json_object_get(st, "publishes_nothing")),
		"resolves only to reserved addresses");
	assert_int_equal(json_array_size(json_object_get(st, "addresses")), 0);
	refused = json_object_get(st, "refused");
	assert_int_equal(json_array_size(refused), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(refused, 0),
				    "address")),
		"10.1.2.3");
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(refused, 0),
					 "why")),
		"private"));
	json_decref(st);
	status_of(r, 2, T0, &st);
	assert_null(json_object_get(st, "publishes_nothing"));
	assert_int_equal(json_array_size(json_object_get(st, "refused")), 2);
	json_decref(st);
	st = rsv_status(r, T0, 0);
	assert_int_equal(json_integer_value(json_object_get(st, "publishing_nothing")), 1);
	json_decref(st);
}

static void test_failures_keep_addresses(void **state)
{
	struct rsv *r = *state;
	uint64_t t = T0 + 60 * S, due;
	json_t *st;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 120, "93.184.216.34", NULL);
	answer(r, T0, "example.com", AF_INET6, 120, "2606:2800:220:1::1", NULL);
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);

	/* SERVFAIL and a timeout: nothing changes, the status says so, retried at ttl_min */
	rsv_run(r, t);
	answer_rcode(r, t, "example.com", AF_INET, RSV_FAILED, "server failed");
	due = answer_rcode(r, t, "example.com", AF_INET6, RSV_FAILED, "request timed out");
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
	assert_int_equal(due, t + 5 * S);
	status_of(r, 1, t, &st);
	assert_string_equal(json_string_value(json_object_get(st, "error")),
		"A: server failed; AAAA: request timed out");
	assert_int_equal(json_array_size(json_object_get(st, "addresses")), 2);
	json_decref(st);
	st = rsv_status(r, t, 0);
	assert_int_equal(json_integer_value(json_object_get(st, "failing")), 1);
	json_decref(st);

	/* failures in a row back off: 5 s, 10 s, 20 s, 40 s, then the interval */
	uint64_t gaps[] = {10, 20, 40, 60, 60};
	t += 5 * S;
	for (size_t i = 0; i < ARRAY_SIZE(gaps); i++) {
		rsv_run(r, t);
		answer_rcode(r, t, "example.com", AF_INET, RSV_FAILED, "server failed");
		due = answer_rcode(r, t, "example.com", AF_INET6, RSV_FAILED, "server failed");
		assert_int_equal(due, t + gaps[i] * S);
		t = due;
	}
	/* t = T0 + 255 s: the records (120 s) expired at T0 + 120 s, unconfirmed: they stay
	 * for the grace period from then, to T0 + 720 s */
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
	status_of(r, 1, t, &st);
	assert_string_equal(json_string_value(json_object_get(st, "error")),
		"A and AAAA: server failed");
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(st, "addresses"), 0), "grace_until")),
		"1970-01-01T00:28:40.000Z");
	json_decref(st);
	while (t < T0 + 720 * S) {
		rsv_run(r, t);
		answer_rcode(r, t, "example.com", AF_INET, RSV_FAILED, "server failed");
		t = answer_rcode(r, t, "example.com", AF_INET6, RSV_FAILED, "server failed");
		assert_true(t <= T0 + 720 * S);
		if (t < T0 + 720 * S)
			assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
	}
	t = rsv_run(r, T0 + 720 * S);
	assert_pub(1, NULL);

	/* it answers again: published at once, the error gone */
	assert_int_equal(t, T0 + 735 * S);
	rsv_run(r, t);
	answer(r, t, "example.com", AF_INET, 120, "93.184.216.34", NULL);
	answer_rcode(r, t, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_pub(1, "93.184.216.34", NULL);
	status_of(r, 1, t, &st);
	assert_true(json_is_null(json_object_get(st, "error")));
	json_decref(st);
}

static void test_nxdomain_starts_grace(void **state)
{
	struct rsv *r = *state;
	uint64_t t = T0 + 60 * S;
	json_t *st;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 3600, "93.184.216.34", NULL);
	answer(r, T0, "example.com", AF_INET6, 3600, "2606:2800:220:1::1", NULL);
	rsv_run(r, t);
	answer_rcode(r, t, "example.com", AF_INET, RSV_NXDOMAIN, NULL);
	answer_rcode(r, t, "example.com", AF_INET6, RSV_NXDOMAIN, NULL);
	/* the name left DNS: kept for the grace period from now, not the TTL */
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
	status_of(r, 1, t, &st);
	assert_string_equal(json_string_value(json_object_get(st, "error")),
		"name does not exist (NXDOMAIN)");
	json_decref(st);
	rsv_run(r, t + 600 * S - 1);
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
	rsv_run(r, t + 600 * S);
	assert_pub(1, NULL);
}

static void test_leadership(void **state)
{
	struct rsv *r = *state;
	json_t *st;
	uint64_t next;

	fk.leader = false;
	fentry_add(1, "example.com");
	next = rsv_run(r, T0);
	assert_int_equal(next, T0 + 5 * S);
	assert_int_equal(open_queries(), 0);
	assert_null(rsv_entry_status(r, 1, T0, 0));
	st = rsv_status(r, T0, 0);
	assert_false(json_is_true(json_object_get(st, "leader")));
	json_decref(st);
	rsv_entry_added(r, 1, "example.com", T0); /* not leading: ignored */
	rsv_run(r, T0 + 1000);
	assert_int_equal(open_queries(), 0);

	/* it leads: the next round starts resolving */
	fk.leader = true;
	rsv_run(r, T0 + 5 * S);
	assert_int_equal(open_queries(), 2);
	assert_true(rsv_leading(r));
	answer(r, T0 + 5 * S, "example.com", AF_INET, 300, "93.184.216.34", NULL);
	answer(r, T0 + 5 * S, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	/* each round asks again */
	assert_int_equal(fk.leader_asked, 2);
	rsv_run(r, T0 + 65 * S);
	assert_int_equal(fk.leader_asked, 3);
	assert_int_equal(open_queries(), 2);

	/* another replica took over: in-flight queries cancelled, nothing left */
	fk.leader = false;
	rsv_run(r, T0 + 125 * S);
	assert_int_equal(open_queries(), 0);
	assert_false(rsv_leading(r));
	assert_null(rsv_entry_status(r, 1, T0 + 125 * S, 0));
	/* what it published stays published (the new leader adopts it) */
	assert_pub(1, "93.184.216.34", "2606:2800:220:1::1", NULL);
}

static void test_adopts_published(void **state)
{
	struct rsv *r = *state;
	uint64_t t = T0;
	json_t *st;

	/* published by an earlier run or another replica */
	fentry_add(1, "example.com");
	fk.e[0].pub[0] = A("93.184.216.34");
	fk.e[0].pub[1] = A("2606:2800:220:1::1");
	fk.e[0].n_pub = 2;
	rsv_run(r, t);
	status_of(r, 1, t, &st);
	assert_int_equal(json_array_size(json_object_get(st, "addresses")), 2);
	assert_non_null(json_object_get(json_array_get(json_object_get(st, "addresses"), 0),
		"grace_until"));
	json_decref(st);
	answer(r, t, "example.com", AF_INET, 300, "93.184.216.99", NULL);
	answer(r, t, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	assert_pub(1, "93.184.216.34", "93.184.216.99", "2606:2800:220:1::1", NULL);
	for (t += 60 * S; t <= T0 + 600 * S; t += 60 * S) {
		rsv_run(r, t);
		answer(r, t, "example.com", AF_INET, 300, "93.184.216.99", NULL);
		answer(r, t, "example.com", AF_INET6, 300, "2606:2800:220:1::1", NULL);
	}
	assert_pub(1, "93.184.216.99", "2606:2800:220:1::1", NULL);
}

static void test_concurrency(void **state)
{
	struct rsv_opts o = opts;
	const char *names[] = {"a.example", "b.example", "c.example", "d.example", "e.example"};
	struct rsv *r;
	json_t *st;

	o.concurrency = 2;
	r = rsv_new(&o, &ops, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		fentry_add((int64_t)i + 1, names[i]);
	rsv_run(r, T0);
	assert_int_equal(open_queries(), 4);
	st = rsv_status(r, T0, 0);
	assert_int_equal(json_integer_value(json_object_get(st, "resolving")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "waiting")), 3);
	json_decref(st);
	/* half an answer frees no slot */
	answer(r, T0 + 10, "a.example", AF_INET, 300, "93.184.216.1", NULL);
	assert_int_equal(open_queries(), 3);
	answer_rcode(r, T0 + 10, "a.example", AF_INET6, RSV_NODATA, NULL);
	assert_int_equal(open_queries(), 4);
	query_of("c.example", AF_INET);
	for (size_t i = 1; i < ARRAY_SIZE(names); i++) {
		answer_rcode(r, T0 + 20, names[i], AF_INET, RSV_FAILED, "server failed");
		answer_rcode(r, T0 + 20, names[i], AF_INET6, RSV_FAILED, "server failed");
		assert_true(open_queries() <= 4);
	}
	assert_int_equal(open_queries(), 0);
	rsv_free(r);
}

static void test_entries_elsewhere(void **state)
{
	struct rsv *r = *state;
	json_t *st;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 3600, "93.184.216.34", NULL);
	answer(r, T0, "example.com", AF_INET6, 3600, "2606:2800:220:1::1", NULL);
	/* added through another replica: resolved from the next round on */
	fentry_add(2, "example.org");
	rsv_run(r, T0 + 30 * S);
	assert_int_equal(open_queries(), 0);
	rsv_run(r, T0 + 60 * S);
	query_of("example.org", AF_INET);
	/* deleted elsewhere while its query is out: forgotten at the next round */
	fentry_del(2);
	rsv_run(r, T0 + 120 * S);
	assert_null(rsv_entry_status(r, 2, T0 + 120 * S, 0));
	assert_int_equal(open_queries(), 2); /* example.com's; example.org's cancelled */
	query_of("example.com", AF_INET);
	/* added and deleted here: at once */
	fentry_add(3, "example.net");
	rsv_entry_added(r, 3, "example.net", T0 + 121 * S);
	rsv_run(r, T0 + 121 * S);
	query_of("example.net", AF_INET6);
	rsv_entry_deleted(r, 3);
	assert_null(rsv_entry_status(r, 3, T0 + 121 * S, 0));
	/* listing fails: the domains known stay */
	fk.entries_rc = -EIO;
	answer(r, T0 + 122 * S, "example.com", AF_INET, 3600, "93.184.216.34", NULL);
	answer(r, T0 + 122 * S, "example.com", AF_INET6, 3600, "2606:2800:220:1::1", NULL);
	rsv_run(r, T0 + 180 * S);
	json_decref(status_of(r, 1, T0 + 180 * S, &st));
	fk.entries_rc = 0;
}

static void test_publish_retried(void **state)
{
	struct rsv *r = *state;
	uint64_t due;

	start_one(r, "example.com");
	fk.publish_rc = -EIO;
	answer(r, T0, "example.com", AF_INET, 300, "93.184.216.34", NULL);
	due = answer_rcode(r, T0, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_int_equal(due, T0 + 5 * S);
	assert_pub(1, NULL);
	fk.publish_rc = 0;
	rsv_run(r, T0 + 5 * S - 1);
	assert_pub(1, NULL);
	rsv_run(r, T0 + 5 * S);
	assert_pub(1, "93.184.216.34", NULL);

	/* the entry was deleted meanwhile: forgotten */
	rsv_run(r, T0 + 60 * S);
	fentry_del(1);
	answer(r, T0 + 60 * S, "example.com", AF_INET, 300, "93.184.216.99", NULL);
	answer_rcode(r, T0 + 60 * S, "example.com", AF_INET6, RSV_NODATA, NULL);
	assert_null(rsv_entry_status(r, 1, T0 + 60 * S, 0));
}

static void test_reconfigured(void **state)
{
	struct rsv *r = *state;
	struct rsv_opts o = opts;

	start_one(r, "example.com");
	answer(r, T0, "example.com", AF_INET, 3600, "93.184.216.34", NULL);
	answer(r, T0, "example.com", AF_INET6, 3600, "2606:2800:220:1::1", NULL);
	o.interval_ms = 10 * S;
	rsv_set_opts(r, &o, T0 + 1 * S);
	assert_int_equal(rsv_run(r, T0 + 2 * S), T0 + 11 * S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_resolution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_address_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_back_in_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserved_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_keep_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nxdomain_starts_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leadership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopts_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigured, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
