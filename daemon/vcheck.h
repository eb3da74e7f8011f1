/* vcheck.h — the checks every validator of HITL.sh's rules shares (validate,
 * respconfig, answer): building a ValidationError (field path and reason, cut
 * at a whole UTF-8 character), reading JSON strings and numbers, and the field
 * checks (string of min..max code points, bool, enum, #rrggbb colour, string
 * array, known fields, http(s) URL, JSON tree depth and UTF-8). Each check
 * returns 0, or -EINVAL with *err filled in HITL.sh's wording (err may be
 * NULL). Pure: no I/O, no clock, no logging. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "validate.h"

#define VCHECK_FIELD_MAX sizeof(((ValidationError *) NULL)->field)
#define VCHECK_NUMBER_STR_MAX 32

static inline bool ascii_is_space(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline bool ascii_is_alnum(char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline char ascii_tolower(char c) {
	return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static inline bool ascii_is_hex(char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Fills *err (when not NULL) with field and the formatted reason; returns -EINVAL. */
_printf_(3, 4)
int vcheck_fail(ValidationError *err, const char *field, const char *format, ...);
/* Formats a field path into buf, cut at a whole character when it does not fit. */
_printf_(3, 4)
const char *vcheck_field(char *buf, size_t size, const char *format, ...);
/* How a reason names a field: without "response_config." or "feedback.". */
const char *vcheck_short_name(const char *field);
/* "%.15g": integral values print without a fraction or exponent. */
const char *vcheck_number_str(char buf[static VCHECK_NUMBER_STR_MAX], double x);
/* "a, b, c" into buf. */
const char *vcheck_join_names(const char *const *names, size_t n, char *buf, size_t size);

bool vcheck_bytes_eq(const char *a, size_t a_len, const char *b, size_t b_len);
bool vcheck_bytes_eq_ascii_case(const char *a, size_t a_len, const char *b, size_t b_len);
/* snake_case(label) == s ("✅ Approve it" → "approve_it"). */
bool vcheck_snake_case_eq(const char *label, size_t label_len, const char *s, size_t len);

/* j as a string (borrowed, with its length); false if it is not one. */
bool vcheck_get_string(json_object *j, const char **ret, size_t *ret_len);
bool vcheck_string_eq(json_object *j, const char *s);
/* A finite JSON number (int or double). */
bool vcheck_get_number(json_object *j, double *ret);
/* A JSON integer, or a double without a fraction ("60.0"). */
bool vcheck_get_integer(json_object *j, int64_t *ret);
/* An integer up to floating-point noise (1e-9, or a few ulps for large x). */
bool vcheck_is_integral(double x);

/* j is a well-formed UTF-8 string of min..max code points, without NUL. */
int vcheck_string(json_object *j, const char *field, size_t min, size_t max, ValidationError *err);
int vcheck_bool(json_object *j, const char *field, ValidationError *err);
/* The index of j's value in names, or -EINVAL. */
int vcheck_enum(json_object *j, const char *field, const char *const *names, size_t n, ValidationError *err);
int vcheck_color(json_object *j, const char *field, ValidationError *err);
/* An array of at most max_items strings of at most max_len code points each. */
int vcheck_string_array(json_object *j, const char *field, size_t max_items, size_t max_len,
                        ValidationError *err);
/* Every key of obj is one of known[0..n). */
int vcheck_known_fields(json_object *obj, const char *const *known, size_t n, ValidationError *err);
/* An absolute http:// or https:// URL of at most VALIDATE_URL_MAX bytes. */
int vcheck_url(json_object *j, const char *field, ValidationError *err);
/* -E2BIG if containers nest deeper than VALIDATE_JSON_DEPTH_MAX (j counts when
 * it is one), -EILSEQ if a string or key is not UTF-8; recursion bounded by the depth. */
int vcheck_json_tree(json_object *j, unsigned enclosing);
/* The compact serialisation's length (SIZE_MAX if it cannot be serialised). */
size_t vcheck_serialised_size(json_object *j);
