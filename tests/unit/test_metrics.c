/* metrics.c: the Prometheus text format — families once, HELP and TYPE
 * before the samples, escaping, special values, the usage families only when
 * the usage history is there. tests/integration/test_metrics.py feeds the
 * daemon's output to a real parser. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static const MetricsRow requests[] = {
	{ "queued", NULL, 7 }, { "pending", NULL, 2 }, { "completed", NULL, 40 },
};
static const MetricsRow key_states[] = {
	{ "missing", NULL, 0 }, { "unknown", NULL, 0 }, { "valid", NULL, 1 }, { "invalid", NULL, 0 },
};
static const MetricsRow calls[] = {
	{ "create", "2xx", 12 }, { "poll", "2xx", 30 }, { "create", "429", 1 },
};

static MetricsSnapshot snapshot(void) {
	return (MetricsSnapshot) {
		.version = "0.1.0",
		.started_at = 1795874400 * USEC_PER_SEC + 123456,
		.budget_limit = 100,
		.budget_used = 37,
		.budget_remaining = 63,
		.budget_window = USEC_PER_HOUR,
		.budget_reset_at = 1795878000 * USEC_PER_SEC,
		.budget_from_server = true,
		.budget_429s = 2,
		.creates_per_window = 90,
		.decisions_per_hour = 90,
		.requests = requests,
		.n_requests = 3,
		.drain_known = true,
		.drain = 5400 * USEC_PER_SEC + 500000,
		.api_reachable = true,
		.api_last_ok_at = 1795875000 * USEC_PER_SEC,
		.key_states = key_states,
		.n_key_states = 4,
		.has_usage = true,
		.calls = calls,
		.n_calls = 3,
		.decisions = 9,
		.defaults = 3,
		.foreign_calls = 4,
	};
}

static char *format(const MetricsSnapshot *s) {
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_format(s, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

static bool has_line(const char *text, const char *line) {
	size_t n = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static void test_metrics_values_and_names(void **state) {
	MetricsSnapshot s = snapshot();
	char *text = format(&s);

	assert_true(has_line(text, "hitld_info{version=\"0.1.0\"} 1"));
	assert_true(has_line(text, "hitld_start_time_seconds 1795874400"));
	assert_true(has_line(text, "# TYPE hitld_budget_limit gauge"));
	assert_true(has_line(text, "hitld_budget_limit 100"));
	assert_true(has_line(text, "hitld_budget_used 37"));
	assert_true(has_line(text, "hitld_budget_remaining 63"));
	assert_true(has_line(text, "hitld_budget_window_seconds 3600"));
	assert_true(has_line(text, "hitld_budget_reset_timestamp_seconds 1795878000"));
	assert_true(has_line(text, "hitld_budget_paused_until_timestamp_seconds 0"));
	assert_true(has_line(text, "# TYPE hitld_rate_limited_total counter"));
	assert_true(has_line(text, "hitld_rate_limited_total 2"));
	assert_true(has_line(text, "hitld_budget_decisions_per_hour 90"));
	assert_true(has_line(text, "hitld_requests{state=\"queued\"} 7"));
	assert_true(has_line(text, "hitld_requests{state=\"completed\"} 40"));
	assert_true(has_line(text, "hitld_backlog_drain_seconds 5400.5"));
	assert_true(has_line(text, "hitld_key_state{state=\"valid\"} 1"));
	assert_true(has_line(text, "hitld_key_state{state=\"missing\"} 0"));
	assert_true(has_line(text, "# TYPE hitld_api_calls_total counter"));
	assert_true(has_line(text, "hitld_api_calls_total{kind=\"create\",outcome=\"2xx\"} 12"));
	assert_true(has_line(text, "hitld_api_calls_total{kind=\"create\",outcome=\"429\"} 1"));
	assert_true(has_line(text, "hitld_decisions_total 9"));
	assert_true(has_line(text, "hitld_defaults_total 3"));
	assert_true(has_line(text, "hitld_foreign_calls_total 4"));
	free(text);
}

/* Every sample's family was introduced by HELP then TYPE, once, before it. */
static void test_metrics_families_once_help_type_before_samples(void **state) {
	MetricsSnapshot s = snapshot();
	char *text = format(&s), *save = NULL;
	char helped[64][96] = {}, typed[64][96] = {};
	size_t n_help = 0, n_type = 0, n_samples = 0;

	assert_true(text[strlen(text) - 1] == '\n');
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96];

		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%95s", name), 1);
			for (size_t i = 0; i < n_help; i++)
				assert_string_not_equal(helped[i], name);
			assert_true(n_help < 64);
			strcpy(helped[n_help++], name);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char type[16];

			assert_int_equal(sscanf(line + 7, "%95s %15s", name, type), 2);
			assert_true(n_help > 0);
			assert_string_equal(helped[n_help - 1], name);
			assert_int_equal(n_type, n_help - 1);
			assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0);
			if (strcmp(type, "counter") == 0)
				assert_non_null(strstr(name, "_total"));
			strcpy(typed[n_type++], name);
			continue;
		}
		assert_true(line[0] != '#');
		snprintf(name, sizeof name, "%s", line);
		name[strcspn(name, "{ ")] = '\0';
		assert_true(n_type > 0);
		assert_string_equal(typed[n_type - 1], name);
		assert_true(strncmp(name, "hitld_", 6) == 0);
		n_samples++;
	}
	assert_int_equal(n_help, n_type);
	assert_true(n_samples > n_type);
	free(text);
}

static void test_metrics_without_usage_or_forecast(void **state) {
	MetricsSnapshot s = snapshot();
	char *text;

	s.has_usage = false;
	s.drain_known = false;
	text = format(&s);
	assert_null(strstr(text, "hitld_api_calls_total"));
	assert_null(strstr(text, "hitld_decisions_total"));
	assert_true(has_line(text, "hitld_backlog_drain_seconds NaN"));
	free(text);
}

static void test_metrics_escapes_label_values_and_help(void **state) {
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	metrics_write_family(f, "x", METRIC_GAUGE, "a \\ b\nc \"d\"");
	metrics_write_sample(f, "x", (const char *const[]) { "l", "m" }, (const char *const[]) { "q\"\\\nz", "" }, 2,
	                     -3);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(text, "# HELP x a \\\\ b\\nc \"d\"\n"
	                          "# TYPE x gauge\n"
	                          "x{l=\"q\\\"\\\\\\nz\",m=\"\"} -3\n");
	free(text);
}

static void test_metrics_values(void **state) {
	char buf[32];

	assert_string_equal(metrics_format_value(0, buf, sizeof buf), "0");
	assert_string_equal(metrics_format_value(42, buf, sizeof buf), "42");
	assert_string_equal(metrics_format_value(-7, buf, sizeof buf), "-7");
	assert_string_equal(metrics_format_value(0.5, buf, sizeof buf), "0.5");
	assert_string_equal(metrics_format_value(1e300, buf, sizeof buf), "1.0000000000000001e+300");
	assert_string_equal(metrics_format_value(NAN, buf, sizeof buf), "NaN");
	assert_string_equal(metrics_format_value(INFINITY, buf, sizeof buf), "+Inf");
	assert_string_equal(metrics_format_value(-INFINITY, buf, sizeof buf), "-Inf");
	assert_string_equal(metrics_format_value(18446744073709551615.0, buf, sizeof buf), "1.8446744073709552e+19");
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_values_and_names),
		cmocka_unit_test(test_metrics_families_once_help_type_before_samples),
		cmocka_unit_test(test_metrics_without_usage_or_forecast),
		cmocka_unit_test(test_metrics_escapes_label_values_and_help),
		cmocka_unit_test(test_metrics_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
