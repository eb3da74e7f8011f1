/* fuzz_common.h — what the libFuzzer targets in tests/fuzz/ share: the entry
 * points' prototypes, quiet logging, JSON parsed the way the daemon parses it,
 * and a crash that names the broken property. Test code only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with the message: a property every input must keep was broken. */
#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);     \
	} while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

/* Logging to stderr at LOG_CRIT and above only: the daemon's warnings about
 * bad input are expected here by the million. */
void fuzz_quiet_logs(void);

/* Strict JSON as the daemon reads it (json_tokener STRICT, the given depth,
 * one value, nothing but whitespace after it). validate_utf8 adds json-c's
 * UTF-8 check and refuses NUL bytes, as outbox.c and apiparse.c do. Returns 0
 * and the value (which may be NULL for JSON null), or -EINVAL. */
int fuzz_parse_json(const uint8_t *data, size_t size, int depth, bool validate_utf8, json_object **ret);

/* json_object_equal() that also holds NaN equal to NaN (json-c compares
 * doubles with ==). */
bool fuzz_json_equal(json_object *a, json_object *b);

/* A private temporary directory for the process (under $TMPDIR, else /tmp),
 * made on first use and removed at exit. */
const char *fuzz_tmpdir(void);

/* rm -rf path (for directories under fuzz_tmpdir()). */
void fuzz_remove_tree(const char *path);
