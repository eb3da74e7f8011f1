/* methods_submit.c — request.submit and workflow.trigger (PROTOCOL.md §5):
 * a new record, checked (validate.h, trigger.h), refused early when it could
 * not succeed (a loop HITL.sh answered 404 for, a timeout too short to reach
 * HITL.sh in time, a quota), answered from the earlier record for a
 * client_ref already used, else queued for the group commit and answered
 * only once durable (manager_submit()). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "intern.h"
#include "methods_internal.h"
#include "params.h"
#include "queuepos.h"
#include "trigger.h"
#include "validate.h"

/* HITL.sh refuses a timeout under 60 s; hitld sends what is left of the
 * caller's at the moment it creates the request. A timeout that cannot
 * leave 60 s plus api.min_timeout_margin at the earliest moment the budget
 * allows a create would end unsent: refuse it now, naming the smallest one
 * that works, rather than accept a request no one will see. */
#define HITL_MIN_TIMEOUT_S 60

static bool refuse_short_timeout(Manager *m, RpcCall *call, int64_t timeout_s, usec_t now) {
	usec_t slot = budget_next_slot(&m->budget, CALL_CREATE, 1, now, 0.0);
	int64_t wait_s = slot == USEC_INFINITY ? 0 : (int64_t) ((usec_sub(slot, now) + USEC_PER_SEC - 1) / USEC_PER_SEC);
	int64_t min_s = HITL_MIN_TIMEOUT_S + (int64_t) m->config->api_min_timeout_margin_s + wait_s;
	json_object *data;
	char reason[256];

	if (timeout_s >= min_s)
		return false;
	snprintf(reason, sizeof reason,
	         "timeout_seconds must be at least %" PRId64 ": HITL.sh needs %d s left when hitld creates the request, "
	         "plus a margin of %u s (api.min_timeout_margin)%s",
	         min_s, HITL_MIN_TIMEOUT_S, m->config->api_min_timeout_margin_s,
	         wait_s > 0 ? ", and the budget allows the next create only later" : "");
	data = json_object_new_object();
	json_object_object_add(data, "field", json_object_new_string("timeout_seconds"));
	json_object_object_add(data, "reason", json_object_new_string(reason));
	json_object_object_add(data, "min_timeout_seconds", json_object_new_int64(min_s));
	rpc_call_error(call, RPC_ERROR_INVALID_PARAMS, "Invalid parameters.", data);
	return true;
}

static bool trigger_wait_param(RpcCall *call, int64_t *ret_timeout_ms);

static void reply_submitted(Manager *m, RpcCall *call, const Record *r, bool duplicate) {
	json_object *result;
	char created[ISO8601_MAX];
	int64_t timeout_ms;

	/* workflow.trigger with wait: answered as request.wait on the record. */
	if (r->kind == RECORD_TRIGGER && trigger_wait_param(call, &timeout_ms))
		return methods_reply_wait(m, call, outbox_get(m->outbox, r->id), timeout_ms);

	result = json_object_new_object();
	if (r->kind != RECORD_REQUEST)
		json_object_object_add(result, "kind", json_object_new_string(record_kind_to_string(r->kind)));

	json_object_object_add(result, "id", json_object_new_string(r->id));
	json_object_object_add(result, "state", json_object_new_string(request_state_to_string(r->state)));
	json_object_object_add(result, "created_at", json_object_new_string(format_iso8601(r->created_at, created)));
	json_object_object_add(result, "position",
	                       r->state == REQUEST_QUEUED ? json_object_new_int64((int64_t) queuepos_of(m, r, methods_caller_is_admin(m, call), !duplicate))
	                                                  : json_object_new_int(0));
	json_object_object_add(result, "duplicate", json_object_new_boolean(duplicate));
	rpc_call_reply(call, result);
}

static size_t live_requests(Manager *m) {
	return outbox_count_state(m->outbox, REQUEST_QUEUED) + outbox_count_state(m->outbox, REQUEST_SUBMITTING) +
	       outbox_count_state(m->outbox, REQUEST_PENDING);
}

static void reply_quota(RpcCall *call, unsigned limit, const char *what) {
	json_object *data = json_object_new_object();
	char message[128];

	json_object_object_add(data, "limit", json_object_new_int64(limit));
	snprintf(message, sizeof message, "Too many live requests %s (limit %u).", what, limit);
	rpc_call_error(call, RPC_ERROR_QUOTA, message, data);
}

/* manager_submit()'s callback: the commit made r durable, or failed. */
static void on_submitted(Manager *m, Record *r, int error, void *userdata) {
	RpcCall *call = userdata;

	if (error < 0)
		return rpc_call_error(call, RPC_ERROR_STORAGE,
		                      error == -ENOSPC ? "The request could not be stored: no space left in the state directory."
		                                       : "The request could not be stored durably.",
		                      NULL);
	reply_submitted(m, call, r, false);
}

/* What request.submit and workflow.trigger check before they make a record:
 * an earlier record of uid with the same client_ref (of the same kind and
 * content it is the answer, else -32009 conflict), then the user's and the
 * daemon's quotas. Returns true when it has answered the call. */
static bool answered_before_new_record(Manager *m, RpcCall *call, uid_t uid, const char *client_ref, RecordKind kind,
                                       json_object *content) {
	if (client_ref) {
		Record *old = outbox_get_client_ref(m->outbox, uid, client_ref);

		/* The same client_ref still waiting for its commit: commit it now,
		 * then answer from the durable record. */
		if (!old && manager_pending_client_ref(m, uid, client_ref)) {
			manager_commit(m);
			old = outbox_get_client_ref(m->outbox, uid, client_ref);
		}
		if (old) {
			if (manager_need_params(m, old) < 0)
				rpc_call_error(call, RPC_ERROR_STORAGE, "The request could not be read back.", NULL);
			else if (old->kind != kind || !json_object_equal(old->params, content))
				rpc_call_error(call, RPC_ERROR_CONFLICT,
				               "client_ref was already used for a request with different content.", NULL);
			else
				reply_submitted(m, call, old, true);
			return true;
		}
	}

	if (outbox_count_live_uid(m->outbox, uid) + manager_pending_of_uid(m, uid) >= m->config->outbox_max_per_uid) {
		reply_quota(call, m->config->outbox_max_per_uid, "for this user");
		return true;
	}
	if (live_requests(m) + m->n_pending >= m->config->outbox_max_requests) {
		reply_quota(call, m->config->outbox_max_requests, "in the daemon");
		return true;
	}
	return false;
}

void method_submit(Methods *ms, RpcCall *call) {
	Manager *m = ms->manager;
	_cleanup_(json_object_putp) json_object *params = NULL, *create = NULL;
	_cleanup_(record_freep) Record *r = NULL;
	ValidationError err = {};
	uid_t uid = rpc_call_uid(call);
	const char *client_ref = NULL;
	usec_t now = now_realtime();
	json_object *v;
	int k;

	if (m->shutting_down)
		return rpc_call_error(call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);

	k = params_string(call, "client_ref", CLIENT_REF_MAX, &client_ref);
	if (k == -EINVAL)
		return;

	/* Everything but client_ref, which is ours, not HITL.sh's. Shared, not
	 * copied: validate_submit() copies what it keeps. */
	if (!json_object_is_type(rpc_call_params(call), json_type_object))
		params = json_object_get(rpc_call_params(call));
	else {
		params = json_object_new_object();
		if (!params)
			return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
		json_object_object_foreach(rpc_call_params(call), key, val) {
			if (streq(key, "client_ref"))
				continue;
			if (json_object_object_add(params, key, json_object_get(val)) < 0) {
				json_object_put(val);
				return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
			}
		}
	}
	if (validate_submit(params, &create, &err) < 0)
		return params_reply_invalid(call, err.field, err.reason);
	{
		const char *loop_id = json_object_get_string(json_object_object_get(create, "loop_id"));
		usec_t since = 0;

		/* A create there would cost a call and fail: say so now. */
		if (remote_loop_known_missing(ms->remote, loop_id, &since)) {
			char reason[160], when[ISO8601_MAX];

			snprintf(reason, sizeof reason, "Loop not found: HITL.sh answered 404 for loop %s at %s", loop_id,
			         format_iso8601(since, when));
			return params_reply_invalid(call, "loop_id", reason);
		}
	}
	v = json_object_object_get(create, "timeout_seconds");
	if (v && refuse_short_timeout(m, call, json_object_get_int64(v), now))
		return;

	if (answered_before_new_record(m, call, uid, client_ref, RECORD_REQUEST, create))
		return;

	r = record_new();
	if (!r || record_make_id(now, r->id) < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	r->owner_uid = uid;   /* record_new(): queued */
	r->priority = priority_from_string(json_object_get_string(json_object_object_get(create, "priority")));
	(void) intern_string(json_object_get_string(json_object_object_get(create, "loop_id")), &r->loop_id);   /* NULL: -ENOMEM */
	if (client_ref)
		r->client_ref = strdup(client_ref);
	if (!r->loop_id || (client_ref && !r->client_ref))
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	r->created_at = r->updated_at = now;
	v = json_object_object_get(create, "timeout_seconds");
	if (v)
		r->deadline_at = now + (usec_t) json_object_get_int64(v) * USEC_PER_SEC;
	r->params = TAKE_PTR(create);

	k = manager_submit(m, r, on_submitted, call);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	TAKE_PTR(r);
}

/* ------------------------------------------------------------------ workflow.trigger */

/* wait and timeout_ms of a workflow.trigger call, already checked by method_trigger. */
static bool trigger_wait_param(RpcCall *call, int64_t *ret_timeout_ms) {
	json_object *p = rpc_call_params(call), *v;

	if (!streq_ptr(rpc_call_method(call), "workflow.trigger") || !json_object_is_type(p, json_type_object) ||
	    !json_object_get_boolean(json_object_object_get(p, "wait")))
		return false;
	v = json_object_object_get(p, "timeout_ms");
	*ret_timeout_ms = v ? json_object_get_int64(v) : WAIT_DEFAULT_MS;
	return true;
}

void method_trigger(Manager *m, RpcCall *call) {
	static const char *const ours[] = { "client_ref", "wait", "timeout_ms", NULL };
	_cleanup_(json_object_putp) json_object *params = NULL, *stored = NULL;
	_cleanup_(record_freep) Record *r = NULL;
	const char *client_ref = NULL, *field = NULL, *reason = NULL;
	uid_t uid = rpc_call_uid(call);
	usec_t now = now_realtime();
	int64_t timeout_ms = WAIT_DEFAULT_MS;
	json_object *v;
	int k;

	if (m->shutting_down)
		return rpc_call_error(call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);
	if (!json_object_is_type(rpc_call_params(call), json_type_object))
		return params_reply_invalid(call, "params", "params must be an object");

	k = params_string(call, "client_ref", CLIENT_REF_MAX, &client_ref);
	if (k == -EINVAL)
		return;
	v = json_object_object_get(rpc_call_params(call), "wait");
	if (v && !json_object_is_type(v, json_type_boolean))
		return params_reply_invalid(call, "wait", "must be a boolean");
	k = params_int(call, "timeout_ms", 0, WAIT_MAX_MS, &timeout_ms);
	if (k == -EINVAL)
		return;

	/* The rest is the trigger itself: workflow_id, data, priority. */
	params = json_object_new_object();
	if (!params)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	json_object_object_foreach(rpc_call_params(call), key, val) {
		bool skip = false;

		for (const char *const *o = ours; *o; o++)
			skip = skip || streq(*o, key);
		/* A null data is an absent one. */
		if (skip || (streq(key, "data") && !val))
			continue;
		if (json_object_object_add(params, key, json_object_get(val)) < 0) {
			json_object_put(val);
			return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
		}
	}
	k = trigger_validate(params, &stored, &field, &reason);
	if (k == -ENOMEM)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	if (k < 0)
		return params_reply_invalid(call, field, reason);

	if (answered_before_new_record(m, call, uid, client_ref, RECORD_TRIGGER, stored))
		return;

	r = record_new();
	if (!r || record_make_id(now, r->id) < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	r->kind = RECORD_TRIGGER;
	r->owner_uid = uid;   /* record_new(): queued */
	v = json_object_object_get(stored, "priority");
	r->priority = v ? priority_from_string(json_object_get_string(v)) : PRIORITY_MEDIUM;
	(void) intern_string(json_object_get_string(json_object_object_get(stored, "workflow_id")), &r->loop_id);   /* NULL: -ENOMEM */
	if (client_ref)
		r->client_ref = strdup(client_ref);
	if (!r->loop_id || (client_ref && !r->client_ref))
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	r->created_at = r->updated_at = now;
	r->params = TAKE_PTR(stored);

	/* Answered once durable, like request.submit (on_submitted). */
	k = manager_submit(m, r, on_submitted, call);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	TAKE_PTR(r);
}
