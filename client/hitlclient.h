/* hitlclient.h — a small, synchronous C client for hitld's control socket
 * (JSON-RPC 2.0, one message per line; see PROTOCOL.md). One HitlClient owns one
 * connection; every call blocks until the daemon answers or a timeout passes.
 * Thread-compatible: use one client per thread. Depends on json-c only.
 *
 * Conventions, as in the rest of hitld:
 *   - Functions that can fail return 0 (or a positive value where documented)
 *     on success and a negative errno on failure.
 *   - Out-parameters named ret_* come last and are written only on success.
 *   - When the daemon answers a call with a JSON-RPC error, the call returns
 *     -EREMOTEIO and fills the optional HitlError *error with the daemon's code,
 *     message and data. Every other negative errno is a local or transport
 *     problem (-ENOENT / -EACCES / -ECONNREFUSED at connect, -ETIMEDOUT,
 *     -ECONNRESET when the daemon closed the connection, -EMSGSIZE for an
 *     over-long line, -EBADMSG for a reply that is not JSON-RPC, -EINTR when a
 *     signal interrupted the wait).
 *   - json_object parameters are borrowed (the caller keeps its reference);
 *     json_object results are new references the caller must json_object_put().
 *
 * Minimal use: submit a request and, if hitld refuses it, say which field and
 * why (e.data; e.message alone is only "Invalid parameters."):
 *
 *     HitlClient *c = NULL;
 *     HitlError e = HITL_ERROR_INIT;
 *     json_object *res = NULL, *params = json_tokener_parse(
 *             "{\"loop_id\": \"65f1234567890abcdef12345\", \"request_text\": \"Deploy?\","
 *             " \"response_type\": \"single_select\", \"response_config\": {\"options\": [\"yes\", \"no\"]},"
 *             " \"default_response\": \"no\"}");
 *     int r = hitl_client_connect(NULL, &c);     // $HITLD_SOCKET or /run/hitld.sock
 *     if (r >= 0)
 *             r = hitl_request_submit(c, params, &res, &e);
 *     if (r == -EREMOTEIO && e.code == HITL_ERROR_INVALID_PARAMS)
 *             fprintf(stderr, "refused: %s: %s\n",    // e.g. "default_response: must be one of …"
 *                     json_object_get_string(json_object_object_get(e.data, "field")),
 *                     json_object_get_string(json_object_object_get(e.data, "reason")));
 *     else if (r == -EREMOTEIO)
 *             fprintf(stderr, "hitld: %s (%s) %s\n", e.message, hitl_error_code_name(e.code),
 *                     e.data ? json_object_to_json_string(e.data) : "");
 *     else if (r < 0)
 *             fprintf(stderr, "hitld: %s\n", strerror(-r));
 *     else
 *             printf("queued as %s\n", json_object_get_string(json_object_object_get(res, "id")));
 *     json_object_put(res);
 *     json_object_put(params);
 *     hitl_error_clear(&e);
 *     hitl_client_free(c);
 *
 * Link with `pkg-config --libs hitlclient` (libhitlclient and json-c). The
 * manual, hitlclient(3) (`man hitlclient`), has every function grouped, the
 * error codes, watching from an event loop and a complete ask-and-wait program.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <json-c/json.h>

#include "hitlerrors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ constants */

#define HITL_PROTOCOL_VERSION 1

/* Where clients look when nothing else is said. */
#define HITL_SOCKET_DEFAULT "/run/hitld.sock"
/* The environment variable that overrides HITL_SOCKET_DEFAULT. */
#define HITL_SOCKET_ENV "HITLD_SOCKET"
/* hitld@NAME.service listens on /run/hitld-NAME.sock. */
#define HITL_SOCKET_INSTANCE_FORMAT "/run/hitld-%s.sock"
/* Longest instance name hitl_socket_path_for_instance() accepts. */
#define HITL_INSTANCE_NAME_MAX 64

/* Default bound on one incoming line (the protocol's default maximum message).
 * A longer line from the daemon is an error (-EMSGSIZE) and ends the connection. */
#define HITL_MESSAGE_MAX_DEFAULT ((size_t) 1024 * 1024)
/* Default time a call may take before it fails with -ETIMEDOUT (request.wait
 * adds its own timeout_ms on top). */
#define HITL_CALL_TIMEOUT_MS_DEFAULT 120000
/* Notifications a client keeps while a call is in progress (later ones are
 * dropped and reported by hitl_watch_next() as a "watch.overflow" event with
 * params {"source": "client", "dropped": N}; see hitl_watch_next()). */
#define HITL_EVENT_QUEUE_MAX 1000

/* The JSON-RPC and hitld error codes (PROTOCOL.md §5), HITL_ERROR_PARSE (-32700) …
 * HITL_ERROR_UNAVAILABLE (-32010), are in hitlerrors.h (included above): hitld's own
 * sources include it too, so the numbers are defined once. */

/* ------------------------------------------------------------------ types */

typedef struct HitlClient HitlClient;

/* A JSON-RPC error as the daemon sent it. Initialise with HITL_ERROR_INIT,
 * release with hitl_error_clear(). Every call that takes one empties it
 * first and fills it only when it returns -EREMOTEIO, so one HitlError can be
 * reused across calls and never shows an earlier call's error.
 *
 * message is for people and says little ("Invalid parameters."); programs
 * branch on code and read data, whose members depend on the code
 * (PROTOCOL.md §6):
 *   HITL_ERROR_INVALID_PARAMS  {"field": path of the culprit, e.g. "default_response" or
 *                               "response_config.options[2].value", "reason": why, in English}
 *   HITL_ERROR_PARSE, HITL_ERROR_INVALID_REQUEST  {"reason"}
 *   HITL_ERROR_QUOTA           {"limit": the bound that was reached}
 *   HITL_ERROR_BUDGET          {"retry_at": time when budget is back}
 *   HITL_ERROR_REMOTE          {"http_status", "msg": HITL.sh's message, "data": HITL.sh's data}
 *   HITL_ERROR_UNAVAILABLE     sometimes {"key": the key's state, "msg"}
 *   other codes                no data (NULL)
 * Text that came from HITL.sh never holds the API key (hitld redacts it). */
typedef struct HitlError {
	int code;            /* e.g. HITL_ERROR_NOT_FOUND; 0 when empty */
	char *message;       /* the daemon's short English sentence, or NULL */
	json_object *data;   /* the error's "data" member (see above), or NULL; owned by the HitlError */
} HitlError;

#define HITL_ERROR_INIT ((HitlError) { 0, NULL, NULL })

/* One notification received on a watching connection. Start from
 * HITL_EVENT_INIT; hitl_watch_next() empties it before filling it (so one
 * event may be passed again and again); release with hitl_event_clear(). */
typedef struct HitlEvent {
	char *method;          /* "request.changed", "watch.overflow", … */
	json_object *params;   /* the notification's params (owned; an empty object if absent) */
	json_object *request;  /* params.request for "request.changed" (borrowed from params), else NULL */
	char *line;            /* the notification exactly as the daemon sent it, without the newline */
} HitlEvent;

#define HITL_EVENT_INIT ((HitlEvent) { NULL, NULL, NULL, NULL })

/* Filters for hitl_request_list(). Zero-initialise ({0}) and set what you need. */
typedef struct HitlListFilter {
	const char *const *states; /* NULL-terminated state names, or NULL for every state */
	const char *loop_id;       /* or NULL */
	bool owner_uid_set;        /* true: only owner_uid's requests (other uids: admins only) */
	uint32_t owner_uid;
	unsigned limit;            /* 1–1000; 0: the daemon's default (100) */
	const char *cursor;        /* next_cursor of the previous page, or NULL */
} HitlListFilter;

/* Filters for hitl_usage(). Zero-initialise ({0}) and set what you need; a
 * member left 0/NULL is left out and the daemon's default applies. */
typedef struct HitlUsageFilter {
	const char *since;      /* "1h", "24h" (default), "7d", "30d", or N followed by m, h or d; at most 31 days */
	uint32_t since_seconds; /* or the same as a number of seconds (1–2678400); not both with since */
	const char *by;         /* "kind" (default), "uid", "loop" or "hour": what a row sums */
} HitlUsageFilter;

/* ------------------------------------------------------------------ errors */

/* Frees what e holds and empties it. Accepts NULL. */
void hitl_error_clear(HitlError *e);

/* The protocol's name of a code ("not_found", "budget_exhausted", …), or NULL
 * for a code the protocol does not define. */
const char *hitl_error_code_name(int code);

/* Frees what ev holds and empties it. Accepts NULL. */
void hitl_event_clear(HitlEvent *ev);

/* ------------------------------------------------------------------ socket paths */

/* The socket a client should use: explicit_path if it is non-NULL and
 * non-empty, else $HITLD_SOCKET if set and non-empty, else /run/hitld.sock.
 * The string returned is explicit_path, the environment's or a constant: do
 * not free it. */
const char *hitl_socket_path(const char *explicit_path);

/* "/run/hitld-NAME.sock" for an instance NAME of hitld@.service. NAME must be
 * 1–HITL_INSTANCE_NAME_MAX characters of [A-Za-z0-9_.:@-] and not start with
 * '.'; else -EINVAL. *ret_path is malloc'ed. */
int hitl_socket_path_for_instance(const char *name, char **ret_path);

/* ------------------------------------------------------------------ connection */

/* Connects to hitld's socket at path (NULL or "": see hitl_socket_path()).
 * While the daemon's listen backlog is full (hitld stopped or swamped) the
 * connect is retried for at most HITL_CALL_TIMEOUT_MS_DEFAULT, then fails with
 * -ETIMEDOUT (no environment variable changes this; see
 * hitl_client_connect_timeout()); a signal during that wait is -EINTR. Other errors: -ENOENT (no socket there:
 * hitld not installed or not started), -EACCES (not allowed to open the
 * socket: group membership), -ECONNREFUSED (a socket file with no daemon
 * behind it), -ENAMETOOLONG (path longer than a Unix socket address allows),
 * -EINVAL (ret NULL), -ENOMEM, or another connect(2) errno. */
int hitl_client_connect(const char *path, HitlClient **ret);

/* Like hitl_client_connect(), but waits at most timeout_ms for a full backlog
 * (0: one attempt; negative: as long as it takes). Only the connect: the
 * client's call timeout is still HITL_CALL_TIMEOUT_MS_DEFAULT. */
int hitl_client_connect_timeout(const char *path, int timeout_ms, HitlClient **ret);

/* Wraps an already connected AF_UNIX stream socket (e.g. one half of a
 * socketpair in tests). The client takes ownership of fd, also on failure
 * (it is closed then). Sets O_NONBLOCK on fd's open file description, so on
 * every duplicate of fd too, and leaves it set; FD_CLOEXEC is the caller's
 * business (neither set nor cleared). -EBADF for a negative fd, -EINVAL for
 * a NULL ret. */
int hitl_client_new_from_fd(int fd, HitlClient **ret);

/* Closes the connection and frees the client. Accepts NULL; returns NULL. */
HitlClient *hitl_client_free(HitlClient *c);

/* The connection's descriptor, for poll(2) in an event loop. Do not read from
 * or write to it; it stays the client's. Check hitl_client_pending() before
 * each poll(2): what the client already holds does not make it readable. */
int hitl_client_fd(const HitlClient *c);

/* True when the client holds input that poll(2) on hitl_client_fd() cannot
 * see: notifications kept during a call, or lines read together with an
 * earlier one. Then call hitl_watch_next(c, 0, …) until it returns 0 (it may
 * return 0 at once: a held line may be the late reply of an abandoned call).
 * False for NULL. */
bool hitl_client_pending(const HitlClient *c);

/* Sets how long one call may take, in ms (negative: no limit). Default
 * HITL_CALL_TIMEOUT_MS_DEFAULT. request.wait adds its timeout_ms on top. */
void hitl_client_set_timeout(HitlClient *c, int timeout_ms);

/* Sets the longest line the client accepts from the daemon, in bytes
 * (minimum 4096; default HITL_MESSAGE_MAX_DEFAULT). Also the longest request
 * it sends: a longer one fails with -EMSGSIZE before anything is written. */
void hitl_client_set_max_message(HitlClient *c, size_t bytes);

/* True once the connection can no longer be used (the daemon closed it, a
 * framing error, a timed-out call whose reply could not be skipped). Every
 * call on a broken client fails with the error that broke it. */
bool hitl_client_is_broken(const HitlClient *c);

/* ------------------------------------------------------------------ generic call */

/* Calls method with params (an object, or NULL for {}), waits for the reply
 * with the same id and returns its result in *ret_result (may be NULL to
 * discard it; a JSON null result is returned as NULL). Notifications that
 * arrive meanwhile are kept for hitl_watch_next(). Returns 0, -EREMOTEIO with
 * *error filled (error may be NULL), or a transport error. A call that failed
 * with -ETIMEDOUT or -EINTR leaves the connection usable: its late reply is
 * recognised by its id and skipped. */
int hitl_client_call(HitlClient *c, const char *method, json_object *params, json_object **ret_result,
                     HitlError *error);

/* Like hitl_client_call(), but the call may take extra_timeout_ms (≥ 0) longer
 * than the client's timeout (used by request.wait). A negative
 * extra_timeout_ms is -EINVAL and nothing is sent (for no limit, set the
 * client's timeout to -1). */
int hitl_client_call_full(HitlClient *c, const char *method, json_object *params, int extra_timeout_ms,
                          json_object **ret_result, HitlError *error);

/* ------------------------------------------------------------------ methods (PROTOCOL.md §4) */

/* hello {client, protocol: 1} → {protocol, daemon, version, uid, admin}.
 * client_name may be NULL. */
int hitl_hello(HitlClient *c, const char *client_name, json_object **ret_result, HitlError *error);

/* status {} → {version, started_at, uptime_s, budget, queue, api, key, paused}. */
int hitl_status(HitlClient *c, json_object **ret_status, HitlError *error);

/* request.submit: params is an object of HITL.sh's create-request fields plus
 * an optional client_ref (PROTOCOL.md §5.3 has every rule):
 *   loop_id           required: 24 hex characters
 *   request_text      required: 1–2000 characters (markdown)
 *   response_type     required: "single_select", "multi_select", "rating", "number", "text"
 *   response_config   required: object, by type: {"options": [...]} for selects,
 *                     {"scale_max"} for rating, {"max_value"} for number, {} or {"max_length"} for text
 *   default_response  required: the result when nobody answers in time; fits the type
 *   priority          "low", "medium" (default), "high", "critical"
 *   processing_type   "time-sensitive" or "deferred" (default)
 *   timeout_seconds   required when time-sensitive (60–86400); deferred: 60–2592000
 *   type, image_url   "markdown" (default) or "image" with an http(s) image_url
 *   context           object shown to reviewers (≤ 50 KB; "hitld_id" is reserved)
 *   callback_url, platform, platform_version, tags
 *   client_ref        1–128 characters: submitting again with it returns the first request
 * → {id, state, created_at, position, duplicate}. A refusal is -EREMOTEIO with
 * error->code HITL_ERROR_INVALID_PARAMS and error->data {"field", "reason"}. */
int hitl_request_submit(HitlClient *c, json_object *params, json_object **ret_result, HitlError *error);

/* request.get {id} → the request record. */
int hitl_request_get(HitlClient *c, const char *id, json_object **ret_record, HitlError *error);

/* request.get {client_ref} → the caller's request submitted with that client_ref. */
int hitl_request_get_by_ref(HitlClient *c, const char *client_ref, json_object **ret_record, HitlError *error);

/* request.wait {id, timeout_ms} (0–3600000). Returns 1 when the request is in
 * a terminal state, 0 when timeout_ms passed first; *ret_record (may be NULL)
 * gets the record either way. */
int hitl_request_wait(HitlClient *c, const char *id, int timeout_ms, json_object **ret_record, HitlError *error);

/* request.list with filter (NULL: no filter) → {requests: [record…], next_cursor}. */
int hitl_request_list(HitlClient *c, const HitlListFilter *filter, json_object **ret_result, HitlError *error);

/* request.cancel {id} → the record (state "cancelled", or cancel_requested). */
int hitl_request_cancel(HitlClient *c, const char *id, json_object **ret_record, HitlError *error);

/* request.feedback {id, feedback} → the record (feedback_state "queued").
 * feedback is an object such as {"rating": 5, "comment": "…"}. */
int hitl_request_feedback(HitlClient *c, const char *id, json_object *feedback, json_object **ret_record,
                          HitlError *error);

/* workflow.trigger {workflow_id, data, client_ref} → {kind: "trigger", id,
 * state, created_at, position, duplicate}, once the trigger is stored; data
 * (a JSON object, borrowed) and client_ref may be NULL. hitl_request_wait()
 * on the id then gives the record: "completed" with its execution_id, or
 * "failed" (error.code "outcome_unknown": it may or may not have run, and is
 * never sent again). */
int hitl_workflow_trigger(HitlClient *c, const char *workflow_id, json_object *data, const char *client_ref,
                          json_object **ret_result, HitlError *error);

/* watch {ids} (ids: NULL-terminated, or NULL for every request the caller may
 * see). Returns the number of requests watched ("watching") — 0 or more.
 * From then on the connection carries notifications: read them with
 * hitl_watch_next(). Other calls stay possible on the same connection. */
int hitl_watch(HitlClient *c, const char *const *ids, HitlError *error);

/* Waits up to timeout_ms (negative: forever, 0: only what is already there)
 * for the next notification. Returns 1 and fills *ret_event, 0 when the time
 * passed, or a negative errno (-ECONNRESET once the daemon closed the
 * connection, e.g. after its "watch.overflow"; -EINTR on a signal).
 * "watch.overflow" comes in two kinds, told apart by params:
 *   - the daemon's (params without "source"): it was too far behind and the
 *     daemon closes the connection; connect, hitl_watch() again, then re-read;
 *   - the library's, params {"source": "client", "dropped": N}: more than
 *     HITL_EVENT_QUEUE_MAX notifications came during calls, the first ones
 *     were kept (returned before it), N later ones dropped; the connection
 *     stays open and the watch goes on.
 * Either way changes were missed: re-read the watched records
 * (hitl_request_get(), hitl_request_list()). */
int hitl_watch_next(HitlClient *c, int timeout_ms, HitlEvent *ret_event);

/* usage with filter (NULL: the last 24 hours by kind) → {since, until, by,
 * scope, uid, limit_per_hour, in_flight, rows: [{kind|uid|loop_id|hour, calls,
 * outcomes: {"2xx", "4xx", "429", "5xx", "no_reply", "unsent"}, decisions,
 * defaults}…], total: {calls, outcomes, decisions, defaults}}: where the
 * HITL.sh calls made with hitld's key went (PROTOCOL.md §5.12), summed over
 * whole hours. Costs no HITL.sh call. An admin sees every uid's calls and
 * other programs' ("scope": "all"), anyone else only the calls made for their
 * own requests ("own"). A filter with both since and since_seconds is -EINVAL;
 * a since or by the daemon does not know is -EREMOTEIO with
 * HITL_ERROR_INVALID_PARAMS and error->data {"field", "reason"}. */
int hitl_usage(HitlClient *c, const HitlUsageFilter *filter, json_object **ret_result, HitlError *error);

/* metrics {} → {content_type, text}: hitld's figures in the Prometheus text
 * exposition format 0.0.4; "text" is newline-terminated, ready to serve or
 * write to a file (PROTOCOL.md §5.13, hitld(8) METRICS). Costs no HITL.sh
 * call. A non-admin gets the budget and their own requests only. */
int hitl_metrics(HitlClient *c, json_object **ret_result, HitlError *error);

/* loop.* (these call HITL.sh and may cost budget) → HITL.sh's data object,
 * plus "cached"/"fetched_at" for reads. String arguments that are NULL are
 * left out (loop_update: unchanged; loop_create: description optional). */
int hitl_loop_list(HitlClient *c, json_object **ret_result, HitlError *error);
int hitl_loop_get(HitlClient *c, const char *loop_id, json_object **ret_result, HitlError *error);
int hitl_loop_members(HitlClient *c, const char *loop_id, json_object **ret_result, HitlError *error);
int hitl_loop_create(HitlClient *c, const char *name, const char *description, const char *icon,
                     json_object **ret_result, HitlError *error);
int hitl_loop_update(HitlClient *c, const char *loop_id, const char *name, const char *description,
                     const char *icon, json_object **ret_result, HitlError *error);
int hitl_loop_delete(HitlClient *c, const char *loop_id, json_object **ret_result, HitlError *error);
int hitl_loop_remove_member(HitlClient *c, const char *loop_id, const char *user_id, json_object **ret_result,
                            HitlError *error);

/* Admin methods: key.test (calls HITL.sh /v1/test, costs budget) → HITL.sh's
 * data; queue.pause / queue.resume → {paused}; daemon.reload → {reloaded}.
 * key.rotate → {switched: true, api_key_id}: hitld tests its standby key
 * (credential hitl-api-key.next or api.next_key_file) with HITL.sh, a call on
 * the standby's own budget, and switches to it; the call returns once HITL.sh
 * has answered. No standby, a rotation already under way or a standby HITL.sh
 * refuses (error->data {"standby": "refused", "msg"}) is
 * HITL_ERROR_INVALID_STATE, no usable reply from HITL.sh
 * HITL_ERROR_UNAVAILABLE; the current key stays in use in each case. A
 * non-admin gets HITL_ERROR_PERMISSION from each of these. */
int hitl_key_test(HitlClient *c, json_object **ret_result, HitlError *error);
int hitl_key_rotate(HitlClient *c, json_object **ret_result, HitlError *error);
int hitl_queue_pause(HitlClient *c, json_object **ret_result, HitlError *error);
int hitl_queue_resume(HitlClient *c, json_object **ret_result, HitlError *error);
int hitl_daemon_reload(HitlClient *c, json_object **ret_result, HitlError *error);

/* ------------------------------------------------------------------ helpers */

/* Parses the protocol's time form "YYYY-MM-DDTHH:MM:SS[.fff]Z" (also
 * "+00:00") into seconds since the epoch. Second 60 only where RFC 3339 §5.7
 * allows a leap second, 23:59:60 on a month's last day, read as the next
 * second (the next day's 00:00:00: time_t has no leap seconds). -EINVAL on
 * anything else (":60" at another time included). */
int hitl_time_parse(const char *s, time_t *ret);

/* Parses a duration: a number of seconds ("900"), or one or more
 * number+unit pairs with units s, m, h, d ("15m", "1h30m", "2d"). Returns
 * -EINVAL for anything else, -ERANGE past 100 years. */
int hitl_duration_parse(const char *s, uint64_t *ret_seconds);

#ifdef __cplusplus
}
#endif
