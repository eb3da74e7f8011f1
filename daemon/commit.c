/* commit.c — see commit.h: the group commit of new records. */
#include <stdio.h>
#include <stdlib.h>

#include "commit.h"
#include "engine.h"
#include "log.h"
#include "logrl.h"
#include "msgid.h"
#include "notify.h"

#define COMMIT_BATCH_MAX 1024
#define COMMIT_MAX_DELAY (2 * USEC_PER_MSEC)   /* bounds the wait for readable connections */

struct PendingSubmit {
	Record *record;
	manager_submitted_t done;
	void *userdata;
};

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

/* While the outbox cannot store (disk full, below outbox.min_free_mb…), every submit
 * fails: a client could log one error per call (hitld(8) LIMITS, Journal). */
static LogRl store_failed_log = LOGRL_CLIENT;

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
			char more[LOGRL_SUFFIX_MAX];
			unsigned held;

			if (logrl_below(&store_failed_log, r->owner_uid, now_monotonic(), &held))
				log_error_errno(results[i], "Failed to store a new request from uid %u: %m%s",
				                (unsigned) r->owner_uid, logrl_suffix(held, more));
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

		manager_status_changed(m);
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

int commit_start(Manager *m) {
	int k;

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
	return sd_event_source_set_enabled(m->commit_timer, SD_EVENT_OFF);
}

void commit_free(Manager *m) {
	manager_commit(m);
	sd_event_source_disable_unref(m->commit_defer);
	sd_event_source_disable_unref(m->commit_timer);
	free(m->pending);
	m->commit_defer = m->commit_timer = NULL;
	m->pending = NULL;
}
