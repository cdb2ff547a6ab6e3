#!/usr/bin/env node
// A real MCP client built on the official TypeScript SDK (@modelcontextprotocol/sdk, pinned in
// package.json), for mcp-scrub's end-to-end tests.
//
// Usage:
//   node sdk_client.mjs [OPTIONS] -- COMMAND [ARGS...]
//
// Starts COMMAND with StdioClientTransport (full environment passed through, child stderr copied
// to this process's stderr), connects, does its work and prints ONE JSON object on one line to
// stdout. Exit status 0 when every call succeeded, 1 otherwise, 2 on a usage error.
//
// Modes:
//   (default)              tools/list, tools/call get-env {}, tools/call echo {message},
//                          resources/list, resources/read of the first resource. Prints
//                          {"tools":[names],"getEnv":R,"echo":R,"resource":R,"errors":[...], ...}
//   --call NAME            tools/list (so the SDK validates structuredContent against the tool's
//                          outputSchema), then tools/call NAME with --args. Prints
//                          {"tools":[names],"result":R|null,"error":E|null,"errors":[...], ...}
//                          A JSON-RPC error answer (e.g. leaky_server's leak_error) lands in
//                          "error" as {code,message,data} and makes the exit status 1.
//   --method METHOD        send any request (resources/read, prompts/get, completion/complete,
//                          ping, ...) with --params; output as for --call (without tools/list).
//
// Options:
//   --args JSON            tool arguments for --call (default {})
//   --params JSON          request params for --method (default {})
//   --message TEXT         echo's message in default mode (default "hello from sdk_client")
//   --get-env-tool NAME    the environment tool in default mode (default "get-env"; "printEnv"
//                          for server-everything before 2026)
//   --progress             ask for progress (the SDK sets _meta.progressToken); progress
//                          notifications are recorded in "notifications"
//   --roots                declare the roots capability and answer roots/list with no roots
//   --timeout MS           per-request timeout (default 30000)
//
// Every output object also has:
//   "server":         {"version": serverInfo, "instructions": ..., "capabilities": ...}
//   "notifications":  server notifications received ({method, params}), in arrival order
//   "serverRequests": server->client requests received (sampling/createMessage,
//                     elicitation/create, roots/list) as {method, params}; sampling is answered
//                     with a canned message, elicitation with {"action":"decline"}
//   "protocolErrors": transport/protocol errors the SDK reported without failing a call
//                     (non-JSON stdout lines, progress for an unknown token, ...)

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ResultSchema,
} from "@modelcontextprotocol/sdk/types.js";

function usage(msg) {
  process.stderr.write(`sdk_client: ${msg}\n` +
    "usage: node sdk_client.mjs [--call NAME [--args JSON] | --method M [--params JSON]] " +
    "[--message TEXT] [--get-env-tool NAME] [--progress] [--roots] [--timeout MS] -- COMMAND [ARGS...]\n");
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    call: null, args: {}, method: null, params: {}, message: "hello from sdk_client",
    getEnvTool: "get-env", progress: false, roots: false, timeout: 30000, command: null, commandArgs: [],
  };
  const sep = argv.indexOf("--");
  if (sep < 0 || sep === argv.length - 1) usage("missing -- COMMAND");
  const mine = argv.slice(0, sep);
  [opts.command, ...opts.commandArgs] = argv.slice(sep + 1);
  const value = (i, name) => {
    if (i + 1 >= mine.length) usage(`${name} needs a value`);
    return mine[i + 1];
  };
  const json = (text, name) => {
    try { return JSON.parse(text); } catch (e) { usage(`${name}: invalid JSON: ${e.message}`); }
  };
  for (let i = 0; i < mine.length; i++) {
    switch (mine[i]) {
      case "--call": opts.call = value(i, "--call"); i++; break;
      case "--args": opts.args = json(value(i, "--args"), "--args"); i++; break;
      case "--method": opts.method = value(i, "--method"); i++; break;
      case "--params": opts.params = json(value(i, "--params"), "--params"); i++; break;
      case "--message": opts.message = value(i, "--message"); i++; break;
      case "--get-env-tool": opts.getEnvTool = value(i, "--get-env-tool"); i++; break;
      case "--timeout": opts.timeout = Number(value(i, "--timeout")); i++; break;
      case "--progress": opts.progress = true; break;
      case "--roots": opts.roots = true; break;
      default: usage(`unknown option ${mine[i]}`);
    }
  }
  if (opts.call && opts.method) usage("--call and --method are exclusive");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

const out = {};
const errors = [];
const notifications = [];
const serverRequests = [];
const protocolErrors = [];

function describeError(e) {
  const d = { message: e instanceof Error ? e.message : String(e) };
  if (e && typeof e === "object" && "code" in e) d.code = e.code;
  if (e && typeof e === "object" && "data" in e && e.data !== undefined) d.data = e.data;
  return d;
}

const capabilities = { sampling: {}, elicitation: {} };
if (opts.roots) capabilities.roots = { listChanged: false };
const client = new Client({ name: "mcp-scrub-sdk-client", version: "1.0.0" }, { capabilities });

client.onerror = (e) => protocolErrors.push(e instanceof Error ? e.message : String(e));
client.fallbackNotificationHandler = async (n) => {
  notifications.push({ method: n.method, params: n.params });
};
client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
  serverRequests.push({ method: req.method, params: req.params });
  return {
    role: "assistant",
    content: { type: "text", text: "canned sampling answer" },
    model: "fake-model",
    stopReason: "endTurn",
  };
});
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  serverRequests.push({ method: req.method, params: req.params });
  return { action: "decline" };
});
if (opts.roots) {
  client.setRequestHandler(ListRootsRequestSchema, async (req) => {
    serverRequests.push({ method: req.method, params: req.params });
    return { roots: [] };
  });
}

const transport = new StdioClientTransport({
  command: opts.command,
  args: opts.commandArgs,
  env: process.env,
  stderr: "pipe",
});
transport.stderr?.pipe(process.stderr);

const requestOptions = { timeout: opts.timeout };
if (opts.progress) {
  requestOptions.onprogress = (p) => notifications.push({ method: "notifications/progress", params: p });
}

// Runs one step; records a failure in `errors` and returns undefined on error.
async function step(name, fn) {
  try {
    return await fn();
  } catch (e) {
    errors.push({ step: name, ...describeError(e) });
    return undefined;
  }
}

let connected = false;
try {
  await client.connect(transport, { timeout: opts.timeout });
  connected = true;
} catch (e) {
  errors.push({ step: "connect", ...describeError(e) });
}

if (connected) {
  out.server = {
    version: client.getServerVersion() ?? null,
    instructions: client.getInstructions() ?? null,
    capabilities: client.getServerCapabilities() ?? null,
  };
  if (opts.call || opts.method) {
    if (opts.call) {
      const list = await step("tools/list", () => client.listTools(undefined, requestOptions));
      out.tools = list ? list.tools.map((t) => t.name) : [];
    }
    out.result = null;
    out.error = null;
    try {
      out.result = opts.call
        ? await client.callTool({ name: opts.call, arguments: opts.args }, undefined, requestOptions)
        : await client.request({ method: opts.method, params: opts.params }, ResultSchema, requestOptions);
    } catch (e) {
      out.error = describeError(e);
      errors.push({ step: opts.call ? `tools/call ${opts.call}` : opts.method, ...out.error });
    }
  } else {
    const list = await step("tools/list", () => client.listTools(undefined, requestOptions));
    out.tools = list ? list.tools.map((t) => t.name) : [];
    out.getEnv = (await step(`tools/call ${opts.getEnvTool}`, () =>
      client.callTool({ name: opts.getEnvTool, arguments: {} }, undefined, requestOptions))) ?? null;
    out.echo = (await step("tools/call echo", () =>
      client.callTool({ name: "echo", arguments: { message: opts.message } }, undefined, requestOptions))) ?? null;
    const resources = await step("resources/list", () => client.listResources(undefined, requestOptions));
    out.resources = resources ? resources.resources.map((r) => r.uri) : [];
    out.resource = null;
    if (resources && resources.resources.length > 0) {
      out.resource = (await step("resources/read", () =>
        client.readResource({ uri: resources.resources[0].uri }, requestOptions))) ?? null;
    } else if (resources) {
      errors.push({ step: "resources/read", message: "server listed no resources" });
    }
  }
  // Tool results flagged isError count as failures in default mode only (the call itself worked).
  if (!opts.call && !opts.method) {
    for (const k of ["getEnv", "echo"]) {
      if (out[k] && out[k].isError) errors.push({ step: k, message: "result has isError: true" });
    }
  }
}

// Let handlers of server->client requests that arrived with the last answer send their replies
// (e.g. leaky_server's sampling/createMessage id 0) before the transport closes.
await new Promise((resolve) => setTimeout(resolve, 50));
try {
  await client.close();
} catch (e) {
  protocolErrors.push(`close: ${e instanceof Error ? e.message : String(e)}`);
}

const server = out.server;
delete out.server;
out.errors = errors;
out.notifications = notifications;
out.serverRequests = serverRequests;
out.protocolErrors = protocolErrors;
if (server !== undefined) out.server = server;  // last: instructions can be long
const code = errors.length === 0 ? 0 : 1;
process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(code));
