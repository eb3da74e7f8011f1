/* work.c — see work.h: one turn of the work timer (settle, sum up, plan,
 * execute) and the start of the call it chose. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiparse.h"
#include "cleanup.h"
#include "engine.h"
#include "inbox.h"
#include "log.h"
#include "msgid.h"
#include "outcome.h"
#include "sweep.h"
#include "trigger.h"
#include "validate.h"
#include "work.h"
#include "telemetry.h"

#define POLL_PAGE_LIMIT 100
#define WORK_RETRY_DELAY (5 * USEC_PER_SEC)

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

static void finish_timeout_locally(Manager *m, Record *r, const char *why) {
	json_object *def;

	if (manager_need_params(m, r) < 0)
		return;
	def = json_object_object_get(r->params, "default_response");
	if (record_finish_default(r, def) < 0)
		return;
	accounting_finished(m, r);
	request_log(m, r, LOG_INFO, MID_REQUEST_TIMEOUT,
	            "Request %s timed out %s; it was never sent to HITL.sh (result_source unsent).", r->id, why);
	manager_record_changed(m, r);
}

/* Found submitting with no call in flight: hitld stopped mid-send. */
static void trigger_lost(Manager *m, Record *r) {
	trigger_apply_lost(r);
	trigger_log(m, r, LOG_WARNING, MID_TRIGGER_OUTCOME_UNKNOWN,
	            "Trigger %s of workflow %s may or may not have happened (hitld stopped while sending it); it is not sent again.",
	            r->id, r->loop_id);
	manager_record_changed(m, r);
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
			(void) manager_fail_request(m, r, "lifetime_exceeded",
			                            "The request could not be created within outbox.max_lifetime_s.", 0, true,
			                            "lifetime exceeded");
			break;
		case PLAN_EXPIRE_NEVER_FOUND:
			(void) manager_fail_request(
			        m, r, "remote_unknown",
			        "HITL.sh took the create, but hitld never found the request there: its answer is unknown.", 0, false,
			        "created at HITL.sh, never found there");
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
	WorkScan w = { .s.next_local = USEC_INFINITY, .s.hooked_due_at = USEC_INFINITY };
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
			if (r->callback_token) {
				/* hitld's callback URL: its deadline is when a callback is due at the latest. */
				s->n_pending_hooked++;
				if (r->deadline_at > 0)
					s->hooked_due_at = min_usec(s->hooked_due_at, usec_add(r->deadline_at, CALLBACK_GRACE));
			}
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
		.poll_mode = m->poll_state.mode,
		.sweep_interval = (usec_t) m->config->webhook_sweep_interval_s * USEC_PER_SEC,
		.last_poll_at = m->last_poll_at,
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
	sweep_update(m, &w.s, now);
	if (!m->work_call && m->key_state != KEY_MISSING && !m->paused)
		note_budget_spent(m, now, w.s.n_queued + w.s.n_pending);
	telemetry_observe(m->telemetry, now);

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
		if (work_start(m, step.kind, step.call_kind) >= 0) {
			if (step.call_kind == CALL_POLL)
				m->last_poll_at = now;
			break;
		}
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
	/* webhook: the request's own callback URL (inbox.h), unless the client set one. */
	if (!json_object_object_get(body, "callback_url")) {
		_cleanup_(freep) char *url = NULL;

		k = inbox_callback_url(m, r, &url);
		if (k < 0)
			return k;
		if (url)
			json_object_object_add(body, "callback_url", json_object_new_string(url));
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

/* k: what starting the call returned. A create or trigger that could not
 * be sent goes back to the queue (it was marked "submitting"). */
static int check_started(Manager *m, WorkKind kind, Record *r, int k) {
	if (k >= 0)
		return k;
	m->work_call = NULL;
	if ((kind == WORK_CREATE || kind == WORK_TRIGGER) && r && record_requeue(r, false) >= 0)
		manager_record_changed(m, r);
	return log_error_errno(k, "Failed to start a HITL.sh call: %m");
}

/* A create: the body first, then durably "submitting", then sent. After a
 * crash from the mark on, the daemon reconciles instead of creating again. */
static int start_create(Manager *m, Record *r, usec_t now) {
	_cleanup_(json_object_putp) json_object *body = NULL;
	int k;

	k = build_create_body(m, r, now, &body);
	if (k < 0)
		return k;
	k = mark_submitting(m, r, now);
	if (k < 0)
		return k;
	return check_started(m, WORK_CREATE, r, api_create_request(m->api, r->loop_id, body, work_done, m, &m->work_call));
}

/* A trigger, as a create: after a crash from the mark on, it fails as
 * outcome unknown (trigger_lost) instead of being sent again. */
static int start_trigger(Manager *m, Record *r, usec_t now) {
	_cleanup_(json_object_putp) json_object *body = NULL;
	char path[TRIGGER_PATH_MAX];
	int k;

	k = manager_need_params(m, r);
	if (k >= 0)
		k = trigger_path(r->params, path);
	if (k >= 0)
		k = trigger_body(r->params, &body);
	if (k < 0)
		return k;
	k = mark_submitting(m, r, now);
	if (k < 0)
		return k;
	return check_started(m, WORK_TRIGGER, r, api_call(m->api, "POST", path, body, work_done, m, &m->work_call));
}

/* The key's own requests in the loop, a page at a time: a loop's whole
 * listing (GET /loops/{id}/requests) outgrows any bound. */
static int start_reconcile(Manager *m, Record *r) {
	char path[256];

	if (!apiparse_id_is_valid(r->loop_id))
		return -EINVAL;
	reconcile_begin(m, r);
	m->rec_calls++;
	snprintf(path, sizeof path, "/api/requests?loop_id=%s&limit=%u&offset=%u&sort=created_at_desc", r->loop_id,
	         (unsigned) RECONCILE_PAGE_LIMIT, m->rec_offset);
	manager_set_string(&m->work_loop, r->loop_id);
	return check_started(m, WORK_RECONCILE, r, api_call(m->api, "GET", path, NULL, work_done, m, &m->work_call));
}

/* Sends the call of kind about r (NULL for a probe or a poll list). What
 * fails before the call is sent leaves everything as it was. */
static int start_call(Manager *m, WorkKind kind, Record *r, usec_t now) {
	int k;

	/* Every kind but these two is about one record (plan.h, Plan.target). */
	assert(r || kind == WORK_PROBE || kind == WORK_POLL_LIST);
	switch (kind) {
	case WORK_CREATE:
		return start_create(m, r, now);
	case WORK_TRIGGER:
		return start_trigger(m, r, now);
	case WORK_POLL_LOOP:
		/* Requests of every key in the loop (those of a key since rotated
		 * are in no list of the current key). Unpaged: a loop too big to
		 * read fails, and its missing requests are read by id instead. */
		manager_set_string(&m->work_loop, r->loop_id);
		k = api_loop_call(m->api, "GET", r->loop_id, "/requests", NULL, work_done, m, &m->work_call);
		break;
	case WORK_RECONCILE:
		return start_reconcile(m, r);
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
	return check_started(m, kind, r, k);
}

int work_start(Manager *m, WorkKind kind, CallKind call_kind) {
	usec_t now = now_realtime();
	Record *r = NULL;
	int k;

	if (kind != WORK_PROBE && kind != WORK_POLL_LIST) {
		r = outbox_get(m->outbox, m->work_record);
		if (!r)
			return -ENOENT;
	}

	k = start_call(m, kind, r, now);
	if (k < 0)
		return k;

	m->work_kind = kind;
	m->last_attempt_at = now;
	accounting_tag_work(m, m->work_call, kind, r);
	manager_charge(m, call_kind);
	return 0;
}

int work_setup(Manager *m) {
	return sd_event_add_time(m->event, &m->work_timer, CLOCK_REALTIME, 0, 10 * USEC_PER_MSEC, on_work_timer, m);
}
