/* rpc_wire.c — JSON-RPC 2.0 lines (see rpc_wire.h). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "rpc.h"
#include "rpc_wire.h"

#define RPC_JSON_DEPTH            64

static const char *error_default_message(int code) {
	switch (code) {
	case RPC_ERROR_PARSE:            return "Parse error";
	case RPC_ERROR_INVALID_REQUEST:  return "Invalid request";
	case RPC_ERROR_METHOD_NOT_FOUND: return "Method not found";
	case RPC_ERROR_INVALID_PARAMS:   return "Invalid params";
	case RPC_ERROR_NOT_FOUND:        return "Not found";
	case RPC_ERROR_PERMISSION:       return "Permission denied";
	case RPC_ERROR_QUOTA:            return "Quota exceeded";
	case RPC_ERROR_BUDGET:           return "Budget exhausted";
	case RPC_ERROR_STORAGE:          return "Storage error";
	case RPC_ERROR_REMOTE:           return "Remote error";
	case RPC_ERROR_INVALID_STATE:    return "Invalid state";
	case RPC_ERROR_SHUTTING_DOWN:    return "Shutting down";
	case RPC_ERROR_CONFLICT:         return "Conflict";
	case RPC_ERROR_UNAVAILABLE:      return "Unavailable";
	default:                         return "Internal error";
	}
}

/* Adds val (taken, may be NULL for JSON null) under key. */
int rpc_wire_add(json_object *o, const char *key, json_object *val) {
	if (json_object_object_add(o, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

int rpc_wire_add_string(json_object *o, const char *key, const char *s) {
	json_object *v = json_object_new_string(s);

	if (!v)
		return -ENOMEM;
	return rpc_wire_add(o, key, v);
}

/* Serializes o as one NDJSON line (with its '\n'). */
static int json_to_line(json_object *o, char **ret, size_t *ret_len) {
	size_t len = 0;
	const char *str = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *line;

	if (!str)
		return -ENOMEM;
	line = malloc(len + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, str, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	*ret = line;
	*ret_len = len + 1;
	return 0;
}

json_object *rpc_wire_error_new(int code, const char *message, json_object *data) {
	_cleanup_(json_object_putp) json_object *d = data;
	_cleanup_(json_object_putp) json_object *e = json_object_new_object();
	json_object *c;

	if (!e)
		return NULL;
	c = json_object_new_int(code);
	if (!c || rpc_wire_add(e, "code", c) < 0)
		return NULL;
	if (rpc_wire_add_string(e, "message", message ? message : error_default_message(code)) < 0)
		return NULL;
	if (d && rpc_wire_add(e, "data", TAKE_PTR(d)) < 0)
		return NULL;
	return TAKE_PTR(e);
}

/* {"jsonrpc":"2.0","id":id,key:value} as a line; id borrowed, value taken. */
int rpc_wire_response_line(json_object *id, const char *key, json_object *value, char **ret,
                           size_t *ret_len) {
	_cleanup_(json_object_putp) json_object *v = value;
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	if (rpc_wire_add_string(o, "jsonrpc", "2.0") < 0 || rpc_wire_add(o, "id", json_object_get(id)) < 0 ||
	    rpc_wire_add(o, key, TAKE_PTR(v)) < 0)
		return -ENOMEM;
	return json_to_line(o, ret, ret_len);
}

int rpc_wire_notification_line(const char *method, json_object *params, char **ret, size_t *ret_len) {
	_cleanup_(json_object_putp) json_object *p = params;
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!method)
		return -EINVAL;
	if (!o)
		return -ENOMEM;
	if (!p) {
		p = json_object_new_object();
		if (!p)
			return -ENOMEM;
	}
	if (rpc_wire_add_string(o, "jsonrpc", "2.0") < 0 || rpc_wire_add_string(o, "method", method) < 0 ||
	    rpc_wire_add(o, "params", TAKE_PTR(p)) < 0)
		return -ENOMEM;
	return json_to_line(o, ret, ret_len);
}

json_object *rpc_wire_reason(const char *reason) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();

	if (!o || rpc_wire_add_string(o, "reason", reason) < 0)
		return NULL;
	return TAKE_PTR(o);
}

/* JSON has no NaN or Infinity (json-c accepts them), and a number that would be passed on
 * changed is not accepted either: a non-finite double (1e400) or an integer json-c saturated
 * past 64 bits (so an exact -2^63 or 2^64-1 is refused too). -EINVAL for the literals, -ERANGE
 * for out of range. Depth is bounded by the tokener (RPC_JSON_DEPTH). */
static int json_check_numbers(json_object *o) {
	int k;

	switch (json_object_get_type(o)) {
	case json_type_double:
		if (!isfinite(json_object_get_double(o))) {
			/* json-c keeps the text of a parsed double: a digit means a literal out of range. */
			const char *t = json_object_to_json_string(o);

			if (t && *t == '-')
				t++;
			return t && *t >= '0' && *t <= '9' ? -ERANGE : -EINVAL;
		}
		return 0;
	case json_type_int:
		if (json_object_get_int64(o) == INT64_MIN || json_object_get_uint64(o) == UINT64_MAX)
			return -ERANGE;
		return 0;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void) key;
			k = json_check_numbers(val);
			if (k < 0)
				return k;
		}
		return 0;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			k = json_check_numbers(json_object_array_get_idx(o, i));
			if (k < 0)
				return k;
		}
		return 0;
	default:
		return 0;
	}
}

/* Parses one whole line as one JSON value. *ret may be NULL (JSON null). -EINVAL: not JSON;
 * -ERANGE: a number out of range (json_check_numbers). */
int rpc_wire_parse_line(json_tokener **tokp, const char *line, size_t len, json_object **ret) {
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error err;
	size_t end;
	int r;

	if (!*tokp) {
		*tokp = json_tokener_new_ex(RPC_JSON_DEPTH);
		if (!*tokp)
			return -ENOMEM;
		json_tokener_set_flags(*tokp, JSON_TOKENER_STRICT);
	}
	tok = *tokp;
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, line, (int) len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (err == json_tokener_continue) {
		/* A bare top-level number needs a terminator to be complete. */
		o = json_tokener_parse_ex(tok, " ", 1);
		err = json_tokener_get_error(tok);
		end = len;
	}
	if (err != json_tokener_success) {
		json_object_put(o);
		return -EINVAL;
	}
	for (; end < len; end++)
		if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r') {
			json_object_put(o);
			return -EINVAL;
		}
	r = json_check_numbers(o);
	if (r < 0) {
		json_object_put(o);
		return r;
	}
	*ret = o;
	return 0;
}

