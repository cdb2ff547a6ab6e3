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
add "hs_baseline-lines" mixed.log "$MIXED_BYTES" \
  "$HSB --secrets-file $SECRETS --runs 1 $MIXED > $OUT/hs_baseline-lines.json"
add "hs_baseline-whole" mixed.log "$MIXED_BYTES" \
  "$HSB --secrets-file $SECRETS --runs 1 --whole $MIXED > $OUT/hs_baseline-whole.json"
add "cat" mixed.log "$MIXED_BYTES" "cat $MIXED | cat > /dev/null"
add "sed" mixed.log "$SED_BYTES" "${SED_TMPL//@IN@/$SED_IN}"
add "rg" mixed.log "$RG_BYTES" "${RG_TMPL//@IN@/$RG_IN}"
add "rg_few" mixed.log "$RG_FEW_BYTES" "${RG_FEW_TMPL//@IN@/$RG_FEW_IN}"
for js in "${JSON_SETS[@]}"; do
  tag=${js%%:*} file=$GEN/${js#*:}
  add "filter-$tag" "${js#*:}" "$(stat -c %s "$file")" \
    "$SCRUB filter --format json $FILTER_OPTS < $file > /dev/null 2> $OUT/filter-$tag.stderr"
  add "hs_baseline-$tag" "${js#*:}" "$(stat -c %s "$file")" \
    "$HSB --secrets-file $SECRETS --runs 1 $file > $OUT/hs_baseline-$tag.json"
done
add "filter-startup" empty 0 "$SCRUB filter --format text $FILTER_OPTS < /dev/null > /dev/null 2>&1"
# The filter caches compiled databases (~/.cache/mcp-scrub); --no-cache shows the first start.
add "filter-startup-cold" empty 0 "$SCRUB filter --format text $FILTER_OPTS --no-cache < /dev/null > /dev/null 2>&1"

echo "Commands (each run $RUNS times, alternated; timed with date +%s%N):"
for i in "${!NAMES[@]}"; do printf '  [%s] %s\n' "${NAMES[$i]}" "${CMDS[$i]}"; done

# Warm the filter's database cache, so every timed run sees the steady state (cold: its own row).
bash -c "$SCRUB filter --format text $FILTER_OPTS < /dev/null > /dev/null 2>&1"

RAW=$OUT/raw.tsv
printf 'label\tcorpus\tbytes\trep\tns\tinproc_mb_per_s\tmatch_events\n' > "$RAW"
for rep in $(seq 1 "$RUNS"); do
  for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    t0=$(date +%s%N)
    bash -c "${CMDS[$i]}"
    t1=$(date +%s%N)
    inproc="" events=""
    if [[ $name == hs_baseline-* ]]; then
      read -r inproc events < <(python3 -c "import json; d=json.load(open('$OUT/$name.json')); print(d['mb_per_s'], d['match_events'])")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${CORPUS[$i]}" "${BYTES[$i]}" "$rep" $((t1 - t0)) "$inproc" "$events" >> "$RAW"
  done
  echo "run.sh: round $rep/$RUNS done ($(($(date +%s) - T_START))s)" >&2
done
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
import csv, json, os, re, statistics
E = os.environ
rows = list(csv.DictReader(open(E["RAW"]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)

def stat(vals):
    return statistics.median(vals), min(vals), max(vals)

def wall_rates(label):
    rs = by[label]
    return [int(r["bytes"]) / 1e6 / (int(r["ns"]) / 1e9) for r in rs]

def inproc(label):
    return [float(r["inproc_mb_per_s"]) for r in by[label]]

startup = [int(r["ns"]) / 1e9 for r in by["filter-startup"]]
st_med = statistics.median(startup)
cold = [int(r["ns"]) / 1e9 for r in by["filter-startup-cold"]]

def adjusted(label):
    # Wall time minus the median time of the filter on empty input (rule pack, RE2 programs,
    # the cached database, exit): what is left is the data path.
    return [int(r["bytes"]) / 1e6 / max(int(r["ns"]) / 1e9 - st_med, 1e-6) for r in by[label]]

def findings(label):
    # The alert file of the untimed run: one JSON object per finding or incident.
    path = os.path.join(E["OUT"], "alerts-" + label.split("-")[1] + ".jsonl")
    n = 0
    try:
        for line in open(path, encoding="utf-8", errors="replace"):
            try:
                a = json.loads(line)
            except ValueError:
                continue
            n += a.get("event") == "finding"
    except OSError:
        return ""
    return f"{n} findings"

def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

def mib(b):
    return f"{int(b) / 1048576:.0f} MiB" if int(b) >= 1048576 else f"{int(b) / 1024:.0f} KiB"

ceil_text = stat(inproc("hs_baseline-lines"))[0]
mixed_bytes = by["filter-text"][0]["bytes"]
table = []  # (group, contender, short label for the chart, input, (med, lo, hi), ratio, note)
def add(group, name, short, inp, vals, ceil, note=""):
    s = stat(vals)
    table.append((group, name, short, inp, s, s[0] / ceil, note))

ev = lambda label: by[label][-1]["match_events"]
M = "mixed.log " + mib(mixed_bytes)
add("text", "raw hs_scan per line (hs_baseline, in-process): the ceiling", "text: hs_scan/line", M,
    inproc("hs_baseline-lines"), ceil_text, f"{ev('hs_baseline-lines')} match events")
add("text", "raw hs_scan, whole buffer in one call (hs_baseline --whole, in-process)", "text: hs_scan/whole", M,
    inproc("hs_baseline-whole"), ceil_text, f"{ev('hs_baseline-whole')} match events")
add("text", "hs_baseline process, wall clock (read + compile + scan)", "", M,
    wall_rates("hs_baseline-lines"), ceil_text, "mostly the Hyperscan compile")
add("text", "mcp-scrub filter --format text, wall clock", "text: filter", M,
    wall_rates("filter-text"), ceil_text, findings("filter-text"))
add("text", "mcp-scrub filter --format text, wall minus startup", "text: filter -startup", M,
    adjusted("filter-text"), ceil_text)
add("text", "cat mixed.log | cat > /dev/null", "cat|cat", M, wall_rates("cat"), ceil_text)
add("text", f"GNU sed -E, {E['SED_RULES']} rules translated to ERE", f"sed -E ({E['SED_RULES']} rules)",
    "mixed.log " + mib(E["SED_BYTES"]) + ("" if E["SED_IN"] == E["MIXED"] else " slice"), wall_rates("sed"), ceil_text)
add("text", f"rg --passthru -r, {E['RG_RULES']} rule regexes ({E['RG_REJECTED']} rejected by rg)", "rg (whole pack)",
    "mixed.log " + mib(E["RG_BYTES"]) + ("" if E["RG_IN"] == E["MIXED"] else " slice"), wall_rates("rg"), ceil_text,
    "includes rg's regex compile")
add("text", f"rg --passthru -r, the same {E['SED_RULES']} rules as sed", "rg (sed's rules)",
    "mixed.log " + mib(E["RG_FEW_BYTES"]) + ("" if E["RG_FEW_IN"] == E["MIXED"] else " slice"), wall_rates("rg_few"), ceil_text)
for tag in [l.split("-", 1)[1] for l in by if l.startswith("hs_baseline-") and l not in ("hs_baseline-lines", "hs_baseline-whole")]:
    name = by["filter-" + tag][0]["corpus"]
    inp = name + " " + mib(by["filter-" + tag][0]["bytes"])
    ceil = stat(inproc("hs_baseline-" + tag))[0]
    add(tag, "raw hs_scan per line (hs_baseline, in-process): the ceiling", f"{tag}: hs_scan/line", inp,
        inproc("hs_baseline-" + tag), ceil, f"{ev('hs_baseline-' + tag)} match events")
    add(tag, "mcp-scrub filter --format json, wall clock", f"{tag}: filter", inp,
        wall_rates("filter-" + tag), ceil, findings("filter-" + tag))
    add(tag, "mcp-scrub filter --format json, wall minus startup", f"{tag}: filter -startup", inp,
        adjusted("filter-" + tag), ceil)

info = {}
try:
    info = json.load(open(os.path.join(E["OUT"], "hs_baseline-lines.json")))
except (OSError, ValueError):
    pass
md = []
md.append("# Throughput: mcp-scrub filter vs. raw Hyperscan and common tools\n")
md.append(f"One core per process; medians of {E['RUNS']} runs, contenders alternated within each round. "
          "MB/s = 10^6 bytes of input per second. Ratio: to the raw per-line hs_scan of the same corpus "
          "(same database: built-in rules plus the known values, as the filter compiles it). "
          "Generated by `bench/run.sh`; corpora from `corpus/gen_corpus.py --seed " + E["SEED"] + "`.\n")
md.append("| contender | input | MB/s median | min | max | ratio to hs_scan | notes |")
md.append("| --- | --- | ---: | ---: | ---: | ---: | --- |")
for g, name, short, inp, (med, lo, hi), ratio, note in table:
    md.append(f"| {name} | {inp} | {fmt(med)} | {fmt(lo)} | {fmt(hi)} | {ratio:.3f} | {note} |" if ratio >= 0.001 else
              f"| {name} | {inp} | {fmt(med)} | {fmt(lo)} | {fmt(hi)} | {ratio:.1e} | {note} |")
md.append("")
md.append(f"- filter startup (`filter < /dev/null`, database from the cache): median "
          f"{st_med:.2f} s, min {min(startup):.2f} s, max {max(startup):.2f} s; with `--no-cache` "
          f"(compiles the rule pack and known values): median {statistics.median(cold):.2f} s")
if info:
    md.append(f"- database: {info.get('rules')} rules, {info.get('known_values')} known values, "
              f"{info.get('patterns')} Hyperscan expressions; compile {info.get('compile_ms', 0):.0f} ms in hs_baseline")
md.append(f"- machine: {E['MACHINE_NPROC']} CPUs (`nproc`), {E['CPU']}, {E['FLAGS'].strip()}; {E['HSVER']}")
md.append(f"- load average before / after: {E['LOAD_BEFORE']} / {E['LOAD_AFTER']} (other work on the machine adds noise)")
md.append(f"- date {E['RUN_DATE']}, commit {E['COMMIT']}{E['DIRTY']}")
open(os.path.join(E["OUT"], "results.md"), "w").write("\n".join(md) + "\n")

with open(os.path.join(E["OUT"], "plot.tsv"), "w") as f:
    for g, name, short, inp, (med, lo, hi), ratio, note in table:
        if short:  # the process row is mostly the database compile: in the table, not the chart
            f.write(f"{short}\t{med:.3f}\t{lo:.3f}\t{hi:.3f}\t{g}\n")
print("\n".join(md))
PY

# pngcairo when this gnuplot has it (gnuplot-nox on Debian does), else the libgd png terminal.
TERM_PNG="png noenhanced size 1400,650"
if gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo; then TERM_PNG="pngcairo noenhanced size 1400,650 font 'sans,10'"; fi
gnuplot <<EOF
set terminal $TERM_PNG
set output '$OUT/throughput.png'
set title "mcp-scrub filter vs raw hs_scan and common tools (one core), median of $RUNS runs, bars min-max"
set ylabel 'MB/s (log scale)'
set logscale y
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.8
set xtics rotate by -35 scale 0
set rmargin 10
set bmargin 9
set key off
set datafile separator "\t"
set yrange [0.01:*]
plot '$OUT/plot.tsv' using 2:3:4:xtic(1) lc rgb '#3a6ea5', \
     '' using (\$0):(\$4):(sprintf(\$2 >= 100 ? "%.0f" : "%.2g", \$2)) with labels offset 0,0.8 notitle
EOF
mkdir -p "$ROOT/docs/bench"
cp "$OUT/results.md" "$ROOT/docs/bench/results.md"
cp "$OUT/throughput.png" "$ROOT/docs/bench/throughput.png"
echo "run.sh: wrote $OUT/results.md, $OUT/throughput.png (copied to docs/bench/) in $(($(date +%s) - T_START))s" >&2
