// Private-key blocks that span lines. In a line-oriented stream (filter's text mode, a server's
// stderr) each base64 body line of a PEM/OpenSSH/PGP private key is scanned alone and matches no
// rule, so a key printed over many lines would pass. This tracker remembers that a BEGIN ...
// PRIVATE KEY marker was seen and masks every following line up to and including its END marker
// (at most kMaxLines lines, so a missing END cannot swallow the rest of a log).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace scrub {

class PemBlockTracker {
 public:
  static constexpr size_t kMaxLines = 400;
  static constexpr const char* kRuleId = "private-key-block";

  // For each line in order. Returns true when the line is (part of) a block body: `out` then
  // holds the masked line. A BEGIN line itself is left to the rules (it holds no secret).
  bool process(std::string_view line, std::string& out);
  bool inside() const { return inside_; }

  // Whether `text` (one line or many) holds a BEGIN marker. While the tracker is not inside a
  // block, process() returns false for a line without one and leaves its state as it was, so a
  // caller holding many lines can ask once for all of them.
  static bool may_begin(std::string_view text);

 private:
  bool inside_ = false;
  size_t lines_ = 0;
};

}  // namespace scrub
