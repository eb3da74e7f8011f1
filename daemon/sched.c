/* sched.c — see sched.h. */
#include <stdlib.h>

#include "cleanup.h"

#include "sched.h"

SchedTier sched_tier(const SchedState *state, uid_t uid) {
	return state->precedence && state->precedence(uid, state->precedence_userdata) ? SCHED_TIER_PRECEDENCE
	                                                                               : SCHED_TIER_OTHERS;
}

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

/* One uid's own order: priority, then age. */
static bool own_before(const Record *a, const Record *b) {
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return a->seq < b->seq;
}

/* Does a (of tier ta) come before b (of tier tb) in the create order? */
static bool sched_before(const Record *a, SchedTier ta, const Record *b, SchedTier tb, const SchedState *state) {
	if (ta != tb)
		return ta < tb;
	if (a->owner_uid != b->owner_uid)
		return rr_before(a->owner_uid, b->owner_uid, state->served[ta], state->last_uid[ta]);
	return own_before(a, b);
}

Record *sched_pick_create(Record *const *queued, size_t n, const SchedState *state, usec_t now,
                          usec_t *ret_next_ready) {
	usec_t next_ready = USEC_INFINITY;
	SchedTier best_tier = SCHED_TIER_OTHERS, tier = SCHED_TIER_OTHERS;
	Record *best = NULL;
	bool have_tier = false;
	uid_t tier_uid = 0;

	for (size_t i = 0; i < n; i++) {
		Record *r = queued[i];

		if (r->next_attempt_at > now) {
			if (r->next_attempt_at < next_ready)
				next_ready = r->next_attempt_at;
			continue;
		}
		/* One uid's records tend to come in runs: ask once per run. */
		if (!have_tier || r->owner_uid != tier_uid) {
			tier = sched_tier(state, r->owner_uid);
			tier_uid = r->owner_uid;
			have_tier = true;
		}
		if (!best || sched_before(r, tier, best, best_tier, state)) {
			best = r;
			best_tier = tier;
		}
	}
	if (!best && ret_next_ready)
		*ret_next_ready = next_ready;
	return best;
}

void sched_note_served(SchedState *state, const Record *r) {
	SchedTier t = sched_tier(state, r->owner_uid);

	state->served[t] = true;
	state->last_uid[t] = r->owner_uid;
}

/* Another uid v of r's tier with count queued records: how many of them are
 * created before r. Each turn serves every uid that still has a record, in
 * the cyclic order after the uid served last; r is served in turn own_ahead
 * (counted from 0), so v is served in every turn before that one, and in
 * that turn too if it comes before r's uid in the cycle. */
static size_t turns_before(const SchedState *state, SchedTier t, uid_t v, size_t count, uid_t u, size_t own_ahead) {
	size_t turns = own_ahead + (rr_before(v, u, state->served[t], state->last_uid[t]) ? 1 : 0);

	return count < turns ? count : turns;
}

static int uid_cmp(const void *a, const void *b) {
	uid_t x = *(const uid_t *) a, y = *(const uid_t *) b;

	return x < y ? -1 : x > y;
}

size_t sched_position(Record *const *queued, size_t n, const SchedState *state, const Record *r) {
	/* r waits for every record of a tier before its own, for its own uid's
	 * records ahead of it, and for the turns of the other uids of its tier. */
	_cleanup_(freep) uid_t *uids = NULL;
	SchedTier t = sched_tier(state, r->owner_uid);
	size_t ahead = 0, own_ahead = 0, m = 0, others = 0;

	uids = malloc(sizeof(uid_t) * (n ? n : 1));
	if (!uids)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const Record *q = queued[i];

		if (q == r)
			continue;
		if (q->owner_uid == r->owner_uid) {
			if (own_before(q, r))
				own_ahead++;
		} else
			uids[m++] = q->owner_uid;
	}
	qsort(uids, m, sizeof(uid_t), uid_cmp);
	for (size_t i = 0; i < m;) {
		size_t j = i;
		SchedTier tv;

		while (j < m && uids[j] == uids[i])
			j++;
		tv = sched_tier(state, uids[i]);
		if (tv < t)
			ahead += j - i;
		else if (tv == t)
			others += turns_before(state, t, uids[i], j - i, r->owner_uid, own_ahead);
		i = j;
	}
	return ahead + own_ahead + others + 1;
}

size_t sched_position_from_counts(const SchedState *state, const Record *r, size_t own_ahead, const uid_t *uids,
                                  const size_t *counts, size_t n_uids) {
	SchedTier t = sched_tier(state, r->owner_uid);
	size_t ahead = 0, others = 0;

	for (size_t i = 0; i < n_uids; i++) {
		SchedTier tv;

		if (uids[i] == r->owner_uid || counts[i] == 0)
			continue;
		tv = sched_tier(state, uids[i]);
		if (tv < t)
			ahead += counts[i];
		else if (tv == t)
			others += turns_before(state, t, uids[i], counts[i], r->owner_uid, own_ahead);
	}
	return ahead + own_ahead + others + 1;
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
