"""Each layer kind's array rules — the NumPy kernels generated code runs — proven equal to SymPy's
derivative of the kind's own element expressions, exactly, on small symbolic sizes.

The kernels are plain NumPy, so they run on object arrays of SymPy symbols: the forward kernel must
give the element expressions, and each backward kernel, fed a symbolic δ = ∂C/∂z, the vector-Jacobian
product Σ_e δ_e ∂z_e/∂u that ``sympy.diff`` gives for every input and parameter u. Max-pooling is
piecewise constant in its routing, so its rule is checked exactly at every tie pattern of a window
(every assignment of the values 0..k-1 to its k elements).
"""
import itertools

import numpy as np
import pytest
import sympy

from symbackprop.entries.layers import conv, norm, pool
from symbackprop.entries.layers.base import index_tuples
from symbackprop import Network


def layer_of(input_shape, table):
    """The validated Layer of a one-layer graph (flatten and dense after it, for a vector output)."""
    tail = [dict(type="flatten")] if len(input_shape) > 1 and table["type"] != "flatten" else []
    return Network.from_dict({"network": {"input": list(input_shape), "loss": "mse"},
                              "layer": [table, *tail, dict(type="dense", units=1)]}).graph[0]


def symbols(name, shape):
    out = np.empty(shape, dtype=object)
    for idx in index_tuples(shape):
        out[idx] = sympy.Symbol(name + "_" + "_".join(map(str, idx)), real=True)
    return out


def inline(name, tex, defs, per_example=True):
    return defs          # intermediate arrays written out: expressions in the inputs alone


def elements(layer, x, params, data=None, batch=False):
    """The layer's element expressions for a batch x (N, ...): one example at a time unless the
    kind couples the batch."""
    if batch:
        return layer.kind.elements(layer, [x], params, data or {}, inline)
    return np.array([layer.kind.elements(layer, [x[n]], params, {k: v[n] for k, v in (data or {}).items()}, inline)
                     for n in range(len(x))], dtype=object)


def vjp(z, delta, wrt):
    """Σ_e δ_e ∂z_e/∂u for every u in ``wrt``, by sympy.diff."""
    out = np.empty(wrt.shape, dtype=object)
    pairs = list(zip(z.ravel(), delta.ravel()))
    for idx in index_tuples(wrt.shape):
        u = wrt[idx]
        out[idx] = sympy.Add(*[d * sympy.diff(e, u) for e, d in pairs if u in e.free_symbols])
    return out


def same(a, b):
    diff = np.vectorize(lambda p, q: sympy.expand(p - q), otypes=[object])(a, b)
    assert all(d == 0 for d in diff.ravel()), [d for d in diff.ravel() if d != 0][:3]


CONVS = [((2, 4, 4), dict(channels=2, kernel=3, stride=1, padding=1)),
         ((1, 4, 5), dict(channels=2, kernel=[2, 3], stride=1, padding=0)),  # stride 1: patches over full rows
         ((1, 5, 4), dict(channels=2, kernel=[2, 3], stride=[2, 1], padding=[1, 0])),
         ((1, 5, 5), dict(channels=1, kernel=2, stride=2, padding=0)),    # the stride leaves a row out
         ((2, 6), dict(channels=2, kernel=3, stride=2, padding=1)),
         ((1, 5), dict(channels=1, kernel=2, stride=3, padding=2))]


@pytest.mark.parametrize("shape, fields", CONVS, ids=lambda v: str(v))
def test_convolution_rules(shape, fields):
    d = len(shape) - 1
    layer = layer_of(shape, dict(type=f"conv{d}d", **fields))
    opt = layer.opt
    x = symbols("x", (2, *shape))
    W, b = symbols("W", layer.params["W1"]), symbols("b", layer.params["b1"])
    z = elements(layer, x, {"W": W, "b": b})
    same(conv.conv_forward(x, W, b, opt["stride"], opt["padding"]), z)
    delta = symbols("d", z.shape)
    same(conv.conv_input_grad(delta, W, shape[1:], opt["stride"], opt["padding"]), vjp(z, delta, x))
    same(conv.conv_weight_grad(x, delta, opt["kernel"], opt["stride"], opt["padding"]), vjp(z, delta, W))
    same(conv.channel_sum(delta), vjp(z, delta, b))


@pytest.mark.parametrize("shape, fields", [((1, 4, 4), dict(kernel=2)), ((2, 3, 5), dict(kernel=[2, 3], stride=[1, 2])),
                                           ((1, 7), dict(kernel=3, stride=2))], ids=str)
def test_average_pooling_rules(shape, fields):
    d = len(shape) - 1
    layer = layer_of(shape, dict(type=f"avgpool{d}d", **fields))
    opt = layer.opt
    x = symbols("x", (2, *shape))
    z = elements(layer, x, {})
    same(pool.avgpool_forward(x, opt["kernel"], opt["stride"]), z)
    delta = symbols("d", z.shape)
    same(pool.avgpool_backward(delta, shape[1:], opt["kernel"], opt["stride"]), vjp(z, delta, x))


@pytest.mark.parametrize("shape, fields", [((1, 2, 2), dict(kernel=2)),          # one 2x2 window
                                           ((1, 4), dict(kernel=3, stride=1))],  # two overlapping windows
                         ids=str)
def test_max_pooling_rules_at_every_tie_pattern(shape, fields):
    """SymPy's derivative of the first-maximum Piecewise, evaluated exactly, equals the kernel's
    routing for every pattern of equal and unequal values: the first maximum in row-major order."""
    d = len(shape) - 1
    layer = layer_of(shape, dict(type=f"maxpool{d}d", **fields))
    opt = layer.opt
    x = symbols("x", (1, *shape))
    z = elements(layer, x, {})
    delta = symbols("d", z.shape)
    routes = vjp(z, delta, x)
    size = int(np.prod(shape))
    for values in itertools.product(range(size), repeat=size):
        point = dict(zip(x.ravel(), map(sympy.Integer, values)))
        numbers = np.array(list(map(sympy.Integer, values)), dtype=object).reshape(x.shape)
        expected = np.vectorize(lambda e: e.xreplace(point), otypes=[object])(routes)
        same(pool.maxpool_backward(delta, numbers, opt["kernel"], opt["stride"]), expected)
        same(pool.maxpool_forward(numbers, opt["kernel"], opt["stride"]),
             np.vectorize(lambda e: e.xreplace(point), otypes=[object])(z))


def test_max_pooling_breaks_ties_as_pytorch():
    """At a tie the first maximum in row-major order takes the gradient (torch.max_pool2d's choice)."""
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    out = pool.maxpool_backward(np.ones((1, 1, 1, 1)), x, (2, 2), (2, 2))
    assert out.tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


NORMS = [("batchnorm", (3, 1), {}), ("batchnorm", (2, 1, 1, 2), {}), ("layernorm", (1, 3), {}),
         ("layernorm", (1, 1, 2, 2), {}), ("layernorm", (2, 2, 3), dict(over="last")),
         ("layernorm", (1, 3, 2), dict(over="last"))]


@pytest.mark.parametrize("kind, shape, fields", NORMS, ids=str)
def test_normalization_rules(kind, shape, fields):
    """The compact backward — (g − mean g − x̂ mean(g x̂))/√(var + ε), Σ δ x̂, Σ δ — against
    sympy.diff of the element expressions with μ and var written out in x. √(var + ε) becomes a
    symbol s and the difference is reduced modulo s² − (var + ε): it must vanish identically."""
    layer = layer_of(shape[1:], dict(type=kind, **fields))
    batch = layer.kind.couples_batch
    x = symbols("x", shape)
    gamma, beta = symbols("g", layer.params["gamma1"]), symbols("be", layer.params["beta1"])
    z = elements(layer, x, {"gamma": gamma, "beta": beta}, batch=batch)
    axes, p_axes = layer.kind.axes_of(layer)
    eps = sympy.Rational(1, 100000)
    mean = x.sum(axis=axes) / int(np.prod([shape[a] for a in axes]))
    var = ((x - np.expand_dims(mean, axes)) ** 2).sum(axis=axes) / int(np.prod([shape[a] for a in axes]))
    rstd = np.vectorize(lambda v: 1 / sympy.sqrt(v + eps), otypes=[object])(var)
    xhat = (x - np.expand_dims(mean, axes)) * np.expand_dims(rstd, axes)
    delta = symbols("d", z.shape)
    got = {"x": norm.norm_input_grad(delta, xhat, rstd, gamma, axes),
           "gamma": norm.product_sum(delta, xhat, p_axes),
           "beta": norm.axis_sum(delta, p_axes)}
    want = {"x": vjp(z, delta, x), "gamma": vjp(z, delta, gamma), "beta": vjp(z, delta, beta)}
    bases = {v + eps for v in var.ravel()}
    for key in got:
        for g_, w_ in zip(got[key].ravel(), want[key].ravel()):
            assert _vanishes(g_ - w_, bases), key


def _vanishes(expr, bases) -> bool:
    """Whether ``expr`` is 0 given s_B = √B for each base B: each power of B becomes one of s_B,
    then the numerator is reduced modulo s_B² − B."""
    subs = {}
    for i, base in enumerate(bases):
        s = sympy.Symbol(f"s{i}", positive=True)
        subs[base] = s
        expr = expr.replace(lambda e, B=base: e.is_Pow and e.base == B, lambda e, s=s: s ** (2 * e.exp))
    num, _ = sympy.fraction(sympy.together(expr))
    num = sympy.expand(num)
    for base, s in subs.items():
        num = sympy.rem(num, s ** 2 - base, s)
    return sympy.expand(num) == 0


def test_dropout_flatten_add_rules():
    drop = layer_of((2, 2), dict(type="dropout", rate=0.25))
    x, M = symbols("x", (2, 2, 2)), symbols("M", (2, 2, 2))
    z = elements(drop, x, {}, {"M": M})
    delta = symbols("d", z.shape)
    same(vjp(z, delta, x), delta * M * sympy.Rational(4, 3))       # δ ⊙ M / (1 − p)
    flat = layer_of((2, 3), dict(type="flatten"))
    z = elements(flat, symbols("x", (2, 2, 3)), {})
    delta = symbols("d", z.shape)
    from symbackprop.entries.layers.shape import unflatten
    same(unflatten(delta, (2, 3)), vjp(z, delta, symbols("x", (2, 2, 3))))


def test_the_proofs_catch_a_wrong_rule():
    """The checks above can fail: batch norm's backward without the paths through μ and var (the
    "independent statistics" mistake), and a convolution's input gradient with the kernel not flipped."""
    layer = layer_of((1,), dict(type="batchnorm"))
    x, gamma, beta = symbols("x", (3, 1)), symbols("g", (1,)), symbols("be", (1,))
    z = elements(layer, x, {"gamma": gamma, "beta": beta}, batch=True)
    eps = sympy.Rational(1, 100000)
    mean = x.sum(axis=0) / 3
    rstd = np.vectorize(lambda v: 1 / sympy.sqrt(v + eps), otypes=[object])(((x - mean) ** 2).sum(axis=0) / 3)
    delta = symbols("d", z.shape)
    wrong = delta * gamma * rstd                      # ∂x̂/∂x taken as 1/√(var + ε) alone
    base = {((x - mean) ** 2).sum(axis=0)[0] / 3 + eps}
    assert not all(_vanishes(w - v, base) for w, v in zip(wrong.ravel(), vjp(z, delta, x).ravel()))
    conv_layer = layer_of((1, 3, 3), dict(type="conv2d", channels=1, kernel=2))
    xs, W, b = symbols("x", (1, 1, 3, 3)), symbols("W", (1, 1, 2, 2)), symbols("b", (1,))
    zc = elements(conv_layer, xs, {"W": W, "b": b})
    dc = symbols("d", zc.shape)
    unflipped = conv.conv_input_grad(dc, np.flip(W, axis=(2, 3)), (3, 3), (1, 1), (0, 0))
    with pytest.raises(AssertionError):
        same(unflipped, vjp(zc, dc, xs))
