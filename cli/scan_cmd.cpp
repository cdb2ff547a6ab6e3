// `mcp-scrub scan [FILE...]`: reports findings without writing the stream. Exit 1 when anything
// was found, 0 when clean, 2 on a usage or configuration error, 3 when an input was unreadable,
// 4 when the engine failed.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/stream.h"
#include "patterns/rule_loader.h"

namespace scrub {

namespace {

struct ScanOptions {
  std::vector<std::string> files;
  std::string format = "table";
  std::string input = "text";
  size_t max_line_bytes = 16u << 20;
  EngineConfig engine;
};

struct Hit {
  Finding finding;
  AlertContext ctx;
};

std::string sarif_level(Severity s) {
  switch (s) {
    case Severity::kLow: return "note";
    case Severity::kMedium: return "warning";
    default: return "error";
  }
}

}  // namespace

CommandRunner register_scan(CLI::App& app, char** envp) {
  auto opt = std::make_shared<ScanOptions>();
  CLI::App* sub = app.add_subcommand("scan", "Report secrets in files or stdin without writing them");
  sub->add_option("files", opt->files, "Input files (default: stdin)");
  sub->add_option("--format", opt->format, "Report format: table, json or sarif")
      ->check(CLI::IsMember({"table", "json", "sarif"}));
  sub->add_option("--input", opt->input, "Input: text, or json (each line JSON; paths reported)")
      ->check(CLI::IsMember({"text", "json"}));
  sub->add_option("--max-line-bytes", opt->max_line_bytes, "Longer lines are scanned in pieces")
      ->check(CLI::Range(size_t{64}, size_t{1} << 31));
  add_engine_options(*sub, opt->engine, false);
  return [opt, envp]() -> int {
    Engine engine = build_engine(opt->engine, envp);
    EngineHolder holder(engine.set);
    FollowingRedactor redactor(holder);
    std::vector<Hit> hits;
    StreamCallbacks cb;
    cb.finding = [&](const Finding& f, const AlertContext& c) { hits.push_back({f, c}); };
    StreamMode mode = opt->input == "json" ? StreamMode::kJson : StreamMode::kText;
    StreamStats stats;
    int rc = process_inputs(opt->files, mode, opt->max_line_bytes, redactor, cb, stats);
    if (rc == kExitEngine) return rc;

    if (opt->format == "json") {
      nlohmann::ordered_json arr = nlohmann::ordered_json::array();
      for (const Hit& h : hits) {
        auto j = alert_json(h.finding, h.ctx);
        j.erase("time");
        j.erase("event");
        arr.push_back(std::move(j));
      }
      std::cout << arr.dump(2) << "\n";
    } else if (opt->format == "sarif") {
      std::map<std::string, std::string> descriptions;
      RuleSet rules;
      if (!opt->engine.no_builtin_rules) rules = builtin_rules();
      for (const auto& f : opt->engine.rule_files) merge_rules(rules, load_rules_file(f));
      for (const auto& r : rules.rules) descriptions[r.id] = r.description;
      // A rule whose id holds a known value is reported as rule-N, N its place in the set (the
      // compiled set keeps the rules' order); its description is that rule's.
      for (size_t i = 0; i < rules.rules.size(); ++i)
        descriptions.try_emplace("rule-" + std::to_string(i + 1), rules.rules[i].description);
      descriptions["known-secret"] = "A known secret value (environment, env file or secrets file)";
      nlohmann::ordered_json rules_json = nlohmann::ordered_json::array();
      std::map<std::string, int> rule_index;
      for (const Hit& h : hits) {
        if (rule_index.count(h.finding.rule_id)) continue;
        rule_index[h.finding.rule_id] = static_cast<int>(rules_json.size());
        rules_json.push_back(
            {{"id", h.finding.rule_id},
             // The rule file's text: scanned like any input before it is printed.
             {"shortDescription",
              {{"text", redactor.current().printable_text(descriptions[h.finding.rule_id])}}}});
      }
      nlohmann::ordered_json results = nlohmann::ordered_json::array();
      for (const Hit& h : hits) {
        const Finding& f = h.finding;
        std::string msg = f.rule_id + " found" + (f.secret_name.empty() ? "" : " (" + f.secret_name + ")");
        nlohmann::ordered_json region = {{"startLine", h.ctx.line},
                                         {"startColumn", f.offset + 1},
                                         {"endColumn", f.offset + f.length + 1}};
        nlohmann::ordered_json r = {
            {"ruleId", f.rule_id},
            {"ruleIndex", rule_index[f.rule_id]},
            {"level", sarif_level(f.severity)},
            {"message", {{"text", msg}}},
            {"locations",
             {{{"physicalLocation",
                {{"artifactLocation", {{"uri", h.ctx.source}}}, {"region", region}}}}}},
            {"partialFingerprints", {{"mcpScrubHmac/v1", f.fingerprint}}}};
        results.push_back(std::move(r));
      }
      nlohmann::ordered_json sarif = {
          {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
          {"version", "2.1.0"},
          {"runs",
           {{{"tool",
              {{"driver",
                {{"name", "mcp-scrub"},
                 {"version", "0.1.0"},
                 {"informationUri", "https://github.com/mcp-scrub/mcp-scrub"},
                 {"rules", rules_json}}}}},
             {"results", results}}}}};
      std::cout << sarif.dump(2) << "\n";
    } else {
      if (!hits.empty()) std::printf("%-32s %-28s %-9s %-14s %s\n", "LOCATION", "RULE", "SEVERITY",
                                     "FINGERPRINT", "PATH");
      for (const Hit& h : hits) {
        std::string loc = h.ctx.source + ":" + std::to_string(h.ctx.line) + ":" +
                          std::to_string(h.finding.offset + 1);
        std::string rule = h.finding.rule_id;
        if (!h.finding.secret_name.empty()) rule += " (" + h.finding.secret_name + ")";
        std::printf("%-32s %-28s %-9s %-14s %s\n", loc.c_str(), rule.c_str(),
                    to_string(h.finding.severity), h.finding.fingerprint.c_str(),
                    h.finding.json_path.c_str());
      }
      std::printf("%zu finding%s\n", hits.size(), hits.size() == 1 ? "" : "s");
    }
    std::fflush(stdout);
    if (rc != kExitOk) return rc;
    return exit_without_teardown(hits.empty() ? kExitOk : kExitFindings);
  };
}

}  // namespace scrub
