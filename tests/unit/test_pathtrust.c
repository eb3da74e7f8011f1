/* pathtrust: the StrictModes rule with injected owners and modes, then the descriptor walk
 * on real directories (a temp dir under /tmp, which is root's and sticky), and the state
 * directory lock. The owner cases need root to chown and are skipped otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "pathtrust.h"
#include "statelock.h"
#include "unit_tmpdir.h"

#define SELF 1000
#define OTHER 1001
#define DIR_MODE(m) (S_IFDIR | (m))

static void test_rule_owner_root_or_self(void **state) {
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0755), SELF, PATH_TRUST_OBJECT), PATH_TRUST_OK);
	assert_int_equal(pathtrust_rule(SELF, SELF, DIR_MODE(0700), SELF, PATH_TRUST_OBJECT), PATH_TRUST_OK);
	assert_int_equal(pathtrust_rule(OTHER, OTHER, DIR_MODE(0700), SELF, PATH_TRUST_OBJECT), PATH_TRUST_BAD_OWNER);
	assert_int_equal(pathtrust_rule(OTHER, 0, DIR_MODE(0755), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_BAD_OWNER);
	/* Running as root: only root's own directories. */
	assert_int_equal(pathtrust_rule(SELF, SELF, DIR_MODE(0700), 0, PATH_TRUST_OBJECT), PATH_TRUST_BAD_OWNER);
}

static void test_rule_write_bits(void **state) {
	/* Read and search by others are fine; write is not, whatever the group is. */
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0755), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_OK);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0711), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_OK);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0775), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_GROUP_WRITABLE);
	assert_int_equal(pathtrust_rule(SELF, SELF, DIR_MODE(0770), SELF, PATH_TRUST_OBJECT), PATH_TRUST_GROUP_WRITABLE);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0757), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_OTHER_WRITABLE);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0777), SELF, PATH_TRUST_CONTAINER), PATH_TRUST_OTHER_WRITABLE);
	/* Both: the wider audience is named. */
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(0777), SELF, PATH_TRUST_OBJECT), PATH_TRUST_OTHER_WRITABLE);
}

static void test_rule_sticky(void **state) {
	/* /tmp: root's, 1777. Fine above the object and for a socket; never as the object. */
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(01777), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_OK);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(01777), SELF, PATH_TRUST_CONTAINER), PATH_TRUST_OK);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(01777), SELF, PATH_TRUST_OBJECT), PATH_TRUST_OTHER_WRITABLE);
	assert_int_equal(pathtrust_rule(0, 0, DIR_MODE(01770), SELF, PATH_TRUST_OBJECT), PATH_TRUST_GROUP_WRITABLE);
	/* Ours and sticky: others cannot remove our entries either. */
	assert_int_equal(pathtrust_rule(SELF, SELF, DIR_MODE(01777), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_OK);
	/* Someone else's sticky directory: its owner may remove anything in it. */
	assert_int_equal(pathtrust_rule(OTHER, OTHER, DIR_MODE(01777), SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_BAD_OWNER);
}

static void test_rule_not_a_directory(void **state) {
	assert_int_equal(pathtrust_rule(0, 0, S_IFREG | 0600, SELF, PATH_TRUST_OBJECT), PATH_TRUST_NOT_DIRECTORY);
	assert_int_equal(pathtrust_rule(0, 0, S_IFLNK | 0777, SELF, PATH_TRUST_ANCESTOR), PATH_TRUST_NOT_DIRECTORY);
}

/* ---- on real directories ---- */

static char tmp_dir[] = "/tmp/test_pathtrust.XXXXXX";

static int setup_dir(void **state) {
	return unit_mkdtemp_trusted(tmp_dir);
}

static int teardown_dir(void **state) {
	return unit_rm_tree(tmp_dir);
}

static char *make_dir(const char *name, mode_t mode) {
	char *path = NULL;

	assert_true(asprintf(&path, "%s/%s", tmp_dir, name) > 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static int check_path(const char *path, PathTrustRole role) {
	_cleanup_(closep) int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return pathtrust_check_dir_fd(fd, path, "test directory", role);
}

static void test_walk_accepts_private_dirs_under_tmp(void **state) {
	_cleanup_(freep) char *a = make_dir("private", 0700);
	_cleanup_(freep) char *b = NULL;

	assert_int_equal(check_path(a, PATH_TRUST_OBJECT), 0);
	assert_true(asprintf(&b, "%s/inner", a) > 0);
	assert_int_equal(mkdir(b, 0700), 0);
	assert_int_equal(check_path(b, PATH_TRUST_OBJECT), 0);
}

static void test_walk_refuses_a_writable_ancestor(void **state) {
	_cleanup_(freep) char *open_dir = make_dir("open", 0777);
	_cleanup_(freep) char *inner = NULL;

	assert_true(asprintf(&inner, "%s/inner", open_dir) > 0);
	assert_int_equal(mkdir(inner, 0700), 0);
	assert_int_equal(check_path(inner, PATH_TRUST_OBJECT), -EPERM);
	assert_int_equal(check_path(open_dir, PATH_TRUST_OBJECT), -EPERM);
	assert_int_equal(check_path(open_dir, PATH_TRUST_CONTAINER), -EPERM);
	/* Sticky, like /tmp: fine above, still not as the object itself. */
	assert_int_equal(chmod(open_dir, 01777), 0);
	assert_int_equal(check_path(inner, PATH_TRUST_OBJECT), 0);
	assert_int_equal(check_path(open_dir, PATH_TRUST_CONTAINER), 0);
	assert_int_equal(check_path(open_dir, PATH_TRUST_OBJECT), -EPERM);
}

static void test_walk_refuses_an_ancestor_of_another_owner(void **state) {
	_cleanup_(freep) char *theirs = NULL, *inner = NULL;

	if (geteuid() != 0)
		skip();
	theirs = make_dir("theirs", 0755);
	assert_int_equal(chown(theirs, 65534, (gid_t) -1), 0);
	assert_true(asprintf(&inner, "%s/inner", theirs) > 0);
	assert_int_equal(mkdir(inner, 0700), 0);
	assert_int_equal(check_path(inner, PATH_TRUST_OBJECT), -EPERM);
	assert_int_equal(chown(theirs, 0, (gid_t) -1), 0);
	assert_int_equal(check_path(inner, PATH_TRUST_OBJECT), 0);
}

static void test_open_parent(void **state) {
	_cleanup_(freep) char *dir = make_dir("sockdir", 0770), *sock = NULL;
	int fd;

	assert_true(asprintf(&sock, "%s/s.sock", dir) > 0);
	assert_int_equal(pathtrust_open_parent(sock, O_PATH, PATH_TRUST_CONTAINER, "socket directory"), -EPERM);
	assert_int_equal(chmod(dir, 0750), 0);
	fd = pathtrust_open_parent(sock, O_PATH, PATH_TRUST_CONTAINER, "socket directory");
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pathtrust_open_parent("/nonexistent-dir/x", O_PATH, PATH_TRUST_CONTAINER, "socket directory"),
	                 -ENOENT);
}

/* ---- the state directory lock ---- */

static void test_statelock_one_holder(void **state) {
	_cleanup_(freep) char *dir = NULL;
	_cleanup_(closep) int fd = -EBADF;
	int status;
	pid_t pid;

	assert_true(asprintf(&dir, "%s/state", tmp_dir) > 0);
	fd = statelock_acquire(dir);
	assert_true(fd >= 0);
	/* Created 0700, with our pid in the lock file. */
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	char buf[32] = {}, want[32];
	snprintf(want, sizeof want, "%d\n", (int) getpid());
	assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
	assert_string_equal(buf, want);

	/* Another process is refused while we hold it (flock is per open file, so a second
	 * acquire in this process would be refused too; a child is what a second hitld is). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(statelock_acquire(dir) == -EBUSY ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Released with the descriptor. */
	closep(&fd);
	fd = statelock_acquire(dir);
	assert_true(fd >= 0);
}

static void test_statelock_refuses_an_open_state_directory(void **state) {
	_cleanup_(freep) char *dir = make_dir("open-state", 0777);

	assert_int_equal(statelock_acquire(dir), -EPERM);
	assert_int_equal(access(dir, F_OK), 0);
	_cleanup_(freep) char *lock = NULL;
	assert_true(asprintf(&lock, "%s/%s", dir, STATE_LOCK_FILE) > 0);
	assert_int_equal(access(lock, F_OK), -1);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_owner_root_or_self),
		cmocka_unit_test(test_rule_write_bits),
		cmocka_unit_test(test_rule_sticky),
		cmocka_unit_test(test_rule_not_a_directory),
		cmocka_unit_test(test_walk_accepts_private_dirs_under_tmp),
		cmocka_unit_test(test_walk_refuses_a_writable_ancestor),
		cmocka_unit_test(test_walk_refuses_an_ancestor_of_another_owner),
		cmocka_unit_test(test_open_parent),
		cmocka_unit_test(test_statelock_one_holder),
		cmocka_unit_test(test_statelock_refuses_an_open_state_directory),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
