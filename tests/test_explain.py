"""``symbackprop explain``: every number of a worked example, checked against an independent
plain-NumPy computation written out here (never against the seed notes' printed numbers, which
have slips), every layer's factors present, the formats, the stopping conditions and bad input."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

from symbackprop.cli import main
from symbackprop.errors import SpecError
from symbackprop.explain.example import Display, _aligned, _Num, explain
from symbackprop.entries.optimizers import OPTIMIZERS
from symbackprop import Network, load

ROOT = Path(__file__).resolve().parent.parent
SEED, MAZUR = ROOT / "examples" / "seed.toml", ROOT / "examples" / "mazur.toml"


# ---- an independent reference: plain NumPy, sigmoid layers, written from the textbook formulas

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference(W1, b1, W2, b2, x, y, loss="squared_error"):
    """Forward and backward pass of a two-layer sigmoid net for one example."""
    z1 = W1 @ x + b1
    a1 = sigmoid(z1)
    z2 = W2 @ a1 + b2
    a2 = sigmoid(z2)
    scale = 0.5 if loss == "half_squared_error" else 1.0
    C = scale * np.sum((a2 - y) ** 2)
    dC_da2 = 2 * scale * (a2 - y)
    d2 = dC_da2 * a2 * (1 - a2)
    dC_da1 = W2.T @ d2
    d1 = dC_da1 * a1 * (1 - a1)
    return dict(z1=z1, a1=a1, z2=z2, a2=a2, C=C, dC_da2=dC_da2, da2_dz2=a2 * (1 - a2), d2=d2,
                dC_da1=dC_da1, da1_dz1=a1 * (1 - a1), d1=d1,
                W1=np.outer(d1, x), b1=d1, W2=np.outer(d2, a1), b2=d2)


SEED_P = dict(W1=np.array([[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]), b1=np.array([0.3, -0.1]),
              W2=np.array([[0.5, 0.2]]), b2=np.array([0.1]))
SEED_X, SEED_Y = np.array([2.0, 3.0, -1.0]), np.array([1.0])


def seed_ref(params=SEED_P):
    return reference(params["W1"], params["b1"], params["W2"], params["b2"], SEED_X, SEED_Y)


def test_bias_correction_is_read_from_the_rules_not_the_name(monkeypatch):
    from dataclasses import replace
    monkeypatch.setitem(OPTIMIZERS, "renamed", replace(OPTIMIZERS["adam"], name="renamed"))
    md = explain(load(SEED), optimizer="renamed").markdown()
    assert "Bias correction is on" in md


@pytest.fixture(scope="module")
def seed_adam():
    return explain(load(SEED), optimizer="adam")


@pytest.fixture(scope="module")
def seed_adam_md(seed_adam):
    return seed_adam.markdown()


@pytest.fixture(scope="module")
def mazur():
    return explain(load(MAZUR), digits=9)


def num(x, digits=5):
    return _Num(digits).tex(x)


# ---- the seed's example, through Adam and the second forward pass

def test_seed_forward_and_loss(seed_adam, seed_adam_md):
    r = seed_ref()
    v = seed_adam.values
    np.testing.assert_allclose(v.forward["z1"], r["z1"], rtol=1e-14)
    np.testing.assert_allclose(v.forward["a2"], r["a2"], rtol=1e-14)
    assert float(v.loss) == pytest.approx(r["C"], rel=1e-14)
    md = seed_adam_md
    # the seed's written-out sums, with the true values
    assert "&= 0.2(2) + (-0.5)(3) + 0.1(-1) + 0.3" in md
    assert "&= 0.4 - 1.5 - 0.1 + 0.3" in md
    assert "&= (-0.3)(2) + 0.4(3) + 0.2(-1) - 0.1" in md
    assert rf"\sigma(-0.9) \approx {num(r['a1'][0])}" in md
    assert rf"\sigma(0.3) \approx {num(r['a1'][1])}" in md
    assert rf"&\approx {num(r['z2'][0])}" in md
    assert r"\left(a^{(2)}_{1} - y_{1}\right)^{2}" in md       # the loss formula
    assert rf"&\approx {num(r['C'])}" in md


def test_seed_backward_every_layer(seed_adam, seed_adam_md):
    r = seed_ref()
    g = seed_adam.values.gradients
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(g[name], r[name], rtol=1e-12)
    # where the seed slipped: dC/dW2_1 is -0.0575, not -0.0287 (it dropped nothing: a1 = 0.289)
    assert g["W2"][0, 0] == pytest.approx(-0.05754, abs=5e-6)
    assert g["W2"][0, 1] == pytest.approx(-0.11434, abs=5e-6)
    md = seed_adam_md
    # each factor: symbolic form, where it comes from, number
    assert rf"2 \left(a^{{(2)}}_{{1}} - y_{{1}}\right) = 2 \times \left({num(r['a2'][0])} - 1\right) " \
           rf"\approx {num(r['dC_da2'][0])}" in md
    assert r"\sigma'(z) = a \left(1 - a\right)" in md
    assert rf"= {num(r['a2'][0])} \times \left(1 - {num(r['a2'][0])}\right) \approx {num(r['da2_dz2'][0])}" in md
    # the gradient as its product, in chain order dz/dw x da/dz x dC/da, as the seed writes it
    assert (rf"&= {num(r['a1'][0])} \times {num(r['da2_dz2'][0])} \times ({num(r['dC_da2'][0])}) "
            rf"\approx {num(r['W2'][0, 0])}") in md
    assert rf"&= 1 \times {num(r['da2_dz2'][0])} \times ({num(r['dC_da2'][0])}) \approx {num(r['b2'][0])}" in md
    # the hidden layer, which the seed never reaches: dC/da, delta recursion, gradients
    assert rf"&= 0.5 \times ({num(r['d2'][0])}) \approx {num(r['dC_da1'][0])}" in md
    assert r"\delta^{(1)}_k = \Big(\sum_j W^{(2)}_{j,k}\, \delta^{(2)}_j\Big)" in md
    assert rf"&= {num(r['da1_dz1'][0])} \times ({num(r['dC_da1'][0])}) \approx {num(r['d1'][0])}" in md
    for j in range(2):
        for k in range(3):
            assert rf"\frac{{\partial C}}{{\partial W^{{(1)}}_{{{j + 1},{k + 1}}}}} &=" in md
            x = num(SEED_X[k]) if SEED_X[k] > 0 else f'({num(SEED_X[k])})'
            assert rf"&= {x} \times {num(r['da1_dz1'][j])} \times ({num(r['dC_da1'][j])}) \approx {num(r['W1'][j, k])}" in md
    assert (r"\frac{\partial C}{\partial W^{(1)}_{1,1}} &= \frac{\partial z^{(1)}_{1}}{\partial W^{(1)}_{1,1}} \, "
            r"\frac{\partial a^{(1)}_{1}}{\partial z^{(1)}_{1}} \, \frac{\partial C}{\partial a^{(1)}_{1}}") in md


def adam_reference(params, grads, lr=0.1, b1=0.9, b2=0.999, eps=1e-8, correct=True):
    out, state = {}, {}
    for k in params:
        g = grads[k]
        m, v = (1 - b1) * g, (1 - b2) * g * g
        mh, vh = (m / (1 - b1), v / (1 - b2)) if correct else (m, v)
        out[k] = params[k] - lr * mh / (np.sqrt(vh) + eps)
        state[k] = (m, v)
    return out, state


def test_seed_adam_update_and_second_forward_pass(seed_adam, seed_adam_md):
    r = seed_ref()
    new, state = adam_reference(SEED_P, r)
    u = seed_adam.update
    for k in SEED_P:
        np.testing.assert_allclose(u.params[k], new[k], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(u.state["m"][k], state[k][0], rtol=1e-13)
        np.testing.assert_allclose(u.state["v"][k], state[k][1], rtol=1e-13)
        # with bias correction, the first Adam step moves every parameter by about lr
        np.testing.assert_allclose(np.abs(u.params[k] - SEED_P[k]), 0.1, atol=1e-6)
    r2 = seed_ref(new)
    assert float(seed_adam.after.loss) == pytest.approx(r2["C"], rel=1e-13)
    np.testing.assert_allclose(seed_adam.after.forward["a1"], r2["a1"], rtol=1e-13)
    md = seed_adam_md
    m = state["W2"][0][0, 0]
    assert rf"m &\leftarrow 0.9 \times 0 + \left(1 - 0.9\right) \times ({num(r['W2'][0, 0])}) \approx {num(m)}" in md
    assert r"\hat m &= \frac{m}{1 - \beta_1^{t}}" in md
    assert r"\theta &\leftarrow \theta - \frac{\eta \hat m}{\sqrt{\hat v} + \epsilon}" in md
    assert rf"\theta &\leftarrow 0.5 - \frac{{0.1 \times ({num(m / 0.1)})}}{{\sqrt{{{num(state['W2'][1][0, 0] / 0.001)}}} + 10^{{-8}}}} \approx 0.6" in md
    assert "almost exactly $\\eta$" in md
    assert "simultaneous" in md
    assert "## 5. Forward pass with the updated parameters" in md
    assert rf"&\approx {num(r2['C'])}" in md
    drop = r["C"] - r2["C"]
    assert rf"\rvert = {num(drop)}$ (${num(drop / r['C'] * 100)}\%$ of $C$)" in md
    assert "The loss fell" in md
    # the seed also works plain SGD on the same gradients: shown for comparison
    sgd = {k: SEED_P[k] - 0.1 * r[k] for k in SEED_P}
    assert rf"W^{{(2)}}_{{1,1}} &\leftarrow 0.5 - 0.1 \times ({num(r['W2'][0, 0])}) \approx {num(sgd['W2'][0, 0])}" in md
    assert f"After the sgd step the loss would be ${num(seed_ref(sgd)['C'])}$" in md


def test_seed_adam_without_bias_correction():
    net = load(SEED)
    net = Network.from_dict({"network": {"layers": [3, 2, 1], "activations": "sigmoid", "loss": "squared_error"},
                             "parameters": {k: v.tolist() for k, v in net.parameters.items()},
                             "sample": {"x": SEED_X.tolist(), "y": SEED_Y.tolist()},
                             "optimizer": {"name": "adam", "learning_rate": 0.1, "bias_correction": False}})
    e = explain(net)
    new, _ = adam_reference(SEED_P, seed_ref(), correct=False)
    for k in SEED_P:
        np.testing.assert_allclose(e.update.params[k], new[k], rtol=1e-13)
    md = e.markdown()
    assert "Bias correction is off" in md and r"\hat m" not in md.split("## 4.")[1].split("Hyper")[0]


def test_seed_sgd_and_digits():
    e = explain(load(SEED), optimizer="sgd", digits=3)
    r = seed_ref()
    for k in SEED_P:
        np.testing.assert_allclose(e.update.params[k], SEED_P[k] - 0.1 * r[k], rtol=1e-14)
    md = e.markdown()
    assert r"&= 0.289 \times 0.242 \times (-0.822) \approx -0.0575" in md
    assert r"\theta &\leftarrow \theta - \eta g" in md
    assert r"W^{(2)}_{1,1} &\leftarrow 0.5 - 0.1 \times (-0.0575) \approx 0.506" in md


# ---- Mazur's 2-2-2 example

def test_mazur_first_step_numbers(mazur):
    P = dict(W1=np.array([[.15, .2], [.25, .3]]), b1=np.array([.35, .35]),
             W2=np.array([[.4, .45], [.5, .55]]), b2=np.array([.6, .6]))
    x, y = np.array([.05, .1]), np.array([.01, .99])
    r = reference(P["W1"], P["b1"], P["W2"], P["b2"], x, y, "half_squared_error")
    new = {k: P[k] - 0.5 * r[k] if k.startswith("W") else P[k] for k in P}
    # our own computation agrees with Mazur's published first-step numbers ...
    assert r["C"] == pytest.approx(0.298371109, abs=5e-10)
    assert new["W2"][0, 0] == pytest.approx(0.35891648, abs=5e-9)
    assert new["W1"][0, 0] == pytest.approx(0.149780716, abs=5e-10)
    # ... and explain agrees with both
    assert float(mazur.values.loss) == pytest.approx(r["C"], rel=1e-14)
    for k in P:
        np.testing.assert_allclose(mazur.update.params[k], new[k], rtol=1e-14)
    np.testing.assert_array_equal(mazur.update.params["b1"], P["b1"])     # biases not trained
    # simultaneous updates: 0.2910277737, not the post's 0.291027924 (output weights updated first)
    assert float(mazur.after.loss) == pytest.approx(0.2910277737, abs=5e-11)
    r2 = reference(new["W1"], P["b1"], new["W2"], P["b2"], x, y, "half_squared_error")
    assert float(mazur.after.loss) == pytest.approx(r2["C"], rel=1e-13)
    md = mazur.markdown()
    assert r"\approx 0.298371109" in md and r"\approx 0.35891648" in md and r"\approx 0.149780716" in md
    assert "simultaneous updates" in md and "train_biases = false" in md


def test_mazur_every_layer_factors(mazur):
    md = mazur.markdown()
    for l in (1, 2):
        for j in (1, 2):
            assert rf"\delta^{{({l})}}_{{{j}}} &=" in md
            assert rf"\frac{{\partial a^{{({l})}}_{{{j}}}}}{{\partial z^{{({l})}}_{{{j}}}}} &=" in md
            assert rf"\frac{{\partial C}}{{\partial a^{{({l})}}_{{{j}}}}} &=" in md
            for k in (1, 2):
                assert rf"\frac{{\partial C}}{{\partial W^{{({l})}}_{{{j},{k}}}}} &=" in md
    # the hidden dC/da sums over both output neurons
    assert md.count(r"\frac{\partial C}{\partial a^{(1)}_{1}} &= \frac{\partial z^{(2)}_{1}}{\partial a^{(1)}_{1}} \, "
                    r"\delta^{(2)}_{1} + \frac{\partial z^{(2)}_{2}}{\partial a^{(1)}_{1}} \, \delta^{(2)}_{2}") == 1
    # ½ squared error; every rounded number with the 9 digits asked for (0.751365070, not 0.75136507)
    assert r"&= a^{(2)}_{1} - y_{1} = 0.751365070 - 0.01 \approx 0.741365070" in md


# ---- batches, other activations and losses, every optimizer

BATCH = {"network": {"layers": [2, 2, 1], "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"},
         "parameters": {"W1": [[0.1, -0.2], [0.3, 0.4]], "b1": [0.1, -0.1], "W2": [[0.5, -0.6]], "b2": [0.2]},
         "sample": {"x": [[1, 2], [0.5, -1], [0, 1]], "y": [1, 0, 1]}}


def test_batch_is_the_mean_with_per_example_tables():
    e = explain(Network.from_dict(BATCH), optimizer="sgd")
    P = {k: np.array(v, dtype=float) for k, v in BATCH["parameters"].items()}
    refs = [reference(P["W1"], P["b1"], P["W2"], P["b2"], np.array(x, float), np.array([y], float))
            for x, y in zip(BATCH["sample"]["x"], BATCH["sample"]["y"])]
    assert float(e.values.loss) == pytest.approx(np.mean([r["C"] for r in refs]), rel=1e-14)
    for k in P:
        np.testing.assert_allclose(e.values.gradients[k], np.mean([r[k] for r in refs], axis=0), rtol=1e-13)
    md = e.markdown()
    assert "the mean of the per-example losses" in md
    assert "| example | $x_{1}$ | $x_{2}$ | $y_{1}$ |" in md
    assert "| quantity | example 1 | example 2 | example 3 | mean (the gradient of $C$) |" in md
    assert r"C = \frac{1}{3}\left(" in md
    for i, r in enumerate(refs):
        assert f"| {i + 1} | ${num(r['z1'][0])}$ | ${num(r['z1'][1])}$ |" in md


SOFTMAX = {"network": {"layers": [2, 3, 3], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
           "parameters": {"W1": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]], "b1": [0.1, 0, -0.1],
                          "W2": [[0.2, -0.3, 0.1], [0.4, 0.1, -0.2], [-0.1, 0.3, 0.2]], "b2": [0, 0.1, -0.1]},
           "sample": {"x": [[1, 2], [0.5, -1]], "y": [[1, 0, 0], [0, 0, 1]]}}


def test_softmax_jacobian_as_stated():
    """The text says dA_j/dz_i = a_j([i = j] - a_i): check it against the derivation's factors."""
    e = explain(Network.from_dict(SOFTMAX))
    def per_example(expr):
        symbols = sorted(expr.free_symbols, key=str)
        return np.broadcast_to(sympy.lambdify(symbols, expr, "numpy")(*[e.values.env[s] for s in symbols]), (2,))
    layer = e.derivation.model.layers[-1]
    a = np.array([per_example(s) for s in layer.a])
    for step in (s for s in e.derivation.steps if s.kind == "delta" and s.layer == 2):
        i = step.index[0]
        for j, term in enumerate(step.terms):
            value = per_example(term[0].expr)
            np.testing.assert_allclose(value, a[j] * ((i == j) - a[i]), rtol=1e-12)
    assert "[i = j]" in e.markdown()


@pytest.mark.parametrize("spec", [SOFTMAX, {**SOFTMAX, "network": {"layers": [2, 3, 1],
                                  "activations": ["gelu", "sigmoid"], "loss": "binary_cross_entropy"},
                                  "parameters": {**SOFTMAX["parameters"], "W2": [[0.2, -0.3, 0.1]], "b2": [0.1]},
                                  "sample": {"x": [[1, 2], [0.5, -1]], "y": [[1], [0]]}}], ids=["softmax", "gelu"])
def test_training_loop_evaluator_is_evaluate(spec):
    """The --steps loop's evaluator (numeric.evaluator) gives evaluate's loss and gradients at
    parameters other than the spec's."""
    from symbackprop.derive.derivation import Derivation
    from symbackprop.derive.model import Model
    from symbackprop.numeric.values import evaluate, evaluator
    d = Derivation(Model(Network.from_dict(spec)))
    run = evaluator(d)
    for shift in (0.0, 0.3, -0.7):
        params = {k: np.asarray(v) + shift for k, v in d.model.network.parameters.items()}
        want = evaluate(d, parameters=params)
        loss, grads = run(params)
        assert loss == pytest.approx(float(want.loss), rel=1e-14)
        for k in grads:
            np.testing.assert_allclose(grads[k], want.gradients[k], rtol=1e-13)


SPECS = {
    "relu_mse": {"network": {"layers": [2, 2, 1], "activations": ["relu", "identity"], "loss": "mse"},
                 "parameters": {"W1": [[0.5, -0.2], [-0.3, 0.8]], "b1": [0.1, -0.1], "W2": [[1.0, -1.5]], "b2": [0.2]},
                 "sample": {"x": [1, 2], "y": [0.5]}},
    "formula_bce": {"network": {"layers": [1, 2, 1], "activations": ["z/(1 + abs(z))", "sigmoid"],
                                "loss": "binary_cross_entropy"},
                    "parameters": {"W1": [[0.5], [-0.7]], "b1": [0.1, 0.2], "W2": [[0.3, -0.4]], "b2": [0.05]},
                    "sample": {"x": [[1], [2], [-1]], "y": [1, 0, 1]}},
    "gelu": {"network": {"layers": [1, 1], "activations": ["gelu"], "loss": "squared_error"},
             "parameters": {"W1": [[0.5]], "b1": [0.1]}, "sample": {"x": [1], "y": [2]},
             "optimizer": {"weight_decay": 0.1, "learning_rate": 0.01, "momentum": 0.5}},
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("spec", list(SPECS))
def test_every_optimizer_and_activation_renders(spec, optimizer):
    e = explain(Network.from_dict(SPECS[spec]), optimizer=optimizer, steps=3)
    from symbackprop.entries.optimizers import Settings, step
    net = e.network
    params, state = net.parameters, OPTIMIZERS[optimizer].init_state(net.parameters)
    new, _ = step(OPTIMIZERS[optimizer], Settings.of(net.optimizer), params, e.values.gradients, state, 1)
    for k in params:
        np.testing.assert_array_equal(e.update.params[k], new[k])
    md, tex, page = e.markdown(), e.latex(), e.html()
    assert f"## 4. Update: {optimizer}" in md and "| 3 |" in md
    assert md.count("$") % 2 == 0
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert "<svg" in page and "katex" in page


def test_training_run_matches_reference_and_stops():
    P = {k: v.copy() for k, v in SEED_P.items()}
    losses = []
    for _ in range(6):
        r = seed_ref(P)
        losses.append(r["C"])
        P = {k: P[k] - 0.1 * r[k] for k in P}
    losses.append(seed_ref(P)["C"])
    e = explain(load(SEED), optimizer="sgd", steps=6)
    assert [it.t for it in e.history] == list(range(1, 7))
    np.testing.assert_allclose([it.loss_before for it in e.history], losses[:-1], rtol=1e-12)
    np.testing.assert_allclose([it.loss_after for it in e.history], losses[1:], rtol=1e-12)
    for k in P:
        np.testing.assert_allclose(e.final[k], P[k], rtol=1e-12)
    assert "reached the maximum of 6 steps" in e.stop
    assert "## 6. Training: 6 steps" in e.markdown()
    # the three stopping conditions
    below = explain(load(SEED), optimizer="sgd", steps=100, loss_below=losses[3])
    assert len(below.history) == 4 and "fell below" in below.stop
    assert explain(load(SEED), optimizer="sgd", steps=100, max_iters=2).history[-1].t == 2
    assert len(explain(load(SEED), optimizer="sgd", max_iters=3).history) == 3
    flat = explain(load(SEED), optimizer="sgd", steps=100, min_delta=abs(losses[2] - losses[1]) * 1.0001)
    assert len(flat.history) == 2 and "changed by less than" in flat.stop


def test_stopping_conditions_from_the_spec():
    spec = {"network": {"layers": [3, 2, 1], "activations": "sigmoid", "loss": "squared_error"},
            "parameters": {k: v.tolist() for k, v in SEED_P.items()},
            "sample": {"x": SEED_X.tolist(), "y": SEED_Y.tolist()},
            "optimizer": {"name": "sgd", "learning_rate": 0.1, "max_iters": 4, "loss_below": 0.1}}
    net = Network.from_dict(spec)
    assert len(explain(net).history) == 1                      # max_iters caps, it does not ask
    capped = explain(net, steps=50)
    assert len(capped.history) == 4 and "maximum of 4" in capped.stop
    assert "at most 4 steps; until the loss is below $0.1$" in capped.markdown()
    assert len(explain(net, steps=50, max_iters=6).history) == 6   # the command line overrides
    fast = Network.from_dict({**spec, "optimizer": {"name": "adam", "learning_rate": 0.1, "loss_below": 0.1}})
    run = explain(fast, steps=50)
    assert run.history[-1].loss_after < 0.1 <= run.history[-2].loss_after and "fell below 0.1" in run.stop


def test_non_finite_numbers():
    # a saturated sigmoid is finite in truth: C = -log(1 - σ(100)) ≈ 100, dC/dW = σ(100) x ≈ 1
    saturated = {"network": {"layers": [1, 1], "activations": "sigmoid", "loss": "binary_cross_entropy"},
                 "parameters": {"W1": [[100.0]], "b1": [0.0]}, "sample": {"x": [1], "y": [0]}}
    e = explain(Network.from_dict(saturated))
    assert e.values.loss == pytest.approx(100.0, rel=1e-12) and e.values.gradients["W1"][0, 0] == pytest.approx(1.0)
    undefined = {"network": {"layers": [1, 1], "activations": "z**0.5", "loss": "squared_error"},
                 "parameters": {"W1": [[1.0]], "b1": [0.0]}, "sample": {"x": [-1], "y": [0]}}
    with pytest.raises(SpecError, match="^parameters: the loss or a gradient is not finite"):
        explain(Network.from_dict(undefined))
    diverging = {"network": {"layers": [1, 1], "activations": "identity", "loss": "squared_error"},
                 "parameters": {"W1": [[1.0]], "b1": [0.0]}, "sample": {"x": [10], "y": [0]},
                 "optimizer": {"learning_rate": 1.0}}
    e = explain(Network.from_dict(diverging), steps=500)
    assert "no longer finite" in e.stop and len(e.history) < 500
    assert "no longer finite" in e.markdown()


def test_jupyter_reprs(seed_adam):
    assert seed_adam._repr_markdown_().startswith("# Backpropagation worked by hand")
    assert "<svg" in seed_adam._repr_html_() and "<html" not in seed_adam._repr_html_()
    latex = seed_adam._repr_latex_()
    assert latex.startswith("$$") and r"\frac{\partial C}{\partial W^{(2)}_{1,1}}" in latex


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_textbook_order_is_the_same_rule(name):
    """The update rules are printed reordered (θ − η g, not −g η + θ): still the same expressions."""
    from symbackprop.entries.optimizers import textbook_order
    from symbackprop.entries.optimizers import Settings
    for settings in (Settings.of({}), Settings.of({"weight_decay": 0.1, "bias_correction": False})):
        for target, expr in OPTIMIZERS[name].assignments(settings):
            assert textbook_order(expr, target).doit() == expr


def test_aligned_ignores_matrix_ampersands():
    assert not _aligned(r"x = \begin{bmatrix} 1 & 2 \end{bmatrix}")
    assert _aligned(r"C &= \begin{bmatrix} 1 & 2 \end{bmatrix}")
    assert isinstance(Display(("a",)), Display)


def test_number_format():
    n = _Num(5)
    assert (n.tex(-0.9000000000000001), n.rel(-0.9000000000000001)) == ("-0.9", "=")
    assert (n.tex(0.28905049737499605), n.rel(0.28905049737499605)) == ("0.28905", r"\approx")
    assert n.tex(4.889e-08) == r"4.889 \times 10^{-8}" and n.tex(1e-8) == "10^{-8}"
    assert n.par(-0.5) == "(-0.5)" and n.par(2.0) == "2" and n.sum([0.4, -1.5, -0.1, 0.3]) == "0.4 - 1.5 - 0.1 + 0.3"


# ---- LaTeX compiles

def _tex_engine():
    return shutil.which("pdflatex") or shutil.which("lualatex")


@pytest.mark.skipif(_tex_engine() is None, reason="no pdflatex/lualatex installed (bash .ci/install-tex.sh)")
def test_latex_compiles(tmp_path):
    engine = _tex_engine()
    docs = {"seed": explain(load(SEED), optimizer="adam", steps=3).latex(),
            "batch": explain(Network.from_dict(SOFTMAX), optimizer="momentum").latex()}
    for name, tex in docs.items():
        (tmp_path / f"{name}.tex").write_text(tex, encoding="utf-8")
        proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert (tmp_path / f"{name}.pdf").stat().st_size > 10_000
        assert "Undefined control sequence" not in proc.stdout


# ---- the command line

def test_cli_writes_each_format(tmp_path, capsys):
    assert main(["explain", str(SEED), "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Backpropagation worked by hand") and "-0.057536" in out
    for suffix, marker in ((".tex", r"\documentclass"), (".html", "<!DOCTYPE html>"), (".md", "# Backprop")):
        path = tmp_path / f"out{suffix}"
        assert main(["explain", str(MAZUR), "-o", str(path)]) == 0
        assert path.read_text(encoding="utf-8").startswith(marker)
    path = tmp_path / "plain"                        # no extension: --format decides
    assert main(["explain", str(MAZUR), "--format", "latex", "-o", str(path)]) == 0
    assert path.read_text(encoding="utf-8").startswith(r"\documentclass")


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "mine.md"
    path.write_text("my notes\n", encoding="utf-8")
    assert main(["explain", str(SEED), "-o", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--force" in err
    assert path.read_text(encoding="utf-8") == "my notes\n"
    assert main(["explain", str(SEED), "-o", str(path), "--force"]) == 0
    assert path.read_text(encoding="utf-8").startswith("# Backprop")


@pytest.mark.parametrize("args, field", [
    (["--optimizer", "adamax"], "--optimizer"),
    (["--steps", "0"], "--steps"), (["--steps", "two"], "--steps"), (["--steps", "-3"], "--steps"),
    (["--digits", "0"], "--digits"), (["--digits", "99"], "--digits"),
    (["--max-iters", "1.5"], "--max-iters"), (["--loss-below", "-1"], "--loss-below"),
    (["--min-delta", "nan"], "--min-delta"),
])
def test_cli_bad_options(args, field, capsys):
    assert main(["explain", str(SEED), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err


@pytest.mark.parametrize("drop, field", [("parameters", "parameters"), ("sample", "sample")])
def test_cli_spec_without_numbers(tmp_path, capsys, drop, field):
    text = SEED.read_text(encoding="utf-8")
    start = text.index(f"[{drop}]")
    end = text.index("\n[", start) + 1
    path = tmp_path / "spec.toml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    assert main(["explain", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"symbackprop explain: error: {field}:")


def test_cli_too_large_for_a_worked_example(tmp_path, capsys):
    path = tmp_path / "big.toml"
    path.write_text('[network]\nlayers = [50, 50, 1]\nactivations = "sigmoid"\nloss = "mse"\n'
                    f'[parameters]\nW1 = {[[0.0] * 50] * 50}\nb1 = {[0.0] * 50}\nW2 = {[[0.0] * 50]}\nb2 = [0.0]\n'
                    f'[sample]\nx = {[0.0] * 50}\ny = [0.0]\n', encoding="utf-8")
    assert main(["explain", str(path)]) == 2
    assert "network.layers: 2601 parameters is too many" in capsys.readouterr().err


def test_cli_unknown_optimizer_in_spec(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text(SEED.read_text(encoding="utf-8").replace('name = "adam"', 'name = "lbfgs"'), encoding="utf-8")
    assert main(["explain", str(path)]) == 2
    assert "optimizer.name: unknown optimizer 'lbfgs'" in capsys.readouterr().err


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "symbackprop", "explain", str(SEED), "--steps", "x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--steps" in proc.stderr


def test_docstring_example_runs(monkeypatch):
    import doctest
    import symbackprop.explain.example
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(symbackprop.explain.example)
    assert result.failed == 0 and result.attempted > 0


def test_large_matrices_are_elided_not_written_out():
    import sys
    sys.path.insert(0, str(ROOT / "tests"))
    from specs import wide_input
    md = explain(Network.from_dict(wide_input(30))).markdown()
    w1 = md[md.index("W^{(1)} &= \\begin{bmatrix}"):].split("\\end{bmatrix}")[0]
    first_row = w1.split(r" \\ ")[0].split("{bmatrix}")[1]
    assert first_row.count("&") == 11 and r"\cdots" in first_row        # 9 columns, ⋯, the last 2
    assert "W^{(1)}_{6,30}" in md                                         # every weight still in the text


# ---- a long run (issue 10, item 15): the table in part, every step in CSV, the curve in HTML

@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """explain --steps 1000 of the seed net through the command line: Markdown, HTML and --steps-csv."""
    folder = tmp_path_factory.mktemp("long")
    md, page, csv = folder / "e.md", folder / "e.html", folder / "steps.csv"
    assert main(["explain", str(SEED), "--optimizer", "sgd", "--steps", "1000", "-o", str(md),
                 "--steps-csv", str(csv)]) == 0
    assert main(["explain", str(SEED), "--optimizer", "sgd", "--steps", "1000", "-o", str(page)]) == 0
    return explain(load(SEED), optimizer="sgd", steps=1000), md.read_text(), page.read_text(), csv


def _training_rows(markdown):
    part = markdown[markdown.index("| step $t$ |"):]
    return [line.split(" | ")[0].lstrip("| ") for line in part.split("\n\n")[0].splitlines()[2:]]


def test_a_long_run_shows_the_stated_rows(long_run):
    e, md, _, _ = long_run
    assert len(e.history) == 1000
    assert _training_rows(md) == [*map(str, range(1, 11)), "⋮", "100", "⋮", *map(str, range(991, 1001))]
    assert ("A run of more than 30 steps is tabulated in part: steps 1 to 10, 100 and the last 10 of its 1,000 "
            "(the stopping conditions are tested after every step; the last row is where the run stopped). "
            "`--steps-csv FILE` writes every step.") in md
    short = explain(load(SEED), optimizer="sgd", steps=2).markdown()
    assert len(md.splitlines()) < len(short.splitlines()) + 35           # 10,489 lines for 10,000 steps before
    # up to 30 steps, every one
    assert _training_rows(explain(load(SEED), optimizer="sgd", steps=30).markdown()) == list(map(str, range(1, 31)))
    stopped = explain(load(SEED), optimizer="sgd", steps=5000, loss_below=0.01)
    rows = _training_rows(stopped.markdown())
    assert rows[-1] == str(len(stopped.history)) and "fell below 0.01" in stopped.stop


def test_the_steps_csv_has_every_step(long_run):
    e, _, _, csv = long_run
    lines = csv.read_text().splitlines()
    assert lines[0] == "step,loss_before,loss_after,change,relative_change_percent" and len(lines) == 1001
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert list(table[:, 0]) == list(range(1, 1001))
    assert list(table[:, 1]) == [it.loss_before for it in e.history]        # to the last bit
    assert list(table[:, 2]) == [it.loss_after for it in e.history]
    np.testing.assert_array_equal(table[:, 3], table[:, 2] - table[:, 1])


def test_the_html_page_draws_the_loss_curve(long_run):
    import xml.etree.ElementTree as ET
    e, _, page, _ = long_run
    svg = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640'):]
    svg = ET.fromstring(svg[:svg.index("</svg>") + 6])
    (line,) = svg.findall("{http://www.w3.org/2000/svg}polyline")
    points = line.get("points").split()
    assert len(points) == 1001                                   # the loss before step 1, then after each
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[0] == min(ys) and ys[-1] == max(ys)                # SVG's y grows downwards: the loss fell
    assert "step" in [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "The loss before step 1 and after each of the 1,000 steps." in page


def test_steps_csv_overwrites_nothing(tmp_path, capsys):
    csv, md = tmp_path / "s.csv", tmp_path / "e.md"
    csv.write_text("mine\n")
    assert main(["explain", str(SEED), "--steps", "3", "--steps-csv", str(csv), "-o", str(md)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps-csv" in err and "--force" in err
    assert csv.read_text() == "mine\n" and not md.exists()       # checked before either is written
    md.write_text("notes\n")
    assert main(["explain", str(SEED), "--steps", "3", "--steps-csv", str(tmp_path / "t.csv"), "-o", str(md)]) == 2
    assert not (tmp_path / "t.csv").exists() and md.read_text() == "notes\n"
    assert capsys.readouterr().err.count("\n") == 1
    for bad in (str(SEED), str(tmp_path / "s.txt")):
        assert main(["explain", str(SEED), "--steps", "3", "--steps-csv", bad]) == 2
        assert capsys.readouterr().err.count("\n") == 1
