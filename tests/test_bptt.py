"""Truncated BPTT (issue 21): the recurrent kernels start from a carried state (``ws["initial"]``) and
hand back the final one (``ws["final"]``), NumPy and torch twins alike, against nn.RNN/LSTM/GRU given
(h_0, c_0) in float64; a trainer's --bptt steps carry the state between consecutive chunks, each step
equal to PyTorch's (the state detached between chunks, as char-RNN trainers do)."""
import math
import types

import numpy as np
import pytest

from symbackprop.entries.layers import recurrent as R
from symbackprop.entries.layers.base import kernel_sources

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

KINDS = {"rnn": ("rnn_forward", "rnn_deltas"), "lstm": ("lstm_forward", "lstm_deltas"),
         "gru": ("gru_forward", "gru_deltas")}


def torch_kernels():
    ns = {"torch": torch, "F": F, "math": math, "np": np}
    for source in kernel_sources([name for pair in KINDS.values() for name in pair] + ["prev_weight_grad"], "torch"):
        exec(source, ns)
    return types.SimpleNamespace(**ns)


def run_kernels(K, kind, X, p, W, ws, k, wrap):
    """h (N, T, hidden), ∂C/∂W_ih, ∂C/∂W_hh, ∂C/∂b_hh, ∂C/∂x for C = Σ W ⊙ (the layer's output)."""
    forward, deltas = (getattr(K, name) for name in KINDS[kind])
    extra = (0,) if kind == "rnn" else ()
    S = forward(X, *p, *extra, ws=ws)
    D = deltas(W, S, p[2], *extra, ws=ws)
    h = S if kind == "rnn" else S[..., 5 * k:] if kind == "lstm" else S[..., 3 * k:4 * k]
    Di, Dh = (D[..., :3 * k], D[..., 3 * k:]) if kind == "gru" else (D, D)
    dW_ih = wrap(np.einsum("ntg,ntd->gd", np.asarray(Di), np.asarray(X)))
    return h, dW_ih, K.prev_weight_grad(Dh, h, ws=ws), Dh.sum((0, 1)), Di @ p[0]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("initial", [True, False])
def test_kernels_from_a_carried_state_are_pytorchs(backend, kind, last, initial):
    rng = np.random.default_rng(hash((kind, last, initial)) % 2**32)
    n, T, d, k = 3, 5, 4, 6
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](d, k, batch_first=True).double()
    x = torch.tensor(rng.normal(size=(n, T, d)), requires_grad=True)
    h0, c0 = torch.tensor(rng.normal(size=(1, n, k))), torch.tensor(rng.normal(size=(1, n, k)))
    hx = ((h0, c0) if kind == "lstm" else h0) if initial else None
    out, final = module(x, hx)
    w = torch.tensor(rng.normal(size=out.shape))
    if last:
        w[:, :-1] = 0              # return = "last": only h_T reaches the loss
    (out * w).sum().backward()
    p = [getattr(module, a).detach() for a in ("weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0")]
    state = (h0[0], c0[0]) if kind == "lstm" else (h0[0],)
    W = w[:, -1] if last else w
    if backend == "numpy":
        K, X, wrap = R, x.detach().numpy(), np.asarray
        p, W, state = [a.numpy() for a in p], W.numpy(), tuple(s.numpy() for s in state)
    else:
        K, X, wrap = torch_kernels(), x.detach(), torch.from_numpy
    ws = {"initial": state if initial else None}
    h, dW_ih, dW_hh, db_hh, dx = run_kernels(K, kind, X, p, W, ws, k, wrap)
    close = lambda a, b, what: np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-10,
                                                          atol=1e-12, err_msg=f"{kind} {backend} {what}")
    close(h, out, "h")
    close(ws["final"][0], (final[0] if kind == "lstm" else final)[0], "h_T")
    if kind == "lstm":
        close(ws["final"][1], final[1][0], "c_T")
    close(dW_ih, module.weight_ih_l0.grad, "dW_ih")
    close(dW_hh, module.weight_hh_l0.grad, "dW_hh")
    close(db_hh, module.bias_hh_l0.grad, "db_hh")
    close(dx, x.grad, "dx")


def test_without_a_workspace_nothing_is_kept():
    rng = np.random.default_rng(0)
    p = [rng.normal(size=s) for s in ((8, 3), (8,), (8, 2), (8,))]
    ws = {}
    R.lstm_forward(rng.normal(size=(2, 4, 3)), *p, ws=ws)
    assert ws == {}             # (no "initial" asked for: no "final" written)
