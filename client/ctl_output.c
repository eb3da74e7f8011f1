/* ctl_output.c — hitlctl's human output: the terminal-escape filter every
 * byte of stdout and stderr goes through, --json output, and the formatting
 * of times, durations, tables and records (see ctl_output.h). */
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "cleanup.h"
#include "ctl_output.h"

_printf_(1, 2) void errorf(const char *format, ...) {
	va_list ap;

	fputs("hitlctl: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

_printf_(1, 2) int usage_error(const char *format, ...) {
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
 * and the bidi overrides and isolates (as \uHHHH); in a table cell or a
 * shortened line, \t and \n too. --json output bypasses it:
 * JSON has its own escaping, and a program wants the text unchanged. The live
 * line writes its own "\r\033[K" to the unfiltered stderr. */
typedef struct TermFilter {
	int fd;
	bool one_line;            /* escape \t and \n too (a table cell, a shortened line) */
	unsigned char pending[4]; /* an incomplete UTF-8 sequence carried to the next write */
	size_t n_pending, need;
} TermFilter;

/* The most term_filter_byte() appends: 3 pending bytes and c, each as \xHH. */
#define TERM_STEP_MAX 16

static TermFilter term_out = { .fd = STDOUT_FILENO }, term_err = { .fd = STDERR_FILENO };
FILE *raw_stdout, *raw_stderr;

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

/* Feeds byte c through the filter: appends what it shows, at most
 * TERM_STEP_MAX bytes (no NUL), to out and returns how many. What it appends
 * is one unit a reader sees: a character, or escapes of the bytes it ended. */
static size_t term_filter_byte(TermFilter *f, unsigned char c, char *out) {
	char esc[TERM_STEP_MAX + 1]; /* sprintf()'s NUL needs a byte more than what is kept */
	size_t w = 0;

	if (f->need > 0) {
		if ((c & 0xC0) == 0x80) {
			f->pending[f->n_pending++] = c;
			if (f->n_pending < f->need)
				return 0;
			w = term_flush_sequence(f, esc);
			memcpy(out, esc, w);
			return w;
		}
		w = term_escape_bytes(esc, f->pending, f->n_pending);
		f->n_pending = f->need = 0;
	}
	if (c >= 0xC2 && c <= 0xF4) {
		f->pending[0] = c;
		f->n_pending = 1;
		f->need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	} else if ((c < 0x20 && (f->one_line || (c != '\n' && c != '\t'))) || c == 0x7F || c >= 0x80)
		w += term_escape_bytes(esc + w, &c, 1);
	else
		esc[w++] = (char) c;
	memcpy(out, esc, w);
	return w;
}

static ssize_t term_filter_write(void *cookie, const char *buf, size_t size) {
	TermFilter *f = cookie;
	char out[4096];
	size_t w = 0;

	for (size_t i = 0; i < size; i++) {
		if (w > sizeof out - TERM_STEP_MAX) {
			term_write_all(f->fd, out, w);
			w = 0;
		}
		w += term_filter_byte(f, (unsigned char) buf[i], out + w);
	}
	term_write_all(f->fd, out, w);
	return (ssize_t) size;
}

/* Sends stdout and stderr through the filter; raw_stdout and raw_stderr
 * stay the unfiltered streams. Without memory for it, output stays raw. */
void term_filter_install(void) {
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
void term_filter_finish(void) {
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

/* ------------------------------------------------------------------ JSON, times, text */

static const char *json_plain(json_object *j) {
	return json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Prints a daemon result unchanged, one object per line. */
void print_json(json_object *j) {
	fflush(stdout); /* keep the order of anything printed before */
	fputs(j ? json_plain(j) : "null", raw_stdout);
	fputc('\n', raw_stdout);
	fflush(raw_stdout);
}

const char *jstr(json_object *o, const char *key) {
	json_object *v = json_object_object_get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

bool jint(json_object *o, const char *key, int64_t *ret) {
	json_object *v = json_object_object_get(o, key);

	if (!v || !json_object_is_type(v, json_type_int))
		return false;
	*ret = json_object_get_int64(v);
	return true;
}

bool jbool(json_object *o, const char *key) {
	json_object *v = json_object_object_get(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* A result value as a person reads it: strings bare, everything else JSON. */
const char *value_text(json_object *v) {
	if (!v)
		return "";
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return json_plain(v);
}

char *format_duration(uint64_t s, char *buf, size_t size) {
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
char *format_relative(time_t t, time_t now, char *buf, size_t size) {
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
char *format_when(const char *iso, char *buf, size_t size) {
	char local[64], rel[64];
	time_t t, now = time(NULL);

	if (!iso || hitl_time_parse(iso, &t) < 0)
		return NULL;
	snprintf(buf, size, "%s (%s)", format_local(t, now, local, sizeof local),
	         format_relative(t, now, rel, sizeof rel));
	return buf;
}

char *format_ago(const char *iso, char *buf, size_t size) {
	time_t t;

	if (!iso || hitl_time_parse(iso, &t) < 0)
		return NULL;
	return format_relative(t, time(NULL), buf, size);
}

/* ------------------------------------------------------------------ display width */

/* Tables and shortened lines are laid out in terminal columns: a CJK
 * character takes 2, a combining mark 0, and text is measured as the filter
 * shows it (a control byte as \xHH is 4). The widths are libc's wcwidth()
 * in the user's LC_CTYPE locale (LC_ALL, LC_CTYPE, LANG), read with
 * newlocale() rather than setlocale() so nothing else in hitlctl (ctype,
 * json-c, --json output) changes with it. The filter writes UTF-8 whatever
 * the locale, so in a locale that is not UTF-8 (C, POSIX) the widths are
 * C.UTF-8's, which is how a UTF-8 terminal shows that text; without either,
 * 1 per code point. */
static locale_t width_locale(void) {
	static locale_t loc;
	static bool tried;

	if (tried)
		return loc;
	tried = true;
	loc = newlocale(LC_CTYPE_MASK, "", (locale_t) 0);
	if (loc && !streq(nl_langinfo_l(CODESET, loc), "UTF-8")) {
		freelocale(loc);
		loc = (locale_t) 0;
	}
	if (!loc)
		loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
	return loc;
}

/* Columns of n bytes the filter showed (valid UTF-8 without controls);
 * the caller has width_locale() in use. */
static size_t shown_columns(const char *s, size_t n) {
	size_t cols = 0;

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char) s[i];
		size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
		int w;

		if (i + len > n)
			len = n - i; /* cannot happen after the filter: count what is there */
		for (size_t k = 1; k < len; k++)
			cp = cp << 6 | ((unsigned char) s[i + k] & 0x3F);
		i += len;
		w = c < 0x80 ? 1 : wcwidth((wchar_t) cp);
		/* -1 (not printable) cannot come out of the filter; a terminal
		 * would most likely draw such a character in one column. */
		cols += w < 0 ? 1 : (size_t) w;
	}
	return cols;
}

/* s as the filter shows it, on one line (\t and \n escaped too): cut
 * after its first line or at max columns, "…" marking the cut, never inside
 * a character or an escape; a combining mark stays with its letter.
 * malloc()ed; NULL without memory. */
static char *shown_text(const char *s, bool first_line, size_t max) {
	TermFilter f = { .fd = -1, .one_line = true };
	size_t n = first_line ? strcspn(s, "\r\n") : strlen(s), w = 0, cols = 0, fit = 0;
	bool cut = first_line && s[n];
	locale_t loc = width_locale(), old = loc ? uselocale(loc) : (locale_t) 0;
	char *out;

	/* Each input byte shows as at most 4 (\xHH); then "…" and the NUL. */
	out = n < (SIZE_MAX - TERM_STEP_MAX - 8) / 4 ? malloc(n * 4 + TERM_STEP_MAX + 8) : NULL;
	for (size_t i = 0; out && i <= n && cols <= max; i++) {
		/* The last step writes out what is still pending, escaped. */
		size_t k = i < n ? term_filter_byte(&f, (unsigned char) s[i], out + w)
		                 : term_escape_bytes(out + w, f.pending, f.n_pending);

		cols += shown_columns(out + w, k);
		w += k;
		if (cols < max) /* room for "…" after it */
			fit = w;
		else if (cols > max)
			cut = true;
	}
	if (old)
		uselocale(old);
	if (!out)
		return NULL;
	if (cut && max > 0)
		memcpy(out + fit, "…", sizeof "…");
	else
		out[cut ? 0 : w] = 0;
	return out;
}

/* The first line of s as the terminal shows it, at most max columns, "…" when cut. */
char *shorten(const char *s, size_t max) {
	return shown_text(s ? s : "", true, max);
}

int terminal_columns(void) {
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
		return ws.ws_col;
	return 80;
}

_printf_(3, 4) void append(char *buf, size_t size, const char *format, ...) {
	size_t used = strnlen(buf, size);
	va_list ap;

	if (used + 1 >= size)
		return;
	va_start(ap, format);
	vsnprintf(buf + used, size - used, format, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ tables */

void table_free(Table *t) {
	for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
		free(t->cells[i]);
	free(t->cells);
	*t = (Table) {};
}

int table_add(Table *t, const char *const *values) {
	if (t->n_rows == t->allocated) {
		size_t n = t->allocated ? t->allocated * 2 : 16;
		char **cells = realloc(t->cells, n * t->n_columns * sizeof(char *));

		if (!cells)
			return -ENOMEM;
		t->cells = cells;
		t->allocated = n;
	}
	for (size_t i = 0; i < t->n_columns; i++) {
		t->cells[t->n_rows * t->n_columns + i] = shown_text(values[i] ? values[i] : "", false, SIZE_MAX);
		if (!t->cells[t->n_rows * t->n_columns + i]) {
			for (size_t j = 0; j < i; j++)
				free(t->cells[t->n_rows * t->n_columns + j]);
			return -ENOMEM;
		}
	}
	t->n_rows++;
	return 0;
}

/* Columns of text the filter shows unchanged (a cell, a header). */
static size_t text_width(const char *s) {
	locale_t loc = width_locale(), old = loc ? uselocale(loc) : (locale_t) 0;
	size_t cols = shown_columns(s, strlen(s));

	if (old)
		uselocale(old);
	return cols;
}

void table_print(const Table *t) {
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

/* ------------------------------------------------------------------ records */

const char *const state_names[STATE_NAMES_N] = { "queued", "submitting", "pending", "completed",
	                                   "timeout", "cancelled", "failed" };

bool state_is_terminal(const char *s) {
	return streq_ptr(s, "completed") || streq_ptr(s, "timeout") || streq_ptr(s, "cancelled") || streq_ptr(s, "failed");
}

/* What a list or watch line shows of a record: a request's text, or the
 * workflow a trigger starts. */
const char *record_text(json_object *rec, char *buf, size_t size) {
	if (!streq_ptr(jstr(rec, "kind"), "trigger"))
		return jstr(rec, "request_text");
	snprintf(buf, size, "trigger %s", strna(jstr(rec, "workflow_id")));
	return buf;
}

void print_field(const char *name, const char *value) {
	if (value && value[0])
		printf("%-12s %s\n", name, value);
}

void print_record(json_object *rec) {
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
