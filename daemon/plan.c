/* plan.c — see plan.h. */
#include "plan.h"

static usec_t min_usec(usec_t a, usec_t b) {
	return a < b ? a : b;
}

static void lower(usec_t *next, usec_t t) {
	if (next)
		*next = min_usec(*next, t);
}

PlanExpiry plan_expiry(const Record *r, const PlanLimits *limits, usec_t now, usec_t *next) {
	switch (r->state) {
	case REQUEST_QUEUED:
		if (r->deadline_at > 0 && now + LOCAL_TIMEOUT_MARGIN > r->deadline_at)
			return PLAN_EXPIRE_DEADLINE;
		if (usec_add(r->created_at, limits->lifetime) <= now)
			return PLAN_EXPIRE_LIFETIME;
		if (r->deadline_at > 0)
			lower(next, r->deadline_at - LOCAL_TIMEOUT_MARGIN);
		lower(next, usec_add(r->created_at, limits->lifetime));
		return PLAN_KEEP;
	case REQUEST_PENDING: {
		usec_t end;

		if (r->remote_id)
			return PLAN_KEEP;
		/* Created, id unknown: looked for now and then until its deadline
		 * (or lifetime) has surely passed. */
		end = r->deadline_at > 0 ? usec_add(r->deadline_at, LOCAL_TIMEOUT_MARGIN)
		                         : usec_add(r->created_at, limits->lifetime);
		if (end <= now)
			return PLAN_EXPIRE_NEVER_FOUND;
		lower(next, end);
		return PLAN_KEEP;
	}
	default:
		break;
	}
	if (request_state_is_terminal(r->state) && limits->retention > 0 && !limits->paused) {
		usec_t expiry = usec_add(r->updated_at, limits->retention);

		if (expiry <= now) {
			/* Feedback still to send keeps its record, with no wake-up
			 * of its own: a past one would spin the engine while the
			 * feedback waits, and the end of its call runs it anyway. */
			if (r->state == REQUEST_COMPLETED && r->feedback_state == FEEDBACK_QUEUED)
				return PLAN_KEEP;
			return PLAN_EXPIRE_DELETE;
		}
		lower(next, expiry);
	}
	return PLAN_KEEP;
}

usec_t plan_poll_interval(const Budget *b, usec_t min_interval, usec_t now, size_t queued) {
	usec_t left = usec_sub(budget_pace_end(b, now), now);
	unsigned remaining = budget_remaining(b, now);
	unsigned share;
	usec_t interval;

	/* While creates wait, polls live on what is left of the reserve (so
	 * that they are spread evenly and never eat into the creates' share)
	 * or on what the waiting creates leave, if more;
	 * otherwise the whole remaining budget is spread over the rest of the window. */
	if (queued > 0) {
		share = budget_reserve_left(b, now);
		/* A backlog this window can create (a burst) leaves the rest to
		 * polls: the first poll after it must not wait at the reserve's rate. */
		if (queued < budget_available(b, CALL_CREATE, now) && remaining - queued > share)
			share = remaining - (unsigned) queued;
		if (share == 0) {
			/* This window's reserve is spent: the next poll opens the next one. */
			interval = usec_sub(b->window_end, now);
			return interval > min_interval ? interval : min_interval;
		}
		if (share > remaining)
			share = remaining;
	} else
		share = remaining;
	if (share == 0)
		share = 1;
	interval = left / share;
	return interval > min_interval ? interval : min_interval;
}

/* Whether a call of kind may go now: not failed to start this turn, and
 * the budget has a slot; else ret->wake is lowered to the slot. */
static bool may_call(const PlanInput *in, WorkKind kind, CallKind call_kind, unsigned wanted, PlanStep *ret) {
	usec_t slot;

	if (in->skip & (1U << kind))
		return false;
	slot = budget_next_slot(in->budget, call_kind, wanted, in->now, in->jitter);
	if (slot > in->now) {
		ret->wake = min_usec(ret->wake, slot);
		return false;
	}
	return true;
}

static bool choose(const PlanInput *in, WorkKind kind, CallKind call_kind, unsigned wanted, Record *target,
                   PlanStep *ret) {
	if (!may_call(in, kind, call_kind, wanted, ret))
		return false;
	ret->kind = kind;
	ret->call_kind = call_kind;
	ret->target = target;
	return true;
}

/* A reconcile under way goes on with its record; else the oldest unknown
 * create; else a create with an unknown id is looked for (which does not
 * hold up new creates). */
static bool plan_reconcile(const PlanSummary *s, const PlanInput *in, PlanStep *ret) {
	const Record *cur = in->rec_current;
	Record *rec = NULL;

	if (cur && (cur->state == REQUEST_SUBMITTING || (cur->state == REQUEST_PENDING && !cur->remote_id)))
		rec = (Record *) cur;
	else if (s->reconcile)
		rec = s->reconcile;
	else if (s->find)
		rec = s->find;
	if (!rec)
		return false;
	return choose(in, rec == cur && in->rec_has_candidate ? WORK_RECONCILE_GET : WORK_RECONCILE, CALL_RECONCILE, 1,
	              rec, ret);
}

/* Polls sweep only while callbacks arrive and every pending request has
 * hitld's callback_url (one with its client's own is polled as always). */
static bool sweeping(const PlanSummary *s, PollMode mode) {
	return mode == POLL_MODE_SWEEP && s->n_pending_hooked >= s->n_pending;
}

static bool plan_poll(const PlanSummary *s, const PlanInput *in, PlanStep *ret) {
	bool sweep = sweeping(s, in->poll_mode);
	Record *one;

	if (s->n_pending == 0) {
		ret->next_poll_at = 0;
		return false;
	}
	if (ret->next_poll_at == 0)
		/* The first pending request after none: a sweep (or poll) interval from now. */
		ret->next_poll_at = in->now + (sweep ? in->sweep_interval
		                                     : plan_poll_interval(in->budget, in->min_poll_interval, in->now,
		                                                          s->n_queued));
	else if (sweep) {
		/* The next round of a sweep goes a sweep interval after the last
		 * poll, whatever pace the last reply asked for (sooner would
		 * waste calls; the budget's pace, living on a reserve cut to the
		 * sweeps, could be later); a round's further pages and the
		 * requests it did not show go on at once. */
		if (!in->poll_in_round && !s->missing && in->last_poll_at > 0)
			ret->next_poll_at = usec_add(in->last_poll_at, in->sweep_interval);
	}
	if (sweep)
		/* Wake when a callback is overdue: plan_poll_mode() then ends the sweep. */
		ret->wake = min_usec(ret->wake, s->hooked_due_at);
	if (in->now < ret->next_poll_at) {
		ret->wake = min_usec(ret->wake, ret->next_poll_at);
		return false;
	}
	/* The list shows only what this key created, and only so many pages: a
	 * request it did not show is asked for by id. */
	one = s->missing ? s->missing : (s->n_pending == 1 && !in->poll_in_round ? s->pending_one : NULL);
	if (one)
		/* Several in one loop (say, created with a key since rotated): the
		 * loop's listing shows them all at once. */
		return choose(in, s->missing && s->n_missing_same_loop > 1 ? WORK_POLL_LOOP : WORK_POLL_GET, CALL_POLL, 1,
		              one, ret);
	if (!in->poll_in_round)
		ret->begin_poll_round = true;
	return choose(in, WORK_POLL_LIST, CALL_POLL, 1, NULL, ret);
}

static bool plan_create(const PlanSummary *s, const PlanInput *in, PlanStep *ret) {
	usec_t ready = USEC_INFINITY;
	Record *r;

	/* No new create while an earlier one's outcome is unknown: it might have
	 * happened, and creating again could show reviewers a duplicate. */
	if (s->n_queued == 0 || s->reconcile)
		return false;
	if (in->breaker_open && in->now < in->breaker_probe_at) {
		/* Creates pause; the next one after the backoff is the probe. */
		ret->wake = min_usec(ret->wake, in->breaker_probe_at);
		return false;
	}
	r = sched_pick_create(s->queued, s->n_queued, in->sched, in->now, &ready);
	if (!r) {
		ret->wake = min_usec(ret->wake, ready);
		return false;
	}
	/* A key hitld once switched away from may be back: who it is decides
	 * whether the standby takes over, before it creates anything. */
	if (in->identify_key && in->identify_first)
		return choose(in, WORK_PROBE, CALL_PROBE, 1, NULL, ret);
	/* A trigger is useful work like a create, and shares its budget. */
	return choose(in, r->kind == RECORD_TRIGGER ? WORK_TRIGGER : WORK_CREATE, CALL_CREATE, (unsigned) s->n_queued, r,
	              ret);
}

void plan_next(const PlanSummary *s, const PlanInput *in, PlanStep *ret) {
	*ret = (PlanStep) {
		.kind = WORK_NONE,
		.wake = s->next_local,
		.next_poll_at = in->next_poll_at,
	};

	if (in->busy || in->key_missing || in->paused)
		return;
	if (in->now < in->backoff_until) {
		ret->wake = min_usec(ret->wake, in->backoff_until);
		return;
	}
	if (in->key_invalid) {
		if (in->now < in->next_probe_at)
			ret->wake = min_usec(ret->wake, in->next_probe_at);
		else
			choose(in, WORK_PROBE, CALL_PROBE, 1, NULL, ret);
		return;
	}
	if (plan_reconcile(s, in, ret))
		return;
	if (s->cancel && choose(in, WORK_CANCEL, CALL_CANCEL, 1, s->cancel, ret))
		return;
	if (s->feedback && choose(in, WORK_FEEDBACK, CALL_FEEDBACK, 1, s->feedback, ret))
		return;
	if (plan_poll(s, in, ret))
		return;
	if (plan_create(s, in, ret))
		return;
	/* Who the key is (GET /test, once per key; keylife.h), when nothing
	 * else needs the call: after it has worked, never on an idle start. */
	if (in->identify_key && in->key_valid)
		choose(in, WORK_PROBE, CALL_PROBE, 1, NULL, ret);
}

/* ------------------------------------------------------------------ callbacks */

static const char *const poll_mode_names[_POLL_MODE_MAX] = {
	[POLL_MODE_NORMAL] = "normal",
	[POLL_MODE_SWEEP] = "sweep",
};

static const char *const poll_reason_names[_POLL_REASON_MAX] = {
	[POLL_REASON_NO_RECEIVER] = "no_receiver",
	[POLL_REASON_NO_CALLBACK] = "no_callback_yet",
	[POLL_REASON_OVERDUE] = "callback_overdue",
	[POLL_REASON_SILENT] = "callbacks_silent",
	[POLL_REASON_CALLBACKS] = "callbacks_arrive",
};

const char *poll_mode_to_string(PollMode m) {
	return m >= 0 && m < _POLL_MODE_MAX ? poll_mode_names[m] : NULL;
}

const char *poll_reason_to_string(PollReason r) {
	return r >= 0 && r < _POLL_REASON_MAX ? poll_reason_names[r] : NULL;
}

PollState plan_poll_state_init(bool callbacks_enabled, usec_t now) {
	return (PollState) {
		.mode = POLL_MODE_NORMAL,
		.reason = callbacks_enabled ? POLL_REASON_NO_CALLBACK : POLL_REASON_NO_RECEIVER,
		.since = now,
	};
}

static bool poll_state_set(PollState *state, PollMode mode, PollReason reason, usec_t now) {
	if (state->mode == mode && state->reason == reason)
		return false;
	*state = (PollState) { .mode = mode, .reason = reason, .since = now };
	return true;
}

bool plan_poll_mode(const PlanSummary *s, const PollModeInput *in, usec_t now, PollState *state) {
	bool overdue = s->n_pending_hooked > 0 && now >= s->hooked_due_at;

	if (!in->callbacks_enabled)
		return poll_state_set(state, POLL_MODE_NORMAL, POLL_REASON_NO_RECEIVER, now);
	if (state->mode == POLL_MODE_SWEEP) {
		if (overdue)
			return poll_state_set(state, POLL_MODE_NORMAL, POLL_REASON_OVERDUE, now);
		/* A poll found final what a callback should have said, and none
		 * came for two sweep intervals before (the request finished at
		 * most one interval before the sweep that found it, and one
		 * more spares a callback merely late): callbacks stopped. One
		 * lost now and then while others come is what the sweep is for. */
		if (in->poll_miss_at > state->since &&
		    usec_add(in->last_callback_at, 2 * in->sweep_interval) < in->poll_miss_at)
			return poll_state_set(state, POLL_MODE_NORMAL, POLL_REASON_SILENT, now);
		return false;
	}
	/* Callbacks are trusted again only once one came after polls took over
	 * and nothing is overdue any more (else the overdue request would
	 * send polls back and forth). */
	if (in->last_callback_at > state->since && !overdue)
		return poll_state_set(state, POLL_MODE_SWEEP, POLL_REASON_CALLBACKS, now);
	if (state->reason == POLL_REASON_NO_RECEIVER)
		return poll_state_set(state, POLL_MODE_NORMAL, POLL_REASON_NO_CALLBACK, now);
	return false;
}

unsigned plan_poll_reserve(const PlanSummary *s, const PollState *state, unsigned configured, usec_t window,
                           usec_t sweep_interval) {
	usec_t sweeps;

	if (!sweeping(s, state->mode) || sweep_interval == 0)
		return configured;
	sweeps = (window + sweep_interval - 1) / sweep_interval;
	if (sweeps < 1)
		sweeps = 1;
	return sweeps < configured ? (unsigned) sweeps : configured;
}
