/* The usage history on disk (usage_store.h): counts survive restarts and
 * crashes (a child that records and dies without a checkpoint stands in for
 * kill -9), calls left in flight count as no reply, a torn or damaged
 * journal entry is skipped, a damaged day file is set aside, and 30 days at
 * full budget stay within the size the design promises. The clock is
 * injected; real files in a temp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "store.h"
#include "usage_store.h"
#include "unit_tmpdir.h"

#define LOOP_A "0123456789abcdef01234567"
#define LOOP_B "fedcba9876543210fedcba98"
#define T0 ((usec_t) 1765000800ULL * USEC_PER_SEC) /* 2025-12-06T05:20Z, on an hour */

typedef struct Fixture {
	char dir[64];
	int fd;
} Fixture;

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/test_usage_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->fd = open(f->dir, O_DIRECTORY | O_CLOEXEC);
	assert_true(f->fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	store_set_ops(NULL);
	close(f->fd);
	unit_rm_tree(f->dir);
	free(f);
	return 0;
}

static UsageTag tag(UsageKind kind, uint32_t uid, const char *loop) {
	UsageTag t = { .kind = kind, .uid = uid };

	snprintf(t.loop_id, sizeof t.loop_id, "%s", loop);
	return t;
}

static void call(UsageStore *s, UsageKind kind, uint32_t uid, const char *loop, long status, usec_t now) {
	UsageTag t = tag(kind, uid, loop);
	uint64_t seq;

	assert_int_equal(usage_store_sent(s, &t, now, &seq), 0);
	assert_int_equal(usage_store_ended(s, seq, status, NULL, now + USEC_PER_SEC / 10, NULL), 0);
}

static uint64_t kind_calls(UsageStore *s, usec_t since, usec_t now, UsageKind kind, UsageOutcome outcome) {
	_cleanup_(freep) UsageSum *v = NULL;
	size_t n;

	assert_int_equal(usage_store_query(s, since, now, USAGE_UID_ANY, USAGE_BY_KIND, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (v[i].kind == kind)
			return outcome == _USAGE_OUTCOME_MAX ? v[i].calls : v[i].by_outcome[outcome];
	return 0;
}

/* Loop ids as the day files keep them, before a restart as after: one loop
 * (upper and lower case are one), lower case; no loop for what is none. */
static void check_loops(UsageStore *s, usec_t now) {
	_cleanup_(freep) UsageSum *v = NULL;
	size_t n;

	assert_int_equal(usage_store_query(s, T0, now, USAGE_UID_ANY, USAGE_BY_LOOP, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].loop_id, "");
	assert_int_equal(v[0].calls, 2);
	assert_string_equal(v[1].loop_id, LOOP_A);
	assert_int_equal(v[1].calls, 2);
}

static void test_usage_store_survives_restart(void **state) {
	Fixture *f = *state;
	UsageStore *s = NULL;
	UsageTotals t;

	assert_int_equal(usage_store_open(f->fd, T0, &s), 0);
	call(s, USAGE_CREATE, 1000, LOOP_A, 201, T0);
	call(s, USAGE_CREATE, 1000, "0123456789ABCDEF01234567", 400, T0 + USEC_PER_SEC);
	call(s, USAGE_POLL, 1000, "not a loop id", 200, T0 + USEC_PER_SEC);
	call(s, USAGE_POLL, USAGE_UID_SHARED, "", 200, T0 + 2 * USEC_PER_SEC);
	assert_int_equal(usage_store_finished(s, true, 1000, LOOP_A, T0 + 3 * USEC_PER_SEC), 0);
	check_loops(s, T0 + 4 * USEC_PER_SEC);
	usage_store_free(s, T0 + 4 * USEC_PER_SEC);

	assert_int_equal(usage_store_open(f->fd, T0 + 5 * USEC_PER_SEC, &s), 0);
	assert_int_equal(kind_calls(s, T0, T0 + 5 * USEC_PER_SEC, USAGE_CREATE, _USAGE_OUTCOME_MAX), 2);
	assert_int_equal(kind_calls(s, T0, T0 + 5 * USEC_PER_SEC, USAGE_CREATE, USAGE_4XX), 1);
	assert_int_equal(kind_calls(s, T0, T0 + 5 * USEC_PER_SEC, USAGE_POLL, _USAGE_OUTCOME_MAX), 2);
	check_loops(s, T0 + 5 * USEC_PER_SEC);
	usage_store_totals(s, &t);
	assert_int_equal(t.calls[USAGE_CREATE][USAGE_2XX], 1);
	assert_int_equal(t.calls[USAGE_DECISION][USAGE_NONE], 1);
	usage_store_free(s, T0 + 6 * USEC_PER_SEC);
}

/* A child records calls (every one a checkpoint interval apart from none, so
 * they are only in the journal), leaves one in flight and dies: every call
 * is there after the restart, the one in flight as no reply. */
static void test_usage_store_crash_loses_no_call(void **state) {
	Fixture *f = *state;
	UsageStore *s = NULL;
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		UsageTag t = tag(USAGE_FEEDBACK, 1001, LOOP_B);
		uint64_t seq;

		if (usage_store_open(f->fd, T0, &s) < 0)
			_exit(1);
		for (unsigned i = 0; i < 7; i++) {
			UsageTag c = tag(USAGE_CREATE, 1000, LOOP_A);

			if (usage_store_sent(s, &c, T0 + i * USEC_PER_SEC, &seq) < 0 ||
			    usage_store_ended(s, seq, 201, NULL, T0 + i * USEC_PER_SEC, NULL) < 0)
				_exit(1);
		}
		if (usage_store_sent(s, &t, T0 + 8 * USEC_PER_SEC, &seq) < 0)
			_exit(1);
		_exit(0); /* no free, no checkpoint: as kill -9 */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(usage_store_open(f->fd, T0 + 10 * USEC_PER_SEC, &s), 0);
	assert_int_equal(kind_calls(s, T0, T0 + 10 * USEC_PER_SEC, USAGE_CREATE, USAGE_2XX), 7);
	assert_int_equal(kind_calls(s, T0, T0 + 10 * USEC_PER_SEC, USAGE_FEEDBACK, USAGE_NO_REPLY), 1);
	assert_int_equal(usage_store_in_flight(s), 0);
	usage_store_free(s, T0 + 11 * USEC_PER_SEC);
	/* and once more: nothing counted twice */
	assert_int_equal(usage_store_open(f->fd, T0 + 12 * USEC_PER_SEC, &s), 0);
	assert_int_equal(kind_calls(s, T0, T0 + 12 * USEC_PER_SEC, USAGE_CREATE, _USAGE_OUTCOME_MAX), 7);
	assert_int_equal(kind_calls(s, T0, T0 + 12 * USEC_PER_SEC, USAGE_FEEDBACK, _USAGE_OUTCOME_MAX), 1);
	usage_store_free(s, T0 + 13 * USEC_PER_SEC);
}

/* A checkpoint whose files were written but whose journal was not cut back
 * (a crash between the two) replays nothing twice. */
static void test_usage_store_replay_is_idempotent(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *journal = NULL;
	UsageStore *s = NULL;
	size_t len;
	int fd;

	assert_int_equal(usage_store_open(f->fd, T0, &s), 0);
	call(s, USAGE_CANCEL, 1000, LOOP_A, 200, T0);
	call(s, USAGE_CANCEL, 1000, LOOP_A, 200, T0 + USEC_PER_SEC);
	/* keep the journal as it is before the checkpoint */
	{
		int dfd = openat(f->fd, USAGE_DIR, O_DIRECTORY | O_CLOEXEC);

		assert_int_equal(store_read_file(dfd, "journal", 1 << 20, &journal, &len), 0);
		close(dfd);
	}
	usage_store_free(s, T0 + 2 * USEC_PER_SEC);
	fd = openat(f->fd, USAGE_DIR "/journal", O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, journal, len), (ssize_t) len);
	close(fd);

	assert_int_equal(usage_store_open(f->fd, T0 + 3 * USEC_PER_SEC, &s), 0);
	assert_int_equal(kind_calls(s, T0, T0 + 3 * USEC_PER_SEC, USAGE_CANCEL, _USAGE_OUTCOME_MAX), 2);
	usage_store_free(s, T0 + 4 * USEC_PER_SEC);
}

/* A torn last entry and a damaged one are skipped; the rest counts. */
static void test_usage_store_damaged_journal_entries_are_skipped(void **state) {
	Fixture *f = *state;
	UsageStore *s = NULL;
	pid_t pid;
	int status, fd;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (usage_store_open(f->fd, T0, &s) < 0)
			_exit(1);
		for (unsigned i = 0; i < 3; i++)
			call(s, USAGE_RECONCILE, 1000, LOOP_A, 200, T0 + i * USEC_PER_SEC);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* 6 entries of 96 bytes: flip a byte of the 2nd END (entry 3), tear a 7th */
	fd = openat(f->fd, USAGE_DIR "/journal", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 3 * 96 + 40), 1);
	assert_int_equal(pwrite(fd, "torn", 4, 6 * 96), 4);
	close(fd);

	assert_int_equal(usage_store_open(f->fd, T0 + 10 * USEC_PER_SEC, &s), 0);
	/* the damaged END's call is still open from its START: counted as no reply */
	assert_int_equal(kind_calls(s, T0, T0 + 10 * USEC_PER_SEC, USAGE_RECONCILE, USAGE_2XX), 2);
	assert_int_equal(kind_calls(s, T0, T0 + 10 * USEC_PER_SEC, USAGE_RECONCILE, USAGE_NO_REPLY), 1);
	call(s, USAGE_RECONCILE, 1000, LOOP_A, 200, T0 + 11 * USEC_PER_SEC);
	usage_store_free(s, T0 + 12 * USEC_PER_SEC);
	assert_int_equal(usage_store_open(f->fd, T0 + 13 * USEC_PER_SEC, &s), 0);
	assert_int_equal(kind_calls(s, T0, T0 + 13 * USEC_PER_SEC, USAGE_RECONCILE, _USAGE_OUTCOME_MAX), 4);
	usage_store_free(s, T0 + 14 * USEC_PER_SEC);
}

static void test_usage_store_damaged_day_file_is_set_aside(void **state) {
	Fixture *f = *state;
	UsageStore *s = NULL;
	char name[64];
	struct stat st;
	int fd;

	assert_int_equal(usage_store_open(f->fd, T0, &s), 0);
	call(s, USAGE_CREATE, 1000, LOOP_A, 201, T0);
	usage_store_free(s, T0 + USEC_PER_SEC);
	snprintf(name, sizeof name, USAGE_DIR "/2025-12-06");
	fd = openat(f->fd, name, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, 40), 1);
	close(fd);

	assert_int_equal(usage_store_open(f->fd, T0 + 2 * USEC_PER_SEC, &s), 0);
	assert_int_equal(fstatat(f->fd, USAGE_DIR "/2025-12-06.bad", &st, 0), 0);
	assert_int_equal(kind_calls(s, T0, T0 + 2 * USEC_PER_SEC, USAGE_CREATE, _USAGE_OUTCOME_MAX), 0);
	usage_store_free(s, T0 + 3 * USEC_PER_SEC);
}

static uint64_t loop_calls(UsageStore *s, usec_t now, const char *loop_id) {
	_cleanup_(freep) UsageSum *v = NULL;
	size_t n;

	assert_int_equal(usage_store_query(s, T0, now, USAGE_UID_ANY, USAGE_BY_LOOP, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].loop_id, loop_id))
			return v[i].calls;
	return 0;
}

static uint32_t day_file_version(int state_fd, const char *name) {
	_cleanup_(freep) char *data = NULL;
	int dfd = openat(state_fd, USAGE_DIR, O_DIRECTORY | O_CLOEXEC);
	size_t len;

	assert_true(dfd >= 0);
	assert_int_equal(store_read_file(dfd, name, 1 << 20, &data, &len), 0);
	close(dfd);
	assert_true(len >= 12);
	return (uint32_t) (uint8_t) data[8] | (uint32_t) (uint8_t) data[9] << 8;
}

static void check_workflows(UsageStore *s, usec_t now) {
	assert_int_equal(loop_calls(s, now, "wf_deploy_4812"), 2);
	assert_int_equal(loop_calls(s, now, "wf_a-B_9"), 1);
	assert_int_equal(loop_calls(s, now, "wf_0123456789abcdef"), 1);
	assert_int_equal(loop_calls(s, now, "wf_customer_onb~aB-_"), 1);
	assert_int_equal(loop_calls(s, now, LOOP_A), 1);
	assert_int_equal(loop_calls(s, now, ""), 1);
}

/* A trigger's calls count for its workflow ("wf_…", up to 16 characters
 * after the prefix: longer ones come shortened, usage.h), in the journal
 * after a crash, in the day files and in the state's calls in flight. */
static void test_usage_store_keeps_workflow_ids(void **state) {
	Fixture *f = *state;
	UsageStore *s = NULL;
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (usage_store_open(f->fd, T0, &s) < 0)
			_exit(1);
		call(s, USAGE_TRIGGER, 1000, "wf_deploy_4812", 200, T0);
		call(s, USAGE_TRIGGER, 1000, "wf_a-B_9", 500, T0 + USEC_PER_SEC);
		_exit(0); /* no checkpoint: only the journal has them */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(usage_store_open(f->fd, T0 + 2 * USEC_PER_SEC, &s), 0);
	call(s, USAGE_TRIGGER, 1000, "wf_deploy_4812", 200, T0 + 2 * USEC_PER_SEC);
	call(s, USAGE_CREATE, 1000, LOOP_A, 201, T0 + 2 * USEC_PER_SEC);
	/* A shortened key (usage_workflow_key()), and one that is none. */
	call(s, USAGE_TRIGGER, 1000, "wf_customer_onb~aB-_", 200, T0 + 2 * USEC_PER_SEC);
	call(s, USAGE_TRIGGER, 1000, "wf_a~b", 200, T0 + 2 * USEC_PER_SEC);
	{
		/* In flight when hitld stops: the state file keeps its tag. */
		UsageTag t = tag(USAGE_TRIGGER, 1000, "wf_0123456789abcdef");
		uint64_t seq;

		assert_int_equal(usage_store_sent(s, &t, T0 + 3 * USEC_PER_SEC, &seq), 0);
	}
	check_workflows(s, T0 + 4 * USEC_PER_SEC);
	usage_store_free(s, T0 + 4 * USEC_PER_SEC);
	/* A day with a workflow in it is of the second version. */
	assert_int_equal(day_file_version(f->fd, "2025-12-06"), 2);

	assert_int_equal(usage_store_open(f->fd, T0 + 5 * USEC_PER_SEC, &s), 0);
	check_workflows(s, T0 + 5 * USEC_PER_SEC);
	usage_store_free(s, T0 + 6 * USEC_PER_SEC);
}

/* A day file of the first version, as hitld wrote it before workflows were
 * kept (loop ids only), reads as it did; and a day without a workflow is
 * still written so, which an older hitld can read. */
static void test_usage_store_reads_version_1_day_files(void **state) {
	Fixture *f = *state;
	UsageStore *s = NULL;
	uint8_t buf[32 + 2 * 24] = "HITLUSGD";
	uint32_t day = (uint32_t) (T0 / USEC_PER_DAY), hour = (uint32_t) (T0 / USEC_PER_HOUR % 24), crc;
	static const uint8_t loop_a[12] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67 };
	int dfd, fd;

	/* header: magic, version 1, day, applied seq 0, 2 rows, crc */
	buf[8] = 1;
	memcpy(buf + 12, &day, 4); /* little endian, as the file */
	buf[24] = 2;
	/* hour, outcome 2xx, kind create, flags 1 (a loop), uid 1000, loop, count 3 */
	buf[32] = (uint8_t) hour;
	buf[34] = USAGE_CREATE;
	buf[35] = 1;
	buf[36] = 1000 & 0xff;
	buf[37] = 1000 >> 8;
	memcpy(buf + 40, loop_a, 12);
	buf[52] = 3;
	/* hour, outcome 2xx, kind poll, no loop, uid shared, count 5 */
	buf[56] = (uint8_t) hour;
	buf[58] = USAGE_POLL;
	memset(buf + 60, 0xff, 4);
	buf[60] = 0xfe;
	buf[76] = 5;
	crc = crc32c(crc32c(0, buf, 28), buf + 32, sizeof buf - 32);
	memcpy(buf + 28, &crc, 4);

	assert_int_equal(usage_store_open(f->fd, T0, &s), 0);
	usage_store_free(s, T0);
	dfd = openat(f->fd, USAGE_DIR, O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	fd = openat(dfd, "2025-12-06", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof buf), (ssize_t) sizeof buf);
	close(fd);
	close(dfd);

	assert_int_equal(usage_store_open(f->fd, T0 + USEC_PER_SEC, &s), 0);
	assert_int_equal(kind_calls(s, T0, T0 + USEC_PER_SEC, USAGE_CREATE, USAGE_2XX), 3);
	assert_int_equal(kind_calls(s, T0, T0 + USEC_PER_SEC, USAGE_POLL, USAGE_2XX), 5);
	assert_int_equal(loop_calls(s, T0 + USEC_PER_SEC, LOOP_A), 3);
	assert_int_equal(loop_calls(s, T0 + USEC_PER_SEC, ""), 5);
	call(s, USAGE_CANCEL, 1000, LOOP_B, 200, T0 + USEC_PER_SEC);
	usage_store_free(s, T0 + 2 * USEC_PER_SEC);
	assert_int_equal(day_file_version(f->fd, "2025-12-06"), 1);
}

static int fake_fsync(int fd) {
	return 0;
}

static int fake_syncfs(int fd) {
	return 0;
}

static off_t dir_size(int state_fd) {
	DIR *d = fdopendir(openat(state_fd, USAGE_DIR, O_DIRECTORY | O_CLOEXEC));
	struct dirent *de;
	off_t total = 0;
	struct stat st;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
			total += st.st_size;
	closedir(d);
	return total;
}

/* 31 days at full budget (100 calls an hour, 60 decisions, 10 defaults) by
 * four uids in five loops: the directory stays far below the design bound,
 * the hours past the kept days are gone, and the kept ones add up. */
static void test_usage_store_thirty_days_at_full_budget(void **state) {
	static const char *const loops[] = { LOOP_A, LOOP_B, "00000000000000000000000a", "00000000000000000000000b",
		                             "00000000000000000000000c" };
	static const StoreOps fast = { .fsync = fake_fsync, .syncfs = fake_syncfs };
	Fixture *f = *state;
	UsageStore *s = NULL;
	const unsigned days = USAGE_DAYS_KEPT + 2;
	usec_t now = T0, end;
	off_t size, bound;

	/* Only the syncs are faked, to keep the run short. */
	store_set_ops(&fast);
	assert_int_equal(usage_store_open(f->fd, now, &s), 0);
	for (unsigned h = 0; h < days * 24; h++) {
		usec_t hour = T0 + h * USEC_PER_HOUR;

		for (unsigned i = 0; i < 100; i++) {
			usec_t t = hour + i * 36 * USEC_PER_SEC;
			uint32_t uid = 1000 + i % 4;
			const char *loop = loops[i % 5];

			if (i < 70)
				call(s, USAGE_CREATE, uid, loop, i % 17 == 0 ? 400 : 201, t);
			else if (i < 85)
				call(s, USAGE_POLL, USAGE_UID_SHARED, i % 2 ? loop : "", 200, t);
			else if (i < 90)
				call(s, USAGE_RECONCILE, uid, loop, 200, t);
			else if (i < 93)
				call(s, USAGE_CANCEL, uid, loop, 200, t);
			else if (i < 95)
				call(s, USAGE_FEEDBACK, uid, loop, 200, t);
			else if (i < 99)
				call(s, USAGE_INTERACTIVE, uid, loop, i % 3 ? 200 : 503, t);
			else
				call(s, USAGE_PROBE, USAGE_UID_SHARED, "", 0, t);
			if (i < 60)
				assert_int_equal(usage_store_finished(s, true, uid, loop, t + 1), 0);
			else if (i < 70)
				assert_int_equal(usage_store_finished(s, false, uid, loop, t + 1), 0);
		}
	}
	end = T0 + days * 24 * USEC_PER_HOUR;
	usage_store_free(s, end);

	size = dir_size(f->fd);
	bound = (off_t) (USAGE_DAYS_KEPT + 1) * (32 + 24 * (USAGE_ROWS_PER_HOUR_MAX + _USAGE_KIND_MAX * _USAGE_OUTCOME_MAX) *
	                                         USAGE_DISK_ROW_SIZE) + 4096;
	print_message("usage history after %u days at full budget: %lld bytes (design bound %lld)\n", days,
	              (long long) size, (long long) bound);
	assert_true(size <= bound);
	assert_true(size < 2 * 1024 * 1024);

	assert_int_equal(usage_store_open(f->fd, end, &s), 0);
	/* the kept days: USAGE_HOURS_KEPT hours of 100 calls (the current hour is empty) */
	assert_int_equal(kind_calls(s, T0, end, USAGE_CREATE, _USAGE_OUTCOME_MAX) +
	                         kind_calls(s, T0, end, USAGE_POLL, _USAGE_OUTCOME_MAX) +
	                         kind_calls(s, T0, end, USAGE_RECONCILE, _USAGE_OUTCOME_MAX) +
	                         kind_calls(s, T0, end, USAGE_CANCEL, _USAGE_OUTCOME_MAX) +
	                         kind_calls(s, T0, end, USAGE_FEEDBACK, _USAGE_OUTCOME_MAX) +
	                         kind_calls(s, T0, end, USAGE_INTERACTIVE, _USAGE_OUTCOME_MAX) +
	                         kind_calls(s, T0, end, USAGE_PROBE, _USAGE_OUTCOME_MAX),
	                 (uint64_t) (USAGE_HOURS_KEPT - 1) * 100);
	{
		UsageTotals t;

		usage_store_totals(s, &t);
		assert_int_equal(t.calls[USAGE_DECISION][USAGE_NONE], (uint64_t) days * 24 * 60);
		assert_int_equal(t.calls[USAGE_PROBE][USAGE_NO_REPLY], (uint64_t) days * 24);
	}
	usage_store_free(s, end);
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
		T(test_usage_store_survives_restart),
		T(test_usage_store_crash_loses_no_call),
		T(test_usage_store_replay_is_idempotent),
		T(test_usage_store_damaged_journal_entries_are_skipped),
		T(test_usage_store_damaged_day_file_is_set_aside),
		T(test_usage_store_keeps_workflow_ids),
		T(test_usage_store_reads_version_1_day_files),
		T(test_usage_store_thirty_days_at_full_budget),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
