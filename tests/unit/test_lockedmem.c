/* lockedmem: slots are distinct, zeroed, bounded in number, wiped when given
 * back (a later holder never sees an earlier secret), and a pointer that is
 * not a slot is never wiped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lockedmem.h"

static void test_locked_arena_slots_are_bounded_and_distinct(void **state) {
	LockedArena *a = NULL;
	char *s[3];

	assert_int_equal(locked_arena_new(100, 3, &a), 0);
	assert_int_equal(locked_arena_slot_size(a), 100);
	for (size_t i = 0; i < 3; i++) {
		s[i] = locked_arena_get(a);
		assert_non_null(s[i]);
		for (size_t j = 0; j < 100; j++)
			assert_int_equal(s[i][j], 0);
		memset(s[i], 'a' + (int) i, 100);
	}
	assert_null(locked_arena_get(a));
	assert_true(s[0] + 100 <= s[1] || s[1] + 100 <= s[0]);
	assert_int_equal(s[2][99], 'c');
	locked_arena_free(a);
}

static void test_locked_arena_put_wipes_the_slot(void **state) {
	LockedArena *a = NULL;
	char *s, *t;

	assert_int_equal(locked_arena_new(64, 2, &a), 0);
	s = locked_arena_get(a);
	strcpy(s, "Authorization: Bearer secret");
	locked_arena_put(a, s);
	for (size_t j = 0; j < 64; j++)
		assert_int_equal(s[j], 0);
	t = locked_arena_get(a);
	assert_ptr_equal(t, s);
	locked_arena_put(a, NULL);
	locked_arena_free(a);
}

static void test_locked_arena_ignores_foreign_pointers(void **state) {
	LockedArena *a = NULL;
	char *s;
	char mine[8] = "keepme!";

	assert_int_equal(locked_arena_new(64, 2, &a), 0);
	s = locked_arena_get(a);
	strcpy(s, "x");
	locked_arena_put(a, mine);
	locked_arena_put(a, s + 1);
	assert_string_equal(mine, "keepme!");
	assert_string_equal(s, "x");
	/* The misaligned put freed nothing: one slot is left, then none. */
	assert_non_null(locked_arena_get(a));
	assert_null(locked_arena_get(a));
	locked_arena_free(a);
}

static void test_locked_arena_refuses_bad_sizes(void **state) {
	LockedArena *a = NULL;

	assert_int_equal(locked_arena_new(0, 1, &a), -EINVAL);
	assert_int_equal(locked_arena_new(8, 0, &a), -EINVAL);
	assert_int_equal(locked_arena_new(8, 65, &a), -EINVAL);
	assert_null(a);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locked_arena_slots_are_bounded_and_distinct),
		cmocka_unit_test(test_locked_arena_put_wipes_the_slot),
		cmocka_unit_test(test_locked_arena_ignores_foreign_pointers),
		cmocka_unit_test(test_locked_arena_refuses_bad_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
