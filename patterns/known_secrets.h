// Known secret values: literals to mask wherever they appear, from the environment, env files
// and secret files.
//
// Promises: values are never logged. Each KnownSecret carries a `name` that says where it came
// from (`env:DATABASE_URL`, `file:secrets.txt:3`) and is safe to print.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scrub {

struct KnownSecret {
  std::string name;   // safe to print: the source, never the value
  std::string value;
};

struct SecretSourceOptions {
  bool env_by_name = true;                    // env vars whose names look secret
  std::string env_name_pattern;               // RE2, case-insensitive; empty = the default
  std::vector<std::string> secret_env;        // --secret-env NAME: always taken
  std::vector<std::filesystem::path> env_files;      // --env-file (dotenv)
  std::vector<std::filesystem::path> secrets_files;  // --secrets-file (one value a line)
  size_t min_length = 8;
};

struct SecretSourceResult {
  std::vector<KnownSecret> secrets;
  std::vector<std::string> skipped;  // names of values shorter than min_length (never values)
};

// The default pattern for secret-looking variable names.
std::string_view default_env_name_pattern();

// Parses dotenv text as Node's --env-file does: KEY=VALUE, optional `export `, single, double
// and backtick quotes (double quotes expand \n), multi-line quoted values, # comments.
std::vector<std::pair<std::string, std::string>> parse_dotenv(std::string_view text);

// Collects the secrets. `environ_vars` is a NAME=VALUE list (usually ::environ). Throws
// ConfigError for an unreadable file (naming the file, never its contents).
SecretSourceResult collect_known_secrets(const SecretSourceOptions& options,
                                         char** environ_vars);

}  // namespace scrub
