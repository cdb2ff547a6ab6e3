// Runs a rule file's own examples and negatives: each rule compiled alone (with the file's global
// allowlists) must mask exactly each example's secret and nothing else, and find nothing in its
// negatives; then the whole set together must still mask every example's secret completely.
// Used by `mcp-scrub rules check` and by the test suite over the built-in pack.
#pragma once

#include <string>
#include <vector>

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

RuleCheckReport check_rules(const RuleSet& rules);

}  // namespace scrub
