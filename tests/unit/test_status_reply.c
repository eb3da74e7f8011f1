/* status_reply: status's JSON from its facts, and the kept text — rebuilt
 * whenever any fact differs, reused while none does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierr.h"
#include "cleanup.h"
#include "status_reply.h"

#define T0 ((int64_t) 1764936000 * (int64_t) USEC_PER_SEC)   /* 2025-12-05T12:00:00Z */

static const StatusLoop two_loops[] = {
	{ "65f1234567890abcdef12345", "no active members", (usec_t) T0 + 60 * USEC_PER_SEC },
	{ "65f1234567890abcdef12346", NULL, (usec_t) T0 + 120 * USEC_PER_SEC },
};

static StatusFacts sample_facts(void) {
	StatusFacts f = {
		.num = {
			.started_at = T0, .uptime_s = 7980,
			.limit = 100, .remaining = 37, .used = 63, .reset_at = T0 + 3600 * (int64_t) USEC_PER_SEC,
			.from_server = 1, .interactive_share = 5, .interactive_used = 1, .interactive_total = 20,
			.counts = { [REQUEST_QUEUED] = 2, [REQUEST_PENDING] = 1, [REQUEST_COMPLETED] = 12 },
			.oldest_queued_at = T0 + 10 * (int64_t) USEC_PER_SEC,
			.reachable = 1, .last_ok_at = T0 + 20 * (int64_t) USEC_PER_SEC,
			.last_attempt_at = T0 + 20 * (int64_t) USEC_PER_SEC,
			.breaker = APIERR_KEY, .breaker_since = T0, .breaker_probe_at = T0 + 300 * (int64_t) USEC_PER_SEC,
			.key_loaded = 1, .key_valid = 1, .socket_activated = 1,
			.backlog = 2, .drain_at = T0 + 90 * (int64_t) USEC_PER_SEC, .drain_seconds = 90,
			.creates_per_window = 90, .decisions_per_hour = 12,
			.foreign_calls = 4, .foreign_own_calls = 63, .foreign_server_used = 67, .foreign_threshold = 3,
			.foreign_alarm = 1, .foreign_total = 9,
		},
		.str = {
			[STATUS_BASE_URL] = "https://api.hitl.sh/v1",
			[STATUS_BREAKER_REASON] = "HTTP 403: API key is inactive",
			[STATUS_API_KEY_ID] = "65f1234567890abcdef12349",
			[STATUS_SOCKET_PATH] = "/run/hitld.sock",
		},
		.loops = two_loops,
		.n_loops = ELEMENTSOF(two_loops),
	};

	return f;
}

static json_object *get_path(json_object *o, const char *a, const char *b) {
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, a, &v));
	if (b) {
		json_object *w = NULL;

		assert_true(json_object_object_get_ex(v, b, &w));
		v = w;
	}
	return v;
}

static void test_status_reply_json_shows_every_fact_as_protocol_says(void **state) {
	StatusFacts f = sample_facts();
	json_object *o = status_reply_json(&f), *l;

	assert_non_null(o);
	assert_string_equal(json_object_get_string(get_path(o, "started_at", NULL)), "2025-12-05T12:00:00Z");
	assert_int_equal(json_object_get_int64(get_path(o, "uptime_s", NULL)), 7980);
	assert_int_equal(json_object_get_int64(get_path(o, "budget", "remaining")), 37);
	assert_string_equal(json_object_get_string(get_path(o, "budget", "reset_at")), "2025-12-05T13:00:00Z");
	assert_null(get_path(o, "budget", "paused_until"));
	assert_string_equal(json_object_get_string(get_path(o, "budget", "source")), "server");
	assert_int_equal(json_object_get_int64(get_path(get_path(o, "budget", "interactive"), "share", NULL)), 5);
	assert_int_equal(json_object_get_int64(get_path(o, "queue", "queued")), 2);
	assert_int_equal(json_object_get_int64(get_path(o, "queue", "completed")), 12);
	assert_int_equal(json_object_get_int64(get_path(o, "queue", "failed")), 0);
	assert_string_equal(json_object_get_string(get_path(o, "queue", "oldest_queued_at")), "2025-12-05T12:00:10Z");
	assert_int_equal(json_object_get_int64(get_path(o, "forecast", "backlog")), 2);
	assert_null(get_path(o, "forecast", "held"));
	assert_string_equal(json_object_get_string(get_path(o, "forecast", "drain_at")), "2025-12-05T12:01:30Z");
	assert_int_equal(json_object_get_int64(get_path(o, "forecast", "drain_seconds")), 90);
	assert_int_equal(json_object_get_int64(get_path(get_path(o, "api", "foreign"), "calls", NULL)), 4);
	assert_null(get_path(get_path(o, "api", "foreign"), "window_reset_at", NULL));
	assert_true(json_object_get_boolean(get_path(get_path(o, "api", "foreign"), "alarm", NULL)));
	assert_null(get_path(o, "api", "last_error"));
	assert_null(get_path(o, "api", "last_error_at"));
	assert_null(get_path(o, "api", "backoff_until"));
	assert_string_equal(json_object_get_string(get_path(get_path(o, "api", "creates_paused"), "class", NULL)), "key");
	assert_string_equal(json_object_get_string(get_path(get_path(o, "api", "creates_paused"), "reason", NULL)),
	                    "HTTP 403: API key is inactive");
	l = get_path(o, "api", "loops_paused");
	assert_int_equal(json_object_array_length(l), 2);
	assert_string_equal(json_object_get_string(get_path(json_object_array_get_idx(l, 0), "loop_id", NULL)),
	                    "65f1234567890abcdef12345");
	assert_string_equal(json_object_get_string(get_path(json_object_array_get_idx(l, 1), "reason", NULL)), "n/a");
	assert_true(json_object_get_boolean(get_path(o, "key", "valid")));
	assert_null(get_path(o, "key", "error"));
	assert_string_equal(json_object_get_string(get_path(o, "socket", "path")), "/run/hitld.sock");
	assert_false(json_object_get_boolean(get_path(o, "socket", "replaced")));
	assert_false(json_object_get_boolean(get_path(o, "paused", NULL)));
	json_object_put(o);

	/* The nulls: an admin's share, a key not yet judged, no breaker. */
	f.num.interactive_share_null = 1;
	f.num.key_valid = -1;
	f.num.breaker = APIERR_NONE;
	f.n_loops = 0;
	f.num.drain_seconds_null = 1;
	f.str[STATUS_FORECAST_HELD] = "key_missing";
	o = status_reply_json(&f);
	assert_null(get_path(o, "forecast", "drain_seconds"));
	assert_string_equal(json_object_get_string(get_path(o, "forecast", "held")), "key_missing");
	assert_null(get_path(get_path(o, "budget", "interactive"), "share", NULL));
	assert_null(get_path(o, "key", "valid"));
	assert_null(get_path(o, "api", "creates_paused"));
	assert_int_equal(json_object_array_length(get_path(o, "api", "loops_paused")), 0);
	json_object_put(o);
}

static void test_status_reply_text_is_the_json_serialised_and_kept_while_facts_are_equal(void **state) {
	StatusReply c = {};
	StatusFacts f = sample_facts();
	char reason[] = "HTTP 403: API key is inactive";
	json_object *o = status_reply_json(&f);
	const char *t1, *t2;
	size_t len1, len2;

	t1 = status_reply_text(&c, &f, &len1);
	assert_non_null(t1);
	assert_string_equal(t1, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	assert_int_equal(len1, strlen(t1));
	json_object_put(o);

	/* Equal facts, even in other buffers: the same text, not built again. */
	f.str[STATUS_BREAKER_REASON] = reason;
	t2 = status_reply_text(&c, &f, &len2);
	assert_ptr_equal(t1, t2);
	assert_int_equal(len1, len2);
	assert_int_equal(c.builds, 1);

	/* As a json object inside a reply: the kept text, as is. */
	{
		json_object *env = json_object_new_object(), *r = status_reply_object(&c, &f);
		char *want = NULL;

		assert_non_null(r);
		json_object_object_add(env, "result", r);
		assert_int_equal(asprintf(&want, "{\"result\":%s}", t1) > 0, 1);
		assert_string_equal(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN), want);
		assert_int_equal(c.builds, 1);
		free(want);
		json_object_put(env);
	}

	/* The kept facts are copies: the caller's strings may change under them. */
	reason[5] = '5';
	t2 = status_reply_text(&c, &f, &len2);
	assert_int_equal(c.builds, 2);
	assert_non_null(strstr(t2, "HTTP 503: API key"));
	status_reply_clear(&c);
}

/* Every fact reaches the comparison: changing any number, any string or any
 * loop builds the text again. This is what makes the kept text safe: a field
 * added to StatusNumbers is compared without anyone remembering to. */
static void test_status_reply_any_changed_fact_builds_again(void **state) {
	StatusReply c = {};
	StatusFacts f = sample_facts();
	StatusLoop loops[ELEMENTSOF(two_loops)];
	uint64_t builds;
	size_t len;

	memcpy(loops, two_loops, sizeof loops);
	f.loops = loops;
	assert_non_null(status_reply_text(&c, &f, &len));
	builds = c.builds;
	for (size_t off = 0; off < sizeof f.num; off += sizeof(int64_t)) {
		StatusFacts g = f;
		int64_t v;

		memcpy(&v, (char *) &g.num + off, sizeof v);
		v = v == 0 ? 1 : 0;
		memcpy((char *) &g.num + off, &v, sizeof v);
		assert_non_null(status_reply_text(&c, &g, &len));
		assert_int_equal(c.builds, ++builds);
		assert_non_null(status_reply_text(&c, &f, &len));
		assert_int_equal(c.builds, ++builds);
	}
	for (size_t i = 0; i < _STATUS_STRING_MAX; i++) {
		StatusFacts g = f;

		g.str[i] = g.str[i] ? NULL : "x";
		assert_non_null(status_reply_text(&c, &g, &len));
		assert_int_equal(c.builds, ++builds);
		assert_non_null(status_reply_text(&c, &f, &len));
		assert_int_equal(c.builds, ++builds);
	}
	/* The loops: one fewer, another reason, another probe time. */
	f.n_loops = 1;
	assert_non_null(status_reply_text(&c, &f, &len));
	assert_int_equal(c.builds, ++builds);
	f.n_loops = 2;
	loops[1].reason = "still no members";
	assert_non_null(status_reply_text(&c, &f, &len));
	assert_int_equal(c.builds, ++builds);
	assert_non_null(strstr(c.text, "still no members"));
	loops[1].next_probe_at += USEC_PER_SEC;
	assert_non_null(status_reply_text(&c, &f, &len));
	assert_int_equal(c.builds, ++builds);
	/* And nothing changed: kept. */
	assert_non_null(status_reply_text(&c, &f, &len));
	assert_int_equal(c.builds, builds);
	status_reply_clear(&c);
	assert_null(c.text);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_reply_json_shows_every_fact_as_protocol_says),
		cmocka_unit_test(test_status_reply_text_is_the_json_serialised_and_kept_while_facts_are_equal),
		cmocka_unit_test(test_status_reply_any_changed_fact_builds_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
