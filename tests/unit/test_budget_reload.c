/* budget_reconfigure(): a reload's budget.limit_per_hour, window_s and shares
 * apply to the next decisions, without forgetting what the window in
 * progress spent, and never over the server's own limit and window.
 * Clock injected throughout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "budget.h"
#include "budget_json.h"
#include "forecast.h"
#include "unit_budget.h"

/* 2026-11-28T… at the top of an hour, server clock, seconds. */
#define T0 INT64_C(1795870800)
#define S(x) ((usec_t) (x) * USEC_PER_SEC)
#define HOUR INT64_C(3600)

static RateInfo headers(unsigned limit, unsigned remaining, int64_t reset, int64_t date) {
	return (RateInfo) {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = limit, .remaining = remaining, .reset_epoch = reset, .date_epoch = date,
	};
}

static BudgetConfig with_limit(unsigned limit) {
	BudgetConfig c = unit_budget_config;

	c.limit_per_hour = limit;
	c.poll_reserve = limit / 10;
	return c;
}

static BudgetConfig with_window(usec_t window) {
	BudgetConfig c = unit_budget_config;

	c.window = window;
	return c;
}

static void charge_n(Budget *b, CallKind kind, unsigned n, usec_t now) {
	for (unsigned i = 0; i < n; i++)
		budget_charge(b, kind, now);
}

static void test_a_lower_limit_applies_to_the_window_in_progress(void **state) {
	Budget b;
	BudgetConfig forty = with_limit(40), twenty = with_limit(20), hundred = with_limit(100);

	budget_init(&b, &unit_budget_config, S(T0 + 10));
	charge_n(&b, CALL_CREATE, 30, S(T0 + 20));
	assert_int_equal(budget_remaining(&b, S(T0 + 30)), 70);

	budget_reconfigure(&b, &forty, S(T0 + 30));
	assert_int_equal(b.limit, 40);
	assert_int_equal(b.used, 30);
	assert_int_equal(budget_remaining(&b, S(T0 + 30)), 10);
	/* Creates leave the new reserve (4): 6 more. */
	assert_int_equal(budget_available(&b, CALL_CREATE, S(T0 + 30)), 6);
	/* The window keeps its bounds. */
	assert_int_equal(b.window_start, S(T0));
	assert_int_equal(b.window_end, S(T0 + HOUR));

	/* Below what the window spent: nothing until it ends. */
	budget_reconfigure(&b, &twenty, S(T0 + 40));
	assert_int_equal(budget_remaining(&b, S(T0 + 40)), 0);
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1, S(T0 + 40), 0.0), S(T0 + HOUR));
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, S(T0 + 40), 0.0), S(T0 + HOUR));

	/* The next window has the new limit whole. */
	budget_tick(&b, S(T0 + HOUR));
	assert_int_equal(budget_remaining(&b, S(T0 + HOUR)), 20);

	/* A higher limit: more left at once. */
	charge_n(&b, CALL_CREATE, 5, S(T0 + HOUR + 1));
	budget_reconfigure(&b, &hundred, S(T0 + HOUR + 2));
	assert_int_equal(budget_remaining(&b, S(T0 + HOUR + 2)), 95);
}

static void test_the_servers_limit_keeps_precedence(void **state) {
	Budget b, loaded;
	BudgetConfig forty = with_limit(40);
	RateInfo ri = headers(100, 90, T0 + HOUR, T0 + 10);
	json_object *j = NULL;

	budget_init(&b, &unit_budget_config, S(T0 + 10));
	budget_observe(&b, &ri, S(T0 + 10));
	assert_true(b.limit_from_server);

	budget_reconfigure(&b, &forty, S(T0 + 20));
	assert_int_equal(b.limit, 100);
	assert_int_equal(budget_remaining(&b, S(T0 + 20)), 90);
	/* Still after the window rolls over, until the server says otherwise. */
	budget_tick(&b, S(T0 + HOUR + 5));
	budget_reconfigure(&b, &forty, S(T0 + HOUR + 5));
	assert_int_equal(b.limit, 100);

	/* And after a restart: the saved ledger names the server's window. */
	assert_int_equal(budget_to_json(&b, &j), 0);
	budget_init(&loaded, &forty, S(T0 + HOUR + 6));
	assert_int_equal(budget_from_json(&loaded, j, S(T0 + HOUR + 6)), 0);
	json_object_put(j);
	assert_true(loaded.limit_from_server);
	budget_reconfigure(&loaded, &forty, S(T0 + HOUR + 7));
	assert_int_equal(loaded.limit, 100);

	/* A reply without a Limit header names no limit: the configured one rules. */
	budget_init(&b, &unit_budget_config, S(T0 + 10));
	ri.has_limit = false;
	budget_observe(&b, &ri, S(T0 + 10));
	assert_false(b.limit_from_server);
	budget_reconfigure(&b, &forty, S(T0 + 20));
	assert_int_equal(b.limit, 40);
}

static void test_a_shorter_window_ends_the_one_in_progress_at_its_boundary(void **state) {
	Budget b;
	BudgetConfig ten_minutes = with_window(600 * USEC_PER_SEC);

	budget_init(&b, &unit_budget_config, S(T0 + 10));
	charge_n(&b, CALL_CREATE, 30, S(T0 + 20));
	budget_reconfigure(&b, &ten_minutes, S(T0 + 1234));
	assert_int_equal(b.window_start, S(T0 + 1200));
	assert_int_equal(b.window_end, S(T0 + 1800));
	/* What it spent stays spent until then. */
	assert_int_equal(b.used, 30);
	assert_int_equal(budget_remaining(&b, S(T0 + 1799)), 70);
	budget_tick(&b, S(T0 + 1800));
	assert_int_equal(b.used, 0);
	assert_int_equal(b.window_start, S(T0 + 1800));
	assert_int_equal(b.window_end, S(T0 + 2400));
}

static void test_a_longer_window_applies_from_the_next_one(void **state) {
	Budget b;
	BudgetConfig ten_minutes = with_window(600 * USEC_PER_SEC);

	budget_init(&b, &ten_minutes, S(T0 + 1234));
	charge_n(&b, CALL_CREATE, 7, S(T0 + 1240));
	budget_reconfigure(&b, &unit_budget_config, S(T0 + 1250));
	assert_int_equal(b.window_start, S(T0 + 1200));
	assert_int_equal(b.window_end, S(T0 + 1800));
	assert_int_equal(b.used, 7);
	budget_tick(&b, S(T0 + 1800));
	assert_int_equal(b.window_start, S(T0));
	assert_int_equal(b.window_end, S(T0 + HOUR));
}

static void test_the_servers_window_stays_the_servers(void **state) {
	Budget b;
	BudgetConfig twenty_s = with_window(20 * USEC_PER_SEC);
	RateInfo ri = headers(100, 90, T0 + 1500, T0 + 10);
	usec_t end;

	budget_init(&b, &unit_budget_config, S(T0 + 10));
	budget_observe(&b, &ri, S(T0 + 10));
	end = b.window_end;
	budget_reconfigure(&b, &twenty_s, S(T0 + 20));
	assert_int_equal(b.window_end, end);
	assert_int_equal(budget_remaining(&b, S(T0 + 20)), 90);
}

static void test_the_shares_scale_with_the_new_limit(void **state) {
	Budget b;
	BudgetConfig forty = with_limit(40);
	RateInfo ri = headers(100, 100, T0 + HOUR, T0 + 10);
	unsigned per_uid, total;

	forty.interactive_total = 8;
	forty.interactive_per_uid = 2;
	budget_init(&b, &unit_budget_config, S(T0 + 10));
	budget_reconfigure(&b, &forty, S(T0 + 10));
	budget_interactive_shares(&b, &per_uid, &total);
	assert_int_equal(total, 8);
	assert_int_equal(per_uid, 2);

	/* The server's limit of 100 scales shares set for 40. */
	budget_observe(&b, &ri, S(T0 + 11));
	budget_interactive_shares(&b, &per_uid, &total);
	assert_int_equal(total, 20);
	assert_int_equal(per_uid, 5);
}

/* Lowered below what the window used, then raised again within it (two
 * reloads): the calls made beyond the lowered limit were made and stay
 * counted, so the raised limit allows only what it leaves. */
static void test_lowering_then_raising_the_limit_forgets_no_call(void **state) {
	Budget b;
	BudgetConfig twenty = with_limit(20), hundred = with_limit(100);

	budget_init(&b, &hundred, S(T0 + 10));
	charge_n(&b, CALL_CREATE, 50, S(T0 + 20));

	budget_reconfigure(&b, &twenty, S(T0 + 30));
	assert_int_equal(b.used, 50);
	assert_int_equal(budget_remaining(&b, S(T0 + 30)), 0);

	budget_reconfigure(&b, &hundred, S(T0 + 40));
	assert_int_equal(b.used, 50);
	assert_int_equal(budget_remaining(&b, S(T0 + 40)), 100 - 50);
	/* Creates leave the reserve (10): 40 more, not 80. */
	assert_int_equal(budget_available(&b, CALL_CREATE, S(T0 + 40)), 100 - 10 - 50);

	/* The same across a restart between the two reloads: budget.json keeps
	 * the count over the lowered limit and loads it. */
	{
		Budget lowered, loaded;
		json_object *j = NULL;

		budget_init(&lowered, &hundred, S(T0 + 10));
		charge_n(&lowered, CALL_CREATE, 50, S(T0 + 20));
		budget_reconfigure(&lowered, &twenty, S(T0 + 30));
		assert_int_equal(budget_to_json(&lowered, &j), 0);
		budget_init(&loaded, &twenty, S(T0 + 50));
		assert_int_equal(budget_from_json(&loaded, j, S(T0 + 50)), 0);
		json_object_put(j);
		assert_int_equal(loaded.used, 50);
		budget_reconfigure(&loaded, &hundred, S(T0 + 60));
		assert_int_equal(budget_remaining(&loaded, S(T0 + 60)), 100 - 50);

		/* A restart with the raised limit in the configuration. */
		assert_int_equal(budget_to_json(&lowered, &j), 0);
		budget_init(&loaded, &hundred, S(T0 + 50));
		assert_int_equal(budget_from_json(&loaded, j, S(T0 + 50)), 0);
		json_object_put(j);
		assert_int_equal(budget_remaining(&loaded, S(T0 + 50)), 100 - 50);
	}

	/* The next window starts afresh. */
	assert_int_equal(budget_remaining(&b, S(T0 + HOUR)), 100);
}

/* While used > limit every reader says "nothing left", never a wrapped
 * number: what status, the metrics and the forecast show. */
static void test_used_over_the_limit_leaves_nothing_and_wraps_nothing(void **state) {
	Budget b;
	BudgetConfig twenty = with_limit(20);
	ForecastDrain d;
	unsigned per_uid, total;

	budget_init(&b, &unit_budget_config, S(T0 + 10));
	charge_n(&b, CALL_CREATE, 50, S(T0 + 20));
	charge_n(&b, CALL_POLL, 5, S(T0 + 21));
	budget_reconfigure(&b, &twenty, S(T0 + 30));
	assert_int_equal(b.used, 55);
	assert_int_equal(b.limit, 20);

	assert_int_equal(budget_remaining(&b, S(T0 + 30)), 0);
	for (CallKind k = 0; k < _CALL_KIND_MAX; k++) {
		assert_int_equal(budget_available(&b, k, S(T0 + 30)), 0);
		assert_int_equal(budget_next_slot(&b, k, 1, S(T0 + 30), 0.0), S(T0 + HOUR));
	}
	assert_true(budget_reserve_left(&b, S(T0 + 30)) <= 20);
	budget_interactive_shares(&b, &per_uid, &total);
	assert_true(total <= 20 && per_uid <= total);
	assert_int_equal(budget_interactive_slot(&b, 1000, false, S(T0 + 30)), S(T0 + HOUR));
	assert_int_equal(budget_interactive_slot(&b, 0, true, S(T0 + 30)), S(T0 + HOUR));

	forecast_drain(&b, 30, S(T0 + 30), &d);
	assert_int_equal(d.creates_now, 0);
	assert_int_equal(d.creates_per_window, 20 - 2);
	assert_int_equal(d.done_at, S(T0 + 2 * HOUR));

	/* A call charged anyway (a probe) counts; a refund gives one back. */
	budget_charge(&b, CALL_PROBE, S(T0 + 40));
	assert_int_equal(b.used, 56);
	budget_refund(&b, S(T0 + 40), S(T0 + 41));
	assert_int_equal(b.used, 55);
	/* A 429 fills the ledger: it never lowers the count. */
	budget_observe_429(&b, NULL, S(T0 + 42), 0.0);
	assert_int_equal(b.used, 55);
	assert_int_equal(budget_remaining(&b, S(T0 + 42)), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_lower_limit_applies_to_the_window_in_progress),
		cmocka_unit_test(test_the_servers_limit_keeps_precedence),
		cmocka_unit_test(test_a_shorter_window_ends_the_one_in_progress_at_its_boundary),
		cmocka_unit_test(test_a_longer_window_applies_from_the_next_one),
		cmocka_unit_test(test_the_servers_window_stays_the_servers),
		cmocka_unit_test(test_the_shares_scale_with_the_new_limit),
		cmocka_unit_test(test_lowering_then_raising_the_limit_forgets_no_call),
		cmocka_unit_test(test_used_over_the_limit_leaves_nothing_and_wraps_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
