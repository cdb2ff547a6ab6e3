// Scanning one unit (a line, a message, a decoded string) for secrets.
//
// A Scanner owns the Hyperscan scratch for one thread; it is not thread-safe, make one per thread.
// It reports secret spans after every gitleaks filter (keywords, entropy, allowlists, stopwords),
// with overlaps merged and the winner chosen (known literal > specific rule > generic rule).
// Errors are returned, never thrown: the caller fails closed.
//
// Fault injection (tests only; off unless set): the environment variable MCP_SCRUB_FAULT, read
// once at the first Scanner, set to `scan-error@N` makes the Nth find() of the process return
// kError as a Hyperscan error would; `scratch-alloc` makes every Scanner start without scratch,
// as when hs_clone_scratch fails (every find() then returns kError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "filter/compiled_set.h"

namespace scrub {

class HelperThread;
enum class ScanStatus { kOk, kError };

// Whether `haystack` holds `lower_needle` (lowercase) with ASCII case ignored, as gitleaks
// compares a rule's keywords and an allowlist's stopwords. An empty needle is always held.
bool contains_ci(std::string_view haystack, std::string_view lower_needle);

struct SecretSpan {
  size_t begin = 0;    // byte offsets in the unit of the secret (not the whole rule match)
  size_t end = 0;
  uint32_t source = 0; // CompiledSet source index: a rule or a known literal
  size_t match_begin = SIZE_MAX;  // find(): where the rule match holding it starts (<= begin)
  bool operator==(const SecretSpan&) const = default;
};

class Scanner {
 public:
  explicit Scanner(std::shared_ptr<const CompiledSet> set);
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // Appends merged, sorted, non-overlapping secret spans of `unit` to `out`. The rules with a
  // required run (filter/char_run.h) are looked for only when `unit` holds one of their runs,
  // here and in find_split() and lines_with_events() (a block that holds none has no line that
  // does).
  ScanStatus find(std::string_view unit, std::vector<SecretSpan>& out);
  // The same spans as find(), with Hyperscan's pass over the unit shared by two threads: this one
  // scans the first half (and the whole unit for the expressions of unbounded width, with a small
  // database of their own), `helper` (another Scanner of the same set, not in use) the second
  // half on `thread` when given (one with no task), else on a thread started for it. For units
  // of kSplitBytes or more (smaller ones, and any case it cannot split, are scanned by find());
  // `at` (tests), when not 0, forces the split point.
  static constexpr size_t kSplitBytes = 256 * 1024;
  ScanStatus find_split(std::string_view unit, Scanner& helper, std::vector<SecretSpan>& out,
                        size_t at = 0, HelperThread* thread = nullptr);
  // A prefilter for many lines at once, one Hyperscan call instead of one per line. `block`
  // holds lines, each ended by "\n" (the last one may lack it); `line_ends[i]` is where line i
  // ends (the offset of its "\n"), ascending. Sets hit[i] (resized to line_ends.size()) for each
  // line where some expression ends a match. A line left unset holds nothing find() would
  // report for it alone: rules are compiled multi-line, so ^ and $ hold at every line as at a
  // unit's ends. Not usable (lines_prefilter() false) when a rule anchors on the whole buffer
  // (\A, \z, \Z): scan each line with find() then. Counts as a find() for fault injection.
  bool lines_prefilter() const;
  ScanStatus lines_with_events(std::string_view block, const std::vector<size_t>& line_ends,
                               std::vector<uint8_t>& hit);
  // Reports only what one source finds (a CompiledSet source index: a rule's index, or
  // rule_count() + a known literal's); kAllSources, the default, reports every source. For
  // `rules check`, which checks each rule of a set alone without compiling it alone: Hyperscan
  // reports each expression's matches independently of the others (and every hit is confirmed by
  // RE2), so one rule's events in the set are the events a database of that rule alone reports.
  static constexpr uint32_t kAllSources = UINT32_MAX;
  void only_source(uint32_t source) { only_source_ = source; }
  // Last Hyperscan error code (0 = none) for error messages.
  int last_error() const { return last_error_; }
  const CompiledSet& set() const { return *set_; }
  const std::shared_ptr<const CompiledSet>& shared_set() const { return set_; }
  // Raw Hyperscan match events of the last find(), before collapsing (for benchmarks).
  uint64_t match_events() const { return match_events_; }

  struct State;  // scratch and per-scan buffers (public only for the Hyperscan callback)

 private:
  bool ready();  // the checks before any scan (fault injection, scratch)
  void begin_scan();  // clears the last scan's events
  ScanStatus confirm(std::string_view unit, std::vector<SecretSpan>& out);
  std::shared_ptr<const CompiledSet> set_;
  std::unique_ptr<State> state_;
  int last_error_ = 0;
  uint64_t match_events_ = 0;
  uint32_t only_source_ = kAllSources;
};

}  // namespace scrub
