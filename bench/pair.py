#!/usr/bin/env python3
"""A/B timing of two shell commands, alternated, for changes smaller than the machine's drift.

    python3 bench/pair.py N 'COMMAND A' 'COMMAND B'

Runs A and B N times each, swapping which goes first every round, and prints the median wall
time of each and the median of the per-round differences (B - A), the steadier figure when the
machine's speed moves between rounds. Each command runs through the shell (redirections work),
so both carry a shell's start-up. The README's `--threads 2` figures of the seventh 2026-11-28
session were taken with it.
"""
import statistics
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) != 4 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    n, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    times = {"a": [], "b": []}
    diffs = []
    for i in range(n):
        order = (("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a))
        this = {}
        for key, cmd in order:
            t = time.perf_counter()
            subprocess.run(cmd, shell=True, check=False)
            this[key] = (time.perf_counter() - t) * 1e3
        times["a"].append(this["a"])
        times["b"].append(this["b"])
        diffs.append(this["b"] - this["a"])
    print(f"A median {statistics.median(times['a']):.2f} ms  "
          f"B median {statistics.median(times['b']):.2f} ms  "
          f"median(B-A) {statistics.median(diffs):+.2f} ms  n={n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
