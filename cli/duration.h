// Durations on the command line and in config files: "500ms", "30s", "15m", "24h", "7d",
// "1h30m"; a bare number is seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace scrub {

inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double total_ms = 0;
  size_t i = 0;
  bool any = false;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double v = std::stod(std::string(s.substr(start, i - start)));
    size_t us = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(us, i - us);
    double mult;
    if (unit.empty() || unit == "s") mult = 1000;
    else if (unit == "ms") mult = 1;
    else if (unit == "m") mult = 60e3;
    else if (unit == "h") mult = 3600e3;
    else if (unit == "d") mult = 86400e3;
    else return std::nullopt;
    if (unit.empty() && any) return std::nullopt;  // "1h30" is ambiguous
    total_ms += v * mult;
    any = true;
  }
  return std::chrono::milliseconds(static_cast<long long>(total_ms));
}

}  // namespace scrub
