/* rpc_input.c — reading a connection's lines and dispatching them as calls, within the
 * connection's and its uid's bounds (rpc_internal.h), and the bound on the input buffered for
 * a uid and for every connection (rpc.h: the connection holding the most is refused). */
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
#include "rpc_internal.h"
#include "rpc_wire.h"
#include "uidshare.h"
#include "utf8.h"

/* ---- input ---- */

static bool conn_paused(const RpcConn *c) {
	const RpcLimits *l = &c->server->limits;
	size_t pause = l->max_output_bytes / 2 < RPC_OUTPUT_PAUSE_BYTES ? l->max_output_bytes / 2
	                                                                : RPC_OUTPUT_PAUSE_BYTES;

	/* Not paused by the uid's total: its never-reading watchers must not stop
	 * the uid's other connections (the bound closes the biggest instead). */
	return c->n_unanswered >= l->max_pending_calls || conn_output_load(c) > pause;
}


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

bool conn_can_dispatch(const RpcConn *c) {
	return c->state == CONN_OPEN && c->server && !c->server->reading_stopped && !conn_paused(c) &&
	       !c->turn_over && !conn_share_spent(c);
}

bool conn_can_read(const RpcConn *c) {
	return conn_can_dispatch(c) && !c->read_eof && !c->input_pending;
}

static void conn_answer_too_large(RpcConn *c) {
	conn_reply_error(c, NULL, RPC_ERROR_INVALID_REQUEST, "Message too large", "message too large");
	if (c->state == CONN_OPEN)
		c->state = CONN_DRAINING;
}

static void conn_too_large(RpcConn *c) {
	log_debug("Connection of uid %u (pid %d) sent a message over %zu bytes, closing.",
	          (unsigned) c->cred.uid, (int) c->cred.pid, c->server->limits.max_message_bytes);
	conn_answer_too_large(c);
}

static void conn_drop_input(RpcConn *c) {
	c->in = mfree(c->in);
	c->in_len = c->in_alloc = c->in_scanned = 0;
	c->input_pending = false;
	conn_account_input(c);
}

/* Brings the uid's and the server's input totals up to date with c. A failed or closed
 * connection counts nothing: its buffer goes at the next loop iteration. */
void conn_account_input(RpcConn *c) {
	size_t load = c->state == CONN_FAILED || c->state == CONN_CLOSED ? 0 : c->in_len;

	if (!c->share || !c->server || load == c->in_accounted)
		return;
	c->share->in_bytes = c->share->in_bytes - c->in_accounted + load;
	c->server->in_total = c->server->in_total - c->in_accounted + load;
	c->in_accounted = load;
}

/* The open connection (of uid u, or of anyone when u is NULL) holding the most input. */
static RpcConn *server_biggest_input(RpcServer *s, const UidShare *u) {
	RpcConn *best = NULL;

	for (RpcConn *c = s->conns; c; c = c->next)
		if ((!u || c->share == u) && c->state == CONN_OPEN && c->in_accounted > 0 &&
		    (!best || c->in_accounted > best->in_accounted))
			best = c;
	return best;
}

/* Answered and closed as a line over max_message_bytes is (the rest it sends is not read). */
static void conn_refuse_input(RpcConn *c) {
	conn_answer_too_large(c);
	conn_drop_input(c);
	conn_kick(c);
}

/* Past the per-uid or the total input bound, the connection holding the most input is
 * refused as an over-long line is. Each refusal drops a buffer, so the loops end. Both
 * warnings are rate-limited per uid: a client can cause one per few hundred KiB it sends. */
static void server_enforce_input(RpcServer *s, UidShare *u) {
	RpcConn *victim;
	char more[LOGRL_SUFFIX_MAX];

	while (u && u->in_bytes > s->limits.max_input_bytes_per_uid &&
	       (victim = server_biggest_input(s, u))) {
		if (server_may_log(s, RPC_LOG_INPUT_UID, victim->cred.uid, more))
			log_warning("Closing connection of uid %u (pid %d): its uid has more than %zu bytes of unhandled input%s.",
			            (unsigned) victim->cred.uid, (int) victim->cred.pid, s->limits.max_input_bytes_per_uid,
			            more);
		conn_refuse_input(victim);
	}
	while (s->in_total > s->limits.max_input_bytes_total && (victim = server_biggest_input(s, NULL))) {
		if (server_may_log(s, RPC_LOG_INPUT_TOTAL, victim->cred.uid, more))
			log_warning("Closing connection of uid %u (pid %d): more than %zu bytes of unhandled input in all%s.",
			            (unsigned) victim->cred.uid, (int) victim->cred.pid, s->limits.max_input_bytes_total,
			            more);
		conn_refuse_input(victim);
	}
}

/* The buffer is kept within RPC_READ_CHUNK of what it holds (plus the read that grows it),
 * so that the bytes accounted are the memory held: a long line handled, then a partial one,
 * must not leave a buffer of the long line's size behind. */
static void conn_trim_input(RpcConn *c) {
	char *p;

	if (c->in_len == 0 && c->in_alloc > RPC_BUFFER_KEEP_BYTES) {
		c->in = mfree(c->in);
		c->in_alloc = c->in_scanned = 0;
		return;
	}
	if (c->in_alloc <= c->in_len + 2 * RPC_READ_CHUNK)
		return;
	p = realloc(c->in, c->in_len + RPC_READ_CHUNK);
	if (!p)
		return;   /* keeps the larger buffer; shrinking is an economy */
	c->in = p;
	c->in_alloc = c->in_len + RPC_READ_CHUNK;
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
	r = rpc_wire_parse_line(&c->server->tok, line, len, &msg);
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

		if (data && (rpc_wire_add_string(data, "field", "params") < 0 ||
		             rpc_wire_add_string(data, "reason", "must be an object") < 0)) {
			json_object_put(data);
			data = NULL;
		}
		rpc_call_error(call, RPC_ERROR_INVALID_PARAMS, NULL, data);
		return;
	}
	c->server->dispatch(call, c->server->userdata);
}

/* Dispatches the complete lines in the buffer while the connection may; the rest waits. */
void conn_process_input(RpcConn *c) {
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
	conn_trim_input(c);
	conn_account_input(c);
}

void conn_read(RpcConn *c) {
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
		if (c->server)
			server_enforce_input(c->server, c->share);
		/* A short read drained the socket: the next recv() would only say
		 * EAGAIN (a syscall per request at 64 clients). The io source is
		 * level-triggered, so anything arriving later wakes us again. */
		if (n > 0 && (size_t) n < RPC_READ_CHUNK)
			return;
	}
}

