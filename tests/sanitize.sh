#!/usr/bin/env bash
# The sanitizer half of the test suite; `scripts/setup.sh test` runs it after the normal build's
# tests, so CI runs all of it on every submission.
#
#   tests/sanitize.sh [STAGE...]      STAGE: asan, fuzz, tsan (default: all three, in that order)
#   tests/sanitize.sh prebuild        configure and build build-asan/, then build-tsan/, and stop
#
# `scripts/setup.sh test` starts `prebuild` at nice 19 in the background before the normal
# build, so the two sanitizer builds use the CPU the normal build and the tests leave idle (a
# test waiting on a child, a build's single-file tail). Each build holds a lock on its
# directory (flock, <dir>/.build.lock): a stage waits for a build in progress, then runs its own
# `cmake --build`, which is then a no-op or finishes the job and shows any compile error.
#
# asan  clang build with AddressSanitizer + UndefinedBehaviorSanitizer (+ libFuzzer's coverage
#       hooks, so the same build serves `fuzz`) in build-asan/: its unit tests (in six processes,
#       unit_chunks below; the normal build's ctest runs each in its own), then the normal
#       build's end-to-end tests against its mcp-scrub (they drive the binary from outside; the
#       test drivers and servers are not built twice).
# fuzz  every libFuzzer target of build-asan/ for FUZZ_SECONDS (default 10) each (their engine
#       compiled into a cache by the normal build's fuzz_set_cache first), seeds and
#       regression inputs included (tests/fuzz/run.sh), with a fixed libFuzzer seed (FUZZ_ARGS,
#       default -seed=1) so a submission's result does not hang on the dice, one target per CPU
#       at a time; long exploring runs are tests/fuzz/run.sh's job.
# tsan  mcp-scrub built by clang with ThreadSanitizer in build-tsan/ (GCC took 117 CPU-seconds
#       to build it, clang 75; the tests 64 against 46); the tcp, reload and filter --threads
#       end-to-end tests of the normal build (build/) then run against it (MCP_SCRUB_TEST_BINARY),
#       in two processes at once (logs: build-tsan/e2e-0.log, e2e-1.log).
#
# Sanitizers write their reports to <build>/sanitizer-reports/; a stage fails if any report
# exists, even from a child process whose exit status no test looked at.
# Everything outside the engine is compiled at -O0 (half the compile time; the engine, where the
# run time goes, at -O1). spdlog and fmt come from their shared libraries there
# (SCRUB_STATIC_LOG_LIBS=OFF): compiling them in saves start-up, which no sanitizer build is for,
# and cost each of these builds 10-14 s of CPU. BUILD_DIR (default build) names the normal build the tsan stage uses.
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
[[ ${#stages[@]} -eq 0 ]] && stages=(asan fuzz tsan)
jobs=$(nproc)
normal=${BUILD_DIR:-build}

configure_asan() {
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSCRUB_FUZZ=ON -DSCRUB_FUZZ_COVERAGE=counters -DSCRUB_BENCH=OFF -DSCRUB_E2E_TESTS=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -g1" -DSCRUB_TEST_FLAGS= -DSCRUB_COMMANDS_FLAGS= \
    -DSCRUB_CORE_FLAGS=-O1 -DSCRUB_STATIC_LOG_LIBS=OFF >/dev/null
}
configure_tsan() {
  CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCRUB_TSAN=ON \
    -DSCRUB_TESTS=OFF -DSCRUB_BENCH=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -g1" \
    -DSCRUB_COMMANDS_FLAGS= -DSCRUB_CORE_FLAGS=-O1 -DSCRUB_STATIC_LOG_LIBS=OFF >/dev/null
}
# locked_build DIR CMAKE-BUILD-ARGS...: configure and build DIR holding DIR.lock.
locked_build() {
  local dir=$1 fd; shift
  mkdir -p "$dir"
  exec {fd}>"$dir/.build.lock"
  flock "$fd"
  "configure_${dir#build-}"
  cmake --build "$dir" -j"$jobs" "$@"
  flock -u "$fd"
  exec {fd}>&-
}

if [[ ${stages[0]} == prebuild ]]; then
  locked_build build-asan
  locked_build build-tsan --target mcp-scrub
  exit 0
fi

reports_clean() {  # DIR: fails, showing the first report, if a sanitizer wrote one
  local dir=$1
  if compgen -G "$dir/*" >/dev/null; then
    echo "sanitize: sanitizer reports in $dir:" >&2
    ls "$dir" >&2
    head -40 "$(ls -d "$dir"/* | head -1)" >&2
    return 1
  fi
}

# test_names BINARY [ARG...]: the names of the tests a Catch2 binary's ARGs select, one a line
# (its exit status is how many it listed).
test_names() { "$@" --list-test-names-only | grep -v '^$' || true; }
# exactly_whole WHAT WHOLE PARTS: fails, saying WHAT and showing the difference, unless the parts'
# names (sorted) are the whole's.
exactly_whole() {
  [[ "$2" == "$3" ]] && return 0
  echo "sanitize: $1" >&2
  diff <(echo "$2") <(echo "$3") >&2 || true
  return 1
}

# unit_chunks BINARY: every test of a Catch2 binary, in a few processes run $jobs at a time, not a
# process per test as ctest runs them (the normal build's ctest keeps that isolation). Under ASan
# a process spent about 0.4 CPU-seconds starting and loading the built-in set: the unit tests took
# 124 CPU-seconds one per process and 56 in one. The chunks must be exactly the whole list.
unit_chunks() {
  local bin=$1 dir n=6 i f failed=0
  dir=$(dirname "$bin")/chunks
  rm -rf "$dir" && mkdir -p "$dir"
  local -a names
  mapfile -t names < <(test_names "$bin")
  # A name's ',', '[' and ']' escaped as catch_discover_tests escapes them for ctest.
  for i in "${!names[@]}"; do
    sed 's/[],[]/\\&/g' <<<"${names[$i]}" >>"$dir/chunk-$((i % n)).txt"
  done
  local whole listed
  whole=$(printf '%s\n' "${names[@]}" | sort)
  listed=$(for f in "$dir"/chunk-*.txt; do test_names "$bin" -f "$f"; done | sort)
  if [[ ${#names[@]} -lt 100 ]] ||
     ! exactly_whole "the unit test chunks are not exactly the ${#names[@]} tests of $bin" \
       "$whole" "$listed"; then
    return 1
  fi
  # Each chunk's exit status in a file: `wait -n` cannot be trusted to report every job (bash
  # drops finished jobs from its table as it runs other commands).
  run_chunk() {
    local rc=0
    "$bin" -f "$1" --warn NoTests >"${1%.txt}.log" 2>&1 || rc=$?
    echo "$rc" >"${1%.txt}.rc"
  }
  for f in "$dir"/chunk-*.txt; do
    while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
    run_chunk "$f" &
  done
  wait
  local rc
  for f in "$dir"/chunk-*.txt; do
    rc=$(cat "${f%.txt}.rc" 2>/dev/null || echo "unknown")
    [[ $rc == 0 ]] && continue
    failed=1
    cat "${f%.txt}.log"
    echo "sanitize: $bin -f $f exited with status $rc" >&2
  done
  echo "sanitize: the ${#names[@]} unit tests of $bin in $n processes:" \
       "$([[ $failed -eq 0 ]] && echo passed || echo FAILED)"
  [[ $failed -eq 0 ]]
}

for stage in "${stages[@]}"; do
  start=$SECONDS
  case "$stage" in
    asan)
      [[ -x "$normal/tests/e2e_tests" ]] || { echo "sanitize: build $normal first" >&2; exit 2; }
      locked_build build-asan
      # The built-in set's compiled databases as the normal build's tests left them (the same
      # rules, library and CPU give the same cache entries, validated on load): compiling them
      # under ASan's allocator took 9-12 s of every run, with the tests that share them waiting.
      rm -rf build-asan/test-db-cache
      [[ -d "$normal/test-db-cache" ]] && cp -a "$normal/test-db-cache" build-asan/
      rm -rf build-asan/sanitizer-reports && mkdir -p build-asan/sanitizer-reports
      reports=$(realpath build-asan/sanitizer-reports)
      # A 64 MiB quarantine of freed memory (ASan's default is 256): a use after free is still
      # caught while 64 MiB of other blocks have been freed since (the largest message a test
      # sends is a few MiB), and the stage touches fewer fresh pages: its unit tests took 140
      # CPU-seconds with the default, 124 with 64 MiB.
      export ASAN_OPTIONS="detect_leaks=1:malloc_context_size=8:quarantine_size_mb=64:log_path=$reports/asan"
      export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
      # The unit tests of this build, then the normal build's end-to-end tests driving this
      # build's mcp-scrub (its ctest, whose recorded times start the longest tests first).
      unit_chunks build-asan/tests/unit_tests
      asan_bin=$(realpath build-asan/mcp-scrub)
      (cd "$normal" && MCP_SCRUB_TEST_BINARY=$asan_bin MCP_SCRUB_TEST_SANITIZER=address \
        ctest --output-on-failure -j"$jobs" -L e2e)
      unset ASAN_OPTIONS UBSAN_OPTIONS
      reports_clean "$reports"
      ;;
    fuzz)
      [[ -f build-asan/CMakeCache.txt ]] || { echo "sanitize: run the asan stage first" >&2; exit 2; }
      # The targets' engine (the pack, extra rules, fake known values) compiled by the normal
      # build in 2-3 s into a cache the targets load: compiling it under ASan took 8-9 s of each
      # target's 10 (json_line ran 876 inputs in CI, 7,536 with the cache).
      export SCRUB_FUZZ_CACHE
      SCRUB_FUZZ_CACHE=$(realpath -m build-asan/fuzz-db-cache)
      if [[ -x "$normal/tests/fuzz_set_cache" ]]; then "$normal/tests/fuzz_set_cache"; fi
      FUZZ_ARGS=${FUZZ_ARGS:--seed=1} FUZZ_JOBS=${FUZZ_JOBS:-$jobs} \
        bash tests/fuzz/run.sh "${FUZZ_SECONDS:-10}" build-asan
      ;;
    tsan)
      locked_build build-tsan --target mcp-scrub
      [[ -x "$normal/tests/e2e_tests" ]] || { echo "sanitize: build $normal first" >&2; exit 2; }
      rm -rf build-tsan/sanitizer-reports && mkdir -p build-tsan/sanitizer-reports
      reports=$(realpath build-tsan/sanitizer-reports)
      # The tcp, reload and --threads tests in two processes at once, about half the time each
      # (they are mostly CPU: ThreadSanitizer slows mcp-scrub 5-15x). The two halves must be
      # exactly the whole: a test tagged into both or neither stops the stage.
      e2e=$normal/tests/e2e_tests
      # The backpressure test (7 s under TSan) with the first: the halves took 13 and 25 s.
      halves=("[threads],[split][tcp],\"tcp: backpressure*\""
              "[tcp]~[split]~[threads]~\"tcp: backpressure*\",[reload]~[threads]")
      whole=$(test_names "$e2e" "[tcp],[reload],[threads]" | sort)
      both=$(for h in "${halves[@]}"; do test_names "$e2e" "$h"; done | sort)
      exactly_whole "the two tsan halves are not exactly [tcp],[reload],[threads]:" \
        "$whole" "$both" || exit 1
      pids=()
      for i in 0 1; do
        MCP_SCRUB_TEST_BINARY=$(realpath build-tsan/mcp-scrub) MCP_SCRUB_TEST_SANITIZER=thread \
        XDG_CACHE_HOME=$(realpath -m build-tsan/e2e-cache) \
        TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan" \
          "$e2e" "${halves[$i]}" --warn NoTests >"build-tsan/e2e-$i.log" 2>&1 &
        pids+=($!)
      done
      failed=0
      for i in 0 1; do
        wait "${pids[$i]}" || { failed=1; cat "build-tsan/e2e-$i.log"; }
        tail -n 2 "build-tsan/e2e-$i.log"
      done
      [[ $failed -eq 0 ]] || exit 1
      reports_clean "$reports"
      ;;
    *) echo "usage: $0 [asan|fuzz|tsan]... | prebuild" >&2; exit 2 ;;
  esac
  echo "sanitize: $stage passed in $((SECONDS - start)) s"
done
