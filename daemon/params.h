/* params.h — reading a socket call's params, and answering -32602 invalid
 * params (PROTOCOL.md §5: data {"field", "reason"}) for the ones that do not
 * fit. The one checker the socket methods (methods*.c) and the loop methods
 * (remote.c) share: a function that refuses a param has already answered the
 * call, so the caller only returns. Knows no method; calls rpc.h only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

/* Answers the call with -32602 naming field and why. */
void params_reply_invalid(RpcCall *call, const char *field, const char *reason);

/* Refuses a parameter not in known (NULL-terminated): a typo must not pass
 * silently. true: every parameter is known. */
bool params_check_known(RpcCall *call, const char *const *known);

/* A string param of 1..max_len bytes: 0, -ENOENT absent (not answered),
 * -EINVAL refused (answered). */
int params_string(RpcCall *call, const char *name, size_t max_len, const char **ret);

/* An integer param within [min, max]: 0, -ENOENT absent (not answered),
 * -EINVAL refused (answered). */
int params_int(RpcCall *call, const char *name, int64_t min, int64_t max, int64_t *ret);
