/* ctl_output.h — hitlctl's output (private to hitlctl): everything it prints
 * goes through here.
 *
 * Human output shows text that others wrote (a request's author, a reviewer,
 * HITL.sh), so once term_filter_install() ran, stdout and stderr pass through
 * a filter that escapes control characters, bytes that are not UTF-8, C1
 * controls and bidi overrides (ctl_output.c says which and how). --json
 * output (print_json) and the live line's own "\r\033[K" go to raw_stdout and
 * raw_stderr, which bypass it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "ctl.h"

/* The unfiltered stdout and stderr. */
extern FILE *raw_stdout, *raw_stderr;
void term_filter_install(void);
/* Flushes, and writes what the filter still holds (an incomplete sequence, escaped). */
void term_filter_finish(void);

/* "hitlctl: " + the message + "\n" on stderr. */
_printf_(1, 2) void errorf(const char *format, ...);
/* errorf(), returning EXIT_USAGE. */
_printf_(1, 2) int usage_error(const char *format, ...);

/* A daemon result unchanged, one object per line, on raw_stdout. */
void print_json(json_object *j);

/* Members of o of the right type (NULL/false when absent or of another type). */
const char *jstr(json_object *o, const char *key);
bool jint(json_object *o, const char *key, int64_t *ret);
bool jbool(json_object *o, const char *key);
/* A result value as a person reads it: strings bare, everything else JSON. */
const char *value_text(json_object *v);

/* "45s", "12m 5s", "3h 2m", "2d 4h". */
char *format_duration(uint64_t s, char *buf, size_t size);
/* "in 12m 5s", "3m 2s ago", "now". */
char *format_relative(time_t t, time_t now, char *buf, size_t size);
/* "15:00:00 (in 12m 5s)" for an ISO time; NULL when absent or unreadable. */
char *format_when(const char *iso, char *buf, size_t size);
/* "3m 2s ago" for an ISO time; NULL when absent or unreadable. */
char *format_ago(const char *iso, char *buf, size_t size);
/* The first line of s as the terminal shows it: escaped as the filter does
 * (and \t too), at most max display columns, "…" when cut; malloc()ed, NULL
 * without memory. The filter passes it unchanged. */
char *shorten(const char *s, size_t max);
/* The width of the terminal on stderr, 80 when unknown. */
int terminal_columns(void);
/* Appends to the string in buf, truncating. */
_printf_(3, 4) void append(char *buf, size_t size, const char *format, ...);

/* A table with a header row, columns as wide as their widest cell in display
 * columns (a CJK character is 2, a combining mark 0, per wcwidth() in the
 * user's LC_CTYPE locale, C.UTF-8's when that is not UTF-8). Cells are stored
 * as the terminal filter shows them, \t and \n escaped too, and measured so;
 * headers are hitlctl's own text. */
#define TABLE_COLUMNS_MAX 8

typedef struct Table {
	size_t n_columns, n_rows, allocated;
	const char *headers[TABLE_COLUMNS_MAX];
	char **cells; /* n_rows * n_columns, owned */
} Table;

void table_free(Table *t);
/* Adds a row of n_columns values (NULL: empty); -ENOMEM. */
int table_add(Table *t, const char *const *values);
void table_print(const Table *t);

/* A request's states, in the protocol's order. */
#define STATE_NAMES_N 7
extern const char *const state_names[STATE_NAMES_N];
bool state_is_terminal(const char *s);

/* What a list or watch line shows of a record: a request's text, or the
 * workflow a trigger starts. */
const char *record_text(json_object *rec, char *buf, size_t size);
/* "name:       value" when value is not empty. */
void print_field(const char *name, const char *value);
/* A record, one field a line (hitlctl get). */
void print_record(json_object *rec);
