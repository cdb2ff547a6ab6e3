#include "filter/rule_match.h"

#include <algorithm>
#include <cctype>
#include <climits>

namespace scrub {

namespace {

// Copies `re`, handing each counted repeat ({m}, {m,}, {m,n}; hi == LONG_MAX when open) to
// `replace`, which returns the text to put in its place or nullopt to keep it. `single` says the
// repeat's atom is one character: a literal, `.`, a class or an escape that stands for one.
// Escapes, \Q..\E and classes are copied as they are. nullopt when nothing was replaced.
template <typename Replace>
std::optional<std::string> rewrite_counted_repeats(std::string_view re, Replace&& replace) {
  std::string out;
  out.reserve(re.size());
  bool changed = false;
  bool single = false;  // the last thing copied is a one-character atom
  const size_t n = re.size();
  size_t i = 0;
  auto copy_to = [&](size_t stop) {
    stop = std::min(stop, n);
    out.append(re.substr(i, stop - i));
    i = stop;
  };
  auto digits = [&](size_t& j, long& value) {
    size_t start = j;
    value = 0;
    while (j < n && std::isdigit(static_cast<unsigned char>(re[j]))) {
      if (value < 1000000) value = value * 10 + (re[j] - '0');
      ++j;
    }
    return j > start;
  };
  while (i < n) {
    const char c = re[i];
    if (c == '\\') {
      if (i + 1 < n && re[i + 1] == 'Q') {  // \Q...\E: literal text
        size_t e = re.find("\\E", i + 2);
        copy_to(e == std::string_view::npos ? n : e + 2);
        single = false;
      } else if (i + 2 < n && (re[i + 1] == 'x' || re[i + 1] == 'p' || re[i + 1] == 'P') &&
                 re[i + 2] == '{') {  // \x{10FFFF}, \p{Greek}
        size_t e = re.find('}', i + 3);
        copy_to(e == std::string_view::npos ? n : e + 1);
        single = true;
      } else {
        // Assertions match no character; anything else escaped stands for one.
        single = i + 1 < n && std::string_view("bBAzZ").find(re[i + 1]) == std::string_view::npos;
        copy_to(i + 2);
      }
      continue;
    }
    if (c == '[') {  // a class: `]` first (or after ^) is literal; [:alpha:]; escapes
      size_t j = i + 1;
      if (j < n && re[j] == '^') ++j;
      if (j < n && re[j] == ']') ++j;
      while (j < n && re[j] != ']') {
        if (re[j] == '\\') {
          j += 2;
          continue;
        }
        if (re[j] == '[' && j + 1 < n && re[j + 1] == ':') {
          size_t e = re.find(":]", j + 2);
          if (e != std::string_view::npos) {
            j = e + 2;
            continue;
          }
        }
        ++j;
      }
      copy_to(j + 1);
      single = true;
      continue;
    }
    if (c == '{') {  // {m}, {m,}, {m,n}; anything else is a literal brace
      size_t j = i + 1;
      long lo = 0, hi = 0;
      if (digits(j, lo)) {
        hi = lo;
        if (j < n && re[j] == ',') {
          ++j;
          if (!digits(j, hi)) hi = LONG_MAX;
        }
        if (j < n && re[j] == '}') {
          if (std::optional<std::string> with = replace(lo, hi, single)) {
            out += *with;
            changed = true;
            i = j + 1;
          } else {
            copy_to(j + 1);
          }
          single = false;
          continue;
        }
      }
    }
    out += c;
    ++i;
    single = std::string_view("()|^$*+?").find(c) == std::string_view::npos;
  }
  if (!changed) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::string> loosen_counted_repeats(std::string_view re, long threshold) {
  return rewrite_counted_repeats(re, [&](long lo, long hi, bool) -> std::optional<std::string> {
    if ((hi == LONG_MAX ? lo : hi) < threshold) return std::nullopt;
    return std::string(lo == 0 ? "*" : "+");
  });
}

std::optional<CappedRegex> cap_counted_repeats(std::string_view re, long min_bound) {
  long smallest = LONG_MAX;
  auto out = rewrite_counted_repeats(re, [&](long lo, long hi, bool single) -> std::optional<std::string> {
    if (!single || hi == LONG_MAX || hi < min_bound) return std::nullopt;
    smallest = std::min(smallest, hi);
    return lo == 0 ? std::string("*") : lo == 1 ? std::string("+") : "{" + std::to_string(lo) + ",}";
  });
  if (!out) return std::nullopt;
  return CappedRegex{std::move(*out), static_cast<size_t>(smallest)};
}

bool rule_match(const RulePrograms& p, re2::StringPiece text, size_t pos, size_t endpos,
                re2::StringPiece* groups, int ngroups, int max_misses) {
  // Anchored at s: the capped form decides when it does not match (it matches a superset) and
  // when its match is short enough to be the rule's own (filter/rule_match.h); else the rule.
  auto anchored = [&](size_t s) {
    if (const RE2* capped = ngroups >= 1 ? p.capped() : nullptr) {
      if (!capped->Match(text, s, endpos, RE2::ANCHOR_START, groups, ngroups)) return false;
      if (groups[0].size() <= p.cap_len) return true;
    }
    return p.full().Match(text, s, endpos, RE2::ANCHOR_START, groups, ngroups);
  };
  if (p.locator) {
    re2::StringPiece start;
    int misses = 0;
    while (pos < endpos && misses < max_misses &&
           p.locator->Match(text, pos, endpos, RE2::UNANCHORED, &start, 1)) {
      const size_t s = static_cast<size_t>(start.data() - text.data());
      if (anchored(s)) return true;
      pos = s + 1;
      ++misses;
    }
    if (misses < max_misses) return false;  // the locator found no further start
  }
  return pos <= endpos && p.full().Match(text, pos, endpos, RE2::UNANCHORED, groups, ngroups);
}

}  // namespace scrub
