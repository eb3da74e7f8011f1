/* cursor.c — see cursor.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "cursor.h"

#define HALF_MASK ((UINT64_C(1) << 48) - 1)
#define ROUNDS 4

/* splitmix64's finalizer: every input bit moves every output bit. */
static uint64_t mix(uint64_t x) {
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static uint64_t round_fn(uint64_t k, uid_t uid, uint64_t half) {
	return mix(mix(k ^ half) ^ ((uint64_t) uid << 16) ^ k) & HALF_MASK;
}

static uint64_t check_of(const CursorKey *key, uid_t uid, uint64_t seq) {
	return round_fn(key->k[ROUNDS], uid, seq);
}

int cursor_key_new(CursorKey *ret) {
	ssize_t n = getrandom(ret->k, sizeof ret->k, 0);

	if (n < 0)
		return -errno;
	return n == (ssize_t) sizeof ret->k ? 0 : -EIO;
}

int cursor_encode(const CursorKey *key, uid_t uid, uint64_t seq, char ret[static CURSOR_STRING_MAX]) {
	uint64_t l = seq, r = check_of(key, uid, seq);

	if (seq == 0 || seq > CURSOR_SEQ_MAX)
		return -ERANGE;
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint64_t t = r;

		r = l ^ round_fn(key->k[i], uid, r);
		l = t;
	}
	snprintf(ret, CURSOR_STRING_MAX, "%012llx%012llx", (unsigned long long) l, (unsigned long long) r);
	return 0;
}

static int parse_half(const char *s, uint64_t *ret) {
	uint64_t v = 0;

	for (unsigned i = 0; i < 12; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t) (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t) (c - 'a' + 10);
		else
			return -EINVAL;
	}
	*ret = v;
	return 0;
}

int cursor_decode(const CursorKey *key, uid_t uid, const char *s, uint64_t *ret_seq) {
	uint64_t l, r;

	if (!s || strlen(s) != CURSOR_STRING_MAX - 1 || parse_half(s, &l) < 0 || parse_half(s + 12, &r) < 0)
		return -EINVAL;
	for (unsigned i = ROUNDS; i-- > 0;) {
		uint64_t t = l;

		l = r ^ round_fn(key->k[i], uid, l);
		r = t;
	}
	if (l == 0 || r != check_of(key, uid, l))
		return -EINVAL;
	*ret_seq = l;
	return 0;
}
