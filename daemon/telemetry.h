/* telemetry.h — hitld's figures for people and for monitoring, read from the
 * engine's state and changing none of it: the backlog forecast of status
 * (forecast.h), the Prometheus metrics of the "metrics" method and of the
 * textfile for node_exporter (metrics.h), and the backlog warnings in the
 * journal, each once per condition (hitld(8) "FORECASTS AND WARNINGS").
 * The manager holds one Telemetry (m->telemetry) and tells it of each work
 * turn and change of state (telemetry_observe) and of a reload
 * (telemetry_reload). The textfile
 * (metrics.textfile) is rewritten every metrics.interval_s seconds through
 * store.h (tmp, fsync, rename, fsync dir: never half a file), mode 0644; a
 * failed write is logged once per failure streak. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "forecast.h"
#include "rpc.h"
#include "status_reply.h"
#include "timeutil.h"

typedef struct Manager Manager;
typedef struct Telemetry Telemetry;

int telemetry_new(Manager *m, Telemetry **ret);
Telemetry *telemetry_free(Telemetry *t);

/* A work turn or a change of state (manager.c's on_work_timer and status
 * defer): logs the backlog warnings due now. O(1); t may be NULL. */
void telemetry_observe(Telemetry *t, usec_t now);
/* The configuration was reloaded: the textfile's path and interval may have
 * changed; it is written at once. */
void telemetry_reload(Telemetry *t);
/* Writes the textfile now (no-op without metrics.textfile). */
int telemetry_write_textfile(Telemetry *t);

/* The forecast as status and the metrics show it. all: the whole queue
 * (admins), else uid's own requests only — and then no drain time, which
 * would tell how much of others' work stands before them. */
typedef struct TelemetryForecast {
	uint64_t backlog;          /* queued creates */
	const char *held;          /* why creates are held, or NULL */
	bool drain_known;          /* drain is meaningful */
	ForecastDrain drain;
	uint64_t decisions_per_hour;
} TelemetryForecast;

void telemetry_forecast(Manager *m, bool all, uid_t uid, usec_t now, TelemetryForecast *ret);
/* The facts of status's "forecast" object (PROTOCOL.md; status_reply.h). */
void telemetry_status_facts(Manager *m, bool all, uid_t uid, usec_t now, StatusFacts *ret);

/* The Prometheus text: for an admin (all) the whole daemon, else the budget
 * and uid's own requests. *ret_text malloc'd. */
int telemetry_metrics(Manager *m, bool all, uid_t uid, usec_t now, char **ret_text, size_t *ret_len);
/* The "metrics" method (PROTOCOL.md): {content_type, text}; params were checked. */
void telemetry_method_metrics(Manager *m, RpcCall *call, bool admin);
