/* Parsing what HITL.sh sends back: rate-limit headers, the envelope, request
 * objects in both response_data encodings, every status word and GET shape, list
 * pages (docs/HITL-API.md §1, §2.3–§2.6, §3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apiparse.h"
#include "cleanup.h"

#define LINE(s) (s), strlen(s)

static json_object *json(const char *s) {
	json_object *j = json_tokener_parse(s);
	assert_non_null(j);
	return j;
}

/* ---- headers ---- */

static void test_header_rate_limit_triple_is_parsed(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Limit: 100\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Remaining: 99\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Reset: 1642233600\r\n"), &ri), 1);
	assert_true(ri.has_limit && ri.has_remaining && ri.has_reset);
	assert_int_equal(ri.limit, 100);
	assert_int_equal(ri.remaining, 99);
	assert_int_equal(ri.reset_epoch, 1642233600);
	assert_false(ri.has_date || ri.has_retry_after);
}

static void test_header_names_are_case_insensitive(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("x-ratelimit-remaining: 7\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("X-RATELIMIT-LIMIT:100\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("retry-after: 30\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("DATE: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), &ri), 1);
	assert_int_equal(ri.remaining, 7);
	assert_int_equal(ri.limit, 100);
	assert_int_equal(ri.retry_after_s, 30);
	assert_int_equal(ri.date_epoch, 784111777);
}

static void test_header_line_need_not_be_terminated(void **state) {
	/* curl hands over a buffer, not a C string: only len bytes count. */
	const char buf[] = "X-RateLimit-Remaining: 42XXXX";
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(buf, strlen("X-RateLimit-Remaining: 42"), &ri), 1);
	assert_int_equal(ri.remaining, 42);
	/* Surrounding whitespace and bare LF are fine too. */
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Remaining:\t 5 \n"), &ri), 1);
	assert_int_equal(ri.remaining, 5);
}

static void test_header_other_lines_are_not_recognised(void **state) {
	RateInfo ri = {}, zero = {};

	assert_int_equal(apiparse_header_line(LINE("Content-Type: application/json\r\n"), &ri), 0);
	assert_int_equal(apiparse_header_line(LINE("HTTP/1.1 429 Too Many Requests\r\n"), &ri), 0);
	assert_int_equal(apiparse_header_line(LINE("\r\n"), &ri), 0);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Remaining-Extra: 3\r\n"), &ri), 0);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Remaining 3\r\n"), &ri), 0);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Remaining : 3\r\n"), &ri), 0);
	assert_int_equal(apiparse_header_line(NULL, 0, &ri), 0);
	assert_memory_equal(&ri, &zero, sizeof(ri));
	assert_false(apiparse_header_wanted(LINE("Server: nginx\r\n")));
	assert_true(apiparse_header_wanted(LINE("x-ratelimit-reset: 1\r\n")));
}

static void test_header_malformed_values_are_rejected_and_change_nothing(void **state) {
	static const char *const bad[] = {
		"X-RateLimit-Remaining: abc\r\n", "X-RateLimit-Remaining: -1\r\n",
		"X-RateLimit-Remaining: +5\r\n",  "X-RateLimit-Remaining: 1 2\r\n",
		"X-RateLimit-Remaining: \r\n",    "X-RateLimit-Remaining: 5.0\r\n",
		"X-RateLimit-Remaining: 0x10\r\n", "X-RateLimit-Limit: 100, 100\r\n",
		"X-RateLimit-Reset: 2024-03-15T15:00:00Z\r\n", "Date: yesterday\r\n",
		"Date: 1642233600\r\n", "Retry-After: soon\r\n", "Retry-After: -5\r\n",
	};
	RateInfo ri = { .has_remaining = true, .remaining = 77 }, before = ri;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(apiparse_header_line(LINE(bad[i]), &ri), -EINVAL);
		assert_memory_equal(&ri, &before, sizeof(ri));
	}
}

static void test_header_value_with_nul_byte_is_rejected(void **state) {
	const char line[] = "X-RateLimit-Remaining: 4\0 5\r\n";
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(line, sizeof(line) - 1, &ri), -EINVAL);
	assert_false(ri.has_remaining);
}

static void test_header_huge_numbers_are_rejected(void **state) {
	RateInfo ri = {};
	char line[600];

	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Remaining: 99999999999999999999\r\n"), &ri), -EINVAL);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Limit: 1000000001\r\n"), &ri), -EINVAL);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Limit: 4294967296\r\n"), &ri), -EINVAL);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Reset: 253402300800\r\n"), &ri), -EINVAL);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Reset: 18446744073709551617\r\n"), &ri), -EINVAL);
	assert_int_equal(apiparse_header_line(LINE("Retry-After: 604801\r\n"), &ri), -EINVAL);
	assert_false(ri.has_limit || ri.has_remaining || ri.has_reset || ri.has_retry_after);

	/* The largest accepted values. */
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Limit: 1000000000\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("X-RateLimit-Reset: 253402300799\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("Retry-After: 604800\r\n"), &ri), 1);
	assert_int_equal(ri.limit, 1000000000U);
	assert_int_equal(ri.reset_epoch, INT64_C(253402300799));
	assert_int_equal(ri.retry_after_s, 604800);

	/* A long run of leading zeros is still a small number, but an overlong
	 * value is not read at all. */
	snprintf(line, sizeof(line), "X-RateLimit-Remaining: %0300d\r\n", 3);
	assert_int_equal(apiparse_header_line(LINE(line), &ri), -EINVAL);
	snprintf(line, sizeof(line), "X-RateLimit-Remaining: %0200d\r\n", 3);
	assert_int_equal(apiparse_header_line(LINE(line), &ri), 1);
	assert_int_equal(ri.remaining, 3);
}

static void test_header_date_reads_all_three_http_forms(void **state) {
	static const char *const forms[] = {
		"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
		"Date: Sunday, 06-Nov-94 08:49:37 GMT\r\n",
		"Date: Sun Nov  6 08:49:37 1994\r\n",
	};

	for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
		RateInfo ri = {};

		assert_int_equal(apiparse_header_line(LINE(forms[i]), &ri), 1);
		assert_true(ri.has_date);
		assert_int_equal(ri.date_epoch, 784111777);
	}
}

static void test_header_retry_after_seconds(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("Retry-After: 120\r\n"), &ri), 1);
	assert_true(ri.has_retry_after);
	assert_int_equal(ri.retry_after_s, 120);
	assert_int_equal(apiparse_header_line(LINE("Retry-After: 0\r\n"), &ri), 1);
	assert_int_equal(ri.retry_after_s, 0);
}

static void test_header_retry_after_date_is_relative_to_server_date(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("Date: Mon, 15 Jan 2024 10:41:00 GMT\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("Retry-After: Mon, 15 Jan 2024 11:00:00 GMT\r\n"), &ri), 1);
	assert_true(ri.has_retry_after);
	assert_int_equal(ri.retry_after_s, 19 * 60);
}

static void test_header_retry_after_date_in_the_past_means_now(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("Date: Mon, 15 Jan 2024 11:00:05 GMT\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("Retry-After: Mon, 15 Jan 2024 11:00:00 GMT\r\n"), &ri), 1);
	assert_int_equal(ri.retry_after_s, 0);
}

static void test_header_retry_after_date_needs_a_server_date(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("Retry-After: Mon, 15 Jan 2024 11:00:00 GMT\r\n"), &ri), -EINVAL);
	assert_false(ri.has_retry_after);
}

static void test_header_retry_after_date_too_far_ahead_is_rejected(void **state) {
	RateInfo ri = {};

	assert_int_equal(apiparse_header_line(LINE("Date: Mon, 15 Jan 2024 11:00:00 GMT\r\n"), &ri), 1);
	assert_int_equal(apiparse_header_line(LINE("Retry-After: Mon, 15 Jan 2029 11:00:00 GMT\r\n"), &ri), -EINVAL);
	assert_false(ri.has_retry_after);
}

static void test_header_block_reads_date_before_retry_after_in_any_order(void **state) {
	const char block[] =
		"Retry-After: Mon, 15 Jan 2024 11:00:00 GMT\r\n"
		"X-RateLimit-Remaining: 0\r\n"
		"X-RateLimit-Remaining: bogus\r\n"
		"Date: Mon, 15 Jan 2024 10:59:00 GMT\r\n"
		"X-RateLimit-Reset: 1705316400"; /* last line without line end */
	RateInfo ri = {};

	assert_int_equal(apiparse_header_block(block, sizeof(block) - 1, &ri), 4);
	assert_true(ri.has_date && ri.has_retry_after && ri.has_remaining && ri.has_reset);
	assert_int_equal(ri.retry_after_s, 60);
	assert_int_equal(ri.remaining, 0);
	assert_int_equal(ri.reset_epoch, 1705316400);
}

/* ---- envelope ---- */

static void test_envelope_success_with_object_data(void **state) {
	const char body[] = "{\"error\":false,\"msg\":\"API key is valid\",\"data\":{\"user_id\":\"65f1234567890abcdef12346\"}}";
	_cleanup_(json_object_putp) json_object *root = NULL;
	json_object *data = NULL, *v;
	const char *msg = NULL;
	bool error = true;

	assert_int_equal(apiparse_envelope(body, strlen(body), &root, &error, &msg, &data), 0);
	assert_non_null(root);
	assert_false(error);
	assert_string_equal(msg, "API key is valid");
	assert_true(json_object_is_type(data, json_type_object));
	assert_true(json_object_object_get_ex(data, "user_id", &v));
	assert_string_equal(json_object_get_string(v), "65f1234567890abcdef12346");
}

static void test_envelope_error_with_string_data(void **state) {
	const char body[] = "{\"error\":true,\"msg\":\"Validation failed\","
	                    "\"data\":\"timeout_seconds is required for time-sensitive requests\"}";
	_cleanup_(json_object_putp) json_object *root = NULL;
	json_object *data = NULL;
	const char *msg = NULL;
	bool error = false;

	assert_int_equal(apiparse_envelope(body, strlen(body), &root, &error, &msg, &data), 0);
	assert_true(error);
	assert_string_equal(msg, "Validation failed");
	assert_true(json_object_is_type(data, json_type_string));
	assert_string_equal(json_object_get_string(data), "timeout_seconds is required for time-sensitive requests");
}

static void test_envelope_error_with_object_data(void **state) {
	const char body[] = "{\"error\":true,\"msg\":\"API rate limit exceeded\","
	                    "\"data\":{\"usage_count\":100,\"usage_limit\":100,\"remaining\":0}}\n";
	_cleanup_(json_object_putp) json_object *root = NULL;
	json_object *data = NULL, *v;
	const char *msg = NULL;
	bool error = false;

	assert_int_equal(apiparse_envelope(body, strlen(body), &root, &error, &msg, &data), 0);
	assert_true(error);
	assert_string_equal(msg, "API rate limit exceeded");
	assert_true(json_object_object_get_ex(data, "remaining", &v));
	assert_int_equal(json_object_get_int(v), 0);
}

static void test_envelope_msg_and_data_are_optional(void **state) {
	const char body[] = " {\"error\":true} \r\n";
	const char body_nulls[] = "{\"error\":false,\"msg\":null,\"data\":null}";
	_cleanup_(json_object_putp) json_object *root = NULL, *root2 = NULL;
	json_object *data = (json_object *) 1;
	const char *msg = "x";
	bool error = false;

	assert_int_equal(apiparse_envelope(body, strlen(body), &root, &error, &msg, &data), 0);
	assert_true(error);
	assert_null(msg);
	assert_null(data);

	msg = "x";
	data = (json_object *) 1;
	assert_int_equal(apiparse_envelope(body_nulls, strlen(body_nulls), &root2, &error, &msg, &data), 0);
	assert_false(error);
	assert_null(msg);
	assert_null(data);
}

static void assert_envelope_rejected(const char *body, size_t len) {
	json_object *root = (json_object *) 1, *data = (json_object *) 1;
	const char *msg = "untouched";
	bool error = true;

	assert_int_equal(apiparse_envelope(body, len, &root, &error, &msg, &data), -EBADMSG);
	/* Out-parameters are written only on success. */
	assert_ptr_equal(root, (json_object *) 1);
	assert_string_equal(msg, "untouched");
}

static void test_envelope_not_json_is_rejected(void **state) {
	static const char *const bodies[] = {
		"", "<html><body>502 Bad Gateway</body></html>", "{", "{\"error\":false",
		"{\"error\":false} {\"error\":true}", "{\"error\":false} x", "{\"error\":false,}",
	};
	const char with_nul[] = "{\"error\":false}\0garbage";
	const char bad_utf8[] = "{\"error\":false,\"msg\":\"\xff\xfe\"}";

	assert_envelope_rejected(NULL, 0);
	assert_envelope_rejected(NULL, 10);
	for (size_t i = 0; i < ELEMENTSOF(bodies); i++)
		assert_envelope_rejected(bodies[i], strlen(bodies[i]));
	assert_envelope_rejected(with_nul, sizeof(with_nul) - 1);
	assert_envelope_rejected(bad_utf8, strlen(bad_utf8));
}

static void test_envelope_not_an_object_is_rejected(void **state) {
	static const char *const bodies[] = { "[]", "[{\"error\":false}]", "\"error\"", "42", "null", "true" };

	for (size_t i = 0; i < ELEMENTSOF(bodies); i++)
		assert_envelope_rejected(bodies[i], strlen(bodies[i]));
}

static void test_envelope_missing_or_mistyped_fields_are_rejected(void **state) {
	static const char *const bodies[] = {
		"{}",
		"{\"msg\":\"Requests retrieved successfully\",\"data\":{}}",
		"{\"error\":\"false\",\"msg\":\"x\"}",
		"{\"error\":0}",
		"{\"error\":null}",
		"{\"error\":false,\"msg\":5}",
		"{\"error\":false,\"msg\":{\"text\":\"x\"}}",
	};

	for (size_t i = 0; i < ELEMENTSOF(bodies); i++)
		assert_envelope_rejected(bodies[i], strlen(bodies[i]));
}

static void test_envelope_nesting_beyond_the_depth_limit_is_rejected(void **state) {
	char body[512];
	size_t n = 0;

	n += (size_t) snprintf(body, sizeof(body), "{\"error\":false,\"data\":");
	for (int i = 0; i < 100; i++)
		body[n++] = '[';
	for (int i = 0; i < 100; i++)
		body[n++] = ']';
	body[n++] = '}';
	body[n] = '\0';
	assert_envelope_rejected(body, n);
}

/* ---- request objects ---- */

static void test_remote_request_plain_encoding_from_list_item(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"loop_id\":\"65f1234567890abcdef12345\","
		"\"status\":\"completed\",\"response_data\":\"Approve\","
		"\"response_by\":\"65f1234567890abcdef12350\",\"response_at\":\"2024-03-15T10:45:00Z\","
		"\"response_time_seconds\":900.5,\"timeout_at\":\"2024-03-15T11:30:00Z\"}");
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_string_equal(rr.id, "65f1234567890abcdef12348");
	assert_string_equal(rr.status, "completed");
	assert_true(json_object_is_type(rr.response_data, json_type_string));
	assert_string_equal(json_object_get_string(rr.response_data), "Approve");
	assert_string_equal(rr.response_by, "65f1234567890abcdef12350");
	assert_string_equal(rr.response_at, "2024-03-15T10:45:00Z");
	assert_true(rr.has_response_time);
	assert_true(rr.response_time_seconds > 900.49 && rr.response_time_seconds < 900.51);
	assert_string_equal(rr.timeout_at, "2024-03-15T11:30:00Z");
	assert_null(rr.context);
}

static void test_remote_request_structured_encoding_keeps_the_object(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"status\":\"completed\","
		"\"response_data\":{\"selected_value\":\"approve\",\"selected_label\":\"Approve\"},"
		"\"response_time_seconds\":12,\"context\":{\"hitld_id\":\"r_01\"}}");
	json_object *v;
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_true(json_object_is_type(rr.response_data, json_type_object));
	assert_true(json_object_object_get_ex(rr.response_data, "selected_value", &v));
	assert_string_equal(json_object_get_string(v), "approve");
	assert_true(rr.has_response_time);
	assert_true(rr.response_time_seconds == 12.0);
	assert_non_null(rr.context);
	assert_true(json_object_object_get_ex(rr.context, "hitld_id", &v));
	assert_string_equal(json_object_get_string(v), "r_01");
}

static void test_remote_request_from_create_data_uses_request_id(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"request_id\":\"65f1234567890abcdef12348\",\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaa\","
		"\"status\":\"pending\",\"timeout_at\":\"2024-03-15T11:30:00Z\",\"broadcasted_to\":4,"
		"\"polling_url\":\"/v1/api/requests/65f1234567890abcdef12348\"}");
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_string_equal(rr.id, "65f1234567890abcdef12348");
	assert_string_equal(rr.status, "pending");
	assert_null(rr.response_data);
	assert_null(rr.response_by);
	assert_false(rr.has_response_time);
}

static void test_remote_request_falls_back_to_id(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"id\":\"65F1234567890ABCDEF12348\",\"status\":\"pending\"}");
	_cleanup_(json_object_putp) json_object *null_rid = json(
		"{\"request_id\":null,\"id\":\"65f1234567890abcdef12348\",\"status\":\"claimed\"}");
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_string_equal(rr.id, "65F1234567890ABCDEF12348");
	assert_int_equal(apiparse_remote_request(null_rid, &rr), 0);
	assert_string_equal(rr.id, "65f1234567890abcdef12348");
	assert_string_equal(rr.status, "claimed");
}

static void test_remote_request_bad_request_id_is_not_papered_over_by_id(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"request_id\":\"nope\",\"id\":\"65f1234567890abcdef12348\",\"status\":\"pending\"}");
	RemoteRequest rr = {};

	assert_int_equal(apiparse_remote_request(o, &rr), -EBADMSG);
	assert_string_equal(rr.id, "");
}

static void test_remote_request_response_by_object_gives_user_id(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"status\":\"completed\",\"response_data\":4,"
		"\"response_by\":{\"user_id\":\"65f1234567890abcdef12350\",\"name\":\"Ann\",\"email\":\"a@x\"}}");
	_cleanup_(json_object_putp) json_object *odd = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"status\":\"completed\",\"response_by\":17,"
		"\"response_at\":5,\"response_time_seconds\":-3,\"context\":\"text\"}");
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_string_equal(rr.response_by, "65f1234567890abcdef12350");
	assert_int_equal(json_object_get_int(rr.response_data), 4);

	/* Optional fields of the wrong type read as absent. */
	assert_int_equal(apiparse_remote_request(odd, &rr), 0);
	assert_null(rr.response_by);
	assert_null(rr.response_at);
	assert_false(rr.has_response_time);
	assert_null(rr.context);
}

static void test_remote_request_json_nulls_read_as_null(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"status\":\"timeout\",\"response_data\":null,"
		"\"response_by\":null,\"response_at\":null,\"response_time_seconds\":null,\"context\":null}");
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_string_equal(rr.status, "timeout");
	assert_null(rr.response_data);
	assert_null(rr.response_by);
	assert_null(rr.response_at);
	assert_false(rr.has_response_time);
	assert_null(rr.context);
}

static void test_remote_request_bad_id_is_rejected(void **state) {
	static const char *const objs[] = {
		"{\"status\":\"pending\"}",
		"{\"id\":\"65f1234567890abcdef1234\",\"status\":\"pending\"}",
		"{\"id\":\"65f1234567890abcdef123456\",\"status\":\"pending\"}",
		"{\"id\":\"65f1234567890abcdef1234g\",\"status\":\"pending\"}",
		"{\"id\":65,\"status\":\"pending\"}",
		"[\"65f1234567890abcdef12348\"]",
	};
	RemoteRequest rr;

	for (size_t i = 0; i < ELEMENTSOF(objs); i++) {
		_cleanup_(json_object_putp) json_object *o = json(objs[i]);
		assert_int_equal(apiparse_remote_request(o, &rr), -EBADMSG);
	}
	assert_int_equal(apiparse_remote_request(NULL, &rr), -EBADMSG);
}

/* docs/HITL-API.md "Request status": every word the service or its vendor
 * material has shown, and what it means here. */
static void test_remote_request_status_words(void **state) {
	static const struct {
		const char *status_json, *response_data, *status, *raw;
		bool unknown;
	} cases[] = {
		{ "\"pending\"", "null", "pending", "pending", false },
		{ "\"claimed\"", "null", "claimed", "claimed", false },
		{ "\"completed\"", "\"approve\"", "completed", "completed", false },
		{ "\"timeout\"", "null", "timeout", "timeout", false },
		{ "\"cancelled\"", "null", "cancelled", "cancelled", false },
		{ "\"timed_out\"", "null", "timeout", "timed_out", false },
		{ "\"answered\"", "{\"selected_value\":\"approve\"}", "completed", "answered", false },
		{ "\"resolved\"", "\"approve\"", "completed", "resolved", false },
		{ "\"canceled\"", "null", "cancelled", "canceled", false },
		{ "\"failed\"", "null", "failed", "failed", false },
		/* An answer finishes a request whose status is not final... */
		{ "\"pending\"", "\"approve\"", "completed", "pending", false },
		{ "\"in_review\"", "\"approve\"", "completed", "in_review", true },
		/* ...but never overrides a final word. */
		{ "\"timeout\"", "\"approve\"", "timeout", "timeout", false },
		{ "\"failed\"", "\"approve\"", "failed", "failed", false },
		/* Unknown, missing, odd: kept, pending, and flagged. */
		{ "\"in_review\"", "null", "pending", "in_review", true },
		{ "\"Pending\"", "null", "pending", "Pending", true },
		{ "\"done\\u0007\"", "null", "pending", "done?", true },
		{ "1", "null", "pending", "(int)", true },
		{ "\"\"", "null", "pending", "(empty)", true },
		{ NULL, "null", "pending", "(none)", true },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char text[256];
		RemoteRequest rr;

		if (cases[i].status_json)
			snprintf(text, sizeof text, "{\"id\":\"65f1234567890abcdef12348\",\"status\":%s,\"response_data\":%s}",
			         cases[i].status_json, cases[i].response_data);
		else
			snprintf(text, sizeof text, "{\"id\":\"65f1234567890abcdef12348\",\"response_data\":%s}",
			         cases[i].response_data);
		_cleanup_(json_object_putp) json_object *o = json(text);
		assert_int_equal(apiparse_remote_request(o, &rr), 0);
		if (!streq(rr.status, cases[i].status) || !streq(rr.raw_status, cases[i].raw) ||
		    rr.status_unknown != cases[i].unknown)
			fail_msg("%s: got %s/%s/%d, want %s/%s/%d", text, rr.status, rr.raw_status, rr.status_unknown,
			         cases[i].status, cases[i].raw, cases[i].unknown);
	}
}

static void test_remote_request_long_unknown_word_is_cut(void **state) {
	_cleanup_(json_object_putp) json_object *o = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"status\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
	RemoteRequest rr;

	assert_int_equal(apiparse_remote_request(o, &rr), 0);
	assert_int_equal(strlen(rr.raw_status), APIPARSE_STATUS_WORD_MAX - 1);
	assert_true(rr.status_unknown);
}

static void test_unknown_status_is_reported_once_per_word(void **state) {
	assert_true(apiparse_unknown_status_first_seen("under_review"));
	assert_false(apiparse_unknown_status_first_seen("under_review"));
	assert_true(apiparse_unknown_status_first_seen("escalated"));
	assert_false(apiparse_unknown_status_first_seen("under_review"));
}

static void test_status_is_final(void **state) {
	assert_true(apiparse_status_is_final("completed"));
	assert_true(apiparse_status_is_final("timeout"));
	assert_true(apiparse_status_is_final("cancelled"));
	assert_true(apiparse_status_is_final("failed"));
	assert_false(apiparse_status_is_final("pending"));
	assert_false(apiparse_status_is_final("claimed"));
	assert_false(apiparse_status_is_final(NULL));
	assert_null(apiparse_status_from_word("expired"));
	assert_string_equal(apiparse_status_from_word("timed_out"), "timeout");
}

static void test_get_request_unwraps_data_request(void **state) {
	_cleanup_(json_object_putp) json_object *data = json(
		"{\"request\":{\"id\":\"65f1234567890abcdef12348\",\"status\":\"cancelled\"}}");
	RemoteRequest rr;

	assert_int_equal(apiparse_get_request(data, &rr), 0);
	assert_string_equal(rr.status, "cancelled");
}

static void test_get_request_reads_a_flat_data_request(void **state) {
	_cleanup_(json_object_putp) json_object *bare = json(
		"{\"id\":\"65f1234567890abcdef12348\",\"status\":\"timed_out\",\"response_data\":null}");
	RemoteRequest rr;

	assert_int_equal(apiparse_get_request(bare, &rr), 0);
	assert_string_equal(rr.id, "65f1234567890abcdef12348");
	assert_string_equal(rr.status, "timeout");
}

static void test_get_request_reads_status_beside_the_request(void **state) {
	_cleanup_(json_object_putp) json_object *data = json(
		"{\"status\":\"answered\",\"response_data\":{\"selected_value\":\"approve\"},"
		"\"request\":{\"id\":\"65f1234567890abcdef12348\"}}");
	_cleanup_(json_object_putp) json_object *inner_wins = json(
		"{\"status\":\"pending\",\"request\":{\"id\":\"65f1234567890abcdef12348\",\"status\":\"cancelled\"}}");
	RemoteRequest rr;

	assert_int_equal(apiparse_get_request(data, &rr), 0);
	assert_string_equal(rr.status, "completed");
	assert_string_equal(rr.raw_status, "answered");
	assert_string_equal(json_object_get_string(json_object_object_get(rr.response_data, "selected_value")), "approve");
	assert_int_equal(apiparse_get_request(inner_wins, &rr), 0);
	assert_string_equal(rr.status, "cancelled");
}

static void test_get_request_without_an_id_is_rejected(void **state) {
	_cleanup_(json_object_putp) json_object *data = json("{\"status\":\"completed\",\"request\":{}}");
	_cleanup_(json_object_putp) json_object *flat = json("{\"status\":\"completed\"}");
	RemoteRequest rr;

	assert_int_equal(apiparse_get_request(data, &rr), -EBADMSG);
	assert_int_equal(apiparse_get_request(flat, &rr), -EBADMSG);
	assert_int_equal(apiparse_get_request(NULL, &rr), -EBADMSG);
}

/* ---- lists ---- */

static void test_list_reads_pagination_fields(void **state) {
	_cleanup_(json_object_putp) json_object *data = json(
		"{\"requests\":[{\"id\":\"65f1234567890abcdef12348\",\"status\":\"completed\"}],"
		"\"count\":1,\"total\":15,\"has_more\":true,"
		"\"pagination\":{\"limit\":50,\"offset\":0,\"next_offset\":50}}");
	json_object *requests = NULL;
	unsigned total = 0, next = 0;
	bool more = false;
	RemoteRequest rr;

	assert_int_equal(apiparse_list(data, &requests, &total, &more, &next), 0);
	assert_int_equal(json_object_array_length(requests), 1);
	assert_int_equal(total, 15);
	assert_true(more);
	assert_int_equal(next, 50);
	assert_int_equal(apiparse_remote_request(json_object_array_get_idx(requests, 0), &rr), 0);
	assert_string_equal(rr.id, "65f1234567890abcdef12348");
}

static void test_list_last_page_has_no_next_offset(void **state) {
	_cleanup_(json_object_putp) json_object *data = json(
		"{\"requests\":[],\"count\":0,\"total\":50,\"has_more\":false,"
		"\"pagination\":{\"limit\":50,\"offset\":50,\"next_offset\":null}}");
	json_object *requests = NULL;
	unsigned total = 0, next = 99;
	bool more = true;

	assert_int_equal(apiparse_list(data, &requests, &total, &more, &next), 0);
	assert_int_equal(json_object_array_length(requests), 0);
	assert_int_equal(total, 50);
	assert_false(more);
	assert_int_equal(next, 0);
}

static void test_list_openapi_variant_without_total_uses_count(void **state) {
	_cleanup_(json_object_putp) json_object *data = json(
		"{\"requests\":[{\"id\":\"65f1234567890abcdef12348\",\"status\":\"pending\"},"
		"{\"id\":\"65f1234567890abcdef12349\",\"status\":\"pending\"}],\"count\":2}");
	_cleanup_(json_object_putp) json_object *bare = json(
		"{\"requests\":[{\"id\":\"65f1234567890abcdef12348\",\"status\":\"pending\"}]}");
	json_object *requests = NULL;
	unsigned total = 0, next = 99;
	bool more = true;

	assert_int_equal(apiparse_list(data, &requests, &total, &more, &next), 0);
	assert_int_equal(total, 2);
	assert_false(more);
	assert_int_equal(next, 0);

	assert_int_equal(apiparse_list(bare, &requests, &total, &more, &next), 0);
	assert_int_equal(total, 1);
	assert_false(more);
}

static void test_list_derives_has_more_and_next_offset_when_absent(void **state) {
	_cleanup_(json_object_putp) json_object *data = json(
		"{\"requests\":[{\"id\":\"65f1234567890abcdef12348\",\"status\":\"pending\"},"
		"{\"id\":\"65f1234567890abcdef12349\",\"status\":\"pending\"}],"
		"\"total\":7,\"pagination\":{\"offset\":4}}");
	json_object *requests = NULL;
	unsigned total = 0, next = 0;
	bool more = false;

	assert_int_equal(apiparse_list(data, &requests, &total, &more, &next), 0);
	assert_int_equal(total, 7);
	assert_true(more);
	assert_int_equal(next, 6);
}

static void test_list_refuses_a_next_offset_that_does_not_advance(void **state) {
	_cleanup_(json_object_putp) json_object *stuck = json(
		"{\"requests\":[],\"total\":100,\"has_more\":true,"
		"\"pagination\":{\"limit\":50,\"offset\":50,\"next_offset\":50}}");
	_cleanup_(json_object_putp) json_object *empty_more = json(
		"{\"requests\":[],\"has_more\":true}");
	json_object *requests = (json_object *) 1;
	unsigned total = 0, next = 0;
	bool more = false;

	assert_int_equal(apiparse_list(stuck, &requests, &total, &more, &next), -EBADMSG);
	assert_int_equal(apiparse_list(empty_more, &requests, &total, &more, &next), -EBADMSG);
	assert_ptr_equal(requests, (json_object *) 1);
}

static void test_list_rejects_bad_shapes(void **state) {
	static const char *const bad[] = {
		"{}",
		"{\"requests\":{}}",
		"{\"requests\":null}",
		"{\"requests\":[],\"total\":-1}",
		"{\"requests\":[],\"total\":\"15\"}",
		"{\"requests\":[],\"total\":1.5}",
		"{\"requests\":[],\"total\":99999999999}",
		"{\"requests\":[],\"has_more\":\"yes\"}",
		"{\"requests\":[],\"pagination\":[]}",
		"{\"requests\":[],\"total\":5,\"has_more\":true,\"pagination\":{\"next_offset\":-5}}",
		"[]",
	};
	json_object *requests;
	unsigned total, next;
	bool more;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_(json_object_putp) json_object *o = json(bad[i]);
		assert_int_equal(apiparse_list(o, &requests, &total, &more, &next), -EBADMSG);
	}
	assert_int_equal(apiparse_list(NULL, &requests, &total, &more, &next), -EBADMSG);
}

static void test_id_validity(void **state) {
	assert_true(apiparse_id_is_valid("65f1234567890abcdef12345"));
	assert_true(apiparse_id_is_valid("65F1234567890ABCDEF12345"));
	assert_false(apiparse_id_is_valid("65f1234567890abcdef1234"));
	assert_false(apiparse_id_is_valid("65f1234567890abcdef12345/"));
	assert_false(apiparse_id_is_valid("../1234567890abcdef12345"));
	assert_false(apiparse_id_is_valid(""));
	assert_false(apiparse_id_is_valid(NULL));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_rate_limit_triple_is_parsed),
		cmocka_unit_test(test_header_names_are_case_insensitive),
		cmocka_unit_test(test_header_line_need_not_be_terminated),
		cmocka_unit_test(test_header_other_lines_are_not_recognised),
		cmocka_unit_test(test_header_malformed_values_are_rejected_and_change_nothing),
		cmocka_unit_test(test_header_value_with_nul_byte_is_rejected),
		cmocka_unit_test(test_header_huge_numbers_are_rejected),
		cmocka_unit_test(test_header_date_reads_all_three_http_forms),
		cmocka_unit_test(test_header_retry_after_seconds),
		cmocka_unit_test(test_header_retry_after_date_is_relative_to_server_date),
		cmocka_unit_test(test_header_retry_after_date_in_the_past_means_now),
		cmocka_unit_test(test_header_retry_after_date_needs_a_server_date),
		cmocka_unit_test(test_header_retry_after_date_too_far_ahead_is_rejected),
		cmocka_unit_test(test_header_block_reads_date_before_retry_after_in_any_order),
		cmocka_unit_test(test_envelope_success_with_object_data),
		cmocka_unit_test(test_envelope_error_with_string_data),
		cmocka_unit_test(test_envelope_error_with_object_data),
		cmocka_unit_test(test_envelope_msg_and_data_are_optional),
		cmocka_unit_test(test_envelope_not_json_is_rejected),
		cmocka_unit_test(test_envelope_not_an_object_is_rejected),
		cmocka_unit_test(test_envelope_missing_or_mistyped_fields_are_rejected),
		cmocka_unit_test(test_envelope_nesting_beyond_the_depth_limit_is_rejected),
		cmocka_unit_test(test_remote_request_plain_encoding_from_list_item),
		cmocka_unit_test(test_remote_request_structured_encoding_keeps_the_object),
		cmocka_unit_test(test_remote_request_from_create_data_uses_request_id),
		cmocka_unit_test(test_remote_request_falls_back_to_id),
		cmocka_unit_test(test_remote_request_bad_request_id_is_not_papered_over_by_id),
		cmocka_unit_test(test_remote_request_response_by_object_gives_user_id),
		cmocka_unit_test(test_remote_request_json_nulls_read_as_null),
		cmocka_unit_test(test_remote_request_bad_id_is_rejected),
		cmocka_unit_test(test_remote_request_status_words),
		cmocka_unit_test(test_remote_request_long_unknown_word_is_cut),
		cmocka_unit_test(test_unknown_status_is_reported_once_per_word),
		cmocka_unit_test(test_status_is_final),
		cmocka_unit_test(test_get_request_unwraps_data_request),
		cmocka_unit_test(test_get_request_reads_a_flat_data_request),
		cmocka_unit_test(test_get_request_reads_status_beside_the_request),
		cmocka_unit_test(test_get_request_without_an_id_is_rejected),
		cmocka_unit_test(test_list_reads_pagination_fields),
		cmocka_unit_test(test_list_last_page_has_no_next_offset),
		cmocka_unit_test(test_list_openapi_variant_without_total_uses_count),
		cmocka_unit_test(test_list_derives_has_more_and_next_offset_when_absent),
		cmocka_unit_test(test_list_refuses_a_next_offset_that_does_not_advance),
		cmocka_unit_test(test_list_rejects_bad_shapes),
		cmocka_unit_test(test_id_validity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
