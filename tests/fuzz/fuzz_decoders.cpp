// libFuzzer target: the decoders and encoders the engine relies on (filter/json_string.h,
// filter/literal_variants.h).
//
// Invariants:
//  - json_unescape: the offset map has one entry per decoded byte plus a final raw.size(), never
//    decreasing, every entry inside the raw text; on the content of a valid JSON string it
//    succeeds and agrees with simdjson; lone surrogates become U+FFFD;
//  - json_escape_append: re-decodes to its input; for valid UTF-8 it is a valid JSON string
//    body that simdjson decodes to the input;
//  - base64: decode(encode(x)) == x in all four alphabets/padding forms; whatever decodes
//    re-encodes to something that decodes to the same bytes;
//  - literal_variants: every base64 form of a value inside any surrounding bytes contains one of
//    the value's registered base64 variants (the promise that a known value is found inside a
//    larger blob at any alignment); each JSON variant decodes back to the value.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "filter/json_string.h"
#include "fuzz_common.h"

using namespace scrub;
using namespace scrub::fuzz;

namespace {

void check_unescape(std::string_view raw) {
  std::string decoded;
  std::vector<uint32_t> offs;
  bool ok = json_unescape(raw, decoded, &offs);
  FUZZ_CHECK(!offs.empty() && offs.back() == raw.size(), "offset map must end at raw.size()");
  if (ok) FUZZ_CHECK(offs.size() == decoded.size() + 1, "offset map size");
  for (size_t i = 1; i < offs.size(); ++i) FUZZ_CHECK(offs[i - 1] <= offs[i], "offset map decreases");
  for (size_t i = 0; i + 1 < offs.size(); ++i) FUZZ_CHECK(offs[i] < raw.size(), "offset outside raw");
  std::string plain;
  FUZZ_CHECK(json_unescape(raw, plain, nullptr) == ok && plain == decoded,
             "decoding with and without the map differ");
  // The segment map the redactor uses answers as the dense one.
  OffsetMap map;
  std::string mapped;
  FUZZ_CHECK(json_unescape_mapped(raw, mapped, &map) == ok && mapped == decoded,
             "decoding with the segment map differs");
  if (ok) {
    FUZZ_CHECK(map.size() == offs.size(), "segment map size");
    for (size_t d = 0; d < offs.size(); ++d)
      FUZZ_CHECK(map.to_raw(d) == offs[d], "segment map: to_raw differs");
    for (size_t r = 0; r <= raw.size() + 1; ++r) {
      size_t lo = std::lower_bound(offs.begin(), offs.end(), r) - offs.begin();
      size_t up = std::upper_bound(offs.begin(), offs.end(), r) - offs.begin();
      FUZZ_CHECK(map.first_at_or_after(r) == lo, "segment map: lower bound differs");
      FUZZ_CHECK(map.first_after(r) == up, "segment map: upper bound differs");
    }
  }

  // Against simdjson, when the raw text is the body of a valid JSON string.
  std::string quoted = "\"" + std::string(raw) + "\"";
  static simdjson::dom::parser parser;
  simdjson::padded_string padded(quoted);
  std::string_view sv;
  if (parser.parse(padded).get_string().get(sv) == simdjson::SUCCESS) {
    FUZZ_CHECK(ok, "json_unescape rejects a valid JSON string");
    FUZZ_CHECK(sv == decoded, "json_unescape disagrees with simdjson");
  }

  // Escaping round-trips.
  std::string esc;
  json_escape_append(decoded, esc);
  std::string back;
  FUZZ_CHECK(json_unescape(esc, back, nullptr) && back == decoded, "escape does not round-trip");
  if (simdjson::validate_utf8(decoded.data(), decoded.size())) {
    simdjson::padded_string p2("\"" + esc + "\"");
    std::string_view sv2;
    FUZZ_CHECK(parser.parse(p2).get_string().get(sv2) == simdjson::SUCCESS,
               "escaped valid UTF-8 is not a valid JSON string");
    FUZZ_CHECK(sv2 == decoded, "simdjson decodes the escaped string differently");
  }
}

void check_base64(std::string_view bytes) {
  for (bool url : {false, true})
    for (bool pad : {false, true}) {
      std::string enc = base64_encode(bytes, url, pad);
      std::string dec;
      FUZZ_CHECK(base64_decode(enc, dec), "base64 of bytes does not decode");
      FUZZ_CHECK(dec == bytes, "base64 does not round-trip");
    }
  std::string dec;
  if (base64_decode(bytes, dec)) {
    std::string again;
    FUZZ_CHECK(base64_decode(base64_encode(dec), again) && again == dec,
               "decoded base64 does not round-trip");
  }
}

void check_variants(std::string_view value, std::string_view before, std::string_view after) {
  if (value.size() < 6 || value.size() > 96) return;
  size_t min_variant = std::max<size_t>(std::min<size_t>(value.size(), 8), 6);
  std::vector<LiteralVariant> vs = literal_variants(value, min_variant);
  FUZZ_CHECK(!vs.empty() && vs[0].bytes == value, "the raw value is the first variant");
  std::string whole = std::string(before) + std::string(value) + std::string(after);
  for (bool url : {false, true})
    for (bool pad : {false, true}) {
      std::string enc = base64_encode(whole, url, pad);
      bool found = false;
      for (const auto& v : vs)
        if (v.kind[0] == 'b' && enc.find(v.bytes) != std::string::npos) found = true;
      FUZZ_CHECK(found, "base64 of a value in context holds no variant");
    }
  for (const auto& v : vs) {
    if (std::string_view(v.kind) != "json") continue;
    std::string once, twice;
    FUZZ_CHECK(json_unescape(v.bytes, once, nullptr), "a JSON variant does not decode");
    if (once != value)
      FUZZ_CHECK(json_unescape(once, twice, nullptr) && twice == value,
                 "a JSON variant decodes to something else");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_unescape(in);
  check_base64(in);
  if (size >= 2) {
    size_t nb = data[0] % 4, na = data[1] % 4;
    if (size >= 2 + nb + na) {
      std::string_view rest = in.substr(2);
      check_variants(rest.substr(nb, rest.size() - nb - na), rest.substr(0, nb),
                     rest.substr(rest.size() - na));
    }
  }
  return 0;
}
