/* config.c — reading /etc/hitld/hitld.conf strictly, and dumping it back.
 *
 * The file is read by us (bounded, regular file only) and handed to libconfig
 * as a string. Before that a small lexer that mirrors libconfig's scanner
 * refuses NUL bytes and @include, and notes integer literals that do not fit
 * an int: libconfig 1.5 silently wraps those (5000000000 reads as 705032704),
 * which would turn a typo into a plausible value. */
#include <assert.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>

#include "baseurl.h"
#include "cleanup.h"
#include "config.h"
#include "config_keys.h"
#include "log.h"
#include "store.h"
#include "webhook.h"

/* A directory that cannot exist (a path below a character device): even if
 * an @include slipped past our lexer, libconfig could open nothing. */
#define INCLUDE_DIR_NOWHERE "/dev/null"

#define GROUP_NAME_MAX 255
#define QUOTE_MAX 80

static const char *const config_groups[] = { "api", "budget", "socket", "queue", "outbox", "metrics", "log", "webhook" };

static const char *const loop_writes_table[_LOOP_WRITES_MAX] = {
	[LOOP_WRITES_ADMIN] = "admin",
	[LOOP_WRITES_ALL] = "all",
};

static const char *const log_level_table[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

const char *config_loop_writes_to_string(LoopWrites w) {
	if (w < 0 || w >= _LOOP_WRITES_MAX)
		return NULL;
	return loop_writes_table[w];
}

LoopWrites config_loop_writes_from_string(const char *s) {
	if (!s)
		return _LOOP_WRITES_INVALID;
	for (size_t i = 0; i < ELEMENTSOF(loop_writes_table); i++)
		if (streq(s, loop_writes_table[i]))
			return (LoopWrites) i;
	return _LOOP_WRITES_INVALID;
}

const char *config_log_level_to_string(int level) {
	if (level < 0 || (size_t) level >= ELEMENTSOF(log_level_table))
		return NULL;
	return log_level_table[level];
}

static void config_freep(Config **c) {
	*c = config_free(*c);
}

int config_new_default(Config **ret) {
	_cleanup_(config_freep) Config *c = NULL;

	assert(ret);

	c = calloc(1, sizeof(Config));
	if (!c)
		return -ENOMEM;

	*c = (Config) {
		.api_timeout_s = 30,
		.api_rotate_after_days = 90,
		.api_foreign_threshold = 3,
		.api_min_timeout_margin_s = 30,
		.api_loop_cache_ttl_s = 300,
		.budget_limit_per_hour = 100,
		.budget_poll_reserve = 10,
		.budget_min_poll_interval_s = 30,
		.budget_window_s = 3600,
		.budget_interactive_per_uid = 5,
		.budget_interactive_total = 20,
		.budget_warn_drain_hours = 24,
		.socket_mode = 0660,
		.socket_max_connections_per_uid = 32,
		.socket_max_connections = 1024,
		.webhook_max_connections = 64,
		.webhook_timeout_s = 10,
		.webhook_sweep_interval_s = 1800,
		.socket_max_message_bytes = 1048576,
		.socket_idle_timeout_s = 300,
		.socket_max_output_mb_per_uid = 8,
		.socket_max_output_mb_total = 64,
		.socket_max_input_mb_per_uid = 8,
		.socket_max_input_mb_total = 64,
		.socket_cpu_percent_per_uid = 25,
		.socket_loop_writes = LOOP_WRITES_ADMIN,
		.outbox_max_requests = 100000,
		.outbox_max_per_uid = 1000,
		.outbox_min_free_mb = 16,
		.outbox_max_lifetime_s = 604800,
		.outbox_retention_days = 30,
		.metrics_interval_s = 60,
		.log_level = LOG_INFO,
	};

	c->api_base_url = strdup("https://api.hitl.sh/v1");
	c->socket_path = strdup("/run/hitld.sock");
	c->socket_group = strdup("hitl");
	c->socket_admin_group = strdup("");
	c->queue_precedence_group = strdup("");
	c->outbox_state_dir = strdup("/var/lib/hitld");
	if (!c->api_base_url || !c->socket_path || !c->socket_group || !c->socket_admin_group ||
	    !c->queue_precedence_group || !c->outbox_state_dir)
		return -ENOMEM;

	*ret = TAKE_PTR(c);
	return 0;
}

Config *config_free(Config *c) {
	if (!c)
		return NULL;
	free(c->path);
	free(c->api_base_url);
	free(c->api_key_file);
	free(c->api_next_key_file);
	free(c->api_ca_file);
	free(c->socket_path);
	free(c->socket_group);
	free(c->socket_admin_group);
	free(c->queue_precedence_group);
	free(c->webhook_listen);
	free(c->webhook_public_url);
	free(c->outbox_state_dir);
	free(c->metrics_textfile);
	free(c);
	return NULL;
}

/* ---- messages ---- */

/* Sets *ret_error (when wanted) to the formatted message and returns r. */
_printf_(3, 4) static int fail(char **ret_error, int r, const char *format, ...) {
	va_list ap;

	if (!ret_error)
		return r;
	va_start(ap, format);
	if (vasprintf(ret_error, format, ap) < 0)
		*ret_error = NULL;
	va_end(ap);
	return r;
}

/* Writes s as a double-quoted libconfig string, control bytes escaped, at most
 * limit bytes of s (0: all), "..." after a cut. */
static void quote_to(FILE *f, const char *s, size_t limit) {
	size_t n = 0;

	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++, n++) {
		if (limit > 0 && n >= limit) {
			fputs("...", f);
			break;
		}
		switch (*p) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* s quoted for an error message, cut to a readable length. */
static const char *quote(const char *s, char buf[static QUOTE_MAX]) {
	FILE *f = fmemopen(buf, QUOTE_MAX, "w");

	if (!f)
		return "\"?\"";
	/* Escapes can take 4 bytes per input byte: 16 input bytes fit any case. */
	quote_to(f, s, 16);
	fputc('\0', f);
	fclose(f);
	buf[QUOTE_MAX - 1] = '\0';
	return buf;
}

static const char *type_name(int type) {
	switch (type) {
	case CONFIG_TYPE_GROUP:  return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:  return "an integer";
	case CONFIG_TYPE_FLOAT:  return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:   return "a boolean";
	case CONFIG_TYPE_ARRAY:  return "an array";
	case CONFIG_TYPE_LIST:   return "a list";
	default:                 return "nothing";
	}
}

/* ---- reading the file ---- */

/* Reads a regular file of at most CONFIG_FILE_SIZE_MAX bytes, NUL-terminated.
 * On failure returns the errno and a short reason. */
static int read_bounded(const char *path, char **ret_text, size_t *ret_size, const char **ret_reason) {
	_cleanup_(closep) int fd = -EBADF;
	int r;

	*ret_reason = NULL;
	/* O_NONBLOCK: a FIFO in place of the file must not hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	r = store_read_fd(fd, CONFIG_FILE_SIZE_MAX, ret_text, ret_size);
	switch (r) {
	case -EISDIR:
		*ret_reason = "is a directory";
		break;
	case -EBADFD:
		*ret_reason = "not a regular file";
		return -EINVAL;
	case -EFBIG:
		*ret_reason = "file is larger than 1 MiB";
		break;
	}
	return r;
}

/* An integer literal that libconfig would not read as written, and the key
 * ("group.name") it is assigned to. */
typedef struct Overflow {
	unsigned line;
	char key[128];
	char text[24];
	bool reported;
} Overflow;

#define LEX_DEPTH_MAX 8

typedef struct Lexed {
	Overflow *overflows;
	size_t n_overflows;
	/* Where the lexer is: the open groups, the last name token, and the
	 * name of the setting whose value follows (the name before '=' or ':'). */
	const char *scope[LEX_DEPTH_MAX];
	size_t scope_len[LEX_DEPTH_MAX];
	unsigned depth;
	const char *name, *assigned;
	size_t name_len, assigned_len;
} Lexed;

static void lexed_done(Lexed *l) {
	free(l->overflows);
}

static int note_overflow(Lexed *l, unsigned line, const char *start, size_t len) {
	Overflow *o;
	size_t k = 0;

	o = reallocarray(l->overflows, l->n_overflows + 1, sizeof(Overflow));
	if (!o)
		return -ENOMEM;
	l->overflows = o;
	o = &l->overflows[l->n_overflows++];
	*o = (Overflow) { .line = line };

	for (unsigned d = 0; d < l->depth && d < LEX_DEPTH_MAX && k < sizeof(o->key); d++)
		k += (size_t) snprintf(o->key + k, sizeof(o->key) - k, "%.*s.", (int) l->scope_len[d],
		                       strna(l->scope[d]));
	if (k < sizeof(o->key))
		snprintf(o->key + k, sizeof(o->key) - k, "%.*s", (int) l->assigned_len, strna(l->assigned));

	if (len >= sizeof(o->text))
		snprintf(o->text, sizeof(o->text), "%.*s...", (int) sizeof(o->text) - 4, start);
	else
		snprintf(o->text, sizeof(o->text), "%.*s", (int) len, start);
	return 0;
}

static bool is_name_char(char ch) {
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '*';
}

static bool is_digit(char ch) {
	return ch >= '0' && ch <= '9';
}

static bool is_xdigit(char ch) {
	return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Scans one number token at text[*i] (a sign or a digit or a '.' followed by a
 * digit), as libconfig's scanner would split it, and notes it if it is an
 * integer that does not fit libconfig's int (or, with an L suffix, int64). */
static int lex_number(Lexed *l, const char *text, size_t *i, unsigned line) {
	size_t start = *i, p = *i;
	bool hex = false, is_float = false;

	if (text[p] == '-' || text[p] == '+')
		p++;
	if (text[p] == '0' && (text[p + 1] == 'x' || text[p + 1] == 'X') && is_xdigit(text[p + 2])) {
		hex = true;
		p += 2;
		while (is_xdigit(text[p]))
			p++;
	} else {
		while (is_digit(text[p]))
			p++;
		if (text[p] == '.') {
			is_float = true;
			p++;
			while (is_digit(text[p]))
				p++;
		}
		if ((text[p] == 'e' || text[p] == 'E') &&
		    (is_digit(text[p + 1]) || ((text[p + 1] == '-' || text[p + 1] == '+') && is_digit(text[p + 2])))) {
			is_float = true;
			p += 2;
			while (is_digit(text[p]))
				p++;
		}
	}
	size_t end_digits = p;
	if (!is_float && text[p] == 'L') {
		p++;
		if (text[p] == 'L')
			p++;
	}
	if (is_float) {
		*i = end_digits;
		return 0;
	}
	*i = p;

	bool wide = p > end_digits;
	char digits[64];
	size_t len = end_digits - start;
	if (len >= sizeof(digits))
		return note_overflow(l, line, text + start, p - start);
	memcpy(digits, text + start, len);
	digits[len] = '\0';

	errno = 0;
	if (hex) {
		const char *x = digits + (digits[0] == '-' || digits[0] == '+') + 2;
		unsigned long long v = strtoull(x, NULL, 16);
		if (errno == ERANGE || (!wide && v > INT_MAX) || (wide && v > LLONG_MAX))
			return note_overflow(l, line, text + start, p - start);
	} else {
		long long v = strtoll(digits, NULL, 10);
		if (errno == ERANGE || (!wide && (v < INT_MIN || v > INT_MAX)))
			return note_overflow(l, line, text + start, p - start);
	}
	return 0;
}

/* Mirrors libconfig's scanner closely enough to know what is a comment, a
 * string, a name or a number; refuses NUL bytes and @include. */
static int lex(const char *path, const char *text, size_t size, Lexed *l, char **ret_error) {
	unsigned line = 1;
	size_t i = 0;
	int r;

	const char *nul = memchr(text, '\0', size);
	if (nul) {
		for (const char *p = text; p < nul; p++)
			if (*p == '\n')
				line++;
		return fail(ret_error, -EINVAL, "%s:%u: NUL byte in file", path, line);
	}

	while (i < size) {
		char ch = text[i];

		if (ch == '\n') {
			line++;
			i++;
		} else if (ch == '#' || (ch == '/' && text[i + 1] == '/')) {
			while (i < size && text[i] != '\n')
				i++;
		} else if (ch == '/' && text[i + 1] == '*') {
			i += 2;
			while (i < size && !(text[i] == '*' && text[i + 1] == '/')) {
				if (text[i] == '\n')
					line++;
				i++;
			}
			i = i < size ? i + 2 : size;
		} else if (ch == '"') {
			i++;
			while (i < size && text[i] != '"') {
				if (text[i] == '\n')
					line++;
				if (text[i] == '\\' && i + 1 < size) {
					if (text[i + 1] == '\n')
						line++;
					i++;
				}
				i++;
			}
			i = i < size ? i + 1 : size;
		} else if (ch == '@') {
			if (strncmp(text + i, "@include", 8) == 0)
				return fail(ret_error, -EINVAL,
				            "%s:%u: @include is not allowed: the configuration is one file",
				            path, line);
			i++;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '*') {
			l->name = text + i;
			while (i < size && is_name_char(text[i]))
				i++;
			l->name_len = (size_t) (text + i - l->name);
		} else if (ch == '=' || ch == ':') {
			l->assigned = l->name;
			l->assigned_len = l->name_len;
			i++;
		} else if (ch == '{') {
			if (l->depth < LEX_DEPTH_MAX) {
				l->scope[l->depth] = l->assigned;
				l->scope_len[l->depth] = l->assigned_len;
			}
			if (l->depth < UINT_MAX)
				l->depth++;
			i++;
		} else if (ch == '}') {
			if (l->depth > 0)
				l->depth--;
			i++;
		} else if (is_digit(ch) || ((ch == '-' || ch == '+' || ch == '.') && is_digit(text[i + 1]))) {
			r = lex_number(l, text, &i, line);
			if (r < 0)
				return fail(ret_error, r, "%s: %s", path, strerror(-r));
		} else
			i++;
	}
	return 0;
}

/* ---- interpreting the settings ---- */

typedef struct LoadContext {
	const char *path;
	Lexed *lexed;
	char **ret_error;
	unsigned key_lines[CONFIG_KEYS_N]; /* 0: not in the file */
} LoadContext;

_printf_(4, 5) static int key_fail(LoadContext *ctx, unsigned line, const char *key, const char *format, ...) {
	_cleanup_(freep) char *reason = NULL;
	va_list ap;

	va_start(ap, format);
	if (vasprintf(&reason, format, ap) < 0)
		reason = NULL;
	va_end(ap);
	if (!reason)
		return fail(ctx->ret_error, -ENOMEM, "%s: out of memory", ctx->path);
	return fail(ctx->ret_error, -EINVAL, "%s:%u: %s: %s", ctx->path, line, key, reason);
}

static Overflow *find_overflow(LoadContext *ctx, const char *key) {
	for (size_t i = 0; i < ctx->lexed->n_overflows; i++)
		if (streq(ctx->lexed->overflows[i].key, key) && !ctx->lexed->overflows[i].reported)
			return &ctx->lexed->overflows[i];
	return NULL;
}

static bool is_integer_type(int type) {
	return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
}

/* The integer value of s, checked against min..max. */
static int get_integer(LoadContext *ctx, const config_setting_t *s, const char *key, long long min,
                       long long max, const char *hint, long long *ret) {
	unsigned line = config_setting_source_line(s);
	int type = config_setting_type(s);
	Overflow *o;

	if (!is_integer_type(type))
		return key_fail(ctx, line, key, "expected an integer, got %s", type_name(type));

	o = find_overflow(ctx, key);
	if (o) {
		o->reported = true;
		return key_fail(ctx, line, key, "%s is out of range %lld..%lld%s", o->text, min, max, hint);
	}

	long long v = config_setting_get_int64(s);
	if (v < min || v > max)
		return key_fail(ctx, line, key, "%lld is out of range %lld..%lld%s", v, min, max, hint);
	*ret = v;
	return 0;
}

static int get_mode(LoadContext *ctx, const config_setting_t *s, const char *key, mode_t *ret) {
	unsigned line = config_setting_source_line(s);
	int type = config_setting_type(s);
	char q[QUOTE_MAX];
	long long v;
	int r;

	if (type == CONFIG_TYPE_STRING) {
		const char *str = config_setting_get_string(s);
		size_t len = strlen(str);

		if (len == 0 || len > 5 || strspn(str, "01234567") != len)
			return key_fail(ctx, line, key, "expected an octal mode such as \"0660\", got %s",
			                quote(str, q));
		unsigned long m = strtoul(str, NULL, 8);
		if (m > 0777)
			return key_fail(ctx, line, key, "%s is out of range \"0000\"..\"0777\"", quote(str, q));
		*ret = (mode_t) m;
		return 0;
	}

	if (!is_integer_type(type))
		return key_fail(ctx, line, key,
		                "expected an octal mode (a string such as \"0660\", or an integer), got %s",
		                type_name(type));

	/* The classic slip: mode = 0660 is the decimal number 660 here. */
	r = get_integer(ctx, s, key, 0, 0777,
	                " (0777 octal); an integer is read as decimal, write the mode as a string such as \"0660\"",
	                &v);
	if (r < 0)
		return r;
	*ret = (mode_t) v;
	return 0;
}

static bool has_control_chars(const char *s) {
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* Does the URL's authority (after "scheme://", up to '/', '?' or '#') hold
 * user information ("user:password@host")? */
static bool url_has_userinfo(const char *v) {
	const char *p = strstr(v, "://");

	if (!p)
		return false;
	p += 3;
	return memchr(p, '@', strcspn(p, "/?#")) != NULL;
}

/* Checks a string value of the given kind; NULL if good, else the reason. */
static const char *check_string(KeyKind kind, const char *v) {
	size_t len = strlen(v);
	const char *reason;

	switch (kind) {
	case KEY_URL:
		return baseurl_check(v, NULL, &reason) < 0 ? reason : NULL;
	case KEY_PATH:
	case KEY_SOCKET_PATH:
		if (v[0] != '/')
			return "must be an absolute path";
		if (has_control_chars(v))
			return "path contains control characters";
		if (kind == KEY_SOCKET_PATH && len > CONFIG_SOCKET_PATH_MAX)
			return "socket path is longer than 107 bytes (sun_path)";
		if (len >= PATH_MAX)
			return "path is too long";
		return NULL;
	case KEY_LISTEN:
		return webhook_parse_listen(v, NULL, NULL) < 0
		               ? "expected a numeric address and port such as \"127.0.0.1:8089\" or \"[::1]:8089\""
		               : NULL;
	case KEY_GROUP_NAME:
		if (len > GROUP_NAME_MAX)
			return "group name is longer than 255 bytes";
		if (has_control_chars(v) || strpbrk(v, " :/,"))
			return "group name contains spaces, ':', '/', ',' or control characters";
		if (v[0] == '-')
			return "group name starts with '-'";
		return NULL;
	default:
		return NULL;
	}
}

static int set_string(char **field, const char *v) {
	char *copy = strdup(v);

	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int apply_key(LoadContext *ctx, const KeyDef *k, const config_setting_t *s, Config *c) {
	unsigned line = config_setting_source_line(s);
	int type = config_setting_type(s);
	char *field = (char *) c + k->offset;
	char key[64];
	char q[QUOTE_MAX];
	long long v;
	int r;

	snprintf(key, sizeof(key), "%s.%s", k->group, k->name);

	switch (k->kind) {
	case KEY_UNSIGNED:
		r = get_integer(ctx, s, key, k->min, k->max, "", &v);
		if (r < 0)
			return r;
		*(unsigned *) (void *) field = (unsigned) v;
		return 0;

	case KEY_SIZE:
		r = get_integer(ctx, s, key, k->min, k->max, "", &v);
		if (r < 0)
			return r;
		*(size_t *) (void *) field = (size_t) v;
		return 0;

	case KEY_MODE:
		return get_mode(ctx, s, key, (mode_t *) (void *) field);

	default:
		break;
	}

	if (type != CONFIG_TYPE_STRING)
		return key_fail(ctx, line, key, "expected a string, got %s", type_name(type));
	const char *str = config_setting_get_string(s);

	switch (k->kind) {
	case KEY_LOOP_WRITES: {
		LoopWrites w = config_loop_writes_from_string(str);
		if (w < 0)
			return key_fail(ctx, line, key, "expected \"admin\" or \"all\", got %s", quote(str, q));
		*(LoopWrites *) (void *) field = w;
		return 0;
	}
	case KEY_LOG_LEVEL: {
		int level = log_level_from_string(str);
		if (level < 0)
			return key_fail(ctx, line, key,
			                "expected one of emerg, alert, crit, err, warning, notice, info, debug, got %s",
			                quote(str, q));
		*(int *) (void *) field = level;
		return 0;
	}
	default: {
		const char *reason;

		/* A password must not reach the log: this one is not echoed. */
		if (k->kind == KEY_URL && url_has_userinfo(str))
			return key_fail(ctx, line, key, "URL must not contain user information (user:password@), "
			                                "the value is not shown");
		reason = check_string(k->kind, str);
		if (reason)
			return key_fail(ctx, line, key, "%s, got %s", reason, quote(str, q));
		r = set_string((char **) (void *) field, str);
		if (r < 0)
			return fail(ctx->ret_error, r, "%s: out of memory", ctx->path);
		return 0;
	}
	}
}

static const KeyDef *find_key(const char *group, const char *name, size_t *ret_index) {
	for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
		if (streq(config_keys[i].group, group) && streq(config_keys[i].name, name)) {
			*ret_index = i;
			return &config_keys[i];
		}
	return NULL;
}

static bool is_known_group(const char *name) {
	for (size_t i = 0; i < ELEMENTSOF(config_groups); i++)
		if (streq(config_groups[i], name))
			return true;
	return false;
}

static int apply_group(LoadContext *ctx, const config_setting_t *g, Config *c) {
	const char *group = config_setting_name(g);
	int r;

	if (!is_known_group(group))
		return key_fail(ctx, config_setting_source_line(g), group, "unknown group");
	if (!config_setting_is_group(g))
		return key_fail(ctx, config_setting_source_line(g), group, "expected a group, got %s",
		                type_name(config_setting_type(g)));

	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
		const char *name = config_setting_name(s);
		size_t index;
		const KeyDef *k = find_key(group, name, &index);

		if (!k) {
			char key[512];
			snprintf(key, sizeof(key), "%s.%s", group, name);
			return key_fail(ctx, config_setting_source_line(s), key, "unknown key");
		}
		r = apply_key(ctx, k, s, c);
		if (r < 0)
			return r;
		ctx->key_lines[index] = config_setting_source_line(s);
	}
	return 0;
}

/* Rules that tie keys together, after every key is read. */
static int check_cross(LoadContext *ctx, Config *c) {
	size_t index;
	unsigned half = c->budget_limit_per_hour / 2;

	(void) find_key("budget", "poll_reserve", &index);
	if (c->budget_poll_reserve > half) {
		if (ctx->key_lines[index] == 0)
			/* Only the default is too big for a small limit: shrink it. */
			c->budget_poll_reserve = half;
		else
			return key_fail(ctx, ctx->key_lines[index], "budget.poll_reserve",
			                "%u is out of range 0..%u (half of budget.limit_per_hour)",
			                c->budget_poll_reserve, half);
	}
	/* The interactive shares scale with the limit unless set; set, they
	 * must leave the reserve and nest (per uid ≤ total). */
	(void) find_key("budget", "interactive_total", &index);
	if (ctx->key_lines[index] == 0)
		c->budget_interactive_total = c->budget_limit_per_hour / 5;
	else if (c->budget_interactive_total > c->budget_limit_per_hour - c->budget_poll_reserve)
		return key_fail(ctx, ctx->key_lines[index], "budget.interactive_total",
		                "%u is out of range 0..%u (budget.limit_per_hour less budget.poll_reserve)",
		                c->budget_interactive_total, c->budget_limit_per_hour - c->budget_poll_reserve);
	(void) find_key("budget", "interactive_per_uid", &index);
	if (ctx->key_lines[index] == 0)
		c->budget_interactive_per_uid = c->budget_limit_per_hour >= 20 ? c->budget_limit_per_hour / 20
		                                                                 : c->budget_interactive_total > 0;
	else if (c->budget_interactive_per_uid > c->budget_interactive_total)
		return key_fail(ctx, ctx->key_lines[index], "budget.interactive_per_uid",
		                "%u is out of range 0..%u (budget.interactive_total)", c->budget_interactive_per_uid,
		                c->budget_interactive_total);
	/* node_exporter's textfile collector reads *.prom and nothing else;
	 * the file is replaced through NAME.tmp beside it. */
	(void) find_key("metrics", "textfile", &index);
	if (c->metrics_textfile) {
		size_t len = strlen(c->metrics_textfile);

		if (len <= strlen("/.prom") || !streq(c->metrics_textfile + len - 5, ".prom") ||
		    c->metrics_textfile[len - 6] == '/')
			return key_fail(ctx, ctx->key_lines[index], "metrics.textfile",
			                "must name a file ending in .prom (node_exporter reads no other)");
	}
	/* A listener without a public URL would hear callbacks nobody asked for. */
	(void) find_key("webhook", "listen", &index);
	if (c->webhook_listen && !c->webhook_public_url)
		return key_fail(ctx, ctx->key_lines[index], "webhook.listen",
		                "needs webhook.public_url (the URL HITL.sh posts to)");
	return 0;
}

static void config_destroyp(config_t *lc) {
	config_destroy(lc);
}

int config_load(const char *path, bool must_exist, Config **ret, char **ret_error) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(freep) char *text = NULL;
	_cleanup_(lexed_done) Lexed lexed = {};
	const char *reason = NULL;
	size_t size;
	int r;

	assert(path);
	assert(ret);

	r = config_new_default(&c);
	if (r < 0)
		return fail(ret_error, r, "%s: out of memory", path);

	r = read_bounded(path, &text, &size, &reason);
	if (r == -ENOENT && !must_exist) {
		*ret = TAKE_PTR(c);
		return 0;
	}
	if (r < 0)
		return fail(ret_error, r, "%s: %s", path, reason ?: strerror(-r));

	assert(text); /* read_bounded() succeeded: text and size are set */
	r = lex(path, text, size, &lexed, ret_error);
	if (r < 0)
		return r;

	_cleanup_(config_destroyp) config_t lc;
	config_init(&lc);
	config_set_include_dir(&lc, INCLUDE_DIR_NOWHERE);
	if (!config_read_string(&lc, text))
		return fail(ret_error, -EINVAL, "%s:%d: %s", path, config_error_line(&lc),
		            config_error_text(&lc) ?: "syntax error");

	LoadContext ctx = {
		.path = path,
		.lexed = &lexed,
		.ret_error = ret_error,
	};
	const config_setting_t *root = config_root_setting(&lc);
	for (int i = 0; i < config_setting_length(root); i++) {
		r = apply_group(&ctx, config_setting_get_elem(root, (unsigned) i), c);
		if (r < 0)
			return r;
	}

	/* Every key that takes an integer has claimed its literal above; one left
	 * over means the lexer and libconfig disagreed. Refuse rather than guess. */
	for (size_t i = 0; i < lexed.n_overflows; i++)
		if (!lexed.overflows[i].reported)
			return fail(ret_error, -EINVAL, "%s:%u: %s is out of range for an integer", path,
			            lexed.overflows[i].line, lexed.overflows[i].text);

	r = check_cross(&ctx, c);
	if (r < 0)
		return r;

	c->path = strdup(path);
	if (!c->path)
		return fail(ret_error, -ENOMEM, "%s: out of memory", path);

	*ret = TAKE_PTR(c);
	return 0;
}

/* ---- dump ---- */

void config_dump(const Config *c, FILE *f) {
	const char *group = NULL;

	assert(c);
	assert(f);

	fputs("# hitld configuration in effect", f);
	if (c->path) {
		fputs(", read from ", f);
		quote_to(f, c->path, 0);
	} else
		fputs(" (built-in defaults, no file read)", f);
	fputc('\n', f);

	for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
		const KeyDef *k = &config_keys[i];
		const char *field = (const char *) c + k->offset;

		if (!streq_ptr(group, k->group)) {
			fprintf(f, "%s%s = {\n", group ? "};\n\n" : "\n", k->group);
			group = k->group;
		}

		switch (k->kind) {
		case KEY_UNSIGNED:
			fprintf(f, "\t%s = %u;\n", k->name, *(const unsigned *) (const void *) field);
			break;
		case KEY_SIZE:
			fprintf(f, "\t%s = %zu;\n", k->name, *(const size_t *) (const void *) field);
			break;
		case KEY_MODE:
			fprintf(f, "\t%s = \"%04o\";\n", k->name,
			        (unsigned) *(const mode_t *) (const void *) field & 07777);
			break;
		case KEY_LOOP_WRITES:
			fprintf(f, "\t%s = \"%s\";\n", k->name,
			        strna(config_loop_writes_to_string(*(const LoopWrites *) (const void *) field)));
			break;
		case KEY_LOG_LEVEL:
			fprintf(f, "\t%s = \"%s\";\n", k->name,
			        strna(config_log_level_to_string(*(const int *) (const void *) field)));
			break;
		default: {
			const char *v = *(char *const *) (const void *) field;
			if (!v) {
				fprintf(f, "\t# %s is not set\n", k->name);
				break;
			}
			fprintf(f, "\t%s = ", k->name);
			quote_to(f, v, 0);
			fputs(";\n", f);
		}
		}
	}
	if (group)
		fputs("};\n", f);
}
