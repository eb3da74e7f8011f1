/* status_reply.c — status's JSON from its facts, and the text kept while
 * they stay equal (status_reply.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "apierr.h"
#include "cleanup.h"
#include "status_reply.h"

static json_object *time_or_null(int64_t t) {
	char buf[ISO8601_MAX];

	return t > 0 ? json_object_new_string(format_iso8601((usec_t) t, buf)) : NULL;
}

static json_object *string_or_null(const char *s) {
	return s ? json_object_new_string(s) : NULL;
}

static json_object *int64(int64_t v) {
	return json_object_new_int64(v);
}

static json_object *budget_json(const StatusNumbers *n) {
	json_object *budget = json_object_new_object(), *interactive;

	if (!budget)
		return NULL;
	json_object_object_add(budget, "limit", int64(n->limit));
	json_object_object_add(budget, "remaining", int64(n->remaining));
	json_object_object_add(budget, "used", int64(n->used));
	json_object_object_add(budget, "reset_at", time_or_null(n->reset_at));
	json_object_object_add(budget, "paused_until", time_or_null(n->paused_until));
	json_object_object_add(budget, "source", json_object_new_string(n->from_server ? "server" : "local"));
	/* The caller's share of loop calls this window (admins have none). */
	interactive = json_object_new_object();
	json_object_object_add(interactive, "share", n->interactive_share_null ? NULL : int64(n->interactive_share));
	json_object_object_add(interactive, "used", int64(n->interactive_used));
	json_object_object_add(interactive, "total", int64(n->interactive_total));
	json_object_object_add(budget, "interactive", interactive);
	return budget;
}

static json_object *queue_json(const StatusNumbers *n) {
	json_object *queue = json_object_new_object();

	if (!queue)
		return NULL;
	for (RequestState s = 0; s < _REQUEST_STATE_MAX; s++)
		json_object_object_add(queue, request_state_to_string(s), int64(n->counts[s]));
	json_object_object_add(queue, "oldest_queued_at", time_or_null(n->oldest_queued_at));
	return queue;
}

/* The backlog forecast (hitld(8), FORECASTS AND WARNINGS). */
static json_object *forecast_json(const StatusFacts *f) {
	const StatusNumbers *n = &f->num;
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "backlog", int64(n->backlog));
	json_object_object_add(o, "held", string_or_null(f->str[STATUS_FORECAST_HELD]));
	json_object_object_add(o, "drain_at", time_or_null(n->drain_at));
	json_object_object_add(o, "drain_seconds", n->drain_seconds_null ? NULL : int64(n->drain_seconds));
	json_object_object_add(o, "creates_per_window", int64(n->creates_per_window));
	json_object_object_add(o, "decisions_per_hour", int64(n->decisions_per_hour));
	return o;
}

/* Others' use of the key in HITL.sh's current window (PROTOCOL.md §5.2). */
static json_object *foreign_json(const StatusNumbers *n) {
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "calls", int64(n->foreign_calls));
	json_object_object_add(o, "own_calls", int64(n->foreign_own_calls));
	json_object_object_add(o, "server_used", int64(n->foreign_server_used));
	json_object_object_add(o, "window_reset_at", time_or_null(n->foreign_reset_at));
	json_object_object_add(o, "rate_limited", json_object_new_boolean(n->foreign_rate_limited));
	json_object_object_add(o, "threshold", int64(n->foreign_threshold));
	json_object_object_add(o, "alarm", json_object_new_boolean(n->foreign_alarm));
	json_object_object_add(o, "total", int64(n->foreign_total));
	return o;
}

static json_object *api_json(const StatusFacts *f) {
	const StatusNumbers *n = &f->num;
	json_object *api = json_object_new_object(), *paused = NULL, *loops;

	if (!api)
		return NULL;
	json_object_object_add(api, "base_url", string_or_null(f->str[STATUS_BASE_URL]));
	json_object_object_add(api, "reachable", json_object_new_boolean(n->reachable));
	json_object_object_add(api, "last_ok_at", time_or_null(n->last_ok_at));
	json_object_object_add(api, "last_error", string_or_null(f->str[STATUS_LAST_ERROR]));
	json_object_object_add(api, "last_error_at", time_or_null(n->last_error_at));
	json_object_object_add(api, "last_attempt_at", time_or_null(n->last_attempt_at));
	json_object_object_add(api, "consecutive_failures", int64(n->consecutive_failures));
	json_object_object_add(api, "backoff_until", time_or_null(n->backoff_until));
	/* Creates paused by the circuit breaker (PROTOCOL.md §5.4). */
	if (n->breaker != APIERR_NONE) {
		paused = json_object_new_object();
		json_object_object_add(paused, "class",
		                       json_object_new_string(apierr_class_to_string((ApiErrClass) n->breaker)));
		json_object_object_add(paused, "reason", json_object_new_string(strna(f->str[STATUS_BREAKER_REASON])));
		json_object_object_add(paused, "since", time_or_null(n->breaker_since));
		json_object_object_add(paused, "next_probe_at", time_or_null(n->breaker_probe_at));
	}
	json_object_object_add(api, "creates_paused", paused);
	loops = json_object_new_array();
	for (size_t i = 0; i < f->n_loops; i++) {
		json_object *l = json_object_new_object();

		json_object_object_add(l, "loop_id", string_or_null(f->loops[i].loop_id));
		json_object_object_add(l, "reason", json_object_new_string(strna(f->loops[i].reason)));
		json_object_object_add(l, "next_probe_at", time_or_null((int64_t) f->loops[i].next_probe_at));
		json_object_array_add(loops, l);
	}
	json_object_object_add(api, "loops_paused", loops);
	json_object_object_add(api, "foreign", foreign_json(n));
	return api;
}

static json_object *key_json(const StatusFacts *f) {
	json_object *key = json_object_new_object(), *standby = NULL;

	if (!key)
		return NULL;
	json_object_object_add(key, "loaded", json_object_new_boolean(f->num.key_loaded));
	json_object_object_add(key, "valid", f->num.key_valid < 0 ? NULL : json_object_new_boolean(f->num.key_valid));
	json_object_object_add(key, "api_key_id", string_or_null(f->str[STATUS_API_KEY_ID]));
	json_object_object_add(key, "error", string_or_null(f->str[STATUS_KEY_ERROR]));
	json_object_object_add(key, "active", json_object_new_string(f->num.key_on_standby ? "standby" : "primary"));
	json_object_object_add(key, "source", string_or_null(f->str[STATUS_KEY_SOURCE]));
	json_object_object_add(key, "first_used_at", time_or_null(f->num.key_first_used_at));
	json_object_object_add(key, "age_days", f->num.key_age_days_null ? NULL : int64(f->num.key_age_days));
	json_object_object_add(key, "rotate_after_days", int64(f->num.key_rotate_after_days));
	json_object_object_add(key, "switched_at", time_or_null(f->num.key_switched_at));
	json_object_object_add(key, "switch_reason", string_or_null(f->str[STATUS_KEY_SWITCH_REASON]));
	if (f->num.standby) {
		standby = json_object_new_object();
		json_object_object_add(standby, "state", string_or_null(f->str[STATUS_STANDBY_STATE]));
		json_object_object_add(standby, "source", string_or_null(f->str[STATUS_STANDBY_SOURCE]));
		json_object_object_add(standby, "error", string_or_null(f->str[STATUS_STANDBY_ERROR]));
	}
	json_object_object_add(key, "standby", standby);
	return key;
}

static json_object *socket_json(const StatusFacts *f) {
	json_object *sock = json_object_new_object();

	if (!sock)
		return NULL;
	json_object_object_add(sock, "path", string_or_null(f->str[STATUS_SOCKET_PATH]));
	json_object_object_add(sock, "activated", json_object_new_boolean(f->num.socket_activated));
	json_object_object_add(sock, "replaced", json_object_new_boolean(f->num.socket_replaced));
	return sock;
}

/* The callback receiver (PROTOCOL.md §5.2). */
static json_object *webhook_json(const StatusFacts *f) {
	const StatusNumbers *n = &f->num;
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "enabled", json_object_new_boolean(n->webhook_enabled));
	json_object_object_add(o, "listen", string_or_null(f->str[STATUS_WEBHOOK_LISTEN]));
	json_object_object_add(o, "activated", json_object_new_boolean(n->webhook_activated));
	json_object_object_add(o, "public_url", string_or_null(f->str[STATUS_WEBHOOK_PUBLIC_URL]));
	json_object_object_add(o, "received", int64(n->webhook_received));
	json_object_object_add(o, "rejected", int64(n->webhook_rejected));
	json_object_object_add(o, "last_at", time_or_null(n->webhook_last_at));
	json_object_object_add(o, "last_rejected_at", time_or_null(n->webhook_last_rejected_at));
	return o;
}

/* How polls go while callbacks arrive or not (PROTOCOL.md §5.2, sweep.h). */
static json_object *polling_json(const StatusFacts *f) {
	const StatusNumbers *n = &f->num;
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "mode", string_or_null(f->str[STATUS_POLL_MODE]));
	json_object_object_add(o, "reason", string_or_null(f->str[STATUS_POLL_REASON]));
	json_object_object_add(o, "since", time_or_null(n->poll_since));
	json_object_object_add(o, "sweep_interval_s", int64(n->poll_sweep_interval_s));
	json_object_object_add(o, "last_callback_at", time_or_null(n->poll_last_callback_at));
	json_object_object_add(o, "poll_reserve", int64(n->poll_reserve));
	return o;
}

json_object *status_reply_json(const StatusFacts *f) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *parts[6];
	static const char *const names[6] = { "budget", "queue", "forecast", "api", "key", "socket" };

	result = json_object_new_object();
	if (!result)
		return NULL;
	json_object_object_add(result, "version", json_object_new_string(HITLD_VERSION));
	json_object_object_add(result, "started_at", time_or_null(f->num.started_at));
	json_object_object_add(result, "uptime_s", int64(f->num.uptime_s));
	parts[0] = budget_json(&f->num);
	parts[1] = queue_json(&f->num);
	parts[2] = forecast_json(f);
	parts[3] = api_json(f);
	parts[4] = key_json(f);
	parts[5] = socket_json(f);
	for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
		if (!parts[i]) {
			for (size_t j = i + 1; j < ELEMENTSOF(parts); j++)
				json_object_put(parts[j]);
			return NULL;
		}
		json_object_object_add(result, names[i], parts[i]);
	}
	json_object_object_add(result, "paused", json_object_new_boolean(f->num.paused));
	parts[0] = webhook_json(f);
	if (!parts[0])
		return NULL;
	json_object_object_add(result, "webhook", parts[0]);
	parts[0] = polling_json(f);
	if (!parts[0])
		return NULL;
	json_object_object_add(result, "polling", parts[0]);
	return TAKE_PTR(result);
}

/* ------------------------------------------------------------------ the kept text */

static bool streq_null(const char *a, const char *b) {
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool facts_equal(const StatusReply *c, const StatusFacts *f) {
	if (memcmp(&c->num, &f->num, sizeof c->num) != 0 || c->n_loops != f->n_loops)
		return false;
	for (size_t i = 0; i < _STATUS_STRING_MAX; i++)
		if (!streq_null(c->str[i], f->str[i]))
			return false;
	for (size_t i = 0; i < f->n_loops; i++)
		if (c->loops[i].next_probe_at != f->loops[i].next_probe_at ||
		    !streq_null(c->loops[i].loop_id, f->loops[i].loop_id) ||
		    !streq_null(c->loops[i].reason, f->loops[i].reason))
			return false;
	return true;
}

static void free_loops(StatusLoop *loops, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free((char *) loops[i].loop_id);
		free((char *) loops[i].reason);
	}
	free(loops);
}

void status_reply_clear(StatusReply *c) {
	for (size_t i = 0; i < _STATUS_STRING_MAX; i++) {
		free(c->str[i]);
		c->str[i] = NULL;
	}
	free_loops(c->loops, c->n_loops);
	c->loops = NULL;
	c->n_loops = 0;
	free(c->text);
	c->text = NULL;
	c->text_len = 0;
}

static int strdup_null(const char *s, char **ret) {
	*ret = NULL;
	if (s && !(*ret = strdup(s)))
		return -ENOMEM;
	return 0;
}

/* Keeps owned copies of the facts the new text was built from. */
static int keep_facts(StatusReply *c, const StatusFacts *f) {
	c->num = f->num;
	for (size_t i = 0; i < _STATUS_STRING_MAX; i++)
		if (strdup_null(f->str[i], &c->str[i]) < 0)
			return -ENOMEM;
	if (f->n_loops == 0)
		return 0;
	c->loops = calloc(f->n_loops, sizeof *c->loops);
	if (!c->loops)
		return -ENOMEM;
	c->n_loops = f->n_loops;
	for (size_t i = 0; i < f->n_loops; i++) {
		c->loops[i].next_probe_at = f->loops[i].next_probe_at;
		if (strdup_null(f->loops[i].loop_id, (char **) &c->loops[i].loop_id) < 0 ||
		    strdup_null(f->loops[i].reason, (char **) &c->loops[i].reason) < 0)
			return -ENOMEM;
	}
	return 0;
}

const char *status_reply_text(StatusReply *c, const StatusFacts *f, size_t *ret_len) {
	_cleanup_(json_object_putp) json_object *o = NULL;
	const char *s;
	size_t len = 0;

	if (c->text && facts_equal(c, f)) {
		*ret_len = c->text_len;
		return c->text;
	}
	status_reply_clear(c);
	o = status_reply_json(f);
	if (!o)
		return NULL;
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s || keep_facts(c, f) < 0 || !(c->text = strndup(s, len))) {
		status_reply_clear(c);
		return NULL;
	}
	c->text_len = len;
	c->builds++;
	*ret_len = len;
	return c->text;
}

/* Emits the text kept in the StatusReply (userdata). */
static int kept_text_to_json(json_object *jso, struct printbuf *pb, int level, int flags) {
	const StatusReply *c = json_object_get_userdata(jso);

	return printbuf_memappend(pb, c->text ? c->text : "null", c->text ? (int) c->text_len : 4);
}

json_object *status_reply_object(StatusReply *c, const StatusFacts *f) {
	json_object *o;
	size_t len;

	if (!status_reply_text(c, f, &len))
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_set_serializer(o, kept_text_to_json, c, NULL);
	return o;
}
