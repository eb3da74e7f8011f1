/* budget_json.c — see budget_json.h. */
#include <assert.h>
#include <limits.h>

#include "budget_json.h"
#include "cleanup.h"

static int json_add(json_object *o, const char *key, json_object *v) {
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int shares_to_json(const Budget *b, json_object **ret) {
	_cleanup_(json_object_putp) json_object *a = NULL;
	int r;

	a = json_object_new_array_ext((int) b->n_shares);
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_shares; i++) {
		_cleanup_(json_object_putp) json_object *e = json_object_new_object();

		if (!e)
			return -ENOMEM;
		if ((r = json_add(e, "uid", json_object_new_int64(b->shares[i].uid))) < 0 ||
		    (r = json_add(e, "used", json_object_new_int64(b->shares[i].used))) < 0)
			return r;
		if (json_object_array_add(a, e) < 0)
			return -ENOMEM;
		TAKE_PTR(e);
	}
	*ret = TAKE_PTR(a);
	return 0;
}

/* What the window spent, with the window it was spent in. */
static int spent_to_json(const Budget *b, json_object **ret) {
	_cleanup_(json_object_putp) json_object *o = NULL;
	json_object *uids = NULL;
	int r;

	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	if ((r = shares_to_json(b, &uids)) < 0)
		return r;
	if ((r = json_add(o, "uids", uids)) < 0 ||
	    (r = json_add(o, "window_start_usec", json_object_new_uint64(b->window_start))) < 0 ||
	    (r = json_add(o, "window_end_usec", json_object_new_uint64(b->window_end))) < 0 ||
	    (r = json_add(o, "reserve_used", json_object_new_int64(b->used_other))) < 0 ||
	    (r = json_add(o, "interactive_used", json_object_new_int64(b->interactive_used))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

int budget_to_json(const Budget *b, json_object **ret) {
	_cleanup_(json_object_putp) json_object *o = NULL;
	json_object *spent = NULL;
	int r;

	assert(b);
	assert(ret);

	o = json_object_new_object();
	if (!o)
		return -ENOMEM;

	if ((r = json_add(o, "version", json_object_new_int(BUDGET_FORMAT_VERSION))) < 0 ||
	    (r = json_add(o, "limit", json_object_new_int64(b->limit))) < 0 ||
	    (r = json_add(o, "used", json_object_new_int64(b->used))) < 0 ||
	    (r = json_add(o, "window_start_usec", json_object_new_uint64(b->window_start))) < 0 ||
	    (r = json_add(o, "window_end_usec", json_object_new_uint64(b->window_end))) < 0 ||
	    (r = json_add(o, "paused_until_usec", json_object_new_uint64(b->paused_until))) < 0 ||
	    (r = json_add(o, "from_server", json_object_new_boolean(b->from_server))) < 0 ||
	    (r = json_add(o, "last_call_at_usec", json_object_new_uint64(b->last_call_at))) < 0 ||
	    (r = json_add(o, "over_limit_429s", json_object_new_int64(b->over_limit_429s))) < 0 ||
	    (r = json_add(o, "server_reset_epoch", json_object_new_int64(b->server_reset_epoch))) < 0 ||
	    (r = json_add(o, "prev_window_exhausted", json_object_new_boolean(b->prev_window_exhausted))) < 0 ||
	    /* Version 2: */
	    (r = json_add(o, "last_create_at_usec", json_object_new_uint64(b->last_create_at))) < 0 ||
	    (r = json_add(o, "last_was_create", json_object_new_boolean(b->last_was_create))) < 0)
		return r;
	if ((r = spent_to_json(b, &spent)) < 0 || (r = json_add(o, "spent", spent)) < 0)
		return r;

	*ret = TAKE_PTR(o);
	return 0;
}

/* A non-negative integer member no larger than max. */
static int json_get_uint(json_object *o, const char *key, uint64_t max, uint64_t *ret) {
	json_object *v;
	uint64_t u;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -EBADMSG;
	if (json_object_get_int64(v) < 0)
		return -EBADMSG;
	u = json_object_get_uint64(v);
	if (u > max)
		return -EBADMSG;
	*ret = u;
	return 0;
}

static int json_get_bool(json_object *o, const char *key, bool *ret) {
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -EBADMSG;
	*ret = json_object_get_boolean(v);
	return 0;
}

/* Version 1's members: the count of the window and when it ends. */
static int ledger_from_json(Budget *n, json_object *j, usec_t now) {
	uint64_t limit, used, window_start, window_end, paused_until, last_call_at, n429, reset;
	bool from_server, exhausted;

	if (json_get_uint(j, "limit", BUDGET_LIMIT_MAX, &limit) < 0 || limit == 0 ||
	    json_get_uint(j, "used", UINT_MAX, &used) < 0 ||
	    json_get_uint(j, "window_start_usec", UINT64_MAX, &window_start) < 0 ||
	    json_get_uint(j, "window_end_usec", UINT64_MAX, &window_end) < 0 ||
	    json_get_uint(j, "paused_until_usec", UINT64_MAX, &paused_until) < 0 ||
	    json_get_uint(j, "last_call_at_usec", UINT64_MAX, &last_call_at) < 0 ||
	    json_get_uint(j, "over_limit_429s", UINT_MAX, &n429) < 0 ||
	    json_get_uint(j, "server_reset_epoch", BUDGET_EPOCH_MAX, &reset) < 0 ||
	    json_get_bool(j, "from_server", &from_server) < 0 ||
	    json_get_bool(j, "prev_window_exhausted", &exhausted) < 0)
		return -EBADMSG;

	if (window_end <= window_start || window_end - window_start > BUDGET_WINDOW_MAX)
		return -EBADMSG;
	/* A window or pause far in our future is corruption (or a clock stepped back
	 * by more than a day); either way it must not stall the daemon. */
	if (window_start > usec_add(now, BUDGET_WINDOW_MAX) ||
	    paused_until > usec_add(now, usec_add(BUDGET_WINDOW_MAX, BUDGET_429_JITTER_MAX)))
		return -EBADMSG;
	if (from_server && reset == 0)
		return -EBADMSG;

	n->limit = (unsigned) limit;
	n->used = (unsigned) used;
	n->window_start = window_start;
	n->window_end = window_end;
	n->paused_until = paused_until;
	n->from_server = from_server;
	n->last_call_at = last_call_at;
	n->over_limit_429s = (unsigned) n429;
	n->server_reset_epoch = (int64_t) reset;
	n->prev_window_exhausted = exhausted;
	return 0;
}

/* At most BUDGET_SHARE_UIDS_MAX uids, each once. */
static int shares_from_json(json_object *a, BudgetShare *shares, size_t *ret_n) {
	size_t len;

	if (!json_object_is_type(a, json_type_array))
		return -EBADMSG;
	len = json_object_array_length(a);
	if (len > BUDGET_SHARE_UIDS_MAX)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		uint64_t uid, used;

		if (!json_object_is_type(e, json_type_object) ||
		    json_get_uint(e, "uid", (uid_t) -1 - 1, &uid) < 0 ||
		    json_get_uint(e, "used", UINT_MAX, &used) < 0)
			return -EBADMSG;
		for (size_t k = 0; k < i; k++)
			if (shares[k].uid == (uid_t) uid)
				return -EBADMSG;
		shares[i] = (BudgetShare) { .uid = (uid_t) uid, .used = (unsigned) used };
	}
	*ret_n = len;
	return 0;
}

/* Version 2's members: pacing, and what the window spent. Spending that names
 * another window than the ledger's is not this window's: it is dropped. */
static int spent_from_json(Budget *n, json_object *j) {
	uint64_t last_create_at, window_start, window_end, reserve_used, interactive_used;
	json_object *spent, *uids;
	bool last_was_create;
	size_t n_shares;

	if (json_get_uint(j, "last_create_at_usec", UINT64_MAX, &last_create_at) < 0 ||
	    json_get_bool(j, "last_was_create", &last_was_create) < 0 ||
	    !json_object_object_get_ex(j, "spent", &spent) || !json_object_is_type(spent, json_type_object) ||
	    json_get_uint(spent, "window_start_usec", UINT64_MAX, &window_start) < 0 ||
	    json_get_uint(spent, "window_end_usec", UINT64_MAX, &window_end) < 0 ||
	    json_get_uint(spent, "reserve_used", UINT_MAX, &reserve_used) < 0 ||
	    json_get_uint(spent, "interactive_used", UINT_MAX, &interactive_used) < 0 ||
	    !json_object_object_get_ex(spent, "uids", &uids) ||
	    shares_from_json(uids, n->shares, &n_shares) < 0)
		return -EBADMSG;

	n->last_create_at = last_create_at;
	n->last_was_create = last_was_create;
	if (window_start != n->window_start || window_end != n->window_end) {
		n->n_shares = 0;
		return 0;
	}
	n->used_other = (unsigned) reserve_used;
	n->interactive_used = (unsigned) interactive_used;
	n->n_shares = n_shares;
	return 0;
}

int budget_from_json(Budget *b, json_object *j, usec_t now) {
	uint64_t version;
	Budget n;

	assert(b);

	if (!j || !json_object_is_type(j, json_type_object))
		return -EBADMSG;
	if (json_get_uint(j, "version", UINT32_MAX, &version) < 0 || version < 1 || version > BUDGET_FORMAT_VERSION)
		return -EBADMSG;

	/* The configuration sanitized as budget_init() does; the rest is the file's. */
	budget_init(&n, &b->config, now);
	if (ledger_from_json(&n, j, now) < 0)
		return -EBADMSG;
	/* Version 1 knew nothing of what the window spent: taken as nothing. */
	if (version >= 2 && spent_from_json(&n, j) < 0)
		return -EBADMSG;

	/* Never heard from the server: the configured limit rules (it may have
	 * changed across the restart). */
	n.limit_from_server = n.server_reset_epoch != 0;
	if (n.server_reset_epoch == 0)
		n.limit = n.config.limit_per_hour;  /* used stays as counted, as over a reload */

	/* An ended window takes what it spent with it. */
	budget_tick(&n, now);
	*b = n;
	return 0;
}
