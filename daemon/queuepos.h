/* queuepos.h — where a queued record stands in the create order (part of
 * the engine, layer 5 of docs/ARCHITECTURE.md), as sched.h's order would
 * pick it: among every uid's queued records (an administrator's view) or
 * among its owner's only (a user's: others' requests must not show, not
 * even as a number). Answered from the outbox's per-uid, per-priority
 * counts where they suffice; the positions of every queued record are
 * recomputed in one pass at most once a second (Record.position_all,
 * .position_own) rather than walking the outbox per request.get. Reads the
 * engine's state and changes none but those cached positions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "manager.h"

/* target's position (1 is next): among all users' queued records or its
 * owner's; newest: target is younger than every queued record (a new
 * submit), so the counts suffice. 0 if it cannot be told (out of memory). */
size_t queuepos_of(Manager *m, const Record *target, bool all_users, bool newest);
/* Makes asked's cached positions current (every queued record's, if the
 * snapshot is older than a second or asked arrived after it). */
void queuepos_refresh(Manager *m, const Record *asked);
