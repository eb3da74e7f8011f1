/* ctl_verbs_watch.c — hitlctl watch: one line per request change, across
 * restarts of hitld and watch overflows, until interrupted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_output.h"
#include "ctl_params.h"
#include "ctl_wait.h"

static void print_event_line(json_object *rec) {
	char label[160];
	_cleanup_(freep) char *text = shorten(record_text(rec, label, sizeof label), TEXT_COLUMN_MAX);
	json_object *result = json_object_object_get(rec, "result");
	/* Cut, its tab and newline escaped too, as in `hitlctl list`: a long free-text
	 * answer would wrap the line, its newlines split it. */
	_cleanup_(freep) char *answer = result ? shorten(value_text(result), RESULT_COLUMN_MAX) : NULL;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof when, "%H:%M:%S", &tm);
	printf("%s  %-28s  %-10s  %s%s%s%s%s%s", when, strna(jstr(rec, "id")), strna(jstr(rec, "state")),
	       jbool(rec, "cancel_requested") ? "(cancelling)  " : "", answer ? answer : "",
	       answer ? "  " : "", jstr(rec, "feedback_state") ? "(feedback " : "",
	       jstr(rec, "feedback_state") ? jstr(rec, "feedback_state") : "", jstr(rec, "feedback_state") ? ")  " : "");
	fputs(text ? text : "", stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* One watch on the current connection. Returns 0 when interrupted (the
 * normal end), an exit code on a real error, or -ECONNRESET when the daemon
 * went away or dropped us (overflow) and watching should start again. */
static int watch_session(Ctl *ctl, const char *const *ids, time_t *lost_since) {
	int k, n;

	n = ctl->client ? hitl_watch(ctl->client, ids, &ctl->error) : -ECONNRESET;
	if (n == -EINTR || interrupted)
		return 0;
	if (n < 0)
		return daemon_went_away(ctl, n) ? -ECONNRESET : report_call_error(ctl, n, "watch");
	*lost_since = 0;
	if (ctl->tty_err)
		fprintf(stderr, "watching %s%d request%s for changes; Ctrl-C stops\n", ids ? "" : "all (now ", n,
		        ids ? (n == 1 ? "" : "s") : (n == 1 ? ", and new ones)" : "s, and new ones)"));
	for (;;) {
		HitlEvent ev = HITL_EVENT_INIT;
		bool overflow;

		k = hitl_watch_next(ctl->client, -1, &ev);
		if (k == -EINTR || interrupted) {
			hitl_event_clear(&ev);
			return 0;
		}
		if (k < 0)
			return -ECONNRESET;
		if (ctl->json)
			puts(ev.line);
		else if (ev.request)
			print_event_line(ev.request);
		fflush(stdout);
		overflow = streq(ev.method, "watch.overflow");
		hitl_event_clear(&ev);
		if (overflow) {
			if (ctl->tty_err)
				fprintf(stderr, "hitlctl: fell behind (over 1000 changes unread); some were skipped — 'hitlctl list' shows the current state.\n");
			return -ECONNRESET;
		}
	}
}

int verb_watch(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	const char *const *ids;
	time_t lost_since = 0;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	ids = optind < argc ? (const char *const *) argv + optind : NULL;
	k = ctl_connect(ctl);
	if (k)
		return k;
	catch_signals();

	for (;;) {
		k = watch_session(ctl, ids, &lost_since);
		if (k >= 0)
			return k;
		/* The daemon closed the connection (overflow, restart): watch again. */
		if (reconnect(ctl, &(Live) {}, &lost_since) < 0) {
			if (interrupted)
				return 0;
			errorf("lost the connection to hitld and could not reconnect within %ds.", RECONNECT_FOR_S);
			return EXIT_UNREACHABLE;
		}
	}
}
