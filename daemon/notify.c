/* notify.c — see notify.h: waiters, watches and the STATUS= line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "engine.h"
#include "notify.h"
#include "telemetry.h"

struct Waiter {
	Manager *manager;
	RpcCall *call;
	char id[RECORD_ID_MAX];
	sd_event_source *timer;
	Waiter *prev, *next;
};

struct Watch {
	Manager *manager;
	RpcConn *conn;
	uid_t uid;
	bool admin;
	char **ids;   /* NULL: every record the peer may see */
	size_t n_ids;
	Watch *prev, *next;
};

static Waiter *waiter_free(Waiter *w) {
	if (!w)
		return NULL;
	Manager *m = w->manager;
	if (w->prev)
		w->prev->next = w->next;
	else if (m->waiters == w)
		m->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	sd_event_source_disable_unref(w->timer);
	free(w);
	return NULL;
}

static void waiter_answer(Waiter *w, Record *r, bool done) {
	_cleanup_(json_object_putp) json_object *rec = NULL;
	json_object *result;

	if (r && manager_record_json(w->manager, r, &rec) >= 0) {
		result = json_object_new_object();
		json_object_object_add(result, "request", TAKE_PTR(rec));
		json_object_object_add(result, "done", json_object_new_boolean(done));
		rpc_call_reply(w->call, result);
	} else
		rpc_call_error(w->call, RPC_ERROR_NOT_FOUND, "Request not found.", NULL);
	w->call = NULL;
	waiter_free(w);
}

static int waiter_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
	Waiter *w = userdata;

	waiter_answer(w, outbox_get(w->manager->outbox, w->id), false);
	return 0;
}

static void waiter_on_abandon(RpcCall *call, void *userdata) {
	Waiter *w = userdata;

	w->call = NULL;
	waiter_free(w);
}

int manager_add_waiter(Manager *m, RpcCall *call, Record *r, usec_t timeout) {
	_cleanup_(freep) Waiter *w = NULL;
	int k;

	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->manager = m;
	w->call = call;
	snprintf(w->id, sizeof w->id, "%s", r->id);
	k = sd_event_add_time_relative(m->event, &w->timer, CLOCK_MONOTONIC, timeout, 10 * USEC_PER_MSEC,
	                               waiter_on_timeout, w);
	if (k < 0)
		return k;
	rpc_call_set_abandon(call, waiter_on_abandon, w);
	w->next = m->waiters;
	if (m->waiters)
		m->waiters->prev = w;
	m->waiters = TAKE_PTR(w);
	return 0;
}

static void watch_destroy(void *userdata) {
	Watch *w = userdata;
	Manager *m = w->manager;

	if (w->prev)
		w->prev->next = w->next;
	else if (m->watches == w)
		m->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	for (size_t i = 0; i < w->n_ids; i++)
		free(w->ids[i]);
	free(w->ids);
	free(w);
}

int manager_add_watch(Manager *m, RpcConn *conn, uid_t uid, bool admin, json_object *ids, size_t *ret_count) {
	Watch *w;
	size_t count = 0;

	if (rpc_conn_get_userdata(conn))
		return -EALREADY;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->manager = m;
	w->conn = conn;
	w->uid = uid;
	w->admin = admin;
	if (ids) {
		size_t n = json_object_array_length(ids);

		w->ids = calloc(n ? n : 1, sizeof(char *));
		if (!w->ids) {
			free(w);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			char *id = strdup(json_object_get_string(json_object_array_get_idx(ids, i)));

			if (!id) {
				watch_destroy(w);
				return -ENOMEM;
			}
			w->ids[w->n_ids++] = id;
			Record *r = outbox_get(m->outbox, id);
			if (r && (admin || r->owner_uid == uid))
				count++;
		}
	} else
		for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r))
			if (admin || r->owner_uid == uid)
				count++;

	w->next = m->watches;
	if (m->watches)
		m->watches->prev = w;
	m->watches = w;
	rpc_conn_set_userdata(conn, w, watch_destroy);
	rpc_conn_set_watching(conn, true);
	*ret_count = count;
	return 0;
}

static bool watch_matches(const Watch *w, const Record *r) {
	if (!w->admin && r->owner_uid != w->uid)
		return false;
	if (!w->ids)
		return true;
	for (size_t i = 0; i < w->n_ids; i++)
		if (streq(w->ids[i], r->id))
			return true;
	return false;
}

static bool anyone_listens(Manager *m, const Record *r) {
	if (request_state_is_terminal(r->state))
		for (Waiter *w = m->waiters; w; w = w->next)
			if (streq(w->id, r->id))
				return true;
	for (Watch *w = m->watches; w; w = w->next)
		if (watch_matches(w, r))
			return true;
	return false;
}

void manager_notify(Manager *m, Record *r) {
	_cleanup_(json_object_putp) json_object *rec = NULL;

	/* Most changes have no audience: do not build the record for nobody. */
	if (!anyone_listens(m, r) || manager_record_json(m, r, &rec) < 0)
		return;

	/* Waiters are answered once the request is final. */
	if (request_state_is_terminal(r->state))
		for (Waiter *w = m->waiters, *next; w; w = next) {
			next = w->next;
			if (streq(w->id, r->id))
				waiter_answer(w, r, true);
		}

	for (Watch *w = m->watches, *next; w; w = next) {
		json_object *params;

		next = w->next;
		if (!watch_matches(w, r))
			continue;
		params = json_object_new_object();
		json_object_object_add(params, "request", json_object_get(rec));
		if (rpc_conn_notify(w->conn, "request.changed", params) == -ENOBUFS)
			/* Frees w through watch_destroy once the connection goes. */
			rpc_conn_notify_and_close(w->conn, "watch.overflow", json_object_new_object());
	}
}

void notify_status_now(Manager *m) {
	char reset[ISO8601_MAX];
	usec_t now = now_realtime();

	sd_notifyf(false,
	           "STATUS=%s%s%s%s%s%zu queued, %zu submitting, %zu pending; budget %u/%u left, resets %s%s%s",
	           m->socket_file.replaced ? "Socket replaced, restart after fixing its directory! " : "",
	           m->paused ? "Paused. " : "",
	           m->breaker != APIERR_NONE ? "Creates paused: " : "",
	           m->breaker != APIERR_NONE ? strna(m->breaker_reason) : "",
	           m->breaker != APIERR_NONE ? ". " : "",
	           outbox_count_state(m->outbox, REQUEST_QUEUED),
	           outbox_count_state(m->outbox, REQUEST_SUBMITTING),
	           outbox_count_state(m->outbox, REQUEST_PENDING),
	           budget_remaining(&m->budget, now), m->budget.limit,
	           format_iso8601(m->budget.window_end, reset),
	           m->last_error ? "; last API error: " : "",
	           m->last_error ? m->last_error : "");
}

static int on_status_defer(sd_event_source *s, void *userdata) {
	Manager *m = userdata;

	notify_status_now(m);
	/* Submits that find the work timer armed do not wake the engine. */
	telemetry_observe(m->telemetry, now_realtime());
	return 0;
}

void manager_status_changed(Manager *m) {
	if (m->status_defer)
		sd_event_source_set_enabled(m->status_defer, SD_EVENT_ONESHOT);
}

int notify_start(Manager *m) {
	return sd_event_add_defer(m->event, &m->status_defer, on_status_defer, m);
}

void notify_end_waiters(Manager *m) {
	while (m->waiters) {
		Waiter *w = m->waiters;

		if (w->call)
			rpc_call_error(w->call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);
		w->call = NULL;
		waiter_free(w);
	}
}
