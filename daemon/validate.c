/* validate.c — HITL.sh's validation rules for a create request, feedback and
 * loops (docs/HITL-API.md), applied before anything is queued; the response
 * types and answers are respconfig.c's and answer.c's, the shared field
 * checks vcheck.c's (see validate.h). */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "answer.h"
#include "cleanup.h"
#include "respconfig.h"
#include "utf8.h"
#include "validate.h"
#include "vcheck.h"

#define FILE_NAME_MAX 255
#define FILE_TYPE_MAX 100
#define PLATFORM_VERSION_MAX 50
#define FEEDBACK_TAGS_MAX 20
#define FEEDBACK_TAG_MAX 100
#define FEEDBACK_COMMENT_MAX 1000
#define LOOP_NAME_MAX 100
#define LOOP_DESCRIPTION_MAX 500
#define LOOP_ICON_MAX 100
#define OBJECT_ID_LEN 24

static const char *const priority_names[] = { "low", "medium", "high", "critical" };
static const char *const processing_type_names[] = { "time-sensitive", "deferred" };
static const char *const content_type_names[] = { "markdown", "image", "file", "video", "audio" };

/* The URL field each content type requires; every other one is refused, so
 * that no field HITL.sh does not expect for the type is sent. */
static const char *const content_url_fields[] = { NULL, "image_url", "file_url", "video_url", "audio_url" };
static const char *const platform_names[] = { "n8n", "zapier", "web_portal", "api", "mobile", "webhook" };
static const char *const category_names[] = { "positive", "constructive", "issue" };

static const char *const submit_fields[] = {
	"loop_id", "request_text", "response_type", "response_config", "default_response",
	"priority", "processing_type", "type", "image_url", "file_url", "file_type", "file_name",
	"video_url", "audio_url", "timeout_seconds", "context", "callback_url", "platform",
	"platform_version",
};

static const char *const loop_fields[] = { "name", "description", "icon" };

static int check_context(json_object *context, ValidationError *err) {
	json_object *reserved;
	int r;

	if (!json_object_is_type(context, json_type_object))
		return vcheck_fail(err, "context", "context must be an object");

	/* Depth first: it bounds the serialiser's recursion below. */
	r = vcheck_json_tree(context, 0);
	if (r == -E2BIG)
		return vcheck_fail(err, "context", "context is nested too deeply");
	if (r < 0)
		return vcheck_fail(err, "context", "context must be valid UTF-8");

	if (json_object_object_get_ex(context, "hitld_id", &reserved))
		return vcheck_fail(err, "context.hitld_id", "context.hitld_id is reserved");

	if (vcheck_serialised_size(context) > VALIDATE_CONTEXT_SIZE_MAX)
		return vcheck_fail(err, "context", "context must be under 50KB");
	return 0;
}

/* ---- request.submit --------------------------------------------------------------- */

static int add_copy(json_object *dst, const char *key, json_object *src) {
	json_object *copy = NULL;

	if (json_object_deep_copy(src, &copy, NULL) < 0)
		return -ENOMEM;
	if (json_object_object_add(dst, key, copy) < 0) {
		json_object_put(copy);
		return -ENOMEM;
	}
	return 0;
}

static int add_new(json_object *dst, const char *key, json_object *value) {
	if (!value || json_object_object_add(dst, key, value) < 0) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

/* Reads an optional enum field of params; *ret = def when absent or null. */
static int submit_enum(json_object *params, const char *key, const char *const *names, size_t n,
                       const char *def, const char **ret, ValidationError *err) {
	json_object *v = json_object_object_get(params, key);
	int i;

	if (!v) {
		*ret = def;
		return 0;
	}
	i = vcheck_enum(v, key, names, n, err);
	if (i < 0)
		return i;
	*ret = names[i];
	return 0;
}

static int check_loop_id(json_object *v, ValidationError *err) {
	const char *s;
	size_t len;

	if (!v)
		return vcheck_fail(err, "loop_id", "loop_id is required");
	if (!vcheck_get_string(v, &s, &len))
		return vcheck_fail(err, "loop_id", "loop_id must be a string");
	if (len != OBJECT_ID_LEN || !validate_object_id(s))
		return vcheck_fail(err, "loop_id", "Invalid loop ID format");
	return 0;
}

/* 60–86400 for every request (the API's schema and its errors page); a
 * deferred request without one gets no timeout_seconds at all (*ret = 0) and
 * HITL.sh's own default, 30 days. */
static int check_timeout(json_object *v, bool time_sensitive, int64_t *ret, ValidationError *err) {
	int64_t t;

	if (!v) {
		if (time_sensitive)
			return vcheck_fail(err, "timeout_seconds", "timeout_seconds is required for time-sensitive requests");
		*ret = 0;
		return 0;
	}
	if (!vcheck_get_integer(v, &t))
		return vcheck_fail(err, "timeout_seconds", "timeout_seconds must be an integer");
	if (t < VALIDATE_TIMEOUT_MIN || t > VALIDATE_TIMEOUT_MAX)
		return vcheck_fail(err, "timeout_seconds", "timeout_seconds must be between %d and %d", VALIDATE_TIMEOUT_MIN,
		            VALIDATE_TIMEOUT_MAX);
	*ret = t;
	return 0;
}

/* The content type's fields: its own URL is required, another type's URL is
 * refused (HITL.sh would not show it, and a strict server rejects it), and a
 * file also needs file_type and file_name. */
static int check_content(json_object *params, int content_type, ValidationError *err) {
	json_object *v;
	int r;

	for (size_t i = 1; i < ELEMENTSOF(content_url_fields); i++) {
		const char *field = content_url_fields[i];

		v = json_object_object_get(params, field);
		if ((int) i == content_type && !v)
			return vcheck_fail(err, field, "%s is required when type is '%s'", field, content_type_names[i]);
		if ((int) i != content_type && v)
			return vcheck_fail(err, field, "%s is only for type '%s' (type is '%s')", field, content_type_names[i],
			            content_type_names[content_type]);
		if (v) {
			r = vcheck_url(v, field, err);
			if (r < 0)
				return r;
		}
	}

	static const struct {
		const char *field;
		size_t max;
	} file_fields[] = { { "file_type", FILE_TYPE_MAX }, { "file_name", FILE_NAME_MAX } };
	for (size_t i = 0; i < ELEMENTSOF(file_fields); i++) {
		v = json_object_object_get(params, file_fields[i].field);
		if (streq(content_type_names[content_type], "file") && !v)
			return vcheck_fail(err, file_fields[i].field, "%s is required when type is 'file'", file_fields[i].field);
		if (!streq(content_type_names[content_type], "file") && v)
			return vcheck_fail(err, file_fields[i].field, "%s is only for type 'file'", file_fields[i].field);
		if (v) {
			r = vcheck_string(v, file_fields[i].field, 1, file_fields[i].max, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* request.submit's fields once checked: borrowed from params, but for the
 * normalised default_response. A JSON null counts as absent: the field is
 * neither checked nor sent. */
typedef struct SubmitFields {
	json_object *loop_id, *request_text, *callback_url, *context, *platform_version, *response_config;
	json_object *default_response;   /* normalised, owned */
	const char *priority, *processing_type, *content_type, *platform;
	ResponseType type;
	int64_t timeout;                 /* 0: none (deferred, HITL.sh's default) */
} SubmitFields;

static void submit_fields_done(SubmitFields *f) {
	json_object_put(TAKE_PTR(f->default_response));
}

/* loop_id, request_text, priority, processing_type, the content type and its
 * fields, timeout_seconds: what the request is and how urgent. */
static int submit_check_request(json_object *params, SubmitFields *f, ValidationError *err) {
	int r, content = 0;

	f->loop_id = json_object_object_get(params, "loop_id");
	f->request_text = json_object_object_get(params, "request_text");

	r = check_loop_id(f->loop_id, err);
	if (r < 0)
		return r;

	if (!f->request_text)
		return vcheck_fail(err, "request_text", "request_text is required");
	r = vcheck_string(f->request_text, "request_text", 1, VALIDATE_REQUEST_TEXT_MAX, err);
	if (r < 0)
		return r;

	r = submit_enum(params, "priority", priority_names, ELEMENTSOF(priority_names), "medium", &f->priority, err);
	if (r < 0)
		return r;
	r = submit_enum(params, "processing_type", processing_type_names, ELEMENTSOF(processing_type_names),
	                "deferred", &f->processing_type, err);
	if (r < 0)
		return r;
	r = submit_enum(params, "type", content_type_names, ELEMENTSOF(content_type_names), "markdown",
	                &f->content_type, err);
	if (r < 0)
		return r;
	/* submit_enum() returned one of the names: find which. */
	while (!streq(content_type_names[content], f->content_type))
		content++;
	r = check_content(params, content, err);
	if (r < 0)
		return r;

	return check_timeout(json_object_object_get(params, "timeout_seconds"),
	                     streq(f->processing_type, "time-sensitive"), &f->timeout, err);
}

/* callback_url, context, platform, platform_version: where the answer goes and
 * what comes with the request. */
static int submit_check_extras(json_object *params, SubmitFields *f, ValidationError *err) {
	int r;

	f->callback_url = json_object_object_get(params, "callback_url");
	f->context = json_object_object_get(params, "context");
	f->platform_version = json_object_object_get(params, "platform_version");

	if (f->callback_url) {
		r = vcheck_url(f->callback_url, "callback_url", err);
		if (r < 0)
			return r;
	}
	if (f->context) {
		r = check_context(f->context, err);
		if (r < 0)
			return r;
	}
	r = submit_enum(params, "platform", platform_names, ELEMENTSOF(platform_names), "api", &f->platform, err);
	if (r < 0)
		return r;
	if (f->platform_version)
		return vcheck_string(f->platform_version, "platform_version", 0, PLATFORM_VERSION_MAX, err);
	return 0;
}

/* response_type, response_config, default_response: what the reviewer answers,
 * and the answer that stands if nobody does (normalised). */
static int submit_check_response(json_object *params, SubmitFields *f, ValidationError *err) {
	json_object *response_type = json_object_object_get(params, "response_type"),
		*default_response = json_object_object_get(params, "default_response");
	ResponseSpec spec;
	int r, type;

	f->response_config = json_object_object_get(params, "response_config");

	if (!response_type)
		return vcheck_fail(err, "response_type", "response_type is required");
	type = vcheck_enum(response_type, "response_type", respconfig_type_names, _RESPONSE_TYPE_MAX, err);
	if (type < 0)
		return type;
	f->type = (ResponseType) type;
	if (!f->response_config)
		return vcheck_fail(err, "response_config", "response_config is required");
	r = respconfig_parse(f->type, f->response_config, &spec, err);
	if (r < 0)
		return r;

	if (!default_response)
		return vcheck_fail(err, "default_response", "default_response is required");
	return answer_check(&spec, default_response, "default_response", &f->default_response, err);
}

/* The create-request body HITL.sh will get, from fields all checked. */
static int submit_build(json_object *params, SubmitFields *f, json_object **ret_create) {
	static const char *const content_fields[] = { "image_url", "file_url", "file_type", "file_name",
		                                              "video_url", "audio_url" };
	_cleanup_(json_object_putp) json_object *create = json_object_new_object();
	int r;

	if (!create)
		return -ENOMEM;
	r = add_copy(create, "loop_id", f->loop_id);
	if (r >= 0)
		r = add_copy(create, "request_text", f->request_text);
	if (r >= 0)
		r = add_new(create, "response_type", json_object_new_string(respconfig_type_names[f->type]));
	if (r >= 0)
		r = add_copy(create, "response_config", f->response_config);
	if (r >= 0)
		r = add_new(create, "default_response", TAKE_PTR(f->default_response));
	if (r >= 0)
		r = add_new(create, "priority", json_object_new_string(f->priority));
	if (r >= 0)
		r = add_new(create, "processing_type", json_object_new_string(f->processing_type));
	if (r >= 0)
		r = add_new(create, "type", json_object_new_string(f->content_type));
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(content_fields); i++) {
		json_object *v = json_object_object_get(params, content_fields[i]);

		if (v)
			r = add_copy(create, content_fields[i], v);
	}
	if (r >= 0 && f->timeout > 0)
		r = add_new(create, "timeout_seconds", json_object_new_int64(f->timeout));
	if (r >= 0 && f->context)
		r = add_copy(create, "context", f->context);
	if (r >= 0 && f->callback_url)
		r = add_copy(create, "callback_url", f->callback_url);
	if (r >= 0)
		r = add_new(create, "platform", json_object_new_string(f->platform));
	if (r >= 0 && f->platform_version)
		r = add_copy(create, "platform_version", f->platform_version);
	if (r < 0)
		return r;

	*ret_create = TAKE_PTR(create);
	return 0;
}

int validate_submit(json_object *params, json_object **ret_create, ValidationError *err) {
	_cleanup_(submit_fields_done) SubmitFields f = {};
	int r;

	assert(ret_create);

	if (!json_object_is_type(params, json_type_object))
		return vcheck_fail(err, "params", "params must be an object");
	/* The vendor's MCP client sends tags, the API does not document them, and a
	 * strict server refuses what it does not know. */
	if (json_object_object_get(params, "tags"))
		return vcheck_fail(err, "tags", "tags is not a HITL.sh request field; put such labels in context");
	r = vcheck_known_fields(params, submit_fields, ELEMENTSOF(submit_fields), err);
	if (r < 0)
		return r;

	r = submit_check_request(params, &f, err);
	if (r < 0)
		return r;
	r = submit_check_extras(params, &f, err);
	if (r < 0)
		return r;
	r = submit_check_response(params, &f, err);
	if (r < 0)
		return r;
	return submit_build(params, &f, ret_create);
}
/* ---- request.feedback ------------------------------------------------------------- */

int validate_feedback(json_object *feedback, ValidationError *err) {
	static const char *const rating_keys[] = { "rating", "accuracy", "timeliness", "helpfulness" };
	static const char *const bool_keys[] = { "would_recommend", "follow_up_needed" };
	char field[VCHECK_FIELD_MAX];
	const char *s;
	size_t len, count;
	json_object *v;
	double x;
	int r;

	if (!json_object_is_type(feedback, json_type_object) || json_object_object_length(feedback) == 0)
		return vcheck_fail(err, "feedback", "feedback must be a non-empty object");

	/* Unknown keys are stored and sent verbatim, so they are bounded too. */
	r = vcheck_json_tree(feedback, 0);
	if (r == -E2BIG)
		return vcheck_fail(err, "feedback", "feedback is nested too deeply");
	if (r < 0)
		return vcheck_fail(err, "feedback", "feedback must be valid UTF-8");
	if (vcheck_serialised_size(feedback) > VALIDATE_FEEDBACK_SIZE_MAX)
		return vcheck_fail(err, "feedback", "feedback must be under 16KB");

	for (size_t i = 0; i < ELEMENTSOF(rating_keys); i++) {
		if (!json_object_object_get_ex(feedback, rating_keys[i], &v))
			continue;
		snprintf(field, sizeof field, "feedback.%s", rating_keys[i]);
		if (!vcheck_get_number(v, &x))
			return vcheck_fail(err, field, "%s must be a number", rating_keys[i]);
		if (x < 1 || x > 5)
			return vcheck_fail(err, field, "Rating values must be between 1 and 5");
	}

	if (json_object_object_get_ex(feedback, "comment", &v)) {
		if (!vcheck_get_string(v, &s, &len))
			return vcheck_fail(err, "feedback.comment", "comment must be a string");
		if (!utf8_count(s, len, &count))
			return vcheck_fail(err, "feedback.comment", "comment must be valid UTF-8");
		if (count > FEEDBACK_COMMENT_MAX)
			return vcheck_fail(err, "feedback.comment", "Comment exceeds maximum length of 1000 characters");
	}

	for (size_t i = 0; i < ELEMENTSOF(bool_keys); i++) {
		if (!json_object_object_get_ex(feedback, bool_keys[i], &v))
			continue;
		snprintf(field, sizeof field, "feedback.%s", bool_keys[i]);
		r = vcheck_bool(v, field, err);
		if (r < 0)
			return r;
	}

	if (json_object_object_get_ex(feedback, "tags", &v)) {
		r = vcheck_string_array(v, "feedback.tags", FEEDBACK_TAGS_MAX, FEEDBACK_TAG_MAX, err);
		if (r < 0)
			return r;
	}

	if (json_object_object_get_ex(feedback, "category", &v)) {
		r = vcheck_enum(v, "feedback.category", category_names, ELEMENTSOF(category_names), err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- loops ------------------------------------------------------------------------ */

static int check_loop(json_object *params, bool create, ValidationError *err) {
	json_object *name, *description, *icon;
	bool has_name, has_description, has_icon;
	int r;

	if (!json_object_is_type(params, json_type_object))
		return vcheck_fail(err, "params", "params must be an object");
	r = vcheck_known_fields(params, loop_fields, ELEMENTSOF(loop_fields), err);
	if (r < 0)
		return r;

	has_name = json_object_object_get_ex(params, "name", &name);
	has_description = json_object_object_get_ex(params, "description", &description);
	has_icon = json_object_object_get_ex(params, "icon", &icon);

	if (!create && !has_name && !has_description && !has_icon)
		return vcheck_fail(err, "params", "At least one field must be provided for update");

	if (create && !has_name)
		return vcheck_fail(err, "name", "name is required");
	if (has_name) {
		r = vcheck_string(name, "name", 1, LOOP_NAME_MAX, err);
		if (r < 0)
			return r;
	}
	if (has_description) {
		r = vcheck_string(description, "description", 0, LOOP_DESCRIPTION_MAX, err);
		if (r < 0)
			return r;
	}
	if (create && !has_icon)
		return vcheck_fail(err, "icon", "icon is required");
	if (has_icon) {
		r = vcheck_string(icon, "icon", 1, LOOP_ICON_MAX, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int validate_loop_create(json_object *params, ValidationError *err) {
	return check_loop(params, true, err);
}

int validate_loop_update(json_object *params, ValidationError *err) {
	return check_loop(params, false, err);
}

bool validate_object_id(const char *s) {
	if (!s || strlen(s) != OBJECT_ID_LEN)
		return false;
	for (size_t i = 0; i < OBJECT_ID_LEN; i++)
		if (!ascii_is_hex(s[i]))
			return false;
	return true;
}
