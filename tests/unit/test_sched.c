/* Scheduling policy: priority, then fair round-robin across uids, then age. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched.h"

static Record mk(Priority p, uid_t uid, uint64_t seq) {
	return (Record) { .priority = p, .owner_uid = uid, .seq = seq, .state = REQUEST_QUEUED };
}

static void test_sched_higher_priority_first_regardless_of_age(void **state) {
	Record a = mk(PRIORITY_LOW, 1000, 1), b = mk(PRIORITY_CRITICAL, 1000, 9), c = mk(PRIORITY_HIGH, 1000, 2);
	Record *q[] = { &a, &b, &c };
	SchedState st = {};

	assert_ptr_equal(sched_pick_create(q, 3, &st, 0, NULL), &b);
}

static void test_sched_oldest_first_within_one_uid(void **state) {
	Record a = mk(PRIORITY_MEDIUM, 1000, 5), b = mk(PRIORITY_MEDIUM, 1000, 3), c = mk(PRIORITY_MEDIUM, 1000, 4);
	Record *q[] = { &a, &b, &c };
	SchedState st = {};

	assert_ptr_equal(sched_pick_create(q, 3, &st, 0, NULL), &b);
}

static void test_sched_round_robin_across_uids(void **state) {
	/* uid 1000 floods the queue first; uid 1001 and 1002 still get turns. */
	Record r[9];
	Record *q[9];
	SchedState st = {};
	uid_t served[6];
	size_t n = 0;

	for (int i = 0; i < 5; i++)
		r[n] = mk(PRIORITY_MEDIUM, 1000, (uint64_t) i + 1), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1001, 10), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1001, 11), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1002, 12), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1002, 13), n++;
	for (size_t i = 0; i < n; i++)
		q[i] = &r[i];

	for (int k = 0; k < 6; k++) {
		Record *p = sched_pick_create(q, n, &st, 0, NULL);
		assert_non_null(p);
		served[k] = p->owner_uid;
		sched_note_served(&st, p);
		p->next_attempt_at = USEC_INFINITY; /* taken: out of the queue */
	}
	assert_int_equal(served[0], 1000);
	assert_int_equal(served[1], 1001);
	assert_int_equal(served[2], 1002);
	assert_int_equal(served[3], 1000);
	assert_int_equal(served[4], 1001);
	assert_int_equal(served[5], 1002);
}

static void test_sched_skips_backed_off_and_reports_when_ready(void **state) {
	Record a = mk(PRIORITY_HIGH, 1000, 1), b = mk(PRIORITY_LOW, 1000, 2);
	Record *q[] = { &a, &b };
	SchedState st = {};
	usec_t next = 0;

	a.next_attempt_at = 50 * USEC_PER_SEC;
	assert_ptr_equal(sched_pick_create(q, 2, &st, 10 * USEC_PER_SEC, &next), &b);
	b.next_attempt_at = 40 * USEC_PER_SEC;
	assert_null(sched_pick_create(q, 2, &st, 10 * USEC_PER_SEC, &next));
	assert_int_equal(next, 40 * USEC_PER_SEC);
	assert_ptr_equal(sched_pick_create(q, 2, &st, 60 * USEC_PER_SEC, &next), &a);
}

static void test_sched_empty_queue_picks_nothing(void **state) {
	SchedState st = {};
	usec_t next = 0;

	assert_null(sched_pick_create(NULL, 0, &st, 0, &next));
	assert_true(next == USEC_INFINITY);
}

static void test_sched_position_matches_pick_order(void **state) {
	Record r[7];
	Record *q[7];
	SchedState st = {};
	size_t n = 0;

	r[n] = mk(PRIORITY_LOW, 1000, 1), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1000, 2), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1000, 3), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1001, 4), n++;
	r[n] = mk(PRIORITY_CRITICAL, 1002, 5), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1002, 6), n++;
	r[n] = mk(PRIORITY_MEDIUM, 1001, 7), n++;
	for (size_t i = 0; i < n; i++)
		q[i] = &r[i];

	size_t expected_pos[7] = {};
	SchedState sim = st;
	for (size_t k = 1; k <= n; k++) {
		Record *p = sched_pick_create(q, n, &sim, 0, NULL);
		assert_non_null(p);
		expected_pos[p - r] = k;
		sched_note_served(&sim, p);
		p->next_attempt_at = USEC_INFINITY;
	}
	for (size_t i = 0; i < n; i++)
		r[i].next_attempt_at = 0;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sched_position(q, n, &st, &r[i]), expected_pos[i]);
}

static void test_sched_backoff_doubles_to_the_cap_with_bounded_jitter(void **state) {
	usec_t cap = 300 * USEC_PER_SEC;

	assert_int_equal(sched_backoff(0, cap, 0.5), 0);
	assert_int_equal(sched_backoff(1, cap, 0.5), 2 * USEC_PER_SEC);
	assert_int_equal(sched_backoff(2, cap, 0.5), 4 * USEC_PER_SEC);
	assert_int_equal(sched_backoff(5, cap, 0.5), 32 * USEC_PER_SEC);
	assert_int_equal(sched_backoff(40, cap, 0.5), cap);
	assert_true(sched_backoff(3, cap, 0.0) >= (usec_t) (8 * USEC_PER_SEC * 0.8) - 1);
	assert_true(sched_backoff(3, cap, 0.999) < (usec_t) (8 * USEC_PER_SEC * 1.2));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched_higher_priority_first_regardless_of_age),
		cmocka_unit_test(test_sched_oldest_first_within_one_uid),
		cmocka_unit_test(test_sched_round_robin_across_uids),
		cmocka_unit_test(test_sched_skips_backed_off_and_reports_when_ready),
		cmocka_unit_test(test_sched_empty_queue_picks_nothing),
		cmocka_unit_test(test_sched_position_matches_pick_order),
		cmocka_unit_test(test_sched_backoff_doubles_to_the_cap_with_bounded_jitter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
