/* params.c — see params.h. */
#include <errno.h>
#include <stdio.h>

#include "params.h"
#include "cleanup.h"

void params_reply_invalid(RpcCall *call, const char *field, const char *reason) {
	json_object *data = json_object_new_object();

	json_object_object_add(data, "field", json_object_new_string(field));
	json_object_object_add(data, "reason", json_object_new_string(reason));
	rpc_call_error(call, RPC_ERROR_INVALID_PARAMS, "Invalid parameters.", data);
}

bool params_check_known(RpcCall *call, const char *const *known) {
	json_object_object_foreach(rpc_call_params(call), key, val) {
		bool ok = false;

		(void) val;
		for (const char *const *k = known; *k; k++)
			if (streq(*k, key)) {
				ok = true;
				break;
			}
		if (!ok) {
			params_reply_invalid(call, key, "unknown parameter");
			return false;
		}
	}
	return true;
}

int params_string(RpcCall *call, const char *name, size_t max_len, const char **ret) {
	json_object *v = json_object_object_get(rpc_call_params(call), name);
	size_t len;

	if (!v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string)) {
		params_reply_invalid(call, name, "must be a string");
		return -EINVAL;
	}
	len = (size_t) json_object_get_string_len(v);
	if (len == 0 || len > max_len) {
		char reason[64];

		snprintf(reason, sizeof reason, "must be 1-%zu characters", max_len);
		params_reply_invalid(call, name, reason);
		return -EINVAL;
	}
	*ret = json_object_get_string(v);
	return 0;
}

int params_int(RpcCall *call, const char *name, int64_t min, int64_t max, int64_t *ret) {
	json_object *v = json_object_object_get(rpc_call_params(call), name);
	int64_t x;

	if (!v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int)) {
		params_reply_invalid(call, name, "must be an integer");
		return -EINVAL;
	}
	x = json_object_get_int64(v);
	if (x < min || x > max) {
		char reason[96];

		snprintf(reason, sizeof reason, "must be between %lld and %lld", (long long) min, (long long) max);
		params_reply_invalid(call, name, reason);
		return -EINVAL;
	}
	*ret = x;
	return 0;
}
