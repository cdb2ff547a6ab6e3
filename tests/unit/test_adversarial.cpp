// Adversarial inputs, each with a defined outcome that the test asserts: masked, reported,
// or refused with a clear error. None may crash, hang or grow memory without bound.
#include <malloc.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/stream.h"
#include "filter/json_string.h"
#include "filter/literal_variants.h"
#include "filter/mcp_filter.h"
#include "property_cases.h"
#include "tests/fuzz/fuzz_common.h"
#include "transports/fd_io.h"
#include "transports/line_reader.h"

using namespace scrub;
using namespace scrub::test;
using nlohmann::json;

namespace {

const std::string kKnown = "Zq8vR2xkPm4TnW7yL3bH";  // fake, registered as a known value
const std::string kAdvGhp = "ghp_" + fake(36, 3);       // fake, found by a rule

const char* kAdvRules = R"(
[[rules]]
id = "github-pat"
regex = '''\b(ghp_[0-9A-Za-z]{36})\b'''
keywords = ["ghp_"]
)";

std::shared_ptr<const CompiledSet> small_set() {
  static auto set = make_set(kAdvRules, {{"env:KNOWN", kKnown}});
  return set;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Chunks a LineReader hands out for `parts`, each written to a pipe before one read.
std::vector<std::pair<std::string, bool>> frame(const std::vector<std::string>& parts, size_t max_line) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  size_t step = 0;
  bool closed = false;
  LineReader reader(fds[0], max_line, [&] {
    if (step < parts.size()) {
      REQUIRE(write_all(fds[1], parts[step]));
    } else if (!closed) {
      ::close(fds[1]);
      closed = true;
    }
    ++step;
  });
  std::vector<std::pair<std::string, bool>> out;
  LineReader::Chunk c;
  while (reader.next(c) == LineReader::Status::kData) out.push_back({std::string(c.data), c.line_end});
  if (!closed) ::close(fds[1]);
  ::close(fds[0]);
  return out;
}

}  // namespace

TEST_CASE("adversarial: a line of 0 bytes", "[adversarial]") {
  Redactor r(small_set());
  auto t = redact_text(r, "");
  CHECK(t.status == RedactStatus::kClean);
  auto j = redact_json(r, "");
  CHECK(j.status == RedactStatus::kClean);
  CHECK_FALSE(j.valid_json);  // reported as not JSON by the caller, forwarded as the empty line
  EngineHolder holder(small_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult m;
  REQUIRE(filter.process(Direction::kServerToClient, "", m) == ScanStatus::kOk);
  CHECK(m.kind == MessageResult::Kind::kForward);
  CHECK(m.findings.empty());
  auto chunks = frame({"\n\n"}, 64);
  REQUIRE(chunks.size() == 2);
  CHECK(chunks[0] == std::make_pair(std::string(), true));
  CHECK(chunks[1] == std::make_pair(std::string(), true));
}

TEST_CASE("adversarial: a line of exactly the limit is whole however it arrives, one past is cut",
          "[adversarial][framer]") {
  const size_t limit = 64;
  const std::string exact(limit, 'a'), over(limit + 1, 'b');
  // Regression: a line of exactly max_line bytes whose "\n" came in a later read was handed out
  // as an overlong piece plus an empty end, so the wrap refused a message within the limit.
  for (const auto& parts : std::vector<std::vector<std::string>>{
           {exact + "\n"}, {exact, "\n"}, {exact.substr(0, 10), exact.substr(10), "\n"}}) {
    auto chunks = frame(parts, limit);
    REQUIRE(chunks.size() == 1);
    CHECK(chunks[0].first == exact);
    CHECK(chunks[0].second);
  }
  // Without a newline at all (end of file), exactly the limit is still one line.
  auto eof = frame({exact}, limit);
  REQUIRE(eof.size() == 1);
  CHECK(eof[0] == std::make_pair(exact, true));
  // One past the limit: a piece of the limit, then the rest, however it arrives.
  for (const auto& parts : std::vector<std::vector<std::string>>{{over + "\n"}, {over, "\n"}, {exact, "b\n"}}) {
    auto chunks = frame(parts, limit);
    REQUIRE(chunks.size() == 2);
    CHECK(chunks[0] == std::make_pair(parts[0].substr(0, limit), false));
    CHECK(chunks[1] == std::make_pair(std::string("b"), true));
  }
}

TEST_CASE("adversarial: the filter loop treats a line of exactly the limit as a line, one past as oversized",
          "[adversarial][framer]") {
  EngineHolder holder(small_set());
  FollowingRedactor following(holder);
  for (size_t extra : {0u, 1u}) {
    std::string line = kKnown + std::string(64 + extra - kKnown.size(), 'x');
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    size_t step = 0;
    std::string out;
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { out.append(s); };
    cb.flush = [&] {  // the line, then its newline in a later read
      if (step == 0) write_all(fds[1], line);
      if (step == 1) write_all(fds[1], "\n");
      if (step == 2) ::close(fds[1]);
      ++step;
    };
    StreamStats stats;
    REQUIRE(process_stream(fds[0], "t", StreamMode::kText, 64, following, cb, stats, nullptr) ==
            StreamResult::kOk);
    ::close(fds[0]);
    INFO("line of limit + " << extra);
    CHECK(stats.oversized == extra);
    CHECK(stats.findings == 1);
    CHECK(out == "[REDACTED:known-secret]" + line.substr(kKnown.size()) + "\n");
  }
}

TEST_CASE("adversarial: 10,000 levels of nesting", "[adversarial][json]") {
  Redactor r(small_set());
  SECTION("arrays: over simdjson's depth limit, scanned as text and reported, still masked") {
    std::string deep = std::string(10000, '[') + "\"" + kKnown + "\"" + std::string(10000, ']');
    auto res = redact_json(r, deep);
    CHECK_FALSE(res.valid_json);
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.out == std::string(10000, '[') + "\"[REDACTED:known-secret]\"" + std::string(10000, ']'));
  }
  // Found by the ASan build: decoding blobs re-serializes the message recursively (nlohmann's
  // dump), and 10,000 levels overflowed the stack; later, under the CI's -O0 ASan build, so did
  // 1,000. Past 256 levels a message holding a blob is now refused, fail closed: a response
  // becomes an error, nothing unscanned goes out.
  // A result whose blob sits in `wrappers` nested objects (with "result" and the blob's own
  // object, wrappers + 2 levels), and what the MCP stage makes of it.
  const std::string blob = base64_encode("key " + kKnown + "\n");
  auto process_nested = [&](int wrappers, MessageResult& m) {
    std::string open, close;
    for (int i = 0; i < wrappers; ++i) {
      open += "{\"a\":";
      close += "}";
    }
    const std::string msg = R"({"jsonrpc":"2.0","id":1,"result":)" + open + R"({"blob":")" + blob +
                            R"(","mimeType":"text/plain"})" + close + "}";
    EngineHolder holder(small_set());
    RequestTracker tracker;
    McpFilter filter(holder, tracker, {});
    return filter.process(Direction::kServerToClient, msg, m);
  };
  MessageResult m;
  SECTION("objects with a textual blob 10,000 levels deep: refused (fail closed)") {
    CHECK(process_nested(10000, m) == ScanStatus::kError);
  }
  SECTION("objects with a textual blob 257 levels deep: refused (fail closed)") {
    CHECK(process_nested(255, m) == ScanStatus::kError);
  }
  SECTION("objects with a textual blob 256 levels deep: the MCP stage masks it and stays JSON") {
    REQUIRE(process_nested(254, m) == ScanStatus::kOk);
    REQUIRE(m.kind == MessageResult::Kind::kReplace);
    CHECK(m.out.find(blob) == std::string::npos);
    CHECK(m.out.find(kKnown) == std::string::npos);
    CHECK(m.out.find(base64_encode("key [REDACTED:known-secret]\n")) != std::string::npos);
  }
}

TEST_CASE("adversarial: long runs of backslashes", "[adversarial][json]") {
  Redactor r(small_set());
  auto t0 = std::chrono::steady_clock::now();
  // An even run is a valid string of backslashes: clean, forwarded as is.
  std::string even = "{\"a\":\"" + std::string(1 << 20, '\\') + "\"}";
  CHECK(redact_json(r, even).status == RedactStatus::kClean);
  // An odd run escapes the closing quote: not JSON; scanned as text.
  std::string odd = "{\"a\":\"" + std::string((1 << 20) + 1, '\\') + "\"}";
  auto o = redact_json(r, odd);
  CHECK_FALSE(o.valid_json);
  CHECK(o.status == RedactStatus::kClean);
  // Backslash runs around a secret and many escaped quotes: masked, still JSON.
  std::string mixed = "{\"a\":\"";
  for (int i = 0; i < 20000; ++i) mixed += "\\\\\\\\\\\"";
  mixed += kKnown;
  for (int i = 0; i < 20000; ++i) mixed += "\\\\\\\"";
  mixed += "\"}";
  auto m = redact_json(r, mixed);
  REQUIRE(m.status == RedactStatus::kMasked);
  CHECK(m.valid_json);
  CHECK(m.out.find(kKnown) == std::string::npos);
  CHECK_FALSE(json::parse(m.out, nullptr, false).is_discarded());
  CHECK(seconds_since(t0) < 20);
}

TEST_CASE("adversarial: invalid UTF-8, lone surrogates and NUL bytes", "[adversarial][json]") {
  Redactor r(small_set());
  SECTION("invalid UTF-8 in a JSON line: not JSON, masked as text, other bytes kept") {
    std::string line = "{\"a\":\"\xff\xfe " + kKnown + " \xc3\"}";
    auto res = redact_json(r, line);
    CHECK_FALSE(res.valid_json);
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.out == "{\"a\":\"\xff\xfe [REDACTED:known-secret] \xc3\"}");
  }
  SECTION("lone surrogates in \\u escapes: not JSON to simdjson (reported), the secret masked") {
    std::string line = R"({"a":"\ud800)" + kKnown + R"(\udc00 \ud83d"})";
    auto res = redact_json(r, line);
    CHECK_FALSE(res.valid_json);
    REQUIRE(res.status == RedactStatus::kMasked);
    // Only the secret's bytes change: the lone surrogates stay as the server wrote them.
    CHECK(res.out == R"({"a":"\ud800[REDACTED:known-secret]\udc00 \ud83d"})");
  }
  // Regression: a line simdjson rejects (a lone surrogate) was masked as plain text only, so a
  // secret written with \u escapes passed, although lenient clients (JSON.parse, Python's json)
  // accept lone surrogates and decode the escapes.
  SECTION("a secret hidden in \\u escapes next to a lone surrogate is masked") {
    std::string line = R"({"jsonrpc":"2.0","id":1,"result":{"text":"\ud83d\ude00)" +
                       json_str_uescaped(kKnown, kKnown).substr(1);
    line.pop_back();
    line += R"( \ud800"}})";
    auto res = redact_json(r, line);
    CHECK_FALSE(res.valid_json);
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.out.find("\\u005A") == std::string::npos);  // the escaped first character
    std::string decoded;
    REQUIRE(json_unescape(res.out, decoded, nullptr));
    CHECK(decoded.find(kKnown) == std::string::npos);
    CHECK(res.out.find("[REDACTED:known-secret]") != std::string::npos);
  }
  SECTION("and inside JSON nested in a string, past simdjson's depth limit") {
    std::string inner = std::string(1100, '[') + json_str_uescaped(kKnown, kKnown) + std::string(1100, ']');
    std::string line = R"({"text":)" + json_str(inner) + "}";
    auto res = redact_json(r, line);
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.valid_json);
    json j = json::parse(res.out);
    std::string decoded;
    REQUIRE(json_unescape(j["text"].get<std::string>(), decoded, nullptr));
    CHECK(decoded.find(kKnown) == std::string::npos);
  }
  SECTION("NUL bytes: raw in text, escaped in JSON") {
    std::string text = std::string("a\0b ", 4) + kKnown + std::string("\0\0", 2);
    auto t = redact_text(r, text);
    REQUIRE(t.status == RedactStatus::kMasked);
    CHECK(t.out == std::string("a\0b [REDACTED:known-secret]\0\0", 29));
    std::string raw_nul = "{\"a\":\"" + std::string("\0", 1) + kKnown + "\"}";  // not JSON
    auto n = redact_json(r, raw_nul);
    CHECK_FALSE(n.valid_json);
    CHECK(n.out.find(kKnown) == std::string::npos);
    auto e = redact_json(r, R"({"a":"\u0000)" + kKnown + R"(\u0000"})");
    REQUIRE(e.status == RedactStatus::kMasked);
    CHECK(e.out == R"({"a":"\u0000[REDACTED:known-secret]\u0000"})");
  }
}

TEST_CASE("adversarial: 100,000 matches in one line are all masked in bounded time", "[adversarial]") {
  Redactor r(small_set());
  auto t0 = std::chrono::steady_clock::now();
  std::string text;
  for (int i = 0; i < 100000; ++i) text += (i % 2 ? kKnown : kAdvGhp) + " ";
  auto res = redact_text(r, text);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.findings.size() == 100000);
  CHECK(res.out.find(kKnown) == std::string::npos);
  CHECK(res.out.find("ghp_") == std::string::npos);

  std::string arr = "[";
  for (int i = 0; i < 100000; ++i) arr += (i ? ",\"" : "\"") + kKnown + "\"";
  arr += "]";
  auto j = redact_json(r, arr);
  REQUIRE(j.status == RedactStatus::kMasked);
  CHECK(j.findings.size() == 100000);
  CHECK(j.out.find(kKnown) == std::string::npos);
  CHECK_FALSE(json::parse(j.out, nullptr, false).is_discarded());
  CHECK(seconds_since(t0) < 30);
}

TEST_CASE("adversarial: a rule that matches every lowercase word", "[adversarial]") {
  // Pathological but compilable: every run of lowercase letters is a "secret".
  auto set = make_set(R"(
[[rules]]
id = "every-word"
regex = '''[a-z]{1,1000}'''
)",
                      {{"env:KNOWN", kKnown}});
  Redactor r(set);
  auto t0 = std::chrono::steady_clock::now();
  SECTION("text: every word masked, and the masks are not masked again") {
    auto res = redact_text(r, "hello world, " + kKnown + " ok");
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.out == "[REDACTED:every-word] [REDACTED:every-word], [REDACTED:known-secret] [REDACTED:every-word]");
    auto again = redact_text(r, res.out);
    CHECK(again.status == RedactStatus::kClean);
  }
  SECTION("JSON: every string's words masked, keys too; the result is JSON and rescans clean") {
    auto res = redact_json(r, R"({"msg":"hello world","n":1,"k":")" + kKnown + "\"}");
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.valid_json);
    CHECK(res.out == R"({"[REDACTED:every-word]":"[REDACTED:every-word] [REDACTED:every-word]","[REDACTED:every-word]":1,"[REDACTED:every-word]":"[REDACTED:known-secret]"})");
    CHECK(redact_json(r, res.out).status == RedactStatus::kClean);
  }
  SECTION("a megabyte of lowercase letters: bounded time, nothing left") {
    std::string big;
    for (int i = 0; i < (1 << 20) / 8; ++i) big += "abcdefg ";
    auto res = redact_text(r, big);
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.findings.size() == (1u << 20) / 8);
    CHECK(res.out.find("abc") == std::string::npos);
  }
  CHECK(seconds_since(t0) < 30);
}

// Regression: an overlong line is scanned in pieces, and the tail kept for the next piece started
// at the secret itself, so the context its rule needs (`password = `) went out with the previous
// piece and the secret, unmatched without it, came through.
TEST_CASE("adversarial: an overlong line cut between a secret's context and the secret", "[adversarial][framer]") {
  auto set = make_set(R"(
[[rules]]
id = "pw"
regex = '''password\s*=\s*([A-Za-z0-9]{12,40})'''
)");
  EngineHolder holder(set);
  FollowingRedactor following(holder);
  const std::string secret = "Xk29vLq7RtPw4abcQ";
  for (size_t pad = 0; pad < 128; ++pad) {
    std::string line = std::string(pad, '.') + "password = " + secret + std::string(150, '-');
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(write_all(fds[1], line + "\n"));
    ::close(fds[1]);
    std::string out;
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { out.append(s); };
    StreamStats stats;
    REQUIRE(process_stream(fds[0], "t", StreamMode::kText, 64, following, cb, stats, nullptr) ==
            StreamResult::kOk);
    ::close(fds[0]);
    INFO("pad " << pad);
    CHECK(stats.oversized == 1);
    CHECK(out == std::string(pad, '.') + "password = [REDACTED:pw]" + std::string(150, '-') + "\n");
  }
}

// Regression: a rule whose secret may hold `"` (`[^\s\\]{1,200}`, as .netrc and many assignment
// rules have) matched past the end of a JSON string in the raw scan, and every key and value it
// ran over was masked: the response lost its "jsonrpc" and its id.
TEST_CASE("adversarial: a secret at the end of a JSON string does not take the id with it", "[adversarial][json]") {
  auto set = make_set(R"(
[[rules]]
id = "kv"
regex = '''password\s+([^\s\\]{1,200})'''
)");
  Redactor r(set);
  auto res = redact_json(r, R"({"result":{"text":"login password 9yI6thigeop1%R"},"jsonrpc":"2.0","id":"req-12"})");
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == R"({"result":{"text":"login password [REDACTED:kv]"},"jsonrpc":"2.0","id":"req-12"})");
  CHECK(redact_json(r, res.out).status == RedactStatus::kClean);
}

// Found by fuzz_json_line: the partial mask kept `keepPrefix` bytes of the secret even when that
// cut a multi-byte character in half, so the masked JSON was not valid UTF-8, hence not JSON.
TEST_CASE("adversarial: a partial mask never keeps half a character", "[adversarial][json]") {
  auto set = make_set(R"(
[[rules]]
id = "pfx"
regex = '''fzk_([^\s"',;\\]{3,40})'''
mask = "partial"
keepPrefix = 5
)");
  Redactor r(set);
  auto res = redact_json(r, "{\"k\":\"fzk_\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" "abc\"}");
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == "{\"k\":\"fzk_\xc3\xa9\xc3\xa9[REDACTED:pfx]\"}");
  CHECK_FALSE(json::parse(res.out, nullptr, false).is_discarded());
  auto text = redact_text(r, "fzk_\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac!");
  CHECK(text.out == "fzk_\xe2\x82\xac[REDACTED:pfx]");
}

// Found by fuzz_json_line: in a line that is not JSON, text masking of a span that held a `"`
// shifted which bytes the lenient pass took for strings, and a known value written with \u
// escapes, inside a string as the line's own quotes delimit it, came through. The lenient pass now
// reads the line as it came, then the text pass masks the rest.
TEST_CASE("adversarial: text masking in a line that is not JSON cannot hide an escaped value", "[adversarial][json]") {
  auto set = make_set(R"(
[[rules]]
id = "kv"
regex = '''password\s+([^\s\\]{1,200})'''
)",
                      {{"env:KNOWN", kKnown}});
  Redactor r(set);
  const std::string escaped = "\\u005A" + kKnown.substr(1);
  const std::string line = "[\"\x01password x\"y \"z\", \"" + escaped + "\"]";
  auto res = redact_json(r, line);
  CHECK_FALSE(res.valid_json);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out.find(escaped) == std::string::npos);
  CHECK(res.out.find(kKnown.substr(1)) == std::string::npos);
  // (The rule's match runs past the first string's closing quote; only the part inside is masked.)
  CHECK(res.out == "[\"\x01password [REDACTED:kv]\"y \"z\", \"[REDACTED:known-secret]\"]");
}

// Found by fuzz_framer: a line that opens a private key without closing it is masked from the
// BEGIN marker on, and what came before the marker was written without being scanned; likewise
// what follows an END marker.
TEST_CASE("adversarial: text around a private key's markers is scanned", "[adversarial][pem]") {
  EngineHolder holder(small_set());
  FollowingRedactor following(holder);
  const std::string input = "key " + kKnown + " -----BEGIN RSA PRIVATE KEY-----MIIEow\n" +
                            "MIIEowIBAAKCAQEAv1234\n" +
                            "xyz-----END RSA PRIVATE KEY----- then " + kAdvGhp + "\n";
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(write_all(fds[1], input));
  ::close(fds[1]);
  std::string out;
  StreamCallbacks cb;
  cb.output = [&](std::string_view s) { out.append(s); };
  StreamStats stats;
  REQUIRE(process_stream(fds[0], "t", StreamMode::kText, 1 << 16, following, cb, stats, nullptr) ==
          StreamResult::kOk);
  ::close(fds[0]);
  CHECK(out ==
        "key [REDACTED:known-secret] -----BEGIN RSA PRIVATE KEY-----[REDACTED:private-key-block]\n"
        "[REDACTED:private-key-block]\n"
        "[REDACTED:private-key-block]-----END RSA PRIVATE KEY----- then [REDACTED:github-pat]\n");
}

// `input` through the text filter loop from a file, as `filter --format text` reads one.
static StreamResult stream_text_file(const EngineHolder& holder, const std::string& input, size_t threads,
                                     size_t max_line, const StreamCallbacks& cb, StreamStats& stats) {
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  REQUIRE(write_all(::fileno(f), input));
  REQUIRE(::lseek(::fileno(f), 0, SEEK_SET) == 0);
  FollowingRedactor following(holder);
  StreamResult r =
      process_stream(::fileno(f), "t", StreamMode::kText, max_line, following, cb, stats, nullptr, threads);
  std::fclose(f);
  return r;
}

// The private-key tracker follows the lines as the batches of the filter loop leave (4,096 lines
// a batch): a key's BEGIN marker on the last line of a batch, or a body cut between two batches,
// still masks every body line, on one thread or two.
TEST_CASE("adversarial: a private key split between two batches is masked whole",
          "[adversarial][pem]") {
  EngineHolder holder(small_set());
  for (size_t begin_at : {4093, 4094, 4095, 4096, 4097}) {  // 0-based line of the BEGIN marker
    for (size_t threads : {1, 2}) {
      for (const std::string eol : {"\n", "\r\n"}) {
        INFO("BEGIN on line " << begin_at << ", threads " << threads << ", CRLF " << (eol.size() == 2));
        std::string input, expect;
        for (size_t i = 0; i < begin_at; ++i) {
          input += "line " + std::to_string(i) + eol;
          expect += "line " + std::to_string(i) + eol;
        }
        input += "-----BEGIN RSA PRIVATE KEY-----" + eol;
        expect += "-----BEGIN RSA PRIVATE KEY-----" + eol;
        const std::string body = "MIIEowIBAAKCAQEAvfakefakefake";
        for (int k = 0; k < 3; ++k) {
          input += body + std::to_string(k) + eol;
          expect += "[REDACTED:private-key-block]" + eol;
        }
        input += "-----END RSA PRIVATE KEY-----" + eol + "after" + eol;
        expect += "-----END RSA PRIVATE KEY-----" + eol + "after" + eol;
        std::string out;
        std::vector<size_t> lengths;
        StreamCallbacks cb;
        cb.output = [&](std::string_view s) { out.append(s); };
        cb.finding = [&](const Finding& fi, const AlertContext&) { lengths.push_back(fi.length); };
        StreamStats stats;
        CHECK(stream_text_file(holder, input, threads, 1 << 16, cb, stats) == StreamResult::kOk);
        CHECK(out == expect);
        CHECK(stats.findings == 3);
        // Each body line is reported whole, without the "\r" of its ending.
        CHECK(lengths == std::vector<size_t>(3, body.size() + 1));
      }
    }
  }
}

// Line mode: an env list's value line scans clean alone; it is redacted behind the line before
// it, in the same batch or (the name line ending one batch) behind the previous batch's last
// line. An overlong line between the two leaves them apart.
TEST_CASE("adversarial: an env list's value line is masked behind its name line in line mode",
          "[adversarial][framer]") {
  EngineHolder holder(builtin_set());
  const std::string value = fake(18, 61);
  auto run = [&](const std::string& input, size_t threads, size_t max_line, std::string& out,
                 std::vector<uint64_t>& lines) {
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { out.append(s); };
    cb.finding = [&](const Finding& fi, const AlertContext& c) {
      CHECK(fi.rule_id == "env-list-secret-value");
      lines.push_back(c.line);
    };
    StreamStats stats;
    CHECK(stream_text_file(holder, input, threads, max_line, cb, stats) == StreamResult::kOk);
  };
  for (size_t name_at : {0, 1, 4094, 4095, 4096}) {  // 0-based line of the name line
    for (size_t threads : {1, 2}) {
      for (const std::string eol : {"\n", "\r\n"}) {
        INFO("name on line " << name_at << ", threads " << threads << ", CRLF " << (eol.size() == 2));
        std::string input, expect;
        for (size_t i = 0; i < name_at; ++i) {
          input += "line " + std::to_string(i) + eol;
          expect += "line " + std::to_string(i) + eol;
        }
        input += "        - name: DB_PASSWORD" + eol + "          value: " + value + eol + "after" + eol;
        expect += "        - name: DB_PASSWORD" + eol +
                  "          value: [REDACTED:env-list-secret-value]" + eol + "after" + eol;
        std::string out;
        std::vector<uint64_t> lines;
        run(input, threads, 1 << 16, out, lines);
        CHECK(out == expect);
        CHECK(lines == std::vector<uint64_t>{name_at + 2});
      }
    }
  }
  // Not the line before: an overlong line came between them.
  const std::string input = "        - name: DB_PASSWORD\n" + std::string(300, 'x') +
                            "\n          value: " + value + "\n";
  std::string out;
  std::vector<uint64_t> lines;
  run(input, 1, 128, out, lines);
  CHECK(out == input);
  CHECK(lines.empty());
  // A pack whose `\A` rules the batch scan out: every clean line is paired, the same output.
  auto anchored = make_set(R"(
[[rules]]
id = "two-line"
regex = '''name: DB_PASSWORD\n[ \t]*value: ([A-Za-z0-9]{8,64})'''
[[rules]]
id = "anchored"
regex = '''\Azzz_([a-z]{8})'''
)");
  REQUIRE_FALSE(Redactor(anchored).scanner().lines_prefilter());
  EngineHolder anchored_holder(anchored);
  for (size_t threads : {1, 2}) {
    std::string got;
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { got.append(s); };
    StreamStats stats;
    CHECK(stream_text_file(anchored_holder, "x\n- name: DB_PASSWORD\n  value: " + value + "\ny\n",
                           threads, 1 << 16, cb, stats) == StreamResult::kOk);
    CHECK(got == "x\n- name: DB_PASSWORD\n  value: [REDACTED:two-line]\ny\n");
    CHECK(stats.findings == 1);
  }
}

// Known gap, found by fuzz_rules (not fixed: it needs a decision on the engine's character
// semantics). RE2 confirms rule hits with UTF-8 semantics, as gitleaks' Go regexp does, but
// Hyperscan, which finds the hits, runs in byte mode (the input may be any bytes, and Hyperscan's
// UTF-8 mode is undefined on invalid UTF-8). Where the two disagree on a non-ASCII character,
// `.`, `[^...]` or `\S` with a bounded repeat, Hyperscan reports nothing and the match is lost:
// `x(.{3})y` over "xéééy" (three 2-byte characters). Options: RE2 in Latin-1 mode (byte semantics
// everywhere), or a byte-superset rewrite of bounded repeats for Hyperscan.
TEST_CASE("known gap: a bounded repeat over multi-byte characters", "[adversarial][!mayfail]") {
  auto set = make_set(R"(
[[rules]]
id = "r"
regex = '''x(.{3})y'''
)");
  Redactor r(set);
  auto res = redact_text(r, "x\xc3\xa9\xc3\xa9\xc3\xa9y");
  CHECK(res.status == RedactStatus::kMasked);
}

// Found by fuzz_json_line: findings of the safety net's second pass carried offsets in the masked
// output, which can lie past the end of the unit; an alert consumer indexing the line with them
// would read out of bounds. They are kept inside the unit.
TEST_CASE("adversarial: every finding lies inside the unit", "[adversarial][json]") {
  auto set = make_set(R"(
[[rules]]
id = "fuzz-partial"
regex = '''fzk_([^\s"',;\\]{3,40})'''
mask = "partial"
keepPrefix = 5
)");
  Redactor r(set);
  const std::string line = std::string("{\"\x8c\x9fxt\": \"{\\\"env\\KEYcd9e3bfzk_96cw+rd\x13].") +
                           std::string("\0\xa0" "a\0\0KxL3bH\\\"\\u0022}}\"}", 23);
  auto res = redact_json(r, line);
  REQUIRE(res.status == RedactStatus::kMasked);
  REQUIRE_FALSE(res.findings.empty());
  for (const Finding& f : res.findings) {
    CHECK(f.offset <= line.size());
    CHECK(f.length <= line.size() - f.offset);
  }
}

// A known value with non-ASCII characters, written by an ASCII-only JSON encoder (Python's
// json.dumps, .NET's System.Text.Json) into a log line or inside a message's text after other
// words: no JSON decoding reaches it there, and its \u form was not registered, so it came
// through (stderr, filter's text mode, a tool result quoting an upstream error).
TEST_CASE("adversarial: a non-ASCII known value in ASCII-only JSON inside text is masked", "[adversarial][literals]") {
  const std::string value = "cl\xc3\xa9-secr\xc3\xa8te-42\xc3\xbcZ\xf0\x9f\x94\x91";
  auto set = make_set(kAdvRules, {{"env:KNOWN_UTF8", value}});
  Redactor r(set);
  const std::string python = "cl\\u00e9-secr\\u00e8te-42\\u00fcZ\\ud83d\\udd11";
  const std::string dotnet = "cl\\u00E9-secr\\u00E8te-42\\u00FCZ\\uD83D\\uDD11";
  for (const std::string& form : {python, dotnet}) {
    auto t = redact_text(r, "ERROR upstream said {\"pw\": \"" + form + "\"} retrying");
    REQUIRE(t.status == RedactStatus::kMasked);
    CHECK(t.out == "ERROR upstream said {\"pw\": \"[REDACTED:known-secret]\"} retrying");
    // In a tool result: the text is JSON after other words, so it is escaped once more.
    std::string inner = "upstream said: {\"pw\": \"" + form + "\"}";
    auto j = redact_json(r, R"({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":)" +
                                json_str(inner) + "}]}}");
    REQUIRE(j.status == RedactStatus::kMasked);
    CHECK(j.out.find("[REDACTED:known-secret]") != std::string::npos);
    INFO(j.out);
    CHECK(j.out.find("te-42") == std::string::npos);
  }
}

// Found by fuzz_json_line: a rule whose context may end in `]` (the built-in generic-password
// allows `password-x]": "value"`) matched from inside this tool's own mask label. Masking one
// password value made the next value look like a password, and the safety net's next pass masked
// it, and the next: the output was no longer what the input warranted, and re-scanning it still
// found a "secret". A rule match that starts inside one of this tool's masks is not a finding.
TEST_CASE("adversarial: a mask's label is never a rule's context", "[adversarial][json]") {
  auto set = make_set(R"toml(
[[rules]]
id = "json-password"
regex = '''"password"\s{0,3}:\s{0,3}"([^"\\\s]{3,200})"'''
keywords = ["pass"]

[[rules]]
id = "generic-password"
regex = '''(?i:password)(?:[_.-][A-Za-z0-9_.-]{0,12})?[\\"'\]]{0,3}\s{0,3}:\s{0,3}"?([^\s"'\[\]{}]{8,128})'''
keywords = ["pass"]
generic = true
)toml");
  Redactor r(set);
  // Not JSON (a value followed by a colon), so it is masked as text, then re-scanned.
  const std::string line = R"({"password": "Hunswordrd": "Hunter4Hu&oken": "gh{ordrd": "Hunter4Hu&oken"})";
  auto res = redact_json(r, line);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == R"({"password": "[REDACTED:json-password]": "Hunter4Hu&oken": "gh{ordrd": "Hunter4Hu&oken"})");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].rule_id == "json-password");
  std::vector<SecretSpan> again;
  REQUIRE(r.scanner().find(res.out, again) == ScanStatus::kOk);
  CHECK(again.empty());
  // Context in the text itself still counts: the same value after a real key is masked.
  auto plain = redact_text(r, R"(db password-main]: "Hunter4Hu&oken")");
  CHECK(plain.out == R"(db password-main]: "[REDACTED:generic-password]")");
}

// Found by fuzz_rules (tests/fuzz/regressions/rules/rule-id-holds-the-known-value): a rule whose
// id held the known value put it in every mask and alert of that rule ("[REDACTED:<id>]"). Such a
// rule is called rule-N (its place in the set) instead; a rule whose id holds only part of the
// value keeps its id.
TEST_CASE("adversarial: a rule id that holds a known value never carries it into masks or findings",
          "[adversarial][literals]") {
  const std::string tok = "pscale_tok_" + fake(16, 11);
  const std::string key = "zzk_" + fake(16, 12);
  auto set = make_set(R"toml(
[[rules]]
id = "planet)toml" + kKnown + R"toml(scale-token"
regex = '''\b(pscale_tok_[A-Za-z0-9]{16})\b'''
keywords = ["pscale_tok_"]

[[rules]]
id = "aws-)toml" + kKnown.substr(0, 10) + R"toml("
regex = '''\b(zzk_[A-Za-z0-9]{16})\b'''
keywords = ["zzk_"]
)toml",
                      {{"env:KNOWN", kKnown}});
  Redactor r(set);
  auto res = redact_text(r, "a " + tok + " b " + key + " c " + kKnown);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == "a [REDACTED:rule-1] b [REDACTED:aws-" + kKnown.substr(0, 10) + "] c [REDACTED:known-secret]");
  REQUIRE(res.findings.size() == 3);
  CHECK(res.findings[0].rule_id == "rule-1");
  CHECK(res.findings[1].rule_id == "aws-" + kKnown.substr(0, 10));
  CHECK(res.findings[2].rule_id == "known-secret");
  // JSON messages and a second finding of the same rule: the same label.
  auto js = redact_json(r, R"({"t":")" + tok + R"("})");
  CHECK(js.out == R"({"t":"[REDACTED:rule-1]"})");
}

// Found by fuzz_decoders (in the CI's short run): the ASCII-only JSON form of a value holding
// ED A0 80 (a UTF-16 surrogate written as UTF-8, which is not UTF-8) was \ud800, which decodes to
// something else. A value that is not UTF-8 gets no \u form (no encoder writes one for it); its
// other forms stay.
TEST_CASE("adversarial: no unicode-escaped form for a value that is not UTF-8", "[adversarial][literals]") {
  const std::string surrogate = "key-\xed\xa0\x80-value";
  const std::string overlong = "key-\xc0\xaf-value";
  const std::string fine = "key-\xc3\xa9-value";
  auto has_u = [](const std::string& v) {
    for (const auto& lv : literal_variants(v, 6))
      if (lv.bytes.find("\\u") != std::string::npos) return true;
    return false;
  };
  CHECK_FALSE(has_u(surrogate));
  CHECK_FALSE(has_u(overlong));
  CHECK(has_u(fine));
  for (const std::string& v : {surrogate, overlong}) {
    auto vs = literal_variants(v, 6);
    REQUIRE_FALSE(vs.empty());
    CHECK(vs[0].bytes == v);  // the raw value is still matched
    for (const auto& lv : vs) {
      if (std::string_view(lv.kind) != "json") continue;
      std::string once;
      REQUIRE(json_unescape(lv.bytes, once, nullptr));
      std::string twice;
      CHECK((once == v || (json_unescape(once, twice, nullptr) && twice == v)));
    }
  }
}

// Found by fuzz_json_line (a long run): a token in JSON held in a string, cut by an escaped emoji.
// The raw message shows `ghp_Fk7Qm2Xr9Lp4Ws8Tn3Vb\ud83d...`, where the built-in generic-token
// rule matches (a backslash ends a value); decoded, the value runs on through the emoji and
// nothing matches. (The rule's quoted form now takes any character but a quote, a backslash or
// a space, up to 500 of them: the value here runs on past that, so decoding still hides it.)
// The nested JSON pass ignored the raw hit and the message went out with a token a reader of
// the raw stream finds. A raw hit the nested pass does not cover now makes the string masked
// flat, raw hits included.
TEST_CASE("adversarial: a raw hit inside JSON held in a string is masked even when decoding hides it",
          "[adversarial][json]") {
  Redactor r(builtin_set());
  const std::string tail(600, 'x');  // the decoded value runs past the rule's 500 characters
  const std::string msg =
      R"({"result":{"content":[{"type":"text","text":"{\n  \"GITHUB_TOKEN\": \"ghp_Fk7Qm2Xr9Lp4Ws8Tn3Vb\ud83d\ude002Ua4)" +
      tail + R"(\"\n}"}]},"jsonrpc":"2.0","id":2})";
  auto res = redact_json(r, msg);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.valid_json);
  CHECK(res.out ==
        "{\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"{\\n  \\\"GITHUB_TOKEN\\\": "
        "\\\"[REDACTED:generic-token]\\ud83d\\ude002Ua4" +
            tail + "\\\"\\n}\"}]},\"jsonrpc\":\"2.0\",\"id\":2}");
  std::vector<SecretSpan> again;
  REQUIRE(r.scanner().find(res.out, again) == ScanStatus::kOk);
  CHECK(again.empty());
}

// Found by fuzz_json_line (a long run, 9.6M executions): text shaped like a mask but not one
// (`[REDACTED:S4cr…`, no closing bracket) made a bounded rule's leftmost match allowlisted (the
// built-in pack allows any secret holding `[REDACTED`), and the search went on after that
// match's end, past a second match that starts inside it. Masking a value earlier in the line
// moved where the leftmost matches began, and the output re-scanned found the hidden one. A match
// that is not reported no longer uses up its bytes: the search goes on at its next byte.
TEST_CASE("adversarial: a match inside an allowlisted match is still found", "[adversarial]") {
  auto set = make_set(R"(
[allowlist]
regexes = ['''\[REDACTED''']

[[rules]]
id = "fzk"
regex = '''fzk_([^\s"',;\\]{3,40})'''
)");
  Redactor r(set);
  auto res = redact_text(r, "a fzk_96[REDACTED:S4crfzkassw0rgggfzk_Qw7e9Rt\" b");
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == "a fzk_96[REDACTED:S4crfzkassw0rgggfzk_[REDACTED:fzk]\" b");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].offset == 38);
  CHECK(res.findings[0].length == 7);
  std::vector<SecretSpan> again;
  REQUIRE(r.scanner().find(res.out, again) == ScanStatus::kOk);
  CHECK(again.empty());
  // A low-entropy match hides nothing either.
  auto set2 = make_set(R"(
[[rules]]
id = "hexkey"
regex = '''k_([0-9a-z_]{16,40})'''
entropy = 3.0
)");
  Redactor r2(set2);
  const std::string run(30, 'a');
  auto res2 = redact_text(r2, "k_" + run + "k_9f3b7c1e5d2a8f4b6c0e x");
  CHECK(res2.out == "k_" + run + "k_[REDACTED:hexkey] x");
}

// McpFilter finds the keys it acts on (`"blob"`, `"method"`) with a small Hyperscan database in
// messages of 64 KiB and more, and with find() below. Either way, at either side of that size:
// a textual blob is decoded and masked, and a request the server sends is remembered, so the
// client's answer to it is reported with its method.
TEST_CASE("adversarial: blob and method keys are found in messages large and small",
          "[adversarial][mcp]") {
  EngineHolder holder(small_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult r;
  for (size_t pad : {size_t{100}, size_t{64 * 1024}, size_t{300 * 1024}}) {
    INFO("padding " << pad);
    const std::string filler(pad, 'x');
    const std::string blob = base64_encode("config: " + kKnown + "\n");
    const std::string msg =
        R"({"jsonrpc":"2.0","id":7,"result":{"contents":[{"uri":"file:///a","text":")" + filler +
        R"("},{"uri":"file:///b","mimeType":"text/plain","blob":")" + blob + R"("}]}})";
    REQUIRE(filter.process(Direction::kServerToClient, msg, r) == ScanStatus::kOk);
    REQUIRE(r.kind == MessageResult::Kind::kReplace);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].json_path == "result.contents[1].blob");
    json out = json::parse(r.out, nullptr, false);
    REQUIRE_FALSE(out.is_discarded());
    std::string decoded;
    REQUIRE(base64_decode(out["result"]["contents"][1]["blob"].get<std::string>(), decoded));
    CHECK(decoded == "config: [REDACTED:known-secret]\n");
    CHECK(out["result"]["contents"][0]["text"] == filler);

    // The server asks the client something (its request clean, the key after a large field).
    const std::string id = std::to_string(100 + pad);
    const std::string request =
        R"({"jsonrpc":"2.0","params":{"messages":[{"role":"user","content":{"type":"text","text":")" +
        filler + R"("}}]},"method":"sampling/createMessage","id":)" + id + "}";
    REQUIRE(filter.process(Direction::kServerToClient, request, r) == ScanStatus::kOk);
    CHECK(r.kind == MessageResult::Kind::kForward);
    const std::string answer =
        R"({"jsonrpc":"2.0","id":)" + id +
        R"(,"result":{"role":"assistant","content":{"type":"text","text":"use )" + kAdvGhp + R"("}}})";
    REQUIRE(filter.process(Direction::kClientToServer, answer, r) == ScanStatus::kOk);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.ctx.method == "sampling/createMessage");
    CHECK(r.ctx.id == id);
  }
}

// A key written with escapes hides nothing from the rules that read a key and its value
// together, in a message of the wrap (structuredContent, a server's own JSON), small and large
// enough for the two-thread scan (the line's scan on a helper while large strings are decoded).
TEST_CASE("adversarial: an escaped key's value is masked in a tool result, one thread or two",
          "[adversarial][mcp][json]") {
  EngineHolder holder(builtin_set());
  RequestTracker tracker;
  const std::string pw = "Qm7vR2xK9pLw4Zt";  // made up
  for (bool parallel : {false, true}) {
    McpFilter filter(holder, tracker, {Action::kMask, parallel});
    MessageResult r;
    for (size_t pad : {size_t{10}, Redactor::kParallelBytes + 1000}) {
      INFO("parallel " << parallel << ", padding " << pad);
      // The padding escaped too, so the large string is one the helper's pass decodes.
      std::string filler;
      while (filler.size() < pad) filler += "log line\\n";
      const std::string msg =
          R"({"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":")" + filler +
          R"("}],"structuredContent":{"db":{"host":"db1","pass\u0077ord":")" + pw + R"("}}}})";
      REQUIRE(filter.process(Direction::kServerToClient, msg, r) == ScanStatus::kOk);
      REQUIRE(r.kind == MessageResult::Kind::kReplace);
      std::string want = msg;
      want.replace(want.find(pw), pw.size(), "[REDACTED:config-password-assignment]");
      CHECK(r.out == want);
      REQUIRE(r.findings.size() == 1);
      CHECK(r.findings[0].json_path == "result.structuredContent.db.password");
      CHECK(r.findings[0].offset == msg.find(pw));
      CHECK(r.findings[0].length == pw.size());
    }
  }
}

// McpFilter::prepare_for_large_messages, which the wrap calls while its server has said nothing
// yet: with `parallel` the helper thread of a large message's scan is started then, once, and
// the first large message is scanned with it (no thread more), masked as by an unprepared
// filter; without, no thread is started.
TEST_CASE("adversarial: a prepared filter scans its first large message with the thread it started",
          "[adversarial][mcp]") {
  auto threads = [] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) n += !e.path().empty();
    return n;
  };
  EngineHolder holder(builtin_set());
  RequestTracker tracker;
  const std::string pw = "Wz8kT3nB6qLx2Rv";  // made up
  std::string filler;
  while (filler.size() < Redactor::kParallelBytes + 1000) filler += "log line\\n";
  const std::string msg =
      R"({"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":")" + filler +
      R"("}],"structuredContent":{"db":{"host":"db1","password":")" + pw + R"("}}}})";
  std::string want = msg;
  want.replace(want.find(pw), pw.size(), "[REDACTED:json-password]");
  for (bool parallel : {false, true}) {
    INFO("parallel " << parallel);
    McpFilter filter(holder, tracker, {Action::kMask, parallel});
    const size_t before = threads();
    filter.prepare_for_large_messages();
    const size_t prepared = before + (parallel ? 1 : 0);
    CHECK(threads() == prepared);
    filter.prepare_for_large_messages();
    CHECK(threads() == prepared);
    MessageResult r;
    REQUIRE(filter.process(Direction::kServerToClient, msg, r) == ScanStatus::kOk);
    REQUIRE(r.kind == MessageResult::Kind::kReplace);
    CHECK(r.out == want);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].json_path == "result.structuredContent.db.password");
    CHECK(threads() == prepared);
  }
}

// A finding's context (id, method, tool) is read from the message's top-level fields without a
// DOM of the whole message. It must read them as the DOM does: keys compared unescaped, the first
// of duplicate keys, the id in the form the request was remembered in, and the fields after a
// large value found as well as those before it.
TEST_CASE("adversarial: a finding's context comes from the top-level fields, large or small",
          "[adversarial][mcp]") {
  EngineHolder holder(small_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult r;
  for (size_t pad : {size_t{100}, size_t{300 * 1024}}) {
    INFO("padding " << pad);
    const std::string filler(pad, 'x');
    const std::string n = std::to_string(pad);
    // The client calls a tool; the id and a key are spelled with escapes, "name" comes twice.
    const std::string call = R"({"jsonrpc":"2.0","id":"\u0061b-)" + n +
                             R"(","method":"tools/call","params":{"arguments":{},"na\u006de":"read_file","name":"other"}})";
    REQUIRE(filter.process(Direction::kClientToServer, call, r) == ScanStatus::kOk);
    CHECK(r.kind == MessageResult::Kind::kForward);
    // The result holds a known value; its id comes after the large value, spelled otherwise, and
    // then again (the first counts).
    const std::string result = R"({"jsonrpc":"2.0","result":{"content":[{"type":"text","text":")" +
                               filler + " " + kKnown + R"("}]},"\u0069d":"ab-)" + n +
                               R"(","id":"zz"})";
    REQUIRE(filter.process(Direction::kServerToClient, result, r) == ScanStatus::kOk);
    REQUIRE(r.kind == MessageResult::Kind::kReplace);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.ctx.id == "\"ab-" + n + "\"");
    CHECK(r.ctx.method == "tools/call");
    CHECK(r.ctx.tool == "read_file");
    // A call whose arguments hold a known value is its own context.
    const std::string leaky_call = R"({"params":{"arguments":{"text":")" + filler + " " + kKnown +
                                   R"("},"na\u006de":"write_file","name":"other"},"id":9,"method":"tools/call"})";
    REQUIRE(filter.process(Direction::kClientToServer, leaky_call, r) == ScanStatus::kOk);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.ctx.id == "9");
    CHECK(r.ctx.method == "tools/call");
    CHECK(r.ctx.tool == "write_file");
    // The server asks the client something, a known value in its large request: the request is
    // the context, and is remembered for the client's answer.
    const std::string ask = R"({"params":{"messages":[{"content":{"type":"text","text":")" + filler +
                            " " + kKnown + R"("}}]},"method":"sampling/createMessage","id":[)" + n +
                            R"(, 1],"jsonrpc":"2.0"})";
    REQUIRE(filter.process(Direction::kServerToClient, ask, r) == ScanStatus::kOk);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.ctx.method == "sampling/createMessage");
    CHECK(r.ctx.id == "[" + n + ",1]");
    CHECK(r.ctx.tool.empty());
    const std::string answer = R"({"jsonrpc":"2.0","id":[)" + n + R"(,1],"result":{"text":"use )" +
                               kAdvGhp + R"("}})";
    REQUIRE(filter.process(Direction::kClientToServer, answer, r) == ScanStatus::kOk);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.ctx.method == "sampling/createMessage");
    CHECK(r.ctx.id == "[" + n + ",1]");
  }
}

// A clean request is remembered whatever its size, as one with a finding is: a server's
// sampling request with a long conversation in it still names the client's answer.
TEST_CASE("adversarial: a clean request larger than a megabyte is the context of its answer",
          "[adversarial][mcp]") {
  EngineHolder holder(small_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult r;
  const std::string filler((1u << 20) + 100, 'x');
  const std::string ask = R"({"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":")" +
                          filler + R"("}}]}})";
  REQUIRE(filter.process(Direction::kServerToClient, ask, r) == ScanStatus::kOk);
  CHECK(r.kind == MessageResult::Kind::kForward);
  CHECK(r.findings.empty());
  CHECK(tracker.size() == 1);
  const std::string answer =
      R"({"jsonrpc":"2.0","id":"s-1","result":{"role":"assistant","content":{"type":"text","text":"use )" +
      kAdvGhp + R"("}}})";
  REQUIRE(filter.process(Direction::kClientToServer, answer, r) == ScanStatus::kOk);
  CHECK(r.kind == MessageResult::Kind::kReplace);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.ctx.id == "\"s-1\"");
  CHECK(r.ctx.method == "sampling/createMessage");
  CHECK(r.ctx.tool.empty());
  CHECK(tracker.size() == 0);
}

// A TCP server keeps a filter per connection, most of them idle: one made with release_above
// gives back its scanner's buffers after a large message, and answers every message as one that
// keeps them.
TEST_CASE("adversarial: a filter that gives back its buffers after a large message answers the same",
          "[adversarial][mcp]") {
  EngineHolder holder(small_set());
  RequestTracker t_keep, t_give;
  McpFilter keep(holder, t_keep, {});
  McpFilterOptions give_options;
  give_options.release_above = 256 * 1024;
  McpFilter give(holder, t_give, give_options);
  auto result = [](const std::string& text) {
    return R"({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":")" + text + R"("}]}})";
  };
  std::string text;
  while (text.size() < (2u << 20)) text += "line of output\\n\\t\"quoted\" ";
  const std::string big_clean = result(text);
  const std::string big_leak = result(text + kKnown + " " + text);
  const std::string small_leak = result("use " + kAdvGhp);
  for (const std::string* m : {&small_leak, &big_clean, &big_leak, &small_leak, &big_leak}) {
    MessageResult a, b;
    REQUIRE(keep.process(Direction::kServerToClient, *m, a) == ScanStatus::kOk);
    REQUIRE(give.process(Direction::kServerToClient, *m, b) == ScanStatus::kOk);
    CHECK(static_cast<int>(a.kind) == static_cast<int>(b.kind));
    CHECK(a.out == b.out);
    REQUIRE(a.findings.size() == b.findings.size());
    for (size_t i = 0; i < a.findings.size(); ++i) {
      CHECK(a.findings[i].rule_id == b.findings[i].rule_id);
      CHECK(a.findings[i].offset == b.findings[i].offset);
      CHECK(a.findings[i].json_path == b.findings[i].json_path);
    }
  }
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCRUB_TEST_ASAN 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(SCRUB_TEST_ASAN)
  // What each holds once the large message is done (glibc's count of allocated bytes; a
  // sanitizer's allocator does not keep it). simdjson alone keeps buffers several times the
  // largest message it parsed.
  auto in_use = [] {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  MessageResult r;
  RequestTracker t1, t2;
  McpFilter keep2(holder, t1, {}), give2(holder, t2, give_options);
  REQUIRE(keep2.process(Direction::kServerToClient, small_leak, r) == ScanStatus::kOk);
  REQUIRE(give2.process(Direction::kServerToClient, small_leak, r) == ScanStatus::kOk);
  r = MessageResult{};
  size_t before = in_use();
  REQUIRE(keep2.process(Direction::kServerToClient, big_clean, r) == ScanStatus::kOk);
  const size_t kept = in_use() - before;
  before = in_use();
  REQUIRE(give2.process(Direction::kServerToClient, big_clean, r) == ScanStatus::kOk);
  const size_t given = in_use() > before ? in_use() - before : 0;
  CHECK(kept > 2 * big_clean.size());
  CHECK(given < big_clean.size() / 8);
#endif
}

// A line simdjson rejects is walked leniently (strings decoded, scalars left alone), then masked
// as text. When the walk changes nothing, the text pass takes the spans the walk's own scan
// found instead of scanning again: a secret outside any string, beside an escape the walk
// decoded, is masked from those.
TEST_CASE("adversarial: a line that is not JSON masks what the lenient walk leaves",
          "[adversarial][json]") {
  Redactor r(small_set());
  const std::string line = R"({"n": )" + kAdvGhp + R"(, "s": "\ud800 ok"})";
  auto res = redact_json(r, line);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK_FALSE(res.valid_json);
  CHECK(res.out == R"({"n": [REDACTED:github-pat], "s": "\ud800 ok"})");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].rule_id == "github-pat");
  CHECK(res.findings[0].offset == 6);
  CHECK(res.findings[0].length == kAdvGhp.size());
  // With a value in a string as well, the walk masks that and the text pass scans its output.
  const std::string both = R"({"n": )" + kAdvGhp + R"(, "s": "\ud800 )" + kKnown + R"("})";
  auto res2 = redact_json(r, both);
  CHECK(res2.out ==
        R"({"n": [REDACTED:github-pat], "s": "\ud800 [REDACTED:known-secret]"})");
  CHECK(res2.findings.size() == 2);
}

// Found by fuzz_json_line (2.66M executions): masking a value can reveal a match before it.
// Here each `password=` value runs on, through `&` (a value character and a terminator), into
// the next assignment; the longest run the rule's bound allows holds the word "password" and is
// not reported. Masked, the next value ends that run at its mask, and the assignment before it
// now matches on its own. Each pass of the safety net reveals one more, right to left: five
// values took five passes, and the net stopped after three.
TEST_CASE("adversarial: a chain of assignments that masking reveals one by one is all masked",
          "[adversarial][json]") {
  Redactor r(builtin_set());
  std::vector<std::string> values;
  for (unsigned i = 0; i < 5; ++i) values.push_back(fake(12, 21 + i));
  std::string text = "config ", masked = "config ";
  for (size_t i = 0; i < values.size(); ++i) {
    const bool last = i + 1 == values.size();
    text += "password=" + values[i] + (last ? " end" : "&z");
    // The first opens a form body (`password=...&zpassword=`), which form-body-credential finds
    // directly; the others only generic-password, once masking has ended the value before them.
    masked += std::string(i == 0 ? "password=[REDACTED:form-body-credential]"
                                 : "password=[REDACTED:generic-password]") +
              (last ? " end" : "&z");
  }
  // One scan finds only the first value and the last: the cascade between them is real.
  std::vector<SecretSpan> first;
  REQUIRE(r.scanner().find(text, first) == ScanStatus::kOk);
  REQUIRE(first.size() == 2);
  for (const std::string& line : {text, R"({"msg":")" + text + R"("})"}) {
    auto res = redact_json(r, line);
    REQUIRE(res.status == RedactStatus::kMasked);
    CHECK(res.out == (line == text ? masked : R"({"msg":")" + masked + R"("})"));
    CHECK(res.findings.size() == values.size());
    for (size_t i = 0; i < res.findings.size(); ++i)
      CHECK(res.findings[i].rule_id == (i == 0 ? "form-body-credential" : "generic-password"));
    std::vector<SecretSpan> again;
    REQUIRE(r.scanner().find(res.out, again) == ScanStatus::kOk);
    CHECK(again.empty());
    for (const std::string& v : values) CHECK(res.out.find(v) == std::string::npos);
  }
}

// An OAuth password grant logged as sent opens with the secret. No '?' or '&' stands before it
// for url-query-credential, and the assignment rules took the rest of the line as the value,
// which their stopword "password" then dropped (`&grant_type=password`): the value went out.
TEST_CASE("adversarial: a form body that opens with its secret is masked", "[adversarial][json]") {
  Redactor r(builtin_set());
  const std::string pw = fake(14, 41), cs = fake(24, 42);
  auto res = redact_text(r, "password=" + pw + "&grant_type=password&username=ops");
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == "password=[REDACTED:form-body-credential]&grant_type=password&username=ops");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].rule_id == "form-body-credential");
  // Two secrets and no stopword: the assignment's value runs to the end of the line (a
  // .properties password may hold '&') and takes both; one span, neither left.
  res = redact_text(r, "password=" + pw + "&client_secret=" + cs);
  CHECK(res.out == "password=[REDACTED:config-password-assignment]");
  // Behind a word, no assignment rule reads it: the form's two pairs, each its own rule.
  res = redact_text(r, "sent password=" + pw + "&client_secret=" + cs + " to the IdP");
  CHECK(res.out ==
        "sent password=[REDACTED:form-body-credential]&client_secret=[REDACTED:url-query-credential] "
        "to the IdP");
  // In a JSON log line's string.
  res = redact_json(r, R"({"body":"client_secret=)" + cs + R"(&grant_type=client_credentials"})");
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out ==
        R"({"body":"client_secret=[REDACTED:form-body-credential]&grant_type=client_credentials"})");
  // A bare `key` is not a credential's name here.
  res = redact_text(r, "cache key=users:4242&v=2");
  CHECK(res.status == RedactStatus::kClean);
}

// An env list names a secret on one line and gives its value on the next. In a manifest that a
// tool returns, the JSON string's decoded text holds both lines; each value is masked and the
// lines stay as they were, `valueFrom` and a value's URL left alone.
TEST_CASE("adversarial: an env list's secret value on the line after its name is masked",
          "[adversarial][json]") {
  Redactor r(builtin_set());
  const std::string pw = fake(16, 51), tok = fake(24, 52);
  const nlohmann::json msg = {{"content",
                               "env:\n  - name: DB_PASSWORD\n    value: " + pw +
                                   "\n  - name: GITHUB_TOKEN\n    value: \"" + tok +
                                   "\"\n  - name: API_KEY\n    valueFrom:\n      secretKeyRef: "
                                   "{name: api, key: key}\n  - name: TOKEN_URL\n    value: "
                                   "https://auth.acme.io/oauth/token\n"}};
  auto res = redact_json(r, msg.dump());
  REQUIRE(res.status == RedactStatus::kMasked);
  const std::string out = nlohmann::json::parse(res.out)["content"].get<std::string>();
  CHECK(out ==
        "env:\n  - name: DB_PASSWORD\n    value: [REDACTED:env-list-secret-value]\n"
        "  - name: GITHUB_TOKEN\n    value: \"[REDACTED:env-list-secret-value]\"\n"
        "  - name: API_KEY\n    valueFrom:\n      secretKeyRef: {name: api, key: key}\n"
        "  - name: TOKEN_URL\n    value: https://auth.acme.io/oauth/token\n");
  REQUIRE(res.findings.size() == 2);
  for (const auto& f : res.findings) CHECK(f.rule_id == "env-list-secret-value");
}

// Found by fuzz_json_line (tests/fuzz/regressions/json_line/safety-net-long-chain, 155,779
// executions): a 1.5 KB line of binary bytes and about twenty `password=` assignments whose
// masking reveals them one by one took more passes than the safety net's 16, and its output
// still rescanned with a secret. Small units now get more passes (kSafetyScanBytes).
TEST_CASE("adversarial: the safety net goes on past 16 passes on a small unit",
          "[adversarial][json]") {
  std::ifstream in(std::string(SCRUB_SOURCE_DIR) +
                       "/tests/fuzz/regressions/json_line/safety-net-long-chain",
                   std::ios::binary);
  REQUIRE(in);
  const std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(line.size() == 1518);
  // The fuzz target's engine, with the one built-in rule that fires here (the whole pack
  // compiles for seconds under a sanitizer).
  RuleSet rules;
  const RuleSet pack = builtin_rules();
  for (const Rule& rule : pack.rules)
    if (rule.id == "generic-password") rules.rules.push_back(rule);
  rules.global_allowlists = pack.global_allowlists;
  merge_rules(rules, load_rules_string(fuzz::kExtraRules, "fuzz-extra.toml"));
  Redactor r(CompiledSet::compile(rules, fuzz::known_secrets(), fuzz::engine_options()));
  std::vector<SecretSpan> first;
  REQUIRE(r.scanner().find(line, first) == ScanStatus::kOk);
  auto res = redact_json(r, line);
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK_FALSE(res.valid_json);
  // More assignments masked than the first scan and the net's first 16 passes could reach.
  CHECK(res.findings.size() > first.size() + Redactor::kMaxSafetyPasses + 1);
  std::vector<SecretSpan> again;
  REQUIRE(r.scanner().find(res.out, again) == ScanStatus::kOk);
  for (const SecretSpan& sp : again)
    CHECK(res.out.substr(sp.begin, sp.end - sp.begin).find("[REDACTED") != std::string::npos);
}

// The request tracker holds the requests in flight: a response takes its request whether it has
// a finding or not, so a long session does not keep the last 10,000 requests (a full table made
// every request pay for an eviction).
TEST_CASE("adversarial: every response, clean or not, takes its request from the tracker",
          "[adversarial][mcp]") {
  EngineHolder holder(small_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult r;
  auto call = [](int id) {
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
           R"(,"method":"tools/call","params":{"name":"read_file","arguments":{}}})";
  };
  filter.note(Direction::kClientToServer, call(1));
  filter.note(Direction::kClientToServer, call(2));
  filter.note(Direction::kClientToServer, call(3));
  REQUIRE(tracker.size() == 3);
  // Clean, its id after the result (as the TypeScript SDK writes it).
  REQUIRE(filter.process(Direction::kServerToClient,
                         R"({"result":{"content":[{"type":"text","text":"ok"}]},"jsonrpc":"2.0","id":2})",
                         r) == ScanStatus::kOk);
  CHECK(r.kind == MessageResult::Kind::kForward);
  CHECK(tracker.size() == 2);
  // Clean, with the word "method" quoted in its text: still a response.
  REQUIRE(filter.process(Direction::kServerToClient,
                         R"({"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad \"method\""}})",
                         r) == ScanStatus::kOk);
  CHECK(r.kind == MessageResult::Kind::kForward);
  CHECK(tracker.size() == 1);
  // A response to a request the client never sent takes nothing.
  REQUIRE(filter.process(Direction::kServerToClient, R"({"jsonrpc":"2.0","id":9,"result":{}})", r) ==
          ScanStatus::kOk);
  CHECK(tracker.size() == 1);
  // With a finding: masked, reported with the request's method and tool, and taken too.
  REQUIRE(filter.process(Direction::kServerToClient,
                         R"({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":")" +
                             kAdvGhp + R"("}]}})",
                         r) == ScanStatus::kOk);
  CHECK(r.kind == MessageResult::Kind::kReplace);
  CHECK(r.ctx.method == "tools/call");
  CHECK(r.ctx.tool == "read_file");
  CHECK(tracker.size() == 0);
}

TEST_CASE("adversarial: the request tracker forgets the oldest, never a reused id's new request",
          "[adversarial][mcp]") {
  RequestTracker tracker;
  const RequestTracker::Request req{"tools/call", "t"};
  // Id 1 answered, then used again: its first slot must not evict the second request.
  tracker.on_request(Direction::kClientToServer, "1", req);
  REQUIRE(tracker.take(Direction::kServerToClient, "1"));
  tracker.on_request(Direction::kClientToServer, "1", req);
  for (int i = 2; i <= 10000; ++i) tracker.on_request(Direction::kClientToServer, std::to_string(i), req);
  CHECK(tracker.size() == 10000);
  // Ids are kept per direction: the server's request 5 is another entry.
  tracker.on_request(Direction::kServerToClient, "5", req);
  CHECK(tracker.size() == 10000);  // the bound: the oldest, the second request 1, went
  CHECK_FALSE(tracker.take(Direction::kServerToClient, "1"));
  REQUIRE(tracker.take(Direction::kServerToClient, "2"));
  REQUIRE(tracker.take(Direction::kClientToServer, "5"));
  CHECK(tracker.size() == 9998);
}
