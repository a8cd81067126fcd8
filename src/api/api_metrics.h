/*
 * api_metrics.h - the REST API's own metrics: requests by route, method and status code,
 * their duration, the event streams open, logins by result, bearer tokens refused.
 *
 * Routes are labelled by their pattern ("/api/uplinks/{name}"), never by the path a
 * client sent, so a client cannot make series; paths that are no route share one label.
 */
#ifndef EGRESS_API_METRICS_H
#define EGRESS_API_METRICS_H

struct metrics;
struct metric_family;

/* The label of a request that matched no route (404, a bad path). */
#define API_METRICS_UNMATCHED "unmatched"
/* The label of the dashboard's files. */
#define API_METRICS_STATIC "static"

struct api_metrics {
	struct metric_family *requests, *seconds, *streams, *logins, *tokens;
};

/*
 * Register the families in m (borrowed; NULL: every call below does nothing).  A registry
 * that has them already (a server made again) gives them back with their series.  0 or
 * -errno (a name taken by another family).
 */
int api_metrics_init(struct api_metrics *am, struct metrics *m);

/* A request answered: route (a pattern or one of the labels above), method, status. */
void api_metrics_request(
	struct api_metrics *am, const char *route, const char *method, int status, double seconds);
/* The event streams open now. */
void api_metrics_streams(struct api_metrics *am, unsigned n);
/* A login: "success", "failure" or "rate_limited". */
void api_metrics_login(struct api_metrics *am, const char *result);
/* A bearer token refused: "unknown" (no such token) or "rate_limited" (not even looked up). */
void api_metrics_token_refused(struct api_metrics *am, const char *result);

#endif
