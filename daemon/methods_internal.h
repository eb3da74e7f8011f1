/* methods_internal.h — what the files of the methods layer share (layer 7
 * of docs/ARCHITECTURE.md; methods.h says what the layer owns). methods.c:
 * the dispatcher, hello, status, watch and the administrators' methods;
 * methods_submit.c: request.submit and workflow.trigger, which make new
 * records; methods_request.c: request.get, .wait, .list, .cancel and
 * .feedback, on the records there are. Internal to the layer: nothing else
 * includes it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"
#include "methods.h"
#include "remote.h"
#include "rpc.h"
#include "status_reply.h"

#define WAIT_DEFAULT_MS 30000
#define WAIT_MAX_MS 3600000

struct Methods {
	Manager *manager;
	Remote *remote;           /* loop.*, key.test and their cache */
	StatusReply status;       /* status's text, kept while nothing it shows changes */
};

/* methods.c: is the caller an administrator (manager_peer_is_admin)? */
bool methods_caller_is_admin(Manager *m, RpcCall *call);

/* methods_submit.c */
void method_submit(Methods *ms, RpcCall *call);
void method_trigger(Manager *m, RpcCall *call);

/* methods_request.c */
void method_get(Manager *m, RpcCall *call);
void method_wait(Manager *m, RpcCall *call);
void method_list(Manager *m, RpcCall *call);
void method_cancel(Manager *m, RpcCall *call);
void method_feedback(Manager *m, RpcCall *call);
/* request.wait's answer: now if r is final (or timeout_ms is 0), else once
 * it is or the timeout passes; also workflow.trigger's with wait. */
void methods_reply_wait(Manager *m, RpcCall *call, Record *r, int64_t timeout_ms);
