/* ctl_call.c — hitlctl talking to hitld: connecting, one call, and every
 * failure turned into a message naming its cause and fix plus the exit code
 * (hitlctl(1)); signals that interrupt a wait (see ctl.h). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_output.h"
#include "ctl_params.h"

volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
	interrupted = sig;
}

/* SIGINT/SIGTERM interrupt a wait (poll returns EINTR) instead of killing us,
 * so a live line can be cleared and the request id printed. */
void catch_signals(void) {
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static const char *start_hint(const Ctl *ctl, char *buf, size_t size) {
	if (ctl->instance_path && ctl->path == ctl->instance_path)
		snprintf(buf, size, "Start it with 'systemctl start hitld@%s.socket'", ctl->instance);
	else
		snprintf(buf, size, "Start it with 'systemctl start hitld.socket'");
	return buf;
}

static int report_connect_error(const Ctl *ctl, int r) {
	char hint[128];

	switch (r) {
	case -ENOENT:
		errorf("cannot connect to %s: no such socket — is hitld running? %s, or point hitlctl elsewhere with --socket PATH or HITLD_SOCKET.",
		       ctl->path, start_hint(ctl, hint, sizeof hint));
		break;
	case -EACCES:
	case -EPERM:
		errorf("cannot connect to %s: permission denied — is your user in group hitl? (sudo usermod -aG hitl $USER, then log in again)",
		       ctl->path);
		break;
	case -ECONNREFUSED:
		errorf("cannot connect to %s: connection refused — nothing is listening there, hitld is not running. Check 'systemctl status hitld'; %s.",
		       ctl->path, start_hint(ctl, hint, sizeof hint));
		break;
	case -ETIMEDOUT:
		errorf("cannot connect to %s: hitld accepted no connection in time (its backlog stayed full) — it may be stopped or overloaded; check 'systemctl status hitld'.",
		       ctl->path);
		break;
	case -ENAMETOOLONG:
		errorf("cannot connect to %s: the path is too long for a Unix socket (at most 107 bytes).", ctl->path);
		break;
	case -ENOTDIR:
		errorf("cannot connect to %s: a directory in that path is not a directory.", ctl->path);
		break;
	default:
		errorf("cannot connect to %s: %s", ctl->path, strerror(-r));
	}
	return EXIT_UNREACHABLE;
}

int ctl_connect(Ctl *ctl) {
	int r;

	ctl->client = hitl_client_free(ctl->client);
	r = hitl_client_connect(ctl->path, &ctl->client);
	if (r < 0)
		return report_connect_error(ctl, r);
	hitl_client_set_max_message(ctl->client, CTL_MAX_MESSAGE);
	return 0;
}

bool is_connection_loss(int r) {
	return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN || r == -ESHUTDOWN;
}

/* The daemon went away (restart, shutdown) rather than refused something. */
bool daemon_went_away(const Ctl *ctl, int r) {
	return is_connection_loss(r) || (r == -EREMOTEIO && ctl->error.code == HITL_ERROR_SHUTTING_DOWN);
}

/* A call that got no answer from the daemon. */
static int report_transport_error(const Ctl *ctl, int r, const char *what) {
	if (is_connection_loss(r))
		errorf("%s: hitld closed the connection (stopped or restarted?) — check 'systemctl status hitld' and try again.",
		       what);
	else if (r == -ETIMEDOUT)
		errorf("%s: hitld did not answer in time — it may be overloaded or stuck; check 'systemctl status hitld'.",
		       what);
	else if (r == -EBADMSG)
		errorf("%s: the reply was not hitld's protocol — is %s really hitld's socket?", what, ctl->path);
	else if (r == -EMSGSIZE)
		errorf("%s: a message was larger than the %zu bytes hitlctl accepts.", what, CTL_MAX_MESSAGE);
	else
		errorf("%s: %s", what, strerror(-r));
	return EXIT_UNREACHABLE;
}

/* --json: the daemon's error as {"error": {"code", "message", "data"}}. */
static void print_json_error(const HitlError *e) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object(), *err = json_object_new_object();

	json_object_object_add(err, "code", json_object_new_int(e->code));
	json_object_object_add(err, "message", e->message ? json_object_new_string(e->message) : NULL);
	json_object_object_add(err, "data", json_object_get(e->data));
	json_object_object_add(o, "error", json_object_get(err));
	print_json(o);
}

/* -32602: blamed on the flag that set the field. */
static int report_invalid_params(const Ctl *ctl, const char *what) {
	const HitlError *e = &ctl->error;
	const char *field = jstr(e->data, "field"), *reason = jstr(e->data, "reason"), *flag = flag_for_field(field);

	if (field && streq(field, "timeout_seconds"))
		errorf("%s: %s (%s; HITL.sh allows 60s-1d; for longer, give --deferred without --timeout: "
		       "HITL.sh then waits up to 30 days).", what, reason ? reason : "invalid timeout", flag);
	else if (field && flag)
		errorf("%s: %s (set with %s; see 'hitlctl %s --help').", what, reason ? reason : "invalid value", flag,
		       ctl->verb);
	else
		errorf("%s: invalid %s: %s", what, field ? field : "parameters", reason ? reason : strna(e->message));
	return EXIT_USAGE;
}

/* -32006: what HITL.sh said; its 404 is "not found", like a request's. */
static int report_remote(const Ctl *ctl, const char *what) {
	const HitlError *e = &ctl->error;
	json_object *inner = json_object_object_get(e->data, "data");
	const char *msg = jstr(e->data, "msg") ? jstr(e->data, "msg") : strna(e->message);
	int64_t http = 0;

	jint(e->data, "http_status", &http);
	if (http == 404) {
		errorf("%s: not found at HITL.sh (HTTP 404): %s — 'hitlctl loops list' shows the loops this key sees.", what,
		       msg);
		return EXIT_NOT_FOUND;
	}
	if (inner && json_object_is_type(inner, json_type_string))
		errorf("%s: HITL.sh refused it (HTTP %" PRId64 "): %s: %s", what, http, msg, json_object_get_string(inner));
	else
		errorf("%s: HITL.sh refused it (HTTP %" PRId64 "): %s", what, http, msg);
	return EXIT_REMOTE;
}

/* An error the daemon answered, by code. */
static int report_daemon_error(const Ctl *ctl, const char *what) {
	const HitlError *e = &ctl->error;
	int64_t limit = 0;
	char when[96];

	switch (e->code) {
	case HITL_ERROR_INVALID_PARAMS:
		return report_invalid_params(ctl, what);
	case HITL_ERROR_NOT_FOUND:
		errorf("%s: no such request (or it is another user's) — 'hitlctl list --all' shows yours.", what);
		return EXIT_NOT_FOUND;
	case HITL_ERROR_PERMISSION:
		errorf("%s: permission denied (%s) — run it as root or as a member of hitld's admin group (socket.admin_group).",
		       what, strna(e->message));
		return EXIT_NOT_FOUND;
	case HITL_ERROR_QUOTA:
		if (jint(e->data, "limit", &limit))
			errorf("%s: %s — at most %" PRId64 " open requests; wait for some to finish or cancel some ('hitlctl list').",
			       what, strna(e->message), limit);
		else
			errorf("%s: %s — wait for some requests to finish or cancel some.", what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_BUDGET:
		if (format_when(jstr(e->data, "retry_at"), when, sizeof when))
			errorf("%s: no HITL.sh API budget left until %s — try again then ('hitlctl status' shows the budget).",
			       what, when);
		else
			errorf("%s: no HITL.sh API budget left — see 'hitlctl status'.", what);
		return EXIT_REMOTE;
	case HITL_ERROR_REMOTE:
		return report_remote(ctl, what);
	case HITL_ERROR_UNAVAILABLE:
		errorf("%s: %s — HITL.sh cannot be used right now; check 'hitlctl status', 'hitlctl key test' and 'journalctl -u hitld'.",
		       what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_STORAGE:
		errorf("%s: %s — hitld could not write its state directory (disk full?); nothing was changed.", what,
		       strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_SHUTTING_DOWN:
		errorf("%s: hitld is shutting down — try again in a moment.", what);
		return EXIT_REMOTE;
	case HITL_ERROR_CONFLICT:
		errorf("%s: %s — pick another --ref, or submit exactly the same request again.", what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_INVALID_STATE:
		errorf("%s: %s", what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_METHOD_NOT_FOUND:
		errorf("%s: this hitld does not know the method — is it older than hitlctl %s?", what, HITLD_VERSION);
		return EXIT_REMOTE;
	default:
		errorf("%s: hitld: %s (%d)", what, strna(e->message), e->code);
		return EXIT_REMOTE;
	}
}

int report_call_error(Ctl *ctl, int r, const char *what) {
	if (r == -EINTR)
		return EXIT_INTERRUPTED;
	if (r != -EREMOTEIO)
		return report_transport_error(ctl, r, what);
	if (ctl->json)
		print_json_error(&ctl->error);
	return report_daemon_error(ctl, what);
}

/* One call on the connection; on failure the error is reported and *ret_exit set. */
int ctl_call(Ctl *ctl, const char *method, json_object *params, json_object **ret_result, const char *what) {
	int r;

	r = hitl_client_call(ctl->client, method, params, ret_result, &ctl->error);
	if (r < 0)
		return report_call_error(ctl, r, what);
	return 0;
}
