/*
 * metrics.h - Prometheus metrics: a registry of counters, gauges and histograms, their text
 * exposition (format 0.0.4) and an HTTP endpoint on the event loop.
 *
 * A registry (struct metrics) owns metric families; a family has a type, a name, help text,
 * label names and, for histograms, bucket bounds; a family owns its series, one per tuple of
 * label values.  Modules register the families they report and update series by label values
 * or, on hot paths, through a handle (struct metric_series) that skips the lookup.  egressd's
 * route module keeps gateway-route-manager's metric names (gateway_health_check_total,
 * route_updates_total, ...), so dashboards and alerts written for it keep working.
 *
 * Rendering is stable so that it can be golden-tested: families in registration order, series
 * sorted by their label values (byte order, label by label), labels in the family's order.
 * Families with labels but no series are not rendered; a family without labels always has its
 * one series (starting at 0).
 *
 * Not thread-safe: everything runs on the loop's thread.  Nothing here logs above debug level;
 * every function returns 0 or -errno and leaves the registry unchanged on error.
 */
#ifndef EGRESS_METRICS_H
#define EGRESS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp_request;

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
	_METRIC_TYPE_MAX,
};

/* As written after "# TYPE name ". */
extern const char *const metric_type_name[_METRIC_TYPE_MAX];

/* Prometheus' default buckets (DefBuckets): .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10. */
extern const double metrics_default_buckets[11];

struct metrics;
struct metric_family;
struct metric_series;
struct metrics_server;

/* ---------------------------------------------------------------- registry */

/* A new, empty registry; the caller owns it. */
struct metrics *metrics_new(void);
/*
 * Free the registry with its families and series (also those whose handles are still held:
 * handles die with their registry).  Free its servers first.  NULL is accepted.
 */
void metrics_free(struct metrics *m);

/*
 * A NULL-terminated list of label names for the *_new() functions below:
 * METRICS_LABELS("gateway_ip", "status").  Pass NULL for a family without labels.
 */
#define METRICS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/*
 * Register a family; *ret (optional) is borrowed from the registry and valid until
 * metrics_free().  name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels (borrowed, copied)
 * [a-zA-Z_][a-zA-Z0-9_]* without a leading "__", distinct, and "le" is reserved in histograms.
 * help (copied) is required, non-empty UTF-8: every family renders its HELP and TYPE lines.
 * Registering the same family again (same type, help, labels and buckets) returns the existing
 * one, so a module restarted on reload finds its series again.  -EINVAL for a bad name, label
 * or bucket list; -EEXIST when the name, or a sample name it renders (a histogram's _bucket,
 * _sum and _count), is taken by a different family.
 */
int metrics_counter_new(struct metrics *m, const char *name, const char *help,
	const char *const *labels, struct metric_family **ret);
int metrics_gauge_new(struct metrics *m, const char *name, const char *help,
	const char *const *labels, struct metric_family **ret);
/*
 * bounds (borrowed, copied): n_bounds strictly increasing finite upper bounds; a last +Inf is
 * accepted and dropped (the +Inf bucket is always there).  bounds NULL: the default buckets.
 */
int metrics_histogram_new(struct metrics *m, const char *name, const char *help,
	const char *const *labels, const double *bounds, size_t n_bounds,
	struct metric_family **ret);

const char *metric_family_name(const struct metric_family *f);
enum metric_type metric_family_type(const struct metric_family *f);
size_t metric_family_series_count(const struct metric_family *f);

/* ---------------------------------------------------------------- updates by label values */

/*
 * Each function below takes the label values (borrowed; copied when a series is created) as
 * an array and its length; the macro of the same name without "v" takes them as arguments:
 *
 *	metrics_counter_add(health_checks, 1, "192.0.2.1", "success");
 *	metrics_gauge_set(active_gateways, 3);
 *
 * The number of values must equal the family's number of labels and each value must be
 * UTF-8 (-EINVAL otherwise); a series is created on first use.  Updates check the type:
 * -EINVAL for a counter operation on a gauge and so on.
 */
#define METRICS_VALUES_(...)                                                                       \
	((const char *const[]){NULL, ##__VA_ARGS__} + 1),                                          \
		(sizeof((const char *const[]){NULL, ##__VA_ARGS__}) / sizeof(const char *) - 1)

/* Counters only go up: v must be finite and >= 0 (-EINVAL). */
int metrics_counter_addv(struct metric_family *f, double v, const char *const *values, size_t n);
#define metrics_counter_add(f, v, ...) metrics_counter_addv((f), (v), METRICS_VALUES_(__VA_ARGS__))

/* Gauges take any value, NaN and infinities included. */
int metrics_gauge_setv(struct metric_family *f, double v, const char *const *values, size_t n);
#define metrics_gauge_set(f, v, ...) metrics_gauge_setv((f), (v), METRICS_VALUES_(__VA_ARGS__))
int metrics_gauge_addv(struct metric_family *f, double v, const char *const *values, size_t n);
#define metrics_gauge_add(f, v, ...) metrics_gauge_addv((f), (v), METRICS_VALUES_(__VA_ARGS__))

/* An observation must be finite (-EINVAL): one NaN would poison _sum for good. */
int metrics_histogram_observev(
	struct metric_family *f, double v, const char *const *values, size_t n);
#define metrics_histogram_observe(f, v, ...)                                                       \
	metrics_histogram_observev((f), (v), METRICS_VALUES_(__VA_ARGS__))

/* The value of a counter or gauge series; -ENOENT if there is none, -EINVAL for a histogram. */
int metrics_valuev(struct metric_family *f, const char *const *values, size_t n, double *ret);
#define metrics_value(f, ret, ...) metrics_valuev((f), METRICS_VALUES_(__VA_ARGS__), (ret))

/*
 * Remove one series (a gateway that went away); -ENOENT if there is none.  A family without
 * labels cannot lose its one series: removing it resets it to zero.
 */
int metrics_removev(struct metric_family *f, const char *const *values, size_t n);
#define metrics_remove(f, ...) metrics_removev((f), METRICS_VALUES_(__VA_ARGS__))
/*
 * Remove every series whose label `label` has value `value` (e.g. gateway_ip, whatever the
 * status).  Returns how many were removed, or -EINVAL for a label the family does not have.
 */
int metrics_remove_where(struct metric_family *f, const char *label, const char *value);
/* Remove every series of the family (a family without labels is reset to zero). */
void metrics_clear(struct metric_family *f);

/* ---------------------------------------------------------------- handles for hot paths */

/*
 * A handle to the series of these label values, created if needed; the caller owns a
 * reference and releases it with metrics_series_put().  Removing the series (metrics_remove,
 * metrics_remove_where, metrics_clear) detaches it: it is no longer rendered and updates
 * through the handle fail with -ENOENT, but the handle stays safe to use until put.
 */
int metrics_series_getv(
	struct metric_family *f, const char *const *values, size_t n, struct metric_series **ret);
#define metrics_series_get(f, ret, ...)                                                            \
	metrics_series_getv((f), METRICS_VALUES_(__VA_ARGS__), (ret))
/* Release a reference; frees a detached series with its last reference.  NULL is accepted. */
void metrics_series_put(struct metric_series *s);

/* Counter (v finite, >= 0) or gauge. */
int metrics_series_add(struct metric_series *s, double v);
/* Gauge only. */
int metrics_series_set(struct metric_series *s, double v);
/* Histogram only; v finite. */
int metrics_series_observe(struct metric_series *s, double v);
/* Counter or gauge; -ENOENT when detached. */
int metrics_series_value(const struct metric_series *s, double *ret);

/* ---------------------------------------------------------------- collection and rendering */

typedef void (*metrics_scrape_cb)(struct metrics *m, void *arg);

/*
 * Call cb(m, arg) before each rendering, in the order hooks were added, so a module can
 * refresh its gauges (current RTT, table sizes) lazily.  arg is borrowed.  A hook may update
 * and remove series but must not add or remove hooks (-EBUSY while scraping).
 */
int metrics_on_scrape(struct metrics *m, metrics_scrape_cb cb, void *arg);
/* Remove the hook added with the same cb and arg; -ENOENT if there is none. */
int metrics_on_scrape_remove(struct metrics *m, metrics_scrape_cb cb, void *arg);

/*
 * Run the scrape hooks, then render every family in the text exposition format 0.0.4.
 * *ret is NUL-terminated and owned by the caller (free()); *ret_len (optional) is its length.
 * -EBUSY from within a scrape hook.
 */
int metrics_render(struct metrics *m, char **ret, size_t *ret_len);

/* ---------------------------------------------------------------- HTTP */

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Answer req (owned by evhttp) with the metrics of m: GET and HEAD get 200 and the text,
 * other methods 405.  For mounting /metrics on another evhttp server (the API's).
 */
void metrics_http_reply(struct metrics *m, struct evhttp_request *req);

/*
 * Serve m (borrowed; must outlive the server) over HTTP on base: GET/HEAD /metrics, a link
 * page at /, 404 for other paths, 405 for other methods.  addr is a numeric IPv4 or IPv6
 * address ("0.0.0.0", "::" serves both families, "127.0.0.1"); NULL means "::", or "0.0.0.0"
 * where IPv6 is off.  port 0 picks a free port (see metrics_server_port()).  Request heads
 * are bounded in size and time.  *ret is owned by the caller.  -EINVAL for a bad address,
 * otherwise the socket's error (-EADDRINUSE, -EACCES, ...).
 */
int metrics_serve(struct metrics *m, struct event_base *base, const char *addr, uint16_t port,
	struct metrics_server **ret);
/* The port the server is bound to, in host order. */
uint16_t metrics_server_port(const struct metrics_server *s);
/* Close the listening socket and every connection.  NULL is accepted. */
void metrics_server_free(struct metrics_server *s);

#endif
