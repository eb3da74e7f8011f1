/* forecast.h — what the budget makes of the backlog, pure: when the creates
 * now queued will all have been sent at the pace the budget allows, how many
 * decisions an hour the budget yields, and which of the journal's backlog
 * warnings are due — each once per condition, never once per call. No I/O,
 * no clock: time comes from the caller (telemetry.c), so tests inject it
 * (tests/unit/test_forecast.c).
 *
 * The forecast follows budget.h's pacing: the creates the current window
 * still has go now if they cover the backlog, else they are spread to the
 * window's end; every later window gives limit − poll reserve creates (the
 * reserve is the polls'), spread the same way, and the last window's share
 * goes at its start. A 429 pause delays the start. What it cannot know —
 * new submits, a breaker, a refused key, calls by someone else with the same
 * key — is the caller's to say (ForecastObservation.held) or shows up in the
 * next forecast. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "timeutil.h"

typedef struct ForecastDrain {
	usec_t start;                /* the first create may go: now, or the end of a 429 pause */
	usec_t done_at;              /* the last queued create will have been sent; now for no backlog */
	usec_t duration;             /* done_at − now */
	unsigned creates_now;        /* creates the current window still allows */
	unsigned creates_per_window; /* creates a whole window allows: limit − poll reserve */
	usec_t window;               /* length of the windows after the current one */
	uint64_t windows;            /* whole windows after the current one the backlog needs */
} ForecastDrain;

/* The forecast for backlog queued creates at now. */
void forecast_drain(const Budget *b, uint64_t backlog, usec_t now, ForecastDrain *ret);

/* Decisions an hour the budget yields at most: every decision costs one
 * create; its polls come from the reserve (one list call polls many). */
double forecast_decisions_per_hour(const Budget *b, usec_t now);

/* The warnings' memory between observations (zero-initialised: nothing seen). */
typedef struct ForecastWatch {
	usec_t window_end;     /* the end of the budget window of the last observation; 0: none yet.
	                        * A window ended when the ledger's window starts there or later:
	                        * its bounds also move without one ending, when the server's
	                        * window replaces the local guess. */
	uint64_t waiting;      /* creates queued at the last observation */
	bool window_warned;    /* "a window ended with creates waiting" is out, until a window ends without */
	bool drain_warned;     /* "the backlog drains too slowly" is out, until the drain falls to half
	                        * the threshold or the backlog empties */
} ForecastWatch;

typedef struct ForecastObservation {
	usec_t now;
	const Budget *budget;
	uint64_t backlog;      /* queued creates (requests and triggers) */
	bool held;             /* creates are held (key missing or refused, breaker): no pace to forecast */
	bool paused;           /* an administrator paused the queue: nothing waits for the budget */
	usec_t warn_drain;     /* budget.warn_drain_hours; 0: never warn */
} ForecastObservation;

typedef struct ForecastWarnings {
	bool long_drain;       /* warn: the backlog takes longer than warn_drain */
	ForecastDrain drain;   /* the forecast it is about */
	bool window_rolled;    /* a window ended since the last observation (warned of or not) */
	uint64_t waited;       /* creates queued at the last observation before it ended */
	bool window_ended;     /* warn: a window ended with creates still waiting */
	usec_t window_end;     /* when it ended (the current window's start) */
	uint64_t waiting;      /* creates still waiting */
} ForecastWarnings;

/* Called after every change that matters (manager.c: each work turn):
 * updates w and says which warnings are due now. A window that ended between
 * two observations is seen at the first one after it. */
void forecast_watch(ForecastWatch *w, const ForecastObservation *o, ForecastWarnings *ret);
