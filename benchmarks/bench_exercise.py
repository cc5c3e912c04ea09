"""How long a class set takes (issue 23): ``symbackprop exercise SPEC --redraw --count 30 --key``
for the seed network (examples/seed.toml) and the small CNN exercise (examples/cnn-exercise.toml),
each run as a user runs it — a fresh process, imports included, writing every worksheet, skeleton,
spec, key and filled hand file and the index — its wall time the median of a few runs, with the
load average before and after (2 shared cores: read ±50%).

    python benchmarks/bench_exercise.py            # prints a table, writes benchmarks/results/exercise.md
    python benchmarks/bench_exercise.py --repeats 1

Target: under 30 s each (issue 23's "Must hold"; never a unit test).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 30.0
SPECS = ("examples/seed.toml", "examples/cnn-exercise.toml")
COUNT = 30


def wall(spec: str, folder: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symbackprop", "exercise", spec, "--redraw", "--count", str(COUNT),
                    "--key", "--force", "-o", str(folder / "sheet.md")], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "exercise.md"))
    args = ap.parse_args()
    rows = []
    for spec in SPECS:
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            times = [wall(spec, Path(tmp)) for _ in range(args.repeats)]
            files = len(list(Path(tmp).iterdir()))
        load_after = os.getloadavg()[0]
        median = statistics.median(times)
        rows.append(f"| `exercise {spec} --redraw --count {COUNT} --key` | {median:.1f} s | {min(times):.1f} s | "
                    f"{files} | {TARGET:.0f} s | {'yes' if median < TARGET else 'NO'} | "
                    f"{load_before:.2f} / {load_after:.2f} |")
    table = "\n".join([
        f"# A class set of {COUNT} exercises (issue 23)", "",
        f"{args.repeats} runs each, fresh processes, one BLAS thread; load = 1-minute load average before / after.",
        "", "| command | median | fastest | files | target | met | load |", "|---|---|---|---|---|---|---|",
        *rows]) + "\n"
    print(table)
    Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
