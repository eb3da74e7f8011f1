/* rpc.h — the JSON-RPC 2.0 / NDJSON server on the control socket (PROTOCOL.md §1, §2, §5).
 * Owns the accepted connections: SO_PEERCRED identity taken at accept, line framing, strict
 * UTF-8 and JSON checks, per-connection and per-uid bounds, ordered replies, idle timeout.
 * Fairness between uids (issue 15): each uid's calls get a share of the loop's time
 * (uidshare.h; past it its connections are not read, backpressure rather than errors),
 * connections take turns of RPC_LINES_PER_TURN lines, and buffered output is bounded per uid
 * and in total as well as per connection.
 * Buffered input (a partial line, lines waiting their turn) is bounded per connection by
 * max_message_bytes, and per uid and in total like the output: past a bound, the connection
 * (of that uid, or of anyone) holding the most input is answered as a line over
 * max_message_bytes is ("message too large") and closed. Not "stop reading the one that
 * would pass": if every connection of a uid holds half a line, none could ever finish it.
 * Admins are held to the memory bounds like everyone (only the time share exempts them).
 * Every warning a client can cause (a refused connection, a bound passed) is rate-limited
 * per cause and uid (logrl.h, LOGRL_CLIENT): no uid fills the journal or hides another's.
 * Knows no method: every well-formed request goes to the dispatch callback (methods layer). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "hitlerrors.h"
#include "timeutil.h"

typedef struct RpcServer RpcServer;
typedef struct RpcConn RpcConn;
typedef struct RpcCall RpcCall;

/* JSON-RPC and hitld error codes (PROTOCOL.md §5), the daemon's names for
 * hitlerrors.h's: the numbers are defined once, for client and daemon. */
#define RPC_ERROR_PARSE            HITL_ERROR_PARSE
#define RPC_ERROR_INVALID_REQUEST  HITL_ERROR_INVALID_REQUEST
#define RPC_ERROR_METHOD_NOT_FOUND HITL_ERROR_METHOD_NOT_FOUND
#define RPC_ERROR_INVALID_PARAMS   HITL_ERROR_INVALID_PARAMS
#define RPC_ERROR_INTERNAL         HITL_ERROR_INTERNAL
#define RPC_ERROR_NOT_FOUND        HITL_ERROR_NOT_FOUND
#define RPC_ERROR_PERMISSION       HITL_ERROR_PERMISSION
#define RPC_ERROR_QUOTA            HITL_ERROR_QUOTA
#define RPC_ERROR_BUDGET           HITL_ERROR_BUDGET
#define RPC_ERROR_STORAGE          HITL_ERROR_STORAGE
#define RPC_ERROR_REMOTE           HITL_ERROR_REMOTE
#define RPC_ERROR_INVALID_STATE    HITL_ERROR_INVALID_STATE
#define RPC_ERROR_SHUTTING_DOWN    HITL_ERROR_SHUTTING_DOWN
#define RPC_ERROR_CONFLICT         HITL_ERROR_CONFLICT
#define RPC_ERROR_UNAVAILABLE      HITL_ERROR_UNAVAILABLE

/* A zero field means "the default" (given in brackets), so callers may set only what they
 * configure. */
typedef struct RpcLimits {
	size_t max_message_bytes;          /* [1 MiB] a longer line is answered -32600
	                                    * {"reason":"message too large"}, then closed */
	size_t max_output_bytes;           /* [4 MiB] of unsent output (plus answered replies still
	                                    * waiting for an earlier one) -> close the connection */
	unsigned max_connections;          /* [1024] total: past it, accept and close at once */
	unsigned max_connections_per_uid;  /* [32] past it, one -32003 line {"limit": n} (id null), close */
	usec_t idle_timeout;               /* [300 s] watching connections, and connections with calls
	                                    * outstanding, are not idle */
	unsigned max_pending_calls;        /* [64] per connection: stop reading while that many calls
	                                    * are unanswered, resume when they drop */
	unsigned max_queued_notifications; /* [1000] per connection: queued-but-unsent notifications
	                                    * past which rpc_conn_notify() says -ENOBUFS */
	size_t max_output_bytes_per_uid;   /* [8 MiB] all connections of one uid together: a
	                                    * notification past it is -ENOBUFS (watch.overflow);
	                                    * past it, the uid's connection with the most output is
	                                    * closed */
	size_t max_output_bytes_total;     /* [64 MiB] every connection together: the same, server
	                                    * wide (the connection with the most output is closed) */
	size_t max_input_bytes_per_uid;    /* [8 MiB, never less than
	                                    * RPC_INPUT_PER_UID_FLOOR(max_message_bytes)] input
	                                    * received and not yet handled on all connections of
	                                    * one uid: past it, the uid's connection holding the
	                                    * most is answered "message too large" and closed */
	size_t max_input_bytes_total;      /* [64 MiB, never less than the per-uid bound] every
	                                    * connection together: the same, server wide */
	unsigned cpu_percent_per_uid;      /* [25] share of the event loop's time one uid's calls
	                                    * may take (a token bucket of dispatch time, 20 ms
	                                    * deep); past it, that uid's connections are not read
	                                    * until it refills. 100: no limit. Exempt uids: see
	                                    * rpc_server_set_exempt() */
} RpcLimits;

#define RPC_DEFAULT_MAX_MESSAGE_BYTES        ((size_t) 1024 * 1024)
#define RPC_DEFAULT_MAX_OUTPUT_BYTES         ((size_t) 4 * 1024 * 1024)
#define RPC_DEFAULT_MAX_CONNECTIONS          1024U
#define RPC_DEFAULT_MAX_CONNECTIONS_PER_UID  32U
#define RPC_DEFAULT_IDLE_TIMEOUT             (300 * USEC_PER_SEC)
#define RPC_DEFAULT_MAX_PENDING_CALLS        64U
#define RPC_DEFAULT_MAX_QUEUED_NOTIFICATIONS 1000U
#define RPC_DEFAULT_MAX_OUTPUT_BYTES_PER_UID ((size_t) 8 * 1024 * 1024)
#define RPC_DEFAULT_MAX_OUTPUT_BYTES_TOTAL   ((size_t) 64 * 1024 * 1024)
#define RPC_DEFAULT_MAX_INPUT_BYTES_PER_UID  ((size_t) 8 * 1024 * 1024)
#define RPC_DEFAULT_MAX_INPUT_BYTES_TOTAL    ((size_t) 64 * 1024 * 1024)
/* Two connections of a uid may each be receiving a message of the largest size (one read
 * of 64 KiB may go past the end of a line before it is handled). */
#define RPC_INPUT_PER_UID_FLOOR(max_message) (2 * ((max_message) + (size_t) 64 * 1024))
#define RPC_DEFAULT_CPU_PERCENT_PER_UID      25U
/* Connections take turns: one handles at most this many lines, then yields to the others. */
#define RPC_LINES_PER_TURN                   8U

/* Called once per request (an object with "method"). The handler must eventually answer with
 * rpc_call_reply()/rpc_call_error() (now or later), exactly once; notifications (no "id") are
 * dispatched too and their answer is swallowed. The handler must not free the server. */
typedef void (*rpc_dispatch_t)(RpcCall *call, void *userdata);

/* listen_fd: a listening AF_UNIX stream socket, non-blocking; it stays the caller's. */
int rpc_server_new(sd_event *e, int listen_fd, const RpcLimits *limits, rpc_dispatch_t dispatch,
                   void *userdata, RpcServer **ret);
/* Closes every connection; outstanding calls get their abandon callback (calls without one stay
 * valid until answered, the answer is dropped); does NOT close listen_fd. */
RpcServer *rpc_server_free(RpcServer *s);
unsigned rpc_server_connections(const RpcServer *s);
/* Peers for which exempt returns true (checked once, at accept) are not held to
 * cpu_percent_per_uid (administrators: their calls are few and they must get
 * through while others flood). NULL: nobody. */
typedef bool (*rpc_exempt_t)(uid_t uid, gid_t gid, void *userdata);
void rpc_server_set_exempt(RpcServer *s, rpc_exempt_t exempt, void *userdata);
/* Buffered output of every connection together, and of uid's (bytes). */
size_t rpc_server_output_bytes(const RpcServer *s);
size_t rpc_server_output_bytes_uid(const RpcServer *s, uid_t uid);
/* Input received and not yet handled, of every connection together and of uid's (bytes). */
size_t rpc_server_input_bytes(const RpcServer *s);
size_t rpc_server_input_bytes_uid(const RpcServer *s, uid_t uid);
/* Reload. Existing connections keep running under the new limits. */
void rpc_server_set_limits(RpcServer *s, const RpcLimits *limits);
/* Shutdown: stop accepting and stop reading requests; replies still owed are still sent. */
void rpc_server_stop_reading(RpcServer *s);
/* True when no connection has an unanswered request or unsent output (shutdown can finish). */
bool rpc_server_is_drained(const RpcServer *s);

typedef bool (*rpc_conn_filter_t)(RpcConn *c, void *userdata);
/* Sends {"jsonrpc":"2.0","method":method,"params":params} on every open connection for which
 * filter returns true (filter NULL: every watching connection). Takes a ref of params (the
 * caller keeps its own). A connection with no room (see rpc_conn_notify) is, when
 * overflow_method is not NULL, sent that notification with params {} and closed
 * (rpc_conn_notify_and_close); otherwise it misses this one. Returns how many connections it
 * was queued on, or a negative errno. */
int rpc_server_broadcast(RpcServer *s, const char *method, json_object *params,
                         rpc_conn_filter_t filter, void *userdata, const char *overflow_method);

const char *rpc_call_method(const RpcCall *c);
/* Never NULL: {} when absent. The server itself answers -32600 when params is present but not
 * a structured value, and -32602 (data {"field":"params",...}) when it is an array. */
json_object *rpc_call_params(const RpcCall *c);
/* The request's id (a string, number or null); NULL for a notification. Borrowed. */
json_object *rpc_call_id(const RpcCall *c);
uid_t rpc_call_uid(const RpcCall *c);
gid_t rpc_call_gid(const RpcCall *c);
pid_t rpc_call_pid(const RpcCall *c);
RpcConn *rpc_call_conn(const RpcCall *c);
bool rpc_call_is_notification(const RpcCall *c);
/* Answer. Both take ownership of their json arguments and free the call; safe when the
 * connection is gone (answer dropped). message NULL: a generic one for the code. */
void rpc_call_reply(RpcCall *c, json_object *result);
void rpc_call_error(RpcCall *c, int code, const char *message, json_object *data);
/* For deferred answers (request.wait): called if the connection dies before the answer; after it
 * returns the server frees the call — the handler must drop its pointer (answering it from
 * inside the callback is allowed and dropped). */
typedef void (*rpc_abandon_t)(RpcCall *c, void *userdata);
void rpc_call_set_abandon(RpcCall *c, rpc_abandon_t cb, void *userdata);

uid_t rpc_conn_uid(const RpcConn *c);
gid_t rpc_conn_gid(const RpcConn *c);
pid_t rpc_conn_pid(const RpcConn *c);
bool rpc_conn_is_open(const RpcConn *c);
/* Watch support: a watching connection is exempt from the idle timeout and receives
 * notifications (broadcast with a NULL filter). */
void rpc_conn_set_watching(RpcConn *c, bool b);
bool rpc_conn_is_watching(const RpcConn *c);
/* destroy is called once, when the connection is closed (or at rpc_server_free): the point
 * after which nothing more can be sent on it. Calls still outstanding keep a valid RpcConn
 * pointer, but its userdata is then NULL. */
void rpc_conn_set_userdata(RpcConn *c, void *ud, void (*destroy)(void *ud));
void *rpc_conn_get_userdata(const RpcConn *c);

/* Ordering: replies leave in request order (a reply waits for every earlier request's reply);
 * a notification is queued right behind the replies that can already leave and does NOT wait
 * for requests still unanswered (such as a long request.wait), so a watch stream keeps flowing.
 *
 * Queue a notification on one connection (takes ownership of params). Returns -ENOBUFS if the
 * connection already holds max_queued_notifications unsent notifications or the output would
 * pass max_output_bytes (the caller then sends watch.overflow via rpc_conn_notify_and_close),
 * -ENOTCONN if it is closed or closing. */
int rpc_conn_notify(RpcConn *c, const char *method, json_object *params);
/* Queues the notification past every limit, stops reading, and closes the connection once the
 * output is flushed (outstanding calls are abandoned); a client that never reads is closed by
 * the idle timeout. */
void rpc_conn_notify_and_close(RpcConn *c, const char *method, json_object *params);
unsigned rpc_conn_queued_notifications(const RpcConn *c);
