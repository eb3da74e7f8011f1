/* manager.c — see manager.h. The remote-work engine lives here: one timer
 * decides, each time it fires, which single HITL.sh call (if any) is the most
 * useful one the budget allows now, and otherwise sleeps until the earliest
 * moment anything could change. */
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "apiparse.h"
#include "cleanup.h"
#include "engine.h"
#include "listener.h"
#include "log.h"
#include "manager.h"
#include "msgid.h"
#include "precedence.h"
#include "statelock.h"
#include "store.h"
#include "trigger.h"
#include "validate.h"

#define BUDGET_FILE "budget.json"
#define PAUSED_FILE "paused"
#define PROBE_BACKOFF_CAP USEC_PER_HOUR
#define POLL_PAGE_LIMIT 100
#define POLL_MAX_PAGES 10
#define SHUTDOWN_GRACE (5 * USEC_PER_SEC)
#define WORK_RETRY_DELAY (5 * USEC_PER_SEC)
#define COMMIT_BATCH_MAX 1024
#define SOCKET_CHECK_INTERVAL (5 * USEC_PER_SEC)   /* an lstat() every 5 s */
#define COMMIT_MAX_DELAY (2 * USEC_PER_MSEC)   /* bounds the wait for readable connections */

struct PendingSubmit {
	Record *record;
	manager_submitted_t done;
	void *userdata;
};

struct Waiter {
	Manager *manager;
	RpcCall *call;
	char id[RECORD_ID_MAX];
	sd_event_source *timer;
	Waiter *prev, *next;
};

struct Watch {
	Manager *manager;
	RpcConn *conn;
	uid_t uid;
	bool admin;
	char **ids;   /* NULL: every record the peer may see */
	size_t n_ids;
	Watch *prev, *next;
};

static const char *const key_state_table[_KEY_STATE_MAX] = {
	[KEY_MISSING] = "missing",
	[KEY_UNKNOWN] = "unknown",
	[KEY_VALID] = "valid",
	[KEY_INVALID] = "invalid",
};

const char *key_state_to_string(KeyState s) {
	return s >= 0 && s < _KEY_STATE_MAX ? key_state_table[s] : NULL;
}

double manager_random(Manager *m) {
	/* xorshift64*: jitter only, never security. */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return (double) ((m->rng * 0x2545F4914F6CDD1DULL) >> 11) / (double) (1ULL << 53);
}

static void set_string(char **p, const char *s) {
	free(*p);
	*p = s ? strdup(s) : NULL;
}

int manager_need_params(Manager *m, Record *r) {
	int k = outbox_need_params(m->outbox, r);

	if (k < 0)
		log_error_errno(k, "Failed to read back request %s from the state directory: %m", r->id);
	return k;
}

int manager_record_json(Manager *m, Record *r, json_object **ret) {
	int k = manager_need_params(m, r);

	if (k < 0)
		return k;
	return record_to_protocol(r, ret);
}

/* ------------------------------------------------------------------ waiters */

static Waiter *waiter_free(Waiter *w) {
	if (!w)
		return NULL;
	Manager *m = w->manager;
	if (w->prev)
		w->prev->next = w->next;
	else if (m->waiters == w)
		m->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	sd_event_source_disable_unref(w->timer);
	free(w);
	return NULL;
}

static void waiter_answer(Waiter *w, Record *r, bool done) {
	_cleanup_(json_object_putp) json_object *rec = NULL;
	json_object *result;

	if (r && manager_record_json(w->manager, r, &rec) >= 0) {
		result = json_object_new_object();
		json_object_object_add(result, "request", TAKE_PTR(rec));
		json_object_object_add(result, "done", json_object_new_boolean(done));
		rpc_call_reply(w->call, result);
	} else
		rpc_call_error(w->call, RPC_ERROR_NOT_FOUND, "Request not found.", NULL);
	w->call = NULL;
	waiter_free(w);
}

static int waiter_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
	Waiter *w = userdata;

	waiter_answer(w, outbox_get(w->manager->outbox, w->id), false);
	return 0;
}

static void waiter_on_abandon(RpcCall *call, void *userdata) {
	Waiter *w = userdata;

	w->call = NULL;
	waiter_free(w);
}

int manager_add_waiter(Manager *m, RpcCall *call, Record *r, usec_t timeout) {
	_cleanup_(freep) Waiter *w = NULL;
	int k;

	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->manager = m;
	w->call = call;
	snprintf(w->id, sizeof w->id, "%s", r->id);
	k = sd_event_add_time_relative(m->event, &w->timer, CLOCK_MONOTONIC, timeout, 10 * USEC_PER_MSEC,
	                               waiter_on_timeout, w);
	if (k < 0)
		return k;
	rpc_call_set_abandon(call, waiter_on_abandon, w);
	w->next = m->waiters;
	if (m->waiters)
		m->waiters->prev = w;
	m->waiters = TAKE_PTR(w);
	return 0;
}

/* ------------------------------------------------------------------ watches */

static void watch_destroy(void *userdata) {
	Watch *w = userdata;
	Manager *m = w->manager;

	if (w->prev)
		w->prev->next = w->next;
	else if (m->watches == w)
		m->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	for (size_t i = 0; i < w->n_ids; i++)
		free(w->ids[i]);
	free(w->ids);
	free(w);
}

int manager_add_watch(Manager *m, RpcConn *conn, uid_t uid, bool admin, json_object *ids, size_t *ret_count) {
	Watch *w;
	size_t count = 0;

	if (rpc_conn_get_userdata(conn))
		return -EALREADY;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->manager = m;
	w->conn = conn;
	w->uid = uid;
	w->admin = admin;
	if (ids) {
		size_t n = json_object_array_length(ids);

		w->ids = calloc(n ? n : 1, sizeof(char *));
		if (!w->ids) {
			free(w);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			w->ids[i] = strdup(json_object_get_string(json_object_array_get_idx(ids, i)));
			if (!w->ids[i]) {
				w->n_ids = i;
				watch_destroy(w);
				return -ENOMEM;
			}
			Record *r = outbox_get(m->outbox, w->ids[i]);
			if (r && (admin || r->owner_uid == uid))
				count++;
		}
		w->n_ids = n;
	} else
		for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r))
			if (admin || r->owner_uid == uid)
				count++;

	w->next = m->watches;
	if (m->watches)
		m->watches->prev = w;
	m->watches = w;
	rpc_conn_set_userdata(conn, w, watch_destroy);
	rpc_conn_set_watching(conn, true);
	*ret_count = count;
	return 0;
}

static bool watch_matches(const Watch *w, const Record *r) {
	if (!w->admin && r->owner_uid != w->uid)
		return false;
	if (!w->ids)
		return true;
	for (size_t i = 0; i < w->n_ids; i++)
		if (streq(w->ids[i], r->id))
			return true;
	return false;
}

static bool anyone_listens(Manager *m, const Record *r) {
	if (request_state_is_terminal(r->state))
		for (Waiter *w = m->waiters; w; w = w->next)
			if (streq(w->id, r->id))
				return true;
	for (Watch *w = m->watches; w; w = w->next)
		if (watch_matches(w, r))
			return true;
	return false;
}

void manager_notify(Manager *m, Record *r) {
	_cleanup_(json_object_putp) json_object *rec = NULL;

	/* Most changes have no audience: do not build the record for nobody. */
	if (!anyone_listens(m, r) || manager_record_json(m, r, &rec) < 0)
		return;

	/* Waiters are answered once the request is final. */
	if (request_state_is_terminal(r->state))
		for (Waiter *w = m->waiters, *next; w; w = next) {
			next = w->next;
			if (streq(w->id, r->id))
				waiter_answer(w, r, true);
		}

	for (Watch *w = m->watches, *next; w; w = next) {
		json_object *params;

		next = w->next;
		if (!watch_matches(w, r))
			continue;
		params = json_object_new_object();
		json_object_object_add(params, "request", json_object_get(rec));
		if (rpc_conn_notify(w->conn, "request.changed", params) == -ENOBUFS)
			/* Frees w through watch_destroy once the connection goes. */
			rpc_conn_notify_and_close(w->conn, "watch.overflow", json_object_new_object());
	}
}

/* ------------------------------------------------------------------ status */

static void update_status(Manager *m) {
	char reset[ISO8601_MAX];
	usec_t now = now_realtime();

	sd_notifyf(false,
	           "STATUS=%s%s%s%s%s%zu queued, %zu submitting, %zu pending; budget %u/%u left, resets %s%s%s",
	           m->socket_file.replaced ? "Socket replaced, restart after fixing its directory! " : "",
	           m->paused ? "Paused. " : "",
	           m->breaker != APIERR_NONE ? "Creates paused: " : "",
	           m->breaker != APIERR_NONE ? strna(m->breaker_reason) : "",
	           m->breaker != APIERR_NONE ? ". " : "",
	           outbox_count_state(m->outbox, REQUEST_QUEUED),
	           outbox_count_state(m->outbox, REQUEST_SUBMITTING),
	           outbox_count_state(m->outbox, REQUEST_PENDING),
	           budget_remaining(&m->budget, now), m->budget.limit,
	           format_iso8601(m->budget.window_end, reset),
	           m->last_error ? "; last API error: " : "",
	           m->last_error ? m->last_error : "");
}

static int on_status_defer(sd_event_source *s, void *userdata) {
	update_status(userdata);
	return 0;
}

static void status_changed(Manager *m) {
	if (m->status_defer)
		sd_event_source_set_enabled(m->status_defer, SD_EVENT_ONESHOT);
}

/* ------------------------------------------------------------------ records */

void manager_record_saved(Manager *m, Record *r) {
	manager_notify(m, r);
	status_changed(m);
	manager_kick(m);
}

int manager_record_changed(Manager *m, Record *r) {
	int k;

	free(r->protocol_text);
	r->protocol_text = NULL;
	r->updated_at = now_realtime();
	k = outbox_save(m->outbox, r);
	if (k < 0)
		log_error_errno(k, "Failed to save request %s: %m", r->id);
	/* Even an unsaved change is the truth in memory; the next save retries. */
	manager_record_saved(m, r);
	return k;
}

/* A macro around request_log_full(), so the journal names the caller's line (log.h). */
#define request_log(...) request_log_full(LOG_LOCATION, __VA_ARGS__)
_printf_(8, 9)
static void request_log_full(const char *code_file, const char *code_line, const char *func, Manager *m,
                             Record *r, int prio, const char *mid, const char *fmt, ...) {
	char uid[16], status[8] = "";
	va_list ap;

	snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
	if (r->error && json_object_object_get(r->error, "http_status"))
		snprintf(status, sizeof status, "%d",
		         json_object_get_int(json_object_object_get(r->error, "http_status")));
	va_start(ap, fmt);
	log_internalv_full(code_file, code_line, func, prio, 0, mid,
	                   LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_REMOTE_ID", r->remote_id },
	                              { "HITL_LOOP_ID", r->loop_id }, { "HITL_UID", uid },
	                              { "HITL_STATE", request_state_to_string(r->state) },
	                              { "HITL_HTTP_STATUS", status[0] ? status : NULL }),
	                   fmt, ap);
	va_end(ap);
}

static void finish_timeout_locally(Manager *m, Record *r, const char *why) {
	json_object *def;

	if (manager_need_params(m, r) < 0)
		return;
	def = json_object_object_get(r->params, "default_response");
	if (record_finish_default(r, def) < 0)
		return;
	request_log(m, r, LOG_INFO, MID_REQUEST_TIMEOUT,
	            "Request %s timed out %s; it was never sent to HITL.sh (result_source unsent).", r->id, why);
	manager_record_changed(m, r);
}

/* ------------------------------------------------------------------ workflow triggers */

/* As request_log(): the journal names the caller's line (log.h). */
#define trigger_log(...) trigger_log_full(LOG_LOCATION, __VA_ARGS__)
_printf_(8, 9)
static void trigger_log_full(const char *code_file, const char *code_line, const char *func, Manager *m,
                             Record *r, int prio, const char *mid, const char *fmt, ...) {
	char uid[16];
	va_list ap;

	snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
	va_start(ap, fmt);
	log_internalv_full(code_file, code_line, func, prio, 0, mid,
	                   LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_WORKFLOW_ID", r->loop_id },
	                              { "HITL_UID", uid }, { "HITL_STATE", request_state_to_string(r->state) },
	                              { "HITL_EXECUTION_ID",
	                                json_object_get_string(json_object_object_get(r->result, "execution_id")) }),
	                   fmt, ap);
	va_end(ap);
}

/* Found submitting with no call in flight: hitld stopped mid-send. */
static void trigger_lost(Manager *m, Record *r) {
	trigger_apply_lost(r);
	trigger_log(m, r, LOG_WARNING, MID_TRIGGER_OUTCOME_UNKNOWN,
	            "Trigger %s of workflow %s may or may not have happened (hitld stopped while sending it); it is not sent again.",
	            r->id, r->loop_id);
	manager_record_changed(m, r);
}

static void on_trigger_done(Manager *m, Record *r, const ApiResult *res) {
	const char *message;

	switch (trigger_apply(r, res, now_realtime(), m->backoff_until)) {
	case TRIGGER_SENT:
		trigger_log(m, r, LOG_INFO, MID_WORKFLOW_TRIGGERED, "Workflow %s was triggered (%s), execution %s.", r->loop_id,
		            r->id, strna(json_object_get_string(json_object_object_get(r->result, "execution_id"))));
		break;
	case TRIGGER_UNKNOWN:
	case TRIGGER_REJECTED:
		message = json_object_get_string(json_object_object_get(r->error, "message"));
		trigger_log(m, r, LOG_WARNING,
		            streq_ptr(json_object_get_string(json_object_object_get(r->error, "code")), TRIGGER_OUTCOME_UNKNOWN)
		                    ? MID_TRIGGER_OUTCOME_UNKNOWN
		                    : MID_REQUEST_FAILED,
		            "Trigger %s of workflow %s failed: %s", r->id, r->loop_id, strna(message));
		break;
	default:
		break;
	}
	manager_record_changed(m, r);
}

/* Applies what HITL.sh says about r's remote request. */
static void apply_remote(Manager *m, Record *r, const RemoteRequest *rr) {
	_cleanup_(json_object_putp) json_object *result = NULL, *response = NULL;
	RequestState old = r->state;
	int changed;
	const char *rtype;
	json_object *config;

	if (manager_need_params(m, r) < 0)
		return;
	rtype = json_object_get_string(json_object_object_get(r->params, "response_type"));
	config = json_object_object_get(r->params, "response_config");
	if (rr->status_unknown && apiparse_unknown_status_first_seen(rr->raw_status))
		log_warning("HITL.sh reported request %s with status \"%s\", which hitld does not know; such requests stay "
		            "pending until a final status or an answer is seen (logged once per word).",
		            rr->id, rr->raw_status);

	if (streq(rr->status, "completed") || streq(rr->status, "timeout")) {
		json_object *resp = json_object_new_object();

		if (rr->response_data &&
		    validate_normalise_result(rtype, config, rr->response_data, &result) < 0) {
			log_warning("Request %s: HITL.sh's response_data does not fit response type %s; passing it on unchanged.",
			            r->id, strna(rtype));
			result = json_object_get(rr->response_data);
		}
		json_object_object_add(resp, "data", json_object_get(rr->response_data));
		json_object_object_add(resp, "by", rr->response_by ? json_object_new_string(rr->response_by) : NULL);
		json_object_object_add(resp, "at", rr->response_at ? json_object_new_string(rr->response_at) : NULL);
		json_object_object_add(resp, "time_seconds",
		                       rr->has_response_time ? json_object_new_double(rr->response_time_seconds) : NULL);
		response = resp;
	}
	changed = record_apply_remote(r, rr->id, rr->status, rr->raw_status, response, result,
	                              json_object_object_get(r->params, "default_response"), now_realtime());
	if (changed <= 0)
		return;
	if (old != r->state) {
		if (r->state == REQUEST_COMPLETED)
			request_log(m, r, LOG_INFO, MID_REQUEST_ANSWERED, "Request %s was answered by a reviewer.", r->id);
		else if (r->state == REQUEST_TIMEOUT)
			request_log(m, r, LOG_INFO, MID_REQUEST_TIMEOUT, "Request %s timed out at HITL.sh.", r->id);
		else if (r->state == REQUEST_CANCELLED)
			request_log(m, r, LOG_INFO, MID_REQUEST_CANCELLED, "Request %s was cancelled at HITL.sh.", r->id);
		else if (r->state == REQUEST_FAILED)
			request_log(m, r, LOG_WARNING, MID_REQUEST_FAILED, "Request %s failed: HITL.sh reports it as \"%s\".",
			            r->id, rr->raw_status);
	}
	manager_record_changed(m, r);
}

/* For health.c and reconcile.c (engine.h). */
void manager_set_string(char **p, const char *s) {
	set_string(p, s);
}

void manager_status_changed(Manager *m) {
	status_changed(m);
}

void manager_apply_remote(Manager *m, Record *r, const RemoteRequest *rr) {
	apply_remote(m, r, rr);
}

/* ------------------------------------------------------------------ group commit */

size_t manager_pending_of_uid(Manager *m, uid_t uid) {
	size_t n = 0;

	for (size_t i = 0; i < m->n_pending; i++)
		if (m->pending[i].record->owner_uid == uid)
			n++;
	return n;
}

Record *manager_pending_client_ref(Manager *m, uid_t uid, const char *client_ref) {
	for (size_t i = 0; i < m->n_pending; i++) {
		Record *r = m->pending[i].record;

		if (r->owner_uid == uid && streq_ptr(r->client_ref, client_ref))
			return r;
	}
	return NULL;
}

static usec_t min_usec(usec_t a, usec_t b);

void manager_commit(Manager *m) {
	Record *records[COMMIT_BATCH_MAX];
	int results[COMMIT_BATCH_MAX];
	size_t n = m->n_pending, queued_before;
	usec_t earliest = USEC_INFINITY, lifetime;
	bool any = false;

	/* Also called from manager_free(), where startup may have failed early. */
	if (n == 0)
		return;
	queued_before = outbox_count_state(m->outbox, REQUEST_QUEUED);
	lifetime = (usec_t) m->config->outbox_max_lifetime_s * USEC_PER_SEC;
	for (size_t i = 0; i < n; i++)
		records[i] = m->pending[i].record;

	(void) outbox_insert_many(m->outbox, records, n, results);

	for (size_t i = 0; i < n; i++) {
		Record *r = records[i];
		const PendingSubmit *p = &m->pending[i];

		if (results[i] < 0) {
			log_error_errno(results[i], "Failed to store a new request from uid %u: %m", (unsigned) r->owner_uid);
			p->done(m, r, results[i], p->userdata);
			record_free(r);
			continue;
		}

		char uid[16];
		snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
		log_event(LOG_INFO, MID_REQUEST_ACCEPTED,
		          LOG_FIELDS({ "HITL_REQUEST_ID", r->id },
		                     { r->kind == RECORD_TRIGGER ? "HITL_WORKFLOW_ID" : "HITL_LOOP_ID", r->loop_id },
		                     { "HITL_UID", uid }, { "HITL_STATE", "queued" },
		                     { "HITL_PRIORITY", priority_to_string(r->priority) }),
		          "Request %s accepted from uid %u.", r->id, (unsigned) r->owner_uid);
		p->done(m, r, 0, p->userdata);
		manager_notify(m, r);
		any = true;
		earliest = min_usec(earliest, usec_add(r->created_at, lifetime));
		if (r->deadline_at > 0)
			earliest = min_usec(earliest, usec_sub(r->deadline_at, LOCAL_TIMEOUT_MARGIN));
	}
	m->n_pending = 0;
	sd_event_source_set_enabled(m->commit_defer, SD_EVENT_OFF);
	sd_event_source_set_enabled(m->commit_timer, SD_EVENT_OFF);
	if (any) {
		int enabled = SD_EVENT_OFF;
		uint64_t armed = USEC_INFINITY;

		status_changed(m);
		/* The work engine scans every record: wake it only if the new ones
		 * can change its plan — a call in flight wakes it anyway when done;
		 * an armed timer already covers a queue that was not empty, unless a
		 * new record's local deadline comes first. */
		(void) sd_event_source_get_enabled(m->work_timer, &enabled);
		if (enabled != SD_EVENT_OFF)
			(void) sd_event_source_get_time(m->work_timer, &armed);
		if (!m->work_call && (queued_before == 0 || enabled == SD_EVENT_OFF || earliest < armed))
			manager_kick(m);
	}
}

static int on_commit_defer(sd_event_source *s, void *userdata) {
	manager_commit(userdata);
	return 0;
}

static int on_commit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	manager_commit(userdata);
	return 0;
}

int manager_submit(Manager *m, Record *r, manager_submitted_t done, void *userdata) {
	if (!done)
		return -EINVAL;
	if (m->n_pending >= COMMIT_BATCH_MAX)
		manager_commit(m);
	if (!m->pending) {
		m->pending = calloc(COMMIT_BATCH_MAX, sizeof *m->pending);
		if (!m->pending)
			return -ENOMEM;
	}
	m->pending[m->n_pending++] = (PendingSubmit) { .record = r, .done = done, .userdata = userdata };
	if (m->n_pending > 1)
		return 0;
	/* The defer source runs at a lower priority than the connections, so only
	 * once every connection that is readable now has been served: their
	 * submits share one commit. Under a constant stream of other requests it
	 * might never run; the timer bounds the wait. */
	if (sd_event_source_set_enabled(m->commit_defer, SD_EVENT_ONESHOT) < 0 ||
	    sd_event_source_set_time_relative(m->commit_timer, COMMIT_MAX_DELAY) < 0 ||
	    sd_event_source_set_enabled(m->commit_timer, SD_EVENT_ONESHOT) < 0)
		manager_commit(m);
	return 0;
}

/* ------------------------------------------------------------------ budget */

static void budget_persist(Manager *m) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	const char *s;
	int k;

	if (budget_to_json(&m->budget, &j) < 0)
		return;
	s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	k = store_write_file(outbox_state_dirfd(m->outbox), BUDGET_FILE, s, strlen(s));
	if (k < 0)
		log_warning_errno(k, "Failed to persist the budget ledger: %m");
}

static void budget_load(Manager *m) {
	_cleanup_(freep) char *data = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	size_t len;
	int k;

	k = store_read_file(outbox_state_dirfd(m->outbox), BUDGET_FILE, 64 * 1024, &data, &len);
	if (k < 0) {
		if (k != -ENOENT)
			log_warning_errno(k, "Failed to read the budget ledger, starting a fresh one: %m");
		return;
	}
	j = json_tokener_parse(data);
	if (!j || budget_from_json(&m->budget, j, now_realtime()) < 0)
		log_warning("The budget ledger %s/%s is malformed, starting a fresh one.", m->state_dir, BUDGET_FILE);
}

void manager_set_dispatch(Manager *m, rpc_dispatch_t dispatch, void *userdata) {
	m->dispatch = dispatch;
	m->dispatch_userdata = userdata;
}

void manager_key_test_begin(Manager *m) {
	if (m->key_state == KEY_INVALID)
		m->key_state = KEY_UNKNOWN;
}

void manager_set_api_key_id(Manager *m, const char *id) {
	keyswitch_identified(m, id);
}

void manager_set_paused(Manager *m, bool paused) {
	int fd = outbox_state_dirfd(m->outbox);
	int k;

	m->paused = paused;
	if (paused)
		k = store_write_file(fd, PAUSED_FILE, "1\n", 2);
	else {
		k = store_unlink(fd, PAUSED_FILE);
		if (k == -ENOENT)
			k = 0;
	}
	if (k < 0)
		log_warning_errno(k, "Failed to persist the paused state: %m");
	log_notice("Queue %s.", paused ? "paused: no remote calls until resumed" : "resumed");
	status_changed(m);
	manager_kick(m);
}

/* ------------------------------------------------------------------ the work engine */

static int work_start(Manager *m, WorkKind kind, CallKind call_kind);
static void work_done(ApiClient *c, const ApiResult *res, void *userdata);

void manager_kick(Manager *m) {
	if (m->work_timer && !m->shutting_down) {
		sd_event_source_set_time(m->work_timer, 0);
		sd_event_source_set_enabled(m->work_timer, SD_EVENT_ONESHOT);
	}
}

static void work_arm(Manager *m, usec_t when) {
	if (when == USEC_INFINITY) {
		sd_event_source_set_enabled(m->work_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(m->work_timer, when);
	sd_event_source_set_enabled(m->work_timer, SD_EVENT_ONESHOT);
}

static usec_t min_usec(usec_t a, usec_t b) {
	return a < b ? a : b;
}

/* When should the next poll round go, given how the budget stands? */
static usec_t poll_interval(Manager *m, usec_t now, size_t queued) {
	return plan_poll_interval(&m->budget, (usec_t) m->config->budget_min_poll_interval_s * USEC_PER_SEC, now, queued);
}

static PlanLimits plan_limits(Manager *m) {
	return (PlanLimits) {
		.lifetime = (usec_t) m->config->outbox_max_lifetime_s * USEC_PER_SEC,
		.retention = (usec_t) m->config->outbox_retention_days * USEC_PER_DAY,
		.paused = m->paused,
	};
}

static bool in_flight(Manager *m, const Record *r) {
	return m->work_call && streq(m->work_record, r->id);
}

/* The first step of a turn: what time did to the records (plan_expiry()),
 * and a trigger found "submitting" with no call in flight (hitld stopped
 * mid-send). Only this step ends or deletes records on the timer. */
static void work_settle(Manager *m, usec_t now) {
	PlanLimits limits = plan_limits(m);

	for (Record *r = outbox_first(m->outbox), *next; r; r = next) {
		next = outbox_next(m->outbox, r);

		if (r->state == REQUEST_SUBMITTING && r->kind == RECORD_TRIGGER && !in_flight(m, r)) {
			trigger_lost(m, r);
			continue;
		}
		switch (plan_expiry(r, &limits, now, NULL)) {
		case PLAN_EXPIRE_DEADLINE:
			finish_timeout_locally(m, r, "before it could be sent (under 60 s left)");
			break;
		case PLAN_EXPIRE_LIFETIME:
			if (record_fail(r, "lifetime_exceeded", "The request could not be created within outbox.max_lifetime_s.", 0,
			                true) < 0)
				break;
			request_log(m, r, LOG_WARNING, MID_REQUEST_FAILED, "Request %s failed: %s", r->id, "lifetime exceeded");
			manager_record_changed(m, r);
			break;
		case PLAN_EXPIRE_NEVER_FOUND:
			if (record_fail(r, "remote_unknown",
			                "HITL.sh took the create, but hitld never found the request there: its answer is unknown.", 0,
			                false) < 0)
				break;
			request_log(m, r, LOG_WARNING, MID_REQUEST_FAILED, "Request %s failed: %s", r->id,
			            "created at HITL.sh, never found there");
			manager_record_changed(m, r);
			break;
		case PLAN_EXPIRE_DELETE: {
			int k = outbox_remove(m->outbox, r);
			if (k < 0)
				log_warning_errno(k, "Failed to remove expired request record: %m");
			break;
		}
		case PLAN_KEEP:
			break;
		}
	}
}

typedef struct WorkScan {
	PlanSummary s;
	Record **queued;
	size_t n_queued_paused; /* queued, but their loop's creates are paused */
} WorkScan;

static void work_scan_free(WorkScan *w) {
	free(w->queued);
}

/* The second step: the outbox summed up for plan_next(), changing nothing.
 * A record work_settle() could not end (its params unreadable, say) is
 * left out, as it would be if it had ended. */
static int work_scan(Manager *m, usec_t now, WorkScan *ret) {
	PlanLimits limits = plan_limits(m);
	WorkScan w = { .s.next_local = USEC_INFINITY };
	PlanSummary *s = &w.s;
	size_t cap = outbox_count_state(m->outbox, REQUEST_QUEUED), n_queued = 0;

	w.queued = malloc(sizeof(Record *) * (cap ? cap : 1));
	if (!w.queued)
		return -ENOMEM;

	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r)) {
		if (plan_expiry(r, &limits, now, &s->next_local) != PLAN_KEEP)
			continue;
		switch (r->state) {
		case REQUEST_QUEUED: {
			usec_t until = health_loop_paused_until(m, r->loop_id, now);

			if (until > now) {
				w.n_queued_paused++;
				s->next_local = min_usec(s->next_local, until);
				break;
			}
			if (n_queued < cap)
				w.queued[n_queued++] = r;
			break;
		}
		case REQUEST_SUBMITTING:
			if (r->kind != RECORD_TRIGGER && !s->reconcile && !in_flight(m, r))
				s->reconcile = r;
			break;
		case REQUEST_PENDING:
			if (!r->remote_id) {
				if (r->next_attempt_at <= now) {
					if (!s->find && !in_flight(m, r))
						s->find = r;
				} else
					s->next_local = min_usec(s->next_local, r->next_attempt_at);
				break;
			}
			s->n_pending++;
			if (!s->pending_one)
				s->pending_one = r;
			if (r->poll_missing && !s->missing)
				s->missing = r;
			if (r->poll_missing && !r->poll_by_id && s->missing && !s->missing->poll_by_id &&
			    streq_ptr(r->loop_id, s->missing->loop_id))
				s->n_missing_same_loop++;
			if (r->cancel_requested && !s->cancel && !streq_ptr(r->remote_status, "claimed"))
				s->cancel = r;
			break;
		case REQUEST_COMPLETED:
			if (r->feedback_state == FEEDBACK_QUEUED && !s->feedback)
				s->feedback = r;
			break;
		default:
			break;
		}
	}
	s->queued = w.queued;
	s->n_queued = n_queued;
	*ret = w;
	return 0;
}

/* Once per window: the budget is spent while work waits for it. */
static void note_budget_spent(Manager *m, usec_t now, size_t waiting) {
	char reset[ISO8601_MAX], limit[16];

	if (waiting == 0 || budget_remaining(&m->budget, now) > 0 || m->budget_spent_window == m->budget.window_end)
		return;
	m->budget_spent_window = m->budget.window_end;
	snprintf(limit, sizeof limit, "%u", m->budget.limit);
	log_event(LOG_WARNING, MID_BUDGET_EXHAUSTED,
	          LOG_FIELDS({ "HITL_BUDGET_REMAINING", "0" }, { "HITL_BUDGET_LIMIT", limit }),
	          "The HITL.sh budget of %u calls is spent; %zu requests wait until %s.",
	          m->budget.limit, waiting, format_iso8601(m->budget.window_end, reset));
}

static PlanInput plan_input(Manager *m, usec_t now) {
	return (PlanInput) {
		.now = now,
		.jitter = manager_random(m),
		.budget = &m->budget,
		.sched = &m->sched,
		.min_poll_interval = (usec_t) m->config->budget_min_poll_interval_s * USEC_PER_SEC,
		/* While the standby key is tested, nothing goes with the key it may replace. */
		.busy = m->work_call != NULL || m->ks.test_call != NULL,
		.key_missing = m->key_state == KEY_MISSING,
		.key_invalid = m->key_state == KEY_INVALID,
		.paused = m->paused,
		.backoff_until = m->backoff_until,
		.next_probe_at = m->next_probe_at,
		.breaker_open = m->breaker != APIERR_NONE,
		.breaker_probe_at = m->breaker_probe_at,
		.identify_key = m->key_state != KEY_MISSING && !m->api_key_id && !m->ks.identify_tried,
		.identify_first = keyswitch_identify_first(m),
		.key_valid = m->key_state == KEY_VALID,
		.rec_current = m->rec_id[0] ? outbox_get(m->outbox, m->rec_id) : NULL,
		.rec_has_candidate = m->rec_next_candidate < m->n_rec_candidates,
		.next_poll_at = m->next_poll_at,
		.poll_in_round = m->poll_in_round,
	};
}

/* settle, sum up, plan, execute (plan.h). */
static int on_work_timer(sd_event_source *source, uint64_t usec, void *userdata) {
	Manager *m = userdata;
	_cleanup_(work_scan_free) WorkScan w = {};
	usec_t now = now_realtime();
	unsigned skip = 0;
	PlanStep step;

	if (m->shutting_down)
		return 0;
	work_settle(m, now);
	if (work_scan(m, now, &w) < 0) {
		work_arm(m, now + USEC_PER_SEC);
		return 0;
	}
	budget_tick(&m->budget, now);
	if (!m->work_call && m->key_state != KEY_MISSING && !m->paused)
		note_budget_spent(m, now, w.s.n_queued + w.s.n_pending);

	for (;;) {
		PlanInput in = plan_input(m, now);

		in.skip = skip;
		plan_next(&w.s, &in, &step);
		m->next_poll_at = step.next_poll_at;
		if (step.begin_poll_round) {
			m->poll_in_round = true;
			m->poll_round++;
			m->poll_round_started_at = now;
			m->poll_offset = 0;
			m->poll_pages = 0;
		}
		if (step.kind == WORK_NONE)
			break;
		if (step.target)
			snprintf(m->work_record, sizeof m->work_record, "%s", step.target->id);
		if (work_start(m, step.kind, step.call_kind) >= 0)
			break;
		/* It could not start (the record could not be marked "submitting"
		 * on a full disk, say): the next in order may go now, this one is
		 * tried again soon, not only at the next kick. */
		skip |= 1U << step.kind;
		w.s.next_local = min_usec(w.s.next_local, now + WORK_RETRY_DELAY);
	}

	if (!m->work_call)
		work_arm(m, step.wake);
	return 0;
}

/* The create body: the documented fields of the stored params only (a record
 * from an older hitld may carry tags, or a timeout above what HITL.sh allows),
 * and the time left as timeout_seconds within 60–86400. A deferred request
 * without a deadline, or one whose deadline is further than a day away (an
 * older record with the old 30-day default), gets none: HITL.sh's own default
 * (30 days) applies. docs/HITL-API.md "Create a request". */
static int build_create_body(Manager *m, Record *r, usec_t now, json_object **ret) {
	static const char *const sent[] = {
		"request_text", "response_type", "response_config", "default_response", "priority",
		"processing_type", "type", "image_url", "file_url", "file_type", "file_name", "video_url",
		"audio_url", "context", "callback_url", "platform", "platform_version",
	};
	_cleanup_(json_object_putp) json_object *body = NULL;
	json_object *context, *v;
	int k;

	k = manager_need_params(m, r);
	if (k < 0)
		return k;
	body = json_object_new_object();
	if (!body)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(sent); i++) {
		json_object *copy = NULL;

		v = json_object_object_get(r->params, sent[i]);
		if (!v)
			continue;
		if (json_object_deep_copy(v, &copy, NULL) < 0)
			return -ENOMEM;
		json_object_object_add(body, sent[i], copy);
	}
	if (r->deadline_at > 0) {
		usec_t left = usec_sub(r->deadline_at, now) / USEC_PER_SEC;
		bool deferred = streq_ptr(json_object_get_string(json_object_object_get(body, "processing_type")),
		                          "deferred");

		/* work_settle() ends a request locally before less than 60 s are left. */
		if (left < VALIDATE_TIMEOUT_MIN)
			left = VALIDATE_TIMEOUT_MIN;
		if (left > VALIDATE_TIMEOUT_MAX && !deferred)
			left = VALIDATE_TIMEOUT_MAX;   /* a clock that went back */
		if (left <= VALIDATE_TIMEOUT_MAX)
			json_object_object_add(body, "timeout_seconds", json_object_new_int64((int64_t) left));
	}
	/* Our id rides along so a create with an unknown outcome can be found. */
	context = json_object_object_get(body, "context");
	if (!context) {
		context = json_object_new_object();
		json_object_object_add(body, "context", context);
	}
	json_object_object_add(context, "hitld_id", json_object_new_string(r->id));
	*ret = TAKE_PTR(body);
	return 0;
}

/* Durably "submitting" before a create or trigger is sent: a crash from
 * here on must never send it again blindly. */
static int mark_submitting(Manager *m, Record *r, usec_t now) {
	usec_t next_attempt_at = r->next_attempt_at, updated_at = r->updated_at;
	int k;

	k = record_mark_submitting(r, now);
	if (k < 0)
		return log_error_errno(k, "Request %s is no longer queued, not sending it: %m", r->id);
	k = outbox_save(m->outbox, r);
	if (k < 0) {
		/* Nothing of the failed change may show, to clients either. */
		(void) record_requeue(r, true);
		r->next_attempt_at = next_attempt_at;
		r->updated_at = updated_at;
		return log_error_errno(k, "Failed to mark request %s as submitting, not sending it: %m", r->id);
	}
	manager_notify(m, r);
	sched_note_served(&m->sched, r);
	return 0;
}

static int work_start(Manager *m, WorkKind kind, CallKind call_kind) {
	_cleanup_(json_object_putp) json_object *body = NULL;
	usec_t now = now_realtime();
	Record *r = NULL;
	int k;

	if (kind != WORK_PROBE && kind != WORK_POLL_LIST) {
		r = outbox_get(m->outbox, m->work_record);
		if (!r)
			return -ENOENT;
	}

	switch (kind) {
	case WORK_CREATE:
		k = build_create_body(m, r, now, &body);
		if (k < 0)
			return k;
		/* After a crash from here on the daemon reconciles instead of
		 * creating again. */
		k = mark_submitting(m, r, now);
		if (k < 0)
			return k;
		k = api_create_request(m->api, r->loop_id, body, work_done, m, &m->work_call);
		break;
	case WORK_TRIGGER: {
		char path[TRIGGER_PATH_MAX];

		k = manager_need_params(m, r);
		if (k >= 0)
			k = trigger_path(r->params, path);
		if (k >= 0)
			k = trigger_body(r->params, &body);
		if (k < 0)
			return k;
		/* After a crash from here on the trigger fails as outcome
		 * unknown (trigger_lost) instead of being sent again. */
		k = mark_submitting(m, r, now);
		if (k < 0)
			return k;
		k = api_call(m->api, "POST", path, body, work_done, m, &m->work_call);
		break;
	}
	case WORK_POLL_LOOP:
		/* Requests of every key in the loop (those of a key since rotated
		 * are in no list of the current key). Unpaged: a loop too big to
		 * read fails, and its missing requests are read by id instead. */
		set_string(&m->work_loop, r->loop_id);
		k = api_loop_call(m->api, "GET", r->loop_id, "/requests", NULL, work_done, m, &m->work_call);
		break;
	case WORK_RECONCILE: {
		/* The key's own requests in the loop, a page at a time: a loop's
		 * whole listing (GET /loops/{id}/requests) outgrows any bound. */
		char path[256];

		if (!apiparse_id_is_valid(r->loop_id))
			return -EINVAL;
		reconcile_begin(m, r);
		m->rec_calls++;
		snprintf(path, sizeof path, "/api/requests?loop_id=%s&limit=%u&offset=%u&sort=created_at_desc", r->loop_id,
		         (unsigned) RECONCILE_PAGE_LIMIT, m->rec_offset);
		set_string(&m->work_loop, r->loop_id);
		k = api_call(m->api, "GET", path, NULL, work_done, m, &m->work_call);
		break;
	}
	case WORK_RECONCILE_GET:
		if (!streq(m->rec_id, r->id) || m->rec_next_candidate >= m->n_rec_candidates)
			return -EINVAL;
		m->rec_calls++;
		k = api_get_request(m->api, m->rec_candidates[m->rec_next_candidate], work_done, m, &m->work_call);
		break;
	case WORK_CANCEL:
		k = api_cancel_request(m->api, r->remote_id, work_done, m, &m->work_call);
		break;
	case WORK_FEEDBACK:
		k = api_feedback(m->api, r->remote_id, r->feedback, work_done, m, &m->work_call);
		break;
	case WORK_POLL_GET:
		k = api_get_request(m->api, r->remote_id, work_done, m, &m->work_call);
		break;
	case WORK_POLL_LIST:
		k = api_list_requests(m->api, NULL, POLL_PAGE_LIMIT, m->poll_offset, "created_at_desc", work_done, m,
		                      &m->work_call);
		break;
	case WORK_PROBE:
		m->ks.identify_tried = true;
		k = api_test_key(m->api, work_done, m, &m->work_call);
		break;
	default:
		return -EINVAL;
	}
	if (k < 0) {
		m->work_call = NULL;
		if ((kind == WORK_CREATE || kind == WORK_TRIGGER) && r && record_requeue(r, false) >= 0)
			manager_record_changed(m, r);
		return log_error_errno(k, "Failed to start a HITL.sh call: %m");
	}

	m->work_kind = kind;
	m->last_attempt_at = now;
	manager_charge(m, call_kind);
	return 0;
}

static void key_invalid(Manager *m, const ApiResult *res) {
	const char *msg = res->msg ? res->msg : "401 Unauthorized";

	m->probe_failures++;
	m->next_probe_at = now_realtime() + sched_backoff(m->probe_failures, PROBE_BACKOFF_CAP, manager_random(m));
	if (m->key_state != KEY_INVALID || !streq_ptr(m->key_error, msg))
		/* Once per change, not once per call. */
		log_event(LOG_ERR, MID_KEY_INVALID, LOG_FIELDS({ "HITL_HTTP_STATUS", "401" }),
		          "HITL.sh refused the API key (%s); remote calls stop until it works again or is replaced (systemctl reload hitld).",
		          msg);
	m->key_state = KEY_INVALID;
	set_string(&m->key_error, msg);
	set_string(&m->last_error, msg);
}

/* Budget, reachability and key state from any reply. Whether the call
 * made progress is for the caller to say (health_success, health_failure). */
static void observe_common(Manager *m, const ApiResult *res) {
	usec_t now = now_realtime();
	bool stale = keyswitch_reply_is_stale(m, res);

	budget_observe(&m->budget, &res->rate, now);
	/* Refused before anything was sent (connect, TLS): HITL.sh counted nothing. */
	if (res->http_status == 0 && !res->maybe_sent)
		budget_refund(&m->budget, res->started_at, now);
	if (res->http_status == 429 && health_classify(m, CALL_POLL, res, NULL) == APIERR_RATE) {
		char remaining[16];

		budget_observe_429(&m->budget, &res->rate, now, manager_random(m));
		snprintf(remaining, sizeof remaining, "%u", budget_remaining(&m->budget, now));
		log_event(LOG_WARNING, MID_RATE_LIMITED,
		          LOG_FIELDS({ "HITL_HTTP_STATUS", "429" }, { "HITL_BUDGET_REMAINING", remaining }),
		          "HITL.sh answered 429 (rate limit): another user of the key spends it too. No remote calls until the reset.");
	}
	budget_persist(m);

	if (res->http_status == 0)
		m->reachable = false;
	else {
		m->reachable = true;
		m->last_ok_at = now;
		/* A reply about a key since replaced says nothing of this one. */
		if (!stale && keyswitch_is_refusal(m, res))
			keyswitch_refused(m, res);
		else if (!stale && res->http_status >= 200 && res->http_status < 300)
			keyswitch_worked(m);
		if (stale) {
			/* key state: nothing to learn */
		} else if (res->http_status == 401)
			key_invalid(m, res);
		else if (res->http_status >= 200 && res->http_status < 500 && !(res->http_status >= 300 && res->http_status < 400) &&
		         res->http_status != 429 && !res->body_invalid) {
			if (m->key_state != KEY_VALID)
				log_event(LOG_INFO, MID_KEY_LOADED, LOG_NO_FIELDS, "HITL.sh accepted the API key.");
			m->key_state = KEY_VALID;
			m->probe_failures = 0;
			set_string(&m->key_error, NULL);
		}
	}
	status_changed(m);   /* STATUS= shows the last API error, or no longer does */
}

/* Is this reply a failure of the call as such (no reply, server error, a
 * redirect, an unreadable body)? 401 and 429 have their own pauses. */
static bool reply_failed(const ApiResult *res) {
	return res->http_status == 0 || res->http_status >= 500 || (res->http_status >= 300 && res->http_status < 400) ||
	       res->body_invalid || (res->http_status >= 100 && res->http_status < 200);
}

void manager_observe_response(Manager *m, const ApiResult *res) {
	char what[256];

	observe_common(m, res);
	if (reply_failed(res)) {
		health_describe(res, what, sizeof what);
		health_failure(m, what);
	} else if (res->http_status != 401 && res->http_status != 429)
		health_success(m);
}

void manager_charge(Manager *m, CallKind kind) {
	budget_charge(&m->budget, kind, now_realtime());
	budget_persist(m);
	status_changed(m);
}

/* Back to the queue, not counted as an attempt: the create did not happen
 * for a reason that is not about r. */
static void requeue(Manager *m, Record *r, bool count_attempt) {
	if (record_requeue(r, !count_attempt) < 0)
		return;
	r->next_attempt_at = 0;
	manager_record_changed(m, r);
}

/* Returns false if the call made no progress (the caller backs off). */
static bool on_create_done(Manager *m, Record *r, const ApiResult *res) {
	usec_t now = now_realtime();
	char what[256];
	ApiErrClass c;

	if (res->http_status >= 200 && res->http_status < 300) {
		RemoteRequest rr;

		/* A 2xx proves the create happened, whatever the body says. */
		health_breaker_close(m);
		health_loop_unpause(m, r->loop_id);
		m->repeat_count = 0;
		if (!res->api_error && res->data && apiparse_remote_request(res->data, &rr) >= 0) {
			if (record_mark_created(r, now, rr.id, rr.status) < 0)
				return true;
			request_log(m, r, LOG_INFO, MID_REQUEST_CREATED, "Request %s was created at HITL.sh.", r->id);
			if (m->next_poll_at == 0)
				m->next_poll_at = now + poll_interval(m, now, outbox_count_state(m->outbox, REQUEST_QUEUED));
		} else {
			/* Created, id unknown: found later by reconcile, never
			 * created again, and creates go on meanwhile. */
			if (record_mark_created(r, now, NULL, NULL) < 0)
				return true;
			r->next_attempt_at = now + 2 * USEC_PER_SEC;
			request_log(m, r, LOG_WARNING, MID_REQUEST_CREATED,
			            "HITL.sh accepted request %s (HTTP %ld) but its reply cannot be read; it counts as created "
			            "and is looked for in the loop's listing, never created again.", r->id, res->http_status);
		}
		manager_record_changed(m, r);
		return true;
	}

	c = health_classify(m, CALL_CREATE, res, r->loop_id);
	if (c == APIERR_RATE) {
		requeue(m, r, true);
		return true;
	}
	if (res->http_status == 401) {
		requeue(m, r, false);
		return true;
	}

	health_describe(res, what, sizeof what);
	if (c == APIERR_REQUEST) {
		/* The same refusal for different requests in a row is not about
		 * them: a server that changed, not bad requests. */
		if (m->repeat_count > 0 && m->repeat_status == res->http_status && streq_ptr(m->repeat_msg, res->msg))
			m->repeat_count++;
		else {
			m->repeat_count = 1;
			m->repeat_status = res->http_status;
			set_string(&m->repeat_msg, res->msg);
		}
		if (m->repeat_count >= APIERR_REPEAT_THRESHOLD) {
			char reason[320];

			snprintf(reason, sizeof reason, "the same refusal for %u different requests in a row (%s)",
			         m->repeat_count, what);
			health_breaker_open(m, APIERR_ACCOUNT, reason);
			m->breaker_by_create = true;
			requeue(m, r, false);
			return true;
		}
	}

	switch (c) {
	case APIERR_REQUEST: {
		_cleanup_(freep) char *message = NULL;
		const char *data = res->data && json_object_is_type(res->data, json_type_string)
		                           ? json_object_get_string(res->data)
		                           : NULL;

		if (asprintf(&message, "%s%s%s", res->msg ? res->msg : "HITL.sh rejected the request",
		             data ? ": " : "", data ? data : "") < 0)
			message = NULL;
		if (record_fail(r, "remote_rejected", message ? message : "HITL.sh rejected the request", res->http_status,
		                true) < 0)
			return true;
		request_log(m, r, LOG_WARNING, MID_REQUEST_FAILED, "Request %s was rejected by HITL.sh: %s", r->id, message);
		manager_record_changed(m, r);
		return true;
	}
	case APIERR_LOOP:
		health_loop_pause(m, r->loop_id, what);
		requeue(m, r, false);
		return true;
	case APIERR_KEY:
	case APIERR_ACCOUNT:
	case APIERR_ENDPOINT:
		/* A redirect or a refusal about the key, account or endpoint:
		 * nothing was created. */
		health_breaker_open(m, c, what);
		m->breaker_by_create = true;
		requeue(m, r, false);
		return true;
	default:
		break;
	}

	if (res->http_status == 0 && !res->maybe_sent) {
		/* Never reached the server: safe to send again later. */
		if (record_requeue(r, false) < 0)
			return false;
		r->next_attempt_at = m->backoff_until;
		manager_record_changed(m, r);
		return false;
	}
	/* 5xx, or a transport failure after sending: the create may have
	 * happened. The record stays "submitting" and is reconciled. */
	log_event(LOG_WARNING, MID_API_ERROR, LOG_FIELDS({ "HITL_REQUEST_ID", r->id }),
	          "Creating request %s had an unknown outcome (%s); it will be reconciled before anything new is created.",
	          r->id, what);
	manager_notify(m, r);
	return false;
}

/* The loop's own listing, for pending requests the key's list did not show. */
static bool on_poll_loop_done(Manager *m, const ApiResult *res) {
	json_object *requests = res->data ? json_object_object_get(res->data, "requests") : NULL;

	if (res->http_status != 200 || res->api_error || !json_object_is_type(requests, json_type_array))
		return false;
	for (Record *r = outbox_first(m->outbox), *next; r; r = next) {
		next = outbox_next(m->outbox, r);
		if (r->state != REQUEST_PENDING || !r->remote_id || !r->poll_missing || !streq_ptr(r->loop_id, m->work_loop))
			continue;
		for (size_t i = 0; i < json_object_array_length(requests); i++) {
			RemoteRequest rr;

			if (apiparse_remote_request(json_object_array_get_idx(requests, i), &rr) < 0 ||
			    !streq_ptr(r->remote_id, rr.id))
				continue;
			/* Found: no GET needed. Absent ones keep the flag and are
			 * asked for by id. */
			r->poll_missing = r->poll_by_id = false;
			apply_remote(m, r, &rr);
			break;
		}
	}
	return true;
}

static bool any_poll_missing(Manager *m) {
	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r))
		if (r->state == REQUEST_PENDING && r->poll_missing)
			return true;
	return false;
}

static void poll_apply(Manager *m, json_object *obj, size_t *ret_matched) {
	RemoteRequest rr;

	if (apiparse_remote_request(obj, &rr) < 0)
		return;
	/* Linear in pending records: polls are rare (a few per minute at most). */
	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r)) {
		if (r->state != REQUEST_PENDING || !streq_ptr(r->remote_id, rr.id))
			continue;
		(*ret_matched)++;
		r->poll_seen_round = m->poll_round;
		apply_remote(m, r, &rr);
		return;
	}
}

static bool on_poll_list_done(Manager *m, const ApiResult *res, bool *ret_ok) {
	json_object *requests = NULL;
	unsigned total = 0, next_offset = 0;
	bool has_more = false;
	size_t matched = 0;

	if (res->http_status != 200 || res->api_error || !res->data ||
	    apiparse_list(res->data, &requests, &total, &has_more, &next_offset) < 0) {
		m->poll_in_round = false;
		*ret_ok = false;
		return false;
	}
	for (size_t i = 0; i < json_object_array_length(requests); i++)
		poll_apply(m, json_object_array_get_idx(requests, i), &matched);
	m->poll_pages++;

	size_t unseen = 0;
	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r))
		if (r->state == REQUEST_PENDING && r->remote_id && r->poll_seen_round != m->poll_round &&
		    r->submitted_at < m->poll_round_started_at)
			unseen++;

	/* Another page only if pending requests remain unseen and the list
	 * goes on; the budget still decides. */
	if (has_more && unseen > 0 && m->poll_pages < POLL_MAX_PAGES) {
		m->poll_offset = next_offset;
		return true;
	}

	m->poll_in_round = false;
	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r))
		if (r->state == REQUEST_PENDING && r->remote_id && r->poll_seen_round != m->poll_round &&
		    r->submitted_at < m->poll_round_started_at)
			r->poll_missing = true;
	return false;
}

static void work_done(ApiClient *c, const ApiResult *res, void *userdata) {
	Manager *m = userdata;
	WorkKind kind = m->work_kind;
	usec_t now = now_realtime();
	Record *r = outbox_get(m->outbox, m->work_record);
	bool more_pages = false, failed = reply_failed(res), ok = true;
	char what[256];
	ApiErrClass cls;

	m->work_call = NULL;
	m->work_kind = WORK_NONE;

	if (keyswitch_reply_is_stale(m, res) && keyswitch_is_refusal(m, res)) {
		/* The key it went with has been replaced since: HITL.sh refused
		 * it, so nothing happened; it is done again with the current key. */
		observe_common(m, res);
		if ((kind == WORK_CREATE || kind == WORK_TRIGGER) && r && r->state == REQUEST_SUBMITTING)
			requeue(m, r, false);
		status_changed(m);
		if (m->shutting_down) {
			sd_event_exit(m->event, 0);
			return;
		}
		manager_kick(m);
		return;
	}
	observe_common(m, res);
	health_describe(res, what, sizeof what);
	if (failed)
		health_failure(m, what);
	/* A redirect or an error about the key, account or endpoint on any
	 * call pauses creates too (creates handle their own). */
	cls = health_classify(m, CALL_POLL, res, NULL);
	if (kind != WORK_CREATE && apierr_is_global(cls)) {
		health_breaker_open(m, cls, what);
		m->breaker_by_create = false;
	} else if (kind != WORK_CREATE && !m->breaker_by_create && res->http_status >= 200 && res->http_status < 300 &&
	           !res->api_error)
		/* What a poll or reconcile ran into works again for them; a
		 * refused create is cleared only by a create. */
		health_breaker_close(m);

	switch (kind) {
	case WORK_CREATE:
		if (r && r->state == REQUEST_SUBMITTING)
			ok = on_create_done(m, r, res);
		break;
	case WORK_TRIGGER:
		if (!r || r->state != REQUEST_SUBMITTING)
			break;
		/* An error about the key, the account or the endpoint is not the
		 * trigger's: nothing ran, and it waits in the queue while creates
		 * pause, as a create does. */
		if (apierr_is_global(cls))
			requeue(m, r, false);
		else
			on_trigger_done(m, r, res);
		break;
	case WORK_RECONCILE:
	case WORK_RECONCILE_GET:
		if (!r || !(r->state == REQUEST_SUBMITTING || (r->state == REQUEST_PENDING && !r->remote_id)) ||
		    !streq(m->rec_id, r->id)) {
			reconcile_clear(m);
			break;
		}
		ok = kind == WORK_RECONCILE ? reconcile_on_list(m, r, res) : reconcile_on_get(m, r, res);
		if (!ok)
			reconcile_settle(m, r);   /* failed calls count towards the bound too */
		break;
	case WORK_POLL_LOOP:
		ok = on_poll_loop_done(m, res);
		if (res->http_status != 429 && res->http_status != 401)
			/* Whatever the loop's listing did not show (or all, when it
			 * could not be read: too big, an error) is asked for by id. */
			for (Record *x = outbox_first(m->outbox); x; x = outbox_next(m->outbox, x))
				if (x->state == REQUEST_PENDING && x->poll_missing && streq_ptr(x->loop_id, m->work_loop))
					x->poll_by_id = true;
		if (res->http_status > 0 && res->http_status < 500)
			m->next_poll_at = any_poll_missing(m) ? now
			                                      : now + poll_interval(m, now, outbox_count_state(m->outbox, REQUEST_QUEUED));
		break;
	case WORK_CANCEL:
		if (!r)
			break;
		if (res->http_status == 200 && !res->api_error) {
			if (record_mark_cancelled(r) < 0)
				break;
			request_log(m, r, LOG_INFO, MID_REQUEST_CANCELLED, "Request %s was cancelled at HITL.sh.", r->id);
			manager_record_changed(m, r);
		} else if (res->http_status == 400 || res->http_status == 404 || res->http_status == 403) {
			/* Already final remotely (answered, timed out): learn how. */
			r->cancel_requested = false;
			m->next_poll_at = now;
			manager_record_changed(m, r);
		} else
			ok = false;
		break;
	case WORK_FEEDBACK:
		if (!r)
			break;
		if (res->http_status == 200 && !res->api_error) {
			r->feedback_state = FEEDBACK_SENT;
			request_log(m, r, LOG_INFO, MID_FEEDBACK_SENT, "Feedback on request %s was sent to HITL.sh.", r->id);
			manager_record_changed(m, r);
		} else if (res->http_status >= 400 && res->http_status < 500 && res->http_status != 401 &&
		           res->http_status != 429) {
			r->feedback_state = FEEDBACK_FAILED;
			log_warning("HITL.sh refused the feedback on request %s: %s", r->id, strna(res->msg));
			manager_record_changed(m, r);
		} else
			ok = false;
		break;
	case WORK_POLL_GET:
		if (r && res->http_status > 0 && res->http_status < 500 && res->http_status != 429 && res->http_status != 401)
			r->poll_missing = r->poll_by_id = false;
		if (r && res->http_status == 200 && !res->api_error && res->data) {
			RemoteRequest rr;

			if (apiparse_get_request(res->data, &rr) >= 0)
				apply_remote(m, r, &rr);
			else
				ok = false;
		} else if (r && res->http_status == 404) {
			if (record_fail(r, "remote_missing", "HITL.sh no longer knows this request.", 404, false) < 0)
				break;
			request_log(m, r, LOG_WARNING, MID_REQUEST_FAILED, "Request %s failed: %s", r->id, "HITL.sh no longer knows it");
			manager_record_changed(m, r);
		} else
			ok = false;
		if (res->http_status > 0 && res->http_status < 500)
			m->next_poll_at = any_poll_missing(m) ? now
			                                      : now + poll_interval(m, now, outbox_count_state(m->outbox, REQUEST_QUEUED));
		break;
	case WORK_POLL_LIST:
		more_pages = on_poll_list_done(m, res, &ok);
		if (more_pages || any_poll_missing(m))
			m->next_poll_at = now;
		else if (res->http_status > 0 && res->http_status < 500)
			m->next_poll_at = now + poll_interval(m, now, outbox_count_state(m->outbox, REQUEST_QUEUED));
		break;
	case WORK_PROBE:
		if (res->http_status == 200 && res->data)
			keyswitch_identified(m, json_object_get_string(json_object_object_get(res->data, "api_key_id")));
		else
			ok = false;
		break;
	default:
		break;
	}

	/* Every kind backs off alike when it made no progress, whatever the
	 * status said (401 and 429 have their own pauses). */
	if (!failed && res->http_status != 401 && res->http_status != 429) {
		if (ok)
			health_success(m);
		else
			health_failure(m, what);
	}
	status_changed(m);
	if (m->shutting_down) {
		sd_event_exit(m->event, 0);
		return;
	}
	if (more_pages) {
		/* Continue the round where it left off (poll_offset kept). */
		usec_t slot = budget_next_slot(&m->budget, CALL_POLL, 1, now, manager_random(m));
		if (slot <= now && work_start(m, WORK_POLL_LIST, CALL_POLL) >= 0)
			return;
	}
	manager_kick(m);
}

/* ------------------------------------------------------------------ admin check */

bool manager_peer_is_admin(Manager *m, uid_t uid, gid_t gid) {
	const char *group = m->config->socket_admin_group;
	struct group *gr;
	struct passwd *pw;
	gid_t groups[256];
	int n = (int) ELEMENTSOF(groups);

	if (uid == 0 || uid == geteuid())
		return true;
	if (!group || !*group)
		return false;
	gr = getgrnam(group);
	if (!gr)
		return false;
	if (gid == gr->gr_gid)
		return true;
	pw = getpwuid(uid);
	if (!pw)
		return false;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

/* ------------------------------------------------------------------ life cycle */

/* After damage in the log, a queued record may really have been
 * "submitting" or later (the newer entries were in the damaged bytes):
 * only a reconcile can tell, never a second create. It reconciles against
 * what HITL.sh created since its newest surviving entry. */
static void suspect_damaged(Manager *m) {
	size_t n = 0;
	bool durable = true;

	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r)) {
		if (!r->log_damaged_after || record_mark_suspect(r) < 0)
			continue;
		if (manager_record_changed(m, r) < 0)
			/* Still reconciled in this run; the damage stays in the
			 * log, so the next start finds it again. */
			durable = false;
		n++;
	}
	if (durable)
		outbox_release_damaged(m->outbox);
	if (n > 0)
		log_event(LOG_WARNING, MID_RECONCILED, LOG_NO_FIELDS,
		          "The outbox log was damaged after the newest entry of %zu queued requests: they may have been "
		          "sent already, so each is reconciled with HITL.sh before it is created.", n);
}

static void config_freep(Config **c) {
	if (*c)
		config_free(*c);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
	Manager *m = userdata;

	if (si->ssi_signo == SIGHUP) {
		(void) manager_reload(m);
		return 0;
	}

	if (m->shutting_down)
		return 0;
	/* What was received is made durable and acknowledged before we go. */
	manager_commit(m);
	m->shutting_down = true;
	sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
	log_event(LOG_INFO, MID_DAEMON_STOPPING, LOG_NO_FIELDS, "Shutting down (signal %u).", si->ssi_signo);
	rpc_server_stop_reading(m->rpc);
	sd_event_source_set_enabled(m->work_timer, SD_EVENT_OFF);

	/* Anyone still waiting hears why. */
	while (m->waiters) {
		Waiter *w = m->waiters;

		rpc_call_error(w->call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);
		w->call = NULL;
		waiter_free(w);
	}

	if (!m->work_call)
		return sd_event_exit(m->event, 0);
	/* Give the call in flight a moment to finish so its outcome is recorded. */
	return sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, SHUTDOWN_GRACE, USEC_PER_MSEC,
	                                  NULL, NULL);
}

/* A writer of the socket's directory could put its own socket in our place; notice it. */
static int on_socket_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	Manager *m = userdata;

	if (manager_socket_replaced(m)) {
		status_changed(m);
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	}
	return sd_event_source_set_time_relative(s, SOCKET_CHECK_INTERVAL);
}

bool manager_socket_replaced(Manager *m) {
	if (m->listen_inherited || m->listen_fd < 0)
		return false;
	return listener_verify(m->socket_path, &m->socket_file) < 0;
}

/* Administrators are not held to the per-uid share of the loop's time. */
static bool rpc_exempt_admin(uid_t uid, gid_t gid, void *userdata) {
	return manager_peer_is_admin(userdata, uid, gid);
}

static int apply_config(Manager *m) {
	RpcLimits limits = {
		.max_message_bytes = m->config->socket_max_message_bytes,
		.max_output_bytes = 4 * 1024 * 1024,
		.max_connections = m->config->socket_max_connections,
		.max_connections_per_uid = m->config->socket_max_connections_per_uid,
		.idle_timeout = (usec_t) m->config->socket_idle_timeout_s * USEC_PER_SEC,
		.max_pending_calls = 64,
		.max_output_bytes_per_uid = (size_t) m->config->socket_max_output_mb_per_uid * 1024 * 1024,
		.max_output_bytes_total = (size_t) m->config->socket_max_output_mb_total * 1024 * 1024,
		.cpu_percent_per_uid = m->config->socket_cpu_percent_per_uid,
	};

	log_set_max_level(m->config->log_level);
	m->budget.config.poll_reserve = m->config->budget_poll_reserve;
	m->budget.config.interactive_per_uid = m->config->budget_interactive_per_uid;
	m->budget.config.interactive_total = m->config->budget_interactive_total;
	if (m->rpc)
		rpc_server_set_limits(m->rpc, &limits);
	return 0;
}

static int load_key(Manager *m, bool reload) {
	_cleanup_(erase_and_freep) char *key = NULL;
	SecretSource source;
	int k;

	k = secret_load(m->config->api_key_file, &key, &source);
	m->key_load_result = k < 0 ? k : 0;
	m->key_load_kept = k < 0 && reload && api_has_key(m->api);
	if (k == -ENOKEY) {
		if (reload && api_has_key(m->api)) {
			log_warning("No API key found on reload; keeping the current one.");
			return 0;
		}
		log_error("No API key: set LoadCredential=hitl-api-key:… in the unit, api.key_file in %s, or HITL_API_KEY. "
		          "Requests are accepted and queued until a key is supplied (systemctl reload hitld).",
		          m->config->path ? m->config->path : "the configuration");
		m->key_state = KEY_MISSING;
		return 0;
	}
	if (k < 0) {
		if (reload && api_has_key(m->api)) {
			log_warning("The new API key was refused; keeping the current one.");
			return 0;
		}
		m->key_state = KEY_MISSING;
		return k;
	}
	k = api_set_key(m->api, key);
	if (k < 0) {
		m->key_load_result = k;
		m->key_load_kept = reload && api_has_key(m->api);
		return k;
	}
	m->key_source = source;
	m->key_state = KEY_UNKNOWN;
	keyswitch_key_loaded(m);
	if (reload)
		/* The listing a reconcile reads shows only this key's requests. */
		m->key_changed_at = now_realtime();
	m->probe_failures = 0;
	m->next_probe_at = 0;
	set_string(&m->key_error, NULL);
	set_string(&m->api_key_id, NULL);
	log_event(LOG_INFO, MID_KEY_LOADED, LOG_FIELDS({ "HITL_KEY_SOURCE", secret_source_to_string(source) }),
	          "API key %s from the %s.", reload ? "reloaded" : "loaded", secret_source_to_string(source));
	return 0;
}

int manager_reload(Manager *m) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(freep) char *error = NULL;
	int k;

	sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration.");
	k = config_load(m->options.config_path, m->options.config_must_exist, &c, &error);
	if (k < 0)
		log_error("Reload failed, keeping the current configuration: %s", error ? error : strerror(-k));
	else {
		/* Paths that are bound at start do not change on reload, nor does
		 * the HITL.sh client, which may have calls in flight. */
		if (!streq_ptr(c->api_base_url, m->config->api_base_url) ||
		    !streq_ptr(c->api_ca_file, m->config->api_ca_file) || c->api_timeout_s != m->config->api_timeout_s)
			log_warning("api.base_url, api.ca_file and api.timeout_s changes take effect at the next restart.");
		if (!streq_ptr(c->socket_path, m->config->socket_path) ||
		    !streq_ptr(c->outbox_state_dir, m->config->outbox_state_dir))
			log_warning("socket.path and outbox.state_dir changes take effect at the next restart.");
		config_free(m->config);
		m->config = TAKE_PTR(c);
		apply_config(m);
		log_event(LOG_INFO, MID_CONFIG_RELOADED, LOG_NO_FIELDS, "Configuration reloaded.");
	}
	(void) load_key(m, true);
	keyswitch_load_standby(m, true);
	sd_notify(false, "READY=1");
	status_changed(m);
	manager_kick(m);
	return k;
}

int manager_new(const ManagerOptions *options, Manager **ret) {
	_cleanup_(manager_freep) Manager *m = NULL;
	int k;

	m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->options = *options;
	m->listen_fd = -EBADF;
	m->state_lock_fd = -EBADF;
	if (getrandom(&m->rng, sizeof m->rng, 0) != sizeof m->rng || m->rng == 0)
		m->rng = now_monotonic() | 1;

	k = sd_event_default(&m->event);
	if (k < 0)
		return k;
	*ret = TAKE_PTR(m);
	return 0;
}

int manager_startup(Manager *m) {
	_cleanup_(freep) char *error = NULL;
	usec_t now = now_realtime();
	sigset_t mask;
	int k;

	k = config_load(m->options.config_path, m->options.config_must_exist, &m->config, &error);
	if (k < 0) {
		log_error("%s", error ? error : "Failed to load the configuration.");
		return k;
	}
	log_set_max_level(m->config->log_level);
	m->socket_path = strdup(m->options.socket_path ? m->options.socket_path : m->config->socket_path);
	m->state_dir = strdup(m->options.state_dir ? m->options.state_dir : m->config->outbox_state_dir);
	if (!m->socket_path || !m->state_dir)
		return log_error_errno(ENOMEM, "Out of memory.");
	m->started_at = now;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	(void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	(void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
	(void) sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
	(void) sd_event_set_watchdog(m->event, true);

	/* Before anything reads or writes the state: one hitld per state directory. */
	m->state_lock_fd = statelock_acquire(m->state_dir);
	if (m->state_lock_fd < 0)
		return m->state_lock_fd;

	ApiConfig api_config = {
		.base_url = m->config->api_base_url,
		.ca_file = m->config->api_ca_file,
		.timeout_s = m->config->api_timeout_s,
	};
	k = api_new(m->event, &api_config, &m->api);
	if (k < 0)
		return log_error_errno(k, "Refusing api.base_url %s: %m", m->config->api_base_url);
	k = load_key(m, false);
	if (k < 0)
		return k;
	keyswitch_load_standby(m, false);

	k = outbox_open(m->state_dir, &m->outbox);
	if (k < 0)
		return log_error_errno(k, "Failed to open the outbox in %s: %m", m->state_dir);
	outbox_set_min_free(m->outbox, (uint64_t) m->config->outbox_min_free_mb * 1024 * 1024);
	suspect_damaged(m);

	BudgetConfig bc = {
		.limit_per_hour = m->config->budget_limit_per_hour,
		.poll_reserve = m->config->budget_poll_reserve,
		.window = (usec_t) m->config->budget_window_s * USEC_PER_SEC,
		.interactive_per_uid = m->config->budget_interactive_per_uid,
		.interactive_total = m->config->budget_interactive_total,
	};
	budget_init(&m->budget, &bc, now);
	precedence_attach(m);
	budget_load(m);
	m->paused = faccessat(outbox_state_dirfd(m->outbox), PAUSED_FILE, F_OK, 0) >= 0;

	gid_t gid = (gid_t) -1;
	if (m->config->socket_group && *m->config->socket_group) {
		struct group *gr = getgrnam(m->config->socket_group);
		if (gr)
			gid = gr->gr_gid;
		else
			log_warning("socket.group %s does not exist; leaving the socket's group as it is.",
			            m->config->socket_group);
	}
	k = listener_open(m->socket_path, m->config->socket_mode, gid, &m->listen_fd, &m->listen_inherited);
	if (k < 0)
		return log_error_errno(k, "Failed to listen on %s: %m", m->socket_path);
	if (!m->listen_inherited) {
		k = listener_identify(m->socket_path, &m->socket_file);
		if (k < 0)
			return log_error_errno(k, "Cannot examine the socket %s just bound: %m", m->socket_path);
		k = sd_event_add_time_relative(m->event, &m->socket_timer, CLOCK_MONOTONIC, SOCKET_CHECK_INTERVAL,
		                               USEC_PER_SEC, on_socket_timer, m);
		if (k < 0)
			return k;
	}

	RpcLimits limits = {
		.max_message_bytes = m->config->socket_max_message_bytes,
		.max_output_bytes = 4 * 1024 * 1024,
		.max_connections = m->config->socket_max_connections,
		.max_connections_per_uid = m->config->socket_max_connections_per_uid,
		.idle_timeout = (usec_t) m->config->socket_idle_timeout_s * USEC_PER_SEC,
		.max_pending_calls = 64,
		.max_output_bytes_per_uid = (size_t) m->config->socket_max_output_mb_per_uid * 1024 * 1024,
		.max_output_bytes_total = (size_t) m->config->socket_max_output_mb_total * 1024 * 1024,
		.cpu_percent_per_uid = m->config->socket_cpu_percent_per_uid,
	};
	if (!m->dispatch)
		return log_error_errno(-EINVAL, "No socket methods were registered.");
	k = rpc_server_new(m->event, m->listen_fd, &limits, m->dispatch, m->dispatch_userdata, &m->rpc);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the socket server: %m");
	rpc_server_set_exempt(m->rpc, rpc_exempt_admin, m);

	k = sd_event_add_time(m->event, &m->work_timer, CLOCK_REALTIME, 0, 10 * USEC_PER_MSEC, on_work_timer, m);
	if (k < 0)
		return k;
	k = sd_event_add_defer(m->event, &m->status_defer, on_status_defer, m);
	if (k < 0)
		return k;
	k = sd_event_add_defer(m->event, &m->commit_defer, on_commit_defer, m);
	if (k < 0)
		return k;
	sd_event_source_set_enabled(m->commit_defer, SD_EVENT_OFF);
	/* A defer source stays pending, with the iteration it first became
	 * pending in, once it has been enabled: at the connections' priority it
	 * would run before all of them and commit one submit at a time. */
	k = sd_event_source_set_priority(m->commit_defer, SD_EVENT_PRIORITY_NORMAL + 1);
	if (k < 0)
		return k;
	k = sd_event_add_time_relative(m->event, &m->commit_timer, CLOCK_MONOTONIC, COMMIT_MAX_DELAY, 0,
	                               on_commit_timer, m);
	if (k < 0)
		return k;
	sd_event_source_set_enabled(m->commit_timer, SD_EVENT_OFF);

	char queued[16], pending[16];
	snprintf(queued, sizeof queued, "%zu", outbox_count_state(m->outbox, REQUEST_QUEUED));
	snprintf(pending, sizeof pending, "%zu", outbox_count_state(m->outbox, REQUEST_PENDING));
	log_event(LOG_INFO, MID_DAEMON_STARTED, LOG_FIELDS({ "HITL_QUEUED", queued }, { "HITL_PENDING", pending }),
	          "hitld %s started: %zu requests recovered (%s queued, %s pending, %u quarantined), listening on %s%s.",
	          HITLD_VERSION, outbox_size(m->outbox), queued, pending, outbox_quarantined(m->outbox),
	          m->socket_path, m->listen_inherited ? " (socket activation)" : "");
	update_status(m);
	sd_notify(false, "READY=1");
	return 0;
}

int manager_run(Manager *m) {
	return sd_event_loop(m->event);
}

Manager *manager_free(Manager *m) {
	if (!m)
		return NULL;
	while (m->waiters) {
		Waiter *w = m->waiters;

		if (w->call)
			rpc_call_error(w->call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);
		w->call = NULL;
		waiter_free(w);
	}
	m->rpc = rpc_server_free(m->rpc);   /* frees watches through their connections */
	sd_event_source_disable_unref(m->socket_timer);
	/* A replaced socket file is someone else's now: leave it for whoever looks into it. */
	if (m->listen_fd >= 0)
		listener_close(m->listen_fd, listener_verify(m->socket_path, &m->socket_file) < 0 ? NULL : m->socket_path,
		               m->listen_inherited);
	keyswitch_free(m);
	m->api = api_free(m->api);
	sd_event_source_disable_unref(m->work_timer);
	sd_event_source_disable_unref(m->status_defer);
	manager_commit(m);
	sd_event_source_disable_unref(m->commit_defer);
	sd_event_source_disable_unref(m->commit_timer);
	free(m->pending);
	m->outbox = outbox_free(m->outbox);
	config_free(m->config);
	free(m->work_loop);
	free(m->key_error);
	free(m->api_key_id);
	free(m->last_error);
	free(m->breaker_reason);
	free(m->repeat_msg);
	for (size_t i = 0; i < m->n_loop_pauses; i++)
		free(m->loop_pauses[i].reason);
	free(m->loop_pauses);
	free(m->socket_path);
	free(m->state_dir);
	closep(&m->state_lock_fd);   /* last: the outbox is closed */
	sd_event_unref(m->event);
	free(m);
	return NULL;
}
