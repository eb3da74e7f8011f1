/* cursor.h — opaque request.list cursors (PROTOCOL.md §3 request.list, §7).
 * A cursor names a position (a record's seq) for one uid only: the seq is
 * never shown (it would tell how many requests other users submit), and a
 * cursor handed to another uid, edited, or made up is refused. Owns nothing
 * but the key it is given; pure, no I/O. Not cryptography in the strict
 * sense: a keyed 96-bit Feistel permutation with a 48-bit check, enough that
 * guessing a valid cursor of another user takes ~2^47 tries, and all it could
 * give is a position in the caller's own list. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#define CURSOR_STRING_MAX 25 /* 24 hex digits and NUL */
#define CURSOR_SEQ_MAX ((UINT64_C(1) << 48) - 1)

typedef struct CursorKey {
	uint64_t k[5];
} CursorKey;

/* A fresh random key (getrandom); negative errno on failure. */
int cursor_key_new(CursorKey *ret);
/* seq must be in 1..CURSOR_SEQ_MAX; -ERANGE otherwise. */
int cursor_encode(const CursorKey *key, uid_t uid, uint64_t seq, char ret[static CURSOR_STRING_MAX]);
/* -EINVAL unless s came from cursor_encode() with this key and uid. */
int cursor_decode(const CursorKey *key, uid_t uid, const char *s, uint64_t *ret_seq);
