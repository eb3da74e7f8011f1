/* trigger.c — see trigger.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "trigger.h"

#define REMOTE_STATUS_MAX 32   /* as record.c keeps it */

static const char *const outcome_table[_TRIGGER_OUTCOME_MAX] = {
	[TRIGGER_SENT] = "sent",
	[TRIGGER_RETRY] = "retry",
	[TRIGGER_KEY] = "key",
	[TRIGGER_REJECTED] = "rejected",
	[TRIGGER_UNKNOWN] = "unknown",
};

const char *trigger_outcome_to_string(TriggerOutcome o) {
	return o >= 0 && o < _TRIGGER_OUTCOME_MAX ? outcome_table[o] : NULL;
}

static bool id_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

bool trigger_workflow_id_is_valid(const char *s) {
	size_t plen = strlen(TRIGGER_WORKFLOW_ID_PREFIX), n;

	if (!s || strncmp(s, TRIGGER_WORKFLOW_ID_PREFIX, plen) != 0)
		return false;
	n = strlen(s);
	if (n <= plen || n > TRIGGER_WORKFLOW_ID_MAX)
		return false;
	for (const char *p = s + plen; *p; p++)
		if (!id_char(*p))
			return false;
	return true;
}

/* Is v nested no deeper than depth_left containers (v itself counted)? */
static bool depth_ok(json_object *v, unsigned depth_left) {
	if (json_object_is_type(v, json_type_object)) {
		if (depth_left == 0)
			return false;
		json_object_object_foreach(v, key, child) {
			(void) key;
			if (!depth_ok(child, depth_left - 1))
				return false;
		}
	} else if (json_object_is_type(v, json_type_array)) {
		if (depth_left == 0)
			return false;
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (!depth_ok(json_object_array_get_idx(v, i), depth_left - 1))
				return false;
	}
	return true;
}

static int fail(const char **ret_field, const char **ret_reason, const char *field, const char *reason) {
	if (ret_field)
		*ret_field = field;
	if (ret_reason)
		*ret_reason = reason;
	return -EINVAL;
}

int trigger_validate(json_object *params, json_object **ret_params, const char **ret_field,
                     const char **ret_reason) {
	_cleanup_(json_object_putp) json_object *out = NULL;
	json_object *wf = NULL, *data = NULL, *prio = NULL;
	size_t len;

	if (!json_object_is_type(params, json_type_object))
		return fail(ret_field, ret_reason, "params", "params must be an object");
	json_object_object_foreach(params, key, val) {
		if (streq(key, "workflow_id"))
			wf = val;
		else if (streq(key, "data"))
			data = val;
		else if (streq(key, "priority"))
			prio = val;
		else
			return fail(ret_field, ret_reason, key, "unknown parameter");
	}

	if (!wf)
		return fail(ret_field, ret_reason, "workflow_id", "workflow_id is required");
	if (!json_object_is_type(wf, json_type_string) || !trigger_workflow_id_is_valid(json_object_get_string(wf)) ||
	    strlen(json_object_get_string(wf)) != (size_t) json_object_get_string_len(wf))
		return fail(ret_field, ret_reason, "workflow_id",
		            "must be a workflow id: wf_ followed by 1-97 letters, digits, _ or -");
	if (data && !json_object_is_type(data, json_type_object))
		return fail(ret_field, ret_reason, "data", "must be a JSON object");
	if (data) {
		if (!depth_ok(data, TRIGGER_DATA_DEPTH_MAX))
			return fail(ret_field, ret_reason, "data", "must not nest deeper than 32 levels");
		(void) json_object_to_json_string_length(data, JSON_C_TO_STRING_PLAIN, &len);
		if (len > TRIGGER_DATA_SIZE_MAX)
			return fail(ret_field, ret_reason, "data", "must be at most 51200 bytes serialised");
	}
	if (prio && (!json_object_is_type(prio, json_type_string) ||
	             priority_from_string(json_object_get_string(prio)) < 0))
		return fail(ret_field, ret_reason, "priority", "must be one of low, medium, high, critical");

	out = json_object_new_object();
	if (!out || json_object_object_add(out, "workflow_id", json_object_get(wf)) < 0)
		return -ENOMEM;
	if (data) {
		json_object *copy = NULL;

		if (json_object_deep_copy(data, &copy, NULL) < 0)
			return -ENOMEM;
		if (json_object_object_add(out, "data", copy) < 0) {
			json_object_put(copy);
			return -ENOMEM;
		}
	}
	if (prio && json_object_object_add(out, "priority", json_object_get(prio)) < 0)
		return -ENOMEM;
	*ret_params = TAKE_PTR(out);
	return 0;
}

int trigger_path(json_object *params, char buf[static TRIGGER_PATH_MAX]) {
	const char *wf = json_object_get_string(json_object_object_get(params, "workflow_id"));

	if (!trigger_workflow_id_is_valid(wf))
		return -EINVAL;
	snprintf(buf, TRIGGER_PATH_MAX, "/workflows/%s/trigger", wf);
	return 0;
}

int trigger_body(json_object *params, json_object **ret) {
	json_object *data = json_object_object_get(params, "data"), *body = NULL;

	if (!json_object_is_type(params, json_type_object))
		return -EINVAL;
	if (!data)
		body = json_object_new_object();
	else if (json_object_is_type(data, json_type_object))
		body = json_object_get(data);
	else
		return -EINVAL;
	if (!body)
		return -ENOMEM;
	*ret = body;
	return 0;
}

TriggerOutcome trigger_outcome(const ApiResult *res) {
	long s = res->http_status;

	if (s >= 200 && s < 300)
		/* Whatever the body: HITL.sh said it took the trigger. */
		return TRIGGER_SENT;
	if (s == 0)
		return res->maybe_sent ? TRIGGER_UNKNOWN : TRIGGER_RETRY;
	if (s == 401)
		return TRIGGER_KEY;
	/* Refused before acting: 429 is the rate limit, 503 says the service
	 * is not taking work. Any other 5xx may have come after the workflow
	 * started, and nothing can tell. */
	if (s == 429 || s == 503)
		return TRIGGER_RETRY;
	if (s >= 500 || s < 200)
		return TRIGGER_UNKNOWN;
	return TRIGGER_REJECTED;
}

static bool printable_id(const char *s, size_t max) {
	size_t n = 0;

	for (; s[n]; n++)
		if (s[n] <= ' ' || s[n] > '~' || n >= max)
			return false;
	return n > 0;
}

const char *trigger_execution_id(json_object *data) {
	json_object *v = data ? json_object_object_get(data, "execution_id") : NULL;
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t) json_object_get_string_len(v) || !printable_id(s, TRIGGER_EXECUTION_ID_MAX))
		return NULL;
	return s;
}

static const char *status_word(json_object *data) {
	json_object *v = data ? json_object_object_get(data, "status") : NULL;
	const char *s;
	size_t n;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	n = strlen(s);
	if (n == 0 || n > REMOTE_STATUS_MAX)
		return NULL;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '-'))
			return NULL;
	return s;
}

TriggerOutcome trigger_apply(Record *r, const ApiResult *res, usec_t now, usec_t retry_at) {
	TriggerOutcome o = trigger_outcome(res);
	_cleanup_(freep) char *message = NULL;

	switch (o) {
	case TRIGGER_SENT: {
		json_object *data = res->body_invalid ? NULL : res->data;
		const char *exec = trigger_execution_id(data);
		_cleanup_(json_object_putp) json_object *result = json_object_new_object();

		json_object_object_add(result, "execution_id", exec ? json_object_new_string(exec) : NULL);
		(void) record_trigger_sent(r, result, status_word(data), now);
		break;
	}
	case TRIGGER_KEY:
		(void) record_requeue(r, true);
		break;
	case TRIGGER_RETRY:
		if (record_requeue(r, false) >= 0)
			r->next_attempt_at = retry_at;
		break;
	case TRIGGER_REJECTED: {
		const char *d = res->data && json_object_is_type(res->data, json_type_string)
		                        ? json_object_get_string(res->data)
		                        : NULL;

		if (res->msg) {
			if (asprintf(&message, "%s%s%s", res->msg, d ? ": " : "", d ? d : "") < 0)
				message = NULL;
		} else if (asprintf(&message, "HITL.sh refused the trigger (HTTP %ld).", res->http_status) < 0)
			message = NULL;
		if (record_fail(r, "remote_rejected", message ? message : "HITL.sh refused the trigger.", res->http_status,
		                false) >= 0)
			r->next_attempt_at = 0;
		break;
	}
	case TRIGGER_UNKNOWN:
	default: {
		const char *why = res->http_status > 0 ? (res->msg ? res->msg : "server error")
		                                       : (res->error_text ? res->error_text : "no reply");

		if (asprintf(&message,
		             "The trigger's outcome is unknown (%s): the workflow may or may not have run. "
		             "HITL.sh cannot be asked, so it is not sent again.",
		             why) < 0)
			message = NULL;
		if (record_fail(r, TRIGGER_OUTCOME_UNKNOWN,
		                message ? message : "The trigger's outcome is unknown: the workflow may or may not have run.",
		                res->http_status, false) >= 0)
			r->next_attempt_at = 0;
		o = TRIGGER_UNKNOWN;
		break;
	}
	}
	return o;
}

void trigger_apply_lost(Record *r) {
	if (record_fail(r, TRIGGER_OUTCOME_UNKNOWN,
	                "The trigger's outcome is unknown (hitld stopped while sending it): the workflow may or may "
	                "not have run. HITL.sh cannot be asked, so it is not sent again.",
	                0, false) >= 0)
		r->next_attempt_at = 0;
}
