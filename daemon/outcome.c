/* outcome.c — see outcome.h: what a finished HITL.sh call does to the
 * engine and its records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiparse.h"
#include "cleanup.h"
#include "engine.h"
#include "log.h"
#include "msgid.h"
#include "outcome.h"
#include "persist.h"
#include "sweep.h"
#include "trigger.h"
#include "validate.h"
#include "work.h"

#define PROBE_BACKOFF_CAP USEC_PER_HOUR
#define POLL_MAX_PAGES 10

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

/* Applies what HITL.sh says about r's remote request: 0, or why it could
 * not be made durable. */
static int apply_remote(Manager *m, Record *r, const RemoteRequest *rr) {
	_cleanup_(json_object_putp) json_object *result = NULL, *response = NULL;
	RequestState old = r->state;
	int changed;
	const char *rtype;
	json_object *config;

	changed = manager_need_params(m, r);
	if (changed < 0)
		return changed;
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
		return 0;
	if (old != r->state) {
		accounting_finished(m, r);
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
	return manager_record_changed(m, r);
}

/* A poll's answer: applied, and one it found final that a callback
 * should have told is noted (sweep.h). */
static void poll_apply_remote(Manager *m, Record *r, const RemoteRequest *rr) {
	RequestState old = r->state;

	(void) apply_remote(m, r, rr);
	sweep_note_poll(m, r, old, now_realtime());
}

int manager_apply_remote(Manager *m, Record *r, const RemoteRequest *rr) {
	return apply_remote(m, r, rr);
}

/* When should the next poll round go, given how the budget stands? */
static usec_t next_poll_at(Manager *m, usec_t now) {
	return now + plan_poll_interval(&m->budget, (usec_t) m->config->budget_min_poll_interval_s * USEC_PER_SEC, now,
	                                outbox_count_state(m->outbox, REQUEST_QUEUED));
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
	manager_set_string(&m->key_error, msg);
	manager_set_string(&m->last_error, msg);
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
	persist_budget(m);

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
			manager_set_string(&m->key_error, NULL);
		}
	}
	manager_status_changed(m);   /* STATUS= shows the last API error, or no longer does */
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

/* Back to the queue, not counted as an attempt: the create did not happen
 * for a reason that is not about r. */
static void requeue(Manager *m, Record *r, bool count_attempt) {
	if (record_requeue(r, !count_attempt) < 0)
		return;
	r->next_attempt_at = 0;
	manager_record_changed(m, r);
}

/* A 2xx proves the create happened, whatever the body says. */
static void create_accepted(Manager *m, Record *r, const ApiResult *res, usec_t now) {
	RemoteRequest rr;

	health_breaker_close(m);
	health_loop_unpause(m, r->loop_id);
	m->repeat_count = 0;
	if (!res->api_error && res->data && apiparse_remote_request(res->data, &rr) >= 0) {
		if (record_mark_created(r, now, rr.id, rr.status) < 0)
			return;
		request_log(m, r, LOG_INFO, MID_REQUEST_CREATED, "Request %s was created at HITL.sh.", r->id);
		if (m->next_poll_at == 0)
			m->next_poll_at = next_poll_at(m, now);
	} else {
		/* Created, id unknown: found later by reconcile, never
		 * created again, and creates go on meanwhile. */
		if (record_mark_created(r, now, NULL, NULL) < 0)
			return;
		r->next_attempt_at = now + 2 * USEC_PER_SEC;
		request_log(m, r, LOG_WARNING, MID_REQUEST_CREATED,
		            "HITL.sh accepted request %s (HTTP %ld) but its reply cannot be read; it counts as created "
		            "and is looked for in the loop's listing, never created again.", r->id, res->http_status);
	}
	manager_record_changed(m, r);
}

/* The same refusal for different requests in a row is not about them: a
 * server that changed, not bad requests. true: it has been seen often
 * enough that creates pause (and r goes back to the queue). */
static bool create_refused_again(Manager *m, Record *r, const ApiResult *res, const char *what) {
	char reason[320];

	if (m->repeat_count > 0 && m->repeat_status == res->http_status && streq_ptr(m->repeat_msg, res->msg))
		m->repeat_count++;
	else {
		m->repeat_count = 1;
		m->repeat_status = res->http_status;
		manager_set_string(&m->repeat_msg, res->msg);
	}
	if (m->repeat_count < APIERR_REPEAT_THRESHOLD)
		return false;
	snprintf(reason, sizeof reason, "the same refusal for %u different requests in a row (%s)", m->repeat_count,
	         what);
	health_breaker_open(m, APIERR_ACCOUNT, reason);
	m->breaker_by_create = true;
	requeue(m, r, false);
	return true;
}

/* HITL.sh refused r itself: it fails, with the server's words. */
static void create_rejected(Manager *m, Record *r, const ApiResult *res) {
	_cleanup_(freep) char *message = NULL, *why = NULL;
	const char *data = res->data && json_object_is_type(res->data, json_type_string) ? json_object_get_string(res->data)
	                                                                                : NULL;

	if (asprintf(&message, "%s%s%s", res->msg ? res->msg : "HITL.sh rejected the request", data ? ": " : "",
	             data ? data : "") < 0)
		message = NULL;
	if (asprintf(&why, "rejected by HITL.sh: %s", strna(message)) < 0)
		why = NULL;
	(void) manager_fail_request(m, r, "remote_rejected", message ? message : "HITL.sh rejected the request",
	                            res->http_status, true, why ? why : "rejected by HITL.sh");
}

/* A refusal: of r (it fails), of its loop (the loop's creates pause) or of
 * the key, account or endpoint (all creates pause); false if it was none of
 * these. */
static bool create_refused(Manager *m, Record *r, const ApiResult *res, ApiErrClass c, const char *what) {
	switch (c) {
	case APIERR_REQUEST:
		if (!create_refused_again(m, r, res, what))
			create_rejected(m, r, res);
		return true;
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
		return false;
	}
}

/* Returns false if the call made no progress (the caller backs off). */
static bool on_create_done(Manager *m, Record *r, const ApiResult *res) {
	char what[256];
	ApiErrClass c;

	if (res->http_status >= 200 && res->http_status < 300) {
		create_accepted(m, r, res, now_realtime());
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
	if (create_refused(m, r, res, c, what))
		return true;

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
			poll_apply_remote(m, r, &rr);
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
		poll_apply_remote(m, r, &rr);
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

/* A redirect or an error about the key, account or endpoint on any call
 * pauses creates too (creates handle their own). */
static void background_breaker(Manager *m, WorkKind kind, const ApiResult *res, ApiErrClass cls, const char *what) {
	if (kind == WORK_CREATE)
		return;
	if (apierr_is_global(cls)) {
		health_breaker_open(m, cls, what);
		m->breaker_by_create = false;
	} else if (!m->breaker_by_create && res->http_status >= 200 && res->http_status < 300 && !res->api_error)
		/* What a poll or reconcile ran into works again for them; a
		 * refused create is cleared only by a create. */
		health_breaker_close(m);
}

static void on_trigger_reply(Manager *m, Record *r, const ApiResult *res, ApiErrClass cls) {
	if (!r || r->state != REQUEST_SUBMITTING)
		return;
	/* An error about the key, the account or the endpoint is not the
	 * trigger's: nothing ran, and it waits in the queue while creates
	 * pause, as a create does. */
	if (apierr_is_global(cls))
		requeue(m, r, false);
	else
		on_trigger_done(m, r, res);
}

static bool on_reconcile_reply(Manager *m, WorkKind kind, Record *r, const ApiResult *res) {
	bool ok;

	if (!r || !(r->state == REQUEST_SUBMITTING || (r->state == REQUEST_PENDING && !r->remote_id)) ||
	    !streq(m->rec_id, r->id)) {
		reconcile_clear(m);
		return true;
	}
	ok = kind == WORK_RECONCILE ? reconcile_on_list(m, r, res) : reconcile_on_get(m, r, res);
	if (!ok)
		reconcile_settle(m, r);   /* failed calls count towards the bound too */
	return ok;
}

static bool on_poll_loop_reply(Manager *m, const ApiResult *res, usec_t now) {
	bool ok = on_poll_loop_done(m, res);

	if (res->http_status != 429 && res->http_status != 401)
		/* Whatever the loop's listing did not show (or all, when it
		 * could not be read: too big, an error) is asked for by id. */
		for (Record *x = outbox_first(m->outbox); x; x = outbox_next(m->outbox, x))
			if (x->state == REQUEST_PENDING && x->poll_missing && streq_ptr(x->loop_id, m->work_loop))
				x->poll_by_id = true;
	if (res->http_status > 0 && res->http_status < 500)
		m->next_poll_at = any_poll_missing(m) ? now : next_poll_at(m, now);
	return ok;
}

static bool on_cancel_reply(Manager *m, Record *r, const ApiResult *res, usec_t now) {
	if (!r)
		return true;
	if (res->http_status == 200 && !res->api_error) {
		if (record_mark_cancelled(r) < 0)
			return true;
		request_log(m, r, LOG_INFO, MID_REQUEST_CANCELLED, "Request %s was cancelled at HITL.sh.", r->id);
		manager_record_changed(m, r);
	} else if (res->http_status == 400 || res->http_status == 404 || res->http_status == 403) {
		/* Already final remotely (answered, timed out): learn how. */
		r->cancel_requested = false;
		m->next_poll_at = now;
		manager_record_changed(m, r);
	} else
		return false;
	return true;
}

static bool on_feedback_reply(Manager *m, Record *r, const ApiResult *res) {
	if (!r)
		return true;
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
		return false;
	return true;
}

static bool on_poll_get_reply(Manager *m, Record *r, const ApiResult *res, usec_t now) {
	bool ok = true;

	if (r && res->http_status > 0 && res->http_status < 500 && res->http_status != 429 && res->http_status != 401)
		r->poll_missing = r->poll_by_id = false;
	if (r && res->http_status == 200 && !res->api_error && res->data) {
		RemoteRequest rr;

		if (apiparse_get_request(res->data, &rr) >= 0)
			poll_apply_remote(m, r, &rr);
		else
			ok = false;
	} else if (r && res->http_status == 404) {
		if (manager_fail_request(m, r, "remote_missing", "HITL.sh no longer knows this request.", 404, false,
		                         "HITL.sh no longer knows it") < 0)
			/* Already final: as before, the next poll is not moved. */
			return true;
	} else
		ok = false;
	if (res->http_status > 0 && res->http_status < 500)
		m->next_poll_at = any_poll_missing(m) ? now : next_poll_at(m, now);
	return ok;
}

static bool on_poll_list_reply(Manager *m, const ApiResult *res, usec_t now, bool *ret_more_pages) {
	bool ok = true;

	*ret_more_pages = on_poll_list_done(m, res, &ok);
	if (*ret_more_pages || any_poll_missing(m))
		m->next_poll_at = now;
	else if (res->http_status > 0 && res->http_status < 500)
		m->next_poll_at = next_poll_at(m, now);
	return ok;
}

static bool on_probe_reply(Manager *m, const ApiResult *res) {
	if (res->http_status != 200 || !res->data)
		return false;
	keyswitch_identified(m, json_object_get_string(json_object_object_get(res->data, "api_key_id")));
	return true;
}

/* What the reply to a call of kind does to r (NULL: gone, or none) and the
 * engine. false: the call made no progress (the caller backs off). */
static bool on_reply(Manager *m, WorkKind kind, Record *r, const ApiResult *res, ApiErrClass cls, usec_t now,
                     bool *ret_more_pages) {
	switch (kind) {
	case WORK_CREATE:
		return r && r->state == REQUEST_SUBMITTING ? on_create_done(m, r, res) : true;
	case WORK_TRIGGER:
		on_trigger_reply(m, r, res, cls);
		return true;
	case WORK_RECONCILE:
	case WORK_RECONCILE_GET:
		return on_reconcile_reply(m, kind, r, res);
	case WORK_POLL_LOOP:
		return on_poll_loop_reply(m, res, now);
	case WORK_CANCEL:
		return on_cancel_reply(m, r, res, now);
	case WORK_FEEDBACK:
		return on_feedback_reply(m, r, res);
	case WORK_POLL_GET:
		return on_poll_get_reply(m, r, res, now);
	case WORK_POLL_LIST:
		return on_poll_list_reply(m, res, now, ret_more_pages);
	case WORK_PROBE:
		return on_probe_reply(m, res);
	default:
		return true;
	}
}

void work_done(ApiClient *c, const ApiResult *res, void *userdata) {
	Manager *m = userdata;
	WorkKind kind = m->work_kind;
	usec_t now = now_realtime();
	Record *r = outbox_get(m->outbox, m->work_record);
	bool more_pages = false, failed = reply_failed(res), ok;
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
		manager_status_changed(m);
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
	cls = health_classify(m, CALL_POLL, res, NULL);
	background_breaker(m, kind, res, cls, what);
	ok = on_reply(m, kind, r, res, cls, now, &more_pages);

	/* Every kind backs off alike when it made no progress, whatever the
	 * status said (401 and 429 have their own pauses). */
	if (!failed && res->http_status != 401 && res->http_status != 429) {
		if (ok)
			health_success(m);
		else
			health_failure(m, what);
	}
	manager_status_changed(m);
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
