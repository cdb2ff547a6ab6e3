#!/usr/bin/env bash
# Soak: the stdio wrap and `tcp -- COMMAND` under steady traffic from the leaky test server, and
# `filter` under a log stream at 20 MB/s, for SOAK_SECONDS each (default 300), with SIGHUP
# reloads, watched for memory growth, descriptor, thread and child leaks, unanswered requests,
# lost lines and any secret on the way out (bench/soak.py says exactly what fails a run). Writes docs/bench/soak.md and docs/bench/soak.png (resident memory
# over time). Exit status 1 if either run failed.
#   SOAK_SECONDS=300 bash bench/run_soak.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
S=${SOAK_SECONDS:-300}
for t in mcp-scrub tests/leaky_server; do
  [[ -x $B/$t ]] || { echo "run_soak.sh: $B/$t not built (cmake --build $B)" >&2; exit 2; }
done
out=docs/bench/soak.md
# The samples stay in bench/out (the plot can be redrawn from them).
tmp=bench/out/soak
mkdir -p "$tmp"
status=0
for mode in wrap tcp filter; do
  cmd=(python3 bench/soak.py "$B/mcp-scrub" "$B/tests/leaky_server" --mode "$mode" --seconds "$S"
       --samples "$tmp/$mode.tsv")
  echo "+ ${cmd[*]}" >&2
  "${cmd[@]}" > "$tmp/$mode.json" || status=1
  cat "$tmp/$mode.json" >&2
done

source bench/png_terminal.sh
gnuplot <<EOF
set terminal $(png_terminal 1100,450)
set output 'docs/bench/soak.png'
set title 'mcp-scrub soak: resident memory over time (bench/run_soak.sh, ${S} s each)'
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
set key bottom right
set grid
set yrange [0:*]
plot '$tmp/wrap.tsv' using 1:(\$2/1024) every ::1 with lines lw 2 title 'stdio wrap (one session)', \
     '$tmp/tcp.tsv' using 1:(\$2/1024) every ::1 with lines lw 2 title 'tcp -- COMMAND (4 clients, a connection per session)', \
     '$tmp/filter.tsv' using 1:(\$2/1024) every ::1 with lines lw 2 title 'filter --format text (20 MB/s)'
EOF

python3 - "$tmp" "$S" "$(git rev-parse --short HEAD)" > "$out" <<'EOF'
import json, sys, datetime
tmp, secs, rev = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {m: json.load(open(f"{tmp}/{m}.json")) for m in ("wrap", "tcp", "filter")}
mib = lambda k: f"{k / 1024:.1f} MiB"
print("# Soak")
print()
print(f"`bash bench/run_soak.sh` (SOAK_SECONDS={secs}) on "
      f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')}, commit {rev}: "
      "each mode under steady traffic from the leaky test server (every channel it leaks "
      "through, fake secrets generated for the run, a 1 MiB result and a 300 KB escaped log in "
      "every round); `filter --format text` under a log stream written at 20 MB/s (one line in "
      "50 with a secret), its output read back whole. Each was sent SIGHUP (a reload of its "
      "secrets and engine) every 15 s. "
      "`bench/soak.py` reads the proxy's /proc once a second. A run fails on a secret seen on "
      "the way out, an unanswered request, a wrong exit, resident memory more than 4 MiB higher "
      "in the last tenth than in the first tenth after the warm-up (20 s or a tenth of the run), "
      "(tcp) descriptors, threads or children left once every connection closed, or (filter) a "
      "line lost or a line with a secret out unmasked.")
print()
print("| | stdio wrap | tcp -- COMMAND | filter |")
print("| --- | ---: | ---: | ---: |")
rows = [
    ("verdict", lambda r: "**passed**" if r["ok"] else "**FAILED**: " + "; ".join(r["failures"])),
    ("seconds", lambda r: r["seconds"]),
    ("requests answered (sessions); filter: lines", lambda r: f"{r['requests']:,}" + ("" if r["mode"] == "filter" else f" ({r['sessions']:,})")),
    ("lines out, MB", lambda r: f"{r['lines']:,}, {r['MB_out']:,}"),
    ("secrets seen on the way out", lambda r: r["leaks"]),
    ("SIGHUP reloads", lambda r: r["sighups"]),
    ("resident memory, first tenth after warm-up", lambda r: mib(r["rss_first_kib"])),
    ("resident memory, last tenth", lambda r: mib(r["rss_last_kib"])),
    ("growth (slope over the steady part)", lambda r: f"{r['rss_growth_kib']:,} KiB ({r['rss_slope_kib_per_min']:,} KiB/min)"),
    ("peak resident (VmHWM)", lambda r: mib(r["hwm_kib"])),
    ("threads: start / max / end", lambda r: f"{r['threads_start']} / {r['threads_max']} / {r['threads_end']}"),
    ("descriptors: start / max / end", lambda r: f"{r['fds_start']} / {r['fds_max']} / {r['fds_end']}"),
    ("children: max / end", lambda r: f"{r['children_max']} / {r['children_end']}"),
]
for name, f in rows:
    print(f"| {name} | " + " | ".join(str(f(runs[m])) for m in ("wrap", "tcp", "filter")) + " |")
print()
print("![resident memory over time](soak.png)")
print()
print("The tcp column's start is the proxy before its first connection and its end "
      "after the last one closed; the wrap's and filter's end is with their input still open. The wrap's "
      "request table (it names a response's method and tool in alerts) keeps up to 10,000 "
      "entries when the server's own requests (sampling, elicitation) go unanswered, as this "
      "client leaves them: about 400 KiB, reached in the first minute.")
EOF
cat "$out"
exit $status
