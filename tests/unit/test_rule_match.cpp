// The locator (filter/rule_match.h): loosening counted repeats, and the promise that a search
// through the locator finds exactly what RE2's own unanchored search finds, groups included.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "filter/compiled_set_impl.h"
#include "filter/rule_match.h"
#include "property_cases.h"

using namespace scrub;
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

namespace {

// Every match the scanner's loop would take (leftmost-first, each search from the end of the
// last match), with every group, as text: once with RE2 alone, once through the locator.
std::string all_matches(const CompiledRule& cr, std::string_view unit, bool use_locator) {
  const RE2& re = cr.re();
  const int ngroups = 1 + re.NumberOfCapturingGroups();
  std::vector<re2::StringPiece> g(ngroups);
  std::ostringstream out;
  size_t pos = 0;
  while (pos < unit.size() &&
         (use_locator ? rule_match(re, cr.locator(), unit, pos, unit.size(), g.data(), ngroups)
                      : re.Match(unit, pos, unit.size(), RE2::UNANCHORED, g.data(), ngroups))) {
    for (const auto& s : g) {
      if (s.data() == nullptr) out << "- ";
      else out << (s.data() - unit.data()) << ':' << s.size() << ' ';
    }
    out << '|';
    size_t mb = static_cast<size_t>(g[0].data() - unit.data());
    pos = g[0].empty() ? mb + 1 : mb + g[0].size();
  }
  return out.str();
}

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
  size_t with_locator = 0, compared = 0, matched = 0;
  for (const CompiledRule& cr : set->impl().rules) {
    if (cr.locator()) ++with_locator;
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
        units.push_back(ex.text.substr(0, at) + ex.secret.substr(0, ex.secret.size() / 2) + "\n" +
                        ex.secret.substr(ex.secret.size() / 2));
      }
    }
    for (const auto& neg : cr.rule.negatives) units.push_back(neg);
    for (const auto& u : units) {
      std::string plain = all_matches(cr, u, false);
      INFO("rule " << cr.rule.id << ", case " << compared);
      REQUIRE(all_matches(cr, u, true) == plain);
      matched += !plain.empty();
      ++compared;
    }
    if (!cr.locator()) continue;
    for (const auto& line : lines) {
      std::string plain = all_matches(cr, line, false);
      if (all_matches(cr, line, true) != plain)
        FAIL("rule " << cr.rule.id << " differs on a sample line");
      matched += !plain.empty();
    }
  }
  // The comparison means something: most rules have a locator, and many cases match.
  CHECK(with_locator > set->impl().rules.size() / 2);
  CHECK(matched > 500);
}

TEST_CASE("rule_match: a locator that matches where the rule does not gives up after a bound",
          "[rule_match]") {
  // The locator for `k([a-z]{10,40})!` is `k([a-z]+)!`: in "kaka...ka!" every `k` starts a
  // locator match, but the rule's only from offset 60 on (at most 40 letters before the `!`).
  RE2 re("k([a-z]{10,40})!");
  auto loose = loosen_counted_repeats(re.pattern());
  REQUIRE(loose);
  CHECK(*loose == "k([a-z]+)!");
  RE2 loc(*loose);
  std::string text;
  for (int i = 0; i < 50; ++i) text += "ka";
  text += "!";
  re2::StringPiece g[2];
  for (int misses : {1, 4, 16, 100}) {  // 30 misses before the match: each bound is exercised
    INFO("max_misses " << misses);
    REQUIRE(rule_match(re, &loc, text, 0, text.size(), g, 2, misses));
    CHECK(static_cast<size_t>(g[0].data() - text.data()) == 60);
    CHECK(g[1].size() == 39);
  }
  CHECK_FALSE(rule_match(re, &loc, text, 99, text.size(), g, 2));  // no `k` left
}
