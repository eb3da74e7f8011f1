/* test_rpc.c — the control socket server and its listener, tested for real: a real sd-event
 * loop, real AF_UNIX sockets in a temporary directory, a client written by hand. The loop runs
 * in short sd_event_run() steps while the client writes and reads. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "listener.h"
#include "rpc.h"

#define STEP_USEC (5 * USEC_PER_MSEC)
#define WAIT_USEC (3 * USEC_PER_SEC)
#define MAX_DEFERRED 64

typedef struct Fixture {
	char dir[64];
	char path[128];
	int listen_fd;
	bool inherited;
	sd_event *event;
	RpcServer *server;
	RpcLimits limits;

	unsigned n_dispatched;
	unsigned n_notifications;
	unsigned n_abandoned;
	unsigned n_destroyed;
	RpcCall *deferred[MAX_DEFERRED];
	unsigned n_deferred;
	RpcConn *last_conn;
	uid_t last_uid;
	gid_t last_gid;
	pid_t last_pid;
	size_t big_size;
	RpcConn *order[64];      /* connection of each dispatched call, in order */
	unsigned n_order;
} Fixture;

typedef struct Client {
	int fd;
	char *buf;
	size_t len, alloc;
	size_t total_read;
	bool eof;
} Client;

/* ---- server side: a stand-in for the methods layer ---- */

static void on_abandon(RpcCall *call, void *userdata) {
	Fixture *f = userdata;

	for (unsigned i = 0; i < f->n_deferred; i++)
		if (f->deferred[i] == call)
			f->deferred[i] = NULL;
	f->n_abandoned++;
}

static void on_conn_destroy(void *ud) {
	Fixture *f = ud;

	f->n_destroyed++;
}

static void test_dispatch(RpcCall *call, void *userdata) {
	Fixture *f = userdata;
	const char *method = rpc_call_method(call);

	f->n_dispatched++;
	if (rpc_call_is_notification(call))
		f->n_notifications++;
	f->last_conn = rpc_call_conn(call);
	if (f->n_order < 64)
		f->order[f->n_order++] = f->last_conn;
	f->last_uid = rpc_call_uid(call);
	f->last_gid = rpc_call_gid(call);
	f->last_pid = rpc_call_pid(call);

	if (streq(method, "defer") || streq(method, "defer_no_abandon")) {
		assert_true(f->n_deferred < MAX_DEFERRED);
		f->deferred[f->n_deferred++] = call;
		if (streq(method, "defer"))
			rpc_call_set_abandon(call, on_abandon, f);
		return;
	}
	if (streq(method, "watch")) {
		rpc_conn_set_watching(rpc_call_conn(call), true);
		rpc_conn_set_userdata(rpc_call_conn(call), f, on_conn_destroy);
		rpc_call_reply(call, json_object_new_object());
		return;
	}
	if (streq(method, "big")) {
		char *s = malloc(f->big_size + 1);

		assert_non_null(s);
		memset(s, 'b', f->big_size);
		s[f->big_size] = '\0';
		rpc_call_reply(call, json_object_new_string(s));
		free(s);
		return;
	}
	if (streq(method, "fail")) {
		rpc_call_error(call, RPC_ERROR_METHOD_NOT_FOUND, "Method not found", NULL);
		return;
	}
	/* echo */
	rpc_call_reply(call, json_object_get(rpc_call_params(call)));
}

/* ---- fixture ---- */

static void fixture_start(Fixture *f) {
	assert_int_equal(rpc_server_new(f->event, f->listen_fd, &f->limits, test_dispatch, f, &f->server), 0);
}

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);
	bool inherited;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test-rpc-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/hitld.sock", f->dir);
	f->listen_fd = -EBADF;
	assert_int_equal(sd_event_new(&f->event), 0);
	assert_int_equal(listener_open(f->path, 0600, (gid_t) -1, &f->listen_fd, &inherited), 0);
	assert_false(inherited);
	f->big_size = 1024;
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	f->server = rpc_server_free(f->server);
	/* Calls without an abandon callback outlive their connection; answering them now must be
	 * safe (the answer is dropped). */
	for (unsigned i = 0; i < f->n_deferred; i++)
		if (f->deferred[i])
			rpc_call_reply(f->deferred[i], json_object_new_string("late"));
	if (f->listen_fd >= 0)
		listener_close(f->listen_fd, f->path, f->inherited);
	sd_event_unref(f->event);
	(void) unlink(f->path);
	(void) rmdir(f->dir);
	free(f);
	return 0;
}

static void step(Fixture *f) {
	assert_true(sd_event_run(f->event, STEP_USEC) >= 0);
}

static void run_for(Fixture *f, usec_t duration) {
	usec_t end = now_monotonic() + duration;

	while (now_monotonic() < end)
		step(f);
}

#define RUN_UNTIL(f, cond)                                              \
	do {                                                            \
		usec_t _end = now_monotonic() + WAIT_USEC;              \
		while (!(cond) && now_monotonic() < _end)               \
			step(f);                                        \
		assert_true(cond);                                      \
	} while (0)

/* ---- client side ---- */

static Client *client_connect(Fixture *f) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	Client *c = calloc(1, sizeof *c);

	assert_non_null(c);
	strcpy(sa.sun_path, f->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *) &sa, sizeof sa), 0);
	return c;
}

static void client_free(Client *c) {
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

static void client_send_bytes(Fixture *f, Client *c, const char *data, size_t n) {
	usec_t end = now_monotonic() + WAIT_USEC;

	while (n > 0) {
		ssize_t k = send(c->fd, data, n, MSG_NOSIGNAL);

		if (k < 0) {
			assert_true(errno == EAGAIN || errno == EINTR);
			assert_true(now_monotonic() < end);
			step(f);
			continue;
		}
		data += k;
		n -= (size_t) k;
	}
}

static void client_send(Fixture *f, Client *c, const char *s) {
	client_send_bytes(f, c, s, strlen(s));
}

/* Reads what is there without blocking. */
static void client_pump(Client *c) {
	for (;;) {
		ssize_t k;

		if (c->alloc - c->len < 65536) {
			c->alloc = c->alloc ? c->alloc * 2 : 65536;
			c->buf = realloc(c->buf, c->alloc);
			assert_non_null(c->buf);
		}
		k = recv(c->fd, c->buf + c->len, c->alloc - c->len, MSG_DONTWAIT);
		if (k < 0) {
			assert_true(errno == EAGAIN || errno == ECONNRESET);
			if (errno == ECONNRESET)
				c->eof = true;
			return;
		}
		if (k == 0) {
			c->eof = true;
			return;
		}
		c->len += (size_t) k;
		c->total_read += (size_t) k;
	}
}

/* The next line, or NULL at EOF or after the timeout. */
static char *client_try_line(Fixture *f, Client *c, usec_t timeout) {
	usec_t end = now_monotonic() + timeout;

	for (;;) {
		char *nl;

		client_pump(c);
		nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			size_t n = (size_t) (nl - c->buf);
			char *line = strndup(c->buf, n);

			assert_non_null(line);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return line;
		}
		if (c->eof || now_monotonic() >= end)
			return NULL;
		step(f);
	}
}

static char *client_line(Fixture *f, Client *c) {
	char *line = client_try_line(f, c, WAIT_USEC);

	assert_non_null(line);
	return line;
}

static json_object *client_json(Fixture *f, Client *c) {
	_cleanup_(freep) char *line = client_line(f, c);
	json_object *o = json_tokener_parse(line);

	assert_non_null(o);
	return o;
}

static bool client_wait_eof(Fixture *f, Client *c) {
	usec_t end = now_monotonic() + WAIT_USEC;

	while (now_monotonic() < end) {
		client_pump(c);
		c->len = 0;     /* discard */
		if (c->eof)
			return true;
		step(f);
	}
	return false;
}

static json_object *get(json_object *o, const char *key) {
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static void assert_error(json_object *resp, int code, const char *id_json) {
	json_object *err = get(resp, "error");

	assert_int_equal(json_object_get_int(get(err, "code")), code);
	assert_true(json_object_is_type(get(err, "message"), json_type_string));
	assert_string_equal(json_object_to_json_string_ext(get(resp, "id"), JSON_C_TO_STRING_PLAIN), id_json);
	assert_string_equal(json_object_get_string(get(resp, "jsonrpc")), "2.0");
}

static void assert_error_line(Fixture *f, Client *c, int code, const char *id_json) {
	_cleanup_(json_object_putp) json_object *resp = client_json(f, c);

	assert_error(resp, code, id_json);
}

static void assert_result_id(Fixture *f, Client *c, const char *id_json) {
	_cleanup_(json_object_putp) json_object *resp = client_json(f, c);

	assert_true(json_object_object_get_ex(resp, "result", NULL));
	assert_string_equal(json_object_to_json_string_ext(get(resp, "id"), JSON_C_TO_STRING_PLAIN), id_json);
}

/* ---- framing, ordering, dispatch ---- */

static void test_rpc_reply_is_one_line_with_keys_in_order(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *line = NULL;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\",\"params\":{\"ok\":true}}\n");
	line = client_line(f, c);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}");
	client_free(c);
}

static void test_rpc_pipelined_requests_answered_in_order_when_handler_answers_in_reverse(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *early = NULL;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c,
	            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n"
	            "{\"jsonrpc\":\"2.0\",\"id\":\"two\",\"method\":\"defer\"}\n"
	            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 3);

	rpc_call_reply(f->deferred[2], json_object_new_int(3));
	rpc_call_reply(f->deferred[1], json_object_new_int(2));
	f->deferred[2] = f->deferred[1] = NULL;
	/* Nothing may leave while the first request is unanswered. */
	early = client_try_line(f, c, 100 * USEC_PER_MSEC);
	assert_null(early);

	rpc_call_reply(f->deferred[0], json_object_new_int(1));
	f->deferred[0] = NULL;
	assert_result_id(f, c, "1");
	assert_result_id(f, c, "\"two\"");
	assert_result_id(f, c, "3");
	client_free(c);
}

static void test_rpc_deferred_reply_is_sent_when_answered(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *early = NULL, *line = NULL;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);
	early = client_try_line(f, c, 100 * USEC_PER_MSEC);
	assert_null(early);

	rpc_call_error(f->deferred[0], RPC_ERROR_NOT_FOUND, "No such request", NULL);
	f->deferred[0] = NULL;
	line = client_line(f, c);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":42,"
	                          "\"error\":{\"code\":-32001,\"message\":\"No such request\"}}");
	client_free(c);
}

static void test_rpc_notification_is_dispatched_but_not_answered(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c,
	            "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"n\":1}}\n"
	            "{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}\n"
	            "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
	/* The first line back answers id 2: the two notifications produced nothing. */
	assert_result_id(f, c, "2");
	assert_int_equal(f->n_dispatched, 3);
	assert_int_equal(f->n_notifications, 2);
	client_free(c);
}

static void test_rpc_crlf_and_empty_lines_are_accepted(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "\n\r\n   \n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\r\n");
	assert_result_id(f, c, "1");
	assert_int_equal(f->n_dispatched, 1);
	client_free(c);
}

static void test_rpc_invalid_json_is_parse_error_and_connection_stays_usable(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\n");
	assert_error_line(f, c, RPC_ERROR_PARSE, "null");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"} trailing\n");
	assert_error_line(f, c, RPC_ERROR_PARSE, "null");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",}\n");
	assert_error_line(f, c, RPC_ERROR_PARSE, "null");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\"}\n");
	assert_result_id(f, c, "4");
	assert_int_equal(f->n_dispatched, 1);
	client_free(c);
}

static void test_rpc_too_deep_json_is_parse_error(void **state) {
	Fixture *f = *state;
	char line[512] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"a\":";
	Client *c;

	for (int i = 0; i < 100; i++)
		strcat(line, "[");
	for (int i = 0; i < 100; i++)
		strcat(line, "]");
	strcat(line, "}}\n");
	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, line);
	assert_error_line(f, c, RPC_ERROR_PARSE, "null");
	assert_int_equal(f->n_dispatched, 0);
	client_free(c);
}

static void test_rpc_invalid_utf8_is_parse_error(void **state) {
	static const char *const bad[] = {
		"\xC0\xAF",             /* overlong '/' */
		"\xE0\x80\xAF",         /* overlong, 3 bytes */
		"\xED\xA0\x80",         /* lone high surrogate U+D800 */
		"\xED\xBF\xBF",         /* lone low surrogate U+DFFF */
		"\xF4\x90\x80\x80",     /* U+110000 */
		"\xFF",
		"\xC3",                 /* truncated */
	};
	Fixture *f = *state;
	char line[256];
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		snprintf(line, sizeof line,
		         "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"echo\",\"params\":{\"s\":\"%s\"}}\n",
		         i, bad[i]);
		client_send(f, c, line);
		assert_error_line(f, c, RPC_ERROR_PARSE, "null");
	}
	assert_int_equal(f->n_dispatched, 0);
	/* Valid multi-byte text goes through. */
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"echo\","
	                  "\"params\":{\"s\":\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"}}\n");
	assert_result_id(f, c, "9");
	client_free(c);
}

static void test_rpc_batch_is_invalid_request(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]\n");
	{
		_cleanup_(json_object_putp) json_object *resp = client_json(f, c);

		assert_error(resp, RPC_ERROR_INVALID_REQUEST, "null");
		assert_string_equal(json_object_get_string(get(get(get(resp, "error"), "data"), "reason")),
		                    "batch requests are not supported");
	}
	client_send(f, c, "42\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "null");
	assert_int_equal(f->n_dispatched, 0);
	client_free(c);
}

static void test_rpc_missing_jsonrpc_is_invalid_request_with_id_echoed(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"id\":5,\"method\":\"echo\"}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "5");
	client_send(f, c, "{\"jsonrpc\":\"1.0\",\"id\":\"x\",\"method\":\"echo\"}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "\"x\"");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":17}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "6");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"echo\"}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "null");
	assert_int_equal(f->n_dispatched, 0);
	client_free(c);
}

static void test_rpc_non_object_params_is_rejected(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":5}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "1");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":null}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "2");
	/* By-position params are well-formed JSON-RPC, just not something we take. */
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":[1]}\n");
	assert_error_line(f, c, RPC_ERROR_INVALID_PARAMS, "3");
	assert_int_equal(f->n_dispatched, 0);
	/* Absent params: the handler sees {}. */
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\"}\n");
	{
		_cleanup_(json_object_putp) json_object *resp = client_json(f, c);

		assert_true(json_object_is_type(get(resp, "result"), json_type_object));
		assert_int_equal(json_object_object_length(get(resp, "result")), 0);
	}
	client_free(c);
}

static void test_rpc_message_too_large_is_answered_then_closed(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *resp = NULL;
	char chunk[1024];
	Client *c;

	f->limits.max_message_bytes = 4096;
	fixture_start(f);
	c = client_connect(f);
	/* No newline ever: the server must answer as soon as the partial line is too long. */
	memset(chunk, 'x', sizeof chunk);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"s\":\"");
	for (int i = 0; i < 6; i++)
		client_send_bytes(f, c, chunk, sizeof chunk);
	resp = client_json(f, c);
	assert_error(resp, RPC_ERROR_INVALID_REQUEST, "null");
	assert_string_equal(json_object_get_string(get(get(get(resp, "error"), "data"), "reason")),
	                    "message too large");
	assert_true(client_wait_eof(f, c));
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
	assert_int_equal(f->n_dispatched, 0);
	client_free(c);
}

static void test_rpc_complete_line_too_large_is_refused(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *big = malloc(3000);
	Client *c;

	f->limits.max_message_bytes = 1024;
	fixture_start(f);
	c = client_connect(f);
	/* Lines under the limit first: they are answered, then the long one closes. */
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n");
	memset(big, ' ', 2998);
	big[0] = '{';
	big[2997] = '}';
	big[2998] = '\n';
	big[2999] = '\0';
	client_send(f, c, big);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\"}\n");
	assert_result_id(f, c, "1");
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "null");
	assert_true(client_wait_eof(f, c));
	assert_int_equal(f->n_dispatched, 1);
	client_free(c);
}

static void test_rpc_line_of_exactly_max_message_bytes_is_accepted(void **state) {
	Fixture *f = *state;
	const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"";
	char line[256];
	Client *c;

	f->limits.max_message_bytes = 100;
	fixture_start(f);
	c = client_connect(f);
	/* 100 bytes of JSON, then CRLF: the terminator does not count. */
	snprintf(line, sizeof line, "%s%*s}\r\n", req, (int) (100 - strlen(req) - 1), "");
	assert_int_equal(strlen(line), 102);
	client_send(f, c, line);
	assert_result_id(f, c, "1");
	/* 101 bytes: too large. */
	snprintf(line, sizeof line, "%s%*s}\n", req, (int) (101 - strlen(req) - 1), "");
	client_send(f, c, line);
	assert_error_line(f, c, RPC_ERROR_INVALID_REQUEST, "null");
	assert_true(client_wait_eof(f, c));
	client_free(c);
}

/* ---- identity and limits ---- */

static void test_rpc_peer_identity_is_the_callers(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"uid\":0}}\n");
	assert_result_id(f, c, "1");
	assert_int_equal(f->last_uid, getuid());
	assert_int_equal(f->last_gid, getgid());
	assert_int_equal(f->last_pid, getpid());
	assert_int_equal(rpc_conn_uid(f->last_conn), getuid());
	client_free(c);
}

static void test_rpc_connections_per_uid_are_limited(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *resp = NULL;
	Client *a, *b, *c;

	f->limits.max_connections_per_uid = 2;
	fixture_start(f);
	a = client_connect(f);
	b = client_connect(f);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 2);
	c = client_connect(f);
	resp = client_json(f, c);
	assert_error(resp, RPC_ERROR_QUOTA, "null");
	assert_int_equal(json_object_get_int(get(get(get(resp, "error"), "data"), "limit")), 2);
	assert_true(client_wait_eof(f, c));
	assert_int_equal(rpc_server_connections(f->server), 2);
	/* The first two still work. */
	client_send(f, a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n");
	assert_result_id(f, a, "1");
	client_free(a);
	client_free(b);
	client_free(c);
}

static void test_rpc_connections_past_total_limit_are_closed(void **state) {
	Fixture *f = *state;
	Client *a, *b;

	f->limits.max_connections = 1;
	fixture_start(f);
	a = client_connect(f);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 1);
	b = client_connect(f);
	assert_true(client_wait_eof(f, b));
	assert_int_equal(b->total_read, 0);
	assert_int_equal(rpc_server_connections(f->server), 1);
	client_free(a);
	client_free(b);
}

static void test_rpc_reading_pauses_at_max_pending_calls(void **state) {
	Fixture *f = *state;
	Client *c;

	f->limits.max_pending_calls = 2;
	fixture_start(f);
	c = client_connect(f);
	for (int i = 1; i <= 5; i++) {
		char line[128];

		snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"defer\"}\n", i);
		client_send(f, c, line);
	}
	RUN_UNTIL(f, f->n_deferred == 2);
	run_for(f, 100 * USEC_PER_MSEC);
	assert_int_equal(f->n_deferred, 2);

	for (unsigned done = 0; done < 5; done++) {
		char id[16];

		RUN_UNTIL(f, f->n_deferred > done);
		rpc_call_reply(f->deferred[done], json_object_new_int((int) done));
		f->deferred[done] = NULL;
		snprintf(id, sizeof id, "%u", done + 1);
		assert_result_id(f, c, id);
	}
	assert_int_equal(f->n_deferred, 5);
	client_free(c);
}

static void test_rpc_idle_connection_is_closed_but_watching_one_is_not(void **state) {
	Fixture *f = *state;
	Client *idle, *watcher, *busy;

	f->limits.idle_timeout = 200 * USEC_PER_MSEC;
	fixture_start(f);
	idle = client_connect(f);
	watcher = client_connect(f);
	busy = client_connect(f);
	client_send(f, watcher, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
	assert_result_id(f, watcher, "1");
	client_send(f, busy, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);

	assert_true(client_wait_eof(f, idle));
	run_for(f, 400 * USEC_PER_MSEC);
	assert_int_equal(rpc_server_connections(f->server), 2);
	client_send(f, watcher, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
	assert_result_id(f, watcher, "2");

	/* The idle clock of the busy one starts when its call is answered. */
	rpc_call_reply(f->deferred[0], json_object_new_int(0));
	f->deferred[0] = NULL;
	assert_result_id(f, busy, "1");
	assert_true(client_wait_eof(f, busy));
	assert_int_equal(rpc_server_connections(f->server), 1);
	client_free(idle);
	client_free(watcher);
	client_free(busy);
}

static void test_rpc_client_that_never_reads_is_closed_past_output_limit(void **state) {
	Fixture *f = *state;
	Client *stuck, *other;

	f->limits.max_output_bytes = 256 * 1024;
	f->big_size = 1024 * 1024;
	fixture_start(f);
	stuck = client_connect(f);
	other = client_connect(f);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 2);
	client_send(f, stuck, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"big\"}\n");
	RUN_UNTIL(f, rpc_server_connections(f->server) == 1);

	client_send(f, other, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n");
	assert_result_id(f, other, "1");
	/* The stuck client gets whatever the kernel had taken, then EOF: never the whole reply. */
	assert_true(client_wait_eof(f, stuck));
	assert_true(stuck->total_read < f->big_size);
	client_free(stuck);
	client_free(other);
}

/* ---- connection lifetime ---- */

static void test_rpc_abandon_callback_runs_when_client_hangs_up(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);
	client_free(c);
	RUN_UNTIL(f, f->n_abandoned == 1);
	assert_null(f->deferred[0]);
	assert_int_equal(rpc_server_connections(f->server), 0);
}

static void test_rpc_hangup_is_noticed_while_reading_is_paused(void **state) {
	Fixture *f = *state;
	Client *c;

	f->limits.max_pending_calls = 1;
	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n"
	                  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);
	run_for(f, 50 * USEC_PER_MSEC);
	assert_int_equal(f->n_deferred, 1);   /* paused: the second is not read */
	client_free(c);
	RUN_UNTIL(f, f->n_abandoned == 1);
	assert_int_equal(rpc_server_connections(f->server), 0);
	assert_int_equal(f->n_dispatched, 1);
}

static void test_rpc_reply_after_hangup_without_abandon_is_dropped(void **state) {
	Fixture *f = *state;
	Client *c;
	RpcConn *conn;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer_no_abandon\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);
	conn = rpc_call_conn(f->deferred[0]);
	client_free(c);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
	/* The call (and its connection object) are still valid. */
	assert_false(rpc_conn_is_open(conn));
	assert_int_equal(rpc_call_uid(f->deferred[0]), getuid());
	assert_int_equal(rpc_conn_notify(conn, "x", json_object_new_object()), -ENOTCONN);
	rpc_call_reply(f->deferred[0], json_object_new_string("too late"));
	f->deferred[0] = NULL;
	assert_int_equal(f->n_abandoned, 0);
}

static void test_rpc_server_free_abandons_outstanding_calls(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"watch\"}\n");
	RUN_UNTIL(f, f->n_dispatched == 2);
	f->server = rpc_server_free(f->server);
	assert_int_equal(f->n_abandoned, 1);
	assert_int_equal(f->n_destroyed, 1);
	assert_true(client_wait_eof(f, c));
	client_free(c);
}

static void test_rpc_half_closed_client_still_gets_replies(void **state) {
	Fixture *f = *state;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	/* The last line has no '\n': at EOF it still counts. */
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n"
	                  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}");
	assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
	RUN_UNTIL(f, f->n_dispatched == 2);
	run_for(f, 50 * USEC_PER_MSEC);
	assert_int_equal(f->n_abandoned, 0);
	rpc_call_reply(f->deferred[0], json_object_new_int(1));
	f->deferred[0] = NULL;
	assert_result_id(f, c, "1");
	assert_result_id(f, c, "2");
	assert_true(client_wait_eof(f, c));
	client_free(c);
}

static void test_rpc_stop_reading_flushes_owed_replies_but_dispatches_nothing_new(void **state) {
	Fixture *f = *state;
	Client *c, *late;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);
	rpc_server_stop_reading(f->server);
	assert_false(rpc_server_is_drained(f->server));
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
	late = client_connect(f);   /* sits in the backlog, never accepted */
	run_for(f, 100 * USEC_PER_MSEC);
	assert_int_equal(f->n_dispatched, 1);
	assert_int_equal(rpc_server_connections(f->server), 1);

	rpc_call_reply(f->deferred[0], json_object_new_int(1));
	f->deferred[0] = NULL;
	assert_result_id(f, c, "1");
	RUN_UNTIL(f, rpc_server_is_drained(f->server));
	assert_int_equal(f->n_dispatched, 1);
	client_free(c);
	client_free(late);
}

/* ---- server → client notifications ---- */

static void test_rpc_notification_does_not_wait_for_pending_call(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *line = NULL;
	json_object *params;
	Client *c;

	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
	assert_result_id(f, c, "1");
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"defer\"}\n");
	RUN_UNTIL(f, f->n_deferred == 1);

	params = json_object_new_object();
	json_object_object_add(params, "n", json_object_new_int(1));
	assert_int_equal(rpc_conn_notify(f->last_conn, "request.changed", params), 0);
	line = client_line(f, c);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"n\":1}}");

	params = json_object_new_object();
	assert_int_equal(rpc_server_broadcast(f->server, "request.changed", params, NULL, NULL, NULL), 1);
	json_object_put(params);
	free(line);
	line = client_line(f, c);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{}}");

	rpc_call_reply(f->deferred[0], json_object_new_int(2));
	f->deferred[0] = NULL;
	assert_result_id(f, c, "2");
	client_free(c);
}

static void test_rpc_output_of_one_uid_is_bounded_across_its_connections(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *payload = malloc(32 * 1024);
	RpcConn *w[2];
	Client *c[2];
	int r = 0, i;

	f->limits.max_queued_notifications = 10000;
	f->limits.max_output_bytes = 64 * 1024 * 1024;
	f->limits.max_output_bytes_per_uid = 512 * 1024;
	fixture_start(f);
	for (i = 0; i < 2; i++) {
		c[i] = client_connect(f);
		client_send(f, c[i], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
		assert_result_id(f, c[i], "1");
		w[i] = f->last_conn;
	}
	memset(payload, 'p', 32 * 1024 - 1);
	payload[32 * 1024 - 1] = '\0';
	/* Neither reads: alone, each would stay under its own 64 MiB; together
	 * they reach the uid's bound, and the one that passes it is refused. */
	for (i = 0; i < 2000 && r == 0; i++) {
		json_object *params = json_object_new_object();

		json_object_object_add(params, "p", json_object_new_string(payload));
		r = rpc_conn_notify(w[i % 2], "request.changed", params);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(rpc_server_output_bytes_uid(f->server, getuid()) <= 512 * 1024);
	assert_true(rpc_server_output_bytes(f->server) <= 512 * 1024);
	assert_true(rpc_conn_queued_notifications(w[0]) > 0 && rpc_conn_queued_notifications(w[1]) > 0);
	/* A reply past the bound closes the connection holding the most. */
	f->big_size = 600 * 1024;
	client_send(f, c[0], "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"big\"}\n");
	RUN_UNTIL(f, rpc_server_connections(f->server) < 2);
	assert_true(rpc_server_output_bytes_uid(f->server, getuid()) <= 512 * 1024);
	client_free(c[0]);
	client_free(c[1]);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
	assert_int_equal(rpc_server_output_bytes(f->server), 0);
}

/* Sends the first n bytes of an echo request it never finishes, and runs the loop until the
 * server has read them (or closed the connection). */
static void client_send_partial(Fixture *f, Client *c, size_t n) {
	static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"s\":\"";
	_cleanup_(freep) char *buf = malloc(n);
	usec_t end = now_monotonic() + WAIT_USEC;
	int unread = 0;

	assert_non_null(buf);
	assert_true(n >= sizeof head);
	memcpy(buf, head, sizeof head - 1);
	memset(buf + sizeof head - 1, 'x', n - (sizeof head - 1));
	client_send_bytes(f, c, buf, n);
	while (ioctl(c->fd, TIOCOUTQ, &unread) == 0 && unread > 0 && now_monotonic() < end)
		step(f);
	assert_int_equal(unread, 0);
}

static void test_rpc_input_of_one_uid_is_bounded_across_its_connections(void **state) {
	static const size_t kib[] = { 40, 60, 50, 55, 58 };
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *resp = NULL;
	Client *c[5];
	size_t held = 0;

	f->limits.max_message_bytes = 64 * 1024;
	/* Raised to its floor, two messages of the largest size: 2 x (64 + 64) KiB. */
	f->limits.max_input_bytes_per_uid = 1;
	fixture_start(f);
	for (int i = 0; i < 5; i++) {
		c[i] = client_connect(f);
		client_send_partial(f, c[i], kib[i] * 1024);
		held += kib[i] * 1024;
		assert_true(rpc_server_input_bytes_uid(f->server, getuid()) <= 256 * 1024);
	}
	/* 40 + 60 + 50 + 55 KiB fit; 58 more pass 256 KiB: the connection holding the most,
	 * not the one that passed, is answered as an over-long line is, and closed. */
	resp = client_json(f, c[1]);
	assert_error(resp, RPC_ERROR_INVALID_REQUEST, "null");
	assert_string_equal(json_object_get_string(get(get(get(resp, "error"), "data"), "reason")),
	                    "message too large");
	assert_true(client_wait_eof(f, c[1]));
	assert_int_equal(rpc_server_input_bytes_uid(f->server, getuid()), held - 60 * 1024);
	assert_int_equal(rpc_server_input_bytes(f->server), held - 60 * 1024);
	/* The others finish their lines and are answered. */
	for (int i = 0; i < 5; i++)
		if (i != 1) {
			client_send(f, c[i], "\"}}\n");
			assert_result_id(f, c[i], "1");
		}
	assert_int_equal(rpc_server_input_bytes(f->server), 0);
	for (int i = 0; i < 5; i++)
		client_free(c[i]);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
	assert_int_equal(f->n_dispatched, 4);
}

static void test_rpc_input_bound_leaves_room_for_two_messages_of_the_largest_size(void **state) {
	Fixture *f = *state;
	Client *c[2];

	/* Configured below the floor: two 250 KiB lines at once still fit (2 x 320 KiB). */
	f->limits.max_message_bytes = 256 * 1024;
	f->limits.max_input_bytes_per_uid = 64 * 1024;
	f->limits.max_input_bytes_total = 64 * 1024;
	fixture_start(f);
	for (int i = 0; i < 2; i++) {
		c[i] = client_connect(f);
		client_send_partial(f, c[i], 250 * 1024);
	}
	assert_int_equal(rpc_server_input_bytes(f->server), 500 * 1024);
	for (int i = 0; i < 2; i++) {
		client_send(f, c[i], "\"}}\n");
		assert_result_id(f, c[i], "1");
		client_free(c[i]);
	}
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
}

static size_t heap_in_use(void) {
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

static void test_rpc_buffer_of_a_handled_long_line_is_not_kept(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *blank = malloc(900 * 1024);
	Client *c[4];
	size_t before, after;

	/* A long line handled (blank: ignored), then a short partial one: what the buffer keeps
	 * must be close to the partial line, which is what the per-uid bound counts. */
	memset(blank, ' ', 900 * 1024 - 1);
	blank[900 * 1024 - 1] = '\n';
	fixture_start(f);
	before = heap_in_use();
	for (int i = 0; i < 4; i++) {
		c[i] = client_connect(f);
		client_send_bytes(f, c[i], blank, 900 * 1024);
		client_send_partial(f, c[i], 100);
	}
	RUN_UNTIL(f, rpc_server_connections(f->server) == 4);
	after = heap_in_use();
	assert_int_equal(rpc_server_input_bytes(f->server), 400);
	/* Each connection may keep its line, one read and a spare read (glibc; ASan's allocator
	 * is not counted by mallinfo2 and passes trivially). */
	assert_true(after < before || after - before < 4 * (3 * 64 * 1024 + 4096));
	for (int i = 0; i < 4; i++)
		client_free(c[i]);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
}

static void test_rpc_connections_take_turns(void **state) {
	Fixture *f = *state;
	char lines[24 * 64] = "";
	Client *a, *b;
	unsigned first_other = 0;

	fixture_start(f);
	a = client_connect(f);
	b = client_connect(f);
	for (int i = 0; i < 24; i++) {
		char l[64];

		snprintf(l, sizeof l, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\"}\n", i + 1);
		strcat(lines, l);
	}
	/* Both pipelines are in the sockets before the loop runs. */
	client_send_bytes(f, a, lines, strlen(lines));
	client_send_bytes(f, b, lines, strlen(lines));
	RUN_UNTIL(f, f->n_dispatched >= 48);
	/* Whichever went first, it did not get all 24 before the other's first. */
	for (unsigned i = 1; i < f->n_order; i++)
		if (f->order[i] != f->order[0]) {
			first_other = i;
			break;
		}
	assert_true(first_other > 0 && first_other <= RPC_LINES_PER_TURN + 1);
	client_free(a);
	client_free(b);
}

static void test_rpc_notify_refuses_past_max_queued_then_overflow_closes(void **state) {

	Fixture *f = *state;
	_cleanup_(freep) char *payload = malloc(32 * 1024);
	char *line, *last = NULL;
	Client *c;
	int r = 0;

	f->limits.max_queued_notifications = 4;
	f->limits.max_output_bytes = 64 * 1024 * 1024;
	fixture_start(f);
	c = client_connect(f);
	client_send(f, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
	assert_result_id(f, c, "1");

	memset(payload, 'p', 32 * 1024 - 1);
	payload[32 * 1024 - 1] = '\0';
	/* The client reads nothing: the socket buffer fills, then the queue. */
	for (int i = 0; i < 1000 && r == 0; i++) {
		json_object *params = json_object_new_object();

		json_object_object_add(params, "p", json_object_new_string(payload));
		r = rpc_conn_notify(f->last_conn, "request.changed", params);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_int_equal(rpc_conn_queued_notifications(f->last_conn), 4);

	rpc_conn_notify_and_close(f->last_conn, "watch.overflow", json_object_new_object());
	assert_int_equal(rpc_conn_notify(f->last_conn, "x", NULL), -ENOTCONN);
	/* Everything queued arrives, the overflow notice last, then EOF. */
	while ((line = client_try_line(f, c, WAIT_USEC))) {
		free(last);
		last = line;
	}
	assert_non_null(last);
	assert_string_equal(last, "{\"jsonrpc\":\"2.0\",\"method\":\"watch.overflow\",\"params\":{}}");
	free(last);
	assert_true(c->eof);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 0);
	assert_int_equal(f->n_destroyed, 1);
	client_free(c);
}

static void test_rpc_broadcast_overflow_closes_only_the_slow_watcher(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *payload = malloc(16 * 1024);
	Client *slow, *fast;
	char *line, *last = NULL;
	int r = 2;

	f->limits.max_queued_notifications = 2;
	f->limits.max_output_bytes = 64 * 1024 * 1024;
	fixture_start(f);
	slow = client_connect(f);
	fast = client_connect(f);
	client_send(f, slow, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
	assert_result_id(f, slow, "1");
	client_send(f, fast, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
	assert_result_id(f, fast, "1");

	memset(payload, 'p', 16 * 1024 - 1);
	payload[16 * 1024 - 1] = '\0';
	/* slow reads nothing, fast keeps up: only slow falls behind and is cut off. */
	for (int i = 0; i < 200 && r == 2; i++) {
		json_object *params = json_object_new_object();

		json_object_object_add(params, "p", json_object_new_string(payload));
		r = rpc_server_broadcast(f->server, "request.changed", params, NULL, NULL, "watch.overflow");
		json_object_put(params);
		line = client_line(f, fast);
		free(line);
	}
	assert_int_equal(r, 1);
	assert_int_equal(f->n_destroyed, 0);

	/* Once slow reads, it gets what was queued, the overflow notice, then EOF. */
	while ((line = client_try_line(f, slow, WAIT_USEC))) {
		free(last);
		last = line;
	}
	assert_non_null(last);
	assert_string_equal(last, "{\"jsonrpc\":\"2.0\",\"method\":\"watch.overflow\",\"params\":{}}");
	free(last);
	assert_true(slow->eof);
	RUN_UNTIL(f, rpc_server_connections(f->server) == 1);
	assert_int_equal(f->n_destroyed, 1);

	/* fast is still served. */
	client_send(f, fast, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
	assert_result_id(f, fast, "2");
	client_free(slow);
	client_free(fast);
}

/* ---- listener ---- */

static void test_listener_binds_and_applies_mode_and_group(void **state) {
	Fixture *f = *state;
	char path[160];
	struct stat st;
	bool inherited = true;
	int fd = -1;

	snprintf(path, sizeof path, "%s/other.sock", f->dir);
	assert_int_equal(listener_open(path, 0660, 4242, &fd, &inherited), 0);
	assert_false(inherited);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	if (geteuid() == 0)
		assert_int_equal(st.st_gid, 4242);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	listener_close(fd, path, false);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_listener_replaces_stale_socket(void **state) {
	Fixture *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[160];
	bool inherited;
	int fd, stale;

	snprintf(path, sizeof path, "%s/stale.sock", f->dir);
	strcpy(sa.sun_path, path);
	stale = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(stale, (struct sockaddr *) &sa, sizeof sa), 0);
	close(stale);   /* the file stays, nobody listens */
	assert_int_equal(listener_open(path, 0600, (gid_t) -1, &fd, &inherited), 0);
	stale = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(stale, (struct sockaddr *) &sa, sizeof sa), 0);
	close(stale);
	listener_close(fd, path, inherited);
}

static void test_listener_refuses_live_socket(void **state) {
	Fixture *f = *state;
	bool inherited;
	int fd = -1;

	/* The fixture's own listener lives at f->path. */
	assert_int_equal(listener_open(f->path, 0600, (gid_t) -1, &fd, &inherited), -EADDRINUSE);
	assert_int_equal(fd, -1);
}

static void test_listener_refuses_non_socket_file(void **state) {
	Fixture *f = *state;
	char path[160];
	struct stat st;
	bool inherited;
	int fd = -1, file;

	snprintf(path, sizeof path, "%s/file", f->dir);
	file = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(file >= 0);
	assert_int_equal(write(file, "keep", 4), 4);
	close(file);
	assert_int_equal(listener_open(path, 0600, (gid_t) -1, &fd, &inherited), -EEXIST);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 4);
	unlink(path);
}

static void test_listener_refuses_world_writable_dir_without_sticky_bit(void **state) {
	Fixture *f = *state;
	char dir[160], path[200];
	bool inherited;
	int fd = -1;

	snprintf(dir, sizeof dir, "%s/open", f->dir);
	snprintf(path, sizeof path, "%s/s.sock", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(listener_open(path, 0600, (gid_t) -1, &fd, &inherited), -EPERM);
	assert_int_equal(access(path, F_OK), -1);

	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(listener_open(path, 0600, (gid_t) -1, &fd, &inherited), 0);
	listener_close(fd, path, inherited);
	rmdir(dir);
}

/* Puts sock at fd 3 with LISTEN_FDS=1 for this process, as systemd would. */
static int move_to_fd3(int sock, int *ret_saved) {
	int saved = fcntl(3, F_GETFD) >= 0 ? fcntl(3, F_DUPFD_CLOEXEC, 100) : -1;

	assert_int_equal(dup2(sock, 3), 3);
	close(sock);
	*ret_saved = saved;
	assert_int_equal(setenv("LISTEN_FDS", "1", 1), 0);
	{
		char pid[32];

		snprintf(pid, sizeof pid, "%d", (int) getpid());
		assert_int_equal(setenv("LISTEN_PID", pid, 1), 0);
	}
	return 3;
}

static void restore_fd3(int saved) {
	if (saved >= 0) {
		dup2(saved, 3);
		close(saved);
	} else
		close(3);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
}

static void test_listener_accepts_inherited_unix_stream_socket(void **state) {
	Fixture *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[160];
	bool inherited = false;
	int sock, saved, fd = -1;

	snprintf(path, sizeof path, "%s/activated.sock", f->dir);
	strcpy(sa.sun_path, path);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(sock, (struct sockaddr *) &sa, sizeof sa), 0);
	assert_int_equal(listen(sock, 4), 0);
	move_to_fd3(sock, &saved);

	assert_int_equal(listener_open("/nonexistent/ignored.sock", 0600, (gid_t) -1, &fd, &inherited), 0);
	assert_int_equal(fd, 3);
	assert_true(inherited);
	assert_null(getenv("LISTEN_FDS"));
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	/* Closing an inherited socket never unlinks its path. */
	listener_close(-1, path, inherited);
	assert_int_equal(access(path, F_OK), 0);
	restore_fd3(saved);
	unlink(path);
}

static void test_listener_refuses_inherited_udp_socket(void **state) {
	bool inherited = false;
	int sock, saved, fd = -1;

	(void) state;
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(sock >= 0);
	move_to_fd3(sock, &saved);
	assert_int_equal(listener_open("/nonexistent/x.sock", 0600, (gid_t) -1, &fd, &inherited), -EINVAL);
	assert_int_equal(fd, -1);
	restore_fd3(saved);
}

static void test_listener_refuses_inherited_socket_not_listening(void **state) {
	bool inherited = false;
	int sock, saved, fd = -1;

	(void) state;
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(sock >= 0);
	move_to_fd3(sock, &saved);
	assert_int_equal(listener_open("/nonexistent/x.sock", 0600, (gid_t) -1, &fd, &inherited), -EINVAL);
	restore_fd3(saved);
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_rpc_reply_is_one_line_with_keys_in_order),
		T(test_rpc_pipelined_requests_answered_in_order_when_handler_answers_in_reverse),
		T(test_rpc_deferred_reply_is_sent_when_answered),
		T(test_rpc_notification_is_dispatched_but_not_answered),
		T(test_rpc_crlf_and_empty_lines_are_accepted),
		T(test_rpc_invalid_json_is_parse_error_and_connection_stays_usable),
		T(test_rpc_too_deep_json_is_parse_error),
		T(test_rpc_invalid_utf8_is_parse_error),
		T(test_rpc_batch_is_invalid_request),
		T(test_rpc_missing_jsonrpc_is_invalid_request_with_id_echoed),
		T(test_rpc_non_object_params_is_rejected),
		T(test_rpc_message_too_large_is_answered_then_closed),
		T(test_rpc_complete_line_too_large_is_refused),
		T(test_rpc_line_of_exactly_max_message_bytes_is_accepted),
		T(test_rpc_peer_identity_is_the_callers),
		T(test_rpc_connections_per_uid_are_limited),
		T(test_rpc_connections_past_total_limit_are_closed),
		T(test_rpc_reading_pauses_at_max_pending_calls),
		T(test_rpc_idle_connection_is_closed_but_watching_one_is_not),
		T(test_rpc_client_that_never_reads_is_closed_past_output_limit),
		T(test_rpc_abandon_callback_runs_when_client_hangs_up),
		T(test_rpc_hangup_is_noticed_while_reading_is_paused),
		T(test_rpc_reply_after_hangup_without_abandon_is_dropped),
		T(test_rpc_server_free_abandons_outstanding_calls),
		T(test_rpc_half_closed_client_still_gets_replies),
		T(test_rpc_stop_reading_flushes_owed_replies_but_dispatches_nothing_new),
		T(test_rpc_notification_does_not_wait_for_pending_call),
		T(test_rpc_output_of_one_uid_is_bounded_across_its_connections),
		T(test_rpc_input_of_one_uid_is_bounded_across_its_connections),
		T(test_rpc_input_bound_leaves_room_for_two_messages_of_the_largest_size),
		T(test_rpc_buffer_of_a_handled_long_line_is_not_kept),
		T(test_rpc_connections_take_turns),
		T(test_rpc_notify_refuses_past_max_queued_then_overflow_closes),
		T(test_rpc_broadcast_overflow_closes_only_the_slow_watcher),
		T(test_listener_binds_and_applies_mode_and_group),
		T(test_listener_replaces_stale_socket),
		T(test_listener_refuses_live_socket),
		T(test_listener_refuses_non_socket_file),
		T(test_listener_refuses_world_writable_dir_without_sticky_bit),
		T(test_listener_accepts_inherited_unix_stream_socket),
		T(test_listener_refuses_inherited_udp_socket),
		T(test_listener_refuses_inherited_socket_not_listening),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
