"""The character-level LSTM language model's training step (issue 21) against PyTorch eager, and the
cold start of ``generate`` and ``derive --form matrix`` for its spec.

A step is the loss, the gradients and one SGD update of every parameter on one batch of N = 32
windows of T = 32 character ids (V = 65, embedding dim 32, LSTM hidden 128, float32), the targets
the next characters (class indices). Contenders: ``step(params, state, X, Y)`` of the trainer
``symbackprop generate examples/charlstm.toml --dtype float32`` writes (NumPy, the derived backward
pass), the same with ``--backend torch``, and PyTorch eager: ``nn.Embedding`` + ``nn.LSTM``
(batch_first) + ``nn.Linear`` + ``F.cross_entropy`` + ``torch.optim.SGD`` on the same parameters
and batch. One thread (the variables below are set before NumPy and torch load); the contenders are
timed in turn, round after round, the order alternating, and each figure is the median over the
rounds of the mean time of a step within a round. Clipping is off in the timed steps (eager has none).

    python benchmarks/bench_charlstm.py            # prints the table, writes benchmarks/results/charlstm.md
    python benchmarks/bench_charlstm.py --quick    # fewer rounds
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_torch import interleaved, fmt  # noqa: E402
from seqbench import batch, check_agreement, cold, ours_step  # noqa: E402
from bench_trainer import load_module  # noqa: E402

torch.set_num_threads(1)
SPEC = ROOT / "examples" / "charlstm.toml"
V, DIM, HIDDEN, T, N = 65, 32, 128, 32, 32
LEARNING_RATE = 0.5


def reference_params(seed=0):
    """Parameters in the layout of the issue's names (E1, W_ih2, W_hh2, b_ih2, b_hh2, W3, b3), float32."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(HIDDEN)
    shapes = {"E1": (V, DIM), "W_ih2": (4 * HIDDEN, DIM), "W_hh2": (4 * HIDDEN, HIDDEN), "b_ih2": (4 * HIDDEN,),
              "b_hh2": (4 * HIDDEN,), "W3": (V, HIDDEN), "b3": (V,)}
    return {name: (rng.standard_normal(s) if name == "E1" else rng.uniform(-k, k, s)).astype(np.float32)
            for name, s in shapes.items()}


class Eager(torch.nn.Module):
    def __init__(self, params):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, DIM)
        self.lstm = torch.nn.LSTM(DIM, HIDDEN, batch_first=True)
        self.linear = torch.nn.Linear(HIDDEN, V)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.from_numpy(params["E1"]))
            for ours, theirs in (("W_ih2", "weight_ih_l0"), ("W_hh2", "weight_hh_l0"), ("b_ih2", "bias_ih_l0"),
                                 ("b_hh2", "bias_hh_l0")):
                getattr(self.lstm, theirs).copy_(torch.from_numpy(params[ours]))
            self.linear.weight.copy_(torch.from_numpy(params["W3"]))
            self.linear.bias.copy_(torch.from_numpy(params["b3"]))

    def forward(self, x):
        h, _ = self.lstm(self.embedding(x))
        return self.linear(h)


def eager_step(params, X, Y):
    model = Eager(params)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    X, Y = torch.from_numpy(X).long(), torch.from_numpy(Y).long()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(X).reshape(-1, V), Y.reshape(-1))
        loss.backward()
        opt.step()
        return loss
    return step, model


def eager_loss_and_grads(params, X, Y):
    model = Eager(params)
    loss = F.cross_entropy(model(torch.from_numpy(X).long()).reshape(-1, V), torch.from_numpy(Y).long().reshape(-1))
    loss.backward()
    g = {"E1": model.embedding.weight.grad, "W_ih2": model.lstm.weight_ih_l0.grad,
         "W_hh2": model.lstm.weight_hh_l0.grad, "b_ih2": model.lstm.bias_ih_l0.grad,
         "b_hh2": model.lstm.bias_hh_l0.grad, "W3": model.linear.weight.grad, "b3": model.linear.bias.grad}
    return float(loss), {k: v.numpy() for k, v in g.items()}


def generated(backend):
    """The spec's trainer (float32, SGD), or the reason it cannot be had here."""
    from symbackprop.codegen.trainer import render
    from symbackprop.spec.network import load
    try:
        text = render(load(SPEC), optimizer="sgd", learning_rate=LEARNING_RATE, dtype="float32", backend=backend)
    except Exception as err:   # a spec this checkout cannot read yet: reported in the table
        return None, f"{type(err).__name__}: {err}"
    return load_module(text, f"charlstm_{backend}"), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 21, quick 5)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "charlstm.md"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 21)
    started, load_before = time.gmtime(), os.getloadavg()
    params, (ids, targets) = reference_params(), batch(N, T, V)
    X, Y = ids.astype(np.float32), targets.astype(np.float32)   # the trainers hold ids as DTYPE
    contenders, notes = {"eager": eager_step(params, X, Y)[0]}, []
    for backend in ("numpy", "torch"):
        module, why = generated(backend)
        if module is None:
            notes.append(f"The {backend} trainer was not measured: {why}")
            continue
        check_agreement(module, eager_loss_and_grads, params, X, Y, backend)
        contenders[backend] = ours_step(module, params, X, Y, backend, LEARNING_RATE)
    inner = 5 if args.quick else 10
    times, _ = interleaved(contenders, rounds, inner, "cpu")
    for name, seconds in times.items():
        print(f"  {name}: {fmt(seconds)} a step" + (f", {seconds / times['eager']:.2f}x eager" if name != "eager" else ""))
    runs = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as folder:
        gen = cold([sys.executable, "-m", "symbackprop", "generate", str(SPEC), "--dtype", "float32", "-o",
                    str(Path(folder) / "t.py")], runs) if "numpy" in contenders else None
        der = cold([sys.executable, "-m", "symbackprop", "derive", str(SPEC), "--form", "matrix"], runs) \
            if "numpy" in contenders else None   # (to standard output, as a person reads it)
    load_after = os.getloadavg()
    command = "python benchmarks/bench_charlstm.py" + (" --quick" if args.quick else "") + (
        f" --rounds {args.rounds}" if args.rounds else "")
    label = {"numpy": "generated NumPy trainer", "torch": "generated `--backend torch` trainer", "eager": "PyTorch eager"}
    target = {"numpy": "≤ 1.5×", "torch": "≤ 1.0×", "eager": "(baseline)"}
    lines = [
        "# Char-LSTM language model: a training step against PyTorch eager", "",
        f"V = {V}, embedding dim {DIM}, LSTM hidden {HIDDEN}, T = {T}, N = {N}, float32, SGD (lr {LEARNING_RATE}); "
        "one thread; interleaved rounds with alternating order; each figure the median over "
        f"{rounds} rounds of the mean of {inner} steps. Ratio = contender / PyTorch eager measured in the same run.", "",
        f"Run: `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', started)}. Load average (1, 5, 15 minutes) "
        f"at the start {', '.join(f'{x:.2f}' for x in load_before)}, at the end "
        f"{', '.join(f'{x:.2f}' for x in load_after)}, on {os.cpu_count()} cores.", "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"NumPy {np.__version__}.", "",
        "| contender | step | ratio to eager | target |", "|---|---|---|---|",
    ]
    lines += [f"| {label[name]} | {fmt(s)} | **{s / times['eager']:.2f}×** | {target[name]} |" for name, s in times.items()]
    if gen is not None:
        lines += ["", f"Cold `symbackprop generate examples/charlstm.toml --dtype float32` (a new process, imports "
                  f"included): median of {runs} runs **{gen[0]:.2f} s** wall, {gen[1]:.2f} s CPU (target < 3 s); cold "
                  f"`symbackprop derive examples/charlstm.toml --form matrix`: **{der[0]:.2f} s** wall, {der[1]:.2f} s "
                  "CPU (target < 2 s)."]
        print(f"  cold generate {gen[0]:.2f} s ({gen[1]:.2f} s CPU), cold derive --form matrix {der[0]:.2f} s "
              f"({der[1]:.2f} s CPU)")
    lines += [""] + notes if notes else []
    Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(notes))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
