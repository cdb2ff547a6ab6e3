// Encoded forms of a known secret value, so a value is found however a server re-encodes it:
// JSON-escaped (standard, `\/`, .NET's and Go's `\uXXXX` styles, ASCII-only as Python and
// System.Text.Json write non-ASCII characters, JSON-in-JSON), URL-encoded,
// XML-escaped, and base64 (standard and URL-safe) at the three byte alignments with the edge
// characters that depend on neighbouring bytes trimmed, so it is found inside a larger blob.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "patterns/known_secrets.h"

namespace scrub {

struct LiteralVariant {
  std::string bytes;
  const char* kind;  // "raw", "json", "url", "xml", "base64", "base64url"
};

// Every distinct encoded form of `value` (the raw value first) that is at least `min_length`
// bytes long.
std::vector<LiteralVariant> literal_variants(std::string_view value, size_t min_length);

// The forms of a known value the engine looks for: literal_variants down to the value's own
// length, never below 6 bytes (shorter forms would mask ordinary words); the base64 forms only
// `with_base64` (--no-base64-variants leaves them out of the database).
std::vector<LiteralVariant> literal_forms(std::string_view value, bool with_base64);

// Adds derived secrets: each line of a multi-line value, and the password inside a URL-shaped
// value (`scheme://user:pass@host`), each under the parent's name plus a suffix.
std::vector<KnownSecret> expand_known_secrets(const std::vector<KnownSecret>& secrets,
                                              size_t min_length);

// Masks every form the engine looks for of a set of known values (the values, their derived
// lines and passwords, and each one's literal_forms, base64 included) in a text: each run of
// covered bytes becomes one `[REDACTED:known-secret]`. For the control plane's own messages,
// which may quote what a user's rule file holds (a rule id, a regex) before any engine exists to
// mask them. The forms are made on the first call that has text to mask (about 0.4 ms for 100
// values), once for the masker's life.
class KnownValueMasker {
 public:
  explicit KnownValueMasker(const std::vector<KnownSecret>& secrets) : secrets_(secrets) {}
  std::string operator()(std::string_view text) const;

 private:
  const std::vector<KnownSecret>& secrets_;
  mutable std::vector<std::string> forms_;
  mutable bool made_ = false;
};

// One message: KnownValueMasker(secrets)(text).
std::string mask_known_values(std::string_view text, const std::vector<KnownSecret>& secrets);

std::string base64_encode(std::string_view bytes, bool url_safe = false, bool pad = true);
std::string json_escape(std::string_view s);
// Decodes standard or URL-safe base64 (padding optional, whitespace skipped); false if invalid.
bool base64_decode(std::string_view in, std::string& out);  // standard JSON string escaping, no quotes

}  // namespace scrub
