#include "patterns/known_secrets.h"

#include <re2/re2.h>

#include <fstream>
#include <set>
#include <sstream>

#include "filter/rule.h"

namespace scrub {

std::string_view default_env_name_pattern() {
  return "(?i)(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PWD|CREDENTIAL|AUTH|PRIVATE|DSN|DATABASE_URL|"
         "CONNECTION_STRING)";
}

namespace {

// Names that match the pattern but never hold a secret: the shell's working directories, agent
// sockets, and variables that name a file rather than hold a value.
bool never_secret_name(std::string_view name) {
  static const std::set<std::string_view> kNames = {
      "PWD", "OLDPWD", "SSH_AUTH_SOCK", "XAUTHORITY", "KEYTIMEOUT", "GPG_AGENT_INFO",
      "GNUPGHOME", "AUTHOR", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE"};
  if (kNames.count(name)) return true;
  for (std::string_view suffix : {"_PATH", "_FILE", "_DIR", "_SOCK", "_SOCKET"}) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
      return true;
  }
  return false;
}

std::string read_file(const std::filesystem::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot read " + what);
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) throw ConfigError(path.string() + ": error reading " + what);
  return os.str();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_dotenv(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  const size_t n = text.size();
  while (pos < n) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = n;
    std::string_view line = trim(text.substr(pos, eol - pos));
    size_t next = eol + 1;
    if (line.empty() || line.front() == '#') {
      pos = next;
      continue;
    }
    if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      pos = next;
      continue;
    }
    std::string key(trim(line.substr(0, eq)));
    // The value starts right after '=' in the original text (quoted values may span lines).
    size_t vstart = pos + static_cast<size_t>(line.data() - (text.data() + pos)) + eq + 1;
    while (vstart < n && (text[vstart] == ' ' || text[vstart] == '\t')) ++vstart;
    std::string value;
    char q = vstart < n ? text[vstart] : '\0';
    if (q == '"' || q == '\'' || q == '`') {
      size_t close = text.find(q, vstart + 1);
      // Node takes a quoted value up to its closing quote, across lines; without one, the value
      // is the rest of the line as written.
      if (close != std::string_view::npos) {
        std::string_view raw = text.substr(vstart + 1, close - vstart - 1);
        if (q == '"') {
          for (size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == 'n') {
              value.push_back('\n');
              ++i;
            } else {
              value.push_back(raw[i]);
            }
          }
        } else {
          value.assign(raw);
        }
        size_t after = text.find('\n', close);
        next = after == std::string_view::npos ? n : after + 1;
      } else {
        value.assign(trim(text.substr(vstart, eol - vstart)));
      }
    } else {
      std::string_view raw = text.substr(vstart, eol - vstart);
      size_t hash = raw.find(" #");
      if (hash != std::string_view::npos) raw = raw.substr(0, hash);
      if (!raw.empty() && raw.front() == '#') raw = {};
      value.assign(trim(raw));
    }
    if (!key.empty()) out.emplace_back(std::move(key), std::move(value));
    pos = next;
  }
  return out;
}

SecretSourceResult collect_known_secrets(const SecretSourceOptions& options,
                                         char** environ_vars) {
  SecretSourceResult result;
  std::set<std::string> seen_values;
  auto add = [&](std::string name, std::string value) {
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    if (value.empty()) return;
    if (value.size() < options.min_length) {
      result.skipped.push_back(std::move(name));
      return;
    }
    if (!seen_values.insert(value).second) return;
    result.secrets.push_back({std::move(name), std::move(value)});
  };

  std::string pattern_text(options.env_name_pattern.empty() ? default_env_name_pattern()
                                                             : options.env_name_pattern);
  RE2 pattern(pattern_text, RE2::Quiet);
  if (!pattern.ok())
    throw ConfigError("--env-secret-pattern: invalid regex: " + pattern.error());
  std::set<std::string> explicit_names(options.secret_env.begin(), options.secret_env.end());
  std::set<std::string> found_explicit;

  for (char** e = environ_vars; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(kv.substr(0, eq));
    bool wanted = explicit_names.count(name) > 0;
    if (wanted) found_explicit.insert(name);
    if (!wanted && options.env_by_name && !never_secret_name(name) &&
        RE2::PartialMatch(name, pattern))
      wanted = true;
    if (wanted) add("env:" + name, std::string(kv.substr(eq + 1)));
  }
  for (const auto& path : options.env_files) {
    for (auto& [k, v] : parse_dotenv(read_file(path, "env file")))
      add("env-file:" + path.filename().string() + ":" + k, std::move(v));
  }
  for (const auto& path : options.secrets_files) {
    std::string text = read_file(path, "secrets file");
    size_t pos = 0, line = 0;
    while (pos <= text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      ++line;
      add("secrets-file:" + path.filename().string() + ":" + std::to_string(line),
          text.substr(pos, eol - pos));
      pos = eol + 1;
    }
  }
  return result;
}

}  // namespace scrub
