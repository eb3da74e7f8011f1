/* record.h — the request record: hitld's unit of durable state.
 * A record is a review request (kind "request") or a workflow trigger (kind
 * "trigger", daemon/trigger.h); both share the states below.
 * Owns the in-memory shape of a request, its state machine (the transitions
 * at the end, record_state.c: the only writers of state and outcome), and the
 * two JSON forms: the on-disk form (record_to_json/record_from_json, strict,
 * versioned) and the client-facing form of PROTOCOL.md §3 (record_to_protocol).
 * Pure: no I/O, no clock. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "timeutil.h"

#define RECORD_FORMAT_VERSION 1
#define RECORD_ID_MAX 32         /* "r_" + 26 Crockford base32 chars + NUL fits */
#define REMOTE_ID_LEN 24         /* HITL.sh ObjectID: 24 hex chars */
#define CLIENT_REF_MAX 128

typedef enum RequestState {
	REQUEST_QUEUED,
	REQUEST_SUBMITTING,
	REQUEST_PENDING,
	REQUEST_COMPLETED,
	REQUEST_TIMEOUT,
	REQUEST_CANCELLED,
	REQUEST_FAILED,
	_REQUEST_STATE_MAX,
	_REQUEST_STATE_INVALID = -EINVAL,
} RequestState;

typedef enum Priority {
	PRIORITY_LOW,
	PRIORITY_MEDIUM,
	PRIORITY_HIGH,
	PRIORITY_CRITICAL,
	_PRIORITY_MAX,
	_PRIORITY_INVALID = -EINVAL,
} Priority;

typedef enum ResultSource {
	RESULT_NONE,
	RESULT_REVIEWER,
	RESULT_DEFAULT,
	RESULT_UNSENT,     /* ended without ever being shown to a reviewer */
	_RESULT_SOURCE_MAX,
	_RESULT_SOURCE_INVALID = -EINVAL,
} ResultSource;

typedef enum FeedbackState {
	FEEDBACK_NONE,
	FEEDBACK_QUEUED,
	FEEDBACK_SENT,
	FEEDBACK_FAILED,
	_FEEDBACK_STATE_MAX,
	_FEEDBACK_STATE_INVALID = -EINVAL,
} FeedbackState;

typedef enum RecordKind {
	RECORD_REQUEST,                   /* POST /api/loops/{loop_id}/requests, polled until answered */
	RECORD_TRIGGER,                   /* POST /workflows/{workflow_id}/trigger, final once sent */
	_RECORD_KIND_MAX,
	_RECORD_KIND_INVALID = -EINVAL,
} RecordKind;

typedef struct Record {
	/* The fields are ordered so the struct packs without holes: an outbox
	 * holds up to 100,000 of them (bench/REPORT.md, scale). */
	char id[RECORD_ID_MAX];           /* local id, "r_…" */
	uint64_t seq;                     /* monotonically increasing acceptance order */
	char *client_ref;                 /* NULL or 1..128 chars */
	const char *loop_id;              /* params.loop_id, a trigger's params.workflow_id: interned
	                                   * (intern.h), one copy per loop shared by its records */

	/* The HITL.sh create-request body as validated and normalised at submit
	 * (validate_submit): loop_id, request_text, response_type, … . The
	 * timeout sent remotely is recomputed from deadline_at at send time. */
	json_object *params;

	usec_t created_at;                /* accepted by the daemon */
	usec_t updated_at;                /* last state change */
	usec_t submitted_at;              /* created remotely; 0 = not yet */
	usec_t deadline_at;               /* created_at + timeout_seconds; 0 = none */
	usec_t next_attempt_at;           /* next planned remote action; 0 = none */

	char *remote_id;                  /* HITL.sh request id, NULL until known */
	char *remote_status;              /* last status seen remotely, NULL until known */

	json_object *response;            /* {data, by, at, time_seconds} or NULL */
	json_object *result;              /* normalised answer or default, or NULL */
	json_object *feedback;            /* the feedback object to send, or NULL */
	json_object *error;               /* {code, message, http_status} or NULL */
	/* The secret part of the callback URL hitld gave HITL.sh for this
	 * request (callback.h: 64 lowercase hex digits), or NULL when it gave
	 * none (no webhook, or the client's own callback_url). Never shown to
	 * clients. Stored only when set, so records without one read as before. */
	char *callback_token;

	RecordKind kind;
	uid_t owner_uid;
	RequestState state;
	Priority priority;                /* copy of params.priority, for scheduling */
	ResultSource result_source;
	FeedbackState feedback_state;
	unsigned attempts;                /* remote create attempts so far */
	bool cancel_requested;

	/* In memory only, never stored: polling bookkeeping. */
	bool poll_missing;                /* a full list round did not show it */
	bool poll_by_id;                  /* nor did its loop's listing: GET it by id */
	bool log_damaged_after;           /* outbox_open(): a damaged log region after its newest entry
	                                   * may have held a newer one (see outbox.h) */
	uint64_t poll_seen_round;         /* last list round that showed it */
	usec_t reconcile_since;           /* a reconcile looks at remote requests created after this
	                                   * (less a skew margin); 0 = since created_at */
	size_t outbox_slot;               /* the outbox's hint where it keeps r (iteration) */
	char *protocol_text;              /* cached record_to_protocol() text; NULL after any change */
	size_t position_all, position_own; /* queue position snapshot (see queuepos.h) */
} Record;

Record *record_new(void);
Record *record_free(Record *r);
static inline void record_freep(Record **r) {
	if (*r)
		record_free(*r);
}

const char *request_state_to_string(RequestState s);
RequestState request_state_from_string(const char *s);
static inline bool request_state_is_terminal(RequestState s) {
	return s == REQUEST_COMPLETED || s == REQUEST_TIMEOUT || s == REQUEST_CANCELLED ||
	       s == REQUEST_FAILED;
}

const char *record_kind_to_string(RecordKind k);
RecordKind record_kind_from_string(const char *s);
const char *priority_to_string(Priority p);
Priority priority_from_string(const char *s);
const char *result_source_to_string(ResultSource s);
ResultSource result_source_from_string(const char *s);
const char *feedback_state_to_string(FeedbackState s);
FeedbackState feedback_state_from_string(const char *s);

/* Generates a new local id "r_" + 26-char ULID (48-bit ms time + 80 random
 * bits, Crockford base32) so ids sort by creation time. */
int record_make_id(usec_t now, char ret[static RECORD_ID_MAX]);

/* A copy of r that shares nothing with it (strings and JSON copied; the
 * cached protocol_text is not): the outbox's load moves each record out of
 * its parse thread's heap with it (outbox_internal.h). -ENOMEM, or 0. */
int record_copy(const Record *r, Record **ret);

/* Is s a syntactically valid local id? */
bool record_id_is_valid(const char *s);

/* On-disk form: a JSON object with "version": RECORD_FORMAT_VERSION and every
 * field above ("callback_token" only when set, as "kind" only for a trigger). record_from_json() is strict: wrong types, unknown states, bad
 * ids or sizes give -EBADMSG and no record. "kind" is written only for a
 * trigger, so a request's form is what hitld always wrote, and a record
 * without it (every older log) is a request. A trigger's params are
 * {workflow_id, data?, priority?} (trigger_validate()), not a create body. */
int record_to_json(const Record *r, json_object **ret);
int record_from_json(json_object *j, Record **ret);
/* The same without "params" (which must be absent): the outbox log stores the
 * request as submitted apart from the record's changing fields, and reads it
 * back only when needed; record_check_params() then applies the checks
 * record_from_json() makes of it. */
int record_to_json_meta(const Record *r, json_object **ret);
int record_from_json_meta(json_object *j, Record **ret);
int record_check_params(const Record *r, json_object *params);
/* Would record_from_json_meta() (and record_check_params()) accept what
 * record_to_json_meta() writes of r? The same checks on the fields
 * themselves, without writing and parsing text: -EINVAL if not. */
int record_check(const Record *r);

/* Client form of PROTOCOL.md §3 (request record): every record says its
 * "kind"; a trigger also has "workflow_id", "data" and "execution_id" (from
 * result), and null for the request-only fields. */
int record_to_protocol(const Record *r, json_object **ret);

/* The state machine (record_state.c): these transitions are the only
 * writers of a record's state and outcome fields (state, result,
 * result_source, error, remote_id and remote_status as a create or a reply
 * sets them, submitted_at, response). The caller persists, logs and
 * notifies. Each returns 0 (record_apply_remote(): 1 if anything changed),
 * or -ESTALE, r untouched, when r's state does not allow the transition:
 * nothing goes back to queued once sent or final, nothing leaves a final
 * state except by HITL.sh's own final word.
 *
 *   queued ──mark_submitting/mark_suspect──▶ submitting ──requeue──▶ queued
 *   submitting ──mark_created(_unknown)──▶ pending        (create happened)
 *   submitting ──trigger_sent──▶ completed                (triggers)
 *   queued ──finish_default──▶ timeout (unsent)   queued ──cancel_local──▶ cancelled
 *   pending ──mark_cancelled──▶ cancelled          not final ──fail──▶ failed
 *   not queued ──apply_remote──▶ what HITL.sh says (pending or a final state) */
int record_mark_submitting(Record *r, usec_t now);   /* one more attempt */
/* A queued record after damage in the log may have been sent: reconciled
 * against what HITL.sh created since updated_at, never created blindly. */
int record_mark_suspect(Record *r);
/* The create did not happen; undo_attempt when not for a reason about r. */
int record_requeue(Record *r, bool undo_attempt);
/* The create happened (remote_id NULL: its reply could not be read); the
 * error of an earlier attempt is cleared. */
int record_mark_created(Record *r, usec_t now, const char *remote_id, const char *remote_status);
/* A reconcile found nothing within its bound: created, id unknown. */
int record_mark_created_unknown(Record *r, usec_t now);
/* Fails r with error {code, message, http_status}; unsent: result_source
 * "unsent" (HITL.sh never had it). */
int record_fail(Record *r, const char *code, const char *message, long http_status, bool unsent);
/* Times out a request never sent with its default response (unsent). */
int record_finish_default(Record *r, json_object *default_response);
/* Cancels a request never sent; record_uncancel_local() undoes that when
 * the change could not be stored. */
int record_cancel_local(Record *r);
int record_uncancel_local(Record *r);
/* HITL.sh confirmed a cancel. */
int record_mark_cancelled(Record *r);
/* A trigger was accepted: final, with result (a reference is taken). */
int record_trigger_sent(Record *r, json_object *result, const char *remote_status, usec_t now);
/* What HITL.sh says of r: its id and status (status a meaning of
 * apiparse.h, raw_status its word), for a final answer the response object
 * and result (normalised, or NULL) and the default response to use when a
 * timeout has no result. References are taken. */
int record_apply_remote(Record *r, const char *remote_id, const char *status, const char *raw_status,
                        json_object *response, json_object *result, json_object *default_response, usec_t now);
