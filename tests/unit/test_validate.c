/* test_validate.c — HITL.sh's rules applied locally (daemon/validate.c).
 * Table-driven: every row is one cmocka test, named for the behaviour it pins down.
 * JSON in the tables is written with ' for " and may hold "`N:s`", which expands
 * to s repeated N times (long strings, many options, deep nesting). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cleanup.h"
#include "validate.h"

#define LOOP_ID "65f1234567890abcdef12345"
#define ABSENT "<absent>"

/* ---- helpers ---------------------------------------------------------------------- */

/* Expands the table shorthand: ' → ", "`N:s`" → s × N. */
static char *expand(const char *template) {
	size_t size = 1;
	char *out, *p;

	/* First pass: the size. */
	for (const char *t = template; *t;) {
		if (*t == '`') {
			char *colon;
			unsigned long n = strtoul(t + 1, &colon, 10);
			const char *end = strchr(colon + 1, '`');

			assert_non_null(end);
			size += n * (size_t) (end - colon - 1);
			t = end + 1;
		} else {
			size++;
			t++;
		}
	}

	p = out = malloc(size);
	assert_non_null(out);
	for (const char *t = template; *t;) {
		if (*t == '`') {
			char *colon;
			unsigned long n = strtoul(t + 1, &colon, 10);
			const char *end = strchr(colon + 1, '`');
			size_t len = (size_t) (end - colon - 1);

			for (unsigned long i = 0; i < n; i++) {
				for (size_t k = 0; k < len; k++)
					*p++ = colon[1 + k] == '\'' ? '"' : colon[1 + k];
			}
			t = end + 1;
		} else {
			*p++ = *t == '\'' ? '"' : *t;
			t++;
		}
	}
	*p = '\0';
	return out;
}

/* Parses table JSON; deeper than json-c's default so nesting limits can be tested. */
static json_object *parse(const char *template) {
	_cleanup_(freep) char *text = expand(template);
	json_tokener *tok = json_tokener_new_ex(128);
	json_object *j;

	assert_non_null(tok);
	/* + 1: the NUL ends a bare top-level number. */
	j = json_tokener_parse_ex(tok, text, (int) strlen(text) + 1);
	if (json_tokener_get_error(tok) != json_tokener_success)
		fail_msg("bad test JSON: %s", text);
	json_tokener_free(tok);
	return j;
}

static void assert_json_equal(json_object *actual, const char *expected_template) {
	_cleanup_(json_object_putp) json_object *expected = parse(expected_template);

	if (!json_object_equal(actual, expected))
		fail_msg("got %s, want %s", json_object_to_json_string(actual),
		         json_object_to_json_string(expected));
}

static void assert_error(int r, int rc, const ValidationError *err, const char *field, const char *reason) {
	if (r != rc)
		fail_msg("returned %d, want %d (field \"%s\", reason \"%s\")", r, rc, err->field, err->reason);
	assert_string_equal(err->field, field);
	if (reason)
		assert_string_equal(err->reason, reason);
}

static bool utf8_is_valid(const char *s) {
	const unsigned char *p = (const unsigned char *) s;

	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0)
			return false;
		for (size_t i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += len;
	}
	return true;
}

/* ---- request.submit --------------------------------------------------------------- */

#define BASE_SUBMIT \
	"{'loop_id':'" LOOP_ID "','request_text':'Approve this post?','response_type':'single_select'," \
	"'response_config':{'options':['Approve','Reject']},'default_response':'Reject'}"

#define RESPONSE(type, config, def) "{'response_type':'" type "','response_config':" config ",'default_response':" def "}"
#define TEXT(config, def) RESPONSE("text", config, def)
#define SINGLE(config, def) RESPONSE("single_select", config, def)
#define MULTI(config, def) RESPONSE("multi_select", config, def)
#define RATING(config, def) RESPONSE("rating", config, def)
#define NUMBER(config, def) RESPONSE("number", config, def)
#define BOOLEAN(config, def) RESPONSE("boolean", config, def)

typedef struct SubmitCase {
	const char *name;
	const char *patch;        /* merged over BASE_SUBMIT (whole params when raw) */
	const char *remove;       /* key removed from BASE_SUBMIT first */
	bool raw;
	int rc;
	const char *field;
	const char *reason;
	const char *key;          /* on success: output[key] must equal value (ABSENT: missing) */
	const char *value;
} SubmitCase;

#define ACCEPT(n, p) { .name = n, .patch = p }
#define ACCEPT_CHECK(n, p, k, v) { .name = n, .patch = p, .key = k, .value = v }
#define REJECT(n, p, f, r) { .name = n, .patch = p, .rc = -EINVAL, .field = f, .reason = r }
#define REJECT_MISSING(n, k, f, r) { .name = n, .patch = "{}", .remove = k, .rc = -EINVAL, .field = f, .reason = r }

static const SubmitCase submit_cases[] = {
	/* shape */
	ACCEPT_CHECK("submit_accepts_minimal_request", "{}", "loop_id", "'" LOOP_ID "'"),
	{ .name = "submit_rejects_params_that_are_not_an_object", .patch = "['x']", .raw = true, .rc = -EINVAL,
	  .field = "params", .reason = "params must be an object" },
	REJECT("submit_rejects_unknown_top_level_field", "{'title':'x'}", "title", "unknown field"),
	ACCEPT_CHECK("submit_accepts_every_known_optional_field",
	             "{'priority':'high','processing_type':'time-sensitive','type':'image',"
	             "'image_url':'https://cdn.example.com/a.png','timeout_seconds':3600,'context':{'k':'v'},"
	             "'callback_url':'https://example.com/hook','platform':'n8n','platform_version':'1.0.0'}",
	             "platform_version", "'1.0.0'"),
	ACCEPT_CHECK("submit_treats_null_optional_field_as_absent", "{'priority':null,'image_url':null}", "image_url",
	             ABSENT),

	/* loop_id */
	REJECT_MISSING("submit_rejects_missing_loop_id", "loop_id", "loop_id", "loop_id is required"),
	REJECT("submit_rejects_loop_id_that_is_not_24_hex_digits", "{'loop_id':'65f1234567890abcdef1234z'}", "loop_id",
	       "Invalid loop ID format"),
	REJECT("submit_rejects_short_loop_id", "{'loop_id':'65f1'}", "loop_id", "Invalid loop ID format"),
	REJECT("submit_rejects_loop_id_that_is_not_a_string", "{'loop_id':5}", "loop_id", "loop_id must be a string"),
	ACCEPT("submit_accepts_upper_case_loop_id", "{'loop_id':'65F1234567890ABCDEF12345'}"),

	/* request_text */
	REJECT_MISSING("submit_rejects_missing_request_text", "request_text", "request_text", "request_text is required"),
	REJECT("submit_rejects_empty_request_text", "{'request_text':''}", "request_text",
	       "request_text must be between 1 and 2000 characters"),
	REJECT("submit_rejects_request_text_over_2000_characters", "{'request_text':'`2001:x`'}", "request_text",
	       "request_text must be between 1 and 2000 characters"),
	ACCEPT("submit_counts_request_text_in_code_points_not_bytes", "{'request_text':'`2000:é`'}"),
	REJECT("submit_rejects_request_text_with_truncated_utf8", "{'request_text':'ok \xc3'}", "request_text",
	       "request_text must be valid UTF-8"),
	REJECT("submit_rejects_request_text_with_encoded_surrogate", "{'request_text':'\xed\xa0\x80'}", "request_text",
	       "request_text must be valid UTF-8"),
	REJECT("submit_rejects_request_text_that_is_not_a_string", "{'request_text':['x']}", "request_text",
	       "request_text must be a string"),

	/* enums and their defaults */
	ACCEPT_CHECK("submit_defaults_priority_to_medium", "{}", "priority", "'medium'"),
	ACCEPT_CHECK("submit_keeps_given_priority", "{'priority':'critical'}", "priority", "'critical'"),
	REJECT("submit_rejects_unknown_priority", "{'priority':'urgent'}", "priority",
	       "priority must be one of: low, medium, high, critical"),
	REJECT("submit_rejects_priority_that_is_not_a_string", "{'priority':1}", "priority", "priority must be a string"),
	ACCEPT_CHECK("submit_defaults_processing_type_to_deferred", "{}", "processing_type", "'deferred'"),
	REJECT("submit_rejects_unknown_processing_type", "{'processing_type':'later'}", "processing_type",
	       "processing_type must be one of: time-sensitive, deferred"),
	ACCEPT_CHECK("submit_defaults_type_to_markdown", "{}", "type", "'markdown'"),
	REJECT("submit_rejects_unknown_type", "{'type':'pdf'}", "type",
	       "type must be one of: markdown, image, file, video, audio"),
	ACCEPT_CHECK("submit_defaults_platform_to_api", "{}", "platform", "'api'"),
	ACCEPT_CHECK("submit_keeps_given_platform", "{'platform':'web_portal'}", "platform", "'web_portal'"),
	REJECT("submit_rejects_unknown_platform", "{'platform':'slack'}", "platform",
	       "platform must be one of: n8n, zapier, web_portal, api, mobile, webhook"),
	REJECT_MISSING("submit_rejects_missing_response_type", "response_type", "response_type",
	               "response_type is required"),
	REJECT("submit_rejects_unknown_response_type", "{'response_type':'slider'}", "response_type",
	       "response_type must be one of: text, single_select, multi_select, rating, number, boolean, editable_text"),

	/* timeout_seconds */
	ACCEPT_CHECK("submit_leaves_deferred_timeout_absent_for_the_servers_default", "{}", "timeout_seconds", ABSENT),
	REJECT("submit_rejects_time_sensitive_without_timeout", "{'processing_type':'time-sensitive'}",
	       "timeout_seconds", "timeout_seconds is required for time-sensitive requests"),
	ACCEPT_CHECK("submit_accepts_time_sensitive_timeout_of_one_day",
	             "{'processing_type':'time-sensitive','timeout_seconds':86400}", "timeout_seconds", "86400"),
	REJECT("submit_rejects_time_sensitive_timeout_over_one_day",
	       "{'processing_type':'time-sensitive','timeout_seconds':86401}", "timeout_seconds",
	       "timeout_seconds must be between 60 and 86400"),
	REJECT("submit_rejects_timeout_under_60_seconds", "{'processing_type':'time-sensitive','timeout_seconds':59}",
	       "timeout_seconds", "timeout_seconds must be between 60 and 86400"),
	ACCEPT_CHECK("submit_accepts_deferred_timeout_of_one_day", "{'timeout_seconds':86400}", "timeout_seconds",
	             "86400"),
	REJECT("submit_rejects_deferred_timeout_over_one_day", "{'timeout_seconds':86401}", "timeout_seconds",
	       "timeout_seconds must be between 60 and 86400"),
	REJECT("submit_rejects_the_old_30_day_deferred_timeout", "{'timeout_seconds':2592000}", "timeout_seconds",
	       "timeout_seconds must be between 60 and 86400"),
	ACCEPT_CHECK("submit_accepts_timeout_as_double_without_fraction", "{'timeout_seconds':120.0}",
	             "timeout_seconds", "120"),
	REJECT("submit_rejects_timeout_with_fraction", "{'timeout_seconds':120.5}", "timeout_seconds",
	       "timeout_seconds must be an integer"),
	REJECT("submit_rejects_timeout_as_string", "{'timeout_seconds':'120'}", "timeout_seconds",
	       "timeout_seconds must be an integer"),

	/* image_url, callback_url */
	REJECT("submit_rejects_image_type_without_image_url", "{'type':'image'}", "image_url",
	       "image_url is required when type is 'image'"),
	ACCEPT_CHECK("submit_accepts_image_type_with_https_url", "{'type':'image','image_url':'https://cdn.example.com/a.png'}",
	             "image_url", "'https://cdn.example.com/a.png'"),
	REJECT("submit_rejects_image_url_with_other_scheme", "{'type':'image','image_url':'ftp://example.com/a.png'}", "image_url",
	       "image_url must be an absolute http or https URL"),
	REJECT("submit_rejects_relative_image_url", "{'type':'image','image_url':'/a.png'}", "image_url",
	       "image_url must be an absolute http or https URL"),
	REJECT("submit_rejects_image_url_without_host", "{'type':'image','image_url':'https:///a.png'}", "image_url",
	       "image_url must be an absolute http or https URL"),
	REJECT("submit_rejects_image_url_with_whitespace", "{'type':'image','image_url':'https://example.com/a b.png'}", "image_url",
	       "image_url must be an absolute http or https URL"),
	REJECT("submit_rejects_image_url_with_control_character", "{'type':'image','image_url':'https://example.com/\\u0001'}",
	       "image_url", "image_url must be an absolute http or https URL"),
	REJECT("submit_rejects_image_url_over_2048_bytes", "{'type':'image','image_url':'https://example.com/`2030:a`'}", "image_url",
	       "image_url must be at most 2048 bytes"),
	ACCEPT("submit_accepts_image_url_of_2048_bytes", "{'type':'image','image_url':'https://example.com/`2028:a`'}"),
	ACCEPT("submit_accepts_callback_url_with_port_userinfo_query_and_fragment",
	       "{'callback_url':'HTTP://user:pw@hooks.example.com:8443/a?b=c#d'}"),
	ACCEPT("submit_accepts_callback_url_with_ipv6_host", "{'callback_url':'http://[::1]:8080/hook'}"),
	REJECT("submit_rejects_callback_url_with_empty_host", "{'callback_url':'http://user@:80/hook'}", "callback_url",
	       "callback_url must be an absolute http or https URL"),
	REJECT("submit_rejects_callback_url_with_bad_port", "{'callback_url':'http://example.com:99999/'}",
	       "callback_url", "callback_url must be an absolute http or https URL"),
	REJECT("submit_rejects_callback_url_that_is_not_a_string", "{'callback_url':true}", "callback_url",
	       "callback_url must be a string"),

	/* context */
	ACCEPT_CHECK("submit_copies_context", "{'context':{'a':{'b':[1,2]}}}", "context", "{'a':{'b':[1,2]}}"),
	REJECT("submit_rejects_context_that_is_not_an_object", "{'context':'ctx'}", "context",
	       "context must be an object"),
	REJECT("submit_rejects_reserved_context_hitld_id", "{'context':{'hitld_id':'r_1'}}", "context.hitld_id",
	       "context.hitld_id is reserved"),
	ACCEPT("submit_accepts_hitld_id_nested_below_context", "{'context':{'a':{'hitld_id':1}}}"),
	REJECT("submit_rejects_context_over_50KB", "{'context':{'blob':'`51200:x`'}}", "context",
	       "context must be under 50KB"),
	ACCEPT("submit_accepts_context_just_under_50KB", "{'context':{'blob':'`51180:x`'}}"),
	ACCEPT("submit_accepts_context_nested_32_deep", "{'context':`32:{'a':`1`32:}`}"),
	REJECT("submit_rejects_context_nested_33_deep", "{'context':`33:{'a':`1`33:}`}", "context",
	       "context is nested too deeply"),
	REJECT("submit_rejects_context_with_invalid_utf8", "{'context':{'k':'\xff'}}", "context",
	       "context must be valid UTF-8"),
	REJECT("submit_rejects_context_nested_33_deep_in_arrays", "{'context':{'a':`32:[`1`32:]`}}", "context",
	       "context is nested too deeply"),

	/* platform_version, tags */
	ACCEPT_CHECK("submit_copies_platform_version", "{'platform_version':'1.2.3'}", "platform_version", "'1.2.3'"),
	REJECT("submit_rejects_platform_version_over_50_characters", "{'platform_version':'`51:1`'}", "platform_version",
	       "platform_version must be at most 50 characters"),
	REJECT("submit_rejects_platform_version_that_is_not_a_string", "{'platform_version':1}", "platform_version",
	       "platform_version must be a string"),
	REJECT("submit_rejects_tags_which_the_api_does_not_document", "{'tags':['a']}", "tags",
	       "tags is not a HITL.sh request field; put such labels in context"),

	/* content types: markdown, image, file, video, audio */
	REJECT("submit_rejects_image_url_on_a_markdown_request", "{'image_url':'https://cdn.example.com/a.png'}",
	       "image_url", "image_url is only for type 'image' (type is 'markdown')"),
	ACCEPT_CHECK("submit_accepts_a_file_with_url_type_and_name",
	             "{'type':'file','file_url':'https://cdn.example.com/c.pdf','file_type':'pdf','file_name':'c.pdf'}",
	             "file_name", "'c.pdf'"),
	REJECT("submit_rejects_file_without_file_url", "{'type':'file','file_type':'pdf','file_name':'c.pdf'}",
	       "file_url", "file_url is required when type is 'file'"),
	REJECT("submit_rejects_file_without_file_name",
	       "{'type':'file','file_url':'https://cdn.example.com/c.pdf','file_type':'pdf'}",
	       "file_name", "file_name is required when type is 'file'"),
	REJECT("submit_rejects_empty_file_type",
	       "{'type':'file','file_url':'https://cdn.example.com/c.pdf','file_type':'','file_name':'c.pdf'}",
	       "file_type", "file_type must be between 1 and 100 characters"),
	REJECT("submit_rejects_file_name_on_a_video", "{'type':'video','video_url':'https://v.example.com/a.mp4','file_name':'a'}",
	       "file_name", "file_name is only for type 'file'"),
	ACCEPT_CHECK("submit_accepts_a_video", "{'type':'video','video_url':'https://v.example.com/a.mp4'}", "video_url",
	             "'https://v.example.com/a.mp4'"),
	REJECT("submit_rejects_video_without_video_url", "{'type':'video'}", "video_url",
	       "video_url is required when type is 'video'"),
	REJECT("submit_rejects_video_url_that_is_not_http", "{'type':'video','video_url':'rtsp://v.example.com/a'}",
	       "video_url", "video_url must be an absolute http or https URL"),
	ACCEPT_CHECK("submit_accepts_an_audio", "{'type':'audio','audio_url':'https://a.example.com/a.mp3'}", "audio_url",
	             "'https://a.example.com/a.mp3'"),
	REJECT("submit_rejects_audio_url_on_an_image",
	       "{'type':'image','image_url':'https://cdn.example.com/a.png','audio_url':'https://a.example.com/a.mp3'}",
	       "audio_url", "audio_url is only for type 'audio' (type is 'image')"),

	/* response_config, default_response presence */
	REJECT_MISSING("submit_rejects_missing_response_config", "response_config", "response_config",
	               "response_config is required"),
	REJECT("submit_rejects_response_config_that_is_not_an_object", "{'response_config':[1]}", "response_config",
	       "response_config must be an object"),
	REJECT_MISSING("submit_rejects_missing_default_response", "default_response", "default_response",
	               "default_response is required"),
	REJECT("submit_rejects_null_default_response", "{'default_response':null}", "default_response",
	       "default_response is required"),
	ACCEPT_CHECK("submit_keeps_unknown_response_config_keys", RATING("{'scale_max':5,'show_numeric_labels':true}", "3"),
	             "response_config", "{'scale_max':5,'show_numeric_labels':true}"),

	/* text */
	ACCEPT_CHECK("submit_accepts_text_with_empty_config_and_empty_default", TEXT("{}", "''"), "default_response", "''"),
	REJECT("submit_rejects_text_default_over_default_max_length_of_1000", TEXT("{}", "'`1001:x`'"),
	       "default_response", "default_response must be between 0 and 1000 characters"),
	ACCEPT("submit_accepts_text_max_length_5000", TEXT("{'max_length':5000}", "'ok'")),
	REJECT("submit_rejects_text_max_length_over_5000", TEXT("{'max_length':5001}", "'ok'"),
	       "response_config.max_length", "max_length must be between 1 and 5000"),
	REJECT("submit_rejects_text_max_length_0", TEXT("{'max_length':0}", "''"), "response_config.max_length",
	       "max_length must be between 1 and 5000"),
	REJECT("submit_rejects_text_max_length_that_is_not_an_integer", TEXT("{'max_length':'10'}", "''"),
	       "response_config.max_length", "max_length must be an integer"),
	REJECT("submit_rejects_negative_text_min_length", TEXT("{'min_length':-1}", "''"), "response_config.min_length",
	       "min_length must be between 0 and max_length (1000)"),
	REJECT("submit_rejects_text_min_length_above_max_length", TEXT("{'min_length':11,'max_length':10}", "'`11:x`'"),
	       "response_config.min_length", "min_length must be between 0 and max_length (10)"),
	ACCEPT("submit_accepts_text_min_length_equal_to_max_length", TEXT("{'min_length':3,'max_length':3}", "'abc'")),
	REJECT("submit_rejects_text_default_shorter_than_min_length", TEXT("{'min_length':3}", "'ab'"),
	       "default_response", "default_response must be between 3 and 1000 characters"),
	REJECT("submit_measures_text_default_after_trimming", TEXT("{'min_length':3}", "'  ab  '"), "default_response",
	       "default_response must be between 3 and 1000 characters"),
	ACCEPT("submit_ignores_surrounding_whitespace_for_text_max_length", TEXT("{'max_length':3}", "' \\tabc\\n '")),
	ACCEPT("submit_counts_text_default_in_code_points", TEXT("{'max_length':3}", "'héé'")),
	REJECT("submit_rejects_blank_text_default_when_required", TEXT("{'required':true}", "'   '"), "default_response",
	       "default_response must be a non-blank string"),
	ACCEPT("submit_accepts_blank_text_default_when_not_required", TEXT("{'required':false}", "'   '")),
	REJECT("submit_rejects_required_that_is_not_a_boolean", TEXT("{'required':'yes'}", "'x'"),
	       "response_config.required", "required must be a boolean"),
	ACCEPT("submit_accepts_text_placeholder_and_guidelines", TEXT("{'placeholder':'Why?','guidelines':'Be brief'}", "'x'")),
	REJECT("submit_rejects_text_placeholder_that_is_not_a_string", TEXT("{'placeholder':5}", "'x'"),
	       "response_config.placeholder", "placeholder must be a string"),
	REJECT("submit_rejects_text_default_that_is_not_a_string", TEXT("{}", "5"), "default_response",
	       "default_response must be a string"),

	/* select options */
	REJECT("submit_rejects_select_without_options", SINGLE("{}", "'a'"), "response_config.options",
	       "options array required for select response type"),
	REJECT("submit_rejects_select_with_empty_options", SINGLE("{'options':[]}", "'a'"), "response_config.options",
	       "options array required for select response type"),
	REJECT("submit_rejects_select_options_that_are_not_an_array", SINGLE("{'options':'a'}", "'a'"),
	       "response_config.options", "options array required for select response type"),
	ACCEPT("submit_accepts_20_options",
	       SINGLE("{'options':['a','b','c','d','e','f','g','h','i','j','k','l','m','n','o','p','q','r','s','t']}", "'t'")),
	REJECT("submit_rejects_more_than_20_options",
	       SINGLE("{'options':['a','b','c','d','e','f','g','h','i','j','k','l','m','n','o','p','q','r','s','t','u']}", "'a'"),
	       "response_config.options", "options must contain between 1 and 20 items"),
	ACCEPT("submit_accepts_option_string_of_100_characters", SINGLE("{'options':['`100:x`']}", "'`100:x`'")),
	REJECT("submit_rejects_empty_option_string", SINGLE("{'options':['a','']}", "'a'"), "response_config.options[1]",
	       "options[1] must be between 1 and 100 characters"),
	REJECT("submit_rejects_option_string_over_100_characters", SINGLE("{'options':['`101:x`']}", "'a'"),
	       "response_config.options[0]", "options[0] must be between 1 and 100 characters"),
	REJECT("submit_rejects_option_that_is_neither_string_nor_object", SINGLE("{'options':[5]}", "'a'"),
	       "response_config.options[0]", "options[0] must be a string or an object"),
	ACCEPT("submit_accepts_option_object_with_every_field",
	       SINGLE("{'options':[{'value':'ok','label':'Looks good','description':'`500:d`','color':'#16a34A'}]}", "'ok'")),
	REJECT("submit_rejects_option_object_without_value", SINGLE("{'options':[{'label':'A'}]}", "'A'"),
	       "response_config.options[0].value", "options[0].value is required"),
	REJECT("submit_rejects_option_object_without_label", SINGLE("{'options':[{'value':'a'}]}", "'a'"),
	       "response_config.options[0].label", "options[0].label is required"),
	REJECT("submit_rejects_option_value_over_100_characters", SINGLE("{'options':[{'value':'`101:v`','label':'A'}]}", "'A'"),
	       "response_config.options[0].value", "options[0].value must be between 1 and 100 characters"),
	REJECT("submit_rejects_empty_option_value", SINGLE("{'options':[{'value':'','label':'A'}]}", "'A'"),
	       "response_config.options[0].value", "options[0].value must be between 1 and 100 characters"),
	ACCEPT("submit_accepts_option_label_of_200_characters", SINGLE("{'options':[{'value':'a','label':'`200:l`'}]}", "'a'")),
	REJECT("submit_rejects_option_label_over_200_characters", SINGLE("{'options':[{'value':'a','label':'`201:l`'}]}", "'a'"),
	       "response_config.options[0].label", "options[0].label must be between 1 and 200 characters"),
	REJECT("submit_rejects_option_description_over_500_characters",
	       SINGLE("{'options':[{'value':'a','label':'A','description':'`501:d`'}]}", "'a'"),
	       "response_config.options[0].description", "options[0].description must be at most 500 characters"),
	REJECT("submit_rejects_option_color_not_of_the_form_rrggbb",
	       SINGLE("{'options':[{'value':'a','label':'A','color':'red'}]}", "'a'"),
	       "response_config.options[0].color", "options[0].color must be a colour of the form #rrggbb"),
	REJECT("submit_rejects_duplicate_option_string", SINGLE("{'options':['a','b','a']}", "'a'"),
	       "response_config.options[2]", "duplicate option value: a"),
	REJECT("submit_rejects_duplicate_option_value_across_forms",
	       SINGLE("{'options':['a',{'value':'a','label':'Other'}]}", "'a'"),
	       "response_config.options[1].value", "duplicate option value: a"),
	ACCEPT("submit_accepts_allow_other_and_randomize_order",
	       SINGLE("{'options':['a'],'allow_other':true,'randomize_order':false}", "'a'")),
	REJECT("submit_rejects_allow_other_that_is_not_a_boolean", SINGLE("{'options':['a'],'allow_other':'yes'}", "'a'"),
	       "response_config.allow_other", "allow_other must be a boolean"),

	/* single_select default_response */
	ACCEPT_CHECK("submit_keeps_single_default_given_as_value",
	             SINGLE("{'options':[{'value':'ok','label':'Looks good'}]}", "'ok'"),
	             "default_response", "'ok'"),
	ACCEPT_CHECK("submit_maps_single_default_label_to_value",
	             SINGLE("{'options':[{'value':'ok','label':'Looks good'}]}", "'Looks good'"),
	             "default_response", "'ok'"),
	ACCEPT_CHECK("submit_maps_single_default_label_ignoring_case",
	             SINGLE("{'options':[{'value':'ok','label':'Looks good'}]}", "'LOOKS Good'"),
	             "default_response", "'ok'"),
	ACCEPT_CHECK("submit_maps_single_default_snake_case_label",
	             SINGLE("{'options':[{'value':'ok','label':'✅ Looks -- good!'}]}", "'looks_good'"),
	             "default_response", "'ok'"),
	ACCEPT_CHECK("submit_prefers_option_value_over_another_options_label",
	             SINGLE("{'options':[{'value':'a','label':'b'},{'value':'b','label':'c'}]}", "'b'"), "default_response", "'b'"),
	REJECT("submit_rejects_single_default_matching_no_option", SINGLE("{'options':['Approve','Reject']}", "'maybe'"),
	       "default_response", "default_response must be one of the option values"),
	REJECT("submit_rejects_single_default_that_is_not_a_string", SINGLE("{'options':['1','2']}", "1"),
	       "default_response", "default_response must be one of the option values"),

	/* multi_select */
	ACCEPT_CHECK("submit_maps_multi_default_to_option_values",
	             MULTI("{'options':[{'value':'spam','label':'Spam'},{'value':'misleading','label':'Misleading'}]}",
	                   "['Misleading','spam']"),
	             "default_response", "['misleading','spam']"),
	ACCEPT_CHECK("submit_accepts_empty_multi_default_by_default",
	             MULTI("{'options':['a','b']}", "[]"), "default_response", "[]"),
	REJECT("submit_rejects_multi_default_given_as_single_string", MULTI("{'options':['a','b']}", "'a'"),
	       "default_response", "default_response must be an array of option values"),
	REJECT("submit_rejects_multi_default_with_unknown_value", MULTI("{'options':['a','b']}", "['a','c']"),
	       "default_response", "default_response must be an array of option values"),
	REJECT("submit_rejects_multi_default_naming_one_option_twice", MULTI("{'options':['a','b']}", "['a','A']"),
	       "default_response", "default_response must be an array of distinct option values"),
	REJECT("submit_rejects_multi_default_with_fewer_than_min_selections",
	       MULTI("{'options':['a','b'],'min_selections':1}", "[]"),
	       "default_response", "default_response must be an array of between 1 and 2 option values"),
	REJECT("submit_rejects_multi_default_with_more_than_max_selections",
	       MULTI("{'options':['a','b'],'max_selections':1}", "['a','b']"),
	       "default_response", "default_response must be an array of between 0 and 1 option values"),
	ACCEPT("submit_accepts_multi_selection_bounds_equal",
	       MULTI("{'options':['a','b'],'min_selections':1,'max_selections':1}", "['b']")),
	REJECT("submit_rejects_negative_min_selections", MULTI("{'options':['a','b'],'min_selections':-1}", "[]"),
	       "response_config.min_selections", "min_selections must be between 0 and 2"),
	REJECT("submit_rejects_min_selections_above_option_count", MULTI("{'options':['a','b'],'min_selections':3}", "['a','b']"),
	       "response_config.min_selections", "min_selections must be between 0 and 2"),
	REJECT("submit_rejects_max_selections_above_option_count", MULTI("{'options':['a','b'],'max_selections':3}", "[]"),
	       "response_config.max_selections", "max_selections must be between 0 and the number of options (2)"),
	REJECT("submit_rejects_max_selections_below_min_selections",
	       MULTI("{'options':['a','b'],'min_selections':2,'max_selections':1}", "['a','b']"),
	       "response_config.max_selections", "max_selections must be >= min_selections"),
	REJECT("submit_rejects_min_selections_that_is_not_an_integer", MULTI("{'options':['a','b'],'min_selections':'1'}", "[]"),
	       "response_config.min_selections", "min_selections must be an integer"),

	/* rating */
	ACCEPT_CHECK("submit_normalises_rating_default_to_a_number", RATING("{'scale_max':5}", "3"), "default_response", "3.0"),
	REJECT("submit_rejects_rating_without_scale_max", RATING("{'scale_min':1}", "3"), "response_config.scale_max",
	       "scale_max is required"),
	REJECT("submit_rejects_scale_max_that_is_not_a_number", RATING("{'scale_max':'5'}", "3"), "response_config.scale_max",
	       "scale_max must be a number"),
	ACCEPT("submit_accepts_scale_max_100", RATING("{'scale_max':100}", "100")),
	REJECT("submit_rejects_scale_max_over_100", RATING("{'scale_max':101}", "3"), "response_config.scale_max",
	       "scale_max must be at most 100"),
	REJECT("submit_rejects_scale_min_not_below_scale_max", RATING("{'scale_min':5,'scale_max':5}", "5"),
	       "response_config.scale_min", "scale_min must be less than scale_max"),
	REJECT("submit_rejects_scale_max_not_above_default_scale_min", RATING("{'scale_max':1}", "1"),
	       "response_config.scale_max", "scale_max must be greater than scale_min (1)"),
	ACCEPT("submit_accepts_negative_scale_min", RATING("{'scale_min':-5,'scale_max':5}", "-3")),
	REJECT("submit_rejects_zero_scale_step", RATING("{'scale_max':5,'scale_step':0}", "3"), "response_config.scale_step",
	       "scale_step must be greater than 0"),
	ACCEPT_CHECK("submit_accepts_rating_default_on_half_step", RATING("{'scale_max':5,'scale_step':0.5}", "4.5"),
	             "default_response", "4.5"),
	REJECT("submit_rejects_rating_default_off_step", RATING("{'scale_max':5,'scale_step':0.5}", "4.25"),
	       "default_response", "default_response must be a number between 1 and 5 in steps of 0.5"),
	REJECT("submit_rejects_rating_default_above_scale", RATING("{'scale_max':5}", "6"), "default_response",
	       "default_response must be a number between 1 and 5"),
	REJECT("submit_rejects_rating_default_below_default_scale_min", RATING("{'scale_max':5}", "0"), "default_response",
	       "default_response must be a number between 1 and 5"),
	REJECT("submit_rejects_rating_default_that_is_not_a_number", RATING("{'scale_max':5}", "'3'"), "default_response",
	       "default_response must be a number between 1 and 5"),
	ACCEPT("submit_accepts_min_max_rating_aliases", RATING("{'min':0,'max':10}", "0")),
	REJECT("submit_applies_min_value_max_value_step_aliases", RATING("{'min_value':0,'max_value':10,'step':2}", "3"),
	       "default_response", "default_response must be a number between 0 and 10 in steps of 2"),
	REJECT("submit_prefers_canonical_scale_max_over_alias", RATING("{'scale_max':5,'max':10}", "7"), "default_response",
	       "default_response must be a number between 1 and 5"),
	REJECT("submit_names_the_alias_that_is_wrong", RATING("{'max':200}", "7"), "response_config.max",
	       "max must be at most 100"),
	ACCEPT("submit_accepts_rating_labels", RATING("{'scale_max':5,'labels':{'1':'Poor','5':'`100:E`'}}", "5")),
	REJECT("submit_rejects_rating_labels_that_are_not_an_object", RATING("{'scale_max':5,'labels':['Poor']}", "5"),
	       "response_config.labels", "labels must be an object"),
	REJECT("submit_rejects_rating_label_over_100_characters", RATING("{'scale_max':5,'labels':{'5':'`101:E`'}}", "5"),
	       "response_config.labels.5", "labels.5 must be at most 100 characters"),
	REJECT("submit_rejects_rating_label_that_is_not_a_string", RATING("{'scale_max':5,'labels':{'1':2}}", "5"),
	       "response_config.labels.1", "labels.1 must be a string"),

	/* number */
	ACCEPT_CHECK("submit_normalises_number_default", NUMBER("{'max_value':1000}", "299.99"), "default_response", "299.99"),
	REJECT("submit_rejects_number_without_max_value", NUMBER("{'min_value':0}", "1"), "response_config.max_value",
	       "max_value is required"),
	REJECT("submit_rejects_number_max_value_not_above_min_value", NUMBER("{'min_value':10,'max_value':10}", "10"),
	       "response_config.max_value", "max_value must be greater than min_value"),
	REJECT("submit_rejects_number_default_outside_range", NUMBER("{'max_value':1000}", "1001"), "default_response",
	       "default_response must be a number between 0 and 1000"),
	REJECT("submit_rejects_number_default_below_default_min_value", NUMBER("{'max_value':1000}", "-1"), "default_response",
	       "default_response must be a number between 0 and 1000"),
	ACCEPT("submit_accepts_decimal_places_10", NUMBER("{'max_value':1,'decimal_places':10}", "0.0000000001")),
	REJECT("submit_rejects_decimal_places_over_10", NUMBER("{'max_value':1000,'decimal_places':11}", "1"),
	       "response_config.decimal_places", "decimal_places must be between 0 and 10"),
	REJECT("submit_rejects_decimal_places_that_is_not_an_integer", NUMBER("{'max_value':1000,'decimal_places':1.5}", "1"),
	       "response_config.decimal_places", "decimal_places must be an integer"),
	REJECT("submit_rejects_number_default_with_more_than_default_2_decimals", NUMBER("{'max_value':1000}", "1.234"),
	       "default_response", "default_response must be a number with at most 2 decimal places"),
	ACCEPT("submit_accepts_large_number_with_2_decimals", NUMBER("{'max_value':1000000000}", "12345678.91")),
	/* x·100 lands 1/512 off an integer here: an absolute 1e-9 would refuse it. */
	ACCEPT("submit_accepts_2_decimals_where_scaling_is_inexact", NUMBER("{'max_value':1e12}", "174270101706.92")),
	REJECT("submit_rejects_3_decimals_on_a_large_number", NUMBER("{'max_value':1e12}", "174270101706.925"),
	       "default_response", "default_response must be a number with at most 2 decimal places"),
	ACCEPT("submit_accepts_integer_default_with_0_decimal_places", NUMBER("{'max_value':10,'decimal_places':0}", "5")),
	REJECT("submit_rejects_fraction_with_0_decimal_places", NUMBER("{'max_value':10,'decimal_places':0}", "5.5"),
	       "default_response", "default_response must be a number with at most 0 decimal places"),
	REJECT("submit_rejects_negative_number_default_without_allow_negative", NUMBER("{'min_value':-10,'max_value':10}", "-5"),
	       "default_response", "default_response must be a non-negative number"),
	ACCEPT_CHECK("submit_accepts_negative_number_default_with_allow_negative",
	             NUMBER("{'min_value':-10,'max_value':10,'allow_negative':true}", "-5"), "default_response", "-5.0"),
	REJECT("submit_rejects_allow_negative_that_is_not_a_boolean", NUMBER("{'max_value':10,'allow_negative':'no'}", "5"),
	       "response_config.allow_negative", "allow_negative must be a boolean"),
	ACCEPT("submit_accepts_number_display_strings",
	       NUMBER("{'max_value':10,'prefix':'$','suffix':' USD','placeholder':'`50:p`'}", "5")),
	REJECT("submit_rejects_number_prefix_over_50_characters", NUMBER("{'max_value':10,'prefix':'`51:$`'}", "5"),
	       "response_config.prefix", "prefix must be at most 50 characters"),
	REJECT("submit_rejects_number_default_that_is_not_a_number", NUMBER("{'max_value':10}", "'5'"), "default_response",
	       "default_response must be a number between 0 and 10"),

	/* editable_text */
	ACCEPT_CHECK("submit_accepts_editable_text_with_a_string_default",
	             RESPONSE("editable_text", "{'draft_text':'Dear customer,','max_length':200}", "'Dear customer,'"),
	             "default_response", "'Dear customer,'"),
	ACCEPT("submit_defaults_editable_max_length_to_5000", RESPONSE("editable_text", "{'draft_text':'`5000:d`'}", "'x'")),
	REJECT("submit_rejects_editable_text_without_draft_text", RESPONSE("editable_text", "{'max_length':10}", "'x'"),
	       "response_config.draft_text", "draft_text is required for editable_text"),
	REJECT("submit_rejects_editable_max_length_0", RESPONSE("editable_text", "{'draft_text':'d','max_length':0}", "'x'"),
	       "response_config.max_length", "max_length must be between 1 and 5000"),
	REJECT("submit_rejects_editable_max_length_over_5000",
	       RESPONSE("editable_text", "{'draft_text':'d','max_length':5001}", "'x'"),
	       "response_config.max_length", "max_length must be between 1 and 5000"),
	REJECT("submit_rejects_draft_longer_than_max_length",
	       RESPONSE("editable_text", "{'draft_text':'abcdef','max_length':5}", "'x'"),
	       "response_config.draft_text", "draft_text must be at most max_length (5) characters"),
	REJECT("submit_rejects_editable_default_longer_than_max_length",
	       RESPONSE("editable_text", "{'draft_text':'d','max_length':3}", "'abcd'"),
	       "default_response", "default_response must be between 0 and 3 characters"),
	REJECT("submit_rejects_editable_default_that_is_not_a_string",
	       RESPONSE("editable_text", "{'draft_text':'d'}", "{'revised_text':'d'}"),
	       "default_response", "default_response must be a string"),

	/* boolean */
	ACCEPT_CHECK("submit_accepts_boolean_with_empty_config", BOOLEAN("{}", "true"), "default_response", "true"),
	ACCEPT("submit_accepts_boolean_labels_and_colours",
	       BOOLEAN("{'true_label':'Approve','false_label':'`100:R`','true_color':'#16a34a','false_color':'#DC2626'}", "false")),
	REJECT("submit_rejects_boolean_default_that_is_not_a_boolean", BOOLEAN("{}", "'yes'"), "default_response",
	       "default_response must be a boolean"),
	REJECT("submit_rejects_boolean_label_over_100_characters", BOOLEAN("{'true_label':'`101:T`'}", "true"),
	       "response_config.true_label", "true_label must be between 1 and 100 characters"),
	REJECT("submit_rejects_empty_boolean_true_label", BOOLEAN("{'true_label':''}", "true"),
	       "response_config.true_label", "true_label must be between 1 and 100 characters"),
	REJECT("submit_rejects_empty_boolean_false_label", BOOLEAN("{'false_label':''}", "true"),
	       "response_config.false_label", "false_label must be between 1 and 100 characters"),
	REJECT("submit_rejects_boolean_colour_that_is_not_hex", BOOLEAN("{'false_color':'#GGGGGG'}", "true"),
	       "response_config.false_color", "false_color must be a colour of the form #rrggbb"),
};

static json_object *submit_params(const SubmitCase *c) {
	json_object *params, *patch;

	patch = parse(c->patch);
	if (c->raw)
		return patch;

	params = parse(BASE_SUBMIT);
	if (c->remove)
		json_object_object_del(params, c->remove);
	json_object_object_foreach(patch, key, value)
		json_object_object_add(params, key, json_object_get(value));
	json_object_put(patch);
	return params;
}

static void run_submit_case(void **state) {
	const SubmitCase *c = *state;
	_cleanup_(json_object_putp) json_object *params = submit_params(c), *create = NULL;
	ValidationError err = {};
	int r;

	r = validate_submit(params, &create, &err);
	if (c->rc < 0) {
		assert_error(r, c->rc, &err, c->field, c->reason);
		assert_null(create);
		return;
	}
	if (r < 0)
		fail_msg("rejected: field \"%s\": %s", err.field, err.reason);
	assert_non_null(create);
	if (c->key) {
		json_object *v;
		bool present = json_object_object_get_ex(create, c->key, &v);

		if (streq(c->value, ABSENT))
			assert_false(present);
		else {
			assert_true(present);
			assert_json_equal(v, c->value);
		}
	}
}

static void test_submit_output_is_exactly_the_create_request_fields_with_defaults(void **state) {
	_cleanup_(json_object_putp) json_object *params = parse(BASE_SUBMIT), *create = NULL;

	assert_int_equal(validate_submit(params, &create, NULL), 0);
	assert_json_equal(create,
	                  "{'loop_id':'" LOOP_ID "','request_text':'Approve this post?','response_type':'single_select',"
	                  "'response_config':{'options':['Approve','Reject']},'default_response':'Reject',"
	                  "'priority':'medium','processing_type':'deferred','type':'markdown',"
	                  "'platform':'api'}");
}

static void test_submit_output_does_not_share_objects_with_params(void **state) {
	_cleanup_(json_object_putp) json_object *params = parse(BASE_SUBMIT), *create = NULL;
	json_object *options;

	assert_int_equal(validate_submit(params, &create, NULL), 0);
	assert_true(json_object_object_get_ex(json_object_object_get(params, "response_config"), "options", &options));
	json_object_array_add(options, json_object_new_string("Escalate"));
	json_object_object_add(params, "request_text", json_object_new_string("changed"));

	assert_json_equal(json_object_object_get(create, "response_config"), "{'options':['Approve','Reject']}");
	assert_json_equal(json_object_object_get(create, "request_text"), "'Approve this post?'");
}

static void test_submit_leaves_ret_create_untouched_on_error(void **state) {
	_cleanup_(json_object_putp) json_object *params = parse("{'loop_id':'x'}");
	json_object *sentinel = (json_object *) 0x1, *create = sentinel;

	assert_int_equal(validate_submit(params, &create, NULL), -EINVAL);
	assert_ptr_equal(create, sentinel);
}

static void test_error_field_is_cut_at_a_character_boundary(void **state) {
	_cleanup_(json_object_putp) json_object *params = parse("{'`200:é`':1}");
	_cleanup_(json_object_putp) json_object *create = NULL;
	ValidationError err = {};

	assert_int_equal(validate_submit(params, &create, &err), -EINVAL);
	assert_true(strlen(err.field) < sizeof err.field);
	assert_true(strlen(err.field) >= sizeof err.field - 4);
	assert_true(utf8_is_valid(err.field));
	assert_string_equal(err.reason, "unknown field");
}

static void test_error_reason_is_cut_at_a_character_boundary(void **state) {
	_cleanup_(json_object_putp) json_object *params = parse(BASE_SUBMIT), *patch = NULL, *create = NULL;
	ValidationError err = {};

	/* "duplicate option value: " + 100 four-byte characters overflows the reason. */
	patch = parse(SINGLE("{'options':['`100:😀`','`100:😀`']}", "'a'"));
	json_object_object_foreach(patch, key, value)
		json_object_object_add(params, key, json_object_get(value));

	assert_int_equal(validate_submit(params, &create, &err), -EINVAL);
	assert_string_equal(err.field, "response_config.options[1]");
	assert_true(strncmp(err.reason, "duplicate option value: 😀", strlen("duplicate option value: 😀")) == 0);
	assert_true(strlen(err.reason) < sizeof err.reason);
	assert_true(strlen(err.reason) >= sizeof err.reason - 4);
	assert_true(utf8_is_valid(err.reason));
}

static void test_error_quoting_a_long_label_key_stays_valid_utf8(void **state) {
	_cleanup_(json_object_putp) json_object *params = parse(BASE_SUBMIT), *patch = NULL, *create = NULL;
	ValidationError err = {};

	/* The key is cut in the field path, and the reason quotes that path: an odd
	 * byte budget must not leave half an "é" in either. */
	patch = parse(RATING("{'scale_max':5,'labels':{'x`200:é`':5}}", "5"));
	json_object_object_foreach(patch, key, value)
		json_object_object_add(params, key, json_object_get(value));

	assert_int_equal(validate_submit(params, &create, &err), -EINVAL);
	assert_true(strncmp(err.field, "response_config.labels.xé", strlen("response_config.labels.xé")) == 0);
	assert_true(utf8_is_valid(err.field));
	assert_true(strncmp(err.reason, "labels.xé", strlen("labels.xé")) == 0);
	assert_true(utf8_is_valid(err.reason));
}

/* ---- validate_answer -------------------------------------------------------------- */

typedef struct AnswerCase {
	const char *name;
	const char *type;
	const char *config;
	const char *value;
	int rc;
	const char *field;
	const char *reason;
	const char *normalised;
} AnswerCase;

#define ANSWER_OK(n, t, c, v, norm) { .name = n, .type = t, .config = c, .value = v, .normalised = norm }
#define ANSWER_BAD(n, t, c, v, f, r) \
	{ .name = n, .type = t, .config = c, .value = v, .rc = -EINVAL, .field = f, .reason = r }

static const AnswerCase answer_cases[] = {
	ANSWER_OK("answer_text_returns_the_string_untrimmed", "text", "{}", "' hi '", "' hi '"),
	ANSWER_BAD("answer_rejects_text_over_max_length", "text", "{'max_length':2}", "'abc'",
	           "answer", "answer must be between 0 and 2 characters"),
	ANSWER_OK("answer_single_select_returns_option_value_for_label", "single_select",
	          "{'options':[{'value':'approve','label':'✅ Approve'}]}", "'✅ Approve'", "'approve'"),
	ANSWER_OK("answer_single_select_matches_snake_case_of_emoji_label", "single_select",
	          "{'options':[{'value':'a1','label':'✅ Approve it'}]}", "'approve_it'", "'a1'"),
	ANSWER_BAD("answer_rejects_single_select_value_of_no_option", "single_select", "{'options':['a']}", "'b'",
	           "answer", "answer must be one of the option values"),
	ANSWER_OK("answer_multi_select_returns_values_in_given_order", "multi_select",
	          "{'options':[{'value':'x','label':'X ray'},'y']}", "['y','x ray']", "['y','x']"),
	ANSWER_BAD("answer_rejects_multi_select_that_is_not_an_array", "multi_select", "{'options':['a']}", "'a'",
	           "answer", "answer must be an array of option values"),
	ANSWER_OK("answer_rating_returns_a_double", "rating", "{'scale_max':10,'scale_min':0}", "7", "7.0"),
	ANSWER_OK("answer_rating_tolerates_float_noise_on_step", "rating", "{'scale_min':0,'scale_max':1,'scale_step':0.1}",
	          "0.30000000000000004", "0.30000000000000004"),
	ANSWER_BAD("answer_rejects_rating_off_step", "rating", "{'scale_max':5}", "2.5",
	           "answer", "answer must be a number between 1 and 5 in steps of 1"),
	ANSWER_OK("answer_number_returns_a_double", "number", "{'max_value':100,'decimal_places':1}", "12.5", "12.5"),
	ANSWER_OK("answer_number_tolerates_float_noise_in_decimals", "number", "{'max_value':1,'decimal_places':1}",
	          "0.30000000000000004", "0.30000000000000004"),
	ANSWER_BAD("answer_rejects_number_with_too_many_decimals", "number", "{'max_value':100,'decimal_places':1}", "12.55",
	           "answer", "answer must be a number with at most 1 decimal places"),
	ANSWER_OK("answer_boolean_returns_a_bool", "boolean", "{}", "false", "false"),
	ANSWER_BAD("answer_rejects_boolean_given_as_number", "boolean", "{}", "0",
	           "answer", "answer must be a boolean"),
	ANSWER_BAD("answer_rejects_unknown_response_type", "slider", "{}", "1",
	           "response_type", "response_type must be one of: text, single_select, multi_select, rating, number, boolean, editable_text"),
	ANSWER_BAD("answer_reports_an_invalid_config_on_its_field", "single_select", "{'options':[]}", "'a'",
	           "response_config.options", "options array required for select response type"),
	ANSWER_BAD("answer_rejects_a_config_that_is_not_an_object", "rating", "5", "5",
	           "response_config", "response_config must be an object"),
};

static void run_answer_case(void **state) {
	const AnswerCase *c = *state;
	_cleanup_(json_object_putp) json_object *config = parse(c->config), *value = parse(c->value), *normalised = NULL;
	ValidationError err = {};
	int r;

	r = validate_answer(c->type, config, value, &normalised, &err);
	if (c->rc < 0) {
		assert_error(r, c->rc, &err, c->field, c->reason);
		assert_null(normalised);
		return;
	}
	if (r < 0)
		fail_msg("rejected: field \"%s\": %s", err.field, err.reason);
	assert_json_equal(normalised, c->normalised);
}

static void test_answer_accepts_null_ret_normalised(void **state) {
	_cleanup_(json_object_putp) json_object *config = parse("{'options':['a','b']}"), *value = parse("['b']");

	assert_int_equal(validate_answer("multi_select", config, value, NULL, NULL), 0);
}

/* ---- validate_normalise_result ---------------------------------------------------- */

typedef struct NormaliseCase {
	const char *name;
	const char *type;
	const char *config;
	const char *data;
	int rc;
	const char *result;
} NormaliseCase;

#define APPROVE_REJECT "{'options':[{'value':'approve','label':'✅ Approve'},{'value':'reject','label':'Reject'}]}"
#define SPAM_OPTIONS "{'options':[{'value':'spam','label':'Spam'},{'value':'misleading','label':'Misleading content'}]}"

static const NormaliseCase normalise_cases[] = {
	{ "result_text_plain_is_the_string", "text", "{}", "'free text'", 0, "'free text'" },
	{ "result_editable_is_the_revised_text", "editable_text", "{'draft_text':'Hi'}",
	  "{'revised_text':'Hello there','was_edited':true}", 0, "'Hello there'" },
	{ "result_editable_unedited_without_text_is_the_draft", "editable_text", "{'draft_text':'Hi'}",
	  "{'was_edited':false}", 0, "'Hi'" },
	{ "result_editable_plain_string_is_the_text", "editable_text", "{'draft_text':'Hi'}", "'Hey'", 0, "'Hey'" },
	{ "result_editable_rejects_revised_text_of_wrong_type", "editable_text", "{'draft_text':'Hi'}",
	  "{'revised_text':1,'was_edited':true}", -EBADMSG, NULL },
	{ "result_editable_rejects_edited_without_text", "editable_text", "{'draft_text':'Hi'}",
	  "{'was_edited':true}", -EBADMSG, NULL },
	{ "result_text_rejects_a_number", "text", "{}", "5", -EBADMSG, NULL },
	{ "result_text_rejects_an_object", "text", "{}", "{'text':'x'}", -EBADMSG, NULL },

	{ "result_single_plain_value", "single_select", APPROVE_REJECT, "'approve'", 0, "'approve'" },
	{ "result_single_plain_label_maps_to_value", "single_select", APPROVE_REJECT, "'✅ Approve'", 0, "'approve'" },
	{ "result_single_plain_snake_case_label_maps_to_value", "single_select",
	  "{'options':[{'value':'v','label':'Needs Work!'}]}",
	  "'needs_work'", 0, "'v'" },
	{ "result_single_structured_value_and_label", "single_select", APPROVE_REJECT,
	  "{'selected_value':'approve','selected_label':'✅ Approve'}", 0, "'approve'" },
	{ "result_single_structured_value_without_label", "single_select", APPROVE_REJECT, "{'selected_value':'reject'}", 0,
	  "'reject'" },
	{ "result_single_structured_value_that_is_a_label_maps_to_value", "single_select", APPROVE_REJECT,
	  "{'selected_value':'Reject'}", 0, "'reject'" },
	{ "result_single_structured_label_only_maps_to_value", "single_select", APPROVE_REJECT,
	  "{'selected_label':'✅ Approve'}", 0, "'approve'" },
	{ "result_single_unknown_value_falls_back_to_label", "single_select", "{'options':['Approve','Reject']}",
	  "{'selected_value':'opt_x','selected_label':'Reject'}", 0, "'Reject'" },
	{ "result_single_generated_option_n_names_the_nth_string_option", "single_select", "{'options':['Approve','Reject']}",
	  "{'selected_value':'option_2'}", 0, "'Reject'" },
	{ "result_single_option_n_is_not_mapped_for_object_options", "single_select", APPROVE_REJECT, "'option_2'", 0,
	  "'option_2'" },
	{ "result_single_unmatched_value_is_kept", "single_select", APPROVE_REJECT, "'something else'", 0,
	  "'something else'" },
	{ "result_single_rejects_a_number", "single_select", APPROVE_REJECT, "1", -EBADMSG, NULL },
	{ "result_single_rejects_structured_value_of_wrong_type", "single_select", APPROVE_REJECT,
	  "{'selected_value':1,'selected_label':'Reject'}", -EBADMSG, NULL },
	{ "result_single_rejects_object_without_value_or_label", "single_select", APPROVE_REJECT, "{'rating':1}", -EBADMSG,
	  NULL },

	{ "result_multi_plain_values_and_labels", "multi_select", SPAM_OPTIONS, "['Misleading content','spam']", 0,
	  "['misleading','spam']" },
	{ "result_multi_structured_values_and_labels", "multi_select", SPAM_OPTIONS,
	  "{'selected_values':['spam','misleading'],'selected_labels':['Spam','Misleading content']}", 0,
	  "['spam','misleading']" },
	{ "result_multi_structured_labels_only", "multi_select", SPAM_OPTIONS,
	  "{'selected_labels':['Misleading content']}", 0, "['misleading']" },
	{ "result_multi_structured_unknown_values_fall_back_to_labels", "multi_select", SPAM_OPTIONS,
	  "{'selected_values':['option_9','x'],'selected_labels':['Spam','Misleading content']}", 0,
	  "['spam','misleading']" },
	{ "result_multi_lone_string_becomes_one_element_array", "multi_select", SPAM_OPTIONS, "'Spam'", 0, "['spam']" },
	{ "result_multi_empty_array", "multi_select", SPAM_OPTIONS, "{'selected_values':[]}", 0, "[]" },
	{ "result_multi_rejects_non_string_element", "multi_select", SPAM_OPTIONS, "['spam',2]", -EBADMSG, NULL },
	{ "result_multi_rejects_selected_values_that_is_not_an_array", "multi_select", SPAM_OPTIONS,
	  "{'selected_values':'spam'}", -EBADMSG, NULL },
	{ "result_multi_rejects_a_number", "multi_select", SPAM_OPTIONS, "3", -EBADMSG, NULL },

	{ "result_rating_plain_number", "rating", "{'scale_max':5}", "4", 0, "4.0" },
	{ "result_rating_structured_with_label", "rating", "{'scale_max':5,'scale_step':0.5}",
	  "{'rating':4.5,'rating_label':'Good'}", 0, "4.5" },
	{ "result_rating_rejects_numeric_string", "rating", "{'scale_max':5}", "'4'", -EBADMSG, NULL },
	{ "result_rating_rejects_structured_rating_that_is_not_a_number", "rating", "{'scale_max':5}", "{'rating':'4'}",
	  -EBADMSG, NULL },
	{ "result_rating_rejects_object_without_rating", "rating", "{'scale_max':5}", "{'rating_label':'Good'}", -EBADMSG,
	  NULL },

	{ "result_number_plain", "number", "{'max_value':1000}", "299.99", 0, "299.99" },
	{ "result_number_structured_with_formatted_value", "number", "{'max_value':1000,'prefix':'$'}",
	  "{'number':299.99,'formatted_value':'$299.99 USD'}", 0, "299.99" },
	{ "result_number_rejects_formatted_value_only", "number", "{'max_value':1000}", "{'formatted_value':'$1'}",
	  -EBADMSG, NULL },
	{ "result_number_rejects_null", "number", "{'max_value':1000}", "null", -EBADMSG, NULL },

	{ "result_boolean_plain", "boolean", "{}", "true", 0, "true" },
	{ "result_boolean_structured_with_label", "boolean", "{}", "{'boolean':false,'boolean_label':'✅ Normal - Approve'}",
	  0, "false" },
	{ "result_boolean_rejects_string", "boolean", "{}", "'true'", -EBADMSG, NULL },

	{ "result_rejects_unknown_response_type", "slider", "{}", "1", -EINVAL, NULL },
	{ "result_rejects_invalid_config", "single_select", "{}", "'a'", -EINVAL, NULL },
};

static void run_normalise_case(void **state) {
	const NormaliseCase *c = *state;
	_cleanup_(json_object_putp) json_object *config = parse(c->config), *data = parse(c->data), *result = NULL;
	int r;

	r = validate_normalise_result(c->type, config, data, &result);
	assert_int_equal(r, c->rc);
	if (c->rc < 0) {
		assert_null(result);
		return;
	}
	assert_json_equal(result, c->result);
}

/* ---- feedback --------------------------------------------------------------------- */

typedef struct FeedbackCase {
	const char *name;
	const char *feedback;
	int rc;
	const char *field;
	const char *reason;
} FeedbackCase;

#define FEEDBACK_OK(n, fb) { .name = n, .feedback = fb }
#define FEEDBACK_BAD(n, fb, f, r) { .name = n, .feedback = fb, .rc = -EINVAL, .field = f, .reason = r }

static const FeedbackCase feedback_cases[] = {
	FEEDBACK_OK("feedback_accepts_documented_example", "{'rating':5,'comment':'Excellent review!','category':'positive'}"),
	FEEDBACK_OK("feedback_accepts_every_documented_field",
	            "{'rating':1,'accuracy':5,'timeliness':2.5,'helpfulness':4.5,'comment':'`1000:é`',"
	            "'would_recommend':true,'follow_up_needed':false,'tags':['thorough','`100:q`'],'category':'issue'}"),
	FEEDBACK_OK("feedback_accepts_unknown_keys", "{'custom':{'x':[1,2]}}"),
	FEEDBACK_BAD("feedback_rejects_non_object", "'great'", "feedback", "feedback must be a non-empty object"),
	FEEDBACK_BAD("feedback_rejects_empty_object", "{}", "feedback", "feedback must be a non-empty object"),
	FEEDBACK_BAD("feedback_rejects_rating_above_5", "{'rating':6}",
	             "feedback.rating", "Rating values must be between 1 and 5"),
	FEEDBACK_BAD("feedback_rejects_rating_below_1", "{'rating':0}",
	             "feedback.rating", "Rating values must be between 1 and 5"),
	FEEDBACK_BAD("feedback_rejects_accuracy_out_of_range", "{'accuracy':0.5}",
	             "feedback.accuracy", "Rating values must be between 1 and 5"),
	FEEDBACK_BAD("feedback_rejects_timeliness_out_of_range", "{'timeliness':5.5}",
	             "feedback.timeliness", "Rating values must be between 1 and 5"),
	FEEDBACK_BAD("feedback_rejects_helpfulness_out_of_range", "{'helpfulness':-1}",
	             "feedback.helpfulness", "Rating values must be between 1 and 5"),
	FEEDBACK_BAD("feedback_rejects_rating_that_is_not_a_number", "{'rating':'5'}",
	             "feedback.rating", "rating must be a number"),
	FEEDBACK_BAD("feedback_rejects_comment_over_1000_characters", "{'comment':'`1001:c`'}",
	             "feedback.comment", "Comment exceeds maximum length of 1000 characters"),
	FEEDBACK_BAD("feedback_rejects_comment_that_is_not_a_string", "{'comment':5}",
	             "feedback.comment", "comment must be a string"),
	FEEDBACK_BAD("feedback_rejects_would_recommend_that_is_not_a_boolean", "{'would_recommend':'yes'}",
	             "feedback.would_recommend", "would_recommend must be a boolean"),
	FEEDBACK_BAD("feedback_rejects_follow_up_needed_that_is_not_a_boolean", "{'follow_up_needed':1}",
	             "feedback.follow_up_needed", "follow_up_needed must be a boolean"),
	FEEDBACK_BAD("feedback_rejects_more_than_20_tags", "{'tags':[`20:'t',`'t']}",
	             "feedback.tags", "tags must be an array of at most 20 strings"),
	FEEDBACK_BAD("feedback_rejects_tag_over_100_characters", "{'tags':['`101:t`']}",
	             "feedback.tags[0]", "tags[0] must be at most 100 characters"),
	FEEDBACK_BAD("feedback_rejects_tag_that_is_not_a_string", "{'tags':[true]}",
	             "feedback.tags[0]", "tags[0] must be a string"),
	FEEDBACK_BAD("feedback_rejects_unknown_category", "{'category':'neutral'}",
	             "feedback.category", "category must be one of: positive, constructive, issue"),
	FEEDBACK_BAD("feedback_rejects_serialised_size_over_16KB", "{'custom':'`16384:x`'}",
	             "feedback", "feedback must be under 16KB"),
	FEEDBACK_OK("feedback_accepts_unknown_key_nested_32_deep", "{'x':`31:{'a':`1`31:}`}"),
	FEEDBACK_BAD("feedback_rejects_unknown_key_nested_33_deep", "{'x':`32:{'a':`1`32:}`}", "feedback",
	             "feedback is nested too deeply"),
	FEEDBACK_BAD("feedback_rejects_invalid_utf8_in_unknown_key", "{'x':'\xc3('}", "feedback",
	             "feedback must be valid UTF-8"),
	FEEDBACK_OK("feedback_accepts_serialised_size_just_under_16KB", "{'custom':'`16370:x`'}"),
};

static void run_feedback_case(void **state) {
	const FeedbackCase *c = *state;
	_cleanup_(json_object_putp) json_object *feedback = parse(c->feedback);
	ValidationError err = {};
	int r;

	r = validate_feedback(feedback, &err);
	if (c->rc < 0) {
		assert_error(r, c->rc, &err, c->field, c->reason);
		return;
	}
	if (r < 0)
		fail_msg("rejected: field \"%s\": %s", err.field, err.reason);
}

/* ---- loops ------------------------------------------------------------------------ */

typedef struct LoopCase {
	const char *name;
	bool update;
	const char *params;
	int rc;
	const char *field;
	const char *reason;
} LoopCase;

#define LOOP_OK(n, u, p) { .name = n, .update = u, .params = p }
#define LOOP_BAD(n, u, p, f, r) { .name = n, .update = u, .params = p, .rc = -EINVAL, .field = f, .reason = r }

static const LoopCase loop_cases[] = {
	LOOP_OK("loop_create_accepts_name_and_icon", false, "{'name':'Content Moderation Review','icon':'shield-check'}"),
	LOOP_OK("loop_create_accepts_description_of_500_characters", false,
	        "{'name':'`100:n`','description':'`500:d`','icon':'`100:i`'}"),
	LOOP_BAD("loop_create_rejects_params_that_are_not_an_object", false, "[]",
	         "params", "params must be an object"),
	LOOP_BAD("loop_create_rejects_missing_name", false, "{'icon':'eye'}", "name", "name is required"),
	LOOP_BAD("loop_create_rejects_empty_name", false, "{'name':'','icon':'eye'}",
	         "name", "name must be between 1 and 100 characters"),
	LOOP_BAD("loop_create_rejects_name_over_100_characters", false, "{'name':'`101:n`','icon':'eye'}",
	         "name", "name must be between 1 and 100 characters"),
	LOOP_BAD("loop_create_rejects_description_over_500_characters", false, "{'name':'n','description':'`501:d`','icon':'eye'}",
	         "description", "description must be at most 500 characters"),
	LOOP_BAD("loop_create_rejects_missing_icon", false, "{'name':'n'}", "icon", "icon is required"),
	LOOP_BAD("loop_create_rejects_icon_over_100_characters", false, "{'name':'n','icon':'`101:i`'}",
	         "icon", "icon must be between 1 and 100 characters"),
	LOOP_BAD("loop_create_rejects_name_that_is_not_a_string", false, "{'name':5,'icon':'eye'}",
	         "name", "name must be a string"),
	LOOP_BAD("loop_create_rejects_unknown_field", false, "{'name':'n','icon':'eye','id':'" LOOP_ID "'}",
	         "id", "unknown field"),
	LOOP_OK("loop_update_accepts_one_field", true, "{'icon':'eye'}"),
	LOOP_OK("loop_update_accepts_description_only", true, "{'description':''}"),
	LOOP_BAD("loop_update_rejects_empty_params", true, "{}",
	         "params", "At least one field must be provided for update"),
	LOOP_BAD("loop_update_rejects_empty_name", true, "{'name':''}",
	         "name", "name must be between 1 and 100 characters"),
	LOOP_BAD("loop_update_rejects_unknown_field", true, "{'members':[]}", "members", "unknown field"),
};

static void run_loop_case(void **state) {
	const LoopCase *c = *state;
	_cleanup_(json_object_putp) json_object *params = parse(c->params);
	ValidationError err = {};
	int r;

	r = c->update ? validate_loop_update(params, &err) : validate_loop_create(params, &err);
	if (c->rc < 0) {
		assert_error(r, c->rc, &err, c->field, c->reason);
		return;
	}
	if (r < 0)
		fail_msg("rejected: field \"%s\": %s", err.field, err.reason);
}

/* ---- object ids ------------------------------------------------------------------- */

static void test_object_id_accepts_24_hex_digits_in_either_case(void **state) {
	assert_true(validate_object_id("65f1234567890abcdef12345"));
	assert_true(validate_object_id("65F1234567890ABCDEF12345"));
}

static void test_object_id_rejects_wrong_length_non_hex_and_null(void **state) {
	assert_false(validate_object_id("65f1234567890abcdef1234"));
	assert_false(validate_object_id("65f1234567890abcdef123456"));
	assert_false(validate_object_id("65f1234567890abcdef1234g"));
	assert_false(validate_object_id(""));
	assert_false(validate_object_id(NULL));
}

/* ---- runner ----------------------------------------------------------------------- */

#define ADD_TABLE(tests, n, table, func)                                           \
	for (size_t _i = 0; _i < ELEMENTSOF(table); _i++)                          \
		tests[n++] = (struct CMUnitTest) { .name = table[_i].name, .test_func = func, \
		                                   .initial_state = (void *) &table[_i] }

int main(void) {
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_submit_output_is_exactly_the_create_request_fields_with_defaults),
		cmocka_unit_test(test_submit_output_does_not_share_objects_with_params),
		cmocka_unit_test(test_submit_leaves_ret_create_untouched_on_error),
		cmocka_unit_test(test_error_field_is_cut_at_a_character_boundary),
		cmocka_unit_test(test_error_reason_is_cut_at_a_character_boundary),
		cmocka_unit_test(test_error_quoting_a_long_label_key_stays_valid_utf8),
		cmocka_unit_test(test_answer_accepts_null_ret_normalised),
		cmocka_unit_test(test_object_id_accepts_24_hex_digits_in_either_case),
		cmocka_unit_test(test_object_id_rejects_wrong_length_non_hex_and_null),
	};
	size_t total = ELEMENTSOF(fixed) + ELEMENTSOF(submit_cases) + ELEMENTSOF(answer_cases) +
	               ELEMENTSOF(normalise_cases) + ELEMENTSOF(feedback_cases) + ELEMENTSOF(loop_cases);
	_cleanup_(freep) struct CMUnitTest *tests = calloc(total, sizeof *tests);
	size_t n = 0;

	if (!tests)
		return EXIT_FAILURE;
	for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
		tests[n++] = fixed[i];
	ADD_TABLE(tests, n, submit_cases, run_submit_case);
	ADD_TABLE(tests, n, answer_cases, run_answer_case);
	ADD_TABLE(tests, n, normalise_cases, run_normalise_case);
	ADD_TABLE(tests, n, feedback_cases, run_feedback_case);
	ADD_TABLE(tests, n, loop_cases, run_loop_case);

	return _cmocka_run_group_tests("validate", tests, n, NULL, NULL);
}
