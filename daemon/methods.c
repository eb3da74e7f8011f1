#include <inttypes.h>
/* methods.c — the socket protocol's methods (PROTOCOL.md §4), answered from
 * the manager's state. Identity comes only from the connection's peer
 * credentials; a non-admin sees only its own requests, and another uid's
 * request answers exactly like one that does not exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cursor.h"
#include "log.h"
#include "methods.h"
#include "msgid.h"
#include "remote.h"
#include "status_reply.h"
#include "trigger.h"
#include "validate.h"

#define PROTOCOL_VERSION 1
#define WAIT_DEFAULT_MS 30000
#define WAIT_MAX_MS 3600000
#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000
/* A page stops here even short of its limit, well inside the 4 MiB a
 * connection may have unsent: records can carry large contexts. */
#define LIST_PAGE_BYTES_MAX (512 * 1024)

struct Methods {
	Manager *manager;
	Remote *remote;           /* loop.*, key.test and their cache */
	StatusReply status;       /* status's text, kept while nothing it shows changes */
};


static void reply_invalid_params(RpcCall *call, const char *field, const char *reason) {
	json_object *data = json_object_new_object();

	json_object_object_add(data, "field", json_object_new_string(field));
	json_object_object_add(data, "reason", json_object_new_string(reason));
	rpc_call_error(call, RPC_ERROR_INVALID_PARAMS, "Invalid parameters.", data);
}

static void reply_not_found(RpcCall *call) {
	rpc_call_error(call, RPC_ERROR_NOT_FOUND, "No such request.", NULL);
}

static size_t queue_position(Manager *m, const Record *target, bool all_users, bool newest);
static void refresh_positions(Manager *m, const Record *r);
static bool caller_is_admin(Manager *m, RpcCall *call);

/* The record as a client sees it; a queued one also says where it stands
 * ("position", as request.submit does). */
static int record_json_for(Manager *m, RpcCall *call, Record *r, json_object **ret) {
	json_object *rec = NULL;
	int k;

	k = manager_record_json(m, r, &rec);
	if (k < 0)
		return k;
	if (r->state == REQUEST_QUEUED) {
		refresh_positions(m, r);
		json_object_object_add(rec, "position",
		                       json_object_new_int64((int64_t) (caller_is_admin(m, call) ? r->position_all
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
		refresh_positions(m, r);
	if (r->state == REQUEST_QUEUED &&
	    asprintf(&with_position, "%.*s,\"position\":%zu}", (int) (len - 1), r->protocol_text,
	             caller_is_admin(m, call) ? r->position_all : r->position_own) < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	raw = json_object_new_object();
	if (!raw)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	/* rpc serializes the reply at once: the text need not outlive this call. */
	json_object_set_serializer(raw, raw_to_json, with_position ? with_position : r->protocol_text, NULL);
	rpc_call_reply(call, raw);
}

/* Rejects parameters the method does not know: a typo must not pass silently. */
static bool check_known_params(RpcCall *call, const char *const *known) {
	json_object_object_foreach(rpc_call_params(call), key, val) {
		bool ok = false;

		(void) val;
		for (const char *const *k = known; *k; k++)
			if (streq(*k, key)) {
				ok = true;
				break;
			}
		if (!ok) {
			reply_invalid_params(call, key, "unknown parameter");
			return false;
		}
	}
	return true;
}

/* Gets a string param: -ENOENT absent, -EINVAL wrong type (already answered). */
static int param_string(RpcCall *call, const char *name, size_t max_len, const char **ret) {
	json_object *v = json_object_object_get(rpc_call_params(call), name);
	size_t len;

	if (!v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string)) {
		reply_invalid_params(call, name, "must be a string");
		return -EINVAL;
	}
	len = (size_t) json_object_get_string_len(v);
	if (len == 0 || len > max_len) {
		char reason[64];

		snprintf(reason, sizeof reason, "must be 1-%zu characters", max_len);
		reply_invalid_params(call, name, reason);
		return -EINVAL;
	}
	*ret = json_object_get_string(v);
	return 0;
}

static int param_int(RpcCall *call, const char *name, int64_t min, int64_t max, int64_t *ret) {
	json_object *v = json_object_object_get(rpc_call_params(call), name);
	int64_t x;

	if (!v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int)) {
		reply_invalid_params(call, name, "must be an integer");
		return -EINVAL;
	}
	x = json_object_get_int64(v);
	if (x < min || x > max) {
		char reason[96];

		snprintf(reason, sizeof reason, "must be between %lld and %lld", (long long) min, (long long) max);
		reply_invalid_params(call, name, reason);
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

static bool caller_is_admin(Manager *m, RpcCall *call) {
	return manager_peer_is_admin(m, rpc_call_uid(call), rpc_call_gid(call));
}

/* The record with this id if the caller may see it; NULL answers not_found. */
static Record *lookup_visible(Manager *m, RpcCall *call, const char *id) {
	Record *r = record_id_is_valid(id) ? outbox_get(m->outbox, id) : NULL;

	if (!r || (r->owner_uid != rpc_call_uid(call) && !caller_is_admin(m, call)))
		return NULL;
	return r;
}

/* Finds the target of get/wait/cancel/feedback by "id" (or "client_ref" for get). */
static Record *lookup_param(Manager *m, RpcCall *call, bool allow_client_ref) {
	const char *id = NULL, *ref = NULL;
	int k;

	k = param_string(call, "id", RECORD_ID_MAX, &id);
	if (k == -EINVAL)
		return NULL;
	if (k == -ENOENT && allow_client_ref) {
		k = param_string(call, "client_ref", CLIENT_REF_MAX, &ref);
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
		reply_invalid_params(call, "id", "id is required");
		return NULL;
	}
	Record *r = lookup_visible(m, call, id);
	if (!r)
		reply_not_found(call);
	return r;
}

/* ------------------------------------------------------------------ hello, status */

static void method_hello(Manager *m, RpcCall *call) {
	static const char *const known[] = { "client", "protocol", NULL };
	json_object *p = rpc_call_params(call), *v, *result;

	if (!check_known_params(call, known))
		return;
	v = json_object_object_get(p, "client");
	if (v && !json_object_is_type(v, json_type_string))
		return reply_invalid_params(call, "client", "must be a string");
	v = json_object_object_get(p, "protocol");
	if (v && (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) != PROTOCOL_VERSION))
		return reply_invalid_params(call, "protocol", "this daemon speaks protocol 1");

	result = json_object_new_object();
	json_object_object_add(result, "protocol", json_object_new_int(PROTOCOL_VERSION));
	json_object_object_add(result, "daemon", json_object_new_string("hitld"));
	json_object_object_add(result, "version", json_object_new_string(HITLD_VERSION));
	json_object_object_add(result, "uid", json_object_new_int64(rpc_call_uid(call)));
	json_object_object_add(result, "admin", json_object_new_boolean(caller_is_admin(m, call)));
	rpc_call_reply(call, result);
}

/* Everything status shows, as the caller may see it now (status_reply.h).
 * loops has room for m->n_loop_pauses entries. */
static void status_facts(Manager *m, RpcCall *call, usec_t now, StatusLoop *loops, StatusFacts *ret) {
	bool admin = caller_is_admin(m, call);
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

	if (!check_known_params(call, known))
		return;
	if (m->n_loop_pauses > 0 && !(loops = calloc(m->n_loop_pauses, sizeof *loops)))
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	status_facts(m, call, now_realtime(), loops, &facts);
	reply = status_reply_object(&ms->status, &facts);
	if (!reply)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	rpc_call_reply(call, reply);
}

/* ------------------------------------------------------------------ submit */

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

/* Where target stands in the create order. For a non-admin only its own
 * queued requests count: others' must not show, not even as a number. */
#define POSITION_UIDS_MAX 256

/* Every uid's queued records of all priorities, merged from the outbox's
 * per-priority counts; at most max uids. */
static size_t queued_uids_all(Manager *m, uid_t *uids, size_t *counts, size_t max) {
	uid_t pu[POSITION_UIDS_MAX];
	size_t pc[POSITION_UIDS_MAX], n = 0;

	for (Priority p = 0; p < _PRIORITY_MAX; p++) {
		size_t k = outbox_queued_uids(m->outbox, p, pu, pc, POSITION_UIDS_MAX);

		for (size_t i = 0; i < k; i++) {
			size_t j = 0;

			while (j < n && uids[j] != pu[i])
				j++;
			if (j == n) {
				if (n == max)
					continue;
				uids[n] = pu[i];
				counts[n++] = 0;
			}
			counts[j] += pc[i];
		}
	}
	return n;
}

static size_t queue_position(Manager *m, const Record *target, bool all_users, bool newest) {
	size_t n = outbox_count_state(m->outbox, REQUEST_QUEUED), i = 0, pos;
	_cleanup_(freep) Record **queued = NULL;

	if (newest && target->priority >= 0 && target->priority < _PRIORITY_MAX) {
		/* A new request is younger than every queued one: counts suffice,
		 * no walk over the whole outbox per submit. */
		uid_t uids[POSITION_UIDS_MAX];
		size_t counts[POSITION_UIDS_MAX], own_ahead = 0, n_uids = 0;

		for (Priority p = target->priority; p < _PRIORITY_MAX; p++)
			own_ahead += outbox_count_queued_uid(m->outbox, target->owner_uid, p);
		if (all_users)
			n_uids = queued_uids_all(m, uids, counts, POSITION_UIDS_MAX);
		if (own_ahead > 0 && n_uids < POSITION_UIDS_MAX)
			return sched_position_from_counts(&m->sched, target, own_ahead - 1, uids, counts, n_uids);
	}

	queued = malloc(sizeof(Record *) * (n ? n : 1));
	if (!queued)
		return 0;
	for (Record *r = outbox_first(m->outbox); r && i < n; r = outbox_next(m->outbox, r))
		if (r->state == REQUEST_QUEUED && (all_users || r->owner_uid == target->owner_uid))
			queued[i++] = r;
	pos = sched_position(queued, i, &m->sched, target);
	return pos;
}

/* Positions of every queued record, recomputed at most once a second in one
 * pass: a client's live line asks often, and a walk per get over 100,000
 * queued requests would make each get cost milliseconds. */
#define POSITIONS_MAX_AGE USEC_PER_SEC

typedef struct UidRank {
	uid_t uid;
	size_t seen[_PRIORITY_MAX];
} UidRank;

static void refresh_positions(Manager *m, const Record *asked) {
	uid_t uids[POSITION_UIDS_MAX];
	size_t counts[POSITION_UIDS_MAX], n_uids;
	_cleanup_(freep) UidRank *ranks = NULL;
	size_t n_ranks = 0;
	usec_t now = now_monotonic();

	/* A record that arrived after the snapshot has no position yet. */
	if (m->positions_at != 0 && now - m->positions_at < POSITIONS_MAX_AGE && asked->position_all != 0)
		return;
	ranks = calloc(POSITION_UIDS_MAX, sizeof *ranks);
	if (!ranks)
		return;
	n_uids = queued_uids_all(m, uids, counts, POSITION_UIDS_MAX);

	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r)) {
		UidRank *u = NULL;
		size_t own_ahead = 0;

		if (r->state != REQUEST_QUEUED || r->priority < 0 || r->priority >= _PRIORITY_MAX)
			continue;
		for (size_t i = 0; i < n_ranks; i++)
			if (ranks[i].uid == r->owner_uid) {
				u = &ranks[i];
				break;
			}
		if (!u) {
			if (n_ranks == POSITION_UIDS_MAX)
				continue;
			u = &ranks[n_ranks++];
			u->uid = r->owner_uid;
		}
		/* In seq order, so seen = the uid's older queued records here;
		 * its own order is priority first, then age. */
		for (Priority q = r->priority + 1; q < _PRIORITY_MAX; q++)
			own_ahead += outbox_count_queued_uid(m->outbox, r->owner_uid, q);
		own_ahead += u->seen[r->priority];
		r->position_all = sched_position_from_counts(&m->sched, r, own_ahead, uids, counts, n_uids);
		r->position_own = own_ahead + 1;
		u->seen[r->priority]++;
	}
	m->positions_at = now;
}

static void reply_wait(Manager *m, RpcCall *call, Record *r, int64_t timeout_ms);
static bool trigger_wait_param(RpcCall *call, int64_t *ret_timeout_ms);

static void reply_submitted(Manager *m, RpcCall *call, const Record *r, bool duplicate) {
	json_object *result;
	char created[ISO8601_MAX];
	int64_t timeout_ms;

	/* workflow.trigger with wait: answered as request.wait on the record. */
	if (r->kind == RECORD_TRIGGER && trigger_wait_param(call, &timeout_ms))
		return reply_wait(m, call, outbox_get(m->outbox, r->id), timeout_ms);

	result = json_object_new_object();
	if (r->kind != RECORD_REQUEST)
		json_object_object_add(result, "kind", json_object_new_string(record_kind_to_string(r->kind)));

	json_object_object_add(result, "id", json_object_new_string(r->id));
	json_object_object_add(result, "state", json_object_new_string(request_state_to_string(r->state)));
	json_object_object_add(result, "created_at", json_object_new_string(format_iso8601(r->created_at, created)));
	json_object_object_add(result, "position",
	                       r->state == REQUEST_QUEUED ? json_object_new_int64((int64_t) queue_position(m, r, caller_is_admin(m, call), !duplicate))
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

static void method_submit(Methods *ms, RpcCall *call) {
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

	k = param_string(call, "client_ref", CLIENT_REF_MAX, &client_ref);
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
		return reply_invalid_params(call, err.field, err.reason);
	{
		const char *loop_id = json_object_get_string(json_object_object_get(create, "loop_id"));
		usec_t since = 0;

		/* A create there would cost a call and fail: say so now. */
		if (remote_loop_known_missing(ms->remote, loop_id, &since)) {
			char reason[160], when[ISO8601_MAX];

			snprintf(reason, sizeof reason, "Loop not found: HITL.sh answered 404 for loop %s at %s", loop_id,
			         format_iso8601(since, when));
			return reply_invalid_params(call, "loop_id", reason);
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
	r->loop_id = strdup(json_object_get_string(json_object_object_get(create, "loop_id")));
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

static void method_trigger(Manager *m, RpcCall *call) {
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
		return reply_invalid_params(call, "params", "params must be an object");

	k = param_string(call, "client_ref", CLIENT_REF_MAX, &client_ref);
	if (k == -EINVAL)
		return;
	v = json_object_object_get(rpc_call_params(call), "wait");
	if (v && !json_object_is_type(v, json_type_boolean))
		return reply_invalid_params(call, "wait", "must be a boolean");
	k = param_int(call, "timeout_ms", 0, WAIT_MAX_MS, &timeout_ms);
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
		return reply_invalid_params(call, field, reason);

	if (answered_before_new_record(m, call, uid, client_ref, RECORD_TRIGGER, stored))
		return;

	r = record_new();
	if (!r || record_make_id(now, r->id) < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Internal error.", NULL);
	r->kind = RECORD_TRIGGER;
	r->owner_uid = uid;   /* record_new(): queued */
	v = json_object_object_get(stored, "priority");
	r->priority = v ? priority_from_string(json_object_get_string(v)) : PRIORITY_MEDIUM;
	r->loop_id = strdup(json_object_get_string(json_object_object_get(stored, "workflow_id")));
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

/* ------------------------------------------------------------------ get, wait, list */

static void method_get(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", "client_ref", NULL };
	Record *r;

	if (!check_known_params(call, known))
		return;
	r = lookup_param(m, call, true);
	if (r)
		reply_record(m, call, r);
}

static void method_wait(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", "timeout_ms", NULL };
	int64_t timeout_ms = WAIT_DEFAULT_MS;
	Record *r;
	int k;

	if (!check_known_params(call, known))
		return;
	k = param_int(call, "timeout_ms", 0, WAIT_MAX_MS, &timeout_ms);
	if (k == -EINVAL)
		return;
	r = lookup_param(m, call, false);
	if (!r)
		return;
	reply_wait(m, call, r, timeout_ms);
}

/* request.wait's answer: now if r is final (or timeout_ms is 0), else once
 * it is or the timeout passes. */
static void reply_wait(Manager *m, RpcCall *call, Record *r, int64_t timeout_ms) {
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

static void method_list(Manager *m, RpcCall *call) {
	static const char *const known[] = { "state", "loop_id", "owner_uid", "limit", "cursor", NULL };
	json_object *p = rpc_call_params(call), *states, *result, *list;
	bool want[_REQUEST_STATE_MAX] = {}, any_state = true, admin = caller_is_admin(m, call);
	const char *loop_id = NULL, *cursor = NULL;
	int64_t limit = LIST_DEFAULT_LIMIT, owner = -1;
	uint64_t max_seq = UINT64_MAX;
	size_t n = 0, bytes = 0;
	Record *r, *last = NULL;
	CursorKey key;
	char next[CURSOR_STRING_MAX];
	bool by_uid;
	uid_t list_uid;
	int k;

	if (!check_known_params(call, known))
		return;

	states = json_object_object_get(p, "state");
	if (states) {
		size_t count;

		if (json_object_is_type(states, json_type_string)) {
			RequestState s = request_state_from_string(json_object_get_string(states));
			if (s < 0)
				return reply_invalid_params(call, "state", "unknown state");
			want[s] = true;
		} else if (json_object_is_type(states, json_type_array)) {
			count = json_object_array_length(states);
			if (count > _REQUEST_STATE_MAX * 2)
				return reply_invalid_params(call, "state", "too many states");
			for (size_t i = 0; i < count; i++) {
				RequestState s = request_state_from_string(json_object_get_string(json_object_array_get_idx(states, i)));
				if (!json_object_is_type(json_object_array_get_idx(states, i), json_type_string) || s < 0)
					return reply_invalid_params(call, "state", "unknown state");
				want[s] = true;
			}
		} else
			return reply_invalid_params(call, "state", "must be an array of states");
		any_state = false;
	}
	k = param_string(call, "loop_id", 64, &loop_id);
	if (k == -EINVAL)
		return;
	k = param_int(call, "limit", 1, LIST_MAX_LIMIT, &limit);
	if (k == -EINVAL)
		return;
	k = param_int(call, "owner_uid", 0, UINT32_MAX, &owner);
	if (k == -EINVAL)
		return;
	if (k >= 0 && !admin && (uid_t) owner != rpc_call_uid(call))
		return rpc_call_error(call, RPC_ERROR_PERMISSION, "Only administrators may list other users' requests.", NULL);
	k = param_string(call, "cursor", 32, &cursor);
	if (k == -EINVAL)
		return;
	if (cursor) {
		uint64_t c;

		/* Opaque and bound to the caller's uid: a cursor of another user, or
		 * a made-up one ("-1", a bare seq), is refused. */
		if (list_cursor_key(&key) < 0 || cursor_decode(&key, rpc_call_uid(call), cursor, &c) < 0)
			return reply_invalid_params(call, "cursor", "not a cursor this daemon gave you");
		max_seq = c - 1;
	}

	/* One uid's requests are walked through the outbox's per-uid list:
	 * O(that uid's requests), not O(all), for a non-admin. */
	by_uid = !admin || owner >= 0;
	list_uid = owner >= 0 ? (uid_t) owner : rpc_call_uid(call);
	list = json_object_new_array();
	/* Newest first by acceptance order; seq never changes, so a cursor
	 * (the last seq returned) stays valid while new requests arrive. */
	for (r = by_uid ? outbox_seek_le_uid(m->outbox, list_uid, max_seq) : outbox_seek_le(m->outbox, max_seq); r;
	     r = by_uid ? outbox_prev_uid(m->outbox, r) : outbox_prev(m->outbox, r)) {
		json_object *rec;

		if (by_uid && r->owner_uid != list_uid)
			continue;
		if (!any_state && !want[r->state])
			continue;
		if (loop_id && !streq_ptr(r->loop_id, loop_id))
			continue;
		if ((int64_t) n == limit || bytes >= LIST_PAGE_BYTES_MAX)
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

static void method_cancel(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", NULL };
	Record *r;

	if (!check_known_params(call, known))
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
		char uid[16];

		snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
		log_event(LOG_INFO, MID_REQUEST_CANCELLED,
		          LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_UID", uid }, { "HITL_STATE", "cancelled" }),
		          "Request %s cancelled before it was sent.", r->id);
	}
	reply_record(m, call, r);
}

static void method_feedback(Manager *m, RpcCall *call) {
	static const char *const known[] = { "id", "feedback", NULL };
	json_object *fb = json_object_object_get(rpc_call_params(call), "feedback");
	ValidationError err = {};
	Record *r;

	if (!check_known_params(call, known))
		return;
	if (!fb)
		return reply_invalid_params(call, "feedback", "feedback is required");
	if (validate_feedback(fb, &err) < 0)
		return reply_invalid_params(call, err.field, err.reason);
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

/* ------------------------------------------------------------------ watch, admin */

static void method_watch(Manager *m, RpcCall *call) {
	static const char *const known[] = { "ids", NULL };
	json_object *ids = json_object_object_get(rpc_call_params(call), "ids"), *result;
	size_t count = 0;
	int k;

	if (!check_known_params(call, known))
		return;
	if (rpc_call_is_notification(call))
		return rpc_call_reply(call, NULL);
	if (ids) {
		if (!json_object_is_type(ids, json_type_array) || json_object_array_length(ids) > 10000)
			return reply_invalid_params(call, "ids", "must be an array of request ids (at most 10000)");
		for (size_t i = 0; i < json_object_array_length(ids); i++) {
			json_object *id = json_object_array_get_idx(ids, i);
			if (!json_object_is_type(id, json_type_string) || !record_id_is_valid(json_object_get_string(id)))
				return reply_invalid_params(call, "ids", "must be an array of request ids");
		}
	}
	k = manager_add_watch(m, rpc_call_conn(call), rpc_call_uid(call), caller_is_admin(m, call), ids, &count);
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

	if (!check_known_params(call, known))
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
	static const char *const sources[_SECRET_SOURCE_MAX] = {
		[SECRET_SOURCE_CREDENTIAL] = "credential",
		[SECRET_SOURCE_KEY_FILE] = "key_file",
		[SECRET_SOURCE_ENVIRONMENT] = "environment",
	};
	json_object *o = json_object_new_object();
	const char *why;

	json_object_object_add(o, "loaded", json_object_new_boolean(m->key_load_result == 0));
	if (m->key_load_result == 0) {
		bool known = m->key_source >= 0 && m->key_source < _SECRET_SOURCE_MAX;

		json_object_object_add(o, "source", known ? json_object_new_string(sources[m->key_source]) : NULL);
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

	if (!check_known_params(call, known))
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

static void method_key_test(Methods *ms, RpcCall *call) {
	remote_method_key_test(ms->remote, call);
}

static void method_loop(Methods *ms, RpcCall *call) {
	remote_method_loop(ms->remote, call);
}

static const Method methods[] = {
	{ "hello", false, method_hello, NULL },
	{ "status", false, NULL, method_status },
	{ "request.submit", false, NULL, method_submit },
	{ "request.get", false, method_get, NULL },
	{ "request.wait", false, method_wait, NULL },
	{ "request.list", false, method_list, NULL },
	{ "request.cancel", false, method_cancel, NULL },
	{ "request.feedback", false, method_feedback, NULL },
	{ "workflow.trigger", false, method_trigger, NULL },
	{ "watch", false, method_watch, NULL },
	{ "queue.pause", true, method_pause_on, NULL },
	{ "queue.resume", true, method_pause_off, NULL },
	{ "daemon.reload", true, method_reload, NULL },
	{ "key.test", true, NULL, method_key_test },
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
		if (methods[i].admin && !caller_is_admin(m, call))
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
