/* engine.h — the parts of the remote work engine (manager.c) that live in
 * their own files: health.c (failed calls, backoff, the circuit breaker,
 * loop pauses), reconcile.c (finding out whether a create happened) and
 * keyswitch.c (the key's age, the standby key, switching to it).
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
