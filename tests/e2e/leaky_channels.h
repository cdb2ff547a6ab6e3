// The leaky MCP test server (tests/tools/leaky_server) as every transport's end-to-end tests
// see it: its fake secrets, request builders, and what a client must get back for a request on
// every channel, whichever transport (stdio wrap, tcp) carried it.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "filter/literal_variants.h"
#include "run.h"

namespace scrub::test::leaky {

using nlohmann::json;

inline const std::string kSecret = "Zq8vR2xkPm4TnW7yL3bH";  // fake, a known value (env)
inline const std::string kPass = "S3cretPassw0rdX9";
inline const std::string kDbUrl = "postgresql://app:" + kPass + "@db.internal:5432/prod";
inline const std::string kToken = "ghp_Fk7Qm2Xr9Lp4Ws8Tn3Vb6Yc1Hd5Jg0Ze2Ua4";  // fake, found by a rule

// A scratch directory with a fingerprint key, the alert file and the server's environment.
struct LeakyFixture {
  TempDir dir;
  std::string key = dir.file("fp.key", "0123456789abcdef0123456789abcdef\n");
  std::string alerts = dir.path + "/alerts.jsonl";
  std::vector<std::string> env = {"LEAK_SECRET=" + kSecret, "LEAK_DB_URL=" + kDbUrl,
                                  "LEAK_TOKEN=" + kToken};
  // The alerts written so far, without their timestamps.
  std::vector<json> read_alerts() const {
    std::vector<json> out;
    for (const auto& l : lines(read_file(alerts))) {
      json j = json::parse(l);
      j.erase("time");
      out.push_back(j);
    }
    return out;
  }
};

inline std::string tool_call(int id, const std::string& name, const std::string& args = "{}") {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"tools/call","params":{"name":")" + name + R"(","arguments":)" + args + "}}";
}
inline std::string request(int id, const std::string& method, const std::string& params = "{}") {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":")" + method +
         R"(","params":)" + params + "}";
}

// No secret in any form: raw, and inside every base64 payload once decoded.
inline void check_no_secret(const std::string& text) {
  for (const std::string& s : {kSecret, kPass, kToken, std::string("Zq8vR2"), std::string("S3cretPa")})
    CHECK(text.find(s) == std::string::npos);
  for (const auto& l : lines(text)) {
    json j = json::parse(l, nullptr, false);
    if (j.is_discarded()) continue;
    std::vector<const json*> stack{&j};
    while (!stack.empty()) {
      const json* n = stack.back();
      stack.pop_back();
      if (n->is_structured())
        for (const auto& c : *n) stack.push_back(&c);
      if (n->is_object())
        for (const char* k : {"data", "blob"})
          if (n->contains(k) && (*n)[k].is_string()) {
            std::string decoded;
            if (scrub::base64_decode((*n)[k].get<std::string>(), decoded))
              CHECK(decoded.find(kSecret) == std::string::npos);
          }
    }
  }
}

inline const std::vector<std::string>& channel_requests() {
  static const std::vector<std::string> reqs = {
      request(1, "initialize"),
      request(2, "tools/list"),
      tool_call(3, "leak_text"),
      tool_call(4, "leak_structured"),
      tool_call(5, "leak_nested_json"),
      tool_call(6, "leak_escaped"),
      tool_call(7, "leak_error"),
      tool_call(8, "leak_is_error"),
      tool_call(9, "leak_resource"),
      tool_call(10, "leak_links"),
      tool_call(11, "leak_meta"),
      R"({"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"leak_notifications","arguments":{"delay_ms":0},"_meta":{"progressToken":"p1"}}})",
      tool_call(13, "leak_sampling"),
      tool_call(14, "leak_elicitation"),
      request(15, "resources/read", R"({"uri":"file:///app/.env"})"),
      request(16, "prompts/get", R"({"name":"debug_config"})"),
      request(17, "completion/complete"),
      tool_call(18, "leak_stderr"),
      tool_call(19, "leak_split"),
      tool_call(20, "leak_non_json"),
      tool_call(21, "leak_crlf"),
      R"([{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"leak_text","arguments":{}}}])",
  };
  return reqs;
}

// What the client got for channel_requests(): every channel masked, every message valid.
inline void check_channels(const std::string& out) {
  check_no_secret(out);
  std::map<std::string, std::string> by_id;
  int non_json = 0;
  std::vector<std::string> server_requests, notifications;
  for (auto l : lines(out)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    json j = json::parse(l, nullptr, false);
    if (j.is_discarded()) {
      ++non_json;
      CHECK(l == "npm WARN something [REDACTED:known-secret]");
      continue;
    }
    if (j.is_array()) {
      by_id["batch"] = l;
    } else if (j.contains("id") && !j.contains("method")) {
      by_id[j["id"].dump()] = l;
    } else if (j.contains("id")) {
      server_requests.push_back(l);
    } else {
      notifications.push_back(l);
    }
  }
  CHECK(non_json == 1);
  for (int id = 1; id <= 21; ++id) CHECK(by_id.count(std::to_string(id)) == 1);
  CHECK(by_id["3"] == R"({"result":{"content":[{"type":"text","text":"The deploy key is [REDACTED:known-secret], keep it safe."}]},"jsonrpc":"2.0","id":3})");
  CHECK(by_id["4"] == R"({"result":{"content":[{"type":"text","text":"{\"env\":{\"DATABASE_URL\":\"[REDACTED:known-secret]\"}}"}],"structuredContent":{"env":{"DATABASE_URL":"[REDACTED:known-secret]"}}},"jsonrpc":"2.0","id":4})");
  CHECK(by_id["6"] == R"({"result":{"content":[{"type":"text","text":"secret=[REDACTED:known-secret]"},{"type":"text","text":"https:\/\/hooks.example.invalid\/notify?key=[REDACTED:known-secret]"},{"type":"text","text":"dsn=[REDACTED:known-secret]"}]},"jsonrpc":"2.0","id":6})");
  CHECK(by_id["7"] == R"({"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"Database connection failed for key [REDACTED:known-secret]","data":{"dsn":"[REDACTED:known-secret]"}}})");
  CHECK(by_id["8"] == R"({"result":{"content":[{"type":"text","text":"Authentication failed for token [REDACTED:github-pat]"}],"isError":true},"jsonrpc":"2.0","id":8})");
  json res9 = json::parse(by_id["9"]);
  std::string blob;
  REQUIRE(scrub::base64_decode(res9["result"]["content"][1]["resource"]["blob"].get<std::string>(), blob));
  CHECK(blob == "api_key = [REDACTED:known-secret]\n");
  CHECK(by_id["15"] == R"({"jsonrpc":"2.0","id":15,"result":{"contents":[{"uri":"file:///app/.env","mimeType":"text/plain","text":"DATABASE_URL=[REDACTED:known-secret]\nAPI_KEY=[REDACTED:known-secret]\nDEBUG=false\n"}]}})");
  CHECK(by_id["17"] == R"({"jsonrpc":"2.0","id":17,"result":{"completion":{"values":["production","[REDACTED:known-secret]"],"total":2,"hasMore":false}}})");
  CHECK(by_id["19"] == R"({"result":{"content":[{"type":"text","text":"split line with key [REDACTED:known-secret]"}]},"jsonrpc":"2.0","id":19})");
  CHECK(by_id["batch"] == R"([{"result":{"content":[{"type":"text","text":"The deploy key is [REDACTED:known-secret], keep it safe."}]},"jsonrpc":"2.0","id":22}])");
  // Server requests (ids 0 and 1, colliding with the client's) and notifications are masked.
  REQUIRE(server_requests.size() == 2);
  CHECK(server_requests[0] == R"({"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"Summarize the config. The API key is [REDACTED:known-secret]."}}],"systemPrompt":"You are a helper. Internal key: [REDACTED:known-secret]","maxTokens":100}})");
  CHECK(server_requests[1].find("Confirm the token [REDACTED:github-pat]") != std::string::npos);
  REQUIRE(notifications.size() == 2);
  CHECK(notifications[0] == R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"error","logger":"leaky","data":{"msg":"connection pool failure","conn":"[REDACTED:known-secret]"}}})");
  CHECK(notifications[1] == R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":1,"total":2,"message":"step 1 of 2 using key [REDACTED:known-secret]"}})");
  // CRLF framing is kept.
  bool crlf = false;
  for (const auto& l : lines(out)) crlf |= l.find("\"id\":21") != std::string::npos && l.back() == '\r';
  CHECK(crlf);
}

}  // namespace scrub::test::leaky
