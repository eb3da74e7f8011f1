/* fuzz_rpc.c — the control socket's framing and JSON-RPC layer (rpc.c) and the
 * socket methods behind it (methods.c, remote.c through a real Manager), fed
 * arbitrary bytes through a real AF_UNIX connection and a real sd-event loop:
 * accept, SO_PEERCRED, reads split where the input says, EOF or hang-up.
 *
 * Input: byte 0 = flags, byte 1 = write chunk size (0: all at once), then the
 * bytes the client sends.
 *   flags bit 0     0: rpc.c with a stand-in methods layer (below) driven by
 *                      the method names; 1: methods.c (methods_new) on a Manager made
 *                      fresh for this input (temp config and state dir, no API
 *                      key, so nothing leaves the machine)
 *   flags bits 1-2  max_message_bytes 1024 / 4096 / 65536 / default
 *   flags bits 3-4  max_pending_calls 1 / 2 / 8 / default
 *   flags bit 5     max_output_bytes 8192 instead of the default
 *   flags bit 6     end by closing the socket instead of a half-close
 *   flags bit 7     max_queued_notifications 2 instead of the default
 * (bits 1-5 and 7 apply to the stand-in mode; the Manager takes its limits
 * from its config.)
 *
 * Properties: no crash, no leak, no sanitizer report; every line the server
 * writes is a JSON-RPC 2.0 object (a response with an id and exactly one of
 * result/error, or a notification); replies leave in request order (the
 * stand-in numbers its answers); after a half-close the server closes the
 * connection once it owes nothing; after a close it lets the connection go;
 * the server ends drained with no connection. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>
#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "fuzz_common.h"
#include "log.h"
#include "manager.h"
#include "methods.h"
#include "rpc.h"

#define FLAG_MANAGER        0x01
#define FLAG_SMALL_OUTPUT   0x20
#define FLAG_ABRUPT         0x40
#define FLAG_FEW_NOTIFY     0x80

#define PUMP_STEPS_MAX      2000U      /* loop turns without progress before giving up */
#define HELD_MAX            256U
#define BIG_REPLY_MAX       ((size_t) 256 * 1024)
#define CLIENT_LINE_MAX     ((size_t) 32 * 1024 * 1024)

/* FUZZ_VERBOSE=1: print what the server sends (for checking seeds by hand). */
static bool verbose;

/* ---- the client's view of what the server sends ---- */

typedef struct Reader {
	char *buf;
	size_t len, alloc;
	bool eof;
	bool check_seq;
	int64_t last_seq;           /* the stand-in's answer numbers must rise */
	unsigned n_lines;
} Reader;

static void check_line(Reader *rd, const char *line, size_t len) {
	_cleanup_(json_object_putp) json_object *msg = NULL;
	json_object *v, *id, *result = NULL, *error = NULL, *seq = NULL;
	bool has_result, has_error;

	FUZZ_CHECK(fuzz_parse_json((const uint8_t *) line, len, 256, false, &msg) >= 0,
	           "the server wrote a line that is not JSON: %.*s", (int) (len > 300 ? 300 : len), line);
	FUZZ_CHECK(json_object_is_type(msg, json_type_object), "the server wrote a non-object: %.300s", line);
	FUZZ_CHECK(json_object_object_get_ex(msg, "jsonrpc", &v) && json_object_is_type(v, json_type_string) &&
	                   streq(json_object_get_string(v), "2.0"),
	           "no jsonrpc 2.0: %.300s", line);
	rd->n_lines++;
	if (verbose)
		fprintf(stderr, "< %.*s\n", (int) (len > 400 ? 400 : len), line);

	if (json_object_object_get_ex(msg, "method", &v)) {
		FUZZ_CHECK(json_object_is_type(v, json_type_string), "notification method not a string");
		FUZZ_CHECK(!json_object_object_get_ex(msg, "id", &id), "a notification with an id: %.300s", line);
		FUZZ_CHECK(json_object_object_get_ex(msg, "params", &v) && json_object_is_type(v, json_type_object),
		           "notification params not an object: %.300s", line);
		return;
	}
	FUZZ_CHECK(json_object_object_get_ex(msg, "id", &id), "a response without an id: %.300s", line);
	FUZZ_CHECK(!id || json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_int) ||
	                   json_object_is_type(id, json_type_double),
	           "a response id of the wrong type: %.300s", line);
	has_result = json_object_object_get_ex(msg, "result", &result);
	has_error = json_object_object_get_ex(msg, "error", &error);
	FUZZ_CHECK(has_result != has_error, "a response needs exactly one of result/error: %.300s", line);
	if (has_error) {
		FUZZ_CHECK(json_object_is_type(error, json_type_object), "error not an object: %.300s", line);
		FUZZ_CHECK(json_object_object_get_ex(error, "code", &v) && json_object_is_type(v, json_type_int),
		           "error code not an integer: %.300s", line);
		FUZZ_CHECK(json_object_object_get_ex(error, "message", &v) && json_object_is_type(v, json_type_string),
		           "error message not a string: %.300s", line);
		if (json_object_object_get_ex(error, "data", &v) && json_object_is_type(v, json_type_object))
			(void) json_object_object_get_ex(v, "fuzz_seq", &seq);
	} else if (json_object_is_type(result, json_type_object))
		(void) json_object_object_get_ex(result, "fuzz_seq", &seq);

	if (rd->check_seq && seq && json_object_is_type(seq, json_type_int)) {
		int64_t n = json_object_get_int64(seq);

		FUZZ_CHECK(n > rd->last_seq, "replies out of request order: %lld after %lld",
		           (long long) n, (long long) rd->last_seq);
		rd->last_seq = n;
	}
}

/* Reads what the socket has; true if anything came. */
static bool reader_drain(Reader *rd, int fd) {
	bool progress = false;

	while (!rd->eof) {
		ssize_t n;
		char *nl;
		size_t start = 0;

		if (rd->alloc - rd->len < 65536) {
			size_t alloc = rd->alloc ? rd->alloc * 2 : 131072;
			char *p;

			FUZZ_CHECK(alloc <= CLIENT_LINE_MAX * 2, "the server wrote a line longer than %zu bytes",
			           CLIENT_LINE_MAX);
			p = realloc(rd->buf, alloc);
			FUZZ_CHECK(p, "out of memory");
			rd->buf = p;
			rd->alloc = alloc;
		}
		n = recv(fd, rd->buf + rd->len, rd->alloc - rd->len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			/* ECONNRESET: the server closed with input unread. That is allowed. */
			rd->eof = true;
			progress = true;
			break;
		}
		progress = true;
		if (n == 0) {
			rd->eof = true;
			break;
		}
		rd->len += (size_t) n;
		while ((nl = memchr(rd->buf + start, '\n', rd->len - start))) {
			check_line(rd, rd->buf + start, (size_t) (nl - (rd->buf + start)));
			start = (size_t) (nl - rd->buf) + 1;
		}
		memmove(rd->buf, rd->buf + start, rd->len - start);
		rd->len -= start;
	}
	if (rd->eof)
		FUZZ_CHECK(rd->len == 0, "the server's output ended inside a line: %.*s",
		           (int) (rd->len > 300 ? 300 : rd->len), rd->buf);
	return progress;
}

/* ---- the stand-in methods layer ---- */

typedef struct Held {
	RpcCall *call;
	int64_t seq;
	bool abandonable;
} Held;

typedef struct Stub {
	RpcServer *server;
	int64_t next_seq;
	Held deferred[HELD_MAX];    /* answered when the loop goes quiet, newest first */
	unsigned n_deferred;
	Held held[HELD_MAX];        /* answered only at the very end */
	unsigned n_held;
	unsigned n_destroyed, n_watch_userdata;
	bool stopped;               /* rpc_server_stop_reading() was called */
} Stub;

static Stub stub;

static void held_remove(Held *list, unsigned *n, RpcCall *call) {
	for (unsigned i = 0; i < *n; i++)
		if (list[i].call == call) {
			list[i] = list[--*n];
			return;
		}
}

static void on_abandon(RpcCall *call, void *userdata) {
	held_remove(stub.deferred, &stub.n_deferred, call);
	held_remove(stub.held, &stub.n_held, call);
	/* Answering from inside the callback is allowed and dropped. */
	if (userdata)
		rpc_call_reply(call, json_object_new_string("dropped"));
}

static void on_conn_destroy(void *ud) {
	FUZZ_CHECK(ud == &stub, "wrong userdata in destroy");
	stub.n_destroyed++;
}

static json_object *seq_object(int64_t seq) {
	json_object *o = json_object_new_object();

	json_object_object_add(o, "fuzz_seq", json_object_new_int64(seq));
	return o;
}

static json_object *params_copy(RpcCall *call) {
	json_object *copy = NULL;

	if (json_object_deep_copy(rpc_call_params(call), &copy, NULL) < 0)
		return json_object_new_object();
	return copy;
}

static int64_t param_int(RpcCall *call, const char *key, int64_t def, int64_t min, int64_t max) {
	json_object *v = json_object_object_get(rpc_call_params(call), key);
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return def;
	x = json_object_get_int64(v);
	return x < min ? min : x > max ? max : x;
}

static void answer(RpcCall *call, int64_t seq) {
	const char *method = rpc_call_method(call);

	if (streq(method, "error") || streq(method, "defer_error")) {
		json_object *data = seq_object(seq);
		json_object *message = json_object_object_get(rpc_call_params(call), "message");

		rpc_call_error(call, (int) param_int(call, "code", RPC_ERROR_INTERNAL, INT_MIN, INT_MAX),
		               json_object_is_type(message, json_type_string) ? json_object_get_string(message) : NULL,
		               data);
		return;
	}
	if (streq(method, "big")) {
		size_t n = (size_t) param_int(call, "n", 1024, 0, (int64_t) BIG_REPLY_MAX);
		char *s = malloc(n + 1);
		json_object *o = seq_object(seq);

		FUZZ_CHECK(s, "out of memory");
		memset(s, 'b', n);
		s[n] = '\0';
		json_object_object_add(o, "data", json_object_new_string(s));
		free(s);
		rpc_call_reply(call, o);
		return;
	}
	json_object *o = seq_object(seq);
	json_object_object_add(o, "params", params_copy(call));
	rpc_call_reply(call, o);
}

static void stub_dispatch(RpcCall *call, void *userdata) {
	const char *method = rpc_call_method(call);
	RpcConn *conn = rpc_call_conn(call);
	int64_t seq = stub.next_seq++;

	FUZZ_CHECK(userdata == &stub, "wrong userdata in dispatch");
	FUZZ_CHECK(method && rpc_call_params(call), "a call without method or params");
	FUZZ_CHECK(json_object_is_type(rpc_call_params(call), json_type_object), "params not an object");
	FUZZ_CHECK(!(rpc_call_is_notification(call) && rpc_call_id(call)), "a notification with an id");
	FUZZ_CHECK(rpc_call_uid(call) == geteuid(), "peer uid %u", (unsigned) rpc_call_uid(call));
	FUZZ_CHECK(rpc_conn_is_open(conn), "dispatch on a connection that is not open");

	if (streq(method, "defer") || streq(method, "defer_error") || streq(method, "defer_noabandon")) {
		bool abandonable = !streq(method, "defer_noabandon");

		if (stub.n_deferred == HELD_MAX)
			return answer(call, seq);
		if (abandonable)
			rpc_call_set_abandon(call, on_abandon, NULL);
		stub.deferred[stub.n_deferred++] = (Held) { call, seq, abandonable };
		return;
	}
	if (streq(method, "hold") || streq(method, "hold_noabandon")) {
		bool abandonable = streq(method, "hold");

		if (stub.n_held == HELD_MAX)
			return answer(call, seq);
		if (abandonable)
			rpc_call_set_abandon(call, on_abandon, json_object_object_get(rpc_call_params(call), "answer")
			                                               ? &stub : NULL);
		stub.held[stub.n_held++] = (Held) { call, seq, abandonable };
		return;
	}
	if (streq(method, "watch")) {
		rpc_conn_set_watching(conn, true);
		if (!rpc_conn_get_userdata(conn)) {
			rpc_conn_set_userdata(conn, &stub, on_conn_destroy);
			stub.n_watch_userdata++;
		}
	} else if (streq(method, "unwatch"))
		rpc_conn_set_watching(conn, false);
	else if (streq(method, "notify")) {
		int64_t n = param_int(call, "count", 1, 0, 64);

		for (int64_t i = 0; i < n; i++) {
			int r = rpc_conn_notify(conn, "fuzz.event", params_copy(call));

			FUZZ_CHECK(r == 0 || r == -ENOBUFS || r == -ENOTCONN, "rpc_conn_notify: %d", r);
			if (r == -ENOBUFS) {
				rpc_conn_notify_and_close(conn, "watch.overflow", json_object_new_object());
				break;
			}
		}
	} else if (streq(method, "broadcast")) {
		int64_t n = param_int(call, "count", 1, 0, 64);
		json_object *params = params_copy(call);

		for (int64_t i = 0; i < n; i++) {
			int r = rpc_server_broadcast(stub.server, "fuzz.broadcast", params, NULL, NULL, "watch.overflow");

			FUZZ_CHECK(r >= 0, "rpc_server_broadcast: %d", r);
		}
		json_object_put(params);
	} else if (streq(method, "close"))
		rpc_conn_notify_and_close(conn, "fuzz.bye", params_copy(call));
	else if (streq(method, "limits")) {
		RpcLimits l = {
			.max_message_bytes = (size_t) param_int(call, "max_message_bytes", 0, 0, 1 << 20),
			.max_output_bytes = (size_t) param_int(call, "max_output_bytes", 0, 0, 1 << 22),
			.max_pending_calls = (unsigned) param_int(call, "max_pending_calls", 0, 0, 100),
			.max_queued_notifications = (unsigned) param_int(call, "max_queued_notifications", 0, 0, 100),
			.cpu_percent_per_uid = 100,
		};

		rpc_server_set_limits(stub.server, &l);
	} else if (streq(method, "stop")) {
		rpc_server_stop_reading(stub.server);
		stub.stopped = true;
	}
	answer(call, seq);
}

/* Answers the deferred calls, newest first (replies must still leave in request order). */
static bool stub_answer_deferred(void) {
	bool any = stub.n_deferred > 0;

	while (stub.n_deferred > 0) {
		Held h = stub.deferred[--stub.n_deferred];

		answer(h.call, h.seq);
	}
	return any;
}

static void stub_answer_held(void) {
	while (stub.n_held > 0) {
		Held h = stub.held[--stub.n_held];

		answer(h.call, h.seq);
	}
}

/* ---- the loop ---- */

typedef struct Session {
	sd_event *event;
	int fd;                     /* the client's end */
	Reader rd;
	bool stub;
	bool (*server_gone)(void);
} Session;

/* Runs the loop until nothing more happens (or PUMP_STEPS_MAX turns). */
static void pump(Session *s) {
	for (unsigned idle = 0, steps = 0; idle < 2 && steps < PUMP_STEPS_MAX * 8; steps++) {
		int r = sd_event_run(s->event, 0);
		bool progress;

		FUZZ_CHECK(r >= 0, "sd_event_run: %s", strerror(-r));
		progress = r > 0;
		if (s->fd >= 0 && reader_drain(&s->rd, s->fd))
			progress = true;
		if (!progress && s->stub && stub_answer_deferred())
			progress = true;
		idle = progress ? 0 : idle + 1;
	}
}

static void send_all(Session *s, const uint8_t *p, size_t n) {
	unsigned stalls = 0;

	while (n > 0) {
		ssize_t k = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return;         /* the server closed: the rest is not read */
			/* The server is not reading (paused, stopped, draining): let it run. */
			pump(s);
			if (++stalls > 8)
				return;
			continue;
		}
		stalls = 0;
		p += k;
		n -= (size_t) k;
	}
}

static int client_connect(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	FUZZ_CHECK(strlen(path) < sizeof sa.sun_path, "socket path too long");
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_CHECK(fd >= 0, "socket: %m");
	FUZZ_CHECK(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0, "connect %s: %m", path);
	return fd;
}

/* Sends the input, ends the connection as the flags say, and checks the end. */
static void run_session(Session *s, const char *path, uint8_t flags, size_t chunk, const uint8_t *data,
                        size_t size, bool may_hang) {
	s->fd = client_connect(path);
	pump(s);
	for (size_t off = 0; off < size;) {
		size_t n = chunk && chunk < size - off ? chunk : size - off;

		send_all(s, data + off, n);
		off += n;
		pump(s);
	}

	if (!(flags & FLAG_ABRUPT)) {
		bool must_close;

		FUZZ_CHECK(shutdown(s->fd, SHUT_WR) == 0, "shutdown: %m");
		/* The server reads the EOF first: a last line without '\n' is a
		 * message and is dispatched only now, so what is owed is known after. */
		pump(s);
		/* Held calls, a stopped server or (Manager) a request.wait may keep the
		 * connection open after EOF: then only look a little while. */
		must_close = !may_hang && !(s->stub && (stub.n_held > 0 || stub.stopped));
		for (unsigned i = 0; i < (must_close ? PUMP_STEPS_MAX : 8) && !s->rd.eof; i++)
			pump(s);
		if (must_close)
			FUZZ_CHECK(s->rd.eof, "the connection stayed open after the client's EOF with nothing owed");
	}
	close(s->fd);
	s->fd = -EBADF;
	for (unsigned i = 0; i < PUMP_STEPS_MAX && !s->server_gone(); i++)
		pump(s);
	FUZZ_CHECK(s->server_gone(), "the server kept a connection whose client closed");
}

/* ---- stand-in mode ---- */

static sd_event *stub_event;
static int stub_listen_fd = -EBADF;
static char stub_socket_path[PATH_MAX];

static bool stub_server_gone(void) {
	return rpc_server_connections(stub.server) == 0;
}

static void run_stub(uint8_t flags, size_t chunk, const uint8_t *data, size_t size) {
	static const size_t message_sizes[] = { 1024, 4096, 65536, 0 };
	static const unsigned pending[] = { 1, 2, 8, 0 };
	Session s = { .event = stub_event, .fd = -EBADF, .stub = true, .server_gone = stub_server_gone };
	RpcLimits limits = {
		.max_message_bytes = message_sizes[(flags >> 1) & 3],
		.max_pending_calls = pending[(flags >> 3) & 3],
		.max_output_bytes = flags & FLAG_SMALL_OUTPUT ? 8192 : 0,
		.max_queued_notifications = flags & FLAG_FEW_NOTIFY ? 2 : 0,
		/* No time share: it is measured on the real clock, so an input
		 * would read differently on a slow run (and the share is tested in
		 * test_rpc and test_fairshare). */
		.cpu_percent_per_uid = 100,
	};
	int r;

	stub = (Stub) { .next_seq = 1 };
	s.rd.check_seq = true;
	r = rpc_server_new(stub_event, stub_listen_fd, &limits, stub_dispatch, &stub, &stub.server);
	FUZZ_CHECK(r >= 0, "rpc_server_new: %s", strerror(-r));

	run_session(&s, stub_socket_path, flags, chunk, data, size, false);

	/* Calls without an abandon callback outlive their connection; answering now is dropped. */
	stub_answer_deferred();
	stub_answer_held();
	pump(&s);
	FUZZ_CHECK(rpc_server_is_drained(stub.server), "the server is not drained at the end");
	FUZZ_CHECK(stub.n_destroyed == stub.n_watch_userdata, "connection userdata destroyed %u times, set %u",
	           stub.n_destroyed, stub.n_watch_userdata);
	stub.server = rpc_server_free(stub.server);
	free(s.rd.buf);
}

/* ---- Manager mode ---- */

static char manager_dir[PATH_MAX], manager_conf[PATH_MAX], manager_socket[PATH_MAX], manager_state[PATH_MAX];
static Manager *current_manager;

static bool manager_server_gone(void) {
	return rpc_server_connections(current_manager->rpc) == 0;
}

static void run_manager(uint8_t flags, size_t chunk, const uint8_t *data, size_t size) {
	ManagerOptions options = {
		.config_path = manager_conf,
		.config_must_exist = true,
		.socket_path = manager_socket,
		.state_dir = manager_state,
	};
	Session s = { .fd = -EBADF, .server_gone = manager_server_gone };
	sigset_t saved;
	Manager *m = NULL;
	Methods *ms = NULL;
	int r;

	FUZZ_CHECK(mkdir(manager_state, 0700) == 0, "mkdir %s: %m", manager_state);
	sigprocmask(SIG_SETMASK, NULL, &saved);
	r = manager_new(&options, &m);
	FUZZ_CHECK(r >= 0, "manager_new: %s", strerror(-r));
	r = methods_new(m, &ms);
	FUZZ_CHECK(r >= 0, "methods_new: %s", strerror(-r));
	r = manager_startup(m);
	FUZZ_CHECK(r >= 0, "manager_startup: %s", strerror(-r));
	/* manager_startup() blocks SIGTERM/SIGINT/SIGHUP for its signal sources; the fuzzer
	 * must still stop on them. */
	sigprocmask(SIG_SETMASK, &saved, NULL);
	log_set_max_level(LOG_CRIT);
	current_manager = m;
	s.event = m->event;

	run_session(&s, manager_socket, flags, chunk, data, size, true);

	FUZZ_CHECK(rpc_server_is_drained(m->rpc), "the server is not drained at the end");
	current_manager = NULL;
	manager_free(m);
	methods_free(ms);
	free(s.rd.buf);
	fuzz_remove_tree(manager_state);
}

static void write_text(const char *path, const char *text) {
	_cleanup_(fclosep) FILE *f = fopen(path, "we");

	FUZZ_CHECK(f, "fopen %s: %m", path);
	fputs(text, f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	char conf[1024];
	int r;

	fuzz_quiet_logs();
	verbose = getenv("FUZZ_VERBOSE");
	signal(SIGPIPE, SIG_IGN);
	/* Nothing of the environment may reach the daemon code: no key, no systemd. */
	unsetenv("HITL_API_KEY");
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("WATCHDOG_USEC");
	/* Once for the process: the Manager's curl setup is then cheap. */
	FUZZ_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "curl_global_init");

	r = sd_event_new(&stub_event);
	FUZZ_CHECK(r >= 0, "sd_event_new: %s", strerror(-r));
	snprintf(stub_socket_path, sizeof stub_socket_path, "%s/stub.sock", fuzz_tmpdir());
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		FUZZ_CHECK(strlen(stub_socket_path) < sizeof sa.sun_path, "socket path too long");
		strcpy(sa.sun_path, stub_socket_path);
		stub_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		FUZZ_CHECK(stub_listen_fd >= 0, "socket: %m");
		FUZZ_CHECK(bind(stub_listen_fd, (struct sockaddr *) &sa, sizeof sa) == 0, "bind: %m");
		FUZZ_CHECK(listen(stub_listen_fd, 16) == 0, "listen: %m");
	}

	snprintf(manager_dir, sizeof manager_dir, "%s/manager", fuzz_tmpdir());
	FUZZ_CHECK(mkdir(manager_dir, 0700) == 0, "mkdir %s: %m", manager_dir);
	snprintf(manager_conf, sizeof manager_conf, "%s/hitld.conf", manager_dir);
	snprintf(manager_socket, sizeof manager_socket, "%s/hitld.sock", manager_dir);
	snprintf(manager_state, sizeof manager_state, "%s/state", manager_dir);
	/* The API points at a port nothing listens on; with no key nothing is sent anyway. */
	snprintf(conf, sizeof conf,
	         "api = { base_url = \"http://127.0.0.1:9/v1\"; timeout_s = 1; };\n"
	         "socket = { group = \"\"; admin_group = \"\"; max_message_bytes = 4096; };\n"
	         "outbox = { max_requests = 50; max_per_uid = 20; min_free_mb = 0; };\n"
	         "log = { level = \"crit\"; };\n");
	write_text(manager_conf, conf);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	uint8_t flags;
	size_t chunk;

	if (size < 2)
		return 0;
	flags = data[0];
	chunk = data[1];
	if (flags & FLAG_MANAGER)
		run_manager(flags, chunk, data + 2, size - 2);
	else
		run_stub(flags, chunk, data + 2, size - 2);
	return 0;
}
