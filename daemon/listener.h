/* listener.h — the control socket's listening descriptor: inherited from systemd (socket
 * activation) or bound by us at a path. Promises an AF_UNIX SOCK_STREAM listening socket,
 * close-on-exec and non-blocking, never a clobbered file and never a live socket stolen. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* If sd_listen_fds() passes exactly one fd, check it is AF_UNIX SOCK_STREAM and listening;
 * refuse anything else (or more than one fd) with -EINVAL and a log_error; *ret_inherited =
 * true. Otherwise bind path ourselves: refuse (-EPERM) if the parent directory, or one above
 * it, fails pathtrust (PATH_TRUST_CONTAINER: writable by anyone but root and us, unless
 * sticky and root's or ours); if path is a socket nobody listens on, unlink it; if something
 * listens there, -EADDRINUSE; if it exists and is not a socket, -EEXIST. Bind under umask 0177,
 * then chmod to mode and chown to gid ((gid_t) -1 = unchanged), listen(SOMAXCONN). Every
 * failure is logged here, once. */
int listener_open(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_inherited);
/* The same, and a second socket systemd may pass, named "webhook"
 * (hitld-webhook.socket, FileDescriptorName=webhook: sd_listen_fds_with_names),
 * which must be a listening TCP socket: *ret_webhook_fd is it, non-blocking
 * and close-on-exec, or -EBADF when none was passed. The control socket is
 * then the one other socket, if any. */
int listener_open_all(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_inherited,
                      int *ret_webhook_fd);

/* Closes fd; unlinks path only if we bound it ourselves (never an inherited socket). The
 * caller passes path NULL when listener_verify() found the file is no longer ours. */
void listener_close(int fd, const char *path, bool inherited);

/* The socket file we bound, to notice when someone removes or replaces it (issue: a writer
 * of the directory could listen in our place). Not used for an inherited socket: its
 * directory is systemd's business. */
typedef struct ListenerFile {
	dev_t dev;
	ino_t ino;
	bool known;
	bool replaced;   /* noticed once, reported once, stays set */
} ListenerFile;

/* Records the socket file at path (lstat). -ENOTSOCK if it is not a socket. */
int listener_identify(const char *path, ListenerFile *ret);

/* Is the file at path still the one identified? 0 yes (or unknown: nothing identified, or
 * lstat failed for another reason than ENOENT); -ENOENT removed, -ESTALE replaced. The first
 * time it is not, logs a critical entry with MID_SOCKET_REPLACED and sets f->replaced. */
int listener_verify(const char *path, ListenerFile *f);
