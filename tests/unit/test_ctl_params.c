/* test_ctl_params.c — hitlctl's flags as request.submit params (client/ctl_params.c):
 * what each response type's and content type's flags put where, which flags a type
 * refuses, how --default reads per type, and which flag a refused field is blamed on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_params.h"

static char *text_args[] = { "Deploy", "build", "4812?", NULL };

/* A seam for running out of memory: the test is linked with
 * --wrap=json_object_new_string, and the copy of this one string fails. */
static const char *fail_new_string;
json_object *__real_json_object_new_string(const char *s);
json_object *__wrap_json_object_new_string(const char *s);
json_object *__wrap_json_object_new_string(const char *s) {
	if (fail_new_string && streq(s, fail_new_string))
		return NULL;
	return __real_json_object_new_string(s);
}

/* The params for o with the TEXT "Deploy build 4812?", as plain JSON, or NULL with *ret_exit set. */
static char *build(const SubmitOpts *o, int *ret_exit) {
	_cleanup_(json_object_putp) json_object *p = NULL;

	*ret_exit = build_submit_params(o, text_args, 3, &p);
	return *ret_exit ? NULL : strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN |
	                                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void assert_params(const SubmitOpts *o, const char *want) {
	int k;
	_cleanup_(freep) char *got = build(o, &k);

	assert_int_equal(k, 0);
	assert_string_equal(got, want);
}

static void assert_refused(const SubmitOpts *o) {
	int k;
	_cleanup_(freep) char *got = build(o, &k);

	assert_null(got);
	assert_int_equal(k, EXIT_USAGE);
}

static void test_options_make_a_single_select_in_flag_order(void **state) {
	char *options[] = { "approve", "reject=Say no", NULL };
	SubmitOpts o = { .loop = "L", .default_value = "reject", .options = options, .n_options = 2 };

	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"single_select\","
	                  "\"response_config\":{\"options\":[{\"value\":\"approve\",\"label\":\"approve\"},"
	                  "{\"value\":\"reject\",\"label\":\"Say no\"}]},\"default_response\":\"reject\"}");
	o.type = "multi";
	o.min = "1";
	o.max = "2";
	o.default_value = "approve,reject";
	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"multi_select\","
	                  "\"response_config\":{\"options\":[{\"value\":\"approve\",\"label\":\"approve\"},"
	                  "{\"value\":\"reject\",\"label\":\"Say no\"}],\"min_selections\":1,\"max_selections\":2},"
	                  "\"default_response\":[\"approve\",\"reject\"]}");
	o.default_value = "[\"approve\"]";
	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"multi_select\","
	                  "\"response_config\":{\"options\":[{\"value\":\"approve\",\"label\":\"approve\"},"
	                  "{\"value\":\"reject\",\"label\":\"Say no\"}],\"min_selections\":1,\"max_selections\":2},"
	                  "\"default_response\":[\"approve\"]}");
}

static void test_each_type_reads_its_own_flags(void **state) {
	SubmitOpts rating = { .loop = "L", .type = "rating", .default_value = "3" };
	SubmitOpts number = { .loop = "L", .type = "number", .default_value = "2.5", .min = "-1", .max = "9.5",
		              .decimals = "1", .prefix = "$", .allow_negative = true, .placeholder = "amount" };
	SubmitOpts text = { .loop = "L", .default_value = "none", .max_length = "100", .max = "50", .required = true };
	SubmitOpts boolean = { .loop = "L", .type = "boolean", .default_value = "no", .true_label = "Ship" };
	SubmitOpts editable = { .loop = "L", .type = "editable-text", .draft_text = "Dear all" };

	/* A rating with no scale given is 1-5. */
	assert_params(&rating, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"rating\","
	                       "\"response_config\":{\"scale_max\":5},\"default_response\":3}");
	rating.max = "10";
	rating.step = "0.5";
	assert_params(&rating, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"rating\","
	                       "\"response_config\":{\"scale_max\":10,\"scale_step\":0.5},\"default_response\":3}");
	assert_params(&number, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"number\","
	                       "\"response_config\":{\"min_value\":-1,\"max_value\":9.5,\"decimal_places\":1,"
	                       "\"placeholder\":\"amount\",\"prefix\":\"$\",\"allow_negative\":true},"
	                       "\"default_response\":2.5}");
	/* --max after --max-length wins, and text is the type when nothing says otherwise. */
	assert_params(&text, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"text\","
	                     "\"response_config\":{\"max_length\":50,\"required\":true},\"default_response\":\"none\"}");
	assert_string_equal(flag_for_field("response_config.max_length"), "--max");
	assert_params(&boolean, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"boolean\","
	                        "\"response_config\":{\"true_label\":\"Ship\"},\"default_response\":false}");
	/* editable_text: the draft is the default when --default is not given. */
	assert_params(&editable, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"editable_text\","
	                         "\"response_config\":{\"draft_text\":\"Dear all\"},\"default_response\":\"Dear all\"}");
	assert_string_equal(flag_for_field("default_response"), "--draft-text");
}

static void test_flags_of_other_types_are_refused(void **state) {
	char *options[] = { "a", NULL };
	SubmitOpts o = { .loop = "L", .default_value = "x" };

	o.type = "text", o.step = "1";
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "3", .type = "rating", .decimals = "1" };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "single_select", .min = "1", .options = options,
		           .n_options = 1 };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "3", .type = "rating", .options = options, .n_options = 1 };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "text", .draft_text = "d" };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "number", .true_label = "t" };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "boolean", .max_length = "5" };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "rating", .placeholder = "p" };
	assert_refused(&o);
	/* A select needs choices; every type needs a default; --type must be one. */
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "single_select" };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .type = "text" };
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .type = "essay" };
	assert_refused(&o);
	o = (SubmitOpts) { .default_value = "x" };
	assert_refused(&o);
}

static void test_default_is_read_as_the_type_answers(void **state) {
	SubmitOpts o = { .loop = "L", .type = "number", .default_value = "many" };

	assert_refused(&o);
	o.type = "boolean";
	o.default_value = "maybe";
	assert_refused(&o);
	o.type = "multi_select";
	o.default_value = "[1";
	o.config = "{\"options\": [\"a\"]}";
	assert_refused(&o);
	o.default_value = "yes";
	o.type = "boolean";
	o.config = NULL;
	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"boolean\","
	                  "\"response_config\":{},\"default_response\":true}");
}

static void test_content_flags_name_their_type_and_must_agree(void **state) {
	SubmitOpts o = { .loop = "L", .default_value = "x", .file_url = "https://f/x.pdf", .file_name = "x.pdf" };

	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"text\","
	                  "\"response_config\":{},\"default_response\":\"x\",\"file_url\":\"https://f/x.pdf\","
	                  "\"file_name\":\"x.pdf\",\"type\":\"file\"}");
	assert_string_equal(flag_for_field("type"), "--file-url");
	o.content = "Image";
	assert_refused(&o);
	o = (SubmitOpts) { .loop = "L", .default_value = "x", .content = "video", .video_url = "https://v" };
	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"text\","
	                  "\"response_config\":{},\"default_response\":\"x\",\"video_url\":\"https://v\","
	                  "\"type\":\"video\"}");
	assert_string_equal(flag_for_field("type"), "--content");
	o.content = "hologram";
	assert_refused(&o);
}

static void test_timing_and_the_rest(void **state) {
	SubmitOpts o = { .loop = "L", .default_value = "x", .timeout = "15m", .priority = "high",
		         .context = "{\"build\": 4812}", .callback_url = "https://cb", .ref = "R1" };

	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"text\","
	                  "\"response_config\":{},\"default_response\":\"x\",\"priority\":\"high\","
	                  "\"timeout_seconds\":900,\"processing_type\":\"time-sensitive\",\"context\":{\"build\":4812},"
	                  "\"callback_url\":\"https://cb\",\"client_ref\":\"R1\"}");
	o.deferred = true;
	o.timeout = "1d";
	o.context = NULL;
	o.callback_url = o.ref = o.priority = NULL;
	assert_params(&o, "{\"request_text\":\"Deploy build 4812?\",\"loop_id\":\"L\",\"response_type\":\"text\","
	                  "\"response_config\":{},\"default_response\":\"x\",\"timeout_seconds\":86400,"
	                  "\"processing_type\":\"deferred\"}");
	o.timeout = "soon";
	assert_refused(&o);
	o.timeout = NULL;
	o.context = "[1]";
	assert_refused(&o);
	o.context = NULL;
	o.text = "twice";
	assert_refused(&o);
}

/* A field is blamed on what set it in this request: --params, --config or a
 * flag, else on the flag that usually sets it. */
static void test_refused_fields_are_blamed_on_what_set_them(void **state) {
	char path[] = "/tmp/test_ctl_params.XXXXXX";
	int fd = mkstemp(path);
	static const char params[] = "{\"loop_id\": \"P\", \"priority\": \"low\", \"response_type\": \"rating\","
	                             " \"default_response\": 2, \"response_config\": {\"scale_max\": 3}}";
	SubmitOpts o = { .params_file = path, .config = "{\"scale_min\": 1}" };
	_cleanup_(freep) char *got = NULL;
	int k;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, params, sizeof params - 1), (ssize_t) (sizeof params - 1));
	close(fd);
	got = build(&o, &k);
	unlink(path);
	assert_int_equal(k, 0);
	assert_string_equal(got, "{\"loop_id\":\"P\",\"priority\":\"low\",\"response_type\":\"rating\",\"default_response\":2,"
	                         "\"response_config\":{\"scale_max\":3,\"scale_min\":1},"
	                         "\"request_text\":\"Deploy build 4812?\"}");
	assert_string_equal(flag_for_field("priority"), "--params");
	assert_string_equal(flag_for_field("response_config.scale_max"), "--params");
	assert_string_equal(flag_for_field("response_config.scale_min"), "--config");
	assert_string_equal(flag_for_field("request_text"), "TEXT");
	/* Set by nothing in this request: the usual flag. */
	assert_string_equal(flag_for_field("timeout_seconds"), "--timeout");
	assert_string_equal(flag_for_field("feedback.rating"), "--rating");
	assert_null(flag_for_field("platform"));

	/* The next request starts with no blame from the last. */
	o = (SubmitOpts) { .loop = "L", .default_value = "x" };
	free(got);
	got = build(&o, &k);
	assert_int_equal(k, 0);
	assert_string_equal(flag_for_field("priority"), "--priority");
	assert_string_equal(flag_for_field("response_config.scale_max"), "--max");
}

/* The response type is read back from the params: when its copy could not be
 * made there is none, which is an error, not a NULL type to look up. */
static void test_no_memory_for_the_type_is_an_error(void **state) {
	SubmitOpts o = { .loop = "L", .type = "rating" };
	int k;

	fail_new_string = "rating";
	_cleanup_(freep) char *got = build(&o, &k);
	fail_new_string = NULL;
	assert_null(got);
	assert_int_not_equal(k, 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_make_a_single_select_in_flag_order),
		cmocka_unit_test(test_each_type_reads_its_own_flags),
		cmocka_unit_test(test_flags_of_other_types_are_refused),
		cmocka_unit_test(test_default_is_read_as_the_type_answers),
		cmocka_unit_test(test_content_flags_name_their_type_and_must_agree),
		cmocka_unit_test(test_timing_and_the_rest),
		cmocka_unit_test(test_refused_fields_are_blamed_on_what_set_them),
		cmocka_unit_test(test_no_memory_for_the_type_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
