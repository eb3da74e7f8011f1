/* api.h — HITL.sh HTTP calls on libcurl inside the daemon's sd-event loop; holds the key.
 * Reports every outcome (status, envelope, rate headers, whether a failed call may have
 * reached the server) and decides nothing; bounded to 16 calls and 4 MiB per body; never
 * logs the key or the Authorization header. One ApiClient per daemon, used by the scheduler.
 * The key lives only as "Authorization: Bearer <key>" in locked, undumpable pages
 * (lockedmem.h), one copy per call in flight, each wiped when it is let go; libcurl's (and,
 * with OpenSSL, OpenSSL's) freed buffers are wiped by curl_glue's allocator, so no copy of a
 * replaced key outlives the calls that used it. A standby key (hitld(8), "Key rotation")
 * lives in the same pages; it is used only by api_test_standby_key() until
 * api_promote_standby_key() makes it the current key.
 * Every call that is started is seen by the observer (api_set_observer()):
 * once when it is about to be sent, once when it ends, with the UsageTag its
 * starter gave it — the one place the usage history hears of calls. */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "budget.h"
#include "timeutil.h"
#include "usage.h"

#define API_MAX_IN_FLIGHT 16U
#define API_RESPONSE_BODY_MAX (4U * 1024U * 1024U)
#define API_REQUEST_BODY_MAX (1U * 1024U * 1024U)
#define API_PATH_MAX 2048U
/* ApiResult.key_serial of a call made with the standby key. */
#define API_KEY_SERIAL_STANDBY 0x7fffffffU

typedef struct ApiConfig {
	const char *base_url;     /* "https://api.hitl.sh/v1"; copied */
	const char *ca_file;      /* NULL = system store; copied */
	unsigned timeout_s;       /* whole-call timeout (connect timeout = min(10, timeout_s)); 0 = 30 */
} ApiConfig;

/* Whatever the server said reaches the caller with the key (the one the call
 * was made with, and the current one) replaced by
 * "[redacted]": in msg, in every string and member name of root (data
 * included) and in error_text, so no later path can show or store it. */
typedef struct ApiResult {
	long http_status;         /* 0 when no complete HTTP response was received */
	int curl_code;            /* CURLcode; 0 when a response arrived */
	bool maybe_sent;          /* no response, and the request may have reached the server
	                           * (curl got as far as sending it): outcome unknown */
	const char *error_text;   /* transport error text (curl's errbuf) or NULL */
	RateInfo rate;            /* from the response headers (also those of a response cut short) */
	json_object *root;        /* parsed body or NULL (owned by the ApiClient, valid during the callback) */
	bool api_error;           /* non-2xx, envelope error:true, or body_invalid */
	bool body_invalid;        /* a response arrived but its body is not a valid envelope
	                           * (then root, msg, data are NULL) */
	const char *msg;          /* envelope msg or NULL */
	json_object *data;        /* envelope data or NULL */
	usec_t started_at, finished_at; /* local realtime */
	unsigned key_serial;      /* api_key_serial() when the call started (API_KEY_SERIAL_STANDBY:
	                           * the standby key's test): a reply about a key since replaced
	                           * says nothing about the current one */
} ApiResult;

typedef struct ApiClient ApiClient;
typedef struct ApiCall ApiCall;

/* Called once per call that is not cancelled, from the event loop. May start
 * new calls; must not free the client. The ApiCall is gone when it returns. */
typedef void (*api_done_t)(ApiClient *c, const ApiResult *res, void *userdata);

/* The observer: sending() runs when a call is connected (TLS done) and about
 * to be sent (CURLOPT_PREREQFUNCTION), and returns a cookie (0: none);
 * ended() runs once for every call started, before its done() (also for one
 * cancelled by api_call_cancel(), as no reply), with that cookie, or 0 when
 * the call never got as far as sending. Calls aborted by api_free() end
 * unseen. Either may be NULL. */
typedef uint64_t (*api_sending_t)(ApiClient *c, const UsageTag *tag, void *userdata);
typedef void (*api_ended_t)(ApiClient *c, const UsageTag *tag, uint64_t cookie, const ApiResult *res,
                            void *userdata);
void api_set_observer(ApiClient *c, api_sending_t sending, api_ended_t ended, void *userdata);
/* What the call is for, for the observer; until set, a shared poll. Set it
 * right after starting the call: sending happens from the event loop. */
void api_call_tag(ApiCall *call, const UsageTag *tag);

/* Refuses (-EPROTONOSUPPORT, with a log_error naming the reason) a base_url
 * that is not https:// unless it is http:// to a loopback host (127.0.0.0/8,
 * ::1, localhost); -EINVAL for a URL that does not parse, has user info, a
 * query or a fragment. */
int api_new(sd_event *e, const ApiConfig *config, ApiClient **ret);
/* Aborts calls in flight without callbacks; wipes the key. */
ApiClient *api_free(ApiClient *c);
static inline void api_freep(ApiClient **c) {
	if (*c)
		api_free(*c);
}

/* Copies key (secret_key_is_valid(): 1..SECRET_KEY_MAX printable ASCII, no spaces) into the locked
 * pages and wipes the previous one. NULL clears it. Takes effect on the next
 * call; a call in flight keeps the key it started with until it ends. */
int api_set_key(ApiClient *c, const char *key);
bool api_has_key(const ApiClient *c);
/* Which key is current; changes whenever api_set_key() or
 * api_promote_standby_key() replaces it. */
unsigned api_key_serial(const ApiClient *c);

/* The standby key: copied into the locked pages like the current one (NULL
 * clears it). It is sent only by api_test_standby_key() (GET /test), until
 * api_promote_standby_key() makes it the current key (the old one is wiped;
 * calls in flight keep theirs; -ENOKEY without a standby). */
int api_set_standby_key(ApiClient *c, const char *key);
bool api_has_standby_key(const ApiClient *c);
int api_test_standby_key(ApiClient *c, api_done_t done, void *ud, ApiCall **ret);
int api_promote_standby_key(ApiClient *c);

/* method "GET"/"POST"/"PUT"/"DELETE"; path relative to base_url beginning
 * with "/" (e.g. "/api/requests?status=pending&limit=100", "/test"), printable
 * ASCII without spaces; body (not for GET) serialised plain, or NULL. Sends
 * Authorization: Bearer <key>, Accept: application/json, Content-Type with a
 * body, User-Agent hitld/<HITLD_VERSION>. Every call uses a fresh connection
 * that is closed afterwards, so curl never replays a request on its own.
 * Returns -ENOKEY without a key, -EBUSY with API_MAX_IN_FLIGHT calls in
 * flight, -E2BIG for a body over API_REQUEST_BODY_MAX. *ret_call (optional)
 * stays valid until done() returns or api_call_cancel(). */
int api_call(ApiClient *c, const char *method, const char *path, json_object *body,
             api_done_t done, void *userdata, ApiCall **ret_call);
/* No callback after this; the call is aborted (it may still have reached the
 * server). A no-op while the call's own done() runs. */
void api_call_cancel(ApiCall *call);
unsigned api_in_flight(const ApiClient *c);

/* Wrappers that build the paths; ids must be 24 hex, else -EINVAL. */
int api_test_key(ApiClient *c, api_done_t done, void *ud, ApiCall **ret);  /* GET /test */
/* POST /api/loops/{id}/requests; body required. */
int api_create_request(ApiClient *c, const char *loop_id, json_object *body, api_done_t done,
                       void *ud, ApiCall **ret);
/* GET /api/requests?status=&limit=&offset=&sort=; status one of the five
 * statuses or NULL, limit 1..100, sort one of created_at_desc, created_at_asc,
 * priority_desc, status_asc or NULL. */
int api_list_requests(ApiClient *c, const char *status, unsigned limit, unsigned offset,
                      const char *sort, api_done_t done, void *ud, ApiCall **ret);
int api_get_request(ApiClient *c, const char *id, api_done_t done, void *ud, ApiCall **ret);   /* GET /api/requests/{id} */
int api_cancel_request(ApiClient *c, const char *id, api_done_t done, void *ud, ApiCall **ret); /* DELETE /api/requests/{id} */
/* POST /api/requests/{id}/feedback with body {"feedback": feedback_obj}. */
int api_feedback(ApiClient *c, const char *id, json_object *feedback_obj, api_done_t done,
                 void *ud, ApiCall **ret);
/* METHOD /api/loops[/{loop_id}[suffix]]; suffix NULL, "/members",
 * "/members/<24 hex>" or "/requests" (needs loop_id). */
int api_loop_call(ApiClient *c, const char *method, const char *loop_id, const char *suffix,
                  json_object *body, api_done_t done, void *ud, ApiCall **ret);
