// Scanner::find_split scans a unit's halves on two threads and must report exactly what find()
// reports, wherever the unit is split: matches that end in the overlap, assertions (^ $ \b \B \A
// \z) that look at the byte before or after a match, expressions of unbounded width that cross
// the split. Each unit is split at every position the split can take, and the spans compared.
#include <catch2/catch.hpp>

#include <random>

#include "engine_fixture.h"
#include "filter/compiled_set_impl.h"
#include "filter/scanner.h"
#include "property_cases.h"

using namespace scrub;
using namespace scrub::test;

namespace {

// Rules whose matches depend on the bytes around them, a wide bounded one, two unbounded, and
// two with a prefilter of their own: one whose regex ends at its hit, one whose match (up to 420
// bytes, wider than the halves' overlap) the hit opens. Their hits are narrow, so the halves scan
// them; RE2 then searches around the hits as after any scan.
const char* kEdgeRules = R"(
[[rules]]
id = "line-key"
regex = '''(?m)^key=([a-z0-9]{10})'''
[[rules]]
id = "word"
regex = '''\bword_([a-z0-9]{10})\b'''
[[rules]]
id = "inner"
regex = '''\Bmid_([a-z0-9]{10})'''
[[rules]]
id = "line-end"
regex = '''(?m)end_([a-z0-9]{10})$'''
[[rules]]
id = "unit-start"
regex = '''\Astart_([a-z0-9]{10})'''
[[rules]]
id = "unit-end"
regex = '''fin_([a-z0-9]{10})\z'''
[[rules]]
id = "wide"
regex = '''wide_([a-z0-9]{10})[a-z ]{0,150}_stop'''
[[rules]]
id = "block"
regex = '''-----BEGIN X-----\n([\s\S]*?)\n-----END X-----'''
[[rules]]
id = "run"
regex = '''run_([a-z0-9]+)_ok'''
[[rules]]
id = "pre-hit"
regex = '''tok_([a-z0-9]{10})!'''
prefilter = '''!'''
[[rules]]
id = "pre-open"
regex = '''\bopener[a-z ]{0,400}=([a-z0-9]{10})'''
prefilter = '''\bopener'''
prefilterSearch = "whole-unit"
)";

std::string alnum(std::mt19937& rng, size_t n) {
  static const char k[] = "abcdefghijkmnopqrstuvwxyz0123456789";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += k[rng() % (sizeof k - 1)];
  return s;
}

// A unit of filler and tokens: each rule's match, near misses (the wrong byte before or after),
// a known value, blocks and runs long enough to cross any split.
std::string edge_unit(std::mt19937& rng, const std::string& known) {
  std::string u = rng() % 2 ? "start_" + alnum(rng, 10) + " " : "";
  while (u.size() < 1500) {
    switch (rng() % 16) {
      case 0: u += "\nkey=" + alnum(rng, 10); break;
      case 1: u += "xkey=" + alnum(rng, 10); break;  // not at a line start
      case 2: u += " word_" + alnum(rng, 10) + " "; break;
      case 3: u += "aword_" + alnum(rng, 10) + "b"; break;  // no boundary either side
      case 4: u += "xmid_" + alnum(rng, 10); break;
      case 5: u += " mid_" + alnum(rng, 10); break;  // a boundary: no match
      case 6: u += " end_" + alnum(rng, 10) + (rng() % 2 ? "\n" : "x"); break;
      case 7: u += " wide_" + alnum(rng, 10) + std::string(rng() % 160, 'q') + "_stop"; break;
      case 8: u += "-----BEGIN X-----\n" + alnum(rng, 40 + rng() % 900) + "\n-----END X-----"; break;
      case 9: u += " run_" + alnum(rng, 1 + rng() % 700) + "_ok "; break;
      case 10: u += " " + known + " "; break;
      case 11: u += "\n"; break;
      case 12: u += (rng() % 2 ? " tok_" : " tok-") + alnum(rng, 10) + "!"; break;
      case 13:
        u += (rng() % 2 ? " opener" : " xopener") + std::string(rng() % 420, ' ') + "=" + alnum(rng, 10);
        break;
      default: u += " " + alnum(rng, 1 + rng() % 12); break;
    }
  }
  if (rng() % 2) u += " fin_" + alnum(rng, 10);
  return u;
}

// Splits `unit` at every position find_split accepts (every `stride`-th) and counts the splits
// whose spans differ from find()'s. Returns the number of splits tried in `tried`.
size_t split_mismatches(const std::shared_ptr<const CompiledSet>& set, const std::string& unit,
                        size_t stride, size_t& tried) {
  Scanner main(set), helper(set);
  std::vector<SecretSpan> want;
  REQUIRE(main.find(unit, want) == ScanStatus::kOk);
  const size_t w = set->impl().max_bounded_width;
  size_t bad = 0;
  tried = 0;
  for (size_t at = 1; at + w + 2 < unit.size(); at += stride) {
    std::vector<SecretSpan> got;
    REQUIRE(main.find_split(unit, helper, got, at) == ScanStatus::kOk);
    ++tried;
    if (got != want) ++bad;
  }
  return bad;
}

}  // namespace

TEST_CASE("find_split reports what find reports at every split point", "[engine][split]") {
  const std::string known = fake(20, 31);
  auto set = make_set(kEdgeRules, {{"env:SPLIT_KNOWN", known}});
  // The widest bounded match is the "wide" rule's; the two unbounded rules have their own
  // database, the prefilters (1 and 6 bytes wide) do not.
  CHECK(set->impl().max_bounded_width == 5 + 10 + 150 + 5);
  const auto& rules = set->impl().rules;
  auto unbounded = [&](const std::string& id) {  // rule i is expression i
    for (size_t i = 0; i < rules.size(); ++i)
      if (rules[i].rule.id == id) return set->impl().unbounded[i] != 0;
    FAIL("no rule " << id);
    return false;
  };
  CHECK(unbounded("block"));
  CHECK(unbounded("run"));
  CHECK_FALSE(unbounded("pre-hit"));
  CHECK_FALSE(unbounded("pre-open"));
  CHECK_FALSE(unbounded("wide"));
  CHECK(set->impl().split_db().ok);
  CHECK(set->impl().split_db().db != nullptr);
  std::mt19937 rng(20261126);
  size_t total = 0, spans = 0, prefiltered = 0;
  for (int u = 0; u < 6; ++u) {
    const std::string unit = edge_unit(rng, known);
    Scanner s(set);
    std::vector<SecretSpan> want;
    REQUIRE(s.find(unit, want) == ScanStatus::kOk);
    spans += want.size();
    for (const SecretSpan& sp : want)
      if (sp.source < rules.size() && rules[sp.source].rule.id.rfind("pre-", 0) == 0) ++prefiltered;
    size_t tried = 0;
    INFO("unit " << u << " (" << unit.size() << " bytes, " << want.size() << " spans)");
    CHECK(split_mismatches(set, unit, 1 + 2 * kSanitizerStride, tried) == 0);
    total += tried;
  }
  // The splits were made (about 1,200 per unit; how the units come out depends on the compiler's
  // order of evaluation, so the bound is loose).
  CHECK(total > 3000 / (1 + 2 * kSanitizerStride));
  CHECK(spans > 40);  // and the units hold something to find
  CHECK(prefiltered >= 4);  // 8 with clang's order of evaluation, more with GCC's
}

TEST_CASE("find_split reports what find reports for the built-in rules", "[engine][split]") {
  auto set = builtin_set();
  // Every built-in example and known value, one per line, with filler between: about 100 KiB.
  std::string unit;
  size_t n = 0;
  for (const SecretCase& c : secret_cases()) {
    unit += c.text + (n++ % 3 ? " | " : "\n");
    unit += "request handled in 12ms status ok path /var/lib/app\n";
  }
  REQUIRE(unit.size() > 2 * (set->impl().max_bounded_width + 2));
  Scanner s(set);
  std::vector<SecretSpan> want;
  REQUIRE(s.find(unit, want) == ScanStatus::kOk);
  CHECK(want.size() > 300);
  // A confirmation of this many spans takes milliseconds: 20 split points (a third of them under
  // a sanitizer), spread over the unit.
  size_t tried = 0;
  CHECK(split_mismatches(set, unit, unit.size() / 20 * kSanitizerStride + 1, tried) == 0);
  CHECK(tried >= 19 / kSanitizerStride);
  // Small units are scanned whole; so is any unit when no split can be placed.
  Scanner a(set), b(set);
  std::vector<SecretSpan> got;
  REQUIRE(a.find_split(unit.substr(0, 5000), b, got) == ScanStatus::kOk);
  std::vector<SecretSpan> whole;
  REQUIRE(s.find(unit.substr(0, 5000), whole) == ScanStatus::kOk);
  CHECK(got == whole);
}
