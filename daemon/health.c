/* health.c — see engine.h: failed calls, backoff, the circuit breaker and
 * loop pauses of the work engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "msgid.h"

#define FAILURE_BACKOFF_CAP (300 * USEC_PER_SEC)
#define BREAKER_BACKOFF_CAP (15 * USEC_PER_MINUTE)
#define LOOP_PAUSE_MAX 64

usec_t health_loop_paused_until(Manager *m, const char *loop_id, usec_t now) {
	for (size_t i = 0; i < m->n_loop_pauses; i++)
		if (streq_ptr(m->loop_pauses[i].loop_id, loop_id))
			return m->loop_pauses[i].until;
	return 0;
}

static struct LoopPause *loop_pause_find(Manager *m, const char *loop_id) {
	for (size_t i = 0; i < m->n_loop_pauses; i++)
		if (streq_ptr(m->loop_pauses[i].loop_id, loop_id))
			return &m->loop_pauses[i];
	return NULL;
}

void health_loop_pause(Manager *m, const char *loop_id, const char *reason) {
	struct LoopPause *p = loop_pause_find(m, loop_id);
	usec_t now = now_realtime();

	if (!p) {
		if (m->n_loop_pauses >= LOOP_PAUSE_MAX || !loop_id || strlen(loop_id) >= sizeof p->loop_id)
			return;
		if (!m->loop_pauses) {
			m->loop_pauses = calloc(LOOP_PAUSE_MAX, sizeof *m->loop_pauses);
			if (!m->loop_pauses)
				return;
		}
		p = &m->loop_pauses[m->n_loop_pauses++];
		*p = (struct LoopPause) {};
		snprintf(p->loop_id, sizeof p->loop_id, "%s", loop_id);
	}
	if (p->failures == 0 || !streq_ptr(p->reason, reason))
		log_event(LOG_WARNING, MID_CREATES_PAUSED,
		          LOG_FIELDS({ "HITL_LOOP_ID", loop_id }, { "HITL_REASON", reason }),
		          "Creates in loop %s pause: HITL.sh said %s. Its requests stay queued; hitld tries again with backoff.",
		          loop_id, reason);
	p->failures++;
	manager_set_string(&p->reason, reason);
	p->until = now + sched_backoff(p->failures, BREAKER_BACKOFF_CAP, manager_random(m));
	manager_status_changed(m);
}

void health_loop_unpause(Manager *m, const char *loop_id) {
	struct LoopPause *p = loop_pause_find(m, loop_id);

	if (!p)
		return;
	log_event(LOG_NOTICE, MID_API_RECOVERED, LOG_FIELDS({ "HITL_LOOP_ID", loop_id }),
	          "Creates in loop %s work again.", loop_id);
	free(p->reason);
	*p = m->loop_pauses[--m->n_loop_pauses];
	manager_status_changed(m);
}

/* An error about the key, the account or the endpoint: no creates until a
 * probe (the next create, after a backoff) works. Logged once per reason. */
void health_breaker_open(Manager *m, ApiErrClass c, const char *reason) {
	usec_t now = now_realtime();

	if (m->breaker != c || !streq_ptr(m->breaker_reason, reason)) {
		char status[16];

		snprintf(status, sizeof status, "%s", apierr_class_to_string(c));
		log_event(LOG_ERR, MID_CREATES_PAUSED, LOG_FIELDS({ "HITL_REASON", reason }, { "HITL_ERROR_CLASS", status }),
		          "Creates pause: HITL.sh refused for a reason about the %s, not about one request (%s). "
		          "Every queued request stays queued; hitld probes with backoff.",
		          c == APIERR_KEY ? "API key" : c == APIERR_ACCOUNT ? "account" : "endpoint", reason);
	}
	if (m->breaker == APIERR_NONE)
		m->breaker_since = now;
	m->breaker = c;
	m->breaker_failures++;
	manager_set_string(&m->breaker_reason, reason);
	m->breaker_probe_at = now + sched_backoff(m->breaker_failures, BREAKER_BACKOFF_CAP, manager_random(m));
	manager_status_changed(m);
}

void health_breaker_close(Manager *m) {
	if (m->breaker == APIERR_NONE)
		return;
	log_event(LOG_NOTICE, MID_API_RECOVERED, LOG_NO_FIELDS, "Creates resume: HITL.sh works again (was: %s).",
	          strna(m->breaker_reason));
	m->breaker = APIERR_NONE;
	m->breaker_failures = 0;
	m->breaker_probe_at = 0;
	manager_set_string(&m->breaker_reason, NULL);
	manager_status_changed(m);
}

/* A background call made no progress: back off (every kind alike), keep the
 * error for status, and log once per outage, not once per attempt. */
void health_failure(Manager *m, const char *what) {
	usec_t now = now_realtime();

	m->consecutive_failures++;
	m->backoff_until = now + sched_backoff(m->consecutive_failures, FAILURE_BACKOFF_CAP, manager_random(m));
	manager_set_string(&m->last_error, what);
	m->last_error_at = now;
	if (!m->outage_logged) {
		m->outage_logged = true;
		log_event(LOG_WARNING, MID_API_ERROR, LOG_FIELDS({ "HITL_REASON", what }),
		          "HITL.sh call failed: %s. Retrying with backoff (logged once until calls work again).", what);
	}
	manager_status_changed(m);
}

void health_success(Manager *m) {
	if (m->outage_logged)
		log_event(LOG_NOTICE, MID_API_RECOVERED, LOG_NO_FIELDS, "HITL.sh calls work again (after %u failures; last: %s).",
		          m->consecutive_failures, strna(m->last_error));
	m->outage_logged = false;
	m->consecutive_failures = 0;
	m->backoff_until = 0;
	manager_set_string(&m->last_error, NULL);   /* last_error_at stays: when the last one was */
}

/* Has a create in this loop worked before? Then "Loop not found" means the
 * endpoint, not the loop. */
static bool loop_known(Manager *m, const char *loop_id) {
	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r))
		if (r->remote_id && streq_ptr(r->loop_id, loop_id))
			return true;
	return false;
}

ApiErrClass health_classify(Manager *m, CallKind kind, const ApiResult *res, const char *loop_id) {
	ApiErrInput in = {
		.kind = kind,
		.http_status = res->http_status,
		.body_invalid = res->body_invalid,
		.envelope_error = res->api_error && res->http_status >= 200 && res->http_status < 300,
		.has_rate_headers = res->rate.has_limit || res->rate.has_remaining || res->rate.has_reset ||
		                    res->rate.has_retry_after,
		.msg = res->msg,
		.data = res->data,
		.loop_known = loop_id && loop_known(m, loop_id),
	};

	return apierr_classify(&in);
}

void health_describe(const ApiResult *res, char *buf, size_t size) {
	if (res->http_status == 0)
		snprintf(buf, size, "%s", res->error_text ? res->error_text : "HITL.sh unreachable");
	else if (res->body_invalid)
		snprintf(buf, size, "HTTP %ld with a reply that is not a HITL.sh envelope", res->http_status);
	else
		apierr_describe(res->http_status, res->msg, res->data, buf, size);
}
