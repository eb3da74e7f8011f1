/* utf8.h — the daemon's one UTF-8 rule: strict RFC 3629 (no overlong forms, no
 * UTF-16 surrogates, nothing past U+10FFFF, no stray or missing continuation
 * bytes). The socket server (rpc) refuses a line that breaks it; the validators
 * (vcheck, validate) count code points with it, so both say the same about a
 * string. Pure: no I/O, no allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Is s[0..n) well-formed UTF-8? A NUL byte is a valid code point here. */
bool utf8_is_valid(const char *s, size_t n);

/* The same rule, counting code points: true and *ret_count (may be NULL) when
 * s[0..n) is well-formed, false otherwise (*ret_count untouched). */
bool utf8_count(const char *s, size_t n, size_t *ret_count);

/* Cuts an incomplete UTF-8 sequence off the end of the C string s, as left
 * there by truncating it to a buffer (snprintf). */
void utf8_cut_partial(char *s);
