"""How long worked examples and derivations of the bundled CNNs take, end to end (issue 20, issue 18
item 18): each command run as a user runs it — a fresh process, imports included — its wall time
the median of a few runs, with the load average before and after (2 shared cores: read ±50%).

    python benchmarks/bench_explain.py            # prints a table, writes benchmarks/results/explain.md
    python benchmarks/bench_explain.py --repeats 1

Targets: under 5 s for the first three, under 3 s for the last (timings are never a unit test;
tests/test_templates.py holds the numbers and documents equal to the slow route's).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = [   # (command, target in seconds, before the template route: measured in issue 20)
    ("explain examples/cnn.toml --init 0", 5.0, 65),
    ("derive examples/cnn.toml --init 0 --format json", 5.0, 36),
    ("derive examples/cnn.toml --init 0 --form scalar", 5.0, 49),
    ("derive examples/lenet.toml --init 0 --format json", 3.0, 8.6),
]


def wall(command: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symbackprop", *command.split()], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explain.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    for command, target, before in COMMANDS:
        times = [wall(command) for _ in range(args.repeats)]
        rows.append((command, statistics.median(times), min(times), target, before))
        print(f"{command}: median {rows[-1][1]:.1f} s (min {rows[-1][2]:.1f} s), target < {target:g} s", flush=True)
    load_after = os.getloadavg()
    lines = ["# Worked examples and derivations of CNNs: wall time of the command", "",
             f"`python benchmarks/bench_explain.py --repeats {args.repeats}`: each command in a fresh process "
             f"(imports included), median and fastest of {args.repeats}. Load average (1, 5, 15 min) "
             f"{', '.join(f'{x:.2f}' for x in load_before)} before, {', '.join(f'{x:.2f}' for x in load_after)} "
             f"after, on {os.cpu_count()} cores.", "",
             "| command | median | fastest | target | before (issue 20) |", "|---|---|---|---|---|"]
    lines += [f"| `symbackprop {c}` | {m:.1f} s | {lo:.1f} s | < {t:g} s | {b:g} s |" for c, m, lo, t, b in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
