/* mcp_tools.c — the tools of `hitlctl mcp` (see mcp_tools.h): descriptions written for a
 * model choosing among them, JSON Schemas for input and output, the mapping of arguments
 * to hitld's request fields, and of hitld's answers and errors to tool results. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "mcp_tools.h"

#define WAIT_DEFAULT_S 600
#define WAIT_MAX_S 3600
#define LIST_DEFAULT_LIMIT 20

/* The schemas below are JSON with ` in place of " so that they read as JSON in C;
 * schema_parse() turns them back. Descriptions therefore never contain a backtick. */

#define REQUEST_ID_SCHEMA \
	"{`type`:`string`,`pattern`:`^r_[0-9A-Za-z]{26}$`,`description`:`hitld's request id (r_ + 26 characters), as returned by ask_human or submit_request`}"

#define RECORD_SCHEMA \
	"{`type`:`object`,`description`:`the request record (see hitld's PROTOCOL.md section 4)`," \
	"`properties`:{`id`:{`type`:`string`},`state`:{`type`:`string`,`enum`:[`queued`,`submitting`,`pending`,`completed`,`timeout`,`cancelled`,`failed`]}," \
	"`client_ref`:{},`result`:{},`result_source`:{},`position`:{`type`:`integer`}},`required`:[`id`,`state`]}"

/* The request fields ask_human and submit_request share; @LOOP_NOTE@: loop_id's note on --loop. */
#define REQUEST_PROPERTIES \
	"`loop_id`:{`type`:`string`,`pattern`:`^[0-9a-fA-F]{24}$`,`description`:`the HITL.sh loop (group of reviewers) to ask: 24 hex characters@LOOP_NOTE@`}," \
	"`request_text`:{`type`:`string`,`minLength`:1,`maxLength`:2000,`description`:`the question, in markdown; say what you want to do and why, with everything the reviewer needs to decide (they see nothing else but context)`}," \
	"`response_type`:{`type`:`string`,`enum`:[`single_select`,`multi_select`,`rating`,`number`,`text`,`boolean`,`editable_text`],`description`:`how the reviewer answers; default single_select when options are given, else text; editable_text lets the reviewer correct a draft (response_config.draft_text)`}," \
	"`options`:{`type`:`array`,`minItems`:1,`maxItems`:20,`description`:`the choices for single_select/multi_select: values such as approve, reject, or objects {value, label, description}`," \
	"`items`:{`anyOf`:[{`type`:`string`,`minLength`:1,`maxLength`:100},{`type`:`object`,`properties`:{`value`:{`type`:`string`},`label`:{`type`:`string`},`description`:{`type`:`string`},`color`:{`type`:`string`}},`required`:[`value`]}]}}," \
	"`response_config`:{`type`:`object`,`description`:`advanced: HITL.sh's response_config (rating: scale_max, scale_min; number: max_value, min_value, decimal_places; text: max_length, placeholder; editable_text: draft_text, max_length 1-5000; boolean: true_label, false_label; select: options, allow_other)`}," \
	"`default_response`:{`description`:`the answer used when nobody answers in time: an option value for single_select (choose the safe one, e.g. reject), an array of values for multi_select, a number for rating/number, a string for text`}," \
	"`timeout_seconds`:{`type`:`integer`,`minimum`:60,`maximum`:86400,`description`:`how long a human has to answer; makes the request time-sensitive. Left out: deferred, HITL.sh's longest wait`}," \
	"`priority`:{`type`:`string`,`enum`:[`low`,`medium`,`high`,`critical`],`description`:`default medium`}," \
	"`processing_type`:{`type`:`string`,`enum`:[`time-sensitive`,`deferred`]}," \
	"`context`:{`type`:`object`,`description`:`a JSON object shown to the reviewer next to the question (at most 50 KB), e.g. a diff summary or the affected resources`}," \
	"`type`:{`type`:`string`,`enum`:[`markdown`,`image`,`file`,`video`,`audio`],`description`:`what the reviewer is shown besides the text; each needs its URL field`}," \
	"`image_url`:{`type`:`string`,`description`:`an http(s) image to review (with type image)`}," \
	"`file_url`:{`type`:`string`,`description`:`an http(s) document to review (with type file, and file_type, file_name)`}," \
	"`file_type`:{`type`:`string`,`minLength`:1,`maxLength`:100,`description`:`e.g. pdf (with type file)`}," \
	"`file_name`:{`type`:`string`,`minLength`:1,`maxLength`:255,`description`:`shown to the reviewer (with type file)`}," \
	"`video_url`:{`type`:`string`,`description`:`an http(s) video (with type video)`}," \
	"`audio_url`:{`type`:`string`,`description`:`an http(s) recording (with type audio)`}," \
	"`callback_url`:{`type`:`string`,`description`:`HITL.sh POSTs the outcome there`}," \
	"`client_ref`:{`type`:`string`,`minLength`:1,`maxLength`:128,`description`:`your own unique key for this question: asking again with the same client_ref returns the first request instead of a second one (use it when you might retry)`}"

#define REQUEST_INPUT(extra_required) \
	"{`type`:`object`,`properties`:{" REQUEST_PROPERTIES "},`required`:[`request_text`,`default_response`" extra_required "],`additionalProperties`:false}"

struct McpTool {
	const char *name;
	const char *title;
	McpToolKind kind;
	const char *method; /* MCP_TOOL_CALL */
	const char *description;
	const char *input;  /* schema text (` for "); may hold @LOOP_NOTE@ and @LOOP_REQUIRED@ */
	const char *output; /* schema text */
	bool read_only, destructive, idempotent;
};

/* No admin method has a tool (queue.pause/resume, daemon.reload, key.test, key.rotate):
 * an agent asks humans, it does not run the service or change the key every program
 * on the machine uses. */
static const McpTool tools[] = {
	{ "ask_human", "Ask a human and wait for the answer", MCP_TOOL_ASK, NULL,
	  "Ask a human reviewer a question and wait for their answer. Use it for decisions you must not "
	  "take alone: deploys, deletions, payments, messages sent in someone's name, anything irreversible. "
	  "The request is durable: hitld stores it before anything else happens and it survives crashes and "
	  "restarts of hitld and of this server. hitld sends it to HITL.sh when the hourly API budget allows "
	  "(about 100 calls per hour, shared by every program on this machine; creating a request costs one "
	  "call) and a person in the loop answers in the HITL.sh app. This call blocks until a human answers "
	  "or timeout_seconds pass, which can take minutes or hours; progress notifications report the state "
	  "(queued with its position in the send queue and the budget left, or pending at HITL.sh). "
	  "The result's answer is what to act on. When result_source is \"default\", nobody answered in time "
	  "and answer is your default_response: treat that as no human decision, not as approval. "
	  "Cancelling this call cancels the request. If the call is cut off any other way, the request still "
	  "exists: find it with get_request (client_ref) or list_requests and call wait_request instead of "
	  "asking again.",
	  REQUEST_INPUT("@LOOP_REQUIRED@"),
	  "{`type`:`object`,`properties`:{`request_id`:{`type`:`string`},`state`:{`type`:`string`,`enum`:[`completed`,`timeout`]},"
	  "`answer`:{`description`:`the answer to act on (an option value, array of values, number or text)`},"
	  "`result_source`:{`type`:`string`,`enum`:[`reviewer`,`default`]},`request`:" RECORD_SCHEMA "},"
	  "`required`:[`request_id`,`state`,`answer`,`result_source`,`request`]}",
	  false, false, false },
	{ "submit_request", "Queue a question for a human (no wait)", MCP_TOOL_CALL, "request.submit",
	  "Queue a question for a human reviewer and return at once with its request id, without waiting for "
	  "the answer. Same request as ask_human (durable, sent to HITL.sh when the hourly budget allows, "
	  "one API call), for when you have other work to do meanwhile: later call wait_request or "
	  "get_request with the id. Give a client_ref so that a retry never creates a second request. "
	  "position is the request's place in hitld's send queue (1 is next).",
	  REQUEST_INPUT("@LOOP_REQUIRED@"),
	  "{`type`:`object`,`properties`:{`id`:{`type`:`string`},`state`:{`type`:`string`},`created_at`:{`type`:`string`},"
	  "`position`:{`type`:`integer`},`duplicate`:{`type`:`boolean`}},`required`:[`id`,`state`]}",
	  false, false, false },
	{ "get_request", "Read a request", MCP_TOOL_CALL, "request.get",
	  "Read the current record of one of your requests by id or by your client_ref: state (queued, "
	  "submitting, pending, completed, timeout, cancelled, failed), result (the answer to act on once "
	  "completed, or the default_response on timeout) and result_source. Free: answered from hitld's "
	  "own state, no API budget.",
	  "{`type`:`object`,`properties`:{`id`:" REQUEST_ID_SCHEMA ",`client_ref`:{`type`:`string`,`minLength`:1,`maxLength`:128}},"
	  "`additionalProperties`:false}",
	  RECORD_SCHEMA, true, false, true },
	{ "wait_request", "Wait for a request's answer", MCP_TOOL_WAIT, NULL,
	  "Wait until one of your requests is final (completed, timeout, cancelled or failed) or "
	  "timeout_seconds pass, with progress notifications meanwhile. Returns done and the record; when "
	  "done is false, call it again to keep waiting. Free: waiting costs no API budget and cancelling "
	  "this call does not cancel the request.",
	  "{`type`:`object`,`properties`:{`id`:" REQUEST_ID_SCHEMA ",`timeout_seconds`:{`type`:`integer`,`minimum`:0,`maximum`:3600,"
	  "`description`:`how long to wait at most (default 600)`}},`required`:[`id`],`additionalProperties`:false}",
	  "{`type`:`object`,`properties`:{`done`:{`type`:`boolean`},`request`:" RECORD_SCHEMA "},`required`:[`done`,`request`]}",
	  true, false, true },
	{ "list_requests", "List your requests", MCP_TOOL_CALL, "request.list",
	  "List your requests, newest first, optionally only some states or one loop. Free (hitld's own "
	  "state). Pass next_cursor back as cursor for the next page.",
	  "{`type`:`object`,`properties`:{`state`:{`type`:`array`,`items`:{`type`:`string`,`enum`:[`queued`,`submitting`,`pending`,`completed`,`timeout`,`cancelled`,`failed`]}},"
	  "`loop_id`:{`type`:`string`,`pattern`:`^[0-9a-fA-F]{24}$`},`limit`:{`type`:`integer`,`minimum`:1,`maximum`:1000,`description`:`default 20`},"
	  "`cursor`:{`type`:`string`}},`additionalProperties`:false}",
	  "{`type`:`object`,`properties`:{`requests`:{`type`:`array`,`items`:" RECORD_SCHEMA "},`next_cursor`:{}},`required`:[`requests`]}",
	  true, false, true },
	{ "cancel_request", "Cancel a request", MCP_TOOL_CALL, "request.cancel",
	  "Cancel one of your requests when its question no longer matters. A queued request is cancelled at "
	  "once and costs nothing; one already at HITL.sh gets cancel_requested true and is cancelled there "
	  "when budget allows (one API call), unless a reviewer answered first. A final request cannot be "
	  "cancelled (invalid_state).",
	  "{`type`:`object`,`properties`:{`id`:" REQUEST_ID_SCHEMA "},`required`:[`id`],`additionalProperties`:false}",
	  RECORD_SCHEMA, false, true, true },
	{ "give_feedback", "Rate a reviewer's answer", MCP_TOOL_CALL, "request.feedback",
	  "Give feedback on the answer of a completed request (once per request): ratings 1-5, a comment, "
	  "tags. hitld sends it to HITL.sh when budget allows (one API call); feedback_state tells how far it got.",
	  "{`type`:`object`,`properties`:{`id`:" REQUEST_ID_SCHEMA ",`feedback`:{`type`:`object`,`minProperties`:1,`properties`:{"
	  "`rating`:{`type`:`integer`,`minimum`:1,`maximum`:5},`accuracy`:{`type`:`integer`,`minimum`:1,`maximum`:5},"
	  "`timeliness`:{`type`:`integer`,`minimum`:1,`maximum`:5},`helpfulness`:{`type`:`integer`,`minimum`:1,`maximum`:5},"
	  "`comment`:{`type`:`string`,`maxLength`:1000},`would_recommend`:{`type`:`boolean`},`follow_up_needed`:{`type`:`boolean`},"
	  "`tags`:{`type`:`array`,`maxItems`:20,`items`:{`type`:`string`}},`category`:{`type`:`string`,`enum`:[`positive`,`constructive`,`issue`]}}}},"
	  "`required`:[`id`,`feedback`],`additionalProperties`:false}",
	  RECORD_SCHEMA, false, false, false },
	{ "hitl_status", "hitld's budget and queue", MCP_TOOL_CALL, "status",
	  "hitld's state: the HITL.sh API budget left this hour and when it resets, your requests by state, "
	  "whether HITL.sh is reachable and the API key valid, whether the queue is paused. Free. Check it "
	  "before asking many questions: each new request costs one call of the shared hourly budget.",
	  "{`type`:`object`,`properties`:{},`additionalProperties`:false}",
	  "{`type`:`object`,`properties`:{`budget`:{`type`:`object`},`queue`:{`type`:`object`},`api`:{`type`:`object`},"
	  "`paused`:{`type`:`boolean`}},`required`:[`budget`,`queue`]}",
	  true, false, true },
	{ "trigger_workflow", "Trigger a HITL.sh workflow", MCP_TOOL_CALL, "workflow.trigger",
	  "Trigger a HITL.sh workflow (id wf_...) with a data object. Durable and sent once: give a "
	  "client_ref so that a retry is the same trigger. Costs one API call of the shared hourly budget. "
	  "With wait true the call returns once HITL.sh accepted it (with the execution id), else as soon "
	  "as hitld stored it. HITL.sh offers no status read for executions.",
	  "{`type`:`object`,`properties`:{`workflow_id`:{`type`:`string`,`minLength`:1,`maxLength`:128,`description`:`the workflow id, wf_...`},"
	  "`data`:{`type`:`object`,`description`:`the workflow's input`},`client_ref`:{`type`:`string`,`minLength`:1,`maxLength`:128},"
	  "`wait`:{`type`:`boolean`}},`required`:[`workflow_id`],`additionalProperties`:false}",
	  "{`type`:`object`}", false, false, false },
};

/* ------------------------------------------------------------------ protocol revisions */

/* The revisions this server speaks, newest first. */
static const char *const protocol_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" };

const char *mcp_protocol_negotiate(const char *requested) {
	for (size_t i = 0; requested && i < ELEMENTSOF(protocol_versions); i++)
		if (streq(requested, protocol_versions[i]))
			return protocol_versions[i];
	return protocol_versions[0];
}

/* Revisions are dates: they compare as strings. */
bool mcp_protocol_has_structured(const char *v) {
	return v && strcmp(v, "2025-06-18") >= 0;
}

bool mcp_protocol_has_messages(const char *v) {
	return v && strcmp(v, "2025-03-26") >= 0;
}

/* ------------------------------------------------------------------ lookup, list */

const McpTool *mcp_tool_find(const char *name) {
	if (!name)
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(tools); i++)
		if (streq(tools[i].name, name))
			return &tools[i];
	return NULL;
}

McpToolKind mcp_tool_kind(const McpTool *t) {
	return t->kind;
}

const char *mcp_tool_name(const McpTool *t) {
	return t->name;
}

/* Replaces every marker in *s by value. */
static int subst(char **s, const char *marker, const char *value) {
	char *at;

	while ((at = strstr(*s, marker))) {
		char *n;

		if (asprintf(&n, "%.*s%s%s", (int) (at - *s), *s, value, at + strlen(marker)) < 0)
			return -ENOMEM;
		free(*s);
		*s = n;
	}
	return 0;
}

static json_object *schema_parse(const char *text, const McpToolOptions *o) {
	_cleanup_(freep) char *s = strdup(text);
	bool loop_default = o && o->default_loop_id;
	json_object *j;

	/* With --loop, loop_id is optional and says where its default comes from. */
	if (!s || subst(&s, "@LOOP_NOTE@", loop_default ? " (default: this server's --loop)" : "") < 0 ||
	    subst(&s, "@LOOP_REQUIRED@", loop_default ? "" : ",`loop_id`") < 0)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '`')
			*p = '"';
	j = json_tokener_parse(s);
	if (!j)
		fprintf(stderr, "hitlctl mcp: BUG: a tool schema is not JSON: %s\n", s);
	return j;
}

static int add(json_object *o, const char *key, json_object *v) {
	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int mcp_tools_list(const McpToolOptions *o, const char *version, json_object **ret) {
	_cleanup_(json_object_putp) json_object *list = json_object_new_array(), *result = json_object_new_object();

	if (!list || !result)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
		const McpTool *t = &tools[i];
		_cleanup_(json_object_putp) json_object *tool = json_object_new_object();

		if (!tool || add(tool, "name", json_object_new_string(t->name)) < 0 ||
		    add(tool, "description", json_object_new_string(t->description)) < 0 ||
		    add(tool, "inputSchema", schema_parse(t->input, o)) < 0)
			return -ENOMEM;
		if (mcp_protocol_has_structured(version) &&
		    (add(tool, "title", json_object_new_string(t->title)) < 0 ||
		     add(tool, "outputSchema", schema_parse(t->output, o)) < 0))
			return -ENOMEM;
		if (mcp_protocol_has_messages(version)) {
			json_object *a = json_object_new_object();

			if (add(tool, "annotations", a) < 0 || add(a, "title", json_object_new_string(t->title)) < 0 ||
			    add(a, "readOnlyHint", json_object_new_boolean(t->read_only)) < 0 ||
			    add(a, "destructiveHint", json_object_new_boolean(t->destructive)) < 0 ||
			    add(a, "idempotentHint", json_object_new_boolean(t->idempotent)) < 0 ||
			    /* Every tool reaches people at HITL.sh, an open world. */
			    add(a, "openWorldHint", json_object_new_boolean(!t->read_only)) < 0)
				return -ENOMEM;
		}
		if (json_object_array_add(list, tool) < 0)
			return -ENOMEM;
		TAKE_PTR(tool);
	}
	if (json_object_object_add(result, "tools", TAKE_PTR(list)) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(result);
	return 0;
}

/* ------------------------------------------------------------------ arguments */

_printf_(2, 3) static int problem(char **ret, const char *fmt, ...) {
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(ret, fmt, ap);
	va_end(ap);
	return r < 0 ? -ENOMEM : -EINVAL;
}

/* The names a tool accepts, from its input schema's properties. */
static int check_names(const McpTool *t, const McpToolOptions *o, json_object *args, char **ret_problem) {
	_cleanup_(json_object_putp) json_object *schema = schema_parse(t->input, o);
	json_object *props, *required;

	if (!schema)
		return -ENOMEM;
	props = json_object_object_get(schema, "properties");
	json_object_object_foreach(args, key, val) {
		char names[512] = "";

		(void) val;
		if (json_object_object_get_ex(props, key, NULL))
			continue;
		json_object_object_foreach(props, name, prop) {
			(void) prop;
			if (strlen(names) + strlen(name) + 3 < sizeof names)
				strcat(strcat(names, names[0] ? ", " : ""), name);
		}
		return problem(ret_problem, "%s has no argument '%s'; it takes: %s.", t->name, key,
		               names[0] ? names : "no arguments");
	}
	required = json_object_object_get(schema, "required");
	for (size_t i = 0; required && i < json_object_array_length(required); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(required, i));

		if (!json_object_object_get_ex(args, name, NULL))
			return problem(ret_problem, "%s needs the argument '%s'.", t->name, name);
	}
	return 0;
}

static int copy_member(json_object *to, json_object *from, const char *key) {
	json_object *v;

	if (!json_object_object_get_ex(from, key, &v))
		return 0;
	return add(to, key, json_object_get(v));
}

static int need_string(const McpTool *t, json_object *args, const char *key, bool required, const char **ret,
                       char **ret_problem) {
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(args, key, &v)) {
		if (required)
			return problem(ret_problem, "%s needs the argument '%s'.", t->name, key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return problem(ret_problem, "%s: '%s' must be a string.", t->name, key);
	*ret = json_object_get_string(v);
	return 0;
}

static int random_ref(char **ret) {
	unsigned char b[16];
	char hex[sizeof b * 2 + 1];
	FILE *f = fopen("/dev/urandom", "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(b, 1, sizeof b, f);
	fclose(f);
	if (n != sizeof b)
		return -EIO;
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	return asprintf(ret, MCP_CLIENT_REF_PREFIX "%s", hex) < 0 ? -ENOMEM : 0;
}

/* ask_human / submit_request: the agent's arguments as request.submit's params. */
static int prepare_submit(const McpTool *t, const McpToolOptions *o, json_object *args, json_object **ret,
                          char **ret_problem) {
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();
	json_object *options = NULL, *config = NULL, *v;
	bool time_limit;

	if (!p)
		return -ENOMEM;
	json_object_object_foreach(args, key, val) {
		(void) val;
		if (streq(key, "options") || streq(key, "response_config"))
			continue;
		if (copy_member(p, args, key) < 0)
			return -ENOMEM;
	}
	if (!json_object_object_get_ex(p, "loop_id", NULL) && o->default_loop_id &&
	    add(p, "loop_id", json_object_new_string(o->default_loop_id)) < 0)
		return -ENOMEM;

	json_object_object_get_ex(args, "options", &options);
	if (json_object_object_get_ex(args, "response_config", &v)) {
		if (!json_object_is_type(v, json_type_object))
			return problem(ret_problem, "%s: 'response_config' must be an object.", t->name);
		config = json_object_get(v);
	} else
		config = json_object_new_object();
	if (add(p, "response_config", config) < 0)
		return -ENOMEM;
	if (options) {
		if (json_object_object_get_ex(config, "options", NULL))
			return problem(ret_problem, "%s: give the choices once, in 'options' or in 'response_config.options'.",
			               t->name);
		if (add(config, "options", json_object_get(options)) < 0)
			return -ENOMEM;
	}
	if (!json_object_object_get_ex(p, "response_type", NULL) &&
	    add(p, "response_type",
	        json_object_new_string(json_object_object_get_ex(config, "options", NULL) ? "single_select" : "text")) < 0)
		return -ENOMEM;
	/* "Answer within N seconds" is what an agent means by a timeout. */
	time_limit = json_object_object_get_ex(p, "timeout_seconds", NULL);
	if (time_limit && !json_object_object_get_ex(p, "processing_type", NULL) &&
	    add(p, "processing_type", json_object_new_string("time-sensitive")) < 0)
		return -ENOMEM;
	if (t->kind == MCP_TOOL_ASK && !json_object_object_get_ex(p, "client_ref", NULL)) {
		_cleanup_(freep) char *ref = NULL;
		int r = random_ref(&ref);

		if (r < 0)
			return r;
		if (add(p, "client_ref", json_object_new_string(ref)) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(p);
	return 0;
}

int mcp_tool_prepare(const McpTool *t, const McpToolOptions *o, json_object *args, McpPrepared *ret,
                     char **ret_problem) {
	_cleanup_(json_object_putp) json_object *empty = NULL;
	McpPrepared p = { .method = t->method };
	const char *s;
	int r;

	if (!args)
		args = empty = json_object_new_object();
	if (!args)
		return -ENOMEM;
	if (!json_object_is_type(args, json_type_object))
		return problem(ret_problem, "%s: arguments must be an object.", t->name);
	r = check_names(t, o, args, ret_problem);
	if (r < 0)
		return r;

	if (streq(t->name, "ask_human") || streq(t->name, "submit_request")) {
		r = prepare_submit(t, o, args, &p.params, ret_problem);
		if (r < 0)
			return r;
	} else if (streq(t->name, "wait_request")) {
		json_object *v;
		int64_t s_wait = WAIT_DEFAULT_S;

		r = need_string(t, args, "id", true, &s, ret_problem);
		if (r < 0)
			return r;
		if (json_object_object_get_ex(args, "timeout_seconds", &v)) {
			if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
			    json_object_get_int64(v) > WAIT_MAX_S)
				return problem(ret_problem, "wait_request: 'timeout_seconds' must be an integer from 0 to %d.",
				               WAIT_MAX_S);
			s_wait = json_object_get_int64(v);
		}
		p.request_id = strdup(s);
		if (!p.request_id)
			return -ENOMEM;
		p.wait_ms = s_wait * 1000;
	} else if (streq(t->name, "get_request")) {
		const char *ref;

		if ((r = need_string(t, args, "id", false, &s, ret_problem)) < 0 ||
		    (r = need_string(t, args, "client_ref", false, &ref, ret_problem)) < 0)
			return r;
		if (!s == !ref)
			return problem(ret_problem, "get_request needs exactly one of 'id' and 'client_ref'.");
		p.params = json_object_get(args);
	} else if (streq(t->name, "list_requests")) {
		p.params = json_object_get(args);
		if (!json_object_object_get_ex(args, "limit", NULL)) {
			p.params = (json_object_put(p.params), json_object_new_object());
			if (!p.params)
				return -ENOMEM;
			json_object_object_foreach(args, key, val) {
				(void) val;
				if (copy_member(p.params, args, key) < 0) {
					json_object_put(p.params);
					return -ENOMEM;
				}
			}
			if (add(p.params, "limit", json_object_new_int(LIST_DEFAULT_LIMIT)) < 0) {
				json_object_put(p.params);
				return -ENOMEM;
			}
		}
	} else
		/* The arguments are hitld's params as they are; hitld checks their values. */
		p.params = json_object_get(args);

	*ret = p;
	return 0;
}

void mcp_prepared_clear(McpPrepared *p) {
	json_object_put(p->params);
	free(p->request_id);
	*p = (McpPrepared) {};
}

/* ------------------------------------------------------------------ records */

const char *mcp_record_string(json_object *record, const char *key) {
	json_object *v;

	if (!json_object_object_get_ex(record, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool mcp_record_final(json_object *record) {
	const char *s = mcp_record_string(record, "state");

	return s && (streq(s, "completed") || streq(s, "timeout") || streq(s, "cancelled") || streq(s, "failed"));
}

/* ------------------------------------------------------------------ results */

static const char *plain(json_object *o) {
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static json_object *text_item(const char *text) {
	json_object *item = json_object_new_object();

	if (!item || add(item, "type", json_object_new_string("text")) < 0 ||
	    add(item, "text", json_object_new_string(text)) < 0)
		return json_object_put(item), NULL;
	return item;
}

/* {content: [text…], structuredContent?, isError?}; texts NULL-terminated. */
_sentinel_ static json_object *result_new(json_object *structured, bool is_error, const char *text, ...) {
	_cleanup_(json_object_putp) json_object *r = json_object_new_object(), *content = json_object_new_array();
	va_list ap;

	if (!r || !content)
		return NULL;
	va_start(ap, text);
	for (const char *s = text; s; s = va_arg(ap, const char *))
		if (json_object_array_add(content, text_item(s)) < 0 ||
		    !json_object_array_get_idx(content, json_object_array_length(content) - 1)) {
			va_end(ap);
			return NULL;
		}
	va_end(ap);
	if (json_object_object_add(r, "content", TAKE_PTR(content)) < 0)
		return NULL;
	if (structured && add(r, "structuredContent", json_object_get(structured)) < 0)
		return NULL;
	if (is_error && add(r, "isError", json_object_new_boolean(true)) < 0)
		return NULL;
	return TAKE_PTR(r);
}

/* Structured results carry their JSON as text too, for clients that read only content. */
static json_object *result_structured(json_object *s, bool structured) {
	return result_new(structured ? s : NULL, false, plain(s), NULL);
}

json_object *mcp_result_call(const McpTool *t, json_object *daemon_result, bool structured) {
	_cleanup_(json_object_putp) json_object *obj = NULL;

	/* structuredContent must be an object; a non-object result (a future method's) is wrapped. */
	if (daemon_result && json_object_is_type(daemon_result, json_type_object))
		obj = json_object_get(daemon_result);
	else {
		obj = json_object_new_object();
		if (!obj || add(obj, "result", json_object_get(daemon_result)) < 0)
			return NULL;
	}
	return result_structured(obj, structured);
}

json_object *mcp_result_ask(json_object *record, bool structured) {
	_cleanup_(json_object_putp) json_object *s = json_object_new_object();
	_cleanup_(freep) char *text = NULL;
	const char *state = mcp_record_string(record, "state"), *source;
	json_object *answer = NULL;

	if (!s || !state)
		return NULL;
	if (!streq(state, "completed") && !streq(state, "timeout")) {
		json_object *err = json_object_object_get(record, "error");

		if (asprintf(&text, "The request %s ended %s without an answer%s%s. Its record: %s",
		             strna(mcp_record_string(record, "id")), state, err ? ": " : "",
		             err ? strna(mcp_record_string(err, "message")) : "", plain(record)) < 0)
			return NULL;
		return result_new(NULL, true, text, NULL);
	}
	json_object_object_get_ex(record, "result", &answer);
	source = mcp_record_string(record, "result_source");
	if (!source)
		source = streq(state, "timeout") ? "default" : "reviewer";
	if (add(s, "request_id", json_object_new_string(strna(mcp_record_string(record, "id")))) < 0 ||
	    json_object_object_add(s, "state", json_object_new_string(state)) < 0 ||
	    json_object_object_add(s, "answer", json_object_get(answer)) < 0 ||
	    add(s, "result_source", json_object_new_string(source)) < 0 ||
	    add(s, "request", json_object_get(record)) < 0)
		return NULL;
	return result_structured(s, structured);
}

json_object *mcp_result_wait(json_object *record, bool done, bool structured) {
	_cleanup_(json_object_putp) json_object *s = json_object_new_object();

	if (!s || add(s, "done", json_object_new_boolean(done)) < 0 || add(s, "request", json_object_get(record)) < 0)
		return NULL;
	return result_structured(s, structured);
}

json_object *mcp_result_hitld_error(const HitlError *e) {
	_cleanup_(json_object_putp) json_object *err = json_object_new_object();
	_cleanup_(freep) char *text = NULL;
	const char *name = hitl_error_code_name(e->code), *field = NULL, *reason = NULL;

	if (!err)
		return NULL;
	if (e->data) {
		field = mcp_record_string(e->data, "field");
		reason = mcp_record_string(e->data, "reason");
	}
	if (asprintf(&text, "hitld refused: %s (%s, %d)%s%s%s%s", e->message ? e->message : "no message",
	             name ? name : "error", e->code, field ? " — field " : "", field ? field : "",
	             reason ? ": " : "", reason ? reason : "") < 0)
		return NULL;
	if (add(err, "code", json_object_new_int(e->code)) < 0 ||
	    add(err, "name", json_object_new_string(name ? name : "error")) < 0 ||
	    add(err, "message", json_object_new_string(e->message ? e->message : "")) < 0 ||
	    (e->data && add(err, "data", json_object_get(e->data)) < 0))
		return NULL;
	return result_new(NULL, true, text, plain(err), NULL);
}

json_object *mcp_result_problem(const char *text) {
	return result_new(NULL, true, text, NULL);
}

json_object *mcp_result_transport(int r, const char *socket_path) {
	_cleanup_(freep) char *text = NULL;
	const char *why;

	switch (r) {
	case -ETIMEDOUT:
		why = "hitld did not answer in time; what was asked may still happen: check with get_request or "
		      "list_requests before retrying, and retry with the same client_ref.";
		break;
	case -ENOENT:
		why = "no hitld socket there. Is hitld running, and is this server's --instance or --socket right?";
		break;
	case -EACCES:
		why = "not allowed to open hitld's socket: the user running this server must be in hitld's group.";
		break;
	case -ECONNREFUSED:
		why = "nothing listens on that socket: hitld is not running.";
		break;
	default:
		why = "requests already accepted are safe; try again later, with the same client_ref.";
	}
	if (asprintf(&text, "Could not talk to hitld at %s (%s): %s", socket_path, strerror(-r), why) < 0)
		return NULL;
	return result_new(NULL, true, text, NULL);
}
