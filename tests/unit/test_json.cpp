#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "engine_fixture.h"
#include "filter/json_string.h"

using namespace scrub;
using namespace scrub::test;

namespace {
const char* kJsonRules = R"(
[[rules]]
id = "github-pat"
description = "GitHub token"
regex = '''\b(ghp_[0-9A-Za-z]{36})\b'''
keywords = ["ghp_"]
[[rules]]
id = "generic-password"
description = "password assignment"
regex = '''(?i)(?:password|passwd)["']?\s*[:=]\s*["']?([^\s"',;\\]{6,128})'''
entropy = 2.5
keywords = ["pass"]
)";
const std::string kJsonGhp = "ghp_" + fake(36, 1);
const std::string kSecret = fake(20, 2);

std::string unicode_escape_all(const std::string& s) {
  std::string out;
  char buf[8];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "\\u%04X", c);
    out += buf;
  }
  return out;
}
}  // namespace

TEST_CASE("clean JSON passes byte-identical", "[json]") {
  Redactor r(make_set(kJsonRules, {{"env:X_SECRET", kSecret}}));
  for (std::string line : {R"({"result":{"content":[{"type":"text","text":"hi \"there\" \\ /"}]},"jsonrpc":"2.0","id":3})",
                           R"([1,2.5e10,true,null,"x"])", R"(  {"a" : [ ] }  )"}) {
    auto res = redact_json(r, line);
    INFO(line);
    CHECK(res.status == RedactStatus::kClean);
    CHECK(res.valid_json);
  }
}

TEST_CASE("a secret in a string value is masked in place", "[json]") {
  Redactor r(make_set(kJsonRules));
  auto res = redact_json(r, R"({"result":{"content":[{"type":"text","text":"token )" + kJsonGhp +
                                R"( here"}]},"jsonrpc":"2.0","id":7})");
  CHECK(res.out ==
        R"({"result":{"content":[{"type":"text","text":"token [REDACTED:github-pat] here"}]},"jsonrpc":"2.0","id":7})");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].json_path == "result.content[0].text");
}

TEST_CASE("escaped secrets are decoded, found and mapped back", "[json]") {
  Redactor r(make_set(kJsonRules, {{"env:X_SECRET", kSecret}}));
  SECTION("every character as \\uXXXX") {
    const std::string line = R"({"t":"k=)" + unicode_escape_all(kSecret) + R"( end"})";
    auto res = redact_json(r, line);
    CHECK(res.out == R"({"t":"k=[REDACTED:known-secret] end"})");
    REQUIRE(res.findings.size() == 1);
    CHECK(res.findings[0].offset == 8);
    CHECK(res.findings[0].length == kSecret.size() * 6);
    CHECK(res.findings[0].encoded);
  }
  SECTION("a URL with \\/ escapes") {
    auto res = redact_json(r, R"({"u":"https:\/\/h\/x?key=)" + kSecret + R"(\/y"})");
    CHECK(res.out == R"({"u":"https:\/\/h\/x?key=[REDACTED:known-secret]\/y"})");
  }
  SECTION("only the secret's escape sequences change; the rest stays as written") {
    const std::string head = R"({"t":"\u0041\/B\tC k=)";
    const std::string line = head + unicode_escape_all(kSecret.substr(0, 3)) + kSecret.substr(3) +
                             R"( \u00e9\ud83d\ude00"})";
    auto res = redact_json(r, line);
    CHECK(res.out == head + R"([REDACTED:known-secret] \u00e9\ud83d\ude00"})");
    REQUIRE(res.findings.size() == 1);
    CHECK(res.findings[0].offset == head.size());
    CHECK(res.findings[0].length == 3 * 6 + kSecret.size() - 3);
  }
  SECTION("JSON nested in a JSON string keeps its own formatting") {
    const std::string line =
        R"({"text":"{\n  \"AWS_SECRET\": \")" + kSecret + R"(\",\n  \"PATH\": \"/usr/bin\"\n}"})";
    auto res = redact_json(r, line);
    CHECK(res.out ==
          R"({"text":"{\n  \"AWS_SECRET\": \"[REDACTED:known-secret]\",\n  \"PATH\": \"/usr/bin\"\n}"})");
    REQUIRE(res.findings.size() == 1);
    CHECK(res.findings[0].json_path == "text>AWS_SECRET");
  }
  SECTION("a rule that needs the decoded text (quotes escaped)") {
    auto res = redact_json(r, R"({"log":"{\"password\":\"S3cretPassw0rdX9\"}"})");
    CHECK(res.out == R"({"log":"{\"password\":\"[REDACTED:generic-password]\"}"})");
  }
}

TEST_CASE("keys and numbers are masked and the result stays valid JSON", "[json]") {
  const std::string digits = "98765432109876";
  Redactor r(make_set(kJsonRules, {{"env:PIN_SECRET", digits}}));
  auto res = redact_json(r, R"({")" + kJsonGhp + R"(":1,"pin":)" + digits + R"(})");
  CHECK(res.out == R"({"[REDACTED:github-pat]":1,"pin":"[REDACTED:known-secret]"})");
  CHECK(nlohmann::json::accept(res.out));
  // A key holding a secret never appears in a path.
  auto nested = redact_json(r, R"({")" + kJsonGhp + R"(":{"x":")" + digits + R"("}})");
  for (const auto& f : nested.findings) CHECK(f.json_path.find("ghp_") == std::string::npos);
}

TEST_CASE("invalid JSON is masked as text and reported", "[json]") {
  Redactor r(make_set(kJsonRules));
  auto res = redact_json(r, "npm WARN " + kJsonGhp + " {");
  CHECK_FALSE(res.valid_json);
  CHECK(res.out == "npm WARN [REDACTED:github-pat] {");
}

TEST_CASE("json_unescape maps decoded bytes back to raw offsets", "[json]") {
  std::string decoded;
  std::vector<uint32_t> offs;
  REQUIRE(json_unescape(R"(a\u00e9\n\ud83d\ude00b)", decoded, &offs));
  CHECK(decoded == "a\xc3\xa9\n\xf0\x9f\x98\x80" "b");
  CHECK(offs == std::vector<uint32_t>{0, 1, 1, 7, 9, 9, 9, 9, 21, 22});
  REQUIRE(json_unescape(R"(\ud800x)", decoded, &offs));
  CHECK(decoded == "\xef\xbf\xbdx");  // a lone surrogate becomes U+FFFD
  CHECK_FALSE(json_unescape(R"(bad\q)", decoded, nullptr));
}

TEST_CASE("the segment offset map answers as the dense one", "[json]") {
  for (const std::string& raw :
       {std::string(R"(a\u00e9\n\ud83d\ude00b)"), std::string("plain text"), std::string(""),
        std::string(R"(\n\n\"x\"\\)"), std::string(R"(ab\/cd\u0041\u0042ef)"),
        std::string(R"(\ud800x\tend)")}) {
    INFO(raw);
    std::string dense_out, sparse_out;
    std::vector<uint32_t> offs;
    OffsetMap map;
    REQUIRE(json_unescape(raw, dense_out, &offs));
    REQUIRE(json_unescape_mapped(raw, sparse_out, &map));
    CHECK(sparse_out == dense_out);
    REQUIRE(map.size() == offs.size());
    for (size_t d = 0; d < offs.size(); ++d) CHECK(map.to_raw(d) == offs[d]);
    for (size_t r = 0; r <= raw.size() + 1; ++r) {
      CHECK(map.first_at_or_after(r) ==
            size_t(std::lower_bound(offs.begin(), offs.end(), r) - offs.begin()));
      CHECK(map.first_after(r) == size_t(std::upper_bound(offs.begin(), offs.end(), r) - offs.begin()));
    }
  }
}

// json_offset_map makes the map json_unescape_mapped makes, without decoding: the two-thread scan
// takes a large string's decoded text from simdjson's parse and maps only where it masks. Random
// strings of every kind of escape, malformed ones too, across the 64-byte blocks it reads; and
// where the string is valid JSON, simdjson decodes it to the same bytes as json_unescape.
TEST_CASE("the offset map alone is the decoder's map, and simdjson decodes as the decoder",
          "[json]") {
  static const char* kPieces[] = {"a",        "xyz ",     R"(\n)",         R"(\")",
                                  R"(\\)",    R"(\/)",    R"(\t)",         R"(\u0041)",
                                  R"(\u00e9)", R"(\u20ac)", R"(\ud83d\ude00)", R"(\ud800)",
                                  R"(\udc00x)", "\xc3\xa9", R"(\u0000)",    R"(\b\f\r)"};
  static const char* kBroken[] = {R"(\q)", R"(\u12G)", R"(\uZZZZ)"};
  uint32_t x = 11;
  auto next = [&] { return (x = x * 1103515245u + 12345u) >> 16; };
  simdjson::dom::parser parser;
  size_t valid_compared = 0;
  for (int round = 0; round < 600; ++round) {
    std::string raw;
    const size_t pieces = next() % 90;
    // Every fifth string holds a malformed escape, between two pieces, or a backslash at its end.
    const bool broken = round % 5 == 4;
    const size_t bad_at = broken ? next() % (pieces + 2) : pieces + 2;
    for (size_t i = 0; i < pieces; ++i) {
      if (i == bad_at) raw += kBroken[next() % std::size(kBroken)];
      const char* piece = kPieces[next() % std::size(kPieces)];
      // Lone surrogates (not JSON to simdjson) in every third string only.
      if (round % 3 != 0 && piece[0] == '\\' && piece[1] == 'u' && piece[2] == 'd' &&
          (piece[3] == '8' || piece[3] == 'c') && piece[6] != '\\')
        piece = "b";
      raw += piece;
    }
    if (bad_at >= pieces && broken) raw += bad_at == pieces ? R"(\uZZZZ)" : "\\";
    INFO("round " << round << ": " << raw);
    std::string decoded;
    OffsetMap decoder_map, alone;
    const bool ok = json_unescape_mapped(raw, decoded, &decoder_map);
    REQUIRE(json_offset_map(raw, &alone) == ok);
    REQUIRE(alone.size() == decoder_map.size());
    for (size_t d = 0; d < decoder_map.size(); ++d) REQUIRE(alone.to_raw(d) == decoder_map.to_raw(d));
    for (size_t r = 0; r <= raw.size() + 1; ++r)
      REQUIRE(alone.first_at_or_after(r) == decoder_map.first_at_or_after(r));
    if (broken) CHECK_FALSE(ok);
    // Lone surrogates are not JSON to simdjson (json_unescape makes them U+FFFD).
    if (!ok || raw.find(R"(\ud800)") != std::string::npos || raw.find(R"(\udc00)") != std::string::npos)
      continue;
    const std::string doc = "[\"" + raw + "\"]";
    simdjson::dom::element root;
    REQUIRE(parser.parse(doc).get(root) == simdjson::SUCCESS);
    std::string_view by_simdjson;
    REQUIRE(root.at(0).get_string().get(by_simdjson) == simdjson::SUCCESS);
    CHECK(by_simdjson == decoded);
    ++valid_compared;
  }
  CHECK(valid_compared > 300);
}

TEST_CASE("json_string_end finds the first quote no backslash escapes", "[json]") {
  // The reference: a quote ends the string when an even run of backslashes precedes it.
  auto reference = [](std::string_view s, size_t b) {
    for (size_t i = b; i < s.size(); ++i) {
      if (s[i] != '"') continue;
      size_t k = i;
      while (k > b && s[k - 1] == '\\') --k;
      if ((i - k) % 2 == 0) return i;
    }
    return s.size();
  };
  CHECK(json_string_end(R"(abc"def)", 0) == 3);
  CHECK(json_string_end(R"(a\"bc"d)", 0) == 5);   // an escaped quote, then the end
  CHECK(json_string_end(R"(a\\"bc)", 0) == 3);  // an escaped backslash, then the end
  CHECK(json_string_end(R"(no end\)", 0) == 7);   // a trailing backslash, no quote
  CHECK(json_string_end("", 0) == 0);
  // Runs of backslashes of every length, ending at every place around the 16-byte blocks.
  std::string s;
  uint32_t x = 7;
  for (int i = 0; i < 4000; ++i) {
    x = x * 1103515245u + 12345u;
    const unsigned r = (x >> 16) % 10;
    s += r < 3 ? '\\' : r < 4 ? '"' : static_cast<char>('a' + r);
  }
  // And runs longer than a block (64 bytes), odd and even, each followed by a quote.
  std::string runs;
  for (size_t len = 1; len <= 150; len += 7) runs += "ab" + std::string(len, '\\') + "\"c";
  // An escaped quote that opens a block with no backslash in it (for some start: every start
  // is tried), the escaping backslash at the end of the block before.
  const std::string edge = std::string(70, 'a') + "\\\"" + std::string(100, 'b') + "\"";
  for (const std::string& t : {s, runs, edge}) {
    for (size_t b = 0; b <= t.size(); ++b) {
      INFO("start " << b);
      bool escaped = true;
      const size_t end = json_string_end(t, b, &escaped);
      REQUIRE(end == reference(t, b));
      // Whether the content holds a backslash: only those before the end count.
      REQUIRE(escaped == (t.find('\\', b) < end));
    }
  }
}

TEST_CASE("deep nesting and long backslash runs have defined outcomes", "[json]") {
  Redactor r(make_set(kJsonRules));
  std::string deep(10000, '[');
  deep += "\"" + kJsonGhp + "\"";
  deep += std::string(10000, ']');
  auto res = redact_json(r, deep);
  CHECK(res.status == RedactStatus::kMasked);
  CHECK(res.out.find("ghp_") == std::string::npos);
  std::string slashes = "{\"a\":\"" + std::string(20000, '\\') + "\"}";
  auto s = redact_json(r, slashes);
  CHECK(s.status == RedactStatus::kClean);
}

// Redactor::set_parallel: a unit over kParallelBytes is scanned on two threads. Output and
// findings are those of one thread, for every kind of string such a message holds: large
// escaped text (decoded ahead of the walk), large JSON held in a string (walked in its turn),
// small strings, a large string without escapes, and secrets only escapes reveal.
TEST_CASE("a large unit scanned on two threads gives what one thread gives", "[json][threads]") {
  auto set = make_set(kJsonRules, {{"env:X_SECRET", kSecret}});
  std::string filler;
  for (int i = 0; filler.size() < 100000; ++i) filler += "line " + std::to_string(i) + R"(: \"ok\"\n)";
  std::string nested_filler;  // the same lines escaped twice: valid inside JSON held in a string
  for (int i = 0; nested_filler.size() < 100000; ++i)
    nested_filler += "line " + std::to_string(i) + R"(: \\\"ok\\\"\\n)";
  std::string plain;
  while (plain.size() < 80000) plain += "plain words without escapes ";
  const std::string msg =
      R"({"result":{"content":[{"type":"text","text":"start )" + unicode_escape_all(kSecret) + R"(\n)" +
      filler + R"({\"password\": \"Hunter2Secret9x\"}\n)" + filler + R"(\n)" + kJsonGhp + R"("},)" +
      R"({"type":"text","text":"{\"log\": \")" + nested_filler + R"(\", \"k\": \")" + kSecret + R"(\"}"},)" +
      R"({"type":"text","text":")" + plain + kJsonGhp + R"( end"},)" +
      R"({"type":"text","text":"small \u0041 )" + kSecret + R"("}]},"jsonrpc":"2.0","id":9})";
  REQUIRE(msg.size() > Redactor::kParallelBytes);
  REQUIRE(nlohmann::json::accept(msg));
  Redactor one(set), two(set);
  two.set_parallel(true);
  auto a = redact_json(one, msg);
  auto b = redact_json(two, msg);
  REQUIRE(a.status == RedactStatus::kMasked);
  REQUIRE(b.status == RedactStatus::kMasked);
  CHECK(a.out == b.out);
  REQUIRE(a.findings.size() == b.findings.size());
  for (size_t i = 0; i < a.findings.size(); ++i) {
    CHECK(a.findings[i].rule_id == b.findings[i].rule_id);
    CHECK(a.findings[i].offset == b.findings[i].offset);
    CHECK(a.findings[i].length == b.findings[i].length);
    CHECK(a.findings[i].json_path == b.findings[i].json_path);
  }
  // What that is: each secret masked once, in its place.
  std::vector<std::string> rules;
  for (const auto& f : b.findings) rules.push_back(f.rule_id + "@" + f.json_path);
  CHECK(rules == std::vector<std::string>{"known-secret@result.content[0].text",
                                          "generic-password@result.content[0].text",
                                          "github-pat@result.content[0].text",
                                          "known-secret@result.content[1].text>k",
                                          "github-pat@result.content[2].text",
                                          "known-secret@result.content[3].text"});
  CHECK(b.out.find(kSecret) == std::string::npos);
  CHECK(b.out.find(kJsonGhp) == std::string::npos);
  CHECK(b.out.find("Hunter2Secret9x") == std::string::npos);
  CHECK(b.out.find(R"(small \u0041 [REDACTED:known-secret]")") != std::string::npos);
  CHECK(nlohmann::json::accept(b.out));
  // A large unit that is not JSON to simdjson (a lone surrogate): the lenient path, as one thread.
  std::string broken = msg;
  broken.insert(broken.find("small \\u0041"), "\\ud800 ");
  REQUIRE_FALSE(nlohmann::json::accept(broken));
  auto d1 = redact_json(one, broken);
  auto d2 = redact_json(two, broken);
  CHECK_FALSE(d2.valid_json);
  CHECK(d1.status == d2.status);
  CHECK(d1.out == d2.out);
  CHECK(d1.findings.size() == d2.findings.size());
  CHECK(d2.out.find(kSecret) == std::string::npos);
  CHECK(d2.out.find(kJsonGhp) == std::string::npos);
  // Below the threshold nothing changes either.
  auto c = redact_json(two, R"({"t":"k=)" + unicode_escape_all(kSecret) + R"( end"})");
  CHECK(c.out == R"({"t":"k=[REDACTED:known-secret] end"})");
}

// The two-thread scan skips the walk when it has seen the whole unit clean: no span in the unit's
// own scan, and every escaped string decoded and scanned ahead. A secret only escapes reveal, in
// a string too small to be scanned ahead or in JSON held in a string, must stop that shortcut.
TEST_CASE("two threads: escapes that hide a secret outside the large strings still count",
          "[json][threads]") {
  auto set = make_set(kJsonRules, {{"env:X_SECRET", kSecret}});
  std::string filler;
  for (int i = 0; filler.size() < Redactor::kParallelBytes; ++i)
    filler += "line " + std::to_string(i) + R"(: \"ok\"\n)";
  const std::string big = R"({"type":"text","text":")" + filler + R"("})";
  const std::string hidden = unicode_escape_all(kSecret);
  const std::string small_msg = R"({"result":{"content":[)" + big +
                                R"(,{"type":"text","text":"k=)" + hidden +
                                R"("}]},"jsonrpc":"2.0","id":3})";
  const std::string nested_msg = R"({"result":{"content":[)" + big +
                                 R"(,{"type":"text","text":"{\"k\": \")" + hidden +
                                 R"(\"}"}]},"jsonrpc":"2.0","id":4})";
  const std::string clean_msg = R"({"result":{"content":[)" + big + R"(]},"jsonrpc":"2.0","id":5})";
  Redactor one(set), two(set);
  two.set_parallel(true);
  for (const std::string* msg : {&small_msg, &nested_msg}) {
    REQUIRE(msg->size() > Redactor::kParallelBytes);
    REQUIRE(nlohmann::json::accept(*msg));
    std::vector<SecretSpan> raw;  // the unit's own scan finds nothing: only decoding reveals it
    REQUIRE(two.scanner().find(*msg, raw) == ScanStatus::kOk);
    REQUIRE(raw.empty());
    auto a = redact_json(one, *msg);
    auto b = redact_json(two, *msg);
    REQUIRE(b.status == RedactStatus::kMasked);
    CHECK(a.out == b.out);
    REQUIRE(b.findings.size() == 1);
    CHECK(b.findings[0].rule_id == "known-secret");
    CHECK(b.findings[0].json_path ==
          (msg == &small_msg ? "result.content[1].text" : "result.content[1].text>k"));
    CHECK(b.out.find(hidden) == std::string::npos);
    CHECK(b.out.size() < msg->size());
  }
  auto c = redact_json(two, clean_msg);
  CHECK(c.status == RedactStatus::kClean);
  CHECK(c.findings.empty());
}

// The parse that validates a unit hands its document to JsonInfo::on_parsed on two threads too:
// the wrap reads a response's id there and forgets its request (one parse per message).
TEST_CASE("two threads: the validating parse is handed to the caller", "[json][threads]") {
  auto set = make_set(kJsonRules, {{"env:X_SECRET", kSecret}});
  std::string filler;
  for (int i = 0; filler.size() < Redactor::kParallelBytes; ++i)
    filler += "line " + std::to_string(i) + R"(: \"ok\"\n)";
  Redactor two(set);
  two.set_parallel(true);
  for (const std::string& tail : {std::string("done"), "k=" + kSecret}) {
    const std::string msg = R"({"jsonrpc":"2.0","id":41,"result":{"content":[{"type":"text","text":")" +
                            filler + tail + R"("}]}})";
    REQUIRE(msg.size() > Redactor::kParallelBytes);
    int calls = 0;
    int64_t id = 0;
    JsonInfo info;
    info.on_parsed = [&](const simdjson::dom::element& root) {
      ++calls;
      CHECK(root["id"].get_int64().get(id) == simdjson::SUCCESS);
    };
    std::string out;
    Findings findings;
    const RedactStatus st = two.redact_json(msg, out, findings, &info);
    INFO(tail.substr(0, 4));
    CHECK(st == (tail == "done" ? RedactStatus::kClean : RedactStatus::kMasked));
    CHECK(calls == 1);
    CHECK(id == 41);
    CHECK(info.valid);
  }
}

TEST_CASE("a key written with escapes still reads with its value", "[json]") {
  // A serializer that escapes a key's characters (`\u0077` for w; `\/` for a slash, as PHP
  // writes it) hides the key from the raw scan, and the rules that read a key and its value
  // together saw the value alone. The value is scanned after its decoded key.
  Redactor r(make_set(kJsonRules, {}));
  const std::string pw = "Qm7vR2xK9pLw4Z";  // a made-up value with digits, as the rule wants
  auto res = redact_json(r, R"({"user":"ana","pass\u0077ord":")" + pw + R"("})");
  CHECK(res.out == R"({"user":"ana","pass\u0077ord":"[REDACTED:generic-password]"})");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].rule_id == "generic-password");
  CHECK(res.findings[0].json_path == "password");  // the decoded key
  CHECK(res.findings[0].offset == 31);
  CHECK(res.findings[0].length == pw.size());
  CHECK_FALSE(res.findings[0].encoded);  // the value itself is as written

  // Nested, blanks around the colon, the value with an escape of its own.
  auto nested = redact_json(r, R"({"db":{"PASS\u0057ORD" : "ab\/)" + pw + R"("}})");
  CHECK(nested.out == R"({"db":{"PASS\u0057ORD" : "[REDACTED:generic-password]"}})");
  REQUIRE(nested.findings.size() == 1);
  CHECK(nested.findings[0].json_path == "db.PASSWORD");
  CHECK(nested.findings[0].encoded);

  // A number after such a key, as the raw scan reads one after a plain key: it becomes a
  // masked string. Not inside an array, not true/false/null (as after a plain key).
  auto number = redact_json(r, R"({"pass\u0077ord": 48213907655, "n": 1})");
  CHECK(number.out == R"({"pass\u0077ord": "[REDACTED:generic-password]", "n": 1})");
  REQUIRE(number.findings.size() == 1);
  CHECK(number.findings[0].json_path == "password");
  CHECK(number.findings[0].offset == 18);
  CHECK(number.findings[0].length == 11);
  CHECK(redact_json(r, R"({"pass\u0077ord": [48213907655]})").status == RedactStatus::kClean);
  CHECK(redact_json(r, R"({"pass\u0077ord": true})").status == RedactStatus::kClean);

  // The same escaped text as a value, not a key: nothing reads it with the next member.
  const std::string not_key = R"({"note":"pass\u0077ord","x":")" + pw + R"("})";
  CHECK(redact_json(r, not_key).status == RedactStatus::kClean);
  // A key the rules' keywords do not name: its value is not scanned again.
  CHECK(redact_json(r, R"({"n\u0061me":")" + pw + R"("})").status == RedactStatus::kClean);
}

TEST_CASE("a key-value rule finds a value whose escapes break the match in the raw bytes",
          "[json]") {
  // Python's json.dumps writes non-ASCII as \uXXXX, PHP's json_encode writes / as \/: in the raw
  // bytes the password rule's value stops at the backslash (too short here), and the decoded
  // value alone has no "password" before it. The value is also scanned after its key.
  Redactor r(make_set(kJsonRules, {}));
  const std::string value = "s3cr" + std::string("\\u00e9") + "tPassw0rd";  // s3crétPassw0rd
  auto res = redact_json(r, R"({"user":"ana","password": ")" + value + R"("})");
  CHECK(res.out == R"({"user":"ana","password": "[REDACTED:generic-password]"})");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].rule_id == "generic-password");
  CHECK(res.findings[0].json_path == "password");
  CHECK(res.findings[0].offset == 27);
  CHECK(res.findings[0].length == value.size());
  CHECK(res.findings[0].encoded);

  auto php = redact_json(r, R"({"db":{"password":"abc\/def123456"}})");
  CHECK(php.out == R"({"db":{"password":"[REDACTED:generic-password]"}})");
  REQUIRE(php.findings.size() == 1);
  CHECK(php.findings[0].json_path == "db.password");

  // A password with a quote in it: the rule's value stops at the quote, the password does not.
  auto quoted = redact_json(r, R"({"password":"Hunter2Hunter2\"rest of it","n":1})");
  CHECK(quoted.out == R"({"password":"[REDACTED:generic-password]","n":1})");
  REQUIRE(quoted.findings.size() == 1);
  CHECK(quoted.findings[0].offset == 13);
  CHECK(quoted.findings[0].length == 26);

  // The same value with no key before it holds no password.
  const std::string alone = R"(["s3cr\u00e9tPassw0rd","abc\/def123456"])";
  CHECK(redact_json(r, alone).out == alone);
  CHECK(redact_json(r, alone).findings.empty());
}

// A padded unit (the wrap's and tcp's lines: the bytes after them are readable) is parsed where
// it is. Whatever those bytes hold (more JSON, quotes, backslashes, a cut-off string), the result
// is the one the copying parse gives: masks, findings, validity, on every path (small, and large
// enough for the two-thread scan).
TEST_CASE("redact_json: a padded unit gives what the copied one gives, whatever follows it", "[json]") {
  Redactor r(make_set(kJsonRules, {{"env:X_SECRET", kSecret}}));
  r.set_parallel(true);
  const std::string big(300000, 'x');
  const std::vector<std::string> units = {
      R"({"result":{"content":[{"type":"text","text":"token )" + kJsonGhp + R"( here"}]},"jsonrpc":"2.0","id":7})",
      R"({"a":"k=)" + kSecret + R"(","b":"\u0070assword=)" + fake(12, 9) + R"("})",
      R"({"text":")" + big + " " + kJsonGhp + " " + big + R"(","id":1})",
      R"({"text":")" + big + R"(","id":1})",
      R"({"cut":"no end)",
      R"([1,2,3] trailing)"};
  const std::vector<std::string> tails = {std::string(64, ' '), std::string(64, '"'),
                                          std::string(64, '\\'), R"("}]}{"a":")" + std::string(53, 'z')};
  for (const std::string& unit : units) {
    std::string want_out;
    Findings want_findings;
    JsonInfo want_info;
    const RedactStatus want = r.redact_json(unit, want_out, want_findings, &want_info);
    for (const std::string& tail : tails) {
      INFO("unit of " << unit.size() << " bytes, tail starting " << tail.substr(0, 4));
      const std::string buffer = unit + tail;
      std::string out;
      Findings findings;
      JsonInfo info;
      const RedactStatus got = r.redact_json(std::string_view(buffer.data(), unit.size()), out, findings,
                                             &info, false, /*padded=*/true);
      CHECK(got == want);
      CHECK(out == want_out);
      CHECK(info.valid == want_info.valid);
      REQUIRE(findings.size() == want_findings.size());
      for (size_t i = 0; i < findings.size(); ++i) {
        CHECK(findings[i].rule_id == want_findings[i].rule_id);
        CHECK(findings[i].offset == want_findings[i].offset);
        CHECK(findings[i].length == want_findings[i].length);
      }
    }
  }
}

// A string that starts like JSON but is not JSON as a whole (a log of JSON lines and plain
// lines, as a tool that reads a log file returns it): the nested parse fails and the string is
// masked as the flat text it is, with the scan of its decoded text made once and handed to
// both passes. Each secret is masked where it stands: in a JSON line's value, in a plain line,
// and one that only the second decoding (of the JSON line's own escapes) reveals.
TEST_CASE("a log of JSON lines held in a string is masked as flat text", "[json]") {
  Redactor r(make_set(kJsonRules, {{"env:X_SECRET", kSecret}}));
  const std::string log = "{\"level\":\"info\",\"msg\":\"started\"}\n"
                          "{\"level\":\"warn\",\"msg\":\"push with " + kJsonGhp + "\"}\n"
                          "plain line key=" + kSecret + " done\n"
                          "{\"level\":\"info\",\"msg\":\"k=" + unicode_escape_all(kSecret) + "\"}\n";
  const std::string line = R"({"result":{"content":[{"type":"text","text":)" +
                           nlohmann::json(log).dump() + R"(}]},"jsonrpc":"2.0","id":3})";
  REQUIRE(nlohmann::json::accept(line));
  REQUIRE_FALSE(nlohmann::json::accept(log));
  auto res = redact_json(r, line);
  CHECK(res.status == RedactStatus::kMasked);
  CHECK(res.valid_json);
  CHECK(res.out ==
        R"({"result":{"content":[{"type":"text","text":"{\"level\":\"info\",\"msg\":\"started\"}\n)"
        R"({\"level\":\"warn\",\"msg\":\"push with [REDACTED:github-pat]\"}\n)"
        R"(plain line key=[REDACTED:known-secret] done\n)"
        R"({\"level\":\"info\",\"msg\":\"k=[REDACTED:known-secret]\"}\n"}]},"jsonrpc":"2.0","id":3})");
  std::vector<std::string> got;
  for (const auto& f : res.findings) got.push_back(f.rule_id + "@" + f.json_path);
  // The lenient pass over the log names a JSON line's key; the text pass after it, the rest.
  CHECK(got == std::vector<std::string>{"github-pat@result.content[0].text>msg",
                                        "known-secret@result.content[0].text>msg",
                                        "known-secret@result.content[0].text>"});
  CHECK(nlohmann::json::accept(res.out));
  // The same log as the whole line (not JSON to simdjson either): the lenient pass alone.
  auto flat = redact_json(r, log.substr(0, log.size() - 1));
  CHECK_FALSE(flat.valid_json);
  CHECK(flat.out.find(kSecret) == std::string::npos);
  CHECK(flat.out.find(kJsonGhp) == std::string::npos);
}
