// tcp_client: a minimal MCP client over a socket, for `mcp-scrub tcp`. Newline-delimited JSON-RPC
// (the stdio framing, which the 2026-07-28 spec also allows over TCP and Unix sockets), written by
// hand with node:net, so nothing but the bytes on the wire is assumed.
//
//   node tcp_client.mjs ADDR [--message TEXT] [--timeout MS]
//
// ADDR is HOST:PORT, [IPv6]:PORT or unix:/path. Sends initialize, notifications/initialized,
// tools/list, tools/call get-env {}, tools/call echo {message}, then closes and prints ONE JSON
// object on one line:
//   {"server": initialize result, "tools": [names], "getEnv": R, "echo": R,
//    "notifications": [{method, params}], "serverRequests": [{method, params}],
//    "nonJson": [lines that were not JSON], "errors": [{step, message, code?}]}
// Exit status 0 when every call succeeded (a result, not isError), 1 otherwise, 2 on usage errors.
// Server->client requests are answered: roots/list with no roots, ping with {}, anything else
// with a method-not-found error.
import net from "node:net";

function usage(msg) {
  process.stderr.write(`tcp_client: ${msg}\nusage: node tcp_client.mjs ADDR [--message TEXT] [--timeout MS]\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.length < 1) usage("missing ADDR");
const opts = { addr: argv[0], message: "hello from tcp_client", timeout: 30000 };
for (let i = 1; i < argv.length; i++) {
  if (argv[i] === "--message" && i + 1 < argv.length) opts.message = argv[++i];
  else if (argv[i] === "--timeout" && i + 1 < argv.length) opts.timeout = Number(argv[++i]);
  else usage(`unknown option ${argv[i]}`);
}

function connectOptions(addr) {
  if (addr.startsWith("unix:")) return { path: addr.slice(5) };
  const m = addr.match(/^\[([^\]]+)\]:(\d+)$/) || addr.match(/^([^:]+):(\d+)$/);
  if (!m) usage(`bad address ${addr}`);
  return { host: m[1], port: Number(m[2]) };
}

const out = { server: null, tools: [], getEnv: null, echo: null, notifications: [], serverRequests: [], nonJson: [], errors: [] };
const pending = new Map();  // id -> {resolve, reject, timer}
let nextId = 1;
let buffered = "";

const sock = net.connect(connectOptions(opts.addr));
sock.setEncoding("utf8");
sock.setNoDelay(true);

let ended = false;  // after sock.end() nothing more is written (late server requests go unanswered)
function send(msg) {
  if (!ended) sock.write(JSON.stringify(msg) + "\n");
}

function request(method, params) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`${method}: no answer within ${opts.timeout} ms`));
    }, opts.timeout);
    pending.set(id, { resolve, reject, timer });
    send({ jsonrpc: "2.0", id, method, params });
  });
}

function onMessage(msg) {
  if (msg && typeof msg === "object" && "method" in msg) {
    if ("id" in msg) {  // a request from the server: answer it
      out.serverRequests.push({ method: msg.method, params: msg.params });
      if (msg.method === "roots/list") send({ jsonrpc: "2.0", id: msg.id, result: { roots: [] } });
      else if (msg.method === "ping") send({ jsonrpc: "2.0", id: msg.id, result: {} });
      else send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } });
    } else {
      out.notifications.push({ method: msg.method, params: msg.params });
    }
    return;
  }
  const p = msg && pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  clearTimeout(p.timer);
  if (msg.error) {
    const e = new Error(msg.error.message);
    e.code = msg.error.code;
    p.reject(e);
  } else {
    p.resolve(msg.result);
  }
}

sock.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, nl).replace(/\r$/, "");
    buffered = buffered.slice(nl + 1);
    if (line.trim() === "") continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      out.nonJson.push(line);
      continue;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) onMessage(m);
  }
});

let closed = false;
const closedPromise = new Promise((resolve) => sock.on("close", () => {
  closed = true;
  for (const [, p] of pending) {
    clearTimeout(p.timer);
    p.reject(new Error("connection closed"));
  }
  pending.clear();
  resolve();
}));
sock.on("error", (e) => out.errors.push({ step: "socket", message: e.message }));

async function step(name, fn) {
  try {
    return await fn();
  } catch (e) {
    out.errors.push({ step: name, message: e.message, ...(e.code !== undefined ? { code: e.code } : {}) });
    return null;
  }
}

await new Promise((resolve, reject) => {
  sock.once("connect", resolve);
  sock.once("error", reject);
}).catch((e) => {
  process.stdout.write(JSON.stringify({ ...out, errors: [{ step: "connect", message: e.message }] }) + "\n");
  process.exit(1);
});

out.server = await step("initialize", () => request("initialize", {
  protocolVersion: "2025-06-18",
  capabilities: {},
  clientInfo: { name: "mcp-scrub-tcp-client", version: "1.0.0" },
}));
if (out.server) {
  send({ jsonrpc: "2.0", method: "notifications/initialized" });
  const list = await step("tools/list", () => request("tools/list", {}));
  out.tools = list ? list.tools.map((t) => t.name) : [];
  out.getEnv = await step("tools/call get-env", () => request("tools/call", { name: "get-env", arguments: {} }));
  out.echo = await step("tools/call echo", () => request("tools/call", { name: "echo", arguments: { message: opts.message } }));
  for (const k of ["getEnv", "echo"])
    if (out[k] && out[k].isError) out.errors.push({ step: k, message: "result has isError: true" });
}
ended = true;
sock.end();  // half-close: anything still in flight may arrive
await Promise.race([closedPromise, new Promise((r) => setTimeout(r, 2000))]);
if (!closed) sock.destroy();
const code = out.errors.length === 0 ? 0 : 1;
process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(code));
