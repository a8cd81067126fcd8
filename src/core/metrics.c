/*
 * metrics.c - Prometheus metrics registry, text exposition format 0.0.4 and its HTTP endpoint.
 *
 * Series live in a per-family array kept sorted by label values: lookups are a binary search,
 * rendering walks the array in order, and an insertion moves pointers, which is cheap for the
 * hundreds of series a gateway has.  Handles are reference-counted so that removing a series
 * (a gateway that went away) never leaves a module holding a dangling pointer.
 *
 * Must not block the loop, log above debug level, or keep global state; the HTTP side only
 * ever answers GET and HEAD, and bounds what a client may send.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/* Bounds on what an HTTP client may send: a scrape is one small GET. */
#define METRICS_MAX_HEAD       8192
#define METRICS_MAX_BODY       1024
#define METRICS_TIMEOUT_S      10
#define METRICS_LISTEN_BACKLOG 64
#define METRICS_ALL_METHODS                                                                        \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
		EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

const char *const metric_type_name[_METRIC_TYPE_MAX] = {
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
	[METRIC_HISTOGRAM] = "histogram",
};

const double metrics_default_buckets[11] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

struct metric_series {
	struct metric_family *family;
	char **values;		    /* family->n_labels strings, owned */
	unsigned refs;		    /* handles held */
	bool linked;		    /* in family->series; false once removed */
	struct metric_series *next; /* in the registry's detached list while !linked */
	double value;		    /* counter, gauge; histogram: sum */
	uint64_t count;		    /* histogram: observations */
	uint64_t buckets[];	    /* histogram: per bound, not cumulative */
};

struct metric_family {
	struct metrics *m;
	enum metric_type type;
	char *name;
	char *help; /* never empty */
	char **labels;
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	struct metric_series **series; /* sorted by values */
	size_t n_series;
	size_t cap_series;
};

struct scrape_hook {
	metrics_scrape_cb cb;
	void *arg;
};

struct metrics {
	struct metric_family **families; /* registration order */
	size_t n_families;
	struct scrape_hook *hooks;
	size_t n_hooks;
	bool scraping;
	struct metric_series *detached; /* removed series whose handles are still held */
};

struct metrics_server {
	struct metrics *m;
	struct evhttp *http;
	uint16_t port;
};

/* ---------------------------------------------------------------- validation */

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool metric_name_valid(const char *s)
{
	if (!s || !*s || is_digit(*s))
		return false;
	for (; *s; s++)
		if (!is_alpha_(*s) && !is_digit(*s) && *s != ':')
			return false;
	return true;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus itself). */
static bool label_name_valid(const char *s)
{
	if (!s || !*s || is_digit(*s) || (s[0] == '_' && s[1] == '_'))
		return false;
	for (; *s; s++)
		if (!is_alpha_(*s) && !is_digit(*s))
			return false;
	return true;
}

static int values_check(const struct metric_family *f, const char *const *values, size_t n)
{
	if (!f || n != f->n_labels || (n && !values))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!values[i] || !utf8_valid(values[i], strlen(values[i])))
			return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- families */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static struct metric_series *series_alloc(struct metric_family *f, const char *const *values)
{
	struct metric_series *s =
		xcalloc(1, sizeof(*s) + (f->type == METRIC_HISTOGRAM ? f->n_bounds : 0) *
						sizeof(s->buckets[0]));

	s->family = f;
	s->linked = true;
	s->values = xcalloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
	for (size_t i = 0; i < f->n_labels; i++)
		s->values[i] = xstrdup(values[i]);
	return s;
}

static void series_free(struct metric_series *s)
{
	strv_free(s->values, s->family->n_labels);
	free(s);
}

static void series_reset(struct metric_series *s)
{
	s->value = 0;
	s->count = 0;
	if (s->family->type == METRIC_HISTOGRAM)
		memset(s->buckets, 0, s->family->n_bounds * sizeof(s->buckets[0]));
}

/* Take s out of its family's array (the caller closes the gap): free it or keep it detached. */
static void series_unlink(struct metric_series *s)
{
	struct metrics *m = s->family->m;

	s->linked = false;
	if (s->refs == 0) {
		series_free(s);
		return;
	}
	s->next = m->detached;
	m->detached = s;
}

static void family_free(struct metric_family *f)
{
	for (size_t i = 0; i < f->n_series; i++)
		series_free(f->series[i]);
	free(f->series);
	strv_free(f->labels, f->n_labels);
	free(f->bounds);
	free(f->help);
	free(f->name);
	free(f);
}

/* The sample names f renders, into names[4] (pointers into buf); returns how many. */
static size_t family_sample_names(const char *name, enum metric_type type, char buf[][256])
{
	static const char *const suffix[] = {"", "_bucket", "_sum", "_count"};
	size_t n = type == METRIC_HISTOGRAM ? ARRAY_SIZE(suffix) : 1;

	for (size_t i = 0; i < n; i++)
		snprintf(buf[i], sizeof(buf[i]), "%s%s", name, suffix[i]);
	return n;
}

static bool names_collide(const char *a, enum metric_type ta, const char *b, enum metric_type tb)
{
	char na[4][256], nb[4][256];
	size_t ca = family_sample_names(a, ta, na);
	size_t cb = family_sample_names(b, tb, nb);

	for (size_t i = 0; i < ca; i++)
		for (size_t j = 0; j < cb; j++)
			if (streq(na[i], nb[j]))
				return true;
	return false;
}

static bool family_same(const struct metric_family *f, enum metric_type type, const char *help,
	const char *const *labels, size_t n_labels, const double *bounds, size_t n_bounds)
{
	if (f->type != type || !streq(f->help, help) || f->n_labels != n_labels ||
		f->n_bounds != n_bounds)
		return false;
	for (size_t i = 0; i < n_labels; i++)
		if (!streq(f->labels[i], labels[i]))
			return false;
	for (size_t i = 0; i < n_bounds; i++)
		if (f->bounds[i] != bounds[i])
			return false;
	return true;
}

static int family_register(struct metrics *m, enum metric_type type, const char *name,
	const char *help, const char *const *labels, const double *bounds, size_t n_bounds,
	struct metric_family **ret)
{
	struct metric_family *f;
	size_t n_labels = 0;

	if (!m || !metric_name_valid(name) || strlen(name) > 200)
		return -EINVAL;
	if (!help || !*help || !utf8_valid(help, strlen(help)))
		return -EINVAL;
	for (; labels && labels[n_labels]; n_labels++) {
		if (!label_name_valid(labels[n_labels]))
			return -EINVAL;
		if (type == METRIC_HISTOGRAM && streq(labels[n_labels], "le"))
			return -EINVAL;
		for (size_t j = 0; j < n_labels; j++)
			if (streq(labels[j], labels[n_labels]))
				return -EINVAL;
	}
	if (type == METRIC_HISTOGRAM) {
		if (!bounds) {
			bounds = metrics_default_buckets;
			n_bounds = ARRAY_SIZE(metrics_default_buckets);
		}
		/* A last +Inf is the implicit bucket, written out. */
		if (n_bounds && isinf(bounds[n_bounds - 1]) && bounds[n_bounds - 1] > 0)
			n_bounds--;
		for (size_t i = 0; i < n_bounds; i++)
			if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
				return -EINVAL;
	} else {
		n_bounds = 0;
	}

	for (size_t i = 0; i < m->n_families; i++) {
		f = m->families[i];
		if (streq(f->name, name) &&
			family_same(f, type, help, labels, n_labels, bounds, n_bounds)) {
			if (ret)
				*ret = f;
			return 0;
		}
		if (names_collide(f->name, f->type, name, type))
			return -EEXIST;
	}

	f = xcalloc(1, sizeof(*f));
	f->m = m;
	f->type = type;
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->n_labels = n_labels;
	f->labels = xcalloc(n_labels ? n_labels : 1, sizeof(char *));
	for (size_t i = 0; i < n_labels; i++)
		f->labels[i] = xstrdup(labels[i]);
	f->n_bounds = n_bounds;
	if (n_bounds) {
		f->bounds = xcalloc(n_bounds, sizeof(double));
		memcpy(f->bounds, bounds, n_bounds * sizeof(double));
	}
	/* A family without labels has exactly one series, from the start. */
	if (n_labels == 0) {
		f->cap_series = 1;
		f->series = xcalloc(1, sizeof(*f->series));
		f->series[0] = series_alloc(f, NULL);
		f->n_series = 1;
	}
	m->families = xrealloc(m->families, (m->n_families + 1) * sizeof(*m->families));
	m->families[m->n_families++] = f;
	if (ret)
		*ret = f;
	return 0;
}

int metrics_counter_new(struct metrics *m, const char *name, const char *help,
	const char *const *labels, struct metric_family **ret)
{
	return family_register(m, METRIC_COUNTER, name, help, labels, NULL, 0, ret);
}

int metrics_gauge_new(struct metrics *m, const char *name, const char *help,
	const char *const *labels, struct metric_family **ret)
{
	return family_register(m, METRIC_GAUGE, name, help, labels, NULL, 0, ret);
}

int metrics_histogram_new(struct metrics *m, const char *name, const char *help,
	const char *const *labels, const double *bounds, size_t n_bounds,
	struct metric_family **ret)
{
	return family_register(m, METRIC_HISTOGRAM, name, help, labels, bounds, n_bounds, ret);
}

const char *metric_family_name(const struct metric_family *f)
{
	return f->name;
}

enum metric_type metric_family_type(const struct metric_family *f)
{
	return f->type;
}

size_t metric_family_series_count(const struct metric_family *f)
{
	return f->n_series;
}

/* ---------------------------------------------------------------- series lookup */

static int values_cmp(const char *const *a, char *const *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = strcmp(a[i], b[i]);

		if (c)
			return c < 0 ? -1 : 1;
	}
	return 0;
}

/* Index of the series with these values, or where it would be inserted; *found says which. */
static size_t series_find(const struct metric_family *f, const char *const *values, bool *found)
{
	size_t lo = 0, hi = f->n_series;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = values_cmp(values, f->series[mid]->values, f->n_labels);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

/* The series of values (checked by the caller), created if absent; borrowed from f. */
static struct metric_series *series_get(struct metric_family *f, const char *const *values)
{
	struct metric_series *s;
	bool found;
	size_t i = series_find(f, values, &found);

	if (found)
		return f->series[i];
	if (f->n_series == f->cap_series) {
		f->cap_series = f->cap_series ? 2 * f->cap_series : 8;
		f->series = xrealloc(f->series, f->cap_series * sizeof(*f->series));
	}
	s = series_alloc(f, values);
	memmove(&f->series[i + 1], &f->series[i], (f->n_series - i) * sizeof(*f->series));
	f->series[i] = s;
	f->n_series++;
	return s;
}

static void series_remove_at(struct metric_family *f, size_t i)
{
	struct metric_series *s = f->series[i];

	memmove(&f->series[i], &f->series[i + 1], (f->n_series - i - 1) * sizeof(*f->series));
	f->n_series--;
	series_unlink(s);
}

/* ---------------------------------------------------------------- updates */

static int series_add(struct metric_series *s, double v)
{
	if (!s->linked)
		return -ENOENT;
	switch (s->family->type) {
	case METRIC_COUNTER:
		if (!isfinite(v) || v < 0)
			return -EINVAL;
		break;
	case METRIC_GAUGE:
		break;
	default:
		return -EINVAL;
	}
	s->value += v;
	return 0;
}

static int series_set(struct metric_series *s, double v)
{
	if (!s->linked)
		return -ENOENT;
	if (s->family->type != METRIC_GAUGE)
		return -EINVAL;
	s->value = v;
	return 0;
}

static int series_observe(struct metric_series *s, double v)
{
	struct metric_family *f = s->family;
	size_t i = 0;

	if (!s->linked)
		return -ENOENT;
	if (f->type != METRIC_HISTOGRAM || !isfinite(v))
		return -EINVAL;
	/* Bucket i counts bounds[i - 1] < v <= bounds[i]; i == n_bounds is (last, +Inf). */
	while (i < f->n_bounds && v > f->bounds[i])
		i++;
	if (i < f->n_bounds)
		s->buckets[i]++;
	s->count++;
	s->value += v;
	return 0;
}

/*
 * Check the type before looking up, so that a mistyped call does not create an empty series
 * as a side effect.
 */
static int lookup_typed(struct metric_family *f, const char *const *values, size_t n,
	unsigned types, struct metric_series **ret)
{
	int r = values_check(f, values, n);

	if (r < 0)
		return r;
	if (!(types & (1u << f->type)))
		return -EINVAL;
	*ret = series_get(f, values);
	return 0;
}

#define T(t) (1u << (t))

int metrics_counter_addv(struct metric_family *f, double v, const char *const *values, size_t n)
{
	struct metric_series *s;
	int r;

	if (!isfinite(v) || v < 0)
		return -EINVAL;
	r = lookup_typed(f, values, n, T(METRIC_COUNTER), &s);
	return r < 0 ? r : series_add(s, v);
}

int metrics_gauge_setv(struct metric_family *f, double v, const char *const *values, size_t n)
{
	struct metric_series *s;
	int r = lookup_typed(f, values, n, T(METRIC_GAUGE), &s);

	return r < 0 ? r : series_set(s, v);
}

int metrics_gauge_addv(struct metric_family *f, double v, const char *const *values, size_t n)
{
	struct metric_series *s;
	int r = lookup_typed(f, values, n, T(METRIC_GAUGE), &s);

	return r < 0 ? r : series_add(s, v);
}

int metrics_histogram_observev(
	struct metric_family *f, double v, const char *const *values, size_t n)
{
	struct metric_series *s;
	int r;

	if (!isfinite(v))
		return -EINVAL;
	r = lookup_typed(f, values, n, T(METRIC_HISTOGRAM), &s);
	return r < 0 ? r : series_observe(s, v);
}

int metrics_valuev(struct metric_family *f, const char *const *values, size_t n, double *ret)
{
	bool found;
	size_t i;
	int r = values_check(f, values, n);

	if (r < 0)
		return r;
	if (f->type == METRIC_HISTOGRAM)
		return -EINVAL;
	i = series_find(f, values, &found);
	if (!found)
		return -ENOENT;
	*ret = f->series[i]->value;
	return 0;
}

int metrics_removev(struct metric_family *f, const char *const *values, size_t n)
{
	bool found;
	size_t i;
	int r = values_check(f, values, n);

	if (r < 0)
		return r;
	i = series_find(f, values, &found);
	if (!found)
		return -ENOENT;
	if (f->n_labels == 0)
		series_reset(f->series[i]);
	else
		series_remove_at(f, i);
	return 0;
}

int metrics_remove_where(struct metric_family *f, const char *label, const char *value)
{
	size_t li, i = 0;
	int removed = 0;

	if (!f || !label || !value)
		return -EINVAL;
	for (li = 0; li < f->n_labels; li++)
		if (streq(f->labels[li], label))
			break;
	if (li == f->n_labels)
		return -EINVAL;
	while (i < f->n_series) {
		if (streq(f->series[i]->values[li], value)) {
			series_remove_at(f, i);
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

void metrics_clear(struct metric_family *f)
{
	if (!f)
		return;
	if (f->n_labels == 0) {
		series_reset(f->series[0]);
		return;
	}
	while (f->n_series)
		series_remove_at(f, f->n_series - 1);
}

/* ---------------------------------------------------------------- handles */

int metrics_series_getv(
	struct metric_family *f, const char *const *values, size_t n, struct metric_series **ret)
{
	struct metric_series *s;
	int r = values_check(f, values, n);

	if (r < 0)
		return r;
	s = series_get(f, values);
	s->refs++;
	*ret = s;
	return 0;
}

void metrics_series_put(struct metric_series *s)
{
	struct metric_series **p;

	if (!s)
		return;
	if (s->refs == 0)
		fatalx("metrics: %s: series handle released more often than taken",
			s->family->name);
	if (--s->refs > 0 || s->linked)
		return;
	for (p = &s->family->m->detached; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	series_free(s);
}

int metrics_series_add(struct metric_series *s, double v)
{
	return s ? series_add(s, v) : -EINVAL;
}

int metrics_series_set(struct metric_series *s, double v)
{
	return s ? series_set(s, v) : -EINVAL;
}

int metrics_series_observe(struct metric_series *s, double v)
{
	return s ? series_observe(s, v) : -EINVAL;
}

int metrics_series_value(const struct metric_series *s, double *ret)
{
	if (!s || s->family->type == METRIC_HISTOGRAM)
		return -EINVAL;
	if (!s->linked)
		return -ENOENT;
	*ret = s->value;
	return 0;
}

/* ---------------------------------------------------------------- registry */

struct metrics *metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	/* Detached series first: freeing one reads its family's label count. */
	while (m->detached) {
		struct metric_series *s = m->detached;

		m->detached = s->next;
		series_free(s);
	}
	for (size_t i = 0; i < m->n_families; i++)
		family_free(m->families[i]);
	free(m->families);
	free(m->hooks);
	free(m);
}

int metrics_on_scrape(struct metrics *m, metrics_scrape_cb cb, void *arg)
{
	if (!m || !cb)
		return -EINVAL;
	if (m->scraping)
		return -EBUSY;
	m->hooks = xrealloc(m->hooks, (m->n_hooks + 1) * sizeof(*m->hooks));
	m->hooks[m->n_hooks++] = (struct scrape_hook){.cb = cb, .arg = arg};
	return 0;
}

int metrics_on_scrape_remove(struct metrics *m, metrics_scrape_cb cb, void *arg)
{
	if (!m)
		return -EINVAL;
	if (m->scraping)
		return -EBUSY;
	for (size_t i = 0; i < m->n_hooks; i++) {
		if (m->hooks[i].cb == cb && m->hooks[i].arg == arg) {
			memmove(&m->hooks[i], &m->hooks[i + 1],
				(m->n_hooks - i - 1) * sizeof(*m->hooks));
			m->n_hooks--;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---------------------------------------------------------------- exposition */

/*
 * Integers as integers ("3"), other values in the fewest digits that read back to the same
 * double ("0.1", not "0.10000000000000001"); NaN, +Inf, -Inf as Prometheus spells them.
 */
static const char *fmt_double(double v, char buf[32])
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	if (v == 0)
		return "0"; /* also -0 */
	if (v == trunc(v) && fabs(v) < 1e15) {
		snprintf(buf, 32, "%.0f", v);
		return buf;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* Label values escape \, " and newline; help text escapes \ and newline. */
static void put_escaped(FILE *out, const char *s, bool quotes)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '"' && quotes)
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

static void put_sample(FILE *out, const struct metric_family *f, const char *suffix,
	const struct metric_series *s, const char *le, double v)
{
	char buf[32];

	fputs(f->name, out);
	fputs(suffix, out);
	if (f->n_labels || le) {
		fputc('{', out);
		for (size_t i = 0; i < f->n_labels; i++) {
			fprintf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
			put_escaped(out, s->values[i], true);
			fputc('"', out);
		}
		if (le)
			fprintf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
		fputc('}', out);
	}
	fprintf(out, " %s\n", fmt_double(v, buf));
}

static void put_family(FILE *out, const struct metric_family *f)
{
	char buf[32];

	if (f->n_series == 0)
		return;
	fprintf(out, "# HELP %s ", f->name);
	put_escaped(out, f->help, false);
	fputc('\n', out);
	fprintf(out, "# TYPE %s %s\n", f->name, metric_type_name[f->type]);
	for (size_t i = 0; i < f->n_series; i++) {
		const struct metric_series *s = f->series[i];
		uint64_t acc = 0;

		if (f->type != METRIC_HISTOGRAM) {
			put_sample(out, f, "", s, NULL, s->value);
			continue;
		}
		for (size_t b = 0; b < f->n_bounds; b++) {
			acc += s->buckets[b];
			put_sample(
				out, f, "_bucket", s, fmt_double(f->bounds[b], buf), (double)acc);
		}
		put_sample(out, f, "_bucket", s, "+Inf", (double)s->count);
		put_sample(out, f, "_sum", s, NULL, s->value);
		put_sample(out, f, "_count", s, NULL, (double)s->count);
	}
}

int metrics_render(struct metrics *m, char **ret, size_t *ret_len)
{
	FILE *out;
	char *text = NULL;
	size_t len = 0;

	if (!m || !ret)
		return -EINVAL;
	if (m->scraping)
		return -EBUSY; /* a hook rendering would run the hooks forever */
	m->scraping = true;
	for (size_t i = 0; i < m->n_hooks; i++)
		m->hooks[i].cb(m, m->hooks[i].arg);
	m->scraping = false;

	out = open_memstream(&text, &len);
	if (!out)
		return -errno;
	for (size_t i = 0; i < m->n_families; i++)
		put_family(out, m->families[i]);
	if (fclose(out) != 0) {
		free(text);
		return -ENOMEM;
	}
	*ret = text;
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* ---------------------------------------------------------------- HTTP */

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *type,
	const char *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();

	if (!buf) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", type);
	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(buf, body, strlen(body));
	evhttp_send_reply(req, code, reason, buf);
	evbuffer_free(buf);
}

static bool method_ok(struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
		return true;
	reply_text(req, 405, "Method Not Allowed", "text/plain; charset=utf-8",
		"405 Method Not Allowed: use GET or HEAD\n");
	return false;
}

static void free_text_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);
}

void metrics_http_reply(struct metrics *m, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *buf;
	char *text, clen[24];
	size_t len;
	int r;

	if (!method_ok(req))
		return;
	r = metrics_render(m, &text, &len);
	if (r < 0) {
		log_debug("metrics: render: %s", strerror(-r));
		reply_text(req, 500, "Internal Server Error", "text/plain; charset=utf-8",
			"500 Internal Server Error\n");
		return;
	}
	buf = evbuffer_new();
	if (!buf) {
		free(text);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", METRICS_CONTENT_TYPE);
	/* HEAD: the length of what GET would send, and no body. */
	snprintf(clen, sizeof(clen), "%zu", len);
	evhttp_add_header(h, "Content-Length", clen);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD || len == 0 ||
		evbuffer_add_reference(buf, text, len, free_text_cb, NULL) < 0)
		free(text);
	evhttp_send_reply(req, HTTP_OK, "OK", buf);
	evbuffer_free(buf);
}

static const char index_html[] =
	"<!DOCTYPE html>\n"
	"<html><head><meta charset=\"utf-8\"><title>egressd</title></head>\n"
	"<body><h1>egressd</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

static void server_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_server *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (path && streq(path, "/metrics")) {
		metrics_http_reply(s->m, req);
	} else if (path && streq(path, "/")) {
		if (method_ok(req))
			reply_text(req, HTTP_OK, "OK", "text/html; charset=utf-8", index_html);
	} else {
		reply_text(req, HTTP_NOTFOUND, "Not Found", "text/plain; charset=utf-8",
			"404 Not Found\n");
	}
}

int metrics_serve(struct metrics *m, struct event_base *base, const char *addr, uint16_t port,
	struct metrics_server **ret)
{
	struct metrics_server *s = NULL;
	int fd = -1, r;

	if (!m || !base || !ret)
		return -EINVAL;
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	r = tcp_listen(addr, port, METRICS_LISTEN_BACKLOG, &fd, &s->port);
	if (r < 0)
		goto out;
	s->http = evhttp_new(base);
	if (!s->http) {
		r = -ENOMEM;
		goto out;
	}
	/* Take every method evhttp knows, so that we answer 405 rather than it 501. */
	evhttp_set_allowed_methods(s->http, METRICS_ALL_METHODS);
	evhttp_set_max_headers_size(s->http, METRICS_MAX_HEAD);
	evhttp_set_max_body_size(s->http, METRICS_MAX_BODY);
	evhttp_set_timeout(s->http, METRICS_TIMEOUT_S);
	evhttp_set_gencb(s->http, server_cb, s);
	/* From here on the listener owns fd and closes it with s->http. */
	errno = 0;
	if (!evhttp_accept_socket_with_handle(s->http, fd)) {
		r = errno ? -errno : -ENOMEM;
		goto out;
	}
	fd = -1;
	*ret = s;
	s = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	metrics_server_free(s);
	return r;
}

uint16_t metrics_server_port(const struct metrics_server *s)
{
	return s->port;
}

void metrics_server_free(struct metrics_server *s)
{
	if (!s)
		return;
	if (s->http)
		evhttp_free(s->http);
	free(s);
}
