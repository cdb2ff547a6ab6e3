#include "filter/pem_blocks.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace scrub {

namespace {

constexpr std::string_view kBegin = "-----BEGIN ";

// Whether `line` holds "-----BEGIN ". Log text is full of dashes (dates, UUIDs, rules), and
// string_view::find stops at each '-' to compare. This looks for the rarer pair "-B" (the
// needle's 5th and 6th bytes) sixteen starts at a time and compares the whole needle only there.
bool has_begin_marker(std::string_view line) {
  const size_t n = line.size();
  if (n < kBegin.size()) return false;
  const char* p = line.data();
  const size_t last = n - kBegin.size();  // the last possible start
  auto at = [&](size_t i) { return std::memcmp(p + i, kBegin.data(), kBegin.size()) == 0; };
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i dash = _mm_set1_epi8('-'), b = _mm_set1_epi8('B');
  for (; i + 16 <= last + 1; i += 16) {  // starts i..i+15; the loads end at i + 20 < n
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 4));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 5));
    unsigned m = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(x, dash), _mm_cmpeq_epi8(y, b))));
    for (; m; m &= m - 1)
      if (at(i + static_cast<size_t>(__builtin_ctz(m)))) return true;
  }
#endif
  for (; i <= last; ++i)
    if (p[i + 4] == '-' && p[i + 5] == 'B' && at(i)) return true;
  return false;
}

// Position just after a "-----BEGIN/END ... PRIVATE KEY[ BLOCK]-----" marker, or npos.
size_t marker_end(std::string_view line, std::string_view kind) {
  size_t pos = 0;
  for (;;) {
    size_t at = line.find(kind, pos);
    if (at == std::string_view::npos) return std::string_view::npos;
    size_t close = line.find("-----", at + kind.size());
    if (close == std::string_view::npos) return std::string_view::npos;
    std::string_view label = line.substr(at + kind.size(), close - at - kind.size());
    if (label.size() <= 60 && label.find("PRIVATE KEY") != std::string_view::npos) return close + 5;
    pos = at + kind.size();
  }
}

}  // namespace

bool PemBlockTracker::may_begin(std::string_view text) { return has_begin_marker(text); }

bool PemBlockTracker::process(std::string_view line, std::string& out) {
  if (!inside_ && !has_begin_marker(line)) return false;  // most lines
  static const std::string mask = std::string("[REDACTED:") + kRuleId + "]";
  if (!inside_) {
    size_t begin_end = marker_end(line, kBegin);
    if (begin_end == std::string_view::npos) return false;
    // A block that also ends on this line is whole; the rules handle it.
    if (marker_end(line.substr(begin_end), "-----END ") != std::string_view::npos) return false;
    inside_ = true;
    lines_ = 0;
    if (begin_end >= line.size()) return false;  // nothing after the marker
    out.assign(line.substr(0, begin_end));
    out += mask;
    return true;
  }
  ++lines_;
  size_t end_at = line.find("-----END ");
  if (end_at != std::string_view::npos && marker_end(line, "-----END ") != std::string_view::npos) {
    inside_ = false;
    out = end_at > 0 ? mask + std::string(line.substr(end_at)) : std::string(line);
    return end_at > 0;
  }
  if (lines_ >= kMaxLines) {
    inside_ = false;
    return false;
  }
  size_t lead = line.find_first_not_of(" \t");
  if (lead == std::string_view::npos) return false;  // blank line inside a block
  out.assign(line.substr(0, lead));
  out += mask;
  if (!line.empty() && line.back() == '\r') out += '\r';
  return true;
}

}  // namespace scrub
