// Shared configuration and invariant checks for the libFuzzer targets (tests/fuzz/README in
// run.sh). Every target aborts (so libFuzzer saves the input) when an invariant fails; the
// message names the invariant, never a secret value.
//
// The engine a target scans with: the built-in pack, a few extra rules that stress masking (a
// partial mask with a fixed prefix that cuts through multi-byte characters, a rule with a
// non-ASCII literal) and the known literals below (fake), so every encoded form of a literal is
// registered exactly as the wrap registers it.
#pragma once

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filter/compiled_set.h"
#include "filter/literal_variants.h"
#include "filter/redactor.h"
#include "patterns/rule_loader.h"

namespace scrub::fuzz {

[[noreturn]] inline void fail(const char* invariant, size_t offset = 0) {
  std::fprintf(stderr, "\nINVARIANT FAILED: %s (offset %zu)\n", invariant, offset);
  std::fflush(stderr);
  std::abort();
}
#define FUZZ_CHECK(cond, what) \
  do {                         \
    if (!(cond)) ::scrub::fuzz::fail(what); \
  } while (0)

// Fake known values: plain, with JSON/URL/XML-special characters, a URL with a password, a
// multi-line value and a non-ASCII one.
inline const std::vector<KnownSecret>& known_secrets() {
  static const std::vector<KnownSecret> k = {
      {"env:FUZZ_PLAIN", "Zq8vR2xkPm4TnW7yL3bH"},
      {"env:FUZZ_SPECIAL", "p@ss/w+rd\"q\\t<&>9Kx"},
      {"env:FUZZ_DB_URL", "postgresql://app:S3cretPassw0rdX9@db.internal:5432/prod"},
      {"env:FUZZ_MULTI", "mUlti-Line-7Qz\nSecond-Line-9xW"},
      {"env:FUZZ_UTF8", "cl\xc3\xa9-secr\xc3\xa8te-42\xc3\xbc"},
  };
  return k;
}

// Every value the engine must never let through: the known values and the values derived from
// them (lines of the multi-line value, the URL password).
inline const std::vector<std::string>& forbidden_values() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (const auto& s : expand_known_secrets(known_secrets(), 8)) out.push_back(s.value);
    return out;
  }();
  return v;
}

// Every encoded form of every forbidden value, as the compiled set registers them.
inline const std::vector<std::string>& forbidden_forms() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (const auto& value : forbidden_values()) {
      size_t min_variant = std::min<size_t>(value.size(), 8);
      for (auto& lv : literal_variants(value, std::max<size_t>(min_variant, 6)))
        out.push_back(lv.bytes);
    }
    return out;
  }();
  return v;
}

inline const char* kExtraRules = R"(
[[rules]]
id = "fuzz-partial"
description = "partial mask keeping a prefix that may cut a multi-byte character"
regex = '''fzk_([^\s"',;\\]{3,40})'''
keywords = ["fzk_"]
mask = "partial"
keepPrefix = 5

[[rules]]
id = "fuzz-utf8-literal"
description = "a non-ASCII literal in a rule"
regex = '''m(?:ö|oe)t-([0-9a-f]{12})'''
keywords = ["t-"]
)";

inline EngineOptions engine_options() {
  EngineOptions eo;
  eo.fingerprint_key = "fuzz-fingerprint-key";
  return eo;
}

// FUZZ_RULES=small uses only the extra rules (faster); the default is the built-in pack too.
inline RuleSet fuzz_rules() {
  RuleSet rules;
  const char* sel = std::getenv("FUZZ_RULES");
  if (!sel || std::string_view(sel) != "small") rules = builtin_rules();
  merge_rules(rules, load_rules_string(kExtraRules, "fuzz-extra.toml"));
  return rules;
}

// Through the compiled-database cache in $SCRUB_FUZZ_CACHE when it is set: tests/sanitize.sh
// fills it with fuzz_set_cache from the normal build before the fuzz stage, so a target's time
// goes to fuzzing instead of to compiling the pack under ASan (8-9 s of each 10 s run).
inline std::shared_ptr<const CompiledSet> fuzz_set() {
  static std::shared_ptr<const CompiledSet> set = [] {
    EngineOptions eo = engine_options();
    if (const char* dir = std::getenv("SCRUB_FUZZ_CACHE")) eo.cache_dir = dir;
    return CompiledSet::compile(fuzz_rules(), known_secrets(), eo);
  }();
  return set;
}

// Same test as the redactor's: a decoded string that may hold JSON.
inline bool looks_like_json(std::string_view s) {
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{' || c == '[';
  }
  return false;
}

inline void check_no_forbidden(std::string_view text, const char* where) {
  for (const auto& f : forbidden_forms())
    if (text.find(f) != std::string_view::npos) fail(where, text.find(f));
}

// Walks every string (keys and values) of a parsed document; decodes JSON held in a string the
// way the redactor does (up to the same depth) and checks no forbidden form survives anywhere.
inline void check_strings(simdjson::dom::element el, int depth, simdjson::dom::parser* nested) {
  switch (el.type()) {
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object obj = el.get_object().value_unsafe();
      for (auto field : obj) {
        check_no_forbidden(field.key, "forbidden form in a decoded key");
        check_strings(field.value, depth, nested);
      }
      break;
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array arr = el.get_array().value_unsafe();
      for (auto child : arr) check_strings(child, depth, nested);
      break;
    }
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      if (el.get_string().get(s) != simdjson::SUCCESS) break;
      check_no_forbidden(s, "forbidden form in a decoded string");
      if (depth < 6 && looks_like_json(s)) {
        std::string copy(s);
        simdjson::dom::parser p;
        simdjson::dom::element inner;
        if (p.parse(copy).get(inner) == simdjson::SUCCESS) check_strings(inner, depth + 1, nested);
      }
      break;
    }
    default: break;
  }
}

// What a lenient client makes of a line: Node decodes the byte stream as UTF-8 with U+FFFD for
// invalid sequences, and JSON.parse (like Python's json) accepts lone surrogates in \u escapes and
// deep nesting. Returns the line as a strict parser would then see it (invalid UTF-8 and lone
// surrogate escapes replaced by U+FFFD).
inline std::string client_view(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  // 1. UTF-8, with U+FFFD for each invalid sequence.
  for (size_t i = 0; i < in.size();) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= in.size() &&
              simdjson::validate_utf8(in.data() + i, len);
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  // 2. Lone surrogate escapes -> \ufffd (a pair stays).
  auto hex4 = [&](size_t at) -> int {
    if (at + 4 > out.size()) return -1;
    int v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      char h = out[k];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return -1;
    }
    return v;
  };
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] != '\\') continue;
    if (out[i + 1] != 'u') {
      ++i;  // an escape of one character
      continue;
    }
    int v = hex4(i + 2);
    if (v >= 0xD800 && v <= 0xDBFF) {
      int lo = (i + 7 < out.size() && out[i + 6] == '\\' && out[i + 7] == 'u') ? hex4(i + 8) : -1;
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        i += 11;
        continue;
      }
      out.replace(i + 2, 4, "fffd");
    } else if (v >= 0xDC00 && v <= 0xDFFF) {
      out.replace(i + 2, 4, "fffd");
    }
    i += 5;
  }
  return out;
}

// Same shape: containers of the same kind and size; a scalar may only have become a string.
inline bool same_shape(simdjson::dom::element a, simdjson::dom::element b) {
  using T = simdjson::dom::element_type;
  if (a.type() == T::OBJECT) {
    if (b.type() != T::OBJECT) return false;
    auto oa = a.get_object().value_unsafe(), ob = b.get_object().value_unsafe();
    if (oa.size() != ob.size()) return false;
    auto ia = oa.begin(), ib = ob.begin();
    for (; ia != oa.end(); ++ia, ++ib)
      if (!same_shape((*ia).value, (*ib).value)) return false;
    return true;
  }
  if (a.type() == T::ARRAY) {
    if (b.type() != T::ARRAY) return false;
    auto xa = a.get_array().value_unsafe(), xb = b.get_array().value_unsafe();
    if (xa.size() != xb.size()) return false;
    auto ia = xa.begin(), ib = xb.begin();
    for (; ia != xa.end(); ++ia, ++ib)
      if (!same_shape(*ia, *ib)) return false;
    return true;
  }
  if (b.type() == T::OBJECT || b.type() == T::ARRAY) return false;
  return a.type() == b.type() || b.type() == T::STRING;
}

}  // namespace scrub::fuzz
