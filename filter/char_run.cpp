#include "filter/char_run.h"

#include <cstdint>

namespace scrub {

std::optional<CharRun> CharRun::parse(std::string_view text, std::string& error) {
  const size_t close = text.rfind("]{");
  if (text.size() < 5 || text.front() != '[' || close == std::string_view::npos || close < 2 ||
      text.back() != '}') {
    error = "must be a bracketed class and a count, like [0-9a-f]{64}";
    return std::nullopt;
  }
  std::string_view count = text.substr(close + 2, text.size() - close - 3);
  size_t n = 0;
  if (count.empty() || count.size() > 6) n = SIZE_MAX;
  for (char c : count) {
    if (c < '0' || c > '9') {
      n = SIZE_MAX;
      break;
    }
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n < 8 || n > 100000) {
    error = "the count must be a number from 8 to 100000";
    return std::nullopt;
  }
  std::string_view cls = text.substr(1, close - 1);
  CharRun run;
  run.length = n;
  bool negate = false;
  if (!cls.empty() && cls.front() == '^') {
    negate = true;
    cls.remove_prefix(1);
  }
  // Each element: a byte (`\` takes the next one as it is), or two with a `-` between: a range.
  auto next = [&](size_t& i, unsigned char& out) {
    if (cls[i] == '\\') {
      if (i + 1 >= cls.size()) return false;
      ++i;
    }
    out = static_cast<unsigned char>(cls[i++]);
    return true;
  };
  for (size_t i = 0; i < cls.size();) {
    unsigned char lo = 0, hi = 0;
    if (!next(i, lo)) {
      error = "the class ends in a lone backslash";
      return std::nullopt;
    }
    hi = lo;
    if (i + 1 < cls.size() && cls[i] == '-') {
      ++i;
      if (!next(i, hi) || hi < lo) {
        error = "the class has a range that runs backwards";
        return std::nullopt;
      }
    }
    for (unsigned c = lo; c <= hi; ++c) run.in[c] = true;
  }
  if (negate)
    for (bool& b : run.in) b = !b;
  if (run.size() == 0) {
    error = "the class is empty";
    return std::nullopt;
  }
  return run;
}

size_t CharRun::size() const {
  size_t n = 0;
  for (bool b : in) n += b;
  return n;
}

bool CharRun::found_in(std::string_view s) const {
  const size_t n = s.size(), len = length;
  if (len == 0) return true;
  // The window s[start, start + len) could hold a run; s[start, known) is read and in the class.
  size_t start = 0, known = 0;
  while (start + len <= n) {
    // Most windows end outside the class and move on whole (this branch on its own compiles to
    // a loop half as costly as the general one below).
    if (!in[static_cast<unsigned char>(s[start + len - 1])]) {
      known = start = start + len;
      continue;
    }
    size_t q = start + len;
    while (q > known && in[static_cast<unsigned char>(s[q - 1])]) --q;
    if (q == known) return true;  // the whole window is in the class
    known = start + len;          // s[q - 1] is not: a run starts at q at the earliest
    start = q;
  }
  return false;
}

}  // namespace scrub
