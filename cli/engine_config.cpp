#include "cli/engine_config.h"

#include <spdlog/spdlog.h>

#include "filter/db_cache.h"
#include "filter/fingerprint.h"
#include "patterns/rule_loader.h"

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
  if (with_action)
    app.add_option("--action", c.action, "mask (default), block, or alert (monitor only)")
        ->default_val("mask")
        ->check(CLI::IsMember({"mask", "block", "alert"}))
        ->group("Masking");
}

Engine build_engine(const EngineConfig& c, char** environ_vars) {
  RuleSet rules;
  if (!c.no_builtin_rules) rules = builtin_rules();
  for (const auto& f : c.rule_files) merge_rules(rules, load_rules_file(f));
  for (const auto& w : rules.warnings) spdlog::warn("{}", w);

  SecretSourceOptions so = c.secrets;
  so.env_by_name = !c.no_env_secrets;
  SecretSourceResult secrets = collect_known_secrets(so, environ_vars);
  for (const auto& name : secrets.skipped)
    spdlog::warn("known secret {} is shorter than {} bytes and is not masked as a literal", name,
                 so.min_length);

  EngineOptions eo;
  eo.mask = parse_mask_style(c.mask).value_or(MaskStyle::kLabel);
  eo.fixed_text = c.mask_text;
  for (char ch : eo.fixed_text)
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
      throw ConfigError("--mask-text must not contain quotes, backslashes or control characters");
  eo.action = parse_action(c.action).value_or(Action::kMask);
  FingerprintKey key = load_or_create_fingerprint_key(c.fingerprint_key_file);
  if (!key.warning.empty()) spdlog::warn("{}", key.warning);
  eo.fingerprint_key = key.key;
  eo.base64_variants = !c.no_base64_variants;
  if (!c.no_cache && !std::getenv("MCP_SCRUB_NO_CACHE")) eo.cache_dir = DbCache::default_dir().string();
  Engine e;
  e.set = CompiledSet::compile(rules, secrets.secrets, eo);
  e.known_values = secrets.secrets.size();
  for (const auto& id : e.set->prefilter_rules())
    spdlog::info("rule '{}' runs as a Hyperscan prefilter confirmed by RE2", id);
  return e;
}

}  // namespace scrub
