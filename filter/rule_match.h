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

// RE2::Match(text, pos, endpos, UNANCHORED, groups, ngroups) for the rule `re`, via `locator`
// when it is not null (a regex from loosen_counted_repeats(re.pattern())). After `max_misses`
// candidate starts where `re` does not match, the rest is one plain search, so a locator that
// matches nearly everywhere costs a bounded amount.
bool rule_match(const RE2& re, const RE2* locator, re2::StringPiece text, size_t pos, size_t endpos,
                re2::StringPiece* groups, int ngroups, int max_misses = 16);

}  // namespace scrub
