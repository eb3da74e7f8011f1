/* mcp.c — the MCP server core of `hitlctl mcp` (see mcp.h): stdio framing, the JSON-RPC
 * dispatch and lifecycle, and the event loop that drives waiting tool calls.
 *
 * libhitlclient is synchronous. Quick calls (everything answered from hitld's own state)
 * go over one shared control connection and block for at most CALL_TIMEOUT_MS. A call that
 * waits for a human (ask_human, wait_request) gets a connection of its own on which it
 * `watch`es its request: the descriptor joins the poll(2) set and hitl_watch_next(…, 0)
 * drains what arrived, so the loop keeps serving stdin (pings, cancellations, more calls)
 * while humans think (mcp_wait.c). A lost connection is retried with backoff for
 * --reconnect-timeout; ask_human's submit carries a client_ref, so a submit retried after a
 * lost reply is still one request. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hitlclient.h"
#include "mcp.h"
#include "mcp_server.h"
#include "mcp_tools.h"

#ifndef HITLD_VERSION
#define HITLD_VERSION "0"
#endif

#define MESSAGE_MAX ((size_t) 4 * 1024 * 1024) /* one line on stdin */
#define READ_CHUNK 65536
#define JSON_DEPTH_MAX 64
#define CALLS_DEFAULT 16
#define CALLS_MAX 30 /* hitld allows 32 connections per uid: leave room for the control one */
#define PROGRESS_INTERVAL_DEFAULT_S 10
#define RECONNECT_TIMEOUT_DEFAULT_S 600
#define BATCH_MAX 64

#define INSTRUCTIONS \
	"hitld asks humans (reviewers in HITL.sh loops) for decisions. Use ask_human before anything " \
	"irreversible or that needs a person's judgement, and act on its answer. Requests are durable and " \
	"spend a shared hourly API budget (about 100 per hour for everyone on this machine): ask once, with " \
	"a client_ref if you might retry, and use get_request/wait_request to follow up."

/* ------------------------------------------------------------------ helpers */

int64_t mcp_now_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add(json_object *o, const char *key, json_object *v) {
	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t len) {
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				(void) poll(&pfd, 1, -1);
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Writes one message as one line on stdout. A host that stopped reading ends us. */
void mcp_send_message(json_object *msg) {
	const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_(freep) char *line = NULL;
	size_t len;

	if (!text)
		return;
	len = strlen(text);
	line = malloc(len + 1);
	if (!line)
		return;
	memcpy(line, text, len);
	line[len] = '\n';
	if (write_all(STDOUT_FILENO, line, len + 1) < 0) {
		fprintf(stderr, "hitlctl mcp: stdout closed (%m); exiting\n");
		exit(0);
	}
}

/* A reply goes out at once, or into its batch. */
static void reply(Batch *b, json_object *msg) {
	if (!b)
		return mcp_send_message(msg);
	(void) json_object_array_add(b->replies, json_object_get(msg));
}

Batch *mcp_batch_ref(Batch *b) {
	if (b)
		b->refs++;
	return b;
}

void mcp_batch_unref(Batch *b) {
	if (!b || --b->refs > 0)
		return;
	/* A batch of notifications only is answered with nothing at all. */
	if (!b->discard && json_object_array_length(b->replies) > 0)
		mcp_send_message(b->replies);
	json_object_put(b->replies);
	free(b);
}

void mcp_send_result(Batch *b, json_object *id, json_object *result) {
	_cleanup_(json_object_putp) json_object *msg = json_object_new_object();

	if (!msg || add(msg, "jsonrpc", json_object_new_string("2.0")) < 0 ||
	    json_object_object_add(msg, "id", json_object_get(id)) < 0 ||
	    add(msg, "result", result ? json_object_get(result) : json_object_new_object()) < 0)
		return;
	reply(b, msg);
}

void mcp_send_error(Batch *b, json_object *id, int code, const char *message) {
	_cleanup_(json_object_putp) json_object *msg = json_object_new_object(), *err = json_object_new_object();

	if (!msg || !err || add(err, "code", json_object_new_int(code)) < 0 ||
	    add(err, "message", json_object_new_string(message)) < 0 ||
	    add(msg, "jsonrpc", json_object_new_string("2.0")) < 0 ||
	    json_object_object_add(msg, "id", json_object_get(id)) < 0 ||
	    json_object_object_add(msg, "error", TAKE_PTR(err)) < 0)
		return;
	reply(b, msg);
}

/* JSON-RPC ids: strings or integers; equal when both type and value are. */
static bool id_equal(json_object *a, json_object *b) {
	if (!a || !b || json_object_get_type(a) != json_object_get_type(b))
		return false;
	if (json_object_is_type(a, json_type_string))
		return streq(json_object_get_string(a), json_object_get_string(b));
	if (json_object_is_type(a, json_type_int))
		return json_object_get_int64(a) == json_object_get_int64(b);
	return false;
}

int mcp_connect(Server *s, HitlClient **ret) {
	HitlClient *c = NULL;
	int r = hitl_client_connect(s->path, &c);

	if (r < 0)
		return r;
	hitl_client_set_timeout(c, CALL_TIMEOUT_MS);
	hitl_client_set_max_message(c, CONN_MESSAGE_MAX);
	*ret = c;
	return 0;
}

/* The control connection, fresh if hitld closed the old one (idle timeout, restart):
 * nothing ever arrives unasked on it, so anything readable means it is gone. */
static int control(Server *s, HitlClient **ret) {
	if (s->ctl) {
		struct pollfd p = { .fd = hitl_client_fd(s->ctl), .events = POLLIN };

		if (hitl_client_is_broken(s->ctl) || poll(&p, 1, 0) != 0)
			s->ctl = hitl_client_free(s->ctl);
	}
	if (!s->ctl) {
		int r = mcp_connect(s, &s->ctl);

		if (r < 0)
			return r;
	}
	*ret = s->ctl;
	return 0;
}

/* ------------------------------------------------------------------ tools/call */

static void tools_call(Server *s, json_object *id, json_object *params) {
	_cleanup_(json_object_putp) json_object *res = NULL;
	_cleanup_(freep) char *trouble = NULL;
	McpPrepared prep = {};
	json_object *name, *args = NULL, *meta, *token = NULL;
	const McpTool *t;
	HitlClient *ctl;
	HitlError e = HITL_ERROR_INIT;
	Call *c;
	int r;

	if (!params || !json_object_object_get_ex(params, "name", &name) || !json_object_is_type(name, json_type_string))
		return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_PARAMS, "tools/call needs params.name, a string.");
	t = mcp_tool_find(json_object_get_string(name));
	if (!t) {
		_cleanup_(freep) char *m = NULL;

		if (asprintf(&m, "Unknown tool: %s", json_object_get_string(name)) < 0)
			return;
		return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_PARAMS, m);
	}
	json_object_object_get_ex(params, "arguments", &args);
	if (json_object_object_get_ex(params, "_meta", &meta) && json_object_object_get_ex(meta, "progressToken", &token) &&
	    !json_object_is_type(token, json_type_string) && !json_object_is_type(token, json_type_int))
		token = NULL;
	for (Call *o = s->calls; o; o = o->next)
		if (id_equal(o->rpc_id, id))
			return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_REQUEST, "A call with this id is still in progress.");

	r = mcp_tool_prepare(t, &s->opts, args && !json_object_is_type(args, json_type_null) ? args : NULL, &prep, &trouble);
	if (r == -EINVAL) {
		res = mcp_result_problem(trouble);
		goto answer;
	}
	if (r < 0)
		return mcp_send_error(s->batch, id, HITL_ERROR_INTERNAL, "Out of memory.");

	if (mcp_tool_kind(t) == MCP_TOOL_CALL) {
		r = control(s, &ctl);
		if (r >= 0)
			r = hitl_client_call(ctl, prep.method, prep.params, &res, &e);
		if (r >= 0) {
			json_object *daemon = TAKE_PTR(res);

			res = mcp_result_call(t, daemon, mcp_protocol_has_structured(s->version));
			json_object_put(daemon);
		} else if (r == -EREMOTEIO)
			res = mcp_result_hitld_error(&e);
		else
			res = mcp_result_transport(r, hitl_socket_path(s->path));
		hitl_error_clear(&e);
		goto answer;
	}

	if (s->n_calls >= s->max_calls) {
		_cleanup_(freep) char *m = NULL;

		if (asprintf(&m, "Too many calls waiting at once (%u, this server's --max-calls); let one finish first, "
		             "or use submit_request and check later with get_request.", s->max_calls) < 0)
			goto answer; /* res NULL: out of memory */
		res = mcp_result_problem(m);
		goto answer;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		goto answer;
	*c = (Call) {
		.srv = s, .tool = t, .rpc_id = json_object_get(id), .batch = mcp_batch_ref(s->batch),
		.progress_token = json_object_get(token),
		.submit = TAKE_PTR(prep.params), .submitted = mcp_tool_kind(t) == MCP_TOOL_WAIT,
		.request_id = TAKE_PTR(prep.request_id), .started_ms = mcp_now_ms(), .deadline_ms = -1,
		.failing_since_ms = -1, .last_progress = 0,
	};
	if (mcp_tool_kind(t) == MCP_TOOL_WAIT)
		c->deadline_ms = c->started_ms + prep.wait_ms;
	c->next = s->calls;
	s->calls = c;
	s->n_calls++;
	mcp_prepared_clear(&prep);
	mcp_call_attach(c);
	return;

answer:
	mcp_prepared_clear(&prep);
	if (res)
		mcp_send_result(s->batch, id, res);
	else
		mcp_send_error(s->batch, id, HITL_ERROR_INTERNAL, "Out of memory.");
}

static void cancelled(Server *s, json_object *params) {
	json_object *rid;

	if (!params || !json_object_object_get_ex(params, "requestId", &rid))
		return;
	for (Call *c = s->calls; c; c = c->next)
		if (id_equal(c->rpc_id, rid) && !c->cancelled)
			return mcp_call_cancel(c);
}

/* ------------------------------------------------------------------ dispatch */

static void initialize(Server *s, json_object *id, json_object *params) {
	_cleanup_(json_object_putp) json_object *r = json_object_new_object();
	json_object *v, *caps, *tools, *info;

	if (s->initialized)
		return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_REQUEST, "Already initialized.");
	if (!params || !json_object_object_get_ex(params, "protocolVersion", &v) || !json_object_is_type(v, json_type_string))
		return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_PARAMS, "initialize needs params.protocolVersion, a string.");
	s->version = mcp_protocol_negotiate(json_object_get_string(v));

	caps = json_object_new_object();
	tools = json_object_new_object();
	info = json_object_new_object();
	if (!r || add(r, "protocolVersion", json_object_new_string(s->version)) < 0 || add(r, "capabilities", caps) < 0 ||
	    add(caps, "tools", tools) < 0 || add(tools, "listChanged", json_object_new_boolean(false)) < 0 ||
	    add(r, "serverInfo", info) < 0 || add(info, "name", json_object_new_string("hitld")) < 0 ||
	    add(info, "version", json_object_new_string(HITLD_VERSION)) < 0)
		return mcp_send_error(s->batch, id, HITL_ERROR_INTERNAL, "Out of memory.");
	if (mcp_protocol_has_structured(s->version) &&
	    add(info, "title", json_object_new_string("hitld: ask a human")) < 0)
		return;
	if (mcp_protocol_has_messages(s->version) && add(r, "instructions", json_object_new_string(INSTRUCTIONS)) < 0)
		return;
	s->initialized = true;
	mcp_send_result(s->batch, id, r);
}

static void request(Server *s, const char *method, json_object *id, json_object *params) {
	if (streq(method, "initialize"))
		return initialize(s, id, params);
	if (streq(method, "ping"))
		return mcp_send_result(s->batch, id, NULL);
	if (!s->initialized)
		return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_REQUEST, "Send initialize first.");
	if (streq(method, "tools/list")) {
		_cleanup_(json_object_putp) json_object *list = NULL;

		if (mcp_tools_list(&s->opts, s->version, &list) < 0)
			return mcp_send_error(s->batch, id, HITL_ERROR_INTERNAL, "Out of memory.");
		return mcp_send_result(s->batch, id, list);
	}
	if (streq(method, "tools/call"))
		return tools_call(s, id, params);
	mcp_send_error(s->batch, id, HITL_ERROR_METHOD_NOT_FOUND, "Method not found.");
}

/* One JSON-RPC message (alone on its line, or an element of s->batch). */
static void handle_message(Server *s, json_object *msg) {
	json_object *v, *id = NULL, *params = NULL;
	bool has_id;

	if (!json_object_is_type(msg, json_type_object) || !json_object_object_get_ex(msg, "jsonrpc", &v) ||
	    !json_object_is_type(v, json_type_string) || !streq(json_object_get_string(v), "2.0"))
		return mcp_send_error(s->batch, NULL, HITL_ERROR_INVALID_REQUEST, "Not a JSON-RPC 2.0 message.");

	has_id = json_object_object_get_ex(msg, "id", &id);
	if (!json_object_object_get_ex(msg, "method", &v)) {
		/* A response: we send no requests, so there is nothing to match it with. */
		if (!has_id)
			mcp_send_error(s->batch, NULL, HITL_ERROR_INVALID_REQUEST, "Neither a request nor a response.");
		return;
	}
	if (!json_object_is_type(v, json_type_string))
		return mcp_send_error(s->batch, has_id ? id : NULL, HITL_ERROR_INVALID_REQUEST, "method must be a string.");
	if (json_object_object_get_ex(msg, "params", &params) && !json_object_is_type(params, json_type_object)) {
		if (has_id)
			mcp_send_error(s->batch, id, HITL_ERROR_INVALID_PARAMS, "params must be an object.");
		return;
	}
	if (!has_id) {
		if (streq(json_object_get_string(v), "notifications/cancelled"))
			cancelled(s, params);
		return; /* notifications/initialized and anything else: nothing to do */
	}
	if (!id || (!json_object_is_type(id, json_type_string) && !json_object_is_type(id, json_type_int)))
		return mcp_send_error(s->batch, NULL, HITL_ERROR_INVALID_REQUEST, "id must be a string or an integer.");
	/* 2025-03-26: "The initialization request MUST NOT be part of a JSON-RPC batch". */
	if (s->batch && streq(json_object_get_string(v), "initialize"))
		return mcp_send_error(s->batch, id, HITL_ERROR_INVALID_REQUEST, "initialize cannot be part of a batch.");
	request(s, json_object_get_string(v), id, params);
}

/* Batches exist in the revisions before 2025-06-18 (which removed them); each element is
 * handled as if alone, and the replies go out as one array when all are there. */
static void handle_batch(Server *s, json_object *msg) {
	size_t n = json_object_array_length(msg);
	Batch *b;

	if (!s->initialized || mcp_protocol_has_structured(s->version))
		return mcp_send_error(NULL, NULL, HITL_ERROR_INVALID_REQUEST,
		                  "Batches are not supported in this protocol revision: send one message per line.");
	if (n == 0 || n > BATCH_MAX)
		return mcp_send_error(NULL, NULL, HITL_ERROR_INVALID_REQUEST, n == 0 ? "Empty batch." : "Batch too long.");
	b = calloc(1, sizeof *b);
	if (!b || !(b->replies = json_object_new_array())) {
		free(b);
		return mcp_send_error(NULL, NULL, HITL_ERROR_INTERNAL, "Out of memory.");
	}
	b->refs = 1;
	s->batch = b;
	for (size_t i = 0; i < n; i++)
		handle_message(s, json_object_array_get_idx(msg, i));
	s->batch = NULL;
	mcp_batch_unref(b);
}

static void handle_line(Server *s, const char *line, size_t len) {
	_cleanup_(json_object_putp) json_object *msg = NULL;
	json_tokener *tok;

	while (len > 0 && strchr(" \t\r", line[len - 1]))
		len--;
	if (len == 0)
		return;
	tok = json_tokener_new_ex(JSON_DEPTH_MAX);
	if (!tok)
		return;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	msg = json_tokener_parse_ex(tok, line, (int) len);
	if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len)
		msg = (json_object_put(msg), NULL);
	json_tokener_free(tok);
	if (!msg)
		return mcp_send_error(NULL, NULL, HITL_ERROR_PARSE, "Parse error: not one JSON value.");
	if (json_object_is_type(msg, json_type_array))
		return handle_batch(s, msg);
	handle_message(s, msg);
}

/* Reads what stdin has and handles every complete line. */
static void read_stdin(Server *s) {
	ssize_t n;
	size_t start = 0;

	if (s->in_size - s->in_len < READ_CHUNK) {
		size_t size = s->in_len + READ_CHUNK;
		char *b = realloc(s->in, size);

		if (!b)
			return;
		s->in = b;
		s->in_size = size;
	}
	n = read(STDIN_FILENO, s->in + s->in_len, s->in_size - s->in_len);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			s->in_eof = true;
		return;
	}
	if (n == 0) {
		s->in_eof = true;
		return;
	}
	s->in_len += (size_t) n;
	for (;;) {
		char *nl = memchr(s->in + start, '\n', s->in_len - start);
		size_t len;

		if (!nl)
			break;
		len = (size_t) (nl - (s->in + start));
		if (s->in_skipping)
			s->in_skipping = false;
		else if (len > MESSAGE_MAX)
			mcp_send_error(NULL, NULL, HITL_ERROR_INVALID_REQUEST, "Message too large.");
		else
			handle_line(s, s->in + start, len);
		start += len + 1;
	}
	memmove(s->in, s->in + start, s->in_len - start);
	s->in_len -= start;
	if (s->in_len > MESSAGE_MAX) {
		if (!s->in_skipping)
			mcp_send_error(NULL, NULL, HITL_ERROR_INVALID_REQUEST, "Message too large.");
		s->in_skipping = true;
		s->in_len = 0;
	}
}

/* ------------------------------------------------------------------ main loop */

static int run(Server *s) {
	for (;;) {
		struct pollfd fds[1 + CALLS_MAX];
		Call *who[1 + CALLS_MAX];
		int64_t next = INT64_MAX, now;
		nfds_t n = 0;
		int timeout, k;

		if (s->in_eof)
			return 0; /* the host is gone; every request is safe in hitld */
		fds[n++] = (struct pollfd) { .fd = STDIN_FILENO, .events = POLLIN };
		for (Call *c = s->calls; c; c = c->next) {
			int64_t t = mcp_call_next_timer(c);

			if (t < next)
				next = t;
			if (c->step == STEP_WAITING && c->conn && n < ELEMENTSOF(fds)) {
				who[n] = c;
				fds[n++] = (struct pollfd) { .fd = hitl_client_fd(c->conn), .events = POLLIN };
			}
		}
		now = mcp_now_ms();
		timeout = next == INT64_MAX ? -1 : next <= now ? 0 : next - now > INT_MAX ? INT_MAX : (int) (next - now);
		k = poll(fds, n, timeout);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "hitlctl mcp: poll: %m\n");
			return 1;
		}
		/* Each call's handlers free only that call, so the rest of who[] stays valid. */
		for (nfds_t i = 1; i < n; i++)
			if (fds[i].revents)
				mcp_call_readable(who[i]);
		now = mcp_now_ms();
		for (Call *c = s->calls, *nx; c; c = nx) {
			nx = c->next;
			if (mcp_call_next_timer(c) <= now)
				mcp_call_timer(c, now);
		}
		if (fds[0].revents)
			read_stdin(s);
	}
}

static int parse_seconds(const char *opt, const char *arg, int64_t min, int64_t max, int64_t *ret) {
	uint64_t v;

	if (hitl_duration_parse(arg, &v) < 0 || (int64_t) v < min || (int64_t) v > max) {
		fprintf(stderr, "hitlctl mcp: %s %s: a duration from %lld to %lld seconds (e.g. 30, 5m).\n", opt, arg,
		        (long long) min, (long long) max);
		return -EINVAL;
	}
	*ret = (int64_t) v;
	return 0;
}

int mcp_main(const char *socket_path, int argc, char **argv) {
	enum { OPT_SOCKET = 256, OPT_INSTANCE, OPT_LOOP, OPT_PROGRESS, OPT_RECONNECT, OPT_MAX_CALLS, OPT_HELP };
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "instance", required_argument, NULL, OPT_INSTANCE },
		{ "loop", required_argument, NULL, OPT_LOOP },
		{ "progress-interval", required_argument, NULL, OPT_PROGRESS },
		{ "reconnect-timeout", required_argument, NULL, OPT_RECONNECT },
		{ "max-calls", required_argument, NULL, OPT_MAX_CALLS },
		{ "help", no_argument, NULL, OPT_HELP },
		{},
	};
	_cleanup_(freep) char *instance_path = NULL;
	Server s = {
		.path = socket_path,
		.max_calls = CALLS_DEFAULT,
		.progress_interval_ms = PROGRESS_INTERVAL_DEFAULT_S * 1000,
		.reconnect_timeout_ms = RECONNECT_TIMEOUT_DEFAULT_S * 1000,
	};
	const char *explicit_socket = NULL;
	int64_t v;
	int opt, r;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		switch (opt) {
		case OPT_SOCKET:
			explicit_socket = optarg;
			break;
		case OPT_INSTANCE:
			free(instance_path);
			instance_path = NULL;
			if (hitl_socket_path_for_instance(optarg, &instance_path) < 0) {
				fprintf(stderr, "hitlctl mcp: --instance %s: an instance name is letters, digits and _.:@-\n", optarg);
				return 2;
			}
			break;
		case OPT_LOOP:
			if (strlen(optarg) != 24 || strspn(optarg, "0123456789abcdefABCDEF") != 24) {
				fprintf(stderr, "hitlctl mcp: --loop %s: a loop id is 24 hex characters ('hitlctl loops list').\n",
				        optarg);
				return 2;
			}
			s.opts.default_loop_id = optarg;
			break;
		case OPT_PROGRESS:
			if (parse_seconds("--progress-interval", optarg, 1, 3600, &v) < 0)
				return 2;
			s.progress_interval_ms = v * 1000;
			break;
		case OPT_RECONNECT:
			if (parse_seconds("--reconnect-timeout", optarg, 0, 86400, &v) < 0)
				return 2;
			s.reconnect_timeout_ms = v * 1000;
			break;
		case OPT_MAX_CALLS: {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end || end == optarg || n < 1 || n > CALLS_MAX) {
				fprintf(stderr, "hitlctl mcp: --max-calls %s: a number from 1 to %d.\n", optarg, CALLS_MAX);
				return 2;
			}
			s.max_calls = (unsigned) n;
			break;
		}
		case OPT_HELP:
			printf("Usage: hitlctl %s\n\n%s", MCP_SYNOPSIS, MCP_HELP);
			return 0;
		default:
			fprintf(stderr, "hitlctl mcp: unknown option or missing value in '%s' — see 'hitlctl mcp --help'.\n",
			        argv[optind - 1]);
			return 2;
		}
	if (optind < argc) {
		fprintf(stderr, "hitlctl mcp: unexpected argument '%s' — see 'hitlctl mcp --help'.\n", argv[optind]);
		return 2;
	}
	if (explicit_socket && explicit_socket[0])
		s.path = explicit_socket;
	else if (instance_path)
		s.path = instance_path;

	/* A host that goes away must not kill us mid-write; we exit on EPIPE ourselves.
	 * stdin stays blocking (it may share its file description with stdout or the host's
	 * terminal): we read it only once poll(2) says it is readable. */
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "hitlctl mcp: serving MCP on stdio for hitld at %s\n", hitl_socket_path(s.path));

	r = run(&s);
	for (Call *c = s.calls; c; c = c->next)
		if (c->batch)
			c->batch->discard = true;
	while (s.calls)
		mcp_call_free(s.calls);
	hitl_client_free(s.ctl);
	free(s.in);
	return r;
}
