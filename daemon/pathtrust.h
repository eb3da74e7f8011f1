/* pathtrust.h — may anyone but hitld's user and root change what is at a path? OpenSSH's
 * StrictModes rule (safe_path() in misc.c): the object and every directory above it, up to
 * "/", must be owned by root or by hitld's effective uid and writable by nobody else (no
 * group or other write bit). One exception, for the directories above the object (and a
 * socket's own directory): a sticky directory owned by root or by us, like /tmp, where
 * others may create entries but not rename or remove ours. The state directory, the socket
 * directory and the key file's directory are checked with it at start and on reload.
 *
 * The checks work on descriptors (fstat, then openat(fd, "..", O_PATH) upwards), so what
 * is checked is what was opened. ACLs are not read, as OpenSSH does not; symbolic links on
 * the way are resolved and the directories above the target are checked. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef enum PathTrustVerdict {
	PATH_TRUST_OK,
	PATH_TRUST_BAD_OWNER,        /* owned by neither root nor us */
	PATH_TRUST_GROUP_WRITABLE,   /* g+w */
	PATH_TRUST_OTHER_WRITABLE,   /* o+w, and not an acceptable sticky directory */
	PATH_TRUST_NOT_DIRECTORY,    /* a directory was expected */
	_PATH_TRUST_VERDICT_MAX,
} PathTrustVerdict;

typedef enum PathTrustRole {
	PATH_TRUST_OBJECT,           /* a directory we keep things in (the state directory): no sticky exception */
	PATH_TRUST_CONTAINER,        /* the directory of one file whose identity or owner we check (the
	                              * socket, the key file): sticky allowed, others cannot touch that file */
	PATH_TRUST_ANCESTOR,         /* a directory above: sticky allowed */
} PathTrustRole;

/* The rule, pure: uid, gid and mode as fstat() gave them, self = hitld's effective uid.
 * Group write is refused whatever the group (OpenSSH does the same): which users are in a
 * group is not something hitld can know for sure. */
PathTrustVerdict pathtrust_rule(uid_t uid, gid_t gid, mode_t mode, uid_t self, PathTrustRole role);

/* Checks the directory open at fd (any open mode, O_PATH is fine) and every directory above
 * it. what ("state directory") and path name it in messages. Returns 0 if trusted; -EPERM after logging one error that
 * names the directory, who can write it and the chmod/chown command that fixes it; another
 * negative errno (logged) if a directory could not be examined. */
int pathtrust_check_dir_fd(int fd, const char *path, const char *what, PathTrustRole role);

/* Opens the directory that holds path (following symbolic links) with flags (O_PATH, or
 * O_RDONLY for a descriptor that can be fsync'd) | O_DIRECTORY | O_CLOEXEC, and checks it with role as above (what names it: "socket directory").
 * Returns the descriptor (the caller closes
 * it) or a negative errno, logged, except -ENOENT (no such directory), left to the caller. */
int pathtrust_open_parent(const char *path, int flags, PathTrustRole role, const char *what);
