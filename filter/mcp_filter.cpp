#include "filter/mcp_filter.h"

#include <hs/hs.h>
#include <simdjson.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "filter/db_cache.h"
#include "filter/huge_pages.h"
#include "filter/json_string.h"
#include "filter/literal_variants.h"

namespace scrub {

const char* to_string(Direction d) {
  return d == Direction::kServerToClient ? "server->client" : "client->server";
}

namespace {
std::string tracker_key(Direction from, std::string_view id_json) {
  std::string key;
  key.reserve(id_json.size() + 1);
  key.push_back(from == Direction::kServerToClient ? 's' : 'c');
  key.append(id_json);
  return key;
}
}  // namespace

void RequestTracker::on_request(Direction from, const std::string& id_json, Request req) {
  std::string key = tracker_key(from, id_json);
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t seq = next_seq_++;
  auto [it, inserted] = pending_.try_emplace(key, Entry{std::move(req), seq});
  if (!inserted) return;  // a pending request with this id: the first one is kept
  order_.emplace_back(std::move(key), seq);
  // From the front: slots of requests already answered (take) go; the oldest pending one goes
  // too once more than kMaxEntries slots are held. Answered in order, as they mostly are, the
  // queue holds only the requests in flight.
  while (!order_.empty()) {
    const auto& [front_key, front_seq] = order_.front();
    auto old = pending_.find(front_key);
    const bool live = old != pending_.end() && old->second.seq == front_seq;
    if (live && order_.size() <= kMaxEntries) break;
    if (live) pending_.erase(old);
    order_.pop_front();
  }
}

std::optional<RequestTracker::Request> RequestTracker::take(Direction response_dir,
                                                            const std::string& id_json) {
  // A response travelling server->client answers a request the client sent, and vice versa.
  Direction from = response_dir == Direction::kServerToClient ? Direction::kClientToServer
                                                              : Direction::kServerToClient;
  const std::string key = tracker_key(from, id_json);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return std::nullopt;
  Request r = std::move(it->second.req);
  pending_.erase(it);  // its slot in order_ goes when it reaches the front
  return r;
}

size_t RequestTracker::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

void JsonRpcSniffer::feed(std::string_view bytes) {
  for (char c : bytes) {
    if (in_string_) {
      if (capture_id_ && id_.size() < 256) id_ += c;
      if (escape_) {
        escape_ = false;
        continue;
      }
      if (c == '\\') {
        escape_ = true;
        continue;
      }
      if (c == '"') {
        in_string_ = false;
        if (capture_id_) {
          capture_id_ = false;
          id_done_ = true;
        }
        reading_key_ = false;
        continue;
      }
      if (reading_key_ && key_.size() < 16) key_ += c;
      continue;
    }
    if (capture_id_) {
      const bool ws = json_blank(c);
      if (id_.empty() && ws) continue;
      if (id_.empty() && c == '"') {
        id_ += c;
        in_string_ = true;
        continue;
      }
      if (ws || c == ',' || c == '}' || c == ']') {
        capture_id_ = false;
        id_done_ = true;
      } else {
        if (id_.size() < 256) id_ += c;
        continue;
      }
    }
    switch (c) {
      case '{': case '[': ++depth_; break;
      case '}': case ']': --depth_; break;
      case '"':
        in_string_ = true;
        if (depth_ == 1 && !after_colon_) {
          reading_key_ = true;
          key_.clear();
        }
        break;
      case ':':
        if (depth_ == 1) {
          after_colon_ = true;
          if (key_ == "id" && !id_done_) {
            capture_id_ = true;
            id_.clear();
          } else if (key_ == "result") {
            has_result_ = true;
          } else if (key_ == "error") {
            has_error_ = true;
          } else if (key_ == "method") {
            has_method_ = true;
          }
        }
        break;
      case ',':
        if (depth_ == 1) after_colon_ = false;
        break;
      default: break;
    }
  }
}

std::string jsonrpc_error(const std::string& id_json, int code, const std::string& message) {
  nlohmann::json msg = message;
  return "{\"jsonrpc\":\"2.0\",\"id\":" + (id_json.empty() ? std::string("null") : id_json) +
         ",\"error\":{\"code\":" + std::to_string(code) + ",\"message\":" + msg.dump() + "}}";
}

McpFilter::McpFilter(const EngineHolder& engine, RequestTracker& tracker, McpFilterOptions options)
    : redactor_(engine), tracker_(tracker), options_(options) {}

namespace {

thread_local simdjson::dom::parser tl_parser;

std::string string_field(simdjson::dom::object obj, const char* key) {
  std::string_view v;
  if (obj[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return {};
}

// The fields of a message's top-level object that give a finding its context, read with
// simdjson's on-demand API: it steps over the values it is not asked for. A DOM parse of a 1 MB
// tool result builds the whole tape and copies every string (0.45 ms, a tenth of masking one);
// this reads the same fields in a fraction of that. Only for input simdjson already validated.
struct Envelope {
  std::string id;  // minified JSON, as simdjson::minify writes it (RequestTracker's key); "" if none
  std::string method, tool;  // tool: params.name, whatever the method
  bool result = false, error = false;
};

thread_local simdjson::ondemand::parser tl_od_parser;
thread_local std::string tl_padded;

// An id the way note_object reads one: minified by the DOM, so both readers agree.
std::string minified(std::string_view raw) {
  simdjson::dom::element e;
  if (tl_parser.parse(raw.data(), raw.size(), true).get(e) != simdjson::SUCCESS) return {};
  return simdjson::minify(e);
}

// Fills `env` from `line`'s object and returns true; false when it is not an object (`array`:
// whether it is an array, a JSON-RPC batch). The first of duplicate keys counts, as in the DOM.
bool read_envelope(std::string_view line, Envelope& env, bool& array) {
  array = false;
  tl_padded.assign(line);
  tl_padded.append(simdjson::SIMDJSON_PADDING, ' ');
  simdjson::ondemand::document doc;
  if (tl_od_parser.iterate(tl_padded.data(), line.size(), tl_padded.size()).get(doc)) return false;
  simdjson::ondemand::json_type type;
  if (doc.type().get(type)) return false;
  if (type != simdjson::ondemand::json_type::object) {
    array = type == simdjson::ondemand::json_type::array;
    return false;
  }
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return false;
  bool seen_id = false, seen_method = false, seen_params = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    simdjson::ondemand::value v = field.value();
    if (key == "id" && !seen_id) {
      seen_id = true;
      simdjson::ondemand::json_type t;
      std::string_view raw;
      if (v.type().get(t)) return false;
      if (t == simdjson::ondemand::json_type::object) {
        simdjson::ondemand::object o;
        if (v.get_object().get(o) || o.raw_json().get(raw)) return false;
      } else if (t == simdjson::ondemand::json_type::array) {
        simdjson::ondemand::array a;
        if (v.get_array().get(a) || a.raw_json().get(raw)) return false;
      } else {
        raw = v.raw_json_token();
      }
      env.id = minified(raw);
    } else if (key == "method" && !seen_method) {
      seen_method = true;
      std::string_view m;
      if (!v.get_string().get(m)) env.method = std::string(m);
    } else if (key == "params" && !seen_params) {
      seen_params = true;
      simdjson::ondemand::object params;
      if (v.get_object().get(params)) continue;
      for (auto pf : params) {
        std::string_view pk;
        if (pf.unescaped_key().get(pk)) return false;
        if (pk != "name") continue;
        std::string_view name;
        if (!pf.value().get_string().get(name)) env.tool = std::string(name);
        break;
      }
    } else if (key == "result") {
      env.result = true;
    } else if (key == "error") {
      env.error = true;
    }
  }
  return true;
}

// Remembers the message `env` describes if it is a request (an id and a method), so its
// response can be reported with them; the tool only for a tools/call.
void remember(RequestTracker& tracker, Direction dir, const Envelope& env) {
  if (env.id.empty() || env.method.empty()) return;
  tracker.on_request(dir, env.id, {env.method, env.method == "tools/call" ? env.tool : std::string()});
}

// The envelope of a message already parsed into a DOM (read_envelope's fields, as the DOM reads
// them: keys unescaped, the first of duplicates).
Envelope dom_envelope(simdjson::dom::object obj) {
  Envelope env;
  simdjson::dom::element id;
  if (obj["id"].get(id) == simdjson::SUCCESS) env.id = simdjson::minify(id);
  env.method = string_field(obj, "method");
  simdjson::dom::object params;
  if (obj["params"].get_object().get(params) == simdjson::SUCCESS) env.tool = string_field(params, "name");
  env.result = !obj["result"].error();
  env.error = !obj["error"].error();
  return env;
}

// Remembers a request found in `obj` (a message already parsed into a DOM).
void note_object(RequestTracker& tracker, Direction dir, simdjson::dom::object obj) {
  remember(tracker, dir, dom_envelope(obj));
}

// Re-serializing a message whose blob was decoded recurses once per level (nlohmann's dump). The
// ASan build (-O0 frames) overflowed an 8 MiB stack at 1,000 levels, so the bound is well below
// that; MCP results nest a handful of levels.
constexpr int kMaxBlobNesting = 256;

// Whether `line` nests containers deeper than `limit` (strings skipped).
bool nesting_exceeds(std::string_view line, int limit) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (char c : line) {
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > limit) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// Which of the two keys this stage acts on a message holds: `"blob"` (a resource's base64
// payload, decoded and scanned) and `"method"` (a request, remembered for its response). Two
// string_view::find calls over a 1 MB tool result cost 0.45 ms, a memcmp at every quote, and
// tool results quote a lot; Hyperscan's literal matcher answers both in 0.05 ms. Its database
// is read from the database cache on the first large message (compiled and stored there once:
// a process's first Hyperscan compile took 1.3-2.3 ms, more than half of what the wrap spent on
// its first 1 MB result); smaller messages, and any Hyperscan failure, fall back to find(), so
// a key is never missed.
struct KeyHits {
  bool blob = false;
  bool method = false;
};

constexpr size_t kKeyScanBytes = 64 * 1024;
// Requests are small: a larger batch is not parsed again to remember the requests in it.
constexpr size_t kMaxRequestBytes = 1u << 20;

KeyHits find_keys_slow(std::string_view line) {
  return {line.find("\"blob\"") != std::string_view::npos,
          line.find("\"method\"") != std::string_view::npos};
}

// One for the process, made with the cache of the engine that first asks (the same two literals
// whichever engine that is).
const hs_database_t* key_database(const EngineOptions& options) {
  // Never freed: a thread may still scan with it while the process exits.
  static hs_database_t* const db =
      DbCache(options.cache_dir, options.fingerprint_key)
          .load_or_compile({"\"blob\"", "\"method\""}, {HS_FLAG_SINGLEMATCH, HS_FLAG_SINGLEMATCH},
                           {0, 1}, "mcp message keys")
          .release();
  return db;
}

int on_key(unsigned int id, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  KeyHits& k = *static_cast<KeyHits*>(ctx);
  (id == 0 ? k.blob : k.method) = true;
  return k.blob && k.method ? 1 : 0;  // both seen: nothing more to learn
}

KeyHits find_keys(std::string_view line, const EngineOptions& options) {
  if (line.size() < kKeyScanBytes) return find_keys_slow(line);
  const hs_database_t* db = key_database(options);
  struct Scratch {
    hs_scratch_t* s = nullptr;
    ~Scratch() { hs_free_scratch(s); }
  };
  thread_local Scratch scratch;
  if (!db || (!scratch.s && hs_alloc_scratch(db, &scratch.s) != HS_SUCCESS))
    return find_keys_slow(line);
  KeyHits k;
  hs_error_t rc = hs_scan(db, line.data(), static_cast<unsigned int>(line.size()), 0, scratch.s,
                          on_key, &k);
  if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) return find_keys_slow(line);
  return k;
}

bool textual_mime(std::string_view m) {
  if (m.rfind("text/", 0) == 0) return true;
  for (std::string_view t : {"application/json", "application/xml", "application/javascript",
                             "application/x-yaml", "application/yaml", "application/toml",
                             "application/x-sh", "application/sql", "application/x-www-form-urlencoded"})
    if (m.rfind(t, 0) == 0) return true;
  return m.find("+json") != std::string_view::npos || m.find("+xml") != std::string_view::npos;
}

// A finding's context from the message's envelope: its id, and its method and tool, its own or
// (a response) its request's, which is forgotten then; a request is remembered.
void context_from(RequestTracker& tracker, Direction dir, const Envelope& env, MessageResult& r,
                  bool* is_response, bool* is_tool_result) {
  *is_response = false;
  *is_tool_result = false;
  r.ctx.id = env.id;
  const bool response = env.result || env.error;
  if (!env.method.empty()) {
    r.ctx.method = env.method;
    remember(tracker, dir, env);
    if (env.method == "tools/call") r.ctx.tool = env.tool;
  } else if (response && !r.ctx.id.empty()) {
    *is_response = true;
    if (auto req = tracker.take(dir, r.ctx.id)) {
      r.ctx.method = req->method;
      r.ctx.tool = req->tool;
      *is_tool_result = req->method == "tools/call" && env.result;
    }
  }
}

}  // namespace

void McpFilter::note_request(RequestTracker& tracker, Direction dir, std::string_view line) {
  // Only requests matter; skip anything that cannot be one cheaply.
  if (line.size() > kMaxRequestBytes || line.find("\"method\"") == std::string_view::npos) return;
  note_parsed(tracker, dir, line);
}

void McpFilter::note_parsed(RequestTracker& tracker, Direction dir, std::string_view line) {
  simdjson::dom::element doc;
  if (tl_parser.parse(line.data(), line.size(), true).get(doc) != simdjson::SUCCESS) return;
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) == simdjson::SUCCESS) {
    note_object(tracker, dir, obj);
    return;
  }
  simdjson::dom::array arr;
  if (doc.get_array().get(arr) == simdjson::SUCCESS)
    for (auto el : arr) {
      simdjson::dom::object o;
      if (el.get_object().get(o) == simdjson::SUCCESS) note_object(tracker, dir, o);
    }
}

void McpFilter::fill_context(Direction dir, std::string_view line, MessageResult& r,
                             bool* is_response, bool* is_tool_result) {
  *is_response = false;
  *is_tool_result = false;
  Envelope env;
  bool array = false;
  if (!read_envelope(line, env, array)) {
    if (array) note(dir, line);  // a batch: remember its requests; no single context
    return;
  }
  context_from(tracker_, dir, env, r, is_response, is_tool_result);
}

bool McpFilter::redact_blobs(Redactor& rd, const std::string& in, std::string& out,
                             Findings& findings) {
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(in, nullptr, false);
  if (doc.is_discarded()) return false;
  bool changed = false;
  // Iterative walk: (node, path).
  std::vector<std::pair<nlohmann::ordered_json*, std::string>> stack{{&doc, ""}};
  std::string decoded, masked;
  while (!stack.empty()) {
    auto [node, path] = stack.back();
    stack.pop_back();
    if (node->is_object()) {
      auto blob = node->find("blob");
      auto mime = node->find("mimeType");
      if (blob != node->end() && blob->is_string() && mime != node->end() && mime->is_string() &&
          textual_mime(mime->get_ref<const std::string&>()) &&
          base64_decode(blob->get_ref<const std::string&>(), decoded)) {
        masked.clear();
        Findings local;
        RedactStatus st = rd.redact_text(decoded, masked, local);
        if (st == RedactStatus::kMasked) {
          *blob = base64_encode(masked);
          changed = true;
          for (auto& f : local) {
            f.json_path = (path.empty() ? "" : path + ".") + "blob";
            f.encoded = true;
            findings.push_back(std::move(f));
          }
        }
      }
      for (auto it = node->begin(); it != node->end(); ++it)
        if (it->is_structured()) stack.push_back({&it.value(), (path.empty() ? "" : path + ".") + it.key()});
    } else if (node->is_array()) {
      for (size_t i = 0; i < node->size(); ++i)
        if ((*node)[i].is_structured()) stack.push_back({&(*node)[i], path + "[" + std::to_string(i) + "]"});
    }
  }
  if (changed) out = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return changed;
}

void McpFilter::prepare_for_large_messages() {
  Redactor& rd = redactor_.current();
  const EngineOptions& options = rd.set().options();  // the set outlives the redactor's jobs
  if (!options_.parallel) {
    key_database(options);
    return;
  }
  rd.set_parallel(true);
  rd.prepare_parallel([&options] {
    // The helper thread's malloc arena in 2 MiB pages (filter/huge_pages.h), before anything is
    // allocated in it: a large message's parse and offset map are its, and each fresh 4 KiB page
    // costs a fault of 7-14 µs here (the first masked megabyte took 16.7 ms against 2.9 for the
    // next ones). Only the wrap prepares, with one helper; not under tcp, one per connection.
    advise_thread_arena_in_huge_pages();
    key_database(options);
  });
}

ScanStatus McpFilter::process(Direction dir, std::string_view line, MessageResult& r, bool padded) {
  r = MessageResult{};
  r.ctx.direction = to_string(dir);
  Redactor& rd = redactor_.current();  // one set for the whole message
  struct Release {
    Redactor& rd;
    bool on;
    ~Release() {
      if (on) rd.release_memory();
    }
  } release{rd, options_.release_above != 0 && line.size() >= options_.release_above};
  rd.set_parallel(options_.parallel);
  // Textual blobs first: decoded, masked and re-encoded, so they stay valid base64. What is left
  // (a known value's base64 form inside binary data) the JSON pass below masks in place.
  std::string blobbed;
  bool blob_masked = false;
  const KeyHits keys = find_keys(line, rd.set().options());
  if (keys.blob) {
    // Decoding blobs re-serializes the message, recursively: nesting past what simdjson accepts
    // would exhaust the stack. Such a message is refused (fail closed), not forwarded unscanned.
    if (nesting_exceeds(line, kMaxBlobNesting)) return ScanStatus::kError;
    try {
      blob_masked = redact_blobs(rd, std::string(line), blobbed, r.findings);
    } catch (const std::bad_alloc&) {
      return ScanStatus::kError;
    }
  }
  std::string_view unit = blob_masked ? std::string_view(blobbed) : line;
  std::string masked;
  JsonInfo info;
  // The top-level fields, from the parse that validates the message.
  std::optional<Envelope> top;
  info.on_parsed = [&top](const simdjson::dom::element& root) {
    simdjson::dom::object obj;
    if (root.get_object().get(obj) == simdjson::SUCCESS) top = dom_envelope(obj);
  };
  RedactStatus st = rd.redact_json(unit, masked, r.findings, &info, false, padded && !blob_masked);
  if (st == RedactStatus::kError) return ScanStatus::kError;
  r.invalid_json = !info.valid;
  if (blob_masked && st == RedactStatus::kClean) {
    masked.swap(blobbed);
    st = RedactStatus::kMasked;
  }
  if (st == RedactStatus::kClean) {
    if (top && (top->result || top->error) && !top->id.empty()) {
      // Its request is answered: forgotten now, so the tracker holds the requests in flight,
      // not the last 10,000 (a std::map of them, growing, was 4% of the wrap's CPU for 1 KB
      // round trips).
      tracker_.take(dir, top->id);
    } else if (top) {
      // A request of any size, as a masked one is (context_from): its fields come from the parse
      // that validated it, so only a batch, parsed again below, is limited to request sizes.
      remember(tracker_, dir, *top);
    } else if (info.valid && keys.method && line.size() <= kMaxRequestBytes) {
      note_parsed(tracker_, dir, line);  // a batch
    }
    return ScanStatus::kOk;
  }
  bool is_response = false, is_tool_result = false;
  // The context from the parse that validated the message when it was this line's (a message
  // whose blobs were re-serialized is read again as it came); reading it again cost a copy of the
  // message and simdjson's first stage over it, 0.3-0.4 ms for a masked 1 MB result.
  if (info.valid && top && !blob_masked)
    context_from(tracker_, dir, *top, r, &is_response, &is_tool_result);
  else if (info.valid)
    fill_context(dir, line, r, &is_response, &is_tool_result);

  bool block = false, all_alert = true;
  for (const Finding& f : r.findings) {
    if (f.action == Action::kBlock) block = true;
    if (f.action != Action::kAlert) all_alert = false;
  }
  if (block && info.valid && (is_response || r.ctx.id.empty())) {
    std::set<std::string> ids;
    for (const Finding& f : r.findings) ids.insert(f.rule_id);
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id;
    r.blocked = true;
    if (!is_response) {
      r.kind = MessageResult::Kind::kDrop;  // a notification: nothing to answer
      return ScanStatus::kOk;
    }
    const std::string text = "mcp-scrub blocked this " +
                             std::string(is_tool_result ? "tool result" : "response") +
                             ": it contained secrets (rules: " + list + ")";
    r.kind = MessageResult::Kind::kReplace;
    if (is_tool_result) {
      nlohmann::json t = text;
      r.out = "{\"jsonrpc\":\"2.0\",\"id\":" + r.ctx.id +
              ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":" + t.dump() +
              "}],\"isError\":true}}";
    } else {
      r.out = jsonrpc_error(r.ctx.id, -32001, text);
    }
    return ScanStatus::kOk;
  }
  if (all_alert) return ScanStatus::kOk;  // monitor mode: forward unchanged, report only
  r.kind = MessageResult::Kind::kReplace;
  r.out = std::move(masked);
  return ScanStatus::kOk;
}

}  // namespace scrub
