// The subcommands. Each registers its options on a CLI11 subcommand and runs after parsing.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/engine_config.h"

namespace scrub {

// Registers a subcommand; the returned function runs it (after parsing) and gives the exit code.
using CommandRunner = std::function<int()>;

// The whole command line (argv as main has it): sets up logging, parses, runs the subcommand or
// the stdio wrap, and gives the process's exit code.
int run_main(int argc, char** argv, char** envp);

// Ends the process once a command's output is written and flushed (stdout, stderr, alert sinks):
// what is left is freeing the compiled rules and their databases, 1-2 ms of a filter's start-up
// sized run, which the kernel does faster at exit. Sanitizer builds return `rc` instead, so
// their leak checks still see everything freed.
int exit_without_teardown(int rc);

CommandRunner register_filter(CLI::App& app, char** envp);
CommandRunner register_scan(CLI::App& app, char** envp);
CommandRunner register_rules(CLI::App& app);
// The stdio wrap: `mcp-scrub [OPTIONS] -- COMMAND [ARGS...]`; options go on the top-level app.
// `engine_out`, when given, receives the engine options it registered (for `config check`).
CommandRunner register_wrap(CLI::App& app, std::vector<std::string>& command, char** envp,
                            EngineConfig** engine_out = nullptr);
// `mcp-scrub config check FILE`: validates a configuration file and prints the effective
// configuration with secret values masked.
CommandRunner register_config(CLI::App& app, char** envp);
// `mcp-scrub tcp --listen ADDR (--connect ADDR | -- COMMAND [ARGS...])`: MCP over sockets.
CommandRunner register_tcp(CLI::App& app, std::vector<std::string>& command, char** envp);

}  // namespace scrub
