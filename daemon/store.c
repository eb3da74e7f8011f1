/* store.c — see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "store.h"

#define TMP_SUFFIX ".tmp"
#define STORE_NEW_TRIES 1000

static int real_openat(int dirfd, const char *path, int flags, mode_t mode) {
	return openat(dirfd, path, flags, mode);
}

static ssize_t real_write(int fd, const void *buf, size_t len) {
	return write(fd, buf, len);
}

static int real_fsync(int fd) {
	return fsync(fd);
}

static int real_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
	return renameat(olddirfd, oldpath, newdirfd, newpath);
}

static int real_unlinkat(int dirfd, const char *path, int flags) {
	return unlinkat(dirfd, path, flags);
}

static int real_syncfs(int fd) {
	return syncfs(fd);
}

/* An initialiser, since C cannot initialise ops from the const real_ops. */
#define REAL_OPS { \
	.openat = real_openat, \
	.write = real_write, \
	.fsync = real_fsync, \
	.renameat = real_renameat, \
	.unlinkat = real_unlinkat, \
	.syncfs = real_syncfs, \
}

static const StoreOps real_ops = REAL_OPS;
static StoreOps ops = REAL_OPS;

void store_set_ops(const StoreOps *o) {
	ops = real_ops;
	if (!o)
		return;
	if (o->openat)
		ops.openat = o->openat;
	if (o->write)
		ops.write = o->write;
	if (o->fsync)
		ops.fsync = o->fsync;
	if (o->renameat)
		ops.renameat = o->renameat;
	if (o->unlinkat)
		ops.unlinkat = o->unlinkat;
	if (o->syncfs)
		ops.syncfs = o->syncfs;
}

int store_openat(int dirfd, const char *path, int flags, mode_t mode) {
	int fd = ops.openat(dirfd, path, flags, mode);

	return fd < 0 ? negative_errno() : fd;
}

int store_unlink_nosync(int dirfd, const char *path) {
	return ops.unlinkat(dirfd, path, 0) < 0 ? negative_errno() : 0;
}

/* A plain name in a directory, with room for the tmp suffix. */
static bool filename_is_valid(const char *name) {
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	return len > 0 && len + strlen(TMP_SUFFIX) <= NAME_MAX && !strchr(name, '/') &&
	       !streq(name, ".") && !streq(name, "..");
}

int store_fsync(int fd) {
	/* Retry only EINTR: after a real fsync error the kernel may have dropped
	 * the dirty pages, so a retry that "succeeds" proves nothing. */
	for (;;) {
		if (ops.fsync(fd) >= 0)
			return 0;
		if (errno != EINTR)
			return negative_errno();
	}
}

int store_write_all(int fd, const void *data, size_t len) {
	const char *p = data;

	while (len > 0) {
		ssize_t n = ops.write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0 || (size_t) n > len) /* a regular file never does this */
			return -EIO;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

static void unlink_quietly(int dirfd, const char *name) {
	int saved = errno;

	(void) ops.unlinkat(dirfd, name, 0);
	errno = saved;
}

/* Writes dirfd/name.tmp completely (and fsyncs it if sync) with the given
 * mode, whatever the umask; on failure no tmp is left. */
static int write_tmp_mode(int dirfd, const char *name, const void *data, size_t len, bool sync, mode_t mode) {
	_cleanup_(closep) int fd = -EBADF;
	char tmp[NAME_MAX + 1];
	int r;

	if (!filename_is_valid(name) || (!data && len > 0))
		return -EINVAL;
	snprintf(tmp, sizeof tmp, "%s" TMP_SUFFIX, name);

	/* A tmp left by a crash would make O_EXCL fail forever. */
	if (ops.unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return negative_errno();

	fd = ops.openat(dirfd, tmp, O_CREAT | O_EXCL | O_CLOEXEC | O_WRONLY | O_NOFOLLOW, 0600);
	if (fd < 0)
		return negative_errno();

	r = 0;
	if (mode != 0600 && fchmod(fd, mode) < 0)
		r = negative_errno();
	if (r >= 0)
		r = store_write_all(fd, data, len);
	if (r >= 0 && sync)
		r = store_fsync(fd);
	if (r >= 0 && close(TAKE_FD(fd)) < 0 && errno != EINTR)
		r = negative_errno();
	if (r < 0)
		unlink_quietly(dirfd, tmp);
	return r;
}

static int write_tmp(int dirfd, const char *name, const void *data, size_t len, bool sync) {
	return write_tmp_mode(dirfd, name, data, len, sync, 0600);
}

int store_write_file(int dirfd, const char *name, const void *data, size_t len) {
	return store_write_file_mode(dirfd, name, data, len, 0600);
}

int store_write_file_mode(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
	char tmp[NAME_MAX + 1];
	int r;

	r = write_tmp_mode(dirfd, name, data, len, true, mode & 0777);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof tmp, "%s" TMP_SUFFIX, name);

	if (ops.renameat(dirfd, tmp, dirfd, name) < 0) {
		r = negative_errno();
		unlink_quietly(dirfd, tmp);
		return r;
	}

	/* The rename is only durable once the directory is. If this fails the
	 * new content is in place but may not survive a crash: reported as a
	 * failure, the caller will rewrite. */
	return store_fsync(dirfd);
}

int store_write_files(int dirfd, size_t n, const char *const *names, const char *const *data,
                      const size_t *lens, int *results) {
	char tmp[NAME_MAX + 1];
	size_t written = 0;
	int first = 0, r;

	for (size_t i = 0; i < n; i++) {
		results[i] = write_tmp(dirfd, names[i], data[i], lens[i], false);
		if (results[i] >= 0)
			written++;
		else if (first == 0)
			first = results[i];
	}
	if (written == 0)
		return first;

	/* One flush for all the data: the renames below must not reach the
	 * disk before the contents they point to. */
	for (;;) {
		if (ops.syncfs(dirfd) >= 0) {
			r = 0;
			break;
		}
		if (errno != EINTR) {
			r = negative_errno();
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (results[i] < 0)
			continue;
		snprintf(tmp, sizeof tmp, "%s" TMP_SUFFIX, names[i]);
		if (r < 0)
			results[i] = r;
		else if (ops.renameat(dirfd, tmp, dirfd, names[i]) < 0)
			results[i] = negative_errno();
		if (results[i] < 0) {
			unlink_quietly(dirfd, tmp);
			if (first == 0)
				first = results[i];
		}
	}

	r = store_fsync(dirfd);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			if (results[i] >= 0) {
				unlink_quietly(dirfd, names[i]);
				results[i] = r;
			}
		(void) store_fsync(dirfd);
		return r;
	}
	return first;
}

int store_write_file_new(int dirfd, const char *name, const void *data, size_t len, char *ret_name,
                         size_t ret_size) {
	char candidate[NAME_MAX + 1];

	if (!filename_is_valid(name) || !ret_name || ret_size == 0)
		return -EINVAL;
	for (unsigned i = 0; i < STORE_NEW_TRIES; i++) {
		int n = i == 0 ? snprintf(candidate, sizeof candidate, "%s", name)
		               : snprintf(candidate, sizeof candidate, "%s.%u", name, i);

		if (n < 0 || (size_t) n >= sizeof candidate || (size_t) n >= ret_size ||
		    !filename_is_valid(candidate))
			return -ENAMETOOLONG;
		if (faccessat(dirfd, candidate, F_OK, AT_SYMLINK_NOFOLLOW) >= 0) {
			_cleanup_(freep) char *old = NULL;
			size_t old_len;

			/* The same bytes kept before (a start that could copy them but
			 * not yet clean up after itself): that is the copy. */
			if (store_read_file(dirfd, candidate, len, &old, &old_len) >= 0 && old_len == len &&
			    memcmp(old, data, len) == 0) {
				memcpy(ret_name, candidate, strlen(candidate) + 1);
				return 0;
			}
			continue;
		}
		if (errno != ENOENT)
			return negative_errno();
		n = store_write_file(dirfd, candidate, data, len);
		if (n < 0)
			return n;
		memcpy(ret_name, candidate, strlen(candidate) + 1);
		return 0;
	}
	return -EEXIST;
}

int store_opendir(int dirfd, DIR **ret) {
	DIR *d;
	int fd, k;

	/* A DIR of its own: closedir() must not close the caller's descriptor. */
	fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		k = negative_errno();
		close(fd);
		return k;
	}
	*ret = d;
	return 0;
}

int store_read_fd(int fd, size_t max_len, char **ret_data, size_t *ret_len) {
	_cleanup_(freep) char *buf = NULL;
	size_t len = 0, cap;
	struct stat st;

	if (fd < 0 || !ret_data || !ret_len)
		return -EINVAL;
	if (max_len > SSIZE_MAX / 2)
		max_len = SSIZE_MAX / 2;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (st.st_size < 0 || (uint64_t) st.st_size > max_len)
		return -EFBIG;

	/* Room for one byte more than max_len, to notice a file that grew,
	 * and the NUL. */
	cap = (size_t) st.st_size + 2;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;

	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			size_t ncap = cap > (max_len + 2) / 2 ? max_len + 2 : cap * 2;
			char *nbuf;

			if (ncap <= cap)
				return -EFBIG;
			nbuf = realloc(buf, ncap);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		len += (size_t) n;
		if (len > max_len)
			return -EFBIG;
	}
	buf[len] = '\0';

	*ret_data = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int store_read_file(int dirfd, const char *name, size_t max_len, char **ret_data, size_t *ret_len) {
	_cleanup_(closep) int fd = -EBADF;

	if (!name || !ret_data || !ret_len)
		return -EINVAL;

	/* O_NONBLOCK: a FIFO planted here must not hang the open. O_NOATIME:
	 * reading 100,000 records at start must not write 100,000 inodes; it
	 * needs us to own the file, hence the retry without it. */
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	return store_read_fd(fd, max_len, ret_data, ret_len);
}

int store_unlink(int dirfd, const char *name) {
	if (!filename_is_valid(name))
		return -EINVAL;
	if (ops.unlinkat(dirfd, name, 0) < 0)
		return negative_errno();
	return store_fsync(dirfd);
}

int store_move(int olddirfd, const char *oldname, int newdirfd, const char *newname) {
	int r;

	if (!filename_is_valid(oldname) || !filename_is_valid(newname))
		return -EINVAL;

	if (renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE) < 0) {
		if (errno != EINVAL && errno != ENOSYS)
			return negative_errno();
		/* File system without RENAME_NOREPLACE: link() never replaces
		 * either. */
		if (linkat(olddirfd, oldname, newdirfd, newname, 0) < 0)
			return negative_errno();
		if (ops.unlinkat(olddirfd, oldname, 0) < 0)
			return negative_errno();
	}

	/* New name first: if we crash between the two, the file exists under
	 * both names (or only the old one), never under neither. */
	r = store_fsync(newdirfd);
	if (r < 0)
		return r;
	return store_fsync(olddirfd);
}

/* Opens the directory that contains path (relative to atfd). */
static int open_parent(int atfd, const char *path) {
	_cleanup_(freep) char *copy = strdup(path);
	char *slash;
	int fd;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (!slash)
		fd = atfd == AT_FDCWD ? open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		                      : fcntl(atfd, F_DUPFD_CLOEXEC, 3);
	else {
		if (slash == copy)
			slash++; /* "/x": the parent is "/" */
		*slash = '\0';
		fd = openat(atfd, copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	return fd < 0 ? negative_errno() : fd;
}

int store_open_dir(int atfd, const char *path, mode_t mode, int *ret_fd) {
	_cleanup_(freep) char *p = NULL;
	_cleanup_(closep) int fd = -EBADF;
	bool created = false;
	size_t len;

	if (!path || !*path || !ret_fd)
		return -EINVAL;

	/* "dir/" would make O_NOFOLLOW follow a symlink named dir. */
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	len = strlen(p);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';

	if (mkdirat(atfd, p, mode) >= 0)
		created = true;
	else if (errno != EEXIST)
		return negative_errno();

	fd = openat(atfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return negative_errno();

	if (created) {
		_cleanup_(closep) int parent = open_parent(atfd, p);
		int r;

		if (parent < 0)
			return parent;
		r = store_fsync(parent);
		if (r < 0)
			return r;
	}

	*ret_fd = TAKE_FD(fd);
	return 0;
}
