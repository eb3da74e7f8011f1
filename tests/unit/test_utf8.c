/* The daemon's one UTF-8 rule (daemon/utf8.c), which the socket server and the
 * validators both apply: every boundary of RFC 3629's table of well-formed
 * sequences, accepted on the inside and refused just outside; code points
 * counted; a truncated buffer cut at a whole character. Before utf8.c, rpc.c
 * and validate.c each held a copy of this rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "utf8.h"

typedef struct Case {
	const char *bytes;
	size_t len;
	bool valid;
	size_t count;
} Case;

#define C(s, v, n) { s, sizeof(s) - 1, v, n }

static const Case cases[] = {
	C("", true, 0),
	C("plain ascii", true, 11),
	C("\x00", true, 1),                     /* NUL is a code point; callers refuse it where they must */
	C("\x7f", true, 1),
	C("\xc2\x80", true, 1),                 /* U+0080, the first two-byte */
	C("\xdf\xbf", true, 1),                 /* U+07FF */
	C("\xe0\xa0\x80", true, 1),             /* U+0800, the first three-byte */
	C("\xed\x9f\xbf", true, 1),             /* U+D7FF, below the surrogates */
	C("\xee\x80\x80", true, 1),             /* U+E000, above them */
	C("\xef\xbf\xbf", true, 1),             /* U+FFFF */
	C("\xf0\x90\x80\x80", true, 1),         /* U+10000, the first four-byte */
	C("\xf4\x8f\xbf\xbf", true, 1),         /* U+10FFFF, the last */
	C("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", true, 4),
	C("\x80", false, 0),                    /* stray continuation byte */
	C("\xbf", false, 0),
	C("\xc0\x80", false, 0),                /* overlong NUL */
	C("\xc1\xbf", false, 0),                /* overlong U+007F */
	C("\xe0\x9f\xbf", false, 0),            /* overlong U+07FF */
	C("\xed\xa0\x80", false, 0),            /* U+D800, a surrogate */
	C("\xed\xbf\xbf", false, 0),            /* U+DFFF */
	C("\xf0\x8f\xbf\xbf", false, 0),        /* overlong U+FFFF */
	C("\xf4\x90\x80\x80", false, 0),        /* U+110000 */
	C("\xf5\x80\x80\x80", false, 0),
	C("\xf8\x88\x80\x80\x80", false, 0),    /* five-byte form */
	C("\xff", false, 0),
	C("\xc3", false, 0),                    /* truncated */
	C("\xe2\x82", false, 0),
	C("\xf0\x9f\x98", false, 0),
	C("\xc3\x28", false, 0),                /* lead byte, then no continuation */
	C("\xe2\x28\xa1", false, 0),
};

static void test_boundaries(void **state) {
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const Case *c = &cases[i];
		size_t count = 12345;

		if (utf8_is_valid(c->bytes, c->len) != c->valid)
			fail_msg("case %zu: utf8_is_valid() should be %d", i, c->valid);
		if (utf8_count(c->bytes, c->len, &count) != c->valid)
			fail_msg("case %zu: utf8_count() should be %d", i, c->valid);
		if (c->valid && count != c->count)
			fail_msg("case %zu: %zu code points, not %zu", i, count, c->count);
		if (!c->valid && count != 12345)
			fail_msg("case %zu: count written on failure", i);
		assert_int_equal(utf8_count(c->bytes, c->len, NULL), c->valid);
	}
}

static void test_cut_partial(void **state) {
	char s[16];

	strcpy(s, "ab\xe2\x82");            /* "€" cut after two of its three bytes */
	utf8_cut_partial(s);
	assert_string_equal(s, "ab");

	strcpy(s, "ab\xe2\x82\xac");        /* whole: kept */
	utf8_cut_partial(s);
	assert_string_equal(s, "ab\xe2\x82\xac");

	strcpy(s, "x\xf0");
	utf8_cut_partial(s);
	assert_string_equal(s, "x");

	strcpy(s, "");
	utf8_cut_partial(s);
	assert_string_equal(s, "");
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_cut_partial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
