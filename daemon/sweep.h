/* sweep.h — polls while HITL.sh's callbacks arrive: part of the engine
 * (layer 5, beside manager.c and inbox.c). Owns m->poll_state, the poll
 * mode plan_poll_mode() decides (plan.h): a slow sweep (one list call per
 * webhook.sweep_interval_s) while callbacks arrive, normal polling when the
 * receiver is off, no callback came yet, a request is overdue or callbacks
 * went silent. Promises: each change is logged once (MID_POLL_SWEEP,
 * MID_POLL_NORMAL) and shown in status.polling; while sweeping, the
 * budget's poll reserve shrinks to what the sweeps need (plan_poll_reserve())
 * and goes back to budget.poll_reserve when polling is normal again; a
 * fallback polls at once. */
#pragma once

#include "manager.h"
#include "plan.h"
#include "status_reply.h"

void sweep_init(Manager *m, usec_t now);
/* Before each plan_next(): moves the mode on with the outbox summary. */
void sweep_update(Manager *m, const PlanSummary *s, usec_t now);
/* A poll's reply moved r from old to a final state: had hitld's callback
 * URL been given for it, its callback was lost or late. */
void sweep_note_poll(Manager *m, const Record *r, RequestState old, usec_t now);
/* The facts of status.polling (PROTOCOL.md; status_reply.h): mode, reason,
 * since, sweep_interval_s, last_callback_at, poll_reserve. */
void sweep_status_facts(Manager *m, StatusFacts *f);
