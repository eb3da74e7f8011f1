/* The HITL.sh client for real: ApiClient on curl multi inside an sd-event
 * loop, against a tiny HTTP server on 127.0.0.1 running in a thread of this
 * process (a C11 thread: <pthread.h> would pull in <sched.h>, which daemon/sched.h
 * shadows) that serves canned responses, resets, hangs and oversize bodies,
 * and records what it was sent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <threads.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "api.h"
#include "secret.h"
#include "cleanup.h"
#include "log.h"

#define KEY_A "hitl_test_0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY_B "hitl_live_fedcba9876543210fedcba9876543210fedcba9876543210"
#define REQ_ID "65f1234567890abcdef12348"
#define LOOP_ID "65f1234567890abcdef12345"
#define LOOP_WAIT_USEC (10 * USEC_PER_SEC)

/* ---- the loopback server ---- */

typedef enum ServeMode {
	SERVE_RESPOND,   /* send response, then stream_bytes of filler, then close */
	SERVE_RESET,     /* read the request, then reset the connection */
	SERVE_HANG,      /* read the request, then say nothing until the client leaves */
} ServeMode;

typedef struct Server {
	int listen_fd, stop_fd;
	uint16_t port;
	thrd_t thread;
	mtx_t lock;

	/* Set by the test before a call. */
	ServeMode mode;
	char *response;
	size_t stream_bytes;

	/* Recorded from the last request. */
	unsigned n_requests;
	char request_line[512];
	char authorization[640];
	char accept[128];
	char content_type[128];
	char user_agent[128];
	char body[8192];
} Server;

static bool wait_readable(int fd, int stop_fd, int timeout_ms) {
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };

	if (poll(p, 2, timeout_ms) <= 0)
		return false;
	return !(p[1].revents & POLLIN);
}

static void header_value(const char *head, const char *name, char *out, size_t out_size) {
	size_t n = strlen(name);

	out[0] = '\0';
	for (const char *p = head; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *end = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, out_size, "%.*s", (int) (end ? end - v : (ptrdiff_t) strlen(v)), v);
			return;
		}
}

/* Reads one request (head + Content-Length body) and records it. */
static bool server_read_request(Server *s, int conn) {
	char buf[16384];
	size_t len = 0;
	char *head_end = NULL;
	char content_length[32];
	size_t body_len;

	while (!head_end) {
		ssize_t k;

		if (len + 1 >= sizeof(buf) || !wait_readable(conn, s->stop_fd, 5000))
			return false;
		k = recv(conn, buf + len, sizeof(buf) - 1 - len, 0);
		if (k <= 0)
			return false;
		len += (size_t) k;
		buf[len] = '\0';
		head_end = strstr(buf, "\r\n\r\n");
	}
	*head_end = '\0';
	header_value(strstr(buf, "\r\n") + 2, "Content-Length", content_length, sizeof(content_length));
	body_len = (size_t) strtoul(content_length, NULL, 10);
	while ((size_t) (buf + len - (head_end + 4)) < body_len) {
		ssize_t k;

		if (len + 1 >= sizeof(buf) || !wait_readable(conn, s->stop_fd, 5000))
			return false;
		k = recv(conn, buf + len, sizeof(buf) - 1 - len, 0);
		if (k <= 0)
			return false;
		len += (size_t) k;
		buf[len] = '\0';
	}

	mtx_lock(&s->lock);
	s->n_requests++;
	snprintf(s->request_line, sizeof(s->request_line), "%.*s",
	         (int) (strstr(buf, "\r\n") - buf), buf);
	header_value(strstr(buf, "\r\n") + 2, "Authorization", s->authorization, sizeof(s->authorization));
	header_value(strstr(buf, "\r\n") + 2, "Accept", s->accept, sizeof(s->accept));
	header_value(strstr(buf, "\r\n") + 2, "Content-Type", s->content_type, sizeof(s->content_type));
	header_value(strstr(buf, "\r\n") + 2, "User-Agent", s->user_agent, sizeof(s->user_agent));
	snprintf(s->body, sizeof(s->body), "%.*s", (int) body_len, head_end + 4);
	mtx_unlock(&s->lock);
	return true;
}

static void send_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		p += k;
		n -= (size_t) k;
	}
}

static int server_main(void *userdata) {
	Server *s = userdata;

	for (;;) {
		_cleanup_(closep) int conn = -EBADF;
		ServeMode mode;
		_cleanup_(freep) char *response = NULL;
		size_t stream_bytes;

		if (!wait_readable(s->listen_fd, s->stop_fd, -1))
			break;
		conn = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		if (!server_read_request(s, conn))
			continue;

		mtx_lock(&s->lock);
		mode = s->mode;
		response = s->response ? strdup(s->response) : NULL;
		stream_bytes = s->stream_bytes;
		mtx_unlock(&s->lock);

		switch (mode) {
		case SERVE_RESPOND:
			if (response)
				send_all(conn, response, strlen(response));
			if (stream_bytes > 0) {
				static char filler[65536];

				memset(filler, 'x', sizeof(filler));
				for (size_t sent = 0; sent < stream_bytes; sent += sizeof(filler))
					send_all(conn, filler, stream_bytes - sent < sizeof(filler) ? stream_bytes - sent : sizeof(filler));
			}
			(void) shutdown(conn, SHUT_WR);
			/* Let the client read everything before the socket goes. */
			(void) wait_readable(conn, s->stop_fd, 5000);
			break;
		case SERVE_RESET: {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };
			(void) setsockopt(conn, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			break;
		}
		case SERVE_HANG:
			/* Returns when the client gives up (EOF) or the test ends. */
			(void) wait_readable(conn, s->stop_fd, 20000);
			break;
		}
	}
	return 0;
}

static void server_start(Server *s) {
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	*s = (Server) { .listen_fd = -EBADF, .stop_fd = -EBADF };
	assert_int_equal(mtx_init(&s->lock, mtx_plain), thrd_success);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->listen_fd >= 0);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(listen(s->listen_fd, 64), 0);
	assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *) &a, &alen), 0);
	s->port = ntohs(a.sin_port);
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(s->stop_fd >= 0);
	assert_int_equal(thrd_create(&s->thread, server_main, s), thrd_success);
}

static void server_stop(Server *s) {
	uint64_t one = 1;

	assert_int_equal(write(s->stop_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
	thrd_join(s->thread, NULL);
	close(s->listen_fd);
	close(s->stop_fd);
	free(s->response);
	mtx_destroy(&s->lock);
}

static void server_set(Server *s, ServeMode mode, const char *response, size_t stream_bytes) {
	mtx_lock(&s->lock);
	s->mode = mode;
	free(s->response);
	s->response = response ? strdup(response) : NULL;
	s->stream_bytes = stream_bytes;
	mtx_unlock(&s->lock);
}

/* A canned response: head is the status line and headers (each ending in
 * CRLF), body goes after a correct Content-Length. */
static void server_set_response(Server *s, const char *head, const char *body) {
	_cleanup_(freep) char *response = NULL;

	assert_true(asprintf(&response, "%sContent-Length: %zu\r\n\r\n%s", head, strlen(body), body) > 0);
	server_set(s, SERVE_RESPOND, response, 0);
}

/* Copies a recorded field under the lock. */
static void server_get(Server *s, const char *field, char *out, size_t out_size) {
	mtx_lock(&s->lock);
	snprintf(out, out_size, "%s", field);
	mtx_unlock(&s->lock);
}

static unsigned server_requests(Server *s) {
	unsigned n;

	mtx_lock(&s->lock);
	n = s->n_requests;
	mtx_unlock(&s->lock);
	return n;
}

/* ---- the client side ---- */

typedef struct Fixture {
	Server server;
	sd_event *event;
	ApiClient *api;
} Fixture;

/* What one callback saw, copied out (the ApiResult dies with the callback). */
typedef struct Outcome {
	unsigned calls;
	ApiResult res;
	char msg[256];
	char error_text[CURL_ERROR_SIZE];
	char data[1024];
	bool had_root;
} Outcome;

static void on_done(ApiClient *c, const ApiResult *res, void *userdata) {
	Outcome *o = userdata;

	o->calls++;
	o->res = *res;
	o->res.root = NULL;
	o->res.data = NULL;
	o->res.msg = NULL;
	o->res.error_text = NULL;
	o->had_root = res->root != NULL;
	snprintf(o->msg, sizeof(o->msg), "%s", strna(res->msg));
	snprintf(o->error_text, sizeof(o->error_text), "%s", strna(res->error_text));
	snprintf(o->data, sizeof(o->data), "%s",
	         res->data ? json_object_to_json_string_ext(res->data, JSON_C_TO_STRING_PLAIN) : "n/a");
}

/* Runs the loop until *counter reaches target or wait_usec passes (then
 * until the time is up, to catch callbacks that must not come). Returns
 * whether the target was reached. */
static bool run_until(sd_event *e, const unsigned *counter, unsigned target, usec_t wait_usec) {
	usec_t deadline = now_monotonic() + wait_usec;

	while (!counter || *counter < target) {
		usec_t now = now_monotonic();

		if (now >= deadline)
			return counter == NULL;
		assert_true(sd_event_run(e, deadline - now) >= 0);
	}
	return true;
}

static void run_for(sd_event *e, usec_t usec) {
	(void) run_until(e, NULL, 0, usec);
}

/* A client with another timeout (or after api_free). */
static void fixture_new_client(Fixture *f, unsigned timeout_s) {
	char url[64];
	ApiConfig config = { .base_url = url, .timeout_s = timeout_s };

	f->api = api_free(f->api);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1", f->server.port);
	assert_int_equal(api_new(f->event, &config, &f->api), 0);
	assert_int_equal(api_set_key(f->api, KEY_A), 0);
}

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof(Fixture));

	assert_non_null(f);
	server_start(&f->server);
	assert_int_equal(sd_event_new(&f->event), 0);
	fixture_new_client(f, 10);
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	api_free(f->api);
	sd_event_unref(f->event);
	server_stop(&f->server);
	free(f);
	return 0;
}

/* Waits for the one callback of a call just started. */
static void wait_done(Fixture *f, Outcome *o) {
	assert_true(run_until(f->event, &o->calls, 1, LOOP_WAIT_USEC));
	assert_int_equal(o->calls, 1);
	assert_int_equal(api_in_flight(f->api), 0);
}

/* Starts one call with api_call() and waits for its callback. */
static void call_and_wait(Fixture *f, const char *method, const char *path, json_object *body,
                          Outcome *o) {
	*o = (Outcome) {};
	assert_int_equal(api_call(f->api, method, path, body, on_done, o, NULL), 0);
	assert_int_equal(api_in_flight(f->api), 1);
	wait_done(f, o);
}

static const char ok_head[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: application/json\r\n"
	"Date: Mon, 15 Jan 2024 10:41:00 GMT\r\n"
	"X-RateLimit-Limit: 100\r\n"
	"X-RateLimit-Remaining: 99\r\n"
	"X-RateLimit-Reset: 1705316400\r\n";
static const char ok_body[] =
	"{\"error\":false,\"msg\":\"API key is valid\",\"data\":{\"user_id\":\"65f1234567890abcdef12346\"}}\n";

static void test_api_success_reports_status_envelope_and_rate_headers(void **state) {
	Fixture *f = *state;
	Outcome o = {};
	char line[512], accept[128], ua[128];
	usec_t before = now_realtime();

	server_set_response(&f->server, ok_head, ok_body);
	assert_int_equal(api_test_key(f->api, on_done, &o, NULL), 0);
	wait_done(f, &o);

	assert_int_equal(o.calls, 1);
	assert_int_equal(o.res.http_status, 200);
	assert_int_equal(o.res.curl_code, 0);
	assert_false(o.res.maybe_sent);
	assert_false(o.res.api_error);
	assert_false(o.res.body_invalid);
	assert_true(o.had_root);
	assert_string_equal(o.msg, "API key is valid");
	assert_string_equal(o.data, "{\"user_id\":\"65f1234567890abcdef12346\"}");
	assert_true(o.res.rate.has_limit && o.res.rate.has_remaining && o.res.rate.has_reset);
	assert_int_equal(o.res.rate.limit, 100);
	assert_int_equal(o.res.rate.remaining, 99);
	assert_int_equal(o.res.rate.reset_epoch, 1705316400);
	assert_true(o.res.rate.has_date);
	assert_int_equal(o.res.rate.date_epoch, 1705315260);
	assert_false(o.res.rate.has_retry_after);
	assert_true(o.res.started_at >= before && o.res.finished_at >= o.res.started_at);

	server_get(&f->server, f->server.request_line, line, sizeof(line));
	server_get(&f->server, f->server.accept, accept, sizeof(accept));
	server_get(&f->server, f->server.user_agent, ua, sizeof(ua));
	assert_string_equal(line, "GET /v1/test HTTP/1.1");
	assert_string_equal(accept, "application/json");
	assert_string_equal(ua, "hitld/" HITLD_VERSION);
}

static void test_api_429_reports_rate_headers_and_api_error(void **state) {
	Fixture *f = *state;
	Outcome o;

	server_set_response(&f->server,
	                    "HTTP/1.1 429 Too Many Requests\r\n"
	                    "Date: Mon, 15 Jan 2024 10:41:00 GMT\r\n"
	                    "x-ratelimit-limit: 100\r\n"
	                    "x-ratelimit-remaining: 0\r\n"
	                    "x-ratelimit-reset: 1705316400\r\n"
	                    "Retry-After: 1140\r\n",
	                    "{\"error\":true,\"msg\":\"API rate limit exceeded\","
	                    "\"data\":{\"usage_count\":100,\"usage_limit\":100,\"remaining\":0}}\n");
	call_and_wait(f, "GET", "/api/requests?status=pending&limit=100", NULL, &o);

	assert_int_equal(o.res.http_status, 429);
	assert_int_equal(o.res.curl_code, 0);
	assert_false(o.res.maybe_sent);
	assert_true(o.res.api_error);
	assert_string_equal(o.msg, "API rate limit exceeded");
	assert_true(o.res.rate.has_remaining);
	assert_int_equal(o.res.rate.remaining, 0);
	assert_int_equal(o.res.rate.reset_epoch, 1705316400);
	assert_true(o.res.rate.has_retry_after);
	assert_int_equal(o.res.rate.retry_after_s, 1140);
}

static void test_api_envelope_error_is_reported_with_its_data(void **state) {
	Fixture *f = *state;
	Outcome o;

	server_set_response(&f->server, "HTTP/1.1 400 Bad Request\r\n",
	                    "{\"error\":true,\"msg\":\"Validation failed\","
	                    "\"data\":\"timeout_seconds is required for time-sensitive requests\"}");
	call_and_wait(f, "POST", "/api/loops/" LOOP_ID "/requests", NULL, &o);

	assert_int_equal(o.res.http_status, 400);
	assert_int_equal(o.res.curl_code, 0);
	assert_true(o.res.api_error);
	assert_false(o.res.body_invalid);
	assert_string_equal(o.msg, "Validation failed");
	assert_string_equal(o.data, "\"timeout_seconds is required for time-sensitive requests\"");
}

static void test_api_envelope_error_true_on_200_is_an_api_error(void **state) {
	Fixture *f = *state;
	Outcome o;

	server_set_response(&f->server, "HTTP/1.1 200 OK\r\n", "{\"error\":true,\"msg\":\"odd\",\"data\":1}");
	call_and_wait(f, "GET", "/test", NULL, &o);

	assert_int_equal(o.res.http_status, 200);
	assert_true(o.res.api_error);
	assert_string_equal(o.msg, "odd");
}

static void test_api_non_json_body_is_reported_invalid(void **state) {
	Fixture *f = *state;
	Outcome o;

	server_set_response(&f->server, "HTTP/1.1 502 Bad Gateway\r\n", "<html>Bad Gateway</html>");
	call_and_wait(f, "GET", "/test", NULL, &o);

	assert_int_equal(o.res.http_status, 502);
	assert_int_equal(o.res.curl_code, 0);
	assert_true(o.res.api_error);
	assert_true(o.res.body_invalid);
	assert_false(o.had_root);
	assert_string_equal(o.msg, "n/a");
}

static void test_api_connection_refused_was_not_sent(void **state) {
	Fixture *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[64];
	ApiConfig config = { .base_url = url, .timeout_s = 5 };
	_cleanup_(closep) int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	Outcome o = {};

	/* A port that is bound but not listening refuses connections. */
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1", ntohs(a.sin_port));
	f->api = api_free(f->api);
	assert_int_equal(api_new(f->event, &config, &f->api), 0);
	assert_int_equal(api_set_key(f->api, KEY_A), 0);

	assert_int_equal(api_test_key(f->api, on_done, &o, NULL), 0);
	wait_done(f, &o);

	assert_int_equal(o.calls, 1);
	assert_int_equal(o.res.http_status, 0);
	assert_int_equal(o.res.curl_code, CURLE_COULDNT_CONNECT);
	assert_false(o.res.maybe_sent);
	assert_string_not_equal(o.error_text, "n/a");
	assert_false(o.had_root);
}

/* The observer (the usage history's hook): sending() once, before the
 * request leaves, with the call's tag; ended() once, before done(), with
 * sending()'s cookie — or 0 for a call that never got as far as sending. */
typedef struct Observed {
	unsigned sending, ended;
	UsageTag tag;
	uint64_t cookie;
	long status;
	unsigned done_seen_at_end;
	Outcome *o;
} Observed;

static uint64_t observe_sending(ApiClient *c, const UsageTag *tag, void *userdata) {
	Observed *ob = userdata;

	ob->sending++;
	ob->tag = *tag;
	return 4711;
}

static void observe_ended(ApiClient *c, const UsageTag *tag, uint64_t cookie, const ApiResult *res, void *userdata) {
	Observed *ob = userdata;

	ob->ended++;
	ob->tag = *tag;
	ob->cookie = cookie;
	ob->status = res->http_status;
	ob->done_seen_at_end = ob->o->calls;
}

static void test_api_observer_sees_every_call_with_its_tag(void **state) {
	Fixture *f = *state;
	UsageTag tag = { .kind = USAGE_CREATE, .uid = 1000, .loop_id = LOOP_ID };
	Outcome o = {};
	Observed ob = { .o = &o };
	ApiCall *call;

	api_set_observer(f->api, observe_sending, observe_ended, &ob);
	server_set_response(&f->server, ok_head, ok_body);
	assert_int_equal(api_call(f->api, "POST", "/api/loops/" LOOP_ID "/requests", NULL, on_done, &o, &call), 0);
	api_call_tag(call, &tag);
	wait_done(f, &o);
	assert_int_equal(ob.sending, 1);
	assert_int_equal(ob.ended, 1);
	assert_int_equal(ob.done_seen_at_end, 0);   /* before done() */
	assert_int_equal(ob.cookie, 4711);
	assert_int_equal(ob.status, 200);
	assert_int_equal(ob.tag.kind, USAGE_CREATE);
	assert_int_equal(ob.tag.uid, 1000);
	assert_string_equal(ob.tag.loop_id, LOOP_ID);

	/* untagged: a shared poll */
	ob = (Observed) { .o = &o };
	o = (Outcome) {};
	assert_int_equal(api_test_key(f->api, on_done, &o, NULL), 0);
	wait_done(f, &o);
	assert_int_equal(ob.tag.kind, USAGE_POLL);
	assert_int_equal(ob.tag.uid, USAGE_UID_SHARED);

	/* cancelled in flight: ended as no reply, no done() */
	ob = (Observed) { .o = &o };
	o = (Outcome) {};
	server_set(&f->server, SERVE_HANG, NULL, 0);
	assert_int_equal(api_test_key(f->api, on_done, &o, &call), 0);
	assert_true(run_until(f->event, &ob.sending, 1, LOOP_WAIT_USEC));
	api_call_cancel(call);
	assert_int_equal(ob.sending, 1);
	assert_int_equal(ob.ended, 1);
	assert_int_equal(ob.cookie, 4711);
	assert_int_equal(ob.status, 0);
	assert_int_equal(o.calls, 0);
}

static void test_api_observer_hears_of_an_unsent_call_with_cookie_0(void **state) {
	Fixture *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[64];
	ApiConfig config = { .base_url = url, .timeout_s = 5 };
	_cleanup_(closep) int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	Outcome o = {};
	Observed ob = { .o = &o };

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1", ntohs(a.sin_port));
	f->api = api_free(f->api);
	assert_int_equal(api_new(f->event, &config, &f->api), 0);
	assert_int_equal(api_set_key(f->api, KEY_A), 0);
	api_set_observer(f->api, observe_sending, observe_ended, &ob);

	assert_int_equal(api_test_key(f->api, on_done, &o, NULL), 0);
	wait_done(f, &o);
	assert_int_equal(ob.sending, 0);
	assert_int_equal(ob.ended, 1);
	assert_int_equal(ob.cookie, 0);
	assert_int_equal(ob.status, 0);
}

static void test_api_reset_after_request_read_may_have_been_sent(void **state) {
	Fixture *f = *state;
	Outcome o;

	server_set(&f->server, SERVE_RESET, NULL, 0);
	call_and_wait(f, "POST", "/api/loops/" LOOP_ID "/requests", NULL, &o);

	assert_int_equal(server_requests(&f->server), 1);
	assert_int_equal(o.res.http_status, 0);
	assert_true(o.res.curl_code == CURLE_RECV_ERROR || o.res.curl_code == CURLE_GOT_NOTHING);
	assert_true(o.res.maybe_sent);
	assert_false(o.had_root);
}

static void test_api_response_cut_short_is_a_transport_error_that_keeps_rate_headers(void **state) {
	Fixture *f = *state;
	Outcome o;

	/* A 201 whose body never arrives: created, but the id is lost. */
	server_set(&f->server, SERVE_RESPOND,
	           "HTTP/1.1 201 Created\r\nX-RateLimit-Remaining: 5\r\nContent-Length: 100\r\n\r\n"
	           "{\"error\":false,", 0);
	call_and_wait(f, "POST", "/api/loops/" LOOP_ID "/requests", NULL, &o);

	assert_int_equal(o.res.curl_code, CURLE_PARTIAL_FILE);
	assert_int_equal(o.res.http_status, 0);
	assert_true(o.res.maybe_sent);
	assert_false(o.had_root);
	assert_true(o.res.rate.has_remaining);
	assert_int_equal(o.res.rate.remaining, 5);
}

static void test_api_hang_past_timeout_may_have_been_sent(void **state) {
	Fixture *f = *state;
	Outcome o;
	usec_t t0;

	fixture_new_client(f, 1);
	server_set(&f->server, SERVE_HANG, NULL, 0);
	t0 = now_monotonic();
	call_and_wait(f, "GET", "/test", NULL, &o);

	assert_int_equal(o.res.curl_code, CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(o.res.http_status, 0);
	assert_true(o.res.maybe_sent);
	assert_true(now_monotonic() - t0 >= 900 * USEC_PER_MSEC);
	assert_true(now_monotonic() - t0 < 5 * USEC_PER_SEC);
}

static void test_api_oversize_body_announced_by_content_length_is_refused(void **state) {
	Fixture *f = *state;
	Outcome o;
	char head[256];

	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n{\"error\":false,\"msg\":\"",
	         API_RESPONSE_BODY_MAX + 1);
	server_set(&f->server, SERVE_RESPOND, head, API_RESPONSE_BODY_MAX);
	call_and_wait(f, "GET", "/api/requests?limit=100", NULL, &o);

	assert_int_equal(o.res.curl_code, CURLE_FILESIZE_EXCEEDED);
	assert_int_equal(o.res.http_status, 0);
	assert_true(o.res.maybe_sent);
	assert_false(o.had_root);
}

static void test_api_oversize_streamed_body_is_cut_off(void **state) {
	Fixture *f = *state;
	Outcome o;

	/* No Content-Length: the body ends when the server closes. */
	server_set(&f->server, SERVE_RESPOND,
	           "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"error\":false,\"msg\":\"",
	           API_RESPONSE_BODY_MAX + 4096);
	call_and_wait(f, "GET", "/api/requests?limit=100", NULL, &o);

	assert_int_equal(o.res.curl_code, CURLE_FILESIZE_EXCEEDED);
	assert_int_equal(o.res.http_status, 0);
	assert_true(o.res.maybe_sent);
	assert_false(o.had_root);
}

static void test_api_body_of_exactly_the_limit_is_accepted(void **state) {
	Fixture *f = *state;
	const char open[] = "{\"error\":false,\"msg\":\"";
	char head[256];
	Outcome o;

	/* open + filler == API_RESPONSE_BODY_MAX bytes, the most we take. */
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s", open);
	server_set(&f->server, SERVE_RESPOND, head, API_RESPONSE_BODY_MAX - (sizeof(open) - 1));
	call_and_wait(f, "GET", "/api/requests?limit=100", NULL, &o);

	/* Read in full (the filler leaves the string open, so not JSON). */
	assert_int_equal(o.res.curl_code, 0);
	assert_int_equal(o.res.http_status, 200);
	assert_true(o.res.body_invalid);
}

static int on_cancel_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	api_call_cancel(userdata);
	return 0;
}

static void test_api_cancelled_call_gets_no_callback(void **state) {
	Fixture *f = *state;
	Outcome o = {};
	ApiCall *call = NULL;

	server_set(&f->server, SERVE_HANG, NULL, 0);
	assert_int_equal(api_test_key(f->api, on_done, &o, &call), 0);
	assert_non_null(call);
	assert_int_equal(sd_event_add_time_relative(f->event, NULL, CLOCK_MONOTONIC, 200 * USEC_PER_MSEC,
	                                            USEC_PER_MSEC, on_cancel_timer, call), 0);
	run_for(f->event, 1500 * USEC_PER_MSEC);

	assert_int_equal(server_requests(&f->server), 1); /* it was under way */
	assert_int_equal(o.calls, 0);
	assert_int_equal(api_in_flight(f->api), 0);
}

static void test_api_free_aborts_calls_in_flight_and_caps_them_at_16(void **state) {
	Fixture *f = *state;
	Outcome o = {};

	server_set(&f->server, SERVE_HANG, NULL, 0);
	for (unsigned i = 0; i < API_MAX_IN_FLIGHT; i++)
		assert_int_equal(api_get_request(f->api, REQ_ID, on_done, &o, NULL), 0);
	assert_int_equal(api_get_request(f->api, REQ_ID, on_done, &o, NULL), -EBUSY);
	assert_int_equal(api_in_flight(f->api), API_MAX_IN_FLIGHT);

	run_for(f->event, 300 * USEC_PER_MSEC);
	assert_int_equal(o.calls, 0);
	assert_int_equal(api_in_flight(f->api), API_MAX_IN_FLIGHT);

	/* Freeing aborts them; the loop then has nothing of theirs left. */
	f->api = api_free(f->api);
	run_for(f->event, 300 * USEC_PER_MSEC);
	assert_int_equal(o.calls, 0);
	fixture_new_client(f, 10);
}

static void test_api_plain_http_only_to_loopback(void **state) {
	static const char *const refused[] = {
		"http://example.com/v1", "http://10.0.0.1/v1", "http://127.0.0.1.example.com/v1",
		"http://localhost.example.com/v1", "http://[::2]/v1", "http://[::ffff:127.0.0.1]/v1",
		"ftp://127.0.0.1/v1", "file:///etc/passwd",
	};
	static const char *const accepted[] = {
		"https://api.hitl.sh/v1", "https://api.hitl.sh/v1/", "HTTPS://api.hitl.sh",
		"http://127.0.0.1:8080/v1", "http://127.8.9.10/v1", "http://localhost:1/v1",
		"http://LOCALHOST/v1", "http://[::1]:8080/v1",
	};
	static const char *const malformed[] = {
		"https://user:secret@api.hitl.sh/v1", "not a url", "https://api.hitl.sh/v1?x=1",
		"https://api.hitl.sh/v1#frag", "",
	};
	Fixture *f = *state;
	ApiClient *c = NULL;

	for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
		ApiConfig config = { .base_url = refused[i] };
		assert_int_equal(api_new(f->event, &config, &c), -EPROTONOSUPPORT);
		assert_null(c);
	}
	for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
		ApiConfig config = { .base_url = malformed[i] };
		assert_int_equal(api_new(f->event, &config, &c), -EINVAL);
		assert_null(c);
	}
	for (size_t i = 0; i < ELEMENTSOF(accepted); i++) {
		ApiConfig config = { .base_url = accepted[i], .ca_file = "/nonexistent/ca.pem" };
		assert_int_equal(api_new(f->event, &config, &c), 0);
		c = api_free(c);
	}
}

static void test_api_sends_the_key_as_bearer_authorization(void **state) {
	Fixture *f = *state;
	char auth[640];
	Outcome o;

	server_set_response(&f->server, ok_head, ok_body);
	call_and_wait(f, "GET", "/test", NULL, &o);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_A);
}

static void test_api_key_rotation_applies_to_the_next_call(void **state) {
	Fixture *f = *state;
	char auth[640];
	Outcome o;

	server_set_response(&f->server, ok_head, ok_body);
	call_and_wait(f, "GET", "/test", NULL, &o);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_A);

	assert_int_equal(api_set_key(f->api, KEY_B), 0);
	call_and_wait(f, "GET", "/test", NULL, &o);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_B);
}

/* The standby key (api.h): sent only by api_test_standby_key() until it is
 * promoted; every reply says which key it was made with (key_serial). */
static void test_api_standby_key_is_tested_then_promoted(void **state) {
	Fixture *f = *state;
	char auth[640];
	unsigned serial;
	Outcome o = {};

	assert_false(api_has_standby_key(f->api));
	assert_int_equal(api_test_standby_key(f->api, on_done, &o, NULL), -ENOKEY);
	assert_int_equal(api_promote_standby_key(f->api), -ENOKEY);
	assert_int_equal(api_set_standby_key(f->api, "bad key"), -EINVAL);
	assert_int_equal(api_set_standby_key(f->api, KEY_B), 0);
	assert_true(api_has_standby_key(f->api));
	serial = api_key_serial(f->api);

	server_set_response(&f->server, ok_head, ok_body);
	/* Ordinary calls still go with the current key. */
	call_and_wait(f, "GET", "/test", NULL, &o);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_A);
	assert_int_equal(o.res.key_serial, serial);

	/* The standby's test goes with the standby, marked as such. */
	o = (Outcome) {};
	assert_int_equal(api_test_standby_key(f->api, on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_B);
	assert_int_equal(o.res.key_serial, API_KEY_SERIAL_STANDBY);

	/* Promoted: the current key now, the standby slot empty, a new serial. */
	assert_int_equal(api_promote_standby_key(f->api), 0);
	assert_false(api_has_standby_key(f->api));
	assert_true(api_has_key(f->api));
	assert_int_not_equal(api_key_serial(f->api), serial);
	call_and_wait(f, "GET", "/test", NULL, &o);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_B);
	assert_int_equal(o.res.key_serial, api_key_serial(f->api));

	/* api_set_key() changes the serial too. */
	serial = api_key_serial(f->api);
	assert_int_equal(api_set_key(f->api, KEY_A), 0);
	assert_int_not_equal(api_key_serial(f->api), serial);
}

static void on_done_chain(ApiClient *c, const ApiResult *res, void *userdata) {
	Outcome *o = userdata;

	/* First callback: rotate the key and start the next call from inside. */
	if (o->calls++ == 0) {
		assert_int_equal(api_set_key(c, KEY_B), 0);
		assert_int_equal(api_test_key(c, on_done_chain, o, NULL), 0);
		return;
	}
	o->res = *res;
}

static void test_api_callback_may_start_the_next_call_with_a_new_key(void **state) {
	Fixture *f = *state;
	Outcome o = {};
	char auth[640];

	server_set_response(&f->server, ok_head, ok_body);
	assert_int_equal(api_test_key(f->api, on_done_chain, &o, NULL), 0);
	assert_true(run_until(f->event, &o.calls, 2, LOOP_WAIT_USEC));
	assert_int_equal(o.calls, 2);
	assert_int_equal(o.res.http_status, 200);
	assert_int_equal(server_requests(&f->server), 2);
	server_get(&f->server, f->server.authorization, auth, sizeof(auth));
	assert_string_equal(auth, "Bearer " KEY_B);
}

static void test_api_refuses_to_call_without_a_key_or_with_a_bad_one(void **state) {
	Fixture *f = *state;
	Outcome o = {};

	assert_int_equal(api_set_key(f->api, "bad key"), -EINVAL);
	assert_int_equal(api_set_key(f->api, "key\r\nX-Injected: 1"), -EINVAL);
	assert_int_equal(api_set_key(f->api, ""), -EINVAL);
	assert_true(api_has_key(f->api)); /* the old key stays */

	/* One rule with secret.c's (secret_key_is_valid): at most SECRET_KEY_MAX
	 * characters. The client once took 512 where loading took 256. */
	char longest[SECRET_KEY_MAX + 2];
	memset(longest, 'k', SECRET_KEY_MAX + 1);
	longest[SECRET_KEY_MAX + 1] = '\0';
	assert_false(secret_key_is_valid(longest));
	assert_int_equal(api_set_key(f->api, longest), -EINVAL);
	longest[SECRET_KEY_MAX] = '\0';
	assert_true(secret_key_is_valid(longest));
	assert_int_equal(api_set_key(f->api, longest), 0);
	assert_int_equal(api_set_key(f->api, KEY_A), 0);

	assert_int_equal(api_set_key(f->api, NULL), 0);
	assert_false(api_has_key(f->api));
	assert_int_equal(api_test_key(f->api, on_done, &o, NULL), -ENOKEY);
	assert_int_equal(api_in_flight(f->api), 0);
}

static void test_api_wrappers_build_paths_and_bodies(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *create = json_tokener_parse(
		"{\"request_text\":\"See https://x/y\",\"context\":{\"hitld_id\":\"r_01\"}}");
	_cleanup_(json_object_putp) json_object *feedback = json_tokener_parse("{\"rating\":5}");
	char line[512], body[8192], ctype[128];
	Outcome o = {};

	server_set_response(&f->server, ok_head, ok_body);

	assert_int_equal(api_create_request(f->api, LOOP_ID, create, on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.request_line, line, sizeof(line));
	server_get(&f->server, f->server.body, body, sizeof(body));
	server_get(&f->server, f->server.content_type, ctype, sizeof(ctype));
	assert_string_equal(line, "POST /v1/api/loops/" LOOP_ID "/requests HTTP/1.1");
	assert_string_equal(body, "{\"request_text\":\"See https://x/y\",\"context\":{\"hitld_id\":\"r_01\"}}");
	assert_string_equal(ctype, "application/json");

	o = (Outcome) {};
	assert_int_equal(api_list_requests(f->api, "pending", 100, 0, NULL, on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.request_line, line, sizeof(line));
	assert_string_equal(line, "GET /v1/api/requests?status=pending&limit=100&offset=0 HTTP/1.1");

	o = (Outcome) {};
	assert_int_equal(api_list_requests(f->api, NULL, 50, 50, "created_at_asc", on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.request_line, line, sizeof(line));
	assert_string_equal(line, "GET /v1/api/requests?limit=50&offset=50&sort=created_at_asc HTTP/1.1");

	o = (Outcome) {};
	assert_int_equal(api_feedback(f->api, REQ_ID, feedback, on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.request_line, line, sizeof(line));
	server_get(&f->server, f->server.body, body, sizeof(body));
	assert_string_equal(line, "POST /v1/api/requests/" REQ_ID "/feedback HTTP/1.1");
	assert_string_equal(body, "{\"feedback\":{\"rating\":5}}");

	o = (Outcome) {};
	assert_int_equal(api_cancel_request(f->api, REQ_ID, on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.request_line, line, sizeof(line));
	server_get(&f->server, f->server.body, body, sizeof(body));
	assert_string_equal(line, "DELETE /v1/api/requests/" REQ_ID " HTTP/1.1");
	assert_string_equal(body, "");

	o = (Outcome) {};
	assert_int_equal(api_loop_call(f->api, "DELETE", LOOP_ID, "/members/" REQ_ID, NULL, on_done, &o, NULL), 0);
	wait_done(f, &o);
	server_get(&f->server, f->server.request_line, line, sizeof(line));
	assert_string_equal(line, "DELETE /v1/api/loops/" LOOP_ID "/members/" REQ_ID " HTTP/1.1");
	assert_int_equal(o.calls, 1);
}

static void test_api_wrappers_refuse_bad_arguments(void **state) {
	Fixture *f = *state;
	_cleanup_(json_object_putp) json_object *obj = json_object_new_object();
	_cleanup_(json_object_putp) json_object *arr = json_object_new_array();
	Outcome o = {};

	assert_int_equal(api_get_request(f->api, "../../api/loops", on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_get_request(f->api, NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_cancel_request(f->api, REQ_ID "0", on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_create_request(f->api, "loop", obj, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_create_request(f->api, LOOP_ID, NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_feedback(f->api, REQ_ID, arr, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_list_requests(f->api, "bogus", 10, 0, NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_list_requests(f->api, NULL, 0, 0, NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_list_requests(f->api, NULL, 101, 0, NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_list_requests(f->api, NULL, 10, 0, "random", on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_loop_call(f->api, "GET", NULL, "/members", NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_loop_call(f->api, "GET", LOOP_ID, "/../../test", NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_loop_call(f->api, "PATCH", LOOP_ID, NULL, NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_call(f->api, "GET", "test", NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_call(f->api, "GET", "/te st", NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_call(f->api, "GET", "/test\r\nX: y", NULL, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_call(f->api, "GET", "/test", obj, on_done, &o, NULL), -EINVAL);
	assert_int_equal(api_in_flight(f->api), 0);
	assert_int_equal(server_requests(&f->server), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_api_success_reports_status_envelope_and_rate_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_429_reports_rate_headers_and_api_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_envelope_error_is_reported_with_its_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_envelope_error_true_on_200_is_an_api_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_non_json_body_is_reported_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_connection_refused_was_not_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_observer_sees_every_call_with_its_tag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_observer_hears_of_an_unsent_call_with_cookie_0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_reset_after_request_read_may_have_been_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_response_cut_short_is_a_transport_error_that_keeps_rate_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_hang_past_timeout_may_have_been_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_oversize_body_announced_by_content_length_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_oversize_streamed_body_is_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_body_of_exactly_the_limit_is_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_cancelled_call_gets_no_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_free_aborts_calls_in_flight_and_caps_them_at_16, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_plain_http_only_to_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_sends_the_key_as_bearer_authorization, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_key_rotation_applies_to_the_next_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_standby_key_is_tested_then_promoted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_callback_may_start_the_next_call_with_a_new_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_refuses_to_call_without_a_key_or_with_a_bad_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_wrappers_build_paths_and_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_wrappers_refuse_bad_arguments, setup, teardown),
	};

	log_set_max_level(LOG_CRIT); /* the refusals log errors on purpose */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
