"""The compiled matrix form agrees with the scalar form and with central finite differences, for every
activation × loss of the registry (softmax on the output only), single examples and batches; and
the generated code is plain, checks its arguments and keeps float32 as float32."""
import functools
import itertools
import math
import threading

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symbackprop.codegen.compiled import array_program, compile_network, environment, render_source, template_context
from symbackprop.derive.derivation import Derivation
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, z
from symbackprop import Network

HIDDEN = [name for name, act in ACTIVATIONS.items() if act.elementwise]
PAIRS = list(itertools.product(ACTIVATIONS, LOSSES))


def hidden_for(output):
    return output if ACTIVATIONS[output].elementwise else "tanh"


@functools.lru_cache(maxsize=None)
def half_point(act) -> float:
    """A z with f(z) ≈ 0.5, so log-losses see outputs inside (0, 1) whatever the activation."""
    if not act.elementwise:
        return 0.0
    f = sympy.lambdify(z, act.expr, "math")
    lo, hi = -6.0, 6.0
    if not (f(lo) < 0.5 < f(hi)):
        return 0.5
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0.5 else (lo, mid)
    return lo


def make_case(sizes, activations, loss, batch, seed):
    """A Network with numbers: small output weights around f(z) ≈ 0.5, targets valid for the
    loss (probability rows for cross-entropy), hidden pre-activations away from every kink."""
    rng = np.random.default_rng(seed)
    structure = {"layers": list(sizes), "activations": list(activations), "loss": loss}
    acts = Network.from_dict({"network": structure}).activations
    for _ in range(50):
        params = {}
        for l in range(1, len(sizes)):
            last = l == len(sizes) - 1
            scale = 0.2 / sizes[l - 1] if last else 1.2 / math.sqrt(sizes[l - 1])
            params[f"W{l}"] = rng.uniform(-scale, scale, (sizes[l], sizes[l - 1]))
            params[f"b{l}"] = rng.uniform(-0.1, 0.1, sizes[l]) if last else rng.uniform(-0.3, 0.3, sizes[l])
        params[f"b{len(sizes) - 1}"] += half_point(acts[-1])
        X = rng.uniform(-1, 1, (batch, sizes[0]))
        if loss == "cross_entropy":
            Y = rng.dirichlet(np.ones(sizes[-1]), batch)
        else:
            Y = rng.uniform(0.05, 0.95, (batch, sizes[-1]))
        if _clear_of_kinks(sizes, acts, params, X):
            break
    spec = {"network": structure,
            "parameters": {k: v.tolist() for k, v in params.items()},
            "sample": {"x": X.tolist() if batch > 1 else X[0].tolist(),
                       "y": Y.tolist() if batch > 1 else Y[0].tolist()}}
    return Network.from_dict(spec)


def _clear_of_kinks(sizes, activations, params, X, margin=1e-3):
    a = X
    for l in range(1, len(sizes)):
        zl = a @ params[f"W{l}"].T + params[f"b{l}"]
        act = activations[l - 1]
        if any(np.min(np.abs(zl - k)) < margin for k in act.kinks):
            return False
        a = np.vectorize(sympy.lambdify(z, act.expr, "math"))(zl) if act.elementwise \
            else np.exp(zl) / np.exp(zl).sum(axis=1, keepdims=True)
    return True


def finite_differences(f, params, X, Y, h=1e-6):
    """Central differences of the batch-mean loss for every parameter entry."""
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            saved = value[idx]
            value[idx] = saved + h
            up = f.loss(params, X, Y)
            value[idx] = saved - h
            down = f.loss(params, X, Y)
            value[idx] = saved
            g[idx] = (up - down) / (2 * h)
        grads[name] = g
    return grads


def assert_gradients_close(got, want, rtol, atol, what):
    """Names the parameter, the index, both values and the error on failure."""
    for name in want:
        assert got[name].shape == want[name].shape, (what, name)
        bad = ~np.isclose(got[name], want[name], rtol=rtol, atol=atol)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            g, w = got[name][idx], want[name][idx]
            raise AssertionError(f"{what}: d{name}{list(idx)} = {g!r}, expected {w!r} (error {abs(g - w):.3g})")


def pair_id(pair):
    return "+".join(pair)


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@pytest.mark.parametrize("shape", [((3, 2, 2), 1), ((2, 3, 2, 2), 4)], ids=["single", "batch"])
def test_matrix_scalar_and_finite_differences_agree(pair, shape):
    output, loss = pair
    sizes, batch = shape
    acts = [hidden_for(output)] * (len(sizes) - 2) + [output]
    if len(sizes) > 3:  # the first hidden layer runs through every element-wise activation
        acts[0] = HIDDEN[PAIRS.index(pair) % len(HIDDEN)]
    net = make_case(sizes, acts, loss, batch, seed=PAIRS.index(pair))
    f = net.compile()
    P, X, Y = net.parameters, net.x, net.y
    matrix = f.gradients(P, X, Y)
    scalar = evaluate(Derivation(Model(net)))
    assert math.isclose(float(f.loss(P, X, Y)), float(scalar.loss), rel_tol=1e-12, abs_tol=1e-14)
    np.testing.assert_allclose(f.forward(P, X), scalar.forward[f"a{len(sizes) - 1}"].reshape(batch, -1),
                               rtol=1e-12, atol=1e-14)
    assert_gradients_close(matrix, scalar.gradients, 1e-9, 1e-12, "matrix vs scalar")
    assert_gradients_close(matrix, finite_differences(f, P, X, Y), 1e-6, 1e-8, "matrix vs finite differences")


def test_a_planted_error_is_caught():
    net = make_case((3, 2, 2), ["sigmoid", "sigmoid"], "squared_error", 1, seed=0)
    f = net.compile()
    wrong = {k: v * (1.001 if k == "W1" else 1.0) for k, v in f.gradients(net.parameters, net.x, net.y).items()}
    with pytest.raises(AssertionError, match=r"dW1\[\d, \d\]"):
        assert_gradients_close(wrong, finite_differences(f, net.parameters, net.x, net.y), 1e-6, 1e-8, "planted")


# ------------------------------------------------------------------------------ property tests

@functools.lru_cache(maxsize=None)
def compiled(sizes, acts, loss, dtype="float64"):
    return Network.from_dict({"network": {"layers": list(sizes), "activations": list(acts), "loss": loss}}).compile(dtype)


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 3))
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=depth + 1, max_size=depth + 1)))
    output = draw(st.sampled_from(list(ACTIVATIONS)))
    if not ACTIVATIONS[output].elementwise and sizes[-1] == 1:
        sizes = sizes[:-1] + (2,)
    acts = tuple(draw(st.sampled_from(HIDDEN)) for _ in range(depth - 1)) + (output,)
    loss = draw(st.sampled_from(list(LOSSES)))
    batch = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31))
    return sizes, acts, loss, batch, seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_property_directional_derivative_matches(case):
    """For random sizes, activations, losses, batches and values: the gradient's projection on a
    random direction equals the central difference of the loss along it."""
    sizes, acts, loss, batch, seed = case
    net = make_case(sizes, acts, loss, batch, seed)
    f = compiled(sizes, acts, loss)
    P, X, Y = net.parameters, net.x, net.y
    if "entropy" in loss:  # a log-loss is defined (and unclipped) only for outputs inside (0, 1)
        out = f.forward(P, X)
        assume(np.all((out > 0.01) & (out < 0.99)))
    rng = np.random.default_rng(seed + 1)
    direction = {k: rng.standard_normal(v.shape) for k, v in P.items()}
    grads = f.gradients(P, X, Y)
    slope = sum(float(np.sum(grads[k] * direction[k])) for k in P)
    h = 1e-5
    up = f.loss({k: P[k] + h * direction[k] for k in P}, X, Y)
    down = f.loss({k: P[k] - h * direction[k] for k in P}, X, Y)
    assert math.isclose(slope, (up - down) / (2 * h), rel_tol=1e-5, abs_tol=1e-7), (slope, (up - down) / (2 * h))


# ------------------------------------------------------------------------------ the program and the code

def test_program_names_follow_the_math():
    net = Network.from_dict({"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"],
                                         "loss": "squared_error"}})
    p = array_program(net)
    assert [s.name for s in p.forward] == ["z1", "a1", "z2", "a2"]
    assert [s.name for s in p.loss_and_gradients] == ["z1", "a1", "z2", "a2", "C", "delta2", "dW2", "db2", "delta1",
                                                       "dW1", "db1"]
    assert p.grads == {"W2": "dW2", "b2": "db2", "W1": "dW1", "b1": "db1"}
    assert p.params == {"W1": (2, 3), "b1": (2,), "W2": (1, 2), "b2": (1,)}
    delta1 = next(s for s in p.loss_and_gradients if s.name == "delta1")
    assert "a1" in delta1.code and "z1" not in delta1.code  # σ' reuses the forward value a1
    assert "delta" in delta1.latex and r"\odot" in delta1.latex


def test_fused_softmax_cross_entropy_program():
    net = Network.from_dict({"network": {"layers": [4, 3, 3], "activations": ["relu", "softmax"],
                                         "loss": "cross_entropy"}})
    p = array_program(net)
    code = {s.name: s.code for s in p.loss_and_gradients}
    assert code["delta2"].replace(" ", "") == "(a2*Y.sum(axis=-1,keepdims=True)-Y)/N"
    assert "(a1 > 0)" in code["delta1"]
    assert "_logsumexp(z2)" in next(s.code for s in p.loss if s.name == "C")
    assert "delta2 = a*RowSum(y) - y (fused)" in p.notes


def test_softmax_cross_entropy_gradient_is_exact_for_targets_that_do_not_sum_to_one():
    from symbackprop.numeric.gradcheck import finite_differences
    net = Network.from_dict({"network": {"layers": [3, 4, 3], "activations": ["tanh", "softmax"],
                                         "loss": "cross_entropy"}})
    rng = np.random.default_rng(3)
    params = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4), "W2": rng.normal(size=(3, 4)),
              "b2": rng.normal(size=3)}
    X, Y = rng.normal(size=(5, 3)), rng.random((5, 3)) * 2      # row sums far from 1
    grads = net.compile().gradients(params, X, Y)
    fd = finite_differences(net, params, X, Y)
    for name in params:
        np.testing.assert_allclose(grads[name], fd[name], rtol=1e-6, atol=1e-9)


def test_functions_template_stands_alone():
    """functions.py.jinja renders plain module-level functions needing only numpy, math and threading."""
    net = Network.from_dict({"network": {"layers": [3, 4, 2], "activations": ["gelu", "softmax"], "loss": "mse"}})
    text = environment().get_template("functions.py.jinja").render(**template_context(array_program(net), "float64"))
    assert [line for line in text.splitlines() if line.startswith(("import ", "from "))] == []
    namespace = {"np": np, "math": math, "threading": threading}
    exec(compile(text, "<functions>", "exec"), namespace)
    for name in ("forward", "loss", "gradients", "loss_and_gradients"):
        assert callable(namespace[name])
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(4, 3)), "b1": np.zeros(4), "W2": rng.normal(size=(2, 4)), "b2": np.zeros(2)}
    X, Y = rng.normal(size=(5, 3)), rng.uniform(size=(5, 2))
    assert namespace["forward"](params, X).shape == (5, 2)
    assert namespace["gradients"](params, X, Y)["W1"].shape == (4, 3)


def test_rendered_module_has_a_header_and_parses():
    net = Network.from_dict({"network": {"layers": [2, 2], "activations": ["sigmoid"], "loss": "binary_cross_entropy"}})
    source = render_source(array_program(net), np.float32)
    assert source.startswith("# Generated by symbackprop from templates/compiled.py.jinja")
    assert "Do not edit" in source and "DTYPE = np.float32" in source
    compile(source, "<compiled>", "exec")


def test_custom_activation_formula_compiles_and_agrees():
    net = make_case((3, 2, 1), ["z/(1 + abs(z))", "sigmoid"], "binary_cross_entropy", 3, seed=3)
    f = net.compile()
    assert_gradients_close(f.gradients(net.parameters, net.x, net.y),
                           finite_differences(f, net.parameters, net.x, net.y), 1e-6, 1e-8, "custom")


def test_results_are_fresh_arrays_across_calls_and_batch_sizes():
    net = make_case((3, 4, 2), ["tanh", "sigmoid"], "squared_error", 6, seed=1)
    f = net.compile()
    P, X, Y = net.parameters, net.x, net.y
    g6 = f.gradients(P, X, Y)
    out6 = f.forward(P, X)
    kept = {k: v.copy() for k, v in g6.items()}
    g2 = f.gradients(P, X[:2], Y[:2])
    f.forward(P, X[:2])
    for k in kept:
        np.testing.assert_array_equal(g6[k], kept[k])
        assert g2[k] is not g6[k]
    np.testing.assert_array_equal(out6, f.forward(P, X))
    np.testing.assert_allclose(f.gradients(P, X, Y)["W1"], kept["W1"], rtol=0, atol=0)


@pytest.mark.parametrize("case", [((3, 4, 2), ["tanh", "sigmoid"], "binary_cross_entropy"),
                                  ((3, 4, 3), ["relu", "softmax"], "cross_entropy"),
                                  ((3, 4, 3, 2), ["softplus", "elu", "identity"], "squared_error")],
                         ids=["bce", "softmax-ce", "deep-se"])
def test_loss_and_gradients_is_loss_and_gradients_in_one_pass(case):
    """The same numbers as loss() and gradients(); with out= the gradients go into those arrays."""
    sizes, activations, loss = case
    net = make_case(sizes, activations, loss, 6, seed=5)
    f = net.compile()
    P, X, Y = net.parameters, net.x, net.y
    C, grads = f.loss_and_gradients(P, X, Y)
    assert C == f.loss(P, X, Y)
    want = f.gradients(P, X, Y)
    for k in P:
        np.testing.assert_array_equal(grads[k], want[k], err_msg=k)
    out = {k: np.full_like(v, np.nan) for k, v in P.items()}
    kept = dict(out)
    C2, written = f.loss_and_gradients(P, X, Y, out=out)
    assert C2 == C and written is out
    for k in P:
        assert out[k] is kept[k]
        np.testing.assert_array_equal(out[k], want[k], err_msg=k)
    _, again = f.loss_and_gradients(P, X, Y)
    assert all(again[k] is not grads[k] for k in P)  # without out: new arrays every call


def test_loss_and_gradients_refuses_a_bad_out(small):
    f, P, X, Y = small
    out = {k: np.zeros_like(v) for k, v in P.items()}
    for bad, message in [({**out, "W1": out["W1"].T}, r"out\['W1'\]: expected a float64 array of shape \(2, 3\)"),
                         ({k: v for k, v in out.items() if k != "b2"}, r"out\['b2'\]: expected"),
                         ({**out, "b1": out["b1"].astype(np.float32)}, r"out\['b1'\]: .* got a float32 array"),
                         ({**out, "W2": P["W2"]}, r"out\['W2'\]: is params\['W2'\] itself"),
                         ({**out, "W1": np.zeros((3, 2)).T}, r"out\['W1'\]: expected a C-contiguous array"),
                         ([out], r"^out: expected a dict")]:
        with pytest.raises(ValueError, match=message):
            f.loss_and_gradients(P, X, Y, out=bad)


# ------------------------------------------------------------------------------ bad input

@pytest.fixture(scope="module")
def small():
    net = make_case((3, 2, 1), ["sigmoid", "sigmoid"], "squared_error", 4, seed=2)
    return net.compile(), net.parameters, net.x, net.y


@pytest.mark.parametrize("mutate, message", [
    (lambda P, X, Y: ({**P, "W1": P["W1"].T}, X, Y), r"params\['W1'\]: expected a float64 array of shape \(2, 3\), got a float64 array of shape \(3, 2\)"),
    (lambda P, X, Y: ({k: v for k, v in P.items() if k != "b2"}, X, Y), r"params\['b2'\]: missing"),
    (lambda P, X, Y: ({**P, "b1": P["b1"].astype(np.float32)}, X, Y), r"params\['b1'\]: .* got a float32 array"),
    (lambda P, X, Y: ({**P, "W2": [[1.0, 2.0]]}, X, Y), r"params\['W2'\]: .* got list"),
    (lambda P, X, Y: (P, X[:, :2], Y), r"^X: expected .* \(N, 3\)"),
    (lambda P, X, Y: (P, X.astype(np.float32), Y), r"^X: .* float32"),
    (lambda P, X, Y: (P, X, Y[:2]), r"^Y: expected .* \(4, 1\)"),
    (lambda P, X, Y: (P, X[:0], Y[:0]), r"^X: .* N >= 1"),
    (lambda P, X, Y: ([P], X, Y), r"^params: expected a dict"),
], ids=["transposed", "missing", "dtype", "list", "X-width", "X-dtype", "Y-rows", "empty", "not-a-dict"])
def test_bad_arguments_raise_a_value_error_naming_them(small, mutate, message):
    f, P, X, Y = small
    P2, X2, Y2 = mutate(P, X, Y)
    with pytest.raises(ValueError, match=message):
        f.gradients(P2, X2, Y2)
    with pytest.raises(ValueError):
        f.loss(P2, X2, Y2)
    with pytest.raises(ValueError, match=message):
        f.loss_and_gradients(P2, X2, Y2)


def test_bad_dtype_for_compile():
    net = Network.from_dict({"network": {"layers": [2, 1], "activations": ["identity"], "loss": "mse"}})
    with pytest.raises(ValueError, match="dtype: expected float64 or float32"):
        compile_network(net, np.int32)


# ------------------------------------------------------------------------------ float32

@pytest.mark.parametrize("output", [name for name in ACTIVATIONS], ids=str)
def test_float32_end_to_end(output):
    loss = "cross_entropy" if output == "softmax" else "binary_cross_entropy"
    net = make_case((3, 4, 2), [hidden_for(output), output], loss, 5, seed=7)
    f64, f32 = net.compile(np.float64), net.compile(np.float32)
    P32 = {k: v.astype(np.float32) for k, v in net.parameters.items()}
    X32, Y32 = net.x.astype(np.float32), net.y.astype(np.float32)
    out = f32.forward(P32, X32)
    value = f32.loss(P32, X32, Y32)
    grads = f32.gradients(P32, X32, Y32)
    assert out.dtype == np.float32 and value.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values()), {k: g.dtype for k, g in grads.items()}
    want = f64.gradients(net.parameters, net.x, net.y)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=2e-3, atol=2e-5)
    assert math.isclose(float(value), float(f64.loss(net.parameters, net.x, net.y)), rel_tol=1e-5)
