/* hitlctl.c — the command-line client of hitld, built on libhitlclient.
 * One verb per invocation: status, submit, ask, get, wait, list, cancel, feedback, watch,
 * loops …, key test, pause, resume, reload. Human output by default, the daemon's JSON
 * unchanged with --json; documented exit codes (see usage() and hitlctl(1)). Every error
 * names its cause and, where one exists, the fix. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hitlclient.h"
#include "mcp.h"

#ifndef HITLD_VERSION
#define HITLD_VERSION "0"
#endif

/* Exit codes, documented in hitlctl(1). */
enum {
	EXIT_MISMATCH = 1,     /* ask --expect: the answer was something else */
	EXIT_USAGE = 2,        /* bad flags or arguments (also parameters the daemon refused) */
	EXIT_UNREACHABLE = 3,  /* cannot talk to hitld */
	EXIT_NOT_FOUND = 4,    /* no such request, or not allowed */
	EXIT_TIMEOUT = 5,      /* waiting timed out */
	EXIT_REMOTE = 6,       /* HITL.sh, budget, queue, or the daemon refused or failed */
	EXIT_INTERRUPTED = 130,
};

#define USER_INPUT_MAX ((size_t) 1024 * 1024)   /* --params, --text-file, stdin */
#define CTL_MAX_MESSAGE ((size_t) 8 * 1024 * 1024)
#define WAIT_CHUNK_MS 3600000                   /* the protocol's request.wait maximum */
#define LIVE_TICK_MS 1000
#define LIVE_STATUS_EVERY_S 5
#define RECONNECT_FOR_S 60
#define LIST_PAGE 100
#define LIST_DEFAULT_LIMIT 50
#define TEXT_COLUMN_MAX 50

static volatile sig_atomic_t interrupted;

typedef struct Ctl {
	const char *socket_arg;      /* --socket */
	char *instance_path;         /* --instance, resolved */
	const char *instance;        /* --instance NAME */
	const char *path;            /* what we connect to */
	bool json;
	bool tty_out, tty_err;
	HitlClient *client;
	HitlError error;
	const char *verb;
} Ctl;

/* ------------------------------------------------------------------ small output helpers */

_printf_(1, 2) static void errorf(const char *format, ...) {
	va_list ap;

	fputs("hitlctl: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

_printf_(1, 2) static int usage_error(const char *format, ...) {
	va_list ap;

	fputs("hitlctl: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

/* ------------------------------------------------------------------ terminal-safe output */

/* Human output shows text that others wrote (a request's author, a reviewer,
 * HITL.sh): a control character in it could move the cursor, recolour or
 * clear the screen, retitle the window or hide text from the admin reading
 * it. So stdout and stderr go through this filter, which shows, visibly
 * escaped, every C0 control but \t and \n (as \xHH), DEL, every byte that is
 * not valid UTF-8 (0x9B alone is CSI on an 8-bit terminal), the C1 controls
 * and the bidi overrides and isolates (as \uHHHH). --json output bypasses it:
 * JSON has its own escaping, and a program wants the text unchanged. The live
 * line writes its own "\r\033[K" to the unfiltered stderr. */
typedef struct TermFilter {
	int fd;
	unsigned char pending[4]; /* an incomplete UTF-8 sequence carried to the next write */
	size_t n_pending, need;
} TermFilter;

static TermFilter term_out = { .fd = STDOUT_FILENO }, term_err = { .fd = STDERR_FILENO };
static FILE *raw_stdout, *raw_stderr;

static void term_write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* like stdio on a closed pipe: output is lost, exit code stands */
		p += k;
		n -= (size_t) k;
	}
}

static bool codepoint_is_unsafe(uint32_t cp) {
	return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Appends bytes that did not make a valid, safe UTF-8 sequence as \xHH each. */
static size_t term_escape_bytes(char *out, const unsigned char *b, size_t n) {
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		w += (size_t) sprintf(out + w, "\\x%02X", b[i]);
	return w;
}

/* Emits the completed sequence in f->pending. */
static size_t term_flush_sequence(TermFilter *f, char *out) {
	const unsigned char *b = f->pending;
	size_t n = f->n_pending, w;
	uint32_t cp;

	f->n_pending = f->need = 0;
	if (n == 2)
		cp = (uint32_t) (b[0] & 0x1F) << 6 | (b[1] & 0x3F);
	else if (n == 3)
		cp = (uint32_t) (b[0] & 0x0F) << 12 | (uint32_t) (b[1] & 0x3F) << 6 | (b[2] & 0x3F);
	else
		cp = (uint32_t) (b[0] & 0x07) << 18 | (uint32_t) (b[1] & 0x3F) << 12 | (uint32_t) (b[2] & 0x3F) << 6 |
		     (b[3] & 0x3F);
	/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
		return term_escape_bytes(out, b, n);
	if (codepoint_is_unsafe(cp))
		return (size_t) sprintf(out, "\\u%04X", (unsigned) cp);
	memcpy(out, b, n);
	w = n;
	return w;
}

static ssize_t term_filter_write(void *cookie, const char *buf, size_t size) {
	TermFilter *f = cookie;
	char out[4096];
	size_t w = 0;

	for (size_t i = 0; i < size; i++) {
		unsigned char c = (unsigned char) buf[i];

		/* Room for the worst case of one step: 4 pending bytes as \xHH, then c. */
		if (w > sizeof out - 32) {
			term_write_all(f->fd, out, w);
			w = 0;
		}
		if (f->need > 0) {
			if ((c & 0xC0) == 0x80) {
				f->pending[f->n_pending++] = c;
				if (f->n_pending == f->need)
					w += term_flush_sequence(f, out + w);
				continue;
			}
			w += term_escape_bytes(out + w, f->pending, f->n_pending);
			f->n_pending = f->need = 0;
		}
		if (c >= 0xC2 && c <= 0xF4) {
			f->pending[0] = c;
			f->n_pending = 1;
			f->need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		} else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F || c >= 0x80)
			w += term_escape_bytes(out + w, &c, 1);
		else
			out[w++] = (char) c;
	}
	term_write_all(f->fd, out, w);
	return (ssize_t) size;
}

/* Sends stdout and stderr through the filter; raw_stdout and raw_stderr
 * stay the unfiltered streams. Without memory for it, output stays raw. */
static void term_filter_install(void) {
	static const cookie_io_functions_t io = { .write = term_filter_write };
	FILE *out = fopencookie(&term_out, "w", io), *err = fopencookie(&term_err, "w", io);

	raw_stdout = stdout;
	raw_stderr = stderr;
	if (!out || !err) {
		if (out)
			fclose(out);
		if (err)
			fclose(err);
		return;
	}
	(void) setvbuf(out, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ);
	(void) setvbuf(err, NULL, _IONBF, 0);
	stdout = out;
	stderr = err;
}

/* Writes what the filter still holds (an incomplete sequence, escaped). */
static void term_filter_finish(void) {
	char out[32];

	fflush(stdout);
	fflush(stderr);
	for (TermFilter *f = &term_out; f; f = f == &term_out ? &term_err : NULL)
		if (f->n_pending > 0) {
			size_t w = term_escape_bytes(out, f->pending, f->n_pending);

			f->n_pending = f->need = 0;
			term_write_all(f->fd, out, w);
		}
}

static const char *json_plain(json_object *j) {
	return json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Prints a daemon result unchanged, one object per line. */
static void print_json(json_object *j) {
	fflush(stdout); /* keep the order of anything printed before */
	fputs(j ? json_plain(j) : "null", raw_stdout);
	fputc('\n', raw_stdout);
	fflush(raw_stdout);
}

static const char *jstr(json_object *o, const char *key) {
	json_object *v = json_object_object_get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool jint(json_object *o, const char *key, int64_t *ret) {
	json_object *v = json_object_object_get(o, key);

	if (!v || !json_object_is_type(v, json_type_int))
		return false;
	*ret = json_object_get_int64(v);
	return true;
}

static bool jbool(json_object *o, const char *key) {
	json_object *v = json_object_object_get(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* A result value as a person reads it: strings bare, everything else JSON. */
static const char *value_text(json_object *v) {
	if (!v)
		return "";
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return json_plain(v);
}

static char *format_duration(uint64_t s, char *buf, size_t size) {
	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "m", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h", s / 86400, (s % 86400) / 3600);
	return buf;
}

/* "in 12m 5s", "3m 2s ago", "now". */
static char *format_relative(time_t t, time_t now, char *buf, size_t size) {
	char d[32];

	if (t == now)
		snprintf(buf, size, "now");
	else if (t > now)
		snprintf(buf, size, "in %s", format_duration((uint64_t) (t - now), d, sizeof d));
	else
		snprintf(buf, size, "%s ago", format_duration((uint64_t) (now - t), d, sizeof d));
	return buf;
}

/* Local time: "15:00:00" today, "Nov 28 15:00" this year, else "2027-01-02 15:00". */
static char *format_local(time_t t, time_t now, char *buf, size_t size) {
	struct tm tm, tm_now;

	localtime_r(&t, &tm);
	localtime_r(&now, &tm_now);
	if (tm.tm_year == tm_now.tm_year && tm.tm_yday == tm_now.tm_yday)
		strftime(buf, size, "%H:%M:%S", &tm);
	else if (tm.tm_year == tm_now.tm_year)
		strftime(buf, size, "%b %d %H:%M", &tm);
	else
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
	return buf;
}

/* "15:00:00 (in 12m 5s)" for an ISO time; NULL when absent or unreadable. */
static char *format_when(const char *iso, char *buf, size_t size) {
	char local[64], rel[64];
	time_t t, now = time(NULL);

	if (!iso || hitl_time_parse(iso, &t) < 0)
		return NULL;
	snprintf(buf, size, "%s (%s)", format_local(t, now, local, sizeof local),
	         format_relative(t, now, rel, sizeof rel));
	return buf;
}

static char *format_ago(const char *iso, char *buf, size_t size) {
	time_t t;

	if (!iso || hitl_time_parse(iso, &t) < 0)
		return NULL;
	return format_relative(t, time(NULL), buf, size);
}

/* Code points in s: what a terminal column count roughly is. */
static size_t text_width(const char *s) {
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			n++;
	return n;
}

/* The first line of s, at most max code points, "…" when cut. */
static char *shorten(const char *s, size_t max) {
	size_t bytes = 0, points = 0;
	bool cut = false;
	char *out;

	if (!s)
		s = "";
	while (s[bytes] && s[bytes] != '\n' && s[bytes] != '\r') {
		if (((unsigned char) s[bytes] & 0xC0) != 0x80) {
			if (points == max) {
				cut = true;
				break;
			}
			points++;
		}
		bytes++;
	}
	if (s[bytes] == '\n' || s[bytes] == '\r')
		cut = true;
	if (cut && points == max) {
		/* Make room for the ellipsis: drop the last code point. */
		while (bytes > 0 && ((unsigned char) s[bytes - 1] & 0xC0) == 0x80)
			bytes--;
		if (bytes > 0)
			bytes--;
	}
	out = malloc(bytes + 4);
	if (!out)
		return NULL;
	memcpy(out, s, bytes);
	if (cut)
		memcpy(out + bytes, "…", 4);
	else
		out[bytes] = 0;
	return out;
}

static int terminal_columns(void) {
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
		return ws.ws_col;
	return 80;
}

/* ------------------------------------------------------------------ tables */

#define TABLE_COLUMNS_MAX 8

typedef struct Table {
	size_t n_columns, n_rows, allocated;
	const char *headers[TABLE_COLUMNS_MAX];
	char **cells; /* n_rows * n_columns, owned */
} Table;

static void table_free(Table *t) {
	for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
		free(t->cells[i]);
	free(t->cells);
	*t = (Table) {};
}

static int table_add(Table *t, const char *const *values) {
	if (t->n_rows == t->allocated) {
		size_t n = t->allocated ? t->allocated * 2 : 16;
		char **cells = realloc(t->cells, n * t->n_columns * sizeof(char *));

		if (!cells)
			return -ENOMEM;
		t->cells = cells;
		t->allocated = n;
	}
	for (size_t i = 0; i < t->n_columns; i++) {
		t->cells[t->n_rows * t->n_columns + i] = strdup(values[i] ? values[i] : "");
		if (!t->cells[t->n_rows * t->n_columns + i]) {
			for (size_t j = 0; j < i; j++)
				free(t->cells[t->n_rows * t->n_columns + j]);
			return -ENOMEM;
		}
	}
	t->n_rows++;
	return 0;
}

static void table_print(const Table *t) {
	size_t width[TABLE_COLUMNS_MAX] = {};

	for (size_t c = 0; c < t->n_columns; c++) {
		width[c] = text_width(t->headers[c]);
		for (size_t r = 0; r < t->n_rows; r++) {
			size_t w = text_width(t->cells[r * t->n_columns + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= t->n_rows; r++) {
		for (size_t c = 0; c < t->n_columns; c++) {
			const char *s = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->n_columns + c];
			bool last = c + 1 == t->n_columns;

			fputs(s, stdout);
			if (!last)
				for (size_t pad = text_width(s); pad < width[c] + 2; pad++)
					fputc(' ', stdout);
		}
		fputc('\n', stdout);
	}
}

/* ------------------------------------------------------------------ connecting, errors */

static void on_signal(int sig) {
	interrupted = sig;
}

/* SIGINT/SIGTERM interrupt a wait (poll returns EINTR) instead of killing us,
 * so a live line can be cleared and the request id printed. */
static void catch_signals(void) {
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static const char *start_hint(const Ctl *ctl, char *buf, size_t size) {
	if (ctl->instance_path && ctl->path == ctl->instance_path)
		snprintf(buf, size, "Start it with 'systemctl start hitld@%s.socket'", ctl->instance);
	else
		snprintf(buf, size, "Start it with 'systemctl start hitld.socket'");
	return buf;
}

static int report_connect_error(const Ctl *ctl, int r) {
	char hint[128];

	switch (r) {
	case -ENOENT:
		errorf("cannot connect to %s: no such socket — is hitld running? %s, or point hitlctl elsewhere with --socket PATH or HITLD_SOCKET.",
		       ctl->path, start_hint(ctl, hint, sizeof hint));
		break;
	case -EACCES:
	case -EPERM:
		errorf("cannot connect to %s: permission denied — is your user in group hitl? (sudo usermod -aG hitl $USER, then log in again)",
		       ctl->path);
		break;
	case -ECONNREFUSED:
		errorf("cannot connect to %s: connection refused — nothing is listening there, hitld is not running. Check 'systemctl status hitld'; %s.",
		       ctl->path, start_hint(ctl, hint, sizeof hint));
		break;
	case -ENAMETOOLONG:
		errorf("cannot connect to %s: the path is too long for a Unix socket (at most 107 bytes).", ctl->path);
		break;
	case -ENOTDIR:
		errorf("cannot connect to %s: a directory in that path is not a directory.", ctl->path);
		break;
	default:
		errorf("cannot connect to %s: %s", ctl->path, strerror(-r));
	}
	return EXIT_UNREACHABLE;
}

static int ctl_connect(Ctl *ctl) {
	int r;

	ctl->client = hitl_client_free(ctl->client);
	r = hitl_client_connect(ctl->path, &ctl->client);
	if (r < 0)
		return report_connect_error(ctl, r);
	hitl_client_set_max_message(ctl->client, CTL_MAX_MESSAGE);
	return 0;
}

static bool is_connection_loss(int r) {
	return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN || r == -ESHUTDOWN;
}

/* Where build_submit_params() took each field from: a flag, --config or
 * --params. An error on a field is blamed on what set it, not on the flag that
 * usually sets it (max_length from --config is not --max's fault). */
#define ORIGINS_MAX 64
static struct {
	char field[64];
	const char *flag;
} origins[ORIGINS_MAX];
static size_t n_origins;

static void origin_set(const char *field, const char *flag) {
	for (size_t i = 0; i < n_origins; i++)
		if (streq(origins[i].field, field)) {
			origins[i].flag = flag;
			return;
		}
	if (n_origins < ORIGINS_MAX && strlen(field) < sizeof origins[0].field) {
		snprintf(origins[n_origins].field, sizeof origins[0].field, "%s", field);
		origins[n_origins++].flag = flag;
	}
}

static void origin_set_config(const char *key, const char *flag) {
	char field[64];

	snprintf(field, sizeof field, "response_config.%s", key);
	origin_set(field, flag);
}

/* The origin recorded for the longest leading part of field ("response_config"
 * covers "response_config.options[2].value"). */
static const char *origin_of(const char *field) {
	const char *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < n_origins; i++) {
		size_t n = strlen(origins[i].field);

		/* strchr() finds the terminator too: an exact match counts. */
		if (n > best_len && strncmp(field, origins[i].field, n) == 0 && strchr(".[", field[n])) {
			best = origins[i].flag;
			best_len = n;
		}
	}
	return best;
}

/* Maps a field the daemon named in -32602 to the flag that sets it. */
static const char *flag_for_field(const char *field) {
	static const struct {
		const char *prefix, *flag;
	} map[] = {
		{ "loop_id", "--loop" },
		{ "request_text", "--text" },
		{ "response_type", "--type" },
		{ "response_config.options", "--option" },
		{ "response_config.max_selections", "--max" },
		{ "response_config.min_selections", "--min" },
		{ "response_config.max_length", "--max" },
		{ "response_config.min_length", "--min" },
		{ "response_config.scale_max", "--max" },
		{ "response_config.scale_min", "--min" },
		{ "response_config.scale_step", "--step" },
		{ "response_config.max_value", "--max" },
		{ "response_config.min_value", "--min" },
		{ "response_config.decimal_places", "--decimals" },
		{ "response_config.placeholder", "--placeholder" },
		{ "response_config.prefix", "--prefix" },
		{ "response_config.suffix", "--suffix" },
		{ "response_config", "--config" },
		{ "default_response", "--default" },
		{ "priority", "--priority" },
		{ "processing_type", "--deferred" },
		{ "timeout_seconds", "--timeout" },
		{ "context", "--context" },
		{ "image_url", "--image-url" },
		{ "file_url", "--file-url" },
		{ "file_type", "--file-type" },
		{ "file_name", "--file-name" },
		{ "video_url", "--video-url" },
		{ "audio_url", "--audio-url" },
		{ "type", "--content" },
		{ "response_config.draft_text", "--draft-text" },
		{ "response_config.true_label", "--true-label" },
		{ "response_config.false_label", "--false-label" },
		{ "callback_url", "--callback-url" },
		{ "client_ref", "--ref" },
		{ "feedback.rating", "--rating" },
		{ "feedback.comment", "--comment" },
		{ "feedback.accuracy", "--accuracy" },
		{ "feedback.timeliness", "--timeliness" },
		{ "feedback.helpfulness", "--helpfulness" },
		{ "feedback.category", "--category" },
		{ "feedback.tags", "--tag" },
		{ "feedback.would_recommend", "--would-recommend" },
		{ "feedback.follow_up_needed", "--follow-up" },
		{ "feedback", "--rating/--comment" },
		{ "name", "--name" },
		{ "description", "--description" },
		{ "icon", "--icon" },
		{ "state", "--state" },
		{ "timeout_ms", "--timeout" },
		{ "data", "--data" },
	};

	const char *origin;

	if (!field)
		return NULL;
	origin = origin_of(field);
	if (origin)
		return origin;
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (strncmp(field, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].flag;
	return NULL;
}

/* Reports a failed call (transport or daemon error) and returns the exit code. */
static int report_call_error(Ctl *ctl, int r, const char *what) {
	HitlError *e = &ctl->error;
	json_object *data = e->data;
	char when[96];

	if (r == -EINTR)
		return EXIT_INTERRUPTED;
	if (r != -EREMOTEIO) {
		if (is_connection_loss(r))
			errorf("%s: hitld closed the connection (stopped or restarted?) — check 'systemctl status hitld' and try again.",
			       what);
		else if (r == -ETIMEDOUT)
			errorf("%s: hitld did not answer in time — it may be overloaded or stuck; check 'systemctl status hitld'.",
			       what);
		else if (r == -EBADMSG)
			errorf("%s: the reply was not hitld's protocol — is %s really hitld's socket?", what, ctl->path);
		else if (r == -EMSGSIZE)
			errorf("%s: a message was larger than the %zu bytes hitlctl accepts.", what, CTL_MAX_MESSAGE);
		else
			errorf("%s: %s", what, strerror(-r));
		return EXIT_UNREACHABLE;
	}

	if (ctl->json) {
		_cleanup_(json_object_putp) json_object *o = json_object_new_object(), *err = json_object_new_object();

		json_object_object_add(err, "code", json_object_new_int(e->code));
		json_object_object_add(err, "message", e->message ? json_object_new_string(e->message) : NULL);
		json_object_object_add(err, "data", json_object_get(data));
		json_object_object_add(o, "error", json_object_get(err));
		print_json(o);
	}

	switch (e->code) {
	case HITL_ERROR_INVALID_PARAMS: {
		const char *field = jstr(data, "field"), *reason = jstr(data, "reason"), *flag = flag_for_field(field);

		if (field && streq(field, "timeout_seconds"))
			errorf("%s: %s (%s; HITL.sh allows 60s-1d; for longer, give --deferred without --timeout: "
			       "HITL.sh then waits up to 30 days).", what, reason ? reason : "invalid timeout", flag);
		else if (field && flag)
			errorf("%s: %s (set with %s; see 'hitlctl %s --help').", what, reason ? reason : "invalid value",
			       flag, ctl->verb);
		else
			errorf("%s: invalid %s: %s", what, field ? field : "parameters",
			       reason ? reason : strna(e->message));
		return EXIT_USAGE;
	}
	case HITL_ERROR_NOT_FOUND:
		errorf("%s: no such request (or it is another user's) — 'hitlctl list --all' shows yours.", what);
		return EXIT_NOT_FOUND;
	case HITL_ERROR_PERMISSION:
		errorf("%s: permission denied (%s) — run it as root or as a member of hitld's admin group (socket.admin_group).",
		       what, strna(e->message));
		return EXIT_NOT_FOUND;
	case HITL_ERROR_QUOTA: {
		int64_t limit = 0;

		if (jint(data, "limit", &limit))
			errorf("%s: %s — at most %" PRId64 " open requests; wait for some to finish or cancel some ('hitlctl list').",
			       what, strna(e->message), limit);
		else
			errorf("%s: %s — wait for some requests to finish or cancel some.", what, strna(e->message));
		return EXIT_REMOTE;
	}
	case HITL_ERROR_BUDGET:
		if (format_when(jstr(data, "retry_at"), when, sizeof when))
			errorf("%s: no HITL.sh API budget left until %s — try again then ('hitlctl status' shows the budget).",
			       what, when);
		else
			errorf("%s: no HITL.sh API budget left — see 'hitlctl status'.", what);
		return EXIT_REMOTE;
	case HITL_ERROR_REMOTE: {
		int64_t http = 0;
		json_object *inner = json_object_object_get(data, "data");

		jint(data, "http_status", &http);
		if (http == 404) {
			/* HITL.sh has no such loop (or member): "not found", like a request. */
			errorf("%s: not found at HITL.sh (HTTP 404): %s — 'hitlctl loops list' shows the loops this key sees.",
			       what, jstr(data, "msg") ? jstr(data, "msg") : strna(e->message));
			return EXIT_NOT_FOUND;
		}
		if (inner && json_object_is_type(inner, json_type_string))
			errorf("%s: HITL.sh refused it (HTTP %" PRId64 "): %s: %s", what, http,
			       jstr(data, "msg") ? jstr(data, "msg") : strna(e->message), json_object_get_string(inner));
		else
			errorf("%s: HITL.sh refused it (HTTP %" PRId64 "): %s", what, http,
			       jstr(data, "msg") ? jstr(data, "msg") : strna(e->message));
		return EXIT_REMOTE;
	}
	case HITL_ERROR_UNAVAILABLE:
		errorf("%s: %s — HITL.sh cannot be used right now; check 'hitlctl status', 'hitlctl key test' and 'journalctl -u hitld'.",
		       what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_STORAGE:
		errorf("%s: %s — hitld could not write its state directory (disk full?); nothing was changed.", what,
		       strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_SHUTTING_DOWN:
		errorf("%s: hitld is shutting down — try again in a moment.", what);
		return EXIT_REMOTE;
	case HITL_ERROR_CONFLICT:
		errorf("%s: %s — pick another --ref, or submit exactly the same request again.", what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_INVALID_STATE:
		errorf("%s: %s", what, strna(e->message));
		return EXIT_REMOTE;
	case HITL_ERROR_METHOD_NOT_FOUND:
		errorf("%s: this hitld does not know the method — is it older than hitlctl %s?", what, HITLD_VERSION);
		return EXIT_REMOTE;
	default:
		errorf("%s: hitld: %s (%d)", what, strna(e->message), e->code);
		return EXIT_REMOTE;
	}
}

/* One call on the connection; on failure the error is reported and *ret_exit set. */
static int ctl_call(Ctl *ctl, const char *method, json_object *params, json_object **ret_result, const char *what) {
	int r;

	r = hitl_client_call(ctl->client, method, params, ret_result, &ctl->error);
	if (r < 0)
		return report_call_error(ctl, r, what);
	return 0;
}

/* ------------------------------------------------------------------ input helpers */

static int read_bounded(const char *path, size_t max, char **ret, size_t *ret_len) {
	_cleanup_(fclosep) FILE *f = NULL;
	_cleanup_(freep) char *buf = NULL;
	size_t len = 0, size = 0;
	FILE *in = stdin;

	if (!streq(path, "-")) {
		f = fopen(path, "re");
		if (!f)
			return negative_errno();
		in = f;
	}
	for (;;) {
		size_t n;

		if (size - len < 4096) {
			char *b;

			size = size ? size * 2 : 8192;
			b = realloc(buf, size + 1);
			if (!b)
				return -ENOMEM;
			buf = b;
		}
		n = fread(buf + len, 1, size - len, in);
		len += n;
		if (len > max)
			return -EFBIG;
		if (n == 0) {
			if (ferror(in))
				return -EIO;
			break;
		}
	}
	buf[len] = 0;
	if (memchr(buf, 0, len))
		return -EBADMSG;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

static json_object *parse_json_text(const char *text) {
	enum json_tokener_error jerr;
	json_object *j = json_tokener_parse_verbose(text, &jerr);

	return jerr == json_tokener_success ? j : NULL;
}

/* A number as JSON: an integer when it is one, else a double; NULL if not a number. */
static json_object *parse_number(const char *s) {
	char *end;
	long long i;
	double d;

	errno = 0;
	i = strtoll(s, &end, 10);
	if (*s && !*end && errno == 0)
		return json_object_new_int64(i);
	errno = 0;
	d = strtod(s, &end);
	if (*s && !*end && errno == 0 && isfinite(d))
		return json_object_new_double(d);
	return NULL;
}

static int parse_bool_word(const char *s, bool *ret) {
	static const char *const yes[] = { "yes", "y", "true", "1", "on" }, *const no[] = { "no", "n", "false", "0", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(no); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	return -EINVAL;
}

static int strv_push(char ***v, size_t *n, const char *s) {
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	nv[++*n] = NULL;
	return 0;
}

static void strv_free(char **v) {
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* ------------------------------------------------------------------ common options */

enum {
	OPT_JSON = 1000,
	OPT_SOCKET,
	OPT_INSTANCE,
	OPT_HELP,
	/* submit / ask */
	OPT_LOOP,
	OPT_TEXT,
	OPT_TEXT_FILE,
	OPT_TYPE,
	OPT_OPTION,
	OPT_MIN,
	OPT_MAX,
	OPT_STEP,
	OPT_DECIMALS,
	OPT_PLACEHOLDER,
	OPT_PREFIX,
	OPT_SUFFIX,
	OPT_ALLOW_NEGATIVE,
	OPT_REQUIRED,
	OPT_CONFIG,
	OPT_DEFAULT,
	OPT_PRIORITY,
	OPT_TIMEOUT,
	OPT_DEFERRED,
	OPT_CONTEXT,
	OPT_IMAGE_URL,
	OPT_CONTENT,
	OPT_FILE_URL,
	OPT_FILE_TYPE,
	OPT_FILE_NAME,
	OPT_VIDEO_URL,
	OPT_AUDIO_URL,
	OPT_DRAFT_TEXT,
	OPT_MAX_LENGTH,
	OPT_TRUE_LABEL,
	OPT_FALSE_LABEL,
	OPT_CALLBACK_URL,
	OPT_REF,
	OPT_PARAMS,
	OPT_EXPECT,
	/* list */
	OPT_STATE,
	OPT_ALL,
	OPT_LIMIT,
	OPT_USER,
	OPT_QUIET,
	/* feedback */
	OPT_RATING,
	OPT_COMMENT,
	OPT_ACCURACY,
	OPT_TIMELINESS,
	OPT_HELPFULNESS,
	OPT_RECOMMEND,
	OPT_FOLLOW_UP,
	OPT_TAG,
	OPT_CATEGORY,
	/* loops */
	OPT_NAME,
	OPT_DESCRIPTION,
	OPT_ICON,
	OPT_YES,
	/* trigger */
	OPT_DATA,
	OPT_DATA_FILE,
	OPT_NO_WAIT,
};

#define COMMON_OPTIONS                                              \
	{ "json", no_argument, NULL, OPT_JSON },                    \
	{ "socket", required_argument, NULL, OPT_SOCKET },          \
	{ "instance", required_argument, NULL, OPT_INSTANCE },      \
	{ "help", no_argument, NULL, OPT_HELP }

typedef struct Verb Verb;
static void verb_help(const Verb *v, FILE *f);
static const Verb *verb_find(const char *name);

/* Handles a common option; returns 1 if it was one, 0 if not, <0 exit code negated. */
static int common_option(Ctl *ctl, int opt, const char *arg) {
	switch (opt) {
	case OPT_JSON:
		ctl->json = true;
		return 1;
	case OPT_SOCKET:
		ctl->socket_arg = arg;
		return 1;
	case OPT_INSTANCE: {
		char *p = NULL;

		if (hitl_socket_path_for_instance(arg, &p) < 0)
			return -usage_error("--instance %s: an instance name is 1-%d characters of letters, digits and _.:@- (e.g. --instance prod for hitld@prod.service)",
			                    arg, HITL_INSTANCE_NAME_MAX);
		free(ctl->instance_path);
		ctl->instance_path = p;
		ctl->instance = arg;
		return 1;
	}
	case OPT_HELP:
		verb_help(verb_find(ctl->verb), stdout);
		return -256; /* "exit 0 now" */
	default:
		return 0;
	}
}

/* Precedence: --socket > --instance > HITLD_SOCKET > /run/hitld.sock. */
static void resolve_path(Ctl *ctl) {
	if (ctl->socket_arg && ctl->socket_arg[0])
		ctl->path = ctl->socket_arg;
	else if (ctl->instance_path)
		ctl->path = ctl->instance_path;
	else
		ctl->path = hitl_socket_path(NULL);
}

/* getopt_long over a verb's arguments; unknown options are usage errors.
 * Calls handle(opt, optarg) for verb options. Returns 0, or an exit code
 * (-1 means "help printed, exit 0"). */
typedef int (*option_handler_t)(Ctl *ctl, int opt, const char *arg, void *userdata);

static int parse_options(Ctl *ctl, int argc, char **argv, const char *shortopts, const struct option *longopts,
                         option_handler_t handle, void *userdata) {
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		int k;

		if (opt == '?' || opt == ':') {
			if (optopt && optopt < 256 && optopt != '?')
				return usage_error("%s: unknown or incomplete option -%c — see 'hitlctl %s --help'.", ctl->verb,
				                   optopt, ctl->verb);
			return usage_error("%s: unknown option or missing value in '%s' — see 'hitlctl %s --help'.", ctl->verb,
			                   argv[optind - 1], ctl->verb);
		}
		k = common_option(ctl, opt, optarg);
		if (k == -256)
			return -1;
		if (k < 0)
			return -k;
		if (k > 0)
			continue;
		k = handle ? handle(ctl, opt, optarg, userdata) : EXIT_USAGE;
		if (k != 0)
			return k;
	}
	resolve_path(ctl);
	return 0;
}

/* ------------------------------------------------------------------ status */

static const char *const state_names[] = { "queued", "submitting", "pending", "completed",
	                                   "timeout", "cancelled", "failed" };

static int verb_status(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *st = NULL, *hello = NULL;
	json_object *budget, *queue, *api, *key;
	char a[96], b[96], c[96];
	int64_t used = 0, limit = 0, remaining = 0, uptime = 0;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc)
		return usage_error("status takes no arguments.");
	k = ctl_connect(ctl);
	if (k)
		return k;
	k = ctl_call(ctl, "status", NULL, &st, "status");
	if (k)
		return k;
	if (ctl->json) {
		print_json(st);
		return 0;
	}
	(void) hitl_hello(ctl->client, "hitlctl/" HITLD_VERSION, &hello, NULL);

	budget = json_object_object_get(st, "budget");
	queue = json_object_object_get(st, "queue");
	api = json_object_object_get(st, "api");
	key = json_object_object_get(st, "key");
	jint(budget, "used", &used);
	jint(budget, "limit", &limit);
	jint(budget, "remaining", &remaining);
	jint(st, "uptime_s", &uptime);

	printf("%-9s hitld %s, up %s, socket %s\n", "Daemon:", strna(jstr(st, "version")),
	       format_duration((uint64_t) (uptime > 0 ? uptime : 0), a, sizeof a), ctl->path);
	/* The count is hitld's own ledger: HITL.sh's last report plus the calls
	 * hitld made since (and it cannot see other users of the key). Only the
	 * window and the limit can be as HITL.sh reported them. */
	printf("%-9s %" PRId64 "/%" PRId64 " calls used this hour, %" PRId64 " left (estimated)", "Budget:", used,
	       limit, remaining);
	if (format_when(jstr(budget, "reset_at"), b, sizeof b))
		printf("; resets %s", b);
	printf(" [%s]\n", streq_ptr(jstr(budget, "source"), "server") ? "window and limit as HITL.sh reported"
	                                                               : "nothing heard from HITL.sh yet");
	if (format_when(jstr(budget, "paused_until"), b, sizeof b))
		printf("%-9s HITL.sh rate-limited this key: no calls until %s\n", "", b);

	printf("%-9s%s", "Queue:", jbool(hello, "admin") || !hello ? "" : " (your requests)");
	for (size_t i = 0; i < ELEMENTSOF(state_names); i++) {
		int64_t n = 0;

		jint(queue, state_names[i], &n);
		printf(" %s %" PRId64 "%s", state_names[i], n, i + 1 < ELEMENTSOF(state_names) ? "," : "\n");
	}
	if (format_ago(jstr(queue, "oldest_queued_at"), b, sizeof b))
		printf("%-9s oldest queued request waiting since %s\n", "", b);

	if (jbool(api, "reachable"))
		printf("%-9s reachable (last answer %s) at %s\n", "HITL.sh:",
		       format_ago(jstr(api, "last_ok_at"), b, sizeof b) ? b : "recently", strna(jstr(api, "base_url")));
	else if (!jstr(api, "last_ok_at") && !jstr(api, "last_error"))
		printf("%-9s not contacted yet (no calls needed so far) at %s\n", "HITL.sh:", strna(jstr(api, "base_url")));
	else
		printf("%-9s UNREACHABLE: %s (last answer %s) at %s\n", "HITL.sh:", strna(jstr(api, "last_error")),
		       format_ago(jstr(api, "last_ok_at"), b, sizeof b) ? b : "never", strna(jstr(api, "base_url")));

	if (!jbool(key, "loaded"))
		printf("%-9s MISSING — give hitld a key (LoadCredential=hitl-api-key, api.key_file or HITL_API_KEY), then 'hitlctl reload'\n",
		       "Key:");
	else {
		json_object *valid = json_object_object_get(key, "valid");

		if (!valid)
			snprintf(c, sizeof c, "loaded, not checked yet ('hitlctl key test' checks it)");
		else if (json_object_get_boolean(valid))
			snprintf(c, sizeof c, "valid%s%s%s", jstr(key, "api_key_id") ? " (id " : "",
			         jstr(key, "api_key_id") ? jstr(key, "api_key_id") : "", jstr(key, "api_key_id") ? ")" : "");
		else
			snprintf(c, sizeof c, "REFUSED by HITL.sh%s%s — replace it and run 'hitlctl reload'",
			         jstr(key, "error") ? ": " : "", jstr(key, "error") ? jstr(key, "error") : "");
		printf("%-9s %s\n", "Key:", c);
	}
	printf("%-9s %s\n", "Paused:",
	       jbool(st, "paused") ? "YES — no HITL.sh calls until 'hitlctl resume'" : "no");
	return 0;
}

/* ------------------------------------------------------------------ submit / ask */

typedef struct SubmitOpts {
	const char *loop, *text, *text_file, *type, *default_value, *priority, *timeout, *context, *image_url,
		*callback_url, *ref, *params_file, *config, *placeholder, *prefix, *suffix, *min, *max, *step,
		*decimals, *expect, *content, *file_url, *file_type, *file_name, *video_url, *audio_url, *draft_text,
		*max_length, *true_label, *false_label;
	char **options;
	size_t n_options;
	bool deferred, required, allow_negative;
	bool ask;
} SubmitOpts;

static int submit_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	SubmitOpts *o = userdata;

	switch (opt) {
	case 'l': case OPT_LOOP: o->loop = arg; break;
	case 't': case OPT_TEXT: o->text = arg; break;
	case OPT_TEXT_FILE: o->text_file = arg; break;
	case OPT_TYPE: o->type = arg; break;
	case 'o': case OPT_OPTION:
		if (strv_push(&o->options, &o->n_options, arg) < 0)
			return usage_error("out of memory");
		break;
	case OPT_MIN: o->min = arg; break;
	case OPT_MAX: o->max = arg; break;
	case OPT_STEP: o->step = arg; break;
	case OPT_DECIMALS: o->decimals = arg; break;
	case OPT_PLACEHOLDER: o->placeholder = arg; break;
	case OPT_PREFIX: o->prefix = arg; break;
	case OPT_SUFFIX: o->suffix = arg; break;
	case OPT_ALLOW_NEGATIVE: o->allow_negative = true; break;
	case OPT_REQUIRED: o->required = true; break;
	case OPT_CONFIG: o->config = arg; break;
	case 'd': case OPT_DEFAULT: o->default_value = arg; break;
	case 'p': case OPT_PRIORITY: o->priority = arg; break;
	case OPT_TIMEOUT: o->timeout = arg; break;
	case OPT_DEFERRED: o->deferred = true; break;
	case OPT_CONTEXT: o->context = arg; break;
	case OPT_IMAGE_URL: o->image_url = arg; break;
	case OPT_CONTENT: o->content = arg; break;
	case OPT_FILE_URL: o->file_url = arg; break;
	case OPT_FILE_TYPE: o->file_type = arg; break;
	case OPT_FILE_NAME: o->file_name = arg; break;
	case OPT_VIDEO_URL: o->video_url = arg; break;
	case OPT_AUDIO_URL: o->audio_url = arg; break;
	case OPT_DRAFT_TEXT: o->draft_text = arg; break;
	case OPT_MAX_LENGTH: o->max_length = arg; break;
	case OPT_TRUE_LABEL: o->true_label = arg; break;
	case OPT_FALSE_LABEL: o->false_label = arg; break;
	case OPT_CALLBACK_URL: o->callback_url = arg; break;
	case OPT_REF: o->ref = arg; break;
	case OPT_PARAMS: o->params_file = arg; break;
	case 'e': case OPT_EXPECT:
		if (!o->ask)
			return usage_error("--expect is for 'hitlctl ask'.");
		o->expect = arg;
		break;
	default:
		return usage_error("%s: unexpected option — see 'hitlctl %s --help'.", ctl->verb, ctl->verb);
	}
	return 0;
}

/* The canonical response type for what a user typed ("single-select" too). */
static const char *canonical_type(const char *s) {
	static const struct {
		const char *alias, *name;
	} types[] = {
		{ "single_select", "single_select" }, { "single-select", "single_select" }, { "select", "single_select" },
		{ "multi_select", "multi_select" },   { "multi-select", "multi_select" },   { "multi", "multi_select" },
		{ "rating", "rating" },               { "number", "number" },               { "text", "text" },
		{ "boolean", "boolean" },
		{ "editable_text", "editable_text" }, { "editable-text", "editable_text" }, { "editable", "editable_text" },
	};

	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if (strcasecmp(s, types[i].alias) == 0)
			return types[i].name;
	return NULL;
}

static int set_number(json_object *config, const char *key, const char *flag, const char *value) {
	json_object *n = parse_number(value);

	if (!n)
		return usage_error("%s %s: not a number.", flag, value);
	json_object_object_add(config, key, n);
	origin_set_config(key, flag);
	return 0;
}

static int set_integer(json_object *config, const char *key, const char *flag, const char *value) {
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (!*value || *end || errno)
		return usage_error("%s %s: not a whole number.", flag, value);
	json_object_object_add(config, key, json_object_new_int64(v));
	origin_set_config(key, flag);
	return 0;
}

/* --min/--max/--step/--decimals/--placeholder/--prefix/--suffix/--allow-negative for this type. */
static int apply_range_flags(const SubmitOpts *o, const char *type, json_object *config) {
	bool rating = streq(type, "rating"), number = streq(type, "number"), text = streq(type, "text"),
	     multi = streq(type, "multi_select"), editable = streq(type, "editable_text"),
	     boolean = streq(type, "boolean");
	int k = 0;

	if (o->max_length && !(text || editable))
		return usage_error("--max-length applies to --type text and editable_text only.");
	if (o->draft_text && !editable)
		return usage_error("--draft-text applies to --type editable_text only.");
	if ((o->true_label || o->false_label) && !boolean)
		return usage_error("--true-label and --false-label apply to --type boolean only.");
	if (o->max_length)
		k = set_integer(config, "max_length", "--max-length", o->max_length);
	if (k)
		return k;
	static const struct {
		size_t offset;
		const char *key, *flag;
	} strings[] = {
		{ offsetof(SubmitOpts, draft_text), "draft_text", "--draft-text" },
		{ offsetof(SubmitOpts, true_label), "true_label", "--true-label" },
		{ offsetof(SubmitOpts, false_label), "false_label", "--false-label" },
	};
	for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
		const char *v = *(const char *const *) ((const char *) o + strings[i].offset);

		if (v) {
			json_object_object_add(config, strings[i].key, json_object_new_string(v));
			origin_set_config(strings[i].key, strings[i].flag);
		}
	}

	if ((o->min || o->max) && !(rating || number || text || multi))
		return usage_error("--min/--max apply to rating, number, text and multi_select, not %s.", type);
	if (o->step && !rating)
		return usage_error("--step applies to --type rating only.");
	if ((o->decimals || o->prefix || o->suffix || o->allow_negative) && !number)
		return usage_error("--decimals, --prefix, --suffix and --allow-negative apply to --type number only.");
	if (o->placeholder && !(text || number))
		return usage_error("--placeholder applies to --type text and number only.");

	if (rating) {
		if (o->min)
			k = set_number(config, "scale_min", "--min", o->min);
		if (k == 0 && o->max)
			k = set_number(config, "scale_max", "--max", o->max);
		if (k == 0 && o->step)
			k = set_number(config, "scale_step", "--step", o->step);
		/* A rating with no scale given: the usual 1–5. */
		if (k == 0 && !json_object_object_get_ex(config, "scale_max", NULL) &&
		    !json_object_object_get_ex(config, "max", NULL) && !json_object_object_get_ex(config, "max_value", NULL))
			json_object_object_add(config, "scale_max", json_object_new_int(5));
	} else if (number) {
		if (o->min)
			k = set_number(config, "min_value", "--min", o->min);
		if (k == 0 && o->max)
			k = set_number(config, "max_value", "--max", o->max);
		if (k == 0 && o->decimals)
			k = set_integer(config, "decimal_places", "--decimals", o->decimals);
	} else if (text) {
		if (o->min)
			k = set_integer(config, "min_length", "--min", o->min);
		if (k == 0 && o->max)
			k = set_integer(config, "max_length", "--max", o->max);
	} else if (multi) {
		if (o->min)
			k = set_integer(config, "min_selections", "--min", o->min);
		if (k == 0 && o->max)
			k = set_integer(config, "max_selections", "--max", o->max);
	}
	if (k)
		return k;
	if (o->placeholder) {
		json_object_object_add(config, "placeholder", json_object_new_string(o->placeholder));
		origin_set_config("placeholder", "--placeholder");
	}
	if (o->prefix) {
		json_object_object_add(config, "prefix", json_object_new_string(o->prefix));
		origin_set_config("prefix", "--prefix");
	}
	if (o->suffix) {
		json_object_object_add(config, "suffix", json_object_new_string(o->suffix));
		origin_set_config("suffix", "--suffix");
	}
	if (o->allow_negative) {
		json_object_object_add(config, "allow_negative", json_object_new_boolean(true));
		origin_set_config("allow_negative", "--allow-negative");
	}
	if (o->required) {
		json_object_object_add(config, "required", json_object_new_boolean(true));
		origin_set_config("required", "--required");
	}
	return 0;
}

/* --default VALUE as the JSON the type wants. */
static int parse_default(const char *type, const char *value, json_object **ret) {
	json_object *v = NULL;

	if (streq(type, "single_select") || streq(type, "text") || streq(type, "editable_text"))
		v = json_object_new_string(value);
	else if (streq(type, "multi_select")) {
		if (value[0] == '[') {
			v = parse_json_text(value);
			if (!v || !json_object_is_type(v, json_type_array)) {
				json_object_put(v);
				return usage_error("--default %s: not a JSON array of option values.", value);
			}
		} else {
			_cleanup_(freep) char *copy = strdup(value);
			char *save = NULL;

			v = json_object_new_array();
			if (!copy || !v) {
				json_object_put(v);
				return usage_error("out of memory");
			}
			for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				json_object_array_add(v, json_object_new_string(tok));
		}
	} else if (streq(type, "rating") || streq(type, "number")) {
		v = parse_number(value);
		if (!v)
			return usage_error("--default %s: a %s request needs a number.", value, type);
	} else if (streq(type, "boolean")) {
		bool b;

		if (parse_bool_word(value, &b) < 0)
			return usage_error("--default %s: a boolean request needs true or false.", value);
		v = json_object_new_boolean(b);
	} else
		v = json_object_new_string(value);
	*ret = v;
	return 0;
}

static int read_text_arg(const char *path, char **ret) {
	_cleanup_(freep) char *text = NULL;
	size_t len;
	int k;

	k = read_bounded(path, USER_INPUT_MAX, &text, &len);
	if (k == -EFBIG)
		return usage_error("%s: the request text is too long (HITL.sh allows 2000 characters).",
		                   streq(path, "-") ? "stdin" : path);
	if (k < 0)
		return usage_error("cannot read the request text from %s: %s", streq(path, "-") ? "stdin" : path,
		                   strerror(-k));
	/* A file usually ends in a newline the author did not mean as text. */
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = 0;
	*ret = TAKE_PTR(text);
	return 0;
}

/* --content and the content flags: each URL flag names its type (--image-url
 * an image request, …); --content says it outright and must agree. */
static int apply_content_flags(const SubmitOpts *o, json_object *p) {
	const struct {
		const char *value, *field, *flag, *type;
	} flags[] = {
		{ o->image_url, "image_url", "--image-url", "image" },
		{ o->file_url, "file_url", "--file-url", "file" },
		{ o->file_type, "file_type", "--file-type", "file" },
		{ o->file_name, "file_name", "--file-name", "file" },
		{ o->video_url, "video_url", "--video-url", "video" },
		{ o->audio_url, "audio_url", "--audio-url", "audio" },
	};
	static const char *const types[] = { "markdown", "image", "file", "video", "audio" };
	const char *type = NULL, *type_flag = NULL;

	if (o->content) {
		for (size_t i = 0; i < ELEMENTSOF(types); i++)
			if (strcasecmp(o->content, types[i]) == 0)
				type = types[i];
		if (!type)
			return usage_error("--content %s: not a content type (markdown, image, file, video, audio).",
			                   o->content);
		type_flag = "--content";
	}
	for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
		if (!flags[i].value)
			continue;
		if (type && !streq(type, flags[i].type))
			return usage_error("%s is for %s requests, but %s makes this one %s.", flags[i].flag, flags[i].type,
			                   type_flag, type);
		if (!type) {
			type = flags[i].type;
			type_flag = flags[i].flag;
		}
		json_object_object_add(p, flags[i].field, json_object_new_string(flags[i].value));
		origin_set(flags[i].field, flags[i].flag);
	}
	if (type) {
		json_object_object_add(p, "type", json_object_new_string(type));
		origin_set("type", type_flag);
	}
	return 0;
}

/* Builds the request.submit params from the flags (and --params). */
static int build_submit_params(const SubmitOpts *o, char **args, int n_args, json_object **ret) {
	_cleanup_(json_object_putp) json_object *p = NULL, *config = NULL;
	_cleanup_(freep) char *text = NULL;
	json_object *v;
	const char *type;
	int sources = !!o->text + !!o->text_file + (n_args > 0), k;

	if (o->params_file) {
		_cleanup_(freep) char *raw = NULL;

		k = read_bounded(o->params_file, USER_INPUT_MAX, &raw, NULL);
		if (k < 0)
			return usage_error("--params %s: %s", o->params_file,
			                   k == -EFBIG ? "larger than 1 MiB" : strerror(-k));
		p = parse_json_text(raw);
		if (!p || !json_object_is_type(p, json_type_object))
			return usage_error("--params %s: not a JSON object of request.submit fields.", o->params_file);
		json_object_object_foreach(p, pkey, pval) {
			(void) pval;
			origin_set(pkey, "--params");
		}
	} else
		p = json_object_new_object();
	if (!p)
		return usage_error("out of memory");

	/* The text: one of an argument, --text, --text-file, --params, stdin. */
	if (sources > 1)
		return usage_error("give the request text once: as an argument, --text or --text-file.");
	if (o->text || o->text_file || n_args > 0)
		origin_set("request_text", o->text ? "--text" : o->text_file ? "--text-file" : "TEXT");
	if (o->text)
		json_object_object_add(p, "request_text", json_object_new_string(o->text));
	else if (o->text_file) {
		k = read_text_arg(o->text_file, &text);
		if (k)
			return k;
		json_object_object_add(p, "request_text", json_object_new_string(text));
	} else if (n_args > 0) {
		size_t len = 0;

		for (int i = 0; i < n_args; i++)
			len += strlen(args[i]) + 1;
		text = malloc(len + 1);
		if (!text)
			return usage_error("out of memory");
		text[0] = 0;
		for (int i = 0; i < n_args; i++) {
			if (i)
				strcat(text, " ");
			strcat(text, args[i]);
		}
		json_object_object_add(p, "request_text", json_object_new_string(text));
	} else if (!json_object_object_get_ex(p, "request_text", NULL)) {
		if (isatty(STDIN_FILENO) || (o->params_file && streq(o->params_file, "-")))
			return usage_error("no request text: give it as an argument, with --text or --text-file, or on stdin.");
		k = read_text_arg("-", &text);
		if (k)
			return k;
		if (!text[0])
			return usage_error("no request text: stdin was empty; give the text as an argument, with --text or --text-file.");
		json_object_object_add(p, "request_text", json_object_new_string(text));
	}

	if (o->loop) {
		json_object_object_add(p, "loop_id", json_object_new_string(o->loop));
		origin_set("loop_id", "--loop");
	}
	if (!json_object_object_get_ex(p, "loop_id", NULL))
		return usage_error("no loop: say which loop of reviewers gets the request with --loop ID ('hitlctl loops list' shows them).");

	/* The response type: --type, else single_select when there are options,
	 * else what --params says, else text. */
	if (o->type) {
		type = canonical_type(o->type);
		if (!type)
			return usage_error("--type %s: not a response type (single_select, multi_select, rating, number, text, boolean, editable_text).",
			                   o->type);
	} else if (o->n_options > 0)
		type = "single_select";
	else if (jstr(p, "response_type"))
		type = jstr(p, "response_type");
	else
		type = "text";
	json_object_object_add(p, "response_type", json_object_new_string(type));
	type = jstr(p, "response_type");
	if (o->type)
		origin_set("response_type", "--type");

	v = json_object_object_get(p, "response_config");
	if (v) {
		if (!json_object_is_type(v, json_type_object))
			return usage_error("--params: response_config must be an object.");
		if (json_object_deep_copy(v, &config, NULL) < 0)
			return usage_error("out of memory");
	} else
		config = json_object_new_object();
	if (!config)
		return usage_error("out of memory");
	if (o->config) {
		_cleanup_(json_object_putp) json_object *extra = parse_json_text(o->config);

		if (!extra || !json_object_is_type(extra, json_type_object))
			return usage_error("--config %s: not a JSON object (e.g. '{\"max_length\": 200}').", o->config);
		json_object_object_foreach(extra, key, val) {
			json_object_object_add(config, key, json_object_get(val));
			origin_set_config(key, "--config");
		}
	}
	if (o->n_options > 0) {
		json_object *options;

		if (!streq(type, "single_select") && !streq(type, "multi_select"))
			return usage_error("--option is for --type single_select or multi_select, not %s.", type);
		options = json_object_new_array();
		for (size_t i = 0; i < o->n_options; i++) {
			json_object *opt = json_object_new_object();
			const char *eq = strchr(o->options[i], '=');
			_cleanup_(freep) char *value = eq ? strndup(o->options[i], (size_t) (eq - o->options[i]))
			                                  : strdup(o->options[i]);

			if (!value || !value[0])
				return usage_error("--option %s: the value before '=' is empty.", o->options[i]);
			json_object_object_add(opt, "value", json_object_new_string(value));
			json_object_object_add(opt, "label", json_object_new_string(eq ? eq + 1 : value));
			json_object_array_add(options, opt);
		}
		json_object_object_add(config, "options", options);
		origin_set_config("options", "--option");
	}
	if ((streq(type, "single_select") || streq(type, "multi_select")) &&
	    !json_object_object_get_ex(config, "options", NULL))
		return usage_error("--type %s needs choices: give each with --option VALUE[=Label].", type);
	k = apply_range_flags(o, type, config);
	if (k)
		return k;
	json_object_object_add(p, "response_config", TAKE_PTR(config));

	if (o->default_value) {
		json_object *d = NULL;

		k = parse_default(type, o->default_value, &d);
		if (k)
			return k;
		json_object_object_add(p, "default_response", d);
		origin_set("default_response", "--default");
	} else if (streq(type, "editable_text") && o->draft_text &&
	           !json_object_object_get_ex(p, "default_response", NULL)) {
		/* Nobody edited it: the draft stands. */
		json_object_object_add(p, "default_response", json_object_new_string(o->draft_text));
		origin_set("default_response", "--draft-text");
	}
	if (!json_object_object_get_ex(p, "default_response", NULL))
		return usage_error("--default VALUE is required: the answer used if nobody replies before the deadline (e.g. --default reject%s).",
		                   streq(type, "editable_text") ? "; for editable_text --draft-text also serves" : "");

	if (o->priority) {
		json_object_object_add(p, "priority", json_object_new_string(o->priority));
		origin_set("priority", "--priority");
	}
	if (o->timeout) {
		uint64_t s;

		if (hitl_duration_parse(o->timeout, &s) < 0)
			return usage_error("--timeout %s: not a duration (e.g. 900, 90s, 15m, 2h, 1d).", o->timeout);
		json_object_object_add(p, "timeout_seconds", json_object_new_int64((int64_t) s));
		origin_set("timeout_seconds", "--timeout");
	}
	/* processing_type: --deferred, else time-sensitive when --timeout was
	 * given, else what --params says, else the daemon's default (deferred). */
	if (o->deferred)
		json_object_object_add(p, "processing_type", json_object_new_string("deferred"));
	else if (o->timeout)
		json_object_object_add(p, "processing_type", json_object_new_string("time-sensitive"));
	if (o->context) {
		json_object *ctx = parse_json_text(o->context);

		if (!ctx || !json_object_is_type(ctx, json_type_object)) {
			json_object_put(ctx);
			return usage_error("--context %s: not a JSON object (e.g. '{\"build\": 4812}').", o->context);
		}
		json_object_object_add(p, "context", ctx);
		origin_set("context", "--context");
	}
	k = apply_content_flags(o, p);
	if (k)
		return k;
	if (o->callback_url) {
		json_object_object_add(p, "callback_url", json_object_new_string(o->callback_url));
		origin_set("callback_url", "--callback-url");
	}
	if (o->ref)
		json_object_object_add(p, "client_ref", json_object_new_string(o->ref));

	*ret = TAKE_PTR(p);
	return 0;
}

static const struct option submit_options[] = {
	COMMON_OPTIONS,
	{ "loop", required_argument, NULL, OPT_LOOP },
	{ "text", required_argument, NULL, OPT_TEXT },
	{ "text-file", required_argument, NULL, OPT_TEXT_FILE },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "option", required_argument, NULL, OPT_OPTION },
	{ "min", required_argument, NULL, OPT_MIN },
	{ "max", required_argument, NULL, OPT_MAX },
	{ "step", required_argument, NULL, OPT_STEP },
	{ "decimals", required_argument, NULL, OPT_DECIMALS },
	{ "placeholder", required_argument, NULL, OPT_PLACEHOLDER },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "suffix", required_argument, NULL, OPT_SUFFIX },
	{ "allow-negative", no_argument, NULL, OPT_ALLOW_NEGATIVE },
	{ "required", no_argument, NULL, OPT_REQUIRED },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "default", required_argument, NULL, OPT_DEFAULT },
	{ "priority", required_argument, NULL, OPT_PRIORITY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "deferred", no_argument, NULL, OPT_DEFERRED },
	{ "context", required_argument, NULL, OPT_CONTEXT },
	{ "image-url", required_argument, NULL, OPT_IMAGE_URL },
	{ "content", required_argument, NULL, OPT_CONTENT },
	{ "file-url", required_argument, NULL, OPT_FILE_URL },
	{ "file-type", required_argument, NULL, OPT_FILE_TYPE },
	{ "file-name", required_argument, NULL, OPT_FILE_NAME },
	{ "video-url", required_argument, NULL, OPT_VIDEO_URL },
	{ "audio-url", required_argument, NULL, OPT_AUDIO_URL },
	{ "draft-text", required_argument, NULL, OPT_DRAFT_TEXT },
	{ "max-length", required_argument, NULL, OPT_MAX_LENGTH },
	{ "true-label", required_argument, NULL, OPT_TRUE_LABEL },
	{ "false-label", required_argument, NULL, OPT_FALSE_LABEL },
	{ "callback-url", required_argument, NULL, OPT_CALLBACK_URL },
	{ "ref", required_argument, NULL, OPT_REF },
	{ "params", required_argument, NULL, OPT_PARAMS },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{},
};

static int do_submit(Ctl *ctl, SubmitOpts *o, int argc, char **argv, json_object **ret_submitted) {
	_cleanup_(json_object_putp) json_object *params = NULL, *res = NULL;
	int k;

	k = parse_options(ctl, argc, argv, "l:t:o:d:p:e:", submit_options, submit_option, o);
	if (k)
		return k < 0 ? -1 : k;
	k = build_submit_params(o, argv + optind, argc - optind, &params);
	if (k)
		return k;
	k = ctl_connect(ctl);
	if (k)
		return k;
	k = ctl_call(ctl, "request.submit", params, &res, ctl->verb);
	if (k)
		return k;
	*ret_submitted = TAKE_PTR(res);
	return 0;
}

static int verb_submit(Ctl *ctl, int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *res = NULL;
	SubmitOpts o = {};
	int k;

	k = do_submit(ctl, &o, argc, argv, &res);
	strv_free(o.options);
	if (k)
		return k < 0 ? 0 : k;
	if (ctl->json)
		print_json(res);
	else {
		int64_t pos = 0;

		puts(strna(jstr(res, "id")));
		if (jbool(res, "duplicate"))
			errorf("--ref %s was already used for this same request: that request's id is printed, nothing new was queued.",
			       strna(o.ref));
		else if (ctl->tty_err && jint(res, "position", &pos) && pos > 0)
			fprintf(stderr, "queued, position %" PRId64 "; 'hitlctl wait %s' waits for the answer.\n", pos,
			        strna(jstr(res, "id")));
	}
	return 0;
}

/* --- waiting, with a live line on a terminal */

typedef struct Live {
	bool on;
	bool shown;
	int64_t position;         /* from the submit reply; -1 unknown */
	time_t status_at;
	char budget[96];
} Live;

static void live_clear(Live *l) {
	if (l->shown) {
		fputs("\r\033[K", raw_stderr);
		fflush(raw_stderr);
		l->shown = false;
	}
}

_printf_(3, 4) static void append(char *buf, size_t size, const char *format, ...) {
	size_t used = strnlen(buf, size);
	va_list ap;

	if (used + 1 >= size)
		return;
	va_start(ap, format);
	vsnprintf(buf + used, size - used, format, ap);
	va_end(ap);
}

static void live_update(Ctl *ctl, Live *l, json_object *record) {
	char line[512], when[64], d[32];
	const char *state = jstr(record, "state");
	time_t now = time(NULL), deadline;
	int cols = terminal_columns();

	if (!l->on)
		return;
	if (now - l->status_at >= LIVE_STATUS_EVERY_S) {
		_cleanup_(json_object_putp) json_object *st = NULL;

		l->status_at = now;
		if (hitl_status(ctl->client, &st, NULL) >= 0) {
			json_object *b = json_object_object_get(st, "budget");
			int64_t rem = 0, lim = 0;
			time_t reset;

			jint(b, "remaining", &rem);
			jint(b, "limit", &lim);
			if (jstr(b, "reset_at") && hitl_time_parse(jstr(b, "reset_at"), &reset) >= 0)
				snprintf(l->budget, sizeof l->budget, "budget %" PRId64 "/%" PRId64 " (resets %s)", rem, lim,
				         format_relative(reset, now, when, sizeof when));
			else
				snprintf(l->budget, sizeof l->budget, "budget %" PRId64 "/%" PRId64, rem, lim);
			if (json_object_get_boolean(json_object_object_get(st, "paused")))
				strncat(l->budget, ", queue PAUSED", sizeof l->budget - strlen(l->budget) - 1);
		}
	}

	line[0] = 0;
	append(line, sizeof line, "%s", strna(state));
	if (streq_ptr(state, "queued") && l->position > 0)
		append(line, sizeof line, " (#%" PRId64 " at submit)", l->position);
	if (jbool(record, "cancel_requested"))
		append(line, sizeof line, ", cancelling");
	if (jstr(record, "deadline_at") && hitl_time_parse(jstr(record, "deadline_at"), &deadline) >= 0)
		append(line, sizeof line, " · %s left",
		       format_duration(deadline > now ? (uint64_t) (deadline - now) : 0, d, sizeof d));
	if (l->budget[0])
		append(line, sizeof line, " · %s", l->budget);
	append(line, sizeof line, " · %s", strna(jstr(record, "id")));

	/* Never wrap: a wrapped line cannot be redrawn with \r. */
	{
		_cleanup_(freep) char *cut = shorten(line, (size_t) cols - 1);

		fputs("\r\033[K", raw_stderr);
		fflush(raw_stderr);
		fputs(cut ? cut : line, stderr);
		fflush(stderr);
		l->shown = true;
	}
}

static bool state_is_terminal(const char *s) {
	return streq_ptr(s, "completed") || streq_ptr(s, "timeout") || streq_ptr(s, "cancelled") || streq_ptr(s, "failed");
}

/* Tries to reconnect for a while after hitld went away (restart, socket
 * activation): the request is durable, so waiting can go on. */
static int reconnect(Ctl *ctl, Live *live, time_t *lost_since) {
	live_clear(live);
	if (*lost_since == 0) {
		*lost_since = time(NULL);
		if (ctl->tty_err)
			fprintf(stderr, "hitlctl: lost the connection to hitld; reconnecting…\n");
	} else
		sleep(1); /* connected, then lost again: a daemon still stopping */
	ctl->client = hitl_client_free(ctl->client);
	for (;;) {
		HitlClient *c = NULL;

		if (interrupted)
			return -EINTR;
		if (hitl_client_connect(ctl->path, &c) >= 0) {
			hitl_client_set_max_message(c, CTL_MAX_MESSAGE);
			ctl->client = c;
			return 0;
		}
		if (time(NULL) - *lost_since >= RECONNECT_FOR_S)
			return -ECONNRESET;
		sleep(1);
	}
}

/* The daemon went away (restart, shutdown) rather than refused something. */
static bool daemon_went_away(const Ctl *ctl, int r) {
	return is_connection_loss(r) || (r == -EREMOTEIO && ctl->error.code == HITL_ERROR_SHUTTING_DOWN);
}

static int64_t elapsed_ms_since(const struct timespec *t0) {
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void print_interrupted(const char *id) {
	errorf("interrupted; request %s stays open — 'hitlctl wait %s' waits again, 'hitlctl cancel %s' withdraws it.", id,
	       id, id);
}

/* Waits until the request is final or timeout_s (negative: none) passes.
 * Returns 0 with *ret_wait (the last request.wait result) when final,
 * EXIT_TIMEOUT with *ret_wait when time ran out, or another exit code
 * (reported). */
static int wait_final(Ctl *ctl, const char *id, int64_t timeout_s, Live *live, json_object **ret_wait) {
	_cleanup_(json_object_putp) json_object *last = NULL;
	struct timespec t0;
	time_t lost_since = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	catch_signals();
	for (;;) {
		_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *res = NULL;
		int64_t chunk = live->on ? LIVE_TICK_MS : WAIT_CHUNK_MS;
		struct timespec call_start;
		int r;

		if (timeout_s >= 0) {
			int64_t left_ms = timeout_s * 1000 - elapsed_ms_since(&t0);

			if (left_ms <= 0 && last) {
				live_clear(live);
				*ret_wait = TAKE_PTR(last);
				return EXIT_TIMEOUT;
			}
			if (left_ms < 0)
				left_ms = 0;
			if (left_ms < chunk)
				chunk = left_ms;
		}
		json_object_object_add(params, "id", json_object_new_string(id));
		json_object_object_add(params, "timeout_ms", json_object_new_int64(chunk));
		clock_gettime(CLOCK_MONOTONIC, &call_start);
		r = ctl->client ? hitl_client_call_full(ctl->client, "request.wait", params, (int) chunk, &res, &ctl->error)
		                : -ECONNRESET;
		if (r < 0 && daemon_went_away(ctl, r)) {
			/* The request is durable: wait on once hitld is back. */
			r = reconnect(ctl, live, &lost_since);
			if (r == 0)
				continue;
		}
		if (r == -EINTR || interrupted) {
			live_clear(live);
			print_interrupted(id);
			return EXIT_INTERRUPTED;
		}
		if (r < 0) {
			live_clear(live);
			if (is_connection_loss(r)) {
				errorf("lost the connection to hitld and could not reconnect within %ds; request %s is safe in hitld's outbox — 'hitlctl wait %s' later.",
				       RECONNECT_FOR_S, id, id);
				return EXIT_UNREACHABLE;
			}
			return report_call_error(ctl, r, "wait");
		}
		lost_since = 0;
		json_object_put(last);
		last = TAKE_PTR(res);
		if (jbool(last, "done") || state_is_terminal(jstr(json_object_object_get(last, "request"), "state"))) {
			live_clear(live);
			*ret_wait = TAKE_PTR(last);
			return 0;
		}
		live_update(ctl, live, json_object_object_get(last, "request"));
		/* A daemon that is stopping answers at once without waiting: do not spin. */
		if (chunk > 0 && elapsed_ms_since(&call_start) < (chunk < 1000 ? chunk : 1000) / 2)
			usleep(250 * 1000);
	}
}

/* Does the answer equal what --expect says? Strings compare as text, other
 * values as JSON (numbers by value). */
static bool result_matches(json_object *result, const char *expect) {
	_cleanup_(json_object_putp) json_object *want = NULL;

	if (!result)
		return false;
	if (json_object_is_type(result, json_type_string))
		return streq(json_object_get_string(result), expect);
	if (json_object_is_type(result, json_type_int) || json_object_is_type(result, json_type_double)) {
		char *end;
		double d;

		errno = 0;
		d = strtod(expect, &end);
		return *expect && !*end && errno == 0 && d == json_object_get_double(result);
	}
	if (json_object_is_type(result, json_type_array) && expect[0] != '[') {
		/* "a,b" for a multi_select answer ["a","b"]. */
		_cleanup_(freep) char *copy = strdup(expect);
		char *save = NULL;
		size_t i = 0;

		if (!copy)
			return false;
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
			json_object *item = json_object_array_get_idx(result, i);

			if (!item || !json_object_is_type(item, json_type_string) || !streq(json_object_get_string(item), tok))
				return false;
		}
		return i == json_object_array_length(result);
	}
	if (json_object_is_type(result, json_type_boolean)) {
		bool b;

		return parse_bool_word(expect, &b) == 0 && b == json_object_get_boolean(result);
	}
	want = parse_json_text(expect);
	return want && json_object_equal(want, result);
}

/* The outcome of a final record as an exit code, printing the result. */
static int print_outcome(Ctl *ctl, json_object *wait_result, const char *expect, bool ask) {
	json_object *rec = json_object_object_get(wait_result, "request");
	json_object *result = json_object_object_get(rec, "result");
	const char *state = jstr(rec, "state"), *id = jstr(rec, "id");

	if (ctl->json)
		print_json(wait_result);

	/* Never shown to a reviewer: there is no answer, not even a default
	 * anyone had the chance to beat. */
	if (streq_ptr(jstr(rec, "result_source"), "unsent") && !streq_ptr(state, "failed")) {
		if (!ctl->json && !ask)
			printf("%s  %s  %s  (never sent to HITL.sh: nobody saw it)\n", strna(id), strna(state),
			       value_text(result));
		if (ask || expect)
			errorf("request %s ended (%s) but was never sent to HITL.sh: no one saw it, there is no answer.",
			       strna(id), strna(state));
		return ask ? EXIT_TIMEOUT : 0;
	}

	if (streq_ptr(state, "completed") || streq_ptr(state, "timeout")) {
		if (!ctl->json) {
			if (ask)
				puts(value_text(result));
			else
				printf("%s  %s  %s%s\n", strna(id), state, value_text(result),
				       streq_ptr(state, "timeout") ? "  (default: nobody answered in time)" : "");
			if (ask && streq_ptr(state, "timeout") && ctl->tty_err)
				fprintf(stderr, "(nobody answered before the deadline: this is the default answer)\n");
		}
		if (expect)
			return result_matches(result, expect) ? 0 : EXIT_MISMATCH;
		return 0;
	}
	/* Cancelled or failed: no answer, for wait as for ask (hitlctl(1)). */
	if (streq_ptr(state, "cancelled")) {
		if (!ctl->json && !ask)
			printf("%s  cancelled\n", strna(id));
		errorf("request %s was cancelled before anyone answered.", strna(id));
		return EXIT_REMOTE;
	}
	/* failed */
	{
		json_object *err = json_object_object_get(rec, "error");

		if (!ctl->json && !ask)
			printf("%s  failed\n", strna(id));
		errorf("request %s failed: %s%s%s", strna(id), strna(jstr(err, "message")), jstr(err, "code") ? " — " : "",
		       jstr(err, "code") ? jstr(err, "code") : "");
	}
	return EXIT_REMOTE;
}

static int verb_ask(Ctl *ctl, int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *res = NULL, *final = NULL;
	_cleanup_(freep) char *id = NULL, *expect = NULL;
	SubmitOpts o = { .ask = true };
	Live live = {};
	int k;

	k = do_submit(ctl, &o, argc, argv, &res);
	strv_free(o.options);
	if (k)
		return k < 0 ? 0 : k;
	id = strdup(strna(jstr(res, "id")));
	expect = o.expect ? strdup(o.expect) : NULL;
	if (!id || (o.expect && !expect))
		return EXIT_REMOTE;

	live.on = ctl->tty_err;
	live.position = -1;
	jint(res, "position", &live.position);
	k = wait_final(ctl, id, -1, &live, &final);
	if (k)
		return k;
	return print_outcome(ctl, final, expect, true);
}

/* ------------------------------------------------------------------ get, wait */

/* What a list or watch line shows of a record: a request's text, or the
 * workflow a trigger starts. */
static const char *record_text(json_object *rec, char *buf, size_t size) {
	if (!streq_ptr(jstr(rec, "kind"), "trigger"))
		return jstr(rec, "request_text");
	snprintf(buf, size, "trigger %s", strna(jstr(rec, "workflow_id")));
	return buf;
}

static void print_field(const char *name, const char *value) {
	if (value && value[0])
		printf("%-12s %s\n", name, value);
}

static void print_record(json_object *rec) {
	json_object *config = json_object_object_get(rec, "response_config"), *resp = json_object_object_get(rec, "response"),
	            *err = json_object_object_get(rec, "error"), *options = json_object_object_get(config, "options");
	char a[160], line[1024];
	int64_t n = 0;

	print_field("id:", jstr(rec, "id"));
	if (jstr(rec, "client_ref"))
		print_field("ref:", jstr(rec, "client_ref"));
	snprintf(line, sizeof line, "%s%s", strna(jstr(rec, "state")),
	         jbool(rec, "cancel_requested") ? " (cancel requested)" : "");
	print_field("state:", line);
	if (json_object_object_get(rec, "result") || jstr(rec, "result_source")) {
		snprintf(line, sizeof line, "%s%s", value_text(json_object_object_get(rec, "result")),
		         streq_ptr(jstr(rec, "result_source"), "default") ? "  (the default: nobody answered in time)"
		         : streq_ptr(jstr(rec, "result_source"), "reviewer") ? "  (from a reviewer)"
		         : streq_ptr(jstr(rec, "result_source"), "unsent") ? "  (never sent to HITL.sh: nobody saw it)" : "");
		print_field("result:", line);
	}
	if (streq_ptr(jstr(rec, "kind"), "trigger")) {
		/* A workflow trigger: no text, type or answer of its own. */
		print_field("workflow:", jstr(rec, "workflow_id"));
		print_field("execution:", jstr(rec, "execution_id"));
		if (json_object_object_get(rec, "data"))
			print_field("data:", json_object_to_json_string_ext(json_object_object_get(rec, "data"), JSON_C_TO_STRING_PLAIN));
	} else {
		print_field("text:", jstr(rec, "request_text"));
		snprintf(line, sizeof line, "%s, priority %s, %s", strna(jstr(rec, "response_type")),
		         strna(jstr(rec, "priority")), strna(jstr(rec, "processing_type")));
		print_field("type:", line);
	}
	if (options && json_object_is_type(options, json_type_array)) {
		size_t used = 0;

		line[0] = 0;
		for (size_t i = 0; i < json_object_array_length(options) && used < sizeof line; i++) {
			json_object *opt = json_object_array_get_idx(options, i);
			const char *value = json_object_is_type(opt, json_type_string) ? json_object_get_string(opt)
			                                                               : jstr(opt, "value");
			const char *label = json_object_is_type(opt, json_type_object) ? jstr(opt, "label") : NULL;

			used += (size_t) snprintf(line + used, sizeof line - used, "%s%s", i ? ", " : "", strna(value));
			if (label && !streq_ptr(label, value) && used < sizeof line)
				used += (size_t) snprintf(line + used, sizeof line - used, " (%s)", label);
		}
		print_field("options:", line);
	}
	if (json_object_object_get(rec, "default_response"))
		print_field("default:", value_text(json_object_object_get(rec, "default_response")));
	print_field("loop:", jstr(rec, "loop_id"));
	if (jint(rec, "owner_uid", &n)) {
		snprintf(line, sizeof line, "%" PRId64, n);
		print_field("owner uid:", line);
	}
	print_field("created:", format_when(jstr(rec, "created_at"), a, sizeof a));
	print_field("sent:", format_when(jstr(rec, "submitted_at"), a, sizeof a));
	print_field("deadline:", format_when(jstr(rec, "deadline_at"), a, sizeof a));
	print_field("updated:", format_when(jstr(rec, "updated_at"), a, sizeof a));
	if (jstr(rec, "remote_id")) {
		snprintf(line, sizeof line, "%s (%s)", jstr(rec, "remote_id"), strna(jstr(rec, "remote_status")));
		print_field("HITL.sh id:", line);
	}
	if (resp) {
		json_object *by = json_object_object_get(resp, "by");
		const char *who = json_object_is_type(by, json_type_string) ? json_object_get_string(by)
		                  : by ? (jstr(by, "email") ? jstr(by, "email") : jstr(by, "name")) : NULL;

		line[0] = 0;
		if (who)
			append(line, sizeof line, "by %s", who);
		if (format_when(jstr(resp, "at"), a, sizeof a))
			append(line, sizeof line, "%s%s", who ? ", " : "", a);
		print_field("answered:", line);
	}
	print_field("feedback:", jstr(rec, "feedback_state"));
	if (err) {
		snprintf(line, sizeof line, "%s: %s", strna(jstr(err, "code")), strna(jstr(err, "message")));
		print_field("error:", line);
	}
	if (jint(rec, "attempts", &n) && n > 1) {
		snprintf(line, sizeof line, "%" PRId64 " create attempts", n);
		print_field("attempts:", line);
	}
	if (!state_is_terminal(jstr(rec, "state")))
		print_field("next call:", format_when(jstr(rec, "next_attempt_at"), a, sizeof a));
}

typedef struct GetOpts {
	const char *ref;
	const char *timeout;
} GetOpts;

static int get_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	GetOpts *o = userdata;

	if (opt == OPT_REF)
		o->ref = arg;
	else if (opt == OPT_TIMEOUT || opt == 't')
		o->timeout = arg;
	else
		return usage_error("%s: unexpected option.", ctl->verb);
	return 0;
}

static int verb_get(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, { "ref", required_argument, NULL, OPT_REF }, {} };
	_cleanup_(json_object_putp) json_object *rec = NULL, *params = json_object_new_object();
	GetOpts o = {};
	int k;

	k = parse_options(ctl, argc, argv, "", opts, get_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if ((optind < argc) == !!o.ref || argc - optind > 1)
		return usage_error("get: give one request id, or --ref REF — e.g. 'hitlctl get r_01JD…'.");
	if (o.ref)
		json_object_object_add(params, "client_ref", json_object_new_string(o.ref));
	else
		json_object_object_add(params, "id", json_object_new_string(argv[optind]));
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "request.get", params, &rec, "get");
	if (k)
		return k;
	if (ctl->json)
		print_json(rec);
	else
		print_record(rec);
	return 0;
}

static int verb_wait(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, { "timeout", required_argument, NULL, OPT_TIMEOUT }, {} };
	_cleanup_(json_object_putp) json_object *final = NULL;
	GetOpts o = {};
	Live live = {};
	int64_t timeout_s = -1;
	int k;

	k = parse_options(ctl, argc, argv, "t:", opts, get_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if (argc - optind != 1)
		return usage_error("wait: give one request id — e.g. 'hitlctl wait r_01JD… --timeout 10m'.");
	if (o.timeout) {
		uint64_t s;

		if (hitl_duration_parse(o.timeout, &s) < 0)
			return usage_error("--timeout %s: not a duration (e.g. 30, 90s, 15m, 2h).", o.timeout);
		timeout_s = (int64_t) s;
	}
	k = ctl_connect(ctl);
	if (k)
		return k;
	live.on = ctl->tty_err;
	live.position = -1;
	k = wait_final(ctl, argv[optind], timeout_s, &live, &final);
	if (k == EXIT_TIMEOUT) {
		json_object *rec = json_object_object_get(final, "request");
		char d[32];

		if (ctl->json)
			print_json(final);
		errorf("request %s is still %s after %s — wait longer with --timeout, or 'hitlctl get %s'.", argv[optind],
		       strna(jstr(rec, "state")), format_duration((uint64_t) timeout_s, d, sizeof d), argv[optind]);
		return EXIT_TIMEOUT;
	}
	if (k)
		return k;
	return print_outcome(ctl, final, NULL, false);
}

/* ------------------------------------------------------------------ trigger */

/* Bigger than hitld accepts (50 KiB of data): its -32602 says why. */
#define TRIGGER_DATA_FILE_MAX (1024 * 1024)

typedef struct TriggerOpts {
	const char *data, *data_file, *ref, *priority, *timeout;
	bool no_wait;
} TriggerOpts;

static int trigger_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	TriggerOpts *o = userdata;

	switch (opt) {
	case OPT_DATA: o->data = arg; break;
	case OPT_DATA_FILE: o->data_file = arg; break;
	case OPT_REF: o->ref = arg; break;
	case 'p': case OPT_PRIORITY: o->priority = arg; break;
	case 't': case OPT_TIMEOUT: o->timeout = arg; break;
	case OPT_NO_WAIT: o->no_wait = true; break;
	default: return usage_error("%s: unexpected option.", ctl->verb);
	}
	return 0;
}

/* The --data object (inline or from a file); NULL when none was given. */
static int trigger_data(const TriggerOpts *o, json_object **ret) {
	_cleanup_(freep) char *text = NULL;
	const char *src = o->data;
	json_object *j;
	int k;

	*ret = NULL;
	if (o->data && o->data_file)
		return usage_error("trigger: give --data or --data-file, not both.");
	if (o->data_file) {
		k = read_bounded(o->data_file, TRIGGER_DATA_FILE_MAX, &text, NULL);
		if (k < 0)
			return usage_error("--data-file %s: %s", o->data_file,
			                   k == -EFBIG ? "larger than 1 MiB" : strerror(-k));
		src = text;
	}
	if (!src)
		return 0;
	j = parse_json_text(src);
	if (!j || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return usage_error("%s: not a JSON object (e.g. --data '{\"ticket\": 4812}').",
		                   o->data_file ? "--data-file" : "--data");
	}
	*ret = j;
	return 0;
}

static int verb_trigger(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "data-file", required_argument, NULL, OPT_DATA_FILE },
		{ "ref", required_argument, NULL, OPT_REF },
		{ "priority", required_argument, NULL, OPT_PRIORITY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{},
	};
	_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *res = NULL, *final = NULL,
	                                       *data = NULL;
	_cleanup_(freep) char *id = NULL;
	TriggerOpts o = {};
	Live live = {};
	int64_t timeout_s = -1;
	json_object *rec, *err;
	int k;

	k = parse_options(ctl, argc, argv, "p:t:", opts, trigger_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if (argc - optind != 1)
		return usage_error("trigger: give one workflow id — e.g. 'hitlctl trigger wf_abc123 --data '{\"x\": 1}''.");
	if (o.timeout) {
		uint64_t sec;

		if (hitl_duration_parse(o.timeout, &sec) < 0)
			return usage_error("--timeout %s: not a duration (e.g. 30, 90s, 15m, 2h).", o.timeout);
		timeout_s = (int64_t) sec;
	}
	k = trigger_data(&o, &data);
	if (k)
		return k;
	json_object_object_add(params, "workflow_id", json_object_new_string(argv[optind]));
	if (data)
		json_object_object_add(params, "data", TAKE_PTR(data));
	if (o.ref)
		json_object_object_add(params, "client_ref", json_object_new_string(o.ref));
	if (o.priority)
		json_object_object_add(params, "priority", json_object_new_string(o.priority));

	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "workflow.trigger", params, &res, "trigger");
	if (k)
		return k;
	if (jbool(res, "duplicate"))
		errorf("--ref %s was already used for this same trigger: that trigger is shown, nothing new was queued.",
		       strna(o.ref));
	if (o.no_wait) {
		if (ctl->json)
			print_json(res);
		else
			puts(strna(jstr(res, "id")));
		return 0;
	}

	/* Acknowledged means durable: wait on it, across a restart of hitld too. */
	id = strdup(strna(jstr(res, "id")));
	if (!id)
		return EXIT_REMOTE;
	live.on = ctl->tty_err;
	live.position = -1;
	jint(res, "position", &live.position);
	k = wait_final(ctl, id, timeout_s, &live, &final);
	if (k == EXIT_TIMEOUT) {
		if (ctl->json)
			print_json(final);
		errorf("trigger %s is still %s — 'hitlctl wait %s' waits on.", id,
		       strna(jstr(json_object_object_get(final, "request"), "state")), id);
		return EXIT_TIMEOUT;
	}
	if (k)
		return k;
	if (ctl->json)
		print_json(final);
	rec = json_object_object_get(final, "request");
	err = json_object_object_get(rec, "error");
	if (streq_ptr(jstr(rec, "state"), "completed")) {
		if (jstr(rec, "execution_id")) {
			if (!ctl->json)
				puts(jstr(rec, "execution_id"));
		} else
			errorf("workflow %s was triggered (%s), but HITL.sh's reply named no execution id.",
			       strna(jstr(rec, "workflow_id")), id);
		return 0;
	}
	if (streq_ptr(jstr(err, "code"), "outcome_unknown"))
		errorf("trigger %s: %s Check the workflow's executions at HITL.sh before triggering it again.", id,
		       strna(jstr(err, "message")));
	else
		errorf("trigger %s %s: %s", id, strna(jstr(rec, "state")), err ? strna(jstr(err, "message")) : "");
	return EXIT_REMOTE;
}

/* ------------------------------------------------------------------ list */

typedef struct ListOpts {
	char **states;
	size_t n_states;
	const char *loop, *user;
	unsigned limit;
	bool all, quiet;
} ListOpts;

static int list_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	ListOpts *o = userdata;

	switch (opt) {
	case 's': case OPT_STATE: {
		_cleanup_(freep) char *copy = strdup(arg);
		char *save = NULL;

		if (!copy)
			return usage_error("out of memory");
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			bool known = false;

			for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
				known = known || streq(tok, state_names[i]);
			if (!known)
				return usage_error("--state %s: not a state (queued, submitting, pending, completed, timeout, cancelled, failed).",
				                   tok);
			if (strv_push(&o->states, &o->n_states, tok) < 0)
				return usage_error("out of memory");
		}
		break;
	}
	case 'l': case OPT_LOOP: o->loop = arg; break;
	case 'a': case OPT_ALL: o->all = true; break;
	case 'q': case OPT_QUIET: o->quiet = true; break;
	case 'u': case OPT_USER: o->user = arg; break;
	case 'n': case OPT_LIMIT: {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(arg, &end, 10);
		if (!*arg || *end || errno || n == 0 || n > 100000)
			return usage_error("--limit %s: a number of requests, 1-100000.", arg);
		o->limit = (unsigned) n;
		break;
	}
	default:
		return usage_error("list: unexpected option.");
	}
	return 0;
}

static int verb_list(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "state", required_argument, NULL, OPT_STATE },
		{ "loop", required_argument, NULL, OPT_LOOP },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "user", required_argument, NULL, OPT_USER },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{},
	};
	static const char *const open_states[] = { "queued", "submitting", "pending", NULL };
	static const char *const headers[] = { "ID", "STATE", "PRIORITY", "CREATED", "RESULT", "TEXT", "OWNER" };
	_cleanup_(freep) char *cursor = NULL;
	ListOpts o = { .limit = LIST_DEFAULT_LIMIT };
	HitlListFilter filter = {};
	Table table = { .n_columns = 7 };
	unsigned shown = 0;
	bool others = false, more = false;
	int k;

	k = parse_options(ctl, argc, argv, "s:l:aqu:n:", opts, list_option, &o);
	if (k) {
		strv_free(o.states);
		return k < 0 ? 0 : k;
	}
	if (optind < argc) {
		strv_free(o.states);
		return usage_error("list takes no arguments (filter with --state, --loop, --all).");
	}
	if (o.user) {
		char *end;
		unsigned long uid;

		errno = 0;
		uid = strtoul(o.user, &end, 10);
		if (!*o.user || *end || errno || uid > UINT32_MAX) {
			strv_free(o.states);
			return usage_error("--user %s: a numeric uid.", o.user);
		}
		filter.owner_uid_set = true;
		filter.owner_uid = (uint32_t) uid;
	}
	filter.states = o.states ? (const char *const *) o.states : o.all ? NULL : open_states;
	filter.loop_id = o.loop;
	memcpy(table.headers, headers, sizeof headers);

	k = ctl_connect(ctl);
	while (k == 0 && shown < o.limit) {
		_cleanup_(json_object_putp) json_object *page = NULL;
		json_object *reqs;
		HitlError *e = &ctl->error;
		int r;

		filter.cursor = cursor;
		filter.limit = o.limit - shown < LIST_PAGE ? o.limit - shown : LIST_PAGE;
		r = hitl_request_list(ctl->client, &filter, &page, e);
		if (r < 0) {
			k = report_call_error(ctl, r, "list");
			break;
		}
		if (ctl->json)
			print_json(page);
		reqs = json_object_object_get(page, "requests");
		for (size_t i = 0; reqs && i < json_object_array_length(reqs); i++) {
			json_object *rec = json_object_array_get_idx(reqs, i);
			char label[160];
			_cleanup_(freep) char *text = shorten(record_text(rec, label, sizeof label), TEXT_COLUMN_MAX),
			                      *result = shorten(json_object_object_get(rec, "result")
			                                                ? value_text(json_object_object_get(rec, "result"))
			                                                : "",
			                                        20);
			char created[64], owner[24];
			int64_t uid = 0;
			const char *row[7];

			jint(rec, "owner_uid", &uid);
			snprintf(owner, sizeof owner, "%" PRId64, uid);
			if (uid != (int64_t) getuid())
				others = true;
			row[0] = jstr(rec, "id");
			row[1] = jstr(rec, "state");
			row[2] = jstr(rec, "priority");
			row[3] = format_ago(jstr(rec, "created_at"), created, sizeof created);
			row[4] = result;
			row[5] = text;
			row[6] = owner;
			if (o.quiet && !ctl->json)
				puts(strna(row[0]));
			else if (table_add(&table, row) < 0) {
				k = EXIT_REMOTE;
				break;
			}
			shown++;
		}
		free(cursor);
		cursor = jstr(page, "next_cursor") ? strdup(jstr(page, "next_cursor")) : NULL;
		if (!cursor)
			break;
		more = shown >= o.limit;
	}

	if (k == 0 && !ctl->json && !o.quiet) {
		/* The OWNER column only when someone else's requests are listed. */
		if (!others) {
			for (size_t r = 0; r < table.n_rows; r++) {
				free(table.cells[r * 7 + 6]);
				for (size_t c = 0; c < 6; c++)
					table.cells[r * 6 + c] = table.cells[r * 7 + c];
			}
			table.n_columns = 6;
		}
		if (table.n_rows > 0)
			table_print(&table);
		else if (ctl->tty_out)
			printf(o.all || o.states ? "no requests\n"
			                         : "no open requests ('hitlctl list --all' also shows finished ones)\n");
		if (more && ctl->tty_err)
			fprintf(stderr, "(first %u shown; --limit N shows more)\n", o.limit);
	}
	table_free(&table);
	strv_free(o.states);
	return k;
}

/* ------------------------------------------------------------------ cancel, feedback */

static int verb_cancel(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	int k, worst = 0;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind >= argc)
		return usage_error("cancel: give the id of the request(s) to cancel — 'hitlctl list' shows them.");
	k = ctl_connect(ctl);
	if (k)
		return k;
	for (int i = optind; i < argc; i++) {
		_cleanup_(json_object_putp) json_object *rec = NULL, *params = json_object_new_object();
		char what[160];

		snprintf(what, sizeof what, "cancel %s", argv[i]);
		json_object_object_add(params, "id", json_object_new_string(argv[i]));
		k = ctl_call(ctl, "request.cancel", params, &rec, what);
		if (k) {
			if (!worst)
				worst = k;
			if (k == EXIT_UNREACHABLE)
				break;
			continue;
		}
		if (ctl->json)
			print_json(rec);
		else if (streq_ptr(jstr(rec, "state"), "cancelled"))
			printf("%s  cancelled\n", argv[i]);
		else
			printf("%s  cancel requested: HITL.sh is told when budget allows (it may still be answered first)\n",
			       argv[i]);
	}
	return worst;
}

typedef struct FeedbackOpts {
	json_object *fb;
	int error;
} FeedbackOpts;

static int feedback_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	FeedbackOpts *o = userdata;
	static const struct {
		int opt;
		const char *key, *flag;
	} numbers[] = {
		{ OPT_RATING, "rating", "--rating" },
		{ 'r', "rating", "--rating" },
		{ OPT_ACCURACY, "accuracy", "--accuracy" },
		{ OPT_TIMELINESS, "timeliness", "--timeliness" },
		{ OPT_HELPFULNESS, "helpfulness", "--helpfulness" },
	};

	for (size_t i = 0; i < ELEMENTSOF(numbers); i++)
		if (opt == numbers[i].opt) {
			json_object *n = parse_number(arg);

			if (!n)
				return usage_error("%s %s: a number from 1 to 5.", numbers[i].flag, arg);
			json_object_object_add(o->fb, numbers[i].key, n);
			return 0;
		}
	switch (opt) {
	case 'c': case OPT_COMMENT:
		json_object_object_add(o->fb, "comment", json_object_new_string(arg));
		break;
	case OPT_RECOMMEND: {
		bool b;

		if (parse_bool_word(arg, &b) < 0)
			return usage_error("--would-recommend %s: yes or no.", arg);
		json_object_object_add(o->fb, "would_recommend", json_object_new_boolean(b));
		break;
	}
	case OPT_FOLLOW_UP:
		json_object_object_add(o->fb, "follow_up_needed", json_object_new_boolean(true));
		break;
	case OPT_TAG: {
		json_object *tags = json_object_object_get(o->fb, "tags");

		if (!tags) {
			tags = json_object_new_array();
			json_object_object_add(o->fb, "tags", tags);
		}
		json_object_array_add(tags, json_object_new_string(arg));
		break;
	}
	case OPT_CATEGORY:
		json_object_object_add(o->fb, "category", json_object_new_string(arg));
		break;
	default:
		return usage_error("feedback: unexpected option.");
	}
	return 0;
}

static int verb_feedback(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "rating", required_argument, NULL, OPT_RATING },
		{ "comment", required_argument, NULL, OPT_COMMENT },
		{ "accuracy", required_argument, NULL, OPT_ACCURACY },
		{ "timeliness", required_argument, NULL, OPT_TIMELINESS },
		{ "helpfulness", required_argument, NULL, OPT_HELPFULNESS },
		{ "would-recommend", required_argument, NULL, OPT_RECOMMEND },
		{ "follow-up", no_argument, NULL, OPT_FOLLOW_UP },
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "category", required_argument, NULL, OPT_CATEGORY },
		{},
	};
	_cleanup_(json_object_putp) json_object *fb = json_object_new_object(), *params = json_object_new_object(),
	                                        *rec = NULL;
	FeedbackOpts o = { .fb = fb };
	int k;

	k = parse_options(ctl, argc, argv, "r:c:", opts, feedback_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if (argc - optind != 1)
		return usage_error("feedback: give one request id — e.g. 'hitlctl feedback r_01JD… --rating 5 --comment \"quick\"'.");
	if (json_object_object_length(fb) == 0)
		return usage_error("feedback: say something — at least --rating 1-5 or --comment TEXT.");
	json_object_object_add(params, "id", json_object_new_string(argv[optind]));
	json_object_object_add(params, "feedback", json_object_get(fb));
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "request.feedback", params, &rec, "feedback");
	if (k)
		return k;
	if (ctl->json)
		print_json(rec);
	else
		printf("%s  feedback %s: it is sent to HITL.sh when budget allows\n", argv[optind],
		       strna(jstr(rec, "feedback_state")));
	return 0;
}

/* ------------------------------------------------------------------ watch */

static void print_event_line(json_object *rec) {
	char label[160];
	_cleanup_(freep) char *text = shorten(record_text(rec, label, sizeof label), TEXT_COLUMN_MAX);
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	json_object *result = json_object_object_get(rec, "result");

	localtime_r(&now, &tm);
	strftime(when, sizeof when, "%H:%M:%S", &tm);
	printf("%s  %-28s  %-10s  %s%s%s%s%s%s", when, strna(jstr(rec, "id")), strna(jstr(rec, "state")),
	       jbool(rec, "cancel_requested") ? "(cancelling)  " : "", result ? value_text(result) : "",
	       result ? "  " : "", jstr(rec, "feedback_state") ? "(feedback " : "",
	       jstr(rec, "feedback_state") ? jstr(rec, "feedback_state") : "", jstr(rec, "feedback_state") ? ")  " : "");
	fputs(text ? text : "", stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* One watch on the current connection. Returns 0 when interrupted (the
 * normal end), an exit code on a real error, or -ECONNRESET when the daemon
 * went away or dropped us (overflow) and watching should start again. */
static int watch_session(Ctl *ctl, const char *const *ids, time_t *lost_since) {
	int k, n;

	n = ctl->client ? hitl_watch(ctl->client, ids, &ctl->error) : -ECONNRESET;
	if (n == -EINTR || interrupted)
		return 0;
	if (n < 0)
		return daemon_went_away(ctl, n) ? -ECONNRESET : report_call_error(ctl, n, "watch");
	*lost_since = 0;
	if (ctl->tty_err)
		fprintf(stderr, "watching %s%d request%s for changes; Ctrl-C stops\n", ids ? "" : "all (now ", n,
		        ids ? (n == 1 ? "" : "s") : (n == 1 ? ", and new ones)" : "s, and new ones)"));
	for (;;) {
		HitlEvent ev = HITL_EVENT_INIT;
		bool overflow;

		k = hitl_watch_next(ctl->client, -1, &ev);
		if (k == -EINTR || interrupted) {
			hitl_event_clear(&ev);
			return 0;
		}
		if (k < 0)
			return -ECONNRESET;
		if (ctl->json)
			puts(ev.line);
		else if (ev.request)
			print_event_line(ev.request);
		fflush(stdout);
		overflow = streq(ev.method, "watch.overflow");
		hitl_event_clear(&ev);
		if (overflow) {
			if (ctl->tty_err)
				fprintf(stderr, "hitlctl: fell behind (over 1000 changes unread); some were skipped — 'hitlctl list' shows the current state.\n");
			return -ECONNRESET;
		}
	}
}

static int verb_watch(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	const char *const *ids;
	time_t lost_since = 0;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	ids = optind < argc ? (const char *const *) argv + optind : NULL;
	k = ctl_connect(ctl);
	if (k)
		return k;
	catch_signals();

	for (;;) {
		k = watch_session(ctl, ids, &lost_since);
		if (k >= 0)
			return k;
		/* The daemon closed the connection (overflow, restart): watch again. */
		if (reconnect(ctl, &(Live) {}, &lost_since) < 0) {
			if (interrupted)
				return 0;
			errorf("lost the connection to hitld and could not reconnect within %ds.", RECONNECT_FOR_S);
			return EXIT_UNREACHABLE;
		}
	}
}

/* ------------------------------------------------------------------ loops */

typedef struct LoopOpts {
	const char *name, *description, *icon;
	bool yes, quiet;
} LoopOpts;

static int loop_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	LoopOpts *o = userdata;

	switch (opt) {
	case OPT_NAME: o->name = arg; break;
	case OPT_DESCRIPTION: o->description = arg; break;
	case OPT_ICON: o->icon = arg; break;
	case 'y': case OPT_YES: o->yes = true; break;
	case 'q': case OPT_QUIET: o->quiet = true; break;
	default:
		return usage_error("loops: unexpected option.");
	}
	return 0;
}

static void print_cache_note(Ctl *ctl, json_object *res) {
	char ago[64];

	if (ctl->tty_err && jbool(res, "cached") && format_ago(jstr(res, "fetched_at"), ago, sizeof ago))
		fprintf(stderr, "(from hitld's cache, fetched %s; no budget spent)\n", ago);
}

static int loops_list(Ctl *ctl, json_object *res, const LoopOpts *o) {
	static const char *const headers[] = { "ID", "NAME", "MEMBERS", "DESCRIPTION" };
	json_object *loops = json_object_object_get(res, "loops");
	Table t = { .n_columns = 4 };

	memcpy(t.headers, headers, sizeof headers);
	for (size_t i = 0; loops && i < json_object_array_length(loops); i++) {
		json_object *l = json_object_array_get_idx(loops, i);
		_cleanup_(freep) char *desc = shorten(jstr(l, "description"), TEXT_COLUMN_MAX);
		int64_t members = 0, pending = 0;
		char m[96];
		const char *row[4];

		if (o->quiet) {
			puts(strna(jstr(l, "id")));
			continue;
		}
		jint(l, "member_count", &members);
		jint(l, "pending_count", &pending);
		if (pending > 0)
			snprintf(m, sizeof m, "%" PRId64 " (%" PRId64 " invited)", members - pending, pending);
		else
			snprintf(m, sizeof m, "%" PRId64, members);
		row[0] = jstr(l, "id");
		row[1] = jstr(l, "name");
		row[2] = m;
		row[3] = desc;
		if (table_add(&t, row) < 0) {
			table_free(&t);
			return EXIT_REMOTE;
		}
	}
	if (t.n_rows > 0)
		table_print(&t);
	else if (!o->quiet)
		printf("no loops — create one with 'hitlctl loops create --name NAME --icon ICON'\n");
	table_free(&t);
	print_cache_note(ctl, res);
	return 0;
}

static int loops_members(Ctl *ctl, json_object *res) {
	static const char *const headers[] = { "USER_ID", "EMAIL", "STATUS", "ROLE", "JOINED" };
	json_object *members = json_object_object_get(res, "members");
	Table t = { .n_columns = 5 };

	memcpy(t.headers, headers, sizeof headers);
	for (size_t i = 0; members && i < json_object_array_length(members); i++) {
		json_object *m = json_object_array_get_idx(members, i);
		char joined[64];
		const char *row[5] = { jstr(m, "user_id"), jstr(m, "email"), jstr(m, "status"), jstr(m, "role"),
			               format_ago(jstr(m, "joined_at"), joined, sizeof joined) };

		if (table_add(&t, row) < 0) {
			table_free(&t);
			return EXIT_REMOTE;
		}
	}
	table_print(&t);
	table_free(&t);
	print_cache_note(ctl, res);
	return 0;
}

static void loops_show(Ctl *ctl, json_object *res) {
	json_object *l = json_object_object_get(res, "loop"), *members = json_object_object_get(l, "members");
	char a[128];
	int64_t count = 0, pending = 0;

	print_field("id:", jstr(l, "id"));
	print_field("name:", jstr(l, "name"));
	print_field("description:", jstr(l, "description"));
	print_field("icon:", jstr(l, "icon"));
	jint(l, "member_count", &count);
	jint(l, "pending_count", &pending);
	snprintf(a, sizeof a, "%" PRId64 " active, %" PRId64 " invited", count - pending, pending);
	print_field("members:", a);
	for (size_t i = 0; members && i < json_object_array_length(members); i++) {
		json_object *m = json_object_array_get_idx(members, i);

		printf("%-12s %s (%s)\n", "", strna(jstr(m, "email")), strna(jstr(m, "status")));
	}
	print_field("created:", format_when(jstr(l, "created_at"), a, sizeof a));
	print_field("updated:", format_when(jstr(l, "updated_at"), a, sizeof a));
	print_cache_note(ctl, res);
}

static bool confirm(const char *question) {
	char answer[16];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(answer, sizeof answer, stdin))
		return false;
	return answer[0] == 'y' || answer[0] == 'Y';
}

static int verb_loops(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "name", required_argument, NULL, OPT_NAME },
		{ "description", required_argument, NULL, OPT_DESCRIPTION },
		{ "icon", required_argument, NULL, OPT_ICON },
		{ "yes", no_argument, NULL, OPT_YES },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{},
	};
	static const struct {
		const char *sub, *method;
		int n_args; /* positional arguments after the subcommand */
	} subs[] = {
		{ "list", "loop.list", 0 },       { "get", "loop.get", 1 },         { "show", "loop.get", 1 },
		{ "members", "loop.members", 1 }, { "create", "loop.create", 0 },   { "update", "loop.update", 1 },
		{ "delete", "loop.delete", 1 },   { "remove-member", "loop.remove_member", 2 },
	};
	_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *res = NULL;
	LoopOpts o = {};
	const char *sub, *method = NULL;
	int n_args = 0, k;
	char what[64];

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
			verb_help(verb_find("loops"), stdout);
			return 0;
		}
		return usage_error("loops: say what to do: list, get ID, members ID, create, update ID, delete ID, remove-member ID USER_ID.");
	}
	sub = argv[1];
	for (size_t i = 0; i < ELEMENTSOF(subs); i++)
		if (streq(sub, subs[i].sub)) {
			method = subs[i].method;
			n_args = subs[i].n_args;
		}
	if (!method)
		return usage_error("loops %s: unknown — use list, get, members, create, update, delete or remove-member.", sub);
	k = parse_options(ctl, argc - 1, argv + 1, "yq", opts, loop_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	argc--;
	argv++;
	if (argc - optind != n_args)
		return usage_error("loops %s takes %s — see 'hitlctl loops --help'.", sub,
		                   n_args == 0   ? "no arguments"
		                   : n_args == 1 ? "one loop id"
		                                 : "a loop id and a user id");
	if (n_args >= 1)
		json_object_object_add(params, "id", json_object_new_string(argv[optind]));
	if (n_args >= 2)
		json_object_object_add(params, "user_id", json_object_new_string(argv[optind + 1]));

	if (streq(sub, "create")) {
		if (!o.name || !o.icon)
			return usage_error("loops create needs --name NAME and --icon ICON (e.g. --icon rocket); --description is optional.");
	} else if (streq(sub, "update")) {
		if (!o.name && !o.icon && !o.description)
			return usage_error("loops update ID: say what changes with --name, --description or --icon.");
	} else if (o.name || o.icon || o.description)
		return usage_error("--name, --description and --icon are for 'loops create' and 'loops update'.");
	if (o.name)
		json_object_object_add(params, "name", json_object_new_string(o.name));
	if (o.description)
		json_object_object_add(params, "description", json_object_new_string(o.description));
	if (o.icon)
		json_object_object_add(params, "icon", json_object_new_string(o.icon));

	if (streq(sub, "delete") && !o.yes) {
		char q[160];

		if (!isatty(STDIN_FILENO))
			return usage_error("loops delete removes the loop and all its requests at HITL.sh for good: add --yes to confirm.");
		snprintf(q, sizeof q, "Delete loop %s and every request in it at HITL.sh?", argv[optind]);
		if (!confirm(q))
			return usage_error("not deleted.");
	}

	k = ctl_connect(ctl);
	if (k)
		return k;
	snprintf(what, sizeof what, "loops %s", sub);
	k = ctl_call(ctl, method, params, &res, what);
	if (k)
		return k;
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	if (streq(sub, "list"))
		return loops_list(ctl, res, &o);
	if (streq(sub, "members"))
		return loops_members(ctl, res);
	if (streq(sub, "get") || streq(sub, "show"))
		loops_show(ctl, res);
	else if (streq(sub, "create")) {
		json_object *l = json_object_object_get(res, "loop");

		puts(strna(jstr(l, "id")));
		if (jstr(res, "invite_code") || jstr(res, "join_url"))
			fprintf(stderr, "loop \"%s\" created; reviewers join in the HITL app with code %s%s%s\n",
			        strna(jstr(l, "name")), strna(jstr(res, "invite_code")), jstr(res, "join_url") ? " or at " : "",
			        jstr(res, "join_url") ? jstr(res, "join_url") : "");
	} else if (streq(sub, "update"))
		printf("loop %s updated\n", argv[optind]);
	else if (streq(sub, "delete"))
		printf("loop %s deleted\n", argv[optind]);
	else if (streq(sub, "remove-member"))
		printf("user %s removed from loop %s\n", argv[optind + 1], argv[optind]);
	return 0;
}

/* ------------------------------------------------------------------ key, admin */

static int verb_key(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *res = NULL;
	json_object *rl;
	char when[96];
	int64_t limit = 0, remaining = 0;
	int k;

	if (argc < 2 || !streq(argv[1], "test")) {
		if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
			verb_help(verb_find("key"), stdout);
			return 0;
		}
		return usage_error("key: the only subcommand is 'key test' (checks the API key with HITL.sh; costs one call).");
	}
	k = parse_options(ctl, argc - 1, argv + 1, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc - 1)
		return usage_error("key test takes no arguments.");
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "key.test", NULL, &res, "key test");
	if (k)
		return k;
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	rl = json_object_object_get(res, "rate_limit");
	jint(rl, "limit", &limit);
	jint(rl, "remaining", &remaining);
	printf("key valid: id %s, account %s (%s)\n", strna(jstr(res, "api_key_id")), strna(jstr(res, "email")),
	       strna(jstr(res, "account_status")));
	printf("rate limit: %" PRId64 "/%" PRId64 " calls left%s%s\n", remaining, limit,
	       format_when(jstr(rl, "reset_at"), when, sizeof when) ? ", resets " : "",
	       format_when(jstr(rl, "reset_at"), when, sizeof when) ? when : "");
	return 0;
}

/* daemon.reload's "key" (PROTOCOL.md §5.11): a refused new key, or none at
 * all, fails the reload (exit 6) although the configuration was read again; a
 * key with nothing to read it from again (the environment, read once at
 * start) that stays in use does not. An older hitld says nothing: success. */
static bool reload_key_ok(json_object *res) {
	json_object *key = json_object_object_get(res, "key");

	return !key || jbool(key, "loaded") || (jbool(key, "kept") && streq_ptr(jstr(key, "reason"), "no_key"));
}

static int reload_outcome(json_object *res) {
	json_object *key = json_object_object_get(res, "key");

	if (!key)
		puts("reloaded: configuration and API key read again");
	else if (jbool(key, "loaded"))
		printf("reloaded: configuration read again, API key loaded from the %s\n",
		       streq_ptr(jstr(key, "source"), "key_file") ? "key file" : strna(jstr(key, "source")));
	else if (reload_key_ok(res))
		printf("reloaded: configuration read again; the previous key stays (%s)\n", strna(jstr(key, "error")));
	else if (jbool(key, "kept"))
		errorf("reload: configuration read again, but the new API key was refused: %s — the previous key stays in use; "
		       "see 'journalctl -u hitld'.", strna(jstr(key, "error")));
	else
		errorf("reload: configuration read again, but hitld has no API key: %s — see 'journalctl -u hitld'.",
		       strna(jstr(key, "error")));
	return reload_key_ok(res) ? 0 : EXIT_REMOTE;
}

static int simple_admin(Ctl *ctl, int argc, char **argv, const char *method, const char *done) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *res = NULL;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc)
		return usage_error("%s takes no arguments.", ctl->verb);
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, method, NULL, &res, ctl->verb);
	if (k)
		return k;
	if (ctl->json) {
		print_json(res);
		/* The exit status tells a script what the reply says. */
		return done || reload_key_ok(res) ? 0 : EXIT_REMOTE;
	}
	if (!done)
		return reload_outcome(res);
	puts(done);
	return 0;
}

static int verb_pause(Ctl *ctl, int argc, char **argv) {
	return simple_admin(ctl, argc, argv, "queue.pause",
	                    "paused: hitld makes no HITL.sh calls (also across restarts) until 'hitlctl resume'");
}

static int verb_resume(Ctl *ctl, int argc, char **argv) {
	return simple_admin(ctl, argc, argv, "queue.resume", "resumed: hitld sends and polls requests again");
}

static int verb_reload(Ctl *ctl, int argc, char **argv) {
	return simple_admin(ctl, argc, argv, "daemon.reload", NULL);
}

/* ------------------------------------------------------------------ help */

struct Verb {
	const char *name;
	int (*run)(Ctl *ctl, int argc, char **argv);
	const char *synopsis;
	const char *summary;
	const char *help;
};

static int verb_help_cmd(Ctl *ctl, int argc, char **argv);
static int verb_version(Ctl *ctl, int argc, char **argv);

static int verb_mcp(Ctl *ctl, int argc, char **argv) {
	return mcp_main(ctl->path, argc, argv);
}

static const Verb verbs[] = {
	{ "status", verb_status, "status", "budget, queue, HITL.sh reachability and key state",
	  "Shows hitld's state: API budget used and left this hour and when it resets (local time),\n"
	  "request counts by state (your own unless you are an admin), whether HITL.sh answers,\n"
	  "whether the API key is loaded and valid, and whether the queue is paused.\n" },
	{ "submit", verb_submit, "submit --loop ID --default VALUE [options] [TEXT]",
	  "queue a request for a human; prints its id",
	  "Queues a request and prints its local id (r_…) at once; the daemon sends it to HITL.sh\n"
	  "when budget allows. The text comes from TEXT, --text, --text-file FILE or stdin.\n"
	  "\n"
	  "  -l, --loop ID            the loop (group of reviewers) to ask ('hitlctl loops list')\n"
	  "      --type TYPE          single_select, multi_select, rating, number, text, boolean,\n"
	  "                           editable_text\n"
	  "                           (default: single_select with --option, else text)\n"
	  "  -o, --option VALUE[=Label]  a choice (repeat; for single_select and multi_select)\n"
	  "      --min N, --max N     rating scale (default 1-5), number range, text length,\n"
	  "                           or number of choices for multi_select\n"
	  "      --step N             rating step (e.g. 0.5)\n"
	  "      --decimals N         number: decimal places allowed\n"
	  "      --max-length N       text, editable_text: longest answer (1-5000)\n"
	  "      --draft-text TEXT    editable_text: the text the reviewer edits (also the\n"
	  "                           default answer unless --default is given)\n"
	  "      --true-label S, --false-label S   boolean: the two buttons' words\n"
	  "      --prefix S, --suffix S, --allow-negative, --placeholder S   number/text display\n"
	  "      --required           the reviewer must answer (no empty answer)\n"
	  "      --config JSON        extra response_config keys, e.g. '{\"max_length\":200}'\n"
	  "  -d, --default VALUE      the answer used if nobody replies in time (required);\n"
	  "                           multi_select: a,b or a JSON array\n"
	  "  -p, --priority P         low, medium (default), high, critical\n"
	  "      --timeout DURATION   answer within this long: 900, 90s, 15m, 2h, 1d; makes the\n"
	  "                           request time-sensitive (60s-1d) unless --deferred\n"
	  "      --deferred           no hurry (default when --timeout is not given); without\n"
	  "                           --timeout HITL.sh waits up to 30 days\n"
	  "      --context JSON       a JSON object shown to reviewers\n"
	  "      --image-url URL      an image to review (makes the request an image request)\n"
	  "      --file-url URL --file-type T --file-name N   a document to review (a file request)\n"
	  "      --video-url URL, --audio-url URL   a video or a recording to review\n"
	  "      --content TYPE       markdown (default), image, file, video, audio\n"
	  "      --callback-url URL   HITL.sh POSTs the outcome there\n"
	  "      --ref REF            your idempotency key: submitting the same REF again\n"
	  "                           returns the first request instead of a new one\n"
	  "      --text TEXT, --text-file FILE ('-': stdin)\n"
	  "      --params FILE        request.submit fields as raw JSON ('-': stdin); flags override\n"
	  "\n"
	  "Example:\n"
	  "  hitlctl submit --loop 65f1234567890abcdef12345 --option approve --option reject \\\n"
	  "      --default reject --timeout 15m \"Deploy build 4812?\"\n" },
	{ "ask", verb_ask, "ask --loop ID --default VALUE [submit options] [--expect VALUE] [TEXT]",
	  "submit, wait for the answer and print it",
	  "Submits like 'submit' (same options; --default is required), waits until the request\n"
	  "is answered or times out, and prints the answer (on timeout: the --default value).\n"
	  "On a terminal a live line on stderr shows state, queue position, budget and time left.\n"
	  "With no --type, --option means single_select; --type single_select without --option\n"
	  "is an error.\n"
	  "\n"
	  "  -e, --expect VALUE       exit 0 if the answer equals VALUE, 1 if it is anything else\n"
	  "                           (also when the default was used); 6 if cancelled or failed\n"
	  "\n"
	  "Example:\n"
	  "  hitlctl ask --loop L --option approve --option reject --default reject \\\n"
	  "      --timeout 15m --expect approve \"Deploy build 4812?\" && ./deploy\n" },
	{ "get", verb_get, "get ID | get --ref REF", "show one request",
	  "Shows a request: state, answer, text, options, times, HITL.sh id, feedback, error.\n"
	  "      --ref REF            find it by the --ref it was submitted with\n" },
	{ "wait", verb_wait, "wait ID [--timeout DURATION]", "wait until a request is answered or final",
	  "Waits until the request is final and prints 'ID STATE RESULT'. Exit 0 when final\n"
	  "(6 if it failed), 5 if --timeout passes first. Without --timeout it waits as long as\n"
	  "it takes (the request's own deadline ends it).\n"
	  "  -t, --timeout DURATION   stop waiting after 30, 90s, 15m, 2h …\n" },
	{ "list", verb_list, "list [--state S[,S]] [--loop ID] [--all] [--limit N] [-q]",
	  "list requests, newest first",
	  "Lists your requests (an admin sees everyone's), newest first: open ones\n"
	  "(queued, submitting, pending) unless --all or --state says otherwise.\n"
	  "  -s, --state S[,S]        only these states (repeatable)\n"
	  "  -l, --loop ID            only this loop's requests\n"
	  "  -a, --all                every state, finished ones too\n"
	  "  -n, --limit N            at most N requests (default 50)\n"
	  "  -u, --user UID           only this uid's requests (admins)\n"
	  "  -q, --quiet              print only the ids\n" },
	{ "cancel", verb_cancel, "cancel ID…", "withdraw requests",
	  "Cancels requests. A queued one is cancelled at once without any API call; one already\n"
	  "at HITL.sh is cancelled there when budget allows (a reviewer may answer first).\n" },
	{ "feedback", verb_feedback, "feedback ID --rating N [--comment TEXT] [more]",
	  "rate the reviewer's answer of a completed request",
	  "Queues feedback on a completed request; hitld sends it to HITL.sh when budget allows.\n"
	  "  -r, --rating N           1-5, overall quality\n"
	  "  -c, --comment TEXT       up to 1000 characters\n"
	  "      --accuracy N, --timeliness N, --helpfulness N   1-5 each\n"
	  "      --would-recommend yes|no, --follow-up, --tag TAG (repeat),\n"
	  "      --category positive|constructive|issue\n" },
	{ "trigger", verb_trigger, "trigger WORKFLOW_ID [--data JSON | --data-file FILE] [options]",
	  "start a HITL.sh workflow once; prints its execution id",
	  "Queues a trigger of a HITL.sh workflow (POST /v1/workflows/ID/trigger), waits until\n"
	  "hitld has sent it, and prints the execution id HITL.sh returned. The trigger is stored\n"
	  "before it is acknowledged and is sent at most once: if hitld cannot learn whether\n"
	  "HITL.sh took it (no reply, or hitld stopped while sending), it fails with error code\n"
	  "outcome_unknown and is not sent again. HITL.sh offers no way to read an execution's\n"
	  "status, so hitlctl's part ends with the execution id.\n"
	  "\n"
	  "      --data JSON          the JSON object sent as the body (default {}; at most 50 KiB)\n"
	  "      --data-file FILE     the same, read from FILE ('-': stdin)\n"
	  "      --ref REF            your idempotency key: the same REF and data again is the same trigger\n"
	  "  -p, --priority P         low, medium (default), high, critical: its place in the queue\n"
	  "  -t, --timeout DURATION   stop waiting after this long (exit 5; the trigger stays queued)\n"
	  "      --no-wait            print the local id (r_…) at once; 'hitlctl get ID' shows the outcome\n"
	  "\n"
	  "Example:\n"
	  "  hitlctl trigger wf_abc123 --data '{\"ticket\": 4812}'\n" },
	{ "watch", verb_watch, "watch [ID…]", "print one line per request change until interrupted",
	  "Prints a line each time a request changes state (all you may see, or only the IDs\n"
	  "given), until Ctrl-C. With --json: the daemon's notifications, one per line.\n" },
	{ "loops", verb_loops, "loops list|get ID|members ID|create|update ID|delete ID|remove-member ID USER",
	  "manage HITL.sh loops (calls HITL.sh; may cost budget)",
	  "Loops are HITL.sh's groups of reviewers. Reads are cached by hitld for a few minutes.\n"
	  "  loops list [-q]                          all loops (-q: ids only)\n"
	  "  loops get ID                             one loop and its members\n"
	  "  loops members ID                         its members\n"
	  "  loops create --name N --icon I [--description D]   prints the new loop's id\n"
	  "  loops update ID [--name N] [--description D] [--icon I]\n"
	  "  loops delete ID [--yes]                  deletes it and all its requests at HITL.sh\n"
	  "  loops remove-member ID USER_ID\n"
	  "Changes are for admins unless hitld's socket.loop_writes is \"all\".\n" },
	{ "key", verb_key, "key test", "check the API key with HITL.sh (admin; costs one call)",
	  "Asks HITL.sh whether hitld's API key is valid and shows its id, account and rate limit.\n" },
	{ "pause", verb_pause, "pause", "stop all HITL.sh traffic (admin; survives restarts)",
	  "Pauses the queue: hitld makes no HITL.sh calls until 'hitlctl resume'. Requests can\n"
	  "still be submitted; they wait.\n" },
	{ "resume", verb_resume, "resume", "resume HITL.sh traffic (admin)", "Undoes 'hitlctl pause'.\n" },
	{ "reload", verb_reload, "reload", "re-read configuration and API key (admin)",
	  "Same as 'systemctl reload hitld' (SIGHUP): re-reads the configuration and the API key;\n"
	  "nothing queued is lost. A configuration with errors is refused and the old one stays.\n" },
	{ "mcp", verb_mcp, MCP_SYNOPSIS, MCP_SUMMARY, MCP_HELP },
	{ "help", verb_help_cmd, "help [VERB]", "show help for a verb", "Shows the help of VERB, or this overview.\n" },
	{ "version", verb_version, "version", "print hitlctl's version and the daemon's",
	  "Prints hitlctl's version and, if it can connect, hitld's.\n" },
};

static const Verb *verb_find(const char *name) {
	for (size_t i = 0; name && i < ELEMENTSOF(verbs); i++)
		if (streq(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

static const char common_help[] =
	"Options for every verb:\n"
	"      --json               print hitld's JSON replies unchanged, one object per line\n"
	"      --socket PATH        hitld's socket (default: $HITLD_SOCKET, else /run/hitld.sock)\n"
	"      --instance NAME      the socket of hitld@NAME: /run/hitld-NAME.sock\n"
	"  -h, --help               help\n";

static const char exit_help[] =
	"Exit status:\n"
	"  0  success          1  ask --expect: the answer was something else\n"
	"  2  usage error      3  hitld unreachable\n"
	"  4  not found (request, or loop at HITL.sh) or permission denied\n"
	"  5  timed out waiting\n"
	"  6  HITL.sh, budget or queue error (or the request was cancelled/failed)\n";

static void usage(FILE *f) {
	fprintf(f,
	        "hitlctl — ask humans through hitld and HITL.sh, and manage hitld\n"
	        "\n"
	        "Usage: hitlctl [--json] [--socket PATH | --instance NAME] VERB [ARGS…]\n"
	        "\n"
	        "Verbs:\n");
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f,
	        "\n%s\n%s\n"
	        "Getting started:\n"
	        "  hitlctl status                      is hitld running, how much budget is left?\n"
	        "  hitlctl loops list                  which loops of reviewers exist?\n"
	        "  hitlctl ask --loop ID --option approve --option reject --default reject \\\n"
	        "      --expect approve \"Deploy build 4812?\" && ./deploy\n"
	        "  hitlctl VERB --help                 the options of a verb\n"
	        "\n"
	        "See hitlctl(1) and docs/PROTOCOL.md.\n",
	        common_help, exit_help);
}

static void verb_help(const Verb *v, FILE *f) {
	if (!v) {
		usage(f);
		return;
	}
	fprintf(f, "Usage: hitlctl %s\n\n%s\n%s\n%s", v->synopsis, v->help, common_help, exit_help);
}

static int verb_help_cmd(Ctl *ctl, int argc, char **argv) {
	const Verb *v;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	v = verb_find(argv[1]);
	if (!v)
		return usage_error("help %s: no such verb — 'hitlctl --help' lists them.", argv[1]);
	verb_help(v, stdout);
	return 0;
}

static int verb_version(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *hello = NULL;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (hitl_client_connect(ctl->path, &ctl->client) >= 0)
		(void) hitl_hello(ctl->client, "hitlctl/" HITLD_VERSION, &hello, NULL);
	if (ctl->json) {
		if (hello)
			print_json(hello);
		else
			puts("null");
		return 0;
	}
	printf("hitlctl %s\n", HITLD_VERSION);
	if (hello)
		printf("hitld %s (protocol %" PRId64 ") at %s\n", strna(jstr(hello, "version")),
		       json_object_get_int64(json_object_object_get(hello, "protocol")), ctl->path);
	else
		printf("hitld: not reachable at %s\n", ctl->path);
	return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
	Ctl ctl = { .tty_out = isatty(STDOUT_FILENO), .tty_err = isatty(STDERR_FILENO) };
	const Verb *v;
	int i, r;

	term_filter_install();

	/* Options before the verb: the common ones only. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (streq(a, "--")) {
			i++;
			break;
		}
		if (streq(a, "-h") || streq(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (streq(a, "--version")) {
			printf("hitlctl %s\n", HITLD_VERSION);
			return 0;
		}
		if (streq(a, "--json"))
			ctl.json = true;
		else if (streq(a, "--socket") || streq(a, "--instance")) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value.", a);
			r = common_option(&ctl, streq(a, "--socket") ? OPT_SOCKET : OPT_INSTANCE, argv[++i]);
			if (r < 0)
				return -r;
		} else if (strncmp(a, "--socket=", 9) == 0)
			ctl.socket_arg = a + 9;
		else if (strncmp(a, "--instance=", 11) == 0) {
			r = common_option(&ctl, OPT_INSTANCE, a + 11);
			if (r < 0)
				return -r;
		} else
			return usage_error("unknown option %s before the verb — see 'hitlctl --help'.", a);
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	v = verb_find(argv[i]);
	if (!v)
		return usage_error("unknown verb '%s' — 'hitlctl --help' lists the verbs.", argv[i]);
	ctl.verb = v->name;
	resolve_path(&ctl);
	ctl.error = HITL_ERROR_INIT;

	r = v->run(&ctl, argc - i, argv + i);

	hitl_error_clear(&ctl.error);
	hitl_client_free(ctl.client);
	free(ctl.instance_path);
	term_filter_finish();
	return r;
}
