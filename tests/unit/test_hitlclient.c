/* test_hitlclient.c — the client library against a scripted daemon: one end of a socketpair
 * (or a real Unix socket in a temporary directory) played by the test, which writes the replies
 * the daemon would send and reads what the client wrote. Bigger or slower peers run in a child. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "hitlclient.h"

typedef struct Fixture {
	HitlClient *client;
	int server;       /* the daemon's end */
	HitlError error;
} Fixture;

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);
	int sv[2];

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(hitl_client_new_from_fd(sv[0], &f->client), 0);
	f->server = sv[1];
	f->error = HITL_ERROR_INIT;
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	hitl_client_free(f->client);
	if (f->server >= 0)
		close(f->server);
	hitl_error_clear(&f->error);
	free(f);
	return 0;
}

static void server_write(int fd, const char *s) {
	size_t len = strlen(s), done = 0;

	while (done < len) {
		ssize_t n = write(fd, s + done, len - done);

		assert_true(n > 0);
		done += (size_t) n;
	}
}

/* Reads one line the client wrote (without '\n'), waiting at most 2 s. */
static char *server_read_line(int fd) {
	char *buf = calloc(1, 65536);
	size_t len = 0;

	assert_non_null(buf);
	while (len < 65535) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&p, 1, 2000), 1);
		n = read(fd, buf + len, 1);
		assert_int_equal(n, 1);
		if (buf[len] == '\n') {
			buf[len] = 0;
			return buf;
		}
		len++;
	}
	fail_msg("no newline from the client");
	return NULL;
}

static json_object *server_read_message(int fd) {
	_cleanup_(freep) char *line = server_read_line(fd);
	json_object *j = json_tokener_parse(line);

	assert_non_null(j);
	return j;
}

/* ------------------------------------------------------------------ paths */

static void test_socket_path_prefers_explicit_then_env_then_default(void **state) {
	unsetenv(HITL_SOCKET_ENV);
	assert_string_equal(hitl_socket_path(NULL), "/run/hitld.sock");
	assert_string_equal(hitl_socket_path(""), "/run/hitld.sock");
	setenv(HITL_SOCKET_ENV, "/tmp/env.sock", 1);
	assert_string_equal(hitl_socket_path(NULL), "/tmp/env.sock");
	assert_string_equal(hitl_socket_path("/tmp/explicit.sock"), "/tmp/explicit.sock");
	setenv(HITL_SOCKET_ENV, "", 1);
	assert_string_equal(hitl_socket_path(NULL), "/run/hitld.sock");
	unsetenv(HITL_SOCKET_ENV);
}

static void test_instance_socket_path_is_built_and_bad_names_are_refused(void **state) {
	_cleanup_(freep) char *p = NULL;
	char *bad = NULL;
	char long_name[HITL_INSTANCE_NAME_MAX + 2];

	assert_int_equal(hitl_socket_path_for_instance("prod", &p), 0);
	assert_string_equal(p, "/run/hitld-prod.sock");
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = 0;
	assert_int_equal(hitl_socket_path_for_instance("../etc", &bad), -EINVAL);
	assert_int_equal(hitl_socket_path_for_instance("a/b", &bad), -EINVAL);
	assert_int_equal(hitl_socket_path_for_instance("", &bad), -EINVAL);
	assert_int_equal(hitl_socket_path_for_instance(".hidden", &bad), -EINVAL);
	assert_int_equal(hitl_socket_path_for_instance(long_name, &bad), -EINVAL);
	assert_null(bad);
}

/* ------------------------------------------------------------------ connecting */

static void test_connect_to_a_missing_socket_is_enoent(void **state) {
	HitlClient *c = NULL;

	assert_int_equal(hitl_client_connect("/nonexistent-hitld-dir/hitld.sock", &c), -ENOENT);
	assert_null(c);
}

static void test_connect_to_a_socket_nobody_listens_on_is_econnrefused(void **state) {
	char dir[] = "/tmp/hitlclient-XXXXXX", path[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	HitlClient *c = NULL;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.sock", dir);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
	close(fd); /* the file stays, nobody listens: what a dead daemon leaves */
	assert_int_equal(hitl_client_connect(path, &c), -ECONNREFUSED);
	unlink(path);
	rmdir(dir);
}

static void test_connect_with_a_path_too_long_is_enametoolong(void **state) {
	char path[200];
	HitlClient *c = NULL;

	memset(path, 'x', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = 0;
	assert_int_equal(hitl_client_connect(path, &c), -ENAMETOOLONG);
}

static void on_alarm(int sig) {
}

/* A listening socket nobody accepts on, its backlog full: connect(2) would block
 * until someone accepts (a stopped or swamped hitld). The client gives up in time. */
static void test_connect_to_a_full_backlog_gives_up_with_etimedout(void **state) {
	char dir[] = "/tmp/hitlclient-XXXXXX", path[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, fillers[32], n = 0, status;
	bool full = false;
	struct sigaction old;
	pid_t pid;
	HitlClient *c = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.sock", dir);
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 0), 0);
	while (n < (int) (sizeof fillers / sizeof fillers[0])) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
			assert_int_equal(errno, EAGAIN);
			close(fd);
			full = true;
			break;
		}
		fillers[n++] = fd;
	}
	assert_true(full);

	alarm(60); /* the harness's bound: an unbounded connect dies here */
	assert_int_equal(hitl_client_connect_timeout(path, 300, &c), -ETIMEDOUT);
	assert_null(c);
	assert_int_equal(hitl_client_connect_timeout(path, 0, &c), -ETIMEDOUT);
	alarm(0);

	/* A signal ends the wait, as it ends a call's (Ctrl-C in hitlctl). */
	assert_int_equal(sigaction(SIGALRM, &(struct sigaction) { .sa_handler = on_alarm }, &old), 0);
	alarm(1);
	assert_int_equal(hitl_client_connect_timeout(path, 60000, &c), -EINTR);
	assert_null(c);
	alarm(0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);

	/* Once the daemon accepts again, a waiting connect gets through. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		_exit(accept(lfd, NULL, NULL) >= 0 ? 0 : 1);
	}
	alarm(60);
	assert_int_equal(hitl_client_connect_timeout(path, 30000, &c), 0);
	alarm(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	hitl_client_free(c);

	for (int i = 0; i < n; i++)
		close(fillers[i]);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

static void test_connect_follows_hitld_socket_env_and_calls_over_a_real_socket(void **state) {
	char dir[] = "/tmp/hitlclient-XXXXXX", path[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_(json_object_putp) json_object *res = NULL, *req = NULL;
	HitlClient *c = NULL;
	int lfd, sfd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/hitld.sock", dir);
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 4), 0);

	setenv(HITL_SOCKET_ENV, path, 1);
	assert_int_equal(hitl_client_connect(NULL, &c), 0);
	unsetenv(HITL_SOCKET_ENV);
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);
	server_write(sfd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"hitld\"}}\n");
	assert_int_equal(hitl_hello(c, "test/1", &res, NULL), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(res, "daemon")), "hitld");
	req = server_read_message(sfd);
	assert_string_equal(json_object_get_string(json_object_object_get(req, "method")), "hello");
	assert_int_equal(json_object_get_int(json_object_object_get(json_object_object_get(req, "params"), "protocol")), 1);

	hitl_client_free(c);
	close(sfd);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

/* The fd belongs to the client from the call on, even when it fails. */
static void test_new_from_fd_without_ret_is_einval_and_closes_the_fd(void **state) {
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(hitl_client_new_from_fd(sv[0], NULL), -EINVAL);
	assert_int_equal(fcntl(sv[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(sv[1]);
	assert_int_equal(hitl_client_new_from_fd(-1, &(HitlClient *) { NULL }), -EBADF);
}

/* ------------------------------------------------------------------ calls */

static void test_call_sends_one_jsonrpc_line_with_increasing_ids(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *first = NULL, *second = NULL;

	json_object_object_add(params, "id", json_object_new_string("r_1/2"));
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n");
	assert_int_equal(hitl_client_call(f->client, "request.get", params, NULL, &f->error), 0);
	assert_int_equal(hitl_client_call(f->client, "status", NULL, NULL, &f->error), 0);

	first = server_read_message(f->server);
	second = server_read_message(f->server);
	assert_string_equal(json_object_get_string(json_object_object_get(first, "jsonrpc")), "2.0");
	assert_int_equal(json_object_get_int(json_object_object_get(first, "id")), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(first, "method")), "request.get");
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(first, "params"), "id")),
	                    "r_1/2");
	assert_int_equal(json_object_get_int(json_object_object_get(second, "id")), 2);
	/* No params given: an empty object, never absent. */
	assert_true(json_object_is_type(json_object_object_get(second, "params"), json_type_object));
}

static void test_slash_is_not_escaped_on_the_wire(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *params = json_object_new_object();
	_cleanup_(freep) char *line = NULL;

	json_object_object_add(params, "callback_url", json_object_new_string("https://x/y"));
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
	assert_int_equal(hitl_client_call(f->client, "x", params, NULL, NULL), 0);
	line = server_read_line(f->server);
	assert_non_null(strstr(line, "https://x/y"));
}

static void test_call_returns_the_result_and_a_null_result_as_null(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *res = NULL;
	json_object *none = (json_object *) 0x1;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"paused\":true}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":null}\n");
	assert_int_equal(hitl_queue_pause(f->client, &res, &f->error), 0);
	assert_true(json_object_get_boolean(json_object_object_get(res, "paused")));
	assert_int_equal(hitl_client_call(f->client, "x", NULL, &none, &f->error), 0);
	assert_null(none);
}

static void test_rpc_error_fills_code_message_and_data(void **state) {
	Fixture *f = *state;
	json_object *res = NULL;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"Invalid parameters.\","
	                        "\"data\":{\"field\":\"default_response\",\"reason\":\"must be one of the option values\"}}}\n");
	assert_int_equal(hitl_request_get(f->client, "r_x", &res, &f->error), -EREMOTEIO);
	assert_null(res);
	assert_int_equal(f->error.code, HITL_ERROR_INVALID_PARAMS);
	assert_string_equal(f->error.message, "Invalid parameters.");
	assert_string_equal(json_object_get_string(json_object_object_get(f->error.data, "field")), "default_response");
	assert_string_equal(hitl_error_code_name(f->error.code), "invalid_params");
	/* The connection stays usable after an error reply. */
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n");
	assert_int_equal(hitl_status(f->client, &res, &f->error), 0);
	json_object_put(res);
	assert_false(hitl_client_is_broken(f->client));
}

static void test_error_code_names_follow_the_protocol(void **state) {
	assert_string_equal(hitl_error_code_name(HITL_ERROR_NOT_FOUND), "not_found");
	assert_string_equal(hitl_error_code_name(HITL_ERROR_BUDGET), "budget_exhausted");
	assert_string_equal(hitl_error_code_name(HITL_ERROR_UNAVAILABLE), "unavailable");
	assert_null(hitl_error_code_name(42));
}

static void test_error_with_id_null_answers_the_call_in_progress(void **state) {
	Fixture *f = *state;

	/* What the daemon sends past the per-uid connection limit, before closing. */
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32003,\"message\":\"Too many connections.\","
	                        "\"data\":{\"limit\":32}}}\n");
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EREMOTEIO);
	assert_int_equal(f->error.code, HITL_ERROR_QUOTA);
}

static void test_notifications_during_a_call_are_kept_for_watch_next(void **state) {
	Fixture *f = *state;
	HitlEvent ev = HITL_EVENT_INIT;
	const char *note = "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"request\":{\"id\":\"r_a\",\"state\":\"pending\"}}}";
	char script[512];

	snprintf(script, sizeof script, "%s\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"watching\":3}}\n", note);
	server_write(f->server, script);
	assert_int_equal(hitl_watch(f->client, NULL, &f->error), 3);
	assert_int_equal(hitl_watch_next(f->client, 0, &ev), 1);
	assert_string_equal(ev.method, "request.changed");
	assert_string_equal(ev.line, note);
	assert_non_null(ev.request);
	assert_string_equal(json_object_get_string(json_object_object_get(ev.request, "state")), "pending");
	hitl_event_clear(&ev);
	assert_null(ev.line);
	assert_int_equal(hitl_watch_next(f->client, 0, &ev), 0);
}

/* A HitlError reused across calls says only what the last call said: a call that
 * fails otherwise than with -EREMOTEIO leaves it empty, not holding an earlier error. */
static void test_a_call_failing_otherwise_leaves_no_earlier_error(void **state) {
	Fixture *f = *state;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32001,\"message\":\"Not found.\"}}\n");
	assert_int_equal(hitl_request_get(f->client, "r_x", NULL, &f->error), -EREMOTEIO);
	assert_int_equal(f->error.code, HITL_ERROR_NOT_FOUND);
	close(f->server);
	f->server = -EBADF;
	assert_true(hitl_request_get(f->client, "r_x", NULL, &f->error) < 0);
	assert_int_equal(f->error.code, 0);
	assert_null(f->error.message);
	assert_null(f->error.data);
}

/* An event passed again without hitl_event_clear() is emptied first, as a HitlError is:
 * nothing leaks (LeakSanitizer in the ASan build sees it otherwise). */
static void test_watch_next_frees_what_the_event_held(void **state) {
	Fixture *f = *state;
	HitlEvent ev = HITL_EVENT_INIT;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"request\":{\"id\":\"r_a\"}}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"request\":{\"id\":\"r_b\"}}}\n");
	assert_int_equal(hitl_watch_next(f->client, 1000, &ev), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(ev.request, "id")), "r_a");
	assert_int_equal(hitl_watch_next(f->client, 1000, &ev), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(ev.request, "id")), "r_b");
	hitl_event_clear(&ev);
}

static bool fd_readable_now(int fd) {
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* What the client already holds does not make its descriptor readable:
 * hitl_client_pending() says so, for a notification kept during a call and for
 * a second line read together with the first. */
static void test_pending_says_what_poll_cannot_see(void **state) {
	Fixture *f = *state;
	HitlEvent ev = HITL_EVENT_INIT;

	assert_false(hitl_client_pending(NULL));
	assert_false(hitl_client_pending(f->client));
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
	assert_int_equal(hitl_status(f->client, NULL, &f->error), 0);
	assert_false(fd_readable_now(hitl_client_fd(f->client)));
	assert_true(hitl_client_pending(f->client));
	assert_int_equal(hitl_watch_next(f->client, 0, &ev), 1);
	assert_false(hitl_client_pending(f->client));

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"n\":1}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"n\":2}}\n");
	assert_int_equal(hitl_watch_next(f->client, 1000, &ev), 1);
	assert_false(fd_readable_now(hitl_client_fd(f->client)));
	assert_true(hitl_client_pending(f->client));
	assert_int_equal(hitl_watch_next(f->client, 0, &ev), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(ev.params, "n")), 2);
	assert_false(hitl_client_pending(f->client));
	hitl_event_clear(&ev);
}

static void test_watch_sends_ids_and_reads_events_in_order(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *req = NULL;
	static const char *const ids[] = { "r_a", "r_b", NULL };
	HitlEvent ev = HITL_EVENT_INIT;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"watching\":2}}\n");
	assert_int_equal(hitl_watch(f->client, ids, &f->error), 2);
	req = server_read_message(f->server);
	assert_int_equal(json_object_array_length(json_object_object_get(json_object_object_get(req, "params"), "ids")), 2);

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"request\":{\"id\":\"r_a\"}}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{\"request\":{\"id\":\"r_b\"}}}\n");
	assert_int_equal(hitl_watch_next(f->client, 1000, &ev), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(ev.request, "id")), "r_a");
	hitl_event_clear(&ev);
	assert_int_equal(hitl_watch_next(f->client, 1000, &ev), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(ev.request, "id")), "r_b");
	hitl_event_clear(&ev);
	assert_int_equal(hitl_watch_next(f->client, 20, &ev), 0);
}

static void test_too_many_notifications_during_a_call_become_one_overflow_event(void **state) {
	Fixture *f = *state;
	HitlEvent ev = HITL_EVENT_INIT;
	int n = 0;

	static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"request.changed\",\"params\":{}}\n";
	_cleanup_(freep) char *script = malloc((HITL_EVENT_QUEUE_MAX + 5) * strlen(note) + 64);

	/* One write: many small ones would fill the socket's buffer with overhead. */
	script[0] = 0;
	for (int i = 0; i < HITL_EVENT_QUEUE_MAX + 5; i++)
		strcat(script + (size_t) i * strlen(note), note);
	strcat(script, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
	server_write(f->server, script);
	assert_int_equal(hitl_status(f->client, NULL, &f->error), 0);
	while (hitl_watch_next(f->client, 0, &ev) == 1) {
		n++;
		if (streq(ev.method, "watch.overflow")) {
			assert_non_null(json_object_object_get(ev.params, "source"));
			assert_string_equal(json_object_get_string(json_object_object_get(ev.params, "source")), "client");
			assert_int_equal(json_object_get_int(json_object_object_get(ev.params, "dropped")), 5);
			hitl_event_clear(&ev);
			break;
		}
		assert_null(ev.request); /* params without a request */
		hitl_event_clear(&ev);
	}
	assert_int_equal(n, HITL_EVENT_QUEUE_MAX + 1);
}

/* The daemon's own overflow (it then closes the connection) carries no "source":
 * a program tells it from the library's by that. */
static void test_daemon_overflow_event_has_no_client_source(void **state) {
	Fixture *f = *state;
	HitlEvent ev = HITL_EVENT_INIT;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"method\":\"watch.overflow\",\"params\":{}}\n");
	close(f->server);
	f->server = -1;
	assert_int_equal(hitl_watch_next(f->client, 2000, &ev), 1);
	assert_string_equal(ev.method, "watch.overflow");
	assert_null(json_object_object_get(ev.params, "source"));
	hitl_event_clear(&ev);
	assert_int_equal(hitl_watch_next(f->client, 2000, &ev), -ECONNRESET);
}

static void test_late_reply_of_a_timed_out_call_is_skipped(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *res = NULL;

	hitl_client_set_timeout(f->client, 50);
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -ETIMEDOUT);
	assert_false(hitl_client_is_broken(f->client));
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"late\":true}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"mine\":true}}\n");
	hitl_client_set_timeout(f->client, 2000);
	assert_int_equal(hitl_status(f->client, &res, &f->error), 0);
	assert_true(json_object_get_boolean(json_object_object_get(res, "mine")));
}

static void test_reply_with_a_future_id_breaks_the_connection(void **state) {
	Fixture *f = *state;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n");
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EBADMSG);
	assert_true(hitl_client_is_broken(f->client));
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EBADMSG);
}

static void test_reply_that_is_not_json_is_ebadmsg(void **state) {
	Fixture *f = *state;

	server_write(f->server, "HTTP/1.1 400 Bad Request\n");
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EBADMSG);
}

static void test_reply_with_trailing_garbage_is_ebadmsg(void **state) {
	Fixture *f = *state;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} x\n");
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EBADMSG);
}

static void test_reply_with_invalid_utf8_is_ebadmsg(void **state) {
	Fixture *f = *state;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"s\":\"\xff\xfe\"}}\n");
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EBADMSG);
}

static void test_daemon_closing_the_connection_is_econnreset(void **state) {
	Fixture *f = *state;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"res");
	close(f->server);
	f->server = -1;
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -ECONNRESET);
	assert_true(hitl_client_is_broken(f->client));
	HitlEvent ev = HITL_EVENT_INIT;
	assert_int_equal(hitl_watch_next(f->client, 0, &ev), -ECONNRESET);
}

static void test_writing_to_a_closed_daemon_is_econnreset_not_sigpipe(void **state) {
	Fixture *f = *state;

	close(f->server);
	f->server = -1;
	/* SIGPIPE would kill the test; MSG_NOSIGNAL turns it into an error. */
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -ECONNRESET);
}

static void test_line_longer_than_the_bound_is_emsgsize_and_breaks_the_connection(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *big = malloc(6000);

	hitl_client_set_max_message(f->client, 4096);
	memset(big, 'x', 5999);
	big[5999] = 0;
	server_write(f->server, big);
	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EMSGSIZE);
	assert_true(hitl_client_is_broken(f->client));
}

static void test_line_exactly_at_the_bound_is_accepted(void **state) {
	Fixture *f = *state;
	const char *head = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"pad\":\"", *tail = "\"}}";
	_cleanup_(freep) char *line = malloc(4096 + 2);
	_cleanup_(json_object_putp) json_object *res = NULL;
	size_t pad = 4096 - strlen(head) - strlen(tail);

	hitl_client_set_max_message(f->client, 4096);
	strcpy(line, head);
	memset(line + strlen(head), 'p', pad);
	strcpy(line + strlen(head) + pad, tail);
	assert_int_equal(strlen(line), 4096);
	strcat(line, "\n");
	server_write(f->server, line);
	assert_int_equal(hitl_status(f->client, &res, &f->error), 0);
	assert_int_equal(json_object_get_string_len(json_object_object_get(res, "pad")), (int) pad);
}

/* A child writes a reply of the given size in pieces, slowly: the client must
 * reassemble it, or refuse it when it is over the default 1 MiB bound. */
static pid_t spawn_writer(int fd, size_t pad) {
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		const char *head = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"pad\":\"", *tail = "\"}}\n";
		char *line = malloc(pad + 128);
		size_t len, done = 0;

		strcpy(line, head);
		memset(line + strlen(head), 'p', pad);
		strcpy(line + strlen(head) + pad, tail);
		len = strlen(line);
		while (done < len) {
			size_t chunk = len - done < 100000 ? len - done : 100000;
			ssize_t n = write(fd, line + done, chunk);

			if (n <= 0)
				_exit(0);
			done += (size_t) n;
			usleep(2000);
		}
		_exit(0);
	}
	return pid;
}

static void test_reply_in_many_pieces_is_reassembled(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *res = NULL;
	pid_t pid = spawn_writer(f->server, 900 * 1024);

	assert_int_equal(hitl_status(f->client, &res, &f->error), 0);
	assert_int_equal(json_object_get_string_len(json_object_object_get(res, "pad")), 900 * 1024);
	waitpid(pid, NULL, 0);
}

static void test_default_bound_refuses_a_line_over_one_mib(void **state) {
	Fixture *f = *state;
	pid_t pid = spawn_writer(f->server, HITL_MESSAGE_MAX_DEFAULT);

	assert_int_equal(hitl_status(f->client, NULL, &f->error), -EMSGSIZE);
	hitl_client_free(f->client);
	f->client = NULL;
	close(f->server); /* the child sees EPIPE and stops */
	f->server = -1;
	waitpid(pid, NULL, 0);
}

static void test_request_larger_than_the_bound_is_refused_before_sending(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *params = json_object_new_object();
	_cleanup_(freep) char *text = malloc(8000);
	struct pollfd p = { .fd = f->server, .events = POLLIN };

	hitl_client_set_max_message(f->client, 4096);
	memset(text, 'a', 7999);
	text[7999] = 0;
	json_object_object_add(params, "request_text", json_object_new_string(text));
	assert_int_equal(hitl_request_submit(f->client, params, NULL, &f->error), -EMSGSIZE);
	assert_int_equal(poll(&p, 1, 0), 0); /* nothing was written */
	assert_false(hitl_client_is_broken(f->client));
}

/* ------------------------------------------------------------------ typed methods */

static void test_request_wait_returns_done_and_the_record(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *rec = NULL, *rec2 = NULL, *req = NULL;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"request\":{\"id\":\"r_a\",\"state\":\"completed\"},\"done\":true}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"request\":{\"id\":\"r_a\",\"state\":\"pending\"},\"done\":false}}\n");
	assert_int_equal(hitl_request_wait(f->client, "r_a", 100, &rec, &f->error), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(rec, "state")), "completed");
	assert_int_equal(hitl_request_wait(f->client, "r_a", 100, &rec2, &f->error), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(rec2, "state")), "pending");
	req = server_read_message(f->server);
	assert_int_equal(json_object_get_int(json_object_object_get(json_object_object_get(req, "params"), "timeout_ms")),
	                 100);
}

/* A negative extra time would lift the call's time limit: refused, nothing sent. */
static void test_call_full_with_negative_extra_timeout_is_einval_and_sends_nothing(void **state) {
	Fixture *f = *state;
	struct pollfd p = { .fd = f->server, .events = POLLIN };

	alarm(60); /* the harness's bound: a call without a time limit waits here for ever */
	assert_int_equal(hitl_client_call_full(f->client, "status", NULL, -1, NULL, &f->error), -EINVAL);
	alarm(0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_false(hitl_client_is_broken(f->client));
}

static void test_request_wait_may_take_longer_than_the_call_timeout(void **state) {
	Fixture *f = *state;
	pid_t pid;

	hitl_client_set_timeout(f->client, 50);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(300 * 1000); /* longer than the call timeout, shorter than timeout_ms */
		server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"request\":{\"id\":\"r_a\"},\"done\":false}}\n");
		_exit(0);
	}
	assert_int_equal(hitl_request_wait(f->client, "r_a", 1000, NULL, &f->error), 0);
	waitpid(pid, NULL, 0);
}

static void test_list_filter_becomes_request_list_params(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *req = NULL;
	static const char *const states[] = { "queued", "pending", NULL };
	HitlListFilter filter = { .states = states, .loop_id = "65f1234567890abcdef12345", .owner_uid_set = true,
		                  .owner_uid = 0, .limit = 7, .cursor = "12" };
	json_object *p;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"requests\":[],\"next_cursor\":null}}\n");
	assert_int_equal(hitl_request_list(f->client, &filter, NULL, &f->error), 0);
	req = server_read_message(f->server);
	p = json_object_object_get(req, "params");
	assert_string_equal(json_object_get_string(json_object_object_get(req, "method")), "request.list");
	assert_int_equal(json_object_array_length(json_object_object_get(p, "state")), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(p, "loop_id")), "65f1234567890abcdef12345");
	assert_int_equal(json_object_get_int(json_object_object_get(p, "owner_uid")), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(p, "limit")), 7);
	assert_string_equal(json_object_get_string(json_object_object_get(p, "cursor")), "12");
}

static void test_empty_list_filter_sends_no_params(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *req = NULL;
	HitlListFilter filter = {};

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"requests\":[],\"next_cursor\":null}}\n");
	assert_int_equal(hitl_request_list(f->client, &filter, NULL, &f->error), 0);
	req = server_read_message(f->server);
	assert_int_equal(json_object_object_length(json_object_object_get(req, "params")), 0);
}

static void test_loop_update_leaves_out_unchanged_fields(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *req = NULL;
	json_object *p;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
	assert_int_equal(hitl_loop_update(f->client, "65f1234567890abcdef12345", NULL, "new", NULL, NULL, &f->error), 0);
	req = server_read_message(f->server);
	p = json_object_object_get(req, "params");
	assert_string_equal(json_object_get_string(json_object_object_get(req, "method")), "loop.update");
	assert_int_equal(json_object_object_length(p), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(p, "description")), "new");
}

static void test_feedback_and_remove_member_send_their_params(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *fb = json_object_new_object(), *a = NULL, *b = NULL;

	json_object_object_add(fb, "rating", json_object_new_int(5));
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n");
	assert_int_equal(hitl_request_feedback(f->client, "r_a", fb, NULL, &f->error), 0);
	assert_int_equal(hitl_loop_remove_member(f->client, "L", "U", NULL, &f->error), 0);
	a = server_read_message(f->server);
	b = server_read_message(f->server);
	assert_int_equal(json_object_get_int(json_object_object_get(
	                         json_object_object_get(json_object_object_get(a, "params"), "feedback"), "rating")),
	                 5);
	assert_string_equal(json_object_get_string(json_object_object_get(b, "method")), "loop.remove_member");
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(b, "params"), "user_id")),
	                    "U");
}

static void test_workflow_trigger_sends_its_params(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *data = json_object_new_object(), *a = NULL, *b = NULL, *res = NULL;
	json_object *p;

	json_object_object_add(data, "ticket", json_object_new_int(4812));
	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"kind\":\"trigger\",\"id\":\"r_a\"}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n");
	assert_int_equal(hitl_workflow_trigger(f->client, "wf_abc123", data, "job-7", &res, &f->error), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(res, "id")), "r_a");
	assert_int_equal(hitl_workflow_trigger(f->client, "wf_abc123", NULL, NULL, NULL, &f->error), 0);
	assert_int_equal(hitl_workflow_trigger(f->client, NULL, NULL, NULL, NULL, &f->error), -EINVAL);
	a = server_read_message(f->server);
	b = server_read_message(f->server);
	assert_string_equal(json_object_get_string(json_object_object_get(a, "method")), "workflow.trigger");
	p = json_object_object_get(a, "params");
	assert_int_equal(json_object_object_length(p), 3);
	assert_string_equal(json_object_get_string(json_object_object_get(p, "workflow_id")), "wf_abc123");
	assert_string_equal(json_object_get_string(json_object_object_get(p, "client_ref")), "job-7");
	assert_int_equal(json_object_get_int(json_object_object_get(json_object_object_get(p, "data"), "ticket")), 4812);
	assert_int_equal(json_object_object_length(json_object_object_get(b, "params")), 1);
}

static void test_usage_filter_becomes_usage_params(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *a = NULL, *b = NULL, *c = NULL;
	HitlUsageFilter by_hour = { .since = "7d", .by = "hour" }, seconds = { .since_seconds = 5400 },
	                both = { .since = "1h", .since_seconds = 3600 };
	json_object *p;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n");
	assert_int_equal(hitl_usage(f->client, &by_hour, NULL, &f->error), 0);
	assert_int_equal(hitl_usage(f->client, &seconds, NULL, &f->error), 0);
	assert_int_equal(hitl_usage(f->client, NULL, NULL, &f->error), 0);
	/* Two forms of since at once: refused here, nothing sent. */
	assert_int_equal(hitl_usage(f->client, &both, NULL, &f->error), -EINVAL);
	a = server_read_message(f->server);
	b = server_read_message(f->server);
	c = server_read_message(f->server);
	assert_string_equal(json_object_get_string(json_object_object_get(a, "method")), "usage");
	p = json_object_object_get(a, "params");
	assert_int_equal(json_object_object_length(p), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(p, "since")), "7d");
	assert_string_equal(json_object_get_string(json_object_object_get(p, "by")), "hour");
	p = json_object_object_get(b, "params");
	assert_int_equal(json_object_object_length(p), 1);
	assert_true(json_object_is_type(json_object_object_get(p, "since"), json_type_int));
	assert_int_equal(json_object_get_int(json_object_object_get(p, "since")), 5400);
	assert_int_equal(json_object_object_length(json_object_object_get(c, "params")), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(c, "id")), 3);
}

static void test_metrics_and_key_rotate_call_their_methods_and_return_the_result(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *a = NULL, *b = NULL, *metrics = NULL;

	server_write(f->server, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content_type\":\"text/plain\","
	                        "\"text\":\"hitld_budget_limit 100\\n\"}}\n"
	                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32002,"
	                        "\"message\":\"This method is for administrators only.\"}}\n");
	assert_int_equal(hitl_metrics(f->client, &metrics, &f->error), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(metrics, "text")), "hitld_budget_limit 100\n");
	assert_int_equal(hitl_key_rotate(f->client, NULL, &f->error), -EREMOTEIO);
	assert_int_equal(f->error.code, HITL_ERROR_PERMISSION);
	a = server_read_message(f->server);
	b = server_read_message(f->server);
	assert_string_equal(json_object_get_string(json_object_object_get(a, "method")), "metrics");
	assert_string_equal(json_object_get_string(json_object_object_get(b, "method")), "key.rotate");
}

/* ------------------------------------------------------------------ helpers */

static void test_time_parse_reads_protocol_times_and_refuses_others(void **state) {
	time_t t;

	assert_int_equal(hitl_time_parse("2026-11-28T14:00:00Z", &t), 0);
	assert_int_equal(t, 1795874400);
	assert_int_equal(hitl_time_parse("2026-11-28T14:00:00.123Z", &t), 0);
	assert_int_equal(t, 1795874400);
	assert_int_equal(hitl_time_parse("2026-11-28T14:00:00+00:00", &t), 0);
	assert_int_equal(hitl_time_parse("2026-11-28 14:00:00Z", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-11-28T14:00:00", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-02-31T14:00:00Z", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-11-28T24:00:00Z", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-11-28T14:00:00+02:00", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("", &t), -EINVAL);
}

/* RFC 3339 §5.7: second 60 only at the end of a month (23:59:60 UTC on its last
 * day), where a leap second may be inserted. POSIX time has no leap seconds: it
 * reads as the first second of the next day. ":60" anywhere else is refused. */
static void test_time_parse_reads_a_leap_second_as_the_next_day_and_refuses_other_60s(void **state) {
	time_t t;

	assert_int_equal(hitl_time_parse("2016-12-31T23:59:60Z", &t), 0);
	assert_int_equal(t, 1483228800); /* 2017-01-01T00:00:00Z */
	assert_int_equal(hitl_time_parse("2015-06-30T23:59:60.5+00:00", &t), 0);
	assert_int_equal(t, 1435708800); /* 2015-07-01T00:00:00Z */
	assert_int_equal(hitl_time_parse("2024-02-29T23:59:60Z", &t), 0);
	assert_int_equal(t, 1709251200); /* 2024-03-01T00:00:00Z */
	assert_int_equal(hitl_time_parse("2026-11-28T14:00:60Z", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-12-31T23:58:60Z", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-12-31T22:59:60Z", &t), -EINVAL);
	assert_int_equal(hitl_time_parse("2026-11-28T23:59:60Z", &t), -EINVAL); /* not a month's last day */
	assert_int_equal(hitl_time_parse("2023-02-28T23:59:59Z", &t), 0);
	assert_int_equal(hitl_time_parse("2024-02-28T23:59:60Z", &t), -EINVAL); /* 2024 is a leap year */
	assert_int_equal(hitl_time_parse("2026-11-28T14:00:61Z", &t), -EINVAL);
}

static void test_duration_parse_accepts_units_and_refuses_garbage(void **state) {
	uint64_t s;

	assert_int_equal(hitl_duration_parse("900", &s), 0);
	assert_int_equal(s, 900);
	assert_int_equal(hitl_duration_parse("15m", &s), 0);
	assert_int_equal(s, 900);
	assert_int_equal(hitl_duration_parse("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(hitl_duration_parse("2h", &s), 0);
	assert_int_equal(s, 7200);
	assert_int_equal(hitl_duration_parse("1d", &s), 0);
	assert_int_equal(s, 86400);
	assert_int_equal(hitl_duration_parse("1h30m", &s), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(hitl_duration_parse("0", &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(hitl_duration_parse("", &s), -EINVAL);
	assert_int_equal(hitl_duration_parse("m", &s), -EINVAL);
	assert_int_equal(hitl_duration_parse("15x", &s), -EINVAL);
	assert_int_equal(hitl_duration_parse("1h30", &s), -EINVAL);
	assert_int_equal(hitl_duration_parse("-5m", &s), -EINVAL);
	assert_int_equal(hitl_duration_parse("1.5h", &s), -EINVAL);
	assert_int_equal(hitl_duration_parse("99999999999999999999", &s), -ERANGE);
	assert_int_equal(hitl_duration_parse("40000d", &s), -ERANGE);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_path_prefers_explicit_then_env_then_default),
		T(test_a_call_failing_otherwise_leaves_no_earlier_error),
		T(test_watch_next_frees_what_the_event_held),
		T(test_pending_says_what_poll_cannot_see),
		cmocka_unit_test(test_instance_socket_path_is_built_and_bad_names_are_refused),
		cmocka_unit_test(test_connect_to_a_missing_socket_is_enoent),
		cmocka_unit_test(test_connect_to_a_socket_nobody_listens_on_is_econnrefused),
		cmocka_unit_test(test_connect_with_a_path_too_long_is_enametoolong),
		cmocka_unit_test(test_connect_to_a_full_backlog_gives_up_with_etimedout),
		cmocka_unit_test(test_connect_follows_hitld_socket_env_and_calls_over_a_real_socket),
		cmocka_unit_test(test_new_from_fd_without_ret_is_einval_and_closes_the_fd),
		T(test_call_sends_one_jsonrpc_line_with_increasing_ids),
		T(test_slash_is_not_escaped_on_the_wire),
		T(test_call_returns_the_result_and_a_null_result_as_null),
		T(test_rpc_error_fills_code_message_and_data),
		cmocka_unit_test(test_error_code_names_follow_the_protocol),
		T(test_error_with_id_null_answers_the_call_in_progress),
		T(test_notifications_during_a_call_are_kept_for_watch_next),
		T(test_watch_sends_ids_and_reads_events_in_order),
		T(test_too_many_notifications_during_a_call_become_one_overflow_event),
		T(test_daemon_overflow_event_has_no_client_source),
		T(test_late_reply_of_a_timed_out_call_is_skipped),
		T(test_reply_with_a_future_id_breaks_the_connection),
		T(test_reply_that_is_not_json_is_ebadmsg),
		T(test_reply_with_trailing_garbage_is_ebadmsg),
		T(test_reply_with_invalid_utf8_is_ebadmsg),
		T(test_daemon_closing_the_connection_is_econnreset),
		T(test_writing_to_a_closed_daemon_is_econnreset_not_sigpipe),
		T(test_line_longer_than_the_bound_is_emsgsize_and_breaks_the_connection),
		T(test_line_exactly_at_the_bound_is_accepted),
		T(test_reply_in_many_pieces_is_reassembled),
		T(test_default_bound_refuses_a_line_over_one_mib),
		T(test_request_larger_than_the_bound_is_refused_before_sending),
		T(test_request_wait_returns_done_and_the_record),
		T(test_call_full_with_negative_extra_timeout_is_einval_and_sends_nothing),
		T(test_request_wait_may_take_longer_than_the_call_timeout),
		T(test_list_filter_becomes_request_list_params),
		T(test_empty_list_filter_sends_no_params),
		T(test_loop_update_leaves_out_unchanged_fields),
		T(test_feedback_and_remove_member_send_their_params),
		T(test_workflow_trigger_sends_its_params),
		T(test_usage_filter_becomes_usage_params),
		T(test_metrics_and_key_rotate_call_their_methods_and_return_the_result),
		cmocka_unit_test(test_time_parse_reads_protocol_times_and_refuses_others),
		cmocka_unit_test(test_time_parse_reads_a_leap_second_as_the_next_day_and_refuses_other_60s),
		cmocka_unit_test(test_duration_parse_accepts_units_and_refuses_garbage),
	};

	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
