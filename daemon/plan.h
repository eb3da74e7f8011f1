/* plan.h — the work engine's decisions, pure: which HITL.sh call goes next,
 * and what a record's time limits do to it. No I/O, no clock, no Manager:
 * the caller (work.c's on_work_timer) passes a summary of the outbox,
 * the budget, the key, pause and breaker state, the time and a jitter value,
 * executes the step it gets back and arms its timer at the step's wake time.
 *
 * Work engine, one turn of the work timer (work.c):
 *   1. settle: plan_expiry() for every record; the manager executes what it
 *      says (fail locally before the deadline, fail on lifetime or on a
 *      create never found again, delete after retention) and keeps the
 *      earliest such time.
 *   2. summary: a PlanSummary of what is left (no state changes).
 *   3. plan: plan_next() names one call, or none, and when to wake.
 *   4. execute: the manager starts that call; if it cannot start, it marks
 *      the kind in PlanInput.skip and asks again (the next candidate in
 *      order gets its chance this turn, the failed one in WORK_RETRY_DELAY).
 *
 * Order of plan_next() (each only if the budget has a slot for it now):
 *   nothing while a call is in flight, the key is missing or the queue is
 *   paused; nothing before a backoff ends; only the key probe while the key
 *   is invalid; then a reconcile (the one under way, else an unsettled
 *   create, else a created request whose id is unknown); a cancel; a
 *   feedback; a poll (by id for a request the list did not show, by loop
 *   when several of one loop are missing, else the list, paced by
 *   plan_poll_interval()); last a create or trigger, chosen by sched.h,
 *   never while a create's outcome is unknown nor while the breaker holds
 *   creates (polls go on); a key whose id is not known yet is asked who it is
 *   (GET /test, once per key) when nothing else is to be done and it has
 *   worked, or in place of its first create when a key hitld switched away
 *   from may be back (identify_first).
 *
 * Callbacks (webhook.*, docs/HITL-API.md §2.11): plan_poll_mode() decides,
 * before plan_next(), whether polls may drop to a slow sweep because
 * callbacks arrive, or go at their normal pace because the receiver is off,
 * no callback came yet, or one seems lost; plan_poll_reserve() is the
 * budget's poll reserve that goes with it (a sweep needs little, and the
 * rest goes to creates). A callback may never come: the sweep, one list
 * call per sweep_interval, finds what it would have said. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "budget.h"
#include "record.h"
#include "sched.h"
#include "timeutil.h"

#define LOCAL_TIMEOUT_MARGIN (60 * USEC_PER_SEC)   /* HITL.sh's minimum timeout */

/* After its HITL.sh deadline, a request whose callback is hitld's expects
 * the timeout callback within this much; then polls take over. */
#define CALLBACK_GRACE (30 * USEC_PER_SEC)

typedef enum WorkKind {
	WORK_NONE,
	WORK_CREATE,
	WORK_POLL_LIST,
	WORK_POLL_GET,
	WORK_POLL_LOOP,
	WORK_RECONCILE,       /* one page of the loop's own listing, newest first */
	WORK_RECONCILE_GET,   /* a candidate the page showed, read whole for its context */
	WORK_CANCEL,
	WORK_FEEDBACK,
	WORK_PROBE,
	WORK_TRIGGER,   /* a workflow trigger (trigger.h) */
	_WORK_KIND_MAX,
} WorkKind;

/* What the time limits do to one record now. */
typedef enum PlanExpiry {
	PLAN_KEEP,
	PLAN_EXPIRE_DEADLINE,     /* queued with under LOCAL_TIMEOUT_MARGIN left: times out locally */
	PLAN_EXPIRE_LIFETIME,     /* queued past outbox.max_lifetime_s: fails, never sent */
	PLAN_EXPIRE_NEVER_FOUND,  /* created with an unknown id, and its deadline (or lifetime) passed */
	PLAN_EXPIRE_DELETE,       /* terminal past outbox.retention_days: removed */
} PlanExpiry;

typedef struct PlanLimits {
	usec_t lifetime;    /* outbox.max_lifetime_s */
	usec_t retention;   /* outbox.retention_days; 0 = kept for ever */
	bool paused;        /* a paused queue deletes nothing */
} PlanLimits;

/* What happens to r at now; lowers *next (when non-NULL) to the time its
 * next limit falls due if it is kept. */
PlanExpiry plan_expiry(const Record *r, const PlanLimits *limits, usec_t now, usec_t *next);

/* The outbox as the planner sees it, after plan_expiry() was applied. */
typedef struct PlanSummary {
	Record *const *queued;      /* ready for a create: not held by a loop pause */
	size_t n_queued;
	Record *reconcile;          /* a create "submitting" and not in flight: outcome unknown */
	Record *find;               /* created with an unknown id, due to be looked for */
	Record *cancel;             /* pending with cancel_requested, not claimed */
	Record *feedback;           /* completed with feedback queued */
	Record *pending_one;        /* some pending record with a remote id */
	Record *missing;            /* pending, but absent from the last full list */
	size_t n_missing_same_loop; /* how many missing share missing's loop */
	size_t n_pending;           /* pending with a remote id */
	usec_t next_local;          /* earliest local event (limits, loop pauses, find retries) */
	size_t n_pending_hooked;    /* of n_pending, those whose callback_url is hitld's receiver */
	usec_t hooked_due_at;       /* earliest deadline_at + CALLBACK_GRACE among those (deadline
	                             * set); USEC_INFINITY if none: the latest a callback is expected */
} PlanSummary;

/* How polls go: at their normal pace (plan_poll_interval()), or, while
 * callbacks arrive, a sweep every sweep_interval. */
typedef enum PollMode {
	POLL_MODE_NORMAL,
	POLL_MODE_SWEEP,
	_POLL_MODE_MAX,
} PollMode;

typedef enum PollReason {
	POLL_REASON_NO_RECEIVER,  /* normal: webhook is off */
	POLL_REASON_NO_CALLBACK,  /* normal: no callback came since hitld started */
	POLL_REASON_OVERDUE,      /* normal: a request passed its expected answer time with no callback */
	POLL_REASON_SILENT,       /* normal: a poll found a request final while no callback came for two sweep intervals */
	POLL_REASON_CALLBACKS,    /* sweep: callbacks arrive */
	_POLL_REASON_MAX,
} PollReason;

typedef struct PollState {
	PollMode mode;
	PollReason reason;
	usec_t since;               /* when mode and reason took effect */
} PollState;

/* What plan_poll_mode() weighs; the manager keeps it (and the receiver's
 * counters feed it). */
typedef struct PollModeInput {
	bool callbacks_enabled;     /* the receiver listens: creates carry a callback_url of hitld's */
	usec_t sweep_interval;      /* webhook.sweep_interval_s */
	usec_t last_callback_at;    /* the last callback the receiver applied; 0: none */
	usec_t poll_miss_at;        /* the last time a poll found final a request whose
	                             * callback_url is hitld's (a callback lost or late); 0: never */
} PollModeInput;

const char *poll_mode_to_string(PollMode m);
const char *poll_reason_to_string(PollReason r);

/* The initial state of a daemon started at now. */
PollState plan_poll_state_init(bool callbacks_enabled, usec_t now);

/* Moves *state on at now; true if mode or reason changed (the caller says so
 * once in the journal and status). Sweep from normal: the receiver is on, a
 * callback came since the state began, and no request is overdue
 * (s->hooked_due_at). Normal from sweep: the receiver went off; a request is
 * overdue; or a poll found a request final (in->poll_miss_at, after the
 * sweep began) while no callback had come for two sweep intervals before it. */
bool plan_poll_mode(const PlanSummary *s, const PollModeInput *in, usec_t now, PollState *state);

/* The poll reserve (budget.poll_reserve) for this window: configured, or
 * during a sweep only what the sweeps of one window need (at least 1), so
 * that the rest goes to creates. */
unsigned plan_poll_reserve(const PlanSummary *s, const PollState *state, unsigned configured, usec_t window,
                           usec_t sweep_interval);

typedef struct PlanInput {
	usec_t now;
	double jitter;              /* [0, 1), for budget_next_slot() */
	const Budget *budget;
	const SchedState *sched;
	usec_t min_poll_interval;   /* budget.min_poll_interval_s */

	bool busy;                  /* a background call is in flight */
	bool key_missing, key_invalid, paused;
	usec_t backoff_until;       /* health.c: no call before */
	usec_t next_probe_at;       /* while the key is invalid */
	bool breaker_open;          /* creates held until breaker_probe_at */
	usec_t breaker_probe_at;
	bool identify_key;          /* the key's id is not known yet (GET /test, once per key) */
	bool identify_first;        /* ... and is needed before any create (a key retired before may be back) */
	bool key_valid;             /* the key has worked */

	const Record *rec_current;  /* the reconcile under way (m->rec_id), if any */
	bool rec_has_candidate;     /* it has a candidate left to read whole */

	usec_t next_poll_at;        /* 0: no poll planned */
	bool poll_in_round;         /* a paged list round is under way */
	PollMode poll_mode;         /* from plan_poll_mode() */
	usec_t sweep_interval;      /* webhook.sweep_interval_s */
	usec_t last_poll_at;        /* when the last poll call started; 0: none */

	unsigned skip;              /* 1 << WorkKind: failed to start this turn */
} PlanInput;

typedef struct PlanStep {
	WorkKind kind;              /* WORK_NONE: no call now */
	CallKind call_kind;
	Record *target;             /* NULL for WORK_PROBE and WORK_POLL_LIST */
	usec_t wake;                /* when to ask again if no call runs */
	/* Poll bookkeeping the caller stores whether or not a call starts: */
	usec_t next_poll_at;
	bool begin_poll_round;      /* start a new paged list round (offset 0) */
} PlanStep;

/* When the next poll round should go, given how the budget stands and how
 * many creates wait (polls then live on the reserve). */
usec_t plan_poll_interval(const Budget *b, usec_t min_interval, usec_t now, size_t queued);

void plan_next(const PlanSummary *s, const PlanInput *in, PlanStep *ret);
