#include "filter/compiled_set.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include <spdlog/spdlog.h>

#include "filter/char_run.h"
#include "filter/compiled_set_impl.h"
#include "filter/db_cache.h"
#include "filter/fingerprint.h"
#include "filter/literal_variants.h"
#include "filter/rule_match.h"

namespace scrub {

double shannon_entropy(std::string_view s) {
  if (s.empty()) return 0.0;
  size_t counts[256] = {};
  for (unsigned char c : s) ++counts[c];
  double h = 0.0;
  const double n = static_cast<double>(s.size());
  for (size_t c : counts) {
    if (!c) continue;
    double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

namespace {

std::string escape_literal_for_hs(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Whether a rule's regex reads something before its secret: it does not begin (after \b, ^ and
// inline flags) with a capturing group.
bool reads_before_secret(std::string_view re) {
  for (bool again = true; again;) {
    again = false;
    for (std::string_view lead : {std::string_view("\\b"), std::string_view("^")})
      if (re.substr(0, lead.size()) == lead) {
        re.remove_prefix(lead.size());
        again = true;
      }
    if (re.size() > 3 && re.substr(0, 2) == "(?") {  // (?i) and the like, not (?: or (?i:
      size_t i = 2;
      while (i < re.size() && std::isalpha(static_cast<unsigned char>(re[i]))) ++i;
      if (i > 2 && i < re.size() && re[i] == ')') {
        re.remove_prefix(i + 1);
        again = true;
      }
    }
  }
  return !(re.size() > 1 && re[0] == '(' && re[1] != '?');
}

// Allowlist regexes by their text, each built once per set and only when first needed. `first_use`
// names each distinct regex's first user, in load order, for the error when one is invalid.
struct RegexPool {
  std::map<std::string, std::shared_ptr<const LazyRegex>, std::less<>> by_text;
  std::vector<std::pair<const LazyRegex*, std::string>> first_use;

  // Builds every regex, in load order: the first invalid one is reported as loading it was.
  void validate() const {
    for (const auto& [re, where] : first_use)
      if (!re->get().ok())
        throw ConfigError(where + ": allowlist regex is invalid: " + re->get().error());
  }
};

CompiledAllowlist compile_allowlist(const Allowlist& a, const std::string& where, RegexPool& pool) {
  CompiledAllowlist c;
  c.condition_and = a.condition_and;
  c.target = a.regex_target;
  c.stopwords = a.stopwords;
  c.target_rules = a.target_rules;
  c.has_paths_or_commits = a.has_paths_or_commits;
  for (const auto& r : a.regexes) {
    auto& re = pool.by_text[r];
    if (!re) {
      re = std::make_shared<const LazyRegex>(r);
      pool.first_use.emplace_back(re.get(), where);
    }
    c.regexes.push_back(re);
  }
  return c;
}

// How messages name a rule: its file and id when it came from a file.
std::string where_of(const Rule& rule) {
  return rule.origin.empty() ? "rule '" + rule.id + "'" : rule.origin;
}

struct HsInfo {
  bool ok = false;
  unsigned min_width = 0, max_width = UINT_MAX;
  std::string error;
};

HsInfo expression_info(const std::string& expr, unsigned flags) {
  HsInfo out;
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_expression_info(expr.c_str(), flags, &info, &err) == HS_SUCCESS) {
    out.ok = true;
    out.min_width = info->min_width;
    out.max_width = info->max_width;
    std::free(info);
  } else {
    out.error = err && err->message ? err->message : "unknown error";
    hs_free_compile_error(err);
  }
  return out;
}

}  // namespace

CompiledSet::CompiledSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompiledSet::~CompiledSet() = default;
const hs_database* CompiledSet::database() const { return impl_->db.get(); }
const hs_database* CompiledSet::gated_database() const { return impl_->gated_db.get(); }
bool CompiledSet::gate_open(std::string_view unit) const { return impl_->gate_open(unit); }

void CompiledSet::Impl::gated_windows(std::string_view unit,
                                      std::vector<std::pair<size_t, size_t>>& out) const {
  out.clear();
  if (!gated_db) return;
  const size_t n = unit.size();
  if (gated_whole) {
    if (gate_open(unit)) out.emplace_back(0, n);
    return;
  }
  for (const CharRun& g : gates)
    for (auto run = g.next_run(unit, 0); run; run = g.next_run(unit, run->second))
      out.emplace_back(run->first - std::min<size_t>(run->first, gated_reach),
                       std::min(n, run->second + gated_reach));
  if (gates.size() > 1) std::sort(out.begin(), out.end());
  size_t kept = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (kept > 0 && out[i].first <= out[kept - 1].second)
      out[kept - 1].second = std::max(out[kept - 1].second, out[i].second);
    else
      out[kept++] = out[i];
  }
  out.resize(kept);
}

namespace {

struct Shifted {
  match_event_handler on;
  void* ctx;
  unsigned long long base;
};

int on_shifted(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
               void* p) {
  const auto* s = static_cast<const Shifted*>(p);
  return s->on(id, from + s->base, to + s->base, flags, s->ctx);
}

hs_error_t scan_windows(const hs_database_t* db, std::string_view unit,
                        const std::vector<std::pair<size_t, size_t>>& windows,
                        hs_scratch_t* scratch, match_event_handler on, void* ctx) {
  for (const auto& [b, e] : windows) {
    Shifted sh{on, ctx, b};
    hs_error_t rc = hs_scan(db, unit.data() + b, static_cast<unsigned>(e - b), 0, scratch,
                            b == 0 ? on : on_shifted, b == 0 ? ctx : &sh);
    if (rc != HS_SUCCESS) return rc;
  }
  return HS_SUCCESS;
}

}  // namespace

hs_error_t CompiledSet::Impl::scan_gated(std::string_view unit, hs_scratch_t* scratch,
                                         match_event_handler on, void* ctx) const {
  std::vector<std::pair<size_t, size_t>> windows;
  gated_windows(unit, windows);
  return scan_windows(gated_db.get(), unit, windows, scratch, on, ctx);
}

hs_error_t CompiledSet::Impl::scan(std::string_view unit, hs_scratch_t* scratch,
                                   match_event_handler on, void* ctx) const {
  std::vector<std::pair<size_t, size_t>> windows;
  gated_windows(unit, windows);
  hs_error_t rc = hs_scan(db.get(), unit.data(), static_cast<unsigned>(unit.size()), 0, scratch,
                          on, ctx);
  if (rc == HS_SUCCESS) rc = scan_windows(gated_db.get(), unit, windows, scratch, on, ctx);
  return rc;
}
int CompiledSet::scan(std::string_view unit, hs_scratch* scratch, MatchHandler on, void* ctx) const {
  return impl_->scan(unit, scratch, on, ctx);
}
hs_scratch* CompiledSet::new_scratch() const {
  hs_scratch_t* s = nullptr;
  if (!impl_->proto_scratch || hs_clone_scratch(impl_->proto_scratch.get(), &s) != HS_SUCCESS)
    return nullptr;
  return s;
}
const EngineOptions& CompiledSet::options() const { return impl_->options; }
size_t CompiledSet::rule_count() const { return impl_->rules.size(); }
size_t CompiledSet::literal_count() const { return impl_->known_values; }
size_t CompiledSet::pattern_count() const { return impl_->patterns.size(); }
std::vector<std::string> CompiledSet::prefilter_rules() const {
  std::vector<std::string> out;
  for (const auto& r : impl_->rules)
    if (r.prefilter) out.push_back(r.rule.id);
  return out;
}

// The rule, its locator and its capped form share RE2's defaults, errors not logged (RE2::Quiet):
// the capped form and the locator must read the regex as the rule does.
void CompiledRule::build_full() const { re_ = std::make_unique<RE2>(rule.regex, RE2::Quiet); }

void CompiledRule::build_re() const {
  auto loose = loosen_counted_repeats(rule.regex);
  if (!loose) return;  // no counted repeat worth loosening: the rule alone
  auto loc = std::make_unique<RE2>(*loose, RE2::Quiet);
  if (!loc->ok()) return;
  // The capped form only with the locator (a regex RE2 rejects yields neither: the rule itself
  // then reports the error); compiled on first use.
  if (auto capped = cap_counted_repeats(rule.regex)) {
    capped_regex_ = std::move(capped->regex);
    cap_len_ = capped->max_len;
  }
  locator_ = std::move(loc);
}

void CompiledRule::build_capped() const {
  // Used only when it agrees with the rule on its groups; else the rule decides alone.
  auto cre = std::make_unique<RE2>(capped_regex_, RE2::Quiet);
  if (cre->ok() && cre->NumberOfCapturingGroups() == groups) capped_ = std::move(cre);
}

std::shared_ptr<const CompiledSet> CompiledSet::compile(const RuleSet& rules,
                                                        const std::vector<KnownSecret>& secrets,
                                                        const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.fingerprint_key.empty())
    throw ConfigError("internal: the engine needs a fingerprint key");

  RegexPool pool;
  std::vector<std::shared_ptr<const CompiledAllowlist>> global;
  for (size_t i = 0; i < rules.global_allowlists.size(); ++i)
    global.push_back(std::make_shared<const CompiledAllowlist>(
        compile_allowlist(rules.global_allowlists[i], "global allowlist #" + std::to_string(i + 1),
                          pool)));

  std::vector<std::string> expressions;
  std::vector<unsigned> flags;

  for (const Rule& rule : rules.rules) {
    CompiledRule cr;
    cr.rule = rule;
    const std::string where = where_of(rule);
    cr.tier = rule.generic ? 2 : 1;
    cr.mask = rule.mask.value_or(options.mask);
    cr.action = rule.action.value_or(options.action);
    for (size_t i = 0; i < rule.allowlists.size(); ++i)
      cr.allowlists.push_back(std::make_shared<const CompiledAllowlist>(
          compile_allowlist(rule.allowlists[i], where + " allowlist #" + std::to_string(i + 1), pool)));
    for (size_t i = 0; i < rules.global_allowlists.size(); ++i) {
      const auto& targets = rules.global_allowlists[i].target_rules;
      if (!targets.empty() && std::find(targets.begin(), targets.end(), rule.id) == targets.end())
        continue;
      cr.allowlists.push_back(global[i]);
    }
    expressions.push_back(cr.hs_expression());
    // Multi-line: ^ and $ also hold at each "\n", so scanning many lines in one call reports
    // every match a line alone would (Scanner::lines_with_events). A unit scanned alone that
    // holds newlines (a decoded JSON string) only gets more events; RE2 confirms each.
    flags.push_back(HS_FLAG_MULTILINE);
    impl->patterns.push_back({false, static_cast<uint32_t>(impl->rules.size()), 0});
    impl->rules.push_back(std::move(cr));
  }

  std::vector<KnownSecret> expanded = expand_known_secrets(secrets, 1);
  impl->known_values = secrets.size();
  std::map<std::string, uint32_t> variant_ids;
  for (const KnownSecret& s : expanded) {
    uint32_t literal_index = static_cast<uint32_t>(impl->literals.size());
    impl->literals.push_back(
        {s.name, s.value, hmac_fingerprint(options.fingerprint_key, s.value, options.fingerprint_hex)});
    for (LiteralVariant& v : literal_forms(s.value, options.base64_variants)) {
      if (variant_ids.count(v.bytes)) continue;  // the first secret that has this form owns it
      variant_ids[v.bytes] = static_cast<uint32_t>(impl->patterns.size());
      expressions.push_back(escape_literal_for_hs(v.bytes));
      flags.push_back(0);
      const std::string_view kind = v.kind;
      impl->patterns.push_back({true, literal_index, static_cast<uint32_t>(v.bytes.size()),
                                kind == "base64"      ? PatternInfo::Edge::kBase64
                                : kind == "base64url" ? PatternInfo::Edge::kBase64Url
                                                      : PatternInfo::Edge::kNone});
    }
  }

  // A "\\A" that is an escaped backslash and an A only costs the prefilter, never a miss.
  impl->lines_prefilter =
      std::none_of(impl->rules.begin(), impl->rules.end(), [](const CompiledRule& r) {
        for (const std::string* re : {&r.rule.regex, &r.rule.prefilter})
          if (re->find("\\A") != std::string::npos || re->find("\\z") != std::string::npos ||
              re->find("\\Z") != std::string::npos)
            return true;
        return false;
      });

  for (const CompiledRule& r : impl->rules)
    if (reads_before_secret(r.rule.regex))
      for (const std::string& k : r.rule.keywords)
        if (!k.empty()) impl->context_keywords.push_back(k);

  impl->mask_token = std::make_unique<LazyRegex>(
      "\\[REDACTED(?::[A-Za-z0-9._:#-]{0,200})?\\]|" + RE2::QuoteMeta(options.fixed_text));

  if (expressions.empty()) {
    pool.validate();
    return std::shared_ptr<const CompiledSet>(new CompiledSet(std::move(impl)));
  }

  // Rules with a required run (filter/char_run.h) go to a database of their own, scanned only
  // over units that hold one; not when nothing else would be left for the main database.
  std::vector<unsigned> main_ids, side_ids;
  for (size_t id = 0; id < impl->patterns.size(); ++id) {
    const PatternInfo& p = impl->patterns[id];
    if (!p.literal && !impl->rules[p.index].rule.required_run.empty()) side_ids.push_back(id);
    else main_ids.push_back(id);
  }
  if (main_ids.empty()) {
    main_ids.swap(side_ids);
  }
  impl->gated.assign(impl->patterns.size(), 0);
  for (unsigned id : side_ids) {
    CompiledRule& cr = impl->rules[impl->patterns[id].index];
    std::string why;
    auto run = CharRun::parse(cr.rule.required_run, why);
    if (!run)
      throw ConfigError(where_of(cr.rule) +
                        ": 'requiredRun' " + why);
    impl->gated[id] = 1;
    if (std::find(impl->gates.begin(), impl->gates.end(), *run) == impl->gates.end())
      impl->gates.push_back(*run);
  }
  auto id_list = [](const char* what, const std::vector<unsigned>& ids) {
    std::string out = what;
    for (unsigned id : ids) {
      out += ' ';
      out += std::to_string(id);
    }
    return out;
  };

  DbCache cache(options.cache_dir, options.fingerprint_key);
  // Besides the expressions, the entry's name holds the allowlist regexes (a hit proves they
  // compiled before) and the regex of each rule Hyperscan knows by its prefilter (it still
  // decides the cached group count), and which expressions have a database of their own.
  std::vector<std::string> also;
  for (const auto& [text, re] : pool.by_text) also.push_back(text);
  for (const CompiledRule& cr : impl->rules)
    if (!cr.rule.prefilter.empty()) also.push_back("regex of " + cr.rule.id + ": " + cr.rule.regex);
  if (!side_ids.empty()) also.push_back(id_list("gated ids", side_ids));
  cache.set_identity(expressions, flags, also);
  auto check_group = [](const CompiledRule& cr) {
    if (cr.rule.secret_group > cr.groups)
      throw ConfigError(where_of(cr.rule) +
                        ": secretGroup " + std::to_string(cr.rule.secret_group) +
                        " but the regex has " + std::to_string(cr.groups) + " capture group(s)");
  };
  // Compiles the expressions `which` (ids) into one database; an expression too large or too
  // complex for an exact compile falls back to its prefilter form.
  auto compile_db = [&](const std::vector<unsigned>& which) {
    for (;;) {
      std::vector<const char*> ptrs;
      std::vector<unsigned> sub_flags;
      for (unsigned id : which) {
        ptrs.push_back(expressions[id].c_str());
        sub_flags.push_back(flags[id]);
      }
      hs_database_t* db = nullptr;
      hs_compile_error_t* err = nullptr;
      if (hs_compile_multi(ptrs.data(), sub_flags.data(), which.data(),
                           static_cast<unsigned>(ptrs.size()), HS_MODE_BLOCK, nullptr, &db,
                           &err) == HS_SUCCESS)
        return HsDatabasePtr(db);
      std::string msg = err && err->message ? err->message : "unknown error";
      int bad = err ? err->expression : -1;
      hs_free_compile_error(err);
      if (bad < 0 || static_cast<size_t>(bad) >= which.size())
        throw ConfigError("Hyperscan cannot compile the pattern set: " + msg);
      const unsigned id = which[bad];
      const PatternInfo& p = impl->patterns[id];
      if (p.literal)
        throw ConfigError("Hyperscan cannot compile known secret '" +
                          impl->literals[p.index].name + "': " + msg);
      CompiledRule& cr = impl->rules[p.index];
      if (cr.prefilter)
        throw ConfigError(where_of(cr.rule) +
                          ": Hyperscan rejects the " +
                          (cr.rule.prefilter.empty() ? "regex: " : "prefilter: ") + msg);
      cr.prefilter = true;
      cr.hs_max_width = UINT_MAX;  // approximate hits
      flags[id] |= HS_FLAG_PREFILTER;
      HsInfo info = expression_info(cr.rule.regex, HS_FLAG_PREFILTER);
      if (info.ok) cr.max_width = std::max(cr.max_width, info.max_width);
    }
  };
  if (auto hit = cache.load(); hit && hit->second.size() == impl->rules.size()) {
    impl->db = std::move(hit->first);
    for (size_t i = 0; i < impl->rules.size(); ++i) {
      CompiledRule& cr = impl->rules[i];
      cr.min_width = hit->second[i].min_width;
      cr.max_width = hit->second[i].max_width;
      cr.hs_max_width = hit->second[i].hs_max_width;
      cr.prefilter = hit->second[i].prefilter;
      cr.groups = hit->second[i].groups;
      flags[i] = HS_FLAG_MULTILINE | cr.hs_flags();  // rule i is expression i
      check_group(cr);  // RE2 itself is built on the rule's first hit
    }
  } else {
    pool.validate();
    for (CompiledRule& cr : impl->rules) {
      const std::string where = where_of(cr.rule);
      const RE2& re = cr.re();
      if (!re.ok()) throw ConfigError(where + ": regex is invalid: " + re.error());
      cr.groups = re.NumberOfCapturingGroups();
      check_group(cr);
    }
    // Hyperscan finds where a rule matches; SOM is not asked for (costly, and it rejects about a
    // third of real-world rules). Constructs Hyperscan rejects fall back to a prefilter whose
    // hits RE2 confirms (every hit is confirmed by RE2 anyway, to extract the secret group).
    for (size_t i = 0; i < impl->rules.size(); ++i) {
      CompiledRule& cr = impl->rules[i];
      const std::string where = where_of(cr.rule);
      if (!cr.rule.prefilter.empty()) {
        // Its own prefilter, compiled exactly; its hits stand for matches of any width.
        HsInfo info = expression_info(cr.rule.prefilter, 0);
        if (!info.ok) throw ConfigError(where + ": Hyperscan rejects the prefilter: " + info.error);
        if (info.min_width == 0)
          throw ConfigError(where + ": the prefilter can match the empty string");
        cr.prefilter = true;
        cr.min_width = info.min_width;
        cr.max_width = UINT_MAX;
        cr.hs_max_width = info.max_width;
        continue;
      }
      HsInfo info = expression_info(cr.rule.regex, 0);
      if (!info.ok) {
        const std::string first_error = info.error;
        info = expression_info(cr.rule.regex, HS_FLAG_PREFILTER);
        if (!info.ok) throw ConfigError(where + ": Hyperscan rejects the regex: " + first_error);
        cr.prefilter = true;
        flags[i] |= HS_FLAG_PREFILTER;  // rules come first, so rule i is expression i
      }
      if (info.min_width == 0) throw ConfigError(where + ": the regex can match the empty string");
      cr.min_width = info.min_width;
      cr.max_width = info.max_width;
      cr.hs_max_width = cr.prefilter ? UINT_MAX : info.max_width;
    }
    impl->db = compile_db(main_ids);
    // Before the widths are stored: a fallback to a prefilter changes a gated rule's too.
    if (!side_ids.empty()) impl->gated_db = compile_db(side_ids);
    std::vector<CachedWidths> widths;
    for (const auto& cr : impl->rules)
      widths.push_back({cr.min_width, cr.max_width, cr.hs_max_width, cr.prefilter, cr.groups});
    cache.store(impl->db.get(), widths);
  }
  if (!side_ids.empty()) {
    std::vector<std::string> side_expressions;
    std::vector<unsigned> side_flags;
    for (unsigned id : side_ids) {
      side_expressions.push_back(expressions[id]);
      side_flags.push_back(flags[id]);
    }
    DbCache side_cache(options.cache_dir, options.fingerprint_key);
    side_cache.set_identity(side_expressions, side_flags, {id_list("gated database ids", side_ids)});
    if (impl->gated_db) {
      side_cache.store(impl->gated_db.get(), {});
    } else if (auto hit = side_cache.load(); hit && hit->second.empty()) {
      impl->gated_db = std::move(hit->first);
    } else {
      impl->gated_db = compile_db(side_ids);
      side_cache.store(impl->gated_db.get(), {});
    }
  }
  impl->unbounded.assign(impl->patterns.size(), 0);
  for (size_t id = 0; id < impl->patterns.size(); ++id) {
    const PatternInfo& p = impl->patterns[id];
    if (impl->gated[id]) {  // find_split scans the gated database over its windows
      const CompiledRule& cr = impl->rules[p.index];  // only rules are gated
      if (cr.prefilter || cr.max_width == UINT_MAX) impl->gated_whole = true;
      else impl->gated_reach = std::max(impl->gated_reach, cr.max_width);
      continue;
    }
    if (p.literal) {
      impl->max_bounded_width = std::max(impl->max_bounded_width, p.width);
      continue;
    }
    const CompiledRule& cr = impl->rules[p.index];
    if (cr.hs_max_width == UINT_MAX) impl->unbounded[id] = 1;
    else impl->max_bounded_width = std::max(impl->max_bounded_width, cr.hs_max_width);
  }
  hs_scratch_t* scratch = nullptr;
  if (hs_alloc_scratch(impl->db.get(), &scratch) != HS_SUCCESS ||
      (impl->gated_db && hs_alloc_scratch(impl->gated_db.get(), &scratch) != HS_SUCCESS)) {
    if (scratch) hs_free_scratch(scratch);
    throw ConfigError("Hyperscan: cannot allocate scratch space");
  }
  impl->proto_scratch.reset(scratch);
  return std::shared_ptr<const CompiledSet>(new CompiledSet(std::move(impl)));
}

const std::string& CompiledSet::Impl::rule_label(uint32_t index) const {
  const CompiledRule& cr = rules[index];
  // The forms once per set (literal_forms of every value: 0.4 ms for 100 values here), then
  // a few µs per rule.
  std::call_once(*literal_forms_once, [&] {
    for (const CompiledLiteral& lit : literals)
      for (LiteralVariant& v : scrub::literal_forms(lit.value, options.base64_variants))
        literal_forms.push_back(std::move(v.bytes));
  });
  std::call_once(*cr.label_once, [&] {
    const std::string& id = cr.rule.id;
    const bool holds = std::any_of(literal_forms.begin(), literal_forms.end(), [&](const std::string& f) {
      return f.size() <= id.size() && id.find(f) != std::string::npos;
    });
    cr.label_ = holds ? "rule-" + std::to_string(index + 1) : cr.rule.id;
    // Neither the id nor the value: only where the rule is.
    if (holds)
      spdlog::warn("the id of rule {} of the set holds a known secret value; its findings are "
                   "reported as {}", index + 1, cr.label_);
  });
  return cr.label_;
}

const CompiledSet::Impl::SplitDb& CompiledSet::Impl::split_db() const {
  std::call_once(split_once, [this] {
    std::vector<std::string> expressions;
    std::vector<unsigned> flags, ids;
    for (size_t id = 0; id < unbounded.size(); ++id) {
      if (!unbounded[id]) continue;
      const CompiledRule& cr = rules[patterns[id].index];  // only rules are unbounded
      expressions.push_back(cr.hs_expression());
      flags.push_back(HS_FLAG_MULTILINE | cr.hs_flags());
      ids.push_back(static_cast<unsigned>(id));
    }
    if (expressions.empty()) {
      split.ok = true;
      return;
    }
    DbCache cache(options.cache_dir, options.fingerprint_key);
    std::string id_list = "split ids";
    for (unsigned id : ids) id_list += " " + std::to_string(id);
    HsDatabasePtr db = cache.load_or_compile(expressions, flags, ids, id_list);
    if (!db) return;  // not ok: find_split falls back to find()
    hs_scratch_t* scratch = nullptr;
    if (hs_alloc_scratch(db.get(), &scratch) != HS_SUCCESS) return;
    split.proto.reset(scratch);
    split.db = std::move(db);
    split.ok = true;
  });
  return split;
}

}  // namespace scrub
