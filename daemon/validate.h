/* validate.h — HITL.sh's request, answer, feedback and loop rules, applied locally.
 * Owns the decision "would HITL.sh accept this?" so methods_submit.c refuses bad input at
 * submit time (PROTOCOL.md -32602), and the mapping of a reviewer's response_data
 * (either encoding, docs/HITL-API.md "Answers") to the PROTOCOL.md §3 `result`.
 * Mirrors the documented schema: seven response types, five content types, only
 * documented fields, documented ranges. Pure: no I/O, no clock, no logging.
 * The public face of four files: validate.c (submit, feedback, loops),
 * answer.c (validate_answer, validate_normalise_result), respconfig.c (the
 * response types and configs they share) and vcheck.c (the field checks). */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

/* Limits shared with callers that build or display requests. */
#define VALIDATE_REQUEST_TEXT_MAX 2000          /* code points */
#define VALIDATE_TIMEOUT_MIN 60                 /* seconds */
#define VALIDATE_TIMEOUT_MAX 86400              /* every processing type; absent: HITL.sh's 30 days (deferred) */
#define VALIDATE_CONTEXT_SIZE_MAX (50 * 1024)   /* serialised bytes */
#define VALIDATE_JSON_DEPTH_MAX 32              /* context, feedback: containers on a path, the top one included */
#define VALIDATE_FEEDBACK_SIZE_MAX (16 * 1024)  /* serialised bytes */
#define VALIDATE_URL_MAX 2048                   /* bytes */
#define VALIDATE_OPTIONS_MAX 20

typedef struct ValidationError {
	char field[96];    /* JSON path of the offending field: "request_text", "response_config.options[2].value", "default_response", "feedback.rating" */
	char reason[256];  /* one English sentence, HITL.sh's wording where docs/HITL-API.md gives one */
} ValidationError;

/* Validates request.submit params (client_ref already removed by the caller) and
 * returns a NEW object with exactly the create-request fields, defaults
 * applied: priority "medium", processing_type "deferred", type "markdown",
 * platform "api". timeout_seconds is 60–86400 and stays absent for a deferred
 * request without one (HITL.sh then applies its 30-day default). The content
 * type's own fields (image_url; file_url, file_type, file_name; video_url;
 * audio_url) are required for it and refused for any other; `tags` is refused
 * (not a documented field). Options
 * keep their given form (response_config is copied verbatim). default_response is
 * normalised: for single_select the matching option's value string, multi_select
 * an array of option values. A top-level JSON null counts as absent and is not
 * copied. Returns 0, or -EINVAL and fills *err (err may be NULL). */
int validate_submit(json_object *params, json_object **ret_create, ValidationError *err);

/* Checks an answer (or a default) against a response_type + response_config
 * as HITL.sh would (§5.2–5.8), accepting the value in plain encoding (A).
 * On success, *ret_normalised (may be NULL) gets the canonical value (select:
 * option value; multi: array of values; rating/number: double; text: string;
 * boolean: bool; editable_text: string). An invalid response_type or response_config is reported on
 * that field; a bad value on field "answer". */
int validate_answer(const char *response_type, json_object *config, json_object *value,
                    json_object **ret_normalised, ValidationError *err);

/* Converts HITL.sh response_data in either encoding (§5.1: plain A, or
 * structured B: selected_value/selected_values/rating/number/boolean, labels
 * optional; editable_text {revised_text, was_edited} → the revised text) into
 * the PROTOCOL result value. Tolerant of the shape, strict on
 * types: a response_data that cannot be read as the type gives -EBADMSG.
 * Select values are mapped to option values when the reviewer's value matches
 * a label (value, label, case-insensitive label, snake_case of label); a value
 * matching no option (allow_other) is kept as given. Ranges are not re-checked:
 * HITL.sh accepted the answer. An unknown response_type or a response_config
 * validate_submit would refuse gives -EINVAL. */
int validate_normalise_result(const char *response_type, json_object *config,
                              json_object *response_data, json_object **ret_result);

/* request.feedback's "feedback" object (§3.14): non-empty object; rating,
 * accuracy, timeliness, helpfulness numbers 1–5 ("Rating values must be between 1
 * and 5"); comment string ≤1000 chars ("Comment exceeds maximum length of 1000
 * characters"); would_recommend, follow_up_needed bool; tags array of strings
 * (≤ 20, each ≤ 100); category positive|constructive|issue; unknown keys allowed;
 * serialised size ≤ 16 KiB, nesting ≤ 32, strings and keys well-formed UTF-8. */
int validate_feedback(json_object *feedback, ValidationError *err);

/* loop.create {name 1–100, description? ≤500, icon required 1–100} and
 * loop.update (id excluded by caller; at least one of name/description/icon:
 * "At least one field must be provided for update"). Unknown fields rejected. */
int validate_loop_create(json_object *params, ValidationError *err);
int validate_loop_update(json_object *params, ValidationError *err);

/* Is s a 24-hex-digit HITL.sh ObjectID? */
bool validate_object_id(const char *s);
