/* vcheck.c — the checks the validators share (see vcheck.h). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"
#include "vcheck.h"

/* ---- errors --------------------------------------------------------------------- */

_printf_(3, 4)
int vcheck_fail(ValidationError *err, const char *field, const char *format, ...) {
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
const char *vcheck_field(char *buf, size_t size, const char *format, ...) {
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
const char *vcheck_short_name(const char *field) {
	static const char *const prefixes[] = { "response_config.", "feedback." };

	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
		if (strncmp(field, prefixes[i], strlen(prefixes[i])) == 0)
			return field + strlen(prefixes[i]);
	return field;
}

/* "%.15g": integral values print without a fraction or exponent (5, 2592000, 0.5). */
const char *vcheck_number_str(char buf[static VCHECK_NUMBER_STR_MAX], double x) {
	snprintf(buf, VCHECK_NUMBER_STR_MAX, "%.15g", x);
	return buf;
}

const char *vcheck_join_names(const char *const *names, size_t n, char *buf, size_t size) {
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

bool vcheck_bytes_eq(const char *a, size_t a_len, const char *b, size_t b_len) {
	return a_len == b_len && memcmp(a, b, a_len) == 0;
}

bool vcheck_bytes_eq_ascii_case(const char *a, size_t a_len, const char *b, size_t b_len) {
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++)
		if (ascii_tolower(a[i]) != ascii_tolower(b[i]))
			return false;
	return true;
}

/* snake_case(label) == s: lower-case ASCII, each run of other bytes (spaces,
 * punctuation, emoji) one "_", none at either end. "✅ Approve it" → "approve_it". */
bool vcheck_snake_case_eq(const char *label, size_t label_len, const char *s, size_t len) {
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

bool vcheck_get_string(json_object *j, const char **ret, size_t *ret_len) {
	if (!json_object_is_type(j, json_type_string))
		return false;
	*ret = json_object_get_string(j);
	*ret_len = (size_t) json_object_get_string_len(j);
	return true;
}

bool vcheck_string_eq(json_object *j, const char *s) {
	const char *v;
	size_t len;

	return vcheck_get_string(j, &v, &len) && vcheck_bytes_eq(v, len, s, strlen(s));
}

/* A finite JSON number (int or double). */
bool vcheck_get_number(json_object *j, double *ret) {
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
bool vcheck_get_integer(json_object *j, int64_t *ret) {
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
bool vcheck_is_integral(double x) {
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
int vcheck_string(json_object *j, const char *field, size_t min, size_t max, ValidationError *err) {
	const char *name = vcheck_short_name(field), *s;
	size_t len, count;

	if (!vcheck_get_string(j, &s, &len))
		return vcheck_fail(err, field, "%s must be a string", name);
	if (!utf8_count(s, len, &count))
		return vcheck_fail(err, field, "%s must be valid UTF-8", name);
	/* "\u0000" is valid JSON, but the record file (record.c) and every C string
	 * downstream end there: refuse it here rather than vcheck_fail to store it. */
	if (memchr(s, '\0', len))
		return vcheck_fail(err, field, "%s must not contain NUL characters", name);
	if (count < min || count > max) {
		if (min == 0)
			return vcheck_fail(err, field, "%s must be at most %zu characters", name, max);
		return vcheck_fail(err, field, "%s must be between %zu and %zu characters", name, min, max);
	}
	return 0;
}

int vcheck_bool(json_object *j, const char *field, ValidationError *err) {
	if (!json_object_is_type(j, json_type_boolean))
		return vcheck_fail(err, field, "%s must be a boolean", vcheck_short_name(field));
	return 0;
}

/* Returns the index of j's value in names, or -EINVAL with HITL.sh's enum wording. */
int vcheck_enum(json_object *j, const char *field, const char *const *names, size_t n,
                      ValidationError *err) {
	char list[160];

	if (!json_object_is_type(j, json_type_string))
		return vcheck_fail(err, field, "%s must be a string", vcheck_short_name(field));
	for (size_t i = 0; i < n; i++)
		if (vcheck_string_eq(j, names[i]))
			return (int) i;
	return vcheck_fail(err, field, "%s must be one of: %s", vcheck_short_name(field),
	            vcheck_join_names(names, n, list, sizeof list));
}

int vcheck_color(json_object *j, const char *field, ValidationError *err) {
	const char *s;
	size_t len;

	if (vcheck_get_string(j, &s, &len) && len == 7 && s[0] == '#') {
		bool hex = true;
		for (size_t i = 1; i < 7; i++)
			hex = hex && ascii_is_hex(s[i]);
		if (hex)
			return 0;
	}
	return vcheck_fail(err, field, "%s must be a colour of the form #rrggbb", vcheck_short_name(field));
}

/* An array of at most max_items strings of at most max_len code points each. */
int vcheck_string_array(json_object *j, const char *field, size_t max_items, size_t max_len,
                              ValidationError *err) {
	char item[VCHECK_FIELD_MAX];
	size_t n;
	int r;

	if (!json_object_is_type(j, json_type_array) || (n = json_object_array_length(j)) > max_items)
		return vcheck_fail(err, field, "%s must be an array of at most %zu strings", vcheck_short_name(field), max_items);
	for (size_t i = 0; i < n; i++) {
		snprintf(item, sizeof item, "%s[%zu]", field, i);
		r = vcheck_string(json_object_array_get_idx(j, i), item, 0, max_len, err);
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

int vcheck_known_fields(json_object *obj, const char *const *known, size_t n, ValidationError *err) {
	json_object_object_foreach(obj, key, value) {
		(void) value;
		if (!strv_contains_n(known, n, key))
			return vcheck_fail(err, key, "unknown field");
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

int vcheck_url(json_object *j, const char *field, ValidationError *err) {
	const char *s;
	size_t len, count;

	if (!vcheck_get_string(j, &s, &len))
		return vcheck_fail(err, field, "%s must be a string", field);
	if (len > VALIDATE_URL_MAX)
		return vcheck_fail(err, field, "%s must be at most %d bytes", field, VALIDATE_URL_MAX);
	if (!utf8_count(s, len, &count) || !url_is_valid(s, len))
		return vcheck_fail(err, field, "%s must be an absolute http or https URL", field);
	return 0;
}

/* Walks a JSON value: -E2BIG if containers nest deeper than VALIDATE_JSON_DEPTH_MAX
 * (j itself counts when it is one), -EILSEQ if a string or key is not UTF-8.
 * Recursion is bounded by the depth limit. */
int vcheck_json_tree(json_object *j, unsigned enclosing) {
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
			r = vcheck_json_tree(value, enclosing + 1);
			if (r < 0)
				return r;
		}
		return 0;

	case json_type_array:
		if (enclosing + 1 > VALIDATE_JSON_DEPTH_MAX)
			return -E2BIG;
		for (size_t i = 0, n = json_object_array_length(j); i < n; i++) {
			r = vcheck_json_tree(json_object_array_get_idx(j, i), enclosing + 1);
			if (r < 0)
				return r;
		}
		return 0;

	case json_type_string:
		if (!vcheck_get_string(j, &s, &len) || !utf8_count(s, len, &count))
			return -EILSEQ;
		return 0;

	default:
		return 0;
	}
}

/* The compact serialisation's length; json-c caches the text in the object. */
size_t vcheck_serialised_size(json_object *j) {
	size_t len = 0;

	if (!json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len))
		return SIZE_MAX;
	return len;
}

