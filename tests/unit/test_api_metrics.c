/*
 * test_api_metrics.c - the REST API's metrics (src/api/api_metrics.c): the families and
 * their labels as rendered, a registry that has them already, no registry at all.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_metrics.h"
#include "metrics.h"

static char *render(struct metrics *m)
{
	char *text = NULL;

	assert_int_equal(metrics_render(m, &text, NULL), 0);
	return text;
}

static void expect_in(const char *text, const char *line)
{
	assert_non_null(text);
	if (!strstr(text, line))
		print_error("no \"%s\" in:\n%s\n", line, text);
	assert_non_null(strstr(text, line));
}

static void test_families(void **state)
{
	struct metrics *m = metrics_new();
	struct api_metrics am, again;
	char *text;

	(void)state;
	assert_int_equal(api_metrics_init(&am, m), 0);
	text = render(m);
	/* before any request: the streams and the logins show zeros, the requests nothing */
	expect_in(text, "# TYPE egress_api_event_streams gauge\negress_api_event_streams 0\n");
	expect_in(text, "egress_api_logins_total{result=\"failure\"} 0\n");
	expect_in(text, "egress_api_logins_total{result=\"rate_limited\"} 0\n");
	expect_in(text, "egress_api_logins_total{result=\"success\"} 0\n");
	assert_null(strstr(text, "egress_api_requests_total{"));
	free(text);

	api_metrics_request(&am, "/api/uplinks/{name}", "GET", 200, 0.003);
	api_metrics_request(&am, "/api/uplinks/{name}", "GET", 200, 0.0004);
	api_metrics_request(&am, API_METRICS_UNMATCHED, "GET", 404, 0.0001);
	api_metrics_streams(&am, 3);
	api_metrics_login(&am, "failure");
	text = render(m);
	expect_in(text, "# HELP egress_api_requests_total ");
	expect_in(text, "egress_api_requests_total{route=\"/api/uplinks/{name}\",method=\"GET\","
			"code=\"200\"} 2\n");
	expect_in(text,
		"egress_api_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1\n");
	expect_in(text, "# TYPE egress_api_request_duration_seconds histogram\n");
	expect_in(text, "egress_api_request_duration_seconds_bucket{route=\"/api/uplinks/{name}\","
			"le=\"0.0005\"} 1\n");
	expect_in(text, "egress_api_request_duration_seconds_bucket{route=\"/api/uplinks/{name}\","
			"le=\"0.005\"} 2\n");
	expect_in(text,
		"egress_api_request_duration_seconds_count{route=\"/api/uplinks/{name}\"} 2\n");
	expect_in(text, "egress_api_event_streams 3\n");
	expect_in(text, "egress_api_logins_total{result=\"failure\"} 1\n");
	free(text);

	/* a server made again (a restart of the API) finds its families and their series */
	assert_int_equal(api_metrics_init(&again, m), 0);
	assert_ptr_equal(again.requests, am.requests);
	text = render(m);
	expect_in(text, "egress_api_logins_total{result=\"failure\"} 1\n");
	free(text);
	metrics_free(m);
}

static void test_taken_name(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *f;
	struct api_metrics am;

	(void)state;
	assert_int_equal(metrics_gauge_new(m, "egress_api_event_streams", "Another", NULL, &f), 0);
	assert_int_equal(api_metrics_init(&am, m), -EEXIST);
	/* and the calls do nothing rather than crash */
	api_metrics_request(&am, "/healthz", "GET", 200, 0.001);
	api_metrics_streams(&am, 1);
	api_metrics_login(&am, "success");
	metrics_free(m);
}

static void test_no_registry(void **state)
{
	struct api_metrics am;

	(void)state;
	assert_int_equal(api_metrics_init(&am, NULL), 0);
	api_metrics_request(&am, "/healthz", "GET", 200, 0.001);
	api_metrics_streams(&am, 1);
	api_metrics_login(&am, "success");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families),
		cmocka_unit_test(test_taken_name),
		cmocka_unit_test(test_no_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
