/* mcp.h — `hitlctl mcp`: a Model Context Protocol server on stdin/stdout for AI agents.
 *
 * Newline-delimited JSON-RPC 2.0 on stdio (batches in 2024-11-05 and 2025-03-26), the MCP
 * lifecycle (initialize with version negotiation, tools/list, tools/call, ping,
 * notifications/cancelled, progress) and the
 * tools of mcp_tools.h, on top of libhitlclient. It runs as the calling user, so hitld's
 * per-uid isolation applies to the agent unchanged.
 *
 * Promises: one thread, one poll(2) loop over stdin and one hitld connection per waiting
 * call; a waiting call survives hitld restarts (it reconnects with bounded backoff and
 * waits on the same request id); an MCP cancellation of ask_human cancels the request at
 * hitld; every input is bounded (message size, calls in flight). Logs go to stderr only:
 * stdout carries the protocol and nothing else. */
#pragma once

#define MCP_SYNOPSIS "mcp [--instance NAME | --socket PATH] [--loop ID] [options]"
#define MCP_SUMMARY "serve AI agents: an MCP server on stdin/stdout"
#define MCP_HELP \
	"Runs a Model Context Protocol server on stdin/stdout for an AI agent's host (Claude,\n" \
	"VS Code, any MCP client), as the calling user. Its tools: ask_human (submit and wait\n" \
	"for the answer, with progress), submit_request, get_request, wait_request,\n" \
	"list_requests, cancel_request, give_feedback, hitl_status, trigger_workflow.\n" \
	"\n" \
	"      --loop ID                the loop ask_human and submit_request use when the\n" \
	"                               agent gives none\n" \
	"      --progress-interval S    progress notifications while waiting at least every S\n" \
	"                               seconds (default 10)\n" \
	"      --reconnect-timeout S    how long a waiting call tries to reach hitld again after\n" \
	"                               losing it (default 600)\n" \
	"      --max-calls N            tool calls waiting at once (default 16, at most 30)\n" \
	"\n" \
	"Host configuration (e.g. Claude Desktop's mcpServers):\n" \
	"  {\"hitld\": {\"command\": \"hitlctl\", \"args\": [\"mcp\", \"--instance\", \"prod\"]}}\n"

/* Runs the server until stdin ends. socket_path: what hitlctl's common options chose
 * (the verb's own --socket/--instance override it). Returns an exit code. */
int mcp_main(const char *socket_path, int argc, char **argv);
