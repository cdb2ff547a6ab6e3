// Masking a stream one line at a time, as the stdio wrap and each `tcp -- COMMAND` connection
// read a server's stderr. Two things need the lines before the one at hand: a private key printed
// over several lines (PemBlockTracker) and a match that runs across one line break
// (Redactor::redact_text_after). `filter`'s loop, which scans lines in batches, keeps its own
// line before but reports a key's line through redact_key_line too.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "filter/finding.h"
#include "filter/pem_blocks.h"
#include "filter/redactor.h"

namespace scrub {

// A line the private-key tracker replaced (`tracked`: the line with the key's body masked):
// reports the key as one finding over the whole line (`line_len` bytes of it as it came) and
// scans what the line holds besides it (before its BEGIN marker, after its END) like any text.
// `out`: the line to write (`tracked` is left empty when it is moved there). kMasked, or kError
// when the engine fails.
RedactStatus redact_key_line(Redactor& redactor, std::string& tracked, size_t line_len,
                             std::string& out, Findings& findings);

class LineMasker {
 public:
  // The longest line kept as the next one's line before (a longer one is not an env list's).
  static constexpr size_t kMaxBefore = 4096;

  // `line` without its line break; `whole`: a line break ended it (false: a partial line's piece,
  // written after quiet). kMasked: `out` holds the masked line. kClean: `out` is not the line.
  RedactStatus mask(Redactor& redactor, std::string_view line, bool whole, std::string& out,
                    Findings& findings);
  // Output that did not go through mask() (an overlong line, in pieces): the next line has no
  // line before.
  void forget() { before_.clear(); }

 private:
  PemBlockTracker pem_;
  std::string before_, tracked_;
};

}  // namespace scrub
