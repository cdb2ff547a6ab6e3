// Shared test doubles for the engine tests: compile a set from inline TOML and known secrets with
// a fixed fingerprint key, and redact in one call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "filter/compiled_set.h"
#include "filter/redactor.h"
#include "patterns/rule_loader.h"
#include "tests/sanitizer_stride.h"

namespace scrub::test {



inline EngineOptions test_options(MaskStyle mask = MaskStyle::kLabel) {
  EngineOptions eo;
  eo.mask = mask;
  eo.fingerprint_key = "unit-test-fingerprint-key";
  return eo;
}

inline std::shared_ptr<const CompiledSet> make_set(const std::string& toml,
                                                   std::vector<KnownSecret> secrets = {},
                                                   EngineOptions eo = test_options()) {
  return CompiledSet::compile(load_rules_string(toml, "test.toml"), secrets, eo);
}

struct Redacted {
  RedactStatus status;
  std::string out;  // the input itself when clean
  Findings findings;
  bool valid_json = true;
};

inline Redacted redact_text(Redactor& r, const std::string& in) {
  Redacted res;
  res.status = r.redact_text(in, res.out, res.findings);
  if (res.status == RedactStatus::kClean) res.out = in;
  return res;
}

inline Redacted redact_json(Redactor& r, const std::string& in) {
  Redacted res;
  JsonInfo info;
  res.status = r.redact_json(in, res.out, res.findings, &info);
  res.valid_json = info.valid;
  if (res.status == RedactStatus::kClean) res.out = in;
  return res;
}

// Deterministic fake secret material (never a real credential).
inline std::string fake(size_t n, unsigned seed = 7) {
  static const char kAlnum[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  std::string s;
  unsigned x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s += kAlnum[(x >> 16) % (sizeof kAlnum - 1)];
  }
  return s;
}

}  // namespace scrub::test
