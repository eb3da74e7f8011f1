/* methods.c — the socket protocol's methods (PROTOCOL.md §4, §5): the
 * dispatcher and its table (administrators' methods checked here), hello,
 * status, watch, queue.pause/resume and daemon.reload; the request methods
 * are in methods_submit.c and methods_request.c, the loop methods in
 * remote.c (methods_internal.h). */
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

static json_object *iso_or_null(usec_t t) {
	char buf[ISO8601_MAX];

	return t ? json_object_new_string(format_iso8601(t, buf)) : NULL;
}

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
static json_object *key_source_json(SecretSource s) {
	static const char *const sources[_SECRET_SOURCE_MAX] = {
		[SECRET_SOURCE_CREDENTIAL] = "credential",
		[SECRET_SOURCE_KEY_FILE] = "key_file",
		[SECRET_SOURCE_ENVIRONMENT] = "environment",
	};

	return s >= 0 && s < _SECRET_SOURCE_MAX ? json_object_new_string(sources[s]) : NULL;
}

/* status's key lifecycle fields (PROTOCOL.md, status): never the key, only
 * its id, where it came from, its age and the standby's state. */
static void status_key_lifecycle(Manager *m, json_object *key, usec_t now) {
	const KeyLifeEntry *e = m->api_key_id ? keylife_get(&m->ks.life, m->api_key_id) : NULL;
	json_object *standby = NULL;

	json_object_object_add(key, "active", json_object_new_string(m->ks.on_standby ? "standby" : "primary"));
	json_object_object_add(key, "source", m->key_state != KEY_MISSING ? key_source_json(m->key_source) : NULL);
	json_object_object_add(key, "first_used_at", e ? iso_or_null(e->first_used) : NULL);
	json_object_object_add(key, "age_days",
	                       e ? json_object_new_int64(keylife_age_days(&m->ks.life, m->api_key_id, now)) : NULL);
	json_object_object_add(key, "rotate_after_days", json_object_new_int64(m->config->api_rotate_after_days));
	json_object_object_add(key, "switched_at", m->ks.switched_at ? iso_or_null(m->ks.switched_at) : NULL);
	json_object_object_add(key, "switch_reason", m->ks.switch_reason ? json_object_new_string(m->ks.switch_reason) : NULL);
	if (m->ks.standby != STANDBY_NONE) {
		standby = json_object_new_object();
		json_object_object_add(standby, "state", json_object_new_string(standby_state_to_string(m->ks.standby)));
		json_object_object_add(standby, "source", key_source_json(m->ks.standby_source));
		json_object_object_add(standby, "error", m->ks.standby_error ? json_object_new_string(m->ks.standby_error) : NULL);
	}
	json_object_object_add(key, "standby", standby);
}

/* status's "budget": the window, and the caller's share of loop calls in it
 * (administrators have none). */
static json_object *status_budget(Manager *m, uid_t uid, bool admin, usec_t now) {
	json_object *budget = json_object_new_object(), *interactive = json_object_new_object();
	unsigned per_uid, total;

	budget_tick(&m->budget, now);
	json_object_object_add(budget, "limit", json_object_new_int64(m->budget.limit));
	json_object_object_add(budget, "remaining", json_object_new_int64(budget_remaining(&m->budget, now)));
	json_object_object_add(budget, "used", json_object_new_int64(m->budget.used));
	json_object_object_add(budget, "reset_at", iso_or_null(m->budget.window_end));
	json_object_object_add(budget, "paused_until",
	                       m->budget.paused_until > now ? iso_or_null(m->budget.paused_until) : NULL);
	json_object_object_add(budget, "source", json_object_new_string(m->budget.from_server ? "server" : "local"));

	budget_interactive_shares(&m->budget, &per_uid, &total);
	json_object_object_add(interactive, "share", admin ? NULL : json_object_new_int64(per_uid));
	json_object_object_add(interactive, "used",
	                       json_object_new_int64(admin ? m->budget.interactive_used
	                                                   : budget_interactive_used(&m->budget, uid, now)));
	json_object_object_add(interactive, "total", json_object_new_int64(total));
	json_object_object_add(budget, "interactive", interactive);
	return budget;
}

/* status's "queue": the counts of every state, the caller's own unless an
 * administrator asks. The outbox keeps these counts, globally and per uid: no
 * walk over 100,000 records, whoever asks (a non-admin flooding status must
 * cost O(1) each). The oldest queued request is the first queued one in
 * acceptance order. */
static json_object *status_queue(Manager *m, uid_t uid, bool admin) {
	json_object *queue = json_object_new_object();
	Record *oldest;

	for (RequestState s = 0; s < _REQUEST_STATE_MAX; s++)
		json_object_object_add(queue, request_state_to_string(s),
		                       json_object_new_int64((int64_t) (admin ? outbox_count_state(m->outbox, s)
		                                                              : outbox_count_state_uid(m->outbox, uid, s))));
	oldest = admin ? outbox_oldest_queued(m->outbox) : outbox_oldest_queued_uid(m->outbox, uid);
	json_object_object_add(queue, "oldest_queued_at", iso_or_null(oldest ? oldest->created_at : 0));
	return queue;
}

/* Creates paused by the circuit breaker, and loops whose creates pause
 * (PROTOCOL.md §5.4). */
static void status_api_pauses(Manager *m, json_object *api) {
	json_object *paused = NULL, *loops = json_object_new_array();

	if (m->breaker != APIERR_NONE) {
		paused = json_object_new_object();
		json_object_object_add(paused, "class", json_object_new_string(apierr_class_to_string(m->breaker)));
		json_object_object_add(paused, "reason", json_object_new_string(strna(m->breaker_reason)));
		json_object_object_add(paused, "since", iso_or_null(m->breaker_since));
		json_object_object_add(paused, "next_probe_at", iso_or_null(m->breaker_probe_at));
	}
	json_object_object_add(api, "creates_paused", paused);
	for (size_t i = 0; i < m->n_loop_pauses; i++) {
		json_object *l = json_object_new_object();

		json_object_object_add(l, "loop_id", json_object_new_string(m->loop_pauses[i].loop_id));
		json_object_object_add(l, "reason", json_object_new_string(strna(m->loop_pauses[i].reason)));
		json_object_object_add(l, "next_probe_at", iso_or_null(m->loop_pauses[i].until));
		json_object_array_add(loops, l);
	}
	json_object_object_add(api, "loops_paused", loops);
}

/* status's "api": HITL.sh's health as the engine sees it. */
static json_object *status_api(Manager *m, usec_t now) {
	json_object *api = json_object_new_object();

	json_object_object_add(api, "base_url", json_object_new_string(m->config->api_base_url));
	json_object_object_add(api, "reachable", json_object_new_boolean(m->reachable));
	json_object_object_add(api, "last_ok_at", iso_or_null(m->last_ok_at));
	json_object_object_add(api, "last_error", m->last_error ? json_object_new_string(m->last_error) : NULL);
	json_object_object_add(api, "last_error_at", iso_or_null(m->last_error_at));
	json_object_object_add(api, "last_attempt_at", iso_or_null(m->last_attempt_at));
	json_object_object_add(api, "consecutive_failures", json_object_new_int64(m->consecutive_failures));
	json_object_object_add(api, "backoff_until", m->backoff_until > now ? iso_or_null(m->backoff_until) : NULL);
	status_api_pauses(m, api);
	json_object_object_add(api, "foreign", accounting_status_json(m));
	return api;
}

static json_object *status_key(Manager *m) {
	json_object *key = json_object_new_object();

	json_object_object_add(key, "loaded", json_object_new_boolean(m->key_state != KEY_MISSING));
	json_object_object_add(key, "valid",
	                       m->key_state == KEY_VALID     ? json_object_new_boolean(true)
	                       : m->key_state == KEY_INVALID ? json_object_new_boolean(false)
	                                                     : NULL);
	json_object_object_add(key, "api_key_id", m->api_key_id ? json_object_new_string(m->api_key_id) : NULL);
	json_object_object_add(key, "error", m->key_error ? json_object_new_string(m->key_error) : NULL);
	status_key_lifecycle(m, key, now_realtime());
	return key;
}

static json_object *status_socket(Manager *m) {
	json_object *sock = json_object_new_object();

	json_object_object_add(sock, "path", json_object_new_string(m->socket_path));
	json_object_object_add(sock, "activated", json_object_new_boolean(m->listen_inherited));
	json_object_object_add(sock, "replaced", json_object_new_boolean(manager_socket_replaced(m)));
	return sock;
}

static void method_status(Manager *m, RpcCall *call) {
	static const char *const known[] = { NULL };
	bool admin = methods_caller_is_admin(m, call);
	uid_t uid = rpc_call_uid(call);
	usec_t now = now_realtime();
	json_object *result;

	if (!params_check_known(call, known))
		return;

	result = json_object_new_object();
	json_object_object_add(result, "version", json_object_new_string(HITLD_VERSION));
	json_object_object_add(result, "started_at", iso_or_null(m->started_at));
	json_object_object_add(result, "uptime_s", json_object_new_int64((int64_t) (usec_sub(now, m->started_at) / USEC_PER_SEC)));
	json_object_object_add(result, "budget", status_budget(m, uid, admin, now));
	json_object_object_add(result, "queue", status_queue(m, uid, admin));
	json_object_object_add(result, "forecast", telemetry_forecast_json(m, admin, uid, now));
	json_object_object_add(result, "api", status_api(m, now));
	json_object_object_add(result, "key", status_key(m));
	json_object_object_add(result, "socket", status_socket(m));
	json_object_object_add(result, "paused", json_object_new_boolean(m->paused));
	json_object_object_add(result, "webhook", inbox_status(m));
	json_object_object_add(result, "polling", sweep_status(m));
	rpc_call_reply(call, result);
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
	json_object *result;
	int k;

	if (!params_check_known(call, known))
		return;
	k = manager_reload(m);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INVALID_STATE, "The configuration has errors; the old one stays (see the journal).", NULL);
	result = json_object_new_object();
	json_object_object_add(result, "reloaded", json_object_new_boolean(true));
	json_object_object_add(result, "key", key_load_reply(m));
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
	{ "status", false, method_status, NULL },
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
	free(ms);
	return NULL;
}
