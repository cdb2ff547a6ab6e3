#include "filter/scanner.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <unordered_set>
#include <functional>
#include <future>
#include <system_error>
#include <optional>

#include "filter/compiled_set_impl.h"
#include "filter/helper_thread.h"
#include "filter/rule_match.h"

namespace scrub {

namespace {
// ASCII only, as std::tolower in the "C" locale this program runs in, but inlined: a library
// call per byte, and std::toupper per call, were 4% of a dense-secret run.
inline unsigned char ascii_lower(unsigned char c) {
  return static_cast<unsigned char>(c - 'A') < 26 ? static_cast<unsigned char>(c + 32) : c;
}
inline unsigned char ascii_upper(unsigned char c) {
  return static_cast<unsigned char>(c - 'a') < 26 ? static_cast<unsigned char>(c - 32) : c;
}
}  // namespace

bool contains_ci(std::string_view haystack, std::string_view lower_needle) {
  if (lower_needle.empty()) return true;
  if (haystack.size() < lower_needle.size()) return false;
  const unsigned char first = static_cast<unsigned char>(lower_needle[0]);
  const unsigned char first_upper = ascii_upper(first);
  const char* base = haystack.data();
  const size_t last = haystack.size() - lower_needle.size();  // last possible start
  // Jump between candidate first bytes with memchr (both cases), then compare the rest.
  for (unsigned char f : {first, first_upper}) {
    size_t pos = 0;
    while (pos <= last) {
      const void* hit = std::memchr(base + pos, f, last - pos + 1);
      if (!hit) break;
      size_t i = static_cast<size_t>(static_cast<const char*>(hit) - base);
      size_t j = 1;
      while (j < lower_needle.size() &&
             ascii_lower(static_cast<unsigned char>(base[i + j])) ==
                 static_cast<unsigned char>(lower_needle[j]))
        ++j;
      if (j == lower_needle.size()) return true;
      pos = i + 1;
    }
    if (first_upper == first) break;
  }
  return false;
}

namespace {

struct Event {
  uint32_t id;
  size_t first_end;  // a run of consecutive end offsets of one expression, collapsed
  size_t last_end;
};

// A scan's match events: runs of consecutive end offsets per expression, collapsed as they
// arrive (a rule with an open-ended tail reports every end offset of a long run; kept one by one,
// a megabyte of them would take 16 MB).
struct RunCollector {
  std::vector<Event> runs;
  std::vector<uint32_t> slot, slot_gen;  // per expression: its latest run, if of this generation
  uint32_t gen = 0;
  uint64_t ends = 0;  // end offsets added (Hyperscan's raw match events)

  void reset(size_t expressions) {
    runs.clear();
    ends = 0;
    if (slot.size() != expressions) {
      slot.assign(expressions, 0);
      slot_gen.assign(expressions, 0);
      gen = 0;
    }
    if (++gen == 0) {
      std::fill(slot_gen.begin(), slot_gen.end(), 0);
      gen = 1;
    }
  }
  // Adds the ends first..last (consecutive) of expression `id`, in the order they arrive, as if
  // each had arrived alone.
  void add(uint32_t id, size_t first, size_t last) {
    ends += last - first + 1;
    if (slot_gen[id] == gen) {
      Event& e = runs[slot[id]];
      if (first >= e.last_end && first <= e.last_end + 1) {
        e.last_end = std::max(e.last_end, last);
        return;
      }
    }
    slot_gen[id] = gen;
    slot[id] = static_cast<uint32_t>(runs.size());
    runs.push_back({id, first, last});
  }
};

struct Candidate {
  size_t begin, end;
  uint32_t source;
  int tier;
  size_t match_begin;  // start of the rule match (the secret's context); begin for a literal
};

std::string_view line_around(std::string_view unit, size_t begin, size_t end) {
  size_t b = 0;
  if (begin > 0) {
    const void* nl = ::memrchr(unit.data(), '\n', begin);
    if (nl) b = static_cast<size_t>(static_cast<const char*>(nl) - unit.data()) + 1;
  }
  size_t e = unit.find('\n', end);
  if (e == std::string_view::npos) e = unit.size();
  return unit.substr(b, e - b);
}

// gitleaks' allowlist semantics: OR (default) allows when any criterion matches; AND when every
// defined criterion matches. Path and commit criteria never match a stream.
// `line` is computed only for allowlists that target it: finding a line's bounds in a 1 MB
// message with no newline in it would walk the whole message for every candidate.
bool allowed(const CompiledAllowlist& a, std::string_view secret, std::string_view match,
             const std::function<std::string_view()>& line) {
  std::string_view target = a.target == RegexTarget::kSecret  ? secret
                            : a.target == RegexTarget::kMatch ? match
                                                              : line();
  bool regex_hit = false;
  for (const auto& re : a.regexes) {
    if (RE2::PartialMatch(target, re->get())) {
      regex_hit = true;
      break;
    }
  }
  // The secret lowercased once, then each stopword (lowercase) a plain search: a generic rule
  // has 40 of them, and asked with contains_ci each took two memchr passes over the secret.
  bool stop_hit = false;
  if (!a.stopwords.empty()) {
    std::string lower(secret.size(), '\0');
    std::transform(secret.begin(), secret.end(), lower.begin(),
                   [](char c) { return static_cast<char>(ascii_lower(static_cast<unsigned char>(c))); });
    const std::string_view l(lower);
    for (const auto& w : a.stopwords) {
      if (l.find(w) != std::string_view::npos) {
        stop_hit = true;
        break;
      }
    }
  }
  if (a.condition_and) {
    if (a.has_paths_or_commits) return false;
    bool any = !a.regexes.empty() || !a.stopwords.empty();
    return any && (a.regexes.empty() || regex_hit) && (a.stopwords.empty() || stop_hit);
  }
  return regex_hit || stop_hit;
}

// Fault injection for tests (see scanner.h), read once; off unless MCP_SCRUB_FAULT is set.
struct Fault {
  long long scan_error_at = 0;  // scan-error@N: the Nth find() of the process fails
  bool no_scratch = false;      // scratch-alloc: every Scanner starts without scratch
};
const Fault& fault() {
  static const Fault f = [] {
    Fault f;
    const char* e = std::getenv("MCP_SCRUB_FAULT");
    std::string_view v = e ? e : "";
    if (v == "scratch-alloc") f.no_scratch = true;
    else if (v.rfind("scan-error@", 0) == 0) f.scan_error_at = std::atoll(e + 11);
    return f;
  }();
  return f;
}
std::atomic<long long> g_find_calls{0};

}  // namespace

struct Scanner::State {
  HsScratchPtr scratch;
  std::unordered_set<std::string_view> own_labels;  // filled on first need (drop_own_masks)
  RunCollector events;
  std::vector<Candidate> candidates;
  std::vector<re2::StringPiece> groups;
  // find_split: the split database's scratch (cloned on first use) and each scan's runs.
  HsScratchPtr split_scratch;
  RunCollector half_a, half_b, unbounded;
};

namespace {

int on_match(unsigned int id, unsigned long long /*from*/, unsigned long long to,
                 unsigned int /*flags*/, void* ctx) {
  static_cast<RunCollector*>(ctx)->add(id, static_cast<size_t>(to), static_cast<size_t>(to));
  return 0;
}

// This tool's own masks: `[REDACTED]`, the fixed text, `[REDACTED:<id>]` and the hash style's
// `[REDACTED:<id>:<hex>]`, where <id> is a rule of this set, "known-secret" or the PEM tracker's.
bool own_mask(const CompiledSet::Impl& impl, std::unordered_set<std::string_view>& labels,
              std::string_view token) {
  if (token == "[REDACTED]" || token == impl.options.fixed_text) return true;
  constexpr std::string_view kOpen = "[REDACTED:";
  if (token.size() <= kOpen.size() + 1 || token.substr(0, kOpen.size()) != kOpen) return false;
  std::string_view label = token.substr(kOpen.size(), token.size() - kOpen.size() - 1);
  if (labels.empty()) {
    for (const auto& r : impl.rules) labels.insert(r.rule.id);
    labels.insert("known-secret");
    labels.insert("private-key-block");
  }
  if (labels.count(label)) return true;
  size_t colon = label.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == label.size()) return false;
  for (char c : label.substr(colon + 1))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return labels.count(label.substr(0, colon)) > 0;
}

// `secret` holds one of this tool's own masks directly followed by a `"`.
bool masked_then_quote(const CompiledSet::Impl& impl, std::unordered_set<std::string_view>& labels,
                       std::string_view secret) {
  re2::StringPiece m;
  size_t pos = 0;
  while (pos < secret.size() &&
         impl.mask_token->get().Match(secret, pos, secret.size(), RE2::UNANCHORED, &m, 1)) {
    size_t b = static_cast<size_t>(m.data() - secret.data()), e = b + m.size();
    if (e < secret.size() && secret[e] == '"' &&
        own_mask(impl, labels, std::string_view(m.data(), m.size())))
      return true;
    pos = e > b ? e : b + 1;
  }
  return false;
}

// The secret of the rule match in `groups` (groups[0] is the match), or nullopt when the match is
// not a finding: no secret, entropy too low (and the generic rules' digit test), allowlisted, or
// this tool's own mask output.
std::optional<std::string_view> reported_secret(const CompiledSet::Impl& impl,
                                                std::unordered_set<std::string_view>& labels,
                                                const CompiledRule& cr,
                                                const std::vector<re2::StringPiece>& groups,
                                                std::string_view unit) {
  const re2::StringPiece& m = groups[0];
  // The secret: the configured group, else the first non-empty group, else the match.
  re2::StringPiece secret = m;
  if (cr.rule.secret_group > 0) {
    secret = groups[cr.rule.secret_group];
  } else {
    for (size_t g = 1; g < groups.size(); ++g) {
      if (!groups[g].empty()) {
        secret = groups[g];
        break;
      }
    }
  }
  if (secret.data() == nullptr || secret.empty()) return std::nullopt;
  std::string_view sv(secret.data(), secret.size());
  if (cr.rule.entropy != 0.0) {
    if (shannon_entropy(sv) <= cr.rule.entropy) return std::nullopt;
    if (cr.rule.id.rfind("generic", 0) == 0 &&
        std::none_of(sv.begin(), sv.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
  }
  const size_t sb = static_cast<size_t>(secret.data() - unit.data());
  const size_t se = sb + secret.size();
  std::string_view match(m.data(), m.size());
  for (const auto& a : cr.allowlists)
    if (allowed(*a, sv, match, [&] { return line_around(unit, sb, se); })) return std::nullopt;
  // This tool's own mask output must never be masked again: a rule whose secret is a mask token
  // (plus at most a short non-secret prefix kept by the partial style) is not a finding.
  if (sv.find("[REDACTED") != std::string_view::npos ||
      sv.find(impl.options.fixed_text) != std::string_view::npos) {
    // A value masked in a JSON string, the rule's match running on past the closing quote (the
    // redactor masks only up to it): already done.
    if (masked_then_quote(impl, labels, sv)) return std::nullopt;
    std::string rest(sv);
    RE2::GlobalReplace(&rest, impl.mask_token->get(), "");
    bool has_digit = std::any_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (rest.size() < 8 || (!has_digit && rest.size() <= 16)) return std::nullopt;
  }
  return sv;
}

// A rule hit wholly inside one of this tool's own masks matched the mask's letters, not a secret
// (a rule such as `[a-z]+` matches the label): dropped, so masked output never re-triggers a rule.
// So is a hit whose rule match starts inside a mask: the label is not context. (Found by
// fuzz_json_line: "[REDACTED:code-password-string]": "value" made `password-string]": "value"` a
// generic-password match, and each such mask made the next value look like a password.)
// Known values are never dropped. `cands` is sorted by start.
void drop_own_masks(const CompiledSet::Impl& impl, std::unordered_set<std::string_view>& labels,
                    std::string_view unit, std::vector<Candidate>& cands) {
  if (std::all_of(cands.begin(), cands.end(), [](const Candidate& c) { return c.tier == 0; })) return;
  if (unit.find("[REDACTED") == std::string_view::npos &&
      unit.find(impl.options.fixed_text) == std::string_view::npos)
    return;
  std::vector<std::pair<size_t, size_t>> masks;
  re2::StringPiece m;
  size_t pos = 0;
  while (pos < unit.size() &&
         impl.mask_token->get().Match(unit, pos, unit.size(), RE2::UNANCHORED, &m, 1)) {
    size_t b = static_cast<size_t>(m.data() - unit.data()), e = b + m.size();
    if (own_mask(impl, labels, std::string_view(m.data(), m.size()))) masks.push_back({b, e});
    pos = e > b ? e : b + 1;
  }
  if (masks.empty()) return;
  auto starts_inside_mask = [&](size_t pos) {  // masks are sorted and disjoint
    auto it = std::upper_bound(masks.begin(), masks.end(), pos,
                               [](size_t p, const std::pair<size_t, size_t>& mk) { return p < mk.first; });
    return it != masks.begin() && pos > std::prev(it)->first && pos < std::prev(it)->second;
  };
  size_t mi = 0;
  cands.erase(std::remove_if(cands.begin(), cands.end(),
                             [&](const Candidate& c) {
                               if (c.tier == 0) return false;
                               while (mi < masks.size() && masks[mi].second <= c.begin) ++mi;
                               if (mi < masks.size() && masks[mi].first <= c.begin &&
                                   c.end <= masks[mi].second)
                                 return true;
                               return c.match_begin < c.begin && starts_inside_mask(c.match_begin);
                             }),
              cands.end());
}

}  // namespace

Scanner::Scanner(std::shared_ptr<const CompiledSet> set)
    : set_(std::move(set)), state_(std::make_unique<State>()) {
  const auto& impl = set_->impl();
  if (impl.proto_scratch && !fault().no_scratch) {
    hs_scratch_t* s = nullptr;
    if (hs_clone_scratch(impl.proto_scratch.get(), &s) == HS_SUCCESS) state_->scratch.reset(s);
  }
}

bool Scanner::lines_prefilter() const {
  const auto& impl = set_->impl();
  return impl.db != nullptr && impl.lines_prefilter;
}

// Before a scan: the injected fault (tests) and a missing scratch fail it, with last_error_ set.
bool Scanner::ready() {
  if (fault().scan_error_at > 0 && ++g_find_calls == fault().scan_error_at) {
    last_error_ = HS_UNKNOWN_ERROR;
    return false;
  }
  if (!state_->scratch) {
    last_error_ = HS_NOMEM;
    return false;
  }
  return true;
}

namespace {

struct LineHits {
  const CompiledSet::Impl* impl;
  const std::vector<size_t>* ends;
  std::vector<uint8_t>* hit;
  uint64_t events = 0;
};

int on_block_match(unsigned int id, unsigned long long /*from*/, unsigned long long to,
                   unsigned int /*flags*/, void* ctx) {
  auto* lh = static_cast<LineHits*>(ctx);
  ++lh->events;
  // The match's last byte is to - 1: its line is the first that ends at or after `to`.
  const auto& ends = *lh->ends;
  auto it = std::lower_bound(ends.begin(), ends.end(), static_cast<size_t>(to > 0 ? to - 1 : 0));
  size_t line = it == ends.end() ? ends.size() - 1 : static_cast<size_t>(it - ends.begin());
  (*lh->hit)[line] = 1;
  // A prefilter searched over the whole unit stands for a match that may end after it, on the
  // next line too (env-list-secret-value's `name:` line, its `value:` below): that line is then
  // redacted as well, and scanning clean alone, behind this one (the exact regex's event, where
  // the match ends, did that by itself).
  const PatternInfo& p = lh->impl->patterns[id];
  if (!p.literal && lh->impl->rules[p.index].rule.prefilter_whole_unit && line + 1 < ends.size())
    (*lh->hit)[line + 1] = 1;
  return 0;
}

}  // namespace

ScanStatus Scanner::lines_with_events(std::string_view block, const std::vector<size_t>& line_ends,
                                      std::vector<uint8_t>& hit) {
  const auto& impl = set_->impl();
  State& st = *state_;
  last_error_ = 0;
  hit.assign(line_ends.size(), 0);
  if (!impl.db || line_ends.empty()) return ScanStatus::kOk;
  if (!ready()) return ScanStatus::kError;
  if (!lines_prefilter() || block.size() > UINT_MAX) {  // no shortcut: every line is scanned
    hit.assign(line_ends.size(), 1);
    return ScanStatus::kOk;
  }
  LineHits lh{&impl, &line_ends, &hit};
  // The gated rules only where the block holds one of their runs (a line without one cannot).
  hs_error_t rc = impl.scan(block, st.scratch.get(), on_block_match, &lh);
  match_events_ = lh.events;
  if (rc != HS_SUCCESS) {
    last_error_ = rc;
    return ScanStatus::kError;
  }
  return ScanStatus::kOk;
}

Scanner::~Scanner() = default;

void Scanner::begin_scan() {
  state_->events.reset(set_->impl().patterns.size());
  state_->candidates.clear();
}

ScanStatus Scanner::find(std::string_view unit, std::vector<SecretSpan>& out) {
  const auto& impl = set_->impl();
  State& st = *state_;
  last_error_ = 0;
  if (!impl.db) return ScanStatus::kOk;  // nothing configured to find
  if (!ready()) return ScanStatus::kError;
  try {
    begin_scan();
    // hs_scan takes an unsigned int length; larger units are refused (the callers cap units far
    // below 4 GiB).
    if (unit.size() > UINT_MAX) {
      last_error_ = HS_INVALID;
      return ScanStatus::kError;
    }
    hs_error_t rc = impl.scan(unit, st.scratch.get(), on_match, &st.events);
    match_events_ = st.events.ends;
    if (rc != HS_SUCCESS) {
      last_error_ = rc;
      return ScanStatus::kError;
    }
  } catch (const std::bad_alloc&) {
    last_error_ = HS_NOMEM;
    return ScanStatus::kError;
  }
  return confirm(unit, out);
}

// Why the split finds what find() finds. Let n = |unit|, m the split point, W the widest bounded
// match. Half A is unit[0, m + W + 2), half B is unit[m, n). Hyperscan reports, for each
// expression, the end offsets of its matches; the rest of the scan (confirm()) depends on which
// ends were reported and, within one expression, on their order, which the merge below keeps
// (an expression's ends all come from A then B, or all from the unbounded scan). An assertion (^, $, \b, \B, \A, \z, \Z) looks at most one byte
// past either end of a match, or at the buffer's ends. For a bounded expression (matches at
// most W long) and a match [s, e) of the whole unit:
//  - e <= m + W: the match and a byte or two on either side lie in A, which starts where the unit
//    does: A reports e. Conversely an end A reports at e <= m + W is the unit's (A's own end, where
//    $ \z \Z might hold falsely, is at m + W + 2, two bytes further).
//  - e > m + W: then s >= e - W > m, so the match and the byte before it lie in B, which ends
//    where the unit does: B reports e. Conversely a match B reports ending past m + W starts past
//    m, not at B's first byte (where ^ \A \b might hold falsely).
// So A's ends up to m + W and B's ends past it are exactly the unit's. Unbounded expressions are
// scanned over the whole unit by a database of their own, the gated ones (filter/char_run.h) by
// theirs over the windows around their runs. (An end reported falsely would cost
// only time: confirm() checks every match with RE2 over the whole unit. A missed end would lose
// a match: that is what the overlap is for; tests/unit/test_split_scan.cpp checks both.)
ScanStatus Scanner::find_split(std::string_view unit, Scanner& helper, std::vector<SecretSpan>& out,
                               size_t at, HelperThread* thread) {
  const auto& impl = set_->impl();
  State& st = *state_;
  last_error_ = 0;
  if (!impl.db) return ScanStatus::kOk;
  const size_t n = unit.size();
  const size_t w = impl.max_bounded_width;
  const size_t m = at != 0 ? at : n / 2;
  if ((at == 0 && n < kSplitBytes) || n > UINT_MAX || m == 0 || m >= n || n - m <= w + 2 ||
      helper.set_.get() != set_.get() || !helper.state_->scratch)
    return find(unit, out);
  const CompiledSet::Impl::SplitDb& split = impl.split_db();
  if (!split.ok) return find(unit, out);
  if (split.db && !st.split_scratch) {
    hs_scratch_t* s = nullptr;
    if (hs_clone_scratch(split.proto.get(), &s) != HS_SUCCESS) return find(unit, out);
    st.split_scratch.reset(s);
  }
  if (!ready()) return ScanStatus::kError;
  State& hst = *helper.state_;
  try {
    begin_scan();
    st.half_a.reset(impl.patterns.size());
    st.half_b.reset(impl.patterns.size());
    st.unbounded.reset(impl.patterns.size());
    hs_error_t rc_b = HS_SUCCESS;
    auto scan_b = [&] {
      rc_b = hs_scan(impl.db.get(), unit.data() + m, static_cast<unsigned>(n - m), 0,
                     hst.scratch.get(), on_match, &st.half_b);
    };
    // B on `thread`, else on a thread started for it; none to be had: B runs here, after A.
    // Declared after what B uses, so waited for (a Job and async's future wait when they go).
    HelperThread::Job on_thread;
    std::future<void> on_async;
    try {
      if (thread) on_thread = thread->run(scan_b);
      else on_async = std::async(std::launch::async, scan_b);
    } catch (const std::system_error&) {
    }
    hs_error_t rc_a = hs_scan(impl.db.get(), unit.data(), static_cast<unsigned>(m + w + 2), 0,
                              st.scratch.get(), on_match, &st.half_a);
    hs_error_t rc_u = HS_SUCCESS;
    if (rc_a == HS_SUCCESS && split.db)
      rc_u = hs_scan(split.db.get(), unit.data(), static_cast<unsigned>(n), 0,
                     st.split_scratch.get(), on_match, &st.unbounded);
    // The gated rules (in neither half's database nor the split one) over their windows.
    if (rc_a == HS_SUCCESS && rc_u == HS_SUCCESS && impl.gated_db)
      rc_u = impl.scan_gated(unit, st.scratch.get(), on_match, &st.unbounded);
    if (on_thread.valid()) on_thread.get();  // joins
    else if (on_async.valid()) on_async.get();
    else scan_b();
    for (hs_error_t rc : {rc_a, rc_u, rc_b})
      if (rc != HS_SUCCESS) {
        last_error_ = rc;
        return ScanStatus::kError;
      }
    // A's ends up to m + w, B's past it (B's offsets are from m), every end of the unbounded
    // and gated expressions.
    const size_t cut = m + w;
    for (const Event& r : st.half_a.runs)
      if (!impl.unbounded[r.id] && r.first_end <= cut)
        st.events.add(r.id, r.first_end, std::min(r.last_end, cut));
    for (const Event& r : st.half_b.runs)
      if (!impl.unbounded[r.id] && r.last_end + m > cut)
        st.events.add(r.id, std::max(r.first_end + m, cut + 1), r.last_end + m);
    for (const Event& r : st.unbounded.runs) st.events.add(r.id, r.first_end, r.last_end);
    match_events_ = st.events.ends;
  } catch (const std::bad_alloc&) {
    last_error_ = HS_NOMEM;
    return ScanStatus::kError;
  }
  return confirm(unit, out);
}

// What the events of the last scan (begin_scan, then State::events) report: each match confirmed,
// filtered and merged.
ScanStatus Scanner::confirm(std::string_view unit, std::vector<SecretSpan>& out) {
  const auto& impl = set_->impl();
  State& st = *state_;
  try {
    if (only_source_ != kAllSources)
      std::erase_if(st.events.runs, [&](const Event& e) {
        const PatternInfo& p = impl.patterns[e.id];
        return (p.literal ? impl.rules.size() + p.index : p.index) != only_source_;
      });
    if (st.events.runs.empty()) return ScanStatus::kOk;

    // Known literals: fixed width, so the start is end - width.
    for (const Event& e : st.events.runs) {
      const PatternInfo& p = impl.patterns[e.id];
      if (!p.literal) continue;
      size_t b = e.first_end - p.width, end = e.last_end;
      if (p.edge != PatternInfo::Edge::kNone) {
        const bool url = p.edge == PatternInfo::Edge::kBase64Url;
        auto in_alphabet = [&](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) ||
                 (url ? c == '-' || c == '_' : c == '+' || c == '/');
        };
        if (b > 0 && in_alphabet(unit[b - 1])) --b;
        if (end < unit.size() && in_alphabet(unit[end])) ++end;
        for (int k = 0; k < 2 && end < unit.size() && unit[end] == '='; ++k) ++end;
      }
      st.candidates.push_back({b, end, static_cast<uint32_t>(impl.rules.size() + p.index), 0, b});
    }

    // Rules: cluster the ends of each rule, then let RE2 find the matches (leftmost-first, as
    // gitleaks' Go regexp does) over a window of the rule's maximum width before each cluster.
    size_t retry_budget = 8 * unit.size() + 65536;  // retries of matches not reported
    std::vector<const Event*> rule_events;
    for (const Event& e : st.events.runs)
      if (!impl.patterns[e.id].literal) rule_events.push_back(&e);
    std::sort(rule_events.begin(), rule_events.end(), [](const Event* a, const Event* b) {
      return a->id != b->id ? a->id < b->id : a->first_end < b->first_end;
    });
    for (size_t i = 0; i < rule_events.size();) {
      const uint32_t id = rule_events[i]->id;
      const uint32_t ri = impl.patterns[id].index;
      const CompiledRule& cr = impl.rules[ri];
      size_t j = i;
      while (j < rule_events.size() && rule_events[j]->id == id) ++j;
      // Keywords (gitleaks): the rule applies only when one occurs in the unit. Nearly always
      // one occurs inside the match itself, so look around the first hit before the whole unit.
      bool keywords_ok = cr.rule.keywords.empty();
      if (!keywords_ok) {
        size_t near_end = std::min(unit.size(), rule_events[i]->last_end + 64);
        size_t near_begin = cr.max_width == UINT_MAX || rule_events[i]->first_end < cr.max_width + 64
                                ? 0
                                : rule_events[i]->first_end - cr.max_width - 64;
        std::string_view near = unit.substr(near_begin, near_end - near_begin);
        for (const auto& k : cr.rule.keywords)
          if (contains_ci(near, k)) {
            keywords_ok = true;
            break;
          }
        if (!keywords_ok && near.size() < unit.size())
          for (const auto& k : cr.rule.keywords)
            if (contains_ci(unit, k)) {
              keywords_ok = true;
              break;
            }
      }
      if (!keywords_ok) {
        i = j;
        continue;
      }
      const bool unbounded = cr.max_width == UINT_MAX;
      size_t resume = 0;
      // A match that is not reported (allowlisted, low entropy, this tool's own mask) does not
      // use up its bytes: the search goes on at its next byte, so a match that starts inside it
      // is still found. Otherwise masking a neighbour moves where leftmost-first matches begin,
      // and the masked output re-scanned finds what the first pass passed over (fuzz_json_line:
      // `fzk_96[REDACTED:…fzk_SECRET`, whose outer match is allowlisted, hid the inner one).
      // Bounded rules only, within a budget of 8x the unit's bytes, so retries stay linear.
      const int ngroups = 1 + cr.groups;
      st.groups.resize(ngroups);
      const RulePrograms programs = cr.programs();
      size_t k = i;
      while (k < j) {
        size_t first_end = rule_events[k]->first_end;
        size_t last_end = rule_events[k]->last_end;
        ++k;
        while (k < j && (unbounded || rule_events[k]->first_end <= last_end + cr.max_width)) {
          last_end = std::max(last_end, rule_events[k]->last_end);
          ++k;
        }
        // A prefilter searched over the whole unit stands for a match anywhere in it (the rule's
        // opening words, say), not one that ends before it.
        if (cr.rule.prefilter_whole_unit) last_end = unit.size();
        size_t ws = unbounded ? 0 : (first_end > cr.max_width ? first_end - cr.max_width : 0);
        size_t pos = std::max(ws, resume);
        while (pos < last_end &&
               rule_match(programs, unit, pos, last_end, st.groups.data(), ngroups)) {
          const re2::StringPiece& m = st.groups[0];
          size_t mb = static_cast<size_t>(m.data() - unit.data());
          size_t me = mb + m.size();
          pos = me > mb ? me : mb + 1;
          resume = pos;
          const std::optional<std::string_view> secret =
              reported_secret(impl, st.own_labels, cr, st.groups, unit);
          if (!secret) {  // not reported: go on at its next byte, when affordable
            if (!unbounded && me > mb + 1 && retry_budget >= me - mb) {
              retry_budget -= me - mb;
              pos = resume = mb + 1;
            }
            continue;
          }
          size_t sb = static_cast<size_t>(secret->data() - unit.data());
          size_t se = sb + secret->size();
          st.candidates.push_back({sb, se, ri, cr.tier, mb});
        }
      }
      i = j;
    }

    if (st.candidates.empty()) return ScanStatus::kOk;
    // Total order, so the label of a merged span never depends on sort stability: earlier
    // start, then longer, then stronger tier, then the rule listed first.
    std::sort(st.candidates.begin(), st.candidates.end(),
              [](const Candidate& a, const Candidate& b) {
                if (a.begin != b.begin) return a.begin < b.begin;
                if (a.end != b.end) return a.end > b.end;
                if (a.tier != b.tier) return a.tier < b.tier;
                return a.source < b.source;
              });
    drop_own_masks(impl, st.own_labels, unit, st.candidates);
    if (st.candidates.empty()) return ScanStatus::kOk;
    // Overlaps merge into one span; the label goes to the strongest source: a known literal,
    // then a specific rule, then a generic one.
    Candidate cur = st.candidates[0];
    for (size_t i = 1; i < st.candidates.size(); ++i) {
      const Candidate& c = st.candidates[i];
      if (c.begin < cur.end) {
        cur.end = std::max(cur.end, c.end);
        cur.match_begin = std::min(cur.match_begin, c.match_begin);
        if (c.tier < cur.tier) {
          cur.tier = c.tier;
          cur.source = c.source;
        }
        continue;
      }
      out.push_back({cur.begin, cur.end, cur.source, cur.match_begin});
      cur = c;
    }
    out.push_back({cur.begin, cur.end, cur.source, cur.match_begin});
    return ScanStatus::kOk;
  } catch (const std::bad_alloc&) {
    last_error_ = HS_NOMEM;
    return ScanStatus::kError;
  }
}

}  // namespace scrub
