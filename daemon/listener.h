/* listener.h — the control socket's listening descriptor: inherited from systemd (socket
 * activation) or bound by us at a path. Promises an AF_UNIX SOCK_STREAM listening socket,
 * close-on-exec and non-blocking, never a clobbered file and never a live socket stolen. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* If sd_listen_fds() passes exactly one fd, check it is AF_UNIX SOCK_STREAM and listening;
 * refuse anything else (or more than one fd) with -EINVAL and a log_error; *ret_inherited =
 * true. Otherwise bind path ourselves: refuse (-EPERM) if the parent directory is writable by
 * others without the sticky bit; if path is a socket nobody listens on, unlink it; if something
 * listens there, -EADDRINUSE; if it exists and is not a socket, -EEXIST. Bind under umask 0177,
 * then chmod to mode and chown to gid ((gid_t) -1 = unchanged), listen(SOMAXCONN). Every
 * failure is logged here, once. */
int listener_open(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_inherited);

/* Closes fd; unlinks path only if we bound it ourselves (never an inherited socket). */
void listener_close(int fd, const char *path, bool inherited);
