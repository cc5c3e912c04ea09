"""How long the per-weight (scalar) derivation takes: the seed net must derive in under a second.

    python benchmarks/bench_derive.py        # prints a table, writes benchmarks/results/derive.md

Medians of repeats, in a warm process (the derivation alone) and in a cold one (the whole
``symbackprop derive`` command, Python start-up and imports included).
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop import load  # noqa: E402
from symbackprop.derive.derivation import Derivation  # noqa: E402
from symbackprop.derive.model import Model  # noqa: E402
from symbackprop.numeric.values import evaluate  # noqa: E402
from symbackprop.spec.network import Network  # noqa: E402

REPEATS = 7


def median_seconds(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sized(layers):
    return Network.from_dict({"network": {"layers": layers, "activations": ["sigmoid"] * (len(layers) - 1),
                                          "loss": "squared_error"}})


def main():
    seed = load(ROOT / "examples/seed.toml")
    rows = [("seed 3-2-1: derivation", median_seconds(lambda: Derivation(Model(seed)))),
            ("seed 3-2-1: derivation + float64 numbers", median_seconds(lambda: evaluate(Derivation(Model(seed))))),
            ("seed 3-2-1: `symbackprop derive` cold, end to end", median_seconds(
                lambda: subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(ROOT / "examples/seed.toml")],
                                       check=True, capture_output=True, cwd=ROOT), repeats=5)),
            ("16-16-4 (340 parameters): derivation", median_seconds(lambda: Derivation(Model(sized([16, 16, 4]))), 3))]
    lines = ["| what | median seconds |", "|---|---|"] + [f"| {name} | {secs:.3f} |" for name, secs in rows]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "benchmarks/results/derive.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("# Scalar derivation times\n\n" + table + "\n")


if __name__ == "__main__":
    main()
