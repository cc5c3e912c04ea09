"""The sequence kinds' array rules — the kernels generated code runs — against SymPy's derivative of
each kind's own element expressions, on small symbolic sizes (T = 2 and 3), as tests/test_layer_rules.py
does for the other kinds.

The embedding and the per-step dense layer are polynomial in their parameters: their rules are
proven identically, on object arrays of symbols, with repeated ids. The recurrent kinds hold tanh
and σ: their element expressions (the recurrence written out, the tests' ``inline`` stage) are
differentiated by ``sympy.diff`` symbolically, then taken at a random point; the BPTT kernels, fed
the forward kernel's states at that point and a *symbolic* upstream gradient, must give the same
linear form in it — every coefficient, to 1e-12 — for every parameter and the input.
"""
import numpy as np
import pytest
import sympy

from symbackprop import Network
from symbackprop.entries.layers import dense, embedding, recurrent
from test_layer_rules import elements, layer_of, same, symbols, vjp


def sequence_layer(input_shape, table):
    """The validated first layer of [table, dense]: per step on a sequence output, else on h_T."""
    return Network.from_dict({"network": {"input": list(input_shape), "loss": "mse"},
                              "layer": [table, dict(type="dense", units=1)]}).graph[0]


def test_embedding_rule_scatter_adds_repeated_ids():
    layer = layer_of((3,), dict(type="embedding", vocab=3, dim=2))
    ids = np.array([[2, 0, 2], [1, 1, 1]])
    E = symbols("E", (3, 2))
    z = elements(layer, ids, {"E": E})
    same(embedding.embedding_forward(ids, E), z)
    delta = symbols("d", z.shape)
    got = embedding.embedding_grad(ids.astype(float), delta, 3)
    same(got, vjp(z, delta, E))
    assert got[2, 0] == delta[0, 0, 0] + delta[0, 2, 0]           # the repeated id's rows, added


def test_one_id_an_example():
    layer = layer_of((), dict(type="embedding", vocab=4, dim=2))
    ids, E = np.array([3, 1]), symbols("E", (4, 2))
    z = elements(layer, ids, {"E": E})
    same(embedding.embedding_forward(ids, E), z)
    delta = symbols("d", z.shape)
    same(embedding.embedding_grad(ids.astype(float), delta, 4), vjp(z, delta, E))


def test_per_step_dense_rules():
    layer = layer_of((3,), dict(type="embedding", vocab=2, dim=2))
    d = Network.from_dict({"network": {"input": [3], "loss": "mse"},
                           "layer": [dict(type="embedding", vocab=2, dim=2), dict(type="dense", units=2)]}).graph[1]
    assert d.sequence and layer.sequence
    x, W, b = symbols("x", (2, 3, 2)), symbols("W", (2, 2)), symbols("b", (2,))
    z = elements(d, x, {"W": W, "b": b})
    same(dense.step_linear(x, W, b), z)
    delta = symbols("d", z.shape)
    same(dense.step_weight_grad(delta, x), vjp(z, delta, W))
    same(dense.step_bias_grad(delta), vjp(z, delta, b))
    same(dense.step_input_grad(delta, W), vjp(z, delta, x))


RECURRENT = [("rnn", {}, 3), ("rnn", {"nonlinearity": "relu"}, 3), ("lstm", {}, 2), ("lstm", {}, 3), ("gru", {}, 2),
             ("gru", {}, 3), ("rnn", {"return": "last"}, 3), ("lstm", {"return": "last"}, 2), ("gru", {"return": "last"}, 2)]


def _numbers(a):
    return np.vectorize(float, otypes=[float])(a)


@pytest.mark.parametrize("kind, extra, steps", RECURRENT, ids=[f"{k}-{e}-T{t}" for k, e, t in RECURRENT])
def test_recurrent_rules_equal_sympys_derivative(kind, extra, steps):
    D, H, N = 2, 2, 2
    layer = sequence_layer((steps, D), dict(type=kind, hidden=H, **extra))
    x = symbols("x", (N, steps, D))
    P = {name[:-1]: symbols(name[:-1], shape) for name, shape in layer.params.items()}
    z = elements(layer, x, P)
    rng = np.random.default_rng(len(kind) + steps)
    point = {s: sympy.Float(rng.normal(scale=0.8), 30) for s in [*x.ravel(), *(s for p in P.values() for s in p.ravel())]}
    if extra.get("nonlinearity") == "relu":     # no pre-activation at relu's kink: compare away from it
        point = {s: v + sympy.Float(0.05, 30) for s, v in point.items()}
    at = lambda a: np.vectorize(lambda e: sympy.sympify(e).xreplace(point), otypes=[object])(a)
    xn, Pn = _numbers(at(x)), {k: _numbers(at(v)) for k, v in P.items()}
    kernel_out = layer.kind.forward(layer, [xn], Pn, {})
    np.testing.assert_allclose(kernel_out, _numbers(at(z)), rtol=1e-12, atol=1e-14)
    delta = symbols("d", z.shape)
    states = layer.kind.states(layer, Pn, xn)
    h = recurrent.seq_part(states, *layer.kind.h_block(layer))
    G = layer.kind.gates * H
    if kind == "rnn":
        Dall = recurrent.rnn_deltas(delta, h, Pn["W_hh"], layer.opt["nonlinearity"] == "relu")
        Di = Dh = Dall
    elif kind == "lstm":
        Di = Dh = recurrent.lstm_deltas(delta, states, Pn["W_hh"])
    else:
        Dall = recurrent.gru_deltas(delta, states, Pn["W_hh"])
        Di, Dh = Dall[..., :G], Dall[..., G:]
    got = {"W_ih": dense.step_weight_grad(Di, xn.astype(object)), "W_hh": recurrent.prev_weight_grad(Dh, h),
           "b_ih": dense.step_bias_grad(Di), "b_hh": dense.step_bias_grad(Dh), "x": dense.step_input_grad(Di, Pn["W_ih"])}
    want = {name: at(vjp(z, delta, P[name])) for name in P} | {"x": at(vjp(z, delta, x))}
    for name in got:
        for g, w in zip(np.ravel(got[name]), np.ravel(want[name])):
            diff = sympy.expand(sympy.sympify(g) - w)
            coeffs = [abs(float(c)) for c in sympy.Poly(diff, *delta.ravel()).coeffs()] if diff != 0 else [0.0]
            scale = max([1.0] + [abs(float(c)) for c in sympy.Poly(sympy.expand(w), *delta.ravel()).coeffs()] if w != 0 else [1.0])
            assert max(coeffs) < 1e-12 * scale, (name, diff)


def test_the_proof_catches_a_dropped_future_gradient():
    """The check above can fail: BPTT with the gradient from step t + 1 dropped gives another W_hh."""
    layer = sequence_layer((3, 2), dict(type="rnn", hidden=2))
    x = symbols("x", (1, 3, 2))
    P = {name[:-1]: symbols(name[:-1], shape) for name, shape in layer.params.items()}
    z = elements(layer, x, P)
    delta = symbols("d", z.shape)
    rng = np.random.default_rng(0)
    point = {s: sympy.Float(rng.normal(scale=0.8), 30) for s in [*x.ravel(), *(s for p in P.values() for s in p.ravel())]}
    at = lambda a: np.vectorize(lambda e: sympy.sympify(e).xreplace(point), otypes=[object])(a)
    Pn = {k: _numbers(at(v)) for k, v in P.items()}
    h = layer.kind.states(layer, Pn, _numbers(at(x)))
    wrong = recurrent.rnn_deltas(delta, h, 0 * Pn["W_hh"], False)          # no W_hhᵀ δ_{t+1} term
    got = recurrent.prev_weight_grad(wrong, h)
    want = at(vjp(z, delta, P["W_hh"]))
    assert any(abs(float(c)) > 1e-6 for g, w in zip(got.ravel(), want.ravel())
               for c in sympy.Poly(sympy.expand(g - w), *delta.ravel()).coeffs())
