/* inbox.h — HITL.sh's callbacks, applied to the outbox: part of the engine
 * (layer 5, beside manager.c, whose records it changes only through
 * manager_apply_remote(), the path a poll's answer takes).
 * Owns the webhook listener's life (webhook.h; configured by the webhook
 * group, off unless webhook.listen is set), the callback URL each create
 * carries (callback.h: public_url/<id>.<token>, a new 256-bit token per
 * request, stored with the record before the create is sent) and what a
 * callback does. Promises: a POST whose URL names no request hitld gave out
 * (wrong id or token, or a request never sent) gets 404 and changes nothing;
 * a body that is not a final callback for that request gets 400; a valid one
 * finishes the request exactly as a poll would, and is answered 200 only
 * once the change is durable (503 if it could not be stored: HITL.sh tries
 * again); a repeat of the outcome already recorded gets 200 and changes
 * nothing; another outcome for a finished request gets 404 (a used token).
 * A request whose client set its own callback_url keeps it and is polled. */
#pragma once

#include <json-c/json.h>

#include "manager.h"
#include "record.h"

/* Starts the listener when webhook.listen is set (bind failures are logged
 * and returned). *ret is NULL-free either way: status and URLs ask it. */
int inbox_new(Manager *m, Inbox **ret);
Inbox *inbox_free(Inbox *in);

/* The callback_url r's create carries, or *ret_url NULL for none (webhook
 * off, or the client's own callback_url is in r's params). Gives r a token
 * first if it has none (the caller stores r before sending the create). */
int inbox_callback_url(Manager *m, Record *r, char **ret_url);

/* Whether the receiver listens and creates carry its URLs; *ret_last_at
 * (may be NULL) is the time of its last 2xx answer, 0 for none. */
bool inbox_receiving(Manager *m, usec_t *ret_last_at);

/* The facts of status.webhook (PROTOCOL.md; status_reply.h): enabled,
 * listen, public_url, received, rejected, last_at, last_rejected_at. */
void inbox_status_facts(Manager *m, StatusFacts *f);

/* After a reload: public_url applies to the next creates; the listener's
 * keys wait for the next start (config_keys.h; manager.c names them). */
void inbox_reload(Manager *m);
