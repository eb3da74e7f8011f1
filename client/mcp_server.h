/* mcp_server.h — what the parts of `hitlctl mcp` share (private to client/mcp*.c): the
 * server's state, waiting calls and batches, the output helpers of mcp.c and the waiting-call
 * machinery of mcp_wait.c. Single-threaded: everything runs in mcp.c's poll(2) loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "hitlclient.h"
#include "mcp_tools.h"

#define CONN_MESSAGE_MAX ((size_t) 8 * 1024 * 1024)
#define CALL_TIMEOUT_MS 30000
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000

typedef enum Step {
	STEP_BACKOFF, /* no connection: (re)connect at retry_at_ms */
	STEP_WAITING, /* watching the request on conn */
} Step;

typedef struct Server Server;

/* A JSON-RPC batch (revisions 2024-11-05 and 2025-03-26): its replies are sent as one
 * array once the last of its calls has answered. */
typedef struct Batch {
	json_object *replies;
	unsigned refs; /* the batch being read, plus each of its calls still waiting */
	bool discard;  /* the server is exiting: its replies will never be complete */
} Batch;

/* One tools/call that waits (ask_human, wait_request). */
typedef struct Call {
	struct Call *next;
	Server *srv;
	const McpTool *tool;
	json_object *rpc_id;
	Batch *batch;                /* the batch the call came in, or NULL */
	json_object *progress_token; /* or NULL: the client wants no progress */
	json_object *submit;         /* ask_human: request.submit's params, kept for retries and cancel-by-ref */
	bool submitted;
	char *request_id;
	HitlClient *conn;
	Step step;
	int64_t started_ms;
	int64_t deadline_ms;         /* wait_request: answer done:false then; -1: none */
	int64_t next_progress_ms;
	int64_t retry_at_ms;
	int64_t failing_since_ms;    /* -1: connected */
	unsigned attempts;
	double last_progress;
	bool cancelled;              /* MCP cancellation: cancel the request at hitld, answer nothing */
} Call;

struct Server {
	const char *path;
	McpToolOptions opts;
	unsigned max_calls;
	int64_t progress_interval_ms;
	int64_t reconnect_timeout_ms;

	char *in;
	size_t in_len, in_size;
	bool in_skipping; /* discarding the rest of an over-long line */
	bool in_eof;

	bool initialized;
	const char *version; /* negotiated */
	HitlClient *ctl;
	Call *calls;
	unsigned n_calls;
	Batch *batch; /* while the elements of a batch are handled */
};

/* mcp.c */
int64_t mcp_now_ms(void);
/* Writes one message as one line on stdout; exits when the host stopped reading. */
void mcp_send_message(json_object *msg);
/* A reply goes out at once (b NULL), or into its batch. */
void mcp_send_result(Batch *b, json_object *id, json_object *result);
void mcp_send_error(Batch *b, json_object *id, int code, const char *message);
Batch *mcp_batch_ref(Batch *b);
/* Sends the batch's replies when the last reference goes. */
void mcp_batch_unref(Batch *b);
/* A connection to hitld with this server's timeout and message bounds. */
int mcp_connect(Server *s, HitlClient **ret);

/* mcp_wait.c */
/* Connects (again): submits if not yet done, watches the request, reads it; on failure
 * schedules a retry, or answers the call. */
void mcp_call_attach(Call *c);
/* The call's connection is readable (or may hold queued notifications). */
void mcp_call_readable(Call *c);
/* Progress, the wait's deadline, a retry: whatever is due at now. */
void mcp_call_timer(Call *c, int64_t now);
int64_t mcp_call_next_timer(const Call *c);
/* notifications/cancelled for the call: ask_human cancels its request, then the call
 * goes without an answer. */
void mcp_call_cancel(Call *c);
void mcp_call_free(Call *c);
