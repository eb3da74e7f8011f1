/* precedence.h — whose queued requests go before everyone else's
 * (queue.precedence_group, hitld(8) "FAIR QUEUE ORDER"): when the key names a
 * group, root, hitld's own uid and the group's members (primary or
 * supplementary, as for socket.admin_group); when it is empty, nobody.
 * The scheduler asks once per queued record and pick, so answers are cached
 * per uid for PRECEDENCE_CACHE_TTL (group lookups may go to NSS); a change of
 * the key empties the cache. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "timeutil.h"

#define PRECEDENCE_CACHE_TTL (60 * USEC_PER_SEC)

typedef struct Manager Manager;

/* Makes m->sched ask precedence_has() about m's configuration. */
void precedence_attach(Manager *m);

/* A SchedPrecedence; userdata is the Manager. */
bool precedence_has(uid_t uid, void *userdata);
