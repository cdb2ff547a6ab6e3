// JSON string tokens: decoding with an offset map back to the raw bytes, and encoding; the blanks
// between tokens.
// The redactor masks inside decoded strings and maps each masked span back to the raw token, so
// a secret written as `\u0041\u004b...` or `https:\/\/` is found and reported at its real place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace scrub {

// Decodes the content of a JSON string token (between the quotes). `raw_offsets` receives, for
// each decoded byte, the offset in `raw` of the escape or byte it came from, plus one final entry
// equal to raw.size(). Lone surrogates decode to U+FFFD. Returns false on a malformed escape (the
// output then holds what was decoded so far).
bool json_unescape(std::string_view raw, std::string& decoded, std::vector<uint32_t>* raw_offsets);

// The same offset map, held as segments: one per run of plain bytes (mapped linearly) and one
// per escape (every byte it decodes to maps to the escape's start). Four bytes per decoded byte
// was the largest buffer of a masked multi-megabyte message; this holds a few per escape.
// Answers what the dense vector `v` would: to_raw(d) == v[d], first_at_or_after(r) ==
// lower_bound(v, r) and first_after(r) == upper_bound(v, r) as indices, size() == v.size().
class OffsetMap {
 public:
  size_t size() const { return decoded_size_ + 1; }
  size_t to_raw(size_t d) const;
  size_t first_at_or_after(size_t r) const;
  size_t first_after(size_t r) const { return first_at_or_after(r + 1); }

  struct Segment {
    uint32_t d;  // first decoded byte
    uint32_t r;  // its raw offset
    bool run;    // plain bytes (linear) or one escape's output (constant)
  };

 private:
  friend bool json_unescape_mapped(std::string_view, std::string&, OffsetMap*);
  friend bool json_offset_map(std::string_view, OffsetMap*);
  uint32_t last_raw(size_t i) const;  // the raw offset of segment i's last decoded byte
  std::vector<Segment> segs_;
  uint32_t decoded_size_ = 0, raw_size_ = 0;
};

// json_unescape with the segment map; `map` may be null (no map wanted).
bool json_unescape_mapped(std::string_view raw, std::string& decoded, OffsetMap* map);

// The map json_unescape_mapped makes, without decoding: the same segments and sizes, the same
// answers, in about two thirds of the time (no byte written, one step per escape).
bool json_offset_map(std::string_view raw, OffsetMap* map);

// The end of the string token whose content starts at `begin` in `text`: the offset of its
// closing quote (the first '"' not escaped by a backslash), or text.size() if it has none.
// `escaped`, when given, is set to whether the content [begin, end) holds a backslash.
size_t json_string_end(std::string_view text, size_t begin, bool* escaped = nullptr);

// The four bytes JSON allows between tokens.
inline bool json_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Appends `s` JSON-escaped (quotes, backslash, control characters), without surrounding quotes.
void json_escape_append(std::string_view s, std::string& out);

}  // namespace scrub
