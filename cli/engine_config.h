// Options shared by every command that scans (filter, scan, the stdio wrap, tcp), and the code
// that turns them into a compiled engine. Control plane: errors are ConfigError, printed by main.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "filter/compiled_set.h"
#include "patterns/known_secrets.h"

namespace CLI {
class App;  // <CLI/CLI.hpp> only where options are registered: CLI11 costs 15 s a file to compile
}

namespace scrub {

struct EngineConfig {
  std::vector<std::string> rule_files;
  bool no_builtin_rules = false;
  SecretSourceOptions secrets;
  bool no_env_secrets = false;
  std::string mask = "label";
  std::string mask_text = "[REDACTED]";
  std::string action = "mask";
  std::string fingerprint_key_file;
  bool no_base64_variants = false;
  bool no_cache = false;
  // Live sources and rotation (cli/reloader.h).
  std::vector<std::string> secrets_cmds;
  std::string secrets_refresh;         // duration; empty = no periodic refresh
  std::string rotation_grace = "24h";  // how long a vanished value stays masked
  std::string max_secret_age;          // duration; empty = no limit
};

void add_engine_options(CLI::App& app, EngineConfig& config, bool with_action);

struct Engine {
  std::shared_ptr<const CompiledSet> set;
  size_t known_values = 0;
};

// Loads rules and known secrets and compiles them. Logs (to stderr, via spdlog) the warnings of
// the rule loader and, by name only, secret values skipped for being short. Throws ConfigError.
Engine build_engine(const EngineConfig& config, char** environ_vars);

// The compiled-database cache directory (DbCache::default_dir), or "" when `no_cache` (the
// --no-cache flag) or MCP_SCRUB_NO_CACHE is set.
std::string cache_dir_unless(bool no_cache);

// The pieces of build_engine, for the reloader. The known values are collected first: the rule
// loader's errors and warnings, and the compile's errors, quote what a rule file holds (ids,
// regexes), and go out with every form of `known` masked (mask_known_values).
RuleSet load_configured_rules(const EngineConfig& config, const std::vector<KnownSecret>& known,
                              bool log_warnings);
struct CollectedSecrets {
  std::vector<KnownSecret> secrets;
  std::vector<std::string> errors;  // failed commands, by name and status; never a value
};
// Environment, env files, secrets files and --secrets-cmd commands. File errors throw
// ConfigError; command failures are returned in `errors`.
CollectedSecrets collect_configured_secrets(const EngineConfig& config, char** environ_vars,
                                            bool log_skipped);
std::shared_ptr<const CompiledSet> compile_configured(const EngineConfig& config,
                                                      const RuleSet& rules,
                                                      const std::vector<KnownSecret>& secrets);

// Exit codes shared by the commands (documented in the README).
constexpr int kExitOk = 0;
constexpr int kExitFindings = 1;   // scan found something
constexpr int kExitUsage = 2;      // bad options, rule file or configuration
constexpr int kExitIo = 3;         // an input could not be read or output could not be written
constexpr int kExitEngine = 4;     // the engine failed; nothing unscanned was written

}  // namespace scrub
