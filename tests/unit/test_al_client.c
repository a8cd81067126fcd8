/*
 * test_al_client.c - the agent's reconnect backoff (al_backoff_ms() of al_client.c):
 * doubling from min up to max, at least half of it kept, the random part bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "al_client.h"

static void test_backoff(void **state)
{
	(void)state;
	/* rnd 0: the whole wait; it doubles up to max */
	assert_int_equal(al_backoff_ms(1000, 60000, 0, 0), 1000);
	assert_int_equal(al_backoff_ms(1000, 60000, 1, 0), 2000);
	assert_int_equal(al_backoff_ms(1000, 60000, 5, 0), 32000);
	assert_int_equal(al_backoff_ms(1000, 60000, 6, 0), 60000);
	assert_int_equal(al_backoff_ms(1000, 60000, 1000, 0), 60000);
	/* the random part takes off at most half */
	for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
		uint32_t w = al_backoff_ms(1000, 60000, 3, rnd * 2654435761u);

		assert_true(w >= 4000 && w <= 8000);
	}
	assert_int_equal(al_backoff_ms(1000, 60000, 3, 4000), 4000);
	assert_int_equal(al_backoff_ms(1000, 60000, 3, 4001), 8000);
	/* different draws give different waits: gateways do not come back together */
	assert_int_not_equal(al_backoff_ms(1000, 60000, 2, 1), al_backoff_ms(1000, 60000, 2, 999));
	/* tiny and equal bounds */
	assert_int_equal(al_backoff_ms(1, 1, 9, 12345), 1);
	assert_int_equal(al_backoff_ms(10, 10, 0, 3), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
