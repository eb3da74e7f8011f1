/* hitlerrors.h — the JSON-RPC and hitld error codes of hitld's control socket
 * (PROTOCOL.md §5), defined once: installed with libhitlclient (hitlclient.h
 * includes it) and included by the daemon (daemon/rpc.h), so client and daemon
 * cannot disagree on a number. Macros only; nothing to link. */
#pragma once

#define HITL_ERROR_PARSE            (-32700)
#define HITL_ERROR_INVALID_REQUEST  (-32600)
#define HITL_ERROR_METHOD_NOT_FOUND (-32601)
#define HITL_ERROR_INVALID_PARAMS   (-32602)
#define HITL_ERROR_INTERNAL         (-32603)
#define HITL_ERROR_NOT_FOUND        (-32001)
#define HITL_ERROR_PERMISSION       (-32002)
#define HITL_ERROR_QUOTA            (-32003)
#define HITL_ERROR_BUDGET           (-32004)
#define HITL_ERROR_STORAGE          (-32005)
#define HITL_ERROR_REMOTE           (-32006)
#define HITL_ERROR_INVALID_STATE    (-32007)
#define HITL_ERROR_SHUTTING_DOWN    (-32008)
#define HITL_ERROR_CONFLICT         (-32009)
#define HITL_ERROR_UNAVAILABLE      (-32010)
