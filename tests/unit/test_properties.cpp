// Properties over every secret the engine knows how to find: each example secret of every
// built-in rule and a set of fake known values.
//  - split at every byte position across two writes, a line still comes out of the framer whole
//    and masked (LineReader + Redactor), text and JSON;
//  - cut at every position by the overlong-line path (pieces with an overlap), still masked;
//  - placed at the start, middle and end of every JSON channel of an MCP message, raw and escaped
//    (\uXXXX for each of its characters, \/, JSON inside a JSON string), it is masked and the
//    message stays valid JSON-RPC with the same id (McpFilter::process);
//  - in JSON lines of several forms through `filter --format json`'s batches, each line comes out
//    as redact_json makes it alone, with the same findings (process_stream).
// Failures name the rule id and the case; secrets are never printed.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "cli/stream.h"
#include "filter/mcp_filter.h"
#include "property_cases.h"
#include "transports/fd_io.h"
#include "transports/line_reader.h"

using namespace scrub;
using namespace scrub::test;
using nlohmann::json;

namespace {

const std::string kBefore = "alpha beta gamma: ";
const std::string kAfter = " delta epsilon";

// Lines through one LineReader over a pipe, each line's bytes arriving in the writes `parts`
// gives (one write before each read, empty parts skipped): returns the lines it hands out, and
// whether every chunk was a whole line.
struct TwoWriteFramer {
  int fds[2] = {-1, -1};
  std::vector<std::string> parts;
  size_t next_part = 0;
  TwoWriteFramer() { REQUIRE(::pipe(fds) == 0); }
  ~TwoWriteFramer() {
    if (fds[1] >= 0) ::close(fds[1]);
    ::close(fds[0]);
  }
  // Frames every split of `wire` (a line and its "\n") at every position: 2 writes each.
  std::vector<std::string> frame_all_splits(const std::string& wire, bool* all_whole) {
    parts.clear();
    next_part = 0;
    for (size_t pos = 0; pos <= wire.size(); ++pos) {
      if (pos > 0) parts.push_back(wire.substr(0, pos));
      if (pos < wire.size()) parts.push_back(wire.substr(pos));
    }
    LineReader reader(fds[0], 1 << 16, [&] {
      if (next_part < parts.size()) {
        const std::string& p = parts[next_part++];
        REQUIRE(scrub::write_all(fds[1], p));
      } else if (fds[1] >= 0) {
        ::close(fds[1]);
        fds[1] = -1;
      }
    });
    std::vector<std::string> lines;
    *all_whole = true;
    LineReader::Chunk c;
    while (reader.next(c) == LineReader::Status::kData) {
      if (!c.line_end || !c.newline) *all_whole = false;
      lines.emplace_back(c.data);
    }
    return lines;
  }
};

std::string mcp_text_result(const std::string& json_string_token) {
  return R"({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":)" + json_string_token + "}]}}";
}

}  // namespace

TEST_CASE("properties: every secret split at every byte across two writes is framed whole and masked",
          "[properties][split]") {
  Redactor redactor(builtin_set());
  size_t checked = 0;
  for (size_t ci = 0; ci < secret_cases().size(); ci += kSanitizerStride) {
    const SecretCase& sc = secret_cases()[ci];
    INFO("case " << ci << " rule " << sc.id);
    for (int mode = 0; mode < 2; ++mode) {
      // A multi-line example (a private key, a .netrc entry) is not one line of a text stream;
      // in JSON its newlines are escapes and it is one line.
      if (mode == 0 && sc.text.find('\n') != std::string::npos) continue;
      const std::string line = mode == 0 ? kBefore + sc.text + kAfter
                                         : mcp_text_result(json_str(kBefore + sc.text + kAfter));
      const std::string wire = line + "\n";
      // The line as the redactor sees it whole; every split must frame exactly this line.
      auto res = mode == 0 ? redact_text(redactor, line) : redact_json(redactor, line);
      INFO("mode " << (mode == 0 ? "text" : "json"));
      REQUIRE(res.status == RedactStatus::kMasked);
      CHECK_FALSE(leaks(res.out, sc.secret));
      if (mode == 1) CHECK(res.valid_json);
      TwoWriteFramer framer;
      bool whole = false;
      auto got = framer.frame_all_splits(wire, &whole);
      CHECK(whole);
      REQUIRE(got.size() == wire.size() + 1);
      for (size_t pos = 0; pos < got.size(); ++pos) {
        if (got[pos] != line) {
          INFO("split at " << pos);
          FAIL("the line did not come out of the framer whole");
        }
        ++checked;
      }
    }
  }
  CHECK(checked > 100000 / kSanitizerStride);
}

TEST_CASE("properties: a secret cut at every position by the overlong-line path is still masked",
          "[properties][split]") {
  EngineHolder holder(builtin_set());
  FollowingRedactor following(holder);
  // Every known value at every cut; the rules' examples at every cut for a sample of rules and at
  // a few cuts for all (the path is the same code for all of them).
  size_t runs = 0;
  for (size_t ci = 0; ci < secret_cases().size(); ci += kSanitizerStride) {
    const SecretCase& sc = secret_cases()[ci];
    if (sc.text.find('\n') != std::string::npos) continue;  // not one line of a text stream
    const bool all_cuts = sc.id.rfind("known:", 0) == 0 || ci % 25 == 0;
    const std::string text = kBefore + sc.text + kAfter;
    // The overlap kept between pieces (max_line / 2) must hold the whole match with its context.
    const size_t max_line = std::max<size_t>(256, 4 * text.size());
    const size_t at = text.find(sc.secret);
    REQUIRE(at != std::string::npos);
    INFO("case " << ci << " rule " << sc.id);
    // Two boundaries matter: the end of the first piece (max_line) and the start of the tail kept
    // from it (max_line / 2). Place each inside the secret at every offset.
    for (size_t boundary : {max_line, max_line / 2}) {
      for (size_t k = 1; k < sc.secret.size(); ++k) {
        // Under a sanitizer, every third cut of the all-cuts cases (and the three of the others).
        const bool few = k == 1 || k == sc.secret.size() / 2 || k == sc.secret.size() - 1;
        if (!few && (!all_cuts || k % kSanitizerStride != 0)) continue;
        size_t pad = boundary - (at + k);
        std::string line = std::string(pad, '.') + text + std::string(max_line, '-');
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        // A line the pipe's buffer holds is written before the read, without a writer thread
        // (a thread per run was most of this test's time under ASan).
        const bool fits = line.size() + 1 <= static_cast<size_t>(::fcntl(fds[1], F_GETPIPE_SZ));
        std::thread writer;
        auto feed = [&fds, payload = line + "\n"] {
          scrub::write_all(fds[1], payload);
          ::close(fds[1]);
        };
        if (fits) feed();
        else writer = std::thread(feed);
        std::string out;
        StreamCallbacks cb;
        cb.output = [&](std::string_view s) { out.append(s); };
        StreamStats stats;
        StreamResult r = process_stream(fds[0], "t", StreamMode::kText, max_line, following, cb, stats, nullptr);
        if (writer.joinable()) writer.join();
        ::close(fds[0]);
        REQUIRE(r == StreamResult::kOk);
        CHECK(stats.oversized == 1);
        if (out.find(sc.secret) != std::string::npos) {
          INFO("boundary " << boundary << " cut " << k);
          FAIL("a secret cut by the overlong-line path came through");
        }
        ++runs;
      }
    }
  }
  CHECK(runs > 1000 / kSanitizerStride);
}

namespace {

struct Channel {
  const char* name;
  std::string (*make)(const std::string& s);  // s: a JSON string token
  bool has_id;
};

const Channel kChannels[] = {
    {"result.content[].text",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","id":11,"result":{"content":[{"type":"text","text":"ok"},{"type":"text","text":)" + s + "}]}}"; },
     true},
    {"structuredContent",
     [](const std::string& s) { return R"({"result":{"content":[],"structuredContent":{"rows":[{"v":)" + s + R"(}]}},"jsonrpc":"2.0","id":"req-12"})"; },
     true},
    {"error.message",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","id":13,"error":{"code":-32000,"message":)" + s + "}}"; },
     true},
    {"error.data",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","id":14,"error":{"code":-32603,"message":"failed","data":{"detail":)" + s + "}}}"; },
     true},
    {"notifications/message",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"error","logger":"db","data":)" + s + "}}"; },
     false},
    {"notifications/progress",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":1,"total":2,"message":)" + s + "}}"; },
     false},
    {"sampling/createMessage",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":)" + s + R"(}}],"systemPrompt":"be brief","maxTokens":100}})"; },
     true},
    {"resource text",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","id":16,"result":{"contents":[{"uri":"file:///app/config","mimeType":"text/plain","text":)" + s + "}]}}"; },
     true},
    {"_meta",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","id":17,"result":{"content":[{"type":"text","text":"done"}],"_meta":{"debug":{"env":)" + s + "}}}}"; },
     true},
    {"params._meta of a notification",
     [](const std::string& s) { return R"({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///x","_meta":{"trace":)" + s + "}}}"; },
     false},
};

}  // namespace

TEST_CASE("properties: every secret in every MCP channel, position and encoding is masked, "
          "the message stays valid JSON-RPC with its id",
          "[properties][mcp]") {
  EngineHolder holder(builtin_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult r;
  size_t checked = 0;
  // What each channel's message holds, read from the test's own (valid) message.
  std::vector<MessageProbe> shapes;
  for (const Channel& ch : kChannels) shapes.push_back(probe_message(ch.make("\"x\""), "x"));
  // ~100,000 messages: the checks are computed first and asserted (with their context) only
  // when one fails, which keeps this case fast under the sanitizer build.
  // Under a sanitizer every fifth case (each still in every channel, position and form).
  const size_t stride = kSanitizerStride > 1 ? 5 : 1;
  size_t cases = 0;
  for (size_t ci = 0; ci < secret_cases().size(); ci += stride, ++cases) {
    const SecretCase& sc = secret_cases()[ci];
    const std::string placed[3] = {sc.text + kAfter, kBefore + sc.text + kAfter, kBefore + sc.text};
    for (int p = 0; p < 3; ++p) {
      const std::string& text = placed[p];
      const std::string forms[4] = {
          json_str(text),
          json_str_uescaped(text, sc.secret),
          json_str_slashes(text),
          json_str(json({{"log", text}, {"level", "warn"}}).dump()),
      };
      for (int f = 0; f < 4; ++f) {
        for (size_t c = 0; c < std::size(kChannels); ++c) {
          const Channel& ch = kChannels[c];
          const MessageProbe& in = shapes[c];
          const std::string msg = ch.make(forms[f]);
          const ScanStatus st = filter.process(Direction::kServerToClient, msg, r);
          const MessageProbe out = probe_message(r.out, sc.secret);
          const bool ok = st == ScanStatus::kOk && r.kind == MessageResult::Kind::kReplace &&
                          !r.invalid_json && out.valid && r.out.find(sc.secret) == std::string::npos &&
                          !out.leaks && out.jsonrpc_2 && out.has_id == ch.has_id &&
                          out.id == in.id && out.has_method == in.has_method &&
                          out.has_result == in.has_result && out.has_error == in.has_error;
          if (!ok) {
            INFO("case " << ci << " rule " << sc.id << " channel " << ch.name << " position " << p
                         << " form " << f);
            REQUIRE(st == ScanStatus::kOk);
            REQUIRE(r.kind == MessageResult::Kind::kReplace);
            CHECK_FALSE(r.invalid_json);
            CHECK_FALSE(leaks(r.out, sc.secret));
            REQUIRE(out.valid);
            CHECK(out.jsonrpc_2);
            CHECK(out.has_id == ch.has_id);
            CHECK(out.id == in.id);
            CHECK(out.has_method == in.has_method);
            CHECK(out.has_result == in.has_result);
            CHECK(out.has_error == in.has_error);
          }
          ++checked;
        }
      }
    }
  }
  CHECK(cases == (secret_cases().size() + stride - 1) / stride);
  CHECK(checked == cases * 3 * 4 * std::size(kChannels));
}

TEST_CASE("properties: a known value in a textual blob is masked and the blob stays base64",
          "[properties][mcp]") {
  EngineHolder holder(builtin_set());
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  MessageResult r;
  for (size_t ci = 0; ci < secret_cases().size(); ++ci) {
    const SecretCase& sc = secret_cases()[ci];
    INFO("case " << ci << " rule " << sc.id);
    const std::string blob = base64_encode(kBefore + sc.text + kAfter + "\n");
    const std::string msg = R"({"jsonrpc":"2.0","id":21,"result":{"contents":[{"uri":"file:///a","mimeType":"text/plain","blob":")" + blob + R"("}]}})";
    REQUIRE(filter.process(Direction::kServerToClient, msg, r) == ScanStatus::kOk);
    REQUIRE(r.kind == MessageResult::Kind::kReplace);
    json out = json::parse(r.out, nullptr, false);
    REQUIRE_FALSE(out.is_discarded());
    CHECK(out["id"] == 21);
    std::string decoded;
    REQUIRE(base64_decode(out["result"]["contents"][0]["blob"].get<std::string>(), decoded));
    CHECK(decoded.find(sc.secret) == std::string::npos);
    CHECK(r.out.find(sc.secret) == std::string::npos);
  }
}

// The batch prefilter's shortcut (Redactor::redact_json with raw_clean): for a line in which the
// scanner finds nothing as it stands, skipping that scan changes nothing. Every secret, escaped
// so that the line itself scans clean (\uXXXX for each of its characters, JSON inside a JSON
// string with its quotes escaped), gives the same output and findings either way.
TEST_CASE("properties: redact_json with raw_clean equals redact_json when the raw scan is empty",
          "[properties][json]") {
  Redactor redactor(builtin_set());
  size_t compared = 0, masked = 0;
  std::vector<SecretSpan> spans;
  for (size_t ci = 0; ci < secret_cases().size(); ++ci) {
    const SecretCase& sc = secret_cases()[ci];
    const std::string text = kBefore + sc.text + kAfter;
    for (const std::string& token : {json_str_uescaped(text, sc.secret), json_str_slashes(text),
                                     json_str(json({{"log", text}}).dump())}) {
      const std::string line = R"({"level":"warn","msg":)" + token + "}";
      spans.clear();
      REQUIRE(redactor.scanner().find(line, spans) == ScanStatus::kOk);
      if (!spans.empty()) continue;  // visible as it stands: not a line the shortcut takes
      std::string a, b;
      Findings fa, fb;
      JsonInfo ia, ib;
      RedactStatus sa = redactor.redact_json(line, a, fa, &ia);
      RedactStatus sb = redactor.redact_json(line, b, fb, &ib, true);
      bool same = sa == sb && ia.valid == ib.valid && a == b && fa.size() == fb.size();
      for (size_t k = 0; same && k < fa.size(); ++k)
        same = fa[k].rule_id == fb[k].rule_id && fa[k].offset == fb[k].offset &&
               fa[k].length == fb[k].length && fa[k].json_path == fb[k].json_path;
      if (!same) {
        INFO("case " << ci << " rule " << sc.id);
        CHECK(sa == sb);
        CHECK(a == b);
        REQUIRE(fa.size() == fb.size());
      }
      ++compared;
      masked += sa == RedactStatus::kMasked;
    }
  }
  // Hundreds of lines only escapes reveal, nearly all of them masked.
  CHECK(compared > 300);
  CHECK(masked * 10 > compared * 9);
}

// Redactor::set_parallel on messages over kParallelBytes: every secret, in every form (as it
// stands, \uXXXX-escaped, with \/, in JSON held in a string), either in a small string beside a
// large clean escaped one or inside the large string itself, gives one thread's output and
// findings, and is masked. Covers the strings scanned ahead, the ones left to the walk, and the
// shortcut that skips the walk when everything was seen clean.
TEST_CASE("properties: a large message on two threads gives one thread's result for every secret",
          "[properties][json][threads]") {
  Redactor one(builtin_set()), two(builtin_set());
  two.set_parallel(true);
  std::string filler;  // escaped as JSON: a quote pair and a newline per line
  for (int i = 0; filler.size() < 130 * 1024; ++i)
    filler += "line " + std::to_string(i) + ": \"ok\" done\n";
  const std::string big = json_str(filler + filler);
  auto message = [](const std::string& first, const std::string& second) {
    return R"({"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":)" + first +
           R"(},{"type":"text","text":)" + second + "}]}}";
  };
  {
    const std::string clean = message(big, json_str("all good"));
    REQUIRE(clean.size() > Redactor::kParallelBytes);
    CHECK(redact_json(two, clean).status == RedactStatus::kClean);
  }
  // Every sixth case (every 54th under a sanitizer, where this test took 17 s at every 18th):
  // each message is a quarter megabyte, and what the two threads do depends on the forms and
  // places, not on which rule fires.
  const size_t stride = 6 * kSanitizerStride * kSanitizerStride;
  size_t cases = 0, compared = 0;
  for (size_t ci = 0; ci < secret_cases().size(); ci += stride, ++cases) {
    const SecretCase& sc = secret_cases()[ci];
    const std::string small = kBefore + sc.text + kAfter;
    const std::string inside = filler + kBefore + sc.text + kAfter + "\n" + filler;
    for (int f = 0; f < 4; ++f) {
      auto form = [&](const std::string& text) {
        switch (f) {
          case 0: return json_str(text);
          case 1: return json_str_uescaped(text, sc.secret);
          case 2: return json_str_slashes(text);
          default: return json_str(json({{"log", text}, {"level", "warn"}}).dump());
        }
      };
      // Inside the large string: as it stands, the unit's own scan finds it and the helper maps
      // the string for the walk; the \uXXXX form is found in the decoded text scanned ahead, and
      // mapped by the walk; JSON in the string is left to the walk.
      std::vector<std::string> msgs = {message(big, form(small))};
      if (f != 2) msgs.push_back(message(form(inside), json_str("ok")));
      for (const std::string& msg : msgs) {
        const Redacted a = redact_json(one, msg);
        const Redacted b = redact_json(two, msg);
        bool same = a.status == b.status && a.valid_json == b.valid_json && a.out == b.out &&
                    a.findings.size() == b.findings.size();
        for (size_t k = 0; same && k < a.findings.size(); ++k)
          same = a.findings[k].rule_id == b.findings[k].rule_id &&
                 a.findings[k].offset == b.findings[k].offset &&
                 a.findings[k].length == b.findings[k].length &&
                 a.findings[k].json_path == b.findings[k].json_path;
        // Masked, and (the same output as one thread's, which the cases above check for leaks
        // in every decoded string) not left as it stands.
        const bool masked = b.status == RedactStatus::kMasked && !b.findings.empty() &&
                            b.out.find(sc.secret) == std::string::npos;
        if (!same || !masked) {
          INFO("case " << ci << " rule " << sc.id << " form " << f << " inside "
                       << (msg.size() > big.size() + 200));
          CHECK(a.status == b.status);
          CHECK(a.out == b.out);
          CHECK(a.findings.size() == b.findings.size());
          CHECK(b.status == RedactStatus::kMasked);
          CHECK_FALSE(b.findings.empty());
          CHECK(b.out.find(sc.secret) == std::string::npos);
        }
        ++compared;
      }
    }
  }
  CHECK(cases == (secret_cases().size() + stride - 1) / stride);
  CHECK(cases > 5);
  CHECK(compared == cases * 7);
}

// filter --format json scans a batch of lines at once, and the decoded escaped strings of its
// lines as a second batch; only lines with an event there are redacted one by one. Whatever the
// batch, each line must come out as redact_json makes it alone, with the same findings and the
// same invalid-JSON verdict: every secret case in several JSON forms (as it stands, \uXXXX,
// \/, JSON held in a string, in a key, after a key as written and escaped, in a line that is not
// JSON), between clean lines with and without escapes, on one thread and on two.
TEST_CASE("properties: filter --format json gives each line what redact_json gives it alone",
          "[properties][json]") {
  constexpr size_t kForms = 15;  // lines per secret case, below
  std::vector<std::string> lines;
  for (size_t ci = 0; ci < secret_cases().size(); ci += kSanitizerStride) {
    const SecretCase& sc = secret_cases()[ci];
    const std::string text = kBefore + sc.text + kAfter;
    const std::string u = json_str_uescaped(text, sc.secret);
    lines.push_back(R"({"msg":)" + json_str(text) + "}");
    lines.push_back(R"({"level":"warn","msg":)" + u + R"(,"n":1})");
    lines.push_back(R"({"msg":)" + json_str_slashes(text) + "}");
    lines.push_back(R"({"inner":)" + json_str(json({{"log", text}}).dump()) + "}");
    lines.push_back(R"({"inner":)" + json_str(R"({"log":)" + u + "}") + "}");
    lines.push_back("{" + u + ":true}");
    lines.push_back(R"({"msg":)" + u);  // not JSON: cut short
    lines.push_back(R"({x"y )" + u + "}");  // not JSON, its quotes paired as a lenient reader does
    lines.push_back(R"({"password":)" + u + "}");  // a value after a key, with escapes
    // The secret alone as a password, one ASCII character \u-escaped: only its key says what
    // it is.
    size_t mid = sc.secret.size() / 2;
    while (mid < sc.secret.size() && static_cast<unsigned char>(sc.secret[mid]) >= 0x80) ++mid;
    if (mid == sc.secret.size()) mid = 0;
    lines.push_back(R"({"password": )" + json_str_uescaped(sc.secret, sc.secret.substr(mid, 1)) +
                    "}");
    lines.push_back(R"({"api_key": )" + json_str_slashes(text) + R"(, "n": 2})");
    // The same after a key written with escapes: the value as it stands, then \u-escaped.
    lines.push_back(R"({"pass\u0077ord": )" + json_str(sc.secret) + "}");
    lines.push_back(R"({"api\u005fkey": )" + json_str_uescaped(sc.secret, sc.secret.substr(mid, 1)) +
                    R"(, "n": 3})");
    lines.push_back(R"({"msg":"clean\tline","at":"a\\b"})");
    lines.push_back(R"({"msg":"plain line )" + std::to_string(ci) + R"("})");
    REQUIRE(lines.size() % kForms == 0);
  }
  // What each line gives alone.
  Redactor alone(builtin_set());
  std::vector<std::string> want(lines.size());
  std::vector<std::vector<std::string>> want_findings(lines.size());
  std::vector<bool> want_valid(lines.size());
  auto describe = [](const Finding& f) {
    return f.rule_id + "@" + std::to_string(f.offset) + "+" + std::to_string(f.length) + " " +
           f.json_path;
  };
  size_t masked = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    Findings fs;
    JsonInfo info;
    std::string out;
    RedactStatus st = alone.redact_json(lines[i], out, fs, &info);
    REQUIRE(st != RedactStatus::kError);
    want[i] = st == RedactStatus::kMasked ? out : lines[i];
    masked += st == RedactStatus::kMasked;
    for (const Finding& f : fs) want_findings[i].push_back(describe(f));
    want_valid[i] = info.valid;
  }
  CHECK(masked * 3 > lines.size());  // the forms above hide a secret in most lines
  std::string input;
  for (const std::string& l : lines) input += l + "\n";

  EngineHolder holder(builtin_set());
  FollowingRedactor following(holder);
  for (size_t threads : {1, 2}) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::thread writer([&] {
      scrub::write_all(fds[1], input);
      ::close(fds[1]);
    });
    std::string out;
    std::vector<std::vector<std::string>> got_findings(lines.size());
    std::vector<bool> got_valid(lines.size(), true);
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { out.append(s); };
    cb.finding = [&](const Finding& f, const AlertContext& c) {
      REQUIRE(c.line >= 1);
      REQUIRE(c.line <= lines.size());
      got_findings[c.line - 1].push_back(describe(f));
    };
    cb.incident = [&](const std::string& kind, const std::string&, const AlertContext& c) {
      REQUIRE(kind == "invalid-json");
      got_valid[c.line - 1] = false;
    };
    StreamStats stats;
    StreamResult r = process_stream(fds[0], "t", StreamMode::kJson, 1 << 20, following, cb, stats,
                                    nullptr, threads);
    writer.join();
    ::close(fds[0]);
    REQUIRE(r == StreamResult::kOk);
    std::vector<std::string> got;
    for (size_t b = 0, e; b < out.size(); b = e + 1) {
      e = out.find('\n', b);
      REQUIRE(e != std::string::npos);
      got.push_back(out.substr(b, e - b));
    }
    REQUIRE(got.size() == lines.size());
    size_t differ = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (got[i] == want[i] && got_findings[i] == want_findings[i] && got_valid[i] == want_valid[i])
        continue;
      ++differ;
      INFO("threads " << threads << ", line " << i + 1 << " (case " << i / kForms << ", form " << i % kForms
                      << "): output " << (got[i] == want[i] ? "same" : "differs") << ", findings "
                      << got_findings[i].size() << " against " << want_findings[i].size()
                      << ", valid " << got_valid[i] << " against " << want_valid[i]);
      CHECK(false);
      if (differ > 5) break;
    }
    CHECK(differ == 0);
  }
}
