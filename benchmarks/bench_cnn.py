"""LeNet (examples/lenet.toml) at batch 64 in float32: one SGD step of the generated trainer against
PyTorch eager's (autograd + torch.optim.SGD) on the same parameters and data (issue 8's target: at
most 1.5x), and the cold ``symbackprop generate examples/lenet.toml`` (target: under 3 s).

The network: 1x28x28 input, conv 6@5x5 relu, maxpool 2, conv 16@5x5 relu, maxpool 2, flatten,
dense 120 relu, dense 84 relu, dense 10 softmax, cross-entropy (the batch mean). One step: forward,
loss, every gradient, the update. One thread for NumPy's BLAS and for PyTorch; the two interleaved
round after round (the order alternating), medians over the rounds of wall time and of the
thread's CPU time (which leaves out the time other processes held the core). The gradients are
checked against PyTorch's first.

    python benchmarks/bench_cnn.py            # prints the table, writes benchmarks/results/cnn.md
    python benchmarks/bench_cnn.py --quick    # fewer rounds

Needs ``pip install torch==2.13.0`` (the CPU wheel).
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_trainer import fmt_time, load_module  # noqa: E402
from symbackprop.codegen.trainer import render  # noqa: E402
from symbackprop.spec.network import load  # noqa: E402

SPEC = ROOT / "examples" / "lenet.toml"
BATCH, DTYPE = 64, "float32"


def problem(module, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH, *module.INPUT)).astype(module.DTYPE)
    Y = np.eye(10, dtype=module.DTYPE)[rng.integers(0, 10, BATCH)]
    return module.init_params(seed), X, Y


def torch_lenet(params, X, Y, learning_rate):
    """PyTorch eager on copies of ``params``: (step, gradients at the start)."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    P = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    opt = torch.optim.SGD(list(P.values()), lr=learning_rate)

    def loss():
        h = F.max_pool2d(F.relu(F.conv2d(Xt, P["W1"], P["b1"])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, P["W3"], P["b3"])), 2).flatten(1)
        h = F.relu(F.linear(h, P["W6"], P["b6"]))
        h = F.relu(F.linear(h, P["W7"], P["b7"]))
        return F.cross_entropy(F.linear(h, P["W8"], P["b8"]), Yt)

    def step():
        opt.zero_grad()
        C = loss()
        C.backward()
        opt.step()
        return C

    loss().backward()
    grads = {k: v.grad.numpy().copy() for k, v in P.items()}
    opt.zero_grad()
    return step, grads


def interleaved(contenders, rounds, inner=1):
    """Medians over ``rounds`` of wall and thread CPU seconds per call, the order alternating."""
    for fn in contenders.values():
        for _ in range(5):
            fn()
    wall = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn = contenders[name]
            w, c = time.perf_counter(), time.thread_time()
            for _ in range(inner):
                fn()
            cpu[name].append((time.thread_time() - c) / inner)
            wall[name].append((time.perf_counter() - w) / inner)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()},
            {k: min(v) for k, v in wall.items()})


def cold_generate(runs):
    """Median wall seconds of ``python -m symbackprop generate examples/lenet.toml``, each run a new process."""
    out = Path(tempfile.mkdtemp(prefix="bench_cnn_")) / "lenet_trainer.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symbackprop", "generate", str(SPEC), "-o", str(out), "--force"],
                       check=True, capture_output=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 61)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "cnn.md"))
    args = parser.parse_args(argv)
    started, load_before = time.gmtime(), os.getloadavg()
    net = load(SPEC)
    module = load_module(render(net, optimizer="sgd", dtype=DTYPE), "trainer_lenet")
    lr = module.learning_rate
    params, X, Y = problem(module)
    torch_step, torch_grads = torch_lenet(params, X, Y, lr)
    grads = module.gradients(params, X, Y)
    error = max(float(np.abs(grads[k] - torch_grads[k]).max() / np.abs(torch_grads[k]).max()) for k in grads)
    assert error < 1e-4, error
    P = {k: v.copy() for k, v in params.items()}
    state = module.init_state(P)
    rounds = args.rounds or (15 if args.quick else 61)
    wall, cpu, fastest = interleaved({"PyTorch eager": torch_step, "generated": lambda: module.step(P, state, X, Y)},
                                     rounds)
    cold = cold_generate(3 if args.quick else 7)
    load_after = os.getloadavg()
    import torch
    command = "python benchmarks/bench_cnn.py" + (" --quick" if args.quick else "") + \
        (f" --rounds {args.rounds}" if args.rounds else "")
    ratio, cpu_ratio = wall["generated"] / wall["PyTorch eager"], cpu["generated"] / cpu["PyTorch eager"]
    lines = ["# LeNet, batch 64, float32: one SGD step, generated trainer vs PyTorch eager", "",
             "Forward, loss, every gradient and the SGD update (PyTorch: autograd + `torch.optim.SGD`) on the "
             f"same parameters and data; one thread each; {rounds} interleaved rounds, medians. Largest relative "
             f"difference of the generated gradients from PyTorch's: {error:.1e}.", "",
             f"Run: `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', started)}; load average (1, 5, 15 min) "
             + ", ".join(f"{x:.2f}" for x in load_before) + " at the start, "
             + ", ".join(f"{x:.2f}" for x in load_after) + f" at the end, {os.cpu_count()} cores.", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}, "
             f"torch {torch.__version__}.", "",
             "| | PyTorch eager | generated | ratio (target ≤ 1.5×) |", "|---|---|---|---|",
             f"| step, wall time (median) | {fmt_time(wall['PyTorch eager'])} | {fmt_time(wall['generated'])} | {ratio:.2f}× |",
             f"| step, CPU time (median) | {fmt_time(cpu['PyTorch eager'])} | {fmt_time(cpu['generated'])} | {cpu_ratio:.2f}× |",
             f"| step, fastest round | {fmt_time(fastest['PyTorch eager'])} | {fmt_time(fastest['generated'])} "
             f"| {fastest['generated'] / fastest['PyTorch eager']:.2f}× |", "",
             f"Cold `python -m symbackprop generate examples/lenet.toml` (a new process each time, imports included): "
             f"median {cold[0]:.2f} s (fastest {cold[1]:.2f} s, slowest {cold[2]:.2f} s; target under 3 s).", "",
             "`python benchmarks/bench_cnn.py` writes this file.", ""]
    Path(args.output).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
