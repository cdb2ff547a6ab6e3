// Confirming a rule's Hyperscan hit with RE2, fast.
//
// RE2 finds gitleaks' leftmost-first match and its groups, but an unanchored search with a
// counted repeat ({12,200}) unrolls the repeat into hundreds of instructions, and its lazily
// built DFA meets new states on every new line: 300-1,400 µs per confirmed hit for the generic
// rules, most of the confirmation time of `filter`. A locator, the same regex with each large
// counted repeat loosened to `*` or `+`, matches a superset of the rule's language and has a
// small DFA whose states recur. So the rule's leftmost match is found by asking the locator for
// each next candidate start and checking the rule anchored there (no unanchored DFA): the first
// start where the rule matches is its leftmost start, and the anchored match there is the one
// leftmost-first prefers. Results are identical to the plain search (tests/unit/test_rule_match).
//
// The anchored check itself need not pay for the rule's large bounds either: RE2 builds
// x{20,1000} as a thousand nested copies of x, and compiling those few generic rules on their
// first hit was most of RE2's share of a run (2-4 ms each). A capped form, the rule with each
// large upper bound on a one-character atom dropped (x{20,1000} -> x{20,}), compiles small and
// matches a superset. Anchored at a start, its leftmost-first match is the rule's own whenever
// it is no longer than the smallest bound dropped: no capped repeat then took more turns than
// the rule allows (each takes at least a byte), so every path the capped form preferred and
// found failing is a path the rule has too, in the same order. A longer match is checked with
// the rule itself, built then.
#pragma once

#include <re2/re2.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace scrub {

// `regex` with every counted repeat whose bound (upper, or lower when unbounded) is at least
// `threshold` replaced by `*` (lower bound 0) or `+`; a lazy `?` after it stays. Escapes, \Q..\E
// and character classes are copied as they are. nullopt when nothing was loosened.
std::optional<std::string> loosen_counted_repeats(std::string_view regex, long threshold = 8);

// `regex` with every counted repeat {m,n} whose upper bound n is at least `min_bound` and whose
// atom is one character (a literal, `.`, a class, or an escape that stands for one) replaced by
// {m,}: `max_len` is the smallest n replaced. nullopt when nothing was replaced.
struct CappedRegex {
  std::string regex;
  size_t max_len = 0;
};
std::optional<CappedRegex> cap_counted_repeats(std::string_view regex, long min_bound = 100);

// What confirms a rule: its own regex (`full`, through `full_of(owner)`) and, each optional, a
// locator and a capped form (above, through `capped_of(owner)`, null when there is none). The
// two through the owner can be built on first use: the capped form only once the locator has
// found a start, which in a log most locators never do.
struct RulePrograms {
  const RE2& (*full_of)(const void* owner) = nullptr;
  const RE2* (*capped_of)(const void* owner) = nullptr;
  const void* owner = nullptr;
  const RE2* locator = nullptr;
  size_t cap_len = 0;
  const RE2& full() const { return full_of(owner); }
  const RE2* capped() const { return capped_of ? capped_of(owner) : nullptr; }
};

// RE2::Match(text, pos, endpos, UNANCHORED, groups, ngroups) for the rule `p.full()`, via
// `p.locator` when it is not null (a regex from loosen_counted_repeats of the rule), the anchored
// checks through `p.capped()` when there is one (ngroups >= 1). After `max_misses` candidate starts
// where the rule does not match, the rest is one plain search, so a locator that matches nearly
// everywhere costs a bounded amount.
bool rule_match(const RulePrograms& p, re2::StringPiece text, size_t pos, size_t endpos,
                re2::StringPiece* groups, int ngroups, int max_misses = 16);

}  // namespace scrub
