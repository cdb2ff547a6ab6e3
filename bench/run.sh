#!/usr/bin/env bash
# Throughput of `mcp-scrub filter` against its ceiling (raw hs_scan of the same database) and
# against common tools, in one run with the contenders alternated, each repeated RUNS times.
#
#   bench/run.sh BUILD_DIR
#
# Environment: SCRUB_BENCH_SIZE (corpus size, default 64M), SCRUB_BENCH_RUNS (default 5),
# SCRUB_BENCH_SEED (default 42), SCRUB_BENCH_SLOW_SECONDS (a contender whose full-corpus run
# would take longer is measured on a slice, default 10), SCRUB_BENCH_MCP (default 1: also the
# JSON-RPC corpora rpc_1k.jsonl and rpc_1m_clean.jsonl in json mode; 0 leaves them out).
# Writes bench/out/results.md, bench/out/throughput.png and bench/out/raw.tsv, then copies the
# first two to docs/bench/. MB/s is 10^6 bytes per second of input.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bench/run.sh BUILD_DIR" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
SIZE=${SCRUB_BENCH_SIZE:-64M}
RUNS=${SCRUB_BENCH_RUNS:-5}
SEED=${SCRUB_BENCH_SEED:-42}
SLOW=${SCRUB_BENCH_SLOW_SECONDS:-10}
GEN=$ROOT/corpus/generated
OUT=$ROOT/bench/out
SCRUB=$BUILD/mcp-scrub
HSB=$BUILD/bench/hs_baseline
for b in "$SCRUB" "$HSB"; do
  [[ -x $b ]] || { echo "run.sh: $b not built (cmake --build $BUILD)" >&2; exit 2; }
done
mkdir -p "$OUT" "$GEN"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

# ---- corpora ------------------------------------------------------------------------------------
want_bytes=$(python3 -c "import sys; sys.path.insert(0, '$ROOT/corpus'); import gen_corpus as g; print(g.parse_size('$SIZE'))")
MCP=${SCRUB_BENCH_MCP:-1}
JSON_SETS=("json:json.log")  # label:file, each run through filter --format json and hs_baseline
[[ $MCP == 1 ]] && JSON_SETS+=("rpc:rpc_1k.jsonl" "rpc1m:rpc_1m_clean.jsonl")
need_gen=()
for f in mixed.log "${JSON_SETS[@]#*:}"; do
  p=$GEN/$f
  # Generated files stop at the last whole record that fits: within 1% below the size asked.
  if [[ ! -f $p ]] || (( $(stat -c %s "$p") > want_bytes || $(stat -c %s "$p") < want_bytes * 99 / 100 )); then
    need_gen+=("${f%%.*}")
  fi
done
if [[ ! -f $GEN/known_secrets.txt ]] || (( ${#need_gen[@]} )); then
  only=$(IFS=,; echo "known${need_gen[*]:+,${need_gen[*]}}")
  echo "+ python3 corpus/gen_corpus.py --seed $SEED --size $SIZE --out $GEN --only $only"
  python3 "$ROOT/corpus/gen_corpus.py" --seed "$SEED" --size "$SIZE" --out "$GEN" --only "$only"
fi
MIXED=$GEN/mixed.log
SECRETS=$GEN/known_secrets.txt
MIXED_BYTES=$(stat -c %s "$MIXED")

# The filter's fingerprint key: a fixed file here, so the run touches nothing in ~/.config.
KEY=$OUT/fingerprint.key
[[ -f $KEY ]] || echo "bench-fingerprint-key-0123456789abcdef" > "$KEY"

# ---- regexes for sed and rg ---------------------------------------------------------------------
SED_SCRIPT=$OUT/rules.sed
RG_ALL=$OUT/rg_all.txt
RG_OK=$OUT/rg_rules.txt
SED_INFO=$(python3 "$ROOT/bench/rule_regexes.py" ere "$ROOT/patterns/builtin.toml" "$SED_SCRIPT" --max 8)
python3 "$ROOT/bench/rule_regexes.py" rg "$ROOT/patterns/builtin.toml" "$RG_ALL" > /dev/null
SED_RULES=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['rules'])" "$SED_INFO")
SED_IDS=$(python3 -c "import json,sys; print(','.join(json.loads(sys.argv[1])['ids']))" "$SED_INFO")
# rg with the same handful of rules as sed (in their RE2 form), beside rg with the whole pack.
RG_FEW=$OUT/rg_few.txt
python3 "$ROOT/bench/rule_regexes.py" rg "$ROOT/patterns/builtin.toml" "$RG_FEW" --ids "$SED_IDS" > /dev/null
RG_FLAGS=(--no-config --regex-size-limit 1G --dfa-size-limit 1G)
: > "$RG_OK"
RG_REJECTED=0
while IFS= read -r re; do
  rc=0
  rg "${RG_FLAGS[@]}" -e "$re" /dev/null > /dev/null 2>&1 || rc=$?
  if [[ $rc -eq 2 ]]; then RG_REJECTED=$((RG_REJECTED + 1)); else printf '%s\n' "$re" >> "$RG_OK"; fi
done < "$RG_ALL"
RG_RULES=$(wc -l < "$RG_OK")

# A slow contender runs on a slice of whole lines: at least 1 MiB, about SLOW/2 seconds of work.
slice_for() {  # name cmd-template(with @IN@) -> sets SLICE_FILE SLICE_BYTES
  local name=$1 tmpl=$2 probe=$OUT/probe_1m.log
  head -c 1048576 "$MIXED" | sed '$d' > "$probe"
  local pbytes t0 t1 ns est
  pbytes=$(stat -c %s "$probe")
  t0=$(date +%s%N); bash -c "${tmpl//@IN@/$probe}"; t1=$(date +%s%N)
  ns=$((t1 - t0))
  est=$(python3 -c "print($ns / 1e9 * $MIXED_BYTES / $pbytes)")
  if python3 -c "import sys; sys.exit(0 if $est > $SLOW else 1)"; then
    local want
    want=$(python3 -c "print(max(1048576, int($pbytes / ($ns / 1e9) * $SLOW / 2)))")
    SLICE_FILE=$OUT/slice_$name.log
    head -c "$want" "$MIXED" | sed '$d' > "$SLICE_FILE"
    SLICE_BYTES=$(stat -c %s "$SLICE_FILE")
    echo "run.sh: $name would take ~${est%.*}s on the full corpus; measuring a $SLICE_BYTES-byte slice" >&2
  else
    SLICE_FILE=$MIXED
    SLICE_BYTES=$MIXED_BYTES
  fi
}
SED_TMPL="sed -E -f $SED_SCRIPT < @IN@ > /dev/null"
# rg stops at the first match when its stdout is /dev/null, so it writes into a pipe.
RG_TMPL="rg ${RG_FLAGS[*]} --passthru -r '[REDACTED]' -f $RG_OK @IN@ | cat > /dev/null"
slice_for sed "$SED_TMPL"; SED_IN=$SLICE_FILE; SED_BYTES=$SLICE_BYTES
slice_for rg "$RG_TMPL"; RG_IN=$SLICE_FILE; RG_BYTES=$SLICE_BYTES
RG_FEW_TMPL="rg ${RG_FLAGS[*]} --passthru -r '[REDACTED]' -f $RG_FEW @IN@ | cat > /dev/null"
slice_for rg_few "$RG_FEW_TMPL"; RG_FEW_IN=$SLICE_FILE; RG_FEW_BYTES=$SLICE_BYTES

# ---- contenders ---------------------------------------------------------------------------------
# label | corpus | bytes | command
NAMES=() CORPUS=() BYTES=() CMDS=()
add() { NAMES+=("$1"); CORPUS+=("$2"); BYTES+=("$3"); CMDS+=("$4"); }
FILTER_OPTS="--secrets-file $SECRETS --no-env-secrets --fingerprint-key $KEY"
add "filter-text" mixed.log "$MIXED_BYTES" \
  "$SCRUB filter --format text $FILTER_OPTS < $MIXED > /dev/null 2> $OUT/filter-text.stderr"
add "filter-text-t2" mixed.log "$MIXED_BYTES" \
  "$SCRUB filter --format text --threads 2 $FILTER_OPTS < $MIXED > /dev/null 2> $OUT/filter-text-t2.stderr"
# The issue's words for the text target: "end to end through pipes". A producer and a consumer
# on the same two CPUs, each pipe copied on both sides.
add "filter-text-pipe" mixed.log "$MIXED_BYTES" \
  "cat $MIXED | $SCRUB filter --format text $FILTER_OPTS 2> $OUT/filter-text-pipe.stderr | cat > /dev/null"
add "filter-text-t2-pipe" mixed.log "$MIXED_BYTES" \
  "cat $MIXED | $SCRUB filter --format text --threads 2 $FILTER_OPTS 2> $OUT/filter-text-t2-pipe.stderr | cat > /dev/null"
add "hs_baseline-lines" mixed.log "$MIXED_BYTES" \
  "$HSB --secrets-file $SECRETS --runs 1 $MIXED > $OUT/hs_baseline-lines.json"
add "hs_baseline-whole" mixed.log "$MIXED_BYTES" \
  "$HSB --secrets-file $SECRETS --runs 1 --whole $MIXED > $OUT/hs_baseline-whole.json"
# Raw hs_scan per line on two threads, pieces of 128 KiB of lines as `filter --threads 2` batches
# them: what two threads of this machine give Hyperscan itself, the ceiling for that target.
add "hs_baseline-lines-t2" mixed.log "$MIXED_BYTES" \
  "$HSB --secrets-file $SECRETS --runs 1 --threads 2 $MIXED > $OUT/hs_baseline-lines-t2.json"
add "cat" mixed.log "$MIXED_BYTES" "cat $MIXED | cat > /dev/null"
# The same pipes as `cat | filter | cat` with a `cat` where the filter is: what the pipeline costs
# by itself, its processes sharing the two CPUs as the filter's do.
add "cat3" mixed.log "$MIXED_BYTES" "cat $MIXED | cat | cat > /dev/null"
add "sed" mixed.log "$SED_BYTES" "${SED_TMPL//@IN@/$SED_IN}"
add "rg" mixed.log "$RG_BYTES" "${RG_TMPL//@IN@/$RG_IN}"
add "rg_few" mixed.log "$RG_FEW_BYTES" "${RG_FEW_TMPL//@IN@/$RG_FEW_IN}"
for js in "${JSON_SETS[@]}"; do
  tag=${js%%:*} file=$GEN/${js#*:}
  add "filter-$tag" "${js#*:}" "$(stat -c %s "$file")" \
    "$SCRUB filter --format json $FILTER_OPTS < $file > /dev/null 2> $OUT/filter-$tag.stderr"
  # --threads 2 on the JSON log lines too: per byte they cost more than the mixed log, so the
  # fixed start-up weighs less in the ratio.
  [[ $tag == json ]] && add "filter-$tag-t2" "${js#*:}" "$(stat -c %s "$file")" \
    "$SCRUB filter --format json --threads 2 $FILTER_OPTS < $file > /dev/null 2> $OUT/filter-$tag-t2.stderr"
  [[ $tag == json ]] && add "filter-$tag-pipe" "${js#*:}" "$(stat -c %s "$file")" \
    "cat $file | $SCRUB filter --format json $FILTER_OPTS 2> $OUT/filter-$tag-pipe.stderr | cat > /dev/null"
  add "hs_baseline-$tag" "${js#*:}" "$(stat -c %s "$file")" \
    "$HSB --secrets-file $SECRETS --runs 1 $file > $OUT/hs_baseline-$tag.json"
done
# What timing a command costs the harness itself: a process that does nothing.
add "harness" empty 0 "/bin/true < /dev/null > /dev/null 2>&1"
add "filter-startup" empty 0 "$SCRUB filter --format text $FILTER_OPTS < /dev/null > /dev/null 2>&1"
# The filter caches compiled databases (~/.cache/mcp-scrub); --no-cache shows the first start.
add "filter-startup-cold" empty 0 "$SCRUB filter --format text $FILTER_OPTS --no-cache < /dev/null > /dev/null 2>&1"

echo "Commands (each run $RUNS times, alternated; wall clock from bash's \$EPOCHREALTIME around eval"
echo "of the command in this shell, CPU time (user+sys of its processes) from bash's time keyword):"
for i in "${!NAMES[@]}"; do printf '  [%s] %s\n' "${NAMES[$i]}" "${CMDS[$i]}"; done

# Warm the filter's database cache, so every timed run sees the steady state (cold: its own row).
bash -c "$SCRUB filter --format text $FILTER_OPTS < /dev/null > /dev/null 2>&1"

RAW=$OUT/raw.tsv
printf 'label\tcorpus\tbytes\trep\tns\tcpu_s\tinproc_mb_per_s\tinproc_cpu_mb_per_s\tmatch_events\n' > "$RAW"
# CPU time matters on a shared machine: wall clock also counts the time others held the core.
# Each command runs in this shell (eval), timed by bash itself: $EPOCHREALTIME (microseconds) and
# the time keyword (CPU). No process of the harness runs inside the timed span but the command's
# own. Until 2026-11-27 each command ran under /usr/bin/time in a bash -c, between two calls of
# date: 6.2-6.9 ms of those start-ups counted into every command's wall clock (1.5-2.6 ms for
# /bin/true now; the "harness" row measures it), 6% of a 100 ms filter run, and none into the
# in-process ceiling.
TIMEFORMAT='%3U %3S'
set +o pipefail  # a pipeline's status is its last command's, as it was in bash -c
for rep in $(seq 1 "$RUNS"); do
  for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    t0=$EPOCHREALTIME
    { time eval "${CMDS[$i]}"; } 2> "$OUT/time.txt"
    t1=$EPOCHREALTIME
    ns=$(( (10#${t1/./} - 10#${t0/./}) * 1000 ))
    cpu=$(tail -1 "$OUT/time.txt" | awk '{printf "%.3f", $1 + $2}')
    inproc="" inproc_cpu="" events=""
    if [[ $name == hs_baseline-* ]]; then
      # A command substitution, waited for here: a process substitution's python was reaped
      # during a later command's timing, and bash's time charged its CPU to that command.
      read -r inproc inproc_cpu events <<< "$(python3 -c "import json; d=json.load(open('$OUT/$name.json')); print(d['mb_per_s'], d['cpu_mb_per_s'], d['match_events'])")"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${CORPUS[$i]}" "${BYTES[$i]}" "$rep" "$ns" "$cpu" "$inproc" "$inproc_cpu" "$events" >> "$RAW"
  done
  echo "run.sh: round $rep/$RUNS done ($(($(date +%s) - T_START))s)" >&2
done
set -o pipefail
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# Findings, from one more (untimed) run of each filter with alerts on: counts only, no values.
rm -f "$OUT"/alerts-*.jsonl  # the alert sink appends
"$SCRUB" filter --format text $FILTER_OPTS --alerts "$OUT/alerts-text.jsonl" < "$MIXED" > /dev/null 2>&1 || true
for js in "${JSON_SETS[@]}"; do
  "$SCRUB" filter --format json $FILTER_OPTS --alerts "$OUT/alerts-${js%%:*}.jsonl" < "$GEN/${js#*:}" > /dev/null 2>&1 || true
done

# ---- summary ------------------------------------------------------------------------------------
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx512bw\|avx2' | sort -u | tr '\n' ' ')
HSVER=$(dpkg-query -W -f '${Package} ${Version}' libhyperscan5 2>/dev/null || dpkg-query -W -f '${Package} ${Version}' libvectorscan5 2>/dev/null || echo unknown)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (work tree modified)" || true)
export RAW OUT RUNS SED_RULES RG_RULES RG_REJECTED SED_IN RG_IN MIXED SED_BYTES RG_BYTES RG_FEW_IN RG_FEW_BYTES
export CPU FLAGS HSVER COMMIT DIRTY LOAD_BEFORE LOAD_AFTER SEED
export MACHINE_NPROC=$(nproc) RUN_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
python3 - <<'PY'
import csv, json, os, statistics
E = os.environ
rows = list(csv.DictReader(open(E["RAW"]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
has_cpu = all(r["cpu_s"] for r in rows)

def stat(vals):
    return statistics.median(vals), min(vals), max(vals)

def secs(label, cpu):
    return [float(r["cpu_s"]) if cpu else int(r["ns"]) / 1e9 for r in by[label]]

def rates(label, cpu=False, minus=0.0):
    # 10^6 bytes per second; `minus`: seconds taken off each run (the filter's startup).
    return [int(r["bytes"]) / 1e6 / max(t - minus, 1e-3) for r, t in zip(by[label], secs(label, cpu))]

def inproc(label, cpu=False):
    return [float(r["inproc_cpu_mb_per_s" if cpu else "inproc_mb_per_s"]) for r in by[label]]

startup_wall = statistics.median(secs("filter-startup", False))
startup_cpu = statistics.median(secs("filter-startup", True)) if has_cpu else 0.0
cold_wall = statistics.median(secs("filter-startup-cold", False))

def findings(label):
    # The alert file of the untimed run: one JSON object per finding or incident.
    path = os.path.join(E["OUT"], "alerts-" + label.split("-", 1)[1] + ".jsonl")
    n = 0
    try:
        for line in open(path, encoding="utf-8", errors="replace"):
            try:
                n += json.loads(line).get("event") == "finding"
            except ValueError:
                pass
    except OSError:
        return ""
    return f"{n} findings"

def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

def mib(b):
    return f"{int(b) / 1048576:.0f} MiB" if int(b) >= 1048576 else f"{int(b) / 1024:.0f} KiB"

table = []  # dicts: group, name, short, input, wall (med, lo, hi), cpu (med, lo, hi) or None, ceil, note
def add(group, name, short, inp, wall, cpu, ceil, note=""):
    # Paired: each round's rate over the same round's ceiling, then the median. The contenders of
    # a round run back to back, so a slow phase of a shared machine weighs on both sides.
    pair = statistics.median(w / c for w, c in zip(wall, ceil[2])) if len(wall) == len(ceil[2]) else None
    table.append(dict(group=group, name=name, short=short, input=inp, wall=stat(wall),
                      cpu=stat(cpu) if cpu else None, ceil=ceil, note=note, pair=pair))

def ceiling(label):
    return (stat(inproc(label))[0], stat(inproc(label, True))[0] if has_cpu else None, inproc(label))

def proc(label, minus=False):
    w = rates(label, False, startup_wall if minus else 0.0)
    c = rates(label, True, startup_cpu if minus else 0.0) if has_cpu else None
    return w, c

ev = lambda label: by[label][-1]["match_events"]
sliced = lambda key: "" if E[key + "_IN"] == E["MIXED"] else " slice"
M = "mixed.log " + mib(by["filter-text"][0]["bytes"])
ct = ceiling("hs_baseline-lines")
add("text", "raw hs_scan per line (hs_baseline, in-process): the ceiling", "text: hs_scan/line", M,
    inproc("hs_baseline-lines"), inproc("hs_baseline-lines", True) if has_cpu else None, ct,
    f"{ev('hs_baseline-lines')} match events")
add("text", "raw hs_scan, whole buffer in one call (hs_baseline --whole, in-process)", "text: hs_scan/whole", M,
    inproc("hs_baseline-whole"), inproc("hs_baseline-whole", True) if has_cpu else None, ct)
raw2 = None  # raw hs_scan's own two-thread speedup: (by medians, paired by round)
if "hs_baseline-lines-t2" in by:
    one, two = inproc("hs_baseline-lines"), inproc("hs_baseline-lines-t2")
    raw2 = (statistics.median(two) / statistics.median(one),
            statistics.median(b / a for a, b in zip(one, two)))
    add("text", "raw hs_scan per line on 2 threads (hs_baseline --threads 2, in-process): the ceiling for --threads 2",
        "text: hs_scan/line x2", M, two, inproc("hs_baseline-lines-t2", True) if has_cpu else None, ct,
        f"{raw2[0]:.2f}x one thread (paired by round {raw2[1]:.2f}x)")
add("text", "hs_baseline process (read + compile + scan)", "", M, *proc("hs_baseline-lines"), ct,
    "mostly the Hyperscan compile")
add("text", "mcp-scrub filter --format text", "text: filter", M, *proc("filter-text"), ct, findings("filter-text"))
add("text", "mcp-scrub filter --format text, minus startup", "text: filter -startup", M,
    *proc("filter-text", True), ct)
speedups = {}  # label of the two-thread run -> (by medians, paired by round, less start-up)

def speedup(one, two):  # the --threads 2 note: one thread's wall time over two threads'
    t1 = statistics.median(secs(one, False))
    t2 = statistics.median(secs(two, False))
    paired = statistics.median(a / b for a, b in zip(secs(one, False), secs(two, False)))
    less = (t1 - startup_wall) / max(t2 - startup_wall, 1e-3)
    speedups[two] = (t1 / t2, paired, less)
    return (f"{t1 / t2:.2f}x one thread by wall clock ({less:.2f}x "
            f"minus startup; paired by round {paired:.2f}x)")

add("text", "mcp-scrub filter --format text --threads 2 (wall clock is what counts here)", "text: filter --threads 2", M,
    *proc("filter-text-t2"), ct, speedup("filter-text", "filter-text-t2"))
add("text", "cat mixed.log | mcp-scrub filter --format text | cat > /dev/null: through pipes, the target's words",
    "text: cat|filter|cat", M, *proc("filter-text-pipe"), ct)
add("text", "cat mixed.log | mcp-scrub filter --format text --threads 2 | cat > /dev/null", "text: cat|filter -t2|cat", M,
    *proc("filter-text-t2-pipe"), ct, speedup("filter-text-pipe", "filter-text-t2-pipe"))
add("text", "cat mixed.log | cat > /dev/null", "cat|cat", M, *proc("cat"), ct)
if "cat3" in by:
    add("text", "cat mixed.log | cat | cat > /dev/null: the filter's pipes, a cat in its place", "cat|cat|cat", M,
        *proc("cat3"), ct)
add("text", f"GNU sed -E, {E['SED_RULES']} rules translated to ERE", f"sed -E ({E['SED_RULES']} rules)",
    "mixed.log " + mib(E["SED_BYTES"]) + sliced("SED"), *proc("sed"), ct)
add("text", f"rg --passthru -r, {E['RG_RULES']} rule regexes ({E['RG_REJECTED']} rejected by rg)", "rg (whole pack)",
    "mixed.log " + mib(E["RG_BYTES"]) + sliced("RG"), *proc("rg"), ct, "includes rg's regex compile")
add("text", f"rg --passthru -r, the same {E['SED_RULES']} rules as sed", "rg (sed's rules)",
    "mixed.log " + mib(E["RG_FEW_BYTES"]) + sliced("RG_FEW"), *proc("rg_few"), ct)
for tag in [l.split("-", 1)[1] for l in by if l.startswith("hs_baseline-") and l not in ("hs_baseline-lines", "hs_baseline-whole", "hs_baseline-lines-t2")]:
    first = by["filter-" + tag][0]
    inp = first["corpus"] + " " + mib(first["bytes"])
    c = ceiling("hs_baseline-" + tag)
    add(tag, "raw hs_scan per line (hs_baseline, in-process): the ceiling", f"{tag}: hs_scan/line", inp,
        inproc("hs_baseline-" + tag), inproc("hs_baseline-" + tag, True) if has_cpu else None, c,
        f"{ev('hs_baseline-' + tag)} match events")
    add(tag, "mcp-scrub filter --format json", f"{tag}: filter", inp, *proc("filter-" + tag), c, findings("filter-" + tag))
    add(tag, "mcp-scrub filter --format json, minus startup", f"{tag}: filter -startup", inp,
        *proc("filter-" + tag, True), c)
    if "filter-" + tag + "-t2" in by:
        add(tag, "mcp-scrub filter --format json --threads 2 (wall clock is what counts here)",
            f"{tag}: filter --threads 2", inp, *proc("filter-" + tag + "-t2"), c,
            speedup("filter-" + tag, "filter-" + tag + "-t2"))
    if "filter-" + tag + "-pipe" in by:
        add(tag, "cat | mcp-scrub filter --format json | cat > /dev/null: through pipes", f"{tag}: cat|filter|cat",
            inp, *proc("filter-" + tag + "-pipe"), c)

def ratio(v):
    return f"{v:.3f}" if v >= 0.001 else f"{v:.1e}"

info = {}
try:
    info = json.load(open(os.path.join(E["OUT"], "hs_baseline-lines.json")))
except (OSError, ValueError):
    pass
md = []
md.append("# Throughput: mcp-scrub filter vs. raw Hyperscan and common tools\n")
md.append(f"One process, one scanning thread unless a row says `--threads`; medians of {E['RUNS']} runs, contenders alternated within each round. "
          "MB/s = 10^6 bytes of input per second, by wall clock and per CPU second (user + sys of the "
          "command and its children; steadier when other work shares the machine). Ratios: to the raw "
          "per-line hs_scan of the same corpus, in-process, over the same database (the built-in rules "
          "plus the known values, as the filter compiles it); \"paired by round\": the median over rounds of "
          "each round's rate over that round's ceiling, steadier when the machine's speed drifts. \"Minus startup\": each run less the median "
          "time of the same filter on empty input (rule pack, RE2 programs, cached database, exit). "
          "Generated by `bench/run.sh`; corpora from `corpus/gen_corpus.py --seed " + E["SEED"] + "`.\n")
md.append("| contender | input | MB/s wall, median | min | max | MB/s per CPU s, median | ratio to hs_scan, wall | ratio, CPU | ratio, paired by round | notes |")
md.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for t in table:
    wm, wl, wh = t["wall"]
    cm = t["cpu"][0] if t["cpu"] else None
    cr = ratio(cm / t["ceil"][1]) if cm and t["ceil"][1] else ""
    md.append(f"| {t['name']} | {t['input']} | {fmt(wm)} | {fmt(wl)} | {fmt(wh)} | "
              f"{fmt(cm) if cm else ''} | {ratio(wm / t['ceil'][0])} | {cr} | "
              f"{ratio(t['pair']) if t['pair'] is not None else ''} | {t['note']} |")
md.append("")
md.append(f"- filter startup (`filter < /dev/null`, database from the cache): median {startup_wall * 1000:.1f} ms wall"
          + (f", {startup_cpu * 1000:.0f} ms CPU" if has_cpu else "") +
          f"; with `--no-cache` (compiles the rule pack and known values): median {cold_wall:.2f} s wall")
harness_wall = statistics.median(secs("harness", False))
md.append(f"- the harness's own cost in each wall-clock figure (`/bin/true` timed the same way, a process "
          f"start and exit): median {harness_wall * 1000:.1f} ms")
if info:
    md.append(f"- database: {info.get('rules')} rules, {info.get('known_values')} known values, "
              f"{info.get('patterns')} Hyperscan expressions; compile {info.get('compile_ms', 0):.0f} ms in hs_baseline")
md.append(f"- machine: {E['MACHINE_NPROC']} CPUs (`nproc`), {E['CPU']}, {E['FLAGS'].strip()}; {E['HSVER']}")
md.append(f"- load average before / after: {E['LOAD_BEFORE']} / {E['LOAD_AFTER']} (other work on the machine adds noise)")
md.append(f"- date {E['RUN_DATE']}, commit {E['COMMIT']}{E['DIRTY']}")
open(os.path.join(E["OUT"], "results.md"), "w").write("\n".join(md) + "\n")

# The figures the targets are judged by, for bench/targets.py (bench/run_all.sh).
def figures(short):
    t = next(t for t in table if t["short"] == short)
    return {"mb_per_s": t["wall"][0], "ceiling_mb_per_s": t["ceil"][0],
            "ratio": t["wall"][0] / t["ceil"][0], "paired": t["pair"]}
rate = lambda short: next(t for t in table if t["short"] == short)["wall"][0]
summary = {
    "commit": E["COMMIT"] + E["DIRTY"], "date": E["RUN_DATE"], "runs": int(E["RUNS"]),
    "text": figures("text: filter"), "json": figures("json: filter"),
    "text_pipes": figures("text: cat|filter|cat"), "json_pipes": figures("json: cat|filter|cat"),
    "cat3": figures("cat|cat|cat") if "cat3" in by else None,
    "startup_s": startup_wall,
    "rg_same_rules": {"rules": int(E["SED_RULES"]), "filter_over_rg": rate("text: filter") / rate("rg (sed's rules)")},
    "rg_whole_pack": {"filter_over_rg": rate("text: filter") / rate("rg (whole pack)")},
}
for key, label in (("threads2_text", "filter-text-t2"), ("threads2_json", "filter-json-t2"),
                   ("threads2_text_pipes", "filter-text-t2-pipe")):
    if label in speedups:
        med, paired, less = speedups[label]
        summary[key] = {"speedup": med, "paired": paired, "less_startup": less}
if raw2 and "threads2_text" in summary:
    summary["threads2_text"]["raw_hs_scan"] = raw2[0]
    summary["threads2_text"]["raw_hs_scan_paired"] = raw2[1]
json.dump(summary, open(os.path.join(E["OUT"], "summary.json"), "w"), indent=1)

with open(os.path.join(E["OUT"], "plot.tsv"), "w") as f:
    for t in table:
        if not t["short"]:  # the process row is mostly the database compile: in the table, not the chart
            continue
        c = t["cpu"] or t["wall"]
        f.write(t["short"] + "\t" + "\t".join(f"{v:.3f}" for v in (*t["wall"], *c)) + "\n")
print("\n".join(md))
PY

source "$ROOT/bench/png_terminal.sh"
gnuplot <<EOF
set terminal $(png_terminal 1400,650)
set output '$OUT/throughput.png'
set title "mcp-scrub filter vs raw hs_scan and common tools (one core), median of $RUNS runs, bars min-max; labels: MB per CPU second"
set ylabel 'MB/s (log scale)'
set logscale y
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1
set key top right
set style fill solid 0.7 border -1
set boxwidth 0.8
set xtics rotate by -35 scale 0
set rmargin 10
set bmargin 9
set datafile separator "\t"
set yrange [0.01:*]
plot '$OUT/plot.tsv' using 2:3:4:xtic(1) lc rgb '#3a6ea5' title 'wall clock', \
     '' using 5:6:7 lc rgb '#e0a030' title 'per CPU second', \
     '' using (\$0 + 1.0/6):(\$7):(sprintf(\$5 >= 100 ? "%.0f" : "%.2g", \$5)) with labels offset 0,0.7 font ',8' notitle
EOF
mkdir -p "$ROOT/docs/bench"
cp "$OUT/results.md" "$ROOT/docs/bench/results.md"
cp "$OUT/throughput.png" "$ROOT/docs/bench/throughput.png"
echo "run.sh: wrote $OUT/results.md, $OUT/throughput.png (copied to docs/bench/) in $(($(date +%s) - T_START))s" >&2
