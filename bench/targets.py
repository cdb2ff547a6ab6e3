#!/usr/bin/env python3
"""The performance targets, judged from what the bench scripts of one bench/run_all.sh wrote.

Reads bench/out/summary.json (bench/run.sh), bench/out/rtt.jsonl (bench/run_rtt.sh),
bench/out/memory.tsv (bench/run_memory.sh) and bench/out/rule_cost.jsonl (hs_baseline
--rule-cost), and prints a Markdown table: each target, what this run measured, met or not.
A missing input is reported as not measured, never guessed.

    python3 bench/targets.py [OUT_DIR]   (default bench/out)
"""
import json
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "out")


def load_json(name):
    try:
        return json.load(open(os.path.join(OUT, name)))
    except (OSError, ValueError):
        return None


def load_lines(name):
    try:
        return [json.loads(l) for l in open(os.path.join(OUT, name)) if l.strip()]
    except (OSError, ValueError):
        return None


rows = []  # (target, measured, verdict)


def judge(target, ok, measured):
    rows.append((target, measured, "met" if ok else "**not met**"))


def missing(target, what):
    rows.append((target, f"not measured ({what} missing)", "not measured"))


sources = []
s = load_json("summary.json")
if s:
    sources.append(f"`bench/run.sh`: commit {s['commit']}, {s['date']}, {s['runs']} rounds")
    t, j = s["text"], s["json"]
    # "End to end through pipes": judged on `cat | filter | cat` where the run has it; reading
    # the file itself is shown beside it.
    tp = s.get("text_pipes")
    x = tp or t
    judge("`filter --format text` >= 0.70 of raw `hs_scan`" + (", through pipes" if tp else ""), x["ratio"] >= 0.70,
          f"{x['ratio']:.3f} (paired by round {x['paired']:.3f}; {x['mb_per_s']:.0f} of {x['ceiling_mb_per_s']:.0f} MB/s)"
          + (f"; reading the file: {t['ratio']:.3f} (paired {t['paired']:.3f})" if tp else "")
          + (f"; the same pipes with `cat` in the filter's place: {s['cat3']['ratio']:.3f}" if s.get("cat3") else ""))
    rg, rga = s["rg_same_rules"], s["rg_whole_pack"]
    judge("`filter --format text` >= 3x ripgrep", rg["filter_over_rg"] >= 3 or rga["filter_over_rg"] >= 3,
          f"{rga['filter_over_rg']:,.0f}x rg with the whole pack; {rg['filter_over_rg']:.2f}x rg with only "
          f"{rg['rules']} of the rules")
    jp = s.get("json_pipes")
    judge("`filter --format json` >= 0.50 of raw `hs_scan`", j["ratio"] >= 0.50,
          f"{j['ratio']:.3f} (paired by round {j['paired']:.3f}; {j['mb_per_s']:.0f} of {j['ceiling_mb_per_s']:.0f} MB/s)"
          + (f"; through pipes {jp['ratio']:.3f} (paired {jp['paired']:.3f})" if jp else ""))
    for key, corpus in (("threads2_text", "mixed log"), ("threads2_json", "JSON log lines")):
        if key in s:
            x = s[key]
            p = s.get("threads2_text_pipes") if key == "threads2_text" else None
            judge(f"`filter --threads 2` >= 1.7x one thread ({corpus})", x["speedup"] >= 1.7,
                  f"{x['speedup']:.2f}x (paired by round {x['paired']:.2f}x; {x['less_startup']:.2f}x less start-up)"
                  + (f"; raw `hs_scan` on 2 threads in the same run {x['raw_hs_scan']:.2f}x (paired {x['raw_hs_scan_paired']:.2f}x)"
                     if "raw_hs_scan" in x else "")
                  + (f"; through pipes, whose `cat`s share the 2 CPUs, {p['speedup']:.2f}x (paired {p['paired']:.2f}x)"
                     if p else ""))
else:
    missing("`filter` throughput and `--threads 2`", "bench/out/summary.json")

rtt = load_lines("rtt.jsonl")
if rtt:
    head, rtt = rtt[0], rtt[1:]
    sources.append(f"`bench/run_rtt.sh`: commit {head['commit']}, {head['date']}, {head['idle']}")
    wrap = {(r["bytes"], bool(r["secret"])): r for r in rtt if r["contender"] == "mcp-scrub"}
    r = wrap.get((1024, False))
    if r:
        judge("wrap: 1 KB added p50 <= 20 µs, p99 <= 100 µs", r["added_p50_us"] <= 20 and r["added_p99_us"] <= 100,
              f"{r['added_p50_us']:.1f} / {r['added_p99_us']:.1f} µs (`bench/run_idle_ab.sh` shows the VM's idle setting's part)")
    r = wrap.get((1048576, False))
    if r:
        judge("wrap: 1 MB clean >= 500 MB/s", r["MBps"] >= 500,
              f"{r['MBps']:.0f} MB/s; CPU-bound ceiling on this machine {r['cpu_bound_MBps']:.0f}")
    r = wrap.get((1048576, True))
    if r:
        judge("wrap: 1 MB with secrets >= 200 MB/s", r["MBps"] >= 200,
              f"{r['MBps']:.0f} MB/s; CPU-bound ceiling {r['cpu_bound_MBps']:.0f}")
    firsts = [r["first_response_ms"] for r in wrap.values()]
    if firsts:
        judge("start-up to the first answer <= 50 ms", max(firsts) <= 50,
              f"{min(firsts):.1f}-{max(firsts):.1f} ms (first response of each wrap run)"
              + (f"; `filter` on empty input {s['startup_s'] * 1000:.0f} ms" if s else ""))
else:
    missing("the stdio wrap's round trips and start-up", "bench/out/rtt.jsonl")

try:
    mem = [l.rstrip("\n").split("\t") for l in open(os.path.join(OUT, "memory.tsv"))]
    sources.append("`bench/run_memory.sh`: " + mem[0][0].lstrip("# "))
    jobs = [(label, int(kib), int(limit)) for label, _largest, kib, limit in mem[1:]]
    worst = max(jobs, key=lambda x: x[1] / x[2])
    judge("peak memory <= 64 MiB + 2 x the largest message", all(k <= lim for _, k, lim in jobs),
          f"{len(jobs)} jobs; closest to its target: {worst[0]}, {worst[1] / 1024:.0f} of {worst[2] / 1024:.0f} MiB")
except (OSError, ValueError, IndexError):
    missing("peak memory", "bench/out/memory.tsv")

# Per-rule cost over each corpus run_all.sh measured: the mixed log, the wrap benchmark's 1 MB
# tool result (words such as `path` wake rules whose regexes start with `pat`) and its string
# decoded (line breaks where the result has "\n").
costs = []
for name, what in (("rule_cost.jsonl", "16 MB of the mixed log"),
                   ("rule_cost_result.jsonl", "the wrap benchmark's 1 MB tool result, scanned whole"),
                   ("rule_cost_decoded.jsonl", "that result's string decoded, scanned whole")):
    rc = load_lines(name)
    if not rc:
        continue
    head, rules = rc[0], [r for r in rc[1:] if r.get("share") is not None]
    sources.append(f"`hs_baseline --rule-cost --rule-cost-top {head['compared']}` over {what}: "
                   f"{head['rules']} rules alone, the {head['compared']} slowest alone compared with "
                   f"the set, {head['runs']} paired runs")
    top = max(rules, key=lambda r: r["share"])
    costs.append((what, top))
if costs:
    judge("no single rule costs the set more than 10%", all(t["share"] <= 0.10 for _, t in costs),
          "; ".join(f"{what.split(',')[0]}: costliest `{t['rule']}` {t['share'] * 100:.1f}%"
                    for what, t in costs))
else:
    missing("per-rule cost", "bench/out/rule_cost.jsonl")

print("# Performance targets\n")
print("Judged by `bench/targets.py` from one `bash bench/run_all.sh` on this machine "
      f"({os.cpu_count()} CPUs). Details and the commands behind each figure: the README's Performance "
      "section and the other files of docs/bench/.\n")
print("| target | this run | |")
print("| --- | --- | --- |")
for target, measured, verdict in rows:
    print(f"| {target} | {measured} | {verdict} |")
print()
for src in sources:
    print(f"- {src}")
