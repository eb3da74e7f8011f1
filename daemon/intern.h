/* intern.h — one shared copy of a string many records hold alike: a loop_id is
 * one per loop, not one per record (bench/ANALYSIS.md: 100,000 records of one
 * loop held 100,000 copies, 3.2 MB). Each copy is reference-counted; the last
 * intern_unref() frees it and drops it from the table, so the table holds only
 * the strings records hold (bounded by the outbox). Thread-safe: the outbox load
 * parses records on two threads. Owns the table; nothing else may free or change
 * an interned string. */
#pragma once

#include <stddef.h>

/* *ret = the shared copy of s (NULL for NULL), one reference more. -ENOMEM. */
int intern_string(const char *s, const char **ret);

/* One more reference to s, which intern_string() returned (NULL passes). */
const char *intern_ref(const char *s);

/* One reference less; the last one frees the copy (NULL passes). */
void intern_unref(const char *s);

/* The distinct strings held (tests). */
size_t intern_count(void);
