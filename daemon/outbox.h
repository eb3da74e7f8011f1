/* outbox.h — the durable set of request records and its in-memory index.
 * Owns STATE_DIR/outbox/ (the record log, through seglog.h: every insert,
 * save and remove appends an entry; mostly superseded segments are compacted
 * after a commit) and STATE_DIR/quarantine/ (damaged log regions and
 * unreadable records, kept, never deleted). Promises: insert/save/remove
 * return only once the change is durable, and on error change nothing; bad
 * bytes never stop outbox_open(). Lookups by id and by (uid, client_ref) are
 * O(1) expected; iteration is in seq (acceptance) order. Called by methods and
 * the state machine. Single-threaded, like the rest of hitld (outbox_open()
 * parses a big log on a second thread it joins before returning). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"

/* Largest record (meta and params texts together) written or read. Bigger
 * records are refused at insert/save (-EFBIG), so nothing is stored that
 * could not be read back. */
#define OUTBOX_RECORD_MAX (4U * 1024U * 1024U)

typedef struct Outbox Outbox;

/* Creates state_dir, outbox/ and quarantine/ (0700) if missing and loads the
 * newest entry of every record (meta only; params on demand). A damaged log
 * region or an entry that is not a valid record is copied to quarantine/ and
 * logged (MESSAGE_ID MID_RECORD_QUARANTINED, HITL_FILE, HITL_REASON). A
 * requests/ directory of an older hitld (a record_to_json file per record) is
 * moved into the log: its good records in one commit, its stray *.tmp
 * removed, any other entry moved into quarantine/; then it is removed. Fails
 * only for the directories themselves, I/O errors reading them, or lack of
 * memory. The seq counter continues at max(seq)+1. A record whose newest
 * entry lies before a damaged region of the log (not a torn tail, see
 * seglog_damage()) has log_damaged_after set: the damaged bytes may have
 * held a newer version of it (say, "submitting"), so its state may be
 * older than what was written. */
int outbox_open(const char *state_dir, Outbox **ret);
Outbox *outbox_free(Outbox *o);
static inline void outbox_freep(Outbox **o) {
	if (*o)
		outbox_free(*o);
}

/* Assigns r->seq, writes durably, indexes. On error nothing changed (r->seq
 * restored) and the caller still owns r; on success the outbox owns r.
 * -EEXIST on an id clash or when uid already has a record with this
 * client_ref; -ENOSPC also when free space is under the minimum set with
 * outbox_set_min_free(); -EINVAL for a record that would not read back
 * (bad id, missing loop_id/params, …); -EFBIG past OUTBOX_RECORD_MAX.
 * id, seq, owner_uid and client_ref are fixed once inserted. */
int outbox_insert(Outbox *o, Record *r);
/* Group commit of n new records (one log write and one fsync for all):
 * results[i] is 0 (the outbox owns records[i]) or a negative errno (the
 * caller still owns it; a failed commit fails every record of the batch and
 * gives their seqs back). Returns 0 if all succeeded, else the first error. */
int outbox_insert_many(Outbox *o, Record *const *records, size_t n, int *results);

/* Durable new version of a record already in the outbox, after the caller
 * changed it. On error the log keeps the previous version as the current one
 * and the counts keep the last saved state; the caller retries or restores
 * r. -ENOENT if r is not in o. */
int outbox_save(Outbox *o, Record *r);

/* Ends the record durably (a tombstone in the log), drops it from the index,
 * frees r. On error nothing changed. */
int outbox_remove(Outbox *o, Record *r);

/* A record's params (the request as submitted) stay in memory only for the
 * most recently used records: call this before using r->params. It reads
 * them back from the record's current log entry when needed. */
int outbox_need_params(Outbox *o, Record *r);
void outbox_set_params_cache(Outbox *o, size_t max_loaded);

Record *outbox_get(const Outbox *o, const char *id);
Record *outbox_get_client_ref(const Outbox *o, uid_t uid, const char *client_ref);
size_t outbox_size(const Outbox *o);

/* O(1): per-state counts as of the last successful insert/save. */
size_t outbox_count_state(const Outbox *o, RequestState s);
/* Non-terminal records of uid, O(1) expected. */
size_t outbox_count_live_uid(const Outbox *o, uid_t uid);
/* Queued records (as last saved) at priority p: all, and of uid. O(1) expected. */
size_t outbox_count_queued(const Outbox *o, Priority p);
size_t outbox_count_queued_uid(const Outbox *o, uid_t uid, Priority p);
/* Fills up to max (uid, count) pairs of the uids with queued records at p; returns how many. */
size_t outbox_queued_uids(const Outbox *o, Priority p, uid_t *uids, size_t *counts, size_t max);
/* The caller has durably dealt with every record outbox_open() marked
 * log_damaged_after (until then, damaged segments are not compacted away,
 * so a crash in between finds the same damage again). Clears the marks. */
void outbox_release_damaged(Outbox *o);
/* Entries quarantined by outbox_open(). */
unsigned outbox_quarantined(const Outbox *o);
/* outbox_insert() refuses with -ENOSPC while the file system holding the
 * records has fewer than bytes available (0: no check). */
void outbox_set_min_free(Outbox *o, uint64_t bytes);

/* Iteration in seq order. Removing the current record is safe if the next
 * one was fetched first. NULL at either end or if r is not in o. */
Record *outbox_first(const Outbox *o);
Record *outbox_next(const Outbox *o, const Record *r);
Record *outbox_last(const Outbox *o);
Record *outbox_prev(const Outbox *o, const Record *r);
/* First record with seq <= max_seq walking backwards (cursor support for
 * newest-first listing). O(log n). */
Record *outbox_seek_le(const Outbox *o, uint64_t max_seq);

/* The state directory, for other small durable files (budget ledger). */
int outbox_state_dirfd(const Outbox *o);
