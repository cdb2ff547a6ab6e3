# Shared by bench/run_rtt.sh and bench/run_idle_ab.sh (sourced): a throwaway fingerprint key and
# database cache, the cache warmed once as an installed proxy would have it, and the relay
# contender when it was built. Needs B (the build directory) and tmp (a scratch directory).
printf '0123456789abcdef0123456789abcdef\n' > "$tmp/key"
export MCP_SCRUB_KEY_FILE="$tmp/key" XDG_CACHE_HOME="$tmp/cache"
# The cache is warmed by a short rtt_bench run, so with exactly the engine it proxies (its flags
# and its known value). Warmed by a filter with the built-in rules alone, as it once was, the
# first timed proxied run missed the cache and compiled: a second or more of CPU charged to the
# 1 KB case's per-request figure.
"$B/bench/rtt_bench" "$B/mcp-scrub" "$B/bench/reply_server" --bytes 1024 --requests 2 --rounds 1 \
  > /dev/null 2>&1
relay=()
if [[ -x $B/bench/relay ]]; then relay=(--relay "$B/bench/relay"); fi
# The cases both scripts time: 1 KB clean, 1 MB clean, 1 MB with secrets (rtt_bench arguments).
rtt_cases=("--bytes 1024 --requests 5000" "--bytes 1048576 --requests 100"
           "--bytes 1048576 --requests 100 --secret")
