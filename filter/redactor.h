// Redaction of one unit: text anywhere in a line, or JSON-aware inside decoded string values.
//
// Promises:
//  - kClean: nothing found, `out` untouched; the caller forwards the input bytes unchanged.
//  - kMasked: `out` holds the masked unit; for JSON input that was valid JSON, `out` is valid
//    JSON with the same structure, every masked string still a string.
//  - kError: the engine could not scan; the caller must not forward the unit (fail closed).
// Masks use only JSON-safe printable ASCII, never re-trigger a rule, and never contain any part
// of the secret except the non-secret prefix kept by the `partial` style.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "filter/finding.h"
#include "filter/scanner.h"

namespace simdjson::dom {
class element;
}

namespace scrub {

enum class RedactStatus { kClean, kMasked, kError };

struct JsonInfo {
  bool valid = true;  // false: the unit was not valid JSON and was redacted as text
  // Called with the document of the parse that validated the unit, while it is valid, so a
  // caller can read the top-level fields without a second parse (McpFilter: the JSON-RPC id).
  // Not called for a unit that is not JSON.
  std::function<void(const simdjson::dom::element&)> on_parsed;
};

class Redactor {
 public:
  explicit Redactor(std::shared_ptr<const CompiledSet> set);
  ~Redactor();
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  RedactStatus redact_text(std::string_view unit, std::string& out, Findings& findings);
  // `line` as the line after `before` in line mode, for rules whose match runs across a line
  // break (an env list's `- name: DB_PASSWORD` over `value: ...`): the two are scanned as one
  // unit, and what falls in `line` is masked in `out` (line alone) and reported in `findings`
  // (offsets in `line`) when `before` comes out of that unit as it went in. kClean when nothing
  // falls in `line` or `before` changed (its own findings are its own line's to report).
  RedactStatus redact_text_after(std::string_view before, std::string_view line, std::string& out,
                                 Findings& findings);
  // `text` as a report may show it outside any message (an alert's method or id, a rule's
  // description): itself when clean, masked when it holds a secret, empty when the engine fails
  // on it (nothing unscanned is shown). The findings are not reported.
  std::string printable_text(std::string_view text);
  // `raw_clean`: the caller knows the scanner finds nothing in `unit` as it stands (a batch
  // prefilter, Scanner::lines_with_events, saw no match event in it), so the raw scan is skipped
  // and only what escapes hide is looked for. `padded`: the kJsonPadding bytes after `unit` are
  // readable (what they hold does not matter), so simdjson parses it where it is instead of
  // copying it first (a megabyte's copy, and its fresh pages on a first large message).
  RedactStatus redact_json(std::string_view unit, std::string& out, Findings& findings,
                           JsonInfo* info = nullptr, bool raw_clean = false, bool padded = false);

  // For a unit too long to hold (a line over --max-line-bytes, read in pieces): masks the longest
  // prefix of `unit` that leaves at least `keep_tail` bytes and that no secret crosses, appends
  // it to `out` and sets `consumed` to its length (0 <= consumed <= unit.size() - keep_tail).
  // The caller keeps unit[consumed..] (original bytes) and prepends it to the next piece, so a
  // secret split between pieces is still found. keep_tail == 0 masks and consumes everything.
  RedactStatus redact_text_prefix(std::string_view unit, size_t keep_tail, std::string& out,
                                  size_t& consumed, Findings& findings);

  // Whether simdjson accepts `unit` as JSON (what redact_json reports in JsonInfo::valid). For a
  // unit that has no "\\" and in which the scanner finds no match event, redact_json would only
  // validate it: a caller that prefilters lines (Scanner::lines_with_events) calls this instead.
  // `padded`: the kJsonPadding bytes after the unit are readable (what they hold does not
  // matter), so the parser reads the unit where it is instead of copying it first.
  static constexpr size_t kJsonPadding = 64;
  bool json_valid(std::string_view unit, bool padded = false);

  // The rest of that prefilter, for a unit with escapes: appends to `block` the decoded text of
  // each string of `unit` that holds an escape (keys too), each followed by "\n", and to `ends`
  // the offset of that "\n". When the scanner finds no match event in `unit` as it stands, none
  // in any of these strings as units of their own, and `unit` is valid JSON (json_valid),
  // redact_json finds nothing in `unit`: it decodes exactly these strings and scans each, and
  // nothing else can differ from the raw scan. A value with escapes after a key, and any value
  // after a key with escapes, is also scanned as `"key": "value"`, both decoded (the value's
  // first kPairValueBytes), as redact_json scans it for the rules that read a key and its value
  // together. Strings that decode to JSON
  // are walked as JSON by redact_json; with no escapes of their own, that walk scans only the
  // string itself. False
  // (`block` and `ends` as they were) when this does not cover the unit: a malformed escape, or a
  // string that decodes to JSON with escapes of its own. Redact such a unit with redact_json.
  bool json_escaped_strings(std::string_view unit, std::string& block, std::vector<size_t>& ends);

  // Large JSON units (kParallelBytes and up) scanned on two threads: the scan of the unit as it
  // stands runs on a helper thread while this one parses it, then scans its large escaped
  // strings as that parse decoded them.
  // Results are those of one thread. For a caller with a CPU to spare (the stdio wrap, which
  // waits on one server); off by default. If no thread can be started, the scan runs here.
  static constexpr size_t kParallelBytes = 256 * 1024;
  // Text passes of redact_json's safety net (each masks what the last one revealed): at least
  // kMaxSafetyPasses, and up to kMaxSafetyPassesSmall while the passes so far and the next one
  // rescan at most kSafetyScanBytes in all. A chain of assignments that masking reveals one by
  // one takes a pass per link: a line of a few kilobytes can hold a hundred links, and a
  // megabyte's rescans cost a millisecond each.
  static constexpr int kMaxSafetyPasses = 16;
  static constexpr int kMaxSafetyPassesSmall = 1024;
  static constexpr size_t kSafetyScanBytes = 4u << 20;
  void set_parallel(bool on);
  // With set_parallel on: starts the helper thread and makes its scanner now, instead of on the
  // first large unit, and hands the thread `also` to run, then the split scan's database to load
  // (`also` runs first: it may prepare the thread's own memory). Returns without waiting for
  // them: the first large unit waits if it comes sooner.
  void prepare_parallel(std::function<void()> also = {});

  // Gives back what scanning large units left allocated: simdjson's buffers, sized for the
  // largest unit so far (a megabyte's tool result left 2-3 MiB), the helper thread (kept between
  // large units until then), its scanner and the scratch strings. For a redactor that lives long and is mostly idle, one per TCP
  // connection; the next large unit allocates again.
  void release_memory();

  Scanner& scanner();
  const CompiledSet& set() const;

  // The mask that replaces a secret from `source` (a SecretSpan source).
  std::string mask_for(uint32_t source, std::string_view secret, const std::string& fingerprint);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace scrub
