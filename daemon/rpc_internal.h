/* rpc_internal.h — the socket server's insides, shared by its files and by
 * nobody else: rpc.c (the server: limits, accepting, idle connections, the
 * public server calls), rpc_conn.c (a connection: its calls in order, its
 * output and replies, notifications, its events and its close) and
 * rpc_input.c (reading lines and dispatching them as calls). They are one
 * module, rpc (docs/ARCHITECTURE.md layer 4), in three files that call each
 * other freely, over rpc_wire (the JSON-RPC lines, layer 3); nothing outside
 * them includes this. Their promises are rpc.h's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>

#include "logrl.h"
#include "rpc.h"
#include "uidshare.h"

#define RPC_READ_CHUNK            ((size_t) 64 * 1024)
#define RPC_READS_PER_WAKEUP      4U
#define RPC_ACCEPTS_PER_WAKEUP    16U
#define RPC_OUTPUT_PAUSE_BYTES    ((size_t) 1024 * 1024)
#define RPC_BUFFER_KEEP_BYTES     ((size_t) 64 * 1024)
/* json_tokener takes an int length; keep well clear of it. */
#define RPC_MESSAGE_BYTES_CAP     ((size_t) 256 * 1024 * 1024)
#define RPC_ACCEPT_PAUSE_USEC     (1 * USEC_PER_SEC)
#define RPC_SHARE_BURST           (20 * USEC_PER_MSEC)

/* The log entries a client can cause, each rate-limited on its own (server_may_log,
 * LOGRL_CLIENT). */
typedef enum RpcLogCause {
	RPC_LOG_REFUSE_UID,       /* connection refused: its uid's max_connections_per_uid */
	RPC_LOG_REFUSE_TOTAL,     /* connection refused: max_connections */
	RPC_LOG_ACCEPT_FAILED,    /* accept() failed (EMFILE…): no uid to key */
	RPC_LOG_OUTPUT_CONN,      /* closed: max_output_bytes */
	RPC_LOG_OUTPUT_UID,       /* closed: max_output_bytes_per_uid */
	RPC_LOG_OUTPUT_TOTAL,     /* closed: max_output_bytes_total */
	RPC_LOG_INPUT_UID,        /* refused: max_input_bytes_per_uid */
	RPC_LOG_INPUT_TOTAL,      /* refused: max_input_bytes_total */
	_RPC_LOG_MAX,
} RpcLogCause;

typedef enum ConnState {
	CONN_OPEN,      /* reading, dispatching, answering */
	CONN_DRAINING,  /* reads no more; closes once every owed reply has been sent */
	CONN_FLUSHING,  /* reads and answers no more; closes once the output has been sent */
	CONN_FAILED,    /* closes at the next loop iteration; nothing more in or out */
	CONN_CLOSED,
} ConnState;

struct RpcCall {
	RpcConn *conn;            /* holds a reference */
	RpcCall *prev, *next;     /* the connection's FIFO */
	char *method;
	json_object *id;          /* NULL: JSON null (or nothing, for a notification) */
	json_object *params;
	bool notification;
	bool answered;            /* reply serialized, waiting for an earlier one */
	bool abandoning;          /* inside the abandon callback: answers are dropped */
	char *reply;
	size_t reply_len;
	rpc_abandon_t abandon;
	void *abandon_userdata;
};

struct RpcConn {
	unsigned n_ref;
	RpcServer *server;        /* NULL once closed */
	RpcConn *prev, *next;     /* the server's list */
	int fd;
	sd_event_source *io_source;
	sd_event_source *defer_source;
	uint32_t io_events;
	struct ucred cred;
	ConnState state;
	bool watching;
	bool read_eof;
	bool input_pending;       /* complete lines wait in the buffer (dispatch paused) */
	bool turn_over;           /* handled RPC_LINES_PER_TURN lines: wait for the defer source */
	bool exempt;              /* not held to cpu_percent_per_uid */
	UidShare *share;          /* the uid's share; NULL once closed */
	size_t accounted;         /* output load last added to share->out_bytes and out_total */
	size_t in_accounted;      /* in_len last added to share->in_bytes and in_total */

	char *in;
	size_t in_len, in_alloc;
	size_t in_scanned;        /* in[0..in_scanned) holds no '\n' past the processed lines */

	char *out;
	size_t out_start, out_end, out_alloc;
	uint64_t bytes_queued, bytes_sent;
	/* Stream offsets at which queued notifications end, oldest first. */
	uint64_t *notify_ends;
	size_t notify_head, notify_count, notify_alloc;

	RpcCall *calls_head, *calls_tail;
	unsigned n_unanswered;
	size_t answered_bytes;    /* replies serialized but held back by an earlier call */
	usec_t last_activity;     /* CLOCK_MONOTONIC */

	void *userdata;
	void (*userdata_destroy)(void *ud);
};

struct RpcServer {
	sd_event *event;
	int listen_fd;
	sd_event_source *listen_source;
	sd_event_source *accept_resume_source;
	sd_event_source *idle_source;
	RpcLimits limits;
	rpc_dispatch_t dispatch;
	void *userdata;
	RpcConn *conns;
	unsigned n_connections;
	bool reading_stopped;
	LogRl log_limits[_RPC_LOG_MAX];
	UidShare *shares;         /* one per uid with an open connection */
	size_t out_total;         /* output load of every connection */
	size_t in_total;          /* unhandled input of every connection */
	sd_event_source *share_source; /* wakes connections held back by their uid's share */
	rpc_exempt_t exempt;
	void *exempt_userdata;
	json_tokener *tok; /* reused for every line: a new one per line showed in profiles */
};

static inline void *mfree(void *p) {
	free(p);
	return NULL;
}

static inline int safe_close_fd(int fd) {
	if (fd >= 0)
		(void) close(fd);
	return -EBADF;
}

/* rpc_conn.c: a connection's calls, output and life. */
RpcCall *call_new(RpcConn *c, json_object *id, bool notification);
size_t conn_unsent(const RpcConn *c);
size_t conn_output_load(const RpcConn *c);
ShareRate server_share_rate(const RpcServer *s);
void conn_touch(RpcConn *c);
void conn_kick(RpcConn *c);
void conn_fail(RpcConn *c, int error, const char *why);
void conn_reply_error(RpcConn *c, json_object *id, int code, const char *message, const char *reason);
bool conn_owes_replies(const RpcConn *c);
int conn_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata);
int conn_on_defer(sd_event_source *src, void *userdata);
void server_arm_share(RpcServer *s, usec_t when);
void conn_close(RpcConn *c);

/* rpc_input.c: reading and dispatching. */
bool conn_can_dispatch(const RpcConn *c);
bool conn_can_read(const RpcConn *c);
void conn_process_input(RpcConn *c);
void conn_account_input(RpcConn *c);
void conn_read(RpcConn *c);

/* rpc.c: the server. */
usec_t server_now(const RpcServer *s);
void server_note_idle(RpcServer *s, const RpcConn *c);
/* May an entry of cause, for uid, be logged now? If so, more is the suffix that says
 * how many were held back (logrl_suffix). */
bool server_may_log(RpcServer *s, RpcLogCause cause, uid_t uid, char more[static LOGRL_SUFFIX_MAX]);
unsigned server_count_uid(const RpcServer *s, uid_t uid);
