/* notify.h — who hears of the engine's changes (part of the engine, layer 5
 * of docs/ARCHITECTURE.md): the waiters of request.wait, answered once their
 * request is final, at their timeout, or at shutdown; the watching
 * connections, sent request.changed for every record they may see (a
 * connection that cannot keep up is sent watch.overflow and closed); and
 * systemd, whose STATUS= line is rewritten at most once per loop iteration.
 * Owns the Manager's waiter and watch lists (a watch lives as long as its
 * connection, a waiter until answered or abandoned). Changes no record and
 * never builds one for nobody. The engine's entry points are in manager.h
 * (manager_add_waiter, manager_add_watch, manager_notify) and engine.h
 * (manager_status_changed). */
#pragma once

#include "manager.h"

/* The STATUS= line's deferred rewrite; at startup. */
int notify_start(Manager *m);
/* Writes the STATUS= line now. */
void notify_status_now(Manager *m);
/* Shutting down: every waiter is answered -32008 shutting_down. */
void notify_end_waiters(Manager *m);
