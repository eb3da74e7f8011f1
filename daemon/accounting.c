/* accounting.c — (engine.h) where every call went: the engine's side of the
 * usage history (usage_store.h). It watches every HITL.sh call through the
 * ApiClient's observer (api_set_observer(): durably counted before it is
 * sent, its outcome when it ends), tags the engine's own calls with what they
 * are for, counts decisions and defaults, warns in the journal (MID_FOREIGN_USE)
 * when the server counts calls hitld did not make, and answers the `usage`
 * method and status's api.foreign from the history. */
#include <stdio.h>

#include "engine.h"
#include "log.h"
#include "msgid.h"
#include "params.h"
#include "rpc.h"

#define USAGE_SINCE_DEFAULT (24U * USEC_PER_HOUR)

static void foreign_check(Manager *m) {
	UsageWindow w;
	char n[16], own[16], used[16], limit[16], reset[ISO8601_MAX] = "";
	unsigned threshold = m->config->api_foreign_threshold;
	bool same_window;

	usage_store_window(m->usage, &w);
	if (w.foreign == 0)
		return;
	/* Once when a window's count reaches the threshold (a 429 hitld did
	 * not cause at once), then again only after as many more. */
	same_window = w.reset_epoch == m->foreign_logged_window;
	if (same_window ? w.foreign < m->foreign_logged + threshold : w.foreign < threshold && !w.foreign_429)
		return;
	m->foreign_logged_window = w.reset_epoch;
	m->foreign_logged = w.foreign;
	snprintf(n, sizeof n, "%u", (unsigned) w.foreign);
	snprintf(own, sizeof own, "%u", (unsigned) w.own);
	snprintf(used, sizeof used, "%u", (unsigned) w.server_used);
	snprintf(limit, sizeof limit, "%u", (unsigned) w.limit);
	if (w.reset_epoch > 0)
		format_iso8601((usec_t) w.reset_epoch * USEC_PER_SEC, reset);
	log_event(LOG_WARNING, MID_FOREIGN_USE,
	          LOG_FIELDS({ "HITL_FOREIGN_CALLS", n }, { "HITL_OWN_CALLS", own }, { "HITL_SERVER_USED", used },
	                     { "HITL_BUDGET_LIMIT", limit }, { "HITL_WINDOW_RESET", reset[0] ? reset : NULL },
	                     { "HITL_RATE_LIMITED", w.foreign_429 ? "1" : NULL }),
	          "Someone else uses this API key: HITL.sh counted %u calls in the window ending %s that hitld did not make "
	          "(hitld's own: %u of %u)%s.",
	          (unsigned) w.foreign, reset[0] ? reset : "now", (unsigned) w.own, (unsigned) w.limit,
	          w.foreign_429 ? "; they ran the budget out (429)" : "");
}

static uint64_t on_sending(ApiClient *c, const UsageTag *tag, void *userdata) {
	Manager *m = userdata;
	uint64_t seq = 0;

	(void) usage_store_sent(m->usage, tag, now_realtime(), &seq);
	return seq;
}

static void on_ended(ApiClient *c, const UsageTag *tag, uint64_t cookie, const ApiResult *res, void *userdata) {
	Manager *m = userdata;
	usec_t now = now_realtime();
	uint32_t found = 0;

	if (cookie == 0 && res->http_status == 0 && !res->maybe_sent) {
		(void) usage_store_unsent(m->usage, tag, now);
		return;
	}
	/* Sent without the observer hearing of it (cannot happen with curl's
	 * prereq callback, but a reply proves the call was made). */
	if (cookie == 0 && usage_store_sent(m->usage, tag, now, &cookie) < 0 && cookie == 0)
		return;
	/* The rate headers of another key's window (the standby's test, a reply
	 * with a key since replaced) say nothing of the current key's: the call
	 * counts, its headers do not feed the foreign-use estimate. */
	(void) usage_store_ended(m->usage, cookie, res->http_status, keyswitch_reply_is_stale(m, res) ? NULL : &res->rate,
	                         now, &found);
	if (found > 0 || res->http_status == 429) {
		foreign_check(m);
		manager_status_changed(m);
	}
}

int accounting_start(Manager *m) {
	int k;

	k = usage_store_open(outbox_state_dirfd(m->outbox), now_realtime(), &m->usage);
	if (k < 0)
		return k;
	api_set_observer(m->api, on_sending, on_ended, m);
	return 0;
}

void accounting_stop(Manager *m) {
	if (m->api)
		api_set_observer(m->api, NULL, NULL, NULL);
	m->usage = usage_store_free(m->usage, now_realtime());
}

void accounting_tag_work(Manager *m, ApiCall *call, WorkKind kind, const Record *r) {
	UsageTag tag = { .uid = USAGE_UID_SHARED };

	switch (kind) {
	case WORK_CREATE:
		tag.kind = USAGE_CREATE;
		break;
	case WORK_TRIGGER:
		tag.kind = USAGE_TRIGGER;
		break;
	case WORK_RECONCILE:
	case WORK_RECONCILE_GET:
		tag.kind = USAGE_RECONCILE;
		break;
	case WORK_CANCEL:
		tag.kind = USAGE_CANCEL;
		break;
	case WORK_FEEDBACK:
		tag.kind = USAGE_FEEDBACK;
		break;
	case WORK_PROBE:
		tag.kind = USAGE_PROBE;
		break;
	default:
		tag.kind = USAGE_POLL;
		break;
	}
	/* A loop's listing and the key's listing answer for everyone's
	 * requests: shared. Everything else is about one request. */
	if (r && kind != WORK_POLL_LOOP && kind != WORK_POLL_LIST)
		tag.uid = (uint32_t) r->owner_uid;
	/* A trigger's record holds its workflow id where a request's holds
	 * its loop: kept under the workflow's key (usage.h). */
	if (r && r->loop_id && kind == WORK_TRIGGER)
		usage_workflow_key(r->loop_id, tag.loop_id);
	else if (r && r->loop_id)
		snprintf(tag.loop_id, sizeof tag.loop_id, "%s", r->loop_id);
	api_call_tag(call, &tag);
}

void accounting_finished(Manager *m, const Record *r) {
	if (r->state != REQUEST_COMPLETED && r->state != REQUEST_TIMEOUT)
		return;
	(void) usage_store_finished(m->usage, r->state == REQUEST_COMPLETED, (uint32_t) r->owner_uid, r->loop_id,
	                            now_realtime());
}

void accounting_status_facts(Manager *m, StatusNumbers *n) {
	UsageWindow w;
	UsageTotals t;

	usage_store_window(m->usage, &w);
	usage_store_totals(m->usage, &t);
	n->foreign_calls = w.foreign;
	n->foreign_own_calls = w.own;
	n->foreign_server_used = w.server_used;
	n->foreign_reset_at = w.reset_epoch > 0 ? (int64_t) w.reset_epoch * (int64_t) USEC_PER_SEC : 0;
	n->foreign_rate_limited = w.foreign_429;
	n->foreign_threshold = m->config->api_foreign_threshold;
	n->foreign_alarm = w.foreign >= m->config->api_foreign_threshold || (w.foreign > 0 && w.foreign_429);
	n->foreign_total = (int64_t) t.calls[USAGE_FOREIGN][USAGE_NONE];
}

/* ------------------------------------------------------------------ the usage method */

/* "24h", "7d", "90m" or a number of seconds. */
static int parse_since(json_object *v, usec_t *ret) {
	const char *s;
	char *end;
	unsigned long long n;

	if (!v) {
		*ret = USAGE_SINCE_DEFAULT;
		return 0;
	}
	if (json_object_is_type(v, json_type_int)) {
		int64_t x = json_object_get_int64(v);

		if (x <= 0 || x > (int64_t) USAGE_DAYS_KEPT * 86400)
			return -ERANGE;
		*ret = (usec_t) x * USEC_PER_SEC;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s || n == 0 || n > USAGE_DAYS_KEPT * 24ULL * 60ULL)
		return -EINVAL;
	if (streq(end, "m"))
		*ret = n * USEC_PER_MINUTE;
	else if (streq(end, "h"))
		*ret = n * USEC_PER_HOUR;
	else if (streq(end, "d"))
		*ret = n * USEC_PER_DAY;
	else
		return -EINVAL;
	return *ret > (usec_t) USAGE_DAYS_KEPT * USEC_PER_DAY ? -ERANGE : 0;
}

static json_object *outcomes_json(const uint64_t *by) {
	json_object *o = json_object_new_object();

	for (UsageOutcome x = 0; x < _USAGE_OUTCOME_MAX; x++)
		if (x != USAGE_NONE)
			json_object_object_add(o, usage_outcome_to_string(x), json_object_new_int64((int64_t) by[x]));
	return o;
}

static json_object *sum_json(const UsageSum *s, UsageGroup by, bool with_key) {
	json_object *o = json_object_new_object();
	char buf[ISO8601_MAX], ubuf[16];

	if (with_key)
		switch (by) {
		case USAGE_BY_KIND:
			json_object_object_add(o, "kind", json_object_new_string(usage_kind_to_string(s->kind)));
			break;
		case USAGE_BY_UID:
			json_object_object_add(o, "uid", json_object_new_string(usage_uid_to_string(s->uid, ubuf)));
			break;
		case USAGE_BY_LOOP: {
			bool workflow = usage_id_is_workflow(s->loop_id);

			/* A trigger's calls are its workflow's, not a loop's. */
			json_object_object_add(o, "loop_id",
			                       s->loop_id[0] && !workflow ? json_object_new_string(s->loop_id) : NULL);
			json_object_object_add(o, "workflow_id", workflow ? json_object_new_string(s->loop_id) : NULL);
			break;
		}
		default:
			json_object_object_add(o, "hour", json_object_new_string(format_iso8601((usec_t) s->hour * USEC_PER_HOUR, buf)));
			break;
		}
	json_object_object_add(o, "calls", json_object_new_int64((int64_t) s->calls));
	json_object_object_add(o, "outcomes", outcomes_json(s->by_outcome));
	json_object_object_add(o, "decisions", json_object_new_int64((int64_t) s->decisions));
	json_object_object_add(o, "defaults", json_object_new_int64((int64_t) s->defaults));
	return o;
}

void accounting_method_usage(Manager *m, RpcCall *call, bool admin) {
	static const char *const known[] = { "since", "by", NULL };
	_cleanup_(freep) UsageSum *v = NULL;
	json_object *result, *rows;
	UsageSum total = {};
	UsageGroup by = USAGE_BY_KIND;
	usec_t now = now_realtime(), since;
	uint32_t uid = admin ? USAGE_UID_ANY : (uint32_t) rpc_call_uid(call);
	char buf[ISO8601_MAX], ubuf[16];
	const char *by_s;
	size_t n;
	int k;

	if (!params_check_known(call, known))
		return;
	k = params_string(call, "by", 16, &by_s);
	if (k == -EINVAL)
		return;
	if (k >= 0 && (by = usage_group_from_string(by_s)) < 0)
		return params_reply_invalid(call, "by", "by must be kind, uid, loop or hour");
	if (parse_since(json_object_object_get(rpc_call_params(call), "since"), &since) < 0)
		return params_reply_invalid(call, "since",
		                            "since must be like 1h, 24h, 7d or 30d (at most 31d), or a number of seconds");
	k = usage_store_query(m->usage, usec_sub(now, since), now, uid, by, &v, &n);
	if (k < 0)
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);

	rows = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		for (UsageOutcome x = 0; x < _USAGE_OUTCOME_MAX; x++)
			total.by_outcome[x] += v[i].by_outcome[x];
		total.calls += v[i].calls;
		total.decisions += v[i].decisions;
		total.defaults += v[i].defaults;
		/* Decisions and defaults are no calls: by kind they are in the total only. */
		if (by == USAGE_BY_KIND && v[i].kind >= _USAGE_CALL_KIND_MAX)
			continue;
		json_object_array_add(rows, sum_json(&v[i], by, true));
	}
	result = json_object_new_object();
	json_object_object_add(result, "since",
	                       json_object_new_string(format_iso8601((usec_t) usage_hour(usec_sub(now, since)) * USEC_PER_HOUR, buf)));
	json_object_object_add(result, "until", json_object_new_string(format_iso8601(now, buf)));
	json_object_object_add(result, "by", json_object_new_string(usage_group_to_string(by)));
	json_object_object_add(result, "scope", json_object_new_string(admin ? "all" : "own"));
	json_object_object_add(result, "uid", admin ? NULL : json_object_new_string(usage_uid_to_string(uid, ubuf)));
	json_object_object_add(result, "limit_per_hour", json_object_new_int64(m->budget.limit));
	json_object_object_add(result, "in_flight", json_object_new_int64(usage_store_in_flight(m->usage)));
	json_object_object_add(result, "rows", rows);
	json_object_object_add(result, "total", sum_json(&total, by, false));
	rpc_call_reply(call, result);
}
