/* metrics.h — hitld's figures in the Prometheus text exposition format
 * (version 0.0.4), pure: a MetricsSnapshot in, the text out; no I/O, no
 * clock, no Manager (telemetry.c fills the snapshot, the socket method
 * "metrics" and the textfile for node_exporter print it). Promises text any
 * Prometheus parser accepts: every family once, HELP and TYPE before its
 * samples, label values and help escaped, counters named *_total, times in
 * seconds. Which metrics there are, and what each means, is hitld(8)
 * "METRICS"; tests/unit/test_metrics.c and tests/integration/test_metrics.py
 * (a real parser) check it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "timeutil.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum MetricType {
	METRIC_GAUGE,
	METRIC_COUNTER,
	_METRIC_TYPE_MAX,
} MetricType;

/* One sample of a family with one or two labels (b NULL: one). */
typedef struct MetricsRow {
	const char *a, *b;
	double value;
} MetricsRow;

typedef struct MetricsSnapshot {
	const char *version;
	usec_t started_at;

	/* The budget ledger (budget.h), its current window. */
	unsigned budget_limit, budget_used, budget_remaining;
	usec_t budget_window;           /* length */
	usec_t budget_reset_at;         /* the current window's end */
	usec_t budget_paused_until;     /* after a 429; 0: not paused */
	bool budget_from_server;
	unsigned budget_429s;           /* 429s seen, persisted */
	unsigned creates_per_window;    /* forecast.h */
	double decisions_per_hour;

	/* Requests by state (label "state"); the backlog forecast. */
	const MetricsRow *requests;
	size_t n_requests;
	bool drain_known;               /* false: creates are held, no forecast */
	usec_t drain;                   /* how long the backlog takes to be created */

	/* HITL.sh and the key. */
	bool api_reachable;
	usec_t api_last_ok_at;          /* 0: never */
	unsigned api_consecutive_failures;
	bool creates_paused;            /* the circuit breaker */
	size_t loops_paused;
	bool queue_paused;              /* hitlctl pause */
	const MetricsRow *key_states;   /* one row per key state, 1 for the current one */
	size_t n_key_states;

	/* The usage history (usage.h); has_usage false: the families are left out. */
	bool has_usage;
	const MetricsRow *calls;        /* (kind, outcome) */
	size_t n_calls;
	uint64_t decisions, defaults, foreign_calls;
} MetricsSnapshot;

/* The whole exposition, NUL-terminated, in *ret_text (malloc'd), its length
 * in *ret_len. -ENOMEM. */
int metrics_format(const MetricsSnapshot *s, char **ret_text, size_t *ret_len);

/* The parts, for the tests and for anyone adding a family. labels holds
 * n_labels names, values as many values. */
void metrics_write_family(FILE *f, const char *name, MetricType type, const char *help);
void metrics_write_sample(FILE *f, const char *name, const char *const *labels, const char *const *values,
                          size_t n_labels, double value);
/* A sample value as the format wants it: integers without a fraction, NaN,
 * +Inf, -Inf. buf of at least 32 bytes. */
const char *metrics_format_value(double v, char *buf, size_t size);
