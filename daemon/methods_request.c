/* methods_request.c — the methods on records there are (PROTOCOL.md §5):
 * request.get, .wait, .list, .cancel and .feedback. Identity comes only
 * from the connection's peer credentials: a non-admin sees only its own
 * requests, and another uid's request answers exactly like one that does
 * not exist. A change a client asks for (cancel, feedback) is durable
 * before anyone hears of it; on failure nothing changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "logrl.h"
#include "cursor.h"
#include "log.h"
#include "methods_internal.h"
#include "msgid.h"
#include "params.h"
#include "queuepos.h"
#include "validate.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000
/* A page stops here even short of its limit, well inside the 4 MiB a
 * connection may have unsent: records can carry large contexts. */
#define LIST_PAGE_BYTES_MAX (512 * 1024)

static void reply_not_found(RpcCall *call) {
	rpc_call_error(call, RPC_ERROR_NOT_FOUND, "No such request.", NULL);
}

/* The record as a client sees it; a queued one also says where it stands
 * ("position", as request.submit does). */
static int record_json_for(Manager *m, RpcCall *call, Record *r, json_object **ret) {
	json_object *rec = NULL;
	int k;

	k = manager_record_json(m, r, &rec);
	if (k < 0)
		return k;
	if (r->state == REQUEST_QUEUED) {
		queuepos_refresh(m, r);
		json_object_object_add(rec, "position",
		                       json_object_new_int64((int64_t) (methods_caller_is_admin(m, call) ? r->position_all
		                                                                                : r->position_own)));
	}
	*ret = rec;
	return 0;
}

/* A json object that serializes as the text in its userdata: the record
 * serialized once and kept until it changes (Record.protocol_text). */
static int raw_to_json(json_object *jso, struct printbuf *pb, int level, int flags) {
	const char *text = json_object_get_userdata(jso);

	return printbuf_memappend(pb, text, (int) strlen(text));
}

static void reply_record(Manager *m, RpcCall *call, Record *r) {
	_cleanup_(json_object_putp) json_object *rec = NULL;
	_cleanup_(freep) char *with_position = NULL;
	json_object *raw;
	size_t len;

	if (!r->protocol_text) {
		if (manager_record_json(m, r, &rec) < 0) {
			rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
			return;
		}
		r->protocol_text = strdup(json_object_to_json_string_ext(
		        rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	len = r->protocol_text ? strlen(r->protocol_text) : 0;
	if (len < 2 || r->protocol_text[len - 1] != '}') {
		/* Out of memory: the slow way. */
		json_object_put(TAKE_PTR(rec));
		if (record_json_for(m, call, r, &rec) < 0)
			return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
		return rpc_call_reply(call, TAKE_PTR(rec));
	}
	/* The position changes without the record: it is added to the text. */
	if (r->state == REQUEST_QUEUED)
		queuepos_refresh(m, r);
	if (r->state == REQUEST_QUEUED &&
	    asprintf(&with_position, "%.*s,\"position\":%zu}", (int) (len - 1), r->protocol_text,
	             methods_caller_is_admin(m, call) ? r->position_all : r->position_own) < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	raw = json_object_new_object();
	if (!raw)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	/* rpc serializes the reply at once: the text need not outlive this call. */
	json_object_set_serializer(raw, raw_to_json, with_position ? with_position : r->protocol_text, NULL);
	rpc_call_reply(call, raw);
}

/* The record with this id if the caller may see it; NULL answers not_found. */
static Record *lookup_visible(Manager *m, RpcCall *call, const char *id) {
	Record *r = record_id_is_valid(id) ? outbox_get(m->outbox, id) : NULL;

	if (!r || (r->owner_uid != rpc_call_uid(call) && !methods_caller_is_admin(m, call)))
		return NULL;
	return r;
}

/* Finds the target of get/wait/cancel/feedback by "id" (or "client_ref" for get). */
static Record *lookup_param(Manager *m, RpcCall *call, bool allow_client_ref) {
	const char *id = NULL, *ref = NULL;
	int k;

	k = params_string(call, "id", RECORD_ID_MAX, &id);
	if (k == -EINVAL)
		return NULL;
	if (k == -ENOENT && allow_client_ref) {
		k = params_string(call, "client_ref", CLIENT_REF_MAX, &ref);
		if (k == -EINVAL)
			return NULL;
		if (k >= 0) {
			Record *r = outbox_get_client_ref(m->outbox, rpc_call_uid(call), ref);
			if (!r)
				reply_not_found(call);
			return r;
		}
	}
	if (!id) {
		params_reply_invalid(call, "id", "id is required");
		return NULL;
	}
	Record *r = lookup_visible(m, call, id);
	if (!r)
		reply_not_found(call);
	return r;
}

void method_get(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", "client_ref", NULL };
	Record *r;

	if (!params_check_known(call, known))
		return;
	r = lookup_param(m, call, true);
	if (r)
		reply_record(m, call, r);
}

void method_wait(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", "timeout_ms", NULL };
	int64_t timeout_ms = WAIT_DEFAULT_MS;
	Record *r;
	int k;

	if (!params_check_known(call, known))
		return;
	k = params_int(call, "timeout_ms", 0, WAIT_MAX_MS, &timeout_ms);
	if (k == -EINVAL)
		return;
	r = lookup_param(m, call, false);
	if (!r)
		return;
	methods_reply_wait(m, call, r, timeout_ms);
}

void methods_reply_wait(Manager *m, RpcCall *call, Record *r, int64_t timeout_ms) {
	json_object *result, *rec = NULL;
	int k;

	if (!r)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	if (request_state_is_terminal(r->state) || timeout_ms == 0 || m->shutting_down) {
		if (record_json_for(m, call, r, &rec) < 0)
			return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
		result = json_object_new_object();
		json_object_object_add(result, "request", rec);
		json_object_object_add(result, "done", json_object_new_boolean(request_state_is_terminal(r->state)));
		return rpc_call_reply(call, result);
	}
	k = manager_add_waiter(m, call, r, (usec_t) timeout_ms * USEC_PER_MSEC);
	if (k < 0)
		rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
}

/* One random key per daemon run: cursors do not outlive a restart (a client
 * given -32602 for an old cursor starts again from the newest). */
static int list_cursor_key(CursorKey *ret) {
	static CursorKey key;
	static bool have;
	int k;

	if (!have) {
		k = cursor_key_new(&key);
		if (k < 0)
			return log_error_errno(k, "Cannot make a request.list cursor key: %m");
		have = true;
	}
	*ret = key;
	return 0;
}

/* request.list's "state": one state or an array of them. false: refused
 * (answered); *ret_any: no filter. */
static bool list_states(RpcCall *call, bool want[static _REQUEST_STATE_MAX], bool *ret_any) {
	json_object *states = json_object_object_get(rpc_call_params(call), "state");
	size_t count;

	*ret_any = !states;
	if (!states)
		return true;
	if (json_object_is_type(states, json_type_string)) {
		RequestState s = request_state_from_string(json_object_get_string(states));
		if (s < 0) {
			params_reply_invalid(call, "state", "unknown state");
			return false;
		}
		want[s] = true;
		return true;
	}
	if (!json_object_is_type(states, json_type_array)) {
		params_reply_invalid(call, "state", "must be an array of states");
		return false;
	}
	count = json_object_array_length(states);
	if (count > _REQUEST_STATE_MAX * 2) {
		params_reply_invalid(call, "state", "too many states");
		return false;
	}
	for (size_t i = 0; i < count; i++) {
		RequestState s = request_state_from_string(json_object_get_string(json_object_array_get_idx(states, i)));
		if (!json_object_is_type(json_object_array_get_idx(states, i), json_type_string) || s < 0) {
			params_reply_invalid(call, "state", "unknown state");
			return false;
		}
		want[s] = true;
	}
	return true;
}

/* What request.list was asked for. */
typedef struct ListQuery {
	bool want[_REQUEST_STATE_MAX], any_state;
	const char *loop_id;
	int64_t limit, owner;
	uint64_t max_seq;      /* the cursor: records older than the last one given */
} ListQuery;

/* Reads and checks request.list's params. false: refused (answered). */
static bool list_query(RpcCall *call, bool admin, ListQuery *q) {
	const char *cursor = NULL;
	CursorKey key;
	int k;

	*q = (ListQuery) { .limit = LIST_DEFAULT_LIMIT, .owner = -1, .max_seq = UINT64_MAX };
	if (!list_states(call, q->want, &q->any_state))
		return false;
	if (params_string(call, "loop_id", 64, &q->loop_id) == -EINVAL ||
	    params_int(call, "limit", 1, LIST_MAX_LIMIT, &q->limit) == -EINVAL)
		return false;
	k = params_int(call, "owner_uid", 0, UINT32_MAX, &q->owner);
	if (k == -EINVAL)
		return false;
	if (k >= 0 && !admin && (uid_t) q->owner != rpc_call_uid(call)) {
		rpc_call_error(call, RPC_ERROR_PERMISSION, "Only administrators may list other users' requests.", NULL);
		return false;
	}
	if (params_string(call, "cursor", 32, &cursor) == -EINVAL)
		return false;
	if (cursor) {
		uint64_t c;

		/* Opaque and bound to the caller's uid: a cursor of another user, or
		 * a made-up one ("-1", a bare seq), is refused. */
		if (list_cursor_key(&key) < 0 || cursor_decode(&key, rpc_call_uid(call), cursor, &c) < 0) {
			params_reply_invalid(call, "cursor", "not a cursor this daemon gave you");
			return false;
		}
		q->max_seq = c - 1;
	}
	return true;
}

void method_list(Manager *m, RpcCall *call) {
	static const char *const known[] = { "state", "loop_id", "owner_uid", "limit", "cursor", NULL };
	json_object *result, *list;
	bool admin = methods_caller_is_admin(m, call);
	size_t n = 0, bytes = 0;
	Record *r, *last = NULL;
	CursorKey key;
	char next[CURSOR_STRING_MAX];
	ListQuery q;
	bool by_uid;
	uid_t list_uid;

	if (!params_check_known(call, known) || !list_query(call, admin, &q))
		return;

	/* One uid's requests are walked through the outbox's per-uid list:
	 * O(that uid's requests), not O(all), for a non-admin. */
	by_uid = !admin || q.owner >= 0;
	list_uid = q.owner >= 0 ? (uid_t) q.owner : rpc_call_uid(call);
	list = json_object_new_array();
	/* Newest first by acceptance order; seq never changes, so a cursor
	 * (the last seq returned) stays valid while new requests arrive. */
	for (r = by_uid ? outbox_seek_le_uid(m->outbox, list_uid, q.max_seq) : outbox_seek_le(m->outbox, q.max_seq); r;
	     r = by_uid ? outbox_prev_uid(m->outbox, r) : outbox_prev(m->outbox, r)) {
		json_object *rec;

		if (by_uid && r->owner_uid != list_uid)
			continue;
		if (!q.any_state && !q.want[r->state])
			continue;
		if (q.loop_id && !streq_ptr(r->loop_id, q.loop_id))
			continue;
		if ((int64_t) n == q.limit || bytes >= LIST_PAGE_BYTES_MAX)
			break;
		if (manager_record_json(m, r, &rec) < 0)
			continue;
		bytes += strlen(json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN));
		json_object_array_add(list, rec);
		last = r;
		n++;
	}

	result = json_object_new_object();
	json_object_object_add(result, "requests", list);
	if (r && last && list_cursor_key(&key) >= 0 &&
	    cursor_encode(&key, rpc_call_uid(call), last->seq, next) >= 0) {
		json_object_object_add(result, "next_cursor", json_object_new_string(next));
	} else
		json_object_object_add(result, "next_cursor", NULL);
	rpc_call_reply(call, result);
}

/* ------------------------------------------------------------------ cancel, feedback */

void method_cancel(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", NULL };
	Record *r;

	if (!params_check_known(call, known))
		return;
	r = lookup_param(m, call, false);
	if (!r)
		return;
	if (request_state_is_terminal(r->state))
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "The request is already final.", NULL);
	if (r->kind == RECORD_TRIGGER && r->state != REQUEST_QUEUED)
		/* Sent (or being sent): HITL.sh has no way to stop an execution. */
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "A workflow trigger can only be cancelled while it is queued.", NULL);

	bool old_cancel = r->cancel_requested;
	usec_t old_next = r->next_attempt_at, old_updated = r->updated_at;

	if (r->state == REQUEST_QUEUED) {
		/* Never sent: nothing to tell HITL.sh, no budget spent. */
		(void) record_cancel_local(r);
	} else
		r->cancel_requested = true;

	/* Durable first: on failure nothing changed and nobody was told. */
	r->updated_at = now_realtime();
	if (outbox_save(m->outbox, r) < 0) {
		if (r->state == REQUEST_CANCELLED)
			(void) record_uncancel_local(r);
		r->cancel_requested = old_cancel;
		r->next_attempt_at = old_next;
		r->updated_at = old_updated;
		return rpc_call_error(call, RPC_ERROR_STORAGE, "The cancel could not be stored durably.", NULL);
	}
	manager_record_saved(m, r);
	if (r->state == REQUEST_CANCELLED) {
		static LogRl cancelled_log = LOGRL_AUDIT;
		char uid[16], more[LOGRL_SUFFIX_MAX];
		unsigned held;

		snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
		if (logrl_below(&cancelled_log, r->owner_uid, now_monotonic(), &held))
			log_event(LOG_INFO, MID_REQUEST_CANCELLED,
			          LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_UID", uid },
			                     { "HITL_STATE", "cancelled" }),
			          "Request %s of uid %u cancelled before it was sent.%s", r->id,
			          (unsigned) r->owner_uid, logrl_suffix(held, more));
	}
	reply_record(m, call, r);
}

void method_feedback(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", "feedback", NULL };
	json_object *fb = json_object_object_get(rpc_call_params(call), "feedback");
	ValidationError err = {};
	Record *r;

	if (!params_check_known(call, known))
		return;
	if (!fb)
		return params_reply_invalid(call, "feedback", "feedback is required");
	if (validate_feedback(fb, &err) < 0)
		return params_reply_invalid(call, err.field, err.reason);
	r = lookup_param(m, call, false);
	if (!r)
		return;
	if (r->state != REQUEST_COMPLETED || r->kind != RECORD_REQUEST)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "Feedback can only be given on completed requests.", NULL);
	if (r->feedback_state != FEEDBACK_NONE)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "Feedback was already given on this request.", NULL);

	json_object *old_feedback = r->feedback;
	usec_t old_updated = r->updated_at;

	r->feedback = json_object_get(fb);
	r->feedback_state = FEEDBACK_QUEUED;
	r->updated_at = now_realtime();
	if (outbox_save(m->outbox, r) < 0) {
		json_object_put(r->feedback);
		r->feedback = old_feedback;
		r->feedback_state = FEEDBACK_NONE;
		r->updated_at = old_updated;
		return rpc_call_error(call, RPC_ERROR_STORAGE, "The feedback could not be stored durably.", NULL);
	}
	json_object_put(old_feedback);
	manager_record_saved(m, r);
	reply_record(m, call, r);
}
