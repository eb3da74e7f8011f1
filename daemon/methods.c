/* methods.c — the socket protocol's methods (PROTOCOL.md §4, §5): the
 * dispatcher and its table (administrators' methods checked here), hello,
 * status, watch, queue.pause/resume and daemon.reload; the request methods
 * are in methods_submit.c and methods_request.c, the loop methods in
 * remote.c (methods_internal.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "inbox.h"
#include "methods_internal.h"
#include "params.h"
#include "sweep.h"
#include "telemetry.h"

#define PROTOCOL_VERSION 1

bool methods_caller_is_admin(Manager *m, RpcCall *call) {
	return manager_peer_is_admin(m, rpc_call_uid(call), rpc_call_gid(call));
}

/* ------------------------------------------------------------------ hello, status */

static void method_hello(Manager *m, RpcCall *call) {
	static const char *const known[] = { "client", "protocol", NULL };
	json_object *p = rpc_call_params(call), *v, *result;

	if (!params_check_known(call, known))
		return;
	v = json_object_object_get(p, "client");
	if (v && !json_object_is_type(v, json_type_string))
		return params_reply_invalid(call, "client", "must be a string");
	v = json_object_object_get(p, "protocol");
	if (v && (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) != PROTOCOL_VERSION))
		return params_reply_invalid(call, "protocol", "this daemon speaks protocol 1");

	result = json_object_new_object();
	json_object_object_add(result, "protocol", json_object_new_int(PROTOCOL_VERSION));
	json_object_object_add(result, "daemon", json_object_new_string("hitld"));
	json_object_object_add(result, "version", json_object_new_string(HITLD_VERSION));
	json_object_object_add(result, "uid", json_object_new_int64(rpc_call_uid(call)));
	json_object_object_add(result, "admin", json_object_new_boolean(methods_caller_is_admin(m, call)));
	rpc_call_reply(call, result);
}

/* Where a key came from, as the protocol names it (status, daemon.reload). */
static const char *key_source_name(SecretSource s) {
	static const char *const sources[_SECRET_SOURCE_MAX] = {
		[SECRET_SOURCE_CREDENTIAL] = "credential",
		[SECRET_SOURCE_KEY_FILE] = "key_file",
		[SECRET_SOURCE_ENVIRONMENT] = "environment",
	};

	return s >= 0 && s < _SECRET_SOURCE_MAX ? sources[s] : NULL;
}

static json_object *key_source_json(SecretSource s) {
	const char *name = key_source_name(s);

	return name ? json_object_new_string(name) : NULL;
}

/* The key's lifecycle and the standby key (status's key.*). */
static void status_key_lifecycle(Manager *m, usec_t now, StatusFacts *f) {
	const KeyLifeEntry *e = m->api_key_id ? keylife_get(&m->ks.life, m->api_key_id) : NULL;
	StatusNumbers *n = &f->num;

	n->key_on_standby = m->ks.on_standby;
	f->str[STATUS_KEY_SOURCE] = m->key_state != KEY_MISSING ? key_source_name(m->key_source) : NULL;
	n->key_first_used_at = e ? (int64_t) e->first_used : 0;
	n->key_age_days_null = !e;
	n->key_age_days = e ? (int64_t) keylife_age_days(&m->ks.life, m->api_key_id, now) : 0;
	n->key_rotate_after_days = m->config->api_rotate_after_days;
	n->key_switched_at = (int64_t) m->ks.switched_at;
	f->str[STATUS_KEY_SWITCH_REASON] = m->ks.switch_reason;
	n->standby = m->ks.standby != STANDBY_NONE;
	if (n->standby) {
		f->str[STATUS_STANDBY_STATE] = standby_state_to_string(m->ks.standby);
		f->str[STATUS_STANDBY_SOURCE] = key_source_name(m->ks.standby_source);
		f->str[STATUS_STANDBY_ERROR] = m->ks.standby_error;
	}
}

/* Everything status shows, as the caller may see it now (status_reply.h).
 * loops has room for m->n_loop_pauses entries. */
static void status_facts(Manager *m, RpcCall *call, usec_t now, StatusLoop *loops, StatusFacts *ret) {
	bool admin = methods_caller_is_admin(m, call);
	uid_t uid = rpc_call_uid(call);
	StatusNumbers *n = &ret->num;
	Record *oldest;
	unsigned per_uid, total;

	*ret = (StatusFacts) {};
	n->started_at = (int64_t) m->started_at;
	n->uptime_s = (int64_t) (usec_sub(now, m->started_at) / USEC_PER_SEC);

	budget_tick(&m->budget, now);
	budget_interactive_shares(&m->budget, &per_uid, &total);
	n->limit = m->budget.limit;
	n->remaining = budget_remaining(&m->budget, now);
	n->used = m->budget.used;
	n->reset_at = (int64_t) m->budget.window_end;
	n->paused_until = m->budget.paused_until > now ? (int64_t) m->budget.paused_until : 0;
	n->from_server = m->budget.from_server;
	n->interactive_share_null = admin;
	n->interactive_share = admin ? 0 : per_uid;
	n->interactive_used = admin ? m->budget.interactive_used : budget_interactive_used(&m->budget, uid, now);
	n->interactive_total = total;

	/* The outbox keeps these counts, globally and per uid: no walk over
	 * 100,000 records, whoever asks (a non-admin flooding status must cost
	 * O(1) each). The oldest queued request is the first queued one in
	 * acceptance order. */
	for (RequestState st = 0; st < _REQUEST_STATE_MAX; st++)
		n->counts[st] = (int64_t) (admin ? outbox_count_state(m->outbox, st)
		                                 : outbox_count_state_uid(m->outbox, uid, st));
	oldest = admin ? outbox_oldest_queued(m->outbox) : outbox_oldest_queued_uid(m->outbox, uid);
	n->oldest_queued_at = oldest ? (int64_t) oldest->created_at : 0;

	n->reachable = m->reachable;
	n->last_ok_at = (int64_t) m->last_ok_at;
	n->last_error_at = (int64_t) m->last_error_at;
	n->last_attempt_at = (int64_t) m->last_attempt_at;
	n->consecutive_failures = m->consecutive_failures;
	n->backoff_until = m->backoff_until > now ? (int64_t) m->backoff_until : 0;
	n->breaker = m->breaker;
	n->breaker_since = (int64_t) m->breaker_since;
	n->breaker_probe_at = (int64_t) m->breaker_probe_at;
	accounting_status_facts(m, n);
	telemetry_status_facts(m, admin, uid, now, ret);
	inbox_status_facts(m, ret);
	sweep_status_facts(m, ret);
	/* Nothing above changes the pauses: loops still fits them (method_status). */
	assert(loops || m->n_loop_pauses == 0);
	for (size_t i = 0; i < m->n_loop_pauses; i++)
		loops[i] = (StatusLoop) { m->loop_pauses[i].loop_id, m->loop_pauses[i].reason, m->loop_pauses[i].until };
	ret->loops = loops;
	ret->n_loops = m->n_loop_pauses;

	n->key_loaded = m->key_state != KEY_MISSING;
	n->key_valid = m->key_state == KEY_VALID ? 1 : m->key_state == KEY_INVALID ? 0 : -1;
	n->socket_activated = m->listen_inherited;
	n->socket_replaced = manager_socket_replaced(m);
	n->paused = m->paused;

	ret->str[STATUS_BASE_URL] = m->config->api_base_url;
	ret->str[STATUS_LAST_ERROR] = m->last_error;
	ret->str[STATUS_BREAKER_REASON] = m->breaker_reason;
	ret->str[STATUS_API_KEY_ID] = m->api_key_id;
	ret->str[STATUS_KEY_ERROR] = m->key_error;
	status_key_lifecycle(m, now, ret);
	ret->str[STATUS_SOCKET_PATH] = m->socket_path;
}

/* status is what monitoring polls: its text is built once and sent again
 * while nothing it shows has changed (status_reply.h). */
static void method_status(Methods *ms, RpcCall *call) {
	static const char *const known[] = { NULL };
	Manager *m = ms->manager;
	_cleanup_(freep) StatusLoop *loops = NULL;
	StatusFacts facts;
	json_object *reply;

	if (!params_check_known(call, known))
		return;
	if (m->n_loop_pauses > 0 && !(loops = calloc(m->n_loop_pauses, sizeof *loops)))
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	status_facts(m, call, now_realtime(), loops, &facts);
	reply = status_reply_object(&ms->status, &facts);
	if (!reply)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	rpc_call_reply(call, reply);
}

/* ------------------------------------------------------------------ watch, admin */

static void method_watch(Manager *m, RpcCall *call) {
	static const char *const known[] = { "ids", NULL };
	json_object *ids = json_object_object_get(rpc_call_params(call), "ids"), *result;
	size_t count = 0;
	int k;

	if (!params_check_known(call, known))
		return;
	if (rpc_call_is_notification(call))
		return rpc_call_reply(call, NULL);
	if (ids) {
		if (!json_object_is_type(ids, json_type_array) || json_object_array_length(ids) > 10000)
			return params_reply_invalid(call, "ids", "must be an array of request ids (at most 10000)");
		for (size_t i = 0; i < json_object_array_length(ids); i++) {
			json_object *id = json_object_array_get_idx(ids, i);
			if (!json_object_is_type(id, json_type_string) || !record_id_is_valid(json_object_get_string(id)))
				return params_reply_invalid(call, "ids", "must be an array of request ids");
		}
	}
	k = manager_add_watch(m, rpc_call_conn(call), rpc_call_uid(call), methods_caller_is_admin(m, call), ids, &count);
	if (k == -EALREADY)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "This connection is already watching.", NULL);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	result = json_object_new_object();
	json_object_object_add(result, "watching", json_object_new_int64((int64_t) count));
	rpc_call_reply(call, result);
}

static void method_pause(Manager *m, RpcCall *call, bool pause) {
	static const char *const known[] = { NULL };
	json_object *result;

	if (!params_check_known(call, known))
		return;
	if (m->paused != pause)
		manager_set_paused(m, pause);
	result = json_object_new_object();
	json_object_object_add(result, "paused", json_object_new_boolean(m->paused));
	rpc_call_reply(call, result);
}

/* Why secret_load() refused a key, in the words its log line uses. */
static const char *key_load_reason(int error) {
	switch (error) {
	case -ENOKEY:
		return "no source has a key to read again (no credential, no api.key_file; HITL_API_KEY is read only at start)";
	case -EPERM:
		return "the key file is accessible by group or others, or owned by another user";
	case -ELOOP:
		return "the key file is a symbolic link";
	case -EBADFD:
		return "the key file is not a regular file";
	case -E2BIG:
		return "the key file is too large to hold an API key";
	case -EBADMSG:
	case -EINVAL:
		return "it does not hold a key (1-256 printable characters, no spaces)";
	case -ENOENT:
		return "the key file does not exist";
	default:
		return NULL;
	}
}

/* daemon.reload's "key" (PROTOCOL.md §5.11): {"loaded": true, "source"} or
 * {"loaded": false, "reason": "no_key" | "refused", "kept": whether the
 * previous key stays in use, "error": why, in words}. */
static json_object *key_load_reply(const Manager *m) {
	json_object *o = json_object_new_object();
	const char *why;

	json_object_object_add(o, "loaded", json_object_new_boolean(m->key_load_result == 0));
	if (m->key_load_result == 0) {
		json_object_object_add(o, "source", key_source_json(m->key_source));
		return o;
	}
	why = key_load_reason(m->key_load_result);
	json_object_object_add(o, "reason", json_object_new_string(m->key_load_result == -ENOKEY ? "no_key" : "refused"));
	json_object_object_add(o, "kept", json_object_new_boolean(m->key_load_kept));
	json_object_object_add(o, "error", json_object_new_string(why ? why : strerror(-m->key_load_result)));
	return o;
}

static void method_reload(Manager *m, RpcCall *call) {
	static const char *const known[] = { NULL };
	json_object *result, *restart;
	int k;

	if (!params_check_known(call, known))
		return;
	k = manager_reload(m);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "The configuration has errors; the old one stays (see the journal).", NULL);
	result = json_object_new_object();
	json_object_object_add(result, "reloaded", json_object_new_boolean(true));
	json_object_object_add(result, "key", key_load_reply(m));
	restart = json_object_new_array();
	for (size_t i = 0; i < m->n_restart_needed; i++)
		json_object_array_add(restart, json_object_new_string(m->restart_needed[i]));
	json_object_object_add(result, "restart_needed", restart);
	rpc_call_reply(call, result);
}

/* handler: a method of the engine's state alone; handler_ms: one that
 * needs more of this layer (the Remote). Exactly one is set. */
typedef struct Method {
	const char *name;
	bool admin;
	void (*handler)(Manager *m, RpcCall *call);
	void (*handler_ms)(Methods *ms, RpcCall *call);
} Method;

static void method_pause_on(Manager *m, RpcCall *call) {
	method_pause(m, call, true);
}

static void method_pause_off(Manager *m, RpcCall *call) {
	method_pause(m, call, false);
}

/* key.rotate: answered when the standby's GET /test has (manager.h). */
static void on_key_rotated(Manager *m, int error, const char *msg, void *userdata) {
	RpcCall *call = userdata;
	json_object *result, *data;

	rpc_call_set_abandon(call, NULL, NULL);
	if (error == 0) {
		result = json_object_new_object();
		json_object_object_add(result, "switched", json_object_new_boolean(true));
		json_object_object_add(result, "api_key_id", m->api_key_id ? json_object_new_string(m->api_key_id) : NULL);
		return rpc_call_reply(call, result);
	}
	data = json_object_new_object();
	json_object_object_add(data, "standby", json_object_new_string(standby_state_to_string(m->ks.standby)));
	json_object_object_add(data, "msg", json_object_new_string(msg ? msg : strerror(-error)));
	if (error == -EKEYREJECTED) {
		_cleanup_(freep) char *text = NULL;

		if (asprintf(&text, "HITL.sh refused the standby key (%s); the current key stays in use.", strna(msg)) < 0)
			text = NULL;
		rpc_call_error(call, RPC_ERROR_INVALID_STATE,
		               text ? text : "HITL.sh refused the standby key; the current key stays in use.", data);
	} else
		rpc_call_error(call, RPC_ERROR_UNAVAILABLE, "The standby key could not be tested; the current key stays in use.",
		               data);
}

static void on_key_rotate_abandon(RpcCall *call, void *userdata) {
	manager_key_rotate_forget(userdata, call);
}

static void method_key_rotate(Manager *m, RpcCall *call) {
	int k;

	if (m->shutting_down)
		return rpc_call_error(call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);
	k = manager_key_rotate(m, on_key_rotated, call);
	if (k == -ENOKEY)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE,
		                      "No standby key is loaded (credential hitl-api-key.next or api.next_key_file).", NULL);
	if (k == -EBUSY)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "A key rotation is under way already.", NULL);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "The standby key could not be tested.", NULL);
	rpc_call_set_abandon(call, on_key_rotate_abandon, m);
}

static void method_usage(Manager *m, RpcCall *call) {
	accounting_method_usage(m, call, methods_caller_is_admin(m, call));
}

static void method_metrics(Manager *m, RpcCall *call) {
	static const char *const known[] = { NULL };

	if (params_check_known(call, known))
		telemetry_method_metrics(m, call, methods_caller_is_admin(m, call));
}

static void method_key_test(Methods *ms, RpcCall *call) {
	remote_method_key_test(ms->remote, call);
}

static void method_loop(Methods *ms, RpcCall *call) {
	remote_method_loop(ms->remote, call);
}

static const Method methods[] = {
	{ "hello", false, method_hello, NULL },
	{ "status", false, NULL, method_status },
	{ "metrics", false, method_metrics, NULL },
	{ "request.submit", false, NULL, method_submit },
	{ "request.get", false, method_get, NULL },
	{ "request.wait", false, method_wait, NULL },
	{ "request.list", false, method_list, NULL },
	{ "request.cancel", false, method_cancel, NULL },
	{ "request.feedback", false, method_feedback, NULL },
	{ "workflow.trigger", false, method_trigger, NULL },
	{ "watch", false, method_watch, NULL },
	{ "usage", false, method_usage, NULL },
	{ "queue.pause", true, method_pause_on, NULL },
	{ "queue.resume", true, method_pause_off, NULL },
	{ "daemon.reload", true, method_reload, NULL },
	{ "key.test", true, NULL, method_key_test },
	{ "key.rotate", true, method_key_rotate, NULL },
	{ "loop.list", false, NULL, method_loop },
	{ "loop.get", false, NULL, method_loop },
	{ "loop.members", false, NULL, method_loop },
	{ "loop.create", false, NULL, method_loop },
	{ "loop.update", false, NULL, method_loop },
	{ "loop.delete", false, NULL, method_loop },
	{ "loop.remove_member", false, NULL, method_loop },
};

static void dispatch(RpcCall *call, void *userdata) {
	Methods *ms = userdata;
	Manager *m = ms->manager;
	const char *name = rpc_call_method(call);

	for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
		if (!streq(methods[i].name, name))
			continue;
		if (methods[i].admin && !methods_caller_is_admin(m, call))
			return rpc_call_error(call, RPC_ERROR_PERMISSION, "This method is for administrators only.", NULL);
		if (methods[i].handler_ms)
			return methods[i].handler_ms(ms, call);
		return methods[i].handler(m, call);
	}
	rpc_call_error(call, RPC_ERROR_METHOD_NOT_FOUND, "Method not found.", NULL);
}

int methods_new(Manager *m, Methods **ret) {
	_cleanup_(methods_freep) Methods *ms = NULL;
	int k;

	ms = calloc(1, sizeof *ms);
	if (!ms)
		return -ENOMEM;
	ms->manager = m;
	k = remote_new(m, &ms->remote);
	if (k < 0)
		return k;
	manager_set_dispatch(m, dispatch, ms);
	*ret = TAKE_PTR(ms);
	return 0;
}

Methods *methods_free(Methods *ms) {
	if (!ms)
		return NULL;
	remote_free(ms->remote);
	status_reply_clear(&ms->status);
	free(ms);
	return NULL;
}
