/* rpc_conn.c — one connection of the socket server: its calls, answered in order; its
 * output, bounded; notifications; its events and its close (rpc_internal.h). */
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

static void conn_update(RpcConn *c);
static void conn_settle(RpcConn *c);

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

RpcCall *call_new(RpcConn *c, json_object *id, bool notification) {
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

size_t conn_unsent(const RpcConn *c) {
	return c->out_end - c->out_start;
}

size_t conn_output_load(const RpcConn *c) {
	return conn_unsent(c) + c->answered_bytes;
}

ShareRate server_share_rate(const RpcServer *s) {
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
	char more[LOGRL_SUFFIX_MAX];

	while (u && u->out_bytes > s->limits.max_output_bytes_per_uid &&
	       (victim = server_biggest_output(s, u))) {
		if (server_may_log(s, RPC_LOG_OUTPUT_UID, victim->cred.uid, more))
			log_warning("Closing connection of uid %u (pid %d): its uid has more than %zu bytes of unsent output%s.",
			            (unsigned) victim->cred.uid, (int) victim->cred.pid, s->limits.max_output_bytes_per_uid,
			            more);
		conn_fail(victim, 0, "per-uid output limit");
		conn_account(victim);
	}
	while (s->out_total > s->limits.max_output_bytes_total && (victim = server_biggest_output(s, NULL))) {
		if (server_may_log(s, RPC_LOG_OUTPUT_TOTAL, victim->cred.uid, more))
			log_warning("Closing connection of uid %u (pid %d): more than %zu bytes of unsent output in all%s.",
			            (unsigned) victim->cred.uid, (int) victim->cred.pid, s->limits.max_output_bytes_total,
			            more);
		conn_fail(victim, 0, "total output limit");
		conn_account(victim);
	}
}

void conn_touch(RpcConn *c) {
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

void conn_kick(RpcConn *c) {
	if (c->defer_source)
		(void) sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
}

void conn_fail(RpcConn *c, int error, const char *why) {
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
	char more[LOGRL_SUFFIX_MAX];
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
		if (server_may_log(c->server, RPC_LOG_OUTPUT_CONN, c->cred.uid, more))
			log_warning("Closing connection of uid %u (pid %d): more than %zu bytes of unsent output%s.",
			            (unsigned) c->cred.uid, (int) c->cred.pid, c->server->limits.max_output_bytes, more);
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
		r = rpc_wire_response_line(call->id, key, TAKE_PTR(v), &line, &len);
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
	json_object *e = rpc_wire_error_new(code, message, data);

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
void conn_reply_error(RpcConn *c, json_object *id, int code, const char *message,
                             const char *reason) {
	RpcCall *call = call_new(c, id, false);

	if (!call) {
		conn_fail(c, -ENOMEM, "out of memory");
		return;
	}
	rpc_call_error(call, code, message, reason ? rpc_wire_reason(reason) : NULL);
}

/* ---- connection events ---- */

bool conn_owes_replies(const RpcConn *c) {
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

int conn_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
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

int conn_on_defer(sd_event_source *src, void *userdata) {
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
void server_arm_share(RpcServer *s, usec_t when) {
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

void conn_close(RpcConn *c) {
	_cleanup_(conn_unrefp) RpcConn *ref = NULL;
	RpcServer *s = c->server;
	RpcCall *call, *next;

	if (c->state == CONN_CLOSED)
		return;
	ref = conn_ref(c);
	c->state = CONN_CLOSED;
	conn_account(c);
	conn_account_input(c);
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
	r = rpc_wire_notification_line(method, params, &line, &len);
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
	if (rpc_wire_notification_line(method, params, &line, &len) < 0) {
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
	r = rpc_wire_notification_line(method, json_object_get(params), &line, &len);
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

