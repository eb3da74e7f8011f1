/* rpc.c — see rpc.h. The server: its limits, accepting, idle connections and the
 * public server calls; a connection is rpc_conn.c's, reading it rpc_input.c's, the
 * lines rpc_wire.c's (rpc_internal.h).
 *
 * Life of a connection: accept4 → SO_PEERCRED → limits → OPEN. Lines are read into a bounded
 * buffer (at most one partial line of max_message_bytes plus one read chunk; all of a uid's
 * buffers together at most max_input_bytes_per_uid, rpc_input.c) and turned into calls, kept
 * in a per-connection FIFO so that replies leave in request order. OPEN becomes DRAINING
 * (read no more, close once every owed reply is sent: EOF, message too large, input bound),
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
#include "rpc_internal.h"
#include "rpc_wire.h"
#include "uidshare.h"
#include "utf8.h"

static int server_on_idle(sd_event_source *src, uint64_t usec, void *userdata);

/* ---- small helpers ---- */

usec_t server_now(const RpcServer *s) {
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
	if (l.max_input_bytes_per_uid == 0)
		l.max_input_bytes_per_uid = RPC_DEFAULT_MAX_INPUT_BYTES_PER_UID;
	/* Raised, not refused: a larger max_message_bytes must not turn one message into an
	 * error that names another limit. */
	if (l.max_input_bytes_per_uid < RPC_INPUT_PER_UID_FLOOR(l.max_message_bytes))
		l.max_input_bytes_per_uid = RPC_INPUT_PER_UID_FLOOR(l.max_message_bytes);
	if (l.max_input_bytes_total == 0)
		l.max_input_bytes_total = RPC_DEFAULT_MAX_INPUT_BYTES_TOTAL;
	if (l.max_input_bytes_total < l.max_input_bytes_per_uid)
		l.max_input_bytes_total = l.max_input_bytes_per_uid;
	if (l.cpu_percent_per_uid == 0)
		l.cpu_percent_per_uid = RPC_DEFAULT_CPU_PERCENT_PER_UID;
	return l;
}

/* ---- idle timeout: one coarse timer per server, armed only while a connection can go idle ---- */

static bool conn_idle_eligible(const RpcConn *c) {
	if (c->state == CONN_FLUSHING)
		return true;
	return (c->state == CONN_OPEN || c->state == CONN_DRAINING) && !c->watching &&
	       c->n_unanswered == 0;
}


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
void server_note_idle(RpcServer *s, const RpcConn *c) {
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

/* ---- accepting ---- */

bool server_may_log(RpcServer *s, RpcLogCause cause, uid_t uid, char more[static LOGRL_SUFFIX_MAX]) {
	unsigned n;

	if (!logrl_below(&s->log_limits[cause], cause == RPC_LOG_ACCEPT_FAILED ? LOGRL_NO_KEY : (uint64_t) uid,
	                 server_now(s), &n))
		return false;
	logrl_suffix(n, more);
	return true;
}

static UidShare *server_find_share(const RpcServer *s, uid_t uid) {
	for (UidShare *u = s->shares; u; u = u->next)
		if (u->uid == uid)
			return u;
	return NULL;
}

/* The uid's share, added to s->shares if it has none yet; NULL when out of memory. */
static UidShare *server_get_share(RpcServer *s, uid_t uid) {
	UidShare *u = server_find_share(s, uid);
	ShareRate rate;

	if (u)
		return u;
	u = malloc(sizeof *u);
	if (!u)
		return NULL;
	rate = server_share_rate(s);
	uidshare_init(u, uid, &rate, now_monotonic());
	u->next = s->shares;
	if (s->shares)
		s->shares->prev = u;
	s->shares = u;
	return u;
}

unsigned server_count_uid(const RpcServer *s, uid_t uid) {
	UidShare *u = server_find_share(s, uid);

	return u ? u->n_conns : 0;
}

static void server_refuse_uid(RpcServer *s, int fd, uid_t uid) {
	_cleanup_(freep) char *line = NULL;
	_cleanup_(json_object_putp) json_object *data = json_object_new_object();
	json_object *limit, *error;
	size_t len;
	char more[LOGRL_SUFFIX_MAX];

	if (server_may_log(s, RPC_LOG_REFUSE_UID, uid, more))
		log_warning("Refusing connection of uid %u: it already has %u connections%s.",
		            (unsigned) uid, s->limits.max_connections_per_uid, more);
	if (!data)
		return;
	limit = json_object_new_int64((int64_t) s->limits.max_connections_per_uid);
	if (!limit || rpc_wire_add(data, "limit", limit) < 0)
		return;
	error = rpc_wire_error_new(RPC_ERROR_QUOTA, "Too many connections for this user", TAKE_PTR(data));
	if (!error || rpc_wire_response_line(NULL, "error", error, &line, &len) < 0)
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
	c->share = server_get_share(s, cred->uid);
	if (!c->share) {
		c->io_source = sd_event_source_disable_unref(c->io_source);
		c->defer_source = sd_event_source_disable_unref(c->defer_source);
		return -ENOMEM;
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
	char more[LOGRL_SUFFIX_MAX];
	int r;

	/* Identity comes from the kernel, once, at accept; never from anything the client says. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred) {
		log_warning_errno(errno, "Refusing connection: cannot read peer credentials: %m");
		return;
	}
	if (s->n_connections >= s->limits.max_connections) {
		if (server_may_log(s, RPC_LOG_REFUSE_TOTAL, cred.uid, more))
			log_warning("Refusing connection of uid %u: %u connections open, the limit%s.",
			            (unsigned) cred.uid, s->n_connections, more);
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
		char more[LOGRL_SUFFIX_MAX];

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (server_may_log(s, RPC_LOG_ACCEPT_FAILED, 0, more))
				log_warning_errno(errno, "accept() failed, pausing new connections: %m%s", more);
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
	for (size_t i = 0; i < _RPC_LOG_MAX; i++)
		s->log_limits[i] = (LogRl) LOGRL_CLIENT;
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

size_t rpc_server_input_bytes(const RpcServer *s) {
	return s ? s->in_total : 0;
}

size_t rpc_server_input_bytes_uid(const RpcServer *s, uid_t uid) {
	UidShare *u = s ? server_find_share(s, uid) : NULL;

	return u ? u->in_bytes : 0;
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

