/* rpc.c — see rpc.h.
 *
 * Life of a connection: accept4 → SO_PEERCRED → limits → OPEN. Lines are read into a bounded
 * buffer (at most one partial line of max_message_bytes plus one read chunk) and turned into
 * calls, kept in a per-connection FIFO so that replies leave in request order. OPEN becomes
 * DRAINING (read no more, close once every owed reply is sent: EOF, message too large),
 * FLUSHING (answer no more, close once the output is sent: notify_and_close) or FAILED (close at
 * the next loop iteration: I/O error, output bound). Only event-loop callbacks close a
 * connection; the public functions the methods layer calls never do, so no callback of ours
 * runs inside theirs. RpcConn is refcounted: the server's list holds one reference while it is
 * open, every call one more, so a call answered after its connection died is still safe. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "rpc.h"
#include "utf8.h"
#include "uidshare.h"

#define RPC_READ_CHUNK            ((size_t) 64 * 1024)
#define RPC_READS_PER_WAKEUP      4U
#define RPC_ACCEPTS_PER_WAKEUP    16U
#define RPC_OUTPUT_PAUSE_BYTES    ((size_t) 1024 * 1024)
#define RPC_BUFFER_KEEP_BYTES     ((size_t) 64 * 1024)
#define RPC_JSON_DEPTH            64
/* json_tokener takes an int length; keep well clear of it. */
#define RPC_MESSAGE_BYTES_CAP     ((size_t) 256 * 1024 * 1024)
#define RPC_ACCEPT_PAUSE_USEC     (1 * USEC_PER_SEC)
#define RPC_LIMIT_LOG_INTERVAL    (10 * USEC_PER_SEC)
#define RPC_SHARE_BURST           (20 * USEC_PER_MSEC)

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
	usec_t last_limit_log;
	UidShare *shares;         /* one per uid with an open connection */
	size_t out_total;         /* output load of every connection */
	sd_event_source *share_source; /* wakes connections held back by their uid's share */
	rpc_exempt_t exempt;
	void *exempt_userdata;
	json_tokener *tok; /* reused for every line: a new one per line showed in profiles */
};

static void conn_update(RpcConn *c);
static void conn_close(RpcConn *c);
static void conn_settle(RpcConn *c);

static void *mfree(void *p) {
	free(p);
	return NULL;
}

static int safe_close_fd(int fd) {
	if (fd >= 0)
		(void) close(fd);
	return -EBADF;
}

/* ---- small helpers ---- */

static usec_t server_now(const RpcServer *s) {
	uint64_t t;

	if (s && sd_event_now(s->event, CLOCK_MONOTONIC, &t) >= 0)
		return t;
	return now_monotonic();
}

static RpcLimits limits_normalize(const RpcLimits *in) {
	RpcLimits l = in ? *in : (RpcLimits) {};

	if (l.max_message_bytes == 0)
		l.max_message_bytes = RPC_DEFAULT_MAX_MESSAGE_BYTES;
	if (l.max_message_bytes > RPC_MESSAGE_BYTES_CAP)
		l.max_message_bytes = RPC_MESSAGE_BYTES_CAP;
	if (l.max_output_bytes == 0)
		l.max_output_bytes = RPC_DEFAULT_MAX_OUTPUT_BYTES;
	if (l.max_connections == 0)
		l.max_connections = RPC_DEFAULT_MAX_CONNECTIONS;
	if (l.max_connections_per_uid == 0)
		l.max_connections_per_uid = RPC_DEFAULT_MAX_CONNECTIONS_PER_UID;
	if (l.idle_timeout == 0)
		l.idle_timeout = RPC_DEFAULT_IDLE_TIMEOUT;
	if (l.max_pending_calls == 0)
		l.max_pending_calls = RPC_DEFAULT_MAX_PENDING_CALLS;
	if (l.max_queued_notifications == 0)
		l.max_queued_notifications = RPC_DEFAULT_MAX_QUEUED_NOTIFICATIONS;
	if (l.max_output_bytes_per_uid == 0)
		l.max_output_bytes_per_uid = RPC_DEFAULT_MAX_OUTPUT_BYTES_PER_UID;
	if (l.max_output_bytes_total == 0)
		l.max_output_bytes_total = RPC_DEFAULT_MAX_OUTPUT_BYTES_TOTAL;
	if (l.cpu_percent_per_uid == 0)
		l.cpu_percent_per_uid = RPC_DEFAULT_CPU_PERCENT_PER_UID;
	return l;
}

static const char *error_default_message(int code) {
	switch (code) {
	case RPC_ERROR_PARSE:            return "Parse error";
	case RPC_ERROR_INVALID_REQUEST:  return "Invalid request";
	case RPC_ERROR_METHOD_NOT_FOUND: return "Method not found";
	case RPC_ERROR_INVALID_PARAMS:   return "Invalid params";
	case RPC_ERROR_NOT_FOUND:        return "Not found";
	case RPC_ERROR_PERMISSION:       return "Permission denied";
	case RPC_ERROR_QUOTA:            return "Quota exceeded";
	case RPC_ERROR_BUDGET:           return "Budget exhausted";
	case RPC_ERROR_STORAGE:          return "Storage error";
	case RPC_ERROR_REMOTE:           return "Remote error";
	case RPC_ERROR_INVALID_STATE:    return "Invalid state";
	case RPC_ERROR_SHUTTING_DOWN:    return "Shutting down";
	case RPC_ERROR_CONFLICT:         return "Conflict";
	case RPC_ERROR_UNAVAILABLE:      return "Unavailable";
	default:                         return "Internal error";
	}
}

/* Adds val (taken, may be NULL for JSON null) under key. */
static int json_add(json_object *o, const char *key, json_object *val) {
	if (json_object_object_add(o, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static int json_add_string(json_object *o, const char *key, const char *s) {
	json_object *v = json_object_new_string(s);

	if (!v)
		return -ENOMEM;
	return json_add(o, key, v);
}

/* Serializes o as one NDJSON line (with its '\n'). */
static int json_to_line(json_object *o, char **ret, size_t *ret_len) {
	size_t len = 0;
	const char *str = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *line;

	if (!str)
		return -ENOMEM;
	line = malloc(len + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, str, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	*ret = line;
	*ret_len = len + 1;
	return 0;
}

static json_object *error_object_new(int code, const char *message, json_object *data) {
	_cleanup_(json_object_putp) json_object *d = data;
	_cleanup_(json_object_putp) json_object *e = json_object_new_object();
	json_object *c;

	if (!e)
		return NULL;
	c = json_object_new_int(code);
	if (!c || json_add(e, "code", c) < 0)
		return NULL;
	if (json_add_string(e, "message", message ? message : error_default_message(code)) < 0)
		return NULL;
	if (d && json_add(e, "data", TAKE_PTR(d)) < 0)
		return NULL;
	return TAKE_PTR(e);
}

/* {"jsonrpc":"2.0","id":id,key:value} as a line; id borrowed, value taken. */
static int response_line_new(json_object *id, const char *key, json_object *value, char **ret,
                             size_t *ret_len) {
	_cleanup_(json_object_putp) json_object *v = value;
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	if (json_add_string(o, "jsonrpc", "2.0") < 0 || json_add(o, "id", json_object_get(id)) < 0 ||
	    json_add(o, key, TAKE_PTR(v)) < 0)
		return -ENOMEM;
	return json_to_line(o, ret, ret_len);
}

static int notification_line_new(const char *method, json_object *params, char **ret,
                                 size_t *ret_len) {
	_cleanup_(json_object_putp) json_object *p = params;
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!method)
		return -EINVAL;
	if (!o)
		return -ENOMEM;
	if (!p) {
		p = json_object_new_object();
		if (!p)
			return -ENOMEM;
	}
	if (json_add_string(o, "jsonrpc", "2.0") < 0 || json_add_string(o, "method", method) < 0 ||
	    json_add(o, "params", TAKE_PTR(p)) < 0)
		return -ENOMEM;
	return json_to_line(o, ret, ret_len);
}

static json_object *reason_new(const char *reason) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!o || json_add_string(o, "reason", reason) < 0)
		return NULL;
	return TAKE_PTR(o);
}

/* JSON has no NaN or Infinity (json-c accepts them), and a number that would be passed on
 * changed is not accepted either: a non-finite double (1e400) or an integer json-c saturated
 * past 64 bits (so an exact -2^63 or 2^64-1 is refused too). -EINVAL for the literals, -ERANGE
 * for out of range. Depth is bounded by the tokener (RPC_JSON_DEPTH). */
static int json_check_numbers(json_object *o) {
	int k;

	switch (json_object_get_type(o)) {
	case json_type_double:
		if (!isfinite(json_object_get_double(o))) {
			/* json-c keeps the text of a parsed double: a digit means a literal out of range. */
			const char *t = json_object_to_json_string(o);

			if (t && *t == '-')
				t++;
			return t && *t >= '0' && *t <= '9' ? -ERANGE : -EINVAL;
		}
		return 0;
	case json_type_int:
		if (json_object_get_int64(o) == INT64_MIN || json_object_get_uint64(o) == UINT64_MAX)
			return -ERANGE;
		return 0;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void) key;
			k = json_check_numbers(val);
			if (k < 0)
				return k;
		}
		return 0;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			k = json_check_numbers(json_object_array_get_idx(o, i));
			if (k < 0)
				return k;
		}
		return 0;
	default:
		return 0;
	}
}

/* Parses one whole line as one JSON value. *ret may be NULL (JSON null). -EINVAL: not JSON;
 * -ERANGE: a number out of range (json_check_numbers). */
static int json_parse_line(RpcServer *s, const char *line, size_t len, json_object **ret) {
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error err;
	size_t end;
	int r;

	if (!s->tok) {
		s->tok = json_tokener_new_ex(RPC_JSON_DEPTH);
		if (!s->tok)
			return -ENOMEM;
		json_tokener_set_flags(s->tok, JSON_TOKENER_STRICT);
	}
	tok = s->tok;
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, line, (int) len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (err == json_tokener_continue) {
		/* A bare top-level number needs a terminator to be complete. */
		o = json_tokener_parse_ex(tok, " ", 1);
		err = json_tokener_get_error(tok);
		end = len;
	}
	if (err != json_tokener_success) {
		json_object_put(o);
		return -EINVAL;
	}
	for (; end < len; end++)
		if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r') {
			json_object_put(o);
			return -EINVAL;
		}
	r = json_check_numbers(o);
	if (r < 0) {
		json_object_put(o);
		return r;
	}
	*ret = o;
	return 0;
}

/* ---- references ---- */

static RpcConn *conn_ref(RpcConn *c) {
	c->n_ref++;
	return c;
}

static void conn_unref(RpcConn *c) {
	if (!c)
		return;
	assert(c->n_ref > 0);
	if (--c->n_ref > 0)
		return;
	assert(c->state == CONN_CLOSED && !c->calls_head);
	free(c);
}

static void conn_unrefp(RpcConn **c) {
	conn_unref(*c);
}

/* ---- calls ---- */

static RpcCall *call_new(RpcConn *c, json_object *id, bool notification) {
	RpcCall *call = calloc(1, sizeof *call);

	if (!call)
		return NULL;
	call->conn = conn_ref(c);
	call->id = json_object_get(id);
	call->notification = notification;
	call->prev = c->calls_tail;
	if (c->calls_tail)
		c->calls_tail->next = call;
	else
		c->calls_head = call;
	c->calls_tail = call;
	c->n_unanswered++;
	return call;
}

static void call_free(RpcCall *call) {
	RpcConn *c = call->conn;

	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls_head = call->next;
	if (call->next)
		call->next->prev = call->prev;
	else
		c->calls_tail = call->prev;
	if (call->answered)
		c->answered_bytes -= call->reply_len;
	else if (c->n_unanswered > 0)
		c->n_unanswered--;
	free(call->method);
	json_object_put(call->id);
	json_object_put(call->params);
	free(call->reply);
	free(call);
	conn_unref(c);
}

/* ---- output ---- */

static size_t conn_unsent(const RpcConn *c) {
	return c->out_end - c->out_start;
}

static size_t conn_output_load(const RpcConn *c) {
	return conn_unsent(c) + c->answered_bytes;
}

static ShareRate server_share_rate(const RpcServer *s) {
	return (ShareRate) { .percent = s->limits.cpu_percent_per_uid, .burst = RPC_SHARE_BURST };
}

/* Brings the uid's and the server's output totals up to date with c. A failed or closed
 * connection counts nothing: its buffers go at the next loop iteration. */
static void conn_account(RpcConn *c) {
	size_t load = c->state == CONN_FAILED || c->state == CONN_CLOSED ? 0 : conn_output_load(c);


	if (!c->share || !c->server || load == c->accounted)
		return;
	c->share->out_bytes = c->share->out_bytes - c->accounted + load;
	c->server->out_total = c->server->out_total - c->accounted + load;
	c->accounted = load;
}

static void conn_fail(RpcConn *c, int error, const char *why);
static bool server_may_log_limit(RpcServer *s);

/* The connection (of uid u, or of anyone when u is NULL) holding the most output. */
static RpcConn *server_biggest_output(RpcServer *s, const UidShare *u) {
	RpcConn *best = NULL;

	for (RpcConn *c = s->conns; c; c = c->next)
		if ((!u || c->share == u) && c->state != CONN_FAILED && c->accounted > 0 &&
		    (!best || c->accounted > best->accounted))
			best = c;
	return best;
}

/* Past the per-uid or the total output bound (replies can pass it: they are never dropped),
 * the connection holding the most is closed, the way one that passes max_output_bytes is. */
static void server_enforce_output(RpcServer *s, UidShare *u) {
	RpcConn *victim;

	while (u && u->out_bytes > s->limits.max_output_bytes_per_uid &&
	       (victim = server_biggest_output(s, u))) {
		log_warning("Closing connection of uid %u (pid %d): its uid has more than %zu bytes of unsent output.",
		            (unsigned) victim->cred.uid, (int) victim->cred.pid, s->limits.max_output_bytes_per_uid);
		conn_fail(victim, 0, "per-uid output limit");
		conn_account(victim);
	}
	while (s->out_total > s->limits.max_output_bytes_total && (victim = server_biggest_output(s, NULL))) {
		if (server_may_log_limit(s))
			log_warning("Closing connection of uid %u (pid %d): more than %zu bytes of unsent output in all.",
			            (unsigned) victim->cred.uid, (int) victim->cred.pid, s->limits.max_output_bytes_total);
		conn_fail(victim, 0, "total output limit");
		conn_account(victim);
	}
}

static void conn_touch(RpcConn *c) {
	if (c->server)
		c->last_activity = server_now(c->server);
}

static int conn_out_append(RpcConn *c, const char *data, size_t n) {
	if (c->out_start == c->out_end)
		c->out_start = c->out_end = 0;
	if (c->out_alloc - c->out_end < n && c->out_start > 0) {
		memmove(c->out, c->out + c->out_start, conn_unsent(c));
		c->out_end -= c->out_start;
		c->out_start = 0;
	}
	if (c->out_alloc - c->out_end < n) {
		size_t want = c->out_end + n, alloc = c->out_alloc ? c->out_alloc + c->out_alloc / 4 : 4096;
		char *p;

		/* Grow by a quarter, not double: what is allocated stays close to what
		 * the output bounds count (hitld(8) states RSS from them). */
		if (alloc < want)
			alloc = (want + 4095) & ~(size_t) 4095;
		p = realloc(c->out, alloc);
		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_alloc = alloc;
	}
	memcpy(c->out + c->out_end, data, n);
	c->out_end += n;
	c->bytes_queued += n;
	return 0;
}

static int conn_notify_ends_push(RpcConn *c, uint64_t end) {
	if (c->notify_head > 0 && c->notify_head + c->notify_count == c->notify_alloc) {
		memmove(c->notify_ends, c->notify_ends + c->notify_head,
		        c->notify_count * sizeof *c->notify_ends);
		c->notify_head = 0;
	}
	if (c->notify_head + c->notify_count == c->notify_alloc) {
		size_t alloc = c->notify_alloc ? c->notify_alloc * 2 : 16;
		uint64_t *p = reallocarray(c->notify_ends, alloc, sizeof *p);

		if (!p)
			return -ENOMEM;
		c->notify_ends = p;
		c->notify_alloc = alloc;
	}
	c->notify_ends[c->notify_head + c->notify_count++] = end;
	return 0;
}

static void conn_notify_ends_pop_sent(RpcConn *c) {
	while (c->notify_count > 0 && c->notify_ends[c->notify_head] <= c->bytes_sent) {
		c->notify_head++;
		c->notify_count--;
	}
	if (c->notify_count == 0)
		c->notify_head = 0;
}

/* Sends what the socket takes now. Never blocks. */
static int conn_flush_output(RpcConn *c) {
	while (conn_unsent(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_start, conn_unsent(c), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		c->out_start += (size_t) n;
		c->bytes_sent += (uint64_t) n;
		conn_touch(c);
	}
	conn_notify_ends_pop_sent(c);
	if (conn_unsent(c) == 0 && c->out_alloc > RPC_BUFFER_KEEP_BYTES) {
		c->out = mfree(c->out);
		c->out_alloc = c->out_start = c->out_end = 0;
	}
	conn_account(c);
	return 0;
}

static void conn_kick(RpcConn *c) {
	if (c->defer_source)
		(void) sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
}

static void conn_fail(RpcConn *c, int error, const char *why) {
	if (c->state == CONN_CLOSED || c->state == CONN_FAILED)
		return;
	log_debug_errno(error, "Closing connection of uid %u (pid %d): %s", (unsigned) c->cred.uid,
	                (int) c->cred.pid, why);
	c->state = CONN_FAILED;
	conn_kick(c);
}

/* Moves the replies that may leave (every earlier request answered) to the output. A
 * notification from the client is never answered on the wire and holds nothing back. */
static void conn_release_replies(RpcConn *c) {
	RpcCall *call = c->calls_head;

	while (call) {
		RpcCall *next = call->next;

		if (call->answered) {
			if (c->state == CONN_OPEN || c->state == CONN_DRAINING) {
				if (conn_out_append(c, call->reply, call->reply_len) < 0) {
					conn_fail(c, -ENOMEM, "out of memory");
					return;
				}
			}
			call_free(call);
		} else if (!call->notification)
			break;
		call = next;
	}
}

/* After output was queued: release, send, and enforce the bound. */
static void conn_output_changed(RpcConn *c) {
	int r;

	conn_release_replies(c);
	if (c->state == CONN_FAILED || c->state == CONN_CLOSED)
		return;
	r = conn_flush_output(c);
	if (r < 0) {
		conn_fail(c, r, "send failed");
		return;
	}
	if (c->server && conn_output_load(c) > c->server->limits.max_output_bytes &&
	    c->state != CONN_FLUSHING) {
		log_warning("Closing connection of uid %u (pid %d): more than %zu bytes of unsent output.",
		            (unsigned) c->cred.uid, (int) c->cred.pid, c->server->limits.max_output_bytes);
		conn_fail(c, 0, "output limit");
		conn_account(c);
		return;
	}
	conn_account(c);
	if (c->server)
		server_enforce_output(c->server, c->share);
	if (c->state == CONN_FAILED)
		return;
	conn_settle(c);
}

/* ---- answering ---- */

static bool conn_can_answer(const RpcConn *c) {
	return c->state == CONN_OPEN || c->state == CONN_DRAINING;
}

static void call_answer(RpcCall *call, const char *key, json_object *value) {
	_cleanup_(json_object_putp) json_object *v = value;
	_cleanup_(conn_unrefp) RpcConn *c = NULL;
	char *line = NULL;
	size_t len = 0;
	int r;

	if (!call || call->abandoning || call->answered)
		return;
	c = conn_ref(call->conn);

	if (call->notification || !conn_can_answer(c)) {
		call_free(call);
	} else {
		r = response_line_new(call->id, key, TAKE_PTR(v), &line, &len);
		if (r < 0) {
			call_free(call);
			conn_fail(c, r, "cannot serialize reply");
		} else {
			c->n_unanswered--;
			call->answered = true;
			call->reply = line;
			call->reply_len = len;
			c->answered_bytes += len;
			call->method = mfree(call->method);
			json_object_put(call->params);
			call->params = NULL;
			conn_output_changed(c);
		}
	}
	if (c->n_unanswered == 0)
		conn_touch(c);      /* the idle clock starts when the last call is answered */
	conn_settle(c);
}

void rpc_call_reply(RpcCall *c, json_object *result) {
	call_answer(c, "result", result);
}

void rpc_call_error(RpcCall *c, int code, const char *message, json_object *data) {
	json_object *e = error_object_new(code, message, data);

	if (!e) {
		/* Out of memory: still answer, so later replies are not held back forever. */
		if (c && !c->abandoning && c->conn)
			conn_fail(c->conn, -ENOMEM, "cannot build error");
		call_answer(c, "error", NULL);
		return;
	}
	call_answer(c, "error", e);
}

/* An error the server sends itself, in its place in the FIFO. */
static void conn_reply_error(RpcConn *c, json_object *id, int code, const char *message,
                             const char *reason) {
	RpcCall *call = call_new(c, id, false);

	if (!call) {
		conn_fail(c, -ENOMEM, "out of memory");
		return;
	}
	rpc_call_error(call, code, message, reason ? reason_new(reason) : NULL);
}

/* ---- input ---- */

static bool conn_paused(const RpcConn *c) {
	const RpcLimits *l = &c->server->limits;
	size_t pause = l->max_output_bytes / 2 < RPC_OUTPUT_PAUSE_BYTES ? l->max_output_bytes / 2
	                                                                : RPC_OUTPUT_PAUSE_BYTES;

	/* Not paused by the uid's total: its never-reading watchers must not stop
	 * the uid's other connections (the bound closes the biggest instead). */
	return c->n_unanswered >= l->max_pending_calls || conn_output_load(c) > pause;
}

static void server_arm_share(RpcServer *s, usec_t when);

/* Has the uid used up its share of the loop's time? Then the share timer is armed. */
static bool conn_share_spent(const RpcConn *c) {
	ShareRate rate;

	if (c->exempt || !c->share || !c->server)
		return false;
	rate = server_share_rate(c->server);
	if (uidshare_may_dispatch(c->share, &rate, now_monotonic()))
		return false;
	c->share->waiting = true;
	server_arm_share(c->server, uidshare_ready_at(c->share, &rate, now_monotonic()));
	return true;
}

static bool conn_can_dispatch(const RpcConn *c) {
	return c->state == CONN_OPEN && c->server && !c->server->reading_stopped && !conn_paused(c) &&
	       !c->turn_over && !conn_share_spent(c);
}

static bool conn_can_read(const RpcConn *c) {
	return conn_can_dispatch(c) && !c->read_eof && !c->input_pending;
}

static void conn_too_large(RpcConn *c) {
	log_debug("Connection of uid %u (pid %d) sent a message over %zu bytes, closing.",
	          (unsigned) c->cred.uid, (int) c->cred.pid, c->server->limits.max_message_bytes);
	conn_reply_error(c, NULL, RPC_ERROR_INVALID_REQUEST, "Message too large", "message too large");
	if (c->state == CONN_OPEN)
		c->state = CONN_DRAINING;
}

static void conn_drop_input(RpcConn *c) {
	c->in = mfree(c->in);
	c->in_len = c->in_alloc = c->in_scanned = 0;
	c->input_pending = false;
}

/* JSON-RPC: params, when present, MUST be a structured value (object or array). */
static bool params_present_but_unstructured(json_object *msg) {
	json_object *params;

	if (!json_object_object_get_ex(msg, "params", &params))
		return false;
	return !json_object_is_type(params, json_type_object) &&
	       !json_object_is_type(params, json_type_array);
}

static void conn_handle_line(RpcConn *c, const char *line, size_t len) {
	_cleanup_(json_object_putp) json_object *msg = NULL;
	json_object *id = NULL, *v, *params;
	const char *method;
	bool has_id, whitespace = true;
	RpcCall *call;
	int r;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (size_t i = 0; i < len && whitespace; i++)
		whitespace = line[i] == ' ' || line[i] == '\t';
	if (whitespace)
		return;
	if (len > c->server->limits.max_message_bytes) {
		conn_too_large(c);
		return;
	}
	if (!utf8_is_valid(line, len)) {
		conn_reply_error(c, NULL, RPC_ERROR_PARSE, NULL, "invalid UTF-8");
		return;
	}
	r = json_parse_line(c->server, line, len, &msg);
	if (r < 0) {
		conn_reply_error(c, NULL, RPC_ERROR_PARSE, NULL,
		                 r == -ERANGE ? "number out of range" : "invalid JSON");
		return;
	}
	if (json_object_is_type(msg, json_type_array)) {
		conn_reply_error(c, NULL, RPC_ERROR_INVALID_REQUEST, NULL,
		                 "batch requests are not supported");
		return;
	}
	if (!json_object_is_type(msg, json_type_object)) {
		conn_reply_error(c, NULL, RPC_ERROR_INVALID_REQUEST, NULL,
		                 "a request must be a JSON object");
		return;
	}

	has_id = json_object_object_get_ex(msg, "id", &id);
	if (has_id && id && !json_object_is_type(id, json_type_string) &&
	    !json_object_is_type(id, json_type_int) && !json_object_is_type(id, json_type_double)) {
		conn_reply_error(c, NULL, RPC_ERROR_INVALID_REQUEST, NULL,
		                 "id must be a string, a number or null");
		return;
	}
	if (!json_object_object_get_ex(msg, "jsonrpc", &v) || !json_object_is_type(v, json_type_string) ||
	    !streq(json_object_get_string(v), "2.0")) {
		conn_reply_error(c, id, RPC_ERROR_INVALID_REQUEST, NULL, "jsonrpc must be \"2.0\"");
		return;
	}
	if (!json_object_object_get_ex(msg, "method", &v) || !json_object_is_type(v, json_type_string)) {
		conn_reply_error(c, id, RPC_ERROR_INVALID_REQUEST, NULL, "method must be a string");
		return;
	}
	method = json_object_get_string(v);
	if (!json_object_object_get_ex(msg, "params", &params))
		params = NULL;
	if (params_present_but_unstructured(msg)) {
		conn_reply_error(c, id, RPC_ERROR_INVALID_REQUEST, NULL,
		                 "params must be an object");
		return;
	}

	call = call_new(c, id, !has_id);
	if (!call) {
		conn_fail(c, -ENOMEM, "out of memory");
		return;
	}
	call->method = strdup(method);
	call->params = params ? json_object_get(params) : json_object_new_object();
	if (!call->method || !call->params) {
		conn_fail(c, -ENOMEM, "out of memory");
		rpc_call_error(call, RPC_ERROR_INTERNAL, NULL, NULL);
		return;
	}
	if (json_object_is_type(params, json_type_array)) {
		/* By-position params are valid JSON-RPC, but no method of ours takes them. */
		json_object *data = json_object_new_object();

		if (data && (json_add_string(data, "field", "params") < 0 ||
		             json_add_string(data, "reason", "must be an object") < 0)) {
			json_object_put(data);
			data = NULL;
		}
		rpc_call_error(call, RPC_ERROR_INVALID_PARAMS, NULL, data);
		return;
	}
	c->server->dispatch(call, c->server->userdata);
}

/* Dispatches the complete lines in the buffer while the connection may; the rest waits. */
static void conn_process_input(RpcConn *c) {
	size_t pos = 0;
	unsigned lines = 0;

	c->input_pending = false;
	while (c->in_len > pos) {
		size_t from = pos > c->in_scanned ? pos : c->in_scanned;
		char *nl;

		if (!conn_can_dispatch(c)) {
			c->input_pending = c->state == CONN_OPEN &&
			                   memchr(c->in + pos, '\n', c->in_len - pos) != NULL;
			break;
		}
		nl = memchr(c->in + from, '\n', c->in_len - from);
		if (!nl) {
			c->in_scanned = c->in_len;
			break;
		}
		if (lines++ == RPC_LINES_PER_TURN) {
			/* Let the other connections have their turn (sd-event serves pending
			 * sources in the order they became pending): one uid's 32 pipelines
			 * cannot monopolise the loop. */
			c->turn_over = true;
			c->input_pending = true;
			conn_kick(c);
			break;
		}
		if (c->exempt || !c->share)
			conn_handle_line(c, c->in + pos, (size_t) (nl - (c->in + pos)));
		else {
			usec_t t0 = now_monotonic();
			ShareRate rate = server_share_rate(c->server);

			conn_handle_line(c, c->in + pos, (size_t) (nl - (c->in + pos)));
			uidshare_charge(c->share, &rate, usec_sub(now_monotonic(), t0));
		}
		pos = (size_t) (nl - c->in) + 1;
	}
	if (c->state != CONN_OPEN) {
		/* Draining, flushing or failed: whatever else the client sent is never read. */
		conn_drop_input(c);
		return;
	}
	if (pos > 0) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
		c->in_scanned = c->in_scanned > pos ? c->in_scanned - pos : 0;
	}
	/* Answer an over-long line as soon as its buffered part is past the limit (+1 for a
	 * trailing '\r'), instead of buffering the rest of it. */
	if (!c->input_pending && c->in_scanned == c->in_len &&
	    c->in_len > c->server->limits.max_message_bytes + 1) {
		conn_too_large(c);
		conn_drop_input(c);
		return;
	}
	if (c->in_len == 0 && c->in_alloc > RPC_BUFFER_KEEP_BYTES) {
		c->in = mfree(c->in);
		c->in_alloc = c->in_scanned = 0;
	}
}

static void conn_read(RpcConn *c) {
	for (unsigned i = 0; i < RPC_READS_PER_WAKEUP && conn_can_read(c); i++) {
		ssize_t n;

		if (c->in_alloc - c->in_len < RPC_READ_CHUNK) {
			size_t alloc = c->in_len + RPC_READ_CHUNK;
			char *p = realloc(c->in, alloc);

			if (!p) {
				conn_fail(c, -ENOMEM, "out of memory");
				return;
			}
			c->in = p;
			c->in_alloc = alloc;
		}
		n = recv(c->fd, c->in + c->in_len, RPC_READ_CHUNK, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			conn_fail(c, -errno, "recv failed");
			return;
		}
		if (n == 0) {
			/* EOF: the client half-closed. A last line without '\n' still counts. */
			c->read_eof = true;
			if (c->in_len > 0)
				c->in[c->in_len++] = '\n';
		} else {
			c->in_len += (size_t) n;
			conn_touch(c);
		}
		conn_process_input(c);
		/* A short read drained the socket: the next recv() would only say
		 * EAGAIN (a syscall per request at 64 clients). The io source is
		 * level-triggered, so anything arriving later wakes us again. */
		if (n > 0 && (size_t) n < RPC_READ_CHUNK)
			return;
	}
}

/* ---- idle timeout: one coarse timer per server, armed only while a connection can go idle ---- */

static bool conn_idle_eligible(const RpcConn *c) {
	if (c->state == CONN_FLUSHING)
		return true;
	return (c->state == CONN_OPEN || c->state == CONN_DRAINING) && !c->watching &&
	       c->n_unanswered == 0;
}

static int server_on_idle(sd_event_source *src, uint64_t usec, void *userdata);

static void server_arm_idle_at(RpcServer *s, usec_t when) {
	usec_t accuracy = s->limits.idle_timeout / 10;
	int r;

	if (accuracy > USEC_PER_SEC)
		accuracy = USEC_PER_SEC;
	if (accuracy < USEC_PER_MSEC)
		accuracy = USEC_PER_MSEC;
	if (!s->idle_source) {
		r = sd_event_add_time(s->event, &s->idle_source, CLOCK_MONOTONIC, when, accuracy,
		                      server_on_idle, s);
		if (r < 0)
			log_error_errno(r, "Failed to add the idle timer: %m");
		return;
	}
	(void) sd_event_source_set_time(s->idle_source, when);
	(void) sd_event_source_set_time_accuracy(s->idle_source, accuracy);
	(void) sd_event_source_set_enabled(s->idle_source, SD_EVENT_ONESHOT);
}

static bool server_idle_armed(const RpcServer *s) {
	int enabled = SD_EVENT_OFF;

	if (!s->idle_source)
		return false;
	(void) sd_event_source_get_enabled(s->idle_source, &enabled);
	return enabled != SD_EVENT_OFF;
}

/* Armed, the timer fires no later than the earliest deadline: a connection becoming eligible
 * gets a deadline of now + timeout, never earlier than one already armed. */
static void server_note_idle(RpcServer *s, const RpcConn *c) {
	if (conn_idle_eligible(c) && !server_idle_armed(s))
		server_arm_idle_at(s, usec_add(c->last_activity, s->limits.idle_timeout));
}

/* Full scan: closes expired connections (close=true) and re-arms for the earliest deadline. */
static void server_sweep_idle(RpcServer *s, bool close_expired) {
	usec_t now = server_now(s), next = USEC_INFINITY;
	RpcConn *c, *c_next;

	for (c = s->conns; c; c = c_next) {
		usec_t deadline;

		c_next = c->next;
		if (!conn_idle_eligible(c))
			continue;
		deadline = usec_add(c->last_activity, s->limits.idle_timeout);
		if (close_expired && deadline <= now) {
			log_debug("Closing idle connection of uid %u (pid %d).", (unsigned) c->cred.uid,
			          (int) c->cred.pid);
			conn_close(c);
			continue;
		}
		if (deadline < next)
			next = deadline;
	}
	if (next == USEC_INFINITY) {
		if (s->idle_source)
			(void) sd_event_source_set_enabled(s->idle_source, SD_EVENT_OFF);
		return;
	}
	server_arm_idle_at(s, next);
}

static int server_on_idle(sd_event_source *src, uint64_t usec, void *userdata) {
	server_sweep_idle(userdata, true);
	return 0;
}

/* ---- connection events ---- */

static bool conn_owes_replies(const RpcConn *c) {
	for (const RpcCall *call = c->calls_head; call; call = call->next)
		if (!call->notification)
			return true;
	return false;
}

static void conn_update(RpcConn *c) {
	_cleanup_(conn_unrefp) _unused_ RpcConn *ref = conn_ref(c);
	uint32_t events = 0;

	if (c->input_pending && conn_can_dispatch(c))
		conn_process_input(c);
	if (c->state == CONN_OPEN && c->read_eof && !c->input_pending)
		c->state = CONN_DRAINING;
	if (c->state == CONN_FAILED ||
	    (c->state == CONN_DRAINING && !conn_owes_replies(c) && conn_unsent(c) == 0) ||
	    (c->state == CONN_FLUSHING && conn_unsent(c) == 0)) {
		conn_close(c);
		return;
	}
	if (c->state == CONN_CLOSED)
		return;
	if (conn_can_read(c))
		events |= EPOLLIN;
	if (conn_unsent(c) > 0)
		events |= EPOLLOUT;
	if (events != c->io_events && sd_event_source_set_io_events(c->io_source, events) >= 0)
		c->io_events = events;
	server_note_idle(c->server, c);
}

/* Would conn_update() do more than note idleness? A reply kicks the
 * connection's defer source only then: at 64 clients, a defer dispatch per
 * reply was a whole sd-event iteration (epoll_wait, prepare) per request. */
static bool conn_update_needed(const RpcConn *c) {
	uint32_t events = 0;

	if (c->input_pending || c->state != CONN_OPEN || c->read_eof)
		return true;
	if (conn_can_read(c))
		events |= EPOLLIN;
	if (conn_unsent(c) > 0)
		events |= EPOLLOUT;
	return events != c->io_events;
}

static void conn_settle(RpcConn *c) {
	if (conn_update_needed(c))
		conn_kick(c);
	else if (c->server)
		server_note_idle(c->server, c);
}

static int conn_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
	_cleanup_(conn_unrefp) RpcConn *c = conn_ref(userdata);
	int r;

	if (revents & EPOLLOUT) {
		r = conn_flush_output(c);
		if (r < 0)
			conn_fail(c, r, "send failed");
	}
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn_can_read(c))
		conn_read(c);
	/* EPOLLHUP: the peer closed both directions (a half-close is EOF on read, not HUP).
	 * Once nothing more can be read, nothing we owe it can be delivered either. */
	if ((revents & (EPOLLHUP | EPOLLERR)) && !conn_can_read(c) && c->state != CONN_CLOSED) {
		conn_close(c);
		return 0;
	}
	conn_update(c);
	return 0;
}

static int conn_on_defer(sd_event_source *src, void *userdata) {
	RpcConn *c = userdata;

	c->turn_over = false;
	conn_update(c);
	return 0;
}

static int server_on_share(sd_event_source *src, uint64_t usec, void *userdata) {
	RpcServer *s = userdata;

	/* Only the connections of uids that were held back: not every idle one. */
	for (RpcConn *c = s->conns; c; c = c->next)
		if (c->state == CONN_OPEN && !c->exempt && c->share && c->share->waiting)
			conn_kick(c);
	for (UidShare *u = s->shares; u; u = u->next)
		u->waiting = false;
	return 0;
}

/* Fires no later than when: a connection held back by its uid's share gets another look. */
static void server_arm_share(RpcServer *s, usec_t when) {
	int enabled = SD_EVENT_OFF;
	uint64_t armed = 0;
	int r;

	if (!s->share_source) {
		r = sd_event_add_time(s->event, &s->share_source, CLOCK_MONOTONIC, when, USEC_PER_MSEC,
		                      server_on_share, s);
		if (r < 0)
			log_error_errno(r, "Failed to add the share timer: %m");
		return;
	}
	(void) sd_event_source_get_enabled(s->share_source, &enabled);
	if (enabled != SD_EVENT_OFF && sd_event_source_get_time(s->share_source, &armed) >= 0 && armed <= when)
		return;
	(void) sd_event_source_set_time(s->share_source, when);
	(void) sd_event_source_set_enabled(s->share_source, SD_EVENT_ONESHOT);
}

static void conn_close(RpcConn *c) {
	_cleanup_(conn_unrefp) RpcConn *ref = NULL;
	RpcServer *s = c->server;
	RpcCall *call, *next;

	if (c->state == CONN_CLOSED)
		return;
	ref = conn_ref(c);
	c->state = CONN_CLOSED;
	conn_account(c);
	if (s && c->share && --c->share->n_conns == 0) {
		UidShare *u = c->share;

		if (u->prev)
			u->prev->next = u->next;
		else
			s->shares = u->next;
		if (u->next)
			u->next->prev = u->prev;
		free(u);
	}
	c->share = NULL;
	if (s) {
		if (c->prev)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->prev = c->next = NULL;
		s->n_connections--;
		c->server = NULL;
	}
	c->io_source = sd_event_source_disable_unref(c->io_source);
	c->defer_source = sd_event_source_disable_unref(c->defer_source);
	c->fd = safe_close_fd(c->fd);
	c->in = mfree(c->in);
	c->out = mfree(c->out);
	c->notify_ends = mfree(c->notify_ends);
	c->in_len = c->in_alloc = c->out_alloc = c->out_start = c->out_end = 0;
	c->notify_count = c->notify_alloc = c->notify_head = 0;

	for (call = c->calls_head; call; call = next) {
		next = call->next;
		if (call->answered)
			call_free(call);
	}
	/* Each abandon callback may answer (and so free) other calls: restart from the head. */
	for (;;) {
		for (call = c->calls_head; call; call = call->next)
			if (call->abandon && !call->abandoning)
				break;
		if (!call)
			break;
		call->abandoning = true;
		call->abandon(call, call->abandon_userdata);
		call_free(call);
	}
	if (c->userdata_destroy)
		c->userdata_destroy(c->userdata);
	c->userdata = NULL;
	c->userdata_destroy = NULL;

	if (s && s->n_connections == 0 && s->idle_source)
		(void) sd_event_source_set_enabled(s->idle_source, SD_EVENT_OFF);
	conn_unref(c);      /* the server list's reference */
}

/* ---- accepting ---- */

static bool server_may_log_limit(RpcServer *s) {
	usec_t now = server_now(s);

	if (s->last_limit_log != 0 && now < usec_add(s->last_limit_log, RPC_LIMIT_LOG_INTERVAL))
		return false;
	s->last_limit_log = now;
	return true;
}

static UidShare *server_find_share(const RpcServer *s, uid_t uid) {
	for (UidShare *u = s->shares; u; u = u->next)
		if (u->uid == uid)
			return u;
	return NULL;
}

static unsigned server_count_uid(const RpcServer *s, uid_t uid) {
	UidShare *u = server_find_share(s, uid);

	return u ? u->n_conns : 0;
}

static void server_refuse_uid(RpcServer *s, int fd, uid_t uid) {
	_cleanup_(freep) char *line = NULL;
	_cleanup_(json_object_putp) json_object *data = json_object_new_object();
	json_object *limit, *error;
	size_t len;

	if (server_may_log_limit(s))
		log_warning("Refusing connection of uid %u: it already has %u connections.",
		            (unsigned) uid, s->limits.max_connections_per_uid);
	if (!data)
		return;
	limit = json_object_new_int64((int64_t) s->limits.max_connections_per_uid);
	if (!limit || json_add(data, "limit", limit) < 0)
		return;
	error = error_object_new(RPC_ERROR_QUOTA, "Too many connections for this user", TAKE_PTR(data));
	if (!error || response_line_new(NULL, "error", error, &line, &len) < 0)
		return;
	/* A fresh socket's buffer takes this line whole; if not, the client misses the reason. */
	(void) send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int conn_new(RpcServer *s, int fd, const struct ucred *cred) {
	_cleanup_(freep) RpcConn *c = calloc(1, sizeof *c);
	int r;

	if (!c)
		return -ENOMEM;
	c->n_ref = 1;
	c->fd = fd;
	c->cred = *cred;
	c->server = s;
	c->state = CONN_OPEN;
	c->io_events = EPOLLIN;
	c->last_activity = server_now(s);
	c->exempt = s->exempt && s->exempt(cred->uid, cred->gid, s->exempt_userdata);
	r = sd_event_add_io(s->event, &c->io_source, fd, EPOLLIN, conn_on_io, c);
	if (r < 0)
		return r;
	r = sd_event_add_defer(s->event, &c->defer_source, conn_on_defer, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->defer_source, SD_EVENT_OFF);
	/* Behind every pending I/O event: a connection whose turn is over
	 * (RPC_LINES_PER_TURN) continues only once the others have had theirs. */
	if (r >= 0)
		r = sd_event_source_set_priority(c->defer_source, SD_EVENT_PRIORITY_NORMAL + 1);
	if (r < 0) {
		c->io_source = sd_event_source_disable_unref(c->io_source);
		c->defer_source = sd_event_source_disable_unref(c->defer_source);
		return r;
	}
	c->share = server_find_share(s, cred->uid);
	if (!c->share) {
		ShareRate rate = server_share_rate(s);

		c->share = malloc(sizeof *c->share);
		if (!c->share) {
			c->io_source = sd_event_source_disable_unref(c->io_source);
			c->defer_source = sd_event_source_disable_unref(c->defer_source);
			return -ENOMEM;
		}
		uidshare_init(c->share, cred->uid, &rate, now_monotonic());
		c->share->next = s->shares;
		if (s->shares)
			s->shares->prev = c->share;
		s->shares = c->share;
	}
	c->share->n_conns++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_connections++;
	server_note_idle(s, c);
	log_debug("Accepted connection of uid %u gid %u pid %d.", (unsigned) cred->uid,
	          (unsigned) cred->gid, (int) cred->pid);
	TAKE_PTR(c);
	return 0;
}

static void server_take_connection(RpcServer *s, int fd_in) {
	_cleanup_(closep) int fd = fd_in;
	struct ucred cred = {};
	socklen_t len = sizeof cred;
	int r;

	/* Identity comes from the kernel, once, at accept; never from anything the client says. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred) {
		log_warning_errno(errno, "Refusing connection: cannot read peer credentials: %m");
		return;
	}
	if (s->n_connections >= s->limits.max_connections) {
		if (server_may_log_limit(s))
			log_warning("Refusing connection of uid %u: %u connections open, the limit.",
			            (unsigned) cred.uid, s->n_connections);
		return;
	}
	if (server_count_uid(s, cred.uid) >= s->limits.max_connections_per_uid) {
		server_refuse_uid(s, fd, cred.uid);
		return;
	}
	r = conn_new(s, fd, &cred);
	if (r < 0) {
		log_error_errno(r, "Failed to set up connection of uid %u: %m", (unsigned) cred.uid);
		return;
	}
	TAKE_FD(fd);
}

static int server_on_accept_resume(sd_event_source *src, uint64_t usec, void *userdata) {
	RpcServer *s = userdata;

	if (!s->reading_stopped)
		(void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
	return 0;
}

/* Out of descriptors or memory: the listening socket stays readable, so stop polling it for a
 * moment instead of spinning. */
static void server_pause_accept(RpcServer *s) {
	usec_t when = usec_add(server_now(s), RPC_ACCEPT_PAUSE_USEC);
	int r;

	(void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
	if (!s->accept_resume_source) {
		r = sd_event_add_time(s->event, &s->accept_resume_source, CLOCK_MONOTONIC, when,
		                      USEC_PER_MSEC * 100, server_on_accept_resume, s);
		if (r < 0) {
			log_error_errno(r, "Failed to add accept timer: %m");
			(void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
		}
		return;
	}
	(void) sd_event_source_set_time(s->accept_resume_source, when);
	(void) sd_event_source_set_enabled(s->accept_resume_source, SD_EVENT_ONESHOT);
}

static int server_on_listen(sd_event_source *src, int listen_fd, uint32_t revents, void *userdata) {
	RpcServer *s = userdata;

	for (unsigned i = 0; i < RPC_ACCEPTS_PER_WAKEUP && !s->reading_stopped; i++) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ECONNABORTED || errno == EPROTO)
				continue;
			log_warning_errno(errno, "accept() failed, pausing new connections: %m");
			server_pause_accept(s);
			return 0;
		}
		server_take_connection(s, fd);
	}
	return 0;
}

/* ---- server ---- */

int rpc_server_new(sd_event *e, int listen_fd, const RpcLimits *limits, rpc_dispatch_t dispatch,
                   void *userdata, RpcServer **ret) {
	_cleanup_(freep) RpcServer *s = NULL;
	int flags, r;

	if (!e || listen_fd < 0 || !dispatch || !ret)
		return -EINVAL;
	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (!(flags & O_NONBLOCK) && fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->event = sd_event_ref(e);
	s->listen_fd = listen_fd;
	s->limits = limits_normalize(limits);
	s->dispatch = dispatch;
	s->userdata = userdata;
	r = sd_event_add_io(e, &s->listen_source, listen_fd, EPOLLIN, server_on_listen, s);
	if (r < 0) {
		sd_event_unref(s->event);
		return r;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

RpcServer *rpc_server_free(RpcServer *s) {
	if (!s)
		return NULL;
	s->reading_stopped = true;
	while (s->conns)
		conn_close(s->conns);
	sd_event_source_disable_unref(s->listen_source);
	sd_event_source_disable_unref(s->accept_resume_source);
	sd_event_source_disable_unref(s->idle_source);
	sd_event_source_disable_unref(s->share_source);
	sd_event_unref(s->event);
	if (s->tok)
		json_tokener_free(s->tok);
	free(s);
	return NULL;
}

void rpc_server_set_exempt(RpcServer *s, rpc_exempt_t exempt, void *userdata) {
	if (!s)
		return;
	s->exempt = exempt;
	s->exempt_userdata = userdata;
	for (RpcConn *c = s->conns; c; c = c->next)
		c->exempt = exempt && exempt(c->cred.uid, c->cred.gid, userdata);
}

size_t rpc_server_output_bytes(const RpcServer *s) {
	return s ? s->out_total : 0;
}

size_t rpc_server_output_bytes_uid(const RpcServer *s, uid_t uid) {
	UidShare *u = s ? server_find_share(s, uid) : NULL;

	return u ? u->out_bytes : 0;
}

unsigned rpc_server_connections(const RpcServer *s) {
	return s ? s->n_connections : 0;
}

void rpc_server_set_limits(RpcServer *s, const RpcLimits *limits) {
	if (!s)
		return;
	s->limits = limits_normalize(limits);
	for (RpcConn *c = s->conns; c; c = c->next)
		conn_kick(c);
	server_sweep_idle(s, false);
}

void rpc_server_stop_reading(RpcServer *s) {
	if (!s)
		return;
	s->reading_stopped = true;
	(void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
	if (s->accept_resume_source)
		(void) sd_event_source_set_enabled(s->accept_resume_source, SD_EVENT_OFF);
	for (RpcConn *c = s->conns; c; c = c->next)
		conn_kick(c);
}

bool rpc_server_is_drained(const RpcServer *s) {
	if (!s)
		return true;
	for (const RpcConn *c = s->conns; c; c = c->next)
		if (c->state != CONN_FAILED && (conn_owes_replies(c) || conn_unsent(c) > 0))
			return false;
	return true;
}

/* ---- notifications ---- */

static int conn_queue_notification(RpcConn *c, const char *line, size_t len, bool force) {
	int r;

	if (!force) {
		if (c->state != CONN_OPEN)
			return -ENOTCONN;
		conn_account(c);
		/* The uid's and the server's bounds too: one uid's never-reading watchers
		 * together hold at most max_output_bytes_per_uid. */
		if (c->notify_count >= c->server->limits.max_queued_notifications ||
		    conn_output_load(c) + len > c->server->limits.max_output_bytes ||
		    (c->share && c->share->out_bytes + len > c->server->limits.max_output_bytes_per_uid) ||
		    c->server->out_total + len > c->server->limits.max_output_bytes_total)
			return -ENOBUFS;
	}
	r = conn_out_append(c, line, len);
	if (r >= 0)
		r = conn_notify_ends_push(c, c->bytes_queued);
	if (r < 0) {
		conn_fail(c, r, "out of memory");
		return r;
	}
	conn_output_changed(c);
	return 0;
}

int rpc_conn_notify(RpcConn *c, const char *method, json_object *params) {
	_cleanup_(freep) char *line = NULL;
	size_t len;
	int r;

	if (!c || c->state != CONN_OPEN) {
		json_object_put(params);
		return -ENOTCONN;
	}
	r = notification_line_new(method, params, &line, &len);
	if (r < 0)
		return r;
	return conn_queue_notification(c, line, len, false);
}

void rpc_conn_notify_and_close(RpcConn *c, const char *method, json_object *params) {
	_cleanup_(freep) char *line = NULL;
	size_t len;

	if (!c || c->state == CONN_CLOSED || c->state == CONN_FAILED || c->state == CONN_FLUSHING) {
		json_object_put(params);
		return;
	}
	if (notification_line_new(method, params, &line, &len) < 0) {
		conn_fail(c, -ENOMEM, "cannot build notification");
		return;
	}
	c->state = CONN_FLUSHING;
	c->watching = false;
	conn_touch(c);      /* the idle timeout bounds how long the flush may take */
	if (conn_output_load(c) > c->server->limits.max_output_bytes) {
		conn_fail(c, 0, "output limit");
		return;
	}
	(void) conn_queue_notification(c, line, len, true);
	conn_kick(c);
}

int rpc_server_broadcast(RpcServer *s, const char *method, json_object *params,
                         rpc_conn_filter_t filter, void *userdata, const char *overflow_method) {
	_cleanup_(freep) char *line = NULL;
	RpcConn *c, *next;
	size_t len;
	int r, n = 0;

	if (!s || !method)
		return -EINVAL;
	r = notification_line_new(method, json_object_get(params), &line, &len);
	if (r < 0)
		return r;
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state != CONN_OPEN)
			continue;
		if (filter ? !filter(c, userdata) : !c->watching)
			continue;
		r = conn_queue_notification(c, line, len, false);
		if (r == -ENOBUFS && overflow_method)
			rpc_conn_notify_and_close(c, overflow_method, json_object_new_object());
		else if (r >= 0)
			n++;
	}
	return n;
}

unsigned rpc_conn_queued_notifications(const RpcConn *c) {
	return c ? (unsigned) c->notify_count : 0;
}

/* ---- accessors ---- */

const char *rpc_call_method(const RpcCall *c) {
	return c->method;
}

json_object *rpc_call_params(const RpcCall *c) {
	return c->params;
}

json_object *rpc_call_id(const RpcCall *c) {
	return c->id;
}

uid_t rpc_call_uid(const RpcCall *c) {
	return c->conn->cred.uid;
}

gid_t rpc_call_gid(const RpcCall *c) {
	return c->conn->cred.gid;
}

pid_t rpc_call_pid(const RpcCall *c) {
	return c->conn->cred.pid;
}

RpcConn *rpc_call_conn(const RpcCall *c) {
	return c->conn;
}

bool rpc_call_is_notification(const RpcCall *c) {
	return c->notification;
}

void rpc_call_set_abandon(RpcCall *c, rpc_abandon_t cb, void *userdata) {
	c->abandon = cb;
	c->abandon_userdata = userdata;
}

uid_t rpc_conn_uid(const RpcConn *c) {
	return c->cred.uid;
}

gid_t rpc_conn_gid(const RpcConn *c) {
	return c->cred.gid;
}

pid_t rpc_conn_pid(const RpcConn *c) {
	return c->cred.pid;
}

bool rpc_conn_is_open(const RpcConn *c) {
	return c && c->state == CONN_OPEN;
}

void rpc_conn_set_watching(RpcConn *c, bool b) {
	if (!c || c->watching == b)
		return;
	c->watching = b;
	if (!b)
		conn_touch(c);
	conn_kick(c);
}

bool rpc_conn_is_watching(const RpcConn *c) {
	return c && c->watching;
}

void rpc_conn_set_userdata(RpcConn *c, void *ud, void (*destroy)(void *ud)) {
	if (!c)
		return;
	if (c->state == CONN_CLOSED) {
		/* Too late to keep: the destroy callback would never run otherwise. */
		if (destroy)
			destroy(ud);
		return;
	}
	c->userdata = ud;
	c->userdata_destroy = destroy;
}

void *rpc_conn_get_userdata(const RpcConn *c) {
	return c ? c->userdata : NULL;
}
