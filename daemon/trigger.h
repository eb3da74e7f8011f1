/* trigger.h — workflow triggers (POST /v1/workflows/{workflow_id}/trigger,
 * docs/PROTOCOL.md workflow.trigger): what a trigger record holds, the body
 * and path sent, and what each outcome of the call does to the record.
 * A trigger is a record of kind RECORD_TRIGGER in the outbox, queued,
 * budgeted and sent like a create (work.c), with one difference: HITL.sh
 * has no way to read an execution back, so a trigger whose outcome is
 * unknown cannot be reconciled. It is never sent again; it fails with
 * error.code "outcome_unknown" and the client is told that the workflow may
 * or may not have run. Exactly once, or reported.
 * Pure: no I/O, no clock, no logging. */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

#include "api.h"
#include "record.h"
#include "timeutil.h"

#define TRIGGER_WORKFLOW_ID_PREFIX "wf_"
#define TRIGGER_WORKFLOW_ID_MAX 100        /* bytes, prefix included */
#define TRIGGER_EXECUTION_ID_MAX 128       /* longer ids in a reply are not kept */
#define TRIGGER_DATA_SIZE_MAX (50 * 1024)  /* serialised bytes, as a request's context */
#define TRIGGER_DATA_DEPTH_MAX 32          /* containers on a path, the top one included */
#define TRIGGER_PATH_MAX (sizeof("/workflows//trigger") + TRIGGER_WORKFLOW_ID_MAX)

/* error.code of a trigger that may or may not have happened. */
#define TRIGGER_OUTCOME_UNKNOWN "outcome_unknown"

typedef enum TriggerOutcome {
	TRIGGER_SENT,       /* 2xx: the workflow runs (execution id if the reply had one) */
	TRIGGER_RETRY,      /* provably not acted on (never sent, 429, 503): queued again */
	TRIGGER_KEY,        /* 401: the key, not the trigger; queued again, the attempt not counted */
	TRIGGER_REJECTED,   /* 3xx/4xx: failed with the server's words */
	TRIGGER_UNKNOWN,    /* no reply after sending, or another 5xx: failed, never resent */
	_TRIGGER_OUTCOME_MAX,
} TriggerOutcome;

/* "wf_" followed by 1..TRIGGER_WORKFLOW_ID_MAX-3 of [A-Za-z0-9_-]. */
bool trigger_workflow_id_is_valid(const char *s);

/* Validates workflow.trigger's params (client_ref, wait and timeout_ms
 * already left out by the caller): workflow_id required, data an optional
 * object (null = absent) within TRIGGER_DATA_SIZE_MAX and
 * TRIGGER_DATA_DEPTH_MAX, priority one of the four words; nothing else.
 * Returns a NEW object {workflow_id, data?, priority?} (the record's params;
 * data deep-copied), or -EINVAL with *ret_field and *ret_reason (static
 * strings) saying what is wrong. */
int trigger_validate(json_object *params, json_object **ret_params, const char **ret_field,
                     const char **ret_reason);

/* The path under the API base ("/workflows/<id>/trigger": no /api segment)
 * and the body (params.data, or {}). -EINVAL for params that are not a
 * trigger's. */
int trigger_path(json_object *params, char buf[static TRIGGER_PATH_MAX]);
int trigger_body(json_object *params, json_object **ret);

/* What a reply (or its absence) means; see TriggerOutcome. */
TriggerOutcome trigger_outcome(const ApiResult *res);

/* The execution id of a 2xx reply's data (data.execution_id), if it is a
 * string of 1..TRIGGER_EXECUTION_ID_MAX printable characters without
 * spaces; else NULL. Borrowed from data. */
const char *trigger_execution_id(json_object *data);

/* Applies the outcome of the call to r (state submitting): state, result
 * {"execution_id": id|null}, remote_status, error, next_attempt_at
 * (retry_at for TRIGGER_RETRY), attempts (given back for TRIGGER_KEY),
 * submitted_at. Returns the outcome. */
TriggerOutcome trigger_apply(Record *r, const ApiResult *res, usec_t now, usec_t retry_at);

/* r was found submitting with no call in flight: the daemon stopped after
 * marking it and before learning the outcome. It fails as outcome unknown. */
void trigger_apply_lost(Record *r);

const char *trigger_outcome_to_string(TriggerOutcome o);
