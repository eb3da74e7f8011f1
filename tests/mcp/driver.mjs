// driver.mjs — an MCP agent built on the official client SDK (@modelcontextprotocol/sdk,
// pinned in package.json here), driven by tests/integration/test_mcp.py.
//
// It reads commands, one JSON object per line, on stdin and writes events, one JSON object
// per line, on stdout:
//   {"op":"connect","command":PATH,"args":[...],"env":{...}}  spawns the server (stdio transport)
//     -> {"op":"connect","ok":true,"protocolVersion","serverInfo","instructions"}
//   {"op":"listTools","samples":{tool:[{"args":{},"valid":bool},...]}}
//     -> {"op":"listTools","tools":[...],"schemaErrors":[...]}: each input and output schema is
//        compiled with Ajv (draft 2020-12, strict), checked against the meta-schema, and each
//        sample is validated; every disagreement is one schemaErrors entry
//   {"op":"call","tag":T,"name":N,"arguments":{},"progress":bool}
//     -> {"tag":T,"event":"progress","params":{...}} for each progress notification, then
//        {"tag":T,"event":"result","result":{...}} or {"tag":T,"event":"error","message","code"}
//   {"op":"abort","tag":T}    aborts call T (the SDK sends notifications/cancelled)
//   {"op":"close"}            -> {"op":"close","ok":true}, then exits
// HITLD_MCP_SDK names the directory where `npm ci` installed the SDK (node_modules inside).
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const sdkDir = process.env.HITLD_MCP_SDK;
if (!sdkDir) {
	console.error('driver.mjs: HITLD_MCP_SDK is not set');
	process.exit(2);
}
const require = createRequire(path.join(path.resolve(sdkDir), 'package.json'));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { CallToolResultSchema } = require('@modelcontextprotocol/sdk/types.js');
const Ajv2020 = require('ajv/dist/2020').default;

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let client = null;
let negotiated = null;
const calls = new Map();

function spy(transport) {
	// Records the negotiated protocol version from the raw initialize result.
	let handler;
	Object.defineProperty(transport, 'onmessage', {
		configurable: true,
		get: () => handler,
		set: (fn) => {
			handler = fn && ((msg, extra) => {
				if (msg && msg.result && typeof msg.result.protocolVersion === 'string')
					negotiated = msg.result.protocolVersion;
				return fn(msg, extra);
			});
		},
	});
	return transport;
}

async function connect(cmd) {
	const transport = spy(new StdioClientTransport({
		command: cmd.command, args: cmd.args || [], env: { ...process.env, ...(cmd.env || {}) }, stderr: 'inherit',
	}));
	client = new Client({ name: 'hitld-mcp-test', version: '1.0.0' }, { capabilities: {} });
	await client.connect(transport);
	out({ op: 'connect', ok: true, protocolVersion: negotiated, serverInfo: client.getServerVersion(),
	      capabilities: client.getServerCapabilities(), instructions: client.getInstructions() });
}

async function listTools(cmd) {
	const res = await client.listTools();
	const schemaErrors = [];
	const ajv = new Ajv2020({ strict: true, allErrors: true, validateSchema: true });
	for (const tool of res.tools) {
		for (const kind of ['inputSchema', 'outputSchema']) {
			const schema = tool[kind];
			if (schema === undefined)
				continue;
			if (schema.type !== 'object')
				schemaErrors.push(`${tool.name}.${kind}: type is not "object"`);
			if (!ajv.validateSchema(schema)) {
				schemaErrors.push(`${tool.name}.${kind}: ${ajv.errorsText(ajv.errors)}`);
				continue;
			}
			let validate;
			try {
				validate = ajv.compile(schema);
			} catch (e) {
				schemaErrors.push(`${tool.name}.${kind}: does not compile in strict mode: ${e.message}`);
				continue;
			}
			if (kind !== 'inputSchema')
				continue;
			for (const sample of (cmd.samples || {})[tool.name] || []) {
				const ok = validate(sample.args);
				if (ok !== sample.valid)
					schemaErrors.push(`${tool.name}: ${JSON.stringify(sample.args)} should be ${sample.valid ? 'valid' : 'invalid'}` +
					                  (ok ? '' : `: ${ajv.errorsText(validate.errors)}`));
			}
		}
	}
	out({ op: 'listTools', tools: res.tools, schemaErrors });
}

function call(cmd) {
	const controller = new AbortController();
	calls.set(cmd.tag, controller);
	const options = { signal: controller.signal, timeout: 600000, resetTimeoutOnProgress: true };
	if (cmd.progress)
		options.onprogress = (params) => out({ tag: cmd.tag, event: 'progress', params });
	client.callTool({ name: cmd.name, arguments: cmd.arguments || {} }, CallToolResultSchema, options)
		.then((result) => out({ tag: cmd.tag, event: 'result', result }))
		.catch((e) => out({ tag: cmd.tag, event: 'error', message: String(e && e.message || e), code: e && e.code }))
		.finally(() => calls.delete(cmd.tag));
}

async function handle(cmd) {
	switch (cmd.op) {
	case 'connect': return connect(cmd);
	case 'listTools': return listTools(cmd);
	case 'call': return call(cmd);
	case 'abort': {
		const c = calls.get(cmd.tag);
		if (c)
			c.abort('aborted by the test');
		return out({ op: 'abort', tag: cmd.tag, found: !!c });
	}
	case 'close':
		if (client)
			await client.close();
		out({ op: 'close', ok: true });
		process.exit(0);
	default:
		out({ op: cmd.op, error: 'unknown op' });
	}
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
	if (!line.trim())
		return;
	const cmd = JSON.parse(line);
	queue = queue.then(() => handle(cmd)).catch((e) => out({ op: cmd.op, tag: cmd.tag, error: String(e && e.stack || e) }));
});
rl.on('close', () => queue.then(async () => {
	if (client)
		await client.close();
	process.exit(0);
}));
