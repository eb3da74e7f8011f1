/* persist.c — see persist.h: budget.json and paused. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "budget_json.h"
#include "cleanup.h"
#include "engine.h"
#include "log.h"
#include "persist.h"
#include "store.h"

#define BUDGET_FILE "budget.json"
#define PAUSED_FILE "paused"

void persist_budget(Manager *m) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	const char *s;
	int k;

	if (budget_to_json(&m->budget, &j) < 0)
		return;
	s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	k = store_write_file(outbox_state_dirfd(m->outbox), BUDGET_FILE, s, strlen(s));
	if (k < 0)
		log_warning_errno(k, "Failed to persist the budget ledger: %m");
}

static void load_budget(Manager *m) {
	_cleanup_(freep) char *data = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	size_t len;
	int k;

	k = store_read_file(outbox_state_dirfd(m->outbox), BUDGET_FILE, 64 * 1024, &data, &len);
	if (k < 0) {
		if (k != -ENOENT)
			log_warning_errno(k, "Failed to read the budget ledger, starting a fresh one: %m");
		return;
	}
	j = json_tokener_parse(data);
	if (!j || budget_from_json(&m->budget, j, now_realtime()) < 0)
		log_warning("The budget ledger %s/%s is malformed, starting a fresh one.", m->state_dir, BUDGET_FILE);
}

void manager_set_paused(Manager *m, bool paused) {
	int fd = outbox_state_dirfd(m->outbox);
	int k;

	m->paused = paused;
	if (paused)
		k = store_write_file(fd, PAUSED_FILE, "1\n", 2);
	else {
		k = store_unlink(fd, PAUSED_FILE);
		if (k == -ENOENT)
			k = 0;
	}
	if (k < 0)
		log_warning_errno(k, "Failed to persist the paused state: %m");
	log_notice("Queue %s.", paused ? "paused: no remote calls until resumed" : "resumed");
	manager_status_changed(m);
	manager_kick(m);
}

void manager_charge(Manager *m, CallKind kind) {
	budget_charge(&m->budget, kind, now_realtime());
	persist_budget(m);
	manager_status_changed(m);
}

void manager_charge_interactive(Manager *m, uid_t uid, bool admin) {
	budget_charge_interactive(&m->budget, uid, admin, now_realtime());
	persist_budget(m);
	manager_status_changed(m);
}

void persist_load(Manager *m) {
	load_budget(m);
	m->paused = faccessat(outbox_state_dirfd(m->outbox), PAUSED_FILE, F_OK, 0) >= 0;
}
