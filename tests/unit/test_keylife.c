/* What hitld keeps of each API key (keylife.h): first use and retirement by
 * key id, the bound on the table, the age notice's rule with the clock
 * injected, and the file in the state directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "keylife.h"
#include "unit_tmpdir.h"

#define T0 (INT64_C(1779998400) * USEC_PER_SEC)
#define DAY (24 * USEC_PER_HOUR)

static void test_keylife_first_use_is_kept_once(void **state) {
	KeyLife kl = {};

	assert_int_equal(keylife_note_used(&kl, "65f1234567890abcdef12349", T0), 1);
	assert_int_equal(keylife_note_used(&kl, "65f1234567890abcdef12349", T0 + 5 * DAY), 0);
	assert_true(keylife_get(&kl, "65f1234567890abcdef12349")->first_used == T0);
	assert_int_equal(keylife_age_days(&kl, "65f1234567890abcdef12349", T0 + 5 * DAY + 1), 5);
	assert_int_equal(keylife_age_days(&kl, "65f1234567890abcdef12349", T0 - DAY), 0);   /* a clock that went back */
	assert_int_equal(keylife_age_days(&kl, "unknown", T0 + 5 * DAY), 0);
	assert_int_equal(keylife_note_used(&kl, "", T0), -EINVAL);
	assert_int_equal(keylife_note_used(&kl, "has space", T0), -EINVAL);
	assert_int_equal(keylife_note_used(&kl, NULL, T0), -EINVAL);
}

static void test_keylife_retire_and_use_again(void **state) {
	KeyLife kl = {};

	keylife_note_used(&kl, "old", T0);
	assert_false(keylife_is_retired(&kl, "old"));
	assert_int_equal(keylife_retire(&kl, "old", T0 + DAY), 0);
	assert_true(keylife_is_retired(&kl, "old"));
	assert_true(keylife_get(&kl, "old")->first_used == T0);
	/* Put back by the operator and used: no longer retired, first use kept. */
	assert_int_equal(keylife_note_used(&kl, "old", T0 + 2 * DAY), 0);
	assert_false(keylife_is_retired(&kl, "old"));
	assert_true(keylife_get(&kl, "old")->first_used == T0);
	/* Retiring an unknown id records it. */
	assert_int_equal(keylife_retire(&kl, "never", T0), -ENOENT);
	assert_true(keylife_is_retired(&kl, "never"));
}

static void test_keylife_is_bounded_forgetting_the_oldest(void **state) {
	KeyLife kl = {};
	char id[32];

	for (unsigned i = 0; i < KEYLIFE_MAX + 5; i++) {
		snprintf(id, sizeof id, "key%u", i);
		assert_int_equal(keylife_note_used(&kl, id, T0 + i * DAY), 1);
		assert_true(kl.n <= KEYLIFE_MAX);
	}
	assert_int_equal(kl.n, KEYLIFE_MAX);
	for (unsigned i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "key%u", i);
		assert_null(keylife_get(&kl, id));
	}
	snprintf(id, sizeof id, "key%u", KEYLIFE_MAX + 4);
	assert_non_null(keylife_get(&kl, id));
}

static void test_keylife_notice_once_a_day_after_the_limit(void **state) {
	KeyLife kl = {};
	usec_t at;

	keylife_note_used(&kl, "k", T0);
	assert_false(keylife_notice_due(&kl, "k", 90, 0, T0 + 89 * DAY));
	assert_true(keylife_notice_due(&kl, "k", 90, 0, T0 + 90 * DAY));
	at = T0 + 90 * DAY;
	/* Given at `at`: not again within the day, again after it. */
	assert_false(keylife_notice_due(&kl, "k", 90, at, at + 1));
	assert_false(keylife_notice_due(&kl, "k", 90, at, at + DAY - 1));
	assert_true(keylife_notice_due(&kl, "k", 90, at, at + DAY));
	/* 0 days: never; an unknown key: never. */
	assert_false(keylife_notice_due(&kl, "k", 0, 0, T0 + 1000 * DAY));
	assert_false(keylife_notice_due(&kl, "other", 90, 0, T0 + 1000 * DAY));
}

static void test_keylife_json_round_trip_and_malformed(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	KeyLife kl = {}, back = {}, untouched;
	static const char *const bad[] = {
		"{}",
		"{\"keys\": 1}",
		"{\"keys\": [{\"api_key_id\": \"a b\", \"first_used_us\": 1, \"retired_us\": 0}]}",
		"{\"keys\": [{\"api_key_id\": \"a\", \"first_used_us\": -1, \"retired_us\": 0}]}",
		"{\"keys\": [{\"api_key_id\": \"a\", \"first_used_us\": 1}]}",
		"{\"keys\": [{\"api_key_id\": \"a\", \"first_used_us\": 1, \"retired_us\": 0},"
		" {\"api_key_id\": \"a\", \"first_used_us\": 2, \"retired_us\": 0}]}",
	};

	keylife_note_used(&kl, "a", T0);
	keylife_note_used(&kl, "b", T0 + DAY);
	keylife_retire(&kl, "a", T0 + 2 * DAY);
	assert_int_equal(keylife_to_json(&kl, &j), 0);
	assert_int_equal(keylife_from_json(&back, j), 0);
	assert_int_equal(back.n, 2);
	assert_true(keylife_get(&back, "a")->retired_at == T0 + 2 * DAY);
	assert_true(keylife_get(&back, "b")->first_used == T0 + DAY);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		_cleanup_(json_object_putp) json_object *b = json_tokener_parse(bad[i]);

		untouched = back;
		assert_int_equal(keylife_from_json(&back, b), -EBADMSG);
		assert_memory_equal(&back, &untouched, sizeof back);
	}
}

static void test_keylife_file_in_the_state_directory(void **state) {
	char dir[] = "/tmp/test_keylife.XXXXXX";
	KeyLife kl = {}, back;
	int fd;

	assert_non_null(mkdtemp(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(keylife_load(fd, &back), -ENOENT);
	assert_int_equal(back.n, 0);
	keylife_note_used(&kl, "65f1234567890abcdef12349", T0);
	assert_int_equal(keylife_save(fd, &kl), 0);
	assert_int_equal(keylife_load(fd, &back), 0);
	assert_int_equal(back.n, 1);
	assert_true(keylife_get(&back, "65f1234567890abcdef12349")->first_used == T0);

	/* Damaged: an empty table, not a failure to start. */
	char path[sizeof dir + sizeof KEYLIFE_FILE + 1];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, KEYLIFE_FILE);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs("{\"keys\": [", f);
	fclose(f);
	assert_int_equal(keylife_load(fd, &back), -EBADMSG);
	assert_int_equal(back.n, 0);
	close(fd);
	assert_int_equal(unit_rm_tree(dir), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keylife_first_use_is_kept_once),
		cmocka_unit_test(test_keylife_retire_and_use_again),
		cmocka_unit_test(test_keylife_is_bounded_forgetting_the_oldest),
		cmocka_unit_test(test_keylife_notice_once_a_day_after_the_limit),
		cmocka_unit_test(test_keylife_json_round_trip_and_malformed),
		cmocka_unit_test(test_keylife_file_in_the_state_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
