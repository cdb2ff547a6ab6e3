// mcp-scrub: entry point. Parses the command line and dispatches to a subcommand; the default,
// with `-- COMMAND [ARGS...]`, wraps a stdio MCP server.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <cstring>

#include "cli/commands.h"

extern char** environ;

int main(int argc, char** argv) {
  // Messages of megabytes pass through buffers of their size on three threads. glibc raises its
  // mmap threshold after each large free (up to 32 MiB), after which such buffers come from the
  // threads' heap arenas and stay there: peak RSS for 4 MiB results with secrets was 158 MiB,
  // 86 MiB with the threshold fixed (bench/run_memory.sh). Fixed at 128 KiB, though, every buffer
  // of a 1 MB result was a fresh mapping: page faults to fill it, and a TLB shoot-down across
  // threads to unmap it, 0.7 ms of each such message's 3.7 ms scan. Buffers up to 2 MiB now come
  // from the heap and are reused warm; larger ones are still mapped and unmapped.
  mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
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

  scrub::CommandRunner filter = scrub::register_filter(app, environ);
  scrub::CommandRunner scan = scrub::register_scan(app, environ);
  scrub::CommandRunner rules = scrub::register_rules(app);
  scrub::CommandRunner wrap = scrub::register_wrap(app, command, environ);
  scrub::CommandRunner config = scrub::register_config(app, environ);
  app.set_config("--config", "", "Read options from a TOML file (the command line overrides it)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  scrub::CommandRunner tcp = scrub::register_tcp(app, command, environ);

  std::vector<std::string> args;
  for (int i = split - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : scrub::kExitUsage;
  }
  if (verbose) logger->set_level(spdlog::level::info);
  try {
    for (CLI::App* sub : app.get_subcommands()) {
      const std::string& name = sub->get_name();
      if (!command.empty() && name != "tcp") {
        spdlog::error("'{}' does not take a command after --", name);
        return scrub::kExitUsage;
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
      return scrub::kExitUsage;
    }
    return wrap();
  } catch (const scrub::ConfigError& e) {
    spdlog::error("{}", e.what());
    return scrub::kExitUsage;
  }
}
