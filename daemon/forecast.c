/* forecast.c — see forecast.h. */
#include <assert.h>

#include "forecast.h"

/* The server's next window, adopted in the gap between its reset and ours
 * (BUDGET_RESET_MARGIN plus the Date header's second), may start that much
 * before the end we knew. */
#define WINDOW_START_SLACK (BUDGET_RESET_MARGIN + USEC_PER_SEC)

void forecast_drain(const Budget *b, uint64_t backlog, usec_t now, ForecastDrain *ret) {
	Budget w, next;
	usec_t t = now;
	uint64_t rest;

	assert(b);
	assert(ret);

	/* A copy, rolled to where creates may start: after a 429 pause. */
	w = *b;
	budget_tick(&w, t);
	if (w.paused_until > t) {
		t = w.paused_until;
		budget_tick(&w, t);
	}
	/* The window after this one stands for all later ones: a fresh ledger
	 * (nothing used, the whole reserve kept for polls). budget_tick() has
	 * made t < window_end, and a window is at least a second long. */
	next = w;
	budget_tick(&next, w.window_end);

	*ret = (ForecastDrain) {
		.start = t,
		.done_at = now,
		.creates_now = budget_available(&w, CALL_CREATE, t),
		.creates_per_window = budget_available(&next, CALL_CREATE, w.window_end),
		.window = usec_sub(next.window_end, next.window_start),
	};
	if (ret->window < USEC_PER_SEC)
		ret->window = USEC_PER_SEC;
	/* A limit of at least 1 and a reserve of at most half of it leave every
	 * window a create; guard the division all the same. */
	if (ret->creates_per_window == 0)
		ret->creates_per_window = 1;

	if (backlog == 0)
		return;
	if (backlog <= ret->creates_now) {
		/* budget_next_slot(): as many as the window has go at once. */
		ret->done_at = t;
		ret->duration = usec_sub(t, now);
		return;
	}
	/* The current window's creates are spread to its end; then each window
	 * spreads its share until the last, whose remainder goes at its start. */
	rest = backlog - ret->creates_now;
	ret->windows = (rest + ret->creates_per_window - 1) / ret->creates_per_window;
	ret->done_at = w.window_end;
	if (ret->windows > 1) {
		uint64_t later = ret->windows - 1;

		/* Saturating: a backlog no budget drains within the epoch. */
		if (later > (USEC_INFINITY - ret->done_at) / ret->window)
			ret->done_at = USEC_INFINITY;
		else
			ret->done_at += later * ret->window;
	}
	ret->duration = usec_sub(ret->done_at, now);
}

double forecast_decisions_per_hour(const Budget *b, usec_t now) {
	ForecastDrain d;

	forecast_drain(b, 0, now, &d);
	return (double) d.creates_per_window * (double) USEC_PER_HOUR / (double) d.window;
}

void forecast_watch(ForecastWatch *w, const ForecastObservation *o, ForecastWarnings *ret) {
	Budget b;

	assert(w);
	assert(o);
	assert(o->budget);
	assert(ret);

	*ret = (ForecastWarnings) {};
	b = *o->budget;
	budget_tick(&b, o->now);

	/* A window ended since the last observation: the ledger's window now
	 * starts where the last one ended, or later — rolled over at its end,
	 * or replaced by the server's next window in the second our end lies
	 * after the server's. (Taking the server's window for the local guess
	 * moves the bounds too, but the new start lies well inside the old
	 * window.) Creates waited at its end
	 * if they waited at the last observation in it and still wait now
	 * (each work turn observes, and a create waits for a turn). One warning
	 * for a run of such windows: the next one after a window that ends with
	 * nothing waiting. */
	if (w->window_end != 0 && usec_add(b.window_start, WINDOW_START_SLACK) >= w->window_end) {
		ret->window_rolled = true;
		ret->waited = w->waiting;
		ret->waiting = o->backlog;
		if (w->waiting > 0 && o->backlog > 0 && !o->paused) {
			if (!w->window_warned) {
				ret->window_ended = true;
				ret->window_end = b.window_start;
			}
			w->window_warned = true;
		} else
			w->window_warned = false;
	}
	w->window_end = b.window_end;
	w->waiting = o->paused ? 0 : o->backlog;

	/* While creates are held there is no pace to forecast from: keep what
	 * was said until there is. */
	if (o->held || o->paused)
		return;
	forecast_drain(&b, o->backlog, o->now, &ret->drain);
	if (o->warn_drain > 0 && o->backlog > 0 && ret->drain.duration > o->warn_drain) {
		ret->long_drain = !w->drain_warned;
		w->drain_warned = true;
	} else if (o->backlog == 0 || ret->drain.duration <= o->warn_drain / 2)
		w->drain_warned = false;
}
