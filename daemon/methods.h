/* methods.h — the socket protocol's methods (PROTOCOL.md §4): the top of the
 * daemon's layers (docs/ARCHITECTURE.md), under main.c only. Calls the
 * engine (manager.h) and remote.h (the methods that call HITL.sh while the
 * client waits); nothing below calls it: methods_new() registers the
 * dispatcher with the manager (manager_set_dispatch), and a submit hears of
 * its commit through manager_submit()'s callback. Owns the Remote (the loop
 * cache). In three files (methods_internal.h): methods.c (dispatcher, hello,
 * status, watch, administration), methods_submit.c (new records) and
 * methods_request.c (get, wait, list, cancel, feedback). */
#pragma once

#include "manager.h"

typedef struct Methods Methods;

/* Makes the methods layer for m and registers its dispatcher; before
 * manager_startup(). Free it after the manager. */
int methods_new(Manager *m, Methods **ret);
Methods *methods_free(Methods *ms);
static inline void methods_freep(Methods **ms) {
	if (*ms)
		methods_free(*ms);
}
