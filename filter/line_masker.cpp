#include "filter/line_masker.h"

namespace scrub {

RedactStatus redact_key_line(Redactor& redactor, std::string& tracked, size_t line_len,
                             std::string& out, Findings& findings) {
  Finding f;
  f.rule_id = PemBlockTracker::kRuleId;
  f.offset = 0;
  f.length = line_len;
  f.severity = Severity::kCritical;
  findings.push_back(std::move(f));
  const RedactStatus st = redactor.redact_text(tracked, out, findings);
  if (st == RedactStatus::kError) return st;
  if (st == RedactStatus::kClean) out.swap(tracked);
  return RedactStatus::kMasked;
}

RedactStatus LineMasker::mask(Redactor& redactor, std::string_view line, bool whole,
                              std::string& out, Findings& findings) {
  tracked_.clear();
  const bool key_line = pem_.process(line, tracked_);
  RedactStatus st;
  if (key_line) {
    st = redact_key_line(redactor, tracked_, line.size(), out, findings);
  } else {
    st = redactor.redact_text(line, out, findings);
    if (st == RedactStatus::kClean && !before_.empty())
      st = redactor.redact_text_after(before_, line, out, findings);
  }
  if (!key_line && whole && line.size() <= kMaxBefore) before_.assign(line);
  else before_.clear();
  return st;
}

}  // namespace scrub
