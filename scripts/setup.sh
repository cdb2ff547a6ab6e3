#!/usr/bin/env bash
# mcp-scrub developer entry point: installs what is missing, builds, and runs a job.
#
#   bash scripts/setup.sh demo    install, build, run the built-in demo
#   bash scripts/setup.sh test    install, build, run every test: the normal build's suite, then
#                                 tests/sanitize.sh (the suite under ASan+UBSan, each fuzz target
#                                 briefly, tcp and reload under TSan)
#   bash scripts/setup.sh bench   install (with benchmark tools), build Release, run bench/run.sh
#   bash scripts/setup.sh build   install and build only
#
# This file is the only place the package list lives.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-build}

# Build and runtime libraries (Debian 12 package names).
PKGS_BUILD=(g++ make cmake pkg-config git ca-certificates
  libhyperscan-dev libre2-dev nlohmann-json3-dev libspdlog-dev libtomlplusplus-dev
  libcli11-dev libssl-dev libboost-dev libsimdjson-dev catch2 libbenchmark-dev)
# Tests against the real MCP peers (npm packages pinned in tests/peers/package-lock.json), and
# clang with its sanitizer and libFuzzer runtimes for tests/sanitize.sh.
PKGS_TEST=(nodejs npm clang libclang-rt-14-dev)
# Comparison baselines and the plot for bench/.
PKGS_BENCH=(ripgrep sed gnuplot-nox hyperfine time)

want=("${PKGS_BUILD[@]}")
case "$job" in
  test|demo) want+=("${PKGS_TEST[@]}") ;;
  bench) want+=("${PKGS_TEST[@]}" "${PKGS_BENCH[@]}") ;;
  build) ;;
  *) echo "usage: $0 demo|test|bench|build" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may have Node.js from elsewhere (a newer nodejs build): accept any node >= 18 with npm.
if command -v node >/dev/null && command -v npm >/dev/null &&
   [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 18 ]; then
  missing=($(printf '%s\n' "${missing[@]:-}" | grep -vx -e nodejs -e npm || true))
fi
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_type=RelWithDebInfo
[ "$job" = bench ] && build_type=Release
# The benchmark programs (bench/) are built by the bench and build jobs; demo and test leave them
# out (about 28 s of CPU, and the test job is CI's, which has ten minutes for everything).
bench=ON
case "$job" in test|demo) bench=OFF ;; esac
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$build_type" -DSCRUB_BENCH="$bench" ${CMAKE_ARGS:-} >/dev/null
prebuild=""
if [ "$job" = test ]; then
  # The sanitizer builds (tests/sanitize.sh prebuild) at the lowest priority in the background:
  # they take the CPU that the normal build's one-file tail and the tests' waiting leave idle.
  # Their stages wait for them (a lock per build directory) and report any compile error. In
  # this session, not a new one: with the kernel's autogroups (sched_autogroup_enabled) a
  # session of its own gets half the CPU whatever its nice value, and the normal build and
  # its tests ran at half speed beside it. A process group of its own (set -m), for the trap.
  set -m
  nice -n 19 bash tests/sanitize.sh prebuild >"$BUILD_DIR/sanitize-prebuild.log" 2>&1 &
  prebuild=$!
  set +m
  trap 'kill -- -"$prebuild" 2>/dev/null || true' EXIT
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"

peers() {
  if [ ! -d tests/peers/node_modules ] || [ tests/peers/package-lock.json -nt tests/peers/node_modules ]; then
    (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

case "$job" in
  demo) exec bash scripts/demo.sh "$BUILD_DIR" ;;
  test)
    [ -f tests/peers/package.json ] && peers
    (cd "$BUILD_DIR" && ctest --output-on-failure -j"$(nproc)")
    BUILD_DIR=$BUILD_DIR bash tests/sanitize.sh
    wait "$prebuild" || true ;;
  bench) [ -f tests/peers/package.json ] && peers; exec bash bench/run.sh "$BUILD_DIR" ;;
  build) ;;
esac
