// leaky_server: a deliberately leaky MCP server over stdio, for mcp-scrub's tests.
//
// Speaks newline-delimited JSON-RPC 2.0 on stdin/stdout and leaks FAKE secrets through every
// server->client channel that docs/mcp-facts.md lists. Output is byte-exact deterministic; every
// stdout line goes out with its own write(2) call (except where a tool splits a line on purpose).
//
// Secrets (from the environment, so the test controls them; FAKE defaults when unset or empty):
//   LEAK_SECRET  literal value        default "Zq8vR2xkPm4TnW7yL3bH"
//   LEAK_DB_URL  connection string    default "postgresql://app:S3cretPassw0rdX9@db.internal:5432/prod"
//   LEAK_TOKEN   pattern-shaped token default "ghp_" + 36 alnum = "ghp_Fk7Qm2Xr9Lp4Ws8Tn3Vb6Yc1Hd5Jg0Ze2Ua4"
// Test hooks:
//   LEAK_EXIT_AFTER=N  exit with status 5 right after answering the N-th request.
//   tool `crash`       raise(SIGKILL) on itself (no answer).
// Exit status: 0 on stdin EOF, 5 for LEAK_EXIT_AFTER, 3 if writing stdout fails (e.g. EPIPE).
//
// Channel -> what exercises it:
//   initialize.result.instructions ............ `initialize` (LEAK_SECRET)
//   tools/list descriptions ................... `tools/list` (tool leak_is_error's description: LEAK_TOKEN)
//   tools/call content[].text ................. tool leak_text (LEAK_SECRET)
//   structuredContent + text (twice) .......... tool leak_structured (LEAK_DB_URL; tool has an outputSchema)
//   JSON inside a JSON string ................. tool leak_nested_json (LEAK_SECRET)
//   \uXXXX and \/ escapes ..................... tool leak_escaped (LEAK_SECRET, LEAK_DB_URL)
//   JSON-RPC error.message / error.data ....... tool leak_error (LEAK_SECRET, LEAK_DB_URL)
//   isError result ............................ tool leak_is_error (LEAK_TOKEN)
//   embedded resource text / blob, image data . tool leak_resource (LEAK_SECRET; blob/data base64)
//   resource_link, audio data ................. tool leak_links (LEAK_SECRET, LEAK_TOKEN)
//   _meta objects ............................. tool leak_meta (LEAK_TOKEN, LEAK_SECRET)
//   notifications/message, notifications/progress  tool leak_notifications (LEAK_DB_URL, LEAK_SECRET;
//                                               20 ms pause before the result, arguments.delay_ms)
//   server->client request sampling/createMessage  tool leak_sampling (id 0; LEAK_SECRET)
//   server->client request elicitation/create . tool leak_elicitation (id 1; LEAK_SECRET, LEAK_TOKEN)
//   stderr lines, partial stderr line ......... tool leak_stderr (LEAK_DB_URL, LEAK_SECRET)
//   an env list on stderr, value under name ... tool leak_manifest (kManifestValue: no known value)
//   a private key on stderr, text after END .. tool leak_key_stderr (LEAK_SECRET after the END marker)
//   a line split across writes ................ tool leak_split (stdout and stderr, LEAK_SECRET)
//   a big message ............................. tool leak_big (LEAK_SECRET near the end)
//   non-JSON line on stdout ................... tool leak_non_json (LEAK_SECRET)
//   \r\n line ending .......................... tool leak_crlf (LEAK_SECRET)
//   resources/read contents ................... `resources/read` file:///app/.env (LEAK_DB_URL, LEAK_SECRET)
//   prompts/get messages ...................... `prompts/get` debug_config (LEAK_SECRET, LEAK_DB_URL)
//   completion/complete values ................ `completion/complete` (LEAK_SECRET)
//   JSON-RPC batch (array line) ............... send an array of requests: answered with one array line
//   clean pass-through ........................ tool echo ("Echo: " + arguments.message)
//
// Key order: tools/call results and ping use the TS SDK's order {"result":...,"jsonrpc":"2.0","id":N};
// every other response is {"jsonrpc":"2.0","id":N,"result"|"error":...}.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <chrono>
#include <vector>

#include <unistd.h>

namespace {

using ojson = nlohmann::ordered_json;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

const std::string kSecret = env_or("LEAK_SECRET", "Zq8vR2xkPm4TnW7yL3bH");
const std::string kDbUrl =
    env_or("LEAK_DB_URL", "postgresql://app:S3cretPassw0rdX9@db.internal:5432/prod");
const std::string kToken = env_or("LEAK_TOKEN", "ghp_Fk7Qm2Xr9Lp4Ws8Tn3Vb6Yc1Hd5Jg0Ze2Ua4");
// Found by a rule only (no known value holds it), and only with the line before it.
const std::string kManifestValue = "Vb7mQ2xK9tL4pW8n";

// ---------------------------------------------------------------- output

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (fd == 1) std::_Exit(3);
      return;  // stderr gone: nothing useful to do
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One complete line, one write() call.
void emit_line(const std::string& line) { write_all(1, line + "\n"); }

// The JSON-escaped body of a string (what appears between the quotes).
std::string json_body(const std::string& s) {
  std::string d = dump(ojson(s));
  return d.substr(1, d.size() - 2);
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

std::string base64(std::string_view in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += rest == 2 ? tbl[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Every character of s as a JSON \uXXXX escape (UTF-16 surrogate pairs above U+FFFF).
std::string all_unicode_escaped(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  auto u16 = [&](std::string& out, unsigned cu) {
    out += "\\u";
    for (int sh = 12; sh >= 0; sh -= 4) out += hex[(cu >> sh) & 15];
  };
  std::string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    unsigned cp = 0xFFFD;
    size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 6 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
      len = 2;
    } else if ((c >> 4) == 14 && i + 2 < s.size()) {
      cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      len = 3;
    } else if ((c >> 3) == 30 && i + 3 < s.size()) {
      cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) |
           (s[i + 3] & 0x3F);
      len = 4;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u16(out, 0xD800 + (cp >> 10));
      u16(out, 0xDC00 + (cp & 0x3FF));
    } else {
      u16(out, cp);
    }
    i += len;
  }
  return out;
}

// ---------------------------------------------------------------- message builders

// TS SDK key order: result first.
std::string ts_result(const ojson& id, const ojson& result) {
  ojson r;
  r["result"] = result;
  r["jsonrpc"] = "2.0";
  r["id"] = id;
  return dump(r);
}

std::string std_result(const ojson& id, const ojson& result) {
  ojson r;
  r["jsonrpc"] = "2.0";
  r["id"] = id;
  r["result"] = result;
  return dump(r);
}

std::string error_response(const ojson& id, int code, const std::string& message,
                           const std::optional<ojson>& data = std::nullopt) {
  ojson r;
  r["jsonrpc"] = "2.0";
  r["id"] = id;
  ojson e;
  e["code"] = code;
  e["message"] = message;
  if (data) e["data"] = *data;
  r["error"] = e;
  return dump(r);
}

std::string notification(const std::string& method, const ojson& params) {
  ojson n;
  n["jsonrpc"] = "2.0";
  n["method"] = method;
  n["params"] = params;
  return dump(n);
}

ojson text_block(const std::string& text) {
  ojson b;
  b["type"] = "text";
  b["text"] = text;
  return b;
}

ojson text_result(const std::string& text) {
  ojson r;
  r["content"] = ojson::array({text_block(text)});
  return r;
}

ojson object_schema(ojson properties = ojson::object(), ojson required = ojson::array()) {
  ojson s;
  s["type"] = "object";
  s["properties"] = std::move(properties);
  if (!required.empty()) s["required"] = std::move(required);
  return s;
}

ojson tool(const std::string& name, const std::string& description, ojson input = object_schema()) {
  ojson t;
  t["name"] = name;
  t["description"] = description;
  t["inputSchema"] = std::move(input);
  return t;
}

// ---------------------------------------------------------------- method handlers

ojson initialize_result() {
  ojson caps;
  caps["tools"] = ojson{{"listChanged", false}};
  caps["resources"] = ojson{{"subscribe", false}, {"listChanged", false}};
  caps["prompts"] = ojson{{"listChanged", false}};
  caps["completions"] = ojson::object();
  caps["logging"] = ojson::object();
  ojson r;
  r["protocolVersion"] = "2025-06-18";
  r["capabilities"] = caps;
  r["serverInfo"] = ojson{{"name", "leaky-server"}, {"version", "1.0.0"}};
  r["instructions"] = "Leaky test server. Authenticate every call with the key " + kSecret + ".";
  return r;
}

ojson tools_list_result() {
  ojson tools = ojson::array();
  tools.push_back(tool("echo", "Echoes back the input message",
                       object_schema(ojson{{"message", ojson{{"type", "string"}}}},
                                     ojson::array({"message"}))));
  tools.push_back(tool("leak_text", "Returns a sentence"));
  {
    ojson t = tool("leak_structured", "Returns the service configuration");
    t["outputSchema"] = object_schema(ojson{
        {"env", object_schema(ojson{{"DATABASE_URL", ojson{{"type", "string"}}}},
                              ojson::array({"DATABASE_URL"}))}});
    tools.push_back(t);
  }
  tools.push_back(tool("leak_nested_json", "Returns environment variables as JSON text"));
  tools.push_back(tool("leak_escaped", "Returns text written with JSON escapes"));
  tools.push_back(tool("leak_error", "Always fails with a JSON-RPC error"));
  tools.push_back(tool("leak_is_error",
                       "Fails with isError. Internal note: authenticated as " + kToken));
  tools.push_back(tool("leak_resource", "Returns embedded resources and an image"));
  tools.push_back(tool("leak_links", "Returns a resource link and an audio clip"));
  tools.push_back(tool("leak_meta", "Returns a result with _meta"));
  tools.push_back(tool("leak_notifications", "Sends a log message and a progress notification",
                       object_schema(ojson{{"delay_ms", ojson{{"type", "integer"}}}})));
  tools.push_back(tool("leak_sampling", "Asks the client to sample a message"));
  tools.push_back(tool("leak_elicitation", "Asks the client to elicit input"));
  tools.push_back(tool("leak_stderr", "Logs to stderr"));
  tools.push_back(tool("leak_manifest", "Logs an env list to stderr"));
  tools.push_back(tool("leak_key_stderr", "Logs a private key to stderr"));
  tools.push_back(tool("leak_split", "Writes a line in two parts"));
  tools.push_back(tool("leak_big", "Returns a big text",
                       object_schema(ojson{{"bytes", ojson{{"type", "integer"}}}})));
  tools.push_back(tool("leak_big_escaped", "Returns a big log full of JSON escapes",
                       object_schema(ojson{{"bytes", ojson{{"type", "integer"}}}})));
  tools.push_back(tool("leak_non_json", "Prints a stray non-JSON line first"));
  tools.push_back(tool("leak_crlf", "Answers with a CRLF line ending"));
  tools.push_back(tool("crash", "Kills the server with SIGKILL"));
  ojson r;
  r["tools"] = tools;
  return r;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Writes `data` to fd in two write() calls, split in the middle of the first occurrence of
// `needle` (or the middle of data), with a 30 ms pause in between.
void write_split(int fd, const std::string& data, const std::string& needle) {
  size_t pos = needle.empty() ? std::string::npos : data.find(needle);
  size_t cut = pos == std::string::npos ? data.size() / 2 : pos + needle.size() / 2;
  write_all(fd, std::string_view(data).substr(0, cut));
  sleep_ms(30);
  write_all(fd, std::string_view(data).substr(cut));
}

std::string big_text(size_t n) {
  static const std::string filler = "lorem ipsum dolor sit amet consectetur ";
  const std::string mark = " key=" + kSecret + " ";
  const size_t tail = 64;
  if (n < mark.size() + tail) n = mark.size() + tail;
  std::string out;
  out.reserve(n);
  while (out.size() < n - mark.size() - tail) out += filler;
  out.resize(n - mark.size() - tail);
  out += mark;
  while (out.size() < n) out += filler;
  out.resize(n);
  return out;
}

// A big log of n bytes or a little more: lines with quotes (JSON escapes once encoded), the
// known value near the start, a password in quotes in the middle (a rule finds it only once the
// escapes are decoded) and the token at the start of the last line (likewise: `\nghp_`).
std::string big_escaped_text(size_t n) {
  std::string out;
  out.reserve(n + 256);
  out += "started with key=" + kSecret + "\n";
  size_t line = 0;
  auto fill_to = [&](size_t size) {
    while (out.size() < size)
      out += "entry " + std::to_string(line++) + ": status \"ok\" path=/var/lib/app\tdone\n";
  };
  fill_to(n / 2);
  out += "config {\"password\": \"Hunter2Secret9x\"}\n";
  fill_to(n);
  out += kToken + "\n";
  return out;
}

// Returns the response text (without newline), or nullopt if nothing is to be answered.
std::optional<std::string> call_tool(const ojson& id, const ojson& params) {
  std::string name = params.contains("name") && params["name"].is_string()
                         ? params["name"].get<std::string>()
                         : std::string();
  const ojson args = params.contains("arguments") && params["arguments"].is_object()
                         ? params["arguments"]
                         : ojson::object();

  if (name == "echo") {
    if (!args.contains("message") || !args["message"].is_string())
      return error_response(id, -32602, "Invalid arguments for tool echo: message must be a string");
    return ts_result(id, text_result("Echo: " + args["message"].get<std::string>()));
  }
  if (name == "leak_text") {
    return ts_result(id, text_result("The deploy key is " + kSecret + ", keep it safe."));
  }
  if (name == "leak_structured") {
    ojson structured;
    structured["env"] = ojson{{"DATABASE_URL", kDbUrl}};
    ojson r = text_result(dump(structured));
    r["structuredContent"] = structured;
    return ts_result(id, r);
  }
  if (name == "leak_nested_json") {
    ojson env;
    env["AWS_SECRET"] = kSecret;
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
    return ts_result(id, text_result(env.dump(2)));
  }
  if (name == "leak_escaped") {
    // Hand-written: nlohmann would never produce these escapes.
    std::string line = "{\"result\":{\"content\":[";
    line += "{\"type\":\"text\",\"text\":\"secret=" + all_unicode_escaped(kSecret) + "\"},";
    line += "{\"type\":\"text\",\"text\":\"https:\\/\\/hooks.example.invalid\\/notify?key=" +
            replace_all(json_body(kSecret), "/", "\\/") + "\"},";
    line += "{\"type\":\"text\",\"text\":\"dsn=" + replace_all(json_body(kDbUrl), "/", "\\/") + "\"}";
    line += "]},\"jsonrpc\":\"2.0\",\"id\":" + dump(id) + "}";
    return line;
  }
  if (name == "leak_error") {
    return error_response(id, -32000, "Database connection failed for key " + kSecret,
                          ojson{{"dsn", kDbUrl}});
  }
  if (name == "leak_is_error") {
    ojson r = text_result("Authentication failed for token " + kToken);
    r["isError"] = true;
    return ts_result(id, r);
  }
  if (name == "leak_resource") {
    const std::string text = "api_key = " + kSecret + "\n";
    ojson res1;
    res1["uri"] = "file:///app/config.txt";
    res1["mimeType"] = "text/plain";
    res1["text"] = text;
    ojson res2;
    res2["uri"] = "file:///app/config.bin";
    res2["mimeType"] = "text/plain";
    res2["blob"] = base64(text);
    std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0", 29);
    png += std::string("\0\0\0\0tEXtComment\0", 16) + kSecret + std::string("\0\0\0\0IEND", 8);
    ojson b1{{"type", "resource"}, {"resource", res1}};
    ojson b2{{"type", "resource"}, {"resource", res2}};
    ojson b3{{"type", "image"}, {"data", base64(png)}, {"mimeType", "image/png"}};
    ojson r;
    r["content"] = ojson::array({b1, b2, b3});
    return ts_result(id, r);
  }
  if (name == "leak_links") {
    ojson link;
    link["type"] = "resource_link";
    link["uri"] = "https://files.example.invalid/export?key=" + kSecret;
    link["name"] = "export.csv";
    link["description"] = "Export signed with " + kToken;
    link["mimeType"] = "text/csv";
    std::string wav = std::string("RIFF\x24\0\0\0WAVEfmt ", 16) + "ICMT" + kSecret;
    ojson audio{{"type", "audio"}, {"data", base64(wav)}, {"mimeType", "audio/wav"}};
    ojson r;
    r["content"] = ojson::array({link, audio});
    return ts_result(id, r);
  }
  if (name == "leak_meta") {
    ojson block = text_block("see _meta");
    block["_meta"] = ojson{{"example.invalid/signature", kSecret}};
    ojson r;
    r["content"] = ojson::array({block});
    r["_meta"] = ojson{{"example.invalid/auth", kToken}};
    return ts_result(id, r);
  }
  if (name == "leak_notifications") {
    ojson log_params;
    log_params["level"] = "error";
    log_params["logger"] = "leaky";
    log_params["data"] = ojson{{"msg", "connection pool failure"}, {"conn", kDbUrl}};
    emit_line(notification("notifications/message", log_params));
    ojson token = 1;
    if (params.contains("_meta") && params["_meta"].is_object() &&
        params["_meta"].contains("progressToken"))
      token = params["_meta"]["progressToken"];
    ojson prog;
    prog["progressToken"] = token;
    prog["progress"] = 1;
    prog["total"] = 2;
    prog["message"] = "step 1 of 2 using key " + kSecret;
    emit_line(notification("notifications/progress", prog));
    // The SDK client drops a progress notification that arrives in the same read as the final
    // response (its notification handlers run a microtask later, after the response removed the
    // progress handler), so pause before the result; arguments.delay_ms=0 reproduces that case.
    long long delay = 20;
    if (args.contains("delay_ms") && args["delay_ms"].is_number_integer())
      delay = std::clamp<long long>(args["delay_ms"].get<long long>(), 0, 10000);
    if (delay > 0) sleep_ms(static_cast<int>(delay));
    return ts_result(id, text_result("done"));
  }
  if (name == "leak_sampling") {
    ojson msg;
    msg["role"] = "user";
    msg["content"] = text_block("Summarize the config. The API key is " + kSecret + ".");
    ojson p;
    p["messages"] = ojson::array({msg});
    p["systemPrompt"] = "You are a helper. Internal key: " + kSecret;
    p["maxTokens"] = 100;
    ojson req;
    req["jsonrpc"] = "2.0";
    req["id"] = 0;
    req["method"] = "sampling/createMessage";
    req["params"] = p;
    emit_line(dump(req));
    return ts_result(id, text_result("sampling requested"));
  }
  if (name == "leak_elicitation") {
    ojson schema = object_schema(
        ojson{{"password", ojson{{"type", "string"}, {"description", "Current value: " + kSecret}}}});
    ojson p;
    p["message"] = "Confirm the token " + kToken;
    p["requestedSchema"] = schema;
    ojson req;
    req["jsonrpc"] = "2.0";
    req["id"] = 1;
    req["method"] = "elicitation/create";
    req["params"] = p;
    emit_line(dump(req));
    return ts_result(id, text_result("elicitation requested"));
  }
  if (name == "leak_key_stderr") {
    // The last body line runs into the END marker, and more text follows it.
    write_all(2, "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAvfakefakefake0\n"
                 "MIIEowIBAAKCAQEAvfakefakefake1-----END RSA PRIVATE KEY----- key=" + kSecret + "\n");
    return ts_result(id, text_result("ok"));
  }
  if (name == "leak_manifest") {
    write_all(2, "env:\n  - name: DB_PASSWORD\n    value: " + kManifestValue + "\n  - name: LOG_LEVEL\n");
    return ts_result(id, text_result("ok"));
  }
  if (name == "leak_stderr") {
    write_all(2, "connecting with " + kDbUrl + "\n");
    write_all(2, "partial line with key " + kSecret);
    return ts_result(id, text_result("ok"));
  }
  if (name == "leak_split") {
    write_split(2, "stderr split line with key " + kSecret + "\n", kSecret);
    std::string line = ts_result(id, text_result("split line with key " + kSecret)) + "\n";
    write_split(1, line, json_body(kSecret));
    return std::nullopt;  // already answered
  }
  if (name == "leak_big") {
    size_t n = 2000000;
    if (args.contains("bytes") && args["bytes"].is_number_integer() && args["bytes"].get<long long>() > 0)
      n = static_cast<size_t>(std::min<long long>(args["bytes"].get<long long>(), 256LL << 20));
    return ts_result(id, text_result(big_text(n)));
  }
  if (name == "leak_big_escaped") {
    size_t n = 300000;
    if (args.contains("bytes") && args["bytes"].is_number_integer() && args["bytes"].get<long long>() > 0)
      n = static_cast<size_t>(std::min<long long>(args["bytes"].get<long long>(), 256LL << 20));
    return ts_result(id, text_result(big_escaped_text(n)));
  }
  if (name == "leak_non_json") {
    write_all(1, "npm WARN something " + kSecret + "\n");
    return ts_result(id, text_result("after a stray line"));
  }
  if (name == "leak_crlf") {
    write_all(1, ts_result(id, text_result("crlf with key " + kSecret)) + "\r\n");
    return std::nullopt;
  }
  if (name == "crash") {
    std::raise(SIGKILL);
    return std::nullopt;
  }
  return error_response(id, -32602, "Unknown tool: " + name);
}

std::optional<std::string> handle_request(const std::string& method, const ojson& id,
                                          const ojson& params) {
  if (method == "initialize") return std_result(id, initialize_result());
  if (method == "ping") return ts_result(id, ojson::object());
  if (method == "logging/setLevel") return std_result(id, ojson::object());
  if (method == "tools/list") return std_result(id, tools_list_result());
  if (method == "tools/call") return call_tool(id, params);
  if (method == "resources/list") {
    ojson env_res{{"uri", "file:///app/.env"}, {"name", ".env"},
                  {"description", "Application environment file"}, {"mimeType", "text/plain"}};
    ojson readme{{"uri", "file:///app/README.md"}, {"name", "README.md"},
                 {"description", "Readme"}, {"mimeType", "text/markdown"}};
    return std_result(id, ojson{{"resources", ojson::array({env_res, readme})}});
  }
  if (method == "resources/templates/list")
    return std_result(id, ojson{{"resourceTemplates", ojson::array()}});
  if (method == "resources/read") {
    std::string uri = params.contains("uri") && params["uri"].is_string()
                          ? params["uri"].get<std::string>()
                          : std::string();
    ojson c;
    c["uri"] = uri;
    if (uri == "file:///app/.env") {
      c["mimeType"] = "text/plain";
      c["text"] = "DATABASE_URL=" + kDbUrl + "\nAPI_KEY=" + kSecret + "\nDEBUG=false\n";
    } else if (uri == "file:///app/README.md") {
      c["mimeType"] = "text/markdown";
      c["text"] = "# App\n\nNothing secret here.\n";
    } else {
      return error_response(id, -32002, "Resource not found: " + uri, ojson{{"uri", uri}});
    }
    return std_result(id, ojson{{"contents", ojson::array({c})}});
  }
  if (method == "prompts/list") {
    ojson arg{{"name", "topic"}, {"description", "What to debug"}, {"required", false}};
    ojson p{{"name", "debug_config"}, {"description", "Debug the service configuration"},
            {"arguments", ojson::array({arg})}};
    return std_result(id, ojson{{"prompts", ojson::array({p})}});
  }
  if (method == "prompts/get") {
    std::string name = params.contains("name") && params["name"].is_string()
                           ? params["name"].get<std::string>()
                           : std::string();
    if (name != "debug_config") return error_response(id, -32602, "Unknown prompt: " + name);
    ojson m1{{"role", "user"},
             {"content", text_block("Debug the service. Current API key: " + kSecret)}};
    ojson m2{{"role", "assistant"}, {"content", text_block("Connecting to " + kDbUrl)}};
    ojson r;
    r["description"] = "Debug the service configuration";
    r["messages"] = ojson::array({m1, m2});
    return std_result(id, r);
  }
  if (method == "completion/complete") {
    ojson c;
    c["values"] = ojson::array({"production", kSecret});
    c["total"] = 2;
    c["hasMore"] = false;
    return std_result(id, ojson{{"completion", c}});
  }
  return error_response(id, -32601, "Method not found: " + method);
}

// Handles one parsed message (an element of a batch or a whole line).
std::optional<std::string> handle_message(const ojson& msg, int& answered) {
  if (!msg.is_object()) return error_response(nullptr, -32600, "Invalid Request");
  const bool has_id = msg.contains("id");
  if (!msg.contains("method")) {
    if (has_id && (msg.contains("result") || msg.contains("error")))
      return std::nullopt;  // a client's answer to our sampling/elicitation request: ignored
    return error_response(has_id ? msg["id"] : ojson(nullptr), -32600, "Invalid Request");
  }
  if (!msg["method"].is_string())
    return error_response(has_id ? msg["id"] : ojson(nullptr), -32600, "Invalid Request");
  const std::string method = msg["method"].get<std::string>();
  const ojson params = msg.contains("params") ? msg["params"] : ojson::object();
  if (!has_id) return std::nullopt;  // notifications (notifications/initialized, ...): no answer
  ++answered;
  return handle_request(method, msg["id"], params);
}

int g_exit_after = -1;

void process_line(std::string line, int& answered) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  ojson msg;
  try {
    msg = ojson::parse(line);
  } catch (const nlohmann::json::exception&) {
    emit_line(error_response(nullptr, -32700, "Parse error"));
    return;
  }
  if (msg.is_array()) {
    if (msg.empty()) {
      emit_line(error_response(nullptr, -32600, "Invalid Request"));
      return;
    }
    std::string out;
    for (const auto& el : msg) {
      if (auto r = handle_message(el, answered)) out += (out.empty() ? "" : ",") + *r;
    }
    if (!out.empty()) emit_line("[" + out + "]");
  } else if (auto r = handle_message(msg, answered)) {
    emit_line(*r);
  }
  if (g_exit_after >= 0 && answered >= g_exit_after) std::_Exit(5);
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);
  if (const char* e = std::getenv("LEAK_EXIT_AFTER"); e != nullptr && *e != '\0')
    g_exit_after = std::atoi(e);

  int answered = 0;
  std::string pending;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      process_line(pending.substr(start, nl - start), answered);
    pending.erase(0, start);
  }
  if (!pending.empty()) process_line(pending, answered);
  return 0;
}
