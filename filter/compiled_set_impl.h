// Internal layout of a CompiledSet, shared by compiled_set.cpp, scanner.cpp and redactor.cpp.
// Not a public boundary: include filter/compiled_set.h elsewhere.
#pragma once

#include <hs/hs.h>
#include <re2/re2.h>

#include <climits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filter/char_run.h"
#include "filter/compiled_set.h"
#include "filter/huge_pages.h"
#include "filter/rule_match.h"

namespace scrub {

// A database deserialized into a HugeBuffer of its own (filter/huge_pages.h) is unmapped;
// every other one was allocated by Hyperscan.
struct HsDatabaseDeleter {
  size_t mapped = 0;
  void operator()(hs_database_t* db) const {
    if (mapped != 0) HugeBuffer::free_mapping(db, mapped);
    else hs_free_database(db);
  }
};
struct HsScratchDeleter {
  void operator()(hs_scratch_t* s) const { hs_free_scratch(s); }
};
using HsDatabasePtr = std::unique_ptr<hs_database_t, HsDatabaseDeleter>;
using HsScratchPtr = std::unique_ptr<hs_scratch_t, HsScratchDeleter>;

// An RE2 program built on first use, by whichever thread needs it first. For regexes whose
// validity is already known: checked at load (ok()) when the database is compiled, or proven by a
// cache hit (the cache entry is named after them and written only after they compiled).
class LazyRegex {
 public:
  explicit LazyRegex(std::string pattern) : pattern_(std::move(pattern)) {}
  const RE2& get() const {
    std::call_once(once_, [this] { re_ = std::make_unique<RE2>(pattern_, RE2::Quiet); });
    return *re_;
  }
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  mutable std::once_flag once_;
  mutable std::unique_ptr<RE2> re_;
};

struct CompiledAllowlist {
  bool condition_and = false;
  RegexTarget target = RegexTarget::kSecret;
  // Shared: the pack repeats the same few allowlist regexes across many rules (203 uses, 30
  // distinct), and each is compiled once per set, on first use: building all 30 at start-up
  // took 0.7 ms, and most never run in a session.
  std::vector<std::shared_ptr<const LazyRegex>> regexes;
  std::vector<std::string> stopwords;
  std::vector<std::string> target_rules;  // global only
  bool has_paths_or_commits = false;
};

struct CompiledRule {
  Rule rule;
  // The RE2 program that confirms hits and extracts the secret group. Built at load when the
  // database is compiled (that validates the regex); when the database comes from the cache (the
  // same regexes compiled before), built when first needed instead: most rules never fire in a
  // session, and building all of them was most of the start-up time.
  const RE2& re() const {
    std::call_once(*full_once, [this] { build_full(); });
    return *re_;
  }
  // What confirms a hit (filter/rule_match.h): the locator, built on the rule's first hit; the
  // capped form once the locator finds a start (building the capped forms of the pack's four
  // uri-*-password rules, whose user part `{0,64}` RE2 unrolls, took 0.6-1.3 ms each on the
  // first hit of `@` in a JSON log, where their locators then found nothing); the rule itself
  // only if a check needs it.
  RulePrograms programs() const {
    std::call_once(*re_once, [this] { build_re(); });
    RulePrograms p;
    p.full_of = [](const void* self) -> const RE2& { return static_cast<const CompiledRule*>(self)->re(); };
    if (!capped_regex_.empty())
      p.capped_of = [](const void* self) { return static_cast<const CompiledRule*>(self)->capped(); };
    p.owner = this;
    p.locator = locator_.get();
    p.cap_len = cap_len_;
    return p;
  }
  // The capped form, or null when it does not compile or disagrees with the rule on its groups.
  const RE2* capped() const {
    std::call_once(*capped_once, [this] { build_capped(); });
    return capped_.get();
  }
  const RE2* locator() const { return programs().locator; }
  void build_re() const;
  void build_full() const;
  void build_capped() const;
  mutable std::unique_ptr<RE2> re_;
  mutable std::unique_ptr<RE2> locator_;
  mutable std::unique_ptr<RE2> capped_;
  mutable std::string capped_regex_;  // set by build_re() when the rule has a capped form
  mutable size_t cap_len_ = 0;
  std::unique_ptr<std::once_flag> re_once = std::make_unique<std::once_flag>();
  std::unique_ptr<std::once_flag> full_once = std::make_unique<std::once_flag>();
  std::unique_ptr<std::once_flag> capped_once = std::make_unique<std::once_flag>();
  // What findings and masks call the rule (CompiledSet::Impl::rule_label): set on first use.
  mutable std::string label_;
  std::unique_ptr<std::once_flag> label_once = std::make_unique<std::once_flag>();
  int groups = 0;  // capture groups in the regex
  unsigned min_width = 0;
  unsigned max_width = UINT_MAX;  // UINT_MAX: unbounded
  // The longest match of hs_expression() itself, when Hyperscan knows it: the regex compiled
  // exactly (then max_width) or the rule's own `prefilter` (compiled exactly; its hits stand for
  // regex matches of any width, so max_width is UINT_MAX, but the hits themselves are no wider
  // than this). UINT_MAX when unbounded or compiled with HS_FLAG_PREFILTER, whose hits are
  // approximate. What Scanner::find_split needs: where Hyperscan reports an end, not where the
  // rule's match lies.
  unsigned hs_max_width = UINT_MAX;
  // Hyperscan's hits are a superset that RE2 confirms over the line up to each: the regex compiled
  // with HS_FLAG_PREFILTER (Hyperscan rejects it exactly), or the rule's own `prefilter`.
  bool prefilter = false;
  // The expression Hyperscan compiles for this rule: the rule's `prefilter` when it has one
  // (compiled exactly), else its regex (with HS_FLAG_PREFILTER when `prefilter` is set).
  const std::string& hs_expression() const {
    return rule.prefilter.empty() ? rule.regex : rule.prefilter;
  }
  unsigned hs_flags() const {
    return prefilter && rule.prefilter.empty() ? HS_FLAG_PREFILTER : 0u;
  }
  int tier = 1;  // 1 specific, 2 generic
  // Its own, then the global ones that target it (compiled once, shared by every rule: the pack's
  // global allowlists compiled again for each of 356 rules were most of the start-up time).
  std::vector<std::shared_ptr<const CompiledAllowlist>> allowlists;
  MaskStyle mask = MaskStyle::kLabel;
  Action action = Action::kMask;
};

struct CompiledLiteral {
  std::string name;         // safe to print
  std::string value;        // the secret; never printed
  std::string fingerprint;  // of the value
};

// What a Hyperscan expression id stands for.
struct PatternInfo {
  bool literal = false;
  uint32_t index = 0;  // rule index, or literal index
  uint32_t width = 0;  // literal variants: byte length
  // A base64 form (literal_variants) leaves out the character at each edge whose six bits mix
  // the value's with its neighbours'; a match masks that character too, when it is there, and
  // any "=" padding after it, so no bit of the value is left in view.
  enum class Edge : uint8_t { kNone, kBase64, kBase64Url } edge = Edge::kNone;
};

struct CompiledSet::Impl {
  EngineOptions options;
  HsDatabasePtr db;
  // The rules with a required run (filter/char_run.h), by expression id, in a database of their
  // own that a unit is scanned with too where it holds one of `gates` (the distinct runs); null
  // when no rule has one. `proto_scratch` serves both databases.
  HsDatabasePtr gated_db;
  std::vector<uint8_t> gated;  // per expression id: 1 if it is in gated_db, not in db
  std::vector<CharRun> gates;
  // The widest match of a gated expression (gated_reach), and whether one is unbounded or a
  // prefilter (gated_whole: its matches need not hold the run, or have no width to go by).
  unsigned gated_reach = 0;
  bool gated_whole = false;
  bool gate_open(std::string_view unit) const {
    for (const CharRun& g : gates)
      if (g.found_in(unit)) return true;
    return false;
  }
  // Where the gated database scans `unit`: around each run of a gate, gated_reach bytes either
  // side, windows that overlap merged, in order; the whole unit where the gate is open if
  // gated_whole; nothing where it is shut. Why this finds what a scan of the whole unit finds,
  // no more and no less: a gated match holds `length` bytes of a run and is at most
  // gated_reach wide, so it lies inside its run's window with a byte of context either side
  // (what \b reads); and no match of the window starts at its first byte or ends at its last
  // (where ^ \A \b \z might hold falsely), since the gated_reach bytes past the window's outer
  // runs hold no run (else those windows would overlap and be one), so such a match would be
  // wider than gated_reach. A 1 MB message with one SHA-256 in it was scanned twice whole.
  void gated_windows(std::string_view unit, std::vector<std::pair<size_t, size_t>>& out) const;
  // The gated database over gated_windows(unit), offsets reported as the unit's.
  hs_error_t scan_gated(std::string_view unit, hs_scratch_t* scratch, match_event_handler on,
                        void* ctx) const;
  // One unit's Hyperscan pass: the main database, then the gated one over its windows (which
  // are found first: their reads bring the unit into the cache for Hyperscan, not the reverse).
  // `scratch` must serve both (proto_scratch and its clones do).
  hs_error_t scan(std::string_view unit, hs_scratch_t* scratch, match_event_handler on,
                  void* ctx) const;
  HsScratchPtr proto_scratch;
  std::vector<CompiledRule> rules;
  std::vector<CompiledLiteral> literals;
  std::vector<PatternInfo> patterns;
  size_t known_values = 0;
  // Finds this tool's own mask output; built on first use (0.5 ms: the label's counted repeat),
  // which is a finding's, and most runs have none.
  std::unique_ptr<LazyRegex> mask_token;
  // No rule may anchor on the whole buffer (\A, \z, \Z), so many lines can be scanned in one
  // Hyperscan call as a prefilter (Scanner::lines_with_events). Decided once, at compile.
  bool lines_prefilter = false;
  // The keywords of the rules whose regex reads something before its secret (`password=`,
  // `"api_key": `; not a self-identifying format such as `AC` + 32 hex, whose regex begins with
  // its secret): a JSON key that holds one may take part in such a rule's match with its value
  // (Redactor's key-value scan). Lowercase, as rules hold them; decided once, at compile.
  std::vector<std::string> context_keywords;

  // For Scanner::find_split, which scans a unit's two halves on two threads. An expression is
  // "bounded" when Hyperscan knows its longest match: every known literal, every rule compiled
  // exactly with a finite width, and every rule's own `prefilter` of finite width (its hits are
  // what both halves must report the same; RE2 then searches the unit around them as after any
  // scan). The halves overlap by the widest bounded match; the unbounded expressions (and the
  // rules compiled with HS_FLAG_PREFILTER) get a database of their own that scans the whole unit
  // (split_db()). The built-in prefilters (`@`, `datadog...app`, `key="...password"`) were in it
  // until 2026-11-28: keyed on short words, that database alone cost a tool result's words more
  // than the whole set's scan (450 against 64 µs per MB without them).
  unsigned max_bounded_width = 0;
  std::vector<uint8_t> unbounded;  // per expression id: 1 if it is not bounded
  struct SplitDb {
    bool ok = false;     // false: the database could not be built; find_split scans as find()
    HsDatabasePtr db;    // null when every expression is bounded; ids are the main database's
    HsScratchPtr proto;  // cloned by each Scanner that uses it
  };
  // Built on first use (a cache entry of its own; 60 ms to compile for the built-in pack), once.
  const SplitDb& split_db() const;
  mutable std::once_flag split_once;
  mutable SplitDb split;

  // A SecretSpan's `source`: rules first, then literals.
  bool is_literal(uint32_t source) const { return source >= rules.size(); }
  const CompiledLiteral& literal(uint32_t source) const { return literals[source - rules.size()]; }
  // What masks and findings call a source: "known-secret" for a known value, a rule's
  // rule_label otherwise.
  std::string source_id(uint32_t source) const {
    return is_literal(source) ? "known-secret" : rule_label(source);
  }
  // A rule's id, unless the id holds one of this set's known values in a form the set looks for
  // (literal_variants): then "rule-N", N its place in the set from 1, so that no mask, alert or
  // summary carries the value through the rule's name. Decided on the rule's first finding, not
  // at start-up: it checks every form of every value, and most rules never fire.
  const std::string& rule_label(uint32_t index) const;
  // Every form of every known value (scrub::literal_forms), made on the first rule_label.
  mutable std::vector<std::string> literal_forms;
  std::unique_ptr<std::once_flag> literal_forms_once = std::make_unique<std::once_flag>();
  Severity severity(uint32_t source) const {
    return is_literal(source) ? Severity::kCritical : rules[source].rule.severity;
  }
  Action action(uint32_t source) const {
    return is_literal(source) ? options.action : rules[source].action;
  }
  MaskStyle mask(uint32_t source) const {
    return is_literal(source) ? options.mask : rules[source].mask;
  }
  int tier(uint32_t source) const { return is_literal(source) ? 0 : rules[source].tier; }
};

// Shannon entropy in bits per byte (gitleaks' measure).
double shannon_entropy(std::string_view s);

}  // namespace scrub
