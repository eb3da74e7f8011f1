/* remote.c — the socket methods that call HITL.sh while the client waits
 * (remote.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "logrl.h"
#include "params.h"
#include "remote.h"
#include "validate.h"

#define LOOP_CACHE_MAX 64

typedef struct RemoteCacheEntry {
	char *key;                /* "list", "get/<id>", "members/<id>", "missing/<lower-case id>" */
	json_object *data;
	usec_t fetched_at;
	struct RemoteCacheEntry *next;
} RemoteCacheEntry;

typedef struct RemoteCall RemoteCall;

struct Remote {
	Manager *manager;
	RemoteCacheEntry *cache;  /* newest first */
	size_t cache_size;
	RemoteCall *calls;        /* in flight: freed by on_done, or by remote_free at exit */
};

struct RemoteCall {
	Remote *remote;
	RemoteCall *prev, *next;  /* the Remote's calls in flight */
	RpcCall *call;            /* NULL once the client is gone */
	ApiCall *api_call;
	char *cache_key;          /* reads: where to store the answer */
	bool write;               /* writes: empty the cache on success */
	bool key_test;
	uid_t uid;                /* whose share paid for it */
	bool admin;
};

static void cache_entry_free(RemoteCacheEntry *e) {
	free(e->key);
	json_object_put(e->data);
	free(e);
}

int remote_new(Manager *m, Remote **ret) {
	Remote *rm = calloc(1, sizeof *rm);

	if (!rm)
		return -ENOMEM;
	rm->manager = m;
	*ret = rm;
	return 0;
}

static void remote_call_free(RemoteCall *rc);

Remote *remote_free(Remote *rm) {
	if (!rm)
		return NULL;
	/* Calls still in flight at exit (HITL.sh hangs past the stop's grace): the manager,
	 * freed first, freed their ApiCalls without calling back, so nothing else frees these. */
	while (rm->calls)
		remote_call_free(rm->calls);
	remote_cache_flush(rm);
	free(rm);
	return NULL;
}

void remote_cache_flush(Remote *rm) {
	while (rm->cache) {
		RemoteCacheEntry *e = rm->cache;

		rm->cache = e->next;
		cache_entry_free(e);
	}
	rm->cache_size = 0;
}

static RemoteCacheEntry *cache_find(Remote *rm, const char *key, usec_t now) {
	usec_t ttl = (usec_t) rm->manager->config->api_loop_cache_ttl_s * USEC_PER_SEC;

	for (RemoteCacheEntry *e = rm->cache; e; e = e->next)
		if (streq(e->key, key))
			return usec_add(e->fetched_at, ttl) > now ? e : NULL;
	return NULL;
}

static void cache_store(Remote *rm, const char *key, json_object *data, usec_t now) {
	RemoteCacheEntry **p, *e;

	/* Replace an older entry of the same key; bound the list. */
	for (p = &rm->cache; *p; p = &(*p)->next)
		if (streq((*p)->key, key)) {
			e = *p;
			*p = e->next;
			cache_entry_free(e);
			rm->cache_size--;
			break;
		}
	/* Full: the oldest entry goes (new ones are at the head), so one
	 * user's misses cannot empty what others read. */
	if (rm->cache_size >= LOOP_CACHE_MAX) {
		for (p = &rm->cache; *p && (*p)->next; p = &(*p)->next)
			;
		if (*p) {
			cache_entry_free(*p);
			*p = NULL;
			rm->cache_size--;
		}
	}
	e = calloc(1, sizeof *e);
	if (!e)
		return;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return;
	}
	e->data = json_object_get(data);
	e->fetched_at = now;
	e->next = rm->cache;
	rm->cache = e;
	rm->cache_size++;
}

/* "missing/<id>" with the id in lower case: HITL.sh's ids are hex either way. */
static void missing_key(char buf[static 96], const char *loop_id) {
	size_t n = (size_t) snprintf(buf, 96, "missing/%s", loop_id);

	for (size_t i = strlen("missing/"); i < n && i < 96; i++)
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] = (char) (buf[i] - 'A' + 'a');
}

static void cache_drop(Remote *rm, const char *key) {
	for (RemoteCacheEntry **p = &rm->cache; *p; p = &(*p)->next)
		if (streq((*p)->key, key)) {
			RemoteCacheEntry *e = *p;

			*p = e->next;
			cache_entry_free(e);
			rm->cache_size--;
			return;
		}
}

/* After a loop read: a 404 marks the loop missing (with HITL.sh's message,
 * to answer the same again), a success unmarks it. */
static void cache_note_loop(Remote *rm, const char *cache_key, const ApiResult *res, usec_t now) {
	const char *slash = cache_key ? strchr(cache_key, '/') : NULL;
	char key[96];

	if (!slash || !(strncmp(cache_key, "get/", 4) == 0 || strncmp(cache_key, "members/", 8) == 0))
		return;
	missing_key(key, slash + 1);
	if (res->http_status == 404) {
		_cleanup_(json_object_putp) json_object *miss = json_object_new_object();

		if (miss && res->msg)
			json_object_object_add(miss, "msg", json_object_new_string(res->msg));
		cache_store(rm, key, miss, now);
	} else if (res->http_status >= 200 && res->http_status < 300)
		cache_drop(rm, key);
}

/* loop.get/loop.members of a loop known missing: the 404 again, at no cost. */
static bool reply_known_missing(Remote *rm, RpcCall *call, const char *loop_id, usec_t now) {
	RemoteCacheEntry *e;
	json_object *data;
	const char *msg;
	char key[96], buf[ISO8601_MAX];

	missing_key(key, loop_id);
	e = cache_find(rm, key, now);
	if (!e)
		return false;
	msg = json_object_get_string(json_object_object_get(e->data, "msg"));
	data = json_object_new_object();
	json_object_object_add(data, "http_status", json_object_new_int(404));
	json_object_object_add(data, "msg", msg ? json_object_new_string(msg) : NULL);
	json_object_object_add(data, "data", NULL);
	json_object_object_add(data, "cached", json_object_new_boolean(true));
	json_object_object_add(data, "fetched_at", json_object_new_string(format_iso8601(e->fetched_at, buf)));
	rpc_call_error(call, RPC_ERROR_REMOTE, msg ? msg : "HITL.sh answered an error.", data);
	return true;
}

bool remote_loop_known_missing(Remote *rm, const char *loop_id, usec_t *ret_since) {
	RemoteCacheEntry *e;
	char key[96];

	if (!loop_id)
		return false;
	missing_key(key, loop_id);
	e = cache_find(rm, key, now_realtime());
	if (e && ret_since)
		*ret_since = e->fetched_at;
	return e != NULL;
}

static json_object *with_cache_marks(json_object *data, bool cached, usec_t fetched_at) {
	_cleanup_(json_object_putp) json_object *copy = NULL;
	char buf[ISO8601_MAX];

	if (!json_object_is_type(data, json_type_object))
		return json_object_get(data);
	if (json_object_deep_copy(data, &copy, NULL) < 0)
		return NULL;
	json_object_object_add(copy, "cached", json_object_new_boolean(cached));
	json_object_object_add(copy, "fetched_at", json_object_new_string(format_iso8601(fetched_at, buf)));
	return TAKE_PTR(copy);
}

static void remote_call_free(RemoteCall *rc) {
	if (rc->prev)
		rc->prev->next = rc->next;
	else if (rc->remote && rc->remote->calls == rc)
		rc->remote->calls = rc->next;
	if (rc->next)
		rc->next->prev = rc->prev;
	free(rc->cache_key);
	free(rc);
}

static void on_abandon(RpcCall *call, void *userdata) {
	RemoteCall *rc = userdata;

	/* The call already cost budget; let it finish and drop the answer. */
	rc->call = NULL;
}

static void on_done(ApiClient *c, const ApiResult *res, void *userdata) {
	RemoteCall *rc = userdata;
	Remote *rm = rc->remote;
	Manager *m = rm->manager;
	usec_t now = now_realtime();

	/* Refused before anything was sent: the share is given back with the call
	 * (first, so that the ledger manager_observe_response() persists has it). */
	if (res->http_status == 0 && !res->maybe_sent)
		budget_refund_interactive(&m->budget, rc->uid, rc->admin, res->started_at, now);
	manager_observe_response(m, res);
	cache_note_loop(rm, rc->cache_key, res, now);

	if (rc->call) {
		rpc_call_set_abandon(rc->call, NULL, NULL);
		if (res->http_status == 0)
			rpc_call_error(rc->call, RPC_ERROR_UNAVAILABLE,
			               res->error_text ? res->error_text : "HITL.sh could not be reached.", NULL);
		else if (res->http_status == 401) {
			json_object *data = json_object_new_object();

			json_object_object_add(data, "msg", res->msg ? json_object_new_string(res->msg) : NULL);
			rpc_call_error(rc->call, RPC_ERROR_UNAVAILABLE, "HITL.sh refused the API key.", data);
		} else if (res->api_error || res->http_status >= 300) {
			json_object *data = json_object_new_object();

			json_object_object_add(data, "http_status", json_object_new_int((int) res->http_status));
			json_object_object_add(data, "msg", res->msg ? json_object_new_string(res->msg) : NULL);
			json_object_object_add(data, "data", json_object_get(res->data));
			rpc_call_error(rc->call, RPC_ERROR_REMOTE, res->msg ? res->msg : "HITL.sh answered an error.", data);
		} else {
			json_object *data = res->data ? res->data : NULL;

			if (rc->key_test && data)
				manager_set_api_key_id(m, json_object_get_string(json_object_object_get(data, "api_key_id")));
			if (rc->cache_key && data)
				cache_store(rm, rc->cache_key, data, now);
			if (rc->write)
				remote_cache_flush(rm);
			rpc_call_reply(rc->call, rc->cache_key ? with_cache_marks(data, false, now)
			                                       : json_object_get(data));
		}
	} else if (rc->write && res->http_status >= 200 && res->http_status < 300)
		remote_cache_flush(rm);

	remote_call_free(rc);
	manager_kick(m);
}

/* Checks that a call may be made now for the caller; answers the client and
 * returns false if not. */
static bool may_call_now(Manager *m, RpcCall *call, bool admin) {
	usec_t now = now_realtime(), slot;
	uid_t uid = rpc_call_uid(call);

	if (m->shutting_down) {
		rpc_call_error(call, RPC_ERROR_SHUTTING_DOWN, "The daemon is shutting down.", NULL);
		return false;
	}
	if (m->key_state == KEY_MISSING || m->key_state == KEY_INVALID) {
		json_object *data = json_object_new_object();

		json_object_object_add(data, "key", json_object_new_string(key_state_to_string(m->key_state)));
		json_object_object_add(data, "msg", m->key_error ? json_object_new_string(m->key_error) : NULL);
		rpc_call_error(call, RPC_ERROR_UNAVAILABLE,
		               m->key_state == KEY_MISSING ? "No API key is loaded." : "HITL.sh refused the API key.", data);
		return false;
	}
	slot = budget_interactive_slot(&m->budget, uid, admin, now);
	if (slot > now) {
		json_object *data = json_object_new_object();
		unsigned per_uid, total, used = budget_interactive_used(&m->budget, uid, now);
		char buf[ISO8601_MAX];

		budget_interactive_shares(&m->budget, &per_uid, &total);
		/* USEC_INFINITY: a share of 0, no time helps. */
		json_object_object_add(data, "retry_at", slot == USEC_INFINITY ? NULL
		                                         : json_object_new_string(format_iso8601(slot, buf)));
		if (!admin) {
			json_object_object_add(data, "share", json_object_new_int64(per_uid));
			json_object_object_add(data, "used", json_object_new_int64(used));
		}
		rpc_call_error(call, RPC_ERROR_BUDGET,
		               !admin && used >= per_uid ? "Your share of the API budget for loop calls is spent."
		                                         : "No API budget left right now.",
		               data);
		return false;
	}
	return true;
}

/* While HITL.sh is slow, a client fails starts at will (calls past API_MAX_IN_FLIGHT,
 * which spend no budget): one limit for the one call site, as systemd's
 * log_ratelimit_*() keep a static one per site. */
static LogRl start_failed_log = LOGRL_CLIENT;

static void start(Remote *rm, RpcCall *call, const char *method, const char *loop_id, const char *suffix,
                  json_object *body, const char *cache_key, bool write, bool key_test) {
	Manager *m = rm->manager;
	bool admin = manager_peer_is_admin(m, rpc_call_uid(call), rpc_call_gid(call));
	RemoteCall *rc;
	char more[LOGRL_SUFFIX_MAX];
	unsigned held;
	int k;

	if (!may_call_now(m, call, admin))
		return;
	rc = calloc(1, sizeof *rc);
	if (!rc || (cache_key && !(rc->cache_key = strdup(cache_key)))) {
		free(rc);
		return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
	}
	rc->remote = rm;
	rc->call = call;
	rc->write = write;
	rc->key_test = key_test;
	rc->uid = rpc_call_uid(call);
	rc->admin = admin;

	if (key_test)
		k = api_test_key(m->api, on_done, rc, &rc->api_call);
	else
		k = api_loop_call(m->api, method, loop_id, suffix, body, on_done, rc, &rc->api_call);
	if (k < 0) {
		remote_call_free(rc);
		if (logrl_below(&start_failed_log, rpc_call_uid(call), now_monotonic(), &held))
			log_warning_errno(k, "Failed to start a HITL.sh call for uid %u: %m%s", (unsigned) rpc_call_uid(call),
			                  logrl_suffix(held, more));
		return rpc_call_error(call, k == -EBUSY ? RPC_ERROR_UNAVAILABLE : RPC_ERROR_INTERNAL,
		                      k == -EBUSY ? "Too many HITL.sh calls in flight; try again." : "Internal error.", NULL);
	}
	rc->next = rm->calls;
	if (rm->calls)
		rm->calls->prev = rc;
	rm->calls = rc;
	{
		UsageTag tag = { .kind = USAGE_INTERACTIVE, .uid = (uint32_t) rc->uid };

		snprintf(tag.loop_id, sizeof tag.loop_id, "%s", loop_id ? loop_id : "");
		api_call_tag(rc->api_call, &tag);
	}
	manager_charge_interactive(m, rpc_call_uid(call), admin);
	rpc_call_set_abandon(call, on_abandon, rc);
}

/* Reads "id" (and "user_id" when asked) as HITL.sh ObjectIDs. */
static bool get_ids(RpcCall *call, const char **ret_id, const char **ret_user) {
	json_object *p = rpc_call_params(call);
	const char *id = json_object_get_string(json_object_object_get(p, "id"));

	if (!json_object_is_type(json_object_object_get(p, "id"), json_type_string) || !validate_object_id(id)) {
		params_reply_invalid(call, "id", "id must be a 24-character HITL.sh loop id");
		return false;
	}
	*ret_id = id;
	if (ret_user) {
		const char *user = json_object_get_string(json_object_object_get(p, "user_id"));

		if (!json_object_is_type(json_object_object_get(p, "user_id"), json_type_string) ||
		    !validate_object_id(user)) {
			params_reply_invalid(call, "user_id", "user_id must be a 24-character HITL.sh user id");
			return false;
		}
		*ret_user = user;
	}
	return true;
}

void remote_method_loop(Remote *rm, RpcCall *call) {
	Manager *m = rm->manager;
	const char *method = rpc_call_method(call), *id = NULL, *user = NULL;
	bool write = !streq(method, "loop.list") && !streq(method, "loop.get") && !streq(method, "loop.members");
	json_object *p = rpc_call_params(call);
	ValidationError err = {};
	char key[96], suffix[64];
	usec_t now = now_realtime();

	if (write && m->config->socket_loop_writes != LOOP_WRITES_ALL &&
	    !manager_peer_is_admin(m, rpc_call_uid(call), rpc_call_gid(call)))
		return rpc_call_error(call, RPC_ERROR_PERMISSION,
		                      "Loop changes are for administrators (socket.loop_writes = \"admin\").", NULL);

	if (streq(method, "loop.list")) {
		static const char *const known[] = { NULL };
		if (!params_check_known(call, known))
			return;
		snprintf(key, sizeof key, "list");
	} else if (streq(method, "loop.get") || streq(method, "loop.members")) {
		static const char *const known[] = { "id", NULL };
		if (!params_check_known(call, known) || !get_ids(call, &id, NULL))
			return;
		snprintf(key, sizeof key, "%s/%s", streq(method, "loop.get") ? "get" : "members", id);
	}

	if (!write) {
		RemoteCacheEntry *e = cache_find(rm, key, now);

		if (e)
			return rpc_call_reply(call, with_cache_marks(e->data, true, e->fetched_at));
		if (id && reply_known_missing(rm, call, id, now))
			return;
		return start(rm, call, "GET", id, streq(method, "loop.members") ? "/members" : NULL, NULL, key, false,
		             false);
	}

	if (streq(method, "loop.create")) {
		if (validate_loop_create(p, &err) < 0)
			return params_reply_invalid(call, err.field, err.reason);
		return start(rm, call, "POST", NULL, NULL, p, NULL, true, false);
	}
	if (streq(method, "loop.update")) {
		_cleanup_(json_object_putp) json_object *body = NULL;

		if (!get_ids(call, &id, NULL))
			return;
		if (json_object_deep_copy(p, &body, NULL) < 0)
			return rpc_call_error(call, RPC_ERROR_INTERNAL, "Out of memory.", NULL);
		json_object_object_del(body, "id");
		if (validate_loop_update(body, &err) < 0)
			return params_reply_invalid(call, err.field, err.reason);
		return start(rm, call, "PUT", id, NULL, body, NULL, true, false);
	}
	if (streq(method, "loop.delete")) {
		static const char *const known[] = { "id", NULL };
		if (!params_check_known(call, known) || !get_ids(call, &id, NULL))
			return;
		return start(rm, call, "DELETE", id, NULL, NULL, NULL, true, false);
	}
	if (streq(method, "loop.remove_member")) {
		static const char *const known[] = { "id", "user_id", NULL };
		if (!params_check_known(call, known) || !get_ids(call, &id, &user))
			return;
		snprintf(suffix, sizeof suffix, "/members/%s", user);
		return start(rm, call, "DELETE", id, suffix, NULL, NULL, true, false);
	}
	rpc_call_error(call, RPC_ERROR_METHOD_NOT_FOUND, "Method not found.", NULL);
}

void remote_method_key_test(Remote *rm, RpcCall *call) {
	static const char *const known[] = { NULL };

	if (!params_check_known(call, known))
		return;
	manager_key_test_begin(rm->manager);
	start(rm, call, NULL, NULL, NULL, NULL, NULL, false, true);
}
