// Shared cases for the property tests: every secret of the built-in rules' examples and a set of
// fake known values, plus the encoders the tests embed them with. Secrets are never printed:
// failures name the rule id and the case index.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "engine_fixture.h"
#include "json_probe.h"
#include "filter/literal_variants.h"

namespace scrub::test {

struct SecretCase {
  std::string id;      // rule id, or "known:<name>" (safe to print)
  std::string text;    // a line that holds the secret and the context its rule needs
  std::string secret;  // the bytes that must never come out
};

// Fake known values: plain, with JSON/URL/XML-special characters, a URL holding a password,
// non-ASCII. Registered with names KNOWN_0..; never real credentials.
inline const std::vector<std::string>& known_values() {
  static const std::vector<std::string> v = {
      "Zq8vR2xkPm4TnW7yL3bH",
      "p@ss/w+rd\"q\\t<&>9Kx",
      "mysql://svc:Xk29vLq7RtPw4@db.prod.internal/app",
      "cl\xc3\xa9-secr\xc3\xa8te-42\xc3\xbcZ",
  };
  return v;
}

inline std::vector<KnownSecret> known_secrets() {
  std::vector<KnownSecret> out;
  for (size_t i = 0; i < known_values().size(); ++i)
    out.push_back({"env:KNOWN_" + std::to_string(i), known_values()[i]});
  return out;
}

// Every example of every built-in rule, then every known value (in a short sentence).
inline const std::vector<SecretCase>& secret_cases() {
  static const std::vector<SecretCase> cases = [] {
    std::vector<SecretCase> out;
    for (const Rule& r : builtin_rules().rules)
      for (const RuleExample& ex : r.examples) out.push_back({r.id, ex.text, ex.secret});
    for (size_t i = 0; i < known_values().size(); ++i)
      out.push_back({"known:KNOWN_" + std::to_string(i), "the value is " + known_values()[i] + " now",
                     known_values()[i]});
    return out;
  }();
  return cases;
}

// The built-in pack plus the known values, compiled once (label masks). Through the compiled-
// database cache in the build directory: 2.5 s of compiling (up to 9 s under ASan) is then paid
// by the first test process of a build, not by each of the dozen that use the set. A lock beside
// the cache makes the processes ctest starts together wait for that first one's entry instead of
// all compiling at once.
inline std::shared_ptr<const CompiledSet> builtin_set() {
  static std::shared_ptr<const CompiledSet> set = [] {
    EngineOptions eo = test_options();
    eo.cache_dir = SCRUB_TEST_CACHE_DIR;
    const int lock = ::open(SCRUB_TEST_CACHE_DIR ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock >= 0) ::flock(lock, LOCK_EX);  // without it, only slower
    auto compiled = CompiledSet::compile(builtin_rules(), known_secrets(), eo);
    if (lock >= 0) ::close(lock);
    return compiled;
  }();
  return set;
}

// A JSON string token (with quotes) for `s`.
inline std::string json_str(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

// A JSON string token for `s` in which every character of the first occurrence of `part` is
// written as a \uXXXX escape (surrogate pairs beyond the BMP); the rest escaped as usual.
inline std::string json_str_uescaped(const std::string& s, const std::string& part) {
  size_t at = s.find(part);
  if (at == std::string::npos || part.empty()) return json_str(s);
  std::string body = json_str(s.substr(0, at));
  std::string out = body.substr(0, body.size() - 1);
  char buf[16];
  for (size_t i = at; i < at + part.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xF0) { cp = c & 0x07; len = 4; }
    else if (c >= 0xE0) { cp = c & 0x0F; len = 3; }
    else if (c >= 0xC0) { cp = c & 0x1F; len = 2; }
    for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04X", cp);
    }
    out += buf;
  }
  std::string tail = json_str(s.substr(at + part.size()));
  out += tail.substr(1);
  return out;
}

// A JSON string token with every '/' written as "\/".
inline std::string json_str_slashes(const std::string& s) {
  std::string t = json_str(s), out;
  for (char c : t) {
    if (c == '/') out += "\\/";
    else out += c;
  }
  return out;
}

}  // namespace scrub::test
