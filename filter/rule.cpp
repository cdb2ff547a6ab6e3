#include "filter/rule.h"

namespace scrub {

const char* to_string(MaskStyle s) {
  switch (s) {
    case MaskStyle::kLabel: return "label";
    case MaskStyle::kFixed: return "fixed";
    case MaskStyle::kPartial: return "partial";
    case MaskStyle::kHash: return "hash";
  }
  return "label";
}

const char* to_string(Action a) {
  switch (a) {
    case Action::kMask: return "mask";
    case Action::kBlock: return "block";
    case Action::kAlert: return "alert";
  }
  return "mask";
}

const char* to_string(Severity s) {
  switch (s) {
    case Severity::kLow: return "low";
    case Severity::kMedium: return "medium";
    case Severity::kHigh: return "high";
    case Severity::kCritical: return "critical";
  }
  return "high";
}

std::optional<MaskStyle> parse_mask_style(std::string_view v) {
  if (v == "label") return MaskStyle::kLabel;
  if (v == "fixed") return MaskStyle::kFixed;
  if (v == "partial") return MaskStyle::kPartial;
  if (v == "hash") return MaskStyle::kHash;
  return std::nullopt;
}

std::optional<Action> parse_action(std::string_view v) {
  if (v == "mask") return Action::kMask;
  if (v == "block") return Action::kBlock;
  if (v == "alert") return Action::kAlert;
  return std::nullopt;
}

std::optional<Severity> parse_severity(std::string_view v) {
  if (v == "low" || v == "info") return Severity::kLow;
  if (v == "medium") return Severity::kMedium;
  if (v == "high") return Severity::kHigh;
  if (v == "critical") return Severity::kCritical;
  return std::nullopt;
}

}  // namespace scrub
