// The command line: parses it and dispatches to a subcommand; the default, with
// `-- COMMAND [ARGS...]`, wraps a stdio MCP server. A library function (main.cpp only calls it),
// so the CLI11 code is compiled once, with the subcommands.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/commands.h"
#include "filter/sanitized.h"

namespace scrub {

int exit_without_teardown(int rc) {
#ifdef SCRUB_SANITIZED
  return rc;
#else
  spdlog::default_logger()->flush();
  std::cout.flush();
  std::fflush(nullptr);
  std::_Exit(rc);
#endif
}

int run_main(int argc, char** argv, char** envp) {
  auto logger = std::make_shared<spdlog::logger>("mcp-scrub",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("mcp-scrub: %^%l%$: %v");
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);

  // Everything after the first `--` is the wrapped command, untouched by option parsing.
  std::vector<std::string> command;
  int split = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  }
  for (int i = split + 1; i < argc; ++i) command.emplace_back(argv[i]);

  CLI::App app{
      "mcp-scrub: masks secrets in what MCP servers and logs say.\n"
      "  mcp-scrub [OPTIONS] -- COMMAND [ARGS...]   wrap a stdio MCP server\n"
      "  mcp-scrub filter [FILE...]                 mask a log stream (stdin to stdout)\n"
      "  mcp-scrub scan [FILE...]                   report findings only\n"
      "  mcp-scrub rules list|check FILE            inspect rule packs\n"
      "  mcp-scrub config check FILE                validate a --config file\n"
      "  mcp-scrub tcp --listen ADDR (--connect ADDR | -- COMMAND)   serve MCP over a socket",
      "mcp-scrub"};
  app.set_version_flag("--version", "mcp-scrub 0.1.0");
  app.require_subcommand(0, 1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log more (info level)");

  CommandRunner filter = register_filter(app, envp);
  CommandRunner scan = register_scan(app, envp);
  CommandRunner rules = register_rules(app);
  CommandRunner wrap = register_wrap(app, command, envp);
  CommandRunner config = register_config(app, envp);
  app.set_config("--config", "", "Read options from a TOML file (the command line overrides it)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  CommandRunner tcp = register_tcp(app, command, envp);

  std::vector<std::string> args;
  for (int i = split - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (verbose) logger->set_level(spdlog::level::info);
  try {
    for (CLI::App* sub : app.get_subcommands()) {
      const std::string& name = sub->get_name();
      if (!command.empty() && name != "tcp") {
        spdlog::error("'{}' does not take a command after --", name);
        return kExitUsage;
      }
      if (name == "filter") return filter();
      if (name == "scan") return scan();
      if (name == "rules") return rules();
      if (name == "config") return config();
      if (name == "tcp") return tcp();
    }
    if (command.empty()) {
      std::fputs(app.help().c_str(), stderr);
      spdlog::error("nothing to do: give a subcommand, or -- COMMAND to wrap a server");
      return kExitUsage;
    }
    return wrap();
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitUsage;
  }
}

}  // namespace scrub
