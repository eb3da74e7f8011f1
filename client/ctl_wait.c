/* ctl_wait.c — waiting until a request is final (ask, wait, trigger): long
 * request.wait calls, a live status line on a terminal, and reconnecting when
 * hitld restarts, since the request is durable (see ctl_wait.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctl_output.h"
#include "ctl_wait.h"

void live_clear(Live *l) {
	if (l->shown) {
		fputs("\r\033[K", raw_stderr);
		fflush(raw_stderr);
		l->shown = false;
	}
}

static void live_update(Ctl *ctl, Live *l, json_object *record) {
	char line[512], when[64], d[32];
	const char *state = jstr(record, "state");
	time_t now = time(NULL), deadline;
	int cols = terminal_columns();

	if (!l->on)
		return;
	if (now - l->status_at >= LIVE_STATUS_EVERY_S) {
		_cleanup_(json_object_putp) json_object *st = NULL;

		l->status_at = now;
		if (hitl_status(ctl->client, &st, NULL) >= 0) {
			json_object *b = json_object_object_get(st, "budget");
			int64_t rem = 0, lim = 0;
			time_t reset;

			jint(b, "remaining", &rem);
			jint(b, "limit", &lim);
			if (jstr(b, "reset_at") && hitl_time_parse(jstr(b, "reset_at"), &reset) >= 0)
				snprintf(l->budget, sizeof l->budget, "budget %" PRId64 "/%" PRId64 " (resets %s)", rem, lim,
				         format_relative(reset, now, when, sizeof when));
			else
				snprintf(l->budget, sizeof l->budget, "budget %" PRId64 "/%" PRId64, rem, lim);
			if (json_object_get_boolean(json_object_object_get(st, "paused")))
				strncat(l->budget, ", queue PAUSED", sizeof l->budget - strlen(l->budget) - 1);
		}
	}

	line[0] = 0;
	append(line, sizeof line, "%s", strna(state));
	if (streq_ptr(state, "queued") && l->position > 0)
		append(line, sizeof line, " (#%" PRId64 " at submit)", l->position);
	if (jbool(record, "cancel_requested"))
		append(line, sizeof line, ", cancelling");
	if (jstr(record, "deadline_at") && hitl_time_parse(jstr(record, "deadline_at"), &deadline) >= 0)
		append(line, sizeof line, " · %s left",
		       format_duration(deadline > now ? (uint64_t) (deadline - now) : 0, d, sizeof d));
	if (l->budget[0])
		append(line, sizeof line, " · %s", l->budget);
	append(line, sizeof line, " · %s", strna(jstr(record, "id")));

	/* Never wrap: a wrapped line cannot be redrawn with \r. */
	{
		_cleanup_(freep) char *cut = shorten(line, (size_t) cols - 1);

		fputs("\r\033[K", raw_stderr);
		fflush(raw_stderr);
		fputs(cut ? cut : line, stderr);
		fflush(stderr);
		l->shown = true;
	}
}

/* Tries to reconnect for a while after hitld went away (restart, socket
 * activation): the request is durable, so waiting can go on. */
int reconnect(Ctl *ctl, Live *live, time_t *lost_since) {
	live_clear(live);
	if (*lost_since == 0) {
		*lost_since = time(NULL);
		if (ctl->tty_err)
			fprintf(stderr, "hitlctl: lost the connection to hitld; reconnecting…\n");
	} else
		sleep(1); /* connected, then lost again: a daemon still stopping */
	ctl->client = hitl_client_free(ctl->client);
	for (;;) {
		HitlClient *c = NULL;

		if (interrupted)
			return -EINTR;
		if (hitl_client_connect(ctl->path, &c) >= 0) {
			hitl_client_set_max_message(c, CTL_MAX_MESSAGE);
			ctl->client = c;
			return 0;
		}
		if (time(NULL) - *lost_since >= RECONNECT_FOR_S)
			return -ECONNRESET;
		sleep(1);
	}
}

static int64_t elapsed_ms_since(const struct timespec *t0) {
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void print_interrupted(const char *id) {
	errorf("interrupted; request %s stays open — 'hitlctl wait %s' waits again, 'hitlctl cancel %s' withdraws it.", id,
	       id, id);
}

/* Waits until the request is final or timeout_s (negative: none) passes.
 * Returns 0 with *ret_wait (the last request.wait result) when final,
 * EXIT_TIMEOUT with *ret_wait when time ran out, or another exit code
 * (reported). */
int wait_final(Ctl *ctl, const char *id, int64_t timeout_s, Live *live, json_object **ret_wait) {
	_cleanup_(json_object_putp) json_object *last = NULL;
	struct timespec t0;
	time_t lost_since = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	catch_signals();
	for (;;) {
		_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *res = NULL;
		int64_t chunk = live->on ? LIVE_TICK_MS : WAIT_CHUNK_MS;
		struct timespec call_start;
		int r;

		if (timeout_s >= 0) {
			int64_t left_ms = timeout_s * 1000 - elapsed_ms_since(&t0);

			if (left_ms <= 0 && last) {
				live_clear(live);
				*ret_wait = TAKE_PTR(last);
				return EXIT_TIMEOUT;
			}
			if (left_ms < 0)
				left_ms = 0;
			if (left_ms < chunk)
				chunk = left_ms;
		}
		json_object_object_add(params, "id", json_object_new_string(id));
		json_object_object_add(params, "timeout_ms", json_object_new_int64(chunk));
		clock_gettime(CLOCK_MONOTONIC, &call_start);
		r = ctl->client ? hitl_client_call_full(ctl->client, "request.wait", params, (int) chunk, &res, &ctl->error)
		                : -ECONNRESET;
		if (r < 0 && daemon_went_away(ctl, r)) {
			/* The request is durable: wait on once hitld is back. */
			r = reconnect(ctl, live, &lost_since);
			if (r == 0)
				continue;
		}
		if (r == -EINTR || interrupted) {
			live_clear(live);
			print_interrupted(id);
			return EXIT_INTERRUPTED;
		}
		if (r < 0) {
			live_clear(live);
			if (is_connection_loss(r)) {
				errorf("lost the connection to hitld and could not reconnect within %ds; request %s is safe in hitld's outbox — 'hitlctl wait %s' later.",
				       RECONNECT_FOR_S, id, id);
				return EXIT_UNREACHABLE;
			}
			return report_call_error(ctl, r, "wait");
		}
		lost_since = 0;
		json_object_put(last);
		last = TAKE_PTR(res);
		if (jbool(last, "done") || state_is_terminal(jstr(json_object_object_get(last, "request"), "state"))) {
			live_clear(live);
			*ret_wait = TAKE_PTR(last);
			return 0;
		}
		live_update(ctl, live, json_object_object_get(last, "request"));
		/* A daemon that is stopping answers at once without waiting: do not spin. */
		if (chunk > 0 && elapsed_ms_since(&call_start) < (chunk < 1000 ? chunk : 1000) / 2)
			usleep(250 * 1000);
	}
}
