/* sched.c — see sched.h. */
#include <stdlib.h>

#include "cleanup.h"

#include "sched.h"

/* Is uid a strictly after b in the cyclic order that starts after last? */
static bool rr_before(uid_t a, uid_t b, bool have_last, uid_t last) {
	/* Map each uid to its distance after `last` on the uid circle, so the
	 * uid following the last one served comes first. */
	if (!have_last)
		return a < b;
	bool a_after = a > last, b_after = b > last;
	if (a_after != b_after)
		return a_after;
	return a < b;
}

/* Does a come before b in the create order? */
static bool sched_before(const Record *a, const Record *b, const SchedState *state) {
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->owner_uid != b->owner_uid)
		return rr_before(a->owner_uid, b->owner_uid, state->served[a->priority],
		                 state->last_uid[a->priority]);
	return a->seq < b->seq;
}

Record *sched_pick_create(Record *const *queued, size_t n, const SchedState *state, usec_t now,
                          usec_t *ret_next_ready) {
	usec_t next_ready = USEC_INFINITY;
	Record *best = NULL;

	for (size_t i = 0; i < n; i++) {
		Record *r = queued[i];

		if (r->next_attempt_at > now) {
			if (r->next_attempt_at < next_ready)
				next_ready = r->next_attempt_at;
			continue;
		}
		if (!best || sched_before(r, best, state))
			best = r;
	}
	if (!best && ret_next_ready)
		*ret_next_ready = next_ready;
	return best;
}

void sched_note_served(SchedState *state, const Record *r) {
	if (r->priority < 0 || r->priority >= _PRIORITY_MAX)
		return;
	state->served[r->priority] = true;
	state->last_uid[r->priority] = r->owner_uid;
}

static int uid_cmp(const void *a, const void *b) {
	uid_t x = *(const uid_t *) a, y = *(const uid_t *) b;

	return x < y ? -1 : x > y;
}

size_t sched_position(Record *const *queued, size_t n, const SchedState *state, const Record *r) {
	/* Round-robin: r waits for every higher-priority record, for its own
	 * uid's older records at its priority (one per round), and in each of
	 * those rounds for one record of every other uid that still has one. */
	_cleanup_(freep) uid_t *uids = NULL;
	size_t ahead = 0, own_older = 0, m = 0, others = 0;

	uids = malloc(sizeof(uid_t) * (n ? n : 1));
	if (!uids)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const Record *q = queued[i];

		if (q == r)
			continue;
		if (q->priority > r->priority)
			ahead++;
		else if (q->priority == r->priority) {
			if (q->owner_uid == r->owner_uid) {
				if (q->seq < r->seq)
					own_older++;
			} else
				uids[m++] = q->owner_uid;
		}
	}
	qsort(uids, m, sizeof(uid_t), uid_cmp);
	for (size_t i = 0; i < m;) {
		size_t j = i;

		while (j < m && uids[j] == uids[i])
			j++;
		size_t turns = own_older + (rr_before(uids[i], r->owner_uid, state->served[r->priority],
		                                      state->last_uid[r->priority]) ? 1 : 0);
		others += (j - i) < turns ? (j - i) : turns;
		i = j;
	}
	return ahead + own_older + others + 1;
}

size_t sched_position_from_counts(const SchedState *state, const Record *r, size_t ahead, size_t own_older,
                                  const uid_t *uids, const size_t *counts, size_t n_uids) {
	size_t others = 0;

	if (r->priority < 0 || r->priority >= _PRIORITY_MAX)
		return 0;
	for (size_t i = 0; i < n_uids; i++) {
		size_t turns;

		if (uids[i] == r->owner_uid)
			continue;
		turns = own_older + (rr_before(uids[i], r->owner_uid, state->served[r->priority],
		                               state->last_uid[r->priority]) ? 1 : 0);
		others += counts[i] < turns ? counts[i] : turns;
	}
	return ahead + own_older + others + 1;
}

usec_t sched_backoff(unsigned n, usec_t cap, double jitter) {
	usec_t d = 2 * USEC_PER_SEC;

	if (n == 0)
		return 0;
	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	if (jitter < 0 || jitter >= 1)
		jitter = 0.5;
	return (usec_t) ((double) d * (0.8 + 0.4 * jitter));
}
