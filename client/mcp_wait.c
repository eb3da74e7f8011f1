/* mcp_wait.c — the tool calls of `hitlctl mcp` that wait for a human (ask_human,
 * wait_request); see mcp_server.h. Each has a connection of its own on which it watches its
 * request, so mcp.c's loop polls that descriptor and stays free for stdin. Progress goes
 * out on every change and at least every --progress-interval; a lost connection is retried
 * with backoff (BACKOFF_FIRST_MS doubling to BACKOFF_MAX_MS) for --reconnect-timeout, on
 * the same request id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hitlclient.h"
#include "mcp_server.h"
#include "mcp_tools.h"

static int add(json_object *o, const char *key, json_object *v) {
	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

#define IN_SET_ERRNO(r, a, b, c) ((r) == -(a) || (r) == -(b) || (r) == -(c))

/* A transport failure, as opposed to hitld's answer: worth reconnecting for. */
static bool is_transport(int r, const HitlError *e) {
	if (r == -EREMOTEIO)
		return e && e->code == HITL_ERROR_SHUTTING_DOWN;
	return r < 0 && r != -ENOMEM && r != -EINVAL;
}

void mcp_call_free(Call *c) {
	Server *s = c->srv;

	for (Call **p = &s->calls; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			s->n_calls--;
			break;
		}
	json_object_put(c->rpc_id);
	mcp_batch_unref(c->batch);
	json_object_put(c->progress_token);
	json_object_put(c->submit);
	free(c->request_id);
	hitl_client_free(c->conn);
	free(c);
}

/* Answers the tools/call (unless it was cancelled) and forgets it. Takes result. */
static void call_finish(Call *c, json_object *result) {
	if (!c->cancelled) {
		if (result)
			mcp_send_result(c->batch, c->rpc_id, result);
		else
			mcp_send_error(c->batch, c->rpc_id, HITL_ERROR_INTERNAL, "Out of memory.");
	}
	json_object_put(result);
	mcp_call_free(c);
}

static const char *budget_text(json_object *status, char *buf, size_t size) {
	json_object *b = json_object_object_get(status, "budget");
	json_object *rem = json_object_object_get(b, "remaining"), *lim = json_object_object_get(b, "limit");
	const char *reset = mcp_record_string(b, "reset_at"), *paused = mcp_record_string(b, "paused_until");

	if (!rem || !lim)
		return "";
	snprintf(buf, size, "; API budget %d of %d calls left this hour%s%s%s%s", json_object_get_int(rem),
	         json_object_get_int(lim), reset ? ", resets at " : "", reset ? reset : "",
	         paused ? ", HITL.sh paused us until " : "", paused ? paused : "");
	return buf;
}

/* A notifications/progress for the call, if its client asked for progress. */
static void call_progress(Call *c, json_object *record, json_object *status, const char *note) {
	_cleanup_(json_object_putp) json_object *msg = json_object_new_object(), *params = json_object_new_object();
	char text[768], budget[256] = "";
	const char *state = record ? mcp_record_string(record, "state") : NULL;
	json_object *v;
	double p;

	if (!c->progress_token || c->cancelled)
		return;
	if (!state)
		snprintf(text, sizeof text, "%s", note ? note : "waiting");
	else if (streq(state, "queued")) {
		json_object *pos = json_object_object_get(record, "position");

		snprintf(text, sizeof text, "queued in hitld, position %d in the send queue%s%s%s",
		         pos ? json_object_get_int(pos) : 0, budget_text(status, budget, sizeof budget),
		         note ? "; " : "", note ? note : "");
	} else if (streq(state, "submitting"))
		snprintf(text, sizeof text, "submitting to HITL.sh%s%s%s", budget_text(status, budget, sizeof budget),
		         note ? "; " : "", note ? note : "");
	else if (streq(state, "pending")) {
		const char *due = mcp_record_string(record, "deadline_at");

		snprintf(text, sizeof text, "pending at HITL.sh: waiting for a reviewer%s%s%s%s%s",
		         due ? ", answer due by " : "", due ? due : "", budget_text(status, budget, sizeof budget),
		         note ? "; " : "", note ? note : "");
	} else
		snprintf(text, sizeof text, "%s%s%s", state, note ? "; " : "", note ? note : "");

	/* progress: seconds waited (strictly increasing, as the spec wants); total: the time
	 * the human has, when the request says. */
	p = (double) (mcp_now_ms() - c->started_ms) / 1000.0;
	if (p <= c->last_progress)
		p = c->last_progress + 0.001;
	c->last_progress = p;
	if (!msg || !params || add(params, "progressToken", json_object_get(c->progress_token)) < 0 ||
	    add(params, "progress", json_object_new_double(p)) < 0)
		return;
	if (record && json_object_object_get_ex(record, "timeout_seconds", &v) && json_object_is_type(v, json_type_int) &&
	    add(params, "total", json_object_new_int64(json_object_get_int64(v))) < 0)
		return;
	if (mcp_protocol_has_messages(c->srv->version) && add(params, "message", json_object_new_string(text)) < 0)
		return;
	if (add(msg, "jsonrpc", json_object_new_string("2.0")) < 0 ||
	    add(msg, "method", json_object_new_string("notifications/progress")) < 0 ||
	    json_object_object_add(msg, "params", TAKE_PTR(params)) < 0)
		return;
	mcp_send_message(msg);
}

static void call_backoff(Call *c, int r);

/* Reports the record: the final answer, or progress (with hitld's budget). Returns 1 when
 * the call ended. */
static int call_record(Call *c, json_object *record, bool refresh_status) {
	_cleanup_(json_object_putp) json_object *status = NULL;

	if (mcp_record_final(record)) {
		bool st = mcp_protocol_has_structured(c->srv->version);

		call_finish(c, mcp_tool_kind(c->tool) == MCP_TOOL_ASK ? mcp_result_ask(record, st)
		                                                      : mcp_result_wait(record, true, st));
		return 1;
	}
	if (c->progress_token && refresh_status && c->conn)
		(void) hitl_status(c->conn, &status, NULL); /* the budget is a nicety: no status, no budget line */
	call_progress(c, record, status, NULL);
	c->next_progress_ms = mcp_now_ms() + c->srv->progress_interval_ms;
	return 0;
}

/* ask_human cancelled: cancel the request at hitld (found by client_ref if the submit's
 * reply was lost), then forget the call. */
static void call_cancel_request(Call *c) {
	_cleanup_(json_object_putp) json_object *record = NULL;
	HitlError e = HITL_ERROR_INIT;
	int r;

	if (!c->request_id && c->submit) {
		const char *ref = mcp_record_string(c->submit, "client_ref");

		r = hitl_request_get_by_ref(c->conn, ref, &record, &e);
		if (r == -EREMOTEIO && e.code == HITL_ERROR_NOT_FOUND) {
			hitl_error_clear(&e);
			mcp_call_free(c); /* it never reached hitld */
			return;
		}
		if (r >= 0) {
			c->request_id = strdup(strna(mcp_record_string(record, "id")));
			if (!c->request_id)
				r = -ENOMEM;
		}
		if (r < 0)
			goto fail;
	}
	r = hitl_request_cancel(c->conn, c->request_id, NULL, &e);
	if (r >= 0 || (r == -EREMOTEIO && !is_transport(r, &e))) {
		/* Cancelled, or hitld said why not (already final): either way, done. */
		if (r < 0)
			fprintf(stderr, "hitlctl mcp: cancelling %s: %s\n", c->request_id, strna(e.message));
		hitl_error_clear(&e);
		mcp_call_free(c);
		return;
	}
fail:
	if (is_transport(r, &e)) {
		hitl_error_clear(&e);
		return call_backoff(c, r); /* cancel once hitld is back */
	}
	fprintf(stderr, "hitlctl mcp: could not cancel the request of a cancelled call: %s\n",
	        r == -EREMOTEIO ? strna(e.message) : strerror(-r));
	hitl_error_clear(&e);
	mcp_call_free(c);
}

/* (Re)connects: submit if not yet done, watch the request, read it. */
void mcp_call_attach(Call *c) {
	_cleanup_(json_object_putp) json_object *record = NULL;
	const char *ids[2] = { NULL, NULL };
	HitlError e = HITL_ERROR_INIT;
	int r;

	c->conn = hitl_client_free(c->conn);
	r = mcp_connect(c->srv, &c->conn);
	/* Before anything was submitted, a socket that is not there or not ours is a
	 * configuration error to report now; later it is hitld restarting. */
	if (r < 0 && !c->submitted && !c->cancelled && c->failing_since_ms < 0 &&
	    IN_SET_ERRNO(r, ENOENT, EACCES, ENAMETOOLONG))
		return call_finish(c, mcp_result_transport(r, hitl_socket_path(c->srv->path)));
	if (r < 0)
		return call_backoff(c, r);
	if (c->cancelled)
		return call_cancel_request(c);

	if (!c->submitted) {
		_cleanup_(json_object_putp) json_object *res = NULL;

		r = hitl_request_submit(c->conn, c->submit, &res, &e);
		if (r >= 0) {
			c->request_id = strdup(strna(mcp_record_string(res, "id")));
			if (!c->request_id)
				r = -ENOMEM;
			c->submitted = true;
		}
		if (r < 0)
			goto fail;
	}

	ids[0] = c->request_id;
	r = hitl_watch(c->conn, ids, &e);
	if (r >= 0)
		r = hitl_request_get(c->conn, c->request_id, &record, &e);
	if (r < 0)
		goto fail;
	if (c->failing_since_ms >= 0)
		fprintf(stderr, "hitlctl mcp: reconnected to hitld; still waiting for %s\n", c->request_id);
	c->failing_since_ms = -1;
	c->attempts = 0;
	c->step = STEP_WAITING;
	/* Notifications that arrived during these calls wait in the client's queue. */
	if (call_record(c, record, true) == 0)
		mcp_call_readable(c);
	return;

fail:
	if (is_transport(r, &e)) {
		hitl_error_clear(&e);
		return call_backoff(c, r);
	}
	call_finish(c, r == -EREMOTEIO ? mcp_result_hitld_error(&e) : mcp_result_transport(r, hitl_socket_path(c->srv->path)));
	hitl_error_clear(&e);
}

static void call_backoff(Call *c, int r) {
	int64_t now = mcp_now_ms();
	char note[256];

	c->conn = hitl_client_free(c->conn);
	if (c->failing_since_ms < 0) {
		c->failing_since_ms = now;
		fprintf(stderr, "hitlctl mcp: lost hitld (%s)%s%s; reconnecting\n", strerror(-r),
		        c->request_id ? " while waiting for " : "", c->request_id ? c->request_id : "");
	}
	if (now - c->failing_since_ms > c->srv->reconnect_timeout_ms) {
		_cleanup_(freep) char *text = NULL;

		if (c->cancelled) {
			fprintf(stderr, "hitlctl mcp: could not cancel %s: hitld unreachable\n", strna(c->request_id));
			return mcp_call_free(c);
		}
		if (asprintf(&text, "Lost hitld (%s) and could not reach it again for %lld s. %s%s%s", strerror(-r),
		             (long long) (c->srv->reconnect_timeout_ms / 1000),
		             c->request_id ? "The request is safe in hitld's outbox: call wait_request with id " : "",
		             c->request_id ? c->request_id : "Nothing may have been stored; ask again with the same client_ref ",
		             c->request_id ? " once hitld is back." : "once hitld is back.") < 0)
			return call_finish(c, NULL);
		return call_finish(c, mcp_result_problem(text));
	}
	c->step = STEP_BACKOFF;
	c->retry_at_ms = now + (c->attempts >= 5 ? BACKOFF_MAX_MS : BACKOFF_FIRST_MS << c->attempts);
	if (c->retry_at_ms > now + BACKOFF_MAX_MS)
		c->retry_at_ms = now + BACKOFF_MAX_MS;
	c->attempts++;
	snprintf(note, sizeof note, "hitld unreachable (%s), reconnecting (attempt %u)", strerror(-r), c->attempts);
	if (c->attempts == 1 || now >= c->next_progress_ms) {
		call_progress(c, NULL, NULL, note);
		c->next_progress_ms = now + c->srv->progress_interval_ms;
	}
}

/* The watching connection is readable: handle every notification that arrived. */
void mcp_call_readable(Call *c) {
	for (;;) {
		HitlEvent ev = HITL_EVENT_INIT;
		int r = hitl_watch_next(c->conn, 0, &ev);

		if (r == 0)
			return;
		if (r < 0)
			return call_backoff(c, r);
		if (streq(ev.method, "watch.overflow")) {
			hitl_event_clear(&ev);
			return mcp_call_attach(c);
		}
		if (ev.request && streq_ptr(mcp_record_string(ev.request, "id"), c->request_id)) {
			r = call_record(c, ev.request, true);
			hitl_event_clear(&ev);
			if (r > 0)
				return;
			continue;
		}
		hitl_event_clear(&ev);
	}
}

void mcp_call_timer(Call *c, int64_t now) {
	_cleanup_(json_object_putp) json_object *record = NULL;
	HitlError e = HITL_ERROR_INIT;
	bool expired;
	int r;

	if (c->step == STEP_BACKOFF) {
		if (now >= c->retry_at_ms)
			mcp_call_attach(c);
		return;
	}
	expired = c->deadline_ms >= 0 && now >= c->deadline_ms;
	if (!expired && !(c->progress_token && now >= c->next_progress_ms))
		return;
	r = hitl_request_get(c->conn, c->request_id, &record, &e);
	if (r < 0) {
		if (is_transport(r, &e)) {
			hitl_error_clear(&e);
			return call_backoff(c, r);
		}
		call_finish(c, r == -EREMOTEIO ? mcp_result_hitld_error(&e) : NULL);
		hitl_error_clear(&e);
		return;
	}
	if (expired && !mcp_record_final(record))
		return call_finish(c, mcp_result_wait(record, false, mcp_protocol_has_structured(c->srv->version)));
	if (call_record(c, record, true) == 0)
		mcp_call_readable(c);
}

int64_t mcp_call_next_timer(const Call *c) {
	int64_t t;

	if (c->step == STEP_BACKOFF)
		return c->retry_at_ms;
	t = c->progress_token ? c->next_progress_ms : INT64_MAX;
	if (c->deadline_ms >= 0 && c->deadline_ms < t)
		t = c->deadline_ms;
	return t;
}

void mcp_call_cancel(Call *c) {
	c->cancelled = true;
	/* wait_request only stops waiting; ask_human's request goes with its call. */
	if (mcp_tool_kind(c->tool) != MCP_TOOL_ASK)
		return mcp_call_free(c);
	fprintf(stderr, "hitlctl mcp: call cancelled; cancelling %s\n", strna(c->request_id));
	if (c->step == STEP_WAITING)
		call_cancel_request(c);
	/* in backoff: mcp_call_attach() cancels once hitld is back */
}

