#include "filter/redactor.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <future>
#include <optional>
#include <system_error>
#include <unordered_map>

#include "filter/compiled_set_impl.h"
#include "filter/fingerprint.h"
#include "filter/helper_thread.h"
#include "filter/json_string.h"

namespace scrub {

namespace {

constexpr int kMaxNesting = 6;  // JSON inside a JSON string inside ... : levels decoded
// A key-value rule ("password": "...") over a value with an escape: the value is scanned once
// more after its key, `"key": "value"`, the value decoded (Redactor::Impl::pair_spans). Keys
// this long at most, and this much of each value: the key-value rules' widest reach.
constexpr size_t kPairKeyBytes = 128;
constexpr size_t kPairValueBytes = 1024;

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Widens [b, e) so it neither starts nor ends inside a UTF-8 sequence, staying within [lo, hi).
void widen_utf8(std::string_view s, size_t lo, size_t hi, size_t& b, size_t& e) {
  while (b > lo && is_continuation(static_cast<unsigned char>(s[b]))) --b;
  while (e < hi && is_continuation(static_cast<unsigned char>(s[e]))) ++e;
}

// Calls fn(tb, te, escaped) with the content [tb, te) of each string of `unit` and whether it
// holds an escape, pairing quotes from the first one on (as they pair in valid JSON), while fn
// returns true. False if fn stopped it.
template <typename Fn>
bool for_each_string(std::string_view unit, Fn&& fn) {
  for (size_t i = 0; i < unit.size();) {
    const void* q = std::memchr(unit.data() + i, '"', unit.size() - i);
    if (!q) break;
    const size_t tb = static_cast<size_t>(static_cast<const char*>(q) - unit.data()) + 1;
    bool escaped = false;
    const size_t te = json_string_end(unit, tb, &escaped);
    i = te + 1;
    if (!fn(tb, te, escaped)) return false;
  }
  return true;
}

// Appends to `out` the decoded text of the strings of `e` numbered `wanted` (ascending), counting
// from `k` every string, keys too, in document order: the order for_each_string meets them in
// the unit, when the unit is valid JSON. Views into the parser's buffer.
void dom_strings(simdjson::dom::element e, const std::vector<size_t>& wanted, size_t& k,
                 std::vector<std::string_view>& out) {
  auto take = [&](std::string_view s) {
    if (out.size() < wanted.size() && k++ == wanted[out.size()]) out.push_back(s);
  };
  switch (e.type()) {
    case simdjson::dom::element_type::STRING:
      take(e.get_string().value_unsafe());
      break;
    case simdjson::dom::element_type::ARRAY: {
      const simdjson::dom::array a = e.get_array().value_unsafe();
      for (simdjson::dom::element v : a) {
        if (out.size() == wanted.size()) return;
        dom_strings(v, wanted, k, out);
      }
      break;
    }
    case simdjson::dom::element_type::OBJECT: {
      const simdjson::dom::object o = e.get_object().value_unsafe();
      for (simdjson::dom::key_value_pair kv : o) {
        if (out.size() == wanted.size()) return;
        take(kv.key);
        dom_strings(kv.value, wanted, k, out);
      }
      break;
    }
    default:
      break;
  }
}

// Appends the unit a value is scanned as after its key, `"key": "value"` (the value's first
// kPairValueBytes); returns where the value starts in `out`. Redactor::Impl::pair_spans and
// Redactor::json_escaped_strings scan exactly this.
size_t append_pair_unit(std::string_view key, std::string_view value, std::string& out) {
  out += '"';
  out += key;
  out += "\": \"";
  const size_t at = out.size();
  out.append(value.substr(0, std::min(value.size(), kPairValueBytes)));
  out += '"';
  return at;
}

// The first index at or after `i` that is not a JSON blank (or the unit's end).
size_t skip_json_blanks(std::string_view unit, size_t i) {
  while (i < unit.size() && json_blank(unit[i])) ++i;
  return i;
}

bool looks_like_json(std::string_view s) {
  const size_t i = skip_json_blanks(s, 0);
  return i < s.size() && (s[i] == '{' || s[i] == '[');
}

bool identifier_like(std::string_view k) {
  if (k.empty() || k.size() > 64) return false;
  for (char c : k)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '$' || c == '@'))
      return false;
  return true;
}

struct Edit {
  size_t begin, end;
  std::string text;
};

std::string apply_edits(std::string_view unit, const std::vector<Edit>& edits) {
  std::string out;
  out.reserve(unit.size() + 64 * edits.size());
  size_t pos = 0;
  for (const Edit& e : edits) {
    out.append(unit.substr(pos, e.begin - pos));
    out += e.text;
    pos = e.end;
  }
  out.append(unit.substr(pos));
  return out;
}

// The partial style keeps a self-identifying, non-secret prefix such as `sk_live_`, `ghp_` or
// `xoxb-`: up to two groups of letters each ending in `_` or `-`, and never more than leaves 8
// bytes masked.
size_t derived_prefix(std::string_view secret) {
  size_t i = 0, kept = 0;
  for (int group = 0; group < 2; ++group) {
    size_t j = i;
    while (j < secret.size() && j - i < 10 && std::isalpha(static_cast<unsigned char>(secret[j]))) ++j;
    if (j - i < 2 || j >= secret.size() || (secret[j] != '_' && secret[j] != '-')) break;
    i = j + 1;
    kept = i;
  }
  return kept + 8 <= secret.size() ? kept : 0;
}

}  // namespace

// A large escaped string decoded and scanned while the unit's own scan ran on the helper thread
// (Redactor::set_parallel).
struct PreScan {
  size_t tb = 0, te = 0;  // the string's content in the unit, quotes excluded
  std::string decoded;    // held only when the walk runs (KnownScan::all_clean is false)
  std::vector<SecretSpan> spans;
  OffsetMap offs;         // decoded -> raw, when has_offs (else the walk maps it if it must)
  bool has_offs = false;
};

// What is known of a unit's scan before its walk: its own spans, and large strings decoded and
// scanned ahead (Redactor::set_parallel). An empty one: the unit is known to scan clean.
struct KnownScan {
  std::vector<SecretSpan> raw;
  std::vector<PreScan> pre;
  // Some string holds an escape and is not in `pre` (small, nested JSON, or malformed): only the
  // walk decodes and scans it.
  bool unscanned_escapes = false;

  // Nothing to find: no raw span, every escaped string scanned ahead and clean. The walk would
  // only confirm it.
  bool all_clean() const {
    return raw.empty() && !unscanned_escapes &&
           std::all_of(pre.begin(), pre.end(), [](const PreScan& p) { return p.spans.empty(); });
  }
};

struct Redactor::Impl {
  explicit Impl(std::shared_ptr<const CompiledSet> s) : set_ptr(s), scanner(std::move(s)) {}
  std::shared_ptr<const CompiledSet> set_ptr;
  Scanner scanner;
  simdjson::dom::parser parser;
  std::vector<SecretSpan> spans;
  bool parallel = false;
  std::unique_ptr<Scanner> helper;  // its own scratch, for the helper thread
  Scanner& helper_scanner() {
    if (!helper) helper = std::make_unique<Scanner>(set_ptr);
    return *helper;
  }
  // The helper thread, kept from one large unit to the next (release_memory ends it); null when
  // none could be started, and the helper's work then runs on this thread.
  std::unique_ptr<HelperThread> thread;
  // Redactor::prepare_parallel's work on the helper thread, waited for before the thread is
  // used again (or ends): destroyed before `thread`, `helper` and the set.
  HelperThread::Job prepared;
  HelperThread* helper_thread() {
    prepared = {};  // waits for it, if any
    if (!thread) {
      try {
        thread = std::make_unique<HelperThread>();
      } catch (const std::system_error&) {
      }
    }
    return thread.get();
  }
  std::string decoded_scratch;       // json_escaped_strings
  std::string pair_unit;             // pair_spans
  std::vector<SecretSpan> pair_found;
  // redact_text_after: the two lines as one unit, its output and findings (reused: the wrap's
  // and tcp's stderr pair every clean line with the one before it).
  std::string after_unit, after_out;
  Findings after_findings;
  std::unordered_map<std::string, bool> pair_keys;  // pair_key: the keys asked, and the answers

  // Whether a key may take part in a key-value rule's match: it holds a keyword of a rule whose
  // regex reads text before its secret ("pass", "key", "token", ...; a rule whose regex begins
  // with its secret, a self-identifying format such as `AC` + 32 hex, reads nothing of a key).
  // Keys such as "text", "content", "msg" or "stack" hold none, and their values (an MCP tool
  // result, a stack trace) are not scanned twice. Answers are kept per key.
  bool pair_key(std::string_view key) {
    if (pair_keys.size() > 4096) pair_keys.clear();
    auto [it, fresh] = pair_keys.try_emplace(std::string(key), false);
    if (!fresh) return it->second;
    for (const std::string& k : set().context_keywords)
      if (contains_ci(key, k)) return it->second = true;
    return false;
  }

  // A rule that reads a key and its value together (`"password": "..."`) meets an escape inside
  // the value in the raw bytes (a non-ASCII character written \u00e9, as Python's json.dumps
  // writes it; a slash written \/, as PHP does), and the decoded value alone lacks the key: so
  // the value is also scanned after its key, as `"key": "value"` with (the first
  // kPairValueBytes of) the value decoded. Appends the spans found in the value, in `value`'s
  // offsets. False on a scan error.
  bool pair_spans(std::string_view key, std::string_view value, std::vector<SecretSpan>& out) {
    pair_unit.clear();
    const size_t at = append_pair_unit(key, value, pair_unit);
    const size_t n = std::min(value.size(), kPairValueBytes);
    pair_found.clear();
    if (scanner.find(pair_unit, pair_found) != ScanStatus::kOk) return false;
    for (const SecretSpan& sp : pair_found) {
      if (sp.begin < at || sp.begin >= at + n) continue;  // the key's own are its token's
      size_t e = std::min(sp.end - at, n);
      // A secret that is the value and stops at a quote or backslash the value holds (written
      // \" or \\): the rule's value class ends there, the value does not; all of it is masked.
      if (sp.begin == at && e < value.size() && (value[e] == '"' || value[e] == '\\'))
        e = value.size();
      out.push_back({sp.begin - at, e, sp.source});
    }
    return true;
  }

  // Strings this large (as written) are scanned ahead, decoded, while the walk has not begun.
  static constexpr size_t kPreScanBytes = 64 * 1024;

  // Whether the unit is JSON (`valid`), its own scan into `known.raw`, and the large escaped
  // strings that do not hold JSON scanned decoded into `known.pre` (ordered by position), on two
  // threads: the helper scans the unit as it stands and finds its strings while this thread
  // parses it; then this thread scans the large strings as that parse decoded them, so none is
  // decoded twice. Meanwhile the helper maps back to the unit (json_offset_map) the large strings
  // its scan found something in: the walk masks there. (A string whose secret only its decoded
  // text shows is mapped by the walk.) When the helper has no map to make, the decoded strings
  // are scanned on both threads (Scanner::find_split; its pass of the unbounded rules over the
  // whole string cost as much as a plain scan over a tool result's words until the rules' own
  // prefilters counted as bounded). False on a scan error (fail closed, as a serial scan).
  bool scan_parallel(std::string_view unit, KnownScan& known, bool& valid, JsonInfo* info, bool padded) {
    Scanner& help = helper_scanner();
    struct Large {
      size_t index, tb, te;  // its number among the unit's strings (keys too), its content
    };
    std::vector<Large> large;
    std::vector<OffsetMap> maps;   // per large string, made by the helper after `scanned`
    std::vector<uint8_t> mapped;   // which of `maps` it made
    bool small_escapes = false;
    std::promise<ScanStatus> scanned;  // the unit's own scan, and `large`, are done
    std::future<ScanStatus> scan_status = scanned.get_future();
    // Whether the unit's own scan found something in a large string (read after `scanned`): the
    // helper then maps it back to the unit, and the pump does not hand the helper more work.
    auto raw_hit = [&](const Large& l) {
      return std::any_of(known.raw.begin(), known.raw.end(),
                         [&](const SecretSpan& sp) { return sp.begin < l.te && sp.end > l.tb; });
    };
    auto helper_part = [&] {  // the pump thread leaves `helper` to it meanwhile
      ScanStatus st = ScanStatus::kError;
      try {
        st = help.find(unit, known.raw);
        size_t k = 0;
        for_each_string(unit, [&](size_t tb, size_t te, bool escaped) {
          if (escaped && te - tb >= kPreScanBytes) large.push_back({k, tb, te});
          else small_escapes = small_escapes || escaped;
          ++k;
          return true;
        });
        maps.resize(large.size());
        mapped.assign(large.size(), 0);
      } catch (...) {  // (bad_alloc) told, not thrown: this thread waits on `scanned`
        st = ScanStatus::kError;
      }
      scanned.set_value(st);
      if (st != ScanStatus::kOk) return;
      try {
        for (size_t i = 0; i < large.size(); ++i) {
          const Large& l = large[i];
          if (raw_hit(l)) mapped[i] = json_offset_map(unit.substr(l.tb, l.te - l.tb), &maps[i]);
        }
      } catch (...) {  // (bad_alloc) the walk maps what is left
      }
    };
    HelperThread::Job helper_done;  // declared after what it uses: waited for before they go
    // No thread to be had (helper_thread() is null): the helper's part runs here, after the parse.
    if (HelperThread* t = helper_thread()) helper_done = t->run(helper_part);
    simdjson::dom::element root;
    valid = !parser.parse(unit.data(), unit.size(), !padded).get(root);
    if (!helper_done.valid()) helper_part();
    if (scan_status.get() != ScanStatus::kOk) return false;
    if (valid && info && info->on_parsed) info->on_parsed(root);
    known.unscanned_escapes = small_escapes;
    if (!valid || large.empty()) return true;  // (not JSON: not_json scans it again)
    std::vector<size_t> wanted;
    for (const Large& l : large) wanted.push_back(l.index);
    std::vector<std::string_view> texts;
    size_t k = 0;
    dom_strings(root, wanted, k, texts);
    if (texts.size() != large.size()) {  // cannot happen in valid JSON; the walk then decodes
      known.unscanned_escapes = true;
      return true;
    }
    // When the unit's own scan found nothing in a large string, the helper has no map to make
    // and is done (or nearly): the large strings are then scanned on both threads.
    const bool helper_free = std::none_of(large.begin(), large.end(), raw_hit);
    if (helper_free && helper_done.valid()) helper_done.get();  // joins
    std::vector<size_t> pre_of;  // the entry of `large` each of known.pre is
    for (size_t i = 0; i < large.size(); ++i) {
      if (looks_like_json(texts[i])) {  // walked as JSON in its turn
        known.unscanned_escapes = true;
        continue;
      }
      PreScan p{large[i].tb, large[i].te, {}, {}, {}, false};
      const ScanStatus st = helper_free
                                ? scanner.find_split(texts[i], help, p.spans, 0, thread.get())
                                : scanner.find(texts[i], p.spans);
      if (st != ScanStatus::kOk) return false;
      known.pre.push_back(std::move(p));
      pre_of.push_back(i);
    }
    if (known.all_clean()) return true;
    // The walk reads these strings decoded (to mask them, to read a key, to scan a value after
    // its key); the parser's buffer is gone by then (JSON in a string is parsed in its turn).
    if (helper_done.valid()) helper_done.get();  // joins
    for (size_t j = 0; j < known.pre.size(); ++j) {
      PreScan& p = known.pre[j];
      p.decoded.assign(texts[pre_of[j]]);
      if (mapped[pre_of[j]]) {
        p.offs = std::move(maps[pre_of[j]]);
        p.has_offs = true;
      }
    }
    return true;
  }

  // The safety net's scan of masked output: split over two threads when this redactor may use
  // two (a pump's large messages), as find() otherwise. The same spans either way.
  ScanStatus rescan(std::string_view unit, std::vector<SecretSpan>& out) {
    if (!parallel || unit.size() < Scanner::kSplitBytes) return scanner.find(unit, out);
    return scanner.find_split(unit, helper_scanner(), out, 0, helper_thread());
  }

  const CompiledSet::Impl& set() const { return scanner.set().impl(); }

  std::string fingerprint(uint32_t source, std::string_view secret) const {
    const auto& s = set();
    if (s.is_literal(source)) return s.literal(source).fingerprint;
    return hmac_fingerprint(s.options.fingerprint_key, secret, s.options.fingerprint_hex);
  }

  std::string mask(uint32_t source, std::string_view secret, const std::string& fp) const {
    const auto& s = set();
    const std::string id = s.source_id(source);
    switch (s.mask(source)) {
      case MaskStyle::kFixed: return s.options.fixed_text;
      case MaskStyle::kHash: return "[REDACTED:" + id + ":" + fp + "]";
      case MaskStyle::kPartial: {
        int keep = s.is_literal(source) ? -1 : s.rules[source].rule.keep_prefix;
        size_t k = keep >= 0 ? std::min<size_t>(keep, secret.size() / 2) : derived_prefix(secret);
        // Never half a character: the masked text must stay valid UTF-8 (and valid JSON).
        while (k > 0 && is_continuation(static_cast<unsigned char>(secret[k]))) --k;
        return std::string(secret.substr(0, k)) + "[REDACTED:" + id + "]";
      }
      case MaskStyle::kLabel: break;
    }
    return "[REDACTED:" + id + "]";
  }

  Finding finding(uint32_t source, std::string_view secret, size_t offset, size_t length,
                  std::string path, bool encoded, const std::string& fp) const {
    const auto& s = set();
    Finding f;
    f.rule_id = s.source_id(source);
    if (s.is_literal(source)) {
      f.secret_name = s.literal(source).name;
      f.known_literal = true;
    }
    f.offset = offset;
    f.length = length;
    f.json_path = std::move(path);
    f.fingerprint = fp;
    f.severity = s.severity(source);
    f.action = s.action(source);
    f.encoded = encoded;
    return f;
  }

  // The edits that mask `spans` (sorted, disjoint) of `text`, appended to `edits`, with a finding
  // each; offsets in findings are mapped through `offs` (decoded -> raw) when given, and shifted
  // by `base`.
  void span_edits(std::string_view text, const std::vector<SecretSpan>& spans, Findings& findings,
                  const std::string& path, size_t base, const OffsetMap* offs, bool encoded,
                  std::vector<Edit>& edits) {
    for (const SecretSpan& sp : spans) {
      size_t b = sp.begin, e = sp.end;
      widen_utf8(text, 0, text.size(), b, e);
      std::string_view secret = text.substr(b, e - b);
      std::string fp = fingerprint(sp.source, secret);
      edits.push_back({b, e, mask(sp.source, secret, fp)});
      size_t rb = offs ? offs->to_raw(b) : b;
      size_t re = offs ? offs->to_raw(e) : e;
      findings.push_back(finding(sp.source, secret, base + rb, re - rb, path, encoded, fp));
    }
  }

  // `text` with `spans` masked (span_edits, then applied).
  std::string mask_spans(std::string_view text, const std::vector<SecretSpan>& spans,
                         Findings& findings, std::vector<Edit>* edits_out = nullptr) {
    std::vector<Edit> local_edits;
    std::vector<Edit>& edits = edits_out ? *edits_out : local_edits;
    span_edits(text, spans, findings, "", 0, nullptr, false, edits);
    return apply_edits(text, edits);
  }

  // `known`: the spans of `unit`, when its scan was done already (null: scanned here).
  RedactStatus text(std::string_view unit, std::string& out, Findings& findings,
                    std::vector<Edit>* edits = nullptr,
                    const std::vector<SecretSpan>* known = nullptr) {
    spans.clear();
    if (known) spans = *known;
    else if (scanner.find(unit, spans) != ScanStatus::kOk) return RedactStatus::kError;
    if (spans.empty()) return RedactStatus::kClean;
    std::vector<SecretSpan> local = spans;
    out = mask_spans(unit, local, findings, edits);
    return RedactStatus::kMasked;
  }

  // `raw_known`: the spans the scan of `unit` itself finds, when that scan was done already
  // (empty: redact_json's raw_clean; a string's decoded text scanned by the walk around it);
  // null: scanned here. `padded` (redact_json's): simdjson may read kJsonPadding bytes past the
  // unit, so it parses in place.
  RedactStatus json(std::string_view unit, std::string& out, Findings& findings, JsonInfo* info,
                    int depth, const std::string& path_prefix,
                    const std::vector<SecretSpan>* raw_known = nullptr, bool padded = false);
  // json() on a unit that is not JSON to simdjson.
  RedactStatus not_json(std::string_view unit, std::string& out, Findings& findings, int depth,
                        const std::string& path_prefix, const std::vector<SecretSpan>* raw_known);
  // The token walk of json(): masks inside (decoded) strings, keys and scalars.
  // `lenient`: the unit is not JSON (not_json); scalars are left to the text pass. `edits_out`
  // receives the edits made. `known`: the unit's scan, when done already (null: done here).
  // `raw_out` receives the spans of the unit's own scan.
  RedactStatus walk(std::string_view unit, std::string& out, Findings& findings, int depth,
                    const std::string& path_prefix, bool lenient = false,
                    std::vector<Edit>* edits_out = nullptr, KnownScan* known = nullptr,
                    std::vector<SecretSpan>* raw_out = nullptr);
};

namespace {

// One container level of the JSON walk.
struct Frame {
  bool object;
  bool expect_key;
  size_t index;
  std::string key;     // display form of the current key
  // The current key, decoded, for the rules that read a key and its value together (empty when
  // longer than kPairKeyBytes or malformed).
  std::string member;
  // It was written with escapes (`"pass\u0077ord"`, `"db\/password"`): the raw scan never saw
  // it before its value, so every value after it is scanned after it too (pair_spans).
  bool member_escaped = false;
};

// Whether unit[from, to) is a member's colon: JSON blanks around one ':'.
bool colon_between(std::string_view unit, size_t from, size_t to) {
  bool colon = false;
  for (size_t i = from; i < to; ++i) {
    const char c = unit[i];
    if (c == ':' && !colon) colon = true;
    else if (!json_blank(c)) return false;
  }
  return colon;
}

// The end of the scalar token (a number, true, false, null) that starts at unit[i]: the next
// ',', '}', ']' or blank, or the unit's end.
size_t scalar_end(std::string_view unit, size_t i) {
  while (i < unit.size() && unit[i] != ',' && unit[i] != '}' && unit[i] != ']' &&
         !json_blank(unit[i]))
    ++i;
  return i;
}

std::string path_of(const std::vector<Frame>& stack, const std::string& prefix) {
  std::string p = prefix;
  for (const Frame& f : stack) {
    if (f.object) {
      if (!p.empty() && p.back() != '>') p += '.';
      p += f.key;
    } else {
      p += '[' + std::to_string(f.index) + ']';
    }
  }
  return p;
}

}  // namespace

RedactStatus Redactor::Impl::json(std::string_view unit, std::string& out, Findings& findings,
                                  JsonInfo* info, int depth, const std::string& path_prefix,
                                  const std::vector<SecretSpan>* raw_known, bool padded) {
  KnownScan known;  // the unit's spans, when raw_known gives them
  if (raw_known) known.raw = *raw_known;
  const bool two_threads = !raw_known && parallel && depth == 0 && unit.size() >= kParallelBytes;
  bool valid = false;
  if (two_threads) {
    if (!scan_parallel(unit, known, valid, info, padded)) return RedactStatus::kError;
  } else {
    simdjson::dom::element root;
    valid = !parser.parse(unit.data(), unit.size(), !padded).get(root);
    if (valid && info && info->on_parsed && depth == 0) info->on_parsed(root);
  }
  if (!valid) {  // (a large unit that is not JSON is scanned again, serially, by not_json)
    if (info) info->valid = false;
    return not_json(unit, out, findings, depth, path_prefix, raw_known);
  }
  if (info) info->valid = true;
  if (two_threads && known.all_clean()) return RedactStatus::kClean;
  return walk(unit, out, findings, depth, path_prefix, false, nullptr,
              raw_known || two_threads ? &known : nullptr);
}

RedactStatus Redactor::Impl::not_json(std::string_view unit, std::string& out, Findings& findings,
                                      int depth, const std::string& path_prefix,
                                      const std::vector<SecretSpan>* raw_known) {
  // Not JSON to simdjson (a lone surrogate in a \u escape, nesting deeper than its limit), yet a
  // lenient client may still parse the line and decode its strings: first mask what escapes hide,
  // in the strings as the line's own quotes delimit them, then mask the result as text.
  std::string walked;
  std::vector<Edit> walk_edits;
  RedactStatus st = RedactStatus::kClean;
  // The unit's own spans, once known: the walk scans it, unless raw_known gives them. When the
  // walk changes nothing, the text pass masks those instead of scanning the same bytes again
  // (a tool result of NDJSON log lines held in a string took four scans, then three, now two:
  // the walk around it hands its scan of the decoded text in).
  std::vector<SecretSpan> raw;
  bool have_raw = raw_known != nullptr;
  if (raw_known) raw = *raw_known;
  if (std::memchr(unit.data(), '\\', unit.size())) {
    KnownScan given;
    if (raw_known) given.raw = *raw_known;
    st = walk(unit, walked, findings, depth, path_prefix, true, &walk_edits,
              raw_known ? &given : nullptr, &raw);
    if (st == RedactStatus::kError) return st;
    have_raw = true;
  }
  std::string_view cur = st == RedactStatus::kMasked ? std::string_view(walked) : unit;
  Findings local;
  RedactStatus st2 =
      text(cur, out, local, nullptr, st != RedactStatus::kMasked && have_raw ? &raw : nullptr);
  if (st2 == RedactStatus::kError) return st2;
  // Offsets in the walked line back to the unit (a position inside an edit: the edit's start).
  auto to_unit = [&](size_t o) {
    long long shift = 0;
    for (const Edit& e : walk_edits) {
      size_t ob = static_cast<size_t>(static_cast<long long>(e.begin) + shift);
      if (o < ob) break;
      if (o < ob + e.text.size()) return e.begin;
      shift += static_cast<long long>(e.text.size()) - static_cast<long long>(e.end - e.begin);
    }
    return std::min(unit.size(), static_cast<size_t>(static_cast<long long>(o) - shift));
  };
  for (auto& f : local) {
    size_t b = to_unit(f.offset), e = std::max(b, to_unit(f.offset + f.length));
    f.offset = b;
    f.length = e - b;
    f.json_path = path_prefix;
    findings.push_back(std::move(f));
  }
  if (st2 == RedactStatus::kMasked) return st2;
  if (st == RedactStatus::kMasked) out = std::move(walked);
  return st;
}

RedactStatus Redactor::Impl::walk(std::string_view unit, std::string& out, Findings& findings,
                                  int depth, const std::string& path_prefix, bool lenient,
                                  std::vector<Edit>* edits_out, KnownScan* known,
                                  std::vector<SecretSpan>* raw_out) {
  spans.clear();
  std::vector<PreScan> pre;  // large strings decoded and scanned beside the unit's own scan
  if (known) {
    spans = std::move(known->raw);
    pre = std::move(known->pre);
  } else if (scanner.find(unit, spans) != ScanStatus::kOk) {
    return RedactStatus::kError;
  }
  if (raw_out) *raw_out = spans;
  const bool has_escape = std::memchr(unit.data(), '\\', unit.size()) != nullptr;
  if (spans.empty() && !has_escape) return RedactStatus::kClean;
  const std::vector<SecretSpan> raw_spans = spans;  // find() below reuses `spans`

  std::vector<Edit> edits;
  std::vector<Frame> stack;
  size_t si = 0;  // first raw span that may intersect the current token
  const size_t n = unit.size();
  size_t i = 0;
  std::string decoded, masked;
  OffsetMap offs;
  // This string's entry of `pre`, its decoded text and offset map moved into `decoded`, `offs`.
  size_t pi = 0;
  auto pre_at = [&](size_t tb) -> const PreScan* {
    while (pi < pre.size() && pre[pi].tb < tb) ++pi;
    return pi < pre.size() && pre[pi].tb == tb ? &pre[pi] : nullptr;
  };
  auto prescanned = [&](size_t tb) -> PreScan* {
    if (!pre_at(tb)) return nullptr;
    decoded = std::move(pre[pi].decoded);
    if (pre[pi].has_offs) offs = std::move(pre[pi].offs);
    return &pre[pi];
  };

  // A raw span masks only the token it starts in (or the next one, when it starts between
  // tokens): a rule whose secret may hold `"` runs on past the string's end into the JSON around
  // it, and the keys and ids it runs over are not secret.
  size_t floor = 0;  // end of the previous token
  auto spans_in = [&](size_t tb, size_t te, std::vector<SecretSpan>& hit) {
    while (si < raw_spans.size() && raw_spans[si].end <= tb) ++si;
    for (size_t j = si; j < raw_spans.size() && raw_spans[j].begin < te; ++j)
      if (raw_spans[j].begin >= floor) hit.push_back(raw_spans[j]);
    floor = te;
  };

  // The key the current value is read with by the key-value rules (pair_spans), or null: the
  // key of an object member that holds such a rule's keyword and, with `escaped_only`, was
  // written with escapes (the raw scan read any other key with its value as they stand).
  auto pair_member = [&](bool escaped_only) -> const std::string* {
    if (stack.empty() || !stack.back().object || stack.back().member.empty() ||
        (escaped_only && !stack.back().member_escaped))
      return nullptr;
    return pair_key(stack.back().member) ? &stack.back().member : nullptr;
  };

  std::vector<SecretSpan> hit;
  while (i < n) {
    char c = unit[i];
    switch (c) {
      case ' ': case '\t': case '\n': case '\r': case ':':
        if (c == ':' && !stack.empty()) stack.back().expect_key = false;
        ++i;
        continue;
      case '{': stack.push_back({true, true, 0, "?", ""}); ++i; continue;
      case '[': stack.push_back({false, false, 0, "", ""}); ++i; continue;
      case '}': case ']': if (!stack.empty()) stack.pop_back(); ++i; continue;
      case ',':
        if (!stack.empty()) {
          if (stack.back().object) stack.back().expect_key = true;
          else ++stack.back().index;
        }
        ++i;
        continue;
      default: break;
    }
    if (c == '"') {
      bool escaped = false;
      const size_t tb = i + 1;
      // A string scanned ahead is a megabyte, say, whose end is known: not looked for again.
      const PreScan* ahead = pre_at(tb);
      const size_t te = ahead ? ahead->te : json_string_end(unit, tb, &escaped);
      if (ahead) escaped = true;
      i = te + 1;
      const bool is_key = !stack.empty() && stack.back().object && stack.back().expect_key;
      hit.clear();
      spans_in(tb, te, hit);
      std::string_view raw = unit.substr(tb, te - tb);
      bool tainted = false;
      PreScan* ps = nullptr;  // set with the decoded text when the string was scanned ahead
      bool decoded_ok = false;  // `decoded` holds this string, unescaped
      // A value without escapes after a key with some: it takes the decoding path (its decoded
      // text is itself) for the scan after its key there.
      const bool after_escaped_key = !escaped && !is_key && pair_member(true);
      if (!escaped && !after_escaped_key) {
        if (!hit.empty()) {
          tainted = true;
          std::string path = path_of(stack, path_prefix);
          for (const SecretSpan& sp : hit) {
            size_t b = std::max(sp.begin, tb), e = std::min(sp.end, te);
            widen_utf8(unit, tb, te, b, e);
            std::string_view secret = unit.substr(b, e - b);
            std::string fp = fingerprint(sp.source, secret);
            edits.push_back({b, e, mask(sp.source, secret, fp)});
            findings.push_back(finding(sp.source, secret, b, e - b, path, false, fp));
          }
        }
      } else if ((ps = prescanned(tb)) != nullptr ||
                 json_unescape_mapped(raw, decoded, hit.empty() ? nullptr : &offs)) {
        // (A malformed escape occurs only in a unit that is not JSON: its bytes were scanned as
        // text.) The offset map is only needed when something is found; most strings are clean.
        decoded_ok = true;
        bool have_offs = ps ? ps->has_offs : !hit.empty();
        auto need_offs = [&] {
          if (!have_offs) {
            json_offset_map(raw, &offs);
            have_offs = true;
          }
        };
        Findings local;
        std::string path;  // built only when this string holds something
        auto need_path = [&]() -> const std::string& {
          if (path.empty()) path = path_of(stack, path_prefix);
          return path;
        };
        RedactStatus st = RedactStatus::kClean;
        bool nested = false;
        // The decoded text's own scan, made once for a string that may hold JSON: the nested
        // pass takes it, and so does the flat pass below when the string turns out not to be
        // JSON (an NDJSON log: lines that each are, the whole not) or the nested pass missed
        // a raw hit.
        std::optional<std::vector<SecretSpan>> decoded_spans;
        // (A value as written, after an escaped key, is scanned only after the key: the raw scan
        // covered it, and JSON inside a string needs escapes.)
        if (escaped && depth < kMaxNesting && looks_like_json(decoded)) {
          if (scanner.find(decoded, decoded_spans.emplace()) != ScanStatus::kOk)
            return RedactStatus::kError;
          // simdjson reads up to kJsonPadding bytes past a text: with them in `decoded`'s own
          // buffer (what they hold does not matter) it parses the text where it is instead of
          // copying it first (a megabyte, for a log held in a tool result).
          const size_t len = decoded.size();
          decoded.append(kJsonPadding, ' ');
          decoded.resize(len);
          JsonInfo ni;
          st = json(decoded, masked, local, &ni, depth + 1, need_path() + ">", &*decoded_spans,
                    /*padded=*/true);
          if (st == RedactStatus::kError) return st;
          // Not JSON to simdjson but masked by the lenient pass (not_json) counts as JSON too.
          nested = ni.valid || st == RedactStatus::kMasked;
          if (nested && st == RedactStatus::kMasked) need_offs();
          if (nested) {
            for (auto& f : local) {  // offsets within the decoded text -> raw unit
              size_t rb = offs.to_raw(std::min(f.offset, offs.size() - 1));
              size_t re = offs.to_raw(std::min(f.offset + f.length, offs.size() - 1));
              f.offset = tb + rb;
              f.length = re - rb;
              f.encoded = true;
            }
          } else {
            local.clear();
          }
          // A raw hit in this string that the nested pass did not find (a match that an escape
          // ends, such as a token cut by "\ud83d": the decoded text runs on past it): the
          // string is masked flat instead, raw hits included. Found by fuzz_json_line.
          if (nested && !hit.empty()) {
            for (const SecretSpan& sp : hit) {
              const bool covered = std::any_of(local.begin(), local.end(), [&](const Finding& f) {
                return f.offset < sp.end && sp.begin < f.offset + f.length;
              });
              if (!covered) {
                nested = false;
                local.clear();
                break;
              }
            }
          }
        }
        if (!nested) {
          spans.clear();
          if (ps) spans = std::move(ps->spans);
          else if (decoded_spans) spans = std::move(*decoded_spans);
          else if (escaped && scanner.find(decoded, spans) != ScanStatus::kOk)
            return RedactStatus::kError;
          const std::string* key = is_key ? nullptr : pair_member(false);
          if (key && !pair_spans(*key, decoded, spans)) return RedactStatus::kError;
          // Spans the raw scan found inside this token (an escaped form of a known value),
          // moved to decoded offsets.
          if (!hit.empty()) need_offs();
          for (const SecretSpan& sp : hit) {
            size_t rb = std::max(sp.begin, tb) - tb, re = std::min(sp.end, te) - tb;
            size_t db = offs.first_after(rb);
            db = db ? db - 1 : 0;
            size_t de = offs.first_at_or_after(re);
            de = std::min(de, decoded.size());
            if (de > db) spans.push_back({db, de, sp.source});
          }
          if (!spans.empty()) {
            need_offs();
            std::sort(spans.begin(), spans.end(), [](const SecretSpan& a, const SecretSpan& b) {
              return a.begin < b.begin;
            });
            std::vector<SecretSpan> merged;
            for (const SecretSpan& sp : spans) {
              if (!merged.empty() && sp.begin < merged.back().end) {
                merged.back().end = std::max(merged.back().end, sp.end);
                if (set().tier(sp.source) < set().tier(merged.back().source))
                  merged.back().source = sp.source;
              } else {
                merged.push_back(sp);
              }
            }
            // Each masked span of the decoded text replaces the escape sequences it came
            // from; the rest of the string stays byte for byte as it was written (spans lie on
            // character boundaries, and each character comes from whole escape sequences).
            std::vector<Edit> decoded_edits;
            span_edits(decoded, merged, local, need_path(), tb, &offs, escaped, decoded_edits);
            for (const Edit& de : decoded_edits) {
              std::string enc;
              json_escape_append(de.text, enc);
              edits.push_back({tb + offs.to_raw(de.begin), tb + offs.to_raw(de.end), std::move(enc)});
            }
            tainted = true;
            for (auto& f : local) findings.push_back(std::move(f));
          }
        }
        if (nested && st == RedactStatus::kMasked) {
          tainted = true;
          std::string enc;
          json_escape_append(masked, enc);
          edits.push_back({tb, te, std::move(enc)});
          for (auto& f : local) findings.push_back(std::move(f));
        }
      }
      if (is_key) {
        std::string_view k = raw;
        const std::string_view member = escaped ? std::string_view(decoded) : k;
        stack.back().key =
            (!tainted && (!escaped || decoded_ok) && identifier_like(member)) ? std::string(member)
                                                                               : "?";
        stack.back().member_escaped = escaped;
        stack.back().member = (!escaped || decoded_ok) && member.size() <= kPairKeyBytes
                                  ? std::string(member)
                                  : "";
      }
      continue;
    }
    // A number, true, false or null.
    size_t tb = i;
    i = scalar_end(unit, i);
    hit.clear();
    spans_in(tb, i, hit);
    // After a key written with escapes the raw scan never read the key with this value: it is
    // scanned after its decoded key, as a string value is (json_escaped_strings does the same).
    const std::string* key = hit.empty() && !lenient && i > tb ? pair_member(true) : nullptr;
    if (key) {
      std::vector<SecretSpan> paired;
      if (!pair_spans(*key, unit.substr(tb, i - tb), paired)) return RedactStatus::kError;
      if (!paired.empty()) hit.push_back(paired[0]);
    }
    if (!hit.empty() && !lenient) {
      // A secret in a number: the number becomes a masked string (the value must not survive).
      std::string_view secret = unit.substr(tb, i - tb);
      std::string fp = fingerprint(hit[0].source, secret);
      edits.push_back({tb, i, "\"" + mask(hit[0].source, secret, fp) + "\""});
      findings.push_back(finding(hit[0].source, secret, tb, i - tb, path_of(stack, path_prefix),
                                 false, fp));
    }
  }
  if (edits.empty()) return RedactStatus::kClean;
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  out = apply_edits(unit, edits);
  if (edits_out) *edits_out = std::move(edits);
  return RedactStatus::kMasked;
}

Redactor::Redactor(std::shared_ptr<const CompiledSet> set)
    : impl_(std::make_unique<Impl>(std::move(set))) {}
Redactor::~Redactor() = default;
static_assert(Redactor::kJsonPadding >= simdjson::SIMDJSON_PADDING);

bool Redactor::json_valid(std::string_view unit, bool padded) {
  return !impl_->parser.parse(unit.data(), unit.size(), !padded).error();
}

bool Redactor::json_escaped_strings(std::string_view unit, std::string& block,
                                    std::vector<size_t>& ends) {
  const size_t block_size = block.size(), ends_size = ends.size();
  std::string& decoded = impl_->decoded_scratch;
  auto unit_end = [&] {
    ends.push_back(block.size());
    block.push_back('\n');
  };
  // The string before, the key if a colon follows it: where it is written when it has no
  // escape, else decoded into `prev_decoded`; empty when too long for a key-value scan.
  size_t prev_e = 0;
  bool prev_escaped = false;
  std::string_view prev;
  std::string prev_decoded;
  const bool covered = for_each_string(unit, [&](size_t tb, size_t te, bool escaped) {
    const size_t ke = prev_e;
    const bool key_escaped = prev_escaped;
    const std::string_view key = prev;
    auto pair = [&] {
      return !key.empty() && colon_between(unit, ke + 1, tb - 1) && impl_->pair_key(key);
    };
    prev_escaped = escaped;
    prev_e = te;
    if (!escaped) {
      // After a key without escapes the raw scan saw `"key": "value"` as it is written.
      if (key_escaped && pair()) {
        append_pair_unit(key, unit.substr(tb, te - tb), block);  // what Impl::pair_spans scans
        unit_end();
      }
      prev = te - tb <= kPairKeyBytes ? unit.substr(tb, te - tb) : std::string_view();
      return true;
    }
    if (!json_unescape_mapped(unit.substr(tb, te - tb), decoded, nullptr) ||
        (looks_like_json(decoded) && std::memchr(decoded.data(), '\\', decoded.size())))
      return false;
    block += decoded;
    unit_end();
    if (pair()) {
      append_pair_unit(key, decoded, block);  // what Impl::pair_spans scans
      unit_end();
    }
    // `key` may point into prev_decoded: it is not read after this.
    prev_decoded.assign(decoded.size() <= kPairKeyBytes ? std::string_view(decoded) : "");
    prev = prev_decoded;
    // A member's value that is not a string (a number, true, false, null) after this key: the
    // walk scans it after the key too. (Strings come next in this loop; objects and arrays are
    // not values a key is read with.)
    // (Only a line that is JSON is judged by this prefilter, so the walk's scalar token is
    // found the same way here.)
    size_t p = skip_json_blanks(unit, te + 1);
    if (!prev.empty() && p < unit.size() && unit[p] == ':') {
      p = skip_json_blanks(unit, p + 1);
      const size_t e = p < unit.size() && unit[p] != '"' && unit[p] != '{' && unit[p] != '['
                           ? scalar_end(unit, p)
                           : p;
      if (e > p && impl_->pair_key(prev)) {
        append_pair_unit(prev, unit.substr(p, e - p), block);
        unit_end();
      }
    }
    return true;
  });
  if (!covered) {
    block.resize(block_size);
    ends.resize(ends_size);
  }
  return covered;
}

void Redactor::set_parallel(bool on) { impl_->parallel = on; }
void Redactor::prepare_parallel(std::function<void()> also) {
  Impl& m = *impl_;
  if (!m.parallel) return;
  m.helper_scanner();  // made here, on the caller's thread
  const CompiledSet::Impl& set = m.set();
  auto work = [&set, also = std::move(also)] {
    try {
      if (also) also();
      set.split_db();
    } catch (...) {  // (bad_alloc) the first large unit makes what is missing
    }
  };
  if (HelperThread* t = m.helper_thread()) m.prepared = t->run(std::move(work));
  else work();
}

void Redactor::release_memory() {
  Impl& m = *impl_;
  m.parser = simdjson::dom::parser{};
  m.prepared = {};   // waited for
  m.thread.reset();  // the helper thread (no task: each was waited for)
  m.helper.reset();  // its scanner and Hyperscan scratch
  std::vector<SecretSpan>().swap(m.spans);
  std::vector<SecretSpan>().swap(m.pair_found);
  std::string().swap(m.decoded_scratch);
  std::string().swap(m.pair_unit);
  std::string().swap(m.after_unit);
  std::string().swap(m.after_out);
  Findings().swap(m.after_findings);
}
Scanner& Redactor::scanner() { return impl_->scanner; }
const CompiledSet& Redactor::set() const { return impl_->scanner.set(); }

std::string Redactor::mask_for(uint32_t source, std::string_view secret, const std::string& fp) {
  return impl_->mask(source, secret, fp);
}

RedactStatus Redactor::redact_text(std::string_view unit, std::string& out, Findings& findings) {
  try {
    return impl_->text(unit, out, findings);
  } catch (const std::bad_alloc&) {
    return RedactStatus::kError;
  }
}

RedactStatus Redactor::redact_text_after(std::string_view before, std::string_view line,
                                         std::string& out, Findings& findings) {
  try {
    Impl& m = *impl_;
    std::string& pair = m.after_unit;
    std::string& pair_out = m.after_out;
    Findings& pair_findings = m.after_findings;
    pair.assign(before);
    pair.push_back('\n');
    pair.append(line);
    pair_out.clear();
    pair_findings.clear();
    const RedactStatus st = m.text(pair, pair_out, pair_findings);
    if (st != RedactStatus::kMasked) return st;
    const size_t skip = before.size() + 1;
    if (pair_out.compare(0, skip, pair, 0, skip) != 0) return RedactStatus::kClean;
    size_t kept = 0;
    for (Finding& f : pair_findings)
      if (f.offset >= skip) {
        f.offset -= skip;
        findings.push_back(std::move(f));
        ++kept;
      }
    if (kept == 0) return RedactStatus::kClean;
    out.assign(pair_out, skip);
    return RedactStatus::kMasked;
  } catch (const std::bad_alloc&) {
    return RedactStatus::kError;
  }
}

std::string Redactor::printable_text(std::string_view text) {
  std::string out;
  Findings ignored;
  switch (redact_text(text, out, ignored)) {
    case RedactStatus::kClean: return std::string(text);
    case RedactStatus::kMasked: return out;
    case RedactStatus::kError: break;
  }
  return {};
}

RedactStatus Redactor::redact_text_prefix(std::string_view unit, size_t keep_tail,
                                         std::string& out, size_t& consumed, Findings& findings) {
  try {
    std::vector<SecretSpan> spans;
    if (impl_->scanner.find(unit, spans) != ScanStatus::kOk) return RedactStatus::kError;
    size_t boundary = keep_tail >= unit.size() ? 0 : unit.size() - keep_tail;
    // A secret that ends past the cut is kept for the next piece with its whole rule match: the
    // context its rule needs (`password = `) must come along, or the next scan cannot find it.
    for (bool moved = true; moved;) {
      moved = false;
      for (const SecretSpan& sp : spans) {
        size_t start = std::min(sp.begin, sp.match_begin);
        if (sp.end > boundary && start < boundary) {
          boundary = start;
          moved = true;
        }
      }
    }
    std::vector<SecretSpan> inside;
    for (const SecretSpan& sp : spans)
      if (sp.end <= boundary) inside.push_back(sp);
    consumed = boundary;
    out += impl_->mask_spans(unit.substr(0, boundary), inside, findings);
    return inside.empty() ? RedactStatus::kClean : RedactStatus::kMasked;
  } catch (const std::bad_alloc&) {
    return RedactStatus::kError;
  }
}

RedactStatus Redactor::redact_json(std::string_view unit, std::string& out, Findings& findings,
                                   JsonInfo* info, bool raw_clean, bool padded) {
  try {
    static const std::vector<SecretSpan> kNone;
    RedactStatus st = impl_->json(unit, out, findings, info, 0, "", raw_clean ? &kNone : nullptr,
                                  padded);
    if (st != RedactStatus::kMasked) return st;
    // Safety net: the masked output must scan clean. Whatever a first pass could not place (a
    // secret split by JSON structure, say) gets a second JSON pass, then plain text masking.
    std::vector<SecretSpan> again;
    if (impl_->rescan(out, again) != ScanStatus::kOk) return RedactStatus::kError;
    if (again.empty()) return st;
    std::string second;
    Findings extra;
    RedactStatus st2 = impl_->json(out, second, extra, nullptr, 0, "");
    if (st2 == RedactStatus::kError) return st2;
    if (st2 == RedactStatus::kMasked) out.swap(second);
    // Then text passes until the output scans clean. One was not always enough: masking a value
    // can reveal a match before it. A rule's value run that was too long for its bound ends at
    // the new mask, and now fits (a chain of `password=` values needed four passes; found by
    // fuzz_json_line; then a chain of 19 in a 1.5 KB line, past the 16 passes there were).
    // Each pass masks what a scan of the last one's output finds; the loop also stops when a
    // pass changes nothing, or when it is over the limits above.
    size_t rescanned = 0;
    for (int pass = 0; pass < kMaxSafetyPasses || (pass < kMaxSafetyPassesSmall &&
                                                    rescanned + out.size() <= kSafetyScanBytes);
         ++pass) {
      rescanned += out.size();
      again.clear();
      if (impl_->rescan(out, again) != ScanStatus::kOk) return RedactStatus::kError;
      if (again.empty()) break;
      st2 = impl_->text(out, second, extra, nullptr, &again);
      if (st2 == RedactStatus::kError) return st2;
      if (st2 != RedactStatus::kMasked || second == out) break;
      out.swap(second);
    }
    for (auto& f : extra) {
      f.encoded = true;
      // Found in the masked output, whose offsets are not the unit's: kept inside the unit.
      f.offset = std::min(f.offset, unit.size());
      f.length = std::min(f.length, unit.size() - f.offset);
      findings.push_back(std::move(f));
    }
    return st;
  } catch (const std::bad_alloc&) {
    return RedactStatus::kError;
  }
}

}  // namespace scrub
