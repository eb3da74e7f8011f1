/* hitlclient_calls.c — libhitlclient's typed wrappers: one function per
 * method of the control protocol (hitlclient.h), each building its params and
 * making one hitl_client_call(); they use only the library's public
 * functions, so the connection's internals stay in hitlclient.c. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hitlclient.h"

/* ------------------------------------------------------------------ typed wrappers */

static int add_string(json_object *o, const char *key, const char *value) {
	json_object *s;

	if (!value)
		return 0;
	s = json_object_new_string(value);
	if (!s || json_object_object_add(o, key, s) < 0) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

static int add_int(json_object *o, const char *key, int64_t value) {
	json_object *i = json_object_new_int64(value);

	if (!i || json_object_object_add(o, key, i) < 0) {
		json_object_put(i);
		return -ENOMEM;
	}
	return 0;
}

static json_object *strv_to_json(const char *const *v) {
	json_object *a = json_object_new_array();

	if (!a)
		return NULL;
	for (; *v; v++) {
		json_object *s = json_object_new_string(*v);

		if (!s || json_object_array_add(a, s) < 0) {
			json_object_put(s);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

/* A call whose params are at most two string members (NULL values left out). */
static int call_strings(HitlClient *c, const char *method, const char *k1, const char *v1, const char *k2,
                        const char *v2, json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	if (!p)
		return -ENOMEM;
	if ((k1 && add_string(p, k1, v1) < 0) || (k2 && add_string(p, k2, v2) < 0))
		return -ENOMEM;
	return hitl_client_call(c, method, p, ret_result, error);
}

int hitl_hello(HitlClient *c, const char *client_name, json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (!p || add_string(p, "client", client_name) < 0 || add_int(p, "protocol", HITL_PROTOCOL_VERSION) < 0)
		return -ENOMEM;
	return hitl_client_call(c, "hello", p, ret_result, error);
}

int hitl_status(HitlClient *c, json_object **ret_status, HitlError *error) {
	return hitl_client_call(c, "status", NULL, ret_status, error);
}

int hitl_request_submit(HitlClient *c, json_object *params, json_object **ret_result, HitlError *error) {
	hitl_error_clear(error);
	if (!params)
		return -EINVAL;
	return hitl_client_call(c, "request.submit", params, ret_result, error);
}

int hitl_request_get(HitlClient *c, const char *id, json_object **ret_record, HitlError *error) {
	hitl_error_clear(error);
	if (!id)
		return -EINVAL;
	return call_strings(c, "request.get", "id", id, NULL, NULL, ret_record, error);
}

int hitl_request_get_by_ref(HitlClient *c, const char *client_ref, json_object **ret_record, HitlError *error) {
	hitl_error_clear(error);
	if (!client_ref)
		return -EINVAL;
	return call_strings(c, "request.get", "client_ref", client_ref, NULL, NULL, ret_record, error);
}

int hitl_request_wait(HitlClient *c, const char *id, int timeout_ms, json_object **ret_record, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object(), *result = NULL;
	json_object *done, *record;
	int k;

	hitl_error_clear(error);
	if (!id || timeout_ms < 0)
		return -EINVAL;
	if (!p || add_string(p, "id", id) < 0 || add_int(p, "timeout_ms", timeout_ms) < 0)
		return -ENOMEM;
	k = hitl_client_call_full(c, "request.wait", p, timeout_ms, &result, error);
	if (k < 0)
		return k;
	if (!json_object_object_get_ex(result, "done", &done) || !json_object_is_type(done, json_type_boolean) ||
	    !json_object_object_get_ex(result, "request", &record) || !json_object_is_type(record, json_type_object))
		return -EBADMSG;
	if (ret_record)
		*ret_record = json_object_get(record);
	return json_object_get_boolean(done) ? 1 : 0;
}

int hitl_request_list(HitlClient *c, const HitlListFilter *filter, json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (!p)
		return -ENOMEM;
	if (filter) {
		if (filter->states) {
			json_object *states = strv_to_json(filter->states);

			if (!states || json_object_object_add(p, "state", states) < 0) {
				json_object_put(states);
				return -ENOMEM;
			}
		}
		if (add_string(p, "loop_id", filter->loop_id) < 0 || add_string(p, "cursor", filter->cursor) < 0 ||
		    (filter->owner_uid_set && add_int(p, "owner_uid", filter->owner_uid) < 0) ||
		    (filter->limit > 0 && add_int(p, "limit", filter->limit) < 0))
			return -ENOMEM;
	}
	return hitl_client_call(c, "request.list", p, ret_result, error);
}

int hitl_request_cancel(HitlClient *c, const char *id, json_object **ret_record, HitlError *error) {
	hitl_error_clear(error);
	if (!id)
		return -EINVAL;
	return call_strings(c, "request.cancel", "id", id, NULL, NULL, ret_record, error);
}

int hitl_request_feedback(HitlClient *c, const char *id, json_object *feedback, json_object **ret_record,
                          HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (!id || !feedback)
		return -EINVAL;
	if (!p || add_string(p, "id", id) < 0 || json_object_object_add(p, "feedback", json_object_get(feedback)) < 0)
		return -ENOMEM;
	return hitl_client_call(c, "request.feedback", p, ret_record, error);
}

int hitl_workflow_trigger(HitlClient *c, const char *workflow_id, json_object *data, const char *client_ref,
                          json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (!workflow_id)
		return -EINVAL;
	if (!p || add_string(p, "workflow_id", workflow_id) < 0 ||
	    (data && json_object_object_add(p, "data", json_object_get(data)) < 0) ||
	    (client_ref && add_string(p, "client_ref", client_ref) < 0))
		return -ENOMEM;
	return hitl_client_call(c, "workflow.trigger", p, ret_result, error);
}

int hitl_watch(HitlClient *c, const char *const *ids, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object(), *result = NULL;
	json_object *n;
	int k;

	hitl_error_clear(error);
	if (!p)
		return -ENOMEM;
	if (ids) {
		json_object *a = strv_to_json(ids);

		if (!a || json_object_object_add(p, "ids", a) < 0) {
			json_object_put(a);
			return -ENOMEM;
		}
	}
	k = hitl_client_call(c, "watch", p, &result, error);
	if (k < 0)
		return k;
	if (!json_object_object_get_ex(result, "watching", &n) || !json_object_is_type(n, json_type_int))
		return -EBADMSG;
	return json_object_get_int64(n) > INT_MAX ? INT_MAX
	       : json_object_get_int64(n) < 0     ? 0
	                                          : (int) json_object_get_int64(n);
}

int hitl_usage(HitlClient *c, const HitlUsageFilter *filter, json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (filter && filter->since && filter->since_seconds > 0)
		return -EINVAL;
	if (!p)
		return -ENOMEM;
	if (filter && (add_string(p, "since", filter->since) < 0 || add_string(p, "by", filter->by) < 0 ||
	               (filter->since_seconds > 0 && add_int(p, "since", filter->since_seconds) < 0)))
		return -ENOMEM;
	return hitl_client_call(c, "usage", p, ret_result, error);
}

int hitl_metrics(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "metrics", NULL, ret_result, error);
}

int hitl_loop_list(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "loop.list", NULL, ret_result, error);
}

int hitl_loop_get(HitlClient *c, const char *loop_id, json_object **ret_result, HitlError *error) {
	hitl_error_clear(error);
	if (!loop_id)
		return -EINVAL;
	return call_strings(c, "loop.get", "id", loop_id, NULL, NULL, ret_result, error);
}

int hitl_loop_members(HitlClient *c, const char *loop_id, json_object **ret_result, HitlError *error) {
	hitl_error_clear(error);
	if (!loop_id)
		return -EINVAL;
	return call_strings(c, "loop.members", "id", loop_id, NULL, NULL, ret_result, error);
}

int hitl_loop_create(HitlClient *c, const char *name, const char *description, const char *icon,
                     json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (!name || !icon)
		return -EINVAL;
	if (!p || add_string(p, "name", name) < 0 || add_string(p, "description", description) < 0 ||
	    add_string(p, "icon", icon) < 0)
		return -ENOMEM;
	return hitl_client_call(c, "loop.create", p, ret_result, error);
}

int hitl_loop_update(HitlClient *c, const char *loop_id, const char *name, const char *description,
                     const char *icon, json_object **ret_result, HitlError *error) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();

	hitl_error_clear(error);
	if (!loop_id)
		return -EINVAL;
	if (!p || add_string(p, "id", loop_id) < 0 || add_string(p, "name", name) < 0 ||
	    add_string(p, "description", description) < 0 || add_string(p, "icon", icon) < 0)
		return -ENOMEM;
	return hitl_client_call(c, "loop.update", p, ret_result, error);
}

int hitl_loop_delete(HitlClient *c, const char *loop_id, json_object **ret_result, HitlError *error) {
	hitl_error_clear(error);
	if (!loop_id)
		return -EINVAL;
	return call_strings(c, "loop.delete", "id", loop_id, NULL, NULL, ret_result, error);
}

int hitl_loop_remove_member(HitlClient *c, const char *loop_id, const char *user_id, json_object **ret_result,
                            HitlError *error) {
	hitl_error_clear(error);
	if (!loop_id || !user_id)
		return -EINVAL;
	return call_strings(c, "loop.remove_member", "id", loop_id, "user_id", user_id, ret_result, error);
}

int hitl_key_test(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "key.test", NULL, ret_result, error);
}

int hitl_key_rotate(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "key.rotate", NULL, ret_result, error);
}

int hitl_queue_pause(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "queue.pause", NULL, ret_result, error);
}

int hitl_queue_resume(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "queue.resume", NULL, ret_result, error);
}

int hitl_daemon_reload(HitlClient *c, json_object **ret_result, HitlError *error) {
	return hitl_client_call(c, "daemon.reload", NULL, ret_result, error);
}
