/* Durable writes: the file under its final name is either the old one or the
 * whole new one, whatever step fails; no tmp is left behind. Faults come
 * through the StoreOps seam, everything else is a real temp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "store.h"
#include "unit_faults.h"
#include "unit_tmpdir.h"

#define op_names unit_op_names

/* Fault plan: fail the fail_at-th call (1-based) of fail_op with fail_errno;
 * writes move at most max_write bytes; eintr_left calls of eintr_op fail
 * with EINTR first. */
static struct {
	int calls[_OP_MAX];
	Op fail_op;
	int fail_at;
	int fail_errno;
	size_t max_write;
	Op eintr_op;
	int eintr_left;
} fault;

static void fault_reset(void) {
	memset(&fault, 0, sizeof fault);
	fault.fail_op = _OP_MAX;
	fault.eintr_op = _OP_MAX;
}

/* Counts the call; true if it must fail (errno set). */
static bool fault_hit(Op op) {
	fault.calls[op]++;
	if (fault.eintr_op == op && fault.eintr_left > 0) {
		fault.eintr_left--;
		errno = EINTR;
		return true;
	}
	if (fault.fail_op == op && fault.calls[op] == fault.fail_at) {
		errno = fault.fail_errno;
		return true;
	}
	return false;
}

static int fake_openat(int dirfd, const char *path, int flags, mode_t mode) {
	if (fault_hit(OP_OPENAT))
		return -1;
	return openat(dirfd, path, flags, mode);
}

static ssize_t fake_write(int fd, const void *buf, size_t len) {
	if (fault_hit(OP_WRITE))
		return -1;
	if (fault.max_write > 0 && len > fault.max_write)
		len = fault.max_write;
	return write(fd, buf, len);
}

static int fake_fsync(int fd) {
	if (fault_hit(OP_FSYNC))
		return -1;
	return fsync(fd);
}

static int fake_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
	if (fault_hit(OP_RENAMEAT))
		return -1;
	return renameat(olddirfd, oldpath, newdirfd, newpath);
}

static int fake_unlinkat(int dirfd, const char *path, int flags) {
	if (fault_hit(OP_UNLINKAT))
		return -1;
	return unlinkat(dirfd, path, flags);
}

static int fake_syncfs(int fd) {
	if (fault_hit(OP_SYNCFS))
		return -1;
	return syncfs(fd);
}

static const StoreOps fake_ops = {
	.syncfs = fake_syncfs,
	.openat = fake_openat,
	.write = fake_write,
	.fsync = fake_fsync,
	.renameat = fake_renameat,
	.unlinkat = fake_unlinkat,
};

typedef struct Fixture {
	char path[64];
	int dirfd;
} Fixture;

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/hitld-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->path));
	f->dirfd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dirfd >= 0);
	fault_reset();
	store_set_ops(&fake_ops);
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	store_set_ops(NULL);
	close(f->dirfd);
	unit_rm_tree(f->path);
	free(f);
	return 0;
}

static void put_file(int dirfd, const char *name, const char *content) {
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
	close(fd);
}

/* Content of dirfd/name, or NULL if it does not exist. */
static char *get_file(int dirfd, const char *name) {
	char *data = NULL;
	size_t len;
	int r = store_read_file(dirfd, name, 1 << 20, &data, &len);

	if (r == -ENOENT)
		return NULL;
	assert_int_equal(r, 0);
	assert_int_equal(strlen(data), len);
	return data;
}

static bool exists(int dirfd, const char *name) {
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static const char new_content[] = "{\"new\":\"content that takes several short writes\"}";

static void test_store_write_creates_file_with_content_and_mode_0600(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;
	struct stat st;

	assert_int_equal(store_write_file(f->dirfd, "a.json", new_content, strlen(new_content)), 0);
	got = get_file(f->dirfd, "a.json");
	assert_string_equal(got, new_content);
	assert_int_equal(fstatat(f->dirfd, "a.json", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_false(exists(f->dirfd, "a.json.tmp"));
	/* file fsync, then directory fsync */
	assert_int_equal(fault.calls[OP_FSYNC], 2);
}

static void test_store_write_mode_ignores_the_umask(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;
	struct stat st;
	mode_t old = umask(077);

	assert_int_equal(store_write_file_mode(f->dirfd, "m.prom", new_content, strlen(new_content), 0644), 0);
	umask(old);
	got = get_file(f->dirfd, "m.prom");
	assert_string_equal(got, new_content);
	assert_int_equal(fstatat(f->dirfd, "m.prom", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_false(exists(f->dirfd, "m.prom.tmp"));
	assert_int_equal(fault.calls[OP_FSYNC], 2);
}

static void test_store_write_replaces_old_content_whole(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;

	put_file(f->dirfd, "a.json", "old old old old old old old old old old old old old old");
	assert_int_equal(store_write_file(f->dirfd, "a.json", "short", 5), 0);
	got = get_file(f->dirfd, "a.json");
	assert_string_equal(got, "short");
}

static void test_store_write_removes_stale_tmp_first(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;

	put_file(f->dirfd, "a.json.tmp", "left by a crash");
	assert_int_equal(store_write_file(f->dirfd, "a.json", "x", 1), 0);
	got = get_file(f->dirfd, "a.json");
	assert_string_equal(got, "x");
	assert_false(exists(f->dirfd, "a.json.tmp"));
}

static void test_store_write_completes_across_short_writes(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;

	fault.max_write = 3;
	assert_int_equal(store_write_file(f->dirfd, "a.json", new_content, strlen(new_content)), 0);
	assert_int_equal(fault.calls[OP_WRITE], (int) ((strlen(new_content) + 2) / 3));
	got = get_file(f->dirfd, "a.json");
	assert_string_equal(got, new_content);
}

static void test_store_write_retries_after_eintr(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;

	fault.eintr_op = OP_WRITE;
	fault.eintr_left = 2;
	assert_int_equal(store_write_file(f->dirfd, "a.json", new_content, strlen(new_content)), 0);
	got = get_file(f->dirfd, "a.json");
	assert_string_equal(got, new_content);

	fault_reset();
	fault.eintr_op = OP_FSYNC;
	fault.eintr_left = 1;
	assert_int_equal(store_write_file(f->dirfd, "b.json", "b", 1), 0);
	assert_int_equal(fault.calls[OP_FSYNC], 3);
}

/* Runs every possible single failure of every syscall store_write_file
 * makes, with and without an old file, for EIO and ENOSPC, and checks what
 * is on disk afterwards. */
static void check_every_step(Fixture *f, const char *old) {
	static const int errnos[] = { EIO, ENOSPC };
	int clean_calls[_OP_MAX];
	int steps = 0;

	/* A clean run, with short writes so that there are several, to learn
	 * how many calls of each kind there are. */
	if (old)
		put_file(f->dirfd, "a.json", old);
	else
		(void) unlinkat(f->dirfd, "a.json", 0);
	fault_reset();
	fault.max_write = 16;
	assert_int_equal(store_write_file(f->dirfd, "a.json", new_content, strlen(new_content)), 0);
	memcpy(clean_calls, fault.calls, sizeof clean_calls);
	assert_true(clean_calls[OP_WRITE] >= 3);
	assert_int_equal(clean_calls[OP_OPENAT], 1);
	assert_int_equal(clean_calls[OP_FSYNC], 2);
	assert_int_equal(clean_calls[OP_RENAMEAT], 1);
	assert_int_equal(clean_calls[OP_UNLINKAT], 1);

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= clean_calls[op]; n++)
			for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
				/* The directory fsync is the only call after the rename. */
				bool after_rename = op == OP_FSYNC && n == 2;
				_cleanup_(freep) char *got = NULL;
				int r;

				if (old)
					put_file(f->dirfd, "a.json", old);
				else
					(void) unlinkat(f->dirfd, "a.json", 0);

				fault_reset();
				fault.max_write = 16;
				fault.fail_op = op;
				fault.fail_at = n;
				fault.fail_errno = errnos[e];
				r = store_write_file(f->dirfd, "a.json", new_content, strlen(new_content));
				print_message("fail %s #%d with %s\n", op_names[op], n, strerror(errnos[e]));

				assert_int_equal(r, -errnos[e]);
				assert_false(exists(f->dirfd, "a.json.tmp"));
				got = get_file(f->dirfd, "a.json");
				if (after_rename) {
					/* Renamed but maybe not durable: the caller
					 * treats it as failed and rewrites. */
					assert_non_null(got);
					assert_string_equal(got, new_content);
				} else if (old) {
					assert_non_null(got);
					assert_string_equal(got, old);
				} else
					assert_null(got);
				steps++;
			}

	/* unlinkat, openat, ≥3 writes, 2 fsyncs, renameat — each with 2 errnos. */
	assert_true(steps >= 2 * 8);
}

static void test_store_write_failure_at_every_step_keeps_old_content(void **state) {
	check_every_step(*state, "{\"old\":true}");
}

static void test_store_write_failure_at_every_step_leaves_no_file(void **state) {
	check_every_step(*state, NULL);
}

static void test_store_write_refuses_bad_names(void **state) {
	Fixture *f = *state;

	assert_int_equal(store_write_file(f->dirfd, "", "x", 1), -EINVAL);
	assert_int_equal(store_write_file(f->dirfd, "../x", "x", 1), -EINVAL);
	assert_int_equal(store_write_file(f->dirfd, "..", "x", 1), -EINVAL);
	assert_int_equal(store_write_file(f->dirfd, NULL, "x", 1), -EINVAL);
	assert_int_equal(fault.calls[OP_OPENAT], 0);
}

static void test_store_write_empty_file(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *got = NULL;

	assert_int_equal(store_write_file(f->dirfd, "empty", NULL, 0), 0);
	got = get_file(f->dirfd, "empty");
	assert_string_equal(got, "");
}

static void test_store_read_refuses_file_over_max_len(void **state) {
	Fixture *f = *state;
	char *data = NULL;
	size_t len = 0;

	put_file(f->dirfd, "big", "0123456789");
	assert_int_equal(store_read_file(f->dirfd, "big", 9, &data, &len), -EFBIG);
	assert_null(data);
	assert_int_equal(store_read_file(f->dirfd, "big", 10, &data, &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(data, "0123456789", 10);
	assert_int_equal(data[10], '\0');
	free(data);
}

static void test_store_read_refuses_symlink_and_directory(void **state) {
	Fixture *f = *state;
	char *data = NULL;
	size_t len;

	put_file(f->dirfd, "target", "secret");
	assert_int_equal(symlinkat("target", f->dirfd, "link"), 0);
	assert_int_equal(mkdirat(f->dirfd, "sub", 0700), 0);
	assert_int_equal(mkfifoat(f->dirfd, "fifo", 0600), 0);

	assert_int_equal(store_read_file(f->dirfd, "link", 100, &data, &len), -ELOOP);
	assert_int_equal(store_read_file(f->dirfd, "sub", 100, &data, &len), -EISDIR);
	assert_int_equal(store_read_file(f->dirfd, "fifo", 100, &data, &len), -EBADFD);
	assert_int_equal(store_read_file(f->dirfd, "missing", 100, &data, &len), -ENOENT);
	assert_null(data);
}

static void test_store_unlink_removes_and_syncs_directory(void **state) {
	Fixture *f = *state;

	put_file(f->dirfd, "a", "x");
	assert_int_equal(store_unlink(f->dirfd, "a"), 0);
	assert_false(exists(f->dirfd, "a"));
	assert_int_equal(fault.calls[OP_FSYNC], 1);
	assert_int_equal(store_unlink(f->dirfd, "a"), -ENOENT);
}

static void test_store_move_never_replaces(void **state) {
	Fixture *f = *state;
	_cleanup_(freep) char *kept = NULL, *moved = NULL;
	int sub;

	assert_int_equal(store_open_dir(f->dirfd, "q", 0700, &sub), 0);
	put_file(f->dirfd, "a", "first");
	put_file(sub, "a", "earlier");
	assert_int_equal(store_move(f->dirfd, "a", sub, "a"), -EEXIST);
	kept = get_file(sub, "a");
	assert_string_equal(kept, "earlier");
	assert_true(exists(f->dirfd, "a"));

	assert_int_equal(store_move(f->dirfd, "a", sub, "a.1"), 0);
	assert_false(exists(f->dirfd, "a"));
	moved = get_file(sub, "a.1");
	assert_string_equal(moved, "first");
	close(sub);
}

static void test_store_open_dir_creates_once_and_refuses_symlink(void **state) {
	Fixture *f = *state;
	struct stat st;
	int a = -1, b = -1, c = -1;

	assert_int_equal(store_open_dir(f->dirfd, "state", 0700, &a), 0);
	assert_int_equal(fstat(a, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);

	/* Existing: opened, not an error; trailing slash tolerated. */
	assert_int_equal(store_open_dir(f->dirfd, "state/", 0700, &b), 0);

	assert_int_equal(symlinkat("state", f->dirfd, "link"), 0);
	assert_true(store_open_dir(f->dirfd, "link", 0700, &c) < 0);
	assert_true(store_open_dir(f->dirfd, "link/", 0700, &c) < 0);
	assert_int_equal(c, -1);

	put_file(f->dirfd, "plain", "x");
	assert_int_equal(store_open_dir(f->dirfd, "plain", 0700, &c), -ENOTDIR);
	close(a);
	close(b);
}

static const char *const batch_names[] = { "a.json", "b.json", "c.json" };
static const char *const batch_data[] = { "{\"a\":1}", "{\"b\":2}", "{\"c\":3}" };
static const size_t batch_lens[] = { 7, 7, 7 };

static void test_store_group_commit_writes_all_with_two_syncs(void **state) {
	Fixture *f = *state;
	int results[3] = { -1, -1, -1 };

	assert_int_equal(store_write_files(f->dirfd, 3, batch_names, batch_data, batch_lens, results), 0);
	for (size_t i = 0; i < 3; i++) {
		_cleanup_(freep) char *got = get_file(f->dirfd, batch_names[i]);
		char tmp[32];

		assert_int_equal(results[i], 0);
		assert_string_equal(got, batch_data[i]);
		snprintf(tmp, sizeof tmp, "%s.tmp", batch_names[i]);
		assert_false(exists(f->dirfd, tmp));
	}
	/* One flush of the data, one of the directory: not two per file. */
	assert_int_equal(fault.calls[OP_SYNCFS], 1);
	assert_int_equal(fault.calls[OP_FSYNC], 1);
}

static void test_store_group_commit_failed_write_fails_only_that_file(void **state) {
	Fixture *f = *state;
	int results[3];

	fault.fail_op = OP_OPENAT;
	fault.fail_at = 2;
	fault.fail_errno = ENOSPC;
	assert_int_equal(store_write_files(f->dirfd, 3, batch_names, batch_data, batch_lens, results), -ENOSPC);
	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], -ENOSPC);
	assert_int_equal(results[2], 0);
	assert_true(exists(f->dirfd, "a.json"));
	assert_false(exists(f->dirfd, "b.json"));
	assert_false(exists(f->dirfd, "b.json.tmp"));
	assert_true(exists(f->dirfd, "c.json"));
}

static void test_store_group_commit_sync_failure_fails_all_and_leaves_nothing(void **state) {
	Fixture *f = *state;
	int results[3];

	for (Op op = OP_SYNCFS; ; op = OP_FSYNC) {
		fault_reset();
		fault.fail_op = op;
		fault.fail_at = 1;
		fault.fail_errno = EIO;
		assert_int_equal(store_write_files(f->dirfd, 3, batch_names, batch_data, batch_lens, results), -EIO);
		for (size_t i = 0; i < 3; i++) {
			char tmp[32];

			assert_int_equal(results[i], -EIO);
			/* A file reported failed must not appear after a restart. */
			assert_false(exists(f->dirfd, batch_names[i]));
			snprintf(tmp, sizeof tmp, "%s.tmp", batch_names[i]);
			assert_false(exists(f->dirfd, tmp));
		}
		if (op == OP_FSYNC)
			break;
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_store_write_creates_file_with_content_and_mode_0600),
		T(test_store_write_mode_ignores_the_umask),
		T(test_store_write_replaces_old_content_whole),
		T(test_store_write_removes_stale_tmp_first),
		T(test_store_write_completes_across_short_writes),
		T(test_store_write_retries_after_eintr),
		T(test_store_write_failure_at_every_step_keeps_old_content),
		T(test_store_write_failure_at_every_step_leaves_no_file),
		T(test_store_write_refuses_bad_names),
		T(test_store_write_empty_file),
		T(test_store_read_refuses_file_over_max_len),
		T(test_store_read_refuses_symlink_and_directory),
		T(test_store_unlink_removes_and_syncs_directory),
		T(test_store_move_never_replaces),
		T(test_store_open_dir_creates_once_and_refuses_symlink),
		T(test_store_group_commit_writes_all_with_two_syncs),
		T(test_store_group_commit_failed_write_fails_only_that_file),
		T(test_store_group_commit_sync_failure_fails_all_and_leaves_nothing),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
