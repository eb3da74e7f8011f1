/* usage_store.h — the usage history on disk (STATE_DIR/usage/): every HITL.sh
 * call, decision and default, kept as hourly buckets for USAGE_DAYS_KEPT days.
 * Owns usage/journal (fixed-size entries, each with its CRC-32C, appended and
 * fdatasync'd before the call it records is sent and when it ends),
 * usage/YYYY-MM-DD (one day's buckets, rewritten whole through store.h at a
 * checkpoint) and usage/state (the totals, the current window's foreign-use
 * estimate, the calls in flight). A row's id is a loop id or a trigger's
 * workflow key (usage.h), packed in 12 bytes; files with a workflow key are
 * of format version 2, the others of version 1 as before, and both are read.
 * Promises: a call counts once hitld has durably written that it is about to
 * send it, so a crash (kill -9 included) loses no call the server may have
 * seen; one still in flight then counts as "no reply". The only way to be off
 * is a crash in the microseconds between that write and the send: one call
 * counted that the server never saw. A damaged journal entry (a torn tail)
 * is skipped, never read as another; a day file is replaced whole or not at
 * all, and one that does not check out is set aside (.bad) and logged, never
 * mixed up with others. Size: at most USAGE_DAYS_KEPT + 1 day files of at most
 * 24 × (USAGE_ROWS_PER_HOUR_MAX + fold rows) rows of USAGE_DISK_ROW_SIZE
 * bytes, a state file under 4 KiB, and a journal of at most
 * USAGE_JOURNAL_ENTRIES_MAX entries of 96 bytes, cut back at every checkpoint
 * (every USAGE_CHECKPOINT_INTERVAL when anything changed, or when it is full;
 * while checkpoints fail it may grow to 16 times that, then calls are
 * counted in memory only). The clock is the
 * caller's (tests/unit/test_usage_store.c simulates 30 days). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "usage.h"

#define USAGE_DIR "usage"
#define USAGE_DISK_ROW_SIZE 24U
/* The journal is durable entry by entry; checkpoints only keep it short. */
#define USAGE_CHECKPOINT_INTERVAL (15U * USEC_PER_MINUTE)
#define USAGE_JOURNAL_ENTRIES_MAX 4096U
#define USAGE_OPEN_MAX 64U   /* calls in flight it tracks (api.h allows 16) */

typedef struct UsageStore UsageStore;

/* Opens (creating) state_dirfd/usage, reads the day files and state, replays
 * the journal, counts calls left in flight by a crash as "no reply", and
 * checkpoints. Damage is logged and set aside; only I/O errors on the
 * directory itself fail. */
int usage_store_open(int state_dirfd, usec_t now, UsageStore **ret);
/* Checkpoints (calls still in flight stay open for the next start). */
UsageStore *usage_store_free(UsageStore *s, usec_t now);
static inline void usage_store_freep(UsageStore **s) {
	if (*s)
		usage_store_free(*s, now_realtime());
}

/* ---------------------------------------------------------------- recording */

/* A call is about to be sent. Durable when it returns 0; *ret_seq (never 0)
 * names the call for usage_store_ended(). */
int usage_store_sent(UsageStore *s, const UsageTag *tag, usec_t now, uint64_t *ret_seq);
/* The call seq ended with http_status (0: no reply) and these headers (rate
 * NULL: none). Steps the foreign-use estimate; *ret_foreign_new (optional) is
 * how many calls of others this reply newly shows. */
int usage_store_ended(UsageStore *s, uint64_t seq, long http_status, const RateInfo *rate, usec_t now,
                      uint32_t *ret_foreign_new);
/* A call that never reached the server (refused connection): counted apart. */
int usage_store_unsent(UsageStore *s, const UsageTag *tag, usec_t now);
/* A request ended with a reviewer's answer (decision) or its default. */
int usage_store_finished(UsageStore *s, bool decision, uint32_t uid, const char *loop_id, usec_t now);
/* Writes the day files and state, then cuts the journal back. Done by the
 * functions above every USAGE_CHECKPOINT_INTERVAL or USAGE_JOURNAL_ENTRIES_MAX
 * entries; force for now. */
int usage_store_checkpoint(UsageStore *s, usec_t now, bool force);

/* ---------------------------------------------------------------- reading
 * (for the usage method, status and metrics) */

/* Sums of the hours since `since` up to now (whole hours: the one since
 * falls in and every later one); calls in flight count as no reply. uid
 * USAGE_UID_ANY for everyone. See usage_history_query(). */
int usage_store_query(const UsageStore *s, usec_t since, usec_t now, uint32_t uid, UsageGroup by,
                      UsageSum **ret, size_t *ret_n);
/* Counters since the history began (they only grow; calls in flight not yet in). */
void usage_store_totals(const UsageStore *s, UsageTotals *ret);
/* The current server window's foreign-use estimate. */
void usage_store_window(const UsageStore *s, UsageWindow *ret);
/* hitld's calls sent and not yet ended. */
uint32_t usage_store_in_flight(const UsageStore *s);
