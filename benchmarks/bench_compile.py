"""Benchmark of the matrix-form derivation and its compiled NumPy code (issue 4).

(a) Cold start: ``symbackprop derive`` of a 784-256-128-10 relu/relu/softmax network with
    cross-entropy in matrix form, as a fresh process (Python start-up and imports included): wall
    time (median of the runs) and peak memory (max RSS of the children, from
    ``resource.getrusage(RUSAGE_CHILDREN)``). Targets: under 2 s and under 500 MB. Uses
    ``python -m symbackprop derive SPEC --form matrix`` when the command line has it, otherwise a
    ``python -c`` that calls derive_matrix + render_matrix + compile_network.
(b) Speed: the compiled ``gradients`` against the hand-written NumPy backprop of
    ``benchmarks/handwritten.py`` on the same network and data, interleaved repeats (the order
    alternating each round), medians, ratio; one BLAS thread. Targets: ratio within 1.10 on
    784-128-10 at batch 128 and 784-256-256-256-10 at batch 256 (float64). float32 rows are
    informative.

Prints a Markdown table and writes it to ``benchmarks/results/compile.md``.

    python benchmarks/bench_compile.py            # full run (about a minute)
    python benchmarks/bench_compile.py --quick    # fewer repeats, for a smoke test
"""
import os

# one BLAS thread, set before NumPy is imported (here and in the child processes)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from handwritten import Handwritten  # noqa: E402

from symbackprop import Network  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "compile.md"
COLD_SPEC = """[network]
layers = [784, 256, 128, 10]
activations = ["relu", "relu", "softmax"]
loss = "cross_entropy"
"""
FALLBACK = ("import sys; from symbackprop.spec.network import load; "
            "from symbackprop.derive.matrix import derive_matrix; from symbackprop.report.matrix import render_matrix; "
            "from symbackprop.codegen.compiled import compile_network; "
            "net = load(sys.argv[1]); print(render_matrix(derive_matrix(net), 'text')); compile_network(net)")
# (sizes, batch, dtype, hidden, output, loss, target)
MNIST = ("relu", "softmax", "cross_entropy")
SPEED = [((784, 128, 10), 128, "float64", *MNIST, 1.10), ((784, 256, 256, 256, 10), 256, "float64", *MNIST, 1.10),
         ((784, 128, 10), 128, "float32", *MNIST, None), ((784, 256, 256, 256, 10), 256, "float32", *MNIST, None),
         ((3, 2, 1), 1, "float64", "sigmoid", "sigmoid", "squared_error", None),
         ((64, 32, 1), 32, "float64", "tanh", "sigmoid", "binary_cross_entropy", None)]


def cli_has_matrix_form(spec: Path) -> bool:
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(spec), "--form", "matrix"],
                         cwd=ROOT, capture_output=True, text=True)
    return run.returncode == 0 and "matrix form" in run.stdout


def cold_start(runs: int):
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "mnist.toml"
        spec.write_text(COLD_SPEC)
        if cli_has_matrix_form(spec):
            command = [sys.executable, "-m", "symbackprop", "derive", str(spec), "--form", "matrix"]
            label = "python -m symbackprop derive SPEC --form matrix"
        else:
            command = [sys.executable, "-c", FALLBACK, str(spec)]
            label = "python -c '<derive_matrix + render_matrix + compile_network>' SPEC"
        times, cpu = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
    return label, times, cpu, rss_mb


def make_data(sizes, batch, dtype, loss, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for l in range(1, len(sizes)):
        params[f"W{l}"] = (rng.standard_normal((sizes[l], sizes[l - 1])) * np.sqrt(2 / sizes[l - 1])).astype(dtype)
        params[f"b{l}"] = np.zeros(sizes[l], dtype)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    else:
        Y = rng.uniform(0, 1, (batch, sizes[-1])).astype(dtype)
    return params, X, Y


def speed(sizes, batch, dtype, hidden, output, loss, rounds, calls):
    net = Network.from_dict({"network": {"layers": list(sizes), "activations": [hidden] * (len(sizes) - 2) + [output],
                                         "loss": loss}})
    compiled = net.compile(dtype).gradients
    hand = Handwritten(sizes, hidden, output, loss, dtype).gradients
    params, X, Y = make_data(sizes, batch, dtype, loss)
    got, want = compiled(params, X, Y), hand(params, X, Y)
    err = max(float(np.max(np.abs(got[k] - want[k]))) for k in want)
    timings = {"compiled": [], "hand": []}
    for _ in range(3):  # warm-up: buffers, caches
        compiled(params, X, Y), hand(params, X, Y)
    for r in range(rounds):
        order = (("compiled", compiled), ("hand", hand))
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            for _ in range(calls):
                fn(params, X, Y)
            timings[name].append((time.perf_counter() - start) / calls)
    med = {k: statistics.median(v) for k, v in timings.items()}
    return med["compiled"], med["hand"], err


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
        info = [f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, {p.get('num_threads')} thread)"
                for p in threadpool_info() if p.get("user_api") == "blas"]
        return "; ".join(info) or "unknown"
    except ImportError:
        return "threadpoolctl not installed"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of (b) (default 30)")
    args = parser.parse_args()
    runs, rounds = (2, 6) if args.quick else (5, 30)
    rounds = args.rounds or rounds
    load_before = os.getloadavg()[0]
    label, times, cpu, rss = cold_start(runs)
    rows = []
    for sizes, batch, dtype, hidden, output, loss, target in SPEED:
        calls = 5 if sizes[1] == 256 else 20 if sizes[0] == 784 else 200
        c, h, err = speed(sizes, batch, dtype, hidden, output, loss, rounds, calls)
        what = f"{'-'.join(map(str, sizes))} {hidden}/{output}, {loss}"
        goal = f"≤ {target:.2f}" if target else "(info)"
        rows.append(f"| {what} | {batch} | {dtype} | {c * 1e3:.3f} ms | {h * 1e3:.3f} ms "
                    f"| **{c / h:.3f}** | {goal} | {err:.1e} |")
    cold = statistics.median(times)
    lines = [
        "# Compiled gradients: benchmark (issue 4)",
        "",
        f"Run: `python benchmarks/bench_compile.py{' --quick' if args.quick else ''}"
        f"{f' --rounds {args.rounds}' if args.rounds else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}; BLAS: {blas_info()}; OPENBLAS_NUM_THREADS=1; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; "
        f"1-minute load average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
        f"(the machine has {os.cpu_count()} cores: a load above ~1 means other processes shared them and "
        "wall times are inflated).",
        "",
        "## (a) Cold `derive`, 784-256-128-10 relu/relu/softmax, cross-entropy, matrix form",
        "",
        f"Command: `{label}` ({runs} runs, each a new process: start-up and imports included).",
        "",
        "| wall, median | wall, min–max | CPU (user+sys), median | max RSS | targets |",
        "|---|---|---|---|---|",
        f"| **{cold:.2f} s** | {min(times):.2f}–{max(times):.2f} s | {statistics.median(cpu):.2f} s "
        f"| **{rss:.0f} MB** | < 2 s, < 500 MB |",
        "",
        "## (b) `gradients`: compiled vs hand-written NumPy (benchmarks/handwritten.py)",
        "",
        f"Median per call over {rounds} interleaved rounds; ratio = compiled / hand-written; "
        "last column: max |difference| of the gradients. The two small networks (FACTS.md's baseline "
        "shapes) show the per-call overhead: argument checks and ~20 NumPy calls.",
        "",
        "| network | batch | dtype | compiled | hand-written | ratio | target | max diff |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
