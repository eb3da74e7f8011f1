/* metrics.c — see metrics.h. The format: https://prometheus.io/docs/instrumenting/exposition_formats/
 * (lines "# HELP name text", "# TYPE name type", then "name{label="value"} value"). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "metrics.h"

static const char *const type_table[_METRIC_TYPE_MAX] = {
	[METRIC_GAUGE] = "gauge",
	[METRIC_COUNTER] = "counter",
};

/* HELP text escapes backslash and newline; label values also the double quote. */
static void write_escaped(FILE *f, const char *s, bool quote) {
	for (; s && *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (quote && *s == '"')
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

const char *metrics_format_value(double v, char *buf, size_t size) {
	if (isnan(v))
		snprintf(buf, size, "NaN");
	else if (isinf(v))
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double) (int64_t) v)
		/* Below 2^53 in size an integer is exact: no fraction, no exponent. */
		snprintf(buf, size, "%" PRId64, (int64_t) v);
	else
		snprintf(buf, size, "%.17g", v);
	return buf;
}

void metrics_write_family(FILE *f, const char *name, MetricType type, const char *help) {
	fprintf(f, "# HELP %s ", name);
	write_escaped(f, help, false);
	fprintf(f, "\n# TYPE %s %s\n", name, type_table[type]);
}

void metrics_write_sample(FILE *f, const char *name, const char *const *labels, const char *const *values,
                          size_t n_labels, double value) {
	char buf[32];

	fputs(name, f);
	if (n_labels > 0) {
		fputc('{', f);
		for (size_t i = 0; i < n_labels; i++) {
			fprintf(f, "%s%s=\"", i > 0 ? "," : "", labels[i]);
			write_escaped(f, values[i], true);
			fputc('"', f);
		}
		fputc('}', f);
	}
	fprintf(f, " %s\n", metrics_format_value(value, buf, sizeof buf));
}

static void one(FILE *f, const char *name, MetricType type, const char *help, double value) {
	metrics_write_family(f, name, type, help);
	metrics_write_sample(f, name, NULL, NULL, 0, value);
}

static void rows(FILE *f, const char *name, MetricType type, const char *help, const char *label_a,
                 const char *label_b, const MetricsRow *r, size_t n) {
	const char *labels[2] = { label_a, label_b };

	metrics_write_family(f, name, type, help);
	for (size_t i = 0; i < n; i++) {
		const char *values[2] = { r[i].a, r[i].b };

		metrics_write_sample(f, name, labels, values, label_b ? 2 : 1, r[i].value);
	}
}

static double seconds(usec_t t) {
	return t == USEC_INFINITY ? INFINITY : (double) (t / USEC_PER_SEC);
}

int metrics_format(const MetricsSnapshot *s, char **ret_text, size_t *ret_len) {
	_cleanup_(freep) char *text = NULL;
	size_t len = 0;
	bool failed;
	FILE *f;

	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;

	metrics_write_family(f, "hitld_info", METRIC_GAUGE, "hitld's version (always 1).");
	metrics_write_sample(f, "hitld_info", (const char *const[]) { "version" }, (const char *const[]) { s->version }, 1,
	                     1);
	one(f, "hitld_start_time_seconds", METRIC_GAUGE, "When hitld started, seconds since the epoch.",
	    seconds(s->started_at));

	one(f, "hitld_budget_limit", METRIC_GAUGE, "HITL.sh calls the key may make in the current window.",
	    s->budget_limit);
	one(f, "hitld_budget_used", METRIC_GAUGE, "HITL.sh calls counted in the current window.", s->budget_used);
	one(f, "hitld_budget_remaining", METRIC_GAUGE, "HITL.sh calls left in the current window (0 while rate-limited).",
	    s->budget_remaining);
	one(f, "hitld_budget_window_seconds", METRIC_GAUGE, "Length of the rate-limit window.", seconds(s->budget_window));
	one(f, "hitld_budget_reset_timestamp_seconds", METRIC_GAUGE,
	    "When the current window ends, seconds since the epoch.", seconds(s->budget_reset_at));
	one(f, "hitld_budget_from_server", METRIC_GAUGE,
	    "1 when the window and count are as HITL.sh last reported them, 0 before it has.", s->budget_from_server);
	one(f, "hitld_budget_paused_until_timestamp_seconds", METRIC_GAUGE,
	    "After a 429: no calls before this time, seconds since the epoch; 0 when not paused.",
	    seconds(s->budget_paused_until));
	one(f, "hitld_rate_limited_total", METRIC_COUNTER, "429 answers HITL.sh gave hitld.", s->budget_429s);
	one(f, "hitld_budget_creates_per_window", METRIC_GAUGE,
	    "Creates a whole window allows: the limit less the poll reserve.", s->creates_per_window);
	one(f, "hitld_budget_decisions_per_hour", METRIC_GAUGE,
	    "Decisions an hour the budget yields at most (one create each).", s->decisions_per_hour);

	rows(f, "hitld_requests", METRIC_GAUGE, "Requests in the outbox by state.", "state", NULL, s->requests,
	     s->n_requests);
	one(f, "hitld_backlog_drain_seconds", METRIC_GAUGE,
	    "How long until every queued request has been created at the budget's pace; NaN while creates are held.",
	    s->drain_known ? (s->drain == USEC_INFINITY ? INFINITY : (double) s->drain / (double) USEC_PER_SEC) : NAN);

	one(f, "hitld_api_reachable", METRIC_GAUGE, "1 when HITL.sh answered the last call, else 0.", s->api_reachable);
	one(f, "hitld_api_last_success_timestamp_seconds", METRIC_GAUGE,
	    "When HITL.sh last answered, seconds since the epoch; 0 never.", seconds(s->api_last_ok_at));
	one(f, "hitld_api_consecutive_failures", METRIC_GAUGE, "Failed HITL.sh calls in a row.",
	    s->api_consecutive_failures);
	one(f, "hitld_creates_paused", METRIC_GAUGE,
	    "1 while creates pause for an error about the key, account or endpoint (the circuit breaker).",
	    s->creates_paused);
	one(f, "hitld_loops_paused", METRIC_GAUGE, "Loops whose creates pause (no active members).",
	    (double) s->loops_paused);
	one(f, "hitld_queue_paused", METRIC_GAUGE, "1 while an administrator has paused all HITL.sh traffic.",
	    s->queue_paused);
	rows(f, "hitld_key_state", METRIC_GAUGE, "The API key's state: 1 for the current one.", "state", NULL,
	     s->key_states, s->n_key_states);

	if (s->has_usage) {
		rows(f, "hitld_api_calls_total", METRIC_COUNTER, "HITL.sh calls hitld made, by kind and outcome.", "kind",
		     "outcome", s->calls, s->n_calls);
		one(f, "hitld_decisions_total", METRIC_COUNTER, "Requests finished with a reviewer's answer.",
		    (double) s->decisions);
		one(f, "hitld_defaults_total", METRIC_COUNTER, "Requests finished with their default response.",
		    (double) s->defaults);
		one(f, "hitld_foreign_calls_total", METRIC_COUNTER,
		    "Calls made with hitld's key that hitld did not make (someone else uses the key).",
		    (double) s->foreign_calls);
	}

	failed = ferror(f);
	if (fclose(f) != 0 || failed)
		return -ENOMEM;
	if (!text)
		return -ENOMEM;
	*ret_text = TAKE_PTR(text);
	if (ret_len)
		*ret_len = len;
	return 0;
}
