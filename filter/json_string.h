// JSON string tokens: decoding with an offset map back to the raw bytes, and encoding.
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

// Appends `s` JSON-escaped (quotes, backslash, control characters), without surrounding quotes.
void json_escape_append(std::string_view s, std::string& out);

}  // namespace scrub
