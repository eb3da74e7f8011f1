/* outcome.h — what a finished HITL.sh call does (part of the engine, layer 5
 * of docs/ARCHITECTURE.md). Every reply updates the budget (and its file),
 * reachability, the key's state and the API's health; a background call's
 * reply then goes through the request state machine (record_state.c) for
 * its record, and the engine persists, logs and notifies. Promises: a 2xx to
 * a create proves it happened (never created again, even with an unreadable
 * body); a create with an unknown outcome stays "submitting" and is
 * reconciled; a refusal about the key, the account or the endpoint, or the
 * same refusal for different requests in a row, pauses creates (the
 * breaker) and fails no request; a call that made no progress backs off. */
#pragma once

#include "api.h"
#include "manager.h"

/* The reply to the background call in flight (m->work_call), started by
 * work_start() (work.h). */
void work_done(ApiClient *c, const ApiResult *res, void *userdata);
