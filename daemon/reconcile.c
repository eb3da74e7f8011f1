/* reconcile.c — see engine.h: finding out whether a create happened, from
 * the loop's listing, within a bounded number of calls. */
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "msgid.h"

#define RECONCILE_SKEW_SLACK (300 * USEC_PER_SEC)
/* A request created with an unknown id is looked for again this often
 * (growing with its age), without holding up creates. */
#define FIND_INTERVAL (10 * USEC_PER_SEC)
#define FIND_INTERVAL_CAP USEC_PER_HOUR

void reconcile_clear(Manager *m) {
	m->rec_id[0] = '\0';
	m->rec_offset = m->rec_calls = 0;
	m->rec_listing_done = false;
	m->n_rec_candidates = m->rec_next_candidate = 0;
}

void reconcile_begin(Manager *m, const Record *r) {
	if (streq(m->rec_id, r->id))
		return;
	reconcile_clear(m);
	snprintf(m->rec_id, sizeof m->rec_id, "%s", r->id);
}

static bool context_names(json_object *ctx, const Record *r) {
	return ctx && streq_ptr(json_object_get_string(json_object_object_get(ctx, "hitld_id")), r->id);
}

static void reconcile_found(Manager *m, Record *r, const RemoteRequest *rr) {
	log_event(LOG_NOTICE, MID_RECONCILED, LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_REMOTE_ID", rr->id }),
	          "Reconciled request %s: HITL.sh has it as %s, not creating it again.", r->id, rr->id);
	manager_apply_remote(m, r, rr);
	reconcile_clear(m);
}

/* When is a request created with an unknown id looked for next? Less often
 * the longer it has been. */
static usec_t find_next(const Record *r, usec_t now) {
	usec_t d = usec_sub(now, r->submitted_at ? r->submitted_at : r->created_at) / 2;

	if (d < FIND_INTERVAL)
		d = FIND_INTERVAL;
	if (d > FIND_INTERVAL_CAP)
		d = FIND_INTERVAL_CAP;
	return now + d;
}

/* After each reconcile call: resolve r once the listing proved it absent or
 * the effort is spent; never leave the queue waiting for ever. */
void reconcile_settle(Manager *m, Record *r) {
	usec_t now = now_realtime();
	bool absent = m->rec_listing_done && m->rec_next_candidate >= m->n_rec_candidates;

	if (!absent && m->rec_calls < RECONCILE_MAX_CALLS)
		return;
	/* A create sent with a key since replaced is in no listing of the
	 * current key: its absence proves nothing. */
	if (absent && r->state == REQUEST_SUBMITTING && r->updated_at < m->key_changed_at)
		absent = false, m->rec_calls = RECONCILE_MAX_CALLS;
	if (r->state == REQUEST_SUBMITTING && absent) {
		if (record_requeue(r, false) < 0)
			return;
		log_event(LOG_NOTICE, MID_RECONCILED, LOG_FIELDS({ "HITL_REQUEST_ID", r->id }),
		          "Reconciled request %s: HITL.sh does not have it; it goes back to the queue.", r->id);
		manager_record_changed(m, r);
	} else if (r->state == REQUEST_SUBMITTING) {
		/* Not found within the bound: it may exist. It is never created
		 * again, it stops holding up other creates, and it is looked for
		 * now and then until its deadline. */
		if (record_mark_created_unknown(r, now) < 0)
			return;
		r->next_attempt_at = find_next(r, now);
		log_event(LOG_WARNING, MID_RECONCILED, LOG_FIELDS({ "HITL_REQUEST_ID", r->id }),
		          "Reconciling request %s found nothing within %u calls; it counts as created with an unknown id, "
		          "is not created again, and is looked for again later.", r->id, m->rec_calls);
		manager_record_changed(m, r);
	} else if (r->state == REQUEST_PENDING && !r->remote_id) {
		r->next_attempt_at = find_next(r, now);
		manager_record_changed(m, r);
	}
	reconcile_clear(m);
}

/* Where a page of the listing starts to be older than t (local time) on the
 * server's clock, less the slack for clocks that disagree. */
static usec_t server_time(const ApiResult *res, usec_t t) {
	int64_t skew = 0;

	if (res->rate.has_date)
		skew = res->rate.date_epoch * (int64_t) USEC_PER_SEC - (int64_t) res->finished_at;
	return usec_sub((usec_t) ((int64_t) t + skew), res->rate.has_date ? RECONCILE_SKEW_SLACK : USEC_PER_HOUR);
}

/* After damage in the log, many queued requests of one loop may need a
 * reconcile at once. The first page, when it reaches back past r's window,
 * also shows every create since: another such request whose window it
 * covers and whose text it does not show was not created, and goes back to
 * the queue now, without a reconcile of its own (one call for all, not one
 * each). */
static void settle_others(Manager *m, Record *r, json_object *requests, usec_t oldest, const ApiResult *res) {
	for (Record *x = outbox_first(m->outbox), *next; x; x = next) {
		const char *text;
		bool seen = false;

		next = outbox_next(m->outbox, x);
		if (x == r || x->state != REQUEST_SUBMITTING || !x->reconcile_since || !streq_ptr(x->loop_id, r->loop_id) ||
		    x->updated_at < m->key_changed_at || server_time(res, x->reconcile_since) < oldest ||
		    (m->work_call && streq(m->work_record, x->id)) || manager_need_params(m, x) < 0)
			continue;
		text = json_object_get_string(json_object_object_get(x->params, "request_text"));
		for (size_t i = 0; i < json_object_array_length(requests) && !seen; i++)
			seen = streq_ptr(json_object_get_string(
			                         json_object_object_get(json_object_array_get_idx(requests, i), "request_text")),
			                 text);
		if (seen)
			continue;   /* its own reconcile reads the look-alikes */
		if (record_requeue(x, false) < 0)
			continue;
		log_event(LOG_NOTICE, MID_RECONCILED, LOG_FIELDS({ "HITL_REQUEST_ID", x->id }),
		          "Reconciled request %s: HITL.sh does not have it; it goes back to the queue.", x->id);
		manager_record_changed(m, x);
	}
}

/* One page of GET /api/requests?loop_id=…, newest first. The summaries lack
 * the context, so those with r's text and young enough are read whole. */
bool reconcile_on_list(Manager *m, Record *r, const ApiResult *res) {
	json_object *requests = NULL;
	unsigned total = 0, next_offset = 0;
	bool has_more = false;
	const char *text;
	bool first_page = m->rec_offset == 0;
	usec_t oldest;

	if (res->http_status != 200 || res->api_error || !res->data ||
	    apiparse_list(res->data, &requests, &total, &has_more, &next_offset) < 0)
		return false;
	if (manager_need_params(m, r) < 0)
		return false;
	text = json_object_get_string(json_object_object_get(r->params, "request_text"));
	/* Nothing of r can be older than its acceptance (or, after damage in
	 * the log, than its newest surviving entry). */
	oldest = server_time(res, r->reconcile_since ? r->reconcile_since : r->created_at);

	for (size_t i = 0; i < json_object_array_length(requests); i++) {
		json_object *item = json_object_array_get_idx(requests, i);
		const char *created = json_object_get_string(json_object_object_get(item, "created_at"));
		RemoteRequest rr;
		usec_t t;

		if (apiparse_remote_request(item, &rr) < 0)
			continue;
		if (created && parse_iso8601(created, &t) >= 0 && t < oldest) {
			m->rec_listing_done = true;
			break;
		}
		if (context_names(rr.context, r)) {
			reconcile_found(m, r, &rr);
			return true;
		}
		if (!streq_ptr(json_object_get_string(json_object_object_get(item, "request_text")), text))
			continue;
		if (m->n_rec_candidates >= ELEMENTSOF(m->rec_candidates)) {
			/* Too many twins to read at once: read these, then this
			 * page again from here. */
			has_more = true;
			next_offset = m->rec_offset + (unsigned) i;
			break;
		}
		snprintf(m->rec_candidates[m->n_rec_candidates++], sizeof m->rec_candidates[0], "%s", rr.id);
	}
	if (!has_more)
		m->rec_listing_done = true;
	else if (!m->rec_listing_done)
		m->rec_offset = next_offset;
	if (first_page && m->rec_listing_done && r->reconcile_since)
		settle_others(m, r, requests, oldest, res);
	reconcile_settle(m, r);
	return true;
}

bool reconcile_on_get(Manager *m, Record *r, const ApiResult *res) {
	if (res->http_status == 200 && !res->api_error && res->data) {
		RemoteRequest rr;

		if (apiparse_get_request(res->data, &rr) < 0 && apiparse_remote_request(res->data, &rr) < 0)
			return false;
		m->rec_next_candidate++;
		if (context_names(rr.context, r)) {
			reconcile_found(m, r, &rr);
			return true;
		}
	} else if (res->http_status == 404 || res->http_status == 403)
		m->rec_next_candidate++;   /* gone, or not ours: not r */
	else
		return false;
	if (m->rec_next_candidate >= m->n_rec_candidates)
		m->n_rec_candidates = m->rec_next_candidate = 0;
	/* The page with the candidates is read on; settled when all are read. */
	reconcile_settle(m, r);
	return true;
}
