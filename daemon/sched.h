/* sched.h — pure scheduling policy: which queued request is created next, and
 * how long a failed remote action waits before it is tried again.
 * Order (hitld(8) "FAIR QUEUE ORDER"): users with precedence (a predicate the
 * caller supplies; none by default) before everyone else; then round-robin
 * across uids, one request per uid and turn; then, within one uid's own
 * requests, priority critical > high > medium > low, then age. Priority is the
 * client's word, so it orders only that client's own requests: one uid's
 * thousand critical requests cost every other uid at most one turn per own
 * request. No I/O, no clock: time is passed in. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "record.h"
#include "timeutil.h"

typedef enum SchedTier {
	SCHED_TIER_PRECEDENCE,    /* uids the precedence predicate names */
	SCHED_TIER_OTHERS,
	_SCHED_TIER_MAX,
} SchedTier;

/* Whether uid's requests go before everyone else's. Called once per queued
 * record and pick: it must be cheap (the caller caches what it looks up). */
typedef bool (*SchedPrecedence)(uid_t uid, void *userdata);

typedef struct SchedState {
	/* Round-robin memory: the uid served last in each tier. */
	bool served[_SCHED_TIER_MAX];
	uid_t last_uid[_SCHED_TIER_MAX];
	SchedPrecedence precedence;   /* NULL: nobody has precedence */
	void *precedence_userdata;
} SchedState;

SchedTier sched_tier(const SchedState *state, uid_t uid);

/* Picks the next request to create among n queued records (any order).
 * Records whose next_attempt_at is still in the future are skipped; if none
 * is ready, returns NULL and sets *ret_next_ready (when non-NULL) to the
 * earliest next_attempt_at (USEC_INFINITY if there is nothing). */
Record *sched_pick_create(Record *const *queued, size_t n, const SchedState *state, usec_t now,
                          usec_t *ret_next_ready);

/* Remembers that r was served, for round-robin. */
void sched_note_served(SchedState *state, const Record *r);

/* 1-based position of r in the order sched_pick_create() would follow if it
 * were asked repeatedly, ignoring backoff times. */
size_t sched_position(Record *const *queued, size_t n, const SchedState *state, const Record *r);

/* sched_position() from counts: own_ahead = r's uid's queued records that come
 * before r in its own order (a higher priority, or the same and older);
 * (uids[i], counts[i]) every uid's queued records of all priorities (r's uid
 * may be among them: it is skipped). O(n_uids). */
size_t sched_position_from_counts(const SchedState *state, const Record *r, size_t own_ahead, const uid_t *uids,
                                  const size_t *counts, size_t n_uids);

/* Backoff after the n-th consecutive failure (n ≥ 1): 2 s doubling to cap,
 * scaled by a jitter factor in [0.8, 1.2) from jitter in [0, 1). */
usec_t sched_backoff(unsigned n, usec_t cap, double jitter);
