"""What the sequence models' benchmarks (bench_charlstm.py, bench_gpt.py) share: a batch of
next-character windows, a generated trainer's timed step, the agreement check made before any
timing, and the cold start of a command."""
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def batch(n, t, v, seed=0):
    """n windows of t ids below v and their next-character targets, as int64 arrays."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, (n, t + 1))
    return ids[:, :-1], ids[:, 1:]


def _backend(backend, *arrays):
    """``arrays`` (dicts of arrays, or arrays) as the backend takes them."""
    if backend == "numpy":
        return arrays
    return tuple({k: torch.from_numpy(v) for k, v in a.items()} if isinstance(a, dict) else torch.from_numpy(a)
                 for a in arrays)


def ours_step(module, params, X, Y, backend, learning_rate):
    """One training step of the generated trainer ``module`` on copies of ``params``, unclipped."""
    p, X, Y = _backend(backend, {k: v.copy() for k, v in params.items()}, X, Y)
    state = module.init_state(p)
    return lambda: module.step(p, state, X, Y, learning_rate, clip_norm=None)


def check_agreement(module, eager_loss_and_grads, params, X, Y, backend, floor=1e-12):
    """The trainer's loss and every gradient equal eager's (float32 rounding) before any timing;
    ``floor`` bounds the scale a gradient's error is relative to (a gradient that is exactly 0 is
    float32 noise on both sides)."""
    C_ref, g_ref = eager_loss_and_grads(params, X, Y)
    C, grads = module.loss_and_gradients(*_backend(backend, params, X, Y))
    assert abs(float(C) - C_ref) <= 1e-4 * max(1.0, abs(C_ref)), (float(C), C_ref)
    assert set(grads) == set(g_ref), set(grads) ^ set(g_ref)
    for name, g in grads.items():
        g = g.numpy() if backend == "torch" else g
        scale = max(float(np.abs(g_ref[name]).max()), floor)
        assert float(np.abs(g - g_ref[name]).max()) <= 2e-3 * scale, name


def cold(command, runs):
    """Median wall seconds of ``command`` (a new process each time) and median CPU seconds (user +
    system, of the child: what a busy machine's load inflates less)."""
    import resource
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu)
