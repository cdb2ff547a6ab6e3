#include "filter/json_string.h"

#include <algorithm>
#include <cstring>

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

void put_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The decoder, reporting each run of plain bytes and each escape to `sink` (offset maps).
template <typename Sink>
bool decode(std::string_view raw, std::string& decoded, Sink& sink) {
  decoded.clear();
  decoded.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    // Copy the run up to the next backslash in one go.
    const void* bs = std::memchr(raw.data() + i, '\\', raw.size() - i);
    size_t run_end = bs ? static_cast<size_t>(static_cast<const char*>(bs) - raw.data()) : raw.size();
    if (run_end > i) {
      sink.run(decoded.size(), i, run_end - i);
      decoded.append(raw.data() + i, run_end - i);
      i = run_end;
      if (i >= raw.size()) break;
    }
    size_t before = decoded.size();
    if (i + 1 >= raw.size()) return false;
    const size_t from = i;
    switch (raw[i + 1]) {
      case '"': decoded += '"'; i += 2; break;
      case '\\': decoded += '\\'; i += 2; break;
      case '/': decoded += '/'; i += 2; break;
      case 'b': decoded += '\b'; i += 2; break;
      case 'f': decoded += '\f'; i += 2; break;
      case 'n': decoded += '\n'; i += 2; break;
      case 'r': decoded += '\r'; i += 2; break;
      case 't': decoded += '\t'; i += 2; break;
      case 'u': {
        int v = hex4(raw, i + 2);
        if (v < 0) return false;
        uint32_t cp = static_cast<uint32_t>(v);
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          int lo = (i + 1 < raw.size() && raw[i] == '\\' && raw[i + 1] == 'u') ? hex4(raw, i + 2) : -1;
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(lo) - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        put_utf8(cp, decoded);
        break;
      }
      default:
        return false;
    }
    sink.escape(before, from, decoded.size() - before);
  }
  return true;
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
  // One segment per escape and at most one per run between them: no reallocation on the way.
  map->segs_.reserve(2 * static_cast<size_t>(std::count(raw.begin(), raw.end(), '\\')) + 1);
  SparseMap sparse{map->segs_};
  bool ok = decode(raw, decoded, sparse);
  map->decoded_size_ = static_cast<uint32_t>(decoded.size());
  map->raw_size_ = static_cast<uint32_t>(raw.size());
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
