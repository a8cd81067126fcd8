/*
 * ctl_table.h - egressctl's output: aligned text tables, and the cells it makes of the API's
 * JSON (rates, times, durations, sizes).
 *
 * Pure: no I/O but the FILE it is given, so the unit tests see exactly what an operator sees.
 */
#ifndef EGRESS_CTL_TABLE_H
#define EGRESS_CTL_TABLE_H

#include <stdio.h>

#include <jansson.h>

/* How a JSON value becomes a cell. */
enum cell_fmt {
	CELL_TEXT,    /* strings as they are, numbers, true/false as yes/no, null as "-" */
	CELL_MS,      /* milliseconds: "12.3ms", "1.25s" */
	CELL_PCT,     /* a percentage: "0.5%" */
	CELL_RATIO,   /* 0..1 shown as a percentage: 0.25 -> "25%" */
	CELL_BYTES,   /* "512B", "1.5K", "3.2M" */
	CELL_BPS,     /* bits per second: "12Mbit/s", "1.5kbit/s" */
	CELL_SECS,    /* a duration in seconds: "42s", "3m05s", "2h01m", "3d04h" */
	CELL_TIME,    /* ms since the epoch, or ISO 8601 UTC text: local "2026-01-02 15:04:05" */
	CELL_ENABLED, /* true: "yes", false: "drained" */
	_CELL_FMT_MAX,
};

/* A column of a table made from JSON objects. */
struct ctl_column {
	const char *header;
	/* The member to show: "rtt_ms", a path "check.rtt_ms", or alternatives "rtt_ms|rtt"
	 * (the first present wins), or an address and its port "ip+port" ("[::1]:80"). */
	const char *key;
	enum cell_fmt fmt;
};

struct table;

/* A table of n_cols columns with these headers (copied; NULL: no header row). */
struct table *table_new(size_t n_cols, const char *const *headers);
void table_free(struct table *t);
/* Append a row of n_cols cells (copied; NULL shows as "-"). */
void table_add(struct table *t, const char *const *cells);
/* Columns separated by two spaces, each as wide as its widest cell; the last not padded;
 * cells of CELL_* numbers right-aligned when marked with table_align_right(). */
void table_align_right(struct table *t, size_t col);
void table_print(const struct table *t, FILE *f);

/* The value at key (see struct ctl_column) of obj, or NULL. */
json_t *ctl_json_get(json_t *obj, const char *key);
/* One value as a cell: buf, or a static string; never NULL. */
const char *ctl_cell(const json_t *v, enum cell_fmt fmt, char *buf, size_t size);

/*
 * The rows of a reply: the array itself, the array under member key of an object, or an
 * object of objects by name (each row then gets its "name" from its member name when it has
 * none).  Returns a new array (the caller owns it), or NULL when doc has none of these shapes.
 */
json_t *ctl_json_rows(json_t *doc, const char *key);

/* A table of these columns with a row per object of rows, printed to f. */
void ctl_print_rows(json_t *rows, const struct ctl_column *cols, size_t n_cols, FILE *f);
/* An object as "key: value" lines, keys aligned; nested objects and arrays as compact JSON. */
void ctl_print_object(json_t *obj, FILE *f);

#endif
