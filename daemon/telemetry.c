/* telemetry.c — see telemetry.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "msgid.h"
#include "store.h"
#include "telemetry.h"
#include "usage_store.h"

struct Telemetry {
	Manager *manager;
	ForecastWatch watch;
	sd_event_source *timer;     /* the textfile's, CLOCK_MONOTONIC; off without a textfile */
	char *written;              /* the textfile last written, removed when the path changes */
	bool write_failed;          /* this failure streak was logged */
};

/* Why creates cannot go at the budget's pace now, or NULL. */
static const char *creates_held(Manager *m) {
	if (m->paused)
		return "queue_paused";
	if (m->key_state == KEY_MISSING)
		return "key_missing";
	if (m->key_state == KEY_INVALID)
		return "key_refused";
	if (m->breaker != APIERR_NONE)
		return "creates_paused";
	return NULL;
}

static uint64_t queued(Manager *m, bool all, uid_t uid) {
	return all ? outbox_count_state(m->outbox, REQUEST_QUEUED) : outbox_count_state_uid(m->outbox, uid, REQUEST_QUEUED);
}

void telemetry_forecast(Manager *m, bool all, uid_t uid, usec_t now, TelemetryForecast *ret) {
	*ret = (TelemetryForecast) {
		.backlog = queued(m, all, uid),
		.held = creates_held(m),
	};
	forecast_drain(&m->budget, all ? ret->backlog : 0, now, &ret->drain);
	ret->drain_known = all && !ret->held;
	ret->decisions_per_hour = (uint64_t) forecast_decisions_per_hour(&m->budget, now);
}

void telemetry_status_facts(Manager *m, bool all, uid_t uid, usec_t now, StatusFacts *ret) {
	StatusNumbers *n = &ret->num;
	TelemetryForecast f;

	telemetry_forecast(m, all, uid, now, &f);
	n->backlog = (int64_t) f.backlog;
	ret->str[STATUS_FORECAST_HELD] = f.held;
	/* Nothing queued: drained now, no time to name. In whole seconds, as
	 * shown: a time that moves with now must not rebuild status's text on
	 * every call. */
	n->drain_at = f.drain_known && f.backlog > 0 && f.drain.done_at != USEC_INFINITY
	                      ? (int64_t) (f.drain.done_at / USEC_PER_SEC * USEC_PER_SEC)
	                      : 0;
	n->drain_seconds_null = !(f.drain_known && f.drain.duration != USEC_INFINITY);
	n->drain_seconds = n->drain_seconds_null ? 0 : (int64_t) (f.drain.duration / USEC_PER_SEC);
	n->creates_per_window = f.drain.creates_per_window;
	n->decisions_per_hour = (int64_t) f.decisions_per_hour;
}

int telemetry_metrics(Manager *m, bool all, uid_t uid, usec_t now, char **ret_text, size_t *ret_len) {
	MetricsRow requests[_REQUEST_STATE_MAX], keys[_KEY_STATE_MAX];
	MetricsRow calls[_USAGE_CALL_KIND_MAX * _USAGE_OUTCOME_MAX];
	size_t n_calls = 0;
	UsageTotals totals = {};
	TelemetryForecast f;
	MetricsSnapshot s;
	Budget b;

	/* The ledger as status shows it: rolled to now. */
	b = m->budget;
	budget_tick(&b, now);
	telemetry_forecast(m, all, uid, now, &f);
	for (RequestState st = 0; st < _REQUEST_STATE_MAX; st++)
		requests[st] = (MetricsRow) {
			.a = request_state_to_string(st),
			.value = (double) (all ? outbox_count_state(m->outbox, st) : outbox_count_state_uid(m->outbox, uid, st)),
		};
	for (KeyState k = 0; k < _KEY_STATE_MAX; k++)
		keys[k] = (MetricsRow) { .a = key_state_to_string(k), .value = m->key_state == k };
	/* The usage history's totals only grow (a counter's promise); they are
	 * everyone's, so an admin's. Every kind and outcome is there from the
	 * start, 0 until it happens. Others' calls are hitld_foreign_calls_total. */
	if (all && m->usage) {
		usage_store_totals(m->usage, &totals);
		for (UsageKind k = 0; k < _USAGE_CALL_KIND_MAX; k++)
			for (UsageOutcome o = 0; o < _USAGE_OUTCOME_MAX; o++)
				if (k != USAGE_FOREIGN && o != USAGE_NONE)
					calls[n_calls++] = (MetricsRow) {
						.a = usage_kind_to_string(k),
						.b = usage_outcome_to_string(o),
						.value = (double) totals.calls[k][o],
					};
	}

	s = (MetricsSnapshot) {
		.version = HITLD_VERSION,
		.started_at = m->started_at,
		.budget_limit = b.limit,
		.budget_used = b.used,
		.budget_remaining = budget_remaining(&b, now),
		.budget_window = usec_sub(b.window_end, b.window_start),
		.budget_reset_at = b.window_end,
		.budget_paused_until = b.paused_until > now ? b.paused_until : 0,
		.budget_from_server = b.from_server,
		.budget_429s = b.over_limit_429s,
		.creates_per_window = f.drain.creates_per_window,
		.decisions_per_hour = (double) f.decisions_per_hour,
		.requests = requests,
		.n_requests = _REQUEST_STATE_MAX,
		.drain_known = f.drain_known,
		.drain = f.drain.duration,
		.api_reachable = m->reachable,
		.api_last_ok_at = m->last_ok_at,
		.api_consecutive_failures = m->consecutive_failures,
		.creates_paused = m->breaker != APIERR_NONE,
		.loops_paused = m->n_loop_pauses,
		.queue_paused = m->paused,
		.key_states = keys,
		.n_key_states = _KEY_STATE_MAX,
		.has_usage = all && m->usage,
		.calls = calls,
		.n_calls = n_calls,
		.decisions = totals.calls[USAGE_DECISION][USAGE_NONE],
		.defaults = totals.calls[USAGE_DEFAULT][USAGE_NONE],
		.foreign_calls = totals.calls[USAGE_FOREIGN][USAGE_NONE],
	};
	return metrics_format(&s, ret_text, ret_len);
}

void telemetry_method_metrics(Manager *m, RpcCall *call, bool admin) {
	_cleanup_(freep) char *text = NULL;
	json_object *result;

	if (telemetry_metrics(m, admin, rpc_call_uid(call), now_realtime(), &text, NULL) < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	result = json_object_new_object();
	json_object_object_add(result, "content_type", json_object_new_string(METRICS_CONTENT_TYPE));
	json_object_object_add(result, "text", json_object_new_string(text));
	rpc_call_reply(call, result);
}

/* ------------------------------------------------------------------ warnings */

static char *format_span(usec_t d, char *buf, size_t size) {
	uint64_t s = d / USEC_PER_SEC;

	if (d == USEC_INFINITY)
		snprintf(buf, size, "ever");
	else if (s >= 86400)
		snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else
		snprintf(buf, size, "%" PRIu64 "h %02" PRIu64 "m", s / 3600, s % 3600 / 60);
	return buf;
}

void telemetry_observe(Telemetry *t, usec_t now) {
	Manager *m;
	ForecastObservation o;
	ForecastWarnings w;
	char n[24], limit[16], drain[24], at[ISO8601_MAX], span[32], window[32];

	if (!t)
		return;
	m = t->manager;
	o = (ForecastObservation) {
		.now = now,
		.budget = &m->budget,
		.backlog = queued(m, true, 0),
		.held = creates_held(m) != NULL,
		.paused = m->paused,
		.warn_drain = (usec_t) m->config->budget_warn_drain_hours * USEC_PER_HOUR,
	};
	forecast_watch(&t->watch, &o, &w);
	snprintf(n, sizeof n, "%" PRIu64, o.backlog);
	snprintf(limit, sizeof limit, "%u", m->budget.limit);
	if (w.long_drain) {
		snprintf(drain, sizeof drain, "%" PRIu64, w.drain.duration / USEC_PER_SEC);
		log_event(LOG_WARNING, MID_BACKLOG_SLOW,
		          LOG_FIELDS({ "HITL_QUEUED", n }, { "HITL_DRAIN_SECONDS", drain }, { "HITL_BUDGET_LIMIT", limit }),
		          "%s queued requests take until %s (%s) to be created at the budget's pace of %u creates per "
		          "%s window, longer than budget.warn_drain_hours (%u).",
		          n, w.drain.done_at == USEC_INFINITY ? "never" : format_iso8601(w.drain.done_at, at),
		          format_span(w.drain.duration, span, sizeof span), w.drain.creates_per_window,
		          format_span(w.drain.window, window, sizeof window), m->config->budget_warn_drain_hours);
	}
	if (w.window_rolled)
		log_debug("A budget window ended: %" PRIu64 " requests queued at its last look, %s now.", w.waited, n);
	if (w.window_ended)
		log_event(LOG_WARNING, MID_WINDOW_ENDED_WAITING,
		          LOG_FIELDS({ "HITL_QUEUED", n }, { "HITL_BUDGET_LIMIT", limit }),
		          "The budget window ended at %s with %s requests still waiting to be created; they go in the "
		          "windows to come (said once until a window ends with none waiting).",
		          format_iso8601(w.window_end, at), n);
}

/* ------------------------------------------------------------------ the textfile */

static int open_parent(const char *path, const char **ret_name) {
	_cleanup_(freep) char *dir = NULL;
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash || !slash[1])
		return -EINVAL;
	dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_name = slash + 1;
	return fd;
}

int telemetry_write_textfile(Telemetry *t) {
	Manager *m = t->manager;
	const char *path = m->config->metrics_textfile, *name = NULL;
	_cleanup_(freep) char *text = NULL;
	_cleanup_(closep) int dirfd = -EBADF;
	size_t len = 0;
	int k;

	if (!path)
		return 0;
	k = telemetry_metrics(m, true, 0, now_realtime(), &text, &len);
	if (k >= 0) {
		dirfd = open_parent(path, &name);
		k = dirfd;
	}
	if (k >= 0)
		k = store_write_file_mode(dirfd, name, text, len, 0644);
	if (k < 0) {
		if (!t->write_failed)
			log_warning_errno(k, "Cannot write the metrics textfile %s (trying again every %u s): %m", path,
			                  m->config->metrics_interval_s);
		t->write_failed = true;
		return k;
	}
	if (t->write_failed)
		log_info("Metrics textfile %s written again.", path);
	t->write_failed = false;
	if (!t->written)
		t->written = strdup(path);   /* without memory, only the removal below is missed */
	return 0;
}

/* A textfile no longer named would go on being scraped with figures that no
 * longer change: remove it. */
static void forget_old_textfile(Telemetry *t) {
	const char *path = t->manager->config->metrics_textfile;

	if (!t->written || streq_ptr(t->written, path))
		return;
	if (unlink(t->written) < 0 && errno != ENOENT)
		log_warning_errno(errno, "Cannot remove the old metrics textfile %s: %m", t->written);
	free(t->written);
	t->written = NULL;
}

static void arm(Telemetry *t, usec_t after) {
	if (!t->manager->config->metrics_textfile) {
		(void) sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
		return;
	}
	if (sd_event_source_set_time_relative(t->timer, after) < 0 ||
	    sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT) < 0)
		log_warning("Cannot schedule the metrics textfile; it is not written until the next reload.");
}

static int on_textfile_timer(sd_event_source *source, uint64_t usec, void *userdata) {
	Telemetry *t = userdata;

	if (t->manager->shutting_down)
		return 0;
	(void) telemetry_write_textfile(t);
	arm(t, (usec_t) t->manager->config->metrics_interval_s * USEC_PER_SEC);
	return 0;
}

void telemetry_reload(Telemetry *t) {
	if (!t)
		return;
	forget_old_textfile(t);
	t->write_failed = false;
	arm(t, 0);
}

int telemetry_new(Manager *m, Telemetry **ret) {
	_cleanup_(freep) Telemetry *t = NULL;
	int k;

	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->manager = m;
	k = sd_event_add_time_relative(m->event, &t->timer, CLOCK_MONOTONIC, 0, USEC_PER_SEC, on_textfile_timer, t);
	if (k < 0)
		return k;
	arm(t, 0);
	*ret = TAKE_PTR(t);
	return 0;
}

Telemetry *telemetry_free(Telemetry *t) {
	if (!t)
		return NULL;
	sd_event_source_disable_unref(t->timer);
	free(t->written);
	free(t);
	return NULL;
}
