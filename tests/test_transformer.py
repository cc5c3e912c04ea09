"""A GPT-style network end to end: token embedding, positional embedding, a pre-norm block
(x + attention(layernorm(x)), x + dense(gelu(dense(layernorm(x))))), a final layer norm and a
dense layer per step to the vocabulary with class-index cross-entropy — its loss and every
gradient against PyTorch (F.embedding, F.layer_norm, F.multi_head_attention_forward, F.gelu,
F.cross_entropy, autograd) in float64, from the compiled NumPy and torch functions; and the
example tiny GPT's generated trainer learning from the shipped text."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symbackprop import Network, load

torch = pytest.importorskip("torch")
F = torch.nn.functional
ROOT = Path(__file__).resolve().parent.parent
V, T, D = 7, 5, 4


def mini_gpt(heads=2) -> Network:
    return Network.from_dict({"network": {"input": [T], "loss": "cross_entropy"}, "layer": [
        dict(type="embedding", vocab=V, dim=D), dict(type="posembed", length=T + 2),
        dict(type="layernorm", over="last"), dict(type="attention", heads=heads, causal=True), dict(type="add", **{"from": 2}),
        dict(type="layernorm", over="last"), dict(type="dense", units=8, activation="gelu"), dict(type="dense", units=D),
        dict(type="add", **{"from": 5}), dict(type="layernorm", over="last"),
        dict(type="dense", units=V, activation="softmax")]})


def torch_gpt(p, X, Y, heads):
    """The same network in PyTorch's functions: the per-example mean over steps, then over examples."""
    ln = lambda x, i: F.layer_norm(x, (D,), p[f"gamma{i}"], p[f"beta{i}"])                     # noqa: E731
    x = F.embedding(torch.tensor(X, dtype=torch.long), p["E1"]) + p["P2"][:T]
    h = ln(x, 3).transpose(0, 1)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    att, _ = F.multi_head_attention_forward(
        h, h, h, D, heads, torch.cat([p["Wq4"], p["Wk4"], p["Wv4"]]), torch.cat([p["bq4"], p["bk4"], p["bv4"]]), None, None,
        False, 0.0, p["Wo4"], p["bo4"], training=False, attn_mask=mask, need_weights=False)
    x5 = x + att.transpose(0, 1)
    ff = F.linear(F.gelu(F.linear(ln(x5, 6), p["W7"], p["b7"])), p["W8"], p["b8"])
    logits = F.linear(ln(x5 + ff, 10), p["W11"], p["b11"])
    return F.cross_entropy(logits.reshape(-1, V), torch.tensor(Y, dtype=torch.long).reshape(-1))


@pytest.mark.parametrize("heads", [1, 2])
def test_a_gpt_block_agrees_with_pytorch(heads):
    net = mini_gpt(heads)
    rng = np.random.default_rng(heads)
    params = {k: (1.0 if k.startswith("gamma") else 0.0) + rng.normal(scale=0.5, size=s)
              for k, s in net.parameter_shapes().items()}
    X, Y = rng.integers(0, V, (3, T)), rng.integers(0, V, (3, T))
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    loss = torch_gpt(p, X, Y, heads)
    loss.backward()
    for backend in ("numpy", "torch"):
        C, grads = net.compile(backend=backend).loss_and_gradients(params, X.astype(float), Y.astype(float))
        assert float(C) == pytest.approx(float(loss.detach()), rel=1e-11), backend
        for name, g in grads.items():
            np.testing.assert_allclose(np.asarray(g), p[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=f"{backend} {name}")


def test_the_tiny_gpt_trainer_learns_from_the_shipped_text(tmp_path):
    """examples/tinygpt.toml's generated NumPy trainer (float32): 60 Adam steps on the shipped text
    bring the loss down from about log 65 ≈ 4.17."""
    net = load(ROOT / "examples" / "tinygpt.toml")
    assert net.parameter_count == 30209 and net.graph[3].opt == {"heads": 2, "causal": True, "bias": True}
    trainer = tmp_path / "tinygpt.py"
    subprocess.run([sys.executable, "-m", "symbackprop", "generate", str(ROOT / "examples" / "tinygpt.toml"),
                    "--dtype", "float32", "-o", str(trainer)], check=True, capture_output=True)
    log = tmp_path / "log.csv"
    run = subprocess.run([sys.executable, str(trainer), "--text", str(ROOT / "examples" / "charlstm.txt"),
                          "--batch-size", "16", "--max-iters", "60", "--epochs", "1", "--seed", "0", "--log", str(log)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    final = float(run.stdout.strip().splitlines()[-1].split("final loss ")[1].split(",")[0])
    assert final < 3.0, run.stdout


def test_the_generated_erf_is_math_erf_to_a_few_ulps():
    """gelu's erf in generated NumPy code is a vectorised rational approximation (Cephes), not a
    Python loop: within 4 units in the last place of math.erf in float64, 2 in float32."""
    import math
    from symbackprop.codegen.compiled import compile_network
    f = compile_network(Network.from_dict({"network": {"input": [2], "loss": "mse"},
                                           "layer": [dict(type="dense", units=1, activation="gelu")]}))
    erf = f.forward.__globals__["_erf"]
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-30, 30, 20001), np.linspace(-1.1, 1.1, 20001), rng.normal(size=20000) * 3])
    ref = np.array([math.erf(v) for v in x])
    assert np.all(np.abs(erf(x) - ref) <= 4 * np.spacing(np.abs(ref) + 1e-300))
    x32 = x.astype(np.float32)
    ref32 = np.array([math.erf(float(v)) for v in x32]).astype(np.float32)
    assert erf(x32).dtype == np.float32 and np.all(np.abs(erf(x32) - ref32) <= 2 * np.spacing(np.abs(ref32)))


def test_finite_differences_take_a_sequence_softmax_per_step():
    """gradcheck's plain forward pass applies a sequence's softmax over each step's last axis (each
    row of every example sums to 1), as the compiled functions do."""
    from symbackprop.numeric.gradcheck import forward_pass
    net = mini_gpt(2)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(scale=0.5, size=s) for k, s in net.parameter_shapes().items()}
    X = rng.integers(0, V, (3, T)).astype(float)
    a = forward_pass(net, params, X)[f"a{net.depth}"]
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(a, net.compile().forward(params, X), rtol=1e-10, atol=1e-14)
