/* test_mcp_tools.c — the pure half of `hitlctl mcp`: protocol revision negotiation, the tool
 * list per revision, the mapping of an agent's arguments to hitld's params, and hitld's
 * answers and errors as MCP tool results. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "mcp_tools.h"

static const McpToolOptions no_loop = { NULL };
static const McpToolOptions with_loop = { "65f1234567890abcdef12345" };

static json_object *parse(const char *text) {
	json_object *j = json_tokener_parse(text);

	assert_non_null(j);
	return j;
}

static const char *str(json_object *o, const char *key) {
	json_object *v = json_object_object_get(o, key);

	return v ? json_object_get_string(v) : NULL;
}

static void test_negotiation_answers_the_clients_revision_or_the_newest(void **state) {
	assert_string_equal(mcp_protocol_negotiate("2024-11-05"), "2024-11-05");
	assert_string_equal(mcp_protocol_negotiate("2025-03-26"), "2025-03-26");
	assert_string_equal(mcp_protocol_negotiate("2025-06-18"), "2025-06-18");
	assert_string_equal(mcp_protocol_negotiate("2025-11-25"), "2025-11-25");
	assert_string_equal(mcp_protocol_negotiate("2024-10-07"), "2025-11-25");
	assert_string_equal(mcp_protocol_negotiate("2030-01-01"), "2025-11-25");
	assert_string_equal(mcp_protocol_negotiate(""), "2025-11-25");
	assert_string_equal(mcp_protocol_negotiate(NULL), "2025-11-25");
	assert_false(mcp_protocol_has_structured("2025-03-26"));
	assert_true(mcp_protocol_has_structured("2025-06-18"));
	assert_false(mcp_protocol_has_messages("2024-11-05"));
	assert_true(mcp_protocol_has_messages("2025-03-26"));
}

static void test_tool_list_follows_the_revision_and_the_loop_option(void **state) {
	static const char *const versions[] = { "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25" };

	for (size_t v = 0; v < ELEMENTSOF(versions); v++)
		for (int loop = 0; loop < 2; loop++) {
			_cleanup_(json_object_putp) json_object *list = NULL;
			json_object *tools;

			assert_int_equal(mcp_tools_list(loop ? &with_loop : &no_loop, versions[v], &list), 0);
			tools = json_object_object_get(list, "tools");
			assert_int_equal(json_object_array_length(tools), 9);
			for (size_t i = 0; i < json_object_array_length(tools); i++) {
				json_object *t = json_object_array_get_idx(tools, i), *in = json_object_object_get(t, "inputSchema");
				bool structured = mcp_protocol_has_structured(versions[v]);

				assert_non_null(mcp_tool_find(str(t, "name")));
				assert_string_equal(str(in, "type"), "object");
				assert_int_equal(json_object_object_get_ex(t, "outputSchema", NULL), structured);
				assert_int_equal(json_object_object_get_ex(t, "title", NULL), structured);
				assert_int_equal(json_object_object_get_ex(t, "annotations", NULL),
				                 mcp_protocol_has_messages(versions[v]));
				if (streq(str(t, "name"), "ask_human")) {
					const char *req = json_object_to_json_string(json_object_object_get(in, "required"));

					assert_int_equal(strstr(req, "loop_id") != NULL, !loop);
				}
			}
		}
}

static void test_ask_human_arguments_become_a_submit_with_defaults(void **state) {
	_cleanup_(json_object_putp) json_object *args =
		parse("{\"request_text\":\"Deploy?\",\"options\":[\"approve\",\"reject\"],\"default_response\":\"reject\","
		      "\"timeout_seconds\":900}");
	_cleanup_(freep) char *problem = NULL;
	McpPrepared p = {};
	json_object *cfg;

	assert_int_equal(mcp_tool_prepare(mcp_tool_find("ask_human"), &with_loop, args, &p, &problem), 0);
	assert_string_equal(str(p.params, "loop_id"), with_loop.default_loop_id);
	assert_string_equal(str(p.params, "response_type"), "single_select");
	assert_string_equal(str(p.params, "processing_type"), "time-sensitive");
	assert_false(json_object_object_get_ex(p.params, "options", NULL));
	cfg = json_object_object_get(p.params, "response_config");
	assert_int_equal(json_object_array_length(json_object_object_get(cfg, "options")), 2);
	/* A client_ref of its own: a submit retried after a lost reply stays one request. */
	assert_non_null(str(p.params, "client_ref"));
	assert_int_equal(strncmp(str(p.params, "client_ref"), MCP_CLIENT_REF_PREFIX, 4), 0);
	assert_int_equal(strlen(str(p.params, "client_ref")), 4 + 32);
	mcp_prepared_clear(&p);

	/* submit_request: the agent's own client_ref only; text without options. */
	json_object_object_del(args, "options");
	json_object_object_del(args, "timeout_seconds");
	json_object_object_add(args, "loop_id", json_object_new_string("aaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_int_equal(mcp_tool_prepare(mcp_tool_find("submit_request"), &with_loop, args, &p, &problem), 0);
	assert_string_equal(str(p.params, "loop_id"), "aaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(str(p.params, "response_type"), "text");
	assert_false(json_object_object_get_ex(p.params, "client_ref", NULL));
	assert_false(json_object_object_get_ex(p.params, "processing_type", NULL));
	mcp_prepared_clear(&p);
}

static void test_wrong_arguments_are_a_sentence_for_the_model(void **state) {
	static const struct {
		const char *tool, *args, *needle;
	} cases[] = {
		{ "ask_human", "{\"request_text\":\"x\",\"default_response\":\"a\",\"bogus\":1}", "'bogus'" },
		{ "ask_human", "{\"request_text\":\"x\"}", "'default_response'" },
		{ "ask_human", "{\"request_text\":\"x\",\"default_response\":\"a\",\"options\":[\"a\"],"
		               "\"response_config\":{\"options\":[\"a\"]}}", "once" },
		{ "get_request", "{}", "exactly one" },
		{ "get_request", "{\"id\":\"r_1\",\"client_ref\":\"x\"}", "exactly one" },
		{ "get_request", "{\"id\":5}", "string" },
		{ "wait_request", "{\"id\":\"r_1\",\"timeout_seconds\":4000}", "0 to 3600" },
		{ "cancel_request", "{}", "'id'" },
		{ "hitl_status", "{\"x\":1}", "no arguments" },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_(json_object_putp) json_object *args = parse(cases[i].args);
		_cleanup_(freep) char *problem = NULL;
		McpPrepared p = {};

		assert_int_equal(mcp_tool_prepare(mcp_tool_find(cases[i].tool), &with_loop, args, &p, &problem), -EINVAL);
		assert_non_null(strstr(problem, cases[i].needle));
	}
	/* Without --loop, loop_id is required. */
	{
		_cleanup_(json_object_putp) json_object *args = parse("{\"request_text\":\"x\",\"default_response\":\"a\"}");
		_cleanup_(freep) char *problem = NULL;
		McpPrepared p = {};

		assert_int_equal(mcp_tool_prepare(mcp_tool_find("ask_human"), &no_loop, args, &p, &problem), -EINVAL);
		assert_non_null(strstr(problem, "'loop_id'"));
	}
}

static void test_list_requests_defaults_to_a_small_page_and_wait_to_ten_minutes(void **state) {
	_cleanup_(json_object_putp) json_object *args = parse("{\"state\":[\"queued\"]}"),
	                                          *wait = parse("{\"id\":\"r_1\"}");
	_cleanup_(freep) char *problem = NULL;
	McpPrepared p = {};

	assert_int_equal(mcp_tool_prepare(mcp_tool_find("list_requests"), &no_loop, args, &p, &problem), 0);
	assert_string_equal(p.method, "request.list");
	assert_int_equal(json_object_get_int(json_object_object_get(p.params, "limit")), 20);
	assert_false(json_object_object_get_ex(args, "limit", NULL)); /* the agent's object is untouched */
	mcp_prepared_clear(&p);
	assert_int_equal(mcp_tool_prepare(mcp_tool_find("wait_request"), &no_loop, wait, &p, &problem), 0);
	assert_string_equal(p.request_id, "r_1");
	assert_int_equal(p.wait_ms, 600000);
	mcp_prepared_clear(&p);
	assert_int_equal(mcp_tool_prepare(mcp_tool_find("hitl_status"), &no_loop, NULL, &p, &problem), 0);
	assert_string_equal(p.method, "status");
	mcp_prepared_clear(&p);
}

static void test_results_say_what_to_act_on(void **state) {
	_cleanup_(json_object_putp) json_object *done = parse(
		"{\"id\":\"r_1\",\"state\":\"completed\",\"result\":\"approve\",\"result_source\":\"reviewer\"}"),
		*late = parse("{\"id\":\"r_2\",\"state\":\"timeout\",\"result\":\"reject\",\"result_source\":\"default\"}"),
		*gone = parse("{\"id\":\"r_3\",\"state\":\"failed\",\"error\":{\"message\":\"Loop not found\"}}"),
		*r1 = mcp_result_ask(done, true), *r2 = mcp_result_ask(late, false), *r3 = mcp_result_ask(gone, true),
		*w = mcp_result_wait(done, false, true);
	json_object *sc = json_object_object_get(r1, "structuredContent");
	const char *text;

	assert_string_equal(str(sc, "answer"), "approve");
	assert_string_equal(str(sc, "result_source"), "reviewer");
	assert_false(json_object_object_get_ex(r1, "isError", NULL));
	/* Older revisions: the same JSON as text, no structuredContent. */
	assert_false(json_object_object_get_ex(r2, "structuredContent", NULL));
	text = str(json_object_array_get_idx(json_object_object_get(r2, "content"), 0), "text");
	assert_non_null(strstr(text, "\"result_source\":\"default\""));
	assert_true(json_object_get_boolean(json_object_object_get(r3, "isError")));
	text = str(json_object_array_get_idx(json_object_object_get(r3, "content"), 0), "text");
	assert_non_null(strstr(text, "failed"));
	assert_non_null(strstr(text, "Loop not found"));
	assert_false(json_object_get_boolean(json_object_object_get(json_object_object_get(w, "structuredContent"), "done")));
}

static void test_hitld_errors_keep_code_name_message_and_data(void **state) {
	HitlError e = { HITL_ERROR_INVALID_PARAMS, strdup("Invalid params."),
		        parse("{\"field\":\"loop_id\",\"reason\":\"must be 24 hex characters\"}") };
	_cleanup_(json_object_putp) json_object *r = mcp_result_hitld_error(&e), *err = NULL;
	json_object *content = json_object_object_get(r, "content");
	const char *text = str(json_object_array_get_idx(content, 0), "text");

	assert_true(json_object_get_boolean(json_object_object_get(r, "isError")));
	assert_non_null(strstr(text, "Invalid params."));
	assert_non_null(strstr(text, "invalid_params"));
	assert_non_null(strstr(text, "loop_id: must be 24 hex characters"));
	err = parse(str(json_object_array_get_idx(content, 1), "text"));
	assert_int_equal(json_object_get_int(json_object_object_get(err, "code")), -32602);
	assert_string_equal(str(err, "name"), "invalid_params");
	assert_string_equal(str(json_object_object_get(err, "data"), "field"), "loop_id");
	hitl_error_clear(&e);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiation_answers_the_clients_revision_or_the_newest),
		cmocka_unit_test(test_tool_list_follows_the_revision_and_the_loop_option),
		cmocka_unit_test(test_ask_human_arguments_become_a_submit_with_defaults),
		cmocka_unit_test(test_wrong_arguments_are_a_sentence_for_the_model),
		cmocka_unit_test(test_list_requests_defaults_to_a_small_page_and_wait_to_ten_minutes),
		cmocka_unit_test(test_results_say_what_to_act_on),
		cmocka_unit_test(test_hitld_errors_keep_code_name_message_and_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
