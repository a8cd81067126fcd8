/*
 * ctl_table.c - aligned text tables and the cells egressctl makes of the API's JSON.
 *
 * What it must not do: talk to egressd or exit; it only formats.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "ctl_table.h"
#include "util.h"

struct table {
	size_t n_cols;
	size_t n_rows; /* the header included */
	size_t cap;
	char **cells; /* n_rows * n_cols */
	bool *right;  /* per column */
};

struct table *table_new(size_t n_cols, const char *const *headers)
{
	struct table *t = xcalloc(1, sizeof(*t));

	t->n_cols = n_cols;
	t->right = xcalloc(n_cols, sizeof(*t->right));
	if (headers)
		table_add(t, headers);
	return t;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

void table_add(struct table *t, const char *const *cells)
{
	if (t->n_rows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 8;
		t->cells = xrealloc(t->cells, t->cap * t->n_cols * sizeof(*t->cells));
	}
	for (size_t i = 0; i < t->n_cols; i++)
		t->cells[t->n_rows * t->n_cols + i] = xstrdup(cells[i] ? cells[i] : "-");
	t->n_rows++;
}

void table_align_right(struct table *t, size_t col)
{
	t->right[col] = true;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void table_print(const struct table *t, FILE *f)
{
	size_t *width = xcalloc(t->n_cols, sizeof(*width));

	for (size_t r = 0; r < t->n_rows; r++)
		for (size_t c = 0; c < t->n_cols; c++)
			width[c] = MAX(width[c], text_width(t->cells[r * t->n_cols + c]));
	for (size_t r = 0; r < t->n_rows; r++) {
		size_t n = t->n_cols;

		/* empty cells at the end of a row leave no trailing blanks */
		while (n > 1 && !t->cells[r * t->n_cols + n - 1][0] && !t->right[n - 1])
			n--;
		for (size_t c = 0; c < n; c++) {
			const char *s = t->cells[r * t->n_cols + c];
			int pad = (int)(width[c] - text_width(s));
			bool last = c + 1 == n;

			if (c)
				fputs("  ", f);
			if (t->right[c])
				fprintf(f, "%*s%s", pad, "", s);
			else
				fprintf(f, "%s%*s", s, last ? 0 : pad, "");
		}
		fputc('\n', f);
	}
	free(width);
}

json_t *ctl_json_get(json_t *obj, const char *key)
{
	char path[256];
	char *alt, *save = NULL;

	if (!json_is_object(obj) || strlen(key) >= sizeof(path))
		return NULL;
	strcpy(path, key);
	for (alt = strtok_r(path, "|", &save); alt; alt = strtok_r(NULL, "|", &save)) {
		json_t *v = obj;
		char *part, *save2 = NULL;

		for (part = strtok_r(alt, ".", &save2); part && v; part = strtok_r(NULL, ".", &save2))
			v = json_object_get(v, part);
		if (v)
			return v;
	}
	return NULL;
}

static const char *fmt_duration(double secs, char *buf, size_t size)
{
	uint64_t s = secs < 0 ? 0 : (uint64_t)(secs + 0.5);

	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

/* 1.5K, 3.2M, ...: powers of 1024, one decimal under 10. */
static const char *fmt_scaled(double v, double base, const char *const *units, size_t n_units,
	const char *suffix, char *buf, size_t size)
{
	size_t u = 0;

	while (fabs(v) >= base && u + 1 < n_units) {
		v /= base;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f%s%s", v, units[u], suffix);
	else
		snprintf(buf, size, fabs(v) < 10 ? "%.1f%s%s" : "%.0f%s%s", v, units[u], suffix);
	return buf;
}

/* An ISO 8601 UTC time as the API writes it ("2026-01-02T15:04:05.123Z") in local time;
 * another text as it is. */
static const char *fmt_utc_stamp(const char *stamp, char *buf, size_t size)
{
	struct tm tm = {0};
	const char *end = strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	time_t t;

	snprintf(buf, size, "%s", stamp);
	if (!end || (*end && *end != '.' && *end != 'Z'))
		return buf;
	t = timegm(&tm);
	if (!localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, size, "%s", stamp);
	return buf;
}

const char *ctl_cell(const json_t *v, enum cell_fmt fmt, char *buf, size_t size)
{
	static const char *const bytes[] = {"B", "K", "M", "G", "T"};
	static const char *const bits[] = {"", "k", "M", "G", "T"};
	double d;

	if (!v || json_is_null(v))
		return "-";
	if (json_is_boolean(v)) {
		if (fmt == CELL_ENABLED)
			return json_is_true(v) ? "yes" : "drained";
		return json_is_true(v) ? "yes" : "no";
	}
	if (json_is_string(v) && fmt == CELL_TIME)
		return fmt_utc_stamp(json_string_value(v), buf, size);
	if (json_is_string(v)) {
		snprintf(buf, size, "%s", json_string_value(v));
		return buf;
	}
	if (!json_is_number(v)) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(buf, size, "%s", s ? s : "?");
		free(s);
		return buf;
	}
	d = json_number_value(v);
	switch (fmt) {
	case CELL_MS:
		if (d < 1000)
			snprintf(buf, size, "%.1fms", d);
		else
			snprintf(buf, size, "%.2fs", d / 1000);
		return buf;
	case CELL_PCT:
		snprintf(buf, size, "%.*f%%", d != 0 && fabs(d) < 10 ? 1 : 0, d);
		return buf;
	case CELL_RATIO:
		snprintf(buf, size, "%.*f%%", d != 0 && fabs(d) < 0.1 ? 1 : 0, d * 100);
		return buf;
	case CELL_BYTES:
		return fmt_scaled(d, 1024, bytes, ARRAY_SIZE(bytes), "", buf, size);
	case CELL_BPS:
		return fmt_scaled(d, 1000, bits, ARRAY_SIZE(bits), "bit/s", buf, size);
	case CELL_SECS:
		return fmt_duration(d, buf, size);
	case CELL_TIME: {
		time_t t = (time_t)(d / 1000);
		struct tm tm;

		if (!localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(buf, size, "%.0f", d);
		return buf;
	}
	case CELL_TEXT:
	case CELL_ENABLED:
	case _CELL_FMT_MAX:
		break;
	}
	if (json_is_integer(v))
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		snprintf(buf, size, "%g", d);
	return buf;
}

json_t *ctl_json_rows(json_t *doc, const char *key)
{
	const char *name;
	json_t *v, *rows;

	if (json_is_array(doc))
		return json_incref(doc);
	if (!json_is_object(doc))
		return NULL;
	v = key ? json_object_get(doc, key) : NULL;
	if (json_is_array(v))
		return json_incref(v);
	if (json_is_object(v))
		doc = v;
	rows = json_array();
	json_object_foreach(doc, name, v) {
		if (!json_is_object(v)) {
			json_decref(rows);
			return NULL;
		}
		v = json_deep_copy(v);
		if (!json_object_get(v, "name"))
			json_object_set_new(v, "name", json_string(name));
		json_array_append_new(rows, v);
	}
	return rows;
}

/* "HOST+PORT": "192.0.2.1:80", "[2001:db8::1]:80", or the host alone without a port. */
static const char *host_port(json_t *row, const char *key, char *buf, size_t size)
{
	char host_key[64];
	const char *plus = strchr(key, '+');
	json_t *host, *port;
	const char *h;

	snprintf(host_key, sizeof(host_key), "%.*s", (int)(plus - key), key);
	host = ctl_json_get(row, host_key);
	port = ctl_json_get(row, plus + 1);
	if (!json_is_string(host))
		return "-";
	h = json_string_value(host);
	if (!json_is_integer(port))
		snprintf(buf, size, "%s", h);
	else
		snprintf(buf, size, strchr(h, ':') ? "[%s]:%" JSON_INTEGER_FORMAT
						   : "%s:%" JSON_INTEGER_FORMAT,
			h, json_integer_value(port));
	return buf;
}

void ctl_print_rows(json_t *rows, const struct ctl_column *cols, size_t n_cols, FILE *f)
{
	const char **cells = xcalloc(n_cols, sizeof(*cells));
	char(*bufs)[128] = xcalloc(n_cols, sizeof(*bufs));
	struct table *t;
	size_t i;
	json_t *row;

	for (size_t c = 0; c < n_cols; c++)
		cells[c] = cols[c].header;
	t = table_new(n_cols, cells);
	for (size_t c = 0; c < n_cols; c++)
		if (cols[c].fmt != CELL_TEXT && cols[c].fmt != CELL_TIME &&
			cols[c].fmt != CELL_ENABLED)
			table_align_right(t, c);
	json_array_foreach(rows, i, row) {
		for (size_t c = 0; c < n_cols; c++)
			cells[c] = strchr(cols[c].key, '+')
					   ? host_port(row, cols[c].key, bufs[c], sizeof(bufs[c]))
					   : ctl_cell(ctl_json_get(row, cols[c].key), cols[c].fmt,
						     bufs[c], sizeof(bufs[c]));
		table_add(t, cells);
	}
	table_print(t, f);
	table_free(t);
	free(bufs);
	free(cells);
}

void ctl_print_object(json_t *obj, FILE *f)
{
	const char *cells[2];
	const char *key;
	char buf[512];
	struct table *t;
	json_t *v;

	t = table_new(2, NULL);
	json_object_foreach(obj, key, v) {
		char label[128];

		snprintf(label, sizeof(label), "%s:", key);
		cells[0] = label;
		cells[1] = ctl_cell(v, CELL_TEXT, buf, sizeof(buf));
		table_add(t, cells);
	}
	table_print(t, f);
	table_free(t);
}
