/* listener.c — see listener.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cleanup.h"
#include "listener.h"
#include "log.h"
#include "msgid.h"
#include "pathtrust.h"

static int fd_set_flags(int fd) {
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int listener_inherit(int fd, int *ret_fd) {
	int r;

	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r < 0)
		return log_error_errno(r, "Cannot inspect the socket passed by systemd: %m");
	if (r == 0) {
		log_error("The socket passed by systemd is not a listening AF_UNIX stream socket; "
		          "check ListenStream= in hitld.socket.");
		return -EINVAL;
	}
	r = fd_set_flags(fd);
	if (r < 0)
		return log_error_errno(r, "Cannot set flags on the socket passed by systemd: %m");
	*ret_fd = fd;
	return 0;
}

static int fill_sockaddr(const char *path, struct sockaddr_un *sa) {
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof sa->sun_path)
		return -ENAMETOOLONG;
	*sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/* Whoever may write the socket's directory may unlink our socket and listen in its place:
 * the directory must pass pathtrust (root's or ours, writable by nobody else, or sticky). */
static int check_parent_dir(const char *path) {
	_cleanup_(closep) int fd = pathtrust_open_parent(path, O_PATH, PATH_TRUST_CONTAINER, "socket directory");

	return fd < 0 ? fd : 0;
}

/* An existing socket file: remove it if stale, refuse if something listens on it. */
static int clear_stale_socket(const char *path, const struct sockaddr_un *sa) {
	_cleanup_(closep) int fd = -EBADF;
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_error_errno(errno, "Cannot stat %s: %m", path);
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("Refusing to replace %s: it exists and is not a socket.", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "Cannot create socket: %m");
	if (connect(fd, (const struct sockaddr *) sa, sizeof *sa) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS) {
		/* EAGAIN: the listener's backlog is full, which still means it is alive. */
		log_error("Socket %s is in use: another hitld is running?", path);
		return -EADDRINUSE;
	}
	if (errno != ECONNREFUSED)
		return log_error_errno(errno, "Cannot probe existing socket %s: %m", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(errno, "Cannot remove stale socket %s: %m", path);
	log_info("Removed stale socket %s.", path);
	return 0;
}

static int listener_bind(const char *path, mode_t mode, gid_t gid, int *ret_fd) {
	_cleanup_(closep) int fd = -EBADF;
	struct sockaddr_un sa;
	mode_t old_umask;
	int r;

	if (!path)
		return -EINVAL;
	r = fill_sockaddr(path, &sa);
	if (r < 0)
		return log_error_errno(r, "Socket path %s is empty or too long.", path);
	r = check_parent_dir(path);
	if (r < 0)
		return r;
	r = clear_stale_socket(path, &sa);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "Cannot create socket: %m");
	/* Born 0600, so nobody else can connect before the final mode and group are set. */
	old_umask = umask(0177);
	r = bind(fd, (const struct sockaddr *) &sa, sizeof sa) < 0 ? -errno : 0;
	umask(old_umask);
	if (r < 0)
		return log_error_errno(r, "Cannot bind socket %s: %m", path);
	if (gid != (gid_t) -1 && lchown(path, (uid_t) -1, gid) < 0) {
		r = log_error_errno(errno, "Cannot set group %u on socket %s: %m", (unsigned) gid, path);
		(void) unlink(path);
		return r;
	}
	if (chmod(path, mode & 07777) < 0) {
		r = log_error_errno(errno, "Cannot set mode %04o on socket %s: %m", (unsigned) mode, path);
		(void) unlink(path);
		return r;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = log_error_errno(errno, "Cannot listen on socket %s: %m", path);
		(void) unlink(path);
		return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* The webhook's socket from hitld-webhook.socket (FileDescriptorName=webhook). */
static int listener_inherit_webhook(int fd, int *ret_fd) {
	int r;

	r = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0);
	if (r < 0)
		return log_error_errno(r, "Cannot inspect the webhook socket passed by systemd: %m");
	if (r == 0) {
		log_error("The socket named \"webhook\" passed by systemd is not a listening TCP socket; "
		          "check ListenStream= in hitld-webhook.socket.");
		return -EINVAL;
	}
	r = fd_set_flags(fd);
	if (r < 0)
		return log_error_errno(r, "Cannot set flags on the webhook socket passed by systemd: %m");
	*ret_fd = fd;
	return 0;
}

int listener_open_all(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_inherited,
                      int *ret_webhook_fd) {
	_cleanup_(strv_freep) char **names = NULL;
	int fd = -EBADF, control = -EBADF, webhook = -EBADF, n, n_control = 0, r;

	if (!ret_fd || !ret_inherited)
		return -EINVAL;
	n = sd_listen_fds_with_names(1, &names);
	if (n < 0)
		return log_error_errno(n, "Cannot read the sockets passed by systemd: %m");
	for (int i = 0; i < n; i++) {
		int x = SD_LISTEN_FDS_START + i;

		if (ret_webhook_fd && names && names[i] && streq(names[i], "webhook")) {
			if (webhook >= 0) {
				log_error("systemd passed more than one socket named \"webhook\".");
				return -EINVAL;
			}
			webhook = x;
		} else {
			control = x;
			n_control++;
		}
	}
	if (n_control > 1) {
		log_error("systemd passed %d sockets, expected exactly one%s.", n_control,
		          ret_webhook_fd ? " (besides one named \"webhook\")" : "");
		return -EINVAL;
	}
	if (webhook >= 0) {
		r = listener_inherit_webhook(webhook, &webhook);
		if (r < 0)
			return r;
	}
	if (n_control == 1) {
		r = listener_inherit(control, &fd);
		if (r < 0)
			return r;
		*ret_inherited = true;
	} else {
		r = listener_bind(path, mode, gid, &fd);
		if (r < 0)
			return r;
		*ret_inherited = false;
	}
	*ret_fd = fd;
	if (ret_webhook_fd)
		*ret_webhook_fd = webhook;
	return 0;
}

int listener_open(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_inherited) {
	return listener_open_all(path, mode, gid, ret_fd, ret_inherited, NULL);
}

void listener_close(int fd, const char *path, bool inherited) {
	if (!inherited && path && unlink(path) < 0 && errno != ENOENT)
		log_warning_errno(errno, "Cannot remove socket %s: %m", path);
	if (fd >= 0)
		(void) close(fd);
}

int listener_identify(const char *path, ListenerFile *ret) {
	struct stat st;

	if (!path || !ret)
		return -EINVAL;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	*ret = (ListenerFile) { .dev = st.st_dev, .ino = st.st_ino, .known = true };
	return 0;
}

int listener_verify(const char *path, ListenerFile *f) {
	struct stat st;
	int r;

	if (!path || !f)
		return -EINVAL;
	if (!f->known)
		return 0;
	if (f->replaced)
		return -ESTALE;
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT)
			return 0;   /* cannot tell (EACCES, EIO): say nothing rather than cry wolf */
		r = -ENOENT;
	} else if (st.st_dev == f->dev && st.st_ino == f->ino)
		return 0;
	else
		r = -ESTALE;
	f->replaced = true;
	log_event(LOG_CRIT, MID_SOCKET_REPLACED, LOG_FIELDS({ "HITL_SOCKET", path }),
	          "The socket %s %s. Keep the socket in a directory only root and hitld's user may "
	          "write (see hitld(8)), then restart hitld.",
	          path, r == -ENOENT ? "was removed: new clients cannot reach hitld"
	                             : "was replaced by another file: new clients reach whoever made it, not hitld");
	return r;
}
