// Findings per rule and incidents per kind, counted for the commands' summaries (the wrap's exit
// summary, tcp's per-connection and server totals). Thread-safe; holds rule ids only, never a
// secret.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace scrub {

class FindingCounts {
 public:
  void finding(const std::string& rule) {
    std::lock_guard<std::mutex> l(mu_);
    ++per_rule_[rule];
  }
  void incident(const std::string& kind) {
    std::lock_guard<std::mutex> l(mu_);
    ++incidents_[kind];
  }
  // "findings: none" or "findings: rule=N ...", then "; kind=N" per incident kind.
  std::string text() const {
    std::lock_guard<std::mutex> l(mu_);
    std::string s = "findings:";
    if (per_rule_.empty()) s += " none";
    for (const auto& [rule, n] : per_rule_) s += " " + rule + "=" + std::to_string(n);
    for (const auto& [kind, n] : incidents_) s += "; " + kind + "=" + std::to_string(n);
    return s;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> per_rule_, incidents_;
};

}  // namespace scrub
