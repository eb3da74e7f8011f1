/* queuepos.c — see queuepos.h: where queued records stand in the create order. */
#include <stdlib.h>

#include "cleanup.h"
#include "queuepos.h"

#define POSITION_UIDS_MAX 256

/* Every uid's queued records of all priorities, merged from the outbox's
 * per-priority counts; at most max uids. */
static size_t queued_uids_all(Manager *m, uid_t *uids, size_t *counts, size_t max) {
	uid_t pu[POSITION_UIDS_MAX];
	size_t pc[POSITION_UIDS_MAX], n = 0;

	for (Priority p = 0; p < _PRIORITY_MAX; p++) {
		size_t k = outbox_queued_uids(m->outbox, p, pu, pc, POSITION_UIDS_MAX);

		for (size_t i = 0; i < k; i++) {
			size_t j = 0;

			while (j < n && uids[j] != pu[i])
				j++;
			if (j == n) {
				if (n == max)
					continue;
				uids[n] = pu[i];
				counts[n++] = 0;
			}
			counts[j] += pc[i];
		}
	}
	return n;
}

size_t queuepos_of(Manager *m, const Record *target, bool all_users, bool newest) {
	size_t n = outbox_count_state(m->outbox, REQUEST_QUEUED), i = 0, pos;
	_cleanup_(freep) Record **queued = NULL;

	if (newest && target->priority >= 0 && target->priority < _PRIORITY_MAX) {
		/* A new request is younger than every queued one: counts suffice,
		 * no walk over the whole outbox per submit. */
		uid_t uids[POSITION_UIDS_MAX];
		size_t counts[POSITION_UIDS_MAX], own_ahead = 0, n_uids = 0;

		for (Priority p = target->priority; p < _PRIORITY_MAX; p++)
			own_ahead += outbox_count_queued_uid(m->outbox, target->owner_uid, p);
		if (all_users)
			n_uids = queued_uids_all(m, uids, counts, POSITION_UIDS_MAX);
		if (own_ahead > 0 && n_uids < POSITION_UIDS_MAX)
			return sched_position_from_counts(&m->sched, target, own_ahead - 1, uids, counts, n_uids);
	}

	queued = malloc(sizeof(Record *) * (n ? n : 1));
	if (!queued)
		return 0;
	for (Record *r = outbox_first(m->outbox); r && i < n; r = outbox_next(m->outbox, r))
		if (r->state == REQUEST_QUEUED && (all_users || r->owner_uid == target->owner_uid))
			queued[i++] = r;
	pos = sched_position(queued, i, &m->sched, target);
	return pos;
}

/* Positions of every queued record, recomputed at most once a second in one
 * pass: a client's live line asks often, and a walk per get over 100,000
 * queued requests would make each get cost milliseconds. */
#define POSITIONS_MAX_AGE USEC_PER_SEC

typedef struct UidRank {
	uid_t uid;
	size_t seen[_PRIORITY_MAX];
} UidRank;

void queuepos_refresh(Manager *m, const Record *asked) {
	uid_t uids[POSITION_UIDS_MAX];
	size_t counts[POSITION_UIDS_MAX], n_uids;
	_cleanup_(freep) UidRank *ranks = NULL;
	size_t n_ranks = 0;
	usec_t now = now_monotonic();

	/* A record that arrived after the snapshot has no position yet. */
	if (m->positions_at != 0 && now - m->positions_at < POSITIONS_MAX_AGE && asked->position_all != 0)
		return;
	ranks = calloc(POSITION_UIDS_MAX, sizeof *ranks);
	if (!ranks)
		return;
	n_uids = queued_uids_all(m, uids, counts, POSITION_UIDS_MAX);

	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r)) {
		UidRank *u = NULL;
		size_t own_ahead = 0;

		if (r->state != REQUEST_QUEUED || r->priority < 0 || r->priority >= _PRIORITY_MAX)
			continue;
		for (size_t i = 0; i < n_ranks; i++)
			if (ranks[i].uid == r->owner_uid) {
				u = &ranks[i];
				break;
			}
		if (!u) {
			if (n_ranks == POSITION_UIDS_MAX)
				continue;
			u = &ranks[n_ranks++];
			u->uid = r->owner_uid;
		}
		/* In seq order, so seen = the uid's older queued records here;
		 * its own order is priority first, then age. */
		for (Priority q = r->priority + 1; q < _PRIORITY_MAX; q++)
			own_ahead += outbox_count_queued_uid(m->outbox, r->owner_uid, q);
		own_ahead += u->seen[r->priority];
		r->position_all = sched_position_from_counts(&m->sched, r, own_ahead, uids, counts, n_uids);
		r->position_own = own_ahead + 1;
		u->seen[r->priority]++;
	}
	m->positions_at = now;
}
