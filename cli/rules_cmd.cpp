// `mcp-scrub rules list` and `mcp-scrub rules check FILE`.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_config.h"
#include "filter/redactor.h"
#include "patterns/rule_check.h"
#include "patterns/rule_loader.h"

namespace scrub {

namespace {
// One rule as `rules list --format json` prints it: every field that decides what the rule
// matches and does, null where the rule leaves it to the default. Keys are fixed: a script can
// read any of them from any rule.
nlohmann::ordered_json rule_json(const Rule& r) {
  using J = nlohmann::ordered_json;
  auto or_null = [](const std::string& s) { return s.empty() ? J() : J(s); };
  J j = J::object();
  j["id"] = r.id;
  j["description"] = r.description;
  j["severity"] = to_string(r.severity);
  j["tier"] = r.generic ? "generic" : "specific";
  j["keywords"] = r.keywords;
  j["regex"] = r.regex;
  j["secret_group"] = r.secret_group;
  j["entropy"] = r.entropy;
  j["prefilter"] = or_null(r.prefilter);
  j["prefilter_search"] =
      r.prefilter.empty() ? J() : J(r.prefilter_whole_unit ? "whole-unit" : "up-to-hit");
  j["required_run"] = or_null(r.required_run);
  j["allowlists"] = r.allowlists.size();
  j["mask"] = r.mask ? J(to_string(*r.mask)) : J();
  j["action"] = r.action ? J(to_string(*r.action)) : J();
  j["keep_prefix"] = r.keep_prefix >= 0 ? J(r.keep_prefix) : J();
  j["examples"] = r.examples.size();
  j["negatives"] = r.negatives.size();
  j["origin"] = r.origin;
  return j;
}

struct RulesOptions {
  std::string format = "table";
  std::vector<std::string> files;
  bool no_builtin = false;
  std::string check_file;
  bool no_cache = false;
};
}  // namespace

CommandRunner register_rules(CLI::App& app) {
  auto opt = std::make_shared<RulesOptions>();
  CLI::App* sub = app.add_subcommand("rules", "List or check rule packs");
  sub->require_subcommand(1);
  CLI::App* list = sub->add_subcommand("list", "Print the rules in effect");
  list->add_option("--format", opt->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  list->add_option("--rules", opt->files, "Add a rule file; repeatable")->check(CLI::ExistingFile);
  list->add_flag("--no-builtin-rules", opt->no_builtin, "Leave the built-in pack out");
  CLI::App* check = sub->add_subcommand(
      "check", "Compile a rule file and run every rule's examples and negatives");
  check->add_option("file", opt->check_file, "Rule file (TOML)")->required();
  check->add_flag("--no-cache", opt->no_cache,
                  "Compile the set without the compiled-database cache (as MCP_SCRUB_NO_CACHE)");
  return [opt, list, check]() -> int {
    if (list->parsed()) {
      RuleSet rules;
      if (!opt->no_builtin) rules = builtin_rules();
      for (const auto& f : opt->files) merge_rules(rules, load_rules_file(f));
      if (opt->format == "json") {
        nlohmann::ordered_json arr = nlohmann::ordered_json::array();
        for (const Rule& r : rules.rules) arr.push_back(rule_json(r));
        std::cout << arr.dump(2) << "\n";
      } else {
        for (const Rule& r : rules.rules)
          std::printf("%-40s %-9s %-8s %s\n", r.id.c_str(), to_string(r.severity),
                      r.generic ? "generic" : "specific", r.description.c_str());
        std::printf("%zu rules\n", rules.rules.size());
      }
      return kExitOk;
    }
    if (check->parsed()) {
      RuleSet rules = load_rules_file(opt->check_file);
      for (const auto& w : rules.warnings) spdlog::warn("{}", w);
      RuleCheckReport report = check_rules(rules, cache_dir_unless(opt->no_cache));
      for (const auto& f : report.failures) std::printf("FAIL %s: %s\n", f.rule_id.c_str(), f.reason.c_str());
      std::printf("%zu rules, %zu examples, %zu negatives checked: %zu failure%s\n", report.rules,
                  report.examples, report.negatives, report.failures.size(),
                  report.failures.size() == 1 ? "" : "s");
      return report.failures.empty() ? kExitOk : kExitFindings;
    }
    return kExitUsage;
  };
}

}  // namespace scrub
