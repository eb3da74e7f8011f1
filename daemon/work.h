/* work.h — the work timer (part of the engine, layer 5 of
 * docs/ARCHITECTURE.md; docs/ARCHITECTURE.md "The work engine"). Each turn
 * settles what time did to the records (plan_expiry(): local timeouts,
 * lifetime, retention; a trigger found "submitting" with no call in flight),
 * sums the outbox up, asks plan_next() for the one HITL.sh call to make, and
 * starts it; otherwise it sleeps until the planner's wake time. Promises: at
 * most one background call in flight; a create or trigger is durably
 * "submitting" before it is sent (a crash from then on reconciles, never
 * sends again blindly); every call started is charged to the budget; a call
 * that cannot start leaves its record as it was and is tried again soon.
 * What the reply does is outcome.h's. The engine's entry point is
 * manager_kick() (manager.h). */
#pragma once

#include "manager.h"

/* The work timer; at startup. */
int work_setup(Manager *m);
/* Starts the call of kind on m->work_record (none for a probe or a poll
 * list); its reply goes to work_done() (outcome.h). */
int work_start(Manager *m, WorkKind kind, CallKind call_kind);
