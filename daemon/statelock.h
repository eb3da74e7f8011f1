/* statelock.h — one hitld per state directory. Before the outbox is opened, the state
 * directory (created 0700 if missing) and every directory above it are checked with
 * pathtrust (nobody but root and hitld's user may write them), and an exclusive flock() is
 * taken on STATE_LOCK_FILE inside it, for the life of the process (the descriptor is
 * close-on-exec and the kernel drops the lock when the process ends, even on SIGKILL). The
 * holder writes its pid into the file, so a refused second daemon can name it (a failure
 * to write it, on a full disk, is only a warning: the lock is what matters). */
#pragma once

#define STATE_LOCK_FILE "hitld.lock"

/* Checks and locks state_dir. Returns the lock's descriptor (keep it open; closing it
 * releases the lock) or a negative errno, logged once: -EPERM/-ENOTDIR for a directory
 * that fails the trust rule, -EBUSY when another process holds the lock (the message names
 * its pid when the file holds one), another errno from the file system. */
int statelock_acquire(const char *state_dir);
