#include "filter/pem_blocks.h"

namespace scrub {

namespace {

// Position just after a "-----BEGIN/END ... PRIVATE KEY[ BLOCK]-----" marker, or npos.
size_t marker_end(std::string_view line, std::string_view kind) {
  size_t pos = 0;
  for (;;) {
    size_t at = line.find(kind, pos);
    if (at == std::string_view::npos) return std::string_view::npos;
    size_t close = line.find("-----", at + kind.size());
    if (close == std::string_view::npos) return std::string_view::npos;
    std::string_view label = line.substr(at + kind.size(), close - at - kind.size());
    if (label.size() <= 60 && label.find("PRIVATE KEY") != std::string_view::npos) return close + 5;
    pos = at + kind.size();
  }
}

}  // namespace

bool PemBlockTracker::process(std::string_view line, std::string& out) {
  // Most lines of a log are not near a key: one search for the marker's dashes decides that.
  if (!inside_ && line.find("-----BEGIN ") == std::string_view::npos) return false;
  static const std::string mask = std::string("[REDACTED:") + kRuleId + "]";
  if (!inside_) {
    size_t begin_end = marker_end(line, "-----BEGIN ");
    if (begin_end == std::string_view::npos) return false;
    // A block that also ends on this line is whole; the rules handle it.
    if (marker_end(line.substr(begin_end), "-----END ") != std::string_view::npos) return false;
    inside_ = true;
    lines_ = 0;
    if (begin_end >= line.size()) return false;  // nothing after the marker
    out.assign(line.substr(0, begin_end));
    out += mask;
    return true;
  }
  ++lines_;
  size_t end_at = line.find("-----END ");
  if (end_at != std::string_view::npos && marker_end(line, "-----END ") != std::string_view::npos) {
    inside_ = false;
    out = end_at > 0 ? mask + std::string(line.substr(end_at)) : std::string(line);
    return end_at > 0;
  }
  if (lines_ >= kMaxLines) {
    inside_ = false;
    return false;
  }
  size_t lead = line.find_first_not_of(" \t");
  if (lead == std::string_view::npos) return false;  // blank line inside a block
  out.assign(line.substr(0, lead));
  out += mask;
  if (!line.empty() && line.back() == '\r') out += '\r';
  return true;
}

}  // namespace scrub
