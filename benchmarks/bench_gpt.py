"""The tiny GPT's training step (issue 22) against PyTorch eager, and the cold start of ``generate``
for its spec.

A step is the loss, the gradients and one Adam update of every parameter on one batch of N = 16
windows of T = 16 character ids (V = 65, d = 32, two pre-norm blocks of 2 causal heads and a
128-unit GELU feed-forward layer, float32), the targets the next characters (class indices).
Contenders: ``step(params, state, X, Y)`` of the trainer ``symbackprop generate
examples/tinygpt.toml --dtype float32`` writes (NumPy, the derived backward pass), the same with
``--backend torch``, and PyTorch eager: the same model as ``nn`` modules (``nn.Embedding``, a
positional ``nn.Parameter``, ``nn.LayerNorm``, ``nn.MultiheadAttention(batch_first=True)`` with a
causal mask, ``nn.Linear``, ``F.gelu``) + ``F.cross_entropy`` + autograd + ``torch.optim.Adam`` on
the same parameters and batch. One thread; the contenders are timed in turn, round after round,
the order alternating, and each figure is the median over the rounds of the mean time of a step
within a round. Clipping is off in the timed steps (eager has none).

    python benchmarks/bench_gpt.py            # prints the table, writes benchmarks/results/gpt.md
    python benchmarks/bench_gpt.py --quick    # fewer rounds
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

from seqbench import batch, check_agreement, cold, ours_step  # noqa: E402
from bench_torch import fmt, interleaved  # noqa: E402
from bench_trainer import load_module  # noqa: E402

torch.set_num_threads(1)
SPEC = ROOT / "examples" / "tinygpt.toml"
V, D, T, N, HEADS, HIDDEN = 65, 32, 16, 16, 2, 128
BLOCKS = ((3, 4, 6, 7, 8), (10, 11, 13, 14, 15))   # per block: layer norm, attention, layer norm, dense, dense
FINAL_NORM, HEAD = 17, 18
LEARNING_RATE = 1e-3


def reference_params(shapes, seed=0):
    """Random parameters of the spec's shapes (γ near 1), float32."""
    rng = np.random.default_rng(seed)
    return {k: ((1.0 if k.startswith("gamma") else 0.0) + rng.normal(scale=0.2, size=s)).astype(np.float32)
            for k, s in shapes.items()}


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.attn = torch.nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.fc1, self.fc2 = torch.nn.Linear(D, HIDDEN), torch.nn.Linear(HIDDEN, D)

    def forward(self, x, mask):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))

    def load(self, p, layers):
        ln1, att, ln2, fc1, fc2 = layers
        with torch.no_grad():
            for norm, i in ((self.norm1, ln1), (self.norm2, ln2)):
                norm.weight.copy_(torch.from_numpy(p[f"gamma{i}"]))
                norm.bias.copy_(torch.from_numpy(p[f"beta{i}"]))
            self.attn.in_proj_weight.copy_(torch.from_numpy(np.concatenate([p[f"W{c}{att}"] for c in "qkv"])))
            self.attn.in_proj_bias.copy_(torch.from_numpy(np.concatenate([p[f"b{c}{att}"] for c in "qkv"])))
            self.attn.out_proj.weight.copy_(torch.from_numpy(p[f"Wo{att}"]))
            self.attn.out_proj.bias.copy_(torch.from_numpy(p[f"bo{att}"]))
            for lin, i in ((self.fc1, fc1), (self.fc2, fc2)):
                lin.weight.copy_(torch.from_numpy(p[f"W{i}"]))
                lin.bias.copy_(torch.from_numpy(p[f"b{i}"]))

    def grads(self, layers):
        ln1, att, ln2, fc1, fc2 = layers
        w, b = self.attn.in_proj_weight.grad, self.attn.in_proj_bias.grad
        out = {f"W{c}{att}": w[j * D:(j + 1) * D] for j, c in enumerate("qkv")}
        out |= {f"b{c}{att}": b[j * D:(j + 1) * D] for j, c in enumerate("qkv")}
        out |= {f"Wo{att}": self.attn.out_proj.weight.grad, f"bo{att}": self.attn.out_proj.bias.grad}
        for norm, i in ((self.norm1, ln1), (self.norm2, ln2)):
            out |= {f"gamma{i}": norm.weight.grad, f"beta{i}": norm.bias.grad}
        for lin, i in ((self.fc1, fc1), (self.fc2, fc2)):
            out |= {f"W{i}": lin.weight.grad, f"b{i}": lin.bias.grad}
        return out


class Eager(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, D)
        self.pos = torch.nn.Parameter(torch.from_numpy(p["P2"].copy()))
        self.blocks = torch.nn.ModuleList([Block(), Block()])
        self.norm, self.head = torch.nn.LayerNorm(D), torch.nn.Linear(D, V)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1))
        with torch.no_grad():
            self.embedding.weight.copy_(torch.from_numpy(p["E1"]))
            self.norm.weight.copy_(torch.from_numpy(p[f"gamma{FINAL_NORM}"]))
            self.norm.bias.copy_(torch.from_numpy(p[f"beta{FINAL_NORM}"]))
            self.head.weight.copy_(torch.from_numpy(p[f"W{HEAD}"]))
            self.head.bias.copy_(torch.from_numpy(p[f"b{HEAD}"]))
        for block, layers in zip(self.blocks, BLOCKS):
            block.load(p, layers)

    def forward(self, x):
        h = self.embedding(x) + self.pos[:x.shape[1]]
        for block in self.blocks:
            h = block(h, self.mask)
        return self.head(self.norm(h))

    def grads(self):
        out = {"E1": self.embedding.weight.grad, "P2": self.pos.grad, f"gamma{FINAL_NORM}": self.norm.weight.grad,
               f"beta{FINAL_NORM}": self.norm.bias.grad, f"W{HEAD}": self.head.weight.grad, f"b{HEAD}": self.head.bias.grad}
        for block, layers in zip(self.blocks, BLOCKS):
            out |= block.grads(layers)
        return {k: v.numpy() for k, v in out.items()}


def eager_step(params, X, Y):
    model = Eager(params)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    X, Y = torch.from_numpy(X).long(), torch.from_numpy(Y).long()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(X).reshape(-1, V), Y.reshape(-1))
        loss.backward()
        opt.step()
        return loss
    return step


def eager_loss_and_grads(params, X, Y):
    model = Eager(params)
    loss = F.cross_entropy(model(torch.from_numpy(X).long()).reshape(-1, V), torch.from_numpy(Y).long().reshape(-1))
    loss.backward()
    return float(loss), model.grads()


def generated(backend):
    from symbackprop.codegen.trainer import render
    from symbackprop.spec.network import load
    net = load(SPEC)
    text = render(net, optimizer="adam", learning_rate=LEARNING_RATE, dtype="float32", backend=backend)
    return load_module(text, f"tinygpt_{backend}"), net.parameter_shapes()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 21, quick 5)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "gpt.md"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 21)
    started, load_before = time.gmtime(), os.getloadavg()
    ids, targets = batch(N, T, V)
    X, Y = ids.astype(np.float32), targets.astype(np.float32)   # the trainers hold ids as DTYPE
    modules = {backend: generated(backend) for backend in ("numpy", "torch")}
    params = reference_params(modules["numpy"][1])
    contenders = {"eager": eager_step(params, X, Y)}
    for backend, (module, _) in modules.items():
        check_agreement(module, eager_loss_and_grads, params, X, Y, backend, floor=1e-3)  # b_k's gradient is 0
        contenders[backend] = ours_step(module, params, X, Y, backend, LEARNING_RATE)
    inner = 5 if args.quick else 10
    times, _ = interleaved(contenders, rounds, inner, "cpu")
    for name, seconds in times.items():
        print(f"  {name}: {fmt(seconds)} a step" + (f", {seconds / times['eager']:.2f}x eager" if name != "eager" else ""))
    runs = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as folder:
        gen, gen_cpu = cold([sys.executable, "-m", "symbackprop", "generate", str(SPEC), "--dtype", "float32", "-o",
                    str(Path(folder) / "t.py")], runs)
    print(f"  cold generate {gen:.2f} s ({gen_cpu:.2f} s CPU)")
    load_after = os.getloadavg()
    command = "python benchmarks/bench_gpt.py" + (" --quick" if args.quick else "") + (
        f" --rounds {args.rounds}" if args.rounds else "")
    label = {"numpy": "generated NumPy trainer", "torch": "generated `--backend torch` trainer", "eager": "PyTorch eager"}
    target = {"numpy": "≤ 1.5×", "torch": "≤ 1.0×", "eager": "(baseline)"}
    lines = [
        "# Tiny GPT: a training step against PyTorch eager", "",
        f"V = {V}, d = {D}, T = {T}, N = {N}, 2 pre-norm blocks of {HEADS} causal heads and a {HIDDEN}-unit GELU "
        f"feed-forward layer, float32, Adam (lr {LEARNING_RATE}); one thread; interleaved rounds with alternating "
        f"order; each figure the median over {rounds} rounds of the mean of {inner} steps. Ratio = contender / "
        "PyTorch eager measured in the same run.", "",
        f"Run: `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', started)}. Load average (1, 5, 15 minutes) "
        f"at the start {', '.join(f'{x:.2f}' for x in load_before)}, at the end "
        f"{', '.join(f'{x:.2f}' for x in load_after)}, on {os.cpu_count()} cores.", "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"NumPy {np.__version__}.", "",
        "| contender | step | ratio to eager | target |", "|---|---|---|---|",
    ]
    lines += [f"| {label[name]} | {fmt(s)} | **{s / times['eager']:.2f}×** | {target[name]} |" for name, s in times.items()]
    lines += ["", f"Cold `symbackprop generate examples/tinygpt.toml --dtype float32` (a new process, imports "
              f"included): median of {runs} runs **{gen:.2f} s** wall, {gen_cpu:.2f} s CPU (target < 5 s)."]
    Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
