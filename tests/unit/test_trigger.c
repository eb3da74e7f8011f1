/* Workflow triggers: workflow ids, workflow.trigger's params, the path and
 * body sent, and what each outcome of the call does to the record (exactly
 * once, or reported as outcome unknown). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "intern.h"
#include "trigger.h"

#define WF "wf_abc123"
#define NOW ((usec_t) 1795874531000000ULL)
#define RETRY_AT (NOW + 7 * USEC_PER_SEC)

static json_object *parse(const char *text) {
	json_object *j = json_tokener_parse(text);

	assert_non_null(j);
	return j;
}

static Record *submitting(void) {
	Record *r = record_new();

	assert_non_null(r);
	strcpy(r->id, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV");
	r->kind = RECORD_TRIGGER;
	r->state = REQUEST_SUBMITTING;
	r->attempts = 1;
	assert_int_equal(intern_string(WF, &r->loop_id), 0);
	r->params = parse("{\"workflow_id\":\"" WF "\"}");
	return r;
}

static const char *error_field(const Record *r, const char *key) {
	return json_object_get_string(json_object_object_get(r->error, key));
}

static void test_workflow_ids(void **state) {
	static const char *const good[] = { "wf_abc123", "wf_a", "wf_A-b_9", "wf__" };
	static const char *const bad[] = { "", "wf_", "WF_abc", "wfabc", "65f1234567890abcdef12345",
		                           "wf_a b", "wf_a/b", "wf_a.b", "wf_ä", "x_wf_abc" };
	char longest[TRIGGER_WORKFLOW_ID_MAX + 2];

	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		if (!trigger_workflow_id_is_valid(good[i]))
			fail_msg("refused %s", good[i]);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (trigger_workflow_id_is_valid(bad[i]))
			fail_msg("accepted %s", bad[i]);
	assert_false(trigger_workflow_id_is_valid(NULL));

	memset(longest, 'a', sizeof longest);
	memcpy(longest, "wf_", 3);
	longest[TRIGGER_WORKFLOW_ID_MAX] = 0;
	assert_true(trigger_workflow_id_is_valid(longest));
	longest[TRIGGER_WORKFLOW_ID_MAX] = 'a';
	longest[TRIGGER_WORKFLOW_ID_MAX + 1] = 0;
	assert_false(trigger_workflow_id_is_valid(longest));
}

static void test_validate_keeps_workflow_data_priority(void **state) {
	_cleanup_(json_object_putp) json_object *in = parse("{\"workflow_id\":\"" WF "\",\"data\":{\"a\":[1,{\"b\":null}]},"
	                                                    "\"priority\":\"high\"}"),
	                                        *out = NULL, *minimal_in = parse("{\"workflow_id\":\"" WF "\"}"),
	                                        *minimal = NULL;
	const char *field = NULL, *reason = NULL;

	assert_int_equal(trigger_validate(in, &out, &field, &reason), 0);
	assert_true(json_object_equal(in, out));
	/* data is a copy: the caller's object may change afterwards. */
	assert_ptr_not_equal(json_object_object_get(in, "data"), json_object_object_get(out, "data"));

	assert_int_equal(trigger_validate(minimal_in, &minimal, &field, &reason), 0);
	assert_int_equal(json_object_object_length(minimal), 1);
}

static void test_validate_refuses_with_the_field(void **state) {
	static const struct {
		const char *params, *field;
	} cases[] = {
		{ "{}", "workflow_id" },
		{ "{\"workflow_id\":\"65f1234567890abcdef12345\"}", "workflow_id" },
		{ "{\"workflow_id\":7}", "workflow_id" },
		{ "{\"workflow_id\":\"wf_a\\u0000b\"}", "workflow_id" },
		{ "{\"workflow_id\":\"" WF "\",\"data\":[1]}", "data" },
		{ "{\"workflow_id\":\"" WF "\",\"data\":\"x\"}", "data" },
		{ "{\"workflow_id\":\"" WF "\",\"priority\":\"urgent\"}", "priority" },
		{ "{\"workflow_id\":\"" WF "\",\"priority\":3}", "priority" },
		{ "{\"workflow_id\":\"" WF "\",\"loop_id\":\"x\"}", "loop_id" },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_(json_object_putp) json_object *in = parse(cases[i].params), *out = NULL;
		const char *field = NULL, *reason = NULL;

		assert_int_equal(trigger_validate(in, &out, &field, &reason), -EINVAL);
		assert_null(out);
		assert_string_equal(field, cases[i].field);
		assert_non_null(reason);
	}
}

static void test_validate_bounds_data(void **state) {
	_cleanup_(json_object_putp) json_object *big = parse("{\"workflow_id\":\"" WF "\"}"), *deep = NULL,
	                                        *out = NULL, *ok = NULL;
	_cleanup_(freep) char *text = malloc(TRIGGER_DATA_SIZE_MAX + 1);
	json_object *data = json_object_new_object(), *cur;
	const char *field = NULL, *reason = NULL;

	/* {"s":"xxx…"} serialises to 8 bytes more than the string. */
	assert_non_null(text);
	memset(text, 'x', TRIGGER_DATA_SIZE_MAX - 8);
	text[TRIGGER_DATA_SIZE_MAX - 8] = 0;
	json_object_object_add(data, "s", json_object_new_string(text));
	json_object_object_add(big, "data", data);
	assert_int_equal(trigger_validate(big, &ok, &field, &reason), 0);
	text[TRIGGER_DATA_SIZE_MAX - 8] = 'x';
	text[TRIGGER_DATA_SIZE_MAX - 7] = 0;
	json_object_object_add(data, "s", json_object_new_string(text));
	assert_int_equal(trigger_validate(big, &out, &field, &reason), -EINVAL);
	assert_string_equal(field, "data");

	/* 32 containers deep is allowed, 33 is not (data itself counts). */
	deep = parse("{\"workflow_id\":\"" WF "\"}");
	cur = json_object_new_object();
	json_object_object_add(deep, "data", cur);
	for (int i = 1; i < TRIGGER_DATA_DEPTH_MAX; i++) {
		json_object *next = json_object_new_array();

		if (json_object_is_type(cur, json_type_object))
			json_object_object_add(cur, "n", next);
		else
			json_object_array_add(cur, next);
		cur = next;
	}
	json_object_put(TAKE_PTR(out));
	assert_int_equal(trigger_validate(deep, &out, &field, &reason), 0);
	json_object_array_add(cur, json_object_new_object());
	json_object_put(TAKE_PTR(out));
	assert_int_equal(trigger_validate(deep, &out, &field, &reason), -EINVAL);
	assert_string_equal(field, "data");
}

static void test_path_and_body(void **state) {
	_cleanup_(json_object_putp) json_object *with = parse("{\"workflow_id\":\"" WF "\",\"data\":{\"x\":1}}"),
	                                        *without = parse("{\"workflow_id\":\"" WF "\"}"),
	                                        *bad = parse("{\"workflow_id\":\"wf_../x\"}"), *body = NULL;
	char path[TRIGGER_PATH_MAX];

	assert_int_equal(trigger_path(with, path), 0);
	assert_string_equal(path, "/workflows/" WF "/trigger");   /* no /api segment */
	assert_int_equal(trigger_path(bad, path), -EINVAL);

	assert_int_equal(trigger_body(with, &body), 0);
	assert_true(json_object_equal(body, json_object_object_get(with, "data")));
	json_object_put(TAKE_PTR(body));
	assert_int_equal(trigger_body(without, &body), 0);
	assert_string_equal(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), "{}");
}

static void test_outcome_rules(void **state) {
	static const struct {
		long status;
		bool maybe_sent;
		TriggerOutcome want;
	} cases[] = {
		{ 200, false, TRIGGER_SENT },     { 201, false, TRIGGER_SENT },     { 202, false, TRIGGER_SENT },
		{ 0, false, TRIGGER_RETRY },      { 0, true, TRIGGER_UNKNOWN },     { 429, false, TRIGGER_RETRY },
		{ 503, false, TRIGGER_RETRY },    { 500, false, TRIGGER_UNKNOWN },  { 502, false, TRIGGER_UNKNOWN },
		{ 504, false, TRIGGER_UNKNOWN },  { 401, false, TRIGGER_KEY },      { 400, false, TRIGGER_REJECTED },
		{ 403, false, TRIGGER_REJECTED }, { 404, false, TRIGGER_REJECTED }, { 410, false, TRIGGER_REJECTED },
		{ 301, false, TRIGGER_REJECTED }, { 100, false, TRIGGER_UNKNOWN },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ApiResult res = { .http_status = cases[i].status, .maybe_sent = cases[i].maybe_sent };

		if (trigger_outcome(&res) != cases[i].want)
			fail_msg("HTTP %ld (maybe_sent %d): %s, want %s", cases[i].status, cases[i].maybe_sent,
			         trigger_outcome_to_string(trigger_outcome(&res)), trigger_outcome_to_string(cases[i].want));
	}
}

static void test_apply_sent_keeps_the_execution_id(void **state) {
	_cleanup_(json_object_putp) json_object *data =
	        parse("{\"execution_id\":\"exec_7f3a\",\"workflow_id\":\"" WF "\",\"status\":\"running\"}");
	_cleanup_(record_freep) Record *r = submitting();
	ApiResult res = { .http_status = 200, .data = data, .msg = "Workflow triggered successfully" };

	r->error = parse("{\"code\":\"x\",\"message\":\"old\"}");
	assert_int_equal(trigger_apply(r, &res, NOW, RETRY_AT), TRIGGER_SENT);
	assert_int_equal(r->state, REQUEST_COMPLETED);
	assert_string_equal(json_object_get_string(json_object_object_get(r->result, "execution_id")), "exec_7f3a");
	assert_string_equal(r->remote_status, "running");
	assert_null(r->error);
	assert_true(r->submitted_at == NOW);
	assert_int_equal(r->attempts, 1);
	assert_int_equal(record_check(r), 0);
}

static void test_apply_sent_without_a_readable_id_is_still_triggered(void **state) {
	static const char *const datas[] = {
		"{}", "{\"execution_id\":42}", "{\"execution_id\":\"\"}", "{\"execution_id\":\"exec 1\"}",
		"{\"execution_id\":\"exec_1\",\"status\":\"Running Now\"}",
	};

	for (size_t i = 0; i < ELEMENTSOF(datas); i++) {
		_cleanup_(json_object_putp) json_object *data = parse(datas[i]);
		_cleanup_(record_freep) Record *r = submitting();
		ApiResult res = { .http_status = 201, .data = data };
		json_object *v = NULL;

		assert_int_equal(trigger_apply(r, &res, NOW, RETRY_AT), TRIGGER_SENT);
		assert_int_equal(r->state, REQUEST_COMPLETED);
		assert_true(json_object_object_get_ex(r->result, "execution_id", &v));
		if (i < 4)
			assert_null(v);
		assert_null(r->remote_status);   /* not a status word: not kept */
		assert_int_equal(record_check(r), 0);
	}

	/* A 2xx whose body is no envelope at all. */
	_cleanup_(record_freep) Record *r = submitting();
	ApiResult res = { .http_status = 200, .body_invalid = true, .api_error = true };
	assert_int_equal(trigger_apply(r, &res, NOW, RETRY_AT), TRIGGER_SENT);
	assert_null(json_object_object_get(r->result, "execution_id"));

	char longid[TRIGGER_EXECUTION_ID_MAX + 32];
	_cleanup_(json_object_putp) json_object *d = json_object_new_object();
	memset(longid, 'e', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	json_object_object_add(d, "execution_id", json_object_new_string(longid));
	assert_null(trigger_execution_id(d));
	longid[TRIGGER_EXECUTION_ID_MAX] = 0;
	json_object_object_add(d, "execution_id", json_object_new_string(longid));
	assert_non_null(trigger_execution_id(d));
}

static void test_apply_rejected_keeps_the_servers_words(void **state) {
	_cleanup_(record_freep) Record *r = submitting(), *r2 = submitting(), *r3 = submitting();
	_cleanup_(json_object_putp) json_object *detail = json_object_new_string("body must be a JSON object");
	ApiResult notfound = { .http_status = 404, .api_error = true, .msg = "Workflow not found" };
	ApiResult invalid = { .http_status = 400, .api_error = true, .msg = "Invalid request body", .data = detail };
	ApiResult bare = { .http_status = 410, .api_error = true, .body_invalid = true };

	assert_int_equal(trigger_apply(r, &notfound, NOW, RETRY_AT), TRIGGER_REJECTED);
	assert_int_equal(r->state, REQUEST_FAILED);
	assert_string_equal(error_field(r, "code"), "remote_rejected");
	assert_string_equal(error_field(r, "message"), "Workflow not found");
	assert_int_equal(json_object_get_int(json_object_object_get(r->error, "http_status")), 404);

	assert_int_equal(trigger_apply(r2, &invalid, NOW, RETRY_AT), TRIGGER_REJECTED);
	assert_string_equal(error_field(r2, "message"), "Invalid request body: body must be a JSON object");

	assert_int_equal(trigger_apply(r3, &bare, NOW, RETRY_AT), TRIGGER_REJECTED);
	assert_non_null(strstr(error_field(r3, "message"), "410"));
	assert_int_equal(record_check(r3), 0);
}

static void test_apply_unknown_fails_and_says_so(void **state) {
	_cleanup_(record_freep) Record *r = submitting(), *r2 = submitting(), *r3 = submitting();
	ApiResult lost = { .http_status = 0, .maybe_sent = true, .error_text = "Connection reset by peer" };
	ApiResult server = { .http_status = 500, .api_error = true, .msg = "Internal server error" };

	assert_int_equal(trigger_apply(r, &lost, NOW, RETRY_AT), TRIGGER_UNKNOWN);
	assert_int_equal(r->state, REQUEST_FAILED);
	assert_true(r->next_attempt_at == 0);
	assert_string_equal(error_field(r, "code"), TRIGGER_OUTCOME_UNKNOWN);
	assert_non_null(strstr(error_field(r, "message"), "may or may not have run"));
	assert_non_null(strstr(error_field(r, "message"), "Connection reset by peer"));
	assert_null(json_object_object_get(r->error, "http_status"));

	assert_int_equal(trigger_apply(r2, &server, NOW, RETRY_AT), TRIGGER_UNKNOWN);
	assert_int_equal(json_object_get_int(json_object_object_get(r2->error, "http_status")), 500);

	trigger_apply_lost(r3);
	assert_int_equal(r3->state, REQUEST_FAILED);
	assert_string_equal(error_field(r3, "code"), TRIGGER_OUTCOME_UNKNOWN);
	assert_non_null(strstr(error_field(r3, "message"), "hitld stopped while sending it"));
	assert_int_equal(record_check(r3), 0);
}

static void test_apply_retry_and_key_requeue(void **state) {
	_cleanup_(record_freep) Record *r = submitting(), *r2 = submitting(), *r3 = submitting();
	ApiResult refused = { .http_status = 0, .maybe_sent = false, .error_text = "Connection refused" };
	ApiResult limited = { .http_status = 429, .api_error = true, .msg = "API rate limit exceeded" };
	ApiResult key = { .http_status = 401, .api_error = true, .msg = "Invalid API key" };

	assert_int_equal(trigger_apply(r, &refused, NOW, RETRY_AT), TRIGGER_RETRY);
	assert_int_equal(r->state, REQUEST_QUEUED);
	assert_true(r->next_attempt_at == RETRY_AT);
	assert_int_equal(r->attempts, 1);
	assert_null(r->error);

	assert_int_equal(trigger_apply(r2, &limited, NOW, RETRY_AT), TRIGGER_RETRY);
	assert_int_equal(r2->state, REQUEST_QUEUED);

	/* The key's fault, not the trigger's: the attempt is not counted. */
	assert_int_equal(trigger_apply(r3, &key, NOW, RETRY_AT), TRIGGER_KEY);
	assert_int_equal(r3->state, REQUEST_QUEUED);
	assert_int_equal(r3->attempts, 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workflow_ids),
		cmocka_unit_test(test_validate_keeps_workflow_data_priority),
		cmocka_unit_test(test_validate_refuses_with_the_field),
		cmocka_unit_test(test_validate_bounds_data),
		cmocka_unit_test(test_path_and_body),
		cmocka_unit_test(test_outcome_rules),
		cmocka_unit_test(test_apply_sent_keeps_the_execution_id),
		cmocka_unit_test(test_apply_sent_without_a_readable_id_is_still_triggered),
		cmocka_unit_test(test_apply_rejected_keeps_the_servers_words),
		cmocka_unit_test(test_apply_unknown_fails_and_says_so),
		cmocka_unit_test(test_apply_retry_and_key_requeue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
