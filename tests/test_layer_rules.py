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


def inline(name, tex, defs, per_example=True, step=None):
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


# ---- attention: each rule against sympy.diff of the stage it inverts, stage by stage

def _staged(layer, x, params):
    """The layer's element expressions for one example with each stage a symbol of its own:
    {stage: (symbols, definitions)}, and z in the o symbols."""
    found = {}

    def stage(name, tex, defs, per_example=True):
        defs = np.asarray(defs, dtype=object)
        found[name] = (symbols(name, defs.shape), defs)
        return found[name][0]
    z = layer.kind.elements(layer, [x], params, {}, stage)
    return found, z


def _exps_as_symbols(expr):
    """e^(c₁u₁ + c₂u₂ + …) as E_u₁^c₁ E_u₂^c₂ …, each E_u a symbol: the softmax's expressions (in the
    score symbols u) become rational functions, whose difference ``cancel`` decides exactly."""
    def powers(e):
        out = sympy.Integer(1)
        for term in sympy.Add.make_args(sympy.expand(e.args[0])):
            c, u = term.as_coeff_Mul()
            out *= sympy.Symbol(f"E_{u}", positive=True) ** c
        return out
    return expr.replace(lambda e: isinstance(e, sympy.exp), powers)


def same_rational(a, b):
    diff = [sympy.cancel(_exps_as_symbols(p) - _exps_as_symbols(q)) for p, q in zip(np.ravel(a), np.ravel(b))]
    assert all(d == 0 for d in diff), [d for d in diff if d != 0][:2]


@pytest.mark.parametrize("heads, causal, bias", [(1, False, True), (1, True, False), (2, False, True), (2, True, True)],
                         ids=str)
def test_attention_rules(heads, causal, bias):
    """T = 2, d = 2. Each kernel of attention's backward equals SymPy's vector-Jacobian product of
    the stage it goes back through: dO = δ W_o (from z), dV = Aᵀ dO (from o), dS = A ⊙ (dA −
    rowsum(A ⊙ dA)) with dA = dO Vᵀ (from o through A), dQ = dS K/√d_k and dK = dSᵀ Q/√d_k (from
    the scores), each projection's weight and bias gradient and the input's (from q, k, v)."""
    from symbackprop.entries.layers import attention_kernels as ak
    from symbackprop.entries.layers.norm import axis_sum
    layer = layer_of((2, 2), dict(type="attention", heads=heads, causal=causal, bias=bias))
    x = symbols("x", (2, 2))
    params = {p[:-1]: symbols(p[:-1], shape) for p, shape in layer.params.items()}
    st, z = _staged(layer, x, params)
    one = lambda arr: arr[None]                                                       # noqa: E731  (N = 1)
    head = lambda arr: one(arr[None] if heads == 1 else arr)                          # noqa: E731
    (o, o_def), (A, A_def), (S, S_def) = st["o"], st["weights"], st["scores"]
    delta = symbols("d", z.shape)
    dO = ak.project_input_grad(one(delta), params["Wo"])[0]
    same(dO, vjp(z, delta, o))
    same(ak.project_weight_grad(one(delta), one(o)), vjp(z, delta, params["Wo"]))
    dOs = symbols("dO", o.shape)
    v, k, q = st["v"][0], st["k"][0], st["q"][0]
    same(ak.attn_value_grad(head(A), one(dOs), heads)[0], vjp(o_def, dOs, v))
    dA = vjp(o_def, dOs, A)                                           # SymPy's dA: ∂C/∂A through o = A V
    dS_sympy = vjp(A_def, dA, S)
    dS_kernel = ak.attn_score_grad(head(A_def), one(dOs), one(v), heads)[0].reshape(dS_sympy.shape)
    same_rational(dS_kernel, dS_sympy)
    if causal:                                                        # the masked weight's: exactly 0, both ways
        masked = (0, 1) if heads == 1 else (0, 0, 1)
        assert dS_kernel[masked] == 0 and dS_sympy[masked] == 0
    dSs = symbols("dS", S.shape)
    scale = 1 / sympy.sqrt(2 // heads)
    dQ = ak.attn_query_grad(head(dSs), one(k), heads, scale)[0]
    dK = ak.attn_key_grad(head(dSs), one(q), heads, scale)[0]
    same(dQ, vjp(S_def, dSs, q))
    same(dK, vjp(S_def, dSs, k))
    grads = {p: symbols(f"g{p}", (2, 2)) for p in "qkv"}
    for p in "qkv":
        same(ak.project_weight_grad(one(grads[p]), one(x)), vjp(st[p][1], grads[p], params[f"W{p}"]))
        if bias:
            same(axis_sum(one(grads[p]), (0, 1)), vjp(st[p][1], grads[p], params[f"b{p}"]))
    dx = sum((vjp(st[p][1], grads[p], x) for p in "qkv"), np.zeros((2, 2), dtype=object))
    same(ak.attn_input_grad(*(one(grads[p]) for p in "qkv"), params["Wq"], params["Wk"], params["Wv"])[0], dx)


def test_attention_forward_kernels_are_the_element_expressions():
    """The NumPy forward (batched over examples and heads, the causal mask as −∞) equals the element
    expressions evaluated at random numbers."""
    layer = layer_of((3, 4), dict(type="attention", heads=2, causal=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4))
    params = {p[:-1]: rng.normal(size=shape) for p, shape in layer.params.items()}
    z = elements(layer, np.array(x, dtype=object), {k: np.array(v, dtype=object) for k, v in params.items()})
    np.testing.assert_allclose(z.astype(float), layer.kind.forward(layer, [x], params, {}), rtol=1e-12)


def test_the_attention_proof_catches_a_wrong_rule():
    """dS without its row-sum term is not SymPy's derivative."""
    from symbackprop.entries.layers import attention_kernels as ak
    layer = layer_of((2, 2), dict(type="attention", heads=1))
    params = {p[:-1]: symbols(p[:-1], shape) for p, shape in layer.params.items()}
    st, z = _staged(layer, symbols("x", (2, 2)), params)
    (o, o_def), (A, A_def), (S, _) = st["o"], st["weights"], st["scores"]
    dOs = symbols("dO", o.shape)
    right = ak.attn_score_grad(A_def[None, None], dOs[None], st["v"][0][None], 1)[0, 0]
    wrong = A_def * vjp(o_def, dOs, A)
    same_rational(right, vjp(A_def, vjp(o_def, dOs, A), S))
    with pytest.raises(AssertionError):
        same_rational(wrong, vjp(A_def, vjp(o_def, dOs, A), S))
