/* commit.h — the group commit (part of the engine, layer 5 of
 * docs/ARCHITECTURE.md): the submits accepted in one loop iteration
 * (manager_submit(), manager.h) are made durable together, in one write of
 * the outbox, once every connection readable now has been served or at most
 * 2 ms later; only then is each one's callback told (and the client
 * answered), then waiters and watchers hear of it. A submit is never
 * acknowledged before it is durable, and one that could not be stored is
 * freed after its callback. Owns the queue of pending submits (at most 1024:
 * a full queue is committed at once) and its two event sources. */
#pragma once

#include "manager.h"

/* The commit's event sources; at startup. */
int commit_start(Manager *m);
/* Commits what is pending, then frees the queue and its sources. */
void commit_free(Manager *m);
