/* sweep.c — see sweep.h. */
#include <stdio.h>

#include "engine.h"
#include "inbox.h"
#include "log.h"
#include "msgid.h"
#include "sweep.h"

static usec_t sweep_interval(Manager *m) {
	return (usec_t) m->config->webhook_sweep_interval_s * USEC_PER_SEC;
}

static PollModeInput mode_input(Manager *m) {
	PollModeInput in = {
		.sweep_interval = sweep_interval(m),
		.poll_miss_at = m->poll_miss_at,
	};

	in.callbacks_enabled = inbox_receiving(m, &in.last_callback_at);
	return in;
}

void sweep_init(Manager *m, usec_t now) {
	m->poll_state = plan_poll_state_init(inbox_receiving(m, NULL), now);
}

static void log_change(Manager *m) {
	const char *mode = poll_mode_to_string(m->poll_state.mode), *reason = poll_reason_to_string(m->poll_state.reason);
	unsigned interval = m->config->webhook_sweep_interval_s;

	switch (m->poll_state.reason) {
	case POLL_REASON_CALLBACKS:
		log_event(LOG_NOTICE, MID_POLL_SWEEP, LOG_FIELDS({ "HITL_POLL_MODE", mode }, { "HITL_POLL_REASON", reason }),
		          "HITL.sh's callbacks arrive: polls drop to one sweep every %u s (webhook.sweep_interval_s).", interval);
		break;
	case POLL_REASON_OVERDUE:
		log_event(LOG_WARNING, MID_POLL_NORMAL, LOG_FIELDS({ "HITL_POLL_MODE", mode }, { "HITL_POLL_REASON", reason }),
		          "A request passed its deadline with no callback from HITL.sh: polling at the normal pace again.");
		break;
	case POLL_REASON_SILENT:
		log_event(LOG_WARNING, MID_POLL_NORMAL, LOG_FIELDS({ "HITL_POLL_MODE", mode }, { "HITL_POLL_REASON", reason }),
		          "A poll found requests finished while no callback had come for %u s: callbacks seem lost (can HITL.sh "
		          "reach webhook.public_url?); polling at the normal pace again.", 2 * interval);
		break;
	case POLL_REASON_NO_RECEIVER:
		log_event(LOG_NOTICE, MID_POLL_NORMAL, LOG_FIELDS({ "HITL_POLL_MODE", mode }, { "HITL_POLL_REASON", reason }),
		          "The webhook receiver is off: polling at the normal pace.");
		break;
	default:
		log_debug("Polling: %s (%s).", mode, reason);
		break;
	}
}

void sweep_update(Manager *m, const PlanSummary *s, usec_t now) {
	PollModeInput in = mode_input(m);

	if (plan_poll_mode(s, &in, now, &m->poll_state)) {
		log_change(m);
		/* Something may be lost: poll now rather than at the sweep's time. */
		if (m->poll_state.mode == POLL_MODE_NORMAL && m->next_poll_at > now)
			m->next_poll_at = now;
		manager_status_changed(m);
	}
	m->budget.config.poll_reserve = plan_poll_reserve(s, &m->poll_state, m->config->budget_poll_reserve,
	                                                  usec_sub(m->budget.window_end, m->budget.window_start),
	                                                  in.sweep_interval);
}

void sweep_note_poll(Manager *m, const Record *r, RequestState old, usec_t now) {
	if (r->callback_token && !request_state_is_terminal(old) && request_state_is_terminal(r->state))
		m->poll_miss_at = now;
}

void sweep_status_facts(Manager *m, StatusFacts *f) {
	StatusNumbers *n = &f->num;
	usec_t last = 0;

	(void) inbox_receiving(m, &last);
	f->str[STATUS_POLL_MODE] = poll_mode_to_string(m->poll_state.mode);
	f->str[STATUS_POLL_REASON] = poll_reason_to_string(m->poll_state.reason);
	n->poll_since = (int64_t) m->poll_state.since;
	n->poll_sweep_interval_s = m->config->webhook_sweep_interval_s;
	n->poll_last_callback_at = (int64_t) last;
	n->poll_reserve = m->budget.config.poll_reserve;
}
