#!/usr/bin/env bash
# Every end-to-end comparison behind the performance targets, in one go, then
# docs/bench/targets.md: each target, what this run measured, met or not (bench/targets.py).
#
#   bash bench/run_all.sh [BUILD_DIR]      (default build; about 7 minutes on 2 CPUs)
#
# 1. bench/run.sh: filter against raw hs_scan, cat, sed and rg; --threads 2 (docs/bench/results.md)
# 2. bench/run_rtt.sh: round trips through the stdio wrap next to a direct pipe and a relay
#    (docs/bench/latency.md)
# 3. bench/run_memory.sh: peak RSS of each job against its target (docs/bench/memory.md)
#    and bench/run_tcp.sh: round trips through mcp-scrub tcp, both modes (docs/bench/tcp.md)
# 4. per-rule cost: hs_baseline --rule-cost on 16 MB of the mixed log; every rule alone, the 20
#    slowest alone compared with the whole set, one run of each in turn; the same (10 slowest)
#    over the 1 MB tool result the wrap benchmark's server returns, and over its string decoded
# bench/run_idle_ab.sh (the VM's idle polling, needs root) is not part of it.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
for t in mcp-scrub bench/hs_baseline bench/rtt_bench bench/tcp_bench bench/reply_server; do
  [[ -x $B/$t ]] || { echo "run_all.sh: $B/$t not built (cmake --build $B)" >&2; exit 2; }
done
mkdir -p bench/out
rm -f bench/out/summary.json bench/out/rtt.jsonl bench/out/memory.tsv bench/out/rule_cost.jsonl \
  bench/out/rule_cost_result.jsonl bench/out/rule_cost_decoded.jsonl
bash bench/run.sh "$B"
bash bench/run_rtt.sh "$B"
bash bench/run_memory.sh "$B"
bash bench/run_tcp.sh "$B"
slice=bench/out/rule_cost_16m.log
head -c 16000000 corpus/generated/mixed.log | sed '$d' > "$slice"
echo "+ $B/bench/hs_baseline --rule-cost --rule-cost-top 20 --runs 9 (16 MB of mixed.log)" >&2
"$B/bench/hs_baseline" --secrets-file corpus/generated/known_secrets.txt --runs 9 --rule-cost \
  --rule-cost-top 20 "$slice" > bench/out/rule_cost.jsonl
# The same over the text the wrap benchmark's server returns (a 1 MB tools/call result), which a
# message is scanned as: whole.
result=bench/out/rule_cost_result.json
echo '{"jsonrpc":"2.0","id":1,"method":"tools/call"}' | "$B/bench/reply_server" 1048576 > "$result"
echo "+ $B/bench/hs_baseline --whole --rule-cost --rule-cost-top 10 --runs 9 (reply_server 1048576)" >&2
"$B/bench/hs_baseline" --whole --runs 9 --rule-cost --rule-cost-top 10 "$result" \
  > bench/out/rule_cost_result.jsonl
# And over what that result's string decodes to, which the wrap scans too (a JSON string's "\n"
# escapes become line breaks there: a rule that began at every line break was 32% of the set's
# time over it, and neither run above could see it).
decoded=bench/out/rule_cost_decoded.txt
python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["content"][0]["text"], end="")' \
  < "$result" > "$decoded"
echo "+ $B/bench/hs_baseline --whole --rule-cost --rule-cost-top 10 --runs 9 (that result's text, decoded)" >&2
"$B/bench/hs_baseline" --whole --runs 9 --rule-cost --rule-cost-top 10 "$decoded" \
  > bench/out/rule_cost_decoded.jsonl
python3 bench/targets.py bench/out > docs/bench/targets.md
cat docs/bench/targets.md
