/* Scheduling policy: precedence tier, then fair round-robin across uids, then
 * priority and age within one uid's own requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

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

static void test_sched_round_robin_comes_before_priority(void **state) {
	/* Issue 15: uid 1000 queues critical requests; root's high and medium
	 * ones take turns with them instead of waiting for all of them. */
	Record r[12];
	Record *q[12];
	SchedState st = {};
	size_t n = 0;

	for (int i = 0; i < 10; i++)
		r[n] = mk(PRIORITY_CRITICAL, 1000, (uint64_t) i + 1), n++;
	r[n] = mk(PRIORITY_HIGH, 0, 20), n++;
	r[n] = mk(PRIORITY_MEDIUM, 0, 21), n++;
	for (size_t i = 0; i < n; i++)
		q[i] = &r[i];

	assert_int_equal(sched_position(q, n, &st, &r[10]), 1);
	assert_int_equal(sched_position(q, n, &st, &r[11]), 3);
	for (int k = 0; k < 4; k++) {
		Record *p = sched_pick_create(q, n, &st, 0, NULL);

		assert_non_null(p);
		assert_int_equal(p->owner_uid, k % 2 == 0 ? 0 : 1000);
		if (p->owner_uid == 0)
			assert_int_equal(p->priority, k == 0 ? PRIORITY_HIGH : PRIORITY_MEDIUM);
		sched_note_served(&st, p);
		p->next_attempt_at = USEC_INFINITY;
	}
}

static void test_sched_priority_orders_only_a_uids_own_requests(void **state) {
	Record a = mk(PRIORITY_LOW, 1000, 1), b = mk(PRIORITY_CRITICAL, 1000, 2), c = mk(PRIORITY_LOW, 1001, 3);
	Record *q[] = { &a, &b, &c };
	SchedState st = { .served = { false, true }, .last_uid = { 0, 1000 } };

	/* 1000 was served last: 1001's low request is next, before 1000's critical. */
	assert_ptr_equal(sched_pick_create(q, 3, &st, 0, NULL), &c);
	sched_note_served(&st, &c);
	c.next_attempt_at = USEC_INFINITY;
	assert_ptr_equal(sched_pick_create(q, 3, &st, 0, NULL), &b);
}

static bool uid_below_100(uid_t uid, void *userdata) {
	(void) userdata;
	return uid < 100;
}

static void test_sched_precedence_goes_first(void **state) {
	Record a = mk(PRIORITY_CRITICAL, 1000, 1), b = mk(PRIORITY_LOW, 0, 2), c = mk(PRIORITY_LOW, 50, 3);
	Record *q[] = { &a, &b, &c };
	SchedState st = { .precedence = uid_below_100 };

	assert_int_equal(sched_tier(&st, 0), SCHED_TIER_PRECEDENCE);
	assert_int_equal(sched_tier(&st, 1000), SCHED_TIER_OTHERS);
	assert_ptr_equal(sched_pick_create(q, 3, &st, 0, NULL), &b);
	assert_int_equal(sched_position(q, 3, &st, &a), 3);
	sched_note_served(&st, &b);
	b.next_attempt_at = USEC_INFINITY;
	assert_ptr_equal(sched_pick_create(q, 3, &st, 0, NULL), &c);
	/* Without a predicate nobody has precedence. */
	st.precedence = NULL;
	assert_int_equal(sched_tier(&st, 0), SCHED_TIER_OTHERS);
}

/* Property: for random queues, states and precedence sets, sched_position()
 * and sched_position_from_counts() say exactly when repeated picks serve each
 * record. */
#define PROP_N 40
#define PROP_UIDS 5

static bool uid_in_mask(uid_t uid, void *userdata) {
	unsigned mask = *(unsigned *) userdata;

	return uid >= 1000 && uid < 1000 + PROP_UIDS && (mask >> (uid - 1000)) & 1;
}

static void test_sched_positions_match_picks_for_random_queues(void **state) {
	srand(15);
	for (int round = 0; round < 500; round++) {
		Record r[PROP_N];
		Record *q[PROP_N];
		size_t n = 1 + (size_t) rand() % PROP_N, expected[PROP_N];
		unsigned mask = (unsigned) rand() % (1U << PROP_UIDS);
		SchedState st = { .precedence = round % 3 == 0 ? NULL : uid_in_mask, .precedence_userdata = &mask };
		uid_t uids[PROP_UIDS];
		size_t counts[PROP_UIDS] = {};

		for (SchedTier t = 0; t < _SCHED_TIER_MAX; t++) {
			st.served[t] = rand() % 2;
			st.last_uid[t] = 1000 + (uid_t) (rand() % (PROP_UIDS + 1));
		}
		for (size_t i = 0; i < PROP_UIDS; i++)
			uids[i] = 1000 + (uid_t) i;
		for (size_t i = 0; i < n; i++) {
			r[i] = mk((Priority) (rand() % _PRIORITY_MAX), 1000 + (uid_t) (rand() % PROP_UIDS), (uint64_t) i + 1);
			q[i] = &r[i];
			counts[r[i].owner_uid - 1000]++;
		}

		SchedState sim = st;
		for (size_t k = 1; k <= n; k++) {
			Record *p = sched_pick_create(q, n, &sim, 0, NULL);

			assert_non_null(p);
			expected[p - r] = k;
			sched_note_served(&sim, p);
			p->next_attempt_at = USEC_INFINITY;
		}
		for (size_t i = 0; i < n; i++)
			r[i].next_attempt_at = 0;
		for (size_t i = 0; i < n; i++) {
			size_t own_ahead = 0;

			for (size_t j = 0; j < n; j++)
				if (j != i && r[j].owner_uid == r[i].owner_uid &&
				    (r[j].priority > r[i].priority || (r[j].priority == r[i].priority && r[j].seq < r[i].seq)))
					own_ahead++;
			assert_int_equal(sched_position(q, n, &st, &r[i]), expected[i]);
			assert_int_equal(sched_position_from_counts(&st, &r[i], own_ahead, uids, counts, PROP_UIDS),
			                 expected[i]);
		}
	}
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
		cmocka_unit_test(test_sched_round_robin_comes_before_priority),
		cmocka_unit_test(test_sched_priority_orders_only_a_uids_own_requests),
		cmocka_unit_test(test_sched_precedence_goes_first),
		cmocka_unit_test(test_sched_positions_match_picks_for_random_queues),
		cmocka_unit_test(test_sched_backoff_doubles_to_the_cap_with_bounded_jitter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
