/* seglog.h — the outbox's append-only log: numbered segment files
 * (DIR/<16 hex digits>.log) of checksummed entries, each one version of one
 * record or a tombstone that ends a record. Owns those files; the outbox
 * decides what goes in and which entries are still current.
 * Promises: seglog_commit() returns 0 only once every entry appended since the
 * last commit is durable (write, fsync of the segment, and of the directory
 * when the commit created the segment); when it fails, none of those entries
 * is read back later (the segment is cut back, or removed if new) and the
 * next commit starts a new segment. Opening never fails for damaged content:
 * an entry that does not check out, and the bytes up to the next one that
 * does, are copied to the quarantine directory, logged and skipped, and the
 * segment is offered for compaction so that it goes away. Single-threaded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Segments are closed once they reach this size; one batch may overshoot. */
#define SEGLOG_SEGMENT_TARGET (4U * 1024U * 1024U)
#define SEGLOG_ID_MAX 31
#define SEGLOG_HEADER_SIZE 20U

typedef struct SegLog SegLog;

/* Where an entry lives: segment number in the high 32 bits, byte offset in
 * the low 32. Never 0 for a real entry (segments are numbered from 1). */
typedef uint64_t SegLoc;

typedef enum SegKind {
	SEG_RECORD = 1,
	SEG_TOMBSTONE = 2,
} SegKind;

typedef struct SegEntry {
	SegLoc loc;
	uint32_t size; /* whole entry, header included */
	SegKind kind;
	const char *id; /* not NUL-terminated */
	size_t id_len;
	const char *meta;
	size_t meta_len;
	const char *params;
	size_t params_len;
	const char *raw; /* the whole entry as stored */
} SegEntry;

/* Opens (creating, 0700) dir below dirfd and finds its segments. Nothing is
 * read yet. quarantine_fd is where damaged bytes go. */
int seglog_open(int dirfd, const char *dir, int quarantine_fd, SegLog **ret);
SegLog *seglog_free(SegLog *l);
static inline void seglog_freep(SegLog **l) {
	if (*l)
		seglog_free(*l);
}

/* Visits every good entry of every segment, oldest first. The pointers in
 * the SegEntry stay valid until seglog_scan_done(). A negative return of fn
 * stops the scan and is returned. Returns the number of damaged regions
 * quarantined (and logged). Every entry counts as current until the caller
 * says otherwise with seglog_dead(). Call once, before any append. */
typedef int (*seglog_visit_t)(const SegEntry *e, void *userdata);
int seglog_scan(SegLog *l, seglog_visit_t fn, void *userdata);
void seglog_scan_done(SegLog *l);
/* After seglog_scan(): where the last damaged region that is not a torn tail
 * starts, or 0. An entry before it may have been superseded by one that was
 * in the damaged bytes (a torn tail, an append cut short by a crash, was
 * never committed: it supersedes nothing anyone acted on). */
SegLoc seglog_damage(const SegLog *l);

/* Queues an entry for the next commit and says where it will be. */
int seglog_append(SegLog *l, SegKind kind, const char *id, const char *meta, size_t meta_len,
                  const char *params, size_t params_len, SegLoc *ret_loc, uint32_t *ret_size);
/* Queues a verbatim copy of an entry visited by seglog_scan_segment() (compaction). */
int seglog_copy(SegLog *l, const SegEntry *e, SegLoc *ret_loc);
/* Makes the queued entries durable; on error they are gone (see above). */
int seglog_commit(SegLog *l);
/* Drops the queued entries unwritten. */
void seglog_abort(SegLog *l);
bool seglog_pending(const SegLog *l);

/* Reads the entry at loc back, checked. ret_e points into *ret_buf. */
int seglog_read(SegLog *l, SegLoc loc, uint32_t size, SegEntry *ret_e, char **ret_buf);

/* The entry at loc is no longer current: its bytes are garbage. */
void seglog_dead(SegLog *l, SegLoc loc, uint32_t size);

/* Compaction: the closed segment most worth rewriting (mostly garbage, small,
 * or damaged), or 0. Its entries are visited with seglog_scan_segment(); the
 * caller copies the current ones (and, unless seglog_is_oldest(), the
 * tombstones), commits, then seglog_drop() removes the segment. */
uint32_t seglog_victim(const SegLog *l);
bool seglog_is_oldest(const SegLog *l, uint32_t seg);
int seglog_scan_segment(SegLog *l, uint32_t seg, seglog_visit_t fn, void *userdata);
int seglog_drop(SegLog *l, uint32_t seg);

/* Keeps seg for good, never compacted: it holds bytes that could not be
 * copied to the quarantine directory. */
void seglog_pin(SegLog *l, uint32_t seg);

/* The log directory (free-space checks). */
int seglog_dirfd(const SegLog *l);
size_t seglog_segments(const SegLog *l);

static inline uint32_t seglog_loc_segment(SegLoc loc) {
	return (uint32_t) (loc >> 32);
}
