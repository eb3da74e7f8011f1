/* uidshare: the per-uid token bucket of dispatch time (clock injected) and
 * the opaque per-uid request.list cursors (cursor.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cursor.h"
#include "uidshare.h"

#define MS USEC_PER_MSEC
#define T0 ((usec_t) 1000 * USEC_PER_SEC)

static void test_uidshare_a_new_uid_has_a_full_bucket_then_waits_for_its_share(void **state) {
	ShareRate rate = { .percent = 25, .burst = 20 * MS };
	UidShare u;
	usec_t ready;

	uidshare_init(&u, 1000, &rate, T0);
	assert_true(uidshare_may_dispatch(&u, &rate, T0));
	/* A 30 ms call overdraws by 10 ms: 40 ms of wall time at 25 % to refill. */
	uidshare_charge(&u, &rate, 30 * MS);
	assert_false(uidshare_may_dispatch(&u, &rate, T0));
	ready = uidshare_ready_at(&u, &rate, T0);
	assert_true(ready > T0 + 40 * MS && ready < T0 + 41 * MS);
	assert_false(uidshare_may_dispatch(&u, &rate, T0 + 39 * MS));
	assert_true(uidshare_may_dispatch(&u, &rate, ready));
}

static void test_uidshare_bucket_never_holds_more_than_its_burst(void **state) {
	ShareRate rate = { .percent = 25, .burst = 20 * MS };
	UidShare u;

	uidshare_init(&u, 1000, &rate, T0);
	uidshare_refill(&u, &rate, T0 + 3600 * USEC_PER_SEC);
	assert_int_equal(u.credit, 20 * MS);
	/* A long idle spell does not buy a long monopoly: 20 ms, then it waits. */
	uidshare_charge(&u, &rate, 21 * MS);
	assert_false(uidshare_may_dispatch(&u, &rate, T0 + 3600 * USEC_PER_SEC));
}

static void test_uidshare_debt_is_bounded_and_clock_going_back_is_ignored(void **state) {
	ShareRate rate = { .percent = 10, .burst = 20 * MS };
	UidShare u;

	uidshare_init(&u, 1000, &rate, T0);
	uidshare_charge(&u, &rate, 3600 * USEC_PER_SEC);     /* a stall */
	assert_true(u.credit >= -(int64_t) (100 * MS));
	assert_true(uidshare_ready_at(&u, &rate, T0) <= T0 + USEC_PER_SEC + MS);
	uidshare_refill(&u, &rate, T0 - USEC_PER_SEC);
	assert_int_equal(u.updated, T0);
}

static void test_uidshare_100_percent_is_no_limit(void **state) {
	ShareRate rate = { .percent = 100, .burst = 20 * MS };
	UidShare u;

	uidshare_init(&u, 1000, &rate, T0);
	uidshare_charge(&u, &rate, 3600 * USEC_PER_SEC);
	assert_true(uidshare_may_dispatch(&u, &rate, T0));
	assert_int_equal(uidshare_ready_at(&u, &rate, T0), T0);
}

static void test_cursor_round_trips_for_its_uid_only(void **state) {
	CursorKey key, other;
	char c[CURSOR_STRING_MAX], d[CURSOR_STRING_MAX];
	uint64_t seq = 0;

	assert_int_equal(cursor_key_new(&key), 0);
	assert_int_equal(cursor_key_new(&other), 0);
	assert_int_equal(cursor_encode(&key, 1000, 42, c), 0);
	assert_int_equal(strlen(c), 24);
	assert_int_not_equal(strspn(c, "0123456789"), 24);
	assert_int_equal(cursor_decode(&key, 1000, c, &seq), 0);
	assert_int_equal(seq, 42);
	/* Another uid, another daemon run (key), an edited digit: refused. */
	assert_int_equal(cursor_decode(&key, 1001, c, &seq), -EINVAL);
	assert_int_equal(cursor_decode(&other, 1000, c, &seq), -EINVAL);
	strcpy(d, c);
	d[5] = d[5] == '0' ? '1' : '0';
	assert_int_equal(cursor_decode(&key, 1000, d, &seq), -EINVAL);
	/* Neighbouring seqs do not give neighbouring cursors. */
	assert_int_equal(cursor_encode(&key, 1000, 43, d), 0);
	assert_int_not_equal(memcmp(c, d, 12), 0);
	assert_int_not_equal(memcmp(c + 12, d + 12, 12), 0);
}

static void test_cursor_refuses_malformed_and_out_of_range(void **state) {
	CursorKey key;
	char c[CURSOR_STRING_MAX];
	uint64_t seq;

	assert_int_equal(cursor_key_new(&key), 0);
	assert_int_equal(cursor_encode(&key, 1000, 0, c), -ERANGE);
	assert_int_equal(cursor_encode(&key, 1000, CURSOR_SEQ_MAX + 1, c), -ERANGE);
	assert_int_equal(cursor_encode(&key, 1000, CURSOR_SEQ_MAX, c), 0);
	assert_int_equal(cursor_decode(&key, 1000, c, &seq), 0);
	assert_int_equal(seq, CURSOR_SEQ_MAX);
	for (const char *const *s = (const char *const[]) { "", "-1", "5", "zz", "000000000000000000000000",
	                                                      "0123456789ABCDEF01234567", "0123456789abcdef012345678",
	                                                      NULL };
	     *s; s++)
		assert_int_equal(cursor_decode(&key, 1000, *s, &seq), -EINVAL);
	assert_int_equal(cursor_decode(&key, 1000, NULL, &seq), -EINVAL);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidshare_a_new_uid_has_a_full_bucket_then_waits_for_its_share),
		cmocka_unit_test(test_uidshare_bucket_never_holds_more_than_its_burst),
		cmocka_unit_test(test_uidshare_debt_is_bounded_and_clock_going_back_is_ignored),
		cmocka_unit_test(test_uidshare_100_percent_is_no_limit),
		cmocka_unit_test(test_cursor_round_trips_for_its_uid_only),
		cmocka_unit_test(test_cursor_refuses_malformed_and_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
