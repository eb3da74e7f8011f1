/* engine.h — the parts of the remote work engine (manager.c) that live in
 * their own files: health.c (failed calls, backoff, the circuit breaker,
 * loop pauses) and reconcile.c (finding out whether a create happened).
 * Which call goes next is decided, pure, in plan.h; records change state
 * only through record.h's transitions.
 * Internal to the daemon: methods.c and the rest use manager.h. */
#pragma once

#include "apierr.h"
#include "cleanup.h"
#include "apiparse.h"
#include "manager.h"

/* A reconcile reads the loop's listing newest first, a page at a time, and
 * reads whole the candidates it shows (the listing has no context): at most
 * this many calls, then the request counts as created with an unknown id. */
#define RECONCILE_PAGE_LIMIT 100
#define RECONCILE_MAX_CALLS 12

/* manager.c */
void manager_set_string(char **p, const char *s);
void manager_status_changed(Manager *m);
/* Applies what HITL.sh says about r's remote request (state, answer). */
void manager_apply_remote(Manager *m, Record *r, const RemoteRequest *rr);

/* accounting.c: the usage history's side of the engine. start opens it
 * (after the outbox) and watches every call; stop (before the ApiClient goes)
 * checkpoints it. */
int accounting_start(Manager *m);
void accounting_stop(Manager *m);
/* What the engine's call is for (its kind, the request's uid and loop; polls
 * of a listing are shared). */
void accounting_tag_work(Manager *m, ApiCall *call, WorkKind kind, const Record *r);
/* r just became final: a decision (answered) or a default (timed out). */
void accounting_finished(Manager *m, const Record *r);

/* health.c: a background call made no progress (backoff for every kind,
 * last error kept, logged once per outage), or it did. */
void health_failure(Manager *m, const char *what);
void health_success(Manager *m);
/* The class of a failed call (apierr_classify() with what the manager knows:
 * whether the loop has taken creates before). */
ApiErrClass health_classify(Manager *m, CallKind kind, const ApiResult *res, const char *loop_id);
/* One line for logs and status: the error text or the server's words. */
void health_describe(const ApiResult *res, char *buf, size_t size);
/* The circuit breaker: no creates until the probe (the next create after a
 * backoff) works; logged once per reason. */
void health_breaker_open(Manager *m, ApiErrClass c, const char *reason);
void health_breaker_close(Manager *m);
/* Loops whose creates pause (no active members). */
usec_t health_loop_paused_until(Manager *m, const char *loop_id, usec_t now);
void health_loop_pause(Manager *m, const char *loop_id, const char *reason);
void health_loop_unpause(Manager *m, const char *loop_id);

/* reconcile.c: the progress of one reconcile lives in m->rec_*. */
void reconcile_clear(Manager *m);
void reconcile_begin(Manager *m, const Record *r);
/* After each call: resolve r once the listing proved it absent or the
 * effort is spent (back to the queue, or created with an unknown id). */
void reconcile_settle(Manager *m, Record *r);
/* A page of GET /api/requests?loop_id=…, and a candidate read whole.
 * false: the reply settled nothing (the caller backs off). */
bool reconcile_on_list(Manager *m, Record *r, const ApiResult *res);
bool reconcile_on_get(Manager *m, Record *r, const ApiResult *res);
