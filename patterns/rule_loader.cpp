#include "patterns/rule_loader.h"

#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "filter/char_run.h"

namespace scrub {

namespace {

// Keys gitleaks defines that cannot apply to a byte stream; accepted so a gitleaks.toml loads
// unchanged.
const std::set<std::string> kIgnoredRuleKeys = {"path", "tags", "skipReport"};
const std::set<std::string> kRuleKeys = {
    "id",       "description", "regex",    "secretGroup", "entropy",  "keywords",
    "allowlist", "allowlists", "examples", "negatives",   "mask",     "severity",
    "generic",  "keepPrefix",  "action",   "path",        "tags",     "skipReport",
    "prefilter", "prefilterSearch", "requiredRun"};

class Loader {
 public:
  explicit Loader(std::string_view origin) : origin_(origin) {}

  [[noreturn]] void fail(const std::string& where, const std::string& why) const {
    throw ConfigError(origin_ + ": " + where + ": " + why);
  }

  std::string where_rule(size_t index, const std::string& id) const {
    return id.empty() ? "rule #" + std::to_string(index + 1) : "rule '" + id + "'";
  }

  std::vector<std::string> strings(const toml::node* node, const std::string& where,
                                   const char* key) const {
    std::vector<std::string> out;
    if (!node) return out;
    const toml::array* arr = node->as_array();
    if (!arr) fail(where, std::string("'") + key + "' must be an array of strings");
    for (const auto& el : *arr) {
      auto s = el.value<std::string>();
      if (!s) fail(where, std::string("'") + key + "' must hold only strings");
      out.push_back(*s);
    }
    return out;
  }

  Allowlist allowlist(const toml::table& t, const std::string& where, bool global) const {
    Allowlist a;
    if (auto d = t["description"].value<std::string>()) a.description = *d;
    if (auto c = t["condition"].value<std::string>()) {
      std::string v = *c;
      for (auto& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (v == "AND" || v == "&&") a.condition_and = true;
      else if (v == "OR" || v == "||" || v.empty()) a.condition_and = false;
      else fail(where, "allowlist condition must be \"OR\" or \"AND\", not \"" + *c + "\"");
    }
    if (auto r = t["regexTarget"].value<std::string>()) {
      if (*r == "secret" || r->empty()) a.regex_target = RegexTarget::kSecret;
      else if (*r == "match") a.regex_target = RegexTarget::kMatch;
      else if (*r == "line") a.regex_target = RegexTarget::kLine;
      else fail(where, "allowlist regexTarget must be secret, match or line, not \"" + *r + "\"");
    }
    a.regexes = strings(t.get("regexes"), where, "regexes");
    a.stopwords = strings(t.get("stopwords"), where, "stopwords");
    for (auto& s : a.stopwords)
      for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (global) a.target_rules = strings(t.get("targetRules"), where, "targetRules");
    a.has_paths_or_commits = t.contains("paths") || t.contains("commits");
    return a;
  }

  Rule rule(const toml::table& t, size_t index, RuleSet& set) const {
    Rule r;
    if (auto id = t["id"].value<std::string>()) r.id = *id;
    const std::string where = where_rule(index, r.id);
    r.origin = origin_ + ": " + where;
    if (r.id.empty()) fail(where, "missing 'id'");
    for (char c : r.id) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
            c == ':'))
        fail(where, "id may hold only letters, digits and - _ . :");
    }
    for (const auto& [k, v] : t) {
      if (!kRuleKeys.count(std::string(k.str())))
        set.warnings.push_back(origin_ + ": " + where + ": unknown key '" + std::string(k.str()) +
                               "' ignored");
    }
    if (auto d = t["description"].value<std::string>()) r.description = *d;
    if (auto re = t["regex"].value<std::string>()) r.regex = *re;
    if (r.regex.empty()) {
      if (t.contains("path")) {
        // A gitleaks path-only rule matches file names, which a stream does not have.
        r.regex.clear();
        return r;
      }
      fail(where, "missing 'regex'");
    }
    if (t.contains("prefilter")) {
      auto p = t["prefilter"].value<std::string>();
      if (!p || p->empty()) fail(where, "'prefilter' must be a non-empty string");
      r.prefilter = *p;
    }
    if (t.contains("prefilterSearch")) {
      auto s = t["prefilterSearch"].value<std::string>();
      if (!s || (*s != "up-to-hit" && *s != "whole-unit"))
        fail(where, "'prefilterSearch' must be \"up-to-hit\" or \"whole-unit\"");
      if (r.prefilter.empty()) fail(where, "'prefilterSearch' needs a 'prefilter'");
      r.prefilter_whole_unit = *s == "whole-unit";
    }
    if (t.contains("requiredRun")) {
      auto rr = t["requiredRun"].value<std::string>();
      std::string why;
      if (!rr) fail(where, "'requiredRun' must be a string like '[0-9a-f]{64}'");
      if (!CharRun::parse(*rr, why)) fail(where, "'requiredRun' " + why);
      r.required_run = *rr;
    }
    if (t.contains("secretGroup")) {
      auto g = t["secretGroup"].value<int64_t>();
      if (!g || *g < 0 || *g > 100) fail(where, "'secretGroup' must be an integer 0..100");
      r.secret_group = static_cast<int>(*g);
    }
    if (t.contains("entropy")) {
      auto e = t["entropy"].value<double>();
      if (!e || *e < 0 || *e > 8) fail(where, "'entropy' must be a number 0..8");
      r.entropy = *e;
    }
    r.keywords = strings(t.get("keywords"), where, "keywords");
    for (auto& k : r.keywords)
      for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (const toml::node* al = t.get("allowlist")) {  // gitleaks' older single form
      const toml::table* at = al->as_table();
      if (!at) fail(where, "'allowlist' must be a table");
      r.allowlists.push_back(allowlist(*at, where + " allowlist", false));
    }
    if (const toml::node* als = t.get("allowlists")) {
      const toml::array* arr = als->as_array();
      if (!arr) fail(where, "'allowlists' must be an array of tables");
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::table* at = (*arr)[i].as_table();
        if (!at) fail(where, "'allowlists' must be an array of tables");
        r.allowlists.push_back(allowlist(*at, where + " allowlist #" + std::to_string(i + 1), false));
      }
    }
    if (auto m = t["mask"].value<std::string>()) {
      r.mask = parse_mask_style(*m);
      if (!r.mask) fail(where, "'mask' must be label, fixed, partial or hash");
    }
    if (auto a = t["action"].value<std::string>()) {
      r.action = parse_action(*a);
      if (!r.action) fail(where, "'action' must be mask, block or alert");
    }
    if (auto s = t["severity"].value<std::string>()) {
      auto sev = parse_severity(*s);
      if (!sev) fail(where, "'severity' must be low, medium, high or critical");
      r.severity = *sev;
    }
    if (t.contains("generic")) {
      auto g = t["generic"].value<bool>();
      if (!g) fail(where, "'generic' must be true or false");
      r.generic = *g;
    } else {
      r.generic = r.id.rfind("generic", 0) == 0;
    }
    if (t.contains("keepPrefix")) {
      auto k = t["keepPrefix"].value<int64_t>();
      if (!k || *k < 0 || *k > 32) fail(where, "'keepPrefix' must be an integer 0..32");
      r.keep_prefix = static_cast<int>(*k);
    }
    if (const toml::node* ex = t.get("examples")) {
      const toml::array* arr = ex->as_array();
      if (!arr) fail(where, "'examples' must be an array of {text, secret} tables");
      for (const auto& el : *arr) {
        const toml::table* et = el.as_table();
        auto text = et ? (*et)["text"].value<std::string>() : std::nullopt;
        auto secret = et ? (*et)["secret"].value<std::string>() : std::nullopt;
        if (!text || !secret) fail(where, "each example needs 'text' and 'secret' strings");
        r.examples.push_back({*text, *secret});
      }
    }
    r.negatives = strings(t.get("negatives"), where, "negatives");
    return r;
  }

  RuleSet load(std::string_view text) const {
    toml::table root;
    try {
      root = toml::parse(text, origin_);
    } catch (const toml::parse_error& e) {
      std::ostringstream os;
      os << "line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
         << e.description();
      fail("invalid TOML", os.str());
    }
    RuleSet set;
    if (root.contains("extend"))
      set.warnings.push_back(origin_ +
                             ": [extend] ignored: mcp-scrub's own built-in pack is used instead "
                             "(--no-builtin-rules leaves it out)");
    if (const toml::node* al = root.get("allowlist")) {
      const toml::table* t = al->as_table();
      if (!t) fail("[allowlist]", "must be a table");
      set.global_allowlists.push_back(allowlist(*t, "[allowlist]", true));
    }
    if (const toml::node* als = root.get("allowlists")) {
      const toml::array* arr = als->as_array();
      if (!arr) fail("[[allowlists]]", "must be an array of tables");
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = (*arr)[i].as_table();
        if (!t) fail("[[allowlists]]", "must be an array of tables");
        set.global_allowlists.push_back(
            allowlist(*t, "[[allowlists]] #" + std::to_string(i + 1), true));
      }
    }
    std::set<std::string> ids;
    if (const toml::node* rn = root.get("rules")) {
      const toml::array* arr = rn->as_array();
      if (!arr) fail("[[rules]]", "'rules' must be an array of tables");
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = (*arr)[i].as_table();
        if (!t) fail(where_rule(i, ""), "must be a table");
        Rule r = rule(*t, i, set);
        if (r.regex.empty()) {
          set.warnings.push_back(origin_ + ": rule '" + r.id +
                                 "' matches only file paths and is ignored");
          continue;
        }
        if (!ids.insert(r.id).second) fail(where_rule(i, r.id), "duplicate id");
        set.rules.push_back(std::move(r));
      }
    }
    return set;
  }

 private:
  std::string origin_;
};

}  // namespace

RuleSet load_rules_string(std::string_view toml_text, std::string_view origin) {
  return Loader(origin).load(toml_text);
}

RuleSet load_rules_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot read rule file");
  std::ostringstream os;
  os << in.rdbuf();
  return load_rules_string(os.str(), path.string());
}

void merge_rules(RuleSet& into, RuleSet more) {
  for (auto& r : more.rules) {
    bool replaced = false;
    for (auto& existing : into.rules) {
      if (existing.id == r.id) {
        existing = r;
        replaced = true;
        break;
      }
    }
    if (!replaced) into.rules.push_back(std::move(r));
  }
  for (auto& a : more.global_allowlists) into.global_allowlists.push_back(std::move(a));
  for (auto& w : more.warnings) into.warnings.push_back(std::move(w));
}

}  // namespace scrub
