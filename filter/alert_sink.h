// The alert sink: where findings and incidents go, one JSON object a line, written with spdlog.
//
// Promises: an alert never contains a secret or any part of one: it carries the rule id, the
// source name of a known value, where the finding was (source, line, JSON path, byte offset and
// length), the HMAC fingerprint and the action. What the context takes from the messages
// themselves (method, id, tool: a server or a client can put anything there, a secret too) goes
// through the sink's context masker first (set_context_masker); until a command has set one,
// those fields are left out.
// Thread-safe (one mutex, in spdlog's _mt sink; the masker under a lock of its own).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "filter/finding.h"

namespace spdlog {
class logger;
}

namespace scrub {

// Where a unit came from. Empty fields are left out of the alert.
struct AlertContext {
  std::string source;     // "stdin", a file name, "child-stdout", "child-stderr"
  uint64_t line = 0;      // 1-based line (or message) number; 0 = none
  std::string direction;  // "server->client" / "client->server"
  std::string method;     // JSON-RPC method (of the message or of the request it answers)
  std::string id;         // JSON-RPC id as JSON text
  std::string tool;       // tools/call: the tool's name
};

// Masks one context field; the text to print, empty to leave the field out.
using ContextMasker = std::function<std::string(std::string_view)>;

class EngineHolder;
// A masker that scans each field with the holder's current set (as a unit of text), under a
// lock of its own: masked fields come out masked, a field the engine fails on is left out.
ContextMasker make_context_masker(const EngineHolder& holder);

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // From then on the method, id and tool of every alert's context go through `masker`.
  virtual void set_context_masker(ContextMasker masker) { (void)masker; }
  virtual void finding(const Finding& f, const AlertContext& ctx) = 0;
  // An incident that is not a finding: "invalid-json", "oversized", "engine-error", ...
  virtual void incident(const std::string& kind, const std::string& message,
                        const AlertContext& ctx) = 0;
  virtual void flush() {}
};

// JSON lines to a file ("-" = stderr). Throws ConfigError when the file cannot be opened.
std::unique_ptr<AlertSink> make_json_alert_sink(const std::string& path);
// Drops everything (no --alerts given).
std::unique_ptr<AlertSink> make_null_alert_sink();

// The alert object for a finding (exposed for tests and for `scan --format json`).
nlohmann::ordered_json alert_json(const Finding& f, const AlertContext& ctx);
std::string utc_timestamp();

}  // namespace scrub
