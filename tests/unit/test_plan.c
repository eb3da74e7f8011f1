/* The work planner (plan.h): which HITL.sh call goes next and when the
 * engine wakes, with the clock, the budget and the outbox summary injected.
 * Several tests drive the planner through simulated time the way
 * work.c's timer does: ask, "execute" (charge the budget, change the
 * record), move the clock to the step's wake time, ask again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "plan.h"
#include "unit_budget.h"

#define T0 (INT64_C(1779998400) * USEC_PER_SEC)   /* on the hour: a window starts */
#define S(x) ((usec_t) (x) * USEC_PER_SEC)

#define config_default unit_budget_config

typedef struct Fixture {
	Budget budget;
	SchedState sched;
	PlanSummary s;
	PlanInput in;
} Fixture;

static void fixture_init(Fixture *f, usec_t now) {
	*f = (Fixture) {};
	budget_init(&f->budget, &config_default, now);
	f->s.next_local = USEC_INFINITY;
	f->in = (PlanInput) {
		.now = now,
		.jitter = 0.5,
		.budget = &f->budget,
		.sched = &f->sched,
		.min_poll_interval = S(30),
	};
}

static Record mk(RequestState state, uid_t uid, Priority p, uint64_t seq) {
	Record r = { .state = state, .owner_uid = uid, .priority = p, .seq = seq, .created_at = T0 };

	snprintf(r.id, sizeof r.id, "r_%03llu", (unsigned long long) seq);
	return r;
}

static PlanStep plan(Fixture *f) {
	PlanStep step;

	plan_next(&f->s, &f->in, &step);
	return step;
}

/* ------------------------------------------------------------------ gates */

static void test_plan_nothing_to_do_sleeps_until_next_local(void **state) {
	Fixture f;
	PlanStep step;

	fixture_init(&f, T0);
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.wake == USEC_INFINITY);
	f.s.next_local = T0 + S(77);
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.wake == T0 + S(77));
}

static void test_plan_pause_resume(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1);
	Record *q[] = { &a };
	PlanStep step;

	fixture_init(&f, T0);
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.next_local = T0 + S(500);   /* a's lifetime, say */
	f.in.paused = true;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	/* Paused: only local events wake the engine (a resume kicks it). */
	assert_true(step.wake == T0 + S(500));

	f.in.paused = false;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_CREATE);
	assert_ptr_equal(step.target, &a);
	assert_int_equal(step.call_kind, CALL_CREATE);
}

static void test_plan_one_call_at_a_time_and_no_key(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1);
	Record *q[] = { &a };

	fixture_init(&f, T0);
	f.s.queued = q;
	f.s.n_queued = 1;
	f.in.busy = true;
	assert_int_equal(plan(&f).kind, WORK_NONE);
	f.in.busy = false;
	f.in.key_missing = true;
	assert_int_equal(plan(&f).kind, WORK_NONE);
	f.in.key_missing = false;
	f.in.backoff_until = T0 + S(8);
	assert_int_equal(plan(&f).kind, WORK_NONE);
	assert_true(plan(&f).wake == T0 + S(8));
	f.in.now = T0 + S(8);
	assert_int_equal(plan(&f).kind, WORK_CREATE);
}

/* The key's id (keylife.h): asked for once it has worked and nothing else
 * needs the call, never on an idle start; before the first create only when
 * a key hitld switched away from may be back. */
static void test_plan_identify_key(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1);
	Record *q[] = { &a };

	fixture_init(&f, T0);
	f.in.identify_key = true;
	/* Idle, the key never used: no call at all. */
	assert_int_equal(plan(&f).kind, WORK_NONE);
	/* Work first: the create goes, not the probe. */
	f.in.key_valid = true;
	f.s.queued = q;
	f.s.n_queued = 1;
	assert_int_equal(plan(&f).kind, WORK_CREATE);
	/* Nothing else to do, the key has worked: now the probe. */
	f.s.n_queued = 0;
	assert_int_equal(plan(&f).kind, WORK_PROBE);
	assert_int_equal(plan(&f).call_kind, CALL_PROBE);
	/* Known already: nothing. */
	f.in.identify_key = false;
	assert_int_equal(plan(&f).kind, WORK_NONE);
	/* A retired key may be back: the probe goes before any create. */
	f.in.identify_key = f.in.identify_first = true;
	f.in.key_valid = false;
	f.s.n_queued = 1;
	assert_int_equal(plan(&f).kind, WORK_PROBE);
	/* ... and nothing while paused. */
	f.in.paused = true;
	assert_int_equal(plan(&f).kind, WORK_NONE);
}

static void test_plan_key_invalid_only_probes(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1), p = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 2);
	Record *q[] = { &a };
	PlanStep step;

	fixture_init(&f, T0);
	p.remote_id = (char *) "req_1";
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.n_pending = 1;
	f.s.pending_one = &p;
	f.s.cancel = &p;
	f.in.key_invalid = true;
	f.in.next_probe_at = T0 + S(16);
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.wake == T0 + S(16));

	f.in.now = T0 + S(16);
	step = plan(&f);
	assert_int_equal(step.kind, WORK_PROBE);
	assert_int_equal(step.call_kind, CALL_PROBE);
	assert_null(step.target);

	/* The key works again: the rest of the work goes on. */
	f.in.key_invalid = false;
	assert_int_equal(plan(&f).kind, WORK_CANCEL);
}

/* ------------------------------------------------------------------ the 429 pause */

static void test_plan_429_pauses_everything_until_the_reset(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1), p = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 2);
	Record *q[] = { &a };
	RateInfo ri = { .has_retry_after = true, .retry_after_s = 120 };
	PlanStep step;

	fixture_init(&f, T0);
	p.remote_id = (char *) "req_1";
	p.cancel_requested = true;
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.n_pending = 1;
	f.s.pending_one = &p;
	f.s.cancel = &p;
	f.s.feedback = &p;
	f.in.next_poll_at = T0;
	budget_observe_429(&f.budget, &ri, T0, 0.0);
	assert_true(f.budget.paused_until >= T0 + S(120));

	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	/* Not one call of any kind before the pause ends, and the engine wakes
	 * no later than then. */
	assert_true(step.wake >= f.budget.paused_until);
	assert_true(step.wake < USEC_INFINITY);

	f.in.now = step.wake;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_CANCEL);
}

/* ------------------------------------------------------------------ order */

static void test_plan_order_cancel_feedback_poll_create(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1), p = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 2),
	       c = mk(REQUEST_COMPLETED, 1000, PRIORITY_MEDIUM, 3);
	Record *q[] = { &a };
	PlanStep step;

	fixture_init(&f, T0);
	p.remote_id = (char *) "req_1";
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.n_pending = 2;
	f.s.pending_one = &p;
	f.s.cancel = &p;
	f.s.feedback = &c;
	f.in.next_poll_at = T0;

	step = plan(&f);
	assert_int_equal(step.kind, WORK_CANCEL);
	assert_ptr_equal(step.target, &p);
	/* A kind that failed to start lets the next in order go this turn. */
	f.in.skip = 1U << WORK_CANCEL;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_FEEDBACK);
	assert_ptr_equal(step.target, &c);
	f.in.skip |= 1U << WORK_FEEDBACK;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_LIST);
	f.in.skip |= 1U << WORK_POLL_LIST;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_CREATE);
	assert_ptr_equal(step.target, &a);
	f.in.skip |= 1U << WORK_CREATE;
	assert_int_equal(plan(&f).kind, WORK_NONE);
}

static void test_plan_trigger_goes_like_a_create(void **state) {
	Fixture f;
	Record t = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1);
	Record *q[] = { &t };
	PlanStep step;

	fixture_init(&f, T0);
	t.kind = RECORD_TRIGGER;
	f.s.queued = q;
	f.s.n_queued = 1;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_TRIGGER);
	assert_int_equal(step.call_kind, CALL_CREATE);
	assert_ptr_equal(step.target, &t);
}

/* ------------------------------------------------------------------ reconcile */

static void test_plan_reconcile_before_create(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_CRITICAL, 1), u = mk(REQUEST_SUBMITTING, 1000, PRIORITY_LOW, 2);
	Record *q[] = { &a };
	PlanStep step;

	fixture_init(&f, T0);
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.reconcile = &u;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_RECONCILE);
	assert_int_equal(step.call_kind, CALL_RECONCILE);
	assert_ptr_equal(step.target, &u);

	/* Even when the reconcile cannot go now, no create may: it could be a
	 * duplicate of the create whose outcome is unknown. */
	f.in.skip = 1U << WORK_RECONCILE;
	assert_int_equal(plan(&f).kind, WORK_NONE);

	/* The reconcile under way reads its next candidate whole. */
	f.in.skip = 0;
	f.in.rec_current = &u;
	f.in.rec_has_candidate = true;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_RECONCILE_GET);
	assert_ptr_equal(step.target, &u);

	/* Settled: creates go again. */
	f.s.reconcile = NULL;
	f.in.rec_current = NULL;
	u.state = REQUEST_QUEUED;
	assert_int_equal(plan(&f).kind, WORK_CREATE);
}

static void test_plan_find_does_not_hold_creates(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1), l = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 2);
	Record *q[] = { &a };
	PlanStep step;

	fixture_init(&f, T0);
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.find = &l;   /* created, id unknown */
	step = plan(&f);
	assert_int_equal(step.kind, WORK_RECONCILE);
	assert_ptr_equal(step.target, &l);
	f.in.skip = 1U << WORK_RECONCILE;
	assert_int_equal(plan(&f).kind, WORK_CREATE);
}

static void test_plan_reconcile_under_way_goes_first(void **state) {
	Fixture f;
	Record u1 = mk(REQUEST_SUBMITTING, 1000, PRIORITY_MEDIUM, 1), u2 = mk(REQUEST_SUBMITTING, 1000, PRIORITY_MEDIUM, 2);

	fixture_init(&f, T0);
	f.s.reconcile = &u1;
	f.in.rec_current = &u2;
	assert_ptr_equal(plan(&f).target, &u2);
	/* A current record that settled meanwhile is not reconciled again. */
	u2.state = REQUEST_PENDING;
	u2.remote_id = (char *) "req_9";
	assert_ptr_equal(plan(&f).target, &u1);
	assert_int_equal(plan(&f).kind, WORK_RECONCILE);
}

/* ------------------------------------------------------------------ breaker */

static void test_plan_breaker_holds_creates_polls_go_on(void **state) {
	Fixture f;
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1), p = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 2);
	Record *q[] = { &a };
	PlanStep step;

	fixture_init(&f, T0);
	p.remote_id = (char *) "req_1";
	f.s.queued = q;
	f.s.n_queued = 1;
	f.s.n_pending = 2;
	f.s.pending_one = &p;
	f.in.next_poll_at = T0;
	f.in.breaker_open = true;
	f.in.breaker_probe_at = T0 + S(300);

	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_LIST);
	f.in.skip = 1U << WORK_POLL_LIST;   /* as if the poll ran: what comes next? */
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.wake == T0 + S(300));

	/* After the backoff, the next create is the probe. */
	f.in.skip = 0;
	f.in.now = T0 + S(300);
	f.s.n_pending = 0;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_CREATE);
	assert_ptr_equal(step.target, &a);
}

/* ------------------------------------------------------------------ polls */

static void test_plan_poll_batching(void **state) {
	Fixture f;
	Record p[4];
	PlanStep step;

	for (int i = 0; i < 4; i++) {
		p[i] = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, (uint64_t) i + 1);
		p[i].remote_id = (char *) "req";
	}
	fixture_init(&f, T0);
	f.s.n_pending = 4;
	f.s.pending_one = &p[0];

	/* No poll planned yet: one is planned, paced by the budget. */
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.next_poll_at == T0 + plan_poll_interval(&f.budget, S(30), T0, 0));
	assert_true(step.next_poll_at >= T0 + S(30));
	assert_true(step.wake == step.next_poll_at);

	/* Many pending: one list call for all of them, opening a round. */
	f.in.now = f.in.next_poll_at = step.next_poll_at;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_LIST);
	assert_int_equal(step.call_kind, CALL_POLL);
	assert_true(step.begin_poll_round);
	assert_null(step.target);
	/* The next page of a round under way opens no new round. */
	f.in.poll_in_round = true;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_LIST);
	assert_false(step.begin_poll_round);

	/* One the list did not show is asked for by id. */
	p[2].poll_missing = true;
	f.s.missing = &p[2];
	f.s.n_missing_same_loop = 1;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_GET);
	assert_ptr_equal(step.target, &p[2]);
	/* Several missing in one loop: the loop's listing, one call. */
	f.s.n_missing_same_loop = 3;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_LOOP);
	assert_ptr_equal(step.target, &p[2]);

	/* Only one pending: a get by id is cheaper than a list. */
	f.s.missing = NULL;
	f.s.n_pending = 1;
	f.in.poll_in_round = false;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_GET);
	assert_ptr_equal(step.target, &p[0]);

	/* Nothing pending: no poll stays planned. */
	f.s.n_pending = 0;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.next_poll_at == 0);
}

static void test_plan_poll_interval_spreads_the_budget(void **state) {
	Budget b;

	budget_init(&b, &config_default, T0);
	/* Nothing queued: the whole budget spread over the window. */
	usec_t idle = plan_poll_interval(&b, S(1), T0, 0);
	/* A backlog larger than the window can create: polls live on the reserve. */
	usec_t busy = plan_poll_interval(&b, S(1), T0, 500);

	assert_true(idle >= S(30) && idle <= S(40));
	assert_true(busy > idle * 5);
	assert_true(busy <= USEC_PER_HOUR / 10 + S(1));
	/* Never below the configured minimum. */
	assert_true(plan_poll_interval(&b, S(600), T0, 0) == S(600));
}

/* ------------------------------------------------------------------ pacing, in simulated time */

typedef struct Tally {
	unsigned creates, polls, others;
	usec_t first_create, last_create;
} Tally;

/* Runs the planner from T0 until until, executing every step at once (the
 * reply arrives instantly): creates take their record out of the queue. */
static Tally simulate(Fixture *f, Record **queue, size_t n, usec_t until, Record **order, size_t n_order) {
	Tally t = {};
	size_t served = 0;

	f->s.queued = queue;
	f->s.n_queued = n;
	while (f->in.now < until) {
		PlanStep step = plan(f);

		f->in.next_poll_at = step.next_poll_at;
		if (step.begin_poll_round)
			f->in.poll_in_round = true;
		if (step.kind == WORK_NONE) {
			assert_true(step.wake > f->in.now);
			if (step.wake == USEC_INFINITY)
				break;
			f->in.now = step.wake;
			continue;
		}
		budget_charge(&f->budget, step.call_kind, f->in.now);
		if (step.kind == WORK_CREATE) {
			if (t.creates == 0)
				t.first_create = f->in.now;
			t.last_create = f->in.now;
			t.creates++;
			sched_note_served(&f->sched, step.target);
			step.target->state = REQUEST_SUBMITTING;
			step.target->next_attempt_at = USEC_INFINITY;   /* out of the queue */
			if (served < n_order)
				order[served++] = step.target;
			f->s.n_queued--;
			/* compact: the summary only holds what is still queued */
			for (size_t i = 0, j = 0; i < n; i++)
				if (queue[i]->state == REQUEST_QUEUED)
					queue[j++] = queue[i];
		} else if (step.kind == WORK_POLL_LIST || step.kind == WORK_POLL_GET) {
			t.polls++;
			f->in.poll_in_round = false;
			f->in.next_poll_at = 0;
		} else
			t.others++;
	}
	return t;
}

static void test_plan_backlog_paced_within_the_budget(void **state) {
	Fixture f;
	Record r[300], *q[300];
	Tally t;

	fixture_init(&f, T0);
	for (size_t i = 0; i < ELEMENTSOF(r); i++) {
		r[i] = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, i + 1);
		q[i] = &r[i];
	}
	t = simulate(&f, q, ELEMENTSOF(r), T0 + USEC_PER_HOUR - S(60), NULL, 0);
	/* A backlog bigger than the window: the creates leave the poll reserve
	 * and are spread over the window, not burnt at once. */
	assert_true(t.creates > 50);
	assert_true(t.creates <= config_default.limit_per_hour - config_default.poll_reserve);
	assert_true(t.last_create - t.first_create > USEC_PER_HOUR / 2);
	assert_true(f.budget.used <= f.budget.limit);
}

static void test_plan_small_backlog_goes_at_once_and_polls_follow(void **state) {
	Fixture f;
	Record r[5], *q[5], p = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 99);
	Tally t;

	fixture_init(&f, T0);
	p.remote_id = (char *) "req_1";
	for (size_t i = 0; i < ELEMENTSOF(r); i++) {
		r[i] = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, i + 1);
		q[i] = &r[i];
	}
	f.s.n_pending = 1;
	f.s.pending_one = &p;
	t = simulate(&f, q, ELEMENTSOF(r), T0 + S(600), NULL, 0);
	assert_int_equal(t.creates, 5);
	assert_true(t.last_create - t.first_create < S(60));
	/* Polls go on, spread: not one per wake-up. */
	assert_true(t.polls >= 5);
	assert_true(t.polls <= 600 / 30 + 1);
}

/* ------------------------------------------------------------------ callbacks: sweep and fallback */

static void test_plan_poll_mode_sweep_while_callbacks_arrive(void **state) {
	PlanSummary s = { .next_local = USEC_INFINITY, .hooked_due_at = USEC_INFINITY };
	PollModeInput in = { .callbacks_enabled = true, .sweep_interval = S(900) };
	PollState st;

	st = plan_poll_state_init(false, T0);
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	assert_int_equal(st.reason, POLL_REASON_NO_RECEIVER);
	st = plan_poll_state_init(true, T0);
	assert_int_equal(st.reason, POLL_REASON_NO_CALLBACK);

	/* The receiver is on, but no callback came yet: polls as always. */
	assert_false(plan_poll_mode(&s, &in, T0 + S(60), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	/* One comes: the sweep, once. */
	in.last_callback_at = T0 + S(61);
	assert_true(plan_poll_mode(&s, &in, T0 + S(62), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
	assert_int_equal(st.reason, POLL_REASON_CALLBACKS);
	assert_true(st.since == T0 + S(62));
	assert_false(plan_poll_mode(&s, &in, T0 + S(63), &st));
	/* More callbacks, no news. */
	in.last_callback_at = T0 + S(500);
	assert_false(plan_poll_mode(&s, &in, T0 + S(600), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);

	/* The receiver goes off: normal polling. */
	in.callbacks_enabled = false;
	assert_true(plan_poll_mode(&s, &in, T0 + S(700), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	assert_int_equal(st.reason, POLL_REASON_NO_RECEIVER);
	/* Back on: a callback older than that does not count. */
	in.callbacks_enabled = true;
	assert_true(plan_poll_mode(&s, &in, T0 + S(701), &st));
	assert_int_equal(st.reason, POLL_REASON_NO_CALLBACK);
	assert_false(plan_poll_mode(&s, &in, T0 + S(702), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	in.last_callback_at = T0 + S(710);
	assert_true(plan_poll_mode(&s, &in, T0 + S(711), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
}

static void test_plan_poll_mode_overdue_falls_back(void **state) {
	PlanSummary s = { .next_local = USEC_INFINITY, .n_pending = 2, .n_pending_hooked = 2,
	                  .hooked_due_at = T0 + S(1000) };
	PollModeInput in = { .callbacks_enabled = true, .sweep_interval = S(900), .last_callback_at = T0 + S(1) };
	PollState st = plan_poll_state_init(true, T0);

	assert_true(plan_poll_mode(&s, &in, T0 + S(2), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
	/* Before its expected answer time, a request without a callback is fine. */
	in.last_callback_at = T0 + S(900);
	assert_false(plan_poll_mode(&s, &in, T0 + S(999), &st));
	/* Past it with no callback (even while others come): normal polling. */
	assert_true(plan_poll_mode(&s, &in, T0 + S(1000), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	assert_int_equal(st.reason, POLL_REASON_OVERDUE);
	assert_false(plan_poll_mode(&s, &in, T0 + S(1001), &st));
	/* Other callbacks come, but the overdue one is still pending: no flapping. */
	in.last_callback_at = T0 + S(1010);
	assert_false(plan_poll_mode(&s, &in, T0 + S(1020), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	/* A poll found it: callbacks that came meanwhile bring the sweep back. */
	s.n_pending_hooked = s.n_pending = 1;
	s.hooked_due_at = T0 + S(5000);
	assert_true(plan_poll_mode(&s, &in, T0 + S(1030), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
	/* Overdue, but only among records without hitld's callback: not ours to judge. */
	s.n_pending_hooked = 0;
	s.hooked_due_at = T0;
	assert_false(plan_poll_mode(&s, &in, T0 + S(1040), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
}

static void test_plan_poll_mode_silent_callbacks_fall_back(void **state) {
	PlanSummary s = { .next_local = USEC_INFINITY, .n_pending = 3, .n_pending_hooked = 3,
	                  .hooked_due_at = USEC_INFINITY };
	PollModeInput in = { .callbacks_enabled = true, .sweep_interval = S(900), .last_callback_at = T0 + S(10) };
	PollState st = plan_poll_state_init(true, T0);

	/* A poll miss from before the sweep began does not end it. */
	in.poll_miss_at = T0 + S(5);
	assert_true(plan_poll_mode(&s, &in, T0 + S(20), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
	assert_false(plan_poll_mode(&s, &in, T0 + S(30), &st));
	/* The sweep finds a request final whose callback never came, while
	 * others came within the interval: one lost callback, the sweep's job. */
	in.last_callback_at = T0 + S(800);
	in.poll_miss_at = T0 + S(920);
	assert_false(plan_poll_mode(&s, &in, T0 + S(921), &st));
	assert_int_equal(st.mode, POLL_MODE_SWEEP);
	/* A later sweep finds more final while the last callback is one sweep
	 * interval old: perhaps merely late, the sweep goes on. */
	in.poll_miss_at = T0 + S(1700);
	assert_false(plan_poll_mode(&s, &in, T0 + S(1701), &st));
	/* No callback for two sweep intervals: callbacks stopped. */
	in.poll_miss_at = T0 + S(2620);
	assert_true(plan_poll_mode(&s, &in, T0 + S(2621), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	assert_int_equal(st.reason, POLL_REASON_SILENT);
	/* Polls keep finding answers, no callback: stays normal. */
	in.poll_miss_at = T0 + S(2700);
	assert_false(plan_poll_mode(&s, &in, T0 + S(2701), &st));
	assert_int_equal(st.mode, POLL_MODE_NORMAL);
	/* One callback at T0, then none: silent two intervals later, not before. */
	in = (PollModeInput) { .callbacks_enabled = true, .sweep_interval = S(900), .last_callback_at = T0 };
	st = (PollState) { .mode = POLL_MODE_SWEEP, .reason = POLL_REASON_CALLBACKS, .since = T0 };
	in.poll_miss_at = T0 + S(1800);
	assert_false(plan_poll_mode(&s, &in, T0 + S(1801), &st));
	in.poll_miss_at = T0 + S(1801);
	assert_true(plan_poll_mode(&s, &in, T0 + S(1802), &st));
	assert_int_equal(st.reason, POLL_REASON_SILENT);
}

static void test_plan_sweep_paces_polls(void **state) {
	Fixture f;
	Record p[3];
	PlanStep step;

	for (int i = 0; i < 3; i++) {
		p[i] = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, (uint64_t) i + 1);
		p[i].remote_id = (char *) "req";
	}
	fixture_init(&f, T0 + S(100));
	f.s.n_pending = f.s.n_pending_hooked = 3;
	f.s.pending_one = &p[0];
	f.s.hooked_due_at = USEC_INFINITY;
	f.in.poll_mode = POLL_MODE_SWEEP;
	f.in.sweep_interval = S(900);
	f.in.last_poll_at = T0 + S(50);

	/* None planned: a sweep interval from now, not the budget's pace. */
	step = plan(&f);
	assert_int_equal(step.kind, WORK_NONE);
	assert_true(step.next_poll_at == T0 + S(1000));
	assert_true(step.wake == T0 + S(1000));
	/* A reply that asked for its normal pace is held back to a sweep
	 * interval after the last poll. */
	f.in.next_poll_at = T0 + S(130);
	step = plan(&f);
	assert_true(step.next_poll_at == T0 + S(950));
	assert_true(step.wake == T0 + S(950));
	/* And one slower than the sweep (the reserve is cut to the sweeps'
	 * share, the budget's pace may be slow) does not delay it. */
	f.in.next_poll_at = T0 + S(1500);
	step = plan(&f);
	assert_true(step.next_poll_at == T0 + S(950));
	f.in.now = T0 + S(950);
	f.in.next_poll_at = step.next_poll_at;
	step = plan(&f);
	assert_int_equal(step.kind, WORK_POLL_LIST);
	assert_true(step.begin_poll_round);

	/* A round's further pages and the requests it did not show go at once. */
	f.in.last_poll_at = T0 + S(950);
	f.in.next_poll_at = T0 + S(950);
	f.in.poll_in_round = true;
	assert_int_equal(plan(&f).kind, WORK_POLL_LIST);
	f.in.poll_in_round = false;
	f.s.missing = &p[1];
	assert_int_equal(plan(&f).kind, WORK_POLL_GET);
	f.s.missing = NULL;
	assert_int_equal(plan(&f).kind, WORK_NONE);

	/* The engine wakes when a callback is overdue. */
	f.s.hooked_due_at = T0 + S(1200);
	step = plan(&f);
	assert_true(step.wake == T0 + S(1200));

	/* One pending request with its client's own callback_url: normal pace. */
	f.s.n_pending_hooked = 2;
	f.in.next_poll_at = 0;
	step = plan(&f);
	assert_true(step.next_poll_at == f.in.now + plan_poll_interval(&f.budget, S(30), f.in.now, 0));
	assert_true(step.next_poll_at < T0 + S(950) + S(900));
	/* Normal mode: the budget's pace, no sweep. */
	f.s.n_pending_hooked = 3;
	f.in.poll_mode = POLL_MODE_NORMAL;
	step = plan(&f);
	assert_true(step.next_poll_at == f.in.now + plan_poll_interval(&f.budget, S(30), f.in.now, 0));
}

static void test_plan_sweep_reserve(void **state) {
	PlanSummary s = { .n_pending = 4, .n_pending_hooked = 4 };
	PollState sweep = { .mode = POLL_MODE_SWEEP, .reason = POLL_REASON_CALLBACKS };
	PollState normal = { .mode = POLL_MODE_NORMAL, .reason = POLL_REASON_SILENT };

	assert_int_equal(plan_poll_reserve(&s, &normal, 10, USEC_PER_HOUR, S(1800)), 10);
	assert_int_equal(plan_poll_reserve(&s, &sweep, 10, USEC_PER_HOUR, S(1800)), 2);
	assert_int_equal(plan_poll_reserve(&s, &sweep, 10, USEC_PER_HOUR, S(900)), 4);
	assert_int_equal(plan_poll_reserve(&s, &sweep, 10, S(20), S(10)), 2);
	assert_int_equal(plan_poll_reserve(&s, &sweep, 10, S(20), S(30)), 1);
	/* Never above what is configured. */
	assert_int_equal(plan_poll_reserve(&s, &sweep, 3, USEC_PER_HOUR, S(60)), 3);
	/* A request polled as always needs the whole reserve. */
	s.n_pending_hooked = 3;
	assert_int_equal(plan_poll_reserve(&s, &sweep, 10, USEC_PER_HOUR, S(1800)), 10);
}

/* A backlog with callbacks arriving: creates take all but the sweeps'
 * share of each window; without them the poll reserve stays whole. */
static void test_plan_sweep_backlog_gets_the_budget(void **state) {
	for (int sweeping_on = 0; sweeping_on <= 1; sweeping_on++) {
		Fixture f;
		Record r[400], *q[400];
		PollState st = { .mode = sweeping_on ? POLL_MODE_SWEEP : POLL_MODE_NORMAL };
		Record p = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 999);
		Tally t;

		fixture_init(&f, T0);
		p.remote_id = (char *) "req";
		for (size_t i = 0; i < ELEMENTSOF(r); i++) {
			r[i] = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, i + 1);
			q[i] = &r[i];
		}
		f.s.n_pending = f.s.n_pending_hooked = 1;
		f.s.pending_one = &p;
		f.s.hooked_due_at = USEC_INFINITY;
		f.in.poll_mode = st.mode;
		f.in.sweep_interval = S(1800);
		f.budget.config.poll_reserve = plan_poll_reserve(&f.s, &st, 10, USEC_PER_HOUR, S(1800));
		t = simulate(&f, q, ELEMENTSOF(r), T0 + USEC_PER_HOUR, NULL, 0);
		if (sweeping_on) {
			assert_true(t.creates >= 97);
			assert_true(t.polls <= 2);
		} else {
			assert_true(t.creates <= 90);
			assert_true(t.polls >= 5);
		}
		assert_true(f.budget.used <= f.budget.limit);
	}
}

/* ------------------------------------------------------------------ fairness (through sched.h) */

static void test_plan_fair_across_uids_and_priorities(void **state) {
	Fixture f;
	Record r[8], *q[8], *order[8];
	size_t n = 0;

	fixture_init(&f, T0);
	/* uid 1000 floods with critical requests first; uid 1001's low one
	 * still gets the second turn; within 1001, high before low. */
	for (int i = 0; i < 5; i++)
		r[n] = mk(REQUEST_QUEUED, 1000, PRIORITY_CRITICAL, (uint64_t) n + 1), n++;
	r[n] = mk(REQUEST_QUEUED, 1001, PRIORITY_LOW, (uint64_t) n + 1), n++;
	r[n] = mk(REQUEST_QUEUED, 1001, PRIORITY_HIGH, (uint64_t) n + 1), n++;
	r[n] = mk(REQUEST_QUEUED, 1000, PRIORITY_LOW, (uint64_t) n + 1), n++;
	for (size_t i = 0; i < n; i++)
		q[i] = &r[i];
	simulate(&f, q, n, T0 + S(600), order, n);

	assert_int_equal(order[0]->owner_uid, 1000);
	assert_int_equal(order[1]->owner_uid, 1001);
	assert_int_equal(order[1]->priority, PRIORITY_HIGH);
	assert_int_equal(order[2]->owner_uid, 1000);
	assert_int_equal(order[3]->owner_uid, 1001);
	assert_int_equal(order[3]->priority, PRIORITY_LOW);
	for (size_t i = 4; i < 7; i++)
		assert_int_equal(order[i]->priority, PRIORITY_CRITICAL);
	assert_ptr_equal(order[7], &r[7]);   /* 1000's low one last */
}

/* ------------------------------------------------------------------ expiry (the settle step) */

static void test_plan_expiry_lifetime_and_deadline(void **state) {
	PlanLimits l = { .lifetime = S(3600), .retention = 0 };
	Record a = mk(REQUEST_QUEUED, 1000, PRIORITY_MEDIUM, 1);
	usec_t next = USEC_INFINITY;

	assert_int_equal(plan_expiry(&a, &l, T0 + S(10), &next), PLAN_KEEP);
	assert_true(next == T0 + S(3600));
	assert_int_equal(plan_expiry(&a, &l, T0 + S(3599), NULL), PLAN_KEEP);
	assert_int_equal(plan_expiry(&a, &l, T0 + S(3600), NULL), PLAN_EXPIRE_LIFETIME);

	/* A deadline ends it locally while HITL.sh's minimum timeout still fits. */
	a.deadline_at = T0 + S(600);
	next = USEC_INFINITY;
	assert_int_equal(plan_expiry(&a, &l, T0 + S(10), &next), PLAN_KEEP);
	assert_true(next == T0 + S(540));
	assert_int_equal(plan_expiry(&a, &l, T0 + S(540), NULL), PLAN_KEEP);
	assert_int_equal(plan_expiry(&a, &l, T0 + S(541), NULL), PLAN_EXPIRE_DEADLINE);

	/* Sent, or on its way: the lifetime no longer applies. */
	a.deadline_at = 0;
	a.state = REQUEST_SUBMITTING;
	assert_int_equal(plan_expiry(&a, &l, T0 + S(7200), NULL), PLAN_KEEP);
	a.state = REQUEST_PENDING;
	a.remote_id = (char *) "req_1";
	assert_int_equal(plan_expiry(&a, &l, T0 + S(7200), NULL), PLAN_KEEP);
}

static void test_plan_expiry_created_never_found(void **state) {
	PlanLimits l = { .lifetime = S(3600) };
	Record a = mk(REQUEST_PENDING, 1000, PRIORITY_MEDIUM, 1);
	usec_t next = USEC_INFINITY;

	/* No remote id: looked for until the lifetime, or the deadline and a margin. */
	assert_int_equal(plan_expiry(&a, &l, T0 + S(100), &next), PLAN_KEEP);
	assert_true(next == T0 + S(3600));
	assert_int_equal(plan_expiry(&a, &l, T0 + S(3600), NULL), PLAN_EXPIRE_NEVER_FOUND);
	a.deadline_at = T0 + S(7200);
	assert_int_equal(plan_expiry(&a, &l, T0 + S(7200), NULL), PLAN_KEEP);
	assert_int_equal(plan_expiry(&a, &l, T0 + S(7260), NULL), PLAN_EXPIRE_NEVER_FOUND);
}

static void test_plan_expiry_retention(void **state) {
	PlanLimits l = { .lifetime = S(3600), .retention = USEC_PER_DAY };
	Record a = mk(REQUEST_COMPLETED, 1000, PRIORITY_MEDIUM, 1);
	usec_t next = USEC_INFINITY;

	a.updated_at = T0;
	assert_int_equal(plan_expiry(&a, &l, T0 + S(10), &next), PLAN_KEEP);
	assert_true(next == T0 + USEC_PER_DAY);
	assert_int_equal(plan_expiry(&a, &l, T0 + USEC_PER_DAY, NULL), PLAN_EXPIRE_DELETE);
	/* Feedback still to send keeps it, and asks for no wake-up in the past
	 * (the engine would spin while the feedback waits for the budget or a
	 * key): the end of the feedback call runs the engine anyway. */
	a.feedback_state = FEEDBACK_QUEUED;
	next = USEC_INFINITY;
	assert_int_equal(plan_expiry(&a, &l, T0 + USEC_PER_DAY, &next), PLAN_KEEP);
	assert_true(next == USEC_INFINITY);
	a.feedback_state = FEEDBACK_NONE;
	/* A paused queue deletes nothing; retention 0 keeps for ever. */
	l.paused = true;
	assert_int_equal(plan_expiry(&a, &l, T0 + USEC_PER_DAY, NULL), PLAN_KEEP);
	l.paused = false;
	l.retention = 0;
	assert_int_equal(plan_expiry(&a, &l, T0 + 400 * USEC_PER_DAY, NULL), PLAN_KEEP);
	/* Every terminal state, not only completed. */
	l.retention = USEC_PER_DAY;
	a.state = REQUEST_FAILED;
	assert_int_equal(plan_expiry(&a, &l, T0 + USEC_PER_DAY, NULL), PLAN_EXPIRE_DELETE);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_nothing_to_do_sleeps_until_next_local),
		cmocka_unit_test(test_plan_pause_resume),
		cmocka_unit_test(test_plan_one_call_at_a_time_and_no_key),
		cmocka_unit_test(test_plan_key_invalid_only_probes),
		cmocka_unit_test(test_plan_identify_key),
		cmocka_unit_test(test_plan_429_pauses_everything_until_the_reset),
		cmocka_unit_test(test_plan_order_cancel_feedback_poll_create),
		cmocka_unit_test(test_plan_trigger_goes_like_a_create),
		cmocka_unit_test(test_plan_reconcile_before_create),
		cmocka_unit_test(test_plan_find_does_not_hold_creates),
		cmocka_unit_test(test_plan_reconcile_under_way_goes_first),
		cmocka_unit_test(test_plan_breaker_holds_creates_polls_go_on),
		cmocka_unit_test(test_plan_poll_batching),
		cmocka_unit_test(test_plan_poll_interval_spreads_the_budget),
		cmocka_unit_test(test_plan_backlog_paced_within_the_budget),
		cmocka_unit_test(test_plan_small_backlog_goes_at_once_and_polls_follow),
		cmocka_unit_test(test_plan_poll_mode_sweep_while_callbacks_arrive),
		cmocka_unit_test(test_plan_poll_mode_overdue_falls_back),
		cmocka_unit_test(test_plan_poll_mode_silent_callbacks_fall_back),
		cmocka_unit_test(test_plan_sweep_paces_polls),
		cmocka_unit_test(test_plan_sweep_reserve),
		cmocka_unit_test(test_plan_sweep_backlog_gets_the_budget),
		cmocka_unit_test(test_plan_fair_across_uids_and_priorities),
		cmocka_unit_test(test_plan_expiry_lifetime_and_deadline),
		cmocka_unit_test(test_plan_expiry_created_never_found),
		cmocka_unit_test(test_plan_expiry_retention),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
