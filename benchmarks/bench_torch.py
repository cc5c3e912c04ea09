"""The torch backend's training step against PyTorch eager's own, and data-parallel throughput.

A step is the loss, the gradients and the optimizer's update of every parameter on one batch:
``step(params, state, X, Y)`` of the trainer ``symbackprop generate --backend torch --dtype float32``
writes (the derived backward pass, no autograd) against PyTorch eager on the same parameters and
batch (the same layers through ``torch.nn.functional``, ``loss.backward()``, ``torch.optim``'s
``step`` with its defaults). CPU, one thread; the contenders are timed in turn, round after round
(interleaved, the order alternating), and each figure is the median over the rounds of the mean
time of a step within a round. Then, on CUDA when there is a device (skipped, and said so, when
there is none): the deep MLP at batch 4096 and LeNet at batch 1024, with the fraction of the GPU's
measured FP32 matrix-product rate the step achieves. Last, the deep MLP's trainer at batch 1024
run by one process and by two under ``torchrun`` (one thread each), examples per second from the
epoch times it logs.

    python benchmarks/bench_torch.py            # prints the tables, writes benchmarks/results/torch.md
    python benchmarks/bench_torch.py --quick    # fewer rounds, shorter runs
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop.codegen.trainer import render  # noqa: E402
from symbackprop.spec.network import Network, load  # noqa: E402
from bench_trainer import load_module  # noqa: E402

torch.set_num_threads(1)
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False   # FP32 throughout
LEARNING_RATE = 0.01
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def mlp(sizes):
    return Network.from_dict({"network": {"layers": list(sizes), "activations": ["relu"] * (len(sizes) - 2) + ["softmax"],
                                          "loss": "cross_entropy"}})


# (label, network, batch on the CPU, batch on CUDA or None)
CASES = [
    ("784-128-10 relu/softmax, CE", mlp((784, 128, 10)), 128, None),
    ("784-256-256-256-10 relu/softmax, CE", mlp((784, 256, 256, 256, 10)), 256, 4096),
    ("LeNet-5 (examples/lenet.toml), CE", load(ROOT / "examples/lenet.toml"), 128, 1024),
]


def trainer(net, optimizer, device):
    module = load_module(render(net, optimizer=optimizer, learning_rate=LEARNING_RATE, dtype="float32",
                                backend="torch"), f"torch_{optimizer}_{abs(hash(repr(net.graph)))}")
    module.DEVICE = torch.device(device)
    return module


def batch(net, n, device, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *net.input)).astype(np.float32)
    Y = np.eye(net.output_size, dtype=np.float32)[rng.integers(0, net.output_size, n)]
    return torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)


# ----------------------------------------------------------------------------------- contenders

def eager_cost(net, p, X, Y):
    """PyTorch eager's forward and loss for the benchmark's networks (dense stacks and LeNet)."""
    a = X
    for layer in net.graph:
        i, kind = layer.index, layer.kind.name
        if kind == "conv2d":
            a = F.conv2d(a, p[f"W{i}"], p[f"b{i}"], layer.opt["stride"], layer.opt["padding"])
        elif kind == "maxpool2d":
            a = F.max_pool2d(a, layer.opt["kernel"], layer.opt["stride"])
        elif kind == "flatten":
            a = a.flatten(1)
        elif kind == "dense":
            a = F.linear(a, p[f"W{i}"], p[f"b{i}"])
        else:
            raise ValueError(kind)
        if layer.activation.name == "relu":
            a = F.relu(a)
        elif layer.activation.name == "softmax":
            return -(Y * torch.log_softmax(a, dim=1)).sum() / a.shape[0]
    raise ValueError("no softmax output")


def eager_step(net, optimizer, params, X, Y):
    p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    opt = OPTIMIZERS[optimizer](list(p.values()), lr=LEARNING_RATE)

    def step():
        opt.zero_grad(set_to_none=True)
        C = eager_cost(net, p, X, Y)
        C.backward()
        opt.step()
        return C
    return step, p


def ours_step(module, params, X, Y):
    p = {k: v.clone() for k, v in params.items()}
    state = module.init_state(p)
    return (lambda: module.step(p, state, X, Y, LEARNING_RATE)), p


def check_agreement(net, module, params, X, Y):
    """Both contenders compute the same loss and gradients (float32 rounding) before any timing."""
    C, grads = module.loss_and_gradients(params, X, Y)
    p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    C_eager = eager_cost(net, p, X, Y)
    C_eager.backward()
    C_eager = float(C_eager.detach())
    assert abs(float(C) - C_eager) <= 1e-4 * max(1.0, abs(float(C))), (float(C), C_eager)
    for name, g in grads.items():
        scale = float(p[name].grad.abs().max()) + 1e-12
        assert float((g - p[name].grad).abs().max()) <= 2e-3 * scale, name


# ----------------------------------------------------------------------------------- timing

def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(contenders, rounds, inner, device):
    """Median over ``rounds`` of the mean seconds per call over ``inner`` calls, taken in turn, and
    the mean page faults per call (a freshly allocated large tensor faults its pages in)."""
    for fn in contenders.values():
        for _ in range(max(3, inner)):
            fn()
    sync(device)
    times = {name: [] for name in contenders}
    faults = {name: 0 for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for _ in range(inner):
                contenders[name]()
            sync(device)
            times[name].append((time.perf_counter() - start) / inner)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: faults[name] / (rounds * inner) for name in contenders})


def fmt(seconds):
    return f"{seconds * 1e6:.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def step_rows(device, rounds, which="cpu"):
    rows = []
    for label, net, cpu_batch, cuda_batch in CASES:
        n = cpu_batch if which == "cpu" else cuda_batch
        if n is None:
            continue
        X, Y = batch(net, n, device)
        for optimizer in OPTIMIZERS:
            module = trainer(net, optimizer, device)
            params = module.init_params(seed=0)
            check_agreement(net, module, params, X, Y)
            ours, _ = ours_step(module, params, X, Y)
            eager, _ = eager_step(net, optimizer, params, X, Y)
            inner = max(1, int(0.05 / max(1e-5, _once(ours, device))))
            t, faults = interleaved({"ours": ours, "eager": eager}, rounds, inner, device)
            rows.append((label, n, optimizer, t["ours"], t["eager"], flops(net, n), faults))
            print(f"  {label}, batch {n}, {optimizer}: torch backend {fmt(t['ours'])}, eager {fmt(t['eager'])}, "
                  f"ratio {t['ours'] / t['eager']:.3f}; page faults a step {faults['ours']:.0f} / {faults['eager']:.0f}",
                  flush=True)
    return rows


def _once(fn, device):
    fn()
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def flops(net, n):
    """Multiply-adds ×2 of a step's matrix products and convolutions: forward, and backward to the
    weights and (except for the first layer) to the inputs."""
    total = 0
    for layer in net.graph:
        if layer.kind.name not in ("dense", "conv2d"):
            continue
        W = layer.params[f"W{layer.index}"]
        per = 2 * n * int(np.prod(W)) * int(np.prod(layer.shape[1:]))   # per position of the output
        total += per * (2 if layer.sources == (0,) else 3)
    return total


def peak_matmul_rate(device):
    a = torch.randn(8192, 8192, device=device)
    b = torch.randn(8192, 8192, device=device)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192 ** 3 * reps / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------- 2 processes

def throughput(quick):
    """Examples per second of the deep MLP's trainer at batch 1024: one process, then two under
    torchrun (one thread each), alternately; the median of each run's epoch times after the first."""
    net = CASES[1][1]
    folder = Path(tempfile.mkdtemp(prefix="bench_torch_dp_"))
    path = folder / "deep_torch.py"
    path.write_text(render(net, optimizer="adam", dtype="float32", backend="torch"))
    rows = 8192 if quick else 16384
    X, Y = batch(net, rows, "cpu", seed=1)
    np.savez(folder / "data.npz", X=X.numpy(), Y=Y.numpy())
    epochs, repeats = (3, 1) if quick else (5, 4)
    common = ["--data", folder / "data.npz", "--epochs", epochs, "--batch-size", 1024, "--device", "cpu",
              "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = {1: [], 2: []}
    for r in range(repeats):
        for k in (1, 2) if r % 2 == 0 else (2, 1):
            log = folder / f"log_{k}_{r}.csv"
            if k == 1:
                command = [sys.executable, str(path)]
            else:
                command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(path), "--", "--distributed"]
            subprocess.run(command + [str(a) for a in common] + ["--log", str(log)], check=True, env=env,
                           capture_output=True, text=True)
            with open(log, newline="") as handle:
                seconds = [float(row["seconds"]) for row in csv.DictReader(handle)][1:]
            results[k].append(rows / statistics.median(seconds))
            print(f"  {k} process{'es' if k > 1 else ''}: {results[k][-1]:,.0f} examples/s", flush=True)
    return {k: statistics.median(v) for k, v in results.items()}, rows, epochs, repeats


MATMUL = """
import time, torch
torch.set_num_threads(1)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3):
    a @ b
start = time.perf_counter()
for _ in range(40):
    a @ b
print(2 * 1024 ** 3 * 40 / (time.perf_counter() - start))
"""


def matmul_scaling():
    """The machine's own scaling: the FP32 matrix-product rate of one single-thread process, and the
    total of two run at once (what two ranks could get at best)."""
    def run(k):
        procs = [subprocess.Popen([sys.executable, "-c", MATMUL], stdout=subprocess.PIPE, text=True)
                 for _ in range(k)]
        return sum(float(p.communicate()[0]) for p in procs)
    one, two = statistics.median(run(1) for _ in range(3)), statistics.median(run(2) for _ in range(3))
    return one, two


# ----------------------------------------------------------------------------------- report

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per network (default 21, quick 5)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "torch.md"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 31)
    started, load_before = time.gmtime(), os.getloadavg()
    print("CPU, one thread, float32:")
    cpu = step_rows("cpu", rounds)
    if torch.cuda.is_available():
        print("CUDA:")
        cuda, peak = step_rows("cuda", rounds, "cuda"), peak_matmul_rate("cuda")
        cuda_note = f"Device: {torch.cuda.get_device_name()}; measured FP32 matrix-product rate {peak / 1e12:.1f} TFLOP/s."
    else:
        cuda, peak = [], None
        cuda_note = "CUDA: no device here (torch.cuda.is_available() is False): the CUDA rows were skipped."
        print(cuda_note)
    print("Data-parallel, deep MLP, batch 1024:")
    dp, dp_rows, dp_epochs, dp_repeats = throughput(args.quick)
    mm_one, mm_two = matmul_scaling()
    print(f"  matrix products: one process {mm_one / 1e9:.1f} GFLOP/s, two at once {mm_two / 1e9:.1f} GFLOP/s in all")
    load_after = os.getloadavg()
    command = "python benchmarks/bench_torch.py" + (" --quick" if args.quick else "") + (
        f" --rounds {args.rounds}" if args.rounds else "")
    lines = [
        "# The torch backend: training step against PyTorch eager, data-parallel throughput", "",
        "A step is the loss, the gradients and the optimizer's update of every parameter on one batch: "
        "`step(params, state, X, Y)` of `symbackprop generate --backend torch --dtype float32` (the derived "
        "backward pass, no autograd) against PyTorch eager on the same parameters and batch "
        "(`torch.nn.functional` layers, `loss.backward()`, `torch.optim` with its defaults). One thread; "
        f"interleaved rounds, medians; ratio = torch backend / eager (below 1 is faster). {rounds} rounds.", "",
        f"Run: `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', started)}. Load average (1, 5, 15 minutes) "
        f"at the start {', '.join(f'{x:.2f}' for x in load_before)}, at the end "
        f"{', '.join(f'{x:.2f}' for x in load_after)}, on {os.cpu_count()} cores.", "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"NumPy {np.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}.", "",
        "## CPU, float32", "",
        "| network | batch | optimizer | torch backend | PyTorch eager | ratio | target | page faults a step (ours / eager) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {label} | {n} | {opt} | {fmt(a)} | {fmt(b)} | **{a / b:.2f}×** | ≤ 1.0× | "
              f"{faults['ours']:.0f} / {faults['eager']:.0f} |" for label, n, opt, a, b, _, faults in cpu]
    lines += ["", "The torch backend writes every batch-sized tensor into a preallocated one, as the NumPy "
              "trainer does; eager allocates them afresh each step, which page-faults whenever the allocator "
              "has handed that memory back to the system (the last column)."]
    lines += ["", "## CUDA, float32", "", cuda_note, ""]
    if cuda:
        lines += ["| network | batch | optimizer | torch backend | PyTorch eager | ratio | fraction of peak FP32 |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {label} | {n} | {opt} | {fmt(a)} | {fmt(b)} | **{a / b:.2f}×** | {fl / a / peak:.0%} |"
                  for label, n, opt, a, b, fl, _ in cuda]
        lines.append("")
    lines += ["## Data-parallel on the CPU: 784-256-256-256-10, Adam, batch 1024 (global)", "",
              f"The generated trainer on {dp_rows:,} rows for {dp_epochs} epochs, one process (`python trainer.py`) "
              "and two (`python -m torch.distributed.run --standalone --nproc_per_node=2 trainer.py -- "
              "--distributed`, gloo), one thread each, alternately, "
              f"{dp_repeats} run{'s' if dp_repeats > 1 else ''} each; examples per second from the median epoch time "
              "the trainer logs (the first epoch left out).", "",
              "| processes | examples/s | speed-up |", "|---|---|---|",
              f"| 1 | {dp[1]:,.0f} | 1.00× |", f"| 2 | {dp[2]:,.0f} | **{dp[2] / dp[1]:.2f}×** |", "",
              f"For scale, this machine's own: a single-thread 1024×1024 float32 matrix product runs at "
              f"{mm_one / 1e9:.1f} GFLOP/s in one process and at {mm_two / 1e9:.1f} GFLOP/s in all in two processes "
              f"at once ({mm_two / mm_one:.2f}×, the most two ranks' arithmetic could gain here); each step of the "
              "2-process run also sums the 335,114 gradient values across the ranks (gloo all_reduce, over the "
              "loopback).", "",
              "`python benchmarks/bench_torch.py` writes this file."]
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
