#include "cli/engine_config.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "filter/db_cache.h"
#include "filter/fingerprint.h"
#include "filter/literal_variants.h"
#include "patterns/rule_loader.h"
#include "patterns/secret_sources.h"

#include <map>
#include <mutex>

namespace scrub {

void add_engine_options(CLI::App& app, EngineConfig& c, bool with_action) {
  app.add_option("--rules", c.rule_files, "Add a rule file (gitleaks-compatible TOML); repeatable")
      ->check(CLI::ExistingFile)
      ->group("Rules");
  app.add_flag("--no-builtin-rules", c.no_builtin_rules, "Leave the built-in rule pack out")
      ->group("Rules");
  app.add_option("--secret-env", c.secrets.secret_env,
                 "Mask the value of this environment variable wherever it appears; repeatable")
      ->group("Known secrets");
  app.add_option("--env-file", c.secrets.env_files, "Mask every value of this dotenv file; repeatable")
      ->group("Known secrets");
  app.add_option("--secrets-file", c.secrets.secrets_files,
                 "Mask every line of this file as a secret value; repeatable")
      ->group("Known secrets");
  app.add_flag("--no-env-secrets", c.no_env_secrets,
               "Do not take secret-looking environment variables as known secrets")
      ->group("Known secrets");
  app.add_option("--env-secret-pattern", c.secrets.env_name_pattern,
                 "RE2 regex for secret-looking variable names (default: KEY|SECRET|TOKEN|PASSWORD|...)")
      ->group("Known secrets");
  app.add_option("--min-secret-length", c.secrets.min_length,
                 "Shorter known values are skipped (and named)")
      ->default_val(8)
      ->check(CLI::Range(1, 4096))
      ->group("Known secrets");
  app.add_option("--mask", c.mask, "Mask style: label, fixed, partial or hash")
      ->default_val("label")
      ->check(CLI::IsMember({"label", "fixed", "partial", "hash"}))
      ->group("Masking");
  app.add_option("--mask-text", c.mask_text, "The text of the fixed mask style")
      ->default_val("[REDACTED]")
      ->group("Masking");
  app.add_option("--fingerprint-key", c.fingerprint_key_file,
                 "File holding the HMAC key for fingerprints (default: generated once under "
                 "~/.config/mcp-scrub)")
      ->group("Masking");
  app.add_flag("--no-base64-variants", c.no_base64_variants,
               "Do not look for known values in base64 form")
      ->group("Known secrets");
  app.add_flag("--no-cache", c.no_cache,
               "Do not use the compiled-database cache (~/.cache/mcp-scrub, encrypted)")
      ->group("Rules");
  app.add_option("--secrets-cmd", c.secrets_cmds,
                 "Run this command (sh -c) and mask every value it prints: plain lines, dotenv, or "
                 "JSON (Vault data.data and AWS SecretString unwrapped); repeatable")
      ->group("Known secrets");
  app.add_option("--secrets-refresh", c.secrets_refresh,
                 "Re-run the commands and re-read every file source this often (e.g. 15m); "
                 "SIGHUP does it at once")
      ->group("Known secrets");
  app.add_option("--rotation-grace", c.rotation_grace,
                 "Keep masking a value this long after it disappears from the sources")
      ->default_val("24h")
      ->group("Known secrets");
  app.add_option("--max-secret-age", c.max_secret_age,
                 "Fail closed when the last successful refresh is older than this")
      ->group("Known secrets");
  if (with_action)
    app.add_option("--action", c.action, "mask (default), block, or alert (monitor only)")
        ->default_val("mask")
        ->check(CLI::IsMember({"mask", "block", "alert"}))
        ->group("Masking");
}

RuleSet load_configured_rules(const EngineConfig& c, const std::vector<KnownSecret>& known,
                              bool log_warnings) {
  const KnownValueMasker mask(known);
  RuleSet rules;
  try {
    if (!c.no_builtin_rules) rules = builtin_rules();
    for (const auto& f : c.rule_files) merge_rules(rules, load_rules_file(f));
  } catch (const ConfigError& e) {
    throw ConfigError(mask(e.what()));
  }
  if (log_warnings)
    for (const auto& w : rules.warnings) spdlog::warn("{}", mask(w));
  return rules;
}

CollectedSecrets collect_configured_secrets(const EngineConfig& c, char** environ_vars,
                                            bool log_skipped) {
  SecretSourceOptions so = c.secrets;
  so.env_by_name = !c.no_env_secrets;
  SecretSourceResult found = collect_known_secrets(so, environ_vars);
  if (log_skipped)
    for (const auto& name : found.skipped)
      spdlog::warn("known secret {} is shorter than {} bytes and is not masked as a literal", name,
                   so.min_length);
  CollectedSecrets out;
  out.secrets = std::move(found.secrets);
  for (size_t i = 0; i < c.secrets_cmds.size(); ++i) {
    SecretsCommandResult r = run_secrets_command(c.secrets_cmds[i]);
    const std::string name = "cmd" + std::to_string(i + 1) + ":" + command_name(c.secrets_cmds[i]);
    if (!r.stderr_text.empty())
      spdlog::info("--secrets-cmd {} wrote {} bytes to stderr", name, r.stderr_text.size());
    if (!r.ok) {
      out.errors.push_back(r.error);
      continue;
    }
    for (auto& [key, value] : r.values) {
      if (value.size() < so.min_length) continue;
      out.secrets.push_back({name + ":" + key, std::move(value)});
    }
  }
  return out;
}

std::string cache_dir_unless(bool no_cache) {
  if (no_cache || std::getenv("MCP_SCRUB_NO_CACHE")) return {};
  return DbCache::default_dir().string();
}

std::shared_ptr<const CompiledSet> compile_configured(const EngineConfig& c, const RuleSet& rules,
                                                      const std::vector<KnownSecret>& secrets) {
  EngineOptions eo;
  eo.mask = parse_mask_style(c.mask).value_or(MaskStyle::kLabel);
  eo.fixed_text = c.mask_text;
  for (char ch : eo.fixed_text)
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
      throw ConfigError("--mask-text must not contain quotes, backslashes or control characters");
  eo.action = parse_action(c.action).value_or(Action::kMask);
  static std::mutex key_mu;
  static std::map<std::string, FingerprintKey> keys;  // one read (and warning) per key file
  {
    std::lock_guard<std::mutex> l(key_mu);
    auto it = keys.find(c.fingerprint_key_file);
    if (it == keys.end()) {
      FingerprintKey key = load_or_create_fingerprint_key(c.fingerprint_key_file);
      if (!key.warning.empty()) spdlog::warn("{}", key.warning);
      it = keys.emplace(c.fingerprint_key_file, std::move(key)).first;
    }
    eo.fingerprint_key = it->second.key;
  }
  eo.base64_variants = !c.no_base64_variants;
  eo.cache_dir = cache_dir_unless(c.no_cache);
  const KnownValueMasker mask(secrets);
  std::shared_ptr<const CompiledSet> set;
  try {
    set = CompiledSet::compile(rules, secrets, eo);
  } catch (const ConfigError& e) {
    throw ConfigError(mask(e.what()));  // it names the rule, may quote its regex
  }
  if (spdlog::should_log(spdlog::level::info))
    for (const auto& id : set->prefilter_rules())
      spdlog::info("rule '{}' runs as a Hyperscan prefilter confirmed by RE2", mask(id));
  return set;
}

Engine build_engine(const EngineConfig& c, char** environ_vars) {
  CollectedSecrets secrets = collect_configured_secrets(c, environ_vars, true);
  RuleSet rules = load_configured_rules(c, secrets.secrets, true);
  if (!secrets.errors.empty()) {
    std::string all;
    for (const auto& e : secrets.errors) all += (all.empty() ? "" : "; ") + e;
    throw ConfigError("--secrets-cmd failed: " + all);
  }
  Engine e;
  e.set = compile_configured(c, rules, secrets.secrets);
  e.known_values = secrets.secrets.size();
  return e;
}

}  // namespace scrub
