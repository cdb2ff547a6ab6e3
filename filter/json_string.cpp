#include "filter/json_string.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace scrub {

namespace {

int hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

// Writes `cp` as UTF-8 at `out`; returns the bytes written (1-4).
size_t put_utf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

// The offset of the first backslash in raw[i, n), or n. Tool results escape a newline or a quote
// every few dozen bytes, so this is called once per short run: a memchr call per run (and an
// append per run) was most of the decoder's time. Plain bytes are copied to `out` (at o) on the
// way, sixteen at a time; `out` has room for them (see decode).
inline size_t copy_to_backslash(const char* raw, size_t i, size_t n, char* out, size_t& o) {
#if defined(__SSE2__)
  const __m128i bs = _mm_set1_epi8('\\');
  while (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + o), v);
    const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs)));
    if (mask) {
      const unsigned k = static_cast<unsigned>(__builtin_ctz(mask));
      o += k;
      return i + k;
    }
    i += 16;
    o += 16;
  }
#endif
  while (i < n && raw[i] != '\\') out[o++] = raw[i++];
  return i;
}

// What each two-byte escape `\\X` decodes to, by X; 0 for none (`\\u` and malformed escapes).
constexpr auto kSimpleEscape = [] {
  std::array<char, 256> t{};
  t['"'] = '"';
  t['\\'] = '\\';
  t['/'] = '/';
  t['b'] = '\b';
  t['f'] = '\f';
  t['n'] = '\n';
  t['r'] = '\r';
  t['t'] = '\t';
  return t;
}();

// The `\\u` escape at raw[i] (raw[i + 1] is 'u'): its code point in `cp` (U+FFFD for a lone
// surrogate) and its length in `raw` (6, or 12 for a surrogate pair); 0 when it is malformed.
size_t u_escape(std::string_view raw, size_t i, uint32_t& cp) {
  const int v = hex4(raw, i + 2);
  if (v < 0) return 0;
  cp = static_cast<uint32_t>(v);
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    const size_t j = i + 6;
    const int lo = (j + 1 < raw.size() && raw[j] == '\\' && raw[j + 1] == 'u') ? hex4(raw, j + 2) : -1;
    if (lo >= 0xDC00 && lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(lo) - 0xDC00);
      return 12;
    }
    cp = 0xFFFD;
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    cp = 0xFFFD;
  }
  return 6;
}

size_t utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

// The decoder, reporting each run of plain bytes and each escape to `sink` (offset maps).
// Decoded text is never longer than its raw form (each escape is at least as long as what it
// decodes to: `\n` -> 1 byte, `\uXXXX` -> at most 3, a surrogate pair's 12 -> 4), so it is
// written into a buffer of raw.size() and cut to length at the end.
template <typename Sink>
bool decode(std::string_view raw, std::string& decoded, Sink& sink) {
  const size_t n = raw.size();
  decoded.resize(n);
  char* out = decoded.data();
  const char* in = raw.data();
  size_t i = 0, o = 0;
  bool ok = true;
  while (i < n) {
    const size_t run_begin = i, run_out = o;
    i = copy_to_backslash(in, i, n, out, o);
    if (i > run_begin) {
      sink.run(run_out, run_begin, i - run_begin);
      if (i >= n) break;
    }
    if (i + 1 >= n) {
      ok = false;
      break;
    }
    const size_t before = o, from = i;
    // The two-byte escapes by table: which one comes next is a coin toss in text (a newline, a
    // quote), and a switch on it mispredicted. A 1 MB tool result with an escape every 28 bytes
    // decoded in 470 µs with the switch, 382 µs with the table.
    if (const char simple = kSimpleEscape[static_cast<unsigned char>(in[i + 1])]) {
      out[o++] = simple;
      i += 2;
      sink.escape(before, from, 1);
      continue;
    }
    uint32_t cp = 0;
    const size_t len = in[i + 1] == 'u' ? u_escape(raw, i, cp) : 0;
    if (len == 0) {
      ok = false;
      break;
    }
    i += len;
    o += put_utf8(cp, out + o);
    sink.escape(before, from, o - before);
  }
  decoded.resize(o);
  return ok;
}

struct NoMap {
  void run(size_t, size_t, size_t) {}
  void escape(size_t, size_t, size_t) {}
};

struct DenseMap {
  std::vector<uint32_t>& v;
  void run(size_t, size_t r, size_t n) {
    for (size_t k = r; k < r + n; ++k) v.push_back(static_cast<uint32_t>(k));
  }
  void escape(size_t, size_t r, size_t n) { v.insert(v.end(), n, static_cast<uint32_t>(r)); }
};

}  // namespace

namespace {

// 64 bytes from p: bit k set where p[k] == c.
#if defined(__SSE2__)
inline uint64_t eq_mask64(const char* p, char c) {
  const __m128i v = _mm_set1_epi8(c);
  uint64_t m = 0;
  for (int k = 0; k < 4; ++k) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    m |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, v))))
         << (16 * k);
  }
  return m;
}
#else
inline uint64_t eq_mask64(const char* p, char c) {
  uint64_t m = 0;
  for (int k = 0; k < 64; ++k) m |= static_cast<uint64_t>(p[k] == c) << k;
  return m;
}
#endif

// The bytes of a 64-byte block that an odd run of backslashes escapes, given the block's
// backslashes and whether the block before ended inside an odd run (`carry`, updated). The
// carry-propagation trick of simdjson's stage 1 (find_odd_backslash_sequences).
inline uint64_t escaped_bytes(uint64_t bs, uint64_t& carry) {
  constexpr uint64_t kEven = 0x5555555555555555ULL, kOdd = ~kEven;
  const uint64_t starts = bs & ~(bs << 1);
  const uint64_t even_start_mask = kEven ^ carry;
  const uint64_t even_starts = starts & even_start_mask;
  const uint64_t odd_starts = starts & ~even_start_mask;
  const uint64_t even_carries = bs + even_starts;
  uint64_t odd_carries;
  const bool ends_odd = __builtin_add_overflow(bs, odd_starts, &odd_carries);
  odd_carries |= carry;
  carry = ends_odd ? 1 : 0;
  const uint64_t even_carry_ends = even_carries & ~bs;
  const uint64_t odd_carry_ends = odd_carries & ~bs;
  return (even_carry_ends & kOdd) | (odd_carry_ends & kEven);
}

}  // namespace

size_t json_string_end(std::string_view text, size_t begin, bool* escaped) {
  // 64 bytes at a time without a branch per escape: a tool result escapes a newline or a quote
  // every few dozen bytes, and a memchr for each '"' with a count of the backslashes before it
  // took 240 µs per MB; a loop that stopped at each quote and backslash took 390.
  const char* p = text.data();
  const size_t n = text.size();
  uint64_t carry = 0;  // the byte before `begin` is the opening quote: nothing is escaped
  bool any = false;    // a backslash before the end (the blocks' masks hold them already)
  // The end at bit `k` of the block at `i`: only the backslashes before it count.
  auto end_at = [&](size_t i, uint64_t bs, uint64_t k) {
    any = any || (bs & ((uint64_t{1} << k) - 1)) != 0;
    if (escaped) *escaped = any;
    return i + static_cast<size_t>(k);
  };
  size_t i = begin;
  for (; i + 64 <= n; i += 64) {
    const uint64_t bs = eq_mask64(p + i, '\\');
    const uint64_t quotes = eq_mask64(p + i, '"');
    if (!bs && !carry) {
      if (quotes) return end_at(i, 0, __builtin_ctzll(quotes));
      continue;
    }
    const uint64_t real = quotes & ~escaped_bytes(bs, carry);
    if (real) return end_at(i, bs, __builtin_ctzll(real));
    any = any || bs != 0;
  }
  if (i < n) {
    char tail[64] = {};
    std::memcpy(tail, p + i, n - i);
    const uint64_t bs = eq_mask64(tail, '\\');
    const uint64_t real = eq_mask64(tail, '"') & ~escaped_bytes(bs, carry);
    if (real) return end_at(i, bs, __builtin_ctzll(real));
    any = any || bs != 0;
  }
  if (escaped) *escaped = any;
  return n;
}

bool json_unescape(std::string_view raw, std::string& decoded, std::vector<uint32_t>* offs) {
  if (!offs) {
    NoMap none;
    return decode(raw, decoded, none);
  }
  offs->clear();
  offs->reserve(raw.size() + 1);
  DenseMap dense{*offs};
  bool ok = decode(raw, decoded, dense);
  offs->push_back(static_cast<uint32_t>(raw.size()));
  return ok;
}

namespace {

struct SparseMap {
  std::vector<OffsetMap::Segment>& segs;
  void run(size_t d, size_t r, size_t) {
    segs.push_back({static_cast<uint32_t>(d), static_cast<uint32_t>(r), true});
  }
  void escape(size_t d, size_t r, size_t) {
    segs.push_back({static_cast<uint32_t>(d), static_cast<uint32_t>(r), false});
  }
};

}  // namespace

bool json_unescape_mapped(std::string_view raw, std::string& decoded, OffsetMap* map) {
  if (!map) {
    NoMap none;
    return decode(raw, decoded, none);
  }
  map->segs_.clear();
  // Two segments per escape at most (the escape and the run before it). Counting the escapes first
  // to reserve exactly cost a fifth of the decoding of an escape-dense tool result; the vector
  // grows instead, from room for an escape every 64 bytes.
  map->segs_.reserve(raw.size() / 32 + 1);
  SparseMap sparse{map->segs_};
  bool ok = decode(raw, decoded, sparse);
  map->decoded_size_ = static_cast<uint32_t>(decoded.size());
  map->raw_size_ = static_cast<uint32_t>(raw.size());
  return ok;
}

bool json_offset_map(std::string_view raw, OffsetMap* map) {
  // What json_unescape_mapped reports to its SparseMap, without writing the decoded bytes: each
  // 64-byte block's backslashes as a mask, a step per escape. The decoded text of a large string
  // is simdjson's (Redactor::set_parallel); its map is wanted only where it holds a secret.
  std::vector<OffsetMap::Segment>& segs = map->segs_;
  segs.clear();
  segs.reserve(raw.size() / 8 + 2);
  const char* p = raw.data();
  const size_t n = raw.size();
  size_t i = 0, o = 0;  // the next raw byte not mapped, and its decoded offset
  bool ok = true;
  for (size_t b = 0; ok && b < n; b += 64) {
    uint64_t m;
    if (b + 64 <= n) {
      m = eq_mask64(p + b, '\\');
    } else {
      char tail[64] = {};
      std::memcpy(tail, p + b, n - b);
      m = eq_mask64(tail, '\\');
    }
    if (i > b) m = i - b >= 64 ? 0 : m & (~uint64_t{0} << (i - b));
    while (m) {
      const size_t j = b + static_cast<size_t>(__builtin_ctzll(m));
      if (j > i) {
        segs.push_back({static_cast<uint32_t>(o), static_cast<uint32_t>(i), true});
        o += j - i;
      }
      if (j + 1 >= n) {
        ok = false;
        i = n;
        break;
      }
      size_t len = 2, out = 1;
      if (!kSimpleEscape[static_cast<unsigned char>(p[j + 1])]) {
        uint32_t cp = 0;
        len = p[j + 1] == 'u' ? u_escape(raw, j, cp) : 0;
        if (len == 0) {
          ok = false;
          i = n;
          break;
        }
        out = utf8_length(cp);
      }
      segs.push_back({static_cast<uint32_t>(o), static_cast<uint32_t>(j), false});
      o += out;
      i = j + len;
      m = i - b >= 64 ? 0 : m & (~uint64_t{0} << (i - b));
    }
  }
  if (i < n) {
    segs.push_back({static_cast<uint32_t>(o), static_cast<uint32_t>(i), true});
    o += n - i;
  }
  map->decoded_size_ = static_cast<uint32_t>(o);
  map->raw_size_ = static_cast<uint32_t>(n);
  return ok;
}

uint32_t OffsetMap::last_raw(size_t i) const {
  const Segment& s = segs_[i];
  if (!s.run) return s.r;
  const uint32_t end = i + 1 < segs_.size() ? segs_[i + 1].d : decoded_size_;
  return s.r + (end - s.d) - 1;
}

size_t OffsetMap::to_raw(size_t d) const {
  if (d >= decoded_size_) return raw_size_;
  // The last segment that starts at or before d.
  auto it = std::upper_bound(segs_.begin(), segs_.end(), d,
                             [](size_t v, const Segment& s) { return v < s.d; });
  const Segment& s = *std::prev(it);
  return s.run ? s.r + (d - s.d) : s.r;
}

size_t OffsetMap::first_at_or_after(size_t r) const {
  // Segments' raw offsets increase: the first segment whose last byte maps at or after r.
  size_t lo = 0, hi = segs_.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (last_raw(mid) >= r) hi = mid;
    else lo = mid + 1;
  }
  if (lo == segs_.size()) return r <= raw_size_ ? decoded_size_ : decoded_size_ + 1;
  const Segment& s = segs_[lo];
  if (!s.run || r <= s.r) return s.d;
  return s.d + (r - s.r);
}

void json_escape_append(std::string_view s, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 16);
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace scrub
