// The compiled pattern set: every rule and every known literal (with its encoded variants) in one
// Hyperscan database, plus the RE2 programs that confirm rule matches and extract the secret
// group. Built once per configuration on the control plane; immutable afterwards and shared
// between threads as std::shared_ptr<const CompiledSet>. Scan state (Hyperscan scratch) lives in
// filter/scanner.h, one per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filter/rule.h"
#include "patterns/known_secrets.h"

struct hs_database;
struct hs_scratch;

namespace scrub {

struct EngineOptions {
  MaskStyle mask = MaskStyle::kLabel;
  std::string fixed_text = "[REDACTED]";
  Action action = Action::kMask;
  std::string fingerprint_key;  // raw key bytes for the HMAC; must be set (filter/fingerprint.h)
  size_t fingerprint_hex = 12;  // hex digits of the fingerprint kept
  bool base64_variants = true;  // register base64 forms of known literals
  std::string cache_dir;        // compiled-database cache (filter/db_cache.h); empty = none
};

class CompiledSet {
 public:
  // Throws ConfigError naming the rule and the reason when a rule cannot be compiled by RE2, or by
  // Hyperscan even as a prefilter, or matches the empty string.
  static std::shared_ptr<const CompiledSet> compile(const RuleSet& rules,
                                                    const std::vector<KnownSecret>& secrets,
                                                    const EngineOptions& options);
  ~CompiledSet();
  CompiledSet(const CompiledSet&) = delete;
  CompiledSet& operator=(const CompiledSet&) = delete;

  // The main database, and the one of the rules with a required run (null when none has one),
  // which a unit is also scanned with when gate_open(unit): it holds one of their runs.
  const hs_database* database() const;
  const hs_database* gated_database() const;
  bool gate_open(std::string_view unit) const;
  // For benchmarks: one unit's Hyperscan pass as a Scanner makes it (the main database, and the
  // gated one where gate_open), with a scratch from new_scratch(), which serves both databases
  // (hs_free_scratch it; nullptr when none could be made or nothing is configured). Returns
  // Hyperscan's status.
  using MatchHandler = int (*)(unsigned id, unsigned long long from, unsigned long long to,
                               unsigned flags, void* ctx);
  int scan(std::string_view unit, hs_scratch* scratch, MatchHandler on, void* ctx) const;
  hs_scratch* new_scratch() const;
  const EngineOptions& options() const;
  size_t rule_count() const;
  size_t literal_count() const;   // known values registered (before variants)
  size_t pattern_count() const;   // Hyperscan expressions, variants included
  // Rules that Hyperscan compiled only as a prefilter (confirmed by RE2 on every hit).
  std::vector<std::string> prefilter_rules() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit CompiledSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace scrub
