/* The usage history's pure parts: outcome classes, hourly buckets and their
 * bound, queries, and the foreign-use estimate (usage.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "usage.h"

#define LOOP_A "0123456789abcdef01234567"
#define LOOP_B "fedcba9876543210fedcba98"
#define H0 490000U /* an hour in 2025 */

static void test_usage_outcome_classes(void **state) {
	assert_int_equal(usage_outcome_from_status(200, true), USAGE_2XX);
	assert_int_equal(usage_outcome_from_status(201, true), USAGE_2XX);
	assert_int_equal(usage_outcome_from_status(404, true), USAGE_4XX);
	assert_int_equal(usage_outcome_from_status(301, true), USAGE_4XX);
	assert_int_equal(usage_outcome_from_status(429, true), USAGE_429);
	assert_int_equal(usage_outcome_from_status(503, true), USAGE_5XX);
	assert_int_equal(usage_outcome_from_status(0, true), USAGE_NO_REPLY);
	assert_int_equal(usage_outcome_from_status(0, false), USAGE_UNSENT);
	assert_string_equal(usage_kind_to_string(USAGE_INTERACTIVE), "interactive");
	assert_int_equal(usage_kind_from_string("trigger"), USAGE_TRIGGER);
	assert_int_equal(usage_kind_from_string("nope"), _USAGE_KIND_INVALID);
	assert_int_equal(usage_group_from_string("hour"), USAGE_BY_HOUR);
}

static void test_usage_history_counts_and_queries(void **state) {
	UsageHistory h = {};
	_cleanup_(freep) UsageSum *v = NULL;
	size_t n;

	assert_int_equal(usage_history_add(&h, H0, USAGE_CREATE, USAGE_2XX, 1000, LOOP_A, 3), 0);
	assert_int_equal(usage_history_add(&h, H0, USAGE_CREATE, USAGE_4XX, 1000, LOOP_A, 1), 0);
	assert_int_equal(usage_history_add(&h, H0, USAGE_CREATE, USAGE_UNSENT, 1000, LOOP_A, 5), 0);
	assert_int_equal(usage_history_add(&h, H0 + 1, USAGE_POLL, USAGE_2XX, USAGE_UID_SHARED, "", 2), 0);
	assert_int_equal(usage_history_add(&h, H0 + 1, USAGE_CREATE, USAGE_2XX, 1001, LOOP_B, 1), 0);
	assert_int_equal(usage_history_add(&h, H0 + 1, USAGE_DECISION, USAGE_NONE, 1000, LOOP_A, 2), 0);
	assert_int_equal(usage_history_add(&h, H0 - 1, USAGE_PROBE, USAGE_2XX, USAGE_UID_SHARED, "", 1), 0);
	assert_int_equal(usage_history_add(&h, H0, USAGE_CREATE, _USAGE_OUTCOME_MAX, 1, "", 1), -EINVAL);

	/* by kind, all hours */
	assert_int_equal(usage_history_query(&h, H0 - 1, H0 + 1, USAGE_UID_ANY, USAGE_BY_KIND, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[0].kind, USAGE_CREATE);
	assert_int_equal(v[0].calls, 5);                  /* unsent ones are no calls */
	assert_int_equal(v[0].by_outcome[USAGE_UNSENT], 5);
	assert_int_equal(v[1].kind, USAGE_POLL);
	assert_int_equal(v[1].calls, 2);
	assert_int_equal(v[2].kind, USAGE_PROBE);
	assert_int_equal(v[3].kind, USAGE_DECISION);
	assert_int_equal(v[3].decisions, 2);
	assert_int_equal(v[3].calls, 0);
	free(TAKE_PTR(v));

	/* one uid's share, from H0 on */
	assert_int_equal(usage_history_query(&h, H0, H0 + 1, 1000, USAGE_BY_LOOP, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].loop_id, LOOP_A);
	assert_int_equal(v[0].calls, 4);
	assert_int_equal(v[0].decisions, 2);
	free(TAKE_PTR(v));

	/* by hour: every hour of the range, empty ones too */
	assert_int_equal(usage_history_query(&h, H0 - 2, H0 + 1, USAGE_UID_ANY, USAGE_BY_HOUR, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[0].hour, H0 - 2);
	assert_int_equal(v[0].calls, 0);
	assert_int_equal(v[1].calls, 1);
	assert_int_equal(v[2].calls, 4);
	assert_int_equal(v[3].calls, 3);
	free(TAKE_PTR(v));

	assert_int_equal(usage_history_query(&h, H0, H0 + 1, USAGE_UID_ANY, USAGE_BY_UID, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].uid, 1000);
	assert_int_equal(v[1].uid, 1001);
	assert_int_equal(v[2].uid, USAGE_UID_SHARED);

	usage_history_expire(&h, H0);
	assert_null(usage_history_get(&h, H0 - 1));
	assert_non_null(usage_history_get(&h, H0));
	usage_history_done(&h);
}

/* More distinct rows than an hour may hold fold into rows without loop, then
 * without uid: the bound holds and not one call is lost. */
static void test_usage_history_folds_beyond_bound(void **state) {
	UsageHistory h = {};
	_cleanup_(freep) UsageSum *v = NULL;
	uint64_t total = 0;
	size_t n;

	for (uint32_t uid = 0; uid < 2000; uid++)
		for (unsigned loop = 0; loop < 3; loop++) {
			char id[USAGE_LOOP_ID_MAX];

			snprintf(id, sizeof id, "%024x", loop);
			assert_int_equal(usage_history_add(&h, H0, (UsageKind) (uid % 3), (UsageOutcome) (loop % 2), uid, id, 1),
			                 0);
		}
	assert_true(usage_history_get(&h, H0)->n_rows <= USAGE_ROWS_PER_HOUR_MAX + _USAGE_KIND_MAX * _USAGE_OUTCOME_MAX);
	assert_int_equal(usage_history_query(&h, H0, H0, USAGE_UID_ANY, USAGE_BY_KIND, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		total += v[i].calls;
	assert_int_equal(total, 6000);
	usage_history_done(&h);
}

static RateInfo rate(unsigned limit, unsigned remaining, int64_t reset) {
	return (RateInfo) { .has_limit = true, .has_remaining = true, .has_reset = true, .limit = limit,
		            .remaining = remaining, .reset_epoch = reset };
}

static void test_usage_window_finds_foreign_calls(void **state) {
	UsageWindow w = { .reset_epoch = 1 }; /* a history that knew an earlier window */
	RateInfo r;

	/* hitld's own calls: the server's count matches, nothing foreign */
	r = rate(100, 99, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	r = rate(100, 98, 1000);
	assert_int_equal(usage_window_observe(&w, 201, &r, 0), 0);
	assert_int_equal(w.own, 2);
	/* someone spent 5: the next reply shows it, once */
	r = rate(100, 92, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 5);
	assert_int_equal(w.foreign, 5);
	r = rate(100, 91, 1000);
	assert_int_equal(usage_window_observe(&w, 404, &r, 0), 0);
	assert_int_equal(w.foreign, 5);
	/* a stale reply (older window) changes nothing */
	r = rate(100, 10, 900);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	/* a new window starts over */
	r = rate(100, 99, 4600);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	assert_int_equal(w.own, 1);
	assert_int_equal(w.foreign, 0);
	/* no reply: nothing found, but the server may have counted it */
	assert_int_equal(usage_window_observe(&w, 0, NULL, 0), 0);
	assert_int_equal(w.own, 2);
	r = rate(100, 97, 4600);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	assert_int_equal(w.foreign, 0);
}

/* A new history (no window known) cannot tell who made the calls the server
 * counted before its first reply: they are hitld's own (an upgrade, a state
 * directory set aside), and only later ones can be foreign. A later window
 * starts from nothing: whatever the server counted there that hitld did not
 * make is foreign, also calls made while hitld was down. */
static void test_usage_window_new_history_takes_earlier_calls_as_own(void **state) {
	UsageWindow w = {};
	RateInfo r;

	r = rate(100, 60, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	assert_int_equal(w.own, 40);
	r = rate(100, 55, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 4);
	r = rate(100, 89, 4600);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 10);
}

/* Calls of hitld's own in flight may have been counted already: they are
 * never taken for foreign ones. */
static void test_usage_window_in_flight_is_not_foreign(void **state) {
	UsageWindow w = { .reset_epoch = 1 };
	RateInfo r;

	/* 3 calls sent at once; the first reply already counts all three */
	r = rate(100, 97, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 2), 0);
	r = rate(100, 97, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 1), 0);
	r = rate(100, 97, 1000);
	assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	assert_int_equal(w.foreign, 0);
}

/* A 429 hitld did not cause: the whole rest of the limit is foreign. One it
 * caused itself is not. 401s and 429s are not counted by the server. */
static void test_usage_window_429(void **state) {
	UsageWindow w = { .reset_epoch = 1 };
	RateInfo r;

	for (unsigned i = 1; i <= 10; i++) {
		r = rate(20, 20 - i, 1000);
		assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	}
	r = rate(20, 0, 1000);
	assert_int_equal(usage_window_observe(&w, 429, &r, 0), 10);
	assert_true(w.foreign_429);
	assert_int_equal(w.own, 10);

	w = (UsageWindow) { .reset_epoch = 1 };
	for (unsigned i = 1; i <= 20; i++) {
		r = rate(20, 20 - i, 1000);
		assert_int_equal(usage_window_observe(&w, 200, &r, 0), 0);
	}
	r = rate(20, 0, 1000);
	assert_int_equal(usage_window_observe(&w, 429, &r, 0), 0);
	assert_false(w.foreign_429);
	r = rate(20, 0, 1000);
	assert_int_equal(usage_window_observe(&w, 401, &r, 0), 0);
	assert_int_equal(w.own, 20);
}

/* A trigger's workflow id as the history keeps it: as it is up to 16
 * characters after wf_; longer, shortened so that ids alike at the start
 * stay apart; nothing for what is no workflow id. */
static void test_usage_workflow_key(void **state) {
	char a[USAGE_LOOP_ID_MAX], b[USAGE_LOOP_ID_MAX];

	usage_workflow_key("wf_deploy_4812", a);
	assert_string_equal(a, "wf_deploy_4812");
	usage_workflow_key("wf_0123456789abcdef", a);
	assert_string_equal(a, "wf_0123456789abcdef");
	assert_true(usage_id_is_workflow(a));
	assert_false(usage_id_is_workflow("0123456789abcdef01234567"));
	assert_false(usage_id_is_workflow(""));

	usage_workflow_key("wf_customer_onboarding_step_1", a);
	usage_workflow_key("wf_customer_onboarding_step_2", b);
	assert_int_equal(strlen(a), 3 + 12 + 1 + 4);
	assert_memory_equal(a, "wf_customer_onb~", 16);
	assert_memory_equal(b, "wf_customer_onb~", 16);
	assert_string_not_equal(a, b);
	/* the same id, the same key */
	usage_workflow_key("wf_customer_onboarding_step_1", b);
	assert_string_equal(a, b);
	usage_workflow_key("wf_" "abcdefghij" "abcdefghij" "abcdefghij" "abcdefghij" "abcdefghij" "abcdefghij"
	                   "abcdefghij" "abcdefghij" "abcdefghij" "abcdefg", a);
	assert_int_equal(strlen(a), 20);

	usage_workflow_key("wf_", a);
	assert_string_equal(a, "");
	usage_workflow_key("wf_a b", a);
	assert_string_equal(a, "");
	usage_workflow_key("wf_a~b", a);
	assert_string_equal(a, "");
	usage_workflow_key("WF_abc", a);
	assert_string_equal(a, "");
	usage_workflow_key(NULL, a);
	assert_string_equal(a, "");
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_outcome_classes),
		cmocka_unit_test(test_usage_history_counts_and_queries),
		cmocka_unit_test(test_usage_history_folds_beyond_bound),
		cmocka_unit_test(test_usage_window_finds_foreign_calls),
		cmocka_unit_test(test_usage_window_new_history_takes_earlier_calls_as_own),
		cmocka_unit_test(test_usage_window_in_flight_is_not_foreign),
		cmocka_unit_test(test_usage_window_429),
		cmocka_unit_test(test_usage_workflow_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
