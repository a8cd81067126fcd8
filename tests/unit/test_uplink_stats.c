/*
 * test_uplink_stats.c - what the API shows of each uplink: the model's fields, drained
 * uplinks, the transition history, and the rates and shares from the modules' counters.
 *
 * The uplinks here have no interface, so their counters are the fake module's; the shares
 * are exact whatever the time between two samples (every uplink is sampled at one instant).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf_keys.h"
#include "modules.h"
#include "uplink.h"
#include "uplink_stats.h"

struct fake {
	struct conf *conf;
	struct uplink_set set;
	struct event_base *base;
	struct uplink_stats *stats;
	struct module_traffic t[3];
};

static const char *const names[] = {"a", "b", "c"};

static const struct conf *conf_cb(void *arg)
{
	return ((struct fake *)arg)->conf;
}

/* a and b have counters of the "proxy" module; c none */
static int traffic_cb(void *arg, const char *name, struct module_traffic *ret,
	const char **source)
{
	struct fake *f = arg;

	for (int i = 0; i < 2; i++)
		if (!strcmp(name, names[i])) {
			*ret = f->t[i];
			*source = "proxy";
			return 0;
		}
	return -ENOENT;
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct conf_errors errs = {0};
	struct uplink_stats_deps deps;

	f->conf = egress_conf_new();
	assert_int_equal(conf_load_string(f->conf, "t.conf",
				 "[uplink a]\nsource = 192.0.2.1\nweight = 3\ntier = 2\n"
				 "[uplink b]\nsource = 192.0.2.9\nenabled = no\n"
				 "[uplink c]\ngateway = 198.51.100.1\ncheck = icmp\n",
				 &errs),
		0);
	assert_int_equal(conf_validate(f->conf, &errs), 0);
	uplink_set_init(&f->set);
	uplink_set_sync(&f->set, f->conf);
	f->base = event_base_new();
	deps = (struct uplink_stats_deps){.base = f->base, .set = &f->set, .conf_cb = conf_cb,
		.traffic_cb = traffic_cb, .arg = f};
	assert_int_equal(uplink_stats_new(&deps, &f->stats), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	uplink_stats_free(f->stats);
	uplink_set_clear(&f->set);
	conf_free(f->conf);
	event_base_free(f->base);
	free(f);
	return 0;
}

static json_t *one(struct fake *f, const char *name)
{
	return uplink_stats_json(f->stats, uplink_find(&f->set, name));
}

static void test_model_fields(void **state)
{
	struct fake *f = *state;
	json_t *a = one(f, "a"), *b = one(f, "b"), *c = one(f, "c");

	assert_string_equal(json_string_value(json_object_get(a, "state")), "init");
	assert_int_equal(json_integer_value(json_object_get(a, "weight")), 3);
	assert_int_equal(json_integer_value(json_object_get(a, "tier")), 2);
	assert_true(json_is_true(json_object_get(a, "enabled")));
	assert_false(json_is_true(json_object_get(a, "in_service"))); /* not judged yet */
	assert_string_equal(json_string_value(json_object_get(a, "source")), "192.0.2.1");
	assert_true(json_is_null(json_object_get(a, "interface")));
	/* b is drained: enabled false, never in service, whatever its state */
	uplink_transition(&f->set, uplink_find(&f->set, "b"), UPLINK_UP, "test");
	json_decref(b);
	b = one(f, "b");
	assert_true(json_is_false(json_object_get(b, "enabled")));
	assert_string_equal(json_string_value(json_object_get(b, "state")), "up");
	assert_true(json_is_false(json_object_get(b, "in_service")));
	/* c is checked, but has no figures yet: null, not 0 */
	assert_string_equal(json_string_value(json_object_get(c, "check")), "icmp");
	assert_true(json_is_null(json_object_get(c, "rtt_ms")));
	assert_true(json_is_null(json_object_get(c, "loss_pct")));
	/* "since" is an RFC 3339 time */
	assert_int_equal(strlen(json_string_value(json_object_get(a, "since"))),
		strlen("2026-12-07T13:00:01.250Z"));
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void test_history(void **state)
{
	struct fake *f = *state;
	struct uplink *u = uplink_find(&f->set, "a");
	json_t *o, *h;

	for (int i = 0; i < UPLINK_HISTORY + 3; i++)
		uplink_transition(&f->set, u, i % 2 ? UPLINK_DOWN : UPLINK_UP, "round %d", i);
	/* a repeated state is no transition */
	uplink_transition(&f->set, u, u->state, "again");
	o = one(f, "a");
	h = json_object_get(o, "transitions");
	assert_int_equal(json_array_size(h), UPLINK_HISTORY);
	assert_int_equal(json_integer_value(json_object_get(o, "transitions_total")),
		UPLINK_HISTORY + 3);
	/* oldest first; the newest is the last round */
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "reason")),
		"round 3");
	json_t *last = json_array_get(h, UPLINK_HISTORY - 1);
	assert_string_equal(json_string_value(json_object_get(last, "reason")), "round 10");
	assert_string_equal(json_string_value(json_object_get(last, "from")), "down");
	assert_string_equal(json_string_value(json_object_get(last, "to")), "up");
	json_decref(o);
}

static void test_rates_and_shares(void **state)
{
	struct fake *f = *state;
	json_t *a, *b, *c;

	/* one sample so far (at start): no rate yet */
	a = one(f, "a");
	assert_true(json_is_null(json_object_get(a, "rx_bps")));
	assert_true(json_is_null(json_object_get(a, "share_pct")));
	json_decref(a);

	/* a moves 300 bytes down and 100 up, b 0 and 100: shares 80 % and 20 % */
	f->t[0] = (struct module_traffic){.bytes_down = 300, .bytes_up = 100,
		.connections_active = 2, .connections_total = 7};
	f->t[1] = (struct module_traffic){.bytes_up = 100};
	uplink_stats_sample(f->stats);
	a = one(f, "a");
	b = one(f, "b");
	c = one(f, "c");
	assert_string_equal(json_string_value(json_object_get(a, "traffic_source")), "proxy");
	assert_true(json_real_value(json_object_get(a, "rx_bps")) > 0);
	assert_true(json_real_value(json_object_get(a, "rx_bps")) ==
		    3 * json_real_value(json_object_get(a, "tx_bps")));
	assert_true(json_real_value(json_object_get(a, "share_pct")) > 79.99 &&
		    json_real_value(json_object_get(a, "share_pct")) < 80.01);
	assert_true(json_real_value(json_object_get(b, "share")) > 0.1999 &&
		    json_real_value(json_object_get(b, "share")) < 0.2001);
	assert_true(json_real_value(json_object_get(b, "share_pct")) > 19.99 &&
		    json_real_value(json_object_get(b, "share_pct")) < 20.01);
	assert_int_equal(json_integer_value(json_object_get(a, "rx_bytes")), 300);
	assert_int_equal(json_integer_value(json_object_get(a, "connections_total")), 7);
	assert_int_equal(json_integer_value(json_object_get(a, "connections_active")), 2);
	/* c has no counters anywhere: nothing is made up */
	assert_true(json_is_null(json_object_get(c, "traffic_source")));
	assert_true(json_is_null(json_object_get(c, "throughput_bps")));
	assert_true(json_is_null(json_object_get(c, "share_pct")));
	assert_null(json_object_get(c, "connections_total"));
	json_decref(a);
	json_decref(b);
	json_decref(c);

	/* a counter that goes back (a module restarted) starts over at rate 0, not below */
	f->t[0] = (struct module_traffic){.bytes_down = 10};
	uplink_stats_sample(f->stats);
	a = one(f, "a");
	assert_true(json_real_value(json_object_get(a, "rx_bps")) == 0);
	json_decref(a);

	/* the list has every uplink, in order */
	json_t *l = uplink_stats_list_json(f->stats);
	json_t *v = json_object_get(l, "uplinks");
	assert_int_equal(json_array_size(v), 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(v, i), "name")), names[i]);
	json_decref(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rates_and_shares, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
