/*
 * api_metrics.c - the REST API's metrics (api_metrics.h): egress_api_requests_total,
 * egress_api_request_duration_seconds, egress_api_event_streams, egress_api_logins_total,
 * egress_api_tokens_refused_total.
 *
 * Must not: label anything by what a client sent (paths, user names), or log.
 */
#include <stdio.h>

#include "api_metrics.h"
#include "metrics.h"
#include "util.h"

static const char *const login_results[] = {"success", "failure", "rate_limited"};
static const char *const token_results[] = {"unknown", "rate_limited"};

int api_metrics_init(struct api_metrics *am, struct metrics *m)
{
	/* from half a millisecond (a status read) to seconds (a config applied) */
	static const double seconds[] = {
		0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
	int r = 0;

	*am = (struct api_metrics){0};
	if (!m)
		return 0;
	if (!r)
		r = metrics_counter_new(m, "egress_api_requests_total",
			"API requests answered, by route (its pattern; unmatched: no route, "
			"static: "
			"the dashboard's files), method and status code",
			METRICS_LABELS("route", "method", "code"), &am->requests);
	if (!r)
		r = metrics_histogram_new(m, "egress_api_request_duration_seconds",
			"Time from a request's arrival to its answer, by route",
			METRICS_LABELS("route"), seconds, ARRAY_SIZE(seconds), &am->seconds);
	if (!r)
		r = metrics_gauge_new(m, "egress_api_event_streams", "Event streams open now", NULL,
			&am->streams);
	if (!r)
		r = metrics_counter_new(m, "egress_api_logins_total",
			"Logins by result (rate_limited: refused before the password was checked)",
			METRICS_LABELS("result"), &am->logins);
	if (!r)
		r = metrics_counter_new(m, "egress_api_tokens_refused_total",
			"Requests refused for their bearer token, by result (unknown: no such "
			"token; rate_limited: too many failures from the address, not looked up)",
			METRICS_LABELS("result"), &am->tokens);
	if (r < 0) {
		*am = (struct api_metrics){0};
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(login_results); i++)
		metrics_counter_add(am->logins, 0, login_results[i]);
	for (size_t i = 0; i < ARRAY_SIZE(token_results); i++)
		metrics_counter_add(am->tokens, 0, token_results[i]);
	return 0;
}

void api_metrics_request(
	struct api_metrics *am, const char *route, const char *method, int status, double seconds)
{
	char code[12];

	if (!am->requests)
		return;
	snprintf(code, sizeof(code), "%d", status);
	metrics_counter_add(am->requests, 1, route, method, code);
	metrics_histogram_observe(am->seconds, seconds, route);
}

void api_metrics_streams(struct api_metrics *am, unsigned n)
{
	if (am->streams)
		metrics_gauge_set(am->streams, n);
}

void api_metrics_login(struct api_metrics *am, const char *result)
{
	if (am->logins)
		metrics_counter_add(am->logins, 1, result);
}

void api_metrics_token_refused(struct api_metrics *am, const char *result)
{
	if (am->tokens)
		metrics_counter_add(am->tokens, 1, result);
}
