#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine_fixture.h"
#include "property_cases.h"
#include "patterns/known_secrets.h"
#include "patterns/rule_check.h"
#include "patterns/rule_codec.h"

using namespace scrub;
using namespace scrub::test;

namespace {
std::string load_error(const std::string& toml) {
  try {
    load_rules_string(toml, "r.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("a gitleaks.toml loads unchanged, both allowlist forms", "[loader]") {
  const char* gitleaks = R"(
title = "gitleaks config"
[extend]
useDefault = true

[allowlist]
description = "global"
paths = ['''vendor/''']
regexes = ['''^dummy''']

[[rules]]
id = "old-form"
description = "Old allowlist form"
regex = '''(?i)oldkey\s*=\s*([a-z0-9]{16})'''
secretGroup = 1
keywords = ["OldKey"]
tags = ["key"]
[rules.allowlist]
regexTarget = "match"
regexes = ['''test''']

[[rules]]
id = "new-form"
regex = '''newkey=([a-z0-9]{16})'''
keywords = ["newkey"]
[[rules.allowlists]]
condition = "AND"
stopwords = ["aaaa"]
regexes = ['''^x''']
[[rules.allowlists]]
stopwords = ["bbbb"]

[[rules]]
id = "path-only"
path = '''\.pem$'''
)";
  RuleSet set = load_rules_string(gitleaks, "gitleaks.toml");
  REQUIRE(set.rules.size() == 2);
  CHECK(set.rules[0].keywords == std::vector<std::string>{"oldkey"});
  REQUIRE(set.rules[0].allowlists.size() == 1);
  CHECK(set.rules[0].allowlists[0].regex_target == RegexTarget::kMatch);
  REQUIRE(set.rules[1].allowlists.size() == 2);
  CHECK(set.rules[1].allowlists[0].condition_and);
  CHECK(set.global_allowlists.size() == 1);
  CHECK(set.warnings.size() == 2);  // [extend] and the path-only rule

  Redactor r(CompiledSet::compile(set, {}, test_options()));
  CHECK(redact_text(r, "OLDKEY = abcdef0123456789").out == "OLDKEY = [REDACTED:old-form]");
  CHECK(redact_text(r, "oldkey = test0123456789ab").status == RedactStatus::kClean);  // match target
  CHECK(redact_text(r, "oldkey = dummy0123456789a").status == RedactStatus::kClean);  // global
  CHECK(redact_text(r, "newkey=x1bbbb0123456789").status == RedactStatus::kClean);    // OR list
  CHECK(redact_text(r, "newkey=x1aaaa0123456789").status == RedactStatus::kClean);    // AND both
  CHECK(redact_text(r, "newkey=y1aaaa0123456789").out == "newkey=[REDACTED:new-form]");  // AND half
}

TEST_CASE("a broken rule file names the rule and the reason", "[loader][errors]") {
  CHECK(load_error("[[rules]]\nid = 'a'\nregex = 'x'\n[[rules]]\nid = 'a'\nregex = 'y'\n") ==
        "r.toml: rule 'a': duplicate id");
  CHECK(load_error("[[rules]]\ndescription = 'no id'\nregex = 'x'\n") == "r.toml: rule #1: missing 'id'");
  CHECK(load_error("[[rules]]\nid = 'k'\nregex = 'x'\nentropy = 'high'\n") ==
        "r.toml: rule 'k': 'entropy' must be a number 0..8");
  CHECK(load_error("[[rules]]\nid = 'k'\n") == "r.toml: rule 'k': missing 'regex'");
  CHECK(load_error("[[rules]]\nid = 'k'\nregex = 'x'\nmask = 'blur'\n") ==
        "r.toml: rule 'k': 'mask' must be label, fixed, partial or hash");
  CHECK(load_error("[[rules]\nid = 1").rfind("r.toml: invalid TOML: line 1", 0) == 0);
  // A table header cut by a newline (fuzz_rules, tests/fuzz/regressions/rules): toml++ 3.3
  // asserts against it when compiled from its headers without NDEBUG; linked as Debian builds
  // it, the key is reported.
  CHECK(load_error("[\nregex = 'x'\n") ==
        "r.toml: invalid TOML: line 1, column 2: Error while parsing key: expected bare key "
        "starting character or string delimiter, saw '\\n'");
  CHECK(load_error("[[rules]]\nid = 'k'\nregex = 'x@'\nprefilter = ''\n") ==
        "r.toml: rule 'k': 'prefilter' must be a non-empty string");
  CHECK(load_error("[[rules]]\nid = 'k'\nregex = 'x@'\nprefilter = 7\n") ==
        "r.toml: rule 'k': 'prefilter' must be a non-empty string");
  CHECK(load_error("[[rules]]\nid = 'k'\nregex = 'x@'\nprefilter = '@'\nprefilterSearch = 'all'\n") ==
        "r.toml: rule 'k': 'prefilterSearch' must be \"up-to-hit\" or \"whole-unit\"");
  CHECK(load_error("[[rules]]\nid = 'k'\nregex = 'x@'\nprefilterSearch = 'whole-unit'\n") ==
        "r.toml: rule 'k': 'prefilterSearch' needs a 'prefilter'");
}

TEST_CASE("every built-in rule passes its own examples and negatives", "[loader][builtin]") {
  RuleSet set = builtin_rules();
  CHECK(set.rules.size() >= 150);
  // Through the compiled set the other tests share (the pack plus the known values).
  RuleCheckReport report = check_rules(set, builtin_set());
  for (const auto& f : report.failures) UNSCOPED_INFO(f.rule_id << ": " << f.reason);
  CHECK(report.failures.empty());
  CHECK(report.examples >= report.rules);
  CHECK(report.negatives >= report.rules);
}

TEST_CASE("rules check reports a failing example by rule and reason", "[loader]") {
  RuleSet set = load_rules_string(R"(
[[rules]]
id = "wrong-group"
regex = '''key=([a-z]{4})([0-9]{4})'''
examples = [{ text = "key=abcd1234", secret = "abcd1234" }]
negatives = ["key=abcd"]
[[rules]]
id = "fires-on-negative"
regex = '''tok_[0-9]{6}'''
examples = [{ text = "tok_123456", secret = "tok_123456" }]
negatives = ["tok_654321"]
)",
                                  "r.toml");
  RuleCheckReport report = check_rules(set);
  REQUIRE(report.failures.size() == 2);
  CHECK(report.failures[0].rule_id == "wrong-group");
  CHECK(report.failures[0].reason == "example 1: masked span(s) [4,8) but the secret is at [4,12)");
  CHECK(report.failures[1].rule_id == "fires-on-negative");
  CHECK(report.failures[1].reason == "negative 1: the rule fires at [0,10)");
}

// A set that does not compile is checked rule by rule: every broken rule is named with its
// reason, and the rules that compile are still checked against their examples.
TEST_CASE("rules check names every rule that does not compile and checks the others", "[loader]") {
  RuleSet set = load_rules_string(R"(
[[rules]]
id = "unbalanced"
regex = '''tok_([0-9]{6}'''
examples = [{ text = "tok_123456", secret = "123456" }]
negatives = ["tok_12"]
[[rules]]
id = "empty-match"
regex = '''x*'''
examples = [{ text = "xx", secret = "xx" }]
negatives = ["y"]
[[rules]]
id = "short-group"
regex = '''key=([a-z]{4})[0-9]{4}'''
examples = [{ text = "key=abcd1234", secret = "abcd1234" }]
negatives = ["key=abcd"]
)",
                                  "r.toml");
  RuleCheckReport report = check_rules(set);
  REQUIRE(report.failures.size() == 4);
  CHECK(report.failures[0].rule_id == "unbalanced");
  CHECK(report.failures[0].reason == "r.toml: rule 'unbalanced': regex is invalid: missing ): tok_([0-9]{6}");
  CHECK(report.failures[1].rule_id == "empty-match");
  CHECK(report.failures[1].reason == "r.toml: rule 'empty-match': the regex can match the empty string");
  CHECK(report.failures[2].rule_id == "short-group");
  CHECK(report.failures[2].reason == "example 1: masked span(s) [4,8) but the secret is at [4,12)");
  CHECK(report.failures[3].rule_id == "(set)");
  CHECK(report.failures[3].reason == report.failures[0].reason);
  CHECK(report.examples == 1);  // only the rule that compiled ran its example and negative
  CHECK(report.negatives == 1);
}

TEST_CASE("dotenv parsing follows Node's --env-file", "[secrets]") {
  auto kv = parse_dotenv(
      "# comment\n"
      "export A=plain value # trailing comment\n"
      "B='single # not a comment'\n"
      "C=\"double\\nline\"\n"
      "D=\"multi\nline\"\n"
      "E=`back`\n"
      "  F = spaced  \r\n"
      "EMPTY=\n"
      "novalue\n");
  std::vector<std::pair<std::string, std::string>> want = {
      {"A", "plain value"}, {"B", "single # not a comment"}, {"C", "double\nline"},
      {"D", "multi\nline"}, {"E", "back"},                    {"F", "spaced"},
      {"EMPTY", ""}};
  CHECK(kv == want);
}

TEST_CASE("secret-looking environment variables become known secrets", "[secrets]") {
  std::string v1 = "DATABASE_URL=postgres://u:" + fake(12, 1) + "@h/db";
  std::string v2 = "GITHUB_TOKEN=" + fake(30, 2);
  std::string v3 = "HOME=/root";
  std::string v4 = "PWD=/work/main";
  std::string v5 = "SHORT_SECRET=abc";
  std::string v6 = "PLAIN=" + fake(30, 3);
  std::string v7 = "SSH_KEY_PATH=/home/u/.ssh/id_ed25519";
  std::vector<char*> env = {v1.data(), v2.data(), v3.data(), v4.data(),
                            v5.data(), v6.data(), v7.data(), nullptr};
  SecretSourceOptions o;
  o.secret_env = {"PLAIN"};
  auto res = collect_known_secrets(o, env.data());
  std::vector<std::string> names;
  for (const auto& s : res.secrets) names.push_back(s.name);
  CHECK(names == std::vector<std::string>{"env:DATABASE_URL", "env:GITHUB_TOKEN", "env:PLAIN"});
  CHECK(res.skipped == std::vector<std::string>{"env:SHORT_SECRET"});
  o.env_by_name = false;
  res = collect_known_secrets(o, env.data());
  REQUIRE(res.secrets.size() == 1);
  CHECK(res.secrets[0].name == "env:PLAIN");
}

TEST_CASE("secret files and env files, and an unreadable file is a clear error", "[secrets]") {
  std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  std::string sf = dir + "/scrub-unit-secrets.txt";
  std::ofstream(sf) << fake(20, 4) << "\n\n" << fake(20, 5) << "\r\nshort\n";
  SecretSourceOptions o;
  o.env_by_name = false;
  o.secrets_files = {sf};
  auto res = collect_known_secrets(o, nullptr);
  REQUIRE(res.secrets.size() == 2);
  CHECK(res.secrets[0].name == "secrets-file:scrub-unit-secrets.txt:1");
  CHECK(res.secrets[1].value == fake(20, 5));
  CHECK(res.skipped == std::vector<std::string>{"secrets-file:scrub-unit-secrets.txt:4"});
  std::remove(sf.c_str());
  o.secrets_files = {dir + "/does-not-exist-scrub.txt"};
  try {
    collect_known_secrets(o, nullptr);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == dir + "/does-not-exist-scrub.txt: cannot read secrets file");
  }
}

TEST_CASE("the packed built-in pack is exactly what its TOML loads to", "[loader][builtin][codec]") {
  std::ifstream in(std::string(SCRUB_SOURCE_DIR) + "/patterns/builtin.toml", std::ios::binary);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  const RuleSet from_toml = load_rules_string(text.str(), "builtin.toml");
  const RuleSet packed = builtin_rules();
  REQUIRE(packed.rules.size() == from_toml.rules.size());
  for (size_t i = 0; i < packed.rules.size(); ++i) {
    INFO(from_toml.rules[i].id);
    CHECK(packed.rules[i] == from_toml.rules[i]);
  }
  CHECK(packed == from_toml);
}

TEST_CASE("a packed rule set round-trips every field, and a damaged one is refused",
          "[loader][codec]") {
  RuleSet set = load_rules_string(R"(
[allowlist]
description = "docs"
regexTarget = "line"
regexes = ['''EXAMPLE''']
stopwords = ["sample"]
[[allowlists]]
condition = "AND"
targetRules = ["two"]
regexes = ['''^x''']
stopwords = ["y"]
paths = ['''\.md$''']
[[rules]]
id = "one"
description = "first"
regex = '''one=([a-z]{8})'''
prefilter = '''one=[a-z]{8}'''
prefilterSearch = "whole-unit"
secretGroup = 1
entropy = 2.75
keywords = ["one=", "ONE"]
mask = "partial"
action = "alert"
severity = "low"
keepPrefix = 3
examples = [{ text = "one=abcdefgh", secret = "abcdefgh" }]
negatives = ["one=abc"]
  [[rules.allowlists]]
  regexTarget = "match"
  regexes = ['''zz''']
[[rules]]
id = "two"
regex = '''two-[0-9]{4}'''
generic = true
[[rules]]
id = "paths-only"
path = '''\.pem$'''
)",
                                  "r.toml");
  REQUIRE(set.rules.size() == 2);
  REQUIRE(set.warnings.size() == 1);
  REQUIRE(set.global_allowlists.size() == 2);
  CHECK(set.rules[0].mask == MaskStyle::kPartial);
  CHECK(set.rules[0].action == Action::kAlert);
  CHECK(set.rules[0].prefilter == "one=[a-z]{8}");
  CHECK(set.rules[0].prefilter_whole_unit);
  CHECK(set.rules[1].prefilter.empty());
  CHECK_FALSE(set.rules[1].prefilter_whole_unit);
  CHECK_FALSE(set.rules[1].mask.has_value());
  CHECK(set.global_allowlists[1].has_paths_or_commits);

  const std::string bytes = encode_rule_set(set);
  CHECK(decode_rule_set(bytes, "p") == set);
  CHECK(decode_rule_set(encode_rule_set(RuleSet{}), "p") == RuleSet{});

  auto error = [](std::string_view b) {
    try {
      decode_rule_set(b, "pack");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error("") == "pack: not a valid packed rule set (truncated)");
  CHECK(error("SCRUBRS0" + bytes.substr(8)) == "pack: not a valid packed rule set (wrong magic or version)");
  CHECK(error(bytes + "x") == "pack: not a valid packed rule set (trailing bytes)");
  // Every truncation is refused, never read past.
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO(n);
    CHECK(error(std::string_view(bytes).substr(0, n)).rfind("pack: not a valid packed rule set (", 0) == 0);
  }
  // Every single damaged byte either is refused or decodes to some rule set (a changed string):
  // never a crash or an out-of-bounds read (the sanitizer builds run this too).
  size_t refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0xA5);
    if (error(damaged) != "no error") ++refused;
  }
  CHECK(refused >= 8);  // the magic alone
}
