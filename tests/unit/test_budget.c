/* The budget ledger: never overspend, follow the server's window on its own clock,
 * pause after a 429, pace a backlog, survive a restart. Clock injected throughout;
 * the simulations drive a fake HITL.sh that enforces the limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <string.h>

#include "budget.h"
#include "budget_json.h"
#include "unit_budget.h"
#include "cleanup.h"

/* 2026-11-28T… at the top of an hour, server clock, seconds. */
#define T0 INT64_C(1795870800)
#define S(x) ((usec_t) (x) * USEC_PER_SEC)
#define HOUR INT64_C(3600)

#define config_default unit_budget_config

static RateInfo headers(unsigned limit, unsigned remaining, int64_t reset, int64_t date) {
	return (RateInfo) {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = limit, .remaining = remaining, .reset_epoch = reset, .date_epoch = date,
	};
}

static void charge_n(Budget *b, CallKind kind, unsigned n, usec_t now) {
	for (unsigned i = 0; i < n; i++)
		budget_charge(b, kind, now);
}

/* ------------------------------------------------------------------ rules */

static void test_budget_starts_with_config_limit_and_local_hour(void **state) {
	Budget b;
	BudgetConfig ten_minutes = config_default;

	budget_init(&b, &config_default, S(T0 + 1234) + 500000);
	assert_int_equal(b.limit, 100);
	assert_int_equal(b.used, 0);
	assert_false(b.from_server);
	assert_int_equal(b.window_start, S(T0));
	assert_int_equal(b.window_end, S(T0 + HOUR));
	assert_int_equal(budget_remaining(&b, S(T0 + 1234)), 100);

	/* The window follows config.window, aligned to its multiples. */
	ten_minutes.window = 600 * USEC_PER_SEC;
	budget_init(&b, &ten_minutes, S(T0 + 1234));
	assert_int_equal(b.window_start, S(T0 + 1200));
	assert_int_equal(b.window_end, S(T0 + 1800));

	/* Idle for hours before any server reply: still aligned to the local hour. */
	budget_init(&b, &config_default, S(T0 + 10));
	budget_tick(&b, S(T0 + 5 * HOUR + 77));
	assert_int_equal(b.window_start, S(T0 + 5 * HOUR));
	assert_int_equal(b.window_end, S(T0 + 6 * HOUR));
}

static void test_budget_tick_rolls_into_a_fresh_window(void **state) {
	Budget b;

	budget_init(&b, &config_default, S(T0 + 10));
	charge_n(&b, CALL_POLL, 7, S(T0 + 20));
	budget_tick(&b, S(T0 + HOUR) - 1);
	assert_int_equal(b.used, 7);
	budget_tick(&b, S(T0 + HOUR));
	assert_int_equal(b.used, 0);
	assert_int_equal(b.window_start, S(T0 + HOUR));
	assert_int_equal(b.window_end, S(T0 + 2 * HOUR));
}

static void test_budget_counts_a_call_whose_reply_is_lost(void **state) {
	Budget b;

	budget_init(&b, &config_default, S(T0 + 10));
	budget_charge(&b, CALL_CREATE, S(T0 + 11));
	/* No budget_observe: the reply never came. */
	assert_int_equal(budget_remaining(&b, S(T0 + 12)), 99);
	assert_int_equal(b.last_call_at, S(T0 + 11));
}

static void test_budget_creates_stop_at_limit_minus_reserve(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	for (unsigned i = 0; i < 90; i++) {
		assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1, now, 0.5), now);
		budget_charge(&b, CALL_CREATE, now);
	}
	assert_int_equal(budget_available(&b, CALL_CREATE, now), 0);
	assert_true(budget_next_slot(&b, CALL_CREATE, 1, now, 0.0) >= b.window_end);
	assert_true(budget_next_slot(&b, CALL_CREATE, 1, now, 0.99) >= b.window_end);
	/* Polls still go now. */
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, now, 0.5), now);
}

static void test_budget_polls_spend_the_reserve_not_the_creates_share(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	assert_int_equal(budget_reserve_left(&b, now), 10);
	charge_n(&b, CALL_POLL, 4, now);
	/* Polls came out of the reserve: creates still have their 90. */
	assert_int_equal(budget_reserve_left(&b, now), 6);
	assert_int_equal(budget_available(&b, CALL_CREATE, now), 90);
	charge_n(&b, CALL_CREATE, 90, now);
	assert_int_equal(budget_available(&b, CALL_CREATE, now), 0);
	/* And what is left of the reserve is still there for polls. */
	assert_int_equal(budget_remaining(&b, now), 6);
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, now, 0.5), now);
}

static void test_budget_creates_are_paced_from_the_last_create(void **state) {
	Budget b;
	usec_t now = S(T0 + 100), slot_before, slot_after;

	budget_init(&b, &config_default, now);
	budget_charge(&b, CALL_CREATE, now);
	/* A backlog larger than the budget: the next create is paced. */
	slot_before = budget_next_slot(&b, CALL_CREATE, 1000, now, 0.5);
	assert_true(slot_before > now);
	/* A poll in between does not push the next create back (paced from
	 * the poll, it would come 10 s later). */
	budget_charge(&b, CALL_POLL, now + S(10));
	slot_after = budget_next_slot(&b, CALL_CREATE, 1000, now + S(10), 0.5);
	assert_true(slot_after < slot_before + S(5));
}

static void test_budget_paces_to_end_before_the_reset(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	budget_observe(&b, &(RateInfo) { .has_limit = true, .has_remaining = true, .has_reset = true,
	                                 .has_date = true, .limit = 100, .remaining = 100,
	                                 .reset_epoch = T0 + HOUR, .date_epoch = T0 + 100 },
	               now);
	/* The last paced call must land in the server's window, margins included. */
	assert_true(budget_pace_end(&b, now) < b.window_end);
	assert_true(budget_pace_end(&b, now) > now);
}

static void test_budget_other_kinds_may_use_the_reserve(void **state) {
	static const CallKind others[] = {
		CALL_POLL, CALL_CANCEL, CALL_FEEDBACK, CALL_RECONCILE, CALL_PROBE,
	};
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	charge_n(&b, CALL_CREATE, 90, now);
	for (unsigned i = 0; i < 10; i++) {
		CallKind k = others[i % ELEMENTSOF(others)];

		assert_int_equal(budget_next_slot(&b, k, 1, now, 0.5), now);
		budget_charge(&b, k, now);
	}
	assert_int_equal(b.used, 100);
	for (size_t i = 0; i < ELEMENTSOF(others); i++)
		assert_true(budget_next_slot(&b, others[i], 1, now, 0.5) >= b.window_end);
	assert_true(budget_next_slot(&b, CALL_CREATE, 1, now, 0.5) >= b.window_end);
}

/* ------------------------------------------------------------------ interactive shares */

static void test_budget_interactive_calls_never_touch_the_reserve(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	/* Issue 15: loop reads used to take the whole limit, polls included. */
	budget_init(&b, &config_default, now);
	charge_n(&b, CALL_CREATE, 85, now);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(budget_interactive_slot(&b, 0, true, now), now);
		budget_charge_interactive(&b, 0, true, now);
	}
	assert_int_equal(b.used, 90);
	assert_int_equal(budget_reserve_left(&b, now), 10);
	assert_int_equal(budget_interactive_slot(&b, 0, true, now), b.window_end);
	assert_int_equal(budget_interactive_slot(&b, 1000, false, now), b.window_end);
	assert_true(budget_next_slot(&b, CALL_INTERACTIVE, 1, now, 0.5) >= b.window_end);
	/* ... which the polls still have whole. */
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, now, 0.5), now);
	assert_int_equal(budget_available(&b, CALL_POLL, now), 10);
}

static void test_budget_interactive_share_per_uid_then_total(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(budget_interactive_slot(&b, 1000, false, now), now);
		budget_charge_interactive(&b, 1000, false, now);
	}
	assert_int_equal(budget_interactive_used(&b, 1000, now), 5);
	/* uid 1000's share is spent until the window ends; nobody else's is. */
	assert_int_equal(budget_interactive_slot(&b, 1000, false, now), b.window_end);
	assert_int_equal(budget_interactive_slot(&b, 1001, false, now), now);
	assert_int_equal(budget_interactive_slot(&b, 0, true, now), now);

	/* Three more uids take the total of 20: a fifth non-admin waits, an
	 * admin does not (no share), and creates still have 70 of the window. */
	for (uid_t u = 1001; u <= 1003; u++)
		for (unsigned i = 0; i < 5; i++)
			budget_charge_interactive(&b, u, false, now);
	assert_int_equal(budget_interactive_slot(&b, 1004, false, now), b.window_end);
	assert_int_equal(budget_interactive_slot(&b, 0, true, now), now);
	assert_int_equal(budget_available(&b, CALL_CREATE, now), 70);
	assert_int_equal(budget_reserve_left(&b, now), 10);

	/* Admins' calls count in the ledger, not in anyone's share. */
	budget_charge_interactive(&b, 0, true, now);
	assert_int_equal(budget_interactive_used(&b, 0, now), 0);
	assert_int_equal(b.interactive_used, 20);

	/* A new window: every share whole again. */
	now = b.window_end;
	assert_int_equal(budget_interactive_slot(&b, 1000, false, now), now);
	assert_int_equal(budget_interactive_used(&b, 1000, now), 0);
}

static void test_budget_interactive_refund_gives_the_share_back(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	budget_charge_interactive(&b, 1000, false, now);
	budget_charge_interactive(&b, 1000, false, now);
	budget_refund(&b, now, now + 1);
	budget_refund_interactive(&b, 1000, false, now, now + 1);
	assert_int_equal(b.used, 1);
	assert_int_equal(budget_interactive_used(&b, 1000, now + 1), 1);
	assert_int_equal(b.interactive_used, 1);
	/* Nothing to give back for an admin, a uid without calls, or a call of an earlier window. */
	budget_refund_interactive(&b, 0, true, now, now + 1);
	budget_refund_interactive(&b, 1001, false, now, now + 1);
	assert_int_equal(b.interactive_used, 1);
	budget_refund_interactive(&b, 1000, false, now, b.window_end + 1);
	assert_int_equal(budget_interactive_used(&b, 1000, b.window_end + 1), 0);
	assert_int_equal(b.interactive_used, 0);
}

static void test_budget_interactive_waits_out_a_pause(void **state) {
	Budget b;
	usec_t now = S(T0 + 100);

	budget_init(&b, &config_default, now);
	b.paused_until = now + S(30);
	assert_int_equal(budget_interactive_slot(&b, 1000, false, now), now + S(30));
}

static void test_budget_interactive_shares_scale_with_the_limit(void **state) {
	Budget b;
	BudgetConfig off = config_default;
	RateInfo big = headers(1000, 1000, T0 + HOUR, T0 + 60), small = headers(10, 10, T0 + 2 * HOUR, T0 + HOUR + 60);
	unsigned per_uid, total;

	budget_init(&b, &config_default, S(T0 + 60));
	budget_interactive_shares(&b, &per_uid, &total);
	assert_int_equal(per_uid, 5);
	assert_int_equal(total, 20);

	budget_observe(&b, &big, S(T0 + 60));
	budget_interactive_shares(&b, &per_uid, &total);
	assert_int_equal(per_uid, 50);
	assert_int_equal(total, 200);

	/* A small limit: the total leaves the reserve, a share is never scaled to 0. */
	budget_observe(&b, &small, S(T0 + HOUR + 60));
	assert_int_equal(b.limit, 10);
	budget_interactive_shares(&b, &per_uid, &total);
	assert_int_equal(per_uid, 1);
	assert_int_equal(total, 2);

	/* A share of 0 means never for non-admins; admins are not refused. */
	off.interactive_per_uid = 0;
	budget_init(&b, &off, S(T0 + 60));
	assert_true(budget_interactive_slot(&b, 1000, false, S(T0 + 60)) == USEC_INFINITY);
	assert_int_equal(budget_interactive_slot(&b, 0, true, S(T0 + 60)), S(T0 + 60));
}

static void test_budget_interactive_uids_beyond_the_table_wait(void **state) {
	Budget b;
	BudgetConfig wide = config_default;
	usec_t now = S(T0 + 100);

	wide.limit_per_hour = 100000;
	wide.interactive_per_uid = 1;
	wide.interactive_total = 10000;
	budget_init(&b, &wide, now);
	for (uid_t u = 0; u < BUDGET_SHARE_UIDS_MAX; u++) {
		assert_int_equal(budget_interactive_slot(&b, 5000 + u, false, now), now);
		budget_charge_interactive(&b, 5000 + u, false, now);
	}
	assert_int_equal(budget_interactive_slot(&b, 4999, false, now), b.window_end);
	assert_int_equal(b.n_shares, BUDGET_SHARE_UIDS_MAX);
}

static void test_budget_reserve_is_clamped_to_half_the_limit(void **state) {
	Budget b;
	BudgetConfig c = config_default;

	c.poll_reserve = 500;
	budget_init(&b, &c, S(T0));
	assert_int_equal(budget_available(&b, CALL_CREATE, S(T0)), 50);
	assert_int_equal(budget_available(&b, CALL_POLL, S(T0)), 100);

	/* A limit of 1: the reserve (0 after clamping) leaves creates their call. */
	c.limit_per_hour = 1;
	budget_init(&b, &c, S(T0));
	assert_int_equal(budget_available(&b, CALL_CREATE, S(T0)), 1);
}

static void test_budget_never_spends_past_server_remaining(void **state) {
	Budget b;
	usec_t now = S(T0 + 600);
	RateInfo ri = headers(100, 3, T0 + HOUR, T0 + 600);

	budget_init(&b, &config_default, now);
	budget_observe(&b, &ri, now);
	assert_int_equal(b.used, 97);
	assert_int_equal(budget_remaining(&b, now), 3);
	/* Creates are beyond their share already. */
	assert_true(budget_next_slot(&b, CALL_CREATE, 1, now, 0.5) >= b.window_end);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, now, 0.5), now);
		budget_charge(&b, CALL_POLL, now);
	}
	for (CallKind k = 0; k < _CALL_KIND_MAX; k++)
		assert_true(budget_next_slot(&b, k, 1, now, 0.5) >= b.window_end);
	assert_true(b.window_end >= S(T0 + HOUR));
}

static void test_budget_new_server_window_replaces_the_count(void **state) {
	Budget b;
	RateInfo first = headers(100, 20, T0 + HOUR, T0 + 3000);
	RateInfo next = headers(100, 97, T0 + 2 * HOUR, T0 + HOUR);

	/* Locally we counted 5; the server (other users of the key) says 80. */
	budget_init(&b, &config_default, S(T0 + 3000));
	charge_n(&b, CALL_POLL, 5, S(T0 + 3000));
	budget_observe(&b, &first, S(T0 + 3000));
	assert_int_equal(b.used, 80);
	assert_true(b.from_server);

	/* The server's window has reset (ours, with its margin, not yet) and it
	 * says 3 are spent: adopt that, even though it is lower than our count. */
	charge_n(&b, CALL_POLL, 10, S(T0 + 3001));
	assert_int_equal(b.used, 90);
	budget_observe(&b, &next, S(T0 + HOUR) + 500000);
	assert_int_equal(b.used, 3);
	assert_int_equal(b.server_reset_epoch, T0 + 2 * HOUR);
	assert_int_equal(b.window_end, S(T0 + 2 * HOUR + 1) + 500000);
}

/* Our window ends a second or so after the server's (Date is truncated, plus
 * the margin): a poll sent in that gap is charged to our old window but is the
 * server's first of the new one. When its reply shows the new window, that
 * poll must count against the new window's reserve, or the new window gets an
 * 11th poll and only 89 creates (seen in bench/run's economy section). */
static void test_budget_poll_that_opened_the_new_window_counts_in_it(void **state) {
	Budget b;
	RateInfo old = headers(100, 10, T0 + HOUR, T0 + 3000);
	RateInfo opened = headers(100, 99, T0 + 2 * HOUR, T0 + HOUR);

	budget_init(&b, &config_default, S(T0 + 3000));
	charge_n(&b, CALL_CREATE, 80, S(T0 + 3000));
	charge_n(&b, CALL_POLL, 10, S(T0 + 3000));
	budget_observe(&b, &old, S(T0 + 3000));
	assert_int_equal(budget_reserve_left(&b, S(T0 + 3000)), 0);

	/* The server has reset; our ledger has not yet. */
	budget_charge(&b, CALL_POLL, S(T0 + HOUR) + 300000);
	budget_observe(&b, &opened, S(T0 + HOUR) + 400000);
	assert_int_equal(b.used, 1);
	assert_int_equal(budget_reserve_left(&b, S(T0 + HOUR) + 400000), 9);
	/* And the creates still get their 90. */
	assert_int_equal(budget_remaining(&b, S(T0 + HOUR) + 400000), 99);

	/* A create in the gap takes no poll's place. */
	budget_init(&b, &config_default, S(T0 + 3000));
	charge_n(&b, CALL_POLL, 10, S(T0 + 3000));
	budget_observe(&b, &old, S(T0 + 3000));
	budget_charge(&b, CALL_CREATE, S(T0 + HOUR) + 300000);
	budget_observe(&b, &opened, S(T0 + HOUR) + 400000);
	assert_int_equal(budget_reserve_left(&b, S(T0 + HOUR) + 400000), 10);
}

static void test_budget_stale_reply_never_lowers_the_count(void **state) {
	Budget b;
	RateInfo now_says = headers(100, 20, T0 + HOUR, T0 + 600);
	RateInfo earlier = headers(100, 50, T0 + HOUR, T0 + 590);
	RateInfo later = headers(100, 10, T0 + HOUR, T0 + 610);

	budget_init(&b, &config_default, S(T0 + 600));
	budget_observe(&b, &now_says, S(T0 + 600));
	assert_int_equal(b.used, 80);
	/* A reply sent earlier arrives late: it must not give calls back. */
	budget_observe(&b, &earlier, S(T0 + 601));
	assert_int_equal(b.used, 80);
	/* One that knows of more calls raises the count. */
	budget_observe(&b, &later, S(T0 + 611));
	assert_int_equal(b.used, 90);
	/* No Reset at all: merged the same way. */
	earlier.has_reset = false;
	budget_observe(&b, &earlier, S(T0 + 612));
	assert_int_equal(b.used, 90);
}

static void test_budget_reply_from_an_ended_window_is_ignored(void **state) {
	Budget b;
	RateInfo spent = headers(100, 0, T0 + HOUR, T0 + 3500);
	RateInfo older = headers(100, 0, T0, T0 - 10);

	budget_init(&b, &config_default, S(T0 + 3500));
	budget_observe(&b, &spent, S(T0 + 3500));
	assert_int_equal(b.used, 100);

	/* Our window ends (server reset + margin); a reply from just before the
	 * reset arrives after that. It speaks of the old window. */
	budget_tick(&b, S(T0 + HOUR + 2));
	assert_int_equal(b.used, 0);
	budget_observe(&b, &spent, S(T0 + HOUR + 3));
	assert_int_equal(b.used, 0);
	budget_observe(&b, &older, S(T0 + HOUR + 3));
	assert_int_equal(b.used, 0);
	assert_int_equal(b.server_reset_epoch, T0 + HOUR);
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, S(T0 + HOUR + 3), 0.0), S(T0 + HOUR + 3));
}

static void test_budget_adopts_the_server_limit(void **state) {
	Budget b;
	RateInfo ri = headers(1000, 999, T0 + HOUR, T0 + 60);
	RateInfo zero = headers(0, 0, T0 + HOUR, T0 + 61);
	RateInfo huge = headers(BUDGET_LIMIT_MAX + 1, 0, T0 + HOUR, T0 + 62);

	budget_init(&b, &config_default, S(T0 + 60));
	budget_observe(&b, &ri, S(T0 + 60));
	assert_int_equal(b.limit, 1000);
	assert_int_equal(budget_available(&b, CALL_CREATE, S(T0 + 60)), 1000 - 10 - 1);

	/* Nonsense limits are not adopted (the count is still merged). */
	zero.has_remaining = huge.has_remaining = false;
	budget_observe(&b, &zero, S(T0 + 61));
	budget_observe(&b, &huge, S(T0 + 62));
	assert_int_equal(b.limit, 1000);
	assert_int_equal(b.used, 1);

	/* The limit sticks across a window roll. */
	budget_tick(&b, S(T0 + 2 * HOUR));
	assert_int_equal(b.limit, 1000);
}

/* The server's clock reads T0 + 1800 (half past), its window resets at T0 + 1 h.
 * Ours is skewed; the budget must open exactly when the server's window resets
 * (plus the 1 s margin), not when our clock reaches the Reset value. */
static void check_skewed_clock(int64_t skew_s) {
	Budget b;
	usec_t local_now = S(T0 + 1800 + skew_s);
	usec_t true_reset_local = S(T0 + HOUR + skew_s);
	RateInfo ri = headers(100, 0, T0 + HOUR, T0 + 1800);
	usec_t slot;

	budget_init(&b, &config_default, local_now);
	budget_observe(&b, &ri, local_now);
	assert_int_equal(b.window_end, true_reset_local + BUDGET_RESET_MARGIN);

	for (CallKind k = 0; k < _CALL_KIND_MAX; k++) {
		slot = budget_next_slot(&b, k, 1, local_now, 0.0);
		assert_true(slot >= true_reset_local);
		/* … and not hours late either. */
		assert_true(slot <= true_reset_local + 2 * USEC_PER_SEC);
	}
	/* Ticking at local times in between does not open the window. */
	budget_tick(&b, true_reset_local - 1);
	assert_int_equal(budget_remaining(&b, true_reset_local - 1), 0);
}

static void test_budget_local_clock_ahead_does_not_spend_early(void **state) {
	check_skewed_clock(3 * HOUR);
}

static void test_budget_local_clock_behind_does_not_spend_early(void **state) {
	check_skewed_clock(-3 * HOUR);
}

static void test_budget_window_end_includes_one_second_margin(void **state) {
	Budget b;
	usec_t local = S(T0 + 42) + 750000;
	RateInfo ri = headers(100, 50, T0 + 600, T0 + 10);

	budget_init(&b, &config_default, local);
	budget_observe(&b, &ri, local);
	assert_int_equal(b.window_end, local + S(590) + USEC_PER_SEC);
}

static void test_budget_reset_without_date_is_read_on_the_local_clock(void **state) {
	Budget b;
	RateInfo ri = headers(100, 50, T0 + HOUR, 0);

	ri.has_date = false;
	budget_init(&b, &config_default, S(T0 + 100));
	budget_observe(&b, &ri, S(T0 + 100));
	assert_int_equal(b.window_end, S(T0 + HOUR) + BUDGET_RESET_MARGIN);
	assert_int_equal(b.used, 50);
}

static void test_budget_past_reset_without_date_never_spends_early(void **state) {
	Budget b;
	/* Our clock is 2 h ahead and there is no Date: the Reset looks past. The
	 * server said its window is running, so assume a whole window remains. */
	usec_t local = S(T0 + 2 * HOUR + 1800);
	RateInfo ri = headers(100, 0, T0 + HOUR, 0);

	ri.has_date = false;
	budget_init(&b, &config_default, local);
	budget_observe(&b, &ri, local);
	assert_int_equal(b.used, 100);
	assert_true(b.window_end >= local + USEC_PER_HOUR);
	assert_true(budget_next_slot(&b, CALL_POLL, 1, local, 0.5) >= local + USEC_PER_HOUR);
}

static void test_budget_429_pauses_every_kind_until_reset_plus_jitter(void **state) {
	Budget b;
	usec_t local = S(T0 + 3000);
	RateInfo ri = headers(100, 0, T0 + HOUR, T0 + 3000);

	ri.has_retry_after = true;
	ri.retry_after_s = 600;
	budget_init(&b, &config_default, local);
	budget_observe(&b, &ri, local);
	budget_observe_429(&b, &ri, local, 0.5);

	/* 0.5 × min(10 % of 1 h, 60 s) = 30 s after the reset (+margin). */
	assert_int_equal(b.paused_until, S(T0 + HOUR + 1 + 30));
	assert_int_equal(b.used, b.limit);
	assert_int_equal(b.over_limit_429s, 1);
	assert_int_equal(budget_remaining(&b, local), 0);
	for (CallKind k = 0; k < _CALL_KIND_MAX; k++) {
		assert_int_equal(budget_next_slot(&b, k, 1, local, 0.0), b.paused_until);
		/* Past the reset but before the pause ends: still nothing. */
		assert_int_equal(budget_next_slot(&b, k, 1, S(T0 + HOUR + 5), 0.0), b.paused_until);
	}
	assert_int_equal(budget_remaining(&b, S(T0 + HOUR + 5)), 0);
	assert_int_equal(budget_remaining(&b, b.paused_until), 100);
}

static void test_budget_429_without_reset_uses_retry_after(void **state) {
	Budget b;
	RateInfo ri = { .has_retry_after = true, .retry_after_s = 900 };

	budget_init(&b, &config_default, S(T0 + 3000));
	budget_observe_429(&b, &ri, S(T0 + 3000), 0.0);
	/* max(window end T0+1h, now + 900 s) */
	assert_int_equal(b.paused_until, S(T0 + 3900));
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, S(T0 + HOUR) + 500000, 0.0), S(T0 + 3900));

	/* A short Retry-After does not end the pause before our window does. */
	ri.retry_after_s = 5;
	budget_init(&b, &config_default, S(T0 + 3000));
	budget_observe_429(&b, &ri, S(T0 + 3000), 0.0);
	assert_int_equal(b.paused_until, S(T0 + HOUR));
}

static void test_budget_429_without_any_hint_waits_60s(void **state) {
	Budget b;

	budget_init(&b, &config_default, S(T0 + 3590));
	budget_observe_429(&b, NULL, S(T0 + 3590), 0.0);
	assert_int_equal(b.paused_until, S(T0 + 3650));
	assert_int_equal(b.used, 100);
}

static void test_budget_429_jitter_is_a_tenth_of_the_window_at_most_60s(void **state) {
	Budget b;
	RateInfo hourly = headers(100, 0, T0 + HOUR, T0 + 100);
	RateInfo short_window = headers(100, 0, T0 + 20, T0 + 10);

	budget_init(&b, &config_default, S(T0 + 100));
	budget_observe_429(&b, &hourly, S(T0 + 100), 0.999999);
	assert_true(b.paused_until >= b.window_end);
	assert_true(b.paused_until < b.window_end + S(60));
	assert_true(b.paused_until > b.window_end + S(59));

	/* A 20 s server window (learned from two consecutive resets): at most 2 s. */
	budget_init(&b, &config_default, S(T0 - 10));
	{
		RateInfo before = headers(100, 50, T0, T0 - 10);

		budget_observe(&b, &before, S(T0 - 10));
	}
	budget_observe_429(&b, &short_window, S(T0 + 10), 0.999999);
	assert_int_equal(b.window_end - b.window_start, S(20));
	assert_true(b.paused_until < b.window_end + S(2));
	assert_true(b.paused_until > b.window_end + S(1));
}

static void test_budget_429_from_an_ended_window_pauses_only_briefly(void **state) {
	Budget b;
	RateInfo late = headers(100, 0, T0 + HOUR, T0 + 3599);

	late.has_retry_after = true;
	late.retry_after_s = 1;
	budget_init(&b, &config_default, S(T0 + 3000));
	{
		RateInfo ri = headers(100, 40, T0 + HOUR, T0 + 3000);

		budget_observe(&b, &ri, S(T0 + 3000));
	}
	budget_tick(&b, S(T0 + HOUR + 2));
	budget_charge(&b, CALL_POLL, S(T0 + HOUR + 2));

	/* A 429 for the old window, arriving after our reset. */
	budget_observe_429(&b, &late, S(T0 + HOUR + 3), 0.5);
	assert_int_equal(b.used, 1);
	assert_int_equal(b.over_limit_429s, 1);
	assert_true(b.paused_until <= S(T0 + HOUR + 3 + 1 + 60));
	assert_int_equal(budget_remaining(&b, b.paused_until), 99);
}

static void test_budget_paces_a_backlog_across_the_window(void **state) {
	Budget b;
	usec_t now = S(T0 + 600);
	usec_t interval;

	budget_init(&b, &config_default, now);
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1000, now, 0.5), now);
	budget_charge(&b, CALL_CREATE, now);

	/* 89 creates left for 3000 s: one every 3000/89 s. */
	interval = (S(T0 + HOUR) - now) / 89;
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1000, now, 0.5), now + interval);
	/* Asked again at that time, the answer stands. */
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1000, now + interval, 0.5), now + interval);
}

static void test_budget_does_not_pace_a_backlog_that_fits(void **state) {
	Budget b;
	usec_t now = S(T0 + 600);

	budget_init(&b, &config_default, now);
	budget_charge(&b, CALL_CREATE, now);
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 89, now, 0.99), now);
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 99, now, 0.99), now);
	assert_true(budget_next_slot(&b, CALL_CREATE, 90, now, 0.5) > now);
}

static void test_budget_pacing_jitter_is_plus_minus_20_percent(void **state) {
	Budget b;
	usec_t now = S(T0 + 600), interval, lo, hi;

	budget_init(&b, &config_default, now);
	budget_charge(&b, CALL_CREATE, now);
	interval = (S(T0 + HOUR) - now) / 89;

	lo = budget_next_slot(&b, CALL_CREATE, 1000, now, 0.0);
	hi = budget_next_slot(&b, CALL_CREATE, 1000, now, 0.999999);
	assert_true(lo >= now + interval * 8 / 10 - 1 && lo <= now + interval * 8 / 10 + 1);
	assert_true(hi <= now + interval * 12 / 10 && hi >= now + interval * 12 / 10 - interval / 1000);
	for (double j = 0.0; j < 1.0; j += 0.01) {
		usec_t s = budget_next_slot(&b, CALL_CREATE, 1000, now, j);

		assert_true(s >= lo && s <= hi);
	}
}

static void test_budget_no_burst_at_the_window_reset(void **state) {
	Budget b;
	usec_t now = S(T0 + 600), first;

	budget_init(&b, &config_default, now);
	charge_n(&b, CALL_CREATE, 90, now);

	/* Creates wait for the reset; the first one then goes a random part of
	 * min(interval = 3600/90 s = 40 s, 30 s) after it. */
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 500, now, 0.0), S(T0 + HOUR));
	first = budget_next_slot(&b, CALL_CREATE, 500, now, 0.5);
	assert_int_equal(first, S(T0 + HOUR + 15));
	assert_true(budget_next_slot(&b, CALL_CREATE, 500, now, 0.999999) < S(T0 + HOUR + 30));
	/* Any kind at the reset instant follows the same spread. */
	/* (a poll's interval is 3600/100 s = 36 s, capped at 30 s) */
	assert_int_equal(budget_next_slot(&b, CALL_POLL, 1, S(T0 + HOUR), 0.5), S(T0 + HOUR + 15));

	/* After that first call, the rest is paced, not burst. */
	budget_charge(&b, CALL_CREATE, first);
	assert_true(budget_next_slot(&b, CALL_CREATE, 500, first, 0.0) >= first + S(30));
}

static void test_budget_first_call_after_a_quiet_window_goes_at_once(void **state) {
	Budget b;

	budget_init(&b, &config_default, S(T0 + 600));
	charge_n(&b, CALL_CREATE, 10, S(T0 + 600));
	/* The window did not run out: nothing was waiting for the reset. */
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1, S(T0 + HOUR), 0.9), S(T0 + HOUR));
}

static void test_budget_next_slot_answer_stands_when_asked_again(void **state) {
	Budget b;
	usec_t now = S(T0 + 600), t;
	RateInfo ri = headers(100, 0, T0 + HOUR, T0 + 600);

	budget_init(&b, &config_default, now);
	budget_observe(&b, &ri, now);
	budget_observe_429(&b, &ri, now, 0.3);
	for (double j = 0.0; j < 1.0; j += 0.125) {
		t = budget_next_slot(&b, CALL_CREATE, 1000, now, j);
		assert_true(t > now);
		assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1000, t, j), t);
		assert_int_equal(budget_next_slot(&b, CALL_CREATE, 1000, t - 1, j), t);
	}
}

static void test_budget_invalid_kind_is_never_allowed(void **state) {
	Budget b;

	budget_init(&b, &config_default, S(T0));
	assert_int_equal(budget_next_slot(&b, _CALL_KIND_INVALID, 1, S(T0), 0.5), USEC_INFINITY);
	assert_int_equal(budget_next_slot(&b, _CALL_KIND_MAX, 1, S(T0), 0.5), USEC_INFINITY);
	assert_int_equal(budget_available(&b, (CallKind) 42, S(T0)), 0);
	assert_null(budget_call_kind_to_string(_CALL_KIND_MAX));
	assert_int_equal(budget_call_kind_from_string("bogus"), _CALL_KIND_INVALID);
	for (CallKind k = 0; k < _CALL_KIND_MAX; k++)
		assert_int_equal(budget_call_kind_from_string(budget_call_kind_to_string(k)), k);
}

static void test_budget_ignores_nonsense_headers(void **state) {
	Budget b;
	RateInfo ri = headers(100, 500, -5, -7);

	budget_init(&b, &config_default, S(T0 + 60));
	charge_n(&b, CALL_POLL, 4, S(T0 + 60));
	/* Negative Reset/Date: unplaced; Remaining above the limit gives nothing back. */
	budget_observe(&b, &ri, S(T0 + 60));
	assert_int_equal(b.used, 4);
	assert_int_equal(b.server_reset_epoch, 0);
	assert_int_equal(b.window_end, S(T0 + HOUR));

	/* Reset before the server's own Date: the window is taken to end at once
	 * (+margin), and the count is kept. */
	ri = headers(100, 90, T0 + 10, T0 + 70);
	budget_observe(&b, &ri, S(T0 + 70));
	assert_int_equal(b.window_end, S(T0 + 71));
	assert_int_equal(b.used, 10);

	/* A Reset years away cannot stop us for more than a day. */
	ri = headers(100, 0, T0 + 400 * 86400, T0 + 80);
	budget_observe(&b, &ri, S(T0 + 80));
	assert_true(b.window_end <= S(T0 + 80) + USEC_PER_DAY + BUDGET_RESET_MARGIN);
}

static void test_budget_extreme_times_do_not_overflow(void **state) {
	Budget b;
	usec_t now = USEC_INFINITY - 5;
	RateInfo ri = headers(100, 0, INT64_MAX, 1);
	BudgetConfig silly = { .limit_per_hour = 0, .poll_reserve = UINT_MAX, .window = USEC_INFINITY };

	ri.has_retry_after = true;
	ri.retry_after_s = UINT_MAX;
	budget_init(&b, &silly, now);
	assert_int_equal(b.limit, 1);
	budget_charge(&b, CALL_CREATE, now);
	budget_observe(&b, &ri, now);
	budget_observe_429(&b, &ri, now, 1e300);
	assert_true(budget_next_slot(&b, CALL_CREATE, UINT_MAX, now, -1.0) >= now);
	assert_int_equal(budget_remaining(&b, now), 0);

	budget_init(&b, &config_default, 0);
	ri = headers(UINT_MAX, UINT_MAX, T0, T0);
	budget_observe(&b, &ri, 0);
	budget_observe_429(&b, &ri, 0, NAN);
	assert_true(budget_next_slot(&b, CALL_POLL, 1, 0, NAN) > 0);
}

/* ------------------------------------------------------------------ persistence */

static void assert_budget_equal(const Budget *a, const Budget *b) {
	assert_int_equal(a->limit, b->limit);
	assert_int_equal(a->used, b->used);
	assert_int_equal(a->window_start, b->window_start);
	assert_int_equal(a->window_end, b->window_end);
	assert_int_equal(a->paused_until, b->paused_until);
	assert_int_equal(a->from_server, b->from_server);
	assert_int_equal(a->last_call_at, b->last_call_at);
	assert_int_equal(a->over_limit_429s, b->over_limit_429s);
	assert_int_equal(a->server_reset_epoch, b->server_reset_epoch);
	assert_int_equal(a->prev_window_exhausted, b->prev_window_exhausted);
}

static void test_budget_json_round_trip(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL, *parsed = NULL;
	Budget a, b;
	usec_t now = S(T0 + 1000);
	RateInfo ri = headers(250, 180, T0 + HOUR, T0 + 1000);

	budget_init(&a, &config_default, now);
	budget_observe(&a, &ri, now);
	charge_n(&a, CALL_CREATE, 3, now + 5);
	budget_observe_429(&a, NULL, now + 6, 0.25);

	assert_int_equal(budget_to_json(&a, &j), 0);
	/* Through text, as on disk. */
	parsed = json_tokener_parse(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	assert_non_null(parsed);

	budget_init(&b, &config_default, now + 7);
	assert_int_equal(budget_from_json(&b, parsed, now + 7), 0);
	assert_budget_equal(&a, &b);
	assert_int_equal(b.limit, 250);
	assert_int_equal(b.used, 250);
	assert_true(b.from_server);
}

static void test_budget_json_ended_window_loads_fresh(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	Budget a, b;
	RateInfo ri = headers(100, 50, T0 + HOUR, T0 + 1000);

	budget_init(&a, &config_default, S(T0 + 1000));
	budget_observe(&a, &ri, S(T0 + 1000));
	assert_int_equal(budget_to_json(&a, &j), 0);

	/* Restart 90 minutes later. */
	budget_init(&b, &config_default, S(T0 + 5400));
	assert_int_equal(budget_from_json(&b, j, S(T0 + 5400)), 0);
	assert_int_equal(b.used, 0);
	assert_false(b.from_server);
	/* Stepped in whole windows from the server-derived end. */
	assert_int_equal(b.window_start, S(T0 + HOUR + 1));
	assert_int_equal(b.window_end, S(T0 + 2 * HOUR + 1));
	assert_int_equal(budget_remaining(&b, S(T0 + 5400)), 100);

	/* A restart within the window keeps what it spent. */
	budget_init(&b, &config_default, S(T0 + 1200));
	assert_int_equal(budget_from_json(&b, j, S(T0 + 1200)), 0);
	assert_int_equal(b.used, 50);
	assert_true(b.from_server);
}

static void test_budget_json_rejects_malformed_and_leaves_budget_untouched(void **state) {
	static const char *const bad[] = {
		"[]",
		"42",
		"{}",
		/* wrong version */
		"{\"version\":3,\"limit\":100,\"used\":5,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* used as a string */
		"{\"version\":1,\"limit\":100,\"used\":\"5\",\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* used beyond an unsigned (over the limit is fine: a reload lowered it) */
		"{\"version\":1,\"limit\":100,\"used\":4294967296,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* negative used */
		"{\"version\":1,\"limit\":100,\"used\":-1,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* negative time */
		"{\"version\":1,\"limit\":100,\"used\":1,\"window_start_usec\":-1,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* limit 0 */
		"{\"version\":1,\"limit\":0,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* a double where an integer belongs */
		"{\"version\":1,\"limit\":100.5,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* end before start */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":1795874400000000,\"window_end_usec\":1795870800000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* a window years in the future */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":2795870800000000,\"window_end_usec\":2795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* paused for years */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":2795870800000000,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* boolean as integer */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":1,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* from_server without a server window */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":true,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
		/* missing prev_window_exhausted */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0}",
		/* 429 count too large for unsigned */
		"{\"version\":1,\"limit\":100,\"used\":0,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":99999999999,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}",
	};
	static const char good[] =
		"{\"version\":1,\"limit\":100,\"used\":7,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":0,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}";
	usec_t now = S(T0 + 1000);
	Budget b, snapshot;

	budget_init(&b, &config_default, now);
	charge_n(&b, CALL_POLL, 3, now);
	memcpy(&snapshot, &b, sizeof b);

	assert_int_equal(budget_from_json(&b, NULL, now), -EBADMSG);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_(json_object_putp) json_object *j = json_tokener_parse(bad[i]);

		assert_non_null(j);
		assert_int_equal(budget_from_json(&b, j, now), -EBADMSG);
		assert_memory_equal(&b, &snapshot, sizeof b);
	}

	/* The same shape with sane values loads: the rejections above are real. */
	{
		_cleanup_(json_object_putp) json_object *j = json_tokener_parse(good);

		assert_int_equal(budget_from_json(&b, j, now), 0);
		assert_int_equal(b.used, 7);
	}
}

/* ------------------------------------------------------------------ simulations */

static double rnd(uint64_t *s) {
	/* xorshift64*: deterministic, seeded per test. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (double) ((*s * UINT64_C(2685821657736338717)) >> 11) * 0x1.0p-53;
}

#define SIM_WINDOWS_MAX 64

/* A HITL.sh that enforces the limit: fixed windows aligned to its clock, every
 * call counted, a 429 (not counted) over the limit. */
typedef struct FakeServer {
	usec_t window;
	unsigned limit;
	usec_t origin;               /* start of window 0 */
	usec_t current_start;
	unsigned count;              /* all calls in the current window */
	unsigned foreign_per_window; /* calls of another user of the key, early in each window */
	unsigned over_limit;         /* 429s answered */
	unsigned ours[SIM_WINDOWS_MAX];        /* our accepted calls per window */
	unsigned ours_create[SIM_WINDOWS_MAX]; /* … of them creates */
	usec_t last_429_reset[SIM_WINDOWS_MAX];
} FakeServer;

static void fake_server_roll(FakeServer *s, usec_t server_now) {
	usec_t start = server_now - server_now % s->window;

	if (start != s->current_start) {
		s->current_start = start;
		s->count = 0;
	}
}

static size_t fake_server_index(const FakeServer *s, usec_t server_now) {
	size_t i = (size_t) ((server_now - s->origin) / s->window);

	assert_true(i < SIM_WINDOWS_MAX);
	return i;
}

static RateInfo fake_server_call(FakeServer *s, usec_t server_now, CallKind kind, bool *ret_429) {
	RateInfo ri;
	int64_t reset;

	fake_server_roll(s, server_now);
	reset = (int64_t) ((s->current_start + s->window) / USEC_PER_SEC);
	ri = headers(s->limit, 0, reset, (int64_t) (server_now / USEC_PER_SEC));
	if (s->count >= s->limit) {
		s->over_limit++;
		ri.has_retry_after = true;
		ri.retry_after_s = (unsigned) (reset - ri.date_epoch);
		*ret_429 = true;
		return ri;
	}
	s->count++;
	s->ours[fake_server_index(s, server_now)]++;
	if (kind == CALL_CREATE)
		s->ours_create[fake_server_index(s, server_now)]++;
	ri.remaining = s->limit - s->count;
	*ret_429 = false;
	return ri;
}

typedef struct Sim {
	FakeServer server;
	Budget budget;
	int64_t skew;         /* local clock = server clock + skew */
	usec_t latency;       /* request + response; the server acts half way */
	uint64_t rng;
	usec_t local_now;
	bool observe;         /* false: every reply is lost */
} Sim;

static usec_t sim_server_time(const Sim *sim, usec_t local) {
	return (usec_t) ((int64_t) local - sim->skew);
}

static void sim_init(Sim *sim, usec_t server_window, int64_t skew, usec_t server_start, uint64_t seed) {
	*sim = (Sim) {
		.server = { .window = server_window, .limit = 100 },
		.skew = skew,
		.latency = 200 * USEC_PER_MSEC,
		.rng = seed,
		.observe = true,
	};
	sim->server.origin = server_start - server_start % server_window;
	sim->local_now = (usec_t) ((int64_t) server_start + skew);
	budget_init(&sim->budget, &config_default, sim->local_now);
}

/* One call of kind at the local time the budget names; returns false once that
 * time is at or beyond local_end. */
static bool sim_call(Sim *sim, CallKind kind, unsigned wanted, usec_t local_end) {
	usec_t slot = budget_next_slot(&sim->budget, kind, wanted, sim->local_now, rnd(&sim->rng));
	RateInfo ri;
	bool is_429;

	assert_true(slot >= sim->local_now);
	if (slot >= local_end)
		return false;
	sim->local_now = slot;
	budget_charge(&sim->budget, kind, sim->local_now);

	ri = fake_server_call(&sim->server, sim_server_time(sim, sim->local_now + sim->latency / 2), kind, &is_429);
	sim->local_now += sim->latency;
	if (!sim->observe)
		return true;
	budget_observe(&sim->budget, &ri, sim->local_now);
	if (is_429)
		budget_observe_429(&sim->budget, &ri, sim->local_now, rnd(&sim->rng));
	return true;
}

static void test_budget_backlog_never_exceeds_limit_minus_reserve(void **state) {
	Sim sim;
	Budget b;
	usec_t end, now = S(T0 + 10);
	unsigned calls = 0;

	/* A caller that ignores pacing and asks again and again at one instant. */
	budget_init(&b, &config_default, now);
	for (unsigned i = 0; i < 1000; i++)
		if (budget_next_slot(&b, CALL_CREATE, 1, now, 0.5) == now) {
			budget_charge(&b, CALL_CREATE, now);
			calls++;
		}
	assert_int_equal(calls, 90);

	/* Paced, every reply lost: the ledger alone must hold the line. */
	sim_init(&sim, USEC_PER_HOUR, 0, S(T0) + 1, 7);
	sim.observe = false;
	end = sim.budget.window_end;
	calls = 0;
	while (sim_call(&sim, CALL_CREATE, 5000, end))
		calls++;
	print_message("paced, replies lost: %u creates in the hour\n", calls);
	assert_true(calls <= 90);
	assert_true(calls >= 81);
	assert_int_equal(sim.server.ours[0], calls);
	assert_int_equal(sim.server.over_limit, 0);
}

/* A backlog of creates against the hour, calls at the budget's times, a fake
 * server that enforces the limit: zero 429s, and each full hour spends at least
 * 90 % of the create share. */
static void check_hours_of_backlog(int64_t skew, uint64_t seed) {
	Sim sim;
	const unsigned hours = 4;
	usec_t server_end = S(T0 + hours * HOUR);

	sim_init(&sim, USEC_PER_HOUR, skew, S(T0) + 2 * USEC_PER_SEC, seed);
	while (sim_call(&sim, CALL_CREATE, 5000, (usec_t) ((int64_t) server_end + skew)))
		;

	assert_int_equal(sim.server.over_limit, 0);
	for (unsigned h = 0; h < hours; h++) {
		print_message("skew %+llds, hour %u: %u creates\n", (long long) (skew / (int64_t) USEC_PER_SEC), h,
		              sim.server.ours_create[h]);
		assert_true(sim.server.ours_create[h] <= 90);
		assert_true(sim.server.ours_create[h] >= 81);
	}
}

static void test_budget_hours_of_backlog_use_90_percent_without_429(void **state) {
	check_hours_of_backlog(0, 1);
	check_hours_of_backlog(0, 2);
	check_hours_of_backlog(0, 3);
}

static void test_budget_hours_of_backlog_with_a_skewed_clock(void **state) {
	check_hours_of_backlog((int64_t) S(3 * HOUR + 17 * 60 + 3), 4);
	check_hours_of_backlog(-(int64_t) S(3 * HOUR + 17 * 60 + 3), 5);
	check_hours_of_backlog((int64_t) S(3 * HOUR), 6);
	check_hours_of_backlog(-(int64_t) S(3 * HOUR), 7);
}

static void test_budget_follows_short_server_windows(void **state) {
	/* The server's window is 20 s (told only through Reset headers); ours is
	 * configured as an hour. The budget must spend per server window. */
	static const int64_t skews[] = { 0, -(int64_t) S(3 * HOUR) - 123456, (int64_t) S(3 * HOUR) + 654321 };

	for (size_t s = 0; s < ELEMENTSOF(skews); s++) {
		const unsigned windows = 30;
		Sim sim;
		usec_t server_end;
		unsigned total = 0;

		sim_init(&sim, 20 * USEC_PER_SEC, skews[s], S(T0) + 3 * USEC_PER_SEC, 11 + s);
		sim.latency = 20 * USEC_PER_MSEC;
		server_end = sim.server.origin + windows * sim.server.window;
		while (sim_call(&sim, CALL_CREATE, 100000, (usec_t) ((int64_t) server_end + sim.skew)))
			;

		assert_int_equal(sim.server.over_limit, 0);
		for (unsigned w = 0; w < windows; w++) {
			assert_true(sim.server.ours_create[w] <= 90);
			total += sim.server.ours_create[w];
		}
		/* Past a warm-up of two windows (learning the length), ≥ 90 % of the
		 * create share of every window is spent. */
		{
			unsigned settled = 0;

			for (unsigned w = 3; w < windows; w++)
				settled += sim.server.ours_create[w];
			print_message("20 s windows, skew %lld µs: %u creates in %u windows, %u in the last %u\n",
			              (long long) skews[s], total, windows, settled, windows - 3);
			assert_true(settled >= (windows - 3) * 81);
		}
		/* The window length was learned from the Reset headers (20 s, plus at
		 * most the slop of the end estimate). */
		assert_true(sim.budget.window_end - sim.budget.window_start >= 19 * USEC_PER_SEC);
		assert_true(sim.budget.window_end - sim.budget.window_start <= 23 * USEC_PER_SEC);
	}
}

static void test_budget_mixed_traffic_never_overspends(void **state) {
	/* Creates from a backlog, a poll every 30 s (more than the reserve), an
	 * interactive call now and then: the scheduler asks for whichever is due
	 * first. Nothing ever gets a 429; polls keep going while creates wait. */
	Sim sim;
	const unsigned hours = 3;
	usec_t local_end, next_poll, next_interactive;
	unsigned polls = 0;

	sim_init(&sim, USEC_PER_HOUR, (int64_t) S(1234), S(T0) + 5 * USEC_PER_SEC, 99);
	local_end = (usec_t) ((int64_t) S(T0 + hours * HOUR) + sim.skew);
	next_poll = sim.local_now;
	next_interactive = sim.local_now + S(600);

	for (;;) {
		usec_t t_create = budget_next_slot(&sim.budget, CALL_CREATE, 5000, sim.local_now, 0.5);
		usec_t t_poll = budget_next_slot(&sim.budget, CALL_POLL, 1, next_poll > sim.local_now ? next_poll : sim.local_now, 0.5);
		usec_t t_inter = budget_next_slot(&sim.budget, CALL_INTERACTIVE, 1,
		                                  next_interactive > sim.local_now ? next_interactive : sim.local_now, 0.5);
		CallKind kind = CALL_CREATE;
		usec_t t = t_create;

		if (t_poll < t)
			kind = CALL_POLL, t = t_poll;
		if (t_inter < t)
			kind = CALL_INTERACTIVE, t = t_inter;
		if (t >= local_end)
			break;
		sim.local_now = t;
		if (!sim_call(&sim, kind, kind == CALL_CREATE ? 5000 : 1, local_end))
			break;
		if (kind == CALL_POLL)
			next_poll = sim.local_now + S(30), polls++;
		else if (kind == CALL_INTERACTIVE)
			next_interactive = sim.local_now + S(600);
	}

	assert_int_equal(sim.server.over_limit, 0);
	for (unsigned h = 0; h < hours; h++) {
		assert_true(sim.server.ours[h] <= 100);
		assert_true(sim.server.ours_create[h] <= 90);
		/* The reserve kept creates from eating the polls' last 10 calls. */
		assert_true(sim.server.ours[h] - sim.server.ours_create[h] >= 10);
	}
	assert_true(polls >= hours * 10);
}

static void test_budget_another_user_of_the_key_stops_us_until_the_reset(void **state) {
	/* Someone else spends 60 calls at the start of each server hour, and at
	 * :55 fills the window to the limit. Our ledger learns the first from
	 * Remaining; the second gives a 429, which stops every call until that
	 * window's reset. */
	Sim sim;
	const unsigned hours = 3;
	usec_t server_end = S(T0 + hours * HOUR), paused_reset = 0;
	bool started[SIM_WINDOWS_MAX] = {}, filled[SIM_WINDOWS_MAX] = {};

	sim_init(&sim, USEC_PER_HOUR, -(int64_t) S(7200), S(T0) + 2 * USEC_PER_SEC, 1234);
	for (;;) {
		usec_t slot = budget_next_slot(&sim.budget, CALL_CREATE, 5000, sim.local_now, rnd(&sim.rng));
		usec_t server_at = sim_server_time(&sim, slot + sim.latency / 2);
		size_t w;
		RateInfo ri;
		bool is_429;

		assert_true(slot >= sim.local_now);
		if (sim_server_time(&sim, slot) >= server_end)
			break;
		if (paused_reset > 0)
			assert_true(server_at >= paused_reset);

		fake_server_roll(&sim.server, server_at);
		w = fake_server_index(&sim.server, server_at);
		if (!started[w]) {
			sim.server.count += 60;
			started[w] = true;
		}
		if (!filled[w] && server_at - sim.server.current_start >= S(55 * 60)) {
			sim.server.count = sim.server.limit;
			filled[w] = true;
		}

		sim.local_now = slot;
		budget_charge(&sim.budget, CALL_CREATE, slot);
		ri = fake_server_call(&sim.server, server_at, CALL_CREATE, &is_429);
		sim.local_now += sim.latency;
		budget_observe(&sim.budget, &ri, sim.local_now);
		if (is_429) {
			budget_observe_429(&sim.budget, &ri, sim.local_now, rnd(&sim.rng));
			paused_reset = S(ri.reset_epoch);
			assert_int_equal(budget_remaining(&sim.budget, sim.local_now), 0);
		}
	}
	print_message("shared key: %u 429s; ours per hour %u %u %u\n", sim.server.over_limit, sim.server.ours[0],
	              sim.server.ours[1], sim.server.ours[2]);
	/* One 429 per hour at most (the one that told us), none retried into. */
	assert_true(sim.server.over_limit >= 1);
	assert_true(sim.server.over_limit <= hours);
	/* What the other user left for creates (100 - 60 - reserve 10) is spent
	 * before :55, never more. */
	for (unsigned h = 0; h < hours; h++) {
		assert_true(sim.server.ours[h] <= 30);
		assert_true(sim.server.ours[h] >= 20);
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_starts_with_config_limit_and_local_hour),
		cmocka_unit_test(test_budget_tick_rolls_into_a_fresh_window),
		cmocka_unit_test(test_budget_counts_a_call_whose_reply_is_lost),
		cmocka_unit_test(test_budget_creates_stop_at_limit_minus_reserve),
		cmocka_unit_test(test_budget_polls_spend_the_reserve_not_the_creates_share),
		cmocka_unit_test(test_budget_creates_are_paced_from_the_last_create),
		cmocka_unit_test(test_budget_paces_to_end_before_the_reset),
		cmocka_unit_test(test_budget_other_kinds_may_use_the_reserve),
		cmocka_unit_test(test_budget_interactive_calls_never_touch_the_reserve),
		cmocka_unit_test(test_budget_interactive_share_per_uid_then_total),
		cmocka_unit_test(test_budget_interactive_refund_gives_the_share_back),
		cmocka_unit_test(test_budget_interactive_waits_out_a_pause),
		cmocka_unit_test(test_budget_interactive_shares_scale_with_the_limit),
		cmocka_unit_test(test_budget_interactive_uids_beyond_the_table_wait),
		cmocka_unit_test(test_budget_reserve_is_clamped_to_half_the_limit),
		cmocka_unit_test(test_budget_never_spends_past_server_remaining),
		cmocka_unit_test(test_budget_new_server_window_replaces_the_count),
		cmocka_unit_test(test_budget_poll_that_opened_the_new_window_counts_in_it),
		cmocka_unit_test(test_budget_stale_reply_never_lowers_the_count),
		cmocka_unit_test(test_budget_reply_from_an_ended_window_is_ignored),
		cmocka_unit_test(test_budget_adopts_the_server_limit),
		cmocka_unit_test(test_budget_local_clock_ahead_does_not_spend_early),
		cmocka_unit_test(test_budget_local_clock_behind_does_not_spend_early),
		cmocka_unit_test(test_budget_window_end_includes_one_second_margin),
		cmocka_unit_test(test_budget_reset_without_date_is_read_on_the_local_clock),
		cmocka_unit_test(test_budget_past_reset_without_date_never_spends_early),
		cmocka_unit_test(test_budget_429_pauses_every_kind_until_reset_plus_jitter),
		cmocka_unit_test(test_budget_429_without_reset_uses_retry_after),
		cmocka_unit_test(test_budget_429_without_any_hint_waits_60s),
		cmocka_unit_test(test_budget_429_jitter_is_a_tenth_of_the_window_at_most_60s),
		cmocka_unit_test(test_budget_429_from_an_ended_window_pauses_only_briefly),
		cmocka_unit_test(test_budget_paces_a_backlog_across_the_window),
		cmocka_unit_test(test_budget_does_not_pace_a_backlog_that_fits),
		cmocka_unit_test(test_budget_pacing_jitter_is_plus_minus_20_percent),
		cmocka_unit_test(test_budget_no_burst_at_the_window_reset),
		cmocka_unit_test(test_budget_first_call_after_a_quiet_window_goes_at_once),
		cmocka_unit_test(test_budget_next_slot_answer_stands_when_asked_again),
		cmocka_unit_test(test_budget_invalid_kind_is_never_allowed),
		cmocka_unit_test(test_budget_ignores_nonsense_headers),
		cmocka_unit_test(test_budget_extreme_times_do_not_overflow),
		cmocka_unit_test(test_budget_json_round_trip),
		cmocka_unit_test(test_budget_json_ended_window_loads_fresh),
		cmocka_unit_test(test_budget_json_rejects_malformed_and_leaves_budget_untouched),
		cmocka_unit_test(test_budget_backlog_never_exceeds_limit_minus_reserve),
		cmocka_unit_test(test_budget_hours_of_backlog_use_90_percent_without_429),
		cmocka_unit_test(test_budget_hours_of_backlog_with_a_skewed_clock),
		cmocka_unit_test(test_budget_follows_short_server_windows),
		cmocka_unit_test(test_budget_mixed_traffic_never_overspends),
		cmocka_unit_test(test_budget_another_user_of_the_key_stops_us_until_the_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
