"""One training step of a generated trainer against the best hand-written NumPy step, and peers.

A step is the loss, the gradients and a plain SGD update of every parameter, on one batch, in
place — ``step(params, state, X, Y)`` of the trainer that ``symbackprop generate --optimizer sgd``
writes, ``Handwritten.sgd_step`` of ``benchmarks/handwritten.py`` (preallocated buffers, fused
output delta, the learning rate folded into it, no loss value: the same operations as the
independent harness's hand-written NumPy peer, which is timed too when ``../shared/bench`` is
found), and, when they are installed, PyTorch eager on the CPU and ``jax.jit`` of the whole
step. One BLAS thread; the contenders are timed in turn, round after round (interleaved), and each
figure is the median over the rounds of the mean time of a step within a round.

    python benchmarks/bench_trainer.py            # prints the table, writes benchmarks/results/trainer.md
    python benchmarks/bench_trainer.py --quick    # fewer rounds

Optional peers: ``pip install torch==2.13.0 jax jaxlib`` (the ``bench`` extra).
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS"):
    os.environ.setdefault(_var, "1" if _var != "XLA_FLAGS" else
                          "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from handwritten import Handwritten  # noqa: E402
from symbackprop.codegen.trainer import render  # noqa: E402
from symbackprop.spec.network import Network  # noqa: E402

LEARNING_RATE = 0.01

# (label, sizes, hidden activation, output activation, loss, batch, dtypes, target)
CASES = [
    ("3-2-1 sigmoid, squared error (the seed)", (3, 2, 1), "sigmoid", "sigmoid", "squared_error", 1,
     ("float64",), "faster than every peer"),
    ("64-32-1 tanh/sigmoid, BCE", (64, 32, 1), "tanh", "sigmoid", "binary_cross_entropy", 32,
     ("float64", "float32"), "<= 1.0x the harness's peer"),
    ("784-128-10 relu/softmax, CE", (784, 128, 10), "relu", "softmax", "cross_entropy", 128,
     ("float64", "float32"), "<= 1.05x the harness's peer"),
    ("784-256-256-256-10 relu/softmax, CE", (784, 256, 256, 256, 10), "relu", "softmax", "cross_entropy", 256,
     ("float64", "float32"), "<= 1.05x"),
]


def network(sizes, hidden, output, loss):
    acts = [hidden] * (len(sizes) - 2) + [output]
    return Network.from_dict({"network": {"layers": list(sizes), "activations": acts, "loss": loss}})


def problem(sizes, output, batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for l in range(1, len(sizes)):
        params[f"W{l}"] = (rng.standard_normal((sizes[l], sizes[l - 1])) * np.sqrt(1 / sizes[l - 1])).astype(dtype)
        params[f"b{l}"] = (0.1 * rng.standard_normal(sizes[l])).astype(dtype)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    if output == "softmax":
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    else:
        Y = rng.integers(0, 2, (batch, sizes[-1])).astype(dtype)
    return params, X, Y


def load_module(text, name):
    folder = Path(tempfile.mkdtemp(prefix="bench_trainer_"))
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------- contenders

def generated_step(net, dtype, form, params, X, Y):
    module = load_module(render(net, optimizer="sgd", learning_rate=LEARNING_RATE, dtype=dtype, form=form),
                         f"trainer_{form}_{dtype}_{'_'.join(map(str, net.layers))}")
    p = {k: v.copy() for k, v in params.items()}
    state = module.init_state(p)
    return lambda: module.step(p, state, X, Y)


def handwritten_step(sizes, hidden, output, loss, dtype, params, X, Y):
    hw = Handwritten(sizes, hidden, output, loss, dtype=np.dtype(dtype))
    p = {k: v.copy() for k, v in params.items()}
    return lambda: hw.sgd_step(p, X, Y, LEARNING_RATE)


HARNESS = ROOT.parent / "shared" / "bench"   # the independent benchmark harness, when it is beside the checkout
HARNESS_LOSS = {"squared_error": "sse", "binary_cross_entropy": "bce", "cross_entropy": "ce"}


def harness_step(sizes, hidden, output, loss, dtype, params, X, Y):
    """The independent harness's hand-written NumPy peer (``benchlib/peers/numpy_hand.py``), if found:
    the bar ``handwritten.py`` must match."""
    path = HARNESS / "benchlib" / "peers" / "numpy_hand.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("harness_numpy_hand", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    acts = [hidden] * (len(sizes) - 2) + [output]
    peer = module.make_peer(list(sizes), acts, HARNESS_LOSS[loss], {k: v.copy() for k, v in params.items()}, X, Y,
                            lr=LEARNING_RATE, dtype=np.dtype(dtype))
    return peer["step"]


def torch_step(sizes, hidden, output, loss, dtype, params, X, Y):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[hidden]
    L = len(sizes) - 1

    def step():
        a = Xt
        for l in range(1, L):
            a = act(a @ p[f"W{l}"].T + p[f"b{l}"])
        z = a @ p[f"W{L}"].T + p[f"b{L}"]
        if loss == "cross_entropy":
            C = -(Yt * torch.log_softmax(z, dim=1)).sum() / z.shape[0]
        elif loss == "binary_cross_entropy":
            C = torch.nn.functional.binary_cross_entropy_with_logits(z, Yt, reduction="sum") / z.shape[0]
        else:
            C = ((torch.sigmoid(z) if output == "sigmoid" else z) - Yt).pow(2).sum() / z.shape[0]
        for v in p.values():
            v.grad = None
        C.backward()
        with torch.no_grad():
            for v in p.values():
                v -= LEARNING_RATE * v.grad
        return C.item()
    return step


def jax_step(sizes, hidden, output, loss, dtype, params, X, Y):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[hidden]
    L = len(sizes) - 1

    def cost(p, X, Y):
        a = X
        for l in range(1, L):
            a = act(a @ p[f"W{l}"].T + p[f"b{l}"])
        z = a @ p[f"W{L}"].T + p[f"b{L}"]
        if loss == "cross_entropy":
            return -jnp.sum(Y * jax.nn.log_softmax(z, axis=1)) / z.shape[0]
        if loss == "binary_cross_entropy":
            return jnp.sum(jax.nn.softplus(z) - Y * z) / z.shape[0]
        out = jax.nn.sigmoid(z) if output == "sigmoid" else z
        return jnp.sum((out - Y) ** 2) / z.shape[0]

    @jax.jit
    def update(p, X, Y):
        C, g = jax.value_and_grad(cost)(p, X, Y)
        return {k: p[k] - LEARNING_RATE * g[k] for k in p}, C

    state = {"p": {k: jnp.asarray(v) for k, v in params.items()}}
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

    def step():
        state["p"], C = update(state["p"], Xj, Yj)
        C.block_until_ready()
        return C
    return step


# ----------------------------------------------------------------------------------- timing

def interleaved(contenders, rounds, inner):
    """Median over ``rounds`` of the mean seconds per call over ``inner`` calls, taken in turn."""
    for fn in contenders.values():
        for _ in range(max(3, inner)):
            fn()  # warm up (JIT compilation, buffers, caches)
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):   # the order alternating
            fn = contenders[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: min(values) for name, values in times.items()})


def fmt_time(seconds):
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "trainer.md"))
    parser.add_argument("--rounds", type=int, help="interleaved rounds per network (default 41 small, 21 large)")
    args = parser.parse_args(argv)
    started, load_before = time.gmtime(), os.getloadavg()
    rows = []
    for label, sizes, hidden, output, loss, batch, dtypes, target in CASES:
        net = network(sizes, hidden, output, loss)
        small = net.parameter_count < 5000
        for dtype in dtypes:
            params, X, Y = problem(sizes, output, batch, dtype)
            contenders = {"hand-written NumPy": handwritten_step(sizes, hidden, output, loss, dtype, params, X, Y)}
            harness = harness_step(sizes, hidden, output, loss, dtype, params, X, Y)
            if harness is not None:
                contenders["harness's NumPy peer"] = harness
            forms = ["auto", "array"] if net.parameter_count <= 32 else ["auto"]
            for form in forms:
                name = "generated" if form == "auto" else f"generated ({form} form)"
                contenders[name] = generated_step(net, dtype, form, params, X, Y)
            if dtype == "float64":
                for peer, make in (("PyTorch eager", torch_step), ("JAX jit", jax_step)):
                    fn = make(sizes, hidden, output, loss, dtype, params, X, Y)
                    if fn is not None:
                        contenders[peer] = fn
            rounds = args.rounds or ((15 if args.quick else 41) if small else (7 if args.quick else 21))
            inner = 200 if small else (5 if sizes[1] < 200 else 2)
            medians, minima = interleaved(contenders, rounds, inner)
            base, best = medians["hand-written NumPy"], minima["hand-written NumPy"]
            rows.append((label, batch, dtype, target, base,
                         {k: (v, v / base, minima[k] / best) for k, v in medians.items()}))
            line = f"{label}, batch {batch}, {dtype}: hand-written {fmt_time(base)}; " + ", ".join(
                f"{k} {v / base:.2f}x (fastest rounds {minima[k] / best:.2f}x)"
                for k, v in medians.items() if k != "hand-written NumPy")
            print(line, flush=True)
    run = {"command": "python benchmarks/bench_trainer.py" + (" --quick" if args.quick else "")
                      + (f" --rounds {args.rounds}" if args.rounds else ""),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", started), "load": (load_before, os.getloadavg())}
    text = report(rows, run)
    Path(args.output).write_text(text, encoding="utf-8")
    print()
    print(text)
    return 0


def report(rows, run):
    peers = []
    for *_, medians in rows:
        for name in medians:
            if name not in peers and name != "hand-written NumPy":
                peers.append(name)
    head = ("| network | batch | dtype | hand-written NumPy step | " + " | ".join(peers)
            + " | generated ÷ harness's peer | target |")
    lines = ["# One training step: generated trainer vs hand-written NumPy",
             "",
             "Loss + gradients + SGD update of every parameter, one batch, in place; one BLAS thread; "
             "contenders interleaved, medians over rounds; ratios are time / hand-written NumPy time "
             "(below 1 is faster); \"fastest\" is the ratio of the fastest rounds, less sensitive to "
             "other processes. `generated` is the form `symbackprop generate` picks (unrolled "
             "scalar code for the seed's 3-2-1 net, array code otherwise). The hand-written step "
             "(benchmarks/handwritten.py) does not compute the loss value; the generated one does and "
             "returns it. \"harness's NumPy peer\" is the hand-written step of the independent harness "
             "in ../shared/bench, timed when it is found: the baseline is at least as fast, and issue 12's "
             "targets are on that peer (the harness itself measures them: results/harness.md).",
             "",
             f"Run: `{run['command']}` on {run['date']}. Load average (1, 5, 15 minutes) at the start "
             + ", ".join(f"{x:.2f}" for x in run["load"][0]) + ", at the end "
             + ", ".join(f"{x:.2f}" for x in run["load"][1]) + f", on {os.cpu_count()} cores "
             "(above ~1, other processes shared the cores: read the \"fastest\" ratios too).",
             "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}"
             + _versions() + ".",
             "",
             head,
             "|" + "---|" * (head.count("|") - 1)]
    for label, batch, dtype, target, base, medians in rows:
        cells = []
        for name in peers:
            if name in medians:
                seconds, ratio, best = medians[name]
                cells.append(f"{ratio:.2f}× ({fmt_time(seconds)}; fastest {best:.2f}×)")
            else:
                cells.append("—")
        peer = "harness's NumPy peer"
        versus = (f"{medians['generated'][0] / medians[peer][0]:.2f}×" if peer in medians else "—")
        lines.append(f"| {label} | {batch} | {dtype} | {fmt_time(base)} | " + " | ".join(cells)
                     + f" | {versus} | {target} |")
    lines += ["", "`python benchmarks/bench_trainer.py` writes this file.", ""]
    return "\n".join(lines)


def _versions():
    out = []
    for name in ("torch", "jax"):
        try:
            module = __import__(name)
            out.append(f", {name} {module.__version__}")
        except ImportError:
            pass
    return "".join(out)


if __name__ == "__main__":
    sys.exit(main())
