/* rpc_wire.h — JSON-RPC 2.0 on the wire, one message a line (NDJSON,
 * PROTOCOL.md §1): parsing a line strictly (one JSON value, RFC 8259 syntax,
 * no NaN or Infinity, no number json-c would change, bounded depth), and
 * building the lines the server sends: a response, an error object (with the
 * default message for a code), a notification. Knows nothing of connections.
 * No I/O; allocates only what it returns. */
#pragma once

#include <stddef.h>
#include <json-c/json.h>

/* Adds val (taken, may be NULL for JSON null) under key; -ENOMEM. */
int rpc_wire_add(json_object *o, const char *key, json_object *val);
int rpc_wire_add_string(json_object *o, const char *key, const char *s);

/* {"code":code,"message":message or the code's default,"data":data}; data taken. */
json_object *rpc_wire_error_new(int code, const char *message, json_object *data);
/* {"reason":reason}, an error's data. */
json_object *rpc_wire_reason(const char *reason);

/* {"jsonrpc":"2.0","id":id,key:value} as a line with its '\n'; id borrowed, value taken. */
int rpc_wire_response_line(json_object *id, const char *key, json_object *value, char **ret, size_t *ret_len);
/* {"jsonrpc":"2.0","method":method,"params":params or {}} as a line; params taken. */
int rpc_wire_notification_line(const char *method, json_object *params, char **ret, size_t *ret_len);

/* Parses one whole line as one JSON value with *tokp (made on first use, reused
 * after: the caller frees it). *ret may be NULL (JSON null). -EINVAL: not JSON;
 * -ERANGE: a number out of range; -ENOMEM. */
int rpc_wire_parse_line(json_tokener **tokp, const char *line, size_t len, json_object **ret);
