/* usage.h — where the calls went: the usage history's pure parts. What one
 * HITL.sh call is (kind, the local uid that caused it, its loop, its outcome
 * class), hourly buckets of those (and of decisions and defaults), their
 * queries, and the foreign-use estimator that tells the key's calls hitld did
 * not make from its own by the server's X-RateLimit-* headers.
 * Promises: bounded by design — at most USAGE_ROWS_PER_HOUR_MAX distinct rows
 * per hour (further distinct loops, then uids, fold into rows without them,
 * and the counts stay exact) and USAGE_HOURS_KEPT hours; the foreign count of a
 * window is a lower bound that is exact when hitld has no other call in
 * flight, so it never names hitld's own calls foreign. Pure: no I/O, no
 * clock (times come from the caller; tests/unit/test_usage.c). Kept on disk
 * by usage_store.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "timeutil.h"

#define USAGE_DAYS_KEPT 31U
#define USAGE_HOURS_KEPT (USAGE_DAYS_KEPT * 24U)
/* Distinct (kind, outcome, uid, loop) rows in one hour, before folding. */
#define USAGE_ROWS_PER_HOUR_MAX 256U
#define USAGE_LOOP_ID_MAX 25U   /* 24 hex digits, or a workflow key, and NUL; "" = no loop */
/* A workflow's calls are kept under its key: "wf_" and at most 16 of the
 * characters below as they are; a longer id's first 12 of them, '~' and 4 of
 * them from a hash of the whole id (usage_workflow_key()). */
#define USAGE_WORKFLOW_PREFIX "wf_"
#define USAGE_WORKFLOW_SYMBOLS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define USAGE_WORKFLOW_KEPT 16U      /* characters after the prefix kept as they are */
#define USAGE_WORKFLOW_HEAD 12U      /* of a longer id, before '~' */
#define USAGE_WORKFLOW_HASH 4U       /* after '~' */

/* uids that are no local user: */
#define USAGE_UID_SHARED  ((uint32_t) 0xfffffffeU) /* polls for everyone, key probes */
#define USAGE_UID_FOREIGN ((uint32_t) 0xfffffffdU) /* calls hitld did not make */
#define USAGE_UID_OTHER   ((uint32_t) 0xfffffffcU) /* folded: an hour had too many distinct rows */
#define USAGE_UID_ANY     ((uint32_t) 0xffffffffU) /* query filter: every uid */

typedef enum UsageKind {
	USAGE_CREATE,
	USAGE_POLL,
	USAGE_CANCEL,
	USAGE_FEEDBACK,
	USAGE_RECONCILE,
	USAGE_INTERACTIVE,
	USAGE_PROBE,
	USAGE_TRIGGER,
	USAGE_FOREIGN,      /* calls made with the key by someone else */
	_USAGE_CALL_KIND_MAX,
	/* Not calls: requests that ended with a reviewer's answer, or with their default. */
	USAGE_DECISION = _USAGE_CALL_KIND_MAX,
	USAGE_DEFAULT,
	_USAGE_KIND_MAX,
	_USAGE_KIND_INVALID = -1,
} UsageKind;

typedef enum UsageOutcome {
	USAGE_2XX,
	USAGE_4XX,          /* also the rare 1xx and 3xx: HITL.sh did not do what was asked */
	USAGE_429,
	USAGE_5XX,
	USAGE_NO_REPLY,     /* sent, no (complete) reply: the server may have counted it */
	USAGE_UNSENT,       /* never reached the server (no connection): not a call it counted */
	USAGE_NONE,         /* foreign calls, decisions, defaults */
	_USAGE_OUTCOME_MAX,
	_USAGE_OUTCOME_INVALID = -1,
} UsageOutcome;

/* What a call is for; set by whoever starts it (api_call_tag()). */
typedef struct UsageTag {
	UsageKind kind;
	uint32_t uid;                    /* a local uid, or USAGE_UID_SHARED */
	char loop_id[USAGE_LOOP_ID_MAX]; /* a loop id (24 hex digits), a trigger's workflow key
	                                  * (usage_workflow_key()), or "" */
} UsageTag;

/* The key a workflow's calls are kept under (see USAGE_WORKFLOW_PREFIX):
 * the id itself if it is "wf_" and 1..16 symbols, else "wf_", its first 12
 * symbols, '~' and 4 symbols of its FNV-1a hash, so that ids alike at the
 * start stay apart (two that share the 12 and the hash share a row). ""
 * for what is not "wf_" and symbols. */
void usage_workflow_key(const char *workflow_id, char ret[static USAGE_LOOP_ID_MAX]);
/* Is id (a row's loop_id) a workflow key? */
bool usage_id_is_workflow(const char *id);

const char *usage_kind_to_string(UsageKind k);
UsageKind usage_kind_from_string(const char *s);
const char *usage_outcome_to_string(UsageOutcome o);
/* 2xx, 4xx (1xx, 3xx), 429, 5xx from a status; 0: no reply if reached_server, else unsent. */
UsageOutcome usage_outcome_from_status(long http_status, bool reached_server);
/* "1000", "shared", "foreign", "other" into buf. */
const char *usage_uid_to_string(uint32_t uid, char buf[static 16]);
static inline uint32_t usage_hour(usec_t t) {
	return (uint32_t) (t / USEC_PER_HOUR);
}

/* ------------------------------------------------------------------ buckets */

typedef struct UsageRow {
	uint8_t kind, outcome;
	uint32_t uid;
	char loop_id[USAGE_LOOP_ID_MAX];
	uint32_t count;
} UsageRow;

typedef struct UsageHour {
	uint32_t hour;        /* hours since the epoch, UTC */
	size_t n_rows, n_alloc;
	UsageRow *rows;
} UsageHour;

/* Hours in ascending order. */
typedef struct UsageHistory {
	UsageHour *hours;
	size_t n_hours, n_alloc;
} UsageHistory;

void usage_history_done(UsageHistory *h);
/* Adds n to the row; folds (see above) rather than growing an hour past
 * USAGE_ROWS_PER_HOUR_MAX + the fold rows. -EINVAL for a bad kind/outcome,
 * -ENOMEM. */
int usage_history_add(UsageHistory *h, uint32_t hour, UsageKind kind, UsageOutcome outcome, uint32_t uid,
                      const char *loop_id, uint32_t n);
/* Drops every hour before first_kept. */
void usage_history_expire(UsageHistory *h, uint32_t first_kept);
const UsageHour *usage_history_get(const UsageHistory *h, uint32_t hour);

/* ------------------------------------------------------------------ queries */

typedef enum UsageGroup {
	USAGE_BY_KIND,
	USAGE_BY_UID,
	USAGE_BY_LOOP,
	USAGE_BY_HOUR,
	_USAGE_GROUP_MAX,
	_USAGE_GROUP_INVALID = -1,
} UsageGroup;

const char *usage_group_to_string(UsageGroup g);
UsageGroup usage_group_from_string(const char *s);

typedef struct UsageSum {
	/* the group's key: one of these, by UsageGroup */
	UsageKind kind;
	uint32_t uid;
	char loop_id[USAGE_LOOP_ID_MAX];
	uint32_t hour;

	uint64_t calls;                     /* every call the server may have counted (not unsent ones) */
	uint64_t by_outcome[_USAGE_OUTCOME_MAX];
	uint64_t decisions, defaults;
} UsageSum;

/* Sums of the hours [from_hour, to_hour] (uid USAGE_UID_ANY: everyone's),
 * one per group key that has anything, in the key's order (hours ascending,
 * every hour of the range present for USAGE_BY_HOUR). *ret is malloc'd. */
int usage_history_query(const UsageHistory *h, uint32_t from_hour, uint32_t to_hour, uint32_t uid,
                        UsageGroup by, UsageSum **ret, size_t *ret_n);

/* ------------------------------------------------------------------ foreign use */

/* One server window as the replies name it (X-RateLimit-Reset). */
typedef struct UsageWindow {
	int64_t reset_epoch;   /* 0: no window known yet */
	uint32_t limit;
	uint32_t server_used;  /* the most the server said it counted (limit - remaining) */
	uint32_t own;          /* hitld's calls the server counted in it, as far as the replies tell */
	uint32_t foreign;      /* calls of others found in it so far */
	bool foreign_429;      /* a 429 came while hitld had not spent the limit */
} UsageWindow;

/* Steps w with one reply to a call of hitld's (status 0: none, which counts
 * as hitld's own in the current window: the server may have seen it) and its
 * headers (NULL or incomplete: none); in_flight_others = hitld's other calls sent and not yet answered
 * (the server may have counted them already). Returns how many calls of
 * others this reply newly shows (w->foreign grows by as much). A reply naming
 * an older window than w's changes nothing; a newer one starts a new window.
 * In the first window w ever sees (reset_epoch 0: a new history) the calls
 * the server counted before are taken as hitld's own (they may be, from
 * before an upgrade), unless the reply is a 429. */
uint32_t usage_window_observe(UsageWindow *w, long http_status, const RateInfo *rate, uint32_t in_flight_others);

/* ------------------------------------------------------------------ totals */

/* Everything counted since the history began (not only the kept days):
 * counters that only grow, for metrics. calls[USAGE_FOREIGN][USAGE_NONE] are
 * the foreign calls; [USAGE_DECISION][USAGE_NONE] and [USAGE_DEFAULT][USAGE_NONE]
 * the decisions and defaults. */
typedef struct UsageTotals {
	uint64_t calls[_USAGE_KIND_MAX][_USAGE_OUTCOME_MAX];
} UsageTotals;
