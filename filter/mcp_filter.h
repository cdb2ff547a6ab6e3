// The MCP message stage: one JSON-RPC line in, the line to forward (or a replacement, or nothing)
// plus findings with their MCP context out. Used by the stdio wrap and the TCP proxy.
//
// Promises:
//  - A message with no finding is forwarded byte-identical (kForward), never re-serialized.
//  - A masked message stays valid JSON-RPC with the same id; a masked string stays a string.
//  - Base64 `blob`s whose mimeType is textual are decoded, scanned and re-encoded when masked;
//    known values are found inside any base64 payload in their base64 forms.
//  - --action block turns a response holding a secret into an error naming the rule ids (an
//    isError tool result for tools/call); --action alert forwards unchanged and only reports.
//  - A scan error returns ScanStatus::kError: the caller must not forward the line.
//  - Alerts carry direction, method, id, JSON path and tool name; never the secret.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "filter/alert_sink.h"
#include "filter/engine_holder.h"
#include "filter/redactor.h"

namespace scrub {

enum class Direction { kServerToClient, kClientToServer };
const char* to_string(Direction d);

// Remembers requests (by sender and id) so a response can be reported with its method and tool.
// The server's own requests reuse the client's id numbers, so ids are kept per direction.
// Thread-safe; bounded (the oldest entries are forgotten first).
class RequestTracker {
 public:
  struct Request {
    std::string method;
    std::string tool;
  };
  void on_request(Direction from, const std::string& id_json, Request req);
  // The request that a response travelling in `response_dir` answers (and forgets it).
  std::optional<Request> take(Direction response_dir, const std::string& id_json);
  size_t size() const;

 private:
  static constexpr size_t kMaxEntries = 10000;
  // Keyed by the direction's letter and the id's minified JSON. McpFilter takes every response's
  // request, so the table holds the requests in flight; the oldest go first once kMaxEntries
  // slots are held (a server that never answers). `order_` names each entry with its sequence
  // number, so an id answered and then reused is not evicted through its older slot.
  struct Entry {
    Request req;
    uint64_t seq = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> pending_;
  std::deque<std::pair<std::string, uint64_t>> order_;
  uint64_t next_seq_ = 0;
};

struct McpFilterOptions {
  Action action = Action::kMask;  // default; rules may override
  bool parallel = false;          // large messages on two threads (Redactor::set_parallel)
  // After a message at least this large, the scanner's buffers are given back
  // (Redactor::release_memory): for the many mostly idle filters of a TCP server. 0: kept.
  size_t release_above = 0;
};

struct MessageResult {
  enum class Kind { kForward, kReplace, kDrop };
  Kind kind = Kind::kForward;
  std::string out;          // for kReplace
  Findings findings;
  AlertContext ctx;         // direction, method, id, tool
  bool invalid_json = false;
  bool blocked = false;
};

// Sniffs the top-level "id" and the kind of a JSON-RPC message from bytes as they stream past,
// without holding them: for messages too large to keep.
class JsonRpcSniffer {
 public:
  void feed(std::string_view bytes);
  const std::string& id() const { return id_; }  // raw JSON of the id, empty if none seen
  bool is_response() const { return has_result_ || has_error_; }
  bool has_method() const { return has_method_; }
  void reset() { *this = JsonRpcSniffer(); }

 private:
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;
  bool reading_key_ = false, after_colon_ = false;
  std::string key_;
  bool capture_id_ = false, id_done_ = false;
  std::string id_;
  bool has_result_ = false, has_error_ = false, has_method_ = false;
};

// A JSON-RPC error response line (no newline).
std::string jsonrpc_error(const std::string& id_json, int code, const std::string& message);

class McpFilter {
 public:
  // Follows `engine`: each message is scanned with the set in force when it starts.
  McpFilter(const EngineHolder& engine, RequestTracker& tracker, McpFilterOptions options);

  // Notes a message's request (if it is one) without scanning it: the client->server direction
  // when requests are not scanned.
  void note(Direction dir, std::string_view line) { note_request(tracker_, dir, line); }
  // The same without a filter (no engine is needed): the wrap's client pump before the engine
  // is loaded.
  static void note_request(RequestTracker& tracker, Direction dir, std::string_view line);
  // Scans one message travelling in `dir`. `padded`: Redactor::kJsonPadding bytes after `line`
  // are readable (LineReader's and the tcp line buffer's promise), so it is parsed in place.
  ScanStatus process(Direction dir, std::string_view line, MessageResult& result, bool padded = false);
  // Makes now what the first large message would otherwise make on its way (the key database,
  // and with `parallel` the helper thread, its scanner and the split scan's database): for a
  // caller with time to spare before its first message, the wrap waiting on its server. With
  // `parallel` the databases are loaded on the helper thread: a message that comes meanwhile is
  // not held up (a large one waits for them).
  void prepare_for_large_messages();

  Redactor& redactor() { return redactor_.current(); }

 private:
  void fill_context(Direction dir, std::string_view line, MessageResult& r, bool* is_response,
                    bool* is_tool_result);
  // note_request() once `"method"` is seen.
  static void note_parsed(RequestTracker& tracker, Direction dir, std::string_view line);
  bool redact_blobs(Redactor& rd, const std::string& in, std::string& out, Findings& findings);

  FollowingRedactor redactor_;
  RequestTracker& tracker_;
  McpFilterOptions options_;
};

}  // namespace scrub
