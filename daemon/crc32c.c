/* crc32c.c — see crc32c.h. Slicing-by-8 over tables built once: start-up
 * checks every byte of the outbox log, so a byte-at-a-time loop would show. */
#include <pthread.h>
#include <stdbool.h>

#include "crc32c.h"

#define POLY 0x82F63B78U /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int b = 0; b < 8; b++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

#if defined(__x86_64__)
/* SSE4.2 has an instruction for exactly this polynomial: ten times the
 * tables' speed where the CPU has it (checked at run time). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                                size_t len) {
	uint64_t c = ~crc;

	while (len > 0 && ((uintptr_t) p & 7) != 0) {
		c = __builtin_ia32_crc32qi((uint32_t) c, *p++);
		len--;
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		__builtin_memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t) c, *p++);
	return ~(uint32_t) c;
}

static bool have_sse42(void) {
	static int cached = -1;

	if (cached < 0)
		cached = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	return cached;
}
#endif

static uint32_t crc32c_tables(uint32_t crc, const unsigned char *p, size_t len) {
	(void) pthread_once(&table_once, table_init);
	crc = ~crc;
	while (len > 0 && ((uintptr_t) p & 7) != 0) {
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
		len--;
	}
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
		                     (uint32_t) p[3] << 24);
		uint32_t hi = (uint32_t) p[4] | (uint32_t) p[5] << 8 | (uint32_t) p[6] << 16 |
		              (uint32_t) p[7] << 24;

		crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
		      table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
		      table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
	return ~crc;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len) {
#if defined(__x86_64__)
	if (have_sse42())
		return crc32c_sse42(crc, data, len);
#endif
	return crc32c_tables(crc, data, len);
}

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len) {
	return crc32c_tables(crc, data, len);
}
