#include "filter/rule_match.h"

#include <algorithm>
#include <cctype>
#include <climits>

namespace scrub {

std::optional<std::string> loosen_counted_repeats(std::string_view re, long threshold) {
  std::string out;
  out.reserve(re.size());
  bool changed = false;
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
      } else if (i + 2 < n && (re[i + 1] == 'x' || re[i + 1] == 'p' || re[i + 1] == 'P') &&
                 re[i + 2] == '{') {  // \x{10FFFF}, \p{Greek}
        size_t e = re.find('}', i + 3);
        copy_to(e == std::string_view::npos ? n : e + 1);
      } else {
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
      continue;
    }
    if (c == '{') {  // {m}, {m,}, {m,n}; anything else is a literal brace
      size_t j = i + 1;
      long lo = 0, hi = 0;
      if (digits(j, lo)) {
        bool ok = true;
        hi = lo;
        if (j < n && re[j] == ',') {
          ++j;
          if (!digits(j, hi)) hi = LONG_MAX;
        }
        ok = j < n && re[j] == '}';
        if (ok) {
          if ((hi == LONG_MAX ? lo : hi) >= threshold) {
            out += lo == 0 ? '*' : '+';
            changed = true;
            i = j + 1;
          } else {
            copy_to(j + 1);
          }
          continue;
        }
      }
    }
    out += c;
    ++i;
  }
  if (!changed) return std::nullopt;
  return out;
}

bool rule_match(const RE2& re, const RE2* locator, re2::StringPiece text, size_t pos, size_t endpos,
                re2::StringPiece* groups, int ngroups, int max_misses) {
  if (locator) {
    re2::StringPiece start;
    int misses = 0;
    while (pos < endpos && misses < max_misses &&
           locator->Match(text, pos, endpos, RE2::UNANCHORED, &start, 1)) {
      const size_t s = static_cast<size_t>(start.data() - text.data());
      if (re.Match(text, s, endpos, RE2::ANCHOR_START, groups, ngroups)) return true;
      pos = s + 1;
      ++misses;
    }
    if (misses < max_misses) return false;  // the locator found no further start
  }
  return pos <= endpos && re.Match(text, pos, endpos, RE2::UNANCHORED, groups, ngroups);
}

}  // namespace scrub
