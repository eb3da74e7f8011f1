/* mcp_tools.h — the tools `hitlctl mcp` offers an AI agent: their descriptions and JSON
 * Schemas, how a tool's arguments become a hitld call, and how hitld's answers and errors
 * become MCP tool results (content, structuredContent, isError). No I/O: the server core
 * (mcp.c) makes the calls and owns the connections.
 *
 * Promises: every schema is a JSON Schema object valid under draft 2020-12 and draft-07
 * (no $schema, no union types); arguments outside a tool's schema are refused with a
 * sentence naming the argument, so the model can correct itself; a daemon error keeps
 * its code, name, message and data in the result. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "hitlclient.h"

/* How the server core runs a tool. */
typedef enum McpToolKind {
	MCP_TOOL_CALL, /* one quick hitld call (answered from hitld's state, or bounded by the call timeout) */
	MCP_TOOL_ASK,  /* request.submit, then wait for a final state with progress (ask_human) */
	MCP_TOOL_WAIT, /* wait for a final state with progress, up to a time (wait_request) */
} McpToolKind;

typedef struct McpTool McpTool;

typedef struct McpToolOptions {
	const char *default_loop_id; /* --loop: ask_human/submit_request use it when loop_id is left out */
} McpToolOptions;

/* What a tool call becomes. Release with mcp_prepared_clear(). */
typedef struct McpPrepared {
	const char *method;  /* MCP_TOOL_CALL: the hitld method */
	json_object *params; /* MCP_TOOL_CALL: its params; MCP_TOOL_ASK: request.submit's params */
	char *request_id;    /* MCP_TOOL_WAIT: the request to wait on */
	int64_t wait_ms;     /* MCP_TOOL_WAIT: how long */
} McpPrepared;

/* Prefix of the client_ref ask_human makes up when the agent gives none (so that a
 * submit retried after a lost connection is one request, not two). */
#define MCP_CLIENT_REF_PREFIX "mcp-"

const McpTool *mcp_tool_find(const char *name);
McpToolKind mcp_tool_kind(const McpTool *t);
const char *mcp_tool_name(const McpTool *t);

/* {"tools": [...]} for tools/list, shaped for the negotiated protocol revision:
 * annotations from 2025-03-26, title, outputSchema from 2025-06-18. */
int mcp_tools_list(const McpToolOptions *o, const char *protocol_version, json_object **ret);

/* Checks args (an object, or NULL for {}) against the tool and builds what to call.
 * Returns 0, -EINVAL with *ret_problem (malloc'ed, for the model) when the arguments
 * are wrong, or -ENOMEM. */
int mcp_tool_prepare(const McpTool *t, const McpToolOptions *o, json_object *args, McpPrepared *ret,
                     char **ret_problem);
void mcp_prepared_clear(McpPrepared *p);

/* The revision to speak when the client asks for requested: the same if this server
 * speaks it, else the newest it speaks (the client then decides whether to go on). */
const char *mcp_protocol_negotiate(const char *requested);
/* Does this protocol revision know structuredContent/outputSchema (2025-06-18 on)? */
bool mcp_protocol_has_structured(const char *protocol_version);
/* Does it know progress messages and tool annotations (2025-03-26 on)? */
bool mcp_protocol_has_messages(const char *protocol_version);

/* Tool results (CallToolResult objects, new references; NULL only on -ENOMEM). */
json_object *mcp_result_call(const McpTool *t, json_object *daemon_result, bool structured);
json_object *mcp_result_ask(json_object *record, bool structured);
json_object *mcp_result_wait(json_object *record, bool done, bool structured);
json_object *mcp_result_hitld_error(const HitlError *e);
json_object *mcp_result_problem(const char *text);
/* A transport failure (negative errno r) talking to hitld at socket_path. */
json_object *mcp_result_transport(int r, const char *socket_path);

/* The request record's state is final (completed, timeout, cancelled, failed). */
bool mcp_record_final(json_object *record);
const char *mcp_record_string(json_object *record, const char *key);
