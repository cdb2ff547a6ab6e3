// Rules as data: what a rule file says, before anything is compiled.
//
// The schema is a superset of gitleaks' configuration (see patterns/README.md). A Rule is plain
// data; filter/compiled_set.h turns a RuleSet plus known secret values into one immutable,
// shareable scanning database.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace scrub {

// Thrown on the control plane (rule files, options, compile). The message names the file, the
// rule and the reason; it never contains a secret value.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class MaskStyle { kLabel, kFixed, kPartial, kHash };
enum class Action { kMask, kBlock, kAlert };
enum class Severity { kLow, kMedium, kHigh, kCritical };
// What an allowlist regex is matched against (gitleaks `regexTarget`).
enum class RegexTarget { kSecret, kMatch, kLine };

struct Allowlist {
  std::string description;
  bool condition_and = false;  // gitleaks `condition = "AND"`; default OR
  RegexTarget regex_target = RegexTarget::kSecret;
  std::vector<std::string> regexes;
  std::vector<std::string> stopwords;      // compared lower-cased, as substrings of the secret
  std::vector<std::string> target_rules;   // global [[allowlists]] only: empty = every rule
  bool has_paths_or_commits = false;       // gitleaks criteria that never apply to a stream
  bool operator==(const Allowlist&) const = default;
};

struct RuleExample {
  std::string text;    // a line the rule must fire on
  std::string secret;  // exactly the bytes that must be masked
  bool operator==(const RuleExample&) const = default;
};

struct Rule {
  std::string id;  // [A-Za-z0-9._:-]+, unique in a set
  std::string description;
  std::string regex;      // Go/RE2 syntax
  // Optional (this tool's extension): what Hyperscan looks for instead of `regex`, a cheap
  // expression that ends at or after the end of every match of `regex` on the same line (the
  // "@" that ends a URL's userinfo). Each hit has RE2 search the line up to it for `regex`. For
  // a rule whose regex costs the whole set's scan much more than its rare matches are worth.
  std::string prefilter;
  // With a prefilter: false (TOML `prefilterSearch = "up-to-hit"`, the default) as above; true
  // (`"whole-unit"`): the prefilter need only match somewhere inside every match of `regex` (its
  // rare opening words), and a hit has RE2 search the whole line (message, decoded string).
  bool prefilter_whole_unit = false;
  // Optional (this tool's extension, TOML `requiredRun`): `[class]{N}`, N consecutive bytes of
  // the class that every match holds (filter/char_run.h). The rule is then scanned only over
  // units that hold such a run.
  std::string required_run;
  int secret_group = 0;   // 0: first non-empty capture group, else the whole match (gitleaks)
  double entropy = 0.0;   // minimum Shannon entropy of the secret, exclusive (gitleaks)
  std::vector<std::string> keywords;  // any must occur (case-insensitive) in the scanned unit
  std::vector<Allowlist> allowlists;
  std::optional<MaskStyle> mask;      // per-rule override of the mask style
  std::optional<Action> action;       // per-rule override of the action
  Severity severity = Severity::kHigh;
  bool generic = false;  // the generic tier: loses to every specific rule on overlap
  int keep_prefix = -1;  // partial mask: bytes of the secret to keep; -1 derives it
  std::vector<RuleExample> examples;
  std::vector<std::string> negatives;
  std::string origin;  // "file.toml: rule 'id'" for messages
  bool operator==(const Rule&) const = default;
};

struct RuleSet {
  std::vector<Rule> rules;
  std::vector<Allowlist> global_allowlists;
  std::vector<std::string> warnings;  // things accepted but ignored (path-only rules, [extend])
  bool operator==(const RuleSet&) const = default;
};

const char* to_string(MaskStyle);
const char* to_string(Action);
const char* to_string(Severity);
std::optional<MaskStyle> parse_mask_style(std::string_view);
std::optional<Action> parse_action(std::string_view);
std::optional<Severity> parse_severity(std::string_view);

}  // namespace scrub
