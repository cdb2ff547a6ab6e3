#include "patterns/rule_check.h"

#include <memory>
#include <stdexcept>

#include "filter/char_run.h"
#include "filter/redactor.h"
#include "filter/scanner.h"

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

std::string spans_of(const Findings& findings) {
  std::string spans;
  for (const Finding& f : findings)
    spans += " [" + std::to_string(f.offset) + "," + std::to_string(f.offset + f.length) + ")";
  return spans;
}

// For each example of `rule`: whether its text holds the rule's required run (always, for a
// rule without one; never, for one that does not parse: its compile reports why).
std::vector<bool> examples_holding_run(const Rule& rule) {
  std::vector<bool> holds(rule.examples.size(), true);
  if (rule.required_run.empty()) return holds;
  std::string why;
  const auto run = CharRun::parse(rule.required_run, why);
  for (size_t i = 0; i < holds.size(); ++i) holds[i] = run && run->found_in(rule.examples[i].text);
  return holds;
}

// Rule `rule` alone (the only source `redactor` reports) against its examples and negatives;
// `holds` from examples_holding_run.
void check_one(const Rule& rule, const std::vector<bool>& holds, Redactor& redactor,
               RuleCheckReport& report) {
  auto fail = [&](std::string why) { report.failures.push_back({rule.id, std::move(why)}); };
  for (size_t i = 0; i < rule.examples.size(); ++i) {
    ++report.examples;
    const RuleExample& ex = rule.examples[i];
    const std::string which = "example " + std::to_string(i + 1);
    if (ex.secret.empty() || ex.text.find(ex.secret) == std::string::npos) {
      fail(which + ": its secret does not occur in its text");
      continue;
    }
    if (!holds[i]) {  // the rule is not even looked for there
      fail(which + ": its text holds no run of " + rule.required_run + " (requiredRun)");
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
      size_t at = ex.text.find(ex.secret);
      fail(which + ": masked span(s)" + spans_of(findings) + " but the secret is at [" +
           std::to_string(at) + "," + std::to_string(at + ex.secret.size()) + ")");
    }
  }
  for (size_t i = 0; i < rule.negatives.size(); ++i) {
    ++report.negatives;
    std::string out;
    Findings findings;
    if (redactor.redact_text(rule.negatives[i], out, findings) != RedactStatus::kClean)
      fail("negative " + std::to_string(i + 1) + ": the rule fires at" + spans_of(findings));
  }
}

// Each rule against its own cases: through `shared` (the whole set, reporting one rule at a time)
// when the set compiled, else compiled alone. Then the whole set against every example.
RuleCheckReport check_with(const RuleSet& rules, std::shared_ptr<const CompiledSet> all,
                           const std::string& set_error) {
  RuleCheckReport report;
  const EngineOptions eo = check_options();
  std::unique_ptr<Redactor> shared;
  if (all) shared = std::make_unique<Redactor>(std::move(all));
  std::vector<std::vector<bool>> holds;
  for (const Rule& rule : rules.rules) holds.push_back(examples_holding_run(rule));
  for (size_t r = 0; r < rules.rules.size(); ++r) {
    const Rule& rule = rules.rules[r];
    ++report.rules;
    auto fail = [&](std::string why) { report.failures.push_back({rule.id, std::move(why)}); };
    if (rule.examples.empty()) fail("has no example");
    if (rule.negatives.empty()) fail("has no negative");
    if (shared) {
      shared->scanner().only_source(static_cast<uint32_t>(r));
      check_one(rule, holds[r], *shared, report);
      continue;
    }
    RuleSet one;
    one.rules.push_back(rule);
    one.global_allowlists = rules.global_allowlists;
    try {
      Redactor alone(CompiledSet::compile(one, {}, eo));
      check_one(rule, holds[r], alone, report);
    } catch (const ConfigError& e) {
      fail(e.what());
    }
  }
  if (!shared) {
    report.failures.push_back({"(set)", set_error});
    return report;
  }
  // All rules together: every example's secret must still be masked entirely.
  shared->scanner().only_source(Scanner::kAllSources);
  for (size_t r = 0; r < rules.rules.size(); ++r) {
    const Rule& rule = rules.rules[r];
    for (size_t i = 0; i < rule.examples.size(); ++i) {
      const RuleExample& ex = rule.examples[i];
      if (ex.secret.empty() || !holds[r][i]) continue;  // reported above
      std::string out;
      Findings findings;
      RedactStatus st = shared->redact_text(ex.text, out, findings);
      if (st != RedactStatus::kMasked || out.find(ex.secret) != std::string::npos)
        report.failures.push_back(
            {rule.id, "example " + std::to_string(i + 1) +
                          ": with the whole set loaded, the secret is not fully masked"});
    }
  }
  return report;
}

}  // namespace

RuleCheckReport check_rules(const RuleSet& rules, const std::string& cache_dir) {
  // The whole set compiled once serves every rule's own check (Scanner::only_source) and the
  // check of all rules together; a set that does not compile has each rule compiled alone, so
  // every broken rule is named with its reason.
  EngineOptions eo = check_options();
  eo.cache_dir = cache_dir;
  try {
    return check_with(rules, CompiledSet::compile(rules, {}, eo), {});
  } catch (const ConfigError& e) {
    return check_with(rules, nullptr, e.what());
  }
}

RuleCheckReport check_rules(const RuleSet& rules, std::shared_ptr<const CompiledSet> compiled) {
  if (!compiled || compiled->rule_count() != rules.rules.size())
    throw std::invalid_argument("check_rules: the compiled set does not hold these rules");
  return check_with(rules, std::move(compiled), {});
}

}  // namespace scrub
