/* ctl_verbs_usage.c — hitlctl usage: where the API calls went (the `usage`
 * method), as a table by kind, uid or loop, or calls per hour as a bar chart
 * with the hourly limit marked. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_output.h"

#define BAR_WIDTH_MAX 60

static int usage_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	HitlUsageFilter *a = userdata;

	switch (opt) {
	case 's':
		a->since = arg;
		return 0;
	case 'b':
		a->by = arg;
		return 0;
	default:
		return EXIT_USAGE;
	}
}

static int64_t outcome(json_object *row, const char *name) {
	int64_t n = 0;

	jint(json_object_object_get(row, "outcomes"), name, &n);
	return n;
}

/* By loop, a workflow's row (its triggers' calls) reads "workflow:ID". */
static const char *row_key(json_object *row, const char *by, char *buf, size_t size) {
	if (streq(by, "loop") && jstr(row, "workflow_id")) {
		snprintf(buf, size, "workflow:%s", jstr(row, "workflow_id"));
		return buf;
	}
	if (streq(by, "loop"))
		return jstr(row, "loop_id") ? jstr(row, "loop_id") : "(none)";
	return strna(jstr(row, by));
}

static int print_table(json_object *res, const char *by) {
	static const char *const outcomes[] = { "2xx", "4xx", "429", "5xx", "no_reply" };
	json_object *rows = json_object_object_get(res, "rows"), *total = json_object_object_get(res, "total");
	Table t = { .n_columns = 8, .headers = { NULL, "CALLS", "2XX", "4XX", "429", "5XX", "NO-REPLY", "DECISIONS" } };
	char cells[8][40], key[40];
	const char *values[8];
	int64_t unsent = 0, defaults = 0;
	int k = 0;

	t.headers[0] = streq(by, "uid") ? "UID" : streq(by, "loop") ? "LOOP" : "KIND";
	for (size_t i = 0; i <= json_object_array_length(rows) && k >= 0; i++) {
		json_object *row = i < json_object_array_length(rows) ? json_object_array_get_idx(rows, i) : total;
		int64_t calls = 0, decisions = 0;

		jint(row, "calls", &calls);
		jint(row, "decisions", &decisions);
		snprintf(cells[0], sizeof cells[0], "%s", row == total ? "total" : row_key(row, by, key, sizeof key));
		snprintf(cells[1], sizeof cells[1], "%" PRId64, calls);
		for (size_t o = 0; o < ELEMENTSOF(outcomes); o++)
			snprintf(cells[2 + o], sizeof cells[2 + o], "%" PRId64, outcome(row, outcomes[o]));
		snprintf(cells[7], sizeof cells[7], "%" PRId64, decisions);
		for (size_t c = 0; c < 8; c++)
			values[c] = cells[c];
		k = table_add(&t, values);
	}
	if (k >= 0)
		table_print(&t);
	table_free(&t);
	if (k < 0)
		return usage_error("out of memory");
	unsent = outcome(total, "unsent");
	jint(total, "defaults", &defaults);
	printf("\n%" PRId64 " request%s ended with their default.", defaults, defaults == 1 ? "" : "s");
	if (unsent > 0)
		printf(" %" PRId64 " call%s never reached HITL.sh (not counted).", unsent, unsent == 1 ? "" : "s");
	putchar('\n');
	return 0;
}

/* Calls per hour as bars, '|' where the hourly limit is. */
static void print_chart(json_object *res) {
	json_object *rows = json_object_object_get(res, "rows");
	int64_t limit = 0, max = 0;
	size_t n = json_object_array_length(rows);
	int width = terminal_columns() - 26, mark;

	jint(res, "limit_per_hour", &limit);
	if (width > BAR_WIDTH_MAX)
		width = BAR_WIDTH_MAX;
	if (width < 10)
		width = 10;
	for (size_t i = 0; i < n; i++) {
		int64_t calls = 0;

		jint(json_object_array_get_idx(rows, i), "calls", &calls);
		if (calls > max)
			max = calls;
	}
	if (limit > max)
		max = limit;
	if (max == 0)
		max = 1;
	mark = limit > 0 ? (int) (limit * width / max) : -1;
	printf("Calls per hour (local time); '|' marks the limit %" PRId64 "/h%s\n", limit,
	       streq_ptr(jstr(res, "scope"), "own") ? "; your calls only" : "");
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(rows, i);
		int64_t calls = 0;
		char when[32] = "?";
		time_t t;
		struct tm tm;
		int len;

		jint(row, "calls", &calls);
		if (jstr(row, "hour") && hitl_time_parse(jstr(row, "hour"), &t) >= 0 && localtime_r(&t, &tm))
			strftime(when, sizeof when, "%m-%d %H:00", &tm);
		len = (int) (calls * width / max);
		if (calls > 0 && len == 0)
			len = 1;
		printf("%s ", when);
		for (int c = 0; c <= (len > mark ? len : mark); c++)
			putchar(c == mark ? '|' : c < len ? '#' : ' ');
		printf(" %" PRId64 "\n", calls);
	}
}

int verb_usage(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "since", required_argument, NULL, 's' },
		{ "by", required_argument, NULL, 'b' },
		{},
	};
	_cleanup_(json_object_putp) json_object *res = NULL;
	HitlUsageFilter a = { .since = "24h", .by = "kind" };
	char when[96];
	int k;

	k = parse_options(ctl, argc, argv, "s:b:", opts, usage_option, &a);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc)
		return usage_error("usage takes no arguments.");
	if (!streq(a.by, "kind") && !streq(a.by, "uid") && !streq(a.by, "loop") && !streq(a.by, "hour"))
		return usage_error("usage: --by must be kind, uid, loop or hour.");
	k = ctl_connect(ctl);
	if (k)
		return k;
	k = hitl_usage(ctl->client, &a, &res, &ctl->error);
	if (k < 0)
		return report_call_error(ctl, k, "usage");
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	printf("HITL.sh calls since %s, %s\n\n", format_when(jstr(res, "since"), when, sizeof when) ? when : "?",
	       streq_ptr(jstr(res, "scope"), "own") ? "your own" : "everyone's (and foreign ones)");
	if (streq(a.by, "hour")) {
		print_chart(res);
		return 0;
	}
	return print_table(res, a.by);
}
