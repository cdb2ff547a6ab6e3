// The oracle both the rule-match unit test and fuzz_rules compare the scanner's confirmation
// against: every match a scanner-style loop takes over a unit (leftmost-first, each search from
// the end of the last match, one byte on after an empty one), with every group.
#pragma once

#include <re2/re2.h>

#include <string_view>
#include <utility>
#include <vector>

#include "filter/compiled_set_impl.h"
#include "filter/rule_match.h"

namespace scrub::test {

// As (offset, size) pairs, (-1, -1) for a group that did not take part: with the rule's programs
// as the scanner confirms (locator, capped form, the rule itself where needed), or RE2 alone.
inline std::vector<std::pair<long, long>> all_matches(const CompiledRule& cr, bool programs,
                                                      std::string_view unit) {
  std::vector<std::pair<long, long>> out;
  const RE2& re = cr.re();
  const int ng = 1 + re.NumberOfCapturingGroups();
  std::vector<re2::StringPiece> g(ng);
  size_t pos = 0;
  while (pos < unit.size() &&
         (programs ? rule_match(cr.programs(), unit, pos, unit.size(), g.data(), ng)
                   : re.Match(unit, pos, unit.size(), RE2::UNANCHORED, g.data(), ng))) {
    for (const auto& s : g)
      out.push_back(s.data() ? std::make_pair(static_cast<long>(s.data() - unit.data()),
                                              static_cast<long>(s.size()))
                             : std::make_pair(-1L, -1L));
    const size_t mb = static_cast<size_t>(g[0].data() - unit.data());
    pos = g[0].empty() ? mb + 1 : mb + g[0].size();
  }
  return out;
}

}  // namespace scrub::test
