// `mcp-scrub config check FILE`. Every command-line option can live in a TOML file given with
// --config (CLI11's own config support: keys are the long option names, `[filter]`, `[scan]` and
// `[tcp]` sections hold the subcommands' options; the command line overrides the file).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

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
    // The runner owns the options the parser writes into and `engine` points at: keep it alive.
    CommandRunner wrap = register_wrap(tmp, command, envp, &engine);
    tmp.set_config("--config");
    tmp.allow_config_extras(CLI::config_extras_mode::error);
    try {
      tmp.parse(std::vector<std::string>{*file, "--config"});
    } catch (const CLI::ParseError& e) {
      spdlog::error("{}: {}", *file, e.what());
      return kExitUsage;
    }
    // Builds everything the file asks for: rules compile, files are read, commands run.
    Reloader reloader(*engine, envp);
    std::string text = tmp.config_to_str(true, false);
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
