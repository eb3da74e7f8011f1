/* budget.c — see budget.h.
 *
 * The ledger tracks one window at a time in local realtime. Which server window a
 * response speaks of is decided on the server's own clock (X-RateLimit-Reset
 * compared with the newest Reset seen), never on ours; where the window ends on our
 * clock is derived from Reset - Date, so a skewed local clock shifts nothing. Every
 * estimate of the end errs late (network delay, Date truncation, +1 s margin): the
 * worst a wrong estimate can do is waste a little time, never spend early. */
#include <assert.h>
#include <limits.h>
#include <string.h>

#include "budget.h"
#include "cleanup.h"

typedef enum Relation {
	RELATION_UNPLACED,  /* no usable Reset: cannot tell the window, merge conservatively */
	RELATION_NEW,       /* a server window later than any seen */
	RELATION_SAME,      /* the server window we are in */
	RELATION_STALE,     /* a window that has already ended here: ignore */
} Relation;

static const char *const call_kind_table[_CALL_KIND_MAX] = {
	[CALL_CREATE] = "create",
	[CALL_POLL] = "poll",
	[CALL_CANCEL] = "cancel",
	[CALL_FEEDBACK] = "feedback",
	[CALL_RECONCILE] = "reconcile",
	[CALL_INTERACTIVE] = "interactive",
	[CALL_PROBE] = "probe",
};

const char *budget_call_kind_to_string(CallKind kind) {
	if (kind < 0 || kind >= _CALL_KIND_MAX)
		return NULL;
	return call_kind_table[kind];
}

CallKind budget_call_kind_from_string(const char *s) {
	if (!s)
		return _CALL_KIND_INVALID;
	for (CallKind k = 0; k < _CALL_KIND_MAX; k++)
		if (streq(call_kind_table[k], s))
			return k;
	return _CALL_KIND_INVALID;
}

static usec_t usec_min(usec_t a, usec_t b) {
	return a < b ? a : b;
}

static usec_t usec_max(usec_t a, usec_t b) {
	return a > b ? a : b;
}

static double jitter_sanitize(double jitter) {
	/* NaN fails both comparisons and becomes 0. */
	if (!(jitter >= 0.0))
		return 0.0;
	if (jitter > 1.0)
		return 1.0;
	return jitter;
}

/* d × factor for a duration; factor in [0, 1.2]. d is capped first so that the
 * product always fits. */
static usec_t usec_scale(usec_t d, double factor) {
	return (usec_t) ((double) usec_min(d, BUDGET_WINDOW_MAX) * factor);
}

static BudgetConfig config_sanitize(const BudgetConfig *config) {
	BudgetConfig c = *config;

	if (c.limit_per_hour == 0)
		c.limit_per_hour = 1;
	if (c.limit_per_hour > BUDGET_LIMIT_MAX)
		c.limit_per_hour = BUDGET_LIMIT_MAX;
	if (c.window < USEC_PER_SEC)
		c.window = USEC_PER_SEC;
	if (c.window > BUDGET_WINDOW_MAX)
		c.window = BUDGET_WINDOW_MAX;
	return c;
}

/* b->config is public and may be edited in place (reload): never divide by 0. */
static usec_t config_window(const Budget *b) {
	return usec_max(usec_min(b->config.window, BUDGET_WINDOW_MAX), USEC_PER_SEC);
}

static usec_t window_len(const Budget *b) {
	usec_t len = usec_sub(b->window_end, b->window_start);

	return len >= USEC_PER_SEC ? len : USEC_PER_SEC;
}

/* Calls of a kind allowed per window: creates leave the reserve, clamped to half
 * the limit so that creates always get a share. */
static unsigned reserve_of(const Budget *b) {
	return b->config.poll_reserve < b->limit / 2 ? b->config.poll_reserve : b->limit / 2;
}

/* The reserve is what the other kinds may still need in this window: each
 * call they already made used a part of it, not a create's share. */
static unsigned reserve_left(const Budget *b) {
	unsigned reserve = reserve_of(b);

	return b->used_other < reserve ? reserve - b->used_other : 0;
}

static usec_t pace_end(const Budget *b) {
	if (b->from_server && window_len(b) > 4 * USEC_PER_SEC)
		return usec_sub(b->window_end, BUDGET_RESET_MARGIN + USEC_PER_SEC);
	return b->window_end;
}

/* Creates and interactive calls are not the reserve's: they leave it. */
static bool kind_leaves_reserve(CallKind kind) {
	return kind == CALL_CREATE || kind == CALL_INTERACTIVE;
}

static unsigned kind_cap(const Budget *b, CallKind kind) {
	if (kind_leaves_reserve(kind))
		return b->limit - reserve_left(b);
	return b->limit;
}

static bool epoch_valid(int64_t e) {
	return e > 0 && e <= BUDGET_EPOCH_MAX;
}

static bool reset_usable(const RateInfo *ri) {
	return ri && ri->has_reset && epoch_valid(ri->reset_epoch);
}

/* Where the server's reset falls on our clock, +margin. From Reset - Date when the
 * response has a Date (skew-free); else Reset read on our clock. Returns false when
 * the answer cannot be trusted (no Date and a reset already past here: our clock is
 * ahead of the server's). */
static bool reset_to_local(const RateInfo *ri, usec_t now, usec_t *ret_end) {
	usec_t end;

	assert(reset_usable(ri));

	if (ri->has_date && epoch_valid(ri->date_epoch)) {
		int64_t delta = ri->reset_epoch - ri->date_epoch;

		/* A reset before the server's own "now" is nonsense; a very far one is
		 * capped so that bad headers cannot stop us for more than a day. */
		if (delta < 0)
			delta = 0;
		end = usec_add(now, usec_min((usec_t) delta * USEC_PER_SEC, BUDGET_WINDOW_MAX));
	} else {
		end = (usec_t) ri->reset_epoch * USEC_PER_SEC;
		if (end <= now)
			return false;
		end = usec_min(end, usec_add(now, BUDGET_WINDOW_MAX));
	}
	*ret_end = usec_add(end, BUDGET_RESET_MARGIN);
	return true;
}

/* By its Date, the server's own "now" lies more than two windows before the end of the window
 * we took for its current one. No reply is that late (one from the window just before is the
 * worst case): the server's clock stepped back. */
static bool server_clock_stepped_back(const Budget *b, const RateInfo *ri) {
	int64_t len_s = (int64_t) (window_len(b) / USEC_PER_SEC);

	return ri->has_date && epoch_valid(ri->date_epoch) && b->server_reset_epoch > 0 &&
	       ri->date_epoch + 2 * len_s + (int64_t) (BUDGET_RESET_MARGIN / USEC_PER_SEC) < b->server_reset_epoch;
}

static Relation classify(const Budget *b, const RateInfo *ri) {
	if (!reset_usable(ri))
		return RELATION_UNPLACED;
	if (b->server_reset_epoch == 0 || ri->reset_epoch > b->server_reset_epoch)
		return RELATION_NEW;
	/* Equal Reset after our ledger rolled over: a reply from the window that has
	 * ended (our end is never before the server's), arriving late. */
	if (ri->reset_epoch == b->server_reset_epoch && b->from_server)
		return RELATION_SAME;
	/* Otherwise every later reply would look stale until the server's clock
	 * caught up again (hours), and its count would be ignored all that time. */
	if (server_clock_stepped_back(b, ri))
		return RELATION_NEW;
	return RELATION_STALE;
}

static unsigned used_from_remaining(unsigned limit, unsigned remaining) {
	return limit - (remaining < limit ? remaining : limit);
}

void budget_init(Budget *b, const BudgetConfig *config, usec_t now) {
	assert(b);
	assert(config);

	*b = (Budget) {
		.config = config_sanitize(config),
	};
	b->limit = b->config.limit_per_hour;
	/* Before the server speaks: windows aligned to the local clock (top of the
	 * hour for the default window). */
	b->window_start = now - now % b->config.window;
	b->window_end = usec_add(b->window_start, b->config.window);
}

void budget_reconfigure(Budget *b, const BudgetConfig *config, usec_t now) {
	usec_t len, end;

	assert(b);
	assert(config);

	budget_tick(b, now);
	b->config = config_sanitize(config);
	/* used stays as counted, over the new limit too: calls made are made,
	 * and a limit raised again within the window must not forget them. */
	if (!b->limit_from_server)
		b->limit = b->config.limit_per_hour;
	if (b->server_reset_epoch != 0)
		return;
	len = b->config.window;
	end = usec_add(now - now % len, len);
	if (end < b->window_end) {
		b->window_end = end;
		b->window_start = usec_max(b->window_start, end - len);
	}
}

void budget_tick(Budget *b, usec_t now) {
	bool consecutive;
	usec_t start;

	assert(b);

	if (now < b->window_end)
		return;

	if (b->server_reset_epoch == 0) {
		usec_t len = config_window(b);

		start = now - now % len;
		consecutive = start == b->window_end;
		b->window_start = start;
		b->window_end = usec_add(start, len);
	} else {
		/* Step whole windows from the server-derived end, so the server's
		 * alignment (and our margin) is kept across idle windows. */
		usec_t len = window_len(b);
		usec_t k = (now - b->window_end) / len;

		consecutive = k == 0;
		start = b->window_end + k * len;   /* ≤ now, cannot overflow */
		b->window_start = start;
		b->window_end = usec_add(start, len);
	}

	/* "Calls were waiting for the reset" is read as: the window just ended ran
	 * out of creates. The first call of the new window then waits a random part
	 * of an interval instead of bursting at the reset. */
	b->prev_window_exhausted = consecutive && b->used >= kind_cap(b, CALL_CREATE);
	b->used = 0;
	b->used_other = 0;
	b->interactive_used = 0;
	b->n_shares = 0;
	b->from_server = false;
}

void budget_charge(Budget *b, CallKind kind, usec_t now) {
	assert(b);

	budget_tick(b, now);
	/* The scheduler only charges calls budget_next_slot() allowed; one
	 * beyond the limit (a lowered limit) still counts: it was made. */
	if (b->used < UINT_MAX)
		b->used++;
	b->last_was_create = kind_leaves_reserve(kind);
	if (kind == CALL_CREATE)
		b->last_create_at = now;
	else if (!kind_leaves_reserve(kind) && b->used_other < UINT_MAX)
		b->used_other++;
	b->last_call_at = now;
	b->prev_window_exhausted = false;
}

void budget_refund(Budget *b, usec_t charged_at, usec_t now) {
	assert(b);

	budget_tick(b, now);
	if (charged_at >= b->window_start && b->used > 0)
		b->used--;
}

static void adopt_limit(Budget *b, const RateInfo *ri) {
	if (ri && ri->has_limit && ri->limit > 0 && ri->limit <= BUDGET_LIMIT_MAX) {
		b->limit = ri->limit;
		b->limit_from_server = true;
	}
}

/* A response from a server window later than any seen: its count replaces ours. */
static void adopt_new_window(Budget *b, const RateInfo *ri, usec_t now) {
	usec_t len = config_window(b), end;

	/* Learn the server's window length from consecutive resets (a multiple of
	 * it after idle windows); it only shapes predictions, which the next
	 * response corrects. */
	if (b->server_reset_epoch > 0) {
		int64_t delta = ri->reset_epoch - b->server_reset_epoch;

		if (delta > 0 && (uint64_t) delta < len / USEC_PER_SEC)
			len = (usec_t) delta * USEC_PER_SEC;
	}

	/* Reset lies behind our clock and there is no Date to correct it: we know
	 * the server's window has not ended, not when it will; assume a whole one. */
	if (!reset_to_local(ri, now, &end))
		end = usec_add(now, len);

	b->window_end = end;
	b->window_start = usec_min(usec_sub(end, len), now);
	/* Calls charged since our ledger rolled over are already this window's;
	 * only when we were still in the previous one is the reserve whole again
	 * — but for the call this reply answers: our window ends a little after
	 * the server's (Date is truncated to the second, plus the margin), so a
	 * poll sent in that gap is the new window's first, and counting it in
	 * the old one gave the new window an 11th poll and 89 creates. The work
	 * engine has one call in flight at a time, so it is the last one charged
	 * (a client's loop.* call in between only shifts one poll: the server's
	 * count still bounds every call). */
	if (b->from_server)
		b->used_other = b->last_call_at > 0 && !b->last_was_create ? 1 : 0;
	b->server_reset_epoch = ri->reset_epoch;
	b->from_server = true;

	adopt_limit(b, ri);
	if (ri->has_remaining)
		b->used = used_from_remaining(b->limit, ri->remaining);
}

/* A response whose window we cannot tell, or the one we are in: replies may
 * arrive out of order, one sent earlier says more remains than is true now, so
 * the server's count can only raise ours. */
static void merge_count(Budget *b, const RateInfo *ri) {
	adopt_limit(b, ri);
	if (ri->has_remaining) {
		unsigned server_used = used_from_remaining(b->limit, ri->remaining);

		if (server_used > b->used)
			b->used = server_used;
	}
}

void budget_observe(Budget *b, const RateInfo *ri, usec_t now) {
	usec_t end;

	assert(b);

	budget_tick(b, now);
	if (!ri)
		return;

	switch (classify(b, ri)) {
	case RELATION_STALE:
		break;
	case RELATION_NEW:
		adopt_new_window(b, ri, now);
		break;
	case RELATION_SAME:
		/* The latest estimate of the end: all err late, and the latest also
		 * follows a step of our clock. */
		if (reset_to_local(ri, now, &end)) {
			usec_t len = window_len(b);

			b->window_end = end;
			b->window_start = usec_min(usec_sub(end, len), now);
		}
		merge_count(b, ri);
		break;
	case RELATION_UNPLACED:
		merge_count(b, ri);
		break;
	}
}

void budget_observe_429(Budget *b, const RateInfo *ri, usec_t now, double jitter) {
	usec_t extra, base;
	Relation rel;

	assert(b);

	budget_tick(b, now);
	if (b->over_limit_429s < UINT_MAX)
		b->over_limit_429s++;

	rel = classify(b, ri);
	if (rel == RELATION_STALE) {
		/* The 429 is about a window that has ended; the server's own word is
		 * that the reset frees the key. A short pause still keeps us from
		 * hammering should that reading ever be wrong. */
		usec_t wait = ri->has_retry_after ? usec_min((usec_t) ri->retry_after_s * USEC_PER_SEC, BUDGET_WINDOW_MAX)
		                                  : BUDGET_429_DEFAULT_WAIT;

		extra = usec_scale(usec_min(window_len(b) / 10, BUDGET_429_JITTER_MAX), jitter_sanitize(jitter));

		b->paused_until = usec_max(b->paused_until, usec_add(usec_add(now, wait), extra));
		return;
	}

	budget_observe(b, ri, now);
	/* The window as the server just told it (length learned included). */
	extra = usec_scale(usec_min(window_len(b) / 10, BUDGET_429_JITTER_MAX), jitter_sanitize(jitter));

	/* Prefer the Reset (now in window_end); else Retry-After; else 60 s. */
	base = b->window_end;
	if (rel == RELATION_UNPLACED) {
		usec_t wait = ri && ri->has_retry_after
		                      ? usec_min((usec_t) ri->retry_after_s * USEC_PER_SEC, BUDGET_WINDOW_MAX)
		                      : BUDGET_429_DEFAULT_WAIT;

		base = usec_max(base, usec_add(now, wait));
	}

	/* Full: the server says so, but never forget calls counted beyond. */
	if (b->used < b->limit)
		b->used = b->limit;
	b->paused_until = usec_max(b->paused_until, usec_add(base, extra));
}

unsigned budget_available(const Budget *b, CallKind kind, usec_t now) {
	Budget w;
	unsigned cap;

	assert(b);

	if (kind < 0 || kind >= _CALL_KIND_MAX)
		return 0;

	w = *b;
	budget_tick(&w, now);
	if (w.paused_until > now)
		return 0;
	cap = kind_cap(&w, kind);
	return w.used < cap ? cap - w.used : 0;
}

usec_t budget_pace_end(const Budget *b, usec_t now) {
	Budget w;

	assert(b);

	w = *b;
	budget_tick(&w, now);
	return pace_end(&w);
}

unsigned budget_reserve_left(const Budget *b, usec_t now) {
	Budget w;

	assert(b);

	w = *b;
	budget_tick(&w, now);
	return reserve_left(&w);
}

unsigned budget_remaining(const Budget *b, usec_t now) {
	Budget w;

	assert(b);

	w = *b;
	budget_tick(&w, now);
	if (w.paused_until > now)
		return 0;
	return w.used < w.limit ? w.limit - w.used : 0;
}

usec_t budget_next_slot(const Budget *b, CallKind kind, unsigned wanted, usec_t now, double jitter) {
	Budget w;
	usec_t t = now;

	assert(b);

	if (kind < 0 || kind >= _CALL_KIND_MAX)
		return USEC_INFINITY;

	jitter = jitter_sanitize(jitter);
	if (wanted == 0)
		wanted = 1;

	/* Each round moves t past one obstacle (pause, spent window); the ledger
	 * is rolled at t on a copy. Three rounds suffice: pause, window end, the
	 * fresh window (where used = 0 < cap, as limit ≥ 1 gives every kind a cap
	 * ≥ 1). */
	w = *b;
	for (unsigned round = 0; round < 8; round++) {
		unsigned cap, available;

		budget_tick(&w, t);

		if (w.paused_until > t) {
			t = w.paused_until;
			continue;
		}

		cap = kind_cap(&w, kind);
		if (w.used >= cap) {
			if (w.window_end <= t)  /* only at USEC_INFINITY */
				return USEC_INFINITY;
			t = w.window_end;
			continue;
		}
		available = cap - w.used;

		if (w.prev_window_exhausted) {
			usec_t interval = window_len(&w) / available;

			return usec_max(t, usec_add(w.window_start, usec_scale(usec_min(interval, BUDGET_RESET_SPREAD_MAX), jitter)));
		}

		if (wanted > available) {
			/* Spread what is left so that the last call still lands in
			 * the server's window: window_end errs late by the margin
			 * and up to a second of Date truncation. */
			usec_t end = pace_end(&w), interval, anchor;

			if (end <= t)
				return t;
			interval = usec_sub(end, t) / available;
			/* Creates keep their own rhythm: a poll in between must not
			 * push the next create back. */
			anchor = kind == CALL_CREATE ? w.last_create_at : w.last_call_at;
			/* ±20 % around the even spacing: jitter 0 → 0.8, 1 → 1.2. */
			return usec_max(t, usec_add(anchor, usec_scale(interval, 0.8 + 0.4 * jitter)));
		}

		return t;
	}

	return USEC_INFINITY;  /* not reached */
}

/* ------------------------------------------------------------------ interactive shares */

/* v × limit / limit_per_hour, never 0 for a v that is not. */
static unsigned scale_share(const Budget *b, unsigned v) {
	uint64_t s;

	if (v == 0 || b->config.limit_per_hour == 0)
		return v;
	s = (uint64_t) v * b->limit / b->config.limit_per_hour;
	if (s == 0)
		s = 1;
	return s > UINT_MAX ? UINT_MAX : (unsigned) s;
}

void budget_interactive_shares(const Budget *b, unsigned *ret_per_uid, unsigned *ret_total) {
	unsigned total, per_uid, room;

	assert(b);

	room = b->limit - reserve_of(b);
	total = scale_share(b, b->config.interactive_total);
	if (total > room)
		total = room;
	per_uid = scale_share(b, b->config.interactive_per_uid);
	if (per_uid > total)
		per_uid = total;
	if (ret_per_uid)
		*ret_per_uid = per_uid;
	if (ret_total)
		*ret_total = total;
}

static BudgetShare *share_find(const Budget *b, uid_t uid) {
	for (size_t i = 0; i < b->n_shares; i++)
		if (b->shares[i].uid == uid)
			return (BudgetShare *) &b->shares[i];
	return NULL;
}

unsigned budget_interactive_used(const Budget *b, uid_t uid, usec_t now) {
	const BudgetShare *s;
	Budget w;

	assert(b);

	w = *b;
	budget_tick(&w, now);
	s = share_find(&w, uid);
	return s ? s->used : 0;
}

usec_t budget_interactive_slot(const Budget *b, uid_t uid, bool admin, usec_t now) {
	usec_t t = now;
	Budget w;

	assert(b);

	if (!admin) {
		unsigned per_uid;

		budget_interactive_shares(b, &per_uid, NULL);
		if (per_uid == 0)
			return USEC_INFINITY;
	}

	/* As in budget_next_slot(): each round moves t past one obstacle. A
	 * fresh window has every share whole and used = 0 < the cap. */
	w = *b;
	for (unsigned round = 0; round < 8; round++) {
		const BudgetShare *s;
		unsigned per_uid, total;

		budget_tick(&w, t);
		if (w.paused_until > t) {
			t = w.paused_until;
			continue;
		}
		budget_interactive_shares(&w, &per_uid, &total);
		s = share_find(&w, uid);
		if (w.used >= kind_cap(&w, CALL_INTERACTIVE) ||
		    (!admin && (w.interactive_used >= total || (s && s->used >= per_uid) ||
		                (!s && w.n_shares >= BUDGET_SHARE_UIDS_MAX)))) {
			if (w.window_end <= t)  /* only at USEC_INFINITY */
				return USEC_INFINITY;
			t = w.window_end;
			continue;
		}
		return t;
	}
	return USEC_INFINITY;  /* not reached */
}

/* Charges an interactive call already counted by budget_charge() to uid's share
 * (nothing for an admin). */
static void note_interactive(Budget *b, uid_t uid, bool admin, usec_t now) {
	BudgetShare *s;

	assert(b);

	budget_tick(b, now);
	if (admin)
		return;
	if (b->interactive_used < UINT_MAX)
		b->interactive_used++;
	s = share_find(b, uid);
	if (!s) {
		/* budget_interactive_slot() lets no uid beyond the table call. */
		if (b->n_shares >= BUDGET_SHARE_UIDS_MAX)
			return;
		s = &b->shares[b->n_shares++];
		*s = (BudgetShare) { .uid = uid };
	}
	if (s->used < UINT_MAX)
		s->used++;
}

void budget_refund_interactive(Budget *b, uid_t uid, bool admin, usec_t charged_at, usec_t now) {
	BudgetShare *s;

	assert(b);

	budget_tick(b, now);
	if (admin || charged_at < b->window_start)
		return;
	s = share_find(b, uid);
	if (!s || s->used == 0)
		return;
	s->used--;
	if (b->interactive_used > 0)
		b->interactive_used--;
}

void budget_charge_interactive(Budget *b, uid_t uid, bool admin, usec_t now) {
	budget_charge(b, CALL_INTERACTIVE, now);
	note_interactive(b, uid, admin, now);
}
