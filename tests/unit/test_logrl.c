/* logrl: per-cause, per-key log rate limits (clock injected). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "logrl.h"

#define S USEC_PER_SEC
#define T0 ((usec_t) 1000 * USEC_PER_SEC)

static unsigned passed(LogRl *rl, uint64_t key, usec_t now, unsigned n, unsigned *ret_last_suppressed) {
	unsigned ok = 0, sup;

	for (unsigned i = 0; i < n; i++)
		if (logrl_below(rl, key, now, &sup)) {
			ok++;
			if (ret_last_suppressed)
				*ret_last_suppressed = sup;
		}
	return ok;
}

static void test_logrl_a_burst_per_interval_then_the_count_of_the_held_back(void **state) {
	LogRl rl = LOGRL(30 * S, 5, 20);
	unsigned sup = 99;

	assert_int_equal(passed(&rl, 1000, T0, 200, &sup), 5);
	assert_int_equal(sup, 0);
	/* Still the same window at its very end. */
	assert_int_equal(passed(&rl, 1000, T0 + 30 * S, 10, NULL), 0);
	/* The next window: the first entry says how many were held back. */
	assert_true(logrl_below(&rl, 1000, T0 + 30 * S + 1, &sup));
	assert_int_equal(sup, 195 + 10);
	assert_true(logrl_below(&rl, 1000, T0 + 31 * S, &sup));
	assert_int_equal(sup, 0);
}

static void test_logrl_one_key_does_not_use_up_anothers_burst(void **state) {
	LogRl rl = LOGRL(30 * S, 5, 20);
	unsigned sup;

	assert_int_equal(passed(&rl, 1000, T0, 1000, NULL), 5);
	assert_true(logrl_below(&rl, 1001, T0 + S, &sup));
	/* "Similar" is the cause: the flood's count shows in the other's entry. */
	assert_int_equal(sup, 995);
	assert_int_equal(passed(&rl, 1001, T0 + S, 100, NULL), 4);
}

static void test_logrl_many_keys_together_stop_at_burst_all(void **state) {
	LogRl rl = LOGRL(30 * S, 5, 20);
	unsigned ok = 0;

	for (uint64_t k = 0; k < 1000; k++)
		ok += passed(&rl, k, T0 + k, 3, NULL);
	assert_int_equal(ok, 20);
	assert_int_equal(rl.suppressed, 3000 - 20);
}

static void test_logrl_memory_is_bounded_and_the_least_recent_key_is_forgotten(void **state) {
	LogRl rl = LOGRL(30 * S, 1, 1000);
	unsigned sup;

	/* Key 7 uses its burst; LOGRL_KEYS other keys come after it... */
	assert_true(logrl_below(&rl, 7, T0, &sup));
	assert_false(logrl_below(&rl, 7, T0 + 1, &sup));
	for (uint64_t k = 100; k < 100 + LOGRL_KEYS - 1; k++)
		assert_true(logrl_below(&rl, k, T0 + 2 + k, &sup));
	/* ...the table is full, 7 is still known and still held back... */
	assert_false(logrl_below(&rl, 7, T0 + 200, &sup));
	/* ...a new key takes the slot of the least recently seen (100, not 7). */
	assert_true(logrl_below(&rl, 500, T0 + 201, &sup));
	assert_false(logrl_below(&rl, 7, T0 + 202, &sup));
	assert_true(logrl_below(&rl, 100, T0 + 203, &sup));
	for (size_t i = 0; i < LOGRL_KEYS; i++)
		assert_true(rl.keys[i].used);
	/* 16 new keys forget the 16 least recently seen, 7 (seen at T0 + 202) among them: it passes again. */
	for (uint64_t k = 600; k < 600 + LOGRL_KEYS; k++)
		(void) logrl_below(&rl, k, T0 + 300 + k, &sup);
	assert_true(logrl_below(&rl, 7, T0 + 2000, &sup));
}

static void test_logrl_keyless_cause_and_off(void **state) {
	LogRl rl = LOGRL(10 * S, 1, 1), off = {};
	unsigned sup;

	assert_int_equal(passed(&rl, LOGRL_NO_KEY, T0, 50, NULL), 1);
	assert_true(logrl_below(&rl, LOGRL_NO_KEY, T0 + 11 * S, &sup));
	assert_int_equal(sup, 49);
	assert_int_equal(passed(&off, 5, T0, 50, &sup), 50);
	assert_int_equal(sup, 0);
	/* A clock going back begins a new window rather than holding entries back for ever. */
	assert_true(logrl_below(&rl, LOGRL_NO_KEY, T0, &sup));
	/* Time 0 is a time like another. */
	rl = (LogRl) LOGRL(10 * S, 1, 1);
	assert_true(logrl_below(&rl, LOGRL_NO_KEY, 0, &sup));
	assert_false(logrl_below(&rl, LOGRL_NO_KEY, 1, &sup));
}

static void test_logrl_suffix_and_string_keys(void **state) {
	char buf[LOGRL_SUFFIX_MAX];

	assert_string_equal(logrl_suffix(0, buf), "");
	assert_string_equal(logrl_suffix(1, buf), " (1 similar message suppressed)");
	assert_string_equal(logrl_suffix(UINT32_MAX, buf), " (4294967295 similar messages suppressed)");
	assert_true(logrl_key_string("127.0.0.1") != logrl_key_string("127.0.0.2"));
	assert_true(logrl_key_string("::1") == logrl_key_string("::1"));
	assert_true(logrl_key_string(NULL) != LOGRL_NO_KEY);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logrl_a_burst_per_interval_then_the_count_of_the_held_back),
		cmocka_unit_test(test_logrl_one_key_does_not_use_up_anothers_burst),
		cmocka_unit_test(test_logrl_many_keys_together_stop_at_burst_all),
		cmocka_unit_test(test_logrl_memory_is_bounded_and_the_least_recent_key_is_forgotten),
		cmocka_unit_test(test_logrl_keyless_cause_and_off),
		cmocka_unit_test(test_logrl_suffix_and_string_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
