// Secret values from secret managers, through their own CLIs: `--secrets-cmd 'vault kv get
// -format=json secret/app'`, `aws secretsmanager get-secret-value ...`, `op read ...`,
// `doppler secrets download --format json`, ... No SDK: any manager with a CLI works.
//
// Promises: a command's stdout is parsed as JSON (every string leaf; Vault's `data.data` and
// AWS's `SecretString`, itself JSON, unwrapped), dotenv (KEY=VALUE lines), or plain lines (one
// value each). Values are never logged; the command's stderr is logged without its stdout; a
// failure is reported by the command's name (its first word) and exit status only.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scrub {

// (name, value) pairs; names are JSON paths or dotenv keys or line numbers, safe to print.
std::vector<std::pair<std::string, std::string>> parse_secret_output(std::string_view text);

struct SecretsCommandResult {
  bool ok = false;
  std::vector<std::pair<std::string, std::string>> values;
  std::string error;        // "vault exited with status 2" / "... timed out" (no stdout in it)
  std::string stderr_text;  // what the command wrote to stderr, for the log
};

// Runs `command` with /bin/sh -c, the proxy's environment, no stdin, and a time limit.
SecretsCommandResult run_secrets_command(const std::string& command,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The command's first word (its program name), for messages: never its arguments.
std::string command_name(const std::string& command);

}  // namespace scrub
