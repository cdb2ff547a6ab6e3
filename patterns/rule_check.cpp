#include "patterns/rule_check.h"

#include "filter/redactor.h"

namespace scrub {

namespace {

// The text with every occurrence of `secret` replaced by the label mask.
std::string expected_mask(const std::string& text, const std::string& secret, const std::string& id) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t at = text.find(secret, pos);
    if (at == std::string::npos) break;
    out.append(text, pos, at - pos);
    out += "[REDACTED:" + id + "]";
    pos = at + secret.size();
  }
  out.append(text, pos);
  return out;
}

EngineOptions check_options() {
  EngineOptions eo;
  eo.fingerprint_key = "rules-check-key-not-secret";
  return eo;
}

}  // namespace

RuleCheckReport check_rules(const RuleSet& rules) {
  RuleCheckReport report;
  const EngineOptions eo = check_options();
  for (const Rule& rule : rules.rules) {
    ++report.rules;
    auto fail = [&](std::string why) { report.failures.push_back({rule.id, std::move(why)}); };
    if (rule.examples.empty()) fail("has no example");
    if (rule.negatives.empty()) fail("has no negative");
    RuleSet one;
    one.rules.push_back(rule);
    one.global_allowlists = rules.global_allowlists;
    std::shared_ptr<const CompiledSet> set;
    try {
      set = CompiledSet::compile(one, {}, eo);
    } catch (const ConfigError& e) {
      fail(e.what());
      continue;
    }
    Redactor redactor(set);
    for (size_t i = 0; i < rule.examples.size(); ++i) {
      ++report.examples;
      const RuleExample& ex = rule.examples[i];
      const std::string which = "example " + std::to_string(i + 1);
      if (ex.secret.empty() || ex.text.find(ex.secret) == std::string::npos) {
        fail(which + ": its secret does not occur in its text");
        continue;
      }
      std::string out;
      Findings findings;
      RedactStatus st = redactor.redact_text(ex.text, out, findings);
      if (st == RedactStatus::kClean) {
        fail(which + ": the rule does not fire");
        continue;
      }
      if (out != expected_mask(ex.text, ex.secret, rule.id)) {
        std::string spans;
        for (const Finding& f : findings)
          spans += " [" + std::to_string(f.offset) + "," + std::to_string(f.offset + f.length) + ")";
        size_t at = ex.text.find(ex.secret);
        fail(which + ": masked span(s)" + spans + " but the secret is at [" + std::to_string(at) +
             "," + std::to_string(at + ex.secret.size()) + ")");
      }
    }
    for (size_t i = 0; i < rule.negatives.size(); ++i) {
      ++report.negatives;
      std::string out;
      Findings findings;
      if (redactor.redact_text(rule.negatives[i], out, findings) != RedactStatus::kClean) {
        std::string spans;
        for (const Finding& f : findings)
          spans += " [" + std::to_string(f.offset) + "," + std::to_string(f.offset + f.length) + ")";
        fail("negative " + std::to_string(i + 1) + ": the rule fires at" + spans);
      }
    }
  }
  // All rules together: every example's secret must still be masked entirely.
  try {
    auto all = CompiledSet::compile(rules, {}, eo);
    Redactor redactor(all);
    for (const Rule& rule : rules.rules) {
      for (size_t i = 0; i < rule.examples.size(); ++i) {
        const RuleExample& ex = rule.examples[i];
        if (ex.secret.empty()) continue;
        std::string out;
        Findings findings;
        RedactStatus st = redactor.redact_text(ex.text, out, findings);
        if (st != RedactStatus::kMasked || out.find(ex.secret) != std::string::npos)
          report.failures.push_back(
              {rule.id, "example " + std::to_string(i + 1) +
                            ": with the whole set loaded, the secret is not fully masked"});
      }
    }
  } catch (const ConfigError& e) {
    report.failures.push_back({"(set)", e.what()});
  }
  return report;
}

}  // namespace scrub
