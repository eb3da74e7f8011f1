/* validate.c — HITL.sh's validation rules (docs/HITL-API.md: loops, create request,
 * feedback, response types, content types), applied before anything is queued,
 * and the response_data → result mapping. */
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "validate.h"

#define FIELD_MAX sizeof(((ValidationError *) NULL)->field)
#define NUMBER_STR_MAX 32
#define STRV(...) ((const char *const[]) { __VA_ARGS__, NULL })

#define TEXT_MAX_LENGTH_DEFAULT 1000
#define TEXT_MAX_LENGTH_MAX 5000
#define OPTION_VALUE_MAX 100
#define OPTION_LABEL_MAX 200
#define OPTION_DESCRIPTION_MAX 500
#define RATING_SCALE_MAX_MAX 100.0
#define NUMBER_DECIMAL_PLACES_MAX 10
#define NUMBER_DECIMAL_PLACES_DEFAULT 2
#define DISPLAY_STRING_MAX 50          /* number prefix/suffix/placeholder */
#define BOOLEAN_LABEL_MAX 100
#define EDITABLE_MAX_LENGTH_DEFAULT 5000
#define FILE_NAME_MAX 255
#define FILE_TYPE_MAX 100
#define RATING_LABEL_MAX 100
#define PLATFORM_VERSION_MAX 50
#define FEEDBACK_TAGS_MAX 20
#define FEEDBACK_TAG_MAX 100
#define FEEDBACK_COMMENT_MAX 1000
#define LOOP_NAME_MAX 100
#define LOOP_DESCRIPTION_MAX 500
#define LOOP_ICON_MAX 100
#define OBJECT_ID_LEN 24

typedef enum ResponseType {
	RESPONSE_TEXT,
	RESPONSE_SINGLE_SELECT,
	RESPONSE_MULTI_SELECT,
	RESPONSE_RATING,
	RESPONSE_NUMBER,
	RESPONSE_BOOLEAN,
	RESPONSE_EDITABLE_TEXT,
	_RESPONSE_TYPE_MAX,
	_RESPONSE_TYPE_INVALID = -EINVAL,
} ResponseType;

static const char *const response_type_names[_RESPONSE_TYPE_MAX] = {
	[RESPONSE_TEXT] = "text",
	[RESPONSE_SINGLE_SELECT] = "single_select",
	[RESPONSE_MULTI_SELECT] = "multi_select",
	[RESPONSE_RATING] = "rating",
	[RESPONSE_NUMBER] = "number",
	[RESPONSE_BOOLEAN] = "boolean",
	[RESPONSE_EDITABLE_TEXT] = "editable_text",
};

static const char *const priority_names[] = { "low", "medium", "high", "critical" };
static const char *const processing_type_names[] = { "time-sensitive", "deferred" };
static const char *const content_type_names[] = { "markdown", "image", "file", "video", "audio" };

/* The URL field each content type requires; every other one is refused, so
 * that no field HITL.sh does not expect for the type is sent. */
static const char *const content_url_fields[] = { NULL, "image_url", "file_url", "video_url", "audio_url" };
static const char *const platform_names[] = { "n8n", "zapier", "web_portal", "api", "mobile", "webhook" };
static const char *const category_names[] = { "positive", "constructive", "issue" };

static const char *const submit_fields[] = {
	"loop_id", "request_text", "response_type", "response_config", "default_response",
	"priority", "processing_type", "type", "image_url", "file_url", "file_type", "file_name",
	"video_url", "audio_url", "timeout_seconds", "context", "callback_url", "platform",
	"platform_version",
};

static const char *const loop_fields[] = { "name", "description", "icon" };

/* One select option, borrowed from the response_config it was read from. */
typedef struct SelectOption {
	const char *value;
	size_t value_len;
	const char *label;
	size_t label_len;
	bool simple;                   /* given as a bare string */
} SelectOption;

/* A response_config read and checked, defaults applied. Borrows the config's strings. */
typedef struct ResponseSpec {
	ResponseType type;
	bool required;

	int64_t min_length, max_length;           /* text, code points after trimming; editable_text */
	const char *draft_text;                   /* editable_text */

	SelectOption options[VALIDATE_OPTIONS_MAX];
	size_t n_options;
	int64_t min_selections, max_selections;   /* multi_select */

	double scale_min, scale_max, scale_step;  /* rating */

	double min_value, max_value;              /* number */
	int64_t decimal_places;
	bool allow_negative;
} ResponseSpec;

/* ---- errors --------------------------------------------------------------------- */

/* Cuts an incomplete UTF-8 sequence off the end of s (left there by truncation). */
static void utf8_cut_partial(char *s) {
	size_t n = strlen(s), i = n;

	while (i > 0 && ((unsigned char) s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;

	unsigned char lead = (unsigned char) s[i - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

_printf_(3, 4)
static int fail(ValidationError *err, const char *field, const char *format, ...) {
	va_list ap;
	int n;

	if (!err)
		return -EINVAL;

	n = snprintf(err->field, sizeof err->field, "%s", field);
	if (n < 0 || (size_t) n >= sizeof err->field)
		utf8_cut_partial(err->field);

	va_start(ap, format);
	n = vsnprintf(err->reason, sizeof err->reason, format, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= sizeof err->reason)
		utf8_cut_partial(err->reason);

	return -EINVAL;
}

/* Builds a field path; a user-supplied key (rating labels) may not fit, and must
 * not leave half a character behind for the reason that quotes it. */
_printf_(3, 4)
static const char *format_field(char *buf, size_t size, const char *format, ...) {
	va_list ap;
	int n;

	va_start(ap, format);
	n = vsnprintf(buf, size, format, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= size)
		utf8_cut_partial(buf);
	return buf;
}

/* How a reason names a field: its path without the "response_config." or
 * "feedback." prefix, as HITL.sh's messages do ("max_length must be …"). */
static const char *short_name(const char *field) {
	static const char *const prefixes[] = { "response_config.", "feedback." };

	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
		if (strncmp(field, prefixes[i], strlen(prefixes[i])) == 0)
			return field + strlen(prefixes[i]);
	return field;
}

/* "%.15g": integral values print without a fraction or exponent (5, 2592000, 0.5). */
static const char *format_number(char buf[static NUMBER_STR_MAX], double x) {
	snprintf(buf, NUMBER_STR_MAX, "%.15g", x);
	return buf;
}

static const char *join_names(const char *const *names, size_t n, char *buf, size_t size) {
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		int k = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "", names[i]);
		if (k < 0)
			break;
		used += (size_t) k;
	}
	return buf;
}

/* ---- strings and numbers ---------------------------------------------------------- */

/* Counts the code points of s[0..n) if it is well-formed UTF-8: no overlong forms,
 * no surrogates, nothing past U+10FFFF. */
static bool utf8_count(const char *s, size_t n, size_t *ret_count) {
	const unsigned char *p = (const unsigned char *) s;
	size_t count = 0;

	for (size_t i = 0; i < n; count++) {
		unsigned char c = p[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else
			return false;

		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}

	*ret_count = count;
	return true;
}

static bool ascii_is_space(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool ascii_is_alnum(char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char ascii_tolower(char c) {
	return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static bool ascii_is_hex(char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool bytes_eq(const char *a, size_t a_len, const char *b, size_t b_len) {
	return a_len == b_len && memcmp(a, b, a_len) == 0;
}

static bool bytes_eq_ascii_case(const char *a, size_t a_len, const char *b, size_t b_len) {
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++)
		if (ascii_tolower(a[i]) != ascii_tolower(b[i]))
			return false;
	return true;
}

/* snake_case(label) == s: lower-case ASCII, each run of other bytes (spaces,
 * punctuation, emoji) one "_", none at either end. "✅ Approve it" → "approve_it". */
static bool snake_case_eq(const char *label, size_t label_len, const char *s, size_t len) {
	size_t n = 0;
	bool gap = false;

	for (size_t i = 0; i < label_len; i++) {
		char c = label[i];

		if (!ascii_is_alnum(c)) {
			gap = true;
			continue;
		}
		if (gap && n > 0) {
			if (n >= len || s[n] != '_')
				return false;
			n++;
		}
		gap = false;
		if (n >= len || s[n] != ascii_tolower(c))
			return false;
		n++;
	}
	return n > 0 && n == len;
}

static bool json_get_string(json_object *j, const char **ret, size_t *ret_len) {
	if (!json_object_is_type(j, json_type_string))
		return false;
	*ret = json_object_get_string(j);
	*ret_len = (size_t) json_object_get_string_len(j);
	return true;
}

static bool json_string_eq(json_object *j, const char *s) {
	const char *v;
	size_t len;

	return json_get_string(j, &v, &len) && bytes_eq(v, len, s, strlen(s));
}

/* A finite JSON number (int or double). */
static bool json_get_number(json_object *j, double *ret) {
	double x;

	if (json_object_is_type(j, json_type_int))
		x = (double) json_object_get_int64(j);
	else if (json_object_is_type(j, json_type_double))
		x = json_object_get_double(j);
	else
		return false;
	if (!isfinite(x))
		return false;
	*ret = x;
	return true;
}

/* A JSON integer, or a double without a fraction ("60.0"). */
static bool json_get_integer(json_object *j, int64_t *ret) {
	if (json_object_is_type(j, json_type_int)) {
		*ret = json_object_get_int64(j);
		return true;
	}
	if (json_object_is_type(j, json_type_double)) {
		double x = json_object_get_double(j);

		if (!isfinite(x) || x < -0x1p63 || x >= 0x1p63 || (double) (int64_t) x != x)
			return false;
		*ret = (int64_t) x;
		return true;
	}
	return false;
}

/* Is x an integer up to floating-point noise? docs/HITL-API.md §3 (rating steps) allows 1e-9; where x
 * is so large that 1e-9 is below its resolution, a few units in the last place
 * (2·|x|·ε) are allowed instead, else 12345678.91 would not have two decimals. */
static bool is_integral(double x) {
	double a, rounded, tolerance, diff;

	if (!isfinite(x))
		return false;
	a = x < 0 ? -x : x;
	if (a >= 0x1p52)
		return true;          /* every double this large is an integer */
	rounded = (double) (int64_t) (a + 0.5);
	tolerance = 2 * a * DBL_EPSILON;
	if (tolerance < 1e-9)
		tolerance = 1e-9;
	diff = a > rounded ? a - rounded : rounded - a;
	return diff <= tolerance;
}

/* ---- generic field checks ----------------------------------------------------------- */

/* j is a well-formed UTF-8 string of min..max code points. */
static int check_string(json_object *j, const char *field, size_t min, size_t max, ValidationError *err) {
	const char *name = short_name(field), *s;
	size_t len, count;

	if (!json_get_string(j, &s, &len))
		return fail(err, field, "%s must be a string", name);
	if (!utf8_count(s, len, &count))
		return fail(err, field, "%s must be valid UTF-8", name);
	/* "\u0000" is valid JSON, but the record file (record.c) and every C string
	 * downstream end there: refuse it here rather than fail to store it. */
	if (memchr(s, '\0', len))
		return fail(err, field, "%s must not contain NUL characters", name);
	if (count < min || count > max) {
		if (min == 0)
			return fail(err, field, "%s must be at most %zu characters", name, max);
		return fail(err, field, "%s must be between %zu and %zu characters", name, min, max);
	}
	return 0;
}

static int check_bool(json_object *j, const char *field, ValidationError *err) {
	if (!json_object_is_type(j, json_type_boolean))
		return fail(err, field, "%s must be a boolean", short_name(field));
	return 0;
}

/* Returns the index of j's value in names, or -EINVAL with HITL.sh's enum wording. */
static int check_enum(json_object *j, const char *field, const char *const *names, size_t n,
                      ValidationError *err) {
	char list[160];

	if (!json_object_is_type(j, json_type_string))
		return fail(err, field, "%s must be a string", short_name(field));
	for (size_t i = 0; i < n; i++)
		if (json_string_eq(j, names[i]))
			return (int) i;
	return fail(err, field, "%s must be one of: %s", short_name(field),
	            join_names(names, n, list, sizeof list));
}

static int check_color(json_object *j, const char *field, ValidationError *err) {
	const char *s;
	size_t len;

	if (json_get_string(j, &s, &len) && len == 7 && s[0] == '#') {
		bool hex = true;
		for (size_t i = 1; i < 7; i++)
			hex = hex && ascii_is_hex(s[i]);
		if (hex)
			return 0;
	}
	return fail(err, field, "%s must be a colour of the form #rrggbb", short_name(field));
}

/* An array of at most max_items strings of at most max_len code points each. */
static int check_string_array(json_object *j, const char *field, size_t max_items, size_t max_len,
                              ValidationError *err) {
	char item[FIELD_MAX];
	size_t n;
	int r;

	if (!json_object_is_type(j, json_type_array) || (n = json_object_array_length(j)) > max_items)
		return fail(err, field, "%s must be an array of at most %zu strings", short_name(field), max_items);
	for (size_t i = 0; i < n; i++) {
		snprintf(item, sizeof item, "%s[%zu]", field, i);
		r = check_string(json_object_array_get_idx(j, i), item, 0, max_len, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool strv_contains_n(const char *const *names, size_t n, const char *s) {
	for (size_t i = 0; i < n; i++)
		if (streq(names[i], s))
			return true;
	return false;
}

static int check_known_fields(json_object *obj, const char *const *known, size_t n, ValidationError *err) {
	json_object_object_foreach(obj, key, value) {
		(void) value;
		if (!strv_contains_n(known, n, key))
			return fail(err, key, "unknown field");
	}
	return 0;
}

/* An absolute http:// or https:// URL with a host (optionally userinfo and a
 * port), no whitespace or control characters. The path is not inspected. */
static bool url_is_valid(const char *s, size_t len) {
	const char *authority, *host, *port = NULL;
	size_t scheme_len, authority_len = 0, host_len, port_len = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
	}

	if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
		scheme_len = 7;
	else if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
		scheme_len = 8;
	else
		return false;

	authority = s + scheme_len;
	while (scheme_len + authority_len < len && !strchr("/?#", authority[authority_len]))
		authority_len++;

	host = authority;
	for (size_t i = authority_len; i > 0; i--)
		if (authority[i - 1] == '@') {
			host = authority + i;
			break;
		}
	host_len = authority_len - (size_t) (host - authority);

	if (host_len > 0 && host[0] == '[') {
		const char *close = memchr(host, ']', host_len);
		size_t rest;

		if (!close || close == host + 1)
			return false;
		rest = host_len - (size_t) (close + 1 - host);
		if (rest > 0) {
			if (close[1] != ':')
				return false;
			port = close + 2;
			port_len = rest - 1;
		}
	} else {
		const char *colon = memchr(host, ':', host_len);

		if (colon) {
			port = colon + 1;
			port_len = host_len - (size_t) (port - host);
			host_len = (size_t) (colon - host);
		}
		if (host_len == 0)
			return false;
	}

	if (port) {
		unsigned number = 0;

		if (port_len == 0 || port_len > 5)
			return false;
		for (size_t i = 0; i < port_len; i++) {
			if (port[i] < '0' || port[i] > '9')
				return false;
			number = number * 10 + (unsigned) (port[i] - '0');
		}
		if (number > 65535)
			return false;
	}
	return true;
}

static int check_url(json_object *j, const char *field, ValidationError *err) {
	const char *s;
	size_t len, count;

	if (!json_get_string(j, &s, &len))
		return fail(err, field, "%s must be a string", field);
	if (len > VALIDATE_URL_MAX)
		return fail(err, field, "%s must be at most %d bytes", field, VALIDATE_URL_MAX);
	if (!utf8_count(s, len, &count) || !url_is_valid(s, len))
		return fail(err, field, "%s must be an absolute http or https URL", field);
	return 0;
}

/* Walks a JSON value: -E2BIG if containers nest deeper than VALIDATE_JSON_DEPTH_MAX
 * (j itself counts when it is one), -EILSEQ if a string or key is not UTF-8.
 * Recursion is bounded by the depth limit. */
static int check_json_tree(json_object *j, unsigned enclosing) {
	const char *s;
	size_t len, count;
	int r;

	switch (json_object_get_type(j)) {
	case json_type_object:
		if (enclosing + 1 > VALIDATE_JSON_DEPTH_MAX)
			return -E2BIG;
		json_object_object_foreach(j, key, value) {
			if (!utf8_count(key, strlen(key), &count))
				return -EILSEQ;
			r = check_json_tree(value, enclosing + 1);
			if (r < 0)
				return r;
		}
		return 0;

	case json_type_array:
		if (enclosing + 1 > VALIDATE_JSON_DEPTH_MAX)
			return -E2BIG;
		for (size_t i = 0, n = json_object_array_length(j); i < n; i++) {
			r = check_json_tree(json_object_array_get_idx(j, i), enclosing + 1);
			if (r < 0)
				return r;
		}
		return 0;

	case json_type_string:
		if (!json_get_string(j, &s, &len) || !utf8_count(s, len, &count))
			return -EILSEQ;
		return 0;

	default:
		return 0;
	}
}

/* The compact serialisation's length; json-c caches the text in the object. */
static size_t serialised_size(json_object *j) {
	size_t len = 0;

	if (!json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len))
		return SIZE_MAX;
	return len;
}

static int check_context(json_object *context, ValidationError *err) {
	json_object *reserved;
	int r;

	if (!json_object_is_type(context, json_type_object))
		return fail(err, "context", "context must be an object");

	/* Depth first: it bounds the serialiser's recursion below. */
	r = check_json_tree(context, 0);
	if (r == -E2BIG)
		return fail(err, "context", "context is nested too deeply");
	if (r < 0)
		return fail(err, "context", "context must be valid UTF-8");

	if (json_object_object_get_ex(context, "hitld_id", &reserved))
		return fail(err, "context.hitld_id", "context.hitld_id is reserved");

	if (serialised_size(context) > VALIDATE_CONTEXT_SIZE_MAX)
		return fail(err, "context", "context must be under 50KB");
	return 0;
}

/* ---- response_config --------------------------------------------------------------- */

static ResponseType response_type_from_string(const char *s) {
	if (!s)
		return _RESPONSE_TYPE_INVALID;
	for (size_t i = 0; i < _RESPONSE_TYPE_MAX; i++)
		if (streq(response_type_names[i], s))
			return (ResponseType) i;
	return _RESPONSE_TYPE_INVALID;
}

static const char *config_field(char buf[static FIELD_MAX], const char *key) {
	snprintf(buf, FIELD_MAX, "response_config.%s", key);
	return buf;
}

/* Reads an optional integer key; *ret = def when absent. */
static int config_int(json_object *config, const char *key, int64_t def, int64_t *ret, ValidationError *err) {
	char field[FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v)) {
		*ret = def;
		return 0;
	}
	if (!json_get_integer(v, ret))
		return fail(err, config_field(field, key), "%s must be an integer", key);
	return 0;
}

static int config_bool(json_object *config, const char *key, bool def, bool *ret, ValidationError *err) {
	char field[FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v)) {
		*ret = def;
		return 0;
	}
	if (!json_object_is_type(v, json_type_boolean))
		return fail(err, config_field(field, key), "%s must be a boolean", key);
	*ret = json_object_get_boolean(v);
	return 0;
}

/* Reads the first present key of keys (the canonical name first, then aliases).
 * Returns 1 with *ret and *ret_key, 0 if none is present, or -EINVAL. */
static int config_number(json_object *config, const char *const *keys, double *ret, const char **ret_key,
                         ValidationError *err) {
	char field[FIELD_MAX];
	json_object *v;

	for (const char *const *key = keys; *key; key++) {
		if (!json_object_object_get_ex(config, *key, &v))
			continue;
		if (!json_get_number(v, ret))
			return fail(err, config_field(field, *key), "%s must be a number", *key);
		*ret_key = *key;
		return 1;
	}
	return 0;
}

static int config_string(json_object *config, const char *key, size_t min, size_t max, ValidationError *err) {
	char field[FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v))
		return 0;
	return check_string(v, config_field(field, key), min, max, err);
}

static int config_color(json_object *config, const char *key, ValidationError *err) {
	char field[FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v))
		return 0;
	return check_color(v, config_field(field, key), err);
}

static int parse_text_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	int r;

	r = config_int(config, "max_length", TEXT_MAX_LENGTH_DEFAULT, &spec->max_length, err);
	if (r < 0)
		return r;
	if (spec->max_length < 1 || spec->max_length > TEXT_MAX_LENGTH_MAX)
		return fail(err, "response_config.max_length", "max_length must be between 1 and %d",
		            TEXT_MAX_LENGTH_MAX);

	r = config_int(config, "min_length", 0, &spec->min_length, err);
	if (r < 0)
		return r;
	if (spec->min_length < 0 || spec->min_length > spec->max_length)
		return fail(err, "response_config.min_length", "min_length must be between 0 and max_length (%" PRId64 ")",
		            spec->max_length);

	r = config_string(config, "placeholder", 0, SIZE_MAX, err);
	if (r < 0)
		return r;
	return config_string(config, "guidelines", 0, SIZE_MAX, err);
}

/* editable_text: the reviewer edits draft_text, at most max_length (1–5000)
 * characters; the answer is {revised_text, was_edited}. */
static int parse_editable_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	json_object *draft;
	size_t len = 0, count = 0;
	int r;

	r = config_int(config, "max_length", EDITABLE_MAX_LENGTH_DEFAULT, &spec->max_length, err);
	if (r < 0)
		return r;
	if (spec->max_length < 1 || spec->max_length > TEXT_MAX_LENGTH_MAX)
		return fail(err, "response_config.max_length", "max_length must be between 1 and %d",
		            TEXT_MAX_LENGTH_MAX);

	if (!json_object_object_get_ex(config, "draft_text", &draft))
		return fail(err, "response_config.draft_text", "draft_text is required for editable_text");
	r = check_string(draft, "response_config.draft_text", 1, TEXT_MAX_LENGTH_MAX, err);
	if (r < 0)
		return r;
	json_get_string(draft, &spec->draft_text, &len);
	(void) utf8_count(spec->draft_text, len, &count);
	if ((int64_t) count > spec->max_length)
		return fail(err, "response_config.draft_text", "draft_text must be at most max_length (%" PRId64 ") characters",
		            spec->max_length);
	return config_string(config, "placeholder", 0, SIZE_MAX, err);
}

static int parse_option(json_object *o, size_t i, SelectOption *ret, ValidationError *err) {
	char field[FIELD_MAX], sub[FIELD_MAX + 16];
	SelectOption opt = { .value = NULL };
	json_object *v;
	int r;

	snprintf(field, sizeof field, "response_config.options[%zu]", i);

	if (json_object_is_type(o, json_type_string)) {
		r = check_string(o, field, 1, OPTION_VALUE_MAX, err);
		if (r < 0)
			return r;
		json_get_string(o, &opt.value, &opt.value_len);
		opt.label = opt.value;
		opt.label_len = opt.value_len;
		opt.simple = true;
		*ret = opt;
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return fail(err, field, "%s must be a string or an object", short_name(field));

	snprintf(sub, sizeof sub, "%s.value", field);
	if (!json_object_object_get_ex(o, "value", &v))
		return fail(err, sub, "%s is required", short_name(sub));
	r = check_string(v, sub, 1, OPTION_VALUE_MAX, err);
	if (r < 0)
		return r;
	json_get_string(v, &opt.value, &opt.value_len);

	snprintf(sub, sizeof sub, "%s.label", field);
	if (!json_object_object_get_ex(o, "label", &v))
		return fail(err, sub, "%s is required", short_name(sub));
	r = check_string(v, sub, 1, OPTION_LABEL_MAX, err);
	if (r < 0)
		return r;
	json_get_string(v, &opt.label, &opt.label_len);

	if (json_object_object_get_ex(o, "description", &v)) {
		snprintf(sub, sizeof sub, "%s.description", field);
		r = check_string(v, sub, 0, OPTION_DESCRIPTION_MAX, err);
		if (r < 0)
			return r;
	}
	if (json_object_object_get_ex(o, "color", &v)) {
		snprintf(sub, sizeof sub, "%s.color", field);
		r = check_color(v, sub, err);
		if (r < 0)
			return r;
	}

	*ret = opt;
	return 0;
}

static int parse_select_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	json_object *options;
	bool ignored;
	size_t n;
	int r;

	if (!json_object_object_get_ex(config, "options", &options) ||
	    !json_object_is_type(options, json_type_array) ||
	    (n = json_object_array_length(options)) == 0)
		return fail(err, "response_config.options", "options array required for select response type");
	if (n > VALIDATE_OPTIONS_MAX)
		return fail(err, "response_config.options", "options must contain between 1 and %d items",
		            VALIDATE_OPTIONS_MAX);

	for (size_t i = 0; i < n; i++) {
		SelectOption *opt = &spec->options[i];

		r = parse_option(json_object_array_get_idx(options, i), i, opt, err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < i; k++)
			if (bytes_eq(spec->options[k].value, spec->options[k].value_len, opt->value, opt->value_len)) {
				char field[FIELD_MAX];

				snprintf(field, sizeof field, "response_config.options[%zu]%s", i,
				         opt->simple ? "" : ".value");
				return fail(err, field, "duplicate option value: %s", opt->value);
			}
	}
	spec->n_options = n;

	r = config_bool(config, "allow_other", false, &ignored, err);
	if (r < 0)
		return r;
	r = config_bool(config, "randomize_order", false, &ignored, err);
	if (r < 0)
		return r;

	if (spec->type != RESPONSE_MULTI_SELECT)
		return 0;

	r = config_int(config, "min_selections", 0, &spec->min_selections, err);
	if (r < 0)
		return r;
	r = config_int(config, "max_selections", (int64_t) n, &spec->max_selections, err);
	if (r < 0)
		return r;
	if (spec->min_selections < 0 || spec->min_selections > (int64_t) n)
		return fail(err, "response_config.min_selections", "min_selections must be between 0 and %zu", n);
	if (spec->max_selections < 0 || spec->max_selections > (int64_t) n)
		return fail(err, "response_config.max_selections",
		            "max_selections must be between 0 and the number of options (%zu)", n);
	if (spec->max_selections < spec->min_selections)
		return fail(err, "response_config.max_selections", "max_selections must be >= min_selections");
	return 0;
}

static int parse_rating_labels(json_object *config, ValidationError *err) {
	char field[FIELD_MAX];
	json_object *labels;
	int r;

	if (!json_object_object_get_ex(config, "labels", &labels))
		return 0;
	if (!json_object_is_type(labels, json_type_object))
		return fail(err, "response_config.labels", "labels must be an object");

	json_object_object_foreach(labels, key, value) {
		format_field(field, sizeof field, "response_config.labels.%s", key);
		r = check_string(value, field, 0, RATING_LABEL_MAX, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_rating_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	const char *max_key = NULL, *min_key = NULL, *step_key = NULL;
	char field[FIELD_MAX];
	int r;

	/* Canonical scale_* first, then the older aliases (docs/HITL-API.md §3). */
	r = config_number(config, STRV("scale_max", "max", "max_value"), &spec->scale_max, &max_key, err);
	if (r < 0)
		return r;
	if (r == 0)
		return fail(err, "response_config.scale_max", "scale_max is required");
	if (spec->scale_max > RATING_SCALE_MAX_MAX)
		return fail(err, config_field(field, max_key), "%s must be at most 100", max_key);

	r = config_number(config, STRV("scale_min", "min", "min_value"), &spec->scale_min, &min_key, err);
	if (r < 0)
		return r;
	if (r == 0)
		spec->scale_min = 1;
	if (spec->scale_min >= spec->scale_max) {
		if (min_key)
			return fail(err, config_field(field, min_key), "%s must be less than %s", min_key, max_key);
		return fail(err, config_field(field, max_key), "%s must be greater than scale_min (1)", max_key);
	}

	r = config_number(config, STRV("scale_step", "step"), &spec->scale_step, &step_key, err);
	if (r < 0)
		return r;
	if (r == 0)
		spec->scale_step = 1;
	if (spec->scale_step <= 0)
		return fail(err, config_field(field, step_key), "%s must be greater than 0", step_key);

	return parse_rating_labels(config, err);
}

static int parse_number_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	const char *key;
	int r;

	r = config_number(config, STRV("max_value"), &spec->max_value, &key, err);
	if (r < 0)
		return r;
	if (r == 0)
		return fail(err, "response_config.max_value", "max_value is required");

	r = config_number(config, STRV("min_value"), &spec->min_value, &key, err);
	if (r < 0)
		return r;
	if (r == 0)
		spec->min_value = 0;
	if (spec->max_value <= spec->min_value)
		return fail(err, "response_config.max_value", "max_value must be greater than min_value");

	r = config_int(config, "decimal_places", NUMBER_DECIMAL_PLACES_DEFAULT, &spec->decimal_places, err);
	if (r < 0)
		return r;
	if (spec->decimal_places < 0 || spec->decimal_places > NUMBER_DECIMAL_PLACES_MAX)
		return fail(err, "response_config.decimal_places", "decimal_places must be between 0 and %d",
		            NUMBER_DECIMAL_PLACES_MAX);

	r = config_bool(config, "allow_negative", false, &spec->allow_negative, err);
	if (r < 0)
		return r;

	static const char *const display_keys[] = { "prefix", "suffix", "placeholder" };
	for (size_t i = 0; i < ELEMENTSOF(display_keys); i++) {
		r = config_string(config, display_keys[i], 0, DISPLAY_STRING_MAX, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_boolean_config(json_object *config, ValidationError *err) {
	int r;

	/* An empty label would leave the reviewer a blank button. */
	r = config_string(config, "true_label", 1, BOOLEAN_LABEL_MAX, err);
	if (r < 0)
		return r;
	r = config_string(config, "false_label", 1, BOOLEAN_LABEL_MAX, err);
	if (r < 0)
		return r;
	r = config_color(config, "true_color", err);
	if (r < 0)
		return r;
	return config_color(config, "false_color", err);
}

/* Checks response_config for type and reads it into *ret. Unknown keys are
 * ignored: the guides carry extras (show_numeric_labels, unit, …). */
static int parse_response_config(ResponseType type, json_object *config, ResponseSpec *ret,
                                 ValidationError *err) {
	ResponseSpec spec = { .type = type };
	int r;

	if (!json_object_is_type(config, json_type_object))
		return fail(err, "response_config", "response_config must be an object");

	r = config_bool(config, "required", false, &spec.required, err);
	if (r < 0)
		return r;

	switch (type) {
	case RESPONSE_TEXT:
		r = parse_text_config(config, &spec, err);
		break;
	case RESPONSE_SINGLE_SELECT:
	case RESPONSE_MULTI_SELECT:
		r = parse_select_config(config, &spec, err);
		break;
	case RESPONSE_RATING:
		r = parse_rating_config(config, &spec, err);
		break;
	case RESPONSE_NUMBER:
		r = parse_number_config(config, &spec, err);
		break;
	case RESPONSE_BOOLEAN:
		r = parse_boolean_config(config, err);
		break;
	case RESPONSE_EDITABLE_TEXT:
		r = parse_editable_config(config, &spec, err);
		break;
	default:
		return fail(err, "response_type", "unknown response_type");
	}
	if (r < 0)
		return r;

	*ret = spec;
	return 0;
}

/* ---- answers ---------------------------------------------------------------------- */

/* The option s names: its value, else its label, else its label ignoring ASCII
 * case, else the snake_case of its label; each pass over all options before the
 * next, so an exact value always wins. */
static const SelectOption *option_find(const ResponseSpec *spec, const char *s, size_t len) {
	for (unsigned pass = 0; pass < 4; pass++)
		for (size_t i = 0; i < spec->n_options; i++) {
			const SelectOption *o = &spec->options[i];
			bool match;

			switch (pass) {
			case 0:
				match = bytes_eq(o->value, o->value_len, s, len);
				break;
			case 1:
				match = bytes_eq(o->label, o->label_len, s, len);
				break;
			case 2:
				match = bytes_eq_ascii_case(o->label, o->label_len, s, len);
				break;
			default:
				match = snake_case_eq(o->label, o->label_len, s, len);
				break;
			}
			if (match)
				return o;
		}
	return NULL;
}

static const SelectOption *option_find_json(const ResponseSpec *spec, json_object *j) {
	const char *s;
	size_t len;

	if (!json_get_string(j, &s, &len))
		return NULL;
	return option_find(spec, s, len);
}

static json_object *option_value_json(const SelectOption *o) {
	return json_object_new_string_len(o->value, (int) o->value_len);
}

static int check_text_answer(const ResponseSpec *spec, json_object *value, const char *name,
                             json_object **ret, ValidationError *err) {
	const char *s;
	size_t len, count;

	if (!json_get_string(value, &s, &len))
		return fail(err, name, "%s must be a string", name);
	while (len > 0 && ascii_is_space(s[0]))
		s++, len--;
	while (len > 0 && ascii_is_space(s[len - 1]))
		len--;
	if (!utf8_count(s, len, &count))
		return fail(err, name, "%s must be valid UTF-8", name);
	if (spec->required && count == 0)
		return fail(err, name, "%s must be a non-blank string", name);
	if ((int64_t) count < spec->min_length || (int64_t) count > spec->max_length)
		return fail(err, name, "%s must be between %" PRId64 " and %" PRId64 " characters", name,
		            spec->min_length, spec->max_length);

	*ret = json_object_new_string_len(json_object_get_string(value), json_object_get_string_len(value));
	return *ret ? 0 : -ENOMEM;
}

static int check_multi_answer(const ResponseSpec *spec, json_object *value, const char *name,
                              json_object **ret, ValidationError *err) {
	_cleanup_(json_object_putp) json_object *values = NULL;
	const SelectOption *chosen[VALIDATE_OPTIONS_MAX];
	size_t n;

	if (!json_object_is_type(value, json_type_array))
		return fail(err, name, "%s must be an array of option values", name);
	n = json_object_array_length(value);
	/* max_selections ≤ number of options, so this also bounds chosen[]. */
	if ((int64_t) n < spec->min_selections || (int64_t) n > spec->max_selections)
		return fail(err, name, "%s must be an array of between %" PRId64 " and %" PRId64 " option values",
		            name, spec->min_selections, spec->max_selections);

	values = json_object_new_array();
	if (!values)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		chosen[i] = option_find_json(spec, json_object_array_get_idx(value, i));
		if (!chosen[i])
			return fail(err, name, "%s must be an array of option values", name);
		for (size_t k = 0; k < i; k++)
			if (chosen[k] == chosen[i])
				return fail(err, name, "%s must be an array of distinct option values", name);

		json_object *v = option_value_json(chosen[i]);
		if (!v || json_object_array_add(values, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}

	*ret = TAKE_PTR(values);
	return 0;
}

static int check_rating_answer(const ResponseSpec *spec, json_object *value, const char *name,
                               json_object **ret, ValidationError *err) {
	char lo[NUMBER_STR_MAX], hi[NUMBER_STR_MAX], step[NUMBER_STR_MAX];
	double x;

	if (!json_get_number(value, &x) || x < spec->scale_min || x > spec->scale_max)
		return fail(err, name, "%s must be a number between %s and %s", name,
		            format_number(lo, spec->scale_min), format_number(hi, spec->scale_max));
	if (!is_integral((x - spec->scale_min) / spec->scale_step))
		return fail(err, name, "%s must be a number between %s and %s in steps of %s", name,
		            format_number(lo, spec->scale_min), format_number(hi, spec->scale_max),
		            format_number(step, spec->scale_step));

	*ret = json_object_new_double(x);
	return *ret ? 0 : -ENOMEM;
}

static int check_number_answer(const ResponseSpec *spec, json_object *value, const char *name,
                               json_object **ret, ValidationError *err) {
	char lo[NUMBER_STR_MAX], hi[NUMBER_STR_MAX];
	double x, scale = 1;

	if (!json_get_number(value, &x) || x < spec->min_value || x > spec->max_value)
		return fail(err, name, "%s must be a number between %s and %s", name,
		            format_number(lo, spec->min_value), format_number(hi, spec->max_value));
	if (x < 0 && !spec->allow_negative)
		return fail(err, name, "%s must be a non-negative number", name);

	for (int64_t i = 0; i < spec->decimal_places; i++)
		scale *= 10;
	/* x·10^places overflows only for |x| > 1e298, which is an integer anyway. */
	if (isfinite(x * scale) && !is_integral(x * scale))
		return fail(err, name, "%s must be a number with at most %" PRId64 " decimal places", name,
		            spec->decimal_places);

	*ret = json_object_new_double(x);
	return *ret ? 0 : -ENOMEM;
}

/* Checks value as an answer to spec (plain encoding A); name is both the error's
 * field and how its reason names the value. */
static int check_answer(const ResponseSpec *spec, json_object *value, const char *name,
                        json_object **ret_normalised, ValidationError *err) {
	const SelectOption *opt;
	json_object *normalised = NULL;
	int r;

	switch (spec->type) {
	case RESPONSE_TEXT:
	case RESPONSE_EDITABLE_TEXT:
		r = check_text_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_SINGLE_SELECT:
		opt = option_find_json(spec, value);
		if (!opt)
			return fail(err, name, "%s must be one of the option values", name);
		normalised = option_value_json(opt);
		r = normalised ? 0 : -ENOMEM;
		break;

	case RESPONSE_MULTI_SELECT:
		r = check_multi_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_RATING:
		r = check_rating_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_NUMBER:
		r = check_number_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_BOOLEAN:
		if (!json_object_is_type(value, json_type_boolean))
			return fail(err, name, "%s must be a boolean", name);
		normalised = json_object_new_boolean(json_object_get_boolean(value));
		r = normalised ? 0 : -ENOMEM;
		break;

	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	if (ret_normalised)
		*ret_normalised = normalised;
	else
		json_object_put(normalised);
	return 0;
}

int validate_answer(const char *response_type, json_object *config, json_object *value,
                    json_object **ret_normalised, ValidationError *err) {
	ResponseType type = response_type_from_string(response_type);
	ResponseSpec spec;
	char list[160];
	int r;

	if (type < 0)
		return fail(err, "response_type", "response_type must be one of: %s",
		            join_names(response_type_names, _RESPONSE_TYPE_MAX, list, sizeof list));
	r = parse_response_config(type, config, &spec, err);
	if (r < 0)
		return r;
	return check_answer(&spec, value, "answer", ret_normalised, err);
}

/* ---- request.submit --------------------------------------------------------------- */

static int add_copy(json_object *dst, const char *key, json_object *src) {
	json_object *copy = NULL;

	if (json_object_deep_copy(src, &copy, NULL) < 0)
		return -ENOMEM;
	if (json_object_object_add(dst, key, copy) < 0) {
		json_object_put(copy);
		return -ENOMEM;
	}
	return 0;
}

static int add_new(json_object *dst, const char *key, json_object *value) {
	if (!value || json_object_object_add(dst, key, value) < 0) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

/* Reads an optional enum field of params; *ret = def when absent or null. */
static int submit_enum(json_object *params, const char *key, const char *const *names, size_t n,
                       const char *def, const char **ret, ValidationError *err) {
	json_object *v = json_object_object_get(params, key);
	int i;

	if (!v) {
		*ret = def;
		return 0;
	}
	i = check_enum(v, key, names, n, err);
	if (i < 0)
		return i;
	*ret = names[i];
	return 0;
}

static int check_loop_id(json_object *v, ValidationError *err) {
	const char *s;
	size_t len;

	if (!v)
		return fail(err, "loop_id", "loop_id is required");
	if (!json_get_string(v, &s, &len))
		return fail(err, "loop_id", "loop_id must be a string");
	if (len != OBJECT_ID_LEN || !validate_object_id(s))
		return fail(err, "loop_id", "Invalid loop ID format");
	return 0;
}

/* 60–86400 for every request (the API's schema and its errors page); a
 * deferred request without one gets no timeout_seconds at all (*ret = 0) and
 * HITL.sh's own default, 30 days. */
static int check_timeout(json_object *v, bool time_sensitive, int64_t *ret, ValidationError *err) {
	int64_t t;

	if (!v) {
		if (time_sensitive)
			return fail(err, "timeout_seconds", "timeout_seconds is required for time-sensitive requests");
		*ret = 0;
		return 0;
	}
	if (!json_get_integer(v, &t))
		return fail(err, "timeout_seconds", "timeout_seconds must be an integer");
	if (t < VALIDATE_TIMEOUT_MIN || t > VALIDATE_TIMEOUT_MAX)
		return fail(err, "timeout_seconds", "timeout_seconds must be between %d and %d", VALIDATE_TIMEOUT_MIN,
		            VALIDATE_TIMEOUT_MAX);
	*ret = t;
	return 0;
}

/* The content type's fields: its own URL is required, another type's URL is
 * refused (HITL.sh would not show it, and a strict server rejects it), and a
 * file also needs file_type and file_name. */
static int check_content(json_object *params, int content_type, ValidationError *err) {
	json_object *v;
	int r;

	for (size_t i = 1; i < ELEMENTSOF(content_url_fields); i++) {
		const char *field = content_url_fields[i];

		v = json_object_object_get(params, field);
		if ((int) i == content_type && !v)
			return fail(err, field, "%s is required when type is '%s'", field, content_type_names[i]);
		if ((int) i != content_type && v)
			return fail(err, field, "%s is only for type '%s' (type is '%s')", field, content_type_names[i],
			            content_type_names[content_type]);
		if (v) {
			r = check_url(v, field, err);
			if (r < 0)
				return r;
		}
	}

	static const struct {
		const char *field;
		size_t max;
	} file_fields[] = { { "file_type", FILE_TYPE_MAX }, { "file_name", FILE_NAME_MAX } };
	for (size_t i = 0; i < ELEMENTSOF(file_fields); i++) {
		v = json_object_object_get(params, file_fields[i].field);
		if (streq(content_type_names[content_type], "file") && !v)
			return fail(err, file_fields[i].field, "%s is required when type is 'file'", file_fields[i].field);
		if (!streq(content_type_names[content_type], "file") && v)
			return fail(err, file_fields[i].field, "%s is only for type 'file'", file_fields[i].field);
		if (v) {
			r = check_string(v, file_fields[i].field, 1, file_fields[i].max, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int validate_submit(json_object *params, json_object **ret_create, ValidationError *err) {
	_cleanup_(json_object_putp) json_object *create = NULL, *normalised_default = NULL;
	static const char *const content_fields[] = { "image_url", "file_url", "file_type", "file_name",
		                                              "video_url", "audio_url" };
	const char *priority, *processing_type, *content_type, *platform;
	json_object *loop_id, *request_text, *callback_url, *context, *platform_version, *response_type,
		*response_config, *default_response;
	ResponseSpec spec;
	int64_t timeout = 0;
	int r, type, content = 0;

	assert(ret_create);

	if (!json_object_is_type(params, json_type_object))
		return fail(err, "params", "params must be an object");
	/* The vendor's MCP client sends tags, the API does not document them, and a
	 * strict server refuses what it does not know. */
	if (json_object_object_get(params, "tags"))
		return fail(err, "tags", "tags is not a HITL.sh request field; put such labels in context");
	r = check_known_fields(params, submit_fields, ELEMENTSOF(submit_fields), err);
	if (r < 0)
		return r;

	/* A JSON null counts as absent: the field is neither checked nor sent. */
	loop_id = json_object_object_get(params, "loop_id");
	request_text = json_object_object_get(params, "request_text");
	callback_url = json_object_object_get(params, "callback_url");
	context = json_object_object_get(params, "context");
	platform_version = json_object_object_get(params, "platform_version");
	response_type = json_object_object_get(params, "response_type");
	response_config = json_object_object_get(params, "response_config");
	default_response = json_object_object_get(params, "default_response");

	r = check_loop_id(loop_id, err);
	if (r < 0)
		return r;

	if (!request_text)
		return fail(err, "request_text", "request_text is required");
	r = check_string(request_text, "request_text", 1, VALIDATE_REQUEST_TEXT_MAX, err);
	if (r < 0)
		return r;

	r = submit_enum(params, "priority", priority_names, ELEMENTSOF(priority_names), "medium", &priority, err);
	if (r < 0)
		return r;
	r = submit_enum(params, "processing_type", processing_type_names, ELEMENTSOF(processing_type_names),
	                "deferred", &processing_type, err);
	if (r < 0)
		return r;
	r = submit_enum(params, "type", content_type_names, ELEMENTSOF(content_type_names), "markdown",
	                &content_type, err);
	if (r < 0)
		return r;
	/* submit_enum() returned one of the names: find which. */
	while (!streq(content_type_names[content], content_type))
		content++;
	r = check_content(params, content, err);
	if (r < 0)
		return r;

	r = check_timeout(json_object_object_get(params, "timeout_seconds"), streq(processing_type, "time-sensitive"),
	                  &timeout, err);
	if (r < 0)
		return r;

	if (callback_url) {
		r = check_url(callback_url, "callback_url", err);
		if (r < 0)
			return r;
	}

	if (context) {
		r = check_context(context, err);
		if (r < 0)
			return r;
	}

	r = submit_enum(params, "platform", platform_names, ELEMENTSOF(platform_names), "api", &platform, err);
	if (r < 0)
		return r;
	if (platform_version) {
		r = check_string(platform_version, "platform_version", 0, PLATFORM_VERSION_MAX, err);
		if (r < 0)
			return r;
	}

	if (!response_type)
		return fail(err, "response_type", "response_type is required");
	type = check_enum(response_type, "response_type", response_type_names, _RESPONSE_TYPE_MAX, err);
	if (type < 0)
		return type;
	if (!response_config)
		return fail(err, "response_config", "response_config is required");
	r = parse_response_config((ResponseType) type, response_config, &spec, err);
	if (r < 0)
		return r;

	if (!default_response)
		return fail(err, "default_response", "default_response is required");
	r = check_answer(&spec, default_response, "default_response", &normalised_default, err);
	if (r < 0)
		return r;

	/* Everything checked: build the create-request body HITL.sh will get. */
	create = json_object_new_object();
	if (!create)
		return -ENOMEM;
	r = add_copy(create, "loop_id", loop_id);
	if (r >= 0)
		r = add_copy(create, "request_text", request_text);
	if (r >= 0)
		r = add_new(create, "response_type", json_object_new_string(response_type_names[type]));
	if (r >= 0)
		r = add_copy(create, "response_config", response_config);
	if (r >= 0)
		r = add_new(create, "default_response", TAKE_PTR(normalised_default));
	if (r >= 0)
		r = add_new(create, "priority", json_object_new_string(priority));
	if (r >= 0)
		r = add_new(create, "processing_type", json_object_new_string(processing_type));
	if (r >= 0)
		r = add_new(create, "type", json_object_new_string(content_type));
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(content_fields); i++) {
		json_object *v = json_object_object_get(params, content_fields[i]);

		if (v)
			r = add_copy(create, content_fields[i], v);
	}
	if (r >= 0 && timeout > 0)
		r = add_new(create, "timeout_seconds", json_object_new_int64(timeout));
	if (r >= 0 && context)
		r = add_copy(create, "context", context);
	if (r >= 0 && callback_url)
		r = add_copy(create, "callback_url", callback_url);
	if (r >= 0)
		r = add_new(create, "platform", json_object_new_string(platform));
	if (r >= 0 && platform_version)
		r = add_copy(create, "platform_version", platform_version);
	if (r < 0)
		return r;

	*ret_create = TAKE_PTR(create);
	return 0;
}

/* ---- response_data → result ------------------------------------------------------- */

/* The option a reviewer's value (or, failing that, label) names. As a last
 * resort "option_N" names the Nth simple-string option: §5.3 says HITL.sh may
 * generate such values for options given as bare strings. */
static const SelectOption *option_resolve(const ResponseSpec *spec, json_object *value, json_object *label) {
	const SelectOption *o;
	const char *s;
	size_t len;

	o = option_find_json(spec, value);
	if (!o)
		o = option_find_json(spec, label);
	if (o || !json_get_string(value, &s, &len))
		return o;

	if (len > 7 && strncmp(s, "option_", 7) == 0 && len <= 9) {
		size_t index = 0;

		for (size_t i = 7; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return NULL;
			index = index * 10 + (size_t) (s[i] - '0');
		}
		if (index >= 1 && index <= spec->n_options && spec->options[index - 1].simple)
			return &spec->options[index - 1];
	}
	return NULL;
}

/* value (a string) mapped to its option's value, else kept as given (allow_other). */
static json_object *select_result(const ResponseSpec *spec, json_object *value, json_object *label) {
	const SelectOption *o = option_resolve(spec, value, label);

	if (o)
		return option_value_json(o);
	return json_object_new_string_len(json_object_get_string(value), json_object_get_string_len(value));
}

/* Reads key of a structured (B) response_data: absent or null → NULL with 0;
 * present with another type than want → -EBADMSG. */
static int structured_get(json_object *data, const char *key, json_type want, json_object **ret) {
	json_object *v = json_object_object_get(data, key);

	if (v && !json_object_is_type(v, want))
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int normalise_single(const ResponseSpec *spec, json_object *data, json_object **ret) {
	json_object *value = data, *label = NULL;
	int r;

	if (json_object_is_type(data, json_type_object)) {
		r = structured_get(data, "selected_value", json_type_string, &value);
		if (r < 0)
			return r;
		r = structured_get(data, "selected_label", json_type_string, &label);
		if (r < 0)
			return r;
		if (!value)
			value = TAKE_PTR(label);
	}
	if (!json_object_is_type(value, json_type_string))
		return -EBADMSG;

	*ret = select_result(spec, value, label);
	return *ret ? 0 : -ENOMEM;
}

static int normalise_multi(const ResponseSpec *spec, json_object *data, json_object **ret) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *values = data, *labels = NULL;
	size_t n;
	int r;

	if (json_object_is_type(data, json_type_object)) {
		r = structured_get(data, "selected_values", json_type_array, &values);
		if (r < 0)
			return r;
		r = structured_get(data, "selected_labels", json_type_array, &labels);
		if (r < 0)
			return r;
		if (!values)
			values = TAKE_PTR(labels);
	}

	result = json_object_new_array();
	if (!result)
		return -ENOMEM;

	/* The n8n node sends a lone string for one choice; read it as [string]. */
	if (json_object_is_type(values, json_type_string)) {
		json_object *v = select_result(spec, values, NULL);
		if (!v || json_object_array_add(result, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
		*ret = TAKE_PTR(result);
		return 0;
	}
	if (!json_object_is_type(values, json_type_array))
		return -EBADMSG;

	n = json_object_array_length(values);
	/* Labels help only when they line up with the values one to one. */
	if (labels && json_object_array_length(labels) != n)
		labels = NULL;

	for (size_t i = 0; i < n; i++) {
		json_object *value = json_object_array_get_idx(values, i);
		json_object *label = labels ? json_object_array_get_idx(labels, i) : NULL;
		json_object *v;

		if (!json_object_is_type(value, json_type_string))
			return -EBADMSG;
		v = select_result(spec, value, label);
		if (!v || json_object_array_add(result, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}

	*ret = TAKE_PTR(result);
	return 0;
}

/* Plain scalar, or the one key of encoding B that carries it. */
static int normalise_scalar(json_object *data, const char *key, json_type want, json_object **ret) {
	json_object *v = data;
	double x;

	if (json_object_is_type(data, json_type_object) && !json_object_object_get_ex(data, key, &v))
		return -EBADMSG;

	if (want == json_type_boolean) {
		if (!json_object_is_type(v, json_type_boolean))
			return -EBADMSG;
		*ret = json_object_new_boolean(json_object_get_boolean(v));
	} else {
		if (!json_get_number(v, &x))
			return -EBADMSG;
		*ret = json_object_new_double(x);
	}
	return *ret ? 0 : -ENOMEM;
}

/* editable_text: {revised_text, was_edited} → the revised text; a bare string
 * is read as the text; was_edited false without a text means the draft. */
static int normalise_editable(const ResponseSpec *spec, json_object *data, json_object **ret) {
	json_object *text = data, *edited = NULL;
	int r;

	if (json_object_is_type(data, json_type_object)) {
		r = structured_get(data, "revised_text", json_type_string, &text);
		if (r < 0)
			return r;
		r = structured_get(data, "was_edited", json_type_boolean, &edited);
		if (r < 0)
			return r;
		if (!text && edited && !json_object_get_boolean(edited)) {
			*ret = json_object_new_string(spec->draft_text);
			return *ret ? 0 : -ENOMEM;
		}
	}
	if (!json_object_is_type(text, json_type_string))
		return -EBADMSG;
	*ret = json_object_new_string_len(json_object_get_string(text), json_object_get_string_len(text));
	return *ret ? 0 : -ENOMEM;
}

int validate_normalise_result(const char *response_type, json_object *config,
                              json_object *response_data, json_object **ret_result) {
	ResponseType type = response_type_from_string(response_type);
	json_object *result = NULL;
	ResponseSpec spec;
	int r;

	assert(ret_result);

	if (type < 0)
		return -EINVAL;
	r = parse_response_config(type, config, &spec, NULL);
	if (r < 0)
		return r;

	switch (type) {
	case RESPONSE_TEXT:
		if (!json_object_is_type(response_data, json_type_string))
			return -EBADMSG;
		result = json_object_new_string_len(json_object_get_string(response_data),
		                                    json_object_get_string_len(response_data));
		r = result ? 0 : -ENOMEM;
		break;
	case RESPONSE_SINGLE_SELECT:
		r = normalise_single(&spec, response_data, &result);
		break;
	case RESPONSE_MULTI_SELECT:
		r = normalise_multi(&spec, response_data, &result);
		break;
	case RESPONSE_RATING:
		r = normalise_scalar(response_data, "rating", json_type_double, &result);
		break;
	case RESPONSE_NUMBER:
		r = normalise_scalar(response_data, "number", json_type_double, &result);
		break;
	case RESPONSE_BOOLEAN:
		r = normalise_scalar(response_data, "boolean", json_type_boolean, &result);
		break;
	case RESPONSE_EDITABLE_TEXT:
		r = normalise_editable(&spec, response_data, &result);
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	*ret_result = result;
	return 0;
}

/* ---- request.feedback ------------------------------------------------------------- */

int validate_feedback(json_object *feedback, ValidationError *err) {
	static const char *const rating_keys[] = { "rating", "accuracy", "timeliness", "helpfulness" };
	static const char *const bool_keys[] = { "would_recommend", "follow_up_needed" };
	char field[FIELD_MAX];
	const char *s;
	size_t len, count;
	json_object *v;
	double x;
	int r;

	if (!json_object_is_type(feedback, json_type_object) || json_object_object_length(feedback) == 0)
		return fail(err, "feedback", "feedback must be a non-empty object");

	/* Unknown keys are stored and sent verbatim, so they are bounded too. */
	r = check_json_tree(feedback, 0);
	if (r == -E2BIG)
		return fail(err, "feedback", "feedback is nested too deeply");
	if (r < 0)
		return fail(err, "feedback", "feedback must be valid UTF-8");
	if (serialised_size(feedback) > VALIDATE_FEEDBACK_SIZE_MAX)
		return fail(err, "feedback", "feedback must be under 16KB");

	for (size_t i = 0; i < ELEMENTSOF(rating_keys); i++) {
		if (!json_object_object_get_ex(feedback, rating_keys[i], &v))
			continue;
		snprintf(field, sizeof field, "feedback.%s", rating_keys[i]);
		if (!json_get_number(v, &x))
			return fail(err, field, "%s must be a number", rating_keys[i]);
		if (x < 1 || x > 5)
			return fail(err, field, "Rating values must be between 1 and 5");
	}

	if (json_object_object_get_ex(feedback, "comment", &v)) {
		if (!json_get_string(v, &s, &len))
			return fail(err, "feedback.comment", "comment must be a string");
		if (!utf8_count(s, len, &count))
			return fail(err, "feedback.comment", "comment must be valid UTF-8");
		if (count > FEEDBACK_COMMENT_MAX)
			return fail(err, "feedback.comment", "Comment exceeds maximum length of 1000 characters");
	}

	for (size_t i = 0; i < ELEMENTSOF(bool_keys); i++) {
		if (!json_object_object_get_ex(feedback, bool_keys[i], &v))
			continue;
		snprintf(field, sizeof field, "feedback.%s", bool_keys[i]);
		r = check_bool(v, field, err);
		if (r < 0)
			return r;
	}

	if (json_object_object_get_ex(feedback, "tags", &v)) {
		r = check_string_array(v, "feedback.tags", FEEDBACK_TAGS_MAX, FEEDBACK_TAG_MAX, err);
		if (r < 0)
			return r;
	}

	if (json_object_object_get_ex(feedback, "category", &v)) {
		r = check_enum(v, "feedback.category", category_names, ELEMENTSOF(category_names), err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- loops ------------------------------------------------------------------------ */

static int check_loop(json_object *params, bool create, ValidationError *err) {
	json_object *name, *description, *icon;
	bool has_name, has_description, has_icon;
	int r;

	if (!json_object_is_type(params, json_type_object))
		return fail(err, "params", "params must be an object");
	r = check_known_fields(params, loop_fields, ELEMENTSOF(loop_fields), err);
	if (r < 0)
		return r;

	has_name = json_object_object_get_ex(params, "name", &name);
	has_description = json_object_object_get_ex(params, "description", &description);
	has_icon = json_object_object_get_ex(params, "icon", &icon);

	if (!create && !has_name && !has_description && !has_icon)
		return fail(err, "params", "At least one field must be provided for update");

	if (create && !has_name)
		return fail(err, "name", "name is required");
	if (has_name) {
		r = check_string(name, "name", 1, LOOP_NAME_MAX, err);
		if (r < 0)
			return r;
	}
	if (has_description) {
		r = check_string(description, "description", 0, LOOP_DESCRIPTION_MAX, err);
		if (r < 0)
			return r;
	}
	if (create && !has_icon)
		return fail(err, "icon", "icon is required");
	if (has_icon) {
		r = check_string(icon, "icon", 1, LOOP_ICON_MAX, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int validate_loop_create(json_object *params, ValidationError *err) {
	return check_loop(params, true, err);
}

int validate_loop_update(json_object *params, ValidationError *err) {
	return check_loop(params, false, err);
}

bool validate_object_id(const char *s) {
	if (!s || strlen(s) != OBJECT_ID_LEN)
		return false;
	for (size_t i = 0; i < OBJECT_ID_LEN; i++)
		if (!ascii_is_hex(s[i]))
			return false;
	return true;
}
