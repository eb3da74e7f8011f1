/* usage.c — see usage.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "usage.h"

static const char *const kind_names[_USAGE_KIND_MAX] = {
	[USAGE_CREATE] = "create",       [USAGE_POLL] = "poll",
	[USAGE_CANCEL] = "cancel",       [USAGE_FEEDBACK] = "feedback",
	[USAGE_RECONCILE] = "reconcile", [USAGE_INTERACTIVE] = "interactive",
	[USAGE_PROBE] = "probe",         [USAGE_TRIGGER] = "trigger",
	[USAGE_FOREIGN] = "foreign",     [USAGE_DECISION] = "decision",
	[USAGE_DEFAULT] = "default",
};

static const char *const outcome_names[_USAGE_OUTCOME_MAX] = {
	[USAGE_2XX] = "2xx",          [USAGE_4XX] = "4xx",       [USAGE_429] = "429", [USAGE_5XX] = "5xx",
	[USAGE_NO_REPLY] = "no_reply", [USAGE_UNSENT] = "unsent", [USAGE_NONE] = "none",
};

static const char *const group_names[_USAGE_GROUP_MAX] = {
	[USAGE_BY_KIND] = "kind", [USAGE_BY_UID] = "uid", [USAGE_BY_LOOP] = "loop", [USAGE_BY_HOUR] = "hour",
};

void usage_workflow_key(const char *workflow_id, char ret[static USAGE_LOOP_ID_MAX]) {
	const size_t prefix = strlen(USAGE_WORKFLOW_PREFIX);
	const char *rest;
	uint32_t hash = 2166136261U;
	size_t len;

	ret[0] = '\0';
	if (!workflow_id || strncmp(workflow_id, USAGE_WORKFLOW_PREFIX, prefix) != 0)
		return;
	rest = workflow_id + prefix;
	len = strlen(rest);
	if (len == 0 || strspn(rest, USAGE_WORKFLOW_SYMBOLS) != len)
		return;
	if (len <= USAGE_WORKFLOW_KEPT) {
		snprintf(ret, USAGE_LOOP_ID_MAX, "%s", workflow_id);
		return;
	}
	for (const char *p = workflow_id; *p; p++)
		hash = (hash ^ (uint8_t) *p) * 16777619U;
	snprintf(ret, USAGE_LOOP_ID_MAX, "%s%.*s~", USAGE_WORKFLOW_PREFIX, (int) USAGE_WORKFLOW_HEAD, rest);
	for (unsigned i = 0; i < USAGE_WORKFLOW_HASH; i++, hash >>= 6)
		ret[prefix + USAGE_WORKFLOW_HEAD + 1 + i] = USAGE_WORKFLOW_SYMBOLS[hash & 63];
	ret[prefix + USAGE_WORKFLOW_HEAD + 1 + USAGE_WORKFLOW_HASH] = '\0';
}

bool usage_id_is_workflow(const char *id) {
	return id && strncmp(id, USAGE_WORKFLOW_PREFIX, strlen(USAGE_WORKFLOW_PREFIX)) == 0;
}

const char *usage_kind_to_string(UsageKind k) {
	return k >= 0 && k < _USAGE_KIND_MAX ? kind_names[k] : NULL;
}

UsageKind usage_kind_from_string(const char *s) {
	for (UsageKind k = 0; s && k < _USAGE_KIND_MAX; k++)
		if (streq(s, kind_names[k]))
			return k;
	return _USAGE_KIND_INVALID;
}

const char *usage_outcome_to_string(UsageOutcome o) {
	return o >= 0 && o < _USAGE_OUTCOME_MAX ? outcome_names[o] : NULL;
}

const char *usage_group_to_string(UsageGroup g) {
	return g >= 0 && g < _USAGE_GROUP_MAX ? group_names[g] : NULL;
}

UsageGroup usage_group_from_string(const char *s) {
	for (UsageGroup g = 0; s && g < _USAGE_GROUP_MAX; g++)
		if (streq(s, group_names[g]))
			return g;
	return _USAGE_GROUP_INVALID;
}

UsageOutcome usage_outcome_from_status(long http_status, bool reached_server) {
	if (http_status <= 0)
		return reached_server ? USAGE_NO_REPLY : USAGE_UNSENT;
	if (http_status == 429)
		return USAGE_429;
	if (http_status >= 200 && http_status < 300)
		return USAGE_2XX;
	if (http_status >= 500 || http_status < 100)
		return USAGE_5XX;
	return USAGE_4XX;
}

const char *usage_uid_to_string(uint32_t uid, char buf[static 16]) {
	switch (uid) {
	case USAGE_UID_SHARED:
		return "shared";
	case USAGE_UID_FOREIGN:
		return "foreign";
	case USAGE_UID_OTHER:
		return "other";
	default:
		snprintf(buf, 16, "%u", (unsigned) uid);
		return buf;
	}
}

/* ------------------------------------------------------------------ buckets */

void usage_history_done(UsageHistory *h) {
	for (size_t i = 0; i < h->n_hours; i++)
		free(h->hours[i].rows);
	free(h->hours);
	*h = (UsageHistory) {};
}

/* The hour, inserted in order if new; NULL on ENOMEM. */
static UsageHour *hour_get(UsageHistory *h, uint32_t hour, bool create) {
	size_t lo = 0, hi = h->n_hours;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->hours[mid].hour == hour)
			return &h->hours[mid];
		if (h->hours[mid].hour < hour)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	if (h->n_hours == h->n_alloc) {
		size_t n = h->n_alloc ? h->n_alloc * 2 : 64;
		UsageHour *p = reallocarray(h->hours, n, sizeof *p);

		if (!p)
			return NULL;
		h->hours = p;
		h->n_alloc = n;
	}
	memmove(&h->hours[lo + 1], &h->hours[lo], (h->n_hours - lo) * sizeof *h->hours);
	h->hours[lo] = (UsageHour) { .hour = hour };
	h->n_hours++;
	return &h->hours[lo];
}

const UsageHour *usage_history_get(const UsageHistory *h, uint32_t hour) {
	return hour_get((UsageHistory *) h, hour, false);
}

static UsageRow *row_find(UsageHour *hr, UsageKind kind, UsageOutcome outcome, uint32_t uid, const char *loop_id) {
	for (size_t i = 0; i < hr->n_rows; i++) {
		UsageRow *r = &hr->rows[i];

		if (r->kind == kind && r->outcome == outcome && r->uid == uid && streq(r->loop_id, loop_id))
			return r;
	}
	return NULL;
}

static UsageRow *row_append(UsageHour *hr, UsageKind kind, UsageOutcome outcome, uint32_t uid, const char *loop_id) {
	if (hr->n_rows == hr->n_alloc) {
		size_t n = hr->n_alloc ? hr->n_alloc * 2 : 8;
		UsageRow *p = reallocarray(hr->rows, n, sizeof *p);

		if (!p)
			return NULL;
		hr->rows = p;
		hr->n_alloc = n;
	}
	hr->rows[hr->n_rows] = (UsageRow) { .kind = (uint8_t) kind, .outcome = (uint8_t) outcome, .uid = uid };
	snprintf(hr->rows[hr->n_rows].loop_id, USAGE_LOOP_ID_MAX, "%s", loop_id);
	return &hr->rows[hr->n_rows++];
}

int usage_history_add(UsageHistory *h, uint32_t hour, UsageKind kind, UsageOutcome outcome, uint32_t uid,
                      const char *loop_id, uint32_t n) {
	UsageHour *hr;
	UsageRow *r;

	if (kind < 0 || kind >= _USAGE_KIND_MAX || outcome < 0 || outcome >= _USAGE_OUTCOME_MAX)
		return -EINVAL;
	if (!loop_id || strlen(loop_id) >= USAGE_LOOP_ID_MAX)
		loop_id = "";
	if (n == 0)
		return 0;
	hr = hour_get(h, hour, true);
	if (!hr)
		return -ENOMEM;
	r = row_find(hr, kind, outcome, uid, loop_id);
	/* Full: first the loop goes, then the uid. The fold rows (one per kind
	 * and outcome) are beyond the bound, so the counts stay whole. */
	if (!r && hr->n_rows >= USAGE_ROWS_PER_HOUR_MAX) {
		loop_id = "";
		r = row_find(hr, kind, outcome, uid, loop_id);
		if (!r) {
			uid = USAGE_UID_OTHER;
			r = row_find(hr, kind, outcome, uid, loop_id);
		}
	}
	if (!r)
		r = row_append(hr, kind, outcome, uid, loop_id);
	if (!r)
		return -ENOMEM;
	r->count = r->count > UINT32_MAX - n ? UINT32_MAX : r->count + n;
	return 0;
}

void usage_history_expire(UsageHistory *h, uint32_t first_kept) {
	size_t drop = 0;

	while (drop < h->n_hours && h->hours[drop].hour < first_kept)
		free(h->hours[drop++].rows);
	if (drop == 0)
		return;
	memmove(h->hours, h->hours + drop, (h->n_hours - drop) * sizeof *h->hours);
	h->n_hours -= drop;
}

/* ------------------------------------------------------------------ queries */

static bool same_key(UsageGroup by, const UsageSum *s, const UsageRow *r, uint32_t hour) {
	switch (by) {
	case USAGE_BY_KIND:
		return s->kind == (UsageKind) r->kind;
	case USAGE_BY_UID:
		return s->uid == r->uid;
	case USAGE_BY_LOOP:
		return streq(s->loop_id, r->loop_id);
	default:
		return s->hour == hour;
	}
}

static int key_cmp(const void *a, const void *b, void *by) {
	const UsageSum *x = a, *y = b;

	switch (*(UsageGroup *) by) {
	case USAGE_BY_KIND:
		return (x->kind > y->kind) - (x->kind < y->kind);
	case USAGE_BY_UID:
		return (x->uid > y->uid) - (x->uid < y->uid);
	case USAGE_BY_LOOP:
		return strcmp(x->loop_id, y->loop_id);
	default:
		return (x->hour > y->hour) - (x->hour < y->hour);
	}
}

static void sum_add(UsageSum *s, const UsageRow *r) {
	if (r->kind == USAGE_DECISION)
		s->decisions += r->count;
	else if (r->kind == USAGE_DEFAULT)
		s->defaults += r->count;
	else {
		s->by_outcome[r->outcome] += r->count;
		if (r->outcome != USAGE_UNSENT)
			s->calls += r->count;
	}
}

static int sums_push(UsageSum **v, size_t *n, size_t *alloc, UsageSum **ret) {
	if (*n == *alloc) {
		size_t m = *alloc ? *alloc * 2 : 16;
		UsageSum *p = reallocarray(*v, m, sizeof *p);

		if (!p)
			return -ENOMEM;
		*v = p;
		*alloc = m;
	}
	*ret = &(*v)[(*n)++];
	**ret = (UsageSum) { .kind = _USAGE_KIND_INVALID };
	return 0;
}

int usage_history_query(const UsageHistory *h, uint32_t from_hour, uint32_t to_hour, uint32_t uid,
                        UsageGroup by, UsageSum **ret, size_t *ret_n) {
	_cleanup_(freep) UsageSum *v = NULL;
	size_t n = 0, alloc = 0;
	int k;

	if (by < 0 || by >= _USAGE_GROUP_MAX || from_hour > to_hour || !ret || !ret_n)
		return -EINVAL;
	if (by == USAGE_BY_HOUR) {
		if (to_hour - from_hour >= USAGE_HOURS_KEPT + 24U)
			return -ERANGE;
		for (uint32_t hour = from_hour;; hour++) {
			UsageSum *s;

			k = sums_push(&v, &n, &alloc, &s);
			if (k < 0)
				return k;
			s->hour = hour;
			if (hour == to_hour)
				break;
		}
	}
	for (size_t i = 0; i < h->n_hours; i++) {
		const UsageHour *hr = &h->hours[i];

		if (hr->hour < from_hour || hr->hour > to_hour)
			continue;
		for (size_t j = 0; j < hr->n_rows; j++) {
			const UsageRow *r = &hr->rows[j];
			UsageSum *s = NULL;

			if (uid != USAGE_UID_ANY && r->uid != uid)
				continue;
			if (by == USAGE_BY_HOUR)
				s = &v[hr->hour - from_hour];
			else
				for (size_t x = 0; x < n && !s; x++)
					if (same_key(by, &v[x], r, hr->hour))
						s = &v[x];
			if (!s) {
				k = sums_push(&v, &n, &alloc, &s);
				if (k < 0)
					return k;
				s->kind = r->kind;
				s->uid = r->uid;
				memcpy(s->loop_id, r->loop_id, sizeof s->loop_id);
				s->hour = hr->hour;
			}
			sum_add(s, r);
		}
	}
	if (n > 1)
		qsort_r(v, n, sizeof *v, key_cmp, &by);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* ------------------------------------------------------------------ foreign use */

uint32_t usage_window_observe(UsageWindow *w, long http_status, const RateInfo *rate, uint32_t in_flight_others) {
	bool headers = rate && rate->has_limit && rate->has_remaining && rate->has_reset && rate->limit > 0 &&
	               rate->limit <= BUDGET_LIMIT_MAX;
	bool first = w->reset_epoch == 0;
	uint32_t own_max, found;

	if (headers && rate->reset_epoch < w->reset_epoch)
		return 0; /* about a window that has ended */
	if (headers && rate->reset_epoch > w->reset_epoch)
		*w = (UsageWindow) { .reset_epoch = rate->reset_epoch };
	/* What the server counts: everything but a 401 (before the key is
	 * known) and a 429 (over the limit). A 5xx, or a call without a reply,
	 * may or may not have been counted; taking it as counted can only hide
	 * a foreign call, never invent one. Without headers it is taken to be
	 * in the current window. */
	if (http_status != 401 && http_status != 429 && w->own < UINT32_MAX)
		w->own++;
	if (!headers)
		return 0;
	w->limit = rate->limit;
	if (rate->remaining <= rate->limit && rate->limit - rate->remaining > w->server_used)
		w->server_used = rate->limit - rate->remaining;
	/* The first window the history sees (a new state directory, an
	 * upgrade): who made its earlier calls is unknown, hitld's own
	 * included, so they are taken as its own. A 429 still tells. */
	if (first && http_status != 429 && w->own < w->server_used)
		w->own = w->server_used;
	/* Calls still in flight may have been counted before this reply: all of
	 * them are taken as counted, so the estimate is a lower bound. */
	own_max = w->own > UINT32_MAX - in_flight_others ? UINT32_MAX : w->own + in_flight_others;
	if (http_status == 429 && own_max < w->limit)
		w->foreign_429 = true;
	if (w->server_used <= own_max || w->server_used - own_max <= w->foreign)
		return 0;
	found = w->server_used - own_max - w->foreign;
	w->foreign += found;
	return found;
}
