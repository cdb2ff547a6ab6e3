// The subcommands. Each registers its options on a CLI11 subcommand and runs after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "cli/engine_config.h"

namespace scrub {

// Registers a subcommand; the returned function runs it (after parsing) and gives the exit code.
using CommandRunner = std::function<int()>;

CommandRunner register_filter(CLI::App& app, char** envp);
CommandRunner register_scan(CLI::App& app, char** envp);
CommandRunner register_rules(CLI::App& app);
// The stdio wrap: `mcp-scrub [OPTIONS] -- COMMAND [ARGS...]`; options go on the top-level app.
CommandRunner register_wrap(CLI::App& app, std::vector<std::string>& command, char** envp);

}  // namespace scrub
