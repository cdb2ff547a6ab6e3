#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a given time.
#
#   tests/fuzz/run.sh SECONDS_PER_TARGET BUILD_DIR [TARGET...]
#
# TARGET: json_line, framer, decoders, rules (default: all four, in that order). BUILD_DIR is
# configured with CXX=clang++ -DSCRUB_FUZZ=ON if it is not yet. Per target, the corpus grows in
# BUILD_DIR/fuzz/corpus/<target> (seeded from tests/fuzz/seeds/<target>, built from corpus/ by
# make_seeds.py, and tests/fuzz/regressions/<target>: inputs that once failed), crashes and failed
# invariants land in BUILD_DIR/fuzz/artifacts/<target>/, the log in BUILD_DIR/fuzz/<target>.log.
# Prints one line per target: executions, exec/s, corpus size, and whether it failed.
# Exit status: 0 if every target ran its time without a failure, 1 otherwise.
#
# Reproduce a failure: BUILD_DIR/tests/fuzz/fuzz_<target> ARTIFACT
# Environment: FUZZ_RULES=small (json_line, framer: scan with the extra rules only, faster);
#              SCRUB_FUZZ_CACHE=DIR (json_line, framer: load their engine from this compiled-
#              database cache, filled by a normal build's tests/fuzz_set_cache; tests/sanitize.sh
#              does both);
#              FUZZ_ARGS="..." extra libFuzzer flags; FUZZ_JOBS=N runs N targets at a time
#              (default 1; each uses one CPU).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
secs=$1
build=$(realpath -m "$2")
shift 2
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(json_line framer decoders rules)

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

if [[ ! -f "$build/CMakeCache.txt" ]] || ! grep -q '^SCRUB_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  CXX=clang++ CC=clang cmake -S "$src" -B "$build" -DSCRUB_FUZZ=ON -DSCRUB_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

declare -A max_len=([json_line]=4096 [framer]=8192 [decoders]=1024 [rules]=4096)
declare -A dict=([json_line]=json.dict [framer]=json.dict [decoders]=json.dict [rules]=rules.dict)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# One target: its libFuzzer run, its exit status in $build/fuzz/<target>.rc.
fuzz_one() {
  local t=$1 corpus="$build/fuzz/corpus/$1" artifacts="$build/fuzz/artifacts/$1/" rc=0
  local regress=()
  mkdir -p "$corpus" "$artifacts"
  [[ -d "$here/regressions/$t" ]] && regress=("$here/regressions/$t")
  "$build/tests/fuzz/fuzz_$t" "$corpus" "$here/seeds/$t" "${regress[@]}" \
    -dict="$here/${dict[$t]}" -max_len="${max_len[$t]}" -max_total_time="$secs" \
    -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$artifacts" \
    ${FUZZ_ARGS:-} >"$build/fuzz/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$build/fuzz/$t.rc"
}

# FUZZ_JOBS targets at a time (default 1); each is one process on one CPU.
jobs_max=${FUZZ_JOBS:-1}
mkdir -p "$build/fuzz"
rm -f "$build/fuzz/"*.rc
for t in "${targets[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
  fuzz_one "$t" &
done
wait

status=0
for t in "${targets[@]}"; do
  log="$build/fuzz/$t.log"
  rc=$(cat "$build/fuzz/$t.rc" 2>/dev/null || echo 1)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  files=$(find "$build/fuzz/corpus/$t" -type f | wc -l)
  if [[ $rc -ne 0 ]]; then
    status=1
    why=$(grep -m1 -E 'INVARIANT FAILED|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' "$log" || true)
    echo "$t: FAILED after $execs executions: ${why:-exit $rc} (log: $log)"
  else
    echo "$t: $execs executions, $speed exec/s, corpus $files files, no failure"
  fi
done
exit $status
