// Redaction of one unit: text anywhere in a line, or JSON-aware inside decoded string values.
//
// Promises:
//  - kClean: nothing found, `out` untouched; the caller forwards the input bytes unchanged.
//  - kMasked: `out` holds the masked unit; for JSON input that was valid JSON, `out` is valid
//    JSON with the same structure, every masked string still a string.
//  - kError: the engine could not scan; the caller must not forward the unit (fail closed).
// Masks use only JSON-safe printable ASCII, never re-trigger a rule, and never contain any part
// of the secret except the non-secret prefix kept by the `partial` style.
#pragma once

#include <string>
#include <string_view>

#include "filter/finding.h"
#include "filter/scanner.h"

namespace scrub {

enum class RedactStatus { kClean, kMasked, kError };

struct JsonInfo {
  bool valid = true;  // false: the unit was not valid JSON and was redacted as text
};

class Redactor {
 public:
  explicit Redactor(std::shared_ptr<const CompiledSet> set);

  RedactStatus redact_text(std::string_view unit, std::string& out, Findings& findings);
  // `path_prefix` is prepended to JSON paths (for example when the unit is itself a decoded
  // string found at some path).
  RedactStatus redact_json(std::string_view unit, std::string& out, Findings& findings,
                           JsonInfo* info = nullptr);

  Scanner& scanner() { return scanner_; }

 private:
  Scanner scanner_;
  std::string scratch_;
};

}  // namespace scrub
