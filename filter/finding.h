// A finding: one masked (or reported) secret. Carries everything an alert needs and nothing of
// the secret itself: no bytes, no prefix, no length-revealing suffix. The fingerprint is a
// truncated HMAC-SHA256 under the installation's key (filter/fingerprint.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "filter/rule.h"

namespace scrub {

struct Finding {
  std::string rule_id;      // "known-secret" for a known literal
  std::string secret_name;  // known literal: its source ("env:DATABASE_URL"); else empty
  size_t offset = 0;        // byte offset of the masked span in the unit as it was given
  size_t length = 0;        // byte length of that span (of the raw, possibly escaped, bytes)
  std::string json_path;    // "result.content[0].text"; empty in text mode
  std::string fingerprint;  // hex, truncated HMAC-SHA256 of the secret
  Severity severity = Severity::kHigh;
  Action action = Action::kMask;
  bool known_literal = false;
  bool encoded = false;     // found after decoding (JSON escapes, nested JSON, base64)
};

using Findings = std::vector<Finding>;

}  // namespace scrub
