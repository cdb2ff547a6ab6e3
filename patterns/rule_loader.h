// Loading rules from TOML (gitleaks-compatible, plus mcp-scrub's extensions).
//
// Promises: a RuleSet whose every rule has an id, a regex and sane fields; or a ConfigError that
// names the file, the rule (by id or index) and the reason. Regexes are not compiled here
// (filter/compiled_set.h does that and names the failing rule likewise).
#pragma once

#include <filesystem>
#include <string_view>

#include "filter/rule.h"

namespace scrub {

RuleSet load_rules_string(std::string_view toml_text, std::string_view origin);
RuleSet load_rules_file(const std::filesystem::path& path);
// The pack in patterns/builtin.toml, parsed at build time and embedded into the binary
// (patterns/rule_codec.h); the same RuleSet load_rules_string gives for that file.
RuleSet builtin_rules();
// Appends `more` to `into`; a rule whose id already exists replaces the earlier one.
void merge_rules(RuleSet& into, RuleSet more);

}  // namespace scrub
