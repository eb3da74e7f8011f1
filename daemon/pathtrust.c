/* pathtrust.c — see pathtrust.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "pathtrust.h"

/* Directories above "/" never exist; a deeper walk means something is wrong. */
#define PATH_TRUST_DEPTH_MAX 256

PathTrustVerdict pathtrust_rule(uid_t uid, gid_t gid, mode_t mode, uid_t self, PathTrustRole role) {
	bool sticky_ok;

	if (!S_ISDIR(mode))
		return PATH_TRUST_NOT_DIRECTORY;
	if (uid != 0 && uid != self)
		return PATH_TRUST_BAD_OWNER;
	/* In a sticky directory only an entry's owner, the directory's owner and root may
	 * rename or remove the entry: with the directory ours or root's, our entries are safe. */
	sticky_ok = role != PATH_TRUST_OBJECT && (mode & S_ISVTX);
	if ((mode & S_IWOTH) && !sticky_ok)
		return PATH_TRUST_OTHER_WRITABLE;
	if ((mode & S_IWGRP) && !sticky_ok)
		return PATH_TRUST_GROUP_WRITABLE;
	return PATH_TRUST_OK;
}

/* The name of the directory open at fd, for messages: the kernel's idea of it, or the name
 * we walked to ("path/../.."). */
static void dir_name(int fd, const char *path, unsigned depth, char *buf, size_t size) {
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, size - 1);
	if (n > 0 && buf[0] == '/') {
		buf[n] = '\0';
		return;
	}
	n = snprintf(buf, size, "%s", path);
	for (unsigned i = 0; i < depth && n >= 0 && (size_t) n < size; i++)
		n += snprintf(buf + n, size - (size_t) n, "/..");
}

static const char *user_name(uid_t uid, char *buf, size_t size) {
	struct passwd *pw = getpwuid(uid);

	snprintf(buf, size, "%s", pw ? pw->pw_name : "no such user");
	return buf;
}

static const char *group_name(gid_t gid, char *buf, size_t size) {
	struct group *gr = getgrgid(gid);

	snprintf(buf, size, "%s", gr ? gr->gr_name : "no such group");
	return buf;
}

static int refuse(PathTrustVerdict v, const struct stat *st, const char *what, const char *path,
                  const char *name, bool is_path) {
	char who[256], self_name[256];
	const char *which = is_path ? "it" : name;
	unsigned mode = (unsigned) (st->st_mode & 07777);

	switch (v) {
	case PATH_TRUST_BAD_OWNER:
		log_error("Refusing the %s %s: %s%s is owned by uid %u (%s), not by root or hitld's user "
		          "(uid %u), so that user could move aside or replace what is in it; "
		          "run: chown %s %s (or choose another directory).",
		          what, path, is_path ? "" : "a directory above it, ", which, (unsigned) st->st_uid,
		          user_name(st->st_uid, who, sizeof who), (unsigned) geteuid(),
		          geteuid() == 0 ? "root" : user_name(geteuid(), self_name, sizeof self_name), name);
		break;
	case PATH_TRUST_GROUP_WRITABLE:
		log_error("Refusing the %s %s: %s%s is writable by group %u (%s) (mode %04o), so its members "
		          "could move aside or replace what is in it; run: chmod g-w %s",
		          what, path, is_path ? "" : "a directory above it, ", which, (unsigned) st->st_gid,
		          group_name(st->st_gid, who, sizeof who), mode, name);
		break;
	case PATH_TRUST_OTHER_WRITABLE:
		log_error("Refusing the %s %s: %s%s is writable by everyone (mode %04o)%s, so anyone could move "
		          "aside or replace what is in it; run: chmod o-w %s",
		          what, path, is_path ? "" : "a directory above it, ", which, mode,
		          (st->st_mode & S_ISVTX) ? " and the sticky bit does not make that safe here" : "", name);
		break;
	case PATH_TRUST_NOT_DIRECTORY:
		log_error("Refusing the %s %s: %s is not a directory.", what, path, name);
		return -ENOTDIR;
	default:
		return -EINVAL;
	}
	return -EPERM;
}

int pathtrust_check_dir_fd(int fd, const char *path, const char *what, PathTrustRole role) {
	_cleanup_(closep) int cur = -EBADF;
	char name[PATH_MAX];
	struct stat st, up;
	uid_t self = geteuid();
	PathTrustVerdict v;

	if (fd < 0 || !path || !what)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return log_error_errno(errno, "Cannot examine the %s %s: %m", what, path);
	v = pathtrust_rule(st.st_uid, st.st_gid, st.st_mode, self, role);
	if (v != PATH_TRUST_OK)
		return refuse(v, &st, what, path, path, true);

	cur = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return log_error_errno(errno, "Cannot examine the %s %s: %m", what, path);
	for (unsigned depth = 1; depth <= PATH_TRUST_DEPTH_MAX; depth++) {
		_cleanup_(closep) int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);

		if (parent < 0 || fstat(parent, &up) < 0) {
			dir_name(cur, path, depth - 1, name, sizeof name);
			return log_error_errno(errno, "Cannot examine %s, above the %s %s: %m", name, what, path);
		}
		if (up.st_dev == st.st_dev && up.st_ino == st.st_ino)
			return 0;   /* ".." of "/" is "/": the walk is done */
		v = pathtrust_rule(up.st_uid, up.st_gid, up.st_mode, self, PATH_TRUST_ANCESTOR);
		if (v != PATH_TRUST_OK) {
			dir_name(parent, path, depth, name, sizeof name);
			return refuse(v, &up, what, path, name, false);
		}
		st = up;
		closep(&cur);
		cur = TAKE_FD(parent);
	}
	log_error("Refusing the %s %s: more than %d directories above it.", what, path, PATH_TRUST_DEPTH_MAX);
	return -ELOOP;
}

int pathtrust_open_parent(const char *path, int flags, PathTrustRole role, const char *what) {
	_cleanup_(freep) char *dir = NULL;
	_cleanup_(closep) int fd = -EBADF;
	const char *slash;
	int r;

	if (!path || !*path)
		return -EINVAL;
	slash = strrchr(path, '/');
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t) (slash - path));
	if (!dir)
		return -ENOMEM;
	fd = open(dir, flags | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;   /* the caller knows whether a missing directory is an error */
		return log_error_errno(errno, "Cannot open the %s %s: %m", what, dir);
	}
	r = pathtrust_check_dir_fd(fd, dir, what, role);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}
