/* HITL.sh's callbacks (issue 17): the capability in a callback URL, its
 * token, and the reading of a callback body (daemon/callback.h); the
 * webhook's listen address (daemon/webhook.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "callback.h"
#include "cleanup.h"
#include "webhook.h"

#define ID "r_01JDZ5X7Q6Y0W8H1K3M5N7P9RS"
#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define REMOTE "65f1234567890abcdef12348"
#define BODY(s) (s), strlen(s)

static void test_token_new_is_valid_and_differs(void **state) {
	char a[CALLBACK_TOKEN_HEX + 1], b[CALLBACK_TOKEN_HEX + 1];

	assert_int_equal(callback_token_new(a), 0);
	assert_int_equal(callback_token_new(b), 0);
	assert_true(callback_token_is_valid(a));
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
}

static void test_token_validity_and_equality(void **state) {
	assert_true(callback_token_is_valid(TOKEN));
	assert_false(callback_token_is_valid(NULL));
	assert_false(callback_token_is_valid(""));
	assert_false(callback_token_is_valid(TOKEN "0"));
	assert_false(callback_token_is_valid("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	assert_true(callback_token_equal(TOKEN, TOKEN));
	assert_false(callback_token_equal(TOKEN, "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	assert_false(callback_token_equal(TOKEN, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee"));
	assert_false(callback_token_equal(TOKEN, NULL));
	assert_false(callback_token_equal(NULL, NULL));
	assert_false(callback_token_equal("", ""));
}

static void test_url_format_and_capability_parse(void **state) {
	_cleanup_(freep) char *url = NULL, *url2 = NULL;
	char id[RECORD_ID_MAX], token[CALLBACK_TOKEN_HEX + 1];

	assert_int_equal(callback_url_format("https://example.com/hitl", ID, TOKEN, &url), 0);
	assert_string_equal(url, "https://example.com/hitl/" ID "." TOKEN);
	assert_int_equal(callback_url_format("https://example.com/hitl/", ID, TOKEN, &url2), 0);
	assert_string_equal(url2, "https://example.com/hitl/" ID "." TOKEN);
	assert_int_equal(callback_url_format("https://example.com", "r_bad", TOKEN, &url2), -EINVAL);
	assert_int_equal(callback_url_format("https://example.com", ID, "abc", &url2), -EINVAL);

	/* Any prefix the proxy forwards: the last segment counts. */
	assert_int_equal(callback_capability_parse("/hitl/" ID "." TOKEN, id, token), 0);
	assert_string_equal(id, ID);
	assert_string_equal(token, TOKEN);
	assert_int_equal(callback_capability_parse("/" ID "." TOKEN, id, token), 0);
	assert_int_equal(callback_capability_parse(ID "." TOKEN, id, token), 0);

	const char *bad[] = {
		"/", "", "/hitl", "/hitl/" ID, "/hitl/" TOKEN, "/hitl/" ID "." TOKEN "/",
		"/hitl/" ID "." TOKEN "0", "/hitl/" ID ".." TOKEN, "/hitl/r_x." TOKEN,
		"/hitl/" ID "." TOKEN "?a=b", "/hitl/." TOKEN,
		"/hitl/r_01JDZ5X7Q6Y0W8H1K3M5N7P9RSXXXXXXXXXXXXXXXXXXXXXXXX." TOKEN,
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		assert_int_equal(callback_capability_parse(bad[i], id, token), -ENOENT);
	assert_int_equal(callback_capability_parse(NULL, id, token), -ENOENT);
}

static void test_parse_documented_body(void **state) {
	_cleanup_(json_object_putp) json_object *root = NULL;
	RemoteRequest rr;
	const char *b = "{\"event\":\"request.completed\",\"request_id\":\"" REMOTE "\","
	                "\"loop_id\":\"65f1234567890abcdef12345\",\"status\":\"completed\","
	                "\"response_data\":{\"selected_value\":\"Approve\"},"
	                "\"response_by\":{\"user_id\":\"65f1234567890abcdef12346\",\"name\":\"John\"},"
	                "\"response_at\":\"2024-03-15T10:45:00Z\",\"response_time_seconds\":245.5,"
	                "\"created_at\":\"2024-03-15T10:41:00Z\",\"something_new\":[1,2,3]}";

	assert_int_equal(callback_parse(BODY(b), &root, &rr), 0);
	assert_string_equal(rr.id, REMOTE);
	assert_string_equal(rr.status, "completed");
	assert_string_equal(rr.response_by, "65f1234567890abcdef12346");
	assert_string_equal(rr.response_at, "2024-03-15T10:45:00Z");
	assert_true(rr.has_response_time);
	assert_non_null(rr.response_data);
}

static void test_parse_timeout_cancel_and_event_only(void **state) {
	const char *ok[][2] = {
		{ "{\"event\":\"request.timeout\",\"request_id\":\"" REMOTE "\",\"status\":\"timeout\","
		  "\"response_data\":null,\"response_by\":null}", "timeout" },
		{ "{\"event\":\"request.cancelled\",\"request_id\":\"" REMOTE "\",\"status\":\"cancelled\"}", "cancelled" },
		/* No status: the event names it. */
		{ "{\"event\":\"request.timeout\",\"request_id\":\"" REMOTE "\"}", "timeout" },
		/* An unknown word: the event names it. */
		{ "{\"event\":\"request.cancelled\",\"request_id\":\"" REMOTE "\",\"status\":\"gone\"}", "cancelled" },
		/* Words a tolerant reader maps. */
		{ "{\"request_id\":\"" REMOTE "\",\"status\":\"timed_out\"}", "timeout" },
		/* The older account-webhook envelope. */
		{ "{\"event\":\"request.completed\",\"timestamp\":\"x\",\"data\":{\"request\":{\"id\":\"" REMOTE "\","
		  "\"status\":\"completed\",\"response_data\":\"yes\"}}}", "completed" },
	};
	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		_cleanup_(json_object_putp) json_object *root = NULL;
		RemoteRequest rr;

		assert_int_equal(callback_parse(BODY(ok[i][0]), &root, &rr), 0);
		assert_string_equal(rr.status, ok[i][1]);
		assert_string_equal(rr.id, REMOTE);
	}
}

static void test_parse_refuses_what_is_not_a_final_callback(void **state) {
	const char *bad[] = {
		"", "garbage", "[]", "null", "\"x\"", "{}",
		"{\"request_id\":\"" REMOTE "\",\"status\":\"pending\"}",
		"{\"request_id\":\"" REMOTE "\",\"status\":\"claimed\"}",
		"{\"event\":\"request.claimed\",\"request_id\":\"" REMOTE "\"}",
		"{\"request_id\":\"" REMOTE "\"}",
		"{\"request_id\":\"xyz\",\"status\":\"completed\"}",
		"{\"request_id\":42,\"status\":\"completed\"}",
		"{\"request_id\":\"" REMOTE "\",\"status\":\"completed\"} {}",
		"{\"request_id\":\"" REMOTE "\",\"status\":\"completed\"",
		"{\"request_id\":\"" REMOTE "\",\"status\":\"completed\",}",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_(json_object_putp) json_object *root = NULL;
		RemoteRequest rr;

		if (callback_parse(BODY(bad[i]), &root, &rr) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
		assert_null(root);
	}
}

static void test_parse_bounds(void **state) {
	_cleanup_(freep) char *big = NULL, *deep = NULL;
	_cleanup_(json_object_putp) json_object *root = NULL;
	RemoteRequest rr;
	const char head[] = "{\"request_id\":\"" REMOTE "\",\"status\":\"completed\",\"pad\":\"";
	size_t n = CALLBACK_BODY_MAX + 1;

	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'a', n);
	memcpy(big, head, strlen(head));
	memcpy(big + n - 2, "\"}", 2);
	big[n] = '\0';
	assert_int_equal(callback_parse(big, n, &root, &rr), -EBADMSG);
	/* One byte less fits. */
	memcpy(big + n - 3, "\"}", 2);
	assert_int_equal(callback_parse(big, n - 1, &root, &rr), 0);
	json_object_put(root);
	root = NULL;

	/* A NUL inside. */
	assert_int_equal(callback_parse("{\"a\":1}\0", 8, &root, &rr), -EBADMSG);
	/* Nesting past the depth limit. */
	deep = malloc(200);
	assert_non_null(deep);
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_int_equal(callback_parse(deep, 200, &root, &rr), -EBADMSG);
}

static void test_listen_addresses(void **state) {
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(webhook_parse_listen("127.0.0.1:8089", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 8089);
	assert_int_equal(webhook_parse_listen("[::1]:65535", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(webhook_parse_listen("0.0.0.0:1", NULL, NULL), 0);

	const char *bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:08089",
		"localhost:8089", "::1:8089", "[::1]8089", "[::1]", "[127.0.0.1]:80", "127.0.0.1:80x",
		"127.0.0.1:-1", ":8089", "[]:80", "1.2.3.4.5:80",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (webhook_parse_listen(bad[i], NULL, NULL) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_new_is_valid_and_differs),
		cmocka_unit_test(test_token_validity_and_equality),
		cmocka_unit_test(test_url_format_and_capability_parse),
		cmocka_unit_test(test_parse_documented_body),
		cmocka_unit_test(test_parse_timeout_cancel_and_event_only),
		cmocka_unit_test(test_parse_refuses_what_is_not_a_final_callback),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_listen_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
