/* remote.h — the socket methods that call HITL.sh while the client waits (loop.*,
 * key.test). They cost budget now, so they are refused with
 * -32004 budget_exhausted rather than queued. Each is charged to the uid that
 * asked (budget.h: a non-admin within budget.interactive_per_uid and all of
 * them within budget.interactive_total per window, never from the poll
 * reserve). Loop reads are served from a small cache younger than
 * api.loop_cache_ttl_s. Writes empty the cache. A loop HITL.sh answered 404
 * for is remembered as missing for as long: loop.get and loop.members of it
 * answer the 404 again without a call, and request.submit refuses it instead
 * of spending a create call on it.
 * Layer (docs/ARCHITECTURE.md): below methods.c, which dispatches to it,
 * above the engine (manager.h): it changes the key's state only through the
 * engine's functions, charges its calls with manager_charge() and the uid's
 * share through budget.h on the engine's ledger. Owns the loop cache and its
 * calls in flight (a Remote, made and freed by the methods layer, after the
 * manager: calls HITL.sh never answered are freed then); nothing below sees it. */
#pragma once

#include <stdbool.h>

#include "manager.h"
#include "rpc.h"
#include "timeutil.h"

typedef struct Remote Remote;

int remote_new(Manager *m, Remote **ret);
Remote *remote_free(Remote *rm);
static inline void remote_freep(Remote **rm) {
	if (*rm)
		remote_free(*rm);
}

/* loop.list, loop.get, loop.members, loop.create, loop.update, loop.delete,
 * loop.remove_member; key.test (admin: the dispatcher checks). */
void remote_method_loop(Remote *rm, RpcCall *call);
void remote_method_key_test(Remote *rm, RpcCall *call);
/* Empties the loop cache (writes do it themselves). */
void remote_cache_flush(Remote *rm);
/* Did HITL.sh answer 404 for this loop within api.loop_cache_ttl_s? *ret_since
 * (may be NULL) gets when. */
bool remote_loop_known_missing(Remote *rm, const char *loop_id, usec_t *ret_since);
