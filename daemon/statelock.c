/* statelock.c — see statelock.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "pathtrust.h"
#include "statelock.h"
#include "store.h"

/* The pid written by the holder, or 0 if the file has none (yet). */
static pid_t read_holder(int fd) {
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	char *end;
	long v;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || v <= 0 || v > INT_MAX)
		return 0;
	return (pid_t) v;
}

static int write_pid(int fd) {
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());

	if (ftruncate(fd, 0) < 0)
		return -errno;
	if (pwrite(fd, buf, (size_t) n, 0) != n)
		return errno > 0 ? -errno : -EIO;
	return 0;
}

int statelock_acquire(const char *state_dir) {
	_cleanup_(freep) char *copy = NULL;
	_cleanup_(closep) int parent = -EBADF, dir = -EBADF, fd = -EBADF;
	const char *base;
	size_t len;
	pid_t holder;
	int r;

	if (!state_dir || !*state_dir)
		return -EINVAL;
	/* "dir/" would make O_NOFOLLOW follow a symlink named dir. */
	copy = strdup(state_dir);
	if (!copy)
		return -ENOMEM;
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
	if (!*base || streq(base, ".") || streq(base, "..")) {
		log_error("Refusing the state directory %s: name a directory, not %s.", state_dir, copy);
		return -EINVAL;
	}

	/* Above it first, so that nothing is created where someone else could take it. */
	parent = pathtrust_open_parent(copy, O_RDONLY, PATH_TRUST_ANCESTOR, "directory that holds the state directory");
	if (parent < 0)
		return parent;
	r = store_open_dir(parent, base, 0700, &dir);
	if (r < 0)
		return log_error_errno(r, "Cannot open the state directory %s: %m", state_dir);
	r = pathtrust_check_dir_fd(dir, copy, "state directory", PATH_TRUST_OBJECT);
	if (r < 0)
		return r;

	fd = openat(dir, STATE_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return log_error_errno(errno, "Cannot open the lock file %s/%s: %m", copy, STATE_LOCK_FILE);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return log_error_errno(errno, "Cannot lock %s/%s: %m", copy, STATE_LOCK_FILE);
		/* The holder writes its pid right after it locks: give it a moment if it has not yet. */
		for (unsigned i = 0; (holder = read_holder(fd)) == 0 && i < 10; i++)
			(void) usleep(10 * 1000);
		if (holder > 0)
			log_error("The state directory %s is in use by another hitld (pid %d, which holds %s/%s); "
			          "refusing to start a second one on it.", copy, (int) holder, copy, STATE_LOCK_FILE);
		else
			log_error("The state directory %s is in use by another process (it holds the lock on %s/%s); "
			          "refusing to start a second hitld on it.", copy, copy, STATE_LOCK_FILE);
		return -EBUSY;
	}
	/* The pid only names us to a second daemon: a full disk must not keep us from starting
	 * (and serving what is already stored). */
	r = write_pid(fd);
	if (r < 0)
		log_warning_errno(r, "Cannot write the pid into %s/%s (the lock is held all the same): %m", copy,
		                  STATE_LOCK_FILE);
	return TAKE_FD(fd);
}
