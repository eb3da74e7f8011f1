/* ctl_input.h — reading hitlctl's user input (private to hitlctl): files and
 * stdin with a bound, JSON texts, numbers and yes/no words as JSON, and the
 * string vectors repeated flags collect into. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

/* Reads path ("-": stdin), at most max bytes (-EFBIG), no NUL (-EBADMSG). */
int read_bounded(const char *path, size_t max, char **ret, size_t *ret_len);
/* A JSON text parsed, or NULL. */
json_object *parse_json_text(const char *text);
/* A number as JSON: an integer when it is one, else a double; NULL if not a number. */
json_object *parse_number(const char *s);
/* yes/no, true/false, on/off, 1/0, y/n; -EINVAL for anything else. */
int parse_bool_word(const char *s, bool *ret);
/* A NULL-terminated string vector. */
int strv_push(char ***v, size_t *n, const char *s);
void strv_free(char **v);
