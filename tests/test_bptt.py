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


# ------------------------------------------------------------------------------------ the trainer

def lm_spec(kind, V=6, T=5, hidden=4):
    return {"network": {"input": [T], "loss": "cross_entropy"},
            "layer": [{"type": "embedding", "vocab": V, "dim": 3}, {"type": kind, "hidden": hidden},
                      {"type": "dense", "units": V, "activation": "softmax"}]}


def reference_steps(kind, params, X, Y, batch, epochs, lr, clip, carry_state):
    """PyTorch: nn.Embedding + nn.<KIND> + nn.Linear, F.cross_entropy on class indices, the batches of
    truncated BPTT (stream p of every batch continues the previous batch's), the state carried detached
    from batch to batch (zeros at an epoch's start) when ``carry_state``; clip_grad_norm_, then SGD."""
    V, D, k = params["E1"].shape[0], params["E1"].shape[1], params["W_hh2"].shape[1]
    emb = torch.nn.Embedding(V, D).double()
    rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, k, batch_first=True).double()
    out = torch.nn.Linear(k, V).double()
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(params["E1"]))
        for ours, theirs in (("W_ih2", "weight_ih_l0"), ("W_hh2", "weight_hh_l0"), ("b_ih2", "bias_ih_l0"),
                             ("b_hh2", "bias_hh_l0")):
            getattr(rnn, theirs).copy_(torch.from_numpy(params[ours]))
        out.weight.copy_(torch.from_numpy(params["W3"]))
        out.bias.copy_(torch.from_numpy(params["b3"]))
    every = [*emb.parameters(), *rnn.parameters(), *out.parameters()]
    streams = len(X) // batch
    for _ in range(epochs):
        hx = None
        for p in range(streams):
            rows = [j * streams + p for j in range(batch)]
            h, final = rnn(emb(torch.from_numpy(X[rows]).long()), hx)
            loss = F.cross_entropy(out(h).reshape(-1, V), torch.from_numpy(Y[rows]).long().reshape(-1))
            for q in every:
                q.grad = None
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(every, clip)
            with torch.no_grad():
                for q in every:
                    q -= lr * q.grad
            if carry_state:
                hx = tuple(s.detach() for s in final) if kind == "lstm" else final.detach()
    return {"E1": emb.weight, "W_ih2": rnn.weight_ih_l0, "W_hh2": rnn.weight_hh_l0, "b_ih2": rnn.bias_ih_l0,
            "b_hh2": rnn.bias_hh_l0, "W3": out.weight, "b3": out.bias}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kind, clip", [("lstm", None), ("lstm", 0.5), ("gru", None), ("rnn", 0.5)])
def test_bptt_steps_are_pytorchs_with_the_state_carried(tmp_path, backend, kind, clip):
    from symbackprop import Network
    from symbackprop.codegen.trainer import render
    from test_generate import load_trainer
    module = load_trainer(render(Network.from_dict(lm_spec(kind)), optimizer="sgd", backend=backend), tmp_path)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 6, 5 * 12 + 1)
    X, Y = module.text_windows(ids)                      # 12 windows: 3 streams of 4
    params = {k: np.asarray(v.cpu() if backend == "torch" else v, dtype=np.float64).copy()
              for k, v in module.init_params(seed=2).items()}
    mine = {k: (torch.from_numpy(v.copy()) if backend == "torch" else v.copy()) for k, v in params.items()}
    data = (torch.from_numpy(X), torch.from_numpy(Y)) if backend == "torch" else (X, Y)
    reason, run = module.train(mine, *data, epochs=2, batch_size=3, learning_rate=0.3, clip_norm=clip, bptt=True)
    assert reason == "epochs" and run["state"]["t"] == 8
    expected = reference_steps(kind, params, X, Y, 3, 2, 0.3, clip, carry_state=True)
    detached = reference_steps(kind, params, X, Y, 3, 2, 0.3, clip, carry_state=False)
    for name, value in expected.items():
        got = np.asarray(mine[name].cpu() if backend == "torch" else mine[name])
        np.testing.assert_allclose(got, value.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{kind} {name}")
    assert not np.allclose(np.asarray(mine["W_hh2"]), detached["W_hh2"].detach().numpy(), rtol=1e-6), \
        "carrying the state should change the steps"


def test_the_stream_order_continues_every_stream(tmp_path):
    from symbackprop import Network
    from symbackprop.codegen.trainer import render
    from test_generate import load_trainer
    module = load_trainer(render(Network.from_dict(lm_spec("lstm"))), tmp_path)
    order = module.stream_order(12, 3).reshape(4, 3)   # batch p, stream j
    assert (order[1:] == order[:-1] + 1).all() and order[0].tolist() == [0, 4, 8]


def test_bptt_on_the_command_line(tmp_path):
    from symbackprop import Network
    from symbackprop.codegen.trainer import render
    from test_trainer_cli import call
    from test_trainer_validation import one_line_error
    trainer = tmp_path / "lm.py"
    trainer.write_text(render(Network.from_dict(lm_spec("lstm")), optimizer="sgd"))
    text = tmp_path / "t.txt"
    text.write_text("abcdeffedcba" * 20)
    ok = call(trainer, "--text", text, "--bptt", "--batch-size", 4, "--epochs", 2, "--clip-norm", 1, "--quiet")
    assert ok.returncode == 0 and "after epoch 2, 22 updates" in ok.stdout     # 47 windows: 4 streams of 11
    one_line_error(call(trainer, "--text", text, "--bptt", 3), "--bptt 3: a chunk is one window of the spec's T = 5")
    one_line_error(call(trainer, "--bptt", "--data", text), "--bptt needs --text")
    one_line_error(call(trainer, "--text", text, "--bptt", "--val-fraction", 0.2), "--val-fraction", "--val-data")
