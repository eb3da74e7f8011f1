/* forecast.c with an injected clock: when a backlog drains at the budget's
 * pace, what the budget yields an hour, and the backlog warnings appearing
 * once per condition. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "forecast.h"

/* 2026-11-28T14:00:00Z: the top of an hour, so the local windows start here. */
#define T0 INT64_C(1795874400)
#define S(x) ((usec_t) (x) * USEC_PER_SEC)

static const BudgetConfig config_default = {
	.limit_per_hour = 100,
	.poll_reserve = 10,
	.window = USEC_PER_HOUR,
};

static void charge(Budget *b, CallKind kind, unsigned n, usec_t now) {
	for (unsigned i = 0; i < n; i++)
		budget_charge(b, kind, now);
}

static void test_forecast_empty_backlog_is_done_now(void **state) {
	Budget b;
	ForecastDrain d;

	budget_init(&b, &config_default, S(T0 + 600));
	forecast_drain(&b, 0, S(T0 + 600), &d);
	assert_int_equal(d.done_at, S(T0 + 600));
	assert_int_equal(d.duration, 0);
	assert_int_equal(d.windows, 0);
	assert_int_equal(d.creates_now, 90);
	assert_int_equal(d.creates_per_window, 90);
	assert_int_equal(d.window, USEC_PER_HOUR);
}

static void test_forecast_backlog_the_window_covers_goes_now(void **state) {
	Budget b;
	ForecastDrain d;

	budget_init(&b, &config_default, S(T0 + 600));
	forecast_drain(&b, 90, S(T0 + 600), &d);
	assert_int_equal(d.done_at, S(T0 + 600));
	assert_int_equal(d.windows, 0);

	/* 85 creates spent: 5 left in this window. */
	charge(&b, CALL_CREATE, 85, S(T0 + 700));
	forecast_drain(&b, 5, S(T0 + 800), &d);
	assert_int_equal(d.creates_now, 5);
	assert_int_equal(d.done_at, S(T0 + 800));
	/* One more than the window has: the rest goes at the next window's start. */
	forecast_drain(&b, 6, S(T0 + 800), &d);
	assert_int_equal(d.windows, 1);
	assert_int_equal(d.done_at, S(T0 + 3600));
	assert_int_equal(d.duration, S(3600 - 800));
}

static void test_forecast_long_backlog_takes_whole_windows(void **state) {
	Budget b;
	ForecastDrain d;

	budget_init(&b, &config_default, S(T0));
	/* 90 now, then 90 a window: 200 need this window and two more, the
	 * last 20 going at the start of the second. */
	forecast_drain(&b, 200, S(T0 + 1800), &d);
	assert_int_equal(d.windows, 2);
	assert_int_equal(d.done_at, S(T0 + 3600 + 3600));
	assert_int_equal(d.duration, S(3600 + 1800));
	/* Exactly two more windows' worth: still two. */
	forecast_drain(&b, 90 + 180, S(T0 + 1800), &d);
	assert_int_equal(d.windows, 2);
	assert_int_equal(d.done_at, S(T0 + 7200));
	forecast_drain(&b, 90 + 181, S(T0 + 1800), &d);
	assert_int_equal(d.windows, 3);
	assert_int_equal(d.done_at, S(T0 + 10800));
}

static void test_forecast_polls_leave_creates_only_what_the_reserve_allows(void **state) {
	Budget b;
	ForecastDrain d;

	budget_init(&b, &config_default, S(T0));
	/* Polls beyond the reserve take creates' calls in this window only. */
	charge(&b, CALL_POLL, 20, S(T0 + 10));
	forecast_drain(&b, 1000, S(T0 + 20), &d);
	assert_int_equal(d.creates_now, 80);
	assert_int_equal(d.creates_per_window, 90);
	assert_int_equal(d.windows, (1000 - 80 + 89) / 90);
}

static void test_forecast_follows_the_servers_window_and_limit(void **state) {
	Budget b;
	ForecastDrain d;
	/* HITL.sh says: 10 an hour, 4 left, reset in 20 minutes. */
	RateInfo ri = {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = 10, .remaining = 4, .reset_epoch = T0 + 2400, .date_epoch = T0 + 1200,
	};

	budget_init(&b, &config_default, S(T0 + 1200));
	budget_observe(&b, &ri, S(T0 + 1200));
	forecast_drain(&b, 20, S(T0 + 1200), &d);
	/* Reserve min(10, 10/2) = 5: no creates left now, 5 a window. */
	assert_int_equal(d.creates_now, 0);
	assert_int_equal(d.creates_per_window, 5);
	assert_int_equal(d.windows, 4);
	/* The server's reset, +1 s margin, then three more windows. */
	assert_int_equal(d.done_at, S(T0 + 2400 + 1) + 3 * d.window);
	assert_in_range(forecast_decisions_per_hour(&b, S(T0 + 1200)), 4.99, 5.01);
}

static void test_forecast_a_429_pause_delays_the_start(void **state) {
	Budget b;
	ForecastDrain d;
	RateInfo ri = { .has_retry_after = true, .retry_after_s = 7200 };

	budget_init(&b, &config_default, S(T0 + 600));
	budget_observe_429(&b, &ri, S(T0 + 600), 0.0);
	assert_true(b.paused_until >= S(T0 + 600 + 7200));
	forecast_drain(&b, 10, S(T0 + 600), &d);
	assert_int_equal(d.start, b.paused_until);
	assert_int_equal(d.done_at, b.paused_until);
	assert_int_equal(d.duration, usec_sub(b.paused_until, S(T0 + 600)));
}

static void test_forecast_decisions_per_hour_scale_with_the_window(void **state) {
	Budget b;
	BudgetConfig c = { .limit_per_hour = 10, .poll_reserve = 2, .window = S(5) };

	budget_init(&b, &config_default, S(T0));
	assert_in_range(forecast_decisions_per_hour(&b, S(T0)), 89.99, 90.01);
	/* 8 creates every 5 seconds. */
	budget_init(&b, &c, S(T0));
	assert_in_range(forecast_decisions_per_hour(&b, S(T0)), 5759.9, 5760.1);
}

static void test_forecast_huge_backlog_saturates(void **state) {
	Budget b;
	ForecastDrain d;
	BudgetConfig c = { .limit_per_hour = 1, .poll_reserve = 0, .window = USEC_PER_DAY };

	budget_init(&b, &c, S(T0));
	forecast_drain(&b, UINT64_MAX, S(T0), &d);
	assert_int_equal(d.done_at, USEC_INFINITY);
	assert_int_equal(d.duration, USEC_INFINITY - S(T0));
}

static ForecastObservation observe(const Budget *b, uint64_t backlog, usec_t now) {
	return (ForecastObservation) {
		.now = now,
		.budget = b,
		.backlog = backlog,
		.warn_drain = 2 * USEC_PER_HOUR,
	};
}

static void test_forecast_watch_long_drain_warns_once_per_condition(void **state) {
	ForecastWatch w = {};
	ForecastWarnings out;
	ForecastObservation o;
	Budget b;

	budget_init(&b, &config_default, S(T0));
	/* 200: done in 2 h — not more than the threshold. */
	o = observe(&b, 200, S(T0));
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	/* 300 take until 3 h: the warning, once. */
	o.backlog = 300;
	forecast_watch(&w, &o, &out);
	assert_true(out.long_drain);
	assert_int_equal(out.drain.done_at, S(T0 + 3 * 3600));
	for (unsigned i = 0; i < 5; i++) {
		o.backlog = 300 + i;
		o.now = S(T0 + 10 + i);
		forecast_watch(&w, &o, &out);
		assert_false(out.long_drain);
	}
	/* Creates held: no forecast, and the condition is not forgotten. */
	o.held = true;
	o.backlog = 1;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	o.held = false;
	o.backlog = 300;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	/* Just under the threshold is not enough to re-arm (no flapping)... */
	o.backlog = 200;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	o.backlog = 300;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	/* ...at half of it, it is: the next long backlog is a new condition. */
	o.backlog = 90;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	o.backlog = 300;
	forecast_watch(&w, &o, &out);
	assert_true(out.long_drain);
	/* Switched off: never. */
	o.backlog = 0;
	forecast_watch(&w, &o, &out);
	o.warn_drain = 0;
	o.backlog = 100000;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
}

static void test_forecast_watch_window_end_with_creates_waiting_warns_once(void **state) {
	ForecastWatch w = {};
	ForecastWarnings out;
	ForecastObservation o;
	Budget b;

	budget_init(&b, &config_default, S(T0));
	o = observe(&b, 500, S(T0 + 100));
	o.warn_drain = 0;
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	/* The window ends with 410 waiting; seen at the first turn after it. */
	o.now = S(T0 + 3600);
	o.backlog = 410;
	forecast_watch(&w, &o, &out);
	assert_true(out.window_ended);
	assert_int_equal(out.window_end, S(T0 + 3600));
	assert_int_equal(out.waiting, 410);
	/* A second turn in the same window, and the next window too: said. */
	o.now = S(T0 + 3700);
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	o.now = S(T0 + 7200);
	o.backlog = 320;
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	/* A window that ends with the queue empty re-arms it. */
	o.now = S(T0 + 7300);
	o.backlog = 0;
	forecast_watch(&w, &o, &out);
	o.now = S(T0 + 10800);
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	o.now = S(T0 + 10900);
	o.backlog = 200;
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	o.now = S(T0 + 14400);
	o.backlog = 110;
	forecast_watch(&w, &o, &out);
	assert_true(out.window_ended);
	assert_int_equal(out.waiting, 110);
}

static void test_forecast_watch_needs_creates_waiting_at_both_ends(void **state) {
	ForecastWatch w = {};
	ForecastWarnings out;
	ForecastObservation o;
	Budget b;

	budget_init(&b, &config_default, S(T0));
	/* The first observation ever is in a new window: nothing to compare. */
	o = observe(&b, 50, S(T0 + 7200));
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	/* Empty at the last turn of the window; a submit right after its end. */
	o.now = S(T0 + 7300);
	o.backlog = 0;
	forecast_watch(&w, &o, &out);
	o.now = S(T0 + 10800);
	o.backlog = 3;
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	/* All sent by the end of the window: nothing waits now. */
	o.now = S(T0 + 14400);
	o.backlog = 0;
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
}

/* The server's window replacing the local guess moves the ledger's bounds
 * (here by the 1 s margin) without any window ending. */
static void test_forecast_watch_servers_window_is_no_window_end(void **state) {
	ForecastWatch w = {};
	ForecastWarnings out;
	ForecastObservation o;
	Budget b;
	RateInfo ri = {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = 100, .remaining = 99, .reset_epoch = T0 + 3600, .date_epoch = T0 + 100,
	};

	budget_init(&b, &config_default, S(T0 + 100));
	o = observe(&b, 500, S(T0 + 100));
	forecast_watch(&w, &o, &out);
	budget_observe(&b, &ri, S(T0 + 100));
	assert_int_equal(b.window_end, S(T0 + 3601));
	assert_int_not_equal(b.window_start, S(T0));
	o.now = S(T0 + 101);
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	/* Its real end is. */
	o.now = S(T0 + 3601);
	forecast_watch(&w, &o, &out);
	assert_true(out.window_ended);
	assert_int_equal(out.window_end, S(T0 + 3601));
}

/* Our window ends a second after the server's: a reply in that second
 * names the server's next window, which replaces ours before our end. */
static void test_forecast_watch_servers_next_window_in_the_gap_is_a_window_end(void **state) {
	ForecastWatch w = {};
	ForecastWarnings out;
	ForecastObservation o;
	Budget b;
	RateInfo a = {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = 100, .remaining = 50, .reset_epoch = T0 + 3600, .date_epoch = T0 + 3000,
	};
	RateInfo next = a;

	next.reset_epoch = T0 + 7200;
	next.date_epoch = T0 + 3600;
	next.remaining = 99;
	budget_init(&b, &config_default, S(T0 + 3000));
	budget_observe(&b, &a, S(T0 + 3000));
	o = observe(&b, 500, S(T0 + 3000));
	forecast_watch(&w, &o, &out);
	assert_false(out.window_rolled);
	budget_observe(&b, &next, S(T0 + 3600) + 300 * USEC_PER_MSEC);
	assert_int_equal(b.window_end, S(T0 + 7200 + 1) + 300 * USEC_PER_MSEC);
	o.now = S(T0 + 3600) + 400 * USEC_PER_MSEC;
	forecast_watch(&w, &o, &out);
	assert_true(out.window_rolled);
	assert_true(out.window_ended);
	assert_int_equal(out.waiting, 500);
	/* Its own end, an hour on, is the next one; not this one again. */
	o.now = S(T0 + 3700);
	forecast_watch(&w, &o, &out);
	assert_false(out.window_rolled);
}

static void test_forecast_watch_paused_queue_warns_nothing(void **state) {
	ForecastWatch w = {};
	ForecastWarnings out;
	ForecastObservation o;
	Budget b;

	budget_init(&b, &config_default, S(T0));
	o = observe(&b, 5000, S(T0 + 100));
	o.paused = true;
	forecast_watch(&w, &o, &out);
	assert_false(out.long_drain);
	o.now = S(T0 + 3600);
	forecast_watch(&w, &o, &out);
	assert_false(out.window_ended);
	assert_false(out.long_drain);
	/* Resumed: the backlog's drain is a fresh condition; the window that
	 * just ended was paused, not short of budget. */
	o.paused = false;
	o.now = S(T0 + 3700);
	forecast_watch(&w, &o, &out);
	assert_true(out.long_drain);
	assert_false(out.window_ended);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forecast_empty_backlog_is_done_now),
		cmocka_unit_test(test_forecast_backlog_the_window_covers_goes_now),
		cmocka_unit_test(test_forecast_long_backlog_takes_whole_windows),
		cmocka_unit_test(test_forecast_polls_leave_creates_only_what_the_reserve_allows),
		cmocka_unit_test(test_forecast_follows_the_servers_window_and_limit),
		cmocka_unit_test(test_forecast_a_429_pause_delays_the_start),
		cmocka_unit_test(test_forecast_decisions_per_hour_scale_with_the_window),
		cmocka_unit_test(test_forecast_huge_backlog_saturates),
		cmocka_unit_test(test_forecast_watch_long_drain_warns_once_per_condition),
		cmocka_unit_test(test_forecast_watch_window_end_with_creates_waiting_warns_once),
		cmocka_unit_test(test_forecast_watch_needs_creates_waiting_at_both_ends),
		cmocka_unit_test(test_forecast_watch_servers_window_is_no_window_end),
		cmocka_unit_test(test_forecast_watch_servers_next_window_in_the_gap_is_a_window_end),
		cmocka_unit_test(test_forecast_watch_paused_queue_warns_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
