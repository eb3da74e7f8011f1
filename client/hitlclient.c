/* hitlclient.c — the synchronous client for hitld's control socket (see hitlclient.h).
 * Framing: one JSON-RPC message per line, each line bounded by max_message; replies are
 * matched to calls by a per-connection increasing id, so the late reply of an abandoned
 * call (timeout, signal) is recognised and skipped. Notifications that arrive during a call
 * are queued (bounded) for hitl_watch_next(). No global state. The typed wrappers, one per
 * method, are in hitlclient_calls.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hitlclient.h"

/* Nesting the tokener accepts: records carry a context of up to 32 levels,
 * wrapped in result/request/params. */
#define JSON_DEPTH_MAX 64
#define MESSAGE_MIN 4096
#define READ_CHUNK 65536
#define DURATION_MAX_S (100ULL * 365 * 86400)
/* Longest pause between two connect(2) attempts while the backlog is full. */
#define CONNECT_PAUSE_MAX_MS 50

typedef struct QueuedEvent {
	char *line;
	json_object *message;
	struct QueuedEvent *next;
} QueuedEvent;

struct HitlClient {
	int fd;
	uint64_t next_id;
	int timeout_ms;
	size_t max_message;

	char *buf;              /* bytes read and not yet consumed */
	size_t buf_len, buf_size;
	size_t scanned;         /* buf[0..scanned) holds no '\n' */

	int broken;             /* 0, or the negative errno that made the connection unusable */

	QueuedEvent *events, *events_tail;
	size_t n_events;
	uint64_t events_dropped; /* notifications dropped (queue full) since the last hitl_watch_next() */
};

/* ------------------------------------------------------------------ errors, events */

void hitl_error_clear(HitlError *e) {
	if (!e)
		return;
	free(e->message);
	json_object_put(e->data);
	*e = HITL_ERROR_INIT;
}

const char *hitl_error_code_name(int code) {
	switch (code) {
	case HITL_ERROR_PARSE:            return "parse_error";
	case HITL_ERROR_INVALID_REQUEST:  return "invalid_request";
	case HITL_ERROR_METHOD_NOT_FOUND: return "method_not_found";
	case HITL_ERROR_INVALID_PARAMS:   return "invalid_params";
	case HITL_ERROR_INTERNAL:         return "internal_error";
	case HITL_ERROR_NOT_FOUND:        return "not_found";
	case HITL_ERROR_PERMISSION:       return "permission_denied";
	case HITL_ERROR_QUOTA:            return "quota_exceeded";
	case HITL_ERROR_BUDGET:           return "budget_exhausted";
	case HITL_ERROR_STORAGE:          return "storage_error";
	case HITL_ERROR_REMOTE:           return "remote_error";
	case HITL_ERROR_INVALID_STATE:    return "invalid_state";
	case HITL_ERROR_SHUTTING_DOWN:    return "shutting_down";
	case HITL_ERROR_CONFLICT:         return "conflict";
	case HITL_ERROR_UNAVAILABLE:      return "unavailable";
	default:                          return NULL;
	}
}

void hitl_event_clear(HitlEvent *ev) {
	if (!ev)
		return;
	free(ev->method);
	json_object_put(ev->params);
	free(ev->line);
	*ev = HITL_EVENT_INIT;
}

/* ------------------------------------------------------------------ socket paths */

const char *hitl_socket_path(const char *explicit_path) {
	const char *env;

	if (explicit_path && explicit_path[0])
		return explicit_path;
	env = getenv(HITL_SOCKET_ENV);
	if (env && env[0])
		return env;
	return HITL_SOCKET_DEFAULT;
}

int hitl_socket_path_for_instance(const char *name, char **ret_path) {
	size_t len;
	char *path;

	if (!name || !ret_path)
		return -EINVAL;
	len = strlen(name);
	if (len == 0 || len > HITL_INSTANCE_NAME_MAX || name[0] == '.')
		return -EINVAL;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("_.:@-", *p)))
			return -EINVAL;
	if (asprintf(&path, HITL_SOCKET_INSTANCE_FORMAT, name) < 0)
		return -ENOMEM;
	*ret_path = path;
	return 0;
}

/* ------------------------------------------------------------------ connection */

static int64_t now_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline from a timeout (negative: none) and a non-negative extra time. */
static int64_t deadline_after(int timeout_ms, int extra_ms) {
	int64_t t;

	if (timeout_ms < 0)
		return -1;
	t = (int64_t) timeout_ms + extra_ms;
	return now_ms() + t;
}

/* What is left of a deadline, as poll(2) wants it. */
static int remaining_ms(int64_t deadline) {
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int) left;
}

int hitl_client_new_from_fd(int fd_in, HitlClient **ret) {
	_cleanup_(closep) int fd = fd_in;
	HitlClient *c;
	int flags;

	if (fd < 0)
		return -EBADF;
	if (!ret)
		return -EINVAL;
	/* On the file description: shared with every dup of fd (documented). */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return negative_errno();
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->fd = TAKE_FD(fd);
	c->next_id = 1;
	c->timeout_ms = HITL_CALL_TIMEOUT_MS_DEFAULT;
	c->max_message = HITL_MESSAGE_MAX_DEFAULT;
	*ret = c;
	return 0;
}

/* connect(2) bounded by a deadline. A Unix socket connects at once or fails at once,
 * except when the listener's backlog is full (a stopped or swamped hitld): a
 * blocking connect would then wait for an accept that may never come, and a
 * non-blocking one fails with EAGAIN (not EINPROGRESS), with nothing poll(2) could
 * wait on. So: retry with a growing pause until the deadline. */
static int connect_until(int fd, const struct sockaddr_un *sa, socklen_t sa_len, int64_t deadline) {
	int pause_ms = 1;

	for (;;) {
		int left;

		if (connect(fd, (const struct sockaddr *) sa, sa_len) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return negative_errno();
		left = remaining_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		/* A signal ends the wait, as it ends a call's (Ctrl-C in hitlctl). */
		if (poll(NULL, 0, left >= 0 && left < pause_ms ? left : pause_ms) < 0 && errno == EINTR)
			return -EINTR;
		if (pause_ms < CONNECT_PAUSE_MAX_MS)
			pause_ms *= 2;
	}
}

int hitl_client_connect_timeout(const char *path, int timeout_ms, HitlClient **ret) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_(closep) int fd = -EBADF;
	int64_t deadline;
	size_t len;
	int r;

	if (!ret)
		return -EINVAL;
	deadline = deadline_after(timeout_ms, 0);
	path = hitl_socket_path(path);
	len = strlen(path);
	if (len >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	r = connect_until(fd, &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1), deadline);
	if (r < 0)
		return r;
	return hitl_client_new_from_fd(TAKE_FD(fd), ret);
}

int hitl_client_connect(const char *path, HitlClient **ret) {
	return hitl_client_connect_timeout(path, HITL_CALL_TIMEOUT_MS_DEFAULT, ret);
}

static void events_drop_all(HitlClient *c) {
	while (c->events) {
		QueuedEvent *e = c->events;

		c->events = e->next;
		free(e->line);
		json_object_put(e->message);
		free(e);
	}
	c->events_tail = NULL;
	c->n_events = 0;
}

HitlClient *hitl_client_free(HitlClient *c) {
	if (!c)
		return NULL;
	if (c->fd >= 0)
		close(c->fd);
	events_drop_all(c);
	free(c->buf);
	free(c);
	return NULL;
}

int hitl_client_fd(const HitlClient *c) {
	return c ? c->fd : -EBADF;
}

void hitl_client_set_timeout(HitlClient *c, int timeout_ms) {
	if (c)
		c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

void hitl_client_set_max_message(HitlClient *c, size_t bytes) {
	if (c)
		c->max_message = bytes < MESSAGE_MIN ? MESSAGE_MIN : bytes;
}

bool hitl_client_pending(const HitlClient *c) {
	return c && (c->events || c->events_dropped > 0 || (c->buf_len > 0 && memchr(c->buf, '\n', c->buf_len)));
}

bool hitl_client_is_broken(const HitlClient *c) {
	return !c || c->broken != 0;
}

static int mark_broken(HitlClient *c, int error) {
	if (c->broken == 0)
		c->broken = error;
	return error;
}

/* ------------------------------------------------------------------ framing */

/* Reads more bytes. Returns 1 when some arrived, 0 when the deadline passed. */
static int fill(HitlClient *c, int64_t deadline) {
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	size_t cap = c->max_message + 1; /* the line, then its '\n' */
	ssize_t n;
	int k;

	if (c->buf_size - c->buf_len < 1024 && c->buf_size < cap) {
		size_t size = c->buf_size ? c->buf_size * 2 : READ_CHUNK;
		char *b;

		if (size > cap)
			size = cap;
		b = realloc(c->buf, size);
		if (!b)
			return -ENOMEM;
		c->buf = b;
		c->buf_size = size;
	}

	for (;;) {
		k = poll(&p, 1, remaining_ms(deadline));
		if (k < 0)
			return errno == EINTR ? -EINTR : negative_errno();
		if (k == 0)
			return 0;
		n = read(c->fd, c->buf + c->buf_len, c->buf_size - c->buf_len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return mark_broken(c, negative_errno());
		}
		if (n == 0)
			return mark_broken(c, -ECONNRESET);
		c->buf_len += (size_t) n;
		return 1;
	}
}

/* The next complete line, malloc'ed, without its '\n'. Returns 1, 0 when the
 * deadline passed first, or a negative errno. */
static int next_line(HitlClient *c, int64_t deadline, char **ret_line, size_t *ret_len) {
	for (;;) {
		char *nl = c->buf_len > c->scanned ? memchr(c->buf + c->scanned, '\n', c->buf_len - c->scanned) : NULL;
		int k;

		if (nl) {
			size_t len = (size_t) (nl - c->buf);
			char *line;

			if (len > c->max_message)
				return mark_broken(c, -EMSGSIZE);
			line = malloc(len + 1);
			if (!line)
				return -ENOMEM;
			memcpy(line, c->buf, len);
			line[len] = 0;
			memmove(c->buf, nl + 1, c->buf_len - len - 1);
			c->buf_len -= len + 1;
			c->scanned = 0;
			*ret_line = line;
			*ret_len = len;
			return 1;
		}
		c->scanned = c->buf_len;
		if (c->buf_len > c->max_message)
			return mark_broken(c, -EMSGSIZE);
		k = fill(c, deadline);
		if (k <= 0)
			return k;
	}
}

/* One line as a JSON object; anything else is -EBADMSG. */
static int parse_message(const char *line, size_t len, json_object **ret) {
	_cleanup_(json_object_putp) json_object *msg = NULL;
	json_tokener *tok;
	size_t end;

	if (len > INT_MAX || memchr(line, 0, len))
		return -EBADMSG;
	tok = json_tokener_new_ex(JSON_DEPTH_MAX);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	msg = json_tokener_parse_ex(tok, line, (int) len);
	end = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) != json_tokener_success)
		msg = (json_object_put(msg), NULL);
	json_tokener_free(tok);
	if (!msg || !json_object_is_type(msg, json_type_object))
		return -EBADMSG;
	for (; end < len; end++)
		if (!strchr(" \t\r", line[end]))
			return -EBADMSG;
	*ret = TAKE_PTR(msg);
	return 0;
}

static int write_all(HitlClient *c, const char *data, size_t len, int64_t deadline) {
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(c->fd, data + done, len - done, MSG_NOSIGNAL);

		if (n >= 0) {
			done += (size_t) n;
			continue;
		}
		if (errno == EAGAIN) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			int k = poll(&p, 1, remaining_ms(deadline));

			if (k > 0 || (k < 0 && errno == EINTR && done == 0))
				continue;
			/* Half a request on the wire: the stream is no longer in step. */
			if (k == 0)
				return done == 0 ? -ETIMEDOUT : mark_broken(c, -ETIMEDOUT);
			return mark_broken(c, negative_errno());
		}
		if (errno == EINTR)
			continue;
		return mark_broken(c, errno == EPIPE ? -ECONNRESET : negative_errno());
	}
	return 0;
}

static int queue_event(HitlClient *c, char *line, json_object *msg) {
	QueuedEvent *e;

	if (c->n_events >= HITL_EVENT_QUEUE_MAX) {
		c->events_dropped++;
		free(line);
		json_object_put(msg);
		return 0;
	}
	e = calloc(1, sizeof *e);
	if (!e) {
		free(line);
		json_object_put(msg);
		return -ENOMEM;
	}
	e->line = line;
	e->message = msg;
	if (c->events_tail)
		c->events_tail->next = e;
	else
		c->events = e;
	c->events_tail = e;
	c->n_events++;
	return 0;
}

static void error_fill(HitlError *error, json_object *err) {
	json_object *v;

	if (!error)
		return;
	hitl_error_clear(error);
	v = json_object_object_get(err, "code");
	error->code = v && json_object_is_type(v, json_type_int) ? json_object_get_int(v) : HITL_ERROR_INTERNAL;
	v = json_object_object_get(err, "message");
	if (v && json_object_is_type(v, json_type_string))
		error->message = strdup(json_object_get_string(v));
	v = json_object_object_get(err, "data");
	error->data = v ? json_object_get(v) : NULL;
}

static bool is_notification(json_object *msg) {
	json_object *method;

	return !json_object_object_get_ex(msg, "id", NULL) &&
	       json_object_object_get_ex(msg, "method", &method) && json_object_is_type(method, json_type_string);
}

/* ------------------------------------------------------------------ calls */

static int send_request(HitlClient *c, uint64_t id, const char *method, json_object *params, int64_t deadline) {
	_cleanup_(json_object_putp) json_object *req = json_object_new_object();
	_cleanup_(freep) char *line = NULL;
	const char *text;
	size_t len;

	if (!req)
		return -ENOMEM;
	if (json_object_object_add(req, "jsonrpc", json_object_new_string("2.0")) < 0 ||
	    json_object_object_add(req, "id", json_object_new_int64((int64_t) id)) < 0 ||
	    json_object_object_add(req, "method", json_object_new_string(method)) < 0 ||
	    json_object_object_add(req, "params", params ? json_object_get(params) : json_object_new_object()) < 0)
		return -ENOMEM;
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	if (len > c->max_message)
		return -EMSGSIZE;
	line = malloc(len + 1);
	if (!line)
		return -ENOMEM;
	memcpy(line, text, len);
	line[len] = '\n';
	return write_all(c, line, len + 1, deadline);
}

int hitl_client_call_full(HitlClient *c, const char *method, json_object *params, int extra_timeout_ms,
                          json_object **ret_result, HitlError *error) {
	int64_t deadline;
	uint64_t id;
	int k;

	hitl_error_clear(error);
	/* A negative extra time would lift the call's time limit. */
	if (!c || !method || extra_timeout_ms < 0 || (params && !json_object_is_type(params, json_type_object)))
		return -EINVAL;
	if (c->broken)
		return c->broken;

	id = c->next_id++;
	deadline = deadline_after(c->timeout_ms, extra_timeout_ms);
	k = send_request(c, id, method, params, deadline);
	if (k < 0)
		return k;

	for (;;) {
		_cleanup_(json_object_putp) json_object *msg = NULL;
		_cleanup_(freep) char *line = NULL;
		json_object *vid, *v;
		size_t len;

		k = next_line(c, deadline, &line, &len);
		if (k < 0)
			return k;
		if (k == 0)
			return -ETIMEDOUT;
		k = parse_message(line, len, &msg);
		if (k < 0)
			return mark_broken(c, k);

		if (is_notification(msg)) {
			k = queue_event(c, TAKE_PTR(line), TAKE_PTR(msg));
			if (k < 0)
				return k;
			continue;
		}
		if (!json_object_object_get_ex(msg, "id", &vid))
			return mark_broken(c, -EBADMSG);
		if (vid && json_object_is_type(vid, json_type_int)) {
			int64_t got = json_object_get_int64(vid);

			if (got > 0 && (uint64_t) got < id)
				continue; /* the late reply of an abandoned call */
			if (got < 0 || (uint64_t) got != id)
				return mark_broken(c, -EBADMSG);
		} else if (vid)
			return mark_broken(c, -EBADMSG);
		/* id null: the daemon could not tie its answer to a request (e.g. the
		 * per-uid connection limit); it belongs to the call in progress. */

		if (json_object_object_get_ex(msg, "error", &v)) {
			if (!json_object_is_type(v, json_type_object))
				return mark_broken(c, -EBADMSG);
			error_fill(error, v);
			return -EREMOTEIO;
		}
		if (!vid || !json_object_object_get_ex(msg, "result", &v))
			return mark_broken(c, -EBADMSG);
		if (ret_result)
			*ret_result = v ? json_object_get(v) : NULL;
		return 0;
	}
}

int hitl_client_call(HitlClient *c, const char *method, json_object *params, json_object **ret_result,
                     HitlError *error) {
	return hitl_client_call_full(c, method, params, 0, ret_result, error);
}

static int event_from(char *line_in, json_object *msg_in, HitlEvent *ret) {
	_cleanup_(freep) char *line = line_in;
	_cleanup_(json_object_putp) json_object *msg = msg_in;
	HitlEvent ev = HITL_EVENT_INIT;
	json_object *params, *request;

	ev.method = strdup(json_object_get_string(json_object_object_get(msg, "method")));
	if (!ev.method)
		return -ENOMEM;
	if (json_object_object_get_ex(msg, "params", &params) && json_object_is_type(params, json_type_object))
		ev.params = json_object_get(params);
	else
		ev.params = json_object_new_object();
	if (!ev.params) {
		hitl_event_clear(&ev);
		return -ENOMEM;
	}
	if (streq(ev.method, "request.changed") && json_object_object_get_ex(ev.params, "request", &request) &&
	    json_object_is_type(request, json_type_object))
		ev.request = request;
	ev.line = TAKE_PTR(line);
	*ret = ev;
	return 0;
}

int hitl_watch_next(HitlClient *c, int timeout_ms, HitlEvent *ret_event) {
	int64_t deadline;

	if (!c || !ret_event)
		return -EINVAL;
	hitl_event_clear(ret_event);

	if (c->events) {
		QueuedEvent *e = c->events;
		int k;

		c->events = e->next;
		if (!c->events)
			c->events_tail = NULL;
		c->n_events--;
		k = event_from(e->line, e->message, ret_event);
		free(e);
		return k < 0 ? k : 1;
	}
	if (c->events_dropped > 0) {
		/* The library's overflow, told from the daemon's (which has no "source"). */
		_cleanup_(json_object_putp) json_object *msg = NULL;
		char *line;

		if (asprintf(&line,
		             "{\"jsonrpc\":\"2.0\",\"method\":\"watch.overflow\",\"params\":{\"source\":\"client\",\"dropped\":%" PRIu64 "}}",
		             c->events_dropped) < 0)
			return -ENOMEM;
		if (parse_message(line, strlen(line), &msg) < 0) {
			free(line);
			return -EBADMSG;
		}
		c->events_dropped = 0;
		return event_from(line, TAKE_PTR(msg), ret_event) < 0 ? -ENOMEM : 1;
	}
	if (c->broken)
		return c->broken;

	deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		_cleanup_(json_object_putp) json_object *msg = NULL;
		_cleanup_(freep) char *line = NULL;
		size_t len;
		int k;

		k = next_line(c, deadline, &line, &len);
		if (k <= 0)
			return k;
		k = parse_message(line, len, &msg);
		if (k < 0)
			return mark_broken(c, k);
		if (!is_notification(msg))
			continue; /* the reply of an abandoned call */
		k = event_from(TAKE_PTR(line), TAKE_PTR(msg), ret_event);
		return k < 0 ? k : 1;
	}
}

/* ------------------------------------------------------------------ helpers */

static bool parse_digits(const char **p, unsigned n, int *ret) {
	int v = 0;

	for (unsigned i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

static bool expect_char(const char **p, char c) {
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int days_in_month(int year, int mon) {
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

int hitl_time_parse(const char *s, time_t *ret) {
	struct tm tm = {};
	int year, mon, day, hour, min, sec;
	time_t t;

	if (!s || !ret)
		return -EINVAL;
	if (!parse_digits(&s, 4, &year) || !expect_char(&s, '-') || !parse_digits(&s, 2, &mon) ||
	    !expect_char(&s, '-') || !parse_digits(&s, 2, &day) || !expect_char(&s, 'T') ||
	    !parse_digits(&s, 2, &hour) || !expect_char(&s, ':') || !parse_digits(&s, 2, &min) ||
	    !expect_char(&s, ':') || !parse_digits(&s, 2, &sec))
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (!streq(s, "Z") && !streq(s, "+00:00"))
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		return -EINVAL;
	/* RFC 3339 5.7: second 60 exists only at 23:59:60 UTC on a month's last day,
	 * where a leap second may be inserted; time_t has none, so it reads as the
	 * next day's first second (timegm's normalisation). */
	if (sec == 60 && (hour != 23 || min != 59 || day != days_in_month(year, mon)))
		return -EINVAL;

	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	if (day > days_in_month(year, mon))
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t) -1)
		return -EINVAL;
	*ret = t;
	return 0;
}

int hitl_duration_parse(const char *s, uint64_t *ret_seconds) {
	uint64_t total = 0;
	bool only_digits = true;

	if (!s || !ret_seconds || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			only_digits = false;

	while (*s) {
		uint64_t n = 0, unit;
		const char *start = s;

		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (uint64_t) (*s - '0');
			if (n > DURATION_MAX_S)
				return -ERANGE;
			s++;
		}
		if (s == start)
			return -EINVAL;
		switch (*s) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 0:
			if (!only_digits)
				return -EINVAL; /* "1h30": a bare number only on its own */
			unit = 1;
			break;
		default:
			return -EINVAL;
		}
		if (*s)
			s++;
		if (n > DURATION_MAX_S / unit || total + n * unit > DURATION_MAX_S)
			return -ERANGE;
		total += n * unit;
	}
	*ret_seconds = total;
	return 0;
}
