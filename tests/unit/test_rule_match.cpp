// The locator and the capped form (filter/rule_match.h): rewriting counted repeats, and the
// promise that a search through them finds exactly what RE2's own unanchored search finds,
// groups included.
#include <catch2/catch.hpp>

#include <fstream>

#include "filter/compiled_set_impl.h"
#include "filter/rule_match.h"
#include "property_cases.h"
#include "tests/rule_matches.h"

using namespace scrub;
using scrub::test::all_matches;
using scrub::test::builtin_set;

TEST_CASE("loosen_counted_repeats: large bounds become * or +, the rest is copied", "[rule_match]") {
  auto L = [](const char* re) { return loosen_counted_repeats(re).value_or("(unchanged)"); };
  CHECK(L(R"(key=([A-Za-z0-9]{12,200}))") == R"(key=([A-Za-z0-9]+))");
  CHECK(L(R"([\w.-]{0,50}?(?:key))") == R"([\w.-]*?(?:key))");
  CHECK(L(R"((ab){2,40}x{8,})") == R"((ab)+x+)");
  CHECK(L(R"(a{2,8}b{3})") == R"(a+b{3})");  // the bound that counts is the upper one
  CHECK(L(R"(\x{41}{10}\p{Greek}{9})") == R"(\x{41}+\p{Greek}+)");
  // Nothing to loosen: small bounds, braces in classes, escaped braces, \Q..\E, literal braces.
  CHECK(L(R"(a{3}b{0,7}c{1,})") == "(unchanged)");
  CHECK(L(R"([a{20}]x)") == "(unchanged)");
  CHECK(L(R"([]{20}]x)") == "(unchanged)");
  CHECK(L(R"([[:alpha:]{20}]x)") == "(unchanged)");
  CHECK(L(R"(\{20,30\})") == "(unchanged)");
  CHECK(L(R"(\Q{10,20}\E)") == "(unchanged)");
  CHECK(L(R"(x{,30}y{a})") == "(unchanged)");
  // A class that is not closed (RE2 rejects the regex anyway) ends the copy without a crash.
  CHECK(L(R"([abc{20})") == "(unchanged)");
}

TEST_CASE("cap_counted_repeats: large upper bounds on one character dropped, the rest kept",
          "[rule_match]") {
  auto C = [](const char* re) {
    auto c = cap_counted_repeats(re);
    return c ? c->regex + " / " + std::to_string(c->max_len) : std::string("(unchanged)");
  };
  CHECK(C(R"(key=([A-Za-z0-9]{20,1000})(?:[^A-Za-z0-9]|$))") ==
        R"(key=([A-Za-z0-9]{20,})(?:[^A-Za-z0-9]|$) / 1000)");
  CHECK(C(R"(a{0,200}b{1,300}?c{0,5}\w{2,150})") == R"(a*b+?c{0,5}\w{2,} / 150)");
  CHECK(C(R"(\x{41}{3,400}.{0,100}\pL{1,100})") == R"(\x{41}{3,}.*\pL+ / 100)");
  // Kept: small bounds, open bounds, a group or an assertion as the atom, a bound after a
  // quantifier's brace, braces inside classes or escaped.
  CHECK(C(R"(a{0,99}b{5,}(ab){1,500}\b{1,200})") == "(unchanged)");
  CHECK(C(R"([a{1,500}]\{1,500\})") == "(unchanged)");
  CHECK(C(R"(\Qa{1,500}\E)") == "(unchanged)");
}

namespace {

std::vector<std::string> sample_lines() {
  std::vector<std::string> lines;
  for (const char* f : {"dense_small.log", "mixed_small.log"}) {
    std::string path = SCRUB_SOURCE_DIR;
    path.append("/corpus/samples/").append(f);
    std::ifstream in(path);
    REQUIRE(in);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  return lines;
}

}  // namespace

TEST_CASE("rule_match finds exactly what RE2's unanchored search finds, for every built-in rule",
          "[rule_match][builtin]") {
  auto set = builtin_set();
  const auto lines = sample_lines();
  size_t with_locator = 0, with_capped = 0, compared = 0, matched = 0;
  for (const CompiledRule& cr : set->impl().rules) {
    if (cr.locator()) ++with_locator;
    if (cr.programs().capped()) ++with_capped;
    // The rule's examples and negatives, and shapes that stress the bounds: an example twice
    // over, run together, its secret cut short, and its secret run on past any bound.
    std::vector<std::string> units;
    for (const auto& ex : cr.rule.examples) {
      units.push_back(ex.text);
      units.push_back(ex.text + " " + ex.text);
      units.push_back(ex.text + ex.text);
      for (size_t cut = 1; cut <= 4 && cut < ex.text.size(); ++cut)
        units.push_back(ex.text.substr(0, ex.text.size() - cut));
      size_t at = ex.text.find(ex.secret);
      if (at != std::string::npos && !ex.secret.empty()) {
        std::string longer = ex.text;
        longer.insert(at + ex.secret.size(), std::string(300, ex.secret.back()));
        units.push_back(longer);
        // Past the largest bounds (1,000): the capped form matches, the rule does not.
        longer.insert(at + ex.secret.size(), std::string(900, ex.secret.back()));
        units.push_back(longer);
        units.push_back(ex.text.substr(0, at) + ex.secret.substr(0, ex.secret.size() / 2) + "\n" +
                        ex.secret.substr(ex.secret.size() / 2));
      }
    }
    for (const auto& neg : cr.rule.negatives) units.push_back(neg);
    for (const auto& u : units) {
      const auto plain = all_matches(cr, false, u);
      INFO("rule " << cr.rule.id << ", case " << compared);
      REQUIRE(all_matches(cr, true, u) == plain);
      matched += !plain.empty();
      ++compared;
    }
    if (!cr.locator()) continue;
    for (const auto& line : lines) {
      const auto plain = all_matches(cr, false, line);
      if (all_matches(cr, true, line) != plain)
        FAIL("rule " << cr.rule.id << " differs on a sample line");
      matched += !plain.empty();
    }
  }
  // The comparison means something: most rules have a locator, and many cases match.
  CHECK(with_locator > set->impl().rules.size() / 2);
  CHECK(with_capped >= 30);
  CHECK(matched > 500);
}

TEST_CASE("rule_match: a capped match longer than the bound is checked with the rule itself",
          "[rule_match]") {
  // Capped `k([a-z]{10,})!`, bound 120: at 100 letters its match is the rule's; at 150 it
  // matches where the rule does not, so the rule decides, and is built only then.
  CompiledRule cr;
  cr.rule.regex = "k([a-z]{10,120})!";
  cr.groups = 1;
  const RulePrograms p = cr.programs();
  REQUIRE(p.capped_of != nullptr);
  CHECK(p.cap_len == 120);
  re2::StringPiece g[2];
  // Built when the locator first finds a start, not before: a text without one leaves it unbuilt.
  const std::string none = "xx k" + std::string(50, 'a') + " k!";
  CHECK_FALSE(rule_match(p, none, 0, none.size(), g, 2));
  CHECK(cr.capped_ == nullptr);
  REQUIRE(p.capped() != nullptr);
  CHECK(p.capped()->pattern() == "k([a-z]{10,})!");
  const std::string ok = "xx k" + std::string(100, 'a') + "!";
  REQUIRE(rule_match(p, ok, 0, ok.size(), g, 2));
  CHECK(g[1].size() == 100);
  CHECK(cr.re_ == nullptr);  // the rule itself was not needed
  const std::string too_long = "xx k" + std::string(150, 'a') + "! k" + std::string(12, 'b') + "!";
  REQUIRE(rule_match(p, too_long, 0, too_long.size(), g, 2));
  CHECK(g[1] == std::string(12, 'b'));
  CHECK(cr.re_ != nullptr);
}

TEST_CASE("rule_match: a locator that matches where the rule does not gives up after a bound",
          "[rule_match]") {
  // The locator for `k([a-z]{10,40})!` is `k([a-z]+)!`: in "kaka...ka!" every `k` starts a
  // locator match, but the rule's only from offset 60 on (at most 40 letters before the `!`).
  CompiledRule cr;
  cr.rule.regex = "k([a-z]{10,40})!";
  cr.groups = 1;
  const RulePrograms p = cr.programs();
  REQUIRE(p.locator != nullptr);
  CHECK(p.locator->pattern() == "k([a-z]+)!");
  CHECK(p.capped() == nullptr);  // bound 40: below the capped form's 100
  std::string text;
  for (int i = 0; i < 50; ++i) text += "ka";
  text += "!";
  re2::StringPiece g[2];
  for (int misses : {1, 4, 16, 100}) {  // 30 misses before the match: each bound is exercised
    INFO("max_misses " << misses);
    REQUIRE(rule_match(p, text, 0, text.size(), g, 2, misses));
    CHECK(static_cast<size_t>(g[0].data() - text.data()) == 60);
    CHECK(g[1].size() == 39);
  }
  CHECK_FALSE(rule_match(p, text, 99, text.size(), g, 2));  // no `k` left
}
