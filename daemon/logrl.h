/* logrl.h — rate limits for the log entries that somebody other than the
 * operator can cause at will: a local client (a uid), a callback sender (a
 * peer address), HITL.sh (hitld(8) LIMITS, Journal). Modelled on systemd's
 * ratelimit: in a window of `interval`, `burst` entries pass; the rest are
 * counted, not logged, and the next entry let through says how many were held
 * back ("(N similar messages suppressed)"). One LogRl per cause. Keyed by
 * the uid or the address that causes it, so that one key's flood uses up its
 * own burst and not another's, in a fixed table of LOGRL_KEYS keys (the
 * least recently seen is forgotten: bounded memory whatever the number of
 * keys), under a window for the whole cause (`burst_all`) that bounds what
 * many keys together log. Owns nothing; pure, the clock is passed in
 * (CLOCK_MONOTONIC; unit-tested in tests/unit/test_logrl.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "timeutil.h"

#define LOGRL_KEYS 16
/* The key of a cause that has none: then only the cause's window counts. */
#define LOGRL_NO_KEY UINT64_MAX
/* " (4294967295 similar messages suppressed)" plus NUL. */
#define LOGRL_SUFFIX_MAX 48

typedef struct LogRlWindow {
	usec_t begin;        /* 0: none begun */
	unsigned num;        /* entries let through in it */
} LogRlWindow;

typedef struct LogRlKey {
	uint64_t key;
	bool used;
	usec_t seen;         /* last entry for it, passed or not: the table's LRU order */
	LogRlWindow window;
} LogRlKey;

typedef struct LogRl {
	usec_t interval;     /* set with LOGRL(): */
	unsigned burst;      /* per key in a window (the cause's, for LOGRL_NO_KEY) */
	unsigned burst_all;  /* all keys together in a window (at least burst) */
	LogRlWindow all;
	unsigned suppressed; /* held back since the last entry let through */
	LogRlKey keys[LOGRL_KEYS];
} LogRl;

#define LOGRL(i, b, ball) { .interval = (i), .burst = (b), .burst_all = (ball) }

/* The limit of every entry a local client (a uid) can cause at will, as hitld(8)
 * LIMITS, Journal states it: 5 per uid and 20 for all uids together, per cause and 30 s. */
#define LOGRL_CLIENT LOGRL(30 * USEC_PER_SEC, 5U, 20U)

/* May an entry of this cause, for key, be logged at now? If so, returns true
 * and the number of the cause's entries held back since the last one let
 * through (of any key: "similar" is the cause) in *ret_suppressed, and counts
 * again from 0. A LogRl with interval or burst 0 lets everything through. */
bool logrl_below(LogRl *rl, uint64_t key, usec_t now, unsigned *ret_suppressed);

/* " (N similar messages suppressed)" for n > 0, "" for 0, in buf; returns buf. */
const char *logrl_suffix(unsigned n, char buf[static LOGRL_SUFFIX_MAX]);

/* A key for a string (a peer address): FNV-1a. Two strings with one key
 * share a limit, which costs entries, never memory. */
uint64_t logrl_key_string(const char *s);
