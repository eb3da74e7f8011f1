/* CRC-32C: the value every other CRC-32C implementation computes (an entry
 * the daemon writes must check out wherever it is read, and a damaged one
 * must not), the same whether the data comes in one piece or several, at any
 * alignment, and the same from the SSE4.2 path as from the tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "crc32c.h"

/* Deterministic, so that a failure replays; the seed is in the message. */
static uint64_t rng_state;

static uint64_t rng_next(void) {
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static void fill_random(unsigned char *p, size_t n) {
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char) rng_next();
}

/* Bit by bit from the definition: the reference the fast versions answer to. */
static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t len) {
	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (int b = 0; b < 8; b++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
	}
	return ~crc;
}

static void test_crc32c_check_value(void **state) {
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283U);
	assert_int_equal(crc32c_portable(0, "123456789", 9), 0xE3069283U);
	assert_int_equal(crc32c_bitwise(0, (const unsigned char *) "123456789", 9), 0xE3069283U);
}

/* RFC 3720 (iSCSI) appendix B.4: 32-byte buffers, long enough to take the
 * 8-byte paths of both versions. */
static void test_crc32c_rfc3720_vectors(void **state) {
	unsigned char buf[32];

	memset(buf, 0, sizeof buf);
	assert_int_equal(crc32c(0, buf, sizeof buf), 0x8A9136AAU);
	assert_int_equal(crc32c_portable(0, buf, sizeof buf), 0x8A9136AAU);
	memset(buf, 0xFF, sizeof buf);
	assert_int_equal(crc32c(0, buf, sizeof buf), 0x62A8AB43U);
	assert_int_equal(crc32c_portable(0, buf, sizeof buf), 0x62A8AB43U);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char) i;
	assert_int_equal(crc32c(0, buf, sizeof buf), 0x46DD794EU);
	assert_int_equal(crc32c_portable(0, buf, sizeof buf), 0x46DD794EU);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char) (31 - i);
	assert_int_equal(crc32c(0, buf, sizeof buf), 0x113FDB5CU);
	assert_int_equal(crc32c_portable(0, buf, sizeof buf), 0x113FDB5CU);
}

static void test_crc32c_empty_input_changes_nothing(void **state) {
	static const uint32_t starts[] = { 0, 1, 0xE3069283U, 0xFFFFFFFFU, 0x80000000U };
	static const char buf[16] = "0123456789abcdef";

	assert_int_equal(crc32c(0, "", 0), 0);
	assert_int_equal(crc32c_portable(0, "", 0), 0);
	for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
		/* Every alignment of an empty range: the fast path's alignment
		 * loop must not read or fold anything. */
		for (size_t a = 0; a < 8; a++) {
			assert_int_equal(crc32c(starts[i], buf + a, 0), starts[i]);
			assert_int_equal(crc32c_portable(starts[i], buf + a, 0), starts[i]);
		}
	}
}

/* The log checks an entry as header then body in two calls. */
static void test_crc32c_incremental_equals_one_shot(void **state) {
	unsigned char storage[600 + 16];

	rng_state = 0x5EED0001ULL;
	fill_random(storage, sizeof storage);
	for (size_t start = 0; start < 16; start++) {
		const unsigned char *p = storage + start;

		for (size_t len = 0; len <= 600; len += len < 40 ? 1 : 37) {
			uint32_t whole = crc32c(0, p, len);

			assert_int_equal(whole, crc32c_bitwise(0, p, len));
			assert_int_equal(crc32c_portable(0, p, len), whole);
			for (size_t cut = 0; cut <= len; cut += len < 40 ? 1 : 7) {
				uint32_t a = crc32c(crc32c(0, p, cut), p + cut, len - cut);
				uint32_t b = crc32c_portable(crc32c_portable(0, p, cut), p + cut, len - cut);

				if (a != whole || b != whole)
					fail_msg("start %zu len %zu cut %zu: one shot %08x, fast %08x, tables %08x",
					         start, len, cut, whole, a, b);
			}
			/* Three pieces, the middle one odd-sized and unaligned. */
			if (len >= 11) {
				uint32_t c = crc32c(0, p, 3);

				c = crc32c(c, p + 3, 5);
				c = crc32c(c, p + 8, len - 8);
				assert_int_equal(c, whole);
			}
		}
	}
}

static void test_crc32c_fast_path_equals_tables(void **state) {
	static unsigned char buf[70000 + 8];

	rng_state = 0x5EED0002ULL;
	fill_random(buf, sizeof buf);
	for (size_t len = 0; len < 300; len++)
		for (size_t off = 0; off < 8; off++) {
			uint32_t seed = (uint32_t) rng_next();

			if (crc32c(seed, buf + off, len) != crc32c_portable(seed, buf + off, len))
				fail_msg("len %zu off %zu seed %08x: %08x != %08x", len, off, seed,
				         crc32c(seed, buf + off, len), crc32c_portable(seed, buf + off, len));
			if (len < 64)
				assert_int_equal(crc32c_portable(seed, buf + off, len),
				                 crc32c_bitwise(seed, buf + off, len));
		}
	for (int i = 0; i < 200; i++) {
		size_t off = (size_t) (rng_next() % 8), len = (size_t) (rng_next() % 70000);

		fill_random(buf + off, len);
		assert_int_equal(crc32c(0, buf + off, len), crc32c_portable(0, buf + off, len));
	}
	/* And the reference, on one long buffer. */
	assert_int_equal(crc32c(0, buf + 3, 65536), crc32c_bitwise(0, buf + 3, 65536));
}

/* Every single-bit flip in an entry-sized buffer changes the value: a
 * damaged entry is told from a good one. */
static void test_crc32c_detects_every_single_bit_flip(void **state) {
	unsigned char buf[300];
	uint32_t good;

	rng_state = 0x5EED0003ULL;
	fill_random(buf, sizeof buf);
	good = crc32c(0, buf, sizeof buf);
	for (size_t bit = 0; bit < sizeof buf * 8; bit++) {
		buf[bit / 8] ^= (unsigned char) (1U << (bit % 8));
		assert_int_not_equal(crc32c(0, buf, sizeof buf), good);
		assert_int_not_equal(crc32c_portable(0, buf, sizeof buf), good);
		buf[bit / 8] ^= (unsigned char) (1U << (bit % 8));
	}
	assert_int_equal(crc32c(0, buf, sizeof buf), good);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_crc32c_rfc3720_vectors),
		cmocka_unit_test(test_crc32c_empty_input_changes_nothing),
		cmocka_unit_test(test_crc32c_incremental_equals_one_shot),
		cmocka_unit_test(test_crc32c_fast_path_equals_tables),
		cmocka_unit_test(test_crc32c_detects_every_single_bit_flip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
