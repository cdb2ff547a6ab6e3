#!/usr/bin/env bash
# Why the 1 KB round trip misses its target on this VM: the same rtt_bench runs as in
# bench/run_rtt.sh, with the guest's idle polling off (guest_halt_poll_ns=0, how this VM comes)
# and at the kernel's default (200000 ns), alternated. With polling off, an idle vCPU halts at
# once and every wake-up sent to it is a VM exit of tens of µs; a proxy adds two such hops per
# round trip (client -> proxy -> server and back). Writes docs/bench/idle_poll.md.
#
#   sudo bash bench/run_idle_ab.sh [BUILD_DIR] [ROUNDS]
#
# Needs root and the haltpoll cpuidle governor (a KVM guest). It changes one kernel setting
# for the run and puts the value it found back on exit, however the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
rounds=${2:-2}
param=/sys/module/haltpoll/parameters/guest_halt_poll_ns
if [[ ! -w $param ]]; then
  echo "run_idle_ab.sh: $param is not writable (needs root and the haltpoll governor)" >&2
  exit 2
fi
orig=$(cat "$param")
tmp=$(mktemp -d)
trap 'echo "$orig" > "$param"; rm -rf "$tmp"' EXIT
source bench/rtt_env.sh
for ((r = 0; r < rounds; ++r)); do
  for ns in 0 200000; do
    echo "$ns" > "$param"
    for args in "${rtt_cases[@]}"; do
      # shellcheck disable=SC2086
      "$B/bench/rtt_bench" "$B/mcp-scrub" "$B/bench/reply_server" "${relay[@]}" $args --rounds 1 2>/dev/null |
        sed "s/^{/{\"poll_ns\":$ns,\"round\":$r,/"
    done
  done
done > "$tmp/ab.jsonl"
echo "$orig" > "$param"
out=docs/bench/idle_poll.md
{
  echo "# Round trips with the VM's idle polling off and on"
  echo
  echo "\`bench/run_idle_ab.sh\` ran \`rtt_bench\` (as in [latency.md](latency.md)) $rounds times at each setting of the guest haltpoll governor's \`guest_halt_poll_ns\`, alternated: 0 (polling off, the value this VM came with: $orig) and 200000 (the Linux default: an idle vCPU polls up to 200 µs before it halts). Medians over the rounds. Generated on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| message | guest_halt_poll_ns | contender | p50 µs | p99 µs | added p50 µs | added p99 µs | MB/s | CPU µs per request |"
  echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  python3 - "$tmp/ab.jsonl" <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[(r["bytes"], r["secret"], r["poll_ns"], r["contender"])].append(r)
order = {"direct": 0, "relay": 1, "mcp-scrub": 2}
for key in sorted(rows, key=lambda k: (k[0], k[1], k[2], order[k[3]])):
    size, secret, ns, who = key
    rs = rows[key]
    med = lambda f: statistics.median(x[f] for x in rs)
    kind = ("1 KB" if size == 1024 else "1 MB") + (" with secrets (masked)" if secret else " clean")
    print(f'| {kind} | {ns} | {who} | {med("p50_us"):.1f} | {med("p99_us"):.1f} | '
          f'{med("added_p50_us"):.1f} | {med("added_p99_us"):.1f} | {med("MBps"):.0f} | '
          f'{med("cpu_us_per_request"):,.1f} |')
PY
} > "$out"
cat "$out"
