/* budget.json keeps what the window spent across a restart: the reserve used
 * and the interactive calls per uid and in all (hitld(8) BUDGET SHARES),
 * tied to the window they were spent in, bounded, versioned. Clock injected
 * throughout. (The version-1 ledger's own tests are in test_budget.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "budget.h"
#include "budget_json.h"
#include "cleanup.h"
#include "unit_budget.h"

/* 2026-11-28T… at the top of an hour, server clock, seconds. */
#define T0 INT64_C(1795870800)
#define S(x) ((usec_t) (x) * USEC_PER_SEC)
#define HOUR INT64_C(3600)

#define USER 1000
#define OTHER 1001

static RateInfo headers(unsigned limit, unsigned remaining, int64_t reset, int64_t date) {
	return (RateInfo) {
		.has_limit = true, .has_remaining = true, .has_reset = true, .has_date = true,
		.limit = limit, .remaining = remaining, .reset_epoch = reset, .date_epoch = date,
	};
}

/* Through text, as on disk. */
static json_object *saved(const Budget *b) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	json_object *parsed;

	assert_int_equal(budget_to_json(b, &j), 0);
	parsed = json_tokener_parse(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	assert_non_null(parsed);
	return parsed;
}

/* A server window from T0 + 1000 to T0 + HOUR in which USER spent its whole
 * share (5), OTHER 2, an admin 3 (not counted to a share), the work engine
 * 4 polls and 6 creates. */
static void spend(Budget *b, usec_t now) {
	RateInfo ri = headers(100, 100, T0 + HOUR, T0 + 1000);

	budget_init(b, &unit_budget_config, now);
	budget_observe(b, &ri, now);
	for (unsigned i = 0; i < 5; i++)
		budget_charge_interactive(b, USER, false, now + i);
	for (unsigned i = 0; i < 2; i++)
		budget_charge_interactive(b, OTHER, false, now + 10 + i);
	for (unsigned i = 0; i < 3; i++)
		budget_charge_interactive(b, 0, true, now + 20 + i);
	for (unsigned i = 0; i < 4; i++)
		budget_charge(b, CALL_POLL, now + 30 + i);
	for (unsigned i = 0; i < 6; i++)
		budget_charge(b, CALL_CREATE, now + 40 + i);
}

static void test_a_restart_within_the_window_keeps_what_it_spent(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	usec_t now = S(T0 + 1000), later = S(T0 + 1900);
	Budget a, b;

	spend(&a, now);
	assert_int_equal(a.used, 20);
	j = saved(&a);

	budget_init(&b, &unit_budget_config, later);
	assert_int_equal(budget_from_json(&b, j, later), 0);
	assert_int_equal(b.used, 20);
	assert_int_equal(b.used_other, 4);
	assert_int_equal(b.interactive_used, 7);
	assert_int_equal(b.n_shares, 2);
	assert_memory_equal(b.shares, a.shares, 2 * sizeof a.shares[0]);
	assert_int_equal(b.last_create_at, a.last_create_at);
	assert_true(b.last_was_create);

	/* USER's share is spent until the window ends; OTHER has 3 left; the
	 * creates still leave only the rest of the reserve. */
	assert_int_equal(budget_interactive_used(&b, USER, later), 5);
	assert_int_equal(budget_interactive_slot(&b, USER, false, later), b.window_end);
	assert_int_equal(budget_interactive_slot(&b, USER, false, later), budget_interactive_slot(&a, USER, false, later));
	assert_int_equal(budget_interactive_used(&b, OTHER, later), 2);
	assert_int_equal(budget_interactive_slot(&b, OTHER, false, later), later);
	assert_int_equal(budget_reserve_left(&b, later), 6);
	assert_int_equal(budget_available(&b, CALL_CREATE, later), budget_available(&a, CALL_CREATE, later));
	assert_int_equal(budget_next_slot(&b, CALL_CREATE, 200, later, 0.5), budget_next_slot(&a, CALL_CREATE, 200, later, 0.5));
}

static void test_a_restart_in_a_later_window_starts_clean(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL, *local = NULL;
	usec_t now = S(T0 + 1000), next = S(T0 + HOUR + 600);
	Budget a, b;

	spend(&a, now);
	j = saved(&a);

	budget_init(&b, &unit_budget_config, next);
	assert_int_equal(budget_from_json(&b, j, next), 0);
	assert_int_equal(b.used, 0);
	assert_int_equal(b.used_other, 0);
	assert_int_equal(b.interactive_used, 0);
	assert_int_equal(b.n_shares, 0);
	assert_int_equal(budget_interactive_slot(&b, USER, false, next), next);
	assert_int_equal(budget_reserve_left(&b, next), 10);

	/* The same for a window the server never named (aligned to our clock). */
	budget_init(&a, &unit_budget_config, S(T0 + 10));
	for (unsigned i = 0; i < 5; i++)
		budget_charge_interactive(&a, USER, false, S(T0 + 10 + i));
	local = saved(&a);
	budget_init(&b, &unit_budget_config, S(T0 + 20));
	assert_int_equal(budget_from_json(&b, local, S(T0 + 20)), 0);
	assert_int_equal(budget_interactive_slot(&b, USER, false, S(T0 + 20)), S(T0 + HOUR));
	budget_init(&b, &unit_budget_config, S(T0 + HOUR));
	assert_int_equal(budget_from_json(&b, local, S(T0 + HOUR)), 0);
	assert_int_equal(b.n_shares, 0);
	assert_int_equal(budget_interactive_slot(&b, USER, false, S(T0 + HOUR)), S(T0 + HOUR));
}

/* Spending that names another window than the ledger's is not this one's. */
static void test_spending_of_another_window_is_ignored(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	usec_t now = S(T0 + 1000), later = S(T0 + 1900);
	json_object *spent;
	Budget a, b;

	spend(&a, now);
	j = saved(&a);
	assert_true(json_object_object_get_ex(j, "spent", &spent));
	json_object_object_add(spent, "window_start_usec", json_object_new_uint64(a.window_start - S(HOUR)));
	json_object_object_add(spent, "window_end_usec", json_object_new_uint64(a.window_end - S(HOUR)));

	budget_init(&b, &unit_budget_config, later);
	assert_int_equal(budget_from_json(&b, j, later), 0);
	/* The ledger's own count stays: it is what the server counts. */
	assert_int_equal(b.used, 20);
	assert_int_equal(b.n_shares, 0);
	assert_int_equal(b.interactive_used, 0);
	assert_int_equal(b.used_other, 0);
}

/* A version-1 ledger (before the shares were kept) still loads, as it did. */
static void test_a_version_1_ledger_loads_without_spending(void **state) {
	static const char v1[] =
		"{\"version\":1,\"limit\":100,\"used\":7,\"window_start_usec\":1795870800000000,\"window_end_usec\":1795874400000000,"
		"\"paused_until_usec\":0,\"from_server\":false,\"last_call_at_usec\":1795870900000000,\"over_limit_429s\":0,"
		"\"server_reset_epoch\":0,\"prev_window_exhausted\":false}";
	_cleanup_(json_object_putp) json_object *j = json_tokener_parse(v1);
	usec_t now = S(T0 + 1000);
	Budget b;

	assert_non_null(j);
	budget_init(&b, &unit_budget_config, now);
	budget_charge_interactive(&b, USER, false, now);
	assert_int_equal(budget_from_json(&b, j, now), 0);
	assert_int_equal(b.used, 7);
	assert_int_equal(b.last_call_at, S(T0 + 100));
	assert_int_equal(b.n_shares, 0);
	assert_int_equal(b.interactive_used, 0);
	assert_int_equal(b.used_other, 0);
	assert_int_equal(b.last_create_at, 0);
}

static void test_a_full_share_table_round_trips(void **state) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	BudgetConfig wide = unit_budget_config;
	usec_t now = S(T0 + 1000);
	const char *text;
	Budget a, b;

	/* Room for one call each of 256 uids. */
	wide.limit_per_hour = 1000;
	wide.poll_reserve = 10;
	wide.interactive_total = 500;
	wide.interactive_per_uid = 1;
	budget_init(&a, &wide, now);
	for (uid_t u = 0; u < BUDGET_SHARE_UIDS_MAX; u++)
		budget_charge_interactive(&a, 4000000000U + u, false, now);
	assert_int_equal(a.n_shares, BUDGET_SHARE_UIDS_MAX);

	assert_int_equal(budget_to_json(&a, &j), 0);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	/* persist.c reads at most 64 KiB. */
	assert_true(strlen(text) < 64 * 1024);

	budget_init(&b, &wide, now);
	assert_int_equal(budget_from_json(&b, j, now), 0);
	assert_int_equal(b.n_shares, BUDGET_SHARE_UIDS_MAX);
	assert_memory_equal(b.shares, a.shares, sizeof a.shares);
	assert_int_equal(b.interactive_used, BUDGET_SHARE_UIDS_MAX);
	/* The table is full: a 257th uid waits for the next window, as before the restart. */
	assert_int_equal(budget_interactive_slot(&b, 1, false, now), b.window_end);
	assert_int_equal(budget_interactive_slot(&b, 4000000000U, false, now), b.window_end);
}

/* Edits one member of a saved ledger (or of its "spent") to the JSON text v;
 * NULL v deletes it. */
static json_object *edited(const Budget *a, bool in_spent, const char *key, const char *v) {
	json_object *j = saved(a), *o = j;

	if (in_spent)
		assert_true(json_object_object_get_ex(j, "spent", &o));
	if (v) {
		json_object *nv = json_tokener_parse(v);

		assert_non_null(nv);
		json_object_object_add(o, key, nv);
	} else
		json_object_object_del(o, key);
	return j;
}

static void test_malformed_spending_is_refused_and_leaves_the_budget_untouched(void **state) {
	static const struct {
		bool in_spent;
		const char *key, *value;
	} bad[] = {
		{ false, "version", "3" },                 /* a format from the future */
		{ false, "version", "0" },
		{ false, "spent", NULL },                  /* version 2 without its members */
		{ false, "last_was_create", NULL },
		{ false, "last_create_at_usec", NULL },
		{ false, "last_create_at_usec", "-1" },
		{ false, "spent", "[]" },
		{ true, "uids", NULL },
		{ true, "uids", "{}" },
		{ true, "uids", "[1000]" },
		{ true, "uids", "[{\"uid\":1000,\"used\":1},{\"uid\":1000,\"used\":2}]" },  /* a uid twice */
		{ true, "uids", "[{\"uid\":4294967295,\"used\":1}]" },                    /* (uid_t) -1 */
		{ true, "uids", "[{\"uid\":-1,\"used\":1}]" },
		{ true, "uids", "[{\"uid\":1000,\"used\":\"1\"}]" },
		{ true, "uids", "[{\"uid\":1000}]" },
		{ true, "uids", "[{\"uid\":1000,\"used\":4294967296}]" },
		{ true, "interactive_used", "-1" },
		{ true, "interactive_used", "true" },
		{ true, "reserve_used", NULL },
		{ true, "reserve_used", "1.5" },
		{ true, "window_start_usec", NULL },
		{ true, "window_end_usec", "\"x\"" },
	};
	usec_t now = S(T0 + 1000), later = S(T0 + 1900);
	Budget a, b, snapshot;

	spend(&a, now);
	budget_init(&b, &unit_budget_config, later);
	budget_charge_interactive(&b, 42, false, later);
	memcpy(&snapshot, &b, sizeof b);

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_(json_object_putp) json_object *j = edited(&a, bad[i].in_spent, bad[i].key, bad[i].value);

		assert_int_equal(budget_from_json(&b, j, later), -EBADMSG);
		assert_memory_equal(&b, &snapshot, sizeof b);
	}

	/* 257 uids: more than any window holds. */
	{
		_cleanup_(json_object_putp) json_object *j = saved(&a);
		json_object *spent, *uids = json_object_new_array();

		for (unsigned u = 0; u <= BUDGET_SHARE_UIDS_MAX; u++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "uid", json_object_new_int64(u));
			json_object_object_add(e, "used", json_object_new_int64(0));
			json_object_array_add(uids, e);
		}
		assert_true(json_object_object_get_ex(j, "spent", &spent));
		json_object_object_add(spent, "uids", uids);
		assert_int_equal(budget_from_json(&b, j, later), -EBADMSG);
		assert_memory_equal(&b, &snapshot, sizeof b);
	}

	/* The same edits with sane values load: the refusals above are real. */
	{
		_cleanup_(json_object_putp) json_object *j =
		        edited(&a, true, "uids", "[{\"uid\":1000,\"used\":1},{\"uid\":4294967294,\"used\":4294967295}]");

		assert_int_equal(budget_from_json(&b, j, later), 0);
		assert_int_equal(b.n_shares, 2);
		assert_int_equal(b.shares[1].uid, 4294967294U);
		assert_int_equal(b.shares[1].used, 4294967295U);
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_restart_within_the_window_keeps_what_it_spent),
		cmocka_unit_test(test_a_restart_in_a_later_window_starts_clean),
		cmocka_unit_test(test_spending_of_another_window_is_ignored),
		cmocka_unit_test(test_a_version_1_ledger_loads_without_spending),
		cmocka_unit_test(test_a_full_share_table_round_trips),
		cmocka_unit_test(test_malformed_spending_is_refused_and_leaves_the_budget_untouched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
