/* apierr: which HITL.sh errors are about one request, one loop, or the key,
 * the account or the endpoint as a whole (issue 13 item 3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "apierr.h"

static ApiErrClass cls(CallKind kind, long status, const char *msg, const char *data, bool rate_headers,
                       bool loop_known) {
	json_object *d = data ? json_object_new_string(data) : NULL;
	ApiErrInput in = {
		.kind = kind,
		.http_status = status,
		.has_rate_headers = rate_headers,
		.msg = msg,
		.data = d,
		.loop_known = loop_known,
	};
	ApiErrClass c = apierr_classify(&in);

	json_object_put(d);
	return c;
}

static void test_apierr_success_and_transient(void **state) {
	assert_int_equal(cls(CALL_CREATE, 201, "Request created successfully", NULL, true, false), APIERR_NONE);
	assert_int_equal(cls(CALL_CREATE, 0, NULL, NULL, false, false), APIERR_TRANSIENT);
	assert_int_equal(cls(CALL_CREATE, 500, "Internal server error", NULL, true, false), APIERR_TRANSIENT);
	assert_int_equal(cls(CALL_RECONCILE, 503, NULL, NULL, false, false), APIERR_TRANSIENT);

	ApiErrInput bad = { .kind = CALL_RECONCILE, .http_status = 200, .body_invalid = true };
	assert_int_equal(apierr_classify(&bad), APIERR_TRANSIENT);
	assert_int_equal(apierr_classify(NULL), _APIERR_CLASS_INVALID);
}

static void test_apierr_redirects_and_gone_endpoints(void **state) {
	for (long s = 300; s < 400; s++)
		assert_int_equal(cls(CALL_CREATE, s, NULL, NULL, false, false), APIERR_ENDPOINT);
	assert_int_equal(cls(CALL_RECONCILE, 302, NULL, NULL, false, false), APIERR_ENDPOINT);
	assert_int_equal(cls(CALL_CREATE, 410, "Gone", NULL, true, false), APIERR_ENDPOINT);
	assert_int_equal(cls(CALL_CREATE, 405, "Method not allowed", NULL, true, false), APIERR_ENDPOINT);
	assert_int_equal(cls(CALL_CREATE, 404, "Route not found", NULL, true, false), APIERR_ENDPOINT);
	/* A loop that never took a create may simply not exist. */
	assert_int_equal(cls(CALL_CREATE, 404, "Loop not found", NULL, true, false), APIERR_REQUEST);
	assert_int_equal(cls(CALL_CREATE, 404, "Loop not found", NULL, true, true), APIERR_ENDPOINT);
	/* A request that is gone is about that request. */
	assert_int_equal(cls(CALL_POLL, 404, "Request not found", NULL, true, true), APIERR_REQUEST);
}

static void test_apierr_key_and_account(void **state) {
	assert_int_equal(cls(CALL_CREATE, 401, "Invalid authorization token", NULL, false, false), APIERR_KEY_INVALID);
	assert_int_equal(cls(CALL_CREATE, 403, "API key is inactive", NULL, true, false), APIERR_KEY);
	assert_int_equal(cls(CALL_CREATE, 403, "Forbidden", "API key is inactive", true, false), APIERR_KEY);
	assert_int_equal(cls(CALL_CREATE, 402, "Payment required", NULL, true, false), APIERR_ACCOUNT);
	assert_int_equal(cls(CALL_CREATE, 402, NULL, NULL, false, false), APIERR_ACCOUNT);
	assert_int_equal(cls(CALL_CREATE, 403, "Monthly quota exceeded", NULL, true, false), APIERR_ACCOUNT);
	assert_int_equal(cls(CALL_CREATE, 403, "Upgrade your plan", NULL, true, false), APIERR_ACCOUNT);
	assert_int_equal(cls(CALL_CREATE, 403, "Only loop creators can create requests", NULL, true, false),
	                 APIERR_REQUEST);
	/* 429: with rate headers the hourly limit; without, quota words mean the month's. */
	assert_int_equal(cls(CALL_CREATE, 429, "API rate limit exceeded", NULL, true, false), APIERR_RATE);
	assert_int_equal(cls(CALL_CREATE, 429, "Monthly request quota exhausted", NULL, false, false), APIERR_ACCOUNT);
	assert_int_equal(cls(CALL_CREATE, 429, "Monthly request quota exhausted", NULL, true, false), APIERR_RATE);
	assert_int_equal(cls(CALL_CREATE, 429, "Too many requests", NULL, false, false), APIERR_RATE);
	/* A word inside another is not the word. */
	assert_int_equal(cls(CALL_CREATE, 403, "No explanation given", NULL, true, false), APIERR_REQUEST);
}

static void test_apierr_loop_and_request_level(void **state) {
	assert_int_equal(cls(CALL_CREATE, 400, "No active members found in the loop", NULL, true, true), APIERR_LOOP);
	assert_int_equal(cls(CALL_CREATE, 400, "Validation failed", "request_text is required", true, true),
	                 APIERR_REQUEST);
	assert_int_equal(cls(CALL_CREATE, 400, "Invalid loop ID format", NULL, true, false), APIERR_REQUEST);
	assert_int_equal(cls(CALL_CREATE, 400, "Billing account suspended", NULL, true, false), APIERR_ACCOUNT);
	assert_int_equal(cls(CALL_CREATE, 409, "Conflict", NULL, true, false), APIERR_REQUEST);
	assert_int_equal(cls(CALL_CREATE, 422, "Subscription expired", NULL, true, false), APIERR_ACCOUNT);
}

static void test_apierr_quota_words_in_data_objects(void **state) {
	json_object *d = json_tokener_parse("{\"reason\":\"monthly QUOTA reached\",\"used\":1000}");
	ApiErrInput in = { .kind = CALL_CREATE, .http_status = 403, .msg = "Forbidden", .data = d };

	assert_int_equal(apierr_classify(&in), APIERR_ACCOUNT);
	json_object_put(d);
}

static void test_apierr_describe_has_the_servers_words_and_no_controls(void **state) {
	json_object *d = json_object_new_string("line\nbreak\x1b[31m");
	char buf[128];

	apierr_describe(403, "API key is inactive", NULL, buf, sizeof buf);
	assert_string_equal(buf, "HTTP 403: API key is inactive");
	apierr_describe(400, "Validation failed", d, buf, sizeof buf);
	assert_null(strchr(buf, '\n'));
	assert_null(strchr(buf, '\x1b'));
	assert_non_null(strstr(buf, "Validation failed: line break"));
	apierr_describe(301, NULL, NULL, buf, sizeof buf);
	assert_string_equal(buf, "HTTP 301: (no message)");
	apierr_describe(403, "x", NULL, buf, 8);
	assert_int_equal(strlen(buf), 7);
	json_object_put(d);
}

static void test_apierr_global_classes(void **state) {
	assert_true(apierr_is_global(APIERR_KEY));
	assert_true(apierr_is_global(APIERR_ACCOUNT));
	assert_true(apierr_is_global(APIERR_ENDPOINT));
	assert_false(apierr_is_global(APIERR_REQUEST));
	assert_false(apierr_is_global(APIERR_LOOP));
	assert_false(apierr_is_global(APIERR_TRANSIENT));
	for (int c = 0; c < _APIERR_CLASS_MAX; c++)
		assert_non_null(apierr_class_to_string(c));
	assert_null(apierr_class_to_string(_APIERR_CLASS_MAX));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apierr_success_and_transient),
		cmocka_unit_test(test_apierr_redirects_and_gone_endpoints),
		cmocka_unit_test(test_apierr_key_and_account),
		cmocka_unit_test(test_apierr_loop_and_request_level),
		cmocka_unit_test(test_apierr_quota_words_in_data_objects),
		cmocka_unit_test(test_apierr_describe_has_the_servers_words_and_no_controls),
		cmocka_unit_test(test_apierr_global_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
