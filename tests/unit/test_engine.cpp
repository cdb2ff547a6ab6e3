#include <catch2/catch.hpp>

#include <cstring>

#include "engine_fixture.h"
#include "filter/fingerprint.h"
#include "filter/literal_variants.h"

using namespace scrub;
using namespace scrub::test;

namespace {

const char* kRules = R"(
[allowlist]
regexes = ['''EXAMPLE$''']

[[rules]]
id = "github-pat"
description = "GitHub token"
regex = '''\b(ghp_[0-9A-Za-z]{36})\b'''
keywords = ["ghp_"]

[[rules]]
id = "aws-access-key"
description = "AWS key id"
regex = '''\b((?:AKIA|ASIA)[0-9A-Z]{16})\b'''
keywords = ["akia", "asia"]

[[rules]]
id = "stripe-secret"
description = "Stripe"
regex = '''\b(sk_live_[0-9a-zA-Z]{24,99})\b'''
keywords = ["sk_live_"]

[[rules]]
id = "generic-password"
description = "password assignment"
regex = '''(?i)(?:password|passwd)\s*[:=]\s*["']?([^\s"',;]{6,128})'''
entropy = 2.5
keywords = ["pass"]
  [[rules.allowlists]]
  stopwords = ["changeme"]

[[rules]]
id = "generic-token"
description = "token assignment"
regex = '''(?i)token\s*[:=]\s*["']?([0-9A-Za-z_]{20,80})'''
entropy = 3.0
keywords = ["token"]

[[rules]]
id = "pem-private-key"
description = "PEM private key"
regex = '''-----BEGIN[ A-Z]{0,40}PRIVATE KEY-----[\s\S]{16,1000}?-----END[ A-Z]{0,40}PRIVATE KEY-----'''
keywords = ["private key"]
)";

const std::string kGhp = "ghp_" + fake(36, 1);

}  // namespace

TEST_CASE("text mode masks exactly the secret group", "[engine]") {
  Redactor r(make_set(kRules));
  auto res = redact_text(r, "password = \"Hunter2Hunter2\" ok");
  REQUIRE(res.status == RedactStatus::kMasked);
  CHECK(res.out == "password = \"[REDACTED:generic-password]\" ok");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].rule_id == "generic-password");
  CHECK(res.findings[0].offset == 12);
  CHECK(res.findings[0].length == 14);
  CHECK(res.findings[0].fingerprint.size() == 12);
}

TEST_CASE("clean text is reported clean and untouched", "[engine]") {
  Redactor r(make_set(kRules));
  for (std::string line : {"", "hello world", "commit 3f2c1a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
                           "id 123e4567-e89b-12d3-a456-426614174000", "password = changeme123",
                           "password = ${DB_PASSWORD}"}) {
    auto res = redact_text(r, line);
    INFO(line);
    CHECK(res.status == RedactStatus::kClean);
    CHECK(res.findings.empty());
  }
}

TEST_CASE("entropy, stopwords and the generic digit rule filter findings", "[engine]") {
  Redactor r(make_set(kRules));
  CHECK(redact_text(r, "password: aaaaaaaaaa").status == RedactStatus::kClean);       // entropy
  CHECK(redact_text(r, "password: ChangeMeNow1").status == RedactStatus::kClean);     // stopword
  CHECK(redact_text(r, "password: NoDigitsHereAtAll").status == RedactStatus::kClean);  // generic
  CHECK(redact_text(r, "password: N0DigitsHereAtAll").status == RedactStatus::kMasked);
}

TEST_CASE("keywords gate a rule", "[engine]") {
  auto set = make_set(R"(
[[rules]]
id = "needs-keyword"
description = "x"
regex = '''\b([a-f0-9]{32})\b'''
keywords = ["apikey"]
)");
  Redactor r(set);
  const std::string hex = "0123456789abcdef0123456789abcdef";
  CHECK(redact_text(r, "value " + hex).status == RedactStatus::kClean);
  CHECK(redact_text(r, "APIKEY " + hex).out == "APIKEY [REDACTED:needs-keyword]");
}

TEST_CASE("every mask style", "[engine]") {
  const std::string stripe = "sk_live_" + fake(30, 2);
  const std::string line = "key " + stripe + " end";
  {
    Redactor r(make_set(kRules, {}, test_options(MaskStyle::kFixed)));
    CHECK(redact_text(r, line).out == "key [REDACTED] end");
  }
  {
    Redactor r(make_set(kRules, {}, test_options(MaskStyle::kPartial)));
    CHECK(redact_text(r, line).out == "key sk_live_[REDACTED:stripe-secret] end");
  }
  {
    Redactor r(make_set(kRules, {}, test_options(MaskStyle::kHash)));
    auto res = redact_text(r, line);
    REQUIRE(res.findings.size() == 1);
    CHECK(res.out == "key [REDACTED:stripe-secret:" + res.findings[0].fingerprint + "] end");
    // The fingerprint is an HMAC under the key: another key gives another fingerprint.
    EngineOptions other = test_options(MaskStyle::kHash);
    other.fingerprint_key = "another-key-entirely";
    Redactor r2(make_set(kRules, {}, other));
    CHECK(redact_text(r2, line).findings[0].fingerprint != res.findings[0].fingerprint);
  }
}

TEST_CASE("fingerprints are HMAC-SHA256 (RFC 4231), truncated", "[engine]") {
  // RFC 4231 test cases 2 and 1, keys alternating.
  const std::string key2 = "Jefe", data2 = "what do ya want for nothing?";
  const std::string key1(20, '\x0b'), data1 = "Hi There";
  const std::string mac2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  const std::string mac1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  for (int round = 0; round < 2; ++round) {
    CHECK(hmac_fingerprint(key2, data2, 64) == mac2);
    CHECK(hmac_fingerprint(key2, data2, 64) == mac2);  // the same key again
    CHECK(hmac_fingerprint(key1, data1, 64) == mac1);
    CHECK(hmac_fingerprint(key1, data1, 12) == mac1.substr(0, 12));
  }
  CHECK(hmac_fingerprint(key1, "", 64) != hmac_fingerprint(key1, data1, 64));
}

TEST_CASE("masked output never triggers a rule again", "[engine]") {
  for (MaskStyle m : {MaskStyle::kLabel, MaskStyle::kFixed, MaskStyle::kPartial, MaskStyle::kHash}) {
    Redactor r(make_set(kRules, {}, test_options(m)));
    const std::string line = "password = \"Hunter2Hunter2\" token=" + fake(30, 3) + " " + kGhp +
                             " sk_live_" + fake(30, 4);
    auto first = redact_text(r, line);
    REQUIRE(first.status == RedactStatus::kMasked);
    auto second = redact_text(r, first.out);
    INFO(to_string(m) << ": " << first.out);
    CHECK(second.status == RedactStatus::kClean);
  }
}

TEST_CASE("overlaps merge, specific beats generic, a known literal beats all", "[engine]") {
  SECTION("specific rule wins the label over a generic one on the same bytes") {
    Redactor r(make_set(kRules));
    auto res = redact_text(r, "token=" + kGhp);
    CHECK(res.out == "token=[REDACTED:github-pat]");
    REQUIRE(res.findings.size() == 1);
  }
  SECTION("a known literal is masked even where an allowlist would skip it") {
    // Shaped like a documented example key, which the global allowlist skips as a pattern.
    const std::string example_like = "AKIA" + std::string("ABCDEFGHIJKEXAMPLE").substr(0, 16);
    Redactor pattern_only(make_set(kRules));
    CHECK(redact_text(pattern_only, "id " + example_like.substr(0, 13) + "EXAMPLE").status ==
          RedactStatus::kClean);
    const std::string value = example_like.substr(0, 13) + "EXAMPLE";
    Redactor r(make_set(kRules, {{"env:AWS_ACCESS_KEY_ID", value}}));
    auto res = redact_text(r, "id " + value);
    CHECK(res.out == "id [REDACTED:known-secret]");
    REQUIRE(res.findings.size() == 1);
    CHECK(res.findings[0].secret_name == "env:AWS_ACCESS_KEY_ID");
    CHECK(res.findings[0].known_literal);
  }
  SECTION("a known literal overlapping a rule match takes the label") {
    const std::string value = fake(24, 9);
    Redactor r(make_set(kRules, {{"env:DB_PASSWORD", value}}));
    auto res = redact_text(r, "password=" + value);
    CHECK(res.out == "password=[REDACTED:known-secret]");
  }
}

TEST_CASE("open-ended tails are collapsed and every occurrence is masked", "[engine]") {
  Redactor r(make_set(kRules));
  std::string line;
  for (int i = 0; i < 300; ++i) line += "sk_live_" + fake(40, 100 + i) + " ";
  auto res = redact_text(r, line);
  REQUIRE(res.findings.size() == 300);
  CHECK(res.out.find("sk_live_") == std::string::npos);
  // One run of end offsets per token, not one event per extra byte.
  CHECK(r.scanner().match_events() >= 300);
}

TEST_CASE("unbounded rules are found by RE2 from the unit start", "[engine]") {
  Redactor r(make_set(kRules));
  const std::string body = fake(64, 5) + "\n" + fake(64, 6);
  const std::string key = "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----";
  auto res = redact_text(r, "x " + key + " y");
  CHECK(res.out == "x [REDACTED:pem-private-key] y");
}

TEST_CASE("known literals are found in their encoded forms", "[engine][literals]") {
  const std::string value = fake(20, 11) + "+/=&<>\"x";
  Redactor r(make_set("", {{"env:API_SECRET", value}}));
  SECTION("raw") { CHECK(redact_text(r, "a " + value + " b").out == "a [REDACTED:known-secret] b"); }
  SECTION("JSON-escaped") {
    CHECK(redact_text(r, "a " + json_escape(value) + " b").out == "a [REDACTED:known-secret] b");
  }
  SECTION("URL-encoded") {
    std::string enc;
    for (unsigned char c : value) {
      if (std::isalnum(c)) enc += static_cast<char>(c);
      else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        enc += buf;
      }
    }
    CHECK(redact_text(r, "q=" + enc + "&x=1").out == "q=[REDACTED:known-secret]&x=1");
  }
  SECTION("base64: no character that carries the value's bits stays in view") {
    // At each alignment, standard and URL-safe, alone (padded) and inside a blob: every base64
    // character whose six bits include one of the value's is masked, the edge ones that mix in
    // their neighbours' bits too. Characters wholly from the bytes around it may stay.
    for (size_t shift = 0; shift < 3; ++shift) {
      for (bool url : {false, true}) {
        for (bool alone : {true, false}) {
          const std::string before(alone ? shift : shift + 3, 'Q');
          const std::string bytes = before + value + (alone ? "" : "tail bytes");
          const std::string blob = base64_encode(bytes, url, true);
          INFO("shift " << shift << " url " << url << " alone " << alone);
          auto res = redact_text(r, "data " + blob + " end");
          REQUIRE(res.status == RedactStatus::kMasked);
          const size_t at = res.out.find("[REDACTED:known-secret]");
          REQUIRE(at != std::string::npos);
          // Characters [first, last) of the encoding hold bits of the value.
          const size_t first = 8 * before.size() / 6;
          const size_t last = (8 * (before.size() + value.size()) + 5) / 6;
          const std::string kept_before = res.out.substr(5, at - 5);
          const std::string after = res.out.substr(at + std::strlen("[REDACTED:known-secret]"));
          const std::string kept_after = after.substr(0, after.size() - std::strlen(" end"));
          CHECK(kept_before.size() <= first);
          CHECK(blob.compare(0, kept_before.size(), kept_before) == 0);
          CHECK(kept_after.size() <= blob.size() - last);
          CHECK(blob.compare(blob.size() - kept_after.size(), kept_after.size(), kept_after) == 0);
          CHECK(res.findings.size() == 1);
        }
      }
    }
  }
  SECTION("base64 inside a larger blob at every alignment") {
    for (size_t shift = 0; shift < 3; ++shift) {
      for (bool url : {false, true}) {
        std::string blob = base64_encode(std::string(shift + 3, 'Q') + value + "tail bytes", url);
        auto res = redact_text(r, "data " + blob);
        INFO("shift " << shift << " url " << url);
        REQUIRE(res.status == RedactStatus::kMasked);
        CHECK(res.out.find("[REDACTED:known-secret]") != std::string::npos);
        CHECK(res.findings.size() == 1);
      }
    }
  }
}

TEST_CASE("derived literals: lines of a multi-line value and URL passwords", "[engine][literals]") {
  const std::string pass = fake(16, 21);
  const std::string url = "postgresql://app:" + pass + "@db.internal:5432/prod";
  const std::string line1 = fake(40, 22), line2 = fake(40, 23);
  Redactor r(make_set("", {{"env:DATABASE_URL", url}, {"env:CERT", line1 + "\n" + line2}}));
  CHECK(redact_text(r, "FATAL: password " + pass + " rejected").out ==
        "FATAL: password [REDACTED:known-secret] rejected");
  auto res = redact_text(r, "line " + line2);
  CHECK(res.out == "line [REDACTED:known-secret]");
  REQUIRE(res.findings.size() == 1);
  CHECK(res.findings[0].secret_name == "env:CERT#line2");
  CHECK(redact_text(r, "connect " + url).out == "connect [REDACTED:known-secret]");
}

// The control plane's messages (cli/engine_config.cpp) go through this before any engine exists.
TEST_CASE("mask_known_values masks every form and merges what touches", "[engine][literals]") {
  const std::string v = fake(20, 31), w = fake(16, 32), pass = fake(12, 33);
  const std::vector<KnownSecret> known = {
      {"env:A", v}, {"env:B", w}, {"env:DB", "postgres://u:" + pass + "@h/db"}};
  CHECK(mask_known_values("rule 'x-" + v + "': missing 'regex'", known) ==
        "rule 'x-[REDACTED:known-secret]': missing 'regex'");
  // Two values side by side are one run; the JSON-escaped form and a URL password alone too.
  CHECK(mask_known_values("[" + v + w + "]", known) == "[[REDACTED:known-secret]]");
  CHECK(mask_known_values("q=\"" + json_escape("\"" + v) + "\"", known) ==
        "q=\"\\\"[REDACTED:known-secret]\"");
  CHECK(mask_known_values("auth " + pass + " failed", known) == "auth [REDACTED:known-secret] failed");
  // Base64: 20 bytes are 27 characters unpadded; the last holds bits of the byte after the
  // value, so it is not part of the form and stays (as the engine leaves it).
  const std::string b64 = base64_encode(v, false, false);
  REQUIRE(b64.size() == 27);
  CHECK(mask_known_values("b=" + b64, known) == "b=[REDACTED:known-secret]" + b64.substr(26));
  CHECK(mask_known_values("nothing here", known) == "nothing here");
  CHECK(mask_known_values("x " + v, {}) == "x " + v);
  CHECK(mask_known_values("", known) == "");
}

TEST_CASE("binary bytes and invalid UTF-8 are scanned as bytes", "[engine]") {
  Redactor r(make_set(kRules));
  std::string line("\x00\xff\xfe binary ", 11);
  line += kGhp + std::string("\x80\x00", 2);
  auto res = redact_text(r, line);
  REQUIRE(res.status == RedactStatus::kMasked);
  // A stray continuation byte right after the secret is taken into the mask: a span never ends
  // inside what could be a UTF-8 sequence.
  CHECK(res.out == std::string("\x00\xff\xfe binary ", 11) + "[REDACTED:github-pat]" +
                       std::string(1, '\0'));
}

TEST_CASE("rule compile errors name the rule", "[engine][errors]") {
  auto compile_error = [](const std::string& toml) {
    try {
      make_set(toml);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(compile_error("[[rules]]\nid='bad-re'\nregex='''(unclosed'''\n").find("rule 'bad-re'") !=
        std::string::npos);
  CHECK(compile_error("[[rules]]\nid='empty'\nregex='''a*'''\n").find("empty string") !=
        std::string::npos);
  CHECK(compile_error("[[rules]]\nid='grp'\nregex='''(a)b'''\nsecretGroup=2\n")
            .find("secretGroup 2") != std::string::npos);
}

TEST_CASE("an allowlist regex shared by rules is compiled once and applies to each",
          "[engine][allowlist]") {
  // The same regex text in two rules' allowlists (the built-in pack repeats a few of them
  // across many rules): each rule still honours it, and only its own rule.
  const std::string toml = R"(
[[rules]]
id = "alpha"
regex = '''alpha=([0-9A-Za-z]{12,40})'''
  [[rules.allowlists]]
  regexes = ['''^SAMPLE''']
[[rules]]
id = "beta"
regex = '''beta=([0-9A-Za-z]{12,40})'''
  [[rules.allowlists]]
  regexes = ['''^SAMPLE''']
[[rules]]
id = "gamma"
regex = '''gamma=([0-9A-Za-z]{12,40})'''
)";
  Redactor r(make_set(toml));
  CHECK(redact_text(r, "alpha=SAMPLEabcdefghij beta=SAMPLEabcdefghij").status ==
        RedactStatus::kClean);
  CHECK(redact_text(r, "alpha=Q7kLm2Np9RxT4vZ8 beta=W3eRt6Yu8Io1Pa5S gamma=SAMPLEabcdefghij")
            .out == "alpha=[REDACTED:alpha] beta=[REDACTED:beta] gamma=[REDACTED:gamma]");
  // A bad allowlist regex is reported for the first rule that has it.
  try {
    make_set(
        "[[rules]]\nid='one'\nregex='''one=([a-z]{8})'''\n[[rules.allowlists]]\n"
        "regexes=['''(open''']\n[[rules]]\nid='two'\nregex='''two=([a-z]{8})'''\n"
        "[[rules.allowlists]]\nregexes=['''(open''']\n");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "test.toml: rule 'one' allowlist #1: allowlist regex is invalid: missing ): (open");
  }
}

TEST_CASE("a rule's own prefilter finds exactly what its regex finds", "[engine][prefilter]") {
  // The built-in URL rules' shape: Hyperscan looks for the "@" that ends the userinfo, RE2 for
  // the rule on the line up to it. Against the same rule without a prefilter, over lines with
  // no "@", an "@" and no URL, several URLs, passwords holding ":" and "@", and neighbours.
  const std::string regex =
      R"(\b(?i:https?|ftp|redis)://[^\s:@/?#'"]{0,64}:([^\s/?#'"]{3,128})@)";
  const std::string rule = "[[rules]]\nid = 'uri'\nregex = '''" + regex + "'''\n";
  Redactor with(make_set(rule + "prefilter = '''@'''\n"));
  Redactor without(make_set(rule));
  std::vector<std::string> lines = {
      "no url here, mail bob@example.org",
      "https://example.org/path?q=1 and http://host:8080/x",
      "git clone https://ci:" + fake(16, 1) + "@git.example.org/app.git",
      "two: redis://u:" + fake(12, 2) + "@cache:6379/0 ftp://backup:" + fake(20, 3) + "@files/",
      "colon and at: https://svc:pa:" + fake(10, 4) + "@x@host.example/",
      "HTTPS://ADMIN:" + fake(9, 5) + "@EXAMPLE.ORG",
      "https://user:ab@host (too short) https://user:" + fake(8, 6) + "@host",
      "@@@ https://@ https://:@ https://u:" + fake(5, 7) + "@ trailing",
  };
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  lines.push_back(all);  // every line in one unit
  size_t masked = 0;
  for (const auto& l : lines) {
    INFO(l);
    auto a = redact_text(with, l), b = redact_text(without, l);
    CHECK(a.out == b.out);
    CHECK(a.findings.size() == b.findings.size());
    masked += a.findings.size();
  }
  CHECK(masked == 14);  // 7 lines with secrets, then the same 7 in the joined unit
  CHECK(redact_text(with, lines[2]).out == "git clone https://ci:[REDACTED:uri]@git.example.org/app.git");
}

TEST_CASE("a prefilter searched over the whole unit finds what its regex finds", "[engine][prefilter]") {
  // The built-in datadog-app-key's shape: Hyperscan looks for the rule's rare opening words,
  // which end long before its secret; each hit has RE2 search the whole unit. Against the same
  // rule without a prefilter, and with the prefilter searched only up to its hit (which cannot
  // reach the secret: what "whole-unit" is for).
  auto hex = [](size_t n, unsigned seed) {
    std::string s;
    for (char c : fake(n, seed)) s += "0123456789abcdef"[static_cast<unsigned char>(c) % 16];
    return s;
  };
  const std::string rule =
      "[[rules]]\nid = 'dd'\n"
      R"(regex = '''(?i:dd[_.-]app)[\w.-]{0,20}(?i:key|token)\s{0,3}=\s{0,3}([a-f0-9]{40})''')"
      "\n";
  const std::string pre = "prefilter = '''(?i)dd[_.-]app'''\n";
  Redactor whole(make_set(rule + pre + "prefilterSearch = 'whole-unit'\n"));
  Redactor up_to_hit(make_set(rule + pre));
  Redactor without(make_set(rule));
  const std::vector<std::string> lines = {
      "no key here, dd_app alone and key=" + hex(40, 1),
      "DD_APP_KEY=" + hex(40, 2),
      "export dd.app.token = " + hex(40, 3) + " and DD-APP-KEY=" + hex(40, 4) + ";",
      "first key=" + hex(40, 5) + " then dd_app_key=" + hex(40, 6),
      "dd_app_key=" + hex(39, 7) + " (too short)",
  };
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  size_t masked = 0;
  std::vector<const std::string*> units;
  for (const auto& l : lines) units.push_back(&l);
  units.push_back(&all);
  for (const std::string* u : units) {
    const std::string& l = *u;
    INFO(l);
    auto a = redact_text(whole, l), b = redact_text(without, l);
    CHECK(a.out == b.out);
    CHECK(a.findings.size() == b.findings.size());
    masked += a.findings.size();
    // Searched only up to its hits, a line's last match (which ends after every hit) is lost.
    if (!a.findings.empty() && &l != &all)
      CHECK(redact_text(up_to_hit, l).findings.size() == a.findings.size() - 1);
  }
  CHECK(masked == 8);  // 4 in the lines, the same 4 in the joined unit
  CHECK(redact_text(whole, lines[1]).out == "DD_APP_KEY=[REDACTED:dd]");
}

TEST_CASE("the batch prefilter marks the line after a whole-unit prefilter hit", "[engine][prefilter]") {
  // A prefilter searched over the whole unit stands for a match that may end on a later line (an
  // env list's `name:` line, then its `value:` line): the line after its hit is marked too, so
  // line mode redacts it behind the name line. A prefilter searched up to its hit, and the regex
  // itself, mark only the line where their match ends.
  const std::string rule =
      "[[rules]]\nid = 'env'\n"
      R"(regex = '''name:\s*[A-Z_]*PASSWORD\s*\n\s*value:\s*(\S{6,})''')"
      "\n";
  const std::string pre = R"(prefilter = '''name:\s*[A-Z_]*PASSWORD''')" "\n";
  const std::vector<std::string> lines = {"start", "- name: DB_PASSWORD", "  value: " + fake(16, 9),
                                          "other", "- name: API_PASSWORD"};
  std::string block;
  std::vector<size_t> ends;
  for (const auto& l : lines) {
    block += l;
    ends.push_back(block.size());
    block += "\n";
  }
  auto hits = [&](const std::string& toml) {
    Scanner scanner(make_set(toml));
    std::vector<uint8_t> hit;
    REQUIRE(scanner.lines_with_events(block, ends, hit) == ScanStatus::kOk);
    return hit;
  };
  // The last line's hit has no line after it in the block (the next block's first line is always
  // redacted behind it).
  CHECK(hits(rule + pre + "prefilterSearch = 'whole-unit'\n") == std::vector<uint8_t>{0, 1, 1, 0, 1});
  CHECK(hits(rule + pre) == std::vector<uint8_t>{0, 1, 0, 0, 1});
  CHECK(hits(rule) == std::vector<uint8_t>{0, 0, 1, 0, 0});
}

TEST_CASE("a prefilter Hyperscan rejects, or that matches nothing, is a clear error",
          "[engine][prefilter][errors]") {
  auto compile_error = [](const std::string& prefilter) {
    try {
      make_set("[[rules]]\nid='p'\nregex='''x=([a-z]{4})@'''\nprefilter='''" + prefilter + "'''\n");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(compile_error("@") == "no error");
  CHECK(compile_error("(?U)@") ==
        "test.toml: rule 'p': Hyperscan rejects the prefilter: Unrecognised character after (? at "
        "index 0.");
  CHECK(compile_error("@?") == "test.toml: rule 'p': the prefilter can match the empty string");
}

TEST_CASE("a regex Hyperscan rejects even as a prefilter is a clear error", "[engine][errors]") {
  try {
    make_set("[[rules]]\nid='ungreedy'\nregex='''(?U)secret-[a-z]+x'''\n");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "test.toml: rule 'ungreedy': Hyperscan rejects the regex: Unrecognised character "
          "after (? at index 0.");
  }
}

#include "filter/pem_blocks.h"

TEST_CASE("a private key printed over several lines is masked line by line", "[engine][pem]") {
  PemBlockTracker t;
  std::string out;
  CHECK_FALSE(t.process("2026-01-01 ERROR loaded key:", out));
  CHECK_FALSE(t.process("-----BEGIN RSA PRIVATE KEY-----", out));
  CHECK(t.inside());
  REQUIRE(t.process("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", out));
  CHECK(out == "[REDACTED:private-key-block]");
  REQUIRE(t.process("  VUaO5S2fqaNnYw0oL8fM4mJkQ3d", out));
  CHECK(out == "  [REDACTED:private-key-block]");
  CHECK_FALSE(t.process("-----END RSA PRIVATE KEY-----", out));
  CHECK_FALSE(t.inside());
  CHECK_FALSE(t.process("next line", out));
  // A certificate or public key is not a secret.
  CHECK_FALSE(t.process("-----BEGIN CERTIFICATE-----", out));
  CHECK_FALSE(t.inside());
  CHECK_FALSE(t.process("-----BEGIN PGP PUBLIC KEY BLOCK-----", out));
  CHECK_FALSE(t.inside());
  // A block that never ends stops being masked after kMaxLines lines.
  CHECK_FALSE(t.process("-----BEGIN OPENSSH PRIVATE KEY-----", out));
  for (size_t i = 1; i < PemBlockTracker::kMaxLines; ++i) CHECK(t.process("b3BlbnNzaC1rZXktdjEAAAAA", out));
  CHECK_FALSE(t.process("b3BlbnNzaC1rZXktdjEAAAAA", out));
  CHECK_FALSE(t.inside());
}

TEST_CASE("a BEGIN marker is seen at any offset, in any length of text", "[engine][pem]") {
  // may_begin looks at 16, 32 or 64 starts a step (the CPU decides); every start, the ones the
  // last partial step leaves too, against a plain search. Dashes and "-B" pairs everywhere
  // around it, so each step has candidates to reject.
  const std::string marker = "-----BEGIN ";
  for (size_t len = 0; len <= 150; ++len) {
    for (size_t at = 0; at + marker.size() <= len + marker.size(); ++at) {
      std::string text(len, '-');
      for (size_t k = 0; k < len; k += 7) text[k] = 'B';
      const bool inside = at + marker.size() <= len;
      if (inside) text.replace(at, marker.size(), marker);
      INFO("len " << len << " at " << at);
      REQUIRE(PemBlockTracker::may_begin(text) == (text.find(marker) != std::string::npos));
      if (inside) REQUIRE(PemBlockTracker::may_begin(text));
    }
  }
  CHECK_FALSE(PemBlockTracker::may_begin("-----BEGIN"));  // one byte short
  CHECK_FALSE(PemBlockTracker::may_begin(std::string(4096, '-') + "BEGIN"));  // no space
  CHECK(PemBlockTracker::may_begin(std::string(4096, '-') + "-----BEGIN "));
}
