// `mcp-scrub config check FILE`. Every command-line option can live in a TOML file given with
// --config (CLI11's own config support: keys are the long option names, `[filter]`, `[scan]` and
// `[tcp]` sections hold the subcommands' options; the command line overrides the file).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/reloader.h"
#include "filter/engine_holder.h"

namespace scrub {

CommandRunner register_config(CLI::App& app, char** envp) {
  auto file = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("config", "Check a configuration file");
  sub->require_subcommand(1);
  CLI::App* check = sub->add_subcommand(
      "check", "Validate FILE (options, rules, secret sources) and print the effective "
               "configuration, secret values masked");
  check->add_option("file", *file, "TOML configuration file")->required()->check(CLI::ExistingFile);
  return [file, envp]() -> int {
    CLI::App tmp{"mcp-scrub", "mcp-scrub"};
    std::vector<std::string> command;
    EngineConfig* engine = nullptr;
    // The runners own the options the parser writes into and `engine` points at: keep them
    // alive. The subcommands are there for their sections ([filter], [scan], [tcp]): without
    // them a file with one was refused ("INI was not able to parse tcp.++") though --config
    // reads it; their keys are checked as the commands would read them.
    CommandRunner filter = register_filter(tmp, envp);
    CommandRunner scan = register_scan(tmp, envp);
    CommandRunner wrap = register_wrap(tmp, command, envp, &engine);
    tmp.set_config("--config");
    tmp.allow_config_extras(CLI::config_extras_mode::error);
    CommandRunner tcp = register_tcp(tmp, command, envp);
    try {
      tmp.parse(std::vector<std::string>{*file, "--config"});
    } catch (const CLI::ParseError& e) {
      spdlog::error("{}: {}", *file, e.what());
      return kExitUsage;
    }
    // Builds everything the file asks for: rules compile, files are read, commands run.
    Reloader reloader(*engine, envp);
    std::string all = tmp.config_to_str(true, false);
    // A subcommand's options only where the file sets them: their defaults are the commands'.
    std::set<std::string> unset;
    for (const char* name : {"filter", "scan", "tcp"})
      for (const CLI::Option* o : tmp.get_subcommand(name)->get_options())
        if (o->count() == 0) unset.insert(std::string(name) + "." + o->get_single_name() + "=");
    std::string text;
    std::istringstream lines(all);
    for (std::string line; std::getline(lines, line);) {
      const size_t eq = line.find('=');
      if (eq != std::string::npos && unset.count(line.substr(0, eq + 1))) continue;
      text += line + "\n";
    }
    std::string masked;
    Findings findings;
    Redactor redactor(reloader.holder().get());
    RedactStatus st = redactor.redact_text(text, masked, findings);
    if (st == RedactStatus::kError) return kExitEngine;
    std::cout << (st == RedactStatus::kMasked ? masked : text);
    std::cout << "# valid: " << reloader.last_counts().rules << " rules, " << reloader.known_values()
              << " known secret values\n";
    return kExitOk;
  };
}

}  // namespace scrub
