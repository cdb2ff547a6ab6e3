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

// The bytes of two 16-byte blocks, at p and at q, that are outside the class of the tables: bit
// i of the low 16 for p[i], of the high 16 for q[i].
__attribute__((target("avx2"))) inline unsigned outside_bits(const unsigned char* lo,
                                                            const unsigned char* hi,
                                                            const char* p, const char* q) {
  const __m256i v = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), 1);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i l = _mm256_shuffle_epi8(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo)), _mm256_and_si256(v, nibble));
  const __m256i h = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi)),
                                        _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
  const __m256i out = _mm256_cmpeq_epi8(_mm256_and_si256(l, h), _mm256_setzero_si256());
  return static_cast<unsigned>(_mm256_movemask_epi8(out));
}

// A run of len >= 63 beginning at o >= from holds the 16-byte block at every p in
// [o, o + len - 16], len - 15 places: one of them is a multiple of stride (len - 15 rounded down
// to a multiple of 16, so that a block never straddles two cache lines of a 16-byte aligned
// buffer: 2.4x faster for runs of 200) at or after `from`'s. So only those blocks are
// classified, two per 256-bit register (stride 48 for a run of 64: a third of the bytes, half the
// registers of the 32-byte blocks at every multiple of 32 this took before), and one wholly in
// the class is grown to the run around it: to its ends (kWhole), or until it is long enough.
template <bool kWhole>
__attribute__((target("avx2"))) std::optional<std::pair<size_t, size_t>> run_by_blocks(
    const CharRun& r, std::string_view s, size_t from) {
  const size_t n = s.size(), len = r.length;
  const char* d = s.data();
  const size_t stride = (len - 15) / 16 * 16;
  // Whether the block at p is in the class, grown: the run, or nullopt with `next` past it.
  size_t next = 0;
  auto grow = [&](size_t p) -> std::optional<std::pair<size_t, size_t>> {
    // 32 bytes a step where they are there: the hex digests of logs (32-40 digits) put a block
    // in the class often, and a byte-by-byte walk over each cost more than the blocks saved.
    size_t left = p, right = p + 16;
    while (right < n && (kWhole || right - left < len)) {
      if (right + 32 <= n) {
        const unsigned out = outside_bits(r.lo.data(), r.hi.data(), d + right, d + right + 16);
        if (out == 0) {
          right += 32;
          continue;
        }
        right += static_cast<size_t>(__builtin_ctz(out));
        break;
      }
      if (!r.in[static_cast<unsigned char>(d[right])]) break;
      ++right;
    }
    while (left > from && (kWhole || right - left < len)) {
      if (left >= from + 32) {
        const unsigned out = outside_bits(r.lo.data(), r.hi.data(), d + left - 32, d + left - 16);
        if (out == 0) {
          left -= 32;
          continue;
        }
        left -= static_cast<size_t>(__builtin_clz(out));
        break;
      }
      if (!r.in[static_cast<unsigned char>(d[left - 1])]) break;
      --left;
    }
    if (right - left >= len) return std::make_pair(left, right);
    next = (right + stride - 1) / stride * stride;  // [left, right) is the whole run, too short
    return std::nullopt;
  };
  size_t p = (from + stride - 1) / stride * stride;
  while (p + 16 <= n) {
    const size_t q = p + stride + 16 <= n ? p + stride : p;  // the last block alone: twice
    const unsigned out = outside_bits(r.lo.data(), r.hi.data(), d + p, d + q);
    if ((out & 0xffffu) != 0 && (out >> 16) != 0) {  // most of text: a byte outside in each
      p += 2 * stride;
      continue;
    }
    if ((out & 0xffffu) == 0) {
      if (auto run = grow(p)) return run;
      if (next > p + stride) {
        p = next;
        continue;
      }
    }
    if (q != p && (out >> 16) == 0) {
      if (auto run = grow(q)) return run;
      p = next;
      continue;
    }
    p += q != p ? 2 * stride : stride;
  }
  return std::nullopt;
}

}  // namespace

namespace {

// Without the vector path: reads the last byte of each window where a run could end and, while
// they are in the class, the bytes before it not yet read (CharRun::found_in). A window wholly in
// the class is the run found: grown to the run's ends (kWhole; its start is where the walk last
// saw a byte outside the class, or `from`), or as it is.
template <bool kWhole>
std::optional<std::pair<size_t, size_t>> run_by_walk(const CharRun& r, std::string_view s,
                                                     size_t from) {
  const size_t n = s.size(), len = r.length;
  // The window s[start, start + len) could hold a run; s[start, known) is read and in the class.
  size_t start = from, known = from;
  while (start + len <= n) {
    // Most windows end outside the class and move on whole (this branch on its own compiles to
    // a loop half as costly as the general one below).
    if (!r.in[static_cast<unsigned char>(s[start + len - 1])]) {
      known = start = start + len;
      continue;
    }
    size_t q = start + len;
    while (q > known && r.in[static_cast<unsigned char>(s[q - 1])]) --q;
    if (q == known) {  // the whole window is in the class
      size_t left = start, right = start + len;
      if (kWhole) {
        while (left > from && r.in[static_cast<unsigned char>(s[left - 1])]) --left;
        while (right < n && r.in[static_cast<unsigned char>(s[right])]) ++right;
      }
      return std::make_pair(left, right);
    }
    known = start + len;  // s[q - 1] is not: a run starts at q at the earliest
    start = q;
  }
  return std::nullopt;
}

}  // namespace

bool CharRun::vectorised() const { return tables && cpu_has_avx2(); }

bool CharRun::found_in(std::string_view s) const {
  if (length == 0) return true;
  if (length >= 63 && vectorised()) return run_by_blocks<false>(*this, s, 0).has_value();
  return run_by_walk<false>(*this, s, 0).has_value();
}

std::optional<std::pair<size_t, size_t>> CharRun::next_run(std::string_view s, size_t from) const {
  if (length == 0 || from >= s.size()) return std::nullopt;
  if (length >= 63 && vectorised()) return run_by_blocks<true>(*this, s, from);
  return run_by_walk<true>(*this, s, from);
}

}  // namespace scrub
