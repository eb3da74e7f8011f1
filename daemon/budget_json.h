/* budget_json.h — the budget ledger as STATE_DIR/budget.json (written by
 * persist.c), so a restart does not forget what the window has spent: the
 * call count, the poll reserve used, and the interactive calls per uid and
 * in all (hitld(8) BUDGET SHARES). Without the shares, each restart within
 * a window would give every local user its whole interactive share again.
 *
 * Version 2 adds the window's spending to version 1's ledger; a version-1
 * file still loads (its spending is taken as none, as before). What was
 * spent is tied to the window it was spent in: the spending names that
 * window, is dropped when it names another one than the ledger's, and is
 * cleared with the ledger when the window has ended by the time of the load.
 * At most BUDGET_SHARE_UIDS_MAX uids, as in memory. Pure (the clock comes
 * from the caller). */
#pragma once

#include <json-c/json.h>

#include "budget.h"

#define BUDGET_FORMAT_VERSION 2

int budget_to_json(const Budget *b, json_object **ret);
/* Keeps b->config (b must have been budget_init()ed). -EBADMSG on a malformed
 * ledger or one from an unknown format version, b untouched; a window that
 * has ended by now is rolled over. */
int budget_from_json(Budget *b, json_object *j, usec_t now);
