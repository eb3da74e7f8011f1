/* test_outbox_memory.c — what an open outbox costs per record in the heap.
 *
 * The scale bench's goal is hitld's RSS with 100,000 queued requests
 * (bench/REPORT.md, 64 MiB). That figure follows the heap the outbox's load
 * leaves behind: the records and their index, and any holes the parse left
 * between them, which the allocator cannot give back. This test opens an
 * outbox of N records as hitld does (in a process whose heap the fill did not
 * touch) and bounds the heap's growth per record, so a bigger per-record
 * footprint (a struct past its malloc size class, a new per-record
 * allocation, a load that fragments the heap) fails here and not only in the
 * bench's RSS figure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outbox.h"
#include "outbox_internal.h"
#include "unit_outbox.h"
#include "unit_tmpdir.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Above PARSE_THREAD_MIN, so the load parses on its threads as with 100,000. */
#define N_RECORDS 20000
#define BATCH 500
#define TEXT_BYTES 200

/* The live part per queued record (x86-64 glibc malloc chunks): Record
 * (240 bytes, a 256-byte chunk), its Entry (88 bytes, a 96-byte chunk), its
 * Slot (16) and id-table bucket (8-16): about 385 bytes; the loop_id is one
 * copy per loop (intern.h), not 32 bytes a record. The bound leaves 10 % for
 * the arenas' own bookkeeping; holes left by the parse (about 125 bytes a
 * record when this test was written, 50 with a loop_id per record) and a
 * loop_id per record do not fit in it. */
#define BYTES_PER_RECORD_MAX 420

/* A malloc chunk holds its size, and 16-byte alignment: what a struct of n
 * bytes costs in the heap. */
static size_t chunk(size_t n) {
	n += sizeof(size_t);
	return n < 32 ? 32 : (n + 15) & ~(size_t) 15;
}

static void test_index_structs_keep_their_malloc_size_class(void **state) {
	(void) state;
	/* Each step up is 16 bytes for every record (1.6 MB at 100,000). */
	assert_true(chunk(sizeof(Record)) <= 256);
	assert_true(chunk(sizeof(Entry)) <= 96);
	assert_true(sizeof(Slot) <= 16);
}

static void fill(const char *state_dir) {
	Outbox *o = unit_open_outbox(state_dir);
	char text[TEXT_BYTES + 1];
	Record *batch[BATCH];
	int results[BATCH];

	for (size_t i = 0; i < N_RECORDS; i += BATCH) {
		for (size_t j = 0; j < BATCH; j++) {
			snprintf(text, sizeof text, "Benchmark request %zu: approve the change? ", i + j);
			memset(text + strlen(text), 'x', TEXT_BYTES - strlen(text));
			text[TEXT_BYTES] = '\0';
			batch[j] = unit_make_record(1000, NULL, text);
		}
		assert_int_equal(outbox_insert_many(o, batch, BATCH, results), 0);
	}
	assert_int_equal(outbox_size(o), N_RECORDS);
	outbox_free(o);
}

static size_t heap_bytes(void) {
	struct mallinfo2 m = mallinfo2();

	/* Every arena's memory from the system (used or not) and the chunks
	 * mmapped on their own: what the heap holds of RSS. */
	return m.arena + m.hblkhd;
}

static void test_open_outbox_heap_per_record_is_bounded(void **state) {
	char dir[] = "/tmp/hitld-test-outbox-memory-XXXXXX";
	char state_dir[sizeof dir + 16];
	size_t before, after, per_record;
	Outbox *o;
	pid_t pid;
	int status;

	(void) state;
#ifdef UNDER_ASAN
	skip(); /* ASan's allocator is not glibc's: nothing to measure */
#endif
	assert_int_equal(unit_mkdtemp_trusted(dir), 0);
	snprintf(state_dir, sizeof state_dir, "%s/state", dir);

	/* Filled by a child, so this process's heap starts clean. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fill(state_dir);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	malloc_trim(0);
	before = heap_bytes();
	o = unit_open_outbox(state_dir);
	assert_int_equal(outbox_size(o), N_RECORDS);
	after = heap_bytes();
	per_record = (after - before) / N_RECORDS;
	print_message("open outbox: %zu heap bytes per record (bound %d)\n", per_record, BYTES_PER_RECORD_MAX);
	assert_true(per_record <= BYTES_PER_RECORD_MAX);
	outbox_free(o);
	unit_rm_tree(dir);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_structs_keep_their_malloc_size_class),
		cmocka_unit_test(test_open_outbox_heap_per_record_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
