/* listener: the socket directory rule (pathtrust) and noticing a socket file removed or
 * replaced under the daemon. The rest of the listener is tested in test_rpc.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "listener.h"
#include "unit_tmpdir.h"

static char tmp_dir[] = "/tmp/test_listener.XXXXXX";

static int setup_dir(void **state) {
	return unit_mkdtemp_trusted(tmp_dir);
}

static int teardown_dir(void **state) {
	return unit_rm_tree(tmp_dir);
}

static void test_refuses_a_group_writable_socket_directory(void **state) {
	char dir[128], path[160];
	bool inherited;
	int fd = -1;

	snprintf(dir, sizeof dir, "%s/shared", tmp_dir);
	snprintf(path, sizeof path, "%s/s.sock", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	/* 0770: a member of the group could unlink our socket and listen in its place. */
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(listener_open(path, 0660, (gid_t) -1, &fd, &inherited), -EPERM);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(chmod(dir, 0750), 0);
	assert_int_equal(listener_open(path, 0660, (gid_t) -1, &fd, &inherited), 0);
	listener_close(fd, path, inherited);
}

static int bind_at(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof sa.sun_path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
	return fd;
}

static void test_notices_a_replaced_socket_once(void **state) {
	char path[160];
	ListenerFile f = {};
	bool inherited;
	int fd = -1, impostor;

	snprintf(path, sizeof path, "%s/r.sock", tmp_dir);
	/* Nothing identified: nothing to say. */
	assert_int_equal(listener_verify(path, &f), 0);
	assert_int_equal(listener_open(path, 0600, (gid_t) -1, &fd, &inherited), 0);
	assert_int_equal(listener_identify(path, &f), 0);
	assert_int_equal(listener_verify(path, &f), 0);
	assert_false(f.replaced);

	assert_int_equal(unlink(path), 0);
	impostor = bind_at(path);
	assert_int_equal(listener_verify(path, &f), -ESTALE);
	assert_true(f.replaced);
	/* Stays replaced (and is logged once), even if the file goes away again. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(listener_verify(path, &f), -ESTALE);
	close(impostor);
	listener_close(fd, NULL, inherited);
}

static void test_notices_a_removed_socket(void **state) {
	char path[160];
	ListenerFile f = {};
	bool inherited;
	int fd = -1;

	snprintf(path, sizeof path, "%s/gone.sock", tmp_dir);
	assert_int_equal(listener_open(path, 0600, (gid_t) -1, &fd, &inherited), 0);
	assert_int_equal(listener_identify(path, &f), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(listener_verify(path, &f), -ENOENT);
	assert_true(f.replaced);
	listener_close(fd, NULL, inherited);
}

static void test_identify_refuses_what_is_not_a_socket(void **state) {
	char path[160];
	ListenerFile f = {};
	FILE *file;

	snprintf(path, sizeof path, "%s/plain", tmp_dir);
	file = fopen(path, "we");
	assert_non_null(file);
	fclose(file);
	assert_int_equal(listener_identify(path, &f), -ENOTSOCK);
	assert_false(f.known);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_a_group_writable_socket_directory),
		cmocka_unit_test(test_notices_a_replaced_socket_once),
		cmocka_unit_test(test_notices_a_removed_socket),
		cmocka_unit_test(test_identify_refuses_what_is_not_a_socket),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
