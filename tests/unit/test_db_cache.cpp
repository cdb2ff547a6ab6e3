#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine_fixture.h"
#include "filter/literal_variants.h"

using namespace scrub;
using namespace scrub::test;
namespace fs = std::filesystem;

namespace {
const char* kRules = R"(
[[rules]]
id = "github-pat"
regex = '''\b(ghp_[0-9A-Za-z]{36})\b'''
keywords = ["ghp_"]
)";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}
}  // namespace

TEST_CASE("the compiled-database cache is reused, encrypted, and survives corruption", "[cache]") {
  fs::path dir = fs::temp_directory_path() / ("scrub-cache-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EngineOptions eo = test_options();
  eo.cache_dir = dir.string();
  const std::string secret = fake(24, 77);
  const std::string token = "ghp_" + fake(36, 78);
  const std::string line = "k=" + secret + " t=" + token;
  const std::string want = "k=[REDACTED:known-secret] t=[REDACTED:github-pat]";

  {
    Redactor r(make_set(kRules, {{"env:K_SECRET", secret}}, eo));
    CHECK(redact_text(r, line).out == want);
  }
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e.path());
  REQUIRE(entries.size() == 1);
  const std::string file = slurp(entries[0]);
  CHECK(file.rfind("SCRUBDB2", 0) == 0);
  // No encoded form of the known value is stored in clear.
  for (const auto& v : literal_variants(secret, 6)) CHECK(file.find(v.bytes) == std::string::npos);

  SECTION("a second compile loads it and scans the same") {
    auto t = fs::last_write_time(entries[0]);
    Redactor r(make_set(kRules, {{"env:K_SECRET", secret}}, eo));
    CHECK(redact_text(r, line).out == want);
    CHECK(fs::last_write_time(entries[0]) == t);  // not rewritten
  }
  SECTION("a corrupted entry is ignored and replaced") {
    std::string bad = file;
    bad[bad.size() / 2] ^= 0x55;
    std::ofstream(entries[0], std::ios::binary | std::ios::trunc) << bad;
    Redactor r(make_set(kRules, {{"env:K_SECRET", secret}}, eo));
    CHECK(redact_text(r, line).out == want);
    CHECK(slurp(entries[0]) != bad);
  }
  SECTION("another key does not read it") {
    EngineOptions other = eo;
    other.fingerprint_key = "a-different-installation-key";
    Redactor r(make_set(kRules, {{"env:K_SECRET", secret}}, other));
    CHECK(redact_text(r, line).out == want);
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".hsdb";
    CHECK(n == 2);
  }
  fs::remove_all(dir);
}
