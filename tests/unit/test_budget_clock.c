/* The budget ledger when the server's clock steps back (hours): the server's count must
 * count again at once, not be taken for a late reply from an ended window until the
 * server's clock has caught up with the Reset it gave before. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "budget.h"

#define T0 INT64_C(1795870800)
#define S(x) ((usec_t) (x) * USEC_PER_SEC)
#define HOUR INT64_C(3600)

static const BudgetConfig config_default = {
	.limit_per_hour = 100,
	.poll_reserve = 10,
	.window = USEC_PER_HOUR,
};

static RateInfo headers(unsigned limit, unsigned remaining, int64_t reset, int64_t date) {
	return (RateInfo) {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = limit, .remaining = remaining, .reset_epoch = reset, .date_epoch = date,
	};
}

static void test_budget_server_clock_stepping_back_hours_is_followed(void **state) {
	Budget b;
	RateInfo before = headers(100, 95, T0 + HOUR, T0 + 3000);
	/* Three hours earlier on the server's clock, 10 minutes left in its window,
	 * and someone else has left us 3 calls. */
	RateInfo after = headers(100, 3, T0 - 2 * HOUR, T0 - 2 * HOUR - 600);

	budget_init(&b, &config_default, S(T0 + 3000));
	budget_observe(&b, &before, S(T0 + 3000));
	assert_int_equal(b.used, 5);

	budget_observe(&b, &after, S(T0 + 3010));
	assert_int_equal(b.used, 97);
	assert_int_equal(b.server_reset_epoch, T0 - 2 * HOUR);
	assert_int_equal(budget_remaining(&b, S(T0 + 3010)), 3);
	assert_int_equal(budget_available(&b, CALL_CREATE, S(T0 + 3010)), 0);
	/* The window ends when the server says (600 s from its Date), +1 s margin. */
	assert_int_equal(b.window_end, S(T0 + 3010 + 600 + 1));
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1, S(T0 + 3010), 0.0), S(T0 + 3010 + 601));

	/* Replies of the new, earlier window merge as usual from now on. */
	after.remaining = 1;
	after.date_epoch += 5;
	budget_observe(&b, &after, S(T0 + 3015));
	assert_int_equal(b.used, 99);
}

static void test_budget_429_after_the_server_clock_stepped_back_waits_for_its_reset(void **state) {
	Budget b;
	RateInfo before = headers(100, 50, T0 + HOUR, T0 + 3000);
	RateInfo refused = headers(100, 0, T0 - 2 * HOUR, T0 - 2 * HOUR - 300);

	refused.has_retry_after = true;
	refused.retry_after_s = 300;
	budget_init(&b, &config_default, S(T0 + 3000));
	budget_observe(&b, &before, S(T0 + 3000));
	budget_observe_429(&b, &refused, S(T0 + 3010), 0.0);
	assert_int_equal(b.used, 100);
	assert_int_equal(b.server_reset_epoch, T0 - 2 * HOUR);
	assert_true(b.paused_until >= S(T0 + 3010 + 300));
	assert_int_equal(budget_remaining(&b, S(T0 + 3100)), 0);
}

static void test_budget_late_reply_from_the_previous_window_is_still_stale(void **state) {
	Budget b;
	RateInfo now_says = headers(100, 40, T0 + HOUR, T0 + 10);
	/* Sent in the window before ours, at its very start: as old as a late
	 * reply can be. It must not replace the count. */
	RateInfo late = headers(100, 99, T0, T0 - HOUR);

	budget_init(&b, &config_default, S(T0 + 10));
	budget_observe(&b, &now_says, S(T0 + 10));
	assert_int_equal(b.used, 60);
	budget_observe(&b, &late, S(T0 + 11));
	assert_int_equal(b.used, 60);
	assert_int_equal(b.server_reset_epoch, T0 + HOUR);
}

static void test_budget_reply_without_date_cannot_tell_a_step_back(void **state) {
	Budget b;
	RateInfo now_says = headers(100, 40, T0 + HOUR, T0 + 10);
	RateInfo undated = headers(100, 99, T0 - 2 * HOUR, 0);

	undated.has_date = false;
	budget_init(&b, &config_default, S(T0 + 10));
	budget_observe(&b, &now_says, S(T0 + 10));
	budget_observe(&b, &undated, S(T0 + 11));
	/* Nothing proves the step: the count only ever goes up. */
	assert_int_equal(b.used, 60);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_server_clock_stepping_back_hours_is_followed),
		cmocka_unit_test(test_budget_429_after_the_server_clock_stepped_back_waits_for_its_reset),
		cmocka_unit_test(test_budget_late_reply_from_the_previous_window_is_still_stale),
		cmocka_unit_test(test_budget_reply_without_date_cannot_tell_a_step_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
