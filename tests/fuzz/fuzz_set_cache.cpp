// fuzz_set_cache: compiles the fuzz targets' engine (fuzz_common.h's fuzz_set: the built-in pack,
// the extra rules and the fake known values; FUZZ_RULES as for the targets) into the compiled-
// database cache in $SCRUB_FUZZ_CACHE, where the targets load it. Built by the normal build, which
// compiles it in 2-3 s; tests/sanitize.sh runs it before the fuzz stage.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "tests/fuzz/fuzz_common.h"

int main() {
  const char* dir = std::getenv("SCRUB_FUZZ_CACHE");
  if (!dir || !*dir) {
    std::fprintf(stderr, "usage: SCRUB_FUZZ_CACHE=DIR fuzz_set_cache\n");
    return 2;
  }
  try {
    std::filesystem::create_directories(dir);
    auto set = scrub::fuzz::fuzz_set();
    std::printf("fuzz_set_cache: %zu rules, %zu known values compiled into %s\n", set->rule_count(),
                set->literal_count(), dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_set_cache: %s\n", e.what());
    return 1;
  }
  return 0;
}
