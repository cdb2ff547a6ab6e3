// Runs a rule file's own examples and negatives: each rule alone (with the file's global
// allowlists) must mask exactly each example's secret and nothing else, and find nothing in its
// negatives; then the whole set together must still mask every example's secret completely.
// The set is compiled once (through the database cache in `cache_dir`, if given) and each rule's
// own check reports only that rule's matches; when the set does not compile, each rule is
// compiled alone so that every broken rule is reported. Used by `mcp-scrub rules check` and by
// the test suite over the built-in pack.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "filter/compiled_set.h"
#include "filter/rule.h"

namespace scrub {

struct RuleCheckFailure {
  std::string rule_id;
  std::string reason;  // never quotes a secret
};

struct RuleCheckReport {
  size_t rules = 0, examples = 0, negatives = 0;
  std::vector<RuleCheckFailure> failures;
};

RuleCheckReport check_rules(const RuleSet& rules, const std::string& cache_dir = {});
// The same over a set already compiled from `rules` (its rules in the same order; known values
// may have been added, the masks must be labels): throws std::invalid_argument when the rule
// counts differ.
RuleCheckReport check_rules(const RuleSet& rules, std::shared_ptr<const CompiledSet> compiled);

}  // namespace scrub
