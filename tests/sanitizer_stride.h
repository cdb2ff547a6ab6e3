// The heaviest exhaustive tests take every kSanitizerStride-th case when built with a
// sanitizer. Shared by the unit and end-to-end tests.
#pragma once

#include <cstddef>
#include <cstdlib>

#include "filter/sanitized.h"

namespace scrub::test {

// The sanitizer builds (tests/sanitize.sh) run the heaviest exhaustive cases with this stride:
// every case in the normal build, every third under ASan or TSan, which still takes every code
// path they reach (each rule's examples, every channel, position and encoding) for memory and
// undefined-behaviour checks, and keeps the whole suite within its 10 minutes.
#ifdef SCRUB_SANITIZED  // filter/sanitized.h
#define SCRUB_TEST_SANITIZED 1
#endif
inline constexpr size_t kSanitizedStride = 3;  // the stride of a sanitizer build's run
#ifdef SCRUB_TEST_SANITIZED
inline constexpr size_t kSanitizerStride = kSanitizedStride;
#else
inline constexpr size_t kSanitizerStride = 1;
#endif

// The stride for an end-to-end test, which may drive another build's binary: tests/sanitize.sh
// runs the normal build's end-to-end tests against its sanitizer builds of mcp-scrub
// (MCP_SCRUB_TEST_BINARY), and says which with MCP_SCRUB_TEST_SANITIZER.
inline size_t e2e_stride() {
  const char* other = std::getenv("MCP_SCRUB_TEST_SANITIZER");
  return other != nullptr && *other != '\0' ? kSanitizedStride : kSanitizerStride;
}

}  // namespace scrub::test
