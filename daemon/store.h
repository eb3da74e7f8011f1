/* store.h — the one place that makes files durable (STYLE.md "Durable writes").
 * Promises: a write either leaves the old content of a name intact or replaces
 * it whole (tmp → fsync → rename → fsync(dir)); nothing is half-written under
 * the final name. Called by outbox, budget and anything else with state files.
 * Tests replace the syscalls through store_set_ops() to inject faults. */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes data to dirfd/name durably: open "name.tmp" O_CREAT|O_EXCL|O_CLOEXEC|O_WRONLY 0600
 * (remove a stale tmp first), write all, fsync, renameat over name, fsync(dirfd). On any failure the
 * tmp is unlinked and the negative errno returned; name is then unchanged — except when the final
 * fsync(dirfd) fails: then the rename has happened and name holds the new content, but it is not
 * known to be durable. The caller treats the write as failed (reports the error, keeps its previous
 * view) and writes again later; a rewrite is always safe. name is a plain file name (no '/'). */
int store_write_file(int dirfd, const char *name, const void *data, size_t len);
/* store_write_file() with another mode than 0600 (set whatever the umask): for
 * files other users read, such as the metrics textfile. */
int store_write_file_mode(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* Group commit: makes n files in dirfd durable with two syncs in all instead of two per file:
 * every "name.tmp" is written, one syncfs() flushes them, each is renamed over its name, one
 * fsync(dirfd) makes the renames durable. results[i] is 0 or the negative errno for file i. A
 * shared sync that fails fails every file of the batch; if the final directory fsync fails the
 * renamed files are unlinked again (best effort) so that none that was reported failed shows up
 * after a restart. Returns 0 if every file succeeded, else the first error. */
int store_write_files(int dirfd, size_t n, const char *const *names, const char *const *data,
                      const size_t *lens, int *results);

/* store_write_file() under a name not yet taken: name, else name.1, name.2, …
 * (an earlier file is never replaced; one that holds exactly data already is
 * taken as written). The name used goes to ret_name. */
int store_write_file_new(int dirfd, const char *name, const void *data, size_t len, char *ret_name,
                         size_t ret_size);

/* Opens dirfd for readdir() through a duplicate of it (closedir() leaves dirfd open). */
int store_opendir(int dirfd, DIR **ret);

/* Reads the regular file dirfd/name (symlinks refused: -ELOOP; directories -EISDIR; other
 * non-regular files -EBADFD) into a NUL-terminated buffer. -EFBIG past max_len. */
int store_read_file(int dirfd, const char *name, size_t max_len, char **ret_data, size_t *ret_len);
/* The same on an open descriptor (its type and size checked with fstat, read from
 * where it stands), for a file opened otherwise (config.c follows symlinks). */
int store_read_fd(int fd, size_t max_len, char **ret_data, size_t *ret_len);

/* unlink + fsync(dirfd). -ENOENT (and no fsync) when name does not exist. */
int store_unlink(int dirfd, const char *name);

/* Moves olddirfd/oldname to newdirfd/newname without ever replacing an existing newname
 * (-EEXIST), then fsyncs both directories (new one first). Same file system only. */
int store_move(int olddirfd, const char *oldname, int newdirfd, const char *newname);

/* mkdir if missing (then fsync the parent), O_DIRECTORY|O_CLOEXEC; refuses a symlink. */
int store_open_dir(int atfd, const char *path, mode_t mode, int *ret_fd);

/* The syscalls above, for other durable formats (the outbox log): through the
 * fault seam, errors as negative errno. store_fsync retries EINTR only (after
 * a real fsync error the kernel may have dropped the dirty pages, so a retry
 * that "succeeds" proves nothing). */
int store_openat(int dirfd, const char *path, int flags, mode_t mode);
int store_write_all(int fd, const void *data, size_t len);
int store_fsync(int fd);
int store_unlink_nosync(int dirfd, const char *path);

/* Fault seam: tests replace the syscalls. NULL restores the real ones; so does a NULL member. */
typedef struct StoreOps {
	int (*openat)(int dirfd, const char *path, int flags, mode_t mode);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fsync)(int fd);
	int (*renameat)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
	int (*unlinkat)(int dirfd, const char *path, int flags);
	int (*syncfs)(int fd);
} StoreOps;

void store_set_ops(const StoreOps *ops);
