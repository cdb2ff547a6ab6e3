#include "filter/char_run.h"

#include <immintrin.h>

#include <algorithm>
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
  run.build_tables();
  return run;
}

void CharRun::build_tables() {
  lo.fill(0);
  hi.fill(0);
  tables = false;
  unsigned sets[8];
  size_t distinct = 0;
  for (unsigned h = 0; h < 16; ++h) {
    unsigned set = 0;
    for (unsigned l = 0; l < 16; ++l)
      if (in[h * 16 + l]) set |= 1u << l;
    if (set == 0) continue;
    size_t k = 0;
    while (k < distinct && sets[k] != set) ++k;
    if (k == distinct) {
      if (distinct == 8) return;  // more than a byte of bits: the scalar walk
      sets[distinct++] = set;
    }
    hi[h] = hi[h + 16] = static_cast<unsigned char>(1u << k);
  }
  for (size_t k = 0; k < distinct; ++k)
    for (unsigned l = 0; l < 16; ++l)
      if ((sets[k] >> l) & 1) {
        lo[l] |= static_cast<unsigned char>(1u << k);
        lo[l + 16] |= static_cast<unsigned char>(1u << k);
      }
  tables = true;
}

size_t CharRun::size() const {
  size_t n = 0;
  for (bool b : in) n += b;
  return n;
}

namespace {

bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

// Whether all 32 bytes at p are in the class of the tables.
__attribute__((target("avx2"))) inline bool block_in_class(const unsigned char* lo,
                                                          const unsigned char* hi, const char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i l = _mm256_shuffle_epi8(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo)), _mm256_and_si256(v, nibble));
  const __m256i h = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi)),
                                        _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
  const __m256i out = _mm256_cmpeq_epi8(_mm256_and_si256(l, h), _mm256_setzero_si256());
  return _mm256_testz_si256(out, out);
}

// A run of len >= 63 starting at o holds the 32-byte block at every multiple p of 32 in
// [o, o + len - 32], len - 31 places: one of them is a multiple of `stride` when stride <= len - 31.
__attribute__((target("avx2"))) bool found_by_blocks(const CharRun& r, std::string_view s) {
  const size_t n = s.size(), len = r.length;
  const char* d = s.data();
  const size_t stride = 32 * std::max<size_t>(1, (len - 31) / 32);
  for (size_t p = 0; p + 32 <= n;) {
    if (!block_in_class(r.lo.data(), r.hi.data(), d + p)) {
      p += stride;
      continue;
    }
    // The whole run around the block, or enough of it.
    size_t left = p, right = p + 32;
    while (left > 0 && right - left < len && r.in[static_cast<unsigned char>(d[left - 1])]) --left;
    while (right < n && right - left < len && r.in[static_cast<unsigned char>(d[right])]) ++right;
    if (right - left >= len) return true;
    p = (right + stride - 1) / stride * stride;  // [left, right) is the whole run, too short
  }
  return false;
}

}  // namespace

bool CharRun::vectorised() const { return tables && cpu_has_avx2(); }

bool CharRun::found_in(std::string_view s) const {
  const size_t n = s.size(), len = length;
  if (len == 0) return true;
  if (len >= 63 && vectorised()) return found_by_blocks(*this, s);
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
