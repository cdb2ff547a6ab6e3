// SCRUB_SANITIZED: defined when this translation unit is built with AddressSanitizer or
// ThreadSanitizer. GCC says so by macros, clang by __has_feature. The few places whose fast path
// a sanitizer's runtime cannot follow take their plain path under it (cli/app.cpp's exit without
// teardown, transports/child_process.cpp's spawn), and the tests thin their heaviest loops
// (tests/sanitizer_stride.h).
#pragma once

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SCRUB_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SCRUB_SANITIZED 1
#endif
#endif
