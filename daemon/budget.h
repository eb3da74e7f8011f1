/* budget.h — the ledger of HITL.sh calls per rate-limit window (100 an hour per key).
 * Promises that no call it allows can exceed what the server allows: it counts every
 * call before it is sent, follows the server's window via X-RateLimit-* and Date, and
 * pauses everything after a 429. Shares (hitld(8) "BUDGET SHARES"): creates and
 * interactive calls leave the poll reserve; interactive calls, the only kind a local
 * user can trigger at will, are charged to the uid that asked, within a per-uid and
 * a total share per window, so no user's reads can take the polls or (beyond the
 * total) the creates of others. Pure: time and random numbers come from the caller
 * (the work engine, work.c), so the clock can be injected in tests. Its file form,
 * STATE_DIR/budget.json, is budget_json.h's: all of the window's counts, the
 * shares included, so a restart within the window forgets nothing it spent. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "timeutil.h"

#define BUDGET_LIMIT_MAX 1000000U                  /* larger Limit headers are ignored */
#define BUDGET_WINDOW_MAX USEC_PER_DAY             /* no window we believe in is longer */
#define BUDGET_RESET_MARGIN USEC_PER_SEC           /* Date has 1-second precision */
#define BUDGET_429_DEFAULT_WAIT (60 * USEC_PER_SEC)
#define BUDGET_429_JITTER_MAX (60 * USEC_PER_SEC)
#define BUDGET_RESET_SPREAD_MAX (30 * USEC_PER_SEC)
/* Year 9999: keeps epoch * USEC_PER_SEC far from overflowing. */
#define BUDGET_EPOCH_MAX INT64_C(253402300799)
/* uids whose interactive calls one window tracks; further uids wait for the next window */
#define BUDGET_SHARE_UIDS_MAX 256

typedef enum CallKind {
	CALL_CREATE,       /* create-request: the useful work */
	CALL_POLL,         /* list/get to learn answers */
	CALL_CANCEL,
	CALL_FEEDBACK,
	CALL_RECONCILE,    /* find out whether an ambiguous create happened */
	CALL_INTERACTIVE,  /* a local client waits synchronously (loops, key.test) */
	CALL_PROBE,        /* GET /v1/test while the key is invalid */
	_CALL_KIND_MAX,
	_CALL_KIND_INVALID = -EINVAL,
} CallKind;

/* What one HTTP response said about the budget. */
typedef struct RateInfo {
	bool has_limit, has_remaining, has_reset, has_date, has_retry_after;
	unsigned limit, remaining;
	int64_t reset_epoch;      /* X-RateLimit-Reset, server clock, seconds */
	int64_t date_epoch;       /* Date header, server clock, seconds */
	unsigned retry_after_s;
} RateInfo;

typedef struct BudgetConfig {
	unsigned limit_per_hour;      /* assumed limit until the server says (100) */
	unsigned poll_reserve;        /* calls per window kept back from creates for polls/cancels/feedback/reconcile (10) */
	usec_t window;                /* window length assumed before the server speaks (1 h) */
	/* Interactive calls of non-admins per window at limit_per_hour, scaled with the limit
	 * the server names: */
	unsigned interactive_per_uid; /* one uid (5) */
	unsigned interactive_total;   /* all of them together (20) */
} BudgetConfig;

/* Interactive calls one uid made in the current window. */
typedef struct BudgetShare {
	uid_t uid;
	unsigned used;
} BudgetShare;

typedef struct Budget {
	BudgetConfig config;
	unsigned limit;          /* current limit: the server's once known */
	unsigned used;           /* calls counted in the current window; above limit after a reload
	                          * lowered it (every reader takes that as nothing left) */
	usec_t window_start;     /* local realtime */
	usec_t window_end;       /* local realtime instant the window resets (already includes the safety margin) */
	usec_t paused_until;     /* after a 429: no calls before this; 0 = not paused */
	bool from_server;        /* the current window is the server window server_reset_epoch names */
	usec_t last_call_at;
	unsigned over_limit_429s;  /* 429s seen (for status) */
	bool limit_from_server;    /* limit is the server's X-RateLimit-Limit, not config.limit_per_hour */

	/* Additions to the interface of the task: */
	int64_t server_reset_epoch;  /* X-RateLimit-Reset of the newest server window seen; 0 = none yet.
	                              * Responses naming an older (or the already ended) window are stale. */
	bool prev_window_exhausted;  /* the window before this one ran out of creates and no call has
	                              * been made since the reset: the first one is spread, no burst */
	/* What this window spent, by kind and by uid; budget_tick() clears it at the reset,
	 * budget.json keeps it across a restart within the window: */
	unsigned used_other;         /* calls from the reserve (polls, cancels, feedback, reconciles,
	                              * probes) charged in this window */
	bool last_was_create;        /* the last call charged was a create or an interactive call:
	                              * one from outside the reserve */
	usec_t last_create_at;       /* creates are paced from the last create, not the last call */
	unsigned interactive_used;   /* non-admins' interactive calls in this window */
	size_t n_shares;
	BudgetShare shares[BUDGET_SHARE_UIDS_MAX];  /* per uid, this window */
} Budget;

const char *budget_call_kind_to_string(CallKind kind);
CallKind budget_call_kind_from_string(const char *s);

void budget_init(Budget *b, const BudgetConfig *config, usec_t now);
/* A reload's configuration, for the next decisions. The limit becomes
 * config->limit_per_hour unless the server has named one (its
 * X-RateLimit-Limit keeps precedence); calls counted stay counted (a lower
 * limit than what this window used leaves nothing until it ends, and one
 * raised again leaves only what it has over them). A window
 * that is not the server's ends at the first boundary of config->window
 * after now when that comes before its end (a longer one applies from the
 * next window); the server's windows stay the server's. */
void budget_reconfigure(Budget *b, const BudgetConfig *config, usec_t now);
/* Rolls the ledger into a new window once now ≥ window_end (used = 0, new window bounds). Called by every function below. */
void budget_tick(Budget *b, usec_t now);
/* Counts one call BEFORE it is sent (a call whose reply is lost still counts). */
void budget_charge(Budget *b, CallKind kind, usec_t now);
/* Gives back one call counted by budget_charge() at charged_at that provably
 * never reached the server (no connection, TLS refused): the server did not
 * count it either. Only within the window it was charged in. */
void budget_refund(Budget *b, usec_t charged_at, usec_t now);
/* Applies a response's headers (any status incl. errors). */
void budget_observe(Budget *b, const RateInfo *ri, usec_t now);
/* A 429: nothing more until the reset plus jitter. jitter in [0,1) scales a random extra wait.
 * May follow budget_observe() of the same response. */
void budget_observe_429(Budget *b, const RateInfo *ri, usec_t now, double jitter);
/* Calls left in the current window for any kind; 0 while paused. */
unsigned budget_remaining(const Budget *b, usec_t now);
/* When the calls of the current window should have been made: window_end
 * less its margin and the Date header's second, so that the last one still
 * lands in the server's window. */
usec_t budget_pace_end(const Budget *b, usec_t now);
/* Calls of the window's reserve (poll_reserve) not yet used by polls, cancels,
 * feedback or reconciles: what creates must still leave. */
unsigned budget_reserve_left(const Budget *b, usec_t now);
/* Calls of this kind left now (creates leave the reserve); 0 while paused. */
unsigned budget_available(const Budget *b, CallKind kind, usec_t now);
/* Earliest local time ≥ now at which ONE call of this kind may be made.
 * wanted = how many calls of this kind are waiting (backlog);
 * jitter in [0,1) from the caller's RNG. Never returns a time at which the call
 * would exceed what the server allows. USEC_INFINITY for an invalid kind.
 * With the same jitter, asking again at the returned time returns that time. */
usec_t budget_next_slot(const Budget *b, CallKind kind, unsigned wanted, usec_t now, double jitter);
/* The interactive shares in effect: the configured ones scaled by limit /
 * limit_per_hour, the total at most the creates' part of the limit, the per-uid
 * share at most the total. */
void budget_interactive_shares(const Budget *b, unsigned *ret_per_uid, unsigned *ret_total);
/* Interactive calls uid made in the current window (admins' are not counted). */
unsigned budget_interactive_used(const Budget *b, uid_t uid, usec_t now);
/* Earliest local time ≥ now at which uid may make ONE interactive call: never
 * from the poll reserve, and for a non-admin within its share and the total
 * (an admin has no share: it is trusted, but still leaves the reserve).
 * USEC_INFINITY when a share of 0 means never. */
usec_t budget_interactive_slot(const Budget *b, uid_t uid, bool admin, usec_t now);
/* Gives uid back the share of an interactive call charged at charged_at that
 * provably never reached the server (see budget_refund(), which gives back
 * the call itself). Only within the window it was charged in. */
void budget_refund_interactive(Budget *b, uid_t uid, bool admin, usec_t charged_at, usec_t now);
/* budget_charge(CALL_INTERACTIVE), and the call charged to uid's interactive
 * share (nothing for an admin). */
void budget_charge_interactive(Budget *b, uid_t uid, bool admin, usec_t now);
