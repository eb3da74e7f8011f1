/* persist.h — the engine's small state files beside the outbox (part of the
 * engine, layer 5 of docs/ARCHITECTURE.md): STATE_DIR/budget.json, the
 * budget ledger in budget_json.h's format, written after every call charged
 * and every reply observed so a restart does not forget what the window has
 * spent (the interactive shares per uid included: a restart within the
 * window gives no user its share again); and
 * STATE_DIR/paused, present while the queue is paused (queue.pause), so a
 * pause outlives a restart. Written through store.h (durable, atomic); a
 * file that cannot be written is logged and the state in memory stays the
 * truth; a malformed or unreadable ledger starts a fresh one. The engine's
 * entry points are in manager.h: manager_charge(),
 * manager_charge_interactive(), manager_set_paused(). */
#pragma once

#include "manager.h"

/* At startup, after budget_init(): the ledger and the pause flag. */
void persist_load(Manager *m);
/* Writes the ledger now. */
void persist_budget(Manager *m);
