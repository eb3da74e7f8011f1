/* fuzz_common.c — see fuzz_common.h. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cleanup.h"
#include "fuzz_common.h"
#include "log.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *format, ...) {
	va_list ap;

	fprintf(stderr, "\n*** FUZZ PROPERTY BROKEN at %s:%d: %s\n*** ", file, line, cond);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fuzz_quiet_logs(void) {
	log_setup(LOG_TARGET_STDERR);
	log_set_max_level(LOG_CRIT);
}

int fuzz_parse_json(const uint8_t *data, size_t size, int depth, bool validate_utf8, json_object **ret) {
	_cleanup_(json_tokener_freep) json_tokener *tok = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	const char *text = (const char *) data;
	enum json_tokener_error err;
	size_t end;

	if (size > INT_MAX || (validate_utf8 && memchr(text, '\0', size)))
		return -EINVAL;
	tok = json_tokener_new_ex(depth);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | (validate_utf8 ? JSON_TOKENER_VALIDATE_UTF8 : 0));
	j = json_tokener_parse_ex(tok, text, (int) size);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (err == json_tokener_continue) {
		/* A bare top-level number needs a terminator, as in rpc.c. */
		j = json_tokener_parse_ex(tok, " ", 1);
		err = json_tokener_get_error(tok);
		end = size;
	}
	if (err != json_tokener_success)
		return -EINVAL;
	for (; end < size; end++)
		if (!strchr(" \t\r\n", text[end]) || text[end] == '\0')
			return -EINVAL;
	*ret = TAKE_PTR(j);
	return 0;
}

bool fuzz_json_equal(json_object *a, json_object *b) {
	if (!a || !b)
		return a == b;
	if (json_object_get_type(a) != json_object_get_type(b))
		return false;
	switch (json_object_get_type(a)) {
	case json_type_double: {
		double x = json_object_get_double(a), y = json_object_get_double(b);

		return x == y || (isnan(x) && isnan(y));
	}
	case json_type_object: {
		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(a, key, va) {
			json_object *vb;

			if (!json_object_object_get_ex(b, key, &vb) || !fuzz_json_equal(va, vb))
				return false;
		}
		return true;
	}
	case json_type_array: {
		size_t n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!fuzz_json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	}
	default:
		return json_object_equal(a, b);
	}
}

static char tmpdir_path[PATH_MAX];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void) st;
	(void) flag;
	(void) ftw;
	(void) remove(path);
	return 0;
}

void fuzz_remove_tree(const char *path) {
	(void) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void tmpdir_remove(void) {
	if (tmpdir_path[0])
		fuzz_remove_tree(tmpdir_path);
}

const char *fuzz_tmpdir(void) {
	const char *base;

	if (tmpdir_path[0])
		return tmpdir_path;
	base = getenv("TMPDIR");
	if (!base || !*base || strlen(base) > 64)
		base = "/tmp";
	snprintf(tmpdir_path, sizeof tmpdir_path, "%s/hitld-fuzz-XXXXXX", base);
	if (!mkdtemp(tmpdir_path)) {
		fprintf(stderr, "fuzz: cannot create a temporary directory in %s: %m\n", base);
		abort();
	}
	atexit(tmpdir_remove);
	return tmpdir_path;
}
