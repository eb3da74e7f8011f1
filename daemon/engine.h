/* engine.h — what the files of the engine share (layer 5 of
 * docs/ARCHITECTURE.md; manager.h is the engine's face to the layers above).
 * The engine is one module in several files, each with one job: manager.c
 * (the Manager's life: start, reload, signals, shutdown; records changed,
 * logged, failed), work.c (the work timer: settle, plan, start a call;
 * work.h), outcome.c (what a reply does; outcome.h), notify.c (waiters,
 * watches, STATUS=; notify.h), commit.c (the group commit; commit.h),
 * persist.c (budget.json, paused; persist.h), queuepos.c (queue positions;
 * queuepos.h), health.c (failed calls, backoff, the circuit breaker, loop
 * pauses), reconcile.c (finding out whether a create happened) and
 * keyswitch.c (the key's id and age, the standby key, switching to it) and
 * accounting.c (the usage history's hooks, foreign use of the key), the last
 * four declared here; inbox.c (HITL.sh's callbacks; inbox.h) and sweep.c
 * (how polls go while callbacks arrive; sweep.h). Which call goes next is decided, pure, in plan.h;
 * records change state only through record.h's transitions.
 * Internal to the engine: the methods and the rest use manager.h. */
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

static inline usec_t min_usec(usec_t a, usec_t b) {
	return a < b ? a : b;
}

/* manager.c */
void manager_set_string(char **p, const char *s);
/* notify.c: the STATUS= line is rewritten at the end of this loop iteration. */
void manager_status_changed(Manager *m);
/* manager.c: a log line about r, with its fields (HITL_REQUEST_ID, …); the
 * macros make the journal name the caller's line (log.h). */
#define request_log(...) request_log_full(LOG_LOCATION, __VA_ARGS__)
_printf_(8, 9)
void request_log_full(const char *code_file, const char *code_line, const char *func, Manager *m, Record *r, int prio,
                      const char *mid, const char *fmt, ...);
/* manager.c: fails r through the state machine (record_fail(): code and
 * message are the client's error, unsent whether HITL.sh never had it), then
 * logs "Request … failed: why" (at the caller's line), persists and
 * notifies: the one way the engine fails a request. -ESTALE: r was final
 * already, nothing changed. */
#define manager_fail_request(...) manager_fail_request_full(LOG_LOCATION, __VA_ARGS__)
int manager_fail_request_full(const char *code_file, const char *code_line, const char *func, Manager *m, Record *r,
                              const char *code, const char *message, long http_status, bool unsent, const char *why);
#define trigger_log(...) trigger_log_full(LOG_LOCATION, __VA_ARGS__)
_printf_(8, 9)
void trigger_log_full(const char *code_file, const char *code_line, const char *func, Manager *m, Record *r, int prio,
                      const char *mid, const char *fmt, ...);
/* outcome.c: applies what HITL.sh says about r's remote request (state,
 * answer): 0, or why a change could not be made durable (inbox.c answers
 * 503 then). */
int manager_apply_remote(Manager *m, Record *r, const RemoteRequest *rr);

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

/* keyswitch.c: the key's lifecycle and the standby key (manager.h KeySwitch).
 * Loads (or clears) the standby key after the current one was loaded. */
void keyswitch_load_standby(Manager *m, bool reload);
/* A new current key was loaded (start, reload): nothing is known of it. */
void keyswitch_key_loaded(Manager *m);
/* Was res a reply to a call made with a key that is no longer the current
 * one? Then it says nothing about the current key. */
bool keyswitch_reply_is_stale(Manager *m, const ApiResult *res);
/* Is res a refusal of the key (401, or 403 "inactive")? */
bool keyswitch_is_refusal(Manager *m, const ApiResult *res);
/* The current key was refused (res is not stale): warns once if it had
 * worked, and tests the standby if there is one. */
void keyswitch_refused(Manager *m, const ApiResult *res);
/* The current key had a reply that was no refusal. */
void keyswitch_worked(Manager *m);
/* GET /test told the current key's id (NULL: not said): its first use is
 * kept, its age noticed; a retired key makes way for the standby. */
void keyswitch_identified(Manager *m, const char *id);
/* Must the current key's id be known before its first create (a standby is
 * loaded and hitld has switched away from some key before)? */
bool keyswitch_identify_first(Manager *m);
void keyswitch_free(Manager *m);
