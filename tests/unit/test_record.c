/* The request record: on-disk form round trips and strict parsing, ids,
 * and the client-facing form of PROTOCOL.md §3. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "intern.h"
#include "record.h"

#define VALID_ID "r_01ARZ3NDEKTSV4RRFFQ69G5FAV"
#define LOOP_ID "65f1234567890abcdef12345"
#define REMOTE_ID "65f1234567890abcdef12348"
#define T0 ((usec_t) 1795874531000000ULL) /* 2026-11-28T14:02:11Z */

static json_object *parse(const char *text) {
	json_object *j = json_tokener_parse(text);

	assert_true(j || streq(text, "null"));
	return j;
}

static Record *make_minimal(void) {
	Record *r = record_new();

	assert_non_null(r);
	strcpy(r->id, VALID_ID);
	r->seq = 1;
	r->owner_uid = 1000;
	assert_int_equal(intern_string(LOOP_ID, &r->loop_id), 0);
	r->params = parse("{\"loop_id\":\"" LOOP_ID "\",\"request_text\":\"Deploy?\","
	                  "\"response_type\":\"text\"}");
	r->created_at = T0;
	r->updated_at = T0;
	return r;
}

static Record *make_full(void) {
	Record *r = record_new();

	assert_non_null(r);
	strcpy(r->id, VALID_ID);
	r->seq = 42;
	r->client_ref = strdup("build-4812");
	r->owner_uid = 1001;
	r->state = REQUEST_COMPLETED;
	r->priority = PRIORITY_HIGH;
	assert_int_equal(intern_string(LOOP_ID, &r->loop_id), 0);
	r->params = parse(
		"{\"loop_id\":\"" LOOP_ID "\",\"request_text\":\"Deploy build 4812?\","
		"\"response_type\":\"single_select\",\"priority\":\"high\","
		"\"processing_type\":\"time-sensitive\",\"type\":\"markdown\","
		"\"response_config\":{\"options\":[{\"value\":\"approve\",\"label\":\"Approve\"},"
		"{\"value\":\"reject\",\"label\":\"Reject\"}]},\"default_response\":\"reject\","
		"\"timeout_seconds\":900,\"context\":{\"build\":4812},\"platform\":\"api\"}");
	r->created_at = T0;
	r->updated_at = T0 + 300 * USEC_PER_SEC;
	r->submitted_at = T0 + 5 * USEC_PER_SEC;
	r->deadline_at = T0 + 900 * USEC_PER_SEC;
	r->next_attempt_at = T0 + 60 * USEC_PER_SEC + 17;
	r->remote_id = strdup(REMOTE_ID);
	r->remote_status = strdup("completed");
	r->response = parse("{\"data\":\"approve\",\"by\":\"65f1234567890abcdef12350\","
	                    "\"at\":\"2026-11-28T14:07:11Z\",\"time_seconds\":295.5}");
	r->result = parse("\"approve\"");
	r->result_source = RESULT_REVIEWER;
	r->cancel_requested = true;
	r->feedback_state = FEEDBACK_QUEUED;
	r->feedback = parse("{\"rating\":5,\"comment\":\"quick\"}");
	r->attempts = 3;
	r->error = parse("{\"code\":\"x\",\"message\":\"y\",\"http_status\":400}");
	return r;
}

static void assert_json_equal(json_object *a, json_object *b) {
	if (!json_object_equal(a, b))
		fail_msg("%s != %s", json_object_to_json_string(a), json_object_to_json_string(b));
}

static void assert_records_equal(const Record *a, const Record *b) {
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->seq, b->seq);
	assert_true(streq_ptr(a->client_ref, b->client_ref));
	assert_int_equal(a->owner_uid, b->owner_uid);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->priority, b->priority);
	assert_string_equal(a->loop_id, b->loop_id);
	assert_json_equal(a->params, b->params);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->updated_at, b->updated_at);
	assert_int_equal(a->submitted_at, b->submitted_at);
	assert_int_equal(a->deadline_at, b->deadline_at);
	assert_int_equal(a->next_attempt_at, b->next_attempt_at);
	assert_true(streq_ptr(a->remote_id, b->remote_id));
	assert_true(streq_ptr(a->remote_status, b->remote_status));
	assert_json_equal(a->response, b->response);
	assert_json_equal(a->result, b->result);
	assert_int_equal(a->result_source, b->result_source);
	assert_int_equal(a->cancel_requested, b->cancel_requested);
	assert_int_equal(a->feedback_state, b->feedback_state);
	assert_json_equal(a->feedback, b->feedback);
	assert_int_equal(a->attempts, b->attempts);
	assert_json_equal(a->error, b->error);
}

static Record *round_trip(const Record *r);

/* The callback token (issue 17) is written only when set: a record without
 * one is exactly what older hitlds wrote and read, and one with it reads
 * back; a bad token is refused. */
static void test_record_callback_token_round_trip_and_old_form(void **state) {
	_cleanup_(record_freep) Record *r = make_full(), *back = NULL, *bad = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;

	assert_int_equal(record_to_json(r, &j), 0);
	assert_false(json_object_object_get_ex(j, "callback_token", NULL));
	json_object_put(j);
	j = NULL;

	r->callback_token = strdup("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	back = round_trip(r);
	assert_string_equal(back->callback_token, r->callback_token);
	assert_int_equal(record_check(r), 0);

	assert_int_equal(record_to_json(r, &j), 0);
	json_object_object_add(j, "callback_token", json_object_new_string("0123456789ABCDEF"));
	assert_int_equal(record_from_json(j, &bad), -EBADMSG);
	json_object_object_add(j, "callback_token", NULL);
	assert_int_equal(record_from_json(j, &bad), -EBADMSG);
	free(r->callback_token);
	r->callback_token = strdup("g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(record_check(r), -EINVAL);
}

/* Through text, as on disk. */
static Record *round_trip(const Record *r) {
	_cleanup_(json_object_putp) json_object *j = NULL, *back = NULL;
	Record *out = NULL;

	assert_int_equal(record_to_json(r, &j), 0);
	back = parse(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	assert_int_equal(record_from_json(back, &out), 0);
	assert_non_null(out);
	return out;
}

static void test_record_full_round_trip_keeps_every_field(void **state) {
	_cleanup_(record_freep) Record *r = make_full(), *back = NULL;

	back = round_trip(r);
	assert_records_equal(r, back);
	/* Independent copies, not shared references. */
	assert_ptr_not_equal(r->params, back->params);
}

/* The records of one loop hold one copy of its loop_id (bench/ANALYSIS.md: 100,000
 * copies were 3.2 MB), and the copy goes with the last record holding it: the table
 * holds only what records hold. */
static void test_record_loop_id_is_shared_and_released(void **state) {
	_cleanup_(record_freep) Record *r = make_full();
	Record *a, *b, *c;
	size_t before = intern_count();

	a = round_trip(r);
	b = round_trip(r);
	assert_ptr_equal(a->loop_id, r->loop_id);
	assert_ptr_equal(b->loop_id, r->loop_id);
	assert_int_equal(record_copy(b, &c), 0);
	assert_ptr_equal(c->loop_id, r->loop_id);
	assert_int_equal(intern_count(), before);
	record_free(a);
	record_free(b);
	record_free(c);
	assert_string_equal(r->loop_id, LOOP_ID);   /* r still holds it (ASan: not freed) */
	r = record_free(r);
	assert_int_equal(intern_count(), before - 1);
}

/* record_copy() (the outbox's load moves each record with it): every field,
 * the in-memory ones too, and nothing shared with the original (but the
 * interned loop_id, refcounted), which is freed right after; the cached protocol text is not carried over. */
static void test_record_copy_keeps_every_field_and_shares_nothing(void **state) {
	_cleanup_(record_freep) Record *r = make_full(), *c = NULL, *m = NULL, *cm = NULL;

	r->kind = RECORD_TRIGGER;
	r->callback_token = strdup("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	r->poll_by_id = r->log_damaged_after = true;
	r->poll_seen_round = 7;
	r->reconcile_since = T0 + 1;
	r->outbox_slot = 11;
	r->position_all = 3;
	r->position_own = 2;
	r->protocol_text = strdup("{}");
	assert_int_equal(record_copy(r, &c), 0);
	assert_records_equal(r, c);
	assert_int_equal(c->kind, RECORD_TRIGGER);
	assert_string_equal(c->callback_token, r->callback_token);
	assert_true(c->poll_by_id && c->log_damaged_after && !c->poll_missing);
	assert_int_equal(c->poll_seen_round, 7);
	assert_int_equal(c->reconcile_since, T0 + 1);
	assert_int_equal(c->outbox_slot, 11);
	assert_int_equal(c->position_all, 3);
	assert_int_equal(c->position_own, 2);
	assert_null(c->protocol_text);
	assert_ptr_not_equal(c->client_ref, r->client_ref);
	assert_ptr_equal(c->loop_id, r->loop_id);   /* interned: one copy per loop (intern.h) */
	assert_ptr_not_equal(c->remote_id, r->remote_id);
	assert_ptr_not_equal(c->remote_status, r->remote_status);
	assert_ptr_not_equal(c->callback_token, r->callback_token);
	assert_ptr_not_equal(c->params, r->params);
	assert_ptr_not_equal(c->response, r->response);
	assert_ptr_not_equal(c->result, r->result);
	assert_ptr_not_equal(c->feedback, r->feedback);
	assert_ptr_not_equal(c->error, r->error);

	/* NULLs stay NULL. */
	m = make_minimal();
	assert_int_equal(record_copy(m, &cm), 0);
	assert_records_equal(m, cm);
	assert_null(cm->client_ref);
	assert_null(cm->callback_token);
	assert_int_equal(record_copy(NULL, &cm), -EINVAL);
}

static void test_record_minimal_round_trip_keeps_nulls(void **state) {
	_cleanup_(record_freep) Record *r = make_minimal(), *back = NULL;

	back = round_trip(r);
	assert_records_equal(r, back);
	assert_null(back->client_ref);
	assert_null(back->remote_id);
	assert_null(back->response);
	assert_null(back->result);
	assert_int_equal(back->result_source, RESULT_NONE);
	assert_int_equal(back->feedback_state, FEEDBACK_NONE);
	assert_int_equal(back->state, REQUEST_QUEUED);
	assert_int_equal(back->priority, PRIORITY_MEDIUM);
}

static void test_record_result_may_be_any_json_type(void **state) {
	static const char *const results[] = { "\"approve\"", "4", "4.5", "[\"a\",\"b\"]",
		                               "{\"x\":1}", "true" };

	for (size_t i = 0; i < ELEMENTSOF(results); i++) {
		_cleanup_(record_freep) Record *r = make_minimal(), *back = NULL;

		r->result = parse(results[i]);
		r->result_source = RESULT_DEFAULT;
		back = round_trip(r);
		assert_json_equal(r->result, back->result);
		assert_int_equal(back->result_source, RESULT_DEFAULT);
	}
}

/* "unsent" (issue 12 item 7): stored, read back, and shown to clients as such;
 * a log written before it existed still loads (the value is only added). */
static void test_record_unsent_round_trips_and_shows(void **state) {
	_cleanup_(record_freep) Record *r = make_minimal(), *back = NULL;
	_cleanup_(json_object_putp) json_object *p = NULL;

	r->state = REQUEST_TIMEOUT;
	r->result = parse("\"approve\"");
	r->result_source = RESULT_UNSENT;
	back = round_trip(r);
	assert_int_equal(back->result_source, RESULT_UNSENT);
	assert_int_equal(record_check(back), 0);
	assert_int_equal(record_to_protocol(back, &p), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(p, "result_source")), "unsent");
	assert_int_equal(result_source_from_string("unsent"), RESULT_UNSENT);
}

static void test_record_to_json_writes_version_and_every_field(void **state) {
	static const char *const keys[] = {
		"version", "id", "seq", "client_ref", "owner_uid", "state", "priority",
		"loop_id", "params", "created_at", "updated_at", "submitted_at", "deadline_at",
		"next_attempt_at", "remote_id", "remote_status", "response", "result",
		"result_source", "cancel_requested", "feedback_state", "feedback", "attempts",
		"error",
	};
	_cleanup_(record_freep) Record *r = make_full();
	_cleanup_(json_object_putp) json_object *j = NULL;
	json_object *v;

	assert_int_equal(record_to_json(r, &j), 0);
	assert_int_equal(json_object_object_length(j), ELEMENTSOF(keys));
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		assert_true(json_object_object_get_ex(j, keys[i], NULL));
	assert_true(json_object_object_get_ex(j, "version", &v));
	assert_int_equal(json_object_get_int(v), RECORD_FORMAT_VERSION);
	/* Times are integer microseconds. */
	assert_true(json_object_object_get_ex(j, "next_attempt_at", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), (int64_t) (T0 + 60 * USEC_PER_SEC + 17));
	assert_true(json_object_object_get_ex(j, "state", &v));
	assert_string_equal(json_object_get_string(v), "completed");
}

static void test_record_to_json_refuses_what_it_could_not_read_back(void **state) {
	_cleanup_(record_freep) Record *r = make_minimal();
	json_object *j = NULL;

	r->state = 99;
	assert_int_equal(record_to_json(r, &j), -EINVAL);
	r->state = REQUEST_QUEUED;
	r->priority = _PRIORITY_INVALID;
	assert_int_equal(record_to_json(r, &j), -EINVAL);
	r->priority = PRIORITY_LOW;
	r->deadline_at = USEC_INFINITY;
	assert_int_equal(record_to_json(r, &j), -ERANGE);
	assert_null(j);
}

/* One malformed field each. value is JSON text; NULL deletes the key.
 * "params.x" reaches into params. */
static const struct {
	const char *key;
	const char *value;
} malformed[] = {
	{ "version", "2" },
	{ "version", "\"1\"" },
	{ "version", "1.0" },
	{ "id", "\"r_short\"" },
	{ "id", "\"x_01ARZ3NDEKTSV4RRFFQ69G5FAV\"" },
	{ "id", "\"r_01arz3ndektsv4rrffq69g5fav\"" },
	{ "id", "\"r_81ARZ3NDEKTSV4RRFFQ69G5FAV\"" },
	{ "id", "\"r_01ARZ3NDEKTSV4RRFFQ69G5FAU\"" },
	{ "id", "\"r_01ARZ3NDEKTSV4RRFFQ69G5FAVX\"" },
	{ "id", "5" },
	{ "id", "null" },
	{ "seq", "-1" },
	{ "seq", "\"42\"" },
	{ "seq", "1.5" },
	{ "seq", "99999999999999999999" },
	{ "client_ref", "\"\"" },
	{ "client_ref", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" },
	{ "client_ref", "\"a\\u0000b\"" },
	{ "client_ref", "7" },
	{ "owner_uid", "-1" },
	{ "owner_uid", "4294967295" },
	{ "owner_uid", "\"1000\"" },
	{ "state", "\"done\"" },
	{ "state", "\"QUEUED\"" },
	{ "state", "3" },
	{ "state", "null" },
	{ "priority", "\"urgent\"" },
	{ "priority", "null" },
	{ "loop_id", "\"\"" },
	{ "loop_id", "null" },
	{ "loop_id", "\"65f1234567890abcdef99999\"" }, /* differs from params.loop_id */
	{ "params", "[]" },
	{ "params", "null" },
	{ "params", "{}" },
	{ "params.loop_id", NULL },
	{ "params.request_text", NULL },
	{ "params.request_text", "5" },
	{ "params.response_type", NULL },
	{ "params.priority", "\"low\"" }, /* differs from priority */
	{ "created_at", "-5" },
	{ "created_at", "\"2026-11-28T14:02:11Z\"" },
	{ "updated_at", "1.0" },
	{ "submitted_at", "null" },
	{ "deadline_at", "-1" },
	{ "next_attempt_at", "true" },
	{ "remote_id", "\"65f1234567890abcdef1234\"" },
	{ "remote_id", "\"65f1234567890abcdef1234g\"" },
	{ "remote_id", "\"65f1234567890abcdef123456\"" },
	{ "remote_id", "12" },
	{ "remote_status", "\"\"" },
	{ "remote_status", "\"PENDING!\"" },
	{ "remote_status", "3" },
	{ "response", "\"approve\"" },
	{ "response", "[1]" },
	{ "result_source", "\"human\"" },
	{ "result_source", "1" },
	{ "cancel_requested", "1" },
	{ "cancel_requested", "\"true\"" },
	{ "cancel_requested", "null" },
	{ "feedback_state", "\"lost\"" },
	{ "feedback", "\"great\"" },
	{ "attempts", "-1" },
	{ "attempts", "4294967296" },
	{ "attempts", "\"3\"" },
	{ "error", "\"boom\"" },
	{ "surprise", "1" }, /* unknown key */
};

static void test_record_from_json_rejects_each_malformed_field(void **state) {
	for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
		_cleanup_(record_freep) Record *r = make_full();
		_cleanup_(json_object_putp) json_object *j = NULL;
		json_object *target;
		const char *key = malformed[i].key;
		Record *out = NULL;

		assert_int_equal(record_to_json(r, &j), 0);
		target = j;
		if (strncmp(key, "params.", 7) == 0) {
			assert_true(json_object_object_get_ex(j, "params", &target));
			key += 7;
		}
		if (malformed[i].value)
			json_object_object_add(target, key, parse(malformed[i].value));
		else
			json_object_object_del(target, key);

		if (record_from_json(j, &out) != -EBADMSG)
			fail_msg("accepted %s = %s", malformed[i].key, strna(malformed[i].value));
		assert_null(out);
	}
}

static void test_record_from_json_requires_every_key(void **state) {
	_cleanup_(record_freep) Record *r = make_minimal();
	_cleanup_(json_object_putp) json_object *full = NULL;

	assert_int_equal(record_to_json(r, &full), 0);
	json_object_object_foreach(full, key, val) {
		_cleanup_(json_object_putp) json_object *j = NULL;
		Record *out = NULL;

		(void) val;
		assert_int_equal(json_object_deep_copy(full, &j, NULL), 0);
		json_object_object_del(j, key);
		if (record_from_json(j, &out) != -EBADMSG)
			fail_msg("accepted a record without %s", key);
		assert_null(out);
	}
}

static void test_record_from_json_rejects_non_objects(void **state) {
	static const char *const texts[] = { "[]", "\"r\"", "1", "null" };

	for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
		_cleanup_(json_object_putp) json_object *j = parse(texts[i]);
		Record *out = NULL;

		assert_int_equal(record_from_json(j, &out), -EBADMSG);
		assert_null(out);
	}
}

static void test_record_enum_strings_round_trip(void **state) {
	for (RequestState s = 0; s < _REQUEST_STATE_MAX; s++)
		assert_int_equal(request_state_from_string(request_state_to_string(s)), s);
	for (Priority p = 0; p < _PRIORITY_MAX; p++)
		assert_int_equal(priority_from_string(priority_to_string(p)), p);
	for (ResultSource s = 0; s < _RESULT_SOURCE_MAX; s++)
		assert_int_equal(result_source_from_string(result_source_to_string(s)), s);
	for (FeedbackState s = 0; s < _FEEDBACK_STATE_MAX; s++)
		assert_int_equal(feedback_state_from_string(feedback_state_to_string(s)), s);

	assert_string_equal(request_state_to_string(REQUEST_SUBMITTING), "submitting");
	assert_string_equal(priority_to_string(PRIORITY_CRITICAL), "critical");
	assert_int_equal(request_state_from_string("Queued"), -EINVAL);
	assert_int_equal(request_state_from_string(NULL), -EINVAL);
	assert_int_equal(priority_from_string("urgent"), -EINVAL);
	assert_null(request_state_to_string(_REQUEST_STATE_MAX));
	assert_null(priority_to_string(_PRIORITY_INVALID));
}

/* ---- ids ---- */

static void test_record_id_is_r_plus_26_crockford_chars(void **state) {
	char id[RECORD_ID_MAX];

	assert_int_equal(record_make_id(T0, id), 0);
	assert_int_equal(strlen(id), 28);
	assert_memory_equal(id, "r_", 2);
	for (size_t i = 2; i < 28; i++)
		assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", id[i]));
	assert_true(record_id_is_valid(id));
}

static void test_record_id_encodes_millisecond_time_like_ulid(void **state) {
	char id[RECORD_ID_MAX];

	/* The ULID spec's example: 1469918176385 ms -> "01ARYZ6S41". */
	assert_int_equal(record_make_id(1469918176385ULL * USEC_PER_MSEC + 999, id), 0);
	assert_memory_equal(id + 2, "01ARYZ6S41", 10);
	assert_int_equal(record_make_id(0, id), 0);
	assert_memory_equal(id + 2, "0000000000", 10);
	assert_int_equal(record_make_id(((1ULL << 48) - 1) * USEC_PER_MSEC, id), 0);
	assert_memory_equal(id + 2, "7ZZZZZZZZZ", 10);
	assert_int_equal(record_make_id((1ULL << 48) * USEC_PER_MSEC, id), -ERANGE);
}

static int compare_ids(const void *a, const void *b) {
	return strcmp(a, b);
}

static void test_record_ids_sort_by_time(void **state) {
	char prev[RECORD_ID_MAX], id[RECORD_ID_MAX];

	assert_int_equal(record_make_id(T0, prev), 0);
	for (unsigned i = 1; i < 1000; i++) {
		assert_int_equal(record_make_id(T0 + i * USEC_PER_MSEC, id), 0);
		assert_true(strcmp(prev, id) < 0);
		strcpy(prev, id);
	}
}

static void test_record_ids_monotonic_within_one_millisecond(void **state) {
	char prev[RECORD_ID_MAX], id[RECORD_ID_MAX];

	assert_int_equal(record_make_id(T0 + 5 * USEC_PER_SEC, prev), 0);
	for (unsigned i = 1; i < 10000; i++) {
		/* Same millisecond, different microseconds. */
		assert_int_equal(record_make_id(T0 + 5 * USEC_PER_SEC + i % 1000, id), 0);
		assert_memory_equal(id, prev, 12); /* same time part */
		assert_true(strcmp(prev, id) < 0);
		strcpy(prev, id);
	}
}

static void test_record_ids_are_unique(void **state) {
	enum { N = 20000 };
	char(*ids)[RECORD_ID_MAX] = calloc(N, RECORD_ID_MAX);

	assert_non_null(ids);
	/* Half in one millisecond, half spread out: both paths of the
	 * generator. */
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(record_make_id(i < N / 2 ? T0 + 7 * USEC_PER_SEC
		                                          : T0 + 8 * USEC_PER_SEC + i * USEC_PER_MSEC,
		                                ids[i]),
		                 0);
	qsort(ids, N, RECORD_ID_MAX, compare_ids);
	for (unsigned i = 1; i < N; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	free(ids);
}

static void test_record_id_validity(void **state) {
	assert_true(record_id_is_valid(VALID_ID));
	assert_false(record_id_is_valid(NULL));
	assert_false(record_id_is_valid(""));
	assert_false(record_id_is_valid("r_"));
	assert_false(record_id_is_valid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
	assert_false(record_id_is_valid("r_01ARZ3NDEKTSV4RRFFQ69G5FA"));
	assert_false(record_id_is_valid("r_01ARZ3NDEKTSV4RRFFQ69G5FAVV"));
	assert_false(record_id_is_valid("r_01ARZ3NDEKTSV4RRFFQ69G5FAI"));
	assert_false(record_id_is_valid("r_01ARZ3NDEKTSV4RRFFQ69G5FA/"));
	assert_false(record_id_is_valid("r_91ARZ3NDEKTSV4RRFFQ69G5FAV"));
	assert_false(record_id_is_valid("R_01ARZ3NDEKTSV4RRFFQ69G5FAV"));
}

/* ---- client form ---- */

static const char *const protocol_keys[] = {
	"id", "kind", "client_ref", "owner_uid", "state", "remote_id", "remote_status", "loop_id",
	"priority", "processing_type", "type", "request_text", "image_url", "file_url", "file_type", "file_name",
	"video_url", "audio_url", "response_type",
	"response_config", "default_response", "timeout_seconds", "context", "callback_url",
	"platform", "platform_version", "created_at", "submitted_at", "deadline_at",
	"updated_at", "response", "result", "result_source", "cancel_requested",
	"feedback_state", "attempts", "next_attempt_at", "error",
};

static const char *get_str(json_object *j, const char *key) {
	json_object *v;

	assert_true(json_object_object_get_ex(j, key, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static bool is_null(json_object *j, const char *key) {
	json_object *v;

	assert_true(json_object_object_get_ex(j, key, &v));
	return v == NULL;
}

static void test_record_protocol_form_has_exactly_the_documented_fields(void **state) {
	_cleanup_(record_freep) Record *r = make_full();
	_cleanup_(json_object_putp) json_object *j = NULL;

	assert_int_equal(record_to_protocol(r, &j), 0);
	for (size_t i = 0; i < ELEMENTSOF(protocol_keys); i++)
		if (!json_object_object_get_ex(j, protocol_keys[i], NULL))
			fail_msg("missing %s", protocol_keys[i]);
	assert_int_equal(json_object_object_length(j), ELEMENTSOF(protocol_keys));
	assert_false(json_object_object_get_ex(j, "params", NULL));
	assert_false(json_object_object_get_ex(j, "seq", NULL));
}

static void test_record_protocol_form_values(void **state) {
	_cleanup_(record_freep) Record *r = make_full();
	_cleanup_(json_object_putp) json_object *j = NULL;
	json_object *v, *expected;

	assert_int_equal(record_to_protocol(r, &j), 0);
	assert_string_equal(get_str(j, "id"), VALID_ID);
	assert_string_equal(get_str(j, "state"), "completed");
	assert_string_equal(get_str(j, "priority"), "high");
	assert_string_equal(get_str(j, "loop_id"), LOOP_ID);
	assert_string_equal(get_str(j, "created_at"), "2026-11-28T14:02:11Z");
	assert_string_equal(get_str(j, "deadline_at"), "2026-11-28T14:17:11Z");
	assert_string_equal(get_str(j, "next_attempt_at"), "2026-11-28T14:03:11Z");
	assert_string_equal(get_str(j, "result_source"), "reviewer");
	assert_string_equal(get_str(j, "feedback_state"), "queued");
	assert_string_equal(get_str(j, "processing_type"), "time-sensitive");
	assert_string_equal(get_str(j, "result"), "approve");
	assert_true(json_object_object_get_ex(j, "owner_uid", &v));
	assert_int_equal(json_object_get_int(v), 1001);
	assert_true(json_object_object_get_ex(j, "timeout_seconds", &v));
	assert_int_equal(json_object_get_int(v), 900);
	assert_true(json_object_object_get_ex(j, "cancel_requested", &v));
	assert_true(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(j, "attempts", &v));
	assert_int_equal(json_object_get_int(v), 3);
	assert_true(json_object_object_get_ex(j, "response_config", &v));
	assert_true(json_object_object_get_ex(r->params, "response_config", &expected));
	assert_json_equal(v, expected);
	/* Absent from params: null. */
	assert_true(is_null(j, "image_url"));
	assert_true(is_null(j, "callback_url"));
	assert_true(is_null(j, "platform_version"));
}

static void test_record_protocol_form_nulls_for_unset_fields(void **state) {
	_cleanup_(record_freep) Record *r = make_minimal();
	_cleanup_(json_object_putp) json_object *j = NULL;
	static const char *const nulls[] = {
		"client_ref", "remote_id", "remote_status", "submitted_at", "deadline_at",
		"next_attempt_at", "response", "result", "result_source", "feedback_state",
		"error", "context", "default_response",
	};

	assert_int_equal(record_to_protocol(r, &j), 0);
	for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
		if (!is_null(j, nulls[i]))
			fail_msg("%s is not null", nulls[i]);
	assert_string_equal(get_str(j, "state"), "queued");
	assert_string_equal(get_str(j, "request_text"), "Deploy?");
	assert_string_equal(get_str(j, "updated_at"), "2026-11-28T14:02:11Z");
}

static void test_record_protocol_form_is_a_copy(void **state) {
	_cleanup_(record_freep) Record *r = make_full();
	_cleanup_(json_object_putp) json_object *j = NULL;
	json_object *ctx;

	assert_int_equal(record_to_protocol(r, &j), 0);
	assert_true(json_object_object_get_ex(j, "context", &ctx));
	json_object_object_add(ctx, "hitld_id", json_object_new_string("x"));
	assert_true(json_object_object_get_ex(r->params, "context", &ctx));
	assert_false(json_object_object_get_ex(ctx, "hitld_id", NULL));
}

/* ---- kinds: requests and workflow triggers --------------------------------- */

#define WF_ID "wf_abc123"

static Record *make_trigger(void) {
	Record *r = record_new();

	assert_non_null(r);
	strcpy(r->id, VALID_ID);
	r->seq = 7;
	r->owner_uid = 1000;
	r->kind = RECORD_TRIGGER;
	r->state = REQUEST_COMPLETED;
	assert_int_equal(intern_string(WF_ID, &r->loop_id), 0);
	r->params = parse("{\"workflow_id\":\"" WF_ID "\",\"data\":{\"ticket\":4812}}");
	r->result = parse("{\"execution_id\":\"exec_42\"}");
	r->remote_status = strdup("running");
	r->created_at = r->updated_at = r->submitted_at = T0;
	r->attempts = 1;
	return r;
}

static void test_record_request_form_has_no_kind_and_reads_as_request(void **state) {
	_cleanup_(record_freep) Record *r = make_full(), *back = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;

	/* What every hitld wrote before kinds existed: an old log still loads. */
	assert_int_equal(record_to_json(r, &j), 0);
	assert_false(json_object_object_get_ex(j, "kind", NULL));
	assert_int_equal(record_from_json(j, &back), 0);
	assert_int_equal(back->kind, RECORD_REQUEST);
}

static void test_record_trigger_round_trips_with_kind(void **state) {
	_cleanup_(record_freep) Record *r = make_trigger(), *back = NULL, *meta_back = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL, *meta = NULL;
	json_object *v;

	assert_int_equal(record_check(r), 0);
	assert_int_equal(record_to_json(r, &j), 0);
	assert_true(json_object_object_get_ex(j, "kind", &v));
	assert_string_equal(json_object_get_string(v), "trigger");
	assert_int_equal(record_from_json(j, &back), 0);
	assert_int_equal(back->kind, RECORD_TRIGGER);
	assert_string_equal(back->loop_id, WF_ID);
	assert_true(json_object_equal(back->params, r->params));
	assert_true(json_object_equal(back->result, r->result));

	assert_int_equal(record_to_json_meta(r, &meta), 0);
	assert_int_equal(record_from_json_meta(meta, &meta_back), 0);
	assert_int_equal(meta_back->kind, RECORD_TRIGGER);
	assert_int_equal(record_check_params(meta_back, r->params), 0);
}

static void test_record_trigger_params_are_checked(void **state) {
	static const char *const bad[] = {
		"{}",                                                              /* no workflow_id */
		"{\"workflow_id\":\"wf_other\"}",                                  /* not the record's */
		"{\"workflow_id\":7}",
		"{\"workflow_id\":\"" WF_ID "\",\"data\":[1]}",                    /* data not an object */
		"{\"workflow_id\":\"" WF_ID "\",\"priority\":\"high\"}",           /* record says medium */
		"{\"workflow_id\":\"" WF_ID "\",\"request_text\":\"x\"}",          /* a request's */
	};
	_cleanup_(record_freep) Record *r = make_trigger(), *req = make_minimal();

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_(json_object_putp) json_object *p = parse(bad[i]);

		if (record_check_params(r, p) != -EBADMSG)
			fail_msg("accepted %s", bad[i]);
	}
	/* A request's params are not a trigger's, nor the other way round. */
	assert_int_equal(record_check_params(r, req->params), -EBADMSG);
	assert_int_equal(record_check_params(req, r->params), -EBADMSG);
	r->kind = 5;
	assert_int_equal(record_check(r), -EINVAL);
}

static void test_record_kind_is_strict(void **state) {
	_cleanup_(record_freep) Record *r = make_trigger();
	_cleanup_(json_object_putp) json_object *j = NULL;
	Record *back = NULL;

	assert_int_equal(record_to_json(r, &j), 0);
	/* "request" spelled out is not what hitld writes; unknown words fail. */
	json_object_object_add(j, "kind", json_object_new_string("request"));
	assert_int_equal(record_from_json(j, &back), -EBADMSG);
	json_object_object_add(j, "kind", json_object_new_string("workflow"));
	assert_int_equal(record_from_json(j, &back), -EBADMSG);
	json_object_object_add(j, "kind", json_object_new_int(1));
	assert_int_equal(record_from_json(j, &back), -EBADMSG);
	/* Without kind the same params do not pass as a request's. */
	json_object_object_del(j, "kind");
	assert_int_equal(record_from_json(j, &back), -EBADMSG);
	assert_null(back);

	assert_string_equal(record_kind_to_string(RECORD_TRIGGER), "trigger");
	assert_int_equal(record_kind_from_string("request"), RECORD_REQUEST);
	assert_int_equal(record_kind_from_string("x"), -EINVAL);
}

static void test_record_trigger_protocol_form(void **state) {
	_cleanup_(record_freep) Record *r = make_trigger();
	_cleanup_(json_object_putp) json_object *j = NULL;
	json_object *v;

	assert_int_equal(record_to_protocol(r, &j), 0);
	assert_string_equal(get_str(j, "kind"), "trigger");
	assert_string_equal(get_str(j, "workflow_id"), WF_ID);
	assert_string_equal(get_str(j, "execution_id"), "exec_42");
	assert_true(is_null(j, "loop_id"));
	assert_true(is_null(j, "request_text"));
	assert_true(json_object_object_get_ex(j, "data", &v));
	assert_int_equal(json_object_get_int(json_object_object_get(v, "ticket")), 4812);
	/* The request's keys and the trigger's three. */
	assert_int_equal(json_object_object_length(j), ELEMENTSOF(protocol_keys) + 3);

	/* Sent without a readable execution id: null, not absent. */
	json_object_put(r->result);
	r->result = parse("{\"execution_id\":null}");
	json_object_put(TAKE_PTR(j));
	assert_int_equal(record_to_protocol(r, &j), 0);
	assert_true(is_null(j, "execution_id"));
}

/* ------------------------------------------------------------------ the state machine */

static Record *in_state(RequestState st, RecordKind kind) {
	Record *r = record_new();

	assert_non_null(r);
	r->kind = kind;
	r->state = st;   /* a fixture, as record_from_json() would read it */
	return r;
}

static const char *error_code(const Record *r) {
	return json_object_get_string(json_object_object_get(r->error, "code"));
}

static void test_record_mark_submitting(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_QUEUED, RECORD_REQUEST);

	r->next_attempt_at = 5;
	assert_int_equal(record_mark_submitting(r, 77), 0);
	assert_int_equal(r->state, REQUEST_SUBMITTING);
	assert_int_equal(r->attempts, 1);
	assert_int_equal(r->next_attempt_at, 0);
	assert_int_equal(r->updated_at, 77);
	/* Refused from anything but queued, r untouched. */
	for (RequestState st = REQUEST_SUBMITTING; st < _REQUEST_STATE_MAX; st++) {
		r->state = st;
		assert_int_equal(record_mark_submitting(r, 99), -ESTALE);
		assert_int_equal(r->state, st);
		assert_int_equal(r->attempts, 1);
		assert_int_equal(r->updated_at, 77);
	}
}

static void test_record_mark_suspect(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_QUEUED, RECORD_REQUEST);

	r->updated_at = 1234;
	assert_int_equal(record_mark_suspect(r), 0);
	assert_int_equal(r->state, REQUEST_SUBMITTING);
	assert_int_equal(r->reconcile_since, 1234);
	assert_int_equal(r->attempts, 0);
	r->state = REQUEST_PENDING;
	assert_int_equal(record_mark_suspect(r), -ESTALE);
	assert_int_equal(r->state, REQUEST_PENDING);
}

static void test_record_requeue(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_QUEUED, RECORD_REQUEST);

	assert_int_equal(record_mark_submitting(r, 1), 0);
	assert_int_equal(record_requeue(r, false), 0);
	assert_int_equal(r->state, REQUEST_QUEUED);
	assert_int_equal(r->attempts, 1);
	assert_int_equal(record_mark_submitting(r, 2), 0);
	assert_int_equal(record_requeue(r, true), 0);
	assert_int_equal(r->attempts, 1);
	r->attempts = 0;
	r->state = REQUEST_SUBMITTING;
	assert_int_equal(record_requeue(r, true), 0);
	assert_int_equal(r->attempts, 0);
	/* Nothing goes back to the queue once created or final: it could be
	 * created twice. */
	for (RequestState st = REQUEST_QUEUED; st < _REQUEST_STATE_MAX; st++) {
		if (st == REQUEST_SUBMITTING)
			continue;
		r->state = st;
		assert_int_equal(record_requeue(r, true), -ESTALE);
		assert_int_equal(r->state, st);
	}
}

static void test_record_mark_created(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_SUBMITTING, RECORD_REQUEST);

	r->error = json_object_new_object();
	assert_int_equal(record_mark_created(r, 50, "0123456789abcdef01234567", "pending"), 0);
	assert_int_equal(r->state, REQUEST_PENDING);
	assert_int_equal(r->submitted_at, 50);
	assert_string_equal(r->remote_id, "0123456789abcdef01234567");
	assert_string_equal(r->remote_status, "pending");
	assert_null(r->error);

	/* failed → pending, queued → pending: refused. */
	r->state = REQUEST_FAILED;
	assert_int_equal(record_mark_created(r, 60, NULL, NULL), -ESTALE);
	assert_int_equal(r->state, REQUEST_FAILED);
	assert_string_equal(r->remote_id, "0123456789abcdef01234567");
	r->state = REQUEST_QUEUED;
	assert_int_equal(record_mark_created(r, 60, NULL, NULL), -ESTALE);

	/* The reply could not be read: created, id unknown. */
	r->state = REQUEST_SUBMITTING;
	assert_int_equal(record_mark_created(r, 70, NULL, NULL), 0);
	assert_null(r->remote_id);
	assert_null(r->remote_status);
	assert_int_equal(r->submitted_at, 70);
}

static void test_record_mark_created_unknown(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_SUBMITTING, RECORD_REQUEST);

	r->error = json_object_new_object();
	assert_int_equal(record_mark_created_unknown(r, 80), 0);
	assert_int_equal(r->state, REQUEST_PENDING);
	assert_int_equal(r->submitted_at, 80);
	assert_non_null(r->error);
	assert_int_equal(record_mark_created_unknown(r, 90), -ESTALE);
	assert_int_equal(r->submitted_at, 80);
}

static void test_record_fail(void **state) {
	_cleanup_(record_freep) Record *q = in_state(REQUEST_QUEUED, RECORD_REQUEST);
	_cleanup_(record_freep) Record *p = in_state(REQUEST_PENDING, RECORD_REQUEST);

	assert_int_equal(record_fail(q, "lifetime_exceeded", "too old", 0, true), 0);
	assert_int_equal(q->state, REQUEST_FAILED);
	assert_int_equal(q->result_source, RESULT_UNSENT);
	assert_string_equal(error_code(q), "lifetime_exceeded");
	assert_null(json_object_object_get(q->error, "http_status"));

	p->result_source = RESULT_NONE;
	assert_int_equal(record_fail(p, "remote_missing", "gone", 404, false), 0);
	assert_int_equal(p->result_source, RESULT_NONE);
	assert_int_equal(json_object_get_int(json_object_object_get(p->error, "http_status")), 404);

	/* A final state is final: no second failure, no failure of an answer. */
	assert_int_equal(record_fail(p, "other", "again", 0, false), -ESTALE);
	assert_string_equal(error_code(p), "remote_missing");
	p->state = REQUEST_COMPLETED;
	assert_int_equal(record_fail(p, "other", "again", 0, false), -ESTALE);
	assert_int_equal(p->state, REQUEST_COMPLETED);
}

static void test_record_finish_default(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_QUEUED, RECORD_REQUEST);
	_cleanup_(json_object_putp) json_object *def = json_object_new_string("no");

	r->next_attempt_at = 9;
	assert_int_equal(record_finish_default(r, def), 0);
	assert_int_equal(r->state, REQUEST_TIMEOUT);
	assert_string_equal(json_object_get_string(r->result), "no");
	assert_int_equal(r->result_source, RESULT_UNSENT);
	assert_int_equal(r->next_attempt_at, 0);
	/* Sent: HITL.sh's own timeout decides. */
	r->state = REQUEST_PENDING;
	assert_int_equal(record_finish_default(r, def), -ESTALE);
	assert_int_equal(r->state, REQUEST_PENDING);
}

static void test_record_cancel_local_and_undo(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_QUEUED, RECORD_REQUEST);

	assert_int_equal(record_cancel_local(r), 0);
	assert_int_equal(r->state, REQUEST_CANCELLED);
	assert_int_equal(record_cancel_local(r), -ESTALE);
	assert_int_equal(record_uncancel_local(r), 0);
	assert_int_equal(r->state, REQUEST_QUEUED);
	/* Only a local cancel can be undone. */
	assert_int_equal(record_uncancel_local(r), -ESTALE);
	r->state = REQUEST_CANCELLED;
	r->remote_id = strdup("0123456789abcdef01234567");
	assert_int_equal(record_uncancel_local(r), -ESTALE);
	assert_int_equal(r->state, REQUEST_CANCELLED);
	r->state = REQUEST_PENDING;
	assert_int_equal(record_cancel_local(r), -ESTALE);
}

static void test_record_mark_cancelled(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_PENDING, RECORD_REQUEST);

	r->cancel_requested = true;
	assert_int_equal(record_mark_cancelled(r), 0);
	assert_int_equal(r->state, REQUEST_CANCELLED);
	assert_false(r->cancel_requested);
	assert_string_equal(r->remote_status, "cancelled");
	r->state = REQUEST_COMPLETED;
	assert_int_equal(record_mark_cancelled(r), -ESTALE);
	assert_int_equal(r->state, REQUEST_COMPLETED);
}

static void test_record_trigger_sent(void **state) {
	_cleanup_(record_freep) Record *t = in_state(REQUEST_SUBMITTING, RECORD_TRIGGER);
	_cleanup_(record_freep) Record *r = in_state(REQUEST_SUBMITTING, RECORD_REQUEST);
	_cleanup_(json_object_putp) json_object *result = json_object_new_object();

	assert_int_equal(record_trigger_sent(t, result, "queued", 5), 0);
	assert_int_equal(t->state, REQUEST_COMPLETED);
	assert_ptr_equal(t->result, result);
	assert_string_equal(t->remote_status, "queued");
	assert_int_equal(t->submitted_at, 5);
	assert_int_equal(record_trigger_sent(t, result, "queued", 6), -ESTALE);
	/* A review request is never "sent" like a trigger. */
	assert_int_equal(record_trigger_sent(r, result, "queued", 5), -ESTALE);
	assert_int_equal(r->state, REQUEST_SUBMITTING);
}

static void test_record_apply_remote(void **state) {
	_cleanup_(record_freep) Record *r = in_state(REQUEST_SUBMITTING, RECORD_REQUEST);
	_cleanup_(json_object_putp) json_object *def = json_object_new_string("default");
	_cleanup_(json_object_putp) json_object *answer = json_object_new_string("yes");
	_cleanup_(json_object_putp) json_object *resp = json_object_new_object();
	const char *id = "0123456789abcdef01234567";

	/* Found at HITL.sh: pending, with its id. */
	assert_int_equal(record_apply_remote(r, id, "pending", "pending", NULL, NULL, def, 40), 1);
	assert_int_equal(r->state, REQUEST_PENDING);
	assert_int_equal(r->submitted_at, 40);
	assert_string_equal(r->remote_id, id);
	/* Nothing new: nothing changed. */
	assert_int_equal(record_apply_remote(r, id, "pending", "pending", NULL, NULL, def, 41), 0);
	/* A timeout without an answer takes the default. */
	assert_int_equal(record_apply_remote(r, id, "timeout", "timeout", resp, NULL, def, 42), 1);
	assert_int_equal(r->state, REQUEST_TIMEOUT);
	assert_int_equal(r->result_source, RESULT_DEFAULT);
	assert_string_equal(json_object_get_string(r->result), "default");
	/* HITL.sh's final word stands over an earlier one. */
	r->cancel_requested = true;
	assert_int_equal(record_apply_remote(r, id, "completed", "completed", resp, answer, def, 43), 1);
	assert_int_equal(r->state, REQUEST_COMPLETED);
	assert_int_equal(r->result_source, RESULT_REVIEWER);
	assert_ptr_equal(r->result, answer);
	assert_ptr_equal(r->response, resp);
	assert_false(r->cancel_requested);

	r->state = REQUEST_PENDING;
	assert_int_equal(record_apply_remote(r, id, "failed", "errored", NULL, NULL, def, 44), 1);
	assert_int_equal(r->state, REQUEST_FAILED);
	assert_string_equal(error_code(r), "remote_failed");
	assert_int_equal(record_apply_remote(r, id, "failed", "errored", NULL, NULL, def, 45), 0);

	/* Never sent: there is no remote side to hear from. */
	r->state = REQUEST_QUEUED;
	assert_int_equal(record_apply_remote(r, id, "completed", "completed", resp, answer, def, 46), -ESTALE);
	assert_int_equal(r->state, REQUEST_QUEUED);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_full_round_trip_keeps_every_field),
		cmocka_unit_test(test_record_callback_token_round_trip_and_old_form),
		cmocka_unit_test(test_record_minimal_round_trip_keeps_nulls),
		cmocka_unit_test(test_record_copy_keeps_every_field_and_shares_nothing),
		cmocka_unit_test(test_record_loop_id_is_shared_and_released),
		cmocka_unit_test(test_record_result_may_be_any_json_type),
		cmocka_unit_test(test_record_unsent_round_trips_and_shows),
		cmocka_unit_test(test_record_to_json_writes_version_and_every_field),
		cmocka_unit_test(test_record_to_json_refuses_what_it_could_not_read_back),
		cmocka_unit_test(test_record_from_json_rejects_each_malformed_field),
		cmocka_unit_test(test_record_from_json_requires_every_key),
		cmocka_unit_test(test_record_from_json_rejects_non_objects),
		cmocka_unit_test(test_record_enum_strings_round_trip),
		cmocka_unit_test(test_record_id_is_r_plus_26_crockford_chars),
		cmocka_unit_test(test_record_id_encodes_millisecond_time_like_ulid),
		cmocka_unit_test(test_record_ids_sort_by_time),
		cmocka_unit_test(test_record_ids_monotonic_within_one_millisecond),
		cmocka_unit_test(test_record_ids_are_unique),
		cmocka_unit_test(test_record_id_validity),
		cmocka_unit_test(test_record_protocol_form_has_exactly_the_documented_fields),
		cmocka_unit_test(test_record_protocol_form_values),
		cmocka_unit_test(test_record_protocol_form_nulls_for_unset_fields),
		cmocka_unit_test(test_record_protocol_form_is_a_copy),
		cmocka_unit_test(test_record_request_form_has_no_kind_and_reads_as_request),
		cmocka_unit_test(test_record_trigger_round_trips_with_kind),
		cmocka_unit_test(test_record_trigger_params_are_checked),
		cmocka_unit_test(test_record_kind_is_strict),
		cmocka_unit_test(test_record_trigger_protocol_form),
		cmocka_unit_test(test_record_mark_submitting),
		cmocka_unit_test(test_record_mark_suspect),
		cmocka_unit_test(test_record_requeue),
		cmocka_unit_test(test_record_mark_created),
		cmocka_unit_test(test_record_mark_created_unknown),
		cmocka_unit_test(test_record_fail),
		cmocka_unit_test(test_record_finish_default),
		cmocka_unit_test(test_record_cancel_local_and_undo),
		cmocka_unit_test(test_record_mark_cancelled),
		cmocka_unit_test(test_record_trigger_sent),
		cmocka_unit_test(test_record_apply_remote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
