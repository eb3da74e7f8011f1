/* utf8.c — the one UTF-8 rule (see utf8.h). */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

void utf8_cut_partial(char *s) {
	size_t n = strlen(s), i = n;

	while (i > 0 && ((unsigned char) s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;

	unsigned char lead = (unsigned char) s[i - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

bool utf8_count(const char *s, size_t n, size_t *ret_count) {
	const unsigned char *p = (const unsigned char *) s;
	size_t count = 0;

	for (size_t i = 0; i < n; count++) {
		unsigned char c = p[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else
			return false;

		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}

	if (ret_count)
		*ret_count = count;
	return true;
}

bool utf8_is_valid(const char *s, size_t n) {
	return utf8_count(s, n, NULL);
}
