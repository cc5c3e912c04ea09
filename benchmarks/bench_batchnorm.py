"""One SGD step of a 784-256-batchnorm-relu-10 MLP (softmax, cross-entropy, batch 256): the
generated trainer against the best hand-written NumPy step we can write (issue 8's target: at most
1.1x).

The step is the same work in both: forward (dense, batch normalization over the batch with the
biased variance, relu, dense, softmax), the gradients of the batch-mean cross-entropy, the SGD
update of every parameter and the running statistics (momentum 0.1, unbiased variance, as
PyTorch). The hand-written step does not compute the loss value (the generated one does and
returns it), so the ratio is if anything pessimistic. One BLAS thread; interleaved rounds, the order
alternating; medians of wall time and of the thread's CPU time.

    python benchmarks/bench_batchnorm.py            # prints the table, writes benchmarks/results/batchnorm.md
    python benchmarks/bench_batchnorm.py --quick    # fewer rounds
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_cnn import interleaved  # noqa: E402
from bench_trainer import fmt_time, load_module  # noqa: E402
from symbackprop.codegen.trainer import render  # noqa: E402
from symbackprop.spec.network import Network  # noqa: E402

LEARNING_RATE = 0.01
HIDDEN, BATCH, EPS, MOMENTUM = 256, 256, 1e-5, 0.1
SPEC = {"network": {"input": [784], "loss": "cross_entropy"},
        "layer": [{"type": "dense", "units": HIDDEN}, {"type": "batchnorm", "activation": "relu"},
                  {"type": "dense", "units": 10, "activation": "softmax"}]}


class HandwrittenBatchNorm:
    """The 784-H-batchnorm-relu-10 step by hand: every array preallocated and written with out=,
    sums over the batch as products with a ones vector (NumPy's reduction over the first axis is
    slower), number operands as 0-d arrays of the dtype, the softmax + cross-entropy delta a - y
    with the step's lr/N folded into it (so every gradient comes out times lr and the update is
    one subtraction), and batch norm's backward in its compact form, reusing dγ and dβ:
    dx = γ·rstd·(δ − dβ/N − x̂·dγ/N)."""

    def __init__(self, dtype, N):
        H, f = HIDDEN, np.dtype(dtype)
        self.N, self.dtype = N, f
        self.ones, self.ones10 = np.ones(N, f), np.ones(10, f)
        self.zero, self.one = np.array(0, f), np.array(1, f)
        self.eps, self.inv_n = np.array(EPS, f), np.array(1 / N, f)
        self.unbias = np.array(N / (N - 1), f)
        self.keep, self.mom = np.array(1 - MOMENTUM, f), np.array(MOMENTUM, f)
        e = lambda *shape: np.empty(shape, f)
        self.z1, self.xhat, self.a2, self.t = e(N, H), e(N, H), e(N, H), e(N, H)
        self.z3, self.d3, self.d2, self.d1 = e(N, 10), e(N, 10), e(N, H), e(N, H)
        self.mask = np.empty((N, H), bool)
        self.mean, self.var, self.rstd, self.gr, self.c1, self.c2, self.tmp = (e(H) for _ in range(7))
        self.row, self.zT = e(N), e(10, N)
        self.grads = {"W1": e(H, 784), "b1": e(H), "gamma2": e(H), "beta2": e(H), "W3": e(10, H), "b3": e(10)}

    def step(self, P, running, X, Y, lr=LEARNING_RATE):
        W1, b1, gamma, beta, W3, b3 = (P[k] for k in ("W1", "b1", "gamma2", "beta2", "W3", "b3"))
        g = self.grads
        z1, xhat, a2, t, z3, d3, d2, d1 = self.z1, self.xhat, self.a2, self.t, self.z3, self.d3, self.d2, self.d1
        mean, var, rstd = self.mean, self.var, self.rstd
        # forward: dense, batch norm (biased variance), relu, dense, softmax
        np.dot(X, W1.T, out=z1)
        z1 += b1
        np.dot(self.ones, z1, out=mean)
        mean *= self.inv_n
        np.subtract(z1, mean, out=xhat)                 # x - mean, normalised below
        np.multiply(xhat, xhat, out=t)
        np.dot(self.ones, t, out=var)
        var *= self.inv_n
        np.add(var, self.eps, out=rstd)
        np.sqrt(rstd, out=rstd)
        np.divide(self.one, rstd, out=rstd)
        xhat *= rstd
        np.multiply(xhat, gamma, out=a2)
        a2 += beta
        np.maximum(a2, self.zero, out=a2)
        np.dot(a2, W3.T, out=z3)
        z3 += b3
        np.copyto(self.zT, z3.T)                        # the row maximum along columns of a transposed copy
        np.maximum.reduce(self.zT, axis=0, out=self.row)
        z3 -= self.row[:, None]
        np.exp(z3, out=z3)
        np.dot(z3, self.ones10, out=self.row)
        z3 /= self.row[:, None]
        # backward, lr/N folded into the output delta
        np.subtract(z3, Y, out=d3)
        d3 *= np.array(lr / self.N, self.dtype)
        np.dot(d3.T, a2, out=g["W3"])
        np.dot(self.ones, d3, out=g["b3"])
        np.dot(d3, W3, out=d2)
        np.greater(a2, self.zero, out=self.mask)
        d2 *= self.mask
        np.multiply(d2, xhat, out=t)
        np.dot(self.ones, t, out=g["gamma2"])
        np.dot(self.ones, d2, out=g["beta2"])
        np.multiply(g["gamma2"], self.inv_n, out=self.c1)
        np.multiply(g["beta2"], self.inv_n, out=self.c2)
        np.multiply(xhat, self.c1, out=d1)
        np.subtract(d2, d1, out=d1)
        d1 -= self.c2
        np.multiply(gamma, rstd, out=self.gr)
        d1 *= self.gr
        np.dot(d1.T, X, out=g["W1"])
        np.dot(self.ones, d1, out=g["b1"])
        for name, grad in g.items():
            P[name] -= grad
        for stat, value in (("mean2", mean), ("var2", var)):
            r = running[stat]
            r *= self.keep
            if stat == "var2":
                np.multiply(value, self.unbias, out=self.tmp)
                value = self.tmp
            np.multiply(value, self.mom, out=self.c1)
            r += self.c1


def problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    P = {"W1": rng.standard_normal((HIDDEN, 784)) * np.sqrt(2 / 784), "b1": 0.1 * rng.standard_normal(HIDDEN),
         "gamma2": 1 + 0.1 * rng.standard_normal(HIDDEN), "beta2": 0.1 * rng.standard_normal(HIDDEN),
         "W3": rng.standard_normal((10, HIDDEN)) * np.sqrt(1 / HIDDEN), "b3": 0.1 * rng.standard_normal(10)}
    X = rng.standard_normal((BATCH, 784))
    Y = np.eye(10)[rng.integers(0, 10, BATCH)]
    cast = lambda a: a.astype(dtype)
    return {k: cast(v) for k, v in P.items()}, cast(X), cast(Y)


def check(module, dtype):
    """The hand-written step and the generated one make the same update (and running statistics)."""
    P, X, Y = problem(dtype)
    P1, P2 = {k: v.copy() for k, v in P.items()}, {k: v.copy() for k, v in P.items()}
    state = module.init_state(P1)
    module.step(P1, state, X, Y, LEARNING_RATE)
    running = {k: v.copy() for k, v in module.init_state(P2)["running"].items()}
    HandwrittenBatchNorm(dtype, BATCH).step(P2, running, X, Y)
    tol = 1e-10 if dtype == "float64" else 2e-4
    scale = max(np.abs(P[k] - P2[k]).max() for k in P)     # the largest change the step makes
    for k in P:                                            # (b1's true gradient is 0: batch norm removes it)
        err = np.abs(P1[k] - P2[k]).max() / max(np.abs(P[k] - P2[k]).max(), 1e-3 * scale)
        assert err < tol, (k, err)
    for k in running:
        assert np.allclose(state["running"][k], running[k], rtol=tol * 10), k


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 41)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "batchnorm.md"))
    args = parser.parse_args(argv)
    started, load_before = time.gmtime(), os.getloadavg()
    net = Network.from_dict(SPEC)
    rows = []
    for dtype in ("float32", "float64"):
        module = load_module(render(net, optimizer="sgd", learning_rate=LEARNING_RATE, dtype=dtype),
                             f"trainer_batchnorm_{dtype}")
        check(module, dtype)
        P, X, Y = problem(dtype)
        Pg, Ph = {k: v.copy() for k, v in P.items()}, {k: v.copy() for k, v in P.items()}
        state = module.init_state(Pg)
        running = {k: v.copy() for k, v in state["running"].items()}
        hand = HandwrittenBatchNorm(dtype, BATCH)
        contenders = {"hand-written NumPy": lambda: hand.step(Ph, running, X, Y),
                      "generated": lambda: module.step(Pg, state, X, Y)}
        rounds = args.rounds or (15 if args.quick else 61)
        wall, cpu, fastest = interleaved(contenders, rounds, inner=3)
        ratios = {name: values["generated"] / values["hand-written NumPy"]
                  for name, values in (("wall", wall), ("cpu", cpu), ("fastest", fastest))}
        rows.append((dtype, wall, cpu, ratios))
        print(f"{dtype}: hand-written {fmt_time(wall['hand-written NumPy'])}, generated {fmt_time(wall['generated'])}: "
              f"{ratios['wall']:.2f}x (CPU time {ratios['cpu']:.2f}x, fastest rounds {ratios['fastest']:.2f}x)", flush=True)
    load_after = os.getloadavg()
    command = "python benchmarks/bench_batchnorm.py" + (" --quick" if args.quick else "") + \
        (f" --rounds {args.rounds}" if args.rounds else "")
    lines = ["# One SGD step of a 784-256-batchnorm-relu-10 MLP: generated trainer vs hand-written NumPy", "",
             f"Batch {BATCH}, softmax + cross-entropy; the step includes the running statistics. One BLAS thread, "
             "the two interleaved round after round (the order alternating), medians over the rounds of wall "
             "time and of the thread's CPU time (\"fastest\": the ratio of the fastest rounds). The hand-written step skips the loss value, which the generated one computes.", "",
             f"Run: `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', started)}; load average (1, 5, 15 min) "
             + ", ".join(f"{x:.2f}" for x in load_before) + " at the start, "
             + ", ".join(f"{x:.2f}" for x in load_after) + f" at the end, {os.cpu_count()} cores.", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}.", "",
             "| dtype | hand-written NumPy | generated | ratio, wall (target ≤ 1.1×) | ratio, CPU time | fastest rounds |",
             "|---|---|---|---|---|---|"]
    for dtype, wall, cpu, ratios in rows:
        lines.append(f"| {dtype} | {fmt_time(wall['hand-written NumPy'])} | {fmt_time(wall['generated'])} "
                     f"| {ratios['wall']:.2f}× | {ratios['cpu']:.2f}× | {ratios['fastest']:.2f}× |")
    lines += ["", "`python benchmarks/bench_batchnorm.py` writes this file.", ""]
    Path(args.output).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
