/* record_state.c — the request state machine: the transitions declared in
 * record.h, the only writers of a record's state and outcome fields. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "record.h"

static int set_str(char **p, const char *s) {
	char *c = NULL;

	if (s) {
		c = strdup(s);
		if (!c)
			return -ENOMEM;
	}
	free(*p);
	*p = c;
	return 0;
}

static void set_error(Record *r, const char *code, const char *message, long http_status) {
	json_object *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message ? message : ""));
	if (http_status > 0)
		json_object_object_add(e, "http_status", json_object_new_int((int) http_status));
	json_object_put(r->error);
	r->error = e;
}

static void set_result(Record *r, json_object *result, ResultSource source) {
	json_object_put(r->result);
	r->result = result;
	r->result_source = source;
}

int record_mark_submitting(Record *r, usec_t now) {
	if (r->state != REQUEST_QUEUED)
		return -ESTALE;
	r->state = REQUEST_SUBMITTING;
	r->attempts++;
	r->next_attempt_at = 0;
	r->updated_at = now;
	return 0;
}

int record_mark_suspect(Record *r) {
	if (r->state != REQUEST_QUEUED)
		return -ESTALE;
	r->reconcile_since = r->updated_at;
	r->state = REQUEST_SUBMITTING;
	r->next_attempt_at = 0;
	return 0;
}

int record_requeue(Record *r, bool undo_attempt) {
	if (r->state != REQUEST_SUBMITTING)
		return -ESTALE;
	r->state = REQUEST_QUEUED;
	if (undo_attempt && r->attempts > 0)
		r->attempts--;
	return 0;
}

int record_mark_created(Record *r, usec_t now, const char *remote_id, const char *remote_status) {
	if (r->state != REQUEST_SUBMITTING)
		return -ESTALE;
	if (set_str(&r->remote_id, remote_id) < 0 || set_str(&r->remote_status, remote_status) < 0)
		return -ENOMEM;
	r->state = REQUEST_PENDING;
	r->submitted_at = now;
	json_object_put(r->error);
	r->error = NULL;
	return 0;
}

int record_mark_created_unknown(Record *r, usec_t now) {
	if (r->state != REQUEST_SUBMITTING)
		return -ESTALE;
	r->state = REQUEST_PENDING;
	r->submitted_at = now;
	return 0;
}

int record_fail(Record *r, const char *code, const char *message, long http_status, bool unsent) {
	if (request_state_is_terminal(r->state))
		return -ESTALE;
	r->state = REQUEST_FAILED;
	if (unsent)
		r->result_source = RESULT_UNSENT;
	set_error(r, code, message, http_status);
	return 0;
}

int record_finish_default(Record *r, json_object *default_response) {
	if (r->state != REQUEST_QUEUED)
		return -ESTALE;
	r->state = REQUEST_TIMEOUT;
	/* Never shown to anyone: the default is not a reviewer's silence. */
	set_result(r, json_object_get(default_response), RESULT_UNSENT);
	r->next_attempt_at = 0;
	return 0;
}

int record_cancel_local(Record *r) {
	if (r->state != REQUEST_QUEUED)
		return -ESTALE;
	r->state = REQUEST_CANCELLED;
	r->next_attempt_at = 0;
	return 0;
}

int record_uncancel_local(Record *r) {
	if (r->state != REQUEST_CANCELLED || r->submitted_at != 0 || r->remote_id)
		return -ESTALE;
	r->state = REQUEST_QUEUED;
	return 0;
}

int record_mark_cancelled(Record *r) {
	if (r->state != REQUEST_PENDING)
		return -ESTALE;
	if (set_str(&r->remote_status, "cancelled") < 0)
		return -ENOMEM;
	r->state = REQUEST_CANCELLED;
	r->cancel_requested = false;
	return 0;
}

int record_trigger_sent(Record *r, json_object *result, const char *remote_status, usec_t now) {
	if (r->state != REQUEST_SUBMITTING || r->kind != RECORD_TRIGGER)
		return -ESTALE;
	if (set_str(&r->remote_status, remote_status) < 0)
		return -ENOMEM;
	set_result(r, json_object_get(result), r->result_source);
	json_object_put(r->error);
	r->error = NULL;
	r->state = REQUEST_COMPLETED;
	r->submitted_at = now;
	r->next_attempt_at = 0;
	return 0;
}

int record_apply_remote(Record *r, const char *remote_id, const char *status, const char *raw_status,
                        json_object *response, json_object *result, json_object *default_response, usec_t now) {
	bool changed = false;

	assert(remote_id);
	assert(status); /* r->remote_status may be NULL, status never is */

	/* A request not yet sent has no remote side to hear from. */
	if (r->state == REQUEST_QUEUED)
		return -ESTALE;
	if (!r->remote_id || !streq(r->remote_id, remote_id)) {
		if (set_str(&r->remote_id, remote_id) < 0)
			return -ENOMEM;
		changed = true;
	}
	if (!streq_ptr(r->remote_status, status)) {
		if (set_str(&r->remote_status, status) < 0)
			return -ENOMEM;
		changed = true;
	}
	if (r->state == REQUEST_SUBMITTING) {
		r->state = REQUEST_PENDING;
		if (r->submitted_at == 0)
			r->submitted_at = now;
		changed = true;
	}

	/* HITL.sh's final word is final here too. */
	if (streq(status, "completed") || streq(status, "timeout")) {
		json_object_put(r->response);
		r->response = json_object_get(response);
		if (streq(status, "completed")) {
			r->state = REQUEST_COMPLETED;
			set_result(r, json_object_get(result), RESULT_REVIEWER);
		} else if (result) {
			r->state = REQUEST_TIMEOUT;
			set_result(r, json_object_get(result), RESULT_REVIEWER);
		} else {
			r->state = REQUEST_TIMEOUT;
			set_result(r, json_object_get(default_response), RESULT_DEFAULT);
		}
		r->cancel_requested = false;
		changed = true;
	} else if (streq(status, "cancelled")) {
		r->state = REQUEST_CANCELLED;
		r->cancel_requested = false;
		changed = true;
	} else if (streq(status, "failed") && r->state != REQUEST_FAILED) {
		char why[96];

		/* Final at HITL.sh: nobody will answer it. */
		snprintf(why, sizeof why, "HITL.sh reports the request as \"%s\".", raw_status);
		r->state = REQUEST_FAILED;
		r->cancel_requested = false;
		set_error(r, "remote_failed", why, 0);
		changed = true;
	}
	return changed;
}
