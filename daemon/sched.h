/* sched.h — pure scheduling policy: which queued request is created next, and
 * how long a failed remote action waits before it is tried again.
 * Order (DESIGN.md §2.4): priority critical > high > medium > low, then fair
 * round-robin across uids, then age. No I/O, no clock: time is passed in. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "record.h"
#include "timeutil.h"

/* Round-robin memory: the uid served last at each priority. */
typedef struct SchedState {
	bool served[_PRIORITY_MAX];
	uid_t last_uid[_PRIORITY_MAX];
} SchedState;

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

/* sched_position() for a record that no queued record is younger than, from
 * counts: ahead = queued records of a higher priority, own_older = its uid's
 * other queued records at its priority, (uids[i], counts[i]) every uid's
 * queued records at its priority. O(n_uids). */
size_t sched_position_from_counts(const SchedState *state, const Record *r, size_t ahead, size_t own_older,
                                  const uid_t *uids, const size_t *counts, size_t n_uids);

/* Backoff after the n-th consecutive failure (n ≥ 1): 2 s doubling to cap,
 * scaled by a jitter factor in [0.8, 1.2) from jitter in [0, 1). */
usec_t sched_backoff(unsigned n, usec_t cap, double jitter);
